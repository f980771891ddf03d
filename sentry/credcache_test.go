package sentry

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// held is fill's notification check for a caller that stays stopped in
// its call.
func held() bool { return true }

// The cache's rules, on the test process itself: a fill is remembered, an
// observation drops it for good (or, for the leader's exec, until its next
// call), and a fill that an observation overtook is not stored.
func TestCredCacheRules(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(unix.Gettid())
	read := func() (status, bool, bool, error) {
		st, err := readStatus("/proc/thread-self/status")
		return st, true, true, err
	}
	tr := newTracees()

	cc := newCredCache()
	if _, _, _, ok := cc.lookup(tr, tid); ok {
		t.Fatal("a hit before any fill")
	}
	if _, _, err := cc.fill(tr, tid, read, held); err != nil {
		t.Fatal(err)
	}
	st, same, rootOK, ok := cc.lookup(tr, tid)
	if !ok || !same || !rootOK || st.Tgid != unix.Getpid() || st.NSPid != 0 {
		t.Fatalf("after a fill: ok=%v same=%v rootOK=%v %+v", ok, same, rootOK, st)
	}
	cc.observe(tid, obsRoot)
	if _, _, rootOK, ok := cc.lookup(tr, tid); !ok || rootOK {
		t.Errorf("after chroot: ok=%v rootOK=%v, want credentials but no root", ok, rootOK)
	}
	cc.observe(tid, obsCreds)
	if _, _, _, ok := cc.lookup(tr, tid); ok {
		t.Error("a hit after setuid")
	}
	cc.fill(tr, tid, read, held)
	if _, _, _, ok := cc.lookup(tr, tid); ok {
		t.Error("a volatile process was remembered again")
	}

	// An observation while a fill reads: nothing stored.
	cc = newCredCache()
	cc.fill(tr, tid, func() (status, bool, bool, error) {
		cc.observe(tid, obsRoot)
		return read()
	}, held)
	if _, _, _, ok := cc.lookup(tr, tid); ok {
		t.Error("a fill overtaken by an observation was stored")
	}

	// exec: by the leader, pending until its next call; by another thread,
	// volatile.
	cc = newCredCache()
	cc.fill(tr, tid, read, held)
	cc.observe(tid, obsExec)
	cc.fill(tr, tid, read, held)
	if _, _, _, ok := cc.lookup(tr, tid); ok {
		t.Error("a hit while an exec is under way")
	}
	cc.seen(tid)
	cc.fill(tr, tid, read, held)
	_, _, _, ok = cc.lookup(tr, tid)
	if leader := int(tid) == unix.Getpid(); ok != leader {
		t.Errorf("after an exec (leader %v) and the next call: hit %v", leader, ok)
	}

	// Another process's pid: the thread check fails.
	cc = newCredCache()
	cc.fill(tr, tid, read, held)
	if _, _, _, ok := cc.lookup(tr, 1); ok {
		t.Error("pid 1 found this process's entry")
	}
}

// A volatile process (it changed its credentials) is remembered again once
// a call of its leader finds it with that one thread: the change returned
// before that call, and no other thread can hold one in flight. A process
// with several threads stays volatile (TestCredCacheRules, on this test
// process).
func TestCredCacheSettlesSingleThread(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pid := uint32(cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && string(b) == "sleep\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never exec'ed sleep")
		}
	}
	read := func() (status, bool, bool, error) {
		st, err := readStatus(fmt.Sprintf("/proc/%d/status", pid))
		return st, true, true, err
	}
	tr := newTracees()
	cc := newCredCache()
	cc.fill(tr, pid, read, held)
	if _, _, _, ok := cc.lookup(tr, pid); !ok {
		t.Fatal("the child was not remembered")
	}
	cc.observe(pid, obsCreds) // its setresuid, say
	if _, _, _, ok := cc.lookup(tr, pid); ok {
		t.Fatal("a hit right after setuid")
	}
	// The leader's next call: read afresh, found settled; the one after
	// is remembered again.
	cc.fill(tr, pid, read, held)
	cc.fill(tr, pid, read, held)
	if _, _, _, ok := cc.lookup(tr, pid); !ok {
		t.Fatal("a single-threaded process stayed volatile after its change")
	}
	// An observation while the settling read runs: that read does not
	// settle it; the next one does (and drops the entry), so nothing
	// stale is ever served.
	cc.observe(pid, obsCreds)
	cc.fill(tr, pid, func() (status, bool, bool, error) {
		cc.observe(pid, obsCreds)
		return read()
	}, held)
	if p := cc.procs[int(pid)]; p == nil || !p.volatile {
		t.Fatal("settled by a read that an observation overtook")
	}
	cc.fill(tr, pid, read, held)
	if _, _, _, ok := cc.lookup(tr, pid); ok {
		t.Fatal("a hit right after the settle: the entry must be read afresh")
	}
	// A caller no longer in its notification (a signal ended it, without
	// a killable listener: its handler may be changing its credentials
	// now) never settles it.
	cc.observe(pid, obsCreds)
	gone := func() bool { return false }
	cc.fill(tr, pid, read, gone)
	cc.fill(tr, pid, read, gone)
	if p := cc.procs[int(pid)]; p == nil || !p.volatile {
		t.Fatal("settled for a notification that was no longer the caller's")
	}
}

// A process with several threads stays volatile, even for its leader's
// calls: another thread may hold a change in flight, or differ.
func TestCredCacheKeepsAThreadedProcessVolatile(t *testing.T) {
	pid := uint32(unix.Getpid()) // the leader of this test process, which has several threads
	read := func() (status, bool, bool, error) {
		st, err := readStatus(fmt.Sprintf("/proc/%d/status", pid))
		if err == nil && st.Threads < 2 {
			t.Skip("the test process has one thread")
		}
		return st, true, true, err
	}
	tr := newTracees()
	cc := newCredCache()
	cc.fill(tr, pid, read, held)
	cc.observe(pid, obsCreds)
	for range 3 {
		cc.fill(tr, pid, read, held)
	}
	if _, _, _, ok := cc.lookup(tr, pid); ok {
		t.Fatal("a process with several threads was remembered again after a change")
	}
}
