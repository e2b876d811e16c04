/* Prompt products of the K formats on AMX tiles (Intel's tile unit, int8
 * dot products of 16x64-byte tiles). Every (row, token) pair gets exactly
 * the portable dot product's bits: a super-block's integer sums are exact
 * in any order, so the tiles' sums of each 16- or 32-element sub-block
 * (TDPBSUD: the activations' signed bytes times the weights' unsigned
 * codes) are weighted by their scales in int32, the codes' offset comes
 * back out against the activations' bsums as in the other kernels, and the
 * float step is sl_q_K_block_dot's operations in their order, done for 16
 * rows at once in the lanes of one vector.
 *
 * A call takes its rows in groups of 16. A group's codes are decoded once
 * (quants-kdecode.h) into the tiles' layout, dword j of every row side by
 * side (B[j][4r + b] = byte b of dword j of row r), with the scales,
 * offsets and d as vectors over the rows; then every tile of 16 tokens
 * meets them, its activations read as tiles straight from their Q8_K rows
 * (the last, partial tile from a copy padded with its last token). The
 * tile configuration is per thread: loaded at the start of every call and
 * released at its end. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "cpu.h"
#include "quants.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)

#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define AMX                                                                                                   \
	__attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,amx-tile,amx-int8")))

AVX2 static inline float half(uint16_t h)
{
	return _cvtsh_ss(h);
}

AVX2 static inline __m256i load32(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

#include "quants-kdecode.h"

/* Q8_K activations: d, then the codes, then the sixteen bsums. */
#define ACT_QS 4
#define ACT_BSUMS (4 + SL_QK_K)

/* The tile registers: two sets of C (16 tokens x 16 rows of int32), A (16
 * tokens x gk bytes of activations) and B (gk/4 x 16 rows' dwords of
 * codes), taken in turns by the sub-blocks so that one set's product runs
 * while the other's result is stored. */
typedef struct {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
} tile_config;

static void tile_config_for(tile_config *c, int gk)
{
	memset(c, 0, sizeof *c);
	c->palette = 1;
	for (int s = 0; s < 2; s++) {
		c->rows[3 * s] = 16, c->colsb[3 * s] = 64;
		c->rows[3 * s + 1] = 16, c->colsb[3 * s + 1] = (uint16_t)gk;
		c->rows[3 * s + 2] = (uint8_t)(gk / 4), c->colsb[3 * s + 2] = 64;
	}
}

/* A 16 x 16 matrix of dwords transposed: out[c] holds column c of the
 * rows in[r] (lane r). Within 128-bit lanes first, then across them. */
AMX static inline void transpose16(const __m512i in[16], __m512i out[16])
{
	__m512i t[16], u[16];
#pragma GCC unroll 8
	for (int k = 0; k < 8; k++) {
		t[2 * k] = _mm512_unpacklo_epi32(in[2 * k], in[2 * k + 1]);
		t[2 * k + 1] = _mm512_unpackhi_epi32(in[2 * k], in[2 * k + 1]);
	}
	/* u[4q + e]: rows 4q..4q+3 of elements 4l + e in lane l */
#pragma GCC unroll 4
	for (int q = 0; q < 4; q++) {
		u[4 * q] = _mm512_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
		u[4 * q + 1] = _mm512_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
		u[4 * q + 2] = _mm512_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
		u[4 * q + 3] = _mm512_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
	}
#pragma GCC unroll 4
	for (int e = 0; e < 4; e++) {
		const __m512i v = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88), w = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88);
		const __m512i v2 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xdd), w2 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xdd);
		out[e] = _mm512_shuffle_i32x4(v, w, 0x88);
		out[e + 8] = _mm512_shuffle_i32x4(v, w, 0xdd);
		out[e + 4] = _mm512_shuffle_i32x4(v2, w2, 0x88);
		out[e + 12] = _mm512_shuffle_i32x4(v2, w2, 0xdd);
	}
}

/* A group of 16 rows decoded for the tiles, per super-block: the codes
 * (64 dwords of 16 rows, 4 KiB), the scales of its sub-blocks of gk
 * elements, the offsets' weights in pairs (int16 g and g + 1 in the int32
 * of their pair) and d, dmin, all as vectors over the rows. */
typedef struct {
	__m512i codes[64];
	__m512i sc[16];
	__m512i corr[8];
	__m512 d, dmin;
} kgroup;

AMX static void group_decode(kdecode_fn decode, size_t bytes, int gk, int64_t nb, const uint8_t *const row[16],
                             kgroup *g, int *shift)
{
	for (int64_t i = 0; i < nb; i++) {
		__m512i rows[16][4], sc[16], corr[16];
		float d[16], dmin[16];
		for (int r = 0; r < 16; r++) {
			kblock b;
			decode(row[r] + (size_t)i * bytes, &b);
			for (int k = 0; k < 4; k++)
				rows[r][k] = _mm512_inserti64x4(_mm512_castsi256_si512(b.u[2 * k]), b.u[2 * k + 1], 1);
			/* the sixteen scales: half h holds scales 8h..8h+7 in both lanes */
			sc[r] = _mm512_cvtepi16_epi32(_mm256_set_m128i(_mm256_castsi256_si128(b.sc.half[1]),
			                                               _mm256_castsi256_si128(b.sc.half[0])));
			corr[r] = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(b.corr));
			d[r] = b.d;
			dmin[r] = b.dmin;
			*shift = b.shift;
		}
		kgroup *o = &g[i];
		for (int k = 0; k < 4; k++) {
			__m512i in[16];
			for (int r = 0; r < 16; r++)
				in[r] = rows[r][k];
			transpose16(in, o->codes + 16 * k);
		}
		__m512i t[16];
		transpose16(sc, t);
		for (int s = 0; s < 256 / gk; s++)
			o->sc[s] = t[s * gk / 16];
		transpose16(corr, t);
		for (int p = 0; p < 8; p++)
			o->corr[p] = t[p];
		o->d = _mm512_loadu_ps(d);
		o->dmin = _mm512_loadu_ps(dmin);
	}
}

/* Sub-block s of super-block i on tiles C, A, B (literal numbers: the
 * instructions name them): C = A (activations) x B (codes), stored into
 * c[s]. */
#define TILE_SUB(C, A, B, s)                                                                                  \
	do {                                                                                                  \
		_tile_zero(C);                                                                                \
		_tile_loadd(A, act + (size_t)i * sizeof(sl_block_q8_K) + ACT_QS + (size_t)(s) * gk, xs);         \
		_tile_loadd(B, (const char *)(g->codes + (s) * gk / 4), 64);                                  \
		_tile_dpbsud(C, A, B);                                                                        \
		_tile_stored(C, c[s], 64);                                                                    \
	} while (0)

/* One tile of 16 tokens (act, rows xs bytes apart) against a decoded group
 * over nb super-blocks, the sums of token t into f[t] (lane r: row r). */
AMX static void tile_run(int gk, int shift, int64_t nb, const kgroup *groups, const char *act, size_t xs,
                         __m512 f[16])
{
	_Alignas(64) int32_t c[16][16][16]; /* sub-block, token, row */
	const int ns = 256 / gk;
	/* The tile loads read memory the compiler cannot see them read. */
	__asm__ volatile("" ::: "memory");
	for (int t = 0; t < 16; t++)
		f[t] = _mm512_setzero_ps();
	for (int64_t i = 0; i < nb; i++) {
		const kgroup *g = &groups[i];
		for (int s = 0; s < ns; s += 2) {
			TILE_SUB(0, 1, 2, s);
			TILE_SUB(3, 4, 5, s + 1);
		}
		for (int t = 0; t < 16; t++) {
			const char *blk = act + (size_t)t * xs + (size_t)i * sizeof(sl_block_q8_K);
			__m512i sumi = _mm512_setzero_si512(), summ = _mm512_setzero_si512();
			for (int s = 0; s < ns; s++)
				sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(_mm512_load_si512(c[s][t]), g->sc[s]));
			int32_t bs[8];
			memcpy(bs, blk + ACT_BSUMS, sizeof bs);
#pragma GCC unroll 8
			for (int p = 0; p < 8; p++)
				summ = _mm512_dpwssd_epi32(summ, g->corr[p], _mm512_set1_epi32(bs[p]));
			if (shift >= 0) {
				sumi = _mm512_sub_epi32(sumi, _mm512_sll_epi32(summ, _mm_cvtsi32_si128(shift)));
				summ = _mm512_setzero_si512();
			}
			float yd;
			memcpy(&yd, blk, sizeof yd);
			const __m512 blkf = _mm512_mul_ps(_mm512_set1_ps(yd),
			                                  _mm512_sub_ps(_mm512_mul_ps(g->d, _mm512_cvtepi32_ps(sumi)),
			                                                _mm512_mul_ps(g->dmin, _mm512_cvtepi32_ps(summ))));
			f[t] = _mm512_add_ps(f[t], blkf);
		}
	}
}

AMX static void gemm_amx(kdecode_fn decode, size_t bytes, int gk, int64_t n, int nr, int nt, float *y, size_t ys,
                         const void *w, size_t ws, const void *xq, size_t xs)
{
	const int64_t nb = n / SL_QK_K;
	kgroup *groups = aligned_alloc(64, (size_t)nb * sizeof(kgroup));
	char *pad = malloc(16 * xs);
	if (!groups || !pad)
		abort(); /* tens of KiB; there is no sensible way on without it */
	tile_config cfg;
	tile_config_for(&cfg, gk);
	_tile_loadconfig(&cfg);
	int shift = -1;
	for (int r0 = 0; r0 < nr; r0 += 16) {
		const int gr = nr - r0 < 16 ? nr - r0 : 16;
		const uint8_t *row[16];
		for (int r = 0; r < 16; r++)
			row[r] = (const uint8_t *)w + (size_t)(r0 + (r < gr ? r : gr - 1)) * ws;
		group_decode(decode, bytes, gk, nb, row, groups, &shift);
		const __mmask16 keep = (__mmask16)((1u << gr) - 1);
		for (int t0 = 0; t0 < nt; t0 += 16) {
			const int tc = nt - t0 < 16 ? nt - t0 : 16;
			const char *act = (const char *)xq + (size_t)t0 * xs;
			if (tc < 16) {
				for (int t = 0; t < 16; t++)
					memcpy(pad + (size_t)t * xs, act + (size_t)(t < tc ? t : tc - 1) * xs, xs);
				act = pad;
			}
			__m512 f[16];
			tile_run(gk, shift, nb, groups, act, xs, f);
			for (int t = 0; t < tc; t++)
				_mm512_mask_storeu_ps(y + (size_t)(t0 + t) * ys + r0, keep, f[t]);
		}
	}
	_tile_release();
	free(pad);
	free(groups);
}

#define GEMM_AMX(name, gk)                                                                                    \
	AMX static void name##_gemm_amx(int64_t n, int nr, int nt, float *y, size_t ys, const void *w, size_t ws, \
	                                const void *xq, size_t xs)                                           \
	{                                                                                                     \
		gemm_amx(name##_decode, sizeof(sl_block_##name), gk, n, nr, nt, y, ys, w, ws, xq, xs);          \
	}
GEMM_AMX(q2_K, 16)
GEMM_AMX(q3_K, 16)
GEMM_AMX(q4_K, 32)
GEMM_AMX(q5_K, 32)
GEMM_AMX(q6_K, 16)

sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_amx(int type)
{
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
}

#else

sl_vec_dot_rows_fn sl_quants_vec_dot_gemm_amx(int type)
{
	(void)type;
	return NULL;
}

#endif
