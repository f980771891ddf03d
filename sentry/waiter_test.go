package sentry

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A waiter loop found asleep in one item is replaced, and the items it took
// in the same round but has not served go back to the waiter's maps for the
// new loop: they must not wait for the stuck one
// (TestHungMemoryStallsOnlyItsCaller/*/*/waiter stalls an item alone in
// its round; this is the case of company).
func TestStuckWaiterLoopGivesItsRoundBack(t *testing.T) {
	w, err := newWaiter(&Supervisor{})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(w.epfd)
	defer unix.Close(w.wake)

	// The stuck loop's thread: asleep in a read nobody answers.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		tid <- unix.Gettid()
		var b [1]byte
		unix.Read(p[0], b[:])
		unix.Close(p[0])
	}()
	stuckTid := <-tid
	for deadline := time.Now().Add(5 * time.Second); !sleeping(stuckTid); {
		if time.Now().After(deadline) {
			t.Fatal("the stuck thread never slept")
		}
		time.Sleep(time.Millisecond)
	}

	far := time.Now().Add(time.Hour) // not due while the test runs
	item := func(pid uint32) roundItem {
		c := &call{sock: -1}
		c.n.Pid = pid
		return roundItem{it: &waitItem{c: c, kind: kindAfter, next: far, index: -1}, now: time.Now()}
	}
	old := &waitLoop{}
	old.tid.Store(int32(stuckTid))
	old.busySince.Store(nanotime() - 2*int64(stuckAfter))
	old.rest = []roundItem{item(111), item(222)}
	w.loop.Store(old)

	w.watchWaiter()

	nl := w.loop.Load()
	if nl == old || !old.retired.Load() {
		t.Fatal("the stuck loop was not replaced")
	}
	defer func() { // end the new loop
		nl.retired.Store(true)
		unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byTid[111] == nil || w.byTid[222] == nil || len(w.timer) != 2 {
		t.Fatalf("the stuck loop's round was not given back: threads %v, %d timers", w.byTid, len(w.timer))
	}
	if len(old.rest) != 0 {
		t.Fatalf("the retired loop still holds %d items", len(old.rest))
	}
}
