package sentry

/*
#include "credthread.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The connect that the supervisor performs must pass the permission checks
// the caller would face. For AF_UNIX (write permission on the socket file,
// search permission on its directories, the peer's SO_PEERCRED uid and gid)
// and for families such as netlink (CAP_NET_ADMIN for groups), the
// credentials of the thread doing the connect are what the kernel checks.

// callerStatus reads the calling thread's credentials once per call, as
// they count in the supervisor's user namespace: uids and gids as /proc
// shows them to the supervisor, and no capabilities at all for a thread in
// another user namespace (one it created holds every capability, but only
// over itself: cap_capable never grants them in an ancestor). The thread
// is stopped in the trapped call, and unshare(CLONE_NEWUSER) and setns into
// a user namespace refuse a multithreaded process, so the namespace read
// here is the one the status belongs to.
//
// The credentials (not the per-thread fields: see liveStatus) come from the
// supervisor's credCache when it proves them current.
func (c *call) callerStatus() (status, error) {
	if c.st != nil {
		return *c.st, nil
	}
	var cc *credCache
	if c.sup != nil {
		cc = c.sup.creds
	}
	if cc != nil {
		if st, same, rootOK, ok := cc.lookup(c.sup.tracees, c.n.Pid); ok {
			c.st = &st
			if rootOK {
				c.same, c.sameKnown = same, true
			}
			return st, nil
		}
		st, same, err := cc.fill(c.sup.tracees, c.n.Pid, c.readCallerStatus, func() bool { return c.sup.lis.Valid(c.n.ID) })
		if err != nil {
			return st, err
		}
		c.st = &st
		c.same, c.sameKnown = same, c.sameRead
		return st, nil
	}
	st, _, _, err := c.readCallerStatus()
	if err != nil {
		return st, err
	}
	c.st = &st
	return st, nil
}

// readCallerStatus reads the caller's status, its user namespace and
// whether its root and mount namespace are the supervisor's (cacheable is
// false when that could not be read).
func (c *call) readCallerStatus() (st status, same, cacheable bool, err error) {
	tid := strconv.FormatUint(uint64(c.n.Pid), 10)
	st, err = readStatus("/proc/" + tid + "/status")
	if err != nil {
		return st, false, false, err
	}
	live := st
	c.live = &live
	userns, err := nsIno("/proc/" + tid + "/ns/user")
	if err != nil {
		return st, false, false, err
	}
	self := selfUserNS()
	if self == 0 {
		return st, false, false, unix.EPERM // unknown: fail closed
	}
	st.UserNS = userns
	if userns != self {
		st.CapEff = 0
	}
	same, serr := sameRoot("/proc/"+tid+"/root", "/proc/"+tid+"/ns/mnt")
	c.sameRead = serr == nil
	return st, same, serr == nil, nil
}

// liveStatus is the caller's status as /proc shows it now, for the fields
// that are the thread's own (NSpid, signal masks) or change without a
// trapped call (signal dispositions): read once per call.
func (c *call) liveStatus() (status, error) {
	if c.live == nil {
		st, err := readStatus("/proc/" + strconv.FormatUint(uint64(c.n.Pid), 10) + "/status")
		if err != nil {
			return st, err
		}
		c.live = &st
	}
	return *c.live, nil
}

// selfUserNS is the supervisor's user namespace (0 if unreadable).
var selfUserNS = sync.OnceValue(func() uint64 {
	ino, _ := nsIno("/proc/self/ns/user")
	return ino
})

// needsCallerCreds reports whether the call must run with the caller's
// credentials rather than the supervisor's.
func (c *call) needsCallerCreds(s *Supervisor) bool {
	if c.domain == unix.AF_INET || c.domain == unix.AF_INET6 {
		// inet connects check no credentials of the connecting task: the
		// socket carries its creator's.
		return false
	}
	st, err := c.callerStatus()
	if err != nil {
		return true // unknown: take the careful path, which fails closed
	}
	return !sameCreds(st, s.self)
}

// asCaller runs fn with the system calls it makes through t made as the
// caller: t is a credential thread that carries the caller's uids, gids,
// supplementary groups and effective capabilities (credPool), or nil when
// they are the supervisor's own (t's methods then make the call on this
// thread). fn's own code runs on the calling goroutine; only the system
// calls it makes through t change thread.
func (s *Supervisor) asCaller(c *call, fn func(t *credThread) unix.Errno) unix.Errno {
	return s.asCallerWith(c, 0, fn)
}

// asCallerOnPath is asCaller for a Unix path's lookup and connect, whose
// only checks of the task are generic_permission's and may_lookup's: its
// fsuid, fsgid and groups, and CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
// (capable_wrt_inode_uidgid). When those are the supervisor's own, the
// result is the same on the supervisor's thread, and no hand-over is paid:
// the common case of a root program whose other capabilities the layers
// dropped. (A Unix connect records the connecting task's credentials for
// SO_PEERCRED: uid and gid, which are then the same too.)
func (s *Supervisor) asCallerOnPath(c *call, fn func(t *credThread) unix.Errno) unix.Errno {
	if s.onPathAsSelf(c) {
		return fn(nil)
	}
	return s.asCaller(c, fn)
}

// onPathAsSelf reports whether asCallerOnPath would run its function on the
// calling thread.
func (s *Supervisor) onPathAsSelf(c *call) bool {
	st, err := c.callerStatus()
	return err == nil && samePathCreds(st, s.self)
}

// samePathCreds reports whether two tasks pass the same path permission
// checks. CAP_DAC_OVERRIDE grants everything CAP_DAC_READ_SEARCH does there
// (search and read), so with it on both sides the latter does not matter.
func samePathCreds(a, b status) bool {
	const override, search = 1 << unix.CAP_DAC_OVERRIDE, 1 << unix.CAP_DAC_READ_SEARCH
	if a.Uid != b.Uid || a.Gid != b.Gid || len(a.Groups) != len(b.Groups) {
		return false
	}
	for i := range a.Groups {
		if a.Groups[i] != b.Groups[i] {
			return false
		}
	}
	ca, cb := a.CapEff&(override|search), b.CapEff&(override|search)
	return ca == cb || ca&override != 0 && cb&override != 0
}

// asCallerWith is asCaller with the effective capabilities in extra added
// to the caller's (as far as the supervisor holds them). The one use:
// CAP_SYS_ADMIN, to name the caller in SCM_CREDENTIALS (see sendsAsCaller).
func (s *Supervisor) asCallerWith(c *call, extra uint64, fn func(t *credThread) unix.Errno) unix.Errno {
	st, err := c.callerStatus()
	if err != nil {
		if e := procErr(err); isResource(e) {
			s.log.internal(c, "read caller credentials", err)
			return c.resourceErrno()
		}
		return unix.EACCES // unknown credentials: fail closed
	}
	if sameCreds(st, s.self) {
		return fn(nil)
	}
	st.CapEff |= extra
	t, err := s.credThreads.get(st)
	if err != nil {
		s.log.internal(c, "assume caller credentials", err)
		return unix.EACCES // fail closed
	}
	e := fn(t)
	s.credThreads.put(t)
	return e
}

// credPool keeps idle credential threads, by credentials. A thread serves
// only callers whose uids, gids, groups and effective capabilities are
// exactly the ones it took, and one call at a time: a call that blocks (a
// hung file system) holds its thread, and the next caller gets another.
// Threads beyond the idle bound end.
//
// The threads are plain pthreads (credthread.c), switched for good to the
// caller's credentials with the per-thread system calls, unknown to the Go
// runtime: no goroutine ever runs on them, so their credentials can never
// apply to other work, and handing them a system call takes a futex, not
// the Go scheduler. (They were goroutines locked to threads, handed
// closures over channels: each hand-over woke and stopped three threads,
// about 50 µs; a Unix path connect as another user makes two.)
type credPool struct {
	mu   sync.Mutex
	idle map[string][]*credThread
}

const (
	credIdlePerKey = 4
	credMaxKeys    = 16
)

func credKey(st status) string {
	return fmt.Sprint(st.Uid, st.Gid, st.Groups, st.CapEff)
}

// credThread is one credential thread.
type credThread struct {
	p   *C.struct_sb_credthread
	key string
}

// get returns an idle thread carrying st's credentials, or a new one.
func (p *credPool) get(st status) (*credThread, error) {
	key := credKey(st)
	p.mu.Lock()
	if l := p.idle[key]; len(l) > 0 {
		t := l[len(l)-1]
		p.idle[key] = l[:len(l)-1]
		p.mu.Unlock()
		return t, nil
	}
	p.mu.Unlock()
	return startCredThread(st, key)
}

// put gives t back once its call is over; beyond the idle bound it ends.
func (p *credPool) put(t *credThread) {
	p.mu.Lock()
	if p.idle == nil {
		p.idle = map[string][]*credThread{}
	}
	if l, ok := p.idle[t.key]; len(l) < credIdlePerKey && (ok || len(p.idle) < credMaxKeys) {
		p.idle[t.key] = append(l, t)
		t = nil
	}
	p.mu.Unlock()
	if t != nil {
		credStop(t)
	}
}

// credStop ends t's thread.
func credStop(t *credThread) { C.sb_cred_stop(t.p) }

// startCredThread starts a thread that takes st's credentials
// (sb_cred_start: the per-thread setgroups, setresgid, setfsgid,
// PR_SET_KEEPCAPS, setresuid, setfsuid, then the effective set made the
// caller's within the permitted one).
func startCredThread(st status, key string) (*credThread, error) {
	var cr C.struct_sb_creds
	for i := range 4 {
		cr.uid[i], cr.gid[i] = C.uint32_t(st.Uid[i]), C.uint32_t(st.Gid[i])
	}
	cr.cap_eff = C.uint64_t(st.CapEff)
	var groups *C.uint32_t
	if len(st.Groups) > 0 {
		groups = (*C.uint32_t)(unsafe.Pointer(&st.Groups[0]))
	}
	var e C.int
	var step *C.char
	t := C.sb_cred_start(&cr, groups, C.uint32_t(len(st.Groups)), &e, &step)
	runtime.KeepAlive(st.Groups)
	if t == nil {
		return nil, fmt.Errorf("%s: %w", C.GoString(step), unix.Errno(e))
	}
	return &credThread{p: t, key: key}, nil
}

// sys makes system call nr on the thread, with its credentials, and
// waits for it. The calling goroutine waits in C (a cgo call: the Go
// processor is given up as for a system call that blocks). Memory passed by
// address must be pinned heap memory (runtime.Pinner): the goroutine's
// stack may move before the call reaches C (each Go function on the way
// may grow it), and nothing keeps an address converted to uintptr alive.
func (t *credThread) sys(nr, a0, a1, a2, a3, a4, a5 uintptr) (uintptr, unix.Errno) {
	r := C.sb_cred_call(t.p, C.long(nr), C.long(a0), C.long(a1), C.long(a2), C.long(a3), C.long(a4), C.long(a5))
	if r < 0 {
		return 0, unix.Errno(-r)
	}
	return uintptr(r), 0
}

// pinned pins b's memory for a call on a credential thread and returns its
// address (0 for an empty b). Pin makes what it is given escape, so a
// buffer on a caller's stack is allocated on the heap instead.
func pinned(pin *runtime.Pinner, b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	pin.Pin(&b[0])
	return uintptr(unsafe.Pointer(&b[0]))
}

// connect is sockConnect with t's credentials (t nil: on this thread).
func (t *credThread) connect(fd int, addr []byte) unix.Errno {
	if t == nil {
		return sockConnect(fd, addr)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	_, e := t.sys(unix.SYS_CONNECT, uintptr(fd), pinned(&pin, addr), uintptr(len(addr)), 0, 0, 0)
	return e
}

// sendmsg is sockSendmsg with t's credentials (t nil: on this thread).
func (t *credThread) sendmsg(fd int, name, data, control []byte, flags int) (int, unix.Errno) {
	if t == nil {
		return sockSendmsg(fd, name, data, control, flags)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	iov, m := new(unix.Iovec), new(unix.Msghdr)
	pin.Pin(iov)
	pin.Pin(m)
	pinned(&pin, name)
	pinned(&pin, data)
	pinned(&pin, control)
	*m, *iov = msghdrFor(name, data, control)
	m.Iov = iov
	r, e := t.sys(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(m)), uintptr(flags), 0, 0, 0)
	return int(r), e
}

// sendto is sockSendto with t's credentials (t nil: on this thread).
func (t *credThread) sendto(fd int, name, data []byte, flags int) (int, unix.Errno) {
	if t == nil {
		return sockSendto(fd, name, data, flags)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	np := pinned(&pin, name)
	if np == 0 { // a zero-length name still needs a non-NULL pointer (sockSendto)
		none := new(byte)
		pin.Pin(none)
		np = uintptr(unsafe.Pointer(none))
	}
	r, e := t.sys(unix.SYS_SENDTO, uintptr(fd), pinned(&pin, data), uintptr(len(data)), uintptr(flags), np, uintptr(len(name)))
	return int(r), e
}

// openat2 is openat2(2) of path with how, with t's credentials (t nil: on
// this thread).
func (t *credThread) openat2(dirfd int, path string, how *unix.OpenHow) (int, unix.Errno) {
	if t == nil {
		fd, err := unix.Openat2(dirfd, path, how)
		if err != nil {
			return -1, err.(unix.Errno)
		}
		return fd, 0
	}
	p, err := unix.ByteSliceFromString(path)
	if err != nil {
		return -1, unix.EINVAL // as unix.Openat2: a NUL in the path
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	h := new(unix.OpenHow)
	*h = *how
	pin.Pin(h)
	fd, e := t.sys(unix.SYS_OPENAT2, uintptr(dirfd), pinned(&pin, p), uintptr(unsafe.Pointer(h)), unsafe.Sizeof(*h), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), 0
}

// mayWrite is callerMayWrite with t's credentials (t nil: on this thread).
func (t *credThread) mayWrite(obj int) unix.Errno {
	if t == nil {
		return callerMayWrite(obj)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	empty := new(byte)
	pin.Pin(empty)
	_, e := t.sys(unix.SYS_FACCESSAT2, uintptr(obj), uintptr(unsafe.Pointer(empty)), unix.W_OK,
		unix.AT_EMPTY_PATH|unix.AT_EACCESS, 0, 0)
	return e
}

// unixTarget is the object an AF_UNIX path names, opened (O_PATH) as the
// caller would have resolved it. The connect goes to /proc/self/fd/N (or to
// "N" from a thread whose working directory that is: fddir.go), the very
// object that was decided on, so swapping the path afterwards cannot
// redirect it.
type unixTarget struct {
	obj  int
	addr []byte // "/proc/self/fd/N", in buf
	buf  [2 + len(procSelfFD) + 20 + 1]byte
	// The sockets whose file obj is, from one unix_diag dump (tree.go).
	lookedUp bool
	socks    []unixSock
}

const procSelfFD = "/proc/self/fd/"

// newUnixTarget is the target opened as obj, its address built in place
// (one allocation).
func newUnixTarget(obj int) *unixTarget {
	t := &unixTarget{obj: obj}
	*(*uint16)(unsafe.Pointer(&t.buf[0])) = unix.AF_UNIX
	n := 2 + copy(t.buf[2:], procSelfFD)
	n += len(strconv.AppendInt(t.buf[n:n], int64(obj), 10))
	t.addr = t.buf[:n+1] // NUL-terminated
	return t
}

func (t *unixTarget) close() {
	if t.obj >= 0 {
		unix.Close(t.obj)
		t.obj = -1
	}
}

func (t *unixTarget) connect(s *Supervisor, c *call) unix.Errno {
	if s.onPathAsSelf(c) {
		return fdConnect(c.sock, t.obj, t.addr) // as asCallerOnPath, without its closure
	}
	// A credential thread's working directory is its creator's (CLONE_FS):
	// it takes the absolute /proc/self/fd/N, never "N".
	return s.asCaller(c, func(ct *credThread) unix.Errno { return ct.connect(c.sock, t.addr) })
}

// isUnixPath reports whether the call names an AF_UNIX filesystem path that
// the kernel would go on to look up: a Unix socket, an AF_UNIX address of a
// length unix_validate_addr accepts, and a non-empty, non-abstract path.
func (c *call) isUnixPath() bool {
	return c.domain == unix.AF_UNIX && c.alen > 2 && c.alen <= unix.SizeofSockaddrUnix &&
		!c.req.Unix.Abstract && c.req.Unix.Path != ""
}

// openUnixTarget resolves the path in the caller's root, cwd and mount
// namespace, with its credentials. Lookup errors (ENOENT, ENOTDIR, ELOOP,
// EACCES) are exactly those connect would return.
func (s *Supervisor) openUnixTarget(c *call) (outcome, bool) {
	path := c.req.Unix.Path
	dirfd, resolve, p, cleanup, err := s.callerView(c, path)
	if err != nil {
		e := procErr(err)
		if e == unix.ESRCH {
			return gone, false // the caller died while we looked (finish checks)
		}
		s.log.internal(c, "caller view", err)
		if isResource(e) {
			return ret(c.resourceErrno()), false
		}
		return ret(unix.EACCES), false
	}
	defer cleanup()
	// A clean absolute path walked from the supervisor's own root without
	// meeting a symlink is the name the file has (d_path gives back the
	// components walked), so the readlink below is needed only when a
	// symlink, a dot or a foreign root made the name differ. Any error
	// other than ELOOP is the walk's own, met before any symlink.
	o := openTarget{dirfd: dirfd, path: p, resolve: resolve, obj: -1,
		clean: dirfd == unix.AT_FDCWD && resolve == 0 && isCleanAbs(p)}
	var e unix.Errno
	if s.onPathAsSelf(c) {
		e = o.openAs(nil) // on this thread: no closure to allocate
	} else {
		heap := o
		e = s.asCaller(c, heap.openAs)
		o = heap
	}
	if e != 0 {
		return ret(e), false
	}
	obj, clean := o.obj, o.clean
	c.unix = newUnixTarget(obj)
	if clean {
		c.req.Unix.Path = p
	} else if resolved, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", obj)); err == nil {
		c.req.Unix.Path = resolved
	}
	// The policy judges the socket's own bound name too (a bind mount, a
	// hard link): see unixTarget.boundName.
	if needsBoundName(s.decider) {
		c.req.Unix.Bound = c.unix.boundName(c.req.Unix.Path)
	}
	return outcome{}, true
}

// openTarget is the openat2 of openUnixTarget, run as the caller.
type openTarget struct {
	dirfd   int
	path    string
	resolve uint64
	clean   bool // try RESOLVE_NO_SYMLINKS first; false after if it failed
	obj     int
}

func (o *openTarget) openAs(t *credThread) unix.Errno {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: o.resolve}
	if o.clean {
		how.Resolve |= unix.RESOLVE_NO_SYMLINKS
		fd, e := t.openat2(o.dirfd, o.path, &how)
		if e == 0 {
			o.obj = fd
			return 0
		}
		if e != unix.ELOOP {
			return e
		}
		o.clean, how.Resolve = false, o.resolve
	}
	fd, e := t.openat2(o.dirfd, o.path, &how)
	if e != 0 {
		return e
	}
	o.obj = fd
	return 0
}

// callerView returns the directory fd, resolve flags and path with which
// openat2 finds what the caller would find. When the caller shares the
// supervisor's root and mount namespace, plain lookups are exact (magic
// links included); otherwise the lookup is confined to the caller's root.
func (s *Supervisor) callerView(c *call, path string) (dirfd int, resolve uint64, p string, cleanup func(), err error) {
	cleanup = func() {}
	tid := c.n.Pid
	if _, err := c.callerStatus(); err != nil {
		return -1, 0, "", cleanup, err
	}
	same := c.same
	if !c.sameKnown {
		var err error
		if same, err = sameRoot(fmt.Sprintf("/proc/%d/root", tid), fmt.Sprintf("/proc/%d/ns/mnt", tid)); err != nil {
			return -1, 0, "", cleanup, err
		}
	}
	path, err = s.procSelf(c, path, same)
	if err != nil {
		return -1, 0, "", cleanup, err
	}
	relative := !strings.HasPrefix(path, "/")
	if same {
		if !relative {
			return unix.AT_FDCWD, 0, path, cleanup, nil
		}
		cwd, err := unix.Open(fmt.Sprintf("/proc/%d/cwd", tid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, 0, "", cleanup, err
		}
		return cwd, 0, path, func() { unix.Close(cwd) }, nil
	}
	root := fmt.Sprintf("/proc/%d/root", tid)
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, 0, "", cleanup, err
	}
	cleanup = func() { unix.Close(rootfd) }
	if relative {
		// The cwd as seen from the caller's root.
		rootPath, err1 := os.Readlink(root)
		cwdPath, err2 := os.Readlink(fmt.Sprintf("/proc/%d/cwd", tid))
		if err := errors.Join(err1, err2); err != nil {
			cleanup()
			return -1, 0, "", func() {}, procErr(err)
		}
		rel := strings.TrimPrefix(cwdPath, strings.TrimSuffix(rootPath, "/"))
		path = rel + "/" + path
	}
	return rootfd, unix.RESOLVE_IN_ROOT, path, cleanup, nil
}

// procSelf rewrites a leading /proc/self or /proc/thread-self, which would
// otherwise name the supervisor, to the caller's own /proc entries. (A
// symlink that leads into /proc/self further down the path is not
// rewritten: a documented limit.)
func (s *Supervisor) procSelf(c *call, path string, sameRoot bool) (string, error) {
	rest, thread := "", false
	switch {
	case path == "/proc/self" || strings.HasPrefix(path, "/proc/self/"):
		rest = path[len("/proc/self"):]
	case path == "/proc/thread-self" || strings.HasPrefix(path, "/proc/thread-self/"):
		rest, thread = path[len("/proc/thread-self"):], true
	default:
		return path, nil
	}
	st, err := c.liveStatus()
	if err != nil {
		return "", procErr(err)
	}
	// In a foreign root, the caller's /proc shows its own pid namespace.
	tgid, tid := st.Tgid, int(c.n.Pid)
	if !sameRoot {
		tgid, tid = st.NSTgid, st.NSPid
	}
	if thread {
		return fmt.Sprintf("/proc/%d/task/%d%s", tgid, tid, rest), nil
	}
	return fmt.Sprintf("/proc/%d%s", tgid, rest), nil
}

// sameRoot reports whether the caller's root (/proc/TID/root) is the
// supervisor's and its mount namespace (/proc/TID/ns/mnt) the supervisor's.
// The supervisor's own root is read every time (a pivot_root in its mount
// namespace moves it, chroot_fs_refs); its mount namespace never changes (a
// multithreaded process cannot setns into another: its fs_struct is
// shared), and namespaces are compared by nsfs inode, as readlink's
// "mnt:[INO]" would.
func sameRoot(root, mntns string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Stat(root, &a); err != nil {
		return false, err
	}
	if err := unix.Stat("/", &b); err != nil {
		return false, err
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return false, nil
	}
	theirs, err := nsIno(mntns)
	if err != nil {
		return false, err
	}
	ours := selfMntNS()
	if ours == 0 {
		return false, unix.EPERM // unknown: fail closed
	}
	return theirs == ours, nil
}

// selfMntNS is the supervisor's mount namespace (0 if unreadable).
var selfMntNS = sync.OnceValue(func() uint64 {
	ino, _ := nsIno("/proc/self/ns/mnt")
	return ino
})

// isCleanAbs reports whether p is an absolute path with no empty, "." or
// ".." component and no trailing slash: filepath.Clean would leave it as it
// is.
func isCleanAbs(p string) bool {
	return strings.HasPrefix(p, "/") && filepath.Clean(p) == p
}

// netlinkAutobind reproduces netlink's autobind. Linux binds an unbound
// netlink socket on connect to the port id of the *connecting* process;
// performed by the supervisor, that would be the supervisor's pid. Binding
// first to the caller's own thread group id keeps getsockname exact. Only
// the case where the kernel would reach autobind is handled: a full
// sockaddr_nl with no groups and no destination port.
func (s *Supervisor) netlinkAutobind(c *call) {
	a := c.addr[:c.alen]
	if len(a) < unix.SizeofSockaddrNetlink || *(*uint16)(unsafe.Pointer(&a[0])) != unix.AF_NETLINK {
		return
	}
	nl := (*unix.RawSockaddrNetlink)(unsafe.Pointer(&a[0]))
	if nl.Pid != 0 || nl.Groups != 0 {
		return
	}
	sa, err := unix.Getsockname(c.sock)
	if n, ok := sa.(*unix.SockaddrNetlink); err != nil || !ok || n.Pid != 0 {
		return
	}
	st, err := c.callerStatus()
	if err != nil || st.NSTgid == 0 {
		return
	}
	err = unix.Bind(c.sock, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: uint32(st.NSTgid)})
	// When the caller's pid is taken (its second socket), Linux picks a
	// negative id from a rover below -4096: take the first free one.
	for id := int32(-4096); err == unix.EADDRINUSE && id > -4096-1024; id-- {
		err = unix.Bind(c.sock, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: uint32(id)})
	}
}
