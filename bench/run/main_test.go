package main

import (
	"bytes"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseListAndPlacements(t *testing.T) {
	m, err := parseList("strace,sandbox,strace,floor", allModes, "mode")
	if err != nil || strings.Join(m, ",") != "strace,sandbox,floor" {
		t.Fatalf("parseList = %v, %v", m, err)
	}
	if _, err := parseList("native,bogus", allModes, "mode"); err == nil {
		t.Fatal("parseList accepted an unknown mode")
	}
	if _, err := parseList("rule,allow", allConfigs, "configuration"); err == nil {
		t.Fatal("parseList accepted an unknown configuration")
	}
	p, err := parsePlacements("unpinned,pinned", "1")
	if err != nil || len(p) != 2 || p[0].CPUs != "" || p[1].CPUs != "1" || len(p[1].prefix()) != 3 {
		t.Fatalf("parsePlacements = %v, %v", p, err)
	}
	if _, err := parsePlacements("pinned", ""); err == nil {
		t.Fatal("parsePlacements accepted an empty CPU list")
	}
}

func TestRotate(t *testing.T) {
	got := rotateCols([]column{{Mode: "a"}, {Mode: "b"}, {Mode: "c"}}, 4)
	if got[0].Mode != "b" || got[1].Mode != "c" || got[2].Mode != "a" {
		t.Fatalf("rotateCols = %v", got)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := tailBuffer{max: 4}
	for _, w := range []string{"abc", "defgh", "ij", "k"} {
		tb.Write([]byte(w))
	}
	if got := string(tb.b); !strings.HasSuffix(got, "hijk") || len(got) > 8 {
		t.Fatalf("tailBuffer = %q", got)
	}
}

func TestOverheadRatio(t *testing.T) {
	// native 10 µs, floor 20 µs, sandbox 22 µs: 1.2x the floor's overhead.
	if r, ok := overheadRatio(22000, 10000, 20000); !ok || math.Abs(r-1.2) > 1e-9 {
		t.Fatalf("overheadRatio = %v, %v", r, ok)
	}
	// The floor adds nothing measurable (an untrapped row): no ratio.
	if _, ok := overheadRatio(160, 150, 152); ok {
		t.Fatal("overheadRatio rated an untrapped row")
	}
	if _, ok := overheadRatio(5000, 3000, 2900); ok {
		t.Fatal("overheadRatio rated a floor faster than native")
	}
}

func testConfig() config {
	return config{TCPIters: 10, UDPIters: 10, GetpidIters: 10, StartupRuns: 2, LoadIters: 5, LoadThreads: 4, LoadRounds: 1}
}

func TestRowsAndColumns(t *testing.T) {
	bs := rows(testConfig(), "/tmp/x/unix.sock")
	byName := map[string]bench{}
	for _, b := range bs {
		byName[b.Name] = b
	}
	for _, name := range []string{"tcp_connect_inline", "tcp_connect", "tcp_connect_proc", "udp_connect", "udp_sendto",
		"udp_sendmsg", "udp_sendmsg_addr", "udp_sendmmsg", "tcp_denied", "unix_connect", "startup", "load"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("no row %s", name)
		}
	}
	// Every trapped loop row has an explicit rule; the Unix rule names the path.
	for _, b := range bs {
		if b.Trapped && b.Kind == kindLoop && len(b.Policies[cfgRule]) == 0 {
			t.Errorf("%s: no explicit rule", b.Name)
		}
	}
	if got := strings.Join(byName["unix_connect"].Policies[cfgRule], " "); got != "--allow unix:/tmp/x/unix.sock" {
		t.Errorf("unix rule = %q", got)
	}
	cols := columns(byName["tcp_connect_inline"], allModes, allConfigs)
	var keys []string
	for _, c := range cols {
		keys = append(keys, c.key())
	}
	if got := strings.Join(keys, ","); got != "native,floor,floor-exact,sandbox:allow-all,sandbox:rule,sandbox:self,strace" {
		t.Errorf("columns = %s", got)
	}
	// No self where nothing is decided, no allow-all on the denied row,
	// no strace on the load row.
	if n := len(columns(byName["udp_sendmsg"], allModes, allConfigs)); n != 6 {
		t.Errorf("udp_sendmsg: %d columns, want 6", n)
	}
	for _, c := range columns(byName["tcp_denied"], allModes, allConfigs) {
		if c.Config == cfgAllowAll {
			t.Error("tcp_denied runs --allow-all")
		}
	}
	// floor-exact runs on the trapped loop rows only.
	for _, b := range bs {
		n := 0
		for _, c := range columns(b, allModes, allConfigs) {
			if c.Mode == modeFloorExact {
				n++
			}
		}
		if want := map[bool]int{true: 1}[b.Trapped && b.Kind == kindLoop]; n != want {
			t.Errorf("%s: %d floor-exact columns, want %d", b.Name, n, want)
		}
	}
	for _, c := range columns(byName["load"], allModes, allConfigs) {
		if c.Mode == modeStrace || c.Mode == modeNative {
			t.Errorf("load runs %s (only floor and sandbox:rule by default)", c.Mode)
		}
	}
}

func fakeSamples(native, floor, rule float64) map[string][]float64 {
	return map[string][]float64{
		modeNative:     {native, native * 1.1, native * 0.9},
		modeFloor:      {floor},
		"sandbox:rule": {rule},
		"sandbox:self": {rule * 2},
		modeStrace:     {native * 5},
	}
}

func TestResultsTargetsAndHeadline(t *testing.T) {
	bs := rows(testConfig(), "/u")
	byName := map[string]bench{}
	for _, b := range bs {
		byName[b.Name] = b
	}
	samples := map[string]map[string]map[string][]float64{"unpinned": {
		"tcp_connect_inline": fakeSamples(30000, 50000, 53000),                                   // 1.15x: ok
		"udp_connect":        fakeSamples(8000, 20000, 26000),                                    // 1.5x: the worst
		"tcp_denied":         {modeNative: {13000}, modeFloor: {10000}, "sandbox:rule": {11000}}, // 1.1x the floor's time
		"getpid":             {modeNative: {150}, modeFloor: {151}, "sandbox:self": {152}},
		"startup":            {modeNative: {1e6}, modeFloor: {2e6}, "sandbox:self": {17e6}},
		"load":               {modeNative: {20000}, modeFloor: {30000}, "sandbox:rule": {40000}},
	}}
	res := buildResults(config{}, allModes, allConfigs, []placement{{Name: "unpinned"}}, bs, samples, time.Second, t.TempDir())
	get := func(name string) benchResult {
		for _, b := range res.Placements[0].Benchmarks {
			if b.Name == name {
				return b
			}
		}
		t.Fatalf("no result for %s", name)
		return benchResult{}
	}
	if b := get("tcp_connect_inline"); b.OK == nil || !*b.OK || math.Abs(b.VsFloor["sandbox:rule"]-1.15) > 1e-9 {
		t.Errorf("tcp_connect_inline: ok %v, overhead %v", b.OK, b.VsFloor)
	}
	if b := get("udp_connect"); b.OK == nil || *b.OK || math.Abs(b.VsNative["floor"]-2.5) > 1e-9 {
		t.Errorf("udp_connect: ok %v, vs native %v", b.OK, b.VsNative)
	}
	if b := get("tcp_denied"); b.OK == nil || !*b.OK || math.Abs(b.VsFloor["sandbox:rule"]-1.1) > 1e-9 {
		t.Errorf("tcp_denied: ok %v, overhead %v", b.OK, b.VsFloor)
	}
	if b := get("getpid"); b.OK != nil || len(b.VsFloor) != 0 {
		t.Errorf("getpid rated: %v %v", b.OK, b.VsFloor)
	}
	if b := get("startup"); b.OK == nil || *b.OK { // +16 ms
		t.Errorf("startup: ok %v", b.OK)
	}
	if b := get("load"); b.OK == nil || *b.OK || math.Abs(b.Throughput["floor"]-1e9/30000) > 1e-6 { // 0.75x the floor's
		t.Errorf("load: ok %v, throughput %v", b.OK, b.Throughput)
	}
	if res.Missed != 3 {
		t.Errorf("missed = %d, want 3", res.Missed)
	}
	h := res.Headline
	if h == nil || h.Row != "udp_connect" || math.Abs(h.Overhead-1.5) > 1e-9 || h.RowsPassed != 2 || h.RowsRated != 3 {
		t.Fatalf("headline = %+v", h)
	}
	var out bytes.Buffer
	printTables(&out, res)
	s := out.String()
	for _, want := range []string{
		"headline (least flattering row, rule configuration): udp_connect [unpinned]",
		"overhead 1.50x the floor's (target ≤1.20x MISS; 2 of 3 rows within)",
		"sandbox rule", "overhead rule", "1.15x", "≤1.20x ok", "≤1.20x MISS", "n/m",
		"startup (/bin/true", "(+16.00 ms)", "target sandbox ≤ native + 5 ms: MISS",
		"sandbox = 0.75x the floor's; target ≥ 0.90x: MISS",
		"targets missed: 3",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("tables lack %q:\n%s", want, s)
		}
	}
}

// TestFloorExact checks the floor-exact column's arithmetic and line: an
// overhead over it beside the floor's, with targets and headline still
// against the plain floor.
func TestFloorExact(t *testing.T) {
	bs, err := selectRows(rows(testConfig(), "/u"), "unix_connect")
	if err != nil || len(bs) != 1 {
		t.Fatalf("selectRows = %v, %v", bs, err)
	}
	// native 10 µs, floor 14 µs, floor-exact 18 µs, rule 26 µs: 4.00x the
	// floor's overhead, 2.00x floor-exact's; self 34 µs: 6.00x, 3.00x.
	samples := map[string]map[string]map[string][]float64{"pinned": {"unix_connect": {
		modeNative: {10000}, modeFloor: {14000}, modeFloorExact: {18000},
		"sandbox:rule": {26000}, "sandbox:self": {34000},
	}}}
	res := buildResults(config{}, allModes, allConfigs, []placement{{Name: "pinned", CPUs: "0"}}, bs, samples, time.Second, t.TempDir())
	b := res.Placements[0].Benchmarks[0]
	if math.Abs(b.VsFloor["sandbox:rule"]-4) > 1e-9 || math.Abs(b.VsFloorExact["sandbox:rule"]-2) > 1e-9 ||
		math.Abs(b.VsFloorExact["sandbox:self"]-3) > 1e-9 || math.Abs(b.VsNative[modeFloorExact]-1.8) > 1e-9 {
		t.Errorf("vs floor %v, vs floor-exact %v, vs native %v", b.VsFloor, b.VsFloorExact, b.VsNative)
	}
	if _, ok := b.VsFloor[modeFloorExact]; ok {
		t.Error("floor-exact rated against the floor")
	}
	if b.OK == nil || *b.OK || res.Missed != 1 {
		t.Errorf("target judged against floor-exact: ok %v, missed %d", b.OK, res.Missed)
	}
	if h := res.Headline; h == nil || math.Abs(h.Overhead-4) > 1e-9 || h.FloorNs != 14000 {
		t.Errorf("headline = %+v", h)
	}
	var out bytes.Buffer
	printTables(&out, res)
	want := "unix_connect, floor-exact: " +
		"18000 ns/op (1.80x native), +4000 ns over the floor; sandbox over floor-exact (not rated): " +
		"rule 2.00x (4.00x the floor's), self 3.00x (6.00x the floor's)\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("tables lack %q:\n%s", want, out.String())
	}
	// A floor-exact no slower than native: no ratio against it.
	samples["pinned"]["unix_connect"][modeFloorExact] = []float64{9000}
	res = buildResults(config{}, allModes, allConfigs, []placement{{Name: "pinned", CPUs: "0"}}, bs, samples, time.Second, t.TempDir())
	if b := res.Placements[0].Benchmarks[0]; len(b.VsFloorExact) != 0 {
		t.Errorf("rated against a floor-exact faster than native: %v", b.VsFloorExact)
	}
	// The denied row is time over time against floor-exact too.
	bs, err = selectRows(rows(testConfig(), "/u"), "tcp_denied")
	if err != nil || len(bs) != 1 {
		t.Fatalf("selectRows = %v, %v", bs, err)
	}
	samples = map[string]map[string]map[string][]float64{"pinned": {"tcp_denied": {
		modeNative: {20000}, modeFloor: {10000}, modeFloorExact: {12000}, "sandbox:rule": {15000},
	}}}
	res = buildResults(config{}, allModes, allConfigs, []placement{{Name: "pinned", CPUs: "0"}}, bs, samples, time.Second, t.TempDir())
	if b := res.Placements[0].Benchmarks[0]; math.Abs(b.VsFloor["sandbox:rule"]-1.5) > 1e-9 || math.Abs(b.VsFloorExact["sandbox:rule"]-1.25) > 1e-9 {
		t.Errorf("tcp_denied: vs floor %v, vs floor-exact %v", b.VsFloor, b.VsFloorExact)
	}
}

// TestPrograms compiles the C programs and the floor and runs each program
// natively and under the floor for a few iterations, so CI catches a broken
// benchmark before anyone runs `make bench`.
func TestPrograms(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	floor := filepath.Join(dir, "floor")
	floorOK := true
	if out, err := exec.Command(cc, "-O2", "-Wall", "-Werror", "-pthread", "-o", floor, filepath.Join(root, "bench", "floor", "floor.c"), "-lseccomp").CombinedOutput(); err != nil {
		t.Logf("floor not built (libseccomp-dev?): %v\n%s", err, out)
		floorOK = false
	}
	if floorOK {
		if _, _, err := execute([]string{floor, "/bin/true"}, nil, 10*time.Second); err != nil {
			t.Logf("floor cannot run here (no seccomp user notification?): %v", err)
			floorOK = false
		}
	}
	cfg := testConfig()
	for _, b := range rows(cfg, filepath.Join(dir, "unix.sock")) {
		if b.Source == "" {
			continue
		}
		bin := filepath.Join(dir, strings.TrimSuffix(b.Source, ".c"))
		if out, err := exec.Command(cc, "-O2", "-Wall", "-Werror", "-pthread", "-o", bin, filepath.Join(root, "bench", "c", b.Source)).CombinedOutput(); err != nil {
			t.Fatalf("compiling %s: %v\n%s", b.Source, err, out)
		}
		argv := append([]string{bin, strconv.Itoa(b.Iters)}, b.Args...)
		ns, err := measure(argv, nil, b.Name, 30*time.Second)
		if err != nil || ns <= 0 {
			t.Fatalf("%s: %v ns/op, %v", b.Name, ns, err)
		}
		if floorOK {
			if _, err := measure(append([]string{floor}, argv...), b.FloorEnv, b.Name, 30*time.Second); err != nil {
				t.Errorf("%s under the floor: %v", b.Name, err)
			}
			if b.Trapped {
				env := append(append([]string{}, b.FloorEnv...), "FLOOR_EXACT=1")
				if _, err := measure(append([]string{floor}, argv...), env, b.Name, 30*time.Second); err != nil {
					t.Errorf("%s under the exact floor: %v", b.Name, err)
				}
			}
		}
	}
}
