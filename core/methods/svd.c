/* SVD: the weight's truncated singular value decomposition, W ~ U_r S_r
 * V_r^T, kept as two factors U_r S_r^1/2 and S_r^1/2 V_r^T. Of all rank-r
 * matrices it is the nearest to W (Eckart-Young), which is not the same as
 * the nearest in what the layer outputs: the methods after it weigh the
 * error by the inputs. */
#include "method.h"

static sl_status svd_factor(sl_factor_job *j, sl_error *err)
{
	return sl_lowrank_factor(j, NULL, NULL, NULL, err);
}

static const sl_card card_svd = {
	.title = "SVD: truncated low rank",
	.what = "Replaces a weight matrix by two thin factors from its singular value decomposition, keeping the "
	        "largest singular values: fewer parameters, two smaller products instead of one.",
	.formula = "W ~ A B, A = U_r S_r^1/2, B = S_r^1/2 V_r^T; the error ||W - A B||_F^2 is the sum of the discarded "
	           "s_i^2 (Eckart-Young); rank r = floor(keep * rows * cols / (rows + cols)).",
	.watch = "Model: each module's rank; Heatmap's KL-against-bytes chart (b): where low rank stands against "
	         "quantization at the same size.",
	.pitfall = "Trained weights have flat spectra: keeping half the parameters often costs more KL than 4-bit "
	           "rounding does at a quarter of the bytes.",
	.paper = "Eckart and Young 1936, The approximation of one matrix by another of lower rank.",
};

const sl_method sl_method_svd = {
	.card = &card_svd,
	.name = "svd",
	.kind = SL_METHOD_QUANT,
	.params = sl_lowrank_params,
	.n_params = 2,
	.summary = "low rank: truncated SVD",
	.factor = svd_factor,
	.option_key = "keep",
};
