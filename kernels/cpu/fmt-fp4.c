/* FP4 weights: E2M1 values (0, 0.5, 1, 1.5, 2, 3, 4, 6 and their
 * negatives) under NVFP4's and MXFP4's scales, with integer dot products
 * against int8-g32 activations (AVX2 ones in formats-avx2.c).
 *
 *   nvfp4   row: f32 global scale S = amax/(448*6) over the tensor; blocks
 *           of 16: one E4M3 scale sb = e4m3(block_amax/6/S), then 8 bytes
 *           of E2M1 codes (planes: byte j holds values j and j + 8);
 *           w' = e2m1(q)*(e4m3(sb)*S).
 *   mxfp4   blocks of 32 (OCP Microscaling): one E8M0 scale byte X+127
 *           with X = floor(log2(amax)) - 2, then 16 bytes of E2M1 codes
 *           (planes as above); w' = e2m1(q)*2^X. */
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "formats.h"
#include "scalar.h"

static bool have_avx2;

#define NVFP4_BLOCK 16
#define NVFP4_BYTES (1 + NVFP4_BLOCK / 2)
#define MXFP4_BLOCK 32
#define MXFP4_BYTES (1 + MXFP4_BLOCK / 2)

/* E2M1 codes of x/scale packed in planes after the scale byte; a zero
 * scale gives zeros. */
static void fp4_encode_run(const float *x, int n, float scale, uint8_t *dst)
{
	uint8_t codes[MXFP4_BLOCK];
	for (int i = 0; i < n; i++)
		codes[i] = scale != 0.0f ? sl_f32_to_e2m1(x[i] / scale) : 0;
	sl_plane_pack(codes, dst, n, 4);
}

static void fp4_decode_run(const uint8_t *src, int n, float scale, float *y)
{
	for (int i = 0; i < n / 2; i++) {
		y[i] = sl_e2m1_lut[src[i] & 0xf] * scale;
		y[i + n / 2] = sl_e2m1_lut[src[i] >> 4] * scale;
	}
}

static float fp4_dot_run(const uint8_t *src, int n, const float *x)
{
	float acc = 0.0f;
	for (int i = 0; i < n / 2; i++)
		acc += sl_e2m1_lut[src[i] & 0xf] * x[i] + sl_e2m1_lut[src[i] >> 4] * x[i + n / 2];
	return acc;
}

static float nvfp4_block_scale(uint8_t sb, float global)
{
	return sl_fp8_e4m3_lut[sb] * global;
}

static void nvfp4_rows(const float *src, void *dst, int64_t rows, int64_t len)
{
	float global = sl_amax(src, rows * len) / (SL_E4M3_MAX * SL_E2M1_MAX);
	size_t rb = 4 + (size_t)(len / NVFP4_BLOCK) * NVFP4_BYTES;
	for (int64_t r = 0; r < rows; r++) {
		uint8_t *d = (uint8_t *)dst + (size_t)r * rb;
		const float *x = src + r * len;
		sl_store_f32(d, global);
		for (int64_t b = 0; b < len / NVFP4_BLOCK; b++, x += NVFP4_BLOCK) {
			uint8_t *blk = d + 4 + (size_t)b * NVFP4_BYTES;
			blk[0] = global != 0.0f ? sl_f32_to_fp8_e4m3(sl_amax(x, NVFP4_BLOCK) / SL_E2M1_MAX / global) : 0;
			fp4_encode_run(x, NVFP4_BLOCK, nvfp4_block_scale(blk[0], global), blk + 1);
		}
	}
}

static void nvfp4_from_float(const float *s, void *d, int64_t n)
{
	nvfp4_rows(s, d, 1, n);
}

static void nvfp4_to_float(const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	float global = sl_load_f32(s);
	for (int64_t b = 0; b < n / NVFP4_BLOCK; b++) {
		const uint8_t *blk = s + 4 + (size_t)b * NVFP4_BYTES;
		fp4_decode_run(blk + 1, NVFP4_BLOCK, nvfp4_block_scale(blk[0], global), dst + b * NVFP4_BLOCK);
	}
}

static float nvfp4_dot(const void *w, const float *x, int64_t n)
{
	const uint8_t *s = w;
	float global = sl_load_f32(s), acc = 0.0f;
	for (int64_t b = 0; b < n / NVFP4_BLOCK; b++) {
		const uint8_t *blk = s + 4 + (size_t)b * NVFP4_BYTES;
		acc += nvfp4_block_scale(blk[0], global) * fp4_dot_run(blk + 1, NVFP4_BLOCK, x + b * NVFP4_BLOCK);
	}
	return acc;
}

/* sum of (2 * value) * x over a run of n E2M1 codes in planes, an integer. */
static int fp4_idot(const uint8_t *q, const int8_t *x, int n)
{
	int s = 0;
	for (int i = 0; i < n / 2; i++)
		s += sl_e2m1_x2[q[i] & 0xf] * x[i] + sl_e2m1_x2[q[i] >> 4] * x[i + n / 2];
	return s;
}

static void nvfp4_vec_dot(int64_t n, float *s, const void *w, const void *xq)
{
	const uint8_t *row = w;
	const sl_act_block *x = xq;
	if (have_avx2) {
		*s = sl_dot_nvfp4_avx2(row, x, n);
		return;
	}
	float global = sl_load_f32(row), acc = 0.0f;
	const uint8_t *b = row + 4;
	for (int64_t r = 0; r < n / SL_ACT_RUN; r++, b += 2 * NVFP4_BYTES, x++) {
		float s0 = sl_fp8_e4m3_lut[b[0]] * (float)fp4_idot(b + 1, x->q, NVFP4_BLOCK);
		float s1 = sl_fp8_e4m3_lut[b[NVFP4_BYTES]] * (float)fp4_idot(b + NVFP4_BYTES + 1, x->q + 16, NVFP4_BLOCK);
		acc += sl_f16_to_f32(x->d) * (s0 + s1);
	}
	*s = acc * 0.5f * global;
}

/* E8M0: 2^(code - 127); 0xff is NaN. */
static float e8m0_scale(uint8_t c)
{
	return c == 0xff ? NAN : ldexpf(1.0f, c - 127);
}

static void mxfp4_from_float(const float *src, void *dst, int64_t n)
{
	uint8_t *d = dst;
	for (int64_t b = 0; b < n / MXFP4_BLOCK; b++, src += MXFP4_BLOCK, d += MXFP4_BYTES) {
		float amax = sl_amax(src, MXFP4_BLOCK);
		int x = -127;
		if (!isfinite(amax)) {
			d[0] = 0xff;
			memset(d + 1, 0, MXFP4_BLOCK / 2);
			continue;
		}
		if (amax > 0.0f) {
			int k;
			frexpf(amax, &k);
			x = k - 1 - 2; /* floor(log2(amax)) minus E2M1's largest exponent */
			x = x < -127 ? -127 : x;
		}
		d[0] = (uint8_t)(x + 127);
		fp4_encode_run(src, MXFP4_BLOCK, e8m0_scale(d[0]), d + 1);
	}
}

static void mxfp4_to_float(const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	for (int64_t b = 0; b < n / MXFP4_BLOCK; b++, s += MXFP4_BYTES)
		fp4_decode_run(s + 1, MXFP4_BLOCK, e8m0_scale(s[0]), dst + b * MXFP4_BLOCK);
}

static void mxfp4_vec_dot(int64_t n, float *s, const void *w, const void *xq)
{
	const uint8_t *b = w;
	const sl_act_block *x = xq;
	if (have_avx2) {
		*s = sl_dot_mxfp4_avx2(b, x, n);
		return;
	}
	float acc = 0.0f;
	for (int64_t r = 0; r < n / MXFP4_BLOCK; r++, b += MXFP4_BYTES, x++)
		acc += e8m0_scale(b[0]) * sl_f16_to_f32(x->d) * (float)fp4_idot(b + 1, x->q, MXFP4_BLOCK);
	*s = acc * 0.5f;
}

static float mxfp4_dot(const void *w, const float *x, int64_t n)
{
	const uint8_t *s = w;
	float acc = 0.0f;
	for (int64_t b = 0; b < n / MXFP4_BLOCK; b++, s += MXFP4_BYTES)
		acc += e8m0_scale(s[0]) * fp4_dot_run(s + 1, MXFP4_BLOCK, x + b * MXFP4_BLOCK);
	return acc;
}


/* ---- grids and registration ---------------------------------------------------- */

static void nvfp4_grids(const void *span, sl_grid *out, int n_sub)
{
	const uint8_t *p = span;
	float global = sl_load_f32(p);
	for (int k = 0; k < n_sub; k++)
		out[k] = (sl_grid){.d = nvfp4_block_scale(p[4 + (size_t)k * NVFP4_BYTES], global)};
}

static void mxfp4_grids(const void *span, sl_grid *out, int n_sub)
{
	const uint8_t *p = span;
	for (int k = 0; k < n_sub; k++, p += MXFP4_BYTES)
		out[k] = (sl_grid){.d = p[0] == 0xff ? 0.0f : e8m0_scale(p[0])};
}

void sl_fmt_fp4_register(sl_type_info *t)
{
	have_avx2 = sl_cpu_avx2();
	const int act = sl_dtype_int_group(8, 32, 0);
	t[SL_DT_NVFP4] = (sl_type_info){.name = "nvfp4", .block_size = NVFP4_BLOCK, .block_bytes = NVFP4_BYTES,
	                                .row_header = 4, .to_float = nvfp4_to_float, .from_float = nvfp4_from_float,
	                                .from_float_rows = nvfp4_rows, .dot_f32 = nvfp4_dot, .vec_dot_type = act,
	                                .vec_dot = nvfp4_vec_dot, .grid = SL_GRID_E2M1, .scope = SL_SCOPE_TENSOR,
	                                .sub = NVFP4_BLOCK, .grids = nvfp4_grids};
	t[SL_DT_MXFP4] = (sl_type_info){.name = "mxfp4", .block_size = MXFP4_BLOCK, .block_bytes = MXFP4_BYTES,
	                                .to_float = mxfp4_to_float, .from_float = mxfp4_from_float,
	                                .dot_f32 = mxfp4_dot, .vec_dot_type = act, .vec_dot = mxfp4_vec_dot,
	                                .grid = SL_GRID_E2M1, .scope = SL_SCOPE_BLOCK, .sub = MXFP4_BLOCK,
	                                .grids = mxfp4_grids};
}
