/* LoftQ's alternation for one matrix: rounding to nearest through the
 * storage type, then the best low-rank approximation of what rounding
 * left (the low-rank methods' factorization), each step from the other's
 * latest result. */
#include "loftq.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/dtype.h"
#include "methods/method.h"

static const sl_card card_loftq = {
	.title = "LoftQ: quantization and adapters chosen together",
	.what = "Before LoRA training, alternates between quantizing what the adapters do not cover and fitting the "
	        "adapters to what quantization lost, so that the frozen weights plus adapters start close to the "
	        "base.",
	.formula = "repeat t times: Q = quant(W - s B A); B A = best rank-r approximation of (W - Q) / s; starting from "
	           "B A = 0.",
	.watch = "Heal: the before figures stay those of plain quantization; compare after figures of LoRA with and "
	         "without loftq at the same rank and steps.",
	.pitfall = "Each alternation costs a decomposition per matrix; beyond a few the gain is small.",
	.paper = "Li et al. 2024, LoftQ: LoRA-Fine-Tuning-Aware Quantization for Large Language Models (ICLR).",
};

const sl_card *sl_loftq_card(void)
{
	return &card_loftq;
}

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
	if (iters < 1 || !(scale > 0 && isfinite(scale)))
		return sl_errorf(err, SL_ERR_ARG, "%s: LoftQ needs at least one iteration and a positive scale", name);
	size_t n = (size_t)rows * cols;
	float *R = sl_malloc_array(n, sizeof *R), *Q = sl_malloc_array(n, sizeof *Q);
	sl_status st = SL_OK;
	if (!R || !Q) {
		st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory for LoftQ on %d x %d", name, rows, cols);
		goto done;
	}
	/* The low-rank methods' factorization splits the singular values
	 * evenly (B = U sqrt(S), A = sqrt(S) V^T); the adapter's scale then
	 * divides both by sqrt(scale). */
	const float unscale = 1.0f / sqrtf(scale);
	for (int t = 0; t < iters; t++) {
		memcpy(R, W, n * sizeof *R);
		if (t) /* B A starts at zero; the factorization checks the rank */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, rank, -scale, B, rank, A, cols, 1.0f, R,
			            cols);
		sl_dtype_rows_from_float(type, R, packed, rows, cols);
		sl_dtype_rows_to_float(type, packed, Q, rows, cols);
		for (size_t i = 0; i < n; i++)
			R[i] = W[i] - Q[i];
		sl_factor_job j = {.name = name, .n = 1, .W = R, .rows = rows, .cols = cols, .rank = rank, .A = B, .B = A};
		if ((st = sl_lowrank_factor(&j, NULL, NULL, NULL, err)))
			goto done;
		for (size_t i = 0; i < (size_t)rows * rank; i++)
			B[i] *= unscale;
		for (size_t i = 0; i < (size_t)rank * cols; i++)
			A[i] *= unscale;
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
	return st;
}
