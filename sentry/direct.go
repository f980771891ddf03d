package sentry

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The direct connect: an allowed Unix stream or seqpacket connect is
// performed as the caller would perform it, one plain connect(2) on the
// duplicate, honouring the open file's own O_NONBLOCK. unix_stream_connect
// queues the new connection at once when the listener has room, so the
// call does not wait, and it costs what the floor's connect costs: no
// F_GETFL, no brief O_NONBLOCK (connectAllowed's path pays an F_GETFL
// and two ioctls).
// It is exact by construction: the kernel's own path runs on the caller's
// socket, and a Unix connect's result does not depend on what the peer
// does after (no handshake to finish, no error to collect).
//
// TCP stays on the brief O_NONBLOCK path, even to loopback, where the
// handshake also completes inside the call: a blocking connect made by
// the supervisor's thread, woken at ESTABLISHED, can be preempted by the
// very server it woke, which accepts and resets; the connect then consumes
// the reset (sock_error). The native task is preempted that way far less
// often (7 of 5,000 connects against 0 in TestBlockingConnectsToAResettingServer,
// four threads, unpinned, when it was tried), and settle's TCP_INFO reading
// leaves the reset for the program's next call.
//
// A Unix connect can still block: a listener whose accept queue is full
// makes the connector wait for room. The call is watched, as every call
// on a receive thread is (waits.go), and the watchdog (watchReceiver)
// converts a direct connect found asleep for stuckAfter: it sets
// O_NONBLOCK on the shared open file description, as the brief O_NONBLOCK
// path would have, and signals the receive thread. The kernel restarts the interrupted connect (Go's
// handlers are SA_RESTART), which now returns EAGAIN at once, or EINTR
// where SO_SNDTIMEO makes the wait non-restartable (sock_intr_errno). The
// receiver clears the watchdog's O_NONBLOCK and parks the call in the waiter,
// exactly where the brief O_NONBLOCK path would have parked it: signals and
// timeouts are then served as for any parked connect. For directStall
// after a conversion, connects take the brief O_NONBLOCK path, so a
// program that keeps connecting to a stalled listener pays the stall once.

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
	at        int64 // nanotime of the conversion
}

// canConnectDirect reports whether c's allowed connect may be performed
// directly: a Unix stream or seqpacket connect issued on this receive
// thread (the caller's path credentials are the supervisor's, see
// connectOnce), outside a stall.
func (s *Supervisor) canConnectDirect(c *call) bool {
	if c.domain != unix.AF_UNIX || c.typ != unix.SOCK_STREAM && c.typ != unix.SOCK_SEQPACKET || c.rx == nil {
		return false
	}
	if c.sink {
		// A verdict's sink (a refusal, a tarpit meant to hang) takes the
		// waiter's path.
		return false
	}
	if c.dec.Rule == selfRule && c.unix == nil {
		// An abstract name allowed because the tree owns its socket: a
		// blocked connect looks the name up again by itself (goto restart
		// in unix_stream_connect), undecided, and may find a process
		// outside the tree there. The waiter decides each retry again.
		return false
	}
	if until := s.directOff.Load(); until != 0 && nanotime() < until {
		return false
	}
	if c.unix != nil {
		st, err := c.callerStatus()
		return err == nil && samePathCreds(st, s.self)
	}
	return !c.needsCallerCreds(s)
}

// connectDirect performs c's connect with one plain connect(2), watched
// as every call on a receive thread is (waits.go), converting to the
// waiter if the watchdog finds it stuck (see above).
func (s *Supervisor) connectDirect(c *call) outcome {
	if s.waiter.interrupted(c) {
		return ret(unix.EINTR)
	}
	d := &c.rx.direct
	d.mu.Lock()
	d.sock, d.converted = c.sock, false
	d.mu.Unlock()
	var e unix.Errno
	if c.unix != nil {
		e = c.unix.connect(s, c)
	} else {
		e = sockConnect(c.sock, c.addr[:c.alen])
	}
	d.mu.Lock()
	converted, flags := d.converted, d.flags
	d.sock, d.converted = -1, false
	d.mu.Unlock()
	if !converted {
		return ret(e)
	}
	c.flags, c.flagsRead = flags, true
	restoreNonblock(c, flags&unix.O_NONBLOCK == 0) // the watchdog's O_NONBLOCK, and only it
	if flags&unix.O_NONBLOCK == 0 && (e == unix.EAGAIN || e == unix.EINTR) {
		return s.waiter.retryLater(c) // the caller blocks: wait for room
	}
	return ret(e)
}

// convertDirect is the watchdog's half: if r is in a direct connect, make
// it return (see above). It reports whether r was converted now or is
// still within stuckAfter of a conversion.
func (s *Supervisor) convertDirect(r *receiver) bool {
	converted, handled := s.convertLocked(r)
	if converted {
		// Logged once the receiver's lock is released: a write to the
		// terminal can wait, and the watchdog must not wait holding it.
		s.cfg.Log.WithField("stalled", directStall).Debug("a direct connect blocked: handed to the waiter; connects take the brief O_NONBLOCK path meanwhile")
	}
	return handled
}

// convertLocked is convertDirect under the receiver's lock: converted says
// it converted now, handled what convertDirect reports.
func (s *Supervisor) convertLocked(r *receiver) (converted, handled bool) {
	d := &r.direct
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sock < 0 {
		return false, false
	}
	if d.converted {
		return false, nanotime()-d.at < int64(stuckAfter)
	}
	if !sleeping(int(r.tid.Load())) {
		// Runnable: descheduled on a busy machine, not waiting in the
		// connect. Converting would cost the next directStall's connects
		// the brief O_NONBLOCK path for nothing.
		return false, true
	}
	f, e := rawFcntl(d.sock, unix.F_GETFL, 0)
	if e != 0 {
		return false, false
	}
	if e := setNonblock(d.sock, true); e != 0 {
		return false, false
	}
	d.converted, d.flags, d.at = true, f, nanotime()
	s.directOff.Store(d.at + int64(directStall))
	// Go ignores a SIGURG that is not its own preemption request; the
	// handler is SA_RESTART, so the connect restarts, non-blocking now.
	unix.Tgkill(os.Getpid(), int(r.tid.Load()), unix.SIGURG)
	return true, true
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
