// attacks: a program that tries to get around its supervisor. Each line is
// one attack and what the kernel answered; under the sandbox every attack
// must fail.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(const char *name, long r) {
	printf("%s: %s\n", name, r < 0 ? strerrorname_np(errno) : "succeeded");
}

// usage: attacks [sockets]   ("sockets": only the socket attempts, safe to
// run natively as root: the other attacks target the parent process)
int main(int argc, char **argv) {
	pid_t sup = getppid(); // the supervisor is the program's parent
	int sockets_only = argc > 1 && strcmp(argv[1], "sockets") == 0;

	// io_uring would carry IORING_OP_CONNECT past seccomp.
	char params[120] = {0};
	long ring = syscall(SYS_io_uring_setup, 4, params);
	report("io_uring_setup", ring);
	if (ring >= 0)
		close(ring);

	// Raw and packet sockets reach any peer without connect.
	long rs = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	report("raw_icmp_socket", rs);
	if (rs >= 0)
		close(rs);
	long ps = socket(AF_PACKET, SOCK_RAW, 0);
	report("packet_socket", ps);
	if (ps >= 0)
		close(ps);
	if (sockets_only)
		return 0;

	report("ptrace_attach_supervisor", ptrace(PTRACE_ATTACH, sup, 0, 0));
	char buf[16];
	struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
	report("process_vm_readv_supervisor", process_vm_readv(sup, &local, 1, &remote, 1, 0));
	int pidfd = syscall(SYS_pidfd_open, sup, 0);
	report("pidfd_getfd_supervisor", pidfd < 0 ? pidfd : syscall(SYS_pidfd_getfd, pidfd, 3, 0));
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", sup);
	report("open_supervisor_mem", open(path, O_RDWR));

	if (pidfd >= 0)
		close(pidfd);
	// The descriptors the program holds: those it inherited, as natively,
	// and none of the sandbox's own.
	DIR *d = opendir("/proc/self/fd");
	printf("fds:");
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			printf(" %s", e->d_name);
	}
	printf("\n");
	return 0;
}
