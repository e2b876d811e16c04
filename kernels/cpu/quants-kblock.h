/* A K-format block decoded for the AVX2 and AMX kernels (quants-avx2.c
 * decodes, quants-amx.c takes the codes to the tiles), the AMX gemm that
 * quants-avx2.c hands each format's decoder to, and the tile
 * configuration of both AMX files. Included after <immintrin.h>, in x86
 * builds. */
#ifndef SL_QUANTS_KBLOCK_H
#define SL_QUANTS_KBLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sixteen sub-block scales widened to int16, in two halves: half h
 * holds scales 8h..8h+7 in both 128-bit lanes. */
typedef struct {
	__m256i half[2];
} scales16;

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

typedef void (*kdecode_fn)(const void *blk, kblock *b);

/* The AMX kernels are written for GCC's tile intrinsics. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SL_AMX_KERNELS 1

/* The instruction sets the AMX kernels use around the tiles. */
#define SL_AMX_TARGET                                                                                         \
	__attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,amx-tile,amx-int8")))

/* The tile configuration _tile_loadconfig takes (palette 1): each tile's
 * rows and bytes a row. */
typedef struct {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
} sl_tile_config;

/* The calling thread's scratch memory for the AMX gemms (quants-amx.c):
 * n bytes aligned to 64, or NULL; kept from call to call (a prompt's
 * products would otherwise fault in fresh pages every time), overwritten
 * by the thread's next call, freed when the thread ends. */
void *sl_amx_scratch(size_t n);

/* How a format's sub-block scales go into the tiles' bytes (quants-amx.c):
 * `planes` digits of base 2^lb, each ((x + off) mod 2^lb) - off (off > 0:
 * balanced digits for signed scales); every digit times every code fits a
 * byte. sgn: the codes are taken signed, the offset (2^shift) applied;
 * else unsigned, against minima. */
typedef struct {
	int planes, lb, off;
	bool sgn;
} sl_kplanes;

/* The gemm (vec_dot_gemm's contract: nr rows of K blocks of `bytes` each,
 * decoded by decode, against nt Q8_K activation rows) on AMX tiles, for a
 * CPU where sl_cpu_amx holds: every result the portable dot product's
 * bits. The planes: 1 to 3, plus one for the minima where !sgn. */
void sl_quants_gemm_amx_k(kdecode_fn decode, size_t bytes, sl_kplanes f, int64_t n, int nr, int nt, float *y,
                          size_t ys, const void *w, size_t ws, const void *xq, size_t xs);
#endif

#endif
