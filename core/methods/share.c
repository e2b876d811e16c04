/* Basis Sharing (Wang et al. 2024): the same module of consecutive blocks
 * shares one basis. Their weights, stacked, are factored as one through
 * the whitening of their pooled input Hessians (as one is whitened alone):
 * [W_1; ...; W_k] ~ [A_1; ...; A_k] B. Each block keeps its coefficients
 * A_i, and the basis B is stored once, so at the same size the rank can be
 * higher than each module alone could afford. Without Hessians the
 * stacked weights are factored as they are. */
#include "method.h"

const sl_method sl_method_share = {
	.name = "share",
	.kind = SL_METHOD_QUANT,
	.needs = SL_NEEDS_STATS | SL_NEEDS_HESSIAN,
	.params = sl_lowrank_params,
	.n_params = SL_LOWRANK_N_PARAMS,
	.summary = "low rank, one basis for several blocks",
	.factor = sl_lowrank_whitened,
	.shares = true,
	.option_key = "blocks",
};
