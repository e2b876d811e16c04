/* The Optimal Brain Surgeon solver that the Hessian-aware quantization
 * and pruning methods share (Frantar et al. 2022 and 2023). Columns are
 * done one at a time (in blocks, with the error of a block carried to the
 * later columns in one matrix product); quantizing or pruning a column
 * spreads its error over the columns not yet done, weighted by the upper
 * Cholesky factor of H^-1. The factorizations are done in double, the
 * updates in float. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"

/* The unblocked factorization of the diagonal block A[j0.., j0..] of
 * size k, whose earlier columns have already been subtracted. */
static bool cholesky_diag(double *A, int n, int j0, int k)
{
	for (int j = j0; j < j0 + k; j++) {
		double *rj = A + (size_t)j * n;
		double d = rj[j];
		for (int c = j0; c < j; c++)
			d -= rj[c] * rj[c];
		if (!(d > 0))
			return false;
		d = sqrt(d);
		rj[j] = d;
		for (int i = j + 1; i < j0 + k; i++) {
			double *ri = A + (size_t)i * n;
			double s = ri[j];
			for (int c = j0; c < j; c++)
				s -= ri[c] * rj[c];
			ri[j] = s / d;
		}
	}
	return true;
}

/* Left-looking and blocked, so that the work is BLAS-3 products. */
bool sl_cholesky(double *A, int n)
{
	const int nb = 64;
	for (int j0 = 0; j0 < n; j0 += nb) {
		int k = n - j0 < nb ? n - j0 : nb, rest = n - j0 - k;
		double *Ajj = A + (size_t)j0 * n + j0, *Aj = A + (size_t)j0 * n;
		if (j0) {
			cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, k, j0, -1.0, Aj, n, 1.0, Ajj, n);
			if (rest)
				cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rest, k, j0, -1.0, Aj + (size_t)k * n, n, Aj,
				            n, 1.0, Ajj + (size_t)k * n, n);
		}
		if (!cholesky_diag(A, n, j0, k))
			return false;
		if (rest)
			cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, rest, k, 1.0, Ajj, n,
			            Ajj + (size_t)k * n, n);
	}
	for (int i = 0; i < n; i++)
		memset(A + (size_t)i * n + i + 1, 0, (size_t)(n - i - 1) * sizeof *A);
	return true;
}

/* U (float, n x n, upper) with H^-1 = U^T U, from the damped H (which
 * is overwritten; X is n x n scratch). False when H is not positive
 * definite. */
static bool inverse_factor(double *H, int n, float *U, double *X)
{
	if (!sl_cholesky(H, n))
		return false;
	/* L^-1 by solving L X = I, then H^-1 = L^-T L^-1 (lower triangle). */
	memset(X, 0, (size_t)n * n * sizeof *X);
	for (int i = 0; i < n; i++)
		X[(size_t)i * n + i] = 1;
	cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n, n, 1.0, H, n, X, n);
	cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, n, n, 1.0, X, n, 0.0, H, n);
	if (!sl_cholesky(H, n))
		return false;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			U[(size_t)i * n + j] = (float)H[(size_t)j * n + i];
	return true;
}

/* H permuted, in double, damped by damp * mean diag. An input that was
 * always zero cannot matter: its weights become zero and its row and
 * column of H those of the identity, which keeps H invertible. */
static void damped_hessian(const float *Hf, const int *perm, int n, double damp, double *H, float *W, int rows)
{
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++)
			H[(size_t)a * n + b] = Hf[(size_t)perm[a] * n + perm[b]];
	double mean_diag = 0;
	for (int a = 0; a < n; a++) {
		if (H[(size_t)a * n + a] <= 0) {
			for (int r = 0; r < rows; r++)
				W[(size_t)r * n + perm[a]] = 0;
			for (int b = 0; b < n; b++)
				H[(size_t)a * n + b] = H[(size_t)b * n + a] = 0;
			H[(size_t)a * n + a] = 1;
		}
		mean_diag += H[(size_t)a * n + a];
	}
	mean_diag /= n;
	for (int a = 0; a < n; a++)
		H[(size_t)a * n + a] += damp * mean_diag;
}

/* Columns by decreasing diag(H), ties by index so the order is stable. */
static void act_order_perm(const float *H, int n, int *perm, sl_scored *s)
{
	for (int j = 0; j < n; j++)
		s[j] = (sl_scored){-(double)H[(size_t)j * n + j], j};
	sl_sort_scored(s, (size_t)n);
	for (int j = 0; j < n; j++)
		perm[j] = s[j].idx;
}

/* The mask of one block when the solve prunes: the fraction sp of its weights (all rows
 * together) with the least w^2 / U_jj^2 are pruned. */
static void block_mask(const float *Wt, const float *U, int n, int rows, int j0, int j1, double sp,
                       unsigned char *mask, sl_scored *s)
{
	size_t cnt = (size_t)(j1 - j0) * rows;
	size_t k = (size_t)((double)cnt * sp);
	memset(mask, 0, cnt);
	if (!k)
		return;
	for (int j = j0; j < j1; j++) {
		double d = U[(size_t)j * n + j];
		for (int r = 0; r < rows; r++) {
			double w = Wt[(size_t)j * rows + r];
			size_t i = (size_t)(j - j0) * rows + r;
			s[i] = (sl_scored){w * w / (d * d), (int)i};
		}
	}
	sl_sort_scored(s, cnt);
	for (size_t i = 0; i < k; i++)
		mask[s[i].idx] = 1;
}

/* N:M for columns [j, j + m) of every row: the m - keep with the least
 * w^2 / U_jj^2 are pruned. */
static void nm_mask(const float *Wt, const float *U, int n, int rows, int j, int keep, int m,
                    unsigned char *mask)
{
	sl_scored s[64];
	for (int r = 0; r < rows; r++) {
		for (int c = 0; c < m; c++) {
			double d = U[(size_t)(j + c) * n + j + c];
			double w = Wt[(size_t)(j + c) * rows + r];
			s[c] = (sl_scored){w * w / (d * d), c};
		}
		sl_sort_scored(s, (size_t)m);
		for (int c = 0; c < m; c++)
			mask[(size_t)c * rows + r] = 0;
		for (int c = 0; c < m - keep; c++)
			mask[(size_t)s[c].idx * rows + r] = 1;
	}
}

sl_status sl_obs_solve(float *W, int rows, int n, const sl_obs_opts *o, sl_error *err)
{
	const sl_rounding *rd = o->rounding;
	bool nm = o->keep_n > 0 && o->group_m > 0;
	if (nm && (o->group_m > 64 || n % o->group_m || o->keep_n > o->group_m))
		return sl_errorf(err, SL_ERR_ARG, "%d:%d sparsity needs groups of at most 64 dividing the %d columns",
		                 o->keep_n, o->group_m, n);
	if (o->rounding && n % o->rounding->span)
		return sl_errorf(err, SL_ERR_ARG, "rows of %d do not split into the format's spans of %d", n,
		                 o->rounding->span);
	/* N:M groups are runs of neighbouring columns, so they keep their order. */
	bool act_order = o->act_order && !nm;
	int span = rd ? rd->span : 0;
	/* Scales fitted as their span is reached must see every earlier
	 * column's error, so blocks end on span boundaries. */
	bool fit_first = rd && (act_order || span >= n);
	int B = o->block > 0 ? o->block : 128;
	if (rd && !fit_first && B % span)
		B = (B / span + 1) * span;
	if (nm && B % o->group_m)
		B = (B / o->group_m + 1) * o->group_m;

	sl_status st = SL_OK;
	size_t nn = (size_t)n * n;
	size_t n_scored = (size_t)B * rows > (size_t)n ? (size_t)B * rows : (size_t)n;
	double *H = sl_malloc_array(nn, sizeof *H);
	double *X = sl_malloc_array(nn, sizeof *X);
	float *U = sl_malloc_array(nn, sizeof *U);
	float *Wt = sl_malloc_array((size_t)n * rows, sizeof *Wt);
	float *E = sl_malloc_array((size_t)B * rows, sizeof *E);
	float *seg = rd ? sl_malloc_array((size_t)rows * span, sizeof *seg) : NULL;
	unsigned char *mask = sl_calloc((size_t)B * rows, 1);
	int *perm = sl_malloc_array((size_t)n, sizeof *perm);
	sl_scored *sc = sl_malloc_array(n_scored, sizeof *sc);
	if (!H || !X || !U || !Wt || !E || (rd && !seg) || !mask || !perm || !sc) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for a %d x %d solve", rows, n);
		goto done;
	}
	if (act_order)
		act_order_perm(o->H, n, perm, sc);
	else
		for (int j = 0; j < n; j++)
			perm[j] = j;
	/* Nearly singular Hessians (few calibration tokens) need more damping. */
	double damp = o->damp > 0 ? o->damp : 0.01;
	bool ok = false;
	for (int tries = 0; tries < 6 && !ok; tries++) {
		if (tries)
			damp *= 10;
		damped_hessian(o->H, perm, n, damp, H, W, rows);
		ok = inverse_factor(H, n, U, X);
	}
	if (!ok) {
		st = sl_errorf(err, SL_ERR_ARG, "the %d x %d input Hessian is not positive definite even with damping %g",
		               n, n, damp);
		goto done;
	}
	if (fit_first)
		for (int c0 = 0; c0 < n; c0 += span)
			rd->fit(rd->ctx, W + c0, n, c0);
	for (int j = 0; j < n; j++)
		for (int r = 0; r < rows; r++)
			Wt[(size_t)j * rows + r] = W[(size_t)r * n + perm[j]];

	for (int i1 = 0; i1 < n; i1 += B) {
		if (sl_cancelled(o->progress)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "cancelled at column %d of %d", i1, n);
			goto done;
		}
		int i2 = i1 + B < n ? i1 + B : n;
		if (o->mask) {
			for (int j = i1; j < i2; j++)
				for (int r = 0; r < rows; r++)
					mask[(size_t)(j - i1) * rows + r] = o->mask[(size_t)r * n + perm[j]];
		} else if (o->sparsity > 0 && !nm) {
			block_mask(Wt, U, n, rows, i1, i2, o->sparsity, mask, sc);
		}
		for (int j = i1; j < i2; j++) {
			float *w = Wt + (size_t)j * rows;
			unsigned char *mk = mask + (size_t)(j - i1) * rows;
			if (nm && !o->mask && j % o->group_m == 0)
				nm_mask(Wt, U, n, rows, j, o->keep_n, o->group_m, mk);
			if (rd && !fit_first && j % span == 0) {
				for (int r = 0; r < rows; r++)
					for (int c = 0; c < span; c++)
						seg[(size_t)r * span + c] = Wt[(size_t)(j + c) * rows + r];
				rd->fit(rd->ctx, seg, span, j);
			}
			float d = U[(size_t)j * n + j];
			float *e = E + (size_t)(j - i1) * rows;
			bool pruning = o->mask || o->sparsity > 0 || nm;
			for (int r = 0; r < rows; r++) {
				float q = pruning && mk[r] ? 0.0f : rd ? rd->round(rd->ctx, r, perm[j], w[r]) : w[r];
				e[r] = (w[r] - q) / d;
				w[r] = q;
			}
			if (j + 1 < i2)
				cblas_sger(CblasRowMajor, i2 - j - 1, rows, -1.0f, U + (size_t)j * n + j + 1, 1, e, 1,
				           Wt + (size_t)(j + 1) * rows, rows);
		}
		if (i2 < n)
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n - i2, rows, i2 - i1, -1.0f,
			            U + (size_t)i1 * n + i2, n, E, rows, 1.0f, Wt + (size_t)i2 * rows, rows);
		if (o->progress) {
			char stage[48];
			snprintf(stage, sizeof stage, "column %d/%d", i2, n);
			sl_report(o->progress, (double)i2 / n, stage);
		}
	}
	for (int j = 0; j < n; j++)
		for (int r = 0; r < rows; r++)
			W[(size_t)r * n + perm[j]] = Wt[(size_t)j * rows + r];
done:
	free(H);
	free(X);
	free(U);
	free(Wt);
	free(E);
	free(seg);
	free(mask);
	free(perm);
	free(sc);
	return st;
}

/* sum over rows of a H a^T */
static double quad_form(const float *A, int rows, int cols, const float *H, float *AH)
{
	cblas_ssymm(CblasRowMajor, CblasRight, CblasLower, rows, cols, 1.0f, H, cols, A, cols, 0.0f, AH, cols);
	double s = 0;
	for (size_t i = 0; i < (size_t)rows * cols; i++)
		s += (double)A[i] * AH[i];
	return s;
}

double sl_output_error(const float *W, const float *Wq, int rows, int cols, const float *H)
{
	size_t sz = (size_t)rows * cols;
	float *D = sl_malloc_array(sz, sizeof *D), *DH = sl_malloc_array(sz, sizeof *DH);
	double e = NAN;
	if (D && DH) {
		for (size_t i = 0; i < sz; i++)
			D[i] = Wq[i] - W[i];
		double num = quad_form(D, rows, cols, H, DH);
		double den = quad_form(W, rows, cols, H, DH);
		e = den > 0 ? num / den : num;
	}
	free(D);
	free(DH);
	return e;
}

const sl_param_spec sl_obs_params[SL_OBS_PARAMS] = {
	{"damp", 0, 10, 0.01, false, false, "dampening, a fraction of the mean of diag(H)", false},
	{"block", 1, 1 << 20, 128, true, false, "columns per block", false},
	{"act_order", 0, 1, 1, true, true, "columns by decreasing diag(H)", false},
};

void sl_obs_settings(sl_obs_opts *o, const sl_module_plan *p)
{
	o->damp = sl_plan_value(p, &sl_obs_params[0]);
	o->block = (int)sl_plan_value(p, &sl_obs_params[1]);
	o->act_order = sl_plan_value(p, &sl_obs_params[2]) != 0;
}
