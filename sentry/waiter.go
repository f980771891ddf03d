package sentry

import (
	"container/heap"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// waiter finishes blocking connects without holding a thread per call: one
// goroutine waits on an epoll set of the callers' sockets (our duplicates)
// and on a timer heap.
//
// The kernel sends no event when a notification is torn down by a signal,
// so each pending call is re-validated on a backoff schedule; a call whose
// notification vanished is dropped without touching the socket, which the
// interrupted caller may connect again (and, natively, would find still
// connecting: EALREADY, or waiting again after SA_RESTART).
type waiter struct {
	s    *Supervisor
	epfd int
	wake int // eventfd: a new earliest timer

	loop atomic.Pointer[waitLoop] // the loop serving now (run)

	mu    sync.Mutex
	byFD  map[int]*waitItem
	byTid map[uint32]*waitItem // a thread has at most one call in flight
	timer timerHeap
}

type waitKind uint8

const (
	// kindConnected waits for the socket to turn writable: the handshake
	// finished, one way or the other.
	kindConnected waitKind = iota
	// kindRetry retries a Unix connect refused with EAGAIN (full backlog);
	// no readiness event exists for "the peer's backlog has room".
	kindRetry
	// kindAfter answers a fixed errno once its deadline passes (a verdict
	// that shows after a delay).
	kindAfter
	// kindWatch holds no call: it waits for a socket's connect attempt to
	// end, then restores the caller's TCP_USER_TIMEOUT and closes our fd.
	kindWatch
)

// The kernel keeps received, unanswered notifications on a list that
// NOTIF_RECV, NOTIF_ID_VALID and NOTIF_SEND each walk: with 10,000 calls
// parked, every validity check costs a walk of 10,000 entries. Re-validation
// only serves to release our duplicate of a socket whose call a signal tore
// down, so it backs off quickly. (A completing call is always re-validated
// before it touches the socket.)
const (
	firstCheck   = 50 * time.Millisecond
	maxCheck     = 5 * time.Second
	maxUnixRetry = 20 * time.Millisecond
)

type waitItem struct {
	c        *call
	kind     waitKind
	first    unix.Errno // what the call returns when its deadline passes
	deadline time.Time  // from SO_SNDTIMEO (or the verdict's delay); zero when none
	restore  int        // kindWatch: the TCP_USER_TIMEOUT to put back
	next     time.Time  // next validity check, or next retry
	sig      time.Time  // next look for a pending signal (killable listener)
	backoff  time.Duration
	index    int // in the timer heap
}

func (it *waitItem) due() time.Time {
	d := it.next
	if !it.sig.IsZero() && it.sig.Before(d) {
		d = it.sig
	}
	if !it.deadline.IsZero() && it.deadline.Before(d) {
		d = it.deadline
	}
	return d
}

func newWaiter(s *Supervisor) (*waiter, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		return nil, err
	}
	return &waiter{s: s, epfd: epfd, wake: wake, byFD: make(map[int]*waitItem), byTid: make(map[uint32]*waitItem)}, nil
}

// sendTimeout returns the socket's SO_SNDTIMEO, which bounds a blocking
// connect: when it expires, connect returns EINPROGRESS (TCP) or EAGAIN
// (Unix), and the attempt goes on.
func sendTimeout(fd int) time.Duration {
	tv, err := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO)
	if err != nil {
		return 0
	}
	return time.Duration(tv.Nano())
}

func (w *waiter) newItem(c *call, kind waitKind, first unix.Errno) *waitItem {
	it := &waitItem{c: c, kind: kind, first: first, backoff: firstCheck}
	c.waited = true
	if d := sendTimeout(c.sock); d > 0 {
		it.deadline = c.startTime().Add(d)
	}
	it.next = time.Now().Add(firstCheck)
	if w.s.lis.Killable {
		it.sig = time.Now().Add(w.signalPoll())
	}
	return it
}

// waitConnected parks a blocking connect until its socket is writable.
// first is what the attempt returned: EINPROGRESS if it started the
// connection, EALREADY if it found one under way; Linux returns it when the
// send timeout expires.
func (w *waiter) waitConnected(c *call, first unix.Errno) outcome {
	it := w.newItem(c, kindConnected, first)
	err := w.epollAdd(c.sock)
	if err == nil {
		w.mu.Lock()
		w.byFD[c.sock] = it
		w.byTid[c.n.Pid] = it
		w.schedule(it)
		w.mu.Unlock()
	}
	if err != nil {
		w.s.log.internal(c, "epoll_ctl", err)
		return ret(unix.ENOMEM)
	}
	return pending
}

// after parks c and answers e once d has passed.
func (w *waiter) after(c *call, d time.Duration, e unix.Errno) outcome {
	it := w.newItem(c, kindAfter, e)
	it.deadline = time.Now().Add(d)
	w.mu.Lock()
	w.byTid[c.n.Pid] = it
	w.schedule(it)
	w.mu.Unlock()
	return pending
}

// watch takes ownership of fd, a socket whose connect attempt is under way
// with a verdict's TCP_USER_TIMEOUT, and restores the caller's value once
// the attempt ends.
func (w *waiter) watch(fd, restore int) {
	it := &waitItem{c: &call{sock: fd, restoreUserTimeout: -1}, kind: kindWatch, restore: restore, index: -1}
	if err := w.epollAdd(fd); err != nil {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, restore)
		unix.Close(fd)
		return
	}
	w.mu.Lock()
	w.byFD[fd] = it
	w.mu.Unlock()
}

// epollAdd watches fd, the duplicate of a program's socket, for EPOLLOUT
// (level-triggered). Made without w.mu, and not a raw system call (x/sys's
// EpollCtl is): ep_insert polls the file at once, and a socket's poll may
// take its lock (vsock_poll does), which the program can hold (waits.go).
// An event that comes before the item is in byFD is reported again by the
// next epoll_wait.
func (w *waiter) epollAdd(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)}
	_, _, e := unix.Syscall6(unix.SYS_EPOLL_CTL, uintptr(w.epfd), unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// retryLater parks a blocking Unix connect that met a full backlog.
func (w *waiter) retryLater(c *call) outcome {
	it := w.newItem(c, kindRetry, unix.EAGAIN)
	it.backoff = time.Millisecond
	it.next = time.Now().Add(it.backoff)
	w.mu.Lock()
	w.byTid[c.n.Pid] = it
	w.schedule(it)
	w.mu.Unlock()
	return pending
}

// schedule inserts it in the timer heap; w.mu is held.
func (w *waiter) schedule(it *waitItem) {
	heap.Push(&w.timer, it)
	if it.index == 0 {
		unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}

// interrupted is called for every blocking connect before it starts. A
// thread has at most one call in flight, so a call still parked for the same
// thread was torn down by a signal. It reports whether that torn-down call
// was on the same socket with a send timeout: Linux would then have returned
// EINTR (sock_intr_errno), never restarted it, but a torn-down notification
// always restarts under SA_RESTART. The new call is then that restart, or
// the program calling again after EINTR: both are answered EINTR (the
// second is a documented divergence: one extra EINTR).
func (w *waiter) interrupted(c *call) bool {
	w.mu.Lock()
	old, ok := w.byTid[c.n.Pid]
	if ok {
		w.take(old)
	}
	w.mu.Unlock()
	if !ok {
		return false
	}
	// With a killable listener a parked call ends only by an answer or by
	// its thread's death: an item left for this thread is stale.
	same := !w.s.lis.Killable && old.kind != kindAfter && sameFile(old.c.sock, c.sock) && !old.deadline.IsZero()
	w.s.finish(old.c, gone)
	return same
}

func sameFile(a, b int) bool {
	var sa, sb unix.Stat_t
	return unix.Fstat(a, &sa) == nil && unix.Fstat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// take removes it from the epoll set, the thread index and the heap; w.mu
// is held.
func (w *waiter) take(it *waitItem) {
	if w.byTid[it.c.n.Pid] == it {
		delete(w.byTid, it.c.n.Pid)
	}
	if _, ok := w.byFD[it.c.sock]; ok {
		delete(w.byFD, it.c.sock)
		unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, it.c.sock, nil)
	}
	if it.index >= 0 {
		heap.Remove(&w.timer, it.index)
	}
}

// run is the waiter's loop: it finds the parked calls whose socket is ready
// or whose timer is due, and serves them one after the other. Serving one
// can wait on what the program controls (waits.go): a resumed sendmmsg
// reads its next header from the caller's memory, a Unix retry resolves a
// path, finish closes a duplicate. So the loop is watched as a receiver is:
// the watchdog (watchWaiter) starts a new loop when this one has been
// asleep in one item for stuckAfter, gives back to the maps the items the
// stuck loop took in the same round and has not served (giveBack), and the
// stuck loop exits once its wait ends. Before, one such wait stalled every other parked call: their
// deadlines, signals and completions
// (TestHungMemoryStallsOnlyItsCaller/*/*/waiter). Items are served in turn,
// not each on a goroutine of its own: with 10,000 calls parked, concurrent
// NOTIF_ID_VALIDs (each a walk of the kernel's list, under the listener's
// lock) starved the receive thread.
func (w *waiter) run() {
	l := &waitLoop{}
	w.loop.Store(l)
	w.serve(l)
}

// waitLoop is one goroutine running the waiter's loop, on a thread of its
// own (so that the watchdog can tell whether it is asleep).
type waitLoop struct {
	busySince atomic.Int64 // nanotime when the item it serves was taken; 0 between items
	tid       atomic.Int32
	retired   atomic.Bool // another loop took over

	// rest is what this round took from the maps and has not served yet.
	// The watchdog gives it back when it retires the loop: the items
	// taken with a stuck one must not wait for it.
	mu   sync.Mutex
	rest []roundItem
}

// roundItem is an item taken in one round of the loop: ready (its socket
// polled ready: settle) or due (its timer: tick, at now).
type roundItem struct {
	it    *waitItem
	ready bool
	now   time.Time
}

// next pops the next item of the round, unless the loop was retired.
func (l *waitLoop) next() (roundItem, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retired.Load() || len(l.rest) == 0 {
		return roundItem{}, false
	}
	r := l.rest[0]
	l.rest = l.rest[1:]
	l.busySince.Store(nanotime())
	return r, true
}

func (w *waiter) serve(l *waitLoop) {
	runtime.LockOSThread() // never unlocked: a retired loop's thread ends with it
	l.tid.Store(int32(unix.Gettid()))
	events := make([]unix.EpollEvent, 256)
	var round []roundItem
	for !l.retired.Load() {
		timeout := -1
		w.mu.Lock()
		if len(w.timer) > 0 {
			d := time.Until(w.timer[0].due())
			timeout = int((d + time.Millisecond - 1) / time.Millisecond)
			if timeout < 0 {
				timeout = 0
			}
		}
		w.mu.Unlock()
		n, err := unix.EpollWait(w.epfd, events, timeout)
		if err != nil && err != unix.EINTR {
			return
		}
		round = round[:0]
		w.mu.Lock()
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == w.wake {
				var b [8]byte
				unix.Read(w.wake, b[:])
				continue
			}
			if it, ok := w.byFD[fd]; ok {
				w.take(it)
				round = append(round, roundItem{it: it, ready: true})
			}
		}
		now := time.Now()
		for len(w.timer) > 0 && !w.timer[0].due().After(now) {
			it := w.timer[0]
			w.take(it)
			round = append(round, roundItem{it: it, now: now})
		}
		w.mu.Unlock()
		l.mu.Lock()
		l.rest = append(l.rest[:0], round...)
		l.mu.Unlock()
		for {
			r, ok := l.next()
			if !ok {
				break
			}
			if r.ready {
				w.settle(r.it)
			} else {
				w.tick(r.it, r.now)
			}
			l.busySince.Store(0)
		}
	}
}

// watchWaiter is the watchdog's half (see run): it replaces a loop asleep
// in one item for stuckAfter.
func (w *waiter) watchWaiter() {
	l := w.loop.Load()
	if l == nil {
		return
	}
	since := l.busySince.Load()
	if since == 0 || nanotime()-since <= int64(stuckAfter) || !sleeping(int(l.tid.Load())) {
		return
	}
	l.mu.Lock()
	l.retired.Store(true)
	rest := l.rest
	l.rest = nil
	l.mu.Unlock()
	nl := &waitLoop{}
	w.loop.Store(nl)
	w.giveBack(rest)
	go w.serve(nl)
}

// giveBack returns items a retired loop took but did not serve, so that
// the loop now running serves them: a ready socket is watched again (it
// is still ready, so epoll reports it at once), a due timer fires at once.
func (w *waiter) giveBack(rest []roundItem) {
	for _, r := range rest {
		if r.it.kind == kindWatch {
			w.watch(r.it.c.sock, r.it.restore)
		} else {
			w.requeue(r.it)
		}
	}
}

// settle finishes a call whose socket turned writable.
func (w *waiter) settle(it *waitItem) {
	c := it.c
	if it.kind == kindWatch {
		unix.SetsockoptInt(c.sock, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, it.restore)
		unix.Close(c.sock)
		return
	}
	if !w.s.lis.Valid(c.n.ID) {
		// Interrupted meanwhile: leave the socket to the caller's next call.
		w.s.finish(c, gone)
		return
	}
	if !it.deadline.IsZero() && !time.Now().Before(it.deadline) {
		// A socket that keeps polling ready must not starve its deadline.
		w.s.finish(c, w.s.expired(c, it.first))
		return
	}
	if !w.s.redecideRetry(c) {
		w.s.finish(c, w.s.retryDenied(c))
		return
	}
	if c.retry != nil {
		if o := c.retry(w.s, c); o.errno == unix.EAGAIN || o.errno == unix.EINPROGRESS {
			w.requeue(it)
		} else {
			w.s.finish(c, o)
		}
		return
	}
	e := w.s.resume(c)
	if e == unix.EALREADY || e == unix.EINPROGRESS {
		w.requeue(it) // spurious wake-up
		return
	}
	w.s.finish(c, ret(e))
}

// tick handles a timer: deadline, validity check, or Unix retry.
func (w *waiter) tick(it *waitItem, now time.Time) {
	c := it.c
	if !it.sig.IsZero() && !now.Before(it.sig) {
		// Only /proc is read here: ID_VALID walks the kernel's list of
		// every parked call, so it keeps its own, slower schedule.
		if signalled(c.n.Pid) && w.s.lis.Valid(c.n.ID) {
			w.s.finish(c, w.s.signalOutcome(c))
			return
		}
		it.sig = now.Add(w.signalPoll())
		if now.Before(it.next) && (it.deadline.IsZero() || now.Before(it.deadline)) {
			w.requeue(it)
			return
		}
	}
	if !w.s.lis.Valid(c.n.ID) {
		w.s.finish(c, gone)
		return
	}
	if !it.deadline.IsZero() && !now.Before(it.deadline) {
		w.s.finish(c, w.s.expired(c, it.first))
		return
	}
	limit := maxCheck
	if it.kind == kindRetry {
		limit = maxUnixRetry
		if !w.s.redecideRetry(c) {
			w.s.finish(c, w.s.retryDenied(c))
			return
		}
		if c.retry != nil {
			if o := c.retry(w.s, c); o.errno != unix.EAGAIN {
				w.s.finish(c, o)
				return
			}
		} else if e := w.s.attempt(c, true); e != unix.EAGAIN {
			w.s.finish(c, ret(e))
			return
		}
	}
	it.backoff = min(it.backoff*2, limit)
	it.next = now.Add(it.backoff)
	w.requeue(it)
}

// signalPoll is how often a parked call looks for a pending signal when the
// listener is killable: no event tells the supervisor that a signal came,
// so /proc is read: every 2 ms for a few parked calls, less often for many,
// at most 2,500 reads a second in all (5 s apart with 10,000 parked).
func (w *waiter) signalPoll() time.Duration {
	w.mu.Lock()
	n := len(w.byTid)
	w.mu.Unlock()
	return min(max(time.Duration(n)*400*time.Microsecond, 2*time.Millisecond), 5*time.Second)
}

func (w *waiter) requeue(it *waitItem) {
	watched := it.kind == kindConnected && w.epollAdd(it.c.sock) == nil
	w.mu.Lock()
	defer w.mu.Unlock()
	if old, ok := w.byTid[it.c.n.Pid]; !ok || old == it {
		// (A restart of a call torn down meanwhile may have parked
		// already: it is the thread's call now.)
		w.byTid[it.c.n.Pid] = it
	}
	if watched {
		w.byFD[it.c.sock] = it
	}
	w.schedule(it)
}

// timerHeap orders waitItems by due time.
type timerHeap []*waitItem

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due().Before(h[j].due()) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	it := x.(*waitItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *timerHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	it.index = -1
	*h = old[:len(old)-1]
	return it
}
