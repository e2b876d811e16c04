/* FP8 (OCP 8-bit floating point) weights, E4M3 (max 448) and E5M2 (max
 * 57344), with one f32 scale per tensor or per output channel:
 *
 *   row: f32 scale s, then one FP8 code per value; w' = fp8(q)*s.
 *   s = amax/448 (E4M3) or amax/57344 (E5M2), amax over the tensor (the
 *   scale is copied into every row) or, for the -ch types, the row. */
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "formats.h"
#include "scalar.h"

static bool have_avx2;

typedef struct {
	uint8_t (*encode)(float);
	float max;
} fp8_kind;

static const fp8_kind e4m3 = {sl_f32_to_fp8_e4m3, SL_E4M3_MAX}, e5m2 = {sl_f32_to_fp8_e5m2, SL_E5M2_MAX};

static void fp8_quantize_row(const fp8_kind *f, const float *src, uint8_t *dst, int64_t n, float scale)
{
	sl_store_f32(dst, scale);
	for (int64_t i = 0; i < n; i++)
		dst[4 + i] = scale != 0.0f ? f->encode(src[i] / scale) : 0;
}

static void fp8_to_float(const float *lut, const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	float sc = sl_load_f32(s);
	for (int64_t i = 0; i < n; i++)
		dst[i] = lut[s[4 + i]] * sc;
}

static float fp8_dot(const float *lut, const void *w, const float *x, int64_t n)
{
	const uint8_t *s = w;
	float acc = 0.0f;
	int64_t i = 0;
	if (have_avx2) {
		i = n / 16 * 16;
		acc = lut == sl_fp8_e4m3_lut ? sl_dot_e4m3_f32_avx2(s + 4, x, i) : sl_dot_e5m2_f32_avx2(s + 4, x, i);
	}
	for (; i < n; i++)
		acc += lut[s[4 + i]] * x[i];
	return acc * sl_load_f32(s);
}

/* Every row holds the tensor's scale: amax over all rows / the format's max. */
static void fp8_quantize_tensor(const fp8_kind *f, const float *src, void *dst, int64_t rows, int64_t len)
{
	float scale = sl_amax(src, rows * len) / f->max;
	for (int64_t r = 0; r < rows; r++)
		fp8_quantize_row(f, src + r * len, (uint8_t *)dst + (size_t)r * (size_t)(4 + len), len, scale);
}

static void e4m3_rows(const float *s, void *d, int64_t rows, int64_t len) { fp8_quantize_tensor(&e4m3, s, d, rows, len); }
static void e5m2_rows(const float *s, void *d, int64_t rows, int64_t len) { fp8_quantize_tensor(&e5m2, s, d, rows, len); }
static void e4m3_from_float(const float *s, void *d, int64_t n) { e4m3_rows(s, d, 1, n); }
static void e5m2_from_float(const float *s, void *d, int64_t n) { e5m2_rows(s, d, 1, n); }
static void e4m3_ch_from_float(const float *s, void *d, int64_t n)
{
	fp8_quantize_row(&e4m3, s, d, n, sl_amax(s, n) / SL_E4M3_MAX);
}
static void e5m2_ch_from_float(const float *s, void *d, int64_t n)
{
	fp8_quantize_row(&e5m2, s, d, n, sl_amax(s, n) / SL_E5M2_MAX);
}
static void e4m3_to_float(const void *s, float *d, int64_t n) { fp8_to_float(sl_fp8_e4m3_lut, s, d, n); }
static void e5m2_to_float(const void *s, float *d, int64_t n) { fp8_to_float(sl_fp8_e5m2_lut, s, d, n); }
static float e4m3_dot(const void *w, const float *x, int64_t n) { return fp8_dot(sl_fp8_e4m3_lut, w, x, n); }
static float e5m2_dot(const void *w, const float *x, int64_t n) { return fp8_dot(sl_fp8_e5m2_lut, w, x, n); }


/* The one scale of a row, for solvers: the row's values are FP8's times it. */
static void e4m3_grids(const void *span, sl_grid *out, int n_sub)
{
	(void)n_sub;
	*out = (sl_grid){.d = sl_load_f32(span)};
}

void sl_fmt_fp8_register(sl_type_info *t)
{
	have_avx2 = sl_cpu_avx2();
	t[SL_DT_FP8_E4M3] = (sl_type_info){.name = "fp8-e4m3", .block_size = 1, .block_bytes = 1, .row_header = 4,
	                                   .to_float = e4m3_to_float, .from_float = e4m3_from_float,
	                                   .from_float_rows = e4m3_rows, .dot_f32 = e4m3_dot, .grid = SL_GRID_E4M3,
	                                   .scope = SL_SCOPE_TENSOR, .grids = e4m3_grids};
	t[SL_DT_FP8_E4M3_CH] = (sl_type_info){.name = "fp8-e4m3-ch", .block_size = 1, .block_bytes = 1,
	                                      .row_header = 4, .to_float = e4m3_to_float,
	                                      .from_float = e4m3_ch_from_float, .dot_f32 = e4m3_dot,
	                                      .grid = SL_GRID_E4M3, .scope = SL_SCOPE_ROW, .grids = e4m3_grids};
	t[SL_DT_FP8_E5M2] = (sl_type_info){.name = "fp8-e5m2", .block_size = 1, .block_bytes = 1, .row_header = 4,
	                                   .to_float = e5m2_to_float, .from_float = e5m2_from_float,
	                                   .from_float_rows = e5m2_rows, .dot_f32 = e5m2_dot, .grid = SL_GRID_E5M2,
	                                   .scope = SL_SCOPE_TENSOR, .grids = e4m3_grids};
	t[SL_DT_FP8_E5M2_CH] = (sl_type_info){.name = "fp8-e5m2-ch", .block_size = 1, .block_bytes = 1,
	                                      .row_header = 4, .to_float = e5m2_to_float,
	                                      .from_float = e5m2_ch_from_float, .dot_f32 = e5m2_dot,
	                                      .grid = SL_GRID_E5M2, .scope = SL_SCOPE_ROW, .grids = e4m3_grids};
}
