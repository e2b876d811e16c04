/* Speed tests as llama-bench runs them, the weight bytes a token reads,
 * the machine's memory bandwidth and the process's resident memory. */
#include "speed.h"

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "sample.h"
#include "tokenizer.h"

void sl_speed_test_free(sl_speed_test *t)
{
	free(t->samples_s);
	memset(t, 0, sizeof *t);
}

/* Mean and sample standard deviation of the tokens/s of each repetition,
 * as llama-bench averages them. */
static void rates(sl_speed_test *t)
{
	int n = t->n_prompt + t->n_gen;
	double sum = 0, sq = 0;
	for (int r = 0; r < t->reps; r++)
		sum += n / t->samples_s[r];
	t->avg_ts = sum / t->reps;
	for (int r = 0; r < t->reps; r++) {
		double d = n / t->samples_s[r] - t->avg_ts;
		sq += d * d;
	}
	t->stddev_ts = t->reps > 1 ? sqrt(sq / (t->reps - 1)) : 0;
}

sl_status sl_speed_run(const sl_model *m, int n_prompt, int n_gen, int reps, uint64_t seed, const sl_progress *p,
                       sl_speed_test *out, sl_error *err)
{
	memset(out, 0, sizeof *out);
	if (n_prompt < 0 || n_gen < 0 || (n_prompt > 0) == (n_gen > 0) || reps < 1)
		return sl_errorf(err, SL_ERR_ARG,
		                 "a speed test is prompt processing or decoding of at least one token, repeated at least once");
	const int n = n_prompt + n_gen, V = m->cfg.vocab_size;
	const int bos = m->tok && sl_tok_add_bos(m->tok) ? sl_tok_bos(m->tok) : -1;
	out->n_prompt = n_prompt;
	out->n_gen = n_gen;
	out->reps = reps;
	out->samples_s = sl_calloc((size_t)reps, sizeof *out->samples_s);
	int32_t *toks = sl_malloc_array((size_t)n, sizeof *toks);
	float *logits = sl_malloc_array((size_t)V, sizeof *logits);
	sl_state *s = NULL;
	sl_status st = SL_OK;
	if (!out->samples_s || !toks || !logits)
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for a test of %d tokens", n);
	else
		st = sl_state_new(m, n, &s, err);
	if (s)
		out->kv_bytes = s->kv_bytes;
	uint64_t rng = seed ? seed : 1;
	/* Repetition -1 is the warm-up: the whole prompt, or one token. */
	for (int r = -1; r < reps && !st; r++) {
		sl_state_reset(s);
		for (int i = 0; i < n; i++) {
			int32_t t = (int32_t)(sl_rand01(&rng) * (float)V);
			toks[i] = i == 0 && bos >= 0 ? bos : t < V ? t : V - 1;
		}
		double t0 = sl_now();
		if (n_prompt)
			st = sl_forward(s, toks, n, logits, n - 1, err);
		for (int i = 0; n_gen && i < (r < 0 ? 1 : n) && !st; i++) {
			if (sl_cancelled(p))
				st = sl_errorf(err, SL_ERR_CANCELLED, "cancelled after %d of %d tokens", i, n);
			else
				st = sl_forward(s, &toks[i], 1, logits, 0, err);
		}
		if (r >= 0 && !st)
			out->samples_s[r] = sl_now() - t0;
		char what[48];
		snprintf(what, sizeof what, "%s%d %s", n_prompt ? "pp" : "tg", n, r < 0 ? "warm-up" : "run");
		sl_report(p, (double)(r + 2) / (reps + 1), what);
		if (!st && r + 1 < reps && sl_cancelled(p))
			st = sl_errorf(err, SL_ERR_CANCELLED, "cancelled after %d of %d repetitions", r + 1, reps);
	}
	if (!st)
		rates(out);
	sl_state_free(s);
	free(toks);
	free(logits);
	return st;
}

double sl_model_token_bytes(const sl_model *m)
{
	double b = 0;
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		if (t == m->tok_embd || t == m->pos_embd)
			b += (double)t->nbytes / (double)t->ne[1];
		else
			b += (double)t->nbytes;
	}
	if (m->output == m->tok_embd) /* tied: the head reads the whole table */
		b += (double)m->tok_embd->nbytes;
	return b;
}

static int span_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const sl_span *)a)->p, y = (uintptr_t)((const sl_span *)b)->p;
	return (x > y) - (x < y);
}

bool sl_model_huge_usage(const sl_model *m, sl_huge_usage *out)
{
	*out = (sl_huge_usage){0};
	sl_span *sp = sl_malloc_array((size_t)m->n_tensors * 3 + 1, sizeof *sp);
	if (!sp)
		return false;
	int n = 0;
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i], *part[3] = {t, t->lr_a, t->lr_b};
		for (int k = 0; k < 3; k++)
			if (part[k] && part[k]->data && part[k]->nbytes)
				sp[n++] = (sl_span){part[k]->data, part[k]->nbytes};
	}
	/* one span for data that two tensors share */
	qsort(sp, (size_t)n, sizeof *sp, span_cmp);
	int k = 0;
	for (int i = 0; i < n; i++) {
		uintptr_t lo = (uintptr_t)sp[i].p, hi = lo + sp[i].n;
		if (k && lo <= (uintptr_t)sp[k - 1].p + sp[k - 1].n) {
			uintptr_t end = (uintptr_t)sp[k - 1].p + sp[k - 1].n;
			if (hi > end)
				sp[k - 1].n += (size_t)(hi - end);
		} else {
			sp[k++] = sp[i];
		}
	}
	bool ok = sl_huge_usage_of(sp, k, out);
	free(sp);
	return ok;
}

typedef struct {
	const uint64_t *buf;
	size_t n_per_task;
	uint64_t *sums;
} bw_args;

/* A task's share read as 64-bit words into four integer sums: an integer
 * add takes a cycle, so the loop waits on memory alone (float sums, four
 * cycles an add, kept it near 4 bytes a cycle: two threads of a Xeon read
 * 19.8 GB/s that way, 22.2 this way). */
static void bw_task(int i, void *p)
{
	bw_args *a = p;
	const uint64_t *x = a->buf + (size_t)i * a->n_per_task;
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (size_t j = 0; j + 4 <= a->n_per_task; j += 4) {
		s0 += x[j];
		s1 += x[j + 1];
		s2 += x[j + 2];
		s3 += x[j + 3];
	}
	a->sums[i] = s0 + s1 + s2 + s3;
}

double sl_memory_bandwidth(void)
{
	const size_t bytes = (size_t)512 << 20;
	int tasks = sl_kernels_threads();
	size_t n = bytes / sizeof(uint64_t);
	uint64_t *buf = malloc(bytes);
	uint64_t *sums = calloc((size_t)tasks, sizeof *sums);
	if (!buf || !sums) {
		free(buf);
		free(sums);
		return 0;
	}
	/* in huge pages, as the weights are where the system grants them
	 * (with 4 KB pages one thread of a Xeon under KVM reads 9.4 GB/s of
	 * 384 MB, with 2 MB pages 14.6) */
	sl_advise_huge(buf, bytes);
	memset(buf, 1, bytes);
	bw_args a = {buf, n / (size_t)tasks, sums};
	double best = 1e30;
	for (int r = 0; r < 5; r++) {
		double t0 = sl_now();
		sl_parallel_for(tasks, bw_task, &a);
		double t = sl_now() - t0;
		if (t < best)
			best = t;
	}
	free(buf);
	free(sums);
	return (double)bytes / best / 1e9;
}

void sl_resident_memory(size_t *rss, size_t *hwm)
{
	*rss = *hwm = 0;
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long kb;
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			*rss = (size_t)kb * 1024;
		else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
			*hwm = (size_t)kb * 1024;
	}
	if (f)
		fclose(f);
}
