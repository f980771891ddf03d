package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

func TestMain(m *testing.M) { os.Exit(nettest.Main(m)) }

// sandbox returns the sandbox binary, built once ($SANDBOX_BIN overrides).
func sandbox(t *testing.T) string { return nettest.BuildSandbox(t) }

// cc compiles a C file from testdata at test time.
func cc(t *testing.T, name string) string {
	return nettest.CompileC(t, filepath.Join("testdata", name), false)
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs a command to completion (at most a minute). A sandbox killed by
// a signal shows as 128+N, as a shell would report it.
func run(t *testing.T, name string, args ...string) result {
	t.Helper()
	r := nettest.Run(time.Minute, append([]string{name}, args...)...)
	if r.ExitCode == -1 && r.Signal == 0 {
		t.Fatalf("%v", r)
	}
	code := r.ExitCode
	if r.Signal != 0 {
		code = 128 + r.Signal
	}
	return result{r.Stdout, r.Stderr, code}
}

func requireRoot(t *testing.T) { nettest.RequireRoot(t) }
