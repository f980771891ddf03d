package sentry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
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
//     --preserve-fds range.
//  2. The init stage sets PR_SET_NO_NEW_PRIVS, applies the layers
//     (layers.go), loads the filter and writes, in an "L" message, the
//     listener's descriptor number, a byte that says whether the listener
//     waits killably (WAIT_KILLABLE_RECV), and the layers' report.
//  3. The supervisor takes the listener with pidfd_getfd, starts serving,
//     and answers "G".
//  4. The init stage execs PROGRAM. Its end of the pair is close-on-exec: a
//     successful exec shows up as EOF. A failed exec sends "X" and errno.
//
// The init stage only ever writes to the pair: sendmsg is trapped once the
// filter is loaded, and nobody answers before the listener is handed over.
//
// Any failure before "G" stops the init stage before PROGRAM runs: "E" and a
// message, or EOF if it died. Nothing runs unsupervised.

// InitArg is argv[1] of the init stage.
const InitArg = "__sandbox_init__"

// Spec says what to run.
type Spec struct {
	Path string   // resolved executable
	Argv []string // argv, argv[0] included
	Env  []string
	// FailAt injects a setup failure for tests: "fds", "capabilities",
	// "userns", "landlock", "nnp", "filter", "listener", "handoff" (init
	// stage) or "start" (supervisor).
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
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &SetupError{fmt.Errorf("socketpair: %w", err)}
	}
	ours := os.NewFile(uintptr(fds[0]), "sandbox-setup")
	theirs := os.NewFile(uintptr(fds[1]), "sandbox-setup-child")
	defer theirs.Close()

	self, err := os.Executable()
	if err != nil {
		ours.Close()
		return nil, &SetupError{fmt.Errorf("find own executable: %w", err)}
	}
	// fds 3..3+N-1 pass through when they are inherited: open and not
	// close-on-exec (every descriptor the Go runtime opens is close-on-exec,
	// so none of ours is mistaken for one). The pair's end goes above them.
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	for fd := 3; fd < 3+spec.Layers.PreserveFDs; fd++ {
		var f *os.File
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			f = os.NewFile(uintptr(fd), "preserved")
		}
		files = append(files, f)
	}
	opts := initOptions{LayerOptions: spec.Layers, RawSockets: spec.Filter.RawSockets, Conn: len(files)}
	opts.AllowUserns = opts.AllowUserns || spec.Filter.AllowUserns
	files = append(files, theirs)
	argv := append([]string{"sandbox-init", InitArg, spec.FailAt, opts.encode(), spec.Path}, spec.Argv...)
	sys := &syscall.SysProcAttr{Setpgid: true}
	if spec.Foreground {
		sys.Foreground = true
		sys.Ctty = 0
	}
	if spec.FailAt == "start" {
		ours.Close()
		return nil, &SetupError{fmt.Errorf("start init stage: %w", seccomp.ErrInjected)}
	}
	proc, err := os.StartProcess(self, argv, &os.ProcAttr{
		Env:   withInheritedSignals(spec.Env),
		Files: files,
		Sys:   sys,
	})
	for _, f := range files[3 : len(files)-1] {
		if f != nil {
			f.Close() // PROGRAM's now: the supervisor must not keep them open
		}
	}
	if err != nil {
		ours.Close()
		return nil, &SetupError{fmt.Errorf("start init stage: %w", err)}
	}
	ch := &Child{Pid: proc.Pid, conn: ours}
	kind, payload, err := recvMsg(ours)
	fd := -1
	switch {
	case err != nil:
		err = fmt.Errorf("receive listener: %w", err)
	case kind == 'E':
		err = errors.New(string(payload))
	case kind != 'L' || len(payload) < 5:
		err = errors.New("init stage ended before handing over the listener")
	default:
		fd, err = takeListener(proc.Pid, int(binary.NativeEndian.Uint32(payload)))
		if report := string(payload[5:]); report != "" {
			ch.Layers = strings.Split(report, "\n")
		}
	}
	if err != nil {
		proc.Kill()
		ours.Close()
		return ch, &SetupError{err}
	}
	ch.Listener = seccomp.NewListener(fd)
	ch.Listener.Killable = payload[4] == 1
	return ch, nil
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

// takeListener duplicates the init stage's listener descriptor.
func takeListener(pid, fd int) (int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, fmt.Errorf("take listener: pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
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

// InitMain is the init stage. It never returns.
//
// Invariant: nothing here may call a trapped syscall (connect) before the
// listener is handed over; no one would answer it.
func InitMain(args []string) {
	runtime.LockOSThread() // the filter and the layers go on this thread; exec from it
	if len(args) < 4 {
		os.Exit(125) // no pair to report on: the supervisor sees EOF
	}
	o, err := decodeInitOptions(args[1])
	if err != nil {
		os.Exit(125)
	}
	conn := o.Conn
	fail := func(code int, format string, a ...any) {
		unix.Write(conn, append([]byte{'E'}, fmt.Sprintf(format, a...)...))
		os.Exit(code)
	}
	failAt, path, argv := args[0], args[2], args[3:]
	// The layers before the filter: see applyLayers.
	layers, err := applyLayers(o, failAt)
	if err != nil {
		fail(125, "%v", err)
	}
	opts := FilterOptions{RawSockets: o.RawSockets || !layers.holdsRaw, AllowUserns: o.AllowUserns}
	lfd, killable, err := seccomp.InstallListener(FilterRules(opts), failAt)
	if err != nil {
		fail(125, "install seccomp filter: %v", err)
	}
	if failAt == "handoff" {
		fail(125, "hand over listener: %v", seccomp.ErrInjected)
	}
	l := make([]byte, 6, 512)
	l[0] = 'L'
	binary.NativeEndian.PutUint32(l[1:], uint32(lfd))
	if killable {
		l[5] = 1
	}
	l = append(l, strings.Join(layers.report, "\n")...)
	if _, err := unix.Write(conn, l); err != nil {
		fail(125, "hand over listener: %v", err)
	}
	var b [1]byte
	for {
		n, err := unix.Read(conn, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n != 1 || b[0] != 'G' {
			os.Exit(125) // the supervisor is gone: never run unsupervised
		}
		break
	}
	unix.Close(lfd) // taken: PROGRAM must not inherit it
	unix.CloseOnExec(conn)
	restoreSignals()
	err = unix.Exec(path, argv, os.Environ())
	e, _ := err.(unix.Errno)
	var p [4]byte
	binary.NativeEndian.PutUint32(p[:], uint32(e))
	unix.Write(conn, append([]byte{'X'}, p[:]...))
	if e == unix.ENOENT {
		os.Exit(127)
	}
	os.Exit(126)
}
