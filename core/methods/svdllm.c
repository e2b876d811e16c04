/* SVDLLM (Wang et al. 2024): truncation-aware whitening. With the
 * calibration Hessian H = X^T X / n = L L^T (Cholesky), the output error
 * ||(W - W') X^T||_F^2 is n ||(W - W') L||_F^2, so the truncated
 * decomposition of W L, its second factor multiplied by L^-1, is the rank-r
 * matrix with the least output error on the calibration inputs, and each
 * discarded singular value is exactly the output error it costs. */
#include "method.h"

static const sl_card card_svdllm = {
	.title = "svdllm: whitened low rank",
	.what = "Truncates the decomposition of the weights times the Cholesky factor of the input's second moment, "
	        "so that what is discarded is exactly the output error on the calibration text.",
	.formula = "X^T X = L L^T; W L = U S V^T; W ~ A B with A = U_r S_r^1/2, B = S_r^1/2 V_r^T L^-1; then ||(W - A B) "
	           "X^T||^2 = sum of the discarded s_i^2.",
	.watch = "Heatmap or Evaluate: the least KL of the low-rank methods at the same keep; b charts it against "
	         "quantization.",
	.pitfall = "The Hessian may be near singular (unused channels): damp is added to its diagonal, and too little "
	           "calibration text gives a whitening that fits it too well.",
	.paper = "Wang et al. 2025, truncation-aware singular value decomposition for large language model "
	         "compression (ICLR; arXiv 2403.07378).",
};

const sl_method sl_method_svdllm = {
	.card = &card_svdllm,
	.name = "svdllm",
	.kind = SL_METHOD_QUANT,
	.needs = SL_NEEDS_STATS | SL_NEEDS_HESSIAN,
	.params = sl_lowrank_params,
	.n_params = 3,
	.summary = "low rank, whitened by the Hessian",
	.factor = sl_lowrank_whitened,
	.option_key = "keep",
};
