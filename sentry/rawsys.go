package sentry

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw system calls for the notification hot path.
//
// Each of these returns at once (a connect on this path is non-blocking:
// see attempt), so they skip the Go scheduler's syscall bookkeeping
// (entersyscall and exitsyscall), which costs a measurable share of a
// round trip. Invariant: never use them for a call that can block; a
// goroutine in a raw system call holds its P and delays garbage collection.

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

func rawClose(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// rawAccessMem is process_vm_readv (or, to write, process_vm_writev) of one
// range.
func rawAccessMem(pid uint32, addr uint64, buf []byte, write bool) (int, unix.Errno) {
	nr := uintptr(unix.SYS_PROCESS_VM_READV)
	if write {
		nr = unix.SYS_PROCESS_VM_WRITEV
	}
	local := unix.Iovec{Base: &buf[0], Len: uint64(len(buf))}
	remote := unix.RemoteIovec{Base: uintptr(addr), Len: len(buf)}
	r, _, e := unix.RawSyscall6(nr, uintptr(pid),
		uintptr(unsafe.Pointer(&local)), 1, uintptr(unsafe.Pointer(&remote)), 1, 0)
	return int(r), e
}

// rawReadMem2 is process_vm_readv of two ranges, in order.
func rawReadMem2(pid uint32, a1 uint64, b1 []byte, a2 uint64, b2 []byte) (int, unix.Errno) {
	local := [2]unix.Iovec{{Base: &b1[0], Len: uint64(len(b1))}, {Base: &b2[0], Len: uint64(len(b2))}}
	remote := [2]unix.RemoteIovec{{Base: uintptr(a1), Len: len(b1)}, {Base: uintptr(a2), Len: len(b2)}}
	r, _, e := unix.RawSyscall6(unix.SYS_PROCESS_VM_READV, uintptr(pid),
		uintptr(unsafe.Pointer(&local[0])), 2, uintptr(unsafe.Pointer(&remote[0])), 2, 0)
	return int(r), e
}
