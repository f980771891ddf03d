package sentry

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// handleConnect decides connect(fd, addr, addrlen).
//
// Linux checks, in this order (net/socket.c __sys_connect):
//  1. fd: EBADF, O_PATH descriptors included;
//  2. addrlen: EINVAL when negative or larger than sockaddr_storage;
//  3. the copy of addr: EFAULT;
//  4. the file is a socket: ENOTSOCK;
//  5. the family's own checks, then the connection itself.
//
// Steps 1-4 are reproduced here; step 5 is left to the kernel when the
// supervisor performs the connect itself on the caller's socket.
func (s *Supervisor) handleConnect(c *call) outcome {
	args := &c.n.Data.Args
	// The kernel takes fd and addrlen as int: the upper 32 bits are ignored.
	c.fd = int32(args[0])
	alen := int32(args[2])

	// A connect is usually a socket's only call: the cache of socket
	// identities would only add its SO_COOKIE.
	if o, ok := s.takeFD(c, false); !ok {
		return o
	}
	if alen < 0 || alen > sockaddrStorage {
		return ret(unix.EINVAL)
	}
	c.alen = int(alen)
	if err := s.tracees.read(c.n.Pid, args[1], c.addr[:c.alen]); err != nil {
		return ret(unix.EFAULT)
	}
	// Memory was read: from here on, everything hinges on the notification
	// still being the one we read for (the pid may have been reused).
	if !s.lis.Valid(c.n.ID) {
		return gone
	}
	if o, ok := s.identifySocket(c); !ok {
		return o
	}
	if c.isUnixPath() {
		// Decide on the object actually opened, not on the path's text.
		// The lookup can block on a file system (see waits.go).
		if o, ok := s.openUnixTarget(c); !ok {
			return o
		}
		if !s.stillWanted(c) {
			return gone
		}
	}
	return s.decideConnect(c)
}

// decideConnect decides a connect whose address is decoded, and acts.
func (s *Supervisor) decideConnect(c *call) outcome {
	if o, ok := s.landlockConnect(c); !ok { // the caller's own Landlock layers
		return o
	}
	// After the LSM hook; then __inet_stream_connect: a short address (EINVAL) and AF_UNSPEC come
	// before the socket's state.
	if c.typ == unix.SOCK_STREAM && c.alen >= 2 && c.req.Family != netstack.FamilyUnspec && s.marks.has(c) {
		return ret(unix.EISCONN) // connected natively; see settle
	}
	if !c.hasDest() {
		// No destination: the kernel rejects the address itself.
		return s.connectAllowed(c)
	}
	s.decide(c)
	if c.dec.Action == netstack.Allow {
		if fr, ok := s.toResolverFront(c); ok {
			s.toFaultRelay(c, fr)
			return s.connectAllowed(c)
		}
	}
	return s.act(c) // also a lookup denied by toResolverFront
}

// takeFD duplicates the caller's fd into the supervisor (pidfd_getfd) and
// identifies the socket (its family and type, from the kernel's socket:
// see sockIDs), which also tells an O_PATH descriptor (EBADF,
// as Linux) and a non-socket (ENOTSOCK, which Linux reports only after the
// address checks: kept in c.notSock).
func (s *Supervisor) takeFD(c *call, cached bool) (outcome, bool) {
	sock, err := s.tracees.getfd(c.n.Pid, c.fd)
	switch err {
	case nil:
	case unix.EBADF:
		return ret(unix.EBADF), false
	case unix.ESRCH:
		return gone, false
	case unix.EMFILE, unix.ENFILE, unix.ENOMEM:
		// The supervisor ran out of descriptors or memory: a documented,
		// retryable errno (EAGAIN for connect, ENOBUFS for sends), closed.
		s.log.internal(c, "pidfd_getfd", err)
		return ret(c.resourceErrno()), false
	default:
		// No right to the caller's descriptors (a non-dumpable caller under
		// an unprivileged supervisor, for instance): fail closed.
		s.log.internal(c, "pidfd_getfd", err)
		return ret(unix.EPERM), false
	}
	c.sock = sock
	var domain, typ int
	var cookie uint64
	var e unix.Errno
	if cached {
		domain, typ, cookie, e = s.socks.identify(sock)
	} else {
		domain, typ, e = identifySocketUncached(sock)
	}
	switch e {
	case 0:
		c.domain, c.typ, c.cookie = domain, typ, cookie
	case unix.EBADF: // an O_PATH descriptor is not open, for connect
		return ret(unix.EBADF), false
	case unix.ENOTSOCK:
		c.notSock = true
	default:
		return ret(e), false
	}
	return outcome{}, true
}

// identifySocket decodes the copied address for the socket's family and
// type (read by takeFD from the kernel's socket, never from tracee memory).
// Only a stream connect can block; its file flags, which say whether, are
// read when an allowed connect or a verdict needs them (fileFlags): a
// denial answers without them.
func (s *Supervisor) identifySocket(c *call) (outcome, bool) {
	if c.notSock {
		return ret(unix.ENOTSOCK), false
	}
	typ := c.typ
	if typ == unix.SOCK_DGRAM {
		c.flags, c.flagsRead = unix.O_NONBLOCK, true // never read: a datagram connect never blocks
	}
	c.req = decodeRequest(c.domain, typ, c.addr[:c.alen])
	c.req.PID = int(c.n.Pid)
	if s.topology && typ == unix.SOCK_DGRAM && (c.domain == unix.AF_INET || c.domain == unix.AF_INET6) {
		// A topology denies a subnet broadcast without SO_BROADCAST (EACCES).
		b, _ := unix.GetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_BROADCAST)
		c.req.Broadcast = b != 0
	}
	return outcome{}, true
}

// decodeRequest is decodeAddr for connect(2).
func decodeRequest(domain, typ int, a []byte) netstack.Request {
	return decodeAddr(domain, typ, 0, netstack.OpConnect, a)
}

// decodeAddr turns the copied address into a netstack request: the address
// as the kernel will read it for op on a socket of this domain, type and
// protocol. It is lenient on purpose: what the kernel would reject is
// rejected by the kernel; what it would use must be decoded here.
//
// An inet address is decoded only where the socket's family takes it: an
// AF_INET6 address on an AF_INET socket, or an AF_INET address on an IPv6
// TCP socket, is rejected by the kernel (EAFNOSUPPORT); IPv6 UDP sockets take
// AF_INET addresses (udpv6_sendmsg and ip6_datagram_connect hand them to the
// IPv4 code). AF_UNSPEC is read as unspecReading says.
func decodeAddr(domain, typ, proto int, op netstack.Op, a []byte) netstack.Request {
	r := netstack.Request{Op: op, Family: familyOf(domain), Type: typeOf(typ), Protocol: proto}
	if len(a) < 2 {
		return r
	}
	fam := binary.NativeEndian.Uint16(a)
	if fam == unix.AF_UNSPEC {
		switch f := unspecReading(domain, typ, proto, op); f {
		case unix.AF_UNSPEC:
			r.Family = netstack.FamilyUnspec
			return r
		case unix.AF_INET, unix.AF_INET6:
			fam = uint16(f)
		default:
			return r // other families are decided on the family alone
		}
	}
	if domain == unix.AF_INET && fam == unix.AF_INET6 ||
		domain == unix.AF_INET6 && fam == unix.AF_INET && typ != unix.SOCK_DGRAM {
		return r
	}
	switch fam {
	case unix.AF_INET:
		if len(a) >= unix.SizeofSockaddrInet4 {
			ip := netip.AddrFrom4([4]byte(a[4:8]))
			r.Addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(a[2:4]))
		}
	case unix.AF_INET6:
		// A 24-byte sockaddr_in6 (RFC 2133, no scope id) is accepted.
		if len(a) >= 24 {
			ip := netip.AddrFrom16([16]byte(a[8:24]))
			if len(a) >= unix.SizeofSockaddrInet6 {
				if scope := binary.NativeEndian.Uint32(a[24:28]); scope != 0 && ip.IsLinkLocalUnicast() {
					ip = ip.WithZone(strconv.FormatUint(uint64(scope), 10))
				}
			}
			r.Addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(a[2:4]))
		}
	case unix.AF_UNIX:
		if domain != unix.AF_UNIX {
			break
		}
		path := a[2:]
		if len(path) > 0 && path[0] == 0 {
			r.Unix = netstack.UnixAddr{Abstract: true, Name: string(path[1:])}
		} else if n := cstrlen(path); n > 0 {
			// Replaced by the resolved path once the object is opened.
			r.Unix = netstack.UnixAddr{Path: string(path[:n])}
		}
	}
	return r
}

// unspecReading says how the kernel reads an AF_UNSPEC address for op on a
// socket of this domain, type and protocol: AF_UNSPEC when it uses no
// address at all (a disconnect, the connected peer, or an error of its
// own), AF_INET or AF_INET6 when it reads the rest as such an address, and
// -1 for the other families, which are decided on the family alone.
//
// Where the kernel's reading is not known (a protocol not listed), the
// answer is an address: deciding is the closed failure.
func unspecReading(domain, typ, proto int, op netstack.Op) int {
	switch domain {
	case unix.AF_UNIX, unix.AF_NETLINK:
		// unix_dgram_connect and netlink_connect disconnect; the stream
		// connect and every send reject the family (unix_validate_addr,
		// netlink_sendmsg: EINVAL).
		return unix.AF_UNSPEC
	case unix.AF_INET, unix.AF_INET6:
	default:
		return -1
	}
	if op == netstack.OpConnect || typ == unix.SOCK_STREAM {
		// inet_stream_connect and inet_dgram_connect disconnect, and so does
		// a TCP or MPTCP Fast Open send (__inet_stream_connect).
		return unix.AF_UNSPEC
	}
	if domain == unix.AF_INET {
		if typ == unix.SOCK_DGRAM && proto == unix.IPPROTO_ICMP {
			return unix.AF_UNSPEC // ping_v4_sendmsg: EAFNOSUPPORT
		}
		// udp_sendmsg (UDP, UDP-Lite) and l2tp_ip_sendmsg accept AF_UNSPEC
		// as AF_INET; raw_sendmsg accepts a zero family.
		return unix.AF_INET
	}
	if typ == unix.SOCK_DGRAM {
		// udpv6_sendmsg drops the address (the connected peer is used);
		// ping_v6_sendmsg and l2tp_ip6_sendmsg answer EAFNOSUPPORT.
		return unix.AF_UNSPEC
	}
	return unix.AF_INET6 // rawv6_sendmsg accepts a zero family
}

func cstrlen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

func familyOf(domain int) netstack.Family {
	switch domain {
	case unix.AF_INET:
		return netstack.FamilyInet
	case unix.AF_INET6:
		return netstack.FamilyInet6
	case unix.AF_UNIX:
		return netstack.FamilyUnix
	}
	return netstack.FamilyOther
}

func typeOf(typ int) netstack.SockType {
	switch typ {
	case unix.SOCK_STREAM:
		return netstack.TypeStream
	case unix.SOCK_DGRAM:
		return netstack.TypeDgram
	case unix.SOCK_SEQPACKET:
		return netstack.TypeSeqpacket
	}
	return netstack.TypeOther
}

// decide asks the netstack, on the destination the kernel will use (see
// wireDests). A disconnect (AF_UNSPEC) names no destination and is always
// allowed; decodeAddr gives FamilyUnspec only where the kernel reads no
// address, and one that carries an address anyway is refused.
func (s *Supervisor) decide(c *call) {
	c.decided = true
	if c.req.Family == netstack.FamilyUnspec {
		c.dec = netstack.Decision{Action: netstack.Allow, Rule: "disconnect"}
		if c.req.Addr.IsValid() || c.req.Unix != (netstack.UnixAddr{}) {
			c.dec = netstack.Decision{Action: netstack.Deny, Rule: "AF_UNSPEC with an address"}
		}
		return
	}
	dests, ok := s.wireDests(c)
	if !ok {
		// The kernel's destination could not be worked out: fail closed.
		c.dec = netstack.Decision{Action: netstack.Deny, Rule: "unspecified destination not resolved"}
		return
	}
	if len(dests) == 0 {
		c.dec = s.decideOne(c)
		return
	}
	// Every destination the kernel may use must be allowed; the first that
	// is not decides, and is what the log shows.
	c.req.Written, c.req.Addr = c.req.Addr, dests[0]
	c.dec = s.decideOne(c)
	for _, a := range dests[1:] {
		if c.dec.Action != netstack.Allow {
			return
		}
		c.req.Addr = a
		c.dec = s.decideOne(c)
	}
	if c.dec.Action == netstack.Allow {
		c.req.Addr = dests[0]
	}
}

// decideOne decides c.req as it stands.
func (s *Supervisor) decideOne(c *call) netstack.Decision {
	s.nameRequest(c)
	d := s.decider.Decide(c.req)
	// Only the "self" default's denials carry a suggestion: the
	// destination may still be the tree's own socket, which the kernel can
	// tell.
	if d.Action == netstack.Deny && d.Suggest != "" && s.tree.owns(c) {
		d = netstack.Decision{Action: netstack.Allow, Rule: selfRule, Self: true}
	}
	// sandbox learn's default allows everything: whether the tree talked
	// to itself decides between a rule and "default: self".
	if s.cfg.TellSelf && d.Action == netstack.Allow && d.Rule == "" && !d.Self && c.req.Family != netstack.FamilyUnspec && s.tree.owns(c) {
		d = netstack.Decision{Action: netstack.Allow, Rule: selfRule, Self: true}
	}
	return d
}

// selfRule names an allow that rests on the destination's owner: the tree.
const selfRule = "self: the sandboxed tree's own socket"

// redecideRetry decides a parked Unix connect again before the waiter
// retries it, where the first decision may no longer hold: an abstract name
// allowed because the tree owned the socket bound to it. Each retry
// connects to the name afresh, as unix_stream_connect looks it up again
// after every wait (goto restart), and meanwhile the tree's listener may
// have closed and a process outside the tree bound the name. (A path was
// opened once, and every retry connects to that very socket.) It reports
// whether the call is still allowed; if not, c.dec says why (retryDenied).
// Datagram sends parked for room are retried by name too.
func (s *Supervisor) redecideRetry(c *call) bool {
	if c.dec.Rule != selfRule || c.unix != nil || c.req.Family != netstack.FamilyUnix {
		return true
	}
	s.decide(c)
	return c.dec.Action == netstack.Allow
}

// retryDenied is what a parked call decided again (redecideRetry) returns
// when it is no longer allowed: the denial's errno, or for a sendmmsg with
// messages already sent, their count (as __sys_sendmmsg returns).
func (s *Supervisor) retryDenied(c *call) outcome {
	o := ret(errnoOn(c.dec, c.domain))
	if c.mm != nil {
		s.mmsgDone(c, o)
		return c.mm.result()
	}
	return o
}

// connectAllowed performs the caller's connect on its own socket.
//
// A blocking connect must not hold the supervisor: the attempt is started
// with O_NONBLOCK set briefly on the shared open file description, and the
// waiter finishes it when the socket turns writable, exactly as the blocking
// path of inet_stream_connect would. See docs/design.md for why this was
// chosen over IORING_OP_CONNECT.
func (s *Supervisor) connectAllowed(c *call) outcome {
	if c.domain == unix.AF_NETLINK {
		s.netlinkAutobind(c)
	}
	if c.req.Family == netstack.FamilyUnspec {
		s.marks.remove(c) // a disconnect: SS_UNCONNECTED again
	}
	if c.req.Family != netstack.FamilyUnspec && s.canConnectDirect(c) {
		return s.connectDirect(c)
	}
	blocking := (c.typ == unix.SOCK_STREAM || c.typ == unix.SOCK_SEQPACKET) &&
		c.req.Family != netstack.FamilyUnspec && c.fileFlags()&unix.O_NONBLOCK == 0
	if !blocking {
		return ret(s.attempt(c, false))
	}
	if s.waiter.interrupted(c) {
		return ret(unix.EINTR)
	}
	e := s.attempt(c, true)
	switch {
	case e == unix.EINPROGRESS || e == unix.EALREADY:
		return s.waiter.waitConnected(c, e)
	case e == unix.EAGAIN && c.domain == unix.AF_UNIX:
		// A full backlog: a blocking caller waits for room.
		return s.waiter.retryLater(c)
	}
	return ret(e)
}

// attempt runs connect once on our duplicate of the caller's socket, in the
// caller's context where that matters. With nonblock it sets O_NONBLOCK for
// the duration of the call; on EINPROGRESS it looks once more (settle),
// because a loopback handshake has usually completed by the time connect
// returns.
func (s *Supervisor) attempt(c *call, nonblock bool) unix.Errno {
	if nonblock {
		set, e := briefNonblock(c)
		if e != 0 {
			return e
		}
		defer restoreNonblock(c, set)
	}
	e := s.connectOnce(c)
	if nonblock && e == unix.EINPROGRESS {
		if e2 := s.settle(c); e2 != unix.EALREADY {
			return e2
		}
	}
	return e
}

// resume finishes a parked blocking connect whose socket turned writable
// (the waiter calls it): EINPROGRESS or EALREADY while still connecting.
func (s *Supervisor) resume(c *call) unix.Errno {
	set, e := briefNonblock(c)
	if e != 0 {
		return e
	}
	defer restoreNonblock(c, set)
	return s.settle(c)
}

// briefNonblock sets O_NONBLOCK on the open file description that c's
// duplicate shares with the caller, for one attempt, and reports whether
// it did (the caller's file lacked it): restoreNonblock then clears that
// bit alone. Both use ioctl(FIONBIO), which sets or clears O_NONBLOCK and
// nothing else under the file's f_lock (ioctl_fionbio), never F_SETFL:
// F_SETFL writes every flag from a value read earlier, so an O_ASYNC or
// O_APPEND the program set from another thread in between was undone (and
// clearing O_ASYNC calls sock_fasync, which waits for the socket's lock).
// A call the waiter holds reads the flags afresh; on the receive thread
// they were read as the call began (fileFlags), microseconds ago. (The
// call's own mode stays the one it began with, c.flags, as sock_sndtimeo
// read it natively.)
func briefNonblock(c *call) (set bool, e unix.Errno) {
	f := c.fileFlags()
	if c.waited {
		if cur, e := rawFcntl(c.sock, unix.F_GETFL, 0); e == 0 {
			f = cur
		}
	}
	if f&unix.O_NONBLOCK != 0 {
		return false, 0
	}
	return true, setNonblock(c.sock, true)
}

// restoreNonblock clears the O_NONBLOCK that briefNonblock set, if it set
// one. (An O_NONBLOCK the program itself set during the attempt is cleared
// too: the one divergence left, as no flag tells the two apart.)
func restoreNonblock(c *call, set bool) {
	if set {
		setNonblock(c.sock, false)
	}
}

// settle ends a blocking connect whose attempt is under way, as the tail of
// inet_stream_connect does for a task woken by inet_wait_for_connect: once
// the socket has left SYN_SENT and SYN_RECV, the call returns 0 unless the
// socket is closed, in which case it returns (and consumes) the socket's
// error. O_NONBLOCK is set. It returns EALREADY while the handshake goes on.
//
// The native task checks the state the moment it is woken at ESTABLISHED.
// The supervisor looks later: a peer that accepts and resets at once may
// have closed the socket first. Connecting again then would consume the
// reset and return ECONNRESET, where Linux returns 0 and leaves the reset
// for the program's next call (and gVisor's hostinet, which works this
// way, fails 34-90% of such connects). So TCP sockets are read first
// (TCP_INFO): a closed socket whose SYN was acknowledged (bytes_acked >= 1:
// tcp_ack ran on the SYN-ACK) completed its handshake; the call returns 0,
// the error stays on the socket, and the socket is marked as connected for
// a later connect (EISCONN, see marks). Only a socket that never completed
// its handshake (a refusal, a timeout, an ICMP error) is connected again
// to collect its error, as natively.
func (s *Supervisor) settle(c *call) unix.Errno {
	st, acked, ok := tcpProgress(c.sock)
	switch {
	case !ok: // not TCP (an MPTCP or Unix socket): the kernel settles it
		return s.connectOnce(c)
	case st == tcpSynSent || st == tcpSynRecv:
		return unix.EALREADY
	case st != tcpClose:
		// Established, or past it (the peer's FIN came): connect again
		// sets SS_CONNECTED and returns 0 without touching the socket's
		// error. A reset that lands between the two calls is consumed by
		// that connect (the program's next recv then sees EOF, not
		// ECONNRESET: a window of one system call); the handshake had
		// completed, so the answer is 0 all the same.
		if e := s.connectOnce(c); e != 0 {
			s.marks.add(c)
		}
		return 0
	case acked > 0:
		// Completed, then reset or closed before the supervisor looked:
		// the error stays for the program's next call, and the mark
		// stands in for the SS_CONNECTED that connect would have set.
		s.marks.add(c)
		return 0
	}
	return s.connectOnce(c)
}

// connectOnce is the raw connect(2) on the duplicate, with the copied bytes
// (or the resolved target for a Unix path).
func (s *Supervisor) connectOnce(c *call) unix.Errno {
	if c.unix != nil {
		return c.unix.connect(s, c)
	}
	if c.needsCallerCreds(s) {
		return s.asCaller(c, func(t *credThread) unix.Errno { return t.connect(c.sock, c.addr[:c.alen]) })
	}
	return sockConnect(c.sock, c.addr[:c.alen])
}
