/* What the commands and the jobs ask of the workbench: a message on the
 * status line, a one-key question, another view, the derived state after
 * the recipe or the session changed, saving the session, a job to run,
 * where a job may write its files. It sits below them and above the job runner; the main loop above all
 * of them registers what it wants to hear about (a view shown). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "tui.h"

void sl_tui_msg(sl_tui *t, bool error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->app.message, sizeof t->app.message, fmt, ap);
	va_end(ap);
	t->app.message_error = error;
}

bool sl_tui_submit(sl_tui *t, const sl_job_kind *k, void *ctx)
{
	sl_error err = {0};
	if (!sl_jobs_submit(&t->jobs, k, ctx, &err))
		return true;
	sl_tui_msg(t, true, "%s", err.msg);
	return false;
}

bool sl_tui_can_use_model(sl_tui *t)
{
	if (!t->app.model) {
		sl_tui_msg(t, true, "no model is open: press o or type :open PATH");
		return false;
	}
	if (t->opening) {
		sl_tui_msg(t, true, "a model is being opened; wait for it or press Esc");
		return false;
	}
	return true;
}

/* --- views ------------------------------------------------------------------------ */

int sl_tui_view_index(const sl_tui *t, const char *name)
{
	for (int i = 0; i < t->n_views; i++)
		if (!strcmp(t->classes[i]->name, name))
			return i;
	return -1;
}

void sl_tui_switch(sl_tui *t, int i)
{
	const sl_view_class *const *v = t->classes;
	if (i == t->cur)
		return;
	if (v[t->cur]->leave)
		v[t->cur]->leave(t->views[t->cur], &t->app);
	if (v[i] == &sl_view_open && v[t->cur] != &sl_view_open)
		t->back = t->cur;
	t->cur = i;
	t->help = false;
	if (v[i]->enter)
		v[i]->enter(t->views[i], &t->app);
	if (i < t->n_views - 1)
		snprintf(t->app.ses->view.current, sizeof t->app.ses->view.current, "%s", v[i]->name);
	if (t->view_shown)
		t->view_shown(t);
}

bool sl_tui_show(sl_tui *t, const char *name)
{
	int i = sl_tui_view_index(t, name);
	if (i < 0)
		return false;
	sl_tui_switch(t, i);
	return true;
}

bool sl_tui_card(sl_tui *t, const char *kind, const char *name)
{
	sl_card_kind k = SL_CARD_FORMAT;
	if (kind && !sl_card_kind_parse(kind, &k)) {
		sl_tui_msg(t, true, "no kind of card '%s' (format, method, prune, pattern, heal, metric, speculate)", kind);
		return false;
	}
	const sl_card *c = kind ? sl_card_find(k, name) : sl_card_search(name, &k);
	if (!c) {
		sl_tui_msg(t, true, "no card for %s%s'%s' (the Help view, 0, lists every card)", kind ? kind : "",
		           kind ? " " : "", name);
		return false;
	}
	t->card.card = c;
	t->card.top = 0;
	snprintf(t->card.name, sizeof t->card.name, "%s %s", sl_card_kind_name(k), name);
	t->help = false;
	return true;
}

void sl_tui_ask(sl_tui *t, const char *choices, void (*answer)(sl_tui *t, int key, void *arg), void *arg,
                const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->ask.text, sizeof t->ask.text, fmt, ap);
	va_end(ap);
	snprintf(t->ask.choices, sizeof t->ask.choices, "%s", choices);
	t->ask.answer = answer;
	t->ask.arg = arg;
	t->ask.active = true;
}

/* --- the session and its recipe ---------------------------------------------------- */

void sl_tui_session_changed(sl_tui *t)
{
	sl_session *s = t->app.ses;
	s->dirty = true;
	if (!t->app.model)
		return;
	sl_error err = {0};
	if (sl_autosave(s, &err))
		sl_tui_msg(t, true, "autosave failed: %s", err.msg);
}

void sl_tui_drop_recipe_model(sl_tui *t)
{
	sl_model_free(t->qmodel);
	free(t->qmodel_recipe);
	t->qmodel = NULL;
	t->qmodel_recipe = NULL;
}

void sl_tui_recipe_refresh(sl_tui *t)
{
	sl_app *a = &t->app;
	const sl_recipe *r = a->ses->recipe;
	free(a->plans);
	free(a->lowrank);
	free(a->rule_matches);
	a->plans = a->model ? sl_calloc((size_t)a->n_mods, sizeof *a->plans) : NULL;
	a->lowrank = a->plans ? sl_calloc((size_t)a->n_mods, sizeof *a->lowrank) : NULL;
	a->rule_matches = sl_calloc((size_t)r->n_rules + 1, sizeof *a->rule_matches);
	a->recipe_empty = true;
	memset(&a->est, 0, sizeof a->est);
	for (int i = 0; a->plans && i < a->n_mods; i++) {
		sl_recipe_resolve(r, &a->mods[i], &a->plans[i]);
		if (sl_plan_method(&a->plans[i]) || a->plans[i].sparsity > 0)
			a->recipe_empty = false;
		if (!a->rule_matches)
			continue;
		a->rule_matches[0]++;
		for (int j = 0; j < r->n_rules; j++)
			a->rule_matches[j + 1] += sl_rule_matches(&r->rules[j], &a->mods[i]);
	}
	if (a->plans && a->lowrank)
		sl_lowrank_layout(a->mods, a->plans, a->n_mods, a->lowrank);
	if (a->model)
		sl_recipe_estimate_size(r, a->model, &a->est);
	a->n_issues = sl_recipe_check(r, a->model, a->issues, 16);
	a->n_fallbacks = a->model ? sl_recipe_fallbacks(r, a->model, a->fallbacks, 8) : 0;
	/* The recipe's model is large: drop it once it no longer matches,
	 * unless a job may be using it. */
	if (t->qmodel && !sl_jobs_busy(&t->jobs)) {
		char *key = sl_tui_model_key(a->ses);
		if (!key || strcmp(key, t->qmodel_recipe))
			sl_tui_drop_recipe_model(t);
		free(key);
	}
}

char *sl_tui_model_key(const sl_session *s)
{
	char *json = sl_recipe_to_json(s->recipe);
	if (!json || !s->healed.model[0])
		return json;
	size_t n = strlen(json) + sizeof s->healed.sha256 + 16;
	char *key = malloc(n);
	if (key)
		snprintf(key, n, "%s\nhealed %s", json, s->healed.sha256);
	free(json);
	return key;
}

void sl_tui_recipe_changed(sl_tui *t)
{
	sl_tui_recipe_refresh(t);
	sl_tui_session_changed(t);
}

bool sl_tui_save(sl_tui *t, const char *path)
{
	sl_session *s = t->app.ses;
	/* Views record where they are into the session first. */
	for (int i = 0; i < t->n_views; i++)
		if (t->classes[i]->leave)
			t->classes[i]->leave(t->views[i], &t->app);
	snprintf(s->view.current, sizeof s->view.current, "%s", t->classes[t->cur]->name);
	char target[PATH_MAX];
	snprintf(target, sizeof target, "%s", path);
	sl_error err = {0};
	if (sl_session_save(s, target, &err)) {
		sl_tui_msg(t, true, "%s", err.msg);
		return false;
	}
	s->recovered = false;
	sl_autosave(s, NULL);
	sl_tui_msg(t, false, "session saved to %s", target);
	return true;
}

typedef struct {
	void (*fn)(sl_tui *t, void *arg, bool go);
	void *arg;
} deferred;

static void answer_unsaved(sl_tui *t, int key, void *arg)
{
	deferred *d = arg;
	if (key == 's') {
		if (!t->app.ses->path[0]) {
			sl_cmdline_open(&t->cl, "save ");
			sl_tui_msg(t, false, "name the session file, save, then try again");
			d->fn(t, d->arg, false);
		} else {
			sl_tui_save(t, t->app.ses->path);
			d->fn(t, d->arg, !t->app.ses->dirty);
		}
	} else {
		d->fn(t, d->arg, key == 'd');
	}
	free(d);
}

void sl_tui_unless_unsaved(sl_tui *t, const char *what, void (*fn)(sl_tui *t, void *arg, bool go), void *arg)
{
	if (!t->app.model || !t->app.ses->dirty) {
		fn(t, arg, true);
		return;
	}
	deferred *d = malloc(sizeof *d);
	if (!d) {
		fn(t, arg, false);
		return;
	}
	*d = (deferred){fn, arg};
	sl_tui_ask(t, "[s]ave first  [d]iscard them  [c]ancel", answer_unsaved, d,
	           "The session has unsaved changes. Before %s:", what);
}

/* --- where jobs write --------------------------------------------------------------- */

bool sl_tui_same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool sl_tui_is_gguf(const char *path)
{
	char magic[4] = "";
	FILE *f = fopen(path, "rb");
	bool yes = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
	if (f)
		fclose(f);
	return yes;
}

bool sl_tui_data_subdir(sl_tui *t, const char *sub, const char *hint, char *buf, size_t n)
{
	char dir[PATH_MAX];
	sl_error err = {0};
	if (sl_data_dir(dir, sizeof dir, &err)) {
		sl_tui_msg(t, true, "%s (%s)", err.msg, hint);
		return false;
	}
	if (!sl_path_join(buf, n, dir, sub)) {
		sl_tui_msg(t, true, "the data directory's path is too long (%s)", hint);
		return false;
	}
	if (mkdir(buf, 0700) && errno != EEXIST) {
		sl_tui_msg(t, true, "%s: cannot create directory: %s (%s)", buf, strerror(errno), hint);
		return false;
	}
	return true;
}
