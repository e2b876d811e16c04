/* Perplexity, KL divergence and top-1 agreement, computed while the logits
 * are in memory; and generation. */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"

/* --- the figures and their cards ------------------------------------------- */

static const sl_card card_ppl = {
	.title = "PPL: perplexity",
	.what = "How surprised the model is by the text: the exponential of the mean negative log-likelihood of each "
	        "next token. Scored as llama.cpp does, on the second half of each window.",
	.formula = "PPL = exp(-(1/N) sum_t log p(x_t | x_<t)), N the tokens scored.",
	.watch = "Evaluate: the PPL column and its sparkline across runs measured alike; the header of the run says "
	         "the text, windows and length.",
	.pitfall = "PPL depends on the text, the window length and the tokenizer: compare runs measured on the same, as "
	           "the Evaluate view marks them.",
	.paper = "Jelinek et al. 1977, Perplexity: a measure of the difficulty of speech recognition tasks.",
};

static const sl_card card_kl = {
	.title = "KL divergence from the base",
	.what = "How far the compressed model's next-token distribution is from the base model's, averaged over "
	        "positions: the most sensitive single figure of what compression changed.",
	.formula = "KL = mean_t sum_x p_base(x) log(p_base(x) / q(x)), in nats; the median, 99th percentile and maximum "
	           "show its tail.",
	.watch = "Evaluate: the KL column; Heatmap: each cell's KL on a log colour scale; the autorecipe predicts it "
	         "and measures it.",
	.pitfall = "A small mean can hide a few positions where the model changes its mind completely: look at the "
	           "maximum and p99 too.",
	.paper = "Kullback and Leibler 1951, On Information and Sufficiency.",
};

static const sl_card card_top1 = {
	.title = "Top-1 agreement",
	.what = "The share of positions where the compressed model's most likely next token is the base model's: what "
	        "a greedy user sees change. The heatmap shows 1 - top-1.",
	.formula = "top-1 = (1/N) sum_t 1[argmax q_t = argmax p_base,t].",
	.watch = "Evaluate: the top-1 column; Heatmap: metric top1 (:heatmap metric top1).",
	.pitfall = "It counts flips and ignores how confident either model was: two runs with the same top-1 can differ "
	           "a lot in KL.",
	.paper = "Dutta et al. 2024, Accuracy is Not All You Need (flips as a measure of compression).",
};

static const sl_card card_dppl = {
	.title = "Change in perplexity",
	.what = "The compressed model's perplexity minus the base's on the same windows: the figure most papers "
	        "report.",
	.formula = "dPPL = PPL(compressed) - PPL(base), same text, windows and length.",
	.watch = "Evaluate: the delta PPL column; Heatmap: metric dppl.",
	.pitfall = "It can be near zero, or negative, while the model changed a great deal: errors that help on some "
	           "tokens cancel those that hurt on others. KL does not cancel.",
	.paper = "Jelinek et al. 1977 (perplexity); Dutta et al. 2024 on why it hides changes.",
};

static const sl_card card_accept = {
	.title = "Acceptance as a draft",
	.what = "The share of tokens a speculative run would keep with this model drafting for the base, sampling at "
	        "temperature 1: how alike the two distributions are, in the terms that decide speed-up.",
	.formula = "alpha = mean_t sum_x min(p_base(x), q(x)) = 1 - total variation distance; greedy acceptance is "
	           "top-1.",
	.watch = "Heatmap: metric accept (1 - acceptance); Speculate: measured acceptance against the one predicted "
	         "from it.",
	.pitfall = "It is a mean over positions of the text measured; real prompts that differ from it accept more or "
	           "less.",
	.paper = "Leviathan, Kalman and Matias 2023, Fast Inference from Transformers via Speculative Decoding (ICML).",
};

/* The figures an evaluation gives, by the names the heatmap's metrics and
 * commands use. */
static const struct {
	const char *name;
	const sl_card *card;
} figures[] = {
	{"ppl", &card_ppl}, {"kl", &card_kl}, {"top1", &card_top1}, {"dppl", &card_dppl}, {"accept", &card_accept},
};

int sl_eval_figure_count(void)
{
	return (int)(sizeof figures / sizeof figures[0]);
}

const char *sl_eval_figure_name(int i)
{
	return i >= 0 && i < sl_eval_figure_count() ? figures[i].name : NULL;
}

const sl_card *sl_eval_figure_card(int i)
{
	return i >= 0 && i < sl_eval_figure_count() ? figures[i].card : NULL;
}

double sl_log_prob(const float *logits, int n, int target)
{
	float mx = logits[0];
	for (int i = 1; i < n; i++)
		if (logits[i] > mx)
			mx = logits[i];
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += exp((double)logits[i] - mx);
	return (double)logits[target] - mx - log(sum);
}

double sl_kl_logits(const float *p_logits, const float *q_logits, int n, bool *same_top1)
{
	return sl_compare_logits(p_logits, q_logits, n, NULL, same_top1);
}

double sl_compare_logits(const float *p_logits, const float *q_logits, int n, double *overlap, bool *same_top1)
{
	float pm = p_logits[0], qm = q_logits[0];
	int pa = 0, qa = 0;
	for (int i = 1; i < n; i++) {
		if (p_logits[i] > pm) {
			pm = p_logits[i];
			pa = i;
		}
		if (q_logits[i] > qm) {
			qm = q_logits[i];
			qa = i;
		}
	}
	double ps = 0, qs = 0;
	for (int i = 0; i < n; i++) {
		ps += exp((double)p_logits[i] - pm);
		qs += exp((double)q_logits[i] - qm);
	}
	double lps = log(ps), lqs = log(qs), kl = 0, ov = 0;
	for (int i = 0; i < n; i++) {
		double lp = (double)p_logits[i] - pm - lps;
		double lq = (double)q_logits[i] - qm - lqs;
		double p = exp(lp);
		kl += p * (lp - lq);
		if (overlap) {
			double q = exp(lq);
			ov += p < q ? p : q;
		}
	}
	if (overlap)
		*overlap = ov;
	if (same_top1)
		*same_top1 = pa == qa;
	return kl > 0 ? kl : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void sl_score_init(sl_score *sc, bool with_base)
{
	memset(sc, 0, sizeof *sc);
	sc->with_base = with_base;
}

bool sl_score_add(sl_score *sc, const float *logits, const float *base_logits, int vocab, int target)
{
	double v = -sl_log_prob(logits, vocab, target);
	sc->nll += v;
	sc->nll2 += v * v;
	if (sc->with_base) {
		if ((size_t)sc->count == sc->kls_cap) {
			size_t cap = sc->kls_cap ? 2 * sc->kls_cap : 1024;
			double *k = realloc(sc->kls, cap * sizeof *k);
			if (!k)
				return false;
			sc->kls = k;
			sc->kls_cap = cap;
		}
		sc->bnll += -sl_log_prob(base_logits, vocab, target);
		bool same;
		double ov;
		double k = sl_compare_logits(base_logits, logits, vocab, &ov, &same);
		sc->overlap += ov;
		sc->kls[sc->count] = k;
		sc->kl += k;
		sc->kl2 += k * k;
		sc->agree += same;
	}
	sc->count++;
	return true;
}

void sl_score_result(sl_score *sc, sl_eval_result *r)
{
	long long n = sc->count;
	r->n_scored = n;
	if (!n)
		return;
	r->nll = sc->nll / n;
	r->ppl = exp(r->nll);
	/* The error of the mean NLL carried through exp (as llama.cpp reports it). */
	double var = sc->nll2 / n - r->nll * r->nll;
	r->ppl_se = n > 1 && var > 0 ? r->ppl * sqrt(var / (n - 1)) : 0;
	if (!sc->with_base)
		return;
	r->has_base = true;
	r->base_ppl = exp(sc->bnll / n);
	r->delta_ppl = r->ppl - r->base_ppl;
	r->kl_mean = sc->kl / n;
	double kvar = sc->kl2 / n - r->kl_mean * r->kl_mean;
	r->kl_se = n > 1 && kvar > 0 ? sqrt(kvar / (n - 1)) : 0;
	qsort(sc->kls, (size_t)n, sizeof *sc->kls, cmp_double);
	r->kl_median = sc->kls[n / 2];
	r->kl_p99 = sc->kls[(size_t)((n - 1) * 0.99)];
	r->kl_max = sc->kls[n - 1];
	r->top1 = (double)sc->agree / n;
	r->acceptance = sc->overlap / n;
}

void sl_score_free(sl_score *sc)
{
	free(sc->kls);
	sc->kls = NULL;
	sc->kls_cap = 0;
}

void sl_eval_window(const int32_t *tokens, int n_ctx, int c, int bos, int32_t *win)
{
	memcpy(win, tokens + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *win);
	if (bos >= 0)
		win[0] = bos; /* every window starts like a fresh sequence */
}

int sl_eval_windows(size_t n, int n_ctx, int max)
{
	size_t avail = n / (size_t)n_ctx;
	if (max > 0 && (size_t)max < avail)
		return max;
	return avail > INT32_MAX ? INT32_MAX : (int)avail;
}

sl_status sl_eval_tokens(const sl_model *m, const sl_model *base, const int32_t *tokens, size_t n,
                         const sl_eval_opts *o, sl_eval_result *r, sl_error *err)
{
	memset(r, 0, sizeof *r);
	const int vocab = m->cfg.vocab_size;
	if (base && base->cfg.vocab_size != vocab)
		return sl_errorf(err, SL_ERR_ARG, "the base model's vocabulary (%d) differs from the model's (%d)",
		                 base->cfg.vocab_size, vocab);
	int n_ctx = o && o->n_ctx > 0 ? o->n_ctx : (m->cfg.max_seq_len < 512 ? m->cfg.max_seq_len : 512);
	int limit = m->cfg.max_seq_len;
	if (base && base->cfg.max_seq_len < limit)
		limit = base->cfg.max_seq_len;
	if (n_ctx > limit && (m->pos_embd || (base && base->pos_embd)))
		return sl_errorf(err, SL_ERR_ARG, "--ctx %d exceeds the model's %d learned positions", n_ctx, limit);
	if (n_ctx < 4)
		return sl_errorf(err, SL_ERR_ARG, "a window of %d tokens is too small to score", n_ctx);
	int chunks = sl_eval_windows(n, n_ctx, o ? o->n_chunks : 0);
	if (chunks == 0)
		return sl_errorf(err, SL_ERR_ARG,
		                 "the text has %zu tokens, fewer than one window of %d; use a longer text or a smaller --ctx",
		                 n, n_ctx);
	const int first = n_ctx / 2;
	const int per = n_ctx - 1 - first; /* predictions scored per window */

	sl_state *s = NULL, *bs = NULL;
	float *lg = NULL, *blg = NULL;
	sl_score sc;
	sl_score_init(&sc, base != NULL);
	int32_t *win = malloc((size_t)n_ctx * sizeof *win);
	sl_status st = sl_state_new(m, n_ctx, &s, err);
	if (!st && base)
		st = sl_state_new(base, n_ctx, &bs, err);
	if (st)
		goto done;
	lg = sl_malloc_array((size_t)(n_ctx - first), (size_t)vocab * sizeof(float));
	if (base)
		blg = sl_malloc_array((size_t)(n_ctx - first), (size_t)vocab * sizeof(float));
	if (!win || !lg || (base && !blg)) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for %d x %d logits", n_ctx - first, vocab);
		goto done;
	}
	double t0 = sl_now();
	int bos = m->tok && sl_tok_add_bos(m->tok) ? sl_tok_bos(m->tok) : -1;
	for (int c = 0; c < chunks; c++) {
		if (o && sl_cancelled(o->progress)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "evaluation cancelled after %d of %d windows", c, chunks);
			goto done;
		}
		sl_eval_window(tokens, n_ctx, c, bos, win);
		sl_state_reset(s);
		if ((st = sl_forward(s, win, n_ctx, lg, first, err)))
			goto done;
		if (bs) {
			sl_state_reset(bs);
			if ((st = sl_forward(bs, win, n_ctx, blg, first, err)))
				goto done;
		}
		for (int i = 0; i < per; i++)
			if (!sl_score_add(&sc, lg + (size_t)i * vocab, bs ? blg + (size_t)i * vocab : NULL, vocab,
			                  win[first + i + 1])) {
				st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
				goto done;
			}
		if (o && o->progress) {
			char stage[64];
			snprintf(stage, sizeof stage, "window %d/%d", c + 1, chunks);
			sl_report(o->progress, (double)(c + 1) / chunks, stage);
		}
	}
	r->n_ctx = n_ctx;
	r->n_chunks = chunks;
	sl_score_result(&sc, r);
	r->seconds = sl_now() - t0;
done:
	free(win);
	free(lg);
	free(blg);
	sl_score_free(&sc);
	sl_state_free(s);
	sl_state_free(bs);
	return st;
}

sl_status sl_eval_text(const sl_model *m, const sl_model *base, const char *text, size_t len,
                       const sl_eval_opts *o, sl_eval_result *r, sl_error *err)
{
	int32_t *ids;
	size_t n;
	sl_status st = sl_tok_encode(m->tok, text, len, sl_tok_add_bos(m->tok), &ids, &n, err);
	if (st)
		return st;
	st = sl_eval_tokens(m, base, ids, n, o, r, err);
	free(ids);
	return st;
}

sl_status sl_generate(const sl_model *m, const char *prompt, int n_gen, sl_sampler *smp,
                      sl_token_fn on_token, void *ctx, const sl_progress *p, sl_error *err)
{
	int32_t *ids;
	size_t n;
	/* Generation needs a first token even where sequences carry no BOS. */
	bool bos_first = sl_tok_add_bos(m->tok) || !*prompt;
	sl_status st = sl_tok_encode(m->tok, prompt, strlen(prompt), bos_first, &ids, &n, err);
	if (st)
		return st;
	if (n == 0) {
		free(ids);
		return sl_errorf(err, SL_ERR_ARG, "the prompt is empty and the vocabulary has no BOS token");
	}
	int n_ctx = (int)n + (n_gen > 0 ? n_gen : 0);
	if (n_ctx > m->cfg.max_seq_len)
		n_ctx = m->cfg.max_seq_len;
	if ((int)n >= n_ctx) {
		free(ids);
		return sl_errorf(err, SL_ERR_ARG, "the prompt (%zu tokens) fills the model's %d-token context",
		                 n, m->cfg.max_seq_len);
	}
	sl_state *s;
	float *logits = malloc((size_t)m->cfg.vocab_size * sizeof(float));
	if ((st = sl_state_new(m, n_ctx, &s, err)) || !logits) {
		free(ids);
		free(logits);
		return st ? st : sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	int eos = sl_tok_eos(m->tok), bos = sl_tok_bos(m->tok);
	int32_t prev = ids[n - 1];
	st = sl_forward(s, ids, (int)n, logits, (int)n - 1, err);
	for (int i = 0; st == SL_OK && i < n_gen; i++) {
		if (sl_cancelled(p)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "generation cancelled after %d tokens", i);
			break;
		}
		int32_t next = sl_sample(smp, logits, m->cfg.vocab_size);
		if (next == eos || next == bos)
			break;
		size_t len = 0;
		const char *text = sl_tok_decode(m->tok, prev, next, &len);
		if (on_token && !on_token(ctx, next, text ? text : "", text ? len : 0))
			break;
		prev = next;
		sl_report(p, (double)(i + 1) / n_gen, "generating");
		if (i + 1 == n_gen || s->n_past >= s->n_ctx)
			break;
		st = sl_forward(s, &next, 1, logits, 0, err);
	}
	sl_state_free(s);
	free(logits);
	free(ids);
	return st;
}
