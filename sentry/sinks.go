package sentry

import (
	"encoding/binary"
	"errors"
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

// unixSinks are the Unix twins of a timeout: a peer that is there but busy.
// For stream and seqpacket, a listener whose backlog (0) is full: a
// blocking connect waits (the waiter retries, honouring SO_SNDTIMEO), a
// non-blocking one gets EAGAIN. For datagrams, a receiver whose queue is
// full: the connect succeeds and sends wait, or get EAGAIN. Each has an
// autobound abstract name, in the supervisor's network namespace (for a
// socket made in another one the name does not exist: ECONNREFUSED).
type unixSinks struct {
	once sync.Once
	err  error
	addr map[int][]byte // by socket type
	keep []int
}

func (u *unixSinks) get(typ int) ([]byte, error) {
	u.once.Do(func() { u.err = u.build() })
	if u.err != nil {
		return nil, u.err
	}
	return u.addr[typ], nil
}

func (u *unixSinks) build() error {
	u.addr = map[int][]byte{}
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_SEQPACKET, unix.SOCK_DGRAM} {
		l, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("unix sink: %w", err)
		}
		u.keep = append(u.keep, l)
		if err := unix.Bind(l, &unix.SockaddrUnix{}); err != nil { // autobind: a fresh abstract name
			return fmt.Errorf("unix sink bind: %w", err)
		}
		sa, err := unix.Getsockname(l)
		if err != nil {
			return err
		}
		name := sa.(*unix.SockaddrUnix).Name // "@xxxxx"
		raw := make([]byte, 2+len(name))
		binary.NativeEndian.PutUint16(raw, unix.AF_UNIX)
		copy(raw[3:], name[1:])
		if typ != unix.SOCK_DGRAM {
			if err := unix.Listen(l, 0); err != nil {
				return err
			}
			// One queued connection fills a backlog of 0.
			if _, err := u.client(typ, raw); err != nil {
				return err
			}
		} else if err := u.fillQueue(raw); err != nil {
			return err
		}
		u.addr[typ] = raw
	}
	return nil
}

func (u *unixSinks) client(typ int, raw []byte) (int, error) {
	c, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, err
	}
	u.keep = append(u.keep, c)
	if e := sockConnect(c, raw); e != 0 {
		return -1, fmt.Errorf("fill unix sink: %w", e)
	}
	return c, nil
}

// fillQueue sends datagrams nobody reads until the receiver's queue is
// full (net.unix.max_dgram_qlen). A sender's own buffer may fill first, so
// senders are added until a fresh one cannot send either.
func (u *unixSinks) fillQueue(raw []byte) error {
	for senders := 0; senders < 256; senders++ {
		c, err := u.client(unix.SOCK_DGRAM, raw)
		if err != nil {
			return err
		}
		sent := 0
		for ; ; sent++ {
			if _, err := unix.Write(c, []byte{0}); err == unix.EAGAIN {
				break
			} else if err != nil {
				return fmt.Errorf("fill unix sink: %w", err)
			}
		}
		if sent == 0 {
			return nil
		}
	}
	return errors.New("fill unix sink: the queue never filled")
}
