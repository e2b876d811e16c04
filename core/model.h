/* The decoder-only transformer: configuration, weights and tokenizer.
 * Two families: Llama (RMSNorm, RoPE, grouped-query attention, SwiGLU;
 * Mistral and Qwen2 too) and GPT-2 (LayerNorm, learned positions, GELU,
 * fused qkv). Modules are named as GGUF names them (blk.3.attn_q, ...),
 * which is also how recipes select them. */
#ifndef SL_MODEL_H
#define SL_MODEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../kernels/kernels.h"
#include "error.h"
#include "fileio.h"
#include "progress.h"
#include "tensor.h"

struct sl_tokenizer;

/* Points inside a block where activations can be observed: the inputs of
 * the linear modules (what calibration statistics are gathered from) and
 * the block's input and output (what sensitivity sweeps cache). */
typedef enum {
	SL_TAP_BLOCK_IN = 0, /* residual stream entering the block */
	SL_TAP_ATTN_IN,      /* normed input of q, k, v (or qkv) */
	SL_TAP_ATTN_OUT_IN,  /* input of attn_output */
	SL_TAP_FFN_IN,       /* normed input of ffn_gate and ffn_up */
	SL_TAP_FFN_DOWN_IN,  /* input of ffn_down */
	SL_TAP_BLOCK_OUT,    /* residual stream leaving the block */
	SL_TAP_COUNT
} sl_tap;

typedef enum { SL_ARCH_LLAMA = 0, SL_ARCH_GPT2 = 1 } sl_arch;

typedef struct {
	sl_arch arch;
	char arch_name[32];  /* as the file named it: llama, qwen2, gpt2, ... */
	int dim;             /* embedding width */
	int hidden_dim;      /* MLP width (per layer widths live in sl_layer) */
	int n_layers;
	int n_heads;
	int n_kv_heads;
	int head_dim;
	int vocab_size;
	int max_seq_len;     /* the context the model was trained for */
	float norm_eps;
	float rope_theta;
	sl_rope_style rope_style;
	int rope_dim;        /* rotated dims per head (= head_dim unless partial) */
	int kv_type;         /* sl_dtype each cached key and value row rounds through (F32: exact) */
} sl_config;

/* One transformer block. Pointers are NULL for tensors the family lacks. */
typedef struct {
	sl_tensor *attn_norm, *attn_norm_b;
	sl_tensor *wq, *wk, *wv, *wqkv, *wo;
	sl_tensor *bq, *bk, *bv, *bqkv, *bo;
	sl_tensor *ffn_norm, *ffn_norm_b;
	sl_tensor *w_gate, *w_up, *w_down;
	sl_tensor *b_up, *b_down;
	/* Shapes of this block; structured pruning makes them differ per block. */
	int n_heads, n_kv_heads, hidden_dim;
	/* Bit 1 << sl_module_kind for each module whose input is quantized per
	 * token to 8-bit integers before its product (W8A8). */
	unsigned act_int8;
} sl_layer;

typedef struct sl_model {
	sl_config cfg;
	char path[4096];
	char format[16];         /* gguf, safetensors, llama2c */
	sl_tensor **tensors;     /* every tensor, named as GGUF names them; stable pointers */
	int n_tensors;
	sl_tensor *tok_embd, *pos_embd, *out_norm, *out_norm_b, *output;
	sl_layer *layers;
	struct sl_tokenizer *tok;
	sl_mapping *maps;        /* file mappings the tensors may point into */
	int n_maps;
	/* A model whose tensors borrow another's data (sl_model_borrow) holds a
	 * reference to it: the lender is freed with its last borrower. */
	struct sl_model *lender;
	atomic_int refs;         /* references beyond the first (borrowers) */
} sl_model;

/* The linear modules a recipe can compress, named as GGUF names their
 * weights without ".weight" (blk.3.ffn_down, token_embd, output). */
typedef enum {
	SL_MOD_ATTN_Q, SL_MOD_ATTN_K, SL_MOD_ATTN_V, SL_MOD_ATTN_QKV, SL_MOD_ATTN_OUT,
	SL_MOD_FFN_GATE, SL_MOD_FFN_UP, SL_MOD_FFN_DOWN, SL_MOD_EMBD, SL_MOD_OUTPUT,
} sl_module_kind;

typedef struct {
	char name[SL_NAME_MAX];
	int layer;               /* block index, -1 for token_embd and output */
	sl_module_kind kind;
	sl_tensor *w;
	sl_tap input;            /* where its input can be observed (blocks only) */
} sl_module;

typedef struct {
	const char *tokenizer_path; /* llama2.c: tokenizer.bin to use */
	bool check_finite;          /* scan float weights for NaN/Inf (default on) */
	/* The scan reads every weight, which is most of a big model's load: it
	 * reports per tensor and stops (SL_ERR_CANCELLED) when cancelled. */
	const sl_progress *progress;
} sl_load_opts;

/* Opens a GGUF, safetensors (file, sharded index or directory) or llama2.c
 * checkpoint, by content. On failure nothing is leaked and err says which
 * file, offset or tensor was wrong. */
sl_status sl_model_load(const char *path, const sl_load_opts *opts, sl_model **out, sl_error *err);
/* Frees m, or only drops a reference while models borrow from it (the
 * last one to go frees it). */
void sl_model_free(sl_model *m);

/* Where [p, p + n) lies in a file mapping of m (or of its lender): the
 * whole pages in it leave resident memory until next read
 * (sl_mapping_release). For data a job has finished reading. */
void sl_model_release_pages(const sl_model *m, const void *p, size_t n);

sl_tensor *sl_model_tensor(const sl_model *m, const char *name);
/* Fills up to max modules in model order (embedding, blocks, output) and
 * returns how many the model has; a tied output is not listed twice. */
int sl_model_modules(const sl_model *m, sl_module *out, int max);
const char *sl_module_kind_name(sl_module_kind k);
/* Weights as the model computes with them: a factored weight counts its
 * rows x cols, its factors not at all. */
int64_t sl_model_n_params(const sl_model *m);
/* Bytes of every tensor: a factored weight's are its factors' (a shared
 * basis once). */
size_t sl_model_bytes(const sl_model *m);
/* Low rank in a model (sl_tensor's lr_a, lr_b): whether any weight is
 * factored; the factors a weight of m owns become tensors of m (a basis
 * already there is not added twice); factors no weight uses any more
 * (their weight was compressed anew) are removed. */
bool sl_model_factored(const sl_model *m);
sl_status sl_model_adopt_factors(sl_model *m, sl_tensor *w, sl_error *err);
void sl_model_drop_unused_factors(sl_model *m);
/* A deep copy whose tensors are all owned: every tensor writable (what
 * training changes in place). */
sl_status sl_model_clone(const sl_model *src, sl_model **out, sl_error *err);
/* A copy whose tensors borrow src's data (none owned), holding a reference
 * to src so that src lives as long as the copy: what a recipe's model
 * starts from, replacing only the tensors it changes (sl_tensor_realloc,
 * or sl_tensor_own before writing into one in place). src must not be
 * changed while models borrow from it. */
sl_status sl_model_borrow(const sl_model *src, sl_model **out, sl_error *err);

/* A model of the given shape with F32 weights drawn from N(0, std^2)
 * (norm weights 1, biases 0), no tokenizer. For benchmarks and for
 * training from scratch. cfg->arch, dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size and max_seq_len must be set. */
sl_status sl_model_init_random(const sl_config *cfg, bool tied, float std, uint64_t seed, sl_model **out,
                               sl_error *err);

/* Loaders call these after filling tensors and cfg. */
sl_tensor *sl_model_add_tensor(sl_model *m, const char *name, int type, const int64_t *ne,
                               int n_dims, void *data, bool owned, sl_error *err);
/* Wires cfg and the layer pointers from named tensors, checking every shape. */
sl_status sl_model_finish(sl_model *m, sl_error *err);
sl_status sl_model_add_mapping(sl_model *m, void *addr, size_t size, sl_error *err);

#endif
