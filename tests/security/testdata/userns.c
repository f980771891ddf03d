#define _GNU_SOURCE
// userns: tries every way into a user namespace, each in a child of its
// own, and prints "NAME: ok" or "NAME: ERRNO". fd 3 is another process's
// user namespace, when given.
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void out(const char *name, long r) {
	printf("%s: %s\n", name, r < 0 ? strerrorname_np(errno) : "ok");
	fflush(stdout);
}

// tryclone runs a raw clone (or clone3) and reaps the child, which exits at
// once.
static long tryclone(int three, unsigned long flags) {
	long r;
	if (three) {
		struct clone_args a = {.flags = flags, .exit_signal = SIGCHLD};
		r = syscall(SYS_clone3, &a, sizeof a);
	} else {
		r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	}
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid(r, NULL, 0);
	return r;
}

static void *thread(void *p) { return p; }

// inchild runs f in a forked child, so that a success changes nothing here.
#define inchild(name, expr)            \
	do {                               \
		pid_t p = fork();              \
		if (p == 0) {                  \
			out(name, (expr));         \
			_exit(0);                  \
		}                              \
		waitpid(p, NULL, 0);           \
	} while (0)

int main(void) {
	inchild("unshare_user", unshare(CLONE_NEWUSER));
	inchild("unshare_user_mount", unshare(CLONE_NEWUSER | CLONE_NEWNS));
	inchild("clone_user", tryclone(0, CLONE_NEWUSER));
	inchild("clone3_user", tryclone(1, CLONE_NEWUSER));
	inchild("clone3_plain", tryclone(1, 0));
	if (fcntl(3, F_GETFD) >= 0) {
		inchild("setns_user", setns(3, CLONE_NEWUSER));
		inchild("setns_any", setns(3, 0));
	}
	pthread_t t;
	errno = pthread_create(&t, NULL, thread, NULL);
	out("pthread_create", errno ? -1 : 0);
	if (!errno)
		pthread_join(t, NULL);
	return 0;
}
