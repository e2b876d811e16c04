/* slimlab recipe validate FILE [--model MODEL]: every problem of a recipe
 * with its JSON path, the formats that fall back on the model's rows and
 * the size it would give; slimlab recipe formats and methods: the
 * registries. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/fileio.h"
#include "core/methods/method.h"
#include "core/recipe.h"
#include "core/units.h"

static const char recipe_usage[] =
	"Usage: slimlab recipe validate FILE [--model MODEL] [--tokenizer FILE] [--json]\n"
	"       slimlab recipe formats [--json]\n"
	"       slimlab recipe methods [--json]\n"
	"validate: reports every problem of the recipe FILE, each with its JSON path\n"
	"(rules[2].format, ...); with --model also selectors that match none of its\n"
	"modules, groups that do not divide its rows, impossible sparsities, the\n"
	"formats that fall back to another on its rows, and the size the recipe\n"
	"would give. Exits 1 when there is a problem. The schema is slimlab-recipe(5).\n"
	"formats: the names a recipe or --format may use, with their bits per weight.\n"
	"methods: the methods, pruning criteria and patterns a rule may name, what\n"
	"each needs of calibration, and the parameters each takes.\n"
	"  --model MODEL      check the recipe against this model\n"
	"  --tokenizer FILE   llama2.c tokenizer.bin for MODEL\n"
	"  --json             print one JSON object\n";

#define MAX_ISSUES 256

static cJSON *issues_json(const sl_recipe_issue *is, int n)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; i < n && i < MAX_ISSUES; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "path", is[i].path);
		cJSON_AddStringToObject(o, "message", is[i].msg);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static void print_issues(const char *file, const char *kind, const sl_recipe_issue *is, int n)
{
	for (int i = 0; i < n && i < MAX_ISSUES; i++)
		printf("%s: %s%s: %s\n", file, kind, is[i].path, is[i].msg);
	if (n > MAX_ISSUES)
		printf("%s: (and %d more)\n", file, n - MAX_ISSUES);
}

static int validate(const char *file, const char *model_path, const char *tok, bool json)
{
	sl_error err = {0};
	sl_recipe *r = NULL;
	char *text = NULL;
	size_t len = 0;
	static sl_recipe_issue problems[MAX_ISSUES], notes[MAX_ISSUES];
	/* Every structural problem, then (on whatever could be read) every
	 * problem of the values: one list, however many there are. */
	int np = 0;
	if (sl_read_file(file, (size_t)16 << 20, &text, &len, &err)) {
		snprintf(problems[0].msg, sizeof problems[0].msg, "%.250s", err.msg);
		np = 1;
	} else {
		np = sl_recipe_parse_all(text, len, &r, problems, MAX_ISSUES);
		free(text);
	}
	if (!r) {
		if (json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "recipe", file);
			cJSON_AddBoolToObject(o, "ok", false);
			cJSON_AddItemToObject(o, "problems", issues_json(problems, np));
			cli_print_json(o);
		} else {
			for (int i = 0; i < np && i < MAX_ISSUES; i++)
				fprintf(stderr, "%s: %s%s%s\n", file, problems[i].path, problems[i].path[0] ? ": " : "",
				        problems[i].msg);
		}
		return CLI_FAIL;
	}
	sl_model *m = NULL;
	if (model_path && !(m = cli_load_model(model_path, tok))) {
		sl_recipe_free(r);
		return CLI_FAIL;
	}
	int parsed = np < MAX_ISSUES ? np : MAX_ISSUES;
	np = parsed + sl_recipe_check(r, m, problems + parsed, MAX_ISSUES - parsed);
	int nn = m ? sl_recipe_fallbacks(r, m, notes, MAX_ISSUES) : 0;
	sl_recipe_estimate e = {0};
	if (m)
		sl_recipe_estimate_size(r, m, &e);
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "recipe", file);
		if (m)
			cJSON_AddStringToObject(o, "model", model_path);
		cJSON_AddBoolToObject(o, "ok", np == 0);
		cJSON_AddItemToObject(o, "problems", issues_json(problems, np));
		cJSON_AddItemToObject(o, "fallbacks", issues_json(notes, nn));
		if (m) {
			cJSON *s = cJSON_AddObjectToObject(o, "estimate");
			cJSON_AddNumberToObject(s, "bytes", e.bytes);
			cJSON_AddNumberToObject(s, "base_bytes", e.base_bytes);
			cJSON_AddNumberToObject(s, "params", e.params);
			cJSON_AddNumberToObject(s, "bpw", e.bpw);
		}
		cli_print_json(o);
	} else {
		print_issues(file, "", problems, np);
		print_issues(file, "note: ", notes, nn);
		if (m) {
			char a[32], b[32];
			sl_fmt_bytes(e.bytes, a, sizeof a);
			sl_fmt_bytes(e.base_bytes, b, sizeof b);
			printf("%s: %s on %s: %s (from %s), %.3f bits per weight\n", file, r->name[0] ? r->name : "recipe",
			       model_path, a, b, e.bpw);
		}
		if (!np)
			printf("%s: no problems\n", file);
		else
			printf("%s: %d problem%s\n", file, np, np == 1 ? "" : "s");
	}
	sl_model_free(m);
	sl_recipe_free(r);
	return np ? CLI_FAIL : CLI_OK;
}

/* The method registry: name, which rule key names it, what it needs, its
 * parameters with their ranges and defaults. */
static int list_methods(bool json)
{
	cJSON *a = json ? cJSON_CreateArray() : NULL;
	if (!json)
		printf("%-13s %-8s %-15s %s\n", "name", "key", "needs", "");
	for (int i = 0; i < sl_method_count(); i++) {
		const sl_method *m = sl_method_at(i);
		const char *needs = m->needs & SL_NEEDS_HESSIAN ? "hessian" : m->needs ? "statistics" : "-";
		cJSON *o = json ? cJSON_CreateObject() : NULL, *ps = json ? cJSON_CreateArray() : NULL;
		if (json) {
			cJSON_AddStringToObject(o, "name", m->name);
			cJSON_AddStringToObject(o, "key", sl_method_kind_key(m->kind));
			cJSON_AddStringToObject(o, "needs", needs);
			cJSON_AddStringToObject(o, "summary", m->summary);
			cJSON_AddItemToObject(o, "params", ps);
			cJSON_AddItemToArray(a, o);
		} else {
			printf("%-13s %-8s %-15s %s\n", m->name, sl_method_kind_key(m->kind), needs, m->summary);
		}
		for (int k = 0; k < m->n_params; k++) {
			const sl_param_spec *p = &m->params[k];
			if (json) {
				cJSON *q = cJSON_CreateObject();
				cJSON_AddStringToObject(q, "key", p->key);
				cJSON_AddNumberToObject(q, "min", p->lo);
				cJSON_AddNumberToObject(q, "max", p->hi);
				cJSON_AddNumberToObject(q, "default", p->def);
				cJSON_AddStringToObject(q, "type", p->boolean ? "bool" : p->integer ? "int" : "number");
				cJSON_AddItemToArray(ps, q);
			} else if (p->boolean) {
				printf("%-13s   %s=true|false (default %s): %s\n", "", p->key, p->def ? "true" : "false", p->what);
			} else {
				printf("%-13s   %s=%.10g..%.10g (default %g): %s\n", "", p->key, p->lo, p->hi, p->def, p->what);
			}
		}
	}
	if (json)
		cli_print_json(a);
	return CLI_OK;
}

static int list_formats(bool json)
{
	cJSON *a = json ? cJSON_CreateArray() : NULL;
	if (!json)
		printf("%-16s %-6s %6s  %s\n", "format", "family", "bpw", "");
	for (int i = 0; i < sl_format_count(); i++) {
		const sl_format *f = sl_format_at(i);
		double bpw = sl_format_bpw(f, 4096);
		if (json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", f->name);
			cJSON_AddStringToObject(o, "family", f->family);
			cJSON_AddNumberToObject(o, "bits", f->bits);
			cJSON_AddNumberToObject(o, "group", f->group);
			cJSON_AddNumberToObject(o, "bpw_4096", bpw);
			cJSON_AddStringToObject(o, "summary", f->summary);
			cJSON_AddItemToArray(a, o);
		} else {
			printf("%-16s %-6s %6.3f  %s\n", f->name, f->family, bpw, f->summary);
		}
	}
	if (json) {
		cli_print_json(a);
	} else {
		printf("(bits per weight on rows of 4096, scales included)\n");
	}
	return CLI_OK;
}

int sl_cmd_recipe(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},
		{"tokenizer", required_argument, 0, 't'},
		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *model = NULL, *tok = NULL;
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 't': tok = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(recipe_usage, stdout); return CLI_OK;
		default: return cli_usage_error("recipe", "unknown option");
		}
	}
	const char *sub = optind < argc ? argv[optind] : NULL;
	if (sub && !strcmp(sub, "validate")) {
		if (optind + 2 != argc)
			return cli_usage_error("recipe", "validate expects one FILE");
		return validate(argv[optind + 1], model, tok, json);
	}
	if (sub && (!strcmp(sub, "formats") || !strcmp(sub, "methods"))) {
		if (optind + 1 != argc || model)
			return cli_usage_error("recipe", "%s takes no arguments", sub);
		return !strcmp(sub, "formats") ? list_formats(json) : list_methods(json);
	}
	return cli_usage_error("recipe", sub ? "unknown subcommand '%s'" : "expects a subcommand%s",
	                       sub ? sub : " (validate, formats or methods)");
}
