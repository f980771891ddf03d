package sentry

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Never block the receive thread. Much of a call's work can wait for as long
// as the program, or a file system, chooses:
//   - resolving an AF_UNIX path (openat2 in the caller's root), and the
//     connect or send to the object found, walk a file system: lookups and
//     inode_permission (fuse_permission asks the FUSE server for
//     attributes) wait for a hung server forever;
//   - reading or writing the caller's memory (process_vm_readv) faults its
//     pages in as the caller's own copy_from_user would: a page that a
//     userfaultfd of the program's registers, or a mapping of a file on a
//     hung file system, waits for whoever serves the fault;
//   - closing a duplicate of the program's file runs its flush (FUSE asks
//     the server) and, for the last reference, its release (a TCP socket
//     with SO_LINGER waits for its data to drain);
//   - a connect, a send or a TCP_INFO on the program's socket
//     takes the socket's lock (lock_sock), and a thread of the program holds
//     it for as long as its own send copies from a page that waits (a
//     userfaultfd's): even a non-blocking connect then waits for it.
// Natively each of these stalls only the calling thread.
//
// So every call a receive thread serves is watched: the receiver records
// when it started (receiver.busySince) and a watchdog
// (Supervisor.watchReceiver) starts another receiver when one has been
// asleep in a call for longer than stuckAfter; the stuck one finishes its
// call whenever the wait ends, then exits. A hung path or page stalls only
// its own caller, and a call that finishes in time (all of them, on a
// healthy system) pays two stores and no hand-over between threads: an
// earlier design gave every Unix path call a goroutine of its own, and the
// hand-overs cost more than the call (a Unix connect went from ~40 to
// ~200 µs). The system calls that can wait so go through unix.Syscall,
// never RawSyscall (rawsys.go): a raw one keeps its Go processor while it
// waits, and once GOMAXPROCS of them wait, or the garbage collector needs
// to stop the world, the whole supervisor waits with them.

// stillWanted re-checks, before a call's side effect, that a call which
// has waited (a hung path, a page, a lock: longer than stuckAfter since it
// was received) is still the caller's: a signal may have torn it down
// meanwhile (SIGKILL, with a killable listener), and natively nothing would
// then be connected or sent; without it a restarted call would send twice.
// Free when the call did not wait.
func (s *Supervisor) stillWanted(c *call) bool {
	return nanotime()-c.startNs < int64(stuckAfter) || s.lis.Valid(c.n.ID)
}

// sockConnect, sockSendmsg, sockSendto, accessMem, readMem2, closeDup and
// inetName are the system calls that can wait on what the program
// controls (see above): through unix.Syscall, never RawSyscall.
//
// sockConnect, sockSendmsg and sockSendto act on the duplicate of the
// program's socket. None waits for the peer or for room where the caller
// would not (the brief O_NONBLOCK, MSG_DONTWAIT; a blocking direct connect
// is watched, direct.go), but each takes the socket's lock, and a Unix
// path's lookup and inode_permission (the target /proc/self/fd/N, or N in
// fddir.go) can wait on its file system even on a non-blocking socket.
func sockConnect(fd int, addr []byte) unix.Errno {
	var p unsafe.Pointer
	if len(addr) > 0 { // a short address (addrlen 0-2) is the kernel's to judge
		p = unsafe.Pointer(&addr[0])
	}
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(p), uintptr(len(addr)))
	return e
}

// sockSendmsg is sendmsg(2) of one piece of data, to name if any.
func sockSendmsg(fd int, name, data, control []byte, flags int) (int, unix.Errno) {
	m, iov := msghdrFor(name, data, control)
	m.Iov = &iov
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&m)), uintptr(flags))
	return int(r), e
}

// msghdrFor is the header of one piece of data, to name if any, with
// control if any, and the iovec of the data, which the caller links in
// (m.Iov = &iov: where iov lives is the caller's to choose).
func msghdrFor(name, data, control []byte) (m unix.Msghdr, iov unix.Iovec) {
	m.Iovlen = 1
	if len(data) > 0 {
		iov.Base, iov.Len = &data[0], uint64(len(data))
	}
	if len(name) > 0 {
		m.Name, m.Namelen = &name[0], uint32(len(name))
	}
	if len(control) > 0 {
		m.Control, m.Controllen = &control[0], uint64(len(control))
	}
	return m, iov
}

// sockSendto is sendto(2) with a non-NULL address of len(name) bytes, as
// the caller passed it (see message.viaSendto).
func sockSendto(fd int, name, data []byte, flags int) (int, unix.Errno) {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	// A zero-length name still needs a non-NULL pointer; the kernel reads
	// none of it (move_addr_to_kernel copies addrlen bytes).
	var none byte
	np := unsafe.Pointer(&none)
	if len(name) > 0 {
		np = unsafe.Pointer(&name[0])
	}
	r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(data)), uintptr(flags),
		uintptr(np), uintptr(len(name)))
	return int(r), e
}

// accessMem is process_vm_readv (or, to write, process_vm_writev) of one
// range of the caller's memory.
func accessMem(pid uint32, addr uint64, buf []byte, write bool) (int, unix.Errno) {
	nr := uintptr(unix.SYS_PROCESS_VM_READV)
	if write {
		nr = unix.SYS_PROCESS_VM_WRITEV
	}
	local := unix.Iovec{Base: &buf[0], Len: uint64(len(buf))}
	remote := unix.RemoteIovec{Base: uintptr(addr), Len: len(buf)}
	r, _, e := unix.Syscall6(nr, uintptr(pid),
		uintptr(unsafe.Pointer(&local)), 1, uintptr(unsafe.Pointer(&remote)), 1, 0)
	return int(r), e
}

// readMem2 is process_vm_readv of two ranges, in order.
func readMem2(pid uint32, a1 uint64, b1 []byte, a2 uint64, b2 []byte) (int, unix.Errno) {
	local := [2]unix.Iovec{{Base: &b1[0], Len: uint64(len(b1))}, {Base: &b2[0], Len: uint64(len(b2))}}
	remote := [2]unix.RemoteIovec{{Base: uintptr(a1), Len: len(b1)}, {Base: uintptr(a2), Len: len(b2)}}
	r, _, e := unix.Syscall6(unix.SYS_PROCESS_VM_READV, uintptr(pid),
		uintptr(unsafe.Pointer(&local[0])), 2, uintptr(unsafe.Pointer(&remote[0])), 2, 0)
	return int(r), e
}

// closeDup closes the supervisor's duplicate of one of the program's files
// (pidfd_getfd, SCM_RIGHTS): filp_flush and, for the last reference,
// __fput run in this thread.
func closeDup(fd int) { unix.Syscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// inetName is getsockname(2) of the program's inet socket: inet_getname
// takes the socket's lock, so not x/sys's Getsockname, a raw system call.
// ok is false for an error or another family.
func inetName(fd int) (ap netip.AddrPort, ok bool) {
	var sa unix.RawSockaddrAny
	n := uint32(unsafe.Sizeof(sa))
	_, _, e := unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return ap, false
	}
	switch sa.Addr.Family {
	case unix.AF_INET:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&in.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), port), true
	case unix.AF_INET6:
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&in.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(in.Addr), port), true
	}
	return ap, false
}
