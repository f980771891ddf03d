// hungpath PATH [sendto]: process A connects to PATH, or sends a datagram
// to it (inside a FUSE mount whose server
// never answers, so A blocks in the lookup, as natively); meanwhile process
// B makes 200 connects to a loopback listener. It prints "B done; A still
// blocked" when B has finished while A had not returned, then waits for A
// (the test aborts the FUSE connection) and prints A's errno.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int l;

static void *acceptor(void *arg) {
	(void)arg;
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c >= 0)
			close(c);
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sockaddr_in live = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof live;
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (void *)&live, sizeof live) || listen(l, 256) || getsockname(l, (void *)&live, &len)) {
		perror("listener");
		return 2;
	}
	pthread_t t;
	pthread_create(&t, NULL, acceptor, NULL);

	pid_t a = fork();
	if (a == 0) {
		struct sockaddr_un u = {.sun_family = AF_UNIX};
		strncpy(u.sun_path, argv[1], sizeof u.sun_path - 1);
		int dgram = argc > 2 && strcmp(argv[2], "sendto") == 0;
		int s = socket(AF_UNIX, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
		int r = dgram ? sendto(s, "x", 1, 0, (void *)&u, sizeof u) < 0 : connect(s, (void *)&u, sizeof u);
		printf("A: errno=%d\n", r ? errno : 0);
		_exit(0);
	}
	usleep(500 * 1000); // A is in the lookup by now

	pid_t b = fork();
	if (b == 0) {
		int ok = 0;
		for (int i = 0; i < 200; i++) {
			int s = socket(AF_INET, SOCK_STREAM, 0);
			if (connect(s, (void *)&live, sizeof live) == 0)
				ok++;
			close(s);
		}
		printf("B: %d of 200 connected\n", ok);
		_exit(0);
	}
	int st;
	waitpid(b, &st, 0);
	printf("B done; A %s\n", waitpid(a, &st, WNOHANG) == 0 ? "still blocked" : "had returned");
	waitpid(a, &st, 0);
	printf("end\n");
	return 0;
}
