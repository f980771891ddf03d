/* fileflags: a blocking connect leaves the file's other flags to the
 * program. While one thread is in a blocking connect, another sets and
 * clears O_APPEND on the same open file with F_SETFL and reads it back:
 * natively only that thread writes the flags, so it always reads back what
 * it wrote ("lost" counts the times it did not). A supervisor that makes
 * the connect non-blocking for a moment must touch O_NONBLOCK alone: one
 * that writes back flags it read earlier undoes the other thread's change
 * whenever that change falls between its read and its write.
 *
 * The flipping thread writes O_NONBLOCK clear, as it knows the socket to be
 * (a supervisor's brief O_NONBLOCK may show in its reads; that is the
 * documented window, and not what this counts).
 *
 * Cases: a Unix connect that waits for room in a full backlog (the waiter
 * retries it), and 300 TCP connects to the peer's accepting server. */
#include "probe.h"
#include <stdatomic.h>

static atomic_int cur = -1;   /* the socket being connected, or -1 */
static atomic_int stop_flip;  /* the flipper stops */
static atomic_long lost;

/* flip sets and clears O_APPEND on fd once, counting lost writes. */
static void flip(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return;
	fl &= ~O_NONBLOCK;
	if (fcntl(fd, F_SETFL, fl | O_APPEND) == 0 && !(fcntl(fd, F_GETFL) & O_APPEND))
		atomic_fetch_add(&lost, 1);
	if (fcntl(fd, F_SETFL, fl & ~O_APPEND) == 0 && (fcntl(fd, F_GETFL) & O_APPEND))
		atomic_fetch_add(&lost, 1);
}

static void *flipper(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_flip)) {
		int fd = atomic_load(&cur);
		if (fd >= 0)
			flip(fd);
	}
	return NULL;
}

struct conn {
	int fd;
	struct sockaddr_un a;
	socklen_t len;
	int ret, err;
	pthread_t t;
};

static void *unix_connect(void *arg)
{
	struct conn *c = arg;
	errno = 0;
	c->ret = connect(c->fd, (struct sockaddr *)&c->a, c->len);
	c->err = errno;
	return NULL;
}

static void unix_full_backlog(void)
{
	struct conn c = {0};
	char name[64];
	snprintf(name, sizeof name, "fileflags-%d", getpid());
	c.len = sun_abstract_addr(&c.a, name);
	int l = xsocket(AF_UNIX, SOCK_STREAM), filler = xsocket(AF_UNIX, SOCK_STREAM);
	if (bind(l, (struct sockaddr *)&c.a, c.len) || listen(l, 0) ||
	    connect(filler, (struct sockaddr *)&c.a, c.len))
		die("unix listener");
	c.fd = xsocket(AF_UNIX, SOCK_STREAM);
	atomic_store(&lost, 0);
	atomic_store(&stop_flip, 0);
	atomic_store(&cur, c.fd);
	pthread_t f;
	pthread_create(&c.t, NULL, unix_connect, &c);
	pthread_create(&f, NULL, flipper, NULL);
	sleep_ms(1500); /* the waiter retries the connect about 75 times */
	atomic_store(&stop_flip, 1);
	pthread_join(f, NULL);
	close(accept(l, NULL, NULL)); /* room for the connect */
	pthread_join(c.t, NULL);
	report("unix-full-backlog-append", c.ret, c.err, "lost=%ld append=%d", atomic_load(&lost),
	       !!(fcntl(c.fd, F_GETFL) & O_APPEND));
	close(c.fd);
	close(filler);
	close(l);
}

static void tcp_connects(void)
{
	enum { N = 300 };
	static int fds[N];
	struct sockaddr_in peer = sin4(PEER_IP, PEER_PORT_OPEN);
	for (int i = 0; i < N; i++)
		fds[i] = xsocket(AF_INET, SOCK_STREAM);
	atomic_store(&lost, 0);
	atomic_store(&stop_flip, 0);
	pthread_t f;
	pthread_create(&f, NULL, flipper, NULL);
	int ok = 0, first_err = 0;
	for (int i = 0; i < N; i++) {
		atomic_store(&cur, fds[i]);
		if (connect(fds[i], (struct sockaddr *)&peer, sizeof peer) == 0)
			ok++;
		else if (!first_err)
			first_err = errno;
	}
	atomic_store(&stop_flip, 1);
	pthread_join(f, NULL);
	fact("tcp-connects-append", "connected=%d/%d first_err=%s lost=%ld", ok, N,
	     first_err ? errname(first_err) : "none", atomic_load(&lost));
	for (int i = 0; i < N; i++)
		close(fds[i]);
}

int main(void)
{
	probe_init();
	unix_full_backlog();
	tcp_connects();
	return 0;
}
