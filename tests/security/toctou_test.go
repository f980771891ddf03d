package security

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// countingListener accepts on loopback and counts connections.
func countingListener(t *testing.T) (port int, accepted *atomic.Int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l.Addr().(*net.TCPAddr).Port, countAccepts(t, l)
}

// countAccepts accepts on l until the test ends and counts connections.
func countAccepts(t *testing.T, l net.Listener) *atomic.Int64 {
	t.Cleanup(func() { l.Close() })
	accepted := new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return accepted
}

// asNobody prefixes a command line to run it as nobody:nogroup, and makes
// the given files reachable for nobody (test binaries live under private
// temporary directories).
func asNobody(files ...string) []string {
	for _, p := range files {
		for d := filepath.Dir(p); d != "/" && d != "/tmp"; d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
	}
	return []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
}

// runFlipper runs testdata/flipper.c under the sandbox with policy and
// returns how many of its calls succeeded and how many were denied. It waits
// briefly afterwards so that the receivers have drained.
func runFlipper(t *testing.T, policy []string, allowed, denied, attempts int, mode ...string) (ok, refused string) {
	t.Helper()
	ok, refused, _ = runAttack(t, "flipper.c", policy,
		append([]string{strconv.Itoa(allowed), strconv.Itoa(denied), strconv.Itoa(attempts)}, mode...)...)
	return ok, refused
}

// runAttack compiles testdata/src, runs it under the sandbox with policy
// and args, and parses its "connected=N denied=N other=N" line.
func runAttack(t *testing.T, src string, policy []string, args ...string) (ok, refused, other string) {
	t.Helper()
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", src), false)
	argv := append(append(append([]string{sb, "run", "--log-level", "error"}, policy...), "--", prog), args...)
	r := nettest.Run(10*time.Minute, argv...)
	if r.ExitCode != 0 {
		t.Fatalf("%v", r)
	}
	m := regexp.MustCompile(`connected=(\d+) denied=(\d+) other=(\d+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("unexpected output %q", r.Stdout)
	}
	time.Sleep(200 * time.Millisecond)
	t.Logf("%s: %s succeeded, %s denied, %s other", strings.Join(args, " "), m[1], m[2], m[3])
	return m[1], m[2], m[3]
}

// A thread flips the address between an allowed and a denied port while
// another connects in a loop: 1,000,000 attempts, and not one may reach the
// denied port. Both listeners are outside the sandbox.
func TestTOCTOUAddressFlip(t *testing.T) {
	attempts := 1000000
	if testing.Short() {
		attempts = 20000
	}
	allowed, okCount := countingListener(t)
	denied, leaked := countingListener(t)
	ok, refused := runFlipper(t, []string{"--allow", fmt.Sprintf("tcp:127.0.0.1:%d", allowed),
		"--deny", fmt.Sprintf("tcp:127.0.0.1:%d", denied)}, allowed, denied, attempts)
	t.Logf("%d accepted on the allowed port, %d on the denied one", okCount.Load(), leaked.Load())
	if leaked.Load() != 0 {
		t.Errorf("%d connections reached the denied port", leaked.Load())
	}
	if ok == "0" || refused == "0" {
		t.Errorf("the flip did not exercise both outcomes: %s connected, %s denied", ok, refused)
	}
}

// udpCounter counts datagrams received on a loopback port.
func udpCounter(t *testing.T) (port int, got *atomic.Int64) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(8 << 20)
	t.Cleanup(func() { c.Close() })
	got = new(atomic.Int64)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).Port, got
}

// The same attack through sendto(2): the address flips between an allowed
// and a denied receiver while datagrams are sent; none reaches the denied
// one. (The allowed receiver may drop datagrams under load: only the denied
// count matters.)
func TestTOCTOUSendtoFlip(t *testing.T) {
	attempts := 200000
	if testing.Short() {
		attempts = 20000
	}
	allowed, okCount := udpCounter(t)
	denied, leaked := udpCounter(t)
	ok, refused := runFlipper(t, []string{"--allow", fmt.Sprintf("udp:127.0.0.1:%d", allowed)},
		allowed, denied, attempts, "sendto")
	t.Logf("%d received by the allowed receiver, %d by the denied one", okCount.Load(), leaked.Load())
	if leaked.Load() != 0 {
		t.Errorf("%d datagrams reached the denied receiver", leaked.Load())
	}
	if ok == "0" || refused == "0" || okCount.Load() == 0 {
		t.Errorf("the flip did not exercise both outcomes: %s sent, %s denied", ok, refused)
	}
}

// The same attack through sendmsg(2) and sendmmsg(2), whose address sits
// behind msg_name, out of the filter's sight: every call is trapped and
// performed with the supervisor's copies, so none reaches the denied
// receiver.
func TestTOCTOUSendmsgFlip(t *testing.T) {
	attempts := 200000
	if testing.Short() {
		attempts = 20000
	}
	for _, mode := range []string{"sendmsg", "sendmmsg"} {
		t.Run(mode, func(t *testing.T) {
			allowed, okCount := udpCounter(t)
			denied, leaked := udpCounter(t)
			ok, refused := runFlipper(t, []string{"--allow", fmt.Sprintf("udp:127.0.0.1:%d", allowed)},
				allowed, denied, attempts, mode)
			t.Logf("%d received by the allowed receiver, %d by the denied one", okCount.Load(), leaked.Load())
			if leaked.Load() != 0 {
				t.Errorf("%d datagrams reached the denied receiver", leaked.Load())
			}
			if ok == "0" || refused == "0" || okCount.Load() == 0 {
				t.Errorf("the flip did not exercise both outcomes: %s sent, %s denied", ok, refused)
			}
		})
	}
}

// unixCounter listens on a Unix socket at path and counts connections.
func unixCounter(t *testing.T, path string) *atomic.Int64 {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	return countAccepts(t, l)
}

// A thread swaps a symlink, the last component (link) or a directory on
// the way (dir), between a Unix socket the policy allows and one it denies,
// while another thread connects through it. The supervisor decides on the
// object it opened and connects to that object: no connect may reach the
// denied socket.
func TestTOCTOUUnixPathSwap(t *testing.T) {
	attempts := 100000
	if testing.Short() {
		attempts = 5000
	}
	for _, mode := range []string{"link", "dir"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			os.Chmod(dir, 0o755)
			okCount := unixCounter(t, filepath.Join(dir, "allowed", "s.sock"))
			leaked := unixCounter(t, filepath.Join(dir, "denied", "s.sock"))
			ok, refused, _ := runAttack(t, "unixflip.c", []string{
				"--allow", "unix:" + filepath.Join(dir, "allowed", "s.sock"),
				"--deny", "unix:" + filepath.Join(dir, "denied", "s.sock")},
				dir, strconv.Itoa(attempts), mode)
			t.Logf("%d accepted by the allowed socket, %d by the denied one", okCount.Load(), leaked.Load())
			if leaked.Load() != 0 {
				t.Errorf("%d connections reached the denied socket", leaked.Load())
			}
			if ok == "0" || refused == "0" || okCount.Load() == 0 {
				t.Errorf("the swap did not exercise both outcomes: %s connected, %s denied", ok, refused)
			}
		})
	}
}
