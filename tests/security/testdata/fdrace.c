// fdrace: races the descriptor table against the supervisor.
//
// A victim child holds an unconnected TCP socket at fd 100. In the attacker,
// one thread keeps replacing its own fd 100 (a fresh TCP socket, a UDP
// socket, a pipe, nothing) while another connects fd 100 in a loop; then
// short-lived children connect on fd 100 and are killed mid-call, churning
// pids. The supervisor must only ever connect the calling thread's own
// socket: the victim's fd 100 stays unconnected.
//
// usage: fdrace PORT ITERATIONS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD 100

static atomic_int stop;
static struct sockaddr_in addr;

static void *flip(void *arg) {
	(void)arg;
	int u = socket(AF_INET, SOCK_DGRAM, 0), p[2];
	pipe(p);
	for (unsigned i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
		switch (i % 4) {
		case 0: {
			int t = socket(AF_INET, SOCK_STREAM, 0);
			dup2(t, FD);
			close(t);
			break;
		}
		case 1:
			dup2(u, FD);
			break;
		case 2:
			dup2(p[0], FD);
			break;
		case 3:
			close(FD);
			break;
		}
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 3)
		return 2;
	addr.sin_family = AF_INET;
	addr.sin_port = htons(atoi(argv[1]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	long n = atol(argv[2]);

	int ready[2], done[2], verdict[2];
	pipe(ready), pipe(done), pipe(verdict);
	pid_t victim = fork();
	if (victim == 0) {
		int t = socket(AF_INET, SOCK_STREAM, 0);
		dup2(t, FD);
		write(ready[1], "r", 1);
		char c;
		read(done[0], &c, 1);
		struct sockaddr_in peer;
		socklen_t len = sizeof peer;
		int connected = getpeername(FD, (void *)&peer, &len) == 0;
		write(verdict[1], connected ? "y" : "n", 1);
		_exit(0);
	}
	char c;
	read(ready[0], &c, 1);

	pthread_t t;
	pthread_create(&t, NULL, flip, NULL);
	long counts[256] = {0};
	for (long i = 0; i < n; i++) {
		int r = connect(FD, (void *)&addr, sizeof addr);
		counts[r == 0 ? 0 : errno & 255]++;
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);

	// Pid churn: children killed in the middle of their connect.
	long killed = 0;
	for (long i = 0; i < n / 20; i++) {
		pid_t k = fork();
		if (k == 0) {
			int s = socket(AF_INET, SOCK_STREAM, 0);
			dup2(s, FD);
			for (;;)
				connect(FD, (void *)&addr, sizeof addr);
		}
		if (i % 2)
			usleep(50);
		kill(k, SIGKILL);
		waitpid(k, NULL, 0);
		killed++;
	}

	write(done[1], "d", 1);
	read(verdict[0], &c, 1);
	waitpid(victim, NULL, 0);
	printf("connects=%ld ok=%ld", n, counts[0]);
	for (int e = 1; e < 256; e++)
		if (counts[e])
			printf(" %s=%ld", strerrorname_np(e), counts[e]);
	printf("\nkilled_children=%ld\nvictim_connected=%s\n", killed, c == 'y' ? "yes" : "no");
	return 0;
}
