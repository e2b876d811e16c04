/* Row-level pieces of the training kernels. The reference table runs them
 * over every row on one thread; the cpu table runs the same functions over
 * slices on the pool, so the two agree exactly on these operations and
 * differ only where the cpu table uses OpenBLAS (products, attention). */
#ifndef SL_TRAIN_ROWS_H
#define SL_TRAIN_ROWS_H

#include "../kernels.h"

/* cs[T][rot_dim/2][2]: cosine and sine of each position's angle per pair. */
void sl_tr_rope_table(float *cs, int T, int rot_dim, float theta);
/* Rotates rows [r0, r1) of x (row r sits at position r % T). */
void sl_tr_rope_rows(float *x, const float *cs, int r0, int r1, int T, int n_heads, int head_dim,
                     int rot_dim, sl_rope_style style, bool inverse);

void sl_tr_rmsnorm_rows(float *y, float *rstd, const float *x, const float *w, int t0, int t1, int n,
                        float eps);
/* dx += for rows [t0, t1); dw is left alone (see sl_tr_rmsnorm_dw_cols). */
void sl_tr_rmsnorm_dx_rows(float *dx, const float *dy, const float *x, const float *w, const float *rstd,
                           int t0, int t1, int n);
/* dw[c0, c1) += summed over all T rows, in row order. */
void sl_tr_rmsnorm_dw_cols(float *dw, const float *dy, const float *x, const float *rstd, int T, int n,
                           int c0, int c1);

/* LayerNorm as the inference kernel computes it (mean and variance in
 * double); mean[t] and rstd[t] keep each row's mean and 1 / std. */
void sl_tr_layernorm_rows(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                          int t0, int t1, int n, float eps);
/* dx += for rows [t0, t1); dw and db are left alone (see the cols one). */
void sl_tr_layernorm_dx_rows(float *dx, const float *dy, const float *x, const float *w, const float *mean,
                             const float *rstd, int t0, int t1, int n);
/* dw[c0, c1) and db[c0, c1) (either may be NULL) += summed over all T rows,
 * in row order. */
void sl_tr_layernorm_dwb_cols(float *dw, float *db, const float *dy, const float *x, const float *mean,
                              const float *rstd, int T, int n, int c0, int c1);

void sl_tr_swiglu_range(float *h, const float *g, const float *u, size_t i0, size_t i1);
void sl_tr_swiglu_backward_range(float *dg, float *du, const float *dh, const float *g, const float *u,
                                 size_t i0, size_t i1);

/* GELU, tanh approximation, as the inference kernel computes it. */
void sl_tr_gelu_range(float *y, const float *x, size_t i0, size_t i1);
void sl_tr_gelu_backward_range(float *dx, const float *dy, const float *x, size_t i0, size_t i1);

/* Columns [c0, c1) of every row, rows in order. */
void sl_tr_embed_backward_cols(float *dtable, const float *dx, const int32_t *ids, int T, int n, int c0,
                               int c1);

void sl_tr_loss_rows(float *loss, float *dlogits, const float *logits, const float *teacher,
                     const int32_t *targets, int t0, int t1, int V, sl_loss_kind kind, float temperature,
                     float ce_weight, float scale);

void sl_tr_adamw_range(float *w, const float *g, float *m, float *v, size_t i0, size_t i1, float grad_scale,
                       float lr, float beta1, float beta2, float eps, float weight_decay, int64_t t);

#endif
