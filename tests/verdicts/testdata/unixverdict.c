// unixverdict MODE TYPE PATH: one Unix connect, as a program would make it,
// and what follows. MODE: nonblock, sndtimeo (blocking, SO_SNDTIMEO 300ms),
// alarm (blocking, SIGALRM after 300ms without SA_RESTART). TYPE: stream,
// seqpacket or dgram. Prints each step's result; no addresses, no times.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static const char *en(int e) {
	switch (e) {
	case 0: return "0";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ENETUNREACH: return "ENETUNREACH";
	case EISCONN: return "EISCONN";
	case ENOTCONN: return "ENOTCONN";
	case EALREADY: return "EALREADY";
	case EINPROGRESS: return "EINPROGRESS";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case EPROTOTYPE: return "EPROTOTYPE";
	}
	static char b[32];
	snprintf(b, sizeof b, "errno%d", e);
	return b;
}

static void onalarm(int s) { (void)s; }

static void report(const char *what, int r) { printf("%s: ret=%d errno=%s\n", what, r < 0 ? -1 : r, r < 0 ? en(errno) : "0"); }

int main(int argc, char **argv) {
	if (argc != 4) return 2;
	const char *mode = argv[1], *type = argv[2];
	int t = !strcmp(type, "dgram") ? SOCK_DGRAM : !strcmp(type, "seqpacket") ? SOCK_SEQPACKET : SOCK_STREAM;
	int fd = socket(AF_UNIX, t, 0);
	if (!strcmp(mode, "nonblock")) fcntl(fd, F_SETFL, O_NONBLOCK);
	if (!strcmp(mode, "sndtimeo")) {
		struct timeval tv = {0, 300000};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	}
	if (!strcmp(mode, "alarm")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = onalarm; // no SA_RESTART
		sigaction(SIGALRM, &sa, NULL);
		struct itimerval it = {{0, 0}, {0, 300000}};
		setitimer(ITIMER_REAL, &it, NULL);
	}
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, argv[3], sizeof a.sun_path - 1);
	report("connect", connect(fd, (struct sockaddr *)&a, sizeof a));
	struct sockaddr_un p;
	socklen_t pl = sizeof p;
	report("getpeername", getpeername(fd, (struct sockaddr *)&p, &pl));
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	printf("so_error: %s\n", en(soerr));
	if (t == SOCK_DGRAM) {
		report("send nonblocking", send(fd, "x", 1, MSG_DONTWAIT));
		if (strcmp(mode, "nonblock")) {
			if (!strcmp(mode, "alarm")) {
				struct itimerval it = {{0, 0}, {0, 300000}};
				setitimer(ITIMER_REAL, &it, NULL);
			}
			report("send blocking", send(fd, "x", 1, 0));
		}
	}
	if (!strcmp(mode, "alarm")) {
		struct itimerval it = {{0, 0}, {0, 300000}};
		setitimer(ITIMER_REAL, &it, NULL);
	}
	report("connect again", connect(fd, (struct sockaddr *)&a, sizeof a));
	return 0;
}
