/* The ':' commands. They mirror the command-line subcommands where one
 * exists (open ~ info, eval, generate, apply) and add what only a session
 * has (rules, undo, notes, views). Views hand their keys' commands here
 * too, so everything the workbench does can be typed. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/formats.h"
#include "tui.h"

#define MAX_ARGS 32

enum { C_NONE, C_CARD, C_PALETTE, C_PATH, C_VIEW, C_MODULE, C_RULE, C_EVAL, C_RECIPE, C_SET, C_HISTORY, C_GENERATE, C_SWEEP, C_HEATMAP,
       C_TRAIN, C_SPECULATE, C_HEAL };

typedef struct {
	const char *name;
	const char *usage;
	const char *what;
	void (*fn)(sl_tui *t, int argc, char **argv);
	int complete;
} command;

/* --- parsing ---------------------------------------------------------------- */

/* Splits a line into words: spaces separate, quotes group, backslash
 * escapes. Returns the count, or -1 for an unclosed quote. */
static int split(char *line, char **argv)
{
	int argc = 0;
	char *r = line, *w = line;
	while (*r) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (!*r)
			break;
		if (argc == MAX_ARGS)
			return argc;
		argv[argc++] = w;
		char quote = 0;
		while (*r && (quote || (*r != ' ' && *r != '\t'))) {
			if (quote && *r == quote) {
				quote = 0;
				r++;
			} else if (!quote && (*r == '"' || *r == '\'')) {
				quote = *r++;
			} else if (*r == '\\' && r[1] && quote != '\'') {
				*w++ = r[1];
				r += 2;
			} else {
				*w++ = *r++;
			}
		}
		if (quote)
			return -1;
		if (*r)
			r++;
		*w++ = 0;
	}
	return argc;
}

static bool parse_int(sl_tui *t, const char *what, const char *s, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		sl_tui_msg(t, true, "%s wants a whole number from %ld to %ld, not '%s'", what, lo, hi, s);
		return false;
	}
	*out = (int)v;
	return true;
}

/* A number, or a percentage ("50%" = 0.5) when percent is allowed. */
static bool parse_num(sl_tui *t, const char *what, const char *s, double lo, double hi, bool percent, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (percent && end != s && *end == '%' && !end[1]) {
		v /= 100;
		end++;
	}
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		sl_tui_msg(t, true, "%s wants a number from %g to %g%s, not '%s'", what, lo, hi, percent ? " (or a percentage)" : "",
		           s);
		return false;
	}
	*out = v;
	return true;
}

static bool one_of(const char *v, const char *const *list, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v, list[i]))
			return true;
	return false;
}

static bool need_model(sl_tui *t)
{
	if (t->app.model)
		return true;
	sl_tui_msg(t, true, "no model is open: press o or type :open PATH");
	return false;
}

/* --- opening and saving ------------------------------------------------------- */

static void go_open_session(sl_tui *t, void *arg, bool go)
{
	if (go)
		sl_task_open_session(t, arg);
	free(arg);
}

static void cmd_open(sl_tui *t, int argc, char **argv)
{
	if (argc < 2)
		sl_tui_show(t, "open");
	else
		sl_open_asking(t, argv[1]);
}

static void cmd_session(sl_tui *t, int argc, char **argv)
{
	if (argc != 2) {
		sl_tui_msg(t, true, "usage: session FILE");
		return;
	}
	char *p = sl_open_exists(t, argv[1]) ? sl_strdup(argv[1]) : NULL;
	if (p)
		sl_tui_unless_unsaved(t, "opening another session", go_open_session, p);
}

static void cmd_save(sl_tui *t, int argc, char **argv)
{
	if (!need_model(t))
		return;
	const char *path = argc > 1 ? argv[1] : t->app.ses->path;
	if (!path[0]) {
		sl_cmdline_open(&t->cl, "save ");
		sl_tui_msg(t, false, "save the session as: type a file name (Tab completes)");
		return;
	}
	sl_tui_save(t, path);
}

/* --- jobs ------------------------------------------------------------------ */

static void cmd_eval(sl_tui *t, int argc, char **argv)
{
	const sl_session *s = t->app.ses;
	const char *text = "calibration";
	int ctx = s->settings.ctx, chunks = s->settings.chunks;
	for (int i = 1; i < argc; i++) {
		bool has = i + 1 < argc;
		if (!strcmp(argv[i], "--text") && has)
			text = argv[++i];
		else if (!strcmp(argv[i], "--ctx") && has) {
			if (!parse_int(t, "--ctx", argv[++i], 4, 1 << 20, &ctx))
				return;
		} else if (!strcmp(argv[i], "--chunks") && has) {
			if (!parse_int(t, "--chunks", argv[++i], 0, 1 << 30, &chunks))
				return;
		} else {
			sl_tui_msg(t, true, "usage: eval [--text calibration|evaluation|FILE] [--ctx N] [--chunks N]");
			return;
		}
	}
	sl_task_eval(t, text, ctx, chunks, NAN);
}

static void cmd_generate(sl_tui *t, int argc, char **argv)
{
	sl_session *s = t->app.ses;
	char prompt[sizeof s->view.prompt] = "";
	size_t k = 0;
	int n = s->view.gen_tokens;
	double temp = s->view.temp;
	bool have_prompt = false;
	for (int i = 1; i < argc; i++) {
		bool has = i + 1 < argc;
		if (!strcmp(argv[i], "-n") && has) {
			if (!parse_int(t, "-n", argv[++i], 1, 1 << 16, &n))
				return;
		} else if (!strcmp(argv[i], "--temp") && has) {
			if (!parse_num(t, "--temp", argv[++i], 0, 100, false, &temp))
				return;
		} else {
			const char *w = !strcmp(argv[i], "-p") && has ? argv[++i] : argv[i];
			k += (size_t)snprintf(prompt + k, k < sizeof prompt ? sizeof prompt - k : 0, "%s%s", k ? " " : "", w);
			have_prompt = true;
		}
	}
	if (have_prompt)
		snprintf(s->view.prompt, sizeof s->view.prompt, "%s", prompt);
	if (have_prompt || n != s->view.gen_tokens || temp != s->view.temp) {
		s->view.gen_tokens = n;
		s->view.temp = temp;
		sl_tui_session_changed(t);
	}
	sl_task_generate(t);
}

static const char speculate_usage[] =
	"usage: speculate [--draft-format FMT | --draft-recipe FILE | --draft-current | --draft-layers N | "
	"--draft-ngram N] [--k K] [--temp T] [--p-min P] [-n N] [PROMPT...]";

/* A draft option and its value (NULL for --draft-current) into r; false
 * when opt is none, or (with the message said) when its value is bad. */
static bool draft_option(sl_tui *t, const char *opt, const char *value, sl_spec_request *r, bool *bad)
{
	*bad = false;
	if (!strcmp(opt, "--draft-current"))
		r->current = true;
	else if (!value)
		return false;
	else if (!strcmp(opt, "--draft-format"))
		r->format = value;
	else if (!strcmp(opt, "--draft-recipe"))
		r->recipe = value;
	else if (!strcmp(opt, "--draft-layers"))
		*bad = !parse_int(t, "--draft-layers", value, 1, 1 << 16, &r->layers);
	else if (!strcmp(opt, "--draft-ngram"))
		*bad = !parse_int(t, "--draft-ngram", value, 1, 64, &r->ngram);
	else
		return false;
	return true;
}

static void cmd_speculate(sl_tui *t, int argc, char **argv)
{
	sl_spec_request r = {.temp = -1, .p_min = -1};
	char prompt[1024] = "";
	size_t k = 0;
	int drafts = 0;
	bool bad;
	for (int i = 1; i < argc; i++) {
		bool has = i + 1 < argc;
		if (draft_option(t, argv[i], has ? argv[i + 1] : NULL, &r, &bad)) {
			if (bad)
				return;
			drafts++;
			i += strcmp(argv[i], "--draft-current") != 0;
		} else if (!strcmp(argv[i], "--k") && has) {
			if (!parse_int(t, "--k", argv[++i], 1, SL_SPEC_MAX_K, &r.k))
				return;
		} else if (!strcmp(argv[i], "-n") && has) {
			if (!parse_int(t, "-n", argv[++i], 1, 1 << 20, &r.n))
				return;
		} else if (!strcmp(argv[i], "--temp") && has) {
			if (!parse_num(t, "--temp", argv[++i], 0, 100, false, &r.temp))
				return;
		} else if (!strcmp(argv[i], "--p-min") && has) {
			if (!parse_num(t, "--p-min", argv[++i], 0, 1, false, &r.p_min))
				return;
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			sl_tui_msg(t, true, "%s", speculate_usage);
			return;
		} else {
			k += (size_t)snprintf(prompt + k, k < sizeof prompt ? sizeof prompt - k : 0, "%s%s", k ? " " : "", argv[i]);
		}
	}
	if (drafts > 1) {
		sl_tui_msg(t, true, "name one draft; %s", speculate_usage);
		return;
	}
	if (!need_model(t))
		return;
	/* No draft named: the first the Speculate view offers. */
	char src[8][SL_SPEC_ARG], *val;
	if (!drafts && sl_spec_sources(&t->app, src, 8) > 0) {
		if ((val = strchr(src[0], ' ')))
			*val++ = 0;
		draft_option(t, src[0], val, &r, &bad);
	}
	r.prompt = k ? prompt : NULL;
	sl_task_speculate(t, &r);
}

static void answer_overwrite(sl_tui *t, int key, void *arg)
{
	if (key == 'o')
		sl_task_apply(t, arg);
	free(arg);
}

/* Exports the recipe's model to path, asking first when a file is there. */
static void export_to(sl_tui *t, const char *path)
{
	char *p;
	if (access(path, F_OK))
		sl_task_apply(t, path);
	else if ((p = sl_strdup(path)))
		sl_tui_ask(t, "[o]verwrite it  [c]ancel", answer_overwrite, p, "%s exists already.", path);
}

static void cmd_apply(sl_tui *t, int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--out"))
		export_to(t, argv[2]);
	else if (argc == 1)
		sl_task_apply(t, NULL);
	else
		sl_tui_msg(t, true, "usage: apply [--out FILE.gguf]");
}

/* A name no file has yet for the exported model: MODEL-slim.gguf (then
 * -slim-2, ...) beside the model when its folder can be written, else in
 * the current folder. */
static void export_name(const sl_model *m, char *buf, size_t n)
{
	char dir[PATH_MAX], stem[256];
	sl_path_dir(m->path, dir, sizeof dir);
	if (access(dir, W_OK))
		snprintf(dir, sizeof dir, ".");
	const char *slash = strrchr(m->path, '/'), *name = slash ? slash + 1 : m->path, *dot = strrchr(name, '.');
	snprintf(stem, sizeof stem, "%.*s", dot && dot != name ? (int)(dot - name) : (int)strlen(name), name);
	for (int i = 1; i < 1000; i++) {
		char tail[300];
		snprintf(tail, sizeof tail, i > 1 ? "%s-slim-%d.gguf" : "%s-slim.gguf", stem, i);
		if (strcmp(dir, "."))
			sl_path_join(buf, n, dir, tail);
		else
			snprintf(buf, n, "%s", tail);
		if (access(buf, F_OK))
			return;
	}
}

static void cmd_export(sl_tui *t, int argc, char **argv)
{
	if (argc > 2) {
		sl_tui_msg(t, true, "usage: export [FILE.gguf]");
		return;
	}
	if (argc == 2) {
		export_to(t, argv[1]);
		return;
	}
	if (!need_model(t))
		return;
	char path[PATH_MAX], line[PATH_MAX + 16];
	export_name(t->app.model, path, sizeof path);
	snprintf(line, sizeof line, "export %s", path);
	sl_cmdline_open(&t->cl, line);
	sl_tui_msg(t, false, "Enter writes the recipe's model there as GGUF (or type another name)");
}

static void cmd_inspect(sl_tui *t, int argc, char **argv)
{
	if (argc != 2) {
		sl_tui_msg(t, true, "usage: inspect MODULE (Tab lists them)");
		return;
	}
	sl_task_weight_stats(t, argv[1]);
}

static void cmd_stats(sl_tui *t, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	sl_task_act_stats(t);
}

static void cmd_cancel(sl_tui *t, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (!sl_jobs_cancel(&t->jobs))
		sl_tui_msg(t, false, "no job is running");
}

/* --- the recipe ---------------------------------------------------------------- */

#define N(a) ((int)(sizeof a / sizeof a[0]))

/* Applies key=value words to a rule (the recipe's own reader of a rule's
 * fields); false (with a message) on the first bad one. */
static bool set_fields(sl_tui *t, sl_rule *r, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			sl_tui_msg(t, true, "'%s' is not key=value (keys: format, method, sparsity, pattern, prune, layers, ...)",
			           argv[i]);
			return false;
		}
		*eq = 0;
		sl_error err = {0};
		if (sl_rule_set(r, argv[i], eq + 1, &err)) {
			sl_tui_msg(t, true, "%s: %s", argv[i], err.msg);
			return false;
		}
	}
	return true;
}

/* Commits an edited copy of rule `index` (0 = default, -1 = append). */
static void commit_rule(sl_tui *t, int index, const sl_rule *r)
{
	sl_session *s = t->app.ses;
	sl_error err = {0};
	if (sl_session_recipe_edit(s, &err)) {
		sl_tui_msg(t, true, "%s", err.msg);
		return;
	}
	if (index == 0)
		s->recipe->def = *r;
	else if (index > 0)
		s->recipe->rules[index - 1] = *r;
	else if (sl_recipe_add_rule(s->recipe, r) < 0)
		sl_tui_msg(t, true, "out of memory for the rule");
	sl_tui_recipe_changed(t);
}

/* The last rule whose selector is exactly sel (no block range), 1-based,
 * or -1. */
static int rule_for(const sl_recipe *rc, const char *sel)
{
	for (int i = rc->n_rules - 1; i >= 0; i--)
		if (!strcmp(rc->rules[i].match, sel) && rc->rules[i].layer_lo < 0)
			return i + 1;
	return -1;
}

static void cmd_rule(sl_tui *t, int argc, char **argv)
{
	sl_session *s = t->app.ses;
	sl_recipe *rc = s->recipe;
	if (argc < 2) {
		sl_tui_msg(t, true, "usage: rule add SELECTOR [key=value...] | rule N key=value... | rule N delete|up|down | "
		                    "rule SELECTOR key=value...");
		return;
	}
	sl_rule r;
	int index;
	char *end;
	long n = strtol(argv[1], &end, 10);
	if (!strcmp(argv[1], "add")) {
		if (argc < 3) {
			sl_tui_msg(t, true, "usage: rule add SELECTOR [key=value...] (a name, a glob like blk.*.ffn_down, or all)");
			return;
		}
		sl_rule_init(&r);
		snprintf(r.match, sizeof r.match, "%s", strcmp(argv[2], "all") ? argv[2] : "");
		if (set_fields(t, &r, argc - 3, argv + 3))
			commit_rule(t, -1, &r);
		return;
	}
	if (!strcmp(argv[1], "set")) {
		if (argc < 4) {
			sl_tui_msg(t, true, "usage: rule set SELECTOR key=value... (the last rule for exactly SELECTOR, "
			                    "or a new one, sets just these)");
			return;
		}
		sl_rule_init(&r);
		snprintf(r.match, sizeof r.match, "%s", strcmp(argv[2], "all") ? argv[2] : "");
		if (!set_fields(t, &r, argc - 3, argv + 3))
			return;
		commit_rule(t, rule_for(rc, r.match), &r);
		char what[96];
		sl_rule_summary(&r, what, sizeof what);
		sl_tui_msg(t, false, "%s: %s, in the recipe (u undoes it)", argv[2], what);
		return;
	}
	if (end != argv[1] && !*end) {
		if (n < 0 || n > rc->n_rules) {
			sl_tui_msg(t, true, "there is no rule %ld (0 is the default rule, 1..%d the others)", n, rc->n_rules);
			return;
		}
		index = (int)n;
		if (argc == 3 && (!strcmp(argv[2], "delete") || !strcmp(argv[2], "up") || !strcmp(argv[2], "down"))) {
			int to = !strcmp(argv[2], "up") ? index - 1 : index + 1;
			if (index == 0 || (strcmp(argv[2], "delete") && (to < 1 || to > rc->n_rules))) {
				sl_tui_msg(t, true, index ? "rule %d cannot move further" : "the default rule stays first", index);
				return;
			}
			sl_error err = {0};
			if (sl_session_recipe_edit(s, &err)) {
				sl_tui_msg(t, true, "%s", err.msg);
				return;
			}
			rc = s->recipe;
			if (!strcmp(argv[2], "delete")) {
				sl_recipe_remove_rule(rc, index - 1);
			} else {
				sl_rule tmp = rc->rules[index - 1];
				rc->rules[index - 1] = rc->rules[to - 1];
				rc->rules[to - 1] = tmp;
			}
			sl_tui_recipe_changed(t);
			return;
		}
		r = index ? rc->rules[index - 1] : rc->def;
	} else {
		/* A selector: the last rule for exactly it, or a new one. */
		const char *sel = strcmp(argv[1], "all") ? argv[1] : "";
		index = rule_for(rc, sel);
		if (index < 0) {
			sl_rule_init(&r);
			snprintf(r.match, sizeof r.match, "%s", sel);
		} else {
			r = rc->rules[index - 1];
		}
	}
	if (argc < 3) {
		sl_tui_msg(t, true, "rule %s: say what to set (format=, method=, sparsity=, ...: Tab lists the keys)", argv[1]);
		return;
	}
	if (set_fields(t, &r, argc - 2, argv + 2))
		commit_rule(t, index, &r);
}

static void cmd_undo(sl_tui *t, int argc, char **argv)
{
	(void)argc;
	bool redo = !strcmp(argv[0], "redo");
	if (!(redo ? sl_session_redo(t->app.ses) : sl_session_undo(t->app.ses))) {
		sl_tui_msg(t, false, "nothing to %s", argv[0]);
		return;
	}
	sl_tui_recipe_changed(t);
	sl_tui_msg(t, false, "%s", redo ? "redone" : "undone");
}

static void cmd_recipe(sl_tui *t, int argc, char **argv)
{
	sl_session *s = t->app.ses;
	const char *sub = argc > 1 ? argv[1] : "";
	sl_error err = {0};
	if (!strcmp(sub, "new") && argc == 2) {
		sl_recipe *r = sl_recipe_new();
		if (!r || sl_session_set_recipe(s, r, &err)) {
			sl_recipe_free(r);
			sl_tui_msg(t, true, "out of memory");
			return;
		}
		sl_tui_recipe_changed(t);
	} else if (!strcmp(sub, "load") && argc == 3) {
		sl_recipe *r;
		if (sl_recipe_load(argv[2], &r, &err) || sl_session_set_recipe(s, r, &err)) {
			sl_tui_msg(t, true, "%s", err.msg);
			return;
		}
		sl_tui_recipe_changed(t);
		sl_tui_msg(t, false, "recipe loaded from %s", argv[2]);
	} else if (!strcmp(sub, "save") && argc == 3) {
		if (sl_recipe_save(s->recipe, argv[2], &err)) {
			sl_tui_msg(t, true, "%s", err.msg);
			return;
		}
		sl_tui_msg(t, false, "recipe saved to %s", argv[2]);
	} else if (!strcmp(sub, "name") && argc == 3) {
		if (sl_session_recipe_edit(s, &err)) {
			sl_tui_msg(t, true, "%s", err.msg);
			return;
		}
		snprintf(s->recipe->name, sizeof s->recipe->name, "%s", argv[2]);
		sl_tui_recipe_changed(t);
	} else if (!strcmp(sub, "validate") && argc == 2) {
		if (!t->app.n_issues)
			sl_tui_msg(t, false, "the recipe has no problems");
		else
			sl_tui_msg(t, true, "%d problem%s; the first: %s: %s", t->app.n_issues, t->app.n_issues > 1 ? "s" : "",
			           t->app.issues[0].path, t->app.issues[0].msg);
	} else {
		sl_tui_msg(t, true, "usage: recipe new | load FILE | save FILE | name NAME | validate");
	}
}

/* --- sweeps, the heatmap, automatic recipes, training ------------------------- */

static void cmd_sweep(sl_tui *t, int argc, char **argv)
{
	static const char usage[] = "usage: sweep OPTIONS [--unit module|block] [--windows N] [--ctx N] [--ranks N "
	                            "[--hostfile F] [--threads N]] | sweep | sweep export FILE.csv|FILE.json|FILE.svg | "
	                            "sweep chart FILE.svg [ROW]";
	if (argc == 3 && !strcmp(argv[1], "export")) {
		sl_sweep_export(t, argv[2]);
		return;
	}
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "chart")) {
		sl_sweep_chart(t, argv[2], argc == 4 ? argv[3] : NULL);
		return;
	}
	const sl_heat *h = &t->app.heat;
	const char *options = NULL;
	sl_sweep_unit unit = SL_SWEEP_MODULES;
	int ctx = 128, windows = 8;
	sl_ranks ranks = {0};
	if (argc == 1) {
		/* Again, as it was: goes on from the cells it has. */
		if (!h->rows) {
			sl_tui_msg(t, true, "%s", usage);
			return;
		}
		options = h->options;
		unit = h->unit;
		ctx = h->ctx;
		windows = h->windows;
	}
	for (int i = 1; i < argc; i++) {
		bool has = i + 1 < argc;
		if (!strcmp(argv[i], "--unit") && has) {
			const char *u = argv[++i];
			if (strcmp(u, "module") && strcmp(u, "block")) {
				sl_tui_msg(t, true, "--unit is module or block, not '%s'", u);
				return;
			}
			unit = !strcmp(u, "block") ? SL_SWEEP_BLOCKS : SL_SWEEP_MODULES;
		} else if (!strcmp(argv[i], "--windows") && has) {
			if (!parse_int(t, "--windows", argv[++i], 1, 1 << 20, &windows))
				return;
		} else if (!strcmp(argv[i], "--ctx") && has) {
			if (!parse_int(t, "--ctx", argv[++i], 8, 1 << 16, &ctx))
				return;
		} else if (!strcmp(argv[i], "--ranks") && has) {
			if (!parse_int(t, "--ranks", argv[++i], 1, 4096, &ranks.ranks))
				return;
		} else if (!strcmp(argv[i], "--threads") && has) {
			if (!parse_int(t, "--threads", argv[++i], 1, 256, &ranks.threads))
				return;
		} else if (!strcmp(argv[i], "--hostfile") && has) {
			snprintf(ranks.hostfile, sizeof ranks.hostfile, "%s", argv[++i]);
		} else if (!options && argv[i][0] != '-') {
			options = argv[i];
		} else {
			sl_tui_msg(t, true, "%s", usage);
			return;
		}
	}
	if (!options || (!ranks.ranks && (ranks.hostfile[0] || ranks.threads))) {
		sl_tui_msg(t, true, "%s", usage);
		return;
	}
	sl_task_sweep(t, options, unit, ctx, windows, ranks.ranks ? &ranks : NULL);
}

static const char *const heat_sorts[] = {"block", "metric", "params"};

static void cmd_heatmap(sl_tui *t, int argc, char **argv)
{
	sl_session *s = t->app.ses;
	const sl_heat *h = &t->app.heat;
	const char *sub = argc > 1 ? argv[1] : "";
	if (!strcmp(sub, "metric") && argc == 3 && sl_sweep_metric_find(argv[2]) >= 0) {
		snprintf(s->view.heat.metric, sizeof s->view.heat.metric, "%s", argv[2]);
	} else if (!strcmp(sub, "sort") && (argc == 3 || argc == 4) && one_of(argv[2], heat_sorts, 3)) {
		int col = 0;
		if (argc == 4) {
			/* An option by its label or its place (1, 2, ...). */
			col = -1;
			for (int c = 0; c < h->cols && col < 0; c++)
				if (!strcmp(argv[3], h->opt[c].label))
					col = c;
			int place;
			if (col < 0) {
				if (!parse_int(t, "heatmap sort: the option's place", argv[3], 1, h->cols > 0 ? h->cols : 1, &place))
					return;
				col = place - 1;
			}
		}
		snprintf(s->view.heat.sort, sizeof s->view.heat.sort, "%s", argv[2]);
		s->view.heat.sort_col = col;
	} else if (!strcmp(sub, "filter") && argc <= 3) {
		snprintf(s->view.heat.filter, sizeof s->view.heat.filter, "%s",
		         argc == 3 && strcmp(argv[2], "all") ? argv[2] : "");
	} else {
		sl_tui_msg(t, true, "usage: heatmap metric kl|dppl|top1|accept | heatmap sort block|params|metric [OPTION] | "
		                    "heatmap filter [GLOB]");
		return;
	}
	sl_heat_refresh(t);
	sl_tui_show(t, "heatmap");
}

static void cmd_autorecipe(sl_tui *t, int argc, char **argv)
{
	if (argc != 2) {
		sl_tui_msg(t, true, "usage: autorecipe BUDGET (4.5bpw, 3MB, 50%%): a recipe from the sweep, then measured");
		return;
	}
	sl_task_autorecipe(t, argv[1]);
}

static void cmd_train(sl_tui *t, int argc, char **argv)
{
	bool resume = false;
	const char *out = NULL;
	bool ok = argc >= 2 && argv[1][0] != '-';
	for (int i = 2; ok && i < argc; i++) {
		if (!strcmp(argv[i], "--resume"))
			resume = true;
		else if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else
			ok = false;
	}
	if (!ok) {
		sl_tui_msg(t, true, "usage: train CONFIG.json [--out FILE] [--resume] (the configuration slimlab train "
		                    "takes; the model goes to a new folder in the data directory unless --out names it)");
		return;
	}
	sl_task_train(t, argv[1], resume, out);
}

static const char *const heal_methods[] = {"qat", "qad", "kd", "lora"};
static const char *const heal_keys[] = {"steps=", "batch=", "lr=", "temperature=", "rank=", "seq_len=",
                                        "eval_every=", "probe=", "seed=", "out=", "checkpoint="};

/* One healing setting from key=value (a method alone sets the method). */
static bool heal_setting(sl_tui *t, sl_heal_settings *h, char *word)
{
	char *eq = strchr(word, '=');
	const char *v = eq ? eq + 1 : word;
	if (eq)
		*eq = 0;
	const char *k = eq ? word : "method";
	bool is_auto = !strcmp(v, "auto");
	double d;
	if (!strcmp(k, "method")) {
		if (!one_of(v, heal_methods, N(heal_methods))) {
			sl_tui_msg(t, true, "healing method '%s': qat, qad, kd or lora", v);
			return false;
		}
		snprintf(h->method, sizeof h->method, "%s", v);
		return true;
	}
	if (!strcmp(k, "out") || !strcmp(k, "checkpoint")) {
		char *dst = k[0] == 'o' ? h->out : h->checkpoint;
		if (strlen(v) >= sizeof h->out) {
			sl_tui_msg(t, true, "%s: the path is too long", k);
			return false;
		}
		snprintf(dst, sizeof h->out, "%s", is_auto ? "" : v);
		return true;
	}
	if (!strcmp(k, "steps"))
		return parse_int(t, "steps", v, 1, 10000000, &h->steps);
	if (!strcmp(k, "batch"))
		return parse_int(t, "batch", v, 1, 4096, &h->batch);
	if (!strcmp(k, "rank"))
		return parse_int(t, "rank", v, 1, 4096, &h->rank);
	if (!strcmp(k, "seq_len"))
		return is_auto ? (h->seq_len = 0, true) : parse_int(t, "seq_len", v, 2, 1 << 20, &h->seq_len);
	if (!strcmp(k, "eval_every"))
		return is_auto ? (h->eval_every = 0, true) : parse_int(t, "eval_every", v, 1, 1 << 30, &h->eval_every);
	if (!strcmp(k, "probe"))
		return parse_int(t, "probe (windows of the held-out KL)", v, 1, 1 << 20, &h->probe);
	if (!strcmp(k, "lr")) {
		if (is_auto || !parse_num(t, "lr", v, 1e-9, 1, false, &d))
			return is_auto ? (h->lr = 0, true) : false;
		h->lr = d;
		return true;
	}
	if (!strcmp(k, "temperature"))
		return parse_num(t, "temperature", v, 1e-3, 100, false, &h->temperature);
	if (!strcmp(k, "seed")) {
		if (!parse_num(t, "seed", v, 0, 9007199254740992.0, false, &d) || d != (double)(uint64_t)d) {
			if (d != (double)(uint64_t)d)
				sl_tui_msg(t, true, "seed wants a whole number, not '%s'", v);
			return false;
		}
		h->seed = (uint64_t)d;
		return true;
	}
	sl_tui_msg(t, true, "unknown healing setting '%s' (Tab lists them)", k);
	return false;
}

static void cmd_heal(sl_tui *t, int argc, char **argv)
{
	int first = 1;
	bool set_only = argc > 1 && !strcmp(argv[1], "set"), resume = argc > 1 && !strcmp(argv[1], "resume");
	if (set_only || resume)
		first = 2;
	/* Every word is checked before any takes effect. */
	sl_heal_settings h = t->app.heal.set;
	for (int i = first; i < argc; i++)
		if (!heal_setting(t, &h, argv[i]))
			return;
	t->app.heal.set = h;
	sl_tui_show(t, "heal");
	if (set_only)
		return;
	sl_task_heal(t, resume);
}

/* --- settings, notes, history, views ------------------------------------------ */

static void cmd_set(sl_tui *t, int argc, char **argv)
{
	sl_session *s = t->app.ses;
	if (argc < 2) {
		sl_tui_msg(t, true, "usage: set ctx=N chunks=N tokens=N temp=T stats_tokens=N calibration=FILE evaluation=FILE");
		return;
	}
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			sl_tui_msg(t, true, "'%s' is not key=value", argv[i]);
			return;
		}
		*eq = 0;
		const char *k = argv[i], *v = eq + 1;
		bool ok = true;
		if (!strcmp(k, "ctx"))
			ok = parse_int(t, "ctx", v, 4, 1 << 20, &s->settings.ctx);
		else if (!strcmp(k, "chunks"))
			ok = parse_int(t, "chunks", v, 0, 1 << 30, &s->settings.chunks);
		else if (!strcmp(k, "tokens"))
			ok = parse_int(t, "tokens", v, 1, 1 << 16, &s->view.gen_tokens);
		else if (!strcmp(k, "stats_tokens"))
			ok = parse_int(t, "stats_tokens", v, 2, 1 << 26, &s->settings.stats_tokens);
		else if (!strcmp(k, "temp"))
			ok = parse_num(t, "temp", v, 0, 100, false, &s->view.temp);
		else if (!strcmp(k, "calibration") || !strcmp(k, "evaluation")) {
			char real[PATH_MAX];
			if (!realpath(v, real) || !sl_file_exists(real)) {
				sl_tui_msg(t, true, "%s: no such file", v);
				return;
			}
			bool cal = k[0] == 'c';
			snprintf(cal ? s->settings.calib_text : s->settings.eval_text, sizeof s->settings.calib_text, "%s", real);
			snprintf(cal ? t->app.calib_path : t->app.eval_path, sizeof t->app.calib_path, "%s", real);
		} else {
			sl_tui_msg(t, true, "unknown setting '%s'", k);
			return;
		}
		if (!ok)
			return;
	}
	sl_tui_session_changed(t);
}

static void cmd_note(sl_tui *t, int argc, char **argv)
{
	if (argc < 2) {
		sl_tui_msg(t, true, "usage: note TEXT");
		return;
	}
	char line[1024];
	size_t k = 0;
	for (int i = 1; i < argc; i++)
		k += (size_t)snprintf(line + k, k < sizeof line ? sizeof line - k : 0, "%s%s", i > 1 ? " " : "", argv[i]);
	sl_error err = {0};
	if (sl_session_add_note(t->app.ses, line, &err)) {
		sl_tui_msg(t, true, "%s", err.msg);
		return;
	}
	sl_tui_session_changed(t);
}

/* The modules whose plans differ between the recipes the two marked runs
 * measured, resolved for the model's modules as the recipes would. */
static void compare_runs(sl_tui *t)
{
	sl_app *a = &t->app;
	free(a->diffs);
	a->diffs = NULL;
	a->n_diffs = 0;
	a->diffs_known = false;
	if (!a->marked[1] || !a->n_mods)
		return;
	const char *ja = a->ses->runs[a->marked[0] - 1].recipe_json, *jb = a->ses->runs[a->marked[1] - 1].recipe_json;
	sl_recipe *ra = NULL, *rb = NULL;
	if (ja && jb && !sl_recipe_parse(ja, strlen(ja), &ra, NULL) && !sl_recipe_parse(jb, strlen(jb), &rb, NULL) &&
	    (a->diffs = sl_calloc((size_t)a->n_mods, sizeof *a->diffs))) {
		a->diffs_known = true;
		for (int i = 0; i < a->n_mods; i++) {
			sl_module_plan pa, pb;
			sl_recipe_resolve(ra, &a->mods[i], &pa);
			sl_recipe_resolve(rb, &a->mods[i], &pb);
			char sa[96], sb[96];
			sl_plan_summary(&pa, a->mods[i].w, sa, sizeof sa);
			sl_plan_summary(&pb, a->mods[i].w, sb, sizeof sb);
			if (!strcmp(sa, sb))
				continue;
			snprintf(a->diffs[a->n_diffs].module, sizeof a->diffs[0].module, "%s", a->mods[i].name);
			snprintf(a->diffs[a->n_diffs].a, sizeof a->diffs[0].a, "%s", sa);
			snprintf(a->diffs[a->n_diffs++].b, sizeof a->diffs[0].b, "%s", sb);
		}
	}
	sl_recipe_free(ra);
	sl_recipe_free(rb);
}

/* Marks run n for comparison, or unmarks it; a third mark starts again
 * from it. The marks are kept in run order, so the comparison reads from
 * the earlier run to the later one. */
static void toggle_mark(sl_tui *t, int n)
{
	int *m = t->app.marked;
	if (m[0] == n) {
		m[0] = m[1];
		m[1] = 0;
	} else if (m[1] == n) {
		m[1] = 0;
	} else if (m[1] || !m[0]) {
		m[0] = n;
		m[1] = 0;
	} else {
		m[1] = n > m[0] ? n : m[0];
		m[0] = n > m[0] ? m[0] : n;
	}
	compare_runs(t);
	const sl_run *ra = m[1] ? &t->app.ses->runs[m[0] - 1] : NULL, *rb = m[1] ? &t->app.ses->runs[m[1] - 1] : NULL;
	if (m[1] && !ra->speculative && !rb->speculative && !sl_run_same_measure(ra, rb))
		sl_tui_msg(t, false, "comparing runs %d and %d, not alike: measured on other texts or windows", m[0], m[1]);
	else if (m[1])
		sl_tui_msg(t, false, "comparing runs %d and %d", m[0], m[1]);
	else
		sl_tui_msg(t, false, m[0] ? "run %d marked: mark another to compare them" : "no run is marked", m[0]);
}

static void cmd_history(sl_tui *t, int argc, char **argv)
{
	sl_session *s = t->app.ses;
	int n;
	if (argc == 3 && (!strcmp(argv[1], "delete") || !strcmp(argv[1], "mark"))) {
		if (!parse_int(t, argv[1][0] == 'd' ? "history delete" : "history mark", argv[2], 1,
		               s->n_runs > 0 ? s->n_runs : 1, &n) ||
		    n > s->n_runs)
			return;
		if (argv[1][0] == 'm') {
			toggle_mark(t, n);
			return;
		}
		sl_session_remove_run(s, n - 1);
	} else if (argc == 2 && !strcmp(argv[1], "clear")) {
		while (s->n_runs)
			sl_session_remove_run(s, s->n_runs - 1);
		s->dirty = true;
	} else if (argc == 2 && !strcmp(argv[1], "unmark")) {
		t->app.marked[0] = t->app.marked[1] = 0;
		compare_runs(t);
		return;
	} else {
		sl_tui_msg(t, true, "usage: history delete N | history clear | history mark N | history unmark");
		return;
	}
	/* The runs were renumbered: the marks no longer hold. */
	t->app.marked[0] = t->app.marked[1] = 0;
	compare_runs(t);
	sl_tui_session_changed(t);
}

static void cmd_view(sl_tui *t, int argc, char **argv)
{
	if (argc != 2 || !sl_tui_show(t, argv[1]))
		sl_tui_msg(t, true, "usage: view NAME (Tab lists them)");
}

static void cmd_info(sl_tui *t, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	sl_tui_show(t, "model");
}

static void cmd_help(sl_tui *t, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	sl_tui_show(t, "help");
}

static void cmd_card(sl_tui *t, int argc, char **argv)
{
	if (argc == 2)
		sl_tui_card(t, NULL, argv[1]);
	else if (argc == 3)
		sl_tui_card(t, argv[1], argv[2]);
	else
		sl_tui_msg(t, true, "usage: card [KIND] NAME (Tab lists them; the Help view, 0, lists every card)");
}

static void cmd_palette(sl_tui *t, int argc, char **argv)
{
	sl_palette_kind k;
	if (argc == 1) {
		sl_tui_msg(t, false, "palette: %s (palette default|contrast)", sl_palette_name(sl_draw_palette_kind()));
		return;
	}
	if (argc != 2 || !sl_palette_parse(argv[1], &k)) {
		sl_tui_msg(t, true, "usage: palette default|contrast");
		return;
	}
	sl_draw_palette(k);
	sl_tui_msg(t, false, "palette: %s", sl_palette_name(k));
}

static void list_one(const char *path, void *ctx)
{
	char *buf = ctx;
	sl_lesson *l = NULL;
	if (sl_lesson_load(path, NULL, &l, NULL) == SL_OK) {
		snprintf(buf + strlen(buf), 1024 - strlen(buf), "%s%s", buf[0] ? ", " : "", l->name);
		sl_lesson_free(l);
	}
}

static void cmd_lesson(sl_tui *t, int argc, char **argv)
{
	const sl_lesson_state *ls = &t->app.lesson;
	if (argc == 2 && !strcmp(argv[1], "stop")) {
		if (!ls->lesson) {
			sl_tui_msg(t, true, "no lesson is going on");
			return;
		}
		sl_tui_msg(t, false, "lesson %s stopped (its progress stays in the session)", ls->lesson->title);
		sl_lesson_stop(t);
	} else if (argc == 2 && !strcmp(argv[1], "list")) {
		char buf[1024] = "";
		sl_lesson_each(list_one, buf);
		sl_tui_msg(t, false, "lessons: %s", buf[0] ? buf : "none found");
	} else if (argc == 2) {
		sl_lesson_start(t, argv[1]);
	} else if (argc == 1 && ls->lesson) {
		sl_tui_msg(t, false, "lesson %s: step %d of %d", ls->lesson->title, ls->step + 1, ls->lesson->n_steps);
	} else {
		sl_tui_msg(t, true, "usage: lesson NAME|FILE.json | lesson list | lesson stop");
	}
}

static void quit_now(sl_tui *t, void *arg, bool go)
{
	(void)arg;
	t->quit = go;
}

static void cmd_quit(sl_tui *t, int argc, char **argv)
{
	(void)argc;
	if (strchr(argv[0], '!'))
		t->quit = true;
	else
		sl_tui_unless_unsaved(t, "quitting", quit_now, NULL);
}

static const command commands[] = {
	{"open", "open [MODEL]", "open a model (no path: the file picker)", cmd_open, C_PATH},
	{"session", "session FILE", "open a saved session", cmd_session, C_PATH},
	{"save", "save [FILE]", "save the session (to FILE: save as)", cmd_save, C_PATH},
	{"info", "info", "the model's modules (the Model view)", cmd_info, C_NONE},
	{"eval", "eval [--text calibration|evaluation|FILE] [--ctx N] [--chunks N]",
	 "PPL, and KL, top-1, delta PPL of the recipe against the base", cmd_eval, C_EVAL},
	{"generate", "generate [-n N] [--temp T] [PROMPT]", "base and recipe model continue PROMPT", cmd_generate,
	 C_GENERATE},
	{"speculate",
	 "speculate [--draft-format FMT | --draft-recipe FILE | --draft-current | --draft-layers N | --draft-ngram N] "
	 "[--k K] [--temp T] [--p-min P] [-n N] [PROMPT...]",
	 "speculative decoding of PROMPT with a draft (default: the recipe, else a draft format): acceptance, speed-up "
	 "(the Speculate view)",
	 cmd_speculate, C_SPECULATE},
	{"apply", "apply [--out FILE.gguf]", "build the recipe's model; with --out export it as GGUF", cmd_apply, C_PATH},
	{"export", "export [FILE.gguf]", "export the recipe's model as GGUF (no FILE: offers a new name)", cmd_export,
	 C_PATH},
	{"rule", "rule add SEL k=v... | rule N k=v... | rule set SEL k=v... | rule N delete|up|down",
	 "edit the recipe (keys: format method sparsity pattern prune layers match)", cmd_rule, C_RULE},
	{"recipe", "recipe new|load FILE|save FILE|name NAME|validate", "the recipe as a whole", cmd_recipe, C_RECIPE},
	{"undo", "undo", "undo the last recipe change", cmd_undo, C_NONE},
	{"redo", "redo", "redo what undo took back", cmd_undo, C_NONE},
	{"sweep", "sweep OPTIONS [--unit module|block] [--windows N] [--ctx N] [--ranks N [--hostfile F] [--threads N]] | "
	          "sweep export FILE | sweep chart FILE [ROW]",
	 "sensitivity of each module to each option (again: goes on; --ranks: on MPI ranks that mpirun starts); "
	 "export as .csv, .json or .svg; chart: KL against bytes as .svg", cmd_sweep, C_SWEEP},
	{"heatmap", "heatmap metric kl|dppl|top1|accept | sort block|params|metric [OPTION] | filter [GLOB]",
	 "what the heatmap shows and in which order", cmd_heatmap, C_HEATMAP},
	{"autorecipe", "autorecipe BUDGET", "a recipe from the sweep under 4.5bpw, 3MB or 50%, then measured", cmd_autorecipe,
	 C_NONE},
	{"train", "train CONFIG.json [--out FILE] [--resume]",
	 "train a model as slimlab train does (the Train view); the model, its loss log and checkpoint go to a new "
	 "folder in the data directory, or --out FILE and beside it; --resume: the last run goes on",
	 cmd_train, C_TRAIN},
	{"heal", "heal [qat|qad|kd|lora] [steps=N batch=N lr=X|auto ...] | heal set ... | heal resume",
	 "heal the recipe's model by training (the Heal view); set: only choose the settings", cmd_heal, C_HEAL},
	{"inspect", "inspect MODULE", "show a module in the layer inspector", cmd_inspect, C_MODULE},
	{"stats", "stats", "gather activation statistics over the calibration text", cmd_stats, C_NONE},
	{"set", "set ctx=N chunks=N tokens=N temp=T calibration=FILE ...", "settings of the session", cmd_set, C_SET},
	{"note", "note TEXT", "add a line to the session's notes", cmd_note, C_NONE},
	{"history", "history delete N | clear | mark N | unmark",
	 "edit the history of evaluations; mark two runs to compare them (Evaluate)", cmd_history, C_HISTORY},
	{"lesson", "lesson NAME|FILE.json | lesson list | lesson stop",
	 "a guided lesson on its model: each step's goal is checked by the engine (slimlab-lesson(5))", cmd_lesson,
	 C_PATH},
	{"view", "view NAME", "show a view", cmd_view, C_VIEW},
	{"cancel", "cancel", "cancel the running job (also Esc, Ctrl-C)", cmd_cancel, C_NONE},
	{"help", "help", "every technique card, key and command", cmd_help, C_NONE},
	{"card", "card [format|method|prune|pattern|heal|metric|speculate] NAME",
	 "a technique's card: what it does, its formula, what to watch, a pitfall, its paper (Esc closes)", cmd_card,
	 C_CARD},
	{"palette", "palette default|contrast", "colours: the default, or high contrast for projectors", cmd_palette,
	 C_PALETTE},
	{"quit", "quit", "leave (asks when the session has unsaved changes)", cmd_quit, C_NONE},
	{"quit!", "quit!", "leave without asking", cmd_quit, C_NONE},
	{"q", "q", "quit", cmd_quit, C_NONE},
};

const sl_keyhelp *sl_command_help(void)
{
	static sl_keyhelp help[N(commands) + 1];
	for (int i = 0; i < N(commands); i++)
		help[i] = (sl_keyhelp){commands[i].usage, commands[i].what};
	return help;
}

void sl_command(sl_tui *t, const char *line)
{
	char buf[2048], *argv[MAX_ARGS];
	snprintf(buf, sizeof buf, "%s", line);
	int argc = split(buf, argv);
	if (argc < 0) {
		sl_tui_msg(t, true, "a quote is not closed");
		return;
	}
	if (argc == 0)
		return;
	for (int i = 0; i < N(commands); i++)
		if (!strcmp(argv[0], commands[i].name)) {
			commands[i].fn(t, argc, argv);
			return;
		}
	sl_tui_msg(t, true, "unknown command '%s' (Tab lists them; :help explains them)", argv[0]);
}

/* --- completion -------------------------------------------------------------- */

typedef struct {
	char **v;
	int n, cap;
} cands;

static void add(cands *c, const char *prefix, const char *s)
{
	if (strncmp(s, prefix, strlen(prefix)))
		return;
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->v[i], s))
			return;
	if (c->n == c->cap) {
		int cap = c->cap ? 2 * c->cap : 32;
		char **v = realloc(c->v, (size_t)cap * sizeof *v);
		if (!v)
			return;
		c->v = v;
		c->cap = cap;
	}
	if ((c->v[c->n] = sl_strdup(s)))
		c->n++;
}

/* The names cards are found by: every format and method (a family of
 * names offers its choices), every other entry with a card; of one kind,
 * or of all (kind < 0). */
static void add_card_names(cands *c, const char *word, int kind)
{
	for (int i = 0; (kind < 0 || kind == SL_CARD_FORMAT) && i < sl_format_count(); i++)
		add(c, word, sl_format_at(i)->name);
	for (int i = 0; i < sl_method_count(); i++) {
		const sl_method *m = sl_method_at(i);
		int k = m->kind == SL_METHOD_PRUNE ? SL_CARD_PRUNE : m->kind == SL_METHOD_PATTERN ? SL_CARD_PATTERN : SL_CARD_METHOD;
		if (kind >= 0 && kind != k)
			continue;
		if (!m->choices)
			add(c, word, m->name);
		for (const char *const *ch = m->choices; ch && *ch; ch++)
			add(c, word, *ch);
	}
	sl_card_entry e;
	for (int i = 0; sl_card_at(i, &e); i++)
		if (e.kind > SL_CARD_PATTERN && (kind < 0 || kind == (int)e.kind))
			add(c, word, e.name);
}

static void add_paths(cands *c, const char *word)
{
	char dir[PATH_MAX], full[PATH_MAX];
	const char *slash = strrchr(word, '/');
	if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - word + 1), word);
	else
		dir[0] = 0;
	DIR *d = opendir(dir[0] ? dir : ".");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' && (!slash ? word[0] != '.' : slash[1] != '.'))
			continue;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(full, sizeof full, "%s%s", dir, e->d_name);
		if (sl_is_dir(full))
			strncat(full, "/", sizeof full - strlen(full) - 1);
		add(c, word, full);
	}
	closedir(d);
}

/* KEY=PATH: the paths that complete PATH, each after KEY=. */
static void add_key_paths(cands *c, const char *word)
{
	const char *eq = strchr(word, '=');
	cands p = {0};
	add_paths(&p, eq + 1);
	for (int i = 0; i < p.n; i++) {
		char b[PATH_MAX + 16];
		snprintf(b, sizeof b, "%.*s%s", (int)(eq - word + 1), word, p.v[i]);
		add(c, word, b);
		free(p.v[i]);
	}
	free(p.v);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_list(cands *c, const char *word, const char *prefix, const char *const *items, int n)
{
	char buf[256];
	for (int i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "%s%s", prefix, items[i]);
		add(c, word, buf);
	}
}

static void add_rule_words(sl_tui *t, cands *c, const char *word)
{
	const char *eq = strchr(word, '=');
	if (!eq) {
		char k[40];
		for (int i = 0; i < sl_rule_key_count(); i++) {
			snprintf(k, sizeof k, "%s=", sl_rule_key_at(i));
			add(c, word, k);
		}
		return;
	}
	char key[32];
	snprintf(key, sizeof key, "%.*s", (int)(eq - word + 1), word);
	static const struct {
		const char *key;
		sl_pick menu;
	} menus[] = {{"format=", SL_PICK_FORMAT}, {"method=", SL_PICK_METHOD}, {"pattern=", SL_PICK_PATTERN},
	             {"prune=", SL_PICK_PRUNE}, {"sparsity=", SL_PICK_SPARSITY}};
	for (size_t i = 0; i < sizeof menus / sizeof *menus; i++)
		if (!strcmp(key, menus[i].key)) {
			const char *const *items;
			int n = sl_pick_items(menus[i].menu, &items);
			add_list(c, word, key, items, n);
			return;
		}
	if (!strcmp(key, "match=")) {
		for (int i = 0; i < t->app.n_mods; i++) {
			char b[128];
			snprintf(b, sizeof b, "match=%s", t->app.mods[i].name);
			add(c, word, b);
		}
	}
}

static void add_modules(sl_tui *t, cands *c, const char *word, bool globs)
{
	for (int i = 0; i < t->app.n_mods; i++) {
		add(c, word, t->app.mods[i].name);
		if (globs && t->app.mods[i].layer >= 0) {
			char g[64];
			snprintf(g, sizeof g, "blk.*.%s", sl_module_kind_name(t->app.mods[i].kind));
			add(c, word, g);
			snprintf(g, sizeof g, "blk.%d.*", t->app.mods[i].layer);
			add(c, word, g);
		}
	}
}

static void candidates(sl_tui *t, int nw, char **words, const char *word, cands *c)
{
	if (nw == 1) {
		for (int i = 0; i < N(commands); i++)
			add(c, word, commands[i].name);
		return;
	}
	const command *cmd = NULL;
	for (int i = 0; i < N(commands); i++)
		if (!strcmp(words[0], commands[i].name))
			cmd = &commands[i];
	if (!cmd)
		return;
	const char *prev = words[nw - 2];
	static const char *const texts[] = {"calibration", "evaluation"};
	static const char *const eval_opts[] = {"--text", "--ctx", "--chunks"};
	static const char *const recipe_subs[] = {"new", "load", "save", "name", "validate"};
	static const char *const set_keys[] = {"ctx=", "chunks=", "tokens=", "temp=", "stats_tokens=", "calibration=",
	                                       "evaluation="};
	static const char *const hist_subs[] = {"delete", "clear", "mark", "unmark"};
	static const char *const sweep_opts[] = {"--unit", "--windows", "--ctx", "--ranks", "--hostfile", "--threads"};
	static const char *const units[] = {"module", "block"};
	static const char *const heat_subs[] = {"metric", "sort", "filter"};
	static const char *const spec_opts[] = {"--draft-format", "--draft-recipe", "--draft-current", "--draft-layers",
	                                        "--draft-ngram", "--k", "--temp", "--p-min", "-n"};
	static const char *const train_opts[] = {"--out", "--resume"};
	switch (cmd->complete) {
	case C_PATH:
		if (strcmp(cmd->name, "apply") || nw > 2)
			add_paths(c, word);
		else
			add(c, word, "--out");
		break;
	case C_VIEW:
		for (int i = 0; i < t->n_views; i++)
			add(c, word, t->classes[i]->name);
		break;
	case C_CARD: {
		sl_card_kind kind = SL_CARD_FORMAT;
		bool named = nw == 3 && sl_card_kind_parse(words[1], &kind);
		for (int i = 0; nw == 2 && i < SL_CARD_KINDS; i++)
			add(c, word, sl_card_kind_name((sl_card_kind)i));
		if (nw == 2 || named)
			add_card_names(c, word, named ? (int)kind : -1);
		break;
	}
	case C_PALETTE:
		for (int i = 0; nw == 2 && i < SL_PALETTES; i++)
			add(c, word, sl_palette_name((sl_palette_kind)i));
		break;
	case C_MODULE:
		add_modules(t, c, word, false);
		break;
	case C_RULE:
		if (nw == 2) {
			add(c, word, "add");
			add(c, word, "all");
			add_modules(t, c, word, true);
		} else if (nw == 3 && !strcmp(words[1], "add")) {
			add_modules(t, c, word, true);
		} else {
			if (nw == 3 && strtol(words[1], NULL, 10) > 0) {
				add(c, word, "delete");
				add(c, word, "up");
				add(c, word, "down");
			}
			add_rule_words(t, c, word);
		}
		break;
	case C_EVAL:
		if (!strcmp(prev, "--text")) {
			add_list(c, word, "", texts, N(texts));
			add_paths(c, word);
		} else {
			add_list(c, word, "", eval_opts, N(eval_opts));
		}
		break;
	case C_GENERATE:
		if (word[0] == '-') {
			add(c, word, "-n");
			add(c, word, "--temp");
		}
		break;
	case C_RECIPE:
		if (nw == 2)
			add_list(c, word, "", recipe_subs, N(recipe_subs));
		else if (!strcmp(words[1], "load") || !strcmp(words[1], "save"))
			add_paths(c, word);
		break;
	case C_SET:
		if (!strncmp(word, "calibration=", 12) || !strncmp(word, "evaluation=", 11))
			add_key_paths(c, word);
		else
			add_list(c, word, "", set_keys, N(set_keys));
		break;
	case C_HEAL:
		if (!strncmp(word, "out=", 4) || !strncmp(word, "checkpoint=", 11)) {
			add_key_paths(c, word);
			break;
		}
		if (nw == 2) {
			add(c, word, "set");
			add(c, word, "resume");
		}
		add_list(c, word, "", heal_methods, N(heal_methods));
		add_list(c, word, "", heal_keys, N(heal_keys));
		break;
	case C_HISTORY:
		if (nw == 2)
			add_list(c, word, "", hist_subs, N(hist_subs));
		break;
	case C_SWEEP:
		if ((nw == 3 && (!strcmp(prev, "export") || !strcmp(prev, "chart"))) || !strcmp(prev, "--hostfile"))
			add_paths(c, word);
		else if (!strcmp(prev, "--unit"))
			add_list(c, word, "", units, N(units));
		else if (nw == 2) {
			add(c, word, "export");
			add(c, word, "chart");
		}
		else
			add_list(c, word, "", sweep_opts, N(sweep_opts));
		break;
	case C_HEATMAP:
		if (nw == 2)
			add_list(c, word, "", heat_subs, N(heat_subs));
		else if (nw == 3 && !strcmp(prev, "metric"))
			for (int i = 0; i < sl_sweep_metric_count(); i++)
				add(c, word, sl_sweep_metric_name(i));
		else if (nw == 3 && !strcmp(prev, "sort"))
			add_list(c, word, "", heat_sorts, N(heat_sorts));
		else if (nw == 3 && !strcmp(prev, "filter"))
			add_modules(t, c, word, true);
		else if (nw == 4 && !strcmp(words[1], "sort"))
			for (int i = 0; i < t->app.heat.cols; i++)
				add(c, word, t->app.heat.opt[i].label);
		break;
	case C_SPECULATE:
		if (!strcmp(prev, "--draft-format")) {
			const char *const *items;
			int n = sl_pick_items(SL_PICK_FORMAT, &items);
			add_list(c, word, "", items + 1, n - 1); /* not "keep" */
		} else if (!strcmp(prev, "--draft-recipe")) {
			add_paths(c, word);
		} else if (word[0] == '-') {
			add_list(c, word, "", spec_opts, N(spec_opts));
		}
		break;
	case C_TRAIN:
		if (nw >= 3 && word[0] == '-')
			add_list(c, word, "", train_opts, N(train_opts));
		else if (nw == 2 || !strcmp(prev, "--out"))
			add_paths(c, word);
		break;
	}
}

void sl_complete(sl_tui *t, sl_cmdline *cl)
{
	/* Further Tabs after a list cycle through it. */
	bool cycling = cl->comp_stem[0] && !strcmp(cl->buf, cl->comp_last);
	char line[sizeof cl->buf];
	snprintf(line, sizeof line, "%s", cycling ? cl->comp_stem : cl->buf);
	char *words[MAX_ARGS];
	int nw = 0;
	char tmp[sizeof line];
	snprintf(tmp, sizeof tmp, "%s", line);
	for (char *p = strtok(tmp, " "); p && nw < MAX_ARGS - 1; p = strtok(NULL, " "))
		words[nw++] = p;
	size_t len = strlen(line);
	const char *word = "";
	if (len && line[len - 1] == ' ')
		words[nw++] = (char *)word;
	else if (nw)
		word = words[nw - 1];
	else
		words[nw++] = (char *)word;

	cands c = {0};
	candidates(t, nw, words, word, &c);
	if (c.n)
		qsort(c.v, (size_t)c.n, sizeof *c.v, by_name);
	if (c.n == 1) {
		/* A finished word gets its space; a directory or key= goes on. */
		char w[PATH_MAX + 2];
		size_t l = strlen(c.v[0]);
		bool open = l && (c.v[0][l - 1] == '/' || c.v[0][l - 1] == '=');
		snprintf(w, sizeof w, "%s%s", c.v[0], open ? "" : " ");
		sl_cmdline_set_word(cl, w);
	} else if (c.n > 1) {
		size_t common = strlen(c.v[0]);
		for (int i = 1; i < c.n; i++) {
			size_t k = 0;
			while (k < common && c.v[i][k] == c.v[0][k])
				k++;
			common = k;
		}
		if (!cycling && common > strlen(word)) {
			char pre[1024];
			snprintf(pre, sizeof pre, "%.*s", (int)common, c.v[0]);
			sl_cmdline_set_word(cl, pre);
		} else {
			if (!cycling) {
				snprintf(cl->comp_stem, sizeof cl->comp_stem, "%s", line);
				cl->comp_next = 0;
			}
			snprintf(cl->buf, sizeof cl->buf, "%s", cl->comp_stem);
			cl->len = cl->pos = (int)strlen(cl->buf);
			sl_cmdline_set_word(cl, c.v[cl->comp_next++ % c.n]);
			snprintf(cl->comp_last, sizeof cl->comp_last, "%s", cl->buf);
		}
		char list[512];
		size_t k = 0;
		for (int i = 0; i < c.n && k < sizeof list; i++)
			k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? "  " : "", c.v[i]);
		sl_tui_msg(t, false, "%s", list);
	}
	for (int i = 0; i < c.n; i++)
		free(c.v[i]);
	free(c.v);
}
