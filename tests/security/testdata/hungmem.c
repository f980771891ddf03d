// hungmem MODE: thread A makes a call whose argument lies in a page that a
// userfaultfd of this process registers and nobody serves yet, so reading
// it waits (natively: A's own copy_from_user; sandboxed: the supervisor's
// process_vm_readv of A's memory). Meanwhile the main thread, B, makes 200
// connects to a loopback listener of its own, which must all finish while
// A waits. B prints "B done; A still blocked", then serves the fault with a
// page holding the real argument, and prints A's errno.
//
// MODE: connect (the address in the page), sendto (the address in the
// page), sendmsg (the msghdr in the page), socklock (thread P sends on a
// connected TCP socket from the page: tcp_sendmsg holds the socket's lock
// while it copies, so A's second connect on that socket waits for the lock,
// natively and in the supervisor alike; once the page arrives, EISCONN),
// fasync (A's blocking AF_UNIX connect waits for room in a full backlog;
// then the program sets O_ASYNC on A's socket, and thread P holds the
// socket's lock in a setsockopt(SO_ATTACH_FILTER) whose filter is on the
// page: a retry that wrote back A's old flags would clear O_ASYNC, which
// calls sock_fasync, which waits for the lock; A must connect once there
// is room, and keep its O_ASYNC: "arrived" is the flag). The page and its
// userfaultfd: uffd.h.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <stddef.h>
#include <sys/un.h>
#include <unistd.h>

#include "uffd.h"

static char *page;
static long pagesz;
static const char *mode;
static struct sockaddr_in tcp_dst, udp_dst;
static atomic_int a_done;
static int a_errno;
static int locked; // socklock: the socket P holds the lock of

static struct sockaddr_un full; // fasync: the listener whose backlog is full
static socklen_t full_len;

static void *send_p(void *arg) {
	(void)arg;
	if (strcmp(mode, "fasync") == 0) {
		struct sock_fprog prog = {.len = 1, .filter = (struct sock_filter *)page};
		setsockopt(locked, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
	} else {
		send(locked, page, 100, 0);
	}
	return NULL;
}

static void *call_a(void *arg) {
	(void)arg;
	int r;
	if (strcmp(mode, "socklock") == 0) {
		r = connect(locked, (struct sockaddr *)&tcp_dst, sizeof tcp_dst);
	} else if (strcmp(mode, "fasync") == 0) {
		r = connect(locked, (struct sockaddr *)&full, full_len);
	} else if (strcmp(mode, "connect") == 0) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		r = connect(s, (struct sockaddr *)page, sizeof(struct sockaddr_in));
	} else if (strcmp(mode, "sendto") == 0) {
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		r = sendto(s, "a", 1, 0, (struct sockaddr *)page, sizeof(struct sockaddr_in)) < 0;
	} else {
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		r = sendmsg(s, (struct msghdr *)page, 0) < 0;
	}
	a_errno = r ? errno : 0;
	atomic_store(&a_done, 1);
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	mode = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	pagesz = sysconf(_SC_PAGESIZE);
	int u = uffd_open();
	page = mmap(NULL, pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	uffd_register(u, page);

	int l = socket(AF_INET, SOCK_STREAM, 0), d = socket(AF_INET, SOCK_DGRAM, 0);
	tcp_dst = udp_dst = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof tcp_dst;
	if (bind(l, (void *)&tcp_dst, sizeof tcp_dst) || listen(l, 256) || getsockname(l, (void *)&tcp_dst, &len) ||
	    bind(d, (void *)&udp_dst, sizeof udp_dst) || getsockname(d, (void *)&udp_dst, &len)) {
		perror("listeners");
		return 2;
	}

	pthread_t t, p_thread;
	int accepted = -1, fl = -1;
	if (strcmp(mode, "fasync") == 0) {
		full.sun_family = AF_UNIX;
		int n = snprintf(full.sun_path + 1, sizeof full.sun_path - 1, "hungmem-%d", getpid());
		full_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
		fl = socket(AF_UNIX, SOCK_STREAM, 0);
		int filler = socket(AF_UNIX, SOCK_STREAM, 0);
		if (bind(fl, (struct sockaddr *)&full, full_len) || listen(fl, 0) ||
		    connect(filler, (struct sockaddr *)&full, full_len)) {
			perror("fasync listener");
			return 2;
		}
		locked = socket(AF_UNIX, SOCK_STREAM, 0);
		pthread_create(&t, NULL, call_a, NULL);
		usleep(200 * 1000); // A waits for room
		fcntl(locked, F_SETFL, fcntl(locked, F_GETFL) | O_ASYNC);
		pthread_create(&p_thread, NULL, send_p, NULL);
	} else if (strcmp(mode, "socklock") == 0) {
		locked = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(locked, (void *)&tcp_dst, sizeof tcp_dst) || (accepted = accept(l, NULL, NULL)) < 0) {
			perror("socklock connect");
			return 2;
		}
		pthread_create(&p_thread, NULL, send_p, NULL);
	} else {
		pthread_create(&t, NULL, call_a, NULL);
	}
	// A (or P) faults on the page: the fault event says it waits.
	if (!uffd_faulted(u)) {
		printf("A never touched the page\n");
		return 2;
	}
	if (strcmp(mode, "socklock") == 0)
		pthread_create(&t, NULL, call_a, NULL); // waits for P's lock
	usleep(100 * 1000);

	int ok = 0;
	for (int i = 0; i < 200; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (void *)&tcp_dst, sizeof tcp_dst) == 0)
			ok++;
		int c = accept(l, NULL, NULL);
		close(c);
		close(s);
	}
	printf("B: %d/200 connected\n", ok);
	printf("B done; A %s\n", atomic_load(&a_done) ? "returned" : "still blocked");

	// Serve the fault with the real argument.
	char *src = aligned_alloc(pagesz, pagesz);
	memset(src, 0, pagesz);
	if (strcmp(mode, "socklock") == 0) {
		memset(src, 'p', pagesz);
	} else if (strcmp(mode, "fasync") == 0) {
		// one filter instruction: accept everything
		*(struct sock_filter *)src = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffff);
	} else if (strcmp(mode, "connect") == 0) {
		memcpy(src, &tcp_dst, sizeof tcp_dst);
	} else if (strcmp(mode, "sendto") == 0) {
		memcpy(src, &udp_dst, sizeof udp_dst);
	} else {
		// msghdr, then its iovec, name and data, all in the page.
		struct msghdr *m = (struct msghdr *)src;
		struct iovec *iov = (struct iovec *)(src + 256);
		memcpy(src + 512, &udp_dst, sizeof udp_dst);
		memcpy(src + 768, "a", 1);
		iov->iov_base = page + 768;
		iov->iov_len = 1;
		m->msg_name = page + 512;
		m->msg_namelen = sizeof udp_dst;
		m->msg_iov = (struct iovec *)(page + 256);
		m->msg_iovlen = 1;
	}
	uffd_serve(u, page, src);
	if (strcmp(mode, "fasync") == 0) {
		pthread_join(p_thread, NULL);
		close(accept(fl, NULL, NULL)); // room for A
	}
	pthread_join(t, NULL);
	char b[128];
	int got = 1;
	if (strcmp(mode, "fasync") == 0) {
		got = (fcntl(locked, F_GETFL) & O_ASYNC) != 0;
	} else if (strcmp(mode, "socklock") == 0) {
		pthread_join(p_thread, NULL);
		got = recv(accepted, b, 100, MSG_WAITALL) == 100;
	} else if (strcmp(mode, "connect") != 0) {
		got = (int)recv(d, b, sizeof b, MSG_DONTWAIT);
	}
	printf("A: errno=%d arrived=%d\n", a_errno, got);
	return 0;
}
