/* slimlab's integer formats: int8 with one scale per output channel, and
 * group-wise integers of 8, 4, 3 and 2 bits in groups of 32, 64 or 128,
 * symmetric or with a minimum. Their byte layouts, reference quantizers,
 * conversions, dot products against F32 and against int8-g32 activations
 * (AVX2 ones in formats-avx2.c), the grid of each group for solvers, and
 * the ggml blocks that hold the same values for export.
 *
 *   int8 (SL_DT_I8_CH)   row: f32 scale s = max|w|/127, then one int8 per
 *                        value, q = round(w/s); w' = q*s.
 *   intK-gG              blocks of G values: f16 d [, f16 m when asym],
 *                        then the G codes, K bits each.
 *     symmetric, K = 8:  signed codes -127..127, d = max|w|/127 (so
 *                        int8-g32 is a ggml type byte for byte).
 *     symmetric, K < 8:  levels -2^(K-1)..2^(K-1)-1 stored with the offset
 *                        2^(K-1); d = w_ext / -2^(K-1) where w_ext is the
 *                        value of largest magnitude, so it lands exactly on
 *                        the lowest level and the other sign still gets
 *                        2^(K-1)-1 steps (int4-g32 is a ggml type too).
 *     asymmetric:        codes 0..2^K-1, m = min w, d = (max w - m)/(2^K-1);
 *                        w' = q*d + m (int4-g32-asym is one as well).
 *     Codes are packed in planes: with F = 8/K fields per byte (K = 8, 4,
 *     2) byte j holds values j, j + G/F, j + 2G/F, ... from its low bits
 *     up, so 4-bit blocks put value j in the low nibble of byte j and value
 *     j + G/2 in the high one, as ggml does. K = 3 stores the low two bits
 *     as a 2-bit plane and the third bit as a 1-bit plane after it.
 * No fused multiply-adds but the ones written out (the symmetric dot
 * products' float chain is the legacy formats'). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "formats.h"
#include "scalar.h"

static bool have_avx2;

static float load_f16(const uint8_t *p)
{
	return sl_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static void store_f16(uint8_t *p, float f)
{
	uint16_t h = sl_f32_to_f16(f);
	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(h >> 8);
}

static float dot_plain(const float *a, const float *b, int64_t n)
{
	float s = 0.0f;
	for (int64_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* A float that becomes a code in [0, top] by truncation, as ggml's
 * reference quantizers round (they add 0.5 first); NaN gives 0. */
static int clamp_code(float v, int top)
{
	return (int)fminf(fmaxf(v, 0.0f), (float)top);
}

/* ---- group-wise integers ------------------------------------------------- */

typedef struct {
	int bits, group;
	bool asym;
} int_layout;

static size_t int_header(const int_layout *L)
{
	return L->asym ? 4 : 2;
}

static size_t int_block_bytes(const int_layout *L)
{
	return int_header(L) + (size_t)(L->group * L->bits / 8);
}

static void int_quantize_block(const int_layout *L, const float *x, uint8_t *blk)
{
	int G = L->group, top = (1 << L->bits) - 1;
	uint8_t codes[128];
	if (L->asym) {
		float lo = FLT_MAX, hi = -FLT_MAX;
		for (int i = 0; i < G; i++) {
			lo = fminf(lo, x[i]);
			hi = fmaxf(hi, x[i]);
		}
		float d = (hi - lo) / (float)top;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		store_f16(blk, d);
		store_f16(blk + 2, lo);
		for (int i = 0; i < G; i++)
			codes[i] = (uint8_t)clamp_code((x[i] - lo) * id + 0.5f, top);
	} else if (L->bits == 8) {
		float amax = 0.0f;
		for (int i = 0; i < G; i++)
			amax = fmaxf(amax, fabsf(x[i]));
		float d = amax / 127.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		store_f16(blk, d);
		for (int i = 0; i < G; i++)
			codes[i] = (uint8_t)(int8_t)fminf(fmaxf(roundf(x[i] * id), -127.0f), 127.0f);
	} else {
		float amax = 0.0f, ext = 0.0f;
		for (int i = 0; i < G; i++)
			if (fabsf(x[i]) > amax) {
				amax = fabsf(x[i]);
				ext = x[i];
			}
		int half = 1 << (L->bits - 1);
		float d = ext / (float)-half;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		float off = (float)half + 0.5f;
		store_f16(blk, d);
		for (int i = 0; i < G; i++)
			codes[i] = (uint8_t)clamp_code(x[i] * id + off, top);
	}
	sl_codes_pack(codes, blk + int_header(L), G, L->bits);
}

static void int_dequantize_block(const int_layout *L, const uint8_t *blk, float *y)
{
	uint8_t codes[128];
	int G = L->group;
	float d = load_f16(blk);
	sl_codes_unpack(blk + int_header(L), codes, G, L->bits);
	if (L->asym) {
		float m = load_f16(blk + 2);
		for (int i = 0; i < G; i++)
			y[i] = (float)codes[i] * d + m;
	} else if (L->bits == 8) {
		for (int i = 0; i < G; i++)
			y[i] = (float)(int8_t)codes[i] * d;
	} else {
		int half = 1 << (L->bits - 1);
		for (int i = 0; i < G; i++)
			y[i] = (float)(codes[i] - half) * d;
	}
}

static void int_to_float(const int_layout *L, const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	size_t bb = int_block_bytes(L);
	for (int64_t b = 0; b < n / L->group; b++)
		int_dequantize_block(L, s + (size_t)b * bb, dst + b * L->group);
}

static void int_from_float(const int_layout *L, const float *src, void *dst, int64_t n)
{
	uint8_t *d = dst;
	size_t bb = int_block_bytes(L);
	for (int64_t b = 0; b < n / L->group; b++)
		int_quantize_block(L, src + b * L->group, d + (size_t)b * bb);
}

static float int_dot_f32(const int_layout *L, const void *w, const float *x, int64_t n)
{
	const uint8_t *s = w;
	size_t bb = int_block_bytes(L);
	float tmp[128], acc = 0.0f;
	for (int64_t b = 0; b < n / L->group; b++) {
		int_dequantize_block(L, s + (size_t)b * bb, tmp);
		acc += dot_plain(tmp, x + b * L->group, L->group);
	}
	return acc;
}

/* sum_i w[i]*x[i] with integer products: per run of 32 activations,
 * dx * (d * sum(q*qx) + m * sum(qx)) for asymmetric codes (unsigned, with
 * their minimum m); symmetric levels (signed) take the ggml legacy
 * formats' float chain, acc + sum(q*qx) * (d * dx), so that groups of 32
 * exported as ggml's 8- or 4-bit blocks give the same bits (quants.c). */
static float int_dot_portable(const int_layout *L, const uint8_t *w, const sl_act_block *x, int64_t n)
{
	int G = L->group, half = L->bits == 8 || L->asym ? 0 : 1 << (L->bits - 1);
	size_t bb = int_block_bytes(L);
	uint8_t codes[128];
	float acc = 0.0f;
	for (int64_t b = 0; b < n / G; b++, w += bb) {
		float d = load_f16(w), m = L->asym ? load_f16(w + 2) : 0.0f;
		sl_codes_unpack(w + int_header(L), codes, G, L->bits);
		for (int r = 0; r < G / SL_ACT_RUN; r++, x++) {
			int isum = 0, xsum = 0;
			for (int i = 0; i < SL_ACT_RUN; i++) {
				int c = codes[r * SL_ACT_RUN + i];
				int q = L->bits == 8 && !L->asym ? (int8_t)c : c - half;
				isum += q * x->q[i];
				xsum += x->q[i];
			}
			if (L->asym)
				acc += sl_f16_to_f32(x->d) * (d * (float)isum + m * (float)xsum);
			else
				acc = acc + (float)isum * (d * sl_f16_to_f32(x->d));
		}
	}
	return acc;
}

static void int_vec_dot(const int_layout *L, int64_t n, float *s, const void *w, const void *xq)
{
	if (!have_avx2)
		*s = int_dot_portable(L, w, xq, n);
	else if (L->bits == 8)
		*s = sl_dot_int8g_avx2(w, xq, n, L->group, L->asym);
	else if (L->bits == 4)
		*s = sl_dot_int4g_avx2(w, xq, n, L->group, L->asym);
	else
		*s = sl_dot_intk_avx2(w, xq, n, L->bits, L->group, L->asym);
}

/* The levels of each group of a span of n_sub groups, for solvers. */
static void int_grids(const int_layout *L, const void *span, sl_grid *out, int n_sub)
{
	const uint8_t *p = span;
	int half = 1 << (L->bits - 1);
	for (int k = 0; k < n_sub; k++, p += int_block_bytes(L)) {
		out[k].d = load_f16(p);
		out[k].m = L->asym ? load_f16(p + 2) : 0.0f;
		out[k].kmin = (int16_t)(L->asym ? 0 : L->bits == 8 ? -127 : -half);
		out[k].kmax = (int16_t)(L->asym ? (1 << L->bits) - 1 : L->bits == 8 ? 127 : half - 1);
	}
}

/* One set of entry points per layout; the table needs plain functions. */
#define INT_FNS(K, G, A)                                                                          \
	static const int_layout int_##K##_##G##_##A = {K, G, A};                                  \
	static void int_##K##_##G##_##A##_to_float(const void *s, float *d, int64_t n)            \
	{                                                                                         \
		int_to_float(&int_##K##_##G##_##A, s, d, n);                                      \
	}                                                                                         \
	static void int_##K##_##G##_##A##_from_float(const float *s, void *d, int64_t n)          \
	{                                                                                         \
		int_from_float(&int_##K##_##G##_##A, s, d, n);                                    \
	}                                                                                         \
	static float int_##K##_##G##_##A##_dot_f32(const void *w, const float *x, int64_t n)     \
	{                                                                                         \
		return int_dot_f32(&int_##K##_##G##_##A, w, x, n);                                \
	}                                                                                         \
	static void int_##K##_##G##_##A##_vec_dot(int64_t n, float *s, const void *w, const void *xq) \
	{                                                                                         \
		int_vec_dot(&int_##K##_##G##_##A, n, s, w, xq);                                   \
	}                                                                                         \
	static void int_##K##_##G##_##A##_grids(const void *p, sl_grid *o, int n)                \
	{                                                                                         \
		int_grids(&int_##K##_##G##_##A, p, o, n);                                         \
	}
#define INT_FNS_GROUPS(K)                                                                         \
	INT_FNS(K, 32, 0) INT_FNS(K, 32, 1) INT_FNS(K, 64, 0) INT_FNS(K, 64, 1)                   \
	INT_FNS(K, 128, 0) INT_FNS(K, 128, 1)
INT_FNS_GROUPS(8)
INT_FNS_GROUPS(4)
INT_FNS_GROUPS(3)
INT_FNS_GROUPS(2)

typedef struct {
	const int_layout *layout;
	void (*to_float)(const void *, float *, int64_t);
	void (*from_float)(const float *, void *, int64_t);
	float (*dot_f32)(const void *, const float *, int64_t);
	void (*vec_dot)(int64_t, float *, const void *, const void *);
	void (*grids)(const void *, sl_grid *, int);
} int_entry;

#define INT_ENTRY(K, G, A)                                                                        \
	{&int_##K##_##G##_##A, int_##K##_##G##_##A##_to_float, int_##K##_##G##_##A##_from_float,  \
	 int_##K##_##G##_##A##_dot_f32, int_##K##_##G##_##A##_vec_dot, int_##K##_##G##_##A##_grids}
#define INT_ENTRY_GROUPS(K)                                                                       \
	INT_ENTRY(K, 32, 0), INT_ENTRY(K, 32, 1), INT_ENTRY(K, 64, 0), INT_ENTRY(K, 64, 1),       \
	INT_ENTRY(K, 128, 0), INT_ENTRY(K, 128, 1)

static const int_entry int_entries[24] = {
	INT_ENTRY_GROUPS(8), INT_ENTRY_GROUPS(4), INT_ENTRY_GROUPS(3), INT_ENTRY_GROUPS(2),
};

/* ---- int8 per output channel ----------------------------------------------- */

static void i8ch_from_float(const float *src, void *dst, int64_t n)
{
	float amax = 0.0f;
	for (int64_t i = 0; i < n; i++)
		amax = fmaxf(amax, fabsf(src[i]));
	float s = amax / 127.0f;
	float id = s != 0.0f ? 1.0f / s : 0.0f;
	uint8_t *d = dst;
	sl_store_f32(d, s);
	int8_t *q = (int8_t *)(d + 4);
	for (int64_t i = 0; i < n; i++)
		q[i] = (int8_t)fminf(fmaxf(roundf(src[i] * id), -127.0f), 127.0f);
}

static void i8ch_to_float(const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	float sc = sl_load_f32(s);
	const int8_t *q = (const int8_t *)(s + 4);
	for (int64_t i = 0; i < n; i++)
		dst[i] = (float)q[i] * sc;
}

static float i8ch_dot_f32(const void *w, const float *x, int64_t n)
{
	const uint8_t *s = w;
	const int8_t *q = (const int8_t *)(s + 4);
	float acc = 0.0f;
	for (int64_t i = 0; i < n; i++)
		acc += (float)q[i] * x[i];
	return acc * sl_load_f32(s);
}

static void i8ch_grids(const void *span, sl_grid *out, int n_sub)
{
	(void)n_sub;
	*out = (sl_grid){sl_load_f32(span), 0.0f, -127, 127};
}

static void i8ch_vec_dot(int64_t n, float *s, const void *w, const void *xq)
{
	const uint8_t *row = w;
	const int8_t *q = (const int8_t *)(row + 4);
	const sl_act_block *x = xq;
	float acc = 0.0f;
	if (have_avx2) {
		acc = sl_dot_i8ch_avx2(q, x, n);
	} else {
		for (int64_t r = 0; r < n / SL_ACT_RUN; r++, q += SL_ACT_RUN) {
			int isum = 0;
			for (int i = 0; i < SL_ACT_RUN; i++)
				isum += q[i] * x[r].q[i];
			acc += sl_f16_to_f32(x[r].d) * (float)isum;
		}
	}
	*s = acc * sl_load_f32(row);
}

/* ---- ggml twins ------------------------------------------------------------------ */

static const int_layout *int_layout_of(int type)
{
	if (type < SL_DT_INT_BASE || type >= SL_DT_INT_END)
		return NULL;
	return int_entries[type - SL_DT_INT_BASE].layout;
}

/* Each group becomes runs of 32 with the group's scale (and minimum), and
 * symmetric levels move to the offset of 4 bits: the groups of 32 that
 * sl_dtype_ggml_twin's type shares its bytes with. */
void sl_dtype_to_ggml_twin(int type, const void *src, void *dst, int64_t n)
{
	const int_layout *L = int_layout_of(type);
	if (!L || (L->bits == 8 && L->asym))
		return;
	const int_layout *T = int_layout_of(sl_dtype_int_group(L->bits == 8 ? 8 : 4, 32, L->asym));
	const uint8_t *s = src;
	uint8_t *d = dst;
	size_t hdr = int_header(L), bb = int_block_bytes(L), tb = int_block_bytes(T);
	int shift = L->bits == 8 || L->asym ? 0 : 8 - (1 << (L->bits - 1));
	uint8_t codes[128];
	for (int64_t b = 0; b < n / L->group; b++, s += bb) {
		sl_codes_unpack(s + hdr, codes, L->group, L->bits);
		for (int r = 0; r < L->group / 32; r++, d += tb) {
			memcpy(d, s, hdr);
			for (int i = 0; i < 32; i++)
				codes[r * 32 + i] = (uint8_t)(codes[r * 32 + i] + shift);
			sl_codes_pack(codes + r * 32, d + hdr, 32, T->bits);
		}
	}
}


/* ---- registration ---------------------------------------------------------- */

void sl_fmt_int_register(sl_type_info *t)
{
	have_avx2 = sl_cpu_avx2();
	const int act = sl_dtype_int_group(8, 32, 0);
	t[SL_DT_I8_CH] = (sl_type_info){.name = "int8", .block_size = 1, .block_bytes = 1, .row_header = 4,
	                                .to_float = i8ch_to_float, .from_float = i8ch_from_float,
	                                .dot_f32 = i8ch_dot_f32, .vec_dot_type = act, .vec_dot = i8ch_vec_dot,
	                                .grid = SL_GRID_UNIFORM, .scope = SL_SCOPE_ROW, .grids = i8ch_grids};
	static char names[24][24];
	for (int i = 0; i < 24; i++) {
		const int_entry *e = &int_entries[i];
		const int_layout *L = e->layout;
		int id = sl_dtype_int_group(L->bits, L->group, L->asym);
		snprintf(names[i], sizeof names[i], "int%d-g%d%s", L->bits, L->group, L->asym ? "-asym" : "");
		t[id] = (sl_type_info){.name = names[i], .block_size = L->group, .block_bytes = int_block_bytes(L),
		                       .to_float = e->to_float, .from_float = e->from_float, .dot_f32 = e->dot_f32,
		                       .vec_dot_type = act, .vec_dot = e->vec_dot, .grid = SL_GRID_UNIFORM,
		                       .scope = SL_SCOPE_BLOCK, .sub = L->group, .has_min = L->asym, .grids = e->grids};
	}
}
