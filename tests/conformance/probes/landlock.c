/*
 * landlock.c: a program's own Landlock network rules and abstract Unix
 * scope (in the spirit of LTP's landlock08 and landlock09). Every case that
 * restricts runs in a fresh child: a restriction cannot be undone.
 */
#include "probe.h"

#include <sys/prctl.h>

/* The uapi, spelled out: the build host's header may predate ABI 6. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};
struct ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
} __attribute__((packed));

#define LL_VERSION (1U << 0)
#define LL_RULE_NET_PORT 2
#define LL_BIND_TCP (1ULL << 0)
#define LL_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)

static int abi;
static int portA, portB, portC, portClosed, port0Listen;
static int portA6, portB6;

static long ll_create(const struct ll_ruleset_attr *a, size_t size, uint32_t flags)
{
	return syscall(SYS_landlock_create_ruleset, a, size, flags);
}

static long ll_add_port(int rs, uint64_t access, uint64_t port)
{
	struct ll_net_port_attr p = {.allowed_access = access, .port = port};

	return syscall(SYS_landlock_add_rule, rs, LL_RULE_NET_PORT, &p, 0);
}

static long ll_restrict(int rs) { return syscall(SYS_landlock_restrict_self, rs, 0); }

/* restrict_ports restricts the calling thread: handled net accesses, then
 * ports allowed for CONNECT_TCP (a 0-terminated list; -1 ends with port 0). */
static void restrict_ports(uint64_t handled, uint64_t scoped, const int *ports)
{
	struct ll_ruleset_attr a = {.handled_access_net = handled, .scoped = scoped};
	size_t size = abi >= 6 ? sizeof a : 16;
	int rs = ll_create(&a, size, 0);

	if (rs < 0)
		die("landlock_create_ruleset");
	for (; ports && *ports; ports++)
		if (ll_add_port(rs, handled & (LL_CONNECT_TCP | LL_BIND_TCP), *ports < 0 ? 0 : *ports) < 0)
			die("landlock_add_rule");
	if (ll_restrict(rs) < 0)
		die("landlock_restrict_self");
	close(rs);
}

static int tcp_to(const char *ip, int port, int nonblock)
{
	struct sockaddr_storage ss;
	socklen_t len = inaddr(&ss, ip, port);
	int fd = xsocket(ss.ss_family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0));
	int r = connect(fd, (struct sockaddr *)&ss, len);
	int e = errno;

	close(fd);
	errno = e;
	return r;
}

#define TCP(name, ip, port) CASE(name, tcp_to(ip, port, 0))

static void nnp(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("no_new_privs");
}

static void *thread_connect(void *arg)
{
	CASE((const char *)arg, tcp_to("127.0.0.1", portB, 0));
	return NULL;
}

static void *thread_restrict(void *arg)
{
	int ports[] = {portA, 0};

	(void)arg;
	restrict_ports(LL_CONNECT_TCP, 0, ports);
	CASE("thread.self_restricted_b", tcp_to("127.0.0.1", portB, 0));
	return NULL;
}

static pthread_barrier_t bar;

static void *thread_waits(void *arg)
{
	pthread_barrier_wait(&bar); /* created before, runs after the restriction */
	CASE((const char *)arg, tcp_to("127.0.0.1", portB, 0));
	return NULL;
}

static void tcp_cases(void *arg)
{
	const char *p = arg;
	char n[64];
	int ports[] = {portA, portA6, portClosed, 0};
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;
	struct sockaddr_storage un;
	int fd, pfd[2];

	nnp();
	restrict_ports(LL_CONNECT_TCP, 0, ports);
#define N(s) (snprintf(n, sizeof n, "%s.%s", p, s), n)
	TCP(N("v4_allowed"), "127.0.0.1", portA);
	TCP(N("v4_denied"), "127.0.0.1", portB);
	TCP(N("v4_allowed_closed"), "127.0.0.1", portClosed);
	TCP(N("v4_denied_peer"), PEER_IP, PEER_PORT_OPEN);
	TCP(N("v4_denied_noroute"), NOROUTE_IP, portB);
	CASE(N("v4_denied_nonblock"), tcp_to("127.0.0.1", portB, 1));
	TCP(N("v6_allowed"), "::1", portA6);
	TCP(N("v6_denied"), "::1", portB6);

	/* Landlock looks at the address's family, before the protocol does. */
	a4 = sin4("127.0.0.1", portB);
	fd = xsocket(AF_INET6, SOCK_STREAM);
	CASE(N("v4addr_on_v6_denied"), connect(fd, (struct sockaddr *)&a4, sizeof a4));
	a4.sin_port = htons(portA);
	CASE(N("v4addr_on_v6_allowed"), connect(fd, (struct sockaddr *)&a4, sizeof a4));
	close(fd);
	a6 = sin6("::1", portB6);
	fd = xsocket(AF_INET, SOCK_STREAM);
	CASE(N("v6addr_on_v4_denied"), connect(fd, (struct sockaddr *)&a6, sizeof a6));
	CASE(N("v6addr_on_v4_short"), connect(fd, (struct sockaddr *)&a6, 20));
	a4 = sin4("127.0.0.1", portB);
	CASE(N("v4_short"), connect(fd, (struct sockaddr *)&a4, 8));
	CASE(N("v4_len1"), connect(fd, (struct sockaddr *)&a4, 1));
	CASE(N("v4_len0"), connect(fd, NULL, 0));
	CASE(N("v4_efault"), connect(fd, (struct sockaddr *)8, sizeof a4));
	memset(&un, 0, sizeof un);
	un.ss_family = AF_UNIX;
	CASE(N("unix_addr_on_tcp"), connect(fd, (struct sockaddr *)&un, sizeof un));
	close(fd);
	CASE(N("ebadf"), connect(999, (struct sockaddr *)&a4, sizeof a4));
	if (pipe(pfd) < 0)
		die("pipe");
	CASE(N("enotsock"), connect(pfd[0], (struct sockaddr *)&a4, sizeof a4));
	close(pfd[0]);
	close(pfd[1]);

	/* A connected socket: Landlock answers before EISCONN. */
	fd = xsocket(AF_INET, SOCK_STREAM);
	a4 = sin4("127.0.0.1", portA);
	CASE(N("connected_allowed"), connect(fd, (struct sockaddr *)&a4, sizeof a4));
	CASE(N("connected_again_allowed"), connect(fd, (struct sockaddr *)&a4, sizeof a4));
	a4.sin_port = htons(portB);
	CASE(N("connected_again_denied"), connect(fd, (struct sockaddr *)&a4, sizeof a4));
	/* AF_UNSPEC dissolves the association: always allowed. */
	memset(&un, 0, sizeof un);
	un.ss_family = AF_UNSPEC;
	((struct sockaddr_in *)&un)->sin_port = htons(portB);
	CASE(N("unspec_disconnect"), connect(fd, (struct sockaddr *)&un, sizeof(struct sockaddr_in)));
	CASE(N("unspec_short"), connect(fd, (struct sockaddr *)&un, 2));
	CASE(N("after_unspec_denied"), connect(fd, (struct sockaddr *)&a4, sizeof a4));
	close(fd);

	/* Port 0: no rule names it. */
	TCP(N("port0"), "127.0.0.1", 0);

	/* UDP is not restricted by Landlock. */
	fd = xsocket(AF_INET, SOCK_DGRAM);
	CASE(N("udp_connect_denied_port"), connect(fd, (struct sockaddr *)&a4, sizeof a4));
	close(fd);

	/* TCP Fast Open does not go through security_socket_connect. */
	fd = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	CASE(N("fastopen_denied_port"), sendto(fd, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&a4, sizeof a4));
	close(fd);

	/* A child inherits the domain. */
	if (fork() == 0) {
		TCP(N("child_denied"), "127.0.0.1", portB);
		TCP(N("child_allowed"), "127.0.0.1", portA);
		fflush(stdout);
		_exit(0);
	}
	wait(NULL);
	/* A thread created after the restriction inherits it. */
	{
		pthread_t t;
		pthread_create(&t, NULL, thread_connect, N("thread_denied"));
		pthread_join(t, NULL);
	}
#undef N
}

/* Two layers: both must allow. */
static void nested_cases(void *arg)
{
	int l1[] = {portA, portB, 0}, l2[] = {portA, portC, 0};

	(void)arg;
	nnp();
	restrict_ports(LL_CONNECT_TCP, 0, l1);
	TCP("nested.one_layer_b", "127.0.0.1", portB);
	restrict_ports(LL_CONNECT_TCP, 0, l2);
	TCP("nested.a", "127.0.0.1", portA);
	TCP("nested.b", "127.0.0.1", portB);
	TCP("nested.c", "127.0.0.1", portC);
	/* A layer that handles only BIND_TCP does not restrict connect. */
	restrict_ports(LL_BIND_TCP, 0, (int[]){portA, 0});
	TCP("nested.bind_layer_a", "127.0.0.1", portA);
}

/* ABI 7's logging flags: a layer all the same; fd -1 with
 * LOG_SUBDOMAINS_OFF adds none. */
static void flag_cases(void *arg)
{
	struct ll_ruleset_attr a = {.handled_access_net = LL_CONNECT_TCP};
	int rs;

	(void)arg;
	nnp();
	rs = ll_create(&a, 16, 0);
	ll_add_port(rs, LL_CONNECT_TCP, portA);
	CASE("flags.subdomains_off_no_fd", syscall(SYS_landlock_restrict_self, -1, 1U << 2));
	TCP("flags.after_no_fd_b", "127.0.0.1", portB);
	CASE("flags.same_exec_off", syscall(SYS_landlock_restrict_self, rs, 1U << 0));
	TCP("flags.a", "127.0.0.1", portA);
	TCP("flags.b", "127.0.0.1", portB);
	CASE("flags.no_fd_other_flag", syscall(SYS_landlock_restrict_self, -1, 1U << 0));
	close(rs);
}

/* BIND_TCP and CONNECT_TCP handled: bind (native) then connect. */
static void bind_cases(void *arg)
{
	int fd, lport;
	struct sockaddr_in a;
	int closedfd;

	(void)arg;
	lport = closed_port("127.0.0.1", &closedfd);
	close(closedfd); /* a free port to bind to */
	nnp();
	restrict_ports(LL_CONNECT_TCP | LL_BIND_TCP, 0, (int[]){portA, lport, 0});
	fd = xsocket(AF_INET, SOCK_STREAM);
	a = sin4("127.0.0.1", portB);
	CASE("bind.denied_port", bind(fd, (struct sockaddr *)&a, sizeof a));
	a = sin4("127.0.0.1", lport);
	CASE("bind.allowed_port", bind(fd, (struct sockaddr *)&a, sizeof a));
	a = sin4("127.0.0.1", portA);
	CASE("bind.then_connect_allowed", connect(fd, (struct sockaddr *)&a, sizeof a));
	close(fd);
	fd = xsocket(AF_INET, SOCK_STREAM);
	a = sin4("127.0.0.1", lport);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
	bind(fd, (struct sockaddr *)&a, sizeof a);
	a = sin4("127.0.0.1", portB);
	CASE("bind.then_connect_denied", connect(fd, (struct sockaddr *)&a, sizeof a));
	close(fd);
}

/* Threads: a restriction is per thread. */
static void thread_cases(void *arg)
{
	pthread_t t;

	(void)arg;
	nnp();
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&t, NULL, thread_waits, "thread.created_before_b");
	restrict_ports(LL_CONNECT_TCP, 0, (int[]){portA, 0});
	TCP("thread.main_b", "127.0.0.1", portB);
	pthread_barrier_wait(&bar);
	pthread_join(t, NULL);
}

static void thread_self_cases(void *arg)
{
	pthread_t t;

	(void)arg;
	nnp();
	pthread_create(&t, NULL, thread_restrict, NULL);
	pthread_join(t, NULL);
	TCP("thread.others_unrestricted_b", "127.0.0.1", portB);
}

/* ---- abstract Unix sockets (landlock09) ---- */

static int unix_server(const char *name, int type)
{
	struct sockaddr_un a;
	socklen_t len = sun_abstract_addr(&a, name);
	int fd = xsocket(AF_UNIX, type);

	if (bind(fd, (struct sockaddr *)&a, len) < 0)
		die("bind abstract");
	if (type != SOCK_DGRAM && listen(fd, 16) < 0)
		die("listen");
	return fd;
}

static int unix_connect(const char *name, int type)
{
	struct sockaddr_un a;
	socklen_t len = sun_abstract_addr(&a, name);
	int fd = xsocket(AF_UNIX, type);
	int r = connect(fd, (struct sockaddr *)&a, len);
	int e = errno;

	close(fd);
	errno = e;
	return r;
}

static int unix_sendto(const char *name)
{
	struct sockaddr_un a;
	socklen_t len = sun_abstract_addr(&a, name);
	int fd = xsocket(AF_UNIX, SOCK_DGRAM);
	int r = sendto(fd, "x", 1, 0, (struct sockaddr *)&a, len);
	int e = errno;

	close(fd);
	errno = e;
	return r;
}

static int unix_sendmsg(const char *name)
{
	struct sockaddr_un a;
	socklen_t len = sun_abstract_addr(&a, name);
	struct iovec iov = {"x", 1};
	struct msghdr m = {.msg_name = &a, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
	int fd = xsocket(AF_UNIX, SOCK_DGRAM);
	int r = sendmsg(fd, &m, 0);
	int e = errno;

	close(fd);
	errno = e;
	return r;
}

static void scope_cases(void *arg)
{
	char before[64], after[64], dgb[64], dga[64], child[64];
	const char *path = path_in("ll.sock");
	struct sockaddr_un pa;
	socklen_t plen;
	int fd, afd, pfd, pre, dpre;

	(void)arg;
	snprintf(before, sizeof before, "sbx-ll-before-%d", getpid());
	snprintf(after, sizeof after, "sbx-ll-after-%d", getpid());
	snprintf(dgb, sizeof dgb, "sbx-ll-dgb-%d", getpid());
	snprintf(dga, sizeof dga, "sbx-ll-dga-%d", getpid());
	snprintf(child, sizeof child, "sbx-ll-child-%d", getpid());
	pre = unix_server(before, SOCK_STREAM);
	dpre = unix_server(dgb, SOCK_DGRAM);
	plen = sun_path_addr(&pa, path);
	unlink(path);
	pfd = xsocket(AF_UNIX, SOCK_STREAM);
	if (bind(pfd, (struct sockaddr *)&pa, plen) < 0 || listen(pfd, 16) < 0)
		die("bind path");
	nnp();
	restrict_ports(0, LL_SCOPE_ABSTRACT_UNIX, NULL);
	CASE("scope.stream_created_before", unix_connect(before, SOCK_STREAM));
	CASE("scope.stream_missing", unix_connect("sbx-ll-missing", SOCK_STREAM));
	CASE("scope.stream_wrong_type", unix_connect(before, SOCK_SEQPACKET));
	CASE("scope.dgram_connect_before", unix_connect(dgb, SOCK_DGRAM));
	CASE("scope.dgram_sendto_before", unix_sendto(dgb));
	CASE("scope.dgram_sendmsg_before", unix_sendmsg(dgb));
	CASE("scope.stream_sendto_before", unix_sendto(before));
	fd = xsocket(AF_UNIX, SOCK_STREAM);
	CASE("scope.pathname", connect(fd, (struct sockaddr *)&pa, plen));
	close(fd);
	close(unix_server(after, SOCK_STREAM)); /* bound then gone */
	afd = unix_server(after, SOCK_STREAM);
	CASE("scope.stream_created_after", unix_connect(after, SOCK_STREAM));
	close(unix_server(dga, SOCK_DGRAM));
	fd = unix_server(dga, SOCK_DGRAM);
	CASE("scope.dgram_sendto_after", unix_sendto(dga));
	CASE("scope.dgram_connect_after", unix_connect(dga, SOCK_DGRAM));
	/* TCP is not restricted by a scope-only ruleset. */
	TCP("scope.tcp_b", "127.0.0.1", portB);
	/* A nested domain: the child cannot reach its parent's server; the
	 * parent reaches the child's. */
	{
		int ready[2], hold[2];
		char c;

		if (pipe(ready) < 0 || pipe(hold) < 0)
			die("pipe");
		fflush(stdout);
		if (fork() == 0) {
			int cfd;

			close(ready[0]);
			close(hold[1]);
			restrict_ports(0, LL_SCOPE_ABSTRACT_UNIX, NULL);
			CASE("scope.nested_to_parent", unix_connect(after, SOCK_STREAM));
			cfd = unix_server(child, SOCK_STREAM);
			fflush(stdout);
			if (write(ready[1], "r", 1) != 1)
				die("write");
			if (read(hold[0], &c, 1) < 0)
				die("read");
			close(cfd);
			_exit(0);
		}
		close(ready[1]);
		close(hold[0]);
		if (read(ready[0], &c, 1) != 1)
			die("read ready");
		CASE("scope.parent_to_nested", unix_connect(child, SOCK_STREAM));
		close(hold[1]);
		close(ready[0]);
		wait(NULL);
	}
	close(fd);
	close(afd);
	close(pre);
	close(dpre);
	close(pfd);
	unlink(path);
}

int main(void)
{
	struct ll_ruleset_attr none = {0};
	int fds[8], closedfd, lfd;
	int i = 0;

	probe_init();
	abi = ll_create(NULL, 0, LL_VERSION);
	fact("abi", "net=%s scope=%s", abi >= 4 ? "yes" : "no", abi >= 6 ? "yes" : "no");
	CASE("create.empty", ll_create(&none, sizeof none, 0));
	CASE("create.short", ll_create(&none, 4, 0));
	CASE("create.efault", ll_create((void *)8, 16, 0));
	CASE("create.bad_flags", ll_create(NULL, 0, 1U << 7));
	CASE("restrict.ebadf", ll_restrict(999));
	CASE("add_rule.ebadf", ll_add_port(999, LL_CONNECT_TCP, 80));
	if (abi < 4)
		return 0;

	fds[i++] = tcp_listener("127.0.0.1", &portA);
	fds[i++] = tcp_listener("127.0.0.1", &portB);
	fds[i++] = tcp_listener("127.0.0.1", &portC);
	fds[i++] = tcp_listener("::1", &portA6);
	fds[i++] = tcp_listener("::1", &portB6);
	(void)port0Listen;
	portClosed = closed_port("127.0.0.1", &closedfd);
	{
		struct ll_ruleset_attr a = {.handled_access_net = LL_CONNECT_TCP};
		int rs = ll_create(&a, 16, 0);

		CASE("add_rule.port_too_big", ll_add_port(rs, LL_CONNECT_TCP, 65536));
		CASE("add_rule.not_handled", ll_add_port(rs, LL_BIND_TCP, 80));
		CASE("add_rule.no_access", ll_add_port(rs, 0, 80));
		CASE("add_rule.efault", syscall(SYS_landlock_add_rule, rs, LL_RULE_NET_PORT, (void *)8, 0));
		CASE("add_rule.bad_type", ll_add_port(rs + 0, LL_CONNECT_TCP, 80) < 0 ? -1 :
		     syscall(SYS_landlock_add_rule, rs, 99, &a, 0));
		CASE("restrict.bad_flags", syscall(SYS_landlock_restrict_self, rs, 1U << 9));
		lfd = xsocket(AF_INET, SOCK_STREAM);
		CASE("restrict.not_ruleset", ll_restrict(lfd));
		close(lfd);
		close(rs);
	}
	in_child(0, tcp_cases, "root");
	in_child(1, tcp_cases, "nobody");
	in_child(0, nested_cases, NULL);
	in_child(1, bind_cases, NULL);
	if (abi >= 7)
		in_child(0, flag_cases, NULL);
	in_child(0, thread_cases, NULL);
	in_child(0, thread_self_cases, NULL);
	if (abi >= 6) {
		in_child(0, scope_cases, NULL);
	}
	while (i > 0)
		close(fds[--i]);
	close(closedfd);
	return 0;
}
