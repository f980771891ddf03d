// answered: parks N blocking connects on a tarpit (a loopback listener whose
// accept queue is full: SYNs are dropped), then makes M connects, M sendtos
// and M sendmsgs, each from a new thread, one at a time. Every one of those
// must return; it prints a histogram of errnos per operation, then "done".
// Run it with a low RLIMIT_NOFILE so that the supervisor runs out of
// descriptors.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in tarpit, live, udp;
static int hist[3][256];
static int pendDone[256];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int listener(int backlog, struct sockaddr_in *out) {
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof a;
	if (fd < 0 || bind(fd, (void *)&a, sizeof a) || listen(fd, backlog) || getsockname(fd, (void *)out, &l)) {
		perror("listener");
		exit(2);
	}
	return fd;
}

static void *pend(void *arg) {
	(void)arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int e = fd < 0 ? 255 : 0;
	if (fd >= 0 && connect(fd, (void *)&tarpit, sizeof tarpit))
		e = errno; // the supervisor ran out: answered, not parked
	pthread_mutex_lock(&mu);
	pendDone[e & 255]++;
	pthread_mutex_unlock(&mu);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *acceptor(void *arg) {
	int l = *(int *)arg;
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c >= 0)
			close(c);
	}
	return NULL;
}

static void *one(void *arg) {
	int op = (int)(long)arg, e = 0, fd;
	fd = socket(AF_INET, op == 0 ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0) {
		e = 255; // the program's own EMFILE: not the supervisor's
	} else if (op == 0) {
		if (connect(fd, (void *)&live, sizeof live))
			e = errno;
	} else if (op == 1) {
		if (sendto(fd, "x", 1, 0, (void *)&udp, sizeof udp) < 0)
			e = errno;
	} else {
		struct iovec iov = {.iov_base = "x", .iov_len = 1};
		struct msghdr m = {.msg_name = &udp, .msg_namelen = sizeof udp, .msg_iov = &iov, .msg_iovlen = 1};
		if (sendmsg(fd, &m, 0) < 0)
			e = errno;
	}
	if (fd >= 0)
		close(fd);
	hist[op][e & 255]++;
	return NULL;
}

static void print(const char *name, int *h) {
	printf("%s", name);
	for (int e = 0; e < 256; e++)
		if (h[e])
			printf(" %d:%d", e, h[e]);
	printf("\n");
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 90, m = argc > 2 ? atoi(argv[2]) : 20;
	setvbuf(stdout, NULL, _IOLBF, 0);
	listener(0, &tarpit);
	int filler = socket(AF_INET, SOCK_STREAM, 0); // fills the accept queue
	if (connect(filler, (void *)&tarpit, sizeof tarpit)) {
		perror("filler");
		return 2;
	}
	int l = listener(128, &live);
	pthread_t t;
	pthread_create(&t, NULL, acceptor, &l);
	udp = live; // a UDP port nobody has bound: the datagram just leaves
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (int i = 0; i < n; i++) {
		if (pthread_create(&t, &attr, pend, NULL)) {
			perror("pthread_create");
			return 2;
		}
	}
	sleep(2); // let them park
	pthread_mutex_lock(&mu);
	print("parked-returned", pendDone);
	pthread_mutex_unlock(&mu);
	const char *names[] = {"connect", "sendto", "sendmsg"};
	for (int op = 0; op < 3; op++) {
		for (int i = 0; i < m; i++) {
			pthread_create(&t, &attr, one, (void *)(long)op);
			pthread_join(t, NULL);
		}
		print(names[op], hist[op]);
	}
	printf("done\n");
	_exit(0);
}
