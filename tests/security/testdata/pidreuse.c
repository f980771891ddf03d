// pidreuse.c: a root child connects to PATH (the supervisor remembers its
// credentials) and exits; then a nobody process forks until a child gets
// the same pid back, and that child connects to PATH. Prints
// "first=RESULT" and "reused=PID RESULT" (or "reused=none").
//
//   pidreuse PATH
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sockaddr_un a = {.sun_family = AF_UNIX};

static int try_connect(void) {
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	int r = connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
	close(s);
	return r;
}

static const char *name(int e) { return e == 0 ? "ok" : strerror(e); }

int main(int argc, char **argv) {
	if (argc != 2)
		return 2;
	strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
	int p[2];
	if (pipe(p) < 0)
		return 1;
	pid_t first = fork();
	if (first == 0) {
		int e = try_connect();
		write(p[1], &e, sizeof e);
		_exit(0);
	}
	int e;
	read(p[0], &e, sizeof e);
	waitpid(first, NULL, 0);
	printf("first=%s\n", name(e));
	fflush(stdout);
	pid_t q = fork();
	if (q == 0) {
		if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, 65534, 65534, 65534) < 0 ||
		    syscall(SYS_setresuid, 65534, 65534, 65534) < 0)
			_exit(3);
		for (long i = 0; i < 200000; i++) {
			pid_t c = fork();
			if (c < 0)
				continue;
			if (c == 0) {
				if (getpid() != first)
					_exit(0);
				int e = try_connect();
				write(p[1], &e, sizeof e);
				_exit(0);
			}
			waitpid(c, NULL, 0);
			if (c == first) {
				read(p[0], &e, sizeof e);
				printf("reused=%d %s\n", c, name(e));
				fflush(stdout);
				_exit(0);
			}
		}
		printf("reused=none\n");
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(q, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
