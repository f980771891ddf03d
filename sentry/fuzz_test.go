package sentry

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// FuzzDecodeRequest feeds arbitrary address bytes, of any length, for every
// socket family and type, to the decoder that turns tracee memory into a
// netstack request. It must never panic, and what it decodes must be what
// the bytes say.
func FuzzDecodeRequest(f *testing.F) {
	in4 := sockaddr(unix.AF_INET, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)
	f.Add(unix.AF_INET, unix.SOCK_STREAM, in4)
	f.Add(unix.AF_INET6, unix.SOCK_DGRAM, in4)
	f.Add(unix.AF_INET6, unix.SOCK_STREAM, append(sockaddr(unix.AF_INET6, 0, 80, 0, 0, 0, 0), make([]byte, 20)...))
	f.Add(unix.AF_UNIX, unix.SOCK_STREAM, sockaddr(unix.AF_UNIX, '/', 't', 0))
	f.Add(unix.AF_UNIX, unix.SOCK_DGRAM, sockaddr(unix.AF_UNIX, 0, 'a'))
	f.Add(unix.AF_NETLINK, unix.SOCK_RAW, sockaddr(unix.AF_NETLINK, make([]byte, 10)...))
	f.Add(unix.AF_INET, unix.SOCK_STREAM, sockaddr(unix.AF_UNSPEC))
	f.Add(unix.AF_INET, unix.SOCK_STREAM, []byte{})
	f.Fuzz(func(t *testing.T, domain, typ int, a []byte) {
		if len(a) > sockaddrStorage {
			a = a[:sockaddrStorage] // the kernel refuses longer (EINVAL) before decoding
		}
		r := decodeRequest(domain, typ, a)
		_ = r.Dest()
		if r.Addr.IsValid() {
			if len(a) < unix.SizeofSockaddrInet4 {
				t.Fatalf("an address decoded from %d bytes", len(a))
			}
			if port := binary.BigEndian.Uint16(a[2:4]); r.Addr.Port() != port {
				t.Fatalf("port %d decoded, the bytes say %d", r.Addr.Port(), port)
			}
			fam := binary.NativeEndian.Uint16(a)
			if fam == unix.AF_INET && !r.Addr.Addr().Is4() || fam == unix.AF_INET6 && !r.Addr.Addr().Is6() {
				t.Fatalf("family %d decoded as %v", fam, r.Addr)
			}
			// An IPv6 TCP socket never takes an AF_INET address (EAFNOSUPPORT).
			if domain == unix.AF_INET6 && typ == unix.SOCK_STREAM && fam == unix.AF_INET {
				t.Fatalf("AF_INET address decoded for an IPv6 TCP socket")
			}
		}
		if r.Unix.Abstract && (len(a) < 3 || a[2] != 0) {
			t.Fatalf("abstract name decoded without a leading NUL: % x", a)
		}
		if r.Family == netstack.FamilyUnix && r.Unix.Path != "" && r.Unix.Path[0] == 0 {
			t.Fatalf("a path starting with NUL: % x", a)
		}
	})
}

// FuzzWalkCmsgs feeds arbitrary control buffers to the walker that finds
// SCM_RIGHTS and SCM_CREDENTIALS in a copy of the caller's msg_control. It
// must never panic, never hand out a header that overruns the buffer, and
// must visit headers in increasing, aligned order.
func FuzzWalkCmsgs(f *testing.F) {
	f.Add(unix.UnixRights(3, 4, 5))
	f.Add(unix.UnixCredentials(&unix.Ucred{Pid: 1}))
	f.Add(append(unix.UnixRights(7), unix.UnixCredentials(&unix.Ucred{})...))
	f.Add(make([]byte, 15))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		last := -1
		walkCmsgs(b, func(off int, h *unix.Cmsghdr) bool {
			if off <= last || off%8 != 0 {
				t.Fatalf("header at %d after %d", off, last)
			}
			if off+int(h.Len) > len(b) || h.Len < unix.SizeofCmsghdr {
				t.Fatalf("header at %d with length %d overruns %d bytes", off, h.Len, len(b))
			}
			last = off
			return true
		})
	})
}
