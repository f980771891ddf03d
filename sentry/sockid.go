package sentry

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockIDs caches what the kernel never changes about a socket, keyed by its
// SO_COOKIE: one getsockopt per call instead of SO_DOMAIN and SO_TYPE.
//
// The key is exact. sock_gen_cookie hands out a cookie once per struct sock
// from a counter that never wraps within a boot, so a cookie names one
// socket for ever: a socket closed and replaced on the same descriptor
// number, dup2 over it, or a pid that came back, all give a new cookie and
// a miss. The cookie is read on the supervisor's duplicate (pidfd_getfd),
// the very socket the call acts on, never on the caller's table.
//
// The values are exact too, with one exception:
//   - sk_type and the file's socket never change (sock_alloc_file binds
//     them once);
//   - sk_family does change in one place: IPV6_ADDRFORM
//     (do_ipv6_setsockopt) turns a connected v4-mapped AF_INET6 TCP or UDP
//     socket into AF_INET, and with it how the kernel reads an AF_UNSPEC
//     send address (udp_sendmsg reads it as AF_INET, udpv6_sendmsg
//     ignores it). So an AF_INET6 entry keeps only the type, and the family
//     is read again on every call; nothing turns a socket into AF_INET6.
//
// Entries of closed sockets are never hit again; the map is dropped when
// it reaches maxSockIDs (a miss costs only the two getsockopts).
type sockIDs struct {
	mu sync.Mutex
	m  map[uint64]*sockID
	// last is the entry found or made last: a program sending on one
	// socket call after call finds it without the lock and the map.
	// Entries never change once made, and the cookie in them is the key.
	last atomic.Pointer[sockID]
}

type sockID struct {
	cookie      uint64
	domain, typ int32
}

const maxSockIDs = 4096

// identify returns fd's family and type, and its cookie. The errors are
// those of getsockopt(SOL_SOCKET): EBADF for an O_PATH descriptor, ENOTSOCK
// for a file that is not a socket.
func (ids *sockIDs) identify(fd int) (domain, typ int, cookie uint64, e unix.Errno) {
	cookie, e = rawSocketCookie(fd)
	if e != 0 {
		return 0, 0, 0, e
	}
	id := ids.last.Load()
	if id == nil || id.cookie != cookie {
		ids.mu.Lock()
		id = ids.m[cookie]
		ids.mu.Unlock()
		if id != nil {
			ids.last.Store(id)
		}
	}
	hit := id != nil
	if hit && id.domain != unix.AF_INET6 {
		return int(id.domain), int(id.typ), cookie, 0
	}
	if domain, e = rawGetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); e != 0 {
		return 0, 0, 0, e
	}
	if hit {
		return domain, int(id.typ), cookie, 0
	}
	if typ, e = rawGetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); e != 0 {
		return 0, 0, 0, e
	}
	id = &sockID{cookie: cookie, domain: int32(domain), typ: int32(typ)}
	ids.mu.Lock()
	if ids.m == nil || len(ids.m) >= maxSockIDs {
		ids.m = make(map[uint64]*sockID, 64)
	}
	ids.m[cookie] = id
	ids.mu.Unlock()
	ids.last.Store(id)
	return domain, typ, cookie, 0
}

// identifySocketUncached reads fd's family and type, with the errors of
// identify.
func identifySocketUncached(fd int) (domain, typ int, e unix.Errno) {
	if domain, e = rawGetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); e != 0 {
		return 0, 0, e
	}
	if typ, e = rawGetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); e != 0 {
		return 0, 0, e
	}
	return domain, typ, 0
}

// rawSocketCookie is getsockopt(SO_COOKIE): sock_gen_cookie, which assigns
// the cookie on first use.
func rawSocketCookie(fd int) (uint64, unix.Errno) {
	var v uint64
	n := uint32(8)
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_COOKIE,
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	return v, e
}
