/* The Generate view: the base model and the recipe's model continue the
 * same prompt side by side; the text after the first place where the two
 * part ways is highlighted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

static void *create(void)
{
	return calloc(1, 1);
}

/* The prompt dim, what both models wrote normal, the rest highlighted. */
typedef struct {
	size_t s1, s2;
} split;

static sl_role split_role(const void *ctx, size_t i)
{
	const split *sp = ctx;
	return i < sp->s1 ? SL_R_DIM : i < sp->s2 ? SL_R_NORMAL : SL_R_WARN;
}

static void pane(sl_rect r, const sl_gen_pane *p, const char *prompt, size_t common, sl_role title)
{
	sl_frame(r, NULL, SL_R_DIM);
	int u = sl_textf(r.y, r.x + 2, r.w - 4, title, " %s ", p->label[0] ? p->label : "-");
	if (p->n_tokens)
		sl_textf(r.y, r.x + 2 + u, r.w - 4 - u, SL_R_DIM, "%d tokens, %.0f/s%s ", p->n_tokens, p->tok_per_s,
		         p->done ? "" : " ...");
	sl_rect in = {r.y + 1, r.x + 2, r.h - 2, r.w - 4};
	if (in.w < 1 || in.h < 1)
		return;
	size_t plen = strlen(prompt);
	char *all = malloc(plen + p->len + 1);
	if (!all)
		return;
	memcpy(all, prompt, plen);
	if (p->len)
		memcpy(all + plen, p->text, p->len);
	all[plen + p->len] = 0;
	split sp = {plen, plen + common};
	sl_wrap_end(in, all, plen + p->len, split_role, &sp); /* follow the end */
	free(all);
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	(void)self;
	const sl_session *s = app->ses;
	int u = sl_text(r.y, r.x + 1, r.w - 2, SL_R_TITLE, "Generate");
	char temp[32];
	snprintf(temp, sizeof temp, s->view.temp > 0 ? "temperature %.2f" : "greedy", s->view.temp);
	sl_textf(r.y, r.x + 2 + u, r.w - 3 - u, SL_R_DIM, "%d tokens, %s · g run · p prompt · n tokens · t temperature",
	         s->view.gen_tokens, temp);
	sl_textf(r.y + 1, r.x + 1, r.w - 2, SL_R_NORMAL, "prompt: %s", s->view.prompt);
	if (!app->model) {
		sl_text(r.y + 3, r.x + 1, r.w - 2, SL_R_DIM, "Open a model first.");
		return;
	}
	if (!app->gen[0].label[0]) {
		sl_text(r.y + 3, r.x + 1, r.w - 2, SL_R_DIM, "Press g: the base model and the recipe's model continue the "
		                                              "prompt side by side.");
		return;
	}
	size_t common = app->gen_common;
	const sl_gen_pane *a = &app->gen[0], *b = &app->gen[1];
	const char *prompt = app->gen_prompt;
	sl_rect body = {r.y + 3, r.x, r.h - 3, r.w};
	if (!b->label[0]) {
		pane(body, a, prompt, a->len, SL_R_LEFT);
		return;
	}
	if (r.w >= 60) {
		int lw = r.w / 2;
		pane((sl_rect){body.y, body.x, body.h, lw}, a, prompt, common, SL_R_LEFT);
		pane((sl_rect){body.y, body.x + lw, body.h, body.w - lw}, b, prompt, common, SL_R_RIGHT);
	} else {
		int th = body.h / 2;
		pane((sl_rect){body.y, body.x, th, body.w}, a, prompt, common, SL_R_LEFT);
		pane((sl_rect){body.y + th, body.x, body.h - th, body.w}, b, prompt, common, SL_R_RIGHT);
	}
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	(void)self;
	switch (k->code) {
	case 'g': case SL_KEY_ENTER: snprintf(cmd, n, "generate"); return true;
	case 'p': snprintf(cmd, n, ":generate %s", app->ses->view.prompt); return true;
	case 'n': snprintf(cmd, n, ":set tokens=%d", app->ses->view.gen_tokens); return true;
	case 't': snprintf(cmd, n, ":set temp=%g", app->ses->view.temp); return true;
	}
	return false;
}

static const sl_keyhelp keys[] = {
	{"g Enter", "generate with the base model and the recipe's model"},
	{"p", "edit the prompt (and generate)"},
	{"n", "number of tokens to generate"},
	{"t", "temperature (0: always the most likely token)"},
	{NULL, NULL},
};

const sl_view_class sl_view_generate = {
	.name = "generate",
	.title = "Generate",
	.hints = "g generate  p prompt  n tokens  t temperature",
	.keys = keys,
	.create = create,
	.destroy = free,
	.draw = draw,
	.key = key,
};
