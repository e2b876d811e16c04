/* LoftQ (Li et al. 2023, "LoftQ: LoRA-Fine-Tuning-Aware Quantization"):
 * a quantized matrix and a low-rank adapter chosen together, so that the
 * adapter starts by carrying what quantization lost instead of nothing. */
#ifndef SL_LOFTQ_H
#define SL_LOFTQ_H

#include "card.h"
#include "error.h"

/* W (rows x cols, F32) into Q + scale * B A, B rows x rank, A rank x
 * cols: starting from B A = 0, iters times
 *   Q = W - scale B A rounded to nearest in type (packed into packed,
 *       rows of sl_dtype_row_bytes(type, cols), all rows at once as
 *       packing a whole matrix does),
 *   scale B A = the best rank-rank approximation of W - Q (singular
 *       values U S V^T truncated, split evenly: B = U sqrt(S / scale),
 *       A = sqrt(S / scale) V^T).
 * resid (iters of them, may be NULL) gets ||W - Q - scale B A||_F after
 * each iteration. name says which matrix in errors. */
sl_status sl_loftq(const float *W, int rows, int cols, int type, int rank, float scale, int iters, void *packed,
                   float *B, float *A, double *resid, const char *name, sl_error *err);

/* What LoftQ is, for the workbench's ? and Help (a heal card). */
const sl_card *sl_loftq_card(void);

#endif
