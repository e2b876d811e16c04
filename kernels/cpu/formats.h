/* slimlab's own storage formats (the ids from SL_DT_I8_CH on in dtype.h):
 * registration, and what the portable file and the AVX2 one share. */
#ifndef SL_FORMATS_CPU_H
#define SL_FORMATS_CPU_H

#include <stdbool.h>

#include "../dtype.h"

/* Fills the table entries of every slimlab format. */
void sl_formats_register(sl_type_info *table);

/* Activations for the integer dot products: runs of 32 int8 with an f16
 * scale, the layout of int8-g32 (which is ggml's Q8_0 byte for byte). */
#define SL_ACT_RUN 32
typedef struct {
	uint16_t d;
	int8_t q[SL_ACT_RUN];
} sl_act_block;

/* Integer dot products of one weight row with n activations (n a multiple
 * of 32 and of group). Built for AVX2, called only when the CPU has AVX2,
 * FMA and F16C; formats.c holds portable ones with the same meaning. */
float sl_dot_i8ch_avx2(const int8_t *w, const sl_act_block *x, int64_t n);
float sl_dot_int8g_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int group, bool asym);
float sl_dot_int4g_avx2(const uint8_t *w, const sl_act_block *x, int64_t n, int group, bool asym);

#endif
