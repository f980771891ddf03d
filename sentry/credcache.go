package sentry

import (
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// credCache remembers, per process, the credentials a caller's calls are
// checked with (uids and gids, fsuid and fsgid included, groups, effective
// capabilities as they count in the supervisor's user namespace, the user
// namespace) and whether its root and mount namespace are the
// supervisor's, so that a Unix path connect does not read /proc/TID/status
// and stat /proc/TID/root each time.
//
// Credentials are per thread, and only the thread itself changes them
// (commit_creds acts on current). A process's threads start equal (clone
// copies the creator's) and stay equal until one of them calls a syscall
// of the set*id family, setgroups or capset, or the process execs: those
// are trapped as observations (table.go). An observation marks the process
// before the kernel runs the call (the answer is CONTINUE, given after the
// mark), so a change in flight is never missed:
//
//   - set*id, setgroups, capset, and an exec by a thread other than the
//     leader: the process is volatile, not remembered again until a call
//     of its leader finds it with that one thread (settled). (Until then
//     its threads may differ, and a change may still be in flight.)
//   - execve and execveat by the leader: nothing is used or remembered
//     until the leader's next trapped call, which proves the exec has ended
//     (it succeeded or failed; begin_new_exec commits the new credentials
//     before execve returns), and is then read afresh.
//   - chroot, pivot_root, and unshare or setns of a mount namespace: every
//     process's root may now differ (pivot_root moves every root on the old
//     one, chroot_fs_refs; CLONE_FS shares one fs_struct between
//     processes), so roots are never remembered again.
//
// prctl needs no trap: PR_SET_KEEPCAPS, PR_SET_SECUREBITS, PR_CAP_AMBIENT
// and PR_CAPBSET_DROP change no uid, gid, group or effective capability
// until a later set*id or exec, which are trapped. New user namespaces are
// refused in the filter, or, with --allow-userns, their unshare and setns
// are observations too (clone and clone3 make new processes, which start
// unremembered).
//
// A process is filled from /proc only when all its threads show equal
// credentials (a program that started with unequal ones, the init stage
// among them, is simply not remembered until it execs), and a fill is
// stored only if no observation happened while it read (the epoch). The
// entry is tied to the process by a pidfd opened before the read and
// proven alive after it: a pid reused by another process never finds it.
// A thread is proven to belong to the process by /proc/TGID/task/TID.
// Per-thread fields (NSpid, signal masks) are never served from it.
type credCache struct {
	mu    sync.Mutex
	epoch uint64
	procs map[int]*procCreds // by tgid
	execs map[uint32]int     // leader whose exec is under way -> tgid
	// nexecs is len(execs), read without the lock on every notification.
	nexecs atomic.Int32
	// rootsMayDiffer: a root-changing call was observed; roots are read
	// afresh from then on.
	rootsMayDiffer atomic.Bool
	// off: an observation could not be placed; nothing is remembered any
	// more (fail closed: the slow path is always right).
	off atomic.Bool
}

type procCreds struct {
	pidfd       int
	volatile    bool
	execPending bool
	filled      bool
	st          status // the per-process fields only
	same        bool   // root and mount namespace are the supervisor's
}

const maxCredProcs = 1024

// observation kinds, for table rows (entry.observe).
const (
	obsCreds = 1 << iota // the caller's credentials may change
	obsExec              // the caller execs
	obsRoot              // the caller's root or mount namespace may change
)

func newCredCache() *credCache {
	return &credCache{procs: map[int]*procCreds{}, execs: map[uint32]int{}}
}

func pidfdAlive(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(p, 0)
	return err == nil && n == 0 // readable: the process has exited
}

// threadOf reports whether tid is a thread of the process that now holds
// pid tgid (proc_task_lookup checks same_thread_group).
func threadOf(tgid int, tid uint32) bool {
	if uint32(tgid) == tid {
		return true // the tid is the leader's: the pidfd check proves the rest
	}
	var st unix.Stat_t
	return unix.Stat("/proc/"+strconv.Itoa(tgid)+"/task/"+strconv.FormatUint(uint64(tid), 10), &st) == nil
}

// lookup returns tid's remembered credentials and, when rootOK, whether
// its root and mount namespace are the supervisor's.
func (cc *credCache) lookup(t *tracees, tid uint32) (st status, same, rootOK, ok bool) {
	if cc.off.Load() {
		return
	}
	tgid, err := t.tgidOf(tid)
	if err != nil || !threadOf(tgid, tid) {
		return
	}
	// After the thread check: a pidfd alive now, opened before, held the
	// pid then too, so it is the process the thread belongs to.
	cc.mu.Lock()
	defer cc.mu.Unlock()
	p := cc.procs[tgid]
	if p == nil || !p.filled || p.volatile || p.execPending || !pidfdAlive(p.pidfd) {
		return
	}
	return p.st, p.same, !cc.rootsMayDiffer.Load(), true
}

// fill reads tid's credentials from /proc as callerStatus does (read) and
// remembers them when that is sound. It returns what it read. held reports
// whether tid is still stopped in the notification the fill is made for
// (NOTIF_ID_VALID): a volatile process settles only then.
func (cc *credCache) fill(t *tracees, tid uint32, read func() (status, bool, bool, error), held func() bool) (status, bool, error) {
	if cc.off.Load() {
		st, same, _, err := read()
		return st, same, err
	}
	tgid, err := t.tgidOf(tid)
	if err != nil {
		st, same, _, err := read()
		return st, same, err
	}
	cc.mu.Lock()
	e0 := cc.epoch
	p := cc.procs[tgid]
	skip := p != nil && (p.volatile || p.execPending) && pidfdAlive(p.pidfd)
	cc.mu.Unlock()
	pidfd := -1
	if !skip {
		pidfd, _ = unix.PidfdOpen(tgid, 0) // before the read: it proves the pid was not reused
	}
	keep := false
	defer func() {
		if pidfd >= 0 && !keep {
			unix.Close(pidfd)
		}
	}()
	st, same, cacheable, err := read()
	if err != nil || !cacheable {
		return st, same, err
	}
	if st.Tgid != tgid {
		t.forget(tid, -1) // a stale hint: read it again next time
		return st, same, nil
	}
	if pidfd < 0 {
		if skip && settled(tgid, tid, st) && held() {
			cc.settle(tgid, e0)
		}
		return st, same, nil
	}
	if !uniformThreads(tgid, st) || !pidfdAlive(pidfd) {
		return st, same, nil
	}
	cached := st
	cached.NSPid, cached.SigBlk, cached.SigIgn, cached.SigCgt, cached.SigPnd, cached.ShdPnd, cached.Threads = 0, 0, 0, 0, 0, 0, 0
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.epoch != e0 {
		return st, same, nil // an observation came while we read
	}
	if p := cc.procs[tgid]; p != nil && pidfdAlive(p.pidfd) {
		// The same process (both pidfds are alive and name pid tgid).
		if !p.volatile && !p.execPending {
			p.st, p.same, p.filled = cached, same, true
		}
		return st, same, nil
	} else if p != nil {
		unix.Close(p.pidfd)
		delete(cc.procs, tgid)
	}
	if !cc.roomLocked() {
		return st, same, nil
	}
	cc.procs[tgid] = &procCreds{pidfd: pidfd, filled: true, st: cached, same: same}
	keep = true
	return st, same, nil
}

// settled reports whether a volatile process may be remembered again: it
// was volatile because a thread may differ from the others, or a change
// may still be in flight in one (commit_creds acts only on current). Read
// as one thread, and that thread the caller, it has no other thread in
// which a change could be in flight or differ, provided the caller is
// still stopped in the notification the read is made for: then the change
// returned before it made this call. fill checks that last (held,
// NOTIF_ID_VALID after the read): without a killable listener a signal
// ends a notification the supervisor has received, and the thread runs on,
// its handler free to change its credentials while the read goes on (and
// a pid reused meanwhile is another task). A program that dropped its
// privileges (su, setpriv, gosu) and went on, or exec'ed, in one thread is
// so remembered again. (A new thread would be the caller's clone: it is
// stopped.)
func settled(tgid int, tid uint32, st status) bool {
	return st.Tgid == tgid && uint32(tgid) == tid && st.Threads == 1
}

// settle ends a volatile process's episode (settled): its entry is
// dropped, so that the next fill remembers it afresh, unless an
// observation came since the fill began (epoch e0).
func (cc *credCache) settle(tgid int, e0 uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if p := cc.procs[tgid]; p != nil && p.volatile && !p.execPending && cc.epoch == e0 && pidfdAlive(p.pidfd) {
		p.volatile, p.filled = false, false
	}
}

// roomLocked makes room for one more entry by dropping exited processes.
func (cc *credCache) roomLocked() bool {
	if len(cc.procs) < maxCredProcs {
		return true
	}
	for tgid, p := range cc.procs {
		if !pidfdAlive(p.pidfd) {
			unix.Close(p.pidfd)
			delete(cc.procs, tgid)
		}
	}
	return len(cc.procs) < maxCredProcs
}

// uniformThreads reports whether every thread of tgid has st's
// credentials. A thread made meanwhile copies an existing one's; a change
// meanwhile is an observation, which the epoch catches.
func uniformThreads(tgid int, st status) bool {
	if st.Threads == 1 {
		return true
	}
	dir := "/proc/" + strconv.Itoa(tgid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) > maxPeerScan {
		return false
	}
	for _, e := range ents {
		o, err := readStatus(dir + "/" + e.Name() + "/status")
		raw := st
		raw.CapEff = st.OwnCapEff // as the file shows it
		if err != nil || !sameCreds(o, raw) {
			return false
		}
	}
	return true
}

// observe marks what a trapped observation (kind) of thread tid may
// change, before the kernel runs it.
func (cc *credCache) observe(tid uint32, kind int) {
	if kind&obsRoot != 0 {
		cc.rootsMayDiffer.Store(true)
	}
	cc.mu.Lock()
	cc.epoch++
	cc.mu.Unlock()
	if kind&(obsCreds|obsExec) == 0 {
		return
	}
	// The thread's own process, read afresh (the hint may be stale).
	o, err := readStatus("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil || o.Tgid == 0 {
		if procErr(err) != unix.ESRCH {
			cc.off.Store(true) // unknown: remember nothing any more
		}
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.epoch++
	p := cc.procs[o.Tgid]
	if p == nil || !pidfdAlive(p.pidfd) {
		if p != nil {
			unix.Close(p.pidfd)
			delete(cc.procs, o.Tgid)
		}
		fd, err := unix.PidfdOpen(o.Tgid, 0)
		if err != nil || !cc.roomLocked() {
			if err == nil {
				unix.Close(fd)
			}
			if err != unix.ESRCH {
				cc.off.Store(true)
			}
			return
		}
		p = &procCreds{pidfd: fd}
		cc.procs[o.Tgid] = p
	}
	if kind&obsExec != 0 && uint32(o.Tgid) == tid {
		p.execPending = true
		if _, ok := cc.execs[tid]; !ok {
			cc.execs[tid] = o.Tgid
			cc.nexecs.Add(1)
		}
		return
	}
	p.volatile = true
}

// seen is called for every notification before it is served: a leader's
// trapped call after its exec proves the exec over.
func (cc *credCache) seen(tid uint32) {
	if cc.nexecs.Load() == 0 {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	tgid, ok := cc.execs[tid]
	if !ok {
		return
	}
	delete(cc.execs, tid)
	cc.nexecs.Add(-1)
	if p := cc.procs[tgid]; p != nil {
		p.execPending, p.filled = false, false
	}
}

// handleObserved lets the kernel run a call that may change what credCache
// remembers, once it has been marked. The answer does not depend on tracee
// memory (only on the syscall number and the filter's own argument checks)
// and the call acts only on the caller itself.
func (s *Supervisor) handleObserved(c *call) outcome {
	e, _ := s.dispatch.get(c.n.Data.Nr)
	c.observation = true
	s.creds.observe(c.n.Pid, e.observe)
	if err := s.lis.ContinueObserved(c.n.ID); err != nil {
		return gone // never ran; a restart comes as a new notification
	}
	return outcome{answered: true}
}
