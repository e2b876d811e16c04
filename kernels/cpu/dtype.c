/* The table of storage formats and the plain-float conversions. Block
 * formats register their functions from quants.c (ggml's) and formats.c
 * (slimlab's own). */
#include "../dtype.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "formats.h"
#include "quants.h"

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

static void f32_to_float(const void *src, float *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f16_to_float(const void *src, float *dst, int64_t n)
{
	const uint16_t *s = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = sl_f16_to_f32(s[i]);
}

static void bf16_to_float(const void *src, float *dst, int64_t n)
{
	const uint16_t *s = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = sl_bf16_to_f32(s[i]);
}

static void f32_from_float(const float *src, void *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f16_from_float(const float *src, void *dst, int64_t n)
{
	uint16_t *d = dst;
	for (int64_t i = 0; i < n; i++)
		d[i] = sl_f32_to_f16(src[i]);
}

static void bf16_from_float(const float *src, void *dst, int64_t n)
{
	uint16_t *d = dst;
	for (int64_t i = 0; i < n; i++)
		d[i] = sl_f32_to_bf16(src[i]);
}

static float f32_dot(const void *w, const float *x, int64_t n)
{
	const float *a = w;
	float s = 0;
	for (int64_t i = 0; i < n; i++)
		s += a[i] * x[i];
	return s;
}

static sl_type_info types[SL_DT_COUNT] = {
	[SL_DT_F32] = {.name = "f32", .block_size = 1, .block_bytes = 4,
	               .to_float = f32_to_float, .from_float = f32_from_float, .dot_f32 = f32_dot},
	[SL_DT_F16] = {.name = "f16", .block_size = 1, .block_bytes = 2,
	               .to_float = f16_to_float, .from_float = f16_from_float},
	[SL_DT_BF16] = {.name = "bf16", .block_size = 1, .block_bytes = 2,
	                .to_float = bf16_to_float, .from_float = bf16_from_float},
};

static pthread_once_t types_once = PTHREAD_ONCE_INIT;

static void init_types(void)
{
	sl_quants_register(types);
	sl_formats_register(types);
}

const sl_type_info *sl_type_info_get(int type)
{
	if (type < 0 || type >= SL_DT_COUNT)
		return NULL;
	pthread_once(&types_once, init_types);
	return types[type].name ? &types[type] : NULL;
}

const char *sl_dtype_name(int type)
{
	const sl_type_info *ti = sl_type_info_get(type);
	return ti ? ti->name : "unknown";
}

size_t sl_dtype_row_bytes(int type, int64_t n)
{
	const sl_type_info *ti = sl_type_info_get(type);
	if (!ti || n <= 0 || n % ti->block_size)
		return 0;
	return ti->row_header + (size_t)(n / ti->block_size) * ti->block_bytes;
}

void sl_dtype_rows_to_float(int type, const void *src, float *dst, int64_t n_rows, int64_t row_len)
{
	const sl_type_info *ti = sl_type_info_get(type);
	if (!ti->row_header) {
		ti->to_float(src, dst, n_rows * row_len);
		return;
	}
	size_t rb = sl_dtype_row_bytes(type, row_len);
	for (int64_t r = 0; r < n_rows; r++)
		ti->to_float((const char *)src + (size_t)r * rb, dst + r * row_len, row_len);
}

void sl_dtype_rows_from_float(int type, const float *src, void *dst, int64_t n_rows, int64_t row_len)
{
	const sl_type_info *ti = sl_type_info_get(type);
	if (ti->from_float_rows) {
		ti->from_float_rows(src, dst, n_rows, row_len);
		return;
	}
	if (!ti->row_header) {
		ti->from_float(src, dst, n_rows * row_len);
		return;
	}
	size_t rb = sl_dtype_row_bytes(type, row_len);
	for (int64_t r = 0; r < n_rows; r++)
		ti->from_float(src + r * row_len, (char *)dst + (size_t)r * rb, row_len);
}
