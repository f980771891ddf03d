// tarpit: N threads each make a blocking connect to a loopback listener
// whose accept queue is full, so their SYNs are dropped and the connects
// stay pending. It prints "ready" once every thread is started, then, on a
// line from stdin, connects to a live listener, prints the result, and
// waits to be killed.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in tarpit;

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
	if (fd < 0) {
		perror("socket");
		exit(2);
	}
	connect(fd, (void *)&tarpit, sizeof tarpit); // blocks until the process exits
	return NULL;
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);

	listener(0, &tarpit);
	// Fill the accept queue (backlog 0 holds one connection).
	int filler = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(filler, (void *)&tarpit, sizeof tarpit)) {
		perror("filler");
		return 2;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, &attr, pend, NULL)) {
			perror("pthread_create");
			return 2;
		}
	}
	printf("ready\n");
	fflush(stdout);

	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 2;
	struct sockaddr_in live;
	int lfd = listener(16, &live);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(fd, (void *)&live, sizeof live);
	printf("probe=%d errno=%d\n", r, r ? errno : 0);
	fflush(stdout);
	pause(); // until the test kills us, connects still pending
	return 0;
}
