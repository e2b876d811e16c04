/* Speculative decoding as a job in the workbench: the draft :speculate
 * names (the model under the session's recipe, under one draft format or
 * a recipe file, its first blocks, or prompt lookup) and the model as the
 * target, as slimlab speculate runs them, each pass streaming into the
 * Speculate view: the text kept and corrected, the rejected tokens, the
 * running figures. A long continuation runs in stretches that each fit the
 * model's context (the next one continues from the second half of the
 * last), and the target alone decodes beside it, catching up after each
 * pass (sl_speculate's one definition of the speed-up, its card "speedup"). The acceptance the
 * session predicts for the draft (an evaluation of the same recipe, or
 * the sweep) stands next to the measured one; the run's figures join the
 * history, cancelled runs' too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fileio.h"
#include "core/speculate.h"
#include "core/tokenizer.h"
#include "tui.h"

void sl_speculation_init(sl_speculation *s)
{
	memset(s, 0, sizeof *s);
	s->k = 4;
	s->n = 200;
	s->predicted = NAN;
}

void sl_speculation_clear(sl_speculation *s)
{
	free(s->text);
	free(s->kind);
	free(s->pass_accept);
	s->text = NULL;
	s->kind = NULL;
	s->pass_accept = NULL;
	s->len = 0;
	s->n_pass = 0;
	s->draft[0] = s->label[0] = s->rejected[0] = 0;
	s->running = s->cancelled = false;
	memset(&s->st, 0, sizeof s->st);
	s->predicted = NAN;
}

typedef struct {
	/* What to run, settled on the main thread. */
	sl_draft draft;          /* a recipe draft's model is built on the worker */
	sl_recipe *recipe;       /* the recipe the target is compressed by, or NULL */
	char *recipe_json;       /* and as the session would keep it (no calibration default) */
	char arg[SL_SPEC_ARG];
	int k, n;
	double temp, p_min;
	char prompt[1024];
	double predicted;
	char predicted_from[64];
	uint64_t seed;
	const sl_model *target;  /* taken at start */
	/* The worker's. */
	sl_model *built;
	double bpw;
	sl_job *job;
	int32_t prev;            /* the last token of the text, for decoding the next */
	int32_t eos;
	sl_spec_stats before;    /* the stretches done */
	/* Guarded by the job's lock. */
	sl_buf text, kind;
	char rejected[256];
	sl_spec_stats st;
	double *acc;
	int n_acc, acc_cap;
} spec_ctx;

/* --- the worker ---------------------------------------------------------------- */

/* Appends token id, decoded after c->prev, as kind (lock held). */
static void put_token(spec_ctx *c, int32_t id, unsigned char kind)
{
	size_t len = 0;
	const char *s = sl_tok_decode(c->target->tok, c->prev, id, &len);
	c->prev = id;
	for (size_t i = 0; s && i < len; i++)
		if (!sl_buf_put(&c->text, s + i, 1) || !sl_buf_put(&c->kind, &kind, 1))
			return;
}

static void on_pass(void *ctx, const sl_spec_pass *p)
{
	spec_ctx *c = ctx;
	sl_job_lock(c->job);
	bool ended = false;
	for (int i = 0; i < p->n_kept; i++) {
		put_token(c, p->kept[i], SL_SPEC_KEPT);
		ended = ended || p->kept[i] == c->eos;
	}
	/* The rejected tokens were offered where the model's own token goes. */
	int32_t at = c->prev;
	size_t k = 0;
	c->rejected[0] = 0;
	for (int i = 0; i < p->n_rejected; i++) {
		size_t len = 0;
		const char *s = sl_tok_decode(c->target->tok, at, p->rejected[i], &len);
		at = p->rejected[i];
		if (s && k + len < sizeof c->rejected) {
			memcpy(c->rejected + k, s, len);
			c->rejected[k += len] = 0;
		}
	}
	if (!ended)
		put_token(c, p->own, SL_SPEC_OWN);
	c->st = c->before;
	sl_spec_stats_add(&c->st, p->stats);
	if (c->n_acc == c->acc_cap) {
		int cap = c->acc_cap ? 2 * c->acc_cap : 256;
		double *a = realloc(c->acc, (size_t)cap * sizeof *a);
		if (a) {
			c->acc = a;
			c->acc_cap = cap;
		}
	}
	int drafted = p->n_kept + p->n_rejected;
	if (c->n_acc < c->acc_cap)
		c->acc[c->n_acc++] = drafted ? (double)p->n_kept / drafted : 0;
	sl_job_unlock(c->job);
	sl_job_post(c->job);
}

/* The stretch that continues seq[0..L): the whole of it while it fills
 * at most half the context, else BOS (when the model takes one) and its
 * last tokens up to half the context. */
static int stretch(const sl_model *m, const int32_t *seq, int L, int32_t *out)
{
	int half = m->cfg.max_seq_len / 2, bos = sl_tok_add_bos(m->tok) ? sl_tok_bos(m->tok) : -1;
	if (L <= half) {
		memcpy(out, seq, (size_t)L * sizeof *seq);
		return L;
	}
	int n = 0;
	if (bos >= 0)
		out[n++] = bos;
	memcpy(out + n, seq + L - (half - n), (size_t)(half - n) * sizeof *seq);
	return half;
}

static sl_status spec_run(void *ctx, sl_job *j, const sl_progress *p, sl_error *err)
{
	spec_ctx *c = ctx;
	c->job = j;
	const sl_model *m = c->target;
	sl_progress_slice part;
	double split = c->recipe ? 0.1 : 0;
	sl_status st = SL_OK;
	if (c->recipe) {
		/* Packed weights, as the CLI builds its drafts: the draft's cost is
		 * that of its format's kernels. */
		sl_apply_opts o = {.simulate = false, .progress = sl_progress_slice_init(&part, p, 0, split)};
		sl_apply_report rep = {0};
		if ((st = sl_recipe_apply(m, c->recipe, &o, &c->built, &rep, err)))
			return st;
		c->bpw = rep.bpw;
		sl_apply_report_free(&rep);
		c->draft.model = c->built;
	}
	int32_t *ids = NULL;
	size_t n_ids = 0;
	if ((st = sl_tok_encode(m->tok, c->prompt, strlen(c->prompt), sl_tok_add_bos(m->tok), &ids, &n_ids, err)))
		return st;
	int cap = (int)n_ids + c->n + 1;
	int32_t *seq = malloc((size_t)cap * sizeof *seq), *seg = malloc((size_t)(m->cfg.max_seq_len + 1) * sizeof *seg);
	if (!seq || !seg || n_ids < 1)
		st = n_ids < 1 ? sl_errorf(err, SL_ERR_ARG, "the prompt gives no tokens: type one")
		               : sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	int L = (int)n_ids, generated = 0;
	if (!st) {
		memcpy(seq, ids, n_ids * sizeof *ids);
		c->prev = ids[n_ids - 1];
		c->eos = sl_tok_eos(m->tok);
	}
	free(ids);
	while (!st && generated < c->n) {
		int n_seg = stretch(m, seq, L, seg);
		int room = m->cfg.max_seq_len - n_seg - c->k - 1, want = c->n - generated;
		if (room < 1) {
			st = sl_errorf(err, SL_ERR_ARG, "k = %d leaves no room to generate in the model's %d positions", c->k,
			               m->cfg.max_seq_len);
			break;
		}
		sl_spec_opts o = {.k = c->k, .p_min = (float)c->p_min, .temp = (float)c->temp, .top_p = 1,
		                  .seed = c->seed + (uint64_t)generated, .n_predict = want < room ? want : room,
		                  .eos = c->eos, .baseline = true};
		double lo = split + (1 - split) * generated / c->n;
		double hi = split + (1 - split) * (generated + o.n_predict) / c->n;
		int32_t *out = NULL;
		int n_out = 0;
		sl_spec_stats one;
		st = sl_speculate(m, &c->draft, seg, n_seg, &o, on_pass, c, sl_progress_slice_init(&part, p, lo, hi), &out,
		                  &n_out, &one, err);
		if (out && n_out > 0 && L + n_out <= cap) {
			memcpy(seq + L, out, (size_t)n_out * sizeof *out);
			L += n_out;
		}
		free(out);
		generated += n_out;
		sl_job_lock(j);
		sl_spec_stats_add(&c->before, &one);
		c->st = c->before;
		sl_job_unlock(j);
		sl_job_post(j);
		if (n_out < o.n_predict)
			break; /* the end of a text, or cancelled */
	}
	free(seq);
	free(seg);
	return st;
}

/* --- the main thread ------------------------------------------------------------ */

/* What the worker wrote, into the view's copy. */
static void spec_copy(sl_speculation *s, spec_ctx *c)
{
	char *text = realloc(s->text, c->text.len + 1);
	unsigned char *kind = realloc(s->kind, c->kind.len + 1);
	if (text)
		s->text = text;
	if (kind)
		s->kind = kind;
	if (text && kind && c->text.len == c->kind.len) {
		if (c->text.len) {
			memcpy(text, c->text.data, c->text.len);
			memcpy(kind, c->kind.data, c->kind.len);
		}
		text[c->text.len] = 0;
		s->len = c->text.len;
	}
	snprintf(s->rejected, sizeof s->rejected, "%s", c->rejected);
	s->st = c->st;
	double *acc = realloc(s->pass_accept, (size_t)(c->n_acc ? c->n_acc : 1) * sizeof *acc);
	if (acc) {
		if (c->n_acc)
			memcpy(acc, c->acc, (size_t)c->n_acc * sizeof *acc);
		s->pass_accept = acc;
		s->n_pass = c->n_acc;
	}
}

static bool spec_start(sl_tui *t, void *ctx)
{
	spec_ctx *c = ctx;
	sl_speculation *s = &t->app.spec;
	c->target = t->app.model;
	if (!c->target)
		return false;
	sl_speculation_clear(s);
	snprintf(s->draft, sizeof s->draft, "%s", c->arg);
	snprintf(s->label, sizeof s->label, "%s", c->draft.label);
	s->running = true;
	/* The last run's figures leave the message line, so that what it
	 * says is always this run's. */
	sl_tui_msg(t, false, "speculating: draft %s", s->label);
	s->predicted = c->predicted;
	snprintf(s->predicted_from, sizeof s->predicted_from, "%s", c->predicted_from);
	/* The text starts as the prompt. */
	unsigned char kind = SL_SPEC_PROMPT;
	for (size_t i = 0; c->prompt[i]; i++)
		if (!sl_buf_put(&c->text, c->prompt + i, 1) || !sl_buf_put(&c->kind, &kind, 1))
			break;
	spec_copy(s, c);
	return true;
}

static void spec_update(sl_tui *t, void *ctx, sl_job *j)
{
	sl_job_lock(j);
	spec_copy(&t->app.spec, ctx);
	sl_job_unlock(j);
}

/* The run into the history, next to the evaluations. */
static void record(sl_tui *t, spec_ctx *c, bool cancelled)
{
	const sl_spec_stats *st = &c->st;
	sl_run run = {0};
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(run.when, sizeof run.when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(run.model, sizeof run.model, "speculative");
	snprintf(run.recipe, sizeof run.recipe, "%s", c->recipe ? c->recipe->name : "");
	snprintf(run.recipe_summary, sizeof run.recipe_summary, "%s", c->draft.label);
	snprintf(run.text, sizeof run.text, "prompt");
	run.bpw = c->bpw;
	run.recipe_json = c->recipe_json;
	run.r.acceptance = NAN;
	run.speculative = true;
	sl_spec_run *f = &run.spec;
	snprintf(f->draft, sizeof f->draft, "%s", c->draft.label);
	f->k = c->k;
	f->temp = c->temp;
	f->generated = st->generated;
	f->passes = st->passes;
	f->acceptance = st->acceptance;
	f->token_acceptance = st->accepted + st->rejections ? st->token_acceptance : NAN;
	f->tokens_per_pass = st->mean_len;
	f->tps = st->tps;
	f->target_tps = st->target_tps;
	f->speedup = st->speedup;
	f->predicted_speedup = st->target_tps > 0 ? st->predicted_speedup : 0;
	f->predicted_costed = st->target_tps > 0 ? st->predicted_costed : NAN;
	f->has_predicted = isfinite(c->predicted);
	f->predicted_acceptance = f->has_predicted ? c->predicted : 0;
	f->cancelled = cancelled;
	sl_error err = {0};
	if (sl_session_add_run(t->app.ses, &run, &err)) {
		sl_tui_msg(t, true, "%s", err.msg);
		return;
	}
	t->app.runs_added++;
	sl_tui_session_changed(t);
}

static void spec_done(sl_tui *t, void *ctx, sl_status st, const sl_error *err)
{
	spec_ctx *c = ctx;
	sl_speculation *s = &t->app.spec;
	spec_copy(s, c);
	s->running = false;
	s->cancelled = st == SL_ERR_CANCELLED;
	const sl_spec_stats *f = &c->st;
	if (st && st != SL_ERR_CANCELLED) {
		sl_tui_msg(t, true, "%s", err->msg);
		return;
	}
	if (!f->passes) {
		sl_tui_msg(t, false, "speculative run cancelled before its first pass");
		return;
	}
	record(t, c, s->cancelled);
	char speed[48];
	if (f->target_tps > 0)
		snprintf(speed, sizeof speed, "speed-up %.2fx", f->speedup);
	else
		snprintf(speed, sizeof speed, "%.0f tokens/s", f->tps);
	sl_tui_msg(t, false, "%s%lld tokens: acceptance %.3f, %.2f tokens/pass, %s", s->cancelled ? "cancelled at " : "",
	           (long long)f->generated, f->acceptance, f->mean_len, speed);
}

static void spec_free(void *ctx)
{
	spec_ctx *c = ctx;
	sl_recipe_free(c->recipe);
	free(c->recipe_json);
	sl_model_free(c->built);
	sl_buf_free(&c->text);
	sl_buf_free(&c->kind);
	free(c->acc);
	free(c);
}

static const sl_job_kind spec_kind = {"speculate", spec_start, spec_run, spec_update, spec_done, spec_free};

/* --- the request ------------------------------------------------------------------ */

/* The first paragraph of the evaluation text (at most ~300 bytes, cut
 * between words), else a short fixed prompt. */
static void default_prompt(sl_tui *t, char *buf, size_t n)
{
	snprintf(buf, n, "Once upon a time");
	FILE *f = t->app.eval_path[0] ? fopen(t->app.eval_path, "r") : NULL;
	char line[320];
	if (!f)
		return;
	if (fgets(line, sizeof line, f)) {
		size_t len = strcspn(line, "\r\n");
		if (len == sizeof line - 1)
			while (len > 0 && line[len - 1] != ' ')
				len--;
		while (len > 0 && line[len - 1] == ' ')
			len--;
		if (len)
			snprintf(buf, n, "%.*s", (int)len, line);
	}
	fclose(f);
}

/* Whether r plans every module of the model as the recipe JSON does. */
static bool same_recipe(const sl_app *a, const sl_recipe *r, const char *json)
{
	sl_recipe *o = NULL;
	if (!json || sl_recipe_parse(json, strlen(json), &o, NULL))
		return false;
	bool same = true;
	for (int i = 0; i < a->n_mods && same; i++) {
		sl_module_plan p, q;
		sl_recipe_resolve(r, &a->mods[i], &p);
		sl_recipe_resolve(o, &a->mods[i], &q);
		same = sl_plan_equal(&p, &q);
	}
	sl_recipe_free(o);
	return same;
}

/* The acceptance the session predicts for a recipe draft: the newest
 * evaluation of the same recipe, else the sweep's cells (greedy runs keep
 * what the argmax agrees on: top-1). */
static void predict(sl_tui *t, spec_ctx *c)
{
	c->predicted = NAN;
	if (!c->recipe)
		return;
	bool greedy = c->temp <= 0;
	const sl_session *s = t->app.ses;
	for (int i = s->n_runs - 1; i >= 0; i--) {
		const sl_run *r = &s->runs[i];
		double v = greedy ? r->r.top1 : r->r.acceptance;
		if (r->speculative || !r->r.has_base || !isfinite(v) || !same_recipe(&t->app, c->recipe, r->recipe_json))
			continue;
		c->predicted = v;
		snprintf(c->predicted_from, sizeof c->predicted_from, "%sevaluation %d", greedy ? "top-1 of " : "", i + 1);
		return;
	}
	if (!t->sweep || t->sweeping)
		return;
	double miss = sl_sweep_predict(t->sweep, c->recipe, greedy ? "top1" : "accept");
	if (!isfinite(miss))
		return;
	c->predicted = miss < 1 ? 1 - miss : 0;
	snprintf(c->predicted_from, sizeof c->predicted_from, "%sthe sweep", greedy ? "top-1 of " : "");
}

/* The draft the request names; false with the problem said. */
static bool make_draft(sl_tui *t, const sl_spec_request *q, spec_ctx *c)
{
	const sl_app *a = &t->app;
	sl_draft *d = &c->draft;
	sl_error err = {0};
	int blocks = a->model->cfg.n_layers;
	if (q->layers) {
		if (q->layers >= blocks) {
			sl_tui_msg(t, true, "--draft-layers: the model has %d blocks; the draft runs 1 to %d of them", blocks,
			           blocks - 1);
			return false;
		}
		*d = (sl_draft){.kind = SL_DRAFT_EARLY_EXIT, .layers = q->layers};
		snprintf(d->label, sizeof d->label, "first %d of %d blocks", q->layers, blocks);
		snprintf(c->arg, sizeof c->arg, "--draft-layers %d", q->layers);
		return true;
	}
	if (q->ngram) {
		*d = (sl_draft){.kind = SL_DRAFT_LOOKUP, .ngram = q->ngram};
		snprintf(d->label, sizeof d->label, "prompt lookup, %d tokens", q->ngram);
		snprintf(c->arg, sizeof c->arg, "--draft-ngram %d", q->ngram);
		return true;
	}
	d->kind = SL_DRAFT_MODEL;
	if (q->current) {
		if (a->recipe_empty) {
			sl_tui_msg(t, true, "the recipe changes nothing, so its model is the model itself: give it rules, or "
			                    "name another draft (d in the Speculate view)");
			return false;
		}
		c->recipe = sl_recipe_copy(a->ses->recipe);
		snprintf(d->label, sizeof d->label, "the recipe%s%.40s (%.2f bpw)", a->ses->recipe->name[0] ? " " : "",
		         a->ses->recipe->name, a->est.bpw);
		snprintf(c->arg, sizeof c->arg, "--draft-current");
	} else if (q->format) {
		c->recipe = sl_recipe_new();
		if (c->recipe && sl_rule_set(&c->recipe->def, "format", q->format, &err)) {
			sl_tui_msg(t, true, "--draft-format: %s", err.msg);
			return false;
		}
		snprintf(d->label, sizeof d->label, "%.40s, every module", q->format);
		snprintf(c->arg, sizeof c->arg, "--draft-format %s", q->format);
	} else {
		if (sl_recipe_load(q->recipe, &c->recipe, &err)) {
			sl_tui_msg(t, true, "%s", err.msg);
			return false;
		}
		const char *slash = strrchr(q->recipe, '/');
		snprintf(d->label, sizeof d->label, "recipe %.56s", slash ? slash + 1 : q->recipe);
		snprintf(c->arg, sizeof c->arg, "--draft-recipe %.140s", q->recipe);
	}
	if (!c->recipe || !(c->recipe_json = sl_recipe_to_json(c->recipe))) {
		sl_tui_msg(t, true, "out of memory");
		return false;
	}
	sl_task_calib_default(t, c->recipe);
	return true;
}

void sl_task_speculate(sl_tui *t, const sl_spec_request *q)
{
	if (!sl_tui_can_use_model(t))
		return;
	sl_speculation *s = &t->app.spec;
	spec_ctx *c = calloc(1, sizeof *c);
	if (!c) {
		sl_tui_msg(t, true, "out of memory");
		return;
	}
	c->k = q->k > 0 ? q->k : s->k;
	c->n = q->n > 0 ? q->n : s->n;
	c->temp = q->temp >= 0 ? q->temp : s->temp;
	c->p_min = q->p_min >= 0 ? q->p_min : s->p_min;
	if (q->prompt)
		snprintf(c->prompt, sizeof c->prompt, "%s", q->prompt);
	else if (s->prompt[0])
		snprintf(c->prompt, sizeof c->prompt, "%s", s->prompt);
	else
		default_prompt(t, c->prompt, sizeof c->prompt);
	c->seed = (uint64_t)time(NULL);
	if (!make_draft(t, q, c)) {
		spec_free(c);
		return;
	}
	predict(t, c);
	/* What the next :speculate keeps. */
	s->k = c->k;
	s->n = c->n;
	s->temp = c->temp;
	s->p_min = c->p_min;
	snprintf(s->prompt, sizeof s->prompt, "%s", c->prompt);
	/* A new run replaces the one going. */
	if (s->running)
		sl_jobs_cancel(&t->jobs);
	sl_tui_show(t, "speculate");
	sl_tui_submit(t, &spec_kind, c);
}
