/*
 * Load: THREADS threads each make COUNT loopback TCP connects to a listener
 * of this process (socket, connect, close with a reset); an acceptor thread
 * accepts and closes. Adapted from tests/security/testdata/load.c, with its
 * own listener and a BENCH line: ns_per_op is wall time over all connects
 * (throughput = 1e9 / ns_per_op connects/s). Any failed call exits 1.
 *
 * usage: load COUNT [THREADS]   (THREADS defaults to 64)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

static struct sockaddr_in dst;
static long count;
static int lfd;

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			close(c);
		else if (errno != EINTR && errno != ECONNABORTED)
			bench_die("accept");
	}
	return NULL;
}

static void *worker(void *arg)
{
	(void)arg;
	const struct linger reset = {1, 0};
	for (long i = 0; i < count; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			bench_die("socket");
		if (connect(s, (struct sockaddr *)&dst, sizeof dst) != 0)
			bench_die("connect");
		/* A reset: no TIME_WAIT, so 640,000 connects fit the port range. */
		if (setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof reset) != 0)
			bench_die("setsockopt(SO_LINGER)");
		close(s);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	count = bench_iters(argc, argv, 10000);
	int threads = argc > 2 ? atoi(argv[2]) : 64;
	if (threads < 1 || threads > 4096) {
		fprintf(stderr, "usage: %s COUNT [THREADS]\n", argv[0]);
		return 2;
	}
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		bench_die("socket(listener)");
	dst.sin_family = AF_INET;
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof dst;
	if (bind(lfd, (struct sockaddr *)&dst, sizeof dst) != 0 || listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&dst, &alen) != 0)
		bench_die("bind/listen");
	pthread_t a, t[threads];
	if ((errno = pthread_create(&a, NULL, acceptor, NULL)) != 0)
		bench_die("pthread_create");
	long long t0 = bench_now_ns();
	for (int i = 0; i < threads; i++)
		if ((errno = pthread_create(&t[i], NULL, worker, NULL)) != 0)
			bench_die("pthread_create");
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	long long t1 = bench_now_ns();
	bench_report("load", count * threads, t0, t1);
	exit(0);
}
