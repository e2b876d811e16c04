/* The legacy formats' dot products against 8-bit activations and
 * their tiles, included by quants-avx2.c once per instruction set: TARGET
 * is the target attribute, SFX(f) names this build's functions, and with
 * SL_LEGACY_VNNI_PASS defined the integer sums come from AVX-512 VNNI's
 * vpdpbusd instead of vpmaddubsw + vpmaddwd. The sums are the same
 * integers either way (no int16 saturation occurs, see below), so both
 * builds give the same bits. quants-avx2.c instantiates the kernels for
 * each format after each inclusion. No include guard: read twice on
 * purpose. */

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

/* acc + dot_u8(u, y): VNNI adds into acc in the same instruction. */
TARGET static inline __m256i SFX(dot_u8_add)(__m256i acc, __m256i u, __m256i y)
{
#ifdef SL_LEGACY_VNNI_PASS
	return _mm256_dpbusd_epi32(acc, u, y);
#else
	return _mm256_add_epi32(acc, SFX(dot_u8)(u, y));
#endif
}

/* The integer sums of four vectors of lane sums, v0's in lane 0 and so
 * on (a block's sums of four rows, or of four tokens). hi16: lanes 4-7 of
 * each vector hold 16 times their share (the 4-bit codes' high nibbles
 * left in place, the offset's share prepared the same way), multiples of
 * 16 that an arithmetic shift takes back exactly. */
TARGET static inline __m128i SFX(hsum4)(__m256i v0, __m256i v1, __m256i v2, __m256i v3, bool hi16)
{
	const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
	/* lanes 0-3: the sums of lanes 0-3 of v0..v3; lanes 4-7: of lanes 4-7 */
	__m128i hi = _mm256_extracti128_si256(h, 1);
	if (hi16)
		hi = _mm_srai_epi32(hi, 4);
	return _mm_add_epi32(_mm256_castsi256_si128(h), hi);
}

/* One step of the float chain that defines the legacy dot product, for
 * four (row, token) pairs at once: acc + p * float(isum), a multiply and
 * an add (never fused), as the portable vec_dot32 does it; isum is the
 * block's exact integer sum, p = d * dy. */
TARGET static inline __m128 SFX(chain4)(__m128 acc, __m128 p, __m128i isum)
{
	return _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(isum), p));
}

/* A tile's NT tokens over nb blocks, prepared once for every weight row
 * of the call (see legacy_act). */
TARGET static void SFX(act_prep)(bool offset, int shift, bool hi16, int NT, int64_t nb, const void *xq, size_t xs,
                                 const legacy_act *a)
{
	const __m256i ones = _mm256_set1_epi8(1);
	const __m256i shifts = _mm256_add_epi32(_mm256_set1_epi32(shift), _mm256_set_epi32(4, 4, 4, 4, 0, 0, 0, 0));
	for (int64_t i = 0; i < nb; i++)
		for (int t = 0; t < NT; t++) {
			const size_t k = (size_t)i * NT + t;
			const __m256i yv =
			        load32(act_block((const uint8_t *)xq + (size_t)t * xs, i, offset, &a->dy[k], &a->sy[k]));
			a->act[k][0] = yv;
			if (!offset && shift >= 0)
				a->act[k][1] = _mm256_sub_epi32(_mm256_setzero_si256(),
				                                hi16 ? _mm256_sllv_epi32(SFX(dot_u8)(ones, yv), shifts)
				                                     : _mm256_sll_epi32(SFX(dot_u8)(ones, yv), _mm_cvtsi32_si128(shift)));
		}
}

/* Block at (byte offset) of each of R rows: the scale products d * dy of
 * every (row, token) pair into p[t][r], and (offset) the minima into m. */
__attribute__((always_inline)) TARGET static inline void
SFX(row_scales)(bool offset, const int R, const int NT, const uint8_t *const row[SL_DOT_ROWS], size_t at,
                const float *dy, float p[SL_DOT_TILE][4], float m[4])
{
	const __m128 d = halves4(row, at, R);
#pragma GCC unroll 4
	for (int t = 0; t < NT; t++)
		_mm_store_ps(p[t], _mm_mul_ps(d, _mm_set1_ps(dy[t])));
	if (offset)
		_mm_store_ps(m, halves4(row, at + 2, R));
}

/* The decoding kernel: R weight rows (row[r], the first nr of them real,
 * the others copies) against a tile of NT tokens (both constants, at most
 * SL_DOT_ROWS and SL_DOT_TILE after inlining) over nb blocks of prepared
 * activations, the sums into y[t * ys + r]. Each (row, token) pair goes
 * through the float chain that defines the legacy dot product (the
 * portable vec_dot32's): per block, acc = acc + (d * dy) * float(isum),
 * isum the block's exact integer sum, then (_1 formats) acc = acc + m * sy
 * in the same chain. The integer sums are exact in any order: shift >= 0:
 * the codes are unsigned, code - 2^shift the value, and the sums start
 * from the offset's prepared share; shift < 0 (signed 8-bit codes without
 * VNNI): they meet y as |q| and y with q's sign. A token's four rows'
 * sums are gathered into one vector, so the chains of four rows take one
 * multiply and one add. The scale products of a block are formed for all
 * pairs at once, a block or two before their use. */
/* Group i of the next rows (R rows' blocks i, R * bytes, from next) into
 * the first-level cache in one linear sweep (the R rows are R interleaved
 * streams, more than the hardware follows), and the group four ahead of
 * this call's block i into the second level: the far fetches keep memory
 * busy, the near ones then come from the second level (measured on one
 * thread: the 8-bit format decoding some 11% more tokens/s, the 4-bit one
 * some 3-4%). A prefetch never faults, wherever it points. */
__attribute__((always_inline)) TARGET static inline void SFX(fetch_group)(const uint8_t *next, int64_t i, int64_t nb,
                                                                       const int R, size_t bytes)
{
	for (size_t off = 0; off < R * bytes; off += 64) {
		_mm_prefetch((const char *)next + (size_t)i * R * bytes + off, _MM_HINT_T0);
		_mm_prefetch((const char *)next + (size_t)(3 * nb + i) * R * bytes + off, _MM_HINT_T1);
	}
}

__attribute__((always_inline)) TARGET static inline void
SFX(rows)(ucodes_fn codes, size_t bytes, bool offset, int shift, bool hi16, const int R, const int NT, int64_t nb,
          const uint8_t *const row[SL_DOT_ROWS], const uint8_t *next, const legacy_act *a, float *y, size_t ys,
          int nr)
{
	/* acc[t]: the chains of rows 0-3 against token t, one lane each */
	__m128 acc[SL_DOT_TILE];
#pragma GCC unroll 4
	for (int t = 0; t < SL_DOT_TILE; t++)
		acc[t] = _mm_setzero_ps();
#ifdef SL_LEGACY_VNNI_PASS
	/* The 4-bit codes with an implied offset (18-byte blocks: the scale,
	 * then 16 bytes of nibbles) for one token, four rows: two rows a
	 * 512-bit register, row r of a pair in the low half and row r + 1 in
	 * the high one, each half the very integer sums of the 256-bit kernel
	 * below, with half the integer dot products. */
	if (hi16 && !offset && shift >= 0 && bytes == 18 && NT == 1 && R == 4) {
		const __m512i lohi = _mm512_broadcast_i64x4(_mm256_set_m128i(_mm_set1_epi8((char)0xf0), _mm_set1_epi8(0x0f)));
		/* Block i's dot products: rows 0 and 1 in d[0], 2 and 3 in d[1]. */
#define Q4_PAIRS(i, d)                                                                                        \
	do {                                                                                                  \
		SFX(fetch_group)(next, (i), nb, R, bytes);                                                    \
		const size_t at = (size_t)(i) * bytes;                                                        \
		const __m512i yv = _mm512_broadcast_i64x4(a->act[i][0]), b = _mm512_broadcast_i64x4(a->act[i][1]); \
		_Pragma("GCC unroll 2") for (int h = 0; h < 2; h++)                                           \
		{                                                                                             \
			const __m512i q = _mm512_and_si512(                                                   \
			        _mm512_mask_broadcast_i32x4(                                                  \
			                _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(row[2 * h] + at + 2))), \
			                0xff00, _mm_loadu_si128((const __m128i *)(row[2 * h + 1] + at + 2))),  \
			        lohi);                                                                        \
			d[h] = _mm512_dpbusd_epi32(b, q, yv);                                                 \
		}                                                                                             \
	} while (0)
		/* 128-bit lanes 1 and 3 hold the high nibbles' sums: 16 times */
		const __m512i hi = _mm512_set_epi32(4, 4, 4, 4, 0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0);
		int64_t i = 0;
		/* Four blocks at a time: their 16 (row, block) sums gathered into
		 * one vector by a tree of in-lane interleaves and adds, then the
		 * chain's four steps, block by block. */
		for (; i + 4 <= nb; i += 4) {
			__m512i d[4][2], pr[4], qd[2];
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++) {
				Q4_PAIRS(i + k, d[k]);
				/* each 128-bit lane: d[k][0]'s 0+2, d[k][1]'s 0+2, then 1+3 */
				pr[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(d[k][0], d[k][1]), _mm512_unpackhi_epi32(d[k][0], d[k][1]));
			}
			/* qd[j]: per 128-bit lane, the lane's sums of block 2j's d[0] and
			 * d[1], then block 2j + 1's */
#pragma GCC unroll 2
			for (int j = 0; j < 2; j++)
				qd[j] = _mm512_srav_epi32(_mm512_add_epi32(_mm512_unpacklo_epi64(pr[2 * j], pr[2 * j + 1]),
				                                           _mm512_unpackhi_epi64(pr[2 * j], pr[2 * j + 1])),
				                          hi);
			/* 128-bit lane 0: rows 0, 2 of blocks 0, 1; lane 1: rows 1, 3;
			 * lanes 2 and 3 the same of blocks 2, 3 */
			const __m512i s4 = _mm512_add_epi32(_mm512_shuffle_i32x4(qd[0], qd[1], _MM_SHUFFLE(2, 0, 2, 0)),
			                                    _mm512_shuffle_i32x4(qd[0], qd[1], _MM_SHUFFLE(3, 1, 3, 1)));
			const __m512i isum = _mm512_permutexvar_epi32(
			        _mm512_set_epi32(15, 11, 14, 10, 13, 9, 12, 8, 7, 3, 6, 2, 5, 1, 4, 0), s4);
			/* the scale products d * dy of the 16 pairs, in isum's order */
			const __m256i h4 = _mm256_set_epi64x((long long)halves4_bits(row, (size_t)(i + 3) * bytes, R),
			                                     (long long)halves4_bits(row, (size_t)(i + 2) * bytes, R),
			                                     (long long)halves4_bits(row, (size_t)(i + 1) * bytes, R),
			                                     (long long)halves4_bits(row, (size_t)i * bytes, R));
			const __m512 p4 = _mm512_mul_ps(
			        _mm512_cvtph_ps(h4),
			        _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
			                              _mm512_castps128_ps512(_mm_loadu_ps(a->dy + i))));
			const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), p4);
			acc[0] = _mm_add_ps(acc[0], _mm512_castps512_ps128(f));
			acc[0] = _mm_add_ps(acc[0], _mm512_extractf32x4_ps(f, 1));
			acc[0] = _mm_add_ps(acc[0], _mm512_extractf32x4_ps(f, 2));
			acc[0] = _mm_add_ps(acc[0], _mm512_extractf32x4_ps(f, 3));
		}
		for (; i < nb; i++) {
			__m512i d[2];
			Q4_PAIRS(i, d);
			const __m128 pd = _mm_mul_ps(halves4(row, (size_t)i * bytes, R), _mm_set1_ps(a->dy[i]));
			/* Quarter k of each 128-bit lane: d[0]'s lanes 0+2, 1+3, then
			 * d[1]'s; then each lane's two sums of d[0] and d[1] in place. */
			__m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(d[0], d[1]), _mm512_unpackhi_epi64(d[0], d[1]));
			u = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, (_MM_PERM_ENUM)_MM_SHUFFLE(2, 3, 0, 1)));
			u = _mm512_srav_epi32(u, hi);
			u = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
			/* rows 0 and 2 in lanes 0 and 2, rows 1 and 3 in lanes 8 and 10 */
			acc[0] = SFX(chain4)(acc[0], pd,
			                     _mm512_castsi512_si128(_mm512_permutexvar_epi32(
			                             _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 2, 8, 0), u)));
		}
#undef Q4_PAIRS
		goto sums;
	}
#endif
	/* The scale products' lead: as far as it pays where the weights
	 * stream from memory (two blocks of the 4- and 5-bit formats, one of
	 * the 8-bit: leads that reach further than some 48 bytes ahead cost up
	 * to a fifth of the speed there, shorter ones leave the products in
	 * the store queue when the weights are cached; measured). */
	const int lead = bytes <= 24 ? 2 : 1;
	_Alignas(16) float p[LEGACY_RING][SL_DOT_TILE][4], m[LEGACY_RING][4];
	for (int64_t i = 0; i < nb && i < lead; i++)
		SFX(row_scales)(offset, R, NT, row, (size_t)i * bytes, a->dy + i * NT, p[i], m[i]);
	/* Block i's work, its scale products in slot k: per token, the R
	 * rows' integer sums gathered into one vector (rows past R count 0),
	 * then one step of each chain, and the minima's. */
#define LEGACY_BLOCK(i, k)                                                                                    \
	do {                                                                                                  \
		__m256i q[SL_DOT_ROWS];                                                                       \
		_Pragma("GCC unroll 4") for (int r = 0; r < R; r++) q[r] = codes(row[r] + (size_t)(i) * bytes); \
		_Pragma("GCC unroll 4") for (int t = 0; t < NT; t++)                                          \
		{                                                                                             \
			const __m256i yv = a->act[(i) * NT + t][0];                                           \
			__m256i dot[SL_DOT_ROWS];                                                             \
			_Pragma("GCC unroll 4") for (int r = 0; r < SL_DOT_ROWS; r++)                         \
			{                                                                                     \
				if (r >= R)                                                                   \
					dot[r] = _mm256_setzero_si256();                                      \
				else if (!offset && shift < 0)                                                \
					dot[r] = SFX(dot_u8)(_mm256_sign_epi8(q[r], q[r]), _mm256_sign_epi8(yv, q[r])); \
				else if (!offset)                                                             \
					dot[r] = SFX(dot_u8_add)(a->act[(i) * NT + t][1], q[r], yv);          \
				else                                                                          \
					dot[r] = SFX(dot_u8)(q[r], yv);                                       \
			}                                                                                     \
			acc[t] = SFX(chain4)(acc[t], _mm_load_ps(p[k][t]), SFX(hsum4)(dot[0], dot[1], dot[2], dot[3], hi16)); \
			if (offset)                                                                           \
				acc[t] = _mm_add_ps(acc[t], _mm_mul_ps(_mm_load_ps(m[k]), _mm_set1_ps(a->sy[(i) * NT + t]))); \
		}                                                                                             \
	} while (0)
	/* LEGACY_RING blocks a round, each forming the scale products of the
	 * block lead on into its slot; the next R rows are fetched meanwhile,
	 * R blocks' bytes a block (fetch_group). */
#define LEGACY_NEXT(i, slot)                                                                                  \
	do {                                                                                                  \
		if (R > 1)                                                                                    \
			SFX(fetch_group)(next, (i), nb, R, bytes);                                            \
		if ((i) + lead < nb)                                                                          \
			SFX(row_scales)(offset, R, NT, row, (size_t)((i) + lead) * bytes, a->dy + ((i) + lead) * NT, \
			                p[slot], m[slot]);                                                    \
	} while (0)
	int64_t i = 0;
	for (; i + LEGACY_RING <= nb; i += LEGACY_RING)
#pragma GCC unroll 4
		for (int k = 0; k < LEGACY_RING; k++) {
			LEGACY_BLOCK(i + k, k);
			LEGACY_NEXT(i + k, (k + lead) % LEGACY_RING);
		}
	for (; i < nb; i++) {
		LEGACY_BLOCK(i, i % LEGACY_RING);
		LEGACY_NEXT(i, (i + lead) % LEGACY_RING);
	}
#undef LEGACY_NEXT
#undef LEGACY_BLOCK
#ifdef SL_LEGACY_VNNI_PASS
sums:
#endif
#pragma GCC unroll 4
	for (int t = 0; t < NT; t++) {
		if (nr == 4) {
			_mm_storeu_ps(y + (size_t)t * ys, acc[t]);
			continue;
		}
		float out[4];
		_mm_storeu_ps(out, acc[t]);
		for (int r = 0; r < nr; r++)
			y[(size_t)t * ys + r] = out[r];
	}
}

/* nr weight rows against a tile of NT tokens, in groups of R =
 * LEGACY_GROUP(NT) rows (the last padded with copies of its last row), the
 * activations prepared once for all. */
__attribute__((always_inline)) TARGET static inline void
SFX(rows_run)(ucodes_fn codes, size_t bytes, bool offset, int shift, bool hi16, const int NT, int64_t n, int nr,
              float *y, size_t ys, const void *w, size_t ws, const void *xq, size_t xs, const legacy_act *a)
{
	const int R = LEGACY_GROUP(NT);
	const int64_t nb = n / SL_QK;
	SFX(act_prep)(offset, shift, hi16, NT, nb, xq, xs, a);
	for (int r0 = 0; r0 < nr; r0 += R) {
		const int gr = nr - r0 < R ? nr - r0 : R;
		const uint8_t *row[SL_DOT_ROWS];
		for (int r = 0; r < SL_DOT_ROWS; r++)
			row[r] = (const uint8_t *)w + (size_t)(r0 + (r < gr ? r : gr - 1)) * ws;
		/* the next group's rows; after the last, the rows that follow
		 * the call's (the next task's, as a rule: a prefetch never
		 * faults, wherever it points) */
		const uint8_t *next = (const uint8_t *)w + (size_t)(r0 + R) * ws;
		SFX(rows)(codes, bytes, offset, shift, hi16, R, NT, nb, row, next, a, y + r0, ys, gr);
	}
}

/* A block's sixteen scale products of a tile, p[4t + r] = d[4t + r] * dy[t]
 * (d holds the four rows' scales once per token). */
TARGET static inline void SFX(scale_products)(float *p, const float *d, const float *dy)
{
#ifdef SL_LEGACY_VNNI_PASS
	const __m512 y = _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
	                                       _mm512_castps128_ps512(_mm_loadu_ps(dy)));
	_mm512_store_ps(p, _mm512_mul_ps(_mm512_load_ps(d), y));
#else
	const __m256 y = _mm256_castps128_ps256(_mm_loadu_ps(dy));
	_mm256_store_ps(p, _mm256_mul_ps(_mm256_load_ps(d), _mm256_permutevar8x32_ps(y, _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0))));
	_mm256_store_ps(p + 8, _mm256_mul_ps(_mm256_load_ps(d + 8), _mm256_permutevar8x32_ps(y, _mm256_set_epi32(3, 3, 3, 3, 2, 2, 2, 2))));
#endif
}

/* The gemm: nr weight rows (any number) against nt tokens (any number) in
 * one call, the bits SFX(rows) gives each (row, token) pair, with the
 * work that rows repeats for every tile done once. Tokens go in chunks
 * of LEGACY_CHUNK whose per-block inputs are prepared once for all rows
 * (codes and the offset's share side by side, tile by tile, to be read
 * as one stream; scales as floats), and the rows in groups of four
 * decoded once for all of the chunk's tokens (unsigned codes, scales and
 * minima as floats). A tile of four rows by four tokens then takes, per
 * block, sixteen integer dot products gathered into two vectors of eight
 * block sums (four rows of two tokens), and for each one conversion, one
 * multiply by the scale products d * dy (formed for the whole tile
 * beforehand) and one add: the chains' steps for eight pairs at once.
 * Rows and tokens short of a full tile are padded with copies and their
 * results dropped. */
__attribute__((always_inline)) TARGET static inline void
SFX(gemm_tile)(bool offset, int shift, int64_t nb, int nr, int nt, float *y, size_t ys, const legacy_scratch *s,
               int tile)
{
	/* The scale products, [block][token][row]: the same d * dy as rows,
	 * formed LEGACY_AHEAD blocks ahead of their use. */
	const float *dy = s->dy + (size_t)tile * nb * 4;
	for (int64_t i = 0; i < nb && i < LEGACY_AHEAD; i++)
		SFX(scale_products)(s->p + i * 16, s->d + i * 16, dy + i * 4);
	/* acc[u]: rows 0-3 of token 2u in lanes 0-3, of token 2u + 1 in 4-7 */
	__m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
	const bool based = !offset && shift >= 0;
	const __m256i *act = s->act + (size_t)tile * nb * (based ? 8 : 4);
	const float *sy = s->sy + (size_t)tile * nb * 4;
	for (int64_t i = 0; i < nb; i++) {
		if (i + LEGACY_AHEAD < nb)
			SFX(scale_products)(s->p + (i + LEGACY_AHEAD) * 16, s->d + (i + LEGACY_AHEAD) * 16,
			                    dy + (i + LEGACY_AHEAD) * 4);
		const __m256i *q = s->codes + i * 4;
		const float *p = s->p + i * 16;
#pragma GCC unroll 2
		for (int u = 0; u < 2; u++) {
			__m256i dot[8];
#pragma GCC unroll 2
			for (int k = 0; k < 2; k++) {
				const int t = 2 * u + k;
				const __m256i yv = based ? act[(i * 4 + t) * 2] : act[i * 4 + t];
				const __m256i b = based ? act[(i * 4 + t) * 2 + 1] : _mm256_setzero_si256();
#pragma GCC unroll 4
				for (int r = 0; r < 4; r++)
					dot[4 * k + r] = !offset && shift < 0
					                         ? SFX(dot_u8)(_mm256_sign_epi8(q[r], q[r]), _mm256_sign_epi8(yv, q[r]))
					                         : SFX(dot_u8_add)(b, q[r], yv);
			}
			acc[u] = _mm256_add_ps(acc[u], _mm256_mul_ps(_mm256_cvtepi32_ps(hsum8_epi32(dot)), _mm256_load_ps(p + 8 * u)));
			if (offset) {
				/* m * sy, the four rows' minima against each token's sy */
				const __m256 m = _mm256_broadcast_ps((const __m128 *)(s->m + i * 4));
				const __m256 syv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sy + i * 4)),
				                                            _mm256_set_epi32(2 * u + 1, 2 * u + 1, 2 * u + 1, 2 * u + 1,
				                                                             2 * u, 2 * u, 2 * u, 2 * u));
				acc[u] = _mm256_add_ps(acc[u], _mm256_mul_ps(m, syv));
			}
		}
	}
#pragma GCC unroll 2
	for (int u = 0; u < 2; u++) {
		const int t = 2 * u;
		if (t >= nt)
			break;
		if (nr == 4 && t + 1 < nt) {
			_mm_storeu_ps(y + (size_t)t * ys, _mm256_castps256_ps128(acc[u]));
			_mm_storeu_ps(y + (size_t)(t + 1) * ys, _mm256_extractf128_ps(acc[u], 1));
			continue;
		}
		float out[8];
		_mm256_storeu_ps(out, acc[u]);
		for (int k = 0; k < 2 && t + k < nt; k++)
			for (int r = 0; r < nr; r++)
				y[(size_t)(t + k) * ys + r] = out[4 * k + r];
	}
}

__attribute__((always_inline)) TARGET static inline void
SFX(gemm)(codes32_fn codes, size_t wbytes, bool offset, int shift, legacy_tile_fn tile_fn, int64_t n, int nr, int nt,
          float *y, size_t ys, const void *w, size_t ws, const void *xq, size_t xs, legacy_scratch *s)
{
	const int64_t nb = n / SL_QK;
	const bool based = !offset && shift >= 0;
	const __m256i ones = _mm256_set1_epi8(1);
	for (int t0 = 0; t0 < nt; t0 += LEGACY_CHUNK) {
		const int tc = nt - t0 < LEGACY_CHUNK ? nt - t0 : LEGACY_CHUNK;
		const int tiles = (tc + 3) / 4;
		/* The chunk's tokens, the last tile padded with copies of the
		 * last token: [tile][block][token]. */
		for (int k = 0; k < tiles * 4; k++) {
			const uint8_t *row = (const uint8_t *)xq + (size_t)(t0 + (k < tc ? k : tc - 1)) * xs;
			const size_t at = (size_t)(k / 4) * nb * 4 + k % 4;
			for (int64_t i = 0; i < nb; i++) {
				float dy, sy;
				const __m256i yv = load32(act_block(row, i, offset, &dy, &sy));
				s->dy[at + (size_t)i * 4] = dy;
				s->sy[at + (size_t)i * 4] = sy;
				if (based) {
					s->act[(at + (size_t)i * 4) * 2] = yv;
					s->act[(at + (size_t)i * 4) * 2 + 1] = _mm256_sub_epi32(
					        _mm256_setzero_si256(),
					        _mm256_sll_epi32(SFX(dot_u8)(ones, yv), _mm_cvtsi32_si128(shift)));
				} else {
					s->act[at + (size_t)i * 4] = yv;
				}
			}
		}
		for (int r0 = 0; r0 < nr; r0 += 4) {
			const int R = nr - r0 < 4 ? nr - r0 : 4;
			for (int64_t i = 0; i < nb; i++)
#pragma GCC unroll 4
				for (int r = 0; r < 4; r++) {
					const uint8_t *blk = (const uint8_t *)w + (size_t)(r0 + (r < R ? r : R - 1)) * ws + (size_t)i * wbytes;
					float d;
					s->codes[i * 4 + r] = codes(blk, &d, &s->m[i * 4 + r]);
					for (int k = 0; k < 4; k++)
						s->d[i * 16 + k * 4 + r] = d;
				}
			/* The next group's rows, fetched while this one's tiles run. */
			for (int r = r0 + 4; r < nr && r < r0 + 8; r++)
				for (size_t off = 0; off < (size_t)nb * wbytes; off += 64)
					_mm_prefetch((const char *)w + (size_t)r * ws + off, _MM_HINT_T0);
			for (int k = 0; k < tiles; k++)
				tile_fn(nb, R, tc - k * 4 < 4 ? tc - k * 4 : 4, y + (size_t)(t0 + k * 4) * ys + r0, ys, s, k);
		}
	}
}
