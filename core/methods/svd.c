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

const sl_method sl_method_svd = {
	.name = "svd",
	.kind = SL_METHOD_QUANT,
	.params = sl_lowrank_params,
	.n_params = 2,
	.summary = "low rank: truncated SVD",
	.factor = svd_factor,
	.option_key = "keep",
};
