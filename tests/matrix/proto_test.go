package matrix_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sandbox/tests/internal/nettest"
)

// udpEcho answers each datagram to 10.231.0.2:9001 with itself.
const udpEcho = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.231.0.2", 9001)); print("ready", flush=True)
while True:
    b, a = s.recvfrom(2048); s.sendto(b, a)
`

// udpClient sends one datagram to the echo and waits a second for it:
// exit 3 without an answer.
const udpClient = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.connect(("10.231.0.2", 9001))
s.send(b"ping")
try:
    s.recv(64)
except socket.timeout:
    print("client: no answer", file=sys.stderr); sys.exit(3)
`

// TestFaultsByProtocol: a UDP client's cells. A fault with no meaning on
// UDP (reset, limit) reads skipped, with the reason, never ok; blackhole
// and loss:1 drop its datagram (failed, exit 3, as behind a DROP);
// latency and bandwidth pace it. With a policy whose DEST covers both
// protocols, what the baseline reached it by decides.
func TestFaultsByProtocol(t *testing.T) {
	t.Parallel()
	n := nettest.NewNetns(t)
	e := &env{n: n, sb: nettest.BuildSandbox(t), dir: t.TempDir()}
	n.StartPeer(t, "ready", "python3", "-c", udpEcho)
	if !hasFault(t, e.sb) {
		t.Skip("sandbox run has no --fault")
	}
	faults := "reset:0,blackhole,loss:1,latency:100ms,limit:10,bandwidth:1KB"
	cells := []want{
		{"reset:0", "skipped", -1},
		{"blackhole", "failed", 3},
		{"loss:1", "failed", 3},
		{"latency:100ms", "ok", 0},
		{"limit:10", "skipped", -1},
		{"bandwidth:1KB", "ok", 0},
	}
	policy := filepath.Join(e.dir, "both.yaml")
	if err := os.WriteFile(policy, []byte("default: deny\nrules:\n  - allow: 10.231.0.2:9001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dest, because string
		args                []string
	}{
		{"learned", "udp:10.231.0.2:9001", "", nil},
		{"policy", "10.231.0.2:9001", " (the baseline reached 10.231.0.2:9001 over UDP only)", []string{"--policy", policy}},
	} {
		args := append(append([]string{"--faults", faults, "--run-timeout", "10s"}, c.args...), "--", "python3", "-c", udpClient)
		r, rep := e.matrix(t, c.name, args...)
		if r.ExitCode != 0 || rep.Baseline.Reading != "ok" {
			t.Errorf("%s: exit %d, baseline %v", c.name, r.ExitCode, rep.Baseline)
		}
		for _, w := range cells {
			got, ok := cell(rep, c.dest, w.fault)
			if !ok || got.Reading != w.reading || got.exit() != w.exit {
				t.Errorf("%s: %s × %s: %v; want %s %d", c.name, c.dest, w.fault, got, w.reading, w.exit)
				continue
			}
			if w.reading == "skipped" {
				want := w.fault + " has no meaning on UDP, only on TCP and Unix streams: "
				if !strings.HasPrefix(got.Note, want) || !strings.Contains(got.Note, "; for UDP use ") || !strings.HasSuffix(got.Note, c.because) {
					t.Errorf("%s: %s × %s: skipped because %q; want %q...%q", c.name, c.dest, w.fault, got.Note, want, c.because)
				}
			}
		}
	}
}
