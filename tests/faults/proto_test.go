package faults_test

// Faults and the protocol they are given to: a fault with a meaning on UDP
// (blackhole, bandwidth) is that meaning's twin there; one with none
// (reset on UDP, loss on TCP) is refused when the policy loads, or on a
// DEST of both protocols given only where it has one. A blackhole hides
// the peer's end, as a DROP of its packets does; the onward connection
// leaves from the address the program bound.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sandbox/tests/internal/dnstest"
	"sandbox/tests/internal/nettest"
)

// loggingEcho is a UDP echo server on 10.231.0.2:9001 that logs the source
// address and size of each datagram to argv[1], and a TCP server on the
// same port that answers each connection "ok" and closes.
const loggingEcho = `
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("10.231.0.2", 9001)); t.listen(8)
def serve():
    while True:
        c, a = t.accept(); log.write("tcp %s\n" % a[0]); c.recv(4096); c.sendall(b"ok"); c.close()
threading.Thread(target=serve, daemon=True).start()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.231.0.2", 9001)); print("ready", flush=True)
while True:
    b, a = s.recvfrom(65536); log.write("udp %s %d\n" % (a[0], len(b))); s.sendto(b, a)
`

// udpProbe9001 is udpProbe to port 9001.
var udpProbe9001 = strings.Replace(udpProbe, "9999", "9001", 1)

// arrivals counts the lines of the log that start with prefix.
func arrivals(t *testing.T, log, prefix string) int {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// udpEnv is a test network with loggingEcho in the peer.
type udpEnv struct {
	*env
	log string
}

func setupUDP(t *testing.T) *udpEnv {
	n := nettest.NewNetns(t)
	e := &udpEnv{env: &env{n: n, sb: nettest.BuildSandbox(t)}, log: filepath.Join(t.TempDir(), "arrivals")}
	n.StartPeer(t, "ready", "python3", "-c", loggingEcho, e.log)
	return e
}

// probe runs a UDP probe, natively or (with fault) sandboxed, and returns
// what it printed and how many datagrams reached the server meanwhile.
func (e *udpEnv) probe(t *testing.T, prog, fault string) (string, int) {
	t.Helper()
	before := arrivals(t, e.log, "udp ")
	argv := []string{"python3", "-c", prog}
	if fault != "" {
		argv = append([]string{e.sb, "run", "--fault", fault, "--allow-all", "--"}, argv...)
	}
	r := e.n.Run(30*time.Second, argv...)
	if r.ExitCode != 0 {
		t.Fatalf("%v\n%s", r, r.Stdout)
	}
	time.Sleep(100 * time.Millisecond) // the log's last lines
	return r.Stdout, arrivals(t, e.log, "udp ") - before
}

// TestUDPBlackholeMatchesItsTwin: on UDP a blackhole drops every datagram
// its way, as iptables DROP does: both ways or up, the server gets none;
// down, it gets them all and the program no answer. Each prints what its
// twin prints, and the server counts the same.
func TestUDPBlackholeMatchesItsTwin(t *testing.T) {
	e := setupUDP(t)
	if out, n := e.probe(t, udpProbe9001, ""); out != "echoes 20\n" || n != 20 {
		t.Fatalf("natively: %q, %d arrived", out, n)
	}
	type seen struct {
		out string
		n   int
	}
	got := map[string]seen{}
	for _, f := range []string{"blackhole", "blackhole@up", "blackhole@down"} {
		out, n := e.probe(t, udpProbe9001, "udp:10.231.0.2:9001="+f)
		got[f] = seen{out, n}
	}
	// Up: the program's datagrams dropped as they reach the server.
	in := []string{"INPUT", "-p", "udp", "--dport", "9001", "-j", "DROP"}
	e.twin(t, append([]string{"iptables", "-I"}, in...), append([]string{"iptables", "-D"}, in...))
	out, n := e.probe(t, udpProbe9001, "")
	up := seen{out, n}
	e.n.MustRunPeer(t, append([]string{"iptables", "-D"}, in...)...)
	// Down: the server's dropped as they reach the program's namespace (a
	// DROP in the server's OUTPUT would fail its sendto with EPERM).
	back := []string{"INPUT", "-p", "udp", "--sport", "9001", "-j", "DROP"}
	e.n.MustRun(t, append([]string{"iptables", "-I"}, back...)...)
	out, n = e.probe(t, udpProbe9001, "")
	down := seen{out, n}
	e.n.MustRun(t, append([]string{"iptables", "-D"}, back...)...)
	if up != (seen{"echoes 0\n", 0}) || down != (seen{"echoes 0\n", 20}) {
		t.Fatalf("the twins: up %+v, down %+v", up, down)
	}
	for f, want := range map[string]seen{"blackhole": up, "blackhole@up": up, "blackhole@down": down} {
		if got[f] != want {
			t.Errorf("%s: %q, %d arrived; its twin %q, %d arrived", f, got[f].out, got[f].n, want.out, want.n)
		}
	}
}

// paceProbe sends 30 datagrams of 1000 bytes and prints how many echoes
// came back and when the last did, in tenths of a second.
const paceProbe = `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.connect(("10.231.0.2", 9001)); s.settimeout(3)
t = time.time(); last = t
for i in range(30):
    s.send(b"x" * 1000)
n = 0
try:
    while n < 30:
        s.recv(2048); n += 1; last = time.time()
except socket.timeout:
    pass
print("echoes", n)
print("tenths", round((last - t) * 10))
`

// TestUDPBandwidthMatchesItsTwin: bandwidth on UDP paces the datagrams;
// its twin is an htb class on what the peer sends, at 10 kB/s with a
// 10 KiB burst: 30 kB of echoes take about 2 s, all of them delivered.
func TestUDPBandwidthMatchesItsTwin(t *testing.T) {
	e := setupUDP(t)
	plain, plainT := outcome(e.n.Run(30*time.Second, "python3", "-c", paceProbe))
	got, gotT := outcome(e.n.Run(30*time.Second, e.sb, "run", "--fault", "udp:10.231.0.2:9001=bandwidth:10KB@down", "--allow-all", "--", "python3", "-c", paceProbe))
	e.twin(t, []string{"tc", "qdisc", "add", "dev", "veth1", "root", "handle", "1:", "htb", "default", "10"}, []string{"tc", "qdisc", "del", "dev", "veth1", "root"})
	e.n.MustRunPeer(t, "tc", "class", "add", "dev", "veth1", "parent", "1:", "classid", "1:10", "htb", "rate", "80kbit", "burst", "10k")
	want, wantT := outcome(e.n.Run(30*time.Second, "python3", "-c", paceProbe))
	if got != "echoes 30" || want != got || plain != got {
		t.Errorf("bandwidth shows %q, its twin %q, without either %q", got, want, plain)
	}
	if plainT > 5 || wantT < 15 || gotT < wantT*2/3 || gotT > wantT*3/2 {
		t.Errorf("bandwidth took %d tenths, its twin %d, without either %d", gotT, wantT, plainT)
	}
}

// ender is a server in the peer that accepts on each port of argv[2:] and
// ends each connection 0.5 s later, without reading it: with an RST
// (argv[1] "reset"), or a close ("close": a FIN, or an RST when the
// program's request arrived and is left unread).
const ender = `
import socket, struct, sys, threading, time
mode = sys.argv[1]
def end(c):
    time.sleep(0.5)
    if mode == "reset":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
def serve(port):
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("10.231.0.2", port)); l.listen(16)
    while True:
        c, _ = l.accept(); threading.Thread(target=end, args=(c,)).start()
for p in sys.argv[2:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
`

// portProbe is probe to the port of argv[1].
var portProbe = strings.Replace(probe, `("10.231.0.2", 8080)`, `("10.231.0.2", int(sys.argv[1]))`, 1)

// TestBlackholeHidesThePeersEnd: a peer that resets (or closes) 0.5 s
// after it accepted. Natively the program sees it at once; behind a DROP
// of the peer's packets after the handshake (the twin of blackhole and
// blackhole@down) it sees nothing, and its read times out; behind a DROP
// of its own data (blackhole@up's), it sees the peer's end (the close is
// a FIN then: nothing arrived to be left unread). Sandboxed, each fault
// prints what its twin prints.
func TestBlackholeHidesThePeersEnd(t *testing.T) {
	n := nettest.NewNetns(t)
	e := &env{n: n, sb: nettest.BuildSandbox(t)}
	const resetPort, closePort = "8081", "8082"
	n.StartPeer(t, "ready", "python3", "-c", ender, "reset", resetPort)
	n.StartPeer(t, "ready", "python3", "-c", ender, "close", closePort)
	type seen struct {
		out    string
		tenths int
	}
	// Each probe at once: they are independent.
	all := func(argv func(port string) []string, ports ...string) map[string]seen {
		out := map[string]seen{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, p := range ports {
			wg.Go(func() {
				o, tenths := outcome(n.Run(30*time.Second, argv(p)...))
				mu.Lock()
				out[p] = seen{o, tenths}
				mu.Unlock()
			})
		}
		wg.Wait()
		return out
	}
	native := func(port string) []string { return []string{"python3", "-c", portProbe, port} }
	plain := all(native, resetPort, closePort)
	if plain[resetPort].out != "ECONNRESET" || plain[closePort].out != "ECONNRESET" {
		t.Fatalf("natively: %+v", plain)
	}
	faulted := map[string]map[string]seen{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, f := range []string{"blackhole", "blackhole@down", "blackhole@up"} {
		wg.Go(func() {
			got := all(func(port string) []string {
				return []string{e.sb, "run", "--fault", "tcp:10.231.0.2:" + port + "=" + f, "--allow-all", "--", "python3", "-c", portProbe, port}
			}, resetPort, closePort)
			mu.Lock()
			faulted[f] = got
			mu.Unlock()
		})
	}
	wg.Wait()
	// Down: every packet of the peer's but its SYN-ACK, its RST and FIN
	// included, dropped as it reaches the program's namespace.
	down := []string{"INPUT", "-p", "tcp", "-m", "multiport", "--sports", resetPort + "," + closePort, "!", "--tcp-flags", "SYN", "SYN", "-j", "DROP"}
	n.MustRun(t, append([]string{"iptables", "-I"}, down...)...)
	downTwin := all(native, resetPort, closePort)
	n.MustRun(t, append([]string{"iptables", "-D"}, down...)...)
	// Up: the program's data.
	up := []string{"INPUT", "-p", "tcp", "-m", "multiport", "--dports", resetPort + "," + closePort, "--tcp-flags", "PSH", "PSH", "-j", "DROP"}
	e.twin(t, append([]string{"iptables", "-I"}, up...), append([]string{"iptables", "-D"}, up...))
	upTwin := all(native, resetPort, closePort)
	for _, p := range []string{resetPort, closePort} {
		if want := map[string]string{resetPort: "ECONNRESET", closePort: "ok 0"}[p]; downTwin[p].out != "timeout" || upTwin[p].out != want {
			t.Fatalf("the twins of port %s: down %+v, up %+v; want a timeout, and %s", p, downTwin[p], upTwin[p], want)
		}
	}
	for f, twin := range map[string]map[string]seen{"blackhole": downTwin, "blackhole@down": downTwin, "blackhole@up": upTwin} {
		for _, p := range []string{resetPort, closePort} {
			got, want := faulted[f][p], twin[p]
			if got.out != want.out || got.tenths < want.tenths-3 || got.tenths > want.tenths+3 {
				t.Errorf("%s, the peer %s: %q after %d tenths, its twin %q after %d",
					f, map[string]string{resetPort: "resets", closePort: "closes"}[p], got.out, got.tenths, want.out, want.tenths)
			}
		}
	}
}

// unixCloser serves a Unix stream socket at argv[1] and closes each
// connection 0.5 s after it accepted it, without reading it.
const unixCloser = `
import os, socket, sys, threading, time
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); l.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); l.listen(8)
print("ready", flush=True)
def end(c):
    time.sleep(0.5); c.close()
while True:
    c, _ = l.accept(); threading.Thread(target=end, args=(c,)).start()
`

// TestUnixBlackholeHidesThePeersEnd: on a Unix stream, a peer that closes
// 0.5 s after it accepted (natively ECONNRESET: the request is left
// unread) shows nothing behind a blackhole: the program prints what it
// prints against a peer that never reads nor closes (the twin of a
// blackhole, TestUnixStreamFaultsMatchTheirTwins), a read timeout. Behind
// blackhole@up it sees the close, a plain one: no request arrived.
func TestUnixBlackholeHidesThePeersEnd(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	dir, err := os.MkdirTemp("", "faults-unix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	closer, silent := dir+"/closer.sock", dir+"/silent.sock"
	startLocal(t, "python3", "-c", unixCloser, closer)
	startLocal(t, "python3", "-c", unixServer, silent, "silent")
	run := func(argv ...string) (string, int) { return outcome(nettest.Run(30*time.Second, argv...)) }
	plain, plainT := run("python3", "-c", unixProbe, closer)
	twin, twinT := run("python3", "-c", unixProbe, silent)
	if plain != "ECONNRESET" || twin != "timeout" {
		t.Fatalf("natively: %q against the closer, %q against the silent peer", plain, twin)
	}
	var wg sync.WaitGroup
	for _, c := range []struct {
		fault string
		want  string
		wantT int
	}{{"blackhole", twin, twinT}, {"blackhole@down", twin, twinT}, {"blackhole@up", "ok 0", plainT}} {
		wg.Go(func() {
			got, gotT := run(sb, "run", "--fault", "unix:"+closer+"="+c.fault, "--allow-all", "--", "python3", "-c", unixProbe, closer)
			if got != c.want || gotT < c.wantT-3 || gotT > c.wantT+3 {
				t.Errorf("%s: %q after %d tenths, want %q after %d", c.fault, got, gotT, c.want, c.wantT)
			}
		})
	}
	wg.Wait()
}

// TestOnwardConnectionsLeaveFromTheProgramsAddress: a program bound to a
// second address of its namespace (10.231.0.3, fd00:231::3) reaches the
// peer from that address under a fault, as natively: TCP (IPv4 and IPv6)
// and UDP (connected and not), from a bound Python socket. (curl
// --interface binds with IP_BIND_ADDRESS_NO_PORT: its socket is connected
// as it is, without faults.) Only the port differs: the program's socket
// holds its own.
func TestOnwardConnectionsLeaveFromTheProgramsAddress(t *testing.T) {
	n := nettest.NewNetns(t)
	web := dnstest.StartHTTP(t, n)
	sb := nettest.BuildSandbox(t)
	log := filepath.Join(t.TempDir(), "arrivals")
	n.StartPeer(t, "ready", "python3", "-c", loggingEcho, log)
	n.MustRun(t, "ip", "addr", "add", "10.231.0.3/24", "dev", "veth0")
	n.MustRun(t, "ip", "addr", "add", "fd00:231::3/64", "dev", "veth0", "nodad")
	lastFrom := func() string {
		r := web.Requests()
		if len(r) == 0 {
			return ""
		}
		f := strings.Fields(r[len(r)-1])
		from := f[len(f)-1]
		return strings.Trim(from[:strings.LastIndexByte(from, ':')], "[]")
	}
	// get binds argv[1], fetches / from argv[2]:8080 and prints the
	// reply's last line and its peer (loopback when relayed).
	get := `
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET); s.bind((sys.argv[1], 0)); s.settimeout(5)
s.connect((sys.argv[2], 8080)); peer = s.getpeername()[0]
s.sendall(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(data.decode().split("\n")[-2], peer)
`
	// The IPv6 address the kernel would not choose itself (a secondary
	// IPv4 address it never does).
	r := n.Run(30*time.Second, "python3", "-c", `import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(("fd00:231::2", 9)); print(s.getsockname()[0])`)
	from6 := "fd00:231::3"
	if strings.TrimSpace(r.Stdout) == from6 {
		from6 = nettest.LocalIP6
	}
	for _, c := range []struct{ from, to, fault, front string }{
		{"10.231.0.3", "10.231.0.2", "tcp:10.231.0.2:8080=latency:10ms", "127.0.0.1"},
		{from6, "fd00:231::2", "tcp:[fd00:231::2]:8080=latency:10ms", "::1"},
	} {
		if r := n.Run(30*time.Second, "python3", "-c", get, c.from, c.to); r.ExitCode != 0 || r.Stdout != "ok "+c.to+"\n" {
			t.Fatalf("natively: %v\n%s", r, r.Stdout)
		}
		native := lastFrom()
		if r := n.Run(30*time.Second, sb, "run", "--fault", c.fault, "--allow-all", "--", "python3", "-c", get, c.from, c.to); r.ExitCode != 0 || r.Stdout != "ok "+c.front+"\n" {
			t.Fatalf("under %s (relayed: the peer is the front): %v\n%s", c.fault, r, r.Stdout)
		}
		if got := lastFrom(); native != c.from || got != native {
			t.Errorf("under %s the server saw the program from %s, natively from %s", c.fault, got, native)
		}
	}
	udp := `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.231.0.3", 0)); s.settimeout(2)
if sys.argv[1] == "connected":
    s.connect(("10.231.0.2", 9001)); s.send(b"x")
else:
    s.sendto(b"x", ("10.231.0.2", 9001))
s.recvfrom(64)
`
	lastUDP := func() string {
		b, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		return lines[len(lines)-1]
	}
	for _, mode := range []string{"connected", "unconnected"} {
		if r := n.Run(30*time.Second, "python3", "-c", udp, mode); r.ExitCode != 0 {
			t.Fatalf("natively: %v", r)
		}
		time.Sleep(100 * time.Millisecond)
		native := lastUDP()
		if r := n.Run(30*time.Second, sb, "run", "--fault", "udp:10.231.0.2:9001=latency:10ms", "--allow-all", "--", "python3", "-c", udp, mode); r.ExitCode != 0 {
			t.Fatalf("under latency: %v", r)
		}
		time.Sleep(100 * time.Millisecond)
		if got := lastUDP(); native != "udp 10.231.0.3 1" || got != native {
			t.Errorf("UDP, %s: the server logged %q under latency, %q natively", mode, got, native)
		}
	}
}

// TestFaultsWithNoMeaningOnTheProtocol: a fault with no meaning on its
// DEST's protocol is an error when the rules load (exit 125, one line that
// names the fault, the protocol and what to use instead), from a flag and
// from a policy; on a DEST of both protocols each protocol gets what
// applies to it: reset:0+loss:1 resets TCP and drops UDP.
func TestFaultsWithNoMeaningOnTheProtocol(t *testing.T) {
	e := setupUDP(t)
	for _, c := range []struct{ fault, want string }{
		{"udp:10.231.0.2:9001=reset:0", "reset:0 has no meaning on UDP, only on TCP and Unix streams: a datagram socket has no connection to reset; for UDP use blackhole (every datagram dropped) or loss:P"},
		{"udp:10.231.0.2:9001=latency:1s+slice:10", "slice:10 has no meaning on UDP"},
		{"udp:10.231.0.2:9001=limit:100", "limit:100 has no meaning on UDP"},
		{"udp:10.231.0.2:9001=slow-close:1s", "slow-close:1s has no meaning on UDP"},
		{"udp:10.231.0.2:9001=connect-latency:1s", "connect-latency:1s has no meaning on UDP"},
		{"tcp:10.231.0.2:9001=loss:0.1", "loss:0.1 has no meaning on TCP"},
		{"tcp:10.231.0.2:9001=duplicate:0.1", "duplicate:0.1 has no meaning on TCP"},
		{"unix:/run/x.sock=loss:0.1", "loss:0.1 has no meaning on Unix streams"},
	} {
		r := nettest.Run(30*time.Second, e.sb, "run", "--fault", c.fault, "--allow-all", "--", "true")
		if r.ExitCode != 125 || !strings.Contains(r.Stderr, "--fault "+c.fault+": "+c.want) || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("--fault %s: exit %d\n%s\nwant 125 and %q", c.fault, r.ExitCode, r.Stderr, c.want)
		}
	}
	policy := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(policy, []byte("rules:\n  - allow: udp:10.231.0.2:9001\n    faults: [latency:1s, reset:0]\n"), 0o644)
	if r := nettest.Run(30*time.Second, e.sb, "run", "--policy", policy, "--", "true"); r.ExitCode != 125 || !strings.Contains(r.Stderr, "reset:0 has no meaning on UDP") {
		t.Errorf("a policy: exit %d\n%s", r.ExitCode, r.Stderr)
	}
	// Of both protocols: TCP reset, UDP dropped; natively both answered.
	tcp := fmt.Sprintf(`
import errno, socket
s = socket.create_connection(("10.231.0.2", 9001), timeout=5); s.settimeout(2)
try:
    s.sendall(b"hi"); print("tcp", s.recv(64).decode() or "eof")
except OSError as e:
    print("tcp", errno.errorcode.get(e.errno, e.errno))
%s`, udpProbe9001)
	run := func(argv ...string) string {
		r := e.n.Run(30*time.Second, argv...)
		if r.ExitCode != 0 {
			t.Fatalf("%v\n%s", r, r.Stdout)
		}
		return r.Stdout
	}
	if got := run("python3", "-c", tcp); got != "tcp ok\nechoes 20\n" {
		t.Fatalf("natively: %q", got)
	}
	if got := run(e.sb, "run", "--fault", "10.231.0.2:9001=reset:0+loss:1", "--allow-all", "--", "python3", "-c", tcp); got != "tcp ECONNRESET\nechoes 0\n" {
		t.Errorf("reset:0+loss:1 on a DEST of both: %q", got)
	}
}

// TestConnectVerdictsAreNoFaults: a connect verdict given as a fault, and
// an unknown fault, are errors that name the fix.
func TestConnectVerdictsAreNoFaults(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	for fault, want := range map[string]string{
		"refuse":      "--fault tcp:127.0.0.1:9=refuse: refuse is a connect verdict, not a fault on a live connection: write --refuse DEST",
		"deny":        "deny is a connect verdict, not a fault on a live connection: write --deny DEST[=EACCES|EPERM]",
		"timeout:1s":  "write --timeout DEST[=DURATION]",
		"unreachable": "write --unreachable DEST[=net|host]",
		"bogus":       "--fault tcp:127.0.0.1:9=bogus: unknown fault bogus (known: reset, blackhole, latency, connect-latency, bandwidth, limit, slice, slow-close, loss, duplicate, toxicity)",
		"timeout:5s":  "--fault tcp:127.0.0.1:9=timeout:5s: timeout:5s: timeout is a connect verdict",
	} {
		r := nettest.Run(30*time.Second, sb, "run", "--fault", "tcp:127.0.0.1:9="+fault, "--allow-all", "--", "true")
		if r.ExitCode != 125 || !strings.Contains(r.Stderr, want) {
			t.Errorf("--fault %s: exit %d\n%s\nwant 125 and %q", fault, r.ExitCode, r.Stderr, want)
		}
	}
}

// TestFaultsOfTheOtherProtocolAreNoRelay: on a DEST of both protocols, a
// socket of the protocol the faults mean nothing to is connected directly
// (its peer the server itself, as for a spared connection), not carried
// untouched by a relay; one they mean something to is relayed.
func TestFaultsOfTheOtherProtocolAreNoRelay(t *testing.T) {
	e := setupUDP(t)
	peer := `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.connect(("10.231.0.2", 9001)); print(s.getpeername()[0])
`
	for _, c := range []struct{ proto, fault, want string }{
		{"udp", "reset:0+limit:1", "10.231.0.2"},
		{"tcp", "loss:1+duplicate:1", "10.231.0.2"},
		{"udp", "reset:0+loss:0.01", "127.0.0.1"},
		{"tcp", "reset:0+loss:1", "127.0.0.1"},
	} {
		r := e.n.Run(30*time.Second, e.sb, "run", "--fault", "10.231.0.2:9001="+c.fault, "--allow-all", "--", "python3", "-c", peer, c.proto)
		if strings.TrimSpace(r.Stdout) != c.want {
			t.Errorf("%s under %s: the peer is %q, want %s\n%v", c.proto, c.fault, r.Stdout, c.want, r)
		}
	}
}
