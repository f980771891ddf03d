package sentry

/*
#include <stdlib.h>
#include <string.h>
#include "initstage.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"sandbox/seccomp"
)

// The sandbox starts PROGRAM through an init stage written in C
// (initstage.c), as posix_spawn starts a child:
//
//  1. The supervisor compiles the filter from the syscall table (table.go)
//     with libseccomp, behind the x32 guard's prefix, and starts the stage
//     with clone(CLONE_VM | CLONE_FILES | CLONE_VFORK): the stage shares
//     the supervisor's memory and descriptor table, runs on a stack of its
//     own, and the calling thread waits until it has exec'ed PROGRAM or
//     exited. No second executable is loaded, no second Go runtime starts.
//  2. The stage resets the signal dispositions (the supervisor's handlers
//     must never run in it), takes its own process group (and the
//     terminal's foreground), sets PR_SET_NO_NEW_PRIVS, applies the layers
//     (layers.go), loads the filter with a new listener, and execs
//     PROGRAM. The listener is created in the shared
//     descriptor table: it is the supervisor's at once, and, close-on-exec,
//     not PROGRAM's (exec gives PROGRAM a private copy of the table).
//  3. The stage reports in struct sb_launch, in the shared memory: the
//     listener's number, whether it waits killably (WAIT_KILLABLE_RECV), the
//     layers' report, and its end: exec'ed, exec failed (errno), or a setup
//     failure (a message), after which it exits 125.
//
//  4. Once the filter is loaded the stage sets ready and wakes a futex; a
//     goroutine waiting on it (sandbox_wait_ready) starts Serve, which must
//     answer the stage's own execve (trapped: an observation, table.go)
//     while the launching thread is still suspended in clone.
//
// Any failure before the exec ends the stage before PROGRAM runs: nothing
// runs unsupervised. Once PROGRAM runs, its trapped calls wait in the
// kernel until the supervisor, which was set up before the launch (Run),
// receives them: no call is answered by anyone else.

// Spec says what to run.
type Spec struct {
	Path string   // resolved executable
	Argv []string // argv, argv[0] included
	Env  []string
	// FailAt injects a setup failure for tests: "fds", "capabilities",
	// "userns", "landlock", "nnp", "filter", "listener", "handoff" (init
	// stage), "start" (supervisor), or "bpf-code", BPF the kernel refuses
	// (see filterPrograms).
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
}

// Start runs the init stage and returns once PROGRAM runs under the filter
// (or did not start: *SetupError, *ExecError). A Child with a Pid comes
// with most errors: the stage exited and must be reaped.
//
// serve is called, from another goroutine and before Start returns, as soon
// as the stage has loaded the filter: the stage's own execve is trapped (an
// observation), so the listener must be served before the exec can happen.
// If serve was called, the listener is the caller's to close, whatever
// Start returns.
func Start(spec Spec, serve func(*seccomp.Listener)) (*Child, error) {
	if spec.FailAt == "start" {
		return nil, &SetupError{fmt.Errorf("start init stage: %w", seccomp.ErrInjected)}
	}
	if err := probePidfdGetfd(); err != nil {
		return nil, &SetupError{err}
	}
	o := initOptions{LayerOptions: spec.Layers, RawSockets: spec.Filter.RawSockets}
	o.AllowUserns = o.AllowUserns || spec.Filter.AllowUserns
	progs, err := filterPrograms(o, spec.FailAt)
	if err != nil {
		return nil, &SetupError{err}
	}
	// fds 3..3+N-1 pass through when they are inherited: open and not
	// close-on-exec (every descriptor the Go runtime opens is close-on-exec,
	// so none of ours is mistaken for one). The supervisor closes its own
	// references once PROGRAM has them.
	var preserved []int
	for fd := 3; fd < 3+spec.Layers.PreserveFDs; fd++ {
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			preserved = append(preserved, fd)
		}
	}

	// Everything the stage reads is C memory: it outlives no call, and the
	// stage runs while the calling thread is suspended in sandbox_launch.
	l := (*C.struct_sb_launch)(C.calloc(1, C.sizeof_struct_sb_launch))
	defer C.free(unsafe.Pointer(l))
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	cstr := func(s string) *C.char {
		p := C.CString(s)
		frees = append(frees, unsafe.Pointer(p))
		return p
	}
	cvec := func(v []string) **C.char {
		a := (*[1 << 20]*C.char)(C.calloc(C.size_t(len(v)+1), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
		frees = append(frees, unsafe.Pointer(a))
		for i, s := range v {
			a[i] = cstr(s)
		}
		return &a[0]
	}
	cprog := func(dst *C.struct_sock_fprog, p []unix.SockFilter) {
		if len(p) == 0 {
			return
		}
		n := C.size_t(len(p)) * C.size_t(unsafe.Sizeof(p[0]))
		m := C.malloc(n)
		frees = append(frees, m)
		C.memcpy(m, unsafe.Pointer(&p[0]), n)
		dst.len = C.ushort(len(p))
		dst.filter = (*C.struct_sock_filter)(m)
	}
	l.path = cstr(spec.Path)
	l.argv = cvec(spec.Argv)
	l.envp = cvec(spec.Env)
	l.fail_at = cstr(spec.FailAt)
	b := func(v bool) C.int {
		if v {
			return 1
		}
		return 0
	}
	l.opts = C.struct_sb_options{raw: b(o.RawSockets), landlock: b(o.Landlock), userns: b(o.AllowUserns),
		keepcaps: b(o.KeepCaps), preserve: C.long(o.PreserveFDs)}
	l.foreground = b(spec.Foreground)
	inh := Inherited()
	l.sig_ignored, l.sig_blocked = C.ulonglong(inh.Ignored), C.ulonglong(inh.Blocked)
	if cur, max, ok := inheritedNofile(); ok {
		l.nofile_ok, l.nofile_cur, l.nofile_max = 1, C.ulonglong(cur), C.ulonglong(max)
	}
	cprog(&l.main, progs[0])
	if len(progs) > 1 {
		cprog(&l.main_raw, progs[1])
	}

	var early *seccomp.Listener
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		if C.sandbox_wait_ready(l) == 1 {
			early = seccomp.NewListener(int(l.listener))
			early.Killable = l.killable == 1
			serve(early)
		}
	}()
	launchMu.Lock()
	pid := int(C.sandbox_launch(l))
	launchMu.Unlock()
	<-ready // l is freed when Start returns
	if pid < 0 {
		return nil, &SetupError{fmt.Errorf("start init stage: %w", unix.Errno(-pid))}
	}
	ch := &Child{Pid: pid}
	if n := int(l.report_len); n > 0 {
		ch.Layers = strings.Split(C.GoStringN(&l.report[0], C.int(n)), "\n")
	}
	lfd := int(l.listener)
	switch l.state {
	case 'R':
		for _, fd := range preserved {
			unix.Close(fd) // PROGRAM's now: the supervisor must not keep them open
		}
		if early == nil {
			return ch, &SetupError{errors.New("init stage exec'ed PROGRAM without a listener")}
		}
		ch.Listener = early
		return ch, nil
	case 'X':
		err = &ExecError{Path: spec.Path, Errno: unix.Errno(l.exec_errno)}
	case 'E':
		err = &SetupError{errors.New(C.GoString(&l.msg[0]))}
	default:
		err = &SetupError{errors.New("init stage ended before executing PROGRAM")}
	}
	if lfd >= 0 && early == nil {
		unix.Close(lfd)
	}
	ch.Listener = early // being served: the caller closes it
	return ch, err
}

// probePidfdGetfd checks that pidfd_getfd is permitted: the supervisor
// takes every caller's socket with it, so without it nothing could work.
// The listener needs none (it is created in the shared table), so the
// supervisor asks on itself, which ptrace_may_access always lets through
// (same thread group): only a seccomp profile or an LSM refuses it. Say so
// now, with the usual cause, before PROGRAM runs.
func probePidfdGetfd() error {
	pidfd, err := unix.PidfdOpen(unix.Getpid(), 0)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, pidfd, 0) // close-on-exec, always
	if err == unix.EPERM {
		return fmt.Errorf("pidfd_getfd: %w (a seccomp profile refuses it: "+
			"Docker's default allows pidfd_getfd only with CAP_SYS_PTRACE; use "+
			"examples/docker/seccomp-sandbox.json or --cap-add SYS_PTRACE)", err)
	}
	if err != nil {
		return fmt.Errorf("pidfd_getfd: %w", err)
	}
	unix.Close(fd)
	return nil
}

// launchMu keeps launches one at a time: the C stage's scratch buffers
// (the record it writes through, sandbox_errstr's) are static.
var launchMu sync.Mutex

// filterPrograms compiles the stage's filters, each behind the x32 guard's
// prefix (seccomp.WithX32Guard: one load instead of two): the main filter
// without the raw-socket rows; and, only when PROGRAM may keep CAP_NET_RAW
// (--keep-caps without --raw-sockets: only the stage sees whether it does),
// the main filter with them. Without --keep-caps the capability layer drops
// CAP_NET_RAW and verifies it, so the kernel refuses raw sockets itself.
//
// failAt "bpf-code" corrupts the main filter's first instruction, for the
// test that the stage stops when the kernel refuses the program.
func filterPrograms(o initOptions, failAt string) ([][]unix.SockFilter, error) {
	var progs [][]unix.SockFilter
	variants := []bool{true}
	if o.KeepCaps && !o.RawSockets {
		variants = append(variants, false)
	}
	for _, raw := range variants {
		p, err := seccomp.ExportBPF(FilterRules(FilterOptions{RawSockets: raw, AllowUserns: o.AllowUserns}))
		if err != nil {
			return nil, fmt.Errorf("install seccomp filter: %w", err)
		}
		progs = append(progs, seccomp.WithX32Guard(p))
	}
	if failAt == "bpf-code" {
		progs[0][0].Code = 0xffff // an opcode no BPF machine has: bpf_check_classic refuses it
	}
	return progs, nil
}
