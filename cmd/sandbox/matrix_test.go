package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sandbox/matrix"
)

// Bad command lines stop matrix before anything runs: 125, one line that
// names the cause and the fix.
func TestMatrixUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--jobs", "0", "--", "true"}, "sandbox: matrix: --jobs 0: want 1 or more (see 'sandbox matrix --help')\n"},
		{[]string{"--out", "report.txt", "--", "true"}, "sandbox: matrix: --out report.txt: want .md, .json or .xml (Markdown, JSON or JUnit XML, by extension) (see 'sandbox matrix --help')\n"},
		{[]string{"--out", filepath.Join(dir, "no/such/r.md"), "true"}, "directory " + filepath.Join(dir, "no/such") + " does not exist"},
		{[]string{"--run-timeout", "0s", "true"}, "--run-timeout 0s: want a duration above 0"},
		{[]string{"--faults", "refuse,,timeout", "true"}, "an empty fault"},
		{[]string{"--faults", "refuse:1s", "true"}, "--faults refuse:1s: refuse takes no value"},
		{[]string{"--faults", "bogus", "true"}, "sandbox: matrix: --faults bogus: unknown fault bogus (known: refuse, timeout, unreachable, deny, reset, blackhole, latency, connect-latency, bandwidth, limit, slice, slow-close, loss, duplicate, toxicity) (see 'sandbox matrix --help')\n"},
		{[]string{"--faults", "latency:1s+refuse", "true"}, "--faults latency:1s+refuse: refuse is a connect verdict, not a fault on a live connection: give it as a cell of its own"},
		{[]string{"--fail-on", "slow", "true"}, `--fail-on slow: "slow" is no reading`},
		{[]string{"--policy", filepath.Join(dir, "none.yaml"), "true"}, "--policy: stat " + filepath.Join(dir, "none.yaml") + ": no such file or directory"},
		{[]string{"--"}, "no PROGRAM given (usage: sandbox matrix [flags] -- PROGRAM [ARGS...])"},
		{[]string{"--jobs", "x", "true"}, "invalid value \"x\" for flag -jobs"},
	} {
		var stdout, stderr bytes.Buffer
		code := runMain(append([]string{"sandbox", "matrix"}, c.args...), &stdout, &stderr)
		if code != exitSandbox || !strings.Contains(stderr.String(), c.want) || strings.Count(stderr.String(), "\n") != 1 || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want 125 and %q", c.args, code, stderr.String(), stdout.String(), c.want)
		}
	}
}

func TestMatrixListed(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"sandbox", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "matrix") {
		t.Errorf("sandbox --help: %d\n%s", code, stdout.String())
	}
	stdout.Reset()
	if code := runMain([]string{"sandbox", "matrix", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("matrix --help: %d %s", code, stderr.String())
	}
	for _, want := range []string{"--faults", "--jobs", "--run-timeout", "--out", "--fail-on", "--dns", "--keep", "--policy",
		"Example:", "hung", "crashed", "subreaper", "own temporary files, ports", "are left out unless --dns", matrix.DefaultFaults} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("matrix --help lacks %q", want)
		}
	}
	if !runHasFlag("allow-all") || runHasFlag("no-such-flag") {
		t.Error("runHasFlag")
	}
}

// A run past its timeout that ignores SIGTERM is killed, with what it
// started, and reads hung.
func TestRunnerHung(t *testing.T) {
	marker := "matrix-runner-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	r := &matrixRunner{exe: "/bin/sh", ctx: context.Background(), timeout: 300 * time.Millisecond, killAfter: 300 * time.Millisecond}
	start := time.Now()
	o := r.exec([]string{"-c", `trap "" TERM; sleep 30 & echo started >&2; exec sleep 31`, marker}, r.timeout, nil)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
	if reading, _ := matrix.Read(o.Outcome); reading != matrix.Hung || !slices.Equal(o.stderr, []string{"started"}) {
		t.Errorf("%+v: %s", o, reading)
	}
	// The background sleep was below the shell: killed with it. It may
	// take a moment to be reparented and reaped.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left := descendants(os.Getpid())
		alive := 0
		for _, p := range left {
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
				alive++
			}
		}
		if alive == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left: %v", left)
		}
	}
}

func TestRunnerExit(t *testing.T) {
	r := &matrixRunner{exe: "/bin/sh", ctx: context.Background(), timeout: 10 * time.Second, killAfter: time.Second}
	o := r.exec([]string{"-c", `echo out; echo one >&2; echo two >&2; exit 3`}, r.timeout, nil)
	sum := sha256.Sum256([]byte("out\n"))
	if !o.Started || o.Exit != 3 || o.TimedOut || !slices.Equal(o.stderr, []string{"one", "two"}) || o.stdout != hex.EncodeToString(sum[:]) {
		t.Errorf("%+v", o)
	}
	o2 := r.exec([]string{"-c", `echo out; exit 0`}, r.timeout, nil)
	if o2.stdout != o.stdout || o2.Exit != 0 {
		t.Errorf("the same stdout hashes differently: %s %s", o.stdout, o2.stdout)
	}
	o = r.exec([]string{"-c", `kill -SEGV $$`}, r.timeout, nil)
	if reading, note := matrix.Read(o.Outcome); reading != matrix.Error || !strings.Contains(note, "killed by signal 11") {
		t.Errorf("a sandbox killed by a signal: %s %q", reading, note)
	}
	r.exe = "/no/such/sandbox"
	res := r.result(matrix.Run{Args: []string{"run"}}, nil)
	if res.Reading != matrix.Error || res.Exit != -1 || !strings.Contains(res.Note, "the sandbox did not start") {
		t.Errorf("%+v", res)
	}
}

func TestDescendants(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & sleep 30 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := descendants(cmd.Process.Pid)
		if len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("descendants of the shell: %v, want its 2 sleeps", got)
		}
	}
	if d := descendants(os.Getpid()); !slices.Contains(d, cmd.Process.Pid) || len(d) < 3 {
		t.Errorf("descendants of the test: %v", d)
	}
}

// reapHelper is TestReapDescendants in a process of its own: a subreaper
// whose child left an orphan behind.
func reapHelper() {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		os.Exit(2)
	}
	// The shell exits at once; its sleep comes to this process.
	if err := exec.Command("/bin/sh", "-c", "sleep 300 & sleep 301 &").Run(); err != nil {
		os.Exit(3)
	}
	if len(descendants(os.Getpid())) != 2 {
		os.Exit(4)
	}
	reapDescendants()
	if len(descendants(os.Getpid())) != 0 {
		os.Exit(5)
	}
	os.Exit(0)
}

func TestReapDescendants(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestReapDescendants$")
	cmd.Env = append(os.Environ(), "SANDBOX_MATRIX_REAP_HELPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}

func init() {
	if os.Getenv("SANDBOX_MATRIX_REAP_HELPER") == "1" {
		reapHelper()
	}
}

// TestRunnerSkipsPlannedSkips: a cell planned skipped (a fault with no
// meaning on its destination's protocol) reads skipped with its reason,
// and no sandbox runs for it.
func TestRunnerSkipsPlannedSkips(t *testing.T) {
	faults, err := matrix.ParseFaults("reset:0,latency:1s")
	if err != nil {
		t.Fatal(err)
	}
	plan := matrix.NewPlan([]string{"udp:10.231.0.2:9001"}, matrix.Options{Program: []string{"true"}, Faults: faults})
	r := &matrixRunner{exe: "/nonexistent/sandbox", ctx: context.Background(), timeout: time.Second, killAfter: time.Second}
	res := r.runAll(plan.Runs, 1, &bar{})
	if len(res) != 2 || res[0].Reading != matrix.Skipped || !strings.Contains(res[0].Note, "reset:0 has no meaning on UDP") {
		t.Errorf("reset:0 on UDP: %+v", res)
	}
	// The other was tried: the sandbox did not start, so it is no skip
	// planned (its reason is the sandbox's).
	if len(res) == 2 && (res[1].Run.Skip != "" || strings.Contains(res[1].Note, "no meaning")) {
		t.Errorf("latency:1s on UDP: %+v", res[1])
	}
}
