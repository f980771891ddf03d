// mmsgpath DIR: a blocking sendmmsg of two datagrams on a Unix socket
// connected to a full receiver: the first (no address) waits for room, the
// second names another path. A thread drains the receiver after 300 ms.
// Prints "sendmmsg=N" and what the second receiver got.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int r1;

static struct sockaddr_un addr(const char *dir, const char *name) {
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	snprintf(u.sun_path, sizeof u.sun_path, "%s/%s", dir, name);
	return u;
}

static void *drain(void *arg) {
	(void)arg;
	char b[16];
	usleep(300 * 1000);
	while (recv(r1, b, sizeof b, MSG_DONTWAIT) > 0)
		;
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	struct sockaddr_un a1 = addr(argv[1], "r1"), a2 = addr(argv[1], "r2");
	r1 = socket(AF_UNIX, SOCK_DGRAM, 0);
	int r2 = socket(AF_UNIX, SOCK_DGRAM, 0), s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(r1, (void *)&a1, sizeof a1) || bind(r2, (void *)&a2, sizeof a2) || connect(s, (void *)&a1, sizeof a1)) {
		perror("setup");
		return 2;
	}
	int filled = 0;
	while (send(s, "f", 1, MSG_DONTWAIT) == 1)
		filled++;
	if (errno != EAGAIN) {
		perror("fill");
		return 2;
	}
	pthread_t t;
	pthread_create(&t, NULL, drain, NULL);
	struct iovec iov[2] = {{.iov_base = "1", .iov_len = 1}, {.iov_base = "2", .iov_len = 1}};
	struct mmsghdr m[2] = {
		{.msg_hdr = {.msg_iov = &iov[0], .msg_iovlen = 1}},
		{.msg_hdr = {.msg_name = &a2, .msg_namelen = sizeof a2, .msg_iov = &iov[1], .msg_iovlen = 1}},
	};
	int n = sendmmsg(s, m, 2, 0);
	char b[4] = {0};
	int got = recv(r2, b, sizeof b, MSG_DONTWAIT);
	printf("filled>0=%d sendmmsg=%d r2=%d:%s\n", filled > 0, n, got, got > 0 ? b : "");
	return 0;
}
