/* Recipes: JSON in and out (the schema is man/slimlab-recipe.5), rule
 * matching and resolution, every problem a recipe can have (alone and
 * against a model), and what a recipe would make of a model's size. */
#include "recipe.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

static const char *const method_names[] = {"rtn", "gptq", "awq", "smoothquant"};
static const char *const prune_names[] = {"magnitude", "wanda", "sparsegpt"};
static const char *const pattern_names[] = {"unstructured", "heads", "channels", "block"};
static const char *const kv_names[] = {"f32", "f16", "bf16", "int8", "fp8-e4m3", "fp8-e5m2", "nvfp4"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
/* The largest integer a JSON number (a double) holds exactly. */
#define JSON_INT_MAX 9007199254740992.0
/* Layer ranges open at the top ("8-") run to here. */
#define LAYER_END 0x7fffffff

static bool in_list(const char *s, const char *const *list, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

static void join_list(char *buf, size_t n, const char *const *list, int count)
{
	buf[0] = 0;
	for (int i = 0; i < count; i++)
		snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", i ? ", " : "", list[i]);
}

/* ---- problems, collected ------------------------------------------------ */

typedef struct {
	sl_recipe_issue *out;
	int max, n;
} issues;

__attribute__((format(printf, 3, 4))) static void issue(issues *is, const char *path, const char *fmt, ...)
{
	if (is->out && is->n < is->max) {
		sl_recipe_issue *p = &is->out[is->n];
		snprintf(p->path, sizeof p->path, "%s", path);
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->msg, sizeof p->msg, fmt, ap);
		va_end(ap);
	}
	is->n++;
}

/* ---- rules ---------------------------------------------------------------- */

void sl_rule_init(sl_rule *rule)
{
	memset(rule, 0, sizeof *rule);
	rule->layer_lo = rule->layer_hi = -1;
	rule->group = rule->block = rule->act_order = rule->grid = -1;
	rule->damp = rule->alpha = NAN;
}

sl_recipe *sl_recipe_new(void)
{
	sl_recipe *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->version = SL_RECIPE_VERSION;
	sl_rule_init(&r->def);
	return r;
}

void sl_recipe_free(sl_recipe *r)
{
	if (!r)
		return;
	free(r->rules);
	free(r);
}

sl_recipe *sl_recipe_copy(const sl_recipe *r)
{
	sl_recipe *c = malloc(sizeof *c);
	if (!c)
		return NULL;
	*c = *r;
	c->rules = NULL;
	if (r->n_rules) {
		c->rules = sl_malloc_array((size_t)r->n_rules, sizeof *c->rules);
		if (!c->rules) {
			free(c);
			return NULL;
		}
		memcpy(c->rules, r->rules, (size_t)r->n_rules * sizeof *c->rules);
	}
	return c;
}

int sl_recipe_add_rule(sl_recipe *r, const sl_rule *rule)
{
	sl_rule *rs = realloc(r->rules, (size_t)(r->n_rules + 1) * sizeof *rs);
	if (!rs)
		return -1;
	r->rules = rs;
	r->rules[r->n_rules] = *rule;
	return r->n_rules++;
}

void sl_recipe_remove_rule(sl_recipe *r, int index)
{
	if (index < 0 || index >= r->n_rules)
		return;
	memmove(&r->rules[index], &r->rules[index + 1], (size_t)(r->n_rules - index - 1) * sizeof *r->rules);
	r->n_rules--;
}

/* '*' matches any run of characters (dots included), '?' any one. */
static bool glob_match(const char *p, const char *s)
{
	const char *star = NULL, *retry = NULL;
	while (*s) {
		if (*p == '*') {
			star = ++p;
			retry = s;
		} else if (*p == '?' || *p == *s) {
			p++;
			s++;
		} else if (star) {
			p = star;
			s = ++retry;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return !*p;
}

static bool has_layers(const sl_rule *rule)
{
	return !(rule->layer_lo == -1 && rule->layer_hi == -1);
}

bool sl_rule_matches(const sl_rule *rule, const sl_module *mod)
{
	if (rule->match[0] && !glob_match(rule->match, mod->name))
		return false;
	if (has_layers(rule) && (mod->layer < rule->layer_lo || mod->layer > rule->layer_hi))
		return false;
	return true;
}

/* "keep" in a rule's format leaves the weights as they are. */
static bool is_keep(const char *format)
{
	return !strcmp(format, "keep");
}

/* The int format of the same bits and symmetry with another group, or
 * NULL. int8 (per channel) takes groups too. */
static const sl_format *int_with_group(const sl_format *f, int group)
{
	if (!f || strcmp(f->family, "int"))
		return NULL;
	bool asym = strstr(f->name, "-asym") != NULL;
	char name[32];
	snprintf(name, sizeof name, "int%d-g%d%s", f->bits, group, asym ? "-asym" : "");
	return sl_format_find(name);
}

/* Keep N of every M ("2:4"); false for anything else. */
static bool parse_nm(const char *s, int *keep_n, int *group_m)
{
	char tail;
	int n, m;
	if (sscanf(s, "%d:%d%c", &n, &m, &tail) != 2 || n < 1 || m < 2 || n >= m || m > 256)
		return false;
	*keep_n = n;
	*group_m = m;
	return true;
}

static void apply_rule(const sl_rule *rule, sl_module_plan *plan, const char **format_name)
{
	if (rule->has_format)
		*format_name = rule->format;
	if (rule->has_method)
		snprintf(plan->method, sizeof plan->method, "%s", rule->method);
	if (rule->has_sparsity)
		plan->sparsity = rule->sparsity;
	if (rule->has_pattern)
		snprintf(plan->pattern, sizeof plan->pattern, "%s", rule->pattern);
	if (rule->has_prune)
		snprintf(plan->prune, sizeof plan->prune, "%s", rule->prune);
	if (rule->group != -1)
		plan->group = rule->group;
	if (rule->block != -1)
		plan->block = rule->block;
	if (rule->act_order != -1)
		plan->act_order = rule->act_order;
	if (rule->grid != -1)
		plan->grid = rule->grid;
	if (!isnan(rule->damp))
		plan->damp = rule->damp;
	if (!isnan(rule->alpha))
		plan->alpha = rule->alpha;
}

/* Fields nothing set get their defaults: rtn for a format, unstructured
 * magnitude pruning for a sparsity, the sparsity an N:M pattern implies;
 * a group given with an int format picks that format's group. */
void sl_recipe_resolve(const sl_recipe *r, const sl_module *mod, sl_module_plan *plan)
{
	memset(plan, 0, sizeof *plan);
	plan->group = plan->block = plan->act_order = plan->grid = -1;
	plan->damp = plan->alpha = NAN;
	plan->rule = -1;
	const char *format = "";
	apply_rule(&r->def, plan, &format);
	for (int i = 0; i < r->n_rules; i++)
		if (sl_rule_matches(&r->rules[i], mod)) {
			apply_rule(&r->rules[i], plan, &format);
			plan->rule = i;
		}
	plan->format = is_keep(format) ? NULL : sl_format_find(format);
	const sl_format *regrouped = plan->group > 0 ? int_with_group(plan->format, plan->group) : NULL;
	if (regrouped)
		plan->format = regrouped;
	if (plan->format && !plan->method[0])
		snprintf(plan->method, sizeof plan->method, "rtn");
	int n, m;
	if (!(plan->sparsity > 0) && parse_nm(plan->pattern, &n, &m))
		plan->sparsity = 1.0 - (double)n / m;
	if (plan->sparsity > 0) {
		if (!plan->pattern[0])
			snprintf(plan->pattern, sizeof plan->pattern, "unstructured");
		if (!plan->prune[0])
			snprintf(plan->prune, sizeof plan->prune, "magnitude");
	}
}

/* ---- JSON in -------------------------------------------------------------- */

typedef struct {
	issues is;
	char path[64];
} parser;

static const char *type_name(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "true/false";
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsArray(v))
		return "an array";
	return "an object";
}

/* base.key, cut to fit: keys come from the file and may be any length. */
static void key_path(char *buf, size_t n, const char *base, const char *key)
{
	size_t k = 0;
	for (const char *s = base; *s && k + 1 < n; s++)
		buf[k++] = *s;
	if (base[0] && k + 1 < n)
		buf[k++] = '.';
	for (const char *s = key; *s && k + 1 < n; s++)
		buf[k++] = *s;
	buf[k] = 0;
}

static bool get_str(issues *is, const cJSON *v, const char *path, char *dst, size_t size)
{
	if (!cJSON_IsString(v)) {
		issue(is, path, "expected a string, found %s", type_name(v));
		return false;
	}
	if (strlen(v->valuestring) >= size) {
		issue(is, path, "'%.40s...' is longer than %zu characters", v->valuestring, size - 1);
		return false;
	}
	snprintf(dst, size, "%s", v->valuestring);
	return true;
}

static bool get_num(issues *is, const cJSON *v, const char *path, double *out)
{
	if (!cJSON_IsNumber(v)) {
		issue(is, path, "expected a number, found %s", type_name(v));
		return false;
	}
	*out = v->valuedouble;
	return true;
}

static bool get_int(issues *is, const cJSON *v, const char *path, double lo, double hi, double *out)
{
	if (!get_num(is, v, path, out))
		return false;
	if (*out != floor(*out) || *out < lo || *out > hi) {
		issue(is, path, "%g is not a whole number from %.0f to %.0f", *out, lo, hi);
		return false;
	}
	return true;
}

/* Reports keys an object may not hold and keys given more than once. */
static void check_keys(issues *is, const cJSON *obj, const char *base, const char *const *known, int n)
{
	char path[64], list[256];
	int seen[16] = {0};
	for (const cJSON *c = obj->child; c; c = c->next) {
		key_path(path, sizeof path, base, c->string);
		int k = 0;
		while (k < n && strcmp(c->string, known[k]))
			k++;
		if (k == n) {
			join_list(list, sizeof list, known, n);
			issue(is, path, "unknown key (known: %s)", list);
		} else if (seen[k]++ == 1) {
			issue(is, path, "given twice");
		}
	}
}

/* "5", "0-3", "8-" (8 to the last), or a number. */
static void parse_layers(issues *is, const cJSON *v, const char *path, sl_rule *rule)
{
	double d;
	if (cJSON_IsNumber(v)) {
		if (get_int(is, v, path, 0, 1e6, &d))
			rule->layer_lo = rule->layer_hi = (int)d;
		return;
	}
	char s[32];
	if (!get_str(is, v, path, s, sizeof s))
		return;
	char *end;
	long lo = strtol(s, &end, 10), hi = lo;
	bool ok = end != s && s[0] >= '0' && s[0] <= '9';
	if (ok && *end == '-') {
		const char *h = end + 1;
		if (!*h) {
			hi = LAYER_END;
			end = (char *)h;
		} else {
			hi = strtol(h, &end, 10);
			ok = end != h && h[0] >= '0' && h[0] <= '9';
		}
	}
	if (!ok || *end || lo > 1000000 || (hi > 1000000 && hi != LAYER_END) || lo > hi) {
		issue(is, path, "'%s' is not a layer range (\"5\", \"0-3\", \"8-\")", s);
		return;
	}
	rule->layer_lo = (int)lo;
	rule->layer_hi = (int)hi;
}

static void parse_params(issues *is, const cJSON *obj, const char *base, sl_rule *rule)
{
	static const char *const keys[] = {"group", "damp", "block", "act_order", "alpha", "grid"};
	char path[64];
	if (!cJSON_IsObject(obj)) {
		issue(is, base, "expected an object, found %s", type_name(obj));
		return;
	}
	check_keys(is, obj, base, keys, COUNT(keys));
	double d;
	const cJSON *v;
#define PARAM(key) (v = cJSON_GetObjectItemCaseSensitive(obj, key)) && (key_path(path, sizeof path, base, key), 1)
	if (PARAM("group") && get_int(is, v, path, 1, 1 << 20, &d))
		rule->group = (int)d;
	if (PARAM("damp") && get_num(is, v, path, &d))
		rule->damp = d;
	if (PARAM("block") && get_int(is, v, path, 1, 1 << 20, &d))
		rule->block = (int)d;
	if (PARAM("act_order")) {
		if (cJSON_IsBool(v))
			rule->act_order = cJSON_IsTrue(v);
		else
			issue(is, path, "expected true or false, found %s", type_name(v));
	}
	if (PARAM("alpha") && get_num(is, v, path, &d))
		rule->alpha = d;
	if (PARAM("grid") && get_int(is, v, path, 1, 10000, &d))
		rule->grid = (int)d;
#undef PARAM
}

static void parse_rule(issues *is, const cJSON *obj, const char *base, sl_rule *rule, bool is_default)
{
	static const char *const keys[] = {"match", "layers", "format", "method", "sparsity",
	                                   "pattern", "prune", "params", "note"};
	sl_rule_init(rule);
	if (!cJSON_IsObject(obj)) {
		issue(is, base, "expected an object, found %s", type_name(obj));
		return;
	}
	/* The default rule holds for every module: it selects nothing. */
	check_keys(is, obj, base, is_default ? keys + 2 : keys, is_default ? COUNT(keys) - 2 : COUNT(keys));
	char path[64];
	const cJSON *v;
#define FIELD(key) (v = cJSON_GetObjectItemCaseSensitive(obj, key)) && (key_path(path, sizeof path, base, key), 1)
	if (!is_default && FIELD("match"))
		get_str(is, v, path, rule->match, sizeof rule->match);
	if (!is_default && FIELD("layers"))
		parse_layers(is, v, path, rule);
	if (FIELD("format"))
		rule->has_format = get_str(is, v, path, rule->format, sizeof rule->format);
	if (FIELD("method"))
		rule->has_method = get_str(is, v, path, rule->method, sizeof rule->method);
	if (FIELD("sparsity"))
		rule->has_sparsity = get_num(is, v, path, &rule->sparsity);
	if (FIELD("pattern"))
		rule->has_pattern = get_str(is, v, path, rule->pattern, sizeof rule->pattern);
	if (FIELD("prune"))
		rule->has_prune = get_str(is, v, path, rule->prune, sizeof rule->prune);
	if (FIELD("params"))
		parse_params(is, v, path, rule);
	if (FIELD("note"))
		get_str(is, v, path, rule->note, sizeof rule->note);
#undef FIELD
}

static void parse_calibration(issues *is, const cJSON *obj, sl_recipe *r)
{
	static const char *const keys[] = {"text", "tokens", "ctx", "seed"};
	if (!cJSON_IsObject(obj)) {
		issue(is, "calibration", "expected an object, found %s", type_name(obj));
		return;
	}
	check_keys(is, obj, "calibration", keys, COUNT(keys));
	const cJSON *v;
	double d;
	if ((v = cJSON_GetObjectItemCaseSensitive(obj, "text")))
		get_str(is, v, "calibration.text", r->calib.text, sizeof r->calib.text);
	if ((v = cJSON_GetObjectItemCaseSensitive(obj, "tokens")) &&
	    get_int(is, v, "calibration.tokens", 1, 1 << 30, &d))
		r->calib.tokens = (int)d;
	if ((v = cJSON_GetObjectItemCaseSensitive(obj, "ctx")) && get_int(is, v, "calibration.ctx", 1, 1 << 20, &d))
		r->calib.ctx = (int)d;
	if ((v = cJSON_GetObjectItemCaseSensitive(obj, "seed")) &&
	    get_int(is, v, "calibration.seed", 0, JSON_INT_MAX, &d))
		r->calib.seed = (uint64_t)d;
}

/* Every structural problem lands in is; whatever could be read is in r. */
static void parse_recipe(issues *is, const cJSON *root, sl_recipe *r)
{
	static const char *const keys[] = {"slimlab_recipe", "name", "calibration", "default", "rules", "kv_cache"};
	if (!cJSON_IsObject(root)) {
		issue(is, "", "a recipe is a JSON object, not %s", type_name(root));
		return;
	}
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "slimlab_recipe");
	double d;
	if (!v) {
		issue(is, "slimlab_recipe", "missing: a recipe starts with \"slimlab_recipe\": %d", SL_RECIPE_VERSION);
		return;
	}
	if (!get_num(is, v, "slimlab_recipe", &d))
		return;
	if (d != floor(d) || d < 1) {
		issue(is, "slimlab_recipe", "%g is not a recipe version (1, 2, ...)", d);
		return;
	}
	if (d > SL_RECIPE_VERSION) {
		issue(is, "slimlab_recipe", "version %.0f is newer than this slimlab reads (%d); upgrade slimlab", d,
		      SL_RECIPE_VERSION);
		return;
	}
	r->version = (int)d;
	check_keys(is, root, "", keys, COUNT(keys));
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "name")))
		get_str(is, v, "name", r->name, sizeof r->name);
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "calibration")))
		parse_calibration(is, v, r);
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "default")))
		parse_rule(is, v, "default", &r->def, true);
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "kv_cache")))
		get_str(is, v, "kv_cache", r->kv_cache, sizeof r->kv_cache);
	v = cJSON_GetObjectItemCaseSensitive(root, "rules");
	if (!v)
		return;
	if (!cJSON_IsArray(v)) {
		issue(is, "rules", "expected an array of rules, found %s", type_name(v));
		return;
	}
	int n = cJSON_GetArraySize(v);
	if (n > 100000) {
		issue(is, "rules", "%d rules is more than slimlab takes (100000)", n);
		return;
	}
	r->rules = n ? sl_calloc((size_t)n, sizeof *r->rules) : NULL;
	if (n && !r->rules) {
		issue(is, "rules", "out of memory for %d rules", n);
		return;
	}
	int i = 0;
	for (const cJSON *c = v->child; c; c = c->next, i++) {
		char path[32];
		snprintf(path, sizeof path, "rules[%d]", i);
		parse_rule(is, c, path, &r->rules[i], false);
	}
	r->n_rules = n;
}

/* Line and column of byte off in text, for JSON syntax errors. */
static void line_col(const char *text, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

sl_status sl_recipe_parse(const char *json, size_t len, sl_recipe **out, sl_error *err)
{
	*out = NULL;
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!root) {
		size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
		int line, col;
		line_col(json, off, &line, &col);
		return sl_errorf(err, SL_ERR_FORMAT, "line %d, column %d: not valid JSON", line, col);
	}
	for (const char *p = end; p < json + len; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0') {
			int line, col;
			line_col(json, (size_t)(p - json), &line, &col);
			cJSON_Delete(root);
			return sl_errorf(err, SL_ERR_FORMAT, "line %d, column %d: text after the recipe's closing brace",
			                 line, col);
		}
	sl_recipe *r = sl_recipe_new();
	if (!r) {
		cJSON_Delete(root);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	sl_recipe_issue found[8];
	issues is = {found, COUNT(found), 0};
	parse_recipe(&is, root, r);
	cJSON_Delete(root);
	if (!is.n) {
		*out = r;
		return SL_OK;
	}
	sl_recipe_free(r);
	sl_errorf(err, SL_ERR_FORMAT, "%s: %s", found[0].path[0] ? found[0].path : "recipe", found[0].msg);
	for (int i = 1; i < is.n && i < COUNT(found) && err; i++)
		snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg), "\n%s: %s", found[i].path,
		         found[i].msg);
	if (is.n > COUNT(found) && err)
		snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg), "\n(and %d more)",
		         is.n - COUNT(found));
	return SL_ERR_FORMAT;
}

sl_status sl_recipe_load(const char *path, sl_recipe **out, sl_error *err)
{
	char *text;
	size_t len;
	*out = NULL;
	sl_status st = sl_read_file(path, (size_t)16 << 20, &text, &len, err);
	if (st)
		return st;
	st = sl_recipe_parse(text, len, out, err);
	free(text);
	if (st)
		sl_error_prefix(err, "%s: ", path);
	return st;
}

/* ---- JSON out ------------------------------------------------------------- */

static void layers_text(const sl_rule *rule, char *buf, size_t n)
{
	if (rule->layer_hi == LAYER_END)
		snprintf(buf, n, "%d-", rule->layer_lo);
	else if (rule->layer_lo == rule->layer_hi)
		snprintf(buf, n, "%d", rule->layer_lo);
	else
		snprintf(buf, n, "%d-%d", rule->layer_lo, rule->layer_hi);
}

static cJSON *rule_json(const sl_rule *rule, bool is_default)
{
	cJSON *o = cJSON_CreateObject();
	if (!is_default && rule->match[0])
		cJSON_AddStringToObject(o, "match", rule->match);
	if (!is_default && has_layers(rule)) {
		char buf[32];
		layers_text(rule, buf, sizeof buf);
		cJSON_AddStringToObject(o, "layers", buf);
	}
	if (rule->has_format)
		cJSON_AddStringToObject(o, "format", rule->format);
	if (rule->has_method)
		cJSON_AddStringToObject(o, "method", rule->method);
	if (rule->has_sparsity)
		cJSON_AddNumberToObject(o, "sparsity", rule->sparsity);
	if (rule->has_pattern)
		cJSON_AddStringToObject(o, "pattern", rule->pattern);
	if (rule->has_prune)
		cJSON_AddStringToObject(o, "prune", rule->prune);
	cJSON *p = cJSON_CreateObject();
	if (rule->group != -1)
		cJSON_AddNumberToObject(p, "group", rule->group);
	if (!isnan(rule->damp))
		cJSON_AddNumberToObject(p, "damp", rule->damp);
	if (rule->block != -1)
		cJSON_AddNumberToObject(p, "block", rule->block);
	if (rule->act_order != -1)
		cJSON_AddBoolToObject(p, "act_order", rule->act_order);
	if (!isnan(rule->alpha))
		cJSON_AddNumberToObject(p, "alpha", rule->alpha);
	if (rule->grid != -1)
		cJSON_AddNumberToObject(p, "grid", rule->grid);
	if (p->child)
		cJSON_AddItemToObject(o, "params", p);
	else
		cJSON_Delete(p);
	if (rule->note[0])
		cJSON_AddStringToObject(o, "note", rule->note);
	return o;
}

char *sl_recipe_to_json(const sl_recipe *r)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "slimlab_recipe", r->version);
	if (r->name[0])
		cJSON_AddStringToObject(o, "name", r->name);
	if (r->calib.text[0] || r->calib.tokens || r->calib.ctx || r->calib.seed) {
		cJSON *c = cJSON_AddObjectToObject(o, "calibration");
		if (r->calib.text[0])
			cJSON_AddStringToObject(c, "text", r->calib.text);
		if (r->calib.tokens)
			cJSON_AddNumberToObject(c, "tokens", r->calib.tokens);
		if (r->calib.ctx)
			cJSON_AddNumberToObject(c, "ctx", r->calib.ctx);
		cJSON_AddNumberToObject(c, "seed", (double)r->calib.seed);
	}
	cJSON_AddItemToObject(o, "default", rule_json(&r->def, true));
	cJSON *rules = cJSON_AddArrayToObject(o, "rules");
	for (int i = 0; i < r->n_rules; i++)
		cJSON_AddItemToArray(rules, rule_json(&r->rules[i], false));
	if (r->kv_cache[0])
		cJSON_AddStringToObject(o, "kv_cache", r->kv_cache);
	char *s = cJSON_Print(o);
	cJSON_Delete(o);
	return s;
}

sl_status sl_recipe_save(const sl_recipe *r, const char *path, sl_error *err)
{
	char *s = sl_recipe_to_json(r);
	if (!s)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory writing the recipe", path);
	size_t n = strlen(s);
	s[n] = '\n'; /* cJSON's buffer ends in a NUL that can become the final newline */
	sl_status st = sl_write_file_atomic(path, s, n + 1, err);
	free(s);
	return st;
}

/* ---- checks --------------------------------------------------------------- */

static void check_rule(issues *is, const sl_rule *rule, const char *base)
{
	char path[64], list[256];
#define PATH(key) (key_path(path, sizeof path, base, key), path)
	const sl_format *f = rule->has_format ? sl_format_find(rule->format) : NULL;
	if (rule->has_format && !f && !is_keep(rule->format))
		issue(is, PATH("format"), "unknown format '%s' (slimlab-recipe(5) lists them; \"keep\" leaves the weights)",
		      rule->format);
	if (rule->has_method && !in_list(rule->method, method_names, COUNT(method_names))) {
		join_list(list, sizeof list, method_names, COUNT(method_names));
		issue(is, PATH("method"), "unknown method '%s' (known: %s)", rule->method, list);
	}
	if (rule->has_prune && !in_list(rule->prune, prune_names, COUNT(prune_names))) {
		join_list(list, sizeof list, prune_names, COUNT(prune_names));
		issue(is, PATH("prune"), "unknown pruning criterion '%s' (known: %s)", rule->prune, list);
	}
	int n = 0, m = 0;
	bool nm = rule->has_pattern && parse_nm(rule->pattern, &n, &m);
	if (rule->has_pattern && !nm && !in_list(rule->pattern, pattern_names, COUNT(pattern_names))) {
		join_list(list, sizeof list, pattern_names, COUNT(pattern_names));
		issue(is, PATH("pattern"), "unknown pattern '%s' (known: %s, or N:M keeping N of every M, N < M)",
		      rule->pattern, list);
	}
	if (rule->has_sparsity) {
		if (!(rule->sparsity >= 0 && rule->sparsity <= 1))
			issue(is, PATH("sparsity"), "%g is outside 0..1", rule->sparsity);
		else if (rule->sparsity == 1)
			issue(is, PATH("sparsity"), "1 would remove every weight");
		else if (nm && fabs(rule->sparsity - (1.0 - (double)n / m)) > 1e-9)
			issue(is, PATH("sparsity"), "%g disagrees with pattern %s, which removes %g", rule->sparsity,
			      rule->pattern, 1.0 - (double)n / m);
	}
	if (rule->group != -1) {
		if (rule->group < 1)
			issue(is, PATH("params.group"), "%d is not a group size", rule->group);
		else if (f && !strcmp(f->family, "int") && !int_with_group(f, rule->group))
			issue(is, PATH("params.group"), "%s takes groups of 32, 64 or 128, not %d", f->name, rule->group);
	}
	if (!isnan(rule->damp) && !(rule->damp >= 0 && rule->damp <= 10))
		issue(is, PATH("params.damp"), "%g is outside 0..10 (a fraction of the mean of diag(H))", rule->damp);
	if (!isnan(rule->alpha) && !(rule->alpha >= 0 && rule->alpha <= 1))
		issue(is, PATH("params.alpha"), "%g is outside 0..1", rule->alpha);
	if (rule->block != -1 && rule->block < 1)
		issue(is, PATH("params.block"), "%d is not a number of columns", rule->block);
	if (rule->grid != -1 && rule->grid < 1)
		issue(is, PATH("params.grid"), "%d is not a number of search points", rule->grid);
	if (rule->act_order < -1 || rule->act_order > 1)
		issue(is, PATH("params.act_order"), "%d is not true or false", rule->act_order);
	if (has_layers(rule) && (rule->layer_lo < 0 || rule->layer_hi < rule->layer_lo))
		issue(is, PATH("layers"), "%d-%d is not a layer range", rule->layer_lo, rule->layer_hi);
#undef PATH
}

typedef struct {
	sl_module *mods;
	int n;
} module_list;

static bool list_modules(const sl_model *m, module_list *ml)
{
	ml->n = sl_model_modules(m, NULL, 0);
	ml->mods = sl_calloc((size_t)(ml->n ? ml->n : 1), sizeof *ml->mods);
	if (!ml->mods)
		return false;
	sl_model_modules(m, ml->mods, ml->n);
	return true;
}

/* What a structured pattern removes from mod, and of how many units
 * (heads, channels, blocks); false when it does not apply to mod. */
static bool structured_units(const sl_model *m, const sl_module *mod, const char *pattern, int *units,
                             const char **what)
{
	const sl_layer *L = mod->layer >= 0 ? &m->layers[mod->layer] : NULL;
	if (!strcmp(pattern, "heads") && L && mod->kind <= SL_MOD_ATTN_OUT) {
		*units = L->n_heads;
		*what = "heads";
		return true;
	}
	if (!strcmp(pattern, "channels") && L && mod->kind >= SL_MOD_FFN_GATE && mod->kind <= SL_MOD_FFN_DOWN) {
		*units = L->hidden_dim;
		*what = "MLP channels";
		return true;
	}
	if (!strcmp(pattern, "block") && L) {
		*units = m->cfg.n_layers;
		*what = "blocks";
		return true;
	}
	return false;
}

/* Problems of rule i (path base) that only m shows. */
static void check_against_model(issues *is, const sl_recipe *r, const sl_rule *rule, const char *base,
                                const sl_model *m, const module_list *ml)
{
	char path[64];
#define PATH(key) (key_path(path, sizeof path, base, key), path)
	int matched = 0, named = 0;
	int64_t bad_group = 0, bad_nm = 0;
	const char *bad_group_mod = "", *bad_nm_mod = "";
	int n = 0, gm = 0;
	bool nm = rule->has_pattern && parse_nm(rule->pattern, &n, &gm);
	bool structured_done = false;
	for (int i = 0; i < ml->n; i++) {
		const sl_module *mod = &ml->mods[i];
		named += !rule->match[0] || glob_match(rule->match, mod->name);
		if (!sl_rule_matches(rule, mod))
			continue;
		matched++;
		int64_t cols = mod->w->ne[0];
		if (rule->group > 0 && cols % rule->group && !bad_group) {
			bad_group = cols;
			bad_group_mod = mod->name;
		}
		if (nm && cols % gm && !bad_nm) {
			bad_nm = cols;
			bad_nm_mod = mod->name;
		}
		if (structured_done || !(rule->has_sparsity || rule->has_pattern))
			continue;
		sl_module_plan plan;
		sl_recipe_resolve(r, mod, &plan);
		int units;
		const char *what;
		if (plan.sparsity > 0 && structured_units(m, mod, plan.pattern, &units, &what) &&
		    (int)lround(plan.sparsity * units) >= units) {
			issue(is, PATH(rule->has_sparsity ? "sparsity" : "pattern"),
			      "removing %g of %d %s leaves none (%s)", plan.sparsity, units, what, mod->name);
			structured_done = true;
		}
	}
	if (!matched && named)
		issue(is, PATH("layers"), "'%s' matches no module in layers %d-%d; the model has layers 0-%d",
		      rule->match[0] ? rule->match : "*", rule->layer_lo, rule->layer_hi, m->cfg.n_layers - 1);
	else if (!matched) {
		size_t k = strlen(rule->match);
		issue(is, PATH("match"), "'%s' matches no module%s", rule->match,
		      k > 7 && !strcmp(rule->match + k - 7, ".weight") ? " (module names have no .weight suffix)" : "");
	}
	if (bad_group)
		issue(is, PATH("params.group"), "%d does not divide rows of %lld (%s)", rule->group, (long long)bad_group,
		      bad_group_mod);
	if (bad_nm)
		issue(is, PATH("pattern"), "%s needs rows that %d divides; %s has rows of %lld", rule->pattern, gm,
		      bad_nm_mod, (long long)bad_nm);
#undef PATH
}

int sl_recipe_check(const sl_recipe *r, const sl_model *m, sl_recipe_issue *out, int max)
{
	issues is = {out, max, 0};
	if (r->version != SL_RECIPE_VERSION)
		issue(&is, "slimlab_recipe", "version %d is not %d, the one this slimlab reads", r->version,
		      SL_RECIPE_VERSION);
	if (r->calib.tokens < 0)
		issue(&is, "calibration.tokens", "%d is negative", r->calib.tokens);
	if (r->calib.ctx < 0)
		issue(&is, "calibration.ctx", "%d is negative", r->calib.ctx);
	if ((double)r->calib.seed > JSON_INT_MAX)
		issue(&is, "calibration.seed", "%llu is too large to write exactly in JSON (at most 2^53)",
		      (unsigned long long)r->calib.seed);
	if (r->kv_cache[0] && !in_list(r->kv_cache, kv_names, COUNT(kv_names))) {
		char list[256];
		join_list(list, sizeof list, kv_names, COUNT(kv_names));
		issue(&is, "kv_cache", "'%s' is not a KV-cache format (known: %s)", r->kv_cache, list);
	}
	check_rule(&is, &r->def, "default");
	char base[32];
	for (int i = 0; i < r->n_rules; i++) {
		snprintf(base, sizeof base, "rules[%d]", i);
		check_rule(&is, &r->rules[i], base);
	}
	module_list ml;
	if (!m || !list_modules(m, &ml))
		return is.n;
	const sl_format *kv = r->kv_cache[0] ? sl_format_find(r->kv_cache) : NULL;
	for (int il = 0; kv && il < m->cfg.n_layers; il++) {
		int n = m->layers[il].n_kv_heads * m->cfg.head_dim;
		if (!sl_format_fits(kv, n)) {
			issue(&is, "kv_cache", "%s cannot hold the key/value rows of %d values (block %d)", kv->name, n, il);
			break;
		}
	}
	sl_rule all = r->def;
	all.match[0] = 0;
	all.layer_lo = all.layer_hi = -1;
	check_against_model(&is, r, &all, "default", m, &ml);
	for (int i = 0; i < r->n_rules; i++) {
		snprintf(base, sizeof base, "rules[%d]", i);
		check_against_model(&is, r, &r->rules[i], base, m, &ml);
	}
	free(ml.mods);
	return is.n;
}

/* Which rule's format a module ends up with: its path ("rules[2].format",
 * "default.format"). */
static void format_source(const sl_recipe *r, const sl_module *mod, char *buf, size_t n)
{
	snprintf(buf, n, "default.format");
	for (int i = 0; i < r->n_rules; i++)
		if (r->rules[i].has_format && sl_rule_matches(&r->rules[i], mod))
			snprintf(buf, n, "rules[%d].format", i);
}

int sl_recipe_fallbacks(const sl_recipe *r, const sl_model *m, sl_recipe_issue *out, int max)
{
	module_list ml;
	if (!list_modules(m, &ml))
		return 0;
	/* One note per (rule, asked, row length): layers repeat the same story. */
	typedef struct {
		char path[64];
		const sl_format *asked, *used;
		int64_t cols;
		int count;
		const char *first;
	} note;
	note *notes = sl_calloc((size_t)(ml.n ? ml.n : 1), sizeof *notes);
	int nn = 0;
	for (int i = 0; notes && i < ml.n; i++) {
		sl_module_plan plan;
		sl_recipe_resolve(r, &ml.mods[i], &plan);
		int64_t cols = ml.mods[i].w->ne[0];
		if (!plan.format || sl_format_fits(plan.format, cols))
			continue;
		char path[64];
		format_source(r, &ml.mods[i], path, sizeof path);
		int k = 0;
		while (k < nn && !(notes[k].asked == plan.format && notes[k].cols == cols && !strcmp(notes[k].path, path)))
			k++;
		if (k == nn) {
			snprintf(notes[k].path, sizeof notes[k].path, "%s", path);
			notes[k].asked = plan.format;
			notes[k].used = sl_format_fallback(plan.format, cols);
			notes[k].cols = cols;
			notes[k].first = ml.mods[i].name;
			nn++;
		}
		notes[k].count++;
	}
	issues is = {out, max, 0};
	for (int k = 0; k < nn; k++) {
		char more[32] = "";
		if (notes[k].count > 1)
			snprintf(more, sizeof more, " and %d more", notes[k].count - 1);
		issue(&is, notes[k].path, "%s cannot hold rows of %lld (%s%s); %s used instead", notes[k].asked->name,
		      (long long)notes[k].cols, notes[k].first, more, notes[k].used->name);
	}
	free(notes);
	free(ml.mods);
	return is.n;
}

/* ---- size ------------------------------------------------------------------ */

void sl_recipe_estimate_size(const sl_recipe *r, const sl_model *m, sl_recipe_estimate *out)
{
	memset(out, 0, sizeof *out);
	out->base_bytes = (double)sl_model_bytes(m);
	out->bytes = out->base_bytes;
	out->params = (double)sl_model_n_params(m);
	module_list ml;
	if (list_modules(m, &ml)) {
		for (int i = 0; i < ml.n; i++) {
			const sl_module *mod = &ml.mods[i];
			sl_module_plan plan;
			sl_recipe_resolve(r, mod, &plan);
			int64_t cols = mod->w->ne[0], rows = sl_tensor_nrows(mod->w);
			double before = (double)mod->w->nbytes, after = before;
			if (plan.format) {
				const sl_format *f = sl_format_fallback(plan.format, cols);
				after = (double)sl_dtype_row_bytes(f->dtype, cols) * (double)rows;
			}
			/* Structured pruning shrinks tensors; other sparsity keeps them dense. */
			int units;
			const char *what;
			if (plan.sparsity > 0 && structured_units(m, mod, plan.pattern, &units, &what)) {
				double kept = 1.0 - lround(plan.sparsity * units) / (double)units;
				after *= kept;
				out->params -= (1.0 - kept) * (double)(cols * rows);
			}
			out->bytes += after - before;
		}
		free(ml.mods);
	}
	out->bpw = out->params > 0 ? 8.0 * out->bytes / out->params : 0;
}
