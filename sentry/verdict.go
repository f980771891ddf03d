package sentry

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// hasDest reports whether the copied address names a destination the
// kernel would go on to use for this socket. When it does not, the kernel
// rejects the address itself (EINVAL, EAFNOSUPPORT) without connecting
// anywhere, so the call is passed to it unchanged: its errors, in its order.
//
// Invariant: hasDest must never be false for an address the kernel would
// connect to, the kernel's own netlink address aside. It is decided on the
// supervisor's copy, which is also what the kernel is given, and on the
// socket's family, which cannot change.
func (c *call) hasDest() bool {
	switch c.req.Family {
	case netstack.FamilyInet, netstack.FamilyInet6:
		return c.req.Addr.IsValid()
	case netstack.FamilyUnix:
		return c.req.Unix.Abstract || c.req.Unix.Path != ""
	case netstack.FamilyUnspec:
		return false
	}
	if c.domain == unix.AF_NETLINK && c.alen >= unix.SizeofSockaddrNetlink {
		// The kernel itself (nl_pid 0, no multicast groups) is no peer: it
		// is how programs read routes and addresses (glibc's getaddrinfo
		// with AI_ADDRCONFIG does), as local as an ioctl. Other netlink
		// destinations (processes, groups) are decided.
		nl := (*unix.RawSockaddrNetlink)(unsafe.Pointer(&c.addr[0]))
		return nl.Pid != 0 || nl.Groups != 0
	}
	return true // other families are decided on the family alone
}

// act carries out a decision other than a plain allow.
func (s *Supervisor) act(c *call) outcome {
	d := c.dec
	if d.Action == netstack.Redirect {
		b, ok := redirectSockaddr(c.domain, d.Redirect)
		if !ok {
			return ret(unix.EAFNOSUPPORT)
		}
		c.alen = copy(c.addr[:], b)
		return s.connectAllowed(c)
	}
	if o, ok := s.stateFirst(c); ok {
		return o
	}
	inet := c.domain == unix.AF_INET || c.domain == unix.AF_INET6
	switch {
	case d.Action == netstack.Refuse && inet && d.Delay == 0:
		if sink := s.sinkFor(c, c.typ == unix.SOCK_DGRAM, false); sink != nil {
			return s.connectTo(c, sink)
		}
	case d.Action == netstack.Timeout && inet:
		if c.typ == unix.SOCK_DGRAM {
			if sink := s.sinkFor(c, true, true); sink != nil {
				return s.connectTo(c, sink)
			}
		} else if sink := s.sinkFor(c, false, true); sink != nil {
			// The kernel ends a SYN_SENT socket with ETIMEDOUT once
			// TCP_USER_TIMEOUT has passed without an answer. The caller's
			// own value is put back when the attempt ends (see release).
			c.restoreUserTimeout = userTimeout(c.sock)
			unix.SetsockoptInt(c.sock, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, durationMillis(d.Timeout))
			return s.connectTo(c, sink)
		}
	case d.Action == netstack.Timeout && c.domain == unix.AF_UNIX:
		// A Unix connect never times out: its twin is a listener whose
		// backlog is full (a receiver whose queue is full, for datagrams).
		// The caller's socket is connected to one, and the kernel answers.
		sink, err := s.unixSink.get(c.typ)
		if err == nil && sink != nil {
			return s.connectTo(c, sink)
		}
		if err != nil {
			s.log.internal(c, "unix sinks", err)
		}
	}
	e := errnoOn(d, c.domain)
	if c.domain == unix.AF_UNIX {
		return ret(e) // a stale socket file refuses at once
	}
	if d.Delay > 0 && c.fileFlags()&unix.O_NONBLOCK == 0 {
		// An on-link host that does not answer ARP: the failure shows after
		// a delay. A non-blocking caller is answered at once.
		return s.waiter.after(c, d.Delay, e)
	}
	return ret(e)
}

// stateFirst answers what Linux answers before it looks at the address: a
// TCP socket that is connected, connecting or listening gets EISCONN or
// EALREADY (or waits for its own attempt) whatever the new address. The
// kernel is asked by connecting to the refuse sink instead of the denied
// address: in those states it ignores the address, and should the socket
// be disconnected meanwhile by another thread, the sink refuses.
func (s *Supervisor) stateFirst(c *call) (outcome, bool) {
	switch {
	case (c.domain == unix.AF_INET || c.domain == unix.AF_INET6) && c.typ == unix.SOCK_STREAM:
		if st := tcpState(c.sock); st == tcpClose || st < 0 {
			return outcome{}, false
		}
		if sink := s.sinkFor(c, false, false); sink != nil {
			return s.connectTo(c, sink), true
		}
	case c.domain == unix.AF_UNIX && (c.typ == unix.SOCK_STREAM || c.typ == unix.SOCK_SEQPACKET):
		if acc, err := unix.GetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && acc != 0 {
			return ret(unix.EINVAL), true
		}
		if _, err := unix.Getpeername(c.sock); err == nil {
			return ret(unix.EISCONN), true
		}
	}
	return outcome{}, false
}

// sinkFor returns the sink address for the caller's family, or nil.
func (s *Supervisor) sinkFor(c *call, udp, silent bool) []byte {
	if err := s.sinks.get(); err != nil {
		s.log.internal(c, "sinks", err)
		return nil
	}
	i := famIndex(c.domain)
	switch {
	case udp && silent:
		return s.sinks.udpDrop[i]
	case udp:
		return s.sinks.udpRefuse[i]
	case silent:
		return s.sinks.tarpit[i]
	}
	return s.sinks.refuse[i]
}

// connectTo performs the caller's connect to addr instead of its own.
func (s *Supervisor) connectTo(c *call, addr []byte) outcome {
	c.unix, c.sink = nil, true
	c.alen = copy(c.addr[:], addr)
	return s.connectAllowed(c)
}

// redirectSockaddr renders a redirect target for a socket of the given
// domain: an IPv4 target on an IPv6 socket becomes v4-mapped.
func redirectSockaddr(domain int, to netip.AddrPort) ([]byte, bool) {
	a := to.Addr()
	switch {
	case domain == unix.AF_INET && a.Unmap().Is4():
		return rawSockaddr(&unix.SockaddrInet4{Port: int(to.Port()), Addr: a.Unmap().As4()}), true
	case domain == unix.AF_INET6:
		return rawSockaddr(&unix.SockaddrInet6{Port: int(to.Port()), Addr: a.As16()}), true
	}
	return nil, false
}

func userTimeout(fd int) int {
	v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	if err != nil {
		return 0
	}
	return v
}
