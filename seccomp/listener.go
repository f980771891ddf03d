package seccomp

import (
	"errors"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Data mirrors struct seccomp_data.
type Data struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// Notif mirrors struct seccomp_notif.
type Notif struct {
	ID    uint64
	Pid   uint32 // the calling thread's id, in the listener's pid namespace
	Flags uint32
	Data  Data
}

// resp mirrors struct seccomp_notif_resp.
type resp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// Kernel ABI sizes (seccomp(2) SECCOMP_GET_NOTIF_SIZES on x86_64).
const (
	notifSize = 80
	respSize  = 24
)

// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6): the woken supervisor runs
// on the waker's CPU, which roughly halves the round trip.
const userNotifFdSyncWakeUp = 1

// ErrGone means the notification no longer exists: the calling thread was
// interrupted by a signal or killed. It is normal, not a failure.
var ErrGone = errors.New("notification gone")

// Listener is the user-notification fd. Its methods are safe for concurrent
// use: each is a single ioctl.
type Listener struct {
	fd int
	// Killable: the filter was loaded with WAIT_KILLABLE_RECV. A received
	// call then waits for its answer whatever non-fatal signal comes, and
	// the supervisor decides how a signal ends a waiting call.
	Killable bool
}

// NewListener wraps a listener fd received from the init stage.
func NewListener(fd int) *Listener { return &Listener{fd: fd} }

// Close closes the listener. Every call still trapped afterwards fails with
// ENOSYS in the tracee: that is the fail-closed end state.
func (l *Listener) Close() error { return unix.Close(l.fd) }

// SetSyncWakeup asks for synchronous wake-ups (Linux 6.6+).
func (l *Listener) SetSyncWakeup() error {
	return ioctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, userNotifFdSyncWakeUp)
}

// Receive blocks until a notification arrives. It retries EINTR, which the
// Go runtime's own preemption signals cause.
func (l *Listener) Receive(n *Notif) error {
	for {
		*n = Notif{} // the kernel rejects a buffer that is not zeroed
		err := ioctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(n)))
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.ENOENT:
			// A caller was interrupted between wake-up and receive, or no
			// task uses the filter any more: then the listener hangs up.
			if l.hungUp() {
				return ErrNoTracees
			}
			continue
		}
		return err
	}
}

// Pending reports, without blocking, whether a notification waits to be
// received (seccomp_notify_poll: EPOLLIN while one is in
// SECCOMP_NOTIFY_INIT).
func (l *Listener) Pending() bool {
	fds := [1]unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}}
	n, _, e := unix.RawSyscall(unix.SYS_POLL, uintptr(unsafe.Pointer(&fds[0])), 1, 0) // a zero timeout: never blocks
	return e == 0 && n == 1 && fds[0].Revents&unix.POLLIN != 0
}

// ErrNoTracees means no task uses the filter any more.
var ErrNoTracees = errors.New("no task uses the filter any more")

func (l *Listener) hungUp() bool {
	fds := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 1 && fds[0].Revents&unix.POLLHUP != 0
}

// Valid reports whether notification id is still pending. Call it after
// reading tracee memory: a false answer means the pid may have been reused.
func (l *Listener) Valid(id uint64) bool {
	for {
		err := rawIoctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, uintptr(unsafe.Pointer(&id)))
		if err != unix.EINTR {
			return err == nil
		}
	}
}

// Respond answers notification id: val on success (errno == 0), or -1 with
// errno. It cannot answer CONTINUE: the supervisor performs every allowed
// call itself (the exceptions, landlock_restrict_self and the observed
// calls, have their own methods, ContinueSelfRestriction and
// ContinueObserved).
func (l *Listener) Respond(id uint64, val int64, errno unix.Errno) error {
	r := resp{ID: id, Val: val, Error: -int32(errno)}
	if errno != 0 {
		r.Val = 0
	}
	return l.send(&r)
}

func ioctl(fd int, req uint, arg uintptr) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg)
	if e != 0 {
		return e
	}
	return nil
}

// rawIoctl skips the Go scheduler's syscall bookkeeping. Only for ioctls
// that return at once (ID_VALID, SEND): RECV blocks and must use ioctl.
func rawIoctl(fd int, req uint, arg uintptr) error {
	_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg)
	if e != 0 {
		return e
	}
	return nil
}

func init() {
	// Keep the Go mirrors honest against the kernel ABI.
	if unsafe.Sizeof(Notif{}) != notifSize || unsafe.Sizeof(resp{}) != respSize {
		panic("seccomp: notification struct layout does not match the kernel ABI")
	}
}

// addfd mirrors struct seccomp_notif_addfd.
type addfd struct {
	ID         uint64
	Flags      uint32
	SrcFD      uint32
	NewFD      uint32
	NewFDFlags uint32
}

// SECCOMP_IOCTL_NOTIF_ADDFD: _IOW('!', 3, struct seccomp_notif_addfd).
const ioctlNotifAddfd = 0x40182103

// AddFDAndRespond installs the supervisor's descriptor srcfd into the
// caller's descriptor table and answers notification id with the new
// number, in one step (SECCOMP_ADDFD_FLAG_SEND, Linux 5.14): the caller
// never holds a descriptor it was not told about. It is the answer for a
// call whose result is a new descriptor the supervisor made.
func (l *Listener) AddFDAndRespond(id uint64, srcfd int, cloexec bool) (int, error) {
	a := addfd{ID: id, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, SrcFD: uint32(srcfd)}
	if cloexec {
		a.NewFDFlags = unix.O_CLOEXEC
	}
	// The ioctl marks the notification answered, then waits interruptibly
	// for the caller to take the descriptor. A signal (the Go runtime's
	// preemption SIGURG) ends that wait, the kernel restarts the ioctl, and
	// the restart finds the notification already answered: EINPROGRESS,
	// with the caller left waiting for an answer nobody can give. So the
	// thread blocks every signal for the duration of the ioctl. That wait
	// lasts until the caller runs, which a program can delay (its own
	// cgroup's cpu.max, SCHED_IDLE beside its own busy threads): the ioctl
	// is not a raw system call, so it holds no Go processor meanwhile.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	all, old := ^uint64(0), uint64(0)
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&all)), uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(l.fd), ioctlNotifAddfd, uintptr(unsafe.Pointer(&a)))
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	switch e {
	case 0:
		return int(r), nil
	case unix.ENOENT:
		return -1, ErrGone
	}
	return -1, e
}

// ContinueSelfRestriction lets the kernel run the caller's own call
// (SECCOMP_USER_NOTIF_FLAG_CONTINUE). It exists for one call only,
// landlock_restrict_self, which no supervisor can perform for another task
// and which can only take rights away from its caller: the supervisor's
// decision to let it through reads no tracee memory, and whatever a racing
// thread changes (the descriptor behind the number) changes only the
// caller's own restriction, never the sandbox's policy. Nothing else may
// use it.
func (l *Listener) ContinueSelfRestriction(id uint64) error {
	r := resp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	return l.send(&r)
}

// ContinueObserved lets the kernel run a call the supervisor only takes
// note of before it runs (a change of the caller's own credentials, root
// or program): the decision to let it through depends on the syscall
// number and the filter's argument checks alone, never on tracee memory,
// and the call acts only on its caller.
func (l *Listener) ContinueObserved(id uint64) error {
	r := resp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	return l.send(&r)
}

// send answers one notification with NOTIF_SEND; ErrGone when it vanished.
func (l *Listener) send(r *resp) error {
	for {
		err := rawIoctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(r)))
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.ENOENT:
			return ErrGone
		}
		return err
	}
}
