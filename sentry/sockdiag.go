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
//
// A dump still walks a whole table (udp_dump: every slot of the UDP hash;
// inet_diag_dump_icsk: every bucket of the listening hash), however narrow
// the port filter: tens of µs on a machine whose tables are sized by a large
// RAM. For TCP, fam AF_UNSPEC asks for both families in one walk through
// the compatibility request (TCPDIAG_GETSOCK: inet_diag_dump_compat passes
// sdiag_family AF_UNSPEC down); the version-2 request names one family.
func diagInet(fd int, fam, proto uint8, states uint32, port uint16, out []inetSock) ([]inetSock, error) {
	var req []byte
	var typ uint16
	if fam == unix.AF_UNSPEC {
		if proto != unix.IPPROTO_TCP {
			return out, unix.EINVAL
		}
		// struct nlmsghdr + struct inet_diag_req: family, src_len,
		// dst_len, ext, the sockid (48 bytes), states, dbs.
		req = make([]byte, unix.SizeofNlMsghdr+60)
		r := req[unix.SizeofNlMsghdr:]
		binary.BigEndian.PutUint16(r[4:], port) // the sockid's source port
		binary.NativeEndian.PutUint32(r[52:], states)
		typ = tcpdiagGetsock
	} else {
		// struct nlmsghdr + struct inet_diag_req_v2 (linux/inet_diag.h).
		req = make([]byte, unix.SizeofNlMsghdr+56)
		r := req[unix.SizeofNlMsghdr:]
		r[0], r[1] = fam, proto
		binary.NativeEndian.PutUint32(r[4:], states)
		// The sockid's source port: the dumps (udp_dump,
		// inet_diag_dump_icsk) skip other ports themselves; it is checked
		// again below.
		binary.BigEndian.PutUint16(r[8:], port)
		typ = unix.SOCK_DIAG_BY_FAMILY
	}
	err := netlinkDump(fd, req, typ, func(d []byte) {
		if s, ok := parseInetDiag(d); ok && (fam == unix.AF_UNSPEC || s.family == fam) && s.port == port {
			out = append(out, s.inetSock)
		}
	})
	return out, err
}

// TCPDIAG_GETSOCK (linux/inet_diag.h), the compatibility dump request.
const tcpdiagGetsock = 18

// inetDiagMsg is an inet_diag_msg as parsed: the socket, its state and its
// local port.
type inetDiagMsg struct {
	inetSock
	state uint8
	port  uint16
}

// parseInetDiag decodes a struct inet_diag_msg: family, state, timer,
// retrans, then the sockid (sport, dport big-endian, src[16], dst[16], if,
// cookie[2]), then expires, rqueue, wqueue, uid, inode; then attributes.
func parseInetDiag(d []byte) (inetDiagMsg, bool) {
	if len(d) < 72 || (d[0] != unix.AF_INET && d[0] != unix.AF_INET6) {
		return inetDiagMsg{}, false
	}
	m := inetDiagMsg{state: d[1], port: binary.BigEndian.Uint16(d[4:])}
	m.inetSock = inetSock{family: d[0], ino: uint64(binary.NativeEndian.Uint32(d[68:])), cookie: diagCookie(d[44:])}
	if m.family == unix.AF_INET {
		m.addr = netip.AddrFrom4([4]byte(d[8:12]))
	} else {
		m.addr = netip.AddrFrom16([16]byte(d[8:24]))
	}
	eachAttr(d[72:], func(typ uint16, v []byte) {
		if typ == inetDiagSkV6Only && len(v) >= 1 {
			m.v6only = v[0] != 0
		}
	})
	return m, true
}

// lookupInet asks inet_diag for the one socket the kernel's own receive
// lookup picks for a packet from remote:rport to local:lport arriving on
// interface ifindex (an exact request, without NLM_F_DUMP): for TCP,
// inet_diag_find_one_icsk runs inet_lookup (the established hash, then
// __inet_lookup_listener); for UDP and UDP-Lite, udp_dump_one runs
// __udp4_lib_lookup or __udp6_lib_lookup. Both look at one hash bucket or
// two, not the whole table. fam is the family on the wire: for IPv4 the
// kernel's IPv4 lookup also finds dual-stack and v4-mapped IPv6 sockets.
// found is false when the kernel has no socket for it (ENOENT).
func lookupInet(fd int, fam, proto uint8, local netip.Addr, lport uint16, remote netip.Addr, rport uint16, ifindex uint32) (m inetDiagMsg, found bool, err error) {
	// struct nlmsghdr + struct inet_diag_req_v2.
	var req [unix.SizeofNlMsghdr + 56]byte
	r := req[unix.SizeofNlMsghdr:]
	r[0], r[1] = fam, proto
	binary.NativeEndian.PutUint32(r[4:], ^uint32(0)) // states: not used by the lookups
	id := r[8:]
	// TCP names the local end as the sockid's source; UDP the other way
	// round (udp_dump_one: "src and dst are swapped for historical
	// reasons").
	src, sport, dst, dport := local, lport, remote, rport
	if proto != unix.IPPROTO_TCP {
		src, sport, dst, dport = remote, rport, local, lport
	}
	binary.BigEndian.PutUint16(id[0:], sport)
	binary.BigEndian.PutUint16(id[2:], dport)
	putDiagAddr(id[4:20], src)
	putDiagAddr(id[20:36], dst)
	binary.NativeEndian.PutUint32(id[36:], ifindex)
	binary.NativeEndian.PutUint32(id[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	binary.NativeEndian.PutUint32(id[44:], ^uint32(0))
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	if err := unix.Sendto(fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return m, false, err
	}
	// One reply: the socket, or NLMSG_ERROR (ENOENT: none).
	bad := false
	err = readReplies(fd, func(d []byte) {
		m, found = parseInetDiag(d)
		bad = !found
	})
	switch {
	case err == unix.ENOENT:
		return m, false, nil
	case err == nil && bad:
		err = unix.EINVAL
	}
	return m, found && err == nil, err
}

// putDiagAddr writes a into a sockid address field: 4 bytes for IPv4
// (idiag_src[0]), 16 for IPv6.
func putDiagAddr(b []byte, a netip.Addr) {
	if !a.IsValid() {
		return
	}
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// inetDiagFree keeps NETLINK_SOCK_DIAG sockets for the inet oracle between
// decisions: an exchange that ran to its end (the reply, or NLMSG_DONE)
// leaves nothing queued, so the socket can be reused; one that failed is
// closed instead.
var inetDiagFree = make(chan int, 4)

func getInetDiag() (int, error) {
	select {
	case fd := <-inetDiagFree:
		return fd, nil
	default:
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	}
}

// putNetlink returns fd to pool after a clean exchange, or closes it.
func putNetlink(pool chan int, fd int, clean bool) {
	if clean {
		select {
		case pool <- fd:
			return
		default:
		}
	}
	unix.Close(fd)
}

// replyBufs holds the buffers netlink replies are read into (32 KiB each:
// one datagram of a dump).
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

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
	bp := replyBufs.Get().(*[]byte)
	defer replyBufs.Put(bp)
	buf := *bp
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
				if len(m.Data) < 4 {
					return unix.EINVAL
				}
				if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
					return unix.Errno(-code) // the request's own error
				}
				continue // an acknowledgement
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
	fd, err := getRouteSock()
	if err != nil {
		return false
	}
	clean := false
	defer func() { putNetlink(routeFree, fd, clean) }()
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
	clean = err == nil
	return err == nil && local
}

// routeFree keeps NETLINK_ROUTE sockets between route lookups: a lookup is
// one request and one reply, so a socket whose exchange completed holds
// nothing stale. (They join no multicast group: nothing else arrives.)
var routeFree = make(chan int, 4)

func getRouteSock() (int, error) {
	select {
	case fd := <-routeFree:
		return fd, nil
	default:
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	}
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
