/*
 * creds: what a Unix receiver reads as SCM_CREDENTIALS after sendmsg, for
 * socketpairs and connected named and abstract sockets of the three types:
 * SO_PASSCRED on either end before or after the send, explicit credentials,
 * truncated control buffers, MSG_CTRUNC, SCM_RIGHTS with SO_PASSCRED, a
 * stream message sent before accept, and write(2) (never trapped) glued to
 * sendmsg. (gVisor's UnixSocketPairCmsgTest credential cases, reproduced.)
 * The kernel attaches the sender's credentials exactly when it sent
 * explicit ones or either end had SO_PASSCRED at the time of the send
 * (unix_maybe_add_creds); a receiver that turns SO_PASSCRED on later reads
 * "null" credentials (pid 0, the overflow uid and gid).
 *
 * The sender's pid is printed as self, zero or other; with CREDS_NO_PID
 * set, any non-zero pid prints as "set" (the documented divergence of an
 * unprivileged supervisor, which can name only itself). Everything runs as
 * root, then again as nobody.
 */
#include "probe.h"

static const char *prefix = "";
static int no_pid;

enum kind { PAIR, FS, ABSTRACT };
static const char *const knames[] = {"pair", "fs", "abstract"};
static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
static const char *const tnames[] = {"stream", "dgram", "seqpacket"};
static int serial;
static char userdir[64] = "/tmp/sbxcreds-XXXXXX"; /* nobody's named sockets */

static void on(int fd, int opt)
{
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, opt, &one, sizeof one) < 0)
		die("setsockopt");
}

static socklen_t addr_of(enum kind k, struct sockaddr_un *a, const char *tag)
{
	char name[48];

	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	snprintf(name, sizeof name, "creds-%d-%d-%s-%d", getpid(), getuid(), tag, serial++);
	if (k == ABSTRACT) {
		snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "%s", name);
		return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	}
	snprintf(a->sun_path, sizeof a->sun_path, "%.40s/%.40s", getuid() ? userdir : probe_dir(), name);
	return sizeof *a;
}

/* pair connects sv[0] (the sender) to sv[1] (the receiver). With
 * before_accept, the stream or seqpacket sender's first message (payload)
 * is sent while its peer is not yet accepted. */
static void pair(enum kind k, int type, int sv[2], const char *before_accept)
{
	struct sockaddr_un sa, ca;
	socklen_t sl, cl;
	int l;

	if (k == PAIR) {
		if (socketpair(AF_UNIX, type, 0, sv) < 0)
			die("socketpair");
		return;
	}
	sl = addr_of(k, &sa, "s");
	sv[0] = xsocket(AF_UNIX, type);
	if (type == SOCK_DGRAM) {
		cl = addr_of(k, &ca, "c");
		sv[1] = xsocket(AF_UNIX, type);
		if (bind(sv[1], (void *)&sa, sl) < 0 || bind(sv[0], (void *)&ca, cl) < 0 ||
		    connect(sv[0], (void *)&sa, sl) < 0 || connect(sv[1], (void *)&ca, cl) < 0)
			die("dgram pair");
		return;
	}
	l = xsocket(AF_UNIX, type);
	if (bind(l, (void *)&sa, sl) < 0 || listen(l, 4) < 0 || connect(sv[0], (void *)&sa, sl) < 0)
		die("stream pair");
	if (before_accept && send(sv[0], before_accept, strlen(before_accept), MSG_NOSIGNAL) < 0)
		die("send before accept");
	sv[1] = accept(l, NULL, NULL);
	if (sv[1] < 0)
		die("accept");
	close(l);
}

/* sendmsg_with sends "data" with the given control buffer (none if NULL). */
static long sendmsg_with(int fd, void *ctl, size_t len)
{
	struct iovec iov = {"data", 4};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = len};

	return sendmsg(fd, &m, MSG_NOSIGNAL);
}

static long send_creds(int fd, pid_t pid, uid_t uid, gid_t gid)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} u;
	struct ucred cr = {pid, uid, gid};
	struct cmsghdr *c = (void *)u.buf;

	memset(&u, 0, sizeof u);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof cr);
	memcpy(CMSG_DATA(c), &cr, sizeof cr);
	return sendmsg_with(fd, u.buf, sizeof u.buf);
}

static long send_fd(int fd, int passed)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct cmsghdr *c = (void *)u.buf;

	memset(&u, 0, sizeof u);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &passed, sizeof passed);
	return sendmsg_with(fd, u.buf, sizeof u.buf);
}

static const char *pidname(pid_t p)
{
	if (p == 0)
		return "zero";
	if (no_pid)
		return "set";
	return p == getpid() ? "self" : "other";
}

/* receive reads one message with a control buffer of ctllen bytes and
 * prints what arrived: the byte count, MSG_CTRUNC, and each control message
 * (credentials as far as they fit). */
static void receive(const char *name, int fd, size_t ctllen)
{
	union {
		char buf[256];
		struct cmsghdr align;
	} u;
	char data[64], facts[384], *f = facts;
	struct iovec iov = {data, sizeof data};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctllen ? u.buf : NULL,
			   .msg_controllen = ctllen};
	char full[128];
	long n;

	memset(&u, 0, sizeof u);
	n = recvmsg(fd, &m, MSG_DONTWAIT);
	if (n < 0) {
		snprintf(full, sizeof full, "%s%s", prefix, name);
		report(full, n, errno, "%s", "");
		return;
	}
	f += sprintf(f, "ctrunc=%d controllen=%zu", !!(m.msg_flags & MSG_CTRUNC), (size_t)m.msg_controllen);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		size_t dl = c->cmsg_len - CMSG_LEN(0);
		f += sprintf(f, " [%d/%d len=%zu", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len);
		if (c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cr = {0};
			memcpy(&cr, CMSG_DATA(c), dl < sizeof cr ? dl : sizeof cr);
			if (dl >= sizeof cr.pid)
				f += sprintf(f, " pid=%s", pidname(cr.pid));
			if (dl >= sizeof cr.pid + sizeof cr.uid)
				f += sprintf(f, " uid=%u", cr.uid);
			if (dl >= sizeof cr)
				f += sprintf(f, " gid=%u", cr.gid);
		} else if (c->cmsg_type == SCM_RIGHTS && dl >= sizeof(int)) {
			int got;
			struct stat st;
			memcpy(&got, CMSG_DATA(c), sizeof got);
			f += sprintf(f, " fifo=%d", fstat(got, &st) == 0 && S_ISFIFO(st.st_mode));
			close(got);
		}
		f += sprintf(f, "]");
	}
	snprintf(full, sizeof full, "%s%s", prefix, name);
	report(full, n, 0, "%s", facts);
}

static void run_kind(enum kind k, int t)
{
	int type = types[t], sv[2], p[2];
	char name[96];
	long r;
	const size_t space = CMSG_SPACE(sizeof(struct ucred));

#define NAME(what) (snprintf(name, sizeof name, "%s_%s.%s", knames[k], tnames[t], what), name)
#define SENT(what, expr) \
	do { \
		r = (expr); \
		char full_[128]; \
		snprintf(full_, sizeof full_, "%s%s.send", prefix, NAME(what)); \
		report(full_, r, errno, "%s", ""); \
	} while (0)
#define DONE() (close(sv[0]), close(sv[1]))

	/* SendNullCredsBeforeSoPassCredRecvEnd */
	pair(k, type, sv, NULL);
	SENT("null_then_recv_passcred", sendmsg_with(sv[0], NULL, 0));
	on(sv[1], SO_PASSCRED);
	receive(NAME("null_then_recv_passcred"), sv[1], space);
	DONE();

	/* SendNullCredsBeforeSoPassCredRecvEndAfterSendEnd */
	pair(k, type, sv, NULL);
	on(sv[0], SO_PASSCRED);
	SENT("send_passcred_null_then_recv_passcred", sendmsg_with(sv[0], NULL, 0));
	on(sv[1], SO_PASSCRED);
	receive(NAME("send_passcred_null_then_recv_passcred"), sv[1], space);
	DONE();

	/* The sender turns SO_PASSCRED on only after the send. */
	pair(k, type, sv, NULL);
	SENT("null_then_both_passcred", sendmsg_with(sv[0], NULL, 0));
	on(sv[0], SO_PASSCRED);
	on(sv[1], SO_PASSCRED);
	receive(NAME("null_then_both_passcred"), sv[1], space);
	DONE();

	/* The receiver has SO_PASSCRED before the send. */
	pair(k, type, sv, NULL);
	on(sv[1], SO_PASSCRED);
	SENT("recv_passcred_null", sendmsg_with(sv[0], NULL, 0));
	receive(NAME("recv_passcred_null"), sv[1], space);
	DONE();

	/* NoPassCred: explicit credentials, nobody asks for them. */
	pair(k, type, sv, NULL);
	SENT("explicit_no_passcred", send_creds(sv[0], getpid(), getuid(), getgid()));
	receive(NAME("explicit_no_passcred"), sv[1], space);
	DONE();

	/* Explicit credentials, read after SO_PASSCRED is turned on. */
	pair(k, type, sv, NULL);
	SENT("explicit_then_recv_passcred", send_creds(sv[0], getpid(), getuid(), getgid()));
	on(sv[1], SO_PASSCRED);
	receive(NAME("explicit_then_recv_passcred"), sv[1], space);
	DONE();

	/* Explicit credentials naming another uid or pid: EPERM unless root. */
	pair(k, type, sv, NULL);
	on(sv[1], SO_PASSCRED);
	SENT("explicit_other_uid", send_creds(sv[0], getpid(), getuid() ? 0 : NOBODY, getgid()));
	SENT("explicit_other_pid", send_creds(sv[0], 1, getuid(), getgid()));
	SENT("explicit_no_such_pid", send_creds(sv[0], 0x3ffffff, getuid(), getgid()));
	receive(NAME("explicit_other.first"), sv[1], space);
	receive(NAME("explicit_other.second"), sv[1], space);
	DONE();

	/* CredPassTruncated: room for the header and the pid only. */
	pair(k, type, sv, NULL);
	on(sv[1], SO_PASSCRED);
	SENT("truncated", sendmsg_with(sv[0], NULL, 0));
	receive(NAME("truncated"), sv[1], CMSG_LEN(0) + sizeof(pid_t));
	DONE();

	/* Room for less than a header: MSG_CTRUNC, nothing copied. */
	pair(k, type, sv, NULL);
	on(sv[1], SO_PASSCRED);
	SENT("tiny", sendmsg_with(sv[0], NULL, 0));
	receive(NAME("tiny"), sv[1], sizeof(struct cmsghdr) - 1);
	DONE();

	/* CredPassNoMsgCtrunc: exactly CMSG_LEN(sizeof(struct ucred)). */
	pair(k, type, sv, NULL);
	on(sv[1], SO_PASSCRED);
	SENT("no_ctrunc", sendmsg_with(sv[0], NULL, 0));
	receive(NAME("no_ctrunc"), sv[1], CMSG_LEN(sizeof(struct ucred)));
	DONE();

	/* FDPassAfterSoPassCred */
	pair(k, type, sv, NULL);
	on(sv[1], SO_PASSCRED);
	if (pipe(p) < 0)
		die("pipe");
	SENT("rights_after_passcred", send_fd(sv[0], p[0]));
	receive(NAME("rights_after_passcred"), sv[1], 128);
	close(p[0]), close(p[1]);
	DONE();

	/* SCM_RIGHTS before SO_PASSCRED is turned on. */
	pair(k, type, sv, NULL);
	if (pipe(p) < 0)
		die("pipe");
	SENT("rights_then_passcred", send_fd(sv[0], p[0]));
	on(sv[1], SO_PASSCRED);
	receive(NAME("rights_then_passcred"), sv[1], 128);
	close(p[0]), close(p[1]);
	DONE();

	if (type == SOCK_DGRAM)
		return;
	/* A stream message sent before accept: the peer had no socket yet,
	 * so the kernel attached the sender's credentials. */
	if (k != PAIR) {
		pair(k, type, sv, "early");
		SENT("before_accept_sendmsg", sendmsg_with(sv[0], NULL, 0));
		on(sv[1], SO_PASSCRED);
		receive(NAME("before_accept.first"), sv[1], space);
		receive(NAME("before_accept.second"), sv[1], space);
		DONE();
	}
	if (type != SOCK_STREAM)
		return;
	/* write(2) and sendmsg without credentials glue into one read; with
	 * credentials on one of them they do not. */
	pair(k, type, sv, NULL);
	if (write(sv[0], "wr", 2) != 2)
		die("write");
	SENT("write_then_sendmsg", sendmsg_with(sv[0], NULL, 0));
	on(sv[1], SO_PASSCRED);
	receive(NAME("write_then_sendmsg"), sv[1], space);
	DONE();

	pair(k, type, sv, NULL);
	if (write(sv[0], "wr", 2) != 2)
		die("write");
	SENT("write_then_explicit", send_creds(sv[0], getpid(), getuid(), getgid()));
	on(sv[1], SO_PASSCRED);
	receive(NAME("write_then_explicit.first"), sv[1], space);
	receive(NAME("write_then_explicit.second"), sv[1], space);
	DONE();
#undef NAME
#undef SENT
#undef DONE
}

static void all(void *arg)
{
	prefix = arg;
	for (int k = PAIR; k <= ABSTRACT; k++)
		for (int t = 0; t < 3; t++)
			run_kind(k, t);
}

int main(void)
{
	probe_init();
	no_pid = getenv("CREDS_NO_PID") != NULL;
	if (getuid() == 0) {
		all("root.");
		if (!mkdtemp(userdir) || chmod(userdir, 01777) < 0)
			die("mkdtemp");
		in_child(1, all, "nobody.");
		nftw(userdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	} else {
		if (!mkdtemp(userdir))
			die("mkdtemp");
		all("user.");
		nftw(userdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	return 0;
}
