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

static const sl_card card_magnitude = {
	.title = "Magnitude pruning",
	.what = "Zeroes the weights of smallest absolute value, a fraction of each row: the simplest criterion, no "
	        "calibration.",
	.formula = "score_ij = |W_ij|; in each row the lowest-scoring fraction (or N of every M) is set to zero.",
	.watch = "Heatmap: sparse-50% against the calibrated criteria; Evaluate: KL as sparsity rises, slowly then "
	         "steeply.",
	.pitfall = "Ignores the inputs: a small weight on a channel with huge activations matters more than a large one "
	           "on a quiet channel, and large language models have such channels.",
	.paper = "Han et al. 2015, Learning both Weights and Connections for Efficient Neural Networks (NeurIPS).",
};

const sl_method sl_method_magnitude = {
	.card = &card_magnitude,
	.name = "magnitude",
	.kind = SL_METHOD_PRUNE,
	.summary = "smallest |W|",
	.prepare = magnitude_prepare,
};
