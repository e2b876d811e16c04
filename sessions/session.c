/* The session file: building it, reading it back with every field checked,
 * and the undo and redo stacks of its recipe and healed model. */
#include "session.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/sweep/sweep.h"

sl_session *sl_session_new(void)
{
	sl_session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->version = SL_SESSION_VERSION;
	s->recipe = sl_recipe_new();
	s->notes = sl_strdup("");
	if (!s->recipe || !s->notes) {
		sl_session_free(s);
		return NULL;
	}
	s->settings.ctx = 128;
	s->settings.chunks = 32; /* 4096 tokens: seconds on a small model, not minutes */
	s->settings.stats_tokens = 4096;
	snprintf(s->view.current, sizeof s->view.current, "model");
	snprintf(s->view.prompt, sizeof s->view.prompt, "Once upon a time");
	s->view.gen_tokens = 64;
	snprintf(s->view.heat.metric, sizeof s->view.heat.metric, "kl");
	snprintf(s->view.heat.sort, sizeof s->view.heat.sort, "block");
	return s;
}

static void step_free(sl_session_step *st)
{
	sl_recipe_free(st->recipe);
	free(st->healed);
}

static void clear_stack(sl_session_step *st, int *n)
{
	for (int i = 0; i < *n; i++)
		step_free(&st[i]);
	*n = 0;
}

static void run_free(sl_run *run)
{
	free(run->recipe_json);
	free(run->text_path);
}

void sl_session_free(sl_session *s)
{
	if (!s)
		return;
	sl_recipe_free(s->recipe);
	clear_stack(s->undo, &s->n_undo);
	clear_stack(s->redo, &s->n_redo);
	free(s->undo);
	free(s->redo);
	for (int i = 0; i < s->n_runs; i++)
		run_free(&s->runs[i]);
	free(s->runs);
	free(s->notes);
	cJSON_Delete(s->sweep);
	cJSON_Delete(s->lesson);
	free(s);
}

/* --- writing ------------------------------------------------------------ */

static void add_finite(cJSON *o, const char *key, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(o, key, v);
}

static cJSON *spec_to_json(const sl_spec_run *sp)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "draft", sp->draft);
	cJSON_AddNumberToObject(o, "k", sp->k);
	add_finite(o, "temperature", sp->temp);
	cJSON_AddNumberToObject(o, "generated", (double)sp->generated);
	cJSON_AddNumberToObject(o, "passes", (double)sp->passes);
	add_finite(o, "acceptance", sp->acceptance);
	add_finite(o, "token_acceptance", sp->token_acceptance);
	add_finite(o, "tokens_per_pass", sp->tokens_per_pass);
	add_finite(o, "tokens_per_second", sp->tps);
	add_finite(o, "target_tokens_per_second", sp->target_tps);
	add_finite(o, "speedup", sp->speedup);
	add_finite(o, "predicted_speedup", sp->predicted_speedup);
	add_finite(o, "predicted_speedup_costed", sp->predicted_costed);
	if (sp->has_predicted)
		add_finite(o, "predicted_acceptance", sp->predicted_acceptance);
	if (sp->cancelled)
		cJSON_AddBoolToObject(o, "cancelled", true);
	return o;
}

static cJSON *run_to_json(const sl_run *run)
{
	const sl_eval_result *r = &run->r;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "when", run->when);
	cJSON_AddStringToObject(o, "model", run->model);
	cJSON_AddStringToObject(o, "recipe", run->recipe);
	cJSON_AddStringToObject(o, "recipe_summary", run->recipe_summary);
	cJSON_AddStringToObject(o, "text", run->text);
	if (run->text_path)
		cJSON_AddStringToObject(o, "text_path", run->text_path);
	add_finite(o, "bpw", run->bpw);
	add_finite(o, "bytes", run->bytes);
	if (run->has_predicted)
		add_finite(o, "predicted_kl", run->predicted_kl);
	if (run->recipe_json)
		cJSON_AddItemToObject(o, "recipe_used", cJSON_Parse(run->recipe_json));
	if (run->speculative) {
		cJSON_AddItemToObject(o, "speculative", spec_to_json(&run->spec));
		return o;
	}
	cJSON_AddNumberToObject(o, "ctx", r->n_ctx);
	cJSON_AddNumberToObject(o, "chunks", r->n_chunks);
	cJSON_AddNumberToObject(o, "tokens_scored", (double)r->n_scored);
	add_finite(o, "nll", r->nll);
	add_finite(o, "ppl", r->ppl);
	add_finite(o, "ppl_se", r->ppl_se);
	if (r->has_base) {
		add_finite(o, "base_ppl", r->base_ppl);
		add_finite(o, "delta_ppl", r->delta_ppl);
		add_finite(o, "kl_mean", r->kl_mean);
		add_finite(o, "kl_se", r->kl_se);
		add_finite(o, "kl_median", r->kl_median);
		add_finite(o, "kl_p99", r->kl_p99);
		add_finite(o, "kl_max", r->kl_max);
		add_finite(o, "top1", r->top1);
		add_finite(o, "acceptance", r->acceptance);
	}
	add_finite(o, "seconds", r->seconds);
	return o;
}

char *sl_session_to_json(const sl_session *s, bool autosave)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "slimlab_session", SL_SESSION_VERSION);
	cJSON *m = cJSON_AddObjectToObject(o, "model");
	cJSON_AddStringToObject(m, "path", s->model_path);
	cJSON_AddStringToObject(m, "sha256", s->model_sha256);
	char *rj = sl_recipe_to_json(s->recipe);
	cJSON *recipe = rj ? cJSON_Parse(rj) : NULL;
	free(rj);
	if (!recipe) {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddItemToObject(o, "recipe", recipe);
	if (s->healed.model[0]) {
		cJSON *h = cJSON_AddObjectToObject(o, "healed");
		cJSON_AddStringToObject(h, "model", s->healed.model);
		cJSON_AddStringToObject(h, "sha256", s->healed.sha256);
		cJSON_AddStringToObject(h, "label", s->healed.label);
	}
	cJSON *st = cJSON_AddObjectToObject(o, "settings");
	cJSON_AddStringToObject(st, "calibration_text", s->settings.calib_text);
	cJSON_AddStringToObject(st, "evaluation_text", s->settings.eval_text);
	cJSON_AddNumberToObject(st, "ctx", s->settings.ctx);
	cJSON_AddNumberToObject(st, "chunks", s->settings.chunks);
	cJSON_AddNumberToObject(st, "stats_tokens", s->settings.stats_tokens);
	cJSON *runs = cJSON_AddArrayToObject(o, "runs");
	for (int i = 0; i < s->n_runs; i++)
		cJSON_AddItemToArray(runs, run_to_json(&s->runs[i]));
	cJSON_AddStringToObject(o, "notes", s->notes);
	cJSON *v = cJSON_AddObjectToObject(o, "view");
	cJSON_AddStringToObject(v, "current", s->view.current);
	cJSON *pos = cJSON_AddArrayToObject(v, "positions");
	for (int i = 0; i < s->view.n_pos; i++) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "name", s->view.pos[i].name);
		cJSON_AddNumberToObject(p, "cursor", s->view.pos[i].cursor);
		cJSON_AddNumberToObject(p, "top", s->view.pos[i].top);
		cJSON_AddItemToArray(pos, p);
	}
	cJSON_AddStringToObject(v, "inspect", s->view.inspect);
	cJSON_AddStringToObject(v, "prompt", s->view.prompt);
	cJSON_AddNumberToObject(v, "gen_tokens", s->view.gen_tokens);
	cJSON_AddNumberToObject(v, "temperature", s->view.temp);
	cJSON *h = cJSON_AddObjectToObject(v, "heatmap");
	cJSON_AddStringToObject(h, "metric", s->view.heat.metric);
	cJSON_AddStringToObject(h, "sort", s->view.heat.sort);
	cJSON_AddNumberToObject(h, "sort_option", s->view.heat.sort_col);
	cJSON_AddStringToObject(h, "filter", s->view.heat.filter);
	if (s->sweep)
		cJSON_AddItemToObject(o, "sweep", cJSON_Duplicate(s->sweep, true));
	if (s->lesson)
		cJSON_AddItemToObject(o, "lesson", cJSON_Duplicate(s->lesson, true));
	if (autosave) {
		cJSON *a = cJSON_AddObjectToObject(o, "autosave");
		cJSON_AddStringToObject(a, "session_path", s->path);
		cJSON_AddBoolToObject(a, "dirty", s->dirty);
	}
	char *out = cJSON_Print(o);
	cJSON_Delete(o);
	return out;
}

sl_status sl_session_write(const sl_session *s, const char *path, bool autosave, sl_error *err)
{
	char *json = sl_session_to_json(s, autosave);
	if (!json)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory while writing the session", path);
	size_t len = strlen(json);
	json[len] = '\n'; /* replaces the terminator: the file ends with a newline */
	sl_status st = sl_write_file_atomic(path, json, len + 1, err);
	free(json);
	return st;
}

sl_status sl_session_save(sl_session *s, const char *path, sl_error *err)
{
	if (strlen(path) >= sizeof s->path)
		return sl_errorf(err, SL_ERR_ARG, "%.64s...: the path is too long", path);
	char keep[sizeof s->path];
	snprintf(keep, sizeof keep, "%s", s->path);
	snprintf(s->path, sizeof s->path, "%s", path);
	sl_status st = sl_session_write(s, path, false, err);
	if (st) {
		snprintf(s->path, sizeof s->path, "%s", keep);
		return st;
	}
	s->dirty = false;
	return SL_OK;
}

/* --- reading ------------------------------------------------------------ */

typedef struct {
	const char *origin;
	sl_error *err;
	sl_status st;
} reader;

static bool fail(reader *rd, sl_status st, const char *path, const char *what)
{
	if (!rd->st)
		rd->st = sl_errorf(rd->err, st, "%s: %s: %s", rd->origin, path, what);
	return false;
}

/* The member key of o, or NULL (a failure when required). */
static const cJSON *member(reader *rd, const cJSON *o, const char *path, const char *key, bool required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v && required) {
		char p[128];
		snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
		fail(rd, SL_ERR_FORMAT, p, "missing");
	}
	return v;
}

static void join(char *buf, size_t n, const char *path, const char *key)
{
	snprintf(buf, n, "%s%s%s", path, *path ? "." : "", key);
}

static bool get_str(reader *rd, const cJSON *o, const char *path, const char *key, char *dst, size_t n,
                    bool required)
{
	const cJSON *v = member(rd, o, path, key, required);
	if (!v)
		return !required;
	char p[128];
	join(p, sizeof p, path, key);
	if (!cJSON_IsString(v))
		return fail(rd, SL_ERR_FORMAT, p, "expected a string");
	size_t len = strlen(v->valuestring);
	if (len >= n) {
		char msg[80];
		snprintf(msg, sizeof msg, "longer than the %zu bytes allowed", n - 1);
		return fail(rd, SL_ERR_FORMAT, p, msg);
	}
	memcpy(dst, v->valuestring, len + 1);
	return true;
}

static bool get_num(reader *rd, const cJSON *o, const char *path, const char *key, double lo, double hi,
                    double *dst)
{
	const cJSON *v = member(rd, o, path, key, false);
	if (!v)
		return true;
	char p[128];
	join(p, sizeof p, path, key);
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return fail(rd, SL_ERR_FORMAT, p, "expected a number");
	if (v->valuedouble < lo || v->valuedouble > hi) {
		char msg[96];
		snprintf(msg, sizeof msg, "%g is outside [%g, %g]", v->valuedouble, lo, hi);
		return fail(rd, SL_ERR_FORMAT, p, msg);
	}
	*dst = v->valuedouble;
	return true;
}

static bool get_int(reader *rd, const cJSON *o, const char *path, const char *key, int lo, int hi, int *dst)
{
	double d = *dst;
	if (!get_num(rd, o, path, key, lo, hi, &d))
		return false;
	if (d != floor(d)) {
		char p[128];
		join(p, sizeof p, path, key);
		return fail(rd, SL_ERR_FORMAT, p, "expected a whole number");
	}
	*dst = (int)d;
	return true;
}

static const cJSON *get_obj(reader *rd, const cJSON *o, const char *path, const char *key, bool required)
{
	const cJSON *v = member(rd, o, path, key, required);
	if (v && !cJSON_IsObject(v)) {
		char p[128];
		join(p, sizeof p, path, key);
		fail(rd, SL_ERR_FORMAT, p, "expected an object");
		return NULL;
	}
	return v;
}

static const cJSON *get_array(reader *rd, const cJSON *o, const char *key, int max)
{
	const cJSON *v = member(rd, o, "", key, false);
	if (!v)
		return NULL;
	if (!cJSON_IsArray(v)) {
		fail(rd, SL_ERR_FORMAT, key, "expected an array");
		return NULL;
	}
	if (cJSON_GetArraySize(v) > max) {
		char msg[64];
		snprintf(msg, sizeof msg, "more than %d entries", max);
		fail(rd, SL_ERR_FORMAT, key, msg);
		return NULL;
	}
	return v;
}

/* The recipe object at path, parsed by the recipe's own reader; NULL
 * (the reader failed with its problem) when it is not a valid recipe. */
static sl_recipe *read_recipe(reader *rd, const cJSON *obj, const char *path)
{
	char *rj = cJSON_PrintUnformatted(obj);
	if (!rj) {
		fail(rd, SL_ERR_NOMEM, path, "out of memory");
		return NULL;
	}
	sl_recipe *r = NULL;
	sl_error rerr = {0};
	sl_status st = sl_recipe_parse(rj, strlen(rj), &r, &rerr);
	free(rj);
	if (st) {
		fail(rd, st, path, rerr.msg);
		return NULL;
	}
	return r;
}

static bool is_sha256(const char *h)
{
	if (strlen(h) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return true;
}

static bool read_spec(reader *rd, const cJSON *o, const char *run_path, sl_spec_run *sp)
{
	char p[48];
	join(p, sizeof p, run_path, "speculative");
	double generated = 0, passes = 0;
	const double big = 1e300;
	sp->has_predicted = cJSON_GetObjectItemCaseSensitive(o, "predicted_acceptance") != NULL;
	sp->cancelled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "cancelled"));
	sp->token_acceptance = sp->predicted_costed = NAN; /* absent in sessions of earlier versions */
	bool ok = get_str(rd, o, p, "draft", sp->draft, sizeof sp->draft, false) &&
	          get_int(rd, o, p, "k", 1, 64, &sp->k) &&
	          get_num(rd, o, p, "temperature", 0, 100, &sp->temp) &&
	          get_num(rd, o, p, "generated", 0, 1e15, &generated) &&
	          get_num(rd, o, p, "passes", 0, 1e15, &passes) &&
	          get_num(rd, o, p, "acceptance", 0, 1, &sp->acceptance) &&
	          get_num(rd, o, p, "token_acceptance", 0, 1, &sp->token_acceptance) &&
	          get_num(rd, o, p, "tokens_per_pass", 0, 65, &sp->tokens_per_pass) &&
	          get_num(rd, o, p, "tokens_per_second", 0, big, &sp->tps) &&
	          get_num(rd, o, p, "target_tokens_per_second", 0, big, &sp->target_tps) &&
	          get_num(rd, o, p, "speedup", 0, big, &sp->speedup) &&
	          get_num(rd, o, p, "predicted_speedup", 0, big, &sp->predicted_speedup) &&
	          get_num(rd, o, p, "predicted_speedup_costed", 0, big, &sp->predicted_costed) &&
	          (!sp->has_predicted || get_num(rd, o, p, "predicted_acceptance", 0, 1, &sp->predicted_acceptance));
	sp->generated = (long long)generated;
	sp->passes = (long long)passes;
	return ok;
}

static bool read_run(reader *rd, const cJSON *o, int i, sl_run *run)
{
	char p[32];
	snprintf(p, sizeof p, "runs[%d]", i);
	if (!cJSON_IsObject(o))
		return fail(rd, SL_ERR_FORMAT, p, "expected an object");
	memset(run, 0, sizeof *run);
	sl_eval_result *r = &run->r;
	double scored = 0;
	const double big = 1e300;
	char text_path[4096] = "";
	bool ok = get_str(rd, o, p, "when", run->when, sizeof run->when, false) &&
	          get_str(rd, o, p, "model", run->model, sizeof run->model, false) &&
	          get_str(rd, o, p, "recipe", run->recipe, sizeof run->recipe, false) &&
	          get_str(rd, o, p, "recipe_summary", run->recipe_summary, sizeof run->recipe_summary, false) &&
	          get_str(rd, o, p, "text", run->text, sizeof run->text, false) &&
	          get_str(rd, o, p, "text_path", text_path, sizeof text_path, false) &&
	          get_num(rd, o, p, "bpw", 0, 64, &run->bpw) &&
	          get_num(rd, o, p, "bytes", 0, big, &run->bytes) &&
	          get_int(rd, o, p, "ctx", 0, 1 << 24, &r->n_ctx) &&
	          get_int(rd, o, p, "chunks", 0, 1 << 30, &r->n_chunks) &&
	          get_num(rd, o, p, "tokens_scored", 0, 1e15, &scored) &&
	          get_num(rd, o, p, "nll", 0, big, &r->nll) &&
	          get_num(rd, o, p, "ppl", 0, big, &r->ppl) &&
	          get_num(rd, o, p, "ppl_se", 0, big, &r->ppl_se) &&
	          get_num(rd, o, p, "seconds", 0, big, &r->seconds);
	if (!ok)
		return false;
	run->has_predicted = cJSON_GetObjectItemCaseSensitive(o, "predicted_kl") != NULL;
	if (run->has_predicted && !get_num(rd, o, p, "predicted_kl", 0, big, &run->predicted_kl))
		return false;
	r->n_scored = (long long)scored;
	r->has_base = cJSON_GetObjectItemCaseSensitive(o, "kl_mean") != NULL;
	r->acceptance = NAN;
	if (r->has_base)
		ok = get_num(rd, o, p, "base_ppl", 0, big, &r->base_ppl) &&
		     get_num(rd, o, p, "delta_ppl", -big, big, &r->delta_ppl) &&
		     get_num(rd, o, p, "kl_mean", 0, big, &r->kl_mean) &&
		     get_num(rd, o, p, "kl_se", 0, big, &r->kl_se) &&
		     get_num(rd, o, p, "kl_median", 0, big, &r->kl_median) &&
		     get_num(rd, o, p, "kl_p99", 0, big, &r->kl_p99) &&
		     get_num(rd, o, p, "kl_max", 0, big, &r->kl_max) &&
		     get_num(rd, o, p, "top1", 0, 1, &r->top1) &&
		     get_num(rd, o, p, "acceptance", 0, 1, &r->acceptance);
	const cJSON *spec = ok ? get_obj(rd, o, p, "speculative", false) : NULL;
	if (spec && !read_spec(rd, spec, p, &run->spec))
		return false;
	run->speculative = spec != NULL;
	/* Last, so that a run that fails owns nothing. */
	const cJSON *used = ok ? get_obj(rd, o, p, "recipe_used", false) : NULL;
	if (used) {
		char up[64];
		join(up, sizeof up, p, "recipe_used");
		sl_recipe *rc = read_recipe(rd, used, up);
		if (!rc)
			return false;
		run->recipe_json = sl_recipe_to_json(rc);
		sl_recipe_free(rc);
		if (!run->recipe_json)
			return fail(rd, SL_ERR_NOMEM, up, "out of memory");
	}
	if (ok && text_path[0] && !(run->text_path = sl_strdup(text_path))) {
		free(run->recipe_json);
		run->recipe_json = NULL;
		return fail(rd, SL_ERR_NOMEM, p, "out of memory");
	}
	return ok && !rd->st;
}

static bool one_word_of(const char *v, const char *a, const char *b, const char *c)
{
	return !strcmp(v, a) || !strcmp(v, b) || !strcmp(v, c);
}

static bool read_heat(reader *rd, const cJSON *h, sl_session *s)
{
	const char *p = "view.heatmap";
	if (!get_str(rd, h, p, "metric", s->view.heat.metric, sizeof s->view.heat.metric, false) ||
	    !get_str(rd, h, p, "sort", s->view.heat.sort, sizeof s->view.heat.sort, false) ||
	    !get_int(rd, h, p, "sort_option", 0, 1 << 20, &s->view.heat.sort_col) ||
	    !get_str(rd, h, p, "filter", s->view.heat.filter, sizeof s->view.heat.filter, false))
		return false;
	if (sl_sweep_metric_find(s->view.heat.metric) < 0)
		return fail(rd, SL_ERR_FORMAT, "view.heatmap.metric", "expected kl, dppl, top1 or accept");
	if (!one_word_of(s->view.heat.sort, "block", "metric", "params"))
		return fail(rd, SL_ERR_FORMAT, "view.heatmap.sort", "expected block, metric or params");
	return true;
}

static bool read_view(reader *rd, const cJSON *v, sl_session *s)
{
	if (!get_str(rd, v, "view", "current", s->view.current, sizeof s->view.current, false) ||
	    !get_str(rd, v, "view", "inspect", s->view.inspect, sizeof s->view.inspect, false) ||
	    !get_str(rd, v, "view", "prompt", s->view.prompt, sizeof s->view.prompt, false) ||
	    !get_int(rd, v, "view", "gen_tokens", 1, 1 << 16, &s->view.gen_tokens) ||
	    !get_num(rd, v, "view", "temperature", 0, 100, &s->view.temp))
		return false;
	const cJSON *h = get_obj(rd, v, "view", "heatmap", false);
	if (rd->st || (h && !read_heat(rd, h, s)))
		return false;
	const cJSON *pos = member(rd, v, "view", "positions", false);
	if (!pos)
		return true;
	if (!cJSON_IsArray(pos) || cJSON_GetArraySize(pos) > SL_SESSION_MAX_VIEWS)
		return fail(rd, SL_ERR_FORMAT, "view.positions", "expected an array of at most 16 entries");
	const cJSON *e;
	cJSON_ArrayForEach(e, pos)
	{
		char p[32];
		snprintf(p, sizeof p, "view.positions[%d]", s->view.n_pos);
		sl_view_pos *vp = &s->view.pos[s->view.n_pos];
		if (!cJSON_IsObject(e))
			return fail(rd, SL_ERR_FORMAT, p, "expected an object");
		if (!get_str(rd, e, p, "name", vp->name, sizeof vp->name, true) ||
		    !get_int(rd, e, p, "cursor", 0, 1 << 30, &vp->cursor) ||
		    !get_int(rd, e, p, "top", 0, 1 << 30, &vp->top))
			return false;
		s->view.n_pos++;
	}
	return true;
}

static bool read_session(reader *rd, const cJSON *root, sl_session *s)
{
	if (!cJSON_IsObject(root))
		return fail(rd, SL_ERR_FORMAT, "(top level)", "expected a JSON object");
	const cJSON *ver = member(rd, root, "", "slimlab_session", false);
	if (!ver)
		return fail(rd, SL_ERR_FORMAT, "slimlab_session", "missing: this is not a slimlab session file");
	if (!cJSON_IsNumber(ver) || ver->valuedouble != floor(ver->valuedouble) || ver->valuedouble < 1)
		return fail(rd, SL_ERR_FORMAT, "slimlab_session", "expected a version number (1, 2, ...)");
	if (ver->valuedouble > SL_SESSION_VERSION) {
		char msg[160];
		snprintf(msg, sizeof msg,
		         "the file is session version %.0f, written by a newer slimlab; this one reads version %d. "
		         "Open it with a newer slimlab",
		         ver->valuedouble > 1e9 ? 1e9 : ver->valuedouble, SL_SESSION_VERSION);
		return fail(rd, SL_ERR_UNSUPPORTED, "slimlab_session", msg);
	}
	const cJSON *m = get_obj(rd, root, "", "model", true);
	if (!m || !get_str(rd, m, "model", "path", s->model_path, sizeof s->model_path, true) ||
	    !get_str(rd, m, "model", "sha256", s->model_sha256, sizeof s->model_sha256, true))
		return false;
	if (!is_sha256(s->model_sha256))
		return fail(rd, SL_ERR_FORMAT, "model.sha256", "expected 64 lower-case hex digits");

	const cJSON *recipe = get_obj(rd, root, "", "recipe", true);
	if (!recipe)
		return false;
	sl_recipe *r = read_recipe(rd, recipe, "recipe");
	if (!r)
		return false;
	sl_recipe_free(s->recipe);
	s->recipe = r;
	const cJSON *healed = get_obj(rd, root, "", "healed", false);
	if (rd->st)
		return false;
	if (healed) {
		sl_healed *h = &s->healed;
		if (!get_str(rd, healed, "healed", "model", h->model, sizeof h->model, true) ||
		    !get_str(rd, healed, "healed", "sha256", h->sha256, sizeof h->sha256, true) ||
		    !get_str(rd, healed, "healed", "label", h->label, sizeof h->label, false))
			return false;
		if (!h->model[0])
			return fail(rd, SL_ERR_FORMAT, "healed.model", "expected the healed model's file");
		if (!is_sha256(h->sha256))
			return fail(rd, SL_ERR_FORMAT, "healed.sha256", "expected 64 lower-case hex digits");
	}

	const cJSON *set = get_obj(rd, root, "", "settings", false);
	if (rd->st)
		return false;
	if (set && (!get_str(rd, set, "settings", "calibration_text", s->settings.calib_text,
	                     sizeof s->settings.calib_text, false) ||
	            !get_str(rd, set, "settings", "evaluation_text", s->settings.eval_text,
	                     sizeof s->settings.eval_text, false) ||
	            !get_int(rd, set, "settings", "ctx", 4, 1 << 20, &s->settings.ctx) ||
	            !get_int(rd, set, "settings", "chunks", 0, 1 << 30, &s->settings.chunks) ||
	            !get_int(rd, set, "settings", "stats_tokens", 2, 1 << 26, &s->settings.stats_tokens)))
		return false;

	const cJSON *runs = get_array(rd, root, "runs", SL_SESSION_MAX_RUNS);
	if (rd->st)
		return false;
	if (runs) {
		int n = cJSON_GetArraySize(runs);
		s->runs = sl_calloc((size_t)n, sizeof *s->runs);
		if (!s->runs)
			return fail(rd, SL_ERR_NOMEM, "runs", "out of memory");
		const cJSON *e;
		cJSON_ArrayForEach(e, runs)
		{
			if (!read_run(rd, e, s->n_runs, &s->runs[s->n_runs]))
				return false;
			s->n_runs++;
		}
	}

	const cJSON *notes = member(rd, root, "", "notes", false);
	if (notes) {
		if (!cJSON_IsString(notes))
			return fail(rd, SL_ERR_FORMAT, "notes", "expected a string");
		char *n = sl_strdup(notes->valuestring);
		if (!n)
			return fail(rd, SL_ERR_NOMEM, "notes", "out of memory");
		free(s->notes);
		s->notes = n;
	}
	const cJSON *v = get_obj(rd, root, "", "view", false);
	if (rd->st || (v && !read_view(rd, v, s)))
		return false;
	/* The sweep's cells are checked where it is restored, against the
	 * model; here only that it is one. */
	const cJSON *sw = get_obj(rd, root, "", "sweep", false);
	if (rd->st)
		return false;
	if (sw) {
		const cJSON *kind = cJSON_GetObjectItemCaseSensitive(sw, "slimlab_sweep");
		if (!cJSON_IsNumber(kind) || kind->valuedouble != 1)
			return fail(rd, SL_ERR_FORMAT, "sweep.slimlab_sweep", "expected 1: this is not a saved sweep");
		if (!(s->sweep = cJSON_Duplicate(sw, true)))
			return fail(rd, SL_ERR_NOMEM, "sweep", "out of memory");
	}
	/* A lesson's progress is read where the lesson resumes, against the
	 * lesson's file; here only that it is one. */
	const cJSON *les = get_obj(rd, root, "", "lesson", false);
	if (rd->st)
		return false;
	if (les) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(les, "name");
		if (!cJSON_IsString(name))
			return fail(rd, SL_ERR_FORMAT, "lesson.name", "expected the lesson's name");
		if (!(s->lesson = cJSON_Duplicate(les, true)))
			return fail(rd, SL_ERR_NOMEM, "lesson", "out of memory");
	}
	const cJSON *a = get_obj(rd, root, "", "autosave", false);
	if (rd->st)
		return false;
	if (a) {
		if (!get_str(rd, a, "autosave", "session_path", s->path, sizeof s->path, false))
			return false;
		const cJSON *dirty = cJSON_GetObjectItemCaseSensitive(a, "dirty");
		s->dirty = cJSON_IsTrue(dirty); /* work the user had not saved yet */
		s->recovered = true;
	}
	return true;
}

/* Whether text stops inside a string or an open object or array: what a
 * file cut short looks like (its start may still be well-formed). */
static bool unclosed(const char *text, size_t len)
{
	int depth = 0;
	bool in_string = false, escaped = false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return in_string || depth > 0;
}

sl_status sl_session_parse(const char *json, size_t len, const char *origin, sl_session **out, sl_error *err)
{
	*out = NULL;
	if (len == 0)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: the file is empty", origin);
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!root) {
		size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : len;
		if (unclosed(json, len))
			return sl_errorf(err, SL_ERR_FORMAT, "%s: the JSON ends early (at byte %zu): the file is truncated",
			                 origin, len);
		return sl_errorf(err, SL_ERR_FORMAT, "%s: not valid JSON near byte %zu of %zu: the file is damaged",
		                 origin, at, len);
	}
	sl_session *s = sl_session_new();
	if (!s) {
		cJSON_Delete(root);
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", origin);
	}
	reader rd = {origin, err, SL_OK};
	bool ok = read_session(&rd, root, s);
	cJSON_Delete(root);
	if (!ok) {
		sl_session_free(s);
		return rd.st;
	}
	*out = s;
	return SL_OK;
}

sl_status sl_session_load(const char *path, sl_session **out, sl_error *err)
{
	*out = NULL;
	char *data;
	size_t len;
	sl_status st = sl_read_file(path, SL_SESSION_MAX_BYTES, &data, &len, err);
	if (st)
		return st;
	sl_session *s;
	st = sl_session_parse(data, len, path, &s, err);
	free(data);
	if (st)
		return st;
	/* An autosave carries the path of the session it recovers. */
	if (!s->recovered)
		snprintf(s->path, sizeof s->path, "%s", path);
	*out = s;
	return SL_OK;
}

/* --- changes ------------------------------------------------------------ */

sl_status sl_session_add_run(sl_session *s, const sl_run *run, sl_error *err)
{
	if (s->n_runs >= SL_SESSION_MAX_RUNS)
		return sl_errorf(err, SL_ERR_ARG, "the session holds %d runs already; remove some first",
		                 SL_SESSION_MAX_RUNS);
	sl_run *r = realloc(s->runs, (size_t)(s->n_runs + 1) * sizeof *r);
	if (!r)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the run history");
	s->runs = r;
	char *json = NULL, *text = NULL;
	if ((run->recipe_json && !(json = sl_strdup(run->recipe_json))) ||
	    (run->text_path && !(text = sl_strdup(run->text_path)))) {
		free(json);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the run history");
	}
	s->runs[s->n_runs] = *run;
	s->runs[s->n_runs].recipe_json = json;
	s->runs[s->n_runs++].text_path = text;
	s->dirty = true;
	return SL_OK;
}

bool sl_run_same_measure(const sl_run *a, const sl_run *b)
{
	if (a->speculative || b->speculative || a->r.n_chunks != b->r.n_chunks || a->r.n_ctx != b->r.n_ctx)
		return false;
	if (a->text_path || b->text_path)
		return a->text_path && b->text_path && !strcmp(a->text_path, b->text_path);
	return !strcmp(a->text, b->text);
}

void sl_session_remove_run(sl_session *s, int index)
{
	if (index < 0 || index >= s->n_runs)
		return;
	run_free(&s->runs[index]);
	memmove(&s->runs[index], &s->runs[index + 1], (size_t)(s->n_runs - index - 1) * sizeof *s->runs);
	s->n_runs--;
	s->dirty = true;
}

sl_status sl_session_add_note(sl_session *s, const char *line, sl_error *err)
{
	size_t a = strlen(s->notes), b = strlen(line);
	char *n = realloc(s->notes, a + b + 2);
	if (!n)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the notes");
	memcpy(n + a, line, b);
	n[a + b] = '\n';
	n[a + b + 1] = 0;
	s->notes = n;
	s->dirty = true;
	return SL_OK;
}

void sl_session_set_sweep(sl_session *s, cJSON *sweep)
{
	cJSON_Delete(s->sweep);
	s->sweep = sweep;
	s->dirty = true;
}

void sl_session_set_lesson(sl_session *s, cJSON *progress)
{
	cJSON_Delete(s->lesson);
	s->lesson = progress;
	s->dirty = true;
}

sl_view_pos sl_session_view_pos(const sl_session *s, const char *name)
{
	for (int i = 0; i < s->view.n_pos; i++)
		if (!strcmp(s->view.pos[i].name, name))
			return s->view.pos[i];
	sl_view_pos p = {{0}, 0, 0};
	snprintf(p.name, sizeof p.name, "%s", name);
	return p;
}

void sl_session_set_view_pos(sl_session *s, const char *name, int cursor, int top)
{
	int i = 0;
	while (i < s->view.n_pos && strcmp(s->view.pos[i].name, name))
		i++;
	if (i == SL_SESSION_MAX_VIEWS)
		return;
	if (i == s->view.n_pos) {
		snprintf(s->view.pos[i].name, sizeof s->view.pos[i].name, "%s", name);
		s->view.n_pos++;
	}
	s->view.pos[i].cursor = cursor;
	s->view.pos[i].top = top;
}

/* Pushes a step (taken) onto a stack, dropping the oldest when it is full. */
static bool push(sl_session_step **st, int *n, sl_session_step step)
{
	if (*n == SL_UNDO_DEPTH) {
		step_free(&(*st)[0]);
		memmove(*st, *st + 1, (size_t)(*n - 1) * sizeof **st);
		(*n)--;
	}
	if (!*st && !(*st = calloc(SL_UNDO_DEPTH, sizeof **st)))
		return false;
	(*st)[(*n)++] = step;
	return true;
}

/* The session's recipe and healing as a step of their own. */
static bool current_step(const sl_session *s, sl_session_step *step)
{
	step->recipe = sl_recipe_copy(s->recipe);
	step->healed = NULL;
	if (s->healed.model[0] && (step->healed = malloc(sizeof *step->healed)))
		*step->healed = s->healed;
	if (step->recipe && (!s->healed.model[0] || step->healed))
		return true;
	step_free(step);
	return false;
}

sl_status sl_session_recipe_edit(sl_session *s, sl_error *err)
{
	sl_session_step step;
	bool kept = current_step(s, &step);
	if (kept && !push(&s->undo, &s->n_undo, step)) {
		step_free(&step);
		kept = false;
	}
	if (!kept)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the undo history");
	clear_stack(s->redo, &s->n_redo);
	memset(&s->healed, 0, sizeof s->healed);
	s->dirty = true;
	return SL_OK;
}

sl_status sl_session_set_recipe(sl_session *s, sl_recipe *r, sl_error *err)
{
	sl_status st = sl_session_recipe_edit(s, err);
	if (st)
		return st;
	sl_recipe_free(s->recipe);
	s->recipe = r;
	return SL_OK;
}

sl_status sl_session_set_healed(sl_session *s, sl_recipe *r, const sl_healed *h, sl_error *err)
{
	sl_status st = sl_session_set_recipe(s, r, err);
	if (!st)
		s->healed = *h;
	return st;
}

/* Moves the current recipe and healing onto `to` and takes the top of `from`. */
static bool swap_top(sl_session *s, sl_session_step **from, int *n_from, sl_session_step **to, int *n_to)
{
	sl_session_step cur = {s->recipe, NULL};
	if (!*n_from || (s->healed.model[0] && !(cur.healed = malloc(sizeof *cur.healed))))
		return false;
	if (cur.healed)
		*cur.healed = s->healed;
	if (!push(to, n_to, cur)) {
		free(cur.healed);
		return false;
	}
	sl_session_step top = (*from)[--*n_from];
	s->recipe = top.recipe;
	memset(&s->healed, 0, sizeof s->healed);
	if (top.healed)
		s->healed = *top.healed;
	free(top.healed);
	s->dirty = true;
	return true;
}

bool sl_session_undo(sl_session *s)
{
	return swap_top(s, &s->undo, &s->n_undo, &s->redo, &s->n_redo);
}

bool sl_session_redo(sl_session *s)
{
	return swap_top(s, &s->redo, &s->n_redo, &s->undo, &s->n_undo);
}

sl_status sl_session_check_model(const sl_session *s, const char *sha256, sl_error *err)
{
	if (!strcmp(s->model_sha256, sha256))
		return SL_OK;
	return sl_errorf(err, SL_ERR_ARG,
	                 "%s was made with a model whose SHA-256 is %.12s..., but %s now hashes to %.12s...: "
	                 "the weights changed, so the session is refused (nothing was changed)",
	                 s->path[0] ? s->path : "the session", s->model_sha256, s->model_path, sha256);
}
