/* Perplexity, KL divergence and top-1 agreement, computed while the logits
 * are in memory; and generation. */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"

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
	double lps = log(ps), lqs = log(qs), kl = 0;
	for (int i = 0; i < n; i++) {
		double lp = (double)p_logits[i] - pm - lps;
		double lq = (double)q_logits[i] - qm - lqs;
		kl += exp(lp) * (lp - lq);
	}
	if (same_top1)
		*same_top1 = pa == qa;
	return kl > 0 ? kl : 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
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
	size_t avail = n / (size_t)n_ctx;
	if (avail == 0)
		return sl_errorf(err, SL_ERR_ARG,
		                 "the text has %zu tokens, fewer than one window of %d; use a longer text or a smaller --ctx",
		                 n, n_ctx);
	int chunks = o && o->n_chunks > 0 && (size_t)o->n_chunks < avail ? o->n_chunks : (int)avail;
	const int first = n_ctx / 2;
	const int per = n_ctx - 1 - first; /* predictions scored per window */

	sl_state *s = NULL, *bs = NULL;
	float *lg = NULL, *blg = NULL;
	double *kls = NULL;
	int32_t *win = malloc((size_t)n_ctx * sizeof *win);
	sl_status st = sl_state_new(m, n_ctx, &s, err);
	if (!st && base)
		st = sl_state_new(base, n_ctx, &bs, err);
	if (st)
		goto done;
	lg = sl_malloc_array((size_t)(n_ctx - first), (size_t)vocab * sizeof(float));
	if (base) {
		blg = sl_malloc_array((size_t)(n_ctx - first), (size_t)vocab * sizeof(float));
		kls = sl_malloc_array((size_t)chunks * per, sizeof(double));
	}
	if (!win || !lg || (base && (!blg || !kls))) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for %d x %d logits", n_ctx - first, vocab);
		goto done;
	}
	double t0 = now_s();
	double nll = 0, nll2 = 0, bnll = 0, kl = 0, kl2 = 0;
	long long agree = 0, count = 0;
	int bos = m->tok && sl_tok_add_bos(m->tok) ? sl_tok_bos(m->tok) : -1;
	for (int c = 0; c < chunks; c++) {
		if (o && sl_cancelled(o->progress)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "evaluation cancelled after %d of %d windows", c, chunks);
			goto done;
		}
		memcpy(win, tokens + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *win);
		if (bos >= 0)
			win[0] = bos; /* every window starts like a fresh sequence */
		sl_state_reset(s);
		if ((st = sl_forward(s, win, n_ctx, lg, first, err)))
			goto done;
		if (bs) {
			sl_state_reset(bs);
			if ((st = sl_forward(bs, win, n_ctx, blg, first, err)))
				goto done;
		}
		for (int i = 0; i < per; i++) {
			const float *row = lg + (size_t)i * vocab;
			int target = win[first + i + 1];
			double v = -sl_log_prob(row, vocab, target);
			nll += v;
			nll2 += v * v;
			if (bs) {
				const float *brow = blg + (size_t)i * vocab;
				bnll += -sl_log_prob(brow, vocab, target);
				bool same;
				double k = sl_kl_logits(brow, row, vocab, &same);
				kls[count] = k;
				kl += k;
				kl2 += k * k;
				agree += same;
			}
			count++;
		}
		if (o && o->progress) {
			char stage[64];
			snprintf(stage, sizeof stage, "window %d/%d", c + 1, chunks);
			sl_report(o->progress, (double)(c + 1) / chunks, stage);
		}
	}
	r->n_ctx = n_ctx;
	r->n_chunks = chunks;
	r->n_scored = count;
	r->nll = nll / count;
	r->ppl = exp(r->nll);
	/* The error of the mean NLL carried through exp (as llama.cpp reports it). */
	double var = nll2 / count - r->nll * r->nll;
	r->ppl_se = count > 1 && var > 0 ? r->ppl * sqrt(var / (count - 1)) : 0;
	if (bs) {
		r->has_base = true;
		r->base_ppl = exp(bnll / count);
		r->delta_ppl = r->ppl - r->base_ppl;
		r->kl_mean = kl / count;
		double kvar = kl2 / count - r->kl_mean * r->kl_mean;
		r->kl_se = count > 1 && kvar > 0 ? sqrt(kvar / (count - 1)) : 0;
		qsort(kls, (size_t)count, sizeof *kls, cmp_double);
		r->kl_median = kls[count / 2];
		r->kl_p99 = kls[(size_t)((count - 1) * 0.99)];
		r->kl_max = kls[count - 1];
		r->top1 = (double)agree / count;
	}
	r->seconds = now_s() - t0;
done:
	free(win);
	free(lg);
	free(blg);
	free(kls);
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
