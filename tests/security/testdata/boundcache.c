// boundcache.c: connects to a Unix socket path N times, waits for a byte on
// FIFO (the test swaps the socket file meanwhile), then connects N times
// again. Prints "before ok=N failed=N" and "after ok=N failed=N".
//
//   boundcache PATH N FIFO
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void round(const char *label, const char *path, int n) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, path, sizeof a.sun_path - 1);
	int ok = 0, failed = 0;
	for (int i = 0; i < n; i++) {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0) {
			perror("socket");
			exit(1);
		}
		if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
			ok++;
		else
			failed++;
		close(s);
	}
	printf("%s ok=%d failed=%d\n", label, ok, failed);
	fflush(stdout);
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: boundcache PATH N FIFO\n");
		return 2;
	}
	int n = atoi(argv[2]);
	round("before", argv[1], n);
	int f = open(argv[3], O_RDONLY | O_CLOEXEC);
	char b;
	if (f < 0 || read(f, &b, 1) != 1) {
		perror("fifo");
		return 1;
	}
	round("after", argv[1], n);
	return 0;
}
