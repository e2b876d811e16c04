/* Scalar number formats and the helpers every CPU format shares: IEEE
 * half and bfloat16, the OCP minifloats (FP8 E4M3 and E5M2, FP4 E2M1),
 * their decoding tables, bit-plane packing, and the K formats' last step. */
#include "scalar.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "../dtype.h"

/* ---- IEEE half and bfloat16 ------------------------------------------- */

float sl_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
	if (exp == 0) {
		if (mant == 0) {
			bits = sign;
		} else { /* subnormal: renormalize */
			exp = 127 - 15 + 1;
			while (!(mant & 0x400)) {
				mant <<= 1;
				exp--;
			}
			mant &= 0x3ff;
			bits = sign | (exp << 23) | (mant << 13);
		}
	} else if (exp == 0x1f) {
		bits = sign | 0x7f800000u | (mant << 13);
	} else {
		bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
	}
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

uint16_t sl_f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000;
	uint32_t exp = (x >> 23) & 0xff, mant = x & 0x7fffff;
	if (exp == 0xff) /* inf or nan */
		return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
	int e = (int)exp - 127 + 15;
	if (e >= 0x1f)
		return (uint16_t)(sign | 0x7c00);
	if (e <= 0) { /* subnormal or zero, round to nearest even */
		if (e < -10)
			return (uint16_t)sign;
		mant |= 0x800000;
		int shift = 14 - e;
		uint32_t half = 1u << (shift - 1);
		uint32_t r = mant >> shift;
		uint32_t rem = mant & ((1u << shift) - 1);
		if (rem > half || (rem == half && (r & 1)))
			r++;
		return (uint16_t)(sign | r);
	}
	uint32_t r = ((uint32_t)e << 10) | (mant >> 13);
	uint32_t rem = mant & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
		r++; /* may carry into the exponent, which is right */
	return (uint16_t)(sign | r);
}

float sl_bf16_to_f32(uint16_t h)
{
	uint32_t bits = (uint32_t)h << 16;
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

uint16_t sl_f32_to_bf16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	if ((x & 0x7fffffff) > 0x7f800000) /* nan: keep it quiet */
		return (uint16_t)((x >> 16) | 64);
	return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

/* ---- minifloats ----------------------------------------------------- */

typedef struct {
	int ebits, mbits;
	bool ieee;          /* the top exponent is reserved for infinities and NaN */
	uint8_t max_code;   /* largest finite magnitude */
	uint8_t nan_code;   /* what NaN encodes to (without the sign) */
} minifloat;

static const minifloat mf_e4m3 = {4, 3, false, 0x7e, 0x7f};
static const minifloat mf_e5m2 = {5, 2, true, 0x7b, 0x7f};
static const minifloat mf_e2m1 = {2, 1, false, 0x7, 0x0};

static float mf_decode(const minifloat *f, uint8_t c)
{
	int bias = (1 << (f->ebits - 1)) - 1;
	int width = f->ebits + f->mbits;
	int e = (c >> f->mbits) & ((1 << f->ebits) - 1), m = c & ((1 << f->mbits) - 1);
	float sign = (c >> width) & 1 ? -1.0f : 1.0f;
	int mag = c & ((1 << width) - 1);
	if (f->ieee && e == (1 << f->ebits) - 1)
		return m ? NAN : sign * INFINITY;
	if (!f->ieee && f->nan_code && mag == f->nan_code)
		return NAN;
	if (e == 0)
		return sign * ldexpf((float)m, 1 - bias - f->mbits);
	return sign * ldexpf((float)((1 << f->mbits) + m), e - bias - f->mbits);
}

static uint8_t mf_encode(const minifloat *f, float x)
{
	int width = f->ebits + f->mbits;
	uint8_t sign = signbit(x) ? (uint8_t)(1u << width) : 0;
	if (isnan(x))
		return sign | f->nan_code;
	float a = fabsf(x);
	if (a >= mf_decode(f, f->max_code))
		return sign | f->max_code;
	if (a == 0.0f)
		return sign;
	int bias = (1 << (f->ebits - 1)) - 1, emin = 1 - bias, k;
	frexpf(a, &k);
	int e = k - 1; /* a = 1.x * 2^e */
	if (e < emin) {
		/* Subnormal: whole multiples of 2^(emin - mbits); rounding up to
		 * 2^mbits lands on the smallest normal code, which is the same number. */
		return sign | (uint8_t)nearbyintf(ldexpf(a, f->mbits - emin));
	}
	int q = (int)nearbyintf(ldexpf(a, f->mbits - e)); /* 2^mbits .. 2^(mbits+1) */
	if (q == 2 << f->mbits) {
		q = 1 << f->mbits;
		e++;
	}
	return sign | (uint8_t)(((e + bias) << f->mbits) | (q - (1 << f->mbits)));
}

float sl_fp8_e4m3_to_f32(uint8_t c) { return mf_decode(&mf_e4m3, c); }
uint8_t sl_f32_to_fp8_e4m3(float f) { return mf_encode(&mf_e4m3, f); }
float sl_fp8_e5m2_to_f32(uint8_t c) { return mf_decode(&mf_e5m2, c); }
uint8_t sl_f32_to_fp8_e5m2(float f) { return mf_encode(&mf_e5m2, f); }
float sl_e2m1_to_f32(uint8_t c) { return mf_decode(&mf_e2m1, c & 0xf); }
uint8_t sl_f32_to_e2m1(float f) { return mf_encode(&mf_e2m1, f); }

float sl_fp8_e4m3_lut[256], sl_fp8_e5m2_lut[256], sl_e2m1_lut[16];

static void fill_luts(void)
{
	for (int c = 0; c < 256; c++) {
		sl_fp8_e4m3_lut[c] = mf_decode(&mf_e4m3, (uint8_t)c);
		sl_fp8_e5m2_lut[c] = mf_decode(&mf_e5m2, (uint8_t)c);
	}
	for (int c = 0; c < 16; c++)
		sl_e2m1_lut[c] = mf_decode(&mf_e2m1, (uint8_t)c);
}

void sl_scalar_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, fill_luts);
}

/* ---- bit planes --------------------------------------------------------- */

void sl_plane_pack(const uint8_t *codes, uint8_t *dst, unsigned n, unsigned k)
{
	unsigned f = 8 / k, stride = n / f;
	memset(dst, 0, stride);
	for (unsigned i = 0; i < n; i++)
		dst[i % stride] |= (uint8_t)((codes[i] & ((1 << k) - 1)) << (k * (i / stride)));
}

void sl_codes_pack(const uint8_t *codes, uint8_t *dst, int n, int bits)
{
	if (bits != 3) {
		sl_plane_pack(codes, dst, (unsigned)n, (unsigned)bits);
		return;
	}
	uint8_t part[128] = {0}; /* n <= 128; zeroed so that no compiler sees it read unset */
	for (int i = 0; i < n; i++)
		part[i] = codes[i] & 3;
	sl_plane_pack(part, dst, (unsigned)n, 2);
	for (int i = 0; i < n; i++)
		part[i] = codes[i] >> 2;
	sl_plane_pack(part, dst + n / 4, (unsigned)n, 1);
}
