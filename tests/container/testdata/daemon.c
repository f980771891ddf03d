// daemon: double-forks the way daemons do, then checks that PID 1 (the
// sandbox) reaps what the double fork orphans.
//
//   daemon DIR MS
//
// PROGRAM (this process) forks A; A calls setsid and forks:
//   B, which waits until it has been re-parented, then exits at once: an
//     orphan that only PID 1 can reap;
//   C, the daemon, which waits until it has been re-parented, then sleeps
//     MS milliseconds, creates DIR/daemon-done and exits.
// A sends the pids of B and C down a pipe and exits; PROGRAM reaps A.
//
// PROGRAM then prints
//   "orphan reaped" once B is gone from /proc, or "orphan zombie" if B is
//     still a zombie after 5 s;
//   "daemon ppid N" with C's parent (1: re-parented to PID 1);
//   "zombies N", the number of zombie processes left in /proc;
// and exits with status 3, leaving C running.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0)
		;
}

// stat_of reads the state and parent of pid from /proc; 0 if it is gone.
static int stat_of(pid_t pid, char *state, pid_t *ppid) {
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	int pp;
	if (!p || sscanf(p + 1, " %c %d", state, &pp) != 2)
		return 0;
	*ppid = pp;
	return 1;
}

static void wait_reparented(pid_t parent) {
	while (getppid() == parent)
		sleep_ms(1);
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: daemon DIR MS\n");
		return 2;
	}
	const char *dir = argv[1];
	long ms = atol(argv[2]);
	int fds[2];
	if (pipe(fds)) {
		perror("pipe");
		return 1;
	}
	pid_t a = fork();
	if (a < 0) {
		perror("fork");
		return 1;
	}
	if (a == 0) {
		setsid();
		pid_t self = getpid();
		pid_t b = fork();
		if (b == 0) {
			wait_reparented(self);
			_exit(0);
		}
		pid_t c = fork();
		if (c == 0) {
			close(fds[1]);
			wait_reparented(self);
			sleep_ms(ms);
			char path[4096];
			snprintf(path, sizeof path, "%s/daemon-done", dir);
			int fd = open(path, O_CREAT | O_WRONLY, 0644);
			if (fd >= 0)
				close(fd);
			_exit(0);
		}
		pid_t pids[2] = {b, c};
		if (write(fds[1], pids, sizeof pids) != sizeof pids)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	pid_t pids[2];
	if (read(fds[0], pids, sizeof pids) != sizeof pids) {
		fprintf(stderr, "no pids from the intermediate process\n");
		return 1;
	}
	int st;
	if (waitpid(a, &st, 0) != a) {
		perror("waitpid");
		return 1;
	}
	char state;
	pid_t ppid;
	int i;
	for (i = 0; i < 5000 && stat_of(pids[0], &state, &ppid); i++)
		sleep_ms(1);
	puts(stat_of(pids[0], &state, &ppid) ? "orphan zombie" : "orphan reaped");
	if (stat_of(pids[1], &state, &ppid))
		printf("daemon ppid %d\n", (int)ppid);
	else
		puts("daemon gone");
	int zombies = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		pid_t p = atoi(e->d_name);
		if (p > 0 && stat_of(p, &state, &ppid) && state == 'Z')
			zombies++;
	}
	if (d)
		closedir(d);
	printf("zombies %d\n", zombies);
	fflush(stdout);
	return 3;
}
