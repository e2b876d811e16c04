/* GGML block formats: the byte layout of each block exactly as ggml publishes
 * it (ggml-common.h), so GGUF tensors map byte for byte, the scale decoders the
 * portable and the AVX2 dot products share, and hooks that let tests and
 * benchmarks run either dot product. Half floats are stored as raw IEEE bits;
 * like ggml, the code assumes a little-endian machine. */
#ifndef SL_QUANTS_H
#define SL_QUANTS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../dtype.h"
#include "scalar.h"

#define SL_QK 32    /* elements per block of the legacy formats */
#define SL_QK_K 256 /* elements per super-block of the K formats */

/* Legacy formats: element j < 16 is the low nibble of qs[j], element j + 16
 * the high nibble; in the 5-bit formats bit j of qh (little endian) is bit 4
 * of element j. */
typedef struct {
	uint16_t d;
	uint8_t qs[16];
} sl_block_q4_0; /* d*(q-8) */
typedef struct {
	uint16_t d, m;
	uint8_t qs[16];
} sl_block_q4_1; /* d*q + m */
typedef struct {
	uint16_t d;
	uint8_t qh[4];
	uint8_t qs[16];
} sl_block_q5_0; /* d*(q-16) */
typedef struct {
	uint16_t d, m;
	uint8_t qh[4];
	uint8_t qs[16];
} sl_block_q5_1;
typedef struct {
	uint16_t d;
	int8_t qs[32];
} sl_block_q8_0;
/* Activations for the _1 formats: s = d * sum(qs), so the offset term of the
 * weights costs one multiply per block. */
typedef struct {
	uint16_t d, s;
	int8_t qs[32];
} sl_block_q8_1;

/* K formats. Element e of a Q2_K/Q3_K/Q6_K block belongs to sub-block e/16,
 * of a Q4_K/Q5_K block to sub-block e/32. In Q2_K, Q3_K and Q6_K the low bits
 * of element e = 128h + 32j + l (l < 32) sit in byte l of the h-th slice,
 * shifted by 2j bits (Q6_K: nibble j/2 of byte l + 32*(j%2), and 2 high bits
 * at shift 2j of qh[32h + l]). In Q4_K/Q5_K element e = 64c + 32k + l is
 * nibble k of qs[32c + l]. The Q3_K/Q5_K high bit of element e is bit e/32 of
 * byte e%32. */
typedef struct {
	uint8_t scales[16]; /* low nibble: scale, high nibble: min */
	uint8_t qs[64];
	uint16_t d, dmin;
} sl_block_q2_K; /* x = d*sc*q - dmin*m */
typedef struct {
	uint8_t hmask[32];
	uint8_t qs[64];
	uint8_t scales[12]; /* 16 six-bit scales, stored biased by 32 */
	uint16_t d;
} sl_block_q3_K; /* x = d*sc*(q-4) */
typedef struct {
	uint16_t d, dmin;
	uint8_t scales[12]; /* 8 six-bit scales and 8 six-bit mins */
	uint8_t qs[128];
} sl_block_q4_K; /* x = d*sc*q - dmin*m */
typedef struct {
	uint16_t d, dmin;
	uint8_t scales[12];
	uint8_t qh[32];
	uint8_t qs[128];
} sl_block_q5_K;
typedef struct {
	uint8_t ql[128];
	uint8_t qh[64];
	int8_t scales[16];
	uint16_t d;
} sl_block_q6_K; /* x = d*sc*(q-32) */
/* Activations for the K formats; bsums[g] is the sum of qs in sub-block g. */
typedef struct {
	float d;
	int8_t qs[SL_QK_K];
	int16_t bsums[SL_QK_K / 16];
} sl_block_q8_K;

_Static_assert(sizeof(sl_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(sl_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(sl_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(sl_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(sl_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(sl_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(sl_block_q2_K) == 84, "q2_K layout");
_Static_assert(sizeof(sl_block_q3_K) == 110, "q3_K layout");
_Static_assert(sizeof(sl_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(sl_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(sl_block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(sl_block_q8_K) == 292, "q8_K layout");

/* The eight six-bit scales and eight six-bit mins of a Q4_K/Q5_K block, one
 * per byte (sub-block j in byte j). Sub-blocks 0-3 keep theirs in the low six
 * bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 keep the low
 * nibbles in bytes 8-11 (scale low, min high) and the top two bits in the
 * spare top bits of bytes 0-3 and 4-7. Read as little-endian words, so each
 * step handles four sub-blocks at once. */
static inline void sl_q4_K_scales(const uint8_t s[12], uint64_t *sc, uint64_t *m)
{
	uint32_t a, b, c;
	memcpy(&a, s, 4);
	memcpy(&b, s + 4, 4);
	memcpy(&c, s + 8, 4);
	uint32_t sc_hi = (c & 0x0f0f0f0f) | ((a >> 6) & 0x03030303) << 4;
	uint32_t m_hi = ((c >> 4) & 0x0f0f0f0f) | ((b >> 6) & 0x03030303) << 4;
	*sc = (a & 0x3f3f3f3f) | (uint64_t)sc_hi << 32;
	*m = (b & 0x3f3f3f3f) | (uint64_t)m_hi << 32;
}

/* The sixteen six-bit scales of a Q3_K block, still biased by 32, one per
 * byte (sub-block g in byte g of out[g/8]): low nibbles in bytes 0-7 (groups
 * 0-7 low, 8-15 high), top two bits in bytes 8-11, group g at byte 8 + g%4,
 * shift 2*(g/4). */
static inline void sl_q3_K_scales(const uint8_t s[12], uint64_t out[2])
{
	uint64_t lo;
	uint32_t h;
	memcpy(&lo, s, 8);
	memcpy(&h, s + 8, 4);
	const uint32_t m2 = 0x03030303;
	uint64_t hi0 = (h & m2) | (uint64_t)((h >> 2) & m2) << 32;
	uint64_t hi1 = ((h >> 4) & m2) | (uint64_t)((h >> 6) & m2) << 32;
	out[0] = (lo & 0x0f0f0f0f0f0f0f0full) | hi0 << 4;
	out[1] = ((lo >> 4) & 0x0f0f0f0f0f0f0f0full) | hi1 << 4;
}

/* Fills the table entries of the block formats (quants.c), choosing the
 * AVX2 dot products when the CPU has them. */
void sl_quants_register(sl_type_info *table);

typedef void (*sl_vec_dot_fn)(int64_t n, float *s, const void *w, const void *xq);

/* The portable dot product of a format, or NULL when it has none. */
sl_vec_dot_fn sl_quants_vec_dot_portable(int type);
/* How activations become Q8_0, Q8_1 or Q8_K blocks for the dot products
 * (round to nearest even; Q8_0/Q8_1: NaN to -128): the portable quantizer
 * and the AVX2 one, which writes the same bytes (NULL without AVX2, or for
 * other types). */
typedef void (*sl_act_fn)(const float *x, void *dst, int64_t n);
sl_act_fn sl_quants_act_portable(int type);
sl_act_fn sl_quants_act_avx2(int type);

/* The AVX2 vec_dot_tile (see dtype.h), or NULL as for the dot product. */
typedef void (*sl_vec_dot_tile_fn)(int64_t n, int nt, float *s, size_t ss, const void *w, const void *xq,
                                   size_t xs);
sl_vec_dot_tile_fn sl_quants_vec_dot_tile_avx2(int type);
/* The AVX2 (or VNNI) vec_dot_rows, or NULL. */
typedef void (*sl_vec_dot_rows_fn)(int64_t n, int nr, int nt, float *y, size_t ys, const void *w, size_t ws,
                                   const void *xq, size_t xs);
sl_vec_dot_rows_fn sl_quants_vec_dot_rows_avx2(int type);
/* The AVX2 (or VNNI) vec_dot_gemm of the legacy formats, or NULL. */
sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_avx2(int type);

/* The AMX vec_dot_gemm of the K formats (quants-amx.c's kernel), or NULL
 * where the CPU or the OS offers no tiles (sl_cpu_amx). */
sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_amx(int type);
/* The AMX vec_dot_gemm of the legacy formats (quants-amx-legacy.c's
 * kernel), or NULL as for the K formats'. */
sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_amx_legacy(int type);

/* A legacy format's codes for that kernel: 16 rows' (row[r]) blocks 0 to
 * nb-1 as signed values, the element k of row r's block i in
 * codes[i][r][k] (value = d * code + m, m the minimum where the format
 * has one). */
typedef void (*sl_amx_codes_fn)(const uint8_t *const row[16], int64_t nb, int8_t (*codes)[16][SL_QK]);
/* The legacy formats' gemm (vec_dot_gemm's contract: nr rows of blocks of
 * `bytes`, each starting with its half-float d and, with minima, m)
 * against nt activation rows of blocks of `abytes` (a half-float scale,
 * with minima a half-float scaled sum, and the 32 codes at `qoff`) on AMX
 * tiles, for a CPU where sl_cpu_amx holds (x86 GCC builds only): every
 * result the portable dot product's bits. */
void sl_quants_gemm_amx_legacy(sl_amx_codes_fn codes, size_t bytes, bool minima, size_t abytes, size_t qoff,
                               int64_t n, int nr, int nt, float *y, size_t ys, const void *w, size_t ws,
                               const void *xq, size_t xs);

/* The AVX2 dot product, or NULL when the build is not for x86 or this CPU
 * lacks AVX2, FMA or F16C. */
sl_vec_dot_fn sl_quants_vec_dot_avx2(int type);

#endif
