// Package seccomp builds and loads the sandbox's seccomp filters and wraps
// the user-notification listener.
//
// It knows nothing about policy: callers hand it a table of rules.
package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Action is what the filter does with a matching syscall.
type Action uint8

const (
	// Notify traps the call to the supervisor (SECCOMP_RET_USER_NOTIF).
	Notify Action = iota + 1
	// Errno fails the call with Rule.Errno without running it.
	Errno
	// Kill kills the whole process.
	Kill
)

// Rule names one syscall of the native architecture and what to do with it.
type Rule struct {
	Syscall string
	Action  Action
	Errno   unix.Errno // for Errno
	// Conds restrict the rule to calls whose arguments match all of them.
	// Comparisons cover all 64 bits of an argument.
	Conds []Cond
}

// Cond compares one syscall argument: (arg & Mask) == Value when Mask is
// non-zero, else arg != Value when NotEqual, else arg == Value.
type Cond struct {
	Arg      uint
	Value    uint64
	Mask     uint64
	NotEqual bool
}

func (c Cond) scmp() (libseccomp.ScmpCondition, error) {
	switch {
	case c.Mask != 0:
		return libseccomp.MakeCondition(c.Arg, libseccomp.CompareMaskedEqual, c.Mask, c.Value)
	case c.NotEqual:
		return libseccomp.MakeCondition(c.Arg, libseccomp.CompareNotEqual, c.Value)
	}
	return libseccomp.MakeCondition(c.Arg, libseccomp.CompareEqual, c.Value)
}

// SyscallNumber resolves a syscall name for the native architecture.
func SyscallNumber(name string) (int32, error) {
	nr, err := libseccomp.GetSyscallFromName(name)
	if err != nil {
		return 0, fmt.Errorf("unknown syscall %q: %w", name, err)
	}
	return int32(nr), nil
}

func (r Rule) action() (libseccomp.ScmpAction, error) {
	switch r.Action {
	case Notify:
		return libseccomp.ActNotify, nil
	case Errno:
		return libseccomp.ActErrno.SetReturnCode(int16(r.Errno)), nil
	case Kill:
		return libseccomp.ActKillProcess, nil
	}
	return 0, fmt.Errorf("rule for %s: no action", r.Syscall)
}

// build makes the main filter: the native architecture only, with foreign
// architectures (i386 and anything else) killing the process.
func build(rules []Rule) (*libseccomp.ScmpFilter, error) {
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return nil, fmt.Errorf("new filter: %w", err)
	}
	if err := f.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		f.Release()
		return nil, fmt.Errorf("bad-arch action: %w", err)
	}
	for _, r := range rules {
		nr, err := libseccomp.GetSyscallFromName(r.Syscall)
		if err != nil {
			f.Release()
			return nil, fmt.Errorf("unknown syscall %q: %w", r.Syscall, err)
		}
		act, err := r.action()
		if err != nil {
			f.Release()
			return nil, err
		}
		if len(r.Conds) > 0 {
			conds := make([]libseccomp.ScmpCondition, 0, len(r.Conds))
			for _, c := range r.Conds {
				sc, cerr := c.scmp()
				if cerr != nil {
					f.Release()
					return nil, fmt.Errorf("rule %s: %w", r.Syscall, cerr)
				}
				conds = append(conds, sc)
			}
			err = f.AddRuleConditionalExact(nr, act, conds)
		} else {
			err = f.AddRuleExact(nr, act)
		}
		if err != nil {
			f.Release()
			return nil, fmt.Errorf("rule %s: %w", r.Syscall, err)
		}
	}
	return f, nil
}

// buildX32Guard makes the second filter. libseccomp's x86_64 filter lets x32
// syscall numbers (bit 0x40000000, same audit arch) fall to the default
// ALLOW; this filter kills any of them and lets every other call through to
// the main filter. The kernel applies the strictest result of all filters.
func buildX32Guard() (*libseccomp.ScmpFilter, error) {
	f, err := libseccomp.NewFilter(libseccomp.ActKillProcess)
	if err != nil {
		return nil, err
	}
	steps := []func() error{
		func() error { return f.SetBadArchAction(libseccomp.ActAllow) },
		func() error { return f.AddArch(libseccomp.ArchX32) },
		func() error { return f.RemoveArch(libseccomp.ArchAMD64) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			f.Release()
			return nil, fmt.Errorf("x32 guard: %w", err)
		}
	}
	return f, nil
}

// ErrInjected is returned by a setup step that a test asked to fail.
var ErrInjected = errors.New("failure injected for testing")

// Install loads the filters on the calling OS thread and returns the
// notification listener fd (O_CLOEXEC).
//
// Invariants:
//   - The caller has locked the goroutine to its OS thread and will execve
//     from that same thread: the filter is not synchronised to other threads
//     (no TSYNC), and execve keeps only the calling thread.
//   - Nothing between Install and execve may call a trapped syscall: no one
//     answers notifications until the listener reaches the supervisor.
//
// failAt names a step to fail on purpose ("" in production): "nnp",
// "filter", "listener".
func Install(rules []Rule, failAt string) (int, error) {
	fd, _, err := InstallListener(rules, failAt)
	return fd, err
}

// InstallListener is Install, and also reports whether the listener holds
// its received calls killably (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
// Linux 5.19): once the supervisor has received a call, only a fatal signal
// can end the caller's wait, so the supervisor decides how a signal ends a
// call that waits (see sentry/waiter.go). On older kernels the flag is
// refused and the filter is loaded without it.
func InstallListener(rules []Rule, failAt string) (int, bool, error) {
	fd, killable, err := install(rules, failAt)
	return fd, killable, err
}

func install(rules []Rule, failAt string) (int, bool, error) {
	if runtime.GOARCH != "amd64" {
		return -1, false, fmt.Errorf("unsupported architecture %s: only x86_64 (amd64) is supported", runtime.GOARCH)
	}
	if failAt == "nnp" {
		return -1, false, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", ErrInjected)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, false, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	guard, err := buildX32Guard()
	if err != nil {
		return -1, false, err
	}
	defer guard.Release()
	main, err := build(rules)
	if err != nil {
		return -1, false, err
	}
	defer main.Release()
	if failAt == "filter" {
		return -1, false, fmt.Errorf("load filter: %w", ErrInjected)
	}
	if err := guard.Load(); err != nil {
		return -1, false, fmt.Errorf("load x32 guard filter: %w", err)
	}
	// The main filter is loaded last so that it is the one that owns the
	// listener (a task may have only one listener-carrying filter). It is
	// loaded with seccomp(2) itself: libseccomp 2.5 (Debian 12) cannot set
	// WAIT_KILLABLE_RECV.
	prog, err := exportFilter(main)
	if err != nil {
		return -1, false, fmt.Errorf("export filter: %w", err)
	}
	fd, killable, err := loadListening(prog)
	if err != nil {
		return -1, false, fmt.Errorf("load filter: %w", err)
	}
	if failAt == "listener" {
		unix.Close(fd)
		return -1, false, fmt.Errorf("get notification fd: %w", ErrInjected)
	}
	return fd, killable, nil
}

// loadListening loads prog on the calling thread with a new listener,
// killable if the kernel can.
func loadListening(prog []unix.SockFilter) (int, bool, error) {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	for _, killable := range []bool{true, false} {
		if !killable {
			flags = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		}
		r, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
		if e == unix.EINVAL && killable {
			continue // before Linux 5.19
		}
		if e != 0 {
			return -1, false, e
		}
		return int(r), killable, nil
	}
	return -1, false, unix.EINVAL
}

// ExportBPF returns the main filter's classic BPF program, for tests.
func ExportBPF(rules []Rule) ([]unix.SockFilter, error) {
	return export(func() (*libseccomp.ScmpFilter, error) { return build(rules) })
}

// ExportX32GuardBPF returns the x32 guard's program, for tests.
func ExportX32GuardBPF() ([]unix.SockFilter, error) { return export(buildX32Guard) }

func export(mk func() (*libseccomp.ScmpFilter, error)) ([]unix.SockFilter, error) {
	f, err := mk()
	if err != nil {
		return nil, err
	}
	defer f.Release()
	return exportFilter(f)
}

// exportFilter renders f as classic BPF.
func exportFilter(f *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	// ExportBPFMem needs libseccomp 2.6; Debian 12 ships 2.5, so use a pipe.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	errc := make(chan error, 1)
	go func() { errc <- f.ExportBPF(w); w.Close() }()
	raw, rerr := io.ReadAll(r)
	if err := <-errc; err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	prog := make([]unix.SockFilter, len(raw)/8)
	for i := range prog {
		b := raw[i*8:]
		prog[i] = unix.SockFilter{
			Code: uint16(b[0]) | uint16(b[1])<<8,
			Jt:   b[2],
			Jf:   b[3],
			K:    uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24,
		}
	}
	return prog, nil
}
