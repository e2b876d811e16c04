/* Sensitivity sweeps in the workbench: a sweep runs as a job whose cells
 * reach the Heatmap view as each finishes; a cancelled sweep keeps its
 * cells and a new :sweep goes on from them; the sweep lives in the session
 * and comes back with it (only the base model's caches are computed
 * again). Also its export, the rows the heatmap shows, and the automatic
 * recipe chosen from it and then measured for real. */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/progress.h"
#include "core/fileio.h"
#include "core/methods/method.h"
#include "tui.h"
#include "views/heat-svg.h"
#include "views/tradeoff-svg.h"

/* --- the heatmap's copy of a sweep ------------------------------------------ */

static void heat_free_grid(sl_heat *h)
{
	free(h->row);
	free(h->opt);
	free(h->cell);
	free(h->rho);
	h->row = NULL;
	h->opt = NULL;
	h->cell = NULL;
	h->rho = NULL;
	h->rows = h->cols = h->done = 0;
}

void sl_heat_free(sl_heat *h)
{
	heat_free_grid(h);
	free(h->order);
	memset(h, 0, sizeof *h);
}

static bool heat_alloc(sl_heat *h, int rows, int cols)
{
	heat_free_grid(h);
	h->row = sl_calloc((size_t)rows, sizeof *h->row);
	h->opt = sl_calloc((size_t)cols, sizeof *h->opt);
	h->cell = sl_calloc((size_t)rows * cols, sizeof *h->cell);
	h->rho = sl_calloc((size_t)(cols + 1) * SL_PROXY_COUNT, sizeof *h->rho);
	if (!h->row || !h->opt || !h->cell || !h->rho) {
		heat_free_grid(h);
		return false;
	}
	h->rows = rows;
	h->cols = cols;
	return true;
}

/* Each option's and the overall rank correlation of each proxy with KL. */
static void sweep_rho(const sl_sweep *sw, double *rho)
{
	int cols = sl_sweep_cols(sw);
	for (int c = 0; c <= cols; c++)
		for (int p = 0; p < SL_PROXY_COUNT; p++)
			rho[c * SL_PROXY_COUNT + p] = sl_sweep_spearman(sw, p, c < cols ? c : -1);
}

/* The grid of sw (which nothing else may change meanwhile). */
static bool heat_take(sl_heat *h, const sl_sweep *sw)
{
	int rows = sl_sweep_rows(sw), cols = sl_sweep_cols(sw);
	if (!heat_alloc(h, rows, cols))
		return false;
	for (int r = 0; r < rows; r++) {
		snprintf(h->row[r].name, sizeof h->row[r].name, "%s", sl_sweep_row_name(sw, r));
		h->row[r].block = sl_sweep_row_block(sw, r);
		h->row[r].params = sl_sweep_row_params(sw, r);
		for (int c = 0; c < cols; c++)
			h->cell[(size_t)r * cols + c] = *sl_sweep_cell_at(sw, r, c);
	}
	for (int c = 0; c < cols; c++)
		h->opt[c] = *sl_sweep_col(sw, c);
	sweep_rho(sw, h->rho);
	h->done = sl_sweep_done(sw);
	h->base_ppl = sl_sweep_base_ppl(sw);
	snprintf(h->fisher_note, sizeof h->fisher_note, "%s", sl_sweep_fisher_note(sw));
	return true;
}

/* Copies src's grid into dst: only what changes while a sweep runs, unless
 * whole (a new sweep) or the shapes differ. */
static bool heat_copy(sl_heat *dst, const sl_heat *src, bool whole)
{
	if (whole || dst->rows != src->rows || dst->cols != src->cols || !dst->cell) {
		if (!heat_alloc(dst, src->rows, src->cols))
			return false;
		memcpy(dst->row, src->row, (size_t)src->rows * sizeof *src->row);
		memcpy(dst->opt, src->opt, (size_t)src->cols * sizeof *src->opt);
		dst->base_ppl = src->base_ppl;
		snprintf(dst->fisher_note, sizeof dst->fisher_note, "%s", src->fisher_note);
	}
	memcpy(dst->cell, src->cell, (size_t)src->rows * src->cols * sizeof *src->cell);
	memcpy(dst->rho, src->rho, (size_t)(src->cols + 1) * SL_PROXY_COUNT * sizeof *src->rho);
	dst->done = src->done;
	return true;
}

/* What kind of module each row is, for the filter and the labels. */
static void heat_kinds(sl_tui *t)
{
	sl_heat *h = &t->app.heat;
	for (int r = 0; r < h->rows; r++) {
		int mi = sl_app_module_index(&t->app, h->row[r].name);
		snprintf(h->row[r].kind, sizeof h->row[r].kind, "%s",
		         h->unit == SL_SWEEP_BLOCKS ? "block" : mi >= 0 ? sl_module_kind_name(t->app.mods[mi].kind) : "");
	}
}

/* A word without wildcards matches anywhere in the name. */
static bool row_shown(const sl_heat *h, int r, const char *filter)
{
	if (!filter[0])
		return true;
	char pat[160];
	snprintf(pat, sizeof pat, strpbrk(filter, "*?[") ? "%s" : "*%s*", filter);
	return !fnmatch(pat, h->row[r].name, 0) || !fnmatch(pat, h->row[r].kind, 0);
}

void sl_heat_refresh(sl_tui *t)
{
	sl_heat *h = &t->app.heat;
	const sl_session *s = t->app.ses;
	const char *metric = s->view.heat.metric;
	h->lo = INFINITY;
	h->hi = -INFINITY;
	for (int i = 0; i < h->rows * h->cols; i++) {
		double v = sl_sweep_metric(&h->cell[i], metric);
		if (isfinite(v)) {
			v = log10(fmax(v, 1e-6));
			h->lo = fmin(h->lo, v);
			h->hi = fmax(h->hi, v);
		}
	}
	if (h->hi < h->lo) {
		h->lo = -6;
		h->hi = 0;
	}
	free(h->order);
	h->order = sl_calloc((size_t)h->rows + 1, sizeof *h->order);
	sl_scored *key = sl_calloc((size_t)h->rows + 1, sizeof *key);
	h->n_order = 0;
	if (!h->order || !key) {
		free(key);
		return;
	}
	int col = s->view.heat.sort_col < h->cols ? s->view.heat.sort_col : 0;
	for (int r = 0; r < h->rows; r++) {
		if (!row_shown(h, r, s->view.heat.filter))
			continue;
		double k = r;
		/* The most sensitive and the largest first; unmeasured cells last. */
		if (!strcmp(s->view.heat.sort, "metric")) {
			double v = sl_sweep_metric(&h->cell[(size_t)r * h->cols + col], metric);
			k = isfinite(v) ? -v : INFINITY;
		} else if (!strcmp(s->view.heat.sort, "params")) {
			k = -h->row[r].params;
		}
		key[h->n_order++] = (sl_scored){k, r};
	}
	sl_sort_scored(key, (size_t)h->n_order);
	for (int i = 0; i < h->n_order; i++)
		h->order[i] = key[i].idx;
	free(key);
}

/* --- the sweep job ------------------------------------------------------------ */

typedef struct {
	/* What was asked. */
	char options[512];
	char text[PATH_MAX];
	sl_sweep_opts so;
	bool measure;            /* false: only bring back the saved cells */
	sl_ranks ranks;          /* the MPI ranks that measure it (ranks.ranks 0: here) */
	cJSON *saved;            /* the session's sweep, whose cells carry over */
	/* Taken at start. */
	const sl_model *m;
	sl_sweep *sw;            /* the sweep measured: the workbench's, or a new one */
	sl_sweep *old;           /* the workbench's, when a new one replaces it */
	/* Worker side. */
	sl_job *job;
	double *rho;             /* scratch for the rank correlations */
	double last_rho, last_json;
	int before;              /* cells measured when the job began measuring */
	char note[256];          /* why the saved cells did not carry over */
	/* Shared with update(), under the job's lock. */
	sl_heat staged;
	bool staged_whole, staged_dirty;
	cJSON *json;             /* the sweep for the session, every few seconds */
} sweep_ctx;

/* The settings a sweep is identified by, as the heatmap keeps them. */
static void settings_to_heat(const sweep_ctx *c, sl_heat *h)
{
	snprintf(h->options, sizeof h->options, "%s", c->options);
	snprintf(h->text, sizeof h->text, "%s", c->text);
	h->unit = c->so.unit;
	h->ctx = c->so.ctx;
	h->windows = c->so.windows;
	h->calib_tokens = c->so.calib_tokens;
	h->seed = c->so.seed;
}

static bool same_settings(const sweep_ctx *c, const sl_heat *h)
{
	return !strcmp(h->options, c->options) && !strcmp(h->text, c->text) && h->unit == c->so.unit &&
	       h->ctx == c->so.ctx && h->windows == c->so.windows && h->calib_tokens == c->so.calib_tokens &&
	       h->seed == c->so.seed;
}

static bool sweep_start(sl_tui *t, void *ctx)
{
	sweep_ctx *c = ctx;
	if (!t->app.model)
		return false;
	c->m = t->app.model;
	/* The same sweep again goes on where it stopped, with its caches;
	 * another one starts from the cells the session keeps. */
	c->old = t->sweep;
	t->sweep = NULL;
	if (c->old && same_settings(c, &t->app.heat)) {
		c->sw = c->old;
		c->old = NULL;
	} else if (t->app.ses->sweep && !c->saved) {
		c->saved = cJSON_Duplicate(t->app.ses->sweep, true);
	}
	t->sweeping = true;
	if (c->ranks.ranks)
		snprintf(t->app.heat.state, sizeof t->app.heat.state, "measuring on %d MPI ranks (Esc stops them all)",
		         c->ranks.ranks);
	else
		snprintf(t->app.heat.state, sizeof t->app.heat.state, "%s",
		         c->measure ? "measuring (Esc stops; :sweep goes on)" : "restoring the session's sweep");
	return true;
}

static void on_cell(void *ctx, int row, int col, const sl_sweep_cell *cell)
{
	sweep_ctx *c = ctx;
	double now = sl_now();
	/* The rank correlations and the session's copy cost more than a cell
	 * is worth on a big sweep: now and then, and once more at the end. */
	bool fresh_rho = now - c->last_rho > 0.25;
	if (fresh_rho) {
		sweep_rho(c->sw, c->rho);
		c->last_rho = now;
	}
	cJSON *json = NULL;
	if (now - c->last_json > 2) {
		json = sl_sweep_to_json(c->sw);
		c->last_json = now;
	}
	sl_job_lock(c->job);
	c->staged.cell[(size_t)row * c->staged.cols + col] = *cell;
	c->staged.done++;
	if (fresh_rho)
		memcpy(c->staged.rho, c->rho, (size_t)(c->staged.cols + 1) * SL_PROXY_COUNT * sizeof *c->rho);
	if (json) {
		cJSON_Delete(c->json);
		c->json = json;
	}
	c->staged_dirty = true;
	sl_job_unlock(c->job);
	sl_job_post(c->job);
}

static sl_status sweep_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	sweep_ctx *c = ctx;
	c->job = j;
	sl_status st = SL_OK;
	if (!c->sw) {
		sl_sweep_option *opts;
		int n;
		if ((st = sl_sweep_parse_options(c->options, &opts, &n, err)))
			return st;
		c->so.progress = p;
		st = sl_sweep_new(c->m, opts, n, &c->so, &c->sw, err);
		free(opts);
		if (st)
			return st;
		sl_error rerr = {0};
		int restored;
		if (c->saved && sl_sweep_restore(c->sw, c->saved, &restored, &rerr))
			snprintf(c->note, sizeof c->note, "the session's earlier sweep did not carry over: %.190s", rerr.msg);
	}
	sl_job_lock(j);
	bool ok = heat_take(&c->staged, c->sw);
	c->staged_whole = c->staged_dirty = ok;
	sl_job_unlock(j);
	if (ok)
		ok = (c->rho = malloc((size_t)(sl_sweep_cols(c->sw) + 1) * SL_PROXY_COUNT * sizeof *c->rho)) != NULL;
	if (!ok)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the heatmap");
	sl_job_post(j);
	c->before = sl_sweep_done(c->sw);
	if (!c->measure)
		return SL_OK;
	if (c->ranks.ranks)
		return sl_sweep_run_ranks(c->sw, &c->ranks, on_cell, c, p, err);
	return sl_sweep_run(c->sw, on_cell, c, p, err);
}

/* Main thread: what the worker staged goes to the heatmap, and now and
 * then into the session (and its autosave). */
static void sweep_update(sl_tui *t, void *ctx, sl_job *j)
{
	sweep_ctx *c = ctx;
	sl_job_lock(j);
	bool whole = c->staged_whole;
	if (c->staged_dirty && heat_copy(&t->app.heat, &c->staged, whole))
		c->staged_dirty = c->staged_whole = false;
	cJSON *json = c->json;
	c->json = NULL;
	sl_job_unlock(j);
	if (whole) {
		settings_to_heat(c, &t->app.heat);
		heat_kinds(t);
	}
	sl_heat_refresh(t);
	if (json) {
		sl_session_set_sweep(t->app.ses, json);
		sl_tui_session_changed(t);
	}
}

static void sweep_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	sweep_ctx *c = ctx;
	sl_app *a = &t->app;
	bool made = c->sw != NULL;
	t->sweeping = false;
	a->heat.state[0] = 0;
	/* A sweep stopped midway is kept: its cells are measured. */
	if (made) {
		sl_sweep_free(c->old);
		c->old = NULL;
		t->sweep = c->sw;
		c->sw = NULL;
		if (heat_take(&c->staged, t->sweep) && heat_copy(&a->heat, &c->staged, true)) {
			settings_to_heat(c, &a->heat);
			heat_kinds(t);
		}
		if (c->before < a->heat.done) {
			cJSON *json = sl_sweep_to_json(t->sweep);
			if (json) {
				sl_session_set_sweep(a->ses, json);
				sl_tui_session_changed(t);
			}
		}
	} else {
		t->sweep = c->old; /* nothing new was made: the earlier one stays */
		c->old = NULL;
	}
	sl_heat_refresh(t);
	int total = a->heat.rows * a->heat.cols;
	if (st && st != SL_ERR_CANCELLED)
		sl_tui_msg(t, true, "%s", err->msg);
	else if (st)
		sl_tui_msg(t, false, "%s", made ? err->msg : "the sweep was cancelled before its first cell");
	else if (c->note[0])
		sl_tui_msg(t, true, "%s", c->note);
	else if (!c->measure)
		sl_tui_msg(t, false, "the session's sweep is back: %d of %d cells%s", a->heat.done, total,
		           a->heat.done < total ? "; :sweep goes on with the rest" : "");
	else
		sl_tui_msg(t, false, "sweep finished: %d cells, %d of them carried over from before", total, c->before);
}

static void sweep_free(void *ctx)
{
	sweep_ctx *c = ctx;
	sl_sweep_free(c->sw);
	sl_sweep_free(c->old);
	cJSON_Delete(c->saved);
	cJSON_Delete(c->json);
	sl_heat_free(&c->staged);
	free(c->rho);
	free(c);
}

static const sl_job_kind sweep_kind = {"sweep", sweep_start, sweep_run, sweep_update, sweep_done, sweep_free};

static sweep_ctx *new_ctx(sl_tui *t, const char *options, const char *text)
{
	sweep_ctx *c = calloc(1, sizeof *c);
	if (!c) {
		sl_tui_msg(t, true, "out of memory");
		return NULL;
	}
	snprintf(c->options, sizeof c->options, "%s", options);
	snprintf(c->text, sizeof c->text, "%s", text);
	c->so.text_path = c->text;
	return c;
}

void sl_task_sweep(sl_tui *t, const char *options, sl_sweep_unit unit, int ctx, int windows, const sl_ranks *ranks)
{
	if (!t->app.model) {
		sl_tui_msg(t, true, "no model is open: press o or type :open PATH");
		return;
	}
	sl_error err = {0};
	sl_sweep_option *opts;
	int n;
	if (sl_sweep_parse_options(options, &opts, &n, &err)) {
		sl_tui_msg(t, true, "%s", err.msg);
		return;
	}
	free(opts);
	if (ranks && sl_ranks_check(ranks, NULL, 0, &err)) {
		sl_tui_msg(t, true, "%s", err.msg);
		return;
	}
	if (!t->app.calib_path[0] || !sl_file_exists(t->app.calib_path)) {
		sl_tui_msg(t, true, "the calibration text %s is missing; set it with :set calibration=PATH",
		           t->app.calib_path);
		return;
	}
	sweep_ctx *c = new_ctx(t, options, t->app.calib_path);
	if (!c)
		return;
	c->so.unit = unit;
	c->so.ctx = ctx;
	c->so.windows = windows;
	c->so.calib_tokens = 4096;
	c->measure = true;
	if (ranks)
		c->ranks = *ranks;
	sl_tui_show(t, "heatmap");
	sl_tui_submit(t, &sweep_kind, c);
}

static double json_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

void sl_task_sweep_restore(sl_tui *t)
{
	const cJSON *j = t->app.ses->sweep;
	const cJSON *opts = cJSON_GetObjectItemCaseSensitive(j, "options");
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "text"));
	const char *unit = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "unit"));
	char options[512] = "";
	size_t k = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, opts)
	{
		if (!cJSON_IsString(o) || k >= sizeof options)
			break;
		k += (size_t)snprintf(options + k, sizeof options - k, "%s%s", k ? "," : "", o->valuestring);
	}
	if (!t->app.model || !j)
		return;
	if (!text || !unit || !options[0] || k >= sizeof options || json_num(j, "ctx") < 4 || json_num(j, "windows") < 1) {
		sl_tui_msg(t, true, "the session's sweep lacks its settings (options, text, ctx, windows); run :sweep again");
		return;
	}
	if (!sl_file_exists(text)) {
		sl_tui_msg(t, true, "the session's sweep was measured on %s, which is gone; run :sweep again", text);
		return;
	}
	sweep_ctx *c = new_ctx(t, options, text);
	if (!c)
		return;
	c->so.unit = !strcmp(unit, "block") ? SL_SWEEP_BLOCKS : SL_SWEEP_MODULES;
	c->so.ctx = (int)json_num(j, "ctx");
	c->so.windows = (int)json_num(j, "windows");
	c->so.calib_tokens = (int)json_num(j, "calib_tokens");
	c->so.seed = json_num(j, "seed") > 0 ? (uint64_t)json_num(j, "seed") : 0;
	c->saved = cJSON_Duplicate(j, true);
	sl_tui_submit(t, &sweep_kind, c);
}

/* The workbench's sweep, when no job is changing it. */
static const sl_sweep *idle_sweep(sl_tui *t)
{
	if (t->sweeping) {
		sl_tui_msg(t, true, "the sweep is running: wait for it or press Esc");
		return NULL;
	}
	if (!t->sweep) {
		char defaults[256];
		sl_sweep_default_options(defaults, sizeof defaults);
		sl_tui_msg(t, true, "no sweep yet: run :sweep OPTIONS (e.g. :sweep %s)", defaults);
	}
	return t->sweep;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

void sl_sweep_export(sl_tui *t, const char *path)
{
	const sl_sweep *sw = idle_sweep(t);
	if (!sw)
		return;
	char *data = NULL;
	if (ends_with(path, ".csv")) {
		data = sl_sweep_to_csv(sw);
	} else if (ends_with(path, ".svg")) {
		data = sl_heat_svg(sw, t->app.ses->view.heat.metric);
	} else if (ends_with(path, ".json")) {
		cJSON *j = sl_sweep_to_json(sw);
		data = j ? cJSON_Print(j) : NULL;
		cJSON_Delete(j);
	} else {
		sl_tui_msg(t, true, "%s: name a .csv, .json or .svg file", path);
		return;
	}
	sl_error err = {0};
	if (!data)
		sl_tui_msg(t, true, "out of memory while writing %s", path);
	else if (sl_write_file_atomic(path, data, strlen(data), &err))
		sl_tui_msg(t, true, "%s", err.msg);
	else
		sl_tui_msg(t, false, "%s written: %d of %d cells", path, sl_sweep_done(sw),
		           sl_sweep_rows(sw) * sl_sweep_cols(sw));
	free(data);
}

void sl_sweep_chart(sl_tui *t, const char *path, const char *row)
{
	const sl_sweep *sw = idle_sweep(t);
	if (!sw)
		return;
	char *svg = sl_tradeoff_svg(sw, row);
	sl_error err = {0};
	if (!svg && row)
		sl_tui_msg(t, true, "the sweep has no row '%s'", row);
	else if (!svg)
		sl_tui_msg(t, true, "out of memory while writing %s", path);
	else if (sl_write_file_atomic(path, svg, strlen(svg), &err))
		sl_tui_msg(t, true, "%s", err.msg);
	else
		sl_tui_msg(t, false, "%s written: KL against bytes of %s", path, row ? row : "the whole model");
	free(svg);
}

/* --- the automatic recipe ----------------------------------------------------- */

void sl_task_autorecipe(sl_tui *t, const char *budget)
{
	const sl_sweep *sw = idle_sweep(t);
	if (!sw)
		return;
	sl_error err = {0};
	sl_budget_kind kind;
	double value;
	sl_recipe *rec = NULL;
	sl_autorecipe_result res = {0};
	if (sl_budget_parse(budget, &kind, &value, &err) || sl_autorecipe(sw, kind, value, &rec, &res, &err) ||
	    sl_session_set_recipe(t->app.ses, rec, &err)) {
		sl_recipe_free(rec);
		sl_autorecipe_result_free(&res);
		sl_tui_msg(t, true, "%s", err.msg);
		return;
	}
	snprintf(t->app.ses->recipe->name, sizeof t->app.ses->recipe->name, "automatic %s", budget);
	sl_tui_recipe_changed(t);
	/* Measured for real on the windows the sweep measured its cells on, so
	 * that the measured KL answers the predicted one; the run records them
	 * and says so, and e measures it on the session's. */
	const sl_heat *h = &t->app.heat;
	sl_task_eval(t, strcmp(h->text, t->app.calib_path) ? h->text : "calibration", h->ctx, h->windows,
	             res.predicted_kl);
	sl_tui_msg(t, false, "automatic recipe for %s: %d rules, %.3f bits per weight, predicted KL %.5f; measuring it "
	                     "on the sweep's %d windows of %d (e: on the session's)",
	           budget, t->app.ses->recipe->n_rules, res.bpw, res.predicted_kl, h->windows, h->ctx);
	sl_autorecipe_result_free(&res);
}
