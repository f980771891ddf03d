package sentry

import (
	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// The send family: sendto with an address, and every sendmsg and sendmmsg
// (whose address sits behind a pointer the filter cannot follow). All three
// end in sendMessage: decide on the supervisor's copy of the address, then
// send the supervisor's copies of the data and control messages on the
// caller's own socket. Changing any of them in the tracee after the check
// changes nothing.

// maxSend bounds the data the supervisor copies at once. A datagram larger
// than this is answered EMSGSIZE (Linux's own limits are lower: 65,507 bytes
// for UDP, the send buffer for Unix datagrams); a stream send is copied and
// sent in pieces of this size.
const maxSend = 8 << 20

// userSpaceEnd is the end of x86_64 user space (TASK_SIZE_MAX): access_ok
// fails for a range beyond it before anything is copied.
const userSpaceEnd = 0x00007ffffffff000

// maxRWCount is MAX_RW_COUNT (INT_MAX & PAGE_MASK): the kernel clamps the
// length of one send to it.
const maxRWCount = 0x7ffff000

// span is one range of the caller's data, in its address space.
type span struct{ base, len uint64 }

// message is the state of one message being sent.
type message struct {
	spans []span // the caller's data
	one   [1]span
	total uint64 // bytes across spans, clamped to maxRWCount
	sent  uint64 // bytes sent so far (a stream send goes in pieces)
	off   uint64 // bytes of the caller's data copied so far
	data  []byte // the supervisor's copy of the current piece
	// pre: data already holds the whole message, read with the address;
	// preErr is that read's fault, for readPiece to report.
	pre    bool
	preErr error
	at     int // bytes of data already sent
	// zc: data is a private mapping (MSG_ZEROCOPY), unmapped once sent: the
	// kernel keeps the pages it pinned, and Go never reuses them.
	zc      bool
	control []byte // the supervisor's copy of the control messages
	passed  []int  // the supervisor's duplicates of SCM_RIGHTS descriptors
	// ucred is the caller's own SCM_CREDENTIALS, checked and translated
	// (creds.go); every piece of a stream send carries it, as every skb
	// does in the kernel. named is what the supervisor adds instead, once
	// decided (namedSet) for the whole send.
	ucred             *unix.Ucred
	named             []byte
	namedSet          bool
	wanted, wantedSet bool // credsWanted's answer
	// viaSendto: the call is a sendto, whose address pointer is non-NULL
	// (the filter traps no other). It is sent with sendto(2), which keeps
	// that pointer's meaning: a zero addrlen still names an address
	// (udp_sendmsg then answers EINVAL), where sendmsg's msg_name would be
	// dropped with it (copy_msghdr_from_user).
	viaSendto bool
	// small holds a short datagram's data, and iov a single iovec, in the
	// call itself: no allocation for the common sends.
	small [smallSend]byte
	iov   [16]byte
	// mmsg is the room for a sendmmsg's progress (c.mm points here): it
	// outlives each message, so release keeps it; the next call starts
	// from a cleared call.
	mmsg mmsgState
}

// smallSend is the longest data kept in the call (message.small): DNS
// queries and most datagrams fit.
const smallSend = 256

// buffer returns n bytes for the supervisor's copy of the data: the call's
// own small buffer when it fits, else a new slice.
func (m *message) buffer(n uint64) []byte {
	if n <= smallSend {
		return m.small[:n]
	}
	return make([]byte, n)
}

// release frees what the message holds.
func (m *message) release() {
	for _, fd := range m.passed {
		closeDup(fd)
	}
	if m.zc && m.data != nil {
		unix.Munmap(m.data)
	}
	mm := m.mmsg
	*m = message{}
	m.mmsg = mm
}

// handleSendto decides sendto(fd, buf, len, flags, addr, addrlen) with an
// address (the filter traps no other). Linux checks (net/socket.c
// __sys_sendto): the buffer's range (EFAULT), the fd (EBADF, ENOTSOCK), then
// addrlen (EINVAL) and the copy of addr (EFAULT), then the protocol.
func (s *Supervisor) handleSendto(c *call) outcome {
	args := &c.n.Data.Args
	c.fd = int32(args[0])
	buf, size := args[1], min(args[2], maxRWCount)
	c.sendFlags = int(uint32(args[3]))
	alen := int32(args[5])
	if !accessOK(buf, size) {
		return ret(unix.EFAULT)
	}
	if o, ok := s.takeFD(c, true); !ok {
		return o
	}
	if c.notSock {
		return ret(unix.ENOTSOCK)
	}
	if alen < 0 || alen > sockaddrStorage {
		return ret(unix.EINVAL)
	}
	c.alen = int(alen)
	c.msg.viaSendto = true
	c.msg.one[0] = span{buf, size}
	c.msg.spans = c.msg.one[:]
	c.msg.total = size
	if size > 0 && size <= maxSend && c.sendFlags&unix.MSG_ZEROCOPY == 0 {
		// The address and the data in one read (see read2). A fault in the
		// data is reported where readPiece would have found it.
		c.msg.data = c.msg.buffer(size)
		errAddr, errData := s.tracees.read2(c.n.Pid, args[4], c.addr[:c.alen], buf, c.msg.data)
		if errAddr != nil {
			return ret(unix.EFAULT)
		}
		c.msg.pre, c.msg.preErr = true, errData
		return s.sendMessage(c)
	}
	if err := s.tracees.read(c.n.Pid, args[4], c.addr[:c.alen]); err != nil {
		return ret(unix.EFAULT)
	}
	return s.sendMessage(c)
}

// accessOK is the kernel's access_ok: the range lies in user space.
func accessOK(base, n uint64) bool {
	return base+n >= base && base+n <= userSpaceEnd
}

// sendMessage decides and performs a send whose address (c.addr), data
// spans and control messages have been read. What is left to check in the
// kernel's order: the data (EMSGSIZE, EFAULT), the SCM_RIGHTS descriptors
// (EBADF), then the protocol's own checks, which the kernel makes when the
// supervisor sends.
func (s *Supervisor) sendMessage(c *call) outcome {
	if c.typ != unix.SOCK_STREAM && c.msg.total > maxSend {
		return ret(unix.EMSGSIZE)
	}
	if err := s.readPiece(c); err != nil {
		return ret(unix.EFAULT)
	}
	if c.domain == unix.AF_UNIX || c.domain == unix.AF_NETLINK {
		if e := s.checkControl(c); e != 0 {
			return ret(e)
		}
	}
	if e := s.netlinkPayload(c); e != 0 { // descriptors and pids in rtnetlink requests
		return ret(e)
	}
	if !s.lis.Valid(c.n.ID) {
		return gone
	}
	s.decodeSend(c)
	c.req.Op, c.req.PID = netstack.OpSend, int(c.n.Pid)
	if refuseRouting(c) {
		return ret(unix.EPERM)
	}
	if c.alen == 0 || !addressUsed(c.typ, c.sendFlags) || !c.hasDest() {
		// No address, or one the kernel ignores here (a stream socket
		// without MSG_FASTOPEN, a seqpacket socket) or rejects itself.
		return s.send(c)
	}
	if c.isUnixPath() {
		// The lookup, and the send to the object found, can block on a
		// file system (see waits.go).
		if o, ok := s.openUnixTarget(c); !ok {
			return o
		}
		if !s.stillWanted(c) {
			return gone
		}
	}
	return s.decideSend(c)
}

// decideSend decides a send to an address the kernel will use, and acts.
func (s *Supervisor) decideSend(c *call) outcome {
	if o, ok := s.landlockSend(c); !ok { // the caller's own Landlock scope
		return o
	}
	s.decide(c)
	switch c.dec.Action {
	case netstack.Allow:
		if fr, ok := s.toResolverFront(c); ok {
			s.toFaultRelay(c, fr)
			return s.send(c)
		}
		// A lookup denied by toResolverFront: c.dec is its denial.
	case netstack.Redirect:
		b, ok := redirectSockaddr(c.domain, c.dec.Redirect)
		if !ok {
			return ret(unix.EAFNOSUPPORT)
		}
		c.alen = copy(c.addr[:], b)
		return s.send(c)
	}
	inet := c.domain == unix.AF_INET || c.domain == unix.AF_INET6
	if inet && c.typ == unix.SOCK_DGRAM && (c.dec.Action == netstack.Refuse || c.dec.Action == netstack.Timeout) {
		// A datagram to a closed port or a silent host leaves as usual;
		// only the sink sees it.
		if sink := s.sinkFor(c, true, c.dec.Action == netstack.Timeout); sink != nil {
			c.unix = nil
			c.alen = copy(c.addr[:], sink)
			return s.send(c)
		}
	}
	if c.dec.Action == netstack.Timeout && c.typ == unix.SOCK_DGRAM {
		return outcome{val: int64(c.msg.total)} // a datagram nobody reads
	}
	return ret(errnoOn(c.dec, c.domain))
}

// addressUsed reports whether a send's address decides where data goes.
func addressUsed(typ, flags int) bool {
	switch typ {
	case unix.SOCK_DGRAM, unix.SOCK_RAW, unix.SOCK_RDM:
		return true
	case unix.SOCK_STREAM:
		return flags&unix.MSG_FASTOPEN != 0 // Fast Open connects to it
	}
	return false
}

// readPiece copies the next piece of the caller's data: all of it for a
// datagram, at most maxSend bytes of a stream.
func (s *Supervisor) readPiece(c *call) error {
	m := &c.msg
	if m.pre {
		// The whole message was read with its address (handleSendto).
		m.pre = false
		if m.preErr != nil {
			return m.preErr
		}
		m.off, m.at = m.total, 0
		return nil
	}
	if m.zc && m.data != nil {
		unix.Munmap(m.data)
	}
	n := min(m.total-m.off, maxSend)
	if c.sendFlags&unix.MSG_ZEROCOPY != 0 && n > 0 {
		b, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return err
		}
		m.data, m.zc = b, true
	} else if uint64(cap(m.data)) >= n && !m.zc {
		m.data = m.data[:n]
	} else {
		m.data, m.zc = m.buffer(n), false
	}
	// Walk the spans to the piece's start, then copy span by span.
	at, done := uint64(0), uint64(0)
	for _, sp := range m.spans {
		if done == n {
			break
		}
		if at+sp.len <= m.off {
			at += sp.len
			continue
		}
		skip := max(m.off, at) - at
		k := min(sp.len-skip, n-done)
		if err := s.tracees.read(c.n.Pid, sp.base+skip, m.data[done:done+k]); err != nil {
			return err
		}
		done += k
		at += sp.len
	}
	m.off += n
	m.at = 0
	return nil
}

// send performs the caller's send with the supervisor's copies. It never
// blocks: a blocking caller whose socket is full (or, with MSG_FASTOPEN,
// still connecting) waits in the waiter, as it would in the kernel.
func (s *Supervisor) send(c *call) outcome {
	o := s.sendOnce(c)
	if (o.errno == unix.EAGAIN || o.errno == unix.EINPROGRESS) && c.blockingSend() {
		if c.parked {
			return o // resumed by the waiter, which parks it again
		}
		c.parked = true
		if c.retry == nil {
			c.retry = (*Supervisor).sendOnce
		}
		if c.domain == unix.AF_UNIX {
			// A Unix sender polls writable while its peer's queue is full:
			// no event says when there is room, so retry with a backoff.
			return s.waiter.retryLater(c)
		}
		return s.waiter.waitConnected(c, unix.EAGAIN)
	}
	return o
}

// blockingSend reports whether the send may wait for room, as the kernel's
// would (sock_sndtimeo with the file's O_NONBLOCK and MSG_DONTWAIT).
func (c *call) blockingSend() bool {
	return c.sendFlags&unix.MSG_DONTWAIT == 0 && !c.noWait && c.fileFlags()&unix.O_NONBLOCK == 0
}

// fileFlags returns the file status flags of the caller's open file
// description, read when first needed: a send needs them only once the
// socket is full (and a stream send under a killable listener), so a
// datagram send that leaves at once pays no F_GETFL. Natively sock_sendmsg
// reads O_NONBLOCK as the call starts; a program's fcntl racing with its
// own send may land on either side of it, here as there.
func (c *call) fileFlags() int {
	if !c.flagsRead {
		f, e := rawFcntl(c.sock, unix.F_GETFL, 0)
		if e != 0 {
			f = unix.O_NONBLOCK // our own duplicate failed: never wait on it
		}
		c.flags, c.flagsRead = f, true
	}
	return c.flags
}

// sendOnce sends what is left of the message, without blocking.
//
// A blocking stream send goes on until all of it has left, as Linux's does:
// when the socket fills up part-way, the call parks with its progress
// (EAGAIN to send) and the waiter resumes it once there is room. That is
// sound only with a killable listener (see interrupt.go): a signal then
// cannot tear the call down after some of its bytes have left, and the
// waiter answers the count, as Linux would. Without one, a torn-down call
// would be restarted and send those bytes again, so the call is answered
// with the count as soon as the socket fills (a short count: documented).
func (s *Supervisor) sendOnce(c *call) outcome {
	m := &c.msg
	wait := s.lis.Killable && c.typ == unix.SOCK_STREAM && c.blockingSend()
	for {
		n, e := s.sendPiece(c)
		if e != 0 {
			if e == unix.EAGAIN && m.sent > 0 && wait {
				return ret(unix.EAGAIN) // full: park with the progress kept
			}
			if m.sent > 0 {
				return outcome{val: int64(m.sent)}
			}
			if e == unix.EPIPE && c.sendFlags&unix.MSG_NOSIGNAL == 0 {
				s.sigpipe(c)
			}
			return ret(e)
		}
		m.control = nil // descriptors and options travel with the first piece
		m.sent += uint64(n)
		m.at += n
		if c.typ != unix.SOCK_STREAM {
			return outcome{val: int64(n)}
		}
		if m.at < len(m.data) {
			// The socket filled up part-way through the piece.
			if wait {
				return ret(unix.EAGAIN)
			}
			return outcome{val: int64(m.sent)}
		}
		if m.off >= m.total {
			return outcome{val: int64(m.sent)}
		}
		if err := s.readPiece(c); err != nil {
			return outcome{val: int64(m.sent)}
		}
	}
}

// sendPiece sends the current piece once, as the caller where the kernel
// checks the sending task (see sendsAsCaller), and with exactly the
// credentials the kernel would attach for the caller (see pieceControl).
func (s *Supervisor) sendPiece(c *call) (int, unix.Errno) {
	addr := c.addr[:c.alen]
	if c.unix != nil {
		addr = c.unix.addr
	}
	// MSG_NOSIGNAL: a broken pipe must not signal the supervisor; the
	// caller gets its SIGPIPE in sendOnce, as it would natively.
	flags := c.sendFlags | unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL
	asCaller, differ, extra := s.sendsAsCaller(c)
	control, fits := s.pieceControl(c, !asCaller || extra != 0)
	if !fits {
		// No room to name the caller: as the caller, the kernel attaches
		// its uid and gid itself (and the supervisor's pid).
		asCaller, extra = true, 0
	}
	if differ && !asCaller && c.unix != nil && c.msg.sent == 0 {
		// unix_find_bsd's write permission on the socket file, checked as
		// the caller; the send itself then names the caller.
		if e := s.asCaller(c, func(t *credThread) unix.Errno { return t.mayWrite(c.unix.obj) }); e != 0 {
			return 0, e
		}
	}
	data := c.msg.data[c.msg.at:]
	if asCaller {
		return s.sendPieceAsCaller(c, extra, addr, data, control, flags)
	}
	return sendNow(c, addr, data, control, flags)
}

// sendPieceAsCaller is sendPiece's send on a thread with the caller's
// credentials. Apart, so that the closure and what it captures are
// allocated only for such sends.
func (s *Supervisor) sendPieceAsCaller(c *call, extra uint64, addr, data, control []byte, flags int) (int, unix.Errno) {
	var n int
	e := s.asCallerWith(c, extra, func(t *credThread) unix.Errno { // EACCES, without sending, if it cannot become the caller
		var e unix.Errno
		n, e = sendNowAs(t, c, addr, data, control, flags)
		return e
	})
	return n, e
}

// sendNow makes the send system call itself.
func sendNow(c *call, addr, data, control []byte, flags int) (int, unix.Errno) {
	if c.unix == nil && c.msg.viaSendto && len(control) == 0 {
		return sockSendto(c.sock, addr, data, flags)
	}
	return sockSendmsg(c.sock, addr, data, control, flags) // a Unix path's is /proc/self/fd/N
}

// sendNowAs is sendNow with t's credentials (asCaller).
func sendNowAs(t *credThread, c *call, addr, data, control []byte, flags int) (int, unix.Errno) {
	if c.unix == nil && c.msg.viaSendto && len(control) == 0 {
		return t.sendto(c.sock, addr, data, flags)
	}
	return t.sendmsg(c.sock, addr, data, control, flags)
}

// sigpipe gives the caller the SIGPIPE that Linux sends with EPIPE. Linux
// queues it before the call returns. With a killable listener it is sent
// before the answer too, exactly as Linux. Otherwise a signal that arrives
// while the notification is pending tears it down, and a handler would run
// and the call restart (or fail with EINTR). So, without one:
//   - ignored: nothing to send;
//   - blocked, or default (fatal): sent before the answer, exactly as Linux
//     (it stays pending, or the process dies without seeing EPIPE);
//   - caught: sent just after the answer, so the handler runs right after
//     the call returns EPIPE rather than right before (documented).
func (s *Supervisor) sigpipe(c *call) {
	st, err := c.liveStatus()
	if err != nil {
		return
	}
	const bit = 1 << (unix.SIGPIPE - 1)
	kill := func() { unix.Tgkill(st.Tgid, int(c.n.Pid), unix.SIGPIPE) }
	switch {
	case st.SigIgn&bit != 0:
	case s.lis.Killable || st.SigBlk&bit != 0 || st.SigCgt&bit == 0:
		// A killable listener holds the call: the signal is pending
		// when it returns EPIPE, as natively.
		kill()
	default:
		c.afterAnswer = kill
	}
}
