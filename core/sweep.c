/* Sensitivity sweeps: per row (a module or a block) and option, the cost of
 * compressing that row alone, measured against the base on cached windows
 * of calibration text. The base runs once: its logits and the hidden state
 * entering every block are kept, so a cell only recomputes from its block
 * onward. Cells are independent and run as tasks on the kernel threads. */
#include "sweep.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "forward.h"
#include "methods/method.h"
#include "tokenizer.h"
#include "train.h"

typedef struct {
	char name[SL_NAME_MAX];
	int block;        /* -1: token_embd or output (see start) */
	int start;        /* the block a cell recomputes from; -1 = from the tokens */
	int first_mod;    /* the row's modules: mods[first_mod .. first_mod + n_mods) */
	int n_mods;
	double params;
} sweep_row;

struct sl_sweep {
	const sl_model *m;
	sl_sweep_option *opts;
	int n_opts;
	sl_sweep_unit unit;
	sl_module *mods;
	int n_mods;
	size_t *fisher_off;      /* per module, into fisher */
	float *fisher;           /* mean squared gradient per weight, or NULL */
	char fisher_note[160];
	sweep_row *rows;
	int n_rows;
	sl_sweep_cell *cells;    /* n_rows x n_opts */
	char text_path[4096];
	int n_ctx, n_win, first, per, calib_tokens;
	uint64_t seed;
	int32_t *wins;           /* n_win windows of n_ctx tokens */
	float *hidden;           /* (n_layers + 1) x n_win x n_ctx x dim */
	float *base_logits;      /* n_win x (n_ctx - first) x vocab */
	double base_ppl;
	sl_calib *own_calib;
	const sl_calib *calib;
	uint64_t model_hash;
	pthread_mutex_t mu;
};

/* --- options -------------------------------------------------------------- */

/* What a pruning option starts with when it names no criterion: the
 * default one (the method registry's first pruning criterion). */
static const char generic_prune[] = "sparse";

/* "2:4" (a pattern) or a fraction ("50%", "0.5") of unstructured pruning. */
static bool parse_sparsity(const char *s, sl_rule *r)
{
	int n, m;
	char frac[32];
	if (sl_pattern_nm(s, &n, &m)) {
		snprintf(frac, sizeof frac, "%.17g", 1.0 - (double)n / m);
		return !sl_rule_set(r, "pattern", s, NULL) && !sl_rule_set(r, "sparsity", frac, NULL);
	}
	sl_rule probe = *r;
	if (sl_rule_set(&probe, "sparsity", s, NULL) || !(probe.sparsity > 0 && probe.sparsity < 1))
		return false;
	*r = probe;
	return !sl_rule_set(r, "pattern", sl_method_default(SL_METHOD_PATTERN)->name, NULL);
}

/* A pruning criterion's prefix of tok ("NAME-" in "NAME-2:4"): its
 * length, or 0 when tok starts with none. */
static size_t prune_prefix(const char *tok, const char **crit)
{
	size_t k = strlen(generic_prune);
	if (!strncmp(tok, generic_prune, k) && tok[k] == '-') {
		*crit = sl_method_default(SL_METHOD_PRUNE)->name;
		return k + 1;
	}
	for (int i = 0; i < sl_method_count(); i++) {
		const sl_method *m = sl_method_at(i);
		k = strlen(m->name);
		if (m->kind == SL_METHOD_PRUNE && !strncmp(tok, m->name, k) && tok[k] == '-') {
			*crit = m->name;
			return k + 1;
		}
	}
	return 0;
}

static sl_status parse_option(const char *tok, sl_sweep_option *o, sl_error *err)
{
	sl_rule *r = &o->rule;
	sl_rule_init(r);
	snprintf(o->label, sizeof o->label, "%s", tok);
	const char *crit;
	size_t k = prune_prefix(tok, &crit);
	if (k) {
		if (!parse_sparsity(tok + k, r))
			return sl_errorf(err, SL_ERR_ARG,
			                 "option '%s': write a pattern (2:4) or a fraction (50%% or 0.5) after '%.*s'", tok,
			                 (int)k, tok);
		sl_rule_set(r, "prune", crit, NULL);
		return SL_OK;
	}
	char method[32] = "";
	const char *fmt = tok, *colon = strchr(tok, ':');
	if (colon) {
		snprintf(method, sizeof method, "%.*s", (int)(colon - tok), tok);
		fmt = colon + 1;
	} else {
		snprintf(method, sizeof method, "%s", sl_method_default(SL_METHOD_QUANT)->name);
	}
	sl_error why = {0};
	if (sl_rule_set(r, "method", method, &why) || sl_rule_set(r, "format", fmt, &why))
		return sl_errorf(err, SL_ERR_ARG, "option '%s': %s", tok, why.msg);
	if (!sl_format_find(fmt))
		return sl_errorf(err, SL_ERR_ARG, "option '%s': '%s' leaves the weights as they are; a sweep compares formats",
		                 tok, fmt);
	return SL_OK;
}

void sl_sweep_default_options(char *buf, size_t n)
{
	sl_format_names(sl_format_in_ladder, ",", buf, n);
}

void sl_sweep_options_help(char *buf, size_t n)
{
	char formats[256], methods[128], prunes[128];
	sl_format_names(sl_format_is_example, ", ", formats, sizeof formats);
	sl_method_names(SL_METHOD_QUANT, ", ", methods, sizeof methods);
	sl_method_names(SL_METHOD_PRUNE, ", ", prunes, sizeof prunes);
	snprintf(buf, n,
	         "a format (%s, ...: slimlab recipe formats), METHOD:FORMAT with METHOD one of %s, or PRUNE-S with "
	         "PRUNE one of %s (or %s for the first) and S a pattern (2:4) or a fraction (50%%)",
	         formats, methods, prunes, generic_prune);
}

sl_status sl_sweep_parse_options(const char *spec, sl_sweep_option **opts, int *n, sl_error *err)
{
	*opts = NULL;
	*n = 0;
	char *copy = sl_strdup(spec);
	if (!copy)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	size_t cap = 1;
	for (const char *p = spec; *p; p++)
		cap += *p == ',';
	sl_sweep_option *o = calloc(cap, sizeof *o);
	sl_status st = o ? SL_OK : sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	int k = 0;
	for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); !st && tok; tok = strtok_r(NULL, ", ", &save)) {
		if (strlen(tok) >= sizeof o[k].label)
			st = sl_errorf(err, SL_ERR_ARG, "option '%.20s...' is too long", tok);
		else if (!(st = parse_option(tok, &o[k], err)))
			k++;
	}
	free(copy);
	if (!st && k == 0)
		st = sl_errorf(err, SL_ERR_ARG, "no options given");
	if (st) {
		free(o);
		return st;
	}
	*opts = o;
	*n = k;
	return SL_OK;
}

/* --- preparing: rows and the base's caches --------------------------------- */

static sl_status build_rows(sl_sweep *sw, sl_error *err)
{
	const sl_model *m = sw->m;
	sw->n_mods = sl_model_modules(m, NULL, 0);
	sw->mods = calloc((size_t)sw->n_mods, sizeof *sw->mods);
	sw->fisher_off = calloc((size_t)sw->n_mods + 1, sizeof *sw->fisher_off);
	int cap = sw->unit == SL_SWEEP_BLOCKS ? m->cfg.n_layers : sw->n_mods;
	sw->rows = calloc((size_t)cap, sizeof *sw->rows);
	if (!sw->mods || !sw->fisher_off || !sw->rows)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	sl_model_modules(m, sw->mods, sw->n_mods);
	for (int i = 0; i < sw->n_mods; i++)
		sw->fisher_off[i + 1] = sw->fisher_off[i] + (size_t)sl_tensor_nelements(sw->mods[i].w);
	for (int i = 0; i < sw->n_mods; i++) {
		const sl_module *md = &sw->mods[i];
		double params = (double)sl_tensor_nelements(md->w);
		if (sw->unit == SL_SWEEP_BLOCKS) {
			if (md->layer < 0)
				continue; /* embeddings and head are not part of a block */
			sweep_row *r = &sw->rows[md->layer];
			if (!r->n_mods) {
				snprintf(r->name, sizeof r->name, "blk.%d", md->layer);
				r->block = r->start = md->layer;
				r->first_mod = i;
			}
			r->n_mods++;
			r->params += params;
			continue;
		}
		sweep_row *r = &sw->rows[sw->n_rows++];
		snprintf(r->name, sizeof r->name, "%s", md->name);
		r->block = md->layer;
		r->start = md->kind == SL_MOD_EMBD ? -1 : md->kind == SL_MOD_OUTPUT ? m->cfg.n_layers : md->layer;
		r->first_mod = i;
		r->n_mods = 1;
		r->params = params;
	}
	if (sw->unit == SL_SWEEP_BLOCKS)
		sw->n_rows = m->cfg.n_layers;
	return SL_OK;
}

static float *hidden_at(const sl_sweep *sw, int block, int win)
{
	size_t dim = (size_t)sw->m->cfg.dim;
	return sw->hidden + (((size_t)block * sw->n_win + (size_t)win) * (size_t)sw->n_ctx) * dim;
}

static float *base_logits_at(const sl_sweep *sw, int win)
{
	return sw->base_logits + (size_t)win * (size_t)(sw->n_ctx - sw->first) * (size_t)sw->m->cfg.vocab_size;
}

typedef struct {
	sl_sweep *sw;
	sl_state *s;
	int win;
} capture;

/* Keeps the residual stream entering each block and leaving the last. */
static void capture_tap(void *ctx, int layer, sl_tap where, float *x, int T, int n)
{
	capture *c = ctx;
	int L = c->sw->m->cfg.n_layers;
	int block = where == SL_TAP_BLOCK_IN ? layer : where == SL_TAP_BLOCK_OUT && layer == L - 1 ? L : -1;
	if (block < 0)
		return;
	memcpy(hidden_at(c->sw, block, c->win) + (size_t)c->s->n_past * n, x, (size_t)T * n * sizeof(float));
}

static bool any_option_needs(const sl_sweep *sw, bool hessian)
{
	for (int i = 0; i < sw->n_opts; i++) {
		const sl_rule *r = &sw->opts[i].rule;
		const sl_method *m;
		unsigned needs = 0;
		if (r->has_method && (m = sl_method_find(SL_METHOD_QUANT, r->method)))
			needs |= m->needs;
		if (r->has_prune && (m = sl_method_find(SL_METHOD_PRUNE, r->prune)))
			needs |= m->needs;
		if (hessian ? (needs & SL_NEEDS_HESSIAN) != 0 : needs != 0)
			return true;
	}
	return false;
}

/* Tokenizes as much of the text as `need` tokens take, not all of it (a
 * calibration text may be megabytes): a prefix cut after a line break,
 * doubled until it yields a margin beyond `need`. Tokens well before the
 * cut are those the whole text gives, so the windows are the same. */
static sl_status encode_prefix(const sl_tokenizer *tok, const char *text, size_t len, size_t need, int32_t **ids,
                               size_t *n, sl_error *err)
{
	enum { MARGIN = 256 };
	size_t take = (need + MARGIN) * 8;
	for (;;) {
		size_t cut = len;
		if (take < len) {
			cut = take;
			while (cut > take / 2 && text[cut - 1] != '\n')
				cut--;
			if (cut <= take / 2)
				cut = take;
		}
		sl_status st = sl_tok_encode(tok, text, cut, sl_tok_add_bos(tok), ids, n, err);
		if (st || cut == len || *n >= need + MARGIN)
			return st;
		free(*ids);
		take *= 2;
	}
}

static sl_status cache_base(sl_sweep *sw, const sl_sweep_opts *o, sl_error *err)
{
	const sl_model *m = sw->m;
	char *text;
	size_t len;
	sl_status st = sl_read_file(sw->text_path, (size_t)1 << 30, &text, &len, err);
	if (st)
		return st;
	int32_t *ids;
	size_t n;
	int max_win = o->windows > 0 ? o->windows : 8;
	st = encode_prefix(m->tok, text, len, (size_t)max_win * (size_t)sw->n_ctx, &ids, &n, err);
	free(text);
	if (st)
		return st;
	sw->n_win = sl_eval_windows(n, sw->n_ctx, max_win);
	if (sw->n_win == 0) {
		free(ids);
		return sl_errorf(err, SL_ERR_ARG, "%s: %zu tokens, fewer than one window of %d", sw->text_path, n,
		                 sw->n_ctx);
	}
	const size_t V = (size_t)m->cfg.vocab_size, D = (size_t)m->cfg.dim, W = (size_t)sw->n_win;
	sw->wins = sl_malloc_array(W * (size_t)sw->n_ctx, sizeof *sw->wins);
	sw->hidden = sl_malloc_array((size_t)(m->cfg.n_layers + 1) * W * (size_t)sw->n_ctx, D * sizeof(float));
	sw->base_logits = sl_malloc_array(W * (size_t)(sw->n_ctx - sw->first), V * sizeof(float));
	if (!sw->wins || !sw->hidden || !sw->base_logits) {
		free(ids);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the sweep's caches (%d windows of %d)", sw->n_win,
		                 sw->n_ctx);
	}
	int bos = sl_tok_add_bos(m->tok) ? sl_tok_bos(m->tok) : -1;
	for (int w = 0; w < sw->n_win; w++)
		sl_eval_window(ids, sw->n_ctx, w, bos, sw->wins + (size_t)w * sw->n_ctx);
	free(ids);

	sl_state *s;
	if ((st = sl_state_new(m, sw->n_ctx, &s, err)))
		return st;
	capture cap = {sw, s, 0};
	s->tap = capture_tap;
	s->tap_ctx = &cap;
	sl_score sc;
	sl_score_init(&sc, false);
	for (int w = 0; w < sw->n_win && !st; w++) {
		if (sl_cancelled(o->progress)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "sweep cancelled while running the base model");
			break;
		}
		cap.win = w;
		sl_state_reset(s);
		const int32_t *win = sw->wins + (size_t)w * sw->n_ctx;
		st = sl_forward(s, win, sw->n_ctx, base_logits_at(sw, w), sw->first, err);
		for (int i = 0; !st && i < sw->per; i++)
			if (!sl_score_add(&sc, base_logits_at(sw, w) + (size_t)i * V, NULL, (int)V, win[sw->first + i + 1]))
				st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		sl_report(o->progress, 0.05 * (w + 1) / sw->n_win, "running the base model");
	}
	sl_eval_result r = {0};
	sl_score_result(&sc, &r);
	sw->base_ppl = r.ppl;
	sl_score_free(&sc);
	sl_state_free(s);
	return st;
}

/* The empirical Fisher diagonal: per weight, the squared gradient of each
 * window's mean loss (over the positions the sweep scores), averaged over
 * the windows. Computed on an F32 copy, since training converts weights. */
static sl_status fisher_diag(sl_sweep *sw, const sl_sweep_opts *o, sl_error *err)
{
	const sl_model *m = sw->m;
	double need = 3.0 * 4.0 * (double)sl_model_n_params(m);
	double cap = o->fisher_max_bytes > 0 ? o->fisher_max_bytes : 2.0 * (1 << 30);
	if (m->cfg.arch != SL_ARCH_LLAMA) {
		snprintf(sw->fisher_note, sizeof sw->fisher_note, "no Fisher proxy: gradients are computed for Llama-family models");
		return SL_OK;
	}
	if (need > cap) {
		snprintf(sw->fisher_note, sizeof sw->fisher_note,
		         "no Fisher proxy: its gradients would take %.1f GB (limit %.1f GB)", need / 1e9, cap / 1e9);
		return SL_OK;
	}
	sl_model *c = NULL;
	sl_trainer *tr = NULL;
	int32_t *targets = NULL;
	sl_status st = sl_model_clone(m, &c, err);
	if (!st)
		st = sl_trainer_new(c, sl_train_kernels_cpu(), 1, sw->n_ctx - 1, &tr, err);
	if (!st && !(sw->fisher = sl_calloc(sw->fisher_off[sw->n_mods], sizeof(float))))
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for the Fisher proxy");
	if (!st && !(targets = sl_malloc_array((size_t)sw->n_ctx, sizeof *targets)))
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	int n_params = 0;
	const sl_param *params = st ? NULL : sl_trainer_params(tr, &n_params);
	/* Which trainer parameter each module's weights are. */
	const sl_param **of = st ? NULL : calloc((size_t)sw->n_mods, sizeof *of);
	for (int k = 0; of && k < sw->n_mods; k++)
		for (int i = 0; i < n_params; i++)
			if (!strcmp(params[i].t->name, sw->mods[k].w->name))
				of[k] = &params[i];
	if (!st && !of)
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	sl_loss ce = {.kind = SL_LOSS_CE};
	for (int w = 0; w < sw->n_win && !st; w++) {
		if (sl_cancelled(o->progress)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "sweep cancelled while computing gradients");
			break;
		}
		const int32_t *win = sw->wins + (size_t)w * sw->n_ctx;
		for (int i = 0; i < sw->n_ctx - 1; i++)
			targets[i] = i >= sw->first && i < sw->first + sw->per ? win[i + 1] : -1;
		double loss;
		sl_trainer_zero_grad(tr);
		st = sl_trainer_backward(tr, win, targets, 1, &ce, NULL, 1.0f, &loss, NULL, err);
		for (int k = 0; !st && k < sw->n_mods; k++) {
			if (!of[k])
				continue;
			float *F = sw->fisher + sw->fisher_off[k];
			for (size_t i = 0; i < of[k]->n; i++)
				F[i] += of[k]->grad[i] * of[k]->grad[i] / (float)sw->n_win;
		}
		sl_report(o->progress, 0.05 + 0.05 * (w + 1) / sw->n_win, "gradients for the Fisher proxy");
	}
	free(of);
	free(targets);
	sl_trainer_free(tr);
	sl_model_free(c);
	if (st) {
		free(sw->fisher);
		sw->fisher = NULL;
	}
	return st;
}

void sl_sweep_free(sl_sweep *sw)
{
	if (!sw)
		return;
	free(sw->opts);
	free(sw->mods);
	free(sw->fisher_off);
	free(sw->fisher);
	free(sw->rows);
	free(sw->cells);
	free(sw->wins);
	free(sw->hidden);
	free(sw->base_logits);
	sl_calib_free(sw->own_calib);
	pthread_mutex_destroy(&sw->mu);
	free(sw);
}

sl_status sl_sweep_new(const sl_model *m, const sl_sweep_option *opts, int n_opts, const sl_sweep_opts *o,
                       sl_sweep **out, sl_error *err)
{
	*out = NULL;
	if (!o || !o->text_path)
		return sl_errorf(err, SL_ERR_ARG, "a sweep needs a calibration text");
	if (n_opts <= 0)
		return sl_errorf(err, SL_ERR_ARG, "a sweep needs at least one option");
	sl_sweep *sw = calloc(1, sizeof *sw);
	if (!sw)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&sw->mu, NULL);
	sw->m = m;
	sw->unit = o->unit;
	snprintf(sw->text_path, sizeof sw->text_path, "%s", o->text_path);
	sw->n_ctx = o->ctx > 0 ? o->ctx : 128;
	if (sw->n_ctx > m->cfg.max_seq_len)
		sw->n_ctx = m->cfg.max_seq_len;
	sw->first = sw->n_ctx / 2;
	sw->per = sw->n_ctx - 1 - sw->first;
	sw->calib_tokens = o->calib_tokens > 0 ? o->calib_tokens : 4096;
	sw->seed = o->seed;
	sw->opts = malloc((size_t)n_opts * sizeof *sw->opts);
	sl_status st = sw->opts ? SL_OK : sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	if (!st) {
		memcpy(sw->opts, opts, (size_t)n_opts * sizeof *opts);
		sw->n_opts = n_opts;
		st = build_rows(sw, err);
	}
	if (!st && sw->n_ctx < 4)
		st = sl_errorf(err, SL_ERR_ARG, "a window of %d tokens is too small to score", sw->n_ctx);
	if (!st && !(sw->cells = calloc((size_t)sw->n_rows * n_opts, sizeof *sw->cells)))
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	if (!st)
		st = cache_base(sw, o, err);
	sw->calib = o->calib;
	/* Statistics feed both the methods and the activation-weighted proxy. */
	if (!st && !sw->calib) {
		sl_calib_opts co = {.text_path = sw->text_path, .tokens = sw->calib_tokens, .ctx = sw->n_ctx,
		                    .seed = sw->seed, .hessians = any_option_needs(sw, true), .progress = NULL};
		st = sl_calib_gather(m, &co, &sw->own_calib, err);
		sw->calib = sw->own_calib;
	}
	if (!st && !o->no_fisher)
		st = fisher_diag(sw, o, err);
	else if (!st)
		snprintf(sw->fisher_note, sizeof sw->fisher_note, "no Fisher proxy: not asked for");
	if (!st)
		sw->model_hash = sl_model_hash(m);
	if (st) {
		sl_sweep_free(sw);
		return st;
	}
	*out = sw;
	return SL_OK;
}

/* --- accessors ------------------------------------------------------------- */

int sl_sweep_rows(const sl_sweep *sw) { return sw->n_rows; }
int sl_sweep_cols(const sl_sweep *sw) { return sw->n_opts; }
const char *sl_sweep_row_name(const sl_sweep *sw, int row) { return sw->rows[row].name; }
int sl_sweep_row_block(const sl_sweep *sw, int row) { return sw->rows[row].block; }
double sl_sweep_row_params(const sl_sweep *sw, int row) { return sw->rows[row].params; }
const sl_sweep_option *sl_sweep_col(const sl_sweep *sw, int col) { return &sw->opts[col]; }
double sl_sweep_base_ppl(const sl_sweep *sw) { return sw->base_ppl; }
const char *sl_sweep_fisher_note(const sl_sweep *sw) { return sw->fisher_note; }

static sl_sweep_cell *cell_of(const sl_sweep *sw, int row, int col)
{
	return &sw->cells[(size_t)row * sw->n_opts + col];
}

const sl_sweep_cell *sl_sweep_cell_at(const sl_sweep *sw, int row, int col)
{
	return cell_of(sw, row, col);
}

int sl_sweep_done(const sl_sweep *sw)
{
	int n = 0;
	for (size_t i = 0; i < (size_t)sw->n_rows * sw->n_opts; i++)
		n += sw->cells[i].done;
	return n;
}

/* --- one cell ---------------------------------------------------------------- */

/* The model with the row's weights swapped: a copy of the struct and of its
 * block table pointing at the replacements; tensors are shared, not copied. */
static sl_model *swapped(const sl_model *m, const sl_module *mods, int n, sl_tensor *repl)
{
	sl_model *c = malloc(sizeof *c);
	sl_layer *layers = malloc((size_t)m->cfg.n_layers * sizeof *layers);
	if (!c || !layers) {
		free(c);
		free(layers);
		return NULL;
	}
	*c = *m;
	memcpy(layers, m->layers, (size_t)m->cfg.n_layers * sizeof *layers);
	c->layers = layers;
	for (int i = 0; i < n; i++) {
		const sl_module *md = &mods[i];
		sl_tensor *t = &repl[i];
		sl_layer *L = md->layer >= 0 ? &layers[md->layer] : NULL;
		switch (md->kind) {
		case SL_MOD_EMBD:
			if (m->output == m->tok_embd)
				c->output = t;
			c->tok_embd = t;
			break;
		case SL_MOD_OUTPUT: c->output = t; break;
		case SL_MOD_ATTN_Q: L->wq = t; break;
		case SL_MOD_ATTN_K: L->wk = t; break;
		case SL_MOD_ATTN_V: L->wv = t; break;
		case SL_MOD_ATTN_QKV: L->wqkv = t; break;
		case SL_MOD_ATTN_OUT: L->wo = t; break;
		case SL_MOD_FFN_GATE: L->w_gate = t; break;
		case SL_MOD_FFN_UP: L->w_up = t; break;
		case SL_MOD_FFN_DOWN: L->w_down = t; break;
		}
	}
	return c;
}

static void free_swapped(sl_model *c)
{
	if (c)
		free(c->layers);
	free(c);
}

/* The proxies of replacing W by its compressed form Q: relative weight
 * error, the same weighted by each input channel's mean square activation,
 * and half the Fisher-weighted squared change. Sums over the row's modules. */
static void proxies(const sl_sweep *sw, const sweep_row *row, const sl_tensor *repl, double *out)
{
	double w_err = 0, w_norm = 0, a_err = 0, a_norm = 0, fisher = 0;
	bool have_act = true;
	for (int k = 0; k < row->n_mods; k++) {
		const sl_module *md = &sw->mods[row->first_mod + k];
		int64_t rows = md->w->ne[1], cols = md->w->ne[0];
		float *W = sl_malloc_array((size_t)(rows * cols), sizeof(float));
		float *Q = sl_malloc_array((size_t)(rows * cols), sizeof(float));
		if (!W || !Q) {
			free(W);
			free(Q);
			for (int p = 0; p < SL_PROXY_COUNT; p++)
				out[p] = NAN;
			return;
		}
		sl_tensor_rows_to_f32(md->w, 0, rows, W);
		sl_tensor_rows_to_f32(&repl[k], 0, rows, Q);
		const sl_act_stats *st = sl_calib_stats(sw->calib, md);
		have_act &= st && st->n == cols && st->n_tokens > 0;
		const float *F = sw->fisher ? sw->fisher + sw->fisher_off[row->first_mod + k] : NULL;
		for (int64_t r = 0; r < rows; r++)
			for (int64_t c = 0; c < cols; c++) {
				size_t i = (size_t)(r * cols + c);
				double d = (double)Q[i] - W[i], w = W[i];
				w_err += d * d;
				w_norm += w * w;
				if (have_act) {
					double ms = st->sum_sq[c] / (double)st->n_tokens;
					a_err += ms * d * d;
					a_norm += ms * w * w;
				}
				if (F)
					fisher += 0.5 * F[i] * d * d;
			}
		free(W);
		free(Q);
	}
	out[SL_PROXY_WEIGHT] = w_norm > 0 ? sqrt(w_err / w_norm) : NAN;
	out[SL_PROXY_ACT] = have_act && a_norm > 0 ? sqrt(a_err / a_norm) : NAN;
	out[SL_PROXY_FISHER] = sw->fisher ? fisher : NAN;
}

static sl_status measure(const sl_sweep *sw, int row_i, int col, sl_sweep_cell *cell, const sl_progress *p,
                         sl_error *err)
{
	const sweep_row *row = &sw->rows[row_i];
	const sl_model *m = sw->m;
	double t0 = sl_now();
	memset(cell, 0, sizeof *cell);
	sl_recipe rec = {0};
	rec.def = sw->opts[col].rule;
	sl_tensor *repl = calloc((size_t)row->n_mods, sizeof *repl);
	if (!repl)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	sl_status st = SL_OK;
	for (int k = 0; k < row->n_mods && !st; k++) {
		const sl_module *md = &sw->mods[row->first_mod + k];
		sl_module_plan plan;
		sl_recipe_resolve(&rec, md, &plan);
		sl_module_report rep;
		st = sl_compress_module(m, md, &plan, sw->calib, false, &repl[k], &rep, err);
		cell->bytes += rep.bytes_after;
		cell->bytes_before += rep.bytes_before;
		if (!st && rep.asked && rep.used && rep.asked != rep.used)
			snprintf(cell->note, sizeof cell->note, "%.60s fell back to %.20s", md->name, rep.used->name);
	}
	sl_model *mm = st ? NULL : swapped(m, sw->mods + row->first_mod, row->n_mods, repl);
	sl_state *s = NULL;
	float *lg = NULL;
	const int V = m->cfg.vocab_size;
	if (!st && !mm)
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	if (!st)
		st = sl_state_new(mm, sw->n_ctx, &s, err);
	if (!st && !(lg = sl_malloc_array((size_t)(sw->n_ctx - sw->first), (size_t)V * sizeof(float))))
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	sl_score sc;
	sl_score_init(&sc, true);
	for (int w = 0; w < sw->n_win && !st; w++) {
		if (sl_cancelled(p)) {
			st = SL_ERR_CANCELLED;
			break;
		}
		const int32_t *win = sw->wins + (size_t)w * sw->n_ctx;
		sl_state_reset(s);
		if (row->start < 0)
			st = sl_forward(s, win, sw->n_ctx, lg, sw->first, err);
		else
			st = sl_forward_from(s, row->start, hidden_at(sw, row->start, w), sw->n_ctx, lg, sw->first, err);
		for (int i = 0; !st && i < sw->per; i++)
			if (!sl_score_add(&sc, lg + (size_t)i * V, base_logits_at(sw, w) + (size_t)i * V, V,
			                  win[sw->first + i + 1]))
				st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	if (!st) {
		sl_eval_result r = {0};
		sl_score_result(&sc, &r);
		cell->kl = r.kl_mean;
		cell->kl_se = r.kl_se;
		cell->dppl = r.delta_ppl;
		cell->top1 = r.top1;
		cell->ppl = r.ppl;
		proxies(sw, row, repl, cell->proxy);
		cell->done = true;
	}
	cell->seconds = sl_now() - t0;
	sl_score_free(&sc);
	free(lg);
	sl_state_free(s);
	free_swapped(mm);
	for (int k = 0; k < row->n_mods; k++)
		sl_tensor_release(&repl[k]);
	free(repl);
	return st;
}

sl_status sl_sweep_measure(sl_sweep *sw, int row, int col, sl_error *err)
{
	if (row < 0 || row >= sw->n_rows || col < 0 || col >= sw->n_opts)
		return sl_errorf(err, SL_ERR_ARG, "no cell (%d, %d) in a %d x %d sweep", row, col, sw->n_rows, sw->n_opts);
	sl_sweep_cell c;
	sl_status st = measure(sw, row, col, &c, NULL, err);
	if (st)
		return st;
	*cell_of(sw, row, col) = c;
	return SL_OK;
}

/* --- running every cell --------------------------------------------------- */

typedef struct {
	sl_sweep *sw;
	int *todo;          /* cell indices */
	int n_todo, n_finished, total, already;
	sl_sweep_cell_fn on_cell;
	void *ctx;
	const sl_progress *p;
} run_ctx;

static void run_task(int i, void *arg)
{
	run_ctx *rc = arg;
	sl_sweep *sw = rc->sw;
	int idx = rc->todo[i], row = idx / sw->n_opts, col = idx % sw->n_opts;
	if (sl_cancelled(rc->p))
		return;
	sl_sweep_cell c;
	sl_error err = {0};
	sl_status st = measure(sw, row, col, &c, rc->p, &err);
	if (st == SL_ERR_CANCELLED)
		return;
	if (st) {
		/* A cell that cannot be measured says why and counts as done, so a
		 * resumed sweep does not stumble on it again. */
		memset(&c, 0, sizeof c);
		c.done = c.failed = true;
		c.kl = c.dppl = NAN;
		snprintf(c.note, sizeof c.note, "%.95s", err.msg);
	}
	pthread_mutex_lock(&sw->mu);
	*cell_of(sw, row, col) = c;
	rc->n_finished++;
	char stage[160];
	snprintf(stage, sizeof stage, "%s x %s", sw->rows[row].name, sw->opts[col].label);
	sl_report(rc->p, 0.05 + 0.95 * (rc->already + rc->n_finished) / rc->total, stage);
	if (rc->on_cell)
		rc->on_cell(rc->ctx, row, col, cell_of(sw, row, col));
	pthread_mutex_unlock(&sw->mu);
}

sl_status sl_sweep_run(sl_sweep *sw, sl_sweep_cell_fn on_cell, void *ctx, const sl_progress *p, sl_error *err)
{
	int total = sw->n_rows * sw->n_opts;
	run_ctx rc = {sw, malloc((size_t)total * sizeof(int)), 0, 0, total, 0, on_cell, ctx, p};
	if (!rc.todo)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	/* Rows in order, options within a row: the heatmap fills top to bottom. */
	for (int i = 0; i < total; i++) {
		if (sw->cells[i].done)
			rc.already++;
		else
			rc.todo[rc.n_todo++] = i;
	}
	sl_parallel_for(rc.n_todo, run_task, &rc);
	free(rc.todo);
	if (sl_cancelled(p))
		return sl_errorf(err, SL_ERR_CANCELLED, "sweep cancelled: %d of %d cells measured; run it again to go on",
		                 sl_sweep_done(sw), total);
	return SL_OK;
}

/* --- proxies against the measurement ----------------------------------------- */

static void ranks(const double *v, int n, double *rank)
{
	sl_scored *s = malloc((size_t)n * sizeof *s);
	if (!s)
		return;
	for (int i = 0; i < n; i++)
		s[i] = (sl_scored){v[i], i};
	sl_sort_scored(s, (size_t)n);
	for (int i = 0; i < n;) {
		int j = i;
		while (j + 1 < n && s[j + 1].key == s[i].key)
			j++;
		for (int k = i; k <= j; k++)
			rank[s[k].idx] = (i + j) / 2.0; /* ties share their mean rank */
		i = j + 1;
	}
	free(s);
}

double sl_sweep_spearman(const sl_sweep *sw, int proxy, int col)
{
	int cap = sw->n_rows * sw->n_opts, n = 0;
	double *x = malloc((size_t)cap * sizeof *x), *y = malloc((size_t)cap * sizeof *y);
	double *rx = malloc((size_t)cap * sizeof *rx), *ry = malloc((size_t)cap * sizeof *ry);
	double rho = NAN;
	if (!x || !y || !rx || !ry)
		goto out;
	for (int r = 0; r < sw->n_rows; r++)
		for (int c = 0; c < sw->n_opts; c++) {
			const sl_sweep_cell *cl = cell_of(sw, r, c);
			if ((col >= 0 && c != col) || !cl->done || cl->failed || !isfinite(cl->proxy[proxy]) ||
			    !isfinite(cl->kl))
				continue;
			x[n] = cl->proxy[proxy];
			y[n] = cl->kl;
			n++;
		}
	if (n < 3)
		goto out;
	ranks(x, n, rx);
	ranks(y, n, ry);
	double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
	for (int i = 0; i < n; i++) {
		mx += rx[i];
		my += ry[i];
	}
	mx /= n;
	my /= n;
	for (int i = 0; i < n; i++) {
		sxy += (rx[i] - mx) * (ry[i] - my);
		sxx += (rx[i] - mx) * (rx[i] - mx);
		syy += (ry[i] - my) * (ry[i] - my);
	}
	rho = sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
out:
	free(x);
	free(y);
	free(rx);
	free(ry);
	return rho;
}

/* --- export and restore ----------------------------------------------------- */

double sl_sweep_metric(const sl_sweep_cell *c, const char *metric)
{
	if (!c->done || c->failed)
		return NAN;
	if (!strcmp(metric, "dppl"))
		return c->dppl;
	if (!strcmp(metric, "top1"))
		return 1.0 - c->top1;
	return c->kl;
}

static const char *proxy_names[SL_PROXY_COUNT] = {"weight_error", "activation_error", "fisher"};

static cJSON *num_or_null(double v)
{
	return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

cJSON *sl_sweep_to_json(const sl_sweep *sw)
{
	cJSON *o = cJSON_CreateObject();
	char hash[32];
	snprintf(hash, sizeof hash, "%016llx", (unsigned long long)sw->model_hash);
	cJSON_AddNumberToObject(o, "slimlab_sweep", 1);
	cJSON_AddStringToObject(o, "model", sw->m->path);
	cJSON_AddStringToObject(o, "model_hash", hash);
	cJSON_AddStringToObject(o, "text", sw->text_path);
	cJSON_AddNumberToObject(o, "ctx", sw->n_ctx);
	cJSON_AddNumberToObject(o, "windows", sw->n_win);
	cJSON_AddNumberToObject(o, "calib_tokens", sw->calib_tokens);
	cJSON_AddNumberToObject(o, "seed", (double)sw->seed);
	cJSON_AddStringToObject(o, "unit", sw->unit == SL_SWEEP_BLOCKS ? "block" : "module");
	cJSON_AddNumberToObject(o, "base_ppl", sw->base_ppl);
	cJSON *opts = cJSON_AddArrayToObject(o, "options");
	for (int c = 0; c < sw->n_opts; c++)
		cJSON_AddItemToArray(opts, cJSON_CreateString(sw->opts[c].label));
	cJSON *rows = cJSON_AddArrayToObject(o, "rows");
	for (int r = 0; r < sw->n_rows; r++) {
		cJSON *row = cJSON_CreateObject();
		cJSON_AddStringToObject(row, "name", sw->rows[r].name);
		cJSON_AddNumberToObject(row, "block", sw->rows[r].block);
		cJSON_AddNumberToObject(row, "params", sw->rows[r].params);
		cJSON *cells = cJSON_AddArrayToObject(row, "cells");
		for (int c = 0; c < sw->n_opts; c++) {
			const sl_sweep_cell *cl = cell_of(sw, r, c);
			if (!cl->done) {
				cJSON_AddItemToArray(cells, cJSON_CreateNull());
				continue;
			}
			cJSON *j = cJSON_CreateObject();
			cJSON_AddItemToObject(j, "kl", num_or_null(cl->kl));
			cJSON_AddItemToObject(j, "kl_se", num_or_null(cl->kl_se));
			cJSON_AddItemToObject(j, "dppl", num_or_null(cl->dppl));
			cJSON_AddItemToObject(j, "top1", num_or_null(cl->top1));
			cJSON_AddItemToObject(j, "ppl", num_or_null(cl->ppl));
			cJSON_AddNumberToObject(j, "bytes", cl->bytes);
			cJSON_AddNumberToObject(j, "bytes_before", cl->bytes_before);
			for (int p = 0; p < SL_PROXY_COUNT; p++)
				cJSON_AddItemToObject(j, proxy_names[p], num_or_null(cl->proxy[p]));
			cJSON_AddNumberToObject(j, "seconds", cl->seconds);
			if (cl->note[0])
				cJSON_AddStringToObject(j, "note", cl->note);
			if (cl->failed)
				cJSON_AddBoolToObject(j, "failed", true);
			cJSON_AddItemToArray(cells, j);
		}
		cJSON_AddItemToArray(rows, row);
	}
	cJSON *sp = cJSON_AddObjectToObject(o, "spearman_vs_kl");
	for (int p = 0; p < SL_PROXY_COUNT; p++)
		cJSON_AddItemToObject(sp, proxy_names[p], num_or_null(sl_sweep_spearman(sw, p, -1)));
	return o;
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

sl_status sl_sweep_restore(sl_sweep *sw, const cJSON *saved, int *restored, sl_error *err)
{
	*restored = 0;
	if (!cJSON_IsObject(saved) || jnum(saved, "slimlab_sweep") != 1)
		return sl_errorf(err, SL_ERR_FORMAT, "not a saved sweep (slimlab_sweep 1 expected)");
	char hash[32];
	snprintf(hash, sizeof hash, "%016llx", (unsigned long long)sw->model_hash);
	const char *h = jstr(saved, "model_hash"), *text = jstr(saved, "text"), *unit = jstr(saved, "unit");
	if (!h || strcmp(h, hash))
		return sl_errorf(err, SL_ERR_ARG, "the saved sweep was measured on another model (hash %s, this one %s)",
		                 h ? h : "missing", hash);
	if (!text || strcmp(text, sw->text_path) || jnum(saved, "ctx") != sw->n_ctx ||
	    jnum(saved, "windows") != sw->n_win || jnum(saved, "calib_tokens") != sw->calib_tokens ||
	    jnum(saved, "seed") != (double)sw->seed ||
	    !unit || strcmp(unit, sw->unit == SL_SWEEP_BLOCKS ? "block" : "module"))
		return sl_errorf(err, SL_ERR_ARG,
		                 "the saved sweep used other settings (text, window, windows, calibration or unit)");
	const cJSON *opts = cJSON_GetObjectItemCaseSensitive(saved, "options");
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(saved, "rows");
	if (!cJSON_IsArray(opts) || !cJSON_IsArray(rows) || cJSON_GetArraySize(rows) != sw->n_rows)
		return sl_errorf(err, SL_ERR_FORMAT, "the saved sweep's rows or options are missing or of another model");
	/* Options may have been added or reordered since: match them by label. */
	int n_saved = cJSON_GetArraySize(opts);
	for (int r = 0; r < sw->n_rows; r++) {
		const cJSON *row = cJSON_GetArrayItem(rows, r);
		const char *name = jstr(row, "name");
		const cJSON *cells = cJSON_GetObjectItemCaseSensitive(row, "cells");
		if (!name || strcmp(name, sw->rows[r].name) || !cJSON_IsArray(cells) ||
		    cJSON_GetArraySize(cells) != n_saved)
			return sl_errorf(err, SL_ERR_FORMAT, "saved sweep row %d does not match this model's '%s'", r,
			                 sw->rows[r].name);
		for (int k = 0; k < n_saved; k++) {
			const char *label = cJSON_GetStringValue(cJSON_GetArrayItem(opts, k));
			const cJSON *j = cJSON_GetArrayItem(cells, k);
			if (!label || !cJSON_IsObject(j))
				continue;
			for (int c = 0; c < sw->n_opts; c++) {
				if (strcmp(label, sw->opts[c].label))
					continue;
				sl_sweep_cell *cl = cell_of(sw, r, c);
				memset(cl, 0, sizeof *cl);
				cl->kl = jnum(j, "kl");
				cl->kl_se = jnum(j, "kl_se");
				cl->dppl = jnum(j, "dppl");
				cl->top1 = jnum(j, "top1");
				cl->ppl = jnum(j, "ppl");
				cl->bytes = jnum(j, "bytes");
				cl->bytes_before = jnum(j, "bytes_before");
				for (int p = 0; p < SL_PROXY_COUNT; p++)
					cl->proxy[p] = jnum(j, proxy_names[p]);
				cl->seconds = jnum(j, "seconds");
				const char *note = jstr(j, "note");
				snprintf(cl->note, sizeof cl->note, "%s", note ? note : "");
				cl->failed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "failed"));
				cl->done = cl->failed || (isfinite(cl->kl) && isfinite(cl->bytes));
				*restored += cl->done;
			}
		}
	}
	return SL_OK;
}

char *sl_sweep_to_csv(const sl_sweep *sw)
{
	sl_buf b = {0};
	bool ok = sl_buf_printf(&b, "row,block,option,kl,kl_se,dppl,top1,ppl,bytes,bytes_before,"
	                            "weight_error,activation_error,fisher,seconds,note\n");
	for (int r = 0; r < sw->n_rows && ok; r++)
		for (int c = 0; c < sw->n_opts && ok; c++) {
			const sl_sweep_cell *cl = cell_of(sw, r, c);
			if (!cl->done)
				continue;
			ok = sl_buf_printf(&b, "%s,%d,%s,%.9g,%.9g,%.9g,%.9g,%.9g,%.0f,%.0f,%.9g,%.9g,%.9g,%.3f,\"%s\"\n",
			                   sw->rows[r].name, sw->rows[r].block, sw->opts[c].label, cl->kl, cl->kl_se,
			                   cl->dppl, cl->top1, cl->ppl, cl->bytes, cl->bytes_before, cl->proxy[0],
			                   cl->proxy[1], cl->proxy[2], cl->seconds, cl->note);
		}
	ok = ok && sl_buf_put(&b, "", 1);
	if (!ok) {
		sl_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* Ten colours along viridis (matplotlib's perceptually uniform colormap, in
 * the public domain), interpolated linearly. */
void sl_palette(double t, int rgb[3])
{
	static const unsigned char stops[10][3] = {
		{0x44, 0x01, 0x54}, {0x48, 0x28, 0x78}, {0x3e, 0x49, 0x89}, {0x31, 0x68, 0x8e}, {0x26, 0x82, 0x8e},
		{0x1f, 0x9e, 0x89}, {0x35, 0xb7, 0x79}, {0x6e, 0xce, 0x58}, {0xb5, 0xde, 0x2b}, {0xfd, 0xe7, 0x25},
	};
	if (!(t >= 0))
		t = 0;
	if (t > 1)
		t = 1;
	double x = t * 9;
	int i = x >= 9 ? 8 : (int)x;
	double f = x - i;
	for (int k = 0; k < 3; k++)
		rgb[k] = (int)(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]) + 0.5);
}

/* The log-scale range of a metric over the done cells (floor 1e-6). */
static void metric_range(const sl_sweep *sw, const char *metric, double *lo, double *hi)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	for (int r = 0; r < sw->n_rows; r++)
		for (int c = 0; c < sw->n_opts; c++) {
			double v = sl_sweep_metric(cell_of(sw, r, c), metric);
			if (!isfinite(v))
				continue;
			v = log10(fmax(v, 1e-6));
			*lo = fmin(*lo, v);
			*hi = fmax(*hi, v);
		}
	if (!isfinite(*lo)) {
		*lo = -6;
		*hi = 0;
	}
	if (*hi - *lo < 1e-9)
		*hi = *lo + 1;
}

static void svg_escape(sl_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			sl_buf_printf(b, "&lt;");
		else if (*s == '>')
			sl_buf_printf(b, "&gt;");
		else if (*s == '&')
			sl_buf_printf(b, "&amp;");
		else if (*s == '"')
			sl_buf_printf(b, "&quot;");
		else
			sl_buf_put(b, s, 1);
	}
}

char *sl_sweep_to_svg(const sl_sweep *sw, const char *metric)
{
	const int cw = 84, ch = 18, left = 170, top = 110, legend_h = 70;
	const int width = left + cw * sw->n_opts + 40, height = top + ch * sw->n_rows + legend_h;
	double lo, hi;
	metric_range(sw, metric, &lo, &hi);
	const char *title = !strcmp(metric, "dppl") ? "change in perplexity" :
	                    !strcmp(metric, "top1") ? "1 - top-1 agreement" : "KL divergence from the base";
	sl_buf b = {0};
	sl_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	                  "font-family=\"DejaVu Sans, sans-serif\" font-size=\"11\">\n", width, height);
	sl_buf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	sl_buf_printf(&b, "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Sensitivity: %s (log scale)</text>\n",
	              title);
	sl_buf_printf(&b, "<text x=\"10\" y=\"38\" fill=\"#555\">");
	svg_escape(&b, sw->m->path);
	sl_buf_printf(&b, ", %d windows of %d tokens, base PPL %.3f</text>\n", sw->n_win, sw->n_ctx, sw->base_ppl);
	for (int c = 0; c < sw->n_opts; c++) {
		int x = left + c * cw + cw / 2;
		sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" transform=\"rotate(-35 %d %d)\">", x, top - 8, x, top - 8);
		svg_escape(&b, sw->opts[c].label);
		sl_buf_printf(&b, "</text>\n");
	}
	for (int r = 0; r < sw->n_rows; r++) {
		int y = top + r * ch;
		sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, y + ch - 5);
		svg_escape(&b, sw->rows[r].name);
		sl_buf_printf(&b, "</text>\n");
		for (int c = 0; c < sw->n_opts; c++) {
			const sl_sweep_cell *cl = cell_of(sw, r, c);
			double v = sl_sweep_metric(cl, metric);
			int rgb[3] = {0xee, 0xee, 0xee};
			if (isfinite(v))
				sl_palette((log10(fmax(v, 1e-6)) - lo) / (hi - lo), rgb);
			sl_buf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\" "
			                  "stroke=\"white\"><title>",
			              left + c * cw, y, cw, ch, rgb[0], rgb[1], rgb[2]);
			svg_escape(&b, sw->rows[r].name);
			sl_buf_printf(&b, " x ");
			svg_escape(&b, sw->opts[c].label);
			if (isfinite(v))
				sl_buf_printf(&b, ": KL %.3g, dPPL %.3g, top-1 %.1f%%", cl->kl, cl->dppl, 100 * cl->top1);
			sl_buf_printf(&b, "</title></rect>\n");
			if (isfinite(v))
				sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"9\" fill=\"%s\">%.2g</text>\n",
				              left + c * cw + cw / 2, y + ch - 5,
				              (rgb[0] + rgb[1] + rgb[2]) > 380 ? "black" : "white", v);
		}
	}
	/* The legend: the scale from the smallest to the largest value. */
	int ly = top + sw->n_rows * ch + 25, lw = cw * sw->n_opts > 200 ? cw * sw->n_opts : 200;
	for (int i = 0; i < 50; i++) {
		int rgb[3];
		sl_palette(i / 49.0, rgb);
		sl_buf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"12\" fill=\"#%02x%02x%02x\"/>\n",
		              left + i * lw / 50, ly, lw / 50 + 1, rgb[0], rgb[1], rgb[2]);
	}
	for (int i = 0; i <= 4; i++) {
		double e = lo + (hi - lo) * i / 4;
		sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.2g</text>\n", left + i * lw / 4,
		              ly + 26, pow(10, e));
	}
	sl_buf_printf(&b, "</svg>\n");
	if (!sl_buf_put(&b, "", 1)) {
		sl_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* --- automatic recipe ---------------------------------------------------------- */

sl_status sl_budget_parse(const char *s, sl_budget_kind *kind, double *value, sl_error *err)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || !(v > 0))
		return sl_errorf(err, SL_ERR_ARG, "budget '%s': expected a positive number with a unit (4.5bpw, 3MB, 50%%)", s);
	static const struct {
		const char *unit;
		sl_budget_kind kind;
		double scale;
	} units[] = {
		{"bpw", SL_BUDGET_BPW, 1}, {"B", SL_BUDGET_BYTES, 1}, {"KB", SL_BUDGET_BYTES, 1e3},
		{"MB", SL_BUDGET_BYTES, 1e6}, {"GB", SL_BUDGET_BYTES, 1e9}, {"KiB", SL_BUDGET_BYTES, 1024},
		{"MiB", SL_BUDGET_BYTES, 1048576}, {"GiB", SL_BUDGET_BYTES, 1073741824}, {"%", SL_BUDGET_SPARSITY, 0.01},
		{"sparsity", SL_BUDGET_SPARSITY, 1},
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (!strcmp(end, units[i].unit)) {
			*kind = units[i].kind;
			*value = v * units[i].scale;
			if (*kind == SL_BUDGET_SPARSITY && *value >= 1)
				return sl_errorf(err, SL_ERR_ARG, "budget '%s': a sparsity must be below 100%%", s);
			return SL_OK;
		}
	return sl_errorf(err, SL_ERR_ARG, "budget '%s': unknown unit '%s' (bpw, B, KB, MB, GB, KiB, MiB, GiB, %%, sparsity)",
	                 s, end);
}

/* What choosing option o (or -1: unchanged) for a row costs against the
 * budget, in the budget's own unit (bytes or nonzero weights). */
static double row_cost(const sl_sweep *sw, int r, int o, sl_budget_kind kind)
{
	if (kind == SL_BUDGET_SPARSITY) {
		double s = o >= 0 && sw->opts[o].rule.has_sparsity ? sw->opts[o].rule.sparsity : 0;
		return sw->rows[r].params * (1 - s);
	}
	if (o < 0) {
		double b = 0;
		for (int k = 0; k < sw->rows[r].n_mods; k++)
			b += (double)sw->mods[sw->rows[r].first_mod + k].w->nbytes;
		return b;
	}
	return cell_of(sw, r, o)->bytes;
}

static double row_loss(const sl_sweep *sw, int r, int o)
{
	return o < 0 ? 0 : fmax(cell_of(sw, r, o)->kl, 0);
}

static bool usable(const sl_sweep *sw, int r, int o)
{
	const sl_sweep_cell *c = cell_of(sw, r, o);
	return c->done && !c->failed && isfinite(c->kl) && isfinite(c->bytes);
}

/* Each row's choice minimizing loss + lambda * cost; returns the total cost. */
static double choose(const sl_sweep *sw, sl_budget_kind kind, double lambda, int *choice)
{
	double total = 0;
	for (int r = 0; r < sw->n_rows; r++) {
		int best = -1;
		double best_v = row_loss(sw, r, -1) + lambda * row_cost(sw, r, -1, kind);
		for (int o = 0; o < sw->n_opts; o++) {
			if (!usable(sw, r, o))
				continue;
			double v = row_loss(sw, r, o) + lambda * row_cost(sw, r, o, kind);
			if (v < best_v) {
				best_v = v;
				best = o;
			}
		}
		choice[r] = best;
		total += row_cost(sw, r, best, kind);
	}
	return total;
}

void sl_autorecipe_result_free(sl_autorecipe_result *res)
{
	free(res->choice);
	res->choice = NULL;
}

/* The recipe's calibration settings are the sweep's, so that methods
 * needing statistics see the same ones. */
static void set_calib(const sl_sweep *sw, sl_recipe *rec)
{
	snprintf(rec->calib.text, sizeof rec->calib.text, "%s", sw->text_path);
	rec->calib.tokens = sw->calib_tokens;
	rec->calib.ctx = sw->n_ctx;
	rec->calib.seed = sw->seed;
}

sl_rule sl_sweep_cell_rule(const sl_sweep *sw, int row, int col)
{
	sl_rule rule = sw->opts[col].rule;
	if (sw->unit == SL_SWEEP_BLOCKS)
		snprintf(rule.match, sizeof rule.match, "blk.%d.*", sw->rows[row].block);
	else
		snprintf(rule.match, sizeof rule.match, "%s", sw->rows[row].name);
	return rule;
}

sl_recipe *sl_sweep_cell_recipe(const sl_sweep *sw, int row, int col)
{
	sl_recipe *rec = sl_recipe_new();
	if (!rec)
		return NULL;
	sl_rule rule = sl_sweep_cell_rule(sw, row, col);
	if (sl_recipe_add_rule(rec, &rule) < 0) {
		sl_recipe_free(rec);
		return NULL;
	}
	set_calib(sw, rec);
	return rec;
}

sl_status sl_autorecipe(const sl_sweep *sw, sl_budget_kind kind, double budget, sl_recipe **out,
                        sl_autorecipe_result *res, sl_error *err)
{
	*out = NULL;
	memset(res, 0, sizeof *res);
	const sl_model *m = sw->m;
	for (int r = 0; r < sw->n_rows; r++)
		for (int o = 0; o < sw->n_opts; o++)
			if (!cell_of(sw, r, o)->done)
				return sl_errorf(err, SL_ERR_ARG, "the sweep is not finished (%d of %d cells); run it first",
				                 sl_sweep_done(sw), sw->n_rows * sw->n_opts);
	/* The budget in the cost's unit: bytes of the swept rows (the rest of
	 * the model stays as it is), or nonzero weights of the swept rows. */
	double swept_bytes = 0, swept_params = 0;
	for (int r = 0; r < sw->n_rows; r++) {
		swept_bytes += row_cost(sw, r, -1, SL_BUDGET_BYTES);
		swept_params += sw->rows[r].params;
	}
	double fixed_bytes = (double)sl_model_bytes(m) - swept_bytes, params = (double)sl_model_n_params(m);
	double cap;
	if (kind == SL_BUDGET_BPW)
		cap = budget * params / 8.0 - fixed_bytes;
	else if (kind == SL_BUDGET_BYTES)
		cap = budget - fixed_bytes;
	else
		cap = (1 - budget) * swept_params;
	int *choice = malloc((size_t)sw->n_rows * sizeof *choice);
	int *trial = malloc((size_t)sw->n_rows * sizeof *trial);
	if (!choice || !trial) {
		free(choice);
		free(trial);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	/* The cheapest reachable: a very large multiplier picks the least cost. */
	double cheapest = choose(sw, kind, 1e30, choice);
	if (cheapest > cap) {
		free(choice);
		free(trial);
		double best = kind == SL_BUDGET_BPW ? 8.0 * (cheapest + fixed_bytes) / params :
		              kind == SL_BUDGET_BYTES ? cheapest + fixed_bytes : 1 - cheapest / swept_params;
		return sl_errorf(err, SL_ERR_ARG,
		                 "the budget cannot be met with these options: the smallest they reach is %.4g%s",
		                 kind == SL_BUDGET_SPARSITY ? 100 * best : best,
		                 kind == SL_BUDGET_BPW ? " bits per weight" : kind == SL_BUDGET_BYTES ? " bytes" : "% sparsity");
	}
	/* The smallest multiplier whose choice fits: bisection in log space. */
	double lo = 1e-30, hi = 1e30;
	for (int it = 0; it < 200 && hi / lo > 1 + 1e-9; it++) {
		double mid = sqrt(lo * hi);
		if (choose(sw, kind, mid, trial) <= cap) {
			hi = mid;
			memcpy(choice, trial, (size_t)sw->n_rows * sizeof *choice);
		} else {
			lo = mid;
		}
	}
	if (choose(sw, kind, 0, trial) <= cap) /* everything fits unchanged */
		memcpy(choice, trial, (size_t)sw->n_rows * sizeof *choice);
	free(trial);
	/* Spend what is left: the change with the best loss saved per cost added. */
	double used = 0;
	for (int r = 0; r < sw->n_rows; r++)
		used += row_cost(sw, r, choice[r], kind);
	for (;;) {
		int br = -1, bo = -2;
		double best_ratio = 0;
		for (int r = 0; r < sw->n_rows; r++)
			for (int o = -1; o < sw->n_opts; o++) {
				if (o == choice[r] || (o >= 0 && !usable(sw, r, o)))
					continue;
				double dc = row_cost(sw, r, o, kind) - row_cost(sw, r, choice[r], kind);
				double dl = row_loss(sw, r, choice[r]) - row_loss(sw, r, o);
				if (dl <= 0 || used + dc > cap)
					continue;
				double ratio = dc <= 0 ? INFINITY : dl / dc;
				if (ratio > best_ratio) {
					best_ratio = ratio;
					br = r;
					bo = o;
				}
			}
		if (br < 0)
			break;
		used += row_cost(sw, br, bo, kind) - row_cost(sw, br, choice[br], kind);
		choice[br] = bo;
	}

	sl_recipe *rec = sl_recipe_new();
	if (!rec) {
		free(choice);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	snprintf(rec->name, sizeof rec->name, "automatic (%s)", sw->m->cfg.arch_name);
	set_calib(sw, rec);
	double zeros = 0, bytes = fixed_bytes;
	for (int r = 0; r < sw->n_rows; r++) {
		bytes += row_cost(sw, r, choice[r], SL_BUDGET_BYTES);
		zeros += sw->rows[r].params - row_cost(sw, r, choice[r], SL_BUDGET_SPARSITY);
		res->predicted_kl += row_loss(sw, r, choice[r]);
		if (choice[r] < 0)
			continue;
		sl_rule rule = sl_sweep_cell_rule(sw, r, choice[r]);
		snprintf(rule.note, sizeof rule.note, "KL %.3g measured alone", cell_of(sw, r, choice[r])->kl);
		if (sl_recipe_add_rule(rec, &rule) < 0) {
			sl_recipe_free(rec);
			free(choice);
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		}
	}
	res->bytes = bytes;
	res->bpw = 8.0 * bytes / params;
	res->sparsity = swept_params > 0 ? zeros / swept_params : 0;
	res->choice = choice;
	res->n_rows = sw->n_rows;
	*out = rec;
	return SL_OK;
}
