/* Storage formats a tensor can hold, and what the kernels know about each:
 * block size, bytes per block, conversion to F32 and dot products.
 * The GGML types keep ggml's numeric ids so GGUF files map one to one. */
#ifndef SL_DTYPE_H
#define SL_DTYPE_H

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
	SL_DT_COUNT = 64,
} sl_dtype;

typedef struct {
	const char *name;    /* lower case, as recipes and reports spell it */
	int block_size;      /* elements per block (1 for plain floats) */
	size_t block_bytes;  /* bytes per block */
	/* Converts n elements (a multiple of block_size) starting at a block boundary. */
	void (*to_float)(const void *src, float *dst, int64_t n);
	/* Reference quantizer: n floats (a multiple of block_size) to blocks,
	 * producing the bytes ggml's reference quantizer produces. */
	void (*from_float)(const float *src, void *dst, int64_t n);
	/* Optional fast path: sum_i w[i]*x[i] over n elements of a row, x in F32. */
	float (*dot_f32)(const void *w, const float *x, int64_t n);
	/* Optional quantized dot product, as ggml does it: activations are first
	 * quantized to vec_dot_type (from_float of that type), then
	 * *s = sum_i w[i]*xq[i] over n elements with integer arithmetic. */
	int vec_dot_type;
	void (*vec_dot)(int64_t n, float *s, const void *w, const void *xq);
} sl_type_info;

/* NULL for ids slimlab does not know. */
const sl_type_info *sl_type_info_get(int type);
const char *sl_dtype_name(int type);
/* Bytes of one row of n elements; 0 when n is not a multiple of the block. */
size_t sl_dtype_row_bytes(int type, int64_t n);

/* IEEE half and bfloat16 conversions. */
float sl_f16_to_f32(uint16_t h);
uint16_t sl_f32_to_f16(float f);
float sl_bf16_to_f32(uint16_t h);
uint16_t sl_f32_to_bf16(float f);

#endif
