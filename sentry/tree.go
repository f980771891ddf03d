package sentry

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// tree answers, for the "self" default, whether a destination belongs to
// the sandboxed process tree: whether every socket the kernel could deliver
// the connect or datagram to is held by a process of the tree.
//
// It asks the kernel at decision time instead of tracking bind, listen and
// close: sock_diag dumps in the socket's own network namespace name the
// candidate sockets, and the descriptor tables of the tree's processes say
// who holds them. The candidates are over-approximated (a wrong extra
// candidate can only make the answer no); none, or any that the tree does
// not hold, is no.
//
// The sockets at a destination are looked up anew every time, so a port the
// tree closed and an outside process took is never mistaken for the tree's.
// What is cached is which sockets the tree was seen to hold, by inode and
// socket cookie: an inode number names one socket for that socket's whole
// life but is reused once the 32-bit counter wraps, a cookie never is. So
// scanning the tree's descriptors (10,000 of them, for a busy program) is
// paid once per listener, not once per connect.
type tree struct {
	self int

	mu sync.Mutex
	// owned maps the inode of a socket the tree holds to its cookie.
	owned map[uint64]uint64
	// notOwned remembers, for notOwnedTTL, sockets seen held only outside
	// the tree. It can only make the oracle deny, which fails closed; the
	// TTL bounds how long a socket passed into the tree (SCM_RIGHTS) stays
	// unrecognised.
	notOwned map[uint64]time.Time
}

const notOwnedTTL = time.Second

const maxOwnedCache = 1 << 16

func newTree() *tree {
	return &tree{self: os.Getpid(), owned: map[uint64]uint64{}, notOwned: map[uint64]time.Time{}}
}

// owns reports whether c's destination belongs to the tree.
func (t *tree) owns(c *call) bool {
	var inodes map[uint64]uint64 // inode -> cookie
	switch c.req.Family {
	case netstack.FamilyInet, netstack.FamilyInet6:
		return t.ownsInet(c)
	case netstack.FamilyUnix:
		inodes = unixCandidates(c)
	}
	if len(inodes) == 0 {
		return false
	}
	return t.holdsAll(inodes)
}

// holdsAll reports whether the tree holds every one of the sockets (inode
// to cookie).
func (t *tree) holdsAll(inodes map[uint64]uint64) bool {
	now := time.Now()
	missing := map[uint64]bool{}
	t.mu.Lock()
	for ino, cookie := range inodes {
		if c, ok := t.owned[ino]; ok && c == cookie {
			continue
		}
		if at, ok := t.notOwned[ino]; ok && now.Sub(at) < notOwnedTTL {
			t.mu.Unlock()
			return false
		}
		missing[ino] = true
	}
	t.mu.Unlock()
	if len(missing) == 0 {
		return true
	}
	found := map[uint64]bool{}
	for _, pid := range descendants(t.self) {
		holds(pid, missing, found)
		if len(found) == len(missing) {
			break
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.owned) >= maxOwnedCache {
		clear(t.owned)
	}
	if len(t.notOwned) >= maxOwnedCache {
		clear(t.notOwned)
	}
	for ino := range missing {
		if found[ino] {
			t.owned[ino] = inodes[ino]
			delete(t.notOwned, ino)
		} else {
			t.notOwned[ino] = now
		}
	}
	return len(found) == len(missing)
}

// inetQuery is what the inet oracle needs to know of c: the destination
// as it goes on the wire, the protocol, and the flow of the caller's socket.
type inetQuery struct {
	dst   netip.Addr // unmapped for IPv4 on the wire, without its zone
	v4    bool       // IPv4 on the wire: an IPv4 destination, or v4-mapped on an IPv6 socket
	port  uint16
	proto int
	fl    flow
	src   netip.Addr // the caller's bound address, unmapped; invalid if unbound
}

// newInetQuery reads the caller's socket; ok is false when the destination
// cannot be the tree's (unspecified, another network namespace, a protocol
// not modelled) or the socket cannot be read.
func newInetQuery(c *call) (q inetQuery, ok bool) {
	dst := c.req.Addr.Addr()
	if !dst.IsValid() || dst.Unmap().IsUnspecified() || !sameNetnsSock(c.sock) {
		return q, false
	}
	q.v4 = dst.Is4() || dst.Is4In6()
	if q.v4 {
		dst = dst.Unmap()
	}
	q.port = c.req.Addr.Port()
	proto, e := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if e != 0 {
		return q, false
	}
	q.proto = proto
	switch {
	case proto == unix.IPPROTO_TCP && c.typ == unix.SOCK_STREAM:
	case (proto == unix.IPPROTO_UDP || proto == unix.IPPROTO_UDPLITE) && c.typ == unix.SOCK_DGRAM:
	default:
		return q, false // MPTCP, SCTP, ping sockets, raw...: not modelled
	}
	oif, e := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX)
	if e != 0 {
		return q, false
	}
	if z := dst.Zone(); z != "" {
		n, err := strconv.Atoi(z)
		if err != nil || oif != 0 && oif != n {
			return q, false
		}
		oif = n
	}
	q.dst = dst.WithZone("")
	q.fl = flow{oif: uint32(oif), proto: uint8(proto), dport: q.port}
	if bound, ok := inetName(c.sock); ok {
		q.fl.sport = bound.Port()
		q.src = bound.Addr().Unmap()
	}
	return q, true
}

// loopbackIfindex is LOOPBACK_IFINDEX: the loopback device is interface 1
// in every network namespace.
const loopbackIfindex = 1

// ownsInet reports whether every socket that could receive c's connect or
// datagram is held by the tree (see tree).
//
// First the kernel's own pick, by an exact inet_diag lookup (one hash bucket
// or two): if it picks no socket, or one the tree does not hold, the answer
// is no, and no table is walked. That is the common denial, and it can only
// ever turn a yes into a no. A yes still needs what it needed before: the
// destination is local for the socket's flow, and the dumps find every
// candidate, each one held. The lookup cannot stand for them: it returns
// one socket, and hides those a REUSEPORT group would also choose, those it
// outscored (an exact address over a wildcard, an AF_INET socket over a
// dual-stack one, the one last run on this CPU), and those bound to another
// device or connected to another peer; any of them may receive once the
// tree closes its own, or from another source port or CPU.
func (t *tree) ownsInet(c *call) bool {
	q, ok := newInetQuery(c)
	if !ok {
		return false
	}
	fd, err := getInetDiag()
	if err != nil {
		return false
	}
	clean := false
	defer func() { putNetlink(inetDiagFree, fd, clean) }()
	fam := uint8(unix.AF_INET6)
	if q.v4 {
		fam = unix.AF_INET
	}
	// The packet comes from the caller's bound address and port (0 when
	// unbound: then no connected socket matches; none could be chosen for a
	// port not yet picked) on its bound device, or on loopback (inet_iif:
	// the route's rt_iif is the flow's oif, else skb_iif is loopback's).
	// TCP's remote port is left 0, so that only listeners are found.
	remote, rport := q.src, q.fl.sport
	if !remote.IsValid() || remote.Is4() != q.v4 {
		remote = netip.IPv6Unspecified()
		if q.v4 {
			remote = netip.IPv4Unspecified()
		}
	}
	if q.proto == unix.IPPROTO_TCP {
		rport = 0
	}
	dif := q.fl.oif
	if dif == 0 {
		dif = loopbackIfindex
	}
	m, found, err := lookupInet(fd, fam, uint8(q.proto), q.dst, q.port, remote, rport, dif)
	if err != nil {
		return false
	}
	if !found || m.ino == 0 {
		// Nothing would receive it (or a socket with no file yet).
		clean = true
		return false
	}
	if (q.proto != unix.IPPROTO_TCP || m.state == tcpListen) && candidateFor(q, m.inetSock) {
		// The kernel's pick is one of the candidates below: if the tree
		// does not hold it, the destination is not the tree's.
		if !t.holdsAll(map[uint64]uint64{m.ino: m.cookie}) {
			clean = true
			return false
		}
	}
	// The rest of the flow a policy-routing rule may select on: the mark,
	// and the socket's owner (sk_uid), which is its inode's owner.
	mark, e := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_MARK)
	var st unix.Stat_t
	if e != 0 || unix.Fstat(c.sock, &st) != nil {
		clean = true
		return false
	}
	q.fl.mark, q.fl.uid = uint32(mark), st.Uid
	if !routeLocal(q.dst, q.fl) {
		clean = true
		return false
	}
	var socks []inetSock
	switch {
	case q.proto == unix.IPPROTO_TCP:
		// A SYN reaches a listener. (In a simultaneous open it reaches a
		// socket in SYN-SENT, but only one connecting to this very socket:
		// that peer chose to connect to the tree, as it could have to a
		// listener. Leaving SYN-SENT out keeps the dump to the listening
		// hash: inet_diag_dump_icsk walks the established hash for any
		// other state.) Both families in one walk.
		socks, err = diagInet(fd, unix.AF_UNSPEC, unix.IPPROTO_TCP, 1<<tcpListen, q.port, socks)
	case q.v4:
		// UDP and UDP-Lite: every state, connected sockets included.
		if socks, err = diagInet(fd, unix.AF_INET6, uint8(q.proto), ^uint32(0), q.port, socks); err == nil {
			socks, err = diagInet(fd, unix.AF_INET, uint8(q.proto), ^uint32(0), q.port, socks)
		}
	default:
		socks, err = diagInet(fd, unix.AF_INET6, uint8(q.proto), ^uint32(0), q.port, socks)
	}
	if err != nil {
		return false
	}
	clean = true
	inodes := inetCandidates(q, socks)
	return len(inodes) > 0 && t.holdsAll(inodes)
}

// inetCandidates picks, from the sockets of the destination's protocol and
// port, the inodes of every one that could receive the connect or datagram,
// or nil when that cannot be established. It mirrors the kernel's receive
// lookups (__inet_lookup_listener, __udp4_lib_lookup,
// inet6_lookup_listener, __udp6_lib_lookup), over-approximated: every
// socket whose bound address is the destination or a wildcard that accepts
// it, REUSEPORT members, connected UDP sockets and sockets bound to a device
// included.
func inetCandidates(q inetQuery, socks []inetSock) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, s := range socks {
		if candidateFor(q, s) {
			out[s.ino] = s.cookie
		}
	}
	if _, orphan := out[0]; len(out) == 0 || orphan {
		return nil // inode 0: a socket not yet (or no longer) attached to a file
	}
	return out
}

// candidateFor reports whether socket s, of the destination's protocol and
// port, accepts traffic for q.dst by its bound address: for IPv4 on the
// wire, AF_INET sockets at the destination or 0.0.0.0 and AF_INET6 ones at
// ::ffff:dst or, unless V6ONLY, at ::; for IPv6, AF_INET6 sockets at the
// destination or ::.
func candidateFor(q inetQuery, s inetSock) bool {
	a := s.addr.Unmap()
	switch {
	case q.v4 && s.family == unix.AF_INET6 && s.addr == netip.IPv6Unspecified() && s.v6only:
		return false // ipv6_only_sock: a V6ONLY [::] never sees IPv4.
	case q.v4:
		return a == q.dst || a.IsUnspecified()
	default:
		return s.family == unix.AF_INET6 && (s.addr == q.dst || a.IsUnspecified())
	}
}

// unixCandidates lists the socket a Unix connect or send reaches: for a
// path, the socket whose file is the object opened (unix_find_bsd looks the
// socket up by inode); for an abstract name, the socket bound to exactly
// those bytes in the socket's network namespace (unix_find_abstract).
func unixCandidates(c *call) map[uint64]uint64 {
	var socks []unixSock
	switch {
	case c.req.Unix.Abstract:
		if !sameNetnsSock(c.sock) {
			return nil
		}
		fd, err := diagSocket()
		if err != nil {
			return nil
		}
		defer unix.Close(fd)
		all, err := diagUnix(fd)
		if err != nil {
			return nil
		}
		want := "\x00" + c.req.Unix.Name
		for _, s := range all {
			if s.name == want {
				socks = append(socks, s)
			}
		}
	case c.unix != nil:
		socks = c.unix.reached()
	}
	out := map[uint64]uint64{}
	for _, s := range socks {
		out[s.ino] = s.cookie
	}
	if _, orphan := out[0]; orphan {
		return nil
	}
	return out
}

// reached returns the Unix sockets whose socket file is the object opened,
// looked up once per call. Sockets of other network namespaces are not in
// the dump: for them the answer is none.
func (t *unixTarget) reached() []unixSock {
	if t.lookedUp {
		return t.socks
	}
	t.lookedUp = true
	// A remembered file is a socket file (only those are stored) and is
	// named by its handle alone: no fstat on a hit.
	var kb boundKey
	key, cacheable := kb.of(t.obj)
	if cacheable {
		if socks, ok := boundNames.get(key); ok {
			t.socks = socks
			return socks
		}
	}
	var st unix.Stat_t
	if unix.Fstat(t.obj, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil
	}
	fd, err := diagSocket()
	if err != nil {
		return nil
	}
	all, err := diagUnix(fd)
	if err != nil {
		unix.Close(fd)
		return nil
	}
	putDiagSocket(fd) // the dump ran to NLMSG_DONE: nothing is left queued
	for _, s := range all {
		if s.hasVFS && s.vfsIno == uint32(st.Ino) && sameDev(s.vfsDev, st.Dev) {
			t.socks = append(t.socks, s)
		}
	}
	// Only a socket found is remembered: a file with none may be one whose
	// socket is being bound (unix_bind_bsd makes the file before it hashes
	// the socket), and its socket will be found next time.
	if cacheable && len(t.socks) == 1 {
		boundNames.put(string(key), t.socks)
	}
	return t.socks
}

// boundCache remembers, per socket file, the Unix socket bound to it, so
// that a connect does not walk every Unix socket of the namespace
// (unix_diag_dump takes each hash bucket's lock) to find its bound name.
//
// It is exact because the answer never changes for one inode: unix_bind
// creates the socket file (unix_mknod: vfs_mknod always makes a new inode)
// and the socket holds that path for its whole life, so an inode is the
// file of at most one socket ever, bound under one name (u->addr, set once).
// Renames and hard links move or add names of the file, never the bound
// name; a closed socket leaves the file with no socket, for good. What can
// change is which inode a number names: the file unlinked and freed, and
// the number given to a new file. The key is therefore not the inode number
// but the file handle (name_to_handle_at: inode number and generation,
// which file systems draw at random per new inode: ext4, xfs, tmpfs), with
// the mount it was opened through: its unique mount id
// (AT_HANDLE_MNT_ID_UNIQUE, Linux 6.12), which is never given to another
// mount while the system runs and names one file system, so a hit needs no
// fstat (only socket files are stored). Where that flag is refused, the
// device (st_dev, from an fstat) stands in, as it did before. A file
// system that gives no handle is not cached.
type boundCache struct {
	mu sync.Mutex
	at map[string][]unixSock
}

const maxBoundCache = 4096

const maxHandle = 128 // MAX_HANDLE_SZ

// atHandleMntIDUnique is AT_HANDLE_MNT_ID_UNIQUE (linux/fcntl.h): the
// mount id written is the 64-bit unique one.
const atHandleMntIDUnique = 0x1

var boundNames boundCache

// noUniqueMntID is set once the kernel refused AT_HANDLE_MNT_ID_UNIQUE.
var noUniqueMntID atomic.Bool

// boundKey is the room for one cache key: a tag byte ('m': a unique
// mount id follows, 'd': a device), 8 bytes of mount id or device, then
// struct file_handle (handle_bytes, handle_type, f_handle).
type boundKey [1 + 8 + 8 + maxHandle]byte

// of returns the cache key of the open file fd, or false when it has
// none. The key aliases k.
func (k *boundKey) of(fd int) ([]byte, bool) {
	const hdr = 1 + 8
	*(*uint32)(unsafe.Pointer(&k[hdr])) = maxHandle
	path := [1]byte{}
	if !noUniqueMntID.Load() {
		var mnt uint64
		_, _, e := unix.Syscall6(unix.SYS_NAME_TO_HANDLE_AT, uintptr(fd), uintptr(unsafe.Pointer(&path[0])),
			uintptr(unsafe.Pointer(&k[hdr])), uintptr(unsafe.Pointer(&mnt)), unix.AT_EMPTY_PATH|atHandleMntIDUnique, 0)
		switch e {
		case 0:
			k[0] = 'm'
			*(*uint64)(unsafe.Pointer(&k[1])) = mnt
			return k.handle()
		case unix.EINVAL:
			noUniqueMntID.Store(true) // before 6.12: key by device
		default:
			return nil, false
		}
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return nil, false
	}
	var mnt int32
	*(*uint32)(unsafe.Pointer(&k[hdr])) = maxHandle
	_, _, e := unix.Syscall6(unix.SYS_NAME_TO_HANDLE_AT, uintptr(fd), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unsafe.Pointer(&k[hdr])), uintptr(unsafe.Pointer(&mnt)), unix.AT_EMPTY_PATH, 0)
	if e != 0 {
		return nil, false
	}
	k[0] = 'd'
	*(*uint64)(unsafe.Pointer(&k[1])) = st.Dev
	return k.handle()
}

func (k *boundKey) handle() ([]byte, bool) {
	const hdr = 1 + 8
	n := *(*uint32)(unsafe.Pointer(&k[hdr]))
	if n == 0 || n > maxHandle {
		return nil, false
	}
	return k[:hdr+8+n], true
}

func (b *boundCache) get(key []byte) ([]unixSock, bool) {
	b.mu.Lock()
	s, ok := b.at[string(key)] // no allocation: the compiler reads key in place
	b.mu.Unlock()
	return s, ok
}

func (b *boundCache) put(key string, socks []unixSock) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.at == nil || len(b.at) >= maxBoundCache {
		b.at = map[string][]unixSock{}
	}
	b.at[key] = socks
}

// boundName returns the absolute name the reached socket was bound under
// when it differs from path (a bind mount, a hard link, a rename), for the
// policy to judge too; "" otherwise. A relative bound name says nothing
// about where the file is and is not used.
func (t *unixTarget) boundName(path string) string {
	for _, s := range t.reached() {
		if n := strings.TrimRight(s.name, "\x00"); strings.HasPrefix(n, "/") && n != path {
			return n
		}
	}
	return ""
}

// needsBoundName reports whether decider can judge a Unix socket's bound
// name differently from its path: unless it says it cannot, assume it can.
func needsBoundName(d netstack.Decider) bool {
	if _, all := d.(netstack.AllowAll); all {
		return false
	}
	u, ok := d.(interface{ JudgesUnixNames() bool })
	return !ok || u.JudgesUnixNames()
}

// holds adds to found those of inodes that process pid holds a descriptor
// for.
func holds(pid int, inodes, found map[uint64]bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if ino, err := strconv.ParseUint(link[len("socket:["):len(link)-1], 10, 64); err == nil && inodes[ino] {
			found[ino] = true
		}
	}
}
