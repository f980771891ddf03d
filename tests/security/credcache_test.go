package security

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// The supervisor remembers a caller's credentials per process (credcache.go),
// tied to the process by a pidfd. A root child connects to a socket only
// root may reach and exits; a nobody process then forks until a child gets
// the same pid, and that child connects: it must be refused, as natively,
// and nothing of its may arrive. The control makes the socket reachable for
// nobody, and the reused pid's connect must then arrive.
func TestCallerCacheSurvivesNoPidReuse(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "pidreuse.c"), false)
	n := nettest.NewNetns(t)
	for _, pol := range []string{"attack", "control"} {
		dir := selfDir(t)
		sockDir := filepath.Join(dir, "root-only")
		os.Mkdir(sockDir, 0o700)
		if pol == "control" {
			os.Chmod(sockDir, 0o755)
		}
		path := filepath.Join(sockDir, "s")
		_, arrived := unixListener(t, n.Name, path)
		r := n.Run(5*time.Minute, sb, "run", "--log-level", "error", "--allow-all", "--", prog, path)
		if r.ExitCode != 0 {
			t.Fatalf("%s: %v", pol, r)
		}
		time.Sleep(300 * time.Millisecond) // let the counter drain
		out := strings.TrimSpace(r.Stdout)
		t.Logf("%s: %s; %d arrived", pol, strings.ReplaceAll(out, "\n", "; "), arrived.Load())
		if !strings.Contains(out, "first=ok") {
			t.Fatalf("%s: the root child did not connect: %s", pol, out)
		}
		if strings.Contains(out, "reused=none") {
			t.Skipf("the pid did not come back in 200,000 forks: %s", out)
		}
		switch {
		case pol == "attack" && (arrived.Load() != 1 || !strings.Contains(out, "Permission denied")):
			t.Errorf("a nobody process with a root process's reused pid reached the root-only socket: %s, %d arrived", out, arrived.Load())
		case pol == "control" && arrived.Load() != 2:
			t.Errorf("control: the reused pid's connect did not arrive: %s, %d arrived", out, arrived.Load())
		}
	}
}

// A single-threaded root process that drops to nobody is remembered again
// after the change (credCache's settle): every connect after the drop must
// be checked as nobody. The program's own listener sits in a directory
// only root may search; after a warm-up connect as root, the child drops
// and connects 30 times: none may arrive (natively EACCES), under the
// default policy (the tree's own socket) and under a rule naming it. The
// control keeps root: all 30 arrive.
func TestDroppedPrivilegeIsRememberedAsDropped(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "dropcache.c"), false)
	for _, policy := range []string{"default", "rules"} {
		for _, mode := range []string{"drop", "keep"} {
			t.Run(policy+"/"+mode, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "root-only")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, "s")
				argv := []string{sb, "run", "--log-level", "error"}
				if policy == "rules" {
					argv = append(argv, "--allow", "unix:"+path)
				}
				for _, run := range [][]string{{prog}, append(append(argv, "--"), prog)} {
					r := nettest.Run(2*time.Minute, append(run, path, "30", mode)...)
					out := strings.TrimSpace(r.Stdout)
					want := "child ok=0 eacces=30 other=0\narrived=1"
					if mode == "keep" {
						want = "child ok=30 eacces=0 other=0\narrived=31"
					}
					if r.ExitCode != 0 || out != want {
						t.Errorf("%s: %q (exit %d), want %q\n%v", filepath.Base(run[0]), out, r.ExitCode, want, r)
					}
				}
			})
		}
	}
}
