/* slimlab's own storage formats (the ids from SL_DT_I8_CH on in dtype.h):
 * each family's registration (fmt-int.c, fmt-fp8.c, fmt-fp4.c, fmt-nf.c),
 * and what their portable code and the AVX2 file (formats-avx2.c) share. */
#ifndef SL_FORMATS_CPU_H
#define SL_FORMATS_CPU_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "../dtype.h"

/* Fill the table entries of each family. */
void sl_fmt_int_register(sl_type_info *table);
void sl_fmt_fp8_register(sl_type_info *table);
void sl_fmt_fp4_register(sl_type_info *table);
void sl_fmt_nf_register(sl_type_info *table);

/* The largest magnitude of n values (NaN aside). */
static inline float sl_amax(const float *x, int64_t n)
{
	float a = 0.0f;
	for (int64_t i = 0; i < n; i++) {
		const float v = fabsf(x[i]);
		a = v > a ? v : a; /* fmaxf's answer (NaN left out), without its call */
	}
	return a;
}

/* Activations for the integer dot products: runs of 32 int8 with an f16
 * scale, the layout of int8-g32. */
#define SL_ACT_RUN 32
typedef struct {
	uint16_t d;
	int8_t q[SL_ACT_RUN];
} sl_act_block;

/* The codes of a run of n values stored K bits each (K = 2, 3, 4, 8) in
 * planes: with F = 8/K fields per byte, byte j holds values j, j + n/F,
 * ... from its low bits up; K = 3 is a 2-bit plane followed by a 1-bit
 * plane of the third bits. Shared so that each file's compiler vectorizes
 * it for its own target. */
static inline void sl_plane_unpack(const uint8_t *src, uint8_t *codes, int n, int k)
{
	int f = 8 / k, stride = n / f, mask = (1 << k) - 1;
	for (int p = 0; p < f; p++)
		for (int j = 0; j < stride; j++)
			codes[p * stride + j] = (uint8_t)((src[j] >> (k * p)) & mask);
}

static inline void sl_codes_unpack(const uint8_t *src, uint8_t *codes, int n, int bits)
{
	if (bits != 3) {
		sl_plane_unpack(src, codes, n, bits);
		return;
	}
	uint8_t hi[128];
	sl_plane_unpack(src, codes, n, 2);
	sl_plane_unpack(src + n / 4, hi, n, 1);
	for (int i = 0; i < n; i++)
		codes[i] |= (uint8_t)(hi[i] << 2);
}

/* E2M1 values times two, which are whole numbers: the integer dot
 * products of NVFP4 and MXFP4 use them and halve the scale. */
static const int8_t sl_e2m1_x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* Dot products of one weight row with n activations (n a multiple of 32
 * and of group). Built for AVX2, called only when the CPU has AVX2,
 * FMA and F16C; formats.c holds portable ones with the same meaning. */
float sl_dot_i8ch_avx2(const int8_t *w, const sl_act_block *x, int64_t n);
float sl_dot_int8g_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int group, bool asym);
float sl_dot_int4g_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int group, bool asym);
float sl_dot_intk_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int bits, int group, bool asym);
/* NVFP4 (row with its header) and MXFP4 against int8-g32 activations. */
float sl_dot_nvfp4_avx2(const uint8_t *row, const sl_act_block *x, int64_t n);
float sl_dot_mxfp4_avx2(const uint8_t *w, const sl_act_block *x, int64_t n);
/* FP8 codes against F32 (n a multiple of 16), before the row scale. */
float sl_dot_e4m3_f32_avx2(const uint8_t *w, const float *x, int64_t n);
float sl_dot_e5m2_f32_avx2(const uint8_t *w, const float *x, int64_t n);
/* n 4-bit codes in planes (byte j holds codes j and j + n/2; n a multiple
 * of 16) through a table of 16 floats, times scale: y = table[code]*scale,
 * the same bits as the portable loop. For tables no integer dot serves. */
void sl_lut16_decode_avx2(const uint8_t *q, int n, const float *table, float scale, float *y);
/* F16 and BF16 against F32 (n a multiple of 16). */
float sl_dot_f16_f32_avx2(const uint16_t *w, const float *x, int64_t n);
float sl_dot_bf16_f32_avx2(const uint16_t *w, const float *x, int64_t n);
/* F16 widened to F32 (any n). */
void sl_f16_to_f32_avx2(const uint16_t *h, float *x, int64_t n);

#endif
