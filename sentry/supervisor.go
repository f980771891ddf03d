// Package sentry is the supervisor: it receives trapped syscalls from the
// seccomp listener, asks the netstack for a verdict, acts on it, and answers.
//
// One connect takes six hops: receive, dispatch by syscall, decode the
// arguments in the order Linux checks them, decide, act, respond.
package sentry

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"sandbox/netstack"
	"sandbox/seccomp"
	"sandbox/sentry/dnsfwd"
	"sandbox/sentry/relay"
)

// Config configures a Supervisor.
type Config struct {
	Decider netstack.Decider
	Log     *logrus.Logger
	// Summary prints a table of destination, count, verdict and errno to
	// stderr when PROGRAM ends; SummaryJSON writes it to that file.
	Summary     bool
	SummaryJSON string
	// SummaryOnDenial prints the table only if a call was denied (the
	// default for a person at a terminal).
	SummaryOnDenial bool
	// SyncDenials writes a denial's record before the call is answered
	// (for a person at a terminal; it costs the call the write).
	SyncDenials bool
	// Names is the table of the program's lookups: rules by name match
	// through it, and logs and the summary show the names. ObserveDNS puts
	// the DNS forwarder between the program and its resolvers to fill it
	// (see names.go).
	Names      *netstack.Names
	ObserveDNS bool
	// Observe, when set, is given every decided call, on the log's
	// goroutine (sandbox learn). TellSelf marks the default's allows of
	// the tree's own sockets as Self.
	Observe  func(Use)
	TellSelf bool
}

// Supervisor answers the notifications of one listener.
type Supervisor struct {
	lis     *seccomp.Listener
	decider netstack.Decider
	// names and dns: see names.go. netns is the supervisor's network
	// namespace, where the forwarder's fronts are.
	names       *netstack.Names
	dns         *dnsfwd.Forwarder
	netns       unix.Stat_t
	frontFailed sync.Once
	// spoofUnavailable: said once, replies to unconnected sockets come
	// from the fronts (replyAs).
	spoofUnavailable sync.Once
	// unobservedDenied: said once, why lookups are denied (toResolverFront).
	unobservedDenied sync.Once
	// relay carries connections with faults (faults.go), made on first use.
	relay             *relay.Relay
	relayOnce         sync.Once
	faultsUnsupported sync.Once
	frontOtherOwner   sync.Once
	faultsNoFront     sync.Once
	dispatch          *dispatchTable
	tracees           *tracees
	creds             *credCache
	waiter            *waiter
	log               *auditLog
	cfg               Config
	sinks             sinks
	unixSink          unixSinks
	self              status // the supervisor's own credentials
	// tree answers whether a destination belongs to the sandboxed tree,
	// for the "self" default.
	tree *tree
	// ll mirrors the program's own Landlock layers (landlock.go).
	ll *landlockState
	// topology is set when the decider models a network, which needs the
	// socket's SO_BROADCAST.
	topology bool
	// speaksFor: the supervisor may name the caller in SCM_CREDENTIALS
	// (CAP_SYS_ADMIN), so Unix peers of the sends it performs see the
	// caller, not the supervisor.
	speaksFor bool
	// optmemMax is net.core.optmem_max: longer control buffers fail with
	// ENOBUFS before they are copied.
	optmemMax uint64
	// rx is the receiver currently expected to receive (see Serve).
	rx atomic.Pointer[receiver]
	// backlog wakes the backlog receiver (helpWithBacklog).
	backlog chan struct{}
	// credThreads are idle threads carrying callers' credentials (asCaller).
	credThreads credPool
	// marks are the TCP sockets answered as connected while the kernel's
	// socket is not (see settle).
	marks connectedMarks
	// socks caches the sockets' family and type by cookie (sockid.go).
	socks sockIDs
	// directOff: until this nanotime, connects take the brief O_NONBLOCK
	// path, not the direct one (direct.go).
	directOff atomic.Int64
	// helper is the backlog receiver, watched for direct connects too.
	helper atomic.Pointer[receiver]
	// finishing counts calls between their answer and their log record:
	// the answer may let PROGRAM exit, and Close must not drop the record.
	finishing atomic.Int64
}

// New prepares a supervisor for listener lis.
func New(lis *seccomp.Listener, cfg Config) (*Supervisor, error) {
	d, err := newDispatchTable()
	if err != nil {
		return nil, err
	}
	self, err := readStatus("/proc/thread-self/status")
	if err != nil {
		return nil, err
	}
	if cfg.Decider == nil {
		cfg.Decider = netstack.AllowAll{}
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	s := &Supervisor{
		lis:      lis,
		decider:  cfg.Decider,
		dispatch: d,
		tracees:  newTracees(),
		creds:    newCredCache(),
		tree:     newTree(),
		ll:       newLandlockState(),
		log:      newAuditLog(cfg.Log),
		cfg:      cfg,
		self:     self,
		backlog:  make(chan struct{}, 1),
	}
	s.speaksFor = self.CapEff&(1<<unix.CAP_SYS_ADMIN) != 0
	s.optmemMax = readSysctl("/proc/sys/net/core/optmem_max", 20480)
	if t, ok := cfg.Decider.(interface{ Network() *netstack.Network }); ok {
		s.topology = t.Network() != nil
	}
	s.log.syncDenials = cfg.SyncDenials
	s.log.observe = cfg.Observe
	s.log.counting = cfg.Summary || cfg.SummaryJSON != "" || cfg.SummaryOnDenial
	s.waiter, err = newWaiter(s)
	if err != nil {
		return nil, err
	}
	s.names = cfg.Names
	if err := unix.Stat("/proc/thread-self/ns/net", &s.netns); err != nil {
		return nil, err
	}
	s.dns = newForwarder(cfg)
	return s, nil
}

// sockaddrStorage is sizeof(struct sockaddr_storage): the largest addrlen
// the kernel accepts. (unix.SizeofSockaddrAny is 112: not the same thing.)
const sockaddrStorage = 128

// call is one trapped syscall on its way through the supervisor.
type call struct {
	n       seccomp.Notif
	startNs int64 // nanotime when it was received
	name    string

	fd    int32 // the caller's fd argument
	sock  int   // our duplicate of the caller's fd, -1 if none
	flags int   // file status flags of the shared open file description
	// flagsRead: flags was read (see fileFlags).
	flagsRead bool
	// cookie is the socket's SO_COOKIE (see sockIDs).
	cookie uint64

	addr [sockaddrStorage]byte // the address, copied out of the tracee
	alen int

	domain, typ int
	notSock     bool // the fd is not a socket: ENOTSOCK after the address checks
	req         netstack.Request
	dec         netstack.Decision
	decided     bool

	// unix holds the state of an AF_UNIX path connect (see caller.go).
	unix *unixTarget
	// st caches the caller's credentials (read at most once per call).
	st *status
	// live is the caller's status as last read from /proc (liveStatus);
	// same and sameKnown whether its root and mount namespace are the
	// supervisor's (sameRead: readCallerStatus could tell); sup is the
	// supervisor serving the call (nil in unit tests: no credCache).
	live                      *status
	same, sameKnown, sameRead bool
	sup                       *Supervisor
	// sink: the connect goes to a verdict's sink (connectTo).
	sink bool
	// observation: a call only noted (credcache.go), neither decided nor
	// logged.
	observation bool
	// restoreUserTimeout, when >= 0, is the caller's TCP_USER_TIMEOUT, to
	// put back once a timeout verdict's attempt has ended.
	restoreUserTimeout int

	// The send family (sendto.go, sendmsg.go): the caller's flags, the
	// message being sent, sendmmsg's progress, and whether the call may
	// still wait for room (not once a sendmmsg message has left).
	sendFlags int
	msg       message
	mm        *mmsgState
	noWait    bool
	// parked: the call waits in the waiter, which resumes it (retry).
	parked bool
	// waited: the waiter holds the call (newItem), so whatever it read when
	// the call came may have changed since (the file's flags: see
	// briefNonblock).
	waited bool
	// rx is the receiver that received the call.
	rx *receiver
	// afterAnswer, when set, runs once the answer has been given.
	afterAnswer func()
	// retry, when set, is what the waiter runs once the socket is writable
	// (nil: finish a connect).
	retry func(*Supervisor, *call) outcome
}

// outcome is a handler's result.
type outcome struct {
	val     int64
	errno   unix.Errno
	pending bool // the waiter will finish the call later
	gone    bool // the notification vanished: nothing to answer
	// answered: the handler answered itself (ADDFD with SEND, or
	// landlock_restrict_self's CONTINUE, see landlock.go).
	answered bool
}

func ret(e unix.Errno) outcome { return outcome{errno: e} }

// errNotGone is logged when a handler gave up on a call that was still live.
var errNotGone = errors.New("the notification is still valid")

var (
	gone    = outcome{gone: true}
	pending = outcome{pending: true}
)

// Serve runs the receive loop until the listener fails. It never returns
// nil: the supervisor lives as long as the sandboxed program.
func (s *Supervisor) Serve() error {
	// One OS thread receives and answers; synchronous wake-ups then keep the
	// tracee and this thread on one CPU. Blocking connects never hold it:
	// they are finished by the waiter. Work that can block on a file system
	// runs on it too (see waits.go), watched: if it is stuck, another
	// thread takes over receiving.
	go s.waiter.run()
	errc := make(chan error, 1)
	r := newReceiver()
	s.rx.Store(r)
	go s.watchReceiver(errc)
	go s.helpWithBacklog(errc)
	go s.receive(r, errc)
	return <-errc
}

// receiver is one thread receiving notifications.
type receiver struct {
	// busySince is when the call it serves was received (nanotime), 0
	// between calls: the watchdog's reading (waits.go).
	busySince atomic.Int64
	// retire: another receiver took over; this one exits after its call.
	retire atomic.Bool
	// tid is its OS thread; direct its direct connect under way (direct.go).
	tid    atomic.Int32
	direct directConn
}

// newReceiver returns a receiver with no direct connect under way.
func newReceiver() *receiver {
	r := &receiver{}
	r.direct.sock = -1
	return r
}

// receive is a receiver's loop. The first listener error ends Serve.
func (s *Supervisor) receive(r *receiver, errc chan<- error) {
	runtime.LockOSThread()
	r.tid.Store(int32(unix.Gettid()))
	// One call struct serves call after call: a call finished on this
	// thread is referenced by nothing once finish returns (its log record
	// is a copy), so only a call left pending with the waiter takes the
	// struct with it. That saves a 400-byte allocation per notification,
	// and the garbage collections it drove.
	var c *call
	quick := 0 // receives in a row that found another thread's notification waiting
	var lastTid uint32
	for !r.retire.Load() {
		c = s.nextCall(c, r)
		waitFrom := nanotime()
		if !s.receiveInto(c, errc) {
			return
		}
		c.startNs = nanotime()
		if time.Duration(c.startNs-waitFrom) < backlogRecv && c.n.Pid != lastTid {
			if quick++; quick >= backlogRuns {
				select {
				case s.backlog <- struct{}{}:
				default:
				}
			}
		} else {
			quick = 0
		}
		lastTid = c.n.Pid
		r.busySince.Store(c.startNs)
		if s.serveOne(c) {
			c = nil // the waiter holds it
		}
		r.busySince.Store(0)
	}
}

// nextCall returns c cleared for receiver r's next notification, or a new
// call when the last one stayed with the waiter.
func (s *Supervisor) nextCall(c *call, r *receiver) *call {
	if c == nil {
		c = new(call)
	} else {
		*c = call{}
	}
	c.sock, c.restoreUserTimeout, c.rx, c.sup = -1, -1, r, s
	return c
}

// receiveInto receives the next notification into c; false once the
// listener failed, the error reported to Serve.
func (s *Supervisor) receiveInto(c *call, errc chan<- error) bool {
	if err := s.lis.Receive(&c.n); err != nil {
		select {
		case errc <- err:
		default:
		}
		return false
	}
	return true
}

// A receive that returns within backlogRecv found a notification waiting:
// one that blocks waits at least for the switch to the tracee and back.
// backlogRuns such receives in a row, each from another thread than the
// call before, are a backlog: calls from several threads queue behind the
// one being served. (A single thread's next call is often waiting too,
// unpinned: it traps again on the other CPU while the receiver finishes
// the previous one. That is no backlog: it cannot be served sooner.)
const (
	backlogRecv = 2 * time.Microsecond
	backlogRuns = 3
)

// helpWithBacklog is a second receiver, on its own thread, for backlogs
// only. A single receiver serialises the calls of a program with many
// threads on one CPU while the other has room; natively those threads
// would make their calls in parallel. Woken by a receiver that meets a
// backlog, it receives while a notification is waiting (Pending), then
// sleeps again. It never waits in NOTIF_RECV for long: two receivers
// blocked there would both be woken for every notification (the listener's
// wait queue is not exclusive), a wake-up wasted per call. Losing the race
// for the last waiting notification leaves it there until the next one.
func (s *Supervisor) helpWithBacklog(errc chan<- error) {
	runtime.LockOSThread()
	r := newReceiver()
	r.tid.Store(int32(unix.Gettid()))
	s.helper.Store(r)
	var c *call
	for range s.backlog {
		for s.lis.Pending() {
			c = s.nextCall(c, r)
			if !s.receiveInto(c, errc) {
				return
			}
			c.startNs = nanotime()
			r.busySince.Store(c.startNs)
			if s.serveOne(c) {
				c = nil
			}
			r.busySince.Store(0)
		}
	}
}

// stuckAfter is how long a receiver may sleep in a call before another
// takes over. A hung file system then stalls only its own caller,
// as natively; calls that finish in time cost no hand-over at all.
const stuckAfter = 20 * time.Millisecond

// watchReceiver starts a new receiver whenever the current one is stuck in
// a call, and retires the stuck one once its call ends. (The backlog
// helper is never replaced: stuck, it stalls only its own caller.) It
// watches the waiter's loop the same way (watchWaiter).
func (s *Supervisor) watchReceiver(errc chan<- error) {
	t := time.NewTicker(stuckAfter / 2)
	defer t.Stop()
	for range t.C {
		s.waiter.watchWaiter()
		if h := s.helper.Load(); h != nil && stuck(h) {
			s.convertDirect(h)
		}
		r := s.rx.Load()
		if stuck(r) && !s.convertDirect(r) && sleeping(int(r.tid.Load())) {
			r.retire.Store(true)
			nr := newReceiver()
			s.rx.Store(nr)
			go s.receive(nr, errc)
		}
	}
}

// stuck reports whether r has been in one call for stuckAfter. (Whether
// it is asleep there, or only descheduled on a busy machine, is the
// caller's question: sleeping.)
func stuck(r *receiver) bool {
	since := r.busySince.Load()
	return since != 0 && nanotime()-since > int64(stuckAfter)
}

// serveOne serves c; pending reports that the call is left to the waiter,
// which finishes it later.
func (s *Supervisor) serveOne(c *call) (pending bool) {
	e, ok := s.dispatch.get(c.n.Data.Nr)
	if !ok || c.n.Data.Arch != unix.AUDIT_ARCH_X86_64 {
		// The filter traps only what the table names; anything else is a
		// mismatch between filter and table. Fail closed.
		c.name = "unknown"
		s.finish(c, ret(unix.ENOSYS))
		return false
	}
	c.name = e.name
	s.creds.seen(c.n.Pid)
	o := e.handler(s, c)
	if !o.pending {
		s.finish(c, o)
	}
	return o.pending
}

// finish releases what the call held, answers it (unless it vanished) and
// logs it. Every call ends here exactly once.
//
// Release comes first: once the program sees the result, the supervisor
// must hold no reference to its socket, or a close() right after connect
// would not release the socket as it does natively (the peer would not see
// EOF, a write to the accepted end would not fail with EPIPE).
func (s *Supervisor) finish(c *call, o outcome) {
	s.finishing.Add(1)
	defer s.finishing.Add(-1)
	if o.gone && s.lis.Valid(c.n.ID) {
		// Only NOTIF_ID_VALID may call a notification gone: a live call
		// taken for gone would hang its thread. Fail closed.
		s.log.internal(c, "a live call taken for gone", errNotGone)
		o = ret(c.resourceErrno())
	}
	s.release(c)
	logged := !o.gone && s.log.denialFirst(c)
	if logged {
		s.log.recordNow(c, o) // a person sees the warning before the program's reaction
	}
	if !o.gone && !o.answered {
		if err := s.lis.Respond(c.n.ID, o.val, o.errno); err != nil {
			if !errors.Is(err, seccomp.ErrGone) {
				s.log.internal(c, "respond", err)
			}
			o.gone = true
		}
	}
	if !o.gone && c.afterAnswer != nil {
		c.afterAnswer()
	}
	if !logged && !c.observation {
		s.log.record(c, o)
	}
}

func (s *Supervisor) release(c *call) {
	if c.sock >= 0 && c.restoreUserTimeout >= 0 {
		if tcpState(c.sock) == tcpSynSent {
			// Still trying (a send timeout, or a non-blocking caller): the
			// waiter restores it when the attempt ends, and closes.
			s.waiter.watch(c.sock, c.restoreUserTimeout)
			c.sock = -1
		} else {
			unix.SetsockoptInt(c.sock, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, c.restoreUserTimeout)
		}
	}
	if c.sock >= 0 {
		closeDup(c.sock)
		c.sock = -1
	}
	if c.unix != nil {
		c.unix.close()
	}
	c.msg.release()
}

// Close flushes the audit log and writes the summary. Calls still parked
// are left unanswered: the listener closes with the process, and the kernel
// then fails them (ENOSYS).
func (s *Supervisor) Close() {
	// A call answered just before PROGRAM exited may still be on its way to
	// the log.
	for deadline := time.Now().Add(time.Second); s.finishing.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if s.dns != nil {
		s.dns.Close()
	}
	s.relayOnce.Do(func() {}) // no relay made from here on
	if s.relay != nil {
		s.relay.Close()
	}
	s.log.Close()
	if s.cfg.Summary || s.cfg.SummaryOnDenial && s.log.sum.anyDenied() {
		s.log.sum.writeTable(os.Stderr)
	}
	if s.cfg.SummaryJSON != "" {
		if err := s.log.sum.writeJSON(s.cfg.SummaryJSON); err != nil {
			s.cfg.Log.WithField("error", err).Error("write --summary-json")
		}
	}
}

// readSysctl reads a numeric sysctl, or returns def.
func readSysctl(path string, def uint64) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return def
	}
	return v
}
