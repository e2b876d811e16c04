/* KL against bytes per option and technique, and the frontier of the
 * options no smaller option beats (tradeoff.h). */
#include "tradeoff.h"

#include <math.h>
#include <stdlib.h>

#include "methods/method.h"

sl_technique sl_rule_technique(const sl_rule *r)
{
	const sl_method *m = r->has_method ? sl_method_find(SL_METHOD_QUANT, r->method) : NULL;
	if (m && m->factor)
		return SL_TECH_LOWRANK;
	if ((r->has_sparsity && r->sparsity > 0) || r->has_pattern)
		return SL_TECH_PRUNE;
	return SL_TECH_QUANT;
}

const char *sl_technique_name(sl_technique t)
{
	static const char *const names[SL_TECH_COUNT] = {"quantization", "pruning", "low rank"};
	return t >= 0 && t < SL_TECH_COUNT ? names[t] : "?";
}

static int by_bytes(const void *a, const void *b)
{
	const sl_tradeoff *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? -1 : 1;
	if (x->kl != y->kl)
		return x->kl < y->kl ? -1 : 1;
	return x->opt - y->opt;
}

/* A row's bytes as they are, from any cell that measured them (0: none). */
static double row_before(const sl_sweep_cell *cells, int cols, int r)
{
	for (int c = 0; c < cols; c++)
		if (cells[(size_t)r * cols + c].done && cells[(size_t)r * cols + c].bytes_before > 0)
			return cells[(size_t)r * cols + c].bytes_before;
	return 0;
}

int sl_tradeoffs(const sl_sweep_cell *cells, int rows, int cols, const sl_sweep_option *opts, int row,
                 double model_bytes, sl_tradeoff *out, double *before)
{
	double fixed = row < 0 ? model_bytes : 0;
	for (int r = 0; row < 0 && r < rows; r++)
		fixed -= row_before(cells, cols, r);
	*before = row < 0 ? model_bytes : row_before(cells, cols, row);
	int n = 0;
	for (int c = 0; c < cols; c++) {
		double bytes = fixed, kl = 0;
		bool ok = true;
		for (int r = row < 0 ? 0 : row; ok && r < (row < 0 ? rows : row + 1); r++) {
			const sl_sweep_cell *cell = &cells[(size_t)r * cols + c];
			ok = cell->done && !cell->failed && isfinite(cell->kl) && isfinite(cell->bytes);
			bytes += cell->bytes;
			kl += fmax(cell->kl, 0);
		}
		if (ok)
			out[n++] = (sl_tradeoff){c, sl_rule_technique(&opts[c].rule), bytes, kl, false};
	}
	qsort(out, (size_t)n, sizeof *out, by_bytes);
	double best = INFINITY;
	for (int i = 0; i < n; i++)
		if (out[i].kl < best) {
			out[i].frontier = true;
			best = out[i].kl;
		}
	return n;
}
