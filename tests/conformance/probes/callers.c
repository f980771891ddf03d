/* callers: who calls connect: many threads at once, forked and exec'd
 * children, a thread with its own working directory, a chrooted child, a
 * thread in another network namespace. */
#include "probe.h"
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <spawn.h>
#include <sys/prctl.h>

extern char **environ;

#define THREADS 8
#define PER_THREAD 200

static struct sockaddr_storage target;
static socklen_t target_len;
static int target_type;
static volatile int stop_accepting;

struct tally {
	int ok;
	int errs[256];
};

/* TALLY runs a call and counts its outcome. */
#define TALLY(t, call)                             \
	do {                                       \
		errno = 0;                         \
		int r_ = (call);                   \
		tally_add((t), r_, errno);         \
	} while (0)

static void tally_add(struct tally *t, int r, int e)
{
	if (r == 0)
		t->ok++;
	else if (e > 0 && e < 256)
		t->errs[e]++;
	else
		t->errs[0]++;
}

static void tally_merge(struct tally *into, const struct tally *t)
{
	into->ok += t->ok;
	for (int i = 0; i < 256; i++)
		into->errs[i] += t->errs[i];
}

static void tally_print(const char *name, const struct tally *t)
{
	char buf[512] = "";
	int n = 0;

	for (int i = 0; i < 256; i++)
		if (t->errs[i])
			n += snprintf(buf + n, sizeof buf - n, " %s=%d", errname(i), t->errs[i]);
	fact(name, "ok=%d errors=%s", t->ok, n ? buf + 1 : "none");
}

static void *hammer(void *arg)
{
	struct tally *t = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		int s = xsocket(target.ss_family, target_type);

		TALLY(t, connect(s, (void *)&target, target_len));
		close(s);
	}
	return NULL;
}

static void *acceptor(void *arg)
{
	int lfd = *(int *)arg;

	while (!stop_accepting) {
		if (poll1(lfd, POLLIN, 50) & POLLIN)
			drain(lfd);
	}
	return NULL;
}

/* run_threads connects THREADS x PER_THREAD times to the current target,
 * accepting on lfd (if >= 0) in another thread. */
static void run_threads(const char *name, int lfd)
{
	pthread_t th[THREADS], acc;
	struct tally t[THREADS], total;

	memset(t, 0, sizeof t);
	memset(&total, 0, sizeof total);
	stop_accepting = 0;
	if (lfd >= 0)
		pthread_create(&acc, NULL, acceptor, &lfd);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, hammer, &t[i]);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		tally_merge(&total, &t[i]);
	}
	stop_accepting = 1;
	if (lfd >= 0)
		pthread_join(acc, NULL);
	tally_print(name, &total);
}

static void threads(void)
{
	int lfd, port, cfd, u;

	lfd = tcp_listener("127.0.0.1", &port);
	target_len = inaddr(&target, "127.0.0.1", port);
	target_type = SOCK_STREAM;
	run_threads("callers.threads_tcp", lfd);
	close(lfd);

	lfd = tcp_listener("::1", &port);
	target_len = inaddr(&target, "::1", port);
	run_threads("callers.threads_tcp6", lfd);
	close(lfd);

	target_len = inaddr(&target, "127.0.0.1", closed_port("127.0.0.1", &cfd));
	run_threads("callers.threads_tcp_refused", -1);
	close(cfd);

	u = inet_sock("127.0.0.1", SOCK_DGRAM, -1, &port);
	target_len = inaddr(&target, "127.0.0.1", port);
	target_type = SOCK_DGRAM;
	run_threads("callers.threads_udp", -1);
	close(u);

	lfd = xsocket(AF_UNIX, SOCK_STREAM);
	target_len = sun_path_addr((struct sockaddr_un *)&target, path_in("threads.sock"));
	if (bind(lfd, (void *)&target, target_len) < 0 || listen(lfd, 4096) < 0)
		die("listen");
	target_type = SOCK_STREAM;
	run_threads("callers.threads_unix", lfd);
	close(lfd);
}

struct blocker {
	struct sockaddr_in addr;
	int r, e;
};

static void *block_on_tarpit(void *arg)
{
	struct blocker *b = arg;
	struct timeval tv = {0, 300 * 1000};
	int s = xsocket(AF_INET, SOCK_STREAM);

	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	b->r = connect(s, (void *)&b->addr, sizeof b->addr);
	b->e = errno;
	close(s);
	return NULL;
}

/* Many connects pending at once: blocking ones in threads and non-blocking
 * ones on a single thread. */
static void pending_many(void)
{
	enum { N = 32 };
	struct tarpit tp;
	pthread_t th[N];
	struct blocker b[N];
	struct tally t;
	int fds[N];

	tarpit_open(&tp);
	memset(&t, 0, sizeof t);
	for (int i = 0; i < N; i++) {
		b[i].addr = tp.addr;
		pthread_create(&th[i], NULL, block_on_tarpit, &b[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		tally_add(&t, b[i].r, b[i].e);
	}
	tally_print("callers.pending_blocking_threads", &t);

	memset(&t, 0, sizeof t);
	for (int i = 0; i < N; i++) {
		fds[i] = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
		TALLY(&t, connect(fds[i], (void *)&tp.addr, sizeof tp.addr));
	}
	tally_print("callers.pending_nonblocking", &t);
	memset(&t, 0, sizeof t);
	for (int i = 0; i < N; i++) {
		TALLY(&t, connect(fds[i], (void *)&tp.addr, sizeof tp.addr));
		close(fds[i]);
	}
	tally_print("callers.pending_nonblocking_again", &t);
	tarpit_close(&tp);
}

static void forks(void)
{
	enum { CHILDREN = 4, EACH = 50 };
	int lfd, port, p[2];
	struct sockaddr_in a;
	struct tally total;
	pthread_t acc;

	lfd = tcp_listener("127.0.0.1", &port);
	a = sin4("127.0.0.1", port);
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	stop_accepting = 0;
	pthread_create(&acc, NULL, acceptor, &lfd);
	fflush(stdout);
	for (int c = 0; c < CHILDREN; c++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			struct tally t;

			memset(&t, 0, sizeof t);
			for (int i = 0; i < EACH; i++) {
				int s = xsocket(AF_INET, SOCK_STREAM);

				TALLY(&t, connect(s, (void *)&a, sizeof a));
				close(s);
			}
			if (write(p[1], &t, sizeof t) != sizeof t)
				_exit(3);
			_exit(0);
		}
	}
	close(p[1]);
	memset(&total, 0, sizeof total);
	for (int c = 0; c < CHILDREN; c++) {
		struct tally t;
		int status;

		if (read(p[0], &t, sizeof t) == sizeof t)
			tally_merge(&total, &t);
		wait(&status);
	}
	close(p[0]);
	stop_accepting = 1;
	pthread_join(acc, NULL);
	tally_print("callers.forked_children", &total);

	/* A child that execs this probe again. */
	{
		char arg[16];
		char *argv[] = {"probe", "exec-child", arg, NULL};
		pid_t pid;
		int status;

		snprintf(arg, sizeof arg, "%d", port);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			execv("/proc/self/exe", argv);
			_exit(127);
		}
		waitpid(pid, &status, 0);
		fact("callers.exec_child_status", "%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

		argv[1] = "spawn-child";
		if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) != 0)
			die("posix_spawn");
		waitpid(pid, &status, 0);
		fact("callers.spawn_child_status", "%d",
		     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	close(lfd);
}

/* A vfork child connects on the parent's memory, before it exits. */
static void vforked(void)
{
	static volatile long r, e;
	int lfd, port, status;
	struct sockaddr_in a;
	pid_t pid;

	lfd = tcp_listener("127.0.0.1", &port);
	a = sin4("127.0.0.1", port);
	fflush(stdout);
	pid = vfork();
	if (pid == 0) {
		long s = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		r = syscall(SYS_connect, s, &a, sizeof a);
		e = r < 0 ? errno : 0;
		_exit(0);
	}
	waitpid(pid, &status, 0);
	report("callers.vfork_child", r, (int)e, "accepted=%d", drain(lfd));
	close(lfd);
}

/* A child installs its own seccomp filter that fails connect with
 * ENETDOWN: its answer wins over a supervisor's notification. */
static void own_filter(void *arg)
{
#if defined(__x86_64__)
#define PROBE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define PROBE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#ifdef PROBE_AUDIT_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROBE_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_connect, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENETDOWN),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof f / sizeof f[0], f};
	struct sockaddr_in *lis = arg;
	int s = xsocket(AF_INET, SOCK_STREAM);

	CASE("callers.own_seccomp_no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	CASE("callers.own_seccomp_install", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
	CASE("callers.own_seccomp_connect", connect(s, lis, sizeof *lis), "peer=%s",
	     peer_is(s, lis, sizeof *lis));
	close(s);
#else
	(void)arg;
	fact("callers.own_seccomp", "skipped");
#endif
}

static int exec_child(const char *name, const char *port)
{
	struct sockaddr_in a = sin4("127.0.0.1", atoi(port));
	int s = xsocket(AF_INET, SOCK_STREAM);

	probe_init();
	CASE(name, connect(s, &a, sizeof a), "peer=%s", peer_is(s, &a, sizeof a));
	return 0;
}

/* ---- working directory, root and network namespace ---- */

static int dir_listener[3]; /* one "sock" in each of dirs a, b, c */
static const char *const dir_names[] = {"a", "b", "c"};

/* reached names the directory whose listener got the connection. */
static const char *reached(void)
{
	const char *who = "none";

	for (int i = 0; i < 3; i++)
		if (poll1(dir_listener[i], POLLIN, 0) & POLLIN) {
			who = dir_names[i];
			drain(dir_listener[i]);
		}
	return who;
}

static int connect_rel_sock(void)
{
	struct sockaddr_un a;
	socklen_t len = sun_path_addr(&a, "sock");
	int s = xsocket(AF_UNIX, SOCK_STREAM), r;

	r = connect(s, (void *)&a, len);
	close(s);
	return r;
}

static void *thread_cwd(void *arg)
{
	(void)arg;
	if (unshare(CLONE_FS) < 0 || chdir(path_in("b")) < 0) {
		fact("callers.thread_own_cwd", "setup=%s", errname(errno));
		return NULL;
	}
	CASE("callers.thread_own_cwd", connect_rel_sock(), "reached=%s", reached());
	return NULL;
}

static void *thread_shared_cwd(void *arg)
{
	(void)arg;
	CASE("callers.thread_shared_cwd", connect_rel_sock(), "reached=%s", reached());
	return NULL;
}

static void chrooted(void *arg)
{
	struct sockaddr_un a;
	socklen_t len = sun_path_addr(&a, "/sock");
	int s = xsocket(AF_UNIX, SOCK_STREAM);

	(void)arg;
	if (chroot(path_in("c")) < 0 || chdir("/") < 0)
		die("chroot");
	CASE("callers.chroot_child_abs", connect(s, &a, len), "reached=%s", reached());
	close(s);
	CASE("callers.chroot_child_rel", connect_rel_sock(), "reached=%s", reached());
}

static void directories(void)
{
	pthread_t th;

	for (int i = 0; i < 3; i++) {
		char p[16];
		struct sockaddr_un a;
		socklen_t len;

		snprintf(p, sizeof p, "%s/sock", dir_names[i]);
		mkdir(path_in(dir_names[i]), 0755);
		len = sun_path_addr(&a, path_in(p));
		dir_listener[i] = xsocket(AF_UNIX, SOCK_STREAM);
		if (bind(dir_listener[i], (void *)&a, len) < 0 || listen(dir_listener[i], 8) < 0)
			die("listen");
	}
	if (chdir(path_in("a")) < 0)
		die("chdir");
	CASE("callers.main_cwd", connect_rel_sock(), "reached=%s", reached());
	pthread_create(&th, NULL, thread_cwd, NULL);
	pthread_join(th, NULL);
	CASE("callers.main_cwd_after_thread", connect_rel_sock(), "reached=%s", reached());
	pthread_create(&th, NULL, thread_shared_cwd, NULL);
	pthread_join(th, NULL);
	in_child(0, chrooted, NULL);
	if (chdir("/") < 0)
		die("chdir");
	for (int i = 0; i < 3; i++)
		close(dir_listener[i]);
}

struct netns_arg {
	struct sockaddr_in lis;
	int old_socket;
};

static void *thread_netns(void *arg)
{
	struct netns_arg *n = arg;
	struct sockaddr_un abs;
	socklen_t alen = sun_abstract_addr(&abs, "sbxt-callers-abstract");
	int s;

	if (unshare(CLONE_NEWNET) < 0) {
		fact("callers.thread_new_netns", "unshare=%s", errname(errno));
		return NULL;
	}
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("callers.thread_new_netns_new_socket", connect(s, &n->lis, sizeof n->lis));
	close(s);
	CASE("callers.thread_new_netns_old_socket",
	     connect(n->old_socket, &n->lis, sizeof n->lis), "peer=%s",
	     peer_is(n->old_socket, &n->lis, sizeof n->lis));
	s = xsocket(AF_UNIX, SOCK_STREAM);
	CASE("callers.thread_new_netns_abstract", connect(s, &abs, alen));
	close(s);
	return NULL;
}

static void netns(void)
{
	struct netns_arg n;
	struct sockaddr_un abs;
	socklen_t alen = sun_abstract_addr(&abs, "sbxt-callers-abstract");
	int lfd, port, al, s;
	pthread_t th;

	lfd = tcp_listener("127.0.0.1", &port);
	n.lis = sin4("127.0.0.1", port);
	n.old_socket = xsocket(AF_INET, SOCK_STREAM);
	al = xsocket(AF_UNIX, SOCK_STREAM);
	if (bind(al, (void *)&abs, alen) < 0 || listen(al, 8) < 0)
		die("listen");
	pthread_create(&th, NULL, thread_netns, &n);
	pthread_join(th, NULL);
	s = xsocket(AF_UNIX, SOCK_STREAM);
	CASE("callers.main_netns_abstract", connect(s, &abs, alen));
	close(s);
	close(n.old_socket);
	close(al);
	close(lfd);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "exec-child"))
		return exec_child("callers.exec_child", argv[2]);
	if (argc == 3 && !strcmp(argv[1], "spawn-child"))
		return exec_child("callers.spawn_child", argv[2]);
	probe_init();
	threads();
	pending_many();
	forks();
	vforked();
	{
		int port, lfd = tcp_listener("127.0.0.1", &port);
		struct sockaddr_in a = sin4("127.0.0.1", port);

		in_child(0, own_filter, &a);
		close(lfd);
	}
	directories();
	netns();
	return 0;
}
