// sends: every way to reach a peer without connect(2), aimed at
// destinations the policy denies. Each line says what the attempt got.
//
// usage: sends TCP_PORT UDP_PORT UNIX_DGRAM_PATH      (all on 127.0.0.1)
//        sends nondumpable TCP_PORT UDP_PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void report(const char *name, long r) {
	if (r >= 0)
		printf("%s: ok\n", name);
	else
		printf("%s: %s\n", name, strerrorname_np(errno));
	fflush(stdout);
}

static struct msghdr msg(struct iovec *iov, void *name, socklen_t len) {
	iov->iov_base = "hello";
	iov->iov_len = 5;
	return (struct msghdr){.msg_name = name, .msg_namelen = len, .msg_iov = iov, .msg_iovlen = 1};
}

int main(int argc, char **argv) {
	int nondumpable = argc > 1 && strcmp(argv[1], "nondumpable") == 0;
	if (argc < 4)
		return 2;
	argv += nondumpable;
	struct sockaddr_in tcp = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in udp = tcp;
	udp.sin_port = htons(atoi(argv[2]));
	struct iovec iov;
	struct msghdr m;
	int s;

	if (nondumpable) {
		// As ssh-agent and gpg-agent do: the supervisor loses the right
		// to read this process's memory and descriptors unless it is root.
		report("set_nondumpable", prctl(PR_SET_DUMPABLE, 0));
		s = socket(AF_INET, SOCK_STREAM, 0);
		report("nondumpable_connect", connect(s, (void *)&tcp, sizeof tcp));
		s = socket(AF_INET, SOCK_DGRAM, 0);
		m = msg(&iov, &udp, sizeof udp);
		report("nondumpable_sendmsg", sendmsg(s, &m, 0));
		report("nondumpable_sendto", sendto(s, "hello", 5, 0, (void *)&udp, sizeof udp));
		return 0;
	}

	// TCP Fast Open: the SYN carries data to the address given.
	s = socket(AF_INET, SOCK_STREAM, 0);
	report("sendto_fastopen", sendto(s, "hello", 5, MSG_FASTOPEN | MSG_NOSIGNAL, (void *)&tcp, sizeof tcp));
	close(s);
	s = socket(AF_INET, SOCK_STREAM, 0);
	m = msg(&iov, &tcp, sizeof tcp);
	report("sendmsg_fastopen", sendmsg(s, &m, MSG_FASTOPEN | MSG_NOSIGNAL));
	close(s);
	s = socket(AF_INET, SOCK_STREAM, 0);
	int on = 1;
	setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &on, sizeof on);
	report("fastopen_connect", connect(s, (void *)&tcp, sizeof tcp));
	report("fastopen_connect_write", send(s, "hello", 5, MSG_NOSIGNAL));
	close(s);

	// Datagrams with an address, through every send call.
	s = socket(AF_INET, SOCK_DGRAM, 0);
	report("sendto_udp", sendto(s, "hello", 5, 0, (void *)&udp, sizeof udp));
	m = msg(&iov, &udp, sizeof udp);
	report("sendmsg_udp", sendmsg(s, &m, 0));
	struct mmsghdr mm[2] = {{.msg_hdr = m}, {.msg_hdr = m}};
	report("sendmmsg_udp", sendmmsg(s, mm, 2, 0));
	// A connected UDP socket still sends to an address given per call.
	struct sockaddr_in elsewhere = udp;
	elsewhere.sin_port = htons(9);
	connect(s, (void *)&elsewhere, sizeof elsewhere);
	report("sendmsg_udp_connected_elsewhere", sendmsg(s, &m, 0));
	close(s);

	// Unix datagrams, with and without descriptors attached.
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof un.sun_path, "%s", argv[3]);
	s = socket(AF_UNIX, SOCK_DGRAM, 0);
	report("sendto_unix_dgram", sendto(s, "hello", 5, 0, (void *)&un, sizeof un));
	m = msg(&iov, &un, sizeof un);
	report("sendmsg_unix_dgram", sendmsg(s, &m, 0));
	char ctl[CMSG_SPACE(sizeof(int))] __attribute__((aligned(8)));
	struct cmsghdr *c = (struct cmsghdr *)ctl;
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &s, sizeof s);
	m.msg_control = ctl;
	m.msg_controllen = sizeof ctl;
	report("sendmsg_unix_scm_rights", sendmsg(s, &m, 0));
	close(s);
	return 0;
}
