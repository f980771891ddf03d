package sentry

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"sandbox/netstack"
	"sandbox/seccomp"
)

// decodeAddr reads an address as the protocol's sendmsg or connect does.
func TestDecodeAddrAFUnspec(t *testing.T) {
	in4 := sockaddr(unix.AF_UNSPEC, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)
	in6 := append(sockaddr(unix.AF_UNSPEC, 0, 80, 0, 0, 0, 0), netip.IPv6Loopback().AsSlice()...)
	in6 = append(in6, 0, 0, 0, 0)
	cases := []struct {
		name               string
		domain, typ, proto int
		op                 netstack.Op
		addr               []byte
		want               string
	}{
		{"udp send reads AF_INET (udp_sendmsg)", unix.AF_INET, unix.SOCK_DGRAM, 0, netstack.OpSend, in4, "udp:127.0.0.1:8080"},
		{"udplite send reads AF_INET", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE, netstack.OpSend, in4, "udp:127.0.0.1:8080"},
		{"short udp send is the kernel's EINVAL", unix.AF_INET, unix.SOCK_DGRAM, 0, netstack.OpSend, in4[:15], "udp:invalid AddrPort"},
		{"ping send is the kernel's EAFNOSUPPORT", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, netstack.OpSend, in4, "unspec"},
		{"raw send reads AF_INET (raw_sendmsg)", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP, netstack.OpSend, in4, "tcp:127.0.0.1:8080"},
		{"raw6 send reads AF_INET6 (rawv6_sendmsg)", unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6, netstack.OpSend, in6, "tcp:[::1]:80"},
		{"udp6 send has no address (udpv6_sendmsg)", unix.AF_INET6, unix.SOCK_DGRAM, 0, netstack.OpSend, in4, "unspec"},
		{"fast open disconnects", unix.AF_INET, unix.SOCK_STREAM, 0, netstack.OpSend, in4, "unspec"},
		{"udp connect disconnects", unix.AF_INET, unix.SOCK_DGRAM, 0, netstack.OpConnect, in4, "unspec"},
		{"tcp connect disconnects", unix.AF_INET6, unix.SOCK_STREAM, 0, netstack.OpConnect, in4, "unspec"},
		{"unix send", unix.AF_UNIX, unix.SOCK_DGRAM, 0, netstack.OpSend, in4, "unspec"},
		{"other families are decided on the family", unix.AF_PACKET, unix.SOCK_DGRAM, 0, netstack.OpConnect, in4, "other"},
		{"unknown inet type is an address", unix.AF_INET, unix.SOCK_SEQPACKET, 132, netstack.OpSend, in4, "tcp:127.0.0.1:8080"},
	}
	for _, c := range cases {
		if got := decodeAddr(c.domain, c.typ, c.proto, c.op, c.addr).Dest(); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// FamilyUnspec (always allowed) never carries an address, whatever the
// socket and the bytes.
func TestFamilyUnspecNeverCarriesAnAddress(t *testing.T) {
	buf := make([]byte, sockaddrStorage)
	buf[4], buf[5], buf[6], buf[7] = 127, 0, 0, 1
	for _, domain := range []int{unix.AF_UNSPEC, unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK, unix.AF_PACKET} {
		for typ := 0; typ <= unix.SOCK_PACKET; typ++ {
			for _, proto := range []int{0, unix.IPPROTO_ICMP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_ICMPV6, 132} {
				for _, op := range []netstack.Op{netstack.OpConnect, netstack.OpSend} {
					for n := 0; n <= len(buf); n++ {
						r := decodeAddr(domain, typ, proto, op, buf[:n])
						if r.Family == netstack.FamilyUnspec && (r.Addr.IsValid() || r.Unix != (netstack.UnixAddr{})) {
							t.Fatalf("%d/%d/%d/%d/%d: %+v", domain, typ, proto, op, n, r)
						}
					}
				}
			}
		}
	}
	p := netstack.SelfPolicy()
	d := p.Decide(netstack.Request{Family: netstack.FamilyUnspec, Addr: netip.MustParseAddrPort("127.0.0.1:1")})
	if d.Action != netstack.Deny {
		t.Errorf("an AF_UNSPEC request with an address was %v", d.Action)
	}
}

func TestPktinfoSource(t *testing.T) {
	b := make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo)+unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	d := b[unix.CmsgLen(0):]
	binary.NativeEndian.PutUint32(d, 3)
	copy(d[4:], []byte{127, 0, 0, 5})
	pk, ok := pktinfoSource(b[:unix.CmsgSpace(unix.SizeofInet4Pktinfo)], false)
	if !ok || pk.addr != netip.MustParseAddr("127.0.0.5") || pk.ifindex != 3 {
		t.Errorf("IP_PKTINFO: %v %v", pk, ok)
	}
	o := unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	h = (*unix.Cmsghdr)(unsafe.Pointer(&b[o]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	a := netip.MustParseAddr("::ffff:127.0.0.9").As16()
	copy(b[o+unix.CmsgLen(0):], a[:])
	if pk, ok := pktinfoSource(b, true); !ok || pk.addr != netip.MustParseAddr("127.0.0.9") || pk.ifindex != 3 {
		t.Errorf("v4-mapped IPV6_PKTINFO after IP_PKTINFO: %v %v", pk, ok)
	}
	if pk, _ := pktinfoSource(b, false); pk.addr != netip.MustParseAddr("127.0.0.5") {
		t.Errorf("an IPv4 socket takes no IPV6_PKTINFO: %v", pk)
	}
}

// The table's setsockopt rows, in a BPF interpreter: level and optname are
// compared on their low 32 bits, as the kernel reads ints.
func TestFilterRefusesRoutingOptions(t *testing.T) {
	prog, err := seccomp.ExportBPF(FilterRules(FilterOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	nr, err := seccomp.SyscallNumber("setsockopt")
	if err != nil {
		t.Fatal(err)
	}
	const eperm = 0x00050000 | uint32(unix.EPERM)
	const allow = 0x7fff0000
	cases := []struct {
		name          string
		level, option uint64
		want          uint32
	}{
		{"IPV6_RTHDR", unix.IPPROTO_IPV6, unix.IPV6_RTHDR, eperm},
		{"IPV6_RTHDR high bits", 1<<32 | unix.IPPROTO_IPV6, 7<<32 | unix.IPV6_RTHDR, eperm},
		{"IPV6_2292RTHDR", unix.IPPROTO_IPV6, unix.IPV6_2292RTHDR, eperm},
		{"IPV6_2292PKTOPTIONS", unix.IPPROTO_IPV6, unix.IPV6_2292PKTOPTIONS, eperm},
		{"IP_OPTIONS", unix.IPPROTO_IP, unix.IP_OPTIONS, eperm},
		{"IP_OPTIONS high bits", 1 << 40, 1<<33 | unix.IP_OPTIONS, eperm},
		{"IPV6_V6ONLY passes", unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, allow},
		{"IP_TOS passes", unix.IPPROTO_IP, unix.IP_TOS, allow},
		{"SOL_SOCKET 4 passes", unix.SOL_SOCKET, unix.IP_OPTIONS, allow},
		{"TCP 57 passes", unix.IPPROTO_TCP, unix.IPV6_RTHDR, allow},
	}
	for _, c := range cases {
		if got := runBPF(t, prog, nr, [6]uint64{3, c.level, c.option, 0x1000, 8}); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
}

// runBPF interprets prog on an x86_64 seccomp_data. The VM loads words
// big-endian and seccomp native-endian: each word is stored swapped.
func runBPF(t *testing.T, prog []unix.SockFilter, nr int32, args [6]uint64) uint32 {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	words := []uint32{uint32(nr), unix.AUDIT_ARCH_X86_64, 0, 0}
	for _, a := range args {
		words = append(words, uint32(a), uint32(a>>32))
	}
	buf := make([]byte, 4*len(words))
	for i, w := range words {
		binary.BigEndian.PutUint32(buf[4*i:], w)
	}
	out, err := vm.Run(buf)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(out)
}
