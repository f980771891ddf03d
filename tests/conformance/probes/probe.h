/*
 * probe.h: helpers shared by the connect(2) conformance probes.
 *
 * A probe prints one line per case, "<case>: <facts>", for example
 *
 *     inet.addrlen_zero: ret=-1 errno=EINVAL
 *
 * Facts must be deterministic: errno names, booleans, fixed addresses. Never
 * print ephemeral ports, pids, paths of temporary directories or timings.
 * conformance_test.go runs every probe natively and under the sandbox, each
 * time in a fresh network namespace, and compares the lines case by case.
 *
 * The namespace (see tests/internal/nettest) has lo up and a veth pair on
 * 10.231.0.0/24: this side is 10.231.0.1, the peer namespace 10.231.0.2.
 * conformance_test.go installs the peer's firewall rules and listener, see
 * the PEER_PORT_* constants below.
 */
#ifndef PROBE_H
#define PROBE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>

#define LOCAL_IP "10.231.0.1"
#define PEER_IP "10.231.0.2"
#define SUBNET_BCAST_IP "10.231.0.255"
#define NOROUTE_IP "10.232.0.1"
#define LOCAL_IP6 "fd00:231::1"
#define PEER_IP6 "fd00:231::2"
#define NOROUTE_IP6 "2001:db8::1"

/* What the peer namespace does with TCP to PEER_IP (conformance_test.go). */
enum {
	PEER_PORT_OPEN = 7,        /* a listener that accepts */
	PEER_PORT_DROP = 9,        /* iptables DROP: a silent host */
	PEER_PORT_NETUNREACH = 10, /* REJECT icmp-net-unreachable */
	PEER_PORT_HOSTUNREACH = 11,/* REJECT icmp-host-unreachable */
	PEER_PORT_PROHIBITED = 12, /* REJECT icmp-admin-prohibited */
	PEER_PORT_RESET = 13,      /* REJECT tcp-reset */
	PEER_PORT_CLOSED = 14,     /* nothing: the kernel answers RST */
};

#define NOBODY 65534

static inline const char *errname(int e)
{
	static __thread char buf[8][16];
	static __thread int next;

	switch (e) {
#define E(x) \
	case x:  \
		return #x;
		E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG)
		E(ENOEXEC) E(EBADF) E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES)
		E(EFAULT) E(ENOTBLK) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV)
		E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY)
		E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK)
		E(EPIPE) E(EDOM) E(ERANGE) E(EDEADLK) E(ENAMETOOLONG) E(ENOLCK)
		E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOMSG) E(EIDRM) E(ENODATA)
		E(ETIME) E(ENONET) E(EPROTO) E(EBADMSG) E(EOVERFLOW) E(EILSEQ)
		E(ENOTSOCK) E(EDESTADDRREQ) E(EMSGSIZE) E(EPROTOTYPE)
		E(ENOPROTOOPT) E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT)
		E(EOPNOTSUPP) E(EPFNOSUPPORT) E(EAFNOSUPPORT) E(EADDRINUSE)
		E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH) E(ENETRESET)
		E(ECONNABORTED) E(ECONNRESET) E(ENOBUFS) E(EISCONN) E(ENOTCONN)
		E(ESHUTDOWN) E(ETOOMANYREFS) E(ETIMEDOUT) E(ECONNREFUSED)
		E(EHOSTDOWN) E(EHOSTUNREACH) E(EALREADY) E(EINPROGRESS) E(ESTALE)
		E(EDQUOT) E(ECANCELED) E(EOWNERDEAD) E(ENOTRECOVERABLE)
#undef E
	case 0:
		return "0";
	}
	next = (next + 1) % 8;
	snprintf(buf[next], sizeof buf[next], "E%d", e);
	return buf[next];
}

/* probe_init makes output line-buffered (children inherit no pending output)
 * and ignores SIGPIPE. Call it first in main. */
static inline void probe_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
}

__attribute__((format(printf, 4, 5))) static inline void
report(const char *name, long ret, int err, const char *fmt, ...)
{
	char facts[512];
	const char *f = facts;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(facts, sizeof facts, fmt, ap);
	va_end(ap);
	while (*f == ' ')
		f++;
	if (ret < 0)
		printf("%s: ret=%ld errno=%s%s%s\n", name, ret, errname(err),
		       *f ? " " : "", f);
	else
		printf("%s: ret=%ld%s%s\n", name, ret, *f ? " " : "", f);
}

/* fact prints a case line made only of facts. */
__attribute__((format(printf, 2, 3))) static inline void
fact(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* CASE runs call with errno cleared and prints "name: ret=R[ errno=E]",
 * followed by optional printf-style facts evaluated after the call. */
#define CASE(name, call, ...)                                   \
	do {                                                    \
		errno = 0;                                      \
		long r_ = (long)(call);                         \
		int e_ = errno;                                 \
		report((name), r_, e_, " " __VA_ARGS__);        \
	} while (0)

/* R runs call and yields "ok" on success or the errno name on failure. */
#define R(call)                                                 \
	({                                                      \
		errno = 0;                                      \
		long r_ = (long)(call);                         \
		r_ < 0 ? errname(errno) : "ok";                 \
	})

static inline void die(const char *what)
{
	fprintf(stderr, "probe setup failed: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(2);
}

/* ---- addresses ---- */

static inline struct sockaddr_in sin4(const char *ip, int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		die(ip);
	return a;
}

static inline struct sockaddr_in6 sin6(const char *ip, int port)
{
	struct sockaddr_in6 a;

	memset(&a, 0, sizeof a);
	a.sin6_family = AF_INET6;
	a.sin6_port = htons(port);
	if (inet_pton(AF_INET6, ip, &a.sin6_addr) != 1)
		die(ip);
	return a;
}

/* inaddr fills ss from ip (v4 or v6 by its spelling) and returns its size. */
static inline socklen_t inaddr(struct sockaddr_storage *ss, const char *ip,
			       int port)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(ip, ':')) {
		*(struct sockaddr_in6 *)ss = sin6(ip, port);
		return sizeof(struct sockaddr_in6);
	}
	*(struct sockaddr_in *)ss = sin4(ip, port);
	return sizeof(struct sockaddr_in);
}

/* sun_path_addr fills a filesystem Unix address; the length counts the NUL. */
static inline socklen_t sun_path_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof a->sun_path, "%s", path);
	return offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1;
}

/* sun_abstract_addr fills an abstract Unix address (no trailing NUL). */
static inline socklen_t sun_abstract_addr(struct sockaddr_un *a,
					  const char *name)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "%s", name);
	return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

/* ---- sockets ---- */

static inline int port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		die("getsockname");
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static inline int family_of(const char *ip)
{
	return strchr(ip, ':') ? AF_INET6 : AF_INET;
}

/* inet_sock returns a socket bound to ip:0; listening with backlog when
 * backlog >= 0. A bound socket that does not listen reserves a closed port:
 * nothing else can take it, and SYNs to it are answered with RST. */
static inline int inet_sock(const char *ip, int type, int backlog, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = inaddr(&ss, ip, 0);
	int one = 1;
	int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		die("bind");
	if (backlog >= 0 && listen(fd, backlog) < 0)
		die("listen");
	if (port)
		*port = port_of(fd);
	return fd;
}

static inline int tcp_listener(const char *ip, int *port)
{
	return inet_sock(ip, SOCK_STREAM, 4096, port);
}

/* closed_port returns a port on ip where nothing listens (kept reserved by
 * the returned fd). */
static inline int closed_port(const char *ip, int *fd)
{
	int port;

	*fd = inet_sock(ip, SOCK_STREAM, -1, &port);
	return port;
}

static inline int xsocket(int family, int type)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	return fd;
}

static inline void set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
		die("fcntl");
}

static inline int is_nonblock(int fd)
{
	return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

/* drain accepts and closes everything queued on a listener. */
static inline int drain(int lfd)
{
	int n = 0, c, nb = is_nonblock(lfd);

	set_nonblock(lfd, 1);
	while ((c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		close(c);
		n++;
	}
	set_nonblock(lfd, nb);
	return n;
}

/* ---- facts ---- */

static inline int same_sockaddr(const void *a, socklen_t alen, const void *b,
				socklen_t blen)
{
	struct sockaddr_storage x, y;

	memset(&x, 0, sizeof x);
	memset(&y, 0, sizeof y);
	memcpy(&x, a, alen < sizeof x ? alen : sizeof x);
	memcpy(&y, b, blen < sizeof y ? blen : sizeof y);
	if (x.ss_family != y.ss_family)
		return 0;
	switch (x.ss_family) {
	case AF_INET: {
		struct sockaddr_in *p = (void *)&x, *q = (void *)&y;

		return p->sin_port == q->sin_port && p->sin_addr.s_addr == q->sin_addr.s_addr;
	}
	case AF_INET6: {
		struct sockaddr_in6 *p = (void *)&x, *q = (void *)&y;

		return p->sin6_port == q->sin6_port &&
		       !memcmp(&p->sin6_addr, &q->sin6_addr, sizeof p->sin6_addr);
	}
	}
	return alen == blen && !memcmp(a, b, alen);
}

/* peer_is returns "match", "mismatch" or getpeername's errno name. */
static inline const char *peer_is(int fd, const void *want, socklen_t wlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return errname(errno);
	return same_sockaddr(&ss, len, want, wlen) ? "match" : "mismatch";
}

/* peer_str returns the peer address (without port) or the errno name. */
static inline const char *addr_str(int fd, int peer)
{
	static __thread char buf[4][INET6_ADDRSTRLEN + 8];
	static __thread int next;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char *b = buf[next = (next + 1) % 4];
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		     : getsockname(fd, (struct sockaddr *)&ss, &len);

	if (r < 0)
		return errname(errno);
	switch (ss.ss_family) {
	case AF_INET:
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, b, sizeof buf[0]);
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, b, sizeof buf[0]);
		break;
	case AF_UNIX:
		snprintf(b, sizeof buf[0], "unix(len=%u)", (unsigned)len);
		break;
	default:
		snprintf(b, sizeof buf[0], "family%d", ss.ss_family);
	}
	return b;
}

/* local_port_nonzero: 1 when getsockname shows a nonzero port. */
static inline int local_port_nonzero(int fd)
{
	return port_of(fd) != 0;
}

/* so_error reads (and so clears) SO_ERROR; "0" or an errno name. */
static inline const char *so_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return "getsockopt-failed";
	return errname(err);
}

static inline short poll1(int fd, short events, int ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r > 0 ? p.revents : 0;
}

/* events_str spells revents in a fixed order, "none" when empty. */
static inline const char *events_str(short ev)
{
	static __thread char buf[4][64];
	static __thread int next;
	char *b = buf[next = (next + 1) % 4];

	b[0] = 0;
	if (ev & POLLIN)
		strcat(b, "|IN");
	if (ev & POLLOUT)
		strcat(b, "|OUT");
	if (ev & POLLERR)
		strcat(b, "|ERR");
	if (ev & POLLHUP)
		strcat(b, "|HUP");
	if (ev & POLLRDHUP)
		strcat(b, "|RDHUP");
	if (ev & POLLNVAL)
		strcat(b, "|NVAL");
	return b[0] ? b + 1 : "none";
}

/* ---- a tarpit on loopback ----
 * A listener with backlog 0 holds one completed connection; while it is
 * queued, the kernel drops every further SYN, so a connect to it stays
 * pending (SYN retransmits at about 1 s, 3 s, ...). Accepting the queued
 * connection releases the tarpit for the next retransmitted SYN. */
struct tarpit {
	int lfd, filler;
	struct sockaddr_in addr;
};

static inline void tarpit_open(struct tarpit *tp)
{
	int port;

	tp->lfd = inet_sock("127.0.0.1", SOCK_STREAM, 0, &port);
	tp->addr = sin4("127.0.0.1", port);
	tp->filler = xsocket(AF_INET, SOCK_STREAM);
	if (connect(tp->filler, (struct sockaddr *)&tp->addr, sizeof tp->addr) < 0)
		die("tarpit filler");
	if (!(poll1(tp->lfd, POLLIN, 5000) & POLLIN))
		die("tarpit queue");
}

static inline void tarpit_close(struct tarpit *tp)
{
	close(tp->filler);
	close(tp->lfd);
}

/* ---- temporary directories ---- */

static inline int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

static char probe_dir_path[64];

static inline void probe_dir_remove(void)
{
	if (probe_dir_path[0])
		nftw(probe_dir_path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* probe_dir returns a fresh world-searchable directory, removed at exit. */
static inline const char *probe_dir(void)
{
	if (!probe_dir_path[0]) {
		strcpy(probe_dir_path, "/tmp/sbxprobe-XXXXXX");
		if (!mkdtemp(probe_dir_path))
			die("mkdtemp");
		chmod(probe_dir_path, 0755);
		atexit(probe_dir_remove);
	}
	return probe_dir_path;
}

/* path_in returns probe_dir()/name in a rotating static buffer. */
static inline const char *path_in(const char *name)
{
	static char buf[8][256];
	static int next;
	char *b = buf[next = (next + 1) % 8];

	snprintf(b, sizeof buf[0], "%s/%s", probe_dir(), name);
	return b;
}

/* ---- children ---- */

/* drop_privileges turns the calling process into nobody:nogroup with no
 * supplementary groups and no capabilities. */
static inline void drop_privileges(void)
{
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		die("drop privileges");
}

/* in_child runs fn in a forked child (unprivileged when unpriv is set) and
 * waits for it. The child's lines appear in order: the parent waits. */
static inline void in_child(int unpriv, void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (unpriv)
			drop_privileges();
		fn(arg);
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child failed: status %#x\n", status);
		exit(2);
	}
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}


/* SIGALRM for the signal cases: alarms counts deliveries, set_alarm_handler
 * installs the counter (with or without SA_RESTART), and alarm_every sends
 * SIGALRM every ms milliseconds (0 stops it). It repeats so that a signal
 * that comes before the call even starts cannot leave it blocked for good. */
static volatile sig_atomic_t alarms;

static inline void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static inline void set_alarm_handler(int restart)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
}

static inline void alarm_every(int ms)
{
	struct itimerval it = {{ms / 1000, (ms % 1000) * 1000}, {ms / 1000, (ms % 1000) * 1000}};

	setitimer(ITIMER_REAL, &it, NULL);
}

#endif /* PROBE_H */
