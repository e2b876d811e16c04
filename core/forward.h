/* The forward pass: a run state with its KV cache, batched prompt
 * processing and incremental decoding through one function. */
#ifndef SL_FORWARD_H
#define SL_FORWARD_H

#include "model.h"

/* Called with T rows of n floats; x may be modified by the callee only if
 * it means to change the computation (sweeps use that to inject states). */
typedef void (*sl_tap_fn)(void *ctx, int layer, sl_tap where, float *x, int T, int n);

typedef struct sl_state {
	const sl_model *m;
	const sl_kernels *K;
	int n_ctx;         /* positions the KV cache holds */
	int n_past;        /* positions already in it */
	int max_batch;     /* tokens per internal step */
	char *kv;          /* the KV cache: rows in cfg.kv_type */
	size_t kv_bytes;   /* its size */
	size_t *k_off, *v_off; /* per block, in bytes */
	size_t *kv_row;    /* per block, bytes of one cache row */
	int *kv_dim;       /* per block, values of one cache row */
	float *x, *xb, *q, *att, *hb, *hb2, *qkv;
	float *xq;         /* int8-rounded activations (W8A8 modules with float weights) */
	int8_t *xq8;       /* int8 activations (W8A8 modules with int8 weights) */
	float *xd;         /* and their per-token scales */
	float *k_new, *v_new; /* one batch of new keys and values, before a packed cache takes them */
	float *lr;         /* one batch through the rank of a factored weight */
	sl_tap_fn tap;
	void *tap_ctx;
	int n_blocks;      /* blocks run before the head (early exit); n_layers by default */
	size_t pass_bytes; /* weights one token's pass reads (all but the embedding table) */
} sl_state;

/* Bytes of a KV cache of n_ctx positions (0: the model's trained
 * context) with rows in kv_type; 0 when the type cannot hold a row. */
size_t sl_kv_cache_bytes(const sl_model *m, int kv_type, int n_ctx);

/* n_ctx: 0 = the model's trained context. */
sl_status sl_state_new(const sl_model *m, int n_ctx, sl_state **out, sl_error *err);
void sl_state_free(sl_state *s);
/* Forgets the cache (a new sequence starts at position 0). */
void sl_state_reset(sl_state *s);
/* Keeps only the first n positions of the cache (n <= n_past): what a
 * speculative run does when the target rejected drafted tokens. */
void sl_state_rewind(sl_state *s, int n);
/* Runs only the first n blocks, then the final norm and head (early
 * exit); n = 0 or the model's block count runs them all. SL_ERR_ARG when
 * the model has fewer. */
sl_status sl_state_set_exit(sl_state *s, int n, sl_error *err);

/* Runs n tokens at positions n_past .. n_past+n-1 and appends them to the
 * cache. If logits is not NULL it receives (n - logits_from) rows of
 * vocab_size floats, the predictions after tokens logits_from .. n-1. */
sl_status sl_forward(sl_state *s, const int32_t *tokens, int n, float *logits, int logits_from,
                     sl_error *err);

/* The same, starting from the hidden states x (n rows of dim floats)
 * entering block first: blocks before it are skipped and their caches
 * left alone. What sensitivity sweeps use to recompute only from the
 * block they changed onward. */
sl_status sl_forward_from(sl_state *s, int first, const float *x, int n, float *logits, int logits_from,
                          sl_error *err);

#endif
