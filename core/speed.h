/* Speed of a model's forward pass measured the way llama.cpp's
 * llama-bench measures it, so that the two can be set side by side on
 * the same file: prompt processing is one batch of n tokens (BOS, then
 * random ids) from an empty cache, decoding n single-token steps from an
 * empty cache; one warm-up run first, then each repetition timed alone.
 * Beside the speeds, what they are compared with: the weight bytes one
 * decoded token reads, the machine's memory read bandwidth and the
 * process's resident memory. */
#ifndef SL_SPEED_H
#define SL_SPEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fileio.h"
#include "model.h"
#include "progress.h"

typedef struct {
	int n_prompt, n_gen;   /* exactly one is not 0: a ppN or a tgN test */
	int reps;
	double *samples_s;     /* [reps] seconds of each repetition */
	double avg_ts, stddev_ts; /* tokens/s over the repetitions (sample standard deviation) */
	size_t kv_bytes;       /* the key/value cache the test's state held */
} sl_speed_test;

/* Runs one test on m with the kernel threads as they are set. seed picks
 * the random token ids. out is filled (free it with sl_speed_test_free)
 * also when cancelled midway: then SL_ERR_CANCELLED. */
sl_status sl_speed_run(const sl_model *m, int n_prompt, int n_gen, int reps, uint64_t seed, const sl_progress *p,
                       sl_speed_test *out, sl_error *err);
void sl_speed_test_free(sl_speed_test *t);

/* Weight bytes one decoded token reads: every tensor, one row of each
 * embedding table, and the whole table again when it is the tied head. */
double sl_model_token_bytes(const sl_model *m);

/* How the model's weights (every tensor's data) are mapped now: their
 * bytes, those in huge pages and those advised to take them (see
 * sl_advise_huge). false where the system does not say. */
bool sl_model_huge_usage(const sl_model *m, sl_huge_usage *out);

/* Read bandwidth of main memory in GB/s: every kernel thread sums its
 * share of a buffer far larger than the caches, best of five passes.
 * 0 when the buffer cannot be had. */
double sl_memory_bandwidth(void);

/* The process's resident memory now and at its peak (VmRSS and VmHWM of
 * /proc/self/status), in bytes; 0 where the system does not say. */
void sl_resident_memory(size_t *rss, size_t *hwm);

#endif
