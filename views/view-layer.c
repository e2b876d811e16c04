/* The Layer inspector: one module's weights (histogram, moments, outliers,
 * per-channel ranges) and the activations entering it on the calibration
 * text (per-channel magnitudes, outlier channels). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/units.h"
#include "view.h"

typedef struct {
	bool log;               /* histogram on a log scale */
	sl_menu menu;
} layer_view;

static void *create(void)
{
	return calloc(1, sizeof(layer_view));
}

/* Values of a float array, or of a difference of two, as doubles for the charts. */
static double *as_doubles(const float *a, const float *minus, int64_t n)
{
	double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
	for (int64_t i = 0; d && i < n; i++)
		d[i] = (double)a[i] - (minus ? (double)minus[i] : 0);
	return d;
}

static void spark_row(int y, int x, int w, const char *label, const float *a, const float *minus, int64_t n,
                      sl_role role)
{
	int used = sl_text(y, x, w, SL_R_DIM, label);
	double *d = as_doubles(a, minus, n);
	if (d)
		sl_spark(y, x + used, w - used, d, (int)n, false, role);
	free(d);
}

static int draw_weights(layer_view *v, const sl_app *app, sl_rect r)
{
	const sl_weight_stats *s = &app->wstats;
	int y = r.y;
	sl_text(y++, r.x, r.w, SL_R_TITLE, "Weights");
	sl_textf(y++, r.x, r.w, SL_R_NORMAL, "min %.4g  max %.4g  mean %.3g  std %.3g", s->min, s->max, s->mean, s->std);
	sl_textf(y++, r.x, r.w, SL_R_NORMAL, "excess kurtosis %.2f   beyond %.0f std: %lld (%.3f%%)", s->kurtosis,
	         s->outlier_sigma, (long long)s->n_outliers, 100.0 * (double)s->n_outliers / (double)s->n);
	/* The histogram takes what the fixed lines leave, 3 to 10 rows; the
	 * largest weights fill whatever is left below. */
	int hh = r.h - 10 < 3 ? 3 : r.h - 10 > 10 ? 10 : r.h - 10;
	double *h = malloc((size_t)s->n_bins * sizeof *h);
	if (h) {
		for (int i = 0; i < s->n_bins; i++)
			h[i] = (double)s->hist[i];
		sl_columns((sl_rect){y, r.x, hh, r.w}, h, s->n_bins, v->log, SL_R_FILL);
		free(h);
	}
	y += hh;
	char lo[32], hi[32];
	snprintf(lo, sizeof lo, "%.3g", s->lo);
	snprintf(hi, sizeof hi, "%.3g", s->hi);
	sl_text(y, r.x, r.w, SL_R_DIM, lo);
	sl_textf(y, r.x + (r.w - 9) / 2, 9, SL_R_DIM, "%s", v->log ? "log count" : "count");
	sl_text(y++, r.x + r.w - (int)strlen(hi), (int)strlen(hi), SL_R_DIM, hi);
	spark_row(y++, r.x, r.w, "row ranges ", s->row_max, s->row_min, s->rows, SL_R_ACCENT);
	spark_row(y++, r.x, r.w, "col max|w| ", s->col_abs_max, NULL, s->cols, SL_R_ACCENT);
	if (y < r.y + r.h)
		sl_text(y++, r.x, r.w, SL_R_DIM, "largest |w|  (row, col)");
	for (int i = 0; i < s->n_top && y < r.y + r.h; i += 2) {
		int x = r.x;
		for (int j = i; j < i + 2 && j < s->n_top; j++)
			x += sl_textf(y, x, r.x + r.w - x, SL_R_NORMAL, "%+9.4g (%lld, %lld)   ", s->top[j].value,
			              (long long)s->top[j].row, (long long)s->top[j].col);
		y++;
	}
	return y;
}

static void draw_acts(const sl_app *app, const sl_module *m, sl_rect r)
{
	int y = r.y;
	sl_text(y++, r.x, r.w, SL_R_TITLE, "Activations entering it");
	if (!app->act) {
		sl_text(y++, r.x, r.w, SL_R_DIM, "not gathered yet: press a to run the");
		sl_text(y++, r.x, r.w, SL_R_DIM, "model over the calibration text");
		return;
	}
	if (m->kind == SL_MOD_EMBD) {
		sl_text(y++, r.x, r.w, SL_R_DIM, "its input is token ids, not activations");
		return;
	}
	if (!app->act_in) {
		sl_text(y++, r.x, r.w, SL_R_DIM, "its input, the final normed state, is not recorded");
		return;
	}
	const sl_act_summary *s = &app->act_sum;
	const sl_act_channels *c = app->act_in;
	sl_textf(y++, r.x, r.w, SL_R_DIM, "%s, %lld tokens of %s", app->act_tap, c->n_tokens, app->act->text);
	sl_textf(y++, r.x, r.w, SL_R_NORMAL, "max |x| %.4g   rms %.4g", s->abs_max, s->rms);
	sl_textf(y++, r.x, r.w, SL_R_NORMAL, "median channel max %.4g", s->median_channel_max);
	sl_textf(y++, r.x, r.w, s->n_outlier_channels ? SL_R_WARN : SL_R_NORMAL, "outlier channels (> %.0fx median): %d",
	         s->outlier_ratio, s->n_outlier_channels);
	spark_row(y++, r.x, r.w, "max|x| ", c->abs_max, NULL, c->n, SL_R_RIGHT);
	sl_text(y++, r.x, r.w, SL_R_DIM, "largest channels");
	for (int i = 0; i < s->n_top && y < r.y + r.h; i++)
		sl_textf(y++, r.x, r.w, SL_R_NORMAL, "  #%-6d %9.4g  rms %.4g", s->top[i], c->abs_max[s->top[i]],
		         sqrt(c->sum_sq[s->top[i]] / (double)c->n_tokens));
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	layer_view *v = self;
	int mi = sl_app_module_index(app, app->ses->view.inspect);
	if (mi < 0 && app->n_mods)
		mi = 0;
	if (mi < 0) {
		sl_text(r.y + 1, r.x + 2, r.w - 4, SL_R_DIM, "No model is open.");
		return;
	}
	const sl_module *m = &app->mods[mi];
	char shape[32], p[32], b[32];
	sl_tensor_shape_str(m->w, shape, sizeof shape);
	sl_fmt_count((double)sl_tensor_nelements(m->w), p, sizeof p);
	sl_fmt_bytes((double)sl_tensor_bytes(m->w), b, sizeof b);
	int x = r.x + 1;
	x += sl_text(r.y, x, r.w - 2, SL_R_TITLE, m->name);
	char type[32];
	if (m->w->lr_a)
		snprintf(type, sizeof type, "%s factors of rank %d", sl_dtype_name(m->w->lr_b->type), sl_tensor_rank(m->w));
	else
		snprintf(type, sizeof type, "%s", sl_dtype_name(m->w->type));
	sl_textf(r.y, x, r.x + r.w - x, SL_R_NORMAL, "  %s · %s · %s params · %s  (%d of %d)", shape, type, p, b, mi + 1,
	         app->n_mods);
	if (app->plans) {
		char plan[96];
		sl_plan_summary(&app->plans[mi], m->w, plan, sizeof plan);
		int u = sl_textf(r.y + 1, r.x + 1, r.w - 2, SL_R_DIM, "recipe: %s", plan);
		if (sl_app_tied(app, m->name))
			sl_text(r.y + 1, r.x + 1 + u, r.w - 2 - u, SL_R_ACCENT, " · also the output head (tied embeddings)");
	}
	sl_rect body = {r.y + 3, r.x + 1, r.h - 3, r.w - 2};
	if (strcmp(app->wstats_module, m->name) || !app->wstats.n) {
		sl_text(body.y, body.x, body.w, SL_R_DIM,
		        app->job.active ? "statistics are computed when the running job ends"
		                        : "computing statistics... (press r if they do not appear)");
		return;
	}
	/* Side by side when there is room, else one above the other. */
	if (body.w >= 100) {
		int lw = body.w / 2 - 1;
		draw_weights(v, app, (sl_rect){body.y, body.x, body.h, lw});
		draw_acts(app, m, (sl_rect){body.y, body.x + lw + 2, body.h, body.w - lw - 2});
	} else {
		/* Stacked: the activations keep their first seven lines. */
		int wh = body.h - 8 < 11 ? 11 : body.h - 8;
		int y = draw_weights(v, app, (sl_rect){body.y, body.x, wh, body.w});
		if (y + 3 < body.y + body.h)
			draw_acts(app, m, (sl_rect){y + 1, body.x, body.y + body.h - y - 1, body.w});
	}
	if (v->menu.open)
		sl_menu_draw(&v->menu, r);
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	layer_view *v = self;
	int mi = sl_app_module_index(app, app->ses->view.inspect);
	if (mi < 0)
		mi = 0;
	if (v->menu.open) {
		int item = sl_menu_key(&v->menu, k);
		if (item == SL_MENU_CARD)
			sl_pick_card_cmd(&v->menu, cmd, n);
		if (item >= 0 && mi < app->n_mods) {
			char words[96];
			sl_pick_words(&v->menu, item, words, sizeof words);
			snprintf(cmd, n, "rule %s %s", app->mods[mi].name, words);
		}
		return true;
	}
	if (!app->n_mods)
		return false;
	int step = 0;
	switch (k->code) {
	case '[': case SL_KEY_UP: case SL_KEY_LEFT: case 'k': step = -1; break;
	case ']': case SL_KEY_DOWN: case SL_KEY_RIGHT: case 'j': step = 1; break;
	case SL_KEY_PGUP: step = -8; break;
	case SL_KEY_PGDN: step = 8; break;
	case 'l':
		v->log = !v->log;
		return true;
	case 'a':
		snprintf(cmd, n, "stats");
		return true;
	case 'r':
		snprintf(cmd, n, "inspect %s", app->mods[mi].name);
		return true;
	case 'f': {
		sl_rule scope;
		sl_rule_init(&scope);
		snprintf(scope.match, sizeof scope.match, "%s", app->mods[mi].name);
		sl_pick_format(&v->menu, app, &scope, app->plans && app->plans[mi].format ? app->plans[mi].format->name : NULL);
		return true;
	}
	default:
		return false;
	}
	int to = mi + step;
	to = to < 0 ? 0 : to >= app->n_mods ? app->n_mods - 1 : to;
	if (to != mi)
		snprintf(cmd, n, "inspect %s", app->mods[to].name);
	return true;
}

static const sl_keyhelp keys[] = {
	{"[ ] Up/Down", "previous / next module"},
	{"PgUp/PgDn", "eight modules back / on"},
	{"a", "gather activation statistics over the calibration text"},
	{"l", "histogram on a log / linear scale"},
	{"f", "choose the format for this module"},
	{"r", "compute the statistics again"},
	{NULL, NULL},
};

const sl_view_class sl_view_layer = {
	.name = "layer",
	.title = "Layer",
	.hints = "[ ] module  a activations  l log scale  f format",
	.keys = keys,
	.create = create,
	.destroy = free,
	.draw = draw,
	.key = key,
};
