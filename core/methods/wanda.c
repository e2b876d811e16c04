/* Wanda (Sun et al. 2023): pruning by |w_ij| * ||X_j||, the weight's
 * magnitude times its input channel's norm over the calibration tokens,
 * compared within each output row (or each group of M under N:M). */
#include <math.h>
#include <stdlib.h>

#include "method.h"

static sl_status wanda_prepare(sl_matrix *m, sl_error *err)
{
	int n = 0, g = 0;
	sl_pattern_nm(m->plan->pattern, &n, &g);
	double *norm = sl_malloc_array((size_t)m->cols, sizeof *norm);
	if (!norm)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", m->name);
	for (int c = 0; c < m->cols; c++)
		norm[c] = sqrt(m->st->sum_sq[c]);
	sl_status st = sl_prune_rows(m->W, m->rows, m->cols, norm, m->plan->sparsity, n, g, err);
	free(norm);
	if (!st && !(*m->mask = sl_zero_mask(m->W, (size_t)m->rows * m->cols)))
		st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", m->name);
	return st;
}

static const sl_card card_wanda = {
	.title = "Wanda: weights and activations",
	.what = "Prunes by the weight's size times the norm of the input it multiplies, compared within each output "
	        "row: one pass, no weight update.",
	.formula = "score_ij = |W_ij| * ||X_j||_2 over the calibration tokens; the lowest fraction of each row is "
	           "zeroed.",
	.watch = "Heatmap: against magnitude at 50% and at 2:4; Layer: the input channels whose large norms protect "
	         "their weights.",
	.pitfall = "No weight is adjusted after pruning, so at high sparsity it falls behind methods that update the "
	           "rest.",
	.paper = "Sun et al. 2024, A Simple and Effective Pruning Approach for Large Language Models (ICLR).",
};

const sl_method sl_method_wanda = {
	.card = &card_wanda,
	.name = "wanda",
	.kind = SL_METHOD_PRUNE,
	.needs = SL_NEEDS_STATS,
	.summary = "|W| times input norm",
	.prepare = wanda_prepare,
};
