package sentry

import (
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// startTestCredThread starts a credential thread with this process's
// credentials changed by edit (root only), stopped at the test's end.
func startTestCredThread(t *testing.T, edit func(*status)) (*credThread, status) {
	t.Helper()
	self := rootStatus(t)
	st := self
	edit(&st)
	th, err := startCredThread(st, credKey(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { credStop(th) })
	return th, self
}

// rootStatus is this thread's credentials; the test is skipped unless root
// (a credential thread switches to other users).
func rootStatus(t *testing.T) status {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the thread switches to another user")
	}
	self, err := readStatus("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	return self
}

// threadCapEff is the thread's effective capability set (capget).
func threadCapEff(t *testing.T, th *credThread) uint64 {
	t.Helper()
	var pin runtime.Pinner
	defer pin.Unpin()
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := new([2]unix.CapUserData)
	pin.Pin(hdr)
	pin.Pin(data)
	if _, e := th.sys(unix.SYS_CAPGET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&data[0])), 0, 0, 0, 0); e != 0 {
		t.Fatal(e)
	}
	return uint64(data[1].Effective)<<32 | uint64(data[0].Effective)
}

// threadFsIDs is the thread's fsuid and fsgid (setfsuid(-1) changes
// nothing and returns the current one).
func threadFsIDs(th *credThread) (uintptr, uintptr) {
	fsu, _ := th.sys(unix.SYS_SETFSUID, ^uintptr(0), 0, 0, 0, 0, 0)
	fsg, _ := th.sys(unix.SYS_SETFSGID, ^uintptr(0), 0, 0, 0, 0, 0)
	return fsu, fsg
}

// A credential thread carries exactly the credentials it was given (uids,
// gids, groups, effective capabilities within the permitted set), and the
// supervisor's own threads keep theirs: the system calls posted to it see
// the caller's, the calling thread's do not change.
func TestCredThreadTakesExactlyTheCallersCredentials(t *testing.T) {
	const caps = 1 << unix.CAP_NET_BIND_SERVICE
	th, self := startTestCredThread(t, func(st *status) {
		st.Uid = [4]uint32{65534, 65534, 65534, 65534}
		st.Gid = [4]uint32{65534, 65534, 65534, 4242}
		st.Groups = []uint32{4242, 4343}
		st.CapEff = caps
	})

	id := func(nr uintptr) uintptr {
		r, e := th.sys(nr, 0, 0, 0, 0, 0, 0)
		if e != 0 {
			t.Fatalf("syscall %d: %v", nr, e)
		}
		return r
	}
	if u, g := id(unix.SYS_GETEUID), id(unix.SYS_GETEGID); u != 65534 || g != 65534 {
		t.Errorf("thread: euid %d egid %d, want 65534", u, g)
	}
	if fsu, fsg := threadFsIDs(th); fsu != 65534 || fsg != 4242 {
		t.Errorf("thread: fsuid %d fsgid %d, want 65534 4242", fsu, fsg)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	groups := new([8]uint32)
	pin.Pin(groups)
	n, e := th.sys(unix.SYS_GETGROUPS, uintptr(len(groups)), uintptr(unsafe.Pointer(&groups[0])), 0, 0, 0, 0)
	if e != 0 || n != 2 || groups[0] != 4242 || groups[1] != 4343 {
		t.Errorf("thread: groups %v (%d, %v), want [4242 4343]", groups[:n], n, e)
	}
	if eff := threadCapEff(t, th); eff != caps {
		t.Errorf("thread: effective capabilities %#x, want %#x", eff, caps)
	}
	// A path only root may search is refused to the thread and not to
	// this one.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p, _ := unix.BytePtrFromString(dir + "/x")
	pin.Pin(p)
	fdcwd := unix.AT_FDCWD
	if _, e := th.sys(unix.SYS_FACCESSAT2, uintptr(fdcwd), uintptr(unsafe.Pointer(p)), unix.F_OK, unix.AT_EACCESS, 0, 0); e != unix.EACCES {
		t.Errorf("thread: faccessat2 in a 0700 root directory: %v, want EACCES", e)
	}
	if _, _, e := unix.Syscall6(unix.SYS_FACCESSAT2, uintptr(fdcwd), uintptr(unsafe.Pointer(p)), unix.F_OK, unix.AT_EACCESS, 0, 0); e != unix.ENOENT {
		t.Errorf("supervisor thread: faccessat2: %v, want ENOENT (it keeps root)", e)
	}
	// Nothing leaked to the Go threads.
	if now, err := readStatus("/proc/thread-self/status"); err != nil || now.Uid != self.Uid || now.CapEff != self.CapEff {
		t.Errorf("this thread's credentials changed: %+v (%v)", now, err)
	}
}

// An fsuid apart from the real, effective and saved uids (a caller that
// called setfsuid) is taken too: after the uid change only CAP_SETUID
// allows it, which the thread raises for that call alone.
func TestCredThreadTakesASeparateFsuid(t *testing.T) {
	th, _ := startTestCredThread(t, func(st *status) {
		st.Uid = [4]uint32{1000, 1000, 1000, 2000}
		st.Gid = [4]uint32{1000, 1000, 1000, 3000}
		st.Groups, st.CapEff = nil, 0
	})
	if fsu, fsg := threadFsIDs(th); fsu != 2000 || fsg != 3000 {
		t.Errorf("thread: fsuid %d fsgid %d, want 2000 3000", fsu, fsg)
	}
	if eff := threadCapEff(t, th); eff != 0 {
		t.Errorf("thread: effective capabilities %#x, want none (CAP_SETUID was for the setfsuid alone)", eff)
	}
}

// A thread that cannot take the credentials is not handed out: the start
// fails, naming the step, and the caller fails closed.
func TestCredThreadStartFails(t *testing.T) {
	st := rootStatus(t)
	st.Groups = make([]uint32, 70000) // over NGROUPS_MAX (65536): EINVAL
	if th, err := startCredThread(st, credKey(st)); err == nil {
		credStop(th)
		t.Fatal("a thread started with 70,000 groups")
	} else if want := "setgroups: invalid argument"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
