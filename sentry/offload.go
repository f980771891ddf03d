package sentry

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Never block the receive thread. Resolving an AF_UNIX path (openat2 in the
// caller's root), and the connect or send to the object found, walk a file
// system: lookups and inode_permission (fuse_permission asks the FUSE server
// for attributes) can wait for as long as a server takes to answer, forever
// for a hung one. Natively that stalls only the calling thread. So the rest
// of such a call runs on a goroutine of its own, which finishes it, as the
// waiter finishes parked calls; the receive thread goes on at once. inet
// calls, which never touch a file system, stay on the receive thread.
//
// The call is owned by exactly one goroutine at a time: the receive thread
// hands it over (the handler returns pending and never touches it again),
// and the goroutine either finishes it or parks it in the waiter.

// offload runs rest, the tail of call c that may block on a file system, on
// its own goroutine, and finishes c there. A call already off the receive
// thread (a later message of the same sendmmsg, on its goroutine or on the
// waiter's, which cannot take a pending outcome from a retry) runs rest
// inline.
func (s *Supervisor) offload(c *call, rest func() outcome) outcome {
	if c.offloaded {
		return rest()
	}
	c.offloaded = true
	go func() {
		o := rest()
		if c.mm != nil && !o.pending && !o.gone {
			// One message of a sendmmsg: the vector goes on from here.
			o = s.mmsgContinue(c, o)
		}
		if !o.pending {
			s.finish(c, o)
		}
	}()
	return pending
}

// mmsgContinue accounts for the outcome o of sendmmsg's current message and
// sends the rest of the vector, as mmsgLoop would have.
func (s *Supervisor) mmsgContinue(c *call, o outcome) outcome {
	if !s.mmsgDone(c, o) {
		return c.mm.result()
	}
	c.mm.i++
	return s.mmsgLoop(c)
}

// pathConnect and pathSendmsg are connect and sendmsg to a Unix path
// (/proc/self/fd/N): its lookup and inode_permission can block on the file
// system even on a non-blocking socket. A RawSyscall that blocks keeps its
// processor (GOMAXPROCS of them), and with it, once there are as many, the
// whole supervisor: these tell the scheduler, as unix.Syscall does.
func pathConnect(fd int, addr []byte) unix.Errno {
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&addr[0])), uintptr(len(addr)))
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
