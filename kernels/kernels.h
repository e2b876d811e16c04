/* The numeric operations the engine needs, behind one table per backend.
 * Kernels take pointers, shapes and strides; they never see core's structs.
 * Matrices are row-major; a weight matrix W has n_out rows of n_in elements
 * stored in any sl_dtype, and y = x W^T (+ bias). */
#ifndef SL_KERNELS_H
#define SL_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

typedef enum { SL_ROPE_NONE = 0, SL_ROPE_NORM = 1, SL_ROPE_NEOX = 2 } sl_rope_style;

/* One of several products of the same input (sl_kernels.matmul_parts). */
typedef struct sl_matmul_part {
	float *y;
	const void *w;
	int wtype;
	int n_out;
	const float *bias;
} sl_matmul_part;

/* The most parts one matmul_parts call takes. */
#define SL_MATMUL_MAX_PARTS 4

typedef struct sl_kernels {
	const char *name;
	/* y[T][n_out] = x[T][n_in] * W^T + bias (bias may be NULL). */
	void (*matmul)(float *y, const float *x, int T, const void *w, int wtype,
	               int n_out, int n_in, const float *bias);
	/* Up to SL_MATMUL_MAX_PARTS products of one input x[T][n_in] (a block's
	 * query, key and value; gate and up) in one parallel loop: each part's
	 * y holds exactly what matmul gives it alone, one loop instead of one
	 * per product. May be NULL: then callers call matmul per part. */
	void (*matmul_parts)(const sl_matmul_part *parts, int n_parts, const float *x, int T, int n_in);
	/* The same product with W taken as its rows decoded to F32 (a tile of
	 * rows at a time): the inputs stay floats, where matmul may quantize
	 * them for a packed format's integer dot products. Every output is
	 * the bits matmul gives for the decoded F32 matrix: a packed weight
	 * computes as its simulated (quantized, then dequantized) form does. */
	void (*matmul_decoded)(float *y, const float *x, int T, const void *w, int wtype,
	                       int n_out, int n_in, const float *bias);
	/* W8A8: y[T][n_out] = x W^T + bias where token t's input is xq[t][n_in]
	 * times xd[t] (sl_act_i8_quantize) and W is SL_DT_I8_CH rows (an f32
	 * scale, then n_in int8 values): each output the exact integer dot
	 * product times the two scales, so every path and batch gives the same
	 * bits. n_in below 2^20. */
	void (*matmul_w8a8)(float *y, const int8_t *xq, const float *xd, int T, const void *w, int n_out, int n_in,
	                    const float *bias);
	/* y = x / rms(x) * w, per row of n. y may equal x. */
	void (*rmsnorm)(float *y, const float *x, const float *w, int T, int n, float eps);
	/* y = (x - mean) / std * w + b, per row of n. */
	void (*layernorm)(float *y, const float *x, const float *w, const float *b,
	                  int T, int n, float eps);
	/* Rotates the first rot_dim dims of each head of x[T][n_heads*head_dim];
	 * row t sits at position pos0 + t. */
	void (*rope)(float *x, int T, int n_heads, int head_dim, int rot_dim, int pos0,
	             float theta, sl_rope_style style);
	/* Causal attention for T queries at positions pos0..pos0+T-1 over a cache
	 * holding keys/values of positions 0..pos0+T-1. Row j of a cache holds
	 * position j's n_kv_heads*head_dim values in kv_type, rows kv_row_bytes
	 * apart: F32, F16, BF16, or a type whose row header scales every block
	 * of its row alike (the KV-cache formats of the registry), read a tile
	 * of rows at a time. q and out are [T][n_heads*head_dim]; grouped-query
	 * heads share a kv head (n_heads a multiple of n_kv_heads). */
	void (*attention)(float *out, const float *q, const void *k_cache, const void *v_cache, int kv_type,
	                  size_t kv_row_bytes, int T, int pos0, int n_heads, int n_kv_heads, int head_dim);
	/* gate = silu(gate) * up, elementwise over n. */
	void (*swiglu)(float *gate, const float *up, size_t n);
	/* x = gelu(x) (tanh approximation, as GPT-2), elementwise over n. */
	void (*gelu)(float *x, size_t n);
} sl_kernels;

const sl_kernels *sl_kernels_cpu(void);

/* Quantizes T rows of n floats to int8 per row, as W8A8 inputs are:
 * d[t] = max|x| / 127, q = round(x / d), so x ~ d[t] * q. */
void sl_act_i8_quantize(const float *x, int T, int n, int8_t *q, float *d);
/* The reference table (kernels/ref): plain loops on one thread with double
 * sums, no BLAS, no SIMD; what every backend's table is tested against. */
const sl_kernels *sl_kernels_ref(void);

/* Threads used by the CPU kernels (and nothing else: OpenBLAS is kept at one
 * thread so the two never oversubscribe the cores). 0 = one per core. */
void sl_kernels_set_threads(int n);
int sl_kernels_threads(void);

/* The bytes of weights one token's forward pass reads, told by the
 * forward before each pass (0: not known). Where they exceed what the
 * caches hold, the float products read a token's weight rows one at a time
 * from start to end, the fastest way from memory; where they fit, several
 * rows at a time. It changes the speed only, never a result. */
void sl_kernels_set_pass_bytes(size_t bytes);

/* Runs fn(i, arg) for i in [0, n) on the kernel threads and waits. */
void sl_parallel_for(int n, void (*fn)(int i, void *arg), void *arg);
/* How many of n_rows output rows one task of a matrix product takes, for
 * a product of `flops` operations: all of them when it is too small to
 * share, else about four tasks per thread, in whole multiples of 16 rows.
 * Each row is computed by one task, so the split never changes a result. */
int sl_rows_per_task(int n_rows, double flops);

/* Runs fn(r0, r1, arg) over the n_rows output rows of a product of
 * `flops` operations, one of a few tokens that is over in microseconds, on
 * the kernel threads, and waits: each thread a share of the rows, a
 * contiguous run it computes from start to end in pieces, then pieces from
 * the ends of the shares not yet done, so that the threads finish within a
 * small piece of each other. Pieces are whole multiples of 16 rows (the
 * last may end at n_rows), none larger than sl_rows_per_task's; all the
 * rows in one call on this thread when the product is too small to share.
 * Each row is computed by one call, so the split never changes a result. */
void sl_parallel_rows(int n_rows, double flops, void (*fn)(int r0, int r1, void *arg), void *arg);

/* ---- training ----------------------------------------------------------
 * The forward operations a training step keeps state from, and their
 * gradients, over a batch of B independent sequences of T tokens (rows
 * b*T + t, positions 0..T-1). F32 only. Every backward operation ADDS into
 * the gradients it is given (dx, dw, db, dtable), so residual branches,
 * tied weights and accumulated micro-batches need no copies; callers zero
 * them. Two tables: "ref", plain loops on one thread with double sums (the
 * reference), and "cpu", OpenBLAS and the thread pool. The cpu table splits
 * work into tasks whose shape depends only on the problem, never on the
 * thread count, so its results are bitwise the same on any number of
 * threads. */

typedef enum {
	SL_LOSS_CE = 0,         /* cross-entropy against the next token */
	SL_LOSS_KL_FORWARD = 1, /* T^2 KL(teacher || student) at temperature T */
	SL_LOSS_KL_REVERSE = 2, /* T^2 KL(student || teacher) at temperature T */
} sl_loss_kind;

typedef struct sl_train_kernels {
	const char *name;
	/* y[T][n_out] = x[T][n_in] W^T + b; W is F32 [n_out][n_in], b may be NULL. */
	void (*matmul)(float *y, const float *x, const float *w, const float *b, int T, int n_out, int n_in);
	/* dx += dy W, dw += dy^T x, db += column sums of dy (dx, dw and db may be
	 * NULL: a frozen weight computes no gradient). */
	void (*matmul_backward)(float *dx, float *dw, float *db, const float *dy, const float *x,
	                        const float *w, int T, int n_out, int n_in);
	/* y = x / rms(x) * w per row of n; rstd[T] keeps 1 / rms for the backward. */
	void (*rmsnorm)(float *y, float *rstd, const float *x, const float *w, int T, int n, float eps);
	/* dx += d/dx, dw += d/dw of the rmsnorm above, given dy (dw may be NULL). */
	void (*rmsnorm_backward)(float *dx, float *dw, const float *dy, const float *x, const float *w,
	                         const float *rstd, int T, int n);
	/* y = (x - mean) / std * w + b per row of n (b may be NULL); mean[T]
	 * and rstd[T] keep each row's mean and 1 / std for the backward. */
	void (*layernorm)(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int T,
	                  int n, float eps);
	/* dx += d/dx, dw += d/dw, db += d/db of the layernorm above, given dy
	 * (dw and db may be NULL). */
	void (*layernorm_backward)(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
	                           const float *mean, const float *rstd, int T, int n);
	/* Rotates x[B*T][n_heads*head_dim] in place as the forward's rope does;
	 * inverse applies the transposed rotation, which carries gradients back. */
	void (*rope)(float *x, int B, int T, int n_heads, int head_dim, int rot_dim, float theta,
	             sl_rope_style style, bool inverse);
	/* Causal attention within each sequence: q, out [B*T][n_heads*head_dim],
	 * k, v [B*T][n_kv_heads*head_dim]; lse[B][n_heads][T] receives the
	 * log-sum-exp of each row of scaled scores, for the backward. */
	void (*attention)(float *out, float *lse, const float *q, const float *k, const float *v, int B,
	                  int T, int n_heads, int n_kv_heads, int head_dim);
	/* Gradients of q, k and v given dout; these three are written, not added. */
	void (*attention_backward)(float *dq, float *dk, float *dv, const float *dout, const float *q,
	                           const float *k, const float *v, const float *out, const float *lse, int B,
	                           int T, int n_heads, int n_kv_heads, int head_dim);
	/* h = silu(g) * u over n elements. */
	void (*swiglu)(float *h, const float *g, const float *u, size_t n);
	/* dg, du (written) from dh. */
	void (*swiglu_backward)(float *dg, float *du, const float *dh, const float *g, const float *u,
	                        size_t n);
	/* y = gelu(x) (tanh approximation, as GPT-2) over n elements. */
	void (*gelu)(float *y, const float *x, size_t n);
	/* dx (written) from dy. */
	void (*gelu_backward)(float *dx, const float *dy, const float *x, size_t n);
	/* dtable[ids[t]] += dx[t] for T rows of n. */
	void (*embed_backward)(float *dtable, const float *dx, const int32_t *ids, int T, int n);
	/* Loss of T rows of V logits: loss[t] gets the row's loss and dlogits
	 * (which may alias logits) scale * its gradient. Rows whose target is
	 * negative count nothing (loss 0, gradient 0). For the KL kinds teacher
	 * holds the teacher's logits and the loss is ce_weight * cross-entropy
	 * + (1 - ce_weight) * the KL term; targets matter only when ce_weight > 0. */
	void (*loss)(float *loss, float *dlogits, const float *logits, const float *teacher,
	             const int32_t *targets, int T, int V, sl_loss_kind kind, float temperature,
	             float ce_weight, float scale);
	/* Sum of squares of n floats, in double. */
	double (*sumsq)(const float *x, size_t n);
	/* One AdamW update of n weights from gradient g * grad_scale: moments
	 * m, v, bias correction for update number t (1-based), decoupled weight
	 * decay lr * weight_decay * w. */
	void (*adamw)(float *w, const float *g, float *m, float *v, size_t n, float grad_scale, float lr,
	              float beta1, float beta2, float eps, float weight_decay, int64_t t);
} sl_train_kernels;

const sl_train_kernels *sl_train_kernels_ref(void);
const sl_train_kernels *sl_train_kernels_cpu(void);

#endif
