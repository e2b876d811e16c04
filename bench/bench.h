/* Shared helpers for the benchmarks: the model to run on and clocks. The
 * machine's memory bandwidth and resident memory come from core/speed.h,
 * measured in the same process as the figures they are compared with. */
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

#endif
