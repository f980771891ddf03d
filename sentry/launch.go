package sentry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sandbox/seccomp"
)

// The sandbox starts PROGRAM in two stages.
//
//  1. The supervisor re-executes its own binary in init mode (InitArg) with
//     one end of a SOCK_SEQPACKET socketpair as fd 3+N, just above the
//     --preserve-fds range. The init stage is C (initstage.c): a
//     constructor that runs before the Go runtime would start, and execs
//     PROGRAM or exits. Meanwhile the supervisor compiles the filters from
//     the syscall table (table.go) and sends their BPF in an "F" message
//     (filterMessage).
//  2. The init stage sets PR_SET_NO_NEW_PRIVS, applies the layers
//     (layers.go), reads "F", loads the filters and writes, in an "L"
//     message, the listener's descriptor number, a byte that says whether
//     the listener waits killably (WAIT_KILLABLE_RECV), and the layers'
//     report.
//  3. The supervisor takes the listener with pidfd_getfd, starts serving,
//     and answers "G".
//  4. The init stage execs PROGRAM. Its end of the pair is close-on-exec: a
//     successful exec shows up as EOF. A failed exec sends "X" and errno.
//
// Once the filter is loaded the init stage only writes to the pair (and
// reads "G"): sendmsg is trapped, and nobody answers before the listener is
// handed over.
//
// Any failure before "G" stops the init stage before PROGRAM runs: "E" and a
// message, or EOF if it died. A hand-over the init stage cannot read, or
// BPF the kernel refuses, is such a failure. Nothing runs unsupervised.

// InitArg is argv[1] of the init stage.
const InitArg = "__sandbox_init__"

// Spec says what to run.
type Spec struct {
	Path string   // resolved executable
	Argv []string // argv, argv[0] included
	Env  []string
	// FailAt injects a setup failure for tests: "fds", "capabilities",
	// "userns", "landlock", "nnp", "filter", "listener", "handoff" (init
	// stage), "start" (supervisor), or a corrupt filter hand-over,
	// "bpf-short" or "bpf-code" (see filterMessage).
	FailAt string
	// Foreground gives PROGRAM the terminal's foreground process group.
	Foreground bool
	// SignalGroup forwards signals to PROGRAM's whole process group.
	SignalGroup bool
	// Grace is how long PROGRAM has after the first forwarded SIGTERM
	// before everything left is killed (0: no limit).
	Grace time.Duration
	// WaitAll waits for every descendant once PROGRAM exits, instead of
	// killing them.
	WaitAll bool
	// Filter shapes the seccomp filter.
	Filter FilterOptions
	// Layers are the protections beyond the filter (layers.go).
	Layers LayerOptions
}

// SetupError is a failure of the sandbox itself: exit status 125.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// ExecError means PROGRAM could not be executed: 127 when not found, 126
// otherwise (docker run's convention).
type ExecError struct {
	Path  string
	Errno unix.Errno
}

func (e *ExecError) Error() string { return fmt.Sprintf("%s: %s", e.Path, e.Errno.Error()) }

// ExitCode maps the error to the docker-run exit code.
func (e *ExecError) ExitCode() int {
	if e.Errno == unix.ENOENT || e.Errno == unix.ENOTDIR {
		return 127
	}
	return 126
}

// Child is a started, supervised PROGRAM.
type Child struct {
	Pid      int
	Listener *seccomp.Listener
	// Layers is the init stage's report, one "layer=NAME k=v..." line each.
	Layers []string
	conn   *os.File
}

// Start runs stages 1-3 and returns once the listener is in hand. The
// caller then serves it and calls Release to let PROGRAM run.
func Start(spec Spec) (*Child, error) {
	if spec.FailAt == "start" {
		return nil, &SetupError{fmt.Errorf("start init stage: %w", seccomp.ErrInjected)}
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &SetupError{fmt.Errorf("socketpair: %w", err)}
	}
	ours := os.NewFile(uintptr(fds[0]), "sandbox-setup")
	defer unix.Close(fds[1])

	self, err := os.Executable()
	if err != nil {
		ours.Close()
		return nil, &SetupError{fmt.Errorf("find own executable: %w", err)}
	}
	// fds 3..3+N-1 pass through when they are inherited: open and not
	// close-on-exec (every descriptor the Go runtime opens is close-on-exec,
	// so none of ours is mistaken for one). The pair's end goes above them.
	// ^0 closes the number in the child.
	files := []uintptr{0, 1, 2}
	var preserved []int
	for fd := 3; fd < 3+spec.Layers.PreserveFDs; fd++ {
		f := ^uintptr(0)
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			f = uintptr(fd)
			preserved = append(preserved, fd)
		}
		files = append(files, f)
	}
	opts := initOptions{LayerOptions: spec.Layers, RawSockets: spec.Filter.RawSockets, Conn: len(files)}
	opts.AllowUserns = opts.AllowUserns || spec.Filter.AllowUserns
	files = append(files, uintptr(fds[1]))
	argv := append([]string{"sandbox-init", InitArg, spec.FailAt, opts.encode(), spec.Path}, spec.Argv...)
	// syscall.ForkExec rather than os.StartProcess: the latter's first call
	// forks a throw-away child to probe for pidfd support
	// (os.checkPidfd); the pidfd comes from the clone itself here.
	pidfd := -1
	sys := &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd}
	if spec.Foreground {
		sys.Foreground = true
		sys.Ctty = 0
	}
	pid, err := syscall.ForkExec(self, argv, &syscall.ProcAttr{
		Env:   withInheritedSignals(spec.Env),
		Files: files,
		Sys:   sys,
	})
	for _, fd := range preserved {
		unix.Close(fd) // PROGRAM's now: the supervisor must not keep them open
	}
	if err != nil {
		ours.Close()
		return nil, &SetupError{fmt.Errorf("start init stage: %w", err)}
	}
	ch := &Child{Pid: pid, conn: ours}
	if pidfd >= 0 {
		defer unix.Close(pidfd)
	}
	// The filters are compiled while the init stage starts and applies the
	// layers; it reads them just before it loads them. A failed send shuts
	// our side down, so that the init stage sees EOF and says so.
	msg, ferr := filterMessage(opts, spec.FailAt)
	if ferr == nil {
		if err := unix.Sendto(fds[0], msg, unix.MSG_NOSIGNAL, nil); err != nil {
			ferr = fmt.Errorf("hand over filter: %w", err)
		}
	}
	if ferr != nil {
		unix.Shutdown(fds[0], unix.SHUT_WR)
	}
	kind, payload, err := recvMsg(ours)
	fd := -1
	switch {
	case ferr != nil && kind != 'E':
		err = ferr
	case err != nil:
		err = fmt.Errorf("receive listener: %w", err)
	case kind == 'E':
		err = errors.New(string(payload))
	case kind != 'L' || len(payload) < 5:
		err = errors.New("init stage ended before handing over the listener")
	default:
		fd, err = takeListener(pidfd, pid, int(binary.NativeEndian.Uint32(payload)))
		if report := string(payload[5:]); report != "" {
			ch.Layers = strings.Split(report, "\n")
		}
	}
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		ours.Close()
		return ch, &SetupError{err}
	}
	ch.Listener = seccomp.NewListener(fd)
	ch.Listener.Killable = payload[4] == 1
	return ch, nil
}

// filterMessage is the "F" message (sb_receive_filter reads it): programs,
// each a native-endian uint32 instruction count and its struct
// sock_filter array. The x32 guard; the main filter without the raw-socket
// rows; and, only when PROGRAM may keep CAP_NET_RAW (--keep-caps without
// --raw-sockets: only the init stage sees whether it does), the main filter
// with them. Without --keep-caps the capability layer drops CAP_NET_RAW and
// verifies it, so the kernel refuses raw sockets itself.
//
// failAt "bpf-short" truncates the message and "bpf-code" corrupts an
// instruction, for the tests that the init stage refuses both.
func filterMessage(o initOptions, failAt string) ([]byte, error) {
	guard, err := seccomp.ExportX32GuardBPF()
	if err != nil {
		return nil, fmt.Errorf("install seccomp filter: %w", err)
	}
	progs := [][]unix.SockFilter{guard}
	variants := []bool{true}
	if o.KeepCaps && !o.RawSockets {
		variants = append(variants, false)
	}
	for _, raw := range variants {
		p, err := seccomp.ExportBPF(FilterRules(FilterOptions{RawSockets: raw, AllowUserns: o.AllowUserns}))
		if err != nil {
			return nil, fmt.Errorf("install seccomp filter: %w", err)
		}
		progs = append(progs, p)
	}
	msg := []byte{'F'}
	for _, p := range progs {
		msg = binary.NativeEndian.AppendUint32(msg, uint32(len(p)))
		for _, in := range p {
			msg = binary.NativeEndian.AppendUint16(msg, in.Code)
			msg = append(msg, in.Jt, in.Jf)
			msg = binary.NativeEndian.AppendUint32(msg, in.K)
		}
	}
	switch failAt {
	case "bpf-short":
		msg = msg[:len(msg)-3]
	case "bpf-code":
		// The main filter's first instruction: an opcode no BPF machine has
		// (bpf_check_classic refuses it).
		off := 1 + 4 + 8*len(guard) + 4
		binary.NativeEndian.PutUint16(msg[off:], 0xffff)
	}
	return msg, nil
}

// Release lets PROGRAM run ("G") and reports whether its exec succeeded.
func (ch *Child) Release(path string) error {
	defer ch.conn.Close()
	if _, err := ch.conn.Write([]byte{'G'}); err != nil {
		return &SetupError{fmt.Errorf("release program: %w", err)}
	}
	kind, payload, err := recvMsg(ch.conn)
	if err != nil {
		return &SetupError{fmt.Errorf("wait for exec: %w", err)}
	}
	switch kind {
	case 0:
		return nil // EOF: the exec closed the init stage's end
	case 'X':
		if len(payload) == 4 {
			return &ExecError{Path: path, Errno: unix.Errno(binary.NativeEndian.Uint32(payload))}
		}
	case 'E':
		return &SetupError{errors.New(string(payload))}
	}
	return &SetupError{errors.New("unexpected message from init stage")}
}

// takeListener duplicates the init stage's listener descriptor, through the
// pidfd its clone returned (pidfd_open if there is none).
func takeListener(pidfd, pid, fd int) (int, error) {
	if pidfd < 0 {
		var err error
		if pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
			return -1, fmt.Errorf("take listener: pidfd_open: %w", err)
		}
		defer unix.Close(pidfd)
	}
	lfd, err := unix.PidfdGetfd(pidfd, fd, 0) // close-on-exec, always
	if err == unix.EPERM {
		// The supervisor takes every caller's socket the same way: nothing
		// could work. Say so now, with the usual cause.
		return -1, fmt.Errorf("take listener: pidfd_getfd: %w (a seccomp profile refuses it: "+
			"Docker's default allows pidfd_getfd only with CAP_SYS_PTRACE; use "+
			"examples/docker/seccomp-sandbox.json or --cap-add SYS_PTRACE)", err)
	}
	if err != nil {
		return -1, fmt.Errorf("take listener: pidfd_getfd: %w", err)
	}
	return lfd, nil
}

// recvMsg reads one message; kind 0 means EOF.
func recvMsg(f *os.File) (kind byte, payload []byte, err error) {
	buf := make([]byte, 4096)
	for {
		n, e := unix.Read(int(f.Fd()), buf)
		if e == unix.EINTR {
			continue
		}
		if e != nil {
			return 0, nil, e
		}
		if n == 0 {
			return 0, nil, nil
		}
		return buf[0], buf[1:n], nil
	}
}

// InitMain is reached only if the C init stage (initstage.c) did not run
// for argv[1] == InitArg, which cannot happen in a binary linking this
// package: nothing is set up, so nothing may run.
func InitMain() {
	os.Exit(125)
}
