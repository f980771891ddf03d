/* inet6: AF_INET6 connects: loopback, v4-mapped addresses and IPV6_V6ONLY,
 * link-local scope, the unspecified address and the address length. */
#include "probe.h"

static int v6only(int fd, int on)
{
	return setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
}

static int sock6(int type, int only)
{
	int s = xsocket(AF_INET6, type);

	v6only(s, only);
	return s;
}

int main(void)
{
	struct sockaddr_in6 lis, a;
	struct sockaddr_in lis4;
	int lfd, lfd4, port, port4, s, cfd, i;
	static const int types[] = {SOCK_STREAM, SOCK_DGRAM};
	static const char *tname[] = {"tcp", "udp"};
	char name[96];

	probe_init();
	lfd = tcp_listener("::1", &port);
	lis = sin6("::1", port);
	lfd4 = tcp_listener("127.0.0.1", &port4);
	lis4 = sin4("127.0.0.1", port4);

	s = sock6(SOCK_STREAM, 0);
	CASE("inet6.tcp_loopback", connect(s, &lis, sizeof lis),
	     "peer=%s sockname_port_nonzero=%d sockname=%s", peer_is(s, &lis, sizeof lis),
	     local_port_nonzero(s), addr_str(s, 0));
	close(s);

	closed_port("::1", &cfd);
	a = sin6("::1", port_of(cfd));
	s = sock6(SOCK_STREAM, 0);
	CASE("inet6.tcp_refused", connect(s, &a, sizeof a));
	CASE("inet6.tcp_after_refused_listener", connect(s, &lis, sizeof lis),
	     "peer=%s", peer_is(s, &lis, sizeof lis));
	close(s);
	close(cfd);

	/* The unspecified address means this host. */
	a = sin6("::", port);
	s = sock6(SOCK_STREAM, 0);
	CASE("inet6.tcp_unspecified_addr", connect(s, &a, sizeof a),
	     "peer=%s sockname=%s", addr_str(s, 1), addr_str(s, 0));
	close(s);

	/* v4-mapped addresses, with and without IPV6_V6ONLY, TCP and UDP. */
	for (i = 0; i < 2; i++) {
		int only;

		a = sin6("::ffff:127.0.0.1", port4);
		for (only = 0; only < 2; only++) {
			s = sock6(types[i], only);
			snprintf(name, sizeof name, "inet6.%s_v4mapped_v6only_%s", tname[i],
				 only ? "on" : "off");
			CASE(name, connect(s, &a, sizeof a), "peer=%s sockname=%s",
			     peer_is(s, &a, sizeof a), addr_str(s, 0));
			close(s);
		}
		/* An AF_INET address padded to the IPv6 length. */
		{
			struct sockaddr_storage ss;

			memset(&ss, 0, sizeof ss);
			memcpy(&ss, &lis4, sizeof lis4);
			s = sock6(types[i], 0);
			snprintf(name, sizeof name, "inet6.%s_inet_family_len28", tname[i]);
			CASE(name, connect(s, (void *)&ss, sizeof a));
			close(s);
		}
		/* The v4-mapped unspecified address. */
		a = sin6("::ffff:0.0.0.0", port4);
		s = sock6(types[i], 0);
		snprintf(name, sizeof name, "inet6.%s_v4mapped_any", tname[i]);
		CASE(name, connect(s, &a, sizeof a), "peer=%s", addr_str(s, 1));
		close(s);
		/* A v4-mapped socket, then an IPv6 destination. */
		a = sin6("::ffff:127.0.0.1", port4);
		s = sock6(types[i], 0);
		connect(s, (void *)&a, sizeof a);
		snprintf(name, sizeof name, "inet6.%s_v4mapped_then_v6", tname[i]);
		CASE(name, connect(s, &lis, sizeof lis), "peer=%s", addr_str(s, 1));
		close(s);
	}
	drain(lfd4);

	/* A v4-mapped socket after an IPv6 bind. */
	s = sock6(SOCK_STREAM, 0);
	a = sin6("::1", 0);
	bind(s, (void *)&a, sizeof a);
	a = sin6("::ffff:127.0.0.1", port4);
	CASE("inet6.tcp_bound_v6_then_v4mapped", connect(s, &a, sizeof a));
	close(s);

	/* Link-local addresses need a scope. */
	for (i = 0; i < 2; i++) {
		a = sin6("fe80::1", 9);
		s = sock6(types[i], 0);
		snprintf(name, sizeof name, "inet6.%s_linklocal_no_scope", tname[i]);
		CASE(name, connect(s, &a, sizeof a));
		close(s);
		a.sin6_scope_id = 1;
		s = sock6(types[i], 0);
		snprintf(name, sizeof name, "inet6.%s_linklocal_scope_len24", tname[i]);
		CASE(name, connect(s, &a, 24));
		close(s);
		a.sin6_scope_id = 9999;
		s = sock6(types[i], 0);
		snprintf(name, sizeof name, "inet6.%s_linklocal_scope_missing_dev", tname[i]);
		CASE(name, connect(s, &a, sizeof a));
		close(s);
		/* A scope on a global address is ignored. */
		a = lis;
		a.sin6_scope_id = 9999;
		s = sock6(types[i], 0);
		snprintf(name, sizeof name, "inet6.%s_loopback_with_scope", tname[i]);
		CASE(name, connect(s, &a, sizeof a), "peer=%s", peer_is(s, &lis, sizeof lis));
		close(s);
		/* Flow information without IPV6_FLOWINFO_SEND is ignored. */
		a = lis;
		a.sin6_flowinfo = htonl(0x12345);
		s = sock6(types[i], 0);
		snprintf(name, sizeof name, "inet6.%s_flowinfo", tname[i]);
		CASE(name, connect(s, &a, sizeof a), "peer=%s", peer_is(s, &lis, sizeof lis));
		close(s);
	}
	{
		/* A link-local address on lo, which has none. */
		a = sin6("fe80::1", 9);
		a.sin6_scope_id = 1;
		s = sock6(SOCK_STREAM, 0);
		CASE("inet6.tcp_linklocal_scope_lo", connect(s, &a, sizeof a));
		close(s);
	}

	/* The length of a sockaddr_in6: RFC 2133's 24 bytes, or 28. */
	{
		static const socklen_t lens[] = {23, 24, 25, 27, 28, 29, 128};
		size_t j;

		for (j = 0; j < sizeof lens / sizeof lens[0]; j++) {
			struct sockaddr_storage ss;

			memset(&ss, 0, sizeof ss);
			memcpy(&ss, &lis, sizeof lis);
			s = sock6(SOCK_STREAM, 0);
			snprintf(name, sizeof name, "inet6.tcp_len%u", lens[j]);
			CASE(name, connect(s, (void *)&ss, lens[j]));
			close(s);
			s = sock6(SOCK_DGRAM, 0);
			snprintf(name, sizeof name, "inet6.udp_len%u", lens[j]);
			CASE(name, connect(s, (void *)&ss, lens[j]));
			close(s);
		}
	}
	drain(lfd);

	/* Multicast and unroutable destinations. */
	for (i = 0; i < 2; i++) {
		a = sin6("ff02::1", 9);
		a.sin6_scope_id = 1;
		s = sock6(types[i], 0);
		snprintf(name, sizeof name, "inet6.%s_multicast_linklocal", tname[i]);
		CASE(name, connect(s, &a, sizeof a));
		close(s);
		a = sin6("ff0e::1", 9);
		s = sock6(types[i], 0);
		snprintf(name, sizeof name, "inet6.%s_multicast_global", tname[i]);
		CASE(name, connect(s, &a, sizeof a));
		close(s);
		a = sin6(NOROUTE_IP6, 9);
		s = sock6(types[i], 0);
		snprintf(name, sizeof name, "inet6.%s_no_route", tname[i]);
		CASE(name, connect(s, &a, sizeof a));
		close(s);
	}

	/* UDP association. */
	{
		int u = inet_sock("::1", SOCK_DGRAM, -1, NULL);

		a = sin6("::1", port_of(u));
		s = sock6(SOCK_DGRAM, 0);
		CASE("inet6.udp_loopback", connect(s, &a, sizeof a),
		     "peer=%s sockname_port_nonzero=%d", peer_is(s, &a, sizeof a),
		     local_port_nonzero(s));
		close(s);
		a = sin6("::", 9);
		s = sock6(SOCK_DGRAM, 0);
		CASE("inet6.udp_unspecified_addr", connect(s, &a, sizeof a),
		     "peer=%s sockname=%s", addr_str(s, 1), addr_str(s, 0));
		close(s);
		close(u);
	}

	/* The test subnet's own address. */
	a = sin6(LOCAL_IP6, 9);
	s = sock6(SOCK_DGRAM, 0);
	CASE("inet6.udp_own_subnet_addr", connect(s, &a, sizeof a), "peer=%s sockname=%s",
	     addr_str(s, 1), addr_str(s, 0));
	close(s);
	a = sin6(PEER_IP6, 9);
	s = sock6(SOCK_DGRAM, 0);
	CASE("inet6.udp_peer", connect(s, &a, sizeof a), "peer=%s sockname=%s",
	     addr_str(s, 1), addr_str(s, 0));
	close(s);

	close(lfd);
	close(lfd4);
	return 0;
}
