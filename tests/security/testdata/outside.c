#define _GNU_SOURCE
// outside: tries to reach a process outside the sandbox (testdata/victim.c)
// and make it send to the forbidden counter.
//
//	outside MODE PID ADDR FD PORT
//
// MODE is ptrace_attach, ptrace_seize, process_vm_writev, proc_mem,
// pidfd_getfd or kill. Prints "MODE: ok" or "MODE: ERRNO".
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(const char *mode, int r) {
	if (r < 0)
		printf("%s: %s\n", mode, strerrorname_np(errno));
	else
		printf("%s: ok\n", mode);
	return 0;
}

// poke writes the port into the stopped tracee and lets it go.
static int poke(pid_t pid, unsigned long addr, unsigned long port) {
	if (waitpid(pid, NULL, __WALL) < 0)
		return -1;
	if (ptrace(PTRACE_POKEDATA, pid, (void *)addr, (void *)port) < 0)
		return -1;
	return ptrace(PTRACE_DETACH, pid, NULL, NULL);
}

int main(int argc, char **argv) {
	if (argc != 6)
		return 2;
	const char *mode = argv[1];
	pid_t pid = atoi(argv[2]);
	unsigned long addr = strtoul(argv[3], NULL, 0);
	int fd = atoi(argv[4]);
	unsigned long port = strtoul(argv[5], NULL, 0);
	int r;
	if (!strcmp(mode, "ptrace_attach")) {
		r = ptrace(PTRACE_ATTACH, pid, NULL, NULL);
		if (r == 0)
			r = poke(pid, addr, port);
	} else if (!strcmp(mode, "ptrace_seize")) {
		r = ptrace(PTRACE_SEIZE, pid, NULL, NULL);
		if (r == 0)
			r = ptrace(PTRACE_INTERRUPT, pid, NULL, NULL);
		if (r == 0)
			r = poke(pid, addr, port);
	} else if (!strcmp(mode, "process_vm_writev")) {
		struct iovec l = {&port, sizeof port}, rem = {(void *)addr, sizeof port};
		r = syscall(SYS_process_vm_writev, pid, &l, 1, &rem, 1, 0);
	} else if (!strcmp(mode, "proc_mem")) {
		char p[64];
		snprintf(p, sizeof p, "/proc/%d/mem", pid);
		r = open(p, O_RDWR);
		if (r >= 0)
			r = pwrite(r, &port, sizeof port, (off_t)addr);
	} else if (!strcmp(mode, "pidfd_getfd")) {
		int pfd = syscall(SYS_pidfd_open, pid, 0);
		r = pfd < 0 ? pfd : syscall(SYS_pidfd_getfd, pfd, fd, 0);
		if (r >= 0)
			r = write(r, "G", 1);
	} else if (!strcmp(mode, "kill")) {
		r = kill(pid, SIGUSR1);
	} else {
		return 2;
	}
	return report(mode, r);
}
