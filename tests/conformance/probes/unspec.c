/* unspec: connect with an AF_UNSPEC address dissolves the association of
 * TCP, UDP and Unix datagram sockets. */
#include "probe.h"

static const struct sockaddr unspec = {.sa_family = AF_UNSPEC};

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

	close(lfd);
	close(lfd6);
	close(ufd);
	close(ufd6);
	return 0;
}
