package security

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sandbox/tests/internal/nettest"
)

// The confused deputy: the supervisor performs connects and sends for the
// program, and must perform them with exactly the program's credentials
// and capabilities as seen from the supervisor's user namespace. Every test
// here runs a root supervisor (the gosu/su-exec setup) with a program as
// nobody, compares with the same program run natively, counts what arrived,
// and runs a control: the same program as root, which must succeed.

var (
	usernsFlagOnce sync.Once
	usernsFlag     bool
)

// sandboxRun is the sandbox command line up to "--". The layers that refuse
// new user namespaces and drop a root program's capabilities are lifted
// (--allow-userns, --keep-caps), so that these tests exercise the
// supervisor itself: a root program's controls keep the privilege they
// have natively, and only the deputy stands between a nobody program and
// the supervisor's.
func sandboxRun(t *testing.T, sb string, policy ...string) []string {
	usernsFlagOnce.Do(func() {
		r := nettest.Run(time.Minute, sb, "run", "--help")
		usernsFlag = strings.Contains(r.Stdout+r.Stderr, "--allow-userns")
	})
	argv := []string{sb, "run", "--log-level", "error"}
	if usernsFlag {
		argv = append(argv, "--allow-userns", "--keep-caps")
	}
	return append(append(argv, policy...), "--")
}

// deputyProgram builds the sandbox and testdata/deputy.c, and returns them
// with the prefix that runs a command as nobody.
func deputyProgram(t *testing.T) (sb, prog string, nobody []string) {
	t.Helper()
	nettest.RequireRoot(t)
	sb = nettest.BuildSandbox(t)
	prog = nettest.CompileC(t, filepath.Join("testdata", "deputy.c"), false)
	return sb, prog, asNobody(sb, prog)
}

func mustResults(t *testing.T, r nettest.Result) map[string]string {
	t.Helper()
	if r.ExitCode != 0 {
		t.Fatalf("%v", r)
	}
	return results(r.Stdout)
}

// A netlink message with an explicit destination is checked only against
// the sending task's capabilities (__netlink_ns_capable skips the socket
// file's opener with NETLINK_SKB_DST): performed by a root supervisor, it
// would add addresses and routes for a program running as nobody.
// RTM_NEWADDR and RTM_NEWROUTE through sendto, sendmsg and sendmmsg to
// sockaddr_nl{0} and on a connected socket: EPERM as natively, and nothing appears.
func TestDeputyNetlink(t *testing.T) {
	sb, prog, nobody := deputyProgram(t)
	keys := []string{"addr_sendto", "addr_sendmsg", "addr_sendmmsg", "addr_connect", "route_sendto", "route_sendmsg", "route_sendmmsg", "route_connect"}
	count := func(n *nettest.Netns) (addrs, routes int) {
		a := nettest.Run(time.Minute, "ip", "-n", n.Name, "-4", "addr", "show", "dev", "lo")
		r := nettest.Run(time.Minute, "ip", "-n", n.Name, "-4", "route", "show", "table", "main")
		return strings.Count(a.Stdout, "inet 10.99."), strings.Count(r.Stdout, "10.98.")
	}
	native := nettest.NewNetns(t)
	nat := mustResults(t, native.Run(time.Minute, append(nobody, prog, "netlink")...))
	if a, r := count(native); a != 0 || r != 0 {
		t.Fatalf("natively as nobody: %d addresses and %d routes appeared", a, r)
	}
	for _, k := range keys {
		if nat[k] != "EPERM" {
			t.Fatalf("natively as nobody %s: %q, want EPERM", k, nat[k])
		}
	}
	for _, policy := range [][]string{nil, {"--allow-all"}} {
		for _, who := range []string{"nobody", "root"} {
			t.Run(fmt.Sprintf("policy=%v/%s", policy, who), func(t *testing.T) {
				n := nettest.NewNetns(t)
				argv := sandboxRun(t, sb, policy...)
				want, wantN := "EPERM", 0
				if who == "nobody" {
					argv = append(argv, nobody...)
				} else {
					want, wantN = "ok", 4 // the control: root may
				}
				got := mustResults(t, n.Run(time.Minute, append(argv, prog, "netlink")...))
				for _, k := range keys {
					if got[k] != want {
						t.Errorf("%s: %q, want %q", k, got[k], want)
					}
				}
				if a, r := count(n); a != wantN || r != wantN {
					t.Errorf("%d addresses and %d routes appeared, want %d each", a, r, wantN)
				}
			})
		}
	}
}

// credReceiver listens on a Unix datagram socket at path with SO_PASSCRED
// and records the credentials of every datagram.
func credReceiver(t *testing.T, path string) func() []unix.Ucred {
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	raw, _ := c.SyscallConn()
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
	var mu sync.Mutex
	var got []unix.Ucred
	go func() {
		buf, oob := make([]byte, 64), make([]byte, 256)
		for {
			_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			u := unix.Ucred{Pid: -1}
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) > 0 {
				if cr, err := unix.ParseUnixCredentials(&msgs[0]); err == nil {
					u = *cr
				}
			}
			mu.Lock()
			got = append(got, u)
			mu.Unlock()
		}
	}()
	return func() []unix.Ucred {
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return append([]unix.Ucred(nil), got...)
	}
}

// Forged SCM_CREDENTIALS must be refused as scm_check_creds refuses them
// for the program (EPERM, or EINVAL for an unmapped id), whatever the
// supervisor could claim itself, and nothing may arrive: through Unix
// socketpairs of the three types to a receiver with SO_PASSCRED (the
// default policy), and to a named socket outside (under a rule). The
// control: the program's true credentials arrive, and as root everything
// answers as natively.
func TestDeputyForgedCredentials(t *testing.T) {
	sb, prog, nobody := deputyProgram(t)
	dir := t.TempDir()
	asNobody(filepath.Join(dir, "x"))
	for _, who := range []string{"nobody", "root"} {
		for _, named := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/named=%v", who, named), func(t *testing.T) {
				prefix := []string{}
				if who == "nobody" {
					prefix = nobody
				}
				args := []string{prog, "creds"}
				var policy []string
				var received func() []unix.Ucred
				path := filepath.Join(dir, fmt.Sprintf("%s-%v.sock", who, named))
				if named {
					received = credReceiver(t, path)
					os.Chmod(path, 0o666)
					args = append(args, path)
					policy = []string{"--allow", "unix:" + path}
				}
				nat := mustResults(t, nettest.Run(time.Minute, append(prefix, args...)...))
				if named {
					if n := len(received()); n != 1 && who == "nobody" {
						t.Fatalf("natively %d datagrams arrived, want 1", n)
					}
					// Start again: only the sandboxed run counts now.
					os.Remove(path)
					received = credReceiver(t, path)
					os.Chmod(path, 0o666)
				}
				got := mustResults(t, nettest.Run(time.Minute, append(append(sandboxRun(t, sb, policy...), prefix...), args...)...))
				for k, v := range nat {
					if k == "pid" {
						continue
					}
					if got[k] != v {
						t.Errorf("%s: sandboxed %q, natively %q", k, got[k], v)
					}
				}
				if who == "nobody" {
					for k, v := range nat {
						if strings.HasSuffix(k, "_forged") && v != "arrived=0 truthful=0" ||
							strings.HasSuffix(k, "_true_received") && v != "arrived=1 truthful=1" {
							t.Fatalf("natively %s: %q", k, v)
						}
					}
				}
				if !named {
					return
				}
				creds := received()
				pid, _ := strconv.Atoi(got["pid"])
				wantN, uid := 1, uint32(65534)
				if who == "root" {
					wantN, uid = 3, 0 // root may name init, and itself as root
				}
				if len(creds) != wantN {
					t.Fatalf("%d datagrams arrived at the named socket, want %d: %+v", len(creds), wantN, creds)
				}
				last := creds[len(creds)-1]
				if last.Pid != int32(pid) || last.Uid != uid || last.Gid != uid {
					t.Errorf("the true credentials arrived as %+v, want pid %d uid and gid %d", last, pid, uid)
				}
			})
		}
	}
}

// Control messages the kernel allows only to CAP_NET_ADMIN or CAP_NET_RAW
// (__sock_cmsg_send: SO_MARK, SO_PRIORITY above 6) must fail with EPERM
// for a program as nobody, as natively, and nothing arrive: at the
// program's own UDP socket over IPv4 and IPv6 (the default policy) and at
// one outside (under a rule). Controls: IP_TTL and IPV6_HOPLIMIT, which
// anyone may send, arrive; as root everything is sent.
func TestDeputyPrivilegedControlMessages(t *testing.T) {
	sb, prog, nobody := deputyProgram(t)
	keys := []string{"so_mark", "so_priority7"}
	native := map[string]map[string]string{
		"nobody": mustResults(t, nettest.Run(time.Minute, append(nobody, prog, "privcmsg", "9")...)),
		"root":   mustResults(t, nettest.Run(time.Minute, prog, "privcmsg", "9")),
	}
	nat := native["nobody"]
	for _, k := range keys {
		if nat["self_"+k] != "EPERM" {
			t.Fatalf("natively as nobody self_%s: %q, want EPERM", k, nat["self_"+k])
		}
	}
	for _, rules := range []bool{false, true} {
		for _, who := range []string{"nobody", "root"} {
			t.Run(fmt.Sprintf("rules=%v/%s", rules, who), func(t *testing.T) {
				port, arrived := udpCounter(t)
				var policy []string
				if rules {
					policy = []string{"--allow", fmt.Sprintf("udp:127.0.0.1:%d", port)}
				}
				argv := sandboxRun(t, sb, policy...)
				want, wantSelf, wantExt := "EPERM", "1", int64(0)
				if who == "nobody" {
					argv = append(argv, nobody...)
				} else {
					want, wantSelf = "ok", "3"
					if rules {
						wantExt = 2
					}
				}
				got := mustResults(t, nettest.Run(time.Minute, append(argv, prog, "privcmsg", strconv.Itoa(port))...))
				for k, v := range native[who] {
					if strings.HasPrefix(k, "self") && got[k] != v {
						t.Errorf("%s: sandboxed %q, natively %q", k, got[k], v)
					}
				}
				if got["self6"] == "" && got["self6_arrived"] != wantSelf {
					t.Errorf("%s datagrams arrived at the program's own IPv6 socket, want %s", got["self6_arrived"], wantSelf)
				}
				for _, k := range keys {
					if got["self_"+k] != want {
						t.Errorf("self_%s: %q, want %q", k, got["self_"+k], want)
					}
					if rules && got["ext_"+k] != want {
						t.Errorf("ext_%s: %q, want %q", k, got["ext_"+k], want)
					}
				}
				if got["self_arrived"] != wantSelf {
					t.Errorf("%s datagrams arrived at the program's own socket, want %s", got["self_arrived"], wantSelf)
				}
				time.Sleep(200 * time.Millisecond)
				if arrived.Load() != wantExt {
					t.Errorf("%d datagrams arrived outside, want %d", arrived.Load(), wantExt)
				}
			})
		}
	}
}

// rootOnlySockets binds a 0600 root-owned Unix stream listener and datagram
// socket in dir (0755) and counts what reaches them.
func rootOnlySockets(t *testing.T, dir string) (stream, dgram string, accepted, received *atomic.Int64) {
	stream, dgram = filepath.Join(dir, "stream.sock"), filepath.Join(dir, "dgram.sock")
	l, err := net.Listen("unix", stream)
	if err != nil {
		t.Fatal(err)
	}
	accepted = countAccepts(t, l)
	received = unixDgramCounter(t, dgram)
	for _, p := range []string{stream, dgram} {
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return stream, dgram, accepted, received
}

// A program that creates a user namespace holds every capability in it,
// and none in the supervisor's: a nobody program that maps itself to root
// in a new user namespace must still get EACCES from a 0600 root-only Unix
// socket (a docker.sock), for connect, sendto and sendmsg, as natively,
// and reach nothing. Under the default policy the program's own root
// parent binds the sockets; under a rule the test does. The control: a
// root program doing the same reaches them.
func TestDeputyUserNamespaceCapabilities(t *testing.T) {
	sb, prog, nobody := deputyProgram(t)
	dir := t.TempDir()
	asNobody(filepath.Join(dir, "x"))
	os.Chmod(dir, 0o755)
	keys := []string{"connect", "sendto", "sendmsg"}
	s, d := filepath.Join(dir, "own-stream.sock"), filepath.Join(dir, "own-dgram.sock")
	nat := mustResults(t, nettest.Run(time.Minute, prog, "userns", s, d, "1", "1"))
	if _, ok := nat["unshare"]; ok {
		t.Skipf("natively, unshare(CLONE_NEWUSER) as nobody: %s", nat["unshare"])
	}
	for _, k := range keys {
		if nat[k] != "EACCES" {
			t.Fatalf("natively %s: %q, want EACCES", k, nat[k])
		}
	}
	t.Run("default", func(t *testing.T) {
		for _, c := range []struct {
			drop, want, accepted, received string
		}{{"1", "EACCES", "0", "0"}, {"0", "ok", "1", "2"}} {
			got := mustResults(t, nettest.Run(time.Minute, append(sandboxRun(t, sb), prog, "userns", s, d, "1", c.drop)...))
			for _, k := range keys {
				if got[k] != c.want {
					t.Errorf("drop=%s %s: %q, want %q", c.drop, k, got[k], c.want)
				}
			}
			if got["self_accepted"] != c.accepted || got["self_received"] != c.received {
				t.Errorf("drop=%s: %s connections and %s datagrams arrived, want %s and %s",
					c.drop, got["self_accepted"], got["self_received"], c.accepted, c.received)
			}
		}
	})
	// Root of its own user namespace, and so CAP_NET_ADMIN there: not
	// over the network namespace the initial one owns. (TestDeputyNetlink
	// holds the control: a root program without a namespace succeeds.)
	t.Run("netlink", func(t *testing.T) {
		for _, who := range []string{"nobody", "root"} {
			prefix := []string{}
			if who == "nobody" {
				prefix = nobody
			}
			nat := nettest.NewNetns(t)
			native := mustResults(t, nat.Run(time.Minute, append(prefix, prog, "userns_netlink")...))
			n := nettest.NewNetns(t)
			got := mustResults(t, n.Run(time.Minute, append(append(sandboxRun(t, sb), prefix...), prog, "userns_netlink")...))
			for _, k := range []string{"addr_sendto", "addr_sendmsg", "addr_sendmmsg", "addr_connect", "route_sendto", "route_sendmsg", "route_sendmmsg", "route_connect"} {
				if native[k] != "EPERM" || got[k] != "EPERM" {
					t.Errorf("%s %s: sandboxed %q, natively %q, want EPERM", who, k, got[k], native[k])
				}
			}
			a := nettest.Run(time.Minute, "ip", "-n", n.Name, "-4", "addr", "show", "dev", "lo")
			r := nettest.Run(time.Minute, "ip", "-n", n.Name, "-4", "route", "show", "table", "main")
			if strings.Contains(a.Stdout, "inet 10.99.") || strings.Contains(r.Stdout, "10.98.") {
				t.Errorf("%s: addresses or routes appeared:\n%s%s", who, a.Stdout, r.Stdout)
			}
		}
	})
	t.Run("rules", func(t *testing.T) {
		for _, who := range []string{"nobody", "root"} {
			sub := filepath.Join(dir, who)
			os.Mkdir(sub, 0o755)
			stream, dgram, accepted, received := rootOnlySockets(t, sub)
			argv := sandboxRun(t, sb, "--allow", "unix:"+sub+"/*")
			want, wantA, wantR := "EACCES", int64(0), int64(0)
			if who == "nobody" {
				argv = append(argv, nobody...)
			} else {
				want, wantA, wantR = "ok", 1, 2
			}
			got := mustResults(t, nettest.Run(time.Minute, append(argv, prog, "userns", stream, dgram, "0", "0")...))
			for _, k := range keys {
				if got[k] != want {
					t.Errorf("%s %s: %q, want %q", who, k, got[k], want)
				}
			}
			time.Sleep(200 * time.Millisecond)
			if accepted.Load() != wantA || received.Load() != wantR {
				t.Errorf("%s: %d connections and %d datagrams arrived, want %d and %d", who, accepted.Load(), received.Load(), wantA, wantR)
			}
		}
	})
}
