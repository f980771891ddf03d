// selfretry: a blocking connect to an abstract name of the tree's own,
// whose backlog is full, waits; then the tree's listener closes, and a
// process outside the tree binds the name at once. Natively the waiting
// connect looks the name up again when the listener closes
// (unix_stream_connect: goto restart) and fails with ECONNREFUSED before
// anyone else can bind it. Sandboxed, the waiter retries the parked connect
// a little later, when the name may be the outsider's: the retry must be
// decided again.
//
// It prints "name NAME", then "parked" once the connect waits, closes the
// listener right after, and prints A's errno.
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

static void *connect_a(void *arg) {
	(void)arg;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	a_errno = connect(s, (struct sockaddr *)&name, len) ? errno : 0;
	return NULL;
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	int n = snprintf(name.sun_path + 1, sizeof name.sun_path - 1, "selfretry-%d", getpid());
	len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	int filler = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(l, (struct sockaddr *)&name, len) || listen(l, 0) || connect(filler, (struct sockaddr *)&name, len)) {
		perror("listener");
		return 2;
	}
	printf("name %s\n", name.sun_path + 1);
	pthread_t t;
	pthread_create(&t, NULL, connect_a, NULL);
	usleep(300 * 1000);
	printf("parked\n");
	close(l);
	pthread_join(t, NULL);
	printf("A: errno=%d\n", a_errno);
	return 0;
}
