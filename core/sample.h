/* Choosing the next token from logits: greedy, temperature, top-k, top-p,
 * with a seeded generator so a run can be repeated. */
#ifndef SL_SAMPLE_H
#define SL_SAMPLE_H

#include <stdint.h>

typedef struct {
	float temp;      /* 0 = greedy */
	float top_p;     /* 1 = off */
	int top_k;       /* 0 = off */
	uint64_t state;  /* generator state */
} sl_sampler;

void sl_sampler_init(sl_sampler *s, float temp, float top_p, int top_k, uint64_t seed);
/* Picks a token; logits are modified (scaled, turned into probabilities). */
int sl_sample(sl_sampler *s, float *logits, int n);
/* The distribution s samples from, whole: softmax(logits / temp) cut to
 * the top-k and top-p tokens and renormalized (0 elsewhere); greedy
 * (temp 0) is all the mass on the argmax. What speculative sampling
 * compares, draft against target. */
void sl_sampler_probs(const sl_sampler *s, const float *logits, float *probs, int n);
/* Draws a token from probabilities that sum to total (> 0). */
int sl_sample_from(uint64_t *state, const float *probs, int n, double total);
int sl_argmax(const float *x, int n);
/* Uniform in [0, 1). */
float sl_rand01(uint64_t *state);

#endif
