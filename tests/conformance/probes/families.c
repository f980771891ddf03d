/* families: families other than inet, inet6 and unix, which the sandbox
 * passes through. Netlink: connect autobinds the socket to the caller's
 * pid; groups need privilege. This probe must create no netlink socket
 * before the first case: the first autobind takes the pid itself. Packet
 * sockets have no connect at all. */
#include "probe.h"
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

static struct sockaddr_nl nladdr(unsigned pid, unsigned groups)
{
	struct sockaddr_nl a;

	memset(&a, 0, sizeof a);
	a.nl_family = AF_NETLINK;
	a.nl_pid = pid;
	a.nl_groups = groups;
	return a;
}

static int nlsock(int proto)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);

	if (s < 0)
		die("netlink socket");
	return s;
}

/* own_pid: "1" when getsockname's nl_pid is the caller's pid, "0" when
 * not, "neg" for a kernel-chosen negative id. */
static const char *own_pid(int s)
{
	struct sockaddr_nl a;
	socklen_t len = sizeof a;

	if (getsockname(s, (void *)&a, &len) < 0)
		return errname(errno);
	if (a.nl_pid == (unsigned)getpid())
		return "1";
	return (int)a.nl_pid < 0 ? "neg" : "0";
}

/* dump_links sends RTM_GETLINK and reports whether a reply came. */
static const char *dump_links(int s)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req;
	char buf[16384];

	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = RTM_GETLINK;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = 1;
	req.i.ifi_family = AF_UNSPEC;
	if (send(s, &req, sizeof req, 0) < 0)
		return errname(errno);
	if (!(poll1(s, POLLIN, 2000) & POLLIN))
		return "no-reply";
	return recv(s, buf, sizeof buf, 0) > 0 ? "ok" : errname(errno);
}

static void unpriv(void *arg)
{
	struct sockaddr_nl a = nladdr(0, 0);
	int s = nlsock(NETLINK_ROUTE);

	(void)arg;
	CASE("netlink.unpriv_connect_pid0", connect(s, (void *)&a, sizeof a), "own_pid=%s",
	     own_pid(s));
	close(s);
	s = nlsock(NETLINK_ROUTE);
	a = nladdr(0, RTMGRP_LINK);
	CASE("netlink.unpriv_connect_groups", connect(s, (void *)&a, sizeof a));
	close(s);
	s = nlsock(NETLINK_ROUTE);
	a = nladdr(1, 0);
	CASE("netlink.unpriv_connect_pid1", connect(s, (void *)&a, sizeof a));
	close(s);
}

static void forked(void *arg)
{
	struct sockaddr_nl a = nladdr(0, 0);
	int s = nlsock(NETLINK_ROUTE);

	(void)arg;
	CASE("netlink.child_connect_pid0", connect(s, (void *)&a, sizeof a), "own_pid=%s",
	     own_pid(s));
	close(s);
}

static void others(void)
{
	static const struct {
		const char *name;
		int family, type;
	} socks[] = {
		{"packet.dgram", AF_PACKET, SOCK_DGRAM},
		{"packet.raw", AF_PACKET, SOCK_RAW},
	};
	struct sockaddr_storage ss;
	char name[64];

	for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++) {
		int s = socket(socks[i].family, socks[i].type | SOCK_CLOEXEC, 0);

		if (s < 0) {
			fact(socks[i].name, "socket=%s", errname(errno));
			continue;
		}
		memset(&ss, 0, sizeof ss);
		ss.ss_family = socks[i].family;
		snprintf(name, sizeof name, "%s_connect", socks[i].name);
		CASE(name, connect(s, (void *)&ss, sizeof ss));
		snprintf(name, sizeof name, "%s_connect_unspec", socks[i].name);
		CASE(name, connect(s, &(struct sockaddr){.sa_family = AF_UNSPEC}, 2));
		close(s);
	}
}

int main(void)
{
	struct sockaddr_nl a = nladdr(0, 0);
	int s, s2;

	probe_init();
	s = nlsock(NETLINK_ROUTE);
	CASE("netlink.connect_pid0", connect(s, (void *)&a, sizeof a), "own_pid=%s", own_pid(s));
	fact("netlink.connect_pid0_dump", "%s", dump_links(s));
	{
		struct sockaddr_nl peer;
		socklen_t len = sizeof peer;

		getpeername(s, (void *)&peer, &len);
		fact("netlink.connect_pid0_peer", "pid=%u groups=%u", peer.nl_pid, peer.nl_groups);
	}
	/* A second socket cannot take the pid again. */
	s2 = nlsock(NETLINK_ROUTE);
	CASE("netlink.second_socket_connect", connect(s2, (void *)&a, sizeof a), "own_pid=%s",
	     own_pid(s2));
	close(s2);
	CASE("netlink.reconnect", connect(s, (void *)&a, sizeof a), "own_pid=%s", own_pid(s));
	CASE("netlink.unspec", connect(s, &(struct sockaddr){.sa_family = AF_UNSPEC}, 2));
	CASE("netlink.unspec_len1", connect(s, &(struct sockaddr){.sa_family = AF_UNSPEC}, 1));
	close(s);

	s = nlsock(NETLINK_ROUTE);
	CASE("netlink.addrlen_11", connect(s, (void *)&a, 11));
	CASE("netlink.addrlen_0", connect(s, (void *)&a, 0));
	CASE("netlink.addrlen_13", connect(s, (void *)&a, 13), "own_pid=%s", own_pid(s));
	close(s);
	s = nlsock(NETLINK_ROUTE);
	{
		struct sockaddr_in in = sin4("127.0.0.1", 1);

		CASE("netlink.inet_family", connect(s, &in, sizeof in));
	}
	CASE("netlink.null_addr", connect(s, NULL, sizeof a));
	close(s);

	s = nlsock(NETLINK_ROUTE);
	a = nladdr(0, RTMGRP_LINK);
	CASE("netlink.connect_groups", connect(s, (void *)&a, sizeof a));
	close(s);
	s = nlsock(NETLINK_ROUTE);
	a = nladdr(12345, 0);
	CASE("netlink.connect_pid_nobody", connect(s, (void *)&a, sizeof a));
	close(s);
	s = nlsock(NETLINK_GENERIC);
	a = nladdr(0, 0);
	CASE("netlink.generic_connect", connect(s, (void *)&a, sizeof a));
	close(s);
	s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE);
	CASE("netlink.dgram_connect", connect(s, (void *)&a, sizeof a));
	close(s);

	in_child(0, forked, NULL);
	in_child(1, unpriv, NULL);
	others();
	return 0;
}
