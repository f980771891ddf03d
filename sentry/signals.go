package sentry

// What PROGRAM inherits natively: the signal dispositions (only "ignored"
// survives execve) and the signal mask of its parent. The Go runtime
// installs its own handlers before any Go code runs, and signal.Notify
// replaces more, so the sandbox's caller's dispositions are recorded by a C
// constructor, which runs before the runtime starts. The init stage
// (initstage.c, sb_reset_signals) gives them to PROGRAM.

/*
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned long long sandbox_sig_ignored, sandbox_sig_blocked;

// The caller's RLIMIT_NOFILE, before the Go runtime raises the soft limit
// to the hard one (os's init); the init stage puts it back for PROGRAM, as
// syscall.ForkExec does with origRlimitNofile.
static unsigned long long sandbox_nofile[2];
static int sandbox_nofile_ok;

// The kernel's struct sigaction on x86_64. The raw system calls are used:
// glibc's sigaction refuses signals 32 and 33 (its own, for threads), which a
// caller may well have ignored, and PROGRAM inherits them all the same.
struct sandbox_ksigaction {
	unsigned long handler;
	unsigned long flags;
	unsigned long restorer;
	unsigned long long mask;
};

__attribute__((constructor)) static void sandbox_record_signals(void) {
	if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, sandbox_nofile) == 0)
		sandbox_nofile_ok = 1;
	unsigned long long set;
	if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &set, 8) == 0)
		sandbox_sig_blocked = set;
	for (int s = 1; s <= 64; s++) {
		struct sandbox_ksigaction sa;
		if (syscall(SYS_rt_sigaction, s, NULL, &sa, 8) == 0 && !(sa.flags & SA_SIGINFO) &&
		    sa.handler == (unsigned long)SIG_IGN)
			sandbox_sig_ignored |= 1ULL << (s - 1);
	}
}

static unsigned long long sandbox_ignored(void) { return sandbox_sig_ignored; }
static int sandbox_nofile_limit(unsigned long long *cur, unsigned long long *max) {
	*cur = sandbox_nofile[0];
	*max = sandbox_nofile[1];
	return sandbox_nofile_ok;
}
static unsigned long long sandbox_blocked(void) { return sandbox_sig_blocked; }
*/
import "C"

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// SignalState is a set of ignored and a set of blocked signals; bit N-1
// stands for signal N.
type SignalState struct{ Ignored, Blocked uint64 }

// Inherited is what the sandbox's caller left the sandbox with, as recorded
// before the Go runtime started.
func Inherited() SignalState {
	return SignalState{Ignored: uint64(C.sandbox_ignored()), Blocked: uint64(C.sandbox_blocked())}
}

// inheritedNofile is the caller's RLIMIT_NOFILE, as recorded before the Go
// runtime started; ok is false if it could not be read.
func inheritedNofile() (cur, max uint64, ok bool) {
	var c, m C.ulonglong
	ok = C.sandbox_nofile_limit(&c, &m) == 1
	return uint64(c), uint64(m), ok
}

// IsIgnored reports whether sig is in the ignored set.
func (s SignalState) IsIgnored(sig unix.Signal) bool {
	return sig >= 1 && sig <= 64 && s.Ignored&(1<<(sig-1)) != 0
}

// kernelSigaction is the kernel's struct sigaction on x86_64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

func rtSigaction(sig int, act, old *kernelSigaction) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
