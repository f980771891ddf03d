#define _GNU_SOURCE
// rootnet: what a root program could do with the network's capabilities.
// Prints "NAME: ok" or "NAME: ERRNO" (the first call that failed).
//
//	packet   a hand-built ethertype 0x88b5 frame on veth0 (AF_PACKET, send
//	         without an address: never trapped)
//	sockpkt  socket(AF_INET, SOCK_PACKET): an AF_PACKET socket in disguise
//	raw      an IP protocol 253 datagram to 10.231.0.2 (raw socket)
//	xdp      socket(AF_XDP)
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#define MARK "SBXPROBE"

static int fail(const char *name) {
	printf("%s: %s\n", name, strerrorname_np(errno));
	return 0;
}

int main(int argc, char **argv) {
	if (argc != 2)
		return 2;
	const char *m = argv[1];
	if (!strcmp(m, "packet")) {
		int s = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
		if (s < 0)
			return fail(m);
		struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(0x88b5), .sll_ifindex = if_nametoindex("veth0")};
		if (bind(s, (void *)&ll, sizeof ll) < 0)
			return fail(m);
		unsigned char f[64] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5};
		memcpy(f + 14, MARK, strlen(MARK));
		if (send(s, f, sizeof f, 0) < 0)
			return fail(m);
	} else if (!strcmp(m, "sockpkt")) {
		if (socket(AF_INET, SOCK_PACKET, htons(0x88b5)) < 0)
			return fail(m);
	} else if (!strcmp(m, "raw")) {
		int s = socket(AF_INET, SOCK_RAW, 253);
		if (s < 0)
			return fail(m);
		struct sockaddr_in a = {.sin_family = AF_INET};
		inet_pton(AF_INET, "10.231.0.2", &a.sin_addr);
		if (connect(s, (void *)&a, sizeof a) < 0 || send(s, MARK, strlen(MARK), 0) < 0)
			return fail(m);
	} else if (!strcmp(m, "xdp")) {
		if (socket(AF_XDP, SOCK_RAW, 0) < 0)
			return fail(m);
	} else {
		return 2;
	}
	printf("%s: ok\n", m);
	return 0;
}
