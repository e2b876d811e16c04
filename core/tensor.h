/* A named tensor in any storage format. Data either points into a mapped
 * model file (read-only, shared) or into memory the tensor owns. Shapes
 * follow GGUF: ne[0] is the innermost (row) length, so a weight matrix
 * of n_out x n_in has ne[0] = n_in, ne[1] = n_out. */
#ifndef SL_TENSOR_H
#define SL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels/dtype.h"
#include "error.h"

#define SL_MAX_DIMS 4
#define SL_NAME_MAX 96

typedef struct sl_tensor {
	char name[SL_NAME_MAX];
	int type;                 /* sl_dtype */
	int n_dims;
	int64_t ne[SL_MAX_DIMS];  /* unused dims are 1 */
	void *data;
	size_t nbytes;
	bool owned;               /* data was malloc'ed for this tensor */
} sl_tensor;

int64_t sl_tensor_nelements(const sl_tensor *t);
int64_t sl_tensor_nrows(const sl_tensor *t);
/* Bytes for ne in type, 0 when the shape does not fit the type or the size
 * overflows. */
size_t sl_tensor_bytes_for(int type, const int64_t *ne, int n_dims);

/* Copies element data of rows [r0, r0+n) to F32 (dst holds n * ne[0] floats). */
void sl_tensor_rows_to_f32(const sl_tensor *t, int64_t r0, int64_t n, float *dst);
/* Makes t an owned F32 tensor (converting if needed). */
sl_status sl_tensor_to_f32(sl_tensor *t, sl_error *err);
/* Replaces t's data with an owned buffer of nbytes in type (contents undefined). */
sl_status sl_tensor_realloc(sl_tensor *t, int type, const int64_t *ne, int n_dims, sl_error *err);
void sl_tensor_release(sl_tensor *t);
/* Checks F32/F16/BF16 data for NaN or infinity; fails naming the tensor. */
sl_status sl_tensor_check_finite(const sl_tensor *t, sl_error *err);
/* "4096 x 11008" */
void sl_tensor_shape_str(const sl_tensor *t, char *buf, size_t n);

#endif
