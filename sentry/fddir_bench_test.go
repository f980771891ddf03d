package sentry

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The connect to an opened socket file: "/proc/self/fd/N" against "N" from
// a prepared thread (socket, connect, accept, two closes per iteration).
func BenchmarkUnixConnectFd(b *testing.B) {
	for _, tc := range []struct {
		name    string
		prepare bool
	}{{"abs", false}, {"fddir", true}} {
		b.Run(tc.name, func(b *testing.B) {
			p := b.TempDir() + "/s"
			l, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			defer unix.Close(l)
			if err := unix.Bind(l, &unix.SockaddrUnix{Name: p}); err != nil {
				b.Fatal(err)
			}
			unix.Listen(l, 128)
			obj, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(obj)
			addr := newUnixTarget(obj).addr
			done := make(chan struct{})
			go func() { // exits locked: a prepared thread dies with it
				defer close(done)
				if tc.prepare {
					if !prepareFdDir() {
						b.Error("not prepared")
						return
					}
				} else {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					s, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
					var e unix.Errno
					if tc.prepare {
						e = fdConnect(s, obj, addr)
					} else {
						e = sockConnect(s, addr)
					}
					if e != 0 {
						b.Error(e)
						return
					}
					a, _, _ := unix.Accept(l)
					unix.Close(a)
					unix.Close(s)
				}
			}()
			<-done
		})
	}
}

// The bound-name cache key of a socket file: the unique mount id with the
// handle, against fstat for the device and then the handle.
func BenchmarkBoundKey(b *testing.B) {
	defer noUniqueMntID.Store(noUniqueMntID.Load())
	p := b.TempDir() + "/s"
	l, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: p}); err != nil {
		b.Fatal(err)
	}
	obj, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(obj)
	for _, byDev := range []bool{false, true} {
		name := "mntid"
		if byDev {
			name = "dev"
		}
		b.Run(name, func(b *testing.B) {
			noUniqueMntID.Store(byDev)
			var k boundKey
			for i := 0; i < b.N; i++ {
				if _, ok := k.of(obj); !ok {
					b.Fatal("no key")
				}
			}
		})
	}
}
