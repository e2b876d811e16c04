/* AVX2 integer dot products for slimlab's int8 and int4 formats against
 * int8-g32 activations. Compiled for the generic target with per-function
 * target attributes, and called only when the CPU reports AVX2, FMA and
 * F16C, so one binary runs everywhere. */
#include <immintrin.h>

#include "formats.h"

#define SL_AVX2 __attribute__((target("avx2,fma,f16c")))

SL_AVX2 static inline float half_to_float(const void *p)
{
	uint16_t h;
	__builtin_memcpy(&h, p, 2);
	return _cvtsh_ss(h);
}

SL_AVX2 static inline float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* Eight int32 partial sums of w*x for 32 signed bytes each: maddubs wants
 * one unsigned operand, so take |w| and move w's sign onto x. */
SL_AVX2 static inline __m256 dot_s8(__m256i w, __m256i x)
{
	__m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
	return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* The same for unsigned w below 128 (4-bit codes). */
SL_AVX2 static inline __m256 dot_u8(__m256i w, __m256i x)
{
	__m256i p = _mm256_maddubs_epi16(w, x);
	return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

SL_AVX2 static inline __m256 sum_s8(__m256i x)
{
	return dot_u8(_mm256_set1_epi8(1), x);
}

SL_AVX2 float sl_dot_i8ch_avx2(const int8_t *w, const sl_act_block *x, int64_t n)
{
	__m256 acc = _mm256_setzero_ps();
	for (int64_t r = 0; r < n / SL_ACT_RUN; r++, w += SL_ACT_RUN, x++) {
		__m256i wv = _mm256_loadu_si256((const __m256i *)w);
		__m256i xv = _mm256_loadu_si256((const __m256i *)x->q);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(&x->d)), dot_s8(wv, xv), acc);
	}
	return hsum(acc);
}

/* Asymmetric codes c in 0..255 become c - 128 so they fit a signed byte;
 * d*c + m = d*(c - 128) + (128*d + m), the second term times sum(x). */
SL_AVX2 float sl_dot_int8g_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int group, bool asym)
{
	size_t hdr = asym ? 4 : 2, bb = hdr + (size_t)group;
	__m256 acc = _mm256_setzero_ps();
	const __m256i flip = _mm256_set1_epi8((char)0x80);
	for (int64_t g = 0; g < n / group; g++, w += bb) {
		float d = half_to_float(w);
		float c = asym ? 128.0f * d + half_to_float(w + 2) : 0.0f;
		for (int r = 0; r < group / SL_ACT_RUN; r++, x++) {
			__m256i wv = _mm256_loadu_si256((const __m256i *)(w + hdr + SL_ACT_RUN * r));
			__m256i xv = _mm256_loadu_si256((const __m256i *)x->q);
			float dx = half_to_float(&x->d);
			if (asym)
				wv = _mm256_xor_si256(wv, flip);
			acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), dot_s8(wv, xv), acc);
			if (asym)
				acc = _mm256_fmadd_ps(_mm256_set1_ps(c * dx), sum_s8(xv), acc);
		}
	}
	return hsum(acc);
}

/* 4-bit codes c are unsigned: symmetric levels are c - 8, so
 * d*(c - 8) = d*c + (-8*d), and asymmetric ones d*c + m. */
SL_AVX2 float sl_dot_int4g_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int group, bool asym)
{
	size_t hdr = asym ? 4 : 2, bb = hdr + (size_t)group / 2;
	const __m256i low = _mm256_set1_epi8(0x0f);
	__m256 acc = _mm256_setzero_ps();
	for (int64_t g = 0; g < n / group; g++, w += bb) {
		const uint8_t *q = w + hdr;
		float d = half_to_float(w);
		float c = asym ? half_to_float(w + 2) : -8.0f * d;
		for (int r = 0; r < group / SL_ACT_RUN; r++, x++) {
			__m256i codes;
			if (group == SL_ACT_RUN) {
				__m128i b = _mm_loadu_si128((const __m128i *)q);
				__m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
				codes = _mm256_and_si256(both, low);
			} else {
				/* Values j < group/2 are low nibbles of byte j, the rest high ones. */
				int first = SL_ACT_RUN * r, half = group / 2;
				__m256i b = _mm256_loadu_si256((const __m256i *)(q + first % half));
				codes = _mm256_and_si256(first < half ? b : _mm256_srli_epi16(b, 4), low);
			}
			__m256i xv = _mm256_loadu_si256((const __m256i *)x->q);
			float dx = half_to_float(&x->d);
			acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), dot_u8(codes, xv), acc);
			acc = _mm256_fmadd_ps(_mm256_set1_ps(c * dx), sum_s8(xv), acc);
		}
	}
	return hsum(acc);
}
