// self.c: attacks on the "self" default, and the programs it must let
// through. Each variant prints "VARIANT ok" or "VARIANT <error>" (or, for
// loops, "VARIANT sent=N"). The forbidden endpoints are the test's, outside
// the sandboxed tree.
//
//   self freebind PORT     IP(V6)_FREEBIND bind to the peer's address
//   self families PORT     V6ONLY [::] vs 127.0.0.1, 0.0.0.0 vs [::1]
//   self bcast PORT IF     bound to a broadcast or multicast address
//   self udplite PORT      a UDP port owned, a UDP-Lite send (and back)
//   self reuseport PORT N  joining an SO_REUSEPORT group
//   self netns PORT NAME   sockets made before unshare(USER|NET)
//   self symlink DIR       the tree's socket name re-pointed at a foreign one
//   self abstract NAME     abstract names with spaces and NULs
//   self bindmount DIR     the foreign socket bind-mounted over an allowed path
//   self relative DIR      relative names, link() and rename(): must work
//   self late PORT DIR N   a foreign socket joins (or shadows) the tree's
//                          after the tree's own was reached: DIR/seen-PORT
//                          asks the test for it, DIR/go-PORT says it is there
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

static const char *PEER4 = "10.231.0.2", *PEER6 = "fd00:231::2";

static void report(const char *v, int rc) {
	printf("%s %s\n", v, rc == 0 ? "ok" : strerror(errno));
	fflush(stdout);
}

static socklen_t in4(struct sockaddr_storage *ss, const char *ip, int port) {
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof *ss);
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	inet_pton(AF_INET, ip, &a->sin_addr);
	return sizeof *a;
}

static socklen_t in6(struct sockaddr_storage *ss, const char *ip, int port, int scope) {
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	a->sin6_scope_id = scope;
	inet_pton(AF_INET6, ip, &a->sin6_addr);
	return sizeof *a;
}

static socklen_t ip(struct sockaddr_storage *ss, const char *addr, int port) {
	return strchr(addr, ':') ? in6(ss, addr, port, 0) : in4(ss, addr, port);
}

// bound returns a socket bound to addr:port (listening, for a stream), with
// option (level, name) set to 1 first when name != 0; -1 on failure.
static int bound(int type, int proto, const char *addr, int port, int level, int name) {
	struct sockaddr_storage ss;
	socklen_t n = ip(&ss, addr, port);
	int s = socket(ss.ss_family, type, proto), one = 1;
	if (s < 0)
		return -1;
	if (name)
		setsockopt(s, level, name, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&ss, n) < 0 || (type == SOCK_STREAM && listen(s, 256) < 0)) {
		int e = errno;
		close(s);
		errno = e;
		return -1;
	}
	return s;
}

// reach connects (stream) or sends a datagram (dgram) to addr:port from a
// fresh socket of family fam.
static int reach(int fam, int type, int proto, const char *addr, int port) {
	struct sockaddr_storage ss;
	socklen_t n = ip(&ss, addr, port);
	if (fam == AF_INET6 && ss.ss_family == AF_INET) {
		char m[64];
		snprintf(m, sizeof m, "::ffff:%s", addr);
		n = in6(&ss, m, port, 0);
	}
	int s = socket(fam, type, proto), rc;
	if (s < 0)
		return -1;
	if (type == SOCK_STREAM)
		rc = connect(s, (struct sockaddr *)&ss, n);
	else
		rc = sendto(s, "x", 1, 0, (struct sockaddr *)&ss, n) == 1 ? 0 : -1;
	int e = errno;
	close(s);
	errno = e;
	return rc;
}

static void setup(const char *v, int fd) {
	if (fd < 0) {
		printf("%s setup: %s\n", v, strerror(errno));
		fflush(stdout);
	}
}

static void freebind(int port) {
	int s;
	setup("tcp4", s = bound(SOCK_STREAM, 0, PEER4, port, IPPROTO_IP, IP_FREEBIND));
	report("tcp4", reach(AF_INET, SOCK_STREAM, 0, PEER4, port));
	close(s);
	setup("tcp6", s = bound(SOCK_STREAM, 0, PEER6, port + 1, IPPROTO_IPV6, IPV6_FREEBIND));
	report("tcp6", reach(AF_INET6, SOCK_STREAM, 0, PEER6, port + 1));
	close(s);
	setup("udp4", s = bound(SOCK_DGRAM, 0, PEER4, port + 2, IPPROTO_IP, IP_FREEBIND));
	report("udp4", reach(AF_INET, SOCK_DGRAM, 0, PEER4, port + 2));
	close(s);
	setup("udp6", s = bound(SOCK_DGRAM, 0, PEER6, port + 3, IPPROTO_IPV6, IPV6_FREEBIND));
	report("udp6", reach(AF_INET6, SOCK_DGRAM, 0, PEER6, port + 3));
	close(s);
	// A wildcard listener on the port "owns" no remote address.
	setup("tcp4-wildcard", s = bound(SOCK_STREAM, 0, "0.0.0.0", port + 4, 0, 0));
	report("tcp4-wildcard", reach(AF_INET, SOCK_STREAM, 0, PEER4, port + 4));
	close(s);
	// Freebind through IPv4 on an IPv6 socket (v4-mapped).
	setup("udp4-mapped", s = bound(SOCK_DGRAM, 0, PEER4, port + 5, IPPROTO_IP, IP_FREEBIND));
	report("udp4-mapped", reach(AF_INET6, SOCK_DGRAM, 0, PEER4, port + 5));
	close(s);
}

static void families(int port) {
	int s, t;
	// IPv4 traffic: a V6ONLY [::] does not receive it.
	setup("tcp4-v6only", s = bound(SOCK_STREAM, 0, "::", port, IPPROTO_IPV6, IPV6_V6ONLY));
	report("tcp4-v6only", reach(AF_INET, SOCK_STREAM, 0, "127.0.0.1", port));
	report("tcp4-mapped-v6only", reach(AF_INET6, SOCK_STREAM, 0, "127.0.0.1", port));
	close(s);
	setup("udp4-v6only", s = bound(SOCK_DGRAM, 0, "::", port + 1, IPPROTO_IPV6, IPV6_V6ONLY));
	report("udp4-v6only", reach(AF_INET, SOCK_DGRAM, 0, "127.0.0.1", port + 1));
	report("udp4-mapped-v6only", reach(AF_INET6, SOCK_DGRAM, 0, "127.0.0.1", port + 1));
	close(s);
	// IPv6 traffic: 0.0.0.0 does not receive it.
	setup("tcp6-v4wild", s = bound(SOCK_STREAM, 0, "0.0.0.0", port + 2, 0, 0));
	report("tcp6-v4wild", reach(AF_INET6, SOCK_STREAM, 0, "::1", port + 2));
	close(s);
	setup("udp6-v4wild", s = bound(SOCK_DGRAM, 0, "0.0.0.0", port + 3, 0, 0));
	report("udp6-v4wild", reach(AF_INET6, SOCK_DGRAM, 0, "::1", port + 3));
	close(s);
	// The tree's wildcard, but an outside socket at the exact address,
	// which the kernel prefers.
	setup("tcp-exact-beats-wildcard", s = bound(SOCK_STREAM, 0, "0.0.0.0", port + 4, SOL_SOCKET, SO_REUSEPORT));
	report("tcp-exact-beats-wildcard", reach(AF_INET, SOCK_STREAM, 0, "127.0.0.2", port + 4));
	close(s);
	setup("udp-exact-beats-wildcard", s = bound(SOCK_DGRAM, 0, "::", port + 5, SOL_SOCKET, SO_REUSEADDR));
	report("udp-exact-beats-wildcard", reach(AF_INET6, SOCK_DGRAM, 0, "127.0.0.2", port + 5));
	close(s);
	// The tree's own dual-stack [::] does take IPv4 (nothing else there).
	setup("own-dualstack", s = bound(SOCK_STREAM, 0, "::", port + 10, 0, 0));
	report("own-dualstack", reach(AF_INET, SOCK_STREAM, 0, "127.0.0.1", port + 10));
	close(s);
	setup("own-udp6", t = bound(SOCK_DGRAM, 0, "::1", port + 11, 0, 0));
	report("own-udp6", reach(AF_INET6, SOCK_DGRAM, 0, "::1", port + 11));
	close(t);
	// Through the interface's own addresses (local in the FIB).
	setup("own-veth4", s = bound(SOCK_STREAM, 0, "0.0.0.0", port + 12, 0, 0));
	report("own-veth4", reach(AF_INET, SOCK_STREAM, 0, "10.231.0.1", port + 12));
	close(s);
	setup("own-veth6", t = bound(SOCK_DGRAM, 0, "fd00:231::1", port + 13, 0, 0));
	report("own-veth6", reach(AF_INET6, SOCK_DGRAM, 0, "fd00:231::1", port + 13));
	close(t);
}

static void bcast(int port, const char *ifname) {
	int idx = if_nametoindex(ifname), one = 1, s, t;
	struct sockaddr_storage ss;
	socklen_t n;
	struct in_addr local;
	inet_pton(AF_INET, "10.231.0.1", &local);

	setup("subnet-broadcast", s = bound(SOCK_DGRAM, 0, "10.231.0.255", port, 0, 0));
	t = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(t, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
	n = in4(&ss, "10.231.0.255", port);
	report("subnet-broadcast", sendto(t, "x", 1, 0, (struct sockaddr *)&ss, n) == 1 ? 0 : -1);
	close(t);
	close(s);

	setup("limited-broadcast", s = bound(SOCK_DGRAM, 0, "255.255.255.255", port + 1, 0, 0));
	t = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(t, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
	setsockopt(t, SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname));
	n = in4(&ss, "255.255.255.255", port + 1);
	report("limited-broadcast", sendto(t, "x", 1, 0, (struct sockaddr *)&ss, n) == 1 ? 0 : -1);
	close(t);
	close(s);

	setup("multicast4", s = bound(SOCK_DGRAM, 0, "224.0.0.1", port + 2, 0, 0));
	t = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(t, IPPROTO_IP, IP_MULTICAST_IF, &local, sizeof local);
	n = in4(&ss, "224.0.0.1", port + 2);
	report("multicast4", sendto(t, "x", 1, 0, (struct sockaddr *)&ss, n) == 1 ? 0 : -1);
	report("multicast4-connect", connect(t, (struct sockaddr *)&ss, n) == 0 && send(t, "x", 1, 0) == 1 ? 0 : -1);
	close(t);
	close(s);

	n = in6(&ss, "ff02::1", port + 3, idx);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	setup("multicast6", bind(s, (struct sockaddr *)&ss, n) == 0 ? s : -1);
	t = socket(AF_INET6, SOCK_DGRAM, 0);
	setsockopt(t, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
	// Right after the link comes up, its link-local source address may
	// still be tentative: send a few.
	int rc = 0;
	for (int k = 0; k < 25 && rc == 0; k++, usleep(100000))
		rc = sendto(t, "x", 1, 0, (struct sockaddr *)&ss, n) == 1 ? 0 : -1;
	report("multicast6", rc);
	close(t);
	close(s);
}

static void udplite(int port) {
	int s;
	setup("lite4", s = bound(SOCK_DGRAM, 0, "127.0.0.1", port, 0, 0));
	report("lite4", reach(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, "127.0.0.1", port));
	close(s);
	setup("lite6", s = bound(SOCK_DGRAM, 0, "::1", port + 1, 0, 0));
	report("lite6", reach(AF_INET6, SOCK_DGRAM, IPPROTO_UDPLITE, "::1", port + 1));
	close(s);
	setup("udp-over-lite", s = bound(SOCK_DGRAM, IPPROTO_UDPLITE, "127.0.0.1", port + 2, 0, 0));
	report("udp-over-lite", reach(AF_INET, SOCK_DGRAM, 0, "127.0.0.1", port + 2));
	close(s);
	setup("own-lite", s = bound(SOCK_DGRAM, IPPROTO_UDPLITE, "127.0.0.1", port + 10, 0, 0));
	report("own-lite", reach(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, "127.0.0.1", port + 10));
	close(s);
}

static void reuseport(int port, int n) {
	struct {
		const char *v, *addr;
		int type, off;
	} vs[] = {{"udp4", "127.0.0.1", SOCK_DGRAM, 0}, {"udp6", "::1", SOCK_DGRAM, 1},
		  {"tcp4", "127.0.0.1", SOCK_STREAM, 2}, {"tcp6", "::1", SOCK_STREAM, 3}};
	for (unsigned i = 0; i < sizeof vs / sizeof vs[0]; i++) {
		int s = bound(vs[i].type, 0, vs[i].addr, port + vs[i].off, SOL_SOCKET, SO_REUSEPORT);
		setup(vs[i].v, s);
		int sent = 0, err = 0;
		for (int k = 0; k < n; k++) {
			if (reach(strchr(vs[i].addr, ':') ? AF_INET6 : AF_INET, vs[i].type, 0, vs[i].addr, port + vs[i].off) == 0)
				sent++;
			else
				err = errno;
		}
		printf("%s sent=%d%s%s\n", vs[i].v, sent, err ? " last error: " : "", err ? strerror(err) : "");
		fflush(stdout);
		close(s);
	}
}

static void ifup(const char *name, const char *addr) {
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		perror("lo up");
	if (addr) {
		memset(&ifr, 0, sizeof ifr);
		strcpy(ifr.ifr_name, name);
		struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &a->sin_addr);
		if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
			perror("alias");
	}
	close(s);
}

static socklen_t abstract(struct sockaddr_un *u, const char *name, size_t len) {
	memset(u, 0, sizeof *u);
	u->sun_family = AF_UNIX;
	memcpy(u->sun_path + 1, name, len);
	return offsetof(struct sockaddr_un, sun_path) + 1 + len;
}

static void netns(int port, const char *name) {
	// Made in the sandbox's namespace, used after leaving it.
	int tlo = socket(AF_INET, SOCK_STREAM, 0), ulo = socket(AF_INET, SOCK_DGRAM, 0);
	int tpeer = socket(AF_INET, SOCK_STREAM, 0), upeer = socket(AF_INET, SOCK_DGRAM, 0);
	int ux = socket(AF_UNIX, SOCK_STREAM, 0);
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) {
		printf("unshare %s\n", strerror(errno));
		return;
	}
	ifup("lo:1", PEER4);
	int l1 = bound(SOCK_STREAM, 0, "127.0.0.1", port, 0, 0);
	int l2 = bound(SOCK_DGRAM, 0, "127.0.0.1", port + 1, 0, 0);
	int l3 = bound(SOCK_STREAM, 0, PEER4, port + 2, 0, 0);
	int l4 = bound(SOCK_DGRAM, 0, PEER4, port + 3, 0, 0);
	setup("tcp-loopback", l1);
	setup("udp-loopback", l2);
	setup("tcp-peer", l3);
	setup("udp-peer", l4);
	struct sockaddr_storage ss;
	socklen_t n = in4(&ss, "127.0.0.1", port);
	report("tcp-loopback", connect(tlo, (struct sockaddr *)&ss, n));
	n = in4(&ss, "127.0.0.1", port + 1);
	report("udp-loopback", sendto(ulo, "x", 1, 0, (struct sockaddr *)&ss, n) == 1 ? 0 : -1);
	n = in4(&ss, PEER4, port + 2);
	report("tcp-peer", connect(tpeer, (struct sockaddr *)&ss, n));
	n = in4(&ss, PEER4, port + 3);
	report("udp-peer", sendto(upeer, "x", 1, 0, (struct sockaddr *)&ss, n) == 1 ? 0 : -1);
	struct sockaddr_un u;
	socklen_t ul = abstract(&u, name, strlen(name));
	int l5 = socket(AF_UNIX, SOCK_STREAM, 0);
	setup("abstract", bind(l5, (struct sockaddr *)&u, ul) == 0 && listen(l5, 8) == 0 ? l5 : -1);
	report("abstract", connect(ux, (struct sockaddr *)&u, ul));
}

static int unixsock(int type, const char *path) {
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	strncpy(u.sun_path, path, sizeof u.sun_path - 1);
	int s = socket(AF_UNIX, type, 0);
	unlink(path);
	if (bind(s, (struct sockaddr *)&u, sizeof u) < 0 || (type == SOCK_STREAM && listen(s, 8) < 0)) {
		close(s);
		return -1;
	}
	return s;
}

static int unixreach(int type, const char *path) {
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	strncpy(u.sun_path, path, sizeof u.sun_path - 1);
	int s = socket(AF_UNIX, type, 0), rc;
	if (type == SOCK_STREAM)
		rc = connect(s, (struct sockaddr *)&u, sizeof u);
	else
		rc = sendto(s, "x", 1, 0, (struct sockaddr *)&u, sizeof u) == 1 ? 0 : -1;
	int e = errno;
	close(s);
	errno = e;
	return rc;
}

static void symlinks(const char *dir) {
	char own[300], foreign[300], a[200], b[300];
	int pid = getpid(), s;
	// The tree's socket file replaced by a symlink to the foreign one.
	snprintf(own, sizeof own, "%s/own-%d.sock", dir, pid);
	snprintf(foreign, sizeof foreign, "%s/foreign.sock", dir);
	setup("stream-symlink", s = unixsock(SOCK_STREAM, own));
	unlink(own);
	symlink(foreign, own);
	report("stream-symlink", unixreach(SOCK_STREAM, own));
	close(s);
	snprintf(own, sizeof own, "%s/ownd-%d.sock", dir, pid);
	snprintf(foreign, sizeof foreign, "%s/foreign.dgram", dir);
	setup("dgram-symlink", s = unixsock(SOCK_DGRAM, own));
	unlink(own);
	symlink(foreign, own);
	report("dgram-symlink", unixreach(SOCK_DGRAM, own));
	close(s);
	// A directory of the tree's socket path re-pointed at the foreign dir.
	snprintf(a, sizeof a, "%s/d-%d", dir, pid);
	mkdir(a, 0700);
	snprintf(own, sizeof own, "%s/x.sock", a);
	setup("dir-symlink", s = unixsock(SOCK_STREAM, own));
	snprintf(b, sizeof b, "%s.old", a);
	rename(a, b);
	snprintf(foreign, sizeof foreign, "%s/fdir", dir);
	symlink(foreign, a);
	report("dir-symlink", unixreach(SOCK_STREAM, own));
	close(s);
	// A hard link to the foreign socket file in place of the tree's
	// (fs.protected_hardlinks refuses it to nobody).
	snprintf(own, sizeof own, "%s/ownh-%d.sock", dir, pid);
	snprintf(foreign, sizeof foreign, "%s/foreign.sock", dir);
	setup("stream-hardlink", s = unixsock(SOCK_STREAM, own));
	unlink(own);
	if (link(foreign, own) < 0)
		printf("stream-hardlink setup: %s\n", strerror(errno));
	else
		report("stream-hardlink", unixreach(SOCK_STREAM, own));
	close(s);
}

static void abstracts(const char *base) {
	char name[100], foreign[100];
	struct sockaddr_un u;
	socklen_t n;
	int s, c;
	struct {
		const char *v, *own, *foreign;
		int ownlen, type;
	} vs[] = {
		{"space", "%s-a b", "%s-a", -1, SOCK_STREAM},
		{"nul-as-at", "%s-n\1", "%s-n@", -1, SOCK_STREAM}, // \1 becomes NUL below
		{"dgram-space", "%s-d x", "%s-d", -1, SOCK_DGRAM},
		{"trailing-space", "%s-t ", "%s-t", -1, SOCK_STREAM},
	};
	for (unsigned i = 0; i < sizeof vs / sizeof vs[0]; i++) {
		snprintf(name, sizeof name, vs[i].own, base);
		size_t len = strlen(name);
		for (size_t k = 0; k < len; k++)
			if (name[k] == 1)
				name[k] = 0;
		snprintf(foreign, sizeof foreign, vs[i].foreign, base);
		s = socket(AF_UNIX, vs[i].type, 0);
		n = abstract(&u, name, len);
		setup(vs[i].v, bind(s, (struct sockaddr *)&u, n) == 0 && (vs[i].type != SOCK_STREAM || listen(s, 8) == 0) ? s : -1);
		n = abstract(&u, foreign, strlen(foreign));
		c = socket(AF_UNIX, vs[i].type, 0);
		if (vs[i].type == SOCK_STREAM)
			report(vs[i].v, connect(c, (struct sockaddr *)&u, n));
		else
			report(vs[i].v, sendto(c, "x", 1, 0, (struct sockaddr *)&u, n) == 1 ? 0 : -1);
		close(c);
		close(s);
	}
	// The tree's own abstract socket, with a space in the name: allowed.
	snprintf(name, sizeof name, "%s-own x", base);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	n = abstract(&u, name, strlen(name));
	setup("own-space", bind(s, (struct sockaddr *)&u, n) == 0 && listen(s, 8) == 0 ? s : -1);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	report("own-space", connect(c, (struct sockaddr *)&u, n));
}

static void bindmount(const char *dir) {
	char p[200], f[200];
	int pid = getpid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		printf("unshare %s\n", strerror(errno));
		return;
	}
	struct {
		const char *v, *foreign;
		int type;
	} vs[] = {{"stream-bindmount", "forbidden/f.sock", SOCK_STREAM}, {"dgram-bindmount", "forbidden/f.dgram", SOCK_DGRAM}};
	for (unsigned i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s/allowed/m%u-%d", dir, i, pid);
		snprintf(f, sizeof f, "%s/%s", dir, vs[i].foreign);
		close(open(p, O_CREAT | O_WRONLY, 0666));
		if (mount(f, p, NULL, MS_BIND, NULL) < 0) {
			printf("%s setup: %s\n", vs[i].v, strerror(errno));
			continue;
		}
		report(vs[i].v, unixreach(vs[i].type, p));
	}
	// A directory bind mount: the allowed path leads into the forbidden dir.
	snprintf(p, sizeof p, "%s/allowed/dir-%d", dir, pid);
	snprintf(f, sizeof f, "%s/forbidden", dir);
	mkdir(p, 0700);
	if (mount(f, p, NULL, MS_BIND, NULL) < 0)
		printf("dir-bindmount setup: %s\n", strerror(errno));
	else {
		snprintf(p, sizeof p, "%s/allowed/dir-%d/f.sock", dir, pid);
		report("dir-bindmount", unixreach(SOCK_STREAM, p));
	}
	// A hard link (fs.protected_hardlinks refuses it to nobody).
	snprintf(p, sizeof p, "%s/allowed/hl-%d", dir, pid);
	snprintf(f, sizeof f, "%s/forbidden/f.sock", dir);
	if (link(f, p) < 0)
		printf("stream-hardlink setup: %s\n", strerror(errno));
	else
		report("stream-hardlink", unixreach(SOCK_STREAM, p));
}

static void relative(const char *dir) {
	char a[200], b[200];
	int pid = getpid(), s;
	if (chdir(dir) < 0) {
		perror("chdir");
		return;
	}
	snprintf(a, sizeof a, "r-%d.sock", pid);
	setup("relative-stream", s = unixsock(SOCK_STREAM, a));
	report("relative-stream", unixreach(SOCK_STREAM, a));
	pid_t child = fork();
	if (child == 0) {
		report("relative-child", unixreach(SOCK_STREAM, a));
		_exit(0);
	}
	waitpid(child, NULL, 0);
	close(s);
	snprintf(a, sizeof a, "rd-%d.sock", pid);
	setup("relative-dgram", s = unixsock(SOCK_DGRAM, a));
	report("relative-dgram", unixreach(SOCK_DGRAM, a));
	close(s);
	// Bound under a temporary name, then link()ed into place.
	snprintf(a, sizeof a, "%s/tmp-%d", dir, pid);
	snprintf(b, sizeof b, "%s/linked-%d.sock", dir, pid);
	setup("link", s = unixsock(SOCK_STREAM, a));
	setup("link", link(a, b) == 0 ? 0 : -1);
	unlink(a);
	report("link", unixreach(SOCK_STREAM, b));
	close(s);
	// Bound under a temporary name, then rename()d into place (OpenSSH).
	snprintf(a, sizeof a, "%s/tmp2-%d", dir, pid);
	snprintf(b, sizeof b, "%s/renamed-%d.sock", dir, pid);
	setup("rename", s = unixsock(SOCK_STREAM, a));
	setup("rename", rename(a, b) == 0 ? 0 : -1);
	report("rename", unixreach(SOCK_STREAM, b));
	close(s);
	// Relative from a subdirectory, reached by absolute path from elsewhere.
	mkdir("sub", 0755);
	snprintf(a, sizeof a, "sub/s-%d.sock", pid);
	setup("relative-absolute", s = unixsock(SOCK_STREAM, a));
	chdir("/");
	snprintf(b, sizeof b, "%s/sub/s-%d.sock", dir, pid);
	report("relative-absolute", unixreach(SOCK_STREAM, b));
	close(s);
}

// waitfor polls for path for up to 20 s.
static int waitfor(const char *path) {
	for (int k = 0; k < 400; k++, usleep(50000))
		if (access(path, F_OK) == 0)
			return 0;
	errno = ETIMEDOUT;
	return -1;
}

// late: the tree's socket is reached once while it is alone (allowed), then
// a foreign socket appears at the same port (the test makes it when
// DIR/seen-PORT appears), and the same destination is reached N times: a
// REUSEPORT member joining the tree's group, or a wildcard behind the
// tree's exact address, which receives once the tree closes its own (then N
// more reaches).
static void late(int port, const char *dir, int n) {
	struct {
		const char *v, *addr;
		int type, off, opt, shadow;
	} vs[] = {
		{"udp4-member", "127.0.0.1", SOCK_DGRAM, 0, SO_REUSEPORT, 0},
		{"udp6-member", "::1", SOCK_DGRAM, 1, SO_REUSEPORT, 0},
		{"tcp4-member", "127.0.0.1", SOCK_STREAM, 2, SO_REUSEPORT, 0},
		{"udp4-shadowed", "127.0.0.1", SOCK_DGRAM, 3, SO_REUSEADDR, 1},
		{"tcp4-shadowed", "127.0.0.1", SOCK_STREAM, 4, SO_REUSEPORT, 1},
	};
	for (unsigned i = 0; i < sizeof vs / sizeof vs[0]; i++) {
		int p = port + vs[i].off, fam = strchr(vs[i].addr, ':') ? AF_INET6 : AF_INET;
		char first[64], seen[300], go[300];
		int s = bound(vs[i].type, 0, vs[i].addr, p, SOL_SOCKET, vs[i].opt);
		setup(vs[i].v, s);
		snprintf(first, sizeof first, "%s-first", vs[i].v);
		report(first, reach(fam, vs[i].type, 0, vs[i].addr, p));
		snprintf(seen, sizeof seen, "%s/seen-%d", dir, p);
		snprintf(go, sizeof go, "%s/go-%d", dir, p);
		close(open(seen, O_CREAT | O_WRONLY, 0666));
		if (waitfor(go) < 0)
			printf("%s setup: the foreign socket: %s\n", vs[i].v, strerror(errno));
		int sent = 0;
		for (int round = 0; round <= vs[i].shadow; round++) {
			if (round == 1)
				close(s);
			for (int k = 0; k < n; k++)
				if (reach(fam, vs[i].type, 0, vs[i].addr, p) == 0)
					sent++;
		}
		printf("%s sent=%d\n", vs[i].v, sent);
		fflush(stdout);
		if (!vs[i].shadow)
			close(s);
	}
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: self MODE ARG...\n");
		return 2;
	}
	const char *m = argv[1];
	if (!strcmp(m, "freebind"))
		freebind(atoi(argv[2]));
	else if (!strcmp(m, "families"))
		families(atoi(argv[2]));
	else if (!strcmp(m, "bcast") && argc > 3)
		bcast(atoi(argv[2]), argv[3]);
	else if (!strcmp(m, "udplite"))
		udplite(atoi(argv[2]));
	else if (!strcmp(m, "reuseport") && argc > 3)
		reuseport(atoi(argv[2]), atoi(argv[3]));
	else if (!strcmp(m, "netns") && argc > 3)
		netns(atoi(argv[2]), argv[3]);
	else if (!strcmp(m, "symlink"))
		symlinks(argv[2]);
	else if (!strcmp(m, "abstract"))
		abstracts(argv[2]);
	else if (!strcmp(m, "bindmount"))
		bindmount(argv[2]);
	else if (!strcmp(m, "relative"))
		relative(argv[2]);
	else if (!strcmp(m, "late") && argc > 4)
		late(atoi(argv[2]), argv[3], atoi(argv[4]));
	else {
		fprintf(stderr, "unknown mode %s\n", m);
		return 2;
	}
	return 0;
}
