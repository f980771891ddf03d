package security

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// statusField reads one numeric field of /proc/PID/status.
func statusField(pid int, name string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return -1
}

// 64 threads × 10,000 connects: every call is answered, the results match
// native, and the supervisor's threads and memory stay bounded.
func TestLoad64x10k(t *testing.T) {
	threads, count := 64, 10000
	if testing.Short() {
		count = 200
	}
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "load.c"), false)
	port, _ := countingListener(t)
	args := []string{strconv.Itoa(threads), strconv.Itoa(count), strconv.Itoa(port)}
	want := fmt.Sprintf("connected=%d\n", threads*count)

	native := nettest.Run(5*time.Minute, append([]string{prog}, args...)...)
	if native.Stdout != want {
		t.Fatalf("natively: %q, want %q", native.Stdout, want)
	}

	cmd := exec.Command(sb, append([]string{"run", "--log-level", "warn", "--allow", fmt.Sprintf("tcp:127.0.0.1:%d", port), "--", prog}, args...)...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	maxThreads, peakRSS := 0, 0
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			th, hwm := statusField(cmd.Process.Pid, "Threads"), statusField(cmd.Process.Pid, "VmHWM")
			mu.Lock()
			maxThreads, peakRSS = max(maxThreads, th), max(peakRSS, hwm)
			mu.Unlock()
		}
	}()
	err := cmd.Wait()
	elapsed := time.Since(start)
	close(done)
	if err != nil || out.String() != want {
		t.Fatalf("under the sandbox: %q (%v), want %q", out.String(), err, want)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d connects from %d threads: %.0f answers/s; supervisor peak %d threads, peak RSS %d KiB",
		threads*count, threads, float64(threads*count)/elapsed.Seconds(), maxThreads, peakRSS)
	if maxThreads > 32 {
		t.Errorf("supervisor reached %d threads under load; want a small bound", maxThreads)
	}
	if peakRSS > 200*1024 {
		t.Errorf("supervisor peak RSS %d KiB; want it bounded", peakRSS)
	}
}

// A fork bomb held by RLIMIT_NPROC, every child connecting: the supervisor
// answers each one correctly and stays responsive.
func TestForkBomb(t *testing.T) {
	nettest.RequireRoot(t) // to run the program as a dedicated user
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "forkbomb.c"), false)
	for d := filepath.Dir(prog); d != "/" && d != "/tmp"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	// A uid of its own, so that the process limit counts only the bomb.
	r := nettest.Run(2*time.Minute, sb, "run", "--log-level", "error", "--",
		"setpriv", "--reuid=54321", "--regid=54321", "--clear-groups", "--",
		"prlimit", "--nproc=150", "--", prog, "1")
	m := regexp.MustCompile(`children=(\d+) eacces=(\d+) other=(\d+) own=(\w+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("%v\nstdout: %q", r, r.Stdout)
	}
	t.Logf("fork bomb: %s children, %s EACCES, %s other, own listener %s", m[1], m[2], m[3], m[4])
	if n, _ := strconv.Atoi(m[1]); n < 100 {
		t.Errorf("only %d children: the bomb did not reach its limit", n)
	}
	if m[1] != m[2] || m[3] != "0" || m[4] != "ok" {
		t.Errorf("every child must be denied (EACCES) and the parent's own connect succeed: %s", r.Stdout)
	}
}
