/* reset: a blocking connect to a server that accepts and at once resets
 * (SO_LINGER {1, 0}), as load-shedding servers and health-check targets do.
 *
 * Linux's blocking connect returns 0 once the handshake completed
 * (inet_wait_for_connect is woken at ESTABLISHED), whatever arrives after;
 * the reset is left on the socket for the program's next call. Each case
 * connects, waits until the server has reset (it reports on a pipe) and the
 * socket shows it (POLLHUP), then prints what the program observes next:
 * a second connect (EISCONN: the socket is SS_CONNECTED), SO_ERROR, recv,
 * getpeername, poll. The same for IPv6, for a refusal, and for a peer that
 * closes with a FIN instead. */
#include "probe.h"

struct server {
	int lfd;
	int port;
	int done[2]; /* the server writes one byte per connection it reset */
	int go[2];   /* synced: the server closes once the client writes a byte */
	int rst;     /* reset (SO_LINGER 0) or an orderly close */
	int synced;
	pid_t pid;
};

static void server_loop(struct server *sv)
{
	for (;;) {
		int c = accept(sv->lfd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			_exit(0);
		}
		if (sv->rst) {
			struct linger l = {1, 0};
			setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
		}
		if (sv->synced) {
			char b;
			while (read(sv->go[0], &b, 1) < 0 && errno == EINTR)
				;
		}
		close(c);
		if (write(sv->done[1], "x", 1) != 1)
			_exit(1);
	}
}

static void server_start(struct server *sv, const char *ip, int rst, int synced)
{
	sv->rst = rst;
	sv->synced = synced;
	sv->lfd = tcp_listener(ip, &sv->port);
	if (pipe(sv->done) < 0 || pipe(sv->go) < 0)
		die("pipe");
	sv->pid = fork();
	if (sv->pid < 0)
		die("fork");
	if (sv->pid == 0)
		server_loop(sv);
	close(sv->lfd);
}

static void server_stop(struct server *sv)
{
	kill(sv->pid, SIGKILL);
	waitpid(sv->pid, NULL, 0);
	close(sv->done[0]);
	close(sv->done[1]);
	close(sv->go[0]);
	close(sv->go[1]);
}

/* await_server waits until the server has handled one more connection and
 * the client socket shows the peer's close. */
static void await_server(struct server *sv, int s)
{
	char b;

	while (read(sv->done[0], &b, 1) < 0 && errno == EINTR)
		;
	poll1(s, POLLIN | POLLRDHUP, 5000);
}

static int connect_to(int s, const char *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = inaddr(&ss, ip, port);

	return connect(s, (struct sockaddr *)&ss, len);
}

static int stream(const char *ip)
{
	return xsocket(family_of(ip), SOCK_STREAM);
}

/* after_reset connects and, once reset, reads the observables in the given
 * order: "connect" (a second connect), "so_error", "recv", "peer". The
 * server resets once the connect has returned: a reset that overtakes the
 * woken task makes the native connect itself fail (rarely on a quiet
 * machine, often when the probes run beside others), and these cases are
 * about what follows a completed connect. The race itself is many's, and
 * TestBlockingConnectsToAResettingServer's, which counts it. */
static void after_reset(const char *name, const char *ip, const char *order)
{
	struct server sv;
	char buf[64], out[256] = "";
	int s;

	server_start(&sv, ip, 1, 1);
	s = stream(ip);
	errno = 0;
	int r = connect_to(s, ip, sv.port);
	int e = errno;
	if (write(sv.go[1], "g", 1) != 1)
		die("go");
	await_server(&sv, s);
	snprintf(out, sizeof out, "poll=%s", events_str(poll1(s, POLLIN | POLLOUT | POLLRDHUP, 0)));
	for (const char *o = order; *o; o++) {
		size_t n = strlen(out);
		switch (*o) {
		case 'c':
			snprintf(out + n, sizeof out - n, " connect2=%s", R(connect_to(s, ip, sv.port)));
			break;
		case 'e':
			snprintf(out + n, sizeof out - n, " so_error=%s", so_error(s));
			break;
		case 'r': {
			errno = 0;
			long k = recv(s, buf, sizeof buf, MSG_DONTWAIT);
			snprintf(out + n, sizeof out - n, " recv=%s", k < 0 ? errname(errno) : k == 0 ? "eof" : "data");
			break;
		}
		case 'p': {
			struct sockaddr_storage ss;
			socklen_t len = sizeof ss;
			snprintf(out + n, sizeof out - n, " peer=%s", R(getpeername(s, (struct sockaddr *)&ss, &len)));
			break;
		}
		case 's':
			snprintf(out + n, sizeof out - n, " send=%s", R(send(s, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT)));
			break;
		case 'h':
			snprintf(out + n, sizeof out - n, " shutdown=%s", R(shutdown(s, SHUT_RDWR)));
			break;
		}
	}
	report(name, r, e, "%s", out);
	close(s);
	server_stop(&sv);
}

/* orderly: the server closes with a FIN; the connect returns 0 and the
 * program reads EOF. */
static void orderly(const char *name, const char *ip)
{
	struct server sv;
	char buf[8];
	int s;

	server_start(&sv, ip, 0, 0);
	s = stream(ip);
	errno = 0;
	int r = connect_to(s, ip, sv.port);
	int e = errno;
	await_server(&sv, s);
	long k = recv(s, buf, sizeof buf, MSG_DONTWAIT);
	report(name, r, e, "recv=%s connect2=%s so_error=%s", k == 0 ? "eof" : k < 0 ? errname(errno) : "data",
	       R(connect_to(s, ip, sv.port)), so_error(s));
	close(s);
	server_stop(&sv);
}

/* refused: nothing listens; the blocking connect fails with ECONNREFUSED
 * and consumes the error (SO_ERROR is 0 afterwards, a second connect
 * starts anew). */
static void refused(const char *name, const char *ip)
{
	int hold, port = closed_port(ip, &hold);
	int s = stream(ip);

	errno = 0;
	int r = connect_to(s, ip, port);
	int e = errno;
	report(name, r, e, "so_error=%s connect2=%s", so_error(s), R(connect_to(s, ip, port)));
	close(s);
	close(hold);
}

/* many: several resets in a row, with the observables of each; any
 * connect that failed is counted (natively none, or very rarely one). */
static void many(const char *name, const char *ip, int n)
{
	struct server sv;
	int failed = 0, eisconn = 0, reset = 0;

	server_start(&sv, ip, 1, 0);
	for (int i = 0; i < n; i++) {
		char buf[8];
		int s = stream(ip);
		if (connect_to(s, ip, sv.port) < 0) {
			failed++;
			close(s);
			await_server(&sv, s);
			continue;
		}
		await_server(&sv, s);
		if (connect_to(s, ip, sv.port) < 0 && errno == EISCONN)
			eisconn++;
		if (recv(s, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno == ECONNRESET)
			reset++;
		close(s);
	}
	/* Printed as booleans, over the connects that returned 0: how many
	 * failed is the kernel's race (the reset overtaking the woken task: 0-3
	 * in 5,000 on a quiet machine, most of them when the probes run beside
	 * others and the server preempts the client), so it is not printed;
	 * TestBlockingConnectsToAResettingServer compares the counts, native
	 * and sandboxed, in one run. */
	fact(name, "all_eisconn_after=%d mostly_reset_on_recv=%d", eisconn == n - failed,
	     reset >= (n - failed) - (n - failed) / 4);
	server_stop(&sv);
}

int main(void)
{
	probe_init();
	signal(SIGCHLD, SIG_DFL);
	after_reset("reset.v4.connect_then_recv", "127.0.0.1", "crep");
	after_reset("reset.v4.recv_first", "127.0.0.1", "rrce");
	after_reset("reset.v4.so_error_first", "127.0.0.1", "erc");
	after_reset("reset.v4.peer_first", "127.0.0.1", "pcr");
	after_reset("reset.v4.send_first", "127.0.0.1", "sre");
	after_reset("reset.v4.shutdown_then_connect", "127.0.0.1", "hcr");
	after_reset("reset.v6.connect_then_recv", "::1", "crep");
	after_reset("reset.v6.so_error_first", "::1", "erc");
	orderly("reset.v4.orderly_close", "127.0.0.1");
	orderly("reset.v6.orderly_close", "::1");
	refused("reset.v4.refused", "127.0.0.1");
	refused("reset.v6.refused", "::1");
	many("reset.v4.many", "127.0.0.1", 300);
	many("reset.v6.many", "::1", 300);
	return 0;
}
