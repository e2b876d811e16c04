/* The jobs the workbench runs on its model: each is a small context, a run
 * function for the worker thread that calls the core, and a done function that
 * puts the result into the application on the main thread. Nothing the
 * user sees changes until a job has succeeded, so a cancelled or failed
 * job leaves the model and the session as they were. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/progress.h"
#include "core/fileio.h"
#include "core/units.h"
#include "tui.h"

/* --- the recipe's model -------------------------------------------------
 * Evaluating and generating need the base model compressed as the recipe
 * says (simulated: quantized, then stored dequantized), or, once healing
 * made one, the healed model read back from its file. It is built once per
 * recipe and kept until the recipe changes. */

typedef struct {
	sl_recipe *recipe;      /* the recipe when the job was asked for */
	sl_healed healed;       /* and its healed model (model "": none) */
	char *json;             /* what the model is made from, which keys the cache */
	bool empty;             /* it changes nothing: the base model stands in */
	const sl_model *base;   /* taken at start */
	const sl_model *use;    /* the cached model, or built */
	sl_model *built;
	sl_apply_report rep;
	bool have_rep;
} recipe_model;

void sl_task_calib_default(sl_tui *t, sl_recipe *r)
{
	if (r && !r->calib.text[0])
		snprintf(r->calib.text, sizeof r->calib.text, "%s", t->app.calib_path);
}

static bool rm_init(sl_tui *t, recipe_model *rm)
{
	memset(rm, 0, sizeof *rm);
	rm->recipe = sl_recipe_copy(t->app.ses->recipe);
	sl_task_calib_default(t, rm->recipe);
	rm->healed = t->app.ses->healed;
	rm->json = sl_tui_model_key(t->app.ses);
	rm->empty = t->app.recipe_empty;
	return rm->recipe && rm->json;
}

static void rm_start(sl_tui *t, recipe_model *rm)
{
	rm->base = t->app.model;
	if (!rm->empty && t->qmodel && !strcmp(t->qmodel_recipe, rm->json))
		rm->use = t->qmodel;
}

/* The healed model from its file, when it is still the one healing wrote. */
static sl_status rm_load_healed(recipe_model *rm, const sl_progress *p, sl_error *err)
{
	char sha[65];
	const char *path = rm->healed.model;
	sl_status st = sl_model_file_sha256(path, p, sha, err);
	if (st)
		return sl_error_prefix(err, "the healed model (u undoes the healing): ");
	if (strcmp(sha, rm->healed.sha256))
		return sl_errorf(err, SL_ERR_ARG,
		                 "%s changed since healing wrote it (its SHA-256 differs): u undoes the healing, or heal again",
		                 path);
	sl_load_opts lo = {.check_finite = true, .progress = p};
	if ((st = sl_model_load(path, &lo, &rm->built, err)))
		return st;
	rm->use = rm->built;
	return SL_OK;
}

static sl_status rm_build(recipe_model *rm, bool simulate, const sl_progress *p, sl_error *err)
{
	if (rm->empty || rm->use)
		return SL_OK;
	if (rm->healed.model[0])
		return rm_load_healed(rm, p, err);
	sl_apply_opts o = {.simulate = simulate, .progress = p};
	sl_status st = sl_recipe_apply(rm->base, rm->recipe, &o, &rm->built, &rm->rep, err);
	if (st)
		return st;
	rm->have_rep = true;
	rm->use = rm->built;
	return SL_OK;
}

/* The share of a job's bar that building the recipe's model takes, by
 * work: its cost against the tokens the job then runs through both models
 * (text bytes / 4 for a text, at most chunks windows of ctx when given),
 * so the bar follows the work. */
static double rm_split(const recipe_model *rm, double tokens, int ctx, int chunks)
{
	if (rm->empty || rm->use)
		return 0;
	if (chunks > 0 && ctx > 0 && tokens > (double)chunks * ctx)
		tokens = (double)chunks * ctx;
	tokens *= 2; /* the recipe's model and the base both run */
	double build = sl_recipe_apply_cost(rm->base, rm->recipe);
	return build / (build + (tokens > 1 ? tokens : 1));
}

/* Main thread: the model just built becomes the cached one. */
static void rm_install(sl_tui *t, recipe_model *rm)
{
	if (!rm->built)
		return;
	sl_tui_drop_recipe_model(t);
	t->qmodel = rm->built;
	t->qmodel_recipe = rm->json;
	t->qmodel_bpw = rm->rep.bpw;
	rm->built = NULL;
	rm->json = NULL;
}

static void rm_free(recipe_model *rm)
{
	sl_model_free(rm->built);
	if (rm->have_rep)
		sl_apply_report_free(&rm->rep);
	sl_recipe_free(rm->recipe);
	free(rm->json);
}

static const char *text_path(sl_tui *t, const char *text, const char **name)
{
	if (!strcmp(text, "calibration") || !strcmp(text, "calib")) {
		*name = "calibration";
		return t->app.calib_path;
	}
	if (!strcmp(text, "evaluation") || !strcmp(text, "eval")) {
		*name = "evaluation";
		return t->app.eval_path;
	}
	const char *slash = strrchr(text, '/');
	*name = slash ? slash + 1 : text;
	return text;
}

char *sl_task_text_path(const char *path)
{
	char real[PATH_MAX];
	return sl_strdup(realpath(path, real) ? real : path);
}

/* --- evaluation ---------------------------------------------------------- */

typedef struct {
	recipe_model rm;
	char text[PATH_MAX];
	const char *text_name;
	int ctx, chunks;
	sl_run run;
} eval_ctx;

static bool eval_start(sl_tui *t, void *ctx)
{
	rm_start(t, &((eval_ctx *)ctx)->rm);
	return ((eval_ctx *)ctx)->rm.base != NULL;
}

static sl_status eval_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	(void)j;
	eval_ctx *e = ctx;
	char *text;
	size_t len;
	sl_status st = sl_read_file(e->text, (size_t)1 << 30, &text, &len, err);
	if (st)
		return st;
	sl_progress_slice part;
	double split = rm_split(&e->rm, (double)len / 4, e->ctx, e->chunks);
	if (!(st = rm_build(&e->rm, true, sl_progress_slice_init(&part, p, 0, split), err))) {
		sl_eval_opts o = {.n_ctx = e->ctx, .n_chunks = e->chunks,
		                  .progress = sl_progress_slice_init(&part, p, split, 1)};
		const sl_model *m = e->rm.empty ? e->rm.base : e->rm.use;
		st = sl_eval_text(m, e->rm.empty ? NULL : e->rm.base, text, len, &o, &e->run.r, err);
	}
	free(text);
	return st;
}

static void eval_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	eval_ctx *e = ctx;
	rm_install(t, &e->rm);
	if (st) {
		sl_tui_msg(t, st != SL_ERR_CANCELLED, "%s", err->msg);
		return;
	}
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(e->run.when, sizeof e->run.when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	sl_error aerr = {0};
	if (sl_session_add_run(t->app.ses, &e->run, &aerr)) {
		sl_tui_msg(t, true, "%s", aerr.msg);
		return;
	}
	t->app.runs_added++;
	sl_tui_session_changed(t);
	const sl_eval_result *r = &e->run.r;
	if (r->has_base && e->run.has_predicted)
		sl_tui_msg(t, false, "KL %.5f measured, %.5f predicted (the modules' KL measured alone, summed) on %d "
		                     "windows of %d; PPL %.4f (%+.4f), top-1 %.2f%% at %.2f bpw",
		           r->kl_mean, e->run.predicted_kl, r->n_chunks, r->n_ctx, r->ppl, r->delta_ppl, 100 * r->top1,
		           e->run.bpw);
	else if (r->has_base)
		sl_tui_msg(t, false, "PPL %.4f (base %.4f, %+.4f), KL %.5f, top-1 %.2f%% at %.2f bpw", r->ppl, r->base_ppl,
		           r->delta_ppl, r->kl_mean, 100 * r->top1, e->run.bpw);
	else
		sl_tui_msg(t, false, "PPL %.4f ± %.4f (base model; the recipe changes nothing)", r->ppl, r->ppl_se);
	sl_tui_show(t, "eval");
}

static void eval_free(void *ctx)
{
	eval_ctx *e = ctx;
	rm_free(&e->rm);
	free(e->run.recipe_json);
	free(e->run.text_path);
	free(e);
}

static const sl_job_kind eval_kind = {"evaluate", eval_start, eval_run, NULL, eval_done, eval_free};

void sl_task_eval(sl_tui *t, const char *text, int ctx, int chunks, double predicted_kl)
{
	if (!sl_tui_can_use_model(t))
		return;
	eval_ctx *e = calloc(1, sizeof *e);
	if (!e || !rm_init(t, &e->rm)) {
		if (e)
			eval_free(e);
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	const char *path = text_path(t, text, &e->text_name);
	if (!path[0] || !sl_file_exists(path)) {
		sl_tui_msg(t, true, "%s text %s not found; set it with :set %s=PATH", e->text_name, path[0] ? path : "",
		           e->text_name);
		eval_free(e);
		return;
	}
	snprintf(e->text, sizeof e->text, "%s", path);
	e->ctx = ctx;
	e->chunks = chunks;
	sl_run *r = &e->run;
	const sl_recipe *rc = t->app.ses->recipe;
	const sl_healed *h = &t->app.ses->healed;
	snprintf(r->model, sizeof r->model, "%s", e->rm.empty ? "base" : h->model[0] ? "healed" : "recipe");
	snprintf(r->recipe, sizeof r->recipe, "%s", rc->name);
	sl_recipe_summary(rc, h->model[0] ? h->label : NULL, r->recipe_summary, sizeof r->recipe_summary);
	r->recipe_json = sl_recipe_to_json(rc); /* NULL (out of memory) only costs the run's comparison */
	snprintf(r->text, sizeof r->text, "%s", e->text_name);
	r->text_path = sl_task_text_path(path);
	double base_bytes = (double)sl_model_bytes(t->app.model);
	r->bytes = e->rm.empty ? base_bytes : t->app.est.bytes;
	r->bpw = e->rm.empty ? 8 * base_bytes / (double)sl_model_n_params(t->app.model) : t->app.est.bpw;
	r->has_predicted = isfinite(predicted_kl);
	r->predicted_kl = r->has_predicted ? predicted_kl : 0;
	sl_tui_submit(t, &eval_kind, e);
}

/* --- applying the recipe -------------------------------------------------- */

typedef struct {
	recipe_model rm;
	char out[PATH_MAX];     /* export the packed model here ("" = keep the simulated one) */
} apply_ctx;

static bool apply_start(sl_tui *t, void *ctx)
{
	apply_ctx *a = ctx;
	rm_start(t, &a->rm);
	if (a->out[0] && !a->rm.healed.model[0])
		a->rm.use = NULL; /* an export needs packed weights, not the simulated cache (a healed model is packed) */
	return a->rm.base != NULL;
}

static sl_status apply_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	(void)j;
	apply_ctx *a = ctx;
	sl_progress_slice part;
	bool packed = a->out[0] != 0;
	sl_status st = rm_build(&a->rm, !packed, sl_progress_slice_init(&part, p, 0, packed ? 0.7 : 1), err);
	if (st || !packed)
		return st;
	const sl_model *m = a->rm.use ? a->rm.use : a->rm.base;
	return sl_export_gguf(m, a->rm.recipe, a->out, sl_progress_slice_init(&part, p, 0.7, 1), err);
}

static void apply_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	apply_ctx *a = ctx;
	if (st) {
		sl_tui_msg(t, st != SL_ERR_CANCELLED, "%s", err->msg);
		return;
	}
	char b[32];
	if (a->rm.healed.model[0] && a->out[0]) {
		sl_tui_msg(t, false, "%s written: the model healed by %s", a->out, a->rm.healed.label);
	} else if (a->rm.healed.model[0]) {
		sl_tui_msg(t, false, "the model healed by %s is up to date", a->rm.healed.label);
	} else if (a->rm.have_rep) {
		sl_fmt_bytes(a->rm.rep.bytes_after, b, sizeof b);
		sl_tui_msg(t, false, "%s: %s, %.3f bits per weight, %d module%s fell back to another format, %.1f s",
		           a->out[0] ? a->out : "recipe applied", b, a->rm.rep.bpw, a->rm.rep.n_fallbacks,
		           a->rm.rep.n_fallbacks == 1 ? "" : "s", a->rm.rep.seconds);
	} else {
		sl_tui_msg(t, false, a->out[0] ? "%s written (the recipe changes nothing)" : "the recipe's model is up to date",
		           a->out);
	}
	const sl_model *m = a->rm.use ? a->rm.use : a->rm.base;
	if (a->out[0] && m && sl_model_factored(m)) {
		size_t k = strlen(t->app.message);
		snprintf(t->app.message + k, sizeof t->app.message - k,
		         "; low rank: llama.cpp reads the products (no smaller than dense), slimlab the factors");
	}
	if (!a->out[0])
		rm_install(t, &a->rm);
}

static void apply_free(void *ctx)
{
	rm_free(&((apply_ctx *)ctx)->rm);
	free(ctx);
}

static const sl_job_kind apply_kind = {"apply", apply_start, apply_run, NULL, apply_done, apply_free};

void sl_task_apply(sl_tui *t, const char *out_gguf)
{
	if (!sl_tui_can_use_model(t))
		return;
	apply_ctx *a = calloc(1, sizeof *a);
	if (!a || !rm_init(t, &a->rm)) {
		if (a)
			apply_free(a);
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	snprintf(a->out, sizeof a->out, "%s", out_gguf ? out_gguf : "");
	sl_tui_submit(t, &apply_kind, a);
}

/* --- generation ----------------------------------------------------------- */

typedef struct {
	recipe_model rm;
	char prompt[1024];
	int n;
	float temp;
	uint64_t seed;
	sl_job *job;
	sl_buf text[2];         /* guarded by the job's lock */
	int n_tokens[2];
	double tok_s[2], t0;
	int pane;               /* being written */
	bool finished[2];
} gen_ctx;

static bool gen_token(void *ctx, int32_t id, const char *text, size_t len)
{
	(void)id;
	gen_ctx *g = ctx;
	sl_job_lock(g->job);
	bool ok = sl_buf_put(&g->text[g->pane], text, len);
	g->n_tokens[g->pane]++;
	double dt = sl_now() - g->t0;
	g->tok_s[g->pane] = dt > 0 ? g->n_tokens[g->pane] / dt : 0;
	sl_job_unlock(g->job);
	sl_job_post(g->job);
	return ok;
}

static bool gen_start(sl_tui *t, void *ctx)
{
	gen_ctx *g = ctx;
	rm_start(t, &g->rm);
	sl_app *a = &t->app;
	for (int i = 0; i < 2; i++) {
		free(a->gen[i].text);
		memset(&a->gen[i], 0, sizeof a->gen[i]);
	}
	a->gen_common = 0;
	snprintf(a->gen_prompt, sizeof a->gen_prompt, "%s", g->prompt);
	snprintf(a->gen[0].label, sizeof a->gen[0].label, "base model");
	if (g->rm.healed.model[0])
		snprintf(a->gen[1].label, sizeof a->gen[1].label, "healed by %.40s (%.2f bpw)", g->rm.healed.label,
		         a->est.bpw);
	else if (!g->rm.empty)
		snprintf(a->gen[1].label, sizeof a->gen[1].label, "recipe%s%.40s (%.2f bpw)",
		         g->rm.recipe->name[0] ? " " : "", g->rm.recipe->name, a->est.bpw);
	return g->rm.base != NULL;
}

static sl_status gen_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	gen_ctx *g = ctx;
	g->job = j;
	sl_progress_slice part;
	double split = rm_split(&g->rm, g->n, 0, 0);
	sl_status st = rm_build(&g->rm, true, sl_progress_slice_init(&part, p, 0, split), err);
	int panes = g->rm.empty ? 1 : 2;
	for (int i = 0; i < panes && !st; i++) {
		sl_sampler smp;
		sl_sampler_init(&smp, g->temp, 0.9f, 0, g->seed); /* the same draws for both models */
		sl_job_lock(j);
		g->pane = i;
		g->t0 = sl_now();
		sl_job_unlock(j);
		double lo = split + (1 - split) * i / panes, hi = split + (1 - split) * (i + 1) / panes;
		st = sl_generate(i ? g->rm.use : g->rm.base, g->prompt, g->n, &smp, gen_token, g,
		                 sl_progress_slice_init(&part, p, lo, hi), err);
		sl_job_lock(j);
		g->finished[i] = true;
		sl_job_unlock(j);
		sl_job_post(j);
	}
	return st;
}

/* Copies what the worker wrote into the panes the view draws, and finds
 * where the two continuations part ways. */
static void gen_copy(sl_tui *t, gen_ctx *g)
{
	for (int i = 0; i < 2; i++) {
		sl_gen_pane *pane = &t->app.gen[i];
		char *s = realloc(pane->text, g->text[i].len + 1);
		if (!s)
			continue;
		if (g->text[i].len)
			memcpy(s, g->text[i].data, g->text[i].len);
		s[g->text[i].len] = 0;
		pane->text = s;
		pane->len = g->text[i].len;
		pane->n_tokens = g->n_tokens[i];
		pane->tok_per_s = g->tok_s[i];
		pane->done = g->finished[i];
	}
	const sl_gen_pane *a = &t->app.gen[0], *b = &t->app.gen[1];
	size_t k = 0;
	while (k < a->len && k < b->len && a->text[k] == b->text[k])
		k++;
	t->app.gen_common = k;
}

static void gen_update(sl_tui *t, void *ctx, sl_job *j)
{
	sl_job_lock(j);
	gen_copy(t, ctx);
	sl_job_unlock(j);
}

static void gen_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	gen_ctx *g = ctx;
	gen_copy(t, g);
	rm_install(t, &g->rm);
	if (st)
		sl_tui_msg(t, st != SL_ERR_CANCELLED, "%s", err->msg);
}

static void gen_free(void *ctx)
{
	gen_ctx *g = ctx;
	rm_free(&g->rm);
	sl_buf_free(&g->text[0]);
	sl_buf_free(&g->text[1]);
	free(g);
}

static const sl_job_kind gen_kind = {"generate", gen_start, gen_run, gen_update, gen_done, gen_free};

void sl_task_generate(sl_tui *t)
{
	if (!sl_tui_can_use_model(t))
		return;
	gen_ctx *g = calloc(1, sizeof *g);
	if (!g || !rm_init(t, &g->rm)) {
		if (g)
			gen_free(g);
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	const sl_session *s = t->app.ses;
	snprintf(g->prompt, sizeof g->prompt, "%s", s->view.prompt);
	g->n = s->view.gen_tokens;
	g->temp = (float)s->view.temp;
	g->seed = (uint64_t)time(NULL);
	sl_tui_show(t, "generate");
	sl_tui_submit(t, &gen_kind, g);
}

/* --- statistics for the layer inspector ------------------------------------ */

static const char *tap_words(sl_tap where)
{
	switch (where) {
	case SL_TAP_BLOCK_IN: return "block input";
	case SL_TAP_ATTN_IN: return "normed attention input";
	case SL_TAP_ATTN_OUT_IN: return "attention heads' output";
	case SL_TAP_FFN_IN: return "normed MLP input";
	case SL_TAP_FFN_DOWN_IN: return "MLP hidden activations";
	default: return "block output";
	}
}

/* Points the inspector at the inspected module's input in the profile. */
static void refresh_act_in(sl_tui *t)
{
	sl_app *a = &t->app;
	int mi = sl_app_module_index(a, a->wstats_module);
	a->act_in = mi >= 0 ? sl_act_profile_at(a->act, a->mods[mi].layer, a->mods[mi].input) : NULL;
	a->act_tap = mi >= 0 ? tap_words(a->mods[mi].input) : "";
	sl_act_summarize(a->act_in, 6.0, &a->act_sum);
}

typedef struct {
	char module[96];
	const sl_tensor *w;
	sl_weight_stats s;
} wstats_ctx;

static bool wstats_start(sl_tui *t, void *ctx)
{
	wstats_ctx *w = ctx;
	int mi = sl_app_module_index(&t->app, w->module);
	w->w = mi >= 0 ? t->app.mods[mi].w : NULL;
	return w->w != NULL;
}

static sl_status wstats_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	(void)j;
	wstats_ctx *w = ctx;
	return sl_weight_stats_compute(w->w, 512, 6.0, p, &w->s, err);
}

static void wstats_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	wstats_ctx *w = ctx;
	if (st) {
		sl_tui_msg(t, st != SL_ERR_CANCELLED, "%s", err->msg);
		return;
	}
	sl_weight_stats_free(&t->app.wstats);
	t->app.wstats = w->s;
	memset(&w->s, 0, sizeof w->s);
	snprintf(t->app.wstats_module, sizeof t->app.wstats_module, "%s", w->module);
	refresh_act_in(t);
}

static void wstats_free(void *ctx)
{
	wstats_ctx *w = ctx;
	sl_weight_stats_free(&w->s);
	free(w);
}

static const sl_job_kind wstats_kind = {"statistics", wstats_start, wstats_run, NULL, wstats_done, wstats_free};

void sl_task_weight_stats(sl_tui *t, const char *name)
{
	char module[96]; /* name may be the session's own field, rewritten below */
	snprintf(module, sizeof module, "%s", name);
	if (!sl_tui_can_use_model(t))
		return;
	if (sl_app_module_index(&t->app, module) < 0) {
		sl_tui_msg(t, true, "%s: no such module (Tab lists them)", module);
		return;
	}
	sl_session *s = t->app.ses;
	snprintf(s->view.inspect, sizeof s->view.inspect, "%s", module);
	sl_tui_show(t, "layer");
	if (!strcmp(t->app.wstats_module, module) && t->app.wstats.n)
		return;
	wstats_ctx *w = calloc(1, sizeof *w);
	if (!w) {
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	snprintf(w->module, sizeof w->module, "%s", module);
	sl_tui_submit(t, &wstats_kind, w);
}

typedef struct {
	const sl_model *m;
	char text[PATH_MAX];
	int tokens;
	sl_act_profile *act;
} act_ctx;

static bool act_start(sl_tui *t, void *ctx)
{
	((act_ctx *)ctx)->m = t->app.model;
	return t->app.model != NULL;
}

static sl_status act_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	(void)j;
	act_ctx *a = ctx;
	char *text;
	size_t len;
	sl_status st = sl_read_file(a->text, (size_t)1 << 30, &text, &len, err);
	if (st)
		return st;
	const char *base = strrchr(a->text, '/');
	st = sl_act_profile_gather(a->m, text, len, base ? base + 1 : a->text, a->tokens, 0, p, &a->act, err);
	free(text);
	return st;
}

static void act_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	act_ctx *a = ctx;
	if (st) {
		sl_tui_msg(t, st != SL_ERR_CANCELLED, "%s", err->msg);
		return;
	}
	sl_act_profile_free(t->app.act);
	t->app.act = a->act;
	a->act = NULL;
	refresh_act_in(t);
	sl_tui_msg(t, false, "activation statistics over %lld tokens of %s", t->app.act->n_tokens, t->app.act->text);
}

static void act_free(void *ctx)
{
	sl_act_profile_free(((act_ctx *)ctx)->act);
	free(ctx);
}

static const sl_job_kind act_kind = {"activations", act_start, act_run, NULL, act_done, act_free};

void sl_task_act_stats(sl_tui *t)
{
	if (!sl_tui_can_use_model(t))
		return;
	if (!t->app.calib_path[0] || !sl_file_exists(t->app.calib_path)) {
		sl_tui_msg(t, true, "the calibration text %s is missing; set it with :set calibration=PATH",
		           t->app.calib_path);
		return;
	}
	act_ctx *a = calloc(1, sizeof *a);
	if (!a) {
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	snprintf(a->text, sizeof a->text, "%s", t->app.calib_path);
	a->tokens = t->app.ses->settings.stats_tokens;
	sl_tui_submit(t, &act_kind, a);
}
