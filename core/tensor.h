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
	/* A weight stored as two factors (the low-rank methods): its values
	 * are lr_a (rows x rank) times lr_b (rank x cols), and it holds no
	 * data of its own (data NULL, nbytes 0; type is what its product is
	 * written in where one is needed, as in a GGUF for llama.cpp). In a
	 * model the factors are tensors of the model, marked factor, and one
	 * lr_b may serve the same module of several blocks (a shared basis);
	 * a weight compressed alone owns its factors (lr_own). */
	struct sl_tensor *lr_a, *lr_b;
	unsigned char lr_own;     /* SL_LR_OWN_A | SL_LR_OWN_B: the factors this weight frees */
	bool factor;              /* this tensor is a factor of a weight */
	/* Packed, but stands for its simulated form (quantized, then
	 * dequantized): products take its rows decoded to F32 and float
	 * inputs, so the figures are those of the F32 decoding while only the
	 * packed bytes are held. */
	bool simulated;
} sl_tensor;

int64_t sl_tensor_nelements(const sl_tensor *t);
int64_t sl_tensor_nrows(const sl_tensor *t);
/* Bytes for ne in type, 0 when the shape does not fit the type or the size
 * overflows. */
size_t sl_tensor_bytes_for(int type, const int64_t *ne, int n_dims);

/* Copies element data of rows [r0, r0+n) to F32 (dst holds n * ne[0] floats);
 * a factored weight's rows are those of its product, each row computed
 * alone, so a row's values do not depend on the rows asked with it. */
void sl_tensor_rows_to_f32(const sl_tensor *t, int64_t r0, int64_t n, float *dst);
/* Makes t an owned F32 tensor (converting if needed; a factored weight
 * becomes its product and lets go of its factors). */
sl_status sl_tensor_to_f32(sl_tensor *t, sl_error *err);
/* Replaces t's data with an owned buffer of nbytes in type (contents undefined). */
sl_status sl_tensor_realloc(sl_tensor *t, int type, const int64_t *ne, int n_dims, sl_error *err);
/* Frees what t owns (its data; its factors when it owns them) and
 * unlinks its factors. */
void sl_tensor_release(sl_tensor *t);
/* The float type a tensor of this type keeps when stored unquantized:
 * its own for F32, F16 and BF16, else F32. */
int sl_dtype_keep_float(int type);
/* Bytes t's values take: its own, or its factors' (a shared basis whole). */
size_t sl_tensor_bytes(const sl_tensor *t);
/* The rank of a factored weight; 0 for any other tensor. */
int sl_tensor_rank(const sl_tensor *t);
/* Makes w (rows x cols) the product of a (rows x rank) and b (rank x
 * cols): its data is released, its type kept; it owns a, and b when
 * own_b (a basis several weights share is owned by one). */
enum { SL_LR_OWN_A = 1, SL_LR_OWN_B = 2 };
/* The suffixes of the factors' names: NAME.lr_a, NAME.lr_b (NAME the
 * weight's without ".weight"). */
#define SL_LR_A "lr_a"
#define SL_LR_B "lr_b"
void sl_tensor_set_factors(sl_tensor *w, sl_tensor *a, sl_tensor *b, bool own_b);
/* Makes t's data its own: a tensor borrowing data (from a file mapping or
 * another model) gets a copy, to be changed in place without touching
 * the lender. */
sl_status sl_tensor_own(sl_tensor *t, sl_error *err);
/* Checks F32/F16/BF16 data for NaN or infinity; fails naming the tensor. */
sl_status sl_tensor_check_finite(const sl_tensor *t, sl_error *err);
/* "4096 x 11008" */
void sl_tensor_shape_str(const sl_tensor *t, char *buf, size_t n);

#endif
