// signals: shows what reaches the program when its container is stopped.
//
//   signals term     print "ready"; on SIGTERM print "got SIGTERM" and die
//                    of it (status 143 through the sandbox)
//   signals ignore   ignore SIGTERM, print "ready" and wait for SIGKILL
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_term(int sig) { got = sig; }

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: signals term|ignore\n");
		return 2;
	}
	sigset_t all, none;
	sigfillset(&all);
	sigemptyset(&none);
	if (strcmp(argv[1], "ignore") == 0) {
		signal(SIGTERM, SIG_IGN);
		puts("ready");
		fflush(stdout);
		for (;;)
			pause();
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigprocmask(SIG_BLOCK, &all, NULL);
	puts("ready");
	fflush(stdout);
	while (!got)
		sigsuspend(&none);
	puts("got SIGTERM");
	fflush(stdout);
	signal(SIGTERM, SIG_DFL);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	raise(SIGTERM);
	return 1; // not reached
}
