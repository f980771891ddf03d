// selfretry: a blocking connect to an abstract name of the tree's own,
// whose backlog is full, waits; then the tree's listener closes, and a
// process outside the tree binds the name at once. Natively the waiting
// connect looks the name up again when the listener closes
// (unix_stream_connect: goto restart) and fails with ECONNREFUSED before
// anyone else can bind it. Sandboxed, the waiter retries the parked connect
// a little later, when the name may be the outsider's: the retry must be
// decided again.
//
// selfretry dgram: the same for a datagram: A's sendto to the tree's
// socket waits for room (A's send buffer is full of datagrams the tree's
// socket has not read); then that socket closes, which frees A's buffer.
//
// It prints "name NAME", then "parked" once A waits, closes the tree's
// socket right after, and prints A's errno.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un name = {.sun_family = AF_UNIX};
static socklen_t len;
static int a_errno = -1;
static int a_sock = -1; // dgram: A's socket, its send buffer full

static void *connect_a(void *arg) {
	(void)arg;
	if (a_sock >= 0) {
		a_errno = sendto(a_sock, "x", 1, 0, (struct sockaddr *)&name, len) < 0 ? errno : 0;
		return NULL;
	}
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	a_errno = connect(s, (struct sockaddr *)&name, len) ? errno : 0;
	return NULL;
}

int main(int argc, char **argv) {
	int dgram = argc > 1 && strcmp(argv[1], "dgram") == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int n = snprintf(name.sun_path + 1, sizeof name.sun_path - 1, "selfretry-%d", getpid());
	len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	int l;
	if (dgram) {
		l = socket(AF_UNIX, SOCK_DGRAM, 0);
		a_sock = socket(AF_UNIX, SOCK_DGRAM, 0);
		int small = 4096;
		static char data[2048];
		setsockopt(a_sock, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
		if (bind(l, (struct sockaddr *)&name, len)) {
			perror("bind");
			return 2;
		}
		int queued = 0;
		while (sendto(a_sock, data, sizeof data, MSG_DONTWAIT, (struct sockaddr *)&name, len) == sizeof data)
			queued++;
		if (errno != EAGAIN || queued == 0) {
			perror("fill");
			return 2;
		}
	} else {
		l = socket(AF_UNIX, SOCK_STREAM, 0);
		int filler = socket(AF_UNIX, SOCK_STREAM, 0);
		if (bind(l, (struct sockaddr *)&name, len) || listen(l, 0) || connect(filler, (struct sockaddr *)&name, len)) {
			perror("listener");
			return 2;
		}
	}
	printf("name %s\n", name.sun_path + 1);
	pthread_t t;
	pthread_create(&t, NULL, connect_a, NULL);
	usleep(500 * 1000); // A waits for room
	printf("parked\n");
	close(l);
	pthread_join(t, NULL);
	printf("A: errno=%d\n", a_errno);
	return 0;
}
