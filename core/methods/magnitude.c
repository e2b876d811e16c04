/* Pruning by magnitude: the weights of least |w| in each output row (or in
 * each group of M under N:M) are set to zero. */
#include "method.h"

static sl_status magnitude_prepare(sl_matrix *m, sl_error *err)
{
	int n = 0, g = 0;
	sl_pattern_nm(m->plan->pattern, &n, &g);
	sl_status st = sl_prune_rows(m->W, m->rows, m->cols, NULL, m->plan->sparsity, n, g, err);
	if (!st && !(*m->mask = sl_zero_mask(m->W, (size_t)m->rows * m->cols)))
		st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", m->name);
	return st;
}

const sl_method sl_method_magnitude = {
	.name = "magnitude",
	.kind = SL_METHOD_PRUNE,
	.summary = "smallest |W|",
	.prepare = magnitude_prepare,
};
