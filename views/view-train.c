/* The Train view: a training run started with :train, as it goes: where
 * it writes, step, loss, learning rate, tokens per second and the time
 * left, the curve of the training loss with the validation losses under
 * it, and what the run noted (tokenizer, checkpoints). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/units.h"
#include "view.h"

static void *create(void)
{
	return calloc(1, 1);
}

static sl_role dim(const void *ctx, size_t i)
{
	(void)ctx;
	(void)i;
	return SL_R_DIM;
}

static void draw(void *self, sl_app *app, sl_rect r)
{
	(void)self;
	const sl_training *s = &app->train;
	sl_text(r.y, r.x + 1, r.w - 2, SL_R_TITLE, "Training");
	if (!s->config[0]) {
		static const char none[] =
			"No run yet: t (or :train CONFIG.json) trains as slimlab train does; see slimlab(1) for the "
			"configuration. The model, its loss table and its checkpoint go to a new folder in the data "
			"directory (train/CONFIG-N), or where :train CONFIG.json --out FILE says.";
		if (r.w > 4 && r.h > 2)
			sl_wrap((sl_rect){r.y + 2, r.x + 2, r.h - 2, r.w - 4}, none, sizeof none - 1, dim, NULL, 0, true);
		return;
	}
	const char *name = strrchr(s->config, '/');
	name = name ? name + 1 : s->config;
	char out[512];
	sl_path_fit(s->output, r.w - 11 - sl_text_width(name) - 3, out, sizeof out);
	sl_textf(r.y, r.x + 10, r.w - 11, SL_R_NORMAL, "%s → %s", name, out);
	int y = r.y + 2, x = r.x + 1, w = r.w - 2;
	char el[16], eta[16];
	sl_fmt_duration(s->elapsed, el, sizeof el);
	sl_fmt_duration(s->eta, eta, sizeof eta);
	int u = sl_textf(y, x, w, SL_R_NORMAL, "step %lld of %lld  ", (long long)s->step, (long long)s->steps);
	int bw = w - u - 40 > 40 ? 40 : w - u - 40;
	if (bw > 4) {
		sl_bar(y, x + u, bw, s->steps ? (double)s->step / (double)s->steps : 0, SL_R_FILL, SL_R_EMPTY);
		u += bw;
	}
	sl_textf(y, x + u, w - u, SL_R_NORMAL, "  elapsed %s  ETA %s", el, s->running && s->step ? eta : "--:--");
	u = sl_text(y + 1, x, w, SL_R_NORMAL, "loss ");
	if (s->n_loss)
		u += sl_textf(y + 1, x + u, w - u, SL_R_ACCENT, "%.4f", s->loss[s->n_loss - 1]);
	else
		u += sl_text(y + 1, x + u, w - u, SL_R_DIM, "-");
	u += sl_textf(y + 1, x + u, w - u, SL_R_NORMAL, "   lr %.2e   |grad| %.3f   %.0f tokens/s", s->lr, s->grad_norm,
	              s->tokens_per_s);
	if (s->n_val)
		sl_textf(y + 1, x + u, w - u, SL_R_NORMAL, "   validation %.4f (PPL %.2f)", s->val[2 * s->n_val - 1],
		         s->val_ppl);

	/* The training loss over the steps, and the validation losses. */
	int notes_h = s->n_notes + (s->outcome[0] ? 1 : 0);
	sl_rect plot = {y + 4, x + 8, r.y + r.h - (y + 4) - notes_h - 3, w - 9};
	if (plot.h >= 2 && s->n_loss) {
		sl_text(y + 3, x, w, SL_R_DIM, "training loss, step 1 to now");
		sl_curve(plot, 8, s->loss, s->n_loss, s->n_loss, SL_R_ACCENT);
		double *v;
		if (s->n_val && (v = malloc((size_t)s->n_val * sizeof *v))) {
			for (int i = 0; i < s->n_val; i++)
				v[i] = s->val[2 * i + 1];
			u = sl_text(plot.y + plot.h + 1, x, w, SL_R_DIM, "validation ");
			sl_spark(plot.y + plot.h + 1, x + u, w - u, v, s->n_val, false, SL_R_RIGHT);
			free(v);
		}
	}
	int ny = r.y + r.h - notes_h;
	for (int i = 0; i < s->n_notes; i++)
		sl_text(ny + i, x, w, SL_R_DIM, s->notes[i]);
	if (s->outcome[0])
		sl_text(ny + s->n_notes, x, w, s->running ? SL_R_NORMAL : s->finished ? SL_R_GOOD : SL_R_WARN, s->outcome);
}

static bool key(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n)
{
	(void)self;
	const sl_training *s = &app->train;
	switch (k->code) {
	case 't': snprintf(cmd, n, ":train %s", s->config); return true;
	case 'r':
		if (s->config[0] && !s->running)
			snprintf(cmd, n, ":train %s --resume", s->config);
		return true;
	}
	return false;
}

static const sl_keyhelp keys[] = {
	{"t", "train: type the configuration (as slimlab train takes it); the outputs go to a new folder"},
	{"r", "resume the last run from its checkpoint, in its folder"},
	{"Esc", "stop the run, writing its checkpoint"},
	{NULL, NULL},
};

const sl_view_class sl_view_train = {
	.name = "train",
	.title = "Train",
	.hints = "t train  r resume  Esc stop",
	.keys = keys,
	.create = create,
	.destroy = free,
	.draw = draw,
	.key = key,
};
