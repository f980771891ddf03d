// tidreuse: churns thread ids so that a tid the supervisor has cached (a
// PIDFD_THREAD pidfd, a tid -> tgid hint) comes back as another thread of
// another process, and checks each send is performed on the calling
// thread's own socket. Run it in a pid namespace with a small pid_max.
//
// ROUNDS times: fork PAR children at once; each binds a UDP socket at fd 100 to a
// port of its own, then starts THREADS threads one after the other, each
// sending "PORT TID" from fd 100 to 127.0.0.1:DEST (sendto, sendmsg) and
// to 127.0.0.1:FORBIDDEN (must be denied). The receiver checks that each
// datagram's source port is the port it names: a datagram sent on another
// child's socket would come from that child's port.
//
// Prints "key: value" lines: sent (sends answered as sent to DEST),
// forbidden_sent, tids (thread ids seen), reused (tids seen in more than
// one child).
//
// usage: tidreuse DEST FORBIDDEN ROUNDS THREADS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD 100
#define MAXTID 65536
#define PAR 3 // children alive at once: a stale tgid can name a live one

static int dest, forbidden, port; // port: this child's own
static struct shared {
	long sent, forbidden_sent;
	int owner[MAXTID]; // the round that last used the tid, +1
	long reused;
} *sh;

static struct sockaddr_in to(int p) {
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static void *thread(void *arg) {
	int round = (int)(long)arg; // the child's id
	int tid = gettid();
	if (tid < MAXTID) {
		if (sh->owner[tid] != 0 && sh->owner[tid] != round + 1)
			__atomic_fetch_add(&sh->reused, 1, __ATOMIC_RELAXED);
		sh->owner[tid] = round + 1;
	}
	char msg[64];
	int n = snprintf(msg, sizeof msg, "%d %d", port, tid);
	struct sockaddr_in a = to(dest), f = to(forbidden);
	if (sendto(FD, msg, n, 0, (struct sockaddr *)&a, sizeof a) == n)
		__atomic_fetch_add(&sh->sent, 1, __ATOMIC_RELAXED);
	struct iovec iov = {.iov_base = msg, .iov_len = n};
	struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
	if (sendmsg(FD, &m, 0) == n)
		__atomic_fetch_add(&sh->sent, 1, __ATOMIC_RELAXED);
	if (sendto(FD, msg, n, 0, (struct sockaddr *)&f, sizeof f) == n)
		__atomic_fetch_add(&sh->forbidden_sent, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void child(int id, int threads) {
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in b = to(0);
	socklen_t l = sizeof b;
	if (s < 0 || bind(s, (struct sockaddr *)&b, sizeof b) != 0 || getsockname(s, (struct sockaddr *)&b, &l) != 0 ||
	    dup2(s, FD) != FD)
		_exit(1);
	port = ntohs(b.sin_port);
	for (int i = 0; i < threads; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, thread, (void *)(long)id) != 0)
			_exit(1);
		pthread_join(t, NULL);
	}
	_exit(0);
}

int main(int argc, char **argv) {
	if (argc < 5)
		return 2;
	dest = atoi(argv[1]);
	forbidden = atoi(argv[2]);
	int rounds = atoi(argv[3]), threads = atoi(argv[4]);
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	for (int r = 0; r < rounds; r++) {
		pid_t c[PAR];
		for (int k = 0; k < PAR; k++) {
			c[k] = fork();
			if (c[k] < 0) {
				perror("fork");
				return 1;
			}
			if (c[k] == 0)
				child(r * PAR + k, threads);
		}
		for (int k = 0; k < PAR; k++) {
			int st;
			if (waitpid(c[k], &st, 0) != c[k] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "child failed\n");
				return 1;
			}
		}
	}
	long tids = 0;
	for (int i = 0; i < MAXTID; i++)
		tids += sh->owner[i] != 0;
	printf("sent: %ld\nforbidden_sent: %ld\ntids: %ld\nreused: %ld\n", sh->sent, sh->forbidden_sent, tids, sh->reused);
	return 0;
}
