package sentry

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Descriptors and pids inside rtnetlink requests.
//
// rtnetlink handles a request synchronously in the sending task
// (netlink_unicast to the kernel socket runs rtnetlink_rcv in the sender's
// context), and some attributes name a descriptor or a pid that the kernel
// resolves against that task: get_net_ns_by_fd looks in its descriptor
// table, get_net_ns_by_pid in its pid namespace. The supervisor sends every
// sendmsg itself, so without help `ip link set DEV netns /proc/PID/ns/net`
// would name a descriptor of the supervisor. Here those numbers are
// rewritten in the supervisor's copy of the message: a descriptor to the
// supervisor's pidfd_getfd duplicate of the caller's (closed with the
// message), a pid to the same task's pid in the supervisor's namespace.
//
// The walk mirrors the kernel's: netlink_rcv_skb for the messages of one
// datagram, nla_for_each_attr (nla_ok) for attributes. Where the kernel
// would stop or refuse (a short header, a length past the end), the walk
// stops and the rest is left as it is, for the kernel to refuse: nothing
// past that point is parsed by the kernel either.
//
// Handled: IFLA_NET_NS_FD and IFLA_NET_NS_PID in RTM_NEWLINK, RTM_SETLINK
// and RTM_DELLINK, also in the peer ifinfomsg of veth, vxcan and netkit
// (IFLA_LINKINFO / IFLA_INFO_DATA / *_INFO_PEER); IFLA_XDP_FD and
// IFLA_XDP_EXPECTED_FD; GTP's IFLA_GTP_FD0 and IFLA_GTP_FD1; NETNSA_FD and
// NETNSA_PID in RTM_NEWNSID and RTM_GETNSID.

const (
	nlmsgHdrLen  = 16 // NLMSG_HDRLEN
	ifinfomsgLen = 16 // sizeof(struct ifinfomsg)
	rtgenmsgLen  = 4  // NLMSG_ALIGN(sizeof(struct rtgenmsg))
	nlaHdrLen    = 4  // NLA_HDRLEN
	nlaTypeMask  = 0x3fff
	nlmFRequest  = 0x1
	peerInfo     = 1          // VETH_INFO_PEER, VXCAN_INFO_PEER, IFLA_NETKIT_PEER_INFO
	noSuchFD     = 0x7fffffff // beyond any descriptor table: fget fails, EBADF
	noSuchPid    = 0          // never in a pid namespace's idr: ESRCH
	maxPeerDepth = 1          // a peer's own peer is not parsed by the kernel
)

// netlinkPayload rewrites the descriptors and pids of rtnetlink requests in
// c's message (see above). It returns an errno only when the supervisor
// itself fails (ENOBUFS); the caller's own errors are left to the kernel.
func (s *Supervisor) netlinkPayload(c *call) unix.Errno {
	if c.domain != unix.AF_NETLINK {
		return 0
	}
	return s.rtnetlinkPayload(c)
}

func (s *Supervisor) rtnetlinkPayload(c *call) unix.Errno {
	if proto, e := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_PROTOCOL); e != 0 || proto != unix.NETLINK_ROUTE {
		return 0
	}
	if !toKernel(c) {
		return 0 // a process reads the bytes: they are only data
	}
	x := nlXlate{s: s, c: c}
	b := c.msg.data
	for len(b) >= nlmsgHdrLen && x.err == 0 {
		l := int(binary.NativeEndian.Uint32(b))
		typ := binary.NativeEndian.Uint16(b[4:])
		flags := binary.NativeEndian.Uint16(b[6:])
		if l < nlmsgHdrLen || l > len(b) {
			break // netlink_rcv_skb stops here
		}
		if flags&nlmFRequest != 0 {
			m := b[:l]
			switch typ {
			case unix.RTM_NEWLINK, unix.RTM_SETLINK, unix.RTM_DELLINK:
				if l >= nlmsgHdrLen+ifinfomsgLen {
					x.link(m[nlmsgHdrLen+ifinfomsgLen:], 0)
				}
			case unix.RTM_NEWNSID, unix.RTM_GETNSID:
				if l >= nlmsgHdrLen+rtgenmsgLen {
					x.nsid(m[nlmsgHdrLen+rtgenmsgLen:])
				}
			}
		}
		b = b[min(align4(l), len(b)):]
	}
	return x.err
}

// toKernel reports whether the datagram goes to the kernel's rtnetlink
// socket (port id 0), as netlink_sendmsg picks its destination: msg_name
// when given, else the connected peer.
func toKernel(c *call) bool {
	if c.alen > 0 {
		a := c.addr[:c.alen]
		return len(a) >= unix.SizeofSockaddrNetlink &&
			binary.NativeEndian.Uint16(a) == unix.AF_NETLINK && binary.NativeEndian.Uint32(a[4:]) == 0
	}
	sa, err := unix.Getpeername(c.sock)
	nl, ok := sa.(*unix.SockaddrNetlink)
	return err == nil && ok && nl.Pid == 0
}

func align4(n int) int { return (n + 3) &^ 3 }

// eachAttr calls fn for each attribute in b, as nla_for_each_attr does.
func eachAttr(b []byte, fn func(typ uint16, payload []byte)) {
	for len(b) >= nlaHdrLen {
		l := int(binary.NativeEndian.Uint16(b))
		if l < nlaHdrLen || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[nlaHdrLen:l])
		b = b[min(align4(l), len(b)):]
	}
}

// nlXlate is one message's translation.
type nlXlate struct {
	s   *Supervisor
	c   *call
	err unix.Errno
	// pidns: whether the caller's pid namespace is the supervisor's
	// (0 unknown, 1 same, 2 different).
	pidns int
}

// link translates the attributes of an ifinfomsg (rtnl_newlink,
// rtnl_setlink, rtnl_dellink, and a peer's, rtnl_nla_parse_ifinfomsg).
func (x *nlXlate) link(attrs []byte, depth int) {
	eachAttr(attrs, func(typ uint16, p []byte) {
		switch typ {
		case unix.IFLA_NET_NS_FD:
			x.fd(p)
		case unix.IFLA_NET_NS_PID:
			x.pid(p)
		case unix.IFLA_XDP:
			eachAttr(p, func(t uint16, q []byte) {
				if t == unix.IFLA_XDP_FD || t == unix.IFLA_XDP_EXPECTED_FD {
					x.fd(q)
				}
			})
		case unix.IFLA_LINKINFO:
			x.linkinfo(p, depth)
		}
	})
}

// linkinfo translates IFLA_INFO_DATA of the kinds that carry descriptors
// or a peer. The kind is the last IFLA_INFO_KIND, as nla_parse keeps it.
func (x *nlXlate) linkinfo(p []byte, depth int) {
	kind := ""
	eachAttr(p, func(t uint16, q []byte) {
		if t == unix.IFLA_INFO_KIND {
			kind = string(q[:cstrlen(q)])
		}
	})
	eachAttr(p, func(t uint16, data []byte) {
		if t != unix.IFLA_INFO_DATA {
			return
		}
		eachAttr(data, func(t uint16, q []byte) {
			switch {
			case (kind == "veth" || kind == "vxcan" || kind == "netkit") && t == peerInfo:
				if depth < maxPeerDepth && len(q) >= ifinfomsgLen {
					x.link(q[ifinfomsgLen:], depth+1)
				}
			case kind == "gtp" && (t == unix.IFLA_GTP_FD0 || t == unix.IFLA_GTP_FD1):
				x.fd(q)
			}
		})
	})
}

// nsid translates NETNSA_FD and NETNSA_PID (rtnl_net_newid, rtnl_net_getid).
func (x *nlXlate) nsid(attrs []byte) {
	eachAttr(attrs, func(typ uint16, p []byte) {
		switch typ {
		case unix.NETNSA_FD:
			x.fd(p)
		case unix.NETNSA_PID:
			x.pid(p)
		}
	})
}

// fd replaces the caller's descriptor in p (a u32; the kernel reads the
// first four bytes, nla_get_u32) with the supervisor's duplicate of it. A
// negative number is left alone (IFLA_XDP_FD -1 detaches; any other fails
// alike in both tables); one the caller has not open becomes one nobody
// has open, so the kernel answers EBADF as natively.
func (x *nlXlate) fd(p []byte) {
	if len(p) < 4 || x.err != 0 {
		return
	}
	v := int32(binary.NativeEndian.Uint32(p))
	if v < 0 {
		return
	}
	dup, err := x.s.tracees.getfd(x.c.n.Pid, v)
	switch {
	case err == nil:
		x.c.msg.passed = append(x.c.msg.passed, dup) // closed with the message
		binary.NativeEndian.PutUint32(p, uint32(dup))
	case err == unix.EBADF:
		binary.NativeEndian.PutUint32(p, noSuchFD)
	default:
		x.s.log.internal(x.c, "pidfd_getfd (netlink attribute)", err)
		x.err = x.c.resourceErrno()
	}
}

// pid replaces a pid of the caller's pid namespace in p with the same
// task's pid in the supervisor's (get_net_ns_by_pid reads it in the
// sending task's namespace, find_task_by_vpid). A pid the caller cannot
// see becomes one that exists nowhere: ESRCH, as natively.
func (x *nlXlate) pid(p []byte) {
	if len(p) < 4 || x.err != 0 {
		return
	}
	if x.pidns == 0 {
		x.pidns = 1
		if !sameNS(fmt.Sprintf("/proc/%d/ns/pid", x.c.n.Pid), "/proc/self/ns/pid") {
			x.pidns = 2
		}
	}
	if x.pidns == 1 {
		return
	}
	v := int(binary.NativeEndian.Uint32(p))
	out := noSuchPid
	if v > 0 {
		if g, ok := globalPid(x.c.n.Pid, v); ok {
			out = g
		}
	}
	binary.NativeEndian.PutUint32(p, uint32(out))
}

// sameNS reports whether two namespace links name the same namespace.
func sameNS(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// globalPid finds the task whose pid in tid's pid namespace is v, and
// returns its pid in the supervisor's. The supervisor's namespace is an
// ancestor of its tracees', so /proc here shows every task the caller can
// see, each with its NSpid chain from this namespace down: a task is at
// the caller's level at the index of the caller's own last entry, and is
// in the caller's namespace if its own namespace is the caller's or lies
// below it. A scan of /proc: only programs in a pid namespace of their own
// that name a pid pay it.
func globalPid(tid uint32, v int) (int, bool) {
	st, err := readStatus(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return 0, false
	}
	return findInPidNS(tid, st, v)
}
