package sentry

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"sandbox/seccomp"
)

// Layers beyond the seccomp filter. seccomp sees only the calls of the
// program's own tree; these close what it cannot see: other same-uid
// processes (Landlock), inherited sockets (descriptors), a root program's
// power over the network (capabilities) and capabilities regained inside a
// new user namespace (filter rows, see table.go). The init stage applies
// them all in applyLayers, before the filter is installed, each failing
// closed.

// LayerOptions are the run's choices for the layers.
type LayerOptions struct {
	Landlock    bool // scope ptrace and signals to the sandbox (--landlock)
	AllowUserns bool // let the program create user namespaces (--allow-userns)
	KeepCaps    bool // keep every capability the program would have (--keep-caps)
	PreserveFDs int  // fds 3..3+N-1 pass through (--preserve-fds)
}

// initOptions is what the supervisor tells the init stage, as one argument.
type initOptions struct {
	LayerOptions
	RawSockets bool
	Conn       int // the init stage's end of the setup pair
}

func (o initOptions) encode() string {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return strings.Join([]string{b(o.RawSockets), b(o.Landlock), b(o.AllowUserns), b(o.KeepCaps),
		strconv.Itoa(o.PreserveFDs), strconv.Itoa(o.Conn)}, ",")
}

func decodeInitOptions(s string) (initOptions, error) {
	f := strings.Split(s, ",")
	if len(f) != 6 {
		return initOptions{}, errors.New("bad options")
	}
	var o initOptions
	o.RawSockets, o.Landlock, o.AllowUserns, o.KeepCaps = f[0] == "1", f[1] == "1", f[2] == "1", f[3] == "1"
	var err1, err2 error
	o.PreserveFDs, err1 = strconv.Atoi(f[4])
	o.Conn, err2 = strconv.Atoi(f[5])
	if err1 != nil || err2 != nil || o.PreserveFDs < 0 || o.Conn != 3+o.PreserveFDs {
		return initOptions{}, errors.New("bad options")
	}
	return o, nil
}

// layerResult is what applyLayers reports: one log line per layer, and
// whether the program can still open raw sockets (then the filter must
// refuse them, see FilterOptions).
type layerResult struct {
	report   []string
	holdsRaw bool
}

// applyLayers runs in the init stage, on the thread that will exec PROGRAM,
// before the filter: Landlock's own syscalls may be trapped by a later
// filter, and nothing may be trapped before the listener is handed over.
func applyLayers(o initOptions, failAt string) (layerResult, error) {
	var res layerResult
	// landlock_restrict_self needs no_new_privs (or CAP_SYS_ADMIN, which we
	// are about to drop). seccomp.Install sets it again, harmlessly.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return res, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	line, err := closeInherited(o, failAt)
	if err != nil {
		return res, err
	}
	res.report = append(res.report, line)

	line, res.holdsRaw, err = dropCapabilities(o, failAt)
	if err != nil {
		return res, err
	}
	res.report = append(res.report, line)

	if failAt == "userns" {
		return res, fmt.Errorf("user namespaces: %w (or --allow-userns)", seccomp.ErrInjected)
	}
	if o.AllowUserns {
		res.report = append(res.report, "layer=userns allowed=true")
	} else {
		res.report = append(res.report, "layer=userns unshare=EPERM clone=EPERM setns=EPERM clone3=ENOSYS")
	}

	line, err = restrictLandlock(o, failAt)
	if err != nil {
		return res, err
	}
	res.report = append(res.report, line)
	return res, nil
}

// closeInherited marks every descriptor from 3+N up close-on-exec, as
// podman's and runc's --preserve-fds do: a socket connected before the
// sandbox started must not reach PROGRAM. Marking rather than closing keeps
// the setup pair (at 3+N) working until exec, and the listener (already
// close-on-exec) until it is taken.
func closeInherited(o initOptions, failAt string) (string, error) {
	if failAt == "fds" {
		return "", fmt.Errorf("close inherited descriptors: %w (or --preserve-fds)", seccomp.ErrInjected)
	}
	first := 3 + o.PreserveFDs
	// Count what exec would have let through: open and not close-on-exec.
	closed := 0
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			fd, err := strconv.Atoi(e.Name())
			if err != nil || fd < first || fd == o.Conn {
				continue
			}
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
				closed++
			}
		}
	}
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return "", fmt.Errorf("close inherited descriptors: close_range: %w (Linux 5.11+; or --preserve-fds)", err)
	}
	return fmt.Sprintf("layer=fds closed=%d preserved=%d", closed, o.PreserveFDs), nil
}

// keptCaps is Docker's default capability set without CAP_NET_RAW
// (moby oci/caps/defaults.go): nothing in it reaches the wire or the
// network configuration.
var keptCaps = []int{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER, unix.CAP_MKNOD,
	unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETFCAP, unix.CAP_SETPCAP, unix.CAP_NET_BIND_SERVICE,
	unix.CAP_SYS_CHROOT, unix.CAP_KILL, unix.CAP_AUDIT_WRITE,
}

var capNames = map[int]string{
	0: "CHOWN", 1: "DAC_OVERRIDE", 2: "DAC_READ_SEARCH", 3: "FOWNER", 4: "FSETID", 5: "KILL",
	6: "SETGID", 7: "SETUID", 8: "SETPCAP", 9: "LINUX_IMMUTABLE", 10: "NET_BIND_SERVICE",
	11: "NET_BROADCAST", 12: "NET_ADMIN", 13: "NET_RAW", 14: "IPC_LOCK", 15: "IPC_OWNER",
	16: "SYS_MODULE", 17: "SYS_RAWIO", 18: "SYS_CHROOT", 19: "SYS_PTRACE", 20: "SYS_PACCT",
	21: "SYS_ADMIN", 22: "SYS_BOOT", 23: "SYS_NICE", 24: "SYS_RESOURCE", 25: "SYS_TIME",
	26: "SYS_TTY_CONFIG", 27: "MKNOD", 28: "LEASE", 29: "AUDIT_WRITE", 30: "AUDIT_CONTROL",
	31: "SETFCAP", 32: "MAC_OVERRIDE", 33: "MAC_ADMIN", 34: "SYSLOG", 35: "WAKE_ALARM",
	36: "BLOCK_SUSPEND", 37: "AUDIT_READ", 38: "PERFMON", 39: "BPF", 40: "CHECKPOINT_RESTORE",
}

func capName(c int) string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return strconv.Itoa(c)
}

// capSets are the thread's capability sets as 64-bit masks.
type capSets struct{ eff, prm, inh uint64 }

func capget() (capSets, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var d [2]unix.CapUserData
	if err := unix.Capget(&hdr, &d[0]); err != nil {
		return capSets{}, err
	}
	j := func(lo, hi uint32) uint64 { return uint64(hi)<<32 | uint64(lo) }
	return capSets{j(d[0].Effective, d[1].Effective), j(d[0].Permitted, d[1].Permitted), j(d[0].Inheritable, d[1].Inheritable)}, nil
}

func capset(s capSets) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	d := [2]unix.CapUserData{
		{Effective: uint32(s.eff), Permitted: uint32(s.prm), Inheritable: uint32(s.inh)},
		{Effective: uint32(s.eff >> 32), Permitted: uint32(s.prm >> 32), Inheritable: uint32(s.inh >> 32)},
	}
	return unix.Capset(&hdr, &d[0])
}

// lastCap is /proc/sys/kernel/cap_last_cap, or 40 (CAP_CHECKPOINT_RESTORE).
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 && n < 64 {
			return n
		}
	}
	return 40
}

// dropCapabilities keeps only keptCaps (plus CAP_NET_RAW with
// --raw-sockets) in every set: bounding (PR_CAPBSET_DROP, which needs
// CAP_SETPCAP; without it there is nothing we could drop and no_new_privs
// keeps execve from adding to the permitted set anyway, see
// cap_bprm_creds_from_file), ambient, inheritable, permitted and effective.
// It reports whether CAP_NET_RAW survives: then the kernel would allow raw
// sockets and the filter must refuse them.
func dropCapabilities(o initOptions, failAt string) (string, bool, error) {
	if failAt == "capabilities" {
		return "", false, fmt.Errorf("drop capabilities: %w (or --keep-caps)", seccomp.ErrInjected)
	}
	cur, err := capget()
	if err != nil {
		return "", false, fmt.Errorf("drop capabilities: capget: %w (or --keep-caps)", err)
	}
	holdsRaw := func(s capSets) bool { return s.prm&(1<<unix.CAP_NET_RAW) != 0 }
	if o.KeepCaps {
		return "layer=capabilities kept=all", holdsRaw(cur), nil
	}
	var keep uint64
	for _, c := range keptCaps {
		keep |= 1 << c
	}
	if o.RawSockets {
		keep |= 1 << unix.CAP_NET_RAW
	}
	var dropped []string
	bounding := "dropped"
	canBound := cur.eff&(1<<unix.CAP_SETPCAP) != 0
	for c := 0; c <= lastCap(); c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		held := (cur.eff|cur.prm|cur.inh)&(1<<c) != 0
		if r, _ := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0); r == 1 {
			held = true
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_LOWER, uintptr(c), 0, 0); err != nil {
				return "", false, fmt.Errorf("drop capabilities: lower ambient %s: %w (or --keep-caps)", capName(c), err)
			}
		}
		if r, _ := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); r == 1 {
			if canBound {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
					return "", false, fmt.Errorf("drop capabilities: PR_CAPBSET_DROP %s: %w (or --keep-caps)", capName(c), err)
				}
				held = true
			} else {
				bounding = "unchanged-without-CAP_SETPCAP"
			}
		}
		if held {
			dropped = append(dropped, capName(c))
		}
	}
	next := capSets{cur.eff & keep, cur.prm & keep, cur.inh & keep}
	if next != cur {
		if err := capset(next); err != nil {
			return "", false, fmt.Errorf("drop capabilities: capset: %w (or --keep-caps)", err)
		}
	}
	// Verify: a layer that silently did nothing is no layer.
	after, err := capget()
	if err != nil || after.prm&^keep != 0 || after.eff&^keep != 0 {
		return "", false, fmt.Errorf("drop capabilities: still held after capset (or --keep-caps)")
	}
	if len(dropped) == 0 {
		dropped = []string{"none"}
	}
	return fmt.Sprintf("layer=capabilities dropped=%s bounding=%s", strings.Join(dropped, ","), bounding), holdsRaw(after), nil
}

// landlockAttr is struct landlock_ruleset_attr up to ABI 6 (scoped).
type landlockAttr struct{ handledFS, handledNet, scoped uint64 }

// landlockSignalABI is the first ABI with LANDLOCK_SCOPE_SIGNAL.
const landlockSignalABI = 6

// restrictLandlock puts the init stage (and so PROGRAM and all it starts)
// in a Landlock domain that handles no file system or network access and
// scopes signals. Any domain restricts ptrace_may_access to the same or
// nested domains (hook_ptrace_access_check): ptrace, process_vm_readv/
// writev, /proc/PID/mem and pidfd_getfd on processes outside fail;
// LANDLOCK_SCOPE_SIGNAL (hook_task_kill) refuses kill(2) and friends to
// them. Kernel-sent signals (SIGCHLD, the tty's) are not checked.
func restrictLandlock(o initOptions, failAt string) (string, error) {
	if !o.Landlock {
		return "layer=landlock disabled=true", nil
	}
	const fix = " (needs Linux 6.12+ with Landlock enabled (lsm=landlock,...) and a seccomp profile allowing landlock_*; or --landlock=false)"
	if failAt == "landlock" {
		return "", fmt.Errorf("landlock: %w"+fix, seccomp.ErrInjected)
	}
	abi, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return "", fmt.Errorf("landlock: landlock_create_ruleset(VERSION): %w"+fix, e)
	}
	if abi < landlockSignalABI {
		return "", fmt.Errorf("landlock: ABI %d has no signal scoping (6 needed)"+fix, abi)
	}
	// Only scoped: a ruleset handling no access right is valid as long as
	// one of the three is non-zero (landlock_create_ruleset: ENOMSG).
	attr := landlockAttr{scoped: unix.LANDLOCK_SCOPE_SIGNAL}
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if e != 0 {
		return "", fmt.Errorf("landlock: landlock_create_ruleset: %w"+fix, e)
	}
	defer unix.Close(int(fd))
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); e != 0 {
		return "", fmt.Errorf("landlock: landlock_restrict_self: %w"+fix, e)
	}
	return fmt.Sprintf("layer=landlock abi=%d scoped=signal ptrace=domain", abi), nil
}

// logLayers writes the init stage's report, one line per layer, at debug
// level: setup, not a decision (-vv, or --log-level debug, shows them).
func logLayers(log *logrus.Logger, report []string) {
	for _, line := range report {
		f := logrus.Fields{}
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		log.WithFields(f).Debug("layer applied")
	}
}
