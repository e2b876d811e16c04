/* Shared helpers for the benchmarks: a monotonic clock and the machine's
 * memory bandwidth, measured in the same process as the figures it is
 * compared with. */
#ifndef SL_BENCH_H
#define SL_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

/* The model a benchmark runs on: its first argument, else stories260K from
 * the fixtures ($SL_FIXTURES or ../shared/fixtures). */
static inline const char *bench_model_path(int argc, char **argv)
{
	static char path[4096];
	const char *fixtures = getenv("SL_FIXTURES");
	snprintf(path, sizeof path, "%s/models/stories260K.gguf", fixtures ? fixtures : "../shared/fixtures");
	return argc > 1 ? argv[1] : path;
}

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of every thread of the process: steadier than the clock
 * when other work shares the machine. */
static inline double bench_cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
	const float *buf;
	size_t n_per_task;
	double *sums;
} bw_args;

static void bw_task(int i, void *p)
{
	bw_args *a = p;
	const float *x = a->buf + (size_t)i * a->n_per_task;
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (size_t j = 0; j + 4 <= a->n_per_task; j += 4) {
		s0 += x[j];
		s1 += x[j + 1];
		s2 += x[j + 2];
		s3 += x[j + 3];
	}
	a->sums[i] = s0 + s1 + s2 + s3;
}

/* Read bandwidth in GB/s: every kernel thread sums its share of a buffer far
 * larger than the caches, best of a few runs. */
static inline double bench_memory_bandwidth(void)
{
	const size_t bytes = (size_t)512 << 20;
	int tasks = sl_kernels_threads();
	size_t n = bytes / sizeof(float);
	float *buf = malloc(bytes);
	double *sums = calloc((size_t)tasks, sizeof(double));
	if (!buf || !sums) {
		free(buf);
		free(sums);
		return 0;
	}
	memset(buf, 1, bytes);
	bw_args a = {buf, n / (size_t)tasks, sums};
	double best = 1e30;
	for (int r = 0; r < 5; r++) {
		double t0 = bench_now();
		sl_parallel_for(tasks, bw_task, &a);
		double t = bench_now() - t0;
		if (t < best)
			best = t;
	}
	free(buf);
	free(sums);
	return (double)bytes / best / 1e9;
}

#endif
