// The init stage (launch.go), in C. The supervisor starts it with
// clone(CLONE_VM | CLONE_FILES | CLONE_VFORK) on a stack of its own, as
// posix_spawn starts its child: no second executable is loaded and no second
// Go runtime starts, and the supervisor's calling thread waits until the
// stage has exec'ed PROGRAM or exited. The stage shares the supervisor's
// memory (it writes only struct sb_launch and its own stack) and descriptor
// table (the listener it creates is the supervisor's at once; exec gives
// PROGRAM a private copy without the close-on-exec ones). Everything else
// it changes is its own task's: no_new_privs, capabilities, the Landlock
// domain, the seccomp filter, the signal dispositions, the process group.
//
// The filters' BPF was compiled by the supervisor from the one syscall table
// (table.go); this file only loads it. Every message and report line is the
// one the Go stage produced, errno texts included (sandbox_errstr).
//
// Rules of the child, which runs on the supervisor's memory and with the
// calling thread's TLS while that thread is suspended: no malloc, no stdio
// streams, no locks (strerror's gettext takes one: strerrordesc_np), no
// exit() (atexit handlers): only system calls, string formatting into its
// own buffers, and _exit.

#define _GNU_SOURCE
#include <ctype.h>
#include <sched.h>
#include <linux/futex.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>

#include "initstage.h"

// Kernel constants, spelled out: the build host's headers may predate them.
#define SB_SECCOMP_SET_MODE_FILTER 1
#define SB_SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#define SB_SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#define SB_CLOSE_RANGE_CLOEXEC (1U << 2)
#define SB_LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#define SB_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#define SB_LANDLOCK_SIGNAL_ABI 6 // the first ABI with LANDLOCK_SCOPE_SIGNAL
#define SB_NR_close_range 436
#define SB_NR_landlock_create_ruleset 444
#define SB_NR_landlock_restrict_self 446
#define SB_PR_CAP_AMBIENT 47
#define SB_PR_CAP_AMBIENT_IS_SET 1
#define SB_PR_CAP_AMBIENT_LOWER 3
#define SB_CAP_NET_RAW 13
#define SB_CAP_SETPCAP 8
#define SB_CAPABILITY_VERSION_3 0x20080522

#define SB_INJECTED "failure injected for testing"

static struct sb_launch *sb_l; // the launch being run, in the supervisor's memory

// sandbox_errstr is Go's text for an errno (syscall.Errno.Error): the
// table in x/sys/unix is glibc's strerror with the first letter lowered
// (mkerrors.sh), and "errno N" for a number it does not know.
const char *sandbox_errstr(int e) {
	static char buf[128];
	// strerrordesc_np: the English text, without gettext's locks
	// (strerror's), safe in the child. Go's table ends at ERFKILL.
	const char *s = e > 0 && e <= 132 ? strerrordesc_np(e) : NULL;
	if (!s) {
		snprintf(buf, sizeof buf, "errno %d", e);
		return buf;
	}
	snprintf(buf, sizeof buf, "%s", s);
	if (buf[0] && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

// sb_fail records the message and ends the stage: PROGRAM never runs.
__attribute__((noreturn, format(printf, 1, 2))) static void sb_fail(const char *format, ...) {
	va_list ap;
	va_start(ap, format);
	vsnprintf(sb_l->msg, sizeof sb_l->msg, format, ap);
	va_end(ap);
	sb_l->state = 'E';
	_exit(125);
}

__attribute__((format(printf, 1, 2))) static void sb_report_line(const char *format, ...) {
	char *r = sb_l->report;
	size_t size = sizeof sb_l->report, len = sb_l->report_len;
	if (len > 0 && len < size - 1)
		r[len++] = '\n';
	va_list ap;
	va_start(ap, format);
	int n = vsnprintf(r + len, size - len, format, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n;
	if (len >= size)
		len = size - 1;
	sb_l->report_len = len;
}

static int sb_parse_int(const char *s, size_t n, long *out) {
	if (n == 0 || n > 9)
		return -1;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

// closeInherited: every descriptor from 3+N up becomes close-on-exec, as
// podman's and runc's --preserve-fds do. Marking rather than closing keeps
// the setup pair (at 3+N) working until exec, and the listener until it is
// taken. The count is what exec would have let through.
static void sb_close_inherited(const struct sb_options *o, const char *fail_at) {
	if (strcmp(fail_at, "fds") == 0)
		sb_fail("close inherited descriptors: " SB_INJECTED " (or --preserve-fds)");
	long first = 3 + o->preserve;
	int closed = 0;
	int d = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC); // not counted
	if (d >= 0) {
		char buf[4096];
		long n;
		while ((n = syscall(SYS_getdents64, d, buf, sizeof buf)) > 0) {
			for (long off = 0; off < n;) {
				struct {
					uint64_t ino;
					int64_t off;
					unsigned short reclen;
					unsigned char type;
					char name[];
				} *e = (void *)(buf + off);
				off += e->reclen;
				long fd;
				if (sb_parse_int(e->name, strlen(e->name), &fd) || fd < first || fd == d)
					continue;
				int fl = fcntl((int)fd, F_GETFD);
				if (fl >= 0 && !(fl & FD_CLOEXEC))
					closed++;
			}
		}
		close(d);
	}
	if (syscall(SB_NR_close_range, (unsigned)first, ~0U, SB_CLOSE_RANGE_CLOEXEC) != 0)
		sb_fail("close inherited descriptors: close_range: %s (Linux 5.11+; or --preserve-fds)", sandbox_errstr(errno));
	sb_report_line("layer=fds closed=%d preserved=%ld", closed, o->preserve);
}

// Docker's default capability set without CAP_NET_RAW (moby
// oci/caps/defaults.go): nothing in it reaches the wire or the network
// configuration. CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID,
// SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
static const int sb_kept_caps[] = {0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 27, 29, 31};

static const char *const sb_cap_names[] = {
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
};

static const char *sb_cap_name(int c) {
	static char buf[16];
	if (c >= 0 && c < (int)(sizeof sb_cap_names / sizeof sb_cap_names[0]))
		return sb_cap_names[c];
	snprintf(buf, sizeof buf, "%d", c);
	return buf;
}

struct sb_caps {
	uint64_t eff, prm, inh;
};

struct sb_cap_header {
	uint32_t version;
	int pid;
};
struct sb_cap_data {
	uint32_t effective, permitted, inheritable;
};

static int sb_capget(struct sb_caps *s) {
	struct sb_cap_header h = {SB_CAPABILITY_VERSION_3, 0};
	struct sb_cap_data d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	s->eff = (uint64_t)d[1].effective << 32 | d[0].effective;
	s->prm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	s->inh = (uint64_t)d[1].inheritable << 32 | d[0].inheritable;
	return 0;
}

static int sb_capset(const struct sb_caps *s) {
	struct sb_cap_header h = {SB_CAPABILITY_VERSION_3, 0};
	struct sb_cap_data d[2] = {
	    {(uint32_t)s->eff, (uint32_t)s->prm, (uint32_t)s->inh},
	    {(uint32_t)(s->eff >> 32), (uint32_t)(s->prm >> 32), (uint32_t)(s->inh >> 32)},
	};
	return (int)syscall(SYS_capset, &h, d);
}

// sb_last_cap is /proc/sys/kernel/cap_last_cap, or 40 (CAP_CHECKPOINT_RESTORE).
static int sb_last_cap(void) {
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 40;
	char b[16];
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	long v;
	while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == ' '))
		n--;
	if (n <= 0 || sb_parse_int(b, (size_t)n, &v) || v >= 64)
		return 40;
	return (int)v;
}

// sb_drop_capabilities keeps only sb_kept_caps (plus CAP_NET_RAW with
// --raw-sockets) in every set: bounding (PR_CAPBSET_DROP, which needs
// CAP_SETPCAP; without it there is nothing we could drop and no_new_privs
// keeps execve from adding to the permitted set anyway, see
// cap_bprm_creds_from_file), ambient, inheritable, permitted and effective.
// It returns whether CAP_NET_RAW survives: then the kernel would allow raw
// sockets and the filter must refuse them.
static int sb_drop_capabilities(const struct sb_options *o, const char *fail_at) {
	if (strcmp(fail_at, "capabilities") == 0)
		sb_fail("drop capabilities: " SB_INJECTED " (or --keep-caps)");
	struct sb_caps cur;
	if (sb_capget(&cur) != 0)
		sb_fail("drop capabilities: capget: %s (or --keep-caps)", sandbox_errstr(errno));
	if (o->keepcaps) {
		sb_report_line("layer=capabilities kept=all");
		return (cur.prm >> SB_CAP_NET_RAW) & 1;
	}
	uint64_t keep = 0;
	for (size_t i = 0; i < sizeof sb_kept_caps / sizeof sb_kept_caps[0]; i++)
		keep |= 1ULL << sb_kept_caps[i];
	if (o->raw)
		keep |= 1ULL << SB_CAP_NET_RAW;
	char dropped[1024];
	size_t dlen = 0;
	dropped[0] = 0;
	const char *bounding = "dropped";
	int can_bound = (cur.eff >> SB_CAP_SETPCAP) & 1;
	int last = sb_last_cap();
	for (int c = 0; c <= last; c++) {
		if ((keep >> c) & 1)
			continue;
		int held = (((cur.eff | cur.prm | cur.inh) >> c) & 1) != 0;
		if (prctl(SB_PR_CAP_AMBIENT, SB_PR_CAP_AMBIENT_IS_SET, (unsigned long)c, 0, 0) == 1) {
			held = 1;
			if (prctl(SB_PR_CAP_AMBIENT, SB_PR_CAP_AMBIENT_LOWER, (unsigned long)c, 0, 0) != 0)
				sb_fail("drop capabilities: lower ambient %s: %s (or --keep-caps)", sb_cap_name(c),
				        sandbox_errstr(errno));
		}
		if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) == 1) {
			if (can_bound) {
				if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) != 0)
					sb_fail("drop capabilities: PR_CAPBSET_DROP %s: %s (or --keep-caps)", sb_cap_name(c),
					        sandbox_errstr(errno));
				held = 1;
			} else {
				bounding = "unchanged-without-CAP_SETPCAP";
			}
		}
		if (held) {
			int n = snprintf(dropped + dlen, sizeof dropped - dlen, "%s%s", dlen ? "," : "", sb_cap_name(c));
			if (n > 0 && dlen + (size_t)n < sizeof dropped)
				dlen += (size_t)n;
		}
	}
	struct sb_caps next = {cur.eff & keep, cur.prm & keep, cur.inh & keep};
	if (next.eff != cur.eff || next.prm != cur.prm || next.inh != cur.inh) {
		if (sb_capset(&next) != 0)
			sb_fail("drop capabilities: capset: %s (or --keep-caps)", sandbox_errstr(errno));
	}
	// Verify: a layer that silently did nothing is no layer.
	struct sb_caps after;
	if (sb_capget(&after) != 0 || (after.prm & ~keep) != 0 || (after.eff & ~keep) != 0)
		sb_fail("drop capabilities: still held after capset (or --keep-caps)");
	sb_report_line("layer=capabilities dropped=%s bounding=%s", dlen ? dropped : "none", bounding);
	return (after.prm >> SB_CAP_NET_RAW) & 1;
}

// sb_restrict_landlock puts the stage (and so PROGRAM and all it starts) in
// a Landlock domain that handles no file system or network access and
// scopes signals: any domain restricts ptrace_may_access to the same or
// nested domains (hook_ptrace_access_check), LANDLOCK_SCOPE_SIGNAL
// (hook_task_kill) refuses kill(2) and friends to processes outside.
static void sb_restrict_landlock(const struct sb_options *o, const char *fail_at) {
	if (!o->landlock) {
		sb_report_line("layer=landlock disabled=true");
		return;
	}
#define SB_LL_FIX                                                                                           \
	" (needs Linux 6.12+ with Landlock enabled (lsm=landlock,...) and a seccomp profile allowing landlock_*; " \
	"or --landlock=false)"
	if (strcmp(fail_at, "landlock") == 0)
		sb_fail("landlock: " SB_INJECTED SB_LL_FIX);
	long abi = syscall(SB_NR_landlock_create_ruleset, NULL, 0, SB_LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		sb_fail("landlock: landlock_create_ruleset(VERSION): %s" SB_LL_FIX, sandbox_errstr(errno));
	if (abi < SB_LANDLOCK_SIGNAL_ABI)
		sb_fail("landlock: ABI %ld has no signal scoping (6 needed)" SB_LL_FIX, abi);
	// Only scoped: a ruleset handling no access right is valid as long as
	// one of the three is non-zero (landlock_create_ruleset: ENOMSG).
	struct {
		uint64_t handled_fs, handled_net, scoped;
	} attr = {0, 0, SB_LANDLOCK_SCOPE_SIGNAL};
	long fd = syscall(SB_NR_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (fd < 0)
		sb_fail("landlock: landlock_create_ruleset: %s" SB_LL_FIX, sandbox_errstr(errno));
	if (syscall(SB_NR_landlock_restrict_self, fd, 0) != 0) {
		int e = errno;
		close((int)fd);
		sb_fail("landlock: landlock_restrict_self: %s" SB_LL_FIX, sandbox_errstr(e));
	}
	close((int)fd);
	sb_report_line("layer=landlock abi=%ld scoped=signal ptrace=domain", abi);
#undef SB_LL_FIX
}

// sb_install loads the filter (the x32 guard is its prefix) with a new
// listener (killable if the kernel can, Linux 5.19; EINVAL before), on
// this, the stage's only thread. It returns the listener.
static int sb_install(const struct sb_launch *p, int raw_rows, const char *fail_at, int *killable) {
#if !defined(__x86_64__)
	sb_fail("install seccomp filter: unsupported architecture: only x86_64 (amd64) is supported");
#endif
	if (strcmp(fail_at, "nnp") == 0)
		sb_fail("install seccomp filter: prctl(PR_SET_NO_NEW_PRIVS): " SB_INJECTED);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		sb_fail("install seccomp filter: prctl(PR_SET_NO_NEW_PRIVS): %s", sandbox_errstr(errno));
	const struct sock_fprog *main_prog = &p->main;
	if (raw_rows) {
		if (p->main_raw.len == 0)
			sb_fail("install seccomp filter: no filter for a program that keeps CAP_NET_RAW");
		main_prog = &p->main_raw;
	}
	if (strcmp(fail_at, "filter") == 0)
		sb_fail("install seccomp filter: load filter: " SB_INJECTED);
	unsigned long flags = SB_SECCOMP_FILTER_FLAG_NEW_LISTENER | SB_SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	*killable = 1;
	long fd = syscall(SYS_seccomp, SB_SECCOMP_SET_MODE_FILTER, flags, main_prog);
	if (fd < 0 && errno == EINVAL) {
		*killable = 0;
		fd = syscall(SYS_seccomp, SB_SECCOMP_SET_MODE_FILTER, SB_SECCOMP_FILTER_FLAG_NEW_LISTENER, main_prog);
	}
	if (fd < 0)
		sb_fail("install seccomp filter: load filter: %s", sandbox_errstr(errno));
	if (strcmp(fail_at, "listener") == 0) {
		close((int)fd);
		sb_fail("install seccomp filter: get notification fd: " SB_INJECTED);
	}
	return (int)fd;
}

// sb_reset_signals gives the stage, and so PROGRAM, the dispositions it
// would have had natively: ignored what the sandbox's caller ignored
// (recorded by signals.go's constructor), the default for the rest; the
// supervisor's Go handlers must never run here. The raw system call: glibc's
// sigaction refuses signals 32 and 33.
struct sb_ksigaction {
	unsigned long handler, flags, restorer;
	unsigned long long mask;
};

static void sb_reset_signals(unsigned long long ignored) {
	for (int s = 1; s <= 64; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		unsigned long want = (ignored >> (s - 1)) & 1 ? (unsigned long)SIG_IGN : (unsigned long)SIG_DFL;
		struct sb_ksigaction act = {want, 0, 0, 0};
		syscall(SYS_rt_sigaction, s, &act, NULL, 8);
	}
}

// sb_child is the stage. Every signal is blocked on entry (sandbox_launch).
static int sb_child(void *arg) {
	sb_l = arg;
	struct sb_launch *l = sb_l;
	const struct sb_options *o = &l->opts;
	const char *fail_at = l->fail_at;
	sb_reset_signals(l->sig_ignored);
	// Its own process group, and the terminal's foreground when asked
	// (SIGTTOU is blocked), as syscall.SysProcAttr's Setpgid and Foreground.
	if (setpgid(0, 0) != 0)
		sb_fail("start init stage: setpgid: %s", sandbox_errstr(errno));
	if (l->foreground) {
		pid_t me = getpid();
		if (ioctl(0, TIOCSPGRP, &me) != 0)
			sb_fail("start init stage: tcsetpgrp: %s", sandbox_errstr(errno));
	}

	// The layers, before the filter: landlock_* may be trapped by it.
	// landlock_restrict_self needs no_new_privs (or CAP_SYS_ADMIN, which is
	// about to go); sb_install sets it again, harmlessly.
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		sb_fail("prctl(PR_SET_NO_NEW_PRIVS): %s", sandbox_errstr(errno));
	sb_close_inherited(o, fail_at);
	int holds_raw = sb_drop_capabilities(o, fail_at);
	if (strcmp(fail_at, "userns") == 0)
		sb_fail("user namespaces: " SB_INJECTED " (or --allow-userns)");
	if (o->userns)
		sb_report_line("layer=userns allowed=true");
	else
		sb_report_line("layer=userns unshare=EPERM clone=EPERM setns=EPERM clone3=ENOSYS");
	sb_restrict_landlock(o, fail_at);

	int killable = 0;
	int lfd = sb_install(l, !o->raw && holds_raw, fail_at, &killable);
	// The listener is in the shared table: the supervisor's now. It is
	// close-on-exec, so PROGRAM's copy of the table lacks it.
	l->listener = lfd;
	l->killable = killable;
	// execve is trapped (an observation, table.go): the supervisor starts
	// serving now, while this thread's parent is still suspended in clone.
	__atomic_store_n(&l->ready, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &l->ready, FUTEX_WAKE, 1, NULL, NULL, 0);
	if (strcmp(fail_at, "handoff") == 0)
		sb_fail("hand over listener: " SB_INJECTED);

	// PROGRAM gets the caller's RLIMIT_NOFILE back: os's init raised the
	// soft limit to the hard one in the supervisor (syscall.ForkExec
	// restores it the same way).
	if (l->nofile_ok) {
		unsigned long long lim[2] = {l->nofile_cur, l->nofile_max};
		if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, lim, NULL) != 0)
			sb_fail("start init stage: restore RLIMIT_NOFILE: %s", sandbox_errstr(errno));
	}
	unsigned long long mask = l->sig_blocked & ~(1ULL << (SIGKILL - 1) | 1ULL << (SIGSTOP - 1));
	l->state = 'R';
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, 8);
	execve(l->path, l->argv, l->envp);
	l->exec_errno = errno;
	l->state = 'X';
	_exit(l->exec_errno == ENOENT ? 127 : 126);
}

#define SB_STACK (256 * 1024)
#define SB_GUARD 4096

// sandbox_launch starts the stage and returns its pid once it has exec'ed
// PROGRAM or exited (l->state says which), or -errno.
int sandbox_launch(struct sb_launch *l) {
#if !defined(__x86_64__)
	snprintf(l->msg, sizeof l->msg, "install seccomp filter: unsupported architecture: only x86_64 (amd64) is supported");
	l->state = 'E';
	return -EINVAL;
#endif
	l->state = 'S';
	l->listener = -1;
	// The stack, with a guard page below it (an overflow must fault, not
	// write into the supervisor's memory), is made once and kept: an
	// munmap in a multi-threaded process is a TLB shootdown, an IPI to the
	// other CPUs, and a process launches once.
	static char *stack;
	if (!stack) {
		char *s = mmap(NULL, SB_STACK + SB_GUARD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (s == MAP_FAILED)
			return -errno;
		if (mprotect(s, SB_GUARD, PROT_NONE) != 0) {
			int e = errno;
			munmap(s, SB_STACK + SB_GUARD);
			return -e;
		}
		stack = s;
	}
	// Block every signal on this thread for the clone: the child inherits
	// the mask and must not run the supervisor's handlers before it has
	// reset them (the dance of Go's forkAndExecInChild).
	unsigned long long all = ~0ULL, old;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
	int pid = clone(sb_child, stack + SB_GUARD + SB_STACK, CLONE_VM | CLONE_FILES | CLONE_VFORK | SIGCHLD, l);
	int e = errno;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8);
	// The stage exec'ed or exited: a waiter that saw no listener stops.
	int none = 0;
	if (__atomic_compare_exchange_n(&l->ready, &none, 2, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &l->ready, FUTEX_WAKE, 1, NULL, NULL, 0);
	return pid < 0 ? -e : pid;
}

// sandbox_wait_ready waits, on a thread of its own, until the stage has a
// listener (1) or the launch ended without one (2).
int sandbox_wait_ready(struct sb_launch *l) {
	int v;
	while ((v = __atomic_load_n(&l->ready, __ATOMIC_SEQ_CST)) == 0)
		syscall(SYS_futex, &l->ready, FUTEX_WAIT, 0, NULL, NULL, 0);
	return v;
}
