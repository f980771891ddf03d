package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

func TestMain(m *testing.M) { os.Exit(nettest.Main(m)) }

// runTimeout bounds one run of one probe.
const runTimeout = 60 * time.Second

// What the peer namespace does with TCP to nettest.PeerIP, by port. The
// probes name these ports PEER_PORT_* in probes/probe.h.
var peerRules = [][]string{
	{"--dport", "9", "-j", "DROP"},
	{"--dport", "10", "-j", "REJECT", "--reject-with", "icmp-net-unreachable"},
	{"--dport", "11", "-j", "REJECT", "--reject-with", "icmp-host-unreachable"},
	{"--dport", "12", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"},
	{"--dport", "13", "-j", "REJECT", "--reject-with", "tcp-reset"},
}

// peerServer accepts and closes connections on port 7, IPv4 and IPv6.
const peerServer = `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 7))
s.listen(512)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
`

// newNetwork creates the probes' network: a fresh nettest.Netns whose peer
// runs peerServer behind peerRules. ICMP errors are not rate limited, so
// that every probe run sees the same ones.
func newNetwork(t *testing.T) *nettest.Netns {
	n := nettest.NewNetns(t)
	const noRateLimit = "echo 0 >/proc/sys/net/ipv4/icmp_ratelimit && echo 0 >/proc/sys/net/ipv6/icmp/ratelimit"
	n.MustRun(t, "sh", "-c", noRateLimit)
	n.MustRunPeer(t, "sh", "-c", noRateLimit)
	for _, rule := range peerRules {
		args := append([]string{"iptables", "-w", "-A", "INPUT", "-p", "tcp", "-d", nettest.PeerIP}, rule...)
		n.MustRunPeer(t, args...)
	}
	n.StartPeer(t, "ready", "python3", "-c", peerServer)
	return n
}

// A probe is a program that prints one "case: facts" line per case.
type probe struct {
	name  string
	build func(t *testing.T) string
}

// probes lists the C probes (dynamic, plus static variants when static is
// set) and the Go probe.
func probes(t *testing.T, static bool) []probe {
	srcs, err := filepath.Glob("probes/*.c")
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no probes: %v", err)
	}
	var ps []probe
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".c")
		ps = append(ps, probe{name, func(t *testing.T) string {
			return nettest.CompileC(t, src, false, "-Werror")
		}})
		if static {
			ps = append(ps, probe{name + "-static", func(t *testing.T) string {
				return nettest.CompileC(t, src, true, "-Werror")
			}})
		}
	}
	return append(ps, probe{"go", func(t *testing.T) string {
		return nettest.GoBuild(t, "./tests/conformance/goprobe")
	}})
}

// run runs argv in n and returns its result after checking that it ran to
// completion. tcp_metrics are flushed first: they carry TCP state (Fast
// Open cookies, RTTs) from one run to the next.
func run(t *testing.T, n *nettest.Netns, argv ...string) nettest.Result {
	t.Helper()
	n.MustRun(t, "ip", "tcp_metrics", "flush", "all")
	r := n.Run(runTimeout, argv...)
	if r.TimedOut {
		t.Errorf("timed out after %v: %v", runTimeout, r)
	}
	return r
}

// runNative runs the probe natively and fails the test unless it worked.
func runNative(t *testing.T, n *nettest.Netns, bin string) nettest.Result {
	t.Helper()
	r := run(t, n, bin)
	if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) == "" {
		t.Fatalf("native run failed: %v\nstdout:\n%s", r, r.Stdout)
	}
	return r
}

// line is one case of a probe's output.
type line struct {
	name, facts string
}

// parse splits output into cases. A line without ": " is a case of its own
// with no facts.
func parse(out string) []line {
	var ls []line
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		name, facts, _ := strings.Cut(l, ": ")
		ls = append(ls, line{name, facts})
	}
	return ls
}

// compare reports every case whose facts differ between want (the
// reference run, labelled wantLabel) and got, and the cases only one of them
// has. It returns the number of differences.
func compare(t *testing.T, wantLabel, gotLabel string, want, got nettest.Result) int {
	t.Helper()
	wl, gl := parse(want.Stdout), parse(got.Stdout)
	gotFacts := map[string]string{}
	seen := map[string]bool{}
	for _, l := range gl {
		if _, dup := gotFacts[l.name]; dup {
			t.Errorf("%s: case %s printed twice", gotLabel, l.name)
		}
		gotFacts[l.name] = l.facts
	}
	diffs := 0
	for _, l := range wl {
		if seen[l.name] {
			t.Errorf("%s: case %s printed twice", wantLabel, l.name)
			continue
		}
		seen[l.name] = true
		g, ok := gotFacts[l.name]
		switch {
		case !ok:
			diffs++
			t.Errorf("%s: missing under %s (%s: %s)", l.name, gotLabel, wantLabel, l.facts)
		case g != l.facts:
			diffs++
			t.Errorf("%s:\n\t%-8s %s\n\t%-8s %s", l.name, wantLabel+":", l.facts, gotLabel+":", g)
		}
	}
	var extra []string
	for _, l := range gl {
		if !seen[l.name] {
			extra = append(extra, l.name+": "+l.facts)
		}
	}
	sort.Strings(extra)
	for _, e := range extra {
		diffs++
		t.Errorf("extra case under %s: %s", gotLabel, e)
	}
	if want.ExitCode != got.ExitCode {
		diffs++
		t.Errorf("exit status: %s %d, %s %d", wantLabel, want.ExitCode, gotLabel, got.ExitCode)
	}
	if diffs > 0 {
		t.Logf("%s stderr:\n%s", gotLabel, tail(got.Stderr, 40))
	}
	return diffs
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = append([]string{fmt.Sprintf("[%d lines before]", len(ls)-n)}, ls[len(ls)-n:]...)
	}
	return strings.Join(ls, "\n")
}

// TestProbesDeterministic runs every probe natively in two fresh networks:
// the outputs must be identical, or the probe cannot be an oracle.
func TestProbesDeterministic(t *testing.T) {
	nettest.RequireRoot(t)
	for _, p := range probes(t, false) {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			bin := p.build(t)
			first := runNative(t, newNetwork(t), bin)
			second := runNative(t, newNetwork(t), bin)
			compare(t, "first", "second", first, second)
		})
	}
}

// TestProbesUnderSandbox runs every probe natively and then under `sandbox
// run`, in the same fresh network, and compares their stdout case by case.
// The sandbox logs to stderr, which is not compared. The sandbox runs with
// --allow-all --raw-sockets --keep-caps, full pass-through (the probes open
// raw ICMP and packet sockets, netlink groups and network namespaces as
// root on purpose), where it must be indistinguishable from native; the
// Landlock, user-namespace and descriptor layers stay on.
// $SANDBOX_RUN_FLAGS, when set, replaces that.
func TestProbesUnderSandbox(t *testing.T) {
	nettest.RequireRoot(t)
	sandbox := nettest.BuildSandbox(t)
	flags, ok := os.LookupEnv("SANDBOX_RUN_FLAGS")
	if !ok {
		flags = "--allow-all --raw-sockets --keep-caps"
	}
	runArgs := append([]string{sandbox, "run"}, strings.Fields(flags)...)
	for _, p := range probes(t, true) {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			bin := p.build(t)
			n := newNetwork(t)
			native := runNative(t, n, bin)
			sandboxed := run(t, n, append(append(runArgs[:len(runArgs):len(runArgs)], "--"), bin)...)
			compare(t, "native", "sandbox", native, sandboxed)
		})
	}
}
