/* Token sampling. */
#include "sample.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

void sl_sampler_init(sl_sampler *s, float temp, float top_p, int top_k, uint64_t seed)
{
	s->temp = temp;
	s->top_p = top_p;
	s->top_k = top_k;
	s->state = seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* xorshift64*: small, fast and good enough for sampling. */
static uint32_t rand_u32(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

float sl_rand01(uint64_t *state)
{
	return (float)(rand_u32(state) >> 8) / 16777216.0f;
}

int sl_argmax(const float *x, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

typedef struct {
	float p;
	int id;
} cand;

static int by_prob_desc(const void *a, const void *b)
{
	float pa = ((const cand *)a)->p, pb = ((const cand *)b)->p;
	if (pa != pb)
		return pa < pb ? 1 : -1;
	return ((const cand *)a)->id - ((const cand *)b)->id;
}

int sl_sample(sl_sampler *s, float *logits, int n)
{
	if (s->temp <= 0.0f)
		return sl_argmax(logits, n);
	float mx = logits[sl_argmax(logits, n)];
	double sum = 0;
	for (int i = 0; i < n; i++) {
		logits[i] = expf((logits[i] - mx) / s->temp);
		sum += logits[i];
	}
	bool truncate = (s->top_k > 0 && s->top_k < n) || (s->top_p > 0.0f && s->top_p < 1.0f);
	if (!truncate) {
		float r = sl_rand01(&s->state) * (float)sum, acc = 0;
		for (int i = 0; i < n; i++) {
			acc += logits[i];
			if (r < acc)
				return i;
		}
		return n - 1;
	}
	cand *c = malloc((size_t)n * sizeof *c);
	if (!c)
		return sl_argmax(logits, n);
	for (int i = 0; i < n; i++)
		c[i] = (cand){(float)(logits[i] / sum), i};
	qsort(c, (size_t)n, sizeof *c, by_prob_desc);
	int k = s->top_k > 0 && s->top_k < n ? s->top_k : n;
	double kept = 0;
	int m = 0;
	while (m < k) {
		kept += c[m].p;
		m++;
		if (s->top_p > 0.0f && s->top_p < 1.0f && kept >= s->top_p)
			break;
	}
	float r = sl_rand01(&s->state) * (float)kept, acc = 0;
	int id = c[m - 1].id;
	for (int i = 0; i < m; i++) {
		acc += c[i].p;
		if (r < acc) {
			id = c[i].id;
			break;
		}
	}
	free(c);
	return id;
}

void sl_sampler_probs(const sl_sampler *s, const float *logits, float *probs, int n)
{
	int best = sl_argmax(logits, n);
	if (s->temp <= 0.0f) {
		for (int i = 0; i < n; i++)
			probs[i] = i == best;
		return;
	}
	double sum = 0;
	for (int i = 0; i < n; i++) {
		probs[i] = expf((logits[i] - logits[best]) / s->temp);
		sum += probs[i];
	}
	bool truncate = (s->top_k > 0 && s->top_k < n) || (s->top_p > 0.0f && s->top_p < 1.0f);
	cand *c = truncate ? malloc((size_t)n * sizeof *c) : NULL;
	if (!c) {
		for (int i = 0; i < n; i++)
			probs[i] = (float)(probs[i] / sum);
		return;
	}
	for (int i = 0; i < n; i++)
		c[i] = (cand){(float)(probs[i] / sum), i};
	qsort(c, (size_t)n, sizeof *c, by_prob_desc);
	int k = s->top_k > 0 && s->top_k < n ? s->top_k : n, m = 0;
	double kept = 0;
	while (m < k) {
		kept += c[m].p;
		m++;
		if (s->top_p > 0.0f && s->top_p < 1.0f && kept >= s->top_p)
			break;
	}
	for (int i = 0; i < n; i++)
		probs[i] = 0;
	for (int i = 0; i < m; i++)
		probs[c[i].id] = (float)(c[i].p / kept);
	free(c);
}

int sl_sample_from(uint64_t *state, const float *probs, int n, double total)
{
	double r = (double)sl_rand01(state) * total, acc = 0;
	int last = 0;
	for (int i = 0; i < n; i++) {
		if (probs[i] <= 0)
			continue;
		acc += probs[i];
		last = i;
		if (r < acc)
			return i;
	}
	return last;
}
