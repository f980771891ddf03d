// deputy: calls the supervisor performs for the program, which must pass or
// fail exactly as they would for the program itself, never with the
// supervisor's privilege. Each line says what an attempt got.
//
// usage: deputy netlink                 (rtnetlink in the current netns)
//        deputy creds [UNIX_DGRAM_PATH]  (forged SCM_CREDENTIALS)
//        deputy privcmsg UDP_PORT        (SO_MARK, SO_PRIORITY control messages)
//        deputy userns STREAM DGRAM SELF DROP
//        deputy userns_netlink           (netlink from a new user namespace)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long r) {
	if (r >= 0)
		printf("%s: ok\n", name);
	else
		printf("%s: %s\n", name, strerrorname_np(errno));
	fflush(stdout);
}

// ---- netlink: RTM_NEWADDR and RTM_NEWROUTE, with an explicit destination
// (sendto, sendmsg msg_name) and on a connected socket.

struct nlreq {
	struct nlmsghdr h;
	union {
		struct ifaddrmsg ifa;
		struct rtmsg rt;
	};
	char attrs[64];
};

static void addattr(struct nlreq *r, int type, const void *data, int len) {
	struct rtattr *a = (void *)((char *)r + NLMSG_ALIGN(r->h.nlmsg_len));
	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

// request builds RTM_NEWADDR 10.99.K.1/32 on lo, or RTM_NEWROUTE
// 10.98.K.0/24 dev lo.
static void request(struct nlreq *r, int route, int k) {
	memset(r, 0, sizeof *r);
	unsigned lo = if_nametoindex("lo");
	unsigned char a[4] = {10, route ? 98 : 99, k, route ? 0 : 1};
	r->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	r->h.nlmsg_seq = k;
	if (route) {
		r->h.nlmsg_type = RTM_NEWROUTE;
		r->h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
		r->rt = (struct rtmsg){.rtm_family = AF_INET, .rtm_dst_len = 24, .rtm_table = RT_TABLE_MAIN,
				       .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_LINK, .rtm_type = RTN_UNICAST};
		addattr(r, RTA_DST, a, 4);
		addattr(r, RTA_OIF, &lo, 4);
	} else {
		r->h.nlmsg_type = RTM_NEWADDR;
		r->h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
		r->ifa = (struct ifaddrmsg){.ifa_family = AF_INET, .ifa_prefixlen = 32, .ifa_index = lo};
		addattr(r, IFA_LOCAL, a, 4);
		addattr(r, IFA_ADDRESS, a, 4);
	}
}

// ack reads the kernel's answer: "ok" or the errno it carries.
static void ack(const char *name, int s, long sent) {
	if (sent < 0) {
		report(name, sent);
		return;
	}
	char buf[512];
	struct pollfd p = {.fd = s, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1) {
		printf("%s: no-ack\n", name);
		return;
	}
	long n = recv(s, buf, sizeof buf, 0);
	struct nlmsghdr *h = (void *)buf;
	if (n < (long)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || h->nlmsg_type != NLMSG_ERROR) {
		printf("%s: bad-ack\n", name);
		return;
	}
	int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	errno = -err;
	report(name, err ? -1 : 0);
}

static int netlink(void) {
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct nlreq r;
	for (int route = 0; route < 2; route++) {
		const char *what = route ? "route" : "addr";
		char name[64];
		int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
		request(&r, route, 1);
		snprintf(name, sizeof name, "%s_sendto", what);
		ack(name, s, sendto(s, &r, r.h.nlmsg_len, 0, (void *)&kernel, sizeof kernel));

		request(&r, route, 2);
		struct iovec iov = {&r, r.h.nlmsg_len};
		struct msghdr m = {.msg_name = &kernel, .msg_namelen = sizeof kernel, .msg_iov = &iov, .msg_iovlen = 1};
		snprintf(name, sizeof name, "%s_sendmsg", what);
		ack(name, s, sendmsg(s, &m, 0));

		request(&r, route, 4);
		iov.iov_len = r.h.nlmsg_len;
		struct mmsghdr mm = {.msg_hdr = m};
		snprintf(name, sizeof name, "%s_sendmmsg", what);
		long sent = sendmmsg(s, &mm, 1, 0);
		ack(name, s, sent == 1 ? 0 : -1);
		close(s);

		s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
		request(&r, route, 3);
		snprintf(name, sizeof name, "%s_connect", what);
		if (connect(s, (void *)&kernel, sizeof kernel) < 0) {
			report(name, -1);
			continue;
		}
		struct msghdr mc = {.msg_iov = &iov, .msg_iovlen = 1};
		iov.iov_len = r.h.nlmsg_len;
		ack(name, s, sendmsg(s, &mc, 0));
		close(s);
	}
	return 0;
}

// ---- creds: forged SCM_CREDENTIALS to an in-process receiver with
// SO_PASSCRED and, when given, to a named datagram socket.

static long sendcreds(int s, const struct sockaddr_un *to, pid_t pid, uid_t uid, gid_t gid) {
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct iovec iov = {"creds", 5};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	if (to) {
		m.msg_name = (void *)to;
		m.msg_namelen = sizeof *to;
	}
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
	struct ucred cr = {.pid = pid, .uid = uid, .gid = gid};
	memcpy(CMSG_DATA(c), &cr, sizeof cr);
	return sendmsg(s, &m, 0);
}

// drain counts what r has queued and checks each message's credentials
// against the sender's true ones.
static void drain(const char *name, int r) {
	int n = 0, truthful = 0;
	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} u;
		char data[16];
		struct iovec iov = {data, sizeof data};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
		if (recvmsg(r, &m, MSG_DONTWAIT) < 0)
			break;
		n++;
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		if (c && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cr;
			memcpy(&cr, CMSG_DATA(c), sizeof cr);
			truthful += cr.pid == getpid() && cr.uid == getuid() && cr.gid == getgid();
		}
	}
	printf("%s: arrived=%d truthful=%d\n", name, n, truthful);
	fflush(stdout);
}

static int creds(const char *path) {
	struct sockaddr_un to = {.sun_family = AF_UNIX};
	if (path)
		snprintf(to.sun_path, sizeof to.sun_path, "%s", path);
	pid_t me = getpid();
	uid_t uid = getuid();
	gid_t gid = getgid();
	struct {
		const char *name;
		pid_t pid;
		uid_t uid;
		gid_t gid;
	} forged[] = {
		{"init_root", 1, 0, 0},
		{"own_pid_root", me, 0, 0},
		{"own_pid_uid_gid0", me, uid, 0},
		{"own_pid_uid0_gid", me, 0, gid},
		{"other_pid", 1, uid, gid},
		{"other_uid", me, uid + 1, gid},
		{"unmapped", me, (uid_t)-1, gid},
	};
	int types[] = {SOCK_DGRAM, SOCK_STREAM, SOCK_SEQPACKET};
	const char *tnames[] = {"dgram", "stream", "seqpacket"};
	for (int t = 0; t < 3; t++) {
		int sv[2], one = 1;
		socketpair(AF_UNIX, types[t], 0, sv);
		setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
		char name[96];
		for (unsigned i = 0; i < sizeof forged / sizeof forged[0]; i++) {
			if (uid == 0 && forged[i].uid == 0 && forged[i].gid == 0 && forged[i].pid == me)
				continue; // root may claim root: not forged
			snprintf(name, sizeof name, "%s_%s", tnames[t], forged[i].name);
			report(name, sendcreds(sv[0], NULL, forged[i].pid, forged[i].uid, forged[i].gid));
		}
		snprintf(name, sizeof name, "%s_forged", tnames[t]);
		drain(name, sv[1]);
		snprintf(name, sizeof name, "%s_true", tnames[t]);
		report(name, sendcreds(sv[0], NULL, me, uid, gid));
		snprintf(name, sizeof name, "%s_true_received", tnames[t]);
		drain(name, sv[1]);
	}
	if (path) {
		int s = socket(AF_UNIX, SOCK_DGRAM, 0);
		report("named_init_root", sendcreds(s, &to, 1, 0, 0));
		report("named_own_pid_root", uid ? sendcreds(s, &to, me, 0, 0) : (errno = EPERM, -1));
		report("named_other_pid", sendcreds(s, &to, 1, uid, gid));
		report("named_true", sendcreds(s, &to, me, uid, gid));
	}
	printf("pid: %d\n", me);
	return 0;
}

// ---- privcmsg: control messages the kernel allows only with CAP_NET_ADMIN
// or CAP_NET_RAW, on UDP to the program's own socket and to UDP_PORT.

static long sendopt(int s, const struct sockaddr_in *to, int level, int type, int val) {
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct iovec iov = {"cmsg", 4};
	struct msghdr m = {.msg_name = (void *)to, .msg_namelen = sizeof *to, .msg_iov = &iov, .msg_iovlen = 1,
			   .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &val, sizeof val);
	return sendmsg(s, &m, 0);
}

static long sendopt6(int s, const struct sockaddr_in6 *to, int level, int type, int val) {
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct iovec iov = {"cmsg", 4};
	struct msghdr m = {.msg_name = (void *)to, .msg_namelen = sizeof *to, .msg_iov = &iov, .msg_iovlen = 1,
			   .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &val, sizeof val);
	return sendmsg(s, &m, 0);
}

static int privcmsg(int port) {
	int own = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in self = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof self;
	bind(own, (void *)&self, sizeof self);
	getsockname(own, (void *)&self, &l);
	struct sockaddr_in ext = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct {
		const char *name;
		int level, type, val;
	} opts[] = {
		{"so_mark", SOL_SOCKET, SO_MARK, 1},
		{"so_priority7", SOL_SOCKET, SO_PRIORITY, 7},
	};
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	char name[64];
	for (unsigned i = 0; i < 2; i++) {
		snprintf(name, sizeof name, "self_%s", opts[i].name);
		report(name, sendopt(s, &self, opts[i].level, opts[i].type, opts[i].val));
		snprintf(name, sizeof name, "ext_%s", opts[i].name);
		report(name, sendopt(s, &ext, opts[i].level, opts[i].type, opts[i].val));
	}
	// A control message nobody may send: it must still leave.
	report("self_ip_ttl", sendopt(s, &self, IPPROTO_IP, IP_TTL, 9));
	usleep(100000);
	char buf[16];
	int n = 0;
	while (recv(own, buf, sizeof buf, MSG_DONTWAIT) >= 0)
		n++;
	printf("self_arrived: %d\n", n);

	// The same over IPv6, to the program's own socket on ::1.
	int own6 = socket(AF_INET6, SOCK_DGRAM, 0), s6 = socket(AF_INET6, SOCK_DGRAM, 0);
	struct sockaddr_in6 self6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	l = sizeof self6;
	if (bind(own6, (void *)&self6, sizeof self6) < 0 || getsockname(own6, (void *)&self6, &l) < 0) {
		printf("self6: unavailable\n");
		return 0;
	}
	for (unsigned i = 0; i < 2; i++) {
		snprintf(name, sizeof name, "self6_%s", opts[i].name);
		report(name, sendopt6(s6, &self6, opts[i].level, opts[i].type, opts[i].val));
	}
	report("self6_ipv6_hoplimit", sendopt6(s6, &self6, IPPROTO_IPV6, IPV6_HOPLIMIT, 9));
	usleep(100000);
	n = 0;
	while (recv(own6, buf, sizeof buf, MSG_DONTWAIT) >= 0)
		n++;
	printf("self6_arrived: %d\n", n);
	return 0;
}

// ---- userns: a new user namespace, then a root-only (0600) Unix stream
// socket and datagram socket. SELF=1: this process (root) binds them
// first; DROP=1: the child drops to nobody before unshare.

static int listenat(const char *path, int type) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	unlink(path);
	int s = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
	if (bind(s, (void *)&a, sizeof a) < 0 || chmod(path, 0600) < 0)
		return -1;
	if (type == SOCK_STREAM)
		listen(s, 8);
	return s;
}

static int writefile(const char *path, const char *s) {
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	long n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -1 : 0;
}

static int enter_userns(void);

static int userns(const char *stream, const char *dgram, int self, int drop) {
	int ls = -1, ld = -1;
	if (self) {
		ls = listenat(stream, SOCK_STREAM);
		ld = listenat(dgram, SOCK_DGRAM);
		if (ls < 0 || ld < 0) {
			report("listen", -1);
			return 1;
		}
	}
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		if (drop && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)) {
			report("drop", -1);
			_exit(1);
		}
		// A uid change made the process non-dumpable, which would make
		// its /proc/self/uid_map root's.
		prctl(PR_SET_DUMPABLE, 1);
		if (enter_userns() < 0)
			_exit(0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof a.sun_path, "%s", stream);
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		report("connect", connect(s, (void *)&a, sizeof a));
		snprintf(a.sun_path, sizeof a.sun_path, "%s", dgram);
		s = socket(AF_UNIX, SOCK_DGRAM, 0);
		report("sendto", sendto(s, "x", 1, 0, (void *)&a, sizeof a));
		struct iovec iov = {"x", 1};
		struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
		report("sendmsg", sendmsg(s, &m, 0));
		_exit(0);
	}
	int st;
	waitpid(child, &st, 0);
	if (self) {
		int n = 0;
		while (accept(ls, NULL, NULL) >= 0)
			n++;
		printf("self_accepted: %d\n", n);
		char b[4];
		n = 0;
		while (recv(ld, b, sizeof b, MSG_DONTWAIT) >= 0)
			n++;
		printf("self_received: %d\n", n);
		unlink(stream);
		unlink(dgram);
	}
	return 0;
}

// enter_userns makes the process root of a new user namespace (its own
// uid and gid mapped to 0): every capability there, none outside.
static int enter_userns(void) {
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (unshare(CLONE_NEWUSER) < 0) {
		report("unshare", -1);
		return -1;
	}
	writefile("/proc/self/setgroups", "deny");
	snprintf(map, sizeof map, "0 %u 1", uid);
	if (writefile("/proc/self/uid_map", map) < 0) {
		report("uid_map", -1);
		return -1;
	}
	snprintf(map, sizeof map, "0 %u 1", gid);
	if (writefile("/proc/self/gid_map", map) < 0) {
		report("gid_map", -1);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "netlink") == 0)
		return netlink();
	if (argc > 1 && strcmp(argv[1], "userns_netlink") == 0)
		return enter_userns() < 0 ? 0 : netlink();
	if (argc > 1 && strcmp(argv[1], "creds") == 0)
		return creds(argc > 2 ? argv[2] : NULL);
	if (argc > 2 && strcmp(argv[1], "privcmsg") == 0)
		return privcmsg(atoi(argv[2]));
	if (argc > 5 && strcmp(argv[1], "userns") == 0)
		return userns(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	return 2;
}
