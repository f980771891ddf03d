// Package faults_test proves each fault on a live connection against its
// real twin, built in a network namespace: iptables REJECT with a TCP reset
// after the handshake for reset, a DROP after the handshake for blackhole,
// tc netem delay for latency. The same probe runs against the twin natively
// and against the plain server under `sandbox run --fault`; what it prints
// must be the same.
package faults_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"sandbox/tests/internal/dnstest"
	"sandbox/tests/internal/nettest"
)

func TestMain(m *testing.M) { os.Exit(nettest.Main(m)) }

// probe connects to the peer's web server, sends a request, reads with a
// 2 s timeout, and prints what it saw: the errno name of a failure, or
// "ok N" with the bytes read, and the elapsed time in tenths of a second.
const probe = `
import errno, socket, sys, time
t = time.time()
s = socket.create_connection(("10.231.0.2", 8080), timeout=5)
s.settimeout(2)
try:
    s.sendall(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        n += len(b)
    print("ok", n)
except socket.timeout:
    print("timeout")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
print("tenths", round((time.time() - t) * 10))
`

type env struct {
	n  *nettest.Netns
	sb string
}

func setup(t *testing.T) *env {
	n := nettest.NewNetns(t)
	dnstest.StartHTTP(t, n)
	return &env{n: n, sb: nettest.BuildSandbox(t)}
}

func (e *env) native() nettest.Result {
	return e.n.Run(30*time.Second, "python3", "-c", probe)
}

func (e *env) faulted(fault string) nettest.Result {
	return e.n.Run(30*time.Second, e.sb, "run", "--fault", "tcp:10.231.0.2:8080="+fault, "--allow-all", "--", "python3", "-c", probe)
}

// twin applies a rule in the peer namespace until the test ends.
func (e *env) twin(t *testing.T, add, del []string) {
	t.Helper()
	e.n.MustRunPeer(t, add...)
	t.Cleanup(func() { e.n.Run(10*time.Second, append([]string{"ip", "netns", "exec", e.n.Peer}, del...)...) })
}

func outcome(r nettest.Result) (string, int) {
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 2 {
		return r.Stdout + r.Stderr, -1
	}
	tenths, _ := strconv.Atoi(strings.TrimPrefix(lines[1], "tenths "))
	return lines[0], tenths
}

func TestResetMatchesItsTwin(t *testing.T) {
	e := setup(t)
	got, _ := outcome(e.faulted("reset:0"))
	// The twin: the handshake passes, the first data gets an RST.
	rule := []string{"INPUT", "-p", "tcp", "--dport", "8080", "--tcp-flags", "PSH", "PSH", "-j", "REJECT", "--reject-with", "tcp-reset"}
	e.twin(t, append([]string{"iptables", "-I"}, rule...), append([]string{"iptables", "-D"}, rule...))
	want, _ := outcome(e.native())
	if got != want || want != "ECONNRESET" {
		t.Errorf("reset:0 shows %q, its twin %q", got, want)
	}
}

func TestBlackholeMatchesItsTwin(t *testing.T) {
	e := setup(t)
	got, gotT := outcome(e.faulted("blackhole"))
	rule := []string{"INPUT", "-p", "tcp", "--dport", "8080", "--tcp-flags", "PSH", "PSH", "-j", "DROP"}
	e.twin(t, append([]string{"iptables", "-I"}, rule...), append([]string{"iptables", "-D"}, rule...))
	want, wantT := outcome(e.native())
	if got != want || want != "timeout" || gotT < wantT-3 || gotT > wantT+3 {
		t.Errorf("blackhole shows %q after %d tenths, its twin %q after %d", got, gotT, want, wantT)
	}
}

func TestLatencyMatchesItsTwin(t *testing.T) {
	e := setup(t)
	if r := e.n.Run(10*time.Second, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"); r.ExitCode != 0 {
		t.Skip("this kernel has no sch_netem, so latency has no twin here (the relay's own test, sentry/relay, measures it)")
	}
	e.n.Run(10*time.Second, "tc", "qdisc", "del", "dev", "lo", "root")
	plain, plainT := outcome(e.native())
	// netem on the peer's side delays everything it sends, the SYN-ACK
	// included: connect-latency stands for the handshake's share.
	got, gotT := outcome(e.faulted("connect-latency:700ms+latency:700ms"))
	e.twin(t, []string{"tc", "qdisc", "add", "dev", "veth1", "root", "netem", "delay", "700ms"}, []string{"tc", "qdisc", "del", "dev", "veth1", "root"})
	want, wantT := outcome(e.native())
	if got != want || want != plain || !strings.HasPrefix(want, "ok ") {
		t.Errorf("latency shows %q, its twin %q, without either %q", got, want, plain)
	}
	if wantT < plainT+12 || gotT < wantT-4 || gotT > wantT+4 {
		t.Errorf("latency took %d tenths, its twin %d, without either %d", gotT, wantT, plainT)
	}
}

// bulk is a server in the peer that sends 120,000 bytes to each client
// once it has read its request.
const bulk = `
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("10.231.0.2", 8080)); l.listen(8); print("ready", flush=True)
while True:
    c, _ = l.accept(); c.recv(4096); c.sendall(b"x" * 120000); c.close()
`

// TestBandwidthMatchesItsTwin: the twin is an htb class that shapes what
// the peer sends to 40 kB/s.
func TestBandwidthMatchesItsTwin(t *testing.T) {
	n := nettest.NewNetns(t)
	e := &env{n: n, sb: nettest.BuildSandbox(t)}
	n.StartPeer(t, "ready", "python3", "-c", bulk)
	plain, plainT := outcome(e.native())
	got, gotT := outcome(e.faulted("bandwidth:40KB@down"))
	e.twin(t, []string{"tc", "qdisc", "add", "dev", "veth1", "root", "handle", "1:", "htb", "default", "10"}, []string{"tc", "qdisc", "del", "dev", "veth1", "root"})
	n.MustRunPeer(t, "tc", "class", "add", "dev", "veth1", "parent", "1:", "classid", "1:10", "htb", "rate", "320kbit", "burst", "16k")
	want, wantT := outcome(e.native())
	if got != "ok 120000" || want != got || plain != got {
		t.Errorf("bandwidth shows %q, its twin %q, without either %q", got, want, plain)
	}
	// 120 kB at 40 kB/s: about 3 s, both.
	if plainT > 10 || wantT < 20 || gotT < wantT*2/3 || gotT > wantT*3/2 {
		t.Errorf("bandwidth took %d tenths, its twin %d, without either %d", gotT, wantT, plainT)
	}
}

// TestSparedConnectionsAreNotRelayed: toxicity 0 spares every connection,
// which is then made directly: getpeername shows the server itself.
func TestSparedConnectionsAreNotRelayed(t *testing.T) {
	e := setup(t)
	peer := `import socket; s = socket.create_connection(("10.231.0.2", 8080)); print(s.getpeername()[0])`
	r := e.n.Run(30*time.Second, e.sb, "run", "--fault", "tcp:10.231.0.2:8080=toxicity:0+reset:0", "--allow-all", "--", "python3", "-c", peer)
	if strings.TrimSpace(r.Stdout) != "10.231.0.2" {
		t.Errorf("a spared connection: %v %q", r, r.Stdout)
	}
	r = e.n.Run(30*time.Second, e.sb, "run", "--fault", "tcp:10.231.0.2:8080=latency:1ms", "--allow-all", "--", "python3", "-c", peer)
	if strings.TrimSpace(r.Stdout) != "127.0.0.1" {
		t.Errorf("a relayed connection's peer (the documented difference): %v %q", r, r.Stdout)
	}
}

// echoUDP is a UDP echo server in the peer.
const echoUDP = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.231.0.2", 9999)); print("ready", flush=True)
while True:
    b, a = s.recvfrom(2048); s.sendto(b, a)
`

// udpProbe sends 20 datagrams on a connected socket and counts the echoes
// that came back within a second.
const udpProbe = `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("10.231.0.2", 9999)); s.settimeout(1)
for i in range(20):
    s.send(b"%d" % i)
n = 0
try:
    while True:
        s.recv(2048); n += 1
except socket.timeout:
    pass
print("echoes", n)
`

// TestLossMatchesItsTwin: loss:1 is a DROP of every datagram.
func TestLossMatchesItsTwin(t *testing.T) {
	n := nettest.NewNetns(t)
	e := &env{n: n, sb: nettest.BuildSandbox(t)}
	n.StartPeer(t, "ready", "python3", "-c", echoUDP)
	plain := n.Run(30*time.Second, "python3", "-c", udpProbe)
	got := n.Run(30*time.Second, e.sb, "run", "--fault", "udp:10.231.0.2:9999=loss:1", "--allow-all", "--", "python3", "-c", udpProbe)
	dup := n.Run(30*time.Second, e.sb, "run", "--fault", "udp:10.231.0.2:9999=duplicate:1", "--allow-all", "--", "python3", "-c", udpProbe)
	rule := []string{"INPUT", "-p", "udp", "--dport", "9999", "-j", "DROP"}
	e.twin(t, append([]string{"iptables", "-I"}, rule...), append([]string{"iptables", "-D"}, rule...))
	want := n.Run(30*time.Second, "python3", "-c", udpProbe)
	if plain.Stdout != "echoes 20\n" || got.Stdout != want.Stdout || want.Stdout != "echoes 0\n" {
		t.Errorf("loss:1 %q, its twin %q, without either %q", got.Stdout, want.Stdout, plain.Stdout)
	}
	// Each datagram doubled on the way up and on the way back: 80.
	if dup.Stdout != "echoes 80\n" {
		t.Errorf("duplicate:1: %q", dup.Stdout)
	}
}

// unconnectedProbe sends from an unconnected socket and prints where each
// echo came from, as a resolver that checks the source does.
const unconnectedProbe = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
for i in range(3):
    s.sendto(b"%d" % i, ("10.231.0.2", 9999))
    b, a = s.recvfrom(2048)
    print(b.decode(), a[0], a[1])
`

// TestUnconnectedUDPRepliesComeFromTheDestination: a datagram relayed for
// its faults comes back from the address the program sent it to, not from
// the relay's loopback front; natively and sandboxed print the same.
func TestUnconnectedUDPRepliesComeFromTheDestination(t *testing.T) {
	n := nettest.NewNetns(t)
	sb := nettest.BuildSandbox(t)
	n.StartPeer(t, "ready", "python3", "-c", echoUDP)
	want := n.Run(30*time.Second, "python3", "-c", unconnectedProbe)
	if want.ExitCode != 0 || want.Stdout != "0 10.231.0.2 9999\n1 10.231.0.2 9999\n2 10.231.0.2 9999\n" {
		t.Fatalf("natively: %v\n%s", want, want.Stdout)
	}
	got := n.Run(30*time.Second, sb, "run", "--fault", "udp:10.231.0.2:9999=latency:20ms", "--allow-all", "--", "python3", "-c", unconnectedProbe)
	if got.Stdout != want.Stdout {
		t.Errorf("through the relay:\n%s%s\nnatively:\n%s", got.Stdout, got.Stderr, want.Stdout)
	}
}

// unixServer serves a Unix stream socket at path in one of three ways:
// "reply" reads a request and answers 100 bytes; "unread" waits for the
// request and closes without reading it (a peer that dies: its twin of a
// reset); "silent" accepts and never reads nor writes (a blackhole).
const unixServer = `
import os, select, socket, sys, time
path, mode = sys.argv[1], sys.argv[2]
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); l.bind(path); os.chmod(path, 0o777); l.listen(8)
print("ready", flush=True)
keep = []
while True:
    c, _ = l.accept()
    try:
        if mode == "reply":
            c.recv(4096); c.sendall(b"y" * 100); c.close()
        elif mode == "unread":
            select.select([c], [], []); c.close()
        else:
            keep.append(c)
    except OSError:
        c.close()
`

// unixProbe is probe over a Unix stream socket.
const unixProbe = `
import errno, socket, sys, time
t = time.time()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(2)
try:
    s.connect(sys.argv[1])
    s.sendall(b"GET\n")
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        n += len(b)
    print("ok", n)
except socket.timeout:
    print("timeout")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
print("tenths", round((time.time() - t) * 10))
`

// TestUnixStreamFaultsMatchTheirTwins: on a Unix stream, reset is a peer
// that closes with the program's request unread (ECONNRESET), blackhole a
// peer that never reads; latency and limit shape a real reply. Run as
// nobody too, so that the onward connection is made with the program's
// credentials (a socket only root may reach stays unreachable).
func TestUnixStreamFaultsMatchTheirTwins(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	dir, err := os.MkdirTemp("", "faults-unix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	start := func(mode string) string {
		path := dir + "/" + mode + ".sock"
		startLocal(t, "python3", "-c", unixServer, path, mode)
		return path
	}
	reply, unread, silent := start("reply"), start("unread"), start("silent")
	run := func(argv ...string) (string, int) {
		return outcome(nettest.Run(30*time.Second, argv...))
	}
	sandboxed := func(fault, path string, user ...string) (string, int) {
		return run(append(user, sb, "run", "--fault", "unix:"+path+"="+fault, "--allow-all", "--", "python3", "-c", unixProbe, path)...)
	}
	nobody := []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"}
	for _, tt := range []struct {
		name, fault, twin string
	}{
		{"reset", "reset:0", unread},
		{"blackhole", "blackhole", silent},
	} {
		want, wantT := run("python3", "-c", unixProbe, tt.twin)
		for _, user := range [][]string{nil, nobody} {
			got, gotT := sandboxed(tt.fault, reply, user...)
			if got != want || gotT < wantT-3 || gotT > wantT+3 {
				t.Errorf("%s (%v): %q after %d tenths, its twin %q after %d", tt.name, user, got, gotT, want, wantT)
			}
		}
	}
	if got, tenths := sandboxed("latency:700ms", reply); got != "ok 100" || tenths < 7 {
		t.Errorf("latency: %q after %d tenths", got, tenths)
	}
	if got, _ := sandboxed("limit:40", reply); got != "ok 40" {
		t.Errorf("limit:40: %q", got)
	}
	// A socket nobody may not write stays refused to nobody, with the
	// fault as without it (the onward connection is made as the program).
	os.Chmod(reply, 0o700)
	plain, _ := run(append(nobody, sb, "run", "--allow-all", "--", "python3", "-c", unixProbe, reply)...)
	got, _ := run(append(nobody, sb, "run", "--fault", "unix:"+reply+"=latency:10ms", "--allow-all", "--", "python3", "-c", unixProbe, reply)...)
	if !strings.Contains(plain, "EACCES") || got != plain {
		t.Errorf("a root-only socket: %q with the fault, %q without", got, plain)
	}
}

// startLocal starts argv here, waits for its "ready" line, and kills it
// when the test ends.
func startLocal(t *testing.T, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line == "ready\n"
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("%q did not start", argv)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%q: no ready line", argv)
	}
}

// TestFaultsConnectOnAsTheProgram: the relay's onward connection carries
// the program's identity, never the sandbox's (root's): an owner match
// that stops nobody's connections to the server stops the relayed
// connection of a program running as nobody (nothing arrives), as it stops
// its direct one natively. Control: without the rule the same relayed
// connection arrives, and shows its fault (300 ms of latency).
func TestFaultsConnectOnAsTheProgram(t *testing.T) {
	n := nettest.NewNetns(t)
	web := dnstest.StartHTTP(t, n)
	sb := nettest.BuildSandbox(t)
	prog := []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c", probe}
	relayed := func() nettest.Result {
		return n.Run(30*time.Second, append([]string{sb, "run", "--fault", "tcp:10.231.0.2:8080=latency:300ms", "--allow-all", "--"}, prog...)...)
	}
	before := len(web.Requests())
	r := relayed()
	if got, tenths := outcome(r); !strings.HasPrefix(got, "ok ") || tenths < 3 || len(web.Requests()) != before+1 {
		t.Fatalf("control: relayed as nobody: %q after %d tenths, %d arrived\n%s", got, tenths, len(web.Requests())-before, r.Stderr)
	}
	rule := []string{"OUTPUT", "-p", "tcp", "-d", "10.231.0.2", "--dport", "8080", "-m", "owner", "--uid-owner", "65534", "-j", "REJECT", "--reject-with", "tcp-reset"}
	n.MustRun(t, append([]string{"iptables", "-A"}, rule...)...)
	t.Cleanup(func() { n.Run(10*time.Second, append([]string{"iptables", "-D"}, rule...)...) })
	before = len(web.Requests())
	if r := n.Run(30*time.Second, prog...); !strings.Contains(r.Stderr, "ConnectionRefusedError") || len(web.Requests()) != before {
		t.Fatalf("natively the owner match refuses nobody: %v\n%s%s", r, r.Stdout, r.Stderr)
	}
	r = relayed()
	if got, _ := outcome(r); strings.HasPrefix(got, "ok ") || len(web.Requests()) != before {
		t.Errorf("the relay connected on as the sandbox: %q, %d requests arrived\n%s", got, len(web.Requests())-before, r.Stderr)
	}
}

// TestSocketsBoundWithoutAPort: a socket bound to an address with
// IP_BIND_ADDRESS_NO_PORT has no port until its connect: it is connected
// as it is (its address kept), neither relayed nor bound again, for a
// fault and for a lookup alike (no name is denied here); so is one bound to
// a device (SO_BINDTODEVICE), which cannot reach loopback; the supervisor
// goes on, and says that the fault did not apply.
func TestSocketsBoundWithoutAPort(t *testing.T) {
	e := setup(t)
	prog := `
import socket
for port in (8080, 53):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
    s.bind(("10.231.0.1", 0))
    try:
        s.connect(("10.231.0.2", port))
        print(port, "connected from", s.getsockname()[0])
    except OSError as e:
        print(port, e.errno)
# Bound to a device (curl --interface veth0): no front on loopback can be
# reached from it.
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"veth0")
s.settimeout(5)
s.connect(("10.231.0.2", 8080))
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
print("device:", s.recv(12))
`
	native := e.n.Run(30*time.Second, "python3", "-c", prog)
	r := e.n.Run(30*time.Second, e.sb, "run", "--fault", "tcp:10.231.0.2:8080=latency:1ms", "--observe-dns", "on", "--allow-all", "--", "python3", "-c", prog)
	if r.ExitCode != 0 || r.Stdout != native.Stdout || !strings.Contains(r.Stdout, "8080 connected from 10.231.0.1") {
		t.Errorf("natively %q, sandboxed %v\n%q", native.Stdout, r, r.Stdout)
	}
	// The fault that did not apply is said, once.
	if !strings.Contains(r.Stdout, "device: b'HTTP/1.0 200'") || strings.Count(r.Stderr, "without its faults") != 1 {
		t.Errorf("the fault that did not apply is not said once:\n%s", r.Stderr)
	}
}
