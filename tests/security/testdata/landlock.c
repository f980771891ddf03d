/*
 * landlock.c: a program restricts itself with Landlock (TCP connects to
 * port A only, abstract Unix sockets scoped), then tries to reach port B and
 * an abstract socket outside its domain in every way it can.
 *
 *   landlock restrict|control PORT_A PORT_B|own STREAM_NAME DGRAM_NAME
 *
 * "control" makes the same attempts without the restriction. With "own",
 * the program listens on A and B itself (so the sandbox's "self" default
 * allows both) and prints how many connections reached B.
 * Prints "<attempt>: ok|<errno name>" lines.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct ll_ruleset_attr {
	uint64_t handled_access_fs, handled_access_net, scoped;
};
struct ll_net_port_attr {
	uint64_t allowed_access, port;
} __attribute__((packed));

static int portA, portB;

static const char *res(int r)
{
	static char buf[32];

	if (r >= 0)
		return "ok";
	snprintf(buf, sizeof buf, "%s", strerrorname_np(errno));
	return buf;
}

static int tcp4(int port, int nonblock)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	int r, e;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	r = connect(fd, (struct sockaddr *)&a, sizeof a);
	e = errno;
	if (nonblock && r < 0 && e == EINPROGRESS) {
		/* The attempt went out: wait for its end. */
		struct timeval tv = {2, 0};
		fd_set w;

		FD_ZERO(&w);
		FD_SET(fd, &w);
		select(fd + 1, NULL, &w, NULL, &tv);
		r = 0;
	}
	close(fd);
	errno = e;
	return r;
}

static int mapped6(int port)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	int r, e;

	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr);
	r = connect(fd, (struct sockaddr *)&a, sizeof a);
	e = errno;
	close(fd);
	errno = e;
	return r;
}

static int unspec_then_b(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(portA)};
	struct sockaddr_in u = {.sin_family = AF_UNSPEC};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int r, e;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		return -1;
	connect(fd, (struct sockaddr *)&u, sizeof u);
	a.sin_port = htons(portB);
	r = connect(fd, (struct sockaddr *)&a, sizeof a);
	e = errno;
	close(fd);
	errno = e;
	return r;
}

static void *thread_b(void *arg)
{
	(void)arg;
	printf("b_thread: %s\n", res(tcp4(portB, 0)));
	return NULL;
}

static socklen_t abstract(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	strncpy(a->sun_path + 1, name, sizeof a->sun_path - 2);
	return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

static int listener(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("listener");
		exit(2);
	}
	*port = ntohs(a.sin_port);
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_un ua;
	socklen_t ulen;
	int own, lA = -1, lB = -1, fd, r;
	pthread_t t;

	if (argc != 6) {
		fprintf(stderr, "usage: landlock restrict|control PORT_A PORT_B|own STREAM DGRAM\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	own = strcmp(argv[3], "own") == 0;
	if (own) {
		lA = listener(&portA);
		lB = listener(&portB);
	} else {
		portA = atoi(argv[2]);
		portB = atoi(argv[3]);
	}
	if (strcmp(argv[1], "restrict") == 0) {
		struct ll_ruleset_attr attr = {.handled_access_net = 1 << 1, .scoped = 1};
		struct ll_net_port_attr rule = {.allowed_access = 1 << 1, .port = portA};
		int rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);

		if (rs < 0 || syscall(SYS_landlock_add_rule, rs, 2, &rule, 0) < 0 ||
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_landlock_restrict_self, rs, 0) < 0) {
			perror("landlock");
			return 2;
		}
		close(rs);
	}
	printf("a: %s\n", res(tcp4(portA, 0)));
	printf("b: %s\n", res(tcp4(portB, 0)));
	printf("b_nonblock: %s\n", res(tcp4(portB, 1)));
	printf("b_mapped6: %s\n", res(mapped6(portB)));
	printf("b_after_unspec: %s\n", res(unspec_then_b()));
	fflush(stdout);
	if (fork() == 0) {
		printf("b_child: %s\n", res(tcp4(portB, 0)));
		fflush(stdout);
		_exit(0);
	}
	wait(NULL);
	pthread_create(&t, NULL, thread_b, NULL);
	pthread_join(t, NULL);

	ulen = abstract(&ua, argv[4]);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	printf("abstract_stream: %s\n", res(connect(fd, (struct sockaddr *)&ua, ulen)));
	close(fd);
	ulen = abstract(&ua, argv[5]);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	printf("abstract_sendto: %s\n", res(sendto(fd, "x", 1, 0, (struct sockaddr *)&ua, ulen)));
	{
		struct iovec iov = {"x", 1};
		struct msghdr m = {.msg_name = &ua, .msg_namelen = ulen, .msg_iov = &iov, .msg_iovlen = 1};

		printf("abstract_sendmsg: %s\n", res(sendmsg(fd, &m, 0)));
	}
	printf("abstract_dgram_connect: %s\n", res(connect(fd, (struct sockaddr *)&ua, ulen)));
	close(fd);

	if (own) {
		int n = 0;

		usleep(200 * 1000);
		while ((r = accept(lB, NULL, NULL)) >= 0) {
			close(r);
			n++;
		}
		printf("own_arrivals_b: %d\n", n);
		close(lA);
		close(lB);
	}
	return 0;
}
