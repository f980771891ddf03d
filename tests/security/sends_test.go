package security

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// tcpCounter accepts on loopback and counts connections and bytes received.
func tcpCounter(t *testing.T) (port int, conns, bytes *atomic.Int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns, bytes = new(atomic.Int64), new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					bytes.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, conns, bytes
}

// unixDgramCounter counts datagrams received on a Unix socket at path.
func unixDgramCounter(t *testing.T, path string) *atomic.Int64 {
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n := new(atomic.Int64)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return n
}

// results parses "name: result" lines.
func results(out string) map[string]string {
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			got[k] = v
		}
	}
	return got
}

// Every way to reach a peer without connect(2) is decided like connect:
// TCP Fast Open (sendto and sendmsg with MSG_FASTOPEN, TCP_FASTOPEN_CONNECT
// then connect), and datagrams with an address through sendto, sendmsg and
// sendmmsg, over UDP and Unix sockets, with descriptors attached or not.
// Under a policy that denies the destinations, each attempt gets EACCES and
// nothing arrives; under --allow-all, the same program reaches all of them
// (the control that shows the test can fail).
func TestSendsWithAnAddressAreDecided(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "sends.c"), false)
	attacks := []string{"sendto_fastopen", "sendmsg_fastopen", "fastopen_connect", "sendto_udp", "sendmsg_udp",
		"sendmmsg_udp", "sendmsg_udp_connected_elsewhere", "sendto_unix_dgram", "sendmsg_unix_dgram",
		"sendmsg_unix_scm_rights"}
	for _, allow := range []bool{false, true} {
		t.Run(map[bool]string{false: "denied", true: "allow-all"}[allow], func(t *testing.T) {
			tport, conns, tbytes := tcpCounter(t)
			uport, dgrams := udpCounter(t)
			dir := t.TempDir()
			upath := filepath.Join(dir, "dgram.sock")
			udgrams := unixDgramCounter(t, upath)
			policy := []string{"--deny", fmt.Sprintf("tcp:127.0.0.1:%d", tport),
				"--deny", fmt.Sprintf("udp:127.0.0.1:%d", uport), "--deny", "unix:" + upath}
			if allow {
				policy = []string{"--allow-all"}
			}
			argv := append(append([]string{sb, "run", "--log-level", "error"}, policy...), "--",
				prog, strconv.Itoa(tport), strconv.Itoa(uport), upath)
			r := nettest.Run(time.Minute, argv...)
			if r.ExitCode != 0 {
				t.Fatalf("%v", r)
			}
			time.Sleep(300 * time.Millisecond) // let the receivers drain
			got := results(r.Stdout)
			want := "EACCES"
			if allow {
				want = "ok"
			}
			for _, a := range attacks {
				if got[a] != want {
					t.Errorf("%s: got %q, want %q", a, got[a], want)
				}
			}
			t.Logf("received: %d TCP connections (%d bytes), %d UDP datagrams, %d Unix datagrams\n%s",
				conns.Load(), tbytes.Load(), dgrams.Load(), udgrams.Load(), r.Stdout)
			if !allow && conns.Load()+dgrams.Load()+udgrams.Load() != 0 {
				t.Errorf("denied destinations were reached")
			}
			if allow && (conns.Load() != 3 || tbytes.Load() != 15 || dgrams.Load() != 5 || udgrams.Load() != 3) {
				t.Errorf("with --allow-all, want 3 connections with 15 bytes, 5 UDP and 3 Unix datagrams")
			}
		})
	}
}

// A program that makes itself non-dumpable (prctl(PR_SET_DUMPABLE, 0), as
// ssh-agent and gpg-agent do) takes away a same-user supervisor's right to
// its memory and descriptors. The choice: a root supervisor (CAP_SYS_PTRACE)
// keeps deciding as usual; an unprivileged one fails closed with EPERM, and
// logs why. Natively, as the same user, everything succeeds.
func TestNonDumpableTracee(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "sends.c"), false)
	nobody := asNobody(sb, prog)
	for _, c := range []struct {
		name   string
		prefix []string
		want   string
	}{
		{"root-supervisor", nil, "ok"},
		{"unprivileged-supervisor", nobody, "EPERM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tport, conns, _ := tcpCounter(t)
			uport, dgrams := udpCounter(t)
			args := []string{"nondumpable", strconv.Itoa(tport), strconv.Itoa(uport)}
			policy := []string{"--allow", fmt.Sprintf("tcp:127.0.0.1:%d", tport), "--allow", fmt.Sprintf("udp:127.0.0.1:%d", uport)}
			argv := append(append(append(append(c.prefix[:len(c.prefix):len(c.prefix)], sb, "run", "--log-level", "error"), policy...), "--", prog), args...)
			r := nettest.Run(time.Minute, argv...)
			native := nettest.Run(time.Minute, append(append(c.prefix[:len(c.prefix):len(c.prefix)], prog), args...)...)
			if r.ExitCode != 0 || native.ExitCode != 0 {
				t.Fatalf("sandboxed: %v\nnative: %v", r, native)
			}
			got, nat := results(r.Stdout), results(native.Stdout)
			for _, k := range []string{"nondumpable_connect", "nondumpable_sendmsg", "nondumpable_sendto"} {
				if nat[k] != "ok" {
					t.Fatalf("natively %s: %q, want ok", k, nat[k])
				}
				if got[k] != c.want {
					t.Errorf("%s: got %q, want %q", k, got[k], c.want)
				}
			}
			if c.want == "EPERM" && !strings.Contains(r.Stderr, "pidfd_getfd failed") {
				t.Errorf("the supervisor did not log why it failed closed:\n%s", r.Stderr)
			}
			time.Sleep(200 * time.Millisecond)
			// Native runs reach them once each; the sandboxed run once more
			// only when it decides.
			wantConns, wantDgrams := int64(1), int64(2)
			if c.want == "ok" {
				wantConns, wantDgrams = 2, 4
			}
			if conns.Load() != wantConns || dgrams.Load() != wantDgrams {
				t.Errorf("received %d connections and %d datagrams, want %d and %d", conns.Load(), dgrams.Load(), wantConns, wantDgrams)
			}
		})
	}
}

// A program races its own descriptor table against the supervisor: one
// thread replaces fd 100 (TCP, UDP, a pipe, nothing) while another connects
// it, then children are killed in the middle of their connects to churn
// pids. Every answer must be one Linux gives for some state of fd 100, and a
// victim process holding its own socket at fd 100 must never be connected:
// the supervisor takes descriptors from the calling thread only, and drops
// the call if its notification died.
func TestFdRaceDup2(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "fdrace.c"), false)
	port, _ := countingListener(t)
	n := "100000"
	if testing.Short() {
		n = "10000"
	}
	r := nettest.Run(5*time.Minute, sb, "run", "--log-level", "error",
		"--allow", fmt.Sprintf("tcp:127.0.0.1:%d", port), "--", prog, strconv.Itoa(port), n)
	if r.ExitCode != 0 {
		t.Fatalf("%v", r)
	}
	t.Logf("%s", r.Stdout)
	got := results(strings.ReplaceAll(r.Stdout, "=", ": "))
	if got["victim_connected"] != "no" {
		t.Errorf("the victim's socket was connected:\n%s", r.Stdout)
	}
	// Linux's answers for fd 100 in one of its states, and the policy's
	// EACCES when it holds the UDP socket (only TCP is allowed); nothing
	// else.
	first := strings.Fields(strings.SplitN(r.Stdout, "\n", 2)[0])
	for _, f := range first[1:] {
		k, _, _ := strings.Cut(f, "=")
		switch k {
		case "ok", "EBADF", "ENOTSOCK", "EISCONN", "EALREADY", "EINPROGRESS", "EACCES":
		default:
			t.Errorf("connect answered %s, which no state of fd 100 explains", f)
		}
	}
	if !strings.Contains(first[1], "ok=") || first[1] == "ok=0" {
		t.Errorf("no connect succeeded: the race was not exercised\n%s", r.Stdout)
	}
}
