/* Float matrix products whose every output is one dot product computed the
 * same way however many tokens share the call: y[t][r] = x[t] . w[r] over
 * n, in runs of eight products (run m covers k = 8m .. 8m+7) dealt to four
 * chains in turn (run m to chain m mod 4), each chain accumulated lane by
 * lane (lane l takes k = 8m + l, in order of m), the chains added lane by
 * lane as (0 + 2) + (1 + 3), the lanes summed in one fixed tree, then the
 * last n mod 8 products added in order. A token's result therefore does
 * not depend on the batch it arrives in, nor on the tile the kernel
 * happens to cover it with: decoding, evaluation and the verification of
 * speculative drafts compute one function. The four chains are what let
 * one token read a weight row from start to end with four multiply-adds in
 * flight: a core streams one row at a time at up to twice the rate at
 * which it follows several rows side by side, and decoding is bound by
 * that rate. The AVX2 kernel keeps each output's chains in four 8-lane
 * accumulators; the AVX-512 kernel in two 16-lane ones (chains 0 and 1 in
 * one, 2 and 3 in the other), with the same lanes, so the same bits. The
 * portable kernel follows the same chains, lanes and tree (without fused
 * multiply-adds, so the two paths differ by rounding). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "gemm.h"

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../dtype.h"
#include "../kernels.h"
#include "cpu.h"

/* The bytes of weights the current forward pass reads (kernels.h). */
static _Atomic size_t pass_bytes;

void sl_kernels_set_pass_bytes(size_t bytes)
{
	atomic_store_explicit(&pass_bytes, bytes, memory_order_relaxed);
}

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
	float c[4][8] = {{0}}, l[8];
	int k = 0;
	for (int m = 0; k + 8 <= n; k += 8, m++)
		for (int j = 0; j < 8; j++)
			c[m & 3][j] += x[k + j] * w[k + j];
	for (int j = 0; j < 8; j++)
		l[j] = (c[0][j] + c[2][j]) + (c[1][j] + c[3][j]);
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
	UNROLL for (int p = 0; p < 4; p++) /* lanes j and j + 4 of two vectors */
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

#define SL_DT_f32 SL_DT_F32
#define SL_DT_f16 SL_DT_F16
#define SL_DT_bf16 SL_DT_BF16

/* A tile's outputs from its combined chains v (token i, row j at i*tn +
 * j): the lanes' sums, then the last n mod 8 products in order. */
AVX2 static inline __attribute__((always_inline)) void tile_out(float *y, size_t ldy, const float *x, size_t ldx,
                                                                const void *w, int wtype, size_t ldw, int n,
                                                                const __m256 *v, int tm, int tn)
{
	float sums[16 + 8];
	UNROLL for (int g = 0; g < tm * tn; g += 8)
		hsums(sums + g, v + g, tm * tn - g < 8 ? tm * tn - g : 8);
	const int k0 = n & ~7;
	UNROLL for (int i = 0; i < tm; i++)
		UNROLL for (int j = 0; j < tn; j++) {
			float s = sums[i * tn + j];
			for (int kk = k0; kk < n; kk++)
				s += x[(size_t)i * ldx + kk] * weight_at(w, wtype, (int)((size_t)j * ldw + (size_t)kk));
			y[(size_t)i * ldy + j] = s;
		}
}

/* A weight vector held in a register: otherwise the compiler may fold
 * its load into each token's multiply-add and read it TM times. */
#define KEEP(v) __asm__("" : "+v"(v))

/* The products a stretch of a row covers where tiles with one chain a
 * pass meet it: their passes then find the stretch of three tokens and
 * four rows in the first-level cache (at most 21 KiB in F32, 20 in F16),
 * and where rows are long the four rows' stretch stays there while all the
 * tokens of a block meet it. Stretches of equal length, each a multiple of
 * 32 (so that each starts with a run of chain 0). */
static inline int tile_stretch(int n8, size_t es)
{
	const int most = es == 4 ? 768 : 1024, parts = (n8 + most - 1) / most;
	return parts > 1 ? ((n8 + parts - 1) / parts + 31) & ~31 : n8;
}

/* Tokens that meet a group of rows together: as many as 192 KiB of
 * activations hold (a second-level cache keeps them while the rows pass;
 * AVX2 processors have 256 KiB to 1 MiB), a multiple of three, at most 63
 * (a block is then at most 65 tokens, 22 tiles). */
#define TILE_GROUPS 22
static inline int tile_tokens(int n)
{
	const int t = 196608 / 4 / (n > 1 ? n : 1) / 3 * 3;
	return t < 3 ? 3 : t > 63 ? 63 : t;
}

/* Rows that meet the blocks of tokens in turn: all of them where they
 * take at most 2 MiB (the caches keep them between blocks of tokens);
 * otherwise as many as 512 KiB hold, so that a large matrix is read from
 * memory once, not once for every block of tokens (a block of rows comes
 * from the second-level cache for every block but the first). A multiple
 * of four. */
static inline int tile_rows(int rows, int n, size_t es)
{
	if ((size_t)rows * (size_t)n * es <= ((size_t)2 << 20))
		return rows > 4 ? rows : 4;
	const int r = (int)(((size_t)512 << 10) / es / (size_t)(n > 1 ? n : 1)) & ~3;
	return r < 4 ? 4 : r;
}

/* The tokens of the next tile from t of a block that ends at te: three, or
 * two (a block of 3m + 1 ends in two tiles of two). */
static inline int tile_group(int t, int te)
{
	return te - t >= 3 && te - t != 4 ? 3 : 2;
}

/* A token that reads a row from memory (the 1 x 1 tiles, AVX2's and
 * AVX-512's) asks for the bytes FETCH_AHEAD on into the second-level
 * cache, across the end of the row into the next one (which follows it in
 * memory). One thread of a Xeon streaming rows of 1024 from 384 MB in 2 MB
 * pages, without and with 2 KiB: AVX-512 F32 13.5-14.1 and 15.1-15.7 GB/s
 * (1 KiB 14.8, 4 KiB 14.6, into the first level 15.1), F16 12.9-13.1 and
 * 15.5-15.8; AVX2 F32 14.8-15.0 and 15.3-15.5, F16 12.8 and 14.5-15.0. A
 * prefetch never faults, wherever it points. */
#define FETCH_AHEAD 2048
#define ES(WT) ((size_t)(SL_DT_##WT == SL_DT_F32 ? 4 : 2))
/* The 32 weights at k of row w, FETCH_AHEAD bytes on. */
#define FETCH_ON(WT, w, k)                                                                              \
	for (size_t o_ = 0; o_ < 32 * ES(WT); o_ += 64)                                                  \
	_mm_prefetch((const char *)(w) + (size_t)(k) * ES(WT) + FETCH_AHEAD + o_, _MM_HINT_T1)

/* One tile of TM tokens by TN rows on AVX2 over the stretch kb .. ke-1 of
 * the rows, CH of each output's four chains a pass (TM * TN * CH
 * accumulators of sixteen registers): the pass for chains c0 .. c0 + CH - 1
 * takes their runs (chain c's at k = 8c, 8c + 32, ...) in order. The
 * chains' sums wait in part (4 x TM x TN vectors) between passes and
 * stretches; after the last stretch (ke = n & ~7) they are combined lane by
 * lane as (0 + 2) + (1 + 3), as the definition says, and the outputs
 * written. With one chain a pass, twelve outputs (three tokens by four
 * rows) share each step: a weight vector is widened once for three tokens
 * and a token's vector meets four rows. With all four a pass, one token
 * reads a row from start to end with four multiply-adds in flight. */
#define TILE(WT, TM, TN, CH)                                                                            \
	AVX2 static void tile_##WT##_##TM##x##TN##_##CH(float *y, size_t ldy, const float *x, size_t ldx, \
	                                                const void *w, size_t ldw, int n, int kb, int ke, \
	                                                __m256 *part)                                   \
	{                                                                                               \
		__m256 v[TM * TN];                                                                      \
		for (int c0 = 0; c0 < 4; c0 += CH) {                                                    \
			__m256 acc[CH][TM][TN];                                                         \
			UNROLL for (int c = 0; c < CH; c++)                                             \
				UNROLL for (int i = 0; i < TM; i++)                                     \
					UNROLL for (int j = 0; j < TN; j++)                             \
						acc[c][i][j] = kb ? part[((c0 + c) * TM + i) * TN + j] : _mm256_setzero_ps(); \
			int k = kb + 8 * c0;                                                            \
			for (; k + 8 * CH <= ke; k += 32) {                                             \
				if (TM == 1 && TN == 1) /* see FETCH_AHEAD */                           \
					FETCH_ON(WT, w, k);                                             \
				UNROLL for (int c = 0; c < CH; c++) {                                   \
					__m256 xv[TM];                                                  \
					UNROLL for (int i = 0; i < TM; i++)                             \
						xv[i] = _mm256_loadu_ps(x + (size_t)i * ldx + k + 8 * c); \
					UNROLL for (int j = 0; j < TN; j++) {                           \
						__m256 wv = load_##WT(w, (size_t)j * ldw + (size_t)(k + 8 * c)); \
						KEEP(wv);                                               \
						UNROLL for (int i = 0; i < TM; i++)                     \
							acc[c][i][j] = _mm256_fmadd_ps(xv[i], wv, acc[c][i][j]); \
					}                                                               \
				}                                                                       \
			}                                                                               \
			UNROLL for (int c = 0; c < CH - 1; c++) /* a last, partial step */              \
				if (k + 8 * c + 8 <= ke)                                                \
					UNROLL for (int i = 0; i < TM; i++) {                           \
						__m256 xv = _mm256_loadu_ps(x + (size_t)i * ldx + k + 8 * c); \
						UNROLL for (int j = 0; j < TN; j++)                     \
							acc[c][i][j] = _mm256_fmadd_ps(                 \
								xv, load_##WT(w, (size_t)j * ldw + (size_t)(k + 8 * c)), \
								acc[c][i][j]);                          \
					}                                                               \
			if (CH == 4) /* the whole row in one pass: combined in registers */             \
				UNROLL for (int i = 0; i < TM; i++)                                     \
					UNROLL for (int j = 0; j < TN; j++)                             \
						v[i * TN + j] = _mm256_add_ps(_mm256_add_ps(acc[0][i][j], acc[CH / 2][i][j]), \
						                              _mm256_add_ps(acc[1 % CH][i][j], acc[CH - 1][i][j])); \
			else                                                                            \
				UNROLL for (int c = 0; c < CH; c++)                                     \
					UNROLL for (int i = 0; i < TM; i++)                             \
						UNROLL for (int j = 0; j < TN; j++)                     \
							part[((c0 + c) * TM + i) * TN + j] = acc[c][i][j]; \
		}                                                                                       \
		if (CH < 4) {                                                                           \
			if (ke < (n & ~7))                                                              \
				return;                                                                 \
			const __m256 *p = part;                                                         \
			UNROLL for (int i = 0; i < TM; i++)                                             \
				UNROLL for (int j = 0; j < TN; j++) {                                   \
					const int o = i * TN + j;                                       \
					v[o] = _mm256_add_ps(_mm256_add_ps(p[o], p[2 * TM * TN + o]),   \
					                     _mm256_add_ps(p[TM * TN + o], p[3 * TM * TN + o])); \
				}                                                                       \
		}                                                                                       \
		tile_out(y, ldy, x, ldx, w, SL_DT_##WT, ldw, n, v, TM, TN);                             \
	}

/* Whether one token's pass over a matrix of `whole` bytes reads it from
 * memory: the matrix is at least 1 MiB and the pass's weights (told by the
 * forward; 0 when not known) exceed what the caches hold (16 MiB taken as
 * a last-level cache's share). Then one row at a time reads it fastest;
 * otherwise several rows at a time, more chains in flight. The choice
 * changes the speed only: every tile gives an output the same bits. */
static inline int from_memory(size_t whole)
{
	size_t pass = atomic_load_explicit(&pass_bytes, memory_order_relaxed);
	return whole >= ((size_t)1 << 20) && (pass == 0 || pass >= ((size_t)16 << 20));
}

/* One token reads one row at a time, from start to end, with its four
 * chains in flight (three rows at a time in a small matrix). With two or
 * more tokens, each block of rows (tile_rows) meets the blocks of tokens
 * (tile_tokens) in turn, four rows at a time, a stretch of them at a time,
 * in tiles of three tokens (two at the end of a block) with one chain a
 * pass; rows after the fours one at a time, all chains a pass. Which tile
 * covers an output never changes its value. */
#define GEMM(WT)                                                                                        \
	TILE(WT, 3, 4, 1)                                                                               \
	TILE(WT, 2, 4, 1)                                                                               \
	TILE(WT, 3, 1, 4)                                                                               \
	TILE(WT, 2, 1, 4)                                                                               \
	TILE(WT, 1, 3, 4)                                                                               \
	TILE(WT, 1, 1, 4)                                                                               \
	AVX2 static void gemm_##WT(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w, \
	                           size_t ldw, int rows, int n, size_t whole)                           \
	{                                                                                               \
		const size_t es = ES(WT);                                                              \
		const int n8 = n & ~7, st = tile_stretch(n8, es);                                       \
		int r = 0;                                                                              \
		if (T == 1) {                                                                           \
			__m256 part1[4 * 3];                                                            \
			if (!from_memory(whole))                                                        \
				for (; r + 3 <= rows; r += 3)                                           \
					tile_##WT##_1x3_4(y + r, ldy, x, ldx, (const char *)w + (size_t)r * ldw * es, ldw, n, \
					                  0, n8, part1);                               \
			for (; r < rows; r++)                                                           \
				tile_##WT##_1x1_4(y + r, ldy, x, ldx, (const char *)w + (size_t)r * ldw * es, ldw, n, 0, n8, \
				                  part1);                                              \
			return;                                                                         \
		}                                                                                       \
		/* Where 48 rows or more share them and they take at most 8 MiB, the                    \
		 * activations are copied to rows on 32 bytes unless they are on such                    \
		 * rows already (16 bytes off, two passes of four load each vector                      \
		 * across two cache lines); otherwise the tiles read them in place. */                  \
		const int tb = tile_tokens(n), rb = tile_rows(rows, n, es);                             \
		const size_t lda = ((size_t)n + 7) & ~(size_t)7;                                        \
		float *xa = rows >= 48 && ((uintptr_t)x % 32 || ldx % 8) && (size_t)T * lda <= ((size_t)2 << 20) \
		                    ? aligned_alloc(32, (size_t)T * lda * 4)                                    \
		                    : NULL;                                                                     \
		for (int t = 0; xa && t < T; t++)                                                       \
			memcpy(xa + (size_t)t * lda, x + (size_t)t * ldx, (size_t)n * 4);               \
		const float *xb = xa ? xa : x;                                                          \
		__m256 part[TILE_GROUPS][4 * 12];                                                       \
		const size_t ldb = xa ? lda : ldx;                                                      \
		for (int r0 = 0; r0 + 4 <= rows; r0 += rb)                                              \
			for (int t0 = 0, te; t0 < T; t0 = te) {                                         \
				te = T - t0 - tb < 3 ? T : t0 + tb;                                     \
				for (r = r0; r + 4 <= rows && r < r0 + rb; r += 4) {                    \
					const void *wr = (const char *)w + (size_t)r * ldw * es;        \
					int kb = 0;                                                     \
					do {                                                            \
						const int ke = n8 - kb > st ? kb + st : n8;             \
						for (int t = t0, g, i = 0; t < te; t += g, i++) {       \
							g = tile_group(t, te);                          \
							float *yt = y + (size_t)t * ldy + r;            \
							const float *xt = xb + (size_t)t * ldb;         \
							if (g == 3)                                     \
								tile_##WT##_3x4_1(yt, ldy, xt, ldb, wr, ldw, n, kb, ke, part[i]); \
							else                                            \
								tile_##WT##_2x4_1(yt, ldy, xt, ldb, wr, ldw, n, kb, ke, part[i]); \
						}                                                       \
						kb = ke;                                                \
					} while (kb < n8);                                              \
				}                                                                       \
			}                                                                               \
		free(xa);                                                                               \
		for (r = rows & ~3; r < rows; r++) {                                                    \
			const void *wr = (const char *)w + (size_t)r * ldw * es;                        \
			int t = 0;                                                                      \
			for (; T - t >= 3; t += 3)                                                      \
				tile_##WT##_3x1_4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n, 0, n8, \
				                  part[0]);                                             \
			if (T - t == 2)                                                                 \
				tile_##WT##_2x1_4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n, 0, n8, \
				                  part[0]);                                             \
			else if (T - t == 1)                                                            \
				tile_##WT##_1x1_4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n, 0, n8, \
				                  part[0]);                                             \
		}                                                                                       \
	}

GEMM(f32)
GEMM(f16)
GEMM(bf16)

/* AVX-512: sixteen weights as floats, and an output's four chains in two
 * registers of sixteen lanes: chains 0 and 1 in the low and high halves of
 * one, 2 and 3 of the other, so that one fused multiply-add covers 16
 * neighbouring products (two runs) with the lanes of the AVX2 kernel. */
#define X512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl")))

X512 static inline __m512 load512_f32(const void *w, size_t i)
{
	return _mm512_loadu_ps((const float *)w + i);
}

X512 static inline __m512 load512_f16(const void *w, size_t i)
{
	return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)));
}

X512 static inline __m512 load512_bf16(const void *w, size_t i)
{
	__m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i));
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* acc's low eight lanes += x[0..7] * w[0..7]; the high eight kept. */
#define RUN_LOW(WT, acc, xp, w, i)                                                                      \
	(acc = _mm512_mask3_fmadd_ps(_mm512_zextps256_ps512(_mm256_loadu_ps(xp)),                        \
	                             _mm512_zextps256_ps512(load_##WT(w, i)), acc, 0x00ff))

/* TM tokens by TN rows (two registers per output: at most 3 x 4 of 32
 * registers with the activations and a weight vector). */
#define TILE512(WT, TM, TN)                                                                             \
	X512 static void tile512_##WT##_##TM##x##TN(float *y, size_t ldy, const float *x, size_t ldx,       \
	                                            const void *w, size_t ldw, int n)                   \
	{                                                                                               \
		__m512 a[TM][TN], b[TM][TN];                                                            \
		UNROLL for (int i = 0; i < TM; i++)                                                     \
			UNROLL for (int j = 0; j < TN; j++)                                             \
				a[i][j] = b[i][j] = _mm512_setzero_ps();                                \
		const int n8 = n & ~7;                                                                  \
		int k = 0;                                                                              \
		for (; k + 32 <= n8; k += 32) {                                                         \
			if (TM == 1 && TN == 1) /* see FETCH_AHEAD */                                   \
				FETCH_ON(WT, w, k);                                                     \
			__m512 xv[TM];                                                                  \
			UNROLL for (int i = 0; i < TM; i++)                                             \
				xv[i] = _mm512_loadu_ps(x + (size_t)i * ldx + k);                       \
			UNROLL for (int j = 0; j < TN; j++) {                                           \
				__m512 wv = load512_##WT(w, (size_t)j * ldw + (size_t)k);               \
				KEEP(wv);                                                               \
				UNROLL for (int i = 0; i < TM; i++)                                     \
					a[i][j] = _mm512_fmadd_ps(xv[i], wv, a[i][j]);                  \
			}                                                                               \
			UNROLL for (int i = 0; i < TM; i++)                                             \
				xv[i] = _mm512_loadu_ps(x + (size_t)i * ldx + k + 16);                  \
			UNROLL for (int j = 0; j < TN; j++) {                                           \
				__m512 wv = load512_##WT(w, (size_t)j * ldw + (size_t)(k + 16));        \
				KEEP(wv);                                                               \
				UNROLL for (int i = 0; i < TM; i++)                                     \
					b[i][j] = _mm512_fmadd_ps(xv[i], wv, b[i][j]);                  \
			}                                                                               \
		}                                                                                       \
		if (k + 16 <= n8) { /* runs for chains 0 and 1, perhaps one for chain 2 */              \
			UNROLL for (int i = 0; i < TM; i++) {                                           \
				__m512 xv = _mm512_loadu_ps(x + (size_t)i * ldx + k);                   \
				UNROLL for (int j = 0; j < TN; j++)                                     \
					a[i][j] = _mm512_fmadd_ps(xv, load512_##WT(w, (size_t)j * ldw + (size_t)k), a[i][j]); \
			}                                                                               \
			if (k + 24 <= n8)                                                               \
				UNROLL for (int i = 0; i < TM; i++)                                     \
					UNROLL for (int j = 0; j < TN; j++)                             \
						RUN_LOW(WT, b[i][j], x + (size_t)i * ldx + k + 16, w,   \
						        (size_t)j * ldw + (size_t)(k + 16));            \
		} else if (k + 8 <= n8) { /* a run for chain 0 */                                       \
			UNROLL for (int i = 0; i < TM; i++)                                             \
				UNROLL for (int j = 0; j < TN; j++)                                     \
					RUN_LOW(WT, a[i][j], x + (size_t)i * ldx + k, w, (size_t)j * ldw + (size_t)k); \
		}                                                                                       \
		__m256 v[TM * TN];                                                                      \
		UNROLL for (int i = 0; i < TM; i++)                                                     \
			UNROLL for (int j = 0; j < TN; j++) {                                           \
				__m512 s = _mm512_add_ps(a[i][j], b[i][j]);                             \
				v[i * TN + j] = _mm256_add_ps(_mm512_castps512_ps256(s),                \
				                              _mm256_castpd_ps(_mm512_extractf64x4_pd(  \
				                                      _mm512_castps_pd(s), 1)));        \
			}                                                                               \
		tile_out(y, ldy, x, ldx, w, SL_DT_##WT, ldw, n, v, TM, TN);                             \
	}

/* Tokens whose activations (n floats each) take some 512 KiB, in threes:
 * a quarter of the second-level cache of the cores measured, the rest left
 * to the weights and the other thread's work. */
static inline int chunk_tokens(int n)
{
	int c = (int)(((size_t)512 << 10) / ((size_t)n * sizeof(float))) / 3 * 3;
	return c < 24 ? 24 : c;
}

/* Three tokens by four rows (24 accumulators), the last one or two tokens
 * in one tile; rows left after the fours one at a time. One token meets
 * four rows at a time too where the matrix is small enough to come from
 * the caches (then eight chains in flight keep the multiply-adds busy),
 * and reads one row at a time, from start to end, where it comes from
 * memory. */
#define GEMM512(WT)                                                                                     \
	TILE512(WT, 3, 4)                                                                               \
	TILE512(WT, 2, 4)                                                                               \
	TILE512(WT, 1, 4)                                                                               \
	TILE512(WT, 1, 1)                                                                               \
	X512 static void gemm512_##WT(float *y, size_t ldy, const float *x, size_t ldx, int T, const void *w, \
	                              size_t ldw, int rows, int n, size_t whole)                        \
	{                                                                                               \
		/* A prompt's tokens in chunks whose activations stay in the                            \
		 * second-level cache while every row meets them (the rows'                             \
		 * weights come again for each chunk, eight rows at a time). */                        \
		const int chunk = chunk_tokens(n);                                                      \
		if (T > chunk) {                                                                        \
			for (int t0 = 0; t0 < T; t0 += chunk)                                           \
				gemm512_##WT(y + (size_t)t0 * ldy, ldy, x + (size_t)t0 * ldx, ldx,      \
				             T - t0 < chunk ? T - t0 : chunk, w, ldw, rows, n, whole);  \
			return;                                                                         \
		}                                                                                       \
		const size_t es = ES(WT);                                                              \
		int r = 0;                                                                              \
		/* A prompt's activations, and each block of eight F32 rows, on                         \
		 * rows that start on a cache line where they do not already: a                         \
		 * 64-byte load across two lines costs two (measured, one thread,                       \
		 * 64 F32 rows of 2816 and 96 tokens: 15.3 multiply-adds a cycle                        \
		 * with both 16 or 32 bytes off, 21.7 aligned). The values are the                      \
		 * same, so are the bits. F16 rows load 32 bytes at a time. */                          \
		const size_t lda = ((size_t)n + 15) & ~(size_t)15;                                      \
		float *xa = NULL, *wa = NULL;                                                           \
		if (T > 1 && rows >= 8 && ((uintptr_t)x % 64 || ldx % 16) &&                            \
		    (xa = aligned_alloc(64, (size_t)T * lda * sizeof(float)))) {                       \
			for (int t = 0; t < T; t++)                                                     \
				memcpy(xa + (size_t)t * lda, x + (size_t)t * ldx, (size_t)n * sizeof(float)); \
			x = xa;                                                                         \
			ldx = lda;                                                                      \
		}                                                                                       \
		if (T > 1 && rows >= 8 && es == 4 && ((uintptr_t)w % 64 || ldw % 16))                  \
			wa = aligned_alloc(64, 8 * lda * sizeof(float));                                \
		if (T > 1) /* eight rows meet each group of three tokens */                            \
			for (; r + 8 <= rows; r += 8) {                                                 \
				const void *wr = (const char *)w + (size_t)r * ldw * es;                \
				const void *wr4 = (const char *)w + (size_t)(r + 4) * ldw * es;         \
				size_t ldb = ldw;                                                       \
				if (wa) {                                                               \
					for (int k = 0; k < 8; k++)                                     \
						memcpy(wa + (size_t)k * lda, (const char *)wr + (size_t)k * ldw * es, \
						       (size_t)n * sizeof(float));                      \
					wr = wa;                                                        \
					wr4 = wa + 4 * lda;                                             \
					ldb = lda;                                                      \
				}                                                                       \
				int t = 0;                                                              \
				for (; T - t >= 3; t += 3) {                                            \
					tile512_##WT##_3x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldb, n); \
					tile512_##WT##_3x4(y + (size_t)t * ldy + r + 4, ldy, x + (size_t)t * ldx, ldx, wr4, ldb, n); \
				}                                                                       \
				for (int h = 0; h < 2; h++) {                                           \
					float *yt = y + (size_t)t * ldy + r + 4 * h;                    \
					const float *xt = x + (size_t)t * ldx;                          \
					const void *wh = h ? wr4 : wr;                                  \
					if (T - t == 2)                                                 \
						tile512_##WT##_2x4(yt, ldy, xt, ldx, wh, ldb, n);       \
					else if (T - t == 1)                                            \
						tile512_##WT##_1x4(yt, ldy, xt, ldx, wh, ldb, n);       \
				}                                                                       \
			}                                                                               \
		free(wa);                                                                               \
		if (T > 1 || !from_memory(whole))                                                       \
			for (; r + 4 <= rows; r += 4) {                                                 \
				const void *wr = (const char *)w + (size_t)r * ldw * es;                \
				int t = 0;                                                              \
				for (; T - t >= 3; t += 3)                                              \
					tile512_##WT##_3x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n); \
				if (T - t == 2)                                                         \
					tile512_##WT##_2x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n); \
				else if (T - t == 1)                                                    \
					tile512_##WT##_1x4(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, wr, ldw, n); \
			}                                                                               \
		for (; r < rows; r++)                                                                   \
			for (int t = 0; t < T; t++)                                                     \
				tile512_##WT##_1x1(y + (size_t)t * ldy + r, ldy, x + (size_t)t * ldx, ldx, \
				                   (const char *)w + (size_t)r * ldw * es, ldw, n);     \
		free(xa);                                                                               \
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
             int rows, int n, size_t whole)
{
#if defined(__x86_64__) || defined(__i386__)
	static int x512 = -1;
	if (x512 < 0)
		x512 = sl_cpu_avx512vl();
	if (x512) {
		if (wtype == SL_DT_F16)
			gemm512_f16(y, ldy, x, ldx, T, w, ldw, rows, n, whole);
		else if (wtype == SL_DT_BF16)
			gemm512_bf16(y, ldy, x, ldx, T, w, ldw, rows, n, whole);
		else
			gemm512_f32(y, ldy, x, ldx, T, w, ldw, rows, n, whole);
		return;
	}
	if (have_avx2()) {
		if (wtype == SL_DT_F16)
			gemm_f16(y, ldy, x, ldx, T, w, ldw, rows, n, whole);
		else if (wtype == SL_DT_BF16)
			gemm_bf16(y, ldy, x, ldx, T, w, ldw, rows, n, whole);
		else
			gemm_f32(y, ldy, x, ldx, T, w, ldw, rows, n, whole);
		return;
	}
#endif
	gemm_portable(y, ldy, x, ldx, T, w, wtype, ldw, rows, n);
}
