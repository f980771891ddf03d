package sentry

import (
	"encoding/binary"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// sendmsg and sendmmsg are trapped whole: their address sits behind the
// msghdr pointer, which a seccomp filter cannot follow. Answering CONTINUE
// after reading msg_name would let another thread change it before the
// kernel reads it again, so the supervisor performs every call itself, with
// address, data and control messages copied once.

const (
	uioMaxIOV     = 1024       // UIO_MAXIOV: the most iovecs, and sendmmsg's most messages
	scmMaxFD      = 253        // SCM_MAX_FD: the most descriptors one message passes
	msgCmsgCompat = 0x80000000 // MSG_CMSG_COMPAT: refused from 64-bit callers
	sizeofMsghdr  = 56         // struct user_msghdr on x86_64
	sizeofMmsghdr = 64         // struct mmsghdr: a msghdr and msg_len, padded
	// ctlOnStack is the control length ____sys_sendmsg copies without
	// sock_kmalloc: only longer buffers can fail with ENOBUFS.
	ctlOnStack = unix.SizeofCmsghdr + 20
)

// handleSendmsg decides sendmsg(fd, msg, flags). Linux checks
// (net/socket.c __sys_sendmsg): MSG_CMSG_COMPAT (EINVAL), the fd (EBADF,
// ENOTSOCK), then the msghdr (see readMsghdr), then the protocol.
func (s *Supervisor) handleSendmsg(c *call) outcome {
	args := &c.n.Data.Args
	if o, ok := s.takeSendmsgSocket(c, args[0], args[2]); !ok {
		return o
	}
	if e := s.readMsghdr(c, args[1]); e != 0 {
		return ret(e)
	}
	return s.sendMessage(c)
}

// takeSendmsgSocket makes the checks sendmsg and sendmmsg share, in their
// order: MSG_CMSG_COMPAT (EINVAL), then the fd (EBADF, ENOTSOCK).
func (s *Supervisor) takeSendmsgSocket(c *call, fd, flags uint64) (outcome, bool) {
	if uint32(flags)&msgCmsgCompat != 0 {
		return ret(unix.EINVAL), false
	}
	c.fd = int32(fd)
	c.sendFlags = int(uint32(flags))
	if o, ok := s.takeFD(c, true); !ok {
		return o, false
	}
	if c.notSock {
		return ret(unix.ENOTSOCK), false
	}
	return outcome{}, true
}

// readMsghdr copies the msghdr at addr and what it points to, with the
// errors of copy_msghdr_from_user, import_iovec and ____sys_sendmsg in
// their order: the msghdr (EFAULT), msg_namelen (EINVAL when negative;
// clamped to sockaddr_storage), the name (EFAULT), msg_iovlen (EMSGSIZE),
// the iovec array (EFAULT, then EINVAL for a negative length, then EFAULT
// for a range outside user space), msg_controllen (ENOBUFS), the control
// buffer (EFAULT).
func (s *Supervisor) readMsghdr(c *call, addr uint64) unix.Errno {
	var h [sizeofMsghdr]byte
	if s.tracees.read(c.n.Pid, addr, h[:]) != nil {
		return unix.EFAULT
	}
	le := binary.LittleEndian
	name, namelen := le.Uint64(h[0:]), int32(le.Uint32(h[8:]))
	iov, iovlen := le.Uint64(h[16:]), le.Uint64(h[24:])
	ctl, ctllen := le.Uint64(h[32:]), le.Uint64(h[40:])
	if name == 0 {
		namelen = 0
	}
	if namelen < 0 {
		return unix.EINVAL
	}
	c.alen = int(min(namelen, sockaddrStorage))
	if c.alen > 0 && iovlen > 0 && iovlen <= uioMaxIOV {
		// The name and the iovec array in one read (see read2), with their
		// faults in the order of the two copies.
		raw := c.msg.iovecBuffer(int(iovlen))
		errName, errIov := s.tracees.read2(c.n.Pid, name, c.addr[:c.alen], iov, raw)
		if errName != nil {
			return unix.EFAULT
		}
		if errIov != nil {
			return unix.EFAULT
		}
		if e := c.msg.setIovecs(raw, int(iovlen)); e != 0 {
			return e
		}
	} else {
		if s.tracees.read(c.n.Pid, name, c.addr[:c.alen]) != nil {
			return unix.EFAULT
		}
		if iovlen > uioMaxIOV {
			return unix.EMSGSIZE
		}
		if e := s.readIovecs(c, iov, int(iovlen)); e != 0 {
			return e
		}
	}
	if ctllen > 1<<31-1 || ctllen > ctlOnStack && ctllen >= s.optmemMax {
		return unix.ENOBUFS
	}
	if ctllen > 0 {
		c.msg.control = make([]byte, ctllen)
		if s.tracees.read(c.n.Pid, ctl, c.msg.control) != nil {
			return unix.EFAULT
		}
	}
	return 0
}

// readIovecs copies n iovecs at addr into c.msg.spans, as import_iovec
// checks them. One iovec is clamped before its range is checked, several
// after (__import_iovec_ubuf and __import_iovec differ here).
func (s *Supervisor) readIovecs(c *call, addr uint64, n int) unix.Errno {
	m := &c.msg
	if n == 0 {
		m.spans = nil
		return 0
	}
	raw := m.iovecBuffer(n)
	if s.tracees.read(c.n.Pid, addr, raw) != nil {
		return unix.EFAULT
	}
	return m.setIovecs(raw, n)
}

// iovecBuffer returns room for the copy of n iovecs: the call's own for
// one, the usual case.
func (m *message) iovecBuffer(n int) []byte {
	if n == 1 {
		return m.iov[:]
	}
	return make([]byte, 16*n)
}

// setIovecs takes the n iovecs copied into raw, as import_iovec checks them.
func (m *message) setIovecs(raw []byte, n int) unix.Errno {
	if n == 1 {
		m.spans = m.one[:]
	} else {
		m.spans = make([]span, n)
	}
	for i := range m.spans {
		base, l := binary.LittleEndian.Uint64(raw[16*i:]), binary.LittleEndian.Uint64(raw[16*i+8:])
		if int64(l) < 0 {
			return unix.EINVAL
		}
		m.spans[i] = span{base, l}
	}
	m.total = 0
	for i, sp := range m.spans {
		if n == 1 {
			sp.len = min(sp.len, maxRWCount)
		}
		if !accessOK(sp.base, sp.len) {
			return unix.EFAULT
		}
		sp.len = min(sp.len, maxRWCount-m.total)
		m.spans[i] = sp
		m.total += sp.len
	}
	return 0
}

// mmsgState is sendmmsg's progress through its vector.
type mmsgState struct {
	base  uint64 // the caller's mmsghdr array
	vlen  int
	i     int        // the message being sent
	count int        // messages sent and counted
	err   unix.Errno // what stopped the loop
}

// handleSendmmsg decides sendmmsg(fd, msgvec, vlen, flags): each message is
// one sendmsg, and the result is the number sent, or the first message's
// error (net/socket.c __sys_sendmmsg).
func (s *Supervisor) handleSendmmsg(c *call) outcome {
	args := &c.n.Data.Args
	if o, ok := s.takeSendmsgSocket(c, args[0], args[3]); !ok {
		return o
	}
	c.msg.mmsg = mmsgState{base: args[1], vlen: int(min(uint32(args[2]), uioMaxIOV))}
	c.mm = &c.msg.mmsg                 // in the call: no allocation
	c.retry = (*Supervisor).mmsgResume // what a first message that waited goes on with
	return s.mmsgLoop(c)
}

// mmsgLoop sends messages from c.mm.i on. Only the first may wait for room
// (see sendOnce's invariant): once one has left, a full socket ends the
// call with the count.
func (s *Supervisor) mmsgLoop(c *call) outcome {
	m := c.mm
	for ; m.i < m.vlen; m.i++ {
		if m.i > 0 {
			c.resetMessage()
		}
		// Without a killable listener, a message that waited could be
		// torn down after earlier ones left (see sendOnce).
		c.noWait = m.count > 0 && !s.lis.Killable
		var o outcome
		if e := s.readMsghdr(c, m.base+uint64(m.i)*sizeofMmsghdr); e != 0 {
			o = ret(e)
		} else {
			o = s.sendMessage(c)
		}
		if o.pending || o.gone || c.parked && c.blockingSend() && (o.errno == unix.EAGAIN || o.errno == unix.EINPROGRESS) {
			return o // parked, or still waiting for room (resumed by the waiter)
		}
		if !s.mmsgDone(c, o) {
			break
		}
	}
	return m.result()
}

// mmsgResume finishes a first message that waited for room, then goes on.
func (s *Supervisor) mmsgResume(c *call) outcome {
	// On the waiter's goroutine, which takes no pending outcome: a later
	// message's Unix path is resolved right here.
	o := s.sendOnce(c)
	if o.errno == unix.EAGAIN || o.errno == unix.EINPROGRESS {
		return o // still no room: the waiter tries again
	}
	if !s.mmsgDone(c, o) {
		return c.mm.result()
	}
	c.mm.i++
	return s.mmsgLoop(c)
}

// mmsgDone accounts for message i's outcome o and reports whether to go
// on. Like the kernel, it writes msg_len back, and a message whose
// msg_len cannot be written is sent but not counted.
func (s *Supervisor) mmsgDone(c *call, o outcome) bool {
	m := c.mm
	if o.errno != 0 {
		m.err = o.errno
		return false
	}
	var l [4]byte
	binary.LittleEndian.PutUint32(l[:], uint32(o.val))
	if s.tracees.write(c.n.Pid, m.base+uint64(m.i)*sizeofMmsghdr+sizeofMsghdr, l[:]) != nil {
		m.err = unix.EFAULT
		return false
	}
	m.count++
	if c.decided && m.i < m.vlen-1 {
		s.log.record(c, o) // the call's own record carries the last message
	}
	return true
}

func (m *mmsgState) result() outcome {
	if m.count > 0 || m.err == 0 {
		return outcome{val: int64(m.count)}
	}
	return ret(m.err)
}

// resetMessage clears one message's state for the next (sendmmsg).
func (c *call) resetMessage() {
	c.msg.release()
	if c.unix != nil {
		c.unix.close()
		c.unix = nil
	}
	c.alen, c.decided, c.dec = 0, false, netstack.Decision{}
	c.st = nil
}

// passRights replaces the descriptor numbers of SCM_RIGHTS messages in the
// supervisor's copy of the control buffer with its own duplicates of the
// same open files (pidfd_getfd takes O_PATH files, as scm_fp_copy's
// fget_raw does). The buffer is walked as __scm_send walks it; where the
// kernel will answer EINVAL (a malformed header, more than SCM_MAX_FD
// descriptors) the rest is left as it is for the kernel to refuse.
func (s *Supervisor) passRights(c *call) unix.Errno {
	b := c.msg.control
	total := 0
	var e unix.Errno
	walkCmsgs(b, func(off int, h *unix.Cmsghdr) bool {
		if h.Level != unix.SOL_SOCKET || h.Type != unix.SCM_RIGHTS {
			return true
		}
		n := max((int(h.Len)-unix.SizeofCmsghdr)/4, 0)
		if total+n > scmMaxFD {
			return false
		}
		total += n
		for i := range n {
			p := b[off+unix.SizeofCmsghdr+4*i:]
			dup, err := s.tracees.getfd(c.n.Pid, int32(binary.LittleEndian.Uint32(p)))
			if err != nil {
				e = unix.EBADF
				if err != unix.EBADF {
					// Not the caller's error: the supervisor's (EMFILE...).
					s.log.internal(c, "pidfd_getfd (SCM_RIGHTS)", err)
					e = c.resourceErrno()
				}
				return false
			}
			c.msg.passed = append(c.msg.passed, dup)
			binary.LittleEndian.PutUint32(p, uint32(dup))
		}
		return true
	})
	return e
}

// refuseRouting refuses an inet send whose control messages reroute it:
// an IPv6 routing header (IPV6_RTHDR, IPV6_2292RTHDR: ip6_datagram_send_ctl
// sends the packet to the header's first hop) or IPv4 options (IP_RETOPTS:
// ip_cmsg_send, a source route's first hop in udp_sendmsg and
// raw_sendmsg). The wire destination must be the decided one. EPERM, as a
// missing privilege would give. IPV6_NEXTHOP is no control message of
// ip6_datagram_send_ctl (EINVAL), so it is left to the kernel.
func refuseRouting(c *call) bool {
	if c.domain != unix.AF_INET && c.domain != unix.AF_INET6 || c.typ == unix.SOCK_STREAM {
		return false // ignored: other families and TCP read SOL_SOCKET only (__scm_send, sock_cmsg_send)
	}
	rule := ""
	walkCmsgs(c.msg.control, func(_ int, h *unix.Cmsghdr) bool {
		switch {
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_RTHDR:
			rule = "IPV6_RTHDR"
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_2292RTHDR:
			rule = "IPV6_2292RTHDR"
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_RETOPTS:
			rule = "IP_RETOPTS"
		}
		return rule == ""
	})
	if rule == "" {
		return false
	}
	c.decided = true
	c.dec = netstack.Decision{Action: netstack.Deny, Reason: netstack.ReasonPerm,
		Rule: "control message " + rule + " reroutes packets"}
	return true
}

// walkCmsgs calls fn for each control message header in b, in the order
// and with the bounds of the kernel's for_each_cmsghdr and CMSG_OK: it stops
// at the first malformed header (the kernel answers EINVAL there), or when
// fn returns false. It reports whether the whole buffer was well formed.
//
// Invariant: fn is only called with a header whose cmsg_len lies within b
// from off.
func walkCmsgs(b []byte, fn func(off int, h *unix.Cmsghdr) bool) bool {
	for off := 0; off+unix.SizeofCmsghdr <= len(b); {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[off]))
		if h.Len < unix.SizeofCmsghdr || h.Len > uint64(len(b)-off) {
			return false
		}
		if !fn(off, h) {
			return true
		}
		off += cmsgAlign(int(h.Len))
	}
	return true
}

func cmsgAlign(n int) int { return (n + 7) &^ 7 }

// withCallerCreds returns control with cmsg (an SCM_CREDENTIALS naming the
// caller) appended where the kernel's for_each_cmsghdr will find it: after
// the last well-formed header, dropping trailing bytes too short for a
// header, which the kernel ignores. A malformed buffer is returned as it
// is (the kernel refuses it). fits is false when the result would pass
// optmem_max, where the kernel's sock_kmalloc of the control buffer fails.
func (s *Supervisor) withCallerCreds(control, cmsg []byte) (out []byte, fits bool) {
	end := 0
	ok := walkCmsgs(control, func(off int, h *unix.Cmsghdr) bool {
		end = off + cmsgAlign(int(h.Len))
		return true
	})
	if !ok {
		return control, true
	}
	if uint64(end+len(cmsg)) >= s.optmemMax {
		return control, false
	}
	out = make([]byte, end+len(cmsg))
	copy(out, control[:min(end, len(control))])
	copy(out[end:], cmsg)
	return out, true
}

// pieceControl is the control buffer of the current piece. For a Unix
// socket it carries the caller's own SCM_CREDENTIALS (checked and
// translated by checkCreds; every piece of a stream carries it, as every
// skb does), or else, when unix_maybe_add_creds would attach the sender's
// credentials, an SCM_CREDENTIALS naming the caller (pid, real uid and
// gid). Naming another process needs CAP_SYS_ADMIN (speaksFor) in the
// sending thread (mayName); without it the pids name the supervisor, and
// the kernel attaches the supervisor's pid (the documented divergence).
func (s *Supervisor) pieceControl(c *call, mayName bool) ([]byte, bool) {
	m := &c.msg
	control := m.control // nil after the first piece
	canName := s.speaksFor && mayName
	if c.domain != unix.AF_UNIX && (c.domain != unix.AF_NETLINK || m.ucred == nil) {
		return control, true // credentials are added to Unix sends only
	}
	if m.ucred != nil {
		if control == nil {
			control = credsCmsg(*m.ucred)
		}
		if !canName {
			setCredPids(control, int32(os.Getpid()))
		}
		return control, true
	}
	if !m.namedSet {
		m.namedSet = true
		if canName && s.credsWanted(c) {
			st, err := c.callerStatus()
			if err != nil {
				return control, false // unknown caller: as the caller, or EACCES
			}
			m.named = credsCmsg(unix.Ucred{Pid: int32(st.Tgid), Uid: st.Uid[0], Gid: st.Gid[0]})
		}
	}
	if m.named == nil {
		return control, true
	}
	return s.withCallerCreds(control, m.named)
}

// sendsAsCaller reports whether the send must run on a thread with the
// caller's credentials (asCaller), and whether they differ from the
// supervisor's at all. The kernel checks the sending task's capabilities
// in every netlink send (netlink_ns_capable, and with an explicit
// destination __netlink_ns_capable checks nothing else), in the control
// messages of inet sends (__sock_cmsg_send's SO_MARK and SO_PRIORITY,
// ip_cmsg_send, ip6_datagram_send_ctl) and, for Unix sockets, in
// SCM_RIGHTS (too_many_unix_fds charges current_user()) and in the uid and
// gid it attaches itself (unix_maybe_add_creds), which only a supervisor
// without CAP_SYS_ADMIN leaves to it. An SCM_RIGHTS send that must also name the caller runs as
// the caller plus CAP_SYS_ADMIN (extra), which scm_check_creds needs to
// name another process; too_many_unix_fds then lets it pass (documented).
// Other families run as the caller whenever credentials differ.
func (s *Supervisor) sendsAsCaller(c *call) (asCaller, differ bool, extra uint64) {
	if (c.domain == unix.AF_INET || c.domain == unix.AF_INET6) && len(c.msg.control) == 0 {
		// Nothing in an inet send without control messages is checked
		// against the sending task: no need to know who the caller is.
		return false, false, 0
	}
	st, err := c.callerStatus()
	if err == nil && sameCreds(st, s.self) {
		return false, false, 0
	}
	switch c.domain {
	case unix.AF_UNIX:
		if !s.speaksFor {
			// The kernel attaches the sending thread's uid and gid: the
			// caller's thread only when it will.
			return hasRights(c.msg.control) || c.msg.ucred == nil && s.credsWanted(c), true, 0
		}
		if !hasRights(c.msg.control) {
			return false, true, 0
		}
		if c.msg.ucred != nil || s.credsWanted(c) {
			return true, true, 1 << unix.CAP_SYS_ADMIN
		}
		return true, true, 0
	case unix.AF_INET, unix.AF_INET6:
		return len(c.msg.control) > 0, true, 0
	}
	return true, true, 0
}

// credsWanted is unixCredsWanted, decided once per send (a stream send's
// pieces share it).
func (s *Supervisor) credsWanted(c *call) bool {
	m := &c.msg
	if m.wantedSet {
		return m.wanted
	}
	m.wanted, m.wantedSet = s.unixCredsWanted(c), true
	return m.wanted
}

// hasRights reports whether control carries an SCM_RIGHTS message.
func hasRights(control []byte) bool {
	found := false
	walkCmsgs(control, func(_ int, h *unix.Cmsghdr) bool {
		found = h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS
		return !found
	})
	return found
}

// callerMayWrite is the write permission check unix_find_bsd makes on a
// socket file (path_permission MAY_WRITE), for the calling thread's
// effective ids and capabilities.
func callerMayWrite(obj int) unix.Errno {
	if err := unix.Faccessat2(obj, "", unix.W_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS); err != nil {
		if e, ok := err.(unix.Errno); ok {
			return e
		}
		return unix.EACCES
	}
	return 0
}
