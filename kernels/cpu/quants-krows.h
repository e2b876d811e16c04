/* The K formats' vec_dot_rows: up to SL_DOT_ROWS weight rows against up to
 * SL_DOT_TILE activation rows in one call, included by quants-avx2.c once
 * per instruction set like quants-legacy.h: TARGET is the target
 * attribute, SFX(f) names this build's functions, K_PASS_ROWS is how many
 * weight rows share one pass over a block's activations (as many as the
 * registers hold: 2 for AVX2's 16, 4 for AVX-512's 32), and with
 * SL_K_VNNI_PASS defined each group's scaled sums are added by AVX-512
 * VNNI's vpdpwssd instead of vpmaddwd + vpaddd (the same integers: no sum
 * of two products wraps). No include guard: read twice on purpose.
 *
 * Every (row, token) pair gets exactly the one-row dot product's bits
 * (dotK): its integer sums are the same integers, whatever their order, and
 * its per-block float step is the same operations in the same order
 * (sl_q_K_block_dot), done for eight pairs at once in the lanes of one
 * vector. What the pairs share is done once: the horizontal sums of eight
 * accumulators, each activation block's loads for every row of a pass, and
 * each weight block's decoding for every token. */

/* acc + group k's scaled sums of codes u times activations y (w: the
 * scales as int16, one per pair of products). */
TARGET static inline __m256i SFX(kgroup_add)(__m256i acc, __m256i u, __m256i y, __m256i w)
{
#ifdef SL_K_VNNI_PASS
	return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, y), w);
#else
	return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), w));
#endif
}

/* Pairs are held two weight rows by four tokens to a vector, pair (r, t) of
 * a unit in lane 4r + t; a unit's rows are rows 2u and 2u + 1 of the call.
 * R and NT are constants after inlining; pairs past them stay zero. */
__attribute__((always_inline)) TARGET static inline void
SFX(krows)(kdecode_fn decode, size_t bytes, const int R, const int NT, int64_t n, float *y, size_t ys,
           const void *w, size_t ws, const void *xq, size_t xs)
{
	enum { P = K_PASS_ROWS, UNITS = SL_DOT_ROWS / 2 };
	_Static_assert(SL_DOT_TILE == 4 && SL_DOT_ROWS % 2 == 0 && P % 2 == 0, "a unit is 2 rows by 4 tokens");
	__m256 fsum[UNITS];
#pragma GCC unroll 2
	for (int u = 0; u < UNITS; u++)
		fsum[u] = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / SL_QK_K; i++) {
		const sl_block_q8_K *yb[SL_DOT_TILE];
		float yd[SL_DOT_TILE];
#pragma GCC unroll 4
		for (int t = 0; t < SL_DOT_TILE; t++) {
			yb[t] = t < NT ? (const sl_block_q8_K *)((const uint8_t *)xq + (size_t)t * xs) + i : NULL;
			yd[t] = t < NT ? yb[t]->d : 0;
		}
		const __m128 yd4 = _mm_setr_ps(yd[0], yd[1], yd[2], yd[3]);
		const __m256 ydv = _mm256_set_m128(yd4, yd4);
#pragma GCC unroll 4
		for (int r0 = 0; r0 < R; r0 += P) {
			const int PR = R - r0 < P ? R - r0 : P;
			kblock b[P];
#pragma GCC unroll 4
			for (int r = 0; r < PR; r++)
				decode((const uint8_t *)w + (size_t)(r0 + r) * ws + (size_t)i * bytes, &b[r]);
			/* The codes' offsets against the bsums: one sum per pair,
			 * reduced at once (subtracted, shifted, from the sums for
			 * biased codes; minimums' sums for the others). */
			__m256i corr[P / 2];
#pragma GCC unroll 2
			for (int u = 0; u < (PR + 1) / 2; u++) {
				__m256i c[8];
#pragma GCC unroll 8
				for (int v = 0; v < 8; v++) {
					const int r = 2 * u + v / 4, t = v % 4;
					c[v] = r < PR && t < NT ? bsum_dot(b[r].corr, yb[t]->bsums) : _mm256_setzero_si256();
				}
				corr[u] = hsum8_epi32(c);
			}
			__m256i acc[P * SL_DOT_TILE];
#pragma GCC unroll 16
			for (int v = 0; v < P * SL_DOT_TILE; v++)
				acc[v] = _mm256_setzero_si256();
#pragma GCC unroll 8
			for (int k = 0; k < 8; k++) {
				__m256i wk[P];
#pragma GCC unroll 4
				for (int r = 0; r < PR; r++)
					wk[r] = group_scales(&b[r].sc, k);
#pragma GCC unroll 4
				for (int t = 0; t < NT; t++) {
					const __m256i yv = load32(yb[t]->qs + 32 * k);
#pragma GCC unroll 4
					for (int r = 0; r < PR; r++)
						acc[4 * r + t] = SFX(kgroup_add)(acc[4 * r + t], b[r].u[k], yv, wk[r]);
				}
			}
			/* The float step of every pair at once: as sl_q_K_block_dot. */
#pragma GCC unroll 2
			for (int u = 0; u < (PR + 1) / 2; u++) {
				__m256i sumi = hsum8_epi32(&acc[8 * u]), summ = corr[u];
				if (b[0].shift >= 0) {
					sumi = _mm256_sub_epi32(sumi, _mm256_sll_epi32(summ, _mm_cvtsi32_si128(b[0].shift)));
					summ = _mm256_setzero_si256();
				}
				const bool two = 2 * u + 1 < PR;
				const __m256 d = _mm256_set_m128(_mm_set1_ps(two ? b[2 * u + 1].d : 0), _mm_set1_ps(b[2 * u].d));
				const __m256 dmin =
				        _mm256_set_m128(_mm_set1_ps(two ? b[2 * u + 1].dmin : 0), _mm_set1_ps(b[2 * u].dmin));
				const __m256 blk = _mm256_mul_ps(ydv, _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(sumi)),
				                                                    _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(summ))));
				fsum[r0 / 2 + u] = _mm256_add_ps(fsum[r0 / 2 + u], blk);
			}
		}
	}
	float out[UNITS][8];
#pragma GCC unroll 2
	for (int u = 0; u < UNITS; u++)
		_mm256_storeu_ps(out[u], fsum[u]);
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int t = 0; t < NT; t++)
			y[(size_t)t * ys + r] = out[r / 2][4 * (r % 2) + t];
}

#define K_ROWS(t)                                                                                         \
	TARGET static void SFX(t##_krows)(int64_t n, int nr, int nt, float *y, size_t ys, const void *w,     \
	                                  size_t ws, const void *xq, size_t xs)                             \
	{                                                                                                 \
		ROWS_SWITCH(t##_KROWS)                                                                    \
	}
K_ROWS(q2_K)
K_ROWS(q3_K)
K_ROWS(q4_K)
K_ROWS(q5_K)
K_ROWS(q6_K)
#undef K_ROWS

TARGET static sl_vec_dot_rows_fn SFX(k_rows)(int type)
{
	switch (type) {
	case SL_DT_Q2_K: return SFX(q2_K_krows);
	case SL_DT_Q3_K: return SFX(q3_K_krows);
	case SL_DT_Q4_K: return SFX(q4_K_krows);
	case SL_DT_Q5_K: return SFX(q5_K_krows);
	case SL_DT_Q6_K: return SFX(q6_K_krows);
	default: return NULL;
	}
}
