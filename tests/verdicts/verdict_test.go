// Package verdicts proves that each netstack verdict looks to a program
// exactly like the real network situation it stands for. Each verdict is
// compared with its twin, built for real in a network namespace: the same
// probe runs natively against the twin and sandboxed under the verdict, and
// the two outputs must be identical, for blocking and non-blocking sockets.
package verdicts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

func TestMain(m *testing.M) { os.Exit(nettest.Main(m)) }

type twin struct {
	name string
	// setup builds the real situation in the namespaces.
	setup func(t *testing.T, n *nettest.Netns)
	dst   string
	// args are the sandbox's policy arguments standing for it.
	args []string
	// outcomeOnly names the modes compared by outcome (the errno the
	// program ends with) rather than line by line, with the reason.
	outcomeOnly map[string]string
}

// icmpAsync is why ICMP twins are compared by outcome: a real ICMP error
// arrives asynchronously, and tcp_v4_err makes it a soft error when the
// connecting task holds the socket lock at that instant (then fatal at the
// SYN retransmit, ~1 s later). That timing cannot be reproduced from user
// space; unreachable verdicts answer at once, as a missing route does. See
// README "Verdicts".
const icmpAsync = "ICMP errors are asynchronous and timing-dependent in Linux; verdicts answer at once"

// outcome is the errno a probe run ends with.
func outcome(out string) string {
	var connectErr, soError string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		switch f[0] {
		case "connect:":
			connectErr = strings.TrimPrefix(f[2], "errno=")
		case "done:":
			for _, kv := range f {
				if v, ok := strings.CutPrefix(kv, "so_error="); ok {
					soError = v
				}
			}
		}
	}
	if connectErr == "EINPROGRESS" {
		return soError
	}
	return connectErr
}

func iptablesPeer(t *testing.T, n *nettest.Netns, rule ...string) {
	t.Helper()
	n.MustRunPeer(t, append([]string{"iptables", "-A", "INPUT", "-p", "tcp", "--dport", "80"}, rule...)...)
}

func twins(t *testing.T) []twin {
	arp := filepath.Join(t.TempDir(), "onlink.yaml")
	os.WriteFile(arp, []byte(`default: allow
network:
  interfaces:
    - name: veth0
      address: 10.231.0.1/24
  hosts:
    - address: 10.231.0.2
      services:
        - port: 80
          verdict: allow
`), 0o644)
	return []twin{
		{name: "closed port", dst: nettest.PeerIP,
			setup: func(*testing.T, *nettest.Netns) {},
			args:  []string{"--refuse", nettest.PeerIP + ":80"}},
		{name: "reject with tcp-reset", dst: nettest.PeerIP,
			setup: func(t *testing.T, n *nettest.Netns) {
				iptablesPeer(t, n, "-j", "REJECT", "--reject-with", "tcp-reset")
			},
			args: []string{"--refuse", nettest.PeerIP + ":80"}},
		{name: "silent host", dst: nettest.PeerIP,
			setup: func(t *testing.T, n *nettest.Netns) {
				iptablesPeer(t, n, "-j", "DROP")
				n.MustRun(t, "sysctl", "-qw", "net.ipv4.tcp_syn_retries=1")
			},
			args: []string{"--timeout", nettest.PeerIP + ":80=3s"}},
		{name: "icmp host unreachable", dst: nettest.PeerIP,
			setup: func(t *testing.T, n *nettest.Netns) {
				iptablesPeer(t, n, "-j", "REJECT", "--reject-with", "icmp-host-unreachable")
			},
			args:        []string{"--unreachable", nettest.PeerIP + ":80=host"},
			outcomeOnly: map[string]string{"block": icmpAsync, "nonblock": icmpAsync}},
		{name: "icmp net unreachable", dst: nettest.PeerIP,
			setup: func(t *testing.T, n *nettest.Netns) {
				iptablesPeer(t, n, "-j", "REJECT", "--reject-with", "icmp-net-unreachable")
			},
			args:        []string{"--unreachable", nettest.PeerIP + ":80=net"},
			outcomeOnly: map[string]string{"block": icmpAsync, "nonblock": icmpAsync}},
		{name: "no route", dst: "10.232.0.1",
			setup: func(*testing.T, *nettest.Netns) {},
			args:  []string{"--unreachable", "10.232.0.1:80"}},
		{name: "absent on-link host", dst: "10.231.0.77",
			setup: func(*testing.T, *nettest.Netns) {},
			args:  []string{"--policy", arp},
			// A blocking caller waits the ARP delay, exactly; a non-blocking
			// one is answered at once (the failure is an ICMP from the
			// neighbour layer, as above).
			outcomeOnly: map[string]string{"nonblock": icmpAsync}},
	}
}

func TestVerdictsMatchTheirTwins(t *testing.T) {
	nettest.RequireRoot(t)
	if _, err := os.Stat("/usr/sbin/iptables"); err != nil {
		t.Skip("skipping: needs iptables (.ci/run installs it)")
	}
	sb := nettest.BuildSandbox(t)
	probe := nettest.CompileC(t, filepath.Join("testdata", "verdict.c"), false)
	for _, tw := range twins(t) {
		t.Run(tw.name, func(t *testing.T) {
			t.Parallel()
			n := nettest.NewNetns(t)
			tw.setup(t, n)
			for _, mode := range []string{"block", "nonblock"} {
				native := n.Run(20*time.Second, probe, mode, tw.dst, "80")
				args := append(append([]string{sb, "run", "--log-level", "error"}, tw.args...), "--", probe, mode, tw.dst, "80")
				boxed := n.Run(20*time.Second, args...)
				if native.Err != nil || boxed.Err != nil {
					t.Fatalf("%s: native %v; sandboxed %v", mode, native, boxed)
				}
				if why, ok := tw.outcomeOnly[mode]; ok {
					n, b := outcome(native.Stdout), outcome(boxed.Stdout)
					if n == "" || n != b {
						t.Errorf("%s: the verdict ends in %q, its twin in %q (compared by outcome: %s)\n--- twin\n%s--- verdict\n%s",
							mode, b, n, why, native.Stdout, boxed.Stdout)
					}
				} else if native.Stdout != boxed.Stdout {
					t.Errorf("%s: the verdict differs from its twin\n--- twin (native)\n%s--- verdict (sandboxed)\n%s",
						mode, native.Stdout, boxed.Stdout)
				}
				if !strings.Contains(native.Stdout, "reuse: ret=") {
					t.Errorf("%s: probe output incomplete: %q", mode, native.Stdout)
				}
			}
		})
	}
}
