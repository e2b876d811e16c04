/* Which technique wins at which size: the options of a sensitivity sweep
 * as points of KL against bytes, for one row (a module or a block) or for
 * the whole model, each labelled quantization, pruning or low rank, with
 * the frontier (no option as small or smaller measured less KL). What the
 * workbench's chart and its SVG picture draw. */
#ifndef SL_TRADEOFF_H
#define SL_TRADEOFF_H

#include <stdbool.h>

#include "sweep/sweep.h"

typedef enum { SL_TECH_QUANT = 0, SL_TECH_PRUNE, SL_TECH_LOWRANK, SL_TECH_COUNT } sl_technique;

/* What a rule does to a module's weights: low rank when its method
 * factors, pruning when it removes weights, quantization otherwise. */
sl_technique sl_rule_technique(const sl_rule *r);
/* "quantization", "pruning", "low rank". */
const char *sl_technique_name(sl_technique t);

typedef struct {
	int opt;             /* the option (column) */
	sl_technique tech;
	double bytes, kl;
	bool frontier;       /* no option of no more bytes has less KL */
} sl_tradeoff;

/* The points of cells (rows x cols, row-major) under opts: for row >= 0
 * its cells; for row < 0 the whole model of model_bytes, each option
 * given to every row (bytes and KL summed over the rows, as the automatic
 * recipe predicts them) and what the sweep leaves alone added. Options not
 * measured (or failed) in every row they take are left out. Sorted by
 * bytes, then KL; returns the count (out holds cols). *before gets the
 * bytes of the row, or of the model, as they are. */
int sl_tradeoffs(const sl_sweep_cell *cells, int rows, int cols, const sl_sweep_option *opts, int row,
                 double model_bytes, sl_tradeoff *out, double *before);

#endif
