/* Batch-invariant float matrix products (gemm.c): y[t][r] = x[t] . w[r]
 * over n for T tokens and rows rows, weights in F32, F16 or BF16 (leading
 * dimensions in elements), each output computed the same way whatever T
 * and rows are; 16-bit weights give what their F32 values would. */
#ifndef SL_GEMM_H
#define SL_GEMM_H

#include <stddef.h>

void sl_gemm(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w, int wtype, size_t ldw,
             int rows, int n);

#endif
