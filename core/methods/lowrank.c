/* What the low-rank methods share: the rank a plan asks for and the
 * factorization itself, a singular value
 * decomposition of the weights seen through a transformation (none,
 * activation scales, the Cholesky factor of the input Hessian) by LAPACK,
 * truncated, and the transformation undone in the second factor. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"

const sl_param_spec sl_lowrank_params[SL_LOWRANK_N_PARAMS] = {
	SL_LOWRANK_PARAMS,
	{"damp", 0, 10, 0.01, false, false, "dampening, a fraction of the mean of diag(H)", false},
	{"blocks", 1, 4096, 0, true, false, "blocks sharing one basis (0: those of the rule)", false},
};

int sl_lowrank_rank(const sl_module_plan *p, int64_t rows, int64_t cols)
{
	double rank = sl_plan_value(p, &sl_lowrank_params[SL_LOWRANK_RANK]);
	if (rank > 0)
		return (int)rank;
	double r = floor(sl_plan_value(p, &sl_lowrank_params[SL_LOWRANK_KEEP]) * (double)rows * (double)cols / (double)(rows + cols));
	return r > INT32_MAX ? INT32_MAX : (int)r;
}

/* --- the factorization ------------------------------------------------------------ */

sl_status sl_lowrank_factor(sl_factor_job *j, const float *d, const float *L, float *sv, sl_error *err)
{
	const int m = j->n * j->rows, n = j->cols, r = j->rank, k = m < n ? m : n;
	if (r < 1 || r > k)
		return sl_errorf(err, SL_ERR_ARG, "%s: rank %d is outside 1..%d, the smaller side of %d x %d", j->name, r, k,
		                 m, n);
	float *M = sl_malloc_array((size_t)m * n, sizeof *M), *U = sl_malloc_array((size_t)m * k, sizeof *U);
	float *VT = sl_malloc_array((size_t)k * n, sizeof *VT), *s = sl_malloc_array((size_t)k, sizeof *s);
	sl_status st = SL_OK;
	if (!M || !U || !VT || !s) {
		st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory factoring %d x %d", j->name, m, n);
		goto done;
	}
	if (L)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0f, j->W, n, L, n, 0.0f, M, n);
	else
		for (size_t i = 0; i < (size_t)m * n; i++)
			M[i] = d ? j->W[i] * d[i % n] : j->W[i];
	lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', m, n, M, n, s, U, k, VT, n);
	if (info) {
		st = sl_errorf(err, SL_ERR_ARG, "%s: the singular value decomposition did not converge (LAPACK sgesdd: %d)",
		               j->name, (int)info);
		goto done;
	}
	for (int c = 0; c < r; c++) {
		float h = sqrtf(s[c]);
		for (int i = 0; i < m; i++)
			j->A[(size_t)i * r + c] = U[(size_t)i * k + c] * h;
		for (int i = 0; i < n; i++)
			j->B[(size_t)c * n + i] = VT[(size_t)c * n + i] * h / (d ? d[i] : 1.0f);
	}
	/* B L^-1: the triangular solve X L = B. */
	if (L)
		cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, r, n, 1.0f, L, n, j->B, n);
	if (sv)
		memcpy(sv, s, (size_t)k * sizeof *s);
done:
	free(M);
	free(U);
	free(VT);
	free(s);
	return st;
}

sl_status sl_lowrank_whitened(sl_factor_job *j, sl_error *err)
{
	const int n = j->cols;
	double damp = sl_plan_value(j->plan, &sl_lowrank_params[SL_LOWRANK_DAMP]);
	for (int k = 0; k < j->n; k++)
		if (!j->st[k] || !j->st[k]->hessian)
			return sl_errorf(err, SL_ERR_ARG, "%s: whitening needs calibration Hessians", j->name);
	double *H = sl_calloc((size_t)n * n, sizeof *H), *C = sl_malloc_array((size_t)n * n, sizeof *C);
	float *L = sl_calloc((size_t)n * n, sizeof *L);
	sl_status st = SL_OK;
	if (!H || !C || !L) {
		st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory for a %d x %d Hessian", j->name, n, n);
		goto done;
	}
	for (int k = 0; k < j->n; k++)
		for (size_t i = 0; i < (size_t)n * n; i++)
			H[i] += j->st[k]->hessian[i] / j->n;
	double mean = 0;
	for (int i = 0; i < n; i++)
		mean += H[(size_t)i * n + i] / n;
	if (!(mean > 0)) {
		st = sl_errorf(err, SL_ERR_ARG, "%s: its inputs were always zero on the calibration text", j->name);
		goto done;
	}
	lapack_int info = 1;
	for (int tries = 0; info && tries < 8; tries++, damp = damp > 0 ? damp * 10 : 1e-6) {
		memcpy(C, H, (size_t)n * n * sizeof *C);
		for (int i = 0; i < n; i++)
			C[(size_t)i * n + i] += damp * mean;
		info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, C, n);
	}
	if (info) {
		st = sl_errorf(err, SL_ERR_ARG, "%s: the input Hessian is not positive definite even damped", j->name);
		goto done;
	}
	for (int a = 0; a < n; a++)
		for (int b = 0; b <= a; b++)
			L[(size_t)a * n + b] = (float)C[(size_t)a * n + b];
	st = sl_lowrank_factor(j, NULL, L, NULL, err);
done:
	free(H);
	free(C);
	free(L);
	return st;
}
