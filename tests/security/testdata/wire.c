// wire: destinations the kernel reads differently from the bytes' face
// value, aimed at a counter the policy forbids. Each line is
// "name: ok" or "name: ERRNO".
//
// usage: wire unspec UDP_PORT ALLOWED_UDP_PORT
//          AF_UNSPEC sends carrying 127.0.0.1:UDP_PORT (udp_sendmsg reads
//          them as AF_INET); ALLOWED_UDP_PORT is a port the policy allows.
//        wire unspecified TCP_PORT UDP_PORT
//          connects and sends to 0.0.0.0, ::, ::ffff:0.0.0.0 and
//          ::ffff:127.0.0.1, with and without a bound source; the counters
//          listen dual-stack on [::]:PORT.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(const char *name, long r) {
	if (r >= 0)
		printf("%s: ok\n", name);
	else
		printf("%s: %s\n", name, strerrorname_np(errno));
	fflush(stdout);
}

static struct sockaddr_in sin4(const char *ip, int port) {
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static struct sockaddr_in6 sin6(const char *ip, int port) {
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	inet_pton(AF_INET6, ip, &a.sin6_addr);
	return a;
}

static int sock(int family, int type, int v6only) {
	int s = socket(family, type | SOCK_CLOEXEC, 0);
	if (family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	return s;
}

static void bind_or_die(int s, const void *a, socklen_t len) {
	if (bind(s, a, len) < 0) {
		perror("bind");
		exit(2);
	}
}

// tcp connects s to a and waits for the handshake (blocking socket).
static void tcp(const char *name, int s, const void *a, socklen_t len) {
	report(name, connect(s, a, len));
	close(s);
}

static struct msghdr msg(struct iovec *iov, void *name, socklen_t len) {
	iov->iov_base = "hello";
	iov->iov_len = 5;
	return (struct msghdr){.msg_name = name, .msg_namelen = len, .msg_iov = iov, .msg_iovlen = 1};
}

static void unspec(int port, int allowed) {
	struct sockaddr_in dst = sin4("127.0.0.1", port), ok = sin4("127.0.0.1", allowed);
	struct sockaddr_in zero = sin4("0.0.0.0", port);
	struct iovec iov;
	struct msghdr m;
	int s;

	dst.sin_family = AF_UNSPEC;
	zero.sin_family = AF_UNSPEC;
	s = sock(AF_INET, SOCK_DGRAM, 0);
	report("unspec_sendto", sendto(s, "hello", 5, 0, (void *)&dst, sizeof dst));
	m = msg(&iov, &dst, sizeof dst);
	report("unspec_sendmsg", sendmsg(s, &m, 0));
	{
		struct mmsghdr mm[2] = {{.msg_hdr = msg(&iov, &dst, sizeof dst)}, {.msg_hdr = msg(&iov, &dst, sizeof dst)}};
		long r = sendmmsg(s, mm, 2, 0);
		report("unspec_sendmmsg", r == 2 ? 0 : -1);
	}
	// A longer address (sockaddr_storage) reads the same.
	{
		struct sockaddr_storage big = {0};
		memcpy(&big, &dst, sizeof dst);
		report("unspec_sendto_storage", sendto(s, "hello", 5, 0, (void *)&big, sizeof big));
	}
	// AF_UNSPEC and 0.0.0.0 together: the loopback.
	report("unspec_sendto_zero", sendto(s, "hello", 5, 0, (void *)&zero, sizeof zero));
	close(s);

	// Connected to an allowed port, the address still overrides.
	s = sock(AF_INET, SOCK_DGRAM, 0);
	connect(s, (void *)&ok, sizeof ok);
	report("unspec_sendto_connected_elsewhere", sendto(s, "hello", 5, 0, (void *)&dst, sizeof dst));
	m = msg(&iov, &dst, sizeof dst);
	report("unspec_sendmsg_connected_elsewhere", sendmsg(s, &m, 0));
	close(s);

	// UDP-Lite shares udp_sendmsg.
	s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
	if (s >= 0) {
		report("unspec_sendto_udplite", sendto(s, "hello", 5, 0, (void *)&dst, sizeof dst));
		close(s);
	}

	// An IPv6 UDP socket ignores an AF_UNSPEC address (udpv6_sendmsg):
	// unconnected, EDESTADDRREQ; connected to the allowed port, the data
	// goes there. Neither reaches the counter.
	s = sock(AF_INET6, SOCK_DGRAM, 0);
	report("unspec6_sendto", sendto(s, "hello", 5, 0, (void *)&dst, sizeof dst));
	{
		struct sockaddr_in6 ok6 = sin6("::ffff:127.0.0.1", allowed);
		connect(s, (void *)&ok6, sizeof ok6);
		m = msg(&iov, &dst, sizeof dst);
		report("unspec6_sendmsg_connected", sendmsg(s, &m, 0));
	}
	close(s);
}

static void unspecified(int tport, int uport) {
	struct sockaddr_in z4 = sin4("0.0.0.0", tport), b5 = sin4("127.0.0.5", 0);
	struct sockaddr_in6 any6 = sin6("::", tport), m0 = sin6("::ffff:0.0.0.0", tport);
	struct sockaddr_in6 m1 = sin6("::ffff:127.0.0.1", tport), bm = sin6("::ffff:127.0.0.1", 0);
	struct sockaddr_in6 bm5 = sin6("::ffff:127.0.0.5", 0);
	int s;

	tcp("tcp_0.0.0.0", sock(AF_INET, SOCK_STREAM, 0), &z4, sizeof z4);
	tcp("tcp6_::", sock(AF_INET6, SOCK_STREAM, 0), &any6, sizeof any6);
	tcp("tcp6_::ffff:0.0.0.0", sock(AF_INET6, SOCK_STREAM, 0), &m0, sizeof m0);
	tcp("tcp6_::ffff:127.0.0.1", sock(AF_INET6, SOCK_STREAM, 0), &m1, sizeof m1);
	s = sock(AF_INET6, SOCK_STREAM, 0);
	bind_or_die(s, &bm, sizeof bm);
	tcp("tcp6_bound_mapped_::", s, &any6, sizeof any6);
	s = sock(AF_INET6, SOCK_STREAM, 0);
	bind_or_die(s, &bm5, sizeof bm5);
	tcp("tcp6_bound_mapped5_::ffff:0.0.0.0", s, &m0, sizeof m0);
	s = sock(AF_INET, SOCK_STREAM, 0);
	bind_or_die(s, &b5, sizeof b5);
	tcp("tcp_bound5_0.0.0.0", s, &z4, sizeof z4);
	s = sock(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
	tcp("tcp_bindtodevice_lo_0.0.0.0", s, &z4, sizeof z4);

	z4.sin_port = any6.sin6_port = m0.sin6_port = m1.sin6_port = htons(uport);
#define SEND(name, s, a) report(name, sendto(s, "hello", 5, 0, (void *)&(a), sizeof(a)))
	s = sock(AF_INET, SOCK_DGRAM, 0);
	SEND("udp_0.0.0.0", s, z4);
	close(s);
	s = sock(AF_INET6, SOCK_DGRAM, 0);
	SEND("udp6_::", s, any6);
	SEND("udp6_::ffff:0.0.0.0", s, m0);
	SEND("udp6_::ffff:127.0.0.1", s, m1);
	close(s);
	s = sock(AF_INET6, SOCK_DGRAM, 0);
	bind_or_die(s, &bm, sizeof bm);
	SEND("udp6_bound_mapped_::", s, any6);
	close(s);
	s = sock(AF_INET, SOCK_DGRAM, 0);
	bind_or_die(s, &b5, sizeof b5);
	SEND("udp_bound5_0.0.0.0", s, z4);
	close(s);
	s = sock(AF_INET, SOCK_DGRAM, 0);
	report("udp_connect_0.0.0.0", connect(s, (void *)&z4, sizeof z4));
	report("udp_connect_0.0.0.0_send", send(s, "hello", 5, 0));
	close(s);
	s = sock(AF_INET, SOCK_DGRAM, 0);
	setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
	SEND("udp_bindtodevice_lo_0.0.0.0", s, z4);
	close(s);
	{
		int lo = if_nametoindex("lo");
		s = sock(AF_INET, SOCK_DGRAM, 0);
		int v = htonl(lo);
		setsockopt(s, IPPROTO_IP, IP_UNICAST_IF, &v, sizeof v);
		SEND("udp_unicast_if_lo_0.0.0.0", s, z4);
		close(s);
	}
	// IP_PKTINFO names the source, which 0.0.0.0 then becomes.
	{
		char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))] = {0};
		struct iovec iov;
		struct msghdr m = msg(&iov, &z4, sizeof z4);
		struct cmsghdr *h = (void *)cbuf;
		struct in_pktinfo pi = {0};

		inet_pton(AF_INET, "127.0.0.5", &pi.ipi_spec_dst);
		h->cmsg_level = IPPROTO_IP;
		h->cmsg_type = IP_PKTINFO;
		h->cmsg_len = CMSG_LEN(sizeof pi);
		memcpy(CMSG_DATA(h), &pi, sizeof pi);
		m.msg_control = cbuf;
		m.msg_controllen = sizeof cbuf;
		s = sock(AF_INET, SOCK_DGRAM, 0);
		report("udp_pktinfo5_0.0.0.0", sendmsg(s, &m, 0));
		close(s);
		// TCP ignores IP_PKTINFO: a Fast Open to 0.0.0.0 goes to 127.0.0.1.
		struct sockaddr_in t = sin4("0.0.0.0", tport);
		m.msg_name = &t;
		s = sock(AF_INET, SOCK_STREAM, 0);
		report("tcp_fastopen_pktinfo5_0.0.0.0", sendmsg(s, &m, MSG_FASTOPEN));
		close(s);
	}
}

int main(int argc, char **argv) {
	if (argc == 4 && strcmp(argv[1], "unspec") == 0)
		unspec(atoi(argv[2]), atoi(argv[3]));
	else if (argc == 4 && strcmp(argv[1], "unspecified") == 0)
		unspecified(atoi(argv[2]), atoi(argv[3]));
	else
		return 2;
	return 0;
}
