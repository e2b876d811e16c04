/* What the method entries share and may use: notes in a module's report
 * and a plan's value for a parameter. Nothing here looks at the registry,
 * so the entries depend on the registry's list no more than it on them. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "method.h"

double sl_plan_value(const sl_module_plan *p, const sl_param_spec *spec)
{
	for (int i = 0; i < p->n_params; i++)
		if (!strcmp(p->params[i].key, spec->key))
			return p->params[i].value;
	return spec->def;
}

void sl_method_note(sl_module_report *rep, const char *fmt, ...)
{
	size_t k = strlen(rep->note);
	if (k && k + 2 < sizeof rep->note) {
		memcpy(rep->note + k, "; ", 3);
		k += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rep->note + k, sizeof rep->note - k, fmt, ap);
	va_end(ap);
}
