/* What the subcommands that compress share (apply and eval): the recipe
 * options (a recipe file, or one uniform rule standing in for it),
 * compressing with a progress bar, and the reports of what compression
 * cost and saved and of an evaluation's figures, as text and as JSON. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/methods/method.h"
#include "core/eval.h"
#include "core/fileio.h"
#include "core/units.h"

void cli_recipe_help(FILE *out)
{
	char formats[256], methods[128], patterns[128], prunes[128];
	sl_format_names(sl_format_is_example, ", ", formats, sizeof formats);
	sl_method_names(SL_METHOD_QUANT, ", ", methods, sizeof methods);
	sl_method_names(SL_METHOD_PATTERN, ", ", patterns, sizeof patterns);
	sl_method_names(SL_METHOD_PRUNE, ", ", prunes, sizeof prunes);
	fprintf(out,
	        "  --recipe FILE      the recipe (slimlab-recipe(5))\n"
	        "  --format FMT       or one rule for every module: %s, ... (slimlab recipe formats)\n"
	        "  --method M         %s (the first is the default)\n"
	        "  --sparsity S       fraction removed, 0..1 or 50%%; --pattern %s;\n"
	        "                     --prune %s (the first is the default)\n"
	        "  --calib FILE       calibration text for methods that need statistics (default: the one\n"
	        "                     that ships with slimlab, data/calib.txt)\n",
	        formats, methods, patterns, prunes);
	fprintf(out, "  --KEY VALUE        a method's or format's parameter (slimlab-recipe(5)):");
	for (int i = 0; i < sl_param_count(); i++)
		fprintf(out, "%s%s", i % 8 ? ", " : "\n                     ", sl_param_at(i)->key);
	fprintf(out, "\n");
}

const struct option *cli_recipe_longopts(const struct option *opts, struct option *all, int max)
{
	int n = 0;
	while (opts[n].name && n < max - 1) {
		all[n] = opts[n];
		n++;
	}
	for (int i = 0; i < sl_param_count() && n < max - 1; i++)
		all[n++] = (struct option){sl_param_at(i)->key, required_argument, 0, CLI_PARAM_OPT + i};
	all[n] = (struct option){0, 0, 0, 0};
	return all;
}

int cli_recipe_opt(const char *cmd, int c, const char *arg, cli_recipe_opts *o)
{
	switch (c) {
	case 'R': o->recipe = arg; return 1;
	case 'F': o->format = arg; return 1;
	case 'M': o->method = arg; return 1;
	case 'P': o->pattern = arg; return 1;
	case 'U': o->prune = arg; return 1;
	case 'C': o->calib = arg; return 1;
	case 'S': o->sparsity = arg; return 1;
	}
	const sl_param_spec *spec = c >= CLI_PARAM_OPT ? sl_param_at(c - CLI_PARAM_OPT) : NULL;
	if (!spec)
		return 0;
	if (o->n_params == SL_RULE_PARAMS) {
		cli_usage_error(cmd, "at most %d parameters", SL_RULE_PARAMS);
		return -1;
	}
	o->params[o->n_params].key = spec->key;
	o->params[o->n_params++].value = arg;
	return 1;
}

bool cli_recipe_given(const cli_recipe_opts *o)
{
	return o->recipe || o->format || o->method || o->pattern || o->prune || o->sparsity || o->n_params;
}

/* The rule the options name, through the recipe's reader of rule fields;
 * false with the problem printed against its option. */
static bool uniform_rule(const char *cmd, const cli_recipe_opts *o, sl_rule *d)
{
	const struct {
		const char *key, *value;
	} given[] = {{"format", o->format}, {"method", o->method}, {"sparsity", o->sparsity},
	             {"pattern", o->pattern}, {"prune", o->prune}};
	for (size_t i = 0; i < sizeof given / sizeof *given; i++) {
		sl_error err = {0};
		if (given[i].value && sl_rule_set(d, given[i].key, given[i].value, &err)) {
			fprintf(stderr, "slimlab %s: --%s: %s\n", cmd, given[i].key, err.msg);
			return false;
		}
	}
	for (int i = 0; i < o->n_params; i++) {
		sl_error err = {0};
		if (sl_rule_set(d, o->params[i].key, o->params[i].value, &err)) {
			fprintf(stderr, "slimlab %s: --%s: %s\n", cmd, o->params[i].key, err.msg);
			return false;
		}
	}
	return true;
}

/* The option whose method needs calibration text ("--method NAME"), which
 * only --calib gives; false when none does. */
static bool needs_calibration(const sl_rule *d, char *opt, size_t n)
{
	const struct {
		bool has;
		const char *key, *value;
		sl_method_kind kind;
	} f[] = {{d->has_method, "method", d->method, SL_METHOD_QUANT},
	         {d->has_prune, "prune", d->prune, SL_METHOD_PRUNE},
	         {d->has_pattern, "pattern", d->pattern, SL_METHOD_PATTERN}};
	for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
		const sl_method *m = f[i].has ? sl_method_find(f[i].kind, f[i].value) : NULL;
		if (m && m->needs) {
			snprintf(opt, n, "--%s %s", f[i].key, f[i].value);
			return true;
		}
	}
	return false;
}

sl_recipe *cli_recipe_load(const char *cmd, const cli_recipe_opts *o, const sl_model *m)
{
	sl_error err = {0};
	sl_recipe *r = NULL;
	if (o->recipe && (o->format || o->method || o->pattern || o->prune || o->sparsity || o->n_params)) {
		cli_usage_error(cmd, "--recipe and --format/--method/--sparsity/--pattern/--prune and parameters exclude "
		                     "each other");
		return NULL;
	}
	if (o->recipe) {
		if (sl_recipe_load(o->recipe, &r, &err)) {
			cli_error(&err);
			return NULL;
		}
	} else {
		const sl_method *lr = o->method ? sl_method_find(SL_METHOD_QUANT, o->method) : NULL;
		if (!o->format && !o->sparsity && !o->pattern && !(lr && lr->factor)) {
			cli_usage_error(cmd, "give --recipe FILE, or --format FMT and/or --sparsity S, or a low-rank --method");
			return NULL;
		}
		if (!(r = sl_recipe_new())) {
			sl_errorf(&err, SL_ERR_NOMEM, "out of memory");
			cli_error(&err);
			return NULL;
		}
		if (!uniform_rule(cmd, o, &r->def)) {
			sl_recipe_free(r);
			return NULL;
		}
		/* Methods that need statistics take the calibration text that
		 * ships with slimlab when --calib names none. */
		char opt[64], shipped[4096];
		if (!o->calib && needs_calibration(&r->def, opt, sizeof opt)) {
			if (sl_shipped_find("data/calib.txt", shipped, sizeof shipped, &err)) {
				cli_usage_error(cmd, "%s needs calibration text: add --calib FILE (%s)", opt, err.msg);
				sl_recipe_free(r);
				return NULL;
			}
			snprintf(r->calib.text, sizeof r->calib.text, "%s", shipped);
			fprintf(stderr, "slimlab %s: %s calibrates on %s\n", cmd, opt, shipped);
		}
		snprintf(r->name, sizeof r->name, "%s%s%s", o->format ? o->format : "", o->format && o->method ? " " : "",
		         o->method ? o->method : "");
		for (int i = 0; i < o->n_params; i++)
			snprintf(r->name + strlen(r->name), sizeof r->name - strlen(r->name), " %s=%s", o->params[i].key,
			         o->params[i].value);
	}
	if (o->calib)
		snprintf(r->calib.text, sizeof r->calib.text, "%s", o->calib);
	/* Problems of a uniform rule are named by the option that set them. */
	sl_recipe_issue is[64];
	int n = sl_recipe_check(r, m, is, 64);
	for (int i = 0; i < n && i < 64; i++) {
		bool opt = !o->recipe && !strncmp(is[i].path, "default.", 8);
		/* default.params.rank was --rank */
		size_t skip = !opt ? 0 : !strncmp(is[i].path, "default.params.", 15) ? 15 : 8;
		fprintf(stderr, "slimlab %s: %s%s%s%s: %s\n", cmd, o->recipe ? o->recipe : "", o->recipe ? ": " : "",
		        opt ? "--" : "", is[i].path + skip, is[i].msg);
	}
	if (n) {
		sl_recipe_free(r);
		return NULL;
	}
	return r;
}

sl_model *cli_apply(const sl_model *base, const sl_recipe *r, bool simulate, sl_apply_report *rep)
{
	cli_bar bar;
	cli_bar_init(&bar, "compress");
	/* A simulated model is only evaluated here: packed weights computing
	 * as their F32 decoding give its figures in the packed model's memory. */
	sl_apply_opts o = {.simulate = simulate, .keep_packed = simulate, .progress = &bar.p};
	sl_model *out = NULL;
	sl_error err = {0};
	sl_status st = sl_recipe_apply(base, r, &o, &out, rep, &err);
	cli_bar_done(&bar);
	if (st) {
		cli_error(&err);
		return NULL;
	}
	return out;
}

/* Bytes of m with every compressed module stored in the format it ended
 * up in: a simulated model holds dequantized F32, and its report counts
 * those. */
double cli_packed_bytes(const sl_model *m, const sl_apply_report *rep)
{
	double bytes = (double)sl_model_bytes(m);
	int n = sl_model_modules(m, NULL, 0);
	sl_module *mods = calloc((size_t)n, sizeof *mods);
	if (!mods)
		return bytes;
	sl_model_modules(m, mods, n);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < rep->n_mods && !mods[i].w->lr_a; k++) /* factors are always packed */
			if (!strcmp(rep->mods[k].module, mods[i].name) && rep->mods[k].used) {
				const sl_tensor *t = mods[i].w;
				size_t rb = sl_dtype_row_bytes(rep->mods[k].used->dtype, t->ne[0]);
				bytes += (double)rb * (double)sl_tensor_nrows(t) - (double)t->nbytes;
				break;
			}
	free(mods);
	return bytes;
}

/* Fallbacks grouped by (asked, used): one line each, with a few modules. */
typedef struct {
	const sl_format *asked, *used;
	int count, first;
} fallback_group;

static int group_fallbacks(const sl_apply_report *rep, fallback_group *g, int max)
{
	int n = 0;
	for (int i = 0; i < rep->n_mods; i++) {
		const sl_module_report *mr = &rep->mods[i];
		if (!mr->asked || mr->used == mr->asked)
			continue;
		int k = 0;
		while (k < n && !(g[k].asked == mr->asked && g[k].used == mr->used))
			k++;
		if (k == n && n < max)
			g[n++] = (fallback_group){mr->asked, mr->used, 0, i};
		if (k < n)
			g[k].count++;
	}
	return n;
}

void cli_print_apply(const sl_apply_report *rep, const sl_recipe *r, double bytes, double params)
{
	char a[32], b[32];
	sl_fmt_bytes(rep->bytes_before, a, sizeof a);
	sl_fmt_bytes(bytes, b, sizeof b);
	printf("recipe       %s\n", r->name[0] ? r->name : "(unnamed)");
	printf("size         %s -> %s, %.3f bits per weight (%.2fx smaller)\n", a, b, 8.0 * bytes / params,
	       rep->bytes_before / bytes);
	int compressed = 0;
	for (int i = 0; i < rep->n_mods; i++)
		compressed += rep->mods[i].asked != NULL || rep->mods[i].sparsity > 0 || rep->mods[i].bytes_after < rep->mods[i].bytes_before;
	printf("modules      %d of %d compressed in %.2f s\n", compressed, rep->n_mods, rep->seconds);
	fallback_group g[64];
	int ng = group_fallbacks(rep, g, 64);
	for (int k = 0; k < ng; k++) {
		printf("%-12s %s -> %s for %d module%s:", k ? "" : "fallbacks", g[k].asked->name, g[k].used->name,
		       g[k].count, g[k].count == 1 ? "" : "s");
		int shown = 0;
		for (int i = g[k].first; i < rep->n_mods && shown < 4; i++)
			if (rep->mods[i].asked == g[k].asked && rep->mods[i].used == g[k].used)
				printf("%s %s", shown++ ? "," : "", rep->mods[i].module);
		if (g[k].count > shown)
			printf(" and %d more", g[k].count - shown);
		printf("\n");
	}
	if (!ng)
		printf("fallbacks    none\n");
	int notes = 0;
	for (int i = 0; i < rep->n_mods; i++)
		if (rep->mods[i].note[0] && !(rep->mods[i].asked && rep->mods[i].used != rep->mods[i].asked) &&
		    notes++ < 8)
			printf("%-12s %s: %s\n", notes == 1 ? "notes" : "", rep->mods[i].module, rep->mods[i].note);
}

cJSON *cli_apply_json(const sl_apply_report *rep, const sl_recipe *r, double bytes, double params)
{
	cJSON *o = cJSON_CreateObject();
	char *rj = sl_recipe_to_json(r);
	cJSON_AddItemToObject(o, "recipe", rj ? cJSON_Parse(rj) : cJSON_CreateNull());
	free(rj);
	cJSON_AddNumberToObject(o, "bytes_before", rep->bytes_before);
	cJSON_AddNumberToObject(o, "bytes", bytes);
	cJSON_AddNumberToObject(o, "params", params);
	cJSON_AddNumberToObject(o, "bpw", 8.0 * bytes / params);
	cJSON_AddNumberToObject(o, "seconds", rep->seconds);
	cJSON *fb = cJSON_AddArrayToObject(o, "fallbacks");
	cJSON *mods = cJSON_AddArrayToObject(o, "modules");
	for (int i = 0; i < rep->n_mods; i++) {
		const sl_module_report *mr = &rep->mods[i];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "module", mr->module);
		if (mr->asked)
			cJSON_AddStringToObject(j, "asked", mr->asked->name);
		if (mr->used)
			cJSON_AddStringToObject(j, "used", mr->used->name);
		cJSON_AddStringToObject(j, "method", mr->method);
		cJSON_AddNumberToObject(j, "sparsity", mr->sparsity);
		cJSON_AddNumberToObject(j, "bytes_before", mr->bytes_before);
		cJSON_AddNumberToObject(j, "bytes_after", mr->bytes_after);
		cJSON_AddNumberToObject(j, "rel_error", mr->rel_error);
		cJSON_AddNumberToObject(j, "seconds", mr->seconds);
		if (mr->note[0])
			cJSON_AddStringToObject(j, "note", mr->note);
		if (mr->asked && mr->used != mr->asked)
			cJSON_AddItemToArray(fb, cJSON_Duplicate(j, true));
		cJSON_AddItemToArray(mods, j);
	}
	return o;
}

cJSON *cli_eval_json(const sl_eval_result *r, const char *text)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "text", text);
	cJSON_AddNumberToObject(o, "ctx", r->n_ctx);
	cJSON_AddNumberToObject(o, "chunks", r->n_chunks);
	cJSON_AddNumberToObject(o, "tokens_scored", (double)r->n_scored);
	cJSON_AddNumberToObject(o, "ppl", r->ppl);
	cJSON_AddNumberToObject(o, "ppl_se", r->ppl_se);
	cJSON_AddNumberToObject(o, "nll", r->nll);
	if (r->has_base) {
		cJSON_AddNumberToObject(o, "base_ppl", r->base_ppl);
		cJSON_AddNumberToObject(o, "delta_ppl", r->delta_ppl);
		cJSON_AddNumberToObject(o, "kl_mean", r->kl_mean);
		cJSON_AddNumberToObject(o, "kl_se", r->kl_se);
		cJSON_AddNumberToObject(o, "kl_median", r->kl_median);
		cJSON_AddNumberToObject(o, "kl_p99", r->kl_p99);
		cJSON_AddNumberToObject(o, "kl_max", r->kl_max);
		cJSON_AddNumberToObject(o, "top1_agreement", r->top1);
		cJSON_AddNumberToObject(o, "acceptance", r->acceptance);
		cJSON_AddNumberToObject(o, "greedy_acceptance", r->top1);
	}
	cJSON_AddNumberToObject(o, "seconds", r->seconds);
	return o;
}

void cli_print_eval(const sl_eval_result *r)
{
	printf("windows      %d of %d tokens, %lld predictions scored\n", r->n_chunks, r->n_ctx, r->n_scored);
	printf("perplexity   %.4f +/- %.4f\n", r->ppl, r->ppl_se);
	if (r->has_base) {
		printf("base ppl     %.4f   (delta %+.4f)\n", r->base_ppl, r->delta_ppl);
		printf("KL           mean %.6f +/- %.6f, median %.6f, p99 %.6f, max %.6f\n", r->kl_mean, r->kl_se,
		       r->kl_median, r->kl_p99, r->kl_max);
		printf("top-1        %.2f%% agreement\n", 100.0 * r->top1);
		printf("acceptance   %.2f%% sampled, %.2f%% greedy, as a speculative draft of the base (predicted)\n",
		       100.0 * r->acceptance, 100.0 * r->top1);
	}
	printf("time         %.2f s\n", r->seconds);
}
