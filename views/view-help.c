/* The Help view: the global keys, every view's keys and the commands, in
 * one scrolling page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

static struct {
	const sl_view_class *const *views;
	int n_views;
	const sl_keyhelp *global, *commands;
} H;

void sl_view_help_set(const sl_view_class *const *views, int n, const sl_keyhelp *global, const sl_keyhelp *commands)
{
	H.views = views;
	H.n_views = n;
	H.global = global;
	H.commands = commands;
}

typedef struct {
	sl_list list;
} help_view;

static void *create(void)
{
	return calloc(1, sizeof(help_view));
}

/* Visits the page's lines: a title (keys NULL), a key and what it does,
 * or (keys "") a line of text under the previous one. */
static int lines(void (*fn)(void *ctx, int i, const char *keys, const char *what), void *ctx)
{
	int i = 0;
#define LINE(k, w) (fn ? fn(ctx, i, k, w) : (void)0, i++)
	LINE(NULL, "Everywhere");
	for (const sl_keyhelp *k = H.global; k && k->keys; k++)
		LINE(k->keys, k->what);
	for (int v = 0; v < H.n_views; v++) {
		if (!H.views[v]->keys || !H.views[v]->keys[0].keys)
			continue;
		LINE("", "");
		LINE(NULL, H.views[v]->title);
		for (const sl_keyhelp *k = H.views[v]->keys; k->keys; k++)
			LINE(k->keys, k->what);
	}
	LINE("", "");
	LINE(NULL, "Commands (type : then a command; Tab completes)");
	for (const sl_keyhelp *k = H.commands; k && k->keys; k++) {
		LINE(k->keys, NULL); /* usages are long: each has a line of its own */
		LINE("", k->what);
	}
#undef LINE
	return i;
}

typedef struct {
	help_view *v;
	sl_rect r;
} draw_ctx;

static void draw_line(void *ctx, int i, const char *keys, const char *what)
{
	draw_ctx *d = ctx;
	int row = i - d->v->list.top;
	if (row < 0 || row >= d->r.h)
		return;
	int y = d->r.y + row;
	if (!keys) {
		sl_text(y, d->r.x + 1, d->r.w - 2, SL_R_TITLE, what);
		return;
	}
	if (!what) {
		sl_text(y, d->r.x + 3, d->r.w - 4, SL_R_ACCENT, keys);
		return;
	}
	int kw = d->r.w > 60 ? 24 : 14;
	if (!*keys)
		kw = 4;
	sl_text(y, d->r.x + 3, kw - 1, SL_R_ACCENT, keys);
	sl_text(y, d->r.x + 3 + kw, d->r.w - 4 - kw, SL_R_NORMAL, what);
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	(void)app;
	help_view *v = self;
	int n = lines(NULL, NULL);
	v->list.cursor = v->list.top; /* the page scrolls; there is no cursor */
	sl_list_fit(&v->list, n, r.h);
	draw_ctx d = {v, r};
	lines(draw_line, &d);
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	(void)app;
	(void)cmd;
	(void)n;
	help_view *v = self;
	int top = v->list.top;
	switch (k->code) {
	case SL_KEY_UP: case 'k': top--; break;
	case SL_KEY_DOWN: case 'j': top++; break;
	case SL_KEY_PGUP: top -= v->list.rows - 1; break;
	case SL_KEY_PGDN: case ' ': top += v->list.rows - 1; break;
	case SL_KEY_HOME: case 'g': top = 0; break;
	case SL_KEY_END: case 'G': top = v->list.n; break;
	case SL_KEY_MOUSE:
		if (k->button != SL_MOUSE_WHEEL_UP && k->button != SL_MOUSE_WHEEL_DOWN)
			return false;
		top += k->button == SL_MOUSE_WHEEL_UP ? -3 : 3;
		break;
	default:
		return false;
	}
	int max = v->list.n - v->list.rows;
	v->list.top = top < 0 ? 0 : top > max ? (max > 0 ? max : 0) : top;
	return true;
}

static const sl_keyhelp keys[] = {
	{"Up/Down PgUp/PgDn", "scroll"},
	{NULL, NULL},
};

const sl_view_class sl_view_help = {
	.name = "help",
	.title = "Help",
	.hints = "Up/Down PgUp/PgDn scroll",
	.keys = keys,
	.create = create,
	.destroy = free,
	.draw = draw,
	.key = key,
};
