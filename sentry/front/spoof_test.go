package front

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReplyComesFromTheAddressSentTo: a reply to an unconnected socket
// admitted with ReplyAs arrives from that address, payload intact (the
// kernel checks the UDP checksum on delivery and drops a wrong one), over
// IPv4, IPv6, and to a dual-stack IPv6 socket from an IPv4 address. The
// source addresses are documentation ones: the packets go to loopback
// only. Control: without ReplyAs the reply comes from the front.
func TestReplyComesFromTheAddressSentTo(t *testing.T) {
	if !CanSpoof() {
		t.Skip("no CAP_NET_RAW: replies come from the front")
	}
	cases := []struct {
		name, listen, as, want string
	}{
		{"ipv4", "127.0.0.1:0", "192.0.2.53:53", "192.0.2.53:53"},
		{"ipv6", "[::1]:0", "[2001:db8::53]:53", "[2001:db8::53]:53"},
		{"dual-stack", "[::]:0", "192.0.2.54:53", "[::ffff:192.0.2.54]:53"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.listen)))
			if err != nil {
				t.Skip(err)
			}
			defer prog.Close()
			at := prog.LocalAddr().(*net.UDPAddr).AddrPort()
			if at.Addr().IsUnspecified() {
				at = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), at.Port())
			}
			fr, _, err := ListenUDP(netip.MustParseAddrPort(tc.as).Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer fr.Close()
			raw, _ := prog.SyscallConn()
			var cookie uint64
			raw.Control(func(fd uintptr) {
				v, _ := unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
				cookie = v
			})
			var peers Admitted
			// Attack first: admitted with another socket's cookie (the
			// program's closed, another bound the port since), nothing
			// arrives.
			peers.Admit(at, time.Now().Add(time.Minute), Admission{As: netip.MustParseAddrPort(tc.as), Cookie: cookie + 1})
			Reply(fr, &peers, []byte("stale"), at)
			prog.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, from, err := prog.ReadFromUDPAddrPort(make([]byte, 100)); err == nil {
				t.Fatalf("a reply for another socket arrived: %d bytes from %v", n, from)
			}
			peers.Admit(at, time.Now().Add(time.Minute), Admission{As: netip.MustParseAddrPort(tc.as), Cookie: cookie})
			// Odd length and every byte value: the checksum's edge cases.
			payload := make([]byte, 1001)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			Reply(fr, &peers, payload, at)
			prog.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 2000)
			n, from, err := prog.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("no reply arrived: %v", err)
			}
			if from.String() != tc.want || string(buf[:n]) != string(payload) {
				t.Errorf("reply from %v (%d bytes), want from %s (%d bytes, intact)", from, n, tc.want, len(payload))
			}
			// Control: admitted without ReplyAs, from the front.
			peers.Admit(at, time.Now().Add(time.Minute), Admission{})
			Reply(fr, &peers, []byte("x"), at)
			if _, from, err = prog.ReadFromUDPAddrPort(buf); err != nil || from.Port() == 53 {
				t.Errorf("without ReplyAs: from %v (%v), want the front", from, err)
			}
		})
	}
}

// TestChecksum checks the RFC 1071 sum against a worked example: the IPv4
// header of RFC 1071's reference (checksum 0xb861 for this header).
func TestChecksum(t *testing.T) {
	h := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	if got := ^fold(sum(0, h)); got != 0xb861 {
		t.Errorf("checksum %#04x, want 0xb861", got)
	}
}

// TestReplyNeverLandsInAnotherSocket: another socket that shares the
// program socket's port (SO_REUSEADDR both) but is bound to lo outranks it
// for a packet arriving on lo, where the raw socket writes: the check must
// be the delivery's own lookup (on lo), so the reply is written to nobody.
// (Checked on any interface, the program's wildcard socket matched and the
// reply landed in the other one: a reviewer's attack, across users.)
func TestReplyNeverLandsInAnotherSocket(t *testing.T) {
	if !CanSpoof() {
		t.Skip("no CAP_NET_RAW: replies come from the front")
	}
	reuse := func(port int, dev string) (*net.UDPConn, uint64) {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			rc.Control(func(fd uintptr) {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
				if dev != "" {
					unix.BindToDevice(int(fd), dev)
				}
			})
			return nil
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		c := pc.(*net.UDPConn)
		return c, Cookie(c)
	}
	prog, cookie := reuse(0, "")
	defer prog.Close()
	victim, _ := reuse(prog.LocalAddr().(*net.UDPAddr).Port, "lo")
	defer victim.Close()
	at := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(prog.LocalAddr().(*net.UDPAddr).Port))
	fr, _, err := ListenUDP(at.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	var peers Admitted
	peers.Admit(at, time.Now().Add(time.Minute), Admission{As: netip.MustParseAddrPort("192.0.2.53:53"), Cookie: cookie})
	Reply(fr, &peers, []byte("for the program only"), at)
	for name, c := range map[string]*net.UDPConn{"the other socket": victim, "the program": prog} {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, from, err := c.ReadFromUDPAddrPort(make([]byte, 100)); err == nil {
			t.Errorf("%s got %d bytes from %v", name, n, from)
		}
	}
}
