/* Weight and activation statistics for the layer inspector. Weights are
 * read in chunks of rows converted to F32, so any storage format works
 * and memory stays small; two passes (moments, then histogram and
 * outliers, which need the range and the deviation). */
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

enum { ROWS_PER_CHUNK = 64 };

static void push_top(sl_weight_stats *s, int64_t row, int64_t col, float v)
{
	float a = fabsf(v);
	if (s->n_top == SL_STATS_TOP && a <= fabsf(s->top[SL_STATS_TOP - 1].value))
		return;
	int i = s->n_top < SL_STATS_TOP ? s->n_top++ : SL_STATS_TOP - 1;
	while (i > 0 && fabsf(s->top[i - 1].value) < a) {
		s->top[i] = s->top[i - 1];
		i--;
	}
	s->top[i] = (sl_weight_outlier){row, col, v};
}

sl_status sl_weight_stats_compute(const sl_tensor *t, int n_bins, double outlier_sigma, const sl_progress *p,
                                  sl_weight_stats *out, sl_error *err)
{
	memset(out, 0, sizeof *out);
	if (n_bins < 1 || n_bins > 4096 || !(outlier_sigma > 0))
		return sl_errorf(err, SL_ERR_ARG, "weight statistics: %d bins and %g sigma are out of range", n_bins,
		                 outlier_sigma);
	const int64_t cols = t->ne[0], rows = sl_tensor_nrows(t);
	if (cols <= 0 || rows <= 0)
		return sl_errorf(err, SL_ERR_ARG, "tensor '%s' is empty", t->name);
	out->n = cols * rows;
	out->rows = rows;
	out->cols = cols;
	out->n_bins = n_bins;
	out->outlier_sigma = outlier_sigma;
	out->hist = calloc((size_t)n_bins, sizeof *out->hist);
	out->row_min = sl_malloc_array((size_t)rows, sizeof(float));
	out->row_max = sl_malloc_array((size_t)rows, sizeof(float));
	out->col_abs_max = sl_calloc((size_t)cols, sizeof(float));
	float *buf = sl_malloc_array((size_t)(ROWS_PER_CHUNK * cols), sizeof(float));
	if (!out->hist || !out->row_min || !out->row_max || !out->col_abs_max || !buf) {
		free(buf);
		sl_weight_stats_free(out);
		return sl_errorf(err, SL_ERR_NOMEM, "tensor '%s': out of memory for statistics", t->name);
	}
	double s1 = 0, s2 = 0, s3 = 0, s4 = 0, mn = INFINITY, mx = -INFINITY;
	for (int pass = 0; pass < 2; pass++) {
		double mean = s1 / (double)out->n, lim = outlier_sigma * out->std;
		double scale = out->hi > out->lo ? n_bins / (out->hi - out->lo) : 0;
		for (int64_t r0 = 0; r0 < rows; r0 += ROWS_PER_CHUNK) {
			if (sl_cancelled(p)) {
				free(buf);
				sl_weight_stats_free(out);
				return sl_errorf(err, SL_ERR_CANCELLED, "statistics of '%s' cancelled", t->name);
			}
			int64_t nr = rows - r0 < ROWS_PER_CHUNK ? rows - r0 : ROWS_PER_CHUNK;
			sl_tensor_rows_to_f32(t, r0, nr, buf);
			for (int64_t r = 0; r < nr; r++) {
				const float *x = buf + r * cols;
				if (pass == 0) {
					float rmin = x[0], rmax = x[0];
					for (int64_t c = 0; c < cols; c++) {
						double v = x[c];
						s1 += v;
						s2 += v * v;
						s3 += v * v * v;
						s4 += v * v * v * v;
						rmin = x[c] < rmin ? x[c] : rmin;
						rmax = x[c] > rmax ? x[c] : rmax;
						float a = fabsf(x[c]);
						if (a > out->col_abs_max[c])
							out->col_abs_max[c] = a;
						push_top(out, r0 + r, c, x[c]);
					}
					out->row_min[r0 + r] = rmin;
					out->row_max[r0 + r] = rmax;
					mn = rmin < mn ? rmin : mn;
					mx = rmax > mx ? rmax : mx;
				} else {
					for (int64_t c = 0; c < cols; c++) {
						int b = (int)((x[c] - out->lo) * scale);
						out->hist[b < 0 ? 0 : b >= n_bins ? n_bins - 1 : b]++;
						if (fabs(x[c] - mean) > lim)
							out->n_outliers++;
					}
				}
			}
			sl_report(p, (pass + (double)(r0 + nr) / rows) / 2, pass ? "histogram" : "moments");
		}
		if (pass == 0) {
			double n = (double)out->n, m = s1 / n;
			double var = s2 / n - m * m;
			out->mean = m;
			out->std = var > 0 ? sqrt(var) : 0;
			out->min = mn;
			out->max = mx;
			out->abs_max = fabs(mn) > fabs(mx) ? fabs(mn) : fabs(mx);
			double m4 = s4 / n - 4 * m * s3 / n + 6 * m * m * s2 / n - 3 * m * m * m * m;
			out->kurtosis = var > 0 ? m4 / (var * var) - 3 : 0;
			out->lo = mn;
			out->hi = mx;
		}
	}
	free(buf);
	return SL_OK;
}

void sl_weight_stats_free(sl_weight_stats *s)
{
	free(s->hist);
	free(s->row_min);
	free(s->row_max);
	free(s->col_abs_max);
	memset(s, 0, sizeof *s);
}

/* --- activations --------------------------------------------------------- */

typedef struct {
	sl_act_profile *a;
	bool oom;
} gather_ctx;

static void on_tap(void *ctx, int layer, sl_tap where, float *x, int T, int n)
{
	gather_ctx *g = ctx;
	sl_act_channels *c = &g->a->at[layer * SL_TAP_COUNT + where];
	if (!c->n) {
		c->abs_max = sl_calloc((size_t)n, sizeof *c->abs_max);
		c->sum = sl_calloc((size_t)n, sizeof *c->sum);
		c->sum_sq = sl_calloc((size_t)n, sizeof *c->sum_sq);
		if (!c->abs_max || !c->sum || !c->sum_sq) {
			g->oom = true;
			return;
		}
		c->n = n;
	}
	if (c->n != n) /* widths are fixed per tap; a change would be a bug upstream */
		return;
	for (int t = 0; t < T; t++) {
		const float *r = x + (size_t)t * n;
		for (int i = 0; i < n; i++) {
			float a = fabsf(r[i]);
			if (a > c->abs_max[i])
				c->abs_max[i] = a;
			c->sum[i] += r[i];
			c->sum_sq[i] += (double)r[i] * r[i];
		}
	}
	c->n_tokens += T;
}

sl_status sl_act_profile_gather(const sl_model *m, const char *text, size_t len, const char *text_name,
                                int n_tokens, int n_ctx, const sl_progress *p, sl_act_profile **out,
                                sl_error *err)
{
	*out = NULL;
	if (n_ctx <= 0)
		n_ctx = m->cfg.max_seq_len < 256 ? m->cfg.max_seq_len : 256;
	if (n_ctx > m->cfg.max_seq_len)
		n_ctx = m->cfg.max_seq_len;
	int32_t *ids;
	size_t n_ids;
	sl_status st = sl_tok_encode(m->tok, text, len, sl_tok_add_bos(m->tok), &ids, &n_ids, err);
	if (st)
		return sl_error_prefix(err, "activation statistics of %s: ", text_name);
	if (n_tokens > 0 && (size_t)n_tokens < n_ids)
		n_ids = (size_t)n_tokens;
	if (n_ids < 2) {
		free(ids);
		return sl_errorf(err, SL_ERR_ARG, "activation statistics: %s holds fewer than 2 tokens", text_name);
	}
	sl_act_profile *a = calloc(1, sizeof *a);
	sl_state *s = NULL;
	if (!a || !(a->at = sl_calloc((size_t)m->cfg.n_layers * SL_TAP_COUNT, sizeof *a->at))) {
		free(a);
		free(ids);
		return sl_errorf(err, SL_ERR_NOMEM, "activation statistics: out of memory");
	}
	a->n_layers = m->cfg.n_layers;
	a->n_ctx = n_ctx;
	snprintf(a->text, sizeof a->text, "%s", text_name);
	if ((st = sl_state_new(m, n_ctx, &s, err)))
		goto fail;
	gather_ctx g = {a, false};
	s->tap = on_tap;
	s->tap_ctx = &g;
	int bos = sl_tok_add_bos(m->tok) ? sl_tok_bos(m->tok) : -1;
	for (size_t at = 0; at < n_ids; at += (size_t)n_ctx) {
		if (sl_cancelled(p)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "activation statistics cancelled after %d windows", a->n_windows);
			goto fail;
		}
		int n = n_ids - at < (size_t)n_ctx ? (int)(n_ids - at) : n_ctx;
		if (bos >= 0)
			ids[at] = bos; /* every window starts like a fresh sequence, as evaluation does */
		sl_state_reset(s);
		if ((st = sl_forward(s, ids + at, n, NULL, 0, err)))
			goto fail;
		if (g.oom) {
			st = sl_errorf(err, SL_ERR_NOMEM, "activation statistics: out of memory");
			goto fail;
		}
		a->n_tokens += n;
		a->n_windows++;
		char stage[64];
		snprintf(stage, sizeof stage, "window %d", a->n_windows);
		sl_report(p, (double)(at + (size_t)n) / (double)n_ids, stage);
	}
	sl_state_free(s);
	free(ids);
	*out = a;
	return SL_OK;
fail:
	sl_state_free(s);
	free(ids);
	sl_act_profile_free(a);
	return st;
}

void sl_act_profile_free(sl_act_profile *a)
{
	if (!a)
		return;
	for (int i = 0; a->at && i < a->n_layers * SL_TAP_COUNT; i++) {
		free(a->at[i].abs_max);
		free(a->at[i].sum);
		free(a->at[i].sum_sq);
	}
	free(a->at);
	free(a);
}

const sl_act_channels *sl_act_profile_at(const sl_act_profile *a, int layer, sl_tap where)
{
	if (!a || layer < 0 || layer >= a->n_layers || (unsigned)where >= SL_TAP_COUNT)
		return NULL;
	const sl_act_channels *c = &a->at[layer * SL_TAP_COUNT + where];
	return c->n ? c : NULL;
}

static int cmp_float(const void *x, const void *y)
{
	float a = *(const float *)x, b = *(const float *)y;
	return (a > b) - (a < b);
}

void sl_act_summarize(const sl_act_channels *c, double outlier_ratio, sl_act_summary *out)
{
	memset(out, 0, sizeof *out);
	out->outlier_ratio = outlier_ratio;
	if (!c || !c->n || !c->n_tokens)
		return;
	double sq = 0;
	for (int i = 0; i < c->n; i++) {
		sq += c->sum_sq[i];
		if (c->abs_max[i] > out->abs_max)
			out->abs_max = c->abs_max[i];
		/* Insertion into the top list, largest first. */
		int k = out->n_top < SL_STATS_TOP ? out->n_top++ : SL_STATS_TOP;
		if (k == SL_STATS_TOP) {
			if (c->abs_max[i] <= c->abs_max[out->top[SL_STATS_TOP - 1]])
				continue;
			k = SL_STATS_TOP - 1;
		}
		while (k > 0 && c->abs_max[out->top[k - 1]] < c->abs_max[i]) {
			out->top[k] = out->top[k - 1];
			k--;
		}
		out->top[k] = i;
	}
	out->rms = sqrt(sq / ((double)c->n * (double)c->n_tokens));
	float *sorted = sl_malloc_array((size_t)c->n, sizeof(float));
	if (!sorted)
		return;
	memcpy(sorted, c->abs_max, (size_t)c->n * sizeof(float));
	qsort(sorted, (size_t)c->n, sizeof(float), cmp_float);
	out->median_channel_max = sorted[c->n / 2];
	free(sorted);
	for (int i = 0; i < c->n; i++)
		if (c->abs_max[i] > outlier_ratio * out->median_channel_max)
			out->n_outlier_channels++;
}
