/* AVX2 dot products for slimlab's formats: the integers, NVFP4 and MXFP4
 * against int8-g32 activations, FP8, F16 and BF16 against F32; and the
 * decoding of 4-bit codes through a table. Compiled for the generic
 * target with per-function target attributes, and called only when the CPU
 * reports AVX2, FMA and F16C, so one binary runs everywhere. No fused
 * multiply-adds but the ones written out: the symmetric integers' float
 * chain must round as the portable one (fmt-int.c) and the ggml legacy
 * formats' (quants.c) do. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <immintrin.h>
#include <math.h>

#include "formats.h"
#include "scalar.h"

#define SL_AVX2 __attribute__((target("avx2,fma,f16c")))
/* Inlined with constant group and symmetry, so each layout gets its own loop. */
#define SL_AVX2_INLINE SL_AVX2 static inline __attribute__((always_inline))

SL_AVX2_INLINE float half_to_float(const void *p)
{
	uint16_t h;
	__builtin_memcpy(&h, p, 2);
	return _cvtsh_ss(h);
}

SL_AVX2_INLINE float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* Eight int32 partial sums (as floats) of w*x over 32 signed bytes:
 * maddubs wants one unsigned operand, so take |w| and move w's sign onto x. */
SL_AVX2_INLINE __m256 dot_s8(__m256i w, __m256i x)
{
	__m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
	return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* The exact integer sum of w*x over 32 signed bytes, as dot_s8 forms it. */
SL_AVX2_INLINE int32_t isum_s8(__m256i w, __m256i x)
{
	const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)),
	                                    _mm256_set1_epi16(1));
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
	s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
	return _mm_cvtsi128_si32(s);
}

/* The same for unsigned w below 128. */
SL_AVX2_INLINE __m256 dot_u8(__m256i w, __m256i x)
{
	__m256i p = _mm256_maddubs_epi16(w, x);
	return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

SL_AVX2_INLINE __m256 sum_s8(__m256i x)
{
	return dot_u8(_mm256_set1_epi8(1), x);
}

SL_AVX2_INLINE __m256i load_x(const sl_act_block *x)
{
	return _mm256_loadu_si256((const __m256i *)x->q);
}

SL_AVX2 float sl_dot_i8ch_avx2(const int8_t *w, const sl_act_block *x, int64_t n)
{
	__m256 acc = _mm256_setzero_ps();
	for (int64_t r = 0; r < n / SL_ACT_RUN; r++, w += SL_ACT_RUN, x++) {
		__m256i wv = _mm256_loadu_si256((const __m256i *)w);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(&x->d)), dot_s8(wv, load_x(x)), acc);
	}
	return hsum(acc);
}

/* Asymmetric codes c in 0..255 become c - 128 so they fit a signed byte;
 * d*c + m = d*(c - 128) + (128*d + m), the second term times sum(x). */
SL_AVX2_INLINE float int8g(const uint8_t *w, const sl_act_block *x, int64_t n, const int group, const bool asym)
{
	const size_t hdr = asym ? 4 : 2, bb = hdr + (size_t)group;
	__m256 acc = _mm256_setzero_ps();
	float sum = 0.0f;
	for (int64_t g = 0; g < n / group; g++, w += bb) {
		float d = half_to_float(w);
		float c = asym ? 128.0f * d + half_to_float(w + 2) : 0.0f;
		for (int r = 0; r < group / SL_ACT_RUN; r++, x++) {
			__m256i wv = _mm256_loadu_si256((const __m256i *)(w + hdr + SL_ACT_RUN * r));
			__m256i xv = load_x(x);
			float dx = half_to_float(&x->d);
			if (asym) {
				wv = _mm256_xor_si256(wv, _mm256_set1_epi8((char)0x80));
				acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), dot_s8(wv, xv), acc);
				acc = _mm256_fmadd_ps(_mm256_set1_ps(c * dx), sum_s8(xv), acc);
			} else {
				sum = sum + (float)isum_s8(wv, xv) * (d * dx);
			}
		}
	}
	return asym ? hsum(acc) : sum;
}

/* 4-bit codes c: symmetric levels are c - 8 (signed bytes), asymmetric
 * values d*c + m, the minimum times sum(x). */
SL_AVX2_INLINE float int4g(const uint8_t *w, const sl_act_block *x, int64_t n, const int group, const bool asym)
{
	const size_t hdr = asym ? 4 : 2, bb = hdr + (size_t)group / 2;
	const __m256i low = _mm256_set1_epi8(0x0f);
	__m256 acc = _mm256_setzero_ps();
	float sum = 0.0f;
	for (int64_t g = 0; g < n / group; g++, w += bb) {
		const uint8_t *q = w + hdr;
		float d = half_to_float(w);
		float m = asym ? half_to_float(w + 2) : 0.0f;
		for (int r = 0; r < group / SL_ACT_RUN; r++, x++) {
			__m256i codes;
			if (group == SL_ACT_RUN) {
				__m128i b = _mm_loadu_si128((const __m128i *)q);
				codes = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), low);
			} else {
				/* Values j < group/2 are low nibbles of byte j, the rest high ones. */
				const int first = SL_ACT_RUN * r, half = group / 2;
				__m256i b = _mm256_loadu_si256((const __m256i *)(q + first % half));
				codes = _mm256_and_si256(first < half ? b : _mm256_srli_epi16(b, 4), low);
			}
			__m256i xv = load_x(x);
			float dx = half_to_float(&x->d);
			if (asym) {
				acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), dot_u8(codes, xv), acc);
				acc = _mm256_fmadd_ps(_mm256_set1_ps(m * dx), sum_s8(xv), acc);
			} else {
				__m256i lv = _mm256_sub_epi8(codes, _mm256_set1_epi8(8));
				sum = sum + (float)isum_s8(lv, xv) * (d * dx);
			}
		}
	}
	return asym ? hsum(acc) : sum;
}

/* The 2-bit field of run r (values 32r .. 32r+31) of a group of G from its
 * 2-bit plane p, where byte j holds values j + k*G/4 at bits 2k: shifting
 * wider lanes brings bits of the next byte into the top of each byte,
 * which the mask drops. */
SL_AVX2_INLINE __m256i plane2(const uint8_t *p, const int G, const int r)
{
	const __m256i m3 = _mm256_set1_epi8(3);
	if (G == 128)
		return _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)p), 2 * r), m3);
	if (G == 64) {
		__m128i b = _mm_loadu_si128((const __m128i *)p);
		return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4 * r + 2), _mm_srli_epi16(b, 4 * r)), m3);
	}
	int64_t b;
	__builtin_memcpy(&b, p, 8);
	return _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x(b), _mm256_set_epi64x(6, 4, 2, 0)), m3);
}

/* The third bits of run r as 0 or 4, from the 1-bit plane p (S = G/8
 * bytes; byte j holds values j + k*S at bit k): each value's byte is
 * gathered by a shuffle and tested against its bit. */
SL_AVX2_INLINE __m256i plane1(const uint8_t *p, const int G, const int r)
{
	const int S = G / 8, shift = S == 4 ? 2 : S == 8 ? 3 : 4;
	__m128i b;
	if (S == 16) {
		b = _mm_loadu_si128((const __m128i *)p);
	} else if (S == 8) {
		b = _mm_loadl_epi64((const __m128i *)p);
	} else {
		int32_t v;
		__builtin_memcpy(&v, p, 4);
		b = _mm_cvtsi32_si128(v);
	}
	const __m256i iota = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
	                                      20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
	const __m256i pow2 = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32,
	                                      64, -128, 0, 0, 0, 0, 0, 0, 0, 0);
	/* value i of the run: byte i % S, bit (32r + i) / S */
	__m256i idx = _mm256_and_si256(iota, _mm256_set1_epi8((char)(S - 1)));
	__m256i bit = _mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi16(iota, shift), _mm256_set1_epi8(7)),
	                              _mm256_set1_epi8((char)(32 * r / S)));
	__m256i mask = _mm256_shuffle_epi8(pow2, bit);
	__m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_broadcastsi128_si256(b), idx), mask);
	return _mm256_and_si256(_mm256_cmpeq_epi8(v, mask), _mm256_set1_epi8(4));
}

/* 3- and 2-bit codes, unpacked straight from their planes, then as the
 * 4-bit ones. */
SL_AVX2_INLINE float intk(const uint8_t *w, const sl_act_block *x, int64_t n, const int bits, const int group,
                          const bool asym)
{
	const size_t hdr = asym ? 4 : 2, bb = hdr + (size_t)(group * bits / 8);
	const int half = 1 << (bits - 1);
	__m256 acc = _mm256_setzero_ps();
	float sum = 0.0f;
	for (int64_t g = 0; g < n / group; g++, w += bb) {
		const uint8_t *q = w + hdr;
		float d = half_to_float(w);
		float m = asym ? half_to_float(w + 2) : 0.0f;
		for (int r = 0; r < group / SL_ACT_RUN; r++, x++) {
			__m256i cv = plane2(q, group, r);
			if (bits == 3)
				cv = _mm256_or_si256(cv, plane1(q + group / 4, group, r));
			__m256i xv = load_x(x);
			float dx = half_to_float(&x->d);
			if (asym) {
				acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), dot_u8(cv, xv), acc);
				acc = _mm256_fmadd_ps(_mm256_set1_ps(m * dx), sum_s8(xv), acc);
			} else {
				__m256i lv = _mm256_sub_epi8(cv, _mm256_set1_epi8((char)half));
				sum = sum + (float)isum_s8(lv, xv) * (d * dx);
			}
		}
	}
	return asym ? hsum(acc) : sum;
}

#define GROUPS(call, ...)                                                                         \
	switch (group * 2 + asym) {                                                               \
	case 64: return call(__VA_ARGS__, 32, false);                                             \
	case 65: return call(__VA_ARGS__, 32, true);                                              \
	case 128: return call(__VA_ARGS__, 64, false);                                            \
	case 129: return call(__VA_ARGS__, 64, true);                                             \
	case 256: return call(__VA_ARGS__, 128, false);                                           \
	default: return call(__VA_ARGS__, 128, true);                                             \
	}

SL_AVX2 float sl_dot_int8g_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int group, bool asym)
{
	GROUPS(int8g, w, x, n)
}

SL_AVX2 float sl_dot_int4g_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int group, bool asym)
{
	GROUPS(int4g, w, x, n)
}

SL_AVX2 float sl_dot_intk_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int bits, int group, bool asym)
{
	if (bits == 3)
		GROUPS(intk, w, x, n, 3)
	GROUPS(intk, w, x, n, 2)
}

/* Sixteen E2M1 codes (low nibbles: values 0..7, high: 8..15 of a block of
 * 16; or 32 codes of a block of 32 across both lanes) as signed bytes of
 * twice their value. */
SL_AVX2_INLINE __m256i e2m1_x2(__m256i codes)
{
	const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sl_e2m1_x2));
	return _mm256_shuffle_epi8(lut, codes);
}

/* One NVFP4 block's 16 codes in order: 8 bytes, low nibbles then high. */
SL_AVX2_INLINE __m128i nvfp4_codes(const uint8_t *q)
{
	__m128i b = _mm_loadl_epi64((const __m128i *)q);
	__m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0f));
	__m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0f));
	return _mm_unpacklo_epi64(lo, hi);
}

/* A run of 32 activations covers two blocks of 16, each with its own E4M3
 * scale: the lanes of the low half take the first, the high half the second. */
SL_AVX2 float sl_dot_nvfp4_avx2(const uint8_t *row, const sl_act_block *x, int64_t n)
{
	float global;
	__builtin_memcpy(&global, row, 4);
	const uint8_t *b = row + 4;
	const float half_global = 0.5f * global;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t r = 0; r < n / SL_ACT_RUN; r++, b += 2 * (1 + 8), x++) {
		__m256i codes = _mm256_set_m128i(nvfp4_codes(b + 10), nvfp4_codes(b + 1));
		float s0 = sl_fp8_e4m3_lut[b[0]], s1 = sl_fp8_e4m3_lut[b[9]];
		float dx = half_to_float(&x->d) * half_global;
		__m256 scale = _mm256_set_m128(_mm_set1_ps(s1 * dx), _mm_set1_ps(s0 * dx));
		acc = _mm256_fmadd_ps(scale, dot_s8(e2m1_x2(codes), load_x(x)), acc);
	}
	return hsum(acc);
}

/* Half the E8M0 scale, 2^(c - 128): built from its bits when normal. */
SL_AVX2_INLINE float e8m0_half(uint8_t c)
{
	if (c == 0xff)
		return NAN;
	if (c < 2)
		return ldexpf(1.0f, c - 128);
	uint32_t bits = (uint32_t)(c - 1) << 23;
	float f;
	__builtin_memcpy(&f, &bits, 4);
	return f;
}

SL_AVX2 float sl_dot_mxfp4_avx2(const uint8_t *w, const sl_act_block *x, int64_t n)
{
	__m256 acc = _mm256_setzero_ps();
	for (int64_t r = 0; r < n / SL_ACT_RUN; r++, w += 17, x++) {
		__m128i b = _mm_loadu_si128((const __m128i *)(w + 1));
		__m256i codes = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0f));
		float scale = e8m0_half(w[0]);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(scale * half_to_float(&x->d)), dot_s8(e2m1_x2(codes), load_x(x)),
		                      acc);
	}
	return hsum(acc);
}

/* FP8 through F16C: E5M2 is the top byte of a half; E4M3's fields moved
 * into a half's give its value times 2^-8 (normal and subnormal alike;
 * NaN codes, which the quantizer never writes, read as numbers). */
SL_AVX2_INLINE float fp8_dot(const uint8_t *w, const float *x, int64_t n, const bool e4m3)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	for (int64_t i = 0; i < n; i += 16) {
		__m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(w + i)));
		__m256i h;
		if (e4m3)
			h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x7f)), 7),
			                    _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)), 8));
		else
			h = _mm256_slli_epi16(v, 8);
		acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_loadu_ps(x + i), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), _mm256_loadu_ps(x + i + 8), acc1);
	}
	return hsum(_mm256_add_ps(acc0, acc1)) * (e4m3 ? 256.0f : 1.0f);
}

SL_AVX2 float sl_dot_e4m3_f32_avx2(const uint8_t *w, const float *x, int64_t n)
{
	return fp8_dot(w, x, n, true);
}

SL_AVX2 float sl_dot_e5m2_f32_avx2(const uint8_t *w, const float *x, int64_t n)
{
	return fp8_dot(w, x, n, false);
}

SL_AVX2 float sl_dot_f16_f32_avx2(const uint16_t *w, const float *x, int64_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	for (int64_t i = 0; i < n; i += 16) {
		__m256i h = _mm256_loadu_si256((const __m256i *)(w + i));
		acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_loadu_ps(x + i), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), _mm256_loadu_ps(x + i + 8), acc1);
	}
	return hsum(_mm256_add_ps(acc0, acc1));
}

/* Halves widened to floats: the same values as sl_f16_to_f32 (a signalling
 * NaN comes out quiet). */
SL_AVX2 void sl_f16_to_f32_avx2(const uint16_t *h, float *x, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
	for (; i < n; i++)
		x[i] = _cvtsh_ss(h[i]);
}

/* A bfloat16 is the top half of a float. */
SL_AVX2 float sl_dot_bf16_f32_avx2(const uint16_t *w, const float *x, int64_t n)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	for (int64_t i = 0; i < n; i += 16) {
		__m256i h = _mm256_loadu_si256((const __m256i *)(w + i));
		__m256 lo = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)), 16));
		__m256 hi = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)), 16));
		acc0 = _mm256_fmadd_ps(lo, _mm256_loadu_ps(x + i), acc0);
		acc1 = _mm256_fmadd_ps(hi, _mm256_loadu_ps(x + i + 8), acc1);
	}
	return hsum(_mm256_add_ps(acc0, acc1));
}

/* Eight 4-bit codes (as int32) through a table of 16 floats: each half of
 * the table answers for its own codes. */
SL_AVX2_INLINE __m256 lut16(__m256 lo, __m256 hi, __m256i codes)
{
	__m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(codes, _mm256_set1_epi32(7)));
	return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, codes), _mm256_permutevar8x32_ps(hi, codes), upper);
}

SL_AVX2 void sl_lut16_decode_avx2(const uint8_t *q, int n, const float *table, float scale, float *y)
{
	const __m256 lo = _mm256_loadu_ps(table), hi = _mm256_loadu_ps(table + 8), s = _mm256_set1_ps(scale);
	const __m256i nibble = _mm256_set1_epi32(0x0f);
	for (int i = 0; i < n / 2; i += 8) {
		__m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + i)));
		_mm256_storeu_ps(y + i, _mm256_mul_ps(lut16(lo, hi, _mm256_and_si256(b, nibble)), s));
		_mm256_storeu_ps(y + i + n / 2, _mm256_mul_ps(lut16(lo, hi, _mm256_srli_epi32(b, 4)), s));
	}
}
