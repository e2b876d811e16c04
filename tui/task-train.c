/* Training as a job in the workbench: `slimlab train`'s run (the same
 * configuration, the same checkpoint on cancel, --resume to go on) with
 * its steps, losses and rates reaching the Train view as they come, and
 * the model it writes offered for opening when it is done. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	sl_train_config cfg;
	bool resume;
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
		         c->cfg.checkpoint[0] ? " (:train ... --resume goes on)" : "");
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

void sl_task_train(sl_tui *t, const char *config, bool resume)
{
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
	sl_training *s = &c->st;
	s->steps = c->cfg.opt.total;
	snprintf(s->config, sizeof s->config, "%s", c->cfg.path);
	snprintf(s->output, sizeof s->output, "%s", c->cfg.output);
	s->running = true;
	c->resume = resume;
	sl_tui_submit(t, &train_kind, c);
}
