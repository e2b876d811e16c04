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

typedef struct sl_kernels {
	const char *name;
	/* y[T][n_out] = x[T][n_in] * W^T + bias (bias may be NULL). */
	void (*matmul)(float *y, const float *x, int T, const void *w, int wtype,
	               int n_out, int n_in, const float *bias);
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
	 * holding keys/values of positions 0..pos0+T-1 (row stride kv_stride
	 * floats). q and out are [T][n_heads*head_dim]; grouped-query heads share
	 * a kv head (n_heads a multiple of n_kv_heads). */
	void (*attention)(float *out, const float *q, const float *k_cache, const float *v_cache,
	                  int T, int pos0, int n_heads, int n_kv_heads, int head_dim,
	                  size_t kv_stride);
	/* gate = silu(gate) * up, elementwise over n. */
	void (*swiglu)(float *gate, const float *up, size_t n);
	/* x = gelu(x) (tanh approximation, as GPT-2), elementwise over n. */
	void (*gelu)(float *x, size_t n);
} sl_kernels;

const sl_kernels *sl_kernels_cpu(void);

/* Threads used by the CPU kernels (and nothing else: OpenBLAS is kept at one
 * thread so the two never oversubscribe the cores). 0 = one per core. */
void sl_kernels_set_threads(int n);
int sl_kernels_threads(void);

/* Runs fn(i, arg) for i in [0, n) on the kernel threads and waits. */
void sl_parallel_for(int n, void (*fn)(int i, void *arg), void *arg);

#endif
