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

const sl_method sl_method_gptq = {
	.name = "gptq",
	.kind = SL_METHOD_QUANT,
	.needs = SL_NEEDS_STATS | SL_NEEDS_HESSIAN,
	.params = sl_obs_params,
	.n_params = SL_OBS_PARAMS,
	.summary = "Hessian-aware, column by column",
	.prepare = gptq_prepare,
};
