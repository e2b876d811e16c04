/* The technique cards found and listed: each registry keeps its entries'
 * cards (card.h); here they are looked up by kind and name, and listed
 * once each for the Help view. */
#include "card.h"

#include <string.h>

#include "eval.h"
#include "formats.h"
#include "heal.h"
#include "loftq.h"
#include "methods/method.h"
#include "speculate.h"

static const char *const kind_names[SL_CARD_KINDS] = {"format", "method", "prune", "pattern",
                                                      "heal",   "metric", "speculate"};

const char *sl_card_kind_name(sl_card_kind kind)
{
	return kind >= 0 && kind < SL_CARD_KINDS ? kind_names[kind] : "";
}

bool sl_card_kind_parse(const char *s, sl_card_kind *kind)
{
	for (int k = 0; s && k < SL_CARD_KINDS; k++)
		if (!strcmp(s, kind_names[k])) {
			*kind = (sl_card_kind)k;
			return true;
		}
	return false;
}

bool sl_card_complete(const sl_card *c)
{
	const char *f[] = {c ? c->title : NULL, c ? c->what : NULL,    c ? c->formula : NULL,
	                   c ? c->watch : NULL, c ? c->pitfall : NULL, c ? c->paper : NULL};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (!f[i] || !f[i][0])
			return false;
	return true;
}

static sl_card_kind method_card_kind(sl_method_kind k)
{
	return k == SL_METHOD_PRUNE ? SL_CARD_PRUNE : k == SL_METHOD_PATTERN ? SL_CARD_PATTERN : SL_CARD_METHOD;
}

/* Every entry with a card, in the Help view's order; fn returns false to
 * stop. */
static void each_entry(bool (*fn)(void *ctx, const sl_card_entry *e), void *ctx)
{
	for (int i = 0; i < sl_format_count(); i++) {
		const sl_format *f = sl_format_at(i);
		if (!fn(ctx, &(sl_card_entry){SL_CARD_FORMAT, f->name, f->card}))
			return;
	}
	static const sl_card_kind order[] = {SL_CARD_METHOD, SL_CARD_PRUNE, SL_CARD_PATTERN};
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < sl_method_count(); i++) {
			const sl_method *m = sl_method_at(i);
			if (method_card_kind(m->kind) == order[k] && !fn(ctx, &(sl_card_entry){order[k], m->name, m->card}))
				return;
		}
	for (int i = 0; i < sl_eval_figure_count(); i++)
		if (!fn(ctx, &(sl_card_entry){SL_CARD_METRIC, sl_eval_figure_name(i), sl_eval_figure_card(i)}))
			return;
	for (int i = 0; i < sl_spec_card_count(); i++)
		if (!fn(ctx, &(sl_card_entry){SL_CARD_DECODE, sl_spec_card_name(i), sl_spec_card_at(i)}))
			return;
	for (sl_heal_method h = SL_HEAL_QAT; sl_heal_method_name(h); h++)
		if (!fn(ctx, &(sl_card_entry){SL_CARD_HEAL, sl_heal_method_name(h), sl_heal_method_card(h)}))
			return;
	fn(ctx, &(sl_card_entry){SL_CARD_HEAL, "loftq", sl_loftq_card()});
}

typedef struct {
	sl_card_kind kind;
	const char *name;
	const sl_card *found;
} find_ctx;

static bool find_one(void *ctx, const sl_card_entry *e)
{
	find_ctx *f = ctx;
	if (e->kind == f->kind && !strcmp(e->name, f->name))
		f->found = e->card;
	return !f->found;
}

const sl_card *sl_card_find(sl_card_kind kind, const char *name)
{
	if (!name)
		return NULL;
	if (kind == SL_CARD_FORMAT) {
		const sl_format *f = sl_format_find(name);
		return f ? f->card : NULL;
	}
	if (kind == SL_CARD_METHOD || kind == SL_CARD_PRUNE || kind == SL_CARD_PATTERN) {
		/* A pattern takes names of its family (2:4 for N:M). */
		sl_method_kind mk = kind == SL_CARD_PRUNE ? SL_METHOD_PRUNE
		                    : kind == SL_CARD_PATTERN ? SL_METHOD_PATTERN
		                                              : SL_METHOD_QUANT;
		const sl_method *m = sl_method_find(mk, name);
		if (m)
			return m->card;
	}
	find_ctx f = {kind, name, NULL};
	each_entry(find_one, &f);
	return f.found;
}

const sl_card *sl_card_search(const char *name, sl_card_kind *kind)
{
	for (int k = 0; k < SL_CARD_KINDS; k++) {
		const sl_card *c = sl_card_find((sl_card_kind)k, name);
		if (c) {
			if (kind)
				*kind = (sl_card_kind)k;
			return c;
		}
	}
	return NULL;
}

/* The entries of distinct cards, counted up to want (the entry found
 * goes to out). */
typedef struct {
	int want, n;
	const sl_card *seen[256];
	int n_seen;
	sl_card_entry *out;
} list_ctx;

static bool list_one(void *ctx, const sl_card_entry *e)
{
	list_ctx *l = ctx;
	if (!e->card)
		return true;
	for (int i = 0; i < l->n_seen; i++)
		if (l->seen[i] == e->card)
			return true;
	if (l->n_seen < 256)
		l->seen[l->n_seen++] = e->card;
	if (l->n++ == l->want && l->out) {
		*l->out = *e;
		return false;
	}
	return true;
}

int sl_card_count(void)
{
	list_ctx l = {.want = -1};
	each_entry(list_one, &l);
	return l.n;
}

bool sl_card_at(int i, sl_card_entry *out)
{
	if (i < 0)
		return false;
	list_ctx l = {.want = i, .out = out};
	each_entry(list_one, &l);
	return l.n > i;
}
