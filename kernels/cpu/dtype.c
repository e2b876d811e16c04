/* The table of storage types: the plain floats here, the block formats
 * registered by quants.c (ggml's) and fmt-int.c, fmt-fp8.c, fmt-fp4.c,
 * fmt-nf.c (slimlab's own). */
#include "../dtype.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "cpu.h"
#include "formats.h"
#include "quants.h"
#include "scalar.h"

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

/* Halves widen exactly, so F16C's conversion is the scalar one's bits. */
static void f16_to_float_avx2(const void *src, float *dst, int64_t n)
{
	sl_f16_to_f32_avx2(src, dst, n);
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

/* The plain floats a recipe names get fast dot products too, or decoding
 * through them converts every row to F32 first. */
static float half_dot(const void *w, const float *x, int64_t n, bool bf16)
{
	const uint16_t *h = w;
	int64_t i = n / 16 * 16;
	float acc = bf16 ? sl_dot_bf16_f32_avx2(h, x, i) : sl_dot_f16_f32_avx2(h, x, i);
	for (; i < n; i++)
		acc += (bf16 ? sl_bf16_to_f32(h[i]) : sl_f16_to_f32(h[i])) * x[i];
	return acc;
}

static float f16_dot(const void *w, const float *x, int64_t n) { return half_dot(w, x, n, false); }
static float bf16_dot(const void *w, const float *x, int64_t n) { return half_dot(w, x, n, true); }


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
	sl_scalar_init();
	types[SL_DT_F32].scope = types[SL_DT_F16].scope = types[SL_DT_BF16].scope = SL_SCOPE_ROW;
	if (sl_cpu_avx2()) {
		types[SL_DT_F16].to_float = f16_to_float_avx2;
		types[SL_DT_F16].dot_f32 = f16_dot;
		types[SL_DT_BF16].dot_f32 = bf16_dot;
	}
	sl_fmt_int_register(types);
	sl_fmt_fp8_register(types);
	sl_fmt_fp4_register(types);
	sl_fmt_nf_register(types);
	sl_quants_register(types); /* last: it marks which of the above share ggml's bytes */
}

const sl_type_info *sl_type_info_get(int type)
{
	if (type < 0 || type >= SL_DT_COUNT)
		return NULL;
	pthread_once(&types_once, init_types);
	return types[type].name ? &types[type] : NULL;
}

/* Group-wise integers fit in groups of 32 of their symmetry without change,
 * 8-bit symmetric ones in int8-g32 and the rest in 4-bit groups; the ggml
 * type sharing those groups' bytes is the twin. */
int sl_dtype_ggml_twin(int type)
{
	int bits, group, asym;
	if (!sl_dtype_int_layout(type, &bits, &group, &asym) || (bits == 8 && asym))
		return -1;
	const sl_type_info *g32 = sl_type_info_get(sl_dtype_int_group(bits == 8 ? 8 : 4, 32, asym));
	return g32 && g32->same_bytes_as ? g32->same_bytes_as : -1;
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
