/* The values a format can give each weight once its scales are fixed:
 * what a solve that rounds one column at a time rounds each value to. The
 * format's own quantizer picks the scales of a span of columns (so a fresh
 * span rounds exactly as round-to-nearest would), and this file reads
 * them back from the bytes it wrote (each storage type's grids(), which
 * knows its layout).
 * The weight that fixed each scale (a sub-block's largest magnitude; its
 * least and greatest where there is a minimum) keeps the value the
 * quantizer gave it, so that packing the solve's result reproduces the scales
 * and with them every rounded value.
 * Where each scale of uniform levels is its own block's, the steps can
 * also be learned (LSQ): the kept weights then sit at their level of the
 * learned step, and refitting on the grid's own values at the end rounds
 * each step as the format stores it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"

#include "../kernels/dtype.h"

/* One sub-block's grid and the values it keeps. */
typedef struct {
	sl_grid g;
	int16_t pin[2];    /* columns within the sub-block whose values are kept (-1: none) */
	int16_t pin_k[2];  /* their levels (uniform grids) */
	float pin_v[2];
} sub_grid;

struct sl_qgrid {
	const sl_type_info *ti;
	int type, rows, cols;
	int span;          /* columns whose scales one quantizer call fixes */
	int sub;           /* columns sharing one scale */
	bool tensor;       /* scales depend on the whole tensor: fit all rows at once */
	int pins;          /* values kept per sub-block: 1 (largest magnitude) or 2 (least, greatest) */
	sub_grid *g;       /* rows * cols / sub */
	sl_grid *read;     /* scratch: the grids of one span */
	float *x, *deq;    /* scratch: the values being fitted and their round trip */
	unsigned char *packed;
	size_t row_bytes;
};

sl_qgrid *sl_qgrid_new(int type, int rows, int cols, const char **why)
{
	const sl_type_info *ti = sl_type_info_get(type);
	if (!ti || ti->grid == SL_GRID_NONE || !ti->grids) {
		*why = ti ? "its values lie on no grid of scales" : "unknown storage type";
		return NULL;
	}
	sl_qgrid q = {.ti = ti, .type = type, .rows = rows, .cols = cols, .pins = ti->has_min ? 2 : 1,
	              .tensor = ti->scope == SL_SCOPE_TENSOR};
	q.span = ti->scope == SL_SCOPE_BLOCK ? ti->block_size : cols;
	q.sub = ti->sub ? ti->sub : cols;
	if (cols % q.span || cols % q.sub) {
		*why = "rows do not split into the format's blocks";
		return NULL;
	}
	sl_qgrid *g = malloc(sizeof *g);
	if (!g) {
		*why = "out of memory";
		return NULL;
	}
	*g = q;
	int fit_rows = q.tensor ? rows : 1;
	g->row_bytes = sl_dtype_row_bytes(type, q.span);
	g->g = sl_calloc((size_t)rows * (cols / q.sub), sizeof *g->g);
	g->read = sl_malloc_array((size_t)(q.span / q.sub), sizeof *g->read);
	g->x = sl_malloc_array((size_t)fit_rows * q.span, sizeof *g->x);
	g->deq = sl_malloc_array((size_t)fit_rows * q.span, sizeof *g->deq);
	g->packed = sl_malloc_array((size_t)fit_rows, g->row_bytes);
	if (!g->g || !g->read || !g->x || !g->deq || !g->packed) {
		sl_qgrid_free(g);
		*why = "out of memory";
		return NULL;
	}
	return g;
}

void sl_qgrid_free(sl_qgrid *g)
{
	if (!g)
		return;
	free(g->g);
	free(g->read);
	free(g->x);
	free(g->deq);
	free(g->packed);
	free(g);
}

/* The kept values of one sub-block, from the quantizer's round trip. */
static void set_pins(sub_grid *s, const float *deq, int n, int pins)
{
	int lo = 0, hi = 0, big = 0;
	for (int j = 1; j < n; j++) {
		if (deq[j] < deq[lo])
			lo = j;
		if (deq[j] > deq[hi])
			hi = j;
		if (fabsf(deq[j]) > fabsf(deq[big]))
			big = j;
	}
	if (pins == 2) {
		s->pin[0] = (int16_t)lo;
		s->pin[1] = (int16_t)hi;
	} else {
		s->pin[0] = (int16_t)big;
		s->pin[1] = -1;
	}
	s->pin_v[0] = deq[s->pin[0]];
	s->pin_v[1] = s->pin[1] >= 0 ? deq[s->pin[1]] : 0.0f;
	/* Only uniform grids read the levels back; others (fp8's one-step grid) are clamped so the
	   conversion stays defined. */
	for (int i = 0; i < 2; i++) {
		float k = s->g.d != 0.0f ? rintf((s->pin_v[i] - s->g.m) / s->g.d) : 0.0f;
		s->pin_k[i] = (int16_t)fminf(fmaxf(k, -32768.0f), 32767.0f);
	}
}

static void qgrid_fit(void *ctx, const float *seg, int ld, int c0)
{
	sl_qgrid *q = ctx;
	int n_rows = q->tensor ? q->rows : 1;
	int n_sub = q->span / q->sub, per_row = q->cols / q->sub;
	for (int r0 = 0; r0 < q->rows; r0 += n_rows) {
		for (int r = 0; r < n_rows; r++)
			memcpy(q->x + (size_t)r * q->span, seg + (size_t)(r0 + r) * ld, (size_t)q->span * sizeof *q->x);
		sl_dtype_rows_from_float(q->type, q->x, q->packed, n_rows, q->span);
		sl_dtype_rows_to_float(q->type, q->packed, q->deq, n_rows, q->span);
		for (int r = 0; r < n_rows; r++) {
			sub_grid *s = q->g + (size_t)(r0 + r) * per_row + c0 / q->sub;
			q->ti->grids(q->packed + (size_t)r * q->row_bytes, q->read, n_sub);
			for (int k = 0; k < n_sub; k++) {
				s[k].g = q->read[k];
				set_pins(s + k, q->deq + (size_t)r * q->span + (size_t)k * q->sub, q->sub, q->pins);
			}
		}
	}
}

/* The value of a grid of kind that is not uniform nearest v, at scale 1:
 * a minifloat's, or NF4's table's. */
static float value_round(int kind, float v)
{
	switch (kind) {
	case SL_GRID_E4M3:
		return sl_fp8_e4m3_to_f32(sl_f32_to_fp8_e4m3(v));
	case SL_GRID_E5M2:
		return sl_fp8_e5m2_to_f32(sl_f32_to_fp8_e5m2(v));
	case SL_GRID_NF4:
		return sl_nf4_to_f32(sl_f32_to_nf4(v));
	default:
		return sl_e2m1_to_f32(sl_f32_to_e2m1(v));
	}
}

static float qgrid_round(void *ctx, int r, int c, float v)
{
	const sl_qgrid *q = ctx;
	const sub_grid *s = q->g + (size_t)r * (q->cols / q->sub) + c / q->sub;
	int j = c % q->sub;
	if (j == s->pin[0])
		return s->pin_v[0];
	if (j == s->pin[1])
		return s->pin_v[1];
	const sl_grid *g = &s->g;
	int kind = q->ti->grid;
	if (g->d == 0.0f)
		return kind == SL_GRID_UNIFORM ? g->m : 0.0f;
	if (kind != SL_GRID_UNIFORM)
		return g->d * value_round(kind, v / g->d);
	float l = rintf((v - g->m) / g->d);
	/* The level as a whole number (no negative zero), times d, plus m
	 * where there is one: bit for bit what the dequantizers compute. */
	float k = (float)(int)(l < g->kmin ? g->kmin : l > g->kmax ? g->kmax : l);
	return g->m == 0.0f ? g->d * k : g->m + g->d * k;
}

sl_rounding sl_qgrid_rounding(sl_qgrid *g)
{
	return (sl_rounding){.span = g->span, .fit = qgrid_fit, .round = qgrid_round, .ctx = g};
}

void sl_qgrid_fit_all(sl_qgrid *g, const float *W)
{
	for (int c0 = 0; c0 < g->cols; c0 += g->span)
		qgrid_fit(g, W + c0, g->cols, c0);
}

void sl_qgrid_apply(const sl_qgrid *g, const float *W, float *out, unsigned char *inside)
{
	int per_row = g->cols / g->sub;
	for (int r = 0; r < g->rows; r++)
		for (int c = 0; c < g->cols; c++) {
			size_t i = (size_t)r * g->cols + c;
			const sub_grid *s = g->g + (size_t)r * per_row + c / g->sub;
			int j = c % g->sub;
			float v = W[i];
			if (inside)
				inside[i] = j != s->pin[0] && j != s->pin[1] && sl_grid_within(g->ti->grid, &s->g, v);
			out[i] = qgrid_round((void *)g, r, c, v);
		}
}

bool sl_qgrid_scales_learnable(const sl_qgrid *g)
{
	/* A row's f32 scale would not survive requantization bit for bit. */
	return g->ti->grid == SL_GRID_UNIFORM && g->ti->scope == SL_SCOPE_BLOCK && g->sub == g->span;
}

int sl_qgrid_n_scales(const sl_qgrid *g)
{
	return g->rows * (g->cols / g->sub);
}

int sl_qgrid_group(const sl_qgrid *g)
{
	return g->sub;
}

int sl_qgrid_kmax(const sl_qgrid *g)
{
	return g->g[0].g.kmax;
}

void sl_qgrid_scales(const sl_qgrid *g, float *d)
{
	for (int s = 0; s < sl_qgrid_n_scales(g); s++)
		d[s] = g->g[s].g.d;
}

void sl_qgrid_set_scales(sl_qgrid *g, const float *d)
{
	for (int i = 0; i < sl_qgrid_n_scales(g); i++) {
		sub_grid *s = &g->g[i];
		s->g.d = d[i];
		for (int k = 0; k < 2; k++)
			s->pin_v[k] = s->g.m + d[i] * (float)s->pin_k[k];
	}
}

/* LSQ's estimator: rounding passes straight through, clamping does not. */
void sl_qgrid_scale_grads(const sl_qgrid *g, const float *W, const float *dout, float scale, float *dd,
                          unsigned char *inside)
{
	for (int r = 0; r < g->rows; r++)
		for (int b = 0; b < g->cols / g->sub; b++) {
			size_t si = (size_t)r * (g->cols / g->sub) + b, i0 = (size_t)r * g->cols + (size_t)b * g->sub;
			const sub_grid *s = &g->g[si];
			double sum = 0;
			for (int j = 0; j < g->sub; j++) {
				size_t i = i0 + j;
				bool kept = j == s->pin[0] || j == s->pin[1];
				float x = s->g.d != 0.0f ? (W[i] - s->g.m) / s->g.d : 0.0f, dq;
				if (kept)
					dq = s->pin_k[j == s->pin[0] ? 0 : 1];
				else if (x < s->g.kmin)
					dq = s->g.kmin;
				else if (x > s->g.kmax)
					dq = s->g.kmax;
				else
					dq = rintf(x) - x;
				inside[i] = !kept && (s->g.d != 0.0f ? x >= s->g.kmin && x <= s->g.kmax : W[i] == s->g.m);
				sum += (double)dout[i] * dq;
			}
			if (s->g.d != 0.0f)
				dd[si] += scale * (float)sum;
		}
}

void sl_qgrid_round_scales(sl_qgrid *g, const float *W, float *scratch)
{
	sl_qgrid_apply(g, W, scratch, NULL);
	sl_qgrid_fit_all(g, scratch);
}
