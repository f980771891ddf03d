/* inet: AF_INET connects over loopback and the test subnet, TCP and UDP. */
#include "probe.h"

static int lfd, lport;
static struct sockaddr_in lis; /* the listener on 127.0.0.1 */

static void tcp(void)
{
	struct sockaddr_in a;
	int s, s2, cfd, cport;

	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("inet.tcp_listener", connect(s, &lis, sizeof lis),
	     "peer=%s sockname_port_nonzero=%d sockname=%s nonblock=%d", peer_is(s, &lis, sizeof lis),
	     local_port_nonzero(s), addr_str(s, 0), is_nonblock(s));
	/* The accepted end sees the connecting socket's address. */
	{
		struct sockaddr_storage ss, mine;
		socklen_t len = sizeof ss, mlen = sizeof mine;
		int c = accept(lfd, (void *)&ss, &len);

		getsockname(s, (void *)&mine, &mlen);
		fact("inet.tcp_listener_accepted", "accept=%s peer_is_client=%d",
		     c < 0 ? errname(errno) : "ok",
		     same_sockaddr((void *)&ss, len, (void *)&mine, mlen));
		close(c);
	}
	close(s);

	/* Refused, then the same socket connects to a listener. */
	closed_port("127.0.0.1", &cfd);
	cport = port_of(cfd);
	a = sin4("127.0.0.1", cport);
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("inet.tcp_refused", connect(s, &a, sizeof a), "so_error=%s peer=%s",
	     so_error(s), peer_is(s, &a, sizeof a));
	CASE("inet.tcp_refused_again", connect(s, &a, sizeof a));
	CASE("inet.tcp_after_refused_listener", connect(s, &lis, sizeof lis),
	     "peer=%s", peer_is(s, &lis, sizeof lis));
	CASE("inet.tcp_after_refused_listener_again", connect(s, &lis, sizeof lis));
	close(s);

	/* 0.0.0.0 means this host. */
	a = sin4("0.0.0.0", lport);
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("inet.tcp_any_addr", connect(s, &a, sizeof a), "peer=%s sockname=%s",
	     addr_str(s, 1), addr_str(s, 0));
	close(s);

	/* Other loopback addresses reach a 0.0.0.0 listener. */
	{
		int any = inet_sock("0.0.0.0", SOCK_STREAM, 64, NULL);
		int p = port_of(any);

		a = sin4("127.1.2.3", p);
		s = xsocket(AF_INET, SOCK_STREAM);
		CASE("inet.tcp_loopback_127_1_2_3", connect(s, &a, sizeof a),
		     "peer=%s sockname=%s", addr_str(s, 1), addr_str(s, 0));
		close(s);
		a = sin4(LOCAL_IP, p);
		s = xsocket(AF_INET, SOCK_STREAM);
		CASE("inet.tcp_own_subnet_addr", connect(s, &a, sizeof a),
		     "peer=%s sockname=%s", addr_str(s, 1), addr_str(s, 0));
		close(s);
		close(any);
	}

	/* Port 0. */
	a = sin4("127.0.0.1", 0);
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("inet.tcp_port_zero", connect(s, &a, sizeof a));
	close(s);

	/* Bound before connecting: the bound address is kept. */
	s = inet_sock("127.0.0.2", SOCK_STREAM, -1, NULL);
	{
		int before = port_of(s);

		CASE("inet.tcp_bound_127_0_0_2", connect(s, &lis, sizeof lis),
		     "sockname=%s port_kept=%d peer=%s", addr_str(s, 0),
		     port_of(s) == before, peer_is(s, &lis, sizeof lis));
	}
	close(s);

	/* Self-connect: a socket connecting to its own address (simultaneous
	 * open). */
	s = inet_sock("127.0.0.1", SOCK_STREAM, -1, NULL);
	{
		struct sockaddr_in me;
		socklen_t len = sizeof me;

		getsockname(s, (void *)&me, &len);
		CASE("inet.tcp_self_connect", connect(s, &me, sizeof me), "peer=%s",
		     peer_is(s, &me, sizeof me));
	}
	close(s);

	/* Two sockets, connected one after the other. */
	s = xsocket(AF_INET, SOCK_STREAM);
	s2 = xsocket(AF_INET, SOCK_STREAM);
	CASE("inet.tcp_two_sockets_first", connect(s, &lis, sizeof lis));
	CASE("inet.tcp_two_sockets_second", connect(s2, &lis, sizeof lis),
	     "distinct_local=%d", port_of(s) != port_of(s2));
	close(s);
	close(s2);

	/* Data flows after connect. */
	drain(lfd);
	s = xsocket(AF_INET, SOCK_STREAM);
	if (connect(s, &lis, sizeof lis) == 0) {
		int c = accept(lfd, NULL, NULL);
		char buf[8] = {0};
		const char *sent = R(send(s, "hello", 5, 0));
		const char *got = R(recv(c, buf, 5, MSG_WAITALL));

		fact("inet.tcp_data", "send=%s recv=%s payload=%.5s", sent, got, buf);
		close(c);
	}
	close(s);

	/* A dup of the socket shares the connection. */
	s = xsocket(AF_INET, SOCK_STREAM);
	s2 = dup(s);
	CASE("inet.tcp_via_dup", connect(s2, &lis, sizeof lis), "peer_of_original=%s",
	     peer_is(s, &lis, sizeof lis));
	close(s);
	close(s2);

	/* SOCK_NONBLOCK and SOCK_CLOEXEC from socket(2) survive connect. */
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	{
		int r = connect(s, (void *)&lis, sizeof lis), e = errno;

		poll1(s, POLLOUT, 2000);
		report("inet.tcp_sock_nonblock_flag", r, e,
		       "so_error=%s peer=%s nonblock=%d cloexec=%d", so_error(s),
		       peer_is(s, &lis, sizeof lis), is_nonblock(s),
		       (fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
	}
	close(s);

	close(cfd);
	drain(lfd);
}

static void udp(void)
{
	struct sockaddr_in a, b;
	int s, u1, u2, one = 1;
	char buf[16];

	u1 = inet_sock("127.0.0.1", SOCK_DGRAM, -1, NULL);
	u2 = inet_sock("127.0.0.1", SOCK_DGRAM, -1, NULL);
	a = sin4("127.0.0.1", port_of(u1));
	b = sin4("127.0.0.1", port_of(u2));

	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("inet.udp_connect", connect(s, &a, sizeof a),
	     "peer=%s sockname_port_nonzero=%d sockname=%s", peer_is(s, &a, sizeof a),
	     local_port_nonzero(s), addr_str(s, 0));
	{
		const char *sent = R(send(s, "x", 1, 0));
		const char *got = R(recv(u1, buf, sizeof buf, MSG_DONTWAIT));

		fact("inet.udp_send_connected", "send=%s recv=%s", sent, got);
	}
	CASE("inet.udp_reconnect", connect(s, &b, sizeof b), "peer=%s",
	     peer_is(s, &b, sizeof b));
	{
		const char *sent = R(send(s, "y", 1, 0));
		const char *got_new = R(recv(u2, buf, sizeof buf, MSG_DONTWAIT));
		const char *got_old = R(recv(u1, buf, sizeof buf, MSG_DONTWAIT));

		fact("inet.udp_send_reconnected", "send=%s recv_new=%s recv_old=%s",
		     sent, got_new, got_old);
	}
	/* Only the connected peer's datagrams are received. */
	{
		struct sockaddr_in me;
		socklen_t len = sizeof me;

		getsockname(s, (void *)&me, &len);
		sendto(u1, "z", 1, 0, (void *)&me, sizeof me);
		sendto(u2, "w", 1, 0, (void *)&me, sizeof me);
		char data[16] = {0};
		const char *got, *again;

		poll1(s, POLLIN, 1000);
		got = R(recv(s, data, sizeof data - 1, MSG_DONTWAIT));
		again = R(recv(s, buf, sizeof buf, MSG_DONTWAIT));
		fact("inet.udp_filter", "recv=%s data=%s again=%s", got, data, again);
	}
	close(s);

	/* Connect to a closed port succeeds; the ICMP error comes later. */
	{
		int dead = inet_sock("127.0.0.1", SOCK_DGRAM, -1, NULL);
		struct sockaddr_in d = sin4("127.0.0.1", port_of(dead));

		close(dead); /* nothing is bound there now */
		s = xsocket(AF_INET, SOCK_DGRAM);
		CASE("inet.udp_closed_port", connect(s, &d, sizeof d), "peer=%s",
		     peer_is(s, &d, sizeof d));
		const char *sent = R(send(s, "x", 1, 0));
		const char *ev = events_str(poll1(s, POLLIN, 2000));
		const char *got = R(recv(s, buf, sizeof buf, MSG_DONTWAIT));
		const char *after = R(recv(s, buf, sizeof buf, MSG_DONTWAIT));

		fact("inet.udp_closed_port_send", "send=%s poll=%s recv=%s after=%s",
		     sent, ev, got, after);
		close(s);
	}

	/* 0.0.0.0 becomes the loopback address. */
	a = sin4("0.0.0.0", 9);
	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("inet.udp_any_addr", connect(s, &a, sizeof a), "peer=%s sockname=%s",
	     addr_str(s, 1), addr_str(s, 0));
	close(s);

	a = sin4("127.0.0.1", 0);
	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("inet.udp_port_zero", connect(s, &a, sizeof a), "peer=%s",
	     addr_str(s, 1));
	close(s);

	a = sin4(PEER_IP, 9);
	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("inet.udp_peer", connect(s, &a, sizeof a), "peer=%s sockname=%s",
	     addr_str(s, 1), addr_str(s, 0));
	close(s);

	/* Multicast and limited broadcast. */
	a = sin4("224.0.0.1", 9);
	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("inet.udp_multicast", connect(s, &a, sizeof a));
	close(s);
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("inet.tcp_multicast", connect(s, &a, sizeof a));
	close(s);
	a = sin4("255.255.255.255", 9);
	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("inet.udp_limited_broadcast", connect(s, &a, sizeof a));
	setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
	CASE("inet.udp_limited_broadcast_so_broadcast", connect(s, &a, sizeof a));
	close(s);
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("inet.tcp_limited_broadcast", connect(s, &a, sizeof a));
	close(s);

	/* A raw socket connects like a datagram socket. */
	s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	a = sin4("127.0.0.1", 0);
	CASE("inet.raw_icmp", connect(s, &a, sizeof a), "peer=%s", addr_str(s, 1));
	close(s);

	close(u1);
	close(u2);
}

int main(void)
{
	probe_init();
	lfd = tcp_listener("127.0.0.1", &lport);
	lis = sin4("127.0.0.1", lport);
	tcp();
	udp();
	return 0;
}
