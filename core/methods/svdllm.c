/* SVDLLM (Wang et al. 2024): truncation-aware whitening. With the
 * calibration Hessian H = X^T X / n = L L^T (Cholesky), the output error
 * ||(W - W') X^T||_F^2 is n ||(W - W') L||_F^2, so the truncated
 * decomposition of W L, its second factor multiplied by L^-1, is the rank-r
 * matrix with the least output error on the calibration inputs, and each
 * discarded singular value is exactly the output error it costs. */
#include "method.h"

const sl_method sl_method_svdllm = {
	.name = "svdllm",
	.kind = SL_METHOD_QUANT,
	.needs = SL_NEEDS_STATS | SL_NEEDS_HESSIAN,
	.params = sl_lowrank_params,
	.n_params = 3,
	.summary = "low rank, whitened by the Hessian",
	.factor = sl_lowrank_whitened,
	.option_key = "keep",
};
