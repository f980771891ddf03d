/* states: the life of a connect: blocking and non-blocking, pending
 * (EINPROGRESS, EALREADY, readiness, SO_ERROR), completion (the single 0,
 * then EISCONN), refusal (ECONNABORTED once the error was consumed), TCP
 * Fast Open, send timeouts and signals (EINTR and SA_RESTART). */
#include "probe.h"
#include <sys/epoll.h>
#include <sys/select.h>
#include <pthread.h>
#include <sys/time.h>

static int lfd;
static struct sockaddr_in lis, closed;


static void set_sndtimeo(int fd, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int tcp(int nonblock)
{
	return xsocket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0));
}

static void blocking(void)
{
	int s = tcp(0);

	CASE("states.tcp_blocking", connect(s, &lis, sizeof lis),
	     "peer=%s so_error=%s nonblock=%d", peer_is(s, &lis, sizeof lis), so_error(s),
	     is_nonblock(s));
	CASE("states.tcp_blocking_second", connect(s, &lis, sizeof lis));
	CASE("states.tcp_blocking_other_addr", connect(s, &closed, sizeof closed));
	close(s);

	s = tcp(0);
	CASE("states.tcp_blocking_refused", connect(s, &closed, sizeof closed),
	     "so_error=%s peer=%s nonblock=%d", so_error(s), peer_is(s, &closed, sizeof closed),
	     is_nonblock(s));
	close(s);

	s = xsocket(AF_INET, SOCK_DGRAM);
	CASE("states.udp_blocking", connect(s, &closed, sizeof closed), "nonblock=%d",
	     is_nonblock(s));
	close(s);
	s = xsocket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK);
	CASE("states.udp_nonblock", connect(s, &closed, sizeof closed), "nonblock=%d poll=%s",
	     is_nonblock(s), events_str(poll1(s, POLLOUT, 0)));
	close(s);
	drain(lfd);
}

static void nonblocking(void)
{
	int s, ep;
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLET}, got;

	/* poll */
	s = tcp(1);
	CASE("states.tcp_nb", connect(s, &lis, sizeof lis));
	fact("states.tcp_nb_poll", "%s", events_str(poll1(s, POLLIN | POLLOUT, 2000)));
	fact("states.tcp_nb_so_error", "%s", so_error(s));
	fact("states.tcp_nb_peer", "%s", peer_is(s, &lis, sizeof lis));
	CASE("states.tcp_nb_second", connect(s, &lis, sizeof lis));
	CASE("states.tcp_nb_third", connect(s, &lis, sizeof lis));
	fact("states.tcp_nb_flags", "nonblock=%d", is_nonblock(s));
	close(s);

	/* The second connect may come straight after a completed one that
	 * nobody polled: still a single 0. */
	s = tcp(1);
	connect(s, (void *)&lis, sizeof lis);
	poll1(s, POLLOUT, 2000);
	CASE("states.tcp_nb_second_without_so_error", connect(s, &lis, sizeof lis));
	CASE("states.tcp_nb_third_without_so_error", connect(s, &lis, sizeof lis));
	close(s);

	/* epoll, edge-triggered */
	s = tcp(1);
	ep = epoll_create1(EPOLL_CLOEXEC);
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	CASE("states.tcp_nb_epoll", connect(s, &lis, sizeof lis));
	{
		int n = epoll_wait(ep, &got, 1, 2000);

		fact("states.tcp_nb_epoll_wait", "n=%d out=%d err=%d hup=%d", n,
		     n > 0 && (got.events & EPOLLOUT) != 0, n > 0 && (got.events & EPOLLERR) != 0,
		     n > 0 && (got.events & EPOLLHUP) != 0);
		n = epoll_wait(ep, &got, 1, 0);
		fact("states.tcp_nb_epoll_wait_again", "n=%d", n);
	}
	close(ep);
	close(s);

	/* select */
	s = tcp(1);
	CASE("states.tcp_nb_select", connect(s, &lis, sizeof lis));
	{
		fd_set w;
		struct timeval tv = {2, 0};
		int n;

		FD_ZERO(&w);
		FD_SET(s, &w);
		n = select(s + 1, NULL, &w, NULL, &tv);
		fact("states.tcp_nb_select_ready", "n=%d writable=%d so_error=%s", n,
		     FD_ISSET(s, &w) != 0, so_error(s));
	}
	close(s);

	/* Refused: the error is reported once, then the socket is reset. */
	s = tcp(1);
	CASE("states.tcp_nb_refused", connect(s, &closed, sizeof closed));
	fact("states.tcp_nb_refused_poll", "%s", events_str(poll1(s, POLLIN | POLLOUT, 2000)));
	fact("states.tcp_nb_refused_so_error", "%s", so_error(s));
	fact("states.tcp_nb_refused_so_error_again", "%s", so_error(s));
	fact("states.tcp_nb_refused_peer", "%s", peer_is(s, &closed, sizeof closed));
	CASE("states.tcp_nb_refused_second", connect(s, &closed, sizeof closed));
	CASE("states.tcp_nb_refused_third", connect(s, &lis, sizeof lis));
	poll1(s, POLLOUT, 2000);
	fact("states.tcp_nb_refused_third_done", "so_error=%s peer=%s", so_error(s),
	     peer_is(s, &lis, sizeof lis));
	close(s);

	/* Refused, error not consumed: the next connect reports it. */
	s = tcp(1);
	connect(s, (void *)&closed, sizeof closed);
	poll1(s, POLLOUT, 2000);
	CASE("states.tcp_nb_refused_unconsumed_second", connect(s, &closed, sizeof closed),
	     "so_error=%s", so_error(s));
	CASE("states.tcp_nb_refused_unconsumed_third", connect(s, &closed, sizeof closed));
	close(s);

	/* Refused while non-blocking, error unconsumed, then a blocking
	 * connect to a listener. */
	s = tcp(1);
	connect(s, (void *)&closed, sizeof closed);
	poll1(s, POLLOUT, 2000);
	set_nonblock(s, 0);
	CASE("states.tcp_nb_refused_unconsumed_then_blocking", connect(s, &lis, sizeof lis),
	     "peer=%s", peer_is(s, &lis, sizeof lis));
	close(s);
	drain(lfd);
}

static void pending(void)
{
	struct tarpit tp;
	int s;

	tarpit_open(&tp);
	s = tcp(1);
	CASE("states.pending", connect(s, &tp.addr, sizeof tp.addr));
	CASE("states.pending_second", connect(s, &tp.addr, sizeof tp.addr));
	CASE("states.pending_other_addr", connect(s, &lis, sizeof lis));
	fact("states.pending_peer", "%s", peer_is(s, &tp.addr, sizeof tp.addr));
	fact("states.pending_sockname_port_nonzero", "%d", local_port_nonzero(s));
	fact("states.pending_so_error", "%s", so_error(s));
	fact("states.pending_poll_100ms", "%s", events_str(poll1(s, POLLIN | POLLOUT, 100)));
	/* The same pending socket, now blocking with a send timeout. */
	set_nonblock(s, 0);
	set_sndtimeo(s, 200);
	CASE("states.pending_blocking_sndtimeo", connect(s, &tp.addr, sizeof tp.addr));
	set_nonblock(s, 1);
	/* Release the tarpit: the retransmitted SYN (about 1 s) gets in. */
	close(accept(tp.lfd, NULL, NULL));
	fact("states.pending_released_poll", "%s", events_str(poll1(s, POLLOUT, 5000)));
	fact("states.pending_released_so_error", "%s", so_error(s));
	fact("states.pending_released_peer", "%s", peer_is(s, &tp.addr, sizeof tp.addr));
	CASE("states.pending_released_second", connect(s, &tp.addr, sizeof tp.addr));
	CASE("states.pending_released_third", connect(s, &tp.addr, sizeof tp.addr));
	close(s);
	tarpit_close(&tp);
}

/* tfo_socket returns a TCP socket with TCP_FASTOPEN_CONNECT, and with
 * TCP_FASTOPEN_NO_COOKIE when defer is set: connect then returns at once
 * and the SYN leaves with the first write. */
static int tfo_socket(int nonblock, int defer, const char *name)
{
	int s = tcp(nonblock), one = 1;

	errno = 0;
	if (setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one) < 0 ||
	    (defer && setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, &one, sizeof one) < 0))
		fact(name, "setsockopt=%s", errname(errno));
	return s;
}

static void fastopen(void)
{
	int s, c;
	char buf[8] = {0};

	/* Without a cookie, TCP_FASTOPEN_CONNECT is an ordinary connect. */
	drain(lfd);
	s = tfo_socket(0, 0, "states.tfo_setsockopt");
	CASE("states.tfo_connect", connect(s, &lis, sizeof lis), "peer=%s",
	     peer_is(s, &lis, sizeof lis));
	CASE("states.tfo_second", connect(s, &lis, sizeof lis));
	close(s);
	drain(lfd);

	/* Deferred: 0 at once, nothing sent until the first write. */
	s = tfo_socket(0, 1, "states.tfo_defer_setsockopt");
	CASE("states.tfo_defer_connect", connect(s, &lis, sizeof lis));
	fact("states.tfo_defer_listener_poll", "%s", events_str(poll1(lfd, POLLIN, 100)));
	fact("states.tfo_defer_peer", "%s", peer_is(s, &lis, sizeof lis));
	fact("states.tfo_defer_poll", "%s", events_str(poll1(s, POLLIN | POLLOUT, 0)));
	/* A blocking second connect would wait for a SYN that was never
	 * sent: ask without blocking, and with a send timeout. */
	set_nonblock(s, 1);
	CASE("states.tfo_defer_second_nonblock", connect(s, &lis, sizeof lis));
	set_nonblock(s, 0);
	set_sndtimeo(s, 100);
	CASE("states.tfo_defer_second_sndtimeo", connect(s, &lis, sizeof lis));
	set_sndtimeo(s, 0);
	{
		const char *sent = R(send(s, "hi", 2, 0));
		const char *peer = peer_is(s, &lis, sizeof lis);
		const char *got;

		c = accept(lfd, NULL, NULL);
		got = R(recv(c, buf, 2, MSG_WAITALL));
		fact("states.tfo_defer_send", "send=%s peer=%s recv=%s data=%s", sent, peer, got,
		     buf);
		close(c);
	}
	CASE("states.tfo_defer_third", connect(s, &lis, sizeof lis));
	close(s);

	s = tfo_socket(1, 1, "states.tfo_defer_nb_setsockopt");
	CASE("states.tfo_defer_nb_connect", connect(s, &lis, sizeof lis));
	{
		const char *sent = R(send(s, "hi", 2, 0));

		fact("states.tfo_defer_nb_send", "%s", sent);
	}
	poll1(s, POLLOUT, 2000);
	fact("states.tfo_defer_nb_done", "so_error=%s peer=%s", so_error(s),
	     peer_is(s, &lis, sizeof lis));
	close(s);

	/* Deferred to a closed port: connect says 0, the first write finds
	 * out. */
	s = tfo_socket(0, 1, "states.tfo_defer_refused_setsockopt");
	CASE("states.tfo_defer_refused_connect", connect(s, &closed, sizeof closed));
	{
		const char *sent = R(send(s, "hi", 2, MSG_NOSIGNAL));
		const char *err = so_error(s);

		fact("states.tfo_defer_refused_send", "send=%s so_error=%s", sent, err);
	}
	CASE("states.tfo_defer_refused_reconnect", connect(s, &lis, sizeof lis));
	close(s);
	drain(lfd);
}

static void timeouts(void)
{
	struct tarpit tp;
	int s;

	tarpit_open(&tp);
	s = tcp(0);
	set_sndtimeo(s, 200);
	CASE("states.sndtimeo_tarpit", connect(s, &tp.addr, sizeof tp.addr),
	     "peer=%s so_error=%s nonblock=%d", peer_is(s, &tp.addr, sizeof tp.addr),
	     so_error(s), is_nonblock(s));
	CASE("states.sndtimeo_tarpit_second", connect(s, &tp.addr, sizeof tp.addr));
	set_nonblock(s, 1);
	CASE("states.sndtimeo_tarpit_nonblock", connect(s, &tp.addr, sizeof tp.addr));
	close(s);

	/* The timeout does not matter when the connect completes at once. */
	s = tcp(0);
	set_sndtimeo(s, 200);
	CASE("states.sndtimeo_listener", connect(s, &lis, sizeof lis));
	close(s);
	s = tcp(0);
	set_sndtimeo(s, 200);
	CASE("states.sndtimeo_refused", connect(s, &closed, sizeof closed));
	close(s);
	tarpit_close(&tp);
	drain(lfd);
}

static void signals(void)
{
	struct tarpit tp;
	int s;

	/* A handler without SA_RESTART: EINTR, and the attempt goes on. */
	tarpit_open(&tp);
	set_alarm_handler(0);
	s = tcp(0);
	alarms = 0;
	alarm_every(100);
	CASE("states.eintr", connect(s, &tp.addr, sizeof tp.addr), "handler_ran=%d", alarms > 0);
	alarm_every(0);
	fact("states.eintr_peer", "%s", peer_is(s, &tp.addr, sizeof tp.addr));
	fact("states.eintr_so_error", "%s", so_error(s));
	fact("states.eintr_poll", "%s", events_str(poll1(s, POLLOUT, 50)));
	alarms = 0;
	alarm_every(100);
	CASE("states.eintr_second_blocking", connect(s, &tp.addr, sizeof tp.addr),
	     "handler_ran=%d", alarms > 0);
	alarm_every(0);
	set_sndtimeo(s, 100);
	CASE("states.eintr_third_sndtimeo", connect(s, &tp.addr, sizeof tp.addr));
	set_nonblock(s, 1);
	CASE("states.eintr_fourth_nonblock", connect(s, &tp.addr, sizeof tp.addr));
	close(s);

	/* SA_RESTART with a send timeout: not restarted. */
	set_alarm_handler(1);
	s = tcp(0);
	set_sndtimeo(s, 2000);
	alarms = 0;
	alarm_every(100);
	CASE("states.sa_restart_with_sndtimeo", connect(s, &tp.addr, sizeof tp.addr),
	     "handler_ran=%d", alarms > 0);
	alarm_every(0);
	close(s);
	tarpit_close(&tp);
	set_alarm_handler(0);
}

/* release accepts the tarpit's queued connection after 300 ms, so that the
 * next retransmitted SYN is accepted. */
static void *release(void *arg)
{
	struct tarpit *tp = arg;

	sleep_ms(300);
	close(accept(tp->lfd, NULL, NULL));
	return NULL;
}

static void restart(void)
{
	struct tarpit tp;
	pthread_t th;
	sigset_t set, old;
	int s;

	tarpit_open(&tp);
	set_alarm_handler(1);
	/* Keep SIGALRM away from the releasing thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	pthread_create(&th, NULL, release, &tp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	s = tcp(0);
	alarms = 0;
	alarm_every(100);
	CASE("states.sa_restart", connect(s, &tp.addr, sizeof tp.addr),
	     "handler_ran=%d peer=%s so_error=%s", alarms > 0,
	     peer_is(s, &tp.addr, sizeof tp.addr), so_error(s));
	alarm_every(0);
	CASE("states.sa_restart_second", connect(s, &tp.addr, sizeof tp.addr));
	pthread_join(th, NULL);
	close(s);
	tarpit_close(&tp);
	set_alarm_handler(0);
}

/* A child blocked in connect is stopped (SIGSTOP) and continued, with and
 * without a send timeout. Without one, the call restarts by itself; the
 * tarpit is then released so that it completes. */
static void stopped(void)
{
	for (int timeout = 0; timeout < 2; timeout++) {
		struct tarpit tp;
		int ready[2], status;
		pid_t pid;
		char c;

		tarpit_open(&tp);
		if (pipe2(ready, O_CLOEXEC) < 0)
			die("pipe");
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			int s = tcp(0);

			if (timeout)
				set_sndtimeo(s, 1000);
			if (write(ready[1], "r", 1) != 1)
				_exit(3);
			CASE(timeout ? "states.sigstop_sigcont_sndtimeo" : "states.sigstop_sigcont",
			     connect(s, &tp.addr, sizeof tp.addr), "peer=%s",
			     peer_is(s, &tp.addr, sizeof tp.addr));
			fflush(stdout);
			_exit(0);
		}
		if (read(ready[0], &c, 1) != 1)
			die("child");
		sleep_ms(100);
		kill(pid, SIGSTOP);
		waitpid(pid, &status, WUNTRACED);
		kill(pid, SIGCONT);
		if (!timeout) {
			sleep_ms(200);
			close(accept(tp.lfd, NULL, NULL));
		}
		waitpid(pid, &status, 0);
		close(ready[0]);
		close(ready[1]);
		tarpit_close(&tp);
	}
}

static void connected_states(void)
{
	int s, c, r;
	struct linger lg = {1, 0};

	/* Peer closed: CLOSE_WAIT. */
	drain(lfd);
	s = tcp(0);
	connect(s, (void *)&lis, sizeof lis);
	c = accept(lfd, NULL, NULL);
	close(c);
	poll1(s, POLLIN, 2000);
	CASE("states.peer_closed", connect(s, &lis, sizeof lis), "peer=%s",
	     peer_is(s, &lis, sizeof lis));
	close(s);

	/* Peer reset: the connection is gone. */
	s = tcp(0);
	connect(s, (void *)&lis, sizeof lis);
	c = accept(lfd, NULL, NULL);
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(c);
	poll1(s, POLLIN, 2000);
	CASE("states.peer_reset", connect(s, &lis, sizeof lis), "peer=%s",
	     peer_is(s, &lis, sizeof lis));
	CASE("states.peer_reset_again", connect(s, &lis, sizeof lis), "peer=%s",
	     peer_is(s, &lis, sizeof lis));
	close(s);

	/* Shut down for writing. */
	s = tcp(0);
	connect(s, (void *)&lis, sizeof lis);
	r = shutdown(s, SHUT_WR);
	CASE("states.shutdown_wr", connect(s, &lis, sizeof lis), "shutdown=%d", r);
	close(s);

	/* Shut down before connecting. */
	s = tcp(0);
	shutdown(s, SHUT_RDWR);
	CASE("states.shutdown_before_connect", connect(s, &lis, sizeof lis));
	close(s);
	drain(lfd);
}

/* stall: one thread's blocking connect waits on a full accept queue while
 * another thread goes on connecting to a live listener; then the queue is
 * released and the first connect completes (the retransmitted SYN, about
 * 1 s later). Under the sandbox the first is parked in the waiter while
 * the receiver serves the other thread: neither thread may notice. (The
 * Unix twin, unix.stall_*, covers the direct connect's conversion.) */
struct stalled {
	struct tarpit *tp;
	int s, ret, err;
};

static void *stalled_connect(void *arg)
{
	struct stalled *st = arg;

	st->ret = connect(st->s, (struct sockaddr *)&st->tp->addr, sizeof st->tp->addr);
	st->err = errno;
	return NULL;
}

static void stall(void)
{
	struct tarpit tp;
	struct stalled st = {.tp = &tp};
	pthread_t th;
	int ok = 0;

	tarpit_open(&tp);
	st.s = tcp(0);
	if (pthread_create(&th, NULL, stalled_connect, &st))
		die("pthread_create");
	sleep_ms(150);
	for (int i = 0; i < 50; i++) {
		int s = tcp(0);

		ok += connect(s, &lis, sizeof lis) == 0;
		close(s);
		drain(lfd);
	}
	fact("states.stall_others_connected", "%d", ok);
	close(accept(tp.lfd, NULL, NULL));
	pthread_join(th, NULL);
	CASE("states.stall_released", (errno = st.err, st.ret), "peer=%s", peer_is(st.s, &tp.addr, sizeof tp.addr));
	close(st.s);
	tarpit_close(&tp);
}

int main(void)
{
	int port, cfd;

	probe_init();
	lfd = tcp_listener("127.0.0.1", &port);
	lis = sin4("127.0.0.1", port);
	closed = sin4("127.0.0.1", closed_port("127.0.0.1", &cfd));

	stall();
	blocking();
	nonblocking();
	pending();
	fastopen();
	timeouts();
	signals();
	restart();
	stopped();
	connected_states();
	return 0;
}
