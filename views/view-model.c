/* The Model view: the model's linear modules as a tree of blocks, with
 * each module's shape, parameters, storage format, bytes, share of the
 * model and what the recipe does to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/formats.h"
#include "core/forward.h"
#include "core/units.h"
#include "view.h"

typedef struct {
	const sl_model *seen;   /* the model the expansions belong to */
	bool *open;             /* [n_layers] */
	int n_layers;
	sl_list list;
	sl_menu menu;
	/* Visible rows: >= 0 a module index, < 0 a block header (-1 - layer). */
	int *rows;
	int n_rows;
	sl_rect table;
} model_view;

static void *create(void)
{
	return calloc(1, sizeof(model_view));
}

static void destroy(void *self)
{
	model_view *v = self;
	free(v->open);
	free(v->rows);
	free(v);
}

static void sync_model(model_view *v, const sl_app *app)
{
	if (v->seen == app->model)
		return;
	v->seen = app->model;
	free(v->open);
	free(v->rows);
	v->open = NULL;
	v->rows = NULL;
	v->n_layers = app->model ? app->model->cfg.n_layers : 0;
	if (v->n_layers)
		v->open = calloc((size_t)v->n_layers, sizeof *v->open);
	v->rows = calloc((size_t)app->n_mods + (size_t)v->n_layers + 1, sizeof *v->rows);
	for (int i = 0; v->open && i < v->n_layers; i++)
		v->open[i] = v->n_layers <= 4 || i == 0; /* small models open; big ones show their first block */
}

static void build_rows(model_view *v, const sl_app *app)
{
	v->n_rows = 0;
	if (!v->rows)
		return;
	int last = -2;
	for (int i = 0; i < app->n_mods; i++) {
		int layer = app->mods[i].layer;
		if (layer >= 0 && layer != last && layer < v->n_layers) {
			v->rows[v->n_rows++] = -1 - layer;
			last = layer;
		}
		if (layer < 0 || layer >= v->n_layers || v->open[layer])
			v->rows[v->n_rows++] = i;
	}
}

static void enter(void *self, sl_app *app)
{
	model_view *v = self;
	sl_list_restore(&v->list, app, "model");
}

static void leave(void *self, sl_app *app)
{
	model_view *v = self;
	sl_list_remember(&v->list, app, "model");
}

/* What the recipe leaves as it is: "as is", and for a factored weight its
 * rank and the blocks whose same module shares its basis. */
static void module_as_is(const sl_app *app, const sl_module *m, char *buf, size_t n)
{
	if (!m->w->lr_a) {
		snprintf(buf, n, "as is");
		return;
	}
	int first = m->layer, last = m->layer;
	for (int i = 0; i < app->n_mods; i++)
		if (app->mods[i].w->lr_b == m->w->lr_b && app->mods[i].layer >= 0) {
			first = app->mods[i].layer < first ? app->mods[i].layer : first;
			last = app->mods[i].layer > last ? app->mods[i].layer : last;
		}
	if (first < last)
		snprintf(buf, n, "as is: rank %d, basis of blk.%d-%d", sl_tensor_rank(m->w), first, last);
	else
		snprintf(buf, n, "as is: rank %d", sl_tensor_rank(m->w));
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	model_view *v = self;
	sync_model(v, app);
	if (!app->model) {
		sl_text(r.y + 1, r.x + 2, r.w - 4, SL_R_DIM, "No model is open. Press o or type :open PATH.");
		return;
	}
	const sl_config *c = &app->model->cfg;
	char params[32], bytes[32], rbytes[32];
	double total = (double)sl_model_bytes(app->model);
	sl_fmt_count((double)sl_model_n_params(app->model), params, sizeof params);
	sl_fmt_bytes(total, bytes, sizeof bytes);
	int x = r.x + 1;
	x += sl_textf(r.y, x, r.w - 2, SL_R_TITLE, "%s", app->model_name);
	x += sl_textf(r.y, x, r.x + r.w - x, SL_R_NORMAL, "  %s · %d blocks · dim %d · %s params · %s", c->arch_name,
	              c->n_layers, c->dim, params, bytes);
	if (!app->recipe_empty && app->est.bytes > 0) {
		sl_fmt_bytes(app->est.bytes, rbytes, sizeof rbytes);
		x += sl_textf(r.y, x, r.x + r.w - x, SL_R_ACCENT, "  → %s, %.2f bpw", rbytes, app->est.bpw);
	}
	/* The KV cache at the trained context: F32, and in the recipe's kv_cache format. */
	char kv[32], kvq[32];
	sl_fmt_bytes((double)sl_kv_cache_bytes(app->model, SL_DT_F32, 0), kv, sizeof kv);
	x += sl_textf(r.y, x, r.x + r.w - x, SL_R_NORMAL, " · KV cache %s at %d positions", kv, c->max_seq_len);
	const sl_format *kvf = app->ses->recipe && app->ses->recipe->kv_cache[0] ? sl_format_find(app->ses->recipe->kv_cache)
	                                                                         : NULL;
	size_t kv_bytes = kvf && kvf->kv ? sl_kv_cache_bytes(app->model, kvf->dtype, 0) : 0;
	if (kv_bytes && kvf->dtype != SL_DT_F32) {
		sl_fmt_bytes((double)kv_bytes, kvq, sizeof kvq);
		sl_textf(r.y, x, r.x + r.w - x, SL_R_ACCENT, " → %s in %s", kvq, kvf->name);
	}

	if (app->n_mods && sl_app_tied(app, app->mods[0].name))
		sl_text(r.y + 1, r.x + 1, r.w - 2, SL_R_DIM, SL_TIED_NOTE);

	/* Columns shrink from the right on narrow screens: recipe, share, bytes. */
	int wname = 20, wshape = 12, wparam = 9, wfmt = 7, wbytes = 11, wshare = 7;
	int fixed = wname + wshape + wparam + wfmt;
	bool show_bytes = r.w >= fixed + wbytes + 2, show_share = r.w >= fixed + wbytes + wshare + 2;
	int xr = r.x + 1 + fixed + (show_bytes ? wbytes : 0) + (show_share ? wshare : 0);
	int wrec = r.x + r.w - xr - 1;
	int hy = r.y + 2;
	sl_fill(hy, r.x, r.w, SL_R_DIM);
	int hx = r.x + 1;
	sl_text(hy, hx, wname, SL_R_DIM, "module");
	sl_text(hy, hx + wname, wshape, SL_R_DIM, "shape");
	sl_text(hy, hx + wname + wshape, wparam, SL_R_DIM, "params");
	sl_text(hy, hx + wname + wshape + wparam, wfmt, SL_R_DIM, "format");
	if (show_bytes)
		sl_text(hy, hx + fixed, wbytes, SL_R_DIM, "bytes");
	if (show_share)
		sl_text(hy, hx + fixed + wbytes, wshare, SL_R_DIM, "of all");
	if (wrec > 4)
		sl_text(hy, xr, wrec, SL_R_DIM, "recipe");

	build_rows(v, app);
	v->table = (sl_rect){hy + 1, r.x, r.h - 3, r.w};
	sl_list_fit(&v->list, v->n_rows, v->table.h);
	for (int i = 0; i < v->table.h && v->list.top + i < v->n_rows; i++) {
		int row = v->rows[v->list.top + i], y = v->table.y + i;
		bool sel = v->list.top + i == v->list.cursor;
		sl_role role = sel ? SL_R_SELECTED : SL_R_NORMAL;
		sl_fill(y, r.x, r.w, role);
		char p[32], b[32], shape[32], plan[96];
		if (row < 0) {
			int layer = -1 - row, n = app->blocks[layer].n_mods;
			double by = app->blocks[layer].bytes;
			sl_fmt_count(app->blocks[layer].params, p, sizeof p);
			sl_fmt_bytes(by, b, sizeof b);
			const char *arrow = v->open[layer] ? (app->utf8 ? "▾" : "-") : (app->utf8 ? "▸" : "+");
			sl_textf(y, hx, wname + wshape, sel ? role : SL_R_TITLE, "%s blk.%d  (%d modules)", arrow, layer, n);
			sl_text(y, hx + wname + wshape, wparam, role, p);
			if (show_bytes)
				sl_text(y, hx + fixed, wbytes, role, b);
			if (show_share)
				sl_textf(y, hx + fixed + wbytes, wshare, role, "%5.1f%%", 100 * by / total);
			continue;
		}
		const sl_module *m = &app->mods[row];
		double mbytes = (double)sl_tensor_bytes(m->w);
		sl_fmt_count((double)sl_tensor_nelements(m->w), p, sizeof p);
		sl_fmt_bytes(mbytes, b, sizeof b);
		sl_tensor_shape_str(m->w, shape, sizeof shape);
		char label[128];
		const char *name = m->layer >= 0 ? sl_module_kind_name(m->kind)
		                                 : sl_app_module_label(app, m->name, label, sizeof label);
		sl_textf(y, hx, wname, role, m->layer >= 0 ? "    %s" : "  %s", name);
		sl_text(y, hx + wname, wshape, role, shape);
		sl_text(y, hx + wname + wshape, wparam, role, p);
		/* A factored weight: its factors' format (its rank under recipe). */
		sl_text(y, hx + wname + wshape + wparam, wfmt, role, sl_dtype_name(m->w->lr_b ? m->w->lr_b->type : m->w->type));
		if (show_bytes)
			sl_text(y, hx + fixed, wbytes, role, b);
		if (show_share)
			sl_textf(y, hx + fixed + wbytes, wshare, role, "%5.1f%%", 100 * mbytes / total);
		if (wrec > 4 && app->plans) {
			const sl_module_plan *pl = &app->plans[row];
			bool as_is = !sl_plan_method(pl) && !(pl->sparsity > 0);
			if (as_is)
				module_as_is(app, m, plan, sizeof plan);
			else
				sl_plan_summary(pl, m->w, plan, sizeof plan);
			const sl_lowrank_plan *lr = app->lowrank ? &app->lowrank[row] : NULL;
			if (!as_is && lr && lr->lead >= 0) {
				size_t k = strlen(plan);
				snprintf(plan + k, sizeof plan - k, " → rank %d%s", lr->rank, lr->mismatch ? " (shapes differ!)" : "");
				if (lr->size > 1 && (k = strlen(plan)) < sizeof plan)
					snprintf(plan + k, sizeof plan - k, ", basis of blk.%d-%d", lr->first, lr->last);
			}
			int used = sl_text(y, xr, wrec, sel ? role : (as_is ? SL_R_DIM : SL_R_ACCENT), plan);
			if (pl->rule >= 0)
				sl_textf(y, xr + used, wrec - used, sel ? role : SL_R_DIM, "  rule %d", pl->rule + 1);
		}
	}
	if (v->menu.open)
		sl_menu_draw(&v->menu, r);
}

/* The module or block under the cursor, as a rule selector. */
static bool cursor_target(const model_view *v, const sl_app *app, char *sel, size_t n, int *module)
{
	if (v->list.cursor < 0 || v->list.cursor >= v->n_rows)
		return false;
	int row = v->rows[v->list.cursor];
	*module = row;
	if (row < 0)
		snprintf(sel, n, "blk.%d.*", -1 - row);
	else
		snprintf(sel, n, "%s", app->mods[row].name);
	return true;
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	model_view *v = self;
	char sel[128];
	int mod;
	if (v->menu.open) {
		int item = sl_menu_key(&v->menu, k);
		if (item == SL_MENU_CARD)
			sl_pick_card_cmd(&v->menu, cmd, n);
		if (item >= 0 && cursor_target(v, app, sel, sizeof sel, &mod)) {
			char words[96];
			sl_pick_words(&v->menu, item, words, sizeof words);
			snprintf(cmd, n, "rule %s %s", sel, words);
		}
		return true;
	}
	if (!app->model)
		return false; /* 'o' (open) is a global key */
	if (sl_list_key(&v->list, k))
		return true;
	bool have = cursor_target(v, app, sel, sizeof sel, &mod);
	if (k->code == SL_KEY_MOUSE) {
		int before = v->list.cursor;
		if (!sl_list_click(&v->list, k, v->table))
			return false;
		/* A click on the selected row acts like Enter. */
		if (before != v->list.cursor || !cursor_target(v, app, sel, sizeof sel, &mod))
			return true;
		have = true;
	} else if (k->code == '+' || k->code == '-') {
		for (int i = 0; i < v->n_layers; i++)
			v->open[i] = k->code == '+';
		return true;
	}
	if (!have)
		return false;
	int code = k->code == SL_KEY_MOUSE ? SL_KEY_ENTER : k->code;
	const sl_module_plan *plan = mod >= 0 && app->plans ? &app->plans[mod] : NULL;
	switch (code) {
	case SL_KEY_ENTER:
	case ' ':
	case SL_KEY_RIGHT:
	case SL_KEY_LEFT:
		if (mod < 0) {
			bool *o = &v->open[-1 - mod];
			*o = code == SL_KEY_RIGHT ? true : code == SL_KEY_LEFT ? false : !*o;
		} else if (code == SL_KEY_LEFT && app->mods[mod].layer >= 0) {
			while (v->list.cursor > 0 && v->rows[v->list.cursor] >= 0)
				v->list.cursor--; /* up to the block's header */
		} else if (code != SL_KEY_LEFT) {
			snprintf(cmd, n, "inspect %s", app->mods[mod].name);
		}
		return true;
	case 'i':
		if (mod >= 0)
			snprintf(cmd, n, "inspect %s", app->mods[mod].name);
		return true;
	case 'f': {
		sl_rule scope;
		sl_rule_init(&scope);
		snprintf(scope.match, sizeof scope.match, "%s", sel);
		sl_pick_format(&v->menu, app, &scope, plan && plan->format ? plan->format->name : NULL);
		return true;
	}
	case 'm':
		sl_pick_open(&v->menu, SL_PICK_METHOD, plan ? plan->method : NULL);
		return true;
	case 's':
		sl_pick_open(&v->menu, SL_PICK_SPARSITY, NULL);
		return true;
	}
	return false;
}

static const sl_keyhelp keys[] = {
	{"Up/Down PgUp/PgDn", "move"},
	{"Enter, click", "open or close a block; inspect a module"},
	{"Left/Right", "close / open a block"},
	{"+ / -", "open / close every block"},
	{"i", "inspect the module in the layer inspector"},
	{"f", "choose the format for the module or block"},
	{"m", "choose the quantization method"},
	{"s", "choose the sparsity"},
	{NULL, NULL},
};

const sl_view_class sl_view_model = {
	.name = "model",
	.title = "Model",
	.hints = "Enter open/inspect  f format  m method  s sparsity",
	.keys = keys,
	.create = create,
	.destroy = destroy,
	.enter = enter,
	.leave = leave,
	.draw = draw,
	.key = key,
};
