// verdict: the whole sequence a program observes when it connects to
// IP:PORT, blocking or not. Run against a real network situation (a twin
// built in a namespace) and against a sandbox verdict, the outputs must be
// identical.
//
// usage: verdict block|nonblock IP PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

// Elapsed times are printed in coarse buckets: the sequence must match, the
// exact timing cannot.
static const char *bucket(double s) {
	if (s < 0.5)
		return "<0.5s";
	if (s < 1.6)
		return "~1s";
	if (s < 2.4)
		return "~2s";
	if (s < 4.5)
		return "~3s";
	return ">4.5s";
}

static const char *err(int e) { return e ? strerrorname_np(e) : "0"; }

static const char *events(short ev) {
	static char b[64];
	b[0] = 0;
	if (!ev)
		return "none";
	if (ev & POLLOUT)
		strcat(b, "out|");
	if (ev & POLLERR)
		strcat(b, "err|");
	if (ev & POLLHUP)
		strcat(b, "hup|");
	if (ev & POLLIN)
		strcat(b, "in|");
	b[strlen(b) - 1] = 0;
	return b;
}

static int so_error(int fd) {
	int e = 0;
	socklen_t l = sizeof e;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
	return e;
}

static const char *peer(int fd) {
	struct sockaddr_storage a;
	socklen_t l = sizeof a;
	return getpeername(fd, (void *)&a, &l) ? err(errno) : "connected";
}

int main(int argc, char **argv) {
	if (argc != 4)
		return 2;
	int nonblock = strcmp(argv[1], "nonblock") == 0;
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
	inet_pton(AF_INET, argv[2], &dst.sin_addr);

	// A live listener of our own, to show the socket is usable afterwards.
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in live = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t ll = sizeof live;
	bind(l, (void *)&live, sizeof live);
	listen(l, 4);
	getsockname(l, (void *)&live, &ll);

	int s = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	double t0 = now();
	int r = connect(s, (void *)&dst, sizeof dst);
	int e = r ? errno : 0;
	printf("connect: ret=%d errno=%s after=%s\n", r, err(e), bucket(now() - t0));
	if (nonblock && e == EINPROGRESS) {
		struct pollfd p = {.fd = s, .events = POLLOUT};
		int n = poll(&p, 1, 20);
		if (n == 0) {
			printf("pending: poll=none so_error=%s peer=%s", err(so_error(s)), peer(s));
			r = connect(s, (void *)&dst, sizeof dst);
			printf(" again=%s\n", r ? err(errno) : "0");
			n = poll(&p, 1, 10000);
		}
		printf("done: poll=%s after=%s so_error=%s peer=%s\n", events(p.revents), bucket(now() - t0),
		       err(so_error(s)), peer(s));
	} else {
		printf("after: so_error=%s peer=%s\n", err(so_error(s)), peer(s));
	}
	// The same socket connects again: Linux keeps it usable after a failure.
	int fl = fcntl(s, F_GETFL);
	fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
	r = connect(s, (void *)&live, sizeof live);
	printf("reuse: ret=%d errno=%s peer=%s\n", r, err(r ? errno : 0), peer(s));
	return 0;
}
