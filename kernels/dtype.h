/* Storage formats a tensor can hold, and what the kernels know about each:
 * block size, bytes per block, conversion to F32 and dot products.
 * The GGML types keep ggml's numeric ids so GGUF files map one to one. */
#ifndef SL_DTYPE_H
#define SL_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
	SL_DT_F32 = 0,
	SL_DT_F16 = 1,
	SL_DT_Q4_0 = 2,
	SL_DT_Q4_1 = 3,
	SL_DT_Q5_0 = 6,
	SL_DT_Q5_1 = 7,
	SL_DT_Q8_0 = 8,
	SL_DT_Q8_1 = 9,
	SL_DT_Q2_K = 10,
	SL_DT_Q3_K = 11,
	SL_DT_Q4_K = 12,
	SL_DT_Q5_K = 13,
	SL_DT_Q6_K = 14,
	SL_DT_Q8_K = 15,
	SL_DT_BF16 = 30,
	SL_DT_GGML_END = 40, /* ids below this are ggml's; slimlab's own follow */

	/* slimlab's formats. Per-channel and per-tensor scales live in a row
	 * header (see row_header below), so any row converts on its own. */
	SL_DT_I8_CH = 40,        /* int8, symmetric, one f32 scale per row */
	SL_DT_FP8_E4M3 = 41,     /* E4M3 (max 448), one f32 scale per tensor */
	SL_DT_FP8_E4M3_CH = 42,  /* E4M3, one f32 scale per row */
	SL_DT_FP8_E5M2 = 43,     /* E5M2 (max 57344), one f32 scale per tensor */
	SL_DT_FP8_E5M2_CH = 44,  /* E5M2, one f32 scale per row */
	SL_DT_NVFP4 = 45,        /* E2M1 values, E4M3 scale per 16, f32 tensor scale */
	SL_DT_MXFP4 = 46,        /* E2M1 values, E8M0 scale per 32 */
	/* Group-wise integers: SL_DT_INT_BASE + 6 * bits_index + 2 * group_index + asym,
	 * bits 8/4/3/2 (index 0..3), groups 32/64/128 (index 0..2); symmetric
	 * blocks hold an f16 scale, asymmetric ones an f16 scale and f16 minimum. */
	SL_DT_INT_BASE = 48,
	SL_DT_INT_END = 48 + 24,
	/* NormalFloat (QLoRA): 4-bit codes of sixteen normal quantiles in [-1, 1]. */
	SL_DT_NF4 = 72,          /* f32 absmax scale per 64 */
	SL_DT_NF4_DQ = 73,       /* the scales quantized again: a byte per 64, f32 row header */
	SL_DT_COUNT = 128,
} sl_dtype;

/* The group-wise integer type for bits (8, 4, 3, 2) and group (32, 64,
 * 128); -1 when there is none. */
static inline int sl_dtype_int_group(int bits, int group, int asym)
{
	int bi = bits == 8 ? 0 : bits == 4 ? 1 : bits == 3 ? 2 : bits == 2 ? 3 : -1;
	int gi = group == 32 ? 0 : group == 64 ? 1 : group == 128 ? 2 : -1;
	if (bi < 0 || gi < 0)
		return -1;
	return SL_DT_INT_BASE + 6 * bi + 2 * gi + (asym ? 1 : 0);
}

/* The values a run of quantized weights can take once its scale is fixed:
 * uniform levels m + d*k for whole k in [kmin, kmax], or a minifloat's
 * values times d, or NF4's sixteen values times d. Solvers that round one
 * weight at a time (and fake quantization) work on these grids. */
typedef enum {
	SL_GRID_NONE = 0, SL_GRID_UNIFORM, SL_GRID_E4M3, SL_GRID_E5M2, SL_GRID_E2M1, SL_GRID_NF4
} sl_grid_kind;
/* What one call of from_float fixes the scales of. */
typedef enum { SL_SCOPE_BLOCK = 0, SL_SCOPE_ROW, SL_SCOPE_TENSOR } sl_scale_scope;
typedef struct {
	float d, m;
	int16_t kmin, kmax;
} sl_grid;

/* The bits (8, 4, 3, 2), group and symmetry of a group-wise integer type;
 * false for other types. */
static inline bool sl_dtype_int_layout(int type, int *bits, int *group, int *asym)
{
	if (type < SL_DT_INT_BASE || type >= SL_DT_INT_END)
		return false;
	int k = type - SL_DT_INT_BASE;
	static const int bit_of[4] = {8, 4, 3, 2}, group_of[3] = {32, 64, 128};
	*bits = bit_of[k / 6];
	*group = group_of[k % 6 / 2];
	*asym = k % 2;
	return true;
}

/* Activation rows one vec_dot_tile call takes at most, weight rows a
 * vec_dot_rows call decodes together, and activation rows one
 * vec_dot_rows call takes at most. */
#define SL_DOT_TILE 4
#define SL_DOT_ROWS 4
#define SL_DOT_ROWS_TOKENS 8

typedef struct {
	const char *name;    /* lower case, as recipes and reports spell it */
	int block_size;      /* elements per block (1 for plain floats) */
	size_t block_bytes;  /* bytes per block */
	size_t row_header;   /* bytes before each row's first block (row scales) */
	/* Converts n elements (a multiple of block_size) starting at a block
	 * boundary. Types with a row header convert exactly one row of n
	 * (use sl_dtype_rows_to_float for several). */
	void (*to_float)(const void *src, float *dst, int64_t n);
	/* Reference quantizer: n floats (a multiple of block_size) to blocks;
	 * for ggml's types, the bytes ggml's reference quantizer produces.
	 * Types with a row header quantize exactly one row of n. */
	void (*from_float)(const float *src, void *dst, int64_t n);
	/* Types whose scale spans the whole tensor (per-tensor FP8, NVFP4's
	 * global scale) quantize all rows at once here, each row header
	 * holding a copy of the tensor scale; from_float then treats its one
	 * row as the whole tensor. NULL for every other type. */
	void (*from_float_rows)(const float *src, void *dst, int64_t n_rows, int64_t row_len);
	/* Optional fast path: sum_i w[i]*x[i] over n elements of a row, x in F32. */
	float (*dot_f32)(const void *w, const float *x, int64_t n);
	/* Optional quantized dot product, as ggml does it: activations are first
	 * quantized to vec_dot_type (from_float of that type), then
	 * *s = sum_i w[i]*xq[i] over n elements with integer arithmetic. */
	int vec_dot_type;
	void (*vec_dot)(int64_t n, float *s, const void *w, const void *xq);
	/* Optional: vec_dot of one weight row against nt (1..SL_DOT_TILE)
	 * activation rows, row t at xq + t*xs bytes and its result in s[t*ss],
	 * each the very bits vec_dot gives it: the weights are decoded once
	 * for all nt rows. */
	void (*vec_dot_tile)(int64_t n, int nt, float *s, size_t ss, const void *w, const void *xq, size_t xs);
	/* Optional: nr (any number; decoded about SL_DOT_ROWS at a time)
	 * weight rows, row r at w + r*ws bytes, against nt
	 * (1..SL_DOT_ROWS_TOKENS) activation rows at xq + t*xs, into
	 * y[t*ys + r]; each result the bits vec_dot gives it. */
	void (*vec_dot_rows)(int64_t n, int nr, int nt, float *y, size_t ys, const void *w, size_t ws, const void *xq,
	                     size_t xs);
	/* Optional: vec_dot_rows for any number of rows and tokens, a
	 * product's share in one call (worth it from some SL_DOT_TILE tokens
	 * on); each result the bits vec_dot gives it. */
	void (*vec_dot_gemm)(int64_t n, int nr, int nt, float *y, size_t ys, const void *w, size_t ws, const void *xq,
	                     size_t xs);
	/* How activations are quantized to this type for the integer dot
	 * products, where that differs from from_float (NULL: from_float). */
	void (*from_float_act)(const float *src, void *dst, int64_t n);
	/* The grid: its kind (SL_GRID_NONE for plain floats); what a scale
	 * spans (a block, a row, or the whole tensor, whose rows from_float_rows
	 * quantizes together); sub, the elements sharing one scale (0: the
	 * row); has_min, a minimum beside each scale; and grids(), which reads
	 * the grid of each of n_sub runs from the bytes from_float wrote for
	 * one span (a block, or a row with its header). */
	uint8_t grid, scope;
	bool has_min;
	int sub;
	void (*grids)(const void *span, sl_grid *out, int n_sub);
	/* A type whose bytes are this type's, value for value (0: none; no
	 * block type shares F32's bytes): ggml types slimlab's layouts match. */
	int same_bytes_as;
} sl_type_info;

/* NULL for ids slimlab does not know. */
const sl_type_info *sl_type_info_get(int type);
const char *sl_dtype_name(int type);
/* Bytes of one row of n elements; 0 when n is not a multiple of the block. */
size_t sl_dtype_row_bytes(int type, int64_t n);
/* Converts n_rows rows of row_len elements, whatever the type's layout. */
void sl_dtype_rows_to_float(int type, const void *src, float *dst, int64_t n_rows, int64_t row_len);
/* Quantizes n_rows rows of row_len elements into the type's layout. */
void sl_dtype_rows_from_float(int type, const float *src, void *dst, int64_t n_rows, int64_t row_len);

/* The ggml type that holds every value of a slimlab type exactly, so that
 * GGUF exports keep real block types: group-wise int4, int3 and int2 as
 * Q4_0 (symmetric) or Q4_1 (with minimum) blocks of 32 that repeat their
 * group's scale, symmetric int8 groups as Q8_0. -1 when there is none. */
int sl_dtype_ggml_twin(int type);
/* Rewrites one row of n elements of type in its ggml twin, value for value. */
void sl_dtype_to_ggml_twin(int type, const void *src, void *dst, int64_t n);

/* IEEE half and bfloat16 conversions. */
float sl_f16_to_f32(uint16_t h);
uint16_t sl_f32_to_f16(float f);
float sl_bf16_to_f32(uint16_t h);
uint16_t sl_f32_to_bf16(float f);

/* FP8 (OCP 8-bit floating point) and FP4 E2M1 codes. Encoding rounds to
 * nearest even and saturates: finite values and infinities beyond the
 * largest finite value give that value (E4M3 448, E5M2 57344, E2M1 6);
 * NaN gives NaN (E4M3 S.1111.111, E5M2 S.11111.11; E2M1 has none: 0). */
float sl_fp8_e4m3_to_f32(uint8_t c);
uint8_t sl_f32_to_fp8_e4m3(float f);
float sl_fp8_e5m2_to_f32(uint8_t c);
uint8_t sl_f32_to_fp8_e5m2(float f);
float sl_e2m1_to_f32(uint8_t c); /* low 4 bits: sign, 2 exponent bits, 1 mantissa bit */
uint8_t sl_f32_to_e2m1(float f);
/* NF4 codes 0..15 index QLoRA's table, -1 to 1 ascending (code 7 is 0);
 * encoding takes the nearest value, the lower one on a tie, saturates at
 * -1 and 1, and gives 0 for NaN. */
float sl_nf4_to_f32(uint8_t c); /* low 4 bits */
uint8_t sl_f32_to_nf4(float f);

#endif
