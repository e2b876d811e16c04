/* The method registry: every compression method in one list, looked up by
 * the rule field that names it, and what follows from a plan's methods
 * (what it needs of calibration, whether it prunes or removes structure).
 * Each entry lives in its own file beside this one. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "method.h"

extern const sl_method sl_method_rtn, sl_method_gptq, sl_method_awq, sl_method_smoothquant;
extern const sl_method sl_method_magnitude, sl_method_wanda, sl_method_sparsegpt;
extern const sl_method sl_method_unstructured, sl_method_nm, sl_method_heads, sl_method_channels, sl_method_blocks;

/* In menu order; the first of each kind that needs no calibration is the
 * kind's default. */
static const sl_method *const methods[] = {
	&sl_method_rtn,       &sl_method_gptq,  &sl_method_awq,       &sl_method_smoothquant,
	&sl_method_magnitude, &sl_method_wanda, &sl_method_sparsegpt, &sl_method_unstructured,
	&sl_method_nm,        &sl_method_heads, &sl_method_channels,  &sl_method_blocks,
};

#define N_METHODS ((int)(sizeof methods / sizeof methods[0]))

int sl_method_count(void)
{
	return N_METHODS;
}

const sl_method *sl_method_at(int i)
{
	return i >= 0 && i < N_METHODS ? methods[i] : NULL;
}

const sl_method *sl_method_find(sl_method_kind kind, const char *name)
{
	int n, m;
	for (int i = 0; name && i < N_METHODS; i++)
		if (methods[i]->kind == kind &&
		    (methods[i]->match ? methods[i]->match(name, &n, &m) : !strcmp(methods[i]->name, name)))
			return methods[i];
	return NULL;
}

const sl_method *sl_method_default(sl_method_kind kind)
{
	for (int i = 0; i < N_METHODS; i++)
		if (methods[i]->kind == kind && !methods[i]->needs)
			return methods[i];
	return NULL;
}

const char *sl_method_kind_key(sl_method_kind kind)
{
	static const char *const keys[SL_METHOD_KINDS] = {"method", "prune", "pattern"};
	return kind >= 0 && kind < SL_METHOD_KINDS ? keys[kind] : "";
}

void sl_method_names(sl_method_kind kind, const char *sep, char *buf, size_t n)
{
	size_t k = 0;
	if (n)
		buf[0] = 0;
	for (int i = 0; i < N_METHODS && k < n; i++)
		if (methods[i]->kind == kind)
			k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? sep : "", methods[i]->name);
}

/* --- parameters ----------------------------------------------------------- */

/* Every method's parameters, then the formats', each key once. */
static const sl_param_spec *param_list(int i)
{
	int k = 0;
	for (int m = 0; m < N_METHODS; m++)
		for (int p = 0; p < methods[m]->n_params; p++) {
			const sl_param_spec *s = &methods[m]->params[p];
			bool seen = false;
			for (int q = 0; q < m && !seen; q++)
				for (int r = 0; r < methods[q]->n_params && !seen; r++)
					seen = !strcmp(methods[q]->params[r].key, s->key);
			if (!seen && k++ == i)
				return s;
		}
	for (int f = 0; f < sl_format_param_count(); f++)
		if (k++ == i)
			return sl_format_param_at(f);
	return NULL;
}

int sl_param_count(void)
{
	int n = 0;
	while (param_list(n))
		n++;
	return n;
}

const sl_param_spec *sl_param_at(int i)
{
	return i >= 0 ? param_list(i) : NULL;
}

const sl_param_spec *sl_param_find(const char *key)
{
	for (int i = 0;; i++) {
		const sl_param_spec *s = param_list(i);
		if (!s || !strcmp(s->key, key))
			return s;
	}
}

/* --- plans ------------------------------------------------------------------ */

bool sl_plan_structured(const sl_module_plan *p)
{
	const sl_method *pat = sl_method_find(SL_METHOD_PATTERN, p->pattern);
	return p->sparsity > 0 && pat && pat->shrink;
}

bool sl_plan_prunes(const sl_module_plan *p)
{
	return p->sparsity > 0 && !sl_plan_structured(p);
}

unsigned sl_plan_needs(const sl_module_plan *p)
{
	unsigned needs = 0;
	const sl_method *m;
	if (p->format && (m = sl_method_find(SL_METHOD_QUANT, p->method)))
		needs |= m->needs;
	if (sl_plan_prunes(p) && (m = sl_method_find(SL_METHOD_PRUNE, p->prune)))
		needs |= m->needs;
	if (sl_plan_structured(p) && (m = sl_method_find(SL_METHOD_PATTERN, p->pattern)))
		needs |= m->needs;
	return needs;
}

