/* The K formats' vec_dot_rows: up to SL_DOT_ROWS weight rows against up to
 * SL_DOT_ROWS_TOKENS activation rows in one call, included by quants-avx2.c
 * once per instruction set like quants-legacy.h: TARGET is the target
 * attribute, SFX(f) names this build's functions, K_PASS_UNITS is how many
 * units of eight (row, token) pairs share one pass over a block's
 * activations (as many as the registers hold: 1 for AVX2's 16, 2 for
 * AVX-512's 32), and with SL_K_VNNI_PASS defined each group's scaled sums
 * are added by AVX-512 VNNI's vpdpwssd instead of vpmaddwd + vpaddd (the
 * same integers: no sum of two products wraps). No include guard: read
 * twice on purpose.
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

/* Group k of a pass of PR rows against NT tokens: pair (r, t) adds into
 * acc[UT * r + t]. */
__attribute__((always_inline)) TARGET static inline void
SFX(kgroup)(int k, const kblock *b, const int PR, const int NT, const int UT, const sl_block_q8_K *const *yb,
            __m256i *acc)
{
	__m256i wk[2 * K_PASS_UNITS];
#pragma GCC unroll 4
	for (int r = 0; r < PR; r++)
		wk[r] = group_scales(&b[r].sc, k);
#pragma GCC unroll 8
	for (int t = 0; t < NT; t++) {
		const __m256i yv = load32(yb[t]->qs + 32 * k);
#pragma GCC unroll 4
		for (int r = 0; r < PR; r++)
			acc[UT * r + t] = SFX(kgroup_add)(acc[UT * r + t], b[r].u[k], yv, wk[r]);
	}
}

/* A unit is eight (row, token) pairs, one vector's lanes: two weight rows
 * by four tokens, pair (r, t) in lane 4r + t, for calls of up to four
 * tokens, or one row by eight tokens (lane t) for calls of eight. A pass
 * over a block's activations takes K_PASS_UNITS units, as many as the
 * registers hold. R (1 or 4) and NT (4 or 8; krows12 takes calls of 1
 * and 2) are constants after inlining; pairs past them stay zero and are
 * never stored. */
__attribute__((always_inline)) TARGET static inline void
SFX(krows)(kdecode_fn decode, size_t bytes, const int R, const int NT, int64_t n, float *y, size_t ys,
           const void *w, size_t ws, const void *xq, size_t xs)
{
	enum { MAXT = SL_DOT_ROWS_TOKENS, MAXP = 2 * K_PASS_UNITS };
	_Static_assert(SL_DOT_ROWS_TOKENS == 8 && SL_DOT_ROWS == 4, "units are 2x4 or 1x8 pairs");
	const int UT = NT > 4 ? 8 : 4, UR = 8 / UT, P = K_PASS_UNITS * UR;
	__m256 fsum[SL_DOT_ROWS];
#pragma GCC unroll 4
	for (int u = 0; u < SL_DOT_ROWS; u++)
		fsum[u] = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / SL_QK_K; i++) {
		const sl_block_q8_K *yb[MAXT];
		float yd[MAXT];
#pragma GCC unroll 8
		for (int t = 0; t < MAXT; t++) {
			yb[t] = t < NT ? (const sl_block_q8_K *)((const uint8_t *)xq + (size_t)t * xs) + i : NULL;
			yd[t] = t < NT ? yb[t]->d : 0;
		}
		const __m128 yd4 = _mm_setr_ps(yd[0], yd[1], yd[2], yd[3]);
		const __m256 ydv = UT == 8 ? _mm256_setr_ps(yd[0], yd[1], yd[2], yd[3], yd[4], yd[5], yd[6], yd[7])
		                           : _mm256_set_m128(yd4, yd4);
		/* Calls of four tokens stream their weights (checks of drafts): as the
		 * legacy rows do, fetch the next R rows in one linear sweep, R
		 * blocks' bytes per block, which the hardware does not follow
		 * as R interleaved streams. Calls of 8 tokens meet the same rows
		 * again in the next call. */
		if (R > 1 && NT < MAXT) {
			const char *next = (const char *)w + (size_t)R * ws + (size_t)i * R * bytes;
			for (size_t off = 0; off < R * bytes; off += 64)
				_mm_prefetch(next + off, _MM_HINT_T0);
		}
#pragma GCC unroll 4
		for (int r0 = 0; r0 < R; r0 += P) {
			const int PR = R - r0 < P ? R - r0 : P, NU = (PR + UR - 1) / UR;
			kblock b[MAXP];
#pragma GCC unroll 4
			for (int r = 0; r < PR; r++)
				decode((const uint8_t *)w + (size_t)(r0 + r) * ws + (size_t)i * bytes, &b[r]);
			/* The codes' offsets against the bsums, one sum per pair,
			 * reduced at once: subtracted, shifted, from the sums of
			 * biased codes, or the minimums' share. */
			__m256i corr[K_PASS_UNITS];
#pragma GCC unroll 2
			for (int u = 0; u < NU; u++) {
				__m256i c[8];
#pragma GCC unroll 8
				for (int v = 0; v < 8; v++) {
					const int r = UR * u + v / UT, t = v % UT;
					c[v] = r < PR && t < NT ? bsum_dot(b[r].corr, yb[t]->bsums) : _mm256_setzero_si256();
				}
				corr[u] = hsum8_epi32(c);
			}
			/* Pair (r, t) of the pass: unit r / UR, lane UT * (r % UR) + t. */
			__m256i acc[8 * K_PASS_UNITS];
#pragma GCC unroll 16
			for (int v = 0; v < 8 * K_PASS_UNITS; v++)
				acc[v] = _mm256_setzero_si256();
			/* Calls of 8 tokens (prompts, evaluations) unroll the
			 * groups; those of four keep the loop, which spares the
			 * build dozens of unrolled copies. */
			if (NT == MAXT) {
#pragma GCC unroll 8
				for (int k = 0; k < 8; k++)
					SFX(kgroup)(k, b, PR, NT, UT, yb, acc);
			} else {
#pragma GCC unroll 1
				for (int k = 0; k < 8; k++)
					SFX(kgroup)(k, b, PR, NT, UT, yb, acc);
			}
			/* The float step of eight pairs at once, as sl_q_K_block_dot. */
#pragma GCC unroll 2
			for (int u = 0; u < NU; u++) {
				__m256i sumi = hsum8_epi32(&acc[8 * u]), summ = corr[u];
				if (b[0].shift >= 0) {
					sumi = _mm256_sub_epi32(sumi, _mm256_sll_epi32(summ, _mm_cvtsi32_si128(b[0].shift)));
					summ = _mm256_setzero_si256();
				}
				const int ra = UR * u, rb = UR * u + 1;
				__m256 d = _mm256_set1_ps(b[ra].d), dmin = _mm256_set1_ps(b[ra].dmin);
				if (UR == 2) {
					d = _mm256_set_m128(_mm_set1_ps(rb < PR ? b[rb].d : 0), _mm256_castps256_ps128(d));
					dmin = _mm256_set_m128(_mm_set1_ps(rb < PR ? b[rb].dmin : 0), _mm256_castps256_ps128(dmin));
				}
				const __m256 blk = _mm256_mul_ps(ydv, _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(sumi)),
				                                                    _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(summ))));
				fsum[r0 / UR + u] = _mm256_add_ps(fsum[r0 / UR + u], blk);
			}
		}
	}
	float out[SL_DOT_ROWS][8];
#pragma GCC unroll 4
	for (int u = 0; u < SL_DOT_ROWS; u++)
		_mm256_storeu_ps(out[u], fsum[u]);
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 8
		for (int t = 0; t < NT; t++)
			y[(size_t)t * ys + r] = out[r / UR][UT * (r % UR) + t];
}

/* The decoding kernel (the one-token call streams every weight of a model
 * per token; speculative passes check a token or two more): R rows (1 or
 * SL_DOT_ROWS) against NT activation rows (1 or 2). Each block of a row is
 * decoded once for its tokens, and each (row, token) pair summed in one
 * chain of its own, the codes' offset folded into its start where the
 * format has one (dotK's order). The pairs' sums and minimums' shares meet
 * in horizontal sums of eight vectors, token t's rows in lanes 4t..4t+3
 * (one token: the minimums' shares in lanes 4-7 of the same sum), and the
 * float step is then one vector's for all pairs, sl_q_K_block_dot's
 * operations in their order. */
__attribute__((always_inline)) TARGET static inline void
SFX(krows12)(kdecode_fn decode, kdecode2_fn decode2, size_t bytes, const int R, const int NT, int64_t n, float *y, size_t ys,
             const void *w, size_t ws, const void *xq, size_t xs)
{
	__m256 fsum = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / SL_QK_K; i++) {
		/* Each row's stream K_AHEAD bytes ahead of this block (into
		 * the next rows where the rows are short; a prefetch never
		 * faults, wherever it points). */
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			const char *ahead = (const char *)w + (size_t)r * ws + (size_t)i * bytes + K_AHEAD;
			for (size_t off = 0; off < bytes; off += 64)
				_mm_prefetch(ahead + off, _MM_HINT_T0);
		}
		const sl_block_q8_K *yb[2];
#pragma GCC unroll 2
		for (int t = 0; t < NT; t++)
			yb[t] = (const sl_block_q8_K *)((const uint8_t *)xq + (size_t)t * xs) + i;
		/* pair (r, t): its sum in v[4t + r], its minimums' share in
		 * m[4t + r] (one token: v[4 + r]) */
		__m256i v[8], m[8];
		float d[4] = {0}, dmin[4] = {0};
		bool mins = false;
#pragma GCC unroll 8
		for (int k = 0; k < 8; k++)
			v[k] = m[k] = _mm256_setzero_si256();
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			const uint8_t *blk = (const uint8_t *)w + (size_t)r * ws + (size_t)i * bytes;
			kblock b;
#ifdef SL_K_VNNI_PASS
			kblock2 b2;
			if (decode2) {
				decode2(blk, &b2);
				b.corr = b2.corr;
				b.shift = b2.shift;
				b.d = b2.d;
				b.dmin = b2.dmin;
			} else
#endif
				decode(blk, &b);
			mins = b.shift < 0;
#pragma GCC unroll 2
			for (int t = 0; t < NT; t++) {
				const __m256i corr = bsum_dot(b.corr, yb[t]->bsums);
				__m256i acc = _mm256_setzero_si256();
				if (b.shift >= 0)
					acc = _mm256_sub_epi32(acc, _mm256_sll_epi32(corr, _mm_cvtsi32_si128(b.shift)));
				else if (NT == 1)
					v[4 + r] = corr;
				else
					m[4 * t + r] = corr;
#ifdef SL_K_VNNI_PASS
				if (decode2) {
					__m512i a = _mm512_setzero_si512();
#pragma GCC unroll 4
					for (int p = 0; p < 4; p++)
						a = _mm512_dpwssd_epi32(
						        a, _mm512_maddubs_epi16(b2.u[p], _mm512_loadu_si512(yb[t]->qs + 64 * p)), b2.w[p]);
					acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm512_castsi512_si256(a),
					                                             _mm512_extracti64x4_epi64(a, 1)));
				} else
#endif
#pragma GCC unroll 8
					for (int k = 0; k < 8; k++)
						acc = SFX(kgroup_add)(acc, b.u[k], load32(yb[t]->qs + 32 * k),
						                      group_scales(&b.sc, k));
				v[4 * t + r] = acc;
			}
			d[r] = b.d;
			dmin[r] = b.dmin;
		}
		__m256 sumi, summ;
		const __m256i s = hsum8_epi32(v);
		if (NT == 1) {
			sumi = _mm256_castps128_ps256(_mm_cvtepi32_ps(_mm256_castsi256_si128(s)));
			summ = _mm256_castps128_ps256(_mm_cvtepi32_ps(_mm256_extracti128_si256(s, 1)));
		} else {
			sumi = _mm256_cvtepi32_ps(s);
			summ = mins ? _mm256_cvtepi32_ps(hsum8_epi32(m)) : _mm256_setzero_ps();
		}
		const __m128 d4 = _mm_loadu_ps(d), m4 = _mm_loadu_ps(dmin);
		const __m256 yd = _mm256_set_m128(_mm_set1_ps(NT > 1 ? yb[1]->d : 0), _mm_set1_ps(yb[0]->d));
		const __m256 blk = _mm256_mul_ps(yd, _mm256_sub_ps(_mm256_mul_ps(_mm256_set_m128(d4, d4), sumi),
		                                                   _mm256_mul_ps(_mm256_set_m128(m4, m4), summ)));
		fsum = _mm256_add_ps(fsum, blk);
	}
	float out[8];
	_mm256_storeu_ps(out, fsum);
#pragma GCC unroll 2
	for (int t = 0; t < NT; t++)
#pragma GCC unroll 4
		for (int r = 0; r < R; r++)
			y[(size_t)t * ys + r] = out[4 * t + r];
}
