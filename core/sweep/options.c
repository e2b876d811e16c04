/* A sweep's options as a user writes them: parsing a list of formats,
 * METHOD:FORMAT, PRUNE-S and low-rank NAME-V (NAME-V:FORMAT) into rules,
 * the default list, and the syntax in a sentence for help texts. The
 * registries name what is allowed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../methods/method.h"
#include "sweep.h"

/* What a pruning option starts with when it names no criterion: the
 * default one (the method registry's first pruning criterion). */
static const char generic_prune[] = "sparse";

/* "2:4" (a pattern) or a fraction ("50%", "0.5") of unstructured pruning. */
static bool parse_sparsity(const char *s, sl_rule *r)
{
	int n, m;
	char frac[32];
	if (sl_pattern_nm(s, &n, &m)) {
		snprintf(frac, sizeof frac, "%.17g", 1.0 - (double)n / m);
		return !sl_rule_set(r, "pattern", s, NULL) && !sl_rule_set(r, "sparsity", frac, NULL);
	}
	sl_rule probe = *r;
	if (sl_rule_set(&probe, "sparsity", s, NULL) || !(probe.sparsity > 0 && probe.sparsity < 1))
		return false;
	*r = probe;
	return !sl_rule_set(r, "pattern", sl_method_default(SL_METHOD_PATTERN)->name, NULL);
}

/* A pruning criterion's prefix of tok ("NAME-" in "NAME-2:4"): its
 * length, or 0 when tok starts with none. */
static size_t prune_prefix(const char *tok, const char **crit)
{
	size_t k = strlen(generic_prune);
	if (!strncmp(tok, generic_prune, k) && tok[k] == '-') {
		*crit = sl_method_default(SL_METHOD_PRUNE)->name;
		return k + 1;
	}
	for (int i = 0; i < sl_method_count(); i++) {
		const sl_method *m = sl_method_at(i);
		k = strlen(m->name);
		if (m->kind == SL_METHOD_PRUNE && !strncmp(tok, m->name, k) && tok[k] == '-') {
			*crit = m->name;
			return k + 1;
		}
	}
	return 0;
}

/* A low-rank method whose option takes a number ("NAME-0.6"): the method
 * tok starts with, and the length of "NAME-", or 0. */
static size_t lowrank_prefix(const char *tok, const sl_method **lr)
{
	for (int i = 0; i < sl_method_count(); i++) {
		const sl_method *m = sl_method_at(i);
		size_t k = strlen(m->name);
		if (m->option_key && !strncmp(tok, m->name, k) && tok[k] == '-') {
			*lr = m;
			return k + 1;
		}
	}
	return 0;
}

/* NAME-V[:FORMAT]: the method, its option's parameter V, and a format for
 * its factors. */
static sl_status parse_lowrank(const char *tok, const sl_method *lr, size_t k, sl_rule *r, sl_error *err)
{
	char value[32];
	const char *colon = strchr(tok, ':');
	size_t n = colon ? (size_t)(colon - tok) - k : strlen(tok + k);
	snprintf(value, sizeof value, "%.*s", (int)(n < sizeof value ? n : sizeof value - 1), tok + k);
	sl_error why = {0};
	if (!value[0])
		return sl_errorf(err, SL_ERR_ARG, "option '%s': write %s after '%.*s' (%s-0.6)", tok, lr->option_key, (int)k,
		                 tok, lr->name);
	if (sl_rule_set(r, "method", lr->name, &why) || sl_rule_set(r, lr->option_key, value, &why) ||
	    (colon && sl_rule_set(r, "format", colon + 1, &why)))
		return sl_errorf(err, SL_ERR_ARG, "option '%s': %s", tok, why.msg);
	if (colon && !sl_format_find(colon + 1))
		return sl_errorf(err, SL_ERR_ARG, "option '%s': '%s' is not a format for the factors", tok, colon + 1);
	return SL_OK;
}

static sl_status parse_option(const char *tok, sl_sweep_option *o, sl_error *err)
{
	sl_rule *r = &o->rule;
	sl_rule_init(r);
	snprintf(o->label, sizeof o->label, "%s", tok);
	const char *crit;
	size_t k = prune_prefix(tok, &crit);
	if (k) {
		if (!parse_sparsity(tok + k, r))
			return sl_errorf(err, SL_ERR_ARG,
			                 "option '%s': write a pattern (2:4) or a fraction (50%% or 0.5) after '%.*s'", tok,
			                 (int)k, tok);
		sl_rule_set(r, "prune", crit, NULL);
		return SL_OK;
	}
	const sl_method *lr;
	if ((k = lowrank_prefix(tok, &lr)))
		return parse_lowrank(tok, lr, k, r, err);
	char method[32] = "";
	const char *fmt = tok, *colon = strchr(tok, ':');
	if (colon) {
		snprintf(method, sizeof method, "%.*s", (int)(colon - tok), tok);
		fmt = colon + 1;
	} else {
		snprintf(method, sizeof method, "%s", sl_method_default(SL_METHOD_QUANT)->name);
	}
	sl_error why = {0};
	if (sl_rule_set(r, "method", method, &why) || sl_rule_set(r, "format", fmt, &why))
		return sl_errorf(err, SL_ERR_ARG, "option '%s': %s", tok, why.msg);
	if (!sl_format_find(fmt))
		return sl_errorf(err, SL_ERR_ARG, "option '%s': '%s' leaves the weights as they are; a sweep compares formats",
		                 tok, fmt);
	return SL_OK;
}

void sl_sweep_default_options(char *buf, size_t n)
{
	sl_format_names(sl_format_in_ladder, ",", buf, n);
}

void sl_sweep_options_help(char *buf, size_t n)
{
	char formats[256], methods[128], prunes[128], lowrank[256] = "";
	sl_format_names(sl_format_is_example, ", ", formats, sizeof formats);
	sl_method_names(SL_METHOD_QUANT, ", ", methods, sizeof methods);
	sl_method_names(SL_METHOD_PRUNE, ", ", prunes, sizeof prunes);
	for (int i = 0; i < sl_method_count(); i++) {
		const sl_method *m = sl_method_at(i);
		if (m->option_key)
			snprintf(lowrank + strlen(lowrank), sizeof lowrank - strlen(lowrank), "%s%s-%s", lowrank[0] ? ", " : "",
			         m->name, m->option_key);
	}
	snprintf(buf, n,
	         "a format (%s, ...: slimlab recipe formats), METHOD:FORMAT with METHOD one of %s, PRUNE-S with "
	         "PRUNE one of %s (or %s for the first) and S a pattern (2:4) or a fraction (50%%), or low rank: %s "
	         "(keep 0.6: 60%% of the parameters; blocks: how many share a basis), each with :FORMAT to store the "
	         "factors in FORMAT",
	         formats, methods, prunes, generic_prune, lowrank);
}

sl_status sl_sweep_parse_options(const char *spec, sl_sweep_option **opts, int *n, sl_error *err)
{
	*opts = NULL;
	*n = 0;
	char *copy = sl_strdup(spec);
	if (!copy)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	size_t cap = 1;
	for (const char *p = spec; *p; p++)
		cap += *p == ',';
	sl_sweep_option *o = calloc(cap, sizeof *o);
	sl_status st = o ? SL_OK : sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	int k = 0;
	for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); !st && tok; tok = strtok_r(NULL, ", ", &save)) {
		if (strlen(tok) >= sizeof o[k].label)
			st = sl_errorf(err, SL_ERR_ARG, "option '%.20s...' is too long", tok);
		else if (!(st = parse_option(tok, &o[k], err)))
			k++;
	}
	free(copy);
	if (!st && k == 0)
		st = sl_errorf(err, SL_ERR_ARG, "no options given");
	if (st) {
		free(o);
		return st;
	}
	*opts = o;
	*n = k;
	return SL_OK;
}

