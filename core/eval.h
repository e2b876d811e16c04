/* Measuring a model on text: perplexity in windows of n_ctx scored on the
 * second half of each window (as llama.cpp's perplexity tool does), and,
 * against a base model in the same pass, KL divergence, top-1 agreement
 * and the change in perplexity. Also text generation. */
#ifndef SL_EVAL_H
#define SL_EVAL_H

#include "forward.h"
#include "progress.h"
#include "sample.h"

typedef struct {
	int n_ctx;       /* window length (0 = min(512, model context)) */
	int n_chunks;    /* windows to score (0 = as many as the text holds) */
	const sl_progress *progress;
} sl_eval_opts;

typedef struct {
	int n_ctx, n_chunks;
	long long n_scored;     /* predictions scored */
	double nll;             /* mean negative log-likelihood, nats */
	double ppl, ppl_se;     /* perplexity and its standard error */
	/* Filled when a base model was given. */
	bool has_base;
	double base_ppl, delta_ppl;
	double kl_mean, kl_se, kl_median, kl_p99, kl_max;
	double top1;            /* fraction of positions where both argmaxes agree */
	double seconds;
} sl_eval_result;

/* Scores tokens (which start with BOS if the model uses one). base may be
 * NULL; otherwise it must share the vocabulary. Logits never leave memory. */
sl_status sl_eval_tokens(const sl_model *m, const sl_model *base, const int32_t *tokens, size_t n,
                         const sl_eval_opts *o, sl_eval_result *r, sl_error *err);
/* Tokenizes text with the model's tokenizer (BOS first) and scores it. */
sl_status sl_eval_text(const sl_model *m, const sl_model *base, const char *text, size_t len,
                       const sl_eval_opts *o, sl_eval_result *r, sl_error *err);

/* KL(p || q) for two rows of logits, in nats; also reports whether the
 * argmaxes agree. */
double sl_kl_logits(const float *p_logits, const float *q_logits, int n, bool *same_top1);
/* log softmax(logits)[target], in nats. */
double sl_log_prob(const float *logits, int n, int target);

/* Called for each generated token with the bytes it decodes to; return
 * false to stop. */
typedef bool (*sl_token_fn)(void *ctx, int32_t id, const char *text, size_t len);

/* Encodes prompt (BOS first), then samples up to n_gen tokens, stopping
 * early at end of sequence. */
sl_status sl_generate(const sl_model *m, const char *prompt, int n_gen, sl_sampler *smp,
                      sl_token_fn on_token, void *ctx, const sl_progress *p, sl_error *err);

#endif
