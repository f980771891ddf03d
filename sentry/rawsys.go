package sentry

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw system calls for the notification hot path.
//
// Each of these returns at once, so they skip the Go scheduler's syscall
// bookkeeping (entersyscall and exitsyscall), which costs a measurable
// share of a round trip. Invariant: never use them for a call that can
// wait; a goroutine in a raw system call holds its P, and with it the
// garbage collector's stop of the world. Calls that can wait (waits.go):
// any access to the caller's memory, the close of a duplicate of the
// program's file, and any call on the program's socket that takes its lock
// (connect, the sends, TCP_INFO, most IP-level options). These do not:
// SOL_SOCKET's SO_DOMAIN, SO_TYPE, SO_PROTOCOL, SO_COOKIE, SO_MARK,
// SO_BINDTOIFINDEX and SO_ACCEPTCONN (sk_getsockopt reads them without the
// lock), F_GETFL and FIONBIO (the file's spinlock only; FIONBIO is
// do_vfs_ioctl's, and never reaches the socket).

func rawGetsockoptInt(fd, level, opt int) (int, unix.Errno) {
	var v int32
	n := uint32(4)
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	return int(v), e
}

func rawFcntl(fd, cmd, arg int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	return int(r), e
}

// rawClose closes a descriptor of the supervisor's own: a pidfd, a /proc
// file, a Landlock ruleset (a duplicate of the program's file: closeDup).
func rawClose(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// setNonblock sets or clears O_NONBLOCK, and only it, on fd's open file
// description: ioctl(FIONBIO), ioctl_fionbio. Unlike F_SETFL it writes no
// other flag back, so it cannot undo a change the program makes to the
// shared file meanwhile, and it never calls the socket's fasync.
func setNonblock(fd int, on bool) unix.Errno {
	const fionbio = 0x5421 // include/uapi/asm-generic/ioctls.h (x/sys has no name for it)
	var v int32
	if on {
		v = 1
	}
	_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), fionbio, uintptr(unsafe.Pointer(&v)))
	return e
}
