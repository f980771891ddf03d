// Command run is the sandbox benchmark: it measures, in one run, the cost of
// a loopback TCP connect cycle, a UDP connect and an untrapped syscall
// (getpid) natively, under `sandbox run --` and under strace, and prints
// the medians side by side as ratios against native.
//
// Usage (from the repository root; `make bench` does this):
//
//	go run ./bench/run [-sandbox bin/sandbox] [-modes native,sandbox,strace] [-json bench/results.json]
//
// The C programs in bench/c are compiled with gcc -O2 at bench time. Each
// takes its iteration count as argv[1], times its own loop with
// clock_gettime (setup and process start excluded) and prints ns/op.
// Rounds interleave the modes (in an order rotated every round) and the
// reported figure is the median per mode, to damp machine noise.
//
// Every benchmark is measured in two CPU placements, each with its own table:
// unpinned (as a user runs it) and pinned to one CPU with taskset (no
// cross-CPU wakeups: far steadier on small VMs, but tracer and tracee then
// share the CPU, which flatters ptrace-based strace). Results also go to
// bench/results.json for the README.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const (
	modeNative  = "native"
	modeSandbox = "sandbox"
	modeStrace  = "strace"
)

var allModes = []string{modeNative, modeSandbox, modeStrace}

// bench is one C program and the targets it is held to.
type bench struct {
	Name   string
	Source string   // file in bench/c
	Args   []string // after the iteration count
	Desc   string
	Iters  *int
	// Policy is what `sandbox run` is given for this benchmark, before
	// -sandbox-flags: the pass-through benchmarks allow their loopback
	// destinations explicitly, so that they measure an allowed connect.
	Policy      []string
	RatioTarget float64 // sandbox/native must be <= this
	// SpeedupTarget is the minimum strace/sandbox ratio; 0 when it does not
	// apply (strace --seccomp-bpf does not stop getpid either).
	SpeedupTarget float64
}

type config struct {
	Sandbox      string
	SandboxFlags string
	Strace       string
	CC           string
	CFlags       string
	Modes        string
	Placements   string
	PinCPU       string
	Rounds       int
	TCPIters     int
	UDPIters     int
	GetpidIters  int
	Timeout      time.Duration
	Budget       time.Duration
	JSON         string
	FailOnTarget bool
}

func main() {
	var c config
	flag.StringVar(&c.Sandbox, "sandbox", "", "sandbox binary; empty builds ./cmd/sandbox into a temporary directory")
	flag.StringVar(&c.SandboxFlags, "sandbox-flags", "", "extra flags for `sandbox run` (space-separated, placed before --)")
	flag.StringVar(&c.Strace, "strace", "strace", "strace binary")
	flag.StringVar(&c.CC, "cc", "gcc", "C compiler")
	flag.StringVar(&c.CFlags, "cflags", "-O2", "C compiler flags (space-separated)")
	flag.StringVar(&c.Modes, "modes", strings.Join(allModes, ","), "comma-separated modes to run: native,sandbox,strace (native is always run)")
	flag.StringVar(&c.Placements, "placements", "unpinned,pinned", "comma-separated CPU placements to measure, each with its own table:\nunpinned (the scheduler places every thread) and pinned (everything under `taskset -c PIN-CPU`:\nno cross-CPU wakeups, far less noise on small VMs, but tracer and tracee share one CPU)")
	flag.StringVar(&c.PinCPU, "pin-cpu", "0", "CPU list for the pinned placement (taskset -c syntax)")
	flag.IntVar(&c.Rounds, "rounds", 7, "interleaved rounds; the median per mode is reported")
	flag.IntVar(&c.TCPIters, "tcp-iters", 3000, "iterations of each TCP connect cycle per run")
	flag.IntVar(&c.UDPIters, "udp-iters", 10000, "iterations of the UDP connect per run")
	flag.IntVar(&c.GetpidIters, "getpid-iters", 2000000, "iterations of getpid per run")
	flag.DurationVar(&c.Timeout, "timeout", 60*time.Second, "limit for one run of one program")
	flag.DurationVar(&c.Budget, "budget", 150*time.Second, "stop starting new rounds when the next would end past this (at least one round runs); 0: no limit")
	flag.StringVar(&c.JSON, "json", "bench/results.json", "write results as JSON to this file (relative to the repository root); empty to skip")
	flag.BoolVar(&c.FailOnTarget, "fail-on-target", false, "exit 3 when a target is missed")
	flag.Parse()
	if flag.NArg() != 0 {
		fatalf("unexpected arguments: %q", flag.Args())
	}
	if err := run(c); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	os.Exit(1)
}

func run(c config) error {
	modes, err := parseModes(c.Modes)
	if err != nil {
		return err
	}
	if c.Rounds < 1 || c.TCPIters < 1 || c.UDPIters < 1 || c.GetpidIters < 1 {
		return errors.New("-rounds and the -*-iters flags must be positive")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	allowTCP := []string{"--allow", "tcp:127.0.0.1"}
	benches := []bench{
		{Name: "tcp_connect", Source: "tcp_connect.c", Iters: &c.TCPIters, Policy: allowTCP, RatioTarget: 1.30, SpeedupTarget: 2.5,
			Desc: "loopback TCP cycle: socket, connect, accept (listener thread), close"},
		{Name: "tcp_connect_inline", Source: "tcp_connect.c", Args: []string{"inline"}, Iters: &c.TCPIters, Policy: allowTCP, RatioTarget: 1.30, SpeedupTarget: 2.5,
			Desc: "loopback TCP cycle, accept in the connecting thread: no scheduler wakeups"},
		{Name: "udp_connect", Source: "udp_connect.c", Iters: &c.UDPIters, Policy: []string{"--allow", "udp:127.0.0.1"}, RatioTarget: 2.0, SpeedupTarget: 2.5,
			Desc: "loopback UDP: socket, connect 127.0.0.1:port, close"},
		{Name: "udp_send", Source: "udp_connect.c", Args: []string{"send"}, Iters: &c.UDPIters, Policy: []string{"--allow", "udp:127.0.0.1"}, RatioTarget: 1.10,
			Desc: "send() on a connected UDP socket: no address, never trapped"},
		{Name: "udp_sendmsg", Source: "udp_connect.c", Args: []string{"sendmsg"}, Iters: &c.UDPIters, Policy: []string{"--allow", "udp:127.0.0.1"},
			Desc: "sendmsg() on a connected UDP socket, no address: trapped anyway (msg_name is behind a pointer) and performed by the supervisor"},
		{Name: "udp_sendmsg_addr", Source: "udp_connect.c", Args: []string{"sendmsg_addr"}, Iters: &c.UDPIters, Policy: []string{"--allow", "udp:127.0.0.1"},
			Desc: "sendmsg() with an address on an unconnected UDP socket: decided, then performed by the supervisor"},
		{Name: "tcp_denied", Source: "tcp_connect.c", Args: []string{"refused"}, Iters: &c.TCPIters, Policy: []string{"--deny", "tcp:127.0.0.1"}, RatioTarget: 1.10,
			Desc: "a denied connect (sandbox: --deny, EACCES) against a refused one (native: closed port, ECONNREFUSED)"},
		{Name: "getpid", Source: "getpid.c", Iters: &c.GetpidIters, RatioTarget: 1.10,
			Desc: "syscall(SYS_getpid): an untrapped syscall"},
	}

	tmp, err := os.MkdirTemp("", "sandbox-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Tools first, so a missing one fails before any work.
	if _, err := exec.LookPath(c.CC); err != nil {
		return fmt.Errorf("C compiler %q not found (make deps installs gcc): %v", c.CC, err)
	}
	placements, err := parsePlacements(c.Placements, c.PinCPU)
	if err != nil {
		return err
	}
	for _, p := range placements {
		if p.CPUs != "" {
			if _, err := exec.LookPath("taskset"); err != nil {
				return fmt.Errorf("the pinned placement needs taskset (util-linux), or pass -placements unpinned: %v", err)
			}
		}
	}
	if has(modes, modeStrace) {
		if _, err := exec.LookPath(c.Strace); err != nil {
			return fmt.Errorf("strace mode: %q not found (make deps installs strace, or use -modes native,sandbox): %v", c.Strace, err)
		}
	}

	progs := map[string]string{} // source -> binary
	for _, b := range benches {
		if progs[b.Source] != "" {
			continue
		}
		out := filepath.Join(tmp, strings.TrimSuffix(b.Source, ".c"))
		args := append(strings.Fields(c.CFlags), "-pthread", "-o", out, filepath.Join(root, "bench", "c", b.Source))
		logf("compile: %s %s", c.CC, strings.Join(args, " "))
		if o, err := exec.Command(c.CC, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("compiling %s: %v\n%s", b.Source, err, o)
		}
		progs[b.Source] = out
	}

	sandboxBin := c.Sandbox
	if has(modes, modeSandbox) {
		if sandboxBin == "" {
			sandboxBin = filepath.Join(tmp, "sandbox")
			logf("build: go build -o %s ./cmd/sandbox", sandboxBin)
			cmd := exec.Command("go", "build", "-o", sandboxBin, "./cmd/sandbox")
			cmd.Dir = root
			if o, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("sandbox mode: building ./cmd/sandbox failed (pass -sandbox PATH, or -modes native,strace to bench without it): %v\n%s", err, o)
			}
		} else if abs, err := filepath.Abs(sandboxBin); err == nil {
			sandboxBin = abs
		}
	}
	prefix := map[string][]string{
		modeNative:  nil,
		modeSandbox: append(append([]string{sandboxBin, "run"}, strings.Fields(c.SandboxFlags)...), "--"),
		modeStrace:  {c.Strace, "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-o", "/dev/null"},
	}

	// Preflight: each wrapper must run /bin/true cleanly.
	for _, m := range modes {
		if m == modeNative {
			continue
		}
		argv := append(append([]string{}, prefix[m]...), "/bin/true")
		if _, stderr, err := execute(argv, 20*time.Second); err != nil {
			hint := ""
			if m == modeSandbox {
				hint = " (the sandbox must run `sandbox run -- /bin/true` with exit 0; use -modes native,strace to bench without it)"
			}
			return fmt.Errorf("%s mode failed its preflight: `%s`: %v%s\n%s", m, strings.Join(argv, " "), err, hint, tail(stderr))
		}
	}

	// samples[placement][bench][mode] holds one ns/op per round.
	samples := map[string]map[string]map[string][]float64{}
	for _, p := range placements {
		samples[p.Name] = map[string]map[string][]float64{}
		for _, b := range benches {
			samples[p.Name][b.Name] = map[string][]float64{}
		}
	}
	start := time.Now()
	rounds := 0
	for r := 0; r < c.Rounds; r++ {
		if el := time.Since(start); r > 0 && c.Budget > 0 && el+el/time.Duration(r) > c.Budget {
			logf("budget: stopping after %d of %d rounds (%v elapsed, -budget %v)", r, c.Rounds, el.Round(time.Second), c.Budget)
			break
		}
		rounds++
		order := rotate(modes, r)
		for _, p := range placements {
			for _, b := range benches {
				line := []string{}
				for _, m := range order {
					wrap := prefix[m]
					if m == modeSandbox {
						// sandbox run POLICY -sandbox-flags -- PROGRAM
						wrap = append(append(append([]string{sandboxBin, "run"}, b.Policy...), strings.Fields(c.SandboxFlags)...), "--")
					}
					argv := append(append(p.prefix(), wrap...), progs[b.Source], strconv.Itoa(*b.Iters))
					argv = append(argv, b.Args...)
					ns, err := measure(argv, b.Name, c.Timeout)
					if err != nil {
						hint := ""
						if m == modeSandbox {
							hint = " (use -modes native,strace to bench without the sandbox)"
						}
						return fmt.Errorf("%s mode failed on %s (%s): %v%s", m, b.Name, p.Name, err, hint)
					}
					samples[p.Name][b.Name][m] = append(samples[p.Name][b.Name][m], ns)
					line = append(line, fmt.Sprintf("%s %.1f", m, ns))
				}
				logf("round %d/%d %-8s %-18s ns/op: %s", r+1, c.Rounds, p.Name, b.Name, strings.Join(line, ", "))
			}
		}
	}
	elapsed := time.Since(start)

	res := buildResults(c, modes, placements, benches, samples, elapsed, root)
	res.RoundsRun = rounds
	printTables(os.Stdout, res)
	if c.JSON != "" {
		p := c.JSON
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("\nresults written to %s\n", p)
	}
	if c.FailOnTarget && res.Missed > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d target(s) missed\n", res.Missed)
		os.Exit(3)
	}
	return nil
}

// placement is where the measured processes may run.
type placement struct {
	Name string // unpinned or pinned
	CPUs string // taskset -c argument; empty when unpinned
}

func (p placement) prefix() []string {
	if p.CPUs == "" {
		return nil
	}
	return []string{"taskset", "-c", p.CPUs}
}

func parsePlacements(s, pin string) ([]placement, error) {
	var out []placement
	seen := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		switch name {
		case "unpinned":
			out = append(out, placement{Name: name})
		case "pinned":
			if pin == "" {
				return nil, errors.New("-pin-cpu must not be empty")
			}
			out = append(out, placement{Name: name, CPUs: pin})
		default:
			return nil, fmt.Errorf("unknown placement %q (want unpinned, pinned)", name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-placements names no placement")
	}
	return out, nil
}

func parseModes(s string) ([]string, error) {
	modes := []string{modeNative}
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		switch m {
		case "", modeNative:
		case modeSandbox, modeStrace:
			if !has(modes, m) {
				modes = append(modes, m)
			}
		default:
			return nil, fmt.Errorf("unknown mode %q (want native, sandbox, strace)", m)
		}
	}
	return modes, nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func rotate(s []string, n int) []string {
	out := make([]string, 0, len(s))
	for i := range s {
		out = append(out, s[(i+n)%len(s)])
	}
	return out
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
}

// repoRoot walks up from the working directory to the directory holding the
// go.mod of module sandbox.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if bytes.HasPrefix(bytes.TrimSpace(data), []byte("module sandbox\n")) {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the sandbox repository (no go.mod for module sandbox found)")
		}
		dir = parent
	}
}

func execute(argv []string, timeout time.Duration) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %v", timeout)
	}
	return o.Bytes(), e.Bytes(), err
}

var benchLine = regexp.MustCompile(`(?m)^BENCH name=(\S+) iters=(\d+) ns_per_op=([0-9.]+)$`)

func measure(argv []string, name string, timeout time.Duration) (float64, error) {
	stdout, stderr, err := execute(argv, timeout)
	cmdline := strings.Join(argv, " ")
	if err != nil {
		return 0, fmt.Errorf("`%s`: %v\n%s", cmdline, err, tail(stderr))
	}
	m := benchLine.FindSubmatch(stdout)
	if m == nil || string(m[1]) != name {
		return 0, fmt.Errorf("`%s`: no BENCH line for %s in its output\nstdout:\n%s\nstderr:\n%s", cmdline, name, tail(stdout), tail(stderr))
	}
	return strconv.ParseFloat(string(m[3]), 64)
}

// tail returns the last lines of a command's output, for error messages.
func tail(b []byte) string {
	const max = 20
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > max {
		lines = append([]string{fmt.Sprintf("... (%d lines cut)", len(lines)-max)}, lines[len(lines)-max:]...)
	}
	return "  " + strings.Join(lines, "\n  ")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ----- results -----

type modeResult struct {
	MedianNsPerOp float64   `json:"median_ns_per_op"`
	MinNsPerOp    float64   `json:"min_ns_per_op"`
	MaxNsPerOp    float64   `json:"max_ns_per_op"`
	Samples       []float64 `json:"samples_ns_per_op"`
}

type benchResult struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description"`
	Iterations  int                    `json:"iterations"`
	Modes       map[string]*modeResult `json:"modes"`

	SandboxRatio       *float64 `json:"sandbox_ratio"` // sandbox / native
	SandboxRatioTarget float64  `json:"sandbox_ratio_target"`
	SandboxRatioOK     *bool    `json:"sandbox_ratio_ok"`
	StraceRatio        *float64 `json:"strace_ratio"` // strace / native
	// Speedup is strace ns/op / sandbox ns/op.
	Speedup       *float64 `json:"sandbox_vs_strace_speedup"`
	SpeedupTarget *float64 `json:"sandbox_vs_strace_speedup_target"`
	SpeedupOK     *bool    `json:"sandbox_vs_strace_speedup_ok"`
	// OverheadRatio is (strace - native) / (sandbox - native): how many
	// times more time strace adds than the sandbox. Null when the sandbox
	// added nothing measurable.
	OverheadRatio *float64 `json:"strace_overhead_over_sandbox_overhead"`
}

type placementResult struct {
	Placement  string        `json:"placement"`
	CPUs       string        `json:"pinned_cpus,omitempty"`
	Benchmarks []benchResult `json:"benchmarks"`
	Missed     int           `json:"targets_missed"`
}

type hostInfo struct {
	Kernel string `json:"kernel"`
	CPU    string `json:"cpu"`
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
	CC     string `json:"cc"`
	Strace string `json:"strace,omitempty"`
}

type results struct {
	Date       string            `json:"date"`
	Commit     string            `json:"commit,omitempty"`
	Command    string            `json:"command"`
	Host       hostInfo          `json:"host"`
	Modes      []string          `json:"modes"`
	Rounds     int               `json:"rounds"`
	RoundsRun  int               `json:"rounds_run"`
	Statistic  string            `json:"statistic"`
	ElapsedSec float64           `json:"elapsed_seconds"`
	Placements []placementResult `json:"placements"`
	Missed     int               `json:"targets_missed"`
}

func buildResults(c config, modes []string, placements []placement, benches []bench, samples map[string]map[string]map[string][]float64, elapsed time.Duration, root string) *results {
	res := &results{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Commit:     gitCommit(root),
		Command:    reproCommand(c),
		Host:       host(c, has(modes, modeStrace)),
		Modes:      modes,
		Rounds:     c.Rounds,
		Statistic:  "median of the rounds' ns/op per mode; each program times its own loop with clock_gettime",
		ElapsedSec: elapsed.Round(time.Millisecond).Seconds(),
	}
	for _, p := range placements {
		pr := placementResult{Placement: p.Name, CPUs: p.CPUs}
		for _, b := range benches {
			br := benchResultOf(b, modes, samples[p.Name][b.Name], &pr.Missed)
			pr.Benchmarks = append(pr.Benchmarks, br)
		}
		res.Missed += pr.Missed
		res.Placements = append(res.Placements, pr)
	}
	return res
}

func benchResultOf(b bench, modes []string, samples map[string][]float64, missed *int) benchResult {
	br := benchResult{Name: b.Name, Description: b.Desc, Iterations: *b.Iters, Modes: map[string]*modeResult{}, SandboxRatioTarget: b.RatioTarget}
	for _, m := range modes {
		xs := samples[m]
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		br.Modes[m] = &modeResult{MedianNsPerOp: median(xs), MinNsPerOp: s[0], MaxNsPerOp: s[len(s)-1], Samples: xs}
	}
	native := br.Modes[modeNative].MedianNsPerOp
	sb, st := br.Modes[modeSandbox], br.Modes[modeStrace]
	if sb != nil {
		r := sb.MedianNsPerOp / native
		br.SandboxRatio = &r
		if b.RatioTarget > 0 { // 0: reported, with no target
			ok := r <= b.RatioTarget
			br.SandboxRatioOK = &ok
			if !ok {
				*missed++
			}
		}
	}
	if st != nil {
		r := st.MedianNsPerOp / native
		br.StraceRatio = &r
	}
	if sb != nil && st != nil {
		s := st.MedianNsPerOp / sb.MedianNsPerOp
		br.Speedup = &s
		if d := sb.MedianNsPerOp - native; d > 0 {
			o := (st.MedianNsPerOp - native) / d
			br.OverheadRatio = &o
		}
		if b.SpeedupTarget > 0 {
			t := b.SpeedupTarget
			ok := s >= t
			br.SpeedupTarget, br.SpeedupOK = &t, &ok
			if !ok {
				*missed++
			}
		}
	}
	return br
}

func reproCommand(c config) string {
	args := []string{"go", "run", "./bench/run"}
	if c.Sandbox != "" {
		args = append(args, "-sandbox", c.Sandbox)
	}
	if c.SandboxFlags != "" {
		args = append(args, "-sandbox-flags", shellQuote(c.SandboxFlags))
	}
	args = append(args,
		"-modes", strings.Join(mustModes(c.Modes), ","),
		"-placements", shellQuote(c.Placements),
		"-pin-cpu", shellQuote(c.PinCPU),
		"-rounds", strconv.Itoa(c.Rounds),
		"-tcp-iters", strconv.Itoa(c.TCPIters),
		"-udp-iters", strconv.Itoa(c.UDPIters),
		"-getpid-iters", strconv.Itoa(c.GetpidIters),
		"-cc", c.CC, "-cflags", shellQuote(c.CFlags))
	if c.Strace != "strace" {
		args = append(args, "-strace", c.Strace)
	}
	return strings.Join(args, " ")
}

func mustModes(s string) []string {
	m, _ := parseModes(s)
	return m
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]#~=%;&|<>(){}") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func gitCommit(root string) string {
	cmd := exec.Command("git", "rev-parse", "--short=12", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	st := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	st.Dir = root
	if o, err := st.Output(); err == nil && len(bytes.TrimSpace(o)) > 0 {
		commit += "-dirty"
	}
	return commit
}

func host(c config, withStrace bool) hostInfo {
	h := hostInfo{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	h.CC = firstLine(c.CC, "--version")
	if withStrace {
		h.Strace = firstLine(c.Strace, "-V")
	}
	return h
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// ----- tables -----

func printTables(w io.Writer, res *results) {
	fmt.Fprintf(w, "\nsandbox benchmark: median of %d interleaved rounds, ns/op (lower is better)\n", res.RoundsRun)
	if res.RoundsRun < res.Rounds {
		fmt.Fprintf(w, "WARNING: only %d of %d rounds ran within -budget\n", res.RoundsRun, res.Rounds)
	}
	fmt.Fprintf(w, "host: %s, %d CPUs, kernel %s\n", res.Host.CPU, res.Host.CPUs, res.Host.Kernel)
	for _, p := range res.Placements {
		if p.CPUs == "" {
			fmt.Fprint(w, "\n[unpinned] the scheduler places the program, the sandbox supervisor and strace\n")
		} else {
			fmt.Fprintf(w, "\n[pinned] everything under taskset -c %s: no cross-CPU wakeups, tracer and tracee share a CPU\n", p.CPUs)
		}
		printTable(w, p)
	}
	fmt.Fprintln(w, "\nratio = mode ns/op / native ns/op; speedup = strace ns/op / sandbox ns/op;")
	fmt.Fprintln(w, "overhead vs strace = (strace - native) / (sandbox - native), the time each adds (n/m: sandbox added nothing measurable).")
	fmt.Fprintln(w, "strace --seccomp-bpf stops only connect, so getpid has no speedup target.")
	if res.Missed > 0 {
		fmt.Fprintf(w, "targets missed: %d\n", res.Missed)
	}
	fmt.Fprintf(w, "\nreproduce: %s\n(`make bench` runs the defaults; `make bench BENCH_FLAGS='...'` passes flags)\n", res.Command)
}

func printTable(w io.Writer, p placementResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "benchmark\tnative ns/op\tsandbox ns/op\tsandbox ratio\ttarget\tstrace ns/op\tstrace ratio\tsandbox vs strace speedup\ttarget\toverhead vs strace\t")
	for _, b := range p.Benchmarks {
		cells := []string{b.Name, ns(b.Modes[modeNative])}
		cells = append(cells, ns(b.Modes[modeSandbox]), ratio(b.SandboxRatio), target("≤", b.SandboxRatioTarget, b.SandboxRatioOK))
		cells = append(cells, ns(b.Modes[modeStrace]), ratio(b.StraceRatio))
		st := "-"
		if b.SpeedupTarget != nil {
			st = target("≥", *b.SpeedupTarget, b.SpeedupOK)
		}
		ov := "-"
		if b.OverheadRatio != nil {
			ov = ratio(b.OverheadRatio)
		} else if b.Speedup != nil {
			ov = "n/m"
		}
		cells = append(cells, ratio(b.Speedup), st, ov)
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
}

func ns(m *modeResult) string {
	if m == nil {
		return "-"
	}
	return strconv.FormatFloat(m.MedianNsPerOp, 'f', 1, 64)
}

func ratio(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx", *r)
}

func target(op string, t float64, ok *bool) string {
	if t == 0 {
		return "–"
	}
	s := fmt.Sprintf("%s%.2fx", op, t)
	switch {
	case ok == nil:
		return s + " (n/a)"
	case *ok:
		return s + " ok"
	default:
		return s + " MISS"
	}
}
