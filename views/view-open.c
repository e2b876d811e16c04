/* The Open view: a file picker for models (GGUF, safetensors files and
 * directories, llama2.c checkpoints) and session files, shown when the
 * workbench starts without a model or on :open with no path. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/units.h"
#include "view.h"

typedef struct {
	char name[256];
	bool dir;
	double size;
} entry;

typedef struct {
	char dir[PATH_MAX];
	entry *e;
	int n;
	sl_list list;
	sl_rect table;
	char error[256];
} open_view;

static bool ends_with(const char *s, const char *t)
{
	size_t a = strlen(s), b = strlen(t);
	return a >= b && !strcmp(s + a - b, t);
}

/* What the picker offers: directories, and files that may be models or sessions. */
static bool wanted(const char *name)
{
	return ends_with(name, ".gguf") || ends_with(name, ".bin") || ends_with(name, ".safetensors") ||
	       ends_with(name, ".json");
}

static int by_kind_then_name(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	if (x->dir != y->dir)
		return x->dir ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void scan(open_view *v)
{
	free(v->e);
	v->e = NULL;
	v->n = 0;
	v->error[0] = 0;
	DIR *d = opendir(v->dir);
	if (!d) {
		snprintf(v->error, sizeof v->error, "cannot list %.200s", v->dir);
		return;
	}
	int cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' && strcmp(de->d_name, ".."))
			continue;
		char p[PATH_MAX];
		struct stat st;
		if (!sl_path_join(p, sizeof p, v->dir, de->d_name) || stat(p, &st) != 0)
			continue;
		bool dir = S_ISDIR(st.st_mode);
		if (!dir && !wanted(de->d_name))
			continue;
		if (v->n == cap) {
			cap = cap ? 2 * cap : 64;
			entry *e = realloc(v->e, (size_t)cap * sizeof *e);
			if (!e)
				break;
			v->e = e;
		}
		entry *e = &v->e[v->n++];
		snprintf(e->name, sizeof e->name, "%s", de->d_name);
		e->dir = dir;
		e->size = (double)st.st_size;
	}
	closedir(d);
	if (v->n)
		qsort(v->e, (size_t)v->n, sizeof *v->e, by_kind_then_name);
	v->list.cursor = v->list.top = 0;
}

static void *create(void)
{
	open_view *v = calloc(1, sizeof *v);
	if (v && !getcwd(v->dir, sizeof v->dir))
		snprintf(v->dir, sizeof v->dir, "/");
	return v;
}

static void destroy(void *self)
{
	open_view *v = self;
	free(v->e);
	free(v);
}

static void enter(void *self, sl_app *app)
{
	(void)app;
	scan(self);
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	(void)app;
	open_view *v = self;
	sl_text(r.y, r.x + 1, r.w - 2, SL_R_TITLE, "Open a model or a session");
	char dir[512];
	sl_path_fit(v->dir, r.w - 2, dir, sizeof dir);
	sl_text(r.y + 1, r.x + 1, r.w - 2, SL_R_DIM, dir);
	if (v->error[0]) {
		sl_text(r.y + 3, r.x + 1, r.w - 2, SL_R_BAD, v->error);
		return;
	}
	v->table = (sl_rect){r.y + 3, r.x, r.h - 3, r.w};
	sl_list_fit(&v->list, v->n, v->table.h);
	for (int i = 0; i < v->table.h && v->list.top + i < v->n; i++) {
		const entry *e = &v->e[v->list.top + i];
		bool sel = v->list.top + i == v->list.cursor;
		int y = v->table.y + i;
		sl_fill(y, r.x, r.w, sel ? SL_R_SELECTED : SL_R_NORMAL);
		sl_textf(y, r.x + 2, r.w - 16, sel ? SL_R_SELECTED : e->dir ? SL_R_TITLE : SL_R_NORMAL, "%s%s", e->name,
		         e->dir ? "/" : "");
		if (!e->dir) {
			char b[32];
			sl_fmt_bytes(e->size, b, sizeof b);
			sl_text(y, r.x + r.w - 13, 12, sel ? SL_R_SELECTED : SL_R_DIM, b);
		}
	}
}

static void go(open_view *v, const char *name)
{
	char p[PATH_MAX], real[PATH_MAX];
	if (sl_path_join(p, sizeof p, v->dir, name) && realpath(p, real)) {
		snprintf(v->dir, sizeof v->dir, "%s", real);
		scan(v);
	}
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	(void)app;
	open_view *v = self;
	if (sl_list_key(&v->list, k))
		return true;
	int before = v->list.cursor;
	if (k->code == SL_KEY_MOUSE) {
		if (!sl_list_click(&v->list, k, v->table))
			return false;
		if (before != v->list.cursor)
			return true; /* a click selects; a second click opens */
	}
	switch (k->code) {
	case SL_KEY_BACKSPACE:
	case SL_KEY_LEFT:
	case 'h':
		go(v, "..");
		return true;
	case '~': {
		const char *home = getenv("HOME");
		if (home) {
			snprintf(v->dir, sizeof v->dir, "%s", home);
			scan(v);
		}
		return true;
	}
	case '/':
		snprintf(cmd, n, ":open %s/", v->dir);
		return true;
	case SL_KEY_ENTER:
	case SL_KEY_RIGHT:
	case SL_KEY_MOUSE:
	case 'l': {
		if (v->list.cursor >= v->n)
			return true;
		const entry *e = &v->e[v->list.cursor];
		char full[PATH_MAX];
		if (!sl_path_join(full, sizeof full, v->dir, e->name))
			return true;
		char cfg[PATH_MAX];
		/* A directory with a config.json is a safetensors model. */
		if (e->dir && !(sl_path_join(cfg, sizeof cfg, full, "config.json") && sl_file_exists(cfg))) {
			go(v, e->name);
			return true;
		}
		bool session = ends_with(e->name, ".json") && !ends_with(e->name, ".index.json") &&
		               strcmp(e->name, "config.json") && strcmp(e->name, "tokenizer.json");
		snprintf(cmd, n, "%s \"%s\"", session ? "session" : "open", full);
		return true;
	}
	}
	return false;
}

static const sl_keyhelp keys[] = {
	{"Enter Right, click", "open the model or session, or go into the directory"},
	{"Backspace Left", "parent directory"},
	{"~", "home directory"},
	{"/", "type a path (Tab completes)"},
	{NULL, NULL},
};

const sl_view_class sl_view_open = {
	.name = "open",
	.title = "Open",
	.hints = "Enter open  Backspace up  ~ home  / type a path",
	.keys = keys,
	.create = create,
	.destroy = destroy,
	.enter = enter,
	.draw = draw,
	.key = key,
};
