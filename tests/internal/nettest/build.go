package nettest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Builds are shared by all tests of a test binary: each program is built
// once, into one temporary directory that Main removes.
var builds struct {
	sync.Mutex
	dir  string
	done map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests and then removes what they built. Use it from
// TestMain: os.Exit(nettest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	return code
}

// cached builds key once per test binary with produce, which writes the
// program to the path it is given.
func cached(t testing.TB, key, name string, produce func(out string) error) string {
	t.Helper()
	builds.Lock()
	if builds.done == nil {
		builds.done = map[string]*build{}
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "sbxt-build-")
		if err != nil {
			builds.Unlock()
			t.Fatal(err)
		}
		builds.dir = dir
	}
	b := builds.done[key]
	if b == nil {
		b = &build{path: filepath.Join(builds.dir, fmt.Sprintf("%d-%s", len(builds.done), name))}
		builds.done[key] = b
	}
	builds.Unlock()
	b.once.Do(func() { b.err = produce(b.path) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// ModuleRoot returns the directory of the go.mod above the working
// directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// GoBuild builds the package pkg (a path relative to the module root, such
// as "./cmd/sandbox") once per test binary and returns the binary's path.
func GoBuild(t testing.TB, pkg string) string {
	t.Helper()
	root := ModuleRoot(t)
	return cached(t, "go:"+pkg, filepath.Base(pkg), func(out string) error {
		goTool, err := exec.LookPath("go")
		if err != nil {
			return fmt.Errorf("building %s: %v", pkg, err)
		}
		r := Run(5*time.Minute, goTool, "-C", root, "build", "-o", out, pkg)
		if r.Err != nil {
			return fmt.Errorf("building %s: %v", pkg, r)
		}
		return nil
	})
}

// BuildSandbox returns the sandbox binary: $SANDBOX_BIN when set, otherwise
// ./cmd/sandbox built once per test binary. A failed build fails the test.
func BuildSandbox(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SANDBOX_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(abs); err != nil {
			t.Fatalf("SANDBOX_BIN: %v", err)
		}
		return abs
	}
	return GoBuild(t, "./cmd/sandbox")
}

// CFlags are the flags every C program is compiled with.
var CFlags = []string{"-O1", "-Wall", "-pthread"}

// CompileC compiles the C file src (with CFlags, -static when static is
// set, then extra) once per test binary and returns the binary's path.
// Warnings are logged.
func CompileC(t testing.TB, src string, static bool, extra ...string) string {
	t.Helper()
	return compileWith(t, "gcc", src, static, extra...)
}

// CompileMusl is CompileC with musl's libc (musl-gcc, Debian's musl-tools),
// always static: programs whose resolver and socket calls are musl's, as
// in Alpine images.
func CompileMusl(t testing.TB, src string, extra ...string) string {
	t.Helper()
	return compileWith(t, "musl-gcc", src, true, extra...)
}

func compileWith(t testing.TB, cc, src string, static bool, extra ...string) string {
	t.Helper()
	abs, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string(nil), CFlags...)
	if static {
		args = append(args, "-static")
	}
	args = append(args, extra...)
	name := strings.TrimSuffix(filepath.Base(src), ".c")
	if static {
		name += "-static"
	}
	if cc != "gcc" {
		name += "-" + cc
	}
	var warnings string
	path := cached(t, cc+":"+abs+"\x00"+strings.Join(args, "\x00"), name, func(out string) error {
		gcc, err := exec.LookPath(cc)
		if err != nil {
			return fmt.Errorf("compiling %s: %v", src, err)
		}
		r := Run(2*time.Minute, append(append([]string{gcc}, args...), "-o", out, abs)...)
		if r.Err != nil {
			return fmt.Errorf("compiling %s: %v", src, r)
		}
		warnings = r.Stderr
		return nil
	})
	if warnings != "" {
		t.Logf("compiling %s:\n%s", src, warnings)
	}
	return path
}
