package sentry

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// pidfdThread is PIDFD_THREAD (Linux 6.9): a pidfd for one thread, so that
// pidfd_getfd reads that thread's own fd table (a thread made without
// CLONE_FILES has its own).
const pidfdThread = unix.O_EXCL

// tracees caches one pidfd per tracee thread. Only the receive loop calls
// get; the lock exists because exited threads are evicted from elsewhere.
type tracees struct {
	mu     sync.Mutex
	pidfds map[uint32]int
	// threadPidfds is false on kernels before 6.9: then pidfds are per
	// process and a thread that does not share its fd table is refused.
	threadPidfds bool
	// vmRead is false once process_vm_readv was refused (for example by
	// Docker's default seccomp profile without CAP_SYS_PTRACE): memory is
	// then read through /proc/PID/mem, with the page permissions checked by
	// hand because /proc/PID/mem reads PROT_NONE pages.
	vmRead bool
}

func newTracees() *tracees {
	return &tracees{pidfds: make(map[uint32]int), threadPidfds: true, vmRead: true}
}

// pidfd returns a cached pidfd for thread tid. The caller must check the
// notification is still valid after using it: tid may have been reused.
func (t *tracees) pidfd(tid uint32) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd, ok := t.pidfds[tid]; ok {
		return fd, nil
	}
	flags := 0
	if t.threadPidfds {
		flags = pidfdThread
	}
	fd, err := unix.PidfdOpen(int(tid), flags)
	if err == unix.EINVAL && t.threadPidfds {
		t.threadPidfds = false
		fd, err = unix.PidfdOpen(int(tid), 0)
	}
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	t.pidfds[tid] = fd
	return fd, nil
}

// forget drops the cached pidfd of tid (it exited, or its pidfd went stale).
func (t *tracees) forget(tid uint32) {
	t.mu.Lock()
	if fd, ok := t.pidfds[tid]; ok {
		unix.Close(fd)
		delete(t.pidfds, tid)
	}
	t.mu.Unlock()
}

// getfd duplicates the tracee thread's fd into the supervisor: the same open
// file description, so socket state, options and flags are shared.
func (t *tracees) getfd(tid uint32, fd int32) (int, error) {
	for attempt := 0; ; attempt++ {
		pidfd, err := t.pidfd(tid)
		if err != nil {
			return -1, err
		}
		if fd < 0 {
			return -1, unix.EBADF
		}
		r, _, e := unix.Syscall(unix.SYS_PIDFD_GETFD, uintptr(pidfd), uintptr(fd), 0)
		if e == 0 {
			unix.CloseOnExec(int(r))
			return int(r), nil
		}
		if e == unix.ESRCH && attempt == 0 {
			// A cached pidfd of an exited thread whose tid came back.
			t.forget(tid)
			continue
		}
		return -1, e
	}
}

// read copies len(buf) bytes at addr out of thread tid. Any byte that the
// thread itself could not read makes it fail with EFAULT, as in the kernel's
// copy_from_user.
func (t *tracees) read(tid uint32, addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if t.vmRead {
		local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
		remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
		n, err := unix.ProcessVMReadv(int(tid), local, remote, 0)
		switch {
		case err == nil && n == len(buf):
			return nil
		case err == nil, err == unix.EFAULT:
			return unix.EFAULT
		case err == unix.EPERM || err == unix.ENOSYS:
			t.vmRead = false
		default:
			return err
		}
	}
	if !readable(tid, addr, uint64(len(buf))) {
		return unix.EFAULT
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", tid))
	if err != nil {
		return err
	}
	defer f.Close()
	if n, err := f.ReadAt(buf, int64(addr)); err != nil || n != len(buf) {
		return unix.EFAULT
	}
	return nil
}

// readable checks /proc/TID/maps: every byte of [addr, addr+n) must lie in a
// readable mapping.
func readable(tid uint32, addr, n uint64) bool {
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
			if perms[0] != 'r' {
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
	Uid    [4]uint32
	Gid    [4]uint32
	Groups []uint32
	CapEff uint64
}

func readStatus(path string) (status, error) {
	var st status
	data, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := bytes.Fields(v)
		switch string(k) {
		case "Tgid":
			st.Tgid, _ = strconv.Atoi(string(f[0]))
		case "NStgid":
			st.NSTgid, _ = strconv.Atoi(string(f[len(f)-1]))
		case "Uid", "Gid":
			dst := &st.Uid
			if k[0] == 'G' {
				dst = &st.Gid
			}
			for i := 0; i < 4 && i < len(f); i++ {
				n, _ := strconv.ParseUint(string(f[i]), 10, 32)
				dst[i] = uint32(n)
			}
		case "Groups":
			for _, g := range f {
				n, _ := strconv.ParseUint(string(g), 10, 32)
				st.Groups = append(st.Groups, uint32(n))
			}
		case "CapEff":
			st.CapEff, _ = strconv.ParseUint(string(f[0]), 16, 64)
		}
	}
	return st, nil
}

// sameCreds reports whether two tasks would pass the same permission checks.
func sameCreds(a, b status) bool {
	if a.Uid != b.Uid || a.Gid != b.Gid || a.CapEff != b.CapEff || len(a.Groups) != len(b.Groups) {
		return false
	}
	for i := range a.Groups {
		if a.Groups[i] != b.Groups[i] {
			return false
		}
	}
	return true
}

