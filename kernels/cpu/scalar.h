/* What the CPU kernels share below the formats: decoding tables for the
 * minifloats, the packing of codes into bit planes, and the last step of
 * every K-format dot product. One compiled copy serves the portable and
 * the AVX2 files alike, so both round the same way. The half-float and
 * minifloat conversions themselves are public (kernels/dtype.h). */
#ifndef SL_SCALAR_H
#define SL_SCALAR_H

#include <stdint.h>

/* Filled once before any format registers (sl_scalar_init). */
extern float sl_fp8_e4m3_lut[256];
extern float sl_fp8_e5m2_lut[256];
extern float sl_e2m1_lut[16];
void sl_scalar_init(void);

/* The largest finite value of E4M3 (448), E5M2 (57344) and E2M1 (6). */
#define SL_E4M3_MAX 448.0f
#define SL_E5M2_MAX 57344.0f
#define SL_E2M1_MAX 6.0f

/* Packs n codes of k bits (k = 1, 2, 4, 8) in planes: byte j holds codes
 * j, j + n/F, j + 2n/F, ... (F = 8/k) from its low bits up. */
void sl_plane_pack(const uint8_t *codes, uint8_t *dst, unsigned n, unsigned k);
/* K-bit codes of a run of n values, K = 2, 3, 4 or 8; K = 3 is a 2-bit
 * plane followed by a 1-bit plane of the third bits. */
void sl_codes_pack(const uint8_t *codes, uint8_t *dst, int n, int bits);

/* The last step of every K-format dot product, yd*(d*sumi - dmin*summ),
 * where sumi = sum_g sc_g*sum(q*y) and summ = sum_g m_g*bsum_g are exact
 * integers. Inline (a call per block cost a third of a K format's dot
 * product); every file that uses it compiles without contracting these
 * multiplies and adds into fused ones, so each path rounds the same way. */
static inline float sl_q_K_block_dot(float yd, float d, int32_t sumi, float dmin, int32_t summ)
{
	return yd * (d * (float)sumi - dmin * (float)summ);
}

/* Little-endian loads and stores of the scales inside blocks. */
static inline float sl_load_f32(const void *p)
{
	float f;
	__builtin_memcpy(&f, p, sizeof f);
	return f;
}

static inline void sl_store_f32(void *p, float f)
{
	__builtin_memcpy(p, &f, sizeof f);
}

#endif
