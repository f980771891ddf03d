/*
 * Loopback UDP connect: socket, connect to 127.0.0.1:port, close.
 * The port is held by a bound receiver socket so the destination is real.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string.h>

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

/*
 * send: a send() on a connected UDP socket, which carries no address. The
 * sandbox traps only sends with an address, so this must run at native
 * speed. The receiver never reads: once its buffer is full the datagrams
 * are dropped, and send() still succeeds.
 */
static int send_fd;

static void cycle_send(const void *arg)
{
	(void)arg;
	if (send(send_fd, "x", 1, 0) != 1)
		bench_die("send");
}

/*
 * sendmsg: a sendmsg() on the same connected socket, without an address.
 * The filter cannot see msg_name, so every sendmsg is trapped and performed
 * by the supervisor: this measures that cost. sendmsg_addr: with an
 * address, on an unconnected socket: decided, then performed.
 */
static struct sockaddr_in send_to;

static void cycle_sendmsg(const void *arg)
{
	struct iovec iov = {"x", 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	if (arg) {
		m.msg_name = &send_to;
		m.msg_namelen = sizeof send_to;
	}
	if (sendmsg(send_fd, &m, 0) != 1)
		bench_die("sendmsg");
}

/*
 * sendto: sendto() with an address on an unconnected socket: trapped (the
 * address pointer is non-NULL), decided, performed.
 */
static void cycle_sendto(const void *arg)
{
	(void)arg;
	if (sendto(send_fd, "x", 1, 0, (const struct sockaddr *)&send_to, sizeof send_to) != 1)
		bench_die("sendto");
}

/*
 * sendmmsg: two one-byte datagrams in one sendmmsg() on a connected socket,
 * as glibc's resolver sends its A and AAAA queries. Trapped whole; one op
 * is one call.
 */
static void cycle_sendmmsg(const void *arg)
{
	(void)arg;
	struct iovec iov[2] = {{"a", 1}, {"b", 1}};
	struct mmsghdr mm[2] = {{.msg_hdr = {.msg_iov = &iov[0], .msg_iovlen = 1}},
				{.msg_hdr = {.msg_iov = &iov[1], .msg_iovlen = 1}}};
	if (sendmmsg(send_fd, mm, 2, 0) != 2 || mm[0].msg_len != 1 || mm[1].msg_len != 1)
		bench_die("sendmmsg");
}

int main(int argc, char **argv)
{
	long n = bench_iters(argc, argv, 20000);
	int sendmode = argc > 2 && strcmp(argv[2], "send") == 0;

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

	const char *mode = argc > 2 ? argv[2] : "";
	if (strcmp(mode, "sendmsg") == 0 || strcmp(mode, "sendmsg_addr") == 0) {
		int addressed = strcmp(mode, "sendmsg_addr") == 0;
		send_to = addr;
		send_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (send_fd < 0 || (!addressed && connect(send_fd, (struct sockaddr *)&addr, sizeof addr) != 0))
			bench_die("connect(sender)");
		bench_run(addressed ? "udp_sendmsg_addr" : "udp_sendmsg", n, cycle_sendmsg, addressed ? &send_to : NULL);
	} else if (strcmp(mode, "sendto") == 0) {
		send_to = addr;
		if ((send_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
			bench_die("socket(sender)");
		bench_run("udp_sendto", n, cycle_sendto, NULL);
	} else if (strcmp(mode, "sendmmsg") == 0) {
		send_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (send_fd < 0 || connect(send_fd, (struct sockaddr *)&addr, sizeof addr) != 0)
			bench_die("connect(sender)");
		bench_run("udp_sendmmsg", n, cycle_sendmmsg, NULL);
	} else if (sendmode) {
		send_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (send_fd < 0 || connect(send_fd, (struct sockaddr *)&addr, sizeof addr) != 0)
			bench_die("connect(sender)");
		bench_run("udp_send", n, cycle_send, NULL);
	} else {
		bench_run("udp_connect", n, cycle, &addr);
	}
	close(rfd);
	return 0;
}
