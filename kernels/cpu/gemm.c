/* Float matrix products whose every output is one dot product computed the
 * same way however many tokens share the call: y[t][r] = x[t] . w[r] over
 * n, accumulated in eight lanes (lane l takes the products at k = l mod 8,
 * in order of k), the lanes summed in one fixed tree, then the last n mod
 * 8 products added in order. A token's result therefore does not depend on
 * the batch it arrives in, nor on the tile the kernel happens to cover it
 * with: decoding, evaluation and the verification of speculative drafts
 * compute one function. The AVX2 kernel keeps one 8-lane accumulator per
 * output and tiles up to 3 tokens by 4 rows (one token by 8) so that each
 * loaded vector serves several products; the portable kernel follows the same lanes and tree
 * (without fused multiply-adds, so the two paths differ by rounding). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "gemm.h"

#include <stddef.h>
#include <stdint.h>

#include "../dtype.h"
#include "cpu.h"

/* The fixed tree over the eight lanes, shared by both paths. */
static inline float lanes_sum(const float l[8])
{
	return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* Weight element k of a row in one of the float types. */
static inline float weight_at(const void *w, int type, int k)
{
	if (type == SL_DT_F16)
		return sl_f16_to_f32(((const uint16_t *)w)[k]);
	if (type == SL_DT_BF16)
		return sl_bf16_to_f32(((const uint16_t *)w)[k]);
	return ((const float *)w)[k];
}

static float dot_portable(const float *x, const void *w, int type, int n)
{
	float l[8] = {0};
	int k = 0;
	for (; k + 8 <= n; k += 8)
		for (int j = 0; j < 8; j++)
			l[j] += x[k + j] * weight_at(w, type, k + j);
	float s = lanes_sum(l);
	for (; k < n; k++)
		s += x[k] * weight_at(w, type, k);
	return s;
}

static void gemm_portable(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w, int type,
                          size_t ldw, int rows, int n)
{
	size_t es = type == SL_DT_F32 ? 4 : 2;
	for (int r = 0; r < rows; r++)
		for (int t = 0; t < T; t++)
			y[(size_t)t * ldy + r] =
				dot_portable(x + (size_t)t * ldx, (const char *)w + (size_t)r * ldw * es, type, n);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
/* The tiles' small loops unrolled, so that the accumulators stay in registers. */
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 8")
#endif

AVX2 static inline float hsum8(__m256 v)
{
	float l[8];
	_mm256_storeu_ps(l, v);
	return lanes_sum(l);
}

/* Eight weights as floats: F32 as they are, F16 and BF16 widened (exactly)
 * in the register, so 16-bit weights are read at their own size. */
AVX2 static inline __m256 load_f32(const void *w, size_t i)
{
	return _mm256_loadu_ps((const float *)w + i);
}

AVX2 static inline __m256 load_f16(const void *w, size_t i)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
}

AVX2 static inline __m256 load_bf16(const void *w, size_t i)
{
	__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* One tile of TM tokens by TN rows, weights of type WT: each output one
 * accumulator; the tail products in the scalar types' own widening. */
#define TILE(WT, TM, TN)                                                                                \
	AVX2 static void tile_##WT##_##TM##x##TN(float *y, size_t ldy, const float *x, size_t ldx,          \
	                                         const void *w, size_t ldw, int n)                          \
	{                                                                                               \
		__m256 acc[TM][TN];                                                                     \
		UNROLL for (int i = 0; i < TM; i++)                                                     \
			UNROLL for (int j = 0; j < TN; j++)                                             \
				acc[i][j] = _mm256_setzero_ps();                                        \
		int k = 0;                                                                              \
		for (; k + 8 <= n; k += 8) {                                                            \
			__m256 xv[TM];                                                                  \
			UNROLL for (int i = 0; i < TM; i++)                                             \
				xv[i] = _mm256_loadu_ps(x + (size_t)i * ldx + k);                       \
			UNROLL for (int j = 0; j < TN; j++) {                                           \
				__m256 wv = load_##WT(w, (size_t)j * ldw + (size_t)k);                  \
				UNROLL for (int i = 0; i < TM; i++)                                     \
					acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);              \
			}                                                                               \
		}                                                                                       \
		for (int i = 0; i < TM; i++)                                                            \
			for (int j = 0; j < TN; j++) {                                                  \
				float s = hsum8(acc[i][j]);                                             \
				for (int kk = k; kk < n; kk++)                                          \
					s += x[(size_t)i * ldx + kk] * weight_at(w, SL_DT_##WT, (int)((size_t)j * ldw + (size_t)kk)); \
				y[(size_t)i * ldy + j] = s;                                             \
			}                                                                               \
	}

#define SL_DT_f32 SL_DT_F32
#define SL_DT_f16 SL_DT_F16
#define SL_DT_bf16 SL_DT_BF16

/* Tiles keep at least eight accumulators busy where the batch allows, so
 * that fused multiply-adds are not waiting on each other: one token meets
 * eight rows at a time, two or three tokens four rows, and a batch of
 * 3m + 1 tokens ends in two tiles of two rather than one of one. Which tile
 * covers an output never changes its value. */
#define GEMM(WT)                                                                                        \
	TILE(WT, 3, 4)                                                                                  \
	TILE(WT, 2, 4)                                                                                  \
	TILE(WT, 1, 8)                                                                                  \
	TILE(WT, 1, 4)                                                                                  \
	TILE(WT, 1, 1)                                                                                  \
	AVX2 static void gemm_##WT(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w,   \
	                           size_t ldw, int rows, int n)                                         \
	{                                                                                               \
		size_t es = SL_DT_##WT == SL_DT_F32 ? 4 : 2;                                            \
		int r = 0;                                                                              \
		if (T == 1)                                                                             \
			for (; r + 8 <= rows; r += 8)                                                   \
				tile_##WT##_1x8(y + r, ldy, x, ldx, (const char *)w + (size_t)r * ldw * es, ldw, n); \
		for (; r + 4 <= rows; r += 4) {                                                         \
			const void *wr = (const char *)w + (size_t)r * ldw * es;                        \
			int t = 0;                                                                      \
			for (; T - t >= 3 && T - t != 4; t += 3)                                        \
				tile_##WT##_3x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n); \
			for (; T - t >= 2; t += 2)                                                      \
				tile_##WT##_2x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n); \
			for (; t < T; t++)                                                              \
				tile_##WT##_1x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n); \
		}                                                                                       \
		for (; r < rows; r++)                                                                   \
			for (int t = 0; t < T; t++)                                                     \
				tile_##WT##_1x1(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx,  \
				                (const char *)w + (size_t)r * ldw * es, ldw, n);        \
	}

GEMM(f32)
GEMM(f16)
GEMM(bf16)
#endif

void sl_gemm(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w, int wtype, size_t ldw,
             int rows, int n)
{
#if defined(__x86_64__) || defined(__i386__)
	static int avx2 = -1;
	if (avx2 < 0)
		avx2 = sl_cpu_avx2();
	if (avx2) {
		if (wtype == SL_DT_F16)
			gemm_f16(y, ldy, x, ldx, T, w, ldw, rows, n);
		else if (wtype == SL_DT_BF16)
			gemm_bf16(y, ldy, x, ldx, T, w, ldw, rows, n);
		else
			gemm_f32(y, ldy, x, ldx, T, w, ldw, rows, n);
		return;
	}
#endif
	gemm_portable(y, ldy, x, ldx, T, w, wtype, ldw, rows, n);
}
