/* The values a format can give each weight once its scales are fixed:
 * what GPTQ (and SparseGPT with quantization) round each column to. The
 * format's own quantizer picks the scales of a span of columns (so a fresh
 * span rounds exactly as round-to-nearest would), and this file reads
 * them back from the bytes it wrote, following each format's published
 * layout (kernels/cpu/formats.c for slimlab's, ggml's for the GGML ones).
 * The weight that fixed each scale (a sub-block's largest magnitude; its
 * least and greatest where there is a minimum) keeps the value the
 * quantizer gave it, so that packing GPTQ's result reproduces the scales
 * and with them every rounded value. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/quants.h"
#include "methods.h"

typedef enum { GRID_UNIFORM, GRID_E4M3, GRID_E5M2, GRID_E2M1 } grid_kind;

/* One sub-block's values: uniform, m + d*k for k in [kmin, kmax]; or a
 * minifloat's values times d. */
typedef struct {
	float d, m;
	int16_t kmin, kmax;
	int16_t pin[2];    /* columns within the sub-block whose values are kept (-1: none) */
	float pin_v[2];
} sub_grid;

struct sl_qgrid {
	int type, rows, cols;
	int span;          /* columns whose scales one quantizer call fixes */
	int sub;           /* columns sharing one scale */
	grid_kind kind;
	bool tensor;       /* scales depend on the whole tensor: fit all rows at once */
	int pins;          /* values kept per sub-block: 1 (largest magnitude) or 2 (least, greatest) */
	sub_grid *g;       /* rows * cols / sub */
	float *x, *deq;    /* scratch: the values being fitted and their round trip */
	unsigned char *packed;
	size_t row_bytes;
};

static float rd_f16(const unsigned char *p)
{
	return sl_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static float rd_f32(const unsigned char *p)
{
	float f;
	memcpy(&f, p, sizeof f);
	return f;
}

static void uniform(sub_grid *g, float d, float m, int kmin, int kmax)
{
	g->d = d;
	g->m = m;
	g->kmin = (int16_t)kmin;
	g->kmax = (int16_t)kmax;
}

/* GGML's blocks, as kernels/cpu/quants.h lays them out. */
static void read_ggml_scales(int type, const unsigned char *p, sub_grid *out, int n_sub)
{
	switch (type) {
	case SL_DT_Q8_0: {
		const sl_block_q8_0 *b = (const void *)p;
		uniform(out, sl_f16_to_f32(b->d), 0, -127, 127);
		return;
	}
	case SL_DT_Q4_0: {
		const sl_block_q4_0 *b = (const void *)p;
		uniform(out, sl_f16_to_f32(b->d), 0, -8, 7);
		return;
	}
	case SL_DT_Q5_0: {
		const sl_block_q5_0 *b = (const void *)p;
		uniform(out, sl_f16_to_f32(b->d), 0, -16, 15);
		return;
	}
	case SL_DT_Q4_1: {
		const sl_block_q4_1 *b = (const void *)p;
		uniform(out, sl_f16_to_f32(b->d), sl_f16_to_f32(b->m), 0, 15);
		return;
	}
	case SL_DT_Q5_1: {
		const sl_block_q5_1 *b = (const void *)p;
		uniform(out, sl_f16_to_f32(b->d), sl_f16_to_f32(b->m), 0, 31);
		return;
	}
	case SL_DT_Q6_K: {
		const sl_block_q6_K *b = (const void *)p;
		float d = sl_f16_to_f32(b->d);
		for (int j = 0; j < n_sub; j++)
			uniform(&out[j], d * b->scales[j], 0, -32, 31);
		return;
	}
	case SL_DT_Q3_K: {
		const sl_block_q3_K *b = (const void *)p;
		uint64_t sc[2];
		sl_q3_K_scales(b->scales, sc);
		float d = sl_f16_to_f32(b->d);
		for (int j = 0; j < n_sub; j++)
			uniform(&out[j], d * ((int)((sc[j / 8] >> (8 * (j % 8))) & 0xff) - 32), 0, -4, 3);
		return;
	}
	case SL_DT_Q2_K: {
		const sl_block_q2_K *b = (const void *)p;
		float d = sl_f16_to_f32(b->d), dmin = sl_f16_to_f32(b->dmin);
		for (int j = 0; j < n_sub; j++)
			uniform(&out[j], d * (b->scales[j] & 0xf), -dmin * (b->scales[j] >> 4), 0, 3);
		return;
	}
	case SL_DT_Q4_K:
	case SL_DT_Q5_K: {
		/* Q5_K starts like Q4_K: d, dmin, then the twelve scale bytes. */
		const sl_block_q4_K *b = (const void *)p;
		uint64_t sc, mn;
		sl_q4_K_scales(b->scales, &sc, &mn);
		float d = sl_f16_to_f32(b->d), dmin = sl_f16_to_f32(b->dmin);
		for (int j = 0; j < n_sub; j++)
			uniform(&out[j], d * (float)((sc >> (8 * j)) & 0xff), -dmin * (float)((mn >> (8 * j)) & 0xff), 0,
			        type == SL_DT_Q4_K ? 15 : 31);
		return;
	}
	}
}

/* Fills the n_sub sub-grids of one span of one row from the bytes the
 * format wrote for it (p: the row header if any, then the blocks). */
static void read_scales(int type, const unsigned char *p, sub_grid *out, int n_sub)
{
	size_t bb = sl_type_info_get(type)->block_bytes;
	if (type >= SL_DT_Q2_K && type < SL_DT_GGML_END) {
		read_ggml_scales(type, p, out, n_sub); /* one super-block holds them all */
		return;
	}
	if (type < SL_DT_GGML_END) {
		for (int k = 0; k < n_sub; k++)
			read_ggml_scales(type, p + (size_t)k * bb, out + k, 1);
		return;
	}
	if (type >= SL_DT_INT_BASE && type < SL_DT_INT_END) {
		int bi = (type - SL_DT_INT_BASE) / 6;
		int bits = bi == 0 ? 8 : bi == 1 ? 4 : bi == 2 ? 3 : 2;
		bool asym = (type - SL_DT_INT_BASE) % 2;
		int half = 1 << (bits - 1);
		for (int k = 0; k < n_sub; k++, p += bb) {
			out[k].d = rd_f16(p);
			out[k].m = asym ? rd_f16(p + 2) : 0.0f;
			out[k].kmin = (int16_t)(asym ? 0 : bits == 8 ? -127 : -half);
			out[k].kmax = (int16_t)(asym ? (1 << bits) - 1 : bits == 8 ? 127 : half - 1);
		}
		return;
	}
	switch (type) {
	case SL_DT_I8_CH:
		out->d = rd_f32(p);
		out->kmin = -127;
		out->kmax = 127;
		return;
	case SL_DT_FP8_E4M3:
	case SL_DT_FP8_E4M3_CH:
	case SL_DT_FP8_E5M2:
	case SL_DT_FP8_E5M2_CH:
		out->d = rd_f32(p);
		return;
	case SL_DT_NVFP4: {
		float global = rd_f32(p);
		for (int k = 0; k < n_sub; k++)
			out[k].d = sl_fp8_e4m3_to_f32(p[4 + (size_t)k * bb]) * global;
		return;
	}
	case SL_DT_MXFP4:
		for (int k = 0; k < n_sub; k++, p += bb)
			out[k].d = p[0] == 0xff ? 0.0f : ldexpf(1.0f, p[0] - 127);
		return;
	}
}

sl_qgrid *sl_qgrid_new(int type, int rows, int cols, const char **why)
{
	const sl_type_info *ti = sl_type_info_get(type);
	if (!ti) {
		*why = "unknown storage type";
		return NULL;
	}
	sl_qgrid q = {.type = type, .rows = rows, .cols = cols, .kind = GRID_UNIFORM, .pins = 1};
	if (type >= SL_DT_INT_BASE && type < SL_DT_INT_END) {
		q.span = q.sub = ti->block_size;
		if ((type - SL_DT_INT_BASE) % 2)
			q.pins = 2;
	} else {
		switch (type) {
		case SL_DT_Q8_0:
		case SL_DT_Q4_0:
		case SL_DT_Q5_0:
			q.span = q.sub = ti->block_size;
			break;
		case SL_DT_Q4_1:
		case SL_DT_Q5_1:
			q.span = q.sub = ti->block_size;
			q.pins = 2;
			break;
		case SL_DT_Q6_K:
		case SL_DT_Q3_K:
			q.span = ti->block_size;
			q.sub = 16;
			break;
		case SL_DT_Q2_K:
			q.span = ti->block_size;
			q.sub = 16;
			q.pins = 2;
			break;
		case SL_DT_Q4_K:
		case SL_DT_Q5_K:
			q.span = ti->block_size;
			q.sub = 32;
			q.pins = 2;
			break;
		case SL_DT_I8_CH:
			q.span = q.sub = cols;
			break;
		case SL_DT_FP8_E4M3:
		case SL_DT_FP8_E5M2:
			q.tensor = true;
			/* fall through */
		case SL_DT_FP8_E4M3_CH:
		case SL_DT_FP8_E5M2_CH:
			q.span = q.sub = cols;
			q.kind = type == SL_DT_FP8_E4M3 || type == SL_DT_FP8_E4M3_CH ? GRID_E4M3 : GRID_E5M2;
			break;
		case SL_DT_NVFP4:
			q.tensor = true;
			q.span = cols;
			q.sub = 16;
			q.kind = GRID_E2M1;
			break;
		case SL_DT_MXFP4:
			q.span = q.sub = 32;
			q.kind = GRID_E2M1;
			break;
		default:
			*why = "gptq rounds only to integer, ggml, fp8 and fp4 grids";
			return NULL;
		}
	}
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
	g->x = sl_malloc_array((size_t)fit_rows * q.span, sizeof *g->x);
	g->deq = sl_malloc_array((size_t)fit_rows * q.span, sizeof *g->deq);
	g->packed = sl_malloc_array((size_t)fit_rows, g->row_bytes);
	if (!g->g || !g->x || !g->deq || !g->packed) {
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
			read_scales(q->type, q->packed + (size_t)r * q->row_bytes, s, n_sub);
			for (int k = 0; k < n_sub; k++)
				set_pins(s + k, q->deq + (size_t)r * q->span + (size_t)k * q->sub, q->sub, q->pins);
		}
	}
}

static float minifloat_round(grid_kind kind, float v)
{
	switch (kind) {
	case GRID_E4M3:
		return sl_fp8_e4m3_to_f32(sl_f32_to_fp8_e4m3(v));
	case GRID_E5M2:
		return sl_fp8_e5m2_to_f32(sl_f32_to_fp8_e5m2(v));
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
	if (s->d == 0.0f)
		return q->kind == GRID_UNIFORM ? s->m : 0.0f;
	if (q->kind != GRID_UNIFORM)
		return s->d * minifloat_round(q->kind, v / s->d);
	float k = rintf((v - s->m) / s->d);
	k = k < s->kmin ? s->kmin : k > s->kmax ? s->kmax : k;
	return s->m + s->d * k;
}

sl_status sl_roundtrip(int type, const float *W, float *out, int rows, int cols, sl_error *err)
{
	size_t rb = sl_dtype_row_bytes(type, cols);
	if (!rb)
		return sl_errorf(err, SL_ERR_ARG, "%s cannot hold rows of %d values", sl_dtype_name(type), cols);
	void *buf = sl_malloc_array((size_t)rows, rb);
	if (!buf)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory quantizing a %d x %d matrix", rows, cols);
	sl_dtype_rows_from_float(type, W, buf, rows, cols);
	sl_dtype_rows_to_float(type, buf, out, rows, cols);
	free(buf);
	return SL_OK;
}

sl_rounding sl_qgrid_rounding(sl_qgrid *g)
{
	return (sl_rounding){.span = g->span, .fit = qgrid_fit, .round = qgrid_round, .ctx = g};
}
