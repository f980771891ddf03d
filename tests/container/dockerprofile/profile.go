package main

// This file is Docker's default seccomp profile, as data.
//
// Source: moby's profiles/seccomp/default.json (the profile dockerd applies
// when no --security-opt seccomp=... is given), as of its 2023 change that
// removed io_uring_setup, io_uring_enter and io_uring_register from the
// allowlist (moby/moby#46762). The rules below are that profile resolved the
// way dockerd resolves it for one container:
//
//   - on an x86-64 host: architectures x86-64 plus its sub-architectures x86
//     (i386) and x32, as default.json's archMap says; rules limited to other
//     architectures (arm, ppc64le, s390, riscv64) are left out, and
//     arch_prctl and modify_ldt, limited to amd64, are kept;
//   - for a kernel >= 4.8 (the "minKernel" of process_vm_readv,
//     process_vm_writev and ptrace; the sandbox needs 5.17 anyway);
//   - for a container with NO capabilities: every rule that default.json
//     includes only with a capability is left out (they are listed in
//     capabilityRules, for reference and for the tests), and the rules it
//     excludes when CAP_SYS_ADMIN is present (the clone flag check, clone3's
//     ENOSYS) are kept.
//
// Docker starts containers with a default capability set (CHOWN, SETUID,
// NET_BIND_SERVICE, ...; see dockerCaps in main.go). Of those, only
// CAP_SYS_CHROOT adds a syscall to the profile (chroot): apart from chroot(2),
// the filter here is the one dockerd installs in a default container.
//
// Syscall names unknown to the libseccomp in use are skipped when the filter
// is built, as runc does.

import "golang.org/x/sys/unix"

// Actions and comparison operators, spelled as in Docker's JSON.
const (
	actAllow = "SCMP_ACT_ALLOW"
	actErrno = "SCMP_ACT_ERRNO"

	opEQ       = "SCMP_CMP_EQ"
	opNE       = "SCMP_CMP_NE"
	opMaskedEQ = "SCMP_CMP_MASKED_EQ" // (arg & Value) == ValueTwo
)

// Rule is one entry of the profile's "syscalls" list.
type Rule struct {
	Names    []string
	Action   string // actAllow or actErrno
	ErrnoRet uint   // with actErrno
	Args     []Arg  // all must hold; several rules for one name are OR'd
	Comment  string
}

// Arg is a condition on one syscall argument.
type Arg struct {
	Index    uint
	Value    uint64
	ValueTwo uint64
	Op       string
}

// defaultErrno is what every syscall not allowed below returns.
const defaultErrno = unix.EPERM

// architectures are the ABIs the filter covers (archMap for x86-64).
var architectures = []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}

// nsFlags are the clone flags that create namespaces: CLONE_NEWNS,
// CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID
// and CLONE_NEWNET (0x7E020000, default.json's 2114060288).
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// afVsock is AF_VSOCK: socket(2) is allowed for every other family.
const afVsock = 40

// defaultRules is the profile, in default.json's order.
var defaultRules = []Rule{
	{Action: actAllow, Names: []string{
		"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk",
		"capget", "capset", "chdir", "chmod", "chown", "chown32",
		"clock_adjtime", "clock_adjtime64", "clock_getres",
		"clock_getres_time64", "clock_gettime", "clock_gettime64",
		"clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
		"connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
		"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
		"epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
		"eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
		"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
		"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32",
		"fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr",
		"flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
		"fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
		"ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat",
		"getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
		"geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
		"getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp",
		"getpid", "getppid", "getpriority", "getrandom", "getresgid",
		"getresgid32", "getresuid", "getresuid32", "getrlimit",
		"get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
		"get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
		"getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
		"inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
		"io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
		"ioprio_set", "io_setup", "io_submit",
		// io_uring_enter, io_uring_register and io_uring_setup were here
		// until moby/moby#46762 (2023): they now get EPERM.
		"ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
		"landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
		"linkat", "listen", "listxattr", "llistxattr", "_llseek",
		"lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
		"membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
		"mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
		"mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
		"mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
		"mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget",
		"msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
		"name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
		"openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal",
		"pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
		"ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
		"prlimit64", "process_mrelease", "pselect6", "pselect6_time64",
		"pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
		"readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
		"recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
		"rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
		"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
		"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
		"rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
		"sched_getattr", "sched_getparam", "sched_get_priority_max",
		"sched_get_priority_min", "sched_getscheduler",
		"sched_rr_get_interval", "sched_rr_get_interval_time64",
		"sched_setaffinity", "sched_setattr", "sched_setparam",
		"sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
		"semget", "semop", "semtimedop", "semtimedop_time64", "send",
		"sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
		"setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
		"setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
		"setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
		"setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
		"set_robust_list", "setsid", "setsockopt", "set_thread_area",
		"set_tid_address", "setuid", "setuid32", "setxattr", "shmat",
		"shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
		"signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
		"splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink",
		"symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
		"tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
		"timer_gettime", "timer_gettime64", "timer_settime",
		"timer_settime64", "timerfd_create", "timerfd_gettime",
		"timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
		"tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
		"unlink", "unlinkat", "utime", "utimensat", "utimensat_time64",
		"utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
		"writev",
	}},
	// "includes": {"minKernel": "4.8"}: the kernel checks ptrace access
	// itself since 4.8.
	{Action: actAllow, Names: []string{"process_vm_readv", "process_vm_writev", "ptrace"}},
	// socket(2) for every address family but AF_VSOCK.
	{Action: actAllow, Names: []string{"socket"}, Args: []Arg{{Index: 0, Value: afVsock, Op: opNE}}},
	// personality(2) only for PER_LINUX, PER_LINUX32, UNAME26,
	// UNAME26|PER_LINUX32, and 0xffffffff (query).
	{Action: actAllow, Names: []string{"personality"}, Args: []Arg{{Index: 0, Value: 0x0, Op: opEQ}}},
	{Action: actAllow, Names: []string{"personality"}, Args: []Arg{{Index: 0, Value: 0x8, Op: opEQ}}},
	{Action: actAllow, Names: []string{"personality"}, Args: []Arg{{Index: 0, Value: 0x20000, Op: opEQ}}},
	{Action: actAllow, Names: []string{"personality"}, Args: []Arg{{Index: 0, Value: 0x20008, Op: opEQ}}},
	{Action: actAllow, Names: []string{"personality"}, Args: []Arg{{Index: 0, Value: 0xffffffff, Op: opEQ}}},
	// "includes": {"arches": ["amd64", "x32"]}.
	{Action: actAllow, Names: []string{"arch_prctl"}},
	// "includes": {"arches": ["amd64", "x32", "x86"]}.
	{Action: actAllow, Names: []string{"modify_ldt"}},
	// "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}:
	// clone(2) without namespace flags.
	{Action: actAllow, Names: []string{"clone"}, Args: []Arg{{Index: 0, Value: nsFlags, ValueTwo: 0, Op: opMaskedEQ}}},
	// "excludes": {"caps": ["CAP_SYS_ADMIN"]}: clone3's flags are in memory,
	// out of a filter's reach, so it is refused with ENOSYS and libcs fall
	// back to clone(2).
	{Action: actErrno, ErrnoRet: uint(unix.ENOSYS), Names: []string{"clone3"}},
}

// capabilityRules are default.json's rules that apply only when the
// container has the capability: none of them is in the filter. Under the
// stock profile these syscalls get EPERM.
var capabilityRules = map[string][]string{
	"CAP_DAC_READ_SEARCH": {"open_by_handle_at"},
	"CAP_SYS_ADMIN": {"bpf", "clone", "clone3", "fanotify_init", "fsconfig",
		"fsmount", "fsopen", "fspick", "lookup_dcookie", "mount",
		"mount_setattr", "move_mount", "open_tree", "perf_event_open",
		"quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
		"syslog", "umount", "umount2", "unshare"},
	"CAP_SYS_BOOT":       {"reboot"},
	"CAP_SYS_CHROOT":     {"chroot"},
	"CAP_SYS_MODULE":     {"delete_module", "init_module", "finit_module"},
	"CAP_SYS_PACCT":      {"acct"},
	"CAP_SYS_PTRACE":     {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
	"CAP_SYS_RAWIO":      {"iopl", "ioperm"},
	"CAP_SYS_TIME":       {"settimeofday", "stime", "clock_settime", "clock_settime64"},
	"CAP_SYS_TTY_CONFIG": {"vhangup"},
	"CAP_SYS_NICE":       {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"},
	"CAP_SYSLOG":         {"syslog"},
	"CAP_BPF":            {"bpf"},
	"CAP_PERFMON":        {"perf_event_open"},
}

// addedComment marks the rule --add appends, in the JSON.
const addedComment = "not in Docker's default profile: added for the sandbox, see the README section Use as a container entrypoint"

// SandboxAdd are the syscalls the sandbox needs beyond Docker's default
// profile, all of which default.json allows only with CAP_SYS_PTRACE:
//
//   - pidfd_getfd: the supervisor takes the program's socket with it and
//     performs every allowed connect itself; without it every connect that
//     the policy allows fails with EPERM (fail closed);
//   - kcmp: on kernels before 6.9 (no PIDFD_THREAD), the supervisor proves
//     with kcmp(KCMP_FILES) that a thread other than a process's main thread
//     shares its descriptor table; without it, connects from such threads
//     fail with EPERM on those kernels.
//
// examples/docker/seccomp-sandbox.json is the profile with these added.
var SandboxAdd = []string{"pidfd_getfd", "kcmp"}

// Rules returns the profile with the syscalls in add allowed as well.
func Rules(add []string) []Rule {
	rules := append([]Rule(nil), defaultRules...)
	if len(add) > 0 {
		rules = append(rules, Rule{Action: actAllow, Names: add, Comment: addedComment})
	}
	return rules
}
