package front

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Maker makes a socket (socket(2)'s domain and type) with the identity of
// the program a front carries a connection for: its uids, gids and groups.
// A socket carries its creator's identity for good (the file's
// credentials, sk_uid): owner matches (iptables -m owner), uid routing
// (ip rule uidrange), LSM and audit see it. The onward socket is the one
// the program's connection leaves on, so it must be the program's, never
// the supervisor's, which is often root. nil makes the socket on the
// calling thread (the program runs as the supervisor).
type Maker func(domain, typ int) (int, error)

// Dial connects a socket that mk makes to dst (network "tcp" or "udp"),
// from local when valid, until ctx ends or timeout (0: none) passes.
func Dial(ctx context.Context, mk Maker, network string, local, dst netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if mk == nil {
		d := net.Dialer{}
		if local.IsValid() {
			d.LocalAddr = addrOf(network, local)
		}
		return d.DialContext(ctx, network, dst.String())
	}
	domain := unix.AF_INET6
	if dst.Addr().Unmap().Is4() {
		domain = unix.AF_INET
	}
	typ := unix.SOCK_DGRAM
	if network == "tcp" {
		typ = unix.SOCK_STREAM
	}
	fd, err := mk(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "onward") // non-blocking: in Go's poller
	defer f.Close()
	if local.IsValid() {
		if err := unix.Bind(fd, sockaddr(domain, local)); err != nil {
			return nil, err
		}
	}
	err = unix.Connect(fd, sockaddr(domain, dst))
	if err == nil {
		return net.FileConn(f) // a duplicate; f's own descriptor closes
	}
	if err != unix.EINPROGRESS {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var soErr error
	// Writable once the handshake ended, one way or the other: SO_ERROR
	// says which. Each look polls the socket itself: the poller's readiness
	// is reset as the wait begins (prepareWrite), and a loopback handshake
	// often ends before that, so an edge alone may never come.
	werr := rc.Write(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(p, 0); err == nil && n == 0 {
			return false // still connecting: wait for the edge
		}
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && v != 0 {
			err = unix.Errno(v)
		}
		soErr = err
		return true
	})
	switch {
	case werr != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case werr != nil:
		return nil, werr
	case soErr != nil:
		return nil, soErr
	}
	return net.FileConn(f) // a duplicate; f's own descriptor closes
}

func addrOf(network string, a netip.AddrPort) net.Addr {
	if network == "tcp" {
		return net.TCPAddrFromAddrPort(a)
	}
	return net.UDPAddrFromAddrPort(a)
}

// sockaddr is a in domain's form: an IPv4 address for an AF_INET6 socket
// is written mapped; a zone is an interface's name or index.
func sockaddr(domain int, a netip.AddrPort) unix.Sockaddr {
	if domain == unix.AF_INET {
		return &unix.SockaddrInet4{Addr: a.Addr().Unmap().As4(), Port: int(a.Port())}
	}
	sa := &unix.SockaddrInet6{Addr: a.Addr().As16(), Port: int(a.Port())}
	if z := a.Addr().Zone(); z != "" {
		if i, err := strconv.Atoi(z); err == nil {
			sa.ZoneId = uint32(i)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa
}

// Cookie is the SO_COOKIE of c's socket (0 if unreadable).
func Cookie(c syscall.Conn) uint64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var k uint64
	rc.Control(func(fd uintptr) { k, _ = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE) })
	return k
}
