/* The Heal view: healing the session's recipe by training (QAT, QAD, KD or
 * LoRA), its settings chosen from menus, the run as it goes (the training
 * loss and the held-out KL against the base, side by side), and the
 * post-training and healed figures side by side with the share of the KL
 * recovered. The settings row's items are what :heal set takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/units.h"
#include "view.h"

enum { I_METHOD, I_STEPS, I_BATCH, I_LR, I_TEMP, I_RANK, I_SEQ, I_OUT, I_CKPT, N_ITEMS };

/* Each setting: its key in :heal set, the key that picks it, its menu. */
static const struct {
	const char *name, *label;
	int hotkey;
	const char *const *items, *const *notes;
} item_def[N_ITEMS] = {
	[I_METHOD] = {"method", "method", 'm',
	              (const char *const[]){"qat", "qad", "kd", "lora", NULL},
	              (const char *const[]){"train through the formats' fake quantization, on cross-entropy",
	                                    "the same on KL to the base model, which runs beside it as teacher",
	                                    "distillation from the base after pruning (pruned weights stay pruned)",
	                                    "compressed weights frozen; low-rank adapters train, then merge in", NULL}},
	[I_STEPS] = {"steps", "steps", 's', (const char *const[]){"10", "20", "50", "100", "200", "300", "500", "1000",
	                                                          "2000", "5000", "other", NULL}},
	[I_BATCH] = {"batch", "batch", 'b', (const char *const[]){"1", "2", "4", "8", "16", "32", "other", NULL}},
	[I_LR] = {"lr", "lr", 'l',
	          (const char *const[]){"auto", "1e-5", "3e-5", "1e-4", "2e-4", "5e-4", "1e-3", "3e-3", "other", NULL},
	          (const char *const[]){"the method's: 2e-4, lora 1e-3", "", "", "", "", "", "", "", "type one", NULL}},
	[I_TEMP] = {"temperature", "temp", 't', (const char *const[]){"0.5", "1", "2", "4", "other", NULL}},
	[I_RANK] = {"rank", "rank", 'k', (const char *const[]){"4", "8", "16", "32", "64", "other", NULL}},
	[I_SEQ] = {"seq_len", "seq", 'n',
	           (const char *const[]){"auto", "32", "64", "128", "256", "other", NULL},
	           (const char *const[]){"min(128, the model's context)", "", "", "", "", "type one", NULL}},
	[I_OUT] = {"out", "out", 'w', NULL, NULL},
	[I_CKPT] = {"checkpoint", "checkpoint", 'c', NULL, NULL},
};

typedef struct {
	int item;
	sl_menu menu;
	sl_rect at[N_ITEMS];   /* where each setting was drawn, for clicks */
} heal_view;

static void *create(void)
{
	return calloc(1, sizeof(heal_view));
}

static int count(const char *const *v)
{
	int n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* A setting's value as its row shows it. */
static void item_value(const sl_heal_settings *s, int i, char *buf, size_t n)
{
	switch (i) {
	case I_METHOD: snprintf(buf, n, "%s", s->method); break;
	case I_STEPS: snprintf(buf, n, "%d", s->steps); break;
	case I_BATCH: snprintf(buf, n, "%d", s->batch); break;
	case I_LR: snprintf(buf, n, s->lr > 0 ? "%g" : "auto", s->lr); break;
	case I_TEMP: snprintf(buf, n, "%g", s->temperature); break;
	case I_RANK: snprintf(buf, n, "%d", s->rank); break;
	case I_SEQ: snprintf(buf, n, s->seq_len ? "%d" : "auto", s->seq_len); break;
	case I_OUT: snprintf(buf, n, "%s", s->out[0] ? s->out : "a new file in the data directory"); break;
	case I_CKPT: snprintf(buf, n, "%s", s->checkpoint[0] ? s->checkpoint : "named by the run, beside it"); break;
	}
}

/* Settings the method does not use are drawn dim. */
static bool item_used(const sl_heal_settings *s, int i)
{
	bool kl = !strcmp(s->method, "qad") || !strcmp(s->method, "kd");
	return (i != I_TEMP || kl) && (i != I_RANK || !strcmp(s->method, "lora"));
}

static int draw_item(heal_view *v, const sl_app *app, int i, int y, int x, int w, int vw)
{
	char val[4096], fit[512];
	item_value(&app->heal.set, i, val, sizeof val);
	if (i >= I_OUT)
		sl_path_fit(val, vw, fit, sizeof fit);
	else
		snprintf(fit, sizeof fit, "%.64s", val);
	bool sel = v->item == i;
	int u = sl_textf(y, x, w, sel ? SL_R_SELECTED : SL_R_DIM, "%s ", item_def[i].label);
	u += sl_text(y, x + u, w - u, sel ? SL_R_SELECTED : item_used(&app->heal.set, i) ? SL_R_ACCENT : SL_R_DIM, fit);
	v->at[i] = (sl_rect){y, x, 1, u};
	return u;
}

static void draw_settings(heal_view *v, const sl_app *app, int y, int x, int w)
{
	int u = 0;
	for (int i = I_METHOD; i < I_OUT && u < w; i++)
		u += draw_item(v, app, i, y, x + u, w - u, 16) + 2;
	int half = (w - 2) / 2;
	u = draw_item(v, app, I_OUT, y + 1, x, half, half - 4) + 2;
	u = u > half + 2 ? u : half + 2;
	draw_item(v, app, I_CKPT, y + 1, x + u, w - u, w - u - 11);
}

/* One figure before and after healing, and its change. */
static void figure_row(int y, int x, int w, const char *label, const char *fmt, const char *dfmt, double a, bool has_a,
                       double b, bool has_b, bool lower_better)
{
	char va[32] = "-", vb[32] = "-", d[32] = "";
	if (has_a)
		snprintf(va, sizeof va, fmt, a);
	if (has_b)
		snprintf(vb, sizeof vb, fmt, b);
	if (has_a && has_b)
		snprintf(d, sizeof d, dfmt, b - a);
	sl_text(y, x, 8, SL_R_DIM, label);
	sl_textf(y, x + 8, w - 8, SL_R_NORMAL, "%14s  %14s", va, vb);
	bool better = lower_better ? b < a : b > a;
	if (d[0] && w > 42)
		sl_text(y, x + 40, w - 40, b == a ? SL_R_NORMAL : better ? SL_R_GOOD : SL_R_BAD, d);
}

static int draw_figures(const sl_healing *h, int y, int x, int w)
{
	sl_textf(y, x + 8, w - 8, SL_R_DIM, "%14s  %14s  %s", "post-training", "healed", "change");
	const sl_eval_result *b = &h->before, *a = &h->after;
	bool hb = h->has_before, ha = h->has_after;
	figure_row(y + 1, x, w, "KL", "%.5f", "%+.5f", b->kl_mean, hb, a->kl_mean, ha, true);
	figure_row(y + 2, x, w, "PPL", "%.3f", "%+.3f", b->ppl, hb, a->ppl, ha, true);
	figure_row(y + 3, x, w, "top-1", "%.2f%%", "%+.2f pt", 100 * b->top1, hb, 100 * a->top1, ha, false);
	if (ha)
		sl_textf(y + 4, x, w, h->recovered > 0 ? SL_R_GOOD : SL_R_WARN,
		         "recovered %.1f%% of the post-training KL (evaluation text, %d windows of %d)", 100 * h->recovered,
		         a->n_chunks, a->n_ctx);
	else if (hb)
		sl_textf(y + 4, x, w, SL_R_DIM, "evaluation text, %d windows of %d, against the base model", b->n_chunks,
		         b->n_ctx);
	return 5;
}

/* The held-out KL measured at some updates, held until the next one, on
 * the axis of the updates. */
static void draw_kl(const sl_healing *h, sl_rect r, int label_w)
{
	if (!h->n_kl || h->steps <= 0)
		return;
	double *v = calloc((size_t)h->steps, sizeof *v);
	if (!v)
		return;
	int n = 0;
	for (int k = 0; k < h->n_kl; k++) {
		int from = (int)h->kl[2 * k] - 1, to = k + 1 < h->n_kl ? (int)h->kl[2 * k + 2] - 1 : from + 1;
		from = from < 0 ? 0 : from;
		for (int i = from; i < to && i < h->steps; i++)
			v[i] = h->kl[2 * k + 1];
		n = to > n ? (to < h->steps ? to : (int)h->steps) : n;
	}
	sl_curve(r, label_w, v, n, (int)h->steps, SL_R_RIGHT);
	free(v);
}

static void draw_run(const sl_healing *h, int y, int x, int w)
{
	char out[512], el[16], eta[16];
	sl_path_fit(h->out, w - sl_text_width(h->label) - sl_text_width(h->recipe) - 8, out, sizeof out);
	int u = sl_text(y, x, w, SL_R_TITLE, h->label);
	sl_textf(y, x + u, w - u, SL_R_NORMAL, " of %s → %s", h->recipe, out);
	sl_fmt_duration(h->elapsed, el, sizeof el);
	sl_fmt_duration(h->eta, eta, sizeof eta);
	u = sl_textf(y + 1, x, w, SL_R_NORMAL, "step %lld of %lld  ", (long long)h->step, (long long)h->steps);
	int bw = w - u - 42 > 30 ? 30 : w - u - 42;
	if (bw > 4) {
		sl_bar(y + 1, x + u, bw, h->steps ? (double)h->step / (double)h->steps : 0, SL_R_FILL, SL_R_EMPTY);
		u += bw;
	}
	sl_textf(y + 1, x + u, w - u, SL_R_NORMAL, "  %s, ETA %s  %.0f tok/s", el, h->running && h->step ? eta : "--:--",
	         h->tokens_per_s);
	u = sl_text(y + 2, x, w, SL_R_NORMAL, "loss ");
	if (h->n_loss && h->loss[h->n_loss - 1] > 0)
		u += sl_textf(y + 2, x + u, w - u, SL_R_ACCENT, "%.4f", h->loss[h->n_loss - 1]);
	else
		u += sl_text(y + 2, x + u, w - u, SL_R_DIM, "-");
	u += sl_textf(y + 2, x + u, w - u, SL_R_NORMAL, "   lr %.2e   |grad| %.3f", h->lr, h->grad_norm);
	if (h->n_kl) {
		u += sl_text(y + 2, x + u, w - u, SL_R_NORMAL, "   held-out KL ");
		sl_textf(y + 2, x + u, w - u, SL_R_RIGHT, "%.5f", h->kl[2 * h->n_kl - 1]);
	}
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	heal_view *v = self;
	const sl_healing *h = &app->heal;
	int x = r.x + 1, w = r.w - 2, y = r.y, bottom = r.y + r.h;
	int u = sl_text(y, x, w, SL_R_TITLE, "Heal");
	if (app->model) {
		char what[160];
		sl_recipe_summary(app->ses->recipe, NULL, what, sizeof what);
		u += sl_textf(y, x + u, w - u, SL_R_NORMAL, "  recipe %s", app->recipe_empty ? "(compresses nothing)" : what);
		if (!app->recipe_empty)
			u += sl_textf(y, x + u, w - u, SL_R_NORMAL, ", %.2f bpw", app->est.bpw);
		if (app->ses->healed.model[0])
			sl_textf(y, x + u, w - u, SL_R_GOOD, " · healed by %s (u undoes)", app->ses->healed.label);
	}
	draw_settings(v, app, y + 1, x, w);
	y += 4;
	if (!h->label[0]) {
		static const char *const help[] = {
			"No run yet. h heals the recipe's model with these settings: the recipe is",
			"applied, then the compressed model trains back towards the base model.",
			"Enter (or a key that ? lists) chooses a setting. Esc stops the run with a",
			"checkpoint that h or r goes on from. The healed model is written to its",
			"file and becomes the session's model (u undoes).",
		};
		for (int i = 0; i < 5 && y + i < bottom; i++)
			sl_text(y + i, x, w, SL_R_DIM, help[i]);
	} else {
		draw_run(h, y, x, w);
		y += 3;
		/* From the bottom: the outcome, the notes that fit, the figures;
		 * the curves take what is left. */
		if (h->outcome[0])
			sl_text(--bottom, x, w, h->running ? SL_R_NORMAL : h->finished ? SL_R_GOOD : SL_R_WARN, h->outcome);
		int notes = h->n_notes < bottom - y - 6 ? h->n_notes : bottom - y - 6;
		notes = notes < 0 ? 0 : notes;
		bottom -= notes;
		for (int i = 0; i < notes; i++)
			sl_text(bottom + i, x, w, SL_R_DIM, h->notes[h->n_notes - notes + i]);
		if (bottom - y >= 5)
			bottom -= draw_figures(h, bottom - 5, x, w);
		int ch = bottom - y - 2;
		if (ch >= 2) {
			int half = (w - 1) / 2;
			sl_textf(y, x, half, SL_R_DIM, "training loss (%s)", h->loss_name[0] ? h->loss_name : "per update");
			sl_text(y, x + half + 1, w - half - 1, SL_R_DIM, "held-out KL against the base");
			sl_rect lr = {y + 1, x + 7, ch, half - 8}, kr = {y + 1, x + half + 8, ch, w - half - 8};
			sl_curve(lr, 7, h->loss, h->n_loss, (int)h->steps, SL_R_ACCENT);
			draw_kl(h, kr, 7);
		}
	}
	if (v->menu.open)
		sl_menu_draw(&v->menu, r);
}

/* The menu of item i, at its current value; out and checkpoint are typed. */
static void open_item(heal_view *v, const sl_app *app, int i, char *cmd, size_t n)
{
	v->item = i;
	char val[4096];
	item_value(&app->heal.set, i, val, sizeof val);
	if (!item_def[i].items) {
		snprintf(cmd, n, ":heal set %s=%s", item_def[i].name,
		         (i == I_OUT ? app->heal.set.out : app->heal.set.checkpoint));
		return;
	}
	int k = count(item_def[i].items), cur = 0;
	for (int j = 0; j < k; j++)
		if (!strcmp(item_def[i].items[j], val))
			cur = j;
	sl_menu_open(&v->menu, item_def[i].name, item_def[i].items, item_def[i].notes, k, cur, i);
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	heal_view *v = self;
	if (v->menu.open) {
		int chosen = sl_menu_key(&v->menu, k);
		if (chosen == SL_MENU_CARD && v->menu.tag == I_METHOD)
			sl_card_cmd(SL_CARD_HEAL, v->menu.items[sl_menu_current(&v->menu)], cmd, n);
		if (chosen >= 0) {
			const char *item = v->menu.items[chosen], *name = item_def[v->menu.tag].name;
			if (!strcmp(item, "other"))
				snprintf(cmd, n, ":heal set %s=", name);
			else
				snprintf(cmd, n, "heal set %s=%s", name, item);
		}
		return true;
	}
	if (k->code == SL_KEY_MOUSE) {
		for (int i = 0; i < N_ITEMS; i++)
			if (k->button == SL_MOUSE_LEFT && k->y == v->at[i].y && k->x >= v->at[i].x &&
			    k->x < v->at[i].x + v->at[i].w) {
				open_item(v, app, i, cmd, n);
				return true;
			}
		return false;
	}
	if (k->mods & (SL_KMOD_CTRL | SL_KMOD_ALT))
		return false;
	switch (k->code) {
	case SL_KEY_LEFT:
	case SL_KEY_UP: v->item = (v->item + N_ITEMS - 1) % N_ITEMS; return true;
	case SL_KEY_RIGHT:
	case SL_KEY_DOWN: v->item = (v->item + 1) % N_ITEMS; return true;
	case SL_KEY_ENTER: open_item(v, app, v->item, cmd, n); return true;
	case '?': return sl_card_cmd(SL_CARD_HEAL, app->heal.set.method, cmd, n); /* the method's card */
	/* the figures the view shows: held-out KL (and the share recovered), PPL, top-1 */
	case 'K': return sl_card_cmd(SL_CARD_METRIC, "kl", cmd, n);
	case 'P': return sl_card_cmd(SL_CARD_METRIC, "ppl", cmd, n);
	case 'T': return sl_card_cmd(SL_CARD_METRIC, "top1", cmd, n);
	case 'h': snprintf(cmd, n, "heal"); return true;
	case 'r': snprintf(cmd, n, "heal resume"); return true;
	}
	for (int i = 0; i < N_ITEMS; i++)
		if (k->code == item_def[i].hotkey) {
			open_item(v, app, i, cmd, n);
			return true;
		}
	return false;
}

static const sl_keyhelp keys[] = {
	{"h", "heal the recipe's model with these settings (asks about a checkpoint of the same run)"},
	{"r", "resume the stopped run from its checkpoint"},
	{"Esc", "stop the run, writing its checkpoint"},
	{"Left/Right Enter", "choose a setting, and its value from a menu (or click it)"},
	{"m s b l", "method, steps, batch, learning rate"},
	{"t k n", "temperature (qad, kd), rank (lora), tokens per sequence"},
	{"w c", "the healed model's file, the checkpoint's (type them)"},
	{"u / U", "undo / redo: the healed model and the post-training one"},
	{"?", "the card of the healing method (in the method menu: of the item under the cursor)"},
	{"K / P / T", "the card of a figure shown: KL (its curve, the share recovered) / PPL / top-1"},
	{NULL, NULL},
};

const sl_view_class sl_view_heal = {
	.name = "heal",
	.title = "Heal",
	.hints = "h heal  r resume  Esc stop  Enter settings",
	.keys = keys,
	.create = create,
	.destroy = free,
	.draw = draw,
	.key = key,
};
