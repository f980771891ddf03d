package sentry

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
	"sandbox/sentry/front"
)

// Pointing a program's socket at a front (the DNS forwarder's, the
// relay's): where the front will see it (frontPeer), and how the front is
// to carry it (admission): the onward socket, which is where the program's
// connection really leaves, must carry the program's identity, and a
// datagram socket that is not connected must get its replies from where it
// sent.

// admission is how a front carries c's socket. The principle: the
// supervisor's own identity never stands in for the program's. A socket
// carries its creator's uids, gids and groups for good (the file's
// credentials, sk_uid), and owner matches, uid routing, LSMs and audit see
// them; so the onward socket is made on a credential thread with the
// caller's, unless they are the supervisor's. The caller's stand for the
// program socket's own only when that socket is owned by the caller's
// fsuid and fsgid (sock_alloc records them); a socket made under other
// credentials (before a setuid) is not pointed at a front: false, said
// once, and the call is made as it is.
func (s *Supervisor) admission(c *call) (front.Admission, bool) {
	adm := front.Admission{As: s.replyAs(c)}
	// The cookie ties what the front keeps for the socket (its UDP
	// upstream, replies written as another address) to this socket, not
	// to whichever takes its address later. 0 (unreadable): its replies as
	// another address go nowhere (Reply).
	adm.Cookie, _ = c.socketCookie()
	st, err := c.callerStatus()
	var own unix.Stat_t
	if err != nil || unix.Fstat(c.sock, &own) != nil || own.Uid != st.Uid[3] || own.Gid != st.Gid[3] {
		s.frontOtherOwner.Do(func() {
			s.cfg.Log.WithField("dst", c.req.Dest()).Warn("a socket made with other credentials than its caller's is not carried by a front: its faults do not apply, and its lookups are not observed (denied when the policy denies names)")
		})
		return adm, false
	}
	if st.Uid == s.self.Uid && st.Gid == s.self.Gid && slices.Equal(st.Groups, s.self.Groups) {
		return adm, true
	}
	adm.Make = func(domain, typ int) (int, error) {
		t, err := s.credThreads.get(st)
		if err != nil {
			return -1, err
		}
		defer s.credThreads.put(t)
		fd, e := t.sys(unix.SYS_SOCKET, uintptr(domain), uintptr(typ), 0, 0, 0, 0)
		if e != 0 {
			return -1, e
		}
		return int(fd), nil
	}
	return adm, true
}

// plainSocket is a front.Maker on the calling thread.
func plainSocket(domain, typ int) (int, error) { return unix.Socket(domain, typ, 0) }

// replyAs is where the replies to a datagram c sends through a front must
// come from: the destination as the program addressed it when c's socket
// is not connected (it may check each reply's source: front.Reply), and
// the front itself otherwise (a connect, or a connected socket, which
// takes datagrams from its peer only). Said once when raw sockets are out
// of reach, as such programs then ignore the replies.
func (s *Supervisor) replyAs(c *call) netip.AddrPort {
	if c.typ != unix.SOCK_DGRAM || c.req.Op != netstack.OpSend {
		return netip.AddrPort{}
	}
	if _, err := unix.Getpeername(c.sock); err != unix.ENOTCONN {
		return netip.AddrPort{}
	}
	if !front.CanSpoof() {
		s.spoofUnavailable.Do(func() {
			s.cfg.Log.WithField("dst", c.req.Dest()).Warn("replies to an unconnected UDP socket through a front (DNS, faults) come from the sandbox's loopback front, not from the address it sent to (no CAP_NET_RAW here): resolvers that check the source, such as musl's, ignore them")
		})
	}
	return c.req.Addr
}

// frontPeer is the address a front (the relay's, the DNS forwarder's) will see c's socket at: its bound
// port, on its bound address or the front's loopback. An unbound socket is
// bound first, once, to the wildcard and port 0, as connect and sendto
// would autobind it, so that its port is known before the front sees it.
// (Unlike autobind, the port then stays bound after a failed connect: a
// documented difference of a socket pointed at a front.) A socket bound to
// an address without a port (IP_BIND_ADDRESS_NO_PORT) gets no front: its
// port is chosen only by the connect, and a bind now would undo its address.
//
// A socket bound to a device other than loopback (SO_BINDTODEVICE, as curl
// --interface NAME does) cannot reach a front on loopback at all: no front
// either. why says, when there is none, why not.
func frontPeer(c *call) (peer netip.AddrPort, why string) {
	if ifi, e := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX); e == 0 && ifi != 0 && ifi != front.LoopbackIndex() {
		return netip.AddrPort{}, "a socket bound to a device (SO_BINDTODEVICE)"
	}
	if pktinfoRoutes(c) {
		return netip.AddrPort{}, "a send that picks its interface or source (IP_PKTINFO, IPV6_PKTINFO)"
	}
	const noPort = "a socket bound without a port (IP_BIND_ADDRESS_NO_PORT)"
	a, port, ok := boundAddr(c.sock)
	if !ok {
		return netip.AddrPort{}, "a socket without an address"
	}
	if port == 0 {
		if !a.IsUnspecified() {
			return netip.AddrPort{}, noPort // an address and no port yet
		}
		var any unix.Sockaddr = &unix.SockaddrInet4{}
		if c.domain == unix.AF_INET6 {
			any = &unix.SockaddrInet6{}
		}
		if unix.Bind(c.sock, any) != nil {
			return netip.AddrPort{}, "a socket that cannot be bound"
		}
		if a, port, ok = boundAddr(c.sock); !ok || port == 0 {
			return netip.AddrPort{}, "a socket that cannot be bound"
		}
	}
	if a.IsUnspecified() {
		a = front.Loopback(c.req.Addr.Addr())
	}
	return netip.AddrPortFrom(a, uint16(port)), ""
}

// pktinfoRoutes reports whether a send's control messages pick its
// interface or its source address (IP_PKTINFO's ipi_ifindex or
// ipi_spec_dst, IPV6_PKTINFO's ipi6_ifindex or ipi6_addr: ip_cmsg_send,
// ip6_datagram_send_ctl). Pointed at a front, such a datagram would leave
// by that interface towards loopback (a reviewer saw it on the wire), or
// from a source the front was not told of.
func pktinfoRoutes(c *call) bool {
	routes := false
	walkCmsgs(c.msg.control, func(off int, h *unix.Cmsghdr) bool {
		data := c.msg.control[off+unix.SizeofCmsghdr : off+int(h.Len)]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= 8:
			// struct in_pktinfo: ipi_ifindex, ipi_spec_dst, ipi_addr.
			routes = binary.NativeEndian.Uint32(data[0:]) != 0 || binary.NativeEndian.Uint32(data[4:]) != 0
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= 20:
			// struct in6_pktinfo: ipi6_addr, ipi6_ifindex.
			routes = binary.NativeEndian.Uint32(data[16:]) != 0 || [16]byte(data[:16]) != [16]byte{}
		}
		return !routes
	})
	return routes
}

// boundAddr is the socket's local address and port (getsockname), unmapped.
func boundAddr(fd int) (netip.Addr, int, bool) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	switch v := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(v.Addr), v.Port, true
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(v.Addr).Unmap(), v.Port, true
	}
	return netip.Addr{}, 0, false
}
