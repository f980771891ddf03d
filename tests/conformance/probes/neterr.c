/* neterr: errors that come from the network: refusals and ICMP errors from
 * the peer namespace, a silent host, missing routes, broadcast, four-tuple
 * collisions and exhausted local ports. */
#include "probe.h"

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51 /* linux/in.h, Linux 6.3 */
#endif

struct remote {
	const char *name;
	int port;
};

static const struct remote remotes[] = {
	{"open", PEER_PORT_OPEN},
	{"closed", PEER_PORT_CLOSED},
	{"reset", PEER_PORT_RESET},
	{"net_unreachable", PEER_PORT_NETUNREACH},
	{"host_unreachable", PEER_PORT_HOSTUNREACH},
	{"admin_prohibited", PEER_PORT_PROHIBITED},
};

static void remote(void)
{
	char name[96];
	struct sockaddr_in a;
	int s;

	for (size_t i = 0; i < sizeof remotes / sizeof remotes[0]; i++) {
		a = sin4(PEER_IP, remotes[i].port);
		s = xsocket(AF_INET, SOCK_STREAM);
		snprintf(name, sizeof name, "neterr.tcp_remote_%s", remotes[i].name);
		CASE(name, connect(s, &a, sizeof a), "peer=%s sockname=%s so_error=%s",
		     peer_is(s, &a, sizeof a), addr_str(s, 0), so_error(s));
		snprintf(name, sizeof name, "neterr.tcp_remote_%s_retry", remotes[i].name);
		CASE(name, connect(s, &a, sizeof a));
		close(s);

		/* Non-blocking: the same outcome through poll and SO_ERROR. */
		s = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
		snprintf(name, sizeof name, "neterr.tcp_nb_remote_%s", remotes[i].name);
		CASE(name, connect(s, &a, sizeof a));
		snprintf(name, sizeof name, "neterr.tcp_nb_remote_%s_poll", remotes[i].name);
		fact(name, "%s", events_str(poll1(s, POLLOUT, 3000)));
		snprintf(name, sizeof name, "neterr.tcp_nb_remote_%s_so_error", remotes[i].name);
		fact(name, "%s", so_error(s));
		snprintf(name, sizeof name, "neterr.tcp_nb_remote_%s_second", remotes[i].name);
		CASE(name, connect(s, &a, sizeof a));
		close(s);
	}

	/* The peer over IPv6. */
	{
		struct sockaddr_in6 b = sin6(PEER_IP6, PEER_PORT_OPEN);

		s = xsocket(AF_INET6, SOCK_STREAM);
		CASE("neterr.tcp6_remote_open", connect(s, &b, sizeof b), "peer=%s sockname=%s",
		     peer_is(s, &b, sizeof b), addr_str(s, 0));
		close(s);
		b = sin6(PEER_IP6, PEER_PORT_CLOSED);
		s = xsocket(AF_INET6, SOCK_STREAM);
		CASE("neterr.tcp6_remote_closed", connect(s, &b, sizeof b));
		close(s);
	}
}

/* A silent host: the SYN is dropped in the peer namespace. */
static void silent(void)
{
	struct sockaddr_in a = sin4(PEER_IP, PEER_PORT_DROP);
	struct timeval tv = {0, 200 * 1000};
	unsigned ut = 100;
	int s;

	s = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	CASE("neterr.tcp_silent_nb", connect(s, &a, sizeof a));
	fact("neterr.tcp_silent_nb_poll_200ms", "%s", events_str(poll1(s, POLLOUT, 200)));
	fact("neterr.tcp_silent_nb_so_error", "%s", so_error(s));
	CASE("neterr.tcp_silent_nb_second", connect(s, &a, sizeof a));
	close(s);

	s = xsocket(AF_INET, SOCK_STREAM);
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	CASE("neterr.tcp_silent_sndtimeo", connect(s, &a, sizeof a), "peer=%s",
	     peer_is(s, &a, sizeof a));
	close(s);

	/* TCP_USER_TIMEOUT gives up at the first retransmission (~1 s). */
	s = xsocket(AF_INET, SOCK_STREAM);
	setsockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut);
	CASE("neterr.tcp_silent_user_timeout", connect(s, &a, sizeof a), "so_error=%s peer=%s",
	     so_error(s), peer_is(s, &a, sizeof a));
	CASE("neterr.tcp_silent_user_timeout_retry_nb",
	     (set_nonblock(s, 1), connect(s, &a, sizeof a)));
	close(s);

	s = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	setsockopt(s, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut);
	CASE("neterr.tcp_silent_user_timeout_nb", connect(s, &a, sizeof a));
	fact("neterr.tcp_silent_user_timeout_nb_poll", "%s", events_str(poll1(s, POLLOUT, 5000)));
	fact("neterr.tcp_silent_user_timeout_nb_so_error", "%s", so_error(s));
	CASE("neterr.tcp_silent_user_timeout_nb_second", connect(s, &a, sizeof a));
	close(s);
}

static void routes(void)
{
	struct sockaddr_in a = sin4(NOROUTE_IP, 80);
	struct sockaddr_in6 b = sin6(NOROUTE_IP6, 80);
	int s;

	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("neterr.tcp_no_route", connect(s, &a, sizeof a), "peer=%s sockname=%s",
	     peer_is(s, &a, sizeof a), addr_str(s, 0));
	CASE("neterr.tcp_no_route_retry", connect(s, &a, sizeof a));
	close(s);
	s = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	CASE("neterr.tcp_nb_no_route", connect(s, &a, sizeof a), "so_error=%s", so_error(s));
	close(s);
	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("neterr.udp_no_route", connect(s, &a, sizeof a), "peer=%s",
	     peer_is(s, &a, sizeof a));
	close(s);
	s = xsocket(AF_INET6, SOCK_STREAM);
	CASE("neterr.tcp6_no_route", connect(s, &b, sizeof b));
	close(s);
	s = xsocket(AF_INET6, SOCK_DGRAM);
	CASE("neterr.udp6_no_route", connect(s, &b, sizeof b));
	close(s);
}

static void broadcast(void)
{
	struct sockaddr_in a = sin4(SUBNET_BCAST_IP, 9);
	int s, one = 1;

	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("neterr.udp_broadcast", connect(s, &a, sizeof a), "peer=%s",
	     peer_is(s, &a, sizeof a));
	close(s);
	s = xsocket(AF_INET, SOCK_DGRAM);
	setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
	CASE("neterr.udp_broadcast_so_broadcast", connect(s, &a, sizeof a), "peer=%s",
	     peer_is(s, &a, sizeof a));
	close(s);
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("neterr.tcp_broadcast", connect(s, &a, sizeof a));
	close(s);
	s = xsocket(AF_INET, SOCK_STREAM);
	setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
	CASE("neterr.tcp_broadcast_so_broadcast", connect(s, &a, sizeof a));
	close(s);
	/* The network address of the subnet is not a broadcast address. */
	a = sin4("10.231.0.0", 9);
	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("neterr.udp_subnet_network_addr", connect(s, &a, sizeof a));
	close(s);
}

static void local_addresses(void)
{
	struct sockaddr_in lis, me;
	int lfd, port, a, b, one = 1, tmp;
	unsigned range;

	lfd = tcp_listener("127.0.0.1", &port);
	lis = sin4("127.0.0.1", port);

	/* Two sockets bound to the same address and port (SO_REUSEADDR),
	 * connecting to the same destination: the second four-tuple is taken. */
	a = xsocket(AF_INET, SOCK_STREAM);
	b = xsocket(AF_INET, SOCK_STREAM);
	setsockopt(a, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(b, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	me = sin4("127.0.0.1", 0);
	if (bind(a, (void *)&me, sizeof me) < 0)
		die("bind");
	me = sin4("127.0.0.1", port_of(a));
	CASE("neterr.fourtuple_second_bind", bind(b, &me, sizeof me));
	CASE("neterr.fourtuple_first", connect(a, &lis, sizeof lis));
	CASE("neterr.fourtuple_second", connect(b, &lis, sizeof lis), "peer=%s",
	     peer_is(b, &lis, sizeof lis));
	/* A different destination is a different four-tuple. */
	{
		int l2, p2;
		struct sockaddr_in lis2;

		l2 = tcp_listener("127.0.0.1", &p2);
		lis2 = sin4("127.0.0.1", p2);
		CASE("neterr.fourtuple_second_other_dest", connect(b, &lis2, sizeof lis2));
		close(l2);
	}
	close(a);
	close(b);

	/* A per-socket local port range of one free port: the first connect
	 * takes it, the second finds no port. */
	tmp = inet_sock("127.0.0.1", SOCK_STREAM, -1, &port);
	close(tmp);
	range = (unsigned)port << 16 | (unsigned)port;
	a = xsocket(AF_INET, SOCK_STREAM);
	b = xsocket(AF_INET, SOCK_STREAM);
	CASE("neterr.port_range_setsockopt", setsockopt(a, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range));
	setsockopt(b, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range);
	CASE("neterr.port_range_first", connect(a, &lis, sizeof lis), "port_is_range=%d",
	     port_of(a) == (int)(range & 0xffff));
	CASE("neterr.port_range_exhausted", connect(b, &lis, sizeof lis), "peer=%s",
	     peer_is(b, &lis, sizeof lis));
	close(a);
	close(b);

	/* Binding to an address this host does not have. */
	a = xsocket(AF_INET, SOCK_STREAM);
	me = sin4(PEER_IP, 0);
	CASE("neterr.bind_foreign_addr", bind(a, &me, sizeof me));
	close(a);
	close(lfd);
}

static void prototype(void)
{
	struct sockaddr_un a;
	socklen_t len = sun_path_addr(&a, path_in("stream.sock"));
	int l = xsocket(AF_UNIX, SOCK_STREAM), s;

	if (bind(l, (void *)&a, len) < 0 || listen(l, 8) < 0)
		die("listen");
	s = xsocket(AF_UNIX, SOCK_DGRAM);
	CASE("neterr.unix_dgram_to_stream", connect(s, &a, len));
	close(s);
	close(l);
}

int main(void)
{
	probe_init();
	remote();
	silent();
	routes();
	broadcast();
	local_addresses();
	prototype();
	return 0;
}
