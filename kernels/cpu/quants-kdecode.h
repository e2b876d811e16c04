/* The K formats' blocks decoded for the AVX2, AVX-512 VNNI and AMX kernels
 * (quants-avx2.c, quants-amx.c): the unsigned codes of every element, the
 * sub-blocks' scales and what the codes' offset costs against the
 * activations' bsums. The includer defines the AVX2 and VNNI target
 * attributes, half() and load32() first. */
#ifndef SL_QUANTS_KDECODE_H
#define SL_QUANTS_KDECODE_H

/* ---- K formats -------------------------------------------------------------
 * Every block is eight groups of 32 codes. Group k spans sub-blocks 2k and
 * 2k+1 of 16 elements (Q4_K/Q5_K repeat each 32-element scale twice). The
 * sixteen sub-block scales are widened to int16 once per block, in two
 * halves: half h holds scales 8h..8h+7 in both 128-bit lanes, so that group
 * k = 4h + j finds its pair with one in-lane shuffle. */
typedef struct {
	__m256i half[2];
} scales16;

AVX2 static inline scales16 widen_scales(__m128i sc8)
{
	const __m256i all = _mm256_cvtepi8_epi16(sc8);
	return (scales16){{_mm256_permute2x128_si256(all, all, 0x00),
	                   _mm256_permute2x128_si256(all, all, 0x11)}};
}

/* Group k's scales as int16 weights of its pairs of products: bytes 0-15
 * weighted by scale 2k, bytes 16-31 by scale 2k+1 (int16 2j of the low
 * lane, 2j+1 of the high). */
AVX2 static inline __m256i group_scales(const scales16 *sc, int k)
{
	const int j = k % 4;
	const __m256i pick =
	        _mm256_add_epi8(_mm256_set_m128i(_mm_set1_epi16(0x0302), _mm_set1_epi16(0x0100)),
	                        _mm256_set1_epi8((char)(4 * j)));
	return _mm256_shuffle_epi8(sc->half[k / 4], pick);
}

/* Group k's codes times its activations. */
AVX2 static inline __m256i group_dot(__m256i u, const int8_t *y, const scales16 *sc, int k)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, load32(y)), group_scales(sc, k));
}

/* sum_g w_g*bsum_g with the sixteen weights as bytes, in 8 int32 lanes. */
AVX2 static inline __m256i bsum_dot(__m128i w, const int16_t bsums[16])
{
	return _mm256_madd_epi16(_mm256_cvtepi8_epi16(w), load32(bsums));
}

/* Bit k of every byte of v, moved to bit `to`. */
AVX2 static inline __m256i bit_of(__m256i v, int k, int to)
{
	return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(v, k), _mm256_set1_epi8(1)),
	                         to);
}

/* A K block decoded once for every activation row it meets: the eight
 * groups' unsigned codes, the sixteen scales, and what the offset of the
 * codes costs against each row's bsums (bias: scales taken 2^shift times,
 * or a minimum per sub-block against dmin). */
typedef struct {
	__m256i u[8];
	scales16 sc;
	__m128i corr;   /* bytes weighting the bsums */
	int shift;      /* bias codes: corr << shift is subtracted; -1: corr are minimums */
	float d, dmin;
} kblock;

AVX2 static inline void q2_K_decode(const void *blk, kblock *b)
{
	const sl_block_q2_K *x = blk;
	const __m256i m3 = _mm256_set1_epi8(3);
	const __m128i m4 = _mm_set1_epi8(0x0f);
	const __m128i packed = _mm_loadu_si128((const __m128i *)x->scales);
	b->sc = widen_scales(_mm_and_si128(packed, m4));
	b->corr = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
	b->shift = -1;
	b->d = half(x->d);
	b->dmin = half(x->dmin);
#pragma GCC unroll 2
	for (int h = 0; h < 2; h++) {
		const __m256i q = load32(x->qs + 32 * h);
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++)
			b->u[4 * h + j] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
	}
}

/* Codes q + 4 are unsigned; the 4 comes back out as 4*sum(sc*bsum). */
AVX2 static inline void q3_K_decode(const void *blk, kblock *b)
{
	const sl_block_q3_K *x = blk;
	const __m256i m3 = _mm256_set1_epi8(3);
	uint64_t biased[2];
	sl_q3_K_scales(x->scales, biased);
	const __m128i sc = _mm_sub_epi8(_mm_set_epi64x((long long)biased[1], (long long)biased[0]),
	                                _mm_set1_epi8(32));
	b->sc = widen_scales(sc);
	b->corr = sc;
	b->shift = 2;
	b->d = half(x->d);
	b->dmin = 0;
	const __m256i hm = load32(x->hmask);
#pragma GCC unroll 2
	for (int h = 0; h < 2; h++) {
		const __m256i q = load32(x->qs + 32 * h);
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++)
			b->u[4 * h + j] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3),
			                                  bit_of(hm, 4 * h + j, 2));
	}
}

/* Q4_K and Q5_K differ only in the fifth bit; Q4_K passes qh = NULL. Each
 * 32-element scale and minimum is repeated for both of its 16-element
 * sub-blocks. */
__attribute__((always_inline)) AVX2 static inline void
q45_K_decode(uint16_t d, uint16_t dmin, const uint8_t scales[12], const uint8_t *qh, const uint8_t qs[128],
             kblock *b)
{
	uint64_t sc8, m8;
	sl_q4_K_scales(scales, &sc8, &m8);
	const __m128i sc = _mm_unpacklo_epi8(_mm_cvtsi64_si128((long long)sc8), _mm_cvtsi64_si128((long long)sc8));
	b->corr = _mm_unpacklo_epi8(_mm_cvtsi64_si128((long long)m8), _mm_cvtsi64_si128((long long)m8));
	b->sc = widen_scales(sc);
	b->shift = -1;
	b->d = half(d);
	b->dmin = half(dmin);
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	const __m256i hv = qh ? load32(qh) : _mm256_setzero_si256();
#pragma GCC unroll 4
	for (int c = 0; c < 4; c++) {
		const __m256i q = load32(qs + 32 * c);
		__m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
		if (qh) {
			lo = _mm256_or_si256(lo, bit_of(hv, 2 * c, 4));
			hi = _mm256_or_si256(hi, bit_of(hv, 2 * c + 1, 4));
		}
		b->u[2 * c] = lo;
		b->u[2 * c + 1] = hi;
	}
}

AVX2 static inline void q4_K_decode(const void *blk, kblock *b)
{
	const sl_block_q4_K *x = blk;
	q45_K_decode(x->d, x->dmin, x->scales, NULL, x->qs, b);
}

AVX2 static inline void q5_K_decode(const void *blk, kblock *b)
{
	const sl_block_q5_K *x = blk;
	q45_K_decode(x->d, x->dmin, x->scales, x->qh, x->qs, b);
}

/* Codes q + 32 are unsigned; the 32 comes back out as 32*sum(sc*bsum). */
AVX2 static inline void q6_K_decode(const void *blk, kblock *b)
{
	const sl_block_q6_K *x = blk;
	const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
	const __m128i sc = _mm_loadu_si128((const __m128i *)x->scales);
	b->sc = widen_scales(sc);
	b->corr = sc;
	b->shift = 5;
	b->d = half(x->d);
	b->dmin = 0;
#pragma GCC unroll 2
	for (int h = 0; h < 2; h++) {
		const __m256i ql[2] = {load32(x->ql + 64 * h), load32(x->ql + 64 * h + 32)};
		const __m256i qh = load32(x->qh + 32 * h);
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++) {
			__m256i lo = _mm256_and_si256(_mm256_srli_epi16(ql[j % 2], 4 * (j / 2)), m4);
			__m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), m3);
			b->u[4 * h + j] = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
		}
	}
}

typedef void (*kdecode_fn)(const void *blk, kblock *b);

/* A K block decoded for AVX-512 VNNI's 64-byte vectors: the eight groups
 * in four pairs, pair p holding the unsigned codes of groups 2p and 2p + 1
 * in its halves, and w[p] their four sub-blocks' scales as int16, one
 * per 128-bit lane (the weights of vpdpwssd's pairs of products); corr,
 * shift, d and dmin as kblock's. Half the instructions of kblock's groups
 * for the same integers. */
typedef struct {
	__m512i u[4], w[4];
	__m128i corr;
	int shift;
	float d, dmin;
} kblock2;

typedef void (*kdecode2_fn)(const void *blk, kblock2 *b);

/* The pairs' scales from the sixteen sub-block scales sc8 (int8). */
VNNI static inline void pair_scales(__m128i sc8, __m512i w[4])
{
	const __m512i all = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(sc8));
	/* lane l of pair p: sub-block 4p + l */
	const __m512i lane = _mm512_set_epi64(0x0003000300030003, 0x0003000300030003, 0x0002000200020002,
	                                      0x0002000200020002, 0x0001000100010001, 0x0001000100010001, 0, 0);
#pragma GCC unroll 4
	for (int p = 0; p < 4; p++)
		w[p] = _mm512_permutexvar_epi16(_mm512_add_epi16(lane, _mm512_set1_epi16((short)(4 * p))), all);
}

/* Q4_K and Q5_K as q45_K_decode, for AVX-512: pair c is chunk c's low
 * nibbles, then its high ones (and fifth bits 2c, 2c + 1). */
__attribute__((always_inline)) VNNI static inline void
q45_K_decode2(uint16_t d, uint16_t dmin, const uint8_t scales[12], const uint8_t *qh, const uint8_t qs[128],
              kblock2 *b)
{
	uint64_t sc8, m8;
	sl_q4_K_scales(scales, &sc8, &m8);
	pair_scales(_mm_unpacklo_epi8(_mm_cvtsi64_si128((long long)sc8), _mm_cvtsi64_si128((long long)sc8)), b->w);
	b->corr = _mm_unpacklo_epi8(_mm_cvtsi64_si128((long long)m8), _mm_cvtsi64_si128((long long)m8));
	b->shift = -1;
	b->d = half(d);
	b->dmin = half(dmin);
	const __m512i m4 = _mm512_set1_epi8(0x0f), nib = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
	const __m512i hv = qh ? _mm512_broadcast_i64x4(load32(qh)) : _mm512_setzero_si512();
#pragma GCC unroll 4
	for (int c = 0; c < 4; c++) {
		const __m512i q = _mm512_broadcast_i64x4(load32(qs + 32 * c));
		__m512i u = _mm512_and_si512(_mm512_srlv_epi64(q, nib), m4);
		if (qh) {
			/* bit 2c (low half) or 2c + 1 (high) of every byte, as 16 */
			const __m512i at = _mm512_set_epi64(2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c, 2 * c, 2 * c, 2 * c);
			const __m512i h = _mm512_slli_epi64(_mm512_srlv_epi64(hv, at), 4);
			u = _mm512_ternarylogic_epi64(h, _mm512_set1_epi8(0x10), u, 0xea); /* (h & 0x10) | u */
		}
		b->u[c] = u;
	}
}

VNNI static inline void q4_K_decode2(const void *blk, kblock2 *b)
{
	const sl_block_q4_K *x = blk;
	q45_K_decode2(x->d, x->dmin, x->scales, NULL, x->qs, b);
}

VNNI static inline void q5_K_decode2(const void *blk, kblock2 *b)
{
	const sl_block_q5_K *x = blk;
	q45_K_decode2(x->d, x->dmin, x->scales, x->qh, x->qs, b);
}

/* Q6_K as q6_K_decode, for AVX-512: half h's pairs 2h and 2h + 1 are its
 * 64 ql bytes' low nibbles, then their high ones, each with its two high
 * bits from qh (bits 0-1 and 2-3, then 4-5 and 6-7). */
VNNI static inline void q6_K_decode2(const void *blk, kblock2 *b)
{
	const sl_block_q6_K *x = blk;
	const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(0x30);
	const __m128i sc = _mm_loadu_si128((const __m128i *)x->scales);
	pair_scales(sc, b->w);
	b->corr = sc;
	b->shift = 5;
	b->d = half(x->d);
	b->dmin = 0;
#pragma GCC unroll 2
	for (int h = 0; h < 2; h++) {
		const __m512i ql = _mm512_loadu_si512(x->ql + 64 * h);
		const __m512i qh = _mm512_broadcast_i64x4(load32(x->qh + 32 * h));
#pragma GCC unroll 2
		for (int j = 0; j < 2; j++) {
			/* the high bits 4j + 2k of group 4h + 2j + k (k: the half) moved to bits 4-5 */
			const __m512i at = _mm512_set_epi64(4 * j + 2, 4 * j + 2, 4 * j + 2, 4 * j + 2, 4 * j, 4 * j, 4 * j, 4 * j);
			const __m512i hi = _mm512_slli_epi64(_mm512_srlv_epi64(qh, at), 4);
			const __m512i lo = _mm512_and_si512(j ? _mm512_srli_epi64(ql, 4) : ql, m4);
			b->u[2 * h + j] = _mm512_ternarylogic_epi64(hi, m3, lo, 0xea);
		}
	}
}


#endif
