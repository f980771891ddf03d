package sentry

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

func nla(typ uint16, payload ...[]byte) []byte {
	var p []byte
	for _, b := range payload {
		p = append(p, b...)
	}
	b := make([]byte, 4, align4(4+len(p)))
	binary.NativeEndian.PutUint16(b, uint16(4+len(p)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, p...)
	return b[:cap(b)]
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func nlmsg(typ uint16, body ...[]byte) []byte {
	var p []byte
	for _, b := range body {
		p = append(p, b...)
	}
	h := make([]byte, nlmsgHdrLen)
	binary.NativeEndian.PutUint32(h, uint32(nlmsgHdrLen+len(p)))
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], nlmFRequest)
	return append(h, p...)
}

// netlinkCall is a send of data on a NETLINK_ROUTE socket to the kernel by
// this very process (the caller is the test: its descriptors are taken
// with pidfd_getfd like a tracee's).
func netlinkCall(t testing.TB, data []byte) (*Supervisor, *call) {
	sock, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		t.Skip(err)
	}
	l := logrus.New()
	l.SetOutput(os.Stderr)
	s := &Supervisor{tracees: newTracees(), log: newAuditLog(l)}
	c := &call{sock: sock, domain: unix.AF_NETLINK, name: "sendmsg"}
	c.n.Pid = uint32(os.Getpid())
	c.msg.data = data
	t.Cleanup(func() { c.msg.release(); unix.Close(sock); s.log.Close() })
	return s, c
}

func sameFD(a, b int) bool {
	var sa, sb unix.Stat_t
	return unix.Fstat(a, &sa) == nil && unix.Fstat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// The descriptors of RTM_NEWLINK (top level, and in a veth peer's nested
// ifinfomsg) become the supervisor's duplicates of the same files; an
// XDP -1 (detach) and a message to a process stay as they are; a number
// the caller has not open becomes one nobody has.
func TestNetlinkPayloadDescriptors(t *testing.T) {
	ns, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skip(err)
	}
	defer unix.Close(ns)
	ifi := make([]byte, ifinfomsgLen)
	msg := nlmsg(unix.RTM_NEWLINK, ifi,
		nla(unix.IFLA_NET_NS_FD, u32(uint32(ns))),
		nla(unix.IFLA_XDP|0x8000, nla(unix.IFLA_XDP_FD, u32(0xffffffff))),
		nla(unix.IFLA_LINKINFO|0x8000,
			nla(unix.IFLA_INFO_DATA, nla(peerInfo, ifi, nla(unix.IFLA_NET_NS_FD, u32(uint32(ns))))),
			nla(unix.IFLA_INFO_KIND, []byte("veth\x00"))),
	)
	msg = append(msg, nlmsg(unix.RTM_NEWNSID, make([]byte, rtgenmsgLen), nla(unix.NETNSA_FD, u32(1000000)))...)
	s, c := netlinkCall(t, append([]byte(nil), msg...))
	if e := s.netlinkPayload(c); e != 0 {
		t.Fatal(e)
	}
	if len(c.msg.passed) != 2 {
		t.Fatalf("want 2 duplicates, got %d", len(c.msg.passed))
	}
	at := func(off int) int { return int(int32(binary.NativeEndian.Uint32(c.msg.data[off:]))) }
	top := nlmsgHdrLen + ifinfomsgLen + 4
	xdp := top + 4 + 8
	peer := xdp + 4 + 3*4 + ifinfomsgLen + 4 // LINKINFO, INFO_DATA, PEER headers, the ifinfomsg, NET_NS_FD
	nsidFD := len(msg) - 4
	for _, off := range []int{top, peer} {
		if fd := at(off); fd == ns || !sameFD(fd, ns) {
			t.Errorf("at %d: %d, want a duplicate of %d", off, fd, ns)
		}
	}
	if at(xdp) != -1 {
		t.Errorf("IFLA_XDP_FD -1 became %d", at(xdp))
	}
	if at(nsidFD) != noSuchFD {
		t.Errorf("a descriptor the caller has not open became %d, want %d", at(nsidFD), noSuchFD)
	}

	// To a process, the bytes are data.
	s, c = netlinkCall(t, append([]byte(nil), msg...))
	sa := binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint16(binary.NativeEndian.AppendUint16(nil, unix.AF_NETLINK), 0), 4242)
	c.alen = copy(c.addr[:], append(sa, 0, 0, 0, 0))
	if e := s.netlinkPayload(c); e != 0 || string(c.msg.data) != string(msg) || len(c.msg.passed) != 0 {
		t.Errorf("a message to a process was rewritten (%v)", e)
	}
}

// FuzzNetlinkPayload: whatever the bytes, the walk stays within them (no
// panic) and the message keeps its length.
func FuzzNetlinkPayload(f *testing.F) {
	ifi := make([]byte, ifinfomsgLen)
	f.Add(nlmsg(unix.RTM_NEWLINK, ifi, nla(unix.IFLA_NET_NS_FD, u32(0)),
		nla(unix.IFLA_LINKINFO, nla(unix.IFLA_INFO_KIND, []byte("veth")), nla(unix.IFLA_INFO_DATA, nla(peerInfo, ifi, nla(unix.IFLA_NET_NS_FD, u32(1)))))))
	f.Add(nlmsg(unix.RTM_GETNSID, make([]byte, rtgenmsgLen), nla(unix.NETNSA_FD, u32(2))))
	f.Add(nlmsg(unix.RTM_SETLINK, ifi, nla(unix.IFLA_LINKINFO, nla(unix.IFLA_INFO_KIND, []byte("gtp")), nla(unix.IFLA_INFO_DATA, nla(unix.IFLA_GTP_FD0, u32(0)))))[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, c := netlinkCall(t, append([]byte(nil), b...))
		s.netlinkPayload(c)
		if len(c.msg.data) != len(b) {
			t.Fatal("length changed")
		}
	})
}
