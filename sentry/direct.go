package sentry

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The direct connect: an allowed stream connect whose handshake the kernel
// completes inside the connect call itself is performed as the caller
// would perform it, one plain connect(2) on the duplicate, honouring the
// open file's own O_NONBLOCK. That is a Unix stream or seqpacket connect
// (unix_stream_connect queues the connection at once when the listener has
// room) and a TCP connect to a loopback address (the SYN, SYN-ACK and ACK
// are processed in softirq context before the connecting task checks the
// state: inet_wait_for_connect returns at once). It costs what the floor's
// connect costs: no F_GETFL, no brief O_NONBLOCK, no TCP_INFO, no second
// connect (the brief O_NONBLOCK path, connectAllowed, pays 5 more system
// calls). And it is exact by construction: the kernel's own blocking path
// runs, so the answer is 0 at ESTABLISHED whatever comes afterwards, a
// refusal is ECONNREFUSED, SO_SNDTIMEO bounds it (EINPROGRESS, EAGAIN).
//
// It can still block: a listener whose accept queue is full drops the SYN
// (TCP: the retransmission comes a second later) or makes the connector
// wait for room (Unix). The call is marked as work that can block, and the
// watchdog (watchReceiver) converts a direct connect that has been under way
// for stuckAfter: it sets O_NONBLOCK on the shared open file description,
// as the brief O_NONBLOCK path would have, and signals the receive thread.
// The kernel restarts the interrupted connect (Go's handlers are
// SA_RESTART), which now finds the attempt under way and returns EALREADY
// (TCP) or EAGAIN (Unix) at once, or EINTR where SO_SNDTIMEO makes the wait
// non-restartable (sock_intr_errno). The receiver restores the caller's
// flags and parks the call in the waiter, exactly where the brief
// O_NONBLOCK path would have parked it: signals and timeouts are then
// served as for any parked connect. For directStall after a conversion,
// connects take the brief O_NONBLOCK path, so a program that keeps
// connecting to a stalled listener (10,000 pending connects are tested)
// pays the stall once.

// directStall is how long the direct connect stays off after a conversion.
const directStall = time.Second

// directConn is a receiver's direct connect under way, guarded by mu: the
// watchdog converts it only while sock is the call's own duplicate.
type directConn struct {
	mu   sync.Mutex
	sock int // -1: none under way
	// converted: the watchdog set O_NONBLOCK; flags are the caller's own.
	converted bool
	flags     int
	at        int64 // UnixNano of the conversion
}

// canConnectDirect reports whether c's allowed connect may be performed
// directly: a stream connect the kernel completes inside the call, issued
// on this receive thread (the caller's credentials are the supervisor's,
// see connectOnce), outside a stall.
func (s *Supervisor) canConnectDirect(c *call) bool {
	if c.rx == nil || (c.typ != unix.SOCK_STREAM && c.typ != unix.SOCK_SEQPACKET) {
		return false
	}
	if c.sink {
		// A verdict's sink (a refusal, a tarpit meant to hang) takes the
		// waiter's path.
		return false
	}
	if until := s.directOff.Load(); until != 0 && time.Now().UnixNano() < until {
		return false
	}
	switch c.domain {
	case unix.AF_UNIX:
		if c.unix != nil {
			st, err := c.callerStatus()
			return err == nil && samePathCreds(st, s.self)
		}
		return !c.needsCallerCreds(s)
	case unix.AF_INET, unix.AF_INET6:
		if c.typ != unix.SOCK_STREAM || !loopbackSockaddr(c.addr[:c.alen]) {
			return false
		}
		// Only a socket that is not connecting yet (TCP_CLOSE): what a
		// converted attempt returns when SO_SNDTIMEO expires depends on it
		// (EINPROGRESS for a new attempt, EALREADY for one under way), and
		// the restarted connect no longer tells. An MPTCP socket, which
		// has no TCP_INFO here, takes the brief O_NONBLOCK path.
		st, _, ok := tcpProgress(c.sock)
		return ok && st == tcpClose
	}
	return false
}

// loopbackSockaddr reports whether a is an inet address on the loopback
// network: 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104.
func loopbackSockaddr(a []byte) bool {
	if len(a) < 2 {
		return false
	}
	switch binary.NativeEndian.Uint16(a) {
	case unix.AF_INET:
		return len(a) >= unix.SizeofSockaddrInet4 && a[4] == 127
	case unix.AF_INET6:
		if len(a) < 24 {
			return false
		}
		ip := a[8:24]
		var v4mapped = [12]byte{10: 0xff, 11: 0xff}
		if [12]byte(ip[:12]) == v4mapped {
			return ip[12] == 127
		}
		return [16]byte(ip) == [16]byte{15: 1}
	}
	return false
}

// connectDirect performs c's connect with one plain connect(2), converting
// to the waiter if the watchdog finds it stuck (see above).
func (s *Supervisor) connectDirect(c *call) outcome {
	if s.waiter.interrupted(c) {
		return ret(unix.EINTR)
	}
	r := c.rx
	if r.busySince.Load() == 0 {
		r.busySince.Store(time.Now().UnixNano())
		defer r.busySince.Store(0)
	}
	d := &r.direct
	d.mu.Lock()
	d.sock, d.converted = c.sock, false
	d.mu.Unlock()
	var e unix.Errno
	if c.unix != nil {
		e = c.unix.connect(s, c)
	} else {
		e = blockingConnect(c.sock, c.addr[:c.alen])
	}
	d.mu.Lock()
	converted, flags := d.converted, d.flags
	d.sock, d.converted = -1, false
	d.mu.Unlock()
	if !converted {
		if (e == unix.ECONNRESET || e == unix.EPIPE || e == unix.ECONNABORTED) && c.domain != unix.AF_UNIX {
			return ret(s.resetAfterHandshake(c, e))
		}
		return ret(e)
	}
	c.flags, c.flagsRead = flags, true
	rawFcntl(c.sock, unix.F_SETFL, flags)
	if flags&unix.O_NONBLOCK != 0 {
		return ret(e) // the caller's own non-blocking connect: nothing waited
	}
	switch {
	case c.domain != unix.AF_UNIX && (e == unix.EALREADY || e == unix.EINPROGRESS || e == unix.EINTR):
		// The attempt goes on; Linux returns EINPROGRESS if the send
		// timeout expires.
		return s.waiter.waitConnected(c, unix.EINPROGRESS)
	case c.domain == unix.AF_UNIX && (e == unix.EAGAIN || e == unix.EINTR):
		return s.waiter.retryLater(c)
	}
	return ret(e)
}

// resetAfterHandshake settles a direct TCP connect that failed with e, an
// error sock_error gave (ECONNRESET, EPIPE, ECONNABORTED). The
// native task is woken at ESTABLISHED and looks at once; the supervisor's
// thread, woken the same way, may be preempted first, by the very server
// that then accepts and resets (a busy supervisor thread is the one the
// scheduler preempts), and connect then returns the reset. When the SYN
// was acknowledged (tcpi_bytes_acked >= 1) the handshake completed: the
// answer is 0, as natively, and the mark stands in for the SS_CONNECTED
// that sock_error undid (see settle). The reset itself was consumed: the
// program's next recv sees EOF rather than ECONNRESET, the same window of
// one system call as settle's.
func (s *Supervisor) resetAfterHandshake(c *call, e unix.Errno) unix.Errno {
	if st, acked, ok := tcpProgress(c.sock); ok && st == tcpClose && acked > 0 {
		s.marks.add(c)
		return 0
	}
	return e
}

// convertDirect is the watchdog's half: if r is in a direct connect, make
// it return (see above). It reports whether r was converted now or is
// still within stuckAfter of a conversion.
func (s *Supervisor) convertDirect(r *receiver) bool {
	d := &r.direct
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sock < 0 {
		return false
	}
	if d.converted {
		return time.Now().UnixNano()-d.at < int64(stuckAfter)
	}
	if !sleeping(int(r.tid.Load())) {
		// Runnable: descheduled on a busy machine, not waiting in the
		// connect. Converting would cost the next directStall's connects
		// the brief O_NONBLOCK path for nothing.
		return true
	}
	f, e := rawFcntl(d.sock, unix.F_GETFL, 0)
	if e != 0 {
		return false
	}
	if _, e := rawFcntl(d.sock, unix.F_SETFL, f|unix.O_NONBLOCK); e != 0 {
		return false
	}
	d.converted, d.flags, d.at = true, f, time.Now().UnixNano()
	s.directOff.Store(d.at + int64(directStall))
	// Go ignores a SIGURG that is not its own preemption request; the
	// handler is SA_RESTART, so the connect restarts, non-blocking now.
	unix.Tgkill(os.Getpid(), int(r.tid.Load()), unix.SIGURG)
	s.cfg.Log.WithField("stalled", directStall).Debug("a direct connect blocked: handed to the waiter; connects take the brief O_NONBLOCK path meanwhile")
	return true
}

// sleeping reports whether thread tid of the supervisor is asleep (state S
// or D in /proc/self/task/TID/stat): waiting in a system call.
func sleeping(tid int) bool {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return true // cannot tell: convert, which is always correct
	}
	// The state follows the command name's closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] == 'S' || b[i+2] == 'D'
}

// blockingConnect is connect(2) that may block: unix.Syscall tells the Go
// scheduler, so a long wait does not hold a processor (see pathConnect).
func blockingConnect(fd int, addr []byte) unix.Errno {
	var p unsafe.Pointer
	if len(addr) > 0 {
		p = unsafe.Pointer(&addr[0])
	}
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(p), uintptr(len(addr)))
	return e
}
