package relay

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

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
	deadline := time.Now().Add(3 * time.Second)
	for {
		r.mu.Lock()
		n := 0
		for _, fr := range r.tcp {
			fr.conns.Range(func() { n++ })
		}
		r.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left 3 s after the program closed", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
