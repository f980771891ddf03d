#define _GNU_SOURCE
// orphaned: connects, tries to kill its supervisor (its parent: Landlock's
// signal scope refuses), then waits until the supervisor is gone (killed
// from outside, or by that kill where the layer is off) and connects and
// sends again. With no supervisor, a trapped call must fail (ENOSYS), never
// pass.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	bind(l, (void *)&a, sizeof a);
	listen(l, 8);
	getsockname(l, (void *)&a, &al);
	int c1 = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(c1, (void *)&a, sizeof a);
	printf("before=%d errno=%s\n", r, r ? strerrorname_np(errno) : "0");
	pid_t sup = getppid();
	r = kill(sup, SIGKILL);
	printf("kill_supervisor=%d errno=%s\nwaiting\n", r, r ? strerrorname_np(errno) : "0");
	fflush(stdout);
	for (int i = 0; i < 1000 && getppid() == sup; i++)
		usleep(10 * 1000);
	int c2 = socket(AF_INET, SOCK_STREAM, 0);
	r = connect(c2, (void *)&a, sizeof a);
	printf("after=%d errno=%s\n", r, r ? strerrorname_np(errno) : "0");
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct iovec iov = {"x", 1};
	struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
	r = sendmsg(u, &m, 0);
	printf("sendmsg_after=%d errno=%s\n", r, r < 0 ? strerrorname_np(errno) : "0");
	r = sendto(u, "x", 1, 0, (void *)&a, sizeof a);
	printf("sendto_after=%d errno=%s\n", r, r < 0 ? strerrorname_np(errno) : "0");
	return 0;
}
