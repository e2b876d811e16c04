/* Opening a model or a session as a job (the model is hashed, checked
 * against the session and loaded on the worker thread), asking first
 * about unsaved changes, and putting what was opened in place of the
 * session, the model and everything derived from them. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "tui.h"

typedef struct {
	char path[PATH_MAX];
	char orphan[PATH_MAX];  /* an autosave to remove once its session is back */
	sl_session *ses;        /* the session being opened, or NULL for a new one */
	sl_model *model;
	char sha[65];
} open_ctx;

static sl_status open_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	(void)j;
	open_ctx *o = ctx;
	sl_progress_slice part;
	sl_status st = sl_model_file_sha256(o->path, sl_progress_slice_init(&part, p, 0, 0.8), o->sha, err);
	if (st)
		return st;
	if (o->ses && (st = sl_session_check_model(o->ses, o->sha, err)))
		return st;
	sl_load_opts lo = {.check_finite = true, .progress = sl_progress_slice_init(&part, p, 0.8, 1)};
	return sl_model_load(o->path, &lo, &o->model, err);
}

static void open_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	open_ctx *o = ctx;
	t->opening = false;
	if (st) {
		sl_tui_msg(t, st != SL_ERR_CANCELLED, "%s", st == SL_ERR_CANCELLED ? "opening cancelled" : err->msg);
		return;
	}
	sl_session *s = o->ses;
	if (!s && !(s = sl_session_new())) {
		sl_tui_msg(t, true, "out of memory for a session");
		return;
	}
	if (!o->ses) {
		snprintf(s->model_path, sizeof s->model_path, "%s", o->path);
		snprintf(s->model_sha256, sizeof s->model_sha256, "%s", o->sha);
	}
	bool recovered = s->recovered;
	o->ses = NULL;
	sl_tui_install(t, s, o->model);
	o->model = NULL;
	if (o->orphan[0])
		unlink(o->orphan); /* our own autosave holds the session now */
	sl_tui_msg(t, false, "%s %s", recovered ? "recovered the session of" : "opened", t->app.model_name);
}

static void open_free(void *ctx)
{
	open_ctx *o = ctx;
	sl_session_free(o->ses);
	sl_model_free(o->model);
	free(o);
}

static const sl_job_kind open_kind = {"open", NULL, open_run, NULL, open_done, open_free};

static void submit_open(sl_tui *t, const char *path, sl_session *ses, const char *orphan)
{
	open_ctx *o = calloc(1, sizeof *o);
	if (!o) {
		sl_session_free(ses);
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	o->ses = ses;
	snprintf(o->orphan, sizeof o->orphan, "%s", orphan ? orphan : "");
	if (!realpath(path, o->path)) {
		sl_tui_msg(t, true, "%s: no such model file or directory", path);
		open_free(o);
		return;
	}
	t->opening = true;
	if (!sl_tui_submit(t, &open_kind, o))
		t->opening = false;
}

static bool may_open(sl_tui *t)
{
	if (t->opening || sl_jobs_busy(&t->jobs)) {
		sl_tui_msg(t, true, "a job is running: wait for it or press Esc, then open");
		return false;
	}
	return true;
}

void sl_task_open_model(sl_tui *t, const char *path)
{
	if (may_open(t))
		submit_open(t, path, NULL, NULL);
}

static void open_session(sl_tui *t, const char *path, bool orphan)
{
	if (!may_open(t))
		return;
	sl_session *s;
	sl_error err = {0};
	if (sl_session_load(path, &s, &err)) {
		sl_tui_msg(t, true, "%s", err.msg);
		return;
	}
	submit_open(t, s->model_path, s, orphan ? path : NULL);
}

void sl_task_open_session(sl_tui *t, const char *path)
{
	open_session(t, path, false);
}

void sl_task_recover(sl_tui *t, const char *autosave_path)
{
	open_session(t, autosave_path, true);
}

/* --- what was opened takes the place of what was open ---------------------- */

void sl_tui_release(sl_tui *t)
{
	sl_app *a = &t->app;
	sl_tui_drop_recipe_model(t);
	sl_session_free(a->ses);
	sl_model_free(a->model);
	free(a->mods);
	free(a->blocks);
	free(a->plans);
	free(a->lowrank);
	free(a->rule_matches);
	sl_weight_stats_free(&a->wstats);
	sl_act_profile_free(a->act);
	sl_sweep_free(t->sweep);
	t->sweep = NULL;
	sl_heat_free(&a->heat);
	sl_speculation_clear(&a->spec); /* the run shown was of this model */
	sl_healing_reset(&a->heal);
	for (int i = 0; i < 2; i++)
		free(a->gen[i].text);
	a->ses = NULL;
	a->model = NULL;
	a->mods = NULL;
	a->blocks = NULL;
	a->plans = NULL;
	a->lowrank = NULL;
	a->rule_matches = NULL;
	a->act = NULL;
	a->act_in = NULL;
	a->wstats_module[0] = 0;
	memset(a->gen, 0, sizeof a->gen);
	a->gen_common = 0;
	free(a->diffs);
	a->diffs = NULL;
	a->n_diffs = 0;
	a->diffs_known = false;
	a->marked[0] = a->marked[1] = 0;
}

void sl_tui_install(sl_tui *t, sl_session *s, sl_model *m)
{
	sl_app *a = &t->app;
	sl_tui_release(t);
	a->ses = s;
	a->generation++;
	a->model = m;
	a->n_mods = m ? sl_model_modules(m, NULL, 0) : 0;
	a->mods = sl_calloc((size_t)a->n_mods, sizeof *a->mods);
	a->blocks = m ? sl_calloc((size_t)m->cfg.n_layers, sizeof *a->blocks) : NULL;
	if (m && a->mods && a->blocks)
		sl_model_modules(m, a->mods, a->n_mods);
	else
		a->n_mods = 0;
	for (int i = 0; i < a->n_mods; i++)
		if (a->mods[i].layer >= 0) {
			a->blocks[a->mods[i].layer].n_mods++;
			a->blocks[a->mods[i].layer].params += (double)sl_tensor_nelements(a->mods[i].w);
			a->blocks[a->mods[i].layer].bytes += (double)sl_tensor_bytes(a->mods[i].w);
		}
	const char *slash = m ? strrchr(m->path, '/') : NULL;
	snprintf(a->model_name, sizeof a->model_name, "%.255s", m ? (slash ? slash + 1 : m->path) : "");
	/* Texts: the session's, else the ones that ship with slimlab. */
	if (s->settings.calib_text[0])
		snprintf(a->calib_path, sizeof a->calib_path, "%s", s->settings.calib_text);
	else
		sl_shipped_find("data/calib.txt", a->calib_path, sizeof a->calib_path, NULL);
	if (s->settings.eval_text[0])
		snprintf(a->eval_path, sizeof a->eval_path, "%s", s->settings.eval_text);
	else
		sl_shipped_find("data/eval.txt", a->eval_path, sizeof a->eval_path, NULL);
	sl_tui_recipe_refresh(t);
	sl_heat_refresh(t);
	if (m && s->sweep)
		sl_task_sweep_restore(t);
	/* The session's view, entered even if it is the one shown (the file
	 * picker, last, has no tab and is never the session's). */
	int v = sl_tui_view_index(t, s->view.current);
	t->cur = t->n_views - 1;
	sl_tui_switch(t, v >= 0 && v < t->n_views - 1 ? v : 0);
	if (m && s->dirty)
		sl_tui_session_changed(t);
	else if (m)
		sl_autosave(s, NULL);
}

static void go_open_model(sl_tui *t, void *arg, bool go)
{
	if (go)
		sl_task_open_model(t, arg);
	free(arg);
}

bool sl_open_exists(sl_tui *t, const char *path)
{
	if (!access(path, F_OK))
		return true;
	sl_tui_msg(t, true, "%s does not exist", path);
	return false;
}

void sl_open_asking(sl_tui *t, const char *path)
{
	if (!sl_open_exists(t, path))
		return;
	char *p = sl_strdup(path);
	if (p)
		sl_tui_unless_unsaved(t, "opening another model", go_open_model, p);
}
