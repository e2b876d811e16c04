/* The legacy formats' dot products against Q8_0/Q8_1 activations and
 * their tiles, included by quants-avx2.c once per instruction set: TARGET
 * is the target attribute, SFX(f) names this build's functions, and with
 * SL_LEGACY_VNNI_PASS defined the integer sums come from AVX-512 VNNI's
 * vpdpbusd instead of vpmaddubsw + vpmaddwd. The sums are the same
 * integers either way (no int16 saturation occurs, see below), so both
 * builds give the same bits. No include guard: read twice on purpose. */

/* Unsigned bytes u times signed bytes y, summed in fours into 8 int32 lanes.
 * No pair of products reaches the int16 saturation of maddubs: the codes are
 * at most 63 and the activations at most 127 in magnitude; signed 8-bit
 * codes meet y as |q| and y with q's sign (up to 128 * 127 * 2, still
 * inside int16). */
TARGET static inline __m256i SFX(dot_u8)(__m256i u, __m256i y)
{
#ifdef SL_LEGACY_VNNI_PASS
	return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, y);
#else
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
#endif
}

/* One weight row against NT activation rows (NT a constant 1..SL_DOT_TILE
 * after inlining): each block's codes are decoded once and meet every
 * row's block, and each row keeps its own accumulators in the one-row
 * order, so a result is the same bits however many rows share the call. */
__attribute__((always_inline)) TARGET static inline void
SFX(dot32)(codes32_fn codes, size_t bytes, bool offset, const int NT, int64_t n, float *s, size_t ss,
      const void *w, const void *xq, size_t xs)
{
	const uint8_t *p = w;
	__m256 acc[SL_DOT_TILE];
	float summ[SL_DOT_TILE];
#pragma GCC unroll 4
	for (int t = 0; t < NT; t++) {
		acc[t] = _mm256_setzero_ps();
		summ[t] = 0;
	}
	for (int64_t i = 0; i < n / SL_QK; i++, p += bytes) {
		float d, m;
		const __m256i q = codes(p, &d, &m);
		/* Signed codes: |q| meets y with q's sign moved onto it. */
		const __m256i qa = offset ? q : _mm256_sign_epi8(q, q);
#pragma GCC unroll 4
		for (int t = 0; t < NT; t++) {
			const uint8_t *yt = (const uint8_t *)xq + (size_t)t * xs;
			__m256i dot;
			float dt;
			if (offset) {
				const sl_block_q8_1 *y = (const sl_block_q8_1 *)yt + i;
				dot = SFX(dot_u8)(q, load32(y->qs));
				dt = d * half(y->d);
				summ[t] += m * half(y->s);
			} else {
				const sl_block_q8_0 *y = (const sl_block_q8_0 *)yt + i;
				dot = SFX(dot_u8)(qa, _mm256_sign_epi8(load32(y->qs), q));
				dt = d * half(y->d);
			}
			acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dt), _mm256_cvtepi32_ps(dot), acc[t]);
		}
	}
#pragma GCC unroll 4
	for (int t = 0; t < NT; t++)
		s[(size_t)t * ss] = hsum_ps(acc[t]) + summ[t];
}

LEGACY_DOT(q4_0, false)
LEGACY_DOT(q4_1, true)
LEGACY_DOT(q5_0, false)
LEGACY_DOT(q5_1, true)
LEGACY_DOT(q8_0, false)

TARGET static sl_vec_dot_tile_fn SFX(legacy_tile)(int type)
{
	switch (type) {
	case SL_DT_Q4_0: return SFX(q4_0_tile);
	case SL_DT_Q4_1: return SFX(q4_1_tile);
	case SL_DT_Q5_0: return SFX(q5_0_tile);
	case SL_DT_Q5_1: return SFX(q5_1_tile);
	case SL_DT_Q8_0: return SFX(q8_0_tile);
	default: return NULL;
	}
}

TARGET static sl_vec_dot_fn SFX(legacy_dot)(int type)
{
	switch (type) {
	case SL_DT_Q4_0: return SFX(q4_0_dot);
	case SL_DT_Q4_1: return SFX(q4_1_dot);
	case SL_DT_Q5_0: return SFX(q5_0_dot);
	case SL_DT_Q5_1: return SFX(q5_1_dot);
	case SL_DT_Q8_0: return SFX(q8_0_dot);
	default: return NULL;
	}
}
