package sentry

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The "self" oracle's view of the kernel: NETLINK_SOCK_DIAG dumps and a
// route lookup, all in the supervisor's network namespace. The oracle only
// uses them for a socket whose own namespace is that one (sameNetnsSock).

// inetSock is one socket of an inet_diag dump.
type inetSock struct {
	family uint8
	addr   netip.Addr // bound address, as the kernel stores it
	v6only bool       // INET_DIAG_SKV6ONLY
	ino    uint64
	cookie uint64 // sock_gen_cookie: never reused, unlike an inode number
}

// TCP_LISTEN (linux/tcp_states.h), for
// inet_diag's state mask.
const tcpListen = 10

// inet_diag attribute types (linux/inet_diag.h).
const inetDiagSkV6Only = 11

// diagInet dumps, through inet_diag, the sockets of protocol proto
// (IPPROTO_TCP, IPPROTO_UDP or IPPROTO_UDPLITE) and family fam in the given
// states whose local port is port. Reading /proc/net/tcp instead walks the
// whole established-connection hash table, which costs milliseconds even
// when it is empty; a dump of LISTEN sockets walks only the listening hash.
func diagInet(fd int, fam, proto uint8, states uint32, port uint16, out []inetSock) ([]inetSock, error) {
	// struct nlmsghdr + struct inet_diag_req_v2 (linux/inet_diag.h).
	req := make([]byte, unix.SizeofNlMsghdr+56)
	r := req[unix.SizeofNlMsghdr:]
	r[0], r[1] = fam, proto
	binary.NativeEndian.PutUint32(r[4:], states)
	// The sockid's source port: the dumps (udp_dump, inet_diag_dump_icsk)
	// skip other ports themselves; it is checked again below.
	binary.BigEndian.PutUint16(r[8:], port)
	err := netlinkDump(fd, req, unix.SOCK_DIAG_BY_FAMILY, func(d []byte) {
		// struct inet_diag_msg: family, state, timer, retrans, then the
		// sockid (sport, dport big-endian, src[16], dst[16], if, cookie[2]),
		// then expires, rqueue, wqueue, uid, inode; then attributes.
		if len(d) < 72 || d[0] != fam || binary.BigEndian.Uint16(d[4:]) != port {
			return
		}
		s := inetSock{family: fam, ino: uint64(binary.NativeEndian.Uint32(d[68:])), cookie: diagCookie(d[44:])}
		if fam == unix.AF_INET {
			s.addr = netip.AddrFrom4([4]byte(d[8:12]))
		} else {
			s.addr = netip.AddrFrom16([16]byte(d[8:24]))
		}
		eachAttr(d[72:], func(typ uint16, v []byte) {
			if typ == inetDiagSkV6Only && len(v) >= 1 {
				s.v6only = v[0] != 0
			}
		})
		out = append(out, s)
	})
	return out, err
}

// unixSock is one socket of a unix_diag dump.
type unixSock struct {
	ino     uint64
	cookie  uint64
	name    string // UNIX_DIAG_NAME: sun_path as bound, a leading NUL for abstract
	hasVFS  bool
	vfsDev  uint32 // the kernel's internal dev_t (MAJOR<<20 | MINOR)
	vfsIno  uint32 // the socket file's inode, truncated to 32 bits
	hasName bool
}

// unix_diag constants (linux/unix_diag.h).
const (
	udiagShowName = 1
	udiagShowVFS  = 2
	unixDiagName  = 0
	unixDiagVFS   = 1
)

// diagUnix dumps every named Unix socket of the supervisor's network
// namespace with its bound name and, for a path, the inode of its socket
// file (unix_diag_fill: UNIX_DIAG_NAME, UNIX_DIAG_VFS).
func diagUnix(fd int) ([]unixSock, error) {
	// struct nlmsghdr + struct unix_diag_req.
	req := make([]byte, unix.SizeofNlMsghdr+24)
	r := req[unix.SizeofNlMsghdr:]
	r[0] = unix.AF_UNIX
	binary.NativeEndian.PutUint32(r[4:], ^uint32(0)) // every state
	binary.NativeEndian.PutUint32(r[12:], udiagShowName|udiagShowVFS)
	var out []unixSock
	err := netlinkDump(fd, req, unix.SOCK_DIAG_BY_FAMILY, func(d []byte) {
		// struct unix_diag_msg: family, type, state, pad, ino, cookie[2].
		if len(d) < 16 || d[0] != unix.AF_UNIX {
			return
		}
		s := unixSock{ino: uint64(binary.NativeEndian.Uint32(d[4:])), cookie: diagCookie(d[8:])}
		eachAttr(d[16:], func(typ uint16, v []byte) {
			switch typ {
			case unixDiagName:
				s.name, s.hasName = string(v), true
			case unixDiagVFS:
				if len(v) >= 8 {
					s.hasVFS = true
					s.vfsIno = binary.NativeEndian.Uint32(v[0:])
					s.vfsDev = binary.NativeEndian.Uint32(v[4:])
				}
			}
		})
		if s.hasName {
			out = append(out, s)
		}
	})
	return out, err
}

// diagCookie decodes a sock_diag cookie (sock_diag_save_cookie: the low
// word first).
func diagCookie(b []byte) uint64 {
	return uint64(binary.NativeEndian.Uint32(b)) | uint64(binary.NativeEndian.Uint32(b[4:]))<<32
}

// sameDev compares unix_diag's udiag_vfs_dev, the kernel's internal dev_t
// (include/linux/kdev_t.h: MINORBITS 20), with stat's st_dev, the
// user-space encoding (new_encode_dev).
func sameDev(kdev uint32, st uint64) bool {
	return kdev>>20 == unix.Major(st) && kdev&(1<<20-1) == unix.Minor(st)
}

// netlinkDump sends req (a netlink header followed by its payload, the
// header filled in here) as a dump request and calls fn with the payload of
// each reply until NLMSG_DONE. Any error makes the caller deny.
func netlinkDump(fd int, req []byte, typ uint16, fn func([]byte)) error {
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], typ)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	return readReplies(fd, fn)
}

func readReplies(fd int, fn func([]byte)) error {
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 && int32(binary.NativeEndian.Uint32(m.Data)) == 0 {
					continue // an acknowledgement
				}
				return unix.EINVAL
			}
			fn(m.Data)
		}
		if len(msgs) > 0 && msgs[len(msgs)-1].Header.Flags&unix.NLM_F_MULTI == 0 {
			return nil // a single reply (RTM_GETROUTE)
		}
	}
}

// flow is what a policy-routing rule (fib_rule_match) can select on, taken
// from the caller's socket so that the lookup is the one its connect makes.
type flow struct {
	oif, mark, uid uint32
	proto          uint8
	sport, dport   uint16
}

// routeLocal asks the kernel's FIB, as ip_route_output_key would for this
// socket's flow (inet_rtm_getroute, inet6_rtm_getroute), whether dst is
// delivered to this host (RTN_LOCAL). Broadcast (255.255.255.255 and subnet broadcasts),
// multicast, anycast and every remote address are not: the kernel would
// send those to the wire or to several sockets at once.
func routeLocal(dst netip.Addr, fl flow) bool {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	fam, alen := uint8(unix.AF_INET6), 16
	if dst.Is4() {
		fam, alen = unix.AF_INET, 4
	}
	// struct nlmsghdr + struct rtmsg, then RTA_DST, RTA_OIF and RTA_MARK.
	req := make([]byte, unix.SizeofNlMsghdr+unix.SizeofRtMsg, 64)
	rt := req[unix.SizeofNlMsghdr:]
	rt[0], rt[1] = fam, uint8(alen*8)
	attr := func(typ uint16, v []byte) {
		a := make([]byte, (4+len(v)+3)&^3)
		binary.NativeEndian.PutUint16(a, uint16(4+len(v)))
		binary.NativeEndian.PutUint16(a[2:], typ)
		copy(a[4:], v)
		req = append(req, a...)
	}
	attr(unix.RTA_DST, dst.AsSlice())
	u32 := func(x uint32) []byte { return binary.NativeEndian.AppendUint32(nil, x) }
	be16 := func(x uint16) []byte { return binary.BigEndian.AppendUint16(nil, x) }
	if fl.oif > 0 {
		attr(unix.RTA_OIF, u32(fl.oif))
	}
	if fl.mark != 0 {
		attr(unix.RTA_MARK, u32(fl.mark))
	}
	attr(unix.RTA_UID, u32(fl.uid))
	if fl.proto == unix.IPPROTO_TCP || fl.proto == unix.IPPROTO_UDP {
		// rtm_getroute_parse_ip_proto takes no other (UDP-Lite: EOPNOTSUPP).
		attr(unix.RTA_IP_PROTO, []byte{fl.proto})
	}
	if fl.sport != 0 {
		attr(unix.RTA_SPORT, be16(fl.sport))
	}
	attr(unix.RTA_DPORT, be16(fl.dport))
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.RTM_GETROUTE)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false
	}
	local := false
	err = readReplies(fd, func(d []byte) {
		if len(d) >= unix.SizeofRtMsg && d[7] == unix.RTN_LOCAL {
			local = true
		}
	})
	return err == nil && local
}

// ownNetnsCookie is the cookie of the supervisor's network namespace
// (SO_NETNS_COOKIE of a socket it made), read once.
var ownNetnsCookie = sync.OnceValues(func() (uint64, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
})

// sameNetnsSock reports whether socket fd lives in the supervisor's network
// namespace: a socket keeps the namespace it was made in (sock_net), which
// is not necessarily its caller's current one (unshare, setns).
func sameNetnsSock(fd int) bool {
	own, err := ownNetnsCookie()
	if err != nil {
		return false
	}
	theirs, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	return err == nil && theirs == own
}
