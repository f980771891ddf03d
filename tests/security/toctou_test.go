package security

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
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
	t.Cleanup(func() { l.Close() })
	accepted = new(atomic.Int64)
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
	return l.Addr().(*net.TCPAddr).Port, accepted
}

// runFlipper runs testdata/flipper.c under the sandbox with policy and
// returns how many of its calls succeeded and how many were denied. It waits
// briefly afterwards so that the receivers have drained.
func runFlipper(t *testing.T, policy []string, allowed, denied, attempts int, mode ...string) (ok, refused string) {
	t.Helper()
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "flipper.c"), false)
	args := append(append([]string{sb, "run", "--log-level", "error"}, policy...), "--",
		prog, strconv.Itoa(allowed), strconv.Itoa(denied), strconv.Itoa(attempts))
	r := nettest.Run(10*time.Minute, append(args, mode...)...)
	if r.ExitCode != 0 {
		t.Fatalf("%v", r)
	}
	m := regexp.MustCompile(`connected=(\d+) denied=(\d+) other=(\d+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("unexpected output %q", r.Stdout)
	}
	time.Sleep(200 * time.Millisecond)
	t.Logf("%d attempts: %s succeeded, %s denied, %s other", attempts, m[1], m[2], m[3])
	return m[1], m[2]
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
