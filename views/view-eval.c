/* The Evaluate view: runs perplexity, KL divergence and top-1 agreement
 * against the base model on the calibration or evaluation text, and keeps
 * a history of runs to compare recipes, each with the text and windows it
 * was measured on, with sparklines of the trend of the runs measured alike.
 * The Speculate view's runs join the same history with their own figures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/units.h"
#include "view.h"

typedef struct {
	sl_list list;
	sl_rect table;
	unsigned runs_seen;     /* app->runs_added when the cursor last followed it */
	int fig;                /* the figure column chosen (Left/Right), whose card ? opens */
	bool dppl_shown;        /* whether the ΔPPL column fits */
} eval_view;

/* The history's figure columns, as their cards name them. */
static const char *const figures[] = {"ppl", "dppl", "kl", "top1"};
enum { N_FIGS = sizeof figures / sizeof figures[0] };

static void *create(void)
{
	return calloc(1, sizeof(eval_view));
}

/* A run that just arrived is the one to look at. */
static void follow_new_run(eval_view *v, const sl_app *app)
{
	if (v->runs_seen == app->runs_added)
		return;
	v->runs_seen = app->runs_added;
	v->list.cursor = app->ses->n_runs - 1;
}

static void enter(void *self, sl_app *app)
{
	eval_view *v = self;
	sl_list_restore(&v->list, app, "eval");
	/* The newest run is what one wants to see after a while away. */
	if (!v->list.cursor)
		v->list.cursor = app->ses->n_runs - 1;
	follow_new_run(v, app);
}

static void leave(void *self, sl_app *app)
{
	eval_view *v = self;
	sl_list_remember(&v->list, app, "eval");
}

/* A speculative run's figures in a cell of the table. */
static void spec_cell(const sl_run *run, char *buf, size_t n)
{
	const sl_spec_run *f = &run->spec;
	int k = snprintf(buf, n, "accept %.3f  %.2f/pass", f->acceptance, f->tokens_per_pass);
	if (f->target_tps > 0 && k > 0 && (size_t)k < n)
		snprintf(buf + k, n - (size_t)k, "  %.2fx", f->speedup);
}

static void draw_spec_run(const sl_run *run, int y, int x, int w)
{
	const sl_spec_run *f = &run->spec;
	/* The acceptance of the tokens checked is what was predicted; runs
	 * saved before it was recorded show the share of those drafted. */
	bool checked = isfinite(f->token_acceptance);
	int u = sl_text(y, x, w, SL_R_NORMAL, "acceptance ");
	u += sl_textf(y, x + u, w - u, SL_R_ACCENT, "%.3f", checked ? f->token_acceptance : f->acceptance);
	u += sl_text(y, x + u, w - u, SL_R_NORMAL, checked ? " of the tokens checked" : " of those drafted");
	if (f->has_predicted)
		u += sl_textf(y, x + u, w - u, SL_R_NORMAL, " (predicted %.3f)", f->predicted_acceptance);
	if (checked)
		u += sl_textf(y, x + u, w - u, SL_R_NORMAL, ", %.3f of those drafted", f->acceptance);
	sl_textf(y, x + u, w - u, SL_R_NORMAL, "   %.2f tokens per pass   %lld tokens in %lld passes", f->tokens_per_pass,
	         f->generated, f->passes);
	u = sl_textf(y + 1, x, w, SL_R_NORMAL, "%.0f tokens/s speculative", f->tps);
	if (f->target_tps > 0) {
		u += sl_textf(y + 1, x + u, w - u, SL_R_NORMAL, ", %.0f the model alone: ", f->target_tps);
		u += sl_textf(y + 1, x + u, w - u, f->speedup >= 1 ? SL_R_GOOD : SL_R_BAD, "%.2fx", f->speedup);
		if (isfinite(f->predicted_costed))
			sl_textf(y + 1, x + u, w - u, SL_R_NORMAL, " (predicted %.2fx; %.2fx if checking took one step)",
			         f->predicted_costed, f->predicted_speedup);
		else
			sl_textf(y + 1, x + u, w - u, SL_R_NORMAL, " (predicted %.2fx)", f->predicted_speedup);
	}
	char temp[32];
	snprintf(temp, sizeof temp, f->temp > 0 ? "temperature %.2g" : "greedy", f->temp);
	sl_textf(y + 2, x, w, SL_R_DIM, "speculative decoding, draft %s, k %d, %s%s", f->draft, f->k, temp,
	         f->cancelled ? ", cancelled: the part that ran" : "");
}

static void draw_run(const sl_run *run, int y, int x, int w)
{
	const sl_eval_result *r = &run->r;
	if (run->speculative) {
		draw_spec_run(run, y, x, w);
		return;
	}
	int u = sl_textf(y, x, w, SL_R_NORMAL, "PPL ");
	u += sl_textf(y, x + u, w - u, SL_R_ACCENT, "%.4f", r->ppl);
	u += sl_textf(y, x + u, w - u, SL_R_NORMAL, " ± %.4f", r->ppl_se);
	if (r->has_base) {
		u += sl_textf(y, x + u, w - u, SL_R_NORMAL, "   base %.4f  Δ ", r->base_ppl);
		u += sl_textf(y, x + u, w - u, r->delta_ppl > 0 ? SL_R_BAD : SL_R_GOOD, "%+.4f", r->delta_ppl);
		sl_textf(y, x + u, w - u, SL_R_NORMAL, "   top-1 %.2f%%", 100 * r->top1);
		u = sl_textf(y + 1, x, w, SL_R_NORMAL, "KL mean %.5f ± %.5f", r->kl_mean, r->kl_se);
		if (run->has_predicted)
			u += sl_textf(y + 1, x + u, w - u, SL_R_ACCENT, " (predicted %.5f)", run->predicted_kl);
		sl_textf(y + 1, x + u, w - u, SL_R_NORMAL, "  median %.5f  p99 %.5f  max %.4f", r->kl_median, r->kl_p99,
		         r->kl_max);
	}
	sl_textf(y + 2, x, w, SL_R_DIM, "%s model, recipe %s (%s), %.2f bpw", run->model,
	         run->recipe[0] ? run->recipe : "-", run->recipe_summary, run->bpw);
	/* What the figures hold for: runs on other texts or windows do not
	 * compare. An automatic recipe is measured where its KL was predicted. */
	char file[64] = "";
	if (run->text_path) {
		const char *slash = strrchr(run->text_path, '/');
		snprintf(file, sizeof file, " (%s)", slash ? slash + 1 : run->text_path);
	}
	sl_textf(y + 3, x, w, SL_R_DIM, "on the %s text%s: %s%d windows of %d tokens, %lld scored, %.1f s", run->text,
	         file, run->has_predicted ? "the sweep's " : "", r->n_chunks, r->n_ctx, r->n_scored, r->seconds);
}

/* The last lines of the session's notes, at the bottom of r. */
static int notes_height(const sl_session *s)
{
	return s->notes[0] ? 3 : 0;
}

static void draw_notes(const sl_session *s, sl_rect r)
{
	int notes_h = notes_height(s);
	if (!notes_h)
		return;
	int ny = r.y + r.h - notes_h;
	sl_text(ny, r.x + 1, r.w - 2, SL_R_DIM, "notes (n adds one)");
	const char *end = s->notes + strlen(s->notes), *p = end;
	if (p > s->notes && p[-1] == '\n')
		p--;
	for (int lines = 0; p > s->notes; p--)
		if (p[-1] == '\n' && ++lines == notes_h - 1)
			break;
	for (int i = 1; i < notes_h && p < end; i++) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);
		sl_textf(ny + i, r.x + 3, r.w - 4, SL_R_NORMAL, "%.*s", len, p);
		p += len + (nl ? 1 : 0);
	}
}

/* What an evaluation was measured on, in a few words: "calibration, 32×128". */
static void measure_label(const sl_run *run, char *buf, size_t n)
{
	if (run->speculative)
		snprintf(buf, n, "%s", run->text);
	else if (!run->r.n_ctx)
		snprintf(buf, n, "%s, windows not kept", run->text); /* a run from before runs kept them */
	else
		snprintf(buf, n, "%s, %d×%d", run->text, run->r.n_chunks, run->r.n_ctx);
}

/* One figure of both runs (fmt) and its change (dfmt): "-" where a run
 * has none, no change where the runs were not measured alike. */
static void compare_row(int y, const int *cx, const int *cw, const char *label, const char *fmt, const char *dfmt,
                        double a, bool has_a, double b, bool has_b, bool alike)
{
	char va[32] = "-", vb[32] = "-", d[32] = "";
	if (has_a)
		snprintf(va, sizeof va, fmt, a);
	if (has_b)
		snprintf(vb, sizeof vb, fmt, b);
	if (has_a && has_b && alike)
		snprintf(d, sizeof d, dfmt, b - a);
	sl_text(y, cx[0], cw[0], SL_R_DIM, label);
	sl_text(y, cx[1], cw[1] - 1, SL_R_NORMAL, va);
	sl_text(y, cx[2], cw[2] - 1, SL_R_NORMAL, vb);
	sl_text(y, cx[3], cw[3], SL_R_NORMAL, d);
}

/* The two marked runs side by side: their recipes and figures with the
 * change from the first to the second, then the modules whose plans
 * differ. Returns the rows drawn; at most max_lines of differences. */
static int draw_compare(const sl_app *app, int y0, int x, int w, int max_lines)
{
	const sl_run *a = &app->ses->runs[app->marked[0] - 1], *b = &app->ses->runs[app->marked[1] - 1];
	int y = y0;
	int u = sl_textf(y, x, w, SL_R_TITLE, "Run %d against run %d", app->marked[1], app->marked[0]);
	sl_text(y++, x + u, w - u, SL_R_DIM, "   m unmarks the run under the cursor, M both");
	int cw[4] = {9, (w - 9 - 12) / 2 > 30 ? 30 : (w - 9 - 12) / 2, 0, 12};
	cw[2] = cw[1];
	int cx[4] = {x, x + cw[0], x + cw[0] + cw[1], x + cw[0] + 2 * cw[1]};
	char ha[16], hb[16];
	snprintf(ha, sizeof ha, "run %d", app->marked[0]);
	snprintf(hb, sizeof hb, "run %d", app->marked[1]);
	sl_text(y, cx[1], cw[1], SL_R_DIM, ha);
	sl_text(y, cx[2], cw[2], SL_R_DIM, hb);
	sl_text(y++, cx[3], cw[3], SL_R_DIM, "change");
	sl_text(y, cx[0], cw[0], SL_R_DIM, "recipe");
	sl_text(y, cx[1], cw[1] - 1, SL_R_NORMAL, a->recipe_summary);
	sl_text(y++, cx[2], cw[2] - 1, SL_R_NORMAL, b->recipe_summary);
	char ma[64], mb[64];
	measure_label(a, ma, sizeof ma);
	measure_label(b, mb, sizeof mb);
	sl_text(y, cx[0], cw[0], SL_R_DIM, "on");
	sl_text(y, cx[1], cw[1] - 1, SL_R_NORMAL, ma);
	sl_text(y, cx[2], cw[2] - 1, SL_R_NORMAL, mb);
	/* Figures measured on other texts or windows are shown, not subtracted. */
	bool alike = sl_run_same_measure(a, b);
	if (!alike && !a->speculative && !b->speculative)
		sl_text(y, cx[3], cw[3], SL_R_BAD, "not alike");
	y++;
	compare_row(y++, cx, cw, "bpw", "%.2f", "%+.2f", a->bpw, true, b->bpw, true, true);
	compare_row(y++, cx, cw, "PPL", "%.4f", "%+.4f", a->r.ppl, !a->speculative, b->r.ppl, !b->speculative, alike);
	compare_row(y++, cx, cw, "ΔPPL", "%+.4f", "%+.4f", a->r.delta_ppl, a->r.has_base, b->r.delta_ppl, b->r.has_base,
	            alike);
	compare_row(y++, cx, cw, "KL", "%.5f", "%+.5f", a->r.kl_mean, a->r.has_base, b->r.kl_mean, b->r.has_base, alike);
	compare_row(y++, cx, cw, "top-1", "%.2f%%", "%+.2f pt", 100 * a->r.top1, a->r.has_base, 100 * b->r.top1,
	            b->r.has_base, alike);
	compare_row(y++, cx, cw, "accept", "%.3f", "%+.3f", a->spec.acceptance, a->speculative, b->spec.acceptance,
	            b->speculative, true);
	if (!app->diffs_known) {
		sl_text(y++, x, w, SL_R_DIM, "a run without its recipe (a draft of no recipe, or from before runs kept it): no modules to compare");
		return y - y0;
	}
	if (!app->n_diffs) {
		sl_text(y++, x, w, SL_R_DIM, "the two recipes plan every module alike");
		return y - y0;
	}
	sl_textf(y++, x, w, SL_R_NORMAL, "%d module%s planned differently:", app->n_diffs, app->n_diffs == 1 ? "" : "s");
	int shown = app->n_diffs <= max_lines ? app->n_diffs : max_lines - 1;
	for (int i = 0; i < shown; i++)
		sl_textf(y++, x + 2, w - 2, SL_R_NORMAL, "%-18s %s → %s", app->diffs[i].module, app->diffs[i].a,
		         app->diffs[i].b);
	if (shown < app->n_diffs)
		sl_textf(y++, x + 2, w - 2, SL_R_DIM, "… and %d more", app->n_diffs - shown);
	return y - y0;
}

/* The run whose series the sparklines draw: the one under the cursor, or
 * for a speculative run the newest evaluation; -1 when there is none. */
static int series_run(const sl_session *s, int cursor)
{
	if (!s->runs[cursor].speculative)
		return cursor;
	for (int i = s->n_runs - 1; i >= 0; i--)
		if (!s->runs[i].speculative)
			return i;
	return -1;
}

/* Sparklines of PPL and KL, oldest to newest, of the runs measured like
 * the chosen one (the same text, windows and window length): figures on
 * other windows are never drawn as one series, and the label says which
 * series it is. */
static void draw_trends(const sl_session *s, int cursor, int y, int x, int width)
{
	int ref = series_run(s, cursor);
	if (ref < 0)
		return;
	const sl_run *a = &s->runs[ref];
	double *ppl = malloc((size_t)s->n_runs * sizeof *ppl), *kl = malloc((size_t)s->n_runs * sizeof *kl);
	int n = 0;
	for (int i = 0; ppl && kl && i < s->n_runs; i++)
		if (sl_run_same_measure(a, &s->runs[i])) {
			ppl[n] = s->runs[i].r.ppl;
			kl[n++] = s->runs[i].r.has_base ? s->runs[i].r.kl_mean : 0;
		}
	if (n) {
		char on[64], label[128];
		measure_label(a, on, sizeof on);
		snprintf(label, sizeof label, "only the %d run%s on %s", n, n == 1 ? "" : "s", on);
		int w = (width - 2 - 5 - 6 - 2 - sl_text_width(label)) / 2;
		w = w > n ? n : w < 4 ? 4 : w;
		sl_text(y, x + 1, 5, SL_R_DIM, "PPL");
		sl_spark(y, x + 6, w, ppl, n, false, SL_R_ACCENT);
		sl_text(y, x + 8 + w, 4, SL_R_DIM, "KL");
		sl_spark(y, x + 12 + w, w, kl, n, true, SL_R_RIGHT);
		sl_text(y, x + 14 + 2 * w, width - 15 - 2 * w, SL_R_DIM, label);
	}
	free(ppl);
	free(kl);
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	eval_view *v = self;
	const sl_session *s = app->ses;
	sl_textf(r.y, r.x + 1, r.w - 2, SL_R_TITLE, "Evaluate");
	char chunks[16];
	snprintf(chunks, sizeof chunks, s->settings.chunks ? "%d" : "all", s->settings.chunks);
	sl_textf(r.y, r.x + 11, r.w - 12, SL_R_DIM, "windows of %d tokens, %s of them · e calibration text · E evaluation text",
	         s->settings.ctx, chunks);
	int y = r.y + 2;
	if (!s->n_runs) {
		sl_text(y, r.x + 1, r.w - 2, SL_R_DIM,
		        app->model ? "No runs yet: press e to evaluate the recipe against the base model."
		                   : "Open a model first.");
		draw_notes(s, r);
		return;
	}
	follow_new_run(v, app);
	sl_list_fit(&v->list, s->n_runs, 1);
	int notes_h = notes_height(s);
	if (app->marked[1]) {
		/* Two marked runs take the place of the run and the trends; the
		 * table keeps four rows. */
		int max_lines = r.y + r.h - notes_h - y - 8 - 8;
		y += draw_compare(app, y, r.x + 1, r.w - 2, max_lines > 1 ? max_lines : 1) + 1;
	} else {
		draw_run(&s->runs[v->list.cursor], y, r.x + 1, r.w - 2);
		draw_trends(s, v->list.cursor, y + 4, r.x, r.w);
		y += 6;
	}

	/* The recipe takes what the other columns leave (16 to 30); on narrow
	 * screens the time, ΔPPL (the run's figures show it), the model, then
	 * what the run was measured on give way first, so the figures always
	 * fit. */
	enum { C_NUM, C_WHEN, C_MODEL, C_RECIPE, C_BPW, C_TEXT, C_WIN, C_CTX, C_PPL, C_DPPL, C_KL, C_TOP1, NC };
	static const char *heads[NC] = {"#", "when", "model", "recipe", "bpw", "text", "win", "ctx", "PPL", "ΔPPL", "KL",
	                                "top-1"};
	static const int width[NC] = {4, 9, 7, 0, 6, 6, 5, 5, 10, 9, 9, 8};
	static const int give_way[] = {C_WHEN, C_DPPL, C_MODEL, C_CTX, C_BPW, C_WIN, C_TEXT};
	enum { N_GIVE = sizeof give_way / sizeof give_way[0] };
	bool shown[NC];
	int fixed = 0;
	for (int i = 0; i < NC; i++) {
		shown[i] = true;
		fixed += width[i];
	}
	for (int k = 0; k < N_GIVE && r.w - 2 - fixed < 16; k++) {
		shown[give_way[k]] = false;
		fixed -= width[give_way[k]];
	}
	int cw[NC], cx[NC], x = r.x + 1;
	for (int i = 0; i < NC; i++) {
		cw[i] = !shown[i] ? 0 : i == C_RECIPE ? (r.w - 2 - fixed > 30 ? 30 : r.w - 2 - fixed) : width[i];
		cx[i] = x;
		x += cw[i];
	}
	v->dppl_shown = cw[C_DPPL] > 0;
	if (v->fig == 1 && !v->dppl_shown)
		v->fig = 0;
	for (int i = 0; i < NC; i++)
		if (cw[i])
			sl_text(y, cx[i], cw[i] - 1, i == C_PPL + v->fig ? SL_R_SELECTED : SL_R_DIM, heads[i]);
	int span = C_PPL; /* where a speculative run's figures start */
	for (int j = C_CTX; j >= C_WIN; j--)
		if (cw[j])
			span = j;
	v->table = (sl_rect){y + 1, r.x, r.y + r.h - y - 1 - notes_h, r.w};
	sl_list_fit(&v->list, s->n_runs, v->table.h);
	for (int i = 0; i < v->table.h && v->list.top + i < s->n_runs; i++) {
		int k = v->list.top + i;
		const sl_run *run = &s->runs[k];
		bool sel = k == v->list.cursor;
		sl_role role = sel ? SL_R_SELECTED : SL_R_NORMAL;
		int yy = v->table.y + i;
		sl_fill(yy, r.x, r.w, role);
		char c[NC][128];
		snprintf(c[C_NUM], sizeof c[0], "%d%s", k + 1, k + 1 == app->marked[0] || k + 1 == app->marked[1] ? "*" : "");
		snprintf(c[C_WHEN], sizeof c[0], "%.8s", strlen(run->when) > 11 ? run->when + 11 : run->when);
		snprintf(c[C_MODEL], sizeof c[0], "%s", run->model);
		snprintf(c[C_RECIPE], sizeof c[0], "%s", run->recipe_summary);
		snprintf(c[C_BPW], sizeof c[0], run->bpw > 0 ? "%.2f" : "-", run->bpw);
		snprintf(c[C_TEXT], sizeof c[0], "%.5s", run->text);
		/* A speculative run has no windows; a run from before runs kept them, none known. */
		snprintf(c[C_WIN], sizeof c[0], run->speculative ? "" : run->r.n_ctx ? "%d" : "-", run->r.n_chunks);
		snprintf(c[C_CTX], sizeof c[0], run->speculative ? "" : run->r.n_ctx ? "%d" : "-", run->r.n_ctx);
		snprintf(c[C_PPL], sizeof c[0], "%.4f", run->r.ppl);
		snprintf(c[C_DPPL], sizeof c[0], run->r.has_base ? "%+.4f" : "-", run->r.delta_ppl);
		snprintf(c[C_KL], sizeof c[0], run->r.has_base ? "%.5f" : "-", run->r.kl_mean);
		snprintf(c[C_TOP1], sizeof c[0], run->r.has_base ? "%.2f%%" : "-", 100 * run->r.top1);
		/* A speculative run's figures span the columns of the windows and
		 * the evaluation's figures. */
		if (run->speculative)
			spec_cell(run, c[span], sizeof c[0]);
		for (int j = 0; j < (run->speculative ? span + 1 : NC); j++)
			if (cw[j])
				sl_text(yy, cx[j], (run->speculative && j == span ? r.x + r.w - cx[j] : cw[j]) - 1, role, c[j]);
	}
	draw_notes(s, r);
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	eval_view *v = self;
	if (sl_list_key(&v->list, k))
		return true;
	if (k->code == SL_KEY_MOUSE)
		return sl_list_click(&v->list, k, v->table);
	switch (k->code) {
	case SL_KEY_LEFT:
	case SL_KEY_RIGHT: {
		int step = k->code == SL_KEY_LEFT ? N_FIGS - 1 : 1;
		v->fig = (v->fig + step) % N_FIGS;
		if (v->fig == 1 && !v->dppl_shown)
			v->fig = (v->fig + step) % N_FIGS;
		return true;
	}
	case '?': /* the chosen column's figure (a speculative run's: speculative decoding); no runs: the keys */
		if (!app->ses->n_runs)
			return false;
		if (app->ses->runs[v->list.cursor].speculative)
			return sl_card_cmd(SL_CARD_DECODE, "speculative", cmd, n);
		return sl_card_cmd(SL_CARD_METRIC, figures[v->fig], cmd, n);
	case 'e': case SL_KEY_ENTER: snprintf(cmd, n, "eval --text calibration"); return true;
	case 'E': snprintf(cmd, n, "eval --text evaluation"); return true;
	case 'c': snprintf(cmd, n, ":set ctx=%d", app->ses->settings.ctx); return true;
	case 'w': snprintf(cmd, n, ":set chunks=%d", app->ses->settings.chunks); return true;
	case 'n': snprintf(cmd, n, ":note "); return true;
	case 'm':
		if (app->ses->n_runs)
			snprintf(cmd, n, "history mark %d", v->list.cursor + 1);
		return true;
	case 'M': snprintf(cmd, n, "history unmark"); return true;
	case 'd':
	case SL_KEY_DELETE:
		if (app->ses->n_runs)
			snprintf(cmd, n, "history delete %d", v->list.cursor + 1);
		return true;
	}
	return false;
}

static const sl_keyhelp keys[] = {
	{"e Enter", "evaluate on the calibration text"},
	{"E", "evaluate on the evaluation text"},
	{"Up/Down j/k, click", "choose a run of the history"},
	{"c / w", "set the window length / number of windows (0: all)"},
	{"d Delete", "remove the run from the history"},
	{"m / M", "mark the run to compare (two: side by side; a third starts again) / unmark both"},
	{"n", "add a note to the session"},
	{"Left/Right ?", "choose a figure column (PPL, ΔPPL, KL, top-1) / open its card"},
	{NULL, NULL},
};

const sl_view_class sl_view_eval = {
	.name = "eval",
	.title = "Evaluate",
	.hints = "e/E evaluate  m compare  c ctx  w windows  n note",
	.keys = keys,
	.create = create,
	.destroy = free,
	.enter = enter,
	.leave = leave,
	.draw = draw,
	.key = key,
};
