// Package seccomp builds and loads the sandbox's seccomp filters and wraps
// the user-notification listener.
//
// It knows nothing about policy: callers hand it a table of rules.
package seccomp

import (
	"errors"
	"fmt"
	"os"

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

// ExportBPF returns the main filter's classic BPF program. The supervisor
// compiles it and the init stage (sentry/initstage.c) loads it, last, with
// SECCOMP_FILTER_FLAG_NEW_LISTENER (and WAIT_KILLABLE_RECV, Linux 5.19,
// when the kernel has it: once the supervisor has received a call, only a
// fatal signal ends the caller's wait; see sentry/waiter.go), with
// seccomp(2) itself: libseccomp 2.5 (Debian 12) cannot set that flag.
//
// Invariants, kept by the init stage: the filters go on the thread that
// execs PROGRAM (no TSYNC: execve keeps only the calling thread), and
// nothing between the load and execve may call a trapped syscall: no one
// answers notifications until the listener reaches the supervisor.
func ExportBPF(rules []Rule) ([]unix.SockFilter, error) {
	return export(func() (*libseccomp.ScmpFilter, error) { return build(rules) })
}

// ExportX32GuardBPF returns the x32 guard's program (libseccomp's), for the
// tests that WithX32Guard's prefix decides as it does.
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
	// ExportBPFMem needs libseccomp 2.6; Debian 12 ships 2.5, so a file:
	// a memfd, which needs no second goroutine to drain it, as a pipe does.
	fd, err := unix.MemfdCreate("sandbox-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mf := os.NewFile(uintptr(fd), "sandbox-bpf")
	defer mf.Close()
	if err := f.ExportBPF(mf); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	raw := make([]byte, st.Size)
	if n, err := unix.Pread(fd, raw, 0); err != nil || n != len(raw) {
		return nil, fmt.Errorf("read exported filter: %d bytes, %v", n, err)
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

// x32Bit marks an x32 syscall number (__X32_SYSCALL_BIT).
const x32Bit = 0x40000000

// WithX32Guard returns prog behind a prefix that decides as the x32 guard
// filter (buildX32Guard) does: a call of the x86_64 audit arch whose number
// has bit 30 set kills the process; every other call goes on to prog, whose
// own first instruction loads what it needs. One program instead of two
// means one seccomp(2) load: each load JIT-compiles into a bpf_prog_pack,
// whose allocation waits for an IPI to every CPU (bpf_prog_pack_alloc ->
// on_each_cpu_cond_mask), ~0.2 ms on a loaded 2-vCPU VM. prog's jumps are
// relative, so they survive the prefix. The kernel's answer is the same as
// with two filters, which it combines by taking the strictest: KILL for an
// x32 call, prog's for the rest.
func WithX32Guard(prog []unix.SockFilter) []unix.SockFilter {
	const (
		ldAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jsetK  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		retK   = unix.BPF_RET | unix.BPF_K
		offNr  = 0 // struct seccomp_data: nr, then arch
		offArc = 4
	)
	out := []unix.SockFilter{
		{Code: ldAbsW, K: offArc},
		{Code: jeqK, Jt: 0, Jf: 3, K: unix.AUDIT_ARCH_X86_64}, // another arch: to prog
		{Code: ldAbsW, K: offNr},
		{Code: jsetK, Jt: 0, Jf: 1, K: x32Bit}, // not x32: to prog
		{Code: retK, K: unix.SECCOMP_RET_KILL_PROCESS},
	}
	return append(out, prog...)
}
