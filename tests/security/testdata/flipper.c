// flipper: one thread flips a shared sockaddr between an allowed and a
// denied port while another connects in a loop. Under the sandbox, no
// connect may reach the denied port: the supervisor decides on its own copy
// of the address and connects with that copy.
//
// usage: flipper ALLOWED_PORT DENIED_PORT ATTEMPTS [sendto|sendmsg|sendmmsg]
// With a send mode, the loop sends UDP datagrams instead: with sendto(2),
// with sendmsg(2) (the flipped address behind msg_name), or with
// sendmmsg(2) in vectors of 8 messages that all point at it.
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

static struct sockaddr_in addr;
static atomic_int stop;
static uint16_t ports[2];

static void *flip(void *arg) {
	(void)arg;
	for (unsigned i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i++)
		*(volatile uint16_t *)&addr.sin_port = ports[i & 1];
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 4)
		return 2;
	ports[0] = htons(atoi(argv[1]));
	ports[1] = htons(atoi(argv[2]));
	long n = atol(argv[3]);
	const char *mode = argc > 4 ? argv[4] : "connect";
	int udp = strcmp(mode, "connect") != 0;
	int viamsg = strcmp(mode, "sendmsg") == 0, viammsg = strcmp(mode, "sendmmsg") == 0;
	struct iovec iov = {"x", 1};
	struct mmsghdr mm[8];
	memset(mm, 0, sizeof mm);
	for (int i = 0; i < 8; i++)
		mm[i].msg_hdr = (struct msghdr){.msg_name = &addr, .msg_namelen = sizeof addr, .msg_iov = &iov, .msg_iovlen = 1};
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = ports[0];
	pthread_t t;
	pthread_create(&t, NULL, flip, NULL);
	long ok = 0, denied = 0, other = 0;
	struct linger reset = {1, 0};
	int us = socket(AF_INET, SOCK_DGRAM, 0);
	for (long i = 0; viammsg && i < n; i += 8) {
		int r = sendmmsg(us, mm, 8, 0);
		if (r > 0)
			ok += r;
		/* A short count means message r was refused (its errno is not
		 * reported); -1, that the first was. */
		if (r >= 0 && r < 8)
			denied++;
		else if (r < 0 && errno == EACCES)
			denied++;
		else if (r < 0)
			other++;
	}
	for (long i = 0; udp && !viammsg && i < n; i++) {
		ssize_t r = viamsg ? sendmsg(us, &mm[0].msg_hdr, 0) : sendto(us, "x", 1, 0, (void *)&addr, sizeof addr);
		if (r == 1)
			ok++;
		else if (errno == EACCES)
			denied++;
		else
			other++;
	}
	for (long i = 0; !udp && i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (void *)&addr, sizeof addr) == 0)
			ok++;
		else if (errno == EACCES)
			denied++;
		else
			other++;
		setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
		close(s);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	printf("connected=%ld denied=%ld other=%ld\n", ok, denied, other);
	return 0;
}
