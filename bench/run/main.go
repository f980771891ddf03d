// Command run is the sandbox benchmark. In one run, interleaved, it measures
// every benchmark program natively, under the floor (bench/floor: a minimal
// C supervisor doing the same secure proxy), under `sandbox run` in each
// policy configuration, and under strace, and reports each row as ratios
// against native and as the sandbox's overhead over the floor's:
//
//	overhead ratio = (sandbox - native) / (floor - native)
//
// Usage (from the repository root; `make bench` does this):
//
//	go run ./bench/run [-sandbox bin/sandbox] [-modes native,floor,floor-exact,sandbox,strace]
//	                   [-configs allow-all,rule,self] [-rows ROW,...] [-json bench/results.json]
//
// The C programs in bench/c and the floor are compiled with gcc at bench
// time. Each program takes its iteration count as argv[1], times its own
// loop with clock_gettime (setup and process start excluded) and prints
// ns/op. Rounds interleave the columns (in an order rotated every round);
// the reported figure is the median per column.
//
// Sandbox configurations: allow-all (--allow-all), rule (an explicit rule
// for the row's destination: the default configuration of the targets, at
// the default info log level) and self (no policy flags: the default "self"
// policy, on rows whose destination is the tree's own).
//
// floor-exact is the floor with FLOOR_EXACT=1, on every trapped row: the
// floor plus the system calls that exactness and security force on any
// supervisor (SO_DOMAIN and SO_TYPE; for a blocking TCP connect the brief
// O_NONBLOCK and the settle that leaves a peer's reset to the program; for
// a denied one the TCP_INFO of Linux's errno order; for a Unix path the
// lookup in the caller's view, connected to through /proc/self/fd/N). It
// rates nothing: its line under each table gives each configuration's
// overhead over it too, which shows how much of a row's overhead is the
// price of exactness, and how much is the sandbox's own.
//
// Every row is measured in two CPU placements, each with its own table:
// unpinned (as a user runs it) and pinned to one CPU with taskset (no
// cross-CPU wakeups, but tracer and tracee share the CPU). Two more rows:
// startup (`sandbox run -- /bin/true` wall time per run) and load (64
// threads x 10,000 connects, throughput). Results go to bench/results.json.
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
	"math"
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
	modeNative     = "native"
	modeFloor      = "floor"
	modeFloorExact = "floor-exact" // FLOOR_EXACT=1, on trapped loop rows
	modeSandbox    = "sandbox"
	modeStrace     = "strace"

	cfgAllowAll = "allow-all"
	cfgRule     = "rule"
	cfgSelf     = "self"
	// cfgRuleWarn is rule at --log-level warn: not a default configuration;
	// it measures what the info log costs (-configs ...,rule-warn).
	cfgRuleWarn = "rule-warn"

	// targetOverhead bounds the rule configuration's overhead over the
	// floor's; targetStartupNs the startup cost over native; targetLoad the
	// load throughput as a fraction of the floor's.
	targetOverhead  = 1.2
	targetStartupNs = 5e6
	targetLoad      = 0.9
)

var (
	allModes     = []string{modeNative, modeFloor, modeFloorExact, modeSandbox, modeStrace}
	allConfigs   = []string{cfgAllowAll, cfgRule, cfgSelf}
	knownConfigs = append(allConfigs, cfgRuleWarn)
)

// Row kinds: a program timing its own loop, wall time of /bin/true, or the
// multi-threaded load program.
const (
	kindLoop    = "loop"
	kindStartup = "startup"
	kindLoad    = "load"
)

// bench is one row: a program and the policies it runs under.
type bench struct {
	Name   string
	Kind   string
	Source string   // file in bench/c
	Args   []string // after the iteration count
	Desc   string
	Iters  int
	// Trapped: the floor does work on this row, so the overhead ratio
	// against the floor means something.
	Trapped bool
	// Policies are the `sandbox run` flags per configuration; a
	// configuration without an entry does not apply to this row.
	Policies map[string][]string
	FloorEnv []string // extra environment for the floor (FLOOR_DENY)
	// VsFloorTime: the overhead ratio is sandbox / floor, time over time.
	// For the denied row, whose native baseline (a refusal, with a
	// loopback SYN and RST) costs more than the floor's whole denial.
	VsFloorTime bool
	// WithNative: the load row runs natively too (-load-native).
	WithNative bool
}

// column is one way of running a row: a mode, and for the sandbox, a
// configuration.
type column struct{ Mode, Config string }

func (c column) key() string {
	if c.Config == "" {
		return c.Mode
	}
	return c.Mode + ":" + c.Config
}

type config struct {
	Sandbox      string
	SandboxFlags string
	Strace       string
	CC           string
	CFlags       string
	Modes        string
	Configs      string
	Rows         string
	Placements   string
	PinCPU       string
	Rounds       int
	TCPIters     int
	UDPIters     int
	GetpidIters  int
	StartupRuns  int
	LoadIters    int
	LoadThreads  int
	LoadRounds   int
	LoadPlace    string
	LoadNative   bool
	Timeout      time.Duration
	Budget       time.Duration
	JSON         string
	FailOnTarget bool
}

func main() {
	var c config
	flag.StringVar(&c.Sandbox, "sandbox", "", "sandbox binary; empty builds ./cmd/sandbox into a temporary directory")
	flag.StringVar(&c.SandboxFlags, "sandbox-flags", "", "extra flags for `sandbox run` (space-separated, placed after the row's policy, before --)")
	flag.StringVar(&c.Strace, "strace", "strace", "strace binary")
	flag.StringVar(&c.CC, "cc", "gcc", "C compiler")
	flag.StringVar(&c.CFlags, "cflags", "-O2", "C compiler flags (space-separated)")
	flag.StringVar(&c.Modes, "modes", strings.Join(allModes, ","), "comma-separated modes: native,floor,floor-exact,sandbox,strace (native is always run;\nfloor-exact, the floor with FLOOR_EXACT=1, runs on the trapped rows)")
	flag.StringVar(&c.Configs, "configs", strings.Join(allConfigs, ","), "comma-separated sandbox configurations: allow-all (--allow-all), rule (an explicit rule for the row's\ndestination: the default configuration of the targets), self (no policy flags: the self default);\nalso rule-warn (rule at --log-level warn: what the info log costs), not run by default")
	flag.StringVar(&c.Rows, "rows", "", "comma-separated rows to run (empty: every row), e.g. udp_sendto,unix_connect,startup")
	flag.StringVar(&c.Placements, "placements", "unpinned,pinned", "comma-separated CPU placements, each with its own table:\nunpinned (the scheduler places every thread) and pinned (everything under `taskset -c PIN-CPU`:\nno cross-CPU wakeups, far less noise on small VMs, but supervisor and program share one CPU)")
	flag.StringVar(&c.PinCPU, "pin-cpu", "0", "CPU list for the pinned placement (taskset -c syntax)")
	flag.IntVar(&c.Rounds, "rounds", 9, "interleaved rounds; the median per column is reported")
	flag.IntVar(&c.TCPIters, "tcp-iters", 1500, "iterations per run of each TCP and Unix connect row")
	flag.IntVar(&c.UDPIters, "udp-iters", 4000, "iterations per run of each UDP row")
	flag.IntVar(&c.GetpidIters, "getpid-iters", 500000, "iterations of getpid per run")
	flag.IntVar(&c.StartupRuns, "startup-runs", 10, "runs of /bin/true per column per round for the startup row (0: skip the row)")
	flag.IntVar(&c.LoadIters, "load-iters", 10000, "connects per thread in the load row (0: skip the row)")
	flag.IntVar(&c.LoadThreads, "load-threads", 64, "threads in the load row")
	flag.IntVar(&c.LoadRounds, "load-rounds", 1, "rounds of the load row (the first N rounds run it)")
	flag.StringVar(&c.LoadPlace, "load-placements", "unpinned", "placements the load row runs in")
	flag.BoolVar(&c.LoadNative, "load-native", false, "run the load row natively too (informational: 64 native threads contend on the\nlistener's lock, and took 3x longer per connect than under either supervisor on a 2-CPU VM)")
	flag.DurationVar(&c.Timeout, "timeout", 180*time.Second, "limit for one run of one program")
	flag.DurationVar(&c.Budget, "budget", 330*time.Second, "stop starting new rounds when the next would end past this (at least one round runs); 0: no limit")
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

// rows lists the benchmarks. unixPath is the Unix row's socket, in a
// temporary directory, so that its rule can name it exactly.
func rows(c config, unixPath string) []bench {
	tcp := []string{"--allow", "tcp:127.0.0.1"}
	udp := []string{"--allow", "udp:127.0.0.1"}
	all := []string{"--allow-all"}
	self := []string{}
	pol := func(rule []string, withSelf bool) map[string][]string {
		m := map[string][]string{cfgAllowAll: all, cfgRule: rule}
		if withSelf {
			m[cfgSelf] = self
		}
		return m
	}
	bs := []bench{
		{Name: "tcp_connect_inline", Source: "tcp_connect.c", Args: []string{"inline"}, Iters: c.TCPIters, Trapped: true, Policies: pol(tcp, true),
			Desc: "loopback TCP: socket, connect, accept in the same thread, close both"},
		{Name: "tcp_connect", Source: "tcp_connect.c", Iters: c.TCPIters, Trapped: true, Policies: pol(tcp, true),
			Desc: "loopback TCP: socket, connect, accept in a listener thread, wait for its close"},
		{Name: "tcp_connect_proc", Source: "tcp_connect.c", Args: []string{"proc"}, Iters: c.TCPIters, Trapped: true, Policies: pol(tcp, true),
			Desc: "loopback TCP: socket, connect, accept in another process (a forked server), wait for its close"},
		{Name: "udp_connect", Source: "udp_connect.c", Iters: c.UDPIters, Trapped: true, Policies: pol(udp, true),
			Desc: "loopback UDP: socket, connect to a bound receiver, close"},
		{Name: "udp_sendto", Source: "udp_connect.c", Args: []string{"sendto"}, Iters: c.UDPIters, Trapped: true, Policies: pol(udp, true),
			Desc: "sendto() with an address, one byte, unconnected UDP socket: decided, then performed"},
		{Name: "udp_sendmsg", Source: "udp_connect.c", Args: []string{"sendmsg"}, Iters: c.UDPIters, Trapped: true, Policies: pol(udp, false),
			Desc: "sendmsg() without an address on a connected UDP socket: trapped anyway (msg_name is behind a pointer), performed"},
		{Name: "udp_sendmsg_addr", Source: "udp_connect.c", Args: []string{"sendmsg_addr"}, Iters: c.UDPIters, Trapped: true, Policies: pol(udp, true),
			Desc: "sendmsg() with an address on an unconnected UDP socket: decided, then performed"},
		{Name: "udp_sendmmsg", Source: "udp_connect.c", Args: []string{"sendmmsg"}, Iters: c.UDPIters, Trapped: true, Policies: pol(udp, false),
			Desc: "sendmmsg() of two datagrams on a connected UDP socket (as glibc's resolver): one op is one call"},
		// Natively the port is closed (ECONNREFUSED); the sandbox and the
		// floor deny it (EACCES). --allow-all would not deny: n/a.
		{Name: "tcp_denied", Source: "tcp_connect.c", Args: []string{"refused"}, Iters: c.TCPIters, Trapped: true,
			Policies: map[string][]string{cfgRule: {"--deny", "tcp:127.0.0.1"}, cfgSelf: self},
			FloorEnv: []string{"FLOOR_DENY=127.0.0.1:0"}, VsFloorTime: true,
			Desc: "a denied connect (EACCES; rule: --deny, self: the default's denial) against a refused one natively (ECONNREFUSED); overhead = sandbox / floor"},
		{Name: "unix_connect", Source: "unix_connect.c", Args: []string{unixPath}, Iters: c.TCPIters, Trapped: true, Policies: pol([]string{"--allow", "unix:" + unixPath}, true),
			Desc: "Unix stream: socket, connect to a path, accept in the same thread, close both"},
		{Name: "udp_send", Source: "udp_connect.c", Args: []string{"send"}, Iters: c.UDPIters, Policies: map[string][]string{cfgRule: udp},
			Desc: "send() on a connected UDP socket: no address, never trapped"},
		{Name: "getpid", Source: "getpid.c", Iters: c.GetpidIters, Policies: map[string][]string{cfgSelf: self},
			Desc: "syscall(SYS_getpid): untrapped, pays only for the filter"},
	}
	for i := range bs {
		bs[i].Kind = kindLoop
		if r, ok := bs[i].Policies[cfgRule]; ok {
			bs[i].Policies[cfgRuleWarn] = append([]string{"--log-level", "warn"}, r...)
		}
	}
	if c.StartupRuns > 0 {
		bs = append(bs, bench{Name: "startup", Kind: kindStartup, Iters: c.StartupRuns, Policies: map[string][]string{cfgSelf: self},
			Desc: "wall time of `sandbox run -- /bin/true` (no flags) against /bin/true, per run"})
	}
	if c.LoadIters > 0 {
		bs = append(bs, bench{Name: "load", Kind: kindLoad, Source: "load.c", Args: []string{strconv.Itoa(c.LoadThreads)}, Iters: c.LoadIters,
			Trapped: true, Policies: map[string][]string{cfgRule: tcp}, WithNative: c.LoadNative,
			Desc: fmt.Sprintf("%d threads x %d loopback TCP connects (socket, connect, reset), one acceptor thread: wall time per connect", c.LoadThreads, c.LoadIters)})
	}
	return bs
}

// selectRows keeps the rows named in list (all of them when list is empty).
func selectRows(bs []bench, list string) ([]bench, error) {
	if strings.TrimSpace(list) == "" {
		return bs, nil
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	want, err := parseList(list, names, "row")
	if err != nil {
		return nil, err
	}
	var out []bench
	for _, b := range bs {
		if has(want, b.Name) {
			out = append(out, b)
		}
	}
	return out, nil
}

// columns returns the columns of row b among the modes and configurations
// asked for, in a fixed order.
func columns(b bench, modes, configs []string) []column {
	var out []column
	for _, m := range modes {
		switch {
		case b.Kind == kindLoad && m == modeNative && !b.WithNative:
			// The load target is against the floor.
		case m == modeSandbox:
			for _, cf := range configs {
				if _, ok := b.Policies[cf]; ok {
					out = append(out, column{m, cf})
				}
			}
		case m == modeFloorExact && !(b.Trapped && b.Kind == kindLoop):
			// Elsewhere it is the floor itself.
		case b.Kind == kindLoad && m == modeStrace:
			// strace serialises 64 threads through ptrace: minutes, and no
			// target is held against it.
		default:
			out = append(out, column{Mode: m})
		}
	}
	return out
}

func run(c config) error {
	modes, err := parseList(c.Modes, allModes, "mode")
	if err != nil {
		return err
	}
	if !has(modes, modeNative) {
		modes = append([]string{modeNative}, modes...)
	}
	configs, err := parseList(c.Configs, knownConfigs, "configuration")
	if err != nil {
		return err
	}
	if c.Rounds < 1 || c.TCPIters < 1 || c.UDPIters < 1 || c.GetpidIters < 1 || c.StartupRuns < 0 || c.LoadIters < 0 || c.LoadThreads < 1 || c.LoadRounds < 1 {
		return errors.New("-rounds, -load-rounds, -load-threads and the -*-iters flags must be positive (-startup-runs and -load-iters may be 0)")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "sandbox-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	benches, err := selectRows(rows(c, filepath.Join(tmp, "unix.sock")), c.Rows)
	if err != nil {
		return err
	}

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
	loadPlaces := map[string]bool{}
	for _, n := range strings.Split(c.LoadPlace, ",") {
		loadPlaces[strings.TrimSpace(n)] = true
	}
	if has(modes, modeStrace) {
		if _, err := exec.LookPath(c.Strace); err != nil {
			return fmt.Errorf("strace mode: %q not found (make deps installs strace, or leave strace out of -modes): %v", c.Strace, err)
		}
	}

	progs := map[string]string{} // source -> binary
	compile := func(src, out string, extra ...string) error {
		args := append(strings.Fields(c.CFlags), "-pthread", "-o", out, src)
		args = append(args, extra...)
		logf("compile: %s %s", c.CC, strings.Join(args, " "))
		if o, err := exec.Command(c.CC, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("compiling %s: %v\n%s", src, err, o)
		}
		return nil
	}
	for _, b := range benches {
		if b.Source == "" || progs[b.Source] != "" {
			continue
		}
		out := filepath.Join(tmp, strings.TrimSuffix(b.Source, ".c"))
		if err := compile(filepath.Join(root, "bench", "c", b.Source), out); err != nil {
			return err
		}
		progs[b.Source] = out
	}
	floorBin := filepath.Join(tmp, "floor")
	if has(modes, modeFloor) || has(modes, modeFloorExact) {
		if err := compile(filepath.Join(root, "bench", "floor", "floor.c"), floorBin, "-lseccomp"); err != nil {
			return fmt.Errorf("floor mode: %v (libseccomp-dev is needed: make deps)", err)
		}
	}

	sandboxBin := c.Sandbox
	if has(modes, modeSandbox) {
		if sandboxBin == "" {
			sandboxBin = filepath.Join(tmp, "sandbox")
			logf("build: go build -o %s ./cmd/sandbox", sandboxBin)
			cmd := exec.Command("go", "build", "-o", sandboxBin, "./cmd/sandbox")
			cmd.Dir = root
			if o, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("sandbox mode: building ./cmd/sandbox failed (pass -sandbox PATH, or leave sandbox out of -modes): %v\n%s", err, o)
			}
		} else if abs, err := filepath.Abs(sandboxBin); err == nil {
			sandboxBin = abs
		}
	}
	// wrap returns the command prefix and extra environment of column col
	// for row b.
	wrap := func(b bench, col column) ([]string, []string) {
		switch col.Mode {
		case modeFloor:
			return []string{floorBin}, b.FloorEnv
		case modeFloorExact:
			return []string{floorBin}, append(append([]string{}, b.FloorEnv...), "FLOOR_EXACT=1")
		case modeSandbox:
			argv := append([]string{sandboxBin, "run"}, b.Policies[col.Config]...)
			return append(append(argv, strings.Fields(c.SandboxFlags)...), "--"), nil
		case modeStrace:
			return []string{c.Strace, "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-o", "/dev/null"}, nil
		}
		return nil, nil
	}

	// Preflight: each wrapper must run /bin/true cleanly.
	pre := bench{Policies: map[string][]string{cfgAllowAll: {"--allow-all"}}}
	for _, m := range modes {
		if m == modeNative {
			continue
		}
		col := column{Mode: m}
		if m == modeSandbox {
			col.Config = cfgAllowAll
		}
		w, env := wrap(pre, col)
		argv := append(w, "/bin/true")
		if _, stderr, err := execute(argv, env, 20*time.Second); err != nil {
			return fmt.Errorf("%s mode failed its preflight: `%s`: %v (leave it out of -modes to bench without it)\n%s", m, strings.Join(argv, " "), err, tail(stderr))
		}
	}

	// samples[placement][row][column key] holds one ns/op per round.
	samples := map[string]map[string]map[string][]float64{}
	for _, p := range placements {
		samples[p.Name] = map[string]map[string][]float64{}
		for _, b := range benches {
			samples[p.Name][b.Name] = map[string][]float64{}
		}
	}
	start := time.Now()
	rounds := 0
	var loadTime time.Duration // the load row runs in the first rounds only
	for r := 0; r < c.Rounds; r++ {
		if el := time.Since(start); r > 0 && c.Budget > 0 && el+(el-loadTime)/time.Duration(r) > c.Budget {
			logf("budget: stopping after %d of %d rounds (%v elapsed, -budget %v)", r, c.Rounds, el.Round(time.Second), c.Budget)
			break
		}
		rounds++
		for _, p := range placements {
			for _, b := range benches {
				if b.Kind == kindLoad && (r >= c.LoadRounds || !loadPlaces[p.Name]) {
					continue
				}
				t0 := time.Now()
				cols := columns(b, modes, configs)
				line := []string{}
				for _, col := range rotateCols(cols, r) {
					w, env := wrap(b, col)
					ns, err := measureRow(b, append(p.prefix(), w...), env, progs[b.Source], c.Timeout)
					if err != nil {
						return fmt.Errorf("%s failed on %s (%s): %v", col.key(), b.Name, p.Name, err)
					}
					samples[p.Name][b.Name][col.key()] = append(samples[p.Name][b.Name][col.key()], ns)
					line = append(line, fmt.Sprintf("%s %.1f", col.key(), ns))
				}
				logf("round %d/%d %-8s %-18s ns/op: %s", r+1, c.Rounds, p.Name, b.Name, strings.Join(line, ", "))
				if b.Kind == kindLoad {
					loadTime += time.Since(t0)
				}
			}
		}
	}
	elapsed := time.Since(start)

	res := buildResults(c, modes, configs, placements, benches, samples, elapsed, root)
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

// measureRow runs row b once under prefix and returns its ns/op (for the
// startup row: wall ns per run of /bin/true, over b.Iters runs).
func measureRow(b bench, prefix, env []string, prog string, timeout time.Duration) (float64, error) {
	if b.Kind == kindStartup {
		argv := append(append([]string{}, prefix...), "/bin/true")
		t0 := time.Now()
		for i := 0; i < b.Iters; i++ {
			if _, stderr, err := execute(argv, env, timeout); err != nil {
				return 0, fmt.Errorf("`%s`: %v\n%s", strings.Join(argv, " "), err, tail(stderr))
			}
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(b.Iters), nil
	}
	argv := append(append(append([]string{}, prefix...), prog, strconv.Itoa(b.Iters)), b.Args...)
	return measure(argv, env, b.Name, timeout)
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

// parseList parses a comma-separated subset of known, deduplicated, in the
// order given.
func parseList(s string, known []string, what string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if m == "" || has(out, m) {
			continue
		}
		if !has(known, m) {
			return nil, fmt.Errorf("unknown %s %q (want %s)", what, m, strings.Join(known, ", "))
		}
		out = append(out, m)
	}
	return out, nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func rotateCols(s []column, n int) []column {
	out := make([]column, 0, len(s))
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

func execute(argv, env []string, timeout time.Duration) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var o bytes.Buffer
	e := tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Stdin = nil
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %v", timeout)
	}
	return o.Bytes(), e.b, err
}

// tailBuffer keeps the last max bytes written: the sandbox logs a line per
// call (640,000 in the load row), and only the end is shown on failure.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

var benchLine = regexp.MustCompile(`(?m)^BENCH name=(\S+) iters=(\d+) ns_per_op=([0-9.]+)$`)

func measure(argv, env []string, name string, timeout time.Duration) (float64, error) {
	stdout, stderr, err := execute(argv, env, timeout)
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

// overheadRatio is (mode - native) / (floor - native): how many times the
// floor's added time a mode adds. ok is false when the floor adds too little
// to divide by (an untrapped row).
func overheadRatio(mode, native, floor float64) (float64, bool) {
	d := floor - native
	if d <= 50 || d <= 0.05*native {
		return 0, false
	}
	return (mode - native) / d, true
}

// ----- results -----

type modeResult struct {
	MedianNsPerOp float64   `json:"median_ns_per_op"`
	MinNsPerOp    float64   `json:"min_ns_per_op"`
	MaxNsPerOp    float64   `json:"max_ns_per_op"`
	Samples       []float64 `json:"samples_ns_per_op"`
}

type benchResult struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
	Iterations  int    `json:"iterations"`
	// Columns: native, floor, sandbox:CONFIG, strace.
	Columns map[string]*modeResult `json:"columns"`
	// VsNative is each column's median over native's.
	VsNative map[string]float64 `json:"ratio_vs_native"`
	// VsFloor is each sandbox configuration's overhead ratio,
	// (sandbox - native) / (floor - native).
	VsFloor map[string]float64 `json:"overhead_vs_floor"`
	// VsFloorExact is the same against the floor-exact column,
	// (sandbox - native) / (floor_exact - native), or sandbox / floor_exact
	// on a VsFloorTime row: informational, not rated.
	VsFloorExact map[string]float64 `json:"overhead_vs_floor_exact,omitempty"`
	// Target is what the row is held to (empty: nothing), and OK whether
	// it held.
	Target string `json:"target,omitempty"`
	OK     *bool  `json:"target_ok,omitempty"`
	// Load row: connects per second per column.
	Throughput map[string]float64 `json:"throughput_per_s,omitempty"`
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

// headline is the least flattering row: the worst overhead ratio of the
// default (rule) configuration, with the floor beside it.
type headline struct {
	Row        string  `json:"row"`
	Placement  string  `json:"placement"`
	NativeNs   float64 `json:"native_ns_per_op"`
	FloorNs    float64 `json:"floor_ns_per_op"`
	SandboxNs  float64 `json:"sandbox_ns_per_op"`
	Overhead   float64 `json:"overhead_vs_floor"`
	Target     float64 `json:"target"`
	SandboxX   float64 `json:"sandbox_vs_native"`
	FloorX     float64 `json:"floor_vs_native"`
	RowsPassed int     `json:"rows_within_target"`
	RowsRated  int     `json:"rows_rated"`
}

type results struct {
	Date       string            `json:"date"`
	Commit     string            `json:"commit,omitempty"`
	Command    string            `json:"command"`
	Host       hostInfo          `json:"host"`
	Modes      []string          `json:"modes"`
	Configs    []string          `json:"configs"`
	Rounds     int               `json:"rounds"`
	RoundsRun  int               `json:"rounds_run"`
	Statistic  string            `json:"statistic"`
	ElapsedSec float64           `json:"elapsed_seconds"`
	Headline   *headline         `json:"headline,omitempty"`
	Placements []placementResult `json:"placements"`
	Missed     int               `json:"targets_missed"`
}

func buildResults(c config, modes, configs []string, placements []placement, benches []bench, samples map[string]map[string]map[string][]float64, elapsed time.Duration, root string) *results {
	res := &results{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Commit:     gitCommit(root),
		Command:    reproCommand(c),
		Host:       host(c, has(modes, modeStrace)),
		Modes:      modes,
		Configs:    configs,
		Rounds:     c.Rounds,
		Statistic:  "median of the rounds' ns/op per column; each program times its own loop with clock_gettime (startup: wall time per run)",
		ElapsedSec: elapsed.Round(time.Millisecond).Seconds(),
	}
	for _, p := range placements {
		pr := placementResult{Placement: p.Name, CPUs: p.CPUs}
		for _, b := range benches {
			if len(samples[p.Name][b.Name]) == 0 {
				continue
			}
			br := benchResultOf(b, samples[p.Name][b.Name])
			if br.OK != nil && !*br.OK {
				pr.Missed++
			}
			pr.Benchmarks = append(pr.Benchmarks, br)
		}
		res.Missed += pr.Missed
		res.Placements = append(res.Placements, pr)
	}
	res.Headline = worstRow(res.Placements)
	return res
}

func benchResultOf(b bench, samples map[string][]float64) benchResult {
	br := benchResult{Name: b.Name, Kind: b.Kind, Description: b.Desc, Iterations: b.Iters,
		Columns: map[string]*modeResult{}, VsNative: map[string]float64{}, VsFloor: map[string]float64{}}
	for k, xs := range samples {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		br.Columns[k] = &modeResult{MedianNsPerOp: median(xs), MinNsPerOp: s[0], MaxNsPerOp: s[len(s)-1], Samples: xs}
	}
	nat := br.Columns[modeNative]
	fl := br.Columns[modeFloor]
	fx := br.Columns[modeFloorExact]
	if nat == nil {
		nat = &modeResult{MedianNsPerOp: math.NaN()} // the load row without -load-native
	}
	for k, m := range br.Columns {
		if k != modeNative && !math.IsNaN(nat.MedianNsPerOp) {
			br.VsNative[k] = m.MedianNsPerOp / nat.MedianNsPerOp
		}
		if fl != nil && b.Trapped && b.Kind == kindLoop && strings.HasPrefix(k, modeSandbox+":") {
			if b.VsFloorTime {
				br.VsFloor[k] = m.MedianNsPerOp / fl.MedianNsPerOp
			} else if r, ok := overheadRatio(m.MedianNsPerOp, nat.MedianNsPerOp, fl.MedianNsPerOp); ok {
				br.VsFloor[k] = r
			}
		}
		if fx != nil && b.Trapped && b.Kind == kindLoop && strings.HasPrefix(k, modeSandbox+":") {
			r, ok := m.MedianNsPerOp/fx.MedianNsPerOp, true
			if !b.VsFloorTime {
				r, ok = overheadRatio(m.MedianNsPerOp, nat.MedianNsPerOp, fx.MedianNsPerOp)
			}
			if ok {
				if br.VsFloorExact == nil {
					br.VsFloorExact = map[string]float64{}
				}
				br.VsFloorExact[k] = r
			}
		}
	}
	rule := br.Columns[column{modeSandbox, cfgRule}.key()]
	setOK := func(ok bool) { br.OK = &ok }
	switch b.Kind {
	case kindLoop:
		if b.Trapped {
			br.Target = fmt.Sprintf("rule overhead ≤ %.2fx the floor's", targetOverhead)
			if r, ok := br.VsFloor[column{modeSandbox, cfgRule}.key()]; ok {
				setOK(r <= targetOverhead)
			}
		}
	case kindStartup:
		br.Target = fmt.Sprintf("sandbox ≤ native + %.0f ms", targetStartupNs/1e6)
		if sb := br.Columns[column{modeSandbox, cfgSelf}.key()]; sb != nil {
			setOK(sb.MedianNsPerOp-nat.MedianNsPerOp <= targetStartupNs)
		}
	case kindLoad:
		br.Throughput = map[string]float64{}
		for k, m := range br.Columns {
			br.Throughput[k] = 1e9 / m.MedianNsPerOp
		}
		br.Target = fmt.Sprintf("sandbox throughput ≥ %.2fx the floor's", targetLoad)
		if rule != nil && fl != nil {
			setOK(fl.MedianNsPerOp/rule.MedianNsPerOp >= targetLoad)
		}
	}
	return br
}

// worstRow finds the loop row with the highest rule overhead ratio.
func worstRow(ps []placementResult) *headline {
	var h *headline
	passed, rated := 0, 0
	key := column{modeSandbox, cfgRule}.key()
	for _, p := range ps {
		for _, b := range p.Benchmarks {
			r, ok := b.VsFloor[key]
			if b.Kind != kindLoop || !ok {
				continue
			}
			rated++
			if r <= targetOverhead {
				passed++
			}
			if h == nil || r > h.Overhead {
				nat, fl, sb := b.Columns[modeNative].MedianNsPerOp, b.Columns[modeFloor].MedianNsPerOp, b.Columns[key].MedianNsPerOp
				h = &headline{Row: b.Name, Placement: p.Placement, NativeNs: nat, FloorNs: fl, SandboxNs: sb, Overhead: r,
					Target: targetOverhead, SandboxX: sb / nat, FloorX: fl / nat}
			}
		}
	}
	if h != nil {
		h.RowsPassed, h.RowsRated = passed, rated
	}
	return h
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
		"-modes", shellQuote(c.Modes),
		"-configs", shellQuote(c.Configs),
		"-rows", shellQuote(c.Rows),
		"-placements", shellQuote(c.Placements),
		"-pin-cpu", shellQuote(c.PinCPU),
		"-rounds", strconv.Itoa(c.Rounds),
		"-tcp-iters", strconv.Itoa(c.TCPIters),
		"-udp-iters", strconv.Itoa(c.UDPIters),
		"-getpid-iters", strconv.Itoa(c.GetpidIters),
		"-startup-runs", strconv.Itoa(c.StartupRuns),
		"-load-iters", strconv.Itoa(c.LoadIters),
		"-load-threads", strconv.Itoa(c.LoadThreads),
		"-load-rounds", strconv.Itoa(c.LoadRounds),
		"-load-placements", shellQuote(c.LoadPlace),
		"-load-native="+strconv.FormatBool(c.LoadNative),
		"-budget", c.Budget.String(),
		"-cc", c.CC, "-cflags", shellQuote(c.CFlags))
	if c.Strace != "strace" {
		args = append(args, "-strace", c.Strace)
	}
	return strings.Join(args, " ")
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
	fmt.Fprintf(w, "\nsandbox benchmark: median of %d interleaved rounds, ns/op (lower is better); (N.NNx) = against native\n", res.RoundsRun)
	if res.RoundsRun < res.Rounds {
		fmt.Fprintf(w, "WARNING: only %d of %d rounds ran within -budget\n", res.RoundsRun, res.Rounds)
	}
	fmt.Fprintf(w, "host: %s, %d CPUs, kernel %s\n", res.Host.CPU, res.Host.CPUs, res.Host.Kernel)
	for _, p := range res.Placements {
		if p.CPUs == "" {
			fmt.Fprint(w, "\n[unpinned] the scheduler places the program, the supervisor (floor, sandbox) and strace\n")
		} else {
			fmt.Fprintf(w, "\n[pinned] everything under taskset -c %s: no cross-CPU wakeups, supervisor and program share a CPU\n", p.CPUs)
		}
		printTable(w, p, res.Configs)
		printExtraRows(w, p, res.Configs)
	}
	fmt.Fprintln(w, "\nfloor: bench/floor, a minimal C supervisor doing the same secure proxy (RECV, pidfd_getfd with cached")
	fmt.Fprintln(w, "pidfds, process_vm_readv, ID_VALID, the call on the duplicate, close, SEND; never CONTINUE).")
	fmt.Fprintln(w, "overhead = (sandbox - native) / (floor - native), per configuration: 1.00x is the floor itself;")
	fmt.Fprintln(w, "tcp_denied: sandbox / floor (natively a refusal, which costs more than the floor's denial).")
	fmt.Fprintln(w, "n/m: the floor adds nothing measurable (untrapped rows). Configurations: allow-all (--allow-all),")
	fmt.Fprintln(w, "rule (an explicit rule for the row's destination, info logs: the targets' default), self (no flags).")
	fmt.Fprintln(w, "strace -e trace=connect stops only connect. floor-exact (not rated): the floor with FLOOR_EXACT=1, plus")
	fmt.Fprintln(w, "what exactness and security force on any supervisor: SO_DOMAIN and SO_TYPE; a blocking TCP connect's")
	fmt.Fprintln(w, "brief O_NONBLOCK (F_GETFL, FIONBIO to set and to clear) and settle (TCP_INFO, a second connect), which leave a reset")
	fmt.Fprintln(w, "to the program; a denied TCP connect's TCP_INFO (EISCONN/EALREADY first); a Unix path opened in the")
	fmt.Fprintln(w, "caller's view and connected to as the object opened.")
	if h := res.Headline; h != nil {
		fmt.Fprintf(w, "\n%s\n", headlineText(h))
	}
	if res.Missed > 0 {
		fmt.Fprintf(w, "targets missed: %d\n", res.Missed)
	}
	fmt.Fprintf(w, "\nreproduce: %s\n(`make bench` runs the defaults; `make bench BENCH_FLAGS='...'` passes flags)\n", res.Command)
}

func headlineText(h *headline) string {
	verdict := "MISS"
	if h.Overhead <= h.Target {
		verdict = "ok"
	}
	return fmt.Sprintf("headline (least flattering row, rule configuration): %s [%s]: sandbox %.1f µs = %.2fx native, "+
		"floor %.1f µs = %.2fx native, native %.1f µs: overhead %.2fx the floor's (target ≤%.2fx %s; %d of %d rows within)",
		h.Row, h.Placement, h.SandboxNs/1e3, h.SandboxX, h.FloorNs/1e3, h.FloorX, h.NativeNs/1e3, h.Overhead, h.Target, verdict, h.RowsPassed, h.RowsRated)
}

func printTable(w io.Writer, p placementResult, configs []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"benchmark", "native", "floor"}
	for _, cf := range configs {
		head = append(head, "sandbox "+cf)
	}
	head = append(head, "strace")
	for _, cf := range configs {
		head = append(head, "overhead "+cf)
	}
	head = append(head, "target")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, b := range p.Benchmarks {
		if b.Kind != kindLoop {
			continue
		}
		cells := []string{b.Name, nsCell(b, modeNative), nsCell(b, modeFloor)}
		for _, cf := range configs {
			cells = append(cells, nsCell(b, column{modeSandbox, cf}.key()))
		}
		cells = append(cells, nsCell(b, modeStrace))
		for _, cf := range configs {
			k := column{modeSandbox, cf}.key()
			switch r, ok := b.VsFloor[k]; {
			case ok:
				cells = append(cells, fmt.Sprintf("%.2fx", r))
			case b.Columns[k] != nil && b.Columns[modeFloor] != nil:
				cells = append(cells, "n/m")
			default:
				cells = append(cells, "-")
			}
		}
		cells = append(cells, okCell(b, fmt.Sprintf("≤%.2fx", targetOverhead)))
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
}

// printExtraRows prints the floor-exact line of the rows that have one,
// and the startup and load rows, of a placement.
func printExtraRows(w io.Writer, p placementResult, configs []string) {
	for _, b := range p.Benchmarks {
		nat := b.Columns[modeNative]
		if nat == nil && b.Kind == kindStartup {
			continue
		}
		switch b.Kind {
		case kindLoop:
			if fx := b.Columns[modeFloorExact]; fx != nil {
				fmt.Fprintf(w, "%s, floor-exact: %.0f ns/op (%.2fx native)", b.Name, fx.MedianNsPerOp, b.VsNative[modeFloorExact])
				if fl := b.Columns[modeFloor]; fl != nil {
					fmt.Fprintf(w, ", %+.0f ns over the floor", fx.MedianNsPerOp-fl.MedianNsPerOp)
				}
				var parts []string
				for _, cf := range configs {
					k := column{modeSandbox, cf}.key()
					if b.Columns[k] == nil {
						continue
					}
					s := "n/a"
					if r, ok := b.VsFloorExact[k]; ok {
						s = fmt.Sprintf("%.2fx", r)
					}
					if r, ok := b.VsFloor[k]; ok {
						s += fmt.Sprintf(" (%.2fx the floor's)", r)
					}
					parts = append(parts, cf+" "+s)
				}
				if len(parts) > 0 {
					fmt.Fprintf(w, "; sandbox over floor-exact (not rated): %s", strings.Join(parts, ", "))
				}
				fmt.Fprintln(w)
			}
		case kindStartup:
			parts := []string{}
			for _, k := range []string{modeNative, modeFloor, column{modeSandbox, cfgSelf}.key(), modeStrace} {
				if m := b.Columns[k]; m != nil {
					s := fmt.Sprintf("%s %.2f ms", k, m.MedianNsPerOp/1e6)
					if k != modeNative {
						s += fmt.Sprintf(" (%+.2f ms)", (m.MedianNsPerOp-nat.MedianNsPerOp)/1e6)
					}
					parts = append(parts, s)
				}
			}
			fmt.Fprintf(w, "startup (/bin/true, wall per run, %d runs per round): %s; target sandbox ≤ native + %.0f ms: %s\n",
				b.Iterations, strings.Join(parts, ", "), targetStartupNs/1e6, okCell(b, ""))
		case kindLoad:
			parts := []string{}
			for _, k := range []string{modeNative, modeFloor, column{modeSandbox, cfgRule}.key()} {
				if t, ok := b.Throughput[k]; ok {
					parts = append(parts, fmt.Sprintf("%s %.0f/s", k, t))
				}
			}
			rel := ""
			if fl, sb := b.Columns[modeFloor], b.Columns[column{modeSandbox, cfgRule}.key()]; fl != nil && sb != nil {
				rel = fmt.Sprintf(" = %.2fx the floor's", fl.MedianNsPerOp/sb.MedianNsPerOp)
			}
			fmt.Fprintf(w, "load (%s): connects/s %s; sandbox%s; target ≥ %.2fx: %s\n",
				b.Description, strings.Join(parts, ", "), rel, targetLoad, okCell(b, ""))
		}
	}
}

func nsCell(b benchResult, k string) string {
	m := b.Columns[k]
	if m == nil {
		return "-"
	}
	s := strconv.FormatFloat(m.MedianNsPerOp, 'f', 0, 64)
	if r, ok := b.VsNative[k]; ok {
		s += fmt.Sprintf(" (%.2fx)", r)
	}
	return s
}

func okCell(b benchResult, t string) string {
	switch {
	case b.Target == "":
		return "–"
	case b.OK == nil:
		return strings.TrimSpace(t + " n/a")
	case *b.OK:
		return strings.TrimSpace(t + " ok")
	}
	return strings.TrimSpace(t + " MISS")
}
