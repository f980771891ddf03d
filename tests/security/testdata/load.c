// load: THREADS threads each make COUNT connect cycles to 127.0.0.1:PORT
// (socket, connect, close with a reset) and the totals are printed by
// result. Under the sandbox every call must be answered, as natively.
//
// usage: load THREADS COUNT PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in dst;
static long count;
static atomic_long ok, failed[256];

static void *worker(void *arg) {
	(void)arg;
	struct linger reset = {1, 0};
	for (long i = 0; i < count; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0) {
			atomic_fetch_add(&failed[errno & 255], 1);
			continue;
		}
		if (connect(s, (void *)&dst, sizeof dst) == 0)
			atomic_fetch_add(&ok, 1);
		else
			atomic_fetch_add(&failed[errno & 255], 1);
		setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
		close(s);
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc != 4)
		return 2;
	int threads = atoi(argv[1]);
	count = atol(argv[2]);
	dst.sin_family = AF_INET;
	dst.sin_port = htons(atoi(argv[3]));
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	pthread_t t[threads];
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("connected=%ld", atomic_load(&ok));
	for (int e = 0; e < 256; e++)
		if (atomic_load(&failed[e]))
			printf(" %s=%ld", strerrorname_np(e), atomic_load(&failed[e]));
	printf("\n");
	return 0;
}
