package security

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sandbox/tests/internal/nettest"
)

// A foreign socket that appears at the tree's port after the tree's own
// socket was reached, between two decisions: a same-uid REUSEPORT member
// joining the tree's group (the kernel's lookup may still pick the tree's
// member), or a wildcard behind the tree's exact address (the lookup picks
// the tree's until it closes). The oracle's exact lookup may only ever
// deny: each later decision must still find the newcomer, so nothing may
// arrive at it; the control run (--allow-all) must reach it.
func TestSelfLateForeignSocket(t *testing.T) {
	dir := t.TempDir()
	asNobody(filepath.Join(dir, "x")) // the parents traversable
	os.Chmod(dir, 0o777)              // the program writes its requests there
	runSelfCase(t, selfCase{
		mode: "late",
		args: func(base int) []string { return []string{fmt.Sprint(base), dir, "100"} },
		endpoints: func(t *testing.T, n *nettest.Netns, b, uid int) map[string]*atomic.Int64 {
			return map[string]*atomic.Int64{
				"outside udp4 late member":   lateCounter(t, n.Name, uid, dir, unix.SOCK_DGRAM, "127.0.0.1", b, unix.SO_REUSEPORT),
				"outside udp6 late member":   lateCounter(t, n.Name, uid, dir, unix.SOCK_DGRAM, "::1", b+1, unix.SO_REUSEPORT),
				"outside tcp4 late member":   lateCounter(t, n.Name, uid, dir, unix.SOCK_STREAM, "127.0.0.1", b+2, unix.SO_REUSEPORT),
				"outside udp4 late wildcard": lateCounter(t, n.Name, uid, dir, unix.SOCK_DGRAM, "0.0.0.0", b+3, unix.SO_REUSEADDR),
				"outside tcp4 late wildcard": lateCounter(t, n.Name, uid, dir, unix.SOCK_STREAM, "0.0.0.0", b+4, unix.SO_REUSEPORT),
			}
		},
		own: []string{"udp4-member-first", "udp6-member-first", "tcp4-member-first", "udp4-shadowed-first", "tcp4-shadowed-first"},
	})
}

// lateCounter waits (in the background) for the program's DIR/seen-PORT,
// then binds, in namespace ns as uid, a socket of type typ at addr:port with
// option reuse, counts what arrives at it, and answers with DIR/go-PORT.
func lateCounter(t *testing.T, ns string, uid int, dir string, typ int, addr string, port, reuse int) *atomic.Int64 {
	n := new(atomic.Int64)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		seen := filepath.Join(dir, fmt.Sprint("seen-", port))
		for {
			if _, err := os.Stat(seen); err == nil {
				break
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		fd, err := foreignSocket(ns, uid, typ, addr, port, reuse)
		if err != nil {
			t.Errorf("the late foreign socket %s:%d: %v", addr, port, err)
			return
		}
		f := os.NewFile(uintptr(fd), "late")
		go func() { <-done; f.Close() }()
		os.WriteFile(filepath.Join(dir, fmt.Sprint("go-", port)), nil, 0o666)
		if typ == unix.SOCK_STREAM {
			l, err := net.FileListener(f)
			if err != nil {
				t.Error(err)
				return
			}
			go func() { <-done; l.Close() }()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				n.Add(1)
				c.Close()
			}
		}
		c, err := net.FilePacketConn(f)
		if err != nil {
			t.Error(err)
			return
		}
		go func() { <-done; c.Close() }()
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

// foreignSocket is inetCounter's socket, made without the testing.T (it
// runs on a goroutine of its own).
func foreignSocket(ns string, uid, typ int, addr string, port, reuse int) (int, error) {
	type res struct {
		fd  int
		err error
	}
	rc := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			rc <- res{-1, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			rc <- res{-1, err}
			return
		}
		if uid > 0 {
			syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(uid), 0, 0)
		}
		ip := net.ParseIP(addr)
		fam := unix.AF_INET6
		var sa unix.Sockaddr = &unix.SockaddrInet6{Port: port, Addr: [16]byte(ip.To16())}
		if ip.To4() != nil {
			fam, sa = unix.AF_INET, &unix.SockaddrInet4{Port: port, Addr: [4]byte(ip.To4())}
		}
		fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			rc <- res{-1, err}
			return
		}
		if fam == unix.AF_INET6 {
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, reuse, 1)
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			rc <- res{-1, fmt.Errorf("bind: %w", err)}
			return
		}
		if typ == unix.SOCK_STREAM {
			if err := unix.Listen(fd, 512); err != nil {
				unix.Close(fd)
				rc <- res{-1, err}
				return
			}
		}
		rc <- res{fd, nil}
	}()
	r := <-rc
	return r.fd, r.err
}

// A parked connect allowed because the tree owned the abstract name is
// decided again before each retry (testdata/selfretry.c): once the tree's
// listener closes, a process outside the tree binds the name at once, and
// nothing may reach it, as root and as nobody, under the default policy and
// under rules that do not name it. The control, a rule allowing the name,
// must reach it: the same retry, decided by the rule.
func TestParkedSelfConnectDecidedAgain(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "selfretry.c"), false)
	cases := []struct {
		name    string
		policy  []string
		arrives bool
	}{
		{"default", nil, false},
		{"rules", []string{"--allow", "tcp:127.0.0.1"}, false},
		{"control", []string{"--allow", "unix:@selfretry-*"}, true},
	}
	for _, who := range []string{"root", "nobody"} {
		for _, tc := range cases {
			for _, kind := range []string{"stream", "dgram"} {
				t.Run(who+"/"+tc.name+"/"+kind, func(t *testing.T) {
					argv := append(append([]string{sb, "run", "--log-level", "error"}, tc.policy...), "--", prog, kind)
					if who == "nobody" {
						argv = append(asNobody(sb, prog), argv...)
					}
					// A retry that comes before the outsider has bound the name
					// meets no listener (ECONNREFUSED) and proves nothing: run
					// again until one met the outsider's socket, which the
					// decision must then have refused (EACCES).
					for attempt := 1; ; attempt++ {
						arrived, out := outsiderTakesName(t, argv, kind == "dgram")
						t.Logf("%s, run %d: %d arrived at the outsider; %s", tc.name, attempt, arrived, out)
						if tc.arrives {
							if arrived == 0 {
								t.Fatalf("control: nothing arrived at the outsider (the test proves nothing): %s", out)
							}
							break
						}
						if arrived != 0 {
							t.Fatalf("%d connects reached a socket outside the tree; %s", arrived, out)
						}
						if out == "A: errno=13" {
							break
						}
						if attempt == 5 {
							t.Fatalf("in 5 runs no retry met the outsider's socket (the test proves nothing); last: %s", out)
						}
					}
				})
			}
		}
	}
}

// outsiderTakesName runs argv (selfretry), binds its name from outside the
// tree as soon as the tree's socket is gone (a datagram socket if dgram),
// and returns how many connections or datagrams arrived there within 2 s,
// and A's result.
func outsiderTakesName(t *testing.T, argv []string, dgram bool) (int, string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	out := startPiped(t, cmd)
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	var name string
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "name "); ok {
			name = n
		}
		if sc.Text() == "parked" {
			break
		}
	}
	if name == "" {
		t.Fatal("selfretry printed no name")
	}
	var arrived *atomic.Int64
	for deadline := time.Now().Add(5 * time.Second); arrived == nil; {
		var err error
		if dgram {
			var c net.PacketConn
			if c, err = net.ListenPacket("unixgram", "@"+name); err == nil {
				arrived = countPackets(t, c)
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("unix", "@"+name); err == nil {
				arrived = countAccepts(t, l)
			}
		}
		if err != nil && time.Now().After(deadline) {
			t.Fatalf("the outsider could not bind @%s: %v", name, err)
		}
	}
	res := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "A: ") {
				res <- sc.Text()
				return
			}
		}
		res <- "(no result)"
	}()
	var a string
	select {
	case a = <-res:
	case <-time.After(10 * time.Second):
		a = "(A did not return within 10 s)"
	}
	time.Sleep(2 * time.Second)
	return int(arrived.Load()), a
}
