/* Lesson files: reading them with every field checked (a problem names
 * the file, the step and the field), the goal kinds and the parameters
 * each takes, where lessons are found, and the Markdown handout. */
#define _GNU_SOURCE
#include "lesson.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/formats.h"
#include "core/methods/method.h"
#include "core/sweep/sweep.h"
#include "session.h"

/* --- the goal kinds and their parameters ------------------------------------ */

typedef enum { P_STR, P_NUM, P_INT, P_BOOL } param_type;

typedef enum { CHECK_NONE, CHECK_VIEW, CHECK_FORMAT, CHECK_QUANT, CHECK_PRUNE, CHECK_PATTERN, CHECK_OPTIONS,
               CHECK_HEAL, CHECK_METRIC } param_check;

typedef struct {
	const char *name;
	param_type type;
	size_t off, size;        /* where in sl_lesson_goal; size of a string field */
	double lo, hi;           /* numbers */
	param_check check;
} param_spec;

#define STR(f, c) {#f, P_STR, offsetof(sl_lesson_goal, f), sizeof(((sl_lesson_goal *)0)->f), 0, 0, c}
#define NUM(f, lo, hi) {#f, P_NUM, offsetof(sl_lesson_goal, f), 0, lo, hi, CHECK_NONE}
static const param_spec params[] = {
	STR(view, CHECK_VIEW),
	STR(options, CHECK_OPTIONS),
	STR(option, CHECK_OPTIONS),
	STR(metric, CHECK_METRIC),
	STR(rows, CHECK_NONE),
	STR(format, CHECK_FORMAT),
	STR(method, CHECK_QUANT),
	STR(prune, CHECK_PRUNE),
	STR(pattern, CHECK_PATTERN),
	NUM(sparsity_min, 0, 1),
	NUM(bpw_below, 0, 64),
	NUM(kl_below, 0, 1e6),
	STR(beats, CHECK_FORMAT),
	{"mixed", P_BOOL, offsetof(sl_lesson_goal, mixed), 0, 0, 0, CHECK_NONE},
	NUM(acceptance_min, 0, 1),
	{"k", P_INT, offsetof(sl_lesson_goal, k), 0, 1, 64, CHECK_NONE},
	STR(draft, CHECK_NONE),
	NUM(recovered_min, -10, 1),
};
#define N_PARAMS ((int)(sizeof params / sizeof params[0]))

/* Each kind's parameters, comma-separated; required ones first, before '|'. */
static const struct {
	const char *name;
	const char *required, *optional;
} kinds[SL_GOAL_KINDS] = {
	[SL_GOAL_VIEW] = {"view_is", "view", ""},
	[SL_GOAL_SWEEP] = {"sweep_done", "options", ""},
	[SL_GOAL_CURSOR_MAX] = {"cursor_on_max_sensitivity", "option", "metric,rows"},
	[SL_GOAL_EVALUATED] = {"evaluated", "",
	                       "format,method,prune,pattern,sparsity_min,bpw_below,kl_below,beats,mixed"},
	[SL_GOAL_SPEC] = {"spec_run", "", "acceptance_min,k,draft"},
	[SL_GOAL_HEAL] = {"heal_run", "method", "recovered_min"},
};

const char *sl_goal_kind_name(sl_goal_kind k)
{
	return k >= 0 && k < SL_GOAL_KINDS ? kinds[k].name : "?";
}

/* Whether word is one of the comma-separated list. */
static bool in_list(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		if (k == n && !strncmp(p, word, n))
			return true;
		p += k + (e ? 1 : 0);
	}
	return false;
}

static const param_spec *param_find(const char *name)
{
	for (int i = 0; i < N_PARAMS; i++)
		if (!strcmp(params[i].name, name))
			return &params[i];
	return NULL;
}

/* --- reading ------------------------------------------------------------------ */

typedef struct {
	const char *origin;
	sl_error *err;
	sl_status st;
	sl_lesson_name_ok view_ok;
} reader;

static bool fail(reader *rd, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(reader *rd, const char *path, const char *fmt, ...)
{
	if (rd->st)
		return false;
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rd->st = sl_errorf(rd->err, SL_ERR_FORMAT, "%s: %s: %s", rd->origin, path, msg);
	return false;
}

/* Refuses members of o that are not in the comma-separated list. */
static bool only_known(reader *rd, const cJSON *o, const char *path, const char *known)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, o)
	{
		if (!in_list(known, e->string)) {
			char p[160];
			snprintf(p, sizeof p, "%s%s%.64s", path, *path ? "." : "", e->string);
			char list[400];
			snprintf(list, sizeof list, "%s", known);
			for (char *c = list; (c = strchr(c, ',')); c++)
				*c = ' ';
			return fail(rd, p, "unknown field; known here: %s", list);
		}
	}
	return true;
}

static bool get_str(reader *rd, const cJSON *o, const char *path, const char *key, char *dst, size_t n,
                    bool required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	char p[160];
	snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
	if (!v)
		return required ? fail(rd, p, "missing") : true;
	if (!cJSON_IsString(v))
		return fail(rd, p, "expected a string");
	if (strlen(v->valuestring) >= n)
		return fail(rd, p, "longer than the %zu bytes allowed", n - 1);
	if (required && !v->valuestring[0])
		return fail(rd, p, "empty");
	snprintf(dst, n, "%s", v->valuestring);
	return true;
}

static bool get_text(reader *rd, const cJSON *o, const char *path, const char *key, char **dst, bool required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	char p[160];
	snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
	if (!v && required)
		return fail(rd, p, "missing");
	if (v && !cJSON_IsString(v))
		return fail(rd, p, "expected a string");
	if (required && !v->valuestring[0])
		return fail(rd, p, "empty");
	if (!(*dst = sl_strdup(v ? v->valuestring : "")))
		return fail(rd, p, "out of memory");
	return true;
}

static bool check_value(reader *rd, sl_goal_kind kind, const param_spec *ps, const char *p, const char *v)
{
	char names[1024];
	param_check check = ps->check == CHECK_QUANT && kind == SL_GOAL_HEAL ? CHECK_HEAL : ps->check;
	switch (check) {
	case CHECK_VIEW:
		if (rd->view_ok && !rd->view_ok(v))
			return fail(rd, p, "no view is called '%s' (the views: model layer recipe eval generate heatmap "
			                   "heal speculate train help)", v);
		return true;
	case CHECK_FORMAT:
		if (!sl_format_find(v))
			return fail(rd, p, "no format is called '%s' (slimlab recipe formats lists them)", v);
		return true;
	case CHECK_QUANT:
	case CHECK_PRUNE:
	case CHECK_PATTERN: {
		sl_method_kind k = ps->check == CHECK_QUANT ? SL_METHOD_QUANT : ps->check == CHECK_PRUNE ? SL_METHOD_PRUNE
		                                                                                          : SL_METHOD_PATTERN;
		if (sl_method_find(k, v))
			return true;
		sl_method_names(k, ", ", names, sizeof names);
		return fail(rd, p, "no %s is called '%s'; known: %s", sl_method_kind_key(k), v, names);
	}
	case CHECK_OPTIONS: {
		sl_sweep_option *o = NULL;
		int n = 0;
		sl_error e = {0};
		if (sl_sweep_parse_options(v, &o, &n, &e))
			return fail(rd, p, "%s", e.msg);
		free(o);
		if (ps->off == offsetof(sl_lesson_goal, option) && n != 1)
			return fail(rd, p, "expected one sweep option");
		return true;
	}
	case CHECK_HEAL:
		if (strcmp(v, "qat") && strcmp(v, "qad") && strcmp(v, "kd") && strcmp(v, "lora"))
			return fail(rd, p, "expected a healing method: qat, qad, kd or lora");
		return true;
	case CHECK_METRIC:
		if (strcmp(v, "kl") && strcmp(v, "dppl"))
			return fail(rd, p, "expected kl or dppl");
		return true;
	case CHECK_NONE: return true;
	}
	return true;
}

static bool read_goal(reader *rd, const cJSON *o, const char *path, sl_lesson_goal *g)
{
	char p[160];
	if (!cJSON_IsObject(o))
		return fail(rd, path, "expected an object with a kind and its parameters");
	char kind[64] = "";
	if (!get_str(rd, o, path, "kind", kind, sizeof kind, true))
		return false;
	int k = 0;
	while (k < SL_GOAL_KINDS && strcmp(kinds[k].name, kind))
		k++;
	if (k == SL_GOAL_KINDS) {
		char list[400] = "";
		for (int i = 0; i < SL_GOAL_KINDS; i++)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", kinds[i].name);
		snprintf(p, sizeof p, "%s.kind", path);
		return fail(rd, p, "unknown goal kind '%s'; known: %s", kind, list);
	}
	memset(g, 0, sizeof *g);
	g->kind = (sl_goal_kind)k;
	g->sparsity_min = g->bpw_below = g->kl_below = g->acceptance_min = g->recovered_min = NAN;
	char known[400];
	snprintf(known, sizeof known, "kind%s%s%s%s", kinds[k].required[0] ? "," : "", kinds[k].required,
	         kinds[k].optional[0] ? "," : "", kinds[k].optional);
	const cJSON *e;
	cJSON_ArrayForEach(e, o)
	{
		if (!strcmp(e->string, "kind"))
			continue;
		snprintf(p, sizeof p, "%s.%.64s", path, e->string);
		const param_spec *ps = param_find(e->string);
		if (!ps || !in_list(known, e->string)) {
			for (char *c = known; (c = strchr(c, ',')); c++)
				*c = ' ';
			return fail(rd, p, "a %s goal takes no parameter '%s'; it takes: %s", kind, e->string, known + 5);
		}
		char *at = (char *)g + ps->off;
		switch (ps->type) {
		case P_STR:
			if (!cJSON_IsString(e) || !e->valuestring[0])
				return fail(rd, p, "expected a non-empty string");
			if (strlen(e->valuestring) >= ps->size)
				return fail(rd, p, "longer than the %zu bytes allowed", ps->size - 1);
			if (!check_value(rd, g->kind, ps, p, e->valuestring))
				return false;
			snprintf(at, ps->size, "%s", e->valuestring);
			break;
		case P_NUM:
		case P_INT:
			if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
				return fail(rd, p, "expected a number");
			if (e->valuedouble < ps->lo || e->valuedouble > ps->hi)
				return fail(rd, p, "%g is outside [%g, %g]", e->valuedouble, ps->lo, ps->hi);
			if (ps->type == P_INT) {
				if (e->valuedouble != floor(e->valuedouble))
					return fail(rd, p, "expected a whole number");
				*(int *)(void *)at = (int)e->valuedouble;
			} else {
				*(double *)(void *)at = e->valuedouble;
			}
			break;
		case P_BOOL:
			if (!cJSON_IsBool(e))
				return fail(rd, p, "expected true or false");
			*(bool *)(void *)at = cJSON_IsTrue(e);
			break;
		}
	}
	/* Required parameters. */
	for (const char *r = kinds[k].required; *r;) {
		const char *c = strchr(r, ',');
		size_t len = c ? (size_t)(c - r) : strlen(r);
		char name[32];
		snprintf(name, sizeof name, "%.*s", (int)len, r);
		if (!cJSON_GetObjectItemCaseSensitive(o, name)) {
			snprintf(p, sizeof p, "%s.%s", path, name);
			return fail(rd, p, "missing: a %s goal needs it", kind);
		}
		r += len + (c ? 1 : 0);
	}
	return true;
}

static bool read_step(reader *rd, const cJSON *o, int i, sl_lesson_step *s)
{
	char path[32];
	snprintf(path, sizeof path, "steps[%d]", i);
	if (!cJSON_IsObject(o))
		return fail(rd, path, "expected an object (text, goal, hint, hint_after, card)");
	if (!only_known(rd, o, path, "text,goal,hint,hint_after,card") || !get_text(rd, o, path, "text", &s->text, true) ||
	    !get_text(rd, o, path, "hint", &s->hint, false) || !get_str(rd, o, path, "card", s->card, sizeof s->card, false))
		return false;
	const cJSON *ha = cJSON_GetObjectItemCaseSensitive(o, "hint_after");
	s->hint_after = 60;
	if (ha) {
		if (!cJSON_IsNumber(ha) || !(ha->valuedouble >= 0 && ha->valuedouble <= 3600))
		{
			char hp[48];
			snprintf(hp, sizeof hp, "%s.hint_after", path);
			return fail(rd, hp, "expected seconds from 0 to 3600");
		}
		s->hint_after = ha->valuedouble;
	}
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "goal");
	char gp[48];
	snprintf(gp, sizeof gp, "%s.goal", path);
	if (!g)
		return fail(rd, gp, "missing");
	return read_goal(rd, g, gp, &s->goal);
}

void sl_lesson_free(sl_lesson *l)
{
	if (!l)
		return;
	for (int i = 0; i < l->n_steps; i++) {
		free(l->steps[i].text);
		free(l->steps[i].hint);
	}
	free(l->steps);
	free(l->intro);
	free(l);
}

static bool read_lesson(reader *rd, const cJSON *root, sl_lesson *l)
{
	if (!cJSON_IsObject(root))
		return fail(rd, "(top level)", "expected a JSON object");
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "slimlab_lesson");
	if (!ver)
		return fail(rd, "slimlab_lesson", "missing: this is not a slimlab lesson file");
	if (!cJSON_IsNumber(ver) || ver->valuedouble != floor(ver->valuedouble) || ver->valuedouble < 1)
		return fail(rd, "slimlab_lesson", "expected a version number (1)");
	if (ver->valuedouble > SL_LESSON_VERSION)
		return fail(rd, "slimlab_lesson",
		            "the file is lesson version %.0f, written for a newer slimlab; this one reads version %d",
		            ver->valuedouble > 1e9 ? 1e9 : ver->valuedouble, SL_LESSON_VERSION);
	if (!only_known(rd, root, "", "slimlab_lesson,name,title,model,intro,steps") ||
	    !get_str(rd, root, "", "name", l->name, sizeof l->name, true) ||
	    !get_str(rd, root, "", "title", l->title, sizeof l->title, true) ||
	    !get_str(rd, root, "", "model", l->model, sizeof l->model, true) ||
	    !get_text(rd, root, "", "intro", &l->intro, false))
		return false;
	for (const char *c = l->name; *c; c++)
		if (!(*c == '-' || *c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
			return fail(rd, "name", "expected lower-case letters, digits, '-' and '_' (it names the lesson)");
	const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
	if (!steps)
		return fail(rd, "steps", "missing");
	int n = cJSON_IsArray(steps) ? cJSON_GetArraySize(steps) : -1;
	if (n < 1 || n > SL_LESSON_MAX_STEPS)
		return fail(rd, "steps", "expected an array of 1 to %d steps", SL_LESSON_MAX_STEPS);
	if (!(l->steps = calloc((size_t)n, sizeof *l->steps)))
		return fail(rd, "steps", "out of memory");
	const cJSON *e;
	cJSON_ArrayForEach(e, steps)
	{
		if (!read_step(rd, e, l->n_steps, &l->steps[l->n_steps])) {
			l->n_steps++; /* its strings are freed with the lesson */
			return false;
		}
		l->n_steps++;
	}
	return true;
}

sl_status sl_lesson_parse(const char *json, size_t len, const char *origin, sl_lesson_name_ok view_ok,
                          sl_lesson **out, sl_error *err)
{
	*out = NULL;
	reader rd = {origin, err, SL_OK, view_ok};
	cJSON *root = cJSON_ParseWithLength(json, len);
	if (!root) {
		const char *at = cJSON_GetErrorPtr();
		long off = at && at >= json && at <= json + len ? (long)(at - json) : -1;
		int line = 1;
		for (long i = 0; i < off; i++)
			line += json[i] == '\n';
		return sl_errorf(err, SL_ERR_FORMAT, "%s: not valid JSON (near line %d, byte %ld)", origin, line, off);
	}
	sl_lesson *l = calloc(1, sizeof *l);
	if (!l) {
		cJSON_Delete(root);
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", origin);
	}
	bool ok = read_lesson(&rd, root, l);
	cJSON_Delete(root);
	if (!ok) {
		sl_lesson_free(l);
		return rd.st ? rd.st : sl_errorf(err, SL_ERR_FORMAT, "%s: not a lesson", origin);
	}
	*out = l;
	return SL_OK;
}

sl_status sl_lesson_load(const char *path, sl_lesson_name_ok view_ok, sl_lesson **out, sl_error *err)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	sl_status st = sl_read_file(path, SL_LESSON_MAX_BYTES, &text, &len, err);
	if (st)
		return st;
	st = sl_lesson_parse(text, len, path, view_ok, out, err);
	free(text);
	if (!st && !realpath(path, (*out)->path))
		snprintf((*out)->path, sizeof (*out)->path, "%s", path);
	return st;
}

/* --- goals in words ----------------------------------------------------------- */

#define ADD(...) snprintf(buf + strlen(buf), n - strlen(buf), __VA_ARGS__)

void sl_goal_describe(const sl_lesson_goal *g, char *buf, size_t n)
{
	if (!n)
		return;
	buf[0] = 0;
	switch (g->kind) {
	case SL_GOAL_VIEW: ADD("the %s view is shown", g->view); break;
	case SL_GOAL_SWEEP: ADD("a sensitivity sweep with every cell of %s measured", g->options); break;
	case SL_GOAL_CURSOR_MAX:
		ADD("the heatmap's cursor on the module with the highest %s under %s", g->metric[0] ? g->metric : "KL",
		    g->option);
		if (g->rows[0])
			ADD(" among the rows matching %s", g->rows);
		break;
	case SL_GOAL_EVALUATED:
		ADD("an evaluation of a recipe");
		if (g->format[0])
			ADD(" with every compressed module in %s", g->format);
		if (g->method[0])
			ADD(", quantized by %s", g->method);
		if (g->mixed)
			ADD(", mixing formats");
		if (g->prune[0])
			ADD(", pruned by %s", g->prune);
		if (g->pattern[0])
			ADD(", pruned in %s", g->pattern);
		if (!isnan(g->sparsity_min))
			ADD(", at least %.0f%% sparse", 100 * g->sparsity_min);
		if (!isnan(g->bpw_below))
			ADD(", under %g bpw", g->bpw_below);
		if (!isnan(g->kl_below))
			ADD(", KL under %g", g->kl_below);
		if (g->beats[0])
			ADD(", whose KL beats every module in %s rounded (measured on the same windows)", g->beats);
		break;
	case SL_GOAL_SPEC:
		ADD("a finished speculative run");
		if (g->draft[0])
			ADD(" with a draft of %s", g->draft);
		if (g->k)
			ADD(" at k %d", g->k);
		if (!isnan(g->acceptance_min))
			ADD(" accepting at least %.0f%% of the drafted tokens", 100 * g->acceptance_min);
		break;
	case SL_GOAL_HEAL:
		ADD("a finished %s healing run", g->method);
		if (!isnan(g->recovered_min))
			ADD(" recovering at least %.0f%% of the KL", 100 * g->recovered_min);
		break;
	case SL_GOAL_KINDS: break;
	}
}

/* --- where lessons are --------------------------------------------------------- */

int sl_lesson_dirs(char (*dirs)[4096], int max)
{
	int n = 0;
	char f[PATH_MAX];
	/* The shipped folder holds a README beside the lessons. */
	if (n < max && sl_shipped_find("data/lessons/README.md", f, sizeof f, NULL) == SL_OK) {
		sl_path_dir(f, dirs[n], sizeof dirs[n]);
		n++;
	}
	char data[PATH_MAX - 16];
	if (n < max && sl_data_dir(data, sizeof data, NULL) == SL_OK) {
		snprintf(dirs[n], sizeof dirs[n], "%s/lessons", data);
		if (sl_is_dir(dirs[n]))
			n++;
	}
	return n;
}

sl_status sl_lesson_find(const char *name, char *path, size_t n, sl_error *err)
{
	if (strchr(name, '/') || (strlen(name) > 5 && !strcmp(name + strlen(name) - 5, ".json"))) {
		if (!sl_file_exists(name))
			return sl_errorf(err, SL_ERR_IO, "%s: no such lesson file", name);
		snprintf(path, n, "%s", name);
		return SL_OK;
	}
	char dirs[2][4096];
	int nd = sl_lesson_dirs(dirs, 2);
	for (int i = nd - 1; i >= 0; i--) {
		char f[2 * PATH_MAX + 16];
		snprintf(f, sizeof f, "%s/%s.json", dirs[i], name);
		if (sl_file_exists(f)) {
			snprintf(path, n, "%s", f);
			return SL_OK;
		}
	}
	return sl_errorf(err, SL_ERR_ARG, "no lesson is called '%s' ('slimlab lesson list' shows them; a lesson file "
	                                  "is named by its path, FILE.json)", name);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void sl_lesson_each(void (*fn)(const char *path, void *ctx), void *ctx)
{
	char dirs[2][4096];
	int nd = sl_lesson_dirs(dirs, 2);
	for (int i = 0; i < nd; i++) {
		DIR *d = opendir(dirs[i]);
		if (!d)
			continue;
		char *names[512];
		int k = 0;
		struct dirent *e;
		while ((e = readdir(d)) && k < 512) {
			size_t len = strlen(e->d_name);
			if (len > 5 && !strcmp(e->d_name + len - 5, ".json") && e->d_name[0] != '.' &&
			    (names[k] = sl_strdup(e->d_name)))
				k++;
		}
		closedir(d);
		qsort(names, (size_t)k, sizeof *names, by_name);
		for (int j = 0; j < k; j++) {
			char f[2 * PATH_MAX + 16];
			snprintf(f, sizeof f, "%s/%s", dirs[i], names[j]);
			fn(f, ctx);
			free(names[j]);
		}
	}
}

sl_status sl_lesson_model(const sl_lesson *l, char *path, size_t n, sl_error *err)
{
	if (l->model[0] == '/') {
		if (!sl_file_exists(l->model) && !sl_is_dir(l->model))
			return sl_errorf(err, SL_ERR_IO, "%s: the lesson's model %s does not exist", l->path, l->model);
		snprintf(path, n, "%s", l->model);
		return SL_OK;
	}
	char dir[PATH_MAX], f[PATH_MAX];
	sl_path_dir(l->path, dir, sizeof dir);
	if (sl_path_join(f, sizeof f, dir, l->model) && (sl_file_exists(f) || sl_is_dir(f))) {
		snprintf(path, n, "%s", f);
		return SL_OK;
	}
	if (sl_shipped_find(l->model, path, n, NULL) == SL_OK)
		return SL_OK;
	return sl_errorf(err, SL_ERR_IO,
	                 "%s: the lesson's model %s is neither beside the lesson nor among the files that ship "
	                 "with slimlab",
	                 l->path, l->model);
}

/* --- the handout --------------------------------------------------------------- */

char *sl_lesson_handout(const sl_lesson *l)
{
	sl_buf b = {0};
	char line[2048], goal[1024];
	int k = snprintf(line, sizeof line, "# %s\n\nA slimlab lesson (`slimlab lesson %s`) on the model `%s`.\n\n",
	                 l->title, l->name, l->model);
	bool ok = sl_buf_put(&b, line, (size_t)k);
	if (l->intro[0])
		ok = ok && sl_buf_put(&b, l->intro, strlen(l->intro)) && sl_buf_put(&b, "\n\n", 2);
	for (int i = 0; ok && i < l->n_steps; i++) {
		const sl_lesson_step *s = &l->steps[i];
		sl_goal_describe(&s->goal, goal, sizeof goal);
		k = snprintf(line, sizeof line, "## Step %d\n\n", i + 1);
		ok = sl_buf_put(&b, line, (size_t)k) && sl_buf_put(&b, s->text, strlen(s->text));
		k = snprintf(line, sizeof line, "\n\n**Goal:** %s.\n", goal);
		ok = ok && sl_buf_put(&b, line, (size_t)k);
		if (ok && s->card[0]) {
			k = snprintf(line, sizeof line, "\n**Card:** %s\n", s->card);
			ok = sl_buf_put(&b, line, (size_t)k);
		}
		if (ok && s->hint[0]) {
			k = snprintf(line, sizeof line, "\n**Hint:** ");
			ok = sl_buf_put(&b, line, (size_t)k) && sl_buf_put(&b, s->hint, strlen(s->hint)) && sl_buf_put(&b, "\n", 1);
		}
		ok = ok && sl_buf_put(&b, "\n", 1);
	}
	if (!ok || !sl_buf_put(&b, "", 1)) {
		free(b.data);
		return NULL;
	}
	return b.data;
}
