/* What several views share: module lookup, how rules and plans read in a
 * table cell, and the menus of recipe choices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/formats.h"
#include "view.h"

int sl_app_module_index(const sl_app *app, const char *name)
{
	for (int i = 0; i < app->n_mods; i++)
		if (!strcmp(app->mods[i].name, name))
			return i;
	return -1;
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
#undef PART
	if (!buf[0])
		snprintf(buf, n, "(sets nothing)");
}

void sl_rule_words(const sl_rule *r, char *buf, size_t n)
{
	size_t k = 0;
	buf[0] = 0;
#define WORD(...) k += (size_t)snprintf(buf + k, k < n ? n - k : 0, __VA_ARGS__)
	if (r->has_format)
		WORD(" format=%s", r->format[0] ? r->format : "keep");
	if (r->has_method)
		WORD(" method=%s", r->method);
	if (r->has_sparsity)
		WORD(" sparsity=%.6g", r->sparsity);
	if (r->has_pattern)
		WORD(" pattern=%s", r->pattern);
	if (r->has_prune)
		WORD(" prune=%s", r->prune);
	if (r->group > 0)
		WORD(" group=%d", r->group);
#undef WORD
	if (k && k < n)
		memmove(buf, buf + 1, k); /* no leading space */
}

void sl_plan_summary(const sl_module_plan *p, const sl_tensor *w, char *buf, size_t n)
{
	int k = p->format ? snprintf(buf, n, "%s", p->format->name) : snprintf(buf, n, "%s as is", sl_dtype_name(w->type));
	if (k < 0 || (size_t)k >= n)
		return;
	if (p->format && p->method[0] && strcmp(p->method, "rtn"))
		k += snprintf(buf + k, n - (size_t)k, " %s", p->method);
	if (p->sparsity > 0 && (size_t)k < n)
		snprintf(buf + k, n - (size_t)k, " · %.0f%% %s", 100 * p->sparsity, p->pattern[0] ? p->pattern : "");
}

/* --- menus of choices ---------------------------------------------------- */

static const char *const methods[] = {"rtn", "gptq", "awq", "smoothquant"};
static const char *const method_notes[] = {
	"round to nearest", "Hessian-aware, column by column", "activation-aware scales", "W8A8, moves outliers into weights"};
static const char *const sparsities[] = {"0", "10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "2:4", "4:8"};
static const char *const sparsity_notes[] = {
	"no pruning", "", "", "", "", "", "", "", "", "50%, two of every four", "50%, four of every eight"};
static const char *const patterns[] = {"unstructured", "2:4", "4:8", "heads", "channels", "block"};
static const char *const pattern_notes[] = {
	"any weights", "N:M semi-structured", "N:M semi-structured", "whole attention heads", "whole MLP channels",
	"the whole block"};
static const char *const prunes[] = {"magnitude", "wanda", "sparsegpt"};
static const char *const prune_notes[] = {"smallest |W|", "|W| times input norm", "Hessian-aware, with updates"};

/* Format names and summaries, built once from the format table, with
 * "keep" (the rule leaves the format alone) first. */
static const char **format_items, **format_notes;
static int n_format_items;

static void load_formats(void)
{
	if (format_items)
		return;
	int n = sl_format_count();
	format_items = calloc((size_t)n + 1, sizeof *format_items);
	format_notes = calloc((size_t)n + 1, sizeof *format_notes);
	if (!format_items || !format_notes) {
		free(format_items);
		free(format_notes);
		format_items = format_notes = NULL;
		return;
	}
	format_items[0] = "keep";
	format_notes[0] = "this rule does not set a format";
	for (int i = 0; i < n; i++) {
		format_items[i + 1] = sl_format_at(i)->name;
		format_notes[i + 1] = sl_format_at(i)->summary;
	}
	n_format_items = n + 1;
}

static int find_item(const char *const *items, int n, const char *v)
{
	for (int i = 0; v && i < n; i++)
		if (!strcmp(items[i], v))
			return i;
	return 0;
}

#define COUNT(a) ((int)(sizeof a / sizeof a[0]))

void sl_pick_open(sl_menu *m, sl_pick what, const char *current)
{
	switch (what) {
	case SL_PICK_FORMAT:
		load_formats();
		sl_menu_open(m, "format", (const char *const *)format_items, (const char *const *)format_notes,
		             n_format_items, find_item((const char *const *)format_items, n_format_items, current), what);
		break;
	case SL_PICK_METHOD:
		sl_menu_open(m, "method", methods, method_notes, COUNT(methods), find_item(methods, COUNT(methods), current),
		             what);
		break;
	case SL_PICK_SPARSITY:
		sl_menu_open(m, "sparsity", sparsities, sparsity_notes, COUNT(sparsities),
		             find_item(sparsities, COUNT(sparsities), current), what);
		break;
	case SL_PICK_PATTERN:
		sl_menu_open(m, "pattern", patterns, pattern_notes, COUNT(patterns),
		             find_item(patterns, COUNT(patterns), current), what);
		break;
	case SL_PICK_PRUNE:
		sl_menu_open(m, "pruning", prunes, prune_notes, COUNT(prunes), find_item(prunes, COUNT(prunes), current),
		             what);
		break;
	}
}

void sl_pick_words(const sl_menu *m, int item, char *buf, size_t n)
{
	const char *v = item >= 0 && item < m->n ? m->items[item] : "";
	switch ((sl_pick)m->tag) {
	case SL_PICK_FORMAT: snprintf(buf, n, "format=%s", v); break;
	case SL_PICK_METHOD: snprintf(buf, n, "method=%s", v); break;
	case SL_PICK_PATTERN: snprintf(buf, n, "pattern=%s", v); break;
	case SL_PICK_PRUNE: snprintf(buf, n, "prune=%s", v); break;
	case SL_PICK_SPARSITY:
		if (strchr(v, ':'))
			snprintf(buf, n, "sparsity=50%% pattern=%s", v);
		else
			snprintf(buf, n, "sparsity=%s", v);
		break;
	}
}
