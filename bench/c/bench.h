/*
 * Shared helpers for the bench programs. Each program takes the iteration
 * count as argv[1], runs a short untimed warm-up, times the loop with
 * clock_gettime(CLOCK_MONOTONIC) (setup excluded) and prints one line:
 *
 *   BENCH name=<name> iters=<N> ns_per_op=<float>
 *
 * Any failed syscall is fatal (exit status 1) so a sandbox that denies or
 * mangles a call cannot produce a number.
 */
#ifndef SANDBOX_BENCH_H
#define SANDBOX_BENCH_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline long long bench_now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		perror("clock_gettime");
		exit(1);
	}
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void bench_die(const char *what)
{
	fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static inline long bench_iters(int argc, char **argv, long def)
{
	if (argc < 2)
		return def;
	char *end;
	errno = 0;
	long n = strtol(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || n <= 0) {
		fprintf(stderr, "usage: %s [ITERATIONS>0]\n", argv[0]);
		exit(2);
	}
	return n;
}

static inline long bench_warmup(long n)
{
	long w = n / 10;
	return w < 1 ? 1 : w;
}

static inline void bench_report(const char *name, long n, long long t0, long long t1)
{
	printf("BENCH name=%s iters=%ld ns_per_op=%.1f\n", name, n, (double)(t1 - t0) / (double)n);
	fflush(stdout);
}

/*
 * bench_run warms up, times n calls of cycle(arg) and reports them. (The
 * getpid bench keeps its own loop: an indirect call would be a visible
 * share of a ~150 ns syscall.)
 */
static inline void bench_run(const char *name, long n, void (*cycle)(const void *), const void *arg)
{
	for (long i = bench_warmup(n); i > 0; i--)
		cycle(arg);
	long long t0 = bench_now_ns();
	for (long i = 0; i < n; i++)
		cycle(arg);
	long long t1 = bench_now_ns();
	bench_report(name, n, t0, t1);
}

#endif
