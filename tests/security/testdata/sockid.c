// sockid: tries to confuse the supervisor's cache of socket identities
// (family and type, keyed by SO_COOKIE) into deciding a send on the wrong
// reading of its address. Every send aims at FORBIDDEN (127.0.0.1), in a
// form whose decision depends on the socket's family or type:
//   - AF_UNSPEC: an AF_INET UDP socket sends to the address in it
//     (udp_sendmsg), an AF_INET6 one ignores it (udpv6_sendmsg);
//   - AF_INET: a UDP socket sends to it, a TCP one ignores it.
//
// addrform: an AF_INET6 UDP socket connected to ::ffff:127.0.0.1:ALLOWED
// sends to ALLOWED (the supervisor learns it as AF_INET6), then
// IPV6_ADDRFORM turns it into AF_INET (same socket, same cookie), then it
// sends AF_UNSPEC bytes naming FORBIDDEN: sendto, sendmsg and sendmmsg.
//
// race: a thread keeps replacing fd 100 with a fresh socket (AF_INET6 UDP
// connected to ALLOWED, AF_INET UDP, TCP, AF_INET UDP connected to
// ALLOWED; dup2 over the old one, or close and socket again), while others
// send to FORBIDDEN on fd 100 (AF_UNSPEC and AF_INET, sendto and sendmsg)
// and to ALLOWED (the control: these must get through).
//
// Prints "key: value" lines: addrform (ok or the errno's name),
// addrform_sent, race_allowed_ok, race_forbidden_ok (calls answered as sent).
//
// usage: sockid ALLOWED FORBIDDEN ITERATIONS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FD 100

static int allowed, forbidden;
static long iters;
static atomic_int stop;
static atomic_long allowed_ok, forbidden_ok;

static struct sockaddr_in v4(int port, int family) {
	struct sockaddr_in a = {.sin_family = family, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static struct sockaddr_in6 mapped(int port) {
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr);
	return a;
}

static int v6connected(void) {
	int s = socket(AF_INET6, SOCK_DGRAM, 0);
	struct sockaddr_in6 a = mapped(allowed);
	if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
		close(s);
		return -1;
	}
	return s;
}

static long sendall(int s, int port, int family) {
	struct sockaddr_in a = v4(port, family);
	long n = 0;
	if (sendto(s, "t", 1, 0, (struct sockaddr *)&a, sizeof a) == 1)
		n++;
	struct iovec iov = {.iov_base = "m", .iov_len = 1};
	struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
	if (sendmsg(s, &m, 0) == 1)
		n++;
	struct mmsghdr mm[2] = {{.msg_hdr = m}, {.msg_hdr = m}};
	int r = sendmmsg(s, mm, 2, 0);
	if (r > 0)
		n += r;
	return n;
}

static void *flip(void *arg) {
	(void)arg;
	for (unsigned i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
		int s = -1;
		switch (i % 4) {
		case 0:
			s = v6connected();
			break;
		case 1:
			s = socket(AF_INET, SOCK_DGRAM, 0);
			break;
		case 2:
			s = socket(AF_INET, SOCK_STREAM, 0);
			break;
		case 3: {
			s = socket(AF_INET, SOCK_DGRAM, 0);
			struct sockaddr_in a = v4(allowed, AF_INET);
			connect(s, (struct sockaddr *)&a, sizeof a);
			break;
		}
		}
		if (s < 0)
			continue;
		if (i % 8 < 4) {
			dup2(s, FD);
			close(s);
		} else {
			// close, then let the lowest free number (FD, once the
			// others are taken) come back as another socket
			close(FD);
			if (s != FD) {
				dup2(s, FD);
				close(s);
			}
		}
	}
	return NULL;
}

static void *sender(void *arg) {
	long k = (long)arg;
	for (long i = 0; i < iters; i++) {
		if ((i + k) % 3 == 0) {
			struct sockaddr_in a = v4(allowed, AF_INET);
			if (sendto(FD, "a", 1, MSG_NOSIGNAL, (struct sockaddr *)&a, sizeof a) == 1)
				atomic_fetch_add(&allowed_ok, 1);
			continue;
		}
		int family = (i + k) % 3 == 1 ? AF_UNSPEC : AF_INET;
		struct sockaddr_in a = v4(forbidden, family);
		long n = 0;
		if (i % 2) {
			n = sendto(FD, "f", 1, MSG_NOSIGNAL, (struct sockaddr *)&a, sizeof a) == 1;
		} else {
			struct iovec iov = {.iov_base = "g", .iov_len = 1};
			struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
			n = sendmsg(FD, &m, MSG_NOSIGNAL) == 1; // TCP: EPIPE, no signal
		}
		atomic_fetch_add(&forbidden_ok, n);
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 4)
		return 2;
	allowed = atoi(argv[1]);
	forbidden = atoi(argv[2]);
	iters = atol(argv[3]);

	int s = v6connected();
	if (s < 0) {
		printf("addrform: %s\n", strerrorname_np(errno));
		return 1;
	}
	struct sockaddr_in6 a6 = mapped(allowed);
	for (int i = 0; i < 3; i++)
		sendto(s, "w", 1, 0, (struct sockaddr *)&a6, sizeof a6); // learnt as AF_INET6
	int fam = AF_INET;
	const char *addrform = "ok";
	long sent = 0;
	if (setsockopt(s, IPPROTO_IPV6, IPV6_ADDRFORM, &fam, sizeof fam) != 0)
		addrform = strerrorname_np(errno);
	else
		sent = sendall(s, forbidden, AF_UNSPEC);
	close(s);

	pthread_t f, t[3];
	pthread_create(&f, NULL, flip, NULL);
	for (long k = 0; k < 3; k++)
		pthread_create(&t[k], NULL, sender, (void *)k);
	for (int k = 0; k < 3; k++)
		pthread_join(t[k], NULL);
	atomic_store(&stop, 1);
	pthread_join(f, NULL);
	printf("addrform: %s\naddrform_sent: %ld\nrace_allowed_ok: %ld\nrace_forbidden_ok: %ld\n", addrform, sent,
	       atomic_load(&allowed_ok), atomic_load(&forbidden_ok));
	return 0;
}
