package names_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// TestLearnMergeDoesNotAppendWhatAFileDenies: a --merge file that denies
// a destination PROGRAM used (learn does not enforce the file's rules, so
// PROGRAM reached it) gets no allow after that deny, which could never
// match and which every merge appended again: learn names the deny by
// FILE:LINE instead and leaves the file as it is. The tree's own sockets
// under default: deny are named with the default's line.
func TestLearnMergeDoesNotAppendWhatAFileDenies(t *testing.T) {
	e := setup(t)
	pol := filepath.Join(e.dir, "deny.yaml")
	text := "version: 1\ndefault: deny\nrules:\n" + resolvers + "  - deny: tcp:10.231.0.2:8080\n"
	os.WriteFile(pol, []byte(text), 0o644)
	get := curl("http://10.231.0.2:8080/")
	for round := range 2 {
		r := e.run(append([]string{e.sb, "learn", "--merge", pol, "--"}, get...)...)
		if r.ExitCode != 0 || r.Stdout != "ok\n" {
			t.Fatalf("round %d: under learn: %v\n%s", round, r, r.Stdout)
		}
		want := "sandbox: learn: not added: tcp:10.231.0.2:8080 (1 connect): " + pol + ":5: deny: tcp:10.231.0.2:8080 decides it first"
		if !strings.Contains(r.Stderr, want) || strings.Contains(r.Stderr, "added allow:") {
			t.Errorf("round %d: learn does not say that %s:5 denies it:\n%s", round, pol, r.Stderr)
		}
		if b, _ := os.ReadFile(pol); string(b) != text {
			t.Errorf("round %d: the file changed:\n%s", round, b)
		}
	}
	// What learn said is what a run under the file does.
	r := e.sandboxed([]string{"--policy", pol}, get...)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, `rule="`+pol+`:5: deny: tcp:10.231.0.2:8080"`) {
		t.Errorf("under the file: %v", r)
	}

	// The tree's own listener under default: deny.
	own := []string{"python3", "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); socket.create_connection(s.getsockname()).close(); print('ok')"}
	r = e.run(append([]string{e.sb, "learn", "--merge", pol, "--"}, own...)...)
	if r.ExitCode != 0 || !strings.Contains(r.Stderr, "not allowed: the tree's own sockets (1 connect") ||
		!strings.Contains(r.Stderr, pol+":2: default: deny decides them") || !strings.Contains(r.Stderr, "write default: self") {
		t.Errorf("the own listener under default: deny: %v", r)
	}
	if b, _ := os.ReadFile(pol); string(b) != text {
		t.Errorf("the file changed:\n%s", b)
	}
}

// TestLearnWidensEphemeralPortsAndSaysSo: a port of the ephemeral range is
// written as the whole range (ephemeral ports never appear: a server a
// test starts each run binds port 0 and gets another), at a remote host as
// at a local one, and the rule's comment names the port seen; for the
// remote host it asks for the port to be written if the service's is
// fixed. A rerun under the policy gives no denial, and the same program
// with the server on another port of the range is allowed too. Control: a
// port outside the range of that host is not.
func TestLearnWidensEphemeralPortsAndSaysSo(t *testing.T) {
	e := setup(t)
	f := strings.Fields(e.run("cat", "/proc/sys/net/ipv4/ip_local_port_range").Stdout)
	if len(f) != 2 {
		t.Fatalf("ip_local_port_range: %q", f)
	}
	lo, _ := strconv.Atoi(f[0])
	hi, _ := strconv.Atoi(f[1])
	if hi-lo < 100 {
		t.Skipf("ephemeral range %d-%d too small", lo, hi)
	}
	webd := nettest.GoBuild(t, "./tests/internal/dnstest/cmd/webd")
	remote := fmt.Sprintf("10.231.0.2:%d", lo+17)
	e.n.StartPeer(t, "ready", webd, "-http", remote+","+fmt.Sprintf("10.231.0.2:%d", lo+20))
	// The harness's own servers, outside the sandboxed tree.
	loop := fmt.Sprintf("127.0.0.1:%d", lo+18)
	e.n.Start(t, "ready", webd, "-http", loop)
	script := fmt.Sprintf("curl -sS --max-time 5 http://%s/ && curl -sS --max-time 5 http://%s/", remote, loop)
	out := filepath.Join(e.dir, "ports.yaml")
	r := e.run(e.sb, "learn", "--out", out, "--", "sh", "-c", script)
	if r.ExitCode != 0 || r.Stdout != "ok\nok\n" {
		t.Fatalf("under learn: %v\n%s", r, r.Stdout)
	}
	b, _ := os.ReadFile(out)
	pol := string(b)
	span := fmt.Sprintf(":%d-%d ", lo, hi)
	// (127.0.0.1 is named localhost by the hosts file.)
	if !strings.Contains(pol, "tcp:10.231.0.2"+span) || !strings.Contains(pol, "tcp:localhost"+span) || strings.Contains(pol, "allow: tcp:"+remote) {
		t.Errorf("the ports of the range are not the range %s:\n%s", span, pol)
	}
	if !strings.Contains(pol, fmt.Sprintf("seen at %d, of the ephemeral range (a fixed port? write it instead)", lo+17)) ||
		!strings.Contains(pol, fmt.Sprintf("seen at %d, of the ephemeral range\n", lo+18)) {
		t.Errorf("the comments do not name the ports seen (and ask for the remote one):\n%s", pol)
	}
	if r = e.sandboxed([]string{"--policy", out}, "sh", "-c", script); r.ExitCode != 0 {
		t.Errorf("under the learned policy: %v", r)
	}
	if r = e.sandboxed([]string{"--policy", out}, curl(fmt.Sprintf("http://10.231.0.2:%d/", lo+20))...); r.ExitCode != 0 {
		t.Errorf("the server on another port of the range: %v", r)
	}
	// Control: a port of that host outside the range is denied.
	if r = e.sandboxed([]string{"--policy", out}, curl("http://10.231.0.2:8080/")...); r.ExitCode == 0 || !strings.Contains(r.Stderr, "connect denied") {
		t.Errorf("a port outside the range: %v", r)
	}
}

// TestLearnRefusesAMergeFileItCannotAddTo: a --merge file that is a valid
// policy but one learn cannot add to is refused before PROGRAM runs, with
// the merge's own message, not after PROGRAM with everything learned lost.
func TestLearnRefusesAMergeFileItCannotAddTo(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	for _, tt := range []struct{ name, text, want string }{
		{"flow list", "version: 1\ndefault: deny\nrules: [{allow: tcp:10.231.0.2:8081}]\n", ":3:8: rules: is a flow list [ ... ]: write it as a block list"},
		{"flow mapping", "{version: 1, default: deny, rules: []}\n", ":1:1: the policy is a flow mapping { }"},
	} {
		f := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
		os.WriteFile(f, []byte(tt.text), 0o644)
		r := nettest.Run(30*time.Second, sb, "learn", "--merge", f, "--", "touch", marker)
		_, err := os.Stat(marker)
		if err == nil || r.ExitCode != 125 || !strings.Contains(r.Stderr, "sandbox: --merge: "+f+tt.want) {
			t.Errorf("%s: %v (PROGRAM ran: %v), want 125 and %q before PROGRAM runs", tt.name, r, err == nil, f+tt.want)
		}
		os.Remove(marker)
		if b, _ := os.ReadFile(f); string(b) != tt.text {
			t.Errorf("%s: the file changed: %q", tt.name, b)
		}
	}
}

// TestLearnMergesInParallel: learns of a test suite run at once, each
// merging into the same file: every run's rules end up in it (the merge is
// made into the file as it is when the run ends, under a lock), none
// overwritten by another's.
func TestLearnMergesInParallel(t *testing.T) {
	e := setup(t)
	pol := filepath.Join(e.dir, "suite.yaml")
	os.WriteFile(pol, []byte("version: 1\ndefault: deny\nrules:\n  - allow: tcp:10.231.0.2:9\n"), 0o644)
	// The second run reads the file before the first writes it, and writes
	// after.
	first := []string{"sh", "-c", "curl -sS --max-time 5 http://10.231.0.2:8080/ >/dev/null"}
	second := []string{"sh", "-c", "sleep 1; dig +short +tries=1 @10.231.0.2 web.test >/dev/null"}
	done := make(chan nettest.Result)
	go func() { done <- e.run(append([]string{e.sb, "learn", "--merge", pol, "--"}, second...)...) }()
	r1 := e.run(append([]string{e.sb, "learn", "--merge", pol, "--"}, first...)...)
	r2 := <-done
	b, _ := os.ReadFile(pol)
	if r1.ExitCode != 0 || r2.ExitCode != 0 || !strings.Contains(string(b), "- allow: tcp:10.231.0.2:8080 ") ||
		!strings.Contains(string(b), "- allow: udp:10.231.0.2:53 ") {
		t.Errorf("a parallel merge lost a run's rules: %v / %v\n%s", r1, r2, b)
	}
}
