package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// curl through the sandbox reaches a local server, and the connect is logged.
func TestCurlLocalServer(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (.ci/run installs it)")
	}
	sb := sandbox(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from the host\n")
	}))
	defer srv.Close()
	hostport := strings.TrimPrefix(srv.URL, "http://")
	r := run(t, sb, "run", "-v", "--allow", "tcp:"+hostport, "--", "curl", "-s", srv.URL+"/")
	if r.code != 0 || r.stdout != "hello from the host\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	dst := "dst=\"tcp:" + hostport + "\""
	if !strings.Contains(r.stderr, dst) || !strings.Contains(r.stderr, "verdict=allow") {
		t.Errorf("the connect was not logged with %s:\n%s", dst, r.stderr)
	}
}

func threadsOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return -1
}

func fdsOf(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// 10,000 blocking connects pending at once leave the supervisor responsive,
// with a bounded number of threads: no call holds a thread while it waits.
func TestTenThousandPendingConnects(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	const n = 10000
	sb := sandbox(t)
	prog := cc(t, "tarpit.c")
	cmd := exec.Command(sb, "run", "--allow", "tcp:127.0.0.1", "--log-level", "warn", "--", prog, strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("tarpit: %q %v; stderr %s", line, err, stderr.String())
	}
	// Every pending connect holds one duplicate socket in the supervisor.
	pid := cmd.Process.Pid
	t0 := time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for fdsOf(pid) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := fdsOf(pid); got < n {
		t.Fatalf("only %d fds in the supervisor: the connects are not all pending there", got)
	}
	threads := threadsOf(pid)
	t.Logf("supervisor: %d threads, %d fds with %d connects pending (parked in %v)", threads, fdsOf(pid), n, time.Since(t0).Round(time.Millisecond))
	if threads > 32 {
		t.Errorf("supervisor has %d threads with %d connects pending; want a small bound", threads, n)
	}
	// Still responsive: a new connect is answered.
	io.WriteString(stdin, "go\n")
	line, err := out.ReadString('\n')
	if err != nil || line != "probe=0 errno=0\n" {
		t.Fatalf("probe connect: %q %v", line, err)
	}
	// SIGKILL the program with every connect still pending: the supervisor
	// must release everything and exit, with 128+9, within 2 s.
	// The program is the supervisor's child; Go may have forked it from any
	// of its threads, and children are listed per thread.
	var tracee int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		if kids, err := os.ReadFile(f); err == nil && len(strings.Fields(string(kids))) > 0 {
			tracee, _ = strconv.Atoi(strings.Fields(string(kids))[0])
		}
	}
	if tracee <= 0 {
		t.Fatal("cannot find the program's pid")
	}
	t1 := time.Now()
	syscall.Kill(tracee, syscall.SIGKILL)
	err = cmd.Wait()
	took := time.Since(t1)
	t.Logf("SIGKILL with %d connects pending: the sandbox exited in %v (%v)", n, took.Round(time.Millisecond), err)
	if code := cmd.ProcessState.ExitCode(); code != 137 {
		t.Errorf("sandbox exit %d, want 137; stderr %s", code, stderr.String())
	}
	if took > 2*time.Second {
		t.Errorf("the sandbox took %v to exit after its program was killed; want under 2 s", took)
	}
}

// For a Unix connect performed by the supervisor, the server sees the
// supervisor's pid in SO_PEERCRED. That is the one documented divergence:
// everything else either end observes is identical, for root and
// unprivileged clients alike (uid and gid follow the caller's credentials).
func TestPeerCredIsTheOnlyDivergence(t *testing.T) {
	requireRoot(t)
	sb := sandbox(t)
	prog := cc(t, "peercred.c")
	native := run(t, prog)
	boxed := run(t, sb, "run", "--allow-all", "--log-level", "error", "--", prog)
	if native.code != 0 || boxed.code != 0 {
		t.Fatalf("native exit %d (%s), sandboxed exit %d (%s)", native.code, native.stderr, boxed.code, boxed.stderr)
	}
	nl := strings.Split(strings.TrimSpace(native.stdout), "\n")
	bl := strings.Split(strings.TrimSpace(boxed.stdout), "\n")
	if len(nl) != len(bl) || len(nl) < 24 {
		t.Fatalf("line counts differ or too few:\nnative:\n%s\nsandboxed:\n%s", native.stdout, boxed.stdout)
	}
	for i := range nl {
		expected := nl[i]
		if k, v, _ := strings.Cut(nl[i], "="); strings.HasSuffix(k, ".peer_pid_is_client") {
			if v != "1" {
				t.Errorf("native: %s", nl[i])
			}
			expected = k + "=0"
		} else if strings.HasSuffix(k, ".peer_pid_is_parent") {
			expected = k + "=1"
		}
		if bl[i] != expected {
			t.Errorf("sandboxed %q, want %q (native %q)", bl[i], expected, nl[i])
		}
	}
	if !strings.Contains(native.stdout, "path.nobody.peer_uid=65534") {
		t.Errorf("the unprivileged case did not run as nobody:\n%s", native.stdout)
	}
}
