/* Healing a compressed model by training: the recipe is applied as after
 * post-training compression, then the compressed model trains with the
 * base model beside it and is packed again into the recipe's formats.
 *   QAT   every weight trains through its format's fake quantization
 *         (scales fixed where post-training calibration left them, or
 *         learned with LSQ), on cross-entropy;
 *   QAD   the same on T^2 KL(base || student) at temperature T;
 *   KD    the same loss after pruning (heads, channels, blocks or
 *         element-wise, whose zeros stay zero);
 *   LoRA  the compressed weights stay frozen in their formats and rank-r
 *         adapters train, then merge into the weights, which round again;
 *         or stay apart, written as an adapter file llama.cpp loads
 *         beside the compressed model, which keeps its post-training
 *         bytes. With LoftQ (Li et al. 2023) the frozen weights and the
 *         adapters' start are chosen together from the base's weights.
 * A weight the recipe factors (low rank) heals through its two factors,
 * each a matrix of its own: they train (QAT, QAD, KD; in their formats
 * when the factors are quantized) or stay frozen with adapters of their
 * own that merge into them (LoRA, never kept apart), so the healed model
 * keeps the factors' shapes and bytes.
 * Training reads one text and every figure comes from another: KL
 * against the base, PPL and top-1 before healing and after, and the
 * share of the post-training KL recovered. */
#ifndef SL_HEAL_H
#define SL_HEAL_H

#include "card.h"
#include "eval.h"
#include "recipe.h"
#include "train-run.h"

typedef enum { SL_HEAL_QAT, SL_HEAL_QAD, SL_HEAL_KD, SL_HEAL_LORA } sl_heal_method;

struct sl_heal_report;

/* "qat", "qad", "kd", "lora"; NULL/false for anything else. */
const char *sl_heal_method_name(sl_heal_method m);
bool sl_heal_method_parse(const char *s, sl_heal_method *m);
/* What the method is, for the workbench's ? and Help; NULL for anything else. */
const sl_card *sl_heal_method_card(sl_heal_method m);

typedef struct {
	sl_heal_method method;
	int steps;                  /* updates (default 300; LoRA may take 0: the adapters as they start) */
	float lr;                   /* peak learning rate (0: the method's default) */
	int batch;                  /* sequences per update (default 8) */
	int seq_len;                /* tokens per sequence (0: min(128, context)) */
	float temperature;          /* the KL losses (default 1) */
	float ce_weight;            /* cross-entropy mixed into the KL losses, 0..1 */
	int loss;                   /* -1: the method's (CE for QAT and LoRA, KL for QAD and KD);
	                             * else an sl_loss_kind */
	bool lsq;                   /* QAT, QAD, KD: the formats' steps train too (learned step
	                             * sizes; uniform levels with one scale per block only) */
	int rank;                   /* LoRA (default 8) */
	float alpha;                /* LoRA scale alpha / rank (0: alpha = rank) */
	int loftq;                  /* LoRA over quantization alone: LoftQ's alternations (0: none):
	                             * each block matrix quantized (rounding to nearest in its
	                             * format) is quantized anew as W - s B A, B A the best rank-r
	                             * approximation of what that left, this many times from
	                             * B A = 0; the adapters start there. The before figures
	                             * stay those of plain post-training quantization */
	const char *adapter_out;    /* LoRA: the adapters stay apart, written here as a LoRA adapter GGUF
	                             * (llama.cpp's --lora), the compressed weights as they were
	                             * frozen, and the after figures are of both together
	                             * (NULL: the adapters merge into the weights) */
	const char *train_text;     /* NULL: the calibration text shipped with slimlab */
	const char *eval_text;      /* NULL: the evaluation text shipped with slimlab */
	int eval_ctx;               /* evaluation windows (0: the model's context, at most 512) */
	int eval_chunks;            /* windows of the before and after figures (0: all) */
	int eval_every;             /* held-out KL every N updates (0: only before and after) */
	int probe_chunks;           /* windows of those (default 4) */
	const char *checkpoint;     /* NULL: none */
	int checkpoint_every;       /* updates (0: only when cancelled) */
	bool resume;
	uint64_t seed;
	const sl_progress *progress;
	void (*on_report)(void *ctx, const struct sl_heal_report *r);
	void *ctx;
} sl_heal_opts;

/* Defaults for method m. */
void sl_heal_opts_init(sl_heal_opts *o, sl_heal_method m);

typedef struct sl_heal_report {
	sl_train_event event;       /* NOTE, STEP, EVAL, CHECKPOINT, DONE */
	int64_t step, steps;
	double loss, grad_norm;
	float lr;
	double tokens_per_s, elapsed_s, eta_s;
	const sl_eval_result *eval; /* EVAL: held-out figures against the base (step 0: after
	                             * post-training compression; DONE: the healed model's) */
	const char *note;
} sl_heal_report;

typedef struct {
	sl_eval_result before, after;
	double recovered;           /* (before.kl - after.kl) / before.kl */
	int64_t steps;              /* updates in the run (resumed ones included) */
	double train_seconds, tokens_per_s;
	float *loss;                /* training loss of every update (steps of them) */
	float *probe;               /* (step, held-out KL) pairs */
	int n_probe;
	int n_trained;              /* tensors that learned (adapters count their matrix) */
	long long repacked_moved;   /* weights packing into the formats moved beyond float rounding (0 expected) */
	char loss_name[16];         /* "ce", "kl", ... */
} sl_heal_result;

void sl_heal_result_free(sl_heal_result *r);

/* Applies r to base, evaluates the result, heals it as o says and packs it
 * into the formats r chose: *out is the healed model (base unchanged),
 * ready to evaluate or export with r; with adapters kept apart, the
 * compressed model as it was frozen, the adapters written to their file. On cancellation a checkpoint is
 * written (when o names one) and SL_ERR_CANCELLED returned; resuming from
 * it rebuilds the same compressed model and goes on exactly. A checkpoint
 * already there is never overwritten by a fresh run. */
sl_status sl_heal(const sl_model *base, const sl_recipe *r, const sl_heal_opts *o, sl_model **out,
                  sl_heal_result *res, sl_error *err);

#endif
