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

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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

/* Each 16-bit weight row is widened once (exactly) for all T tokens. */
static void gemm_portable(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w, int type,
                          size_t ldw, int rows, int n)
{
	size_t es = type == SL_DT_F32 ? 4 : 2;
	float *wide = type == SL_DT_F32 ? NULL : malloc((size_t)(n > 0 ? n : 1) * sizeof *wide);
	if (type != SL_DT_F32 && !wide)
		abort(); /* one row of floats; there is no sensible way on without it */
	for (int r = 0; r < rows; r++) {
		const void *wr = (const char *)w + (size_t)r * ldw * es;
		const float *row = wr;
		if (wide) {
			for (int k = 0; k < n; k++)
				wide[k] = weight_at(wr, type, k);
			row = wide;
		}
		for (int t = 0; t < T; t++)
			y[(size_t)t * ldy + r] = dot_portable(x + (size_t)t * ldx, row, n);
	}
	free(wide);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* Whether the AVX2 kernels may run, asked once (sl_cpu_avx2 reads cpuid
 * and the environment). */
static int have_avx2(void)
{
	static int avx2 = -1;
	if (avx2 < 0)
		avx2 = sl_cpu_avx2();
	return avx2;
}
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

/* Lane k: lanes_sum of v[k]'s lanes, by the same tree (each step adds the
 * same pairs), for eight vectors at once. v is taken in the order
 * 0, 4, 1, 5, 2, 6, 3, 7 of the result's lanes. */
AVX2 static inline __m256 hsum8x8(const __m256 v[8])
{
	__m256 t[4];
	for (int p = 0; p < 4; p++) /* lanes j and j + 4 of two vectors */
		t[p] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * p], v[2 * p + 1], 0x20),
		                     _mm256_permute2f128_ps(v[2 * p], v[2 * p + 1], 0x31));
	/* (l0 + l4) + (l2 + l6) and (l1 + l5) + (l3 + l7) */
	const __m256 w0 = _mm256_add_ps(_mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(1, 0, 1, 0)),
	                                _mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 2, 3, 2)));
	const __m256 w1 = _mm256_add_ps(_mm256_shuffle_ps(t[2], t[3], _MM_SHUFFLE(1, 0, 1, 0)),
	                                _mm256_shuffle_ps(t[2], t[3], _MM_SHUFFLE(3, 2, 3, 2)));
	return _mm256_add_ps(_mm256_shuffle_ps(w0, w1, _MM_SHUFFLE(2, 0, 2, 0)),
	                     _mm256_shuffle_ps(w0, w1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* The sums of m accumulators (m <= 8) into s[0..m-1], as hsum8 gives them. */
AVX2 static inline void hsums(float *s, const __m256 *acc, int m)
{
	static const int order[8] = {0, 4, 1, 5, 2, 6, 3, 7};
	__m256 v[8];
	UNROLL for (int q = 0; q < 8; q++)
		v[q] = order[q] < m ? acc[order[q]] : _mm256_setzero_ps();
	_mm256_storeu_ps(s, hsum8x8(v));
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
#define TILE_AT(ATTR, NAME, WT, TM, TN)                                                                 \
	ATTR static void NAME(float *y, size_t ldy, const float *x, size_t ldx, const void *w, size_t ldw, int n) \
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
		float sums[TM * TN + 8];                                                                \
		UNROLL for (int g = 0; g < TM * TN; g += 8)                                             \
			hsums(sums + g, &acc[0][0] + g, TM * TN - g < 8 ? TM * TN - g : 8);             \
		for (int i = 0; i < TM; i++)                                                            \
			for (int j = 0; j < TN; j++) {                                                  \
				float s = sums[i * TN + j];                                             \
				for (int kk = k; kk < n; kk++)                                          \
					s += x[(size_t)i * ldx + kk] * weight_at(w, SL_DT_##WT, (int)((size_t)j * ldw + (size_t)kk)); \
				y[(size_t)i * ldy + j] = s;                                             \
			}                                                                               \
	}
#define TILE(WT, TM, TN) TILE_AT(AVX2, tile_##WT##_##TM##x##TN, WT, TM, TN)
/* The same tiles over AVX-512 VL's 32 registers: the same 8-lane
 * accumulators and operations (so the same bits), more of them at once. */
#define X512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl")))
#define TILE512(WT, TM, TN) TILE_AT(X512, tile512_##WT##_##TM##x##TN, WT, TM, TN)

#define SL_DT_f32 SL_DT_F32
#define SL_DT_f16 SL_DT_F16
#define SL_DT_bf16 SL_DT_BF16

/* Rows left after the tiles of four: one output at a time. */
#define REST_ROWS(WT)                                                                                   \
	for (; r < rows; r++)                                                                           \
		for (int t = 0; t < T; t++)                                                             \
			tile_##WT##_1x1(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx,          \
			                (const char *)w + (size_t)r * ldw * es, ldw, n);

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
		REST_ROWS(WT)                                                                           \
	}

GEMM(f32)
GEMM(f16)
GEMM(bf16)

/* Six tokens by four rows (24 accumulators, 6 activation vectors and a
 * weight vector in 32 registers), the last 1 to 5 tokens in one tile: a
 * 5-token verification of speculative drafts reads its weights once. */
#define GEMM512(WT)                                                                                     \
	TILE512(WT, 6, 4)                                                                               \
	TILE512(WT, 5, 4)                                                                               \
	TILE512(WT, 4, 4)                                                                               \
	TILE512(WT, 3, 4)                                                                               \
	TILE512(WT, 2, 4)                                                                               \
	TILE512(WT, 1, 4)                                                                               \
	TILE512(WT, 1, 8)                                                                               \
	X512 static void gemm512_##WT(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w, \
	                              size_t ldw, int rows, int n)                                      \
	{                                                                                               \
		size_t es = SL_DT_##WT == SL_DT_F32 ? 4 : 2;                                            \
		int r = 0;                                                                              \
		if (T == 1)                                                                             \
			for (; r + 8 <= rows; r += 8)                                                   \
				tile512_##WT##_1x8(y + r, ldy, x, ldx, (const char *)w + (size_t)r * ldw * es, ldw, n); \
		for (; r + 4 <= rows; r += 4) {                                                         \
			const void *wr = (const char *)w + (size_t)r * ldw * es;                        \
			int t = 0;                                                                      \
			for (; T - t >= 6; t += 6)                                                      \
				tile512_##WT##_6x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n); \
			float *yt = y + (size_t)t * ldy + r;                                            \
			const float *xt = x + (size_t)t * ldx;                                          \
			switch (T - t) {                                                                \
			case 5: tile512_##WT##_5x4(yt, ldy, xt, ldx, wr, ldw, n); break;                 \
			case 4: tile512_##WT##_4x4(yt, ldy, xt, ldx, wr, ldw, n); break;                 \
			case 3: tile512_##WT##_3x4(yt, ldy, xt, ldx, wr, ldw, n); break;                 \
			case 2: tile512_##WT##_2x4(yt, ldy, xt, ldx, wr, ldw, n); break;                 \
			case 1: tile512_##WT##_1x4(yt, ldy, xt, ldx, wr, ldw, n); break;                 \
			default: break;                                                                 \
			}                                                                               \
		}                                                                                       \
		REST_ROWS(WT)                                                                           \
	}

GEMM512(f32)
GEMM512(f16)
GEMM512(bf16)

/* TM queries by W vectors of one slab of value columns: the accumulators
 * stay in registers over rows j0 .. j1-1, each element one fused
 * multiply-add per row in order of j. */
#define ACC(TM, W)                                                                                      \
	AVX2 static void acc_##TM##x##W(float *out, size_t ldo, const float *p, size_t ldp, const float *v, \
	                                size_t ldv, int j0, int j1)                                     \
	{                                                                                               \
		__m256 acc[TM][W];                                                                      \
		UNROLL for (int i = 0; i < TM; i++)                                                     \
			UNROLL for (int c = 0; c < W; c++)                                              \
				acc[i][c] = _mm256_loadu_ps(out + (size_t)i * ldo + 8 * c);             \
		for (int j = j0; j < j1; j++) {                                                         \
			const float *vr = v + (size_t)(j - j0) * ldv;                                   \
			__m256 vv[W];                                                                   \
			UNROLL for (int c = 0; c < W; c++)                                              \
				vv[c] = _mm256_loadu_ps(vr + 8 * c);                                    \
			UNROLL for (int i = 0; i < TM; i++) {                                           \
				__m256 pi = _mm256_broadcast_ss(p + (size_t)i * ldp + j);              \
				UNROLL for (int c = 0; c < W; c++)                                      \
					acc[i][c] = _mm256_fmadd_ps(pi, vv[c], acc[i][c]);              \
			}                                                                               \
		}                                                                                       \
		UNROLL for (int i = 0; i < TM; i++)                                                     \
			UNROLL for (int c = 0; c < W; c++)                                              \
				_mm256_storeu_ps(out + (size_t)i * ldo + 8 * c, acc[i][c]);             \
	}

ACC(3, 4)
ACC(2, 4)
ACC(1, 4)
ACC(3, 1)
ACC(2, 1)
ACC(1, 1)

/* One slab of W vectors at column d for queries i .. i+g-1: the rows all of
 * them take together, then each query's own further rows. */
#define SLAB(W)                                                                                         \
	AVX2 static void slab_##W(float *out, size_t ldo, const float *p, size_t ldp, const int *lim, int nq,  \
	                          const float *v, size_t ldv, int j0)                                   \
	{                                                                                               \
		for (int i = 0; i < nq; i += 3) {                                                       \
			int g = nq - i < 3 ? nq - i : 3, common = lim[i];                               \
			float *o = out + (size_t)i * ldo;                                               \
			const float *pi = p + (size_t)i * ldp;                                          \
			if (g == 3)                                                                     \
				acc_3x##W(o, ldo, pi, ldp, v, ldv, j0, common);                         \
			else if (g == 2)                                                                \
				acc_2x##W(o, ldo, pi, ldp, v, ldv, j0, common);                         \
			else                                                                            \
				acc_1x##W(o, ldo, pi, ldp, v, ldv, j0, common);                         \
			for (int q = 1; q < g; q++)                                                     \
				if (lim[i + q] > common)                                                \
					acc_1x##W(o + (size_t)q * ldo, ldo, pi + (size_t)q * ldp, ldp,  \
					          v + (size_t)(common - j0) * ldv, ldv, common, lim[i + q]); \
		}                                                                                       \
	}

SLAB(4)
SLAB(1)

AVX2 static void acc_rows_avx2(float *out, size_t ldo, const float *p, size_t ldp, const int *lim, int nq,
                               const float *v, size_t ldv, int j0, int n)
{
	int d = 0;
	for (; d + 32 <= n; d += 32)
		slab_4(out + d, ldo, p, ldp, lim, nq, v + d, ldv, j0);
	for (; d + 8 <= n; d += 8)
		slab_1(out + d, ldo, p, ldp, lim, nq, v + d, ldv, j0);
	for (; d < n; d++)
		for (int i = 0; i < nq; i++) {
			float *o = out + (size_t)i * ldo + d;
			for (int j = j0; j < lim[i]; j++)
				*o = fmaf(p[(size_t)i * ldp + j], v[(size_t)(j - j0) * ldv + d], *o);
		}
}

/* e^x for x <= 0: x = k ln2 + r with |r| <= ln2/2 (ln2 in two parts so k
 * ln2 is exact), e^r from a degree-7 polynomial in r (1 + r + r^2 p(r), the
 * minimax coefficients of the classic single-precision expf), and 2^k put
 * into the exponent bits; below -87.3 (under FLT_MIN) the result is 0. */
AVX2 static inline __m256 exp_neg(__m256 x)
{
	const __m256 lo = _mm256_set1_ps(-87.33f);
	__m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
	x = _mm256_max_ps(x, lo);
	__m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504089f)),
	                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
	p = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
	return _mm256_andnot_ps(under, p);
}

AVX2 static void softmax_avx2(float *row, int n, float scale)
{
	__m256 sc = _mm256_set1_ps(scale), mx8 = _mm256_set1_ps(-INFINITY);
	int j = 0;
	for (; j + 8 <= n; j += 8) {
		__m256 v = _mm256_mul_ps(_mm256_loadu_ps(row + j), sc);
		_mm256_storeu_ps(row + j, v);
		mx8 = _mm256_max_ps(mx8, v);
	}
	float l[8];
	_mm256_storeu_ps(l, mx8);
	float mx = l[0];
	for (int i = 1; i < 8; i++)
		mx = l[i] > mx ? l[i] : mx;
	for (; j < n; j++) {
		row[j] *= scale;
		mx = row[j] > mx ? row[j] : mx;
	}
	__m256 m = _mm256_set1_ps(mx), s8 = _mm256_setzero_ps();
	for (j = 0; j + 8 <= n; j += 8) {
		__m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(row + j), m));
		_mm256_storeu_ps(row + j, e);
		s8 = _mm256_add_ps(s8, e);
	}
	int tail = j;
	if (j < n) { /* the last n mod 8 through the same polynomial */
		float buf[8] = {0};
		for (int i = 0; i < n - j; i++)
			buf[i] = row[j + i] - mx;
		_mm256_storeu_ps(buf, exp_neg(_mm256_loadu_ps(buf)));
		for (int i = 0; i < n - j; i++)
			row[j + i] = buf[i];
	}
	float sum = hsum8(s8);
	for (j = tail; j < n; j++)
		sum += row[j];
	__m256 inv = _mm256_set1_ps(1.0f / sum);
	for (j = 0; j + 8 <= n; j += 8)
		_mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), inv));
	for (; j < n; j++)
		row[j] *= 1.0f / sum;
}

AVX2 static void swiglu_avx2(float *gate, const float *up, size_t n)
{
	const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 g = _mm256_loadu_ps(gate + i);
		__m256 e = exp_neg(_mm256_or_ps(g, sign)); /* e^-|g| */
		__m256 num = _mm256_blendv_ps(one, e, g);   /* g < 0: e^g / (1 + e^g) */
		__m256 sg = _mm256_div_ps(num, _mm256_add_ps(one, e));
		_mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_mul_ps(g, sg), _mm256_loadu_ps(up + i)));
	}
	if (i < n) {
		float g[8] = {0}, u[8] = {0};
		for (size_t k = 0; k < n - i; k++)
			g[k] = gate[i + k], u[k] = up[i + k];
		swiglu_avx2(g, u, 8);
		for (size_t k = 0; k < n - i; k++)
			gate[i + k] = g[k];
	}
}
#endif

void sl_swiglu(float *gate, const float *up, size_t n)
{
#if defined(__x86_64__) || defined(__i386__)
	if (have_avx2()) {
		swiglu_avx2(gate, up, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++) {
		float g = gate[i];
		g *= 1.0f / (1.0f + expf(-g));
		gate[i] = g * up[i];
	}
}

void sl_softmax_scaled(float *row, int n, float scale)
{
	if (n <= 0)
		return;
#if defined(__x86_64__) || defined(__i386__)
	if (have_avx2()) {
		softmax_avx2(row, n, scale);
		return;
	}
#endif
	for (int j = 0; j < n; j++)
		row[j] *= scale;
	float mx = row[0];
	for (int j = 1; j < n; j++)
		if (row[j] > mx)
			mx = row[j];
	float sum = 0.0f;
	for (int j = 0; j < n; j++) {
		row[j] = expf(row[j] - mx);
		sum += row[j];
	}
	float inv = 1.0f / sum;
	for (int j = 0; j < n; j++)
		row[j] *= inv;
}

void sl_gemm_acc_rows(float *out, size_t ldo, const float *p, size_t ldp, const int *lim, int nq, const float *v,
                      size_t ldv, int j0, int n)
{
#if defined(__x86_64__) || defined(__i386__)
	if (have_avx2()) {
		acc_rows_avx2(out, ldo, p, ldp, lim, nq, v, ldv, j0, n);
		return;
	}
#endif
	for (int i = 0; i < nq; i++) {
		float *o = out + (size_t)i * ldo;
		const float *pi = p + (size_t)i * ldp;
		for (int j = j0; j < lim[i]; j++) {
			float pj = pi[j];
			const float *vr = v + (size_t)(j - j0) * ldv;
			for (int d = 0; d < n; d++)
				o[d] += pj * vr[d];
		}
	}
}

void sl_gemm(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w, int wtype, size_t ldw,
             int rows, int n)
{
#if defined(__x86_64__) || defined(__i386__)
	static int x512 = -1;
	if (x512 < 0)
		x512 = sl_cpu_avx512vl();
	if (x512) {
		if (wtype == SL_DT_F16)
			gemm512_f16(y, ldy, x, ldx, T, w, ldw, rows, n);
		else if (wtype == SL_DT_BF16)
			gemm512_bf16(y, ldy, x, ldx, T, w, ldw, rows, n);
		else
			gemm512_f32(y, ldy, x, ldx, T, w, ldw, rows, n);
		return;
	}
	if (have_avx2()) {
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
