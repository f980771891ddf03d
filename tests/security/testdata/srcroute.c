// srcroute: packets to an allowed local destination, steered through an
// intermediate host by routing headers and IPv4 source routes. Case i uses
// port BASE+i at the destination; the test counts what arrives at the
// intermediate. Each line is "name port: ok|ERRNO" for the steering call.
//
// usage: srcroute BASE DEST4 DEST6 VIA4 VIA6
//
// The program binds a receiver at every destination port first, so that
// the destinations are its own (the sandbox's default policy allows them).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seg6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int base;
static const char *dest4, *dest6, *via4, *via6;

static void report(const char *name, int port, long r) {
	if (r >= 0)
		printf("%s %d: ok\n", name, port);
	else
		printf("%s %d: %s\n", name, port, strerrorname_np(errno));
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

// A segment routing header (type 4) with two segments: the kernel puts the
// destination in segments[0] and sends the packet to segments[1], VIA6.
static int srh(unsigned char *b) {
	struct ipv6_sr_hdr *h = (void *)b;
	memset(b, 0, 40);
	h->hdrlen = 4; // (40 / 8) - 1
	h->type = 4;
	h->segments_left = 1;
	h->first_segment = 1;
	inet_pton(AF_INET6, dest6, &h->segments[0]);
	inet_pton(AF_INET6, via6, &h->segments[1]);
	return 40;
}

// A type 0 routing header via VIA6 (deprecated; Linux refuses it).
static int rh0(unsigned char *b) {
	memset(b, 0, 24);
	b[1] = 2;	   // hdrlen
	b[2] = 0;	   // type
	b[3] = 1;	   // segments left
	inet_pton(AF_INET6, via6, b + 8);
	return 24;
}

// IPv4 options: NOP, then a loose (or strict) source route via VIA4.
static int srr(unsigned char *b, int strict) {
	b[0] = IPOPT_NOP;
	b[1] = strict ? IPOPT_SSRR : IPOPT_LSRR;
	b[2] = 7;
	b[3] = 4;
	inet_pton(AF_INET, via4, b + 4);
	return 8;
}

// receivers binds a UDP receiver and a TCP listener at both destinations
// on every port in [base, base+n).
static void receivers(int n) {
	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = sin4(dest4, base + i);
		struct sockaddr_in6 a6 = sin6(dest6, base + i);
		int types[] = {SOCK_DGRAM, SOCK_STREAM};
		for (int t = 0; t < 2; t++) {
			int s = socket(AF_INET, types[t] | SOCK_CLOEXEC, 0);
			int s6 = socket(AF_INET6, types[t] | SOCK_CLOEXEC, 0);
			if (bind(s, (void *)&a, sizeof a) < 0 || bind(s6, (void *)&a6, sizeof a6) < 0) {
				perror("bind receiver");
				exit(2);
			}
			if (types[t] == SOCK_STREAM) {
				listen(s, 8);
				listen(s6, 8);
			}
		}
	}
}

static long send_cmsg(int s, void *to, socklen_t tolen, int level, int type, unsigned char *data, int len) {
	char cbuf[CMSG_SPACE(64)] = {0};
	struct iovec iov = {"hello", 5};
	struct msghdr m = {.msg_name = to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1,
			   .msg_control = cbuf, .msg_controllen = CMSG_SPACE(len)};
	struct cmsghdr *h = (void *)cbuf;
	h->cmsg_level = level;
	h->cmsg_type = type;
	h->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(h), data, len);
	return sendmsg(s, &m, 0);
}

// tcp_try connects s (non-blocking) and waits a little for the SYN to go.
static void tcp_try(int s, void *to, socklen_t len) {
	fcntl(s, F_SETFL, O_NONBLOCK);
	connect(s, to, len);
	struct pollfd p = {.fd = s, .events = POLLOUT};
	poll(&p, 1, 200);
}

int main(int argc, char **argv) {
	unsigned char opt[64];
	int n, s, i = 0, p;
	long r;

	if (argc != 6)
		return 2;
	base = atoi(argv[1]);
	dest4 = argv[2], dest6 = argv[3], via4 = argv[4], via6 = argv[5];
	receivers(32);
	setvbuf(stdout, NULL, _IOLBF, 0);

#define NEXT() (p = base + i++)
	struct sockaddr_in6 d6;
	struct sockaddr_in d4;

	// Segment routing header, sticky, then sendto.
	NEXT();
	d6 = sin6(dest6, p);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	n = srh(opt);
	report("udp6_rthdr_setsockopt", p, r = setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, opt, n));
	sendto(s, "hello", 5, 0, (void *)&d6, sizeof d6);
	close(s);

	// Connected first (decided), then the header steers untrapped sends.
	NEXT();
	d6 = sin6(dest6, p);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	connect(s, (void *)&d6, sizeof d6);
	report("udp6_rthdr_after_connect", p, setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, opt, n));
	send(s, "hello", 5, 0);
	write(s, "hello", 5);
	close(s);

	// The kernel reads level and optname as ints: high bits are ignored.
	NEXT();
	d6 = sin6(dest6, p);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	report("udp6_rthdr_highbits", p,
	       syscall(SYS_setsockopt, s, (1L << 32) | IPPROTO_IPV6, (1L << 32) | IPV6_RTHDR, opt, n));
	sendto(s, "hello", 5, 0, (void *)&d6, sizeof d6);
	close(s);

	// TCP: the SYN follows the header.
	NEXT();
	d6 = sin6(dest6, p);
	s = socket(AF_INET6, SOCK_STREAM, 0);
	report("tcp6_rthdr_connect", p, setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, opt, n));
	tcp_try(s, &d6, sizeof d6);
	close(s);

	// TCP connected, then the header steers the data.
	NEXT();
	d6 = sin6(dest6, p);
	s = socket(AF_INET6, SOCK_STREAM, 0);
	connect(s, (void *)&d6, sizeof d6);
	report("tcp6_rthdr_after_connect", p, setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, opt, n));
	write(s, "hello", 5);
	usleep(100000);
	close(s);

	// Control messages (Linux takes only type 2 there, with MIP6).
	NEXT();
	d6 = sin6(dest6, p);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	report("udp6_rthdr_cmsg", p, send_cmsg(s, &d6, sizeof d6, IPPROTO_IPV6, IPV6_RTHDR, opt, n));
	close(s);
	NEXT();
	d6 = sin6(dest6, p);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	report("udp6_2292rthdr_cmsg", p, send_cmsg(s, &d6, sizeof d6, IPPROTO_IPV6, IPV6_2292RTHDR, opt, n));
	close(s);
	NEXT();
	d6 = sin6(dest6, p);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	{
		char cbuf[CMSG_SPACE(64)] = {0};
		struct cmsghdr *h = (void *)cbuf;
		h->cmsg_level = IPPROTO_IPV6;
		h->cmsg_type = IPV6_RTHDR;
		h->cmsg_len = CMSG_LEN(n);
		memcpy(CMSG_DATA(h), opt, n);
		report("udp6_2292pktoptions", p, setsockopt(s, IPPROTO_IPV6, IPV6_2292PKTOPTIONS, cbuf, CMSG_SPACE(n)));
	}
	sendto(s, "hello", 5, 0, (void *)&d6, sizeof d6);
	close(s);
	NEXT();
	d6 = sin6(dest6, p);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	{
		unsigned char h0[24];
		report("udp6_rthdr_type0", p, setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, h0, rh0(h0)));
	}
	sendto(s, "hello", 5, 0, (void *)&d6, sizeof d6);
	close(s);

	// A type 2 header (Mobile IPv6; Linux takes it only with MIP6), sticky
	// and as a control message.
	{
		unsigned char h2[24];
		rh0(h2);
		h2[2] = 2;
		NEXT();
		d6 = sin6(dest6, p);
		s = socket(AF_INET6, SOCK_DGRAM, 0);
		report("udp6_rthdr_type2", p, setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, h2, sizeof h2));
		sendto(s, "hello", 5, 0, (void *)&d6, sizeof d6);
		close(s);
		NEXT();
		d6 = sin6(dest6, p);
		s = socket(AF_INET6, SOCK_DGRAM, 0);
		report("udp6_rthdr_type2_cmsg", p, send_cmsg(s, &d6, sizeof d6, IPPROTO_IPV6, IPV6_RTHDR, h2, sizeof h2));
		close(s);
	}

	// IPv4 source routes.
	for (int strict = 0; strict < 2; strict++) {
		NEXT();
		d4 = sin4(dest4, p);
		s = socket(AF_INET, SOCK_DGRAM, 0);
		report(strict ? "udp_ip_options_ssrr" : "udp_ip_options_lsrr", p,
		       setsockopt(s, IPPROTO_IP, IP_OPTIONS, opt, srr(opt, strict)));
		sendto(s, "hello", 5, 0, (void *)&d4, sizeof d4);
		close(s);
	}
	NEXT();
	d4 = sin4(dest4, p);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	report("udp_retopts_cmsg_lsrr", p, send_cmsg(s, &d4, sizeof d4, IPPROTO_IP, IP_RETOPTS, opt, srr(opt, 0)));
	close(s);
	NEXT();
	d4 = sin4(dest4, p);
	s = socket(AF_INET, SOCK_STREAM, 0);
	report("tcp_ip_options_lsrr_connect", p, setsockopt(s, IPPROTO_IP, IP_OPTIONS, opt, srr(opt, 0)));
	tcp_try(s, &d4, sizeof d4);
	close(s);
	NEXT();
	d4 = sin4(dest4, p);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	connect(s, (void *)&d4, sizeof d4);
	report("udp_ip_options_after_connect", p, setsockopt(s, IPPROTO_IP, IP_OPTIONS, opt, srr(opt, 0)));
	send(s, "hello", 5, 0);
	close(s);
	// An IPv6 socket's v4-mapped traffic takes IPv4 options too.
	{
		char m[64];
		snprintf(m, sizeof m, "::ffff:%s", dest4);
		NEXT();
		d6 = sin6(m, p);
		s = socket(AF_INET6, SOCK_DGRAM, 0);
		report("udp6_ip_options_mapped", p, setsockopt(s, IPPROTO_IP, IP_OPTIONS, opt, srr(opt, 0)));
		sendto(s, "hello", 5, 0, (void *)&d6, sizeof d6);
		close(s);
		NEXT();
		d6 = sin6(m, p);
		s = socket(AF_INET6, SOCK_DGRAM, 0);
		report("udp6_retopts_cmsg_mapped", p, send_cmsg(s, &d6, sizeof d6, IPPROTO_IP, IP_RETOPTS, opt, srr(opt, 0)));
		close(s);
	}
	(void)r;
	return 0;
}
