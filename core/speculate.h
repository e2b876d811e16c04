/* Speculative decoding: a draft proposes up to k tokens, the target scores
 * them all in one batched forward pass and keeps what it agrees with, then
 * both KV caches rewind to what was kept (Leviathan et al. 2023; Chen et
 * al. 2023). Greedy runs keep a draft token while it is the target's
 * argmax; sampled runs keep token x with probability min(1, p(x)/q(x)) and,
 * on a rejection, draw from normalize(max(0, p - q)), so the output is
 * distributed exactly as the target's own sampling. Drafts: another model
 * with the target's vocabulary, the target compressed by a recipe, the
 * target's first blocks (early exit), or prompt lookup (the tokens that
 * followed the last n tokens earlier in the context, or one token after
 * the longest shorter tail found; no model). */
#ifndef SL_SPECULATE_H
#define SL_SPECULATE_H

#include <stdbool.h>
#include <stdint.h>

#include "card.h"
#include "error.h"
#include "model.h"
#include "progress.h"
#include "sample.h"

#define SL_SPEC_MAX_K 64

typedef enum { SL_DRAFT_MODEL = 0, SL_DRAFT_EARLY_EXIT, SL_DRAFT_LOOKUP } sl_draft_kind;

typedef struct {
	sl_draft_kind kind;
	const sl_model *model; /* MODEL: the draft model (another one, or the target compressed) */
	int layers;            /* EARLY_EXIT: blocks of the target the draft runs */
	int ngram;             /* LOOKUP: how many last tokens are looked up (fewer: one token) */
	char label[64];        /* how reports name it (a format, "first 4 blocks", "prompt lookup") */
} sl_draft;

/* Whether two vocabularies are one: SL_ERR_ARG naming the first token that
 * differs (or the sizes) when they are not. */
sl_status sl_spec_same_vocab(const sl_model *target, const sl_model *draft, sl_error *err);

typedef struct {
	int k;              /* draft tokens per pass at most, 1..64 */
	float p_min;        /* the draft stops early when its top probability falls below (0: never) */
	float temp, top_p;  /* sampling, as sl_sampler: temp 0 is greedy */
	int top_k;
	uint64_t seed;
	int n_predict;      /* tokens to generate */
	int eos;            /* stop at this token (-1: never) */
	bool baseline;      /* also decode with the target alone, timed, for the speed-up */
} sl_spec_opts;

/* How both speeds are timed, one definition for every caller (CLI, bench,
 * workbench): the speculative time is the sum of the passes' own time
 * (drafting, the target's verification, acceptance, the caches' rewind),
 * without the callers' per-pass callback or progress report; the target
 * alone runs beside it in the same process, on its own cache and sampler,
 * decoding one token per forward pass, and after every speculative pass it
 * catches up to as many tokens as the speculative run has produced, so
 * both meet the same load on the machine as the run goes. Both are timed
 * on the monotonic clock and in the process's CPU seconds (the CPU figures
 * are steadier where other work shares the machine; in the workbench they
 * include its drawing thread). */

/* What a run measured; the derived figures are filled by sl_spec_finish. */
typedef struct {
	int k;
	int64_t drafted, accepted, passes, generated;
	int64_t at_least[SL_SPEC_MAX_K + 1]; /* [i]: passes that kept at least i draft tokens */
	int64_t kept[SL_SPEC_MAX_K + 1];     /* [i]: passes that kept exactly i */
	int64_t proposed[SL_SPEC_MAX_K + 1]; /* [j]: passes whose draft proposed exactly j */
	int64_t rejections;                  /* passes where the target rejected a draft token */
	double draft_s, target_s, total_s;
	double draft_token_s, target_token_s; /* one draft step; one target step alone (the baseline's) */
	double baseline_s;                    /* the target alone, same number of tokens */
	int64_t baseline_tokens;
	double cpu_s, baseline_cpu_s;         /* process CPU seconds of the passes, of the target alone */
	/* Derived. */
	double acceptance;       /* accepted / drafted */
	double token_acceptance; /* accepted / (accepted + rejections): the share of the draft tokens the
	                          * target tested that it kept (the a of the prediction) */
	double mean_len;         /* tokens per target pass, its own included */
	double tps, target_tps;  /* speculative, and the target alone */
	double speedup, cost_ratio, predicted_speedup;
	double verify_steps;     /* one verification (up to k + 1 tokens) in steps of the target alone */
	double predicted_costed; /* the prediction with verify_steps in place of the formula's one step */
	double speedup_cpu;      /* the speed-up in CPU seconds: baseline_cpu_s per token over cpu_s per token */
} sl_spec_stats;

/* One target pass, as it happened: the draft tokens kept, those rejected,
 * and the target's own token (the correction, or the bonus after all k). */
typedef struct {
	const int32_t *kept;
	int n_kept;
	const int32_t *rejected;
	int n_rejected;
	int32_t own;
	const sl_spec_stats *stats;
} sl_spec_pass;

typedef void (*sl_spec_fn)(void *ctx, const sl_spec_pass *pass);

/* Continues prompt[0..n_prompt) by speculative decoding. *out (malloc'ed)
 * receives the generated tokens. on_pass, if given, is called after every
 * target pass. Cancelling keeps what was generated (SL_ERR_CANCELLED). */
sl_status sl_speculate(const sl_model *target, const sl_draft *draft, const int32_t *prompt, int n_prompt,
                       const sl_spec_opts *o, sl_spec_fn on_pass, void *ctx, const sl_progress *p, int32_t **out,
                       int *n_out, sl_spec_stats *st, sl_error *err);

/* The derived figures from the counts and times; predicted speed-up from
 * the acceptance a, k and the cost ratio c: (1 - a^(k+1)) / ((1 - a)(k c + 1)),
 * with k the tokens the draft actually proposed in each pass (fewer than
 * k where it stops at --p-min, where lookup finds a short match or none,
 * at the end of the run): the mean over the passes of (1 - a^(j+1)) / (1 - a)
 * over (mean j) c + 1, which is the formula itself where every pass drafts k.
 * The formula's a is the chance that the target keeps a draft token it
 * checks (the ones before it kept): token_acceptance, which counts only
 * the tokens checked. accepted / drafted also counts the tokens after a
 * rejection, never checked, as lost; under the formula's own model it is
 * a (1 - a^k) / (k (1 - a)), below a for every k > 1 (0.59 for a = 0.8,
 * k = 4). The formula takes a verification for one step of the target;
 * predicted_costed puts the measured cost (verify_steps) in its place. */
void sl_spec_finish(sl_spec_stats *st);
/* Adds the counts and times of another run with the same k (another
 * prompt, or the next stretch of one) and derives the figures anew. */
void sl_spec_stats_add(sl_spec_stats *into, const sl_spec_stats *s);

/* One verification, on distributions: the target's p[0..j] (rows of n)
 * and the draft's q[0..j) for draft tokens x[0..j). Writes the tokens
 * emitted (the kept draft tokens, then the target's own) to emit and
 * returns how many draft tokens were kept. Greedy when greedy is set
 * (p and q are then only compared by argmax). */
int sl_spec_verify(const float *p, const float *q, const int32_t *x, int j, int n, bool greedy, uint64_t *rng,
                   int32_t *emit);

/* Cards of speculative decoding ("speculative") and of the drafts that
 * need explaining ("lookup", "early-exit"), for the workbench's ? and Help. */
int sl_spec_card_count(void);
const char *sl_spec_card_name(int i);
const sl_card *sl_spec_card_at(int i);

#endif
