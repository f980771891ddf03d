package sentry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// pidfdThread is PIDFD_THREAD (Linux 6.9): a pidfd for one thread.
const pidfdThread = unix.O_EXCL

// kcmpFiles is KCMP_FILES from linux/kcmp.h.
const kcmpFiles = 2

// tracees gives the supervisor access to tracee threads: their descriptors
// and their memory.
//
// pidfds are cached per process, not per thread: a program with 10,000
// threads must not cost 10,000 descriptors. A thread's descriptor table is
// usually its process's; kcmp(KCMP_FILES) proves it, before and after the
// descriptor is taken. A thread with a table of its own (clone without
// CLONE_FILES, or unshare) gets a one-shot thread pidfd instead.
type tracees struct {
	mu    sync.Mutex
	procs map[int]*pidfdRef // tgid -> process pidfd
	// threads are PIDFD_THREAD pidfds of non-leader threads, bounded by
	// maxThreadPidfds: a thread's first call pays pidfd_open, later ones
	// neither it nor the two kcmps of the shared path.
	threads map[uint32]*pidfdRef
	// noThreadPidfd is set once PIDFD_THREAD was refused (before 6.9).
	noThreadPidfd atomic.Bool
	tgids         map[uint32]int // tid -> tgid, a hint checked by kcmp
	// noKcmp is set once kcmp was refused (Docker's default profile allows
	// it only with CAP_SYS_PTRACE): every non-leader thread then takes the
	// one-shot path. Atomic: calls are served from several goroutines.
	noKcmp atomic.Bool
	// noVMRead is set once process_vm_readv was refused (the same profile,
	// the same capability): memory is then read through /proc/PID/mem,
	// with page permissions checked by hand because /proc/PID/mem reads
	// PROT_NONE pages.
	noVMRead atomic.Bool
}

const pruneAt = 256 // cached process pidfds before exited ones are pruned

// pidfdRef is a cached pidfd, used by calls on several goroutines at once.
// A call holds it (refs) across its pidfd_getfd, which is made without the
// cache's lock: pidfd_getfd can wait (__pidfd_fget takes the process's
// exec_update_lock, which an execve holds while it closes the process's
// close-on-exec files: a FUSE flush, a lingering TCP close), and a wait
// under the lock would stop every call of every process. Dropped from the
// cache (exited, evicted, forgotten), it is closed once no call holds it,
// so its number is never reused under a call. refs and dropped are guarded
// by tracees.mu.
type pidfdRef struct {
	fd      int
	refs    int
	dropped bool
}

// drop removes r from use: closed now, or by the last call holding it.
// t.mu is held.
func (r *pidfdRef) drop() {
	if r.dropped {
		return // closed already, or by its last holder
	}
	r.dropped = true
	if r.refs == 0 {
		unix.Close(r.fd)
	}
}

// unhold ends a call's hold on r. t.mu is held.
func (r *pidfdRef) unhold() {
	if r.refs--; r.dropped && r.refs == 0 {
		unix.Close(r.fd)
	}
}

const maxThreadPidfds = 512

func newTracees() *tracees {
	return &tracees{procs: make(map[int]*pidfdRef), tgids: make(map[uint32]int), threads: make(map[uint32]*pidfdRef)}
}

// getfd duplicates thread tid's descriptor fd into the supervisor: the same
// open file description, so socket state, options and flags are shared.
// The caller must check the notification is still valid afterwards.
func (t *tracees) getfd(tid uint32, fd int32) (int, error) {
	if fd < 0 {
		return -1, unix.EBADF
	}
	if f, ok, err := t.getfdCached(tid, fd); ok {
		return f, err
	}
	tgid, err := t.tgidOf(tid)
	if err != nil {
		return -1, err
	}
	if tgid != int(tid) && !t.noThreadPidfd.Load() {
		if f, ok, err := t.getfdNewThread(tid, fd); ok {
			return f, err
		}
	}
	if tgid == int(tid) || !t.noKcmp.Load() {
		if f, ok, err := t.getfdShared(tid, tgid, fd); ok {
			return f, err
		}
	}
	// One-shot: a pidfd for exactly this thread.
	pidfd, err := unix.PidfdOpen(int(tid), pidfdThread)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pidfd)
	return pidfdGetfd(pidfd, fd)
}

// getfdCached takes fd through a cached pidfd: tid's thread pidfd, or, for
// a known leader, its process's pidfd. A pidfd names a struct pid, not a
// number: once that thread or process has exited (and its tid may have come
// back as another), pidfd_getfd fails with ESRCH (pidfd_get_task finds no
// task), the entry is dropped and ok is false, so that getfd starts afresh.
// The call holds the entry across pidfd_getfd (pidfdRef), so that no
// eviction or forget can close the pidfd and let its number be reused
// under it.
func (t *tracees) getfdCached(tid uint32, fd int32) (int, bool, error) {
	// Unlocked by hand, not deferred: nothing here can panic, and this runs
	// for every call.
	t.mu.Lock()
	ref, ok := t.threads[tid]
	leader := false
	if !ok {
		// A leader: its tid is its tgid (the hint is checked by the pidfd,
		// which names that very process; ESRCH when it is gone).
		if tgid, known := t.tgids[tid]; known && tgid == int(tid) {
			ref, ok = t.procs[tgid]
			leader = true
		}
	}
	if !ok {
		t.mu.Unlock()
		return -1, false, nil
	}
	ref.refs++
	t.mu.Unlock()
	f, err := pidfdGetfd(ref.fd, fd)
	t.mu.Lock()
	if err == unix.ESRCH {
		if leader {
			if t.procs[int(tid)] == ref {
				delete(t.procs, int(tid))
				ref.dropped = true
			}
			delete(t.tgids, tid)
		} else if t.threads[tid] == ref {
			delete(t.threads, tid)
			ref.dropped = true
		}
	}
	ref.unhold()
	t.mu.Unlock()
	if err == unix.ESRCH {
		return -1, false, nil
	}
	return f, true, err
}

// getfdNewThread opens a PIDFD_THREAD pidfd for non-leader tid (Linux 6.9:
// pidfd_getfd then reads that thread's own descriptor table, shared or
// not, so no kcmp is needed), caches it and takes fd. ok is false where
// thread pidfds are not supported (EINVAL), and the kcmp path is taken.
func (t *tracees) getfdNewThread(tid uint32, fd int32) (int, bool, error) {
	pidfd, err := unix.PidfdOpen(int(tid), pidfdThread)
	if err == unix.EINVAL {
		t.noThreadPidfd.Store(true)
		return -1, false, nil
	}
	if err != nil {
		return -1, true, err
	}
	f, err := pidfdGetfd(pidfd, fd)
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, dup := t.threads[tid]; dup {
		old.drop() // another receiver opened one meanwhile
		delete(t.threads, tid)
	}
	if len(t.threads) >= maxThreadPidfds {
		for k, v := range t.threads { // an arbitrary victim: a miss costs one pidfd_open
			v.drop()
			delete(t.threads, k)
			break
		}
	}
	t.threads[tid] = &pidfdRef{fd: pidfd}
	return f, true, err
}

// getfdShared takes fd through the cached pidfd of tid's process, when tid
// provably shares that process's descriptor table. ok is false when the
// one-shot path must be taken instead.
func (t *tracees) getfdShared(tid uint32, tgid int, fd int32) (int, bool, error) {
	leader := tgid == int(tid)
	if !leader && !t.sameFiles(tgid, tid) {
		return -1, false, nil
	}
	ref, err := t.procPidfd(tgid)
	if err != nil {
		t.forget(tid, tgid)
		return -1, false, nil
	}
	f, err := pidfdGetfd(ref.fd, fd)
	t.mu.Lock()
	ref.unhold()
	t.mu.Unlock()
	if err == unix.ESRCH {
		// A cached pidfd of a process that exited; its pid came back.
		t.forget(tid, tgid)
		return -1, false, nil
	}
	if err != nil {
		return -1, true, err
	}
	// The process may have unshared its table since the first check.
	if !leader && !t.sameFiles(tgid, tid) {
		unix.Close(f)
		return -1, false, nil
	}
	return f, true, nil
}

func (t *tracees) sameFiles(tgid int, tid uint32) bool {
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(tgid), uintptr(tid), kcmpFiles, 0, 0, 0)
	if e == unix.EPERM || e == unix.ENOSYS {
		t.noKcmp.Store(true)
	}
	if e != 0 || r != 0 {
		t.forget(tid, -1) // the tid hint may be stale: read it again next time
		return false
	}
	return true
}

// pidfdGetfd is pidfd_getfd(2). Not a raw system call: it waits for the
// process's exec_update_lock (see pidfdRef).
func pidfdGetfd(pidfd int, fd int32) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_PIDFD_GETFD, uintptr(pidfd), uintptr(fd), 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil // close-on-exec already: pidfd_getfd sets it
}

// tgidOf returns the thread group of tid, from the cache or /proc. ESRCH
// means the thread is gone; any other error (EMFILE, ENOMEM, EACCES) is the
// supervisor's own failure and is returned as it is, never as ESRCH: a call
// taken for gone is not answered.
func (t *tracees) tgidOf(tid uint32) (int, error) {
	t.mu.Lock()
	tgid, ok := t.tgids[tid]
	t.mu.Unlock()
	if ok {
		return tgid, nil
	}
	st, err := readStatus(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return 0, procErr(err)
	}
	if st.Tgid == 0 {
		return 0, unix.ESRCH // a status without Tgid: the task is being reaped
	}
	t.mu.Lock()
	if len(t.tgids) > 1<<16 {
		clear(t.tgids) // a hint cache: dropping it costs only /proc reads
	}
	t.tgids[tid] = st.Tgid
	t.mu.Unlock()
	return st.Tgid, nil
}

// procPidfd returns tgid's cached process pidfd, held for the caller
// (unhold it under t.mu when done).
func (t *tracees) procPidfd(tgid int) (*pidfdRef, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ref, ok := t.procs[tgid]; ok {
		ref.refs++
		return ref, nil
	}
	if len(t.procs) >= pruneAt {
		t.pruneLocked()
	}
	fd, err := unix.PidfdOpen(tgid, 0)
	if err != nil {
		return nil, err
	}
	ref := &pidfdRef{fd: fd, refs: 1} // close-on-exec already: pidfd_open sets it
	t.procs[tgid] = ref
	return ref, nil
}

// pruneLocked closes the pidfds of processes that exited (a pidfd polls
// readable then).
func (t *tracees) pruneLocked() {
	fds := make([]unix.PollFd, 0, len(t.procs))
	for _, ref := range t.procs {
		fds = append(fds, unix.PollFd{Fd: int32(ref.fd), Events: unix.POLLIN})
	}
	if n, err := unix.Poll(fds, 0); err != nil || n == 0 {
		return
	}
	for tgid, ref := range t.procs {
		for _, p := range fds {
			if p.Fd == int32(ref.fd) && p.Revents != 0 {
				ref.drop()
				delete(t.procs, tgid)
				break
			}
		}
	}
}

// forget drops what is cached about tid and, if tgid >= 0, its process.
func (t *tracees) forget(tid uint32, tgid int) {
	t.mu.Lock()
	delete(t.tgids, tid)
	if ref, ok := t.procs[tgid]; ok && tgid >= 0 {
		ref.drop()
		delete(t.procs, tgid)
	}
	t.mu.Unlock()
}

// read copies len(buf) bytes at addr out of thread tid. Any byte that the
// thread itself could not read makes it fail with EFAULT, as in the kernel's
// copy_from_user.
func (t *tracees) read(tid uint32, addr uint64, buf []byte) error {
	return t.access(tid, addr, buf, false)
}

// read2 copies two ranges out of thread tid with one process_vm_readv where
// it can (each one costs a walk of the caller's mm): a1 into b1, then a2
// into b2. It reports which fault: process_vm_rw_core copies the remote
// ranges in order and stops at the first byte it cannot read, so a short
// count tells which range failed, and a fault in the first means the
// second was never read, as in two calls made in turn.
func (t *tracees) read2(tid uint32, a1 uint64, b1 []byte, a2 uint64, b2 []byte) (err1, err2 error) {
	if len(b1) == 0 || len(b2) == 0 || t.noVMRead.Load() {
		if err1 = t.read(tid, a1, b1); err1 != nil {
			return err1, nil
		}
		return nil, t.read(tid, a2, b2)
	}
	n, e := readMem2(tid, a1, b1, a2, b2)
	switch {
	case e == unix.EPERM || e == unix.ENOSYS:
		t.noVMRead.Store(true)
		return t.read2(tid, a1, b1, a2, b2)
	case e == 0 && n == len(b1)+len(b2):
		return nil, nil
	case e == 0 && n >= len(b1):
		return nil, unix.EFAULT
	case e == 0, e == unix.EFAULT:
		return unix.EFAULT, nil
	}
	return e, nil
}

// write copies buf to addr in thread tid, as the kernel's put_user would:
// a page the thread could not write makes it fail with EFAULT.
func (t *tracees) write(tid uint32, addr uint64, buf []byte) error {
	return t.access(tid, addr, buf, true)
}

// access reads or writes tracee memory with process_vm_readv/writev, which
// honour page protections as copy_from_user and put_user do, or through
// /proc/TID/mem once those are refused, checking the protections by hand
// (/proc/TID/mem reads PROT_NONE pages and writes read-only ones).
func (t *tracees) access(tid uint32, addr uint64, buf []byte, write bool) error {
	if len(buf) == 0 {
		return nil
	}
	if !t.noVMRead.Load() {
		n, e := accessMem(tid, addr, buf, write)
		switch {
		case e == 0 && n == len(buf):
			return nil
		case e == 0, e == unix.EFAULT:
			return unix.EFAULT
		case e == unix.EPERM || e == unix.ENOSYS:
			t.noVMRead.Store(true)
		default:
			return e
		}
	}
	perm, flag := byte('r'), os.O_RDONLY
	if write {
		perm, flag = 'w', os.O_WRONLY
	}
	if !mapped(tid, addr, uint64(len(buf)), perm) {
		return unix.EFAULT
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", tid), flag, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var n int
	if write {
		n, err = f.WriteAt(buf, int64(addr))
	} else {
		n, err = f.ReadAt(buf, int64(addr))
	}
	if err != nil || n != len(buf) {
		return unix.EFAULT
	}
	return nil
}

// readable checks /proc/TID/maps: every byte of [addr, addr+n) must lie in a
// readable mapping.
func readable(tid uint32, addr, n uint64) bool { return mapped(tid, addr, n, 'r') }

// mapped checks /proc/TID/maps: every byte of [addr, addr+n) must lie in a
// mapping with permission perm ('r' or 'w').
func mapped(tid uint32, addr, n uint64, perm byte) bool {
	if addr+n < addr {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", tid))
	if err != nil {
		return false
	}
	end := addr + n
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() && addr < end {
		var lo, hi uint64
		var perms string
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x %s", &lo, &hi, &perms); err != nil {
			continue
		}
		if addr >= lo && addr < hi {
			if !strings.ContainsRune(perms[:3], rune(perm)) {
				return false
			}
			addr = hi
		}
	}
	return addr >= end
}

// status holds the fields of /proc/TID/status the sentry needs.
type status struct {
	Tgid   int
	NSTgid int // the thread group id in the tracee's own pid namespace
	NSPid  int // the thread id in the tracee's own pid namespace
	// NSDepth is the number of pid namespaces the thread is seen in, from
	// the reader's down to its own.
	NSDepth int
	Uid     [4]uint32
	Gid     [4]uint32
	Groups  []uint32
	// CapEff is the effective set as it counts in the reader's user
	// namespace; OwnCapEff as it counts in the thread's own (they differ
	// once callerStatus has seen another user namespace).
	CapEff, OwnCapEff uint64
	// UserNS is the inode of the thread's user namespace (0: not read).
	UserNS uint64
	// Signal masks: the thread's blocked set, the process's ignored and
	// caught sets (bit n-1 for signal n).
	SigBlk, SigIgn, SigCgt uint64
	// Pending signals: the thread's own (SigPnd) and the process's shared
	// set (ShdPnd); Threads counts the process's threads.
	SigPnd, ShdPnd uint64
	Threads        int
}

// readStatus reads and parses /proc/TID/status without allocating (but for
// the groups): it is read once for every call that needs the caller's
// credentials, and for every new thread's thread group.
func readStatus(path string) (status, error) {
	var st status
	var buf [4096]byte
	data, err := readProc(path, buf[:])
	if err != nil {
		return st, err
	}
	parseStatus(data, &st)
	return st, nil
}

// parseStatus fills st from the text of a status file (proc_pid_status:
// "Key:\tvalue" lines, numbers in decimal but for the hexadecimal masks).
func parseStatus(data []byte, st *status) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		k, v := line[:colon], line[colon+1:]
		switch string(k) { // no allocation: a switch on a converted slice
		case "Tgid":
			st.Tgid = int(firstDec(v))
		case "NStgid":
			st.NSTgid, _ = lastDec(v)
		case "NSpid":
			st.NSPid, st.NSDepth = lastDec(v)
		case "Uid":
			decs(v, st.Uid[:])
		case "Gid":
			decs(v, st.Gid[:])
		case "Groups":
			n := countFields(v)
			if n > 0 {
				st.Groups = make([]uint32, n)
				decs(v, st.Groups)
			}
		case "CapEff":
			st.CapEff = hex64(v)
			st.OwnCapEff = st.CapEff
		case "SigBlk":
			st.SigBlk = hex64(v)
		case "SigIgn":
			st.SigIgn = hex64(v)
		case "SigCgt":
			st.SigCgt = hex64(v)
		case "SigPnd":
			st.SigPnd = hex64(v)
		case "ShdPnd":
			st.ShdPnd = hex64(v)
		case "Threads":
			st.Threads = int(firstDec(v))
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// nextField returns the first whitespace-separated field of v and the rest.
func nextField(v []byte) (field, rest []byte) {
	i := 0
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	j := i
	for j < len(v) && !isSpace(v[j]) {
		j++
	}
	return v[i:j], v[j:]
}

func countFields(v []byte) int {
	n := 0
	for {
		f, rest := nextField(v)
		if len(f) == 0 {
			return n
		}
		n, v = n+1, rest
	}
}

// dec parses a decimal field; anything else reads as 0, as strconv's
// errors were ignored before.
func dec(f []byte) uint64 {
	var n uint64
	for _, c := range f {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

func firstDec(v []byte) uint64 {
	f, _ := nextField(v)
	return dec(f)
}

// lastDec returns the last decimal field of v and the number of fields.
func lastDec(v []byte) (int, int) {
	var last []byte
	n := 0
	for {
		f, rest := nextField(v)
		if len(f) == 0 {
			return int(dec(last)), n
		}
		last, n, v = f, n+1, rest
	}
}

// decs parses up to len(dst) decimal fields of v into dst (uint32 ids).
func decs(v []byte, dst []uint32) {
	for i := range dst {
		f, rest := nextField(v)
		if len(f) == 0 {
			return
		}
		dst[i], v = uint32(dec(f)), rest
	}
}

func hex64(v []byte) uint64 {
	f, _ := nextField(v)
	var n uint64
	for _, c := range f {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | uint64(c-'A'+10)
		default:
			return 0
		}
	}
	return n
}

// sameCreds reports whether two tasks would pass the same permission checks.
func sameCreds(a, b status) bool {
	return a.Uid == b.Uid && a.Gid == b.Gid && a.CapEff == b.CapEff && slices.Equal(a.Groups, b.Groups)
}

// procErr reduces an error from reading /proc/TID to an errno: ESRCH when
// the task is gone (its directory vanished: ENOENT, or ESRCH from a read of
// an exiting task), otherwise the errno itself (EMFILE, ENFILE, ENOMEM,
// EACCES, ...), which the caller must answer, not drop.
func procErr(err error) unix.Errno {
	var e unix.Errno
	if !errors.As(err, &e) {
		return unix.EIO
	}
	if e == unix.ENOENT {
		return unix.ESRCH
	}
	return e
}

// isResource reports whether e is the supervisor running out of
// descriptors or memory.
func isResource(e error) bool {
	return e == unix.EMFILE || e == unix.ENFILE || e == unix.ENOMEM || e == unix.ENOBUFS
}

// resourceErrno is the documented answer when the supervisor itself lacks
// resources to serve c: connect(2) documents EAGAIN for "insufficient
// entries in the routing cache" (a lack of local resources), the send
// family ENOBUFS. Both are retryable, and both fail closed.
func (c *call) resourceErrno() unix.Errno {
	if c.name == "connect" {
		return unix.EAGAIN
	}
	return unix.ENOBUFS
}

// readProc reads a small /proc file into buf with plain system calls.
// os.ReadFile would register the descriptor with the Go netpoller (an
// epoll_ctl that fails for /proc files) and hand the goroutine around
// threads: on the hot path (a caller's status, once per call that needs its
// credentials) that cost more than the read itself.
func readProc(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer rawClose(fd)
	n := 0
	for n < len(buf) {
		k, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if k == 0 {
			return buf[:n], nil
		}
		n += k
	}
	return nil, unix.EFBIG // larger than any status file
}
