// victim: a process outside the sandbox, same uid as the program. It holds
// a socket connected to the forbidden counter and re-reads a port in a loop:
// whoever can write its memory (ptrace, process_vm_writev, /proc/PID/mem)
// makes it connect to the counter and send; whoever can take its
// descriptors (pidfd_getfd) can send on its socket; whoever can signal it
// makes its SIGUSR1 handler send. Each such send is an arrival.
//
//	victim PORT   prints "pid=P addr=0xA fd=F" and loops until killed
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

volatile unsigned long port; // written by the attacker
static int held;

static void on_usr1(int sig) {
	(void)sig;
	write(held, "S", 1);
}

static int dial(int p) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(s, (void *)&a, sizeof a) != 0) {
		perror("victim: connect");
		exit(1);
	}
	return s;
}

int main(int argc, char **argv) {
	if (argc != 2)
		return 2;
	held = dial(atoi(argv[1]));
	signal(SIGUSR1, on_usr1);
	printf("pid=%d addr=%p fd=%d\n", getpid(), (void *)&port, held);
	fflush(stdout);
	for (;;) {
		if (port) {
			int s = dial((int)port);
			write(s, "I", 1);
			close(s);
			port = 0;
		}
		usleep(5000);
	}
}
