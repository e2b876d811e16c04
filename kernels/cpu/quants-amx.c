/* Prompt products of the K formats on AMX tiles (Intel's tile unit: int8
 * dot products of 16 x 64-byte tiles). Every (row, token) pair gets exactly
 * the portable dot product's bits: a super-block's integer sum
 * sumi = sum over sub-blocks of scale * (codes . activations) is exact in
 * any order, and the float step is then sl_q_K_block_dot's operations in
 * their order, done for 16 rows at once in the lanes of one vector.
 *
 * The scales go into the tiles' bytes. A tile's sum runs over all 64 bytes
 * of its K dimension, across sub-blocks, so each sub-block's scale is
 * written in P digits of base 2^lb, and plane p holds digit p of its
 * sub-block's scale times each code, small enough for a byte (6-bit scales
 * against 4-bit codes: two digits of base 16, 15 * 15 at most; signed 8-bit
 * scales against codes -32..31: three balanced digits of base 8, -3..4).
 * A super-block is then P tile sums over its 256 elements, each four
 * products of 64 bytes, and sumi = sum of plane p's shifted left p * lb:
 * one tile store per plane and super-block, where a store per sub-block
 * would cost as much as the products (a 1 KiB tile store takes some 12
 * cycles, a product some 14). Formats with minima keep their unsigned
 * codes, and the minima's share (minimum times the activations' sum of
 * each sub-block) is one more plane, each element's sub-block minimum;
 * the others take their codes signed, the offset applied.
 *
 * A call takes its rows in groups of 16. A group's planes are made once
 * (each block decoded by the format's decoder from quants-avx2.c) in the
 * tiles' layout, dword j of every row side by side (B[j][4r + b] = byte b
 * of dword j of row r), with d and dmin as vectors over the rows; every
 * tile of 16 tokens then meets them, its activations packed once per call
 * into tiles of 16 tokens x 64 bytes. The tile configuration is per
 * thread: loaded at the start of every call and released at its end. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "cpu.h"
#include "quants.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "quants-kblock.h"
#endif

#ifdef SL_AMX_KERNELS

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define AMX SL_AMX_TARGET

/* The tile registers, all 16 rows of 64 bytes: tmm0-1 two tiles'
 * activations (16 tokens x 64 bytes), tmm2-3 two planes' codes (16 rows of
 * dwords x 16 weight rows), tmm4-7 their sums (16 tokens x 16 rows of
 * int32). */
static void tile_config_all(sl_tile_config *c)
{
	memset(c, 0, sizeof *c);
	c->palette = 1;
	for (int k = 0; k < 8; k++)
		c->rows[k] = 16, c->colsb[k] = 64;
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

#define MAX_PLANES 3

/* A group of 16 rows made for the tiles, per super-block: the planes'
 * bytes (64 dwords of 16 rows, 4 KiB a plane; the minima's plane after
 * the scales' where the format has minima) and d, dmin as vectors over
 * the rows. */
typedef struct {
	__m512i codes[MAX_PLANES][64];
	__m512 d, dmin;
} kgroup;

/* Rows row[0..15]'s super-blocks made into planes. Sub-block g's 16
 * codes are 128-bit lane g % 4 of quarter g / 4 (64 codes a register), so
 * each lane takes one digit: every byte of the lane holds it, and
 * vpmaddubsw multiplies the codes by it, the even bytes' products in one
 * register and the odd bytes' in another (at most 15 * 15 = 225 apart
 * from the offset, within int16 and, after the offset, within a byte). */
__attribute__((always_inline)) AMX static inline void group_make(kdecode_fn decode, size_t bytes, const sl_kplanes f,
                                                                 int64_t nb, const uint8_t *const row[16], kgroup *g)
{
	/* byte b of lane l of quarter q: table entry 4q + l */
	__m512i pick[4];
	for (int q = 0; q < 4; q++)
		pick[q] = _mm512_add_epi8(_mm512_set1_epi8((char)(4 * q)),
		                          _mm512_set_epi32(3 * 0x01010101, 3 * 0x01010101, 3 * 0x01010101, 3 * 0x01010101,
		                                           2 * 0x01010101, 2 * 0x01010101, 2 * 0x01010101, 2 * 0x01010101,
		                                           0x01010101, 0x01010101, 0x01010101, 0x01010101, 0, 0, 0, 0));
	const __m512i even = _mm512_set1_epi16(0x00ff), odd = _mm512_set1_epi16((short)0xff00);
	for (int64_t i = 0; i < nb; i++) {
		_Alignas(64) int8_t plane[MAX_PLANES][16][256];
		float d[16], dmin[16];
		for (int r = 0; r < 16; r++) {
			kblock b;
			decode(row[r] + (size_t)i * bytes, &b);
			__m512i u[4];
			for (int q = 0; q < 4; q++)
				u[q] = _mm512_inserti64x4(_mm512_castsi256_si512(b.u[2 * q]), b.u[2 * q + 1], 1);
			/* the sixteen scales: half h holds scales 8h..8h+7 in both lanes */
			__m256i x = _mm256_set_m128i(_mm256_castsi256_si128(b.sc.half[1]), _mm256_castsi256_si128(b.sc.half[0]));
			for (int p = 0; p < f.planes; p++) {
				const __m256i off = _mm256_set1_epi16((short)f.off);
				const __m256i dig = _mm256_sub_epi16(
				        _mm256_and_si256(_mm256_add_epi16(x, off), _mm256_set1_epi16((short)((1 << f.lb) - 1))), off);
				x = _mm256_srai_epi16(_mm256_sub_epi16(x, dig), f.lb);
				/* the digits as bytes, sub-block g's in byte g of every lane */
				const __m512i table = _mm512_broadcast_i32x4(_mm256_cvtepi16_epi8(dig));
				for (int q = 0; q < 4; q++) {
					const __m512i dq = _mm512_shuffle_epi8(table, pick[q]);
					__m512i lo = _mm512_maddubs_epi16(u[q], _mm512_and_si512(dq, even));
					__m512i hi = _mm512_maddubs_epi16(u[q], _mm512_and_si512(dq, odd));
					if (f.sgn) {
						/* codes u - 2^shift: the digit 2^shift times, out */
						const __m512i dd = _mm512_slli_epi16(_mm512_srai_epi16(_mm512_slli_epi16(dq, 8), 8), b.shift);
						lo = _mm512_sub_epi16(lo, dd);
						hi = _mm512_sub_epi16(hi, dd);
					}
					/* the even products' low bytes, the odd ones' moved up */
					_mm512_store_si512(&plane[p][r][64 * q],
					                   _mm512_ternarylogic_epi32(_mm512_slli_epi16(hi, 8), lo, even, 0xf8));
				}
			}
			if (!f.sgn) {
				/* the minima's plane: each element's sub-block minimum */
				const __m512i mn = _mm512_broadcast_i32x4(b.corr);
				for (int q = 0; q < 4; q++)
					_mm512_store_si512(&plane[f.planes][r][64 * q], _mm512_shuffle_epi8(mn, pick[q]));
			}
			d[r] = b.d;
			dmin[r] = b.dmin;
		}
		kgroup *o = &g[i];
		for (int p = 0; p < f.planes + !f.sgn; p++)
			for (int k = 0; k < 4; k++) {
				__m512i in[16];
				for (int r = 0; r < 16; r++)
					in[r] = _mm512_load_si512(&plane[p][r][64 * k]);
				transpose16(in, o->codes[p] + 16 * k);
			}
		o->d = _mm512_loadu_ps(d);
		o->dmin = _mm512_loadu_ps(dmin);
	}
}

/* A product of tiles: dst += src1 x src2, the codes signed or not. */
#define TILE_DP(sgn, dst, src1, src2)                 \
	do {                                          \
		if (sgn)                              \
			_tile_dpbssd(dst, src1, src2); \
		else                                  \
			_tile_dpbsud(dst, src1, src2); \
	} while (0)

/* Plane p of super-block i for two tiles of tokens (a0, a1) and two
 * groups of rows (g0, g1): tmm4 + 2h + j = tile j's activations times
 * group h's plane, over the four 64-byte quarters, stored into
 * c[j][h][p]. Each tile of activations (from the second-level cache)
 * meets both groups; four sums in flight: a product takes some 17 cycles,
 * but its sum is ready for the next only some 27 cycles after it
 * started. */
__attribute__((always_inline)) AMX static inline void tile_plane(const sl_kplanes f, int p, const kgroup *g0,
                                                                 const kgroup *g1, const char *a0, const char *a1,
                                                                 int32_t c[2][2][MAX_PLANES][16][16])
{
	_tile_zero(4);
	_tile_zero(5);
	_tile_zero(6);
	_tile_zero(7);
	for (int k = 0; k < 4; k++) {
		_tile_loadd(0, a0 + 1024 * k, 64);
		_tile_loadd(1, a1 + 1024 * k, 64);
		_tile_loadd(2, (const char *)(g0->codes[p] + 16 * k), 64);
		TILE_DP(f.sgn, 4, 0, 2);
		TILE_DP(f.sgn, 5, 1, 2);
		_tile_loadd(3, (const char *)(g1->codes[p] + 16 * k), 64);
		TILE_DP(f.sgn, 6, 0, 3);
		TILE_DP(f.sgn, 7, 1, 3);
	}
	_tile_stored(4, c[0][0][p], 64);
	_tile_stored(5, c[1][0][p], 64);
	_tile_stored(6, c[0][1][p], 64);
	_tile_stored(7, c[1][1][p], 64);
}

/* Every plane of super-block i for two tiles of tokens and two groups. */
__attribute__((always_inline)) AMX static inline void tile_sums(const sl_kplanes f, const kgroup *g0,
                                                                const kgroup *g1, const char *a0, const char *a1,
                                                                int32_t c[2][2][MAX_PLANES][16][16])
{
	for (int p = 0; p < f.planes + !f.sgn; p++)
		tile_plane(f, p, g0, g1, a0, a1, c);
}

/* The float step of super-block i for a tile of tokens (their scales yd)
 * from the planes' sums c, into acc[t] (lane r: row r). */
__attribute__((always_inline)) AMX static inline void tile_step(const sl_kplanes f, const kgroup *g, const float *yd,
                                                                int32_t c[MAX_PLANES][16][16], __m512 acc[16])
{
	for (int t = 0; t < 16; t++) {
		__m512i sumi = _mm512_load_si512(c[0][t]), summ = _mm512_setzero_si512();
		for (int p = 1; p < f.planes; p++)
			sumi = _mm512_add_epi32(sumi, _mm512_slli_epi32(_mm512_load_si512(c[p][t]), (unsigned)(p * f.lb)));
		if (!f.sgn)
			summ = _mm512_load_si512(c[f.planes][t]);
		const __m512 blkf = _mm512_mul_ps(_mm512_set1_ps(yd[t]),
		                                  _mm512_sub_ps(_mm512_mul_ps(g->d, _mm512_cvtepi32_ps(sumi)),
		                                                _mm512_mul_ps(g->dmin, _mm512_cvtepi32_ps(summ))));
		acc[t] = _mm512_add_ps(acc[t], blkf);
	}
}

/* A call's activations for the tiles: per tile of 16 tokens (the last
 * padded with copies of the call's last token) and super-block, the codes
 * as four tiles of 16 tokens x 64 bytes (1 KiB each, in the order the
 * products take them) and the 16 tokens' scales. */
typedef struct {
	int8_t *codes; /* [tile][super-block][quarter][token][64] */
	float *yd;     /* [tile][super-block][token] */
} kacts;

AMX static void acts_make(int64_t nb, int nt, const void *xq, size_t xs, const kacts *a)
{
	const int tiles = (nt + 15) / 16;
	for (int j = 0; j < tiles; j++)
		for (int t = 0; t < 16; t++) {
			const char *row = (const char *)xq + (size_t)(16 * j + t < nt ? 16 * j + t : nt - 1) * xs;
			for (int64_t i = 0; i < nb; i++) {
				const sl_block_q8_K *b = (const sl_block_q8_K *)row + i;
				int8_t *dst = a->codes + ((size_t)j * nb + i) * 4096 + 64 * t;
				for (int k = 0; k < 4; k++)
					_mm512_store_si512(dst + 1024 * k, _mm512_loadu_si512(b->qs + 64 * k));
				memcpy(&a->yd[((size_t)j * nb + i) * 16 + t], &b->d, sizeof(float));
			}
		}
}

/* Tiles j0 and j0 + 1 (nk = 2; nk = 1: j0 alone, met as its own twin and
 * the twin's sums dropped) against groups g0 and g1 (each over nb
 * super-blocks), the sums of tile j0 + k's token t against group h into
 * acc[32 k + 16 h + t] (lane r: row r of the group), in each pair's order
 * over the super-blocks. One pair at a time over all the super-blocks, so
 * that its activations, the groups' planes of a super-block and the
 * planes' sums stay in the first-level cache (measured on 1024-wide rows,
 * 512 tokens: pairs 123 multiply-adds a cycle; chunks of four tiles, each
 * pair's products issued before the float step of the pair before, 106;
 * of eight 110). */
__attribute__((always_inline)) AMX static inline void pair_run(const sl_kplanes f, int64_t nb, const kgroup *g0,
                                                               const kgroup *g1, const kacts *a, int j0, int nk,
                                                               __m512 acc[64])
{
	_Alignas(64) int32_t c[2][2][MAX_PLANES][16][16]; /* tile, group, plane, token, row */
	/* The tile loads read memory the compiler cannot see them read. */
	__asm__ volatile("" ::: "memory");
	for (int t = 0; t < 32 * nk; t++)
		acc[t] = _mm512_setzero_ps();
	const size_t tile = (size_t)nb * 4096;
	for (int64_t i = 0; i < nb; i++) {
		const int8_t *at = a->codes + ((size_t)j0 * nb + i) * 4096;
		const float *yd = a->yd + ((size_t)j0 * nb + i) * 16;
		tile_sums(f, &g0[i], &g1[i], (const char *)at, (const char *)(nk > 1 ? at + tile : at), c);
		for (int j = 0; j < nk; j++)
			for (int h = 0; h < 2; h++)
				tile_step(f, h ? &g1[i] : &g0[i], yd + (size_t)j * nb * 16, c[j][h], acc + 32 * j + 16 * h);
	}
}

/* A thread's scratch memory, kept from call to call (a prompt's products
 * would otherwise fault in fresh pages every time) and freed when the
 * thread ends. */
typedef struct {
	void *p;
	size_t n;
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_ok;

static void scratch_free(void *p)
{
	scratch *s = p;
	free(s->p);
	free(s);
}

static void scratch_init(void)
{
	scratch_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

void *sl_amx_scratch(size_t n)
{
	pthread_once(&scratch_once, scratch_init);
	if (!scratch_ok)
		return NULL;
	scratch *s = pthread_getspecific(scratch_key);
	if (!s) {
		if (!(s = calloc(1, sizeof *s)) || pthread_setspecific(scratch_key, s)) {
			free(s);
			return NULL;
		}
	}
	if (s->n < n) {
		free(s->p);
		n = (n + 63) / 64 * 64;
		s->p = aligned_alloc(64, n);
		s->n = s->p ? n : 0;
	}
	return s->p;
}

__attribute__((always_inline)) AMX static inline void gemm_amx(kdecode_fn decode, size_t bytes, const sl_kplanes f,
                                                               int64_t n, int nr, int nt, float *y, size_t ys,
                                                               const void *w, size_t ws, const void *xq, size_t xs)
{
	const int64_t nb = n / SL_QK_K;
	const int tiles = (nt + 15) / 16;
	const size_t sz_groups = 2 * (size_t)nb * sizeof(kgroup), sz_codes = (size_t)tiles * nb * 4096,
	             sz_yd = (size_t)tiles * nb * 64;
	char *mem = sl_amx_scratch(sz_groups + sz_codes + sz_yd);
	if (!mem)
		abort(); /* a prompt's activations; there is no sensible way on without them */
	kgroup *groups = (kgroup *)mem;
	const kacts a = {(int8_t *)(mem + sz_groups), (float *)(mem + sz_groups + sz_codes)};
	__m512 acc[64];
	acts_make(nb, nt, xq, xs, &a);
	sl_tile_config cfg;
	tile_config_all(&cfg);
	_tile_loadconfig(&cfg);
	/* the rows in pairs of groups of 16 (the last rows repeated, and a
	 * missing second group the first again, their sums dropped) */
	for (int r0 = 0; r0 < nr; r0 += 32) {
		int gr[2];
		for (int h = 0; h < 2; h++) {
			gr[h] = nr - r0 - 16 * h < 16 ? nr - r0 - 16 * h : 16;
			if (gr[h] <= 0)
				continue;
			const uint8_t *row[16];
			for (int r = 0; r < 16; r++)
				row[r] = (const uint8_t *)w + (size_t)(r0 + 16 * h + (r < gr[h] ? r : gr[h] - 1)) * ws;
			group_make(decode, bytes, f, nb, row, groups + (size_t)h * nb);
		}
		const kgroup *g1 = gr[1] > 0 ? groups + nb : groups;
		for (int j0 = 0; j0 < tiles; j0 += 2) {
			const int nk = tiles - j0 < 2 ? 1 : 2;
			pair_run(f, nb, groups, g1, &a, j0, nk, acc);
			for (int h = 0; h < 2 && gr[h] > 0; h++) {
				const __mmask16 keep = (__mmask16)((1u << gr[h]) - 1);
				for (int t = 16 * j0; t < nt && t < 16 * (j0 + nk); t++)
					_mm512_mask_storeu_ps(y + (size_t)t * ys + r0 + 16 * h, keep,
					                      acc[32 * ((t - 16 * j0) / 16) + 16 * h + (t - 16 * j0) % 16]);
			}
		}
	}
	_tile_release();
}

/* Each shape of planes its own build of the kernel. */
#define GEMM_PLANES(P, sgn) \
	gemm_amx(decode, bytes, (sl_kplanes){P, f.lb, f.off, sgn}, n, nr, nt, y, ys, w, ws, xq, xs)

AMX void sl_quants_gemm_amx_k(kdecode_fn decode, size_t bytes, sl_kplanes f, int64_t n, int nr, int nt, float *y,
                              size_t ys, const void *w, size_t ws, const void *xq, size_t xs)
{
	if (f.planes == 1 && !f.sgn)
		GEMM_PLANES(1, false);
	else if (f.planes == 2 && !f.sgn)
		GEMM_PLANES(2, false);
	else if (f.planes == 2 && f.sgn)
		GEMM_PLANES(2, true);
	else if (f.planes == 3 && f.sgn)
		GEMM_PLANES(3, true);
	else
		abort(); /* no format takes other planes */
}

#endif
