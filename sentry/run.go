package sentry

import (
	"errors"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

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
	sigc := make(chan os.Signal, 128)
	signal.Notify(sigc, append([]os.Signal{unix.SIGCHLD}, Forwarded...)...)
	defer signal.Stop(sigc)

	ch, err := Start(spec)
	if err != nil {
		if ch != nil {
			reapAll(ch.Pid)
		}
		return 125, err
	}
	sup, err := New(ch.Listener, cfg)
	if err != nil {
		unix.Kill(ch.Pid, unix.SIGKILL)
		reapAll(ch.Pid)
		return 125, &SetupError{err}
	}
	defer sup.Close()
	if err := ch.Listener.SetSyncWakeup(); err != nil {
		cfg.Log.WithField("error", err).Debug("synchronous wake-ups unavailable (Linux 6.6+); continuing without")
	}
	go func() {
		err := sup.Serve()
		if errors.Is(err, seccomp.ErrNoTracees) {
			return // PROGRAM's whole tree is gone
		}
		cfg.Log.WithField("error", err).Error("notification loop stopped; trapped calls now fail")
	}()
	if err := ch.Release(spec.Path); err != nil {
		code := 125
		var ee *ExecError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		reapAll(ch.Pid)
		return code, err
	}
	// Said once PROGRAM runs: a failed start stays one line (125-127).
	logLayers(cfg.Log, ch.Layers)
	status := wait(ch.Pid, sigc, spec)
	// What remains of the tree is killed: daemons PROGRAM left behind must
	// not outlive the sandbox unsupervised.
	killLeftovers()
	return status, nil
}

// wait forwards signals until PROGRAM ends, reaping every child meanwhile,
// and returns PROGRAM's status. With WaitAll it goes on until no
// descendant is left.
func wait(pid int, sigc <-chan os.Signal, spec Spec) int {
	var grace <-chan time.Time
	status, done := 0, false
	for {
		select {
		case <-grace:
			// The grace period after SIGTERM is over: kill what remains.
			// Reaping stays below, so that PROGRAM's status is seen.
			unix.Kill(-pid, unix.SIGKILL)
			killTree()
			grace = nil
		case sig := <-sigc:
			if sig != unix.SIGCHLD {
				s := sig.(syscall.Signal)
				if spec.SignalGroup {
					unix.Kill(-pid, s)
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
				p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
				if err == unix.EINTR {
					continue
				}
				if err == unix.ECHILD && done {
					return status // WaitAll: the last descendant is gone
				}
				if p <= 0 || err != nil {
					break
				}
				if p == pid {
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
	pids := descendants(os.Getpid())
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

// descendants lists the processes below pid. It follows the kernel's
// children lists (/proc/PID/task/TID/children, one per thread: a child
// belongs to the thread that forked it) rather than reading every process's
// stat: the cost is the tree's, not the host's. A process being reparented
// at that instant may be missed; the callers cope (killLeftovers goes round
// again; for the self oracle, a missed holder can only mean a denial).
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

