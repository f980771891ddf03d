package conformance

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"sandbox/tests/internal/nettest"
)

// TestBlockingConnectsToAResettingServer makes 5,000 blocking connects to a
// loopback server that accepts and at once resets, natively and under the
// sandbox in the same run, unpinned and with everything on one CPU, with one
// client thread and with four, over IPv4 and IPv6. Linux returns 0 from a
// blocking connect once the handshake completed, and leaves the reset for
// the next call: the sandboxed failures must stay within native's count
// plus 0.1%.
func TestBlockingConnectsToAResettingServer(t *testing.T) {
	nettest.RequireRoot(t)
	sandbox := nettest.BuildSandbox(t)
	storm := nettest.CompileC(t, filepath.Join("testdata", "resetstorm.c"), false)
	const n = 5000
	n0 := nettest.NewNetns(t)
	for _, pin := range []bool{false, true} {
		for _, threads := range []int{1, 4} {
			for _, fam := range []string{"v4", "v6"} {
				name := fmt.Sprintf("pinned=%v/threads=%d/%s", pin, threads, fam)
				t.Run(name, func(t *testing.T) {
					args := []string{storm, fmt.Sprint(n), fmt.Sprint(threads)}
					if fam == "v6" {
						args = append(args, "v6")
					}
					var prefix []string
					if pin {
						prefix = []string{"taskset", "-c", "0"}
					}
					native := n0.Run(runTimeout, append(prefix, args...)...)
					sandboxed := n0.Run(runTimeout, append(append(prefix, sandbox, "run", "--allow-all", "--log-level", "error", "--"), args...)...)
					nf, sf := failures(t, native), failures(t, sandboxed)
					t.Logf("native: %s  sandbox: %s", strings.TrimSpace(native.Stdout), strings.TrimSpace(sandboxed.Stdout))
					if sf > nf+n/1000 {
						t.Errorf("%d of %d sandboxed blocking connects failed, native %d (allowed: native + 0.1%%)", sf, n, nf)
					}
				})
			}
		}
	}
}

func failures(t *testing.T, r nettest.Result) int {
	t.Helper()
	var total, failed, reset, other int
	if r.ExitCode != 0 {
		t.Fatalf("%v\n%s", r, r.Stdout)
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(r.Stdout), "total=%d failed=%d econnreset=%d other=%d", &total, &failed, &reset, &other); err != nil || total == 0 {
		t.Fatalf("unexpected output %q: %v", r.Stdout, err)
	}
	return failed
}
