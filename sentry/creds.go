package sentry

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Credentials in control messages. A send the supervisor performs must
// carry exactly the SCM_CREDENTIALS the kernel would have attached for the
// caller, and a caller's own SCM_CREDENTIALS must pass the checks the kernel
// would make of the caller, not of the supervisor (which, as root, may name
// anyone).

// checkControl checks the SOL_SOCKET control messages of a Unix or netlink
// send as __scm_send walks them: SCM_CREDENTIALS as scm_check_creds would
// for the caller (each is rewritten in place to the supervisor's view:
// its pid in the supervisor's pid namespace, uid and gid as kernel ids),
// SCM_RIGHTS through passRights. The first failing message, in buffer
// order, gives the error.
func (s *Supervisor) checkControl(c *call) unix.Errno {
	e, rightsFirst := s.checkCreds(c)
	if e != 0 && !rightsFirst {
		return e
	}
	if c.domain == unix.AF_UNIX {
		if e2 := s.passRights(c); e2 != 0 {
			return e2
		}
	}
	return e
}

// checkCreds validates and translates every SCM_CREDENTIALS in the control
// buffer. rightsFirst reports whether an SCM_RIGHTS message preceded the
// failing one (its descriptors are then checked first). Malformed headers,
// a wrong cmsg_len and unknown SOL_SOCKET types are left for the kernel,
// which answers EINVAL there, before anything that follows.
func (s *Supervisor) checkCreds(c *call) (e unix.Errno, rightsFirst bool) {
	b := c.msg.control
	rights := false
	walkCmsgs(b, func(off int, h *unix.Cmsghdr) bool {
		if h.Level != unix.SOL_SOCKET {
			return true
		}
		switch h.Type {
		case unix.SCM_RIGHTS:
			rights = true
			return c.domain == unix.AF_UNIX // elsewhere the kernel's EINVAL
		case unix.SCM_CREDENTIALS:
			if h.Len != uint64(unix.CmsgLen(unix.SizeofUcred)) {
				return false
			}
			u := (*unix.Ucred)(unsafe.Pointer(&b[off+unix.CmsgLen(0)]))
			t, err := s.translateUcred(c, *u)
			if err != 0 {
				e, rightsFirst = err, rights
				return false
			}
			*u = t
			c.msg.ucred = &t
			return true
		}
		return false
	})
	return e, rightsFirst
}

// translateUcred is scm_check_creds and the lookups of __scm_send, made for
// the caller: uid and gid are read in the caller's user namespace (EINVAL
// if unmapped); the pid must be the caller's thread group id in its own pid
// namespace unless it holds CAP_SYS_ADMIN over that namespace, the uid one
// of its real, effective and saved uids unless it holds CAP_SETUID, the gid
// likewise with CAP_SETGID (EPERM otherwise); and the pid must exist in the
// caller's pid namespace (ESRCH). The capabilities are those the caller
// holds in its own user namespace, where the kernel checks them. The result
// names the same process and ids as seen from the supervisor.
func (s *Supervisor) translateUcred(c *call, u unix.Ucred) (unix.Ucred, unix.Errno) {
	st, err := c.callerStatus()
	if err != nil {
		return u, unix.ESRCH
	}
	tid := c.n.Pid
	foreign := st.UserNS != selfUserNS()
	uid, ok1 := mapID(tid, "uid_map", u.Uid, foreign)
	gid, ok2 := mapID(tid, "gid_map", u.Gid, foreign)
	if !ok1 || !ok2 {
		return u, unix.EINVAL
	}
	has := func(cp int) bool { return st.OwnCapEff&(1<<cp) != 0 }
	pidOK := int(u.Pid) == st.NSTgid || has(unix.CAP_SYS_ADMIN) && pidnsOwnedBy(tid, st.UserNS)
	uidOK := uid == st.Uid[0] || uid == st.Uid[1] || uid == st.Uid[2] || has(unix.CAP_SETUID)
	gidOK := gid == st.Gid[0] || gid == st.Gid[1] || gid == st.Gid[2] || has(unix.CAP_SETGID)
	if !pidOK || !uidOK || !gidOK {
		return u, unix.EPERM
	}
	pid, ok := s.pidFromCaller(c, st, int(u.Pid))
	if !ok {
		return u, unix.ESRCH
	}
	return unix.Ucred{Pid: int32(pid), Uid: uid, Gid: gid}, 0
}

// mapID is make_kuid/make_kgid in the caller's user namespace, returning
// the id as the supervisor sees it. /proc/TID/uid_map shows, to a reader in
// an ancestor namespace, the outside ids in the reader's own namespace.
func mapID(tid uint32, file string, id uint32, foreign bool) (uint32, bool) {
	if id == ^uint32(0) {
		return 0, false // (uid_t)-1 is never valid
	}
	if !foreign {
		return id, true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", tid, file))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		in, err1 := strconv.ParseUint(f[0], 10, 32)
		out, err2 := strconv.ParseUint(f[1], 10, 32)
		n, err3 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if uint64(id) >= in && uint64(id)-in < n {
			return uint32(out + uint64(id) - in), true
		}
	}
	return 0, false
}

// pidnsOwnedBy reports whether the user namespace owning thread tid's pid
// namespace is userns: only there do the caller's own capabilities count
// (task_active_pid_ns(current)->user_ns). Any other owner, or an error,
// counts as no capability (fail closed).
func pidnsOwnedBy(tid uint32, userns uint64) bool {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/pid", tid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		return false
	}
	defer unix.Close(owner)
	var o unix.Stat_t
	return unix.Fstat(owner, &o) == nil && o.Ino == userns
}

// pidFromCaller is find_get_pid in the caller's pid namespace: the process
// or thread the caller calls pid, as the supervisor numbers it.
func (s *Supervisor) pidFromCaller(c *call, st status, pid int) (int, bool) {
	if pid <= 0 {
		return 0, false
	}
	same, err := samePidNS(c.n.Pid)
	if err != nil {
		return 0, false
	}
	if same {
		var x unix.Stat_t
		return pid, unix.Stat(fmt.Sprintf("/proc/%d", pid), &x) == nil
	}
	live, err := c.liveStatus()
	if err != nil {
		return 0, false
	}
	switch pid {
	case live.NSTgid:
		return live.Tgid, true
	case live.NSPid:
		return int(c.n.Pid), true
	}
	return findInPidNS(c.n.Pid, st, pid)
}

func samePidNS(tid uint32) (bool, error) {
	theirs, err := nsIno(fmt.Sprintf("/proc/%d/ns/pid", tid))
	if err != nil {
		return false, err
	}
	ours, err := nsIno("/proc/self/ns/pid")
	return theirs == ours, err
}

// findInPidNS looks, among all tasks, for the one whose id at the depth of
// the caller's pid namespace is pid, and whose namespace at that depth is
// the caller's. A rare path: only a caller in a nested pid namespace that
// names another process (which needs CAP_SYS_ADMIN) takes it.
func findInPidNS(tid uint32, st status, pid int) (int, bool) {
	depth := st.NSDepth
	callerNS, err := nsIno(fmt.Sprintf("/proc/%d/ns/pid", tid))
	if err != nil || depth == 0 {
		return 0, false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		tasks, _ := os.ReadDir("/proc/" + p.Name() + "/task")
		for _, t := range tasks {
			dir := "/proc/" + p.Name() + "/task/" + t.Name()
			ids := nsPids(dir + "/status")
			if len(ids) < depth || ids[depth-1] != pid {
				continue
			}
			if nsAncestor(dir+"/ns/pid", len(ids)-depth) == callerNS {
				n, _ := strconv.Atoi(t.Name())
				return n, true
			}
		}
	}
	return 0, false
}

// nsPids returns the NSpid line of a status file.
func nsPids(path string) []int {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("NSpid:")); ok {
			var ids []int
			for _, x := range bytes.Fields(rest) {
				n, _ := strconv.Atoi(string(x))
				ids = append(ids, n)
			}
			return ids
		}
	}
	return nil
}

// nsAncestor returns the inode of the pid namespace up levels above path's.
func nsAncestor(path string, up int) uint64 {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	for ; up > 0; up-- {
		p, err := unix.IoctlRetInt(fd, unix.NS_GET_PARENT)
		unix.Close(fd)
		if err != nil {
			return 0
		}
		fd = p
	}
	defer unix.Close(fd)
	var x unix.Stat_t
	if unix.Fstat(fd, &x) != nil {
		return 0
	}
	return x.Ino
}

func nsIno(path string) (uint64, error) {
	var x unix.Stat_t
	if err := unix.Stat(path, &x); err != nil {
		return 0, err
	}
	return x.Ino, nil
}

// setCredPids makes every SCM_CREDENTIALS in b name pid: what a sender that
// may not name another process (no CAP_SYS_ADMIN) must send.
func setCredPids(b []byte, pid int32) {
	walkCmsgs(b, func(off int, h *unix.Cmsghdr) bool {
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_CREDENTIALS && h.Len == uint64(unix.CmsgLen(unix.SizeofUcred)) {
			(*unix.Ucred)(unsafe.Pointer(&b[off+unix.CmsgLen(0)])).Pid = pid
		}
		return true
	})
}

// credsCmsg is one SCM_CREDENTIALS control message carrying u.
func credsCmsg(u unix.Ucred) []byte {
	out := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&out[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_CREDENTIALS
	h.SetLen(unix.CmsgLen(unix.SizeofUcred))
	*(*unix.Ucred)(unsafe.Pointer(&out[unix.CmsgLen(0)])) = u
	return out
}

// unixCredsWanted is unix_maybe_add_creds's condition, for a send that
// carries no SCM_CREDENTIALS of its own: the kernel attaches the sender's
// credentials when the sending socket or the receiving one has SO_PASSCRED
// or SO_PASSPIDFD, or when the receiver is not yet accepted (no struct
// socket). The receiver of a connected socket is found through sock_diag
// and, when the caller's own process holds it, read through a duplicate.
// A receiver that cannot be found (another process's, or a datagram's
// named destination) counts as wanting them: a divergence only for a
// receiver that turns SO_PASSCRED on after the send.
func (s *Supervisor) unixCredsWanted(c *call) bool {
	if passesCreds(c.sock) {
		return true
	}
	if c.typ == unix.SOCK_DGRAM && c.alen > 0 {
		return true
	}
	var own unix.Stat_t
	if unix.Fstat(c.sock, &own) != nil {
		return true
	}
	peer, ok := unixPeer(own.Ino)
	if !ok || peer == 0 { // unknown, or an embryo (!other->sk_socket)
		return true
	}
	fd, ok := unixPeers.find(s, c, peer)
	if !ok {
		return true
	}
	defer closeDup(fd)
	return passesCreds(fd)
}

// passesCreds is unix_may_passcred: SO_PASSCRED or SO_PASSPIDFD (which a
// kernel before 6.5 does not know: ENOPROTOOPT). Any other error counts
// as set.
func passesCreds(fd int) bool {
	for _, opt := range []int{unix.SO_PASSCRED, unix.SO_PASSPIDFD} {
		v, e := rawGetsockoptInt(fd, unix.SOL_SOCKET, opt)
		if e == unix.ENOPROTOOPT && opt == unix.SO_PASSPIDFD {
			continue
		}
		if e != 0 || v != 0 {
			return true
		}
	}
	return false
}

// unixPeer asks sock_diag (unix_diag_get_exact) for the peer of the Unix
// socket with inode ino. peer is 0 for a peer without a socket (an embryo);
// ok is false when there is no answer or no peer.
func unixPeer(ino uint64) (peer uint64, ok bool) {
	fd, err := diagSocket()
	if err != nil {
		return 0, false
	}
	defer func() {
		if ok {
			select {
			case unixDiagFree <- fd: // a clean exchange: reusable
			default:
				unix.Close(fd)
			}
		} else {
			unix.Close(fd)
		}
	}()
	// struct nlmsghdr + struct unix_diag_req (linux/unix_diag.h).
	req := make([]byte, unix.SizeofNlMsghdr+24)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	r := req[unix.SizeofNlMsghdr:]
	r[0] = unix.AF_UNIX
	ne.PutUint32(r[4:], ^uint32(0)) // all states
	ne.PutUint32(r[8:], uint32(ino))
	ne.PutUint32(r[12:], udiagShowPeer)
	ne.PutUint32(r[16:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	ne.PutUint32(r[20:], ^uint32(0))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, false
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil || n < unix.SizeofNlMsghdr+16 || ne.Uint16(buf[4:]) != unix.SOCK_DIAG_BY_FAMILY {
		return 0, false // (an NLMSG_ERROR, ENOENT: a socket of another netns)
	}
	// struct unix_diag_msg (16 bytes), then attributes.
	attrs := buf[unix.SizeofNlMsghdr+16 : min(n, int(ne.Uint32(buf[0:])))]
	for len(attrs) >= 4 {
		l, t := int(ne.Uint16(attrs[0:])), ne.Uint16(attrs[2:])
		if l < 4 || l > len(attrs) {
			break
		}
		if t == unixDiagPeer && l >= 8 {
			return uint64(ne.Uint32(attrs[4:])), true
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	return 0, false
}

// From linux/unix_diag.h.
const (
	udiagShowPeer = 0x4
	unixDiagPeer  = 2
)

var unixPeers peerCache

// unixDiagFree keeps a few NETLINK_SOCK_DIAG sockets between queries: one
// query is one request and one reply, so a socket whose exchange completed
// holds nothing stale.
var unixDiagFree = make(chan int, 4)

// diagSocket returns a NETLINK_SOCK_DIAG socket in the supervisor's
// namespace: a kept one, or a new one. (A dump that ran to NLMSG_DONE leaves
// nothing behind either.)
func diagSocket() (int, error) {
	select {
	case fd := <-unixDiagFree:
		return fd, nil
	default:
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	}
}

// putDiagSocket keeps fd, whose last exchange completed, for the next query.
func putDiagSocket(fd int) {
	select {
	case unixDiagFree <- fd:
	default:
		unix.Close(fd)
	}
}

// peerCache remembers where in the caller's process a peer socket sits
// (tgid and descriptor, or -1 when it holds none), so that only the first
// send to a peer looks through /proc/TGID/fd. Every hit is proven by the
// duplicate's inode; a miss stays a miss (the peer then counts as wanting
// credentials, the safe answer).
type peerCache struct {
	mu sync.Mutex
	at map[[2]uint64]int32 // {tgid, peer inode} -> fd, or -1
}

// find returns the supervisor's duplicate of the caller's descriptor for
// socket inode ino, if its process holds one.
func (p *peerCache) find(s *Supervisor, c *call, ino uint64) (int, bool) {
	st, err := c.callerStatus()
	if err != nil {
		return -1, false
	}
	key := [2]uint64{uint64(st.Tgid), ino}
	p.mu.Lock()
	fd, ok := p.at[key]
	p.mu.Unlock()
	if ok && fd < 0 {
		return -1, false // looked for before, and not held here
	}
	if ok {
		if d, ok := dupIfInode(s, c, fd, ino); ok {
			return d, true
		}
	}
	found := int32(-1)
	defer func() {
		p.mu.Lock()
		if p.at == nil || len(p.at) > 1<<14 {
			p.at = map[[2]uint64]int32{}
		}
		p.at[key] = found
		p.mu.Unlock()
	}()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", st.Tgid))
	if err != nil || len(ents) > maxPeerScan {
		return -1, false
	}
	want := fmt.Sprintf("socket:[%d]", ino)
	for _, e := range ents {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", st.Tgid, e.Name()))
		if err != nil || link != want {
			continue
		}
		n, _ := strconv.Atoi(e.Name())
		if d, ok := dupIfInode(s, c, int32(n), ino); ok {
			found = int32(n)
			return d, true
		}
	}
	return -1, false
}

// maxPeerScan bounds the descriptor table find reads: a larger one is not
// searched (its peers count as wanting credentials).
const maxPeerScan = 4096

func dupIfInode(s *Supervisor, c *call, fd int32, ino uint64) (int, bool) {
	d, err := s.tracees.getfd(c.n.Pid, fd)
	if err != nil {
		return -1, false
	}
	var x unix.Stat_t
	if unix.Fstat(d, &x) != nil || x.Ino != ino || x.Mode&unix.S_IFMT != unix.S_IFSOCK {
		closeDup(d)
		return -1, false
	}
	return d, true
}
