/* Training a model of either family: a forward pass that keeps what the
 * backward needs, the backward through every layer (token and learned
 * position embeddings, RMSNorm or LayerNorm with its bias, attention with
 * RoPE and grouped-query heads or GPT-2's fused qkv with biases, SwiGLU or
 * GELU, the output head, tied or not), and the losses (cross-entropy;
 * distillation from a teacher's logits by forward or reverse KL). The
 * optimizer and the step that ties them together are in optim.h. */
#ifndef SL_TRAIN_H
#define SL_TRAIN_H

#include "formats.h"
#include "model.h"

typedef struct {
	sl_loss_kind kind;
	float temperature; /* KL kinds: both distributions are softened by it (> 0) */
	float ce_weight;   /* KL kinds: weight of cross-entropy mixed in, in [0, 1] */
} sl_loss;

/* A trainable tensor and where its gradient lives. */
typedef struct {
	sl_tensor *t;
	float *grad;   /* as many floats as t holds; with grad_fn (sl_trainer_opts) a
	                * matrix's is a scratch all matrices share, valid in grad_fn only */
	size_t offset; /* of grad within the flat gradient (and optimizer moments) */
	size_t n;
	bool decay;    /* weight decay applies (matrices, not norms or biases) */
} sl_param;

typedef struct sl_trainer sl_trainer;

/* How one tensor trains when a compressed model heals. A matrix's forward
 * uses its weights as the compressed model would: pruned weights held at
 * zero, then fake quantization through its format (the scales fixed where
 * training starts, as after post-training calibration) with a straight-
 * through gradient that stops where the format clipped, then a LoRA
 * adapter's scale * B A added (B out x rank, A rank x in, B starting at
 * zero). A frozen tensor computes no gradient of its own.
 * With learn_scales, the step of each block of a format with uniform
 * levels and one scale per block trains too, from the format's own scales
 * (LSQ, Esser et al. 2020: rounding passes gradients straight through,
 * clamping does not; the steps' gradient scaled by 1 / sqrt(block *
 * kmax), no weight decay), as a trainer parameter "<name>.scale" (rows x
 * blocks per row). A float fallback has no scales to learn; other formats
 * are refused. */
typedef struct {
	const sl_format *format;    /* NULL: no fake quantization */
	const unsigned char *mask;  /* rows x cols, 1 = pruned; NULL: none */
	bool frozen;
	bool learn_scales;
	int lora_rank;              /* 0: no adapter (matrices only) */
	float lora_alpha;           /* the adapter's scale is alpha / rank */
} sl_heal_spec;

typedef struct {
	/* Fills spec for tensor t (zeroed before the call: plain training). */
	void (*spec)(void *ctx, const sl_tensor *t, sl_heal_spec *spec);
	void *ctx;
	uint64_t seed;              /* the adapters' initialization */
	/* Gradients given away, not kept (measuring them, as the Fisher proxy
	 * does, not training): the trainer reads m's F32 weights in place and
	 * never writes them (other types are converted), holds no gradient of
	 * all weights, and passes each trainable tensor's gradient of one
	 * backward to grad_fn (with ctx) once complete: a matrix's as soon as
	 * the backward has finished it, in one scratch the size of the largest
	 * that the next reuses; vectors, a tied embedding and low-rank factors
	 * (their gradients come in pieces) when the backward ends. Each backward
	 * gives its own gradient (nothing accumulates across backwards). Plain
	 * tensors only: no fake quantization, masks, adapters or learned steps
	 * (frozen tensors are fine); such a trainer cannot step (optim.h). */
	void (*grad_fn)(void *ctx, const sl_tensor *t, const float *grad, size_t n);
} sl_trainer_opts;

/* Prepares to train m, whose weights become owned F32 tensors (converted in
 * place) that the trainer updates; a factored weight (low rank, W = A B)
 * keeps its factors and they train instead, each a tensor of m that spec
 * is asked about like any matrix, the forward going through the rank. Batches hold up to max_seqs sequences
 * of seq_len inputs (at most the learned positions, where the model has
 * them). o (may be NULL) says how each tensor heals. */
sl_status sl_trainer_new(sl_model *m, const sl_train_kernels *K, int max_seqs, int seq_len,
                         const sl_trainer_opts *o, sl_trainer **out, sl_error *err);
/* After training: every healed matrix holds what the compressed model it
 * becomes computes with (its adapter merged, then through its grid, pruned
 * weights zero), still as F32, ready to be packed in its format; learned
 * steps are first rounded as the format stores them (so packing gives
 * back these values), and the "<name>.scale" parameters hold them. */
sl_status sl_trainer_finish(sl_trainer *tr, sl_error *err);
/* What the model computes with now (every healing matrix's effective
 * weights: pruned, through its grid, with its adapter), copied into dst,
 * a model whose tensors are F32 with the trainer's model's names and
 * shapes in its order (a clone of it): evaluation during training. */
sl_status sl_trainer_effective(sl_trainer *tr, sl_model *dst, sl_error *err);
void sl_trainer_free(sl_trainer *tr);

sl_model *sl_trainer_model(const sl_trainer *tr);
const sl_train_kernels *sl_trainer_kernels(const sl_trainer *tr);
int sl_trainer_seq_len(const sl_trainer *tr);
/* The trainable tensors in model order, and the total number of weights. */
const sl_param *sl_trainer_params(const sl_trainer *tr, int *n);
size_t sl_trainer_n_weights(const sl_trainer *tr);
void sl_trainer_zero_grad(sl_trainer *tr);
/* Whether it was made with a grad_fn (keeps no gradients of its own). */
bool sl_trainer_gives_grads(const sl_trainer *tr);

/* Forward and backward over n_seqs sequences of seq_len tokens: inputs
 * and targets are [n_seqs][seq_len], targets[i] the token that should
 * follow inputs up to i, or -1 where nothing is scored. Adds grad_scale
 * times the gradient of the mean loss over scored targets to the gradients
 * and sets *mean_loss (and *n_scored when not NULL). For the KL losses the
 * teacher, which must share the vocabulary, runs on the same inputs. */
sl_status sl_trainer_backward(sl_trainer *tr, const int32_t *inputs, const int32_t *targets, int n_seqs,
                              const sl_loss *loss,
                              const sl_model *teacher, float grad_scale, double *mean_loss, long *n_scored,
                              sl_error *err);

/* The logits the training forward computes for n_seqs sequences of
 * seq_len inputs (what the healing model predicts: fake quantization and
 * adapters included) into logits[n_seqs][seq_len][vocab]. */
sl_status sl_trainer_logits(sl_trainer *tr, const int32_t *inputs, int n_seqs, float *logits, sl_error *err);

#endif
