package matrix

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"sandbox/internal/shell"
)

// Report is a whole matrix: the baseline, then the fault runs in plan
// order.
type Report struct {
	Program  []string
	Policy   string // --policy FILE, or "" (learned)
	Started  time.Time
	Baseline Result
	Runs     []Result
	Notes    []string  // what was left out, and why
	FailOn   []Reading // the readings that make matrix exit 1
}

// All is the baseline and then the runs.
func (r *Report) All() []Result { return append([]Result{r.Baseline}, r.Runs...) }

// Fails says whether res has a reading of FailOn.
func (r *Report) Fails(res Result) bool {
	for _, f := range r.FailOn {
		if res.Reading == f {
			return true
		}
	}
	return false
}

// Failures counts the results, baseline included, with a reading of FailOn.
func (r *Report) Failures() int {
	n := 0
	for _, res := range r.All() {
		if r.Fails(res) {
			n++
		}
	}
	return n
}

// StderrWidth is how much of the last stderr line the table shows.
const StderrWidth = 60

// Truncate shortens s to width runes, an ellipsis included.
func Truncate(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + "…"
}

// FormatDuration is a run's duration as the table shows it: 850ms, 3.02s.
func FormatDuration(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

// cells are one result's columns: DESTINATION FAULT READING EXIT DURATION
// DIFFERS LAST-STDERR-LINE.
func cells(res Result) []string {
	dest, fault, differs := res.Run.Dest, res.Run.Fault.Name, "no"
	if res.Run.IsBaseline() {
		dest, fault, differs = "(baseline)", "-", "-"
	} else if res.Differs {
		differs = "yes"
	}
	exit, dur := strconv.Itoa(res.Exit), FormatDuration(res.Duration)
	if res.Exit < 0 {
		exit = "-"
	}
	if res.Reading == Skipped {
		dur = "-"
	}
	return []string{dest, fault, string(res.Reading), exit, dur, differs, res.LastStderr()}
}

var header = []string{"DESTINATION", "FAULT", "READING", "EXIT", "DURATION", "DIFFERS", "LAST STDERR LINE"}

// WriteTable writes the terminal table, baseline first, then the notes.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, res := range r.All() {
		c := cells(res)
		c[6] = Truncate(strings.Map(printable, c[6]), StderrWidth)
		fmt.Fprintln(tw, strings.Join(c, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		if _, err := fmt.Fprintf(w, "(%s)\n", n); err != nil {
			return err
		}
	}
	return nil
}

// printable replaces tabs and control characters, which would break a
// table's columns, by spaces.
func printable(c rune) rune {
	if c < ' ' || c == 0x7f {
		return ' '
	}
	return c
}

// WriteMarkdown writes the report as a Markdown table, one row per run,
// baseline first.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# sandbox matrix: %s\n\n", codeSpan(shell.Join(r.Program)))
	if r.Policy != "" {
		fmt.Fprintf(&b, "Baseline: %s.", codeSpan("sandbox run --policy "+shell.Quote(r.Policy)))
	} else {
		b.WriteString("Baseline: `sandbox learn`; the destinations are the learned policy's.")
	}
	fmt.Fprintf(&b, " %d runs, %d with a reading of %s.\n\n", len(r.Runs)+1, r.Failures(), readingList(r.FailOn))
	b.WriteString("| " + strings.Join(lower(header), " | ") + " |\n")
	b.WriteString(strings.Repeat("|---", len(header)) + "|\n")
	for _, res := range r.All() {
		c := cells(res)
		for i := range c {
			c[i] = mdEscape(strings.Map(printable, c[i]))
		}
		if !res.Run.IsBaseline() {
			c[0], c[1] = "`"+c[0]+"`", "`"+c[1]+"`"
		}
		b.WriteString("| " + strings.Join(c, " | ") + " |\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			b.WriteString("- " + mdEscape(n) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func lower(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToLower(v)
	}
	return out
}

func readingList(rs []Reading) string {
	if len(rs) == 0 {
		return "none"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// codeSpan is s as Markdown code, verbatim: between runs of backquotes
// longer than any in s (and spaces, when s starts or ends with one).
func codeSpan(s string) string {
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + strings.Map(printable, s) + fence
}

// mdEscape keeps a cell one cell: | and backquotes escaped.
func mdEscape(s string) string {
	return strings.NewReplacer(`|`, `\|`, "`", "\\`").Replace(s)
}

// jsonResult is one run in the JSON report.
type jsonResult struct {
	Destination string   `json:"destination,omitempty"`
	Fault       string   `json:"fault,omitempty"`
	Argv        []string `json:"argv"`
	Reading     Reading  `json:"reading"`
	Exit        *int     `json:"exit"`
	Seconds     float64  `json:"seconds"`
	Differs     bool     `json:"differs"`
	Stdout      string   `json:"stdout_sha256,omitempty"`
	LastStderr  string   `json:"last_stderr_line"`
	Stderr      []string `json:"stderr_tail"`
	Note        string   `json:"note,omitempty"`
	Fails       bool     `json:"fails"`
}

type jsonReport struct {
	Program  []string     `json:"program"`
	Policy   string       `json:"policy,omitempty"`
	Started  time.Time    `json:"started"`
	FailOn   []Reading    `json:"fail_on"`
	Failures int          `json:"failures"`
	Baseline jsonResult   `json:"baseline"`
	Runs     []jsonResult `json:"runs"`
	Notes    []string     `json:"notes"`
}

func (r *Report) jsonResult(res Result) jsonResult {
	j := jsonResult{Destination: res.Run.Dest, Fault: res.Run.Fault.Name, Argv: res.Run.Args, Reading: res.Reading,
		Seconds: res.Duration.Seconds(), Differs: res.Differs, Stdout: res.Stdout, LastStderr: res.LastStderr(),
		Stderr: res.Stderr, Note: res.Note, Fails: r.Fails(res)}
	if res.Exit >= 0 {
		e := res.Exit
		j.Exit = &e
	}
	if j.Stderr == nil {
		j.Stderr = []string{}
	}
	return j
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	j := jsonReport{Program: r.Program, Policy: r.Policy, Started: r.Started, FailOn: r.FailOn,
		Failures: r.Failures(), Baseline: r.jsonResult(r.Baseline), Runs: []jsonResult{}, Notes: r.Notes}
	if j.FailOn == nil {
		j.FailOn = []Reading{}
	}
	if j.Notes == nil {
		j.Notes = []string{}
	}
	for _, res := range r.Runs {
		j.Runs = append(j.Runs, r.jsonResult(res))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

// JUnit XML, as CI tools read it.
type (
	JUnitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Errors   int          `xml:"errors,attr"`
		Skipped  int          `xml:"skipped,attr"`
		Time     string       `xml:"time,attr"`
		Suites   []JUnitSuite `xml:"testsuite"`
	}
	JUnitSuite struct {
		Name      string      `xml:"name,attr"`
		Tests     int         `xml:"tests,attr"`
		Failures  int         `xml:"failures,attr"`
		Errors    int         `xml:"errors,attr"`
		Skipped   int         `xml:"skipped,attr"`
		Time      string      `xml:"time,attr"`
		Timestamp string      `xml:"timestamp,attr,omitempty"`
		Cases     []JUnitCase `xml:"testcase"`
	}
	JUnitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		Time      string        `xml:"time,attr"`
		Failure   *JUnitFailure `xml:"failure,omitempty"`
		Skipped   *JUnitSkipped `xml:"skipped,omitempty"`
		SystemErr *JUnitText    `xml:"system-err,omitempty"`
	}
	JUnitText struct {
		Text string `xml:",cdata"`
	}
	JUnitFailure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	JUnitSkipped struct {
		Message string `xml:"message,attr"`
	}
)

// xmlText replaces what XML cannot hold (control characters, invalid
// UTF-8) by U+FFFD: CDATA is not escaped.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF, r == utf8.RuneError:
			return '\uFFFD'
		}
		return r
	}, s)
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// WriteJUnit writes one testsuite, "sandbox matrix: PROGRAM", with one
// testcase per run (the baseline first, then "DEST × FAULT"): a failure
// for a reading of FailOn, skipped for a skipped run, and stderr's last
// lines as system-err.
func (r *Report) WriteJUnit(w io.Writer) error {
	name := "sandbox matrix: " + shell.Join(r.Program)
	suite := JUnitSuite{Name: name}
	if !r.Started.IsZero() {
		suite.Timestamp = r.Started.UTC().Format("2006-01-02T15:04:05")
	}
	var total time.Duration
	for _, res := range r.All() {
		c := JUnitCase{Name: res.Run.Label(), Classname: ProgramName(r.Program), Time: seconds(res.Duration)}
		if len(res.Stderr) > 0 {
			c.SystemErr = &JUnitText{Text: xmlText(strings.Join(res.Stderr, "\n") + "\n")}
		}
		switch {
		case res.Reading == Skipped:
			c.Skipped = &JUnitSkipped{Message: res.Note}
			suite.Skipped++
		case r.Fails(res):
			msg := string(res.Reading)
			if res.Exit >= 0 {
				msg += ", exit " + strconv.Itoa(res.Exit)
			}
			c.Failure = &JUnitFailure{Message: msg, Type: string(res.Reading), Text: res.LastStderr()}
			suite.Failures++
		}
		total += res.Duration
		suite.Tests++
		suite.Cases = append(suite.Cases, c)
	}
	suite.Time = seconds(total)
	doc := JUnitSuites{Name: name, Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped,
		Time: suite.Time, Suites: []JUnitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// Formats are the extensions of --out, each with its writer.
var Formats = map[string]func(*Report, io.Writer) error{
	".md":   (*Report).WriteMarkdown,
	".json": (*Report).WriteJSON,
	".xml":  (*Report).WriteJUnit,
}

// FormatOf returns the writer for an --out file by its extension.
func FormatOf(path string) (func(*Report, io.Writer) error, error) {
	if f, ok := Formats[strings.ToLower(filepath.Ext(path))]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("--out %s: want .md, .json or .xml (Markdown, JSON or JUnit XML, by extension)", path)
}
