/* Healing as a job in the workbench: the session's recipe applied and the
 * compressed model trained back towards the base (sl_heal, as slimlab heal
 * does), its steps, losses and held-out KL reaching the Heal view as they
 * come. Esc stops it with a checkpoint that the same settings resume from.
 * The healed model is written where the user says (a new file in the data
 * directory unless told; an existing file only after asking, never the
 * open model) and becomes, undoably, the session's model, its figures a
 * run of the evaluation history. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/heal.h"
#include "tui.h"

void sl_heal_settings_init(sl_heal_settings *s)
{
	sl_heal_opts o;
	sl_heal_opts_init(&o, SL_HEAL_QAD);
	*s = (sl_heal_settings){.steps = o.steps, .batch = o.batch, .temperature = o.temperature, .rank = o.rank,
	                        .seed = o.seed};
	snprintf(s->method, sizeof s->method, "%s", sl_heal_method_name(o.method));
}

void sl_healing_reset(sl_healing *h)
{
	sl_heal_settings set = h->set;
	free(h->loss);
	free(h->kl);
	memset(h, 0, sizeof *h);
	h->set = set;
}

/* Copies what changed during a run (the losses dst lacks, the rest whole),
 * keeping dst's settings; false when memory runs out. */
static bool healing_copy(sl_healing *dst, const sl_healing *src)
{
	if (!dst->loss || dst->steps != src->steps || dst->n_loss > src->n_loss) {
		free(dst->loss);
		dst->loss = sl_calloc((size_t)(src->steps > 0 ? src->steps : 1), sizeof *dst->loss);
		dst->n_loss = 0;
		if (!dst->loss)
			return false;
	}
	double *kl = realloc(dst->kl, (size_t)(src->n_kl + 1) * 2 * sizeof *kl);
	if (!kl)
		return false;
	if (src->n_kl)
		memcpy(kl, src->kl, (size_t)src->n_kl * 2 * sizeof *kl);
	if (src->n_loss > dst->n_loss)
		memcpy(dst->loss + dst->n_loss, src->loss + dst->n_loss, (size_t)(src->n_loss - dst->n_loss) * sizeof *kl);
	double *loss = dst->loss;
	sl_heal_settings set = dst->set;
	*dst = *src;
	dst->set = set;
	dst->loss = loss;
	dst->kl = kl;
	return true;
}

typedef struct {
	sl_heal_opts o;
	sl_recipe *asked;        /* the session's recipe when healing was asked for */
	sl_recipe *recipe;       /* and as it is healed (with the calibration text it uses) */
	char train_text[PATH_MAX], eval_text[PATH_MAX], out[PATH_MAX], ckpt[PATH_MAX];
	bool out_given;          /* the user named it: an existing file is asked about */
	const sl_model *base;    /* when asked for; still the open one at start */
	sl_job *job;
	sl_healing st;           /* what the view shows, guarded by the job's lock */
	sl_model *healed;
	sl_heal_result res;
	char sha256[65];         /* of the file written: set once it is whole */
} heal_ctx;

static void heal_free(void *ctx)
{
	heal_ctx *c = ctx;
	sl_recipe_free(c->asked);
	sl_recipe_free(c->recipe);
	sl_model_free(c->healed);
	sl_heal_result_free(&c->res);
	sl_healing_reset(&c->st);
	free(c);
}

static void add_note(sl_healing *s, const char *note)
{
	int cap = (int)(sizeof s->notes / sizeof s->notes[0]);
	if (s->n_notes == cap) {
		memmove(s->notes[0], s->notes[1], (size_t)(cap - 1) * sizeof s->notes[0]);
		s->n_notes--;
	}
	snprintf(s->notes[s->n_notes++], sizeof s->notes[0], "%s", note);
}

/* Worker thread: after each update, evaluation and checkpoint. */
static void on_report(void *ctx, const sl_heal_report *r)
{
	heal_ctx *c = ctx;
	sl_healing *s = &c->st;
	char line[160];
	sl_job_lock(c->job);
	switch (r->event) {
	case SL_TRAIN_NOTE:
		if (r->eval) { /* the post-training figures */
			s->before = *r->eval;
			s->has_before = true;
		} else {
			add_note(s, r->note);
		}
		break;
	case SL_TRAIN_STEP:
		if (r->step >= 1 && r->step <= s->steps) {
			s->loss[r->step - 1] = r->loss;
			s->n_loss = r->step > s->n_loss ? (int)r->step : s->n_loss;
		}
		s->step = r->step;
		s->lr = r->lr;
		s->grad_norm = r->grad_norm;
		s->tokens_per_s = r->tokens_per_s;
		s->elapsed = r->elapsed_s;
		s->eta = r->eta_s;
		break;
	case SL_TRAIN_EVAL: {
		/* A resumed run measures again where the stopped one had. */
		int at = s->n_kl;
		while (at > 0 && s->kl[2 * (at - 1)] >= (double)r->step)
			at--;
		double *v = realloc(s->kl, (size_t)(at + 1) * 2 * sizeof *v);
		if (v) {
			s->kl = v;
			v[2 * at] = (double)r->step;
			v[2 * at + 1] = r->eval->kl_mean;
			s->n_kl = at + 1;
		}
		break;
	}
	case SL_TRAIN_CHECKPOINT:
		snprintf(line, sizeof line, "checkpoint at step %lld: %.120s", (long long)r->step, r->note);
		add_note(s, line);
		break;
	case SL_TRAIN_DONE:
		s->after = *r->eval;
		s->has_after = true;
		break;
	}
	sl_job_unlock(c->job);
	sl_job_post(c->job);
}

static bool heal_start(sl_tui *t, void *ctx)
{
	heal_ctx *c = ctx;
	if (t->app.model != c->base) {
		sl_tui_msg(t, true, "another model was opened before healing began: heal again");
		return false;
	}
	sl_healing *a = &t->app.heal;
	sl_healing_reset(a);
	if (!healing_copy(a, &c->st)) {
		sl_tui_msg(t, true, "out of memory for the healing curves");
		return false;
	}
	a->running = true;
	sl_tui_show(t, "heal");
	return true;
}

static sl_status heal_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	heal_ctx *c = ctx;
	c->job = j;
	c->o.progress = p;
	sl_status st = sl_heal(c->base, c->recipe, &c->o, &c->healed, &c->res, err);
	if (st)
		return st;
	sl_report(p, 1, "writing the healed model");
	if ((st = sl_export_gguf(c->healed, c->recipe, c->out, NULL, err)))
		return sl_error_prefix(err, "writing the healed model: ");
	char sha[65];
	if ((st = sl_model_file_sha256(c->out, NULL, sha, err)))
		return st;
	memcpy(c->sha256, sha, sizeof sha);
	/* The run is whole: its checkpoint would only be resumed by mistake. */
	if (sl_file_exists(c->ckpt))
		remove(c->ckpt);
	return SL_OK;
}

static void heal_update(sl_tui *t, void *ctx, sl_job *j)
{
	heal_ctx *c = ctx;
	sl_job_lock(j);
	healing_copy(&t->app.heal, &c->st);
	sl_job_unlock(j);
	t->app.heal.running = true;
}

/* The engine's figures of the whole run (resumed updates included). */
static void take_result(sl_healing *a, const sl_heal_result *res)
{
	for (int64_t i = 0; i < res->steps && i < a->steps; i++)
		a->loss[i] = res->loss[i];
	a->n_loss = (int)(res->steps < a->steps ? res->steps : a->steps);
	double *kl = realloc(a->kl, (size_t)(res->n_probe + 1) * 2 * sizeof *kl);
	if (kl) {
		for (int i = 0; i < 2 * res->n_probe; i++)
			kl[i] = res->probe[i];
		a->kl = kl;
		a->n_kl = res->n_probe;
	}
	a->before = res->before;
	a->after = res->after;
	a->has_before = a->has_after = true;
	a->recovered = res->recovered;
	snprintf(a->loss_name, sizeof a->loss_name, "%s", res->loss_name);
}

/* The healed model becomes the session's (undoably) and the recipe's
 * model; its figures join the history. */
static void install(sl_tui *t, heal_ctx *c)
{
	sl_app *app = &t->app;
	sl_healing *a = &app->heal;
	sl_session *s = app->ses;
	sl_healed h;
	memset(&h, 0, sizeof h);
	snprintf(h.model, sizeof h.model, "%s", c->out);
	memcpy(h.sha256, c->sha256, sizeof h.sha256);
	snprintf(h.label, sizeof h.label, "%s", a->label);
	char *was = sl_recipe_to_json(s->recipe), *healed = sl_recipe_to_json(c->asked);
	bool moved = !was || !healed || strcmp(was, healed);
	free(was);
	sl_error err = {0};
	if (sl_session_set_healed(s, c->asked, &h, &err)) {
		free(healed);
		sl_tui_msg(t, true, "the healed model is %s, but: %s", c->out, err.msg);
		return;
	}
	c->asked = NULL;
	sl_tui_recipe_changed(t);
	sl_tui_drop_recipe_model(t);
	if ((t->qmodel_recipe = sl_tui_model_key(s))) {
		t->qmodel = c->healed;
		t->qmodel_bpw = app->est.bpw;
		c->healed = NULL;
	}
	a->finished = true;

	sl_run run = {.r = c->res.after, .bytes = app->est.bytes, .bpw = app->est.bpw, .recipe_json = healed};
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(run.when, sizeof run.when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(run.model, sizeof run.model, "healed");
	snprintf(run.recipe, sizeof run.recipe, "%s", s->recipe->name);
	sl_recipe_summary(s->recipe, h.label, run.recipe_summary, sizeof run.recipe_summary);
	snprintf(run.text, sizeof run.text, "evaluation");
	run.text_path = sl_task_text_path(c->eval_text);
	if (sl_session_add_run(s, &run, &err))
		sl_tui_msg(t, true, "%s", err.msg);
	else
		app->runs_added++;
	free(run.text_path);
	free(healed);
	sl_tui_session_changed(t);
	snprintf(a->outcome, sizeof a->outcome, "%s",
	         moved ? "healed: the recipe healed is back with it (u: the recipe edited meanwhile)"
	               : "healed: the session's model now (u undoes)");
	sl_tui_msg(t, false, "healed by %s: KL %.5f → %.5f (%.1f%% recovered); written to %s", h.label,
	           c->res.before.kl_mean, c->res.after.kl_mean, 100 * c->res.recovered, c->out);
}

static void heal_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	heal_ctx *c = ctx;
	sl_healing *a = &t->app.heal;
	healing_copy(a, &c->st);
	a->running = false;
	/* Esc while the healed model was being written comes too late to stop it. */
	if (c->healed && c->sha256[0]) {
		take_result(a, &c->res);
		install(t, c);
		return;
	}
	if (st == SL_ERR_CANCELLED && sl_file_exists(c->ckpt)) {
		snprintf(a->outcome, sizeof a->outcome, "stopped at step %lld with a checkpoint: h or r goes on from it",
		         (long long)a->step);
		sl_tui_msg(t, false, "%s", err->msg);
		return;
	}
	snprintf(a->outcome, sizeof a->outcome, "%s: %.200s", st == SL_ERR_CANCELLED ? "stopped" : "failed", err->msg);
	sl_tui_msg(t, st != SL_ERR_CANCELLED, "%s", err->msg);
}

static const sl_job_kind heal_kind = {"heal", heal_start, heal_run, heal_update, heal_done, heal_free};

/* --- asking for a run ------------------------------------------------------------ */

/* STEM-SUFFIX in the data directory's heal/, "" when it cannot be made. */
static bool data_file(sl_tui *t, const char *suffix, char *buf, size_t n)
{
	char dir[PATH_MAX], stem[128], name[256];
	if (!sl_tui_data_subdir(t, "heal", "or name the files: out=FILE checkpoint=FILE", dir, sizeof dir))
		return false;
	const char *slash = strrchr(t->app.model->path, '/'), *base = slash ? slash + 1 : t->app.model->path;
	const char *dot = strrchr(base, '.');
	snprintf(stem, sizeof stem, "%.*s", dot && dot != base ? (int)(dot - base) : (int)strlen(base), base);
	snprintf(name, sizeof name, "%s-%s", stem, suffix);
	return sl_path_join(buf, n, dir, name);
}

/* The checkpoint a run with these settings of this recipe on this model
 * writes, so that asking for the same run again finds it. */
static bool default_checkpoint(sl_tui *t, const sl_heal_settings *s, const char *recipe_json, char *buf, size_t n)
{
	char id[256], suffix[96];
	snprintf(id, sizeof id, "%s %s %d %d %.9g %.9g %d %d %llu", t->app.ses->model_sha256, s->method, s->steps,
	         s->batch, s->lr, s->temperature, s->rank, s->seq_len, (unsigned long long)s->seed);
	const char *text = t->app.calib_path;
	uint64_t h = sl_hash64(id, strlen(id), 0);
	h = sl_hash64(text, strlen(text), h);
	h = sl_hash64(recipe_json, strlen(recipe_json), h);
	snprintf(suffix, sizeof suffix, "%s-%d-%012llx.ckpt", s->method, s->steps, (unsigned long long)(h >> 16));
	return data_file(t, suffix, buf, n);
}

/* MODEL-METHOD-STEPS.gguf, or -2, -3, ... : a name no file has yet. */
static bool default_out(sl_tui *t, const sl_heal_settings *s, char *buf, size_t n)
{
	for (int i = 1; i < 1000; i++) {
		char suffix[96];
		snprintf(suffix, sizeof suffix, i > 1 ? "%s-%d-%d.gguf" : "%s-%d.gguf", s->method, s->steps, i);
		if (!data_file(t, suffix, buf, n))
			return false;
		if (!sl_file_exists(buf))
			return true;
	}
	sl_tui_msg(t, true, "no free name for the healed model in the data directory: name one (out=FILE)");
	return false;
}

static void go(sl_tui *t, heal_ctx *c, int stage);

static void answer_overwrite(sl_tui *t, int key, void *arg)
{
	if (key == 'o')
		go(t, arg, 2);
	else
		heal_free(arg);
}

static void answer_checkpoint(sl_tui *t, int key, void *arg)
{
	heal_ctx *c = arg;
	if (key == 's' && remove(c->ckpt)) {
		sl_tui_msg(t, true, "%s: cannot remove it: %s", c->ckpt, strerror(errno));
		key = 'c';
	}
	if (key == 'c') {
		heal_free(c);
		return;
	}
	c->o.resume = key == 'r';
	go(t, c, 1);
}

/* The questions a run may need, in turn: a checkpoint of the same run
 * (resume it, or start afresh), an existing file for the healed model. */
static void go(sl_tui *t, heal_ctx *c, int stage)
{
	bool have = sl_file_exists(c->ckpt);
	if (stage == 0 && have && !c->o.resume) {
		sl_tui_ask(t, "[r]esume from it  [s]tart afresh (removes it)  [c]ancel", answer_checkpoint, c,
		           "A checkpoint of this healing run is at %s.", c->ckpt);
		return;
	}
	if (stage == 0 && !have && c->o.resume) {
		sl_tui_msg(t, true, "no checkpoint of this run at %s to resume from (h heals afresh)", c->ckpt);
		heal_free(c);
		return;
	}
	if (stage <= 1 && c->out_given && sl_file_exists(c->out)) {
		sl_tui_ask(t, "[o]verwrite it  [c]ancel", answer_overwrite, c, "%s exists already: the healed model goes there.",
		           c->out);
		return;
	}
	sl_tui_submit(t, &heal_kind, c);
}

/* The settings as a run takes them. */
static void make_opts(sl_tui *t, heal_ctx *c, const sl_heal_settings *s, sl_heal_method m)
{
	const sl_model *base = t->app.model;
	const sl_session *ses = t->app.ses;
	sl_heal_opts *o = &c->o;
	sl_heal_opts_init(o, m);
	o->steps = s->steps;
	o->batch = s->batch;
	o->lr = (float)s->lr;
	o->temperature = (float)s->temperature;
	o->rank = s->rank;
	o->seq_len = s->seq_len;
	o->seed = s->seed;
	o->train_text = c->train_text;
	o->eval_text = c->eval_text;
	/* The figures on the windows :eval takes. */
	o->eval_ctx = ses->settings.ctx < base->cfg.max_seq_len ? ses->settings.ctx : base->cfg.max_seq_len;
	o->eval_chunks = ses->settings.chunks;
	o->eval_every = s->eval_every ? s->eval_every : s->steps >= 10 ? s->steps / 10 : 1;
	o->probe_chunks = s->probe ? s->probe : 4;
	o->checkpoint = c->ckpt;
	o->on_report = on_report;
	o->ctx = c;
}

void sl_task_heal(sl_tui *t, bool resume)
{
	sl_app *app = &t->app;
	const sl_heal_settings *s = &app->heal.set;
	sl_heal_method m;
	if (!app->model) {
		sl_tui_msg(t, true, "no model is open: press o or type :open PATH");
		return;
	}
	if (t->opening || app->heal.running) {
		sl_tui_msg(t, true, t->opening ? "a model is being opened; wait for it or press Esc"
		                               : "healing is running already: Esc stops it");
		return;
	}
	if (app->recipe_empty) {
		sl_tui_msg(t, true, "the recipe compresses nothing, so there is nothing to heal: choose formats in the Recipe "
		                    "view (3) or the Heatmap (6) first, e.g. :rule all format=int4-g32");
		return;
	}
	if (!sl_heal_method_parse(s->method, &m)) {
		sl_tui_msg(t, true, "healing method '%s': qat, qad, kd or lora", s->method);
		return;
	}
	const char *texts[2] = {app->calib_path, app->eval_path};
	for (int i = 0; i < 2; i++)
		if (!texts[i][0] || !sl_file_exists(texts[i])) {
			sl_tui_msg(t, true, "the %s text %s is missing; set it with :set %s=PATH", i ? "evaluation" : "calibration",
			           texts[i], i ? "evaluation" : "calibration");
			return;
		}
	heal_ctx *c = calloc(1, sizeof *c);
	char *json = NULL;
	if (!c || !(c->asked = sl_recipe_copy(app->ses->recipe)) || !(c->recipe = sl_recipe_copy(c->asked)) ||
	    !(json = sl_recipe_to_json(c->asked))) {
		if (c)
			heal_free(c);
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	/* Methods that need calibration use the session's text unless the
	 * recipe names its own, as its evaluations do. */
	if (!c->recipe->calib.text[0])
		snprintf(c->recipe->calib.text, sizeof c->recipe->calib.text, "%s", app->calib_path);
	snprintf(c->train_text, sizeof c->train_text, "%s", app->calib_path);
	snprintf(c->eval_text, sizeof c->eval_text, "%s", app->eval_path);
	c->out_given = s->out[0] != 0;
	bool named = c->out_given ? snprintf(c->out, sizeof c->out, "%s", s->out) < (int)sizeof c->out
	                          : default_out(t, s, c->out, sizeof c->out);
	if (named)
		named = s->checkpoint[0] ? snprintf(c->ckpt, sizeof c->ckpt, "%s", s->checkpoint) < (int)sizeof c->ckpt
		                         : default_checkpoint(t, s, json, c->ckpt, sizeof c->ckpt);
	free(json);
	const char *model = app->model->path;
	if (!named && !app->message[0])
		sl_tui_msg(t, true, "the path of the healed model or its checkpoint is too long");
	else if (named && !strcmp(c->out, c->ckpt))
		sl_tui_msg(t, true, "%s: the healed model and the checkpoint need files of their own", c->out);
	else if (named && (sl_tui_same_file(c->out, model) || sl_tui_same_file(c->ckpt, model)))
		sl_tui_msg(t, true, "%s is the open model: name other files (:heal set out=FILE checkpoint=FILE)", model);
	else if (named && sl_file_exists(c->ckpt) && !sl_tui_is_gguf(c->ckpt))
		sl_tui_msg(t, true, "%s exists and is no checkpoint: name another (:heal set checkpoint=FILE)", c->ckpt);
	else if (named)
		c->base = app->model;
	if (!c->base) {
		heal_free(c);
		return;
	}
	make_opts(t, c, s, m);
	c->o.resume = resume;

	/* The curves of the stopped run this one may go on from. */
	sl_healing *st = &c->st;
	const sl_healing *last = &app->heal;
	bool ok = !strcmp(last->checkpoint, c->ckpt) && last->steps == s->steps
	                  ? healing_copy(st, last)
	                  : (st->loss = sl_calloc((size_t)s->steps, sizeof *st->loss)) != NULL;
	if (!ok) {
		heal_free(c);
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	st->steps = s->steps;
	st->running = st->finished = st->has_after = false;
	st->outcome[0] = 0;
	snprintf(st->label, sizeof st->label, "%s %d steps", s->method, s->steps);
	snprintf(st->loss_name, sizeof st->loss_name, "%s", m == SL_HEAL_QAD || m == SL_HEAL_KD ? "kl" : "ce");
	sl_recipe_summary(app->ses->recipe, NULL, st->recipe, sizeof st->recipe);
	snprintf(st->out, sizeof st->out, "%s", c->out);
	snprintf(st->checkpoint, sizeof st->checkpoint, "%s", c->ckpt);
	go(t, c, 0);
}
