package sentry

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// maxSend bounds the data the supervisor copies for one sendto. A datagram
// larger than this is answered EMSGSIZE (Linux's own limits are lower:
// 65,507 bytes for UDP, the send buffer for Unix datagrams); a stream send
// (TCP Fast Open) may be short, as stream sends may.
const maxSend = 8 << 20

// userSpaceEnd is the end of x86_64 user space (TASK_SIZE_MAX): import_ubuf
// answers EFAULT for a range beyond it before anything else.
const userSpaceEnd = 0x00007ffffffff000

// handleSendto decides sendto(fd, buf, len, flags, addr, addrlen) with an
// address (the filter traps no other). Linux checks (net/socket.c
// __sys_sendto): the buffer's range (EFAULT), the fd (EBADF, ENOTSOCK), then
// addrlen (EINVAL) and the copy of addr (EFAULT), then the protocol.
//
// The supervisor sends its own copies of the data and the address on the
// caller's socket: changing either after the check changes nothing.
func (s *Supervisor) handleSendto(c *call) outcome {
	args := &c.n.Data.Args
	c.fd = int32(args[0])
	buf, size := args[1], args[2]
	c.sendFlags = int(uint32(args[3]))
	alen := int32(args[5])
	if buf+size < buf || buf+size > userSpaceEnd {
		return ret(unix.EFAULT)
	}
	if o, ok := s.takeFD(c); !ok {
		return o
	}
	if c.notSock {
		return ret(unix.ENOTSOCK)
	}
	if alen < 0 || alen > sockaddrStorage {
		return ret(unix.EINVAL)
	}
	c.alen = int(alen)
	if err := s.tracees.read(c.n.Pid, args[4], c.addr[:c.alen]); err != nil {
		return ret(unix.EFAULT)
	}
	typ, e := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_TYPE)
	if e != 0 {
		return ret(e)
	}
	if (typ == unix.SOCK_DGRAM || typ == unix.SOCK_RAW) && size > maxSend {
		return ret(unix.EMSGSIZE)
	}
	c.data = make([]byte, min(size, maxSend))
	if len(c.data) > 0 {
		if err := s.tracees.read(c.n.Pid, buf, c.data); err != nil {
			return ret(unix.EFAULT)
		}
	}
	if !s.lis.Valid(c.n.ID) {
		return gone
	}
	flags, e := rawFcntl(c.sock, unix.F_GETFL, 0)
	if e != 0 {
		return ret(unix.EBADF)
	}
	c.flags, c.typ = flags, typ
	c.req = decodeRequest(c.domain, typ, c.addr[:c.alen])
	c.req.Op, c.req.PID = netstack.OpSend, int(c.n.Pid)
	if !addressUsed(typ, c.sendFlags) || !c.hasDest() {
		// The kernel ignores the address here (a stream socket without
		// MSG_FASTOPEN, a seqpacket socket), or rejects it itself.
		return s.send(c)
	}
	if c.isUnixPath() {
		if o, ok := s.openUnixTarget(c); !ok {
			return o
		}
	}
	s.decide(c)
	switch c.dec.Action {
	case netstack.Allow:
		return s.send(c)
	case netstack.Redirect:
		b, ok := redirectSockaddr(c.domain, c.dec.Redirect)
		if !ok {
			return ret(unix.EAFNOSUPPORT)
		}
		c.alen = copy(c.addr[:], b)
		return s.send(c)
	}
	inet := c.domain == unix.AF_INET || c.domain == unix.AF_INET6
	if inet && typ == unix.SOCK_DGRAM && (c.dec.Action == netstack.Refuse || c.dec.Action == netstack.Timeout) {
		// A datagram to a closed port or a silent host leaves as usual;
		// only the sink sees it.
		if sink := s.sinkFor(c, true, c.dec.Action == netstack.Timeout); sink != nil {
			c.unix = nil
			c.alen = copy(c.addr[:], sink)
			return s.send(c)
		}
	}
	if c.dec.Action == netstack.Timeout && typ == unix.SOCK_DGRAM {
		return outcome{val: int64(len(c.data))} // a datagram nobody reads
	}
	return ret(errnoFor(c.dec))
}

// addressUsed reports whether sendto's address decides where data goes.
func addressUsed(typ, flags int) bool {
	switch typ {
	case unix.SOCK_DGRAM, unix.SOCK_RAW:
		return true
	case unix.SOCK_STREAM:
		return flags&unix.MSG_FASTOPEN != 0 // Fast Open connects to it
	}
	return false
}

// send performs the caller's sendto with the supervisor's copies. It never
// blocks: a blocking caller whose socket is full (or, with MSG_FASTOPEN,
// still connecting) waits in the waiter, as it would in the kernel.
func (s *Supervisor) send(c *call) outcome {
	o := s.sendOnce(c)
	blocking := c.flags&unix.O_NONBLOCK == 0 && c.sendFlags&unix.MSG_DONTWAIT == 0
	if blocking && (o.errno == unix.EAGAIN || o.errno == unix.EINPROGRESS) {
		c.retry = (*Supervisor).sendOnce
		if c.domain == unix.AF_UNIX {
			// A Unix sender polls writable while its peer's queue is full:
			// no event says when there is room, so retry with a backoff.
			return s.waiter.retryLater(c)
		}
		return s.waiter.waitConnected(c, unix.EAGAIN)
	}
	return o
}

func (s *Supervisor) sendOnce(c *call) outcome {
	addr := c.addr[:c.alen]
	if c.unix != nil {
		addr = c.unix.addr
	}
	// MSG_NOSIGNAL: a broken pipe must not signal the supervisor; the
	// caller gets its SIGPIPE below, as it would natively.
	flags := c.sendFlags | unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL
	var n int
	var e unix.Errno
	do := func() unix.Errno {
		n, e = rawSendto(c.sock, c.data, flags, addr)
		return e
	}
	if c.unix != nil {
		s.asCaller(c, do)
	} else {
		do()
	}
	if e == unix.EPIPE && c.sendFlags&unix.MSG_NOSIGNAL == 0 {
		if st, err := c.callerStatus(); err == nil {
			unix.Tgkill(st.Tgid, int(c.n.Pid), unix.SIGPIPE)
		}
	}
	if e != 0 {
		return ret(e)
	}
	return outcome{val: int64(n)}
}

func rawSendto(fd int, data []byte, flags int, addr []byte) (int, unix.Errno) {
	var p, a unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	if len(addr) > 0 {
		a = unsafe.Pointer(&addr[0])
	}
	// Never blocks: MSG_DONTWAIT.
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(data)),
		uintptr(flags), uintptr(a), uintptr(len(addr)))
	return int(r), e
}
