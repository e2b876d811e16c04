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

/* R weight rows against NT activation rows (both constants, at most
 * SL_DOT_ROWS and SL_DOT_TILE, after inlining): each block's codes are
 * decoded once for every activation row, and each activation block's sum
 * once for every weight row. Each (row, token) pair keeps its own
 * accumulator and goes through exactly the one-row dot product's float
 * operations, so every result is the bits vec_dot gives. shift >= 0: the
 * codes are unsigned, code - 2^shift the value, and the offset comes back
 * out of each lane's integer sum as sum(y) << shift (the same integers as
 * the signed codes give); shift < 0 (Q8_0 without VNNI): signed codes meet
 * y as |q| and y with q's sign. */
__attribute__((always_inline)) TARGET static inline void
SFX(rows)(codes32_fn codes, size_t bytes, bool offset, int shift, const int R, const int NT, int64_t n, float *y,
          size_t ys, const void *w, size_t ws, const void *xq, size_t xs)
{
	__m256 acc[SL_DOT_ROWS][SL_DOT_TILE];
	float summ[SL_DOT_ROWS][SL_DOT_TILE];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int t = 0; t < NT; t++) {
			acc[r][t] = _mm256_setzero_ps();
			summ[r][t] = 0;
		}
	const __m256i ones = _mm256_set1_epi8(1);
	for (int64_t i = 0; i < n / SL_QK; i++) {
		__m256i q[SL_DOT_ROWS];
		float d[SL_DOT_ROWS], m[SL_DOT_ROWS];
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			const uint8_t *blk = (const uint8_t *)w + (size_t)r * ws + (size_t)i * bytes;
			/* R interleaved streams are more than the prefetcher follows */
			if (R > 1)
				_mm_prefetch((const char *)blk + 8 * bytes, _MM_HINT_T0);
			q[r] = codes(blk, &d[r], &m[r]);
		}
#pragma GCC unroll 4
		for (int t = 0; t < NT; t++) {
			const uint8_t *yt = (const uint8_t *)xq + (size_t)t * xs;
			const int8_t *yqs;
			float dy, sy = 0;
			if (offset) {
				const sl_block_q8_1 *b = (const sl_block_q8_1 *)yt + i;
				yqs = b->qs;
				dy = half(b->d);
				sy = half(b->s);
			} else {
				const sl_block_q8_0 *b = (const sl_block_q8_0 *)yt + i;
				yqs = b->qs;
				dy = half(b->d);
			}
			const __m256i yv = load32(yqs);
			__m256i corr = _mm256_setzero_si256();
			if (!offset && shift >= 0)
				corr = _mm256_sll_epi32(SFX(dot_u8)(ones, yv), _mm_cvtsi32_si128(shift));
#pragma GCC unroll 4
			for (int r = 0; r < R; r++) {
				__m256i dot;
				if (!offset && shift < 0)
					dot = SFX(dot_u8)(_mm256_sign_epi8(q[r], q[r]), _mm256_sign_epi8(yv, q[r]));
				else
					dot = _mm256_sub_epi32(SFX(dot_u8)(q[r], yv), corr);
				const float dt = d[r] * dy;
				if (offset)
					summ[r][t] += m[r] * sy;
				acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dt), _mm256_cvtepi32_ps(dot), acc[r][t]);
			}
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int t = 0; t < NT; t++)
			y[(size_t)t * ys + r] = hsum_ps(acc[r][t]) + summ[r][t];
}

#ifdef SL_LEGACY_VNNI_PASS
#define Q8_0_SHIFT 7 /* q + 128 as unsigned bytes: vpdpbusd does not saturate */
#define q8_0_ROWS_CODES q8_0_ucodes
#else
#define Q8_0_SHIFT (-1)
#define q8_0_ROWS_CODES q8_0_codes
#endif
#define q4_0_ROWS(R, N) SFX(rows)(q4_0_ucodes, sizeof(sl_block_q4_0), false, 3, R, N, n, y, ys, w, ws, xq, xs)
#define q4_1_ROWS(R, N) SFX(rows)(q4_1_codes, sizeof(sl_block_q4_1), true, 0, R, N, n, y, ys, w, ws, xq, xs)
#define q5_0_ROWS(R, N) SFX(rows)(q5_0_ucodes, sizeof(sl_block_q5_0), false, 4, R, N, n, y, ys, w, ws, xq, xs)
#define q5_1_ROWS(R, N) SFX(rows)(q5_1_codes, sizeof(sl_block_q5_1), true, 0, R, N, n, y, ys, w, ws, xq, xs)
#define q8_0_ROWS(R, N)                                                                                     \
	SFX(rows)(q8_0_ROWS_CODES, sizeof(sl_block_q8_0), false, Q8_0_SHIFT, R, N, n, y, ys, w, ws, xq, xs)

/* The one-row dot product, one row against up to SL_DOT_TILE tokens, and
 * up to SL_DOT_ROWS rows against as many: the same kernel throughout. */
#define LEGACY_ROWS(t)                                                                                  \
	TARGET static void SFX(t##_dot)(int64_t n, float *y, const void *w, const void *xq)               \
	{                                                                                               \
		const size_t ys = 0, ws = 0, xs = 0;                                                    \
		t##_ROWS(1, 1);                                                                         \
	}                                                                                               \
	TARGET static void SFX(t##_tile)(int64_t n, int nt, float *y, size_t ys, const void *w,           \
	                                 const void *xq, size_t xs)                                       \
	{                                                                                               \
		const size_t ws = 0;                                                                    \
		ROWS_SWITCH_NT(t##_ROWS, 1)                                                             \
	}                                                                                               \
	TARGET static void SFX(t##_rows)(int64_t n, int nr, int nt, float *y, size_t ys, const void *w,    \
	                                 size_t ws, const void *xq, size_t xs)                            \
	{                                                                                               \
		ROWS_SWITCH(t##_ROWS)                                                                   \
	}

LEGACY_ROWS(q4_0)
LEGACY_ROWS(q4_1)
LEGACY_ROWS(q5_0)
LEGACY_ROWS(q5_1)
LEGACY_ROWS(q8_0)
#undef Q8_0_SHIFT
#undef q8_0_ROWS_CODES

TARGET static sl_vec_dot_rows_fn SFX(legacy_rows)(int type)
{
	switch (type) {
	case SL_DT_Q4_0: return SFX(q4_0_rows);
	case SL_DT_Q4_1: return SFX(q4_1_rows);
	case SL_DT_Q5_0: return SFX(q5_0_rows);
	case SL_DT_Q5_1: return SFX(q5_1_rows);
	case SL_DT_Q8_0: return SFX(q8_0_rows);
	default: return NULL;
	}
}

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
