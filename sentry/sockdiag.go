package sentry

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// diagSockets lists, through NETLINK_SOCK_DIAG in the supervisor's network
// namespace, the inodes of sockets of protocol proto (IPPROTO_TCP or
// IPPROTO_UDP) in the given states that are bound to port. Reading
// /proc/net/tcp instead walks the whole established-connection hash table,
// which costs milliseconds even when it is empty; a dump of LISTEN sockets
// walks only the listening hash.
func diagSockets(proto uint8, states uint32, port uint16) (map[netip.AddrPort]uint64, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	out := map[netip.AddrPort]uint64{}
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		// struct nlmsghdr + struct inet_diag_req_v2 (linux/inet_diag.h).
		req := make([]byte, unix.SizeofNlMsghdr+56)
		binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
		binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
		binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
		r := req[unix.SizeofNlMsghdr:]
		r[0], r[1] = fam, proto
		binary.NativeEndian.PutUint32(r[4:], states)
		if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return nil, err
		}
		if err := readDiag(fd, port, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readDiag collects struct inet_diag_msg replies until NLMSG_DONE.
func readDiag(fd int, port uint16, out map[netip.AddrPort]uint64) error {
	buf := make([]byte, 8192)
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
				return unix.EINVAL
			}
			d := m.Data
			if len(d) < 72 {
				continue
			}
			// family u8, state u8, timer u8, retrans u8, then the sockid:
			// sport and dport (big-endian), src[16], dst[16], if, cookie[2];
			// then expires, rqueue, wqueue, uid and inode.
			if binary.BigEndian.Uint16(d[4:]) != port {
				continue
			}
			var a netip.Addr
			if d[0] == unix.AF_INET {
				a = netip.AddrFrom4([4]byte(d[8:12]))
			} else {
				a = netip.AddrFrom16([16]byte(d[8:24]))
			}
			out[netip.AddrPortFrom(a, port)] = uint64(binary.NativeEndian.Uint32(d[68:]))
		}
	}
}

// sameNetns reports whether thread tid shares the supervisor's network
// namespace.
func sameNetns(tid uint32) bool {
	var a, b unix.Stat_t
	return unix.Stat("/proc/"+strconv.Itoa(int(tid))+"/ns/net", &a) == nil &&
		unix.Stat("/proc/self/ns/net", &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev
}
