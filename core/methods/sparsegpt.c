/* SparseGPT (Frantar and Alistarh 2023): pruning inside the Optimal Brain
 * Surgeon solve (obs.c), block of columns by block, the weights of least
 * w^2 / [H^-1]_jj removed and their error spread over the columns not yet
 * done; it rounds in the same pass when the plan quantizes too. */
#include "method.h"

static sl_status sparsegpt_prepare(sl_matrix *m, sl_error *err)
{
	(void)err;
		int n = 0, g = 0;
	if (sl_pattern_nm(m->plan->pattern, &n, &g)) {
		m->obs->keep_n = n;
		m->obs->group_m = g;
	} else {
		m->obs->sparsity = m->plan->sparsity;
	}
	sl_obs_settings(m->obs, m->plan);
	m->solve = true;
	return SL_OK;
}

static const sl_card card_sparsegpt = {
	.title = "SparseGPT: one-shot pruning with updates",
	.what = "Chooses what to prune and adjusts the remaining weights of the row to make up for it, column by "
	        "column, through the inverse Hessian of the layer's inputs (Optimal Brain Surgeon made cheap).",
	.formula = "mask by w_ij^2 / [H^-1]_jj per block of columns; pruning w_j updates the rest: W[:, k>j] -= (w_j / "
	           "[H^-1]_jj) [H^-1]_j,k>j, H = X^T X + damp.",
	.watch = "Heatmap and Evaluate: the least KL at 50% and at 2:4 of the pruning criteria, most visible at high "
	         "sparsity.",
	.pitfall = "The Hessian comes from the calibration text, so the same caveats apply: few tokens overfit it.",
	.paper = "Frantar and Alistarh 2023, SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot "
	         "(ICML).",
};

const sl_method sl_method_sparsegpt = {
	.card = &card_sparsegpt,
	.name = "sparsegpt",
	.kind = SL_METHOD_PRUNE,
	.needs = SL_NEEDS_STATS | SL_NEEDS_HESSIAN,
	.params = sl_obs_params,
	.n_params = SL_OBS_PARAMS,
	.summary = "Hessian-aware, with updates",
	.prepare = sparsegpt_prepare,
};
