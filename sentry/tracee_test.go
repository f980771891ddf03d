package sentry

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// fdOpen reports whether fd is an open descriptor of this process.
func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// reuse opens /dev/null until it gets descriptor number fd (the lowest free
// one is always taken), closing the others; false if it never does.
func reuse(t *testing.T, fd int) bool {
	t.Helper()
	var extra []int
	defer func() {
		for _, e := range extra {
			unix.Close(e)
		}
	}()
	for range 64 {
		n, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n == fd {
			return true
		}
		extra = append(extra, n)
	}
	return false
}

// A cached pidfd is closed exactly once, whoever drops it and however
// often: a second close would close whatever file took its number since,
// another goroutine's descriptor.
func TestPidfdRefClosesOnce(t *testing.T) {
	for _, held := range []bool{false, true} {
		fd, err := unix.PidfdOpen(os.Getpid(), 0)
		if err != nil {
			t.Skipf("pidfd_open: %v", err)
		}
		r := &pidfdRef{fd: fd}
		if held {
			r.refs = 1
		}
		r.drop()
		if held {
			if !fdOpen(fd) {
				t.Fatal("a pidfd held by a call was closed when dropped")
			}
			r.drop() // dropped twice while held: evicted, then forgotten
			r.unhold()
		}
		if fdOpen(fd) {
			t.Fatalf("held=%v: the dropped pidfd is still open", held)
		}
		if !reuse(t, fd) {
			t.Fatalf("descriptor %d never came back", fd)
		}
		r.drop()
		if !fdOpen(fd) {
			t.Fatalf("held=%v: a second drop closed descriptor %d, which another file had taken", held, fd)
		}
		unix.Close(fd)
	}
}

// A thread pidfd opened while one is cached for the same thread (another
// receiver raced to it) replaces it: the old one is closed once and leaves
// the cache, so that eviction can never pick it again.
func TestThreadPidfdReplacedOnce(t *testing.T) {
	tr := newTracees()
	tid := uint32(unix.Gettid())
	old, err := unix.PidfdOpen(int(tid), pidfdThread)
	if err != nil {
		t.Skipf("pidfd_open(PIDFD_THREAD): %v", err)
	}
	tr.threads[tid] = &pidfdRef{fd: old}
	f, ok, err := tr.getfdNewThread(tid, 0)
	if !ok || err != nil {
		t.Fatalf("getfdNewThread = %d, %v, %v", f, ok, err)
	}
	unix.Close(f)
	if len(tr.threads) != 1 || tr.threads[tid] == nil || tr.threads[tid].fd == old {
		t.Fatalf("cache after the replacement: %v", tr.threads)
	}
	if fdOpen(old) {
		t.Fatal("the replaced pidfd is still open")
	}
	unix.Close(tr.threads[tid].fd)
}

// An abstract name allowed only because the tree owns its socket never
// takes the direct connect: a connect blocked in the kernel would look the
// name up again by itself (unix_stream_connect's restart), undecided. The
// same connect allowed by a rule may.
func TestSelfAbstractConnectNeverDirect(t *testing.T) {
	self, err := readStatus("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	s := &Supervisor{self: self}
	for _, tc := range []struct {
		rule string
		want bool
	}{{"unix:@name", true}, {selfRule, false}} {
		c := &call{domain: unix.AF_UNIX, typ: unix.SOCK_STREAM, rx: newReceiver(), st: &self,
			dec: netstack.Decision{Action: netstack.Allow, Rule: tc.rule}}
		if got := s.canConnectDirect(c); got != tc.want {
			t.Errorf("allowed by %q: direct %v, want %v", tc.rule, got, tc.want)
		}
	}
}
