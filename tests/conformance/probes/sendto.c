/* sendto: sendto(2) with a destination address, which the sandbox traps and
 * performs itself with its own copies of the data and the address. Checks
 * the order of errors, datagrams over UDP and Unix sockets, what a stream
 * socket does with an address, and a full socket buffer. */
#include "probe.h"

#include <sys/mman.h>

static const char msg[] = "hello";

/* got reads one datagram from fd (non-blocking) and says what arrived. */
static const char *got(int fd)
{
	static char b[4][160];
	static int next;
	char buf[128];
	char *out = b[next = (next + 1) % 4];
	ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);

	if (n < 0)
		snprintf(out, 160, "%s", errname(errno));
	else {
		buf[n] = 0;
		snprintf(out, 160, "\"%s\"", buf);
	}
	return out;
}

int main(void)
{
	struct sockaddr_in u4, closed;
	struct sockaddr_in6 u6;
	struct sockaddr_un ua;
	socklen_t ual;
	int ufd, ufd6, cfd, port, s, pfd[2];

	probe_init();
	ufd = inet_sock("127.0.0.1", SOCK_DGRAM, -1, &port);
	u4 = sin4("127.0.0.1", port);
	ufd6 = inet_sock("::1", SOCK_DGRAM, -1, &port);
	u6 = sin6("::1", port);
	cfd = inet_sock("127.0.0.1", SOCK_DGRAM, -1, &port);
	closed = sin4("127.0.0.1", port);
	close(cfd); /* now nobody has this UDP port */

	/* Argument errors, in Linux's order. */
	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("sendto.bad_fd", sendto(9999, msg, 5, 0, (void *)&u4, sizeof u4));
	CASE("sendto.bad_fd_bad_len", sendto(9999, msg, 5, 0, (void *)&u4, 1000));
	pipe(pfd);
	CASE("sendto.pipe", sendto(pfd[0], msg, 5, 0, (void *)&u4, sizeof u4));
	CASE("sendto.pipe_bad_len", sendto(pfd[0], msg, 5, 0, (void *)&u4, -1));
	CASE("sendto.addrlen_129", sendto(s, msg, 5, 0, (void *)&u4, 129));
	CASE("sendto.addrlen_negative", sendto(s, msg, 5, 0, (void *)&u4, -1));
	CASE("sendto.addrlen_short", sendto(s, msg, 5, 0, (void *)&u4, 8));
	CASE("sendto.addr_unmapped", sendto(s, msg, 5, 0, (void *)8, sizeof u4));
	CASE("sendto.wrong_family", sendto(s, msg, 5, 0, (void *)&u6, sizeof u6));
	CASE("sendto.buf_beyond_user_space", sendto(s, (void *)0xffffffffffff0000UL, 5, 0, (void *)&u4, sizeof u4));
	char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CASE("sendto.buf_prot_none", sendto(s, page, 5, 0, (void *)&u4, sizeof u4), "then=%s", got(ufd));

	/* UDP datagrams. */
	CASE("sendto.udp", sendto(s, msg, 5, 0, (void *)&u4, sizeof u4), "got=%s", got(ufd));
	CASE("sendto.udp_empty", sendto(s, msg, 0, 0, (void *)&u4, sizeof u4), "got=%s", got(ufd));
	CASE("sendto.udp_closed_port", sendto(s, msg, 5, 0, (void *)&closed, sizeof closed));
	CASE("sendto.udp_unconnected_after_icmp", sendto(s, msg, 5, 0, (void *)&u4, sizeof u4), "got=%s", got(ufd));
	CASE("sendto.udp_too_big", sendto(s, calloc(1, 70000), 70000, 0, (void *)&u4, sizeof u4));
	/* A non-NULL address of length 0 is still an address (udp_sendmsg:
	 * EINVAL), not the connected peer; sendto ignores MSG_CMSG_COMPAT,
	 * which sendmsg refuses. */
	CASE("sendto.udp_addrlen_zero", sendto(s, msg, 5, 0, (void *)&u4, 0), "got=%s", got(ufd));
	CASE("sendto.udp_cmsg_compat_flag", sendto(s, msg, 5, 0x80000000, (void *)&u4, sizeof u4), "got=%s", got(ufd));
	close(s);
	s = xsocket(AF_INET, SOCK_DGRAM);
	connect(s, (void *)&u4, sizeof u4);
	CASE("sendto.udp_connected_addrlen_zero", sendto(s, msg, 5, 0, (void *)&u4, 0), "got=%s", got(ufd));
	close(s);
	s = xsocket(AF_INET6, SOCK_DGRAM);
	connect(s, (void *)&u6, sizeof u6);
	CASE("sendto.udp6_connected_addrlen_zero", sendto(s, msg, 5, 0, (void *)&u6, 0), "got=%s", got(ufd6));
	close(s);
	s = xsocket(AF_INET6, SOCK_DGRAM);
	CASE("sendto.udp6", sendto(s, msg, 5, 0, (void *)&u6, sizeof u6), "got=%s", got(ufd6));
	close(s);
	/* A connected UDP socket sends to another address when given one. */
	s = xsocket(AF_INET, SOCK_DGRAM);
	connect(s, (void *)&closed, sizeof closed);
	CASE("sendto.udp_connected_other", sendto(s, msg, 5, 0, (void *)&u4, sizeof u4), "got=%s", got(ufd));
	close(s);

	/* Unix datagrams: paths (absolute, relative), abstract, errors. */
	int ud = xsocket(AF_UNIX, SOCK_DGRAM);
	ual = sun_path_addr(&ua, path_in("dgram"));
	bind(ud, (void *)&ua, ual);
	s = xsocket(AF_UNIX, SOCK_DGRAM);
	CASE("sendto.unix_path", sendto(s, msg, 5, 0, (void *)&ua, ual), "got=%s", got(ud));
	chdir(probe_dir());
	struct sockaddr_un rel;
	socklen_t rell = sun_path_addr(&rel, "dgram");
	CASE("sendto.unix_relative", sendto(s, msg, 5, 0, (void *)&rel, rell), "got=%s", got(ud));
	rell = sun_path_addr(&rel, "nonexistent");
	CASE("sendto.unix_nonexistent", sendto(s, msg, 5, 0, (void *)&rel, rell));
	int ab = xsocket(AF_UNIX, SOCK_DGRAM);
	struct sockaddr_un aa;
	socklen_t aal = sun_abstract_addr(&aa, "sbx-sendto-probe");
	bind(ab, (void *)&aa, aal);
	CASE("sendto.unix_abstract", sendto(s, msg, 5, 0, (void *)&aa, aal), "got=%s", got(ab));
	int us = xsocket(AF_UNIX, SOCK_STREAM);
	struct sockaddr_un sa;
	socklen_t sal = sun_path_addr(&sa, path_in("stream"));
	bind(us, (void *)&sa, sal);
	listen(us, 4);
	CASE("sendto.unix_dgram_to_stream", sendto(s, msg, 5, 0, (void *)&sa, sal));
	close(s);

	/* Stream sockets: the address is ignored, or refused. */
	int lfd = tcp_listener("127.0.0.1", &port);
	(void)lfd;
	struct sockaddr_in lis = sin4("127.0.0.1", port);
	s = xsocket(AF_INET, SOCK_STREAM);
	connect(s, (void *)&lis, sizeof lis);
	CASE("sendto.tcp_connected_with_addr", sendto(s, msg, 5, 0, (void *)&u4, sizeof u4));
	close(s);
	s = xsocket(AF_INET, SOCK_STREAM);
	CASE("sendto.tcp_unconnected_with_addr", sendto(s, msg, 5, MSG_NOSIGNAL, (void *)&lis, sizeof lis));
	close(s);
	s = xsocket(AF_UNIX, SOCK_STREAM);
	connect(s, (void *)&sa, sal);
	CASE("sendto.unix_stream_with_addr", sendto(s, msg, 5, 0, (void *)&ua, ual));
	close(s);

	/* A full socket buffer: non-blocking EAGAIN; blocking with a send
	 * timeout waits, then EAGAIN. */
	s = xsocket(AF_UNIX, SOCK_DGRAM);
	int full = 0;
	set_nonblock(s, 1);
	for (int i = 0; i < 10000; i++)
		if (sendto(s, msg, 5, 0, (void *)&ua, ual) < 0) {
			full = errno;
			break;
		}
	fact("sendto.fill_receiver", "stopped_with=%s", errname(full));
	CASE("sendto.full_nonblocking", sendto(s, msg, 5, 0, (void *)&ua, ual));
	CASE("sendto.full_dontwait", sendto(s, msg, 5, MSG_DONTWAIT, (void *)&ua, ual));
	set_nonblock(s, 0);
	struct timeval tv = {0, 200000};
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	CASE("sendto.full_blocking_sndtimeo", sendto(s, msg, 5, 0, (void *)&ua, ual));
	close(s);
	return 0;
}
