#define _GNU_SOURCE
// credclaim: claims credentials with SCM_CREDENTIALS on a Unix socketpair
// and prints what the kernel (or the sandbox) answered and what the
// receiver saw. The supervisor sends these messages itself: it must not lend
// its own pid or capabilities to the claim (scm_check_creds).
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sv[2];

static void claim(const char *name, pid_t pid, uid_t uid, gid_t gid) {
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr a;
	} u;
	struct iovec iov = {"x", 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
	struct ucred cr = {.pid = pid, .uid = uid, .gid = gid};
	memcpy(CMSG_DATA(c), &cr, sizeof cr);
	int r = sendmsg(sv[0], &m, 0);
	if (r < 0) {
		printf("%s: %s\n", name, strerrorname_np(errno));
		return;
	}
	char b[1];
	struct msghdr rm = {.msg_iov = &(struct iovec){b, 1}, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	recvmsg(sv[1], &rm, 0);
	struct ucred got;
	memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&rm)), sizeof got);
	printf("%s: ok pid_is_claimed=%d uid=%u gid=%u\n", name, got.pid == pid, got.uid, got.gid);
}

int main(void) {
	socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
	int on = 1;
	setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
	claim("own", getpid(), getuid(), getgid());
	claim("pid_1", 1, getuid(), getgid());
	claim("uid_0", getpid(), 0, getgid());
	claim("gid_0", getpid(), getuid(), 0);
	claim("uid_12345", getpid(), 12345, getgid());
	return 0;
}
