package matrix

import (
	"fmt"
	"strings"
	"syscall"
	"time"
)

// Reading is what became of one run.
type Reading string

const (
	OK      Reading = "ok"      // exit 0
	Failed  Reading = "failed"  // exit non-zero
	Hung    Reading = "hung"    // still running at --run-timeout: killed
	Crashed Reading = "crashed" // PROGRAM killed by a crash signal (the sandbox exits 128+N)
	Error   Reading = "error"   // the sandbox itself failed (exit 125)
	Skipped Reading = "skipped" // the fault cannot apply to this destination: not run
)

// Readings are every reading, in the order the help lists them.
var Readings = []Reading{OK, Failed, Hung, Crashed, Error, Skipped}

// DefaultFailOn are the readings that make matrix exit 1.
var DefaultFailOn = []Reading{Hung, Crashed, Error}

// ParseReadings parses a comma-separated list of readings (--fail-on); ""
// and "none" are the empty set.
func ParseReadings(s string) ([]Reading, error) {
	if strings.TrimSpace(s) == "" || s == "none" {
		return nil, nil
	}
	var out []Reading
	for _, w := range strings.Split(s, ",") {
		r := Reading(strings.TrimSpace(w))
		found := false
		for _, k := range Readings {
			found = found || k == r
		}
		if !found {
			return nil, fmt.Errorf("--fail-on %s: %q is no reading; want a comma-separated list of ok, failed, hung, crashed, error, skipped (or none)", s, r)
		}
		out = append(out, r)
	}
	return out, nil
}

// ExitSandbox is the sandbox's status for an error of its own.
const ExitSandbox = 125

// CrashSignals are the signals whose 128+N status reads as crashed.
var CrashSignals = []syscall.Signal{syscall.SIGSEGV, syscall.SIGABRT, syscall.SIGBUS, syscall.SIGILL,
	syscall.SIGFPE, syscall.SIGKILL, syscall.SIGTRAP}

// Outcome is how one sandbox process ended.
type Outcome struct {
	Started  bool           // the sandbox was started at all
	Exit     int            // its exit status (128+N when it was itself killed by signal N)
	Signal   syscall.Signal // the signal that killed the sandbox itself, or 0
	TimedOut bool           // still running at --run-timeout
}

// Read gives an outcome its reading, and for an error of the sandbox a
// note saying so.
func Read(o Outcome) (Reading, string) {
	switch {
	case !o.Started:
		return Error, ""
	case o.TimedOut:
		return Hung, ""
	case o.Signal != 0:
		return Error, fmt.Sprintf("the sandbox itself was killed by %s", sigName(o.Signal))
	case o.Exit == 0:
		return OK, ""
	case o.Exit == ExitSandbox:
		return Error, ""
	}
	for _, s := range CrashSignals {
		if o.Exit == 128+int(s) {
			return Crashed, ""
		}
	}
	return Failed, ""
}

func sigName(s syscall.Signal) string {
	return fmt.Sprintf("signal %d (%v)", int(s), s)
}

// Result is one run read.
type Result struct {
	Run      Run
	Reading  Reading
	Exit     int // -1 when the sandbox did not start or the run was skipped
	Duration time.Duration
	Stdout   string   // the SHA-256 of stdout, hex
	Stderr   []string // the last lines of stderr, at most TailLines
	Note     string   // why it is an error or was skipped
	Differs  bool     // exit status or stdout differ from the baseline's
}

// LastStderr is the note of an error or a skip, or else the last line of
// PROGRAM's stderr: the sandbox's own log records, which share the stream
// and are written after the program's error (a denial is logged once the
// call is answered), are passed over, unless there is nothing else.
func (r Result) LastStderr() string {
	if r.Note != "" {
		return r.Note
	}
	for i := len(r.Stderr) - 1; i >= 0; i-- {
		if !isSandboxLog(r.Stderr[i]) {
			return r.Stderr[i]
		}
	}
	if len(r.Stderr) == 0 {
		return ""
	}
	return r.Stderr[len(r.Stderr)-1]
}

// isSandboxLog reports whether line is a log record of the sandbox's (its
// text format: time="..." level=... msg=...).
func isSandboxLog(line string) bool {
	return strings.HasPrefix(line, `time="`) && strings.Contains(line, " level=") && strings.Contains(line, " msg=")
}

// Compare sets Differs on each run: its exit status or its stdout is not the
// baseline's. A skipped run differs from nothing.
func Compare(base Result, runs []Result) {
	for i := range runs {
		r := &runs[i]
		r.Differs = r.Reading != Skipped && (r.Exit != base.Exit || r.Stdout != base.Stdout)
	}
}

// TailLines is how many lines of stderr a result keeps.
const TailLines = 20

// maxLine bounds one kept line, in bytes.
const maxLine = 4096

// Tail is an io.Writer keeping the last lines written to it. With a cut,
// what follows the last line for which cut is true is dropped: learn's
// summary table and messages after PROGRAM's own stderr.
type Tail struct {
	n        int
	cut      func(string) bool
	lines    []string
	partial  []byte
	snapshot []string
	cutSeen  bool
}

// NewTail keeps the last n lines; cut may be nil.
func NewTail(n int, cut func(string) bool) *Tail { return &Tail{n: n, cut: cut} }

func (t *Tail) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			t.line(string(t.partial))
			t.partial = t.partial[:0]
			continue
		}
		if len(t.partial) < maxLine {
			t.partial = append(t.partial, c)
		}
	}
	return len(p), nil
}

func (t *Tail) line(s string) {
	s = strings.TrimRight(s, "\r")
	if t.cut != nil && t.cut(s) {
		t.snapshot = append([]string(nil), t.lines...)
		t.cutSeen = true
	}
	t.lines = append(t.lines, s)
	if len(t.lines) > t.n {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.n:]...)
	}
}

// Lines are the last lines (an unterminated last line included), before
// the last cut.
func (t *Tail) Lines() []string {
	if t.cutSeen {
		return t.snapshot
	}
	out := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		out = append(out, strings.TrimRight(string(t.partial), "\r"))
		if len(out) > t.n {
			out = out[1:]
		}
	}
	return out
}

// IsSummaryHeader says whether line is the header of the sandbox's summary
// table (DESTINATION [NAME] COUNT VERDICT ERRNO), which learn prints after
// PROGRAM ends.
func IsSummaryHeader(line string) bool {
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "DESTINATION" {
		return false
	}
	n := len(f)
	return f[n-3] == "COUNT" && f[n-2] == "VERDICT" && f[n-1] == "ERRNO"
}

// SandboxError is the sandbox's own error in the last lines of stderr: from
// the last line that starts with "sandbox: " to the end (a policy error
// quotes its line below), without that prefix. Without such a line it is
// the last line.
func SandboxError(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if s, ok := strings.CutPrefix(lines[i], "sandbox: "); ok {
			return strings.Join(append([]string{s}, lines[i+1:]...), "\n")
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}
