/* GPTQ (Frantar et al. 2022): rounds the columns one at a time on the
 * format's grid, each column's rounding error spread over the columns not
 * yet done through the inverse Hessian (the solver in obs.c), so the
 * output error on the calibration inputs stays small. */
#include <math.h>

#include "method.h"

static sl_status gptq_prepare(sl_matrix *m, sl_error *err)
{
	const char *why = "";
	*m->grid = sl_qgrid_new(m->type, m->rows, m->cols, &why);
	if (!*m->grid)
		return sl_errorf(err, SL_ERR_UNSUPPORTED, "%s", why);
	sl_obs_settings(m->obs, m->plan);
	m->solve = true;
	return SL_OK;
}

static const sl_card card_gptq = {
	.title = "GPTQ: second-order rounding",
	.what = "Rounds one input column at a time and spreads each column's rounding error over the columns not yet "
	        "rounded, weighted by the inverse Hessian of the layer's inputs, so the layer's output on calibration "
	        "text changes as little as possible.",
	.formula = "minimize ||W X - W_q X||^2 with H = X^T X: for column j, e = (w_j - q(w_j)) / [H^-1]_jj, then W[:, "
	           "k>j] -= e * [H^-1]_j,k>j (Cholesky of H^-1, columns in lazy batches, largest diag(H) first with "
	           "act_order).",
	.watch = "Evaluate: KL against rounding to nearest on the same format, the gap widens as bits shrink; Heatmap: "
	         "a gptq:FORMAT column beside the bare format.",
	.pitfall = "The Hessian comes from the calibration text: too few tokens, or text unlike the evaluation text, and "
	           "it fits the calibration instead; damp steadies H when it is near singular.",
	.paper = "Frantar et al. 2023, GPTQ: Accurate Post-Training Quantization for Generative Pre-trained "
	         "Transformers (ICLR).",
};

const sl_method sl_method_gptq = {
	.card = &card_gptq,
	.name = "gptq",
	.kind = SL_METHOD_QUANT,
	.needs = SL_NEEDS_STATS | SL_NEEDS_HESSIAN,
	.params = sl_obs_params,
	.n_params = SL_OBS_PARAMS,
	.summary = "Hessian-aware, column by column",
	.prepare = gptq_prepare,
};
