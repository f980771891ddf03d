package sentry

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Never block the receive thread. Resolving an AF_UNIX path (openat2 in the
// caller's root), and the connect or send to the object found, walk a file
// system: lookups and inode_permission (fuse_permission asks the FUSE server
// for attributes) can wait for as long as a server takes to answer, forever
// for a hung one. Natively that stalls only the calling thread.
//
// Such work runs on the receive thread, marked as work that can block
// (offload), and a watchdog (Supervisor.watchReceiver) starts another
// receiver when one has been in it for longer than stuckAfter; the stuck one
// finishes its call whenever the file system answers, then exits. So a hung
// path stalls only its own caller, and a call that finishes in time (all
// of them, on a healthy file system) pays no hand-over between threads: an
// earlier design gave every Unix path call a goroutine of its own, and the
// hand-overs cost more than the call (a Unix connect went from ~40 to
// ~200 µs).

// offload runs rest, the tail of call c that may block on a file system,
// marked for the watchdog. A call already off the receive thread (a later
// message of the same sendmmsg resumed by the waiter) runs rest as it is.
func (s *Supervisor) offload(c *call, rest func() outcome) outcome {
	if c.offloaded || c.rx == nil {
		return rest()
	}
	c.offloaded = true
	c.rx.busySince.Store(time.Now().UnixNano())
	defer c.rx.busySince.Store(0)
	return rest()
}

// blockingConnect and pathSendmsg are connect and sendmsg that can block:
// to a Unix path (/proc/self/fd/N), whose lookup and inode_permission can
// block on the file system even on a non-blocking socket, and the direct
// connect (direct.go), which waits for room in a full backlog. A RawSyscall
// that blocks keeps its processor (GOMAXPROCS of them), and with it, once
// there are as many, the whole supervisor: these tell the scheduler, as
// unix.Syscall does.
func blockingConnect(fd int, addr []byte) unix.Errno {
	var p unsafe.Pointer
	if len(addr) > 0 { // a direct connect may carry a short address: the kernel judges it
		p = unsafe.Pointer(&addr[0])
	}
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(p), uintptr(len(addr)))
	return e
}

func pathSendmsg(fd int, name, data, control []byte, flags int) (int, unix.Errno) {
	var iov unix.Iovec
	m := unix.Msghdr{Iov: &iov, Iovlen: 1, Name: &name[0], Namelen: uint32(len(name))}
	if len(data) > 0 {
		iov.Base, iov.Len = &data[0], uint64(len(data))
	}
	if len(control) > 0 {
		m.Control, m.Controllen = &control[0], uint64(len(control))
	}
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&m)), uintptr(flags))
	return int(r), e
}
