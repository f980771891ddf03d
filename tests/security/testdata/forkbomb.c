// forkbomb: forks until RLIMIT_NPROC says no; every child connects to
// 127.0.0.1:DENIED and reports the errno through a pipe. Then the parent,
// with the bomb still alive, connects to its own listener.
//
// usage: forkbomb DENIED_PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 2)
		return 2;
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int p[2];
	pipe(p);
	int children = 0;
	for (;;) {
		pid_t c = fork();
		if (c < 0)
			break; // EAGAIN: the limit
		if (c == 0) {
			close(p[0]);
			int s = socket(AF_INET, SOCK_STREAM, 0);
			int e = connect(s, (void *)&dst, sizeof dst) == 0 ? 0 : errno;
			write(p[1], &e, sizeof e);
			pause(); // hold the process slot until the parent is done
			_exit(0);
		}
		children++;
	}
	close(p[1]);
	int eacces = 0, other = 0;
	for (int i = 0; i < children; i++) {
		int e;
		if (read(p[0], &e, sizeof e) != sizeof e)
			break;
		if (e == EACCES)
			eacces++;
		else
			other++;
	}
	// Still responsive under the bomb: a connect to our own listener.
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in own = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t ol = sizeof own;
	bind(l, (void *)&own, sizeof own);
	listen(l, 4);
	getsockname(l, (void *)&own, &ol);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(s, (void *)&own, sizeof own);
	printf("children=%d eacces=%d other=%d own=%s\n", children, eacces, other, r == 0 ? "ok" : strerrorname_np(errno));
	fflush(stdout);
	kill(0, SIGKILL); // the whole process group, ourselves included
	return 0;
}
