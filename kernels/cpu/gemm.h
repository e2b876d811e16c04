/* Batch-invariant float matrix products (gemm.c): y[t][r] = x[t] . w[r]
 * over n for T tokens and rows rows (leading dimensions in floats), each
 * output computed the same way whatever T and rows are. */
#ifndef SL_GEMM_H
#define SL_GEMM_H

#include <stddef.h>

void sl_gemm_f32(float *y, size_t ldy, const float *x, size_t ldx, int T, const float *w, size_t ldw, int rows,
                 int n);

#endif
