/* Training as a job in the workbench: `slimlab train`'s run (the same
 * configuration, a checkpoint on cancel, --resume to go on) with its
 * steps, losses and rates reaching the Train view as they come, and the
 * model it writes offered for opening when it is done. The model, its
 * loss table and its checkpoint go where the user says (a new folder in
 * the data directory unless told; an existing file only after asking,
 * never the open model), not where the configuration says: the
 * configuration may sit beside files the user keeps. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/train-run.h"
#include "tui.h"

void sl_training_free(sl_training *s)
{
	free(s->loss);
	free(s->val);
	memset(s, 0, sizeof *s);
}

/* Room for n losses; false when memory runs out (the curve then stops
 * growing, the run goes on). */
static bool loss_room(sl_training *s, int n)
{
	if (n <= s->loss_cap)
		return true;
	int cap = s->loss_cap ? s->loss_cap : 1024;
	while (cap < n)
		cap = cap > INT_MAX / 2 ? n : cap * 2;
	double *l = realloc(s->loss, (size_t)cap * sizeof *l);
	if (!l)
		return false;
	memset(l + s->loss_cap, 0, (size_t)(cap - s->loss_cap) * sizeof *l);
	s->loss = l;
	s->loss_cap = cap;
	return true;
}

/* Copies what changed during a run: only the losses dst lacks, so that a
 * long run costs the screen no more per update than a short one. */
static void training_copy(sl_training *dst, const sl_training *src)
{
	double *loss = dst->loss, *val = dst->val;
	int had = dst->n_loss, cap = dst->loss_cap, n = src->n_loss;
	if (src->n_val > dst->n_val) {
		double *v = realloc(val, (size_t)src->n_val * 2 * sizeof *v);
		if (!v)
			return;
		val = v;
		dst->val = v;
	}
	if (!loss_room(dst, n))
		n = had;
	loss = dst->loss;
	cap = dst->loss_cap;
	if (n > had)
		memcpy(loss + had, src->loss + had, (size_t)(n - had) * sizeof *loss);
	if (src->n_val)
		memcpy(val, src->val, (size_t)src->n_val * 2 * sizeof *val);
	*dst = *src;
	dst->loss = loss;
	dst->loss_cap = cap;
	dst->n_loss = n;
	dst->val = val;
}

typedef struct {
	sl_train_config cfg;     /* its outputs are the ones this run writes */
	bool resume;
	bool out_given;          /* the user named the model: existing files are asked about */
	sl_job *job;
	const sl_progress *parent;
	sl_progress p;           /* the job's progress, with tokens/s added to its stage */
	sl_training st;          /* guarded by the job's lock */
} train_ctx;

static void add_note(sl_training *s, const char *note)
{
	if (s->n_notes == 4) {
		memmove(s->notes[0], s->notes[1], 3 * sizeof s->notes[0]);
		s->n_notes--;
	}
	snprintf(s->notes[s->n_notes++], sizeof s->notes[0], "%s", note);
}

/* Worker thread, after each step, evaluation and checkpoint. */
static void on_report(void *ctx, const sl_train_report *r)
{
	train_ctx *c = ctx;
	sl_training *s = &c->st;
	char line[160];
	sl_job_lock(c->job);
	s->step = r->step;
	s->elapsed = r->elapsed_s;
	s->eta = r->eta_s;
	s->tokens_per_s = r->tokens_per_s;
	switch (r->event) {
	case SL_TRAIN_NOTE:
		add_note(s, r->note);
		break;
	case SL_TRAIN_STEP:
		if (r->step >= 1 && r->step <= s->steps && r->step <= INT_MAX && loss_room(s, (int)r->step)) {
			s->loss[r->step - 1] = r->loss;
			s->n_loss = (int)r->step;
		}
		s->lr = r->lr;
		s->grad_norm = r->grad_norm;
		break;
	case SL_TRAIN_EVAL: {
		double *v = realloc(s->val, (size_t)(s->n_val + 1) * 2 * sizeof *v);
		if (v) {
			s->val = v;
			v[2 * s->n_val] = (double)r->step;
			v[2 * s->n_val + 1] = r->val_loss;
			s->n_val++;
		}
		s->val_ppl = r->val_ppl;
		break;
	}
	case SL_TRAIN_CHECKPOINT:
		snprintf(line, sizeof line, "checkpoint at step %lld: %s", (long long)r->step, r->note);
		add_note(s, line);
		break;
	case SL_TRAIN_DONE:
		s->finished = true;
		break;
	}
	sl_job_unlock(c->job);
	sl_job_post(c->job);
}

static void on_progress(void *ctx, double frac, const char *stage)
{
	train_ctx *c = ctx;
	char buf[96];
	double rate = c->st.tokens_per_s; /* written by this thread only */
	if (rate > 0)
		snprintf(buf, sizeof buf, "%s, %.0f tok/s", stage, rate);
	sl_report(c->parent, frac, rate > 0 ? buf : stage);
}

static bool train_start(sl_tui *t, void *ctx)
{
	train_ctx *c = ctx;
	sl_training *a = &t->app.train;
	sl_training_free(a);
	training_copy(a, &c->st);
	sl_tui_show(t, "train");
	return true;
}

static sl_status train_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	train_ctx *c = ctx;
	c->job = j;
	c->parent = p;
	c->p = (sl_progress){on_progress, c, p->cancel};
	sl_train_run_opts o = {.resume = c->resume, .on_report = on_report, .ctx = c, .progress = &c->p};
	return sl_train_run(&c->cfg, &o, err);
}

static void train_update(sl_tui *t, void *ctx, sl_job *j)
{
	train_ctx *c = ctx;
	sl_job_lock(j);
	training_copy(&t->app.train, &c->st);
	sl_job_unlock(j);
}

static void answer_open(sl_tui *t, int key, void *arg)
{
	if (key == 'o')
		sl_open_asking(t, arg);
	free(arg);
}

static void train_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	train_ctx *c = ctx;
	sl_training *a = &t->app.train;
	training_copy(a, &c->st);
	a->running = false;
	const char *name = strrchr(c->cfg.path, '/');
	name = name ? name + 1 : c->cfg.path;
	if (st == SL_ERR_CANCELLED) {
		snprintf(a->outcome, sizeof a->outcome, "%.200s%s", err->msg,
		         sl_file_exists(c->cfg.checkpoint) ? " (r goes on)" : "");
		sl_tui_msg(t, false, "%s", a->outcome);
		return;
	}
	if (st) {
		snprintf(a->outcome, sizeof a->outcome, "failed: %.240s", err->msg);
		sl_tui_msg(t, true, "%s", err->msg);
		return;
	}
	snprintf(a->outcome, sizeof a->outcome, "done: %lld steps; the model is %.200s", (long long)a->step, a->output);
	char *path = sl_strdup(a->output);
	if (path)
		sl_tui_ask(t, "[o]pen it  [n]ot now", answer_open, path,
		           "Training (%s) is done: %lld steps, validation perplexity %.2f. The model is %s. Open it?", name,
		           (long long)a->step, a->val_ppl, a->output);
}

static void train_free(void *ctx)
{
	train_ctx *c = ctx;
	sl_training_free(&c->st);
	free(c);
}

static const sl_job_kind train_kind = {"train", train_start, train_run, train_update, train_done, train_free};

/* --- where a run writes ------------------------------------------------------------ */

/* The file name of path without its directory and its last extension. */
static void stem_of(const char *path, char *buf, size_t n)
{
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	const char *dot = strrchr(base, '.');
	snprintf(buf, n, "%.*s", dot && dot != base ? (int)(dot - base) : (int)strlen(base), base);
}

/* The model at out, and beside it STEM-loss.tsv and STEM.ckpt. */
static bool set_outputs(sl_train_config *cfg, const char *out)
{
	char dir[SL_PATH_MAX], stem[256], name[300];
	const char *slash = strrchr(out, '/');
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - out) : 1, slash ? out : ".");
	if (slash == out)
		snprintf(dir, sizeof dir, "/");
	stem_of(out, stem, sizeof stem);
	if (snprintf(cfg->output, sizeof cfg->output, "%s", out) >= (int)sizeof cfg->output)
		return false;
	snprintf(name, sizeof name, "%s-loss.tsv", stem);
	if (!sl_path_join(cfg->log, sizeof cfg->log, dir, name))
		return false;
	snprintf(name, sizeof name, "%s.ckpt", stem);
	return sl_path_join(cfg->checkpoint, sizeof cfg->checkpoint, dir, name);
}

/* The highest N of the folders STEM-N in dir (0: none); *resumable, the
 * highest whose folder holds the checkpoint named ckpt. */
static int last_run(const char *dir, const char *stem, const char *ckpt, int *resumable)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t k = strlen(stem);
	int last = 0;
	*resumable = 0;
	while (d && (e = readdir(d))) {
		char *end;
		if (strncmp(e->d_name, stem, k) || e->d_name[k] != '-' || e->d_name[k + 1] < '1' || e->d_name[k + 1] > '9')
			continue;
		long n = strtol(e->d_name + k + 1, &end, 10);
		if (*end || n > 1000000)
			continue;
		last = (int)n > last ? (int)n : last;
		char path[PATH_MAX];
		if ((int)n > *resumable && snprintf(path, sizeof path, "%s/%s/%s", dir, e->d_name, ckpt) < (int)sizeof path &&
		    sl_file_exists(path))
			*resumable = (int)n;
	}
	if (d)
		closedir(d);
	return last;
}

/* The outputs when the user named none: a new folder CONFIG-N in the data
 * directory's train/ for a new run; for a resumed one the last run's
 * (this session's, else the newest folder with a checkpoint). */
static bool default_outputs(sl_tui *t, train_ctx *c)
{
	const sl_training *last = &t->app.train;
	sl_train_config *cfg = &c->cfg;
	if (c->resume && last->checkpoint[0] && !strcmp(last->config, cfg->path)) {
		snprintf(cfg->output, sizeof cfg->output, "%s", last->output);
		snprintf(cfg->log, sizeof cfg->log, "%s", last->log);
		snprintf(cfg->checkpoint, sizeof cfg->checkpoint, "%s", last->checkpoint);
		return true;
	}
	char dir[PATH_MAX], run[PATH_MAX], cstem[128], mstem[128], name[300];
	if (!sl_tui_data_subdir(t, "train", "or name the model: :train CONFIG --out FILE", dir, sizeof dir))
		return false;
	stem_of(cfg->path, cstem, sizeof cstem);
	stem_of(cfg->output, mstem, sizeof mstem);
	snprintf(name, sizeof name, "%s.ckpt", mstem);
	int resumable, n = last_run(dir, cstem, name, &resumable);
	if (c->resume && !resumable) {
		sl_tui_msg(t, true, "no checkpoint of a run of %s in %s to resume from (t trains afresh)", cfg->path, dir);
		return false;
	}
	snprintf(name, sizeof name, "%s-%d", cstem, c->resume ? resumable : n + 1);
	if (!sl_path_join(run, sizeof run, dir, name)) {
		sl_tui_msg(t, true, "the data directory's path is too long (:train CONFIG --out FILE)");
		return false;
	}
	if (!c->resume && mkdir(run, 0700)) {
		sl_tui_msg(t, true, "%s: cannot create directory: %s (or name the model: :train CONFIG --out FILE)", run,
		           strerror(errno));
		return false;
	}
	snprintf(name, sizeof name, "%s.gguf", mstem);
	char out[PATH_MAX];
	if (!sl_path_join(out, sizeof out, run, name) || !set_outputs(cfg, out)) {
		sl_tui_msg(t, true, "the data directory's path is too long (:train CONFIG --out FILE)");
		return false;
	}
	return true;
}

/* What the run must not write over: the open model, and the models it
 * starts from or learns from. NULL when none of them. */
static const char *kept_file(sl_tui *t, const sl_train_config *cfg, const char **which)
{
	const char *outs[] = {cfg->output, cfg->log, cfg->checkpoint};
	const char *kept[] = {t->app.model ? t->app.model->path : "", cfg->init, cfg->teacher};
	static const char *const names[] = {"the open model", "the model this run starts from",
	                                    "the teacher of this run"};
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 3; k++)
			if (kept[k][0] && sl_tui_same_file(outs[i], kept[k])) {
				*which = names[k];
				return outs[i];
			}
	return NULL;
}

static void go(sl_tui *t, train_ctx *c, int stage);

static void answer_overwrite(sl_tui *t, int key, void *arg)
{
	if (key == 'o')
		go(t, arg, 2);
	else
		train_free(arg);
}

static void answer_checkpoint(sl_tui *t, int key, void *arg)
{
	train_ctx *c = arg;
	if (key == 's' && remove(c->cfg.checkpoint)) {
		sl_tui_msg(t, true, "%s: cannot remove it: %s", c->cfg.checkpoint, strerror(errno));
		key = 'c';
	}
	if (key == 'c') {
		train_free(c);
		return;
	}
	c->resume = key == 'r';
	go(t, c, 1);
}

/* The questions a run may need, in turn: a checkpoint already where this
 * one goes (resume it, or start afresh), existing files for the model and
 * its loss table. */
static void go(sl_tui *t, train_ctx *c, int stage)
{
	const sl_train_config *cfg = &c->cfg;
	bool have = sl_file_exists(cfg->checkpoint);
	if (stage == 0 && have && !c->resume) {
		sl_tui_ask(t, "[r]esume from it  [s]tart afresh (removes it)  [c]ancel", answer_checkpoint, c,
		           "A checkpoint is at %s already.", cfg->checkpoint);
		return;
	}
	if (stage == 0 && !have && c->resume) {
		sl_tui_msg(t, true, "no checkpoint at %s to resume from (t trains afresh)", cfg->checkpoint);
		train_free(c);
		return;
	}
	/* A resumed run's loss table is its own. */
	const char *there = sl_file_exists(cfg->output) ? cfg->output
	                    : !c->resume && sl_file_exists(cfg->log) ? cfg->log
	                                                              : NULL;
	if (stage <= 1 && c->out_given && there) {
		sl_tui_ask(t, "[o]verwrite  [c]ancel", answer_overwrite, c, "%s exists already: the run writes over it%s.",
		           there, there == cfg->output && sl_file_exists(cfg->log) ? " and its loss table" : "");
		return;
	}
	sl_training *s = &c->st;
	s->steps = cfg->opt.total;
	snprintf(s->config, sizeof s->config, "%s", cfg->path);
	snprintf(s->output, sizeof s->output, "%s", cfg->output);
	snprintf(s->log, sizeof s->log, "%s", cfg->log);
	snprintf(s->checkpoint, sizeof s->checkpoint, "%s", cfg->checkpoint);
	s->running = true;
	sl_tui_submit(t, &train_kind, c);
}

void sl_task_train(sl_tui *t, const char *config, bool resume, const char *out)
{
	if (t->app.train.running) {
		sl_tui_msg(t, true, "training is running already: Esc stops it");
		return;
	}
	train_ctx *c = calloc(1, sizeof *c);
	sl_error err = {0};
	if (!c) {
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	if (sl_train_config_load(config, &c->cfg, &err)) {
		sl_tui_msg(t, true, "%s", err.msg);
		free(c);
		return;
	}
	sl_train_config *cfg = &c->cfg;
	c->resume = resume;
	c->out_given = out && out[0];
	if (c->out_given && !set_outputs(cfg, out)) {
		sl_tui_msg(t, true, "%s: the path is too long", out);
		train_free(c);
		return;
	}
	if (!c->out_given && !default_outputs(t, c)) {
		train_free(c);
		return;
	}
	const char *which, *kept = kept_file(t, cfg, &which);
	if (kept)
		sl_tui_msg(t, true, "That would write over %s (%s): name another file (:train CONFIG --out FILE)", which,
		           kept);
	else if (!strcmp(cfg->output, cfg->log) || !strcmp(cfg->output, cfg->checkpoint))
		sl_tui_msg(t, true, "%s: the model needs a file of its own (name it FILE.gguf)", cfg->output);
	else if (sl_file_exists(cfg->checkpoint) && !sl_tui_is_gguf(cfg->checkpoint))
		sl_tui_msg(t, true, "%s exists and is no checkpoint: name another model (:train CONFIG --out FILE)",
		           cfg->checkpoint);
	else {
		go(t, c, 0);
		return;
	}
	train_free(c);
}
