/* dropcache PATH N drop|keep: a single-threaded root child connects to the
 * program's own listener at PATH, in a directory only root may search
 * (which warms the supervisor's memory of its credentials), then, with
 * "drop", drops to nobody with the raw per-thread calls (a single thread:
 * the supervisor remembers it again after the change) and connects N times
 * more. Prints the child's results and how many connections arrived. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sockaddr_un addr = {.sun_family = AF_UNIX};

static int connect_once(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	int r = connect(s, (struct sockaddr *)&addr, sizeof addr);
	int e = errno;
	close(s);
	errno = e;
	return r;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int n = atoi(argv[2]), drop = strcmp(argv[3], "drop") == 0;
	strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
	unlink(addr.sun_path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&addr, sizeof addr) || listen(l, 4096)) {
		perror("listener");
		return 2;
	}
	pid_t c = fork();
	if (c == 0) {
		if (connect_once() != 0) {
			printf("warm-up: %s\n", strerror(errno));
			_exit(3);
		}
		if (drop && (syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setresgid, 65534, 65534, 65534) ||
			     syscall(SYS_setresuid, 65534, 65534, 65534))) {
			perror("drop");
			_exit(2);
		}
		int ok = 0, eacces = 0, other = 0;
		for (int i = 0; i < n; i++) {
			if (connect_once() == 0)
				ok++;
			else if (errno == EACCES)
				eacces++;
			else
				other++;
		}
		printf("child ok=%d eacces=%d other=%d\n", ok, eacces, other);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	fcntl(l, F_SETFL, O_NONBLOCK);
	int arrived = 0, a;
	while ((a = accept(l, NULL, NULL)) >= 0) {
		arrived++;
		close(a);
	}
	printf("arrived=%d\n", arrived);
	unlink(addr.sun_path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
