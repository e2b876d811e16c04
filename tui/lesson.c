/* A lesson running in the workbench: starting one (opening its model),
 * checking the current step's goal against the engine's state after every
 * event (the view shown, the heatmap's cursor and the sweep's cells, the
 * measured runs of the history, the speculative runs, the healing run),
 * moving on when it holds and recording in the session what the engine
 * showed, resuming a saved session's lesson, showing the hint after a
 * while, and the panel under the view. */
#define _GNU_SOURCE
#include <curses.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/formats.h"
#include "core/methods/method.h"
#include "tui.h"

/* Rows the panel takes under the view. */
#define PANEL_ROWS 5

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}


/* --- progress in the session ------------------------------------------------ */

static cJSON *progress_new(const sl_lesson *l)
{
	cJSON *p = cJSON_CreateObject();
	if (!p)
		return NULL;
	cJSON_AddStringToObject(p, "name", l->name);
	cJSON_AddStringToObject(p, "title", l->title);
	cJSON_AddStringToObject(p, "file", l->path);
	cJSON_AddNumberToObject(p, "step", 0);
	cJSON_AddNumberToObject(p, "steps_total", l->n_steps);
	cJSON_AddBoolToObject(p, "finished", false);
	cJSON_AddArrayToObject(p, "steps");
	return p;
}

/* The step a session's progress reached, or -1 when it is not this lesson's. */
static int progress_step(const cJSON *p, const sl_lesson *l)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
	const cJSON *step = cJSON_GetObjectItemCaseSensitive(p, "step");
	if (!cJSON_IsString(name) || strcmp(name->valuestring, l->name) || !cJSON_IsNumber(step))
		return -1;
	int s = (int)step->valuedouble;
	return s < 0 ? 0 : s > l->n_steps ? l->n_steps : s;
}

static void record(sl_tui *t, int step, const char *value)
{
	sl_lesson_state *ls = &t->app.lesson;
	cJSON *p = cJSON_Duplicate(t->app.ses->lesson, true);
	if (!p || !ls->lesson)
		goto out;
	cJSON *steps = cJSON_GetObjectItemCaseSensitive(p, "steps");
	cJSON *e = cJSON_CreateObject();
	if (!cJSON_IsArray(steps) || !e) {
		cJSON_Delete(e);
		goto out;
	}
	char when[32];
	time_t tt = time(NULL);
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	cJSON_AddNumberToObject(e, "step", step + 1);
	cJSON_AddStringToObject(e, "goal", sl_goal_kind_name(ls->lesson->steps[step].goal.kind));
	cJSON_AddStringToObject(e, "value", value);
	cJSON_AddStringToObject(e, "when", when);
	cJSON_AddItemToArray(steps, e);
	cJSON_ReplaceItemInObjectCaseSensitive(p, "step", cJSON_CreateNumber(step + 1));
	cJSON_ReplaceItemInObjectCaseSensitive(p, "finished", cJSON_CreateBool(step + 1 >= ls->lesson->n_steps));
	sl_session_set_lesson(t->app.ses, p);
	sl_tui_session_changed(t);
	return;
out:
	cJSON_Delete(p);
}

/* --- the goals ------------------------------------------------------------------ */

/* The sweep's column for a sweep option as a lesson writes it (-1: none). */
static int heat_col(const sl_heat *h, const char *option)
{
	sl_sweep_option *o = NULL;
	int n = 0;
	if (sl_sweep_parse_options(option, &o, &n, NULL) || n != 1) {
		free(o);
		return -1;
	}
	char want[256], have[256];
	sl_rule_words(&o[0].rule, want, sizeof want);
	free(o);
	for (int c = 0; c < h->cols; c++) {
		sl_rule_words(&h->opt[c].rule, have, sizeof have);
		if (!strcmp(want, have))
			return c;
	}
	return -1;
}

static bool col_done(const sl_heat *h, int c)
{
	for (int r = 0; r < h->rows; r++)
		if (!h->cell[(size_t)r * h->cols + c].done)
			return false;
	return h->rows > 0;
}

static bool goal_sweep(const sl_app *a, const sl_lesson_goal *g, char *v, size_t n)
{
	const sl_heat *h = &a->heat;
	char list[256];
	snprintf(list, sizeof list, "%s", g->options);
	int cols = 0;
	for (char *save = NULL, *o = strtok_r(list, ",", &save); o; o = strtok_r(NULL, ",", &save), cols++) {
		int c = heat_col(h, o);
		if (c < 0 || !col_done(h, c))
			return false;
	}
	snprintf(v, n, "sweep of %d rows: every cell of %s measured (%d of %d cells done)", h->rows, g->options, h->done,
	         h->rows * h->cols);
	return cols > 0;
}

static bool goal_cursor(sl_tui *t, const sl_lesson_goal *g, char *v, size_t n)
{
	const sl_app *a = &t->app;
	const sl_heat *h = &a->heat;
	if (strcmp(t->classes[t->cur]->name, "heatmap"))
		return false;
	int c = heat_col(h, g->option);
	if (c < 0 || !col_done(h, c))
		return false;
	/* The cursor as the view keeps it: recorded as saving records it. */
	if (t->classes[t->cur]->leave)
		t->classes[t->cur]->leave(t->views[t->cur], &t->app);
	int pos = sl_session_view_pos(a->ses, "heatmap").cursor;
	if (pos < 0 || pos >= h->n_order)
		return false;
	bool dppl = !strcmp(g->metric, "dppl");
	int best = -1;
	double top = -INFINITY;
	for (int r = 0; r < h->rows; r++) {
		const sl_sweep_cell *cell = &h->cell[(size_t)r * h->cols + c];
		double m = dppl ? cell->dppl : cell->kl;
		if (g->rows[0] && fnmatch(g->rows, h->row[r].name, 0))
			continue;
		if (!cell->failed && m > top) {
			top = m;
			best = r;
		}
	}
	if (best < 0 || h->order[pos] != best)
		return false;
	snprintf(v, n, "cursor on %s: %s %.6g under %s, the highest of the rows%s%s", h->row[best].name,
	         dppl ? "dPPL" : "KL", top, h->opt[c].label, g->rows[0] ? " matching " : "", g->rows);
	return true;
}

/* What a run's recipe does to the model's modules. */
typedef struct {
	bool ok;
	bool all_format;         /* every module with a format has the goal's (and one has) */
	bool all_method;         /* every module with a format is quantized by the goal's method */
	bool rounded;            /* every module with a format by the default quantizer, nothing pruned */
	int n_formats;           /* distinct formats, keeping a module as it is counting as one */
	bool pruned_by, in_pattern;
	double sparsity;         /* the most of any module */
	const sl_format *uniform; /* the one format every module has, or NULL */
} recipe_facts;

static recipe_facts facts_of(const sl_app *a, const sl_run *run, const sl_lesson_goal *g)
{
	recipe_facts f = {0};
	sl_recipe *r = NULL;
	if (!run->recipe_json || sl_recipe_parse(run->recipe_json, strlen(run->recipe_json), &r, NULL))
		return f;
	const sl_format *want = g->format[0] ? sl_format_find(g->format) : NULL;
	const sl_method *meth = g->method[0] ? sl_method_find(SL_METHOD_QUANT, g->method) : NULL;
	const sl_method *pr = g->prune[0] ? sl_method_find(SL_METHOD_PRUNE, g->prune) : NULL;
	const sl_method *rounding = sl_method_default(SL_METHOD_QUANT);
	const sl_format *seen[8];
	bool seen_none = false, any_format = false, first = true;
	f.all_format = f.all_method = f.rounded = true;
	for (int i = 0; i < a->n_mods; i++) {
		sl_module_plan p;
		sl_recipe_resolve(r, &a->mods[i], &p);
		if (p.format) {
			any_format = true;
			if (p.format != want)
				f.all_format = false;
			const sl_method *m = sl_plan_method(&p);
			if (m != meth)
				f.all_method = false;
			if (m != rounding)
				f.rounded = false;
			int k = 0;
			while (k < f.n_formats - (seen_none ? 1 : 0) && seen[k] != p.format)
				k++;
			if (k == f.n_formats - (seen_none ? 1 : 0) && k < 8) {
				seen[k] = p.format;
				f.n_formats++;
			}
		} else if (!seen_none) {
			seen_none = true;
			f.n_formats++;
		}
		f.uniform = first ? p.format : f.uniform == p.format ? f.uniform : NULL;
		first = false;
		if (p.sparsity > 0) {
			f.rounded = false;
			f.sparsity = p.sparsity > f.sparsity ? p.sparsity : f.sparsity;
			const sl_method *pm = p.prune[0] ? sl_method_find(SL_METHOD_PRUNE, p.prune)
			                                 : sl_method_default(SL_METHOD_PRUNE);
			if (pr && pm == pr)
				f.pruned_by = true;
			if (g->pattern[0] && !strcmp(p.pattern, g->pattern))
				f.in_pattern = true;
		}
	}
	f.all_format = f.all_format && any_format;
	f.all_method = f.all_method && any_format;
	sl_recipe_free(r);
	f.ok = true;
	return f;
}

static bool measured(const sl_run *run)
{
	return !run->speculative && run->r.has_base && isfinite(run->r.kl_mean) && !strcmp(run->model, "recipe");
}

static bool goal_evaluated(const sl_app *a, const sl_lesson_goal *g, char *v, size_t n)
{
	const sl_session *s = a->ses;
	for (int i = s->n_runs - 1; i >= 0; i--) {
		const sl_run *run = &s->runs[i];
		if (!measured(run))
			continue;
		recipe_facts f = facts_of(a, run, g);
		if (!f.ok || (g->format[0] && !f.all_format) || (g->method[0] && !f.all_method) ||
		    (g->mixed && f.n_formats < 2) || (g->prune[0] && !f.pruned_by) || (g->pattern[0] && !f.in_pattern) ||
		    (!isnan(g->sparsity_min) && f.sparsity < g->sparsity_min - 1e-9) ||
		    (!isnan(g->bpw_below) && !(run->bpw < g->bpw_below)) ||
		    (!isnan(g->kl_below) && !(run->r.kl_mean < g->kl_below)))
			continue;
		char extra[160] = "";
		if (g->beats[0]) {
			const sl_format *b = sl_format_find(g->beats);
			sl_lesson_goal none = {.kind = SL_GOAL_EVALUATED};
			int found = -1;
			for (int j = s->n_runs - 1; j >= 0 && found < 0; j--) {
				const sl_run *o = &s->runs[j];
				if (j == i || !measured(o) || !sl_run_same_measure(o, run))
					continue;
				recipe_facts of = facts_of(a, o, &none);
				if (of.ok && of.rounded && of.uniform == b && b)
					found = j;
			}
			if (found < 0 || !(run->r.kl_mean < s->runs[found].r.kl_mean))
				continue;
			snprintf(extra, sizeof extra, "; every module in %s rounded, run %d: KL %.6f at %.2f bpw", g->beats,
			         found + 1, s->runs[found].r.kl_mean, s->runs[found].bpw);
		}
		snprintf(v, n, "run %d (%s): KL %.6f at %.2f bpw%s", i + 1, run->recipe_summary, run->r.kl_mean, run->bpw,
		         extra);
		return true;
	}
	return false;
}

static bool goal_spec(const sl_app *a, const sl_lesson_goal *g, char *v, size_t n)
{
	const sl_session *s = a->ses;
	for (int i = s->n_runs - 1; i >= 0; i--) {
		const sl_run *run = &s->runs[i];
		const sl_spec_run *sp = &run->spec;
		if (!run->speculative || sp->cancelled || (g->k && sp->k != g->k) ||
		    (g->draft[0] && !strstr(sp->draft, g->draft)) ||
		    (!isnan(g->acceptance_min) && !(sp->acceptance >= g->acceptance_min)))
			continue;
		snprintf(v, n, "run %d: draft %s, k %d, acceptance %.3f, %.2f tokens per pass", i + 1, sp->draft, sp->k,
		         sp->acceptance, sp->tokens_per_pass);
		return true;
	}
	return false;
}

static bool goal_heal(const sl_app *a, const sl_lesson_goal *g, char *v, size_t n)
{
	const sl_healing *h = &a->heal;
	size_t len = strlen(g->method);
	if (!h->finished || h->running || !h->has_after || strncmp(h->label, g->method, len) || h->label[len] != ' ' ||
	    (!isnan(g->recovered_min) && !(h->recovered >= g->recovered_min)))
		return false;
	snprintf(v, n, "%s: KL %.6f after compression, %.6f healed, %.1f%% recovered", h->label, h->before.kl_mean,
	         h->after.kl_mean, 100 * h->recovered);
	return true;
}

static bool goal_holds(sl_tui *t, const sl_lesson_goal *g, char *v, size_t n)
{
	switch (g->kind) {
	case SL_GOAL_VIEW:
		if (strcmp(t->classes[t->cur]->name, g->view))
			return false;
		snprintf(v, n, "the %s view shown", g->view);
		return true;
	case SL_GOAL_SWEEP: return goal_sweep(&t->app, g, v, n);
	case SL_GOAL_CURSOR_MAX: return goal_cursor(t, g, v, n);
	case SL_GOAL_EVALUATED: return goal_evaluated(&t->app, g, v, n);
	case SL_GOAL_SPEC: return goal_spec(&t->app, g, v, n);
	case SL_GOAL_HEAL: return goal_heal(&t->app, g, v, n);
	case SL_GOAL_KINDS: break;
	}
	return false;
}

/* --- starting, resuming, stopping ----------------------------------------------- */

static void begin_step(sl_lesson_state *ls, int step)
{
	ls->step = step;
	ls->since = now_s();
}

void sl_lesson_stop(sl_tui *t)
{
	sl_lesson_state *ls = &t->app.lesson;
	sl_lesson_free(ls->lesson);
	memset(ls, 0, sizeof *ls);
}

/* Takes l: the session's progress in it goes on, or it starts afresh. */
static void adopt(sl_tui *t, sl_lesson *l)
{
	sl_lesson_state *ls = &t->app.lesson;
	if (ls->lesson != l) {
		sl_lesson_free(ls->lesson);
		ls->lesson = l;
	}
	ls->pending = false;
	ls->generation = t->app.generation;
	int step = t->app.ses->lesson ? progress_step(t->app.ses->lesson, l) : -1;
	if (step < 0) {
		cJSON *p = progress_new(l);
		if (p) {
			sl_session_set_lesson(t->app.ses, p);
			sl_tui_session_changed(t);
		}
		step = 0;
	}
	begin_step(ls, step);
	ls->last[0] = 0;
}

static const sl_tui *shell; /* whose views a lesson being read may name */

static bool view_ok(const char *name)
{
	return shell && sl_tui_view_index(shell, name) >= 0 && strcmp(name, "open");
}

static sl_status load(sl_tui *t, const char *name, sl_lesson **l, char *model, size_t n, sl_error *err)
{
	char path[4096];
	shell = t;
	sl_status st = sl_lesson_find(name, path, sizeof path, err);
	if (!st)
		st = sl_lesson_load(path, view_ok, l, err);
	if (!st && (st = sl_lesson_model(*l, model, n, err))) {
		sl_lesson_free(*l);
		*l = NULL;
	}
	return st;
}

void sl_lesson_start(sl_tui *t, const char *name)
{
	sl_lesson *l = NULL;
	char model[4096];
	sl_error err = {0};
	if (load(t, name, &l, model, sizeof model, &err)) {
		sl_tui_msg(t, true, "%s", err.msg);
		return;
	}
	sl_lesson_state *ls = &t->app.lesson;
	sl_lesson_free(ls->lesson);
	memset(ls, 0, sizeof *ls);
	ls->lesson = l;
	if (t->app.model && !t->opening && t->app.ses->model_path[0] && sl_tui_same_file(t->app.ses->model_path, model)) {
		adopt(t, l);
		sl_tui_msg(t, false, "lesson %s: %d steps", l->title, l->n_steps);
		return;
	}
	/* Its model first: the lesson starts once that is open. */
	ls->pending = true;
	snprintf(ls->model, sizeof ls->model, "%s", model);
	ls->generation = t->app.generation;
	sl_open_asking(t, model);
}

/* A session that was saved during a lesson goes on with it. */
static void resume(sl_tui *t)
{
	sl_lesson_state *ls = &t->app.lesson;
	ls->generation = t->app.generation;
	const cJSON *p = t->app.ses->lesson;
	const cJSON *file = cJSON_GetObjectItemCaseSensitive(p, "file");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
	const cJSON *fin = cJSON_GetObjectItemCaseSensitive(p, "finished");
	if (!p || cJSON_IsTrue(fin))
		return;
	sl_lesson *l = NULL;
	char model[4096];
	sl_error err = {0};
	if (load(t, cJSON_IsString(file) ? file->valuestring : "", &l, model, sizeof model, &err) &&
	    (!cJSON_IsString(name) || load(t, name->valuestring, &l, model, sizeof model, &err))) {
		sl_tui_msg(t, true, "the session's lesson cannot go on: %s", err.msg);
		return;
	}
	if (progress_step(p, l) < 0) {
		sl_lesson_free(l);
		return;
	}
	adopt(t, l);
	sl_tui_msg(t, false, "lesson %s goes on at step %d of %d", l->title, ls->step + 1, l->n_steps);
}

void sl_lesson_tick(sl_tui *t)
{
	sl_lesson_state *ls = &t->app.lesson;
	if (!t->app.model || t->opening)
		return;
	if (ls->generation != t->app.generation) {
		/* Another session: the lesson's model opened, a saved session, or another model. */
		if (ls->pending && sl_tui_same_file(t->app.ses->model_path, ls->model)) {
			adopt(t, ls->lesson);
			sl_tui_msg(t, false, "lesson %s: %d steps", ls->lesson->title, ls->lesson->n_steps);
		} else if (t->app.ses->lesson) {
			sl_lesson_stop(t);
			resume(t);
		} else if (ls->lesson && !ls->pending) {
			sl_lesson_stop(t);
		}
		ls->generation = t->app.generation;
	}
	if (!ls->lesson || ls->pending)
		return;
	while (ls->step < ls->lesson->n_steps) {
		char value[480];
		if (!goal_holds(t, &ls->lesson->steps[ls->step].goal, value, sizeof value))
			break;
		record(t, ls->step, value);
		snprintf(ls->last, sizeof ls->last, "step %d done: %s", ls->step + 1, value);
		begin_step(ls, ls->step + 1);
	}
}

int sl_lesson_wait_ms(const sl_tui *t)
{
	const sl_lesson_state *ls = &t->app.lesson;
	if (!ls->lesson || ls->pending || ls->step >= ls->lesson->n_steps || !ls->lesson->steps[ls->step].hint[0])
		return -1;
	double left = ls->since + ls->lesson->steps[ls->step].hint_after - now_s();
	return left <= 0 ? -1 : (int)(left * 1000) + 1;
}

/* --- the panel ------------------------------------------------------------------- */

static sl_role text_role(const void *ctx, size_t i)
{
	(void)ctx;
	(void)i;
	return SL_R_NORMAL;
}

int sl_lesson_rows(const sl_tui *t, int body_h)
{
	const sl_lesson_state *ls = &t->app.lesson;
	return !ls->lesson || ls->pending || body_h < PANEL_ROWS + 8 ? 0 : PANEL_ROWS;
}

void sl_lesson_draw(sl_tui *t, sl_rect p)
{
	const sl_lesson_state *ls = &t->app.lesson;
	if (p.h < PANEL_ROWS)
		return;
	const sl_lesson *l = ls->lesson;
	const sl_rect *body = &p;
	int y = p.y, w = p.w;
	for (int i = 0; i < PANEL_ROWS; i++)
		sl_fill(y + i, body->x, w, SL_R_NORMAL);
	char title[256];
	if (ls->step < l->n_steps)
		snprintf(title, sizeof title, " lesson: %s · step %d of %d ", l->title, ls->step + 1, l->n_steps);
	else
		snprintf(title, sizeof title, " lesson: %s · every step done ", l->title);
	sl_fill(y, body->x, w, SL_R_DIM);
	int x = sl_text(y, body->x, w, SL_R_DIM, t->app.utf8 ? "──" : "--");
	sl_text(y, body->x + x, w - x, SL_R_ACCENT, title);
	if (ls->step >= l->n_steps) {
		sl_text(y + 1, body->x + 1, w - 2, SL_R_GOOD, "Well done: the engine verified every step (:lesson stop closes this).");
		sl_text(y + 2, body->x + 1, w - 2, SL_R_DIM, ls->last);
		return;
	}
	const sl_lesson_step *s = &l->steps[ls->step];
	/* The step's text in two rows at most. */
	sl_rect tr = {y + 1, body->x + 1, 2, w - 2};
	sl_wrap(tr, s->text, strlen(s->text), text_role, NULL, 0, true);
	char goal[1024];
	sl_goal_describe(&s->goal, goal, sizeof goal);
	sl_textf(y + 3, body->x + 1, w - 2, SL_R_DIM, "goal: %s%s%s", goal, s->card[0] ? " · card: " : "", s->card);
	bool hint = s->hint[0] && now_s() >= ls->since + s->hint_after;
	if (hint)
		sl_textf(y + 4, body->x + 1, w - 2, SL_R_WARN, "hint: %s", s->hint);
	else if (ls->last[0])
		sl_text(y + 4, body->x + 1, w - 2, SL_R_GOOD, ls->last);
}
