/* Sensitivity sweeps: per row (a module or a block) and option, the cost of
 * compressing that row alone, measured against the base on cached windows
 * of calibration text. The base runs once: its logits and the hidden state
 * entering every block are kept, so a cell only recomputes from its block
 * onward. Cells are independent and run as tasks on the kernel threads.
 * Here: the rows, the base's caches, a sweep's life, measuring one cell
 * and running them all. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fileio.h"
#include "../forward.h"
#include "../methods/method.h"
#include "../tokenizer.h"
#include "internal.h"

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

/* Where a cell needs module md of the base: cells starting at block s
 * (sweep_row's start) read blocks s onward and the head, the token
 * embeddings only from s = -1; -1 for the embeddings, the block, n_layers
 * for the head (and an embedding tied to it). */
static int position(const sl_sweep *sw, const sl_module *md)
{
	const sl_model *m = sw->m;
	if (md->kind == SL_MOD_EMBD)
		return m->output == m->tok_embd ? m->cfg.n_layers : -1;
	return md->kind == SL_MOD_OUTPUT ? m->cfg.n_layers : md->layer;
}

/* The file pages of the base's modules at positions [lo, hi) leave
 * resident memory (read again from the page cache should a cell need
 * them): what no cell to come reads need not stay beside the caches. */
static void release_pages(const sl_sweep *sw, int lo, int hi)
{
	for (int k = 0; k < sw->n_mods; k++) {
		int at = position(sw, &sw->mods[k]);
		if (at >= lo && at < hi)
			sl_model_release_pages(sw->m, sw->mods[k].w->data, sw->mods[k].w->nbytes);
	}
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
		st = sl_sweep_fisher_diag(sw, o, err);
	else if (!st)
		snprintf(sw->fisher_note, sizeof sw->fisher_note, "no Fisher proxy: not asked for");
	if (!st)
		sw->model_hash = sl_model_hash(m);
	if (st) {
		sl_sweep_free(sw);
		return st;
	}
	/* The caches are made: the cells read again (from the page cache)
	 * only what they need, and let it go behind them (sl_sweep_keep). */
	sw->released = -1;
	release_pages(sw, -1, m->cfg.n_layers + 1);
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
const sl_model *sl_sweep_model(const sl_sweep *sw) { return sw->m; }
int sl_sweep_windows(const sl_sweep *sw) { return sw->n_win; }
int sl_sweep_ctx(const sl_sweep *sw) { return sw->n_ctx; }
const char *sl_sweep_fisher_note(const sl_sweep *sw) { return sw->fisher_note; }

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
		cell->acceptance = r.acceptance;
		cell->ppl = r.ppl;
		sl_sweep_proxies(sw, row, repl, cell->proxy);
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

sl_status sl_sweep_measure_cell(const sl_sweep *sw, int row, int col, sl_sweep_cell *c, const sl_progress *p)
{
	sl_error err = {0};
	sl_status st = measure(sw, row, col, c, p, &err);
	if (st == SL_ERR_CANCELLED || !st)
		return st;
	/* A cell that cannot be measured says why and counts as done, so a
	 * resumed sweep does not stumble on it again. */
	memset(c, 0, sizeof *c);
	c->done = c->failed = true;
	c->kl = c->dppl = c->acceptance = NAN;
	snprintf(c->note, sizeof c->note, "%.95s", err.msg);
	return SL_OK;
}

void sl_sweep_keep(sl_sweep *sw, int row, int col, const sl_sweep_cell *c, sl_sweep_cell_fn on_cell, void *ctx,
                   const sl_progress *p)
{
	pthread_mutex_lock(&sw->mu);
	*cell_of(sw, row, col) = *c;
	/* Rows run in order: blocks before the first that a row still to be
	 * finished starts from are behind every cell to come. */
	int first = sw->m->cfg.n_layers + 1;
	for (int r = 0; r < sw->n_rows; r++)
		for (int k = 0; k < sw->n_opts; k++)
			if (!cell_of(sw, r, k)->done && sw->rows[r].start < first)
				first = sw->rows[r].start;
	if (first > sw->released) {
		release_pages(sw, sw->released, first);
		sw->released = first;
	}
	char stage[160];
	snprintf(stage, sizeof stage, "%s x %s", sw->rows[row].name, sw->opts[col].label);
	sl_report(p, 0.05 + 0.95 * sl_sweep_done(sw) / ((double)sw->n_rows * sw->n_opts), stage);
	if (on_cell)
		on_cell(ctx, row, col, cell_of(sw, row, col));
	pthread_mutex_unlock(&sw->mu);
}

typedef struct {
	sl_sweep *sw;
	int *todo;          /* cell indices */
	int n_todo;
	sl_sweep_cell_fn on_cell;
	void *ctx;
	const sl_progress *p;
} run_ctx;

static void run_task(int i, void *arg)
{
	run_ctx *rc = arg;
	sl_sweep *sw = rc->sw;
	int idx = rc->todo[i], row = idx / sw->n_opts, col = idx % sw->n_opts;
	sl_sweep_cell c;
	if (sl_cancelled(rc->p) || sl_sweep_measure_cell(sw, row, col, &c, rc->p))
		return;
	sl_sweep_keep(sw, row, col, &c, rc->on_cell, rc->ctx, rc->p);
}

sl_status sl_sweep_run(sl_sweep *sw, sl_sweep_cell_fn on_cell, void *ctx, const sl_progress *p, sl_error *err)
{
	int total = sw->n_rows * sw->n_opts;
	run_ctx rc = {sw, malloc((size_t)total * sizeof(int)), 0, on_cell, ctx, p};
	if (!rc.todo)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	/* Rows in order, options within a row: the heatmap fills top to bottom. */
	for (int i = 0; i < total; i++)
		if (!sw->cells[i].done)
			rc.todo[rc.n_todo++] = i;
	/* The embedding's and the head's cells run one at a time, each with
	 * every thread: compressing one holds two F32 copies of the largest
	 * matrix, which beside another cell's forward through the whole file
	 * would be more than a sweep may hold. The rest run side by side. */
	for (int i = 0, j; i < rc.n_todo && !sl_cancelled(p); i = j) {
		for (j = i; j < rc.n_todo && sw->rows[rc.todo[j] / sw->n_opts].block >= 0; j++)
			;
		if (j == i) {
			run_task(i, &rc);
			j++;
			continue;
		}
		run_ctx part = rc;
		part.todo += i;
		part.n_todo = j - i;
		sl_parallel_for(part.n_todo, run_task, &part);
	}
	free(rc.todo);
	return sl_sweep_stopped(sw, p, err);
}

sl_status sl_sweep_stopped(const sl_sweep *sw, const sl_progress *p, sl_error *err)
{
	if (!sl_cancelled(p))
		return SL_OK;
	return sl_errorf(err, SL_ERR_CANCELLED, "sweep cancelled: %d of %d cells measured; run it again to go on",
	                 sl_sweep_done(sw), sw->n_rows * sw->n_opts);
}
