#define _GNU_SOURCE
// rawerrno: socket() for raw, packet and XDP families with good and bad
// protocols; prints each result, for comparison with native Linux (LTP's
// socket01 expects EPROTONOSUPPORT for SOCK_RAW protocol 0 before any
// capability check, inet_create's order).
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void try(const char *name, int fam, int type, int proto) {
	int s = socket(fam, type, proto);
	printf("%s: %s\n", name, s < 0 ? strerrorname_np(errno) : "ok");
	if (s >= 0)
		close(s);
}

int main(void) {
	try("inet_raw_0", AF_INET, SOCK_RAW, 0);
	try("inet_raw_255", AF_INET, SOCK_RAW, 255);
	try("inet_raw_icmp", AF_INET, SOCK_RAW, 1);
	try("inet_raw_300", AF_INET, SOCK_RAW, 300);
	try("inet6_raw_0", AF_INET6, SOCK_RAW, 0);
	try("inet6_raw_255", AF_INET6, SOCK_RAW, 255);
	try("packet", AF_PACKET, SOCK_RAW, htons(3));
	try("packet_dgram", AF_PACKET, SOCK_DGRAM, htons(3));
	try("inet_sock_packet", AF_INET, SOCK_PACKET, htons(3));
	try("xdp", 44, SOCK_RAW, 0);
	return 0;
}
