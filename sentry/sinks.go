package sentry

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sinks are supervisor-owned loopback endpoints that make the kernel itself
// produce a verdict's whole sequence on the caller's socket: EINPROGRESS,
// readiness, SO_ERROR, EALREADY, and a socket usable afterwards.
//
//   - refuse: a bound TCP port nobody listens on. A SYN gets a RST:
//     ECONNREFUSED, exactly a closed port.
//   - tarpit: a listener whose accept queue is full. SYNs are dropped, the
//     connect stays in SYN_SENT, and TCP_USER_TIMEOUT on the caller's socket
//     makes the kernel end it with ETIMEDOUT when the verdict's time is up.
//   - udpRefuse: a UDP port nobody has bound: a connect succeeds, sends draw
//     ICMP port unreachable, and the next call reports ECONNREFUSED.
//   - udpDrop: a UDP socket that is never read: datagrams vanish.
//
// They live in the supervisor's network namespace: for a caller in another
// one, refuse still refuses (that port is closed there too) but a timeout
// becomes a refusal.
type sinks struct {
	once sync.Once
	err  error
	// sockaddrs by family: [0] AF_INET, [1] AF_INET6
	refuse, tarpit, udpRefuse, udpDrop [2][]byte
	keep                               []int // descriptors kept open for the sinks' lifetime
}

func famIndex(domain int) int {
	if domain == unix.AF_INET6 {
		return 1
	}
	return 0
}

func (k *sinks) get() error {
	k.once.Do(func() { k.err = k.build() })
	return k.err
}

func (k *sinks) build() error {
	for i, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		var err error
		if k.refuse[i], err = k.bound(fam, unix.SOCK_STREAM, false); err != nil {
			if fam == unix.AF_INET6 {
				continue // no IPv6 loopback: IPv6 verdicts fall back to plain errnos
			}
			return err
		}
		if k.tarpit[i], err = k.makeTarpit(fam); err != nil {
			return err
		}
		if k.udpDrop[i], err = k.bound(fam, unix.SOCK_DGRAM, false); err != nil {
			return err
		}
		// A UDP port that was free a moment ago: bind, read the port, close.
		if k.udpRefuse[i], err = k.bound(fam, unix.SOCK_DGRAM, true); err != nil {
			return err
		}
	}
	return nil
}

func loopback(fam int) unix.Sockaddr {
	if fam == unix.AF_INET6 {
		return &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
	}
	return &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
}

// bound binds a socket to a loopback ephemeral port and returns its address.
func (k *sinks) bound(fam, typ int, release bool) ([]byte, error) {
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sink socket: %w", err)
	}
	if err := unix.Bind(fd, loopback(fam)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sink bind: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if typ == unix.SOCK_DGRAM && !release {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
	}
	if release {
		unix.Close(fd)
	} else {
		k.keep = append(k.keep, fd)
	}
	return rawSockaddr(sa), nil
}

func (k *sinks) makeTarpit(fam int) ([]byte, error) {
	l, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(l, loopback(fam)); err != nil {
		unix.Close(l)
		return nil, err
	}
	if err := unix.Listen(l, 0); err != nil {
		unix.Close(l)
		return nil, err
	}
	sa, _ := unix.Getsockname(l)
	// One established connection fills a backlog-0 accept queue; the kernel
	// then drops every further SYN.
	c, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		unix.Close(l)
		return nil, err
	}
	if err := unix.Connect(c, sa); err != nil {
		unix.Close(l)
		unix.Close(c)
		return nil, fmt.Errorf("fill tarpit: %w", err)
	}
	k.keep = append(k.keep, l, c)
	return rawSockaddr(sa), nil
}

// rawSockaddr renders an inet sockaddr as the bytes connect(2) takes.
func rawSockaddr(sa unix.Sockaddr) []byte {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		b := make([]byte, unix.SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], uint16(a.Port))
		copy(b[4:8], a.Addr[:])
		return b
	case *unix.SockaddrInet6:
		b := make([]byte, unix.SizeofSockaddrInet6)
		binary.NativeEndian.PutUint16(b, unix.AF_INET6)
		binary.BigEndian.PutUint16(b[2:], uint16(a.Port))
		copy(b[8:24], a.Addr[:])
		binary.NativeEndian.PutUint32(b[24:], a.ZoneId)
		return b
	}
	return nil
}

// tcpState returns the TCP state of fd (linux/tcp_states.h), or -1.
func tcpState(fd int) int {
	var info unix.TCPInfo
	n := uint32(unsafe.Sizeof(info))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return -1
	}
	return int(info.State)
}

// TCP states (linux/tcp_states.h).
const (
	tcpSynSent = 2
	tcpClose   = 7
)

func durationMillis(d time.Duration) int {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	if ms > 1<<31-1 {
		ms = 1<<31 - 1
	}
	return int(ms)
}
