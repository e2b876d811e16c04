/* The method registry: every compression method in one list, looked up by
 * the rule field that names it, and what follows from a plan's methods
 * (what it needs of calibration, whether it prunes or removes structure,
 * which modules share a low-rank basis).
 * Each entry lives in its own file beside this one. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "method.h"

extern const sl_method sl_method_rtn, sl_method_gptq, sl_method_awq, sl_method_smoothquant;
extern const sl_method sl_method_svd, sl_method_asvd, sl_method_svdllm, sl_method_share;
extern const sl_method sl_method_magnitude, sl_method_wanda, sl_method_sparsegpt;
extern const sl_method sl_method_unstructured, sl_method_nm, sl_method_heads, sl_method_channels, sl_method_blocks;

/* In menu order; the first of each kind that needs no calibration is the
 * kind's default. */
static const sl_method *const methods[] = {
	&sl_method_rtn,       &sl_method_gptq,  &sl_method_awq,       &sl_method_smoothquant,
	&sl_method_svd,       &sl_method_asvd,  &sl_method_svdllm,    &sl_method_share,
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

const sl_method *sl_method_fallback(const sl_method *m)
{
	for (int i = 0; m->factor && i < N_METHODS; i++)
		if (methods[i]->factor && !methods[i]->needs)
			return methods[i];
	return sl_method_default(m->kind);
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

const sl_method *sl_plan_method(const sl_module_plan *p)
{
	const sl_method *m = sl_method_find(SL_METHOD_QUANT, p->method);
	return m && (p->format || m->factor) ? m : NULL;
}

const sl_method *sl_plan_factors(const sl_module_plan *p)
{
	const sl_method *m = sl_plan_method(p);
	return m && m->factor ? m : NULL;
}

unsigned sl_plan_needs(const sl_module_plan *p)
{
	unsigned needs = 0;
	const sl_method *m;
	if ((m = sl_plan_method(p)))
		needs |= m->needs;
	if (sl_plan_prunes(p) && (m = sl_method_find(SL_METHOD_PRUNE, p->prune)))
		needs |= m->needs;
	if (sl_plan_structured(p) && (m = sl_method_find(SL_METHOD_PATTERN, p->pattern)))
		needs |= m->needs;
	return needs;
}

/* --- low rank: which modules share a basis ------------------------------------ */

static bool same_params(const sl_module_plan *a, const sl_module_plan *b)
{
	if (a->n_params != b->n_params)
		return false;
	for (int i = 0; i < a->n_params; i++) {
		bool found = false;
		for (int k = 0; k < b->n_params && !found; k++)
			found = !strcmp(a->params[i].key, b->params[k].key) && a->params[i].value == b->params[k].value;
		if (!found)
			return false;
	}
	return true;
}

/* Whether module j may join the group that mods[lead] heads and whose
 * last block is last. */
static bool joins(const sl_module *mods, const sl_module_plan *plans, int lead, int last, int j)
{
	const sl_module_plan *a = &plans[lead], *b = &plans[j];
	if (mods[j].kind != mods[lead].kind || mods[j].layer != last + 1 || sl_plan_factors(b) != sl_plan_factors(a) ||
	    a->format != b->format || !same_params(a, b))
		return false;
	int k = (int)sl_plan_value(a, &sl_lowrank_params[SL_LOWRANK_BLOCKS]);
	if (k > 0)
		return mods[j].layer / k == mods[lead].layer / k;
	return a->rule == b->rule;
}

void sl_lowrank_layout(const sl_module *mods, const sl_module_plan *plans, int n, sl_lowrank_plan *out)
{
	for (int i = 0; i < n; i++)
		out[i] = (sl_lowrank_plan){0, -1, mods[i].layer, mods[i].layer, 0, false};
	for (int i = 0; i < n; i++) {
		const sl_method *m = sl_plan_factors(&plans[i]);
		if (!m || out[i].lead >= 0)
			continue;
		out[i].lead = i;
		out[i].size = 1;
		int64_t rows = mods[i].w->ne[1], cols = mods[i].w->ne[0];
		int last = mods[i].layer;
		for (int j = i + 1; m->shares && mods[i].layer >= 0 && j < n; j++) {
			if (out[j].lead >= 0 || !joins(mods, plans, i, last, j))
				continue;
			out[j].lead = i;
			out[j].mismatch = mods[j].w->ne[0] != cols || mods[j].w->ne[1] != mods[i].w->ne[1];
			out[i].size++;
			last = mods[j].layer;
		}
		int rank = sl_lowrank_rank(&plans[i], rows * out[i].size, cols);
		for (int j = i; j < n; j++)
			if (out[j].lead == i) {
				out[j].rank = rank;
				out[j].first = mods[i].layer;
				out[j].last = last;
				out[j].size = out[i].size;
			}
	}
}
