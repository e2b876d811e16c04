/* Recipes: how to compress a model, module by module. A recipe is JSON
 * (schema in man/slimlab-recipe.5): a default rule, then rules that map
 * module selectors (exact names, globs such as blk.*.ffn_down, layer
 * ranges) to a format, method, parameters, sparsity and pattern. Later
 * rules override earlier ones field by field. The calibration text, token
 * count and seed are part of the recipe, so a recipe replays to the same
 * bytes. */
#ifndef SL_RECIPE_H
#define SL_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "formats.h"
#include "model.h"

#define SL_RECIPE_VERSION 1

/* A method's or format's parameter as a rule sets it (keys and ranges:
 * sl_param_find in core/methods/method.h). */
#define SL_RULE_PARAMS 8
typedef struct {
	char key[16];
	double value;
} sl_param_value;

/* A rule's fields are each optional; has_* says which ones it sets. */
typedef struct {
	char match[128];      /* selector: name or glob over module names ("" = all) */
	int layer_lo, layer_hi; /* inclusive block range; -1, -1 = any */
	bool has_format, has_method, has_sparsity, has_pattern, has_prune;
	char format[32];      /* a format's name, or "keep" */
	char method[16];      /* a quantization method */
	double sparsity;      /* fraction of weights (or heads/channels) removed, 0..1 */
	char pattern[16];     /* a pruning pattern: element-wise, N:M or structured */
	char prune[16];       /* a pruning criterion */
	sl_param_value params[SL_RULE_PARAMS]; /* later rules override earlier ones key by key */
	int n_params;
	char note[128];       /* free text, kept on save */
} sl_rule;

typedef struct sl_recipe {
	int version;
	char name[64];
	sl_rule def;          /* the default rule (its match is ignored) */
	sl_rule *rules;
	int n_rules;
	struct {
		char text[4096];  /* calibration text file */
		int tokens;       /* tokens taken from it */
		int ctx;          /* window length */
		uint64_t seed;    /* which windows are taken */
	} calib;
	char kv_cache[32];    /* "" = f32, else a format that can hold the KV cache */
} sl_recipe;

/* What a recipe says for one module after every rule is applied. */
typedef struct {
	const sl_format *format;   /* NULL = leave the weights as they are */
	char method[16];
	double sparsity;
	char pattern[16];
	char prune[16];
	sl_param_value params[SL_RULE_PARAMS];
	int n_params;
	int rule;                  /* index of the last rule that touched it, -1 = default */
} sl_module_plan;

/* A problem found in a recipe: its JSON path ("rules[2].format") and what
 * is wrong. */
typedef struct {
	char path[64];
	char msg[256];
} sl_recipe_issue;

sl_recipe *sl_recipe_new(void);
void sl_recipe_free(sl_recipe *r);
sl_recipe *sl_recipe_copy(const sl_recipe *r);
/* Parses JSON. Structural problems fail with err naming the JSON path. */
sl_status sl_recipe_parse(const char *json, size_t len, sl_recipe **out, sl_error *err);
/* Parses JSON, collecting every structural problem (with its path) rather
 * than stopping: returns how many (fills up to max) and, unless the text
 * is not JSON at all, *out holds whatever could be read. */
int sl_recipe_parse_all(const char *json, size_t len, sl_recipe **out, sl_recipe_issue *issues, int max);
sl_status sl_recipe_load(const char *path, sl_recipe **out, sl_error *err);
/* malloc'ed, pretty-printed JSON. */
char *sl_recipe_to_json(const sl_recipe *r);
/* Written atomically. */
sl_status sl_recipe_save(const sl_recipe *r, const char *path, sl_error *err);

/* One field of a rule from text, as recipes, the command line and :rule
 * spell it: format, method, prune, pattern, sparsity ("0.5" or "50%"),
 * layers ("5", "0-3", "8-", "all"), match, note, or a parameter's key.
 * The value is checked against the format and method registries; an
 * error says what is wrong and what would do. */
sl_status sl_rule_set(sl_rule *r, const char *key, const char *value, sl_error *err);
/* The keys sl_rule_set takes, in the order a recipe writes them. */
int sl_rule_key_count(void);
const char *sl_rule_key_at(int i);
/* The fields a rule sets as key=value words, as sl_rule_set takes them
 * ("format=FORMAT method=METHOD damp=0.02"), without its selector. */
void sl_rule_words(const sl_rule *r, char *buf, size_t n);
/* A rule's value for a parameter; NaN when it sets none. */
double sl_rule_param(const sl_rule *r, const char *key);
/* Sets a parameter (NaN removes it); false when the rule holds
 * SL_RULE_PARAMS already. */
bool sl_rule_param_set(sl_rule *r, const char *key, double value);

/* Appends a rule (copied); returns its index or -1 when out of memory. */
int sl_recipe_add_rule(sl_recipe *r, const sl_rule *rule);
void sl_recipe_remove_rule(sl_recipe *r, int index);
/* A rule that sets nothing and matches everything. */
void sl_rule_init(sl_rule *rule);

/* Every problem of the recipe, and, when m is given, of the recipe against
 * m (selectors that match nothing, groups that do not divide a module's
 * rows, impossible sparsities). Returns how many; fills up to max. */
int sl_recipe_check(const sl_recipe *r, const sl_model *m, sl_recipe_issue *out, int max);
/* Notes, not problems: formats that cannot hold some modules' rows, with
 * the format those modules fall back to (sl_format_fallback), one note per
 * rule, format and row length. Returns how many; fills up to max. */
int sl_recipe_fallbacks(const sl_recipe *r, const sl_model *m, sl_recipe_issue *out, int max);
bool sl_rule_matches(const sl_rule *rule, const sl_module *mod);
void sl_recipe_resolve(const sl_recipe *r, const sl_module *mod, sl_module_plan *plan);
/* Whether two plans do the same to a module (which rule said so aside). */
bool sl_plan_equal(const sl_module_plan *a, const sl_module_plan *b);

/* Bytes and bits per weight the recipe would give m (no work done). */
typedef struct {
	double bytes, params, bpw;
	double base_bytes;
} sl_recipe_estimate;
void sl_recipe_estimate_size(const sl_recipe *r, const sl_model *m, sl_recipe_estimate *out);

#endif
