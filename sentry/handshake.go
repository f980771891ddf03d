package sentry

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tcpSynRecv is TCP_SYN_RECV (linux/tcp_states.h): a simultaneous open.
const tcpSynRecv = 3

// tcpProgress reads a TCP socket's state and how many bytes of its own the
// peer acknowledged (tcpi_bytes_acked counts the SYN: it is at least 1
// once the handshake completed, and stays so after a reset). ok is false
// for a socket that is not TCP. tcp_get_info takes the socket's lock
// (lock_sock_fast), which the program may hold: not a raw system call
// (waits.go).
func tcpProgress(fd int) (state int, acked uint64, ok bool) {
	var info unix.TCPInfo
	n := uint32(unsafe.Sizeof(info))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 || n < uint32(unsafe.Offsetof(info.Bytes_acked)+8) {
		return 0, 0, false
	}
	return int(info.State), info.Bytes_acked, true
}

// connectedMarks remembers the TCP sockets whose blocking connect the
// supervisor answered 0 while the kernel's socket stayed SS_CONNECTING: the
// peer reset the connection before the supervisor could connect again to
// finish it (see settle). Natively such a socket is SS_CONNECTED, and a
// later connect on it returns EISCONN whatever its TCP state; the kernel
// here would find SS_CONNECTING and report the reset instead. So a later
// connect on a marked socket is answered EISCONN (inet_stream_connect's
// SS_CONNECTED case), and an AF_UNSPEC disconnect clears the mark.
//
// Sockets are named by SO_COOKIE (see call.socketCookie), which is never
// reused (an inode number is, once the socket is closed). Marks are rare (a reset that beat the
// supervisor), so the set is small; it is bounded, oldest dropped first.
type connectedMarks struct {
	n     atomic.Int32 // len(m), read without the lock on the hot path
	mu    sync.Mutex
	m     map[uint64]struct{}
	order []uint64
}

const maxMarks = 4096

func (cm *connectedMarks) add(c *call) {
	cookie, ok := c.socketCookie()
	if !ok {
		return
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if cm.m == nil {
		cm.m = map[uint64]struct{}{}
	}
	if _, dup := cm.m[cookie]; dup {
		return
	}
	if len(cm.order) >= maxMarks {
		delete(cm.m, cm.order[0])
		cm.order = cm.order[1:]
	}
	cm.m[cookie] = struct{}{}
	cm.order = append(cm.order, cookie)
	cm.n.Store(int32(len(cm.m)))
}

// has reports whether the socket is marked; it costs nothing while no
// socket is.
func (cm *connectedMarks) has(c *call) bool {
	if cm.n.Load() == 0 {
		return false
	}
	cookie, ok := c.socketCookie()
	if !ok {
		return false
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	_, in := cm.m[cookie]
	return in
}

func (cm *connectedMarks) remove(c *call) {
	if cm.n.Load() == 0 {
		return
	}
	cookie, ok := c.socketCookie()
	if !ok {
		return
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if _, in := cm.m[cookie]; !in {
		return
	}
	delete(cm.m, cookie)
	for i, x := range cm.order {
		if x == cookie {
			cm.order = append(cm.order[:i], cm.order[i+1:]...)
			break
		}
	}
	cm.n.Store(int32(len(cm.m)))
}

// socketCookie returns the SO_COOKIE of the call's socket: the one takeFD
// read for the cache, or read now.
func (c *call) socketCookie() (uint64, bool) {
	if c.cookie == 0 {
		k, e := rawSocketCookie(c.sock)
		if e != 0 {
			return 0, false
		}
		c.cookie = k
	}
	return c.cookie, true
}
