/* NormalFloat weights (QLoRA, Dettmers et al. 2023): 4-bit codes that
 * index sixteen values splitting a standard normal into bins of equal
 * mass, scaled to [-1, 1] (code 7 is an exact zero), under an absmax scale
 * per block of 64; and the same codes with those scales quantized once
 * more, double quantization.
 *
 *   nf4     blocks of 64: the f32 absmax a, then 32 bytes of codes (planes:
 *           byte j holds values j and j + 32); q = the value nearest w/a,
 *           w' = nf4[q]*a.
 *   nf4-dq  the codes of nf4, chosen with each block's own absmax a; then
 *           the absmaxes less their mean c over the tensor quantized to
 *           the dynamic map below, a group of blocks sharing one f32 scale
 *           s, the group's largest |a - c|. Row: f32 c, f32 s of the row's
 *           group, then per block its map code k and the 32 bytes of
 *           codes; w' = nf4[q]*(map[k]*s + c). A group is 256/B whole rows
 *           of B blocks (one row where B > 256), so that every row decodes
 *           on its own; where B divides 256 the groups are QLoRA's runs of
 *           256 consecutive scales.
 *
 * The dynamic map (signed, 8 bits; Dettmers' 8-bit approximations, which
 * QLoRA's reference implementation quantizes the scales to): for i = 0..6
 * the 2^i midpoints of 2^i equal steps from 0.1 to 1, times 10^(i-6), with
 * both signs; then 0 and 1: 256 values ascending, code 127 is 0 and 255 is
 * 1. Rounding to either table takes the nearest value, the lower on a
 * tie.
 *
 * No integer dot products: NF4's values are not multiples of a step, so
 * these rows meet activations in F32, as QLoRA computes them; decoding is
 * what a product costs, and has an AVX2 path (formats-avx2.c). */
#include <math.h>
#include <stdlib.h>

#include "cpu.h"
#include "formats.h"
#include "scalar.h"

#define NF4_BLOCK 64
#define NF4_BYTES (4 + NF4_BLOCK / 2)
#define NF4_ZERO 7
#define DQ_BYTES (1 + NF4_BLOCK / 2)
#define DQ_HEADER 8
#define DQ_GROUP 256 /* scales sharing one scale of the second quantization */

/* QLoRA's table, as its reference implementation holds it in f32. */
static const float nf4_table[16] = {
	-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
	-0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
	0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
	0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

static float dyn_map[256];
static bool have_avx2;

/* The index of the value of t[0..n) (ascending) nearest x, the lower on a
 * tie; x is not NaN. */
static int nearest(const float *t, int n, float x)
{
	if (x <= t[0])
		return 0;
	if (x >= t[n - 1])
		return n - 1;
	int lo = 0, hi = n - 1; /* t[lo] < x <= t[hi] */
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (t[mid] < x)
			lo = mid;
		else
			hi = mid;
	}
	return x - t[lo] <= t[hi] - x ? lo : hi;
}

float sl_nf4_to_f32(uint8_t c)
{
	return nf4_table[c & 0xf];
}

uint8_t sl_f32_to_nf4(float f)
{
	return isnan(f) ? NF4_ZERO : (uint8_t)nearest(nf4_table, 16, f);
}

static uint8_t dyn_code(float x)
{
	return isnan(x) ? 127 : (uint8_t)nearest(dyn_map, 256, x);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static void fill_dyn_map(void)
{
	int k = 0;
	for (int i = 0; i < 7; i++) {
		int n = 1 << i;
		double step = (1.0 - 0.1) / n, scale = pow(10.0, i - 6);
		for (int j = 0; j < n; j++) {
			double lo = j * step + 0.1, hi = j + 1 == n ? 1.0 : (j + 1) * step + 0.1;
			float v = (float)(scale * ((lo + hi) / 2.0));
			dyn_map[k++] = v;
			dyn_map[k++] = -v;
		}
	}
	dyn_map[k++] = 0.0f;
	dyn_map[k] = 1.0f;
	qsort(dyn_map, 256, sizeof *dyn_map, cmp_float);
}

/* ---- runs of 64 codes -------------------------------------------------------- */

static void nf4_encode(const float *x, float a, uint8_t *dst)
{
	uint8_t codes[NF4_BLOCK];
	for (int i = 0; i < NF4_BLOCK; i++)
		codes[i] = a != 0.0f ? sl_f32_to_nf4(x[i] / a) : NF4_ZERO;
	sl_plane_pack(codes, dst, NF4_BLOCK, 4);
}

static void nf4_decode(const uint8_t *q, float scale, float *y)
{
	if (have_avx2) {
		sl_lut16_decode_avx2(q, NF4_BLOCK, nf4_table, scale, y);
		return;
	}
	for (int i = 0; i < NF4_BLOCK / 2; i++) {
		y[i] = nf4_table[q[i] & 0xf] * scale;
		y[i + NF4_BLOCK / 2] = nf4_table[q[i] >> 4] * scale;
	}
}

static float nf4_dot_run(const uint8_t *q, const float *x)
{
	float acc = 0.0f;
	for (int i = 0; i < NF4_BLOCK / 2; i++)
		acc += nf4_table[q[i] & 0xf] * x[i] + nf4_table[q[i] >> 4] * x[i + NF4_BLOCK / 2];
	return acc;
}

/* ---- nf4 ------------------------------------------------------------------------ */

static void nf4_from_float(const float *src, void *dst, int64_t n)
{
	uint8_t *d = dst;
	for (int64_t b = 0; b < n / NF4_BLOCK; b++, src += NF4_BLOCK, d += NF4_BYTES) {
		float a = sl_amax(src, NF4_BLOCK);
		sl_store_f32(d, a);
		nf4_encode(src, a, d + 4);
	}
}

static void nf4_to_float(const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	for (int64_t b = 0; b < n / NF4_BLOCK; b++, s += NF4_BYTES)
		nf4_decode(s + 4, sl_load_f32(s), dst + b * NF4_BLOCK);
}

static float nf4_dot(const void *w, const float *x, int64_t n)
{
	const uint8_t *s = w;
	float acc = 0.0f;
	for (int64_t b = 0; b < n / NF4_BLOCK; b++, s += NF4_BYTES)
		acc += sl_load_f32(s) * nf4_dot_run(s + 4, x + b * NF4_BLOCK);
	return acc;
}

static void nf4_grids(const void *span, sl_grid *out, int n_sub)
{
	(void)n_sub;
	*out = (sl_grid){.d = sl_load_f32(span)};
}

/* ---- nf4-dq --------------------------------------------------------------------- */

static float dq_scale(const uint8_t *row, uint8_t k)
{
	return dyn_map[k] * sl_load_f32(row + 4) + sl_load_f32(row);
}

static void dq_rows(const float *src, void *dst, int64_t rows, int64_t len)
{
	int64_t nb = len / NF4_BLOCK;
	if (nb <= 0 || rows <= 0)
		return;
	int64_t per = nb >= DQ_GROUP ? 1 : DQ_GROUP / nb;
	size_t rb = DQ_HEADER + (size_t)nb * DQ_BYTES;
	double sum = 0;
	for (int64_t b = 0; b < rows * nb; b++)
		sum += sl_amax(src + b * NF4_BLOCK, NF4_BLOCK);
	float c = (float)(sum / (double)(rows * nb));
	for (int64_t r0 = 0; r0 < rows; r0 += per) {
		int64_t r1 = r0 + per < rows ? r0 + per : rows;
		float s = 0.0f;
		for (int64_t b = r0 * nb; b < r1 * nb; b++)
			s = fmaxf(s, fabsf(sl_amax(src + b * NF4_BLOCK, NF4_BLOCK) - c));
		for (int64_t r = r0; r < r1; r++) {
			uint8_t *d = (uint8_t *)dst + (size_t)r * rb;
			sl_store_f32(d, c);
			sl_store_f32(d + 4, s);
			for (int64_t b = 0; b < nb; b++) {
				const float *x = src + (r * nb + b) * NF4_BLOCK;
				uint8_t *blk = d + DQ_HEADER + (size_t)b * DQ_BYTES;
				float a = sl_amax(x, NF4_BLOCK);
				blk[0] = dyn_code(s != 0.0f ? (a - c) / s : 0.0f);
				nf4_encode(x, a, blk + 1);
			}
		}
	}
}

static void dq_from_float(const float *src, void *dst, int64_t n)
{
	dq_rows(src, dst, 1, n);
}

static void dq_to_float(const void *src, float *dst, int64_t n)
{
	const uint8_t *row = src, *blk = row + DQ_HEADER;
	for (int64_t b = 0; b < n / NF4_BLOCK; b++, blk += DQ_BYTES)
		nf4_decode(blk + 1, dq_scale(row, blk[0]), dst + b * NF4_BLOCK);
}

static float dq_dot(const void *w, const float *x, int64_t n)
{
	const uint8_t *row = w, *blk = row + DQ_HEADER;
	float acc = 0.0f;
	for (int64_t b = 0; b < n / NF4_BLOCK; b++, blk += DQ_BYTES)
		acc += dq_scale(row, blk[0]) * nf4_dot_run(blk + 1, x + b * NF4_BLOCK);
	return acc;
}

static void dq_grids(const void *span, sl_grid *out, int n_sub)
{
	const uint8_t *row = span, *blk = row + DQ_HEADER;
	for (int k = 0; k < n_sub; k++, blk += DQ_BYTES)
		out[k] = (sl_grid){.d = dq_scale(row, blk[0])};
}

void sl_fmt_nf_register(sl_type_info *t)
{
	have_avx2 = sl_cpu_avx2();
	fill_dyn_map();
	t[SL_DT_NF4] = (sl_type_info){.name = "nf4", .block_size = NF4_BLOCK, .block_bytes = NF4_BYTES,
	                              .to_float = nf4_to_float, .from_float = nf4_from_float, .dot_f32 = nf4_dot,
	                              .grid = SL_GRID_NF4, .scope = SL_SCOPE_BLOCK, .sub = NF4_BLOCK,
	                              .grids = nf4_grids};
	t[SL_DT_NF4_DQ] = (sl_type_info){.name = "nf4-dq", .block_size = NF4_BLOCK, .block_bytes = DQ_BYTES,
	                                 .row_header = DQ_HEADER, .to_float = dq_to_float, .from_float = dq_from_float,
	                                 .from_float_rows = dq_rows, .dot_f32 = dq_dot, .grid = SL_GRID_NF4,
	                                 .scope = SL_SCOPE_TENSOR, .sub = NF4_BLOCK, .grids = dq_grids};
}
