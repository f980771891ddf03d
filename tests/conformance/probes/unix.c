/* unix: AF_UNIX connects: filesystem paths (absolute, relative, through
 * symlinks and /proc magic links), abstract names, unnamed sockets, type
 * mismatches, path resolution errors, permissions and a full backlog. */
#include "probe.h"
#include <pthread.h>

static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
static const char *const tnames[] = {"stream", "dgram", "seqpacket"};

/* server creates a Unix socket of type bound to addr, listening unless it
 * is a datagram socket or listen_too is 0. */
static int server(int type, const void *addr, socklen_t len, int listen_too)
{
	int fd = xsocket(AF_UNIX, type);

	if (bind(fd, addr, len) < 0)
		die("bind unix");
	if (listen_too && type != SOCK_DGRAM && listen(fd, 64) < 0)
		die("listen unix");
	return fd;
}

static int path_server(int type, const char *path)
{
	struct sockaddr_un a;
	socklen_t len = sun_path_addr(&a, path);

	return server(type, &a, len, 1);
}

/* try connects a fresh socket of type to path and prints the result. */
static void try_path(const char *name, int type, const char *path)
{
	struct sockaddr_un a;
	socklen_t len = sun_path_addr(&a, path);
	int s = xsocket(AF_UNIX, type);

	CASE(name, connect(s, &a, len));
	close(s);
}

static void try_abstract(const char *name, int type, const char *abs)
{
	struct sockaddr_un a;
	socklen_t len = sun_abstract_addr(&a, abs);
	int s = xsocket(AF_UNIX, type);

	CASE(name, connect(s, &a, len));
	close(s);
}

static void paths(void)
{
	struct sockaddr_un a;
	socklen_t len;
	int l, s;
	char name[128];

	l = path_server(SOCK_STREAM, path_in("s.sock"));
	len = sun_path_addr(&a, path_in("s.sock"));

	s = xsocket(AF_UNIX, SOCK_STREAM);
	CASE("unix.stream_abs_path", connect(s, &a, len), "peer=%s sockname=%s",
	     peer_is(s, &a, len), addr_str(s, 0));
	CASE("unix.stream_abs_path_again", connect(s, &a, len));
	close(s);

	/* Relative paths resolve against the working directory. */
	if (chdir(probe_dir()) < 0 || mkdir("sub", 0755) < 0)
		die("chdir");
	try_path("unix.stream_rel_path", SOCK_STREAM, "s.sock");
	try_path("unix.stream_rel_dot_path", SOCK_STREAM, "./s.sock");
	if (chdir("sub") < 0)
		die("chdir");
	try_path("unix.stream_rel_dotdot_path", SOCK_STREAM, "../s.sock");
	try_path("unix.stream_rel_path_wrong_dir", SOCK_STREAM, "s.sock");
	if (chdir(probe_dir()) < 0)
		die("chdir");

	/* Magic links: /proc/self is the caller, not anyone else. */
	try_path("unix.stream_proc_self_cwd", SOCK_STREAM, "/proc/self/cwd/s.sock");
	try_path("unix.stream_proc_thread_self_cwd", SOCK_STREAM,
		 "/proc/thread-self/cwd/s.sock");
	{
		char p[108];
		int dfd = open(probe_dir(), O_PATH | O_DIRECTORY | O_CLOEXEC);

		snprintf(p, sizeof p, "/proc/self/fd/%d/s.sock", dfd);
		try_path("unix.stream_proc_self_fd_dir", SOCK_STREAM, p);
		close(dfd);
	}
	if (chdir("/") < 0)
		die("chdir");

	/* Symlinks. */
	symlink(path_in("s.sock"), path_in("link.sock"));
	symlink("s.sock", path_in("rel-link.sock"));
	symlink(path_in("loop1"), path_in("loop2"));
	symlink(path_in("loop2"), path_in("loop1"));
	symlink(path_in("missing"), path_in("dangling"));
	try_path("unix.stream_symlink", SOCK_STREAM, path_in("link.sock"));
	try_path("unix.stream_relative_symlink", SOCK_STREAM, path_in("rel-link.sock"));
	try_path("unix.stream_symlink_loop", SOCK_STREAM, path_in("loop1"));
	try_path("unix.stream_dangling_symlink", SOCK_STREAM, path_in("dangling"));
	try_path("unix.dgram_symlink_loop", SOCK_DGRAM, path_in("loop1"));

	/* Resolution errors. */
	close(open(path_in("plain"), O_CREAT | O_WRONLY | O_CLOEXEC, 0666));
	mkfifo(path_in("fifo"), 0666);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "unix.%s_nonexistent", tnames[i]);
		try_path(name, types[i], path_in("nonexistent"));
		snprintf(name, sizeof name, "unix.%s_plain_file", tnames[i]);
		try_path(name, types[i], path_in("plain"));
		snprintf(name, sizeof name, "unix.%s_directory", tnames[i]);
		try_path(name, types[i], probe_dir());
		snprintf(name, sizeof name, "unix.%s_fifo", tnames[i]);
		try_path(name, types[i], path_in("fifo"));
		snprintf(name, sizeof name, "unix.%s_through_non_directory", tnames[i]);
		try_path(name, types[i], path_in("plain/x.sock"));
		snprintf(name, sizeof name, "unix.%s_nonexistent_dir", tnames[i]);
		try_path(name, types[i], path_in("nodir/x.sock"));
		snprintf(name, sizeof name, "unix.%s_empty_path", tnames[i]);
		try_path(name, types[i], "");
	}

	/* Addresses whose length does not end at the NUL. */
	{
		socklen_t n = len - 1; /* without the terminating NUL */

		s = xsocket(AF_UNIX, SOCK_STREAM);
		CASE("unix.stream_path_without_nul", connect(s, &a, n), "peer=%s",
		     peer_is(s, &a, len));
		close(s);
		memcpy(a.sun_path + strlen(a.sun_path) + 1, "garbage", 7);
		s = xsocket(AF_UNIX, SOCK_STREAM);
		CASE("unix.stream_path_trailing_bytes", connect(s, &a, len + 7));
		close(s);
		memset(a.sun_path + strlen(a.sun_path) + 1, 0, 7);
	}

	/* A path that fills sun_path exactly, with no room for a NUL. */
	{
		char p[sizeof a.sun_path + 1];
		struct sockaddr_un full;
		int fl;
		size_t dl = strlen(probe_dir());

		memset(p, 'x', sizeof a.sun_path);
		memcpy(p, probe_dir(), dl);
		p[dl] = '/';
		p[sizeof a.sun_path] = 0;
		memset(&full, 0, sizeof full);
		full.sun_family = AF_UNIX;
		memcpy(full.sun_path, p, sizeof full.sun_path);
		fl = server(SOCK_STREAM, &full, sizeof full, 1);
		s = xsocket(AF_UNIX, SOCK_STREAM);
		CASE("unix.stream_path_108_bytes", connect(s, &full, sizeof full),
		     "peer_len=%s", addr_str(s, 1));
		close(s);
		close(fl);
		unlink(p);
	}

	/* Stale socket files: bound, then the socket closed. */
	{
		int st = path_server(SOCK_STREAM, path_in("stale-stream.sock"));
		int sd = path_server(SOCK_DGRAM, path_in("stale-dgram.sock"));

		close(st);
		close(sd);
		for (int i = 0; i < 3; i++) {
			snprintf(name, sizeof name, "unix.%s_stale_stream_file", tnames[i]);
			try_path(name, types[i], path_in("stale-stream.sock"));
			snprintf(name, sizeof name, "unix.%s_stale_dgram_file", tnames[i]);
			try_path(name, types[i], path_in("stale-dgram.sock"));
		}
	}

	/* A socket whose file was unlinked, and one that was renamed. */
	{
		int u = path_server(SOCK_STREAM, path_in("unlinked.sock"));
		int r = path_server(SOCK_STREAM, path_in("before.sock"));

		unlink(path_in("unlinked.sock"));
		rename(path_in("before.sock"), path_in("after.sock"));
		try_path("unix.stream_unlinked_file", SOCK_STREAM, path_in("unlinked.sock"));
		try_path("unix.stream_renamed_old_name", SOCK_STREAM, path_in("before.sock"));
		try_path("unix.stream_renamed_new_name", SOCK_STREAM, path_in("after.sock"));
		close(u);
		close(r);
	}

	/* Bound but not listening. */
	{
		struct sockaddr_un b;
		socklen_t blen = sun_path_addr(&b, path_in("nolisten-stream.sock"));
		int ns = server(SOCK_STREAM, &b, blen, 0);
		int nq;

		try_path("unix.stream_not_listening", SOCK_STREAM, path_in("nolisten-stream.sock"));
		blen = sun_path_addr(&b, path_in("nolisten-seq.sock"));
		nq = server(SOCK_SEQPACKET, &b, blen, 0);
		try_path("unix.seqpacket_not_listening", SOCK_SEQPACKET,
			 path_in("nolisten-seq.sock"));
		close(ns);
		close(nq);
	}

	/* A client bound to its own path first. */
	{
		struct sockaddr_un me;
		socklen_t mlen = sun_path_addr(&me, path_in("client.sock"));

		s = xsocket(AF_UNIX, SOCK_STREAM);
		bind(s, (void *)&me, mlen);
		CASE("unix.stream_bound_client", connect(s, &a, len), "sockname=%s peer=%s",
		     addr_str(s, 0), peer_is(s, &a, len));
		close(s);
	}
	/* SO_PASSCRED autobinds the client to an abstract name. */
	{
		int one = 1;

		s = xsocket(AF_UNIX, SOCK_STREAM);
		setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
		CASE("unix.stream_passcred_autobind", connect(s, &a, len), "sockname=%s",
		     addr_str(s, 0));
		close(s);
	}
	close(l);
}

static void abstract(void)
{
	struct sockaddr_un a;
	socklen_t len = sun_abstract_addr(&a, "sbxt-abstract");
	int l = server(SOCK_STREAM, &a, len, 1), s;
	char name[128];

	s = xsocket(AF_UNIX, SOCK_STREAM);
	CASE("unix.stream_abstract", connect(s, &a, len), "peer=%s",
	     peer_is(s, &a, len));
	close(s);
	/* Abstract names are counted, not NUL-terminated. */
	s = xsocket(AF_UNIX, SOCK_STREAM);
	CASE("unix.stream_abstract_extra_nul", connect(s, &a, len + 1));
	close(s);
	s = xsocket(AF_UNIX, SOCK_STREAM);
	CASE("unix.stream_abstract_prefix", connect(s, &a, len - 1));
	close(s);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "unix.%s_abstract_nonexistent", tnames[i]);
		try_abstract(name, types[i], "sbxt-nobody");
		snprintf(name, sizeof name, "unix.%s_abstract_empty_name", tnames[i]);
		try_abstract(name, types[i], "");
	}
	close(l);
}

/* matrix: every client type against every server type, by path and by
 * abstract name. */
static void matrix(void)
{
	char name[128], path[64], abs[64];
	int srv[3], asrv[3];

	for (int j = 0; j < 3; j++) {
		struct sockaddr_un a;
		socklen_t len;

		snprintf(path, sizeof path, "srv-%s.sock", tnames[j]);
		srv[j] = path_server(types[j], path_in(path));
		snprintf(abs, sizeof abs, "sbxt-srv-%s", tnames[j]);
		len = sun_abstract_addr(&a, abs);
		asrv[j] = server(types[j], &a, len, 1);
	}
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			snprintf(path, sizeof path, "srv-%s.sock", tnames[j]);
			snprintf(name, sizeof name, "unix.%s_to_%s", tnames[i], tnames[j]);
			try_path(name, types[i], path_in(path));
			snprintf(abs, sizeof abs, "sbxt-srv-%s", tnames[j]);
			snprintf(name, sizeof name, "unix.%s_to_abstract_%s", tnames[i], tnames[j]);
			try_abstract(name, types[i], abs);
		}
	for (int j = 0; j < 3; j++) {
		close(srv[j]);
		close(asrv[j]);
	}
}

static void datagrams(void)
{
	struct sockaddr_un a, b, c;
	socklen_t alen = sun_path_addr(&a, path_in("dg-a.sock"));
	socklen_t blen = sun_path_addr(&b, path_in("dg-b.sock"));
	socklen_t clen = sun_path_addr(&c, path_in("dg-c.sock"));
	int da = server(SOCK_DGRAM, &a, alen, 0);
	int db = server(SOCK_DGRAM, &b, blen, 0);
	int dc = server(SOCK_DGRAM, &c, clen, 0);
	int s;
	char buf[8];

	s = xsocket(AF_UNIX, SOCK_DGRAM);
	CASE("unix.dgram_connect", connect(s, &a, alen), "peer=%s sockname=%s",
	     peer_is(s, &a, alen), addr_str(s, 0));
	CASE("unix.dgram_reconnect", connect(s, &b, blen), "peer=%s", peer_is(s, &b, blen));
	{
		const char *sent = R(send(s, "x", 1, 0));
		const char *got = R(recv(db, buf, sizeof buf, MSG_DONTWAIT));

		fact("unix.dgram_send_after_reconnect", "send=%s recv=%s", sent, got);
	}
	close(s);

	/* A receiver connected to someone else refuses other senders. */
	if (connect(dc, (void *)&a, alen) < 0)
		die("connect dc");
	s = xsocket(AF_UNIX, SOCK_DGRAM);
	CASE("unix.dgram_to_peer_connected_elsewhere", connect(s, &c, clen));
	close(s);
	/* ...but not the socket it is connected to. */
	CASE("unix.dgram_back_to_connected_peer", connect(da, &c, clen));
	/* A bound datagram socket connecting to itself. */
	CASE("unix.dgram_self", connect(db, &b, blen), "peer=%s", peer_is(db, &b, blen));

	close(da);
	close(db);
	close(dc);
}

static void pairs(void)
{
	struct sockaddr_un a;
	socklen_t alen;
	int sp[2], l, d;

	l = path_server(SOCK_STREAM, path_in("pair-target.sock"));
	alen = sun_path_addr(&a, path_in("pair-target.sock"));
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
	CASE("unix.socketpair_stream_connect", connect(sp[0], &a, alen), "peer=%s",
	     addr_str(sp[0], 1));
	close(sp[0]);
	CASE("unix.socketpair_stream_peer_closed_connect", connect(sp[1], &a, alen));
	close(sp[1]);
	close(l);

	d = path_server(SOCK_DGRAM, path_in("pair-dgram.sock"));
	alen = sun_path_addr(&a, path_in("pair-dgram.sock"));
	socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp);
	CASE("unix.socketpair_dgram_connect", connect(sp[0], &a, alen), "peer=%s",
	     peer_is(sp[0], &a, alen));
	{
		const char *sent = R(send(sp[1], "x", 1, 0));

		fact("unix.socketpair_dgram_old_peer_send", "send=%s", sent);
	}
	close(sp[0]);
	close(sp[1]);
	close(d);

	socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp);
	l = path_server(SOCK_SEQPACKET, path_in("pair-seq.sock"));
	alen = sun_path_addr(&a, path_in("pair-seq.sock"));
	CASE("unix.socketpair_seqpacket_connect", connect(sp[0], &a, alen));
	close(sp[0]);
	close(sp[1]);
	close(l);
}

static void backlog(void)
{
	for (int t = 0; t < 2; t++) {
		int type = t ? SOCK_SEQPACKET : SOCK_STREAM;
		const char *tn = t ? "seqpacket" : "stream";
		struct sockaddr_un a;
		char p[32], name[96];
		socklen_t len;
		int l, fillers = 0, s, fds[16], n = 0, r, e;
		struct timeval tv = {0, 100 * 1000};

		snprintf(p, sizeof p, "backlog-%s.sock", tn);
		len = sun_path_addr(&a, path_in(p));
		l = server(type, &a, len, 0);
		if (listen(l, 0) < 0)
			die("listen");
		for (;;) {
			s = xsocket(AF_UNIX, type | SOCK_NONBLOCK);
			r = connect(s, (void *)&a, len);
			e = errno;
			if (r < 0 || n == 15)
				break;
			fds[n++] = s;
			fillers++;
		}
		snprintf(name, sizeof name, "unix.%s_backlog_full_nonblock", tn);
		report(name, r, e, "fillers=%d", fillers);
		close(s);

		/* A blocking connect with a send timeout waits, then gives up. */
		s = xsocket(AF_UNIX, type);
		setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		snprintf(name, sizeof name, "unix.%s_backlog_full_sndtimeo", tn);
		CASE(name, connect(s, &a, len));
		close(s);

		/* Accepting one makes room again. */
		close(accept(l, NULL, NULL));
		s = xsocket(AF_UNIX, type | SOCK_NONBLOCK);
		snprintf(name, sizeof name, "unix.%s_backlog_after_accept", tn);
		CASE(name, connect(s, &a, len));
		close(s);
		while (n > 0)
			close(fds[--n]);
		close(l);
	}
}

/* Permission checks, made by an unprivileged child of this root process. */
static void unpriv_connects(void *arg)
{
	(void)arg;
	try_path("unix.unpriv_stream_no_search_dir", SOCK_STREAM, path_in("private/s.sock"));
	try_path("unix.unpriv_dgram_no_search_dir", SOCK_DGRAM, path_in("private/d.sock"));
	try_path("unix.unpriv_stream_no_write_file", SOCK_STREAM, path_in("ro-stream.sock"));
	try_path("unix.unpriv_dgram_no_write_file", SOCK_DGRAM, path_in("ro-dgram.sock"));
	try_path("unix.unpriv_seqpacket_no_write_file", SOCK_SEQPACKET, path_in("ro-seq.sock"));
	try_path("unix.unpriv_stream_writable_file", SOCK_STREAM, path_in("rw-stream.sock"));
	try_path("unix.unpriv_dgram_writable_file", SOCK_DGRAM, path_in("rw-dgram.sock"));
	try_abstract("unix.unpriv_stream_abstract", SOCK_STREAM, "sbxt-priv-abstract");
	try_path("unix.unpriv_stream_no_search_dir_nonexistent", SOCK_STREAM,
		 path_in("private/nonexistent"));
}

/* A thread that alone gives up root (raw syscalls change only the calling
 * thread's credentials; glibc's wrappers would change every thread's). */
static void *unpriv_thread(void *arg)
{
	(void)arg;
	if (syscall(SYS_setgroups, 0, NULL) < 0 ||
	    syscall(SYS_setresgid, NOBODY, NOBODY, NOBODY) < 0 ||
	    syscall(SYS_setresuid, NOBODY, NOBODY, NOBODY) < 0)
		die("thread credentials");
	try_path("unix.unpriv_thread_stream_no_write_file", SOCK_STREAM, path_in("ro-stream.sock"));
	try_path("unix.unpriv_thread_stream_no_search_dir", SOCK_STREAM, path_in("private/s.sock"));
	try_path("unix.unpriv_thread_stream_writable_file", SOCK_STREAM, path_in("rw-stream.sock"));
	return NULL;
}

static void permissions(void)
{
	struct sockaddr_un a;
	socklen_t len = sun_abstract_addr(&a, "sbxt-priv-abstract");
	int fds[8], n = 0;

	mkdir(path_in("private"), 0700);
	fds[n++] = path_server(SOCK_STREAM, path_in("private/s.sock"));
	fds[n++] = path_server(SOCK_DGRAM, path_in("private/d.sock"));
	chmod(path_in("private/s.sock"), 0777);
	chmod(path_in("private/d.sock"), 0777);
	fds[n++] = path_server(SOCK_STREAM, path_in("ro-stream.sock"));
	fds[n++] = path_server(SOCK_DGRAM, path_in("ro-dgram.sock"));
	fds[n++] = path_server(SOCK_SEQPACKET, path_in("ro-seq.sock"));
	chmod(path_in("ro-stream.sock"), 0755);
	chmod(path_in("ro-dgram.sock"), 0755);
	chmod(path_in("ro-seq.sock"), 0755);
	fds[n++] = path_server(SOCK_STREAM, path_in("rw-stream.sock"));
	fds[n++] = path_server(SOCK_DGRAM, path_in("rw-dgram.sock"));
	chmod(path_in("rw-stream.sock"), 0777);
	chmod(path_in("rw-dgram.sock"), 0777);
	fds[n++] = server(SOCK_STREAM, &a, len, 1);

	/* Root itself is not bound by the modes. */
	try_path("unix.root_stream_no_write_file", SOCK_STREAM, path_in("ro-stream.sock"));
	try_path("unix.root_stream_private_dir", SOCK_STREAM, path_in("private/s.sock"));

	in_child(1, unpriv_connects, NULL);
	{
		pthread_t th;

		pthread_create(&th, NULL, unpriv_thread, NULL);
		pthread_join(th, NULL);
		/* The other threads are still root. */
		try_path("unix.root_after_unpriv_thread", SOCK_STREAM, path_in("ro-stream.sock"));
	}
	while (n > 0)
		close(fds[--n]);
}

/* stall: one thread's blocking connect waits for room on a listener whose
 * backlog is full, while another thread goes on connecting to a live
 * listener; then one connection is accepted, and the first connect
 * completes. Under the sandbox the first is tried directly, found asleep by
 * the watchdog and converted to the waiter; after a conversion, connects
 * skip the direct path for a second, so this case runs first. Neither
 * thread may notice. */
struct stalled {
	struct sockaddr_un a;
	socklen_t len;
	int s, ret, err;
};

static void *stalled_connect(void *arg)
{
	struct stalled *st = arg;

	st->ret = connect(st->s, (struct sockaddr *)&st->a, st->len);
	st->err = errno;
	return NULL;
}

static void stall(int type, const char *tn)
{
	struct stalled st;
	struct sockaddr_un live;
	socklen_t llen;
	char p[32], name[96];
	pthread_t th;
	int full, lv, filler, ok = 0;

	snprintf(p, sizeof p, "stall-%s.sock", tn);
	st.len = sun_path_addr(&st.a, path_in(p));
	full = server(type, &st.a, st.len, 0);
	if (listen(full, 0) < 0)
		die("listen");
	filler = xsocket(AF_UNIX, type);
	if (connect(filler, (void *)&st.a, st.len) < 0)
		die("stall filler");
	snprintf(p, sizeof p, "live-%s.sock", tn);
	llen = sun_path_addr(&live, path_in(p));
	lv = server(type, &live, llen, 1);
	st.s = xsocket(AF_UNIX, type);
	if (pthread_create(&th, NULL, stalled_connect, &st))
		die("pthread_create");
	sleep_ms(150);
	for (int i = 0; i < 50; i++) {
		int s = xsocket(AF_UNIX, type);

		if (connect(s, (void *)&live, llen) == 0) {
			ok++;
			close(accept(lv, NULL, NULL));
		}
		close(s);
	}
	snprintf(name, sizeof name, "unix.stall_%s_others_connected", tn);
	fact(name, "%d", ok);
	close(accept(full, NULL, NULL));
	pthread_join(th, NULL);
	snprintf(name, sizeof name, "unix.stall_%s_released", tn);
	CASE(name, (errno = st.err, st.ret));
	close(st.s);
	close(filler);
	close(lv);
	close(full);
}

int main(void)
{
	probe_init();
	stall(SOCK_STREAM, "stream"); /* first: nothing has stalled before it */
	paths();
	abstract();
	matrix();
	datagrams();
	pairs();
	backlog();
	permissions();
	return 0;
}
