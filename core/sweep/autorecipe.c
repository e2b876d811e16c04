/* Recipes from a sweep: a cell's one-rule recipe, the automatic recipe
 * (one option per row, or none, chosen under a size budget to minimize the
 * summed measured KL, a multiple-choice knapsack), and what the cells
 * predict for any recipe. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

sl_status sl_budget_parse(const char *s, sl_budget_kind *kind, double *value, sl_error *err)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || !(v > 0))
		return sl_errorf(err, SL_ERR_ARG, "budget '%s': expected a positive number with a unit (4.5bpw, 3MB, 50%%)", s);
	static const struct {
		const char *unit;
		sl_budget_kind kind;
		double scale;
	} units[] = {
		{"bpw", SL_BUDGET_BPW, 1}, {"B", SL_BUDGET_BYTES, 1}, {"KB", SL_BUDGET_BYTES, 1e3},
		{"MB", SL_BUDGET_BYTES, 1e6}, {"GB", SL_BUDGET_BYTES, 1e9}, {"KiB", SL_BUDGET_BYTES, 1024},
		{"MiB", SL_BUDGET_BYTES, 1048576}, {"GiB", SL_BUDGET_BYTES, 1073741824}, {"%", SL_BUDGET_SPARSITY, 0.01},
		{"sparsity", SL_BUDGET_SPARSITY, 1},
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (!strcmp(end, units[i].unit)) {
			*kind = units[i].kind;
			*value = v * units[i].scale;
			if (*kind == SL_BUDGET_SPARSITY && *value >= 1)
				return sl_errorf(err, SL_ERR_ARG, "budget '%s': a sparsity must be below 100%%", s);
			return SL_OK;
		}
	return sl_errorf(err, SL_ERR_ARG, "budget '%s': unknown unit '%s' (bpw, B, KB, MB, GB, KiB, MiB, GiB, %%, sparsity)",
	                 s, end);
}

/* What choosing option o (or -1: unchanged) for a row costs against the
 * budget, in the budget's own unit (bytes or nonzero weights). */
static double row_cost(const sl_sweep *sw, int r, int o, sl_budget_kind kind)
{
	if (kind == SL_BUDGET_SPARSITY) {
		double s = o >= 0 && sw->opts[o].rule.has_sparsity ? sw->opts[o].rule.sparsity : 0;
		return sw->rows[r].params * (1 - s);
	}
	if (o < 0) {
		double b = 0;
		for (int k = 0; k < sw->rows[r].n_mods; k++)
			b += (double)sw->mods[sw->rows[r].first_mod + k].w->nbytes;
		return b;
	}
	return cell_of(sw, r, o)->bytes;
}

static double row_loss(const sl_sweep *sw, int r, int o)
{
	return o < 0 ? 0 : fmax(cell_of(sw, r, o)->kl, 0);
}

static bool usable(const sl_sweep *sw, int r, int o)
{
	const sl_sweep_cell *c = cell_of(sw, r, o);
	return c->done && !c->failed && isfinite(c->kl) && isfinite(c->bytes);
}

/* Each row's choice minimizing loss + lambda * cost; returns the total cost. */
static double choose(const sl_sweep *sw, sl_budget_kind kind, double lambda, int *choice)
{
	double total = 0;
	for (int r = 0; r < sw->n_rows; r++) {
		int best = -1;
		double best_v = row_loss(sw, r, -1) + lambda * row_cost(sw, r, -1, kind);
		for (int o = 0; o < sw->n_opts; o++) {
			if (!usable(sw, r, o))
				continue;
			double v = row_loss(sw, r, o) + lambda * row_cost(sw, r, o, kind);
			if (v < best_v) {
				best_v = v;
				best = o;
			}
		}
		choice[r] = best;
		total += row_cost(sw, r, best, kind);
	}
	return total;
}

void sl_autorecipe_result_free(sl_autorecipe_result *res)
{
	free(res->choice);
	res->choice = NULL;
}

/* The recipe's calibration settings are the sweep's, so that methods
 * needing statistics see the same ones. */
static void set_calib(const sl_sweep *sw, sl_recipe *rec)
{
	snprintf(rec->calib.text, sizeof rec->calib.text, "%s", sw->text_path);
	rec->calib.tokens = sw->calib_tokens;
	rec->calib.ctx = sw->n_ctx;
	rec->calib.seed = sw->seed;
}

sl_rule sl_sweep_cell_rule(const sl_sweep *sw, int row, int col)
{
	sl_rule rule = sw->opts[col].rule;
	if (sw->unit == SL_SWEEP_BLOCKS)
		snprintf(rule.match, sizeof rule.match, "blk.%d.*", sw->rows[row].block);
	else
		snprintf(rule.match, sizeof rule.match, "%s", sw->rows[row].name);
	return rule;
}

sl_recipe *sl_sweep_cell_recipe(const sl_sweep *sw, int row, int col)
{
	sl_recipe *rec = sl_recipe_new();
	if (!rec)
		return NULL;
	sl_rule rule = sl_sweep_cell_rule(sw, row, col);
	if (sl_recipe_add_rule(rec, &rule) < 0) {
		sl_recipe_free(rec);
		return NULL;
	}
	set_calib(sw, rec);
	return rec;
}

sl_status sl_autorecipe(const sl_sweep *sw, sl_budget_kind kind, double budget, sl_recipe **out,
                        sl_autorecipe_result *res, sl_error *err)
{
	*out = NULL;
	memset(res, 0, sizeof *res);
	const sl_model *m = sw->m;
	for (int r = 0; r < sw->n_rows; r++)
		for (int o = 0; o < sw->n_opts; o++)
			if (!cell_of(sw, r, o)->done)
				return sl_errorf(err, SL_ERR_ARG, "the sweep is not finished (%d of %d cells); run it first",
				                 sl_sweep_done(sw), sw->n_rows * sw->n_opts);
	/* The budget in the cost's unit: bytes of the swept rows (the rest of
	 * the model stays as it is), or nonzero weights of the swept rows. */
	double swept_bytes = 0, swept_params = 0;
	for (int r = 0; r < sw->n_rows; r++) {
		swept_bytes += row_cost(sw, r, -1, SL_BUDGET_BYTES);
		swept_params += sw->rows[r].params;
	}
	double fixed_bytes = (double)sl_model_bytes(m) - swept_bytes, params = (double)sl_model_n_params(m);
	double cap;
	if (kind == SL_BUDGET_BPW)
		cap = budget * params / 8.0 - fixed_bytes;
	else if (kind == SL_BUDGET_BYTES)
		cap = budget - fixed_bytes;
	else
		cap = (1 - budget) * swept_params;
	int *choice = malloc((size_t)sw->n_rows * sizeof *choice);
	int *trial = malloc((size_t)sw->n_rows * sizeof *trial);
	if (!choice || !trial) {
		free(choice);
		free(trial);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	/* The cheapest reachable: a very large multiplier picks the least cost. */
	double cheapest = choose(sw, kind, 1e30, choice);
	if (cheapest > cap) {
		free(choice);
		free(trial);
		double best = kind == SL_BUDGET_BPW ? 8.0 * (cheapest + fixed_bytes) / params :
		              kind == SL_BUDGET_BYTES ? cheapest + fixed_bytes : 1 - cheapest / swept_params;
		return sl_errorf(err, SL_ERR_ARG,
		                 "the budget cannot be met with these options: the smallest they reach is %.4g%s",
		                 kind == SL_BUDGET_SPARSITY ? 100 * best : best,
		                 kind == SL_BUDGET_BPW ? " bits per weight" : kind == SL_BUDGET_BYTES ? " bytes" : "% sparsity");
	}
	/* The smallest multiplier whose choice fits: bisection in log space. */
	double lo = 1e-30, hi = 1e30;
	for (int it = 0; it < 200 && hi / lo > 1 + 1e-9; it++) {
		double mid = sqrt(lo * hi);
		if (choose(sw, kind, mid, trial) <= cap) {
			hi = mid;
			memcpy(choice, trial, (size_t)sw->n_rows * sizeof *choice);
		} else {
			lo = mid;
		}
	}
	if (choose(sw, kind, 0, trial) <= cap) /* everything fits unchanged */
		memcpy(choice, trial, (size_t)sw->n_rows * sizeof *choice);
	free(trial);
	/* Spend what is left: the change with the best loss saved per cost added. */
	double used = 0;
	for (int r = 0; r < sw->n_rows; r++)
		used += row_cost(sw, r, choice[r], kind);
	for (;;) {
		int br = -1, bo = -2;
		double best_ratio = 0;
		for (int r = 0; r < sw->n_rows; r++)
			for (int o = -1; o < sw->n_opts; o++) {
				if (o == choice[r] || (o >= 0 && !usable(sw, r, o)))
					continue;
				double dc = row_cost(sw, r, o, kind) - row_cost(sw, r, choice[r], kind);
				double dl = row_loss(sw, r, choice[r]) - row_loss(sw, r, o);
				if (dl <= 0 || used + dc > cap)
					continue;
				double ratio = dc <= 0 ? INFINITY : dl / dc;
				if (ratio > best_ratio) {
					best_ratio = ratio;
					br = r;
					bo = o;
				}
			}
		if (br < 0)
			break;
		used += row_cost(sw, br, bo, kind) - row_cost(sw, br, choice[br], kind);
		choice[br] = bo;
	}

	sl_recipe *rec = sl_recipe_new();
	if (!rec) {
		free(choice);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	snprintf(rec->name, sizeof rec->name, "automatic (%s)", sw->m->cfg.arch_name);
	set_calib(sw, rec);
	double zeros = 0, bytes = fixed_bytes;
	for (int r = 0; r < sw->n_rows; r++) {
		bytes += row_cost(sw, r, choice[r], SL_BUDGET_BYTES);
		zeros += sw->rows[r].params - row_cost(sw, r, choice[r], SL_BUDGET_SPARSITY);
		res->predicted_kl += row_loss(sw, r, choice[r]);
		if (choice[r] < 0)
			continue;
		sl_rule rule = sl_sweep_cell_rule(sw, r, choice[r]);
		snprintf(rule.note, sizeof rule.note, "KL %.3g measured alone", cell_of(sw, r, choice[r])->kl);
		if (sl_recipe_add_rule(rec, &rule) < 0) {
			sl_recipe_free(rec);
			free(choice);
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		}
	}
	res->bytes = bytes;
	res->bpw = 8.0 * bytes / params;
	res->sparsity = swept_params > 0 ? zeros / swept_params : 0;
	res->choice = choice;
	res->n_rows = sw->n_rows;
	*out = rec;
	return SL_OK;
}

static bool plan_changes(const sl_module_plan *p)
{
	return p->format || p->sparsity > 0;
}

/* Whether option o gives every module of row r the plan the recipe gives it. */
static bool option_matches(const sl_sweep *sw, int r, int o, const sl_module_plan *want)
{
	sl_recipe one = {0};
	one.def = sw->opts[o].rule;
	for (int k = 0; k < sw->rows[r].n_mods; k++) {
		sl_module_plan p;
		sl_recipe_resolve(&one, &sw->mods[sw->rows[r].first_mod + k], &p);
		if (!sl_plan_equal(&p, &want[k]))
			return false;
	}
	return true;
}

double sl_sweep_predict(const sl_sweep *sw, const sl_recipe *r, const char *metric)
{
	bool quad = sl_sweep_metric_quadrature(sl_sweep_metric_find(metric));
	double sum = 0;
	sl_module_plan *want = NULL;
	for (int row = 0; row < sw->n_rows; row++) {
		int n = sw->rows[row].n_mods;
		sl_module_plan *w = realloc(want, (size_t)(n ? n : 1) * sizeof *w);
		if (!w) {
			sum = NAN;
			break;
		}
		want = w;
		bool changed = false;
		for (int k = 0; k < n; k++) {
			sl_recipe_resolve(r, &sw->mods[sw->rows[row].first_mod + k], &want[k]);
			changed = changed || plan_changes(&want[k]);
		}
		if (!changed)
			continue;
		double v = NAN;
		for (int o = 0; o < sw->n_opts && !isfinite(v); o++)
			if (option_matches(sw, row, o, want))
				v = sl_sweep_metric(cell_of(sw, row, o), metric);
		sum += quad ? v * v : v;
		if (!isfinite(sum))
			break;
	}
	free(want);
	return quad ? sqrt(sum) : sum;
}
