/* AVX2 dot products of the GGML block formats against quantized activations.
 * Every function carries its own target attribute, so this file compiles in
 * a plain x86-64 build; sl_quants_vec_dot_avx2 hands them out only when the
 * CPU has AVX2, FMA and F16C. The K formats produce exactly the portable
 * results (the same integer sums, then sl_q_K_block_dot), and so do the
 * legacy formats (each block's exact integer sum, then quants.c's
 * vec_dot32 float chain, several rows' steps in one vector). */
/* No fused multiply-adds but the ones written out: the scalar step the K
 * formats share with the portable code (sl_q_K_block_dot) must round as it
 * does there. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "cpu.h"
#include "quants.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))

AVX2 static inline float half(uint16_t h)
{
	return _cvtsh_ss(h);
}

AVX2 static inline int32_t hsum_epi32(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
	return _mm_cvtsi128_si32(s);
}

/* The horizontal sums of eight vectors, v[i]'s in lane i. */
AVX2 static inline __m256i hsum8_epi32(const __m256i v[8])
{
	const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
	const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
	return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

AVX2 static inline __m256i load32(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/* ---- legacy formats ------------------------------------------------------- */

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

/* The 4-bit codes for VNNI: the low nibbles, then the high ones left in
 * place, 16 times the code (at most 240: vpdpbusd takes any unsigned byte,
 * where vpmaddubsw's pairs could saturate). The decoding kernel takes the
 * 16 out of its accumulators' high halves exactly (see quants-legacy.h). */
AVX2 static inline __m256i nibbles32x16(const uint8_t qs[16])
{
	const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
	return _mm256_and_si256(v, _mm256_set_m128i(_mm_set1_epi8((char)0xf0), _mm_set1_epi8(0x0f)));
}

AVX2 static inline __m256i q4_0_u16(const uint8_t *blk)
{
	return nibbles32x16(((const sl_block_q4_0 *)blk)->qs);
}

AVX2 static inline __m256i q4_1_u16(const uint8_t *blk)
{
	return nibbles32x16(((const sl_block_q4_1 *)blk)->qs);
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

/* q + 128 as unsigned bytes (for VNNI, whose sums do not saturate). */
AVX2 static inline __m256i q8_0_u(const uint8_t *blk)
{
	return _mm256_xor_si256(q8_0_s(blk), _mm256_set1_epi8((char)0x80));
}

/* A block's codes with its scale in *d and minimum (0 where it has none)
 * in *m, as the gemm decodes them. */
typedef __m256i (*codes32_fn)(const void *blk, float *d, float *m);

#define CODES32(name, u, has_min)                                                    \
	AVX2 static inline __m256i name(const void *blk, float *d, float *m)            \
	{                                                                            \
		const uint16_t *h = blk;                                             \
		*d = half(h[0]);                                                     \
		*m = has_min ? half(h[1]) : 0;                                       \
		return u(blk);                                                       \
	}
CODES32(q4_0_ucodes, q4_0_u, false)
CODES32(q4_1_codes, q4_1_u, true)
CODES32(q5_0_ucodes, q5_0_u, false)
CODES32(q5_1_codes, q5_1_u, true)
CODES32(q8_0_codes, q8_0_s, false)
CODES32(q8_0_ucodes, q8_0_u, false)

/* The halves at byte offset at of R blocks, one per row (row[r]), as
 * floats in lanes 0..R-1: gathered in a general register, converted at
 * once. */
__attribute__((always_inline)) static inline uint64_t halves4_bits(const uint8_t *const row[4], size_t at, const int R)
{
	uint64_t h = 0;
#pragma GCC unroll 4
	for (int r = 0; r < R; r++) {
		uint16_t v;
		memcpy(&v, row[r] + at, sizeof v);
		h |= (uint64_t)v << (16 * r);
	}
	return h;
}

__attribute__((always_inline)) AVX2 static inline __m128 halves4(const uint8_t *const row[4], size_t at, const int R)
{
	return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)halves4_bits(row, at, R)));
}

/* Dispatch on the number of tokens (nt) of a tile. */
#define TILE_SWITCH(call)                      \
	switch (nt) {                          \
	case 1: call(1); break;                \
	case 2: call(2); break;                \
	case 3: call(3); break;                \
	default: call(SL_DOT_TILE); break;     \
	}
_Static_assert(SL_DOT_TILE == 4, "the switches cover tiles of 1 to 4 tokens");

/* The decoding kernel decodes LEGACY_GROUP(NT) weight rows together for NT
 * tokens: four rows by four tokens is sixteen vectors of integer sums a
 * block, what AVX-512's 32 registers hold; AVX2's 16 take two rows for
 * three or four tokens. */
_Static_assert(SL_DOT_ROWS == 4, "the legacy rows go in groups of at most 4");

/* Block i of a row of activations, Q8_1 (offset) or Q8_0: its codes, its
 * scale in *dy and (Q8_1) the scaled sum of its codes in *sy. */
AVX2 static inline const int8_t *act_block(const uint8_t *row, int64_t i, bool offset, float *dy, float *sy)
{
	if (offset) {
		const sl_block_q8_1 *b = (const sl_block_q8_1 *)row + i;
		*dy = half(b->d);
		*sy = half(b->s);
		return b->qs;
	}
	const sl_block_q8_0 *b = (const sl_block_q8_0 *)row + i;
	*dy = half(b->d);
	*sy = 0;
	return b->qs;
}

/* Tokens one legacy gemm pass prepares at once (quants-legacy.h): their
 * blocks' offset shares and scales, some tens of KiB, stay in the
 * second-level cache while every row of the call meets them. */
#define LEGACY_CHUNK 64
/* Blocks ahead of its use that a tile's scale product is formed, so that
 * it has left the store queue before it is read. */
#define LEGACY_AHEAD 4
/* The decoding kernel's scale products, formed a block or two ahead of
 * their use in a ring of this many slots (a round of its unrolled loop). */
#define LEGACY_RING 4

/* Blocks of a row whose activations the decoding kernel (quants-legacy.h's
 * rows) prepares on the stack (some 36 KiB); longer rows take the heap. */
#define LEGACY_ROWS_BLOCKS 128

/* A tile of tokens prepared for the decoding kernel, [block][token]: the
 * codes and the offset's share of the integer sums, negated (where the
 * format has one); the scales dy and the scaled sums sy (Q8_1). */
typedef struct {
	__m256i (*act)[2];
	float *dy, *sy;
} legacy_act;

typedef struct {
	__m256i act[LEGACY_ROWS_BLOCKS * SL_DOT_TILE][2];
	float dy[LEGACY_ROWS_BLOCKS * SL_DOT_TILE], sy[LEGACY_ROWS_BLOCKS * SL_DOT_TILE];
} legacy_act_stack;

/* Room for the activations of rows of nb blocks: on the stack (*st) where
 * they fit, else from the heap (*heap, to be freed; a few hundred KiB at
 * most for the widest models, without which there is no way on, as for
 * ops.c's quantized activations). */
static legacy_act legacy_act_room(legacy_act_stack *st, int64_t nb, void **heap)
{
	*heap = NULL;
	if (nb <= LEGACY_ROWS_BLOCKS)
		return (legacy_act){st->act, st->dy, st->sy};
	const size_t k = (size_t)nb * SL_DOT_TILE;
	char *m = aligned_alloc(32, k * (2 * sizeof(__m256i) + 2 * sizeof(float)));
	if (!m)
		abort();
	*heap = m;
	return (legacy_act){(__m256i(*)[2])m, (float *)(m + k * 2 * sizeof(__m256i)),
	                    (float *)(m + k * (2 * sizeof(__m256i) + sizeof(float)))};
}

/* The legacy gemm's working memory: a group of four rows decoded
 * ([block][row]: codes, minima, and the scales, each four times), a chunk
 * of tokens prepared ([tile][block][token]: the codes, each followed by
 * the offset's share of the integer sums, negated, where the format has
 * one; the scales dy; the scaled sums sy), and one tile's scale products
 * ([block][row][token]). */
typedef struct {
	__m256i *codes, *act;
	float *d, *m, *dy, *sy, *p;
	void *mem;
} legacy_scratch;

/* One tile of the legacy gemm, a function of its own: inlined into the
 * loops around it, it would lose registers to their hoisted constants. */
typedef void (*legacy_tile_fn)(int64_t nb, int nr, int nt, float *y, size_t ys, const legacy_scratch *s, int tile);

static bool legacy_scratch_alloc(legacy_scratch *s, int64_t nb)
{
	const size_t b = (size_t)nb, c = LEGACY_CHUNK;
	const size_t sizes[] = {b * 4 * 32, c * b * 64, b * 64, b * 16, c * b * 4, c * b * 4, b * 64};
	size_t total = 0;
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
		total += (sizes[k] + 63) / 64 * 64;
	char *mem = aligned_alloc(64, total);
	if (!mem)
		return false;
	void *part[sizeof sizes / sizeof *sizes];
	for (size_t k = 0, off = 0; k < sizeof sizes / sizeof *sizes; k++) {
		part[k] = mem + off;
		off += (sizes[k] + 63) / 64 * 64;
	}
	*s = (legacy_scratch){part[0], part[1], part[2], part[3], part[4], part[5], part[6], mem};
	return true;
}

#define q4_0_RUN(N) SFX(rows_run)(Q4_0_U, sizeof(sl_block_q4_0), false, 3, HI16, N, n, nr, y, ys, w, ws, xq, xs, &a)
#define q4_1_RUN(N) SFX(rows_run)(Q4_1_U, sizeof(sl_block_q4_1), true, 0, HI16, N, n, nr, y, ys, w, ws, xq, xs, &a)
#define q5_0_RUN(N) SFX(rows_run)(q5_0_u, sizeof(sl_block_q5_0), false, 4, false, N, n, nr, y, ys, w, ws, xq, xs, &a)
#define q5_1_RUN(N) SFX(rows_run)(q5_1_u, sizeof(sl_block_q5_1), true, 0, false, N, n, nr, y, ys, w, ws, xq, xs, &a)
#define q8_0_RUN(N) SFX(rows_run)(Q8_0_U, sizeof(sl_block_q8_0), false, Q8_0_SHIFT, false, N, n, nr, y, ys, w, ws, xq, xs, &a)
#define q4_0_GTILE SFX(gemm_tile)(false, 3, nb, nr, nt, y, ys, s, tile)
#define q4_0_GEMM SFX(gemm)(q4_0_ucodes, sizeof(sl_block_q4_0), false, 3, SFX(q4_0_gtile), n, nr, nt, y, ys, w, ws, xq, xs, &s)
#define q4_1_GTILE SFX(gemm_tile)(true, 0, nb, nr, nt, y, ys, s, tile)
#define q4_1_GEMM SFX(gemm)(q4_1_codes, sizeof(sl_block_q4_1), true, 0, SFX(q4_1_gtile), n, nr, nt, y, ys, w, ws, xq, xs, &s)
#define q5_0_GTILE SFX(gemm_tile)(false, 4, nb, nr, nt, y, ys, s, tile)
#define q5_0_GEMM SFX(gemm)(q5_0_ucodes, sizeof(sl_block_q5_0), false, 4, SFX(q5_0_gtile), n, nr, nt, y, ys, w, ws, xq, xs, &s)
#define q5_1_GTILE SFX(gemm_tile)(true, 0, nb, nr, nt, y, ys, s, tile)
#define q5_1_GEMM SFX(gemm)(q5_1_codes, sizeof(sl_block_q5_1), true, 0, SFX(q5_1_gtile), n, nr, nt, y, ys, w, ws, xq, xs, &s)
#define q8_0_GTILE SFX(gemm_tile)(false, Q8_0_SHIFT, nb, nr, nt, y, ys, s, tile)
#define q8_0_GEMM SFX(gemm)(Q8_0_CODES, sizeof(sl_block_q8_0), false, Q8_0_SHIFT, SFX(q8_0_gtile), n, nr, nt, y, ys, w, ws, xq, xs, &s)

/* Any number of weight rows against any number of tokens, SL_DOT_TILE
 * tokens at a time; the one-row dot product and the one-row tile are its
 * cases. */
#define LEGACY_ROWS(t)                                                                                  \
	TARGET static void SFX(t##_rows)(int64_t n, int nr, int nt, float *y, size_t ys, const void *w,    \
	                                 size_t ws, const void *xq, size_t xs)                            \
	{                                                                                               \
		legacy_act_stack st;                                                                    \
		void *heap;                                                                             \
		const legacy_act a = legacy_act_room(&st, n / SL_QK, &heap);                             \
		for (; nt > 0; nt -= SL_DOT_TILE) {                                                     \
			switch (nt) {                                                                   \
			case 1: t##_RUN(1); break;                                                      \
			case 2: t##_RUN(2); break;                                                      \
			case 3: t##_RUN(3); break;                                                      \
			default: t##_RUN(SL_DOT_TILE); break;                                           \
			}                                                                               \
			y += SL_DOT_TILE * ys;                                                          \
			xq = (const uint8_t *)xq + SL_DOT_TILE * xs;                                    \
		}                                                                                       \
		free(heap);                                                                             \
	}                                                                                               \
	TARGET static void SFX(t##_dot)(int64_t n, float *y, const void *w, const void *xq)               \
	{                                                                                               \
		SFX(t##_rows)(n, 1, 1, y, 0, w, 0, xq, 0);                                              \
	}                                                                                               \
	TARGET static void SFX(t##_tile)(int64_t n, int nt, float *y, size_t ys, const void *w,           \
	                                 const void *xq, size_t xs)                                       \
	{                                                                                               \
		SFX(t##_rows)(n, 1, nt, y, ys, w, 0, xq, xs);                                           \
	}                                                                                               \
	__attribute__((noinline)) TARGET static void SFX(t##_gtile)(int64_t nb, int nr, int nt, float *y,  \
	                                                          size_t ys, const legacy_scratch *s,     \
	                                                          int tile)                              \
	{                                                                                               \
		t##_GTILE;                                                                              \
	}                                                                                               \
	TARGET static void SFX(t##_gemm)(int64_t n, int nr, int nt, float *y, size_t ys, const void *w,    \
	                                 size_t ws, const void *xq, size_t xs)                            \
	{                                                                                               \
		legacy_scratch s;                                                                       \
		if (!legacy_scratch_alloc(&s, n / SL_QK)) {                                             \
			SFX(t##_rows)(n, nr, nt, y, ys, w, ws, xq, xs);                                 \
			return;                                                                         \
		}                                                                                       \
		t##_GEMM;                                                                               \
		free(s.mem);                                                                            \
	}

/* Every legacy format's kernels, and which is whose: one getter per kind. */
#define LEGACY_CASES(kind)                                  \
	switch (type) {                                     \
	case SL_DT_Q4_0: return SFX(q4_0_##kind);           \
	case SL_DT_Q4_1: return SFX(q4_1_##kind);           \
	case SL_DT_Q5_0: return SFX(q5_0_##kind);           \
	case SL_DT_Q5_1: return SFX(q5_1_##kind);           \
	case SL_DT_Q8_0: return SFX(q8_0_##kind);           \
	default: return NULL;                               \
	}
#define LEGACY_KERNELS                                                                 \
	LEGACY_ROWS(q4_0)                                                              \
	LEGACY_ROWS(q4_1)                                                              \
	LEGACY_ROWS(q5_0)                                                              \
	LEGACY_ROWS(q5_1)                                                              \
	LEGACY_ROWS(q8_0)                                                              \
	TARGET static sl_vec_dot_rows_fn SFX(legacy_rows)(int type) { LEGACY_CASES(rows) } \
	TARGET static sl_vec_dot_rows_fn SFX(legacy_gemm)(int type) { LEGACY_CASES(gemm) } \
	TARGET static sl_vec_dot_tile_fn SFX(legacy_tile)(int type) { LEGACY_CASES(tile) } \
	TARGET static sl_vec_dot_fn SFX(legacy_dot)(int type) { LEGACY_CASES(dot) }

/* The legacy formats' kernels, built twice: for AVX2, and for AVX-512
 * VNNI, whose vpdpbusd forms the same integer sums in one instruction (so
 * both give the same bits). Q8_0's codes are signed for AVX2 (vpmaddubsw
 * would saturate q + 128) and q + 128 for VNNI; the 4-bit codes' high
 * nibbles stay in place (16 times the code) for VNNI, for the same reason
 * only there. */
#define TARGET AVX2
#define SFX(f) f
#define LEGACY_GROUP(NT) ((NT) > 2 ? 2 : 4)
#define Q4_0_U q4_0_u
#define Q4_1_U q4_1_u
#define HI16 false
#define Q8_0_CODES q8_0_codes
#define Q8_0_U q8_0_s
#define Q8_0_SHIFT (-1)
#include "quants-legacy.h"
LEGACY_KERNELS
#undef TARGET
#undef SFX
#undef LEGACY_GROUP
#undef Q4_0_U
#undef Q4_1_U
#undef HI16
#undef Q8_0_CODES
#undef Q8_0_U
#undef Q8_0_SHIFT

#define TARGET VNNI
#define SFX(f) f##_vnni
#define LEGACY_GROUP(NT) 4
#define Q4_0_U q4_0_u16
#define Q4_1_U q4_1_u16
#define HI16 true
#define Q8_0_CODES q8_0_ucodes
#define Q8_0_U q8_0_u
#define Q8_0_SHIFT 7
#define SL_LEGACY_VNNI_PASS
#include "quants-legacy.h"
LEGACY_KERNELS
#undef SL_LEGACY_VNNI_PASS
#undef TARGET
#undef SFX
#undef LEGACY_GROUP
#undef Q4_0_U
#undef Q4_1_U
#undef HI16
#undef Q8_0_CODES
#undef Q8_0_U
#undef Q8_0_SHIFT

/* ---- activations ----------------------------------------------------------
 * The portable quantizer's bytes: amax over the block (vmaxps returns its
 * second operand where the first is NaN, so NaN is left out as there), the
 * same scale and reciprocal, x*id rounded to nearest even, then clamped to
 * [-128, 127] with NaN going to -128 (again the second operand). */
AVX2 static inline int q8_act_block(const float *x, uint16_t *d16, int8_t qs[32], float *dscale)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 v[4], m = _mm256_setzero_ps();
	for (int k = 0; k < 4; k++) {
		v[k] = _mm256_loadu_ps(x + 8 * k);
		m = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), m);
	}
	__m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
	h = _mm_max_ps(h, _mm_movehl_ps(h, h));
	h = _mm_max_ss(h, _mm_movehdup_ps(h));
	const float amax = _mm_cvtss_f32(h);
	const float d = amax / 127.f;
	const float id = amax != 0.0f ? 127.f / amax : 0.0f;
	*d16 = sl_f32_to_f16(d);
	*dscale = d;
	__m256i q[4], sum = _mm256_setzero_si256();
	for (int k = 0; k < 4; k++) {
		__m256 r = _mm256_round_ps(_mm256_mul_ps(v[k], _mm256_set1_ps(id)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
		r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
		q[k] = _mm256_cvttps_epi32(r);
		sum = _mm256_add_epi32(sum, q[k]);
	}
	const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
	_mm256_storeu_si256((__m256i *)qs, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
	return hsum_epi32(sum);
}

AVX2 static void q8_0_act(const float *x, void *dst, int64_t n)
{
	sl_block_q8_0 *y = dst;
	float d;
	for (int64_t i = 0; i < n / SL_QK; i++)
		q8_act_block(x + i * SL_QK, &y[i].d, y[i].qs, &d);
}

AVX2 static void q8_1_act(const float *x, void *dst, int64_t n)
{
	sl_block_q8_1 *y = dst;
	for (int64_t i = 0; i < n / SL_QK; i++) {
		float d;
		int sum = q8_act_block(x + i * SL_QK, &y[i].d, y[i].qs, &d);
		y[i].s = sl_f32_to_f16((float)sum * d);
	}
}

/* Q8_K, the K formats' activations, as the portable quantizer writes them:
 * the scale from the first element of largest magnitude (NaN left out),
 * codes rounded by the same addition of 1.5 * 2^23 (a multiply and an add,
 * never fused), clamped at 127 and cut to their low byte as the portable
 * cast does (it matters only where the scale overflows), and the sixteen
 * sums of the codes. */
AVX2 static void q8_K_act(const float *x, void *dst, int64_t n)
{
	sl_block_q8_K *y = dst;
	const __m256 sign = _mm256_set1_ps(-0.0f), magic = _mm256_set1_ps(12582912.f);
	const __m256i mant = _mm256_set1_epi32(0x007fffff), mid = _mm256_set1_epi32(0x00400000),
	              top = _mm256_set1_epi32(127);
	for (int64_t i = 0; i < n / SL_QK_K; i++, x += SL_QK_K) {
		__m256 m = _mm256_setzero_ps();
		for (int k = 0; k < SL_QK_K / 8; k++)
			m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), m);
		__m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
		h = _mm_max_ps(h, _mm_movehl_ps(h, h));
		h = _mm_max_ss(h, _mm_movehdup_ps(h));
		const float amax = _mm_cvtss_f32(h);
		memset(&y[i], 0, sizeof y[i]);
		if (!amax)
			continue;
		float max = 0;
		for (int k = 0; k < SL_QK_K / 8; k++) {
			const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k));
			const int hit = _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(amax), _CMP_EQ_OQ));
			if (hit) {
				max = x[8 * k + __builtin_ctz((unsigned)hit)];
				break;
			}
		}
		const float iscale = -127.f / max;
		const __m256 is = _mm256_set1_ps(iscale);
		__m256i sums[SL_QK_K / 16];
		for (int c = 0; c < SL_QK_K / 32; c++) {
			__m256i q[4];
			for (int k = 0; k < 4; k++) {
				const __m256 f = _mm256_add_ps(_mm256_mul_ps(is, _mm256_loadu_ps(x + 32 * c + 8 * k)), magic);
				__m256i v = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(f), mant), mid);
				v = _mm256_min_epi32(v, top);
				q[k] = _mm256_srai_epi32(_mm256_slli_epi32(v, 24), 24);
			}
			sums[2 * c] = _mm256_add_epi32(q[0], q[1]);
			sums[2 * c + 1] = _mm256_add_epi32(q[2], q[3]);
			const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
			_mm256_storeu_si256((__m256i *)(y[i].qs + 32 * c),
			                    _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
		}
		const __m256i lo = hsum8_epi32(sums), hi = hsum8_epi32(sums + 8);
		_mm_storeu_si128((__m128i *)y[i].bsums,
		                 _mm_packs_epi32(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1)));
		_mm_storeu_si128((__m128i *)(y[i].bsums + 8),
		                 _mm_packs_epi32(_mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1)));
		y[i].d = 1 / iscale;
	}
}

sl_act_fn sl_quants_act_avx2(int type)
{
	if (!sl_cpu_avx2())
		return NULL;
	switch (type) {
	case SL_DT_Q8_0: return q8_0_act;
	case SL_DT_Q8_1: return q8_1_act;
	case SL_DT_Q8_K: return q8_K_act;
	default: return NULL;
	}
}

/* ---- K formats -------------------------------------------------------------
 * Every block is eight groups of 32 codes. Group k spans sub-blocks 2k and
 * 2k+1 of 16 elements (Q4_K/Q5_K repeat each 32-element scale twice). The
 * sixteen sub-block scales are widened to int16 once per block, in two
 * halves: half h holds scales 8h..8h+7 in both 128-bit lanes, so that group
 * k = 4h + j finds its pair with one in-lane shuffle. */
#include "quants-kblock.h"

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


/* One weight row against NT activation rows, each row's sum in the one-row
 * order: integer sums (exact, whatever their order) per block, then
 * sl_q_K_block_dot as the portable code does. */
__attribute__((always_inline)) AVX2 static inline void
dotK(kdecode_fn decode, size_t bytes, const int NT, int64_t n, float *s, size_t ss, const void *w,
     const void *xq, size_t xs)
{
	const uint8_t *p = w;
	float sum[SL_DOT_TILE];
#pragma GCC unroll 4
	for (int t = 0; t < NT; t++)
		sum[t] = 0;
	for (int64_t i = 0; i < n / SL_QK_K; i++, p += bytes) {
		kblock b;
		decode(p, &b);
#pragma GCC unroll 4
		for (int t = 0; t < NT; t++) {
			const sl_block_q8_K *y = (const sl_block_q8_K *)((const uint8_t *)xq + (size_t)t * xs) + i;
			const __m256i corr = bsum_dot(b.corr, y->bsums);
			__m256i acc = b.shift < 0 ? _mm256_setzero_si256()
			                          : _mm256_sub_epi32(_mm256_setzero_si256(),
			                                             _mm256_sll_epi32(corr, _mm_cvtsi32_si128(b.shift)));
#pragma GCC unroll 8
			for (int k = 0; k < 8; k++)
				acc = _mm256_add_epi32(acc, group_dot(b.u[k], y->qs + 32 * k, &b.sc, k));
			sum[t] += sl_q_K_block_dot(y->d, b.d, hsum_epi32(acc), b.dmin, b.shift < 0 ? hsum_epi32(corr) : 0);
		}
	}
#pragma GCC unroll 4
	for (int t = 0; t < NT; t++)
		s[(size_t)t * ss] = sum[t];
}

#define K_DOT(t)                                                                                 \
	AVX2 static void t##_dot(int64_t n, float *s, const void *w, const void *xq)             \
	{                                                                                        \
		dotK(t##_decode, sizeof(sl_block_##t), 1, n, s, 1, w, xq, 0);                    \
	}                                                                                        \
	AVX2 static void t##_tile(int64_t n, int nt, float *s, size_t ss, const void *w,         \
	                          const void *xq, size_t xs)                                     \
	{                                                                                        \
		TILE_SWITCH(t##_CALL)                                                            \
	}

#define q2_K_CALL(N) dotK(q2_K_decode, sizeof(sl_block_q2_K), N, n, s, ss, w, xq, xs)
#define q3_K_CALL(N) dotK(q3_K_decode, sizeof(sl_block_q3_K), N, n, s, ss, w, xq, xs)
#define q4_K_CALL(N) dotK(q4_K_decode, sizeof(sl_block_q4_K), N, n, s, ss, w, xq, xs)
#define q5_K_CALL(N) dotK(q5_K_decode, sizeof(sl_block_q5_K), N, n, s, ss, w, xq, xs)
#define q6_K_CALL(N) dotK(q6_K_decode, sizeof(sl_block_q6_K), N, n, s, ss, w, xq, xs)

K_DOT(q2_K)
K_DOT(q3_K)
K_DOT(q4_K)
K_DOT(q5_K)
K_DOT(q6_K)

#define q2_K_KROWS(R, N) SFX(krows)(q2_K_decode, sizeof(sl_block_q2_K), R, N, n, y, ys, w, ws, xq, xs)
#define q3_K_KROWS(R, N) SFX(krows)(q3_K_decode, sizeof(sl_block_q3_K), R, N, n, y, ys, w, ws, xq, xs)
#define q4_K_KROWS(R, N) SFX(krows)(q4_K_decode, sizeof(sl_block_q4_K), R, N, n, y, ys, w, ws, xq, xs)
#define q5_K_KROWS(R, N) SFX(krows)(q5_K_decode, sizeof(sl_block_q5_K), R, N, n, y, ys, w, ws, xq, xs)
#define q6_K_KROWS(R, N) SFX(krows)(q6_K_decode, sizeof(sl_block_q6_K), R, N, n, y, ys, w, ws, xq, xs)
#define q2_K_KROWS12(R, N) SFX(krows12)(q2_K_decode, K_DECODE2(q2_K), sizeof(sl_block_q2_K), R, N, n, y, ys, w, ws, xq, xs)
#define q3_K_KROWS12(R, N) SFX(krows12)(q3_K_decode, K_DECODE2(q3_K), sizeof(sl_block_q3_K), R, N, n, y, ys, w, ws, xq, xs)
#define q4_K_KROWS12(R, N) SFX(krows12)(q4_K_decode, K_DECODE2(q4_K), sizeof(sl_block_q4_K), R, N, n, y, ys, w, ws, xq, xs)
#define q5_K_KROWS12(R, N) SFX(krows12)(q5_K_decode, K_DECODE2(q5_K), sizeof(sl_block_q5_K), R, N, n, y, ys, w, ws, xq, xs)
#define q6_K_KROWS12(R, N) SFX(krows12)(q6_K_decode, K_DECODE2(q6_K), sizeof(sl_block_q6_K), R, N, n, y, ys, w, ws, xq, xs)

/* The K formats' rows come in 1 or 4 rows by 1, 2, 4 or 8 tokens (other
 * counts are split, see K_ROWS): few instances, since each is a large
 * inlined body and the file's compile time (above all under the
 * sanitizers) grows with their number. */
#define K_ROWS_NT(call, R)                            \
	switch (nt) {                                 \
	case 1: call##12(R, 1); break;                \
	case 2: call##12(R, 2); break;                \
	case 4: call(R, 4); break;                    \
	default: call(R, SL_DOT_ROWS_TOKENS); break;  \
	}
#define K_ROWS_SWITCH(call)                                  \
	switch (nr) {                                        \
	case 1: K_ROWS_NT(call, 1) break;                    \
	default: K_ROWS_NT(call, SL_DOT_ROWS) break;         \
	}

/* Each K format's rows, and which is whose: any number of rows, in
 * groups of SL_DOT_ROWS. Other shapes than the instances' go as the
 * largest instance that fits and the rest: every pair has the same bits
 * in any grouping. */
#define K_ROWS(t)                                                                                     \
	TARGET static void SFX(t##_krows)(int64_t n, int nr, int nt, float *y, size_t ys, const void *w, \
	                                  size_t ws, const void *xq, size_t xs)                         \
	{                                                                                             \
		if (nr > SL_DOT_ROWS) {                                                               \
			int r = 0;                                                                    \
			for (; r + SL_DOT_ROWS <= nr; r += SL_DOT_ROWS)                               \
				SFX(t##_krows)(n, SL_DOT_ROWS, nt, y + r, ys, (const uint8_t *)w + r * ws, ws, xq, xs); \
			if (r < nr)                                                                   \
				SFX(t##_krows)(n, nr - r, nt, y + r, ys, (const uint8_t *)w + r * ws, ws, xq, xs); \
			return;                                                                       \
		}                                                                                     \
		if (nr != 1 && nr != SL_DOT_ROWS) {                                                   \
			for (int r = 0; r < nr; r++)                                                  \
				SFX(t##_krows)(n, 1, nt, y + r, ys, (const uint8_t *)w + r * ws, ws, xq, xs); \
			return;                                                                       \
		}                                                                                     \
		if (nt != 1 && nt != 2 && nt != 4 && nt != SL_DOT_ROWS_TOKENS) {                      \
			const int head = nt > 4 ? 4 : 2;                                              \
			SFX(t##_krows)(n, nr, head, y, ys, w, ws, xq, xs);                              \
			SFX(t##_krows)(n, nr, nt - head, y + head * ys, ys, w, ws,                      \
			               (const uint8_t *)xq + head * xs, xs);                            \
			return;                                                                       \
		}                                                                                     \
		K_ROWS_SWITCH(t##_KROWS)                                                              \
	}
#define K_KERNELS                                                  \
	K_ROWS(q2_K)                                               \
	K_ROWS(q3_K)                                               \
	K_ROWS(q4_K)                                               \
	K_ROWS(q5_K)                                               \
	K_ROWS(q6_K)                                               \
	TARGET static sl_vec_dot_rows_fn SFX(k_rows)(int type)     \
	{                                                          \
		switch (type) {                                    \
		case SL_DT_Q2_K: return SFX(q2_K_krows);           \
		case SL_DT_Q3_K: return SFX(q3_K_krows);           \
		case SL_DT_Q4_K: return SFX(q4_K_krows);           \
		case SL_DT_Q5_K: return SFX(q5_K_krows);           \
		case SL_DT_Q6_K: return SFX(q6_K_krows);           \
		default: return NULL;                              \
		}                                                  \
	}

/* How far ahead of its block the decoding kernel (krows12) fetches each
 * weight row: on a forward of the 374M Q4_K_M Llama (rows of 1024 and
 * 2816), 2 KiB ahead took some 10% less time than fetching the next four
 * rows in one sweep as krows does, and a fifth less than no prefetch;
 * 1 KiB and 1.5 KiB fell between, 3 KiB measured as 2 KiB. */
#define K_AHEAD 2048

/* The K formats' rows, built for AVX2 and for AVX-512 VNNI (see
 * quants-krows.h); both give dotK's bits. */
#define TARGET AVX2
#define SFX(f) f
#define K_PASS_UNITS 1
#define K_DECODE2(t) NULL
#include "quants-krows.h"
K_KERNELS
#undef TARGET
#undef SFX
#undef K_PASS_UNITS
#undef K_DECODE2

/* Q2_K and Q3_K have no kblock2 decoding: their kernels keep kblock's. */
#define q2_K_decode2 NULL
#define q3_K_decode2 NULL
#define TARGET VNNI
#define SFX(f) f##_vnni
#define K_PASS_UNITS 2
#define K_DECODE2(t) t##_decode2
#define SL_K_VNNI_PASS
#include "quants-krows.h"
K_KERNELS
#undef SL_K_VNNI_PASS
#undef TARGET
#undef SFX
#undef K_PASS_UNITS
#undef K_DECODE2
#undef q2_K_decode2
#undef q3_K_decode2

sl_vec_dot_rows_fn sl_quants_vec_dot_rows_avx2(int type)
{
	if (!sl_cpu_avx2())
		return NULL;
	const bool vnni = sl_cpu_vnni();
	sl_vec_dot_rows_fn legacy = vnni ? legacy_rows_vnni(type) : legacy_rows(type);
	if (legacy)
		return legacy;
	return vnni ? k_rows_vnni(type) : k_rows(type);
}

/* ---- AMX tiles for the K formats' prompts (quants-amx.c) ---------------- */

#ifdef SL_AMX_KERNELS
/* Calls of fewer tokens go to the decoding kernel (vec_dot_rows, the same
 * bits): below two tiles, making a group's planes costs more than the
 * tiles save (measured on 256 Q4_K rows of 1024, one thread: 16 tokens at
 * 0.92x its speed, 24 at 0.96x, 32 at 1.4x, 64 at 2.7x, 512 at 5.1x). */
#define AMX_MIN_TOKENS 32

/* Each format's planes (see sl_kplanes): Q2_K's scales (0..15) times codes
 * 0..3 fit one; Q4_K's (0..63) take two of base 16 against codes 0..15,
 * Q5_K's two of base 8 against codes 0..31 (each with the minima's plane);
 * Q3_K's (-32..31) two balanced digits of base 16 (-7..8) against codes
 * -4..3, Q6_K's (-128..127) three of base 8 (-3..4) against codes -32..31. */
#define K_GEMM_AMX(t, P, lb, off, sgn)                                                                        \
	static void t##_gemm_amx(int64_t n, int nr, int nt, float *y, size_t ys, const void *w, size_t ws,    \
	                         const void *xq, size_t xs)                                                  \
	{                                                                                                     \
		if (nt >= AMX_MIN_TOKENS) {                                                                   \
			sl_quants_gemm_amx_k(t##_decode, sizeof(sl_block_##t), (sl_kplanes){P, lb, off, sgn}, n, nr, nt, y, \
			                     ys, w, ws, xq, xs);                                              \
			return;                                                                               \
		}                                                                                             \
		for (int t0 = 0; t0 < nt; t0 += SL_DOT_ROWS_TOKENS)                                           \
			t##_krows_vnni(n, nr, nt - t0 < SL_DOT_ROWS_TOKENS ? nt - t0 : SL_DOT_ROWS_TOKENS,      \
			               y + (size_t)t0 * ys, ys, w, ws, (const char *)xq + (size_t)t0 * xs, xs); \
	}
K_GEMM_AMX(q2_K, 1, 4, 0, false)
K_GEMM_AMX(q3_K, 2, 4, 7, true)
K_GEMM_AMX(q4_K, 2, 4, 0, false)
K_GEMM_AMX(q5_K, 2, 3, 0, false)
K_GEMM_AMX(q6_K, 3, 3, 3, true)
#endif

/* ---- AMX tiles for the legacy formats' prompts (quants-amx-legacy.c) ---- */

#ifdef SL_AMX_KERNELS
/* Each format's codes as signed values (value = d * code + m), Q4_0's and
 * Q5_0's offset taken out, for the tiles; and its gemm. */
#define LEGACY_GEMM_AMX(t, u, off, minima, act)                                                               \
	AVX2 static void t##_amx_codes(const uint8_t *const row[16], int64_t nb, int8_t (*codes)[16][SL_QK])  \
	{                                                                                                     \
		for (int64_t i = 0; i < nb; i++)                                                              \
			for (int r = 0; r < 16; r++)                                                          \
				_mm256_store_si256((__m256i *)codes[i][r],                                    \
				                   _mm256_sub_epi8(u(row[r] + (size_t)i * sizeof(sl_block_##t)), \
				                                   _mm256_set1_epi8(off)));                   \
	}                                                                                                     \
	static void t##_gemm_amx(int64_t n, int nr, int nt, float *y, size_t ys, const void *w, size_t ws,    \
	                         const void *xq, size_t xs)                                                  \
	{                                                                                                     \
		sl_quants_gemm_amx_legacy(t##_amx_codes, sizeof(sl_block_##t), minima, sizeof(act),             \
		                          offsetof(act, qs), n, nr, nt, y, ys, w, ws, xq, xs);                \
	}
LEGACY_GEMM_AMX(q4_0, q4_0_u, 8, false, sl_block_q8_0)
LEGACY_GEMM_AMX(q4_1, q4_1_u, 0, true, sl_block_q8_1)
LEGACY_GEMM_AMX(q5_0, q5_0_u, 16, false, sl_block_q8_0)
LEGACY_GEMM_AMX(q5_1, q5_1_u, 0, true, sl_block_q8_1)
LEGACY_GEMM_AMX(q8_0, q8_0_s, 0, false, sl_block_q8_0)
#endif

sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_amx_legacy(int type)
{
#ifdef SL_AMX_KERNELS
	if (!sl_cpu_amx())
		return NULL;
	switch (type) {
	case SL_DT_Q4_0: return q4_0_gemm_amx;
	case SL_DT_Q4_1: return q4_1_gemm_amx;
	case SL_DT_Q5_0: return q5_0_gemm_amx;
	case SL_DT_Q5_1: return q5_1_gemm_amx;
	case SL_DT_Q8_0: return q8_0_gemm_amx;
	default: return NULL;
	}
#else
	(void)type;
	return NULL;
#endif
}

sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_amx(int type)
{
#ifdef SL_AMX_KERNELS
	if (!sl_cpu_amx())
		return NULL;
	switch (type) {
	case SL_DT_Q2_K: return q2_K_gemm_amx;
	case SL_DT_Q3_K: return q3_K_gemm_amx;
	case SL_DT_Q4_K: return q4_K_gemm_amx;
	case SL_DT_Q5_K: return q5_K_gemm_amx;
	case SL_DT_Q6_K: return q6_K_gemm_amx;
	default: return NULL;
	}
#else
	(void)type;
	return NULL;
#endif
}

sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_avx2(int type)
{
	if (!sl_cpu_avx2())
		return NULL;
	return sl_cpu_vnni() ? legacy_gemm_vnni(type) : legacy_gemm(type);
}

sl_vec_dot_tile_fn sl_quants_vec_dot_tile_avx2(int type)
{
	if (!sl_cpu_avx2())
		return NULL;
	sl_vec_dot_tile_fn legacy = sl_cpu_vnni() ? legacy_tile_vnni(type) : legacy_tile(type);
	if (legacy)
		return legacy;
	switch (type) {
	case SL_DT_Q2_K: return q2_K_tile;
	case SL_DT_Q3_K: return q3_K_tile;
	case SL_DT_Q4_K: return q4_K_tile;
	case SL_DT_Q5_K: return q5_K_tile;
	case SL_DT_Q6_K: return q6_K_tile;
	default: return NULL;
	}
}

sl_vec_dot_fn sl_quants_vec_dot_avx2(int type)
{
	if (!sl_cpu_avx2())
		return NULL;
	sl_vec_dot_fn legacy = sl_cpu_vnni() ? legacy_dot_vnni(type) : legacy_dot(type);
	if (legacy)
		return legacy;
	switch (type) {
	case SL_DT_Q2_K: return q2_K_dot;
	case SL_DT_Q3_K: return q3_K_dot;
	case SL_DT_Q4_K: return q4_K_dot;
	case SL_DT_Q5_K: return q5_K_dot;
	case SL_DT_Q6_K: return q6_K_dot;
	default: return NULL;
	}
}

#else

sl_vec_dot_fn sl_quants_vec_dot_avx2(int type)
{
	(void)type;
	return NULL;
}

sl_vec_dot_rows_fn sl_quants_vec_dot_rows_avx2(int type)
{
	(void)type;
	return NULL;
}

sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_avx2(int type)
{
	(void)type;
	return NULL;
}

sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_amx(int type)
{
	(void)type;
	return NULL;
}

sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_amx_legacy(int type)
{
	(void)type;
	return NULL;
}

sl_act_fn sl_quants_act_avx2(int type)
{
	(void)type;
	return NULL;
}

sl_vec_dot_tile_fn sl_quants_vec_dot_tile_avx2(int type)
{
	(void)type;
	return NULL;
}

#endif
