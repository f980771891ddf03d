package sentry

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// A prepared thread connects to a descriptor by its number alone; the
// process's working directory, and so every other goroutine's, stays as it
// was; a thread that is not prepared connects through /proc/self/fd/N.
func TestFdDirConnect(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	p := t.TempDir() + "/s"
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: p}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 8); err != nil {
		t.Fatal(err)
	}
	obj, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(obj)
	// A file named like the descriptor in the process's directory: a
	// relative name resolved there would find it, not the socket.
	dir := t.TempDir()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(cwd)
	if err := os.WriteFile(strconv.Itoa(obj), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		before, after bool
		e             unix.Errno
		thread        string
	}
	connect := func(prepare bool) result {
		ch := make(chan result)
		go func() {
			// The goroutine exits locked either way: its thread dies with it.
			var r result
			r.before = onFdDir()
			if !prepare {
				fdDirOff.Store(true)
				defer fdDirOff.Store(false)
			}
			s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Error(err)
			} else {
				r.e = fdConnect(s, obj, newUnixTarget(obj).addr)
				unix.Close(s)
			}
			r.after = onFdDir()
			r.thread, _ = os.Readlink("/proc/thread-self/cwd")
			ch <- r
		}()
		return <-ch
	}
	r := connect(true)
	if r.before || !r.after || r.e != 0 || r.thread != "/proc/"+strconv.Itoa(os.Getpid())+"/fd" {
		t.Errorf("prepared: before %v after %v errno %v thread cwd %q", r.before, r.after, r.e, r.thread)
	}
	if r := connect(false); r.before || r.after || r.e != 0 || r.thread != dir {
		t.Errorf("unprepared: before %v after %v errno %v thread cwd %q", r.before, r.after, r.e, r.thread)
	}
	if got, _ := os.Getwd(); got != dir {
		t.Errorf("process cwd %q, want %q", got, dir)
	}
	if onFdDir() {
		t.Error("the test goroutine's thread is marked")
	}
	for i := 0; i < 2; i++ { // both arrived at the socket
		a, _, err := unix.Accept(l)
		if err != nil {
			t.Fatalf("accept %d: %v", i, err)
		}
		unix.Close(a)
	}
}
