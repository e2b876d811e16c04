/* Measuring a model on text: perplexity in windows of n_ctx scored on the
 * second half of each window (as llama.cpp's perplexity tool does), and,
 * against a base model in the same pass, KL divergence, top-1 agreement
 * and the change in perplexity. Also text generation. */
#ifndef SL_EVAL_H
#define SL_EVAL_H

#include "card.h"
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
	double acceptance;      /* mean over positions of sum min(p, q): the share of sampled tokens a
	                         * speculative run would keep with this model drafting for the base
	                         * (greedy acceptance is top1) */
	double seconds;
} sl_eval_result;

/* The running sums behind an sl_eval_result, so that every caller (eval,
 * sensitivity sweeps) scores predictions with the same arithmetic. */
typedef struct {
	bool with_base;
	double nll, nll2, bnll, kl, kl2, overlap;
	long long agree, count;
	double *kls;          /* every KL, for the median and tail */
	size_t kls_cap;
} sl_score;

void sl_score_init(sl_score *sc, bool with_base);
/* Adds one prediction: logits (and base logits) for the position before
 * target. Returns false when out of memory. */
bool sl_score_add(sl_score *sc, const float *logits, const float *base_logits, int vocab, int target);
/* Fills the figures of r (ppl, nll, and with a base KL, top-1, delta PPL). */
void sl_score_result(sl_score *sc, sl_eval_result *r);
void sl_score_free(sl_score *sc);

/* Window c of n_ctx tokens as eval scores it: a copy of the tokens with the
 * first replaced by BOS (bos < 0: kept). Predictions are scored from row
 * n_ctx/2 on. */
void sl_eval_window(const int32_t *tokens, int n_ctx, int c, int bos, int32_t *win);
/* Windows of n_ctx that n tokens hold, at most max (0 = no limit). */
int sl_eval_windows(size_t n, int n_ctx, int max);

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
/* The same, with the overlap of the two distributions, sum min(p, q) (1
 * minus their total variation): the chance that a token q samples is kept
 * by speculative sampling against p. */
double sl_compare_logits(const float *p_logits, const float *q_logits, int n, double *overlap, bool *same_top1);
/* log softmax(logits)[target], in nats. */
double sl_log_prob(const float *logits, int n, int target);

/* Called for each generated token with the bytes it decodes to; return
 * false to stop. */
typedef bool (*sl_token_fn)(void *ctx, int32_t id, const char *text, size_t len);

/* Encodes prompt (BOS first), then samples up to n_gen tokens, stopping
 * early at end of sequence. */
sl_status sl_generate(const sl_model *m, const char *prompt, int n_gen, sl_sampler *smp,
                      sl_token_fn on_token, void *ctx, const sl_progress *p, sl_error *err);

/* The figures an evaluation gives ("ppl", "kl", "top1", "dppl", "accept",
 * the names the heatmap's metrics use), each with its card. */
int sl_eval_figure_count(void);
const char *sl_eval_figure_name(int i);
const sl_card *sl_eval_figure_card(int i);

#endif
