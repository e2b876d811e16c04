/* Tensor sizes and conversions. */
#include "tensor.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

int64_t sl_tensor_nelements(const sl_tensor *t)
{
	int64_t n = 1;
	for (int i = 0; i < SL_MAX_DIMS; i++)
		n *= t->ne[i];
	return n;
}

int64_t sl_tensor_nrows(const sl_tensor *t)
{
	return sl_tensor_nelements(t) / t->ne[0];
}

size_t sl_tensor_bytes_for(int type, const int64_t *ne, int n_dims)
{
	size_t row = sl_dtype_row_bytes(type, ne[0]);
	if (!row)
		return 0;
	size_t total = row;
	for (int i = 1; i < n_dims; i++) {
		if (ne[i] <= 0 || (uint64_t)ne[i] > SIZE_MAX / total)
			return 0;
		total *= (size_t)ne[i];
	}
	/* Nothing slimlab opens holds a single tensor of a terabyte or more. */
	if (total >= ((size_t)1 << 40))
		return 0;
	return total;
}

/* Rows of a factored weight: each row of a (rank values) times b, by one
 * matrix-vector product per row. */
static void product_rows(const sl_tensor *t, int64_t r0, int64_t n, float *dst)
{
	const sl_tensor *a = t->lr_a, *b = t->lr_b;
	int rank = (int)b->ne[1], cols = (int)b->ne[0];
	float *bf = b->type == SL_DT_F32 ? NULL : sl_malloc_array((size_t)rank * cols, sizeof *bf);
	float *ar = sl_malloc_array((size_t)rank, sizeof *ar);
	if ((b->type != SL_DT_F32 && !bf) || !ar)
		abort(); /* a row's worth; there is no sensible way on without it */
	if (bf)
		sl_tensor_rows_to_f32(b, 0, rank, bf);
	const float *B = bf ? bf : b->data;
	for (int64_t r = 0; r < n; r++) {
		sl_tensor_rows_to_f32(a, r0 + r, 1, ar);
		cblas_sgemv(CblasRowMajor, CblasTrans, rank, cols, 1.0f, B, cols, ar, 1, 0.0f, dst + (size_t)r * cols, 1);
	}
	free(bf);
	free(ar);
}

void sl_tensor_rows_to_f32(const sl_tensor *t, int64_t r0, int64_t n, float *dst)
{
	if (t->lr_a) {
		product_rows(t, r0, n, dst);
		return;
	}
	size_t row = sl_dtype_row_bytes(t->type, t->ne[0]);
	const char *src = (const char *)t->data + (size_t)r0 * row;
	if (t->type == SL_DT_F32) {
		memcpy(dst, src, (size_t)(n * t->ne[0]) * sizeof(float));
		return;
	}
	sl_dtype_rows_to_float(t->type, src, dst, n, t->ne[0]);
}

/* A tensor's own data (count x size bytes, as sl_malloc_array), advised
 * to take huge pages: weights stream once a token (see sl_advise_huge). */
static void *data_alloc(size_t count, size_t size)
{
	void *d = sl_malloc_array(count, size);
	if (d)
		sl_advise_huge(d, count * size);
	return d;
}

sl_status sl_tensor_realloc(sl_tensor *t, int type, const int64_t *ne, int n_dims, sl_error *err)
{
	size_t nb = sl_tensor_bytes_for(type, ne, n_dims);
	if (!nb)
		return sl_errorf(err, SL_ERR_ARG, "tensor '%s': shape does not fit type %s", t->name,
		                 sl_dtype_name(type));
	void *d = data_alloc(nb, 1);
	if (!d)
		return sl_errorf(err, SL_ERR_NOMEM, "tensor '%s': out of memory for %zu bytes", t->name, nb);
	sl_tensor_release(t);
	t->data = d;
	t->owned = true;
	t->nbytes = nb;
	t->type = type;
	t->n_dims = n_dims;
	for (int i = 0; i < SL_MAX_DIMS; i++)
		t->ne[i] = i < n_dims ? ne[i] : 1;
	return SL_OK;
}

sl_status sl_tensor_to_f32(sl_tensor *t, sl_error *err)
{
	if (t->type == SL_DT_F32 && t->owned && !t->lr_a)
		return SL_OK;
	size_t n = (size_t)sl_tensor_nelements(t);
	float *d = data_alloc(n, sizeof(float));
	if (!d)
		return sl_errorf(err, SL_ERR_NOMEM, "tensor '%s': out of memory converting to f32", t->name);
	sl_tensor_rows_to_f32(t, 0, sl_tensor_nrows(t), d);
	sl_tensor_release(t);
	t->data = d;
	t->owned = true;
	t->type = SL_DT_F32;
	t->nbytes = n * sizeof(float);
	return SL_OK;
}

void sl_tensor_release(sl_tensor *t)
{
	if (t->owned)
		free(t->data);
	for (int k = 0; k < 2; k++) {
		sl_tensor *f = k ? t->lr_b : t->lr_a;
		if (f && (t->lr_own & (k ? SL_LR_OWN_B : SL_LR_OWN_A))) {
			sl_tensor_release(f);
			free(f);
		}
	}
	t->data = NULL;
	t->owned = false;
	t->nbytes = 0;
	t->lr_a = t->lr_b = NULL;
	t->lr_own = 0;
	t->simulated = false;
}

int sl_dtype_keep_float(int type)
{
	return type == SL_DT_F32 || type == SL_DT_F16 || type == SL_DT_BF16 ? type : SL_DT_F32;
}

size_t sl_tensor_bytes(const sl_tensor *t)
{
	return t->lr_a ? t->lr_a->nbytes + t->lr_b->nbytes : t->nbytes;
}

int sl_tensor_rank(const sl_tensor *t)
{
	return t && t->lr_b ? (int)t->lr_b->ne[1] : 0;
}

void sl_tensor_set_factors(sl_tensor *w, sl_tensor *a, sl_tensor *b, bool own_b)
{
	int type = w->type;
	sl_tensor_release(w);
	w->type = type;
	w->lr_a = a;
	w->lr_b = b;
	w->lr_own = SL_LR_OWN_A | (own_b ? SL_LR_OWN_B : 0);
	a->factor = b->factor = true;
}

sl_status sl_tensor_own(sl_tensor *t, sl_error *err)
{
	if (t->owned)
		return SL_OK;
	void *d = data_alloc(t->nbytes, 1);
	if (!d)
		return sl_errorf(err, SL_ERR_NOMEM, "tensor '%s': out of memory for %zu bytes", t->name, t->nbytes);
	memcpy(d, t->data, t->nbytes);
	t->data = d;
	t->owned = true;
	return SL_OK;
}

/* Whether any of the n values at p has its exponent field (mask) all ones,
 * an infinity or a NaN: an integer test on the stored bits that
 * vectorizes, no conversion. size: 4 (F32) or 2 (F16, BF16). */
static bool any_nonfinite(const void *p, int64_t n, int size, uint32_t mask)
{
	unsigned bad = 0;
	if (size == 4) {
		const uint32_t *v = p;
		for (int64_t i = 0; i < n; i++)
			bad |= (v[i] & mask) == mask;
	} else {
		const uint16_t *v = p;
		for (int64_t i = 0; i < n; i++)
			bad |= (v[i] & mask) == mask;
	}
	return bad;
}

sl_status sl_tensor_check_finite(const sl_tensor *t, sl_error *err)
{
	/* A factored weight's values are its factors', checked as tensors of their own. */
	if (t->lr_a)
		return SL_OK;
	if (t->type != SL_DT_F32 && t->type != SL_DT_F16 && t->type != SL_DT_BF16)
		return SL_OK;
	int64_t n = sl_tensor_nelements(t);
	int size = t->type == SL_DT_F32 ? 4 : 2;
	uint32_t mask = t->type == SL_DT_F32 ? 0x7f800000u : t->type == SL_DT_F16 ? 0x7c00u : 0x7f80u;
	float buf[1024];
	for (int64_t i = 0; i < n; i += 1024) {
		int64_t k = n - i < 1024 ? n - i : 1024;
		const char *src = (const char *)t->data + (size_t)i * (size_t)size;
		if (!any_nonfinite(src, k, size, mask))
			continue;
		sl_type_info_get(t->type)->to_float(src, buf, k);
		for (int64_t j = 0; j < k; j++)
			if (!isfinite(buf[j]))
				return sl_errorf(err, SL_ERR_FORMAT,
				                 "tensor '%s' holds %s at element %lld: the weights are corrupt",
				                 t->name, isnan(buf[j]) ? "NaN" : "infinity", (long long)(i + j));
	}
	return SL_OK;
}

void sl_tensor_shape_str(const sl_tensor *t, char *buf, size_t n)
{
	size_t k = 0;
	buf[0] = 0;
	for (int i = t->n_dims - 1; i >= 0 && k < n; i--) {
		int w = snprintf(buf + k, n - k, "%s%lld", k ? " x " : "", (long long)t->ne[i]);
		if (w < 0)
			break;
		k += (size_t)w;
	}
}
