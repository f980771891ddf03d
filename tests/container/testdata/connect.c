// connect: connects to its own listener and to given addresses, printing
// one line per attempt: "NAME: ok" or "NAME: ERRNONAME".
//
//   connect self          listen on 127.0.0.1:0, connect from the main thread
//   connect thread        the same, from a second thread
//   connect IP:PORT       a TCP connect to IP:PORT
//
// Arguments are handled in order; the exit status is 0.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(const char *name, int err) {
	if (err == 0)
		printf("%s: ok\n", name);
	else
		printf("%s: %s\n", name, strerrorname_np(err));
	fflush(stdout);
}

// try connects a new TCP socket to sa and returns 0 or the errno.
static int try(const struct sockaddr_in *sa) {
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	int err = connect(s, (const struct sockaddr *)sa, sizeof *sa) ? errno : 0;
	close(s);
	return err;
}

static struct sockaddr_in self_addr;

static void *thread_main(void *arg) {
	(void)arg;
	return (void *)(long)try(&self_addr);
}

int main(int argc, char **argv) {
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	self_addr.sin_family = AF_INET;
	self_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof self_addr;
	if (l < 0 || bind(l, (struct sockaddr *)&self_addr, sizeof self_addr) ||
	    listen(l, 16) || getsockname(l, (struct sockaddr *)&self_addr, &len)) {
		perror("listener");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "self") == 0) {
			report("self", try(&self_addr));
		} else if (strcmp(argv[i], "thread") == 0) {
			pthread_t t;
			void *ret;
			if (pthread_create(&t, NULL, thread_main, NULL) || pthread_join(t, &ret)) {
				perror("pthread");
				return 1;
			}
			report("thread", (int)(long)ret);
		} else {
			char ip[64];
			int port;
			struct sockaddr_in sa = {.sin_family = AF_INET};
			if (sscanf(argv[i], "%63[^:]:%d", ip, &port) != 2 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
				fprintf(stderr, "bad address %s\n", argv[i]);
				return 1;
			}
			sa.sin_port = htons(port);
			report(argv[i], try(&sa));
		}
	}
	return 0;
}
