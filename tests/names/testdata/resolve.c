/* resolve NAME...: getaddrinfo each NAME (IPv4 and IPv6, stream) and print
 * its addresses sorted, or the error. Compiled with musl it exercises a
 * resolver that sends each query on an unconnected UDP socket and accepts
 * only answers whose source is a nameserver it asked. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int cmp(const void *a, const void *b) { return strcmp(a, b); }

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *p;
		int e = getaddrinfo(argv[i], NULL, &hints, &res);
		if (e) {
			printf("%s: %s\n", argv[i], e == EAI_NONAME ? "no such name" : "lookup failed");
			continue;
		}
		char addrs[64][64];
		int n = 0;
		for (p = res; p && n < 64; p = p->ai_next) {
			void *a = p->ai_family == AF_INET ? (void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
							  : (void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
			inet_ntop(p->ai_family, a, addrs[n++], sizeof addrs[0]);
		}
		freeaddrinfo(res);
		qsort(addrs, n, sizeof addrs[0], cmp);
		printf("%s:", argv[i]);
		for (int j = 0; j < n; j++)
			printf(" %s", addrs[j]);
		printf("\n");
	}
	return 0;
}
