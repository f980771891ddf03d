package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// PROGRAM inherits the signal dispositions and mask it would have had
// natively: each case runs its shell snippet with PROGRAM natively and
// under the sandbox, and the outputs must be equal.
func TestInheritedSignalsMatchNative(t *testing.T) {
	sb := sandbox(t)
	status := `grep -E '^Sig(Ign|Blk)' /proc/self/status`
	// python3 blocks SIGUSR2 and SIGALRM, then execs the rest.
	block := `python3 -c 'import os, signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGALRM}); os.execvp(sys.argv[1], sys.argv[1:])' `
	cases := []struct{ name, script string }{
		{"nohup", `nohup P ` + status + ` 2>/dev/null; cat nohup.out`},
		{"trap ignores", `trap '' TERM USR1 PIPE QUIT; P ` + status},
		{"blocked", block + `P ` + status},
		{"nothing ignored", `P ` + status},
		{"ignored SIGCHLD", `python3 -c 'import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execvp(sys.argv[1], sys.argv[1:])' P ` + status},
		// The job survives a SIGHUP under nohup, as natively.
		{"nohup survives HUP", `nohup P sleep 1 >/dev/null 2>&1 & sleep 0.3; kill -HUP $!; wait $!; echo status=$?`},
		// A non-interactive shell's background job ignores SIGINT and SIGQUIT.
		{"background ignores INT", `P sleep 1 & sleep 0.3; kill -INT $!; wait $!; echo status=$?`},
		{"background ignores QUIT", `P sleep 1 & sleep 0.3; kill -QUIT $!; wait $!; echo status=$?`},
		// A handled, not ignored, signal still arrives.
		{"TERM still kills", `P sleep 5 & sleep 0.3; kill -TERM $!; wait $!; echo status=$?`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := map[string]string{}
			for mode, prefix := range map[string]string{"native": "", "sandboxed": sb + " run --log-level error -- "} {
				dir := t.TempDir()
				script := "cd " + dir + "; " + strings.ReplaceAll(c.script, "P ", prefix)
				r := run(t, "bash", "-c", script)
				out[mode] = r.stdout + "exit=" + itoa(r.code)
			}
			if out["native"] != out["sandboxed"] {
				t.Errorf("native:\n%s\nsandboxed:\n%s", out["native"], out["sandboxed"])
			}
			if !regexp.MustCompile(`Sig|status=`).MatchString(out["native"]) {
				t.Errorf("the case shows nothing: %q", out["native"])
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Processes PROGRAM leaves running are killed, and a warning says how many,
// which, and the flag that keeps them.
func TestLeftoversAreReported(t *testing.T) {
	sb := sandbox(t)
	// The shell exits only once both children have exec'ed sleep: a child
	// still between fork and exec is listed as the shell it still is.
	r := run(t, sb, "run", "--", "sh", "-c", `sleep 101 & a=$!; sleep 102 & b=$!
for p in $a $b; do until [ "$(cat /proc/$p/comm)" = sleep ]; do :; done; done; exit 0`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one warning line, got %q", r.stderr)
	}
	w := lines[0]
	for _, want := range []string{"level=warning", "killed=2", "sleep 101", "sleep 102", "--wait-all"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q lacks %q", w, want)
		}
	}
	if !regexp.MustCompile(`processes="[0-9]+ sleep 10[12], [0-9]+ sleep 10[12]"`).MatchString(w) {
		t.Errorf("warning %q does not list pid and command of each", w)
	}
	// Nothing was left, nothing is said; --wait-all keeps them, silently.
	if r := run(t, sb, "run", "--", "true"); r.stderr != "" {
		t.Errorf("stderr %q for a run that left nothing", r.stderr)
	}
	if r := run(t, sb, "run", "--wait-all", "--", "sh", "-c", "sleep 0.2 & exit 0"); r.stderr != "" || r.code != 0 {
		t.Errorf("--wait-all: exit %d, stderr %q", r.code, r.stderr)
	}
}
