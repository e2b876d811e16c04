/* Recipes: a rule's fields read from text (one reader for recipe files,
 * command-line flags and :rule), JSON in and out (the schema is
 * man/slimlab-recipe.5), rule matching and resolution, every problem a
 * recipe can have (alone and against a model), and what a recipe would
 * make of a model's size. Which formats, methods and parameters exist is
 * the registries' business (formats.h, methods/method.h). */
#include "recipe.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "methods/method.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
/* The largest integer a JSON number (a double) holds exactly. */
#define JSON_INT_MAX 9007199254740992.0
/* Layer ranges open at the top ("8-") run to here. */
#define LAYER_END 0x7fffffff

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
}

static double param_in(const sl_param_value *ps, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(ps[i].key, key))
			return ps[i].value;
	return NAN;
}

/* Sets key in ps[0..*n) (NaN removes it); false when there is no room. */
static bool param_put(sl_param_value *ps, int *n, const char *key, double value)
{
	int i = 0;
	while (i < *n && strcmp(ps[i].key, key))
		i++;
	if (isnan(value)) {
		if (i < *n) {
			memmove(&ps[i], &ps[i + 1], (size_t)(*n - i - 1) * sizeof *ps);
			(*n)--;
		}
		return true;
	}
	if (i == *n) {
		if (*n == SL_RULE_PARAMS)
			return false;
		snprintf(ps[i].key, sizeof ps[i].key, "%s", key);
		(*n)++;
	}
	ps[i].value = value;
	return true;
}

double sl_rule_param(const sl_rule *r, const char *key)
{
	return param_in(r->params, r->n_params, key);
}

bool sl_rule_param_set(sl_rule *r, const char *key, double value)
{
	return param_put(r->params, &r->n_params, key, value);
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

/* Keep N of every M ("2:4"); false for anything else. */
static bool parse_nm(const char *s, int *keep_n, int *group_m)
{
	return sl_pattern_nm(s, keep_n, group_m);
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
	for (int i = 0; i < rule->n_params; i++)
		param_put(plan->params, &plan->n_params, rule->params[i].key, rule->params[i].value);
}

/* Fields nothing set get their kinds' defaults (the method registry's:
 * rounding to nearest for a format, element-wise pruning by magnitude for
 * a sparsity), an N:M pattern the sparsity it implies; a group given with
 * a group-wise format picks that format's group. */
void sl_recipe_resolve(const sl_recipe *r, const sl_module *mod, sl_module_plan *plan)
{
	memset(plan, 0, sizeof *plan);
	plan->rule = -1;
	const char *format = "";
	apply_rule(&r->def, plan, &format);
	for (int i = 0; i < r->n_rules; i++)
		if (sl_rule_matches(&r->rules[i], mod)) {
			apply_rule(&r->rules[i], plan, &format);
			plan->rule = i;
		}
	plan->format = is_keep(format) ? NULL : sl_format_find(format);
	double group = param_in(plan->params, plan->n_params, "group");
	const sl_format *regrouped = group > 0 ? sl_format_with_group(plan->format, (int)group) : NULL;
	if (regrouped)
		plan->format = regrouped;
	if (plan->format && !plan->method[0])
		snprintf(plan->method, sizeof plan->method, "%s", sl_method_default(SL_METHOD_QUANT)->name);
	int n, m;
	if (!(plan->sparsity > 0) && parse_nm(plan->pattern, &n, &m))
		plan->sparsity = 1.0 - (double)n / m;
	if (plan->sparsity > 0) {
		if (!plan->pattern[0])
			snprintf(plan->pattern, sizeof plan->pattern, "%s", sl_method_default(SL_METHOD_PATTERN)->name);
		if (!plan->prune[0])
			snprintf(plan->prune, sizeof plan->prune, "%s", sl_method_default(SL_METHOD_PRUNE)->name);
	}
}

bool sl_plan_equal(const sl_module_plan *a, const sl_module_plan *b)
{
	if (a->format != b->format || strcmp(a->method, b->method) || a->sparsity != b->sparsity ||
	    strcmp(a->pattern, b->pattern) || strcmp(a->prune, b->prune) || a->n_params != b->n_params)
		return false;
	for (int i = 0; i < a->n_params; i++)
		if (strcmp(a->params[i].key, b->params[i].key) || a->params[i].value != b->params[i].value)
			return false;
	return true;
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
	char path[64], list[512];
	int seen[64] = {0};
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

/* ---- a rule's fields, from text ----------------------------------------------- */

/* A rule's keys in the order a recipe writes them (params holds the
 * methods' and formats' parameters, which text names by their own keys). */
static const char *const rule_keys[] = {"match", "layers", "format", "method", "sparsity",
                                        "pattern", "prune", "params", "note"};
#define N_RULE_KEYS COUNT(rule_keys)

static bool set_str(char *dst, size_t size, const char *v, char *msg, size_t n)
{
	if (strlen(v) >= size) {
		snprintf(msg, n, "'%.40s...' is longer than %zu characters", v, size - 1);
		return false;
	}
	snprintf(dst, size, "%s", v);
	return true;
}

/* "5", "0-3", "8-" (8 to the last), or "all". */
static bool set_layers(sl_rule *rule, const char *s, char *msg, size_t n)
{
	if (!strcmp(s, "all")) {
		rule->layer_lo = rule->layer_hi = -1;
		return true;
	}
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
		snprintf(msg, n, "'%.40s' is not a layer range (\"5\", \"0-3\", \"8-\")", s);
		return false;
	}
	rule->layer_lo = (int)lo;
	rule->layer_hi = (int)hi;
	return true;
}

/* A number, or with percent a percentage too ("50%" is 0.5). */
static bool read_number(const char *v, bool percent, double *out)
{
	char *end;
	double d = strtod(v, &end);
	if (end == v)
		return false;
	if (percent && *end == '%') {
		d /= 100;
		end++;
	}
	if (*end)
		return false;
	*out = d;
	return true;
}

static bool set_param(sl_rule *rule, const sl_param_spec *spec, const char *v, char *msg, size_t n)
{
	double d;
	if (spec->boolean) {
		if (!strcmp(v, "true") || !strcmp(v, "1"))
			d = 1;
		else if (!strcmp(v, "false") || !strcmp(v, "0"))
			d = 0;
		else {
			snprintf(msg, n, "expected true or false, not '%.40s'", v);
			return false;
		}
	} else if (!read_number(v, false, &d)) {
		snprintf(msg, n, "expected a number, not '%.40s'", v);
		return false;
	}
	if (spec->integer && !spec->boolean && (d != floor(d) || d < spec->lo || d > spec->hi)) {
		snprintf(msg, n, "%g is not a whole number from %.0f to %.0f", d, spec->lo, spec->hi);
		return false;
	}
	if (!sl_rule_param_set(rule, spec->key, d)) {
		snprintf(msg, n, "a rule sets at most %d parameters", SL_RULE_PARAMS);
		return false;
	}
	return true;
}

/* A string field that a value sets and an empty value clears. */
static bool set_choice(char *dst, size_t size, bool *has, const char *v, char *msg, size_t n)
{
	if (!*v) {
		*has = false;
		dst[0] = 0;
		return true;
	}
	return (*has = set_str(dst, size, v, msg, n));
}

/* Reads one field of a rule from text; the syntax only (a number where
 * one is due, a layer range), check_field judges the value. */
static bool field_set(sl_rule *rule, const char *key, const char *v, char *msg, size_t n)
{
	if (!strcmp(key, "match"))
		return set_str(rule->match, sizeof rule->match, v, msg, n);
	if (!strcmp(key, "note"))
		return set_str(rule->note, sizeof rule->note, v, msg, n);
	if (!strcmp(key, "layers"))
		return set_layers(rule, v, msg, n);
	if (!strcmp(key, "format"))
		return set_choice(rule->format, sizeof rule->format, &rule->has_format, v, msg, n);
	if (!strcmp(key, "method"))
		return set_choice(rule->method, sizeof rule->method, &rule->has_method, v, msg, n);
	if (!strcmp(key, "pattern"))
		return set_choice(rule->pattern, sizeof rule->pattern, &rule->has_pattern, v, msg, n);
	if (!strcmp(key, "prune"))
		return set_choice(rule->prune, sizeof rule->prune, &rule->has_prune, v, msg, n);
	if (!strcmp(key, "sparsity")) {
		if (!*v) {
			rule->has_sparsity = false;
			rule->sparsity = 0;
			return true;
		}
		if (!read_number(v, true, &rule->sparsity)) {
			snprintf(msg, n, "expected a fraction (0.5) or a percentage (50%%), not '%.40s'", v);
			return false;
		}
		rule->has_sparsity = true;
		return true;
	}
	const sl_param_spec *spec = sl_param_find(key);
	if (spec) {
		if (!*v)
			return sl_rule_param_set(rule, key, NAN);
		return set_param(rule, spec, v, msg, n);
	}
	char keys[512], params[512];
	join_list(keys, sizeof keys, rule_keys, N_RULE_KEYS - 2);
	params[0] = 0;
	for (int i = 0; i < sl_param_count(); i++)
		snprintf(params + strlen(params), sizeof params - strlen(params), ", %s", sl_param_at(i)->key);
	snprintf(msg, n, "unknown key '%.40s' (known: %s%s, note)", key, keys, params);
	return false;
}

/* ---- a rule's fields, judged ----------------------------------------------------- */

/* What is wrong with the value a rule gives key, if anything. */
static bool field_problem(const sl_rule *rule, const char *key, char *msg, size_t n)
{
	char list[256];
	if (!strcmp(key, "format")) {
		if (rule->has_format && !sl_format_find(rule->format) && !is_keep(rule->format)) {
			snprintf(msg, n, "unknown format '%s' (slimlab-recipe(5) lists them; \"keep\" leaves the weights)",
			         rule->format);
			return true;
		}
		return false;
	}
	static const struct {
		const char *key, *what;
		sl_method_kind kind;
	} choices[] = {{"method", "method", SL_METHOD_QUANT},
	               {"prune", "pruning criterion", SL_METHOD_PRUNE},
	               {"pattern", "pattern", SL_METHOD_PATTERN}};
	for (int i = 0; i < COUNT(choices); i++) {
		if (strcmp(key, choices[i].key))
			continue;
		const char *v = i == 0 ? rule->method : i == 1 ? rule->prune : rule->pattern;
		bool has = i == 0 ? rule->has_method : i == 1 ? rule->has_prune : rule->has_pattern;
		if (!has || sl_method_find(choices[i].kind, v))
			return false;
		sl_method_names(choices[i].kind, ", ", list, sizeof list);
		snprintf(msg, n, "unknown %s '%s' (known: %s)", choices[i].what, v, list);
		return true;
	}
	if (!strcmp(key, "sparsity")) {
		if (!rule->has_sparsity)
			return false;
		int keep_n, group_m;
		bool nm = rule->has_pattern && parse_nm(rule->pattern, &keep_n, &group_m);
		if (!(rule->sparsity >= 0 && rule->sparsity <= 1))
			snprintf(msg, n, "%g is outside 0..1", rule->sparsity);
		else if (rule->sparsity == 1)
			snprintf(msg, n, "1 would remove every weight");
		else if (nm && fabs(rule->sparsity - (1.0 - (double)keep_n / group_m)) > 1e-9)
			snprintf(msg, n, "%g disagrees with pattern %s, which removes %g", rule->sparsity, rule->pattern,
			         1.0 - (double)keep_n / group_m);
		else
			return false;
		return true;
	}
	if (!strcmp(key, "layers")) {
		if (has_layers(rule) && (rule->layer_lo < 0 || rule->layer_hi < rule->layer_lo)) {
			snprintf(msg, n, "%d-%d is not a layer range", rule->layer_lo, rule->layer_hi);
			return true;
		}
		return false;
	}
	const sl_param_spec *spec = sl_param_find(key);
	double v = sl_rule_param(rule, key);
	if (!spec || isnan(v))
		return false;
	if ((spec->open_lo ? v > spec->lo : v >= spec->lo) && v <= spec->hi)
		return false;
	if (spec->boolean)
		snprintf(msg, n, "%g is not true or false", v);
	else if (spec->open_lo)
		snprintf(msg, n, "%g is outside (%g, %g] (%s)", v, spec->lo, spec->hi, spec->what);
	else
		snprintf(msg, n, "%g is outside %g..%g (%s)", v, spec->lo, spec->hi, spec->what);
	return true;
}

sl_status sl_rule_set(sl_rule *r, const char *key, const char *value, sl_error *err)
{
	sl_rule copy = *r;
	char msg[512];
	if (!field_set(&copy, key, value, msg, sizeof msg) || field_problem(&copy, key, msg, sizeof msg))
		return sl_errorf(err, SL_ERR_ARG, "%s", msg);
	*r = copy;
	return SL_OK;
}

int sl_rule_key_count(void)
{
	return N_RULE_KEYS - 1 + sl_param_count();
}

/* The rule's keys, params replaced by each parameter's own key. */
const char *sl_rule_key_at(int i)
{
	if (i < 0)
		return NULL;
	if (i < N_RULE_KEYS - 2)
		return rule_keys[i];
	if (i == sl_rule_key_count() - 1)
		return "note";
	const sl_param_spec *s = sl_param_at(i - (N_RULE_KEYS - 2));
	return s ? s->key : NULL;
}

void sl_rule_words(const sl_rule *r, char *buf, size_t n)
{
	size_t k = 0;
	if (n)
		buf[0] = 0;
#define WORD(...) k += (size_t)snprintf(buf + k, k < n ? n - k : 0, __VA_ARGS__)
	if (r->has_format)
		WORD("%sformat=%s", k ? " " : "", r->format);
	if (r->has_method)
		WORD("%smethod=%s", k ? " " : "", r->method);
	if (r->has_sparsity)
		WORD("%ssparsity=%.6g", k ? " " : "", r->sparsity);
	if (r->has_pattern)
		WORD("%spattern=%s", k ? " " : "", r->pattern);
	if (r->has_prune)
		WORD("%sprune=%s", k ? " " : "", r->prune);
	for (int i = 0; i < r->n_params; i++) {
		const sl_param_spec *spec = sl_param_find(r->params[i].key);
		if (spec && spec->boolean)
			WORD("%s%s=%s", k ? " " : "", r->params[i].key, r->params[i].value ? "true" : "false");
		else
			WORD("%s%s=%.6g", k ? " " : "", r->params[i].key, r->params[i].value);
	}
#undef WORD
}

/* ---- JSON in, through the fields' reader ------------------------------------------- */

/* A JSON value as the text field_set reads; false (with the problem
 * issued) when its type is not the one the key takes. */
static bool value_text(issues *is, const cJSON *v, const char *path, bool string, bool number, bool boolean,
                       char *buf, size_t n)
{
	if (string && cJSON_IsString(v)) {
		if (strlen(v->valuestring) >= n) {
			issue(is, path, "'%.40s...' is longer than %zu characters", v->valuestring, n - 1);
			return false;
		}
		snprintf(buf, n, "%s", v->valuestring);
		return true;
	}
	if (number && cJSON_IsNumber(v)) {
		snprintf(buf, n, "%.17g", v->valuedouble);
		return true;
	}
	if (boolean && cJSON_IsBool(v)) {
		snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
		return true;
	}
	issue(is, path, "expected %s, found %s", string ? "a string" : boolean ? "true or false" : "a number",
	      type_name(v));
	return false;
}

static void parse_params(issues *is, const cJSON *obj, const char *base, sl_rule *rule)
{
	const char *keys[64];
	int n = 0;
	for (int i = 0; i < sl_param_count() && n < 64; i++)
		keys[n++] = sl_param_at(i)->key;
	if (!cJSON_IsObject(obj)) {
		issue(is, base, "expected an object, found %s", type_name(obj));
		return;
	}
	check_keys(is, obj, base, keys, n);
	char path[64], text[64], msg[256];
	for (const cJSON *c = obj->child; c; c = c->next) {
		const sl_param_spec *spec = sl_param_find(c->string);
		if (!spec)
			continue;
		key_path(path, sizeof path, base, c->string);
		if (value_text(is, c, path, false, !spec->boolean, spec->boolean, text, sizeof text) &&
		    !field_set(rule, spec->key, text, msg, sizeof msg))
			issue(is, path, "%s", msg);
	}
}

static void parse_rule(issues *is, const cJSON *obj, const char *base, sl_rule *rule, bool is_default)
{
	sl_rule_init(rule);
	if (!cJSON_IsObject(obj)) {
		issue(is, base, "expected an object, found %s", type_name(obj));
		return;
	}
	/* The default rule holds for every module: it selects nothing. */
	int skip = is_default ? 2 : 0;
	check_keys(is, obj, base, rule_keys + skip, N_RULE_KEYS - skip);
	char path[64], text[256], msg[256];
	for (const cJSON *c = obj->child; c; c = c->next) {
		const char *k = c->string;
		bool known = false;
		for (int i = skip; i < N_RULE_KEYS; i++)
			known |= !strcmp(k, rule_keys[i]);
		if (!known)
			continue;
		key_path(path, sizeof path, base, k);
		if (!strcmp(k, "params")) {
			parse_params(is, c, path, rule);
			continue;
		}
		bool number = !strcmp(k, "sparsity"), layers = !strcmp(k, "layers");
		size_t size = !strcmp(k, "format") ? sizeof rule->format
		              : !strcmp(k, "match") ? sizeof rule->match
		              : !strcmp(k, "note") ? sizeof rule->note
		              : number || layers ? sizeof text : sizeof rule->method;
		if (value_text(is, c, path, !number, number || layers, false, text, size) &&
		    !field_set(rule, k, text, msg, sizeof msg))
			issue(is, path, "%s", msg);
	}
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

/* The JSON of a recipe, or NULL with err saying where the syntax breaks. */
static cJSON *parse_json(const char *json, size_t len, sl_error *err)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	int line, col;
	if (!root) {
		size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
		line_col(json, off, &line, &col);
		sl_errorf(err, SL_ERR_FORMAT, "line %d, column %d: not valid JSON", line, col);
		return NULL;
	}
	for (const char *p = end; p < json + len; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0') {
			line_col(json, (size_t)(p - json), &line, &col);
			cJSON_Delete(root);
			sl_errorf(err, SL_ERR_FORMAT, "line %d, column %d: text after the recipe's closing brace", line, col);
			return NULL;
		}
	return root;
}

int sl_recipe_parse_all(const char *json, size_t len, sl_recipe **out, sl_recipe_issue *found, int max)
{
	*out = NULL;
	issues is = {found, max, 0};
	sl_error err = {0};
	cJSON *root = parse_json(json, len, &err);
	if (!root) {
		issue(&is, "", "%s", err.msg);
		return is.n;
	}
	sl_recipe *r = sl_recipe_new();
	if (!r)
		issue(&is, "", "out of memory");
	else
		parse_recipe(&is, root, r);
	cJSON_Delete(root);
	*out = r;
	return is.n;
}

sl_status sl_recipe_parse(const char *json, size_t len, sl_recipe **out, sl_error *err)
{
	sl_recipe_issue found[8];
	sl_recipe *r;
	int n = sl_recipe_parse_all(json, len, &r, found, COUNT(found));
	*out = NULL;
	if (!n) {
		*out = r;
		return SL_OK;
	}
	sl_recipe_free(r);
	if (!r && n == 1 && !found[0].path[0])
		return sl_errorf(err, strstr(found[0].msg, "memory") ? SL_ERR_NOMEM : SL_ERR_FORMAT, "%s", found[0].msg);
	sl_errorf(err, SL_ERR_FORMAT, "%s: %s", found[0].path[0] ? found[0].path : "recipe", found[0].msg);
	for (int i = 1; i < n && i < COUNT(found) && err; i++)
		snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg), "\n%s: %s", found[i].path,
		         found[i].msg);
	if (n > COUNT(found) && err)
		snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg), "\n(and %d more)",
		         n - COUNT(found));
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
	for (int i = 0; i < rule->n_params; i++) {
		const sl_param_spec *spec = sl_param_find(rule->params[i].key);
		if (spec && spec->boolean)
			cJSON_AddBoolToObject(p, rule->params[i].key, rule->params[i].value != 0);
		else
			cJSON_AddNumberToObject(p, rule->params[i].key, rule->params[i].value);
	}
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
	char path[64], msg[512];
	static const char *const fields[] = {"format", "method", "prune", "pattern", "sparsity"};
	for (int i = 0; i < COUNT(fields); i++)
		if (field_problem(rule, fields[i], msg, sizeof msg))
			issue(is, (key_path(path, sizeof path, base, fields[i]), path), "%s", msg);
	for (int i = 0; i < rule->n_params; i++) {
		char key[32];
		snprintf(key, sizeof key, "params.%s", rule->params[i].key);
		key_path(path, sizeof path, base, key);
		if (field_problem(rule, rule->params[i].key, msg, sizeof msg))
			issue(is, path, "%s", msg);
	}
	/* A group the rule's own group-wise format does not come in. */
	const sl_format *f = rule->has_format ? sl_format_find(rule->format) : NULL;
	double group = sl_rule_param(rule, "group");
	char sizes[64];
	sl_format_groups(f, sizes, sizeof sizes);
	if (group > 0 && f && sizes[0] && !sl_format_with_group(f, (int)group))
		issue(is, (key_path(path, sizeof path, base, "params.group"), path), "%s takes groups of %s, not %.0f",
		      f->name, sizes, group);
	if (field_problem(rule, "layers", msg, sizeof msg))
		issue(is, (key_path(path, sizeof path, base, "layers"), path), "%s", msg);
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
	const sl_method *pat = sl_method_find(SL_METHOD_PATTERN, pattern);
	return pat && pat->units && pat->units(m, mod, units, what);
}

/* Problems of rule i (path base) that only m shows. */
static void check_against_model(issues *is, const sl_recipe *r, const sl_rule *rule, const char *base,
                                const sl_model *m, const module_list *ml)
{
	char path[64];
#define PATH(key) (key_path(path, sizeof path, base, key), path)
	int matched = 0, named = 0;
	double group = sl_rule_param(rule, "group");
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
		if (group > 0 && cols % (int64_t)group && !bad_group) {
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
		issue(is, PATH("params.group"), "%.0f does not divide rows of %lld (%s)", group, (long long)bad_group,
		      bad_group_mod);
	if (bad_nm)
		issue(is, PATH("pattern"), "%s needs rows that %d divides; %s has rows of %lld", rule->pattern, gm,
		      bad_nm_mod, (long long)bad_nm);
#undef PATH
}

/* Every module's plan and how low rank falls on them (sl_lowrank_layout);
 * false when out of memory. */
static bool layout_of(const sl_recipe *r, const module_list *ml, sl_module_plan **plans, sl_lowrank_plan **lay)
{
	size_t n = (size_t)(ml->n ? ml->n : 1);
	*plans = sl_calloc(n, sizeof **plans);
	*lay = sl_calloc(n, sizeof **lay);
	if (!*plans || !*lay) {
		free(*plans);
		free(*lay);
		return false;
	}
	for (int i = 0; i < ml->n; i++)
		sl_recipe_resolve(r, &ml->mods[i], &(*plans)[i]);
	sl_lowrank_layout(ml->mods, *plans, ml->n, *lay);
	return true;
}

/* The path of the rule that gave mod its key ("rules[2].params.keep"): the
 * last rule matching mod that sets it, else the default's. */
static void source_of(const sl_recipe *r, const sl_module *mod, const char *key, char *buf, size_t n)
{
	char k[32];
	snprintf(k, sizeof k, "%s%s", strcmp(key, "method") ? "params." : "", key);
	key_path(buf, n, "default", k);
	for (int i = 0; i < r->n_rules; i++) {
		const sl_rule *rule = &r->rules[i];
		bool sets = strcmp(key, "method") ? !isnan(sl_rule_param(rule, key)) : rule->has_method;
		if (sets && sl_rule_matches(rule, mod)) {
			char base[32];
			snprintf(base, sizeof base, "rules[%d]", i);
			key_path(buf, n, base, k);
		}
	}
}

/* Low rank against the model: a rank outside 1..min(rows, cols) of the
 * rows sharing a basis, a group whose modules differ in shape, low rank
 * and pruning in one module; each problem once per path. */
static void check_lowrank(issues *is, const sl_recipe *r, const module_list *ml)
{
	sl_module_plan *plans;
	sl_lowrank_plan *lay;
	if (!layout_of(r, ml, &plans, &lay)) {
		issue(is, "", "out of memory");
		return;
	}
	char seen[16][64], path[64];
	int n_seen = 0;
	for (int i = 0; i < ml->n; i++) {
		const sl_module *mod = &ml->mods[i];
		const sl_lowrank_plan *l = &lay[i];
		if (l->lead < 0)
			continue;
		int64_t rows = mod->w->ne[1] * l->size, cols = mod->w->ne[0], most = rows < cols ? rows : cols;
		bool by_rank = sl_plan_value(&plans[i], &sl_lowrank_params[SL_LOWRANK_RANK]) > 0;
		char msg[256] = "";
		if (l->mismatch) {
			source_of(r, mod, "method", path, sizeof path);
			const sl_module *lead = &ml->mods[l->lead];
			snprintf(msg, sizeof msg, "blocks %d-%d cannot share one basis: %s is %lld x %lld, %s %lld x %lld",
			         l->first, l->last, lead->name, (long long)lead->w->ne[1], (long long)lead->w->ne[0], mod->name,
			         (long long)mod->w->ne[1], (long long)cols);
		} else if (plans[i].sparsity > 0) {
			source_of(r, mod, "method", path, sizeof path);
			snprintf(msg, sizeof msg, "%s (low rank) and pruning do not combine in one module (%s)",
			         plans[i].method, mod->name);
		} else if (l->rank < 1 || l->rank > most) {
			source_of(r, mod, by_rank ? "rank" : "keep", path, sizeof path);
			if (by_rank)
				snprintf(msg, sizeof msg, "rank %d is above %lld, the smaller side of %s (%lld x %lld%s)", l->rank,
				         (long long)most, mod->name, (long long)rows, (long long)cols,
				         l->size > 1 ? ", its group's rows stacked" : "");
			else
				snprintf(msg, sizeof msg, "keep %g leaves %s (%lld x %lld) rank %d; raise it or give a rank",
				         sl_plan_value(&plans[i], &sl_lowrank_params[SL_LOWRANK_KEEP]), mod->name, (long long)rows,
				         (long long)cols, l->rank);
		}
		if (!msg[0])
			continue;
		int k = 0;
		while (k < n_seen && strcmp(seen[k], path))
			k++;
		if (k < n_seen)
			continue;
		if (n_seen < 16)
			snprintf(seen[n_seen++], sizeof seen[0], "%s", path);
		issue(is, path, "%s", msg);
	}
	free(plans);
	free(lay);
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
	const sl_format *kvf = r->kv_cache[0] ? sl_format_find(r->kv_cache) : NULL;
	if (r->kv_cache[0] && !(kvf && kvf->kv)) {
		char list[256];
		sl_format_names(sl_format_is_kv, ", ", list, sizeof list);
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
	check_lowrank(&is, r, &ml);
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
	sl_module_plan *plans;
	sl_lowrank_plan *lay;
	if (list_modules(m, &ml) && layout_of(r, &ml, &plans, &lay)) {
		for (int i = 0; i < ml.n; i++) {
			const sl_module *mod = &ml.mods[i];
			const sl_module_plan plan = plans[i];
			int64_t cols = mod->w->ne[0], rows = sl_tensor_nrows(mod->w);
			double before = (double)sl_tensor_bytes(mod->w), after = before;
			if (lay[i].lead >= 0) {
				/* Two factors; a shared basis counts once over its group. */
				int rank = lay[i].rank, keep = sl_dtype_keep_float(mod->w->type);
				const sl_format *f = plan.format;
				int ta = f ? sl_format_fallback(f, rank)->dtype : keep, tb = f ? sl_format_fallback(f, cols)->dtype : keep;
				after = (double)sl_dtype_row_bytes(ta, rank) * (double)rows +
				        (double)sl_dtype_row_bytes(tb, cols) * rank / lay[i].size;
			} else if (plan.format) {
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
		free(plans);
		free(lay);
	}
	free(ml.mods);
	out->bpw = out->params > 0 ? 8.0 * out->bytes / out->params : 0;
}
