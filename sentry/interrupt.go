package sentry

import (
	"bytes"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// How a waiting call ends when a signal comes, with a killable listener.
//
// The listener is loaded with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once
// the supervisor has received a call, only a fatal signal ends the caller's
// wait. Without it, a signal tears the notification down and the kernel
// restarts the call or fails it with EINTR on its own, which is exact for a
// connect (the attempt goes on in the kernel either way) but not for a
// blocking send that has already sent part of its data: Linux returns the
// count sent so far, and a torn-down call can only be restarted (sending
// the data twice) or fail (losing the count). So the supervisor holds every
// received call, and a parked one looks for pending signals (signalled);
// when one is there it answers what the kernel's wait would have returned:
// the bytes sent, or sock_intr_errno's EINTR (the socket has a send
// timeout) or ERESTARTSYS (it has none).

// errRestartSys is ERESTARTSYS (include/linux/errno.h). Answered only while
// a signal is pending for the caller's thread, it never reaches the
// program: delivering the signal on the way out of the call turns it into
// EINTR, or a restart under SA_RESTART (arch_do_signal_or_restart).
const errRestartSys = unix.Errno(512)

// signalled reports whether a signal is pending that the kernel will
// deliver to thread tid when its call returns: one sent to the thread
// itself and not blocked by it, or, in a process of one thread, one sent to
// the process. (In a process of several threads, a signal sent to the
// process goes to any thread that does not block it: the waiting call is
// then not ended for it, and the signal is handled when the call returns.)
func signalled(tid uint32) bool {
	// A read of /proc/TID/status into a buffer of our own: this runs for
	// every parked call, every few milliseconds.
	var path [32]byte
	p := append(append(append(path[:0], "/proc/"...), strconv.Itoa(int(tid))...), "/status\x00"...)
	fd, _, e := unix.RawSyscall(unix.SYS_OPEN, uintptr(unsafe.Pointer(&p[0])), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if e != 0 {
		return false // gone: the validity check ends the call
	}
	var buf [4096]byte
	n, _ := unix.Read(int(fd), buf[:])
	rawClose(int(fd))
	if n <= 0 {
		return false
	}
	b := buf[:n]
	pnd, _ := statusHex(b, "SigPnd:")
	shd, _ := statusHex(b, "ShdPnd:")
	blk, _ := statusHex(b, "SigBlk:")
	if threads, ok := statusField(b, "Threads:"); ok && string(threads) == "1" {
		pnd |= shd
	}
	return pnd&^blk != 0
}

// statusField returns the value of the line "key\tvalue" in a /proc status
// file.
func statusField(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	v := b[i+len(key):]
	if j := bytes.IndexByte(v, '\n'); j >= 0 {
		v = v[:j]
	}
	return bytes.TrimSpace(v), true
}

func statusHex(b []byte, key string) (uint64, bool) {
	v, ok := statusField(b, key)
	if !ok {
		return 0, false
	}
	x, err := strconv.ParseUint(string(v), 16, 64)
	return x, err == nil
}

// sockIntrErrno is sock_intr_errno: a socket wait ended by a signal returns
// EINTR when the socket has a send timeout, ERESTARTSYS otherwise.
func sockIntrErrno(c *call) unix.Errno {
	if sendTimeout(c.sock) > 0 {
		return unix.EINTR
	}
	return errRestartSys
}

// isSend reports whether c is one of the send family.
func (c *call) isSend() bool {
	return c.name == "sendto" || c.name == "sendmsg" || c.name == "sendmmsg"
}

// expired is what a parked call returns when its send timeout expires: a
// connect its first errno (EINPROGRESS, EALREADY, EAGAIN), a send what it
// sent so far or first.
func (s *Supervisor) expired(c *call, first unix.Errno) outcome {
	if c.isSend() {
		return s.partial(c, first)
	}
	return ret(first)
}

// signalOutcome is what a parked call returns when a signal comes.
func (s *Supervisor) signalOutcome(c *call) outcome {
	if c.isSend() {
		return s.partial(c, sockIntrErrno(c))
	}
	return ret(sockIntrErrno(c))
}

// partial ends a send that stopped waiting: the bytes that left
// (tcp_sendmsg and unix_stream_sendmsg return what they copied), or e when
// none did. A sendmmsg counts the message under way if part of it left,
// and returns the messages sent, or e when none was (__sys_sendmmsg).
func (s *Supervisor) partial(c *call, e unix.Errno) outcome {
	o := ret(e)
	if c.msg.sent > 0 {
		o = outcome{val: int64(c.msg.sent)}
	}
	if c.mm == nil {
		return o
	}
	s.mmsgDone(c, o)
	return c.mm.result()
}
