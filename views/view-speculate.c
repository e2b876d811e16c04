/* The Speculate view: a speculative run as it goes. The continuation
 * streams in, the draft's kept tokens in one colour and the target's own
 * token (its correction, or the bonus after k kept) in another, the last
 * pass's rejected draft tokens dimmed after the text; under it the
 * acceptance measured (and predicted, where the session has a sweep or an
 * evaluation of the draft), the speed of the target alone and speculative
 * with the speed-up measured and predicted, acceptance over the last
 * passes, per-position acceptance and the accepted lengths. Keys change
 * the draft, k and the temperature and run again. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

static void *create(void)
{
	return calloc(1, 1);
}

/* The text's bytes by what they are; past its end, the rejected tokens. */
typedef struct {
	const unsigned char *kind;
	size_t len;
} kinds;

static sl_role kind_role(const void *ctx, size_t i)
{
	const kinds *k = ctx;
	if (i >= k->len)
		return SL_R_REJECTED;
	return k->kind[i] == SL_SPEC_KEPT ? SL_R_GOOD : k->kind[i] == SL_SPEC_OWN ? SL_R_WARN : SL_R_NORMAL;
}

static void draw_text(const sl_speculation *s, sl_rect r)
{
	size_t rl = strlen(s->rejected);
	char *all = malloc(s->len + rl + 1);
	if (!all)
		return;
	if (s->len)
		memcpy(all, s->text, s->len);
	memcpy(all + s->len, s->rejected, rl + 1);
	kinds k = {s->kind, s->len};
	sl_wrap_end(r, all, s->len + rl, kind_role, &k);
	free(all);
}

/* Acceptance; tokens per pass and what a pass costs (checking up to k + 1
 * tokens and one draft step, in steps of the model alone); the speed of both;
 * the speed-up measured and predicted; acceptance over the last passes:
 * five rows. */
enum { FIGURE_ROWS = 5 };

static void draw_figures(const sl_speculation *s, int y, int x, int w)
{
	const sl_spec_stats *st = &s->st;
	/* The acceptance of the tokens checked is what an evaluation or a
	 * sweep predicts (and what the speed-up's prediction takes). */
	int u = sl_text(y, x, w, SL_R_NORMAL, "acceptance ");
	u += sl_textf(y, x + u, w - u, SL_R_ACCENT, "%.3f", st->token_acceptance);
	u += sl_text(y, x + u, w - u, SL_R_NORMAL, " of the tokens checked");
	if (isfinite(s->predicted))
		u += sl_textf(y, x + u, w - u, SL_R_NORMAL, ", %.3f predicted (%s)", s->predicted, s->predicted_from);
	sl_textf(y, x + u, w - u, SL_R_NORMAL, " · %.3f of those drafted", st->acceptance);
	y++;
	u = sl_textf(y, x, w, SL_R_NORMAL, "%.2f tokens per pass · %lld passes · %lld tokens", st->mean_len,
	             (long long)st->passes, (long long)st->generated);
	if (st->target_tps > 0)
		sl_textf(y, x + u, w - u, SL_R_DIM, " · check %.2f steps, draft %.2f",
		         st->verify_steps, st->cost_ratio);

	u = sl_text(y + 1, x, w, SL_R_NORMAL, "tokens/s ");
	u += sl_textf(y + 1, x + u, w - u, SL_R_ACCENT, "%.0f", st->tps);
	u += sl_text(y + 1, x + u, w - u, SL_R_NORMAL, " speculative · ");
	if (st->target_tps > 0)
		sl_textf(y + 1, x + u, w - u, SL_R_NORMAL, "%.0f the model alone, timed in the same run", st->target_tps);
	else
		sl_text(y + 1, x + u, w - u, SL_R_DIM, s->running ? "the model alone: timed after the first pass"
		                                                  : "the model alone: not timed (stopped first)");

	u = sl_text(y + 2, x, w, SL_R_NORMAL, "speed-up ");
	if (st->target_tps > 0) {
		u += sl_textf(y + 2, x + u, w - u, st->speedup >= 1 ? SL_R_GOOD : SL_R_BAD, "%.2fx", st->speedup);
		sl_textf(y + 2, x + u, w - u, SL_R_NORMAL, " measured · %.2fx predicted · %.2fx if a check took one step",
		         st->predicted_costed, st->predicted_speedup);
	} else {
		sl_text(y + 2, x + u, w - u, SL_R_DIM, "-");
	}

	u = sl_text(y + 3, x, w, SL_R_DIM, "acceptance, last passes ");
	int n = s->n_pass < w - u ? s->n_pass : w - u;
	if (n > 0)
		sl_spark(y + 3, x + u, n, s->pass_accept + s->n_pass - n, n, false, SL_R_ACCENT);
}

/* Per position, the share of passes that kept at least i draft tokens,
 * and beside it how many passes kept exactly j: rows rows from y. */
static void draw_bars(const sl_speculation *s, int y, int x, int w, int rows)
{
	const sl_spec_stats *st = &s->st;
	int k = st->k, half = w / 2, bw = half - 12;
	if (bw > 30)
		bw = 30;
	int64_t most = 0;
	for (int j = 0; j <= k; j++)
		most = st->kept[j] > most ? st->kept[j] : most;
	sl_text(y, x, half - 1, SL_R_DIM, "kept at least i (share of passes)");
	sl_text(y, x + half, w - half, SL_R_DIM, "passes that kept j");
	int shown = rows - 1 < k + 1 ? rows - 1 : k + 1;
	bool cut = shown < k + 1;
	for (int row = 0; row < shown; row++) {
		int yy = y + 1 + row;
		if (cut && row == shown - 1) {
			sl_textf(yy, x, w, SL_R_DIM, "… %d more (k = %d)", k + 1 - row, k);
			break;
		}
		int i = row + 1;
		if (i <= k) {
			double f = st->passes ? (double)st->at_least[i] / (double)st->passes : 0;
			sl_textf(yy, x, 3, SL_R_DIM, "%2d", i);
			sl_bar(yy, x + 3, bw, f, SL_R_FILL, SL_R_EMPTY);
			sl_textf(yy, x + 4 + bw, half - 5 - bw, SL_R_NORMAL, "%.2f", f);
		}
		sl_textf(yy, x + half, 3, SL_R_DIM, "%2d", row);
		sl_bar(yy, x + half + 3, bw, most ? (double)st->kept[row] / (double)most : 0, SL_R_ACCENT, SL_R_EMPTY);
		sl_textf(yy, x + half + 4 + bw, w - half - 4 - bw, SL_R_NORMAL, "%lld", (long long)st->kept[row]);
	}
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	(void)self;
	const sl_speculation *s = &app->spec;
	int x = r.x + 1, w = r.w - 2;
	int u = sl_text(r.y, x, w, SL_R_TITLE, "Speculate");
	char temp[32];
	snprintf(temp, sizeof temp, s->temp > 0 ? "temperature %.2g" : "greedy", s->temp);
	u += sl_textf(r.y, x + u, w - u, SL_R_NORMAL, "  %s · k %d · %s · %d tokens", s->label[0] ? s->label : "-", s->k,
	              temp, s->n);
	if (s->running || s->cancelled)
		sl_text(r.y, x + u, w - u, s->running ? SL_R_ACCENT : SL_R_WARN, s->running ? "  running" : "  cancelled");
	if (!app->model) {
		sl_text(r.y + 2, x + 1, w - 1, SL_R_DIM, "Open a model first.");
		return;
	}
	if (!s->draft[0]) {
		sl_text(r.y + 2, x + 1, w - 1, SL_R_DIM,
		        "No run yet: s (or :speculate) starts one. A draft proposes up to k tokens, the model keeps what it "
		        "agrees with in one pass. d changes the draft, + and - k, t the temperature.");
		return;
	}
	u = sl_text(r.y + 1, x, w, SL_R_DIM, "text: ");
	u += sl_text(r.y + 1, x + u, w - u, SL_R_GOOD, "drafted and kept");
	u += sl_text(r.y + 1, x + u, w - u, SL_R_DIM, ", ");
	u += sl_text(r.y + 1, x + u, w - u, SL_R_WARN, "the model's own token");
	u += sl_text(r.y + 1, x + u, w - u, SL_R_DIM, ", ");
	sl_text(r.y + 1, x + u, w - u, SL_R_REJECTED, "rejected in the last pass");

	/* The text takes what the figures leave, three rows at least; the bars
	 * give way first. */
	int k = s->st.k ? s->st.k : s->k;
	int spare = r.h - 2 - FIGURE_ROWS - 1 - 3;
	int bar_rows = k + 2 < spare ? k + 2 : spare;
	if (bar_rows < 3)
		bar_rows = 0;
	int fig_h = FIGURE_ROWS + bar_rows;
	sl_rect text = {r.y + 2, x, r.h - 2 - fig_h - 1, w};
	draw_text(s, text);
	int fy = text.y + text.h + 1;
	if (fy + FIGURE_ROWS > r.y + r.h)
		return;
	draw_figures(s, fy, x, w);
	if (bar_rows)
		draw_bars(s, fy + FIGURE_ROWS, x, w, bar_rows);
}

/* The draft shown, or the one a run takes when none is named. */
static const char *draft_now(const sl_app *app, char (*src)[SL_SPEC_ARG], int n)
{
	return app->spec.draft[0] ? app->spec.draft : n ? src[0] : "";
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	(void)self;
	const sl_speculation *s = &app->spec;
	char src[8][SL_SPEC_ARG];
	int ns = sl_spec_sources(app, src, 8);
	const char *draft = draft_now(app, src, ns);
	switch (k->code) {
	case 's':
	case SL_KEY_ENTER: snprintf(cmd, n, "speculate %s", draft); return true;
	case 'd': {
		int at = -1;
		for (int i = 0; i < ns; i++)
			if (!strcmp(src[i], draft))
				at = i;
		/* From a draft not in the cycle (a recipe file), the first one. */
		if (ns)
			snprintf(cmd, n, "speculate %s", src[at >= 0 && s->draft[0] ? (at + 1) % ns : 0]);
		return true;
	}
	case '+':
	case '=':
		if (s->k < SL_SPEC_MAX_K)
			snprintf(cmd, n, "speculate %s --k %d", draft, s->k + 1);
		return true;
	case '-':
		if (s->k > 1)
			snprintf(cmd, n, "speculate %s --k %d", draft, s->k - 1);
		return true;
	case 't': snprintf(cmd, n, "speculate %s --temp %g", draft, s->temp > 0 ? 0.0 : 0.8); return true;
	case '?': return sl_card_cmd(SL_CARD_DECODE, "speculative", cmd, n);
	case 'A': return sl_card_cmd(SL_CARD_METRIC, "accept", cmd, n);
	case 'S': return sl_card_cmd(SL_CARD_DECODE, "speedup", cmd, n);
	case 'D': {
		/* The draft's own card: prompt lookup, early exit, or its format. */
		const char *fmt = strstr(draft, "--draft-format ");
		if (strstr(draft, "--draft-ngram"))
			return sl_card_cmd(SL_CARD_DECODE, "lookup", cmd, n);
		if (strstr(draft, "--draft-layers"))
			return sl_card_cmd(SL_CARD_DECODE, "early-exit", cmd, n);
		if (fmt && sl_card_cmd(SL_CARD_FORMAT, fmt + strlen("--draft-format "), cmd, n))
			return true;
		return sl_card_cmd(SL_CARD_DECODE, "speculative", cmd, n);
	}
	case 'n': snprintf(cmd, n, ":speculate %s -n %d", draft, s->n); return true;
	case 'p': snprintf(cmd, n, ":speculate %s ", draft); return true;
	}
	return false;
}

static const sl_keyhelp keys[] = {
	{"s Enter", "run the draft shown (again)"},
	{"d", "the next draft: the recipe, the registry's draft formats, half the blocks, prompt lookup"},
	{"+ / -", "one draft token more / fewer per pass (k), and run"},
	{"t", "greedy, or sampling at temperature 0.8, and run"},
	{"n / p", "type the number of tokens / a prompt"},
	{"Esc", "stop the run: its figures so far stay and join the history"},
	{"? / A / D", "the card of speculative decoding / of the acceptance figure / of the draft shown"},
	{"S", "the card of the speed-up: how both speeds are timed"},
	{NULL, NULL},
};

const sl_view_class sl_view_speculate = {
	.name = "speculate",
	.title = "Speculate",
	.hints = "s run  d draft  +/- k  t temperature  n tokens  p prompt",
	.keys = keys,
	.create = create,
	.destroy = free,
	.draw = draw,
	.key = key,
};
