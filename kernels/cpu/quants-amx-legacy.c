/* Prompt products of ggml's legacy formats (blocks of 32 with one scale,
 * and a minimum or an implied offset) on AMX tiles. Every (row, token)
 * pair gets exactly the portable dot product's bits (quants.c's
 * vec_dot32): a block's integer sum is exact in any order, so one TDPBSSD
 * of a tile of 16 tokens' 32 activation bytes by 16 rows' 32 codes gives
 * the 256 block sums, and the float chain then takes its steps for 16
 * rows at once in the lanes of one vector, per token
 * acc = acc + float(isum) * (d * dy), then (with minima) acc = acc + m * sy,
 * multiplies and adds never fused.
 *
 * The codes go into the tiles as signed bytes of their value (an implied
 * offset taken out, the unsigned codes of the formats with a minimum as
 * they are: all within int8), decoded by each format's function
 * (quants-avx2.c). A call takes its rows in groups of 16: a group's blocks
 * are decoded once into B's layout (B[k/4][4r + k%4] = element k of row
 * r) with d and m as vectors over the rows, and the tokens' scales once
 * per call; then every tile of 16 tokens meets the group, its activations
 * read as tiles straight from the activation rows (the last, partial tile
 * from a copy padded with its last token). The tile configuration is per
 * thread: loaded at the start of every call and released at its end. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quants.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "quants-kblock.h"
#endif

#ifdef SL_AMX_KERNELS

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define AMX SL_AMX_TARGET

/* The tile registers: four C (tiles 0-3: 16 tokens x 16 rows of int32),
 * two A (4, 5: 16 tokens x 32 bytes) and two B (6, 7: 8 x 16 rows'
 * dwords), taken by the blocks in turn. */
static void tile_config_legacy(sl_tile_config *c)
{
	memset(c, 0, sizeof *c);
	c->palette = 1;
	for (int k = 0; k < 4; k++)
		c->rows[k] = 16, c->colsb[k] = 64;
	for (int s = 0; s < 2; s++) {
		c->rows[4 + s] = 16, c->colsb[4 + s] = SL_QK;
		c->rows[6 + s] = SL_QK / 4, c->colsb[6 + s] = 64;
	}
}

/* A block of a group of 16 rows: B's eight rows of 16 dwords, and the
 * rows' d and m (0 without a minimum). */
typedef struct {
	__m512i codes[8];
	__m512 d, m;
} lgroup;

/* x[r] holds dwords 0-7 of row r in its low half, of row r + 8 in its
 * high one; out[j] gets dword j of rows 0-15, row r in lane r: an 8 x 8
 * transpose in each half (within 128-bit lanes, then across them). */
AMX static inline void transpose8x2(const __m512i x[8], __m512i out[8])
{
	__m512i t[8], u[8];
#pragma GCC unroll 4
	for (int k = 0; k < 4; k++) {
		t[2 * k] = _mm512_unpacklo_epi32(x[2 * k], x[2 * k + 1]);
		t[2 * k + 1] = _mm512_unpackhi_epi32(x[2 * k], x[2 * k + 1]);
	}
	/* u[4h + e]: rows 4h..4h+3 of dword e in 128-bit lanes 0 and 2, of
	 * dword e + 4 in lanes 1 and 3 */
#pragma GCC unroll 2
	for (int h = 0; h < 2; h++) {
		u[4 * h] = _mm512_unpacklo_epi64(t[4 * h], t[4 * h + 2]);
		u[4 * h + 1] = _mm512_unpackhi_epi64(t[4 * h], t[4 * h + 2]);
		u[4 * h + 2] = _mm512_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
		u[4 * h + 3] = _mm512_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
	}
	const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
#pragma GCC unroll 4
	for (int e = 0; e < 4; e++) {
		out[e] = _mm512_permutex2var_epi64(u[e], lo, u[4 + e]);
		out[e + 4] = _mm512_permutex2var_epi64(u[e], hi, u[4 + e]);
	}
}

/* A group's nb blocks into the tiles' layout, from its codes (raw: the
 * format's decoder's, [block][row]) and the halves at the start of each
 * block. */
AMX static void group_decode(int8_t (*raw)[16][SL_QK], size_t bytes, bool minima, int64_t nb,
                             const uint8_t *const row[16], lgroup *g)
{
	for (int64_t i = 0; i < nb; i++) {
		const size_t at = (size_t)i * bytes;
		__m512i x[8];
#pragma GCC unroll 8
		for (int r = 0; r < 8; r++)
			x[r] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256((const __m256i *)raw[i][r])),
			                          _mm256_load_si256((const __m256i *)raw[i][r + 8]), 1);
		transpose8x2(x, g[i].codes);
		_Alignas(32) uint16_t d[16], m[16];
		for (int r = 0; r < 16; r++) {
			memcpy(&d[r], row[r] + at, 2);
			memcpy(&m[r], row[r] + at + 2, 2);
		}
		g[i].d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)d));
		g[i].m = minima ? _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)m)) : _mm512_setzero_ps();
	}
}

/* The product of block i into tile C (literal tile numbers: the
 * instructions name them): C = A (activations) x B (codes). */
#define TILE_ISSUE(C, A, B, i)                                                                                \
	do {                                                                                                  \
		_tile_zero(C);                                                                                \
		_tile_loadd(A, act + (size_t)(i) * abytes + qoff, xs);                                        \
		_tile_loadd(B, (const char *)g[i].codes, 64);                                                 \
		_tile_dpbssd(C, A, B);                                                                        \
	} while (0)

/* The float chain's steps of block i for the 16 tokens, c[t] their sums
 * against the 16 rows, dy[t] (and sy[t]) the tokens' scales. */
__attribute__((always_inline)) AMX static inline void block_step(bool minima, const lgroup *g, const int32_t c[16][16],
                                                                  const float *dy, const float *sy, __m512 f[16])
{
#pragma GCC unroll 16
	for (int t = 0; t < 16; t++) {
		const __m512 p = _mm512_mul_ps(g->d, _mm512_set1_ps(dy[t]));
		f[t] = _mm512_add_ps(f[t], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[t])), p));
		if (minima)
			f[t] = _mm512_add_ps(f[t], _mm512_mul_ps(g->m, _mm512_set1_ps(sy[t])));
	}
}

/* Block i's sums, from tile C into c; then block i + 2's product issued
 * on the tiles A and B that block i used (its product done), into tile
 * N; then block i's float steps. */
#define TILE_STEP(C, A, B, N, i, c)                                                                           \
	do {                                                                                                  \
		if ((i) < nb) {                                                                               \
			_tile_stored(C, c, 64);                                                               \
			/* the compiler cannot see the tile store write c (and a  \
			 * wider barrier would send the accumulators to memory) */                          \
			__asm__ volatile("" : "+m"(*(int32_t(*)[256])(c)));                                   \
			if ((i) + 2 < nb)                                                                     \
				TILE_ISSUE(N, A, B, (i) + 2);                                                 \
			block_step(minima, &g[i], c, dy + (i) * 16, sy + (i) * 16, f);                         \
		}                                                                                             \
	} while (0)

/* One tile of 16 tokens (act, rows xs bytes apart; their scales in
 * dy/sy[i * 16 + t]) against a decoded group over nb blocks, the sums of
 * token t into f[t] (lane r: row r), then stored (tc tokens, the rows in
 * keep) at y. Four C tiles (0-3) and two sets of A and B (4, 6 and 5, 7)
 * take the blocks in turn, each block's product issued two blocks before
 * its sums are read, so that the tile unit works while the vector unit
 * takes the float steps. */
__attribute__((always_inline)) AMX static inline void tile_run(bool minima, size_t abytes, size_t qoff, int64_t nb,
                                                                const lgroup *g, const char *act, size_t xs,
                                                                const float *dy, const float *sy, float *y, size_t ys,
                                                                int tc, __mmask16 keep)
{
	_Alignas(64) int32_t c[2][16][16];
	__m512 f[16];
	/* The tile loads read memory the compiler cannot see them read. */
	__asm__ volatile("" ::: "memory");
#pragma GCC unroll 16
	for (int t = 0; t < 16; t++)
		f[t] = _mm512_setzero_ps();
	TILE_ISSUE(0, 4, 6, 0);
	if (nb > 1)
		TILE_ISSUE(1, 5, 7, 1);
	for (int64_t i = 0; i < nb; i += 4) {
		TILE_STEP(0, 4, 6, 2, i, c[0]);
		TILE_STEP(1, 5, 7, 3, i + 1, c[1]);
		TILE_STEP(2, 4, 6, 0, i + 2, c[0]);
		TILE_STEP(3, 5, 7, 1, i + 3, c[1]);
	}
#pragma GCC unroll 16
	for (int t = 0; t < 16; t++)
		if (t < tc)
			_mm512_mask_storeu_ps(y + (size_t)t * ys, keep, f[t]);
}

/* A tile of tokens, a function of its own per kind of format (with or
 * without minima): inlined into the loops around it, its sixteen
 * accumulators would not keep their registers. */
#define TILE_RUN(name, minima)                                                                                \
	__attribute__((noinline)) AMX static void name(size_t abytes, size_t qoff, int64_t nb, const lgroup *g,     \
	                                               const char *act, size_t xs, const float *dy, const float *sy, \
	                                               float *y, size_t ys, int tc, __mmask16 keep)          \
	{                                                                                                     \
		tile_run(minima, abytes, qoff, nb, g, act, xs, dy, sy, y, ys, tc, keep);                        \
	}
TILE_RUN(tile_run_plain, false)
TILE_RUN(tile_run_min, true)

AMX void sl_quants_gemm_amx_legacy(sl_amx_codes_fn codes, size_t bytes, bool minima, size_t abytes, size_t qoff,
                                   int64_t n, int nr, int nt, float *y, size_t ys, const void *w, size_t ws,
                                   const void *xq, size_t xs)
{
	const int64_t nb = n / SL_QK;
	const int tiles = (nt + 15) / 16;
	/* the thread's scratch: groups, raw codes, the tokens' scales, the
	 * padded last tile */
	const size_t sz_groups = (size_t)nb * sizeof(lgroup), sz_raw = (size_t)nb * 16 * SL_QK,
	             sz_dy = (size_t)tiles * nb * 16 * sizeof(float) * 2, sz_pad = (16 * xs + 63) / 64 * 64;
	char *mem = sl_amx_scratch(sz_groups + sz_raw + sz_dy + sz_pad);
	if (!mem)
		abort(); /* a prompt's scales; there is no sensible way on without them */
	lgroup *groups = (lgroup *)mem;
	int8_t(*raw)[16][SL_QK] = (int8_t(*)[16][SL_QK])(mem + sz_groups);
	float *dy = (float *)(mem + sz_groups + sz_raw);
	char *pad = mem + sz_groups + sz_raw + sz_dy;
	float *sy = dy + (size_t)tiles * nb * 16;
	/* The tokens' scales, [tile][block][token], the last tile padded with
	 * its last token's. */
	for (int k = 0; k < tiles * 16; k++) {
		const uint8_t *xr = (const uint8_t *)xq + (size_t)(k < nt ? k : nt - 1) * xs;
		for (int64_t i = 0; i < nb; i++) {
			uint16_t h[2];
			memcpy(h, xr + (size_t)i * abytes, sizeof h);
			const size_t at = ((size_t)(k / 16) * nb + i) * 16 + k % 16;
			dy[at] = _cvtsh_ss(h[0]);
			sy[at] = minima ? _cvtsh_ss(h[1]) : 0;
		}
	}
	/* the last, partial tile's tokens, padded with copies of its last */
	const int full = nt / 16 * 16;
	for (int t = 0; full < nt && t < 16; t++)
		memcpy(pad + (size_t)t * xs, (const char *)xq + (size_t)(full + (t < nt - full ? t : nt - full - 1)) * xs, xs);
	sl_tile_config cfg;
	tile_config_legacy(&cfg);
	_tile_loadconfig(&cfg);
	for (int r0 = 0; r0 < nr; r0 += 16) {
		const int gr = nr - r0 < 16 ? nr - r0 : 16;
		const uint8_t *row[16];
		for (int r = 0; r < 16; r++)
			row[r] = (const uint8_t *)w + (size_t)(r0 + (r < gr ? r : gr - 1)) * ws;
		codes(row, nb, raw);
		group_decode(raw, bytes, minima, nb, row, groups);
		const __mmask16 keep = (__mmask16)((1u << gr) - 1);
		for (int k = 0; k < tiles; k++) {
			const int t0 = 16 * k, tc = nt - t0 < 16 ? nt - t0 : 16;
			const char *act = tc < 16 ? pad : (const char *)xq + (size_t)t0 * xs;
			const size_t at = (size_t)k * nb * 16;
			(minima ? tile_run_min : tile_run_plain)(abytes, qoff, nb, groups, act, xs, dy + at, sy + at,
			                                         y + (size_t)t0 * ys + r0, ys, tc, keep);
		}
	}
	_tile_release();
}

#endif
