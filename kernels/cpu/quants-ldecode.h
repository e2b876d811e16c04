/* The legacy formats' blocks decoded for the AVX2, AVX-512 VNNI and AMX
 * kernels (quants-avx2.c, quants-amx-legacy.c): a block's 32 codes, in
 * element order, as bytes. The includer defines the AVX2 target attribute
 * and load32() first. */
#ifndef SL_QUANTS_LDECODE_H
#define SL_QUANTS_LDECODE_H

/* The 32 codes of a block in element order: low nibbles of qs, then high.
 * The sixteen bytes are loaded into both halves at once, and each half
 * shifted by its own count. */
AVX2 static inline __m256i nibbles32(const uint8_t qs[16])
{
	const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
	return _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_set_epi32(4, 4, 4, 4, 0, 0, 0, 0)),
	                        _mm256_set1_epi8(0x0f));
}

/* 0xff in byte j when bit j of the little-endian 32-bit qh is set: byte j
 * gets a copy of qh's byte j/8, then keeps only bit j%8. */
AVX2 static inline __m256i bits32(const uint8_t qh[4])
{
	uint32_t h;
	memcpy(&h, qh, sizeof h);
	const __m256i spread =
	        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
	const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
	__m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), spread);
	return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* The codes of one block: unsigned, their offset either implied (Q4_0:
 * code - 8, Q5_0: code - 16, Q8_0 for VNNI: code - 128) or a minimum
 * (Q4_1, Q5_1 against Q8_1); or signed (Q8_0 for AVX2). Every legacy
 * block starts with its scale d, the _1 formats' minimum m after it. */
typedef __m256i (*ucodes_fn)(const uint8_t *blk);

AVX2 static inline __m256i q4_0_u(const uint8_t *blk)
{
	return nibbles32(((const sl_block_q4_0 *)blk)->qs);
}

AVX2 static inline __m256i q4_1_u(const uint8_t *blk)
{
	return nibbles32(((const sl_block_q4_1 *)blk)->qs);
}

AVX2 static inline __m256i q5_0_u(const uint8_t *blk)
{
	const sl_block_q5_0 *x = (const sl_block_q5_0 *)blk;
	return _mm256_or_si256(nibbles32(x->qs), _mm256_and_si256(bits32(x->qh), _mm256_set1_epi8(0x10)));
}

AVX2 static inline __m256i q5_1_u(const uint8_t *blk)
{
	const sl_block_q5_1 *x = (const sl_block_q5_1 *)blk;
	return _mm256_or_si256(nibbles32(x->qs), _mm256_and_si256(bits32(x->qh), _mm256_set1_epi8(0x10)));
}

AVX2 static inline __m256i q8_0_s(const uint8_t *blk)
{
	return load32(((const sl_block_q8_0 *)blk)->qs);
}

#endif
