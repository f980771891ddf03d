package verdicts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sandbox/tests/internal/nettest"
)

// Unix verdicts mean what a real Unix socket can do. refuse is a socket
// file nobody listens on; timeout is a listener whose backlog is full (for
// datagrams, a receiver whose queue is full). The probe runs natively
// against each twin and sandboxed against a live listener under the
// verdict, for non-blocking sockets, SO_SNDTIMEO and a blocking connect
// interrupted by a signal; the outputs must be identical.
func TestUnixVerdictsMatchTheirTwins(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	probe := nettest.CompileC(t, filepath.Join("testdata", "unixverdict.c"), false)
	dir := t.TempDir()
	types := map[string]int{"stream": unix.SOCK_STREAM, "seqpacket": unix.SOCK_SEQPACKET, "dgram": unix.SOCK_DGRAM}
	for tname, typ := range types {
		live := filepath.Join(dir, tname+"-live")
		listenUnix(t, typ, live, 128)
		stale := filepath.Join(dir, tname+"-stale")
		unix.Close(bindUnix(t, typ, stale)) // the file stays, nobody listens
		busy := filepath.Join(dir, tname+"-busy")
		if typ == unix.SOCK_DGRAM {
			fillQueue(t, bindUnix(t, typ, busy), busy)
		} else {
			listenUnix(t, typ, busy, 0)
			c, _ := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK, 0)
			if err := unix.Connect(c, &unix.SockaddrUnix{Name: busy}); err != nil {
				t.Fatalf("fill the backlog: %v", err)
			}
			t.Cleanup(func() { unix.Close(c) })
		}
		for _, tw := range []struct{ verdict, twin string }{{"--refuse", stale}, {"--timeout", busy}} {
			for _, mode := range []string{"nonblock", "sndtimeo", "alarm"} {
				name := tname + "/" + strings.TrimPrefix(tw.verdict, "--") + "/" + mode
				t.Run(name, func(t *testing.T) {
					native := nettest.Run(20*time.Second, probe, mode, tname, tw.twin)
					boxed := nettest.Run(20*time.Second, sb, "run", "--log-level", "error", tw.verdict, "unix:"+live, "--", probe, mode, tname, live)
					if native.Err != nil || boxed.Err != nil || native.ExitCode != 0 {
						t.Fatalf("native %v; sandboxed %v", native, boxed)
					}
					if native.Stdout != boxed.Stdout {
						t.Errorf("the verdict differs from its twin\n--- twin (native)\n%s--- verdict (sandboxed)\n%s", native.Stdout, boxed.Stdout)
					}
					if !strings.Contains(native.Stdout, "connect again:") {
						t.Errorf("probe output incomplete: %q", native.Stdout)
					}
				})
			}
		}
	}
}

// Verdicts with no Unix twin are refused when the policy loads, with the
// flag, or the file's line and column.
func TestUnixVerdictsWithoutTwinAreRefused(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	for _, c := range []struct{ flag, want string }{
		{"--unreachable=unix:/run/x.sock", "never fails with ENETUNREACH"},
		{"--unreachable=unix:@name=host", "never fails with ENETUNREACH"},
		{"--timeout=unix:/run/x.sock=5s", "never times out"},
		{"--unreachable=unix:*", "never fails with ENETUNREACH"},
	} {
		r := nettest.Run(time.Minute, sb, "run", c.flag, "--", "true")
		if r.ExitCode != 125 || !strings.Contains(r.Stderr, c.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want 125 and one line saying %q", c.flag, r.ExitCode, r.Stderr, c.want)
		}
	}
	pf := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(pf, []byte("rules:\n  - unreachable: [10.0.0.0/8, 'unix:@db']\n  - refuse: unix:/run/y\n    after: 1s\n"), 0o644)
	r := nettest.Run(time.Minute, sb, "policy", "check", pf)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, pf+":2:31: unix:@db: a Unix connect never fails") ||
		!strings.Contains(r.Stderr, pf+":3:13: unix:/run/y: a Unix connect to a socket nobody listens on is refused at once") {
		t.Errorf("policy check: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	// A timeout without a duration is the full-backlog twin: accepted.
	if r := nettest.Run(time.Minute, sb, "run", "--timeout", "unix:/run/x.sock", "--", "true"); r.ExitCode != 0 {
		t.Errorf("--timeout unix:PATH: exit %d, %q", r.ExitCode, r.Stderr)
	}
}

func bindUnix(t *testing.T, typ int, path string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	return fd
}

func listenUnix(t *testing.T, typ int, path string, backlog int) {
	t.Helper()
	fd := bindUnix(t, typ, path)
	if typ != unix.SOCK_DGRAM {
		if err := unix.Listen(fd, backlog); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { unix.Close(fd) })
}

// fillQueue sends datagrams to the receiver at path until its queue is
// full: until a fresh sender cannot send either.
func fillQueue(t *testing.T, recv int, path string) {
	t.Cleanup(func() { unix.Close(recv) })
	for i := 0; i < 256; i++ {
		c, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		t.Cleanup(func() { unix.Close(c) })
		if err := unix.Connect(c, &unix.SockaddrUnix{Name: path}); err != nil {
			t.Fatal(err)
		}
		sent := 0
		for ; ; sent++ {
			if _, err := unix.Write(c, []byte{0}); err != nil {
				break
			}
		}
		if sent == 0 {
			return
		}
	}
	t.Fatal("the queue never filled")
}
