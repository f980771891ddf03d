/*
 * Untrapped syscall cost: syscall(SYS_getpid) in a loop. Under the sandbox
 * this only pays for running the seccomp filter, never for the supervisor.
 */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

int main(int argc, char **argv)
{
	long n = bench_iters(argc, argv, 1000000);
	long sink = 0;

	for (long i = bench_warmup(n); i > 0; i--)
		sink += syscall(SYS_getpid);

	long long t0 = bench_now_ns();
	for (long i = 0; i < n; i++)
		sink += syscall(SYS_getpid);
	long long t1 = bench_now_ns();

	if (sink == 0) /* keeps the loop observable */
		fprintf(stderr, "bench: getpid returned 0\n");
	bench_report("getpid", n, t0, t1);
	return 0;
}
