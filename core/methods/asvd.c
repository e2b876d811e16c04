/* ASVD (Yuan et al. 2023): activation-aware low rank. Input channels that
 * carry large activations matter more, so W's columns are multiplied by
 * s_j = (mean |x_j|)^alpha before the decomposition is truncated and the
 * scaling is undone in the second factor: W ~ (U_r S_r^1/2)(S_r^1/2 V_r^T
 * diag(s)^-1). */
#include <math.h>
#include <stdlib.h>

#include "method.h"

static const sl_param_spec params[] = {
	SL_LOWRANK_PARAMS,
	{"alpha", 0, 1, 0.5, false, false, "strength of the activation scaling", false},
};

static sl_status asvd_factor(sl_factor_job *j, sl_error *err)
{
	double alpha = sl_plan_value(j->plan, &params[2]);
	float *s = sl_calloc((size_t)j->cols, sizeof *s);
	if (!s)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", j->name);
	/* Matrices sharing a basis pool their inputs' magnitudes. */
	for (int c = 0; c < j->cols; c++) {
		double a = 0;
		for (int k = 0; k < j->n; k++)
			a += j->st[k]->sum_abs[c] / (double)(j->st[k]->n_tokens > 0 ? j->st[k]->n_tokens : 1) / j->n;
		s[c] = (float)pow(fmax(a, 1e-6), alpha);
	}
	sl_status st = sl_lowrank_factor(j, s, NULL, NULL, err);
	free(s);
	return st;
}

static const sl_card card_asvd = {
	.title = "ASVD: activation-aware low rank",
	.what = "Truncates the decomposition of the weights scaled by the typical size of each input channel, so the "
	        "directions that the activations actually use are kept.",
	.formula = "W ~ (A B') diag(s)^-1 with A B' the best rank-r approximation of W diag(s), s_j = mean|x_j|^alpha "
	           "over the calibration text.",
	.watch = "Heatmap: asvd against plain truncation at the same keep; the gap is how uneven the layer's input "
	         "channels are.",
	.pitfall = "The scaling only reweights channels: it ignores correlations between them, which whitening by the "
	           "full Hessian takes into account.",
	.paper = "Yuan et al. 2023, ASVD: Activation-aware Singular Value Decomposition for Compressing Large Language "
	         "Models.",
};

const sl_method sl_method_asvd = {
	.card = &card_asvd,
	.name = "asvd",
	.kind = SL_METHOD_QUANT,
	.needs = SL_NEEDS_STATS,
	.params = params,
	.n_params = 3,
	.summary = "low rank, scaled by activations",
	.factor = asvd_factor,
	.option_key = "keep",
};
