/* credchange: a caller's credentials and root change between its Unix path
 * connects (the supervisor remembers callers: every change must be seen).
 * Sockets sit in directories only root may search (0700, owned by root or
 * by nobody), so every connect's outcome shows the credentials it was
 * checked with. Run as root. */
#include "probe.h"
#include <linux/capability.h>
#include <sys/syscall.h>

#define ROUNDS 200

static const char *rootdir_sock, *nobodydir_sock;

static int listen_at(const char *path)
{
	struct sockaddr_un a;
	socklen_t len = sun_path_addr(&a, path);
	int s = xsocket(AF_UNIX, SOCK_STREAM);

	if (bind(s, (void *)&a, len) < 0 || listen(s, 4096) < 0)
		die("listen");
	chmod(path, 0777);
	return s;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a;
	socklen_t len = sun_path_addr(&a, path);
	int s = xsocket(AF_UNIX, SOCK_STREAM), r = connect(s, (void *)&a, len);
	int e = errno;

	close(s);
	errno = e;
	return r;
}

/* The idle thread makes the main process multithreaded from the start
 * (the backlogs hold every connect: nothing needs accepting). */
static int idle_pipe[2];

static void *idle(void *arg)
{
	char b;

	(void)arg;
	while (read(idle_pipe[0], &b, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

struct counts {
	int ok, eacces, other;
};

static void count(struct counts *c, int r)
{
	if (r == 0)
		c->ok++;
	else if (errno == EACCES)
		c->eacces++;
	else
		c->other++;
}

static volatile int dropped;

/* One thread drops to nobody with the raw, per-thread setresuid while
 * another keeps connecting as root. */
static void *dropper(void *arg)
{
	struct counts *c = arg;

	if (syscall(SYS_setresgid, NOBODY, NOBODY, NOBODY) < 0 ||
	    syscall(SYS_setresuid, NOBODY, NOBODY, NOBODY) < 0)
		die("setresuid");
	dropped = 1;
	for (int i = 0; i < ROUNDS; i++)
		count(c, connect_to(rootdir_sock));
	return NULL;
}

static void thread_drop(void)
{
	struct counts root = {0}, nobody = {0};
	pthread_t th;

	for (int i = 0; i < ROUNDS; i++)
		count(&root, connect_to(rootdir_sock));
	pthread_create(&th, NULL, dropper, &nobody);
	for (int i = 0; i < ROUNDS; i++)
		count(&root, connect_to(rootdir_sock));
	pthread_join(th, NULL);
	for (int i = 0; i < ROUNDS; i++)
		count(&root, connect_to(rootdir_sock));
	fact("credchange.thread_drop_root", "ok=%d eacces=%d other=%d", root.ok, root.eacces, root.other);
	fact("credchange.thread_drop_nobody", "ok=%d eacces=%d other=%d", nobody.ok, nobody.eacces, nobody.other);
}

static void process_drop(void *arg)
{
	(void)arg;
	CASE("credchange.process_before", connect_to(rootdir_sock));
	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0)
		die("drop");
	CASE("credchange.process_after", connect_to(rootdir_sock));
}

static void fsuid_drop(void *arg)
{
	(void)arg;
	CASE("credchange.fsuid_before", connect_to(rootdir_sock));
	syscall(SYS_setfsuid, NOBODY);
	CASE("credchange.fsuid_nobody", connect_to(rootdir_sock));
	syscall(SYS_setfsuid, 0);
	CASE("credchange.fsuid_back", connect_to(rootdir_sock));
}

/* A single-threaded process that changes its credentials again and again
 * is remembered again after each change (the supervisor's credCache
 * settles it): every connect must still be checked with the credentials
 * of the moment. Three connects per state: the first reads afresh, the
 * second stores, the third is served from the cache. */
static void fsuid_cycle(void *arg)
{
	struct counts root = {0}, nobody = {0};

	(void)arg;
	for (int i = 0; i < 10; i++) {
		syscall(SYS_setfsuid, NOBODY);
		for (int k = 0; k < 3; k++)
			count(&nobody, connect_to(rootdir_sock));
		syscall(SYS_setfsuid, 0);
		for (int k = 0; k < 3; k++)
			count(&root, connect_to(rootdir_sock));
	}
	fact("credchange.fsuid_cycle_root", "ok=%d eacces=%d other=%d", root.ok, root.eacces, root.other);
	fact("credchange.fsuid_cycle_nobody", "ok=%d eacces=%d other=%d", nobody.ok, nobody.eacces, nobody.other);
}

/* Root searches a directory of nobody's (0700) only by CAP_DAC_OVERRIDE or
 * CAP_DAC_READ_SEARCH: dropping them from the effective set must count. */
static void caps_drop(void *arg)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	(void)arg;
	CASE("credchange.caps_before", connect_to(nobodydir_sock));
	if (syscall(SYS_capget, &h, d) < 0)
		die("capget");
	d[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
	if (syscall(SYS_capset, &h, d) < 0)
		die("capset");
	CASE("credchange.caps_dropped", connect_to(nobodydir_sock));
	CASE("credchange.caps_rootdir", connect_to(rootdir_sock));
}

/* Groups: a directory only group 4242 may search (0070). */
static const char *groupdir_sock;

static void groups_drop(void *arg)
{
	gid_t g = 4242;

	(void)arg;
	if (setgroups(1, &g) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0)
		die("drop");
	CASE("credchange.groups_member", connect_to(groupdir_sock));
	/* Unprivileged now: setgroups fails (EPERM), and nothing changes. */
	CASE("credchange.groups_setgroups", setgroups(0, NULL));
	CASE("credchange.groups_still", connect_to(groupdir_sock));
}

/* An exec changes credentials with no set*id call: root regains the
 * effective capabilities of its permitted set (cap_bprm_creds_from_file,
 * handle_privileged_root). The exec'ing process never changed its own
 * credentials: it inherited them from its parent. */
static void exec_regains(void *arg)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	(void)arg;
	if (syscall(SYS_capget, &h, d) < 0)
		die("capget");
	d[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
	if (syscall(SYS_capset, &h, d) < 0)
		die("capset");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		CASE("credchange.exec_before", connect_to(nobodydir_sock));
		fflush(stdout);
		execl("/proc/self/exe", "credchange", "exec-child", nobodydir_sock, (char *)NULL);
		die("exec");
	}
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("exec child");
}

static void chrooted(void *arg)
{
	(void)arg;
	CASE("credchange.chroot_before", connect_to("/inner.sock"));
	if (chroot(path_in("jail")) < 0 || chdir("/") < 0)
		die("chroot");
	CASE("credchange.chroot_after", connect_to("/inner.sock"));
	CASE("credchange.chroot_outer", connect_to(rootdir_sock));
}

int main(int argc, char **argv)
{
	pthread_t th;

	if (argc == 3 && !strcmp(argv[1], "exec-child")) {
		probe_init();
		CASE("credchange.exec_after", connect_to(argv[2]));
		return 0;
	}
	probe_init();
	mkdir(path_in("root"), 0700);
	mkdir(path_in("nobody"), 0700);
	if (chown(path_in("nobody"), NOBODY, NOBODY) < 0)
		die("chown");
	mkdir(path_in("group"), 0070);
	if (chown(path_in("group"), 0, 4242) < 0 || chmod(path_in("group"), 0070) < 0)
		die("chown");
	mkdir(path_in("jail"), 0755);
	rootdir_sock = strdup(path_in("root/s"));
	nobodydir_sock = strdup(path_in("nobody/s"));
	groupdir_sock = strdup(path_in("group/s"));
	int l0 = listen_at(rootdir_sock), l1 = listen_at(nobodydir_sock), l2 = listen_at(groupdir_sock);
	int inner = listen_at(path_in("jail/inner.sock"));
	if (pipe(idle_pipe) < 0)
		die("pipe");
	pthread_create(&th, NULL, idle, NULL);
	in_child(0, process_drop, NULL);
	in_child(0, fsuid_drop, NULL);
	in_child(0, fsuid_cycle, NULL);
	in_child(0, caps_drop, NULL);
	in_child(0, groups_drop, NULL);
	in_child(0, exec_regains, NULL);
	in_child(0, chrooted, NULL);
	/* Last: the main process's threads differ from here on. */
	thread_drop();
	close(idle_pipe[1]);
	pthread_join(th, NULL);
	close(inner);
	close(l0);
	close(l1);
	close(l2);
	return 0;
}
