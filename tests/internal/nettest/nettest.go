// Package nettest holds helpers for tests that need root: fresh network
// namespaces, commands run inside them, and programs built at test time
// (the sandbox binary, C probes, Go probes).
//
// A [Netns] is a pair of named namespaces joined by a veth pair:
//
//	Name (where programs run)        Peer
//	lo up, veth0 10.231.0.1/24  <->  veth1 10.231.0.2/24, lo up
//	         fd00:231::1/64             fd00:231::2/64
//
// The addresses exist only inside these namespaces; nothing is routed
// anywhere else.
package nettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Addresses of the test subnet.
const (
	LocalIP  = "10.231.0.1"
	PeerIP   = "10.231.0.2"
	LocalIP6 = "fd00:231::1"
	PeerIP6  = "fd00:231::2"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and veth pairs (run the tests as root)")
	}
}

// Netns is a fresh test network: see the package comment.
type Netns struct {
	Name string // the namespace programs run in
	Peer string // the namespace at the other end of the veth pair
}

// NewNetns creates a fresh Netns, removed when the test ends.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	RequireRoot(t)
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	n := &Netns{Name: "sbxt-" + hex.EncodeToString(b[:])}
	n.Peer = n.Name + "-p"
	for _, ns := range []string{n.Name, n.Peer} {
		mustRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if r := Run(10*time.Second, "ip", "netns", "del", ns); r.Err != nil {
				t.Errorf("removing netns %s: %v", ns, r)
			}
		})
	}
	for _, args := range [][]string{
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Peer, "link", "set", "lo", "up"},
		{"-n", n.Name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", n.Peer},
		{"-n", n.Name, "addr", "add", LocalIP + "/24", "dev", "veth0"},
		{"-n", n.Name, "addr", "add", LocalIP6 + "/64", "dev", "veth0", "nodad"},
		{"-n", n.Peer, "addr", "add", PeerIP + "/24", "dev", "veth1"},
		{"-n", n.Peer, "addr", "add", PeerIP6 + "/64", "dev", "veth1", "nodad"},
		{"-n", n.Name, "link", "set", "veth0", "up"},
		{"-n", n.Peer, "link", "set", "veth1", "up"},
	} {
		mustRun(t, "ip", args...)
	}
	// The connected routes appear once both ends have a carrier.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := Run(5*time.Second, "ip", "-n", n.Name, "route", "get", PeerIP)
		r6 := Run(5*time.Second, "ip", "-n", n.Name, "-6", "route", "get", PeerIP6)
		if r.Err == nil && strings.Contains(r.Stdout, "dev veth0") &&
			r6.Err == nil && strings.Contains(r6.Stdout, "dev veth0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("netns %s: no route to the peer: %v %v", n.Name, r, r6)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// Run runs argv inside the test namespace.
func (n *Netns) Run(timeout time.Duration, argv ...string) Result {
	return Run(timeout, append([]string{"ip", "netns", "exec", n.Name}, argv...)...)
}

// MustRun runs argv inside the test namespace and fails the test unless it
// exits 0.
func (n *Netns) MustRun(t testing.TB, argv ...string) Result {
	t.Helper()
	return mustRun(t, "ip", append([]string{"netns", "exec", n.Name}, argv...)...)
}

// MustRunPeer is MustRun in the peer namespace.
func (n *Netns) MustRunPeer(t testing.TB, argv ...string) Result {
	t.Helper()
	return mustRun(t, "ip", append([]string{"netns", "exec", n.Peer}, argv...)...)
}

// StartPeer starts argv in the peer namespace in the background and waits
// until it prints ready as a line on stdout. It is killed when the test
// ends.
func (n *Netns) StartPeer(t testing.TB, ready string, argv ...string) {
	t.Helper()
	startIn(t, n.Peer, ready, argv...)
}

// Start is StartPeer in the test namespace itself (a server outside the
// sandboxed tree, beside it).
func (n *Netns) Start(t testing.TB, ready string, argv ...string) {
	t.Helper()
	startIn(t, n.Name, ready, argv...)
}

func startIn(t testing.TB, ns, ready string, argv ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w := &readyWriter{ready: ready, seen: make(chan struct{})}
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q in %s: %v", argv, ns, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	select {
	case <-w.seen:
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("%q in %s exited before it was ready: %v\n%s", argv, ns, err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("%q in %s: not ready after 10s\n%s", argv, ns, stderr.String())
	}
}

// readyWriter closes seen when a line equal to ready is written. Only
// os/exec's copying goroutine writes to it.
type readyWriter struct {
	ready string
	seen  chan struct{}
	line  []byte
	done  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	for _, c := range p {
		if w.done {
			break
		}
		if c != '\n' {
			w.line = append(w.line, c)
			continue
		}
		if string(w.line) == w.ready {
			w.done = true
			close(w.seen)
		}
		w.line = w.line[:0]
	}
	return len(p), nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Result is the outcome of a command.
type Result struct {
	Argv     []string
	Stdout   string
	Stderr   string
	ExitCode int  // -1 when the command did not exit normally
	Signal   int  // the signal that killed it, or 0
	TimedOut bool // killed at the timeout
	Err      error
}

func (r Result) String() string {
	s := fmt.Sprintf("%q: exit %d", r.Argv, r.ExitCode)
	if r.TimedOut {
		s += " (timed out)"
	}
	if r.Err != nil && r.ExitCode == -1 {
		s += ": " + r.Err.Error()
	}
	if e := strings.TrimSpace(r.Stderr); e != "" {
		s += "\nstderr:\n" + e
	}
	return s
}

// Run runs argv with a timeout, capturing stdout and stderr. It runs in its
// own process group, killed as a whole at the timeout and after the command
// exits, so that no child outlives it.
func Run(timeout time.Duration, argv ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	r := Result{Argv: argv, Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1, Err: err}
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.ExitCode = 0
	case errors.As(err, &exit) && exit.Exited():
		r.ExitCode = exit.ExitCode()
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Signal = int(ws.Signal())
		}
	}
	r.TimedOut = ctx.Err() != nil
	return r
}

func mustRun(t testing.TB, name string, args ...string) Result {
	t.Helper()
	r := Run(30*time.Second, append([]string{name}, args...)...)
	if r.Err != nil {
		t.Fatal(r)
	}
	return r
}

// FailAt runs `sb run -- touch MARKER` with the sandbox's test hook
// SANDBOX_TEST_FAIL_AT=step, which makes that setup step fail, and reports
// the exit status, whether PROGRAM ran (the marker exists) and stderr.
func FailAt(t *testing.T, sb, step string) (code int, ran bool, stderr string) {
	t.Helper()
	marker := t.TempDir() + "/ran"
	cmd := exec.Command(sb, "run", "--", "touch", marker)
	cmd.Env = append(os.Environ(), "SANDBOX_TEST_FAIL_AT="+step)
	var errb strings.Builder
	cmd.Stderr = &errb
	cmd.Run()
	_, err := os.Stat(marker)
	return cmd.ProcessState.ExitCode(), err == nil, errb.String()
}
