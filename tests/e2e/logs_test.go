package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// connectPy connects to each argument: host:port, or a Unix path.
const connectPy = `import socket, sys
for a in sys.argv[1:]:
    if a.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        t = a
    else:
        s = socket.socket()
        h, p = a.rsplit(":", 1)
        t = (h, int(p))
    try:
        s.connect(t)
        print(a, "ok")
    except OSError as e:
        print(a, e.errno)
`

var (
	rfc3339ms = regexp.MustCompile(`^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)" level=`)
	ansi      = regexp.MustCompile("\x1b\\[")
)

// logLines returns the log lines of s. Native calls to a destination not in
// ours are the machine's own (glibc asks nscd once or many times depending on
// the host's name services), so they are left out when ours is given.
func logLines(s string, ours ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r", ""), "\n") {
		if strings.Contains(l, "layer applied") {
			continue // setup, at debug level: tests/security TestLayersAreLogged
		}
		if len(ours) > 0 && strings.Contains(l, "verdict=native") {
			for _, o := range ours {
				if strings.Contains(l, `dst="`+o+`"`) {
					goto keep
				}
			}
			continue next
		}
	keep:
		if strings.HasPrefix(l, "time=") || strings.HasPrefix(l, "{") || strings.Contains(l, "level=") {
			out = append(out, l)
		}
	}
	return out
}

// The text default shows what needs attention: denials, not allowed calls,
// not calls the kernel answered before any decision (a missing Unix path,
// as glibc's nscd probe). -v adds every decision; -vv the native calls.
// JSON logs every decision by default. Timestamps are RFC 3339 with ms.
func TestLogDefaults(t *testing.T) {
	sb := sandbox(t)
	missing := filepath.Join(t.TempDir(), "nscd-socket")
	args := func(flags ...string) []string {
		return append(append([]string{"run", "--allow", "tcp:127.0.0.1:1"}, flags...),
			"--", "python3", "-c", connectPy, "127.0.0.1:1", "10.9.9.9:80", missing)
	}
	cases := []struct {
		name  string
		flags []string
		want  []string // substrings, one a line, in order
	}{
		{"text default", nil, []string{`level=warning msg="connect denied" allow_with="--allow tcp:10.9.9.9:80"`}},
		{"-v", []string{"-v"}, []string{`level=info msg=connect dst="tcp:127.0.0.1:1" errno=ECONNREFUSED`, `level=warning msg="connect denied"`}},
		{"-vv", []string{"-vv"}, []string{`level=info msg=connect dst="tcp:127.0.0.1:1"`, `level=warning msg="connect denied"`,
			`level=debug msg=connect dst="unix:` + missing + `" errno=ENOENT`}},
		{"--log-level wins", []string{"-v", "--log-level", "error"}, nil},
		{"json", []string{"--log-format", "json"}, []string{`"dst":"tcp:127.0.0.1:1"`, `"verdict":"deny"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, sb, args(c.flags...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "127.0.0.1:1 111\n10.9.9.9:80 13\n") {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			lines := logLines(r.stderr)
			if c.name == "-vv" {
				lines = logLines(r.stderr, "unix:"+missing)
			}
			if len(lines) != len(c.want) {
				t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(c.want), r.stderr)
			}
			for i, l := range lines {
				if !strings.Contains(l, c.want[i]) {
					t.Errorf("line %d %q lacks %q", i, l, c.want[i])
				}
				if strings.HasPrefix(l, "{") {
					var m map[string]any
					if err := json.Unmarshal([]byte(l), &m); err != nil {
						t.Fatalf("not JSON: %q", l)
					}
					if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", m["time"].(string)); err != nil {
						t.Errorf("time %q: %v", m["time"], err)
					}
				} else if !rfc3339ms.MatchString(l) {
					t.Errorf("line %q: want an RFC 3339 timestamp with milliseconds first", l)
				}
			}
			if ansi.MatchString(r.stderr) {
				t.Errorf("colour escapes in %q", r.stderr)
			}
		})
	}
}

// The summary lists decisions; native calls are only counted.
func TestSummaryLeavesNativeOut(t *testing.T) {
	sb := sandbox(t)
	missing := filepath.Join(t.TempDir(), "nope")
	sum := filepath.Join(t.TempDir(), "sum.json")
	r := run(t, sb, "run", "--summary", "--summary-json", sum, "--", "python3", "-c", connectPy, "10.9.9.9:80", missing, missing)
	// The host's own name service lookups (glibc asks nscd, once or many
	// times) add to the native count, so it is at least our two.
	b, _ := os.ReadFile(sum)
	var s struct {
		Connects []map[string]any
		Native   int
	}
	if err := json.Unmarshal(b, &s); err != nil || len(s.Connects) != 1 || s.Native < 2 {
		t.Errorf("summary JSON %s (%v)", b, err)
	}
	want := s.Native
	if strings.Contains(r.stderr, "unix:"+missing) || !strings.Contains(r.stderr, fmt.Sprintf("not listed: %d calls the kernel answered before any decision", want)) ||
		!regexp.MustCompile(`tcp:10\.9\.9\.9:80\s+1\s+deny\s+EACCES`).MatchString(r.stderr) {
		t.Errorf("summary (want %d native):\n%s", want, r.stderr)
	}
}

// At a terminal: no colour unless asked (a typescript stays plain text),
// NO_COLOR wins over --color auto, and the summary follows a run in which
// something was denied, not one in which nothing was.
func TestLogsAtATerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("skipping: script(1) is needed for a pseudo-terminal")
	}
	sb := sandbox(t)
	denied := sb + ` run %s -- python3 -c 'import socket, sys; socket.socket().connect_ex(("10.9.9.9", 80)); print("program-after", file=sys.stderr)'`
	allowed := sb + ` run %s --allow tcp:127.0.0.1:1 -- python3 -c 'import socket; socket.socket().connect_ex(("127.0.0.1", 1))'`
	pty := func(env []string, cmd string) string {
		t.Helper()
		typescript := filepath.Join(t.TempDir(), "typescript")
		r := run(t, "env", append(env, "script", "-qec", cmd, typescript)...)
		b, _ := os.ReadFile(typescript)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, b)
		}
		return string(b)
	}
	sf := func(f, flags string) string { return strings.Replace(f, "%s", flags, 1) }
	if out := pty(nil, sf(denied, "")); ansi.MatchString(out) || !regexp.MustCompile(`(?m)^tcp:10\.9\.9\.9:80\s+1\s+deny\s+EACCES`).MatchString(strings.ReplaceAll(out, "\r", "")) ||
		!strings.Contains(out, `msg="connect denied"`) {
		t.Errorf("denied, default: want a plain warning and the summary table, got %q", out)
	}
	// The warning comes before what the program says after the denial.
	// (LastIndex: the typescript's header quotes the command.)
	out := pty(nil, sf(denied, ""))
	if d := strings.Index(out, "connect denied"); d < 0 || d > strings.LastIndex(out, "program-after") {
		t.Errorf("the warning follows the program's own output: %q", out)
	}
	if out := pty(nil, sf(allowed, "")); strings.Contains(out, "DESTINATION") || strings.Contains(out, "level=") {
		t.Errorf("allowed, default: want nothing from the sandbox, got %q", out)
	}
	if out := pty(nil, sf(denied, "--color auto")); !ansi.MatchString(out) {
		t.Errorf("--color auto on a terminal: no colour in %q", out)
	}
	if out := pty([]string{"NO_COLOR=1"}, sf(denied, "--color auto")); ansi.MatchString(out) {
		t.Errorf("NO_COLOR=1 --color auto: colour in %q", out)
	}
}
