/* slimlab's own storage formats: their byte layouts, reference quantizers
 * (round to nearest), conversions to F32, dot products against F32 and,
 * for the integers, NVFP4 and MXFP4, integer dot products against
 * activations quantized to int8-g32 (AVX2 kernels chosen at run time).
 *
 * Layouts (little-endian; "f16" is an IEEE half):
 *
 *   int8 (SL_DT_I8_CH)   row: f32 scale s = max|w|/127, then one int8 per
 *                        value, q = round(w/s); w' = q*s.
 *   intK-gG              blocks of G values: f16 d [, f16 m when asym],
 *                        then the G codes, K bits each.
 *     symmetric, K = 8:  signed codes -127..127, d = max|w|/127 (so
 *                        int8-g32 is ggml's Q8_0 byte for byte).
 *     symmetric, K < 8:  levels -2^(K-1)..2^(K-1)-1 stored with the offset
 *                        2^(K-1); d = w_ext / -2^(K-1) where w_ext is the
 *                        value of largest magnitude, so it lands exactly on
 *                        the lowest level and the other sign still gets
 *                        2^(K-1)-1 steps (int4-g32 is ggml's Q4_0).
 *     asymmetric:        codes 0..2^K-1, m = min w, d = (max w - m)/(2^K-1);
 *                        w' = q*d + m (int4-g32-asym is ggml's Q4_1).
 *     Codes are packed in planes: with F = 8/K fields per byte (K = 8, 4,
 *     2) byte j holds values j, j + G/F, j + 2G/F, ... from its low bits
 *     up, so 4-bit blocks put value j in the low nibble of byte j and value
 *     j + G/2 in the high one, as ggml does. K = 3 stores the low two bits
 *     as a 2-bit plane and the third bit as a 1-bit plane after it.
 *   fp8-e4m3, fp8-e5m2   row: f32 scale s, then one FP8 code per value;
 *                        w' = fp8(q)*s. s = amax/448 (E4M3) or amax/57344
 *                        (E5M2), amax over the tensor (the scale is copied
 *                        into every row) or, for the -ch types, the row.
 *   nvfp4                row: f32 global scale S = amax/(448*6) over the
 *                        tensor; blocks of 16: one E4M3 scale
 *                        sb = e4m3(block_amax/6/S), then 8 bytes of E2M1
 *                        codes (planes as above); w' = e2m1(q)*(e4m3(sb)*S).
 *   mxfp4                blocks of 32 (OCP Microscaling): one E8M0 scale
 *                        byte X+127 with X = floor(log2(amax)) - 2, then 16
 *                        bytes of E2M1 codes (planes as above); w' =
 *                        e2m1(q)*2^X. */
#include "cpu.h"
#include "formats.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- minifloats: FP8 E4M3, FP8 E5M2, FP4 E2M1 --------------------------- */

typedef struct {
	int ebits, mbits;
	bool ieee;          /* the top exponent is reserved for infinities and NaN */
	uint8_t max_code;   /* largest finite magnitude */
	uint8_t nan_code;   /* what NaN encodes to (without the sign) */
} minifloat;

static const minifloat mf_e4m3 = {4, 3, false, 0x7e, 0x7f};
static const minifloat mf_e5m2 = {5, 2, true, 0x7b, 0x7f};
static const minifloat mf_e2m1 = {2, 1, false, 0x7, 0x0};

static float mf_decode(const minifloat *f, uint8_t c)
{
	int bias = (1 << (f->ebits - 1)) - 1;
	int width = f->ebits + f->mbits;
	int e = (c >> f->mbits) & ((1 << f->ebits) - 1), m = c & ((1 << f->mbits) - 1);
	float sign = (c >> width) & 1 ? -1.0f : 1.0f;
	int mag = c & ((1 << width) - 1);
	if (f->ieee && e == (1 << f->ebits) - 1)
		return m ? NAN : sign * INFINITY;
	if (!f->ieee && f->nan_code && mag == f->nan_code)
		return NAN;
	if (e == 0)
		return sign * ldexpf((float)m, 1 - bias - f->mbits);
	return sign * ldexpf((float)((1 << f->mbits) + m), e - bias - f->mbits);
}

static uint8_t mf_encode(const minifloat *f, float x)
{
	int width = f->ebits + f->mbits;
	uint8_t sign = signbit(x) ? (uint8_t)(1u << width) : 0;
	if (isnan(x))
		return sign | f->nan_code;
	float a = fabsf(x);
	if (a >= mf_decode(f, f->max_code))
		return sign | f->max_code;
	if (a == 0.0f)
		return sign;
	int bias = (1 << (f->ebits - 1)) - 1, emin = 1 - bias, k;
	frexpf(a, &k);
	int e = k - 1; /* a = 1.x * 2^e */
	if (e < emin) {
		/* Subnormal: whole multiples of 2^(emin - mbits); rounding up to
		 * 2^mbits lands on the smallest normal code, which is the same number. */
		return sign | (uint8_t)nearbyintf(ldexpf(a, f->mbits - emin));
	}
	int q = (int)nearbyintf(ldexpf(a, f->mbits - e)); /* 2^mbits .. 2^(mbits+1) */
	if (q == 2 << f->mbits) {
		q = 1 << f->mbits;
		e++;
	}
	return sign | (uint8_t)(((e + bias) << f->mbits) | (q - (1 << f->mbits)));
}

float sl_fp8_e4m3_to_f32(uint8_t c) { return mf_decode(&mf_e4m3, c); }
uint8_t sl_f32_to_fp8_e4m3(float f) { return mf_encode(&mf_e4m3, f); }
float sl_fp8_e5m2_to_f32(uint8_t c) { return mf_decode(&mf_e5m2, c); }
uint8_t sl_f32_to_fp8_e5m2(float f) { return mf_encode(&mf_e5m2, f); }
float sl_e2m1_to_f32(uint8_t c) { return mf_decode(&mf_e2m1, c & 0xf); }
uint8_t sl_f32_to_e2m1(float f) { return mf_encode(&mf_e2m1, f); }

/* Decoding tables for the hot loops, filled at registration. */
float sl_fp8_e4m3_lut[256];
static float lut_e5m2[256], lut_e2m1[16];

static bool have_avx2;

static float load_f32(const void *p)
{
	float f;
	memcpy(&f, p, sizeof f);
	return f;
}

static void store_f32(void *p, float f)
{
	memcpy(p, &f, sizeof f);
}

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

/* ---- bit planes ---------------------------------------------------------- */

/* Packs n codes of k bits (k = 1, 2, 4, 8) in planes: byte j holds codes
 * j, j + n/F, j + 2n/F, ... (F = 8/k) from its low bits up (formats.h
 * unpacks them). */
static void plane_pack(const uint8_t *codes, uint8_t *dst, unsigned n, unsigned k)
{
	unsigned f = 8 / k, stride = n / f;
	memset(dst, 0, stride);
	for (unsigned i = 0; i < n; i++)
		dst[i % stride] |= (uint8_t)((codes[i] & ((1 << k) - 1)) << (k * (i / stride)));
}

/* K-bit codes of a run of n values, K = 2, 3, 4 or 8. */
static void codes_pack(const uint8_t *codes, uint8_t *dst, int n, int bits)
{
	if (bits != 3) {
		plane_pack(codes, dst, (unsigned)n, (unsigned)bits);
		return;
	}
	uint8_t part[128];
	for (int i = 0; i < n; i++)
		part[i] = codes[i] & 3;
	plane_pack(part, dst, (unsigned)n, 2);
	for (int i = 0; i < n; i++)
		part[i] = codes[i] >> 2;
	plane_pack(part, dst + n / 4, (unsigned)n, 1);
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
	codes_pack(codes, blk + int_header(L), G, L->bits);
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
 * dx * (d * sum(q*qx) + m * sum(qx)), where symmetric levels are signed
 * and asymmetric codes unsigned with their minimum m. */
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
			acc += sl_f16_to_f32(x->d) * (d * (float)isum + m * (float)xsum);
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
} int_entry;

#define INT_ENTRY(K, G, A)                                                                        \
	{&int_##K##_##G##_##A, int_##K##_##G##_##A##_to_float, int_##K##_##G##_##A##_from_float,  \
	 int_##K##_##G##_##A##_dot_f32, int_##K##_##G##_##A##_vec_dot}
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
	store_f32(d, s);
	int8_t *q = (int8_t *)(d + 4);
	for (int64_t i = 0; i < n; i++)
		q[i] = (int8_t)fminf(fmaxf(roundf(src[i] * id), -127.0f), 127.0f);
}

static void i8ch_to_float(const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	float sc = load_f32(s);
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
	return acc * load_f32(s);
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
	*s = acc * load_f32(row);
}

/* ---- FP8 with a tensor or row scale ------------------------------------------ */

static float amax_of(const float *x, int64_t n)
{
	float a = 0.0f;
	for (int64_t i = 0; i < n; i++)
		a = fmaxf(a, fabsf(x[i]));
	return a;
}

static void fp8_quantize_row(const minifloat *f, const float *src, uint8_t *dst, int64_t n, float scale)
{
	store_f32(dst, scale);
	for (int64_t i = 0; i < n; i++)
		dst[4 + i] = scale != 0.0f ? mf_encode(f, src[i] / scale) : 0;
}

static void fp8_to_float(const float *lut, const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	float sc = load_f32(s);
	for (int64_t i = 0; i < n; i++)
		dst[i] = lut[s[4 + i]] * sc;
}

static float fp8_dot(const float *lut, const void *w, const float *x, int64_t n)
{
	const uint8_t *s = w;
	float acc = 0.0f;
	int64_t i = 0;
	if (have_avx2) {
		i = n / 16 * 16;
		acc = lut == sl_fp8_e4m3_lut ? sl_dot_e4m3_f32_avx2(s + 4, x, i) : sl_dot_e5m2_f32_avx2(s + 4, x, i);
	}
	for (; i < n; i++)
		acc += lut[s[4 + i]] * x[i];
	return acc * load_f32(s);
}

/* Every row holds the tensor's scale: amax over all rows / the format's max. */
static void fp8_quantize_tensor(const minifloat *f, const float *src, void *dst, int64_t rows, int64_t len)
{
	float scale = amax_of(src, rows * len) / mf_decode(f, f->max_code);
	for (int64_t r = 0; r < rows; r++)
		fp8_quantize_row(f, src + r * len, (uint8_t *)dst + (size_t)r * (size_t)(4 + len), len, scale);
}

static void e4m3_rows(const float *s, void *d, int64_t rows, int64_t len) { fp8_quantize_tensor(&mf_e4m3, s, d, rows, len); }
static void e5m2_rows(const float *s, void *d, int64_t rows, int64_t len) { fp8_quantize_tensor(&mf_e5m2, s, d, rows, len); }
static void e4m3_from_float(const float *s, void *d, int64_t n) { e4m3_rows(s, d, 1, n); }
static void e5m2_from_float(const float *s, void *d, int64_t n) { e5m2_rows(s, d, 1, n); }
static void e4m3_ch_from_float(const float *s, void *d, int64_t n)
{
	fp8_quantize_row(&mf_e4m3, s, d, n, amax_of(s, n) / 448.0f);
}
static void e5m2_ch_from_float(const float *s, void *d, int64_t n)
{
	fp8_quantize_row(&mf_e5m2, s, d, n, amax_of(s, n) / 57344.0f);
}
static void e4m3_to_float(const void *s, float *d, int64_t n) { fp8_to_float(sl_fp8_e4m3_lut, s, d, n); }
static void e5m2_to_float(const void *s, float *d, int64_t n) { fp8_to_float(lut_e5m2, s, d, n); }
static float e4m3_dot(const void *w, const float *x, int64_t n) { return fp8_dot(sl_fp8_e4m3_lut, w, x, n); }
static float e5m2_dot(const void *w, const float *x, int64_t n) { return fp8_dot(lut_e5m2, w, x, n); }

/* ---- FP4: E2M1 values under NVFP4's and MXFP4's scales ------------------------- */

#define NVFP4_BLOCK 16
#define NVFP4_BYTES (1 + NVFP4_BLOCK / 2)
#define MXFP4_BLOCK 32
#define MXFP4_BYTES (1 + MXFP4_BLOCK / 2)

/* E2M1 codes of x/scale packed in planes after the scale byte; a zero
 * scale gives zeros. */
static void fp4_encode_run(const float *x, int n, float scale, uint8_t *dst)
{
	uint8_t codes[MXFP4_BLOCK];
	for (int i = 0; i < n; i++)
		codes[i] = scale != 0.0f ? mf_encode(&mf_e2m1, x[i] / scale) : 0;
	plane_pack(codes, dst, n, 4);
}

static void fp4_decode_run(const uint8_t *src, int n, float scale, float *y)
{
	for (int i = 0; i < n / 2; i++) {
		y[i] = lut_e2m1[src[i] & 0xf] * scale;
		y[i + n / 2] = lut_e2m1[src[i] >> 4] * scale;
	}
}

static float fp4_dot_run(const uint8_t *src, int n, const float *x)
{
	float acc = 0.0f;
	for (int i = 0; i < n / 2; i++)
		acc += lut_e2m1[src[i] & 0xf] * x[i] + lut_e2m1[src[i] >> 4] * x[i + n / 2];
	return acc;
}

static float nvfp4_block_scale(uint8_t sb, float global)
{
	return sl_fp8_e4m3_lut[sb] * global;
}

static void nvfp4_rows(const float *src, void *dst, int64_t rows, int64_t len)
{
	float global = amax_of(src, rows * len) / (448.0f * 6.0f);
	size_t rb = 4 + (size_t)(len / NVFP4_BLOCK) * NVFP4_BYTES;
	for (int64_t r = 0; r < rows; r++) {
		uint8_t *d = (uint8_t *)dst + (size_t)r * rb;
		const float *x = src + r * len;
		store_f32(d, global);
		for (int64_t b = 0; b < len / NVFP4_BLOCK; b++, x += NVFP4_BLOCK) {
			uint8_t *blk = d + 4 + (size_t)b * NVFP4_BYTES;
			blk[0] = global != 0.0f ? mf_encode(&mf_e4m3, amax_of(x, NVFP4_BLOCK) / 6.0f / global) : 0;
			fp4_encode_run(x, NVFP4_BLOCK, nvfp4_block_scale(blk[0], global), blk + 1);
		}
	}
}

static void nvfp4_from_float(const float *s, void *d, int64_t n)
{
	nvfp4_rows(s, d, 1, n);
}

static void nvfp4_to_float(const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	float global = load_f32(s);
	for (int64_t b = 0; b < n / NVFP4_BLOCK; b++) {
		const uint8_t *blk = s + 4 + (size_t)b * NVFP4_BYTES;
		fp4_decode_run(blk + 1, NVFP4_BLOCK, nvfp4_block_scale(blk[0], global), dst + b * NVFP4_BLOCK);
	}
}

static float nvfp4_dot(const void *w, const float *x, int64_t n)
{
	const uint8_t *s = w;
	float global = load_f32(s), acc = 0.0f;
	for (int64_t b = 0; b < n / NVFP4_BLOCK; b++) {
		const uint8_t *blk = s + 4 + (size_t)b * NVFP4_BYTES;
		acc += nvfp4_block_scale(blk[0], global) * fp4_dot_run(blk + 1, NVFP4_BLOCK, x + b * NVFP4_BLOCK);
	}
	return acc;
}

/* sum of (2 * value) * x over a run of n E2M1 codes in planes, an integer. */
static int fp4_idot(const uint8_t *q, const int8_t *x, int n)
{
	int s = 0;
	for (int i = 0; i < n / 2; i++)
		s += sl_e2m1_x2[q[i] & 0xf] * x[i] + sl_e2m1_x2[q[i] >> 4] * x[i + n / 2];
	return s;
}

static void nvfp4_vec_dot(int64_t n, float *s, const void *w, const void *xq)
{
	const uint8_t *row = w;
	const sl_act_block *x = xq;
	if (have_avx2) {
		*s = sl_dot_nvfp4_avx2(row, x, n);
		return;
	}
	float global = load_f32(row), acc = 0.0f;
	const uint8_t *b = row + 4;
	for (int64_t r = 0; r < n / SL_ACT_RUN; r++, b += 2 * NVFP4_BYTES, x++) {
		float s0 = sl_fp8_e4m3_lut[b[0]] * (float)fp4_idot(b + 1, x->q, NVFP4_BLOCK);
		float s1 = sl_fp8_e4m3_lut[b[NVFP4_BYTES]] * (float)fp4_idot(b + NVFP4_BYTES + 1, x->q + 16, NVFP4_BLOCK);
		acc += sl_f16_to_f32(x->d) * (s0 + s1);
	}
	*s = acc * 0.5f * global;
}

/* E8M0: 2^(code - 127); 0xff is NaN. */
static float e8m0_scale(uint8_t c)
{
	return c == 0xff ? NAN : ldexpf(1.0f, c - 127);
}

static void mxfp4_from_float(const float *src, void *dst, int64_t n)
{
	uint8_t *d = dst;
	for (int64_t b = 0; b < n / MXFP4_BLOCK; b++, src += MXFP4_BLOCK, d += MXFP4_BYTES) {
		float amax = amax_of(src, MXFP4_BLOCK);
		int x = -127;
		if (!isfinite(amax)) {
			d[0] = 0xff;
			memset(d + 1, 0, MXFP4_BLOCK / 2);
			continue;
		}
		if (amax > 0.0f) {
			int k;
			frexpf(amax, &k);
			x = k - 1 - 2; /* floor(log2(amax)) minus E2M1's largest exponent */
			x = x < -127 ? -127 : x;
		}
		d[0] = (uint8_t)(x + 127);
		fp4_encode_run(src, MXFP4_BLOCK, e8m0_scale(d[0]), d + 1);
	}
}

static void mxfp4_to_float(const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	for (int64_t b = 0; b < n / MXFP4_BLOCK; b++, s += MXFP4_BYTES)
		fp4_decode_run(s + 1, MXFP4_BLOCK, e8m0_scale(s[0]), dst + b * MXFP4_BLOCK);
}

static void mxfp4_vec_dot(int64_t n, float *s, const void *w, const void *xq)
{
	const uint8_t *b = w;
	const sl_act_block *x = xq;
	if (have_avx2) {
		*s = sl_dot_mxfp4_avx2(b, x, n);
		return;
	}
	float acc = 0.0f;
	for (int64_t r = 0; r < n / MXFP4_BLOCK; r++, b += MXFP4_BYTES, x++)
		acc += e8m0_scale(b[0]) * sl_f16_to_f32(x->d) * (float)fp4_idot(b + 1, x->q, MXFP4_BLOCK);
	*s = acc * 0.5f;
}

static float mxfp4_dot(const void *w, const float *x, int64_t n)
{
	const uint8_t *s = w;
	float acc = 0.0f;
	for (int64_t b = 0; b < n / MXFP4_BLOCK; b++, s += MXFP4_BYTES)
		acc += e8m0_scale(s[0]) * fp4_dot_run(s + 1, MXFP4_BLOCK, x + b * MXFP4_BLOCK);
	return acc;
}

/* ---- ggml twins ------------------------------------------------------------------ */

static const int_layout *int_layout_of(int type)
{
	if (type < SL_DT_INT_BASE || type >= SL_DT_INT_END)
		return NULL;
	return int_entries[type - SL_DT_INT_BASE].layout;
}

int sl_dtype_ggml_twin(int type)
{
	const int_layout *L = int_layout_of(type);
	if (!L || (L->bits == 8 && L->asym))
		return -1;
	return L->bits == 8 ? SL_DT_Q8_0 : L->asym ? SL_DT_Q4_1 : SL_DT_Q4_0;
}

/* Q4_0 and Q8_0 are int4-g32 and int8-g32, Q4_1 is int4-g32-asym: each
 * group becomes runs of 32 with the group's scale (and minimum), and
 * symmetric levels move to the offset of 4 bits. */
void sl_dtype_to_ggml_twin(int type, const void *src, void *dst, int64_t n)
{
	const int_layout *L = int_layout_of(type);
	int twin = sl_dtype_ggml_twin(type);
	if (twin < 0)
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
			codes_pack(codes + r * 32, d + hdr, 32, T->bits);
		}
	}
}

/* ---- F16 and BF16 ----------------------------------------------------------------- */

/* The plain floats a recipe names get fast dot products too, or decoding
 * through them converts every row to F32 first. */
static float half_dot(const void *w, const float *x, int64_t n, bool bf16)
{
	const uint16_t *h = w;
	int64_t i = n / 16 * 16;
	float acc = bf16 ? sl_dot_bf16_f32_avx2(h, x, i) : sl_dot_f16_f32_avx2(h, x, i);
	for (; i < n; i++)
		acc += (bf16 ? sl_bf16_to_f32(h[i]) : sl_f16_to_f32(h[i])) * x[i];
	return acc;
}

static float f16_dot(const void *w, const float *x, int64_t n) { return half_dot(w, x, n, false); }
static float bf16_dot(const void *w, const float *x, int64_t n) { return half_dot(w, x, n, true); }

/* ---- registration ------------------------------------------------------------- */

void sl_formats_register(sl_type_info *t)
{
	have_avx2 = sl_cpu_avx2();
	for (int c = 0; c < 256; c++) {
		sl_fp8_e4m3_lut[c] = mf_decode(&mf_e4m3, (uint8_t)c);
		lut_e5m2[c] = mf_decode(&mf_e5m2, (uint8_t)c);
	}
	for (int c = 0; c < 16; c++)
		lut_e2m1[c] = mf_decode(&mf_e2m1, (uint8_t)c);

	if (have_avx2) {
		t[SL_DT_F16].dot_f32 = t[SL_DT_F16].dot_f32 ? t[SL_DT_F16].dot_f32 : f16_dot;
		t[SL_DT_BF16].dot_f32 = t[SL_DT_BF16].dot_f32 ? t[SL_DT_BF16].dot_f32 : bf16_dot;
	}
	const int act = sl_dtype_int_group(8, 32, 0);
	t[SL_DT_I8_CH] = (sl_type_info){.name = "int8", .block_size = 1, .block_bytes = 1, .row_header = 4,
	                                .to_float = i8ch_to_float, .from_float = i8ch_from_float,
	                                .dot_f32 = i8ch_dot_f32, .vec_dot_type = act, .vec_dot = i8ch_vec_dot};
	t[SL_DT_FP8_E4M3] = (sl_type_info){.name = "fp8-e4m3", .block_size = 1, .block_bytes = 1, .row_header = 4,
	                                   .to_float = e4m3_to_float, .from_float = e4m3_from_float,
	                                   .from_float_rows = e4m3_rows, .dot_f32 = e4m3_dot};
	t[SL_DT_FP8_E4M3_CH] = (sl_type_info){.name = "fp8-e4m3-ch", .block_size = 1, .block_bytes = 1,
	                                      .row_header = 4, .to_float = e4m3_to_float,
	                                      .from_float = e4m3_ch_from_float, .dot_f32 = e4m3_dot};
	t[SL_DT_FP8_E5M2] = (sl_type_info){.name = "fp8-e5m2", .block_size = 1, .block_bytes = 1, .row_header = 4,
	                                   .to_float = e5m2_to_float, .from_float = e5m2_from_float,
	                                   .from_float_rows = e5m2_rows, .dot_f32 = e5m2_dot};
	t[SL_DT_FP8_E5M2_CH] = (sl_type_info){.name = "fp8-e5m2-ch", .block_size = 1, .block_bytes = 1,
	                                      .row_header = 4, .to_float = e5m2_to_float,
	                                      .from_float = e5m2_ch_from_float, .dot_f32 = e5m2_dot};
	t[SL_DT_NVFP4] = (sl_type_info){.name = "nvfp4", .block_size = NVFP4_BLOCK, .block_bytes = NVFP4_BYTES,
	                                .row_header = 4, .to_float = nvfp4_to_float, .from_float = nvfp4_from_float,
	                                .from_float_rows = nvfp4_rows, .dot_f32 = nvfp4_dot, .vec_dot_type = act,
	                                .vec_dot = nvfp4_vec_dot};
	t[SL_DT_MXFP4] = (sl_type_info){.name = "mxfp4", .block_size = MXFP4_BLOCK, .block_bytes = MXFP4_BYTES,
	                                .to_float = mxfp4_to_float, .from_float = mxfp4_from_float,
	                                .dot_f32 = mxfp4_dot, .vec_dot_type = act, .vec_dot = mxfp4_vec_dot};

	static char names[24][24];
	for (int i = 0; i < 24; i++) {
		const int_entry *e = &int_entries[i];
		const int_layout *L = e->layout;
		int id = sl_dtype_int_group(L->bits, L->group, L->asym);
		snprintf(names[i], sizeof names[i], "int%d-g%d%s", L->bits, L->group, L->asym ? "-asym" : "");
		t[id] = (sl_type_info){.name = names[i], .block_size = L->group, .block_bytes = int_block_bytes(L),
		                       .to_float = e->to_float, .from_float = e->from_float, .dot_f32 = e->dot_f32,
		                       .vec_dot_type = act, .vec_dot = e->vec_dot};
	}
}
