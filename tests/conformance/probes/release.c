/* release: once connect (or sendmsg) returns, the program's close() is the
 * last reference to its socket, as natively. A supervisor that still held
 * its duplicate a moment after answering would keep the socket open: the
 * accepted end would not see EOF, and a write to it would not fail with
 * EPIPE. */
#include "probe.h"

/* unix_close_then_write: connect, accept, close the client, write to the
 * accepted end: EPIPE every time, natively. */
static void unix_close_then_write(int type, const char *name)
{
	struct sockaddr_un a;
	socklen_t len = sun_path_addr(&a, path_in(name));
	int l = xsocket(AF_UNIX, type), epipe = 0, n = 200;

	if (bind(l, (struct sockaddr *)&a, len) < 0 || listen(l, 16) < 0)
		die("listen");
	for (int i = 0; i < n; i++) {
		int c = xsocket(AF_UNIX, type);
		if (connect(c, (struct sockaddr *)&a, len) < 0)
			die("connect");
		int s = accept(l, NULL, NULL);
		if (s < 0)
			die("accept");
		close(c);
		if (send(s, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE)
			epipe++;
		close(s);
	}
	fact(name, "epipe=%d/%d", epipe, n);
	close(l);
}

/* tcp_close_then_read: the accepted end reads EOF at once after the client
 * closed, natively. */
static void tcp_close_then_read(const char *ip, const char *name)
{
	int port, l = tcp_listener(ip, &port), eof = 0, n = 100;
	struct sockaddr_storage ss;
	socklen_t len = inaddr(&ss, ip, port);

	for (int i = 0; i < n; i++) {
		char b;
		int c = xsocket(family_of(ip), SOCK_STREAM);
		if (connect(c, (struct sockaddr *)&ss, len) < 0)
			die("connect");
		int s = accept(l, NULL, NULL);
		if (s < 0)
			die("accept");
		close(c);
		if (poll1(s, POLLIN, 2000) & POLLIN && recv(s, &b, 1, MSG_DONTWAIT) == 0)
			eof++;
		close(s);
	}
	fact(name, "eof=%d/%d", eof, n);
	close(l);
}

/* sendmsg_then_close: a Unix datagram sent with sendmsg, then the sender
 * closed: the receiver's peer is gone at once (a connected datagram pair
 * whose one end closed reports ECONNREFUSED on send from the other). */
static void dgram_close_then_send(const char *name)
{
	int sv[2], refused = 0, n = 100;

	for (int i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
			die("socketpair");
		struct iovec iov = {"x", 1};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
		if (sendmsg(sv[0], &m, 0) != 1)
			die("sendmsg");
		close(sv[0]);
		if (send(sv[1], "y", 1, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED)
			refused++;
		close(sv[1]);
	}
	fact(name, "econnrefused=%d/%d", refused, n);
}

int main(void)
{
	probe_init();
	unix_close_then_write(SOCK_STREAM, "release.unix_stream_close_then_write");
	unix_close_then_write(SOCK_SEQPACKET, "release.unix_seqpacket_close_then_write");
	tcp_close_then_read("127.0.0.1", "release.tcp_close_then_read");
	tcp_close_then_read("::1", "release.tcp6_close_then_read");
	dgram_close_then_send("release.unix_dgram_sendmsg_then_close");
	probe_dir_remove();
	return 0;
}
