// Package matrix_test runs `sandbox matrix` against real programs in a
// fresh network namespace pair (tests/internal/nettest) with a DNS server
// and a web server in the peer (tests/internal/dnstest): a sample client
// whose exit status says how each fault ended it, curl beside natively
// built twins of the faults, the JUnit, Markdown and JSON reports, --jobs,
// and a run that hangs.
package matrix_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sandbox/tests/internal/dnstest"
	"sandbox/tests/internal/nettest"
)

func TestMain(m *testing.M) { os.Exit(nettest.Main(m)) }

const zone = "web.test 60 A 10.231.0.2\n"

// The web destination as learn writes it: by name, since the client
// looked it up.
const webDest = "tcp:web.test:8080"

// report is the JSON report, as far as the tests read it.
type report struct {
	Program  []string `json:"program"`
	Failures int      `json:"failures"`
	Baseline result   `json:"baseline"`
	Runs     []result `json:"runs"`
	Notes    []string `json:"notes"`
}

type result struct {
	Destination string   `json:"destination"`
	Fault       string   `json:"fault"`
	Argv        []string `json:"argv"`
	Reading     string   `json:"reading"`
	Exit        *int     `json:"exit"`
	Seconds     float64  `json:"seconds"`
	Differs     bool     `json:"differs"`
	LastStderr  string   `json:"last_stderr_line"`
	Stderr      []string `json:"stderr_tail"`
	Note        string   `json:"note"`
}

func (r result) exit() int {
	if r.Exit == nil {
		return -1
	}
	return *r.Exit
}

func (r result) String() string {
	return fmt.Sprintf("%s × %s: %s %d (%.2fs) %q", r.Destination, r.Fault, r.Reading, r.exit(), r.Seconds, r.LastStderr+r.Note)
}

type env struct {
	n   *nettest.Netns
	sb  string
	dir string
}

func setup(t *testing.T) *env {
	t.Helper()
	n := nettest.NewNetns(t)
	e := &env{n: n, sb: nettest.BuildSandbox(t), dir: t.TempDir()}
	dnstest.Start(t, n, zone)
	dnstest.StartHTTP(t, n, "web.test")
	dnstest.UseResolver(t, n, "", "")
	return e
}

// hasFault says whether `sandbox run` has --fault (live-connection faults).
func hasFault(t *testing.T, sb string) bool {
	t.Helper()
	r := nettest.Run(30*time.Second, sb, "run", "--help")
	if r.Err != nil {
		t.Fatal(r)
	}
	return strings.Contains(r.Stdout, "--fault ")
}

// matrix runs `sandbox matrix args...` in the test namespace, with a JSON
// report, and returns its result and the report.
func (e *env) matrix(t *testing.T, name string, args ...string) (nettest.Result, report) {
	t.Helper()
	out := filepath.Join(e.dir, name+".json")
	argv := append([]string{e.sb, "matrix", "--out", out}, args...)
	r := e.n.Run(3*time.Minute, argv...)
	t.Logf("%s: exit %d\n%s%s", name, r.ExitCode, r.Stdout, r.Stderr)
	var rep report
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("%s: no JSON report: %v", name, err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, b)
	}
	return r, rep
}

// cell finds the run of dest × fault.
func cell(rep report, dest, fault string) (result, bool) {
	for _, r := range rep.Runs {
		if r.Destination == dest && r.Fault == fault {
			return r, true
		}
	}
	return result{}, false
}

// want is a cell's expected reading and exit.
type want struct {
	fault   string
	reading string
	exit    int
}

// The sample client under each fault of the default list: its exit status
// is what its code implies.
var connectCells = []want{
	{"refuse", "failed", 2},
	{"timeout:5s", "failed", 3}, // its own 3 s connect timeout comes first
	{"unreachable", "failed", 4},
}

var liveCells = []want{
	{"reset:0", "failed", 5}, // the retry is reset too
	{"blackhole", "failed", 3},
	{"latency:2s", "ok", 0},
}

func TestClient(t *testing.T) {
	t.Parallel()
	e := setup(t)
	client := nettest.GoBuild(t, "sandbox/tests/matrix/testdata/client")
	cells := connectCells
	if hasFault(t, e.sb) {
		cells = append(cells, liveCells...)
	} else {
		t.Logf("sandbox run has no --fault yet: the live-connection cells (reset:0, blackhole, latency:2s) were skipped")
	}
	md, xmlFile := filepath.Join(e.dir, "report.md"), filepath.Join(e.dir, "report.xml")
	// The default fault list: matrix itself leaves out the live-connection
	// faults when its sandbox has no --fault.
	r, rep := e.matrix(t, "jobs1", "--run-timeout", "10s", "--out", md, "--out", xmlFile, "--", client)
	if r.ExitCode != 0 {
		t.Errorf("matrix: exit %d, want 0 (every run ended)", r.ExitCode)
	}
	if b := rep.Baseline; b.Reading != "ok" || b.exit() != 0 || b.Destination != "" {
		t.Errorf("baseline: %v, want ok 0", b)
	}
	if len(rep.Runs) != len(cells) {
		t.Errorf("%d runs, want %d (one per fault on %s, none on the resolver):\n%v", len(rep.Runs), len(cells), webDest, rep.Runs)
	}
	for _, w := range cells {
		got, ok := cell(rep, webDest, w.fault)
		if !ok {
			t.Errorf("no run %s × %s", webDest, w.fault)
			continue
		}
		if got.Reading != w.reading || got.exit() != w.exit {
			t.Errorf("%v: want %s %d", got, w.reading, w.exit)
		}
		if got.Differs != (w.exit != 0) {
			t.Errorf("%v: differs=%v", got, got.Differs)
		}
	}
	if got, ok := cell(rep, webDest, "timeout:5s"); ok && (got.Seconds < 2.8 || got.Seconds > 4.5) {
		t.Errorf("%v: want the client to give up after its own 3 s", got)
	}
	// The resolver is learned but not faulted without --dns.
	resolver := "udp:" + nettest.PeerIP + ":53"
	for _, run := range rep.Runs {
		if strings.HasSuffix(run.Destination, ":53") {
			t.Errorf("a resolver was faulted without --dns: %v", run)
		}
	}
	if notes := strings.Join(rep.Notes, "\n"); !strings.Contains(notes, resolver+": not faulted: a resolver (port 53); --dns faults it too") {
		t.Errorf("notes do not say the resolver was left out:\n%s", notes)
	}
	// The table on stdout: the header, the baseline, then the plan.
	lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
	if len(lines) < 2+len(cells) || !strings.HasPrefix(lines[0], "DESTINATION") ||
		!strings.Contains(lines[0], "LAST STDERR LINE") || !strings.HasPrefix(lines[1], "(baseline)") {
		t.Errorf("table:\n%s", r.Stdout)
	}
	for i, w := range cells {
		if i+2 < len(lines) && !strings.HasPrefix(strings.Join(strings.Fields(lines[i+2]), " "),
			fmt.Sprintf("%s %s %s %d", webDest, w.fault, w.reading, w.exit)) {
			t.Errorf("table row %d: %q, want %s %s %s %d", i+2, lines[i+2], webDest, w.fault, w.reading, w.exit)
		}
	}
	if r.Stderr != "" {
		t.Errorf("stderr is not a terminal, yet matrix printed:\n%s", r.Stderr)
	}

	t.Run("junit", func(t *testing.T) { checkJUnit(t, xmlFile, client, rep) })
	t.Run("markdown", func(t *testing.T) {
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		var rows []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "| ") {
				rows = append(rows, l)
			}
		}
		// The header, then one row per run, the baseline included.
		if len(rows) != 2+len(cells) || !strings.HasPrefix(rows[1], "| (baseline) |") {
			t.Fatalf("want a header and %d rows:\n%s", 1+len(cells), b)
		}
		for i, w := range cells {
			if !strings.HasPrefix(rows[i+2], fmt.Sprintf("| `%s` | `%s` | %s | %d |", webDest, w.fault, w.reading, w.exit)) {
				t.Errorf("row %q, want %s %s %s %d", rows[i+2], webDest, w.fault, w.reading, w.exit)
			}
		}
	})
	// --dns: the resolver too; --keep: the learned baseline stays.
	t.Run("dns", func(t *testing.T) {
		keep := filepath.Join(e.dir, "kept")
		r, rep := e.matrix(t, "dns", "--dns", "--faults", "refuse", "--keep", keep, "--run-timeout", "10s", "--", client)
		if r.ExitCode != 0 || len(rep.Runs) != 2 {
			t.Fatalf("exit %d, %d runs, want 0 and 2", r.ExitCode, len(rep.Runs))
		}
		if got, ok := cell(rep, resolver, "refuse"); !ok || got.Reading != "failed" || got.exit() == 0 {
			t.Errorf("%v: want the lookup, and the client, to fail", got)
		}
		if b, err := os.ReadFile(filepath.Join(keep, "baseline.yaml")); err != nil || !strings.Contains(string(b), "allow: "+webDest) {
			t.Errorf("kept policy: %v\n%s", err, b)
		}
		if _, err := os.Stat(filepath.Join(keep, "baseline.json")); err != nil {
			t.Errorf("kept summary: %v", err)
		}
	})
	// --jobs 3: the same report, in the same order.
	t.Run("jobs", func(t *testing.T) {
		r3, rep3 := e.matrix(t, "jobs3", "--jobs", "3", "--run-timeout", "10s", "--", client)
		if r3.ExitCode != r.ExitCode {
			t.Errorf("--jobs 3: exit %d, --jobs 1: %d", r3.ExitCode, r.ExitCode)
		}
		key := func(rep report) []string {
			out := []string{fmt.Sprintf("baseline %s %d", rep.Baseline.Reading, rep.Baseline.exit())}
			for _, r := range rep.Runs {
				out = append(out, fmt.Sprintf("%s %s %s %d %v", r.Destination, r.Fault, r.Reading, r.exit(), r.Differs))
			}
			return out
		}
		if a, b := strings.Join(key(rep), "\n"), strings.Join(key(rep3), "\n"); a != b {
			t.Errorf("--jobs 1:\n%s\n--jobs 3:\n%s", a, b)
		}
	})
}

func checkJUnit(t *testing.T, path, client string, rep report) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name `xml:"testsuites"`
		Suites  []struct {
			Name     string `xml:"name,attr"`
			Tests    string `xml:"tests,attr"`
			Failures string `xml:"failures,attr"`
			Time     string `xml:"time,attr"`
			Cases    []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Time      string `xml:"time,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
				SystemErr string `xml:"system-err"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%d testsuites, want 1", len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name != "sandbox matrix: "+client || s.Tests != strconv.Itoa(1+len(rep.Runs)) || s.Failures != "0" {
		t.Errorf("testsuite name=%q tests=%s failures=%s, want %q, %d, 0", s.Name, s.Tests, s.Failures, "sandbox matrix: "+client, 1+len(rep.Runs))
	}
	if _, err := strconv.ParseFloat(s.Time, 64); err != nil {
		t.Errorf("testsuite time=%q", s.Time)
	}
	if len(s.Cases) != 1+len(rep.Runs) {
		t.Fatalf("%d testcases, want %d", len(s.Cases), 1+len(rep.Runs))
	}
	for i, c := range s.Cases {
		want := "baseline"
		var run result
		if i > 0 {
			run = rep.Runs[i-1]
			want = run.Destination + " × " + run.Fault
		}
		if c.Name != want || c.Classname != filepath.Base(client) || c.Failure != nil {
			t.Errorf("testcase %d: name=%q classname=%q failure=%v, want %q, %q, none", i, c.Name, c.Classname, c.Failure, want, filepath.Base(client))
		}
		if sec, err := strconv.ParseFloat(c.Time, 64); err != nil || i > 0 && (sec < run.Seconds-0.01 || sec > run.Seconds+0.01) {
			t.Errorf("testcase %d: time=%q, want %.3f", i, c.Time, run.Seconds)
		}
		if i > 0 && run.exit() != 0 && !strings.Contains(c.SystemErr, "client: ") {
			t.Errorf("testcase %q: system-err %q lacks the client's message", c.Name, c.SystemErr)
		}
	}
}

// TestCurl runs curl under the matrix, and each fault's twin natively
// where one can be built in the namespaces: curl's exit status under the
// fault is its status against the twin.
func TestCurl(t *testing.T) {
	t.Parallel()
	e := setup(t)
	live := hasFault(t, e.sb)
	curl := func(url string) []string {
		return []string{"curl", "-sS", "--connect-timeout", "3", "--max-time", "6", url}
	}
	type twin struct {
		fault string
		exit  int // curl's documented status
		url   string
		build func(t *testing.T) bool
	}
	twins := []twin{
		// A port nobody listens on.
		{"refuse", 7, "http://" + nettest.PeerIP + ":8081/", nil},
		// A peer whose firewall drops the SYNs.
		{"timeout:5s", 28, "http://" + nettest.PeerIP + ":8082/", func(t *testing.T) bool {
			if _, err := exec.LookPath("iptables"); err != nil {
				t.Logf("no iptables: the timeout twin is not built")
				return false
			}
			e.n.MustRunPeer(t, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8082", "-j", "DROP")
			return true
		}},
		// An address with no route.
		{"unreachable", 7, "http://10.232.0.1:8080/", nil},
	}
	if live {
		py := func(t *testing.T, port, onAccept string) bool {
			if _, err := exec.LookPath("python3"); err != nil {
				t.Logf("no python3: the %s twin is not built", port)
				return false
			}
			e.n.StartPeer(t, "ready", "python3", "-c", `import socket, struct
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("`+nettest.PeerIP+`", `+port+`))
s.listen(16)
print("ready", flush=True)
kept = []
while True:
    c, _ = s.accept()
    `+onAccept)
			return true
		}
		twins = append(twins,
			// A server that resets each connection before it answers a
			// byte (once the request is in: a reset at accept can reach
			// curl before its connect completes, exit 7).
			twin{"reset:0", 56, "http://" + nettest.PeerIP + ":8083/", func(t *testing.T) bool {
				return py(t, "8083", `c.recv(65536); c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()`)
			}},
			// A server that accepts and never answers.
			twin{"blackhole", 28, "http://" + nettest.PeerIP + ":8084/", func(t *testing.T) bool {
				return py(t, "8084", "kept.append(c)")
			}})
	} else {
		t.Logf("sandbox run has no --fault yet: the live-connection cells (reset:0 56, blackhole 28, latency:2s 0) were skipped")
	}
	native := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, tw := range twins {
		if tw.build != nil && !tw.build(t) {
			continue
		}
		wg.Go(func() {
			r := e.n.Run(20*time.Second, curl(tw.url)...)
			t.Logf("twin of %s: %v", tw.fault, r)
			mu.Lock()
			native[tw.fault] = r.ExitCode
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, tw := range twins {
		if got, ok := native[tw.fault]; ok && got != tw.exit {
			t.Errorf("the twin of %s: curl exits %d natively, want %d", tw.fault, got, tw.exit)
		}
	}
	if _, ok := native["refuse"]; !ok {
		t.Fatal("no twin for refuse")
	}

	dest := "tcp:" + nettest.PeerIP + ":8080"
	r, rep := e.matrix(t, "curl", append([]string{"--jobs", "3", "--run-timeout", "10s", "--"}, curl("http://"+dest[4:]+"/")...)...)
	if r.ExitCode != 0 {
		t.Errorf("matrix: exit %d, want 0 (every run ended)", r.ExitCode)
	}
	if rep.Baseline.Reading != "ok" {
		t.Fatalf("baseline: %v", rep.Baseline)
	}
	for _, tw := range twins {
		got, ok := cell(rep, dest, tw.fault)
		if !ok {
			t.Errorf("no run %s × %s", dest, tw.fault)
			continue
		}
		want, built := native[tw.fault]
		if !built {
			want = tw.exit
		}
		if got.Reading != "failed" || got.exit() != want {
			t.Errorf("%v: want failed %d (the twin's)", got, want)
		}
	}
	if live {
		if got, ok := cell(rep, dest, "latency:2s"); !ok || got.Reading != "ok" || got.Differs {
			t.Errorf("%v: want ok, the baseline's output", got)
		}
	}
}

// TestHungRunLeavesNothing: a PROGRAM that ignores SIGTERM and leaves a
// sleeping child behind reads hung, and once matrix exits no process of
// the test remains.
func TestHungRunLeavesNothing(t *testing.T) {
	t.Parallel()
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	dir := t.TempDir()
	marker := fmt.Sprintf("sbx-matrix-hung-%d", time.Now().UnixNano())
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("default: deny\nrules:\n  - allow: tcp:127.0.0.1:9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `trap "" TERM; (exec -a ` + marker + `-child sleep 300) & echo started >&2; exec -a ` + marker + `-main sleep 301`
	out := filepath.Join(dir, "report.json")
	start := time.Now()
	// Not nettest.Run, which kills the process group it started: only
	// matrix may clean up here.
	cmd := exec.Command(sb, "matrix", "--policy", policy, "--faults", "refuse", "--run-timeout", "2s",
		"--out", out, "--", "bash", "-c", script)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	took := time.Since(start)
	t.Logf("matrix: %v after %v\n%s%s", err, took, stdout.String(), stderr.String())
	if left := processesWith(marker); len(left) > 0 {
		t.Errorf("after matrix exited, processes remain:\n%s", strings.Join(left, "\n"))
		for _, l := range left {
			if pid, err := strconv.Atoi(strings.SplitN(l, ":", 2)[0]); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d, want 1 (a run hung)", code)
	}
	var rep report
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// The sandbox may warn after PROGRAM's own line, about the child it
	// killed.
	if rep.Baseline.Reading != "hung" || !slices.Contains(rep.Baseline.Stderr, "started") {
		t.Errorf("baseline: %v, want hung after printing started", rep.Baseline)
	}
	if len(rep.Runs) != 1 || rep.Runs[0].Reading != "hung" || rep.Runs[0].Destination != "tcp:127.0.0.1:9" {
		t.Errorf("runs: %v, want tcp:127.0.0.1:9 × refuse hung", rep.Runs)
	}
	if rep.Failures != 2 {
		t.Errorf("failures %d, want 2", rep.Failures)
	}
	// Each run: 2 s, then the sandbox's 2 s grace.
	if took > 25*time.Second {
		t.Errorf("matrix took %v", took)
	}
}

// processesWith lists the processes whose argv holds s.
func processesWith(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}
