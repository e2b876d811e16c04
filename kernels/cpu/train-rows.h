/* Row-level pieces of the training kernels. The reference table runs them
 * over every row on one thread; the cpu table runs the same functions over
 * slices on the pool, so the two agree exactly on these operations and
 * differ only where the cpu table uses OpenBLAS (products, attention). */
#ifndef SL_TRAIN_ROWS_H
#define SL_TRAIN_ROWS_H

#include <stdint.h>
#include <string.h>

#include "../kernels.h"

/* e^t in float: Cody-Waite reduction by ln 2 and Cephes' degree-6
 * polynomial (within 2 ulp), t clamped to [-87.34, 88] (e^t saturates at
 * about 1.2e-38 and 1.7e38; NaN stays NaN). Every operation is a single
 * IEEE multiply, add or subtract, so the AVX2 forms in train-avx2.c
 * compute the same bits lane by lane. */
#define SL_TR_EXP_LO (-87.33654f)
#define SL_TR_EXP_HI 88.0f
#define SL_TR_EXP_MAGIC 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */
static inline float sl_tr_exp1(float t)
{
	t = SL_TR_EXP_LO > t ? SL_TR_EXP_LO : t;
	t = SL_TR_EXP_HI < t ? SL_TR_EXP_HI : t;
	float m = t * 1.44269504088896341f + SL_TR_EXP_MAGIC, n = m - SL_TR_EXP_MAGIC;
	float r = (t - n * 0.693359375f) - n * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * (r * r) + r + 1.0f;
	uint32_t mb, sb;
	memcpy(&mb, &m, sizeof mb);
	sb = (mb - 0x4B400000u + 127u) << 23; /* 2^n: n sits in m's low mantissa bits */
	float s;
	memcpy(&s, &sb, sizeof s);
	return p * s;
}

/* Whether the AVX2 forms below run (asked once; SL_NO_AVX2 turns them off). */
bool sl_tr_avx2(void);

/* The largest of x[0 .. n) (n >= 1). */
float sl_tr_max(const float *x, int n);
/* y[i] = e^((x[i] - sub) * mul) (y may be x); returns their sum, in double
 * over eight interleaved partial sums (element i into sum i % 8), added
 * pairwise at the end: the same on every path. */
double sl_tr_exp_sum(float *y, const float *x, int n, float sub, float mul);
/* y[i] *= c. */
void sl_tr_scale(float *y, int n, float c);
/* Softmax's backward on a row: ds[i] = p[i] * (ds[i] - dot) * scale. */
void sl_tr_softmax_grad(float *ds, const float *p, int n, float dot, float scale);

/* The AVX2 forms (train-avx2.c), called only when sl_tr_avx2(). */
float sl_tr_max_avx2(const float *x, int n);
double sl_tr_exp_sum_avx2(float *y, const float *x, int n, float sub, float mul);
void sl_tr_scale_avx2(float *y, int n, float c);
void sl_tr_softmax_grad_avx2(float *ds, const float *p, int n, float dot, float scale);
void sl_tr_swiglu_avx2(float *h, const float *g, const float *u, size_t i0, size_t i1);
void sl_tr_swiglu_backward_avx2(float *dg, float *du, const float *dh, const float *g, const float *u, size_t i0,
                                size_t i1);

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
