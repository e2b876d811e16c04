/* GGML block formats: conversion to F32, the reference quantizers (which
 * write the same bytes as ggml's quantize_row_*_ref for the same input), and
 * portable dot products. Each format has one unpack function, the only place
 * that knows its bit layout; conversion and dot products work on the
 * unpacked integers.
 *
 * Matching ggml byte for byte means doing the same float operations in the
 * same order, so the quantizers below follow ggml's arithmetic step by step,
 * and the compiler must not fuse multiplies and adds into FMAs even when the
 * target has them (-march=native): ggml's own quantizers are built without.
 * tests/test-quants checks the bytes against ones produced by ggml. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quants.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* Rounds to nearest, ties to even, for |f| < 2^22, as ggml's nearest_int:
 * adding 1.5*2^23 leaves the rounded integer in the low mantissa bits. */
static inline int round_even(float f)
{
	float v = f + 12582912.f;
	int32_t i;
	memcpy(&i, &v, sizeof i);
	return (i & 0x007fffff) - 0x00400000;
}

/* For the helpers that take a format's functions as arguments: inlined into
 * each format's wrapper, the calls become direct and the loops vectorize. */
#define GENERIC static inline __attribute__((always_inline))

/* ggml's (int8_t) cast of a float, truncating toward zero, made defined for
 * values out of range (NaN and infinities in the input end up here). */
static inline int to_int8(float v)
{
	return (int)fminf(fmaxf(v, -128.0f), 127.0f);
}

static inline int clamp_int(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- legacy formats: blocks of 32 ---------------------------------------- */

/* x[j] = d*q[j] + m. Formats without an offset use m = -0.0, which leaves
 * every product unchanged, signed zeros included. */
typedef struct {
	float d, m;
	int8_t q[SL_QK];
} block32;

typedef void (*unpack32_fn)(const void *restrict blk, block32 *restrict b);

static void unpack_nibbles(const uint8_t *restrict qs, const uint8_t *restrict qh, int bias,
                           int8_t *restrict q)
{
	uint8_t u[SL_QK];
	for (int j = 0; j < 16; j++) {
		u[j] = qs[j] & 0xf;
		u[j + 16] = qs[j] >> 4;
	}
	/* Eight elements at a time: copy qh byte k into all eight bytes, keep
	 * bit b in byte b, and adding 0x7f carries any set bit to the byte's top
	 * bit, which then moves to 0x10. */
	for (int k = 0; qh && k < 4; k++) {
		uint64_t t = ((qh[k] * 0x0101010101010101ull) & 0x8040201008040201ull) +
		             0x7f7f7f7f7f7f7f7full;
		uint64_t w;
		memcpy(&w, u + 8 * k, 8);
		w |= (t & 0x8080808080808080ull) >> 3;
		memcpy(u + 8 * k, &w, 8);
	}
	for (int j = 0; j < SL_QK; j++)
		q[j] = (int8_t)(u[j] - bias);
}

static void q4_0_unpack(const void *restrict blk, block32 *restrict b)
{
	const sl_block_q4_0 *x = blk;
	b->d = sl_f16_to_f32(x->d);
	b->m = -0.0f;
	unpack_nibbles(x->qs, NULL, 8, b->q);
}

static void q4_1_unpack(const void *restrict blk, block32 *restrict b)
{
	const sl_block_q4_1 *x = blk;
	b->d = sl_f16_to_f32(x->d);
	b->m = sl_f16_to_f32(x->m);
	unpack_nibbles(x->qs, NULL, 0, b->q);
}

static void q5_0_unpack(const void *restrict blk, block32 *restrict b)
{
	const sl_block_q5_0 *x = blk;
	b->d = sl_f16_to_f32(x->d);
	b->m = -0.0f;
	unpack_nibbles(x->qs, x->qh, 16, b->q);
}

static void q5_1_unpack(const void *restrict blk, block32 *restrict b)
{
	const sl_block_q5_1 *x = blk;
	b->d = sl_f16_to_f32(x->d);
	b->m = sl_f16_to_f32(x->m);
	unpack_nibbles(x->qs, x->qh, 0, b->q);
}

static void q8_0_unpack(const void *restrict blk, block32 *restrict b)
{
	const sl_block_q8_0 *x = blk;
	b->d = sl_f16_to_f32(x->d);
	b->m = -0.0f;
	memcpy(b->q, x->qs, SL_QK);
}

static void q8_1_unpack(const void *restrict blk, block32 *restrict b)
{
	const sl_block_q8_1 *x = blk;
	b->d = sl_f16_to_f32(x->d);
	b->m = -0.0f;
	memcpy(b->q, x->qs, SL_QK);
}

GENERIC void to_float32(unpack32_fn unpack, size_t bytes, const void *src, float *dst, int64_t n)
{
	const uint8_t *p = src;
	for (int64_t i = 0; i < n; i += SL_QK, p += bytes) {
		block32 b;
		unpack(p, &b);
		for (int j = 0; j < SL_QK; j++)
			dst[i + j] = b.q[j] * b.d + b.m;
	}
}

/* Weights against Q8_0 activations, or against Q8_1 ones for the formats
 * with an offset: sum d_w*d_x*q_w*q_x + m_w*(d_x*sum q_x). This defines the
 * bits of every legacy dot product (the AVX2, VNNI and AMX kernels take
 * the same steps): per block, the exact integer sum isum of its 32
 * products, then one float chain over the blocks in order,
 * sum = sum + float(isum) * (d_w * d_x), and for the formats with an offset
 * sum = sum + m_w * s_x in the same chain; multiplies and adds, never
 * fused. */
GENERIC void vec_dot32(unpack32_fn unpack, size_t bytes, bool offset, int64_t n, float *s,
                       const void *w, const void *xq)
{
	const uint8_t *p = w;
	float sum = 0;
	for (int64_t i = 0; i < n / SL_QK; i++, p += bytes) {
		block32 b;
		unpack(p, &b);
		const int8_t *yq;
		float yd, ys = 0;
		if (offset) {
			const sl_block_q8_1 *y = (const sl_block_q8_1 *)xq + i;
			yd = sl_f16_to_f32(y->d);
			ys = sl_f16_to_f32(y->s);
			yq = y->qs;
		} else {
			const sl_block_q8_0 *y = (const sl_block_q8_0 *)xq + i;
			yd = sl_f16_to_f32(y->d);
			yq = y->qs;
		}
		int32_t sumi = 0;
		for (int j = 0; j < SL_QK; j++)
			sumi += b.q[j] * yq[j];
		sum += (float)sumi * (b.d * yd);
		if (offset)
			sum += b.m * ys;
	}
	*s = sum;
}

/* The largest |x| of a block and the signed value that has it (the first
 * one on ties, as ggml). */
static float signed_absmax(const float *x, int n, float *amax)
{
	float max = 0;
	*amax = 0;
	for (int j = 0; j < n; j++) {
		if (*amax < fabsf(x[j])) {
			*amax = fabsf(x[j]);
			max = x[j];
		}
	}
	return max;
}

static void min_max(const float *x, int n, float *min, float *max)
{
	*min = FLT_MAX;
	*max = -FLT_MAX;
	for (int j = 0; j < n; j++) {
		if (x[j] < *min)
			*min = x[j];
		if (x[j] > *max)
			*max = x[j];
	}
}

static void pack_nibbles(const int q[32], uint8_t qs[16], uint8_t *qh)
{
	uint32_t h = 0;
	for (int j = 0; j < 16; j++) {
		qs[j] = (uint8_t)((q[j] & 0xf) | (q[j + 16] & 0xf) << 4);
		h |= (uint32_t)((q[j] >> 4) & 1) << j;
		h |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
	}
	if (qh)
		for (int k = 0; k < 4; k++)
			qh[k] = (uint8_t)(h >> (8 * k));
}

/* Symmetric 4/5-bit blocks: the value of largest magnitude maps to -2^(b-1)
 * exactly; ggml rounds by adding 2^(b-1) + 0.5 and truncating. */
static void quantize_sym(const float *x, uint16_t *d16, uint8_t qs[16], uint8_t *qh, int half)
{
	float amax;
	const float d = signed_absmax(x, SL_QK, &amax) / (float)-half;
	const float id = d ? 1.0f / d : 0.0f;
	*d16 = sl_f32_to_f16(d);
	int q[SL_QK];
	for (int j = 0; j < SL_QK; j++) {
		int v = to_int8(x[j] * id + ((float)half + 0.5f));
		q[j] = v < 2 * half - 1 ? v : 2 * half - 1;
	}
	pack_nibbles(q, qs, qh);
}

/* Blocks with an offset: min maps to 0, max to 2^b - 1. ggml clamps the
 * 4-bit codes but not the 5-bit ones, which it masks instead. */
static void quantize_min(const float *x, uint16_t *d16, uint16_t *m16, uint8_t qs[16], uint8_t *qh,
                         int levels)
{
	float min, max;
	min_max(x, SL_QK, &min, &max);
	const float d = (max - min) / (float)(levels - 1);
	const float id = d ? 1.0f / d : 0.0f;
	*d16 = sl_f32_to_f16(d);
	*m16 = sl_f32_to_f16(min);
	int q[SL_QK];
	for (int j = 0; j < SL_QK; j++) {
		int v = to_int8((x[j] - min) * id + 0.5f);
		q[j] = qh ? v : v < levels - 1 ? v : levels - 1;
	}
	pack_nibbles(q, qs, qh);
}

static void q4_0_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q4_0 *y = dst;
	for (int64_t i = 0; i < n / SL_QK; i++)
		quantize_sym(x + i * SL_QK, &y[i].d, y[i].qs, NULL, 8);
}

static void q5_0_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q5_0 *y = dst;
	for (int64_t i = 0; i < n / SL_QK; i++)
		quantize_sym(x + i * SL_QK, &y[i].d, y[i].qs, y[i].qh, 16);
}

static void q4_1_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q4_1 *y = dst;
	for (int64_t i = 0; i < n / SL_QK; i++)
		quantize_min(x + i * SL_QK, &y[i].d, &y[i].m, y[i].qs, NULL, 16);
}

static void q5_1_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q5_1 *y = dst;
	for (int64_t i = 0; i < n / SL_QK; i++)
		quantize_min(x + i * SL_QK, &y[i].d, &y[i].m, y[i].qs, y[i].qh, 32);
}

#if defined(__x86_64__) || defined(__i386__)
/* quantize_q8 below eight values at a time, the same codes: the largest
 * |x| is the same whatever the order (NaN never wins, as with fmaxf), and
 * roundf is truncation plus one where the part cut off is half or more. */
__attribute__((target("avx2"))) static int quantize_q8_avx2(const float *x, uint16_t *d16, int8_t qs[32],
                                                            float *dscale)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 m = _mm256_setzero_ps();
	for (int j = 0; j < SL_QK; j += 8)
		m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), m);
	float lanes[8], amax = 0;
	_mm256_storeu_ps(lanes, m);
	for (int k = 0; k < 8; k++)
		amax = lanes[k] > amax ? lanes[k] : amax;
	const float d = amax / 127;
	const float id = d ? 1.0f / d : 0.0f;
	*d16 = sl_f32_to_f16(d);
	*dscale = d;
	int sum = 0;
	for (int j = 0; j < SL_QK; j += 8) {
		__m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j), _mm256_set1_ps(id));
		__m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
		__m256 half = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
		t = _mm256_add_ps(t, _mm256_and_ps(half, _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f))));
		t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
		int32_t c[8];
		_mm256_storeu_si256((__m256i *)c, _mm256_cvttps_epi32(t));
		for (int k = 0; k < 8; k++) {
			qs[j + k] = (int8_t)c[k];
			sum += c[k];
		}
	}
	return sum;
}
#endif

/* Whether the AVX2 forms of the quantizers may run (set when the formats
 * are registered). */
static bool quant_avx2;

/* Q8 rounds half away from zero (roundf), unlike the K formats. Returns the
 * float scale and the sum of the codes. */
static int quantize_q8(const float *x, uint16_t *d16, int8_t qs[32], float *dscale)
{
#if defined(__x86_64__) || defined(__i386__)
	if (quant_avx2)
		return quantize_q8_avx2(x, d16, qs, dscale);
#endif
	float amax = 0;
	for (int j = 0; j < SL_QK; j++)
		amax = fmaxf(amax, fabsf(x[j]));
	const float d = amax / 127;
	const float id = d ? 1.0f / d : 0.0f;
	*d16 = sl_f32_to_f16(d);
	*dscale = d;
	int sum = 0;
	for (int j = 0; j < SL_QK; j++) {
		qs[j] = (int8_t)to_int8(roundf(x[j] * id));
		sum += qs[j];
	}
	return sum;
}

static void q8_0_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q8_0 *y = dst;
	float d;
	for (int64_t i = 0; i < n / SL_QK; i++)
		quantize_q8(x + i * SL_QK, &y[i].d, y[i].qs, &d);
}

/* Activations meet the integer dot products rounded as ggml's CPU kernels
 * round them (its quantize_row_q8_0 and _q8_1 on x86): id = 127/amax and
 * ties to even, where the reference quantizer above divides and rounds
 * ties away from zero. The same activations, so the same figures as the
 * programs slimlab is compared with. Returns the scale and the codes' sum. */
static int quantize_q8_act(const float *x, uint16_t *d16, int8_t qs[32], float *dscale)
{
	float amax = 0;
	for (int j = 0; j < SL_QK; j++) {
		const float a = fabsf(x[j]);
		amax = a > amax ? a : amax; /* fmaxf's answer (NaN left out), without its call */
	}
	const float d = amax / 127.f;
	const float id = amax != 0.0f ? 127.f / amax : 0.0f;
	*d16 = sl_f32_to_f16(d);
	*dscale = d;
	int sum = 0;
	for (int j = 0; j < SL_QK; j++) {
		qs[j] = (int8_t)to_int8(nearbyintf(x[j] * id));
		sum += qs[j];
	}
	return sum;
}

static void q8_0_act_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q8_0 *y = dst;
	float d;
	for (int64_t i = 0; i < n / SL_QK; i++)
		quantize_q8_act(x + i * SL_QK, &y[i].d, y[i].qs, &d);
}

static void q8_1_act_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q8_1 *y = dst;
	for (int64_t i = 0; i < n / SL_QK; i++) {
		float d;
		int sum = quantize_q8_act(x + i * SL_QK, &y[i].d, y[i].qs, &d);
		y[i].s = sl_f32_to_f16((float)sum * d);
	}
}

static void q8_1_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q8_1 *y = dst;
	for (int64_t i = 0; i < n / SL_QK; i++) {
		float d;
		int sum = quantize_q8(x + i * SL_QK, &y[i].d, y[i].qs, &d);
		y[i].s = sl_f32_to_f16((float)sum * d);
	}
}

/* ---- K formats: super-blocks of 256 -------------------------------------- */

/* x[e] = (d*sc[g])*q[e] - dmin*mn[g] for e in sub-block g of 16 elements
 * (formats with 32-element sub-blocks repeat each scale). Formats without a
 * min use dmin = mn = 0: subtracting +0.0 changes nothing. */
typedef struct {
	float d, dmin;
	int16_t sc[16], mn[16];
	int8_t q[SL_QK_K];
} blockK;

typedef void (*unpackK_fn)(const void *restrict blk, blockK *restrict b);

static inline int byte_of(uint64_t v, int j)
{
	return (int)((v >> (8 * j)) & 0xff);
}

/* The two low bits of element 128h + 32j + l sit at shift 2j of qs[32h + l];
 * the Q3_K high bit of element e is bit e/32 of hmask[e%32]. */
static void q2_K_unpack(const void *restrict blk, blockK *restrict b)
{
	const sl_block_q2_K *x = blk;
	b->d = sl_f16_to_f32(x->d);
	b->dmin = sl_f16_to_f32(x->dmin);
	for (int g = 0; g < 16; g++) {
		b->sc[g] = x->scales[g] & 0xf;
		b->mn[g] = x->scales[g] >> 4;
	}
	for (int h = 0; h < 2; h++)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 32; l++)
				b->q[128 * h + 32 * j + l] =
				        (int8_t)((x->qs[32 * h + l] >> (2 * j)) & 3);
}

static void q3_K_unpack(const void *restrict blk, blockK *restrict b)
{
	const sl_block_q3_K *x = blk;
	uint64_t sc[2];
	sl_q3_K_scales(x->scales, sc);
	b->d = sl_f16_to_f32(x->d);
	b->dmin = 0;
	for (int g = 0; g < 16; g++) {
		b->sc[g] = (int16_t)(byte_of(sc[g / 8], g % 8) - 32);
		b->mn[g] = 0;
	}
	for (int h = 0; h < 2; h++)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 32; l++) {
				int lo = (x->qs[32 * h + l] >> (2 * j)) & 3;
				int hi = (x->hmask[l] >> (4 * h + j)) & 1;
				b->q[128 * h + 32 * j + l] = (int8_t)(lo + 4 * hi - 4);
			}
}

/* Element 64c + 32k + l of a Q4_K/Q5_K block is nibble k of qs[32c + l];
 * its Q5_K fifth bit is bit 2c + k of qh[l]. */
static void unpack_q45_K(uint16_t d, uint16_t dmin, const uint8_t s[12], const uint8_t *restrict qh,
                         const uint8_t *restrict qs, blockK *restrict b)
{
	b->d = sl_f16_to_f32(d);
	b->dmin = sl_f16_to_f32(dmin);
	uint64_t sc, m;
	sl_q4_K_scales(s, &sc, &m);
	for (int j = 0; j < 8; j++) {
		b->sc[2 * j] = b->sc[2 * j + 1] = (int16_t)byte_of(sc, j);
		b->mn[2 * j] = b->mn[2 * j + 1] = (int16_t)byte_of(m, j);
	}
	for (int c = 0; c < 4; c++) {
		int8_t *q = b->q + 64 * c;
		for (int l = 0; l < 32; l++) {
			q[l] = (int8_t)(qs[32 * c + l] & 0xf);
			q[32 + l] = (int8_t)(qs[32 * c + l] >> 4);
		}
		if (qh)
			for (int l = 0; l < 32; l++) {
				q[l] = (int8_t)(q[l] | ((qh[l] >> (2 * c)) & 1) << 4);
				q[32 + l] = (int8_t)(q[32 + l] | ((qh[l] >> (2 * c + 1)) & 1) << 4);
			}
	}
}

static void q4_K_unpack(const void *restrict blk, blockK *restrict b)
{
	const sl_block_q4_K *x = blk;
	unpack_q45_K(x->d, x->dmin, x->scales, NULL, x->qs, b);
}

static void q5_K_unpack(const void *restrict blk, blockK *restrict b)
{
	const sl_block_q5_K *x = blk;
	unpack_q45_K(x->d, x->dmin, x->scales, x->qh, x->qs, b);
}

/* Element 128h + 32j + l of a Q6_K block: low nibble j/2 of
 * ql[64h + 32(j%2) + l], high two bits at shift 2j of qh[32h + l]. */
static void q6_K_unpack(const void *restrict blk, blockK *restrict b)
{
	const sl_block_q6_K *x = blk;
	b->d = sl_f16_to_f32(x->d);
	b->dmin = 0;
	for (int g = 0; g < 16; g++) {
		b->sc[g] = x->scales[g];
		b->mn[g] = 0;
	}
	for (int h = 0; h < 2; h++)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 32; l++) {
				int lo = (x->ql[64 * h + 32 * (j % 2) + l] >> (4 * (j / 2))) & 0xf;
				int hi = (x->qh[32 * h + l] >> (2 * j)) & 3;
				b->q[128 * h + 32 * j + l] = (int8_t)((lo | hi << 4) - 32);
			}
}

GENERIC void to_floatK(unpackK_fn unpack, size_t bytes, const void *src, float *dst, int64_t n)
{
	const uint8_t *p = src;
	for (int64_t i = 0; i < n; i += SL_QK_K, p += bytes) {
		blockK b;
		unpack(p, &b);
		for (int g = 0; g < 16; g++) {
			const float ds = b.d * b.sc[g], dm = b.dmin * b.mn[g];
			for (int l = 0; l < 16; l++)
				dst[i + 16 * g + l] = ds * b.q[16 * g + l] - dm;
		}
	}
}

GENERIC void vec_dotK(unpackK_fn unpack, size_t bytes, int64_t n, float *s, const void *w,
                      const void *xq)
{
	const uint8_t *p = w;
	const sl_block_q8_K *y = xq;
	float sum = 0;
	for (int64_t i = 0; i < n / SL_QK_K; i++, p += bytes) {
		blockK b;
		unpack(p, &b);
		int32_t sumi = 0, summ = 0;
		for (int g = 0; g < 16; g++) {
			int32_t t = 0;
			for (int l = 0; l < 16; l++)
				t += b.q[16 * g + l] * y[i].qs[16 * g + l];
			sumi += b.sc[g] * t;
			summ += b.mn[g] * y[i].bsums[g];
		}
		sum += sl_q_K_block_dot(y[i].d, b.d, sumi, b.dmin, summ);
	}
	*s = sum;
}

static void q8_K_to_float(const void *src, float *dst, int64_t n)
{
	const sl_block_q8_K *x = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = x[i / SL_QK_K].d * x[i / SL_QK_K].qs[i % SL_QK_K];
}

/* ggml treats groups whose largest |x| is below this as all zero. */
#define GROUP_EPS 1e-15f

/* Symmetric codes in [-nmax, nmax-1] with the scale that minimizes the
 * x^2-weighted squared error among 19 candidate scales near -nmax/max
 * (ggml's make_qx_quants with rmse_type 1). L gets codes + nmax. */
static float fit_symmetric(int n, int nmax, const float *x, int8_t *L)
{
	float amax;
	const float max = signed_absmax(x, n, &amax);
	if (amax < GROUP_EPS) {
		memset(L, 0, (size_t)n);
		return 0;
	}
	float iscale = -nmax / max;
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = clamp_int(round_even(iscale * x[i]), -nmax, nmax - 1);
		L[i] = (int8_t)(l + nmax);
		float w = x[i] * x[i];
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}
	float scale = suml2 ? sumlx / suml2 : 0.0f;
	float best = scale * sumlx;
	for (int is = -9; is <= 9; is++) {
		if (is == 0)
			continue;
		iscale = -(nmax + 0.1f * is) / max;
		sumlx = suml2 = 0;
		for (int i = 0; i < n; i++) {
			int l = clamp_int(round_even(iscale * x[i]), -nmax, nmax - 1);
			float w = x[i] * x[i];
			sumlx += w * x[i] * l;
			suml2 += w * l * l;
		}
		if (suml2 > 0 && sumlx * sumlx > best * suml2) {
			for (int i = 0; i < n; i++)
				L[i] = (int8_t)(nmax + clamp_int(round_even(iscale * x[i]), -nmax,
				                                 nmax - 1));
			scale = sumlx / suml2;
			best = scale * sumlx;
		}
	}
	return scale;
}

/* Codes in [-nmax, nmax-1] for Q3_K: start from -nmax/max, then move single
 * codes while that lowers the x^2-weighted error (ggml's make_q3_quants with
 * do_rmse). L gets codes + nmax. */
static float fit_q3(int n, int nmax, const float *x, int8_t *L)
{
	float amax;
	const float max = signed_absmax(x, n, &amax);
	if (amax < GROUP_EPS) {
		memset(L, 0, (size_t)n);
		return 0;
	}
	const float iscale = -nmax / max;
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = clamp_int(round_even(iscale * x[i]), -nmax, nmax - 1);
		L[i] = (int8_t)l;
		float w = x[i] * x[i];
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}
	for (int pass = 0; pass < 5; pass++) {
		int changed = 0;
		for (int i = 0; i < n; i++) {
			float w = x[i] * x[i];
			float slx = sumlx - w * x[i] * L[i];
			if (!(slx > 0))
				continue;
			float sl2 = suml2 - w * L[i] * L[i];
			int l = clamp_int(round_even(x[i] * sl2 / slx), -nmax, nmax - 1);
			if (l == L[i])
				continue;
			slx += w * x[i] * l;
			sl2 += w * l * l;
			if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
				L[i] = (int8_t)l;
				sumlx = slx;
				suml2 = sl2;
				changed++;
			}
		}
		if (!changed)
			break;
	}
	for (int i = 0; i < n; i++)
		L[i] = (int8_t)(L[i] + nmax);
	return sumlx / suml2;
}

/* Codes in [0, nmax] with x ~ scale*L - min: tries nstep+1 grid spacings
 * around (max-min)/nmax, each followed by a weighted least-squares fit of
 * scale and min, and keeps the one with the least weighted error, absolute
 * (use_mad) or squared (ggml's make_qkx2_quants). Returns the scale and
 * stores min (>= 0) in *the_min. */
static float fit_offset(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                        float rmin, float rdelta, int nstep, bool use_mad)
{
	float min = x[0], max = x[0];
	float sum_w = w[0], sum_x = sum_w * x[0];
	for (int i = 1; i < n; i++) {
		if (x[i] < min)
			min = x[i];
		if (x[i] > max)
			max = x[i];
		sum_w += w[i];
		sum_x += w[i] * x[i];
	}
	if (min > 0)
		min = 0;
	if (max == min) {
		memset(L, 0, (size_t)n);
		*the_min = -min;
		return 0;
	}
	float iscale = nmax / (max - min);
	float scale = 1 / iscale;
	float best_err = 0;
	for (int i = 0; i < n; i++) {
		L[i] = (uint8_t)clamp_int(round_even(iscale * (x[i] - min)), 0, nmax);
		float diff = scale * L[i] + min - x[i];
		best_err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
	}
	for (int is = 0; is <= nstep; is++) {
		uint8_t Lt[32];
		iscale = (rmin + rdelta * is + nmax) / (max - min);
		float sum_l = 0, sum_l2 = 0, sum_xl = 0;
		for (int i = 0; i < n; i++) {
			int l = clamp_int(round_even(iscale * (x[i] - min)), 0, nmax);
			Lt[i] = (uint8_t)l;
			sum_l += w[i] * l;
			sum_l2 += w[i] * l * l;
			sum_xl += w[i] * l * x[i];
		}
		float D = sum_w * sum_l2 - sum_l * sum_l;
		if (!(D > 0))
			continue;
		float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
		float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
		if (this_min > 0) {
			this_min = 0;
			this_scale = sum_xl / sum_l2;
		}
		float err = 0;
		for (int i = 0; i < n; i++) {
			float diff = this_scale * Lt[i] + this_min - x[i];
			err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
		}
		if (err < best_err) {
			memcpy(L, Lt, (size_t)n);
			best_err = err;
			scale = this_scale;
			min = this_min;
		}
	}
	*the_min = -min;
	return scale;
}

#if defined(__x86_64__) || defined(__i386__)
/* fit_offset over eight groups at once, one per lane. Each lane takes
 * fit_offset's steps in its order (no fused multiply-adds: the target has
 * none), so codes, scales and mins are the same bits; only the groups run
 * side by side. */
#define FIT8 __attribute__((target("avx2")))

/* clamp(round_even(f), 0, nmax), lane by lane. */
FIT8 static inline __m256i code8i(__m256 f, __m256i nmax)
{
	__m256i i = _mm256_castps_si256(_mm256_add_ps(f, _mm256_set1_ps(12582912.f)));
	i = _mm256_sub_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
	return _mm256_min_epi32(_mm256_max_epi32(i, _mm256_setzero_si256()), nmax);
}

FIT8 static inline __m256 code8(__m256 f, __m256i nmax)
{
	return _mm256_cvtepi32_ps(code8i(f, nmax));
}

/* w * |diff| or w * diff^2. */
FIT8 static inline __m256 loss8(__m256 w, __m256 diff, bool use_mad)
{
	return _mm256_mul_ps(w, use_mad ? _mm256_andnot_ps(_mm256_set1_ps(-0.0f), diff) : _mm256_mul_ps(diff, diff));
}

/* Groups g = 0..7 of n <= 32 values at x + n*g (weights w + n*g): codes
 * into L + n*g, scales[g], mins[g]. */
FIT8 static void fit_offset8(int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales, float *mins,
                             float rmin, float rdelta, int nstep, bool use_mad)
{
	__m256 X[32], W[32], best[32], trial[32];
	const __m256i at = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(n));
	for (int i = 0; i < n; i++) {
		X[i] = _mm256_i32gather_ps(x + i, at, 4);
		W[i] = _mm256_i32gather_ps(w + i, at, 4);
	}
	const __m256 zero = _mm256_setzero_ps();
	const __m256i top = _mm256_set1_epi32(nmax);
	__m256 min = X[0], max = X[0], sum_w = W[0], sum_x = _mm256_mul_ps(W[0], X[0]);
	for (int i = 1; i < n; i++) {
		min = _mm256_min_ps(X[i], min); /* x < min ? x : min, as the scalar test */
		max = _mm256_max_ps(X[i], max);
		sum_w = _mm256_add_ps(sum_w, W[i]);
		sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(W[i], X[i]));
	}
	min = _mm256_blendv_ps(min, zero, _mm256_cmp_ps(min, zero, _CMP_GT_OQ));
	/* Lanes whose values are all equal leave early in fit_offset: their
	 * results are set at the end, whatever the loop does with them. */
	const __m256 flat = _mm256_cmp_ps(max, min, _CMP_EQ_OQ), flat_min = min;
	__m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)nmax), _mm256_sub_ps(max, min));
	__m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale), best_err = zero;
	for (int i = 0; i < n; i++) {
		best[i] = code8(_mm256_mul_ps(iscale, _mm256_sub_ps(X[i], min)), top);
		__m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, best[i]), min), X[i]);
		best_err = _mm256_add_ps(best_err, loss8(W[i], diff, use_mad));
	}
	for (int is = 0; is <= nstep; is++) {
		/* min moves with the best fit so far, in the spacing too (as in ggml) */
		iscale = _mm256_div_ps(_mm256_set1_ps(rmin + rdelta * is + nmax), _mm256_sub_ps(max, min));
		__m256 sum_l = zero, sum_l2 = zero, sum_xl = zero;
		for (int i = 0; i < n; i++) {
			trial[i] = code8(_mm256_mul_ps(iscale, _mm256_sub_ps(X[i], min)), top);
			__m256 wl = _mm256_mul_ps(W[i], trial[i]);
			sum_l = _mm256_add_ps(sum_l, wl);
			sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, trial[i]));
			sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, X[i]));
		}
		__m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
		__m256 ok = _mm256_cmp_ps(D, zero, _CMP_GT_OQ);
		if (!_mm256_movemask_ps(ok))
			continue;
		__m256 this_scale = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), D);
		__m256 this_min = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), D);
		__m256 pos = _mm256_cmp_ps(this_min, zero, _CMP_GT_OQ);
		this_min = _mm256_blendv_ps(this_min, zero, pos);
		this_scale = _mm256_blendv_ps(this_scale, _mm256_div_ps(sum_xl, sum_l2), pos);
		__m256 err = zero;
		for (int i = 0; i < n; i++) {
			__m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale, trial[i]), this_min), X[i]);
			err = _mm256_add_ps(err, loss8(W[i], diff, use_mad));
		}
		__m256 take = _mm256_and_ps(ok, _mm256_cmp_ps(err, best_err, _CMP_LT_OQ));
		if (!_mm256_movemask_ps(take))
			continue;
		for (int i = 0; i < n; i++)
			best[i] = _mm256_blendv_ps(best[i], trial[i], take);
		best_err = _mm256_blendv_ps(best_err, err, take);
		scale = _mm256_blendv_ps(scale, this_scale, take);
		min = _mm256_blendv_ps(min, this_min, take);
	}
	min = _mm256_blendv_ps(min, flat_min, flat);
	_mm256_storeu_ps(mins, _mm256_xor_ps(min, _mm256_set1_ps(-0.0f)));
	_mm256_storeu_ps(scales, _mm256_blendv_ps(scale, zero, flat));
	for (int i = 0; i < n; i++) {
		int32_t c[8];
		_mm256_storeu_si256((__m256i *)c, _mm256_cvtps_epi32(_mm256_blendv_ps(best[i], zero, flat)));
		for (int g = 0; g < 8; g++)
			L[n * g + i] = (uint8_t)c[g];
	}
}

/* requantize below, eight codes at a time (n a multiple of 8). */
FIT8 static void requantize8(const float *x, int n, float d, float dm, int nmax, uint8_t *L)
{
	const __m256 vd = _mm256_set1_ps(d), vdm = _mm256_set1_ps(dm);
	for (int l = 0; l < n; l += 8) {
		int32_t c[8];
		__m256 q = _mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(x + l), vdm), vd);
		_mm256_storeu_si256((__m256i *)c, code8i(q, _mm256_set1_epi32(nmax)));
		for (int k = 0; k < 8; k++)
			L[l + k] = (uint8_t)c[k];
	}
}
#endif

/* Codes of x[0..n) against a stored scale d and min dm. */
static void requantize(const float *x, int n, float d, float dm, int nmax, uint8_t *L)
{
#if defined(__x86_64__) || defined(__i386__)
	if (quant_avx2 && n % 8 == 0) {
		requantize8(x, n, d, dm, nmax, L);
		return;
	}
#endif
	for (int l = 0; l < n; l++)
		L[l] = (uint8_t)clamp_int(round_even((x[l] + dm) / d), 0, nmax);
}

/* fit_offset for each of groups groups of n values (x + n*g, w + n*g,
 * codes into L + n*g): scales[g], mins[g]. */
static void fit_groups(int groups, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales,
                       float *mins, float rmin, float rdelta, int nstep, bool use_mad)
{
	int g = 0;
#if defined(__x86_64__) || defined(__i386__)
	for (; quant_avx2 && n <= 32 && g + 8 <= groups; g += 8)
		fit_offset8(n, nmax, x + n * g, w + n * g, L + n * g, scales + g, mins + g, rmin, rdelta, nstep,
		            use_mad);
#endif
	for (; g < groups; g++)
		scales[g] = fit_offset(n, nmax, x + n * g, w + n * g, L + n * g, &mins[g], rmin, rdelta, nstep, use_mad);
}

/* Four 2-bit codes per byte: element 128h + 32j + l at shift 2j of
 * qs[32h + l]. */
static void pack_crumbs(const uint8_t L[SL_QK_K], uint8_t qs[64])
{
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++) {
			const uint8_t *c = L + 128 * h + l;
			qs[32 * h + l] = (uint8_t)(c[0] | c[32] << 2 | c[64] << 4 | c[96] << 6);
		}
}

static void q2_K_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q2_K *y = dst;
	for (int64_t i = 0; i < n / SL_QK_K; i++, x += SL_QK_K) {
		uint8_t L[SL_QK_K];
		float w[SL_QK_K], scales[16], mins[16];
		float max_scale = 0, max_min = 0;
		for (int e = 0; e < SL_QK_K; e++)
			w[e] = fabsf(x[e]);
		fit_groups(16, 16, 3, x, w, L, scales, mins, -0.5f, 0.1f, 15, true);
		for (int j = 0; j < 16; j++) {
			if (scales[j] > max_scale)
				max_scale = scales[j];
			if (mins[j] > max_min)
				max_min = mins[j];
		}
		memset(y[i].scales, 0, sizeof y[i].scales);
		y[i].d = y[i].dmin = 0;
		if (max_scale > 0) {
			const float iscale = 15.f / max_scale;
			for (int j = 0; j < 16; j++)
				y[i].scales[j] = (uint8_t)round_even(iscale * scales[j]);
			y[i].d = sl_f32_to_f16(max_scale / 15.f);
		}
		if (max_min > 0) {
			const float iscale = 15.f / max_min;
			for (int j = 0; j < 16; j++)
				y[i].scales[j] |=
				        (uint8_t)((unsigned)round_even(iscale * mins[j]) << 4);
			y[i].dmin = sl_f32_to_f16(max_min / 15.f);
		}
		/* Requantize against the scales as stored. */
		for (int j = 0; j < 16; j++) {
			const float d = sl_f16_to_f32(y[i].d) * (y[i].scales[j] & 0xf);
			if (!d)
				continue;
			const float dm = sl_f16_to_f32(y[i].dmin) * (y[i].scales[j] >> 4);
			requantize(x + 16 * j, 16, d, dm, 3, L + 16 * j);
		}
		pack_crumbs(L, y[i].qs);
	}
}

/* The value of v[0..n) with the largest magnitude, sign kept (the first
 * one on ties; 0 when all are 0). */
static float largest_magnitude(const float *v, int n)
{
	float best = 0, amax = 0;
	for (int j = 0; j < n; j++)
		if (fabsf(v[j]) > amax) {
			amax = fabsf(v[j]);
			best = v[j];
		}
	return best;
}

static void q3_K_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q3_K *y = dst;
	for (int64_t i = 0; i < n / SL_QK_K; i++, x += SL_QK_K) {
		int8_t L[SL_QK_K];
		float scales[16];
		for (int j = 0; j < 16; j++)
			scales[j] = fit_q3(16, 4, x + 16 * j, L + 16 * j);
		const float max_scale = largest_magnitude(scales, 16);
		memset(y[i].scales, 0, sizeof y[i].scales);
		y[i].d = 0;
		if (max_scale) {
			const float iscale = -32.f / max_scale;
			for (int j = 0; j < 16; j++) {
				int l = clamp_int((int8_t)round_even(iscale * scales[j]), -32, 31) +
				        32;
				if (j < 8)
					y[i].scales[j] = (uint8_t)(l & 0xf);
				else
					y[i].scales[j - 8] |= (uint8_t)((l & 0xf) << 4);
				y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
			}
			y[i].d = sl_f32_to_f16(1 / iscale);
		}
		uint64_t sc[2];
		sl_q3_K_scales(y[i].scales, sc);
		for (int j = 0; j < 16; j++) {
			const float d = sl_f16_to_f32(y[i].d) * (byte_of(sc[j / 8], j % 8) - 32);
			if (!d)
				continue;
			for (int l = 0; l < 16; l++)
				L[16 * j + l] =
				        (int8_t)(clamp_int(round_even(x[16 * j + l] / d), -4, 3) +
				                 4);
		}
		uint8_t low[SL_QK_K];
		memset(y[i].hmask, 0, sizeof y[i].hmask);
		for (int e = 0; e < SL_QK_K; e++) {
			if (L[e] > 3)
				y[i].hmask[e % 32] |= (uint8_t)(1 << (e / 32));
			low[e] = (uint8_t)(L[e] & 3);
		}
		pack_crumbs(low, y[i].qs);
	}
}

/* The part Q4_K and Q5_K share: eight 32-element sub-blocks fitted with
 * fit_offset, their scales and mins stored as six-bit multiples of d and
 * dmin, then every code requantized against the stored values. */
static void quantize_K_offset(const float *x, int nmax, float rmin, int nstep, uint16_t *d16,
                              uint16_t *dmin16, uint8_t s[12], uint8_t L[SL_QK_K])
{
	float w[SL_QK_K], scales[8], mins[8];
	float max_scale = 0, max_min = 0;
	for (int j = 0; j < 8; j++) {
		const float *xj = x + 32 * j;
		float sum_x2 = 0;
		for (int l = 0; l < 32; l++)
			sum_x2 += xj[l] * xj[l];
		const float av_x = sqrtf(sum_x2 / 32);
		for (int l = 0; l < 32; l++)
			w[32 * j + l] = av_x + fabsf(xj[l]);
	}
	fit_groups(8, 32, nmax, x, w, L, scales, mins, rmin, 0.1f, nstep, false);
	for (int j = 0; j < 8; j++) {
		if (scales[j] > max_scale)
			max_scale = scales[j];
		if (mins[j] > max_min)
			max_min = mins[j];
	}
	const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
	const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
	for (int j = 0; j < 8; j++) {
		/* ggml stores the rounded value in a byte before clamping. */
		uint8_t ls = (uint8_t)round_even(inv_scale * scales[j]);
		uint8_t lm = (uint8_t)round_even(inv_min * mins[j]);
		ls = ls < 63 ? ls : 63;
		lm = lm < 63 ? lm : 63;
		if (j < 4) {
			s[j] = ls;
			s[j + 4] = lm;
		} else {
			s[j + 4] = (uint8_t)((ls & 0xf) | (lm & 0xf) << 4);
			s[j - 4] |= (uint8_t)((ls >> 4) << 6);
			s[j] |= (uint8_t)((lm >> 4) << 6);
		}
	}
	*d16 = sl_f32_to_f16(max_scale / 63.f);
	*dmin16 = sl_f32_to_f16(max_min / 63.f);
	uint64_t sc, m;
	sl_q4_K_scales(s, &sc, &m);
	for (int j = 0; j < 8; j++) {
		const float d = sl_f16_to_f32(*d16) * byte_of(sc, j);
		if (!d)
			continue;
		const float dm = sl_f16_to_f32(*dmin16) * byte_of(m, j);
		requantize(x + 32 * j, 32, d, dm, nmax, L + 32 * j);
	}
}

static void q4_K_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q4_K *y = dst;
	for (int64_t i = 0; i < n / SL_QK_K; i++, x += SL_QK_K) {
		uint8_t L[SL_QK_K];
		quantize_K_offset(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
		for (int c = 0; c < 4; c++)
			for (int l = 0; l < 32; l++)
				y[i].qs[32 * c + l] =
				        (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
	}
}

static void q5_K_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q5_K *y = dst;
	for (int64_t i = 0; i < n / SL_QK_K; i++, x += SL_QK_K) {
		uint8_t L[SL_QK_K];
		quantize_K_offset(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
		memset(y[i].qh, 0, sizeof y[i].qh);
		for (int e = 0; e < SL_QK_K; e++)
			y[i].qh[e % 32] |= (uint8_t)((L[e] >> 4) << (e / 32));
		for (int c = 0; c < 4; c++)
			for (int l = 0; l < 32; l++)
				y[i].qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 0xf) |
				                                (L[64 * c + 32 + l] & 0xf) << 4);
	}
}

static void q6_K_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q6_K *y = dst;
	for (int64_t i = 0; i < n / SL_QK_K; i++, x += SL_QK_K) {
		int8_t L[SL_QK_K];
		float scales[16];
		for (int j = 0; j < 16; j++)
			scales[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
		const float max_scale = largest_magnitude(scales, 16);
		memset(&y[i], 0, sizeof y[i]);
		if (fabsf(max_scale) < GROUP_EPS)
			continue;
		const float iscale = -128.f / max_scale;
		y[i].d = sl_f32_to_f16(1 / iscale);
		for (int j = 0; j < 16; j++) {
			int l = round_even(iscale * scales[j]);
			y[i].scales[j] = (int8_t)(l < 127 ? l : 127);
		}
		for (int j = 0; j < 16; j++) {
			const float d = sl_f16_to_f32(y[i].d) * y[i].scales[j];
			if (!d)
				continue;
			for (int l = 0; l < 16; l++)
				L[16 * j + l] =
				        (int8_t)(clamp_int(round_even(x[16 * j + l] / d), -32, 31) +
				                 32);
		}
		for (int e = 0; e < SL_QK_K; e++) {
			int h = e / 128, j = e % 128 / 32, l = e % 32;
			y[i].ql[64 * h + 32 * (j % 2) + l] |=
			        (uint8_t)((L[e] & 0xf) << (4 * (j / 2)));
			y[i].qh[32 * h + l] |= (uint8_t)((L[e] >> 4) << (2 * j));
		}
	}
}

static void q8_K_from_float(const float *x, void *dst, int64_t n)
{
	sl_block_q8_K *y = dst;
	for (int64_t i = 0; i < n / SL_QK_K; i++, x += SL_QK_K) {
		float amax;
		const float max = signed_absmax(x, SL_QK_K, &amax);
		memset(&y[i], 0, sizeof y[i]);
		if (!amax)
			continue;
		/* -127 rather than -128 keeps every code in [-127, 127]. */
		const float iscale = -127.f / max;
		for (int e = 0; e < SL_QK_K; e++) {
			int v = round_even(iscale * x[e]);
			y[i].qs[e] = (int8_t)(v < 127 ? v : 127);
			y[i].bsums[e / 16] = (int16_t)(y[i].bsums[e / 16] + y[i].qs[e]);
		}
		y[i].d = 1 / iscale;
	}
}

/* ---- F32 dot products and the table ---------------------------------------- */

/* Eight partial sums let the compiler vectorize. */
static double dot_chunk(const float *restrict a, const float *restrict b, int64_t n)
{
	float acc[8] = {0};
	for (int64_t j = 0; j < n; j += 8)
		for (int k = 0; k < 8; k++)
			acc[k] += a[j + k] * b[j + k];
	return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* Weights times F32 activations, converting up to one super-block at a time
 * on the stack. */
GENERIC float dot_f32_chunks(void (*to_float)(const void *, float *, int64_t), int block_size,
                             size_t block_bytes, const void *w, const float *x, int64_t n)
{
	float buf[SL_QK_K];
	double sum = 0;
	const uint8_t *p = w;
	for (int64_t i = 0; i < n; i += SL_QK_K) {
		const int64_t m = n - i < SL_QK_K ? n - i : SL_QK_K;
		to_float(p, buf, m);
		p += m / block_size * block_bytes;
		sum += dot_chunk(buf, x + i, m);
	}
	return (float)sum;
}

/* to_float, dot_f32 and the portable vec_dot of a format, from its unpack. */
#define LEGACY_FORMAT(t, offset)                                                           \
	static void t##_to_float(const void *src, float *dst, int64_t n)                   \
	{                                                                                  \
		to_float32(t##_unpack, sizeof(sl_block_##t), src, dst, n);                 \
	}                                                                                  \
	static float t##_dot_f32(const void *w, const float *x, int64_t n)                 \
	{                                                                                  \
		return dot_f32_chunks(t##_to_float, SL_QK, sizeof(sl_block_##t), w, x, n); \
	}                                                                                  \
	static void t##_vec_dot(int64_t n, float *s, const void *w, const void *xq)        \
	{                                                                                  \
		vec_dot32(t##_unpack, sizeof(sl_block_##t), offset, n, s, w, xq);          \
	}

#define K_FORMAT(t)                                                                          \
	static void t##_to_float(const void *src, float *dst, int64_t n)                     \
	{                                                                                    \
		to_floatK(t##_unpack, sizeof(sl_block_##t), src, dst, n);                    \
	}                                                                                    \
	static float t##_dot_f32(const void *w, const float *x, int64_t n)                   \
	{                                                                                    \
		return dot_f32_chunks(t##_to_float, SL_QK_K, sizeof(sl_block_##t), w, x, n); \
	}                                                                                    \
	static void t##_vec_dot(int64_t n, float *s, const void *w, const void *xq)          \
	{                                                                                    \
		vec_dotK(t##_unpack, sizeof(sl_block_##t), n, s, w, xq);                     \
	}

LEGACY_FORMAT(q4_0, false)
LEGACY_FORMAT(q4_1, true)
LEGACY_FORMAT(q5_0, false)
LEGACY_FORMAT(q5_1, true)
LEGACY_FORMAT(q8_0, false)
K_FORMAT(q2_K)
K_FORMAT(q3_K)
K_FORMAT(q4_K)
K_FORMAT(q5_K)
K_FORMAT(q6_K)

static void q8_1_to_float(const void *src, float *dst, int64_t n)
{
	to_float32(q8_1_unpack, sizeof(sl_block_q8_1), src, dst, n);
}

/* ---- grids: each block's levels once its scales are fixed ----------------- */

static void uniform(sl_grid *g, float d, float m, int kmin, int kmax)
{
	*g = (sl_grid){d, m, (int16_t)kmin, (int16_t)kmax};
}

static void q8_0_grids(const void *p, sl_grid *out, int n_sub)
{
	const sl_block_q8_0 *b = p;
	for (int k = 0; k < n_sub; k++)
		uniform(&out[k], sl_f16_to_f32(b[k].d), 0, -127, 127);
}

static void q4_0_grids(const void *p, sl_grid *out, int n_sub)
{
	const sl_block_q4_0 *b = p;
	for (int k = 0; k < n_sub; k++)
		uniform(&out[k], sl_f16_to_f32(b[k].d), 0, -8, 7);
}

static void q5_0_grids(const void *p, sl_grid *out, int n_sub)
{
	const sl_block_q5_0 *b = p;
	for (int k = 0; k < n_sub; k++)
		uniform(&out[k], sl_f16_to_f32(b[k].d), 0, -16, 15);
}

static void q4_1_grids(const void *p, sl_grid *out, int n_sub)
{
	const sl_block_q4_1 *b = p;
	for (int k = 0; k < n_sub; k++)
		uniform(&out[k], sl_f16_to_f32(b[k].d), sl_f16_to_f32(b[k].m), 0, 15);
}

static void q5_1_grids(const void *p, sl_grid *out, int n_sub)
{
	const sl_block_q5_1 *b = p;
	for (int k = 0; k < n_sub; k++)
		uniform(&out[k], sl_f16_to_f32(b[k].d), sl_f16_to_f32(b[k].m), 0, 31);
}

/* A K block's sub-blocks (a span is one super-block). */
static void q6_K_grids(const void *p, sl_grid *out, int n_sub)
{
	const sl_block_q6_K *b = p;
	float d = sl_f16_to_f32(b->d);
	for (int j = 0; j < n_sub; j++)
		uniform(&out[j], d * b->scales[j], 0, -32, 31);
}

static void q3_K_grids(const void *p, sl_grid *out, int n_sub)
{
	const sl_block_q3_K *b = p;
	uint64_t sc[2];
	sl_q3_K_scales(b->scales, sc);
	float d = sl_f16_to_f32(b->d);
	for (int j = 0; j < n_sub; j++)
		uniform(&out[j], d * ((int)((sc[j / 8] >> (8 * (j % 8))) & 0xff) - 32), 0, -4, 3);
}

static void q2_K_grids(const void *p, sl_grid *out, int n_sub)
{
	const sl_block_q2_K *b = p;
	float d = sl_f16_to_f32(b->d), dmin = sl_f16_to_f32(b->dmin);
	for (int j = 0; j < n_sub; j++)
		uniform(&out[j], d * (b->scales[j] & 0xf), -dmin * (b->scales[j] >> 4), 0, 3);
}

/* Q5_K starts like Q4_K: d, dmin, then the twelve scale bytes. */
static void qK_grids(const void *p, sl_grid *out, int n_sub, int kmax)
{
	const sl_block_q4_K *b = p;
	uint64_t sc, mn;
	sl_q4_K_scales(b->scales, &sc, &mn);
	float d = sl_f16_to_f32(b->d), dmin = sl_f16_to_f32(b->dmin);
	for (int j = 0; j < n_sub; j++)
		uniform(&out[j], d * (float)((sc >> (8 * j)) & 0xff), -dmin * (float)((mn >> (8 * j)) & 0xff), 0, kmax);
}

static void q4_K_grids(const void *p, sl_grid *out, int n_sub)
{
	qK_grids(p, out, n_sub, 15);
}

static void q5_K_grids(const void *p, sl_grid *out, int n_sub)
{
	qK_grids(p, out, n_sub, 31);
}

/* sub: weights sharing one scale; min: whether they share a minimum too. */
#define WEIGHTS(t, tname, bs, act, subs, min)                                                   \
	{                                                                                       \
		.name = tname, .block_size = bs, .block_bytes = sizeof(sl_block_##t),           \
		.to_float = t##_to_float, .from_float = t##_from_float, .dot_f32 = t##_dot_f32, \
		.vec_dot_type = act, .vec_dot = t##_vec_dot, .grid = SL_GRID_UNIFORM,           \
		.scope = SL_SCOPE_BLOCK, .has_min = min, .sub = subs, .grids = t##_grids        \
	}

static const struct {
	int type;
	sl_type_info info;
} formats[] = {
	{SL_DT_Q4_0, WEIGHTS(q4_0, "q4_0", SL_QK, SL_DT_Q8_0, SL_QK, false)},
	{SL_DT_Q4_1, WEIGHTS(q4_1, "q4_1", SL_QK, SL_DT_Q8_1, SL_QK, true)},
	{SL_DT_Q5_0, WEIGHTS(q5_0, "q5_0", SL_QK, SL_DT_Q8_0, SL_QK, false)},
	{SL_DT_Q5_1, WEIGHTS(q5_1, "q5_1", SL_QK, SL_DT_Q8_1, SL_QK, true)},
	{SL_DT_Q8_0, WEIGHTS(q8_0, "q8_0", SL_QK, SL_DT_Q8_0, SL_QK, false)},
	{SL_DT_Q2_K, WEIGHTS(q2_K, "q2_k", SL_QK_K, SL_DT_Q8_K, 16, true)},
	{SL_DT_Q3_K, WEIGHTS(q3_K, "q3_k", SL_QK_K, SL_DT_Q8_K, 16, false)},
	{SL_DT_Q4_K, WEIGHTS(q4_K, "q4_k", SL_QK_K, SL_DT_Q8_K, 32, true)},
	{SL_DT_Q5_K, WEIGHTS(q5_K, "q5_k", SL_QK_K, SL_DT_Q8_K, 32, true)},
	{SL_DT_Q6_K, WEIGHTS(q6_K, "q6_k", SL_QK_K, SL_DT_Q8_K, 16, false)},
	/* Activation formats: only the conversions. */
	{SL_DT_Q8_1,
	 {.name = "q8_1",
	  .block_size = SL_QK,
	  .block_bytes = sizeof(sl_block_q8_1),
	  .to_float = q8_1_to_float,
	  .from_float = q8_1_from_float,
	  .from_float_act = q8_1_act_from_float}},
	{SL_DT_Q8_K,
	 {.name = "q8_k",
	  .block_size = SL_QK_K,
	  .block_bytes = sizeof(sl_block_q8_K),
	  .to_float = q8_K_to_float,
	  .from_float = q8_K_from_float}},
};

#define N_FORMATS (sizeof formats / sizeof formats[0])

sl_act_fn sl_quants_act_portable(int type)
{
	return type == SL_DT_Q8_0   ? q8_0_act_from_float
	       : type == SL_DT_Q8_1 ? q8_1_act_from_float
	       : type == SL_DT_Q8_K ? q8_K_from_float
	                            : NULL;
}

sl_vec_dot_fn sl_quants_vec_dot_portable(int type)
{
	for (size_t i = 0; i < N_FORMATS; i++)
		if (formats[i].type == type)
			return formats[i].info.vec_dot;
	return NULL;
}

/* slimlab's group-wise integers of 32 lay out their blocks as these do:
 * symmetric 8-bit as Q8_0, 4-bit as Q4_0, asymmetric 4-bit as Q4_1. */
static const struct {
	int type, bits, asym;
} same_bytes[] = {{SL_DT_Q8_0, 8, 0}, {SL_DT_Q4_0, 4, 0}, {SL_DT_Q4_1, 4, 1}};

void sl_quants_register(sl_type_info *table)
{
	quant_avx2 = sl_cpu_avx2();
	for (size_t i = 0; i < N_FORMATS; i++) {
		sl_type_info ti = formats[i].info;
		sl_vec_dot_fn fast = sl_quants_vec_dot_avx2(formats[i].type);
		if (fast)
			ti.vec_dot = fast;
		ti.vec_dot_tile = sl_quants_vec_dot_tile_avx2(formats[i].type);
		ti.vec_dot_rows = sl_quants_vec_dot_rows_avx2(formats[i].type);
		ti.vec_dot_gemm = sl_quants_vec_dot_gemm_avx2(formats[i].type);
		sl_vec_dot_rows_fn tiles = sl_quants_vec_dot_gemm_amx(formats[i].type);
		if (!tiles)
			tiles = sl_quants_vec_dot_gemm_amx_legacy(formats[i].type);
		if (tiles)
			ti.vec_dot_gemm = tiles;
		table[formats[i].type] = ti;
	}
	table[SL_DT_Q8_0].from_float_act = q8_0_act_from_float;
	sl_act_fn fast_act = sl_quants_act_avx2(SL_DT_Q8_0);
	if (fast_act)
		table[SL_DT_Q8_0].from_float_act = fast_act;
	if ((fast_act = sl_quants_act_avx2(SL_DT_Q8_1)))
		table[SL_DT_Q8_1].from_float_act = fast_act;
	if ((fast_act = sl_quants_act_avx2(SL_DT_Q8_K)))
		table[SL_DT_Q8_K].from_float_act = fast_act;
	for (size_t i = 0; i < sizeof same_bytes / sizeof *same_bytes; i++) {
		int own = sl_dtype_int_group(same_bytes[i].bits, 32, same_bytes[i].asym);
		table[own].same_bytes_as = same_bytes[i].type;
		table[same_bytes[i].type].same_bytes_as = own;
		table[own].from_float_act = table[same_bytes[i].type].from_float_act;
	}
	/* Where the activations share their bytes too (slimlab's 8-bit groups
	 * of 32 and Q8_0's), the same kernels: one dot product, and its tiles,
	 * per layout. */
	for (size_t i = 0; i < sizeof same_bytes / sizeof *same_bytes; i++) {
		int own = sl_dtype_int_group(same_bytes[i].bits, 32, same_bytes[i].asym);
		const sl_type_info *q = &table[same_bytes[i].type];
		int act = table[own].vec_dot_type;
		if (act != q->vec_dot_type && table[act].same_bytes_as != q->vec_dot_type)
			continue;
		table[own].vec_dot_type = q->vec_dot_type;
		table[own].vec_dot = q->vec_dot;
		table[own].vec_dot_tile = q->vec_dot_tile;
		table[own].vec_dot_rows = q->vec_dot_rows;
		table[own].vec_dot_gemm = q->vec_dot_gemm;
	}
}
