package sentry

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"sandbox/seccomp"
)

// Forwarded are the signals the supervisor passes on to PROGRAM. PROGRAM has
// its own process group, so a terminal's signals reach it directly; these
// are for signals sent to the supervisor by pid (kill, docker stop).
var Forwarded = []os.Signal{
	unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH,
}

// Run starts spec under supervision and returns PROGRAM's exit status (or
// 128+N when signal N killed it). A non-nil error is a failure of the
// sandbox (*SetupError: 125) or of the exec (*ExecError: 126/127); the
// returned code is then the one to exit with.
func Run(spec Spec, cfg Config) (int, error) {
	// Orphans of PROGRAM's tree are re-parented to us and reaped here.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 125, &SetupError{err}
	}
	// The tracee runs as the same user: keep it from ptracing us or taking
	// our fds (pidfd_getfd) and memory.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return 125, &SetupError{err}
	}
	// A signal the caller ignores is ignored here too, and not forwarded:
	// natively PROGRAM would never see it (nohup, a shell's background job).
	inh := Inherited()
	notify := []os.Signal{unix.SIGCHLD, unix.SIGCONT}
	for _, s := range append(Forwarded, unix.SIGTSTP) {
		if inh.IsIgnored(s.(syscall.Signal)) {
			signal.Ignore(s)
		} else {
			notify = append(notify, s)
		}
	}
	sigc := make(chan os.Signal, 128)
	signal.Notify(sigc, notify...)
	defer signal.Stop(sigc)

	// Everything that can fail is set up before PROGRAM starts: once the
	// init stage has exec'ed it, it runs (its trapped calls wait for Serve).
	sup, err := New(nil, cfg)
	if err != nil {
		return 125, &SetupError{err}
	}
	// The stage's execve is trapped: Serve starts as soon as the filter is
	// loaded, before Start returns.
	served := make(chan error, 1)
	ch, err := Start(spec, func(lis *seccomp.Listener) {
		sup.lis = lis
		if err := lis.SetSyncWakeup(); err != nil {
			cfg.Log.WithField("error", err).Debug("synchronous wake-ups unavailable (Linux 6.6+); continuing without")
		}
		go func() { served <- sup.Serve() }()
	})
	if err != nil {
		if ch != nil {
			reapAll(ch.Pid)
			if ch.Listener != nil {
				<-served // the stage is gone: ErrNoTracees
				ch.Listener.Close()
			}
		}
		sup.log.Close() // no summary: nothing ran
		code := 125
		var ee *ExecError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return code, err
	}
	defer sup.Close()
	go func() {
		err := <-served
		if errors.Is(err, seccomp.ErrNoTracees) {
			return // PROGRAM's whole tree is gone
		}
		cfg.Log.WithField("error", err).Error("notification loop stopped; trapped calls now fail")
	}()
	// Said once PROGRAM runs: a failed start stays one line (125-127).
	logLayers(cfg.Log, ch.Layers)
	status := wait(ch.Pid, sigc, spec)
	// What remains of the tree is killed: daemons PROGRAM left behind must
	// not outlive the sandbox unsupervised. Say so: a daemon that vanishes
	// without a word looks like a crash.
	if left := leftovers(); len(left) > 0 {
		cfg.Log.WithFields(logrus.Fields{"killed": len(left), "processes": describe(left)}).
			Warn("PROGRAM exited and left processes running: killed them (--wait-all waits for them instead)")
	}
	killLeftovers()
	return status, nil
}

// leftovers lists PROGRAM's remaining descendants with their command, as
// "PID COMMAND".
func leftovers() []string {
	var out []string
	for _, p := range leftoverPids() {
		out = append(out, strconv.Itoa(p)+" "+command(p))
	}
	return out
}

// describe joins at most ten processes, and counts the rest.
func describe(ps []string) string {
	const most = 10
	if len(ps) <= most {
		return strings.Join(ps, ", ")
	}
	return strings.Join(ps[:most], ", ") + fmt.Sprintf(", and %d more", len(ps)-most)
}

// command is a process's command line, or its name in brackets.
func command(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")); s != "" {
		return s
	}
	b, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return "[" + strings.TrimSpace(string(b)) + "]"
}

// wait forwards signals until PROGRAM ends, reaping every child meanwhile,
// and returns PROGRAM's status. With WaitAll it goes on until no
// descendant is left.
//
// Job control: when PROGRAM stops on a job-control signal (Ctrl-Z), the
// sandbox stops itself with the same signal, so that the shell sees a
// stopped job and takes the terminal back. On SIGCONT (fg, bg) it gives the
// terminal back to PROGRAM if the shell gave it to the sandbox, and
// continues PROGRAM's process group.
func wait(pid int, sigc <-chan os.Signal, spec Spec) int {
	var grace <-chan time.Time
	status, done := 0, false
	stopped := false // PROGRAM is stopped, as last reported
	var saved *savedAction
	for {
		select {
		case <-grace:
			// The grace period after SIGTERM is over: kill what remains.
			// Reaping stays below, so that PROGRAM's status is seen.
			unix.Kill(-pid, unix.SIGKILL)
			killTree()
			grace = nil
		case sig := <-sigc:
			s := sig.(syscall.Signal)
			switch s {
			case unix.SIGCHLD:
			case unix.SIGCONT:
				if stopped && !done {
					resume(pid, spec, saved)
					saved = nil
				}
				continue
			default:
				if spec.SignalGroup || s == unix.SIGTSTP {
					unix.Kill(-pid, s) // a stop is for the whole job
				} else {
					unix.Kill(pid, s)
				}
				if s == unix.SIGTERM && spec.Grace > 0 && grace == nil {
					grace = time.After(spec.Grace)
				}
				continue
			}
			for {
				var ws unix.WaitStatus
				p, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WUNTRACED|unix.WCONTINUED, nil)
				if err == unix.EINTR {
					continue
				}
				if err == unix.ECHILD && done {
					return status // WaitAll: the last descendant is gone
				}
				if p <= 0 || err != nil {
					break
				}
				if p != pid || done {
					continue
				}
				switch {
				case ws.Stopped():
					stopped = true
					if jobStop(ws.StopSignal()) {
						saved = stopSelf(ws.StopSignal(), spec)
					}
				case ws.Continued():
					stopped = false
				default:
					if spec.Foreground {
						reclaimTerminal()
					}
					status, done = exitStatus(ws), true
					if !spec.WaitAll {
						return status
					}
				}
			}
		}
	}
}

// jobStop: the stops a terminal or a shell's job control produces. A
// SIGSTOP (a debugger, kill -STOP PID) is not mirrored: whoever sent it
// continues PROGRAM by pid, and a stopped sandbox would then never see it
// exit.
func jobStop(s syscall.Signal) bool {
	return s == unix.SIGTSTP || s == unix.SIGTTIN || s == unix.SIGTTOU
}

// stopSelf stops the sandbox with PROGRAM's stop signal, as the job it
// is, so that the shell reports the same "Stopped". As PID 1 or in an
// orphaned process group the kernel discards it, as it would for PROGRAM.
// It returns what resume must put back.
func stopSelf(s syscall.Signal, spec Spec) *savedAction {
	if os.Getpid() == 1 {
		return nil
	}
	if spec.Foreground {
		reclaimTerminal()
	}
	// The stop needs the default disposition. signal.Reset cannot give it
	// (the runtime keeps its handler and drops the signal), so the handler
	// is swapped with the raw system call and restored on SIGCONT.
	sa := &savedAction{sig: int(s)}
	if rtSigaction(sa.sig, &kernelSigaction{}, &sa.old) != nil {
		return nil
	}
	unix.Kill(os.Getpid(), s)
	return sa
}

type savedAction struct {
	sig int
	old kernelSigaction
}

// resume follows a SIGCONT to the sandbox: fg gave it the terminal (pass
// it on to PROGRAM), bg did not.
func resume(pid int, spec Spec, saved *savedAction) {
	if saved != nil {
		rtSigaction(saved.sig, &saved.old, nil)
	}
	if spec.Foreground {
		if fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && fg == unix.Getpgrp() {
			unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pid)
		}
	}
	unix.Kill(-pid, unix.SIGCONT)
}

func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// reclaimTerminal gives the terminal's foreground back to the supervisor's
// process group (a background group's tcsetpgrp raises SIGTTOU).
func reclaimTerminal() {
	signal.Ignore(unix.SIGTTOU)
	unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp())
}

// reapAll kills and reaps pid after a failed start.
func reapAll(pid int) {
	unix.Kill(pid, unix.SIGKILL)
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			return
		}
	}
}

// killTree sends SIGKILL to every descendant, without reaping.
func killTree() int {
	pids := leftoverPids()
	for _, p := range pids {
		unix.Kill(p, unix.SIGKILL)
	}
	return len(pids)
}

// killLeftovers kills what remains of PROGRAM's tree once PROGRAM itself has
// ended, and reaps it. As a subreaper, every orphaned descendant is our
// child, so the tree is found through /proc parent links.
func killLeftovers() {
	for round := 0; round < 50; round++ {
		if killTree() == 0 {
			return
		}
		deadline := time.Now().Add(100 * time.Millisecond)
		for time.Now().Before(deadline) {
			p, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
			if err == unix.ECHILD {
				break
			}
			if p <= 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
}

// leftoverPids lists what remains of PROGRAM's tree, for the report and the
// kill at exit. A process that is exiting hands its children to the
// subreaper (us) mid-way, and the kernel's children lists can miss them at
// that instant; parent links in /proc/PID/stat cannot (a child names its old
// parent or us). So every process is read, but only when we have a child at
// all: with none (wait4 says ECHILD), nothing can be left, and the walk of
// the host's processes is skipped.
func leftoverPids() []int {
	var info unix.Siginfo
	// waitid with WNOWAIT peeks: it reaps nothing.
	if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WSTOPPED|unix.WCONTINUED|unix.WNOHANG|unix.WNOWAIT|unix.WALL, nil); err == unix.ECHILD {
		return nil
	}
	return Descendants(os.Getpid())
}

// Descendants lists the processes below pid, by the parent link in each
// process's /proc/PID/stat (a child being re-parented names its old parent
// or the subreaper, never neither); without /proc's listing, by the
// children lists.
func Descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return descendants(pid)
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := ppid(p); pp > 0 {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name may contain spaces and parentheses: skip past the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// descendants lists the processes below pid. It follows the kernel's
// children lists (/proc/PID/task/TID/children, one per thread: a child
// belongs to the thread that forked it) rather than reading every process's
// stat: the cost is the tree's, not the host's. A process being reparented
// at that instant may be missed; the callers cope (killLeftovers goes round
// again; for the self oracle, a missed holder can only mean a denial). The
// exit path uses leftoverPids instead, which cannot miss one.
func descendants(pid int) []int {
	var out []int
	seen := map[int]bool{pid: true}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range childPids(p) {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// childPids lists pid's children, from each of its threads.
func childPids(pid int) []int {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			out = append(out, childrenOf(pid, tid)...)
		}
	}
	return out
}
