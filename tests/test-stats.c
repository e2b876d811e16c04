/* The layer inspector's statistics against plain two-pass computations:
 * moments, histogram, outliers, per-channel ranges of a weight matrix
 * (F32 and F16 storage), and activation statistics gathered through the
 * forward pass's taps on stories260K. */
#include <math.h>
#include <stdint.h>

#include "core/forward.h"
#include "core/stats.h"
#include "core/tokenizer.h"
#include "test.h"

static float value(int64_t i)
{
	/* A heavy-tailed mix with a few planted outliers. */
	uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull;
	double u = (double)(x >> 11) / 9007199254740992.0;
	double v = (u - 0.5) * 0.2;
	if (i % 997 == 13)
		v = (i % 2 ? 3.5 : -4.0);
	return (float)v;
}

static void test_weights(int type)
{
	const int64_t rows = 37, cols = 96, n = rows * cols;
	sl_tensor t = {0};
	snprintf(t.name, sizeof t.name, "w");
	int64_t ne[2] = {cols, rows};
	sl_error err = {0};
	REQUIRE(sl_tensor_realloc(&t, SL_DT_F32, ne, 2, &err) == SL_OK, "%s", err.msg);
	float *w = t.data;
	for (int64_t i = 0; i < n; i++)
		w[i] = value(i);
	if (type == SL_DT_F16) {
		REQUIRE(sl_tensor_realloc(&t, SL_DT_F16, ne, 2, &err) == SL_OK, "%s", err.msg);
		uint16_t *h = t.data;
		for (int64_t i = 0; i < n; i++)
			h[i] = sl_f32_to_f16(value(i));
	}
	/* The reference, from the values as stored. */
	double *x = malloc((size_t)n * sizeof *x);
	REQUIRE(x, "oom");
	for (int64_t i = 0; i < n; i++)
		x[i] = type == SL_DT_F16 ? sl_f16_to_f32(((uint16_t *)t.data)[i]) : w[i];
	double mean = 0, m2 = 0, m4 = 0, mn = x[0], mx = x[0];
	for (int64_t i = 0; i < n; i++) {
		mean += x[i];
		mn = fmin(mn, x[i]);
		mx = fmax(mx, x[i]);
	}
	mean /= (double)n;
	for (int64_t i = 0; i < n; i++) {
		double d = x[i] - mean;
		m2 += d * d;
		m4 += d * d * d * d;
	}
	m2 /= (double)n;
	m4 /= (double)n;
	double sd = sqrt(m2);
	int64_t outliers = 0;
	for (int64_t i = 0; i < n; i++)
		outliers += fabs(x[i] - mean) > 4 * sd;

	sl_weight_stats s;
	REQUIRE(sl_weight_stats_compute(&t, 50, 4.0, NULL, &s, &err) == SL_OK, "%s", err.msg);
	CHECK(s.n == n && s.rows == rows && s.cols == cols, "shape");
	CHECK_NEAR(s.mean, mean, 1e-9, "mean");
	CHECK_NEAR(s.std, sd, 1e-9, "std");
	CHECK_NEAR(s.kurtosis, m4 / (m2 * m2) - 3, 1e-6, "excess kurtosis");
	CHECK(s.min == mn && s.max == mx && s.abs_max == fmax(fabs(mn), fabs(mx)), "range");
	CHECK(s.n_outliers == outliers && outliers > 0, "outliers %lld vs %lld", (long long)s.n_outliers,
	      (long long)outliers);
	int64_t total = 0;
	for (int b = 0; b < s.n_bins; b++)
		total += s.hist[b];
	CHECK(total == n, "histogram holds every value: %lld", (long long)total);
	int64_t in_first = 0, width_ok = 1;
	for (int64_t i = 0; i < n; i++)
		in_first += x[i] < mn + (mx - mn) / 50;
	CHECK(s.hist[0] == in_first, "first bin %lld vs %lld", (long long)s.hist[0], (long long)in_first);
	CHECK(fabs(s.top[0].value) == s.abs_max && fabs(x[s.top[0].row * cols + s.top[0].col] - s.top[0].value) < 1e-7,
	      "largest value and where it is");
	for (int i = 1; i < s.n_top; i++)
		width_ok &= fabsf(s.top[i].value) <= fabsf(s.top[i - 1].value);
	CHECK(width_ok && s.n_top == SL_STATS_TOP, "largest values in order");
	for (int64_t r = 0; r < rows; r++) {
		double lo = x[r * cols], hi = lo;
		for (int64_t c = 0; c < cols; c++) {
			lo = fmin(lo, x[r * cols + c]);
			hi = fmax(hi, x[r * cols + c]);
		}
		CHECK(s.row_min[r] == lo && s.row_max[r] == hi, "row %lld range", (long long)r);
	}
	for (int64_t c = 0; c < cols; c++) {
		double a = 0;
		for (int64_t r = 0; r < rows; r++)
			a = fmax(a, fabs(x[r * cols + c]));
		CHECK(s.col_abs_max[c] == a, "column %lld max", (long long)c);
	}
	sl_weight_stats_free(&s);
	CHECK(sl_weight_stats_compute(&t, 0, 4.0, NULL, &s, &err) == SL_ERR_ARG, "zero bins refused");
	free(x);
	sl_tensor_release(&t);
}

/* Records one tap's per-channel max |x| independently of stats.c. */
typedef struct {
	int layer;
	sl_tap where;
	float *max;
	int n;
	long long tokens;
} probe;

static void on_probe(void *ctx, int layer, sl_tap where, float *x, int T, int n)
{
	probe *p = ctx;
	if (layer != p->layer || where != p->where)
		return;
	p->n = n;
	for (int t = 0; t < T; t++)
		for (int i = 0; i < n; i++)
			p->max[i] = fmaxf(p->max[i], fabsf(x[(size_t)t * n + i]));
	p->tokens += T;
}

static void test_activations(void)
{
	const char *path = test_fixture("models/stories260K.gguf");
	if (!path)
		return;
	sl_model *m;
	sl_error err = {0};
	REQUIRE(sl_model_load(path, NULL, &m, &err) == SL_OK, "%s", err.msg);
	const char *text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
	                   "One day, she saw a big, red ball. She wanted to play with it, but it was too high. Her mom "
	                   "helped her get it down, and they played together all afternoon until the sun went down.";
	sl_act_profile *a;
	REQUIRE(sl_act_profile_gather(m, text, strlen(text), "story", 0, 16, NULL, &a, &err) == SL_OK, "%s", err.msg);
	CHECK(a->n_layers == m->cfg.n_layers && a->n_windows >= 2 && a->n_ctx == 16, "windows %d", a->n_windows);
	const sl_act_channels *ffn = sl_act_profile_at(a, 2, SL_TAP_FFN_DOWN_IN);
	REQUIRE(ffn, "the MLP hidden state of block 2 was not recorded");
	CHECK(ffn->n == m->layers[2].hidden_dim && ffn->n_tokens == a->n_tokens, "width %d, tokens %lld", ffn->n,
	      ffn->n_tokens);
	CHECK(!sl_act_profile_at(a, -1, SL_TAP_BLOCK_IN) && !sl_act_profile_at(a, m->cfg.n_layers, SL_TAP_ATTN_IN),
	      "out of range layers have no statistics");

	/* The same windows again through a probe of our own. */
	probe p = {2, SL_TAP_FFN_DOWN_IN, calloc((size_t)ffn->n, sizeof(float)), 0, 0};
	sl_state *s;
	REQUIRE(p.max && sl_state_new(m, 16, &s, &err) == SL_OK, "%s", err.msg);
	s->tap = on_probe;
	s->tap_ctx = &p;
	int32_t *ids;
	size_t n;
	REQUIRE(sl_tok_encode(m->tok, text, strlen(text), true, &ids, &n, &err) == SL_OK, "%s", err.msg);
	for (size_t at = 0; at < n; at += 16) {
		int k = n - at < 16 ? (int)(n - at) : 16;
		ids[at] = sl_tok_bos(m->tok);
		sl_state_reset(s);
		REQUIRE(sl_forward(s, ids + at, k, NULL, 0, &err) == SL_OK, "%s", err.msg);
	}
	CHECK(p.tokens == ffn->n_tokens, "tokens %lld vs %lld", p.tokens, ffn->n_tokens);
	int same = 0;
	for (int i = 0; i < ffn->n; i++)
		same += p.max[i] == ffn->abs_max[i];
	CHECK(same == ffn->n, "%d of %d channel maxima agree", same, ffn->n);

	sl_act_summary sum;
	sl_act_summarize(ffn, 6.0, &sum);
	float mx = 0;
	for (int i = 0; i < ffn->n; i++)
		mx = fmaxf(mx, ffn->abs_max[i]);
	CHECK(sum.abs_max == mx && ffn->abs_max[sum.top[0]] == mx, "summary maximum");
	double sq = 0;
	for (int i = 0; i < ffn->n; i++)
		sq += ffn->sum_sq[i];
	CHECK_NEAR(sum.rms, sqrt(sq / ((double)ffn->n * ffn->n_tokens)), 1e-12, "rms");

	atomic_int cancel = 1;
	sl_progress cp = {NULL, NULL, &cancel};
	sl_act_profile *b = NULL;
	CHECK(sl_act_profile_gather(m, text, strlen(text), "story", 0, 16, &cp, &b, &err) == SL_ERR_CANCELLED && !b,
	      "cancelled gathering returns nothing");
	free(ids);
	free(p.max);
	sl_state_free(s);
	sl_act_profile_free(a);
	sl_model_free(m);
}

int main(void)
{
	test_weights(SL_DT_F32);
	test_weights(SL_DT_F16);
	test_activations();
	return test_finish();
}
