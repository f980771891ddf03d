/* resetstorm N THREADS [v6]: N blocking connects, spread over THREADS client
 * threads, each on a fresh socket, to a loopback server (a child process)
 * that accepts and at once resets (SO_LINGER {1, 0}). Prints how many
 * connects failed, and with which errno. Natively almost none do: a
 * blocking connect returns 0 once the handshake completed, and the reset
 * belongs to the next call. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sockaddr_storage addr;
static socklen_t addrlen;
static int per_thread;
static int failed, reset, other;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *client(void *arg)
{
	(void)arg;
	for (int i = 0; i < per_thread; i++) {
		int s = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0) {
			perror("socket");
			exit(2);
		}
		if (connect(s, (struct sockaddr *)&addr, addrlen) < 0) {
			int e = errno;
			pthread_mutex_lock(&mu);
			failed++;
			if (e == ECONNRESET)
				reset++;
			else
				other++;
			pthread_mutex_unlock(&mu);
		}
		close(s);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: resetstorm N THREADS [v6]\n");
		return 2;
	}
	int n = atoi(argv[1]), threads = atoi(argv[2]), v6 = argc > 3;
	int one = 1;
	int l = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&addr, 0, sizeof addr);
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&addr;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		addrlen = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&addr;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		addrlen = sizeof *a;
	}
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (l < 0 || bind(l, (struct sockaddr *)&addr, addrlen) < 0 || listen(l, 4096) < 0) {
		perror("listen");
		return 2;
	}
	getsockname(l, (struct sockaddr *)&addr, &addrlen);
	pid_t srv = fork();
	if (srv == 0) {
		for (;;) {
			int c = accept(l, NULL, NULL);
			if (c < 0)
				continue;
			struct linger lg = {1, 0};
			setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
			close(c);
		}
	}
	close(l);
	per_thread = n / threads;
	pthread_t t[256];
	for (int i = 0; i < threads && i < 256; i++)
		pthread_create(&t[i], NULL, client, NULL);
	for (int i = 0; i < threads && i < 256; i++)
		pthread_join(t[i], NULL);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	printf("total=%d failed=%d econnreset=%d other=%d\n", per_thread * threads, failed, reset, other);
	return 0;
}
