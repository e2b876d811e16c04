/* Speculative decoding: draft, verify in one batched target pass, keep
 * what the target agrees with, rewind both caches to it. The kernels give
 * every token the same logits whatever batch it shares, so verifying k
 * drafted tokens at once computes exactly what decoding them one by one
 * would: greedy speculative output is the target's own greedy output,
 * token for token. */
#include "speculate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward.h"
#include "tokenizer.h"

/* --- cards: speculative decoding and its drafts ----------------------------- */

static const sl_card card_speculative = {
	.title = "Speculative decoding",
	.what = "A cheap draft proposes k tokens; the model checks them all in one batched pass and keeps those it "
	        "agrees with, plus one of its own: several tokens per pass of the big model, with exactly its output.",
	.formula = "keep x with probability min(1, p(x) / q(x)), on rejection draw from norm(max(0, p - q)); expected "
	           "tokens per pass (1 - alpha^(k+1)) / (1 - alpha).",
	.watch = "Speculate: kept draft tokens, the model's own and the rejected ones in their colours, acceptance "
	         "measured and predicted, per-position acceptance, the speed-up measured and predicted.",
	.pitfall = "Acceptance alone does not make speed: a draft that costs a large share of the model's time per token "
	           "gains little even when it is almost always right; k too large wastes drafting.",
	.paper = "Leviathan, Kalman and Matias 2023 (ICML); Chen et al. 2023, Accelerating Large Language Model "
	         "Decoding with Speculative Sampling.",
};

static const sl_card card_lookup = {
	.title = "Prompt lookup drafts",
	.what = "No draft model: the tokens that followed the last n tokens where they appeared earlier in the "
	        "context are proposed as the draft; where the last n never appeared, the longest shorter tail that "
	        "did proposes one token. Free to compute.",
	.formula = "find the latest earlier occurrence of x_{t-n+1..t}; draft the k tokens that followed it (else "
	           "of x_{t-m+1..t}, m < n as large as found: one token).",
	.watch = "Speculate (d cycles drafts): acceptance high on text that repeats its prompt, near zero on free "
	         "writing.",
	.pitfall = "It only helps where the output repeats its context (summaries, code edits, a small model's "
	           "greedy loops); on varied free writing little of what it proposes is kept.",
	.paper = "Saxena 2023, Prompt Lookup Decoding (a method published as code); Yang et al. 2023, Inference with "
	         "Reference.",
};

static const sl_card card_early = {
	.title = "Early-exit drafts",
	.what = "The model's own first blocks, with its final norm and output head, draft for the whole model: no "
	        "second model to load.",
	.formula = "q = softmax(head(norm(h_L'))), h_L' the hidden state after the first L' blocks.",
	.watch = "Speculate: half the blocks as a draft, its acceptance against a compressed draft of similar cost.",
	.pitfall = "Models not trained to exit early give poor drafts from their middle layers; the acceptance shows it.",
	.paper = "Elhoushi et al. 2024, LayerSkip: Enabling Early Exit Inference and Self-Speculative Decoding (ACL).",
};

static const sl_card card_speedup = {
	.title = "Speed-up of speculative decoding",
	.what = "Tokens per second of the speculative run over those of the model decoding alone, both timed in the "
	        "same run: after every speculative pass the model alone (its own cache, one forward pass per token) "
	        "decodes until it has as many tokens, so both meet the same load on the machine. The Speculate view, "
	        "slimlab speculate and bench/speculate time it this one way.",
	.formula = "speed-up = (tokens / pass seconds) / (tokens / seconds alone); pass seconds are drafting, the "
	           "batched verification, acceptance and the caches' rewind, without drawing or printing. Predicted: "
	           "(1 - a^(k+1)) / ((1 - a)(k c + v)), a = the share of the draft tokens the model checked that it "
	           "kept, c = one draft step and v = one check of up to k + 1 tokens, both over one step alone; the "
	           "textbook formula takes v = 1.",
	.watch = "Speculate: tokens/s speculative and alone, the speed-up measured beside the predicted one, c and v; "
	         "bench/speculate also gives it in CPU seconds, steadier on a busy machine.",
	.pitfall = "Checking k + 1 tokens costs one step only where the model waits for memory; on a small model the "
	           "processor computes, v grows with k and the speed-up falls short of the textbook formula's. And "
	           "the acceptance of all drafted tokens (accepted / drafted) is not the formula's a: the tokens after "
	           "a rejection were never checked.",
	.paper = "Leviathan, Kalman and Matias 2023 (ICML): the expected improvement factor in walltime.",
};

static const struct {
	const char *name;
	const sl_card *card;
} spec_cards[] = {
	{"speculative", &card_speculative}, {"lookup", &card_lookup}, {"early-exit", &card_early},
	{"speedup", &card_speedup},
};

int sl_spec_card_count(void)
{
	return (int)(sizeof spec_cards / sizeof spec_cards[0]);
}

const char *sl_spec_card_name(int i)
{
	return i >= 0 && i < sl_spec_card_count() ? spec_cards[i].name : NULL;
}

const sl_card *sl_spec_card_at(int i)
{
	return i >= 0 && i < sl_spec_card_count() ? spec_cards[i].card : NULL;
}

sl_status sl_spec_same_vocab(const sl_model *target, const sl_model *draft, sl_error *err)
{
	if (target->cfg.vocab_size != draft->cfg.vocab_size)
		return sl_errorf(err, SL_ERR_ARG, "the draft's vocabulary has %d tokens, the target's %d: a draft must share it",
		                 draft->cfg.vocab_size, target->cfg.vocab_size);
	if (!target->tok || !draft->tok)
		return SL_OK;
	int n = sl_tok_n_vocab(target->tok);
	if (sl_tok_n_vocab(draft->tok) != n)
		return sl_errorf(err, SL_ERR_ARG, "the draft's tokenizer has %d entries, the target's %d",
		                 sl_tok_n_vocab(draft->tok), n);
	for (int i = 0; i < n; i++) {
		const char *a = sl_tok_piece(target->tok, i), *b = sl_tok_piece(draft->tok, i);
		if (strcmp(a ? a : "", b ? b : ""))
			return sl_errorf(err, SL_ERR_ARG,
			                 "the vocabularies differ at token %d ('%.40s' in the target, '%.40s' in the draft): a "
			                 "draft must share the target's vocabulary",
			                 i, a ? a : "", b ? b : "");
	}
	return SL_OK;
}

/* Draws from normalize(max(0, p - q)) without a buffer: the same draw as
 * sl_sample_from over those values, computed twice on the fly; from p when
 * q covers all of p's mass. */
static int32_t sample_residual(const float *p, const float *q, int n, uint64_t *rng)
{
	double total = 0;
	for (int v = 0; v < n; v++)
		total += p[v] > q[v] ? p[v] - q[v] : 0.0f;
	if (!(total > 0))
		return sl_sample_from(rng, p, n, 1.0);
	double r = (double)sl_rand01(rng) * total, acc = 0;
	int last = 0;
	for (int v = 0; v < n; v++) {
		float d = p[v] > q[v] ? p[v] - q[v] : 0.0f;
		if (d <= 0)
			continue;
		acc += d;
		last = v;
		if (r < acc)
			return v;
	}
	return last;
}

int sl_spec_verify(const float *p, const float *q, const int32_t *x, int j, int n, bool greedy, uint64_t *rng,
                   int32_t *emit)
{
	for (int i = 0; i < j; i++) {
		const float *pi = p + (size_t)i * n;
		if (greedy) {
			int best = sl_argmax(pi, n);
			emit[i] = best;
			if (best != x[i])
				return i;
			continue;
		}
		const float *qi = q + (size_t)i * n;
		float px = pi[x[i]], qx = qi[x[i]];
		if (qx > 0 && (px >= qx || sl_rand01(rng) < px / qx)) {
			emit[i] = x[i];
			continue;
		}
		/* Rejected: the rest of the target's mass, where it exceeds the draft's. */
		emit[i] = sample_residual(pi, qi, n, rng);
		return i;
	}
	const float *pj = p + (size_t)j * n;
	emit[j] = greedy ? sl_argmax(pj, n) : sl_sample_from(rng, pj, n, 1.0);
	return j;
}

/* Tokens a pass yields on average when j are drafted, each kept with
 * probability a while the ones before it were: (1 - a^(j+1)) / (1 - a). */
static double tokens_per_pass(double a, double j)
{
	return a < 1 ? (1 - pow(a, j + 1)) / (1 - a) : j + 1;
}

void sl_spec_finish(sl_spec_stats *st)
{
	st->acceptance = st->drafted ? (double)st->accepted / (double)st->drafted : 0;
	st->mean_len = st->passes ? (double)(st->accepted + st->passes) / (double)st->passes : 0;
	st->tps = st->total_s > 0 ? (double)st->generated / st->total_s : 0;
	st->target_tps = st->baseline_s > 0 ? (double)st->baseline_tokens / st->baseline_s : 0;
	st->speedup = st->target_tps > 0 ? st->tps / st->target_tps : 0;
	st->speedup_cpu = st->cpu_s > 0 && st->generated && st->baseline_tokens
	                          ? (st->baseline_cpu_s / (double)st->baseline_tokens) / (st->cpu_s / (double)st->generated)
	                          : 0;
	st->cost_ratio = st->target_token_s > 0 ? st->draft_token_s / st->target_token_s : 0;
	st->token_acceptance =
	        st->accepted + st->rejections ? (double)st->accepted / (double)(st->accepted + st->rejections) : 0;
	double a = st->token_acceptance, c = st->cost_ratio, k = st->k, gain = 0;
	if (st->passes > 0) {
		for (int j = 0; j <= SL_SPEC_MAX_K; j++)
			gain += (double)st->proposed[j] * tokens_per_pass(a, j);
		gain /= (double)st->passes;
		k = (double)st->drafted / (double)st->passes;
	} else {
		gain = tokens_per_pass(a, k);
	}
	st->predicted_speedup = gain / (k * c + 1);
	st->verify_steps = st->passes && st->target_token_s > 0 ? st->target_s / (double)st->passes / st->target_token_s : 0;
	st->predicted_costed = st->verify_steps > 0 ? gain / (k * c + st->verify_steps) : 0;
}

void sl_spec_stats_add(sl_spec_stats *into, const sl_spec_stats *s)
{
	into->k = s->k;
	into->drafted += s->drafted;
	into->accepted += s->accepted;
	into->passes += s->passes;
	into->generated += s->generated;
	into->rejections += s->rejections;
	for (int i = 0; i <= SL_SPEC_MAX_K; i++) {
		into->at_least[i] += s->at_least[i];
		into->kept[i] += s->kept[i];
		into->proposed[i] += s->proposed[i];
	}
	/* One draft step's time over all the steps of both runs. */
	double steps_d = into->draft_token_s > 0 ? into->draft_s / into->draft_token_s : 0;
	double steps_s = s->draft_token_s > 0 ? s->draft_s / s->draft_token_s : 0;
	into->draft_s += s->draft_s;
	into->target_s += s->target_s;
	into->total_s += s->total_s;
	into->cpu_s += s->cpu_s;
	into->baseline_cpu_s += s->baseline_cpu_s;
	into->draft_token_s = steps_d + steps_s > 0 ? into->draft_s / (steps_d + steps_s) : 0;
	into->baseline_s += s->baseline_s;
	into->baseline_tokens += s->baseline_tokens;
	into->target_token_s = into->baseline_tokens ? into->baseline_s / (double)into->baseline_tokens : 0;
	sl_spec_finish(into);
}

/* --- the run ---------------------------------------------------------------- */

/* CPU seconds of the whole process: every kernel thread's included. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
	const sl_model *target;
	const sl_draft *draft;
	const sl_spec_opts *o;
	bool greedy;
	sl_state *ts, *ds;        /* target and draft states (no draft state for lookup) */
	int V;
	int32_t *seq;             /* prompt and generated tokens */
	int L;                    /* tokens in seq; the caches hold all but the last */
	float *plog, *p, *q, *qlog;
	sl_sampler ps, qs;        /* the distributions target and draft sample from */
	uint64_t rng;
	int64_t draft_steps;
	/* The target alone, decoding beside the run for the speed-up. */
	sl_state *bs;
	float *blog;              /* its next token's logits */
	sl_sampler bsmp;
	int b_done;               /* tokens it has decoded */
} run;

/* The probability of the most likely token under softmax(logits). */
static float top_prob(const float *logits, int n)
{
	float mx = logits[sl_argmax(logits, n)];
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += expf(logits[i] - mx);
	return (float)(1.0 / sum);
}

/* Tokens the draft proposes after seq[0..L): up to kmax into x, and (when
 * sampling) their distributions into q; returns how many. Greedy drafts
 * need only the argmax of their logits. */
static int propose(run *r, int kmax, int32_t *x, sl_error *err)
{
	const sl_spec_opts *o = r->o;
	bool greedy = r->greedy;
	if (r->draft->kind == SL_DRAFT_LOOKUP) {
		/* The longest of the last ngram .. 1 tokens that occurred before:
		 * what followed its latest occurrence is proposed, up to kmax
		 * tokens where all ngram matched, one token where fewer did
		 * (a short match is a weaker guess, and every token proposed
		 * costs the verification). */
		if (kmax <= 0)
			return 0;
		for (int n = r->draft->ngram < r->L ? r->draft->ngram : r->L - 1; n >= 1; n--) {
			const int32_t *tail = r->seq + r->L - n;
			const int most = n == r->draft->ngram ? kmax : 1;
			for (int i = r->L - n - 1; i >= 0; i--) {
				if (memcmp(r->seq + i, tail, (size_t)n * sizeof *tail))
					continue;
				int j = 0;
				while (j < most && i + n + j < r->L) {
					x[j] = r->seq[i + n + j];
					if (!greedy) {
						float *qj = r->q + (size_t)j * r->V;
						memset(qj, 0, (size_t)r->V * sizeof *qj);
						qj[x[j]] = 1.0f;
					}
					j++;
				}
				return j;
			}
		}
		return 0;
	}
	int j = 0;
	sl_state *d = r->ds;
	int from = d->n_past;
	if (kmax <= 0)
		return 0;
	if (sl_forward(d, r->seq + from, r->L - from, r->qlog, r->L - from - 1, err))
		return -1;
	r->draft_steps++;
	for (; j < kmax; j++) {
		if (greedy) {
			if (o->p_min > 0 && top_prob(r->qlog, r->V) < o->p_min)
				break;
			x[j] = sl_argmax(r->qlog, r->V);
		} else {
			float *qj = r->q + (size_t)j * r->V;
			sl_sampler_probs(&r->qs, r->qlog, qj, r->V);
			if (o->p_min > 0 && qj[sl_argmax(qj, r->V)] < o->p_min)
				break;
			x[j] = sl_sample_from(&r->rng, qj, r->V, 1.0);
		}
		if (j + 1 < kmax) {
			if (sl_forward(d, &x[j], 1, r->qlog, 0, err))
				return -1;
			r->draft_steps++;
		}
	}
	return j;
}

static void run_free(run *r)
{
	sl_state_free(r->ts);
	sl_state_free(r->ds);
	sl_state_free(r->bs);
	free(r->seq);
	free(r->plog);
	free(r->p);
	free(r->q);
	free(r->qlog);
	free(r->blog);
}

/* The target alone decodes until it has as many tokens as the run, one
 * forward pass per token as plain decoding does, timed. */
static sl_status catch_up(run *r, int generated, sl_spec_stats *st, sl_error *err)
{
	if (!r->bs || r->b_done >= generated)
		return SL_OK;
	double t0 = sl_now(), c0 = cpu_now();
	sl_status status = SL_OK;
	for (; !status && r->b_done < generated; r->b_done++) {
		int32_t t = sl_sample(&r->bsmp, r->blog, r->V);
		status = sl_forward(r->bs, &t, 1, r->blog, 0, err);
	}
	st->baseline_s += sl_now() - t0;
	st->baseline_cpu_s += cpu_now() - c0;
	st->baseline_tokens = r->b_done;
	st->target_token_s = st->baseline_s / (double)r->b_done;
	return status;
}

sl_status sl_speculate(const sl_model *target, const sl_draft *draft, const int32_t *prompt, int n_prompt,
                       const sl_spec_opts *o, sl_spec_fn on_pass, void *ctx, const sl_progress *prog, int32_t **out,
                       int *n_out, sl_spec_stats *st, sl_error *err)
{
	*out = NULL;
	*n_out = 0;
	memset(st, 0, sizeof *st);
	if (o->k < 1 || o->k > SL_SPEC_MAX_K)
		return sl_errorf(err, SL_ERR_ARG, "k = %d: a draft proposes 1 to %d tokens per pass", o->k, SL_SPEC_MAX_K);
	if (n_prompt < 1)
		return sl_errorf(err, SL_ERR_ARG, "speculative decoding needs a prompt of at least one token");
	if (o->n_predict < 1)
		return sl_errorf(err, SL_ERR_ARG, "nothing to generate (%d tokens asked for)", o->n_predict);
	int ctx_max = target->cfg.max_seq_len;
	if (n_prompt + o->n_predict + o->k + 1 > ctx_max)
		return sl_errorf(err, SL_ERR_ARG,
		                 "the prompt (%d tokens), %d tokens to generate and %d drafted need %d positions; the model "
		                 "has %d",
		                 n_prompt, o->n_predict, o->k, n_prompt + o->n_predict + o->k + 1, ctx_max);
	if (draft->kind == SL_DRAFT_MODEL) {
		sl_status s = sl_spec_same_vocab(target, draft->model, err);
		if (s)
			return s;
	} else if (draft->kind == SL_DRAFT_EARLY_EXIT) {
		if (draft->layers < 1 || draft->layers >= target->cfg.n_layers)
			return sl_errorf(err, SL_ERR_ARG, "an early-exit draft runs 1 to %d of the target's %d blocks, not %d",
			                 target->cfg.n_layers - 1, target->cfg.n_layers, draft->layers);
	} else if (draft->ngram < 1 || draft->ngram > 64) {
		return sl_errorf(err, SL_ERR_ARG, "prompt lookup matches 1 to 64 last tokens, not %d", draft->ngram);
	}
	run r = {.target = target, .draft = draft, .o = o, .greedy = o->temp <= 0, .V = target->cfg.vocab_size,
	         .rng = o->seed ? o->seed : 1};
	int n_ctx = n_prompt + o->n_predict + o->k + 1;
	int cap = n_ctx + 1;
	sl_status status = SL_OK;
	/* Every buffer a pass needs is here: the passes allocate nothing. A
	 * greedy run compares argmaxes of logits and needs no distributions. */
	r.seq = malloc((size_t)cap * sizeof *r.seq);
	r.plog = malloc((size_t)(o->k + 1) * r.V * sizeof *r.plog);
	r.p = r.greedy ? NULL : malloc((size_t)(o->k + 1) * r.V * sizeof *r.p);
	r.q = r.greedy ? NULL : malloc((size_t)o->k * r.V * sizeof *r.q);
	r.qlog = malloc((size_t)r.V * sizeof *r.qlog);
	r.blog = o->baseline ? malloc((size_t)r.V * sizeof *r.blog) : NULL;
	if (!r.seq || !r.plog || (!r.greedy && (!r.p || !r.q)) || !r.qlog || (o->baseline && !r.blog)) {
		status = sl_errorf(err, SL_ERR_NOMEM, "out of memory for a vocabulary of %d and k = %d", r.V, o->k);
		goto done;
	}
	sl_sampler_init(&r.ps, o->temp, o->top_p, o->top_k, o->seed);
	sl_sampler_init(&r.qs, o->temp, o->top_p, o->top_k, o->seed);
	sl_sampler_init(&r.bsmp, o->temp, o->top_p, o->top_k, o->seed);
	if ((status = sl_state_new(target, n_ctx, &r.ts, err)))
		goto done;
	if (draft->kind != SL_DRAFT_LOOKUP) {
		const sl_model *dm = draft->kind == SL_DRAFT_MODEL ? draft->model : target;
		if ((status = sl_state_new(dm, n_ctx, &r.ds, err)) ||
		    (draft->kind == SL_DRAFT_EARLY_EXIT && (status = sl_state_set_exit(r.ds, draft->layers, err))))
			goto done;
	}
	memcpy(r.seq, prompt, (size_t)n_prompt * sizeof *prompt);
	r.L = n_prompt;
	/* Both caches take the prompt but its last token, which the first pass
	 * feeds with the drafted ones; the target alone takes all of it, for
	 * the logits of its first token. None of this is timed. */
	if (n_prompt > 1 && ((status = sl_forward(r.ts, r.seq, n_prompt - 1, NULL, 0, err)) ||
	                     (r.ds && (status = sl_forward(r.ds, r.seq, n_prompt - 1, NULL, 0, err)))))
		goto done;
	if (o->baseline && ((status = sl_state_new(target, n_ctx, &r.bs, err)) ||
	                    (status = sl_forward(r.bs, r.seq, n_prompt, r.blog, n_prompt - 1, err))))
		goto done;
	st->k = o->k;
	int32_t x[SL_SPEC_MAX_K], emit[SL_SPEC_MAX_K + 1];
	int generated = 0;
	while (generated < o->n_predict) {
		if (sl_cancelled(prog)) {
			status = sl_errorf(err, SL_ERR_CANCELLED, "speculative decoding cancelled after %d tokens", generated);
			break;
		}
		int left = o->n_predict - generated;
		int kmax = left - 1 < o->k ? left - 1 : o->k;
		double t0 = sl_now(), c0 = cpu_now();
		int j = propose(&r, kmax, x, err);
		if (j < 0) {
			status = SL_ERR_ARG;
			break;
		}
		double t1 = sl_now();
		st->draft_s += t1 - t0;
		/* The target scores the pending token and every drafted one at once. */
		int32_t batch[SL_SPEC_MAX_K + 1];
		batch[0] = r.seq[r.L - 1];
		memcpy(batch + 1, x, (size_t)j * sizeof *x);
		if ((status = sl_forward(r.ts, batch, j + 1, r.plog, 0, err)))
			break;
		if (!r.greedy)
			for (int i = 0; i <= j; i++)
				sl_sampler_probs(&r.ps, r.plog + (size_t)i * r.V, r.p + (size_t)i * r.V, r.V);
		int a = sl_spec_verify(r.greedy ? r.plog : r.p, r.q, x, j, r.V, r.greedy, &r.rng, emit);
		st->target_s += sl_now() - t1;
		/* What this pass adds: up to the end of the run or an end of text. */
		int n_emit = a + 1 < left ? a + 1 : left;
		bool end = false;
		for (int i = 0; i < n_emit && !end; i++)
			if (emit[i] == o->eos) {
				n_emit = i + 1;
				end = true;
			}
		/* Keep what was accepted: the caches end before the target's own token. */
		sl_state_rewind(r.ts, r.L + a);
		if (r.ds)
			sl_state_rewind(r.ds, r.L + a);
		memcpy(r.seq + r.L, emit, (size_t)n_emit * sizeof *emit);
		r.L += n_emit;
		generated += n_emit;
		st->total_s += sl_now() - t0;
		st->cpu_s += cpu_now() - c0;
		st->passes++;
		st->drafted += j;
		st->accepted += a;
		st->kept[a]++;
		st->proposed[j]++;
		st->rejections += a < j;
		for (int i = 1; i <= a; i++)
			st->at_least[i]++;
		st->generated = generated;
		st->draft_token_s = r.draft_steps ? st->draft_s / (double)r.draft_steps : 0;
		if ((status = catch_up(&r, generated, st, err)))
			break;
		if (on_pass) {
			sl_spec_finish(st);
			sl_spec_pass ps = {emit, a < n_emit ? a : n_emit, x + a, j > a ? j - a : 0, emit[a], st};
			on_pass(ctx, &ps);
		}
		sl_report(prog, (double)generated / o->n_predict, "speculating");
		if (end)
			break;
	}
	sl_spec_finish(st);
	*n_out = generated;
	*out = malloc((size_t)(generated ? generated : 1) * sizeof **out);
	if (*out)
		memcpy(*out, r.seq + n_prompt, (size_t)generated * sizeof **out);
done:
	run_free(&r);
	return status;
}
