/* The Heatmap view: a sensitivity sweep as a grid, rows the modules
 * grouped by block (or the blocks), columns the options, each cell the
 * chosen metric on a log scale in the palette's colours (glyph density
 * without colours), filling in while the sweep runs. A cursor inspects a
 * cell, with the proxies and how well they rank the modules; one key puts
 * the cell's option into the recipe for its module. b turns the grid into
 * a chart of KL against bytes, for the cursor's row or the whole model,
 * with quantization, pruning and low rank apart: which wins at which size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sweep/sweep.h"
#include "core/tradeoff.h"
#include "core/units.h"
#include "palette.h"
#include "view.h"

static const char *const sorts[] = {"block", "metric", "params"};

typedef struct {
	sl_list list;            /* over the rows shown */
	int row;                 /* the sweep row under the cursor, followed when the order changes */
	int col, left;           /* the option under the cursor; the first option shown */
	/* Where the grid was drawn, for clicks. */
	sl_rect grid;
	int cw, shown_cols;
	int chart;               /* 0: the grid; 1: KL against bytes of the cursor's row; 2: of the whole model */
} heat_view;

static void *create(void)
{
	return calloc(1, sizeof(heat_view));
}

static void enter(void *self, sl_app *app)
{
	heat_view *v = self;
	sl_list_restore(&v->list, app, "heatmap");
	v->row = -1;
}

static void leave(void *self, sl_app *app)
{
	heat_view *v = self;
	sl_list_remember(&v->list, app, "heatmap");
}

static int index_of(const char *const *list, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return i;
	return 0;
}

/* Keeps the cursor on its module when rows are sorted or filtered anew. */
static void follow(heat_view *v, const sl_heat *h, int rows)
{
	if (v->row >= 0)
		for (int i = 0; i < h->n_order; i++)
			if (h->order[i] == v->row) {
				v->list.cursor = i;
				break;
			}
	sl_list_fit(&v->list, h->n_order, rows);
	v->row = h->n_order ? h->order[v->list.cursor] : -1;
	if (v->col >= h->cols)
		v->col = h->cols - 1;
	if (v->col < 0)
		v->col = 0;
}

/* A figure in at most 6 columns: 0.034, 12, 3.4e-5. */
static void short_num(double v, char *buf, size_t n)
{
	double a = fabs(v);
	if (a == 0)
		snprintf(buf, n, "0");
	else if (a >= 0.01 && a < 10)
		snprintf(buf, n, "%.2g", v);
	else if (a >= 10 && a < 1e5)
		snprintf(buf, n, "%.0f", v);
	else {
		char e[32];
		snprintf(e, sizeof e, "%.1e", v);
		char *x = strchr(e, 'e');
		int exp = x ? atoi(x + 1) : 0;
		if (x)
			*x = 0;
		/* "3.4e-05" loses its exponent's zero; "3.0" its fraction */
		size_t l = strlen(e);
		if (l > 2 && !strcmp(e + l - 2, ".0"))
			e[l - 2] = 0;
		snprintf(buf, n, "%se%d", e, exp);
	}
}

/* Where a metric's value falls on the log scale, 0..1. */
static double scale_at(const sl_heat *h, double v)
{
	return (log10(fmax(v, 1e-6)) - h->lo) / (h->hi - h->lo > 1e-9 ? h->hi - h->lo : 1);
}

static void draw_cell(const sl_app *app, const sl_heat *h, const sl_sweep_cell *c, const char *metric, int y, int x,
                      int w, bool cursor)
{
	if (cursor) {
		sl_text(y, x, 1, SL_R_ACCENT, "[");
		sl_text(y, x + w - 1, 1, SL_R_ACCENT, "]");
		x++;
		w -= 2;
	}
	if (w <= 0)
		return;
	double v = sl_sweep_metric(c, metric);
	if (!c->done || c->failed || !isfinite(v)) {
		const char *mark = c->failed ? "x" : app->utf8 ? "·" : ".";
		sl_text(y, x + (w - 1) / 2, 1, c->failed ? SL_R_BAD : SL_R_DIM, mark);
		return;
	}
	char num[32];
	short_num(v, num, sizeof num);
	sl_scale_cell(y, x, w, scale_at(h, v), sl_text_width(num) <= w ? num : NULL);
}

static void fmt_rho(double r, char *buf, size_t n)
{
	if (isfinite(r))
		snprintf(buf, n, "%+.2f", r);
	else
		snprintf(buf, n, "n/a");
}

/* The cell under the cursor in figures, its proxies, and how well each
 * proxy ranks the cells of its option and of all options. */
static void draw_inspector(const sl_app *app, const heat_view *v, sl_rect r)
{
	const sl_heat *h = &app->heat;
	if (v->row < 0 || r.h < 1)
		return;
	const sl_sweep_cell *c = &h->cell[(size_t)v->row * h->cols + v->col];
	char params[32];
	sl_fmt_count(h->row[v->row].params, params, sizeof params);
	int y = r.y, x = r.x + 1, w = r.w - 2;
	char label[128];
	int u = sl_textf(y, x, w, SL_R_TITLE, "%s × %s", sl_app_module_label(app, h->row[v->row].name, label, sizeof label),
	                 h->opt[v->col].label);
	u += sl_textf(y, x + u, w - u, SL_R_DIM, "   %s params", params);
	if (sl_app_tied(app, h->row[v->row].name))
		u += sl_text(y, x + u, w - u, SL_R_DIM, " · tied: the embedding is the output head");
	if (!c->done) {
		sl_text(y + 1, x, w, SL_R_DIM, h->state[0] ? "not measured yet" : "not measured yet: :sweep (or c) goes on");
		return;
	}
	if (c->failed) {
		sl_textf(y + 1, x, w, SL_R_BAD, "failed: %s", c->note);
		return;
	}
	sl_textf(y + 1, x, w, SL_R_NORMAL, "KL %.4g ± %.2g  ΔPPL %+.4g  top-1 %.2f%%  acceptance %.2f%%  PPL %.4f (base %.4f)",
	         c->kl, c->kl_se, c->dppl, 100 * c->top1, 100 * c->acceptance, c->ppl, h->base_ppl);
	char before[32], after[32];
	sl_fmt_bytes(c->bytes_before, before, sizeof before);
	sl_fmt_bytes(c->bytes, after, sizeof after);
	sl_textf(y + 2, x, w, SL_R_NORMAL, "bytes %s → %s (%.2fx)   %.2f s%s%s", before, after,
	         c->bytes > 0 ? c->bytes_before / c->bytes : 0, c->seconds, c->note[0] ? "   " : "", c->note);
	char p[SL_PROXY_COUNT][32], ro[SL_PROXY_COUNT][16], ra[SL_PROXY_COUNT][16];
	for (int k = 0; k < SL_PROXY_COUNT; k++) {
		if (isfinite(c->proxy[k]))
			snprintf(p[k], sizeof p[k], "%.3g", c->proxy[k]);
		else
			snprintf(p[k], sizeof p[k], "n/a");
		fmt_rho(h->rho[v->col * SL_PROXY_COUNT + k], ro[k], sizeof ro[k]);
		fmt_rho(h->rho[h->cols * SL_PROXY_COUNT + k], ra[k], sizeof ra[k]);
	}
	sl_textf(y + 3, x, w, SL_R_NORMAL, "proxies   weight error %s   activation-weighted %s   Fisher %s", p[0], p[1],
	         p[2]);
	sl_textf(y + 4, x, w, SL_R_DIM, "Spearman ρ with KL, this option / all: weight %s / %s   activation %s / %s   "
	                                "Fisher %s / %s",
	         ro[0], ra[0], ro[1], ra[1], ro[2], ra[2]);
	if (h->fisher_note[0] && r.h > 5)
		sl_text(y + 5, x, w, SL_R_DIM, h->fisher_note);
}

/* The scale from the smallest to the largest value, with the order and
 * the filter. */
static void draw_legend(const sl_app *app, int y, int x, int w)
{
	const sl_heat *h = &app->heat;
	const sl_session *s = app->ses;
	int u = sl_text(y, x, w, SL_R_DIM, "scale ");
	int strip = w >= 100 ? 16 : 10; /* narrower on narrow screens, so the order fits */
	for (int i = 0; i < strip && u < w; i++, u++)
		sl_scale_cell(y, x + u, 1, i / (strip - 1.0), NULL);
	char lo[32], hi[32];
	short_num(pow(10, h->lo), lo, sizeof lo);
	short_num(pow(10, h->hi), hi, sizeof hi);
	/* The scale's floor stands for everything below it. */
	u += sl_textf(y, x + u, w - u, SL_R_NORMAL, " %s%s … %s (log)", h->lo <= -6 ? "≤" : "", lo, hi);
	char sort[64];
	if (!strcmp(s->view.heat.sort, "metric") && s->view.heat.sort_col < h->cols)
		snprintf(sort, sizeof sort, "%s under %s", s->view.heat.metric, h->opt[s->view.heat.sort_col].label);
	else
		snprintf(sort, sizeof sort, "%s", s->view.heat.sort);
	sl_textf(y, x + u, w - u, SL_R_DIM, " · %d/%d rows · sort %s%s%s", h->n_order, h->rows, sort,
	         s->view.heat.filter[0] ? " · filter " : "", s->view.heat.filter);
}

/* A technique's letter on the chart: a capital on the frontier. */
static char tech_letter(sl_technique t, bool frontier)
{
	static const char letters[SL_TECH_COUNT] = {'q', 'p', 'l'};
	return (char)(frontier ? letters[t] - 'a' + 'A' : letters[t]);
}

static const sl_role tech_role[SL_TECH_COUNT] = {SL_R_ACCENT, SL_R_WARN, SL_R_GOOD};

/* KL against bytes, both on log scales, one letter per measured option
 * (the cursor's option highlighted), the size as it is marked, and the
 * winners up to each size under it. */
static void draw_chart(const sl_app *app, heat_view *v, sl_rect r)
{
	const sl_heat *h = &app->heat;
	sl_tradeoff *pt = calloc((size_t)h->cols + 1, sizeof *pt);
	if (!pt)
		return;
	int row = v->chart == 1 ? v->row : -1;
	double before;
	int n = sl_tradeoffs(h->cell, h->rows, h->cols, h->opt, row, (double)sl_model_bytes(app->model), pt, &before);
	char label[128], b[32];
	sl_fmt_bytes(before, b, sizeof b);
	int u = sl_textf(r.y, r.x + 1, r.w - 2, SL_R_TITLE, "KL against bytes · %s",
	                 row >= 0 ? sl_app_module_label(app, h->row[row].name, label, sizeof label)
	                          : "the whole model, each option given to every row");
	sl_textf(r.y, r.x + 1 + u, r.w - 2 - u, SL_R_DIM, " · %s as it is · b: %s", b,
	         v->chart == 1 ? "whole model" : "the grid");
	int x = r.x + 1;
	for (int t = 0; t < SL_TECH_COUNT; t++) {
		x += sl_textf(r.y + 1, x, r.x + r.w - x, tech_role[t], "%c", tech_letter(t, true));
		x += sl_textf(r.y + 1, x, r.x + r.w - x, SL_R_NORMAL, " %s  ", sl_technique_name(t));
	}
	sl_text(r.y + 1, x, r.x + r.w - x, SL_R_DIM, "capitals: the frontier (no smaller option has less KL) · | as it is");
	int lines = 0;
	for (int i = 0; i < n; i++)
		lines += pt[i].frontier;
	lines = lines > 4 ? 4 : lines;
	int lw = 9, px = r.x + 1 + lw, pw = r.w - lw - 3, py = r.y + 3, ph = r.h - 6 - lines;
	if (n == 0 || pw < 10 || ph < 4) {
		sl_text(r.y + 3, r.x + 2, r.w - 4, SL_R_DIM,
		        n ? "too small a window for the chart" : "no option is measured in every row yet");
		free(pt);
		return;
	}
	double xlo = log10(before > 0 ? before : pt[0].bytes), xhi = xlo, ylo = INFINITY, yhi = -INFINITY;
	for (int i = 0; i < n; i++) {
		xlo = fmin(xlo, log10(pt[i].bytes));
		xhi = fmax(xhi, log10(pt[i].bytes));
		ylo = fmin(ylo, log10(fmax(pt[i].kl, 1e-6)));
		yhi = fmax(yhi, log10(fmax(pt[i].kl, 1e-6)));
	}
	if (xhi - xlo < 1e-9)
		xhi = xlo + 0.1;
	if (yhi - ylo < 1e-9)
		yhi = ylo + 1;
	for (int i = 0; i < ph; i++)
		sl_text(py + i, px - 1, 1, SL_R_DIM, "│");
	sl_fill(py + ph, px - 1, pw + 1, SL_R_DIM);
	for (int i = 0; i < pw; i++)
		sl_text(py + ph, px + i, 1, SL_R_DIM, "─");
	char lo[32], hi[32];
	short_num(pow(10, yhi), hi, sizeof hi);
	short_num(pow(10, ylo), lo, sizeof lo);
	sl_textf(py, r.x + 1, lw - 1, SL_R_DIM, "KL %s", hi);
	sl_textf(py + ph - 1, r.x + 1, lw - 1, SL_R_DIM, "KL %s", lo);
	sl_fmt_bytes(pow(10, xlo), lo, sizeof lo);
	sl_fmt_bytes(pow(10, xhi), hi, sizeof hi);
	sl_text(py + ph + 1, px, pw / 2, SL_R_DIM, lo);
	sl_text(py + ph + 1, px + pw - sl_text_width(hi), sl_text_width(hi), SL_R_DIM, hi);
	if (before > 0)
		for (int i = 0; i < ph; i++)
			sl_text(py + i, px + (int)lround((log10(before) - xlo) / (xhi - xlo) * (pw - 1)), 1, SL_R_DIM, "┊");
	/* The frontier last, so that it shows where points share a cell; the cursor's option over all. */
	for (int pass = 0; pass < 3; pass++)
		for (int i = 0; i < n; i++) {
			bool cur = pt[i].opt == v->col;
			if ((pass == 0 && (pt[i].frontier || cur)) || (pass == 1 && (!pt[i].frontier || cur)) || (pass == 2 && !cur))
				continue;
			int cx = px + (int)lround((log10(pt[i].bytes) - xlo) / (xhi - xlo) * (pw - 1));
			int cy = py + ph - 1 - (int)lround((log10(fmax(pt[i].kl, 1e-6)) - ylo) / (yhi - ylo) * (ph - 1));
			sl_textf(cy, cx, 1, cur ? SL_R_SELECTED : tech_role[pt[i].tech], "%c",
			         tech_letter(pt[i].tech, pt[i].frontier));
		}
	int y = py + ph + 2, shown = 0;
	for (int i = 0; i < n && shown < lines; i++) {
		if (!pt[i].frontier)
			continue;
		sl_fmt_bytes(pt[i].bytes, b, sizeof b);
		sl_textf(y + shown++, r.x + 1, r.w - 2, pt[i].opt == v->col ? SL_R_SELECTED : SL_R_NORMAL,
		         "from %-10s %-16s %-12s KL %.4g", b, h->opt[pt[i].opt].label, sl_technique_name(pt[i].tech), pt[i].kl);
	}
	free(pt);
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	heat_view *v = self;
	const sl_heat *h = &app->heat;
	const sl_session *s = app->ses;
	sl_scale_set(sl_palette);
	const char *metric = s->view.heat.metric;
	int mi = sl_sweep_metric_find(metric);
	if (!h->rows) {
		sl_text(r.y, r.x + 1, r.w - 2, SL_R_TITLE, "Sensitivity");
		char hint[512], defaults[256];
		sl_sweep_default_options(defaults, sizeof defaults);
		snprintf(hint, sizeof hint, "No sweep yet: S starts one (:sweep %s measures each module under each option alone).",
		         defaults);
		sl_text(r.y + 2, r.x + 2, r.w - 4, SL_R_DIM, !app->model ? "Open a model first." : h->state[0] ? h->state : hint);
		return;
	}
	if (v->chart) {
		follow(v, h, 1);
		draw_chart(app, v, r);
		return;
	}
	int u = sl_textf(r.y, r.x + 1, r.w - 2, SL_R_TITLE, "%s", sl_sweep_metric_title(mi < 0 ? 0 : mi));
	u += sl_textf(r.y, r.x + 1 + u, r.w - 2 - u, SL_R_NORMAL, " · %d %s × %d options · %d/%d measured · base PPL %.4g",
	              h->rows, h->unit == SL_SWEEP_BLOCKS ? "blocks" : "modules", h->cols, h->done, h->rows * h->cols,
	              h->base_ppl);
	if (h->state[0])
		sl_textf(r.y, r.x + 1 + u, r.w - 2 - u, SL_R_ACCENT, "   %s", h->state);
	draw_legend(app, r.y + 1, r.x + 1, r.w - 2);

	int insp_h = r.h >= 18 ? 6 : r.h >= 14 ? 4 : 0;
	int lw_block = h->unit == SL_SWEEP_BLOCKS ? 0 : 7, lw_kind = 12;
	int lw = h->unit == SL_SWEEP_BLOCKS ? 8 : lw_block + lw_kind;
	int avail = r.w - 2 - lw;
	v->cw = h->cols ? avail / h->cols : avail;
	v->cw = v->cw > 10 ? 10 : v->cw < 4 ? 4 : v->cw;
	v->shown_cols = avail / v->cw < h->cols ? avail / v->cw : h->cols;
	if (v->shown_cols < 1)
		v->shown_cols = 1;
	if (v->col < v->left)
		v->left = v->col;
	if (v->col >= v->left + v->shown_cols)
		v->left = v->col - v->shown_cols + 1;

	int hy = r.y + 3, gx = r.x + 1 + lw;
	for (int k = 0; k < v->shown_cols && v->left + k < h->cols; k++) {
		int c = v->left + k;
		sl_text(hy, gx + k * v->cw, v->cw - 1, c == v->col ? SL_R_SELECTED : SL_R_DIM, h->opt[c].label);
	}
	if (v->left > 0)
		sl_text(hy, gx - 2, 1, SL_R_DIM, "<");
	if (v->left + v->shown_cols < h->cols)
		sl_text(hy, gx + v->shown_cols * v->cw - 1, 1, SL_R_DIM, ">");
	v->grid = (sl_rect){hy + 1, gx, r.y + r.h - insp_h - hy - 1, v->shown_cols * v->cw};
	follow(v, h, v->grid.h);
	bool by_block = !strcmp(s->view.heat.sort, "block");
	for (int i = 0; i < v->grid.h && v->list.top + i < h->n_order; i++) {
		int pos = v->list.top + i, row = h->order[pos], y = v->grid.y + i;
		bool sel = pos == v->list.cursor;
		/* In block order a block's name heads its first row only. */
		int prev = pos > 0 ? h->order[pos - 1] : -1;
		bool head = !by_block || i == 0 || prev < 0 || h->row[prev].block != h->row[row].block;
		if (h->unit == SL_SWEEP_BLOCKS || h->row[row].block < 0) {
			char label[128];
			sl_text(y, r.x + 1, lw - 1, sel ? SL_R_SELECTED : SL_R_NORMAL,
			        sl_app_module_label(app, h->row[row].name, label, sizeof label));
		} else {
			if (head)
				sl_textf(y, r.x + 1, lw_block - 1, sel ? SL_R_SELECTED : SL_R_DIM, "blk.%d", h->row[row].block);
			sl_text(y, r.x + 1 + lw_block, lw_kind - 1, sel ? SL_R_SELECTED : SL_R_NORMAL,
			        h->row[row].kind[0] ? h->row[row].kind : h->row[row].name);
		}
		for (int k = 0; k < v->shown_cols && v->left + k < h->cols; k++) {
			int c = v->left + k;
			draw_cell(app, h, &h->cell[(size_t)row * h->cols + c], metric, y, gx + k * v->cw, v->cw - 1,
			          sel && c == v->col);
		}
	}
	if (!h->n_order)
		sl_textf(v->grid.y, r.x + 2, r.w - 4, SL_R_DIM, "no row matches the filter '%s' (/ changes it)",
		         s->view.heat.filter);
	if (insp_h)
		draw_inspector(app, v, (sl_rect){r.y + r.h - insp_h + 1, r.x, insp_h - 1, r.w});
}

/* A click on a cell moves the cursor there. */
static bool click(heat_view *v, const sl_app *app, const sl_key *k)
{
	const sl_heat *h = &app->heat;
	sl_rect g = v->grid;
	if (k->button != SL_MOUSE_LEFT || k->y < g.y || k->y >= g.y + g.h || k->x < g.x || k->x >= g.x + g.w)
		return false;
	int pos = v->list.top + (k->y - g.y), col = v->left + (k->x - g.x) / v->cw;
	if (pos >= h->n_order || col >= h->cols)
		return false;
	v->list.cursor = pos;
	v->row = h->order[pos];
	v->col = col;
	return true;
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	heat_view *v = self;
	const sl_heat *h = &app->heat;
	const sl_session *s = app->ses;
	if (k->code == SL_KEY_MOUSE && click(v, app, k))
		return true;
	if (sl_list_key(&v->list, k)) {
		v->row = v->list.cursor < h->n_order ? h->order[v->list.cursor] : -1;
		return true;
	}
	switch (k->code) {
	case SL_KEY_LEFT:
	case 'h':
		if (v->col > 0)
			v->col--;
		return true;
	case SL_KEY_RIGHT:
	case 'l':
		if (v->col + 1 < h->cols)
			v->col++;
		return true;
	case '?': /* the column's technique; no sweep: the keys */
		return h->cols > 0 && v->col < h->cols && sl_rule_card_cmd(&h->opt[v->col].rule, cmd, n);
	case 'M': return sl_card_cmd(SL_CARD_METRIC, s->view.heat.metric, cmd, n);
	case 'm':
		snprintf(cmd, n, "heatmap metric %s",
		         sl_sweep_metric_name((sl_sweep_metric_find(s->view.heat.metric) + 1) % sl_sweep_metric_count()));
		return true;
	case 's': {
		/* block, then the metric under the cursor's option, then size */
		const char *next = sorts[(index_of(sorts, 3, s->view.heat.sort) + 1) % 3];
		snprintf(cmd, n, "heatmap sort %s %d", next, v->col + 1);
		return true;
	}
	case '/': snprintf(cmd, n, ":heatmap filter %s", s->view.heat.filter); return true;
	case 'S': {
		char defaults[256];
		sl_sweep_default_options(defaults, sizeof defaults);
		snprintf(cmd, n, ":sweep %s", h->options[0] ? h->options : defaults);
		return true;
	}
	case 'c': snprintf(cmd, n, "sweep"); return true;
	case 'a': snprintf(cmd, n, ":autorecipe 4.5bpw"); return true;
	case 'b': v->chart = (v->chart + 1) % 3; return true;
	case 'x':
		if (v->chart == 1 && v->row >= 0)
			snprintf(cmd, n, ":sweep chart tradeoff.svg %s", h->row[v->row].name);
		else if (v->chart)
			snprintf(cmd, n, ":sweep chart tradeoff.svg");
		else
			snprintf(cmd, n, ":sweep export sweep.svg");
		return true;
	case 'r':
	case SL_KEY_ENTER:
		if (v->row >= 0 && v->row < h->rows) {
			/* The option becomes the rule for this module (or block), as
			 * the Recipe view would write it: undoable, autosaved. */
			char words[256], sel[96];
			sl_rule_words(&h->opt[v->col].rule, words, sizeof words);
			if (h->unit == SL_SWEEP_BLOCKS)
				snprintf(sel, sizeof sel, "blk.%d.*", h->row[v->row].block);
			else
				snprintf(sel, sizeof sel, "%s", h->row[v->row].name);
			snprintf(cmd, n, "rule set %s %s note='from the heatmap: %s'", sel, words, h->opt[v->col].label);
		}
		return true;
	}
	return false;
}

static const sl_keyhelp keys[] = {
	{"arrows hjkl, click", "move over the cells"},
	{"Enter r", "put the cell's option into the recipe, for its module"},
	{"m", "metric: KL, change in perplexity, 1 - top-1, 1 - acceptance as a draft"},
	{"s", "sort rows: by block, by the metric under the cursor's option, by size"},
	{"/", "filter rows: a glob over names or kinds (attn_*, ffn_*, blk.3.*)"},
	{"S", "start a sweep (type the options)"},
	{"c", "go on with the sweep after Esc stopped it"},
	{"a", "automatic recipe under a budget, then measured"},
	{"x", "export the heatmap as SVG (or .csv, .json); on the chart, the chart"},
	{"b", "chart of KL against bytes: the cursor's row, the whole model, back to the grid"},
	{"? / M", "the card of the cursor's column (its format or method) / of the metric shown"},
	{NULL, NULL},
};

const sl_view_class sl_view_heatmap = {
	.name = "heatmap",
	.title = "Heatmap",
	.hints = "Enter to recipe  m metric  s sort  / filter  S sweep  a auto  b bytes chart",
	.keys = keys,
	.create = create,
	.destroy = free,
	.enter = enter,
	.leave = leave,
	.draw = draw,
	.key = key,
};
