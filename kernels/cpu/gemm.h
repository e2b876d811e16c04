/* Batch-invariant float matrix products (gemm.c): y[t][r] = x[t] . w[r]
 * over n for T tokens and rows rows, weights in F32, F16 or BF16 (leading
 * dimensions in elements), each output computed the same way whatever T
 * and rows are; 16-bit weights give what their F32 values would. whole:
 * the bytes of the whole matrix these rows are part of (a task's rows are
 * part of one), which tells whether one token's pass finds it in the
 * caches or reads it from memory; it changes the speed only. */
#ifndef SL_GEMM_H
#define SL_GEMM_H

#include <stddef.h>

void sl_gemm(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w, int wtype, size_t ldw,
             int rows, int n, size_t whole);

/* Attention's weighted sum of value rows, added to what out holds: for
 * query i of nq, out[i][d] += p[i][j] * v[j - j0][d] for j = j0 .. lim[i]-1
 * in order of j, each element accumulated the same way whatever nq and the
 * other queries' limits are (lim ascending, as causal queries' are). */
void sl_gemm_acc_rows(float *out, size_t ldo, const float *p, size_t ldp, const int *lim, int nq, const float *v,
                      size_t ldv, int j0, int n);

/* A row of n attention scores becomes softmax(scale * row) in place.
 * The AVX2 path takes its exponentials from a polynomial (within about 2
 * ulp of expf) and sums them in eight lanes and a fixed tree; either way
 * a row's result depends on its own n values only. */
void sl_softmax_scaled(float *row, int n, float scale);

/* gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g); the AVX2 path
 * takes e^-|g| from the same polynomial. */
void sl_swiglu(float *gate, const float *up, size_t n);

#endif
