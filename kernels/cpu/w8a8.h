/* W8A8 products with integer dot products (w8a8.c): the CPU table's
 * matmul_w8a8. */
#ifndef SL_W8A8_H
#define SL_W8A8_H

#include <stdint.h>

void sl_cpu_matmul_w8a8(float *y, const int8_t *xq, const float *xd, int T, const void *w, int n_out, int n_in,
                        const float *bias);

#endif
