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
)

// server answers each connection's first read with reply, then closes
// (half-closes if keep).
func server(t *testing.T, reply []byte) netip.AddrPort {
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
	front, err := r.Front(dest, true, f)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := net.Dial("tcp", front.String())
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
		front, err := r.Front(dest, true, f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", front.String())
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
