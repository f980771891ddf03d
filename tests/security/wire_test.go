package security

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// dualStackUDPCounter counts UDP datagrams to [::]:port (IPv4 included)
// and UDP-Lite datagrams to 127.0.0.1 on the same port number (another
// protocol's table).
func dualStackUDPCounter(t *testing.T) (port int, udp, lite *atomic.Int64) {
	c, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	udp, lite = new(atomic.Int64), new(atomic.Int64)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			udp.Add(1)
		}
	}()
	port = c.LocalAddr().(*net.UDPAddr).Port
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_UDPLITE)
	if err != nil {
		t.Logf("no UDP-Lite: %v", err)
		return port, udp, lite
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{Usec: 100000})
	done := make(chan struct{})
	t.Cleanup(func() { close(done); syscall.Close(fd) })
	go func() {
		buf := make([]byte, 64)
		for {
			select {
			case <-done:
				return
			default:
			}
			if n, _, err := syscall.Recvfrom(fd, buf, 0); err == nil && n >= 0 {
				lite.Add(1)
			}
		}
	}()
	return port, udp, lite
}

// countAcceptsTo counts the connections accepted on l, and those that were
// made to 127.0.0.1 (IPv4 or v4-mapped).
func countAcceptsTo(t *testing.T, l net.Listener) (all, at127 *atomic.Int64) {
	t.Cleanup(func() { l.Close() })
	all, at127 = new(atomic.Int64), new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			all.Add(1)
			if a := c.LocalAddr().(*net.TCPAddr).IP; a.Equal(net.IPv4(127, 0, 0, 1)) {
				at127.Add(1)
			}
			c.Close()
		}
	}()
	return all, at127
}

// runWire runs testdata/wire.c under the sandbox (or natively when policy
// is nil), as root or as nobody, and returns its results.
func runWire(t *testing.T, nobody bool, policy []string, args ...string) map[string]string {
	t.Helper()
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "wire.c"), false)
	var argv []string
	if nobody {
		argv = asNobody(sb, prog)
	}
	argv = append(append(append(append(argv, sb, "run", "--log-level", "error"), policy...), "--", prog), args...)
	r := nettest.Run(time.Minute, argv...)
	if r.ExitCode != 0 {
		t.Fatalf("%v", r)
	}
	time.Sleep(300 * time.Millisecond) // let the receivers drain
	return results(r.Stdout)
}

var users = []struct {
	name   string
	nobody bool
}{{"root", false}, {"nobody", true}}

// Class 1: udp_sendmsg reads an AF_UNSPEC address as AF_INET and sends to
// it. sendto, sendmsg and sendmmsg with AF_UNSPEC and 127.0.0.1:P bytes
// (plain, sockaddr_storage-long, with 0.0.0.0, on a socket connected to an
// allowed port, on UDP-Lite) must be decided like AF_INET: under the
// default policy, under --deny with --allow-all, and under an --allow for
// another port, nothing arrives at P. The control, --allow-all alone,
// shows the same bytes reach P, so the kernel does read them as an
// address. An IPv6 UDP socket ignores AF_UNSPEC (udpv6_sendmsg): nothing
// arrives either way.
func TestAFUnspecSendsAreDecided(t *testing.T) {
	nettest.RequireRoot(t)
	v4 := []string{"unspec_sendto", "unspec_sendmsg", "unspec_sendmmsg", "unspec_sendto_storage",
		"unspec_sendto_zero", "unspec_sendto_connected_elsewhere", "unspec_sendmsg_connected_elsewhere",
		"unspec_sendto_udplite"}
	for _, u := range users {
		for _, pol := range []struct {
			name    string
			control bool
			flags   func(port, allowed int) []string
		}{
			{"default", false, func(int, int) []string { return nil }},
			{"deny+allow-all", false, func(p, _ int) []string {
				return []string{"--deny", fmt.Sprintf("udp:127.0.0.1:%d", p), "--allow-all"}
			}},
			{"allow-other", false, func(_, a int) []string { return []string{"--allow", fmt.Sprintf("udp:127.0.0.1:%d", a)} }},
			{"control-allow-all", true, func(int, int) []string { return []string{"--allow-all"} }},
		} {
			t.Run(u.name+"/"+pol.name, func(t *testing.T) {
				port, udp, lite := dualStackUDPCounter(t)
				allowed, _ := udpCounter(t)
				got := runWire(t, u.nobody, pol.flags(port, allowed), "unspec", strconv.Itoa(port), strconv.Itoa(allowed))
				want := "EACCES"
				if pol.control {
					want = "ok"
				}
				for _, k := range v4 {
					if got[k] != want {
						t.Errorf("%s: got %q, want %q", k, got[k], want)
					}
				}
				t.Logf("arrived at the forbidden port: %d UDP, %d UDP-Lite", udp.Load(), lite.Load())
				if pol.control {
					if udp.Load() != 8 || lite.Load() != 1 {
						t.Errorf("control: want 8 UDP and 1 UDP-Lite datagrams at the port")
					}
				} else if udp.Load()+lite.Load() != 0 {
					t.Errorf("AF_UNSPEC sends reached a forbidden destination")
				}
			})
		}
	}
}

// Class 3: Linux connects and sends to 0.0.0.0 as to the socket's source
// address, or an output interface's, or 127.0.0.1 (ip_route_output_key_hash_rcu),
// to :: as to ::1, or ::ffff:127.0.0.1 from a socket bound to a v4-mapped
// address (tcp_v6_connect, ip6_datagram_connect, udpv6_sendmsg), and to
// v4-mapped addresses as to IPv4. Rules must see that destination: with
// the loopback destinations denied (127.0.0.1, ::1, and 127.0.0.5 for the
// sockets bound there or naming it with IP_PKTINFO) and --allow-all, and
// under the default policy, nothing arrives at the dual-stack counters.
// The control without --deny shows every attempt arrives.
func TestUnspecifiedDestinations(t *testing.T) {
	nettest.RequireRoot(t)
	tcpCases := []string{"tcp_0.0.0.0", "tcp6_::", "tcp6_::ffff:0.0.0.0", "tcp6_::ffff:127.0.0.1",
		"tcp6_bound_mapped_::", "tcp6_bound_mapped5_::ffff:0.0.0.0", "tcp_bound5_0.0.0.0", "tcp_bindtodevice_lo_0.0.0.0",
		"tcp_fastopen_pktinfo5_0.0.0.0"}
	// What goes to 127.0.0.1 itself (the rest goes to ::1 or 127.0.0.5).
	to127 := []string{"tcp_0.0.0.0", "tcp6_::ffff:0.0.0.0", "tcp6_::ffff:127.0.0.1", "tcp6_bound_mapped_::",
		"tcp_bindtodevice_lo_0.0.0.0", "tcp_fastopen_pktinfo5_0.0.0.0"}
	udpCases := []string{"udp_0.0.0.0", "udp6_::", "udp6_::ffff:0.0.0.0", "udp6_::ffff:127.0.0.1",
		"udp6_bound_mapped_::", "udp_bound5_0.0.0.0", "udp_connect_0.0.0.0", "udp_bindtodevice_lo_0.0.0.0",
		"udp_unicast_if_lo_0.0.0.0", "udp_pktinfo5_0.0.0.0"}
	for _, u := range users {
		for _, pol := range []struct {
			name    string
			control bool
			flags   func(tp, up int) []string
		}{
			{"deny+allow-all", false, func(tp, up int) []string {
				var f []string
				for _, a := range []string{"127.0.0.1", "[::1]", "127.0.0.5"} {
					f = append(f, "--deny", fmt.Sprintf("tcp:%s:%d", a, tp), "--deny", fmt.Sprintf("udp:%s:%d", a, up))
				}
				return append(f, "--allow-all")
			}},
			{"deny-127.0.0.1-only", false, func(tp, up int) []string {
				return []string{"--deny", fmt.Sprintf("tcp:127.0.0.1:%d", tp), "--allow-all"}
			}},
			{"default", false, func(int, int) []string { return nil }},
			{"control-allow-all", true, func(int, int) []string { return []string{"--allow-all"} }},
		} {
			t.Run(u.name+"/"+pol.name, func(t *testing.T) {
				l, err := net.Listen("tcp", "[::]:0") // dual-stack
				if err != nil {
					t.Fatal(err)
				}
				tport := l.Addr().(*net.TCPAddr).Port
				conns, at127 := countAcceptsTo(t, l)
				if pol.name == "deny-127.0.0.1-only" {
					got := runWire(t, u.nobody, pol.flags(tport, 0), "unspecified", strconv.Itoa(tport), "9")
					for _, k := range to127 {
						if got[k] != "EACCES" {
							t.Errorf("%s: got %q, want EACCES", k, got[k])
						}
					}
					t.Logf("arrived: %d TCP connections, %d of them at 127.0.0.1", conns.Load(), at127.Load())
					if at127.Load() != 0 || conns.Load() != int64(len(tcpCases)-len(to127)) {
						t.Errorf("want %d connections, none at 127.0.0.1", len(tcpCases)-len(to127))
					}
					return
				}
				uport, dgrams, _ := dualStackUDPCounter(t)
				got := runWire(t, u.nobody, pol.flags(tport, uport), "unspecified", strconv.Itoa(tport), strconv.Itoa(uport))
				want := "EACCES"
				if pol.control {
					want = "ok"
				}
				for _, k := range append(tcpCases, udpCases...) {
					if got[k] != want {
						t.Errorf("%s: got %q, want %q", k, got[k], want)
					}
				}
				t.Logf("arrived: %d TCP connections, %d UDP datagrams", conns.Load(), dgrams.Load())
				if pol.control {
					if conns.Load() != int64(len(tcpCases)) || dgrams.Load() != int64(len(udpCases)) {
						t.Errorf("control: want %d connections and %d datagrams", len(tcpCases), len(udpCases))
					}
				} else if conns.Load()+dgrams.Load() != 0 {
					t.Errorf("unspecified destinations reached a forbidden endpoint")
				}
			})
		}
	}
}

// sniffer records, one "PROTO DPORT" line per packet, every TCP and UDP
// packet that arrives at the peer's veth, IPv6 extension headers skipped:
// what went via the peer, whatever the peer then does with it (it neither
// forwards nor processes source routes, so it drops them).
const sniffer = `
import socket, struct, sys
out = open(sys.argv[1], "a", buffering=1)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("veth1", 0))
print("ready", flush=True)
while True:
    b, a = s.recvfrom(65535)
    if a[2] == socket.PACKET_OUTGOING:
        continue
    et, p = struct.unpack("!H", b[12:14])[0], b[14:]
    if et == 0x0800:
        proto, off = p[9], (p[0] & 15) * 4
    elif et == 0x86dd:
        proto, off = p[6], 40
        while proto in (0, 43, 60) and len(p) > off + 1:
            proto, off = p[off], off + (p[off + 1] + 1) * 8
    else:
        continue
    if proto in (6, 17) and len(p) >= off + 4:
        out.write("%d %d\n" % (proto, struct.unpack("!H", p[off + 2:off + 4])[0]))
`

// Class 4: routing headers and source routes make the packets go via
// another host than the decided destination, for the call and for every
// later untrapped send. The program (testdata/srcroute.c) aims at its own
// receivers on this namespace's address, via the peer namespace: an IPv6
// segment routing header (setsockopt, before and after an allowed connect,
// with high bits in level and optname, on UDP and TCP), type 0 and 2 headers,
// IPV6_RTHDR and IPV6_2292RTHDR control messages, IPV6_2292PKTOPTIONS,
// and IPv4 LSRR and SSRR (IP_OPTIONS, IP_RETOPTS control messages, TCP,
// after connect, v4-mapped on IPv6 sockets). The peer counts what reaches
// it. Natively, as root, every header Linux accepts takes the packets via
// the peer (the control); as nobody, the segment routing header does too
// (IPv4 options need CAP_NET_RAW). Under the sandbox, with the default
// policy and with --allow-all, each steering call gets EPERM and nothing
// arrives at the peer.
func TestSourceRoutingRefused(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "srcroute.c"), false)
	nobody := asNobody(sb, prog)
	n := nettest.NewNetns(t)
	out := filepath.Join(t.TempDir(), "via")
	n.StartPeer(t, "ready", "python3", "-c", sniffer, out)
	steers := map[bool][]string{ // what natively goes via the peer
		false: {"udp6_rthdr_setsockopt", "udp6_rthdr_after_connect", "udp6_rthdr_highbits", "tcp6_rthdr_connect",
			"tcp6_rthdr_after_connect", "udp_ip_options_lsrr", "udp_ip_options_ssrr", "udp_retopts_cmsg_lsrr",
			"tcp_ip_options_lsrr_connect", "udp_ip_options_after_connect", "udp6_ip_options_mapped", "udp6_retopts_cmsg_mapped"},
		true: {"udp6_rthdr_setsockopt", "udp6_rthdr_after_connect", "udp6_rthdr_highbits", "tcp6_rthdr_connect",
			"tcp6_rthdr_after_connect"},
	}
	base := 20000
	type run struct {
		name      string
		nobody    bool
		sandboxed bool
		policy    []string
		base      int
		results   map[string]string
	}
	var runs []*run
	for _, u := range users {
		for _, r := range []run{
			{name: "native", nobody: u.nobody},
			{name: "default", nobody: u.nobody, sandboxed: true},
			{name: "allow-all", nobody: u.nobody, sandboxed: true, policy: []string{"--allow-all"}},
		} {
			r.name = u.name + "/" + r.name
			r.base = base
			base += 100
			argv := []string{prog}
			if r.sandboxed {
				argv = append(append(append([]string{sb, "run", "--log-level", "error"}, r.policy...), "--"), argv...)
			}
			if r.nobody {
				argv = append(nobody[:len(nobody):len(nobody)], argv...)
			}
			argv = append(argv, strconv.Itoa(r.base), nettest.LocalIP, nettest.LocalIP6, nettest.PeerIP, nettest.PeerIP6)
			res := n.Run(time.Minute, argv...)
			if res.ExitCode != 0 {
				t.Fatalf("%s: %v", r.name, res)
			}
			r.results = map[string]string{}
			for k, v := range results(res.Stdout) {
				name, port, _ := strings.Cut(k, " ")
				p, _ := strconv.Atoi(port)
				r.results[name] = v
				r.results[name+" port"] = strconv.Itoa(p)
			}
			runs = append(runs, &r)
		}
	}
	time.Sleep(500 * time.Millisecond) // let the sniffer drain
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	via := map[int]int{} // packets seen at the peer, by destination port
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			p, _ := strconv.Atoi(f[1])
			via[p]++
		}
	}
	for _, r := range runs {
		total := 0
		for name, v := range r.results {
			if strings.HasSuffix(name, " port") {
				continue
			}
			p, _ := strconv.Atoi(r.results[name+" port"])
			total += via[p]
			if r.sandboxed && v != "EPERM" {
				t.Errorf("%s: %s: got %q, want EPERM", r.name, name, v)
			}
		}
		t.Logf("%s: %d packets via the peer", r.name, total)
		if r.sandboxed && total != 0 {
			t.Errorf("%s: packets went via the peer", r.name)
		}
		if !r.sandboxed {
			for _, name := range steers[r.nobody] {
				if p, _ := strconv.Atoi(r.results[name+" port"]); r.results[name] != "ok" || via[p] == 0 {
					t.Errorf("control %s: %s: %q, %d packets via the peer; want ok and some", r.name, name, r.results[name], via[p])
				}
			}
		}
	}
}
