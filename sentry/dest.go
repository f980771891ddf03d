package sentry

import (
	"encoding/binary"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// The kernel's reading of a destination. decodeAddr (connect.go) reads the
// bytes as the protocol's sendmsg or connect does; wireDests then resolves
// an unspecified address to the one the kernel substitutes, so that rules,
// the self oracle and the topology all see where the packets go.

var (
	loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	// loopback4v6 is LOOPBACK4_IPV6, the IPv4 source inet6_bind gives a
	// socket bound to an IPv6 address.
	loopback4v6 = netip.AddrFrom4([4]byte{127, 0, 0, 6})
	bcastLo     = netip.AddrFrom4([4]byte{127, 255, 255, 255})
)

// decodeSend decodes a send's address into c.req. The protocol matters
// only for an AF_UNSPEC address on an IPv4 datagram socket (a ping socket
// rejects it, UDP reads it as AF_INET), so SO_PROTOCOL is read only then.
func (s *Supervisor) decodeSend(c *call) {
	proto := 0
	if c.domain == unix.AF_INET && c.typ == unix.SOCK_DGRAM && c.alen >= 2 &&
		binary.NativeEndian.Uint16(c.addr[:]) == unix.AF_UNSPEC {
		if p, e := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_PROTOCOL); e == 0 {
			proto = p
		}
	}
	c.req = decodeAddr(c.domain, c.typ, proto, netstack.OpSend, c.addr[:c.alen])
}

// wireDests returns the destinations the kernel may use in place of an
// unspecified one (0.0.0.0, ::, ::ffff:0.0.0.0), or nil when c.req.Addr is
// not unspecified and is used as written. ok is false when they cannot be
// worked out. Costs nothing unless the address is unspecified; then one
// getsockname, and two getsockopts for a source-less IPv4 destination.
//
// Where the kernel's choice depends on state not read here, every
// candidate is returned: all must be allowed.
func (s *Supervisor) wireDests(c *call) (dests []netip.AddrPort, ok bool) {
	a, port := c.req.Addr.Addr(), c.req.Addr.Port()
	if !a.IsValid() || !a.Unmap().IsUnspecified() ||
		c.domain != unix.AF_INET && c.domain != unix.AF_INET6 {
		return nil, true
	}
	bound, ok := inetName(c.sock)
	if !ok {
		return nil, false
	}
	src := bound.Addr() // the socket's local address (inet_getname)
	// An IPv6 socket states IPv4 destinations v4-mapped.
	out := func(x netip.Addr) netip.AddrPort {
		if c.domain == unix.AF_INET6 && x.Is4() {
			x = netip.AddrFrom16(x.As16())
		}
		return netip.AddrPortFrom(x, port)
	}
	if !a.Is4In6() && a.Is6() {
		// tcp_v6_connect, ip6_datagram_connect, udpv6_sendmsg: :: is the
		// loopback, IPv4's for a socket bound to a v4-mapped address.
		if src.Is4In6() {
			return []netip.AddrPort{out(loopback4)}, true
		}
		return []netip.AddrPort{netip.AddrPortFrom(netip.IPv6Loopback(), port)}, true
	}
	// IPv4 0.0.0.0, or v4-mapped on an IPv6 socket (handed to the IPv4
	// code): ip_route_output_key_hash_rcu makes the destination the
	// source address, or, with none, the source an output interface
	// chooses (inet_select_addr), or else 127.0.0.1.
	var saddr netip.Addr
	switch {
	case src.Is4():
		saddr = src
	case src.Is4In6():
		saddr = src.Unmap()
	case src.IsUnspecified():
		saddr = netip.IPv4Unspecified()
	default:
		// Bound to an IPv6 address: inet6_bind set the IPv4 source to
		// LOOPBACK4_IPV6.
		dests = append(dests, out(loopback4v6))
		saddr = netip.IPv4Unspecified()
	}
	oifs := s.outputInterfaces(c)
	if c.req.Op == netstack.OpSend && (c.typ == unix.SOCK_DGRAM || c.typ == unix.SOCK_RAW) {
		// ip_cmsg_send (udp_sendmsg, raw_sendmsg, ping_v4_sendmsg; not TCP
		// Fast Open): IP_PKTINFO, and on an IPv6 socket a v4-mapped
		// IPV6_PKTINFO, names the source and the interface of this send.
		if pk, ok := pktinfoSource(c.msg.control, c.domain == unix.AF_INET6); ok {
			saddr = pk.addr
			if pk.ifindex != 0 {
				oifs = append(oifs, pk.ifindex)
			}
		}
	}
	if !saddr.IsUnspecified() {
		dests = append(dests, out(saddr))
		if localUnicast(saddr) {
			return dests, true
		}
		// A broadcast or multicast local address is no source (inet_bind
		// clears inet_saddr): the resolution below applies as well.
	}
	for _, i := range oifs {
		ifc, err := net.InterfaceByIndex(i)
		if err != nil {
			return nil, false
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, false
		}
		for _, x := range addrs {
			if p, err := netip.ParsePrefix(x.String()); err == nil && p.Addr().Is4() {
				dests = append(dests, out(p.Addr()))
			}
		}
	}
	return append(dests, out(loopback4)), true
}

// outputInterfaces returns the interfaces an IPv4 route may be bound to:
// SO_BINDTODEVICE's, and IP_UNICAST_IF's (used by udp_sendmsg and
// ip4_datagram_connect when no device is bound).
func (s *Supervisor) outputInterfaces(c *call) []int {
	var oifs []int
	if i, e := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX); e == 0 && i > 0 {
		oifs = append(oifs, i)
	}
	// IP_UNICAST_IF is in network byte order, both ways.
	if v, e := unix.GetsockoptInt(c.sock, unix.IPPROTO_IP, unix.IP_UNICAST_IF); e == nil && v != 0 { // do_ip_getsockopt may take the socket's lock
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(v))
		oifs = append(oifs, int(binary.BigEndian.Uint32(b[:])))
	}
	return oifs
}

// localUnicast reports whether a is certainly a local unicast address, one
// the kernel keeps as the source: the loopback network but its broadcast,
// or an address of an interface.
func localUnicast(a netip.Addr) bool {
	if a.IsLoopback() {
		return a != bcastLo
	}
	return !a.IsMulticast() && routeLocal(a, flow{})
}

type pktinfo struct {
	addr    netip.Addr
	ifindex int
}

// pktinfoSource returns the source address and interface the last
// IP_PKTINFO control message names, as ip_cmsg_send takes them (an IPv6
// socket also takes a v4-mapped IPV6_PKTINFO). Malformed messages are left
// to the kernel, which refuses them.
func pktinfoSource(control []byte, v6 bool) (pk pktinfo, found bool) {
	walkCmsgs(control, func(off int, h *unix.Cmsghdr) bool {
		d := control[off+unix.SizeofCmsghdr : off+int(h.Len)]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(d) == unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst (the source), addr.
			pk = pktinfo{netip.AddrFrom4([4]byte(d[4:8])), int(int32(binary.NativeEndian.Uint32(d[0:4])))}
			found = true
		case v6 && h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(d) == unix.SizeofInet6Pktinfo:
			a := netip.AddrFrom16([16]byte(d[0:16]))
			if a.Is4In6() {
				i := int(int32(binary.NativeEndian.Uint32(d[16:20])))
				if i == 0 {
					i = pk.ifindex
				}
				pk = pktinfo{a.Unmap(), i}
				found = true
			}
		}
		return true
	})
	return pk, found
}
