/*
 * floor: the least a seccomp user-notification supervisor must do to
 * proxy connect and the send family securely. It is the yardstick for the
 * sandbox's overhead: (sandbox - native) / (floor - native).
 *
 * usage: [FLOOR_DENY=IP:PORT] [FLOOR_UNIX_SECURE=1] [FLOOR_EXACT=1] floor PROGRAM [ARGS...]
 *
 * The child sets PR_SET_NO_NEW_PRIVS, installs a filter that traps what the
 * sandbox traps (connect; sendto with a non-NULL address; every sendmsg and
 * sendmmsg) with SCMP_ACT_NOTIFY, hands the listener's number over a pipe,
 * waits for a go byte and execs PROGRAM. The parent takes the listener with
 * pidfd_getfd, sets SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, and answers every
 * notification on its main thread:
 *
 *   NOTIF_RECV; pidfd_getfd of the caller's fd (through a pidfd of its
 *   process, opened at a thread's first call and cached);
 *   process_vm_readv of the address, msghdr, iovecs and data; NOTIF_ID_VALID;
 *   a trivial decision (EACCES for FLOOR_DENY, port 0 meaning any port);
 *   the call on the duplicate with the copied bytes; close; NOTIF_SEND.
 *
 * Never CONTINUE: what is performed is what was copied and decided.
 *
 * By default a connect to an AF_UNIX path connects the duplicate to the
 * copied path, resolved in the floor's own root and cwd: not secure (the
 * path can be swapped between the decision and the connect), but the
 * least a connect can cost. FLOOR_UNIX_SECURE=1 does what a secure
 * supervisor must instead, for a non-empty, non-abstract path: openat2
 * (O_PATH|O_CLOEXEC) of the path, a relative one against the caller's
 * /proc/PID/cwd (an O_PATH dirfd, opened before NOTIF_ID_VALID so that the
 * pid is proven the caller's), RESOLVE_NO_SYMLINKS first for a clean
 * absolute path with a plain retry on ELOOP (as the sandbox does); then the
 * connect goes to "/proc/self/fd/N", the very object opened, and N is
 * closed. That lookup still uses the floor's credentials and root.
 *
 * FLOOR_EXACT=1 (which implies FLOOR_UNIX_SECURE=1) adds the system calls
 * that an exact supervisor cannot leave out, and nothing else: the floor an
 * exact and secure supervisor is held to.
 *   - SO_DOMAIN and SO_TYPE on every duplicate: the kernel reads the copied
 *     address by the socket's family and type, so the decision must too.
 *   - A blocking stream connect is made non-blocking for the attempt
 *     (F_GETFL, then ioctl FIONBIO, which sets that flag alone), so that a
 *     peer's reset is left for the program's next call: on EINPROGRESS,
 *     TCP_INFO shows whether the handshake completed, and only then is the
 *     socket connected again (SS_CONNECTED); then FIONBIO clears
 *     O_NONBLOCK again, keeping any flag the program changed meanwhile. (A handshake still
 *     under way is waited for with poll, on this thread.)
 *   - A denied TCP connect reads TCP_INFO first: a connected or connecting
 *     socket fails with EISCONN or EALREADY before any decision.
 *
 * What it leaves out, on purpose (the sandbox's extra cost): Linux's
 * argument-check order, SO_DOMAIN/SO_TYPE/F_GETFL, kcmp for non-leader
 * threads, non-blocking handling of blocking connects (here a blocking
 * connect blocks the floor), Unix paths opened with the caller's
 * credentials and root (and, without FLOOR_UNIX_SECURE, in its view at
 * all), SCM_RIGHTS translation (control buffers are passed verbatim),
 * SIGPIPE, logging. It is exact enough for the bench programs, which exit 1
 * on any failed call.
 *
 * It exits with PROGRAM's status (128+N if signal N killed it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked (glibc's lacks it) */
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1UL
#endif

#define MAXMSG 1024        /* UIO_MAXIOV: sendmmsg's vlen and msg_iovlen cap */
#define MAXDATA (1 << 20)  /* bytes copied per call; larger sends: EMSGSIZE */
#define GONE (-100000L)    /* the notification vanished: nothing to answer */

static void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	exit(125);
}

/* ----- the child: filter, hand-off, exec ----- */

static void child(int wfd, int gofd, char **argv)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		die("PR_SET_NO_NEW_PRIVS");
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		die("seccomp_init");
	int e = 0;
	e |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), 0);
	e |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendto), 1, SCMP_A4_64(SCMP_CMP_NE, 0));
	e |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendmsg), 0);
	e |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendmmsg), 0);
	if (e) {
		errno = -e;
		die("seccomp_rule_add");
	}
	if ((e = seccomp_load(ctx)) != 0) {
		errno = -e;
		die("seccomp_load");
	}
	int lfd = seccomp_notify_fd(ctx); /* O_CLOEXEC: PROGRAM never holds it */
	if (lfd < 0)
		die("seccomp_notify_fd");
	/* write(2) is not trapped: nobody answers yet. */
	if (write(wfd, &lfd, sizeof lfd) != sizeof lfd)
		die("hand-off");
	char go;
	if (read(gofd, &go, 1) != 1)
		_exit(125); /* the parent died: never run unsupervised */
	close(wfd);
	close(gofd);
	execvp(argv[0], argv);
	fprintf(stderr, "floor: exec %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* ----- tracee access ----- */

/*
 * Pidfds of the caller's process (its tgid, found through /proc once),
 * cached by tid: one open table, never pruned (the bench programs are
 * small).
 */
#define CACHE 4096
static struct {
	pid_t tid;
	int pidfd;
} cache[CACHE];

static int pidfd_of(pid_t tid, int fresh)
{
	unsigned h = (unsigned)tid % CACHE;
	while (cache[h].tid != 0 && cache[h].tid != tid)
		h = (h + 1) % CACHE;
	if (cache[h].tid == tid && !fresh)
		return cache[h].pidfd;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/status", tid);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	ssize_t n = read(f, buf, sizeof buf - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *t = strstr(buf, "\nTgid:");
	if (!t)
		return -1;
	int pidfd = syscall(SYS_pidfd_open, atoi(t + 6), 0);
	if (pidfd < 0)
		return -1;
	if (cache[h].tid == tid)
		close(cache[h].pidfd);
	cache[h].tid = tid;
	cache[h].pidfd = pidfd;
	return pidfd;
}

/* getfd duplicates the caller's fd; -errno on failure. */
static int getfd(pid_t tid, int fd)
{
	for (int fresh = 0; fresh < 2; fresh++) {
		int pidfd = pidfd_of(tid, fresh);
		if (pidfd < 0)
			return -ESRCH;
		int s = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		if (s >= 0)
			return s;
		if (errno != ESRCH) /* ESRCH: a cached pidfd of a pid reused */
			return -errno;
	}
	return -ESRCH;
}

/* readmem copies n bytes at addr out of tid; 0 or -EFAULT. */
static int readmem(pid_t tid, uint64_t addr, void *buf, size_t n)
{
	if (n == 0)
		return 0;
	struct iovec l = {buf, n}, r = {(void *)(uintptr_t)addr, n};
	return process_vm_readv(tid, &l, 1, &r, 1, 0) == (ssize_t)n ? 0 : -EFAULT;
}

/* ----- the decision ----- */

static struct sockaddr_in deny; /* family 0: nothing denied */

static int denied(const void *addr, socklen_t len)
{
	const struct sockaddr_in *a = addr;
	return deny.sin_family == AF_INET && len >= sizeof *a && a->sin_family == AF_INET &&
	       a->sin_addr.s_addr == deny.sin_addr.s_addr &&
	       (deny.sin_port == 0 || a->sin_port == deny.sin_port);
}

/* ----- handlers: each returns the result, or -errno ----- */

static char data[MAXDATA];
static struct sockaddr_storage names[MAXMSG];
static struct iovec iovs[MAXMSG];
static struct mmsghdr msgs[MAXMSG];
static char control[MAXMSG][256];

static int unix_secure; /* FLOOR_UNIX_SECURE=1 (or FLOOR_EXACT=1) */
static int exact;       /* FLOOR_EXACT=1 */
/* include/net/tcp_states.h */
enum { ST_ESTABLISHED = 1, ST_SYN_SENT = 2, ST_SYN_RECV = 3, ST_CLOSE = 7 };
static int sock_domain, sock_type; /* the duplicate's, under FLOOR_EXACT */

/*
 * exact_connect is connect under FLOOR_EXACT for a blocking inet stream
 * socket: the brief O_NONBLOCK and the settle described at the top.
 */
static long exact_connect(int sock, const struct sockaddr *a, socklen_t len)
{
	int fl = fcntl(sock, F_GETFL);
	int set = fl >= 0 && !(fl & O_NONBLOCK), on = 1, off = 0;
	if (set && ioctl(sock, FIONBIO, &on) != 0)
		return -errno;
	long v = connect(sock, a, len) == 0 ? 0 : -errno;
	while (v == -EINPROGRESS || v == -EALREADY) {
		struct tcp_info ti;
		socklen_t n = sizeof ti;
		if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &n) != 0) {
			v = -errno;
			break;
		}
		if (ti.tcpi_state == ST_SYN_SENT || ti.tcpi_state == ST_SYN_RECV) {
			struct pollfd p = {sock, POLLOUT, 0};
			poll(&p, 1, -1);
			continue;
		}
		if (ti.tcpi_state == ST_CLOSE && ti.tcpi_bytes_acked > 0)
			v = 0; /* completed, then reset: the error stays for the program */
		else
			v = connect(sock, a, len) == 0 ? 0 : -errno;
		break;
	}
	if (set)
		ioctl(sock, FIONBIO, &off);
	return v;
}

/* tcp_busy is the errno a TCP socket's state gives before any decision. */
static long tcp_busy(int sock)
{
	struct tcp_info ti;
	socklen_t n = sizeof ti;
	if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &n) != 0)
		return 0;
	if (ti.tcpi_state == ST_ESTABLISHED)
		return -EISCONN;
	if (ti.tcpi_state == ST_SYN_SENT)
		return -EALREADY;
	return 0;
}
#define SUNPATH sizeof(((struct sockaddr_un *)0)->sun_path)

/*
 * unixpath copies out of a copied AF_UNIX address the path the kernel would
 * look up, into path (NUL-terminated); 0 when there is none (another family,
 * an unnamed or abstract address, or a length connect rejects).
 */
static int unixpath(const void *addr, socklen_t len, char path[SUNPATH + 1])
{
	const struct sockaddr_un *u = addr;
	size_t off = offsetof(struct sockaddr_un, sun_path);
	if (len <= off || len > sizeof *u || u->sun_family != AF_UNIX || u->sun_path[0] == 0)
		return 0;
	size_t k = strnlen(u->sun_path, len - off);
	memcpy(path, u->sun_path, k);
	path[k] = 0;
	return 1;
}

/* clean: absolute and as Go's filepath.Clean leaves it (no empty, "." or ".." component). */
static int clean(const char *p)
{
	if (p[0] != '/')
		return 0;
	if (p[1] == 0)
		return 1;
	for (const char *c = p + 1;; c++) {
		size_t k = strcspn(c, "/");
		if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += k;
		if (*c == 0)
			return 1;
	}
}

/* openpath opens path O_PATH against dirfd as the sandbox does; fd or -errno. */
static int openpath(int dirfd, const char *path)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC};
	if (dirfd == AT_FDCWD && clean(path)) {
		how.resolve = RESOLVE_NO_SYMLINKS;
		int fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
		if (fd >= 0 || errno != ELOOP)
			return fd >= 0 ? fd : -errno;
		how.resolve = 0; /* a symlink on the way: walk it */
	}
	int fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
	return fd >= 0 ? fd : -errno;
}

static long do_connect(int sock, const struct seccomp_notif *n, int lfd)
{
	socklen_t len = (socklen_t)n->data.args[2];
	if (len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	if (readmem(n->pid, n->data.args[1], &names[0], len))
		return -EFAULT;
	char path[SUNPATH + 1];
	int secure = unix_secure && unixpath(&names[0], len, path);
	int dirfd = AT_FDCWD;
	if (secure && path[0] != '/') {
		char cwd[64];
		snprintf(cwd, sizeof cwd, "/proc/%d/cwd", n->pid);
		if ((dirfd = open(cwd, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
			return -errno; /* a caller gone meanwhile takes no answer: SEND fails */
	}
	int inet_stream = exact && sock_type == SOCK_STREAM && (sock_domain == AF_INET || sock_domain == AF_INET6);
	long v = 0;
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id) != 0)
		v = GONE;
	else if (denied(&names[0], len)) {
		if (!inet_stream || (v = tcp_busy(sock)) == 0)
			v = -EACCES;
	} else if (inet_stream)
		v = exact_connect(sock, (struct sockaddr *)&names[0], len);
	else if (!secure)
		v = connect(sock, (struct sockaddr *)&names[0], len) == 0 ? 0 : -errno;
	if (v != 0 || !secure) {
		if (dirfd >= 0)
			close(dirfd);
		return v;
	}
	int obj = openpath(dirfd, path);
	if (dirfd >= 0)
		close(dirfd);
	if (obj < 0)
		return obj;
	struct sockaddr_un self = {.sun_family = AF_UNIX};
	int plen = snprintf(self.sun_path, sizeof self.sun_path, "/proc/self/fd/%d", obj);
	int r = connect(sock, (struct sockaddr *)&self, offsetof(struct sockaddr_un, sun_path) + plen + 1);
	int e = errno;
	close(obj);
	return r == 0 ? 0 : -e;
}

static long do_sendto(int sock, const struct seccomp_notif *n, int lfd)
{
	size_t size = n->data.args[2];
	socklen_t len = (socklen_t)n->data.args[5];
	if (len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	if (size > MAXDATA)
		return -EMSGSIZE;
	if (readmem(n->pid, n->data.args[1], data, size) || readmem(n->pid, n->data.args[4], &names[0], len))
		return -EFAULT;
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id) != 0)
		return GONE;
	if (denied(&names[0], len))
		return -EACCES;
	ssize_t r = sendto(sock, data, size, (int)n->data.args[3] | MSG_NOSIGNAL, (struct sockaddr *)&names[0], len);
	return r >= 0 ? r : -errno;
}

/*
 * copymsg copies message i's msghdr (already in msgs[i]), name, iovecs,
 * data (flattened into one iovec, at offset *used of data) and control
 * buffer, rewriting the msghdr to point at the copies.
 */
static int copymsg(pid_t tid, int i, size_t *used)
{
	struct msghdr *m = &msgs[i].msg_hdr;
	if (m->msg_namelen > sizeof names[i])
		m->msg_namelen = sizeof names[i];
	if (!m->msg_name)
		m->msg_namelen = 0;
	if (readmem(tid, (uintptr_t)m->msg_name, &names[i], m->msg_namelen))
		return -EFAULT;
	m->msg_name = m->msg_namelen ? &names[i] : NULL;
	if (m->msg_iovlen > MAXMSG)
		return -EMSGSIZE;
	struct iovec remote[MAXMSG];
	if (readmem(tid, (uintptr_t)m->msg_iov, remote, m->msg_iovlen * sizeof *remote))
		return -EFAULT;
	size_t start = *used;
	for (size_t k = 0; k < m->msg_iovlen; k++) {
		if (remote[k].iov_len > MAXDATA - *used)
			return -EMSGSIZE;
		if (readmem(tid, (uintptr_t)remote[k].iov_base, data + *used, remote[k].iov_len))
			return -EFAULT;
		*used += remote[k].iov_len;
	}
	iovs[i] = (struct iovec){data + start, *used - start};
	m->msg_iov = &iovs[i];
	m->msg_iovlen = 1;
	if (m->msg_controllen > sizeof control[i])
		return -ENOBUFS;
	if (readmem(tid, (uintptr_t)m->msg_control, control[i], m->msg_controllen))
		return -EFAULT;
	m->msg_control = m->msg_controllen ? control[i] : NULL;
	return 0;
}

static long do_sendmsg(int sock, const struct seccomp_notif *n, int lfd)
{
	size_t used = 0;
	if (readmem(n->pid, n->data.args[1], &msgs[0].msg_hdr, sizeof msgs[0].msg_hdr))
		return -EFAULT;
	int e = copymsg(n->pid, 0, &used);
	if (e)
		return e;
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id) != 0)
		return GONE;
	struct msghdr *m = &msgs[0].msg_hdr;
	if (denied(m->msg_name, m->msg_namelen))
		return -EACCES;
	ssize_t r = sendmsg(sock, m, (int)n->data.args[2] | MSG_NOSIGNAL);
	return r >= 0 ? r : -errno;
}

static long do_sendmmsg(int sock, const struct seccomp_notif *n, int lfd)
{
	unsigned vlen = (unsigned)n->data.args[2];
	uint64_t vec = n->data.args[1];
	if (vlen > MAXMSG)
		vlen = MAXMSG;
	if (vlen == 0)
		return 0;
	if (readmem(n->pid, vec, msgs, vlen * sizeof *msgs))
		return -EFAULT;
	size_t used = 0;
	for (unsigned i = 0; i < vlen; i++) {
		int e = copymsg(n->pid, i, &used);
		if (e)
			return e;
	}
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id) != 0)
		return GONE;
	for (unsigned i = 0; i < vlen; i++)
		if (denied(msgs[i].msg_hdr.msg_name, msgs[i].msg_hdr.msg_namelen))
			return -EACCES;
	int r = sendmmsg(sock, msgs, vlen, (int)n->data.args[3] | MSG_NOSIGNAL);
	if (r <= 0)
		return r == 0 ? 0 : -errno;
	/* msg_len back into the caller's vector, one process_vm_writev. */
	struct iovec l[MAXMSG], rem[MAXMSG];
	for (int i = 0; i < r; i++) {
		l[i] = (struct iovec){&msgs[i].msg_len, sizeof msgs[i].msg_len};
		rem[i] = (struct iovec){(void *)(uintptr_t)(vec + i * sizeof *msgs + offsetof(struct mmsghdr, msg_len)),
					sizeof msgs[i].msg_len};
	}
	if (process_vm_writev(n->pid, l, r, rem, r, 0) != (ssize_t)(r * sizeof msgs[0].msg_len))
		return -EFAULT;
	return r;
}

/* ----- the parent ----- */

static pid_t kid;

/* reaper ends the floor with PROGRAM's status; the receive loop never has to look. */
static void *reaper(void *arg)
{
	(void)arg;
	int st;
	while (waitpid(kid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	fflush(NULL);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: [FLOOR_DENY=IP:PORT] [FLOOR_UNIX_SECURE=1] [FLOOR_EXACT=1] floor PROGRAM [ARGS...]\n");
		return 2;
	}
	const char *us = getenv("FLOOR_UNIX_SECURE"), *ex = getenv("FLOOR_EXACT");
	exact = ex && strcmp(ex, "1") == 0;
	unix_secure = exact || (us && strcmp(us, "1") == 0);
	const char *d = getenv("FLOOR_DENY");
	if (d && *d) {
		char ip[64];
		unsigned port;
		if (sscanf(d, "%63[^:]:%u", ip, &port) != 2 || port > 65535 ||
		    inet_pton(AF_INET, ip, &deny.sin_addr) != 1) {
			fprintf(stderr, "floor: FLOOR_DENY=%s: want IPv4:PORT\n", d);
			return 2;
		}
		deny.sin_family = AF_INET;
		deny.sin_port = htons(port);
	}
	int hand[2], go[2];
	if (pipe2(hand, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		die("pipe");
	kid = fork();
	if (kid < 0)
		die("fork");
	if (kid == 0) {
		close(hand[0]);
		close(go[1]);
		child(hand[1], go[0], argv + 1);
	}
	close(hand[1]);
	close(go[0]);
	int cfd;
	if (read(hand[0], &cfd, sizeof cfd) != sizeof cfd) {
		waitpid(kid, NULL, 0);
		fprintf(stderr, "floor: the child failed before the hand-off\n");
		return 125;
	}
	int pidfd = syscall(SYS_pidfd_open, kid, 0);
	int lfd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, cfd, 0);
	if (lfd < 0)
		die("take listener");
	close(pidfd);
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) != 0)
		fprintf(stderr, "floor: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: %s (continuing)\n", strerror(errno));
	pthread_t th;
	if ((errno = pthread_create(&th, NULL, reaper, NULL)) != 0)
		die("pthread_create");
	if (write(go[1], "g", 1) != 1)
		die("go");
	close(go[1]);

	for (;;) {
		struct seccomp_notif n;
		memset(&n, 0, sizeof n); /* the kernel wants it zeroed */
		if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			die("NOTIF_RECV");
		}
		struct seccomp_notif_resp r = {.id = n.id};
		int sock = getfd(n.pid, (int)n.data.args[0]);
		long v;
		if (sock < 0)
			v = sock == -ESRCH ? GONE : sock;
		else {
			if (exact) {
				socklen_t sl = sizeof sock_domain;
				getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &sock_domain, &sl);
				sl = sizeof sock_type;
				getsockopt(sock, SOL_SOCKET, SO_TYPE, &sock_type, &sl);
			}
			if (n.data.nr == SYS_connect)
				v = do_connect(sock, &n, lfd);
			else if (n.data.nr == SYS_sendto)
				v = do_sendto(sock, &n, lfd);
			else if (n.data.nr == SYS_sendmsg)
				v = do_sendmsg(sock, &n, lfd);
			else if (n.data.nr == SYS_sendmmsg)
				v = do_sendmmsg(sock, &n, lfd);
			else
				v = -ENOSYS;
			close(sock);
		}
		if (v == GONE)
			continue;
		if (v < 0)
			r.error = (int)v;
		else
			r.val = v;
		/* ENOENT: the caller was interrupted meanwhile; nothing to answer. */
		ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &r);
	}
}
