package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Rule syntax that would silently match nothing stops the sandbox before
// PROGRAM runs, with one line that names the fix.
func TestRuleSyntaxThatCannotMatch(t *testing.T) {
	sb := sandbox(t)
	dir := t.TempDir()
	cases := []struct {
		flag, want string
	}{
		{"--allow=::1:8080", "write [::1]:8080"},
		{"--allow=unix:" + dir, "for the sockets in it write unix:" + dir + "/*"},
		{"--deny=unix:" + dir + "/", "write unix:" + dir + "/*"},
	}
	for _, c := range cases {
		marker := filepath.Join(t.TempDir(), "ran")
		r := run(t, sb, "run", c.flag, "--", "touch", marker)
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("%s: PROGRAM ran", c.flag)
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 125 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 125 and one line containing %q", c.flag, r.code, r.stderr, c.want)
		}
	}
	// In a policy file, the error has the file's position.
	pf := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(pf, []byte("rules:\n  - allow: unix:"+dir+"\n"), 0o644)
	r := run(t, sb, "policy", "check", pf)
	if r.code == 0 || !strings.Contains(r.stderr, pf+":2:12: ") || !strings.Contains(r.stderr, dir+"/*") {
		t.Errorf("policy check: exit %d, stderr %q", r.code, r.stderr)
	}
}

// The brief's broken file: policy check names line 3 and the column, quotes
// the line and puts a caret under the problem.
func TestPolicyCheckPointsAtTheSyntaxError(t *testing.T) {
	sb := sandbox(t)
	pf := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(pf, []byte("version: 1\nrules:\n  - {{{ broken\n"), 0o644)
	r := run(t, sb, "policy", "check", pf)
	want := "sandbox: " + pf + ":3:6: expected valid YAML: could not find flow map content\n" +
		"    3 |   - {{{ broken\n" +
		"      |      ^\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}
}
