/* unspec: connect with an AF_UNSPEC address dissolves the association of
 * TCP, UDP and Unix datagram sockets. */
#include "probe.h"

static const struct sockaddr unspec = {.sa_family = AF_UNSPEC};

/* got reports where a datagram waiting on fd came from ("from=ADDR"), or
 * "none". */
static const char *got(int fd)
{
	static char buf[4][INET6_ADDRSTRLEN + 8];
	static int next;
	char *b = buf[next = (next + 1) % 4], data[16];
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	void *a;

	if (!(poll1(fd, POLLIN, 200) & POLLIN) ||
	    recvfrom(fd, data, sizeof data, MSG_DONTWAIT, (void *)&ss, &len) < 0)
		return "none";
	a = ss.ss_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
				     : (void *)&((struct sockaddr_in *)&ss)->sin_addr;
	strcpy(b, "from=");
	inet_ntop(ss.ss_family, a, b + 5, INET6_ADDRSTRLEN);
	return b;
}

/* dual returns an unbound IPv6 socket that takes IPv4 too. */
static int dual(int type)
{
	int s = xsocket(AF_INET6, type), zero = 0;

	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
	return s;
}

static void bind_to(int s, const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t len = inaddr(&ss, ip, 0);

	if (bind(s, (void *)&ss, len) < 0)
		die("bind");
}

static struct msghdr msg1(struct iovec *iov, void *name, socklen_t len)
{
	iov->iov_base = "x";
	iov->iov_len = 1;
	return (struct msghdr){.msg_name = name, .msg_namelen = len, .msg_iov = iov, .msg_iovlen = 1};
}

/* AF_UNSPEC sends: udp_sendmsg reads the rest as AF_INET; udpv6_sendmsg
 * ignores the address; raw sockets take a zero family as their own. */
static void unspec_sends(void)
{
	int r4, r6, port, s;
	struct sockaddr_in a4, other;
	struct sockaddr_in6 a6;
	struct iovec iov;
	struct msghdr m;

	r4 = inet_sock("127.0.0.1", SOCK_DGRAM, -1, &port);
	a4 = sin4("127.0.0.1", port);
	a4.sin_family = AF_UNSPEC;
	r6 = inet_sock("::1", SOCK_DGRAM, -1, &port);
	a6 = sin6("::1", port);
	other = sin4("127.0.0.1", port_of(r6)); /* a port where nothing listens on IPv4 */

	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("unspec.send_udp_sendto", sendto(s, "x", 1, 0, (void *)&a4, sizeof a4), "%s", got(r4));
	m = msg1(&iov, &a4, sizeof a4);
	CASE("unspec.send_udp_sendmsg", sendmsg(s, &m, 0), "%s", got(r4));
	{
		struct mmsghdr mm[2] = {{.msg_hdr = msg1(&iov, &a4, sizeof a4)},
					{.msg_hdr = msg1(&iov, &a4, sizeof a4)}};

		CASE("unspec.send_udp_sendmmsg", sendmmsg(s, mm, 2, 0), "%s %s", got(r4), got(r4));
	}
	CASE("unspec.send_udp_len15", sendto(s, "x", 1, 0, (void *)&a4, 15), "%s", got(r4));
	CASE("unspec.send_udp_len2", sendto(s, "x", 1, 0, (void *)&a4, 2), "%s", got(r4));
	{
		struct sockaddr_storage big;

		memset(&big, 0, sizeof big);
		memcpy(&big, &a4, sizeof a4);
		CASE("unspec.send_udp_len128", sendto(s, "x", 1, 0, (void *)&big, 128), "%s", got(r4));
	}
	{
		struct sockaddr_in p0 = a4;

		p0.sin_port = 0;
		CASE("unspec.send_udp_port0", sendto(s, "x", 1, 0, (void *)&p0, sizeof p0), "%s", got(r4));
	}
	{
		struct sockaddr_in z = sin4("0.0.0.0", ntohs(a4.sin_port));

		z.sin_family = AF_UNSPEC;
		CASE("unspec.send_udp_zero", sendto(s, "x", 1, 0, (void *)&z, sizeof z), "%s", got(r4));
	}
	close(s);

	/* Connected elsewhere: the address given wins. */
	s = xsocket(AF_INET, SOCK_DGRAM);
	connect(s, (void *)&other, sizeof other);
	CASE("unspec.send_udp_connected_sendto", sendto(s, "x", 1, 0, (void *)&a4, sizeof a4), "%s peer=%s",
	     got(r4), addr_str(s, 1));
	close(s);

	/* IPv6 UDP: no address at all. */
	s = xsocket(AF_INET6, SOCK_DGRAM);
	CASE("unspec.send_udp6_unconnected", sendto(s, "x", 1, 0, (void *)&a4, sizeof a4), "%s %s", got(r4),
	     got(r6));
	CASE("unspec.send_udp6_len1", sendto(s, "x", 1, 0, (void *)&a4, 1));
	connect(s, (void *)&a6, sizeof a6);
	CASE("unspec.send_udp6_connected", sendto(s, "x", 1, 0, (void *)&a4, sizeof a4), "%s %s", got(r4),
	     got(r6));
	m = msg1(&iov, &a4, sizeof a4);
	CASE("unspec.send_udp6_connected_sendmsg", sendmsg(s, &m, 0), "%s %s", got(r4), got(r6));
	close(s);

	/* Raw sockets: a zero family is the socket's own. */
	s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (s >= 0) {
		unsigned char echo[8] = {8, 0, 0xf7, 0xff, 0, 0, 0, 0};
		struct sockaddr_in lo = sin4("127.0.0.1", 0);

		lo.sin_family = AF_UNSPEC;
		CASE("unspec.send_raw4", sendto(s, echo, sizeof echo, 0, (void *)&lo, sizeof lo));
		CASE("unspec.send_raw4_len8", sendto(s, echo, sizeof echo, 0, (void *)&lo, 8));
		close(s);
	}
	s = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	if (s >= 0) {
		unsigned char echo[8] = {128, 0, 0, 0, 0, 0, 0, 0};
		struct sockaddr_in6 lo = sin6("::1", 0);

		lo.sin6_family = AF_UNSPEC;
		CASE("unspec.send_raw6", sendto(s, echo, sizeof echo, 0, (void *)&lo, sizeof lo));
		CASE("unspec.send_raw6_len16", sendto(s, echo, sizeof echo, 0, (void *)&lo, 16));
		close(s);
	}

	/* TCP Fast Open with AF_UNSPEC disconnects (__inet_stream_connect). */
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("unspec.send_tcp_fastopen", sendto(s, "x", 1, MSG_FASTOPEN | MSG_NOSIGNAL, (void *)&a4, sizeof a4),
	     "peer=%s", addr_str(s, 1));
	close(s);
	close(r4);
	close(r6);
}

/* Unspecified destinations: 0.0.0.0 is the source address or the loopback
 * (ip_route_output_key_hash_rcu), :: the IPv6 loopback or, from a socket
 * bound v4-mapped, 127.0.0.1 (tcp_v6_connect, ip6_datagram_connect,
 * udpv6_sendmsg), ::ffff:0.0.0.0 the IPv4 case. */
static void unspecified_dests(void)
{
	int l4, lany, l6, u4, uany, u6, p4, pany, p6, q4, qany, q6, s;
	struct sockaddr_in z;
	struct sockaddr_in6 z6, m0;

	l4 = tcp_listener("127.0.0.1", &p4);
	lany = tcp_listener("0.0.0.0", &pany);
	l6 = tcp_listener("::1", &p6);
	u4 = inet_sock("127.0.0.1", SOCK_DGRAM, -1, &q4);
	uany = inet_sock("0.0.0.0", SOCK_DGRAM, -1, &qany);
	u6 = inet_sock("::1", SOCK_DGRAM, -1, &q6);

	z = sin4("0.0.0.0", p4);
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("unspec.dst_tcp_0.0.0.0", connect(s, (void *)&z, sizeof z), "peer=%s local=%s", addr_str(s, 1),
	     addr_str(s, 0));
	close(s);
	z = sin4("0.0.0.0", pany);
	s = xsocket(AF_INET, SOCK_STREAM);
	bind_to(s, "127.0.0.5");
	CASE("unspec.dst_tcp_bound5_0.0.0.0", connect(s, (void *)&z, sizeof z), "peer=%s", addr_str(s, 1));
	close(s);
	s = xsocket(AF_INET, SOCK_STREAM);
	setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
	CASE("unspec.dst_tcp_lo_0.0.0.0", connect(s, (void *)&z, sizeof z), "peer=%s", addr_str(s, 1));
	close(s);
	z6 = sin6("::", p6);
	s = xsocket(AF_INET6, SOCK_STREAM);
	CASE("unspec.dst_tcp6_::", connect(s, (void *)&z6, sizeof z6), "peer=%s", addr_str(s, 1));
	close(s);
	m0 = sin6("::ffff:0.0.0.0", p4);
	s = dual(SOCK_STREAM);
	CASE("unspec.dst_tcp6_::ffff:0.0.0.0", connect(s, (void *)&m0, sizeof m0), "peer=%s", addr_str(s, 1));
	close(s);
	s = xsocket(AF_INET6, SOCK_STREAM);
	{
		int one = 1;

		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	}
	CASE("unspec.dst_tcp6_v6only_::ffff:0.0.0.0", connect(s, (void *)&m0, sizeof m0));
	close(s);
	z6 = sin6("::", p4);
	s = dual(SOCK_STREAM);
	bind_to(s, "::ffff:127.0.0.1");
	CASE("unspec.dst_tcp6_bound_mapped_::", connect(s, (void *)&z6, sizeof z6), "peer=%s", addr_str(s, 1));
	close(s);
	m0 = sin6("::ffff:0.0.0.0", pany);
	s = dual(SOCK_STREAM);
	bind_to(s, "::ffff:127.0.0.5");
	CASE("unspec.dst_tcp6_bound_mapped5_::ffff:0.0.0.0", connect(s, (void *)&m0, sizeof m0), "peer=%s",
	     addr_str(s, 1));
	close(s);
	drain(l4);
	drain(lany);
	drain(l6);

	/* UDP. */
	z = sin4("0.0.0.0", q4);
	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("unspec.dst_udp_sendto_0.0.0.0", sendto(s, "x", 1, 0, (void *)&z, sizeof z), "%s", got(u4));
	CASE("unspec.dst_udp_connect_0.0.0.0", connect(s, (void *)&z, sizeof z), "peer=%s", addr_str(s, 1));
	CASE("unspec.dst_udp_connected_send", send(s, "x", 1, 0), "%s", got(u4));
	close(s);
	z = sin4("0.0.0.0", qany);
	s = xsocket(AF_INET, SOCK_DGRAM);
	bind_to(s, "127.0.0.5");
	CASE("unspec.dst_udp_bound5_0.0.0.0", sendto(s, "x", 1, 0, (void *)&z, sizeof z), "%s", got(uany));
	CASE("unspec.dst_udp_bound5_connect_0.0.0.0", connect(s, (void *)&z, sizeof z), "peer=%s",
	     addr_str(s, 1));
	close(s);
	s = xsocket(AF_INET, SOCK_DGRAM);
	setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
	CASE("unspec.dst_udp_lo_0.0.0.0", sendto(s, "x", 1, 0, (void *)&z, sizeof z), "%s", got(uany));
	close(s);
	{
		char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct in_pktinfo pi;
		struct iovec iov;
		struct msghdr m = msg1(&iov, &z, sizeof z);
		struct cmsghdr *h = (void *)cbuf;

		memset(cbuf, 0, sizeof cbuf);
		memset(&pi, 0, sizeof pi);
		inet_pton(AF_INET, "127.0.0.5", &pi.ipi_spec_dst);
		h->cmsg_level = IPPROTO_IP;
		h->cmsg_type = IP_PKTINFO;
		h->cmsg_len = CMSG_LEN(sizeof pi);
		memcpy(CMSG_DATA(h), &pi, sizeof pi);
		m.msg_control = cbuf;
		m.msg_controllen = sizeof cbuf;
		s = xsocket(AF_INET, SOCK_DGRAM);
		CASE("unspec.dst_udp_pktinfo5_0.0.0.0", sendmsg(s, &m, 0), "%s", got(uany));
		close(s);
	}
	z6 = sin6("::", q6);
	s = xsocket(AF_INET6, SOCK_DGRAM);
	CASE("unspec.dst_udp6_sendto_::", sendto(s, "x", 1, 0, (void *)&z6, sizeof z6), "%s", got(u6));
	CASE("unspec.dst_udp6_connect_::", connect(s, (void *)&z6, sizeof z6), "peer=%s", addr_str(s, 1));
	close(s);
	m0 = sin6("::ffff:0.0.0.0", q4);
	s = dual(SOCK_DGRAM);
	CASE("unspec.dst_udp6_sendto_::ffff:0.0.0.0", sendto(s, "x", 1, 0, (void *)&m0, sizeof m0), "%s", got(u4));
	CASE("unspec.dst_udp6_connect_::ffff:0.0.0.0", connect(s, (void *)&m0, sizeof m0), "peer=%s",
	     addr_str(s, 1));
	close(s);
	z6 = sin6("::", qany);
	s = dual(SOCK_DGRAM);
	bind_to(s, "::ffff:127.0.0.5");
	CASE("unspec.dst_udp6_bound_mapped5_::", sendto(s, "x", 1, 0, (void *)&z6, sizeof z6), "%s", got(uany));
	close(s);

	close(l4);
	close(lany);
	close(l6);
	close(u4);
	close(uany);
	close(u6);
}

int main(void)
{
	struct sockaddr_in lis, u4;
	struct sockaddr_in6 lis6, u6;
	struct sockaddr_storage big;
	int lfd, lfd6, ufd, ufd6, port, s, r, e;
	char buf[8];

	probe_init();
	lfd = tcp_listener("127.0.0.1", &port);
	lis = sin4("127.0.0.1", port);
	lfd6 = tcp_listener("::1", &port);
	lis6 = sin6("::1", port);
	ufd = inet_sock("127.0.0.1", SOCK_DGRAM, -1, &port);
	u4 = sin4("127.0.0.1", port);
	ufd6 = inet_sock("::1", SOCK_DGRAM, -1, &port);
	u6 = sin6("::1", port);
	memset(&big, 0, sizeof big);

	/* TCP: disconnect, then the socket can connect again. */
	s = xsocket(AF_INET, SOCK_STREAM);
	connect(s, (void *)&lis, sizeof lis);
	CASE("unspec.tcp_connected", connect(s, &unspec, sizeof unspec),
	     "peer=%s sockname_port_nonzero=%d", peer_is(s, &lis, sizeof lis),
	     local_port_nonzero(s));
	{
		const char *sent = R(send(s, "x", 1, MSG_NOSIGNAL));

		fact("unspec.tcp_send_after_disconnect", "send=%s", sent);
	}
	CASE("unspec.tcp_reconnect", connect(s, &lis, sizeof lis), "peer=%s",
	     peer_is(s, &lis, sizeof lis));
	CASE("unspec.tcp_reconnect_again", connect(s, &lis, sizeof lis));
	close(s);

	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("unspec.tcp_unconnected", connect(s, &unspec, sizeof unspec));
	CASE("unspec.tcp_len1", connect(s, &unspec, 1));
	CASE("unspec.tcp_len0", connect(s, &unspec, 0));
	CASE("unspec.tcp_len2", connect(s, &unspec, 2));
	big.ss_family = AF_UNSPEC;
	CASE("unspec.tcp_len128", connect(s, (void *)&big, 128));
	CASE("unspec.tcp_len129", connect(s, (void *)&big, 129));
	CASE("unspec.tcp_then_connect", connect(s, &lis, sizeof lis));
	close(s);

	s = xsocket(AF_INET6, SOCK_STREAM);
	connect(s, (void *)&lis6, sizeof lis6);
	CASE("unspec.tcp6_connected", connect(s, &unspec, sizeof unspec), "peer=%s",
	     peer_is(s, &lis6, sizeof lis6));
	CASE("unspec.tcp6_reconnect", connect(s, &lis6, sizeof lis6));
	close(s);

	/* A listening socket stops listening. */
	{
		int l = inet_sock("127.0.0.1", SOCK_STREAM, 8, &port);
		struct sockaddr_in la = sin4("127.0.0.1", port);

		CASE("unspec.tcp_listening", connect(l, &unspec, sizeof unspec));
		s = xsocket(AF_INET, SOCK_STREAM);
		CASE("unspec.tcp_connect_to_former_listener", connect(s, &la, sizeof la));
		close(s);
		close(l);
	}

	/* A pending connect to the tarpit is abandoned. */
	{
		struct tarpit tp;

		tarpit_open(&tp);
		s = xsocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
		r = connect(s, (void *)&tp.addr, sizeof tp.addr);
		e = errno;
		report("unspec.tcp_pending_first", r, e, " ");
		CASE("unspec.tcp_pending", connect(s, &unspec, sizeof unspec), "peer=%s so_error=%s",
		     peer_is(s, &tp.addr, sizeof tp.addr), so_error(s));
		CASE("unspec.tcp_pending_then_listener", connect(s, &lis, sizeof lis));
		poll1(s, POLLOUT, 2000);
		fact("unspec.tcp_pending_then_listener_done", "so_error=%s peer=%s", so_error(s),
		     peer_is(s, &lis, sizeof lis));
		close(s);
		tarpit_close(&tp);
	}

	/* UDP. */
	s = xsocket(AF_INET, SOCK_DGRAM);
	connect(s, (void *)&u4, sizeof u4);
	CASE("unspec.udp_connected", connect(s, &unspec, sizeof unspec), "peer=%s sockname=%s",
	     peer_is(s, &u4, sizeof u4), addr_str(s, 0));
	{
		const char *sent = R(send(s, "x", 1, 0));
		const char *sentto = R(sendto(s, "y", 1, 0, (void *)&u4, sizeof u4));
		const char *got = R(recv(ufd, buf, sizeof buf, MSG_DONTWAIT));

		fact("unspec.udp_send_after_disconnect", "send=%s sendto=%s recv=%s", sent,
		     sentto, got);
	}
	CASE("unspec.udp_reconnect", connect(s, &u4, sizeof u4), "peer=%s",
	     peer_is(s, &u4, sizeof u4));
	CASE("unspec.udp_len1", connect(s, &unspec, 1), "peer=%s", peer_is(s, &u4, sizeof u4));
	CASE("unspec.udp_len2", connect(s, &unspec, 2), "peer=%s", peer_is(s, &u4, sizeof u4));
	CASE("unspec.udp_unconnected", connect(s, &unspec, sizeof unspec));
	close(s);

	/* A UDP socket bound to an address keeps it; one bound by connect
	 * keeps its port. */
	s = inet_sock("127.0.0.1", SOCK_DGRAM, -1, NULL);
	connect(s, (void *)&u4, sizeof u4);
	CASE("unspec.udp_bound", connect(s, &unspec, sizeof unspec), "sockname=%s",
	     addr_str(s, 0));
	close(s);

	s = xsocket(AF_INET6, SOCK_DGRAM);
	connect(s, (void *)&u6, sizeof u6);
	CASE("unspec.udp6_connected", connect(s, &unspec, sizeof unspec), "peer=%s",
	     peer_is(s, &u6, sizeof u6));
	close(s);

	/* An AF_UNSPEC address carrying other bytes is still AF_UNSPEC. */
	{
		struct sockaddr_in junk = u4;

		junk.sin_family = AF_UNSPEC;
		s = xsocket(AF_INET, SOCK_DGRAM);
		connect(s, (void *)&u4, sizeof u4);
		CASE("unspec.udp_with_address_bytes", connect(s, &junk, sizeof junk), "peer=%s",
		     peer_is(s, &u4, sizeof u4));
		close(s);
	}

	/* Unix. */
	{
		struct sockaddr_un a;
		socklen_t alen = sun_path_addr(&a, path_in("d.sock"));
		int d = xsocket(AF_UNIX, SOCK_DGRAM), l;

		if (bind(d, (void *)&a, alen) < 0)
			die("bind");
		s = xsocket(AF_UNIX, SOCK_DGRAM);
		connect(s, (void *)&a, alen);
		CASE("unspec.unix_dgram_connected", connect(s, &unspec, sizeof unspec),
		     "peer=%s", peer_is(s, &a, alen));
		{
			const char *sent = R(send(s, "x", 1, 0));

			fact("unspec.unix_dgram_send_after_disconnect", "send=%s", sent);
		}
		CASE("unspec.unix_dgram_len1", connect(s, &unspec, 1));
		close(s);

		alen = sun_path_addr(&a, path_in("s.sock"));
		l = xsocket(AF_UNIX, SOCK_STREAM);
		if (bind(l, (void *)&a, alen) < 0 || listen(l, 8) < 0)
			die("listen");
		s = xsocket(AF_UNIX, SOCK_STREAM);
		CASE("unspec.unix_stream_unconnected", connect(s, &unspec, sizeof unspec));
		connect(s, (void *)&a, alen);
		CASE("unspec.unix_stream_connected", connect(s, &unspec, sizeof unspec),
		     "peer=%s", peer_is(s, &a, alen));
		close(s);
		s = xsocket(AF_UNIX, SOCK_SEQPACKET);
		CASE("unspec.unix_seqpacket_unconnected", connect(s, &unspec, sizeof unspec));
		close(s);
		close(l);
		close(d);
	}

	unspec_sends();
	unspecified_dests();

	close(lfd);
	close(lfd6);
	close(ufd);
	close(ufd6);
	return 0;
}
