// Credential threads: see credthread.h and credPool (caller.go).
//
// Why C. A Go goroutine locked to a thread with a caller's credentials
// was handed each call over channels: the receive thread's goroutine
// blocked, the scheduler handed its processor to another thread, which
// started the locked one, and back (startlockedm, stoplockedm): 23 futex
// calls and 14 context switches per Unix path connect as another user,
// about 100 µs of the 120 µs it cost. A pthread the Go runtime does not know
// needs no processor: the receive thread posts one system call, wakes the
// thread with a futex, and waits on the same word; two switches per call.
//
// The thread runs no Go code and no libc beyond syscall(2): every signal is
// blocked before it is created (it inherits the mask), so no Go handler
// ever runs on it, and its credentials are switched with the raw,
// per-thread system calls (glibc's setresuid and setgroups would switch
// every thread of the process: the setxid broadcast).
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "credthread.h"

enum { STARTING, IDLE, POSTED, DONE, QUIT, FAILED };

struct sb_credthread {
	uint32_t state; // futex word, one of the above
	long nr, a[6], ret;
	pthread_t th; // joined by whoever frees the struct: never freed under a wake
	// During the start only:
	const struct sb_creds *creds;
	const uint32_t *groups;
	uint32_t ngroups;
	int err;
	const char *step;
};

static uint32_t load(uint32_t *w) { return __atomic_load_n(w, __ATOMIC_SEQ_CST); }

static void store(uint32_t *w, uint32_t v)
{
	__atomic_store_n(w, v, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

// spin_ns is how long a side looks at the word before it sleeps on it:
// 0 when the process may use one CPU only, where spinning would only keep
// the other side from running. A Unix path connect as the caller makes
// two calls a few microseconds apart (the openat2, then the connect), and
// waking a thread asleep on another CPU costs an IPI, tens of microseconds
// on a VM: a thread that spins briefly after its call is still awake for
// the next, and a caller that spins briefly sees a short call end without
// sleeping. Set once.
static long spin_ns = -1;

enum { SPIN_NS = 30000 };

static void init_spin(void)
{
	cpu_set_t set;
	if (__atomic_load_n(&spin_ns, __ATOMIC_RELAXED) >= 0)
		return;
	int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
	__atomic_store_n(&spin_ns, n > 1 ? SPIN_NS : 0, __ATOMIC_RELAXED);
}

static long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

// spin_while looks at the word for up to spin_ns while it holds from.
static uint32_t spin_while(uint32_t *w, uint32_t from)
{
	uint32_t s = load(w);
	if (s != from || spin_ns <= 0)
		return s;
	long until = now_ns() + spin_ns;
	for (int i = 1; s == from; i++) {
		__builtin_ia32_pause();
		if (i % 64 == 0 && now_ns() > until)
			break;
		s = load(w);
	}
	return s;
}

// await waits until the word leaves the state it has (not from).
static uint32_t await_not(uint32_t *w, uint32_t from)
{
	uint32_t s = spin_while(w, from);
	while (s == from) {
		syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, from, NULL, NULL, 0);
		s = load(w);
	}
	return s;
}

// assume switches the calling thread, and only it, to the credentials;
// the name of the call that failed, or NULL. The order is assumeCreds'
// (the Go version it replaces): groups and gids while CAP_SETGID holds,
// the permitted set kept across the uid change, then the effective set
// made exactly the caller's, within what is permitted.
static const char *assume(struct sb_credthread *t)
{
	const struct sb_creds *c = t->creds;
	if (syscall(SYS_setgroups, (long)t->ngroups, t->ngroups ? t->groups : NULL) < 0)
		return "setgroups";
	if (syscall(SYS_setresgid, (long)c->gid[0], (long)c->gid[1], (long)c->gid[2]) < 0)
		return "setresgid";
	// setfsgid reports no error: it returns the fsgid before the call, so
	// a second call with an invalid id (-1, which changes nothing) shows
	// whether the first one took.
	syscall(SYS_setfsgid, (long)c->gid[3]);
	if ((uint32_t)syscall(SYS_setfsgid, -1L) != c->gid[3]) {
		errno = EPERM;
		return "setfsgid";
	}
	if (syscall(SYS_prctl, PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0)
		return "prctl(PR_SET_KEEPCAPS)";
	if (syscall(SYS_setresuid, (long)c->uid[0], (long)c->uid[1], (long)c->uid[2]) < 0)
		return "setresuid";
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return "capget";
	// The uid change emptied the effective set (cap_emulate_setxuid), and
	// an fsuid that is none of the real, effective or saved uids needs
	// CAP_SETUID: raise it alone for the setfsuid.
	d[0].effective = d[0].permitted & (1u << CAP_SETUID);
	d[1].effective = 0;
	if (syscall(SYS_capset, &h, d) < 0)
		return "capset";
	syscall(SYS_setfsuid, (long)c->uid[3]);
	if ((uint32_t)syscall(SYS_setfsuid, -1L) != c->uid[3]) {
		errno = EPERM;
		return "setfsuid";
	}
	// Then the effective set made exactly the caller's, within what is
	// permitted (after setfsuid, which clears the file system capabilities
	// from it when the fsuid leaves 0).
	d[0].effective = (uint32_t)c->cap_eff & d[0].permitted;
	d[1].effective = (uint32_t)(c->cap_eff >> 32) & d[1].permitted;
	if (syscall(SYS_capset, &h, d) < 0)
		return "capset";
	return NULL;
}

static void *run(void *arg)
{
	struct sb_credthread *t = arg;
	// Named for /proc (it would show its creator's name, "sandbox/fd" for
	// a receive thread): what it is, and that it is not a Go thread.
	syscall(SYS_prctl, PR_SET_NAME, (long)"sandbox/cred", 0L, 0L, 0L);
	const char *step = assume(t);
	if (step) {
		t->err = errno;
		t->step = step;
		store(&t->state, FAILED); // the starter joins, then frees t
		return NULL;
	}
	t->creds = NULL;
	t->groups = NULL;
	store(&t->state, IDLE);
	for (;;) {
		uint32_t s = load(&t->state);
		if (s == QUIT)
			break;
		if (s != POSTED) { // IDLE, or DONE: waiting for the next post
			if (spin_while(&t->state, s) == s)
				syscall(SYS_futex, &t->state, FUTEX_WAIT_PRIVATE, s, NULL, NULL, 0);
			continue;
		}
		long r = syscall(t->nr, t->a[0], t->a[1], t->a[2], t->a[3], t->a[4], t->a[5]);
		t->ret = r == -1 ? -errno : r;
		store(&t->state, DONE);
	}
	return NULL; // sb_cred_stop joins, then frees t
}

struct sb_credthread *sb_cred_start(const struct sb_creds *creds, const uint32_t *groups, uint32_t ngroups,
				    int *err, const char **step)
{
	init_spin();
	struct sb_credthread *t = calloc(1, sizeof *t);
	if (!t) {
		*err = ENOMEM, *step = "calloc";
		return NULL;
	}
	t->creds = creds, t->groups = groups, t->ngroups = ngroups;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); // inherited by the thread
	int e = pthread_create(&t->th, &attr, run, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		free(t);
		*err = e, *step = "pthread_create";
		return NULL;
	}
	if (await_not(&t->state, STARTING) == FAILED) {
		*err = t->err, *step = t->step;
		pthread_join(t->th, NULL);
		free(t);
		return NULL;
	}
	return t;
}

long sb_cred_call(struct sb_credthread *t, long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	t->nr = nr;
	t->a[0] = a0, t->a[1] = a1, t->a[2] = a2, t->a[3] = a3, t->a[4] = a4, t->a[5] = a5;
	store(&t->state, POSTED);
	await_not(&t->state, POSTED);
	return t->ret; // DONE stays until the next post: the thread waits on it as on IDLE
}

void sb_cred_stop(struct sb_credthread *t)
{
	store(&t->state, QUIT);
	pthread_join(t->th, NULL); // an idle thread: it ends at once
	free(t);
}
