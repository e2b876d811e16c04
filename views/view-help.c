/* The Help view: every technique card (the cursor opens one), then the
 * global keys, every view's keys and the commands, in one scrolling page.
 * Also how a card is laid out, for this page and the shell's card panel. */
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

/* --- a card's layout ------------------------------------------------------- */

/* Headings take the title role, the rest the normal one: the byte ranges
 * of the headings in the laid-out text. */
typedef struct {
	size_t head[6][2];
	int n;
} card_roles;

static sl_role card_role(const void *ctx, size_t i)
{
	const card_roles *cr = ctx;
	for (int k = 0; k < cr->n; k++)
		if (i >= cr->head[k][0] && i < cr->head[k][1])
			return SL_R_TITLE;
	return SL_R_NORMAL;
}

int sl_card_draw(const sl_card *c, sl_rect r, int top, bool draw)
{
	const char *heads[] = {"What it does", "Formula", "What to watch", "Pitfall", "Paper"};
	const char *body[] = {c->what, c->formula, c->watch, c->pitfall, c->paper};
	char text[4096];
	card_roles cr = {.n = 0};
	size_t k = 0;
	for (int i = 0; i < 5 && k < sizeof text; i++) {
		if (i)
			k += (size_t)snprintf(text + k, sizeof text - k, "\n\n");
		if (k >= sizeof text)
			break;
		cr.head[cr.n][0] = k;
		k += (size_t)snprintf(text + k, sizeof text - k, "%s", heads[i]);
		cr.head[cr.n++][1] = k < sizeof text ? k : sizeof text;
		if (k < sizeof text)
			k += (size_t)snprintf(text + k, sizeof text - k, "\n%s", body[i]);
	}
	if (k >= sizeof text)
		k = sizeof text - 1;
	return sl_wrap(r, text, k, card_role, &cr, top, draw);
}

/* --- the page ---------------------------------------------------------------- */

typedef struct {
	sl_list list;
	sl_rect at;
} help_view;

static void *create(void)
{
	return calloc(1, sizeof(help_view));
}

/* Visits the page's lines: a title (keys NULL), a key and what it does,
 * or (keys "") a line of text under the previous one; card lines come
 * with their entry (NULL elsewhere). */
typedef void (*line_fn)(void *ctx, int i, const char *keys, const char *what, const sl_card_entry *card);

static int lines(line_fn fn, void *ctx)
{
	int i = 0;
#define LINE(k, w, c) (fn ? fn(ctx, i, k, w, c) : (void)0, i++)
	LINE(NULL, "Technique cards (Enter or ? opens one; ? on a menu item, a column or a figure opens its own)", NULL);
	sl_card_entry e;
	for (int c = 0; sl_card_at(c, &e); c++)
		LINE(sl_card_kind_name(e.kind), e.card->title, &e);
	LINE("", "", NULL);
	LINE(NULL, "Everywhere", NULL);
	for (const sl_keyhelp *k = H.global; k && k->keys; k++)
		LINE(k->keys, k->what, NULL);
	for (int v = 0; v < H.n_views; v++) {
		if (!H.views[v]->keys || !H.views[v]->keys[0].keys)
			continue;
		LINE("", "", NULL);
		LINE(NULL, H.views[v]->title, NULL);
		for (const sl_keyhelp *k = H.views[v]->keys; k->keys; k++)
			LINE(k->keys, k->what, NULL);
	}
	LINE("", "", NULL);
	LINE(NULL, "Commands (type : then a command; Tab completes)", NULL);
	for (const sl_keyhelp *k = H.commands; k && k->keys; k++) {
		LINE(k->keys, NULL, NULL); /* usages are long: each has a line of its own */
		LINE("", k->what, NULL);
	}
#undef LINE
	return i;
}

typedef struct {
	help_view *v;
	sl_rect r;
} draw_ctx;

static void draw_line(void *ctx, int i, const char *keys, const char *what, const sl_card_entry *card)
{
	draw_ctx *d = ctx;
	int row = i - d->v->list.top;
	if (row < 0 || row >= d->r.h)
		return;
	int y = d->r.y + row;
	bool sel = i == d->v->list.cursor;
	if (sel)
		sl_fill(y, d->r.x, d->r.w, SL_R_SELECTED);
	if (!keys) {
		sl_text(y, d->r.x + 1, d->r.w - 2, sel ? SL_R_SELECTED : SL_R_TITLE, what);
		return;
	}
	if (!what) {
		sl_text(y, d->r.x + 3, d->r.w - 4, sel ? SL_R_SELECTED : SL_R_ACCENT, keys);
		return;
	}
	int kw = card ? 11 : d->r.w > 60 ? 24 : 14;
	if (!*keys)
		kw = 4;
	sl_text(y, d->r.x + 3, kw - 1, sel ? SL_R_SELECTED : SL_R_ACCENT, keys);
	sl_text(y, d->r.x + 3 + kw, d->r.w - 4 - kw, sel ? SL_R_SELECTED : SL_R_NORMAL, what);
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	(void)app;
	help_view *v = self;
	sl_list_fit(&v->list, lines(NULL, NULL), r.h);
	v->at = r;
	draw_ctx d = {v, r};
	lines(draw_line, &d);
}

typedef struct {
	int want;
	sl_card_entry e;
	bool found;
} find_ctx;

static void find_card(void *ctx, int i, const char *keys, const char *what, const sl_card_entry *card)
{
	(void)keys;
	(void)what;
	find_ctx *f = ctx;
	if (i == f->want && card) {
		f->e = *card;
		f->found = true;
	}
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	(void)app;
	help_view *v = self;
	if (sl_list_key(&v->list, k))
		return true;
	if (k->code == SL_KEY_MOUSE)
		return sl_list_click(&v->list, k, v->at);
	if (k->code == SL_KEY_ENTER || k->code == '?' || k->code == ' ') {
		find_ctx f = {v->list.cursor, {0}, false};
		lines(find_card, &f);
		if (!f.found)
			return k->code != '?'; /* not a card: ? shows the keys */
		sl_card_cmd(f.e.kind, f.e.name, cmd, n);
		return true;
	}
	return false;
}

static const sl_keyhelp keys[] = {
	{"Up/Down PgUp/PgDn", "move through the cards, keys and commands"},
	{"Enter ?", "open the card under the cursor"},
	{NULL, NULL},
};

const sl_view_class sl_view_help = {
	.name = "help",
	.title = "Help",
	.hints = "Up/Down move  Enter open the card",
	.keys = keys,
	.create = create,
	.destroy = free,
	.draw = draw,
	.key = key,
};
