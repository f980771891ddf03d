/*
 * Unix stream connect cycle: socket, connect to PATH, accept in the same
 * thread, close both (as tcp_connect inline: no scheduler wakeups).
 *
 * usage: unix_connect ITERATIONS PATH
 *
 * PATH is given by the runner (in a fresh temporary directory), so that a
 * policy can name it exactly. It is unlinked first and at the end.
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"

static int lfd;

static void cycle(const void *arg)
{
	const struct sockaddr_un *addr = arg;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		bench_die("socket");
	if (connect(s, (const struct sockaddr *)addr, sizeof *addr) != 0)
		bench_die("connect");
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		bench_die("accept");
	close(s);
	close(c);
}

int main(int argc, char **argv)
{
	long n = bench_iters(argc, argv, 2000);
	if (argc != 3) {
		fprintf(stderr, "usage: %s ITERATIONS PATH\n", argv[0]);
		return 2;
	}
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(argv[2]) >= sizeof addr.sun_path) {
		fprintf(stderr, "unix_connect: path too long\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[2]);
	unlink(addr.sun_path);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		bench_die("socket(listener)");
	if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 1024) != 0)
		bench_die("bind/listen");
	bench_run("unix_connect", n, cycle, &addr);
	unlink(addr.sun_path);
	return 0;
}
