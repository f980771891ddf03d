package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"sandbox/netstack"
	"sandbox/sentry/front"
)

// server answers each connection's first read with reply, then closes
// (half-closes if keep).
func server(t testing.TB, reply []byte) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				if _, err := c.Read(buf); err != nil {
					return
				}
				c.Write(reply)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func newRelay(t *testing.T) *Relay {
	l := logrus.New()
	l.SetOutput(io.Discard)
	r := New(l)
	t.Cleanup(r.Close)
	return r
}

// exchange connects through the relay, sends a request and reads the whole
// reply, with a read deadline.
func exchange(t *testing.T, r *Relay, dest netip.AddrPort, spec string, wait time.Duration) ([]byte, error, time.Duration) {
	t.Helper()
	f, err := netstack.ParseFaults(spec)
	if err != nil {
		t.Fatal(err)
	}
	local := freePort(t, "tcp")
	front, err := r.Front(dest, true, f, local, noAdm, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := (&net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}).Dial("tcp", front.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("GET\n")); err != nil {
		return nil, err, time.Since(start)
	}
	b, err := io.ReadAll(c)
	return b, err, time.Since(start)
}

func TestFaultsAsTheProgramSeesThem(t *testing.T) {
	reply := make([]byte, 100000)
	for i := range reply {
		reply[i] = byte(i)
	}
	dest := server(t, reply)
	r := newRelay(t)
	// reset at the first data: ECONNRESET, nothing delivered.
	b, err, _ := exchange(t, r, dest, "reset:0", 2*time.Second)
	if !errors.Is(err, syscall.ECONNRESET) || len(b) != 0 {
		t.Errorf("reset:0: %d bytes, %v; want ECONNRESET", len(b), err)
	}
	// reset after N bytes: exactly N-4 of the reply (the request counts).
	b, err, _ = exchange(t, r, dest, "reset:1004", 2*time.Second)
	if !errors.Is(err, syscall.ECONNRESET) || len(b) != 1000 {
		t.Errorf("reset:1004: %d bytes, %v; want 1000 then ECONNRESET", len(b), err)
	}
	// limit: N bytes, then a clean close.
	b, err, _ = exchange(t, r, dest, "limit:5000", 2*time.Second)
	if err != nil || len(b) != 5000 {
		t.Errorf("limit:5000: %d bytes, %v", len(b), err)
	}
	// blackhole: nothing arrives; the read times out.
	b, err, took := exchange(t, r, dest, "blackhole", 500*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || len(b) != 0 || took < 450*time.Millisecond {
		t.Errorf("blackhole: %d bytes, %v after %v; want a timeout", len(b), err, took)
	}
	// latency: the whole reply, D later, not D per chunk.
	b, err, took = exchange(t, r, dest, "latency:300ms", 5*time.Second)
	if err != nil || len(b) != len(reply) || took < 300*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("latency:300ms: %d bytes, %v after %v", len(b), err, took)
	}
	// bandwidth: 100 kB at 50 kB/s takes about 2 s (the first burst free).
	b, err, took = exchange(t, r, dest, "bandwidth:50KB@down", 10*time.Second)
	if err != nil || len(b) != len(reply) || took < 900*time.Millisecond || took > 4*time.Second {
		t.Errorf("bandwidth: %d bytes, %v after %v", len(b), err, took)
	}
	// slice: the bytes arrive intact.
	b, err, _ = exchange(t, r, dest, "slice:1000", 5*time.Second)
	if err != nil || string(b) != string(reply) {
		t.Errorf("slice: %d bytes, %v", len(b), err)
	}
	// slow-close: the FIN comes D after the peer's.
	_, err, took = exchange(t, r, dest, "slow-close:400ms", 5*time.Second)
	if err != nil || took < 400*time.Millisecond {
		t.Errorf("slow-close: %v after %v", err, took)
	}
}

// TestCloseEndsEveryConnection: a blackholed connection whose program has
// gone does not keep the relay (and so the sandbox) from ending.
func TestCloseEndsEveryConnection(t *testing.T) {
	dest := server(t, []byte("x"))
	l := logrus.New()
	l.SetOutput(io.Discard)
	r := New(l)
	for _, spec := range []string{"blackhole", "blackhole@up", "latency:1h", "connect-latency:1h"} {
		f, _ := netstack.ParseFaults(spec)
		local := freePort(t, "tcp")
		front, err := r.Front(dest, true, f, local, noAdm, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := (&net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}).Dial("tcp", front.String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET\n"))
		c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

// udpEcho answers each datagram with itself.
func udpEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], a)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// datagrams sends one datagram through the relay and counts the answers
// within wait, and when the first came.
func datagrams(t *testing.T, r *Relay, dest netip.AddrPort, spec string, wait time.Duration) (int, time.Duration) {
	t.Helper()
	c := udpThrough(t, r, dest, spec)
	defer c.Close()
	start := time.Now()
	c.Write([]byte("ping"))
	n, first := 0, time.Duration(0)
	buf := make([]byte, 64)
	for {
		c.SetReadDeadline(start.Add(wait))
		m, err := c.Read(buf)
		if err != nil {
			return n, first
		}
		if n == 0 {
			first = time.Since(start)
		}
		if string(buf[:m]) == "ping" {
			n++
		}
	}
}

func TestDatagramFaults(t *testing.T) {
	dest := udpEcho(t)
	r := newRelay(t)
	if n, _ := datagrams(t, r, dest, "loss:1", 300*time.Millisecond); n != 0 {
		t.Errorf("loss:1 delivered %d", n)
	}
	// Doubled up, and the echo doubled down: 4.
	if n, _ := datagrams(t, r, dest, "duplicate:1", 300*time.Millisecond); n != 4 {
		t.Errorf("duplicate:1 delivered %d, want 4", n)
	}
	if n, first := datagrams(t, r, dest, "latency:200ms@both", time.Second); n != 1 || first < 400*time.Millisecond {
		t.Errorf("latency both ways: %d after %v, want 1 after 400ms", n, first)
	}
	if n, _ := datagrams(t, r, dest, "toxicity:1+latency:1ms", 300*time.Millisecond); n != 1 {
		t.Errorf("a plain relayed datagram: %d", n)
	}
}

// BenchmarkRelay is the relay's cost on the data path: a request and a
// 64 KiB reply per iteration, directly and through a front whose fault
// (latency:0s is no fault; slice of 1 MiB cuts nothing) changes no byte.
func BenchmarkRelay(b *testing.B) {
	reply := make([]byte, 64<<10)
	dest := server(b, reply)
	l := logrus.New()
	l.SetOutput(io.Discard)
	r := New(l)
	defer r.Close()
	f, _ := netstack.ParseFaults("slice:1MiB")
	for _, c := range []struct {
		name string
		to   netip.AddrPort
	}{{"direct", dest}, {"relayed", netip.AddrPort{}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(reply)))
			for b.Loop() {
				to, d := c.to, &net.Dialer{}
				if !to.IsValid() { // each connection admitted, as the sentry admits it
					local := freePort(b, "tcp")
					to, _ = r.Front(dest, true, f, local, noAdm, nil)
					d.LocalAddr = net.TCPAddrFromAddrPort(local)
				}
				conn, err := d.Dial("tcp", to.String())
				if err != nil {
					b.Fatal(err)
				}
				conn.Write([]byte("GET\n"))
				if _, err := io.Copy(io.Discard, conn); err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
		})
	}
}

// TestFrontsCarryOnlyTheirOwnSockets: a front on loopback is reachable by
// every process of the namespace (another sandbox, whose policy denies the
// destination): it carries only the program socket it was made for.
func TestFrontsCarryOnlyTheirOwnSockets(t *testing.T) {
	dest := server(t, []byte("secret"))
	r := newRelay(t)
	f, _ := netstack.ParseFaults("latency:1ms")
	front, err := r.Front(dest, true, f, freePort(t, "tcp"), noAdm, nil)
	if err != nil {
		t.Fatal(err)
	}
	// From some other port: reset at once (the dial itself may see it).
	if c, err := net.Dial("tcp", front.String()); err == nil {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write([]byte("GET\n"))
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Errorf("a foreign connection got %q through the front", b)
		}
		c.Close()
	}
	u := udpEcho(t)
	uf, _ := netstack.ParseFaults("latency:1ms")
	ufront, _ := r.Front(u, false, uf, freePort(t, "udp"), noAdm, nil)
	uc, _ := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ufront))
	defer uc.Close()
	uc.Write([]byte("ping"))
	uc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := uc.Read(make([]byte, 16)); err == nil {
		t.Errorf("a foreign datagram was relayed (%d bytes back)", n)
	}
}

// TestBlackholedConnectionsEndWithTheProgram: a program that gives up on a
// blackholed connection does not leave it (and its onward connection)
// behind; an onward dial still under way ends at Close.
func TestBlackholedConnectionsEndWithTheProgram(t *testing.T) {
	dest := server(t, []byte("x"))
	r := newRelay(t)
	f, _ := netstack.ParseFaults("blackhole")
	local := freePort(t, "tcp")
	front, _ := r.Front(dest, true, f, local, noAdm, nil)
	c, err := (&net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}).Dial("tcp", front.String())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	c.Close()
	waitNoConns(t, r)
}

// freePort is a loopback port nothing uses now.
func freePort(t testing.TB, network string) netip.AddrPort {
	t.Helper()
	p, err := front.FreePort(network)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noAdm admits a socket as the supervisor's own, answered by the front.
var noAdm front.Admission

// ender accepts connections and ends each one after a while, as reset
// says: with an RST (SO_LINGER 0) or a FIN.
func ender(t *testing.T, after time.Duration, reset bool) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			time.AfterFunc(after, func() {
				if reset {
					c.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
			})
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// readUntil reads c until an error, at most until the deadline.
func readUntil(c net.Conn, wait time.Duration) (int, error, time.Duration) {
	start := time.Now()
	c.SetReadDeadline(start.Add(wait))
	n, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	return int(n), err, time.Since(start)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestBlackholeHidesThePeersEnd: behind a blackhole down (blackhole
// alone is both ways), a peer that resets or closes shows nothing to the
// program, as a DROP of the peer's packets shows nothing: its read times
// out, its writes go on. Behind a blackhole up, the peer's end does reach
// the program. Either way the connection ends when the program closes.
func TestBlackholeHidesThePeersEnd(t *testing.T) {
	r := newRelay(t)
	t.Run("each", func(t *testing.T) {
		for _, reset := range []bool{true, false} {
			dest := ender(t, 200*time.Millisecond, reset)
			for _, spec := range []string{"blackhole", "blackhole@down", "blackhole@up"} {
				t.Run(fmt.Sprintf("%s,reset=%v", spec, reset), func(t *testing.T) {
					t.Parallel()
					peersEnd(t, r, dest, spec, reset)
				})
			}
		}
	})
	// The program closed each: none is left.
	waitNoConns(t, r)
}

// peersEnd is one case of TestBlackholeHidesThePeersEnd.
func peersEnd(t *testing.T, r *Relay, dest netip.AddrPort, spec string, reset bool) {
	f, _ := netstack.ParseFaults(spec)
	local := freePort(t, "tcp")
	front, err := r.Front(dest, true, f, local, noAdm, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}).Dial("tcp", front.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET\n"))
	if spec == "blackhole@up" {
		// The peer's end shows: an RST as ECONNRESET, a FIN as the end of
		// file, both soon after it.
		_, err, took := readUntil(c, 3*time.Second)
		if reset && !errors.Is(err, syscall.ECONNRESET) || !reset && err != io.EOF || took > 1500*time.Millisecond {
			t.Errorf("%v after %v; want the peer's end", err, took)
		}
		return
	}
	n, err, took := readUntil(c, 2500*time.Millisecond)
	if n != 0 || !isTimeout(err) || took < 2400*time.Millisecond {
		t.Errorf("%d bytes, %v after %v; want a read timeout after 2.5s", n, err, took)
	}
	if _, err := c.Write([]byte("more\n")); err != nil {
		t.Errorf("a write after the peer's end: %v", err)
	}
}

// TestUnixBlackholeHidesThePeersEnd: the same on a Unix stream, whose
// peer's close the program would see as the end of file at once.
func TestUnixBlackholeHidesThePeersEnd(t *testing.T) {
	r := newRelay(t)
	for _, spec := range []string{"blackhole", "blackhole@down", "blackhole@up"} {
		t.Run(spec, func(t *testing.T) {
			t.Parallel()
			unixPeersEnd(t, r, spec)
		})
	}
}

// unixPeersEnd is one case of TestUnixBlackholeHidesThePeersEnd.
func unixPeersEnd(t *testing.T, r *Relay, spec string) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := netstack.ParseFaults(spec)
	sa, err := r.FrontUnix(os.NewFile(uintptr(fds[0]), "peer"), f)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", "@"+string(sa[3:])) // after the family and the NUL
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.AfterFunc(200*time.Millisecond, func() { unix.Close(fds[1]) })
	_, err, took := readUntil(c, 2500*time.Millisecond)
	if spec == "blackhole@up" {
		if err != io.EOF || took > 1500*time.Millisecond {
			t.Errorf("%v after %v; want the peer's close", err, took)
		}
	} else if !isTimeout(err) || took < 2400*time.Millisecond {
		t.Errorf("%v after %v; want a read timeout after 2.5s", err, took)
	}
}

// countingEcho answers each datagram with itself and counts them.
func countingEcho(t *testing.T) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var n atomic.Int64
	go func() {
		buf := make([]byte, 65536)
		for {
			m, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			n.Add(1)
			pc.WriteTo(buf[:m], a)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), &n
}

// burst sends count datagrams of size bytes through the relay and returns
// how many echoes came back within wait, and when the last did.
func burst(t *testing.T, r *Relay, dest netip.AddrPort, spec string, count, size int, wait time.Duration) (int, time.Duration) {
	t.Helper()
	c := udpThrough(t, r, dest, spec)
	defer c.Close()
	c.SetReadBuffer(1 << 20)
	start := time.Now()
	for range count {
		c.Write(make([]byte, size))
	}
	n, last := 0, time.Duration(0)
	buf := make([]byte, 65536)
	for n < count {
		c.SetReadDeadline(start.Add(wait))
		if _, err := c.Read(buf); err != nil {
			break
		}
		n, last = n+1, time.Since(start)
	}
	return n, last
}

// TestDatagramBlackholeAndBandwidth: on UDP a blackhole drops every
// datagram its way (up: none reaches the peer; down: the peer gets them,
// the program no answer), as a DROP would; a bandwidth paces them.
func TestDatagramBlackholeAndBandwidth(t *testing.T) {
	r := newRelay(t)
	for _, c := range []struct {
		spec    string
		arrived int64
	}{{"blackhole", 0}, {"blackhole@up", 0}, {"blackhole@down", 5}} {
		dest, got := countingEcho(t)
		if n, _ := burst(t, r, dest, c.spec, 5, 10, 300*time.Millisecond); n != 0 || got.Load() != c.arrived {
			t.Errorf("%s: %d echoes, %d arrived; want none back, %d arrived", c.spec, n, got.Load(), c.arrived)
		}
	}
	// 10 kB at 4 kB/s, its first 4 kB at once: 1.5 s, each way.
	for _, spec := range []string{"bandwidth:4KB@down", "bandwidth:4KB@up"} {
		t.Run(spec, func(t *testing.T) {
			t.Parallel()
			dest, _ := countingEcho(t)
			if n, last := burst(t, r, dest, spec, 10, 1000, 5*time.Second); n != 10 || last < 1200*time.Millisecond || last > 2500*time.Millisecond {
				t.Errorf("%d echoes, the last after %v; want 10 after 1.5s", n, last)
			}
		})
	}
	// A datagram larger than the burst waits for its size and passes whole:
	// 60 kB up and 60 kB down at 20 kB/s, 16 KiB of each at once.
	t.Run("large", func(t *testing.T) {
		t.Parallel()
		dest, _ := countingEcho(t)
		if n, last := burst(t, r, dest, "bandwidth:20KB", 2, 30000, 10*time.Second); n != 2 || last < 2*time.Second || last > 5*time.Second {
			t.Errorf("%d echoes, the last after %v; want 2 after about 2.9s", n, last)
		}
	})
}

// TestFaultsOnlyWhereTheyApply: a fault set given to a DEST of both
// protocols is relayed with its share for each: loss does nothing to a
// stream, reset nothing to datagrams.
func TestFaultsOnlyWhereTheyApply(t *testing.T) {
	r := newRelay(t)
	reply := []byte("hello")
	b, err, _ := exchange(t, r, server(t, reply), "loss:1+duplicate:1+latency:1ms", 2*time.Second)
	if err != nil || string(b) != "hello" {
		t.Errorf("a stream under loss:1: %q, %v", b, err)
	}
	if n, _ := datagrams(t, r, udpEcho(t), "reset:0+limit:0+slice:1+latency:1ms", 300*time.Millisecond); n != 1 {
		t.Errorf("a datagram under reset:0+limit:0+slice:1: %d echoes", n)
	}
}

// TestOnwardSource: the onward socket leaves from the program socket's
// address when the program bound one (here 127.0.0.2: the front sees it
// there); from the kernel's choice when it did not.
func TestOnwardSource(t *testing.T) {
	r := newRelay(t)
	// A server that answers each connection with the source it came from.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String()))
			c.Close()
		}
	}()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			_, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(a.(*net.UDPAddr).AddrPort().Addr().String()), a)
		}
	}()
	f, _ := netstack.ParseFaults("latency:1ms")
	for _, from := range []string{"127.0.0.2", "127.0.0.1"} {
		local := netip.AddrPortFrom(netip.MustParseAddr(from), freePort(t, "tcp").Port())
		front, err := r.Front(ln.Addr().(*net.TCPAddr).AddrPort(), true, f, local, noAdm, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := (&net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}).Dial("tcp", front.String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) != from {
			t.Errorf("TCP from %s: the peer saw %q", from, b)
		}
		local = netip.AddrPortFrom(local.Addr(), freePort(t, "udp").Port())
		ufront, err := r.Front(pc.LocalAddr().(*net.UDPAddr).AddrPort(), false, f, local, noAdm, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(local), net.UDPAddrFromAddrPort(ufront))
		if err != nil {
			t.Fatal(err)
		}
		u.Write([]byte("ping"))
		u.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		n, _ := u.Read(buf)
		u.Close()
		if string(buf[:n]) != from {
			t.Errorf("UDP from %s: the peer saw %q", from, buf[:n])
		}
	}
}

func TestOnwardSourceChoice(t *testing.T) {
	for _, c := range []struct{ prog, dest, want string }{
		{"10.231.0.3", "10.231.0.2", "10.231.0.3:0"},
		{"10.231.0.3", "127.0.0.1", "10.231.0.3:0"},
		{"127.0.0.1", "10.231.0.2", ""}, // the wildcard, seen from loopback
		{"127.0.0.1", "127.0.0.5", ""},  // the kernel's choice already
		{"127.0.0.2", "127.0.0.1", "127.0.0.2:0"},
		{"127.0.0.2", "10.231.0.2", ""}, // cannot reach it
		{"::1", "fd00::2", ""},
		{"::1", "::1", ""},
		{"fd00::1", "fd00::2", "[fd00::1]:0"},
		{"::ffff:10.0.0.3", "10.0.0.2", "10.0.0.3:0"},
		{"0.0.0.0", "10.0.0.2", ""},
	} {
		got := onwardSource(netip.MustParseAddr(c.prog), netip.MustParseAddr(c.dest))
		if s := got.String(); !got.IsValid() && c.want != "" || got.IsValid() && s != c.want {
			t.Errorf("onwardSource(%s, %s) = %v, want %q", c.prog, c.dest, got, c.want)
		}
	}
}

// waitNoConns waits until r carries no TCP connection, at most 3 s after
// the program closed its own.
func waitNoConns(t *testing.T, r *Relay) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		r.mu.Lock()
		n := 0
		for _, fr := range r.tcp {
			fr.conns.Range(func() { n++ })
		}
		r.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left 3 s after the program closed", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// udpThrough is a program's UDP socket connected to the relay's front for
// dest under the faults spec.
func udpThrough(t *testing.T, r *Relay, dest netip.AddrPort, spec string) *net.UDPConn {
	t.Helper()
	f, err := netstack.ParseFaults(spec)
	if err != nil {
		t.Fatal(err)
	}
	local := freePort(t, "udp")
	front, err := r.Front(dest, false, f, local, noAdm, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(local), net.UDPAddrFromAddrPort(front))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
