package matrix

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	for _, c := range []struct {
		o    Outcome
		want Reading
		note string
	}{
		{Outcome{Started: true}, OK, ""},
		{Outcome{Started: true, Exit: 1}, Failed, ""},
		{Outcome{Started: true, Exit: 127}, Failed, ""},
		{Outcome{Started: true, Exit: 143}, Failed, ""}, // SIGTERM is no crash
		{Outcome{Started: true, Exit: 130}, Failed, ""}, // nor SIGINT
		{Outcome{Started: true, Exit: 139}, Crashed, ""},
		{Outcome{Started: true, Exit: 134}, Crashed, ""},
		{Outcome{Started: true, Exit: 135}, Crashed, ""},
		{Outcome{Started: true, Exit: 132}, Crashed, ""},
		{Outcome{Started: true, Exit: 136}, Crashed, ""},
		{Outcome{Started: true, Exit: 137}, Crashed, ""},
		{Outcome{Started: true, Exit: 133}, Crashed, ""},
		{Outcome{Started: true, Exit: 125}, Error, ""},
		{Outcome{Started: true, Exit: 137, TimedOut: true}, Hung, ""},
		{Outcome{Started: true, Exit: 0, TimedOut: true}, Hung, ""},
		{Outcome{Started: true, Exit: 128 + 11, Signal: syscall.SIGSEGV}, Error, "the sandbox itself was killed by signal 11 (segmentation fault)"},
		{Outcome{}, Error, ""},
	} {
		got, note := Read(c.o)
		if got != c.want || note != c.note {
			t.Errorf("%+v: %s %q, want %s %q", c.o, got, note, c.want, c.note)
		}
	}
}

func TestParseReadings(t *testing.T) {
	got, err := ParseReadings("hung, failed")
	if err != nil || !reflect.DeepEqual(got, []Reading{Hung, Failed}) {
		t.Errorf("%v %v", got, err)
	}
	if got, err := ParseReadings("none"); err != nil || got != nil {
		t.Errorf("none: %v %v", got, err)
	}
	if _, err := ParseReadings("hung,slow"); err == nil || !strings.Contains(err.Error(), `"slow" is no reading`) {
		t.Errorf("slow: %v", err)
	}
}

func TestTail(t *testing.T) {
	tl := NewTail(3, nil)
	fmt.Fprint(tl, "a\nb\r\nc\nd\ne")
	if got := tl.Lines(); !reflect.DeepEqual(got, []string{"c", "d", "e"}) {
		t.Errorf("%q", got)
	}
	tl = NewTail(2, nil)
	fmt.Fprint(tl, strings.Repeat("x", 10000)+"\n")
	if got := tl.Lines(); len(got) != 1 || len(got[0]) != maxLine {
		t.Errorf("a long line is kept whole: %d", len(got[0]))
	}
	// learn: its summary and messages follow PROGRAM's last line.
	tl = NewTail(20, IsSummaryHeader)
	for _, l := range []string{"client: dial: refused", "DESTINATION      NAME       COUNT  VERDICT  ERRNO",
		"tcp:127.0.0.1:9  localhost  1      allow    EINPROGRESS", "sandbox: learn: wrote x.yaml"} {
		fmt.Fprintln(tl, l)
	}
	if got := tl.Lines(); !reflect.DeepEqual(got, []string{"client: dial: refused"}) {
		t.Errorf("cut: %q", got)
	}
	if !IsSummaryHeader("DESTINATION         COUNT  VERDICT  ERRNO") || IsSummaryHeader("DESTINATION unknown") {
		t.Error("IsSummaryHeader")
	}
}

func TestSandboxError(t *testing.T) {
	lines := []string{"noise", "sandbox: /p.yaml:3:12: expected PORT", "    3 |   - allow: x", "      |   ^"}
	if got := SandboxError(lines); got != "/p.yaml:3:12: expected PORT\n    3 |   - allow: x\n      |   ^" {
		t.Errorf("%q", got)
	}
	if got := SandboxError([]string{"a", "b"}); got != "b" {
		t.Errorf("%q", got)
	}
}

// sample is a report with a reading of each kind.
func sample() *Report {
	faults, _ := ParseFaults("refuse,timeout:5s,reset:0,blackhole,unreachable,latency:2s")
	o := Options{Program: []string{"/opt/bin/client", "--once"}, Faults: faults}
	plan := NewPlan([]string{"tcp:web.test:8080"}, o)
	long := "client: " + strings.Repeat("é", 80)
	base := Result{Run: BaselineRun(o, "b.yaml", "b.json"), Reading: OK, Exit: 0, Duration: 21 * time.Millisecond, Stdout: "aa"}
	runs := []Result{
		{Reading: Failed, Exit: 2, Duration: 15 * time.Millisecond, Stdout: "bb", Stderr: []string{"x", "client: refused | <&>"}},
		{Reading: Hung, Exit: 137, Duration: 12*time.Second + 30*time.Millisecond, Stdout: "bb", Stderr: []string{long}},
		{Reading: Crashed, Exit: 139, Duration: 40 * time.Millisecond, Stdout: "bb", Stderr: []string{"\xff]]>end", "bad\x01char\tand tab"}},
		{Reading: Error, Exit: 125, Duration: 5 * time.Millisecond, Note: "--fault DEST=blackhole: unknown", Stderr: []string{"sandbox: --fault DEST=blackhole: unknown"}},
		{Reading: Skipped, Exit: -1, Note: "--unreachable unix:/x: no twin"},
		{Reading: OK, Exit: 0, Duration: 2 * time.Second, Stdout: "aa"},
	}
	for i := range runs {
		runs[i].Run = plan.Runs[i]
	}
	Compare(base, runs)
	return &Report{Program: o.Program, Started: time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC), Baseline: base, Runs: runs,
		Notes: []string{"udp:10.0.0.2:53: not faulted"}, FailOn: DefaultFailOn}
}

// TestLastStderrIsTheProgramsLine: the sandbox's log records after the
// program's error (a denial is logged once answered) are passed over.
func TestLastStderrIsTheProgramsLine(t *testing.T) {
	r := Result{Stderr: []string{"curl: (7) Failed to connect", `time="2026-12-02T01:00:00Z" level=warning msg="connect refused" dst="tcp:10.0.0.1:80"`}}
	if got := r.LastStderr(); got != "curl: (7) Failed to connect" {
		t.Errorf("LastStderr = %q, want the program's line", got)
	}
	only := Result{Stderr: []string{`time="2026-12-02T01:00:00Z" level=warning msg="connect refused"`}}
	if got := only.LastStderr(); got != only.Stderr[0] {
		t.Errorf("only the sandbox's line: %q", got)
	}
}

func TestCompare(t *testing.T) {
	r := sample()
	var got []bool
	for _, res := range r.Runs {
		got = append(got, res.Differs)
	}
	if want := []bool{true, true, true, true, false, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("differs %v, want %v", got, want)
	}
	if r.Failures() != 3 {
		t.Errorf("failures %d, want 3 (hung, crashed, error)", r.Failures())
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 9 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	fields := func(i int) string { return strings.Join(strings.Fields(lines[i]), " ") }
	for i, want := range []string{
		"DESTINATION FAULT READING EXIT DURATION DIFFERS LAST STDERR LINE",
		"(baseline) - ok 0 21ms -",
		"tcp:web.test:8080 refuse failed 2 15ms yes client: refused | <&>",
		"tcp:web.test:8080 timeout:5s hung 137 12.03s yes client: ééé",
		"tcp:web.test:8080 reset:0 crashed 139 40ms yes bad char and tab",
		"tcp:web.test:8080 blackhole error 125 5ms yes --fault DEST=blackhole: unknown",
		"tcp:web.test:8080 unreachable skipped - - no --unreachable unix:/x: no twin",
		"tcp:web.test:8080 latency:2s ok 0 2.00s no",
		"(udp:10.0.0.2:53: not faulted)",
	} {
		if !strings.HasPrefix(fields(i), want) {
			t.Errorf("line %d: %q, want %q", i, fields(i), want)
		}
	}
	// The long line: 60 characters, the last an ellipsis.
	last := lines[3][strings.Index(lines[3], "client: "):]
	if n := len([]rune(last)); n != StderrWidth || !strings.HasSuffix(last, "…") {
		t.Errorf("truncated to %d runes: %q", n, last)
	}
	// Columns line up: every row's FAULT starts where the header's does.
	col := strings.Index(lines[0], "FAULT")
	for i, want := range []string{"-", "refuse", "timeout:5s", "reset:0", "blackhole", "unreachable", "latency:2s"} {
		if l := lines[i+1]; len(l) <= col || l[col-1] != ' ' || strings.Fields(l[col:])[0] != want {
			t.Errorf("misaligned: %q", l)
		}
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "|") {
			rows = append(rows, l)
		}
	}
	if len(rows) != 2+7 {
		t.Fatalf("want header, rule and 7 rows:\n%s", b.String())
	}
	if !strings.HasPrefix(b.String(), "# sandbox matrix: `/opt/bin/client --once`\n") ||
		!strings.Contains(b.String(), "7 runs, 3 with a reading of hung, crashed, error.") ||
		!strings.Contains(b.String(), "\n- udp:10.0.0.2:53: not faulted\n") {
		t.Errorf("markdown:\n%s", b.String())
	}
	if rows[0] != "| destination | fault | reading | exit | duration | differs | last stderr line |" ||
		rows[2] != "| (baseline) | - | ok | 0 | 21ms | - |  |" ||
		rows[3] != "| `tcp:web.test:8080` | `refuse` | failed | 2 | 15ms | yes | client: refused \\| <&> |" {
		t.Errorf("rows:\n%s", strings.Join(rows, "\n"))
	}
	// Every row has the header's cells: an escaped | is no separator.
	for _, r := range rows {
		if n := strings.Count(strings.ReplaceAll(r, `\|`, ""), "|"); n != 8 {
			t.Errorf("%d separators in %q", n, r)
		}
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Program  []string
		Failures int
		FailOn   []string `json:"fail_on"`
		Baseline map[string]any
		Runs     []map[string]any
		Notes    []string
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Failures != 3 || len(got.Runs) != 6 || !reflect.DeepEqual(got.FailOn, []string{"hung", "crashed", "error"}) ||
		got.Baseline["reading"] != "ok" || got.Baseline["destination"] != nil || len(got.Notes) != 1 {
		t.Errorf("%s", b.String())
	}
	r := got.Runs[1]
	if r["destination"] != "tcp:web.test:8080" || r["fault"] != "timeout:5s" || r["reading"] != "hung" ||
		r["exit"] != 137.0 || r["seconds"].(float64) < 12.029 || r["seconds"].(float64) > 12.031 || r["differs"] != true || r["fails"] != true ||
		r["stdout_sha256"] != "bb" || len(r["stderr_tail"].([]any)) != 1 {
		t.Errorf("run 1: %v", r)
	}
	argv := fmt.Sprint(r["argv"])
	if argv != "[run --grace 2s --timeout tcp:web.test:8080=5s --allow-all -- /opt/bin/client --once]" {
		t.Errorf("argv %s", argv)
	}
	if s := got.Runs[4]; s["reading"] != "skipped" || s["exit"] != nil || s["note"] != "--unreachable unix:/x: no twin" {
		t.Errorf("skipped: %v", s)
	}
}

func TestJUnit(t *testing.T) {
	var b bytes.Buffer
	rep := sample()
	if err := rep.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), xml.Header) {
		t.Errorf("no XML header:\n%s", b.String())
	}
	var doc JUnitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%d suites", len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name != "sandbox matrix: /opt/bin/client --once" || s.Tests != 7 || s.Failures != 3 || s.Skipped != 1 ||
		s.Errors != 0 || s.Time != "14.111" || s.Timestamp != "2026-12-01T22:00:00" || len(s.Cases) != 7 {
		t.Errorf("suite: %+v", s)
	}
	if doc.Tests != 7 || doc.Failures != 3 || doc.Name != s.Name {
		t.Errorf("testsuites: %+v", doc)
	}
	wantNames := []string{"baseline", "tcp:web.test:8080 × refuse", "tcp:web.test:8080 × timeout:5s", "tcp:web.test:8080 × reset:0",
		"tcp:web.test:8080 × blackhole", "tcp:web.test:8080 × unreachable", "tcp:web.test:8080 × latency:2s"}
	for i, c := range s.Cases {
		if c.Name != wantNames[i] || c.Classname != "client" {
			t.Errorf("case %d: %q %q", i, c.Name, c.Classname)
		}
	}
	if c := s.Cases[1]; c.Failure != nil || c.Time != "0.015" || c.SystemErr == nil || c.SystemErr.Text != "x\nclient: refused | <&>\n" {
		t.Errorf("failed run: %+v", c)
	}
	if c := s.Cases[2]; c.Failure == nil || c.Failure.Message != "hung, exit 137" || c.Failure.Type != "hung" || c.Time != "12.030" {
		t.Errorf("hung run: %+v", c)
	}
	// A control character is no XML: it is replaced, and the file still parses.
	if c := s.Cases[3]; c.Failure == nil || c.Failure.Message != "crashed, exit 139" || c.SystemErr == nil || c.SystemErr.Text != "\uFFFD]]>end\nbad\uFFFDchar\tand tab\n" {
		t.Errorf("crashed run: %+v", c)
	}
	if c := s.Cases[4]; c.Failure == nil || c.Failure.Message != "error, exit 125" || c.Failure.Text != "--fault DEST=blackhole: unknown" {
		t.Errorf("error run: %+v", c.Failure)
	}
	if c := s.Cases[5]; c.Skipped == nil || c.Skipped.Message != "--unreachable unix:/x: no twin" || c.Failure != nil {
		t.Errorf("skipped run: %+v", c)
	}
	// --fail-on failed: the failed run fails, the others do not.
	rep.FailOn = []Reading{Failed}
	b.Reset()
	if err := rep.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	doc = JUnitSuites{}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Suites[0].Failures != 1 || doc.Suites[0].Cases[1].Failure == nil || doc.Suites[0].Cases[2].Failure != nil {
		t.Errorf("--fail-on failed: %+v", doc.Suites[0])
	}
}

func TestFormatOf(t *testing.T) {
	for _, p := range []string{"r.md", "out/r.json", "R.XML"} {
		if _, err := FormatOf(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := FormatOf("report.txt"); err == nil || err.Error() != "--out report.txt: want .md, .json or .xml (Markdown, JSON or JUnit XML, by extension)" {
		t.Errorf("report.txt: %v", err)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0ms", 999 * time.Millisecond: "999ms", time.Second: "1.00s", 3016 * time.Millisecond: "3.02s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
	}
}

// TestTitleQuotesArgv: the report's title is PROGRAM as a shell would run
// it, quoted where its words need it, and verbatim in Markdown.
func TestTitleQuotesArgv(t *testing.T) {
	argv := []string{"sh", "-c", `curl -sS http://web.test:8080/ || kill -SEGV $$`}
	rep := sample()
	rep.Program = argv
	var md, x bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if title, _, _ := strings.Cut(md.String(), "\n"); title != "# sandbox matrix: `sh -c 'curl -sS http://web.test:8080/ || kill -SEGV $$'`" {
		t.Errorf("markdown title %q", title)
	}
	if err := rep.WriteJUnit(&x); err != nil {
		t.Fatal(err)
	}
	var doc JUnitSuites
	if err := xml.Unmarshal(x.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if want := "sandbox matrix: sh -c 'curl -sS http://web.test:8080/ || kill -SEGV $$'"; doc.Name != want || doc.Suites[0].Name != want {
		t.Errorf("junit name %q, want %q", doc.Name, want)
	}
	for in, want := range map[string]string{"a": "`a`", "a`b": "``a`b``", "`a": "`` `a ``", "a``b`": "``` a``b` ```"} {
		if got := codeSpan(in); got != want {
			t.Errorf("codeSpan(%q) = %s, want %s", in, got, want)
		}
	}
}
