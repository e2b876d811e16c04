/* Technique cards: what a format, a method, a figure or a way of healing
 * does, in slimlab's own words. A card lives beside the registry entry it
 * explains (the format registry, each method's file, healing, the
 * evaluation's figures, speculative decoding), so that a new entry brings
 * its card; cards.c finds them by kind and name and lists them all. */
#ifndef SL_CARD_H
#define SL_CARD_H

#include <stdbool.h>

typedef struct {
	const char *title;   /* "Rounding to nearest" */
	const char *what;    /* what it does */
	const char *formula; /* its formula, in plain text */
	const char *watch;   /* what to look at on the workbench's screens */
	const char *pitfall; /* a common mistake or surprise */
	const char *paper;   /* where it comes from */
} sl_card;

/* Where a card's entry is registered; the names are those the recipe keys
 * and commands use. */
typedef enum {
	SL_CARD_FORMAT = 0, /* the format registry */
	SL_CARD_METHOD,     /* quantization and low-rank methods (recipe key "method") */
	SL_CARD_PRUNE,      /* pruning criteria ("prune") */
	SL_CARD_PATTERN,    /* sparsity patterns ("pattern": 2:4, heads, ...) */
	SL_CARD_HEAL,       /* healing by training: qat, qad, kd, lora, loftq */
	SL_CARD_METRIC,     /* the figures: ppl, kl, top1, dppl, accept */
	SL_CARD_DECODE,     /* speculative decoding and its drafts */
	SL_CARD_KINDS
} sl_card_kind;

/* "format", "method", "prune", "pattern", "heal", "metric", "speculate". */
const char *sl_card_kind_name(sl_card_kind kind);
bool sl_card_kind_parse(const char *s, sl_card_kind *kind);

/* The card of the entry called name (as its registry spells it; patterns:
 * any name the pattern takes, "2:4"); NULL when there is none. */
const sl_card *sl_card_find(sl_card_kind kind, const char *name);
/* The same over every kind in the order above; *kind (may be NULL) gets
 * the kind found. */
const sl_card *sl_card_search(const char *name, sl_card_kind *kind);

/* Every card once, in the order the Help view lists them: each with the
 * first entry that has it. */
typedef struct {
	sl_card_kind kind;
	const char *name;
	const sl_card *card;
} sl_card_entry;
int sl_card_count(void);
/* false when i is out of range. */
bool sl_card_at(int i, sl_card_entry *out);

/* Whether every field of c is set and not empty. */
bool sl_card_complete(const sl_card *c);

#endif
