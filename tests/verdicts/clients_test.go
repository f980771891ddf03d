package verdicts

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// dst is never contacted: the verdicts intercept it, and the test namespace
// has no route to it, so nothing could leave even if one failed.
const dst = "10.9.0.5:80"

type clientCase struct {
	args []string // sandbox flags
	argv []string // the client
	want string   // regexp over stdout+stderr of the client
}

func runClients(t *testing.T, cases []clientCase) {
	sb := nettest.BuildSandbox(t)
	n := nettest.NewNetns(t)
	for _, c := range cases {
		args := append(append([]string{sb, "run", "--log-level", "error"}, c.args...), "--")
		r := n.Run(30*time.Second, append(args, c.argv...)...)
		out := r.Stdout + r.Stderr
		if !regexp.MustCompile(c.want).MatchString(out) {
			t.Errorf("%v %v: got %q, want /%s/", c.args, c.argv, out, c.want)
		}
	}
}

// The three Go programs, and the rest of the verdicts, through Go's
// net.Dial.
func TestGoNetDial(t *testing.T) {
	nettest.RequireRoot(t)
	dial := nettest.GoBuild(t, "sandbox/tests/verdicts/testdata/dial")
	sb := nettest.BuildSandbox(t)
	n := nettest.NewNetns(t)
	n.StartPeer(t, "ready", dial, "serve", nettest.PeerIP+":8080")
	cases := []clientCase{
		{[]string{"--refuse", dst}, []string{dial, dst, "5s"}, `connect: connection refused`},
		{[]string{"--timeout", dst + "=1s"}, []string{dial, dst, "10s"}, `^error after (0\.9|1|1\.1|1\.2)s: .*connect: connection timed out`},
		{[]string{"--timeout", dst + "=5s"}, []string{dial, dst, "300ms"}, `^error after 300ms: .*i/o timeout`},
		{[]string{"--redirect", dst + "=" + nettest.PeerIP + ":8080"}, []string{dial, dst, "5s"}, `^connected to ` + regexp.QuoteMeta(nettest.PeerIP) + `:8080: "hello"`},
		{[]string{"--unreachable", dst}, []string{dial, dst, "5s"}, `connect: network is unreachable`},
		{[]string{"--unreachable", dst + "=host"}, []string{dial, dst, "5s"}, `connect: no route to host`},
		{[]string{"--deny", dst}, []string{dial, dst, "5s"}, `connect: permission denied`},
		{[]string{"--deny", dst + "=EPERM"}, []string{dial, dst, "5s"}, `connect: operation not permitted`},
		{nil, []string{dial, dst, "5s"}, `connect: permission denied`}, // the self default
	}
	for _, c := range cases {
		args := append(append([]string{sb, "run", "--log-level", "error"}, c.args...), "--")
		r := n.Run(30*time.Second, append(args, c.argv...)...)
		if !regexp.MustCompile(c.want).MatchString(r.Stdout) {
			t.Errorf("%v: got %q (stderr %q), want /%s/", c.args, r.Stdout, r.Stderr, c.want)
		}
	}
}

func TestCurl(t *testing.T) {
	nettest.RequireRoot(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("skipping: curl is not installed (.ci/run installs it)")
	}
	curl := []string{"curl", "-sS", "-o", "/dev/null", "--connect-timeout", "3", "http://" + dst + "/"}
	// curl 7.88 prints "Couldn't connect to server" for every connect(2)
	// failure, natively too; what tells them apart is its exit status (7:
	// could not connect, 28: timed out) and how long it took.
	const immediate = `curl: \(7\) Failed to connect to 10\.9\.0\.5 port 80 after \d{1,3} ms: Couldn't connect to server`
	runClients(t, []clientCase{
		{[]string{"--refuse", dst}, curl, immediate},
		{[]string{"--timeout", dst + "=1s"}, curl, `curl: \(28\) Failed to connect to 10\.9\.0\.5 port 80 after 1\d{3} ms`},
		{[]string{"--unreachable", dst}, curl, immediate},
		{[]string{"--unreachable", dst + "=host"}, curl, immediate},
		{[]string{"--deny", dst}, curl, immediate},
	})
}

func TestPython(t *testing.T) {
	nettest.RequireRoot(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("skipping: python3 is not installed (.ci/run installs it)")
	}
	py := []string{"python3", "-c", `
import socket
try:
    socket.create_connection(("10.9.0.5", 80), timeout=1)
    print("connected")
except OSError as e:
    print(type(e).__name__, e)
`}
	runClients(t, []clientCase{
		{[]string{"--refuse", dst}, py, `ConnectionRefusedError \[Errno 111\] Connection refused`},
		{[]string{"--timeout", dst + "=5s"}, py, `TimeoutError timed out`},
		{[]string{"--unreachable", dst}, py, `OSError \[Errno 101\] Network is unreachable`},
		{[]string{"--unreachable", dst + "=host"}, py, `OSError \[Errno 113\] No route to host`},
		{[]string{"--deny", dst}, py, `PermissionError \[Errno 13\] Permission denied`},
	})
}

// With no policy, a program may talk to itself (its own TCP, UDP and Unix
// sockets, in any process of its tree) and to nothing else: an outside
// listener is denied with EACCES, logged with the flag that would allow it.
func TestSelfDefault(t *testing.T) {
	nettest.RequireRoot(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("skipping: python3 is not installed")
	}
	dial := nettest.GoBuild(t, "sandbox/tests/verdicts/testdata/dial")
	sb := nettest.BuildSandbox(t)
	n := nettest.NewNetns(t)
	n.StartPeer(t, "ready", dial, "serve", nettest.PeerIP+":8080")
	r := n.Run(30*time.Second, sb, "run", "--", "python3", filepath.Join("testdata", "selfserve.py"), nettest.PeerIP, "8080")
	want := "tcp-self ok\ntcp-wildcard ok\nudp-self ok\nunix-relative ok\nunix-abstract ok\ntcp-child ok\noutside Permission denied\n"
	if r.Stdout != want {
		t.Errorf("stdout %q, want %q; stderr:\n%s", r.Stdout, want, r.Stderr)
	}
	if !strings.Contains(r.Stderr, `level=warning msg="connect denied" allow_with="--allow tcp:`+nettest.PeerIP+`:8080"`) {
		t.Errorf("the denial is not logged at warning level with the flag to allow it:\n%s", r.Stderr)
	}
}

func TestPolicyCheckAndExplain(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("default: deny\nrules:\n  - allow: tcp:127.0.0.1:5432\n  - refuse: 10.0.0.0/33\n"), 0o644)
	r := nettest.Run(10*time.Second, sb, "policy", "check", bad)
	if r.ExitCode != 1 || !strings.Contains(r.Stderr, bad+":4:") {
		t.Errorf("policy check of a broken file: exit %d, stderr %q; want exit 1 naming %s:4:COL", r.ExitCode, r.Stderr, bad)
	}
	marker := filepath.Join(dir, "ran")
	r = nettest.Run(10*time.Second, sb, "run", "--policy", bad, "--", "touch", marker)
	if r.ExitCode != 125 || !strings.Contains(r.Stderr, bad+":4:") {
		t.Errorf("run under a broken policy: exit %d, stderr %q; want 125", r.ExitCode, r.Stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the program ran under an invalid policy")
	}
	good := filepath.Join("..", "..", "examples", "policies", "hermetic-network.yaml")
	r = nettest.Run(10*time.Second, sb, "policy", "check", good)
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "rules:") {
		t.Errorf("policy check of %s: exit %d, %q %q", good, r.ExitCode, r.Stdout, r.Stderr)
	}
	r = nettest.Run(10*time.Second, sb, "policy", "explain", good, "tcp:10.50.0.10:443")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "redirect") || !strings.Contains(r.Stdout, "127.0.0.1:8443") {
		t.Errorf("policy explain: exit %d, %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}
}

func TestSummaryAndEnvironment(t *testing.T) {
	nettest.RequireRoot(t)
	dial := nettest.GoBuild(t, "sandbox/tests/verdicts/testdata/dial")
	sb := nettest.BuildSandbox(t)
	n := nettest.NewNetns(t)
	sum := filepath.Join(t.TempDir(), "summary.json")
	// Rules from the environment; --summary-json from a flag.
	r := n.Run(30*time.Second, "env", "SANDBOX_REFUSE="+dst+",10.9.0.6:80", "SANDBOX_LOG_FORMAT=json",
		sb, "run", "-v", "--summary", "--summary-json", sum, "--log-format", "text", "--", "sh", "-c",
		dial+" "+dst+" 2s; "+dial+" "+dst+" 2s; "+dial+" 10.9.0.6:80 2s")
	if strings.Count(r.Stdout, "connection refused") != 3 {
		t.Fatalf("SANDBOX_REFUSE was not applied: %q %q", r.Stdout, r.Stderr)
	}
	if strings.Contains(r.Stderr, `{"`) || !strings.Contains(r.Stderr, "level=info") {
		t.Errorf("--log-format text should win over SANDBOX_LOG_FORMAT=json: %q", r.Stderr)
	}
	// errno is what connect(2) itself returned: Go's sockets are
	// non-blocking, so EINPROGRESS (the refusal comes through SO_ERROR).
	if !regexp.MustCompile(`tcp:10\.9\.0\.5:80\s+2\s+refuse\s+EINPROGRESS`).MatchString(r.Stderr) {
		t.Errorf("--summary table missing or wrong:\n%s", r.Stderr)
	}
	var s struct {
		Connects []struct {
			Dst, Verdict, Errno string
			Count               int
		}
	}
	data, err := os.ReadFile(sum)
	if err != nil || json.Unmarshal(data, &s) != nil {
		t.Fatalf("summary JSON: %v %q", err, data)
	}
	found := false
	for _, c := range s.Connects {
		if c.Dst == "tcp:"+dst && c.Verdict == "refuse" && c.Errno == "EINPROGRESS" && c.Count == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("summary JSON lacks the refused destination: %s", data)
	}
}
