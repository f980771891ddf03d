package sentry

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Unix path connect goes to the object opened and decided on, through
// the supervisor's descriptor: "/proc/self/fd/N" walks five components
// (/proc, the "self" symlink, the pid, fd, N). A thread whose working
// directory is the supervisor's /proc/PID/fd reaches the same descriptor
// by the one component "N", the same lookup of the same magic link
// (proc_lookupfd, then proc_fd_link, with the same proc_fd_access_allowed
// check) minus the walk to it.
//
// Such a thread has a file system context of its own (unshare(CLONE_FS)),
// so the process's working directory never changes. It is locked to its
// goroutine for good (runtime.LockOSThread, never undone), so no other
// goroutine ever runs with that directory, and the thread ends with its
// goroutine. The Go runtime never clones a thread from a locked one (it
// uses its template thread), and nothing in the supervisor resolves a
// relative path against the working directory: the program's relative
// paths are resolved through callerView's explicit directory, every other
// path is absolute. A prepared thread says so by its name (comm), which
// only the thread group itself can set (PR_SET_NAME, or /proc/.../comm,
// refused to other processes) and which no exec can give, as it holds a
// '/'. A thread that is not prepared, or cannot be, uses "/proc/self/fd/N"
// as before. Sends to a Unix path keep that absolute name: they can run on
// any goroutine.
const fdDirMark = "sandbox/fd"

// fdDirOff is set once preparing a thread failed (unshare or chdir
// refused): every connect then takes the absolute name.
var fdDirOff atomic.Bool

// onFdDir reports whether the calling thread is prepared: its working
// directory is the supervisor's /proc/PID/fd. A goroutine that sees this
// is the one locked to the thread, so it cannot move before the connect.
func onFdDir() bool {
	var name [16]byte // TASK_COMM_LEN
	if _, _, e := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_GET_NAME, uintptr(unsafe.Pointer(&name[0])), 0); e != 0 {
		return false
	}
	return string(name[:len(fdDirMark)+1]) == fdDirMark+"\x00"
}

// prepareFdDir locks the calling goroutine to its thread for good and
// gives the thread a working directory of its own, the supervisor's
// /proc/PID/fd. The goroutines that connect to Unix paths are long-lived:
// the receivers and the credential threads (locked already) and the
// waiter's (which then keeps its thread).
func prepareFdDir() bool {
	if fdDirOff.Load() {
		return false
	}
	runtime.LockOSThread() // never undone: see above
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		fdDirOff.Store(true)
		return false
	}
	if err := unix.Chdir("/proc/self/fd"); err != nil {
		fdDirOff.Store(true) // this thread's own directory is unchanged
		return false
	}
	mark := [16]byte{}
	copy(mark[:], fdDirMark)
	if _, _, e := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_NAME, uintptr(unsafe.Pointer(&mark[0])), 0); e != 0 {
		fdDirOff.Store(true)
		return false
	}
	return true
}

// fdConnect connects sock to the supervisor's descriptor obj: by its
// relative name on a prepared thread (preparing this one at its first
// use), through addr ("/proc/self/fd/N") otherwise.
func fdConnect(sock, obj int, addr []byte) unix.Errno {
	if !onFdDir() && !prepareFdDir() {
		return sockConnect(sock, addr)
	}
	var b [2 + 20 + 1]byte
	*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_UNIX
	n := 2 + len(strconv.AppendInt(b[2:2], int64(obj), 10))
	return sockConnect(sock, b[:n+1])
}
