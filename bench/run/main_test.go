package main

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseModesAndPlacements(t *testing.T) {
	m, err := parseModes("strace,sandbox,strace")
	if err != nil || len(m) != 3 || m[0] != modeNative || m[1] != modeStrace || m[2] != modeSandbox {
		t.Fatalf("parseModes = %v, %v", m, err)
	}
	if _, err := parseModes("native,bogus"); err == nil {
		t.Fatal("parseModes accepted an unknown mode")
	}
	p, err := parsePlacements("unpinned,pinned", "1")
	if err != nil || len(p) != 2 || p[0].CPUs != "" || p[1].CPUs != "1" || len(p[1].prefix()) != 3 {
		t.Fatalf("parsePlacements = %v, %v", p, err)
	}
	if _, err := parsePlacements("pinned", ""); err == nil {
		t.Fatal("parsePlacements accepted an empty CPU list")
	}
}

func TestRotate(t *testing.T) {
	got := rotate([]string{"a", "b", "c"}, 4)
	if got[0] != "b" || got[1] != "c" || got[2] != "a" {
		t.Fatalf("rotate = %v", got)
	}
}

// TestPrograms compiles the C programs and runs each natively for a few
// iterations, so CI catches a broken benchmark before anyone runs `make bench`.
func TestPrograms(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		src, name string
		args      []string
	}{
		{"tcp_connect.c", "tcp_connect", nil},
		{"tcp_connect.c", "tcp_connect_inline", []string{"inline"}},
		{"udp_connect.c", "udp_connect", nil},
		{"getpid.c", "getpid", nil},
	} {
		bin := filepath.Join(dir, tc.name)
		if out, err := exec.Command(cc, "-O2", "-Wall", "-Werror", "-pthread", "-o", bin, filepath.Join(root, "bench", "c", tc.src)).CombinedOutput(); err != nil {
			t.Fatalf("compiling %s: %v\n%s", tc.src, err, out)
		}
		argv := append([]string{bin, strconv.Itoa(50)}, tc.args...)
		ns, err := measure(argv, tc.name, 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if ns <= 0 {
			t.Errorf("%s: %v ns/op", tc.name, ns)
		}
		t.Logf("%s: %.1f ns/op", tc.name, ns)
	}
}
