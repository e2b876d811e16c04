/* Basis Sharing (Wang et al. 2024): the same module of consecutive blocks
 * shares one basis. Their weights, stacked, are factored as one through
 * the whitening of their pooled input Hessians (as one is whitened alone):
 * [W_1; ...; W_k] ~ [A_1; ...; A_k] B. Each block keeps its coefficients
 * A_i, and the basis B is stored once, so at the same size the rank can be
 * higher than each module alone could afford. Without Hessians the
 * stacked weights are factored as they are. */
#include "method.h"

static const sl_card card_share = {
	.title = "Basis sharing across blocks",
	.what = "The same module of several consecutive blocks is stacked and factored together: each keeps its own "
	        "coefficients, one basis serves them all, so the basis is paid for once.",
	.formula = "[W_1; ...; W_n] ~ [A_1; ...; A_n] B, from the whitened decomposition of the stack; rank from keep "
	           "over the stacked rows.",
	.watch = "Model: the blocks that share a basis and the rank it gives; Heatmap: share-2 against one-block low "
	         "rank at the same bytes.",
	.pitfall = "Blocks far apart do different work: sharing over too many (the blocks parameter) costs more than it "
	           "saves.",
	.paper = "Wang et al. 2025, Basis Sharing: Cross-Layer Parameter Sharing for Large Language Model Compression "
	         "(ICLR).",
};

const sl_method sl_method_share = {
	.card = &card_share,
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
