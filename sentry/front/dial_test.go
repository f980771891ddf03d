package front

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// maker makes sockets on the calling thread, as a credential thread would
// for the program.
func maker(domain, typ int) (int, error) { return unix.Socket(domain, typ, 0) }

// TestDialWithAMaker: a socket a Maker made connects, over loopback, where
// the handshake often ends before the poller's wait begins: 300 in a row
// must all connect within a second each (an edge missed hangs one until
// its timeout). A refusal is the connect's own errno.
func TestDialWithAMaker(t *testing.T) {
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
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	dst := ln.Addr().(*net.TCPAddr).AddrPort()
	for i := range 300 {
		c, err := Dial(context.Background(), maker, "tcp", netip.AddrPort{}, dst, time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		b := make([]byte, 2)
		if n, err := c.Read(b); n != 2 || err != nil {
			t.Fatalf("dial %d read %d %v", i, n, err)
		}
		c.Close()
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	gone := closed.Addr().(*net.TCPAddr).AddrPort()
	closed.Close()
	if _, err := Dial(context.Background(), maker, "tcp", netip.AddrPort{}, gone, time.Second); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("to a closed port: %v, want ECONNREFUSED", err)
	}
	u, err := Dial(context.Background(), maker, "udp", netip.AddrPort{}, dst, time.Second)
	if err != nil {
		t.Fatalf("udp: %v", err)
	}
	if _, ok := u.(*net.UDPConn); !ok {
		t.Errorf("udp: a %T", u)
	}
	u.Close()
}

// TestDialEndsWithItsContext: a handshake that never ends (a listener
// whose backlog is full drops the SYN) ends with the context.
func TestDialEndsWithItsContext(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(fd, 0)
	sa, _ := unix.Getsockname(fd)
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*unix.SockaddrInet4).Port))
	var fill []net.Conn
	defer func() {
		for _, c := range fill {
			c.Close()
		}
	}()
	for range 2 { // backlog 0 queues one; the second waits in SYN_RECV or is dropped
		if c, err := net.DialTimeout("tcp", dst.String(), 200*time.Millisecond); err == nil {
			fill = append(fill, c)
		}
	}
	start := time.Now()
	_, err = Dial(context.Background(), maker, "tcp", netip.AddrPort{}, dst, 300*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("a handshake that never ends: %v after %v, want the deadline", err, time.Since(start))
	}
}
