/* Technique cards: every entry of every registry (formats, methods,
 * healing, the figures, the sweep's metrics, speculative decoding) has a
 * card with every field written, found again by its kind and name; the
 * Help list holds each card once and no other. */
#include <stdbool.h>

#include "core/card.h"
#include "core/eval.h"
#include "core/formats.h"
#include "core/heal.h"
#include "core/loftq.h"
#include "core/methods/method.h"
#include "core/speculate.h"
#include "core/sweep/sweep.h"
#include "test.h"

/* Whether the Help list holds card c. */
static bool listed(const sl_card *c)
{
	sl_card_entry e;
	for (int i = 0; sl_card_at(i, &e); i++)
		if (e.card == c)
			return true;
	return false;
}

static void check_card(const sl_card *c, const char *what, const char *name)
{
	CHECK(c != NULL, "%s %s has no card", what, name);
	if (!c)
		return;
	CHECK(sl_card_complete(c), "%s %s: a field of its card (%s) is empty", what, name, c->title ? c->title : "?");
	CHECK(listed(c), "%s %s: its card is not in the Help list", what, name);
}

static void test_registries(void)
{
	for (int i = 0; i < sl_format_count(); i++) {
		const sl_format *f = sl_format_at(i);
		check_card(f->card, "format", f->name);
		CHECK(sl_card_find(SL_CARD_FORMAT, f->name) == f->card, "format %s: lookup", f->name);
	}
	for (int i = 0; i < sl_method_count(); i++) {
		const sl_method *m = sl_method_at(i);
		check_card(m->card, "method", m->name);
		sl_card_kind k = m->kind == SL_METHOD_PRUNE     ? SL_CARD_PRUNE
		                 : m->kind == SL_METHOD_PATTERN ? SL_CARD_PATTERN
		                                                : SL_CARD_METHOD;
		CHECK(sl_card_find(k, m->name) == m->card, "method %s: lookup as %s", m->name, sl_card_kind_name(k));
	}
	for (sl_heal_method h = SL_HEAL_QAT; sl_heal_method_name(h); h++) {
		check_card(sl_heal_method_card(h), "heal method", sl_heal_method_name(h));
		CHECK(sl_card_find(SL_CARD_HEAL, sl_heal_method_name(h)) == sl_heal_method_card(h), "heal %s: lookup",
		      sl_heal_method_name(h));
	}
	check_card(sl_loftq_card(), "heal", "loftq");
	for (int i = 0; i < sl_eval_figure_count(); i++)
		check_card(sl_eval_figure_card(i), "figure", sl_eval_figure_name(i));
	/* Every metric the heatmap can show is a figure with a card. */
	for (int i = 0; i < sl_sweep_metric_count(); i++)
		check_card(sl_card_find(SL_CARD_METRIC, sl_sweep_metric_name(i)), "heatmap metric",
		           sl_sweep_metric_name(i));
	for (int i = 0; i < sl_spec_card_count(); i++)
		check_card(sl_spec_card_at(i), "speculative", sl_spec_card_name(i));
}

static void test_lookups(void)
{
	/* A family of names shares one card: every k-quant, every integer group. */
	CHECK(sl_card_find(SL_CARD_FORMAT, "q4_k") == sl_card_find(SL_CARD_FORMAT, "q2_k"), "k-quants share a card");
	CHECK(sl_card_find(SL_CARD_FORMAT, "int4-g32") == sl_card_find(SL_CARD_FORMAT, "int3-g128-asym"),
	      "integer groups share a card");
	CHECK(sl_card_find(SL_CARD_FORMAT, "nvfp4") != sl_card_find(SL_CARD_FORMAT, "mxfp4"), "nvfp4 and mxfp4 differ");
	/* A pattern's card by any name it takes. */
	const sl_card *nm = sl_card_find(SL_CARD_PATTERN, "N:M");
	CHECK(nm && sl_card_find(SL_CARD_PATTERN, "2:4") == nm && sl_card_find(SL_CARD_PATTERN, "4:8") == nm,
	      "2:4 and 4:8 open the N:M card");
	CHECK(strstr(nm ? nm->title : "", "N:M") != NULL, "the N:M card's title");
	/* Kinds keep names apart; search finds the first kind that knows one. */
	CHECK(sl_card_find(SL_CARD_METHOD, "q4_0") == NULL, "q4_0 is no method");
	CHECK(sl_card_find(SL_CARD_FORMAT, "nonsense") == NULL, "unknown format");
	CHECK(sl_card_find(SL_CARD_METRIC, NULL) == NULL, "NULL name");
	sl_card_kind k = SL_CARD_KINDS;
	CHECK(sl_card_search("wanda", &k) == sl_card_find(SL_CARD_PRUNE, "wanda") && k == SL_CARD_PRUNE, "search wanda");
	CHECK(sl_card_search("kl", &k) != NULL && k == SL_CARD_METRIC, "search kl");
	CHECK(sl_card_search("qad", &k) != NULL && k == SL_CARD_HEAL, "search qad");
	CHECK(sl_card_search("speculative", &k) != NULL && k == SL_CARD_DECODE, "search speculative");
	CHECK(sl_card_search("no-such-technique", NULL) == NULL, "search unknown");
	for (int i = 0; i < SL_CARD_KINDS; i++) {
		sl_card_kind back;
		CHECK(sl_card_kind_parse(sl_card_kind_name((sl_card_kind)i), &back) && back == (sl_card_kind)i,
		      "kind %d round trip", i);
	}
	CHECK(!sl_card_kind_parse("colour", &k), "unknown kind");
	CHECK(!sl_card_complete(&(sl_card){.title = "t", .what = "w", .formula = "f", .watch = "", .pitfall = "p",
	                                   .paper = "q"}),
	      "an empty field is incomplete");
}

/* The Help list: each card once, each entry found again by its kind and
 * name. */
static void test_list(void)
{
	int n = sl_card_count();
	CHECK(n >= 30, "only %d cards", n);
	sl_card_entry e, f;
	for (int i = 0; i < n; i++) {
		REQUIRE(sl_card_at(i, &e), "entry %d of %d", i, n);
		CHECK(sl_card_find(e.kind, e.name) == e.card, "entry %d (%s %s) found again", i, sl_card_kind_name(e.kind),
		      e.name);
		for (int j = 0; j < i; j++)
			CHECK(sl_card_at(j, &f) && f.card != e.card, "cards %d and %d are one", j, i);
	}
	CHECK(!sl_card_at(n, &e) && !sl_card_at(-1, &e), "out of range");
}

int main(void)
{
	test_registries();
	test_lookups();
	test_list();
	return test_finish();
}
