#define _GNU_SOURCE
// wirecount: runs in the peer namespace and prints one line for every frame
// or datagram carrying the probe marker that reaches it: "packet" for
// ethertype 0x88b5 frames (a packet socket), "raw" for IP protocol 253
// datagrams (a raw socket), "tcp" for each connection accepted on
// 10.231.0.2:7777. Prints "ready" first.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#define MARK "SBXPROBE"

int main(void) {
	int p = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
	int r = socket(AF_INET, SOCK_RAW, 253);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(7777)};
	inet_pton(AF_INET, "10.231.0.2", &a.sin_addr);
	if (p < 0 || r < 0 || l < 0 || bind(l, (void *)&a, sizeof a) < 0 || listen(l, 16) < 0) {
		perror("wirecount: socket");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	struct pollfd fds[3] = {{p, POLLIN, 0}, {r, POLLIN, 0}, {l, POLLIN, 0}};
	char buf[2048];
	for (;;) {
		if (poll(fds, 3, -1) < 0)
			return 1;
		if (fds[2].revents & POLLIN) {
			int c = accept(l, NULL, NULL);
			if (c >= 0) {
				printf("tcp\n");
				fflush(stdout);
				close(c);
			}
		}
		for (int i = 0; i < 2; i++) {
			if (!(fds[i].revents & POLLIN))
				continue;
			ssize_t n = recv(fds[i].fd, buf, sizeof buf, 0);
			if (n > 0 && memmem(buf, n, MARK, strlen(MARK))) {
				printf("%s\n", i ? "raw" : "packet");
				fflush(stdout);
			}
		}
	}
}
