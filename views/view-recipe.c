/* The Recipe editor: the default rule and the rules after it, each set
 * from menus (format, method, sparsity, pattern, pruning), with the bytes
 * and bits per weight the recipe would give, the problems it has, and
 * undo and redo. Row 0 is the default rule; rows 1.. are the rules, as
 * the rule command numbers them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/units.h"
#include "view.h"

typedef struct {
	sl_list list;
	sl_menu menu;
	sl_rect table;
} recipe_view;

static void *create(void)
{
	return calloc(1, sizeof(recipe_view));
}

static void enter(void *self, sl_app *app)
{
	recipe_view *v = self;
	sl_list_restore(&v->list, app, "recipe");
}

static void leave(void *self, sl_app *app)
{
	recipe_view *v = self;
	sl_list_remember(&v->list, app, "recipe");
}

static const sl_rule *row_rule(const sl_recipe *rc, int row)
{
	return row == 0 ? &rc->def : row <= rc->n_rules ? &rc->rules[row - 1] : NULL;
}

static void draw_estimate(const sl_app *app, int y, int x, int w)
{
	if (!app->model) {
		sl_text(y, x, w, SL_R_DIM, "open a model to see what the recipe saves");
		return;
	}
	char now[32], base[32];
	sl_fmt_bytes(app->est.bytes, now, sizeof now);
	sl_fmt_bytes(app->est.base_bytes, base, sizeof base);
	double ratio = app->est.bytes > 0 ? app->est.base_bytes / app->est.bytes : 0;
	int used = sl_textf(y, x, w, SL_R_NORMAL, "estimate: ");
	used += sl_textf(y, x + used, w - used, SL_R_ACCENT, "%s", now);
	used += sl_textf(y, x + used, w - used, SL_R_NORMAL, " of %s (%.2fx smaller), ", base, ratio);
	used += sl_textf(y, x + used, w - used, SL_R_ACCENT, "%.3f", app->est.bpw);
	sl_text(y, x + used, w - used, SL_R_NORMAL, " bits per weight");
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	recipe_view *v = self;
	const sl_recipe *rc = app->ses->recipe;
	int x = r.x + 1;
	x += sl_textf(r.y, x, r.w - 2, SL_R_TITLE, "recipe %s", rc->name[0] ? rc->name : "(unnamed)");
	sl_textf(r.y, x, r.x + r.w - x, SL_R_DIM, "   %d rule%s after the default · undo %d · redo %d", rc->n_rules,
	         rc->n_rules == 1 ? "" : "s", app->ses->n_undo, app->ses->n_redo);
	draw_estimate(app, r.y + 1, r.x + 1, r.w - 2);

	/* The selector takes what the fixed columns leave. */
	int wsel = r.w - 2 - (3 + 10 + 12 + 9 + 10 + 10 + 7);
	wsel = wsel > 40 ? 40 : wsel < 12 ? 12 : wsel;
	int cx[8], cw[] = {3, wsel, 10, 12, 9, 10, 10, 7};
	cx[0] = r.x + 1;
	for (int i = 1; i < 8; i++)
		cx[i] = cx[i - 1] + cw[i - 1];
	static const char *heads[] = {"#", "selector", "format", "method", "sparsity", "pattern", "pruning", "modules"};
	int hy = r.y + 3;
	for (int i = 0; i < 8; i++)
		sl_text(hy, cx[i], cx[i] + cw[i] <= r.x + r.w ? cw[i] : r.x + r.w - cx[i], SL_R_DIM, heads[i]);
	int n_rows = 1 + rc->n_rules;
	int shown_issues = app->n_issues < 4 ? app->n_issues : 4, shown_notes = app->n_fallbacks < 3 ? app->n_fallbacks : 3;
	int below = (shown_issues ? shown_issues + 1 : 0) + (shown_notes ? shown_notes + 1 : 0);
	v->table = (sl_rect){hy + 1, r.x, r.h - 5 - below - 1, r.w};
	sl_list_fit(&v->list, n_rows, v->table.h);
	for (int i = 0; i < v->table.h && v->list.top + i < n_rows; i++) {
		int row = v->list.top + i, y = v->table.y + i;
		const sl_rule *ru = row_rule(rc, row);
		bool sel = row == v->list.cursor;
		sl_role role = sel ? SL_R_SELECTED : SL_R_NORMAL;
		sl_fill(y, r.x, r.w, role);
		char sbuf[160], spars[16] = "";
		if (row == 0)
			snprintf(sbuf, sizeof sbuf, "default");
		else
			sl_rule_selector(ru, sbuf, sizeof sbuf);
		if (ru->has_sparsity)
			snprintf(spars, sizeof spars, "%.0f%%", 100 * ru->sparsity);
		const char *cells[8] = {NULL, sbuf, ru->has_format ? (ru->format[0] ? ru->format : "keep") : "·",
		                        ru->has_method ? ru->method : "·", ru->has_sparsity ? spars : "·",
		                        ru->has_pattern ? ru->pattern : "·", ru->has_prune ? ru->prune : "·", NULL};
		char num[16], matches[16];
		snprintf(num, sizeof num, "%d", row);
		snprintf(matches, sizeof matches, "%d", app->rule_matches ? app->rule_matches[row] : 0);
		cells[0] = num;
		cells[7] = matches;
		for (int c = 0; c < 8; c++) {
			int w = cx[c] + cw[c] <= r.x + r.w ? cw[c] - 1 : r.x + r.w - cx[c];
			sl_role cr = role;
			if (!sel && c == 7 && row > 0 && app->rule_matches && !app->rule_matches[row])
				cr = SL_R_WARN;
			else if (!sel && c >= 2 && c <= 6 && !strcmp(cells[c], "·"))
				cr = SL_R_DIM;
			sl_text(y, cx[c], w, cr, cells[c]);
		}
	}
	int y = v->table.y + v->table.h + 1;
	if (shown_issues) {
		sl_textf(y++, r.x + 1, r.w - 2, SL_R_WARN, "%d problem%s:", app->n_issues, app->n_issues == 1 ? "" : "s");
		for (int i = 0; i < shown_issues; i++)
			sl_textf(y++, r.x + 3, r.w - 4, SL_R_WARN, "%s: %s", app->issues[i].path, app->issues[i].msg);
	}
	if (shown_notes) {
		sl_text(y++, r.x + 1, r.w - 2, SL_R_DIM, "fallbacks (formats some modules cannot hold):");
		for (int i = 0; i < shown_notes; i++)
			sl_textf(y++, r.x + 3, r.w - 4, SL_R_DIM, "%s: %s", app->fallbacks[i].path, app->fallbacks[i].msg);
	}
	if (y < r.y + r.h) {
		char tokens[32] = "", ctx[32] = "";
		if (rc->calib.tokens)
			snprintf(tokens, sizeof tokens, ", %d tokens", rc->calib.tokens);
		if (rc->calib.ctx)
			snprintf(ctx, sizeof ctx, ", windows of %d", rc->calib.ctx);
		char tail[96], text[512];
		snprintf(tail, sizeof tail, "%s%s, seed %llu", tokens, ctx, (unsigned long long)rc->calib.seed);
		sl_path_fit(rc->calib.text[0] ? rc->calib.text : "the default text",
		            r.w - 2 - sl_text_width("calibration: ") - sl_text_width(tail), text, sizeof text);
		sl_textf(r.y + r.h - 1, r.x + 1, r.w - 2, SL_R_DIM, "calibration: %s%s", text, tail);
	}
	if (v->menu.open)
		sl_menu_draw(&v->menu, r);
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	recipe_view *v = self;
	const sl_recipe *rc = app->ses->recipe;
	int row = v->list.cursor;
	const sl_rule *ru = row_rule(rc, row);
	if (v->menu.open) {
		int item = sl_menu_key(&v->menu, k);
		if (item == SL_MENU_CARD)
			sl_pick_card_cmd(&v->menu, cmd, n);
		if (item >= 0 && ru) {
			char words[96];
			sl_pick_words(&v->menu, item, words, sizeof words);
			snprintf(cmd, n, "rule %d %s", row, words);
		}
		return true;
	}
	if (sl_list_key(&v->list, k))
		return true;
	if (k->code == SL_KEY_MOUSE) {
		int before = v->list.cursor;
		if (!sl_list_click(&v->list, k, v->table))
			return false;
		if (before == v->list.cursor && (ru = row_rule(rc, v->list.cursor)))
			sl_pick_format(&v->menu, app, ru, ru->has_format ? ru->format : NULL);
		return true;
	}
	if (k->mods & SL_KMOD_CTRL) {
		if (k->code == 'r') {
			snprintf(cmd, n, "redo");
			return true;
		}
		return false;
	}
	switch (k->code) {
	case 'u': snprintf(cmd, n, "undo"); return true;
	case 'U': snprintf(cmd, n, "redo"); return true;
	case 'a': snprintf(cmd, n, ":rule add "); return true;
	case 'n': snprintf(cmd, n, "recipe new"); return true;
	case 'S': snprintf(cmd, n, ":recipe save "); return true;
	case 'L': snprintf(cmd, n, ":recipe load "); return true;
	case 'x': snprintf(cmd, n, "export"); return true;
	}
	if (!ru)
		return false;
	switch (k->code) {
	case '?': return sl_rule_card_cmd(ru, cmd, n); /* the rule's technique; none: the keys */
	case SL_KEY_ENTER:
	case 'f':
		sl_pick_format(&v->menu, app, ru, ru->has_format ? ru->format : NULL);
		return true;
	case 'm': sl_pick_open(&v->menu, SL_PICK_METHOD, ru->has_method ? ru->method : NULL); return true;
	case 's': sl_pick_open(&v->menu, SL_PICK_SPARSITY, NULL); return true;
	case 'p': sl_pick_open(&v->menu, SL_PICK_PATTERN, ru->has_pattern ? ru->pattern : NULL); return true;
	case 'w': sl_pick_open(&v->menu, SL_PICK_PRUNE, ru->has_prune ? ru->prune : NULL); return true;
	case 'e':
		if (row > 0)
			snprintf(cmd, n, ":rule %d match=%s", row, ru->match);
		return true;
	case 'd':
	case SL_KEY_DELETE:
		if (row > 0)
			snprintf(cmd, n, "rule %d delete", row);
		return true;
	case 'K':
	case 'J':
		if (row > 0) {
			snprintf(cmd, n, "rule %d %s", row, k->code == 'K' ? "up" : "down");
			int to = row + (k->code == 'K' ? -1 : 1);
			if (to >= 1 && to <= rc->n_rules)
				v->list.cursor = to;
		}
		return true;
	}
	return false;
}

static const sl_keyhelp keys[] = {
	{"Up/Down", "choose a rule (row 0 is the default rule)"},
	{"Enter f, click", "format of the rule"},
	{"m", "quantization method"},
	{"s", "sparsity (with 2:4 and 4:8)"},
	{"p", "pruning pattern"},
	{"w", "pruning criterion (slimlab recipe methods lists them)"},
	{"a", "add a rule (type its selector: a name, a glob, layers=2-4)"},
	{"e", "edit the rule's selector"},
	{"d Delete", "delete the rule"},
	{"K / J", "move the rule up / down (later rules win)"},
	{"u / U Ctrl-R", "undo / redo"},
	{"n", "start a new, empty recipe"},
	{"S / L", "save the recipe to a file / load one"},
	{"x", "export the recipe's model as GGUF (the command line offers a new file name)"},
	{"?", "the card of the rule's technique; in a menu, of the item under the cursor"},
	{NULL, NULL},
};

const sl_view_class sl_view_recipe = {
	.name = "recipe",
	.title = "Recipe",
	.hints = "f format  m method  s sparsity  x export  a add  d delete",
	.keys = keys,
	.create = create,
	.destroy = free,
	.enter = enter,
	.leave = leave,
	.draw = draw,
	.key = key,
};
