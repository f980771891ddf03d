/*
 * Loopback TCP connect cycle: socket, connect, accept, close.
 *
 * usage: tcp_connect [ITERATIONS] [thread|inline|proc|refused]
 *
 * thread (default): a listener thread accepts on 127.0.0.1 and closes each
 *   accepted socket; the client waits for that close (read() returns EOF),
 *   so each timed cycle includes the peer's accept and both cross-thread
 *   wakeups a real client/server pair pays.
 * inline: the same thread calls accept() right after connect() returns (on
 *   loopback the handshake is complete by then) and closes both ends: the
 *   same syscalls without scheduler wakeups, so less noise and a smaller
 *   native baseline.
 * proc: as thread, but the accepting server is a forked child process: the
 *   cross-process case (a client and a local server in one tree).
 *
 * The client closes with SO_LINGER{1,0}: a reset, so neither side keeps a
 * TIME_WAIT entry and a long run cannot exhaust the ephemeral ports. (In
 * thread mode a reset from the listener side could overtake the client's
 * connect() and fail it with ECONNRESET, hence the client side.)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static int lfd;
static const struct linger reset = {.l_onoff = 1, .l_linger = 0};

static int accept_one(void)
{
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			return c;
		if (errno != EINTR && errno != ECONNABORTED)
			bench_die("accept");
	}
}

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;)
		close(accept_one());
	return NULL;
}

static int connect_one(const struct sockaddr_in *addr)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		bench_die("socket");
	if (connect(s, (const struct sockaddr *)addr, sizeof *addr) != 0)
		bench_die("connect");
	return s;
}

static void close_reset(int s)
{
	if (setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof reset) != 0)
		bench_die("setsockopt(SO_LINGER)");
	close(s);
}

static void cycle_thread(const void *addr)
{
	int s = connect_one(addr);
	char b;
	ssize_t r;
	do {
		r = read(s, &b, 1);
	} while (r < 0 && errno == EINTR);
	if (r != 0)
		bench_die("read (expected EOF)");
	close_reset(s);
}

/*
 * refused: a connect that fails at once. Natively the port is closed
 * (bound, not listening): ECONNREFUSED from the loopback RST. Under the
 * sandbox the bench passes --deny for it: EACCES from the supervisor. The
 * two are compared: what a denial costs against what a refusal costs.
 */
static void cycle_refused(const void *arg)
{
	const struct sockaddr_in *addr = arg;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		bench_die("socket");
	if (connect(s, (const struct sockaddr *)addr, sizeof *addr) == 0 ||
	    (errno != ECONNREFUSED && errno != EACCES))
		bench_die("connect (expected ECONNREFUSED or EACCES)");
	close(s);
}

static void cycle_inline(const void *addr)
{
	int s = connect_one(addr);
	int c = accept_one();
	close_reset(s);
	close(c);
}

int main(int argc, char **argv)
{
	long n = bench_iters(argc, argv, 2000);
	int inl = 0, refused = 0, proc = 0;
	if (argc > 2) {
		if (strcmp(argv[2], "inline") == 0)
			inl = 1;
		else if (strcmp(argv[2], "refused") == 0)
			refused = 1;
		else if (strcmp(argv[2], "proc") == 0)
			proc = 1;
		else if (strcmp(argv[2], "thread") != 0) {
			fprintf(stderr, "usage: %s [ITERATIONS] [thread|inline|proc|refused]\n", argv[0]);
			return 2;
		}
	}
	void (*cycle)(const void *) = refused ? cycle_refused : inl ? cycle_inline : cycle_thread;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		bench_die("socket(listener)");
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in addr = {.sin_family = AF_INET};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0)
		bench_die("bind");
	socklen_t alen = sizeof addr;
	if (getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0)
		bench_die("getsockname");
	if (!refused && listen(lfd, 1024) != 0)
		bench_die("listen");

	pid_t server = 0;
	if (proc) {
		if ((server = fork()) < 0)
			bench_die("fork");
		if (server == 0)
			acceptor(NULL);
		close(lfd);
	} else if (!inl && !refused) {
		pthread_t th;
		if ((errno = pthread_create(&th, NULL, acceptor, NULL)) != 0)
			bench_die("pthread_create");
	}

	bench_run(refused ? "tcp_denied" : inl ? "tcp_connect_inline" : proc ? "tcp_connect_proc" : "tcp_connect", n, cycle, &addr);
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	/* exit() ends the listener thread too. */
	exit(0);
}
