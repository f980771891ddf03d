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
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A program's own Landlock network restrictions must hold for the calls the
// supervisor performs for it. The kernel checks Landlock against the
// calling task (security/landlock/net.c current_check_access_socket,
// task.c hook_unix_stream_connect and hook_unix_may_send), and the
// supervisor's task carries none of the program's domains. So the
// supervisor mirrors them: it sees every ruleset the program creates, every
// TCP port rule it adds and every layer it enforces, and checks a performed
// connect or send against the caller's layers first, in the place and with
// the errno the kernel's hook would have. Everything the tracee does itself
// (bind, filesystem access, signals) stays under its real domain.
//
// The three calls:
//   - landlock_create_ruleset is performed by the supervisor with its own
//     copy of the attribute, and the new descriptor is installed in the
//     caller with SECCOMP_IOCTL_NOTIF_ADDFD: the supervisor keeps a
//     reference, which identifies the ruleset later (kcmp KCMP_FILE), and
//     knows its handled accesses, which cannot be read back from the fd;
//   - landlock_add_rule for a net port rule is performed on the
//     supervisor's duplicate of the ruleset fd with the supervisor's copy of
//     the rule, and recorded; path rules are not trapped;
//   - landlock_restrict_self cannot be performed for another task: it is
//     recorded and answered CONTINUE (see ContinueSelfRestriction for why
//     that cannot weaken the sandbox's policy).

// From linux/landlock.h.
const (
	llRuleNetPort       = 2
	llAccessBindTCP     = 1 << 0
	llAccessConnectTCP  = 1 << 1
	llScopeAbstractUnix = 1 << 0
	llRestrictFlagsMask = 7      // LANDLOCK_MASK_RESTRICT_SELF at ABI 7: the three log flags
	llLogSubdomainsOff  = 1 << 2 // LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF
	llMaxLayers         = 16     // LANDLOCK_MAX_NUM_LAYERS
	llRulesetLink       = "anon_inode:[landlock-ruleset]"
	// maxRulesets bounds the references the supervisor keeps; rulesets
	// created beyond it are unknown to the mirror (see restrict).
	maxRulesets = 4096
)

// llRuleset is what the supervisor knows of one ruleset.
type llRuleset struct {
	fd                 int // the supervisor's reference to the same file
	owner, num         int // the process it was made for, and its descriptor number there
	handledNet, scoped uint64
	mu                 sync.Mutex
	connect            map[uint16]bool // ports with CONNECT_TCP granted
}

// llLayer is one enforced ruleset, frozen as landlock_merge_ruleset
// freezes it.
type llLayer struct {
	handledNet, scoped uint64
	connect            map[uint16]bool
	// predates holds the socket inodes the restricting process held when
	// it enforced this layer: their creator's domain lies below it.
	predates map[uint64]bool
}

// llDomain is a domain: a chain of layers. A *llDomain names one node of
// the hierarchy, as struct landlock_hierarchy does; children share their
// parent's nodes.
type llDomain struct {
	parent *llDomain
	layer  *llLayer
	depth  int
}

type llTask struct {
	start uint64 // /proc/TID/stat starttime: tells a reused tid
	dom   *llDomain
}

type landlockState struct {
	// active is set once any layer was recorded: until then no call pays
	// for a lookup.
	active atomic.Bool
	// anyConnect and anyScope: some recorded layer handles CONNECT_TCP,
	// or scopes abstract Unix sockets. Other calls skip the lookup.
	anyConnect, anyScope atomic.Bool

	mu       sync.Mutex
	rulesets []*llRuleset
	threads  map[int]llTask // tid -> its domain, as last known
	procs    map[int]llTask // tgid -> the domain a thread of it enforced last (start: the leader's)
	self     int
	// noKcmp: kcmp was refused (Docker's default profile without
	// CAP_SYS_PTRACE); rulesets are then found by descriptor number.
	noKcmp bool
}

func newLandlockState() *landlockState {
	return &landlockState{threads: map[int]llTask{}, procs: map[int]llTask{}, self: os.Getpid()}
}

// ---- the three calls ----

// handleLandlockCreateRuleset performs landlock_create_ruleset(attr, size,
// flags) for the caller (security/landlock/syscalls.c).
func (s *Supervisor) handleLandlockCreateRuleset(c *call) outcome {
	args := &c.n.Data.Args
	attr, size, flags := args[0], args[1], uint32(args[2])
	if flags != 0 {
		// Version and errata queries: attr is only compared with NULL.
		var p uintptr
		if attr != 0 {
			p = 1
		}
		r, e := rawLLCreate(p, uintptr(size), flags)
		if e != 0 {
			return ret(e)
		}
		return outcome{val: int64(r)}
	}
	var (
		copyBuf []byte
		p       uintptr = 1 // never dereferenced: the size check fails first
	)
	if size >= 8 && size <= pageSize {
		// copy_min_struct_from_user reads [attr, attr+size) and checks the
		// bytes beyond the known struct are zero. The copy faults where the
		// caller's memory would.
		m, err := s.mirrorMemory(c.n.Pid, attr, int(size))
		if err != nil {
			return ret(unix.ENOMEM)
		}
		defer m.free()
		p, copyBuf = m.addr, m.data
	}
	if !s.lis.Valid(c.n.ID) {
		return gone
	}
	r, e := rawLLCreate(p, uintptr(size), 0)
	if e != 0 {
		return ret(e)
	}
	fd := int(r)
	rs := &llRuleset{fd: fd, connect: map[uint16]bool{}}
	if len(copyBuf) >= 16 {
		rs.handledNet = binary.NativeEndian.Uint64(copyBuf[8:])
	}
	if len(copyBuf) >= 24 {
		rs.scoped = binary.NativeEndian.Uint64(copyBuf[16:])
	}
	newfd, err := s.lis.AddFDAndRespond(c.n.ID, fd, true) // the kernel's ruleset fd is O_CLOEXEC
	if err != nil {
		rawClose(fd)
		s.log.internal(c, "addfd", err)
		if e, ok := err.(unix.Errno); ok {
			return ret(e) // EMFILE: what anon_inode_getfd would have said
		}
		return gone
	}
	rs.num = newfd
	rs.owner, _ = s.tracees.tgidOf(c.n.Pid)
	if !s.ll.addRuleset(rs) {
		rawClose(fd)
	}
	return outcome{val: int64(newfd), answered: true}
}

// handleLandlockAddRule performs landlock_add_rule(fd, LANDLOCK_RULE_NET_PORT,
// attr, flags) on the supervisor's duplicate of the ruleset, with its copy
// of the rule, and records the rule. The filter traps net port rules only.
func (s *Supervisor) handleLandlockAddRule(c *call) outcome {
	args := &c.n.Data.Args
	c.fd = int32(args[0])
	if uint32(args[3]) != 0 {
		return ret(unix.EINVAL) // "No flag for now", checked before the fd
	}
	sock, err := s.tracees.getfd(c.n.Pid, c.fd)
	switch err {
	case nil:
	case unix.ESRCH:
		return gone
	case unix.EBADF:
		return ret(unix.EBADF)
	default:
		s.log.internal(c, "pidfd_getfd", err)
		return ret(unix.EPERM)
	}
	c.sock = sock
	var attr [16]byte // struct landlock_net_port_attr, packed
	p := unsafe.Pointer(&attr[0])
	if s.tracees.read(c.n.Pid, args[2], attr[:]) != nil {
		// The kernel checks the fd before it copies: let it fault on a
		// NULL of ours, after its own checks.
		p = nil
	}
	if !s.lis.Valid(c.n.ID) {
		return gone
	}
	_, _, e := unix.RawSyscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(sock), llRuleNetPort, uintptr(p), 0, 0, 0)
	if e != 0 {
		return ret(e)
	}
	if rs := s.ll.rulesetOf(c.n.Pid, c.fd, sock); rs != nil {
		access, port := binary.NativeEndian.Uint64(attr[0:]), binary.NativeEndian.Uint64(attr[8:])
		if access&llAccessConnectTCP != 0 {
			rs.mu.Lock()
			rs.connect[uint16(port)] = true
			rs.mu.Unlock()
		}
	}
	return outcome{}
}

// handleLandlockRestrictSelf records the layer landlock_restrict_self(fd,
// flags) is about to enforce on the caller, then lets the kernel enforce it.
// The layer is recorded only where the kernel's call will succeed (its
// checks, in order: no_new_privs or CAP_SYS_ADMIN, flags, the ruleset fd,
// the layer count); otherwise the kernel answers its own error.
func (s *Supervisor) handleLandlockRestrictSelf(c *call) outcome {
	args := &c.n.Data.Args
	c.fd = int32(args[0])
	flags := uint32(args[1])
	undo := s.recordRestriction(c, flags)
	if err := s.lis.ContinueSelfRestriction(c.n.ID); err != nil {
		// The call never ran (a signal tore it down): its restart comes
		// as a new notification.
		if undo != nil {
			undo()
		}
		return gone
	}
	return outcome{answered: true}
}

func (s *Supervisor) recordRestriction(c *call, flags uint32) (undo func()) {
	nnp, capAdmin, err := restrictStatus(c.n.Pid)
	if err != nil || !nnp && !capAdmin || flags&^llRestrictFlagsMask != 0 {
		return nil // EPERM or EINVAL from the kernel
	}
	if c.fd == -1 && flags == llLogSubdomainsOff {
		return nil // a logging change only: no layer
	}
	sock, err := s.tracees.getfd(c.n.Pid, c.fd)
	if err != nil {
		return nil // EBADF from the kernel
	}
	c.sock = sock
	if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(sock)); link != llRulesetLink {
		return nil // EBADFD from the kernel
	}
	layer := &llLayer{connect: map[uint16]bool{}}
	if rs := s.ll.rulesetOf(c.n.Pid, c.fd, sock); rs != nil {
		rs.mu.Lock()
		layer.handledNet, layer.scoped = rs.handledNet, rs.scoped
		for p := range rs.connect {
			layer.connect[p] = true
		}
		rs.mu.Unlock()
	} else {
		// A ruleset the supervisor did not see made (received from outside
		// the tree, or beyond maxRulesets): its rules are unknown. Fail
		// closed for the program's intent: every TCP connect and every
		// abstract socket outside is denied.
		s.log.internal(c, "landlock", fmt.Errorf("unknown ruleset: mirrored as deny-all"))
		layer.handledNet, layer.scoped = llAccessConnectTCP|llAccessBindTCP, llScopeAbstractUnix
	}
	if !s.lis.Valid(c.n.ID) {
		return nil
	}
	return s.ll.enforce(c.n.Pid, layer)
}

// ---- the checks ----

// landlockConnect mirrors the caller's own Landlock hooks for a connect the
// supervisor is about to perform: hook_socket_connect for TCP (after the
// fd and address copies and ENOTSOCK, before the protocol), and
// hook_unix_stream_connect / hook_unix_may_send for abstract Unix names.
func (s *Supervisor) landlockConnect(c *call) (outcome, bool) {
	if !s.ll.active.Load() {
		return outcome{}, true
	}
	switch c.domain {
	case unix.AF_INET, unix.AF_INET6:
		if c.typ != unix.SOCK_STREAM || !s.ll.anyConnect.Load() {
			return outcome{}, true
		}
		// sk_is_tcp: MPTCP and other stream protocols are not checked.
		if proto, e := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_PROTOCOL); e != 0 || proto != unix.IPPROTO_TCP {
			return outcome{}, true
		}
		if dom := s.ll.domainOf(int(c.n.Pid)); dom != nil {
			if e := llCheckConnect(dom, c.domain, c.addr[:c.alen]); e != 0 {
				return ret(e), false
			}
		}
	case unix.AF_UNIX:
		if !c.req.Unix.Abstract || !s.ll.anyScope.Load() {
			return outcome{}, true
		}
		if dom := s.ll.domainOf(int(c.n.Pid)); dom != nil {
			if e := s.llCheckScope(c, dom); e != 0 {
				return ret(e), false
			}
		}
	}
	return outcome{}, true
}

// landlockSend mirrors hook_unix_may_send for a datagram the supervisor is
// about to send to an abstract name. TCP sends are not checked by Landlock
// (MSG_FASTOPEN connects without security_socket_connect), nor UDP.
func (s *Supervisor) landlockSend(c *call) (outcome, bool) {
	if !s.ll.anyScope.Load() || c.domain != unix.AF_UNIX || c.typ != unix.SOCK_DGRAM || !c.req.Unix.Abstract {
		return outcome{}, true
	}
	dom := s.ll.domainOf(int(c.n.Pid))
	if dom == nil {
		return outcome{}, true
	}
	if e := s.llCheckScope(c, dom); e != 0 {
		return ret(e), false
	}
	return outcome{}, true
}

// llCheckConnect is current_check_access_socket for CONNECT_TCP.
func llCheckConnect(dom *llDomain, family int, a []byte) unix.Errno {
	handled := false
	for d := dom; d != nil; d = d.parent {
		handled = handled || d.layer.handledNet&llAccessConnectTCP != 0
	}
	if !handled {
		return 0 // landlock_get_applicable_subject: no layer handles it
	}
	if len(a) < 2 {
		return unix.EINVAL
	}
	var port uint16
	switch fam := binary.NativeEndian.Uint16(a); fam {
	case unix.AF_UNSPEC:
		return 0 // a disconnect is always allowed
	case unix.AF_INET:
		if len(a) < unix.SizeofSockaddrInet4 {
			return unix.EINVAL
		}
		port = binary.BigEndian.Uint16(a[2:])
	case unix.AF_INET6:
		if len(a) < 24 { // SIN6_LEN_RFC2133
			return unix.EINVAL
		}
		port = binary.BigEndian.Uint16(a[2:])
	default:
		return 0
	}
	if int(binary.NativeEndian.Uint16(a)) != family {
		return unix.EINVAL
	}
	// Every layer that handles CONNECT_TCP must grant it for the port.
	for d := dom; d != nil; d = d.parent {
		if d.layer.handledNet&llAccessConnectTCP != 0 && !d.layer.connect[port] {
			return unix.EACCES
		}
	}
	return 0
}

// llCheckScope answers EPERM where the kernel's abstract-Unix scope would:
// the destination is an abstract socket whose creator's domain is not the
// caller's or nested in it. It answers 0 wherever the kernel fails the call
// earlier (no such name, another type, not listening, already connected),
// so those errors stay the kernel's.
func (s *Supervisor) llCheckScope(c *call, dom *llDomain) unix.Errno {
	if !c.req.Unix.Abstract || !llScopes(dom) {
		return 0
	}
	ino, typ, listening, ok := abstractSocket(c.n.Pid, c.req.Unix.Name)
	if !ok || typ != c.typ {
		return 0
	}
	if c.typ != unix.SOCK_DGRAM {
		if !listening {
			return 0
		}
		if _, err := unix.Getpeername(c.sock); err == nil {
			return 0 // EISCONN comes first
		}
		if acc, _ := rawGetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); acc != 0 {
			return 0
		}
	} else if sa, err := unix.Getpeername(c.sock); err == nil {
		// hook_unix_may_send: a datagram socket may always send to its
		// connected peer.
		if u, ok := sa.(*unix.SockaddrUnix); ok && u.Name == "@"+c.req.Unix.Name {
			return 0
		}
	}
	if llScoped(dom, s.ll.serverDomain(s, ino)) {
		return unix.EPERM
	}
	return 0
}

func llScopes(dom *llDomain) bool {
	for d := dom; d != nil; d = d.parent {
		if d.layer.scoped&llScopeAbstractUnix != 0 {
			return true
		}
	}
	return false
}

// llScoped is task.c domain_is_scoped for LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET:
// the client may reach a server whose domain is its own or nested in it,
// level by level, where a level scopes.
func llScoped(client, server *llDomain) bool {
	cd, sd := 0, 0
	if client != nil {
		cd = client.depth
	}
	if server != nil {
		sd = server.depth
	}
	cl, sv := client, server
	for ; cd > sd; cd-- {
		if cl.layer.scoped&llScopeAbstractUnix != 0 {
			return true
		}
		cl = cl.parent
	}
	for ; sd > cd; sd-- {
		sv = sv.parent
	}
	for ; cl != nil; cl, sv = cl.parent, sv.parent {
		if cl.layer.scoped&llScopeAbstractUnix != 0 {
			return sv != cl
		}
	}
	return false
}

// abstractSocket finds the socket bound to abstract name in thread tid's
// network namespace (/proc/TID/net/unix): its inode, type, and whether it
// listens (__SO_ACCEPTCON). Connections not yet accepted carry their
// listener's name with no inode: they are skipped.
func abstractSocket(tid uint32, name string) (ino uint64, typ int, listening, ok bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/unix", tid))
	if err != nil {
		return 0, 0, false, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header: Num RefCount Protocol Flags Type St Inode Path
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 || fl[7] != "@"+name {
			continue
		}
		flags, _ := strconv.ParseUint(fl[3], 16, 32)
		t, _ := strconv.ParseUint(fl[4], 16, 32)
		n, err := strconv.ParseUint(fl[6], 10, 64)
		if err != nil || n == 0 {
			continue
		}
		ino, typ, listening, ok = n, int(t), flags&(1<<16) != 0, true
		if listening || typ == unix.SOCK_DGRAM {
			break
		}
	}
	return ino, typ, listening, ok
}

// serverDomain is the mirror's view of the domain of the socket's creator:
// the domain of the tree process that holds it, below every layer that
// process's lineage enforced while already holding it. A socket held by no
// process of the tree lies outside every domain the program made.
func (l *landlockState) serverDomain(s *Supervisor, ino uint64) *llDomain {
	want := map[uint64]bool{ino: true}
	for _, pid := range descendants(l.self) {
		found := map[uint64]bool{}
		if holds(pid, want, found); !found[ino] {
			continue
		}
		l.mu.Lock()
		dom := l.lookupLocked(pid, 0)
		l.mu.Unlock()
		var cut *llDomain
		for d := dom; d != nil; d = d.parent {
			if d.layer.predates[ino] {
				cut = d
			}
		}
		if cut != nil {
			dom = cut.parent
		}
		return dom
	}
	return nil
}

// ---- who has which domain ----

func (l *landlockState) addRuleset(rs *llRuleset) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.rulesets) >= maxRulesets {
		return false
	}
	l.rulesets = append(l.rulesets, rs)
	return true
}

// rulesetOf finds the ruleset that thread tid's descriptor num refers to
// (dup, the supervisor's duplicate of it): the same open file as one the
// supervisor made (kcmp KCMP_FILE on itself, which needs no privilege over
// another task). The newest first: rules usually follow the create.
func (l *landlockState) rulesetOf(tid uint32, num int32, dup int) *llRuleset {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.noKcmp {
		for i := len(l.rulesets) - 1; i >= 0; i-- {
			r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(l.self), uintptr(l.self), kcmpFile, uintptr(dup), uintptr(l.rulesets[i].fd), 0)
			if e == unix.EPERM || e == unix.ENOSYS {
				l.noKcmp = true
				break
			}
			if e == 0 && r == 0 {
				return l.rulesets[i]
			}
		}
		if !l.noKcmp {
			return nil
		}
	}
	// Without kcmp: the newest ruleset made with that number for the
	// caller's process or one of its ancestors (children inherit the
	// table at fork). A descriptor moved by dup2 or SCM_RIGHTS is not
	// found: its layer is then mirrored as deny-all.
	ti, err := readTask(int(tid))
	if err != nil {
		return nil
	}
	for p, hops := ti.tgid, 0; p > 0 && p != l.self && hops < 64; hops++ {
		for i := len(l.rulesets) - 1; i >= 0; i-- {
			if rs := l.rulesets[i]; rs.owner == p && rs.num == int(num) {
				return rs
			}
		}
		pt, err := readTask(p)
		if err != nil {
			break
		}
		p = pt.ppid
	}
	return nil
}

const kcmpFile = 0 // KCMP_FILE from linux/kcmp.h

// enforce records that thread tid now runs with layer on top of its
// domain. Threads and child processes that exist now keep the domain they
// have (restrict_self applies to the calling thread only; children
// inherited their domain when they were made); threads and processes made
// later by tid's process inherit the new one. undo forgets it again.
func (l *landlockState) enforce(tid uint32, layer *llLayer) (undo func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ti, err := readTask(int(tid))
	if err != nil {
		return nil
	}
	parent := l.lookupLocked(int(tid), 0)
	depth := 0
	if parent != nil {
		depth = parent.depth
	}
	if depth >= llMaxLayers {
		return nil // E2BIG from the kernel
	}
	layer.predates = heldSockets(ti.tgid)
	// Freeze what exists now.
	for _, t := range listTasks(ti.tgid) {
		l.lookupLocked(t, 0)
		for _, ch := range childrenOf(ti.tgid, t) {
			for _, ct := range listTasks(ch) {
				l.lookupLocked(ct, 0)
			}
		}
	}
	dom := &llDomain{parent: parent, layer: layer, depth: depth + 1}
	oldT, hadT := l.threads[int(tid)]
	oldP, hadP := l.procs[ti.tgid]
	l.threads[int(tid)] = llTask{ti.start, dom}
	leader := ti
	if ti.tgid != int(tid) {
		if leader, err = readTask(ti.tgid); err != nil {
			leader = ti
		}
	}
	l.procs[ti.tgid] = llTask{leader.start, dom}
	l.active.Store(true)
	if layer.handledNet&llAccessConnectTCP != 0 {
		l.anyConnect.Store(true)
	}
	if layer.scoped&llScopeAbstractUnix != 0 {
		l.anyScope.Store(true)
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if hadT {
			l.threads[int(tid)] = oldT
		} else {
			delete(l.threads, int(tid))
		}
		if hadP {
			l.procs[ti.tgid] = oldP
		} else {
			delete(l.procs, ti.tgid)
		}
	}
}

// domainOf returns the mirror of thread tid's domain (nil: none the
// program made).
func (l *landlockState) domainOf(tid int) *llDomain {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lookupLocked(tid, 0)
}

// lookupLocked returns tid's domain. A thread seen for the first time
// inherits from its creator, which /proc does not name: a thread takes the
// domain a thread of its process enforced last (or its leader's), a process
// its parent process's. The answer is then frozen for that thread.
func (l *landlockState) lookupLocked(tid, depth int) *llDomain {
	if t, ok := l.threads[tid]; ok && t.start == startOf(tid) {
		return t.dom
	}
	ti, err := readTask(tid)
	if err != nil {
		return nil
	}
	var d *llDomain
	creator := ti.ppid
	if tid != ti.tgid {
		creator = ti.tgid
	}
	if creator > 0 && creator != l.self && depth < 64 {
		if p, ok := l.procs[creator]; ok && p.start == startOf(creator) {
			d = p.dom
		} else {
			d = l.lookupLocked(creator, depth+1)
		}
	}
	if len(l.threads) >= 1<<16 {
		l.pruneLocked()
	}
	l.threads[tid] = llTask{ti.start, d}
	return d
}

// pruneLocked forgets threads that no longer exist.
func (l *landlockState) pruneLocked() {
	for tid, t := range l.threads {
		if startOf(tid) != t.start {
			delete(l.threads, tid)
		}
	}
	for tgid, p := range l.procs {
		if startOf(tgid) != p.start {
			delete(l.procs, tgid)
		}
	}
}

type taskInfo struct {
	tgid, ppid int
	start      uint64
}

// readStat reads a thread's parent process and start time from
// /proc/TID/stat: the one read a lookup that hits pays.
func readStat(tid int) (ppid int, start uint64, err error) {
	var buf [1024]byte
	fd, err := unix.Open("/proc/"+strconv.Itoa(tid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	n, err := unix.Read(fd, buf[:])
	unix.Close(fd)
	if err != nil {
		return 0, 0, err
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	b := buf[:n]
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, unix.ESRCH
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 {
		return 0, 0, unix.ESRCH
	}
	ppid, _ = strconv.Atoi(string(f[1]))
	start, _ = strconv.ParseUint(string(f[19]), 10, 64)
	return ppid, start, nil
}

// readTask adds the thread's process (from /proc/TID/status).
func readTask(tid int) (taskInfo, error) {
	var ti taskInfo
	var err error
	if ti.ppid, ti.start, err = readStat(tid); err != nil {
		return ti, err
	}
	st, err := readStatus("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return ti, err
	}
	ti.tgid = st.Tgid
	return ti, nil
}

func startOf(tid int) uint64 {
	_, start, err := readStat(tid)
	if err != nil {
		return 0
	}
	return start
}

// restrictStatus reads what landlock_restrict_self checks first:
// no_new_privs, or CAP_SYS_ADMIN in the caller's user namespace.
func restrictStatus(tid uint32) (nnp, capAdmin bool, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return false, false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "NoNewPrivs":
			nnp = v == "1"
		case "CapEff":
			caps, _ := strconv.ParseUint(v, 16, 64)
			capAdmin = caps&(1<<unix.CAP_SYS_ADMIN) != 0
		}
	}
	return nnp, capAdmin, nil
}

func listTasks(tgid int) []int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(tgid) + "/task")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		if t, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, t)
		}
	}
	return out
}

func childrenOf(tgid, tid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", tgid, tid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// heldSockets lists the socket inodes process pid holds.
func heldSockets(pid int) map[uint64]bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	out := map[uint64]bool{}
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if ino, err := strconv.ParseUint(link[len("socket:["):len(link)-1], 10, 64); err == nil {
			out[ino] = true
		}
	}
	return out
}

func rawLLCreate(attr, size uintptr, flags uint32) (uintptr, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_LANDLOCK_CREATE_RULESET, attr, size, uintptr(flags))
	return r, e
}

// ---- a copy of tracee memory that faults where the original does ----

const pageSize = 4096

type mirrorMem struct {
	mem  []byte
	addr uintptr
	data []byte // the readable copy, for parsing (unreadable bytes are 0)
}

// mirrorMemory copies [addr, addr+n) of thread tid into a private mapping at
// the same offset within its pages; pages the thread cannot read are left
// PROT_NONE, so a kernel copy from it fails exactly where one from the
// thread's memory would.
func (s *Supervisor) mirrorMemory(tid uint32, addr uint64, n int) (*mirrorMem, error) {
	off := int(addr % pageSize)
	pages := (off + n + pageSize - 1) / pageSize
	mem, err := unix.Mmap(-1, 0, pages*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	m := &mirrorMem{mem: mem, addr: uintptr(unsafe.Pointer(&mem[off])), data: make([]byte, n)}
	for pg := 0; pg < pages; pg++ {
		lo, hi := max(off, pg*pageSize), min(off+n, (pg+1)*pageSize)
		if s.tracees.read(tid, addr+uint64(lo-off), mem[lo:hi]) != nil {
			unix.Mprotect(mem[pg*pageSize:(pg+1)*pageSize], unix.PROT_NONE)
			continue
		}
		copy(m.data[lo-off:], mem[lo:hi])
	}
	return m, nil
}

func (m *mirrorMem) free() { unix.Munmap(m.mem) }
