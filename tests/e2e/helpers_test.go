package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce  sync.Once
	sandboxBin string
	buildErr   error
)

// sandbox returns the path of a freshly built sandbox binary ($SANDBOX_BIN
// overrides). A build failure fails the test: it never skips.
func sandbox(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("SANDBOX_BIN"); p != "" {
			sandboxBin = p
			return
		}
		dir, err := os.MkdirTemp("", "sandbox-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		sandboxBin = filepath.Join(dir, "sandbox")
		out, err := exec.Command("go", "build", "-o", sandboxBin, "sandbox/cmd/sandbox").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build sandbox: %v", buildErr)
	}
	return sandboxBin
}

// cc compiles a C file from testdata at test time.
func cc(t *testing.T, name string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(name, ".c"))
	args := append([]string{"-O1", "-Wall", "-pthread", "-o", out, filepath.Join("testdata", name)}, extra...)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", name, err, b)
	}
	return out
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs a command to completion (at most a minute) and returns its
// output and exit status.
func run(t *testing.T, stdin string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			code = 128 + int(ws.Signal()) // the sandbox itself was killed
		}
	case err != nil:
		t.Fatalf("%s: %v", name, err)
	}
	return result{out.String(), errb.String(), code}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, credentials); CI runs as root")
	}
}
