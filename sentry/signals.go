package sentry

// What PROGRAM inherits natively: the signal dispositions (only "ignored"
// survives execve) and the signal mask of its parent. The Go runtime
// installs its own handlers before any Go code runs, and signal.Notify
// replaces more, so the sandbox's caller's dispositions are recorded by a C
// constructor, which runs before the runtime starts. The init stage puts
// them back just before it execs PROGRAM.

/*
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned long long sandbox_sig_ignored, sandbox_sig_blocked;

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
static unsigned long long sandbox_blocked(void) { return sandbox_sig_blocked; }
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
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

// IsIgnored reports whether sig is in the ignored set.
func (s SignalState) IsIgnored(sig unix.Signal) bool {
	return sig >= 1 && sig <= 64 && s.Ignored&(1<<(sig-1)) != 0
}

// signalsEnv carries the state to the init stage, which removes it before
// exec: PROGRAM never sees it.
const signalsEnv = "SANDBOX_INIT_SIGNALS"

// withInheritedSignals returns env for the init stage.
func withInheritedSignals(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, signalsEnv+"=") {
			out = append(out, e)
		}
	}
	s := Inherited()
	return append(out, fmt.Sprintf("%s=%x:%x", signalsEnv, s.Ignored, s.Blocked))
}

// restoreSignals, in the init stage just before exec, gives this thread the
// dispositions and mask PROGRAM would have had natively. Only SIG_IGN and
// SIG_DFL matter across execve; the Go runtime's handlers become SIG_DFL
// there by themselves.
func restoreSignals() {
	v, ok := os.LookupEnv(signalsEnv)
	os.Unsetenv(signalsEnv)
	var s SignalState
	if !ok {
		return
	}
	if _, err := fmt.Sscanf(v, "%x:%x", &s.Ignored, &s.Blocked); err != nil {
		return
	}
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		var cur kernelSigaction
		if rtSigaction(sig, nil, &cur) != nil {
			continue
		}
		want := uintptr(0) // SIG_DFL
		if s.Ignored&(1<<(sig-1)) != 0 {
			want = 1 // SIG_IGN
		}
		// A Go handler becomes SIG_DFL at exec; only IGN<->DFL must be set.
		if (cur.handler == 1) != (want == 1) {
			act := kernelSigaction{handler: want}
			rtSigaction(sig, &act, nil)
		}
	}
	mask := s.Blocked &^ (1<<(unix.SIGKILL-1) | 1<<(unix.SIGSTOP-1))
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&mask)), 0, 8, 0, 0)
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
