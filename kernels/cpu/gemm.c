/* Float matrix products whose every output is one dot product computed the
 * same way however many tokens share the call: y[t][r] = x[t] . w[r] over
 * n, accumulated in eight lanes (lane l takes the products at k = l mod 8,
 * in order of k), the lanes summed in one fixed tree, then the last n mod
 * 8 products added in order. A token's result therefore does not depend on
 * the batch it arrives in, nor on the tile the kernel happens to cover it
 * with: decoding, evaluation and the verification of speculative drafts
 * compute one function. The AVX2 kernel keeps one 8-lane accumulator per
 * output and tiles 3 tokens by 4 rows so that each loaded vector serves
 * several products; the portable kernel follows the same lanes and tree
 * (without fused multiply-adds, so the two paths differ by rounding). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "gemm.h"

#include <stddef.h>

#include "cpu.h"

/* The fixed tree over the eight lanes, shared by both paths. */
static inline float lanes_sum(const float l[8])
{
	return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

static float dot_portable(const float *x, const float *w, int n)
{
	float l[8] = {0};
	int k = 0;
	for (; k + 8 <= n; k += 8)
		for (int j = 0; j < 8; j++)
			l[j] += x[k + j] * w[k + j];
	float s = lanes_sum(l);
	for (; k < n; k++)
		s += x[k] * w[k];
	return s;
}

static void gemm_portable(float *y, size_t ldy, const float *x, size_t ldx, int T, const float *w, size_t ldw,
                          int rows, int n)
{
	for (int r = 0; r < rows; r++)
		for (int t = 0; t < T; t++)
			y[(size_t)t * ldy + r] = dot_portable(x + (size_t)t * ldx, w + (size_t)r * ldw, n);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
/* The tiles' small loops unrolled, so that the accumulators stay in registers. */
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 4")
#endif

AVX2 static inline float hsum8(__m256 v)
{
	float l[8];
	_mm256_storeu_ps(l, v);
	return lanes_sum(l);
}

/* One tile of TM tokens by TN rows: each output one accumulator. */
#define TILE(TM, TN)                                                                                    \
	AVX2 static void tile_##TM##x##TN(float *y, size_t ldy, const float *x, size_t ldx, const float *w,  \
	                                  size_t ldw, int n)                                            \
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
				__m256 wv = _mm256_loadu_ps(w + (size_t)j * ldw + k);                   \
				UNROLL for (int i = 0; i < TM; i++)                                     \
					acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);              \
			}                                                                               \
		}                                                                                       \
		for (int i = 0; i < TM; i++)                                                            \
			for (int j = 0; j < TN; j++) {                                                  \
				float s = hsum8(acc[i][j]);                                             \
				for (int kk = k; kk < n; kk++)                                          \
					s += x[(size_t)i * ldx + kk] * w[(size_t)j * ldw + kk];         \
				y[(size_t)i * ldy + j] = s;                                             \
			}                                                                               \
	}

TILE(3, 4)
TILE(1, 4)
TILE(1, 1)

AVX2 static void gemm_avx2(float *y, size_t ldy, const float *x, size_t ldx, int T, const float *w, size_t ldw,
                           int rows, int n)
{
	int r = 0;
	for (; r + 4 <= rows; r += 4) {
		int t = 0;
		for (; t + 3 <= T; t += 3)
			tile_3x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, w + (size_t)r * ldw, ldw, n);
		for (; t < T; t++)
			tile_1x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, w + (size_t)r * ldw, ldw, n);
	}
	for (; r < rows; r++)
		for (int t = 0; t < T; t++)
			tile_1x1(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, w + (size_t)r * ldw, ldw, n);
}
#endif

void sl_gemm_f32(float *y, size_t ldy, const float *x, size_t ldx, int T, const float *w, size_t ldw, int rows,
                 int n)
{
#if defined(__x86_64__) || defined(__i386__)
	static int avx2 = -1;
	if (avx2 < 0)
		avx2 = sl_cpu_avx2();
	if (avx2) {
		gemm_avx2(y, ldy, x, ldx, T, w, ldw, rows, n);
		return;
	}
#endif
	gemm_portable(y, ldy, x, ldx, T, w, ldw, rows, n);
}
