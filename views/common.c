/* What several views share: module lookup, how rules and plans read in a
 * table cell, and the menus of recipe choices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/formats.h"
#include "core/units.h"
#include "core/methods/method.h"
#include "view.h"

int sl_app_module_index(const sl_app *app, const char *name)
{
	for (int i = 0; i < app->n_mods; i++)
		if (!strcmp(app->mods[i].name, name))
			return i;
	return -1;
}

bool sl_app_tied(const sl_app *app, const char *module)
{
	int i = sl_app_module_index(app, module);
	return i >= 0 && app->mods[i].kind == SL_MOD_EMBD && app->model && app->model->output == app->model->tok_embd;
}

const char *sl_app_module_label(const sl_app *app, const char *module, char *buf, size_t n)
{
	snprintf(buf, n, sl_app_tied(app, module) ? "%s+output" : "%s", module);
	return buf;
}

void sl_list_restore(sl_list *l, const sl_app *app, const char *view)
{
	sl_view_pos p = sl_session_view_pos(app->ses, view);
	l->cursor = p.cursor;
	l->top = p.top;
}

void sl_list_remember(const sl_list *l, sl_app *app, const char *view)
{
	sl_session_set_view_pos(app->ses, view, l->cursor, l->top);
}

void sl_rule_selector(const sl_rule *r, char *buf, size_t n)
{
	const char *m = r->match[0] ? r->match : "all";
	if (r->layer_lo >= 0 || r->layer_hi >= 0)
		snprintf(buf, n, "%s, blocks %d-%d", m, r->layer_lo, r->layer_hi);
	else
		snprintf(buf, n, "%s", m);
}

void sl_rule_summary(const sl_rule *r, char *buf, size_t n)
{
	size_t k = 0;
	buf[0] = 0;
#define PART(...) k += (size_t)snprintf(buf + k, k < n ? n - k : 0, __VA_ARGS__)
	if (r->has_format)
		PART("%s", r->format[0] ? r->format : "keep");
	if (r->has_method)
		PART("%s%s", k ? " " : "", r->method);
	if (r->has_sparsity)
		PART("%s%.0f%%", k ? " · " : "", 100 * r->sparsity);
	if (r->has_pattern)
		PART(" %s", r->pattern);
	if (r->has_prune)
		PART(" %s", r->prune);
	for (int i = 0; i < r->n_params; i++)
		PART("%s%s %g", k ? " " : "", r->params[i].key, r->params[i].value);
#undef PART
	if (!buf[0])
		snprintf(buf, n, "(sets nothing)");
}

void sl_recipe_summary(const sl_recipe *r, const char *healed, char *buf, size_t n)
{
	char def[96], sel[64], one[96], what[192];
	sl_rule_summary(&r->def, def, sizeof def);
	bool plain = !r->def.has_format && !r->def.has_method && !r->def.has_sparsity;
	if (r->n_rules == 1 && plain) {
		sl_rule_selector(&r->rules[0], sel, sizeof sel);
		sl_rule_summary(&r->rules[0], one, sizeof one);
		snprintf(what, sizeof what, "%.40s: %.80s", sel, one);
	} else if (r->n_rules) {
		snprintf(what, sizeof what, "%s +%d rule%s", plain ? "as is" : def, r->n_rules, r->n_rules > 1 ? "s" : "");
	} else {
		snprintf(what, sizeof what, "%s", plain ? "as is" : def);
	}
	snprintf(buf, n, healed && healed[0] ? "%s + %s" : "%s", what, healed);
}

void sl_plan_summary(const sl_module_plan *p, const sl_tensor *w, char *buf, size_t n)
{
	/* Low-rank factors without a format keep the weights' float type. */
	const sl_method *lr = sl_plan_factors(p);
	int k = p->format ? snprintf(buf, n, "%s", p->format->name)
	        : lr      ? snprintf(buf, n, "%s", sl_dtype_name(sl_dtype_keep_float(w->type)))
	                  : snprintf(buf, n, "%s as is", sl_dtype_name(w->type));
	if (k < 0 || (size_t)k >= n)
		return;
	double rank = lr ? sl_plan_value(p, &sl_lowrank_params[SL_LOWRANK_RANK]) : 0;
	if (lr)
		k += snprintf(buf + k, n - (size_t)k, " %s %s %g", lr->name, rank > 0 ? "rank" : "keep",
		              rank > 0 ? rank : sl_plan_value(p, &sl_lowrank_params[SL_LOWRANK_KEEP]));
	else if (p->format && p->method[0] && sl_method_find(SL_METHOD_QUANT, p->method) != sl_method_default(SL_METHOD_QUANT))
		k += snprintf(buf + k, n - (size_t)k, " %s", p->method);
	if (p->sparsity > 0 && (size_t)k < n)
		snprintf(buf + k, n - (size_t)k, " · %.0f%% %s", 100 * p->sparsity, p->pattern[0] ? p->pattern : "");
}

int sl_spec_sources(const sl_app *app, char (*out)[SL_SPEC_ARG], int max)
{
	int n = 0;
	if (!app->recipe_empty && n < max)
		snprintf(out[n++], SL_SPEC_ARG, "--draft-current");
	for (int i = 0; i < sl_format_count() && n < max; i++)
		if (sl_format_is_draft(sl_format_at(i)))
			snprintf(out[n++], SL_SPEC_ARG, "--draft-format %s", sl_format_at(i)->name);
	if (app->model && app->model->cfg.n_layers > 1 && n < max)
		snprintf(out[n++], SL_SPEC_ARG, "--draft-layers %d", app->model->cfg.n_layers / 2);
	if (n < max)
		snprintf(out[n++], SL_SPEC_ARG, "--draft-ngram 3");
	return n;
}

/* --- menus of choices ---------------------------------------------------- */

/* A menu's items and notes, built once from the registries. */
typedef struct {
	const char *items[64], *notes[64];
	int n;
} choices;

static void add(choices *c, const char *item, const char *note)
{
	if (c->n < 64) {
		c->items[c->n] = item;
		c->notes[c->n++] = note;
	}
}

/* The methods of a kind; a family of names (N:M) offers its choices. */
static void add_methods(choices *c, sl_method_kind kind)
{
	for (int i = 0; i < sl_method_count(); i++) {
		const sl_method *m = sl_method_at(i);
		if (m->kind != kind)
			continue;
		if (!m->choices)
			add(c, m->name, m->summary);
		for (const char *const *ch = m->choices; ch && *ch; ch++)
			add(c, *ch, m->summary);
	}
}

static const choices *menu_choices(sl_pick what)
{
	static choices menus[SL_PICK_PRUNE + 1];
	static const char *const sparsities[] = {"0", "10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%"};
	choices *c = &menus[what];
	if (c->n)
		return c;
	switch (what) {
	case SL_PICK_FORMAT:
		add(c, "keep", "leave the weights as they are");
		for (int i = 0; i < sl_format_count(); i++)
			add(c, sl_format_at(i)->name, sl_format_at(i)->summary);
		break;
	case SL_PICK_METHOD: add_methods(c, SL_METHOD_QUANT); break;
	case SL_PICK_PATTERN: add_methods(c, SL_METHOD_PATTERN); break;
	case SL_PICK_PRUNE: add_methods(c, SL_METHOD_PRUNE); break;
	case SL_PICK_SPARSITY:
		for (size_t i = 0; i < sizeof sparsities / sizeof *sparsities; i++)
			add(c, sparsities[i], i ? "" : "no pruning");
		for (int i = 0; i < sl_method_count(); i++)
			for (const char *const *ch = sl_method_at(i)->choices; ch && *ch; ch++)
				add(c, *ch, sl_method_at(i)->summary);
		break;
	}
	return c;
}

static int find_item(const choices *c, const char *v)
{
	for (int i = 0; v && i < c->n; i++)
		if (!strcmp(c->items[i], v))
			return i;
	return 0;
}

int sl_pick_items(sl_pick what, const char *const **items)
{
	const choices *c = menu_choices(what);
	*items = c->items;
	return c->n;
}

void sl_pick_open(sl_menu *m, sl_pick what, const char *current)
{
	static const char *const titles[] = {"", "format", "method", "sparsity", "pattern", "pruning"};
	const choices *c = menu_choices(what);
	sl_menu_open(m, titles[what], c->items, c->notes, c->n, find_item(c, current), what);
}

/* What format f (NULL: keep) gives the modules scope selects: bits per
 * weight and bytes, and the formats those it cannot hold fall back to
 * ("→ FORMAT" when all fall back to it, "5 → FORMAT" when some do). */
static void format_note(const sl_app *app, const sl_rule *scope, const sl_format *f, char *buf, size_t n)
{
	double bytes = 0, params = 0;
	int count = 0, n_fb = 0, fb_count[3] = {0};
	const sl_format *fb[3];
	for (int i = 0; i < app->n_mods; i++) {
		const sl_module *md = &app->mods[i];
		if (!sl_rule_matches(scope, md))
			continue;
		const sl_tensor *w = md->w;
		const sl_format *use = f ? sl_format_fallback(f, w->ne[0]) : NULL;
		int k = 0;
		while (k < n_fb && fb[k] != use)
			k++;
		if (use != f && k == n_fb && n_fb < 3)
			fb[n_fb++] = use;
		if (use != f && k < n_fb)
			fb_count[k]++;
		count++;
		params += (double)sl_tensor_nelements(w);
		bytes += use ? (double)sl_dtype_row_bytes(use->dtype, w->ne[0]) * (double)sl_tensor_nrows(w)
		             : (double)sl_tensor_bytes(w);
	}
	const char *summary = f ? f->summary : "leave the weights as they are";
	if (!count) {
		snprintf(buf, n, "%s", summary);
		return;
	}
	char b[32], fall[96] = "";
	sl_fmt_bytes(bytes, b, sizeof b);
	size_t k = 0;
	for (int i = 0; i < n_fb && k < sizeof fall; i++) {
		if (fb_count[i] == count)
			k += (size_t)snprintf(fall + k, sizeof fall - k, "  → %s", fb[i]->name);
		else
			k += (size_t)snprintf(fall + k, sizeof fall - k, "  %d → %s", fb_count[i], fb[i]->name);
	}
	snprintf(buf, n, "%6.2f bpw %10s%s  %s", 8 * bytes / params, b, fall, summary);
}

void sl_pick_format(sl_menu *m, const sl_app *app, const sl_rule *scope, const char *current)
{
	sl_pick_open(m, SL_PICK_FORMAT, current);
	for (int i = 0; i < m->n && app->model; i++) {
		format_note(app, scope, sl_format_find(m->items[i]), m->note_buf[i], sizeof m->note_buf[i]);
		m->note_ptr[i] = m->note_buf[i];
	}
	if (app->model)
		m->notes = m->note_ptr;
}

/* The words a chosen item sets; an N:M sparsity sets its pattern too. */
void sl_pick_words(const sl_menu *m, int item, char *buf, size_t n)
{
	const char *v = item >= 0 && item < m->n ? m->items[item] : "";
	int keep_n, group_m;
	switch ((sl_pick)m->tag) {
	case SL_PICK_FORMAT: snprintf(buf, n, "format=%s", v); break;
	case SL_PICK_METHOD: snprintf(buf, n, "method=%s", v); break;
	case SL_PICK_PATTERN: snprintf(buf, n, "pattern=%s", v); break;
	case SL_PICK_PRUNE: snprintf(buf, n, "prune=%s", v); break;
	case SL_PICK_SPARSITY:
		if (sl_pattern_nm(v, &keep_n, &group_m))
			snprintf(buf, n, "sparsity=%g%% pattern=%s", 100.0 - 100.0 * keep_n / group_m, v);
		else
			snprintf(buf, n, "sparsity=%s", v);
		break;
	}
}

/* --- cards: what '?' opens ------------------------------------------------- */

bool sl_card_cmd(sl_card_kind kind, const char *name, char *cmd, size_t n)
{
	if (!name || !name[0] || !sl_card_find(kind, name))
		return false;
	snprintf(cmd, n, "card %s %s", sl_card_kind_name(kind), name);
	return true;
}

bool sl_pick_card_cmd(const sl_menu *m, char *cmd, size_t n)
{
	int item = sl_menu_current(m);
	if (item < 0)
		return false;
	const char *v = m->items[item];
	switch ((sl_pick)m->tag) {
	case SL_PICK_FORMAT: return sl_card_cmd(SL_CARD_FORMAT, v, cmd, n);
	case SL_PICK_METHOD: return sl_card_cmd(SL_CARD_METHOD, v, cmd, n);
	case SL_PICK_PATTERN: return sl_card_cmd(SL_CARD_PATTERN, v, cmd, n);
	case SL_PICK_PRUNE: return sl_card_cmd(SL_CARD_PRUNE, v, cmd, n);
	case SL_PICK_SPARSITY: return sl_card_cmd(SL_CARD_PATTERN, v, cmd, n); /* 2:4 and the like */
	}
	return false;
}

/* The most telling technique of a rule: a low-rank method, a structured
 * pattern, a pruning criterion or a quantization method other than the
 * defaults, else its format, else what it prunes with. */
bool sl_rule_card_cmd(const sl_rule *r, char *cmd, size_t n)
{
	const sl_method *m = r->has_method ? sl_method_find(SL_METHOD_QUANT, r->method) : NULL;
	const sl_method *pat = r->has_pattern ? sl_method_find(SL_METHOD_PATTERN, r->pattern) : NULL;
	const sl_method *pr = r->has_prune ? sl_method_find(SL_METHOD_PRUNE, r->prune) : NULL;
	bool prunes = r->has_sparsity && r->sparsity > 0;
	if (m && m->factor)
		return sl_card_cmd(SL_CARD_METHOD, r->method, cmd, n);
	if (prunes && pat && pat != sl_method_default(SL_METHOD_PATTERN))
		return sl_card_cmd(SL_CARD_PATTERN, r->pattern, cmd, n);
	if (prunes && pr && pr != sl_method_default(SL_METHOD_PRUNE))
		return sl_card_cmd(SL_CARD_PRUNE, r->prune, cmd, n);
	if (m && m != sl_method_default(SL_METHOD_QUANT) && r->has_format)
		return sl_card_cmd(SL_CARD_METHOD, r->method, cmd, n);
	if (r->has_format && sl_card_cmd(SL_CARD_FORMAT, r->format, cmd, n))
		return true;
	if (prunes)
		return sl_card_cmd(SL_CARD_PRUNE, pr ? r->prune : sl_method_default(SL_METHOD_PRUNE)->name, cmd, n);
	return false;
}
