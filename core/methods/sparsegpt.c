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

const sl_method sl_method_sparsegpt = {
	.name = "sparsegpt",
	.kind = SL_METHOD_PRUNE,
	.needs = SL_NEEDS_STATS | SL_NEEDS_HESSIAN,
	.params = sl_obs_params,
	.n_params = SL_OBS_PARAMS,
	.summary = "Hessian-aware, with updates",
	.prepare = sparsegpt_prepare,
};
