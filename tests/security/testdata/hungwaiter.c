// hungwaiter: a call parked with the supervisor's waiter must not stall the
// other parked calls when it goes on into a page nobody serves yet.
//
// A: sendmmsg of two datagrams to R, an AF_UNIX datagram socket of this
//    process that reads nothing yet; A's send buffer is already full, so
//    the first message waits for room (natively in the kernel; sandboxed,
//    parked with the waiter). The second mmsghdr lies in a page that a
//    userfaultfd registers and nobody serves yet.
// The main thread then drains R: A's first message goes, and reading the
//    second header waits on the page (natively A's copy_from_user; sandboxed,
//    whatever goroutine resumed A).
// C: a blocking AF_UNIX stream connect to a listener whose backlog is full,
//    with SO_SNDTIMEO 300 ms: natively EAGAIN after 300 ms.
// It prints C's errno and whether C returned within 5 s, then serves the
// page and prints what A's sendmmsg returned and whether R got every
// datagram.
// The page and its userfaultfd: uffd.h.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "uffd.h"

static long pagesz;
static char *pages; // two pages: the second is registered
static struct sockaddr_un rname, lname;
static socklen_t rlen, llen;
static int a_sock;
static int a_ret, a_errno;
static atomic_int c_done;
static int c_errno;
static char data[2048];

static void *call_a(void *arg) {
	(void)arg;
	struct mmsghdr *m = (struct mmsghdr *)(pages + pagesz - sizeof(struct mmsghdr));
	static struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
	memset(m, 0, sizeof *m);
	m->msg_hdr.msg_name = &rname;
	m->msg_hdr.msg_namelen = rlen;
	m->msg_hdr.msg_iov = &iov;
	m->msg_hdr.msg_iovlen = 1;
	a_ret = sendmmsg(a_sock, m, 2, 0);
	a_errno = a_ret < 0 ? errno : 0;
	return NULL;
}

static void *call_c(void *arg) {
	(void)arg;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct timeval tv = {.tv_usec = 300 * 1000};
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int r = connect(s, (struct sockaddr *)&lname, llen);
	c_errno = r ? errno : 0;
	atomic_store(&c_done, 1);
	return NULL;
}

static struct sockaddr_un abstract(const char *what, socklen_t *len) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "hungwaiter-%s-%d", what, getpid());
	*len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	return a;
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	pagesz = sysconf(_SC_PAGESIZE);
	int u = uffd_open();
	pages = mmap(NULL, 2 * pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	memset(pages, 0, pagesz);
	uffd_register(u, pages + pagesz);

	// R, and A's socket with its send buffer full of datagrams R has not read.
	rname = abstract("r", &rlen);
	int r = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(r, (struct sockaddr *)&rname, rlen)) {
		perror("bind r");
		return 2;
	}
	a_sock = socket(AF_UNIX, SOCK_DGRAM, 0);
	int small = 4096;
	setsockopt(a_sock, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	int queued = 0;
	while (sendto(a_sock, data, sizeof data, MSG_DONTWAIT, (struct sockaddr *)&rname, rlen) == sizeof data)
		queued++;
	if (errno != EAGAIN || queued == 0) {
		printf("could not fill the send buffer: %s after %d\n", strerror(errno), queued);
		return 2;
	}

	// The listener, its backlog full.
	lname = abstract("l", &llen);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	int filler = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(l, (struct sockaddr *)&lname, llen) || listen(l, 0) || connect(filler, (struct sockaddr *)&lname, llen)) {
		perror("listener");
		return 2;
	}

	pthread_t ta, tc;
	pthread_create(&ta, NULL, call_a, NULL);
	usleep(500 * 1000); // A waits for room (sandboxed: parked with the waiter)
	char b[4096];
	int got = 0;
	while (recv(r, b, sizeof b, MSG_DONTWAIT) > 0)
		got++;
	// A's first message goes now; its second header is on the page.
	if (!uffd_faulted(u)) {
		printf("nobody touched the page\n");
		return 2;
	}
	usleep(100 * 1000);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&tc, NULL, call_c, NULL);
	for (int i = 0; i < 500 && !atomic_load(&c_done); i++)
		usleep(10 * 1000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (atomic_load(&c_done)) {
		long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		printf("C: errno=%d within 5 s: %s\n", c_errno, ms < 2000 ? "yes" : "late");
	} else {
		printf("C: still blocked after 5 s\n");
	}

	char *src = aligned_alloc(pagesz, pagesz);
	memset(src, 0, pagesz);
	struct mmsghdr *m2 = (struct mmsghdr *)src;
	static struct iovec iov2 = {.iov_base = data, .iov_len = 1};
	m2->msg_hdr.msg_name = &rname;
	m2->msg_hdr.msg_namelen = rlen;
	m2->msg_hdr.msg_iov = &iov2;
	m2->msg_hdr.msg_iovlen = 1;
	uffd_serve(u, pages + pagesz, src);
	pthread_join(ta, NULL);
	int after = 0;
	while (recv(r, b, sizeof b, MSG_DONTWAIT) > 0)
		after++;
	// (A's first message may land before the first drain ended or after.)
	printf("A: sendmmsg=%d errno=%d; R got %s\n", a_ret, a_errno,
	       got + after == queued + 2 ? "every datagram" : "fewer or more datagrams than were sent");
	if (!atomic_load(&c_done))
		pthread_join(tc, NULL);
	return 0;
}
