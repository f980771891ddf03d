/*
 * Loopback UDP connect: socket, connect to 127.0.0.1:port, close.
 * The port is held by a bound receiver socket so the destination is real.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

static void cycle(const void *arg)
{
	const struct sockaddr_in *addr = arg;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		bench_die("socket");
	if (connect(s, (const struct sockaddr *)addr, sizeof *addr) != 0)
		bench_die("connect");
	close(s);
}

int main(int argc, char **argv)
{
	long n = bench_iters(argc, argv, 20000);

	int rfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (rfd < 0)
		bench_die("socket(receiver)");
	struct sockaddr_in addr = {.sin_family = AF_INET};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(rfd, (struct sockaddr *)&addr, sizeof addr) != 0)
		bench_die("bind");
	socklen_t alen = sizeof addr;
	if (getsockname(rfd, (struct sockaddr *)&addr, &alen) != 0)
		bench_die("getsockname");

	bench_run("udp_connect", n, cycle, &addr);
	close(rfd);
	return 0;
}
