/* sendfull: a blocking stream send sends everything before it returns, as
 * Linux's tcp_sendmsg and unix_stream_sendmsg wait for room; what a signal
 * or a send timeout leaves: the bytes sent so far when some have left,
 * EINTR (no SA_RESTART, or a send timeout), a transparent restart
 * (SA_RESTART), or EAGAIN (the timeout, with nothing sent). */
#include "probe.h"
#include <sys/time.h>

#define BIG (4 << 20)

static char *big;
/* A reader that drains fd after a delay, reporting how much it read. */
struct reader {
	int fd, delay_ms;
	long total;
	pthread_t t;
};

static void *drain_thread(void *arg)
{
	struct reader *r = arg;
	char buf[65536];

	sleep_ms(r->delay_ms);
	for (;;) {
		long n = read(r->fd, buf, sizeof buf);
		if (n <= 0)
			break;
		r->total += n;
	}
	return NULL;
}

static void reader_start(struct reader *r, int fd, int delay_ms)
{
	r->fd = fd;
	r->delay_ms = delay_ms;
	r->total = 0;
	pthread_create(&r->t, NULL, drain_thread, r);
}

static long reader_stop(struct reader *r, int wfd)
{
	shutdown(wfd, SHUT_WR);
	pthread_join(r->t, NULL);
	return r->total;
}

static long sendmsg_n(int fd, long n, int flags)
{
	struct iovec iov[4];
	long part = n / 4;

	for (int i = 0; i < 4; i++) {
		iov[i].iov_base = big + i * part;
		iov[i].iov_len = i == 3 ? n - 3 * part : part;
	}
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 4};
	return sendmsg(fd, &m, flags);
}

static void pair(int type, int sv[2])
{
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
}

static int tcp_pair(int sv[2])
{
	int port, l = tcp_listener("127.0.0.1", &port);
	struct sockaddr_in a = sin4("127.0.0.1", port);

	sv[0] = xsocket(AF_INET, SOCK_STREAM);
	if (connect(sv[0], (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");
	sv[1] = accept(l, NULL, NULL);
	close(l);
	return sv[1] < 0 ? -1 : 0;
}

/* fill makes fd's send path full (non-blocking sends until EAGAIN). */
static void fill(int fd)
{
	set_nonblock(fd, 1);
	while (send(fd, big, 65536, MSG_NOSIGNAL) > 0)
		;
	set_nonblock(fd, 0);
}

static void whole(const char *name, int sv[2], long n)
{
	struct reader r;

	reader_start(&r, sv[1], 50);
	long sent = sendmsg_n(sv[0], n, 0);
	long got = reader_stop(&r, sv[0]);
	report(name, sent == n ? 1 : sent, errno, "received_all=%d", got == n);
	close(sv[0]);
	close(sv[1]);
}

static void whole_sendmmsg(const char *name, int sv[2])
{
	struct reader r;
	struct iovec iov[3];
	struct mmsghdr mm[3];

	memset(mm, 0, sizeof mm);
	for (int i = 0; i < 3; i++) {
		iov[i].iov_base = big;
		iov[i].iov_len = 1 << 20;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	reader_start(&r, sv[1], 50);
	int k = sendmmsg(sv[0], mm, 3, 0);
	long got = reader_stop(&r, sv[0]);
	report(name, k, errno, "lens_full=%d received_all=%d",
	       mm[0].msg_len == 1 << 20 && mm[1].msg_len == 1 << 20 && mm[2].msg_len == 1 << 20, got == 3 << 20);
	close(sv[0]);
	close(sv[1]);
}

/* signal_partial: nobody reads; a signal comes while the send waits after
 * part of it left: the count of what left. */
static void signal_partial(const char *name, int sv[2], int restart)
{
	set_alarm_handler(restart);
	alarms = 0;
	alarm_every(100);
	errno = 0;
	long sent = sendmsg_n(sv[0], BIG, MSG_NOSIGNAL);
	int e = errno;
	alarm_every(0);
	report(name, sent > 0 && sent < BIG ? 1 : sent, e, "alarms_seen=%d", alarms > 0);
	close(sv[0]);
	close(sv[1]);
}

/* signal_nothing_sent: the socket is full before the call; a signal comes:
 * EINTR without SA_RESTART; with it, the call restarts and, once a reader
 * drains, sends everything. */
static void signal_nothing_sent(const char *name, int sv[2], int restart)
{
	struct reader r;

	fill(sv[0]);
	set_alarm_handler(restart);
	alarms = 0;
	if (restart)
		reader_start(&r, sv[1], 400);
	alarm_every(100);
	errno = 0;
	long sent = sendmsg_n(sv[0], 100000, MSG_NOSIGNAL);
	int e = errno;
	alarm_every(0);
	if (restart)
		reader_stop(&r, sv[0]);
	report(name, sent == 100000 ? 1 : sent, e, "alarms_seen=%d", alarms > 0);
	close(sv[0]);
	close(sv[1]);
}

/* timeout: SO_SNDTIMEO with nothing read: EAGAIN when the socket was full
 * from the start, the count when part of the send left; and with a signal
 * under SA_RESTART, EINTR (sock_intr_errno: a timeout never restarts). */
static void timeout(const char *name, int sv[2], int prefill, int with_signal)
{
	struct timeval tv = {0, 300000};

	setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (prefill)
		fill(sv[0]);
	if (with_signal) {
		set_alarm_handler(1);
		alarms = 0;
		alarm_every(100);
	}
	errno = 0;
	long sent = sendmsg_n(sv[0], BIG, MSG_NOSIGNAL);
	int e = errno;
	alarm_every(0);
	report(name, sent > 0 && sent < BIG ? 1 : sent, e, "%s", "");
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	int sv[2];

	probe_init();
	big = calloc(1, BIG);
	pair(SOCK_STREAM, sv);
	whole("sendfull.unix_stream_638976", sv, 638976);
	pair(SOCK_STREAM, sv);
	whole("sendfull.unix_stream_4m", sv, BIG);
	tcp_pair(sv);
	whole("sendfull.tcp_4m", sv, BIG);
	pair(SOCK_STREAM, sv);
	whole_sendmmsg("sendfull.unix_stream_sendmmsg_3x1m", sv);
	tcp_pair(sv);
	whole_sendmmsg("sendfull.tcp_sendmmsg_3x1m", sv);
	pair(SOCK_STREAM, sv);
	signal_partial("sendfull.unix_signal_partial", sv, 0);
	pair(SOCK_STREAM, sv);
	signal_partial("sendfull.unix_signal_partial_restart", sv, 1);
	tcp_pair(sv);
	signal_partial("sendfull.tcp_signal_partial", sv, 0);
	pair(SOCK_STREAM, sv);
	signal_nothing_sent("sendfull.unix_signal_nothing_sent", sv, 0);
	pair(SOCK_STREAM, sv);
	signal_nothing_sent("sendfull.unix_signal_nothing_sent_restart", sv, 1);
	tcp_pair(sv);
	signal_nothing_sent("sendfull.tcp_signal_nothing_sent", sv, 0);
	pair(SOCK_STREAM, sv);
	timeout("sendfull.unix_timeout_full", sv, 1, 0);
	pair(SOCK_STREAM, sv);
	timeout("sendfull.unix_timeout_partial", sv, 0, 0);
	pair(SOCK_STREAM, sv);
	timeout("sendfull.unix_timeout_signal_restart", sv, 1, 1);
	tcp_pair(sv);
	timeout("sendfull.tcp_timeout_partial", sv, 0, 0);
	return 0;
}
