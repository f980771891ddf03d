package front

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// Replies from the address the program sent to. A UDP socket that is not
// connected takes a datagram from anyone, and a program may check where
// each came from: musl's resolver and dnspython ignore an
// answer whose source is not the nameserver they asked. The program's
// datagram to the destination was sent to a front instead, so the reply
// leaves the front from the destination's address: a raw IPPROTO_RAW
// socket (which takes the whole header, IP_HDRINCL, and receives nothing)
// writes it to the program's socket, on loopback, where no route or
// reverse-path check applies (ip_rcv_finish keeps the output route of a
// looped-back packet). It needs CAP_NET_RAW in the namespace; without it
// replies come from the front (CanSpoof says which).
//
// A connected socket needs none of this: the kernel takes datagrams only
// from its peer, the front it was connected to.

type spoofSocks struct {
	v4, v6 int

	mu   sync.Mutex // diag, seq
	diag int        // NETLINK_SOCK_DIAG, for receives
	seq  uint32
}

// spoofer opens the raw sockets once, in the supervisor's network
// namespace (the fronts' and the program's): nil when it may not.
var spoofer = sync.OnceValue(func() *spoofSocks {
	v4, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil
	}
	// IPPROTO_RAW implies IPV6_HDRINCL (rawv6_init_sk).
	v6, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		v6 = -1
	}
	// Loopback only: a program socket bound to an address that is not
	// local (IP_FREEBIND) is never written to out of the namespace.
	for _, fd := range []int{v4, v6} {
		if fd >= 0 && unix.BindToDevice(fd, "lo") != nil {
			unix.Close(fd)
			if fd == v4 {
				unix.Close(v6)
				return nil
			}
			v6 = -1
		}
	}
	diag, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		unix.Close(v4)
		unix.Close(v6)
		return nil // no check, no spoofing
	}
	return &spoofSocks{v4: v4, v6: v6, diag: diag}
})

// LoopbackIndex is lo's interface index in the supervisor's network
// namespace (the fronts'): 1 unless it cannot be read.
var LoopbackIndex = sync.OnceValue(func() int {
	if ifi, err := net.InterfaceByName("lo"); err == nil {
		return ifi.Index
	}
	return 1
})

// CanSpoof reports whether replies to unconnected sockets can come from
// the address the program sent to (see above).
func CanSpoof() bool { return spoofer() != nil }

// send writes one UDP datagram with payload b from src to dst (both of one
// family, after unmapping).
func (sp *spoofSocks) send(src, dst netip.AddrPort, b []byte) error {
	src, dst = unmap(src), unmap(dst)
	s, d := src.Addr().WithZone(""), dst.Addr().WithZone("")
	if s.Is4() != d.Is4() {
		return errors.New("spoof: families differ")
	}
	if s.Is4() {
		pkt := packet4(src, dst, b)
		return unix.Sendto(sp.v4, pkt, 0, &unix.SockaddrInet4{Addr: d.As4()})
	}
	if sp.v6 < 0 {
		return errors.New("spoof: no IPv6 raw socket")
	}
	pkt := packet6(src, dst, b)
	return unix.Sendto(sp.v6, pkt, 0, &unix.SockaddrInet6{Addr: d.As16()})
}

// receives reports whether the UDP socket that a datagram from src to dst
// would be delivered to is the one with cookie: udp_dump_one runs the
// receive path's own lookup (__udp4_lib_lookup, __udp6_lib_lookup) for
// that tuple, and sock_diag_check_cookie compares (ESTALE if another
// socket, ENOENT if none).
func (sp *spoofSocks) receives(src, dst netip.AddrPort, cookie uint64) bool {
	src, dst = unmap(src), unmap(dst)
	s, d := src.Addr().WithZone(""), dst.Addr().WithZone("")
	if cookie == 0 || s.Is4() != d.Is4() {
		return false
	}
	// struct nlmsghdr, then struct inet_diag_req_v2 (linux/inet_diag.h):
	// family, protocol, ext, pad, states, and the sockid: sport, dport,
	// src[16], dst[16], if, cookie[2].
	req := make([]byte, unix.SizeofNlMsghdr+56)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	r := req[unix.SizeofNlMsghdr:]
	r[0], r[1] = unix.AF_INET6, unix.IPPROTO_UDP
	if s.Is4() {
		r[0] = unix.AF_INET
	}
	binary.NativeEndian.PutUint32(r[4:], ^uint32(0))
	binary.BigEndian.PutUint16(r[8:], src.Port())
	binary.BigEndian.PutUint16(r[10:], dst.Port())
	if s.Is4() {
		a, b := s.As4(), d.As4()
		copy(r[12:], a[:])
		copy(r[28:], b[:])
	} else {
		a, b := s.As16(), d.As16()
		copy(r[12:], a[:])
		copy(r[28:], b[:])
	}
	// The interface the packet arrives on: lo, which the raw sockets are
	// bound to. A socket bound to lo outranks a wildcard one there
	// (compute_score), and the lookup must be the delivery's own.
	binary.NativeEndian.PutUint32(r[44:], uint32(LoopbackIndex()))
	binary.NativeEndian.PutUint32(r[48:], uint32(cookie))
	binary.NativeEndian.PutUint32(r[52:], uint32(cookie>>32))
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.seq++
	binary.NativeEndian.PutUint32(req[8:], sp.seq)
	if err := unix.Sendto(sp.diag, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(sp.diag, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n < unix.SizeofNlMsghdr {
			return false
		}
		if binary.NativeEndian.Uint32(buf[8:]) != sp.seq {
			continue // the answer to an earlier question that gave up
		}
		// The socket (SOCK_DIAG_BY_FAMILY), or an error.
		return binary.NativeEndian.Uint16(buf[4:]) == unix.SOCK_DIAG_BY_FAMILY
	}
}

// packet4 is an IPv4 packet carrying one UDP datagram (RFC 791, RFC 768). The
// kernel fills the total length, the ID and the header checksum of an
// IP_HDRINCL packet (raw_send_hdrinc); the UDP checksum is computed (zero
// would mean none, which IPv4 allows, but a capture would flag it).
func packet4(src, dst netip.AddrPort, b []byte) []byte {
	pkt := make([]byte, 20+8+len(b))
	pkt[0] = 0x45                                         // version 4, 5 words
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt))) // total length
	binary.BigEndian.PutUint16(pkt[6:], 0x4000)           // don't fragment
	pkt[8], pkt[9] = 64, unix.IPPROTO_UDP                 // TTL, protocol
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:16], s[:])
	copy(pkt[16:20], d[:])
	udp(pkt[20:], src.Port(), dst.Port(), b, pseudo(s[:], d[:], len(b)+8))
	binary.BigEndian.PutUint16(pkt[10:], ^fold(sum(0, pkt[:20])))
	return pkt
}

// packet6 is an IPv6 packet carrying one UDP datagram (RFC 8200, RFC 768:
// the checksum is mandatory over IPv6).
func packet6(src, dst netip.AddrPort, b []byte) []byte {
	pkt := make([]byte, 40+8+len(b))
	pkt[0] = 0x60                                         // version 6
	binary.BigEndian.PutUint16(pkt[4:], uint16(8+len(b))) // payload length
	pkt[6], pkt[7] = unix.IPPROTO_UDP, 64                 // next header, hop limit
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(pkt[8:24], s[:])
	copy(pkt[24:40], d[:])
	udp(pkt[40:], src.Port(), dst.Port(), b, pseudo(s[:], d[:], len(b)+8))
	return pkt
}

// udp fills a UDP header and payload into out, with the checksum over the
// pseudo-header's sum ps.
func udp(out []byte, sport, dport uint16, b []byte, ps uint32) {
	binary.BigEndian.PutUint16(out[0:], sport)
	binary.BigEndian.PutUint16(out[2:], dport)
	binary.BigEndian.PutUint16(out[4:], uint16(8+len(b)))
	copy(out[8:], b)
	c := ^fold(sum(ps, out[:8+len(b)]))
	if c == 0 {
		c = 0xffff // zero means "no checksum" (RFC 768)
	}
	binary.BigEndian.PutUint16(out[6:], c)
}

// pseudo is the sum of the pseudo-header: addresses, protocol, UDP length.
func pseudo(s, d []byte, n int) uint32 {
	v := sum(0, s)
	v = sum(v, d)
	return v + unix.IPPROTO_UDP + uint32(n)
}

// sum adds b to v as 16-bit big-endian words (RFC 1071).
func sum(v uint32, b []byte) uint32 {
	for len(b) >= 2 {
		v += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		v += uint32(b[0]) << 8
	}
	return v
}

// fold folds a sum's carries into 16 bits.
func fold(v uint32) uint16 {
	for v>>16 != 0 {
		v = v&0xffff + v>>16
	}
	return uint16(v)
}
