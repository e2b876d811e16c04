/* The cheap proxies that come with each cell, and how well they rank the
 * modules: the empirical Fisher diagonal, a cell's weight, activation- and
 * Fisher-weighted errors, and Spearman's rank correlation of a proxy with
 * the measured KL. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../methods/method.h"
#include "../train.h"
#include "internal.h"

/* Where the Fisher proxy's gradients go: the sweep, and the model the
 * trainer reads (borrowing the base's weights). */
typedef struct {
	sl_sweep *sw;
	const sl_model *m;
} fisher_sink;

/* One window's gradient of tensor t: its square into the module's Fisher
 * diagonal, a row with no gradient (an embedding's rows no window used)
 * left alone, so the diagonal's pages come only where there is one. The
 * backward is done with t's weights too: their file pages can go (the next
 * window and the cells read them again from the page cache). */
static void fisher_add(void *ctx, const sl_tensor *t, const float *g, size_t n)
{
	const fisher_sink *f = ctx;
	sl_sweep *sw = f->sw;
	int k = 0;
	while (k < sw->n_mods && strcmp(sw->mods[k].w->name, t->name))
		k++;
	size_t cols = t->n_dims >= 2 ? (size_t)t->ne[0] : n;
	for (size_t r = 0; k < sw->n_mods && r < n / cols; r++) {
		const float *gr = g + r * cols;
		size_t c = 0;
		while (c < cols && gr[c] == 0)
			c++;
		if (c == cols)
			continue;
		float *F = sw->fisher + sw->fisher_off[k] + r * cols;
		for (c = 0; c < cols; c++)
			F[c] += gr[c] * gr[c] / (float)sw->n_win;
	}
	sl_model_release_pages(f->m, t->data, t->nbytes);
}

/* The empirical Fisher diagonal: per weight, the squared gradient of each
 * window's mean loss (over the positions the sweep scores), averaged over
 * the windows. The trainer reads the base's weights in place (a matrix in
 * another type converted while it is used) and gives each module's
 * gradient away as the backward finishes it: the diagonal, one matrix's
 * gradient and one matrix in F32 are all it holds beyond the base. */
sl_status sl_sweep_fisher_diag(sl_sweep *sw, const sl_sweep_opts *o, sl_error *err)
{
	const sl_model *m = sw->m;
	size_t convert = 0, largest = 0;
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		size_t n = (size_t)sl_tensor_nelements(t);
		if (t->type != SL_DT_F32)
			convert = t->n_dims < 2 ? convert + n : n > convert ? n : convert;
		largest = n > largest ? n : largest;
	}
	double need = 4.0 * ((double)sw->fisher_off[sw->n_mods] + (double)convert + (double)largest);
	double cap = o->fisher_max_bytes > 0 ? o->fisher_max_bytes : 2.0 * (1 << 30);
	if (need > cap) {
		snprintf(sw->fisher_note, sizeof sw->fisher_note,
		         "no Fisher proxy: its diagonal and gradients would take %.1f GB (limit %.1f GB)", need / 1e9,
		         cap / 1e9);
		return SL_OK;
	}
	sl_model *c = NULL;
	sl_trainer *tr = NULL;
	int32_t *targets = NULL;
	fisher_sink sink = {sw, NULL};
	sl_trainer_opts to = {.grad_fn = fisher_add, .ctx = &sink};
	sl_status st = sl_model_borrow(m, &c, err);
	sink.m = c;
	if (!st)
		st = sl_trainer_new(c, sl_train_kernels_cpu(), 1, sw->n_ctx - 1, &to, &tr, err);
	if (!st && !(sw->fisher = sl_calloc(sw->fisher_off[sw->n_mods], sizeof(float))))
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for the Fisher proxy");
	if (!st && !(targets = sl_malloc_array((size_t)sw->n_ctx, sizeof *targets)))
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
		st = sl_trainer_backward(tr, win, targets, 1, &ce, NULL, 1.0f, &loss, NULL, err);
		sl_report(o->progress, 0.05 + 0.05 * (w + 1) / sw->n_win, "gradients for the Fisher proxy");
	}
	free(targets);
	sl_trainer_free(tr);
	sl_model_free(c);
	if (st) {
		free(sw->fisher);
		sw->fisher = NULL;
	}
	return st;
}

/* The proxies of replacing W by its compressed form Q: relative weight
 * error, the same weighted by each input channel's mean square activation,
 * and half the Fisher-weighted squared change. Sums over the row's modules,
 * whose weights are read as F32 a few rows at a time (a head or an
 * embedding whole would be two copies of 100 MB and more). */
void sl_sweep_proxies(const sl_sweep *sw, const sweep_row *row, const sl_tensor *repl, double *out)
{
	enum { CHUNK = 1 << 16 }; /* floats of W, and of Q, at a time */
	double w_err = 0, w_norm = 0, a_err = 0, a_norm = 0, fisher = 0;
	bool have_act = true;
	for (int k = 0; k < row->n_mods; k++) {
		const sl_module *md = &sw->mods[row->first_mod + k];
		int64_t rows = md->w->ne[1], cols = md->w->ne[0];
		int64_t step = cols < CHUNK ? CHUNK / cols : 1;
		if (step > rows)
			step = rows;
		float *W = sl_malloc_array((size_t)(step * cols), sizeof(float));
		float *Q = sl_malloc_array((size_t)(step * cols), sizeof(float));
		if (!W || !Q) {
			free(W);
			free(Q);
			for (int p = 0; p < SL_PROXY_COUNT; p++)
				out[p] = NAN;
			return;
		}
		const sl_act_stats *st = sl_calib_stats(sw->calib, md);
		have_act &= st && st->n == cols && st->n_tokens > 0;
		const float *F = sw->fisher ? sw->fisher + sw->fisher_off[row->first_mod + k] : NULL;
		for (int64_t r0 = 0; r0 < rows; r0 += step) {
			int64_t nr = rows - r0 < step ? rows - r0 : step;
			sl_tensor_rows_to_f32(md->w, r0, nr, W);
			sl_tensor_rows_to_f32(&repl[k], r0, nr, Q);
			for (int64_t r = 0; r < nr; r++)
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
						fisher += 0.5 * F[(size_t)r0 * cols + i] * d * d;
				}
		}
		free(W);
		free(Q);
	}
	out[SL_PROXY_WEIGHT] = w_norm > 0 ? sqrt(w_err / w_norm) : NAN;
	out[SL_PROXY_ACT] = have_act && a_norm > 0 ? sqrt(a_err / a_norm) : NAN;
	out[SL_PROXY_FISHER] = sw->fisher ? fisher : NAN;
}

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

