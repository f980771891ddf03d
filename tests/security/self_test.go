package security

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sandbox/tests/internal/nettest"
)

// Attacks on the "self" default (a program may reach only sockets its own
// tree holds): testdata/self.c makes the tree hold a socket that "looks
// like" the destination while the kernel would deliver elsewhere. The
// forbidden endpoints are the test's own sockets, outside the tree (on
// loopback of the sandbox's namespace, or in the peer namespace); they
// count what arrives. Under the self default nothing may arrive; the
// control run, the same program under --allow-all, must arrive at every
// endpoint, or the attack proves nothing.

// inNetns runs fn on an OS thread that has joined network namespace ns
// and, when uid > 0, taken that file-system uid (which a new socket carries
// as its owner, as SO_REUSEPORT groups compare). The thread is thrown away.
func inNetns(t *testing.T, ns string, uid int, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		if uid > 0 {
			syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(uid), 0, 0)
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// countPackets counts datagrams arriving on c until the test ends.
func countPackets(t *testing.T, c net.PacketConn) *atomic.Int64 {
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

// inetCounter makes, in namespace ns as uid, a socket of type typ and
// protocol proto bound to addr:port (listening, for a stream), with socket
// option reuse (SO_REUSEPORT, SO_REUSEADDR) set unless it is 0, and counts
// what arrives.
func inetCounter(t *testing.T, ns string, uid, typ, proto int, addr string, port int, reuse int) *atomic.Int64 {
	t.Helper()
	var file *os.File
	inNetns(t, ns, uid, func() error {
		ip := net.ParseIP(addr)
		fam := unix.AF_INET6
		var sa unix.Sockaddr = &unix.SockaddrInet6{Port: port, Addr: [16]byte(ip.To16())}
		if ip.To4() != nil {
			fam, sa = unix.AF_INET, &unix.SockaddrInet4{Port: port, Addr: [4]byte(ip.To4())}
		}
		fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if fam == unix.AF_INET6 {
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		}
		if reuse != 0 {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, reuse, 1)
		}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind %s:%d: %w", addr, port, err)
		}
		if typ == unix.SOCK_STREAM {
			if err := unix.Listen(fd, 512); err != nil {
				return err
			}
		}
		file = os.NewFile(uintptr(fd), "counter")
		return nil
	})
	defer file.Close()
	if typ == unix.SOCK_STREAM {
		l, err := net.FileListener(file)
		if err != nil {
			t.Fatal(err)
		}
		return countAccepts(t, l)
	}
	c, err := net.FilePacketConn(file)
	if err != nil {
		t.Fatal(err)
	}
	return countPackets(t, c)
}

// unixCounterIn listens on a Unix address (a path, made writable for
// nobody, or "@abstract") in namespace ns and counts what arrives.
func unixCounterIn(t *testing.T, ns, network, name string) *atomic.Int64 {
	t.Helper()
	var l net.Listener
	var c net.PacketConn
	inNetns(t, ns, 0, func() (err error) {
		if network == "unix" {
			l, err = net.Listen(network, name)
		} else {
			c, err = net.ListenPacket(network, name)
		}
		return err
	})
	if !strings.HasPrefix(name, "@") {
		os.Chmod(name, 0o777)
	}
	if l != nil {
		return countAccepts(t, l)
	}
	return countPackets(t, c)
}

// usernsFlags are the sandbox flags a program that makes a user namespace
// needs: --allow-userns where the sandbox has that flag (so the test keeps
// exercising the oracle, not a refusal to unshare).
func usernsFlags(t *testing.T, sb string) []string {
	r := nettest.Run(30*time.Second, sb, "run", "--help")
	if strings.Contains(r.Stdout+r.Stderr, "--allow-userns") {
		return []string{"--allow-userns"}
	}
	return nil
}

// selfCase is one attack program: its mode, its forbidden endpoints (made
// afresh for each run, at base), the variants that must succeed under the
// self default (the tree's own sockets), and extra flags.
type selfCase struct {
	mode      string
	args      func(base int) []string
	endpoints func(t *testing.T, n *nettest.Netns, base, uid int) map[string]*atomic.Int64
	own       []string
	flags     []string // for both runs (the self default's rules, --allow-userns)
	control   []string // instead of --allow-all
	// unprivControl names endpoints that even the control cannot reach
	// when the whole sandbox runs as nobody: an unprivileged supervisor
	// cannot take on the credentials of a caller in a user namespace of its
	// own, so a Unix connect made for it fails closed (EACCES).
	unprivControl []string
}

// runSelfCase runs c as root, as nobody (the whole sandbox), and as a
// nobody program under a root supervisor, under the self default and under
// the control policy, and counts arrivals.
func runSelfCase(t *testing.T, c selfCase) {
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "self.c"), false)
	n := nettest.NewNetns(t)
	control := c.control
	if control == nil {
		control = []string{"--allow-all"}
	}
	run := 0
	for _, user := range []string{"root", "nobody", "nobody-program"} {
		for _, pol := range []string{"self", "control"} {
			run++
			base := 20000 + 100*run
			uid := 0
			var prefix, progPrefix []string
			switch user {
			case "nobody":
				uid, prefix = 65534, asNobody(sb, prog)
			case "nobody-program":
				uid, progPrefix = 65534, asNobody(prog)
			}
			eps := c.endpoints(t, n, base, uid)
			flags := append([]string(nil), c.flags...)
			if pol == "control" {
				flags = append(flags, control...)
			}
			argv := append(append(prefix, sb, "run", "--log-level", "error"), flags...)
			argv = append(append(append(append(argv, "--"), progPrefix...), prog, c.mode), c.args(base)...)
			r := n.Run(5*time.Minute, argv...)
			if r.ExitCode != 0 {
				t.Fatalf("%s %s: %v", user, pol, r)
			}
			time.Sleep(300 * time.Millisecond) // let the counters drain
			got := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
				v, res, _ := strings.Cut(l, " ")
				got[v] = res
			}
			t.Logf("%s, %s: %s", user, pol, strings.ReplaceAll(strings.TrimSpace(r.Stdout), "\n", "; "))
			for name, cnt := range eps {
				k := cnt.Load()
				t.Logf("%s, %s: %d arrived at %s", user, pol, k, name)
				if pol == "self" && k != 0 {
					t.Errorf("%s, self default: %d arrived at the forbidden %s", user, k, name)
				}
				if pol == "control" && k == 0 && !(user == "nobody" && slices.Contains(c.unprivControl, name)) {
					t.Errorf("%s, control: nothing arrived at %s: the attack is not exercised (%s)", user, name, r.Stdout)
				}
			}
			if pol == "self" {
				for _, v := range c.own {
					if got[v] != "ok" {
						t.Errorf("%s, self default: the tree's own %s: %q, want ok (%s)", user, v, got[v], r.Stdout)
					}
				}
			}
		}
	}
}

func tcp(t *testing.T, ns string, uid int, addr string, port int) *atomic.Int64 {
	return inetCounter(t, ns, uid, unix.SOCK_STREAM, 0, addr, port, 0)
}

func udp(t *testing.T, ns string, uid int, addr string, port int) *atomic.Int64 {
	return inetCounter(t, ns, uid, unix.SOCK_DGRAM, 0, addr, port, 0)
}

func TestSelfFreebind(t *testing.T) {
	runSelfCase(t, selfCase{
		mode: "freebind",
		args: func(base int) []string { return []string{fmt.Sprint(base)} },
		endpoints: func(t *testing.T, n *nettest.Netns, b, _ int) map[string]*atomic.Int64 {
			return map[string]*atomic.Int64{
				"peer tcp4":          tcp(t, n.Peer, 0, nettest.PeerIP, b),
				"peer tcp6":          tcp(t, n.Peer, 0, nettest.PeerIP6, b+1),
				"peer udp4":          udp(t, n.Peer, 0, nettest.PeerIP, b+2),
				"peer udp6":          udp(t, n.Peer, 0, nettest.PeerIP6, b+3),
				"peer tcp4-wildcard": tcp(t, n.Peer, 0, nettest.PeerIP, b+4),
				"peer udp4-mapped":   udp(t, n.Peer, 0, nettest.PeerIP, b+5),
			}
		},
	})
}

func TestSelfWildcardFamilies(t *testing.T) {
	runSelfCase(t, selfCase{
		mode: "families",
		args: func(base int) []string { return []string{fmt.Sprint(base)} },
		endpoints: func(t *testing.T, n *nettest.Netns, b, uid int) map[string]*atomic.Int64 {
			return map[string]*atomic.Int64{
				"outside tcp 127.0.0.1": tcp(t, n.Name, 0, "127.0.0.1", b),
				"outside udp 127.0.0.1": udp(t, n.Name, 0, "127.0.0.1", b+1),
				"outside tcp [::1]":     tcp(t, n.Name, 0, "::1", b+2),
				"outside udp [::1]":     udp(t, n.Name, 0, "::1", b+3),
				// The kernel lets a wildcard join these: same-uid REUSEPORT
				// for TCP, REUSEADDR for UDP.
				"outside tcp 127.0.0.2": inetCounter(t, n.Name, uid, unix.SOCK_STREAM, 0, "127.0.0.2", b+4, unix.SO_REUSEPORT),
				"outside udp 127.0.0.2": inetCounter(t, n.Name, uid, unix.SOCK_DGRAM, 0, "127.0.0.2", b+5, unix.SO_REUSEADDR),
			}
		},
		own: []string{"own-dualstack", "own-udp6", "own-veth4", "own-veth6"},
	})
}

func TestSelfBroadcastMulticast(t *testing.T) {
	runSelfCase(t, selfCase{
		mode: "bcast",
		args: func(base int) []string { return []string{fmt.Sprint(base), "veth0"} },
		endpoints: func(t *testing.T, n *nettest.Netns, b, _ int) map[string]*atomic.Int64 {
			return map[string]*atomic.Int64{
				"peer subnet broadcast":  udp(t, n.Peer, 0, "0.0.0.0", b),
				"peer limited broadcast": udp(t, n.Peer, 0, "0.0.0.0", b+1),
				"peer 224.0.0.1":         udp(t, n.Peer, 0, "0.0.0.0", b+2),
				"peer ff02::1":           udp(t, n.Peer, 0, "::", b+3),
			}
		},
	})
}

func TestSelfUDPLite(t *testing.T) {
	runSelfCase(t, selfCase{
		mode: "udplite",
		args: func(base int) []string { return []string{fmt.Sprint(base)} },
		endpoints: func(t *testing.T, n *nettest.Netns, b, _ int) map[string]*atomic.Int64 {
			return map[string]*atomic.Int64{
				"outside udplite 127.0.0.1": inetCounter(t, n.Name, 0, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE, "127.0.0.1", b, 0),
				"outside udplite [::1]":     inetCounter(t, n.Name, 0, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE, "::1", b+1, 0),
				"outside udp 127.0.0.1":     udp(t, n.Name, 0, "127.0.0.1", b+2),
			}
		},
		own: []string{"own-lite"},
	})
}

// The outside member of the group has the tree's uid, as the kernel
// requires of a REUSEPORT group.
func TestSelfReuseport(t *testing.T) {
	runSelfCase(t, selfCase{
		mode: "reuseport",
		args: func(base int) []string { return []string{fmt.Sprint(base), "100"} },
		endpoints: func(t *testing.T, n *nettest.Netns, b, uid int) map[string]*atomic.Int64 {
			return map[string]*atomic.Int64{
				"outside udp4 member": inetCounter(t, n.Name, uid, unix.SOCK_DGRAM, 0, "127.0.0.1", b, unix.SO_REUSEPORT),
				"outside udp6 member": inetCounter(t, n.Name, uid, unix.SOCK_DGRAM, 0, "::1", b+1, unix.SO_REUSEPORT),
				"outside tcp4 member": inetCounter(t, n.Name, uid, unix.SOCK_STREAM, 0, "127.0.0.1", b+2, unix.SO_REUSEPORT),
				"outside tcp6 member": inetCounter(t, n.Name, uid, unix.SOCK_STREAM, 0, "::1", b+3, unix.SO_REUSEPORT),
			}
		},
	})
}

// Sockets made in the sandbox's namespace, used after unshare(USER|NET)
// next to look-alike listeners in the new namespace.
func TestSelfOtherNetns(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	name := fmt.Sprintf("sbx-self-netns-%d", os.Getpid())
	runSelfCase(t, selfCase{
		mode: "netns",
		args: func(base int) []string { return []string{fmt.Sprint(base), fmt.Sprint(name, base)} },
		endpoints: func(t *testing.T, n *nettest.Netns, b, uid int) map[string]*atomic.Int64 {
			eps := map[string]*atomic.Int64{
				"outside tcp 127.0.0.1": tcp(t, n.Name, 0, "127.0.0.1", b),
				"outside udp 127.0.0.1": udp(t, n.Name, 0, "127.0.0.1", b+1),
				"peer tcp":              tcp(t, n.Peer, 0, nettest.PeerIP, b+2),
				"peer udp":              udp(t, n.Peer, 0, nettest.PeerIP, b+3),
			}
			eps["outside abstract"] = unixCounterIn(t, n.Name, "unix", fmt.Sprint("@", name, b))
			return eps
		},
		flags:         usernsFlags(t, sb),
		unprivControl: []string{"outside abstract"},
	})
}

// selfDir makes a directory nobody can write, for Unix sockets.
func selfDir(t *testing.T) string {
	d := t.TempDir()
	asNobody(filepath.Join(d, "x")) // its parents become searchable
	os.Chmod(d, 0o777)
	return d
}

func TestSelfUnixSymlinkRepoint(t *testing.T) {
	var dir string
	runSelfCase(t, selfCase{
		mode: "symlink",
		args: func(int) []string { return []string{dir} },
		endpoints: func(t *testing.T, n *nettest.Netns, _, _ int) map[string]*atomic.Int64 {
			dir = selfDir(t)
			os.Mkdir(filepath.Join(dir, "fdir"), 0o755)
			return map[string]*atomic.Int64{
				"foreign stream": unixCounterIn(t, n.Name, "unix", filepath.Join(dir, "foreign.sock")),
				"foreign dgram":  unixCounterIn(t, n.Name, "unixgram", filepath.Join(dir, "foreign.dgram")),
				"foreign in dir": unixCounterIn(t, n.Name, "unix", filepath.Join(dir, "fdir", "x.sock")),
			}
		},
	})
}

func TestSelfUnixAbstractNames(t *testing.T) {
	var name string
	runSelfCase(t, selfCase{
		mode: "abstract",
		args: func(int) []string { return []string{name} },
		endpoints: func(t *testing.T, n *nettest.Netns, b, _ int) map[string]*atomic.Int64 {
			name = fmt.Sprintf("sbx-self-%d-%d", os.Getpid(), b)
			return map[string]*atomic.Int64{
				"foreign @" + name + "-a":  unixCounterIn(t, n.Name, "unix", "@"+name+"-a"),
				"foreign @" + name + "-n@": unixCounterIn(t, n.Name, "unix", "@"+name+"-n@"),
				"foreign @" + name + "-d":  unixCounterIn(t, n.Name, "unixgram", "@"+name+"-d"),
				"foreign @" + name + "-t":  unixCounterIn(t, n.Name, "unix", "@"+name+"-t"),
			}
		},
		own: []string{"own-space"},
	})
}

// In a private user and mount namespace, the forbidden socket is mounted
// over a path the rules allow (and, as root, hard-linked there).
func TestSelfUnixBindMount(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	dir := selfDir(t)
	os.Mkdir(filepath.Join(dir, "allowed"), 0o777)
	os.Chmod(filepath.Join(dir, "allowed"), 0o777) // past the umask
	os.Mkdir(filepath.Join(dir, "forbidden"), 0o755)
	allowed := []string{"--allow", "unix:" + dir + "/allowed/*", "--allow", "unix:" + dir + "/allowed/*/*"}
	runSelfCase(t, selfCase{
		mode: "bindmount",
		args: func(int) []string { return []string{dir} },
		endpoints: func(t *testing.T, n *nettest.Netns, _, _ int) map[string]*atomic.Int64 {
			os.Remove(filepath.Join(dir, "forbidden", "f.sock"))
			os.Remove(filepath.Join(dir, "forbidden", "f.dgram"))
			return map[string]*atomic.Int64{
				"forbidden stream": unixCounterIn(t, n.Name, "unix", filepath.Join(dir, "forbidden", "f.sock")),
				"forbidden dgram":  unixCounterIn(t, n.Name, "unixgram", filepath.Join(dir, "forbidden", "f.dgram")),
			}
		},
		flags:         append(usernsFlags(t, sb), allowed...),
		control:       []string{"--allow", "unix:" + dir + "/forbidden/*"},
		unprivControl: []string{"forbidden stream", "forbidden dgram"},
	})
}

// What real programs do (redis-server --unixsocket r.sock; OpenSSH's
// ControlMaster binds a temporary name and link()s or rename()s it into
// place): the tree's own socket, reached under the self default.
func TestSelfUnixRelativeLinkRename(t *testing.T) {
	var dir string
	runSelfCase(t, selfCase{
		mode: "relative",
		args: func(int) []string { return []string{dir} },
		endpoints: func(t *testing.T, n *nettest.Netns, _, _ int) map[string]*atomic.Int64 {
			dir = selfDir(t)
			return nil
		},
		own: []string{"relative-stream", "relative-child", "relative-dgram", "link", "rename", "relative-absolute"},
	})
}
