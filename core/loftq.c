/* LoftQ's alternation for one matrix: rounding to nearest through the
 * storage type, then the truncated SVD of what rounding left (LAPACK's
 * divide-and-conquer sgesdd), each step from the other's latest result. */
#include "loftq.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/dtype.h"

/* R = W - Q - scale B A. */
static void residual(float *R, const float *W, const float *Q, const float *B, const float *A, int rows, int cols,
                     int rank, float scale)
{
	size_t n = (size_t)rows * cols;
	for (size_t i = 0; i < n; i++)
		R[i] = W[i] - Q[i];
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, rank, -scale, B, rank, A, cols, 1.0f, R, cols);
}

sl_status sl_loftq(const float *W, int rows, int cols, int type, int rank, float scale, int iters, void *packed,
                   float *B, float *A, double *resid, const char *name, sl_error *err)
{
	const int k = rows < cols ? rows : cols;
	if (rank < 1 || rank > k)
		return sl_errorf(err, SL_ERR_ARG, "%s: rank %d is outside 1..%d, the smaller side of %d x %d", name, rank, k,
		                 rows, cols);
	if (iters < 1 || !(scale > 0 && isfinite(scale)))
		return sl_errorf(err, SL_ERR_ARG, "%s: LoftQ needs at least one iteration and a positive scale", name);
	size_t n = (size_t)rows * cols;
	float *R = sl_malloc_array(n, sizeof *R), *Q = sl_malloc_array(n, sizeof *Q);
	float *U = sl_malloc_array((size_t)rows * k, sizeof *U), *VT = sl_malloc_array((size_t)k * cols, sizeof *VT);
	float *s = sl_malloc_array((size_t)k, sizeof *s);
	sl_status st = SL_OK;
	if (!R || !Q || !U || !VT || !s) {
		st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory for LoftQ on %d x %d", name, rows, cols);
		goto done;
	}
	memset(B, 0, (size_t)rows * rank * sizeof *B);
	memset(A, 0, (size_t)rank * cols * sizeof *A);
	for (int t = 0; t < iters; t++) {
		memcpy(R, W, n * sizeof *R);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, rank, -scale, B, rank, A, cols, 1.0f, R,
		            cols);
		sl_dtype_rows_from_float(type, R, packed, rows, cols);
		sl_dtype_rows_to_float(type, packed, Q, rows, cols);
		for (size_t i = 0; i < n; i++)
			R[i] = W[i] - Q[i];
		lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', rows, cols, R, cols, s, U, k, VT, cols);
		if (info) {
			st = sl_errorf(err, SL_ERR_ARG,
			               "%s: the singular value decomposition did not converge (LAPACK sgesdd: %d)", name, (int)info);
			goto done;
		}
		for (int c = 0; c < rank; c++) {
			float h = sqrtf(s[c] / scale);
			for (int i = 0; i < rows; i++)
				B[(size_t)i * rank + c] = U[(size_t)i * k + c] * h;
			for (int j = 0; j < cols; j++)
				A[(size_t)c * cols + j] = VT[(size_t)c * cols + j] * h;
		}
		if (resid) {
			residual(R, W, Q, B, A, rows, cols, rank, scale);
			double ss = 0;
			for (size_t i = 0; i < n; i++)
				ss += (double)R[i] * R[i];
			resid[t] = sqrt(ss);
		}
	}
done:
	free(R);
	free(Q);
	free(U);
	free(VT);
	free(s);
	return st;
}
