/* The reference inference kernels: the sl_kernels table written to be read
 * against the equations, on one thread, with sums and transcendental
 * functions in double, no BLAS and no SIMD. It is not for running models:
 * every backend's table is tested against it, op by op, format by format
 * (tests/test-ops.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels.h"

static void *ref_alloc(size_t bytes)
{
	void *p = malloc(bytes);
	if (!p)
		abort(); /* a row or a score vector; there is no sensible way on without it */
	return p;
}

/* y[t][o] = sum_i W[o][i] x[t][i] + bias[o], where W[o] is row o converted
 * to floats by its type's to_float: what the format means, whatever a
 * backend does to go fast (integer dot products, quantized activations). */
static void ref_matmul(float *y, const float *x, int T, const void *w, int wtype, int n_out, int n_in,
                       const float *bias)
{
	const sl_type_info *ti = sl_type_info_get(wtype);
	const size_t row_bytes = sl_dtype_row_bytes(wtype, n_in);
	float *wrow = ref_alloc((size_t)n_in * sizeof(float));
	for (int o = 0; o < n_out; o++) {
		ti->to_float((const char *)w + (size_t)o * row_bytes, wrow, n_in);
		for (int t = 0; t < T; t++) {
			const float *xr = x + (size_t)t * n_in;
			double s = bias ? bias[o] : 0.0;
			for (int i = 0; i < n_in; i++)
				s += (double)wrow[i] * xr[i];
			y[(size_t)t * n_out + o] = (float)s;
		}
	}
	free(wrow);
}

/* y = x / sqrt(mean(x^2) + eps) * w. */
static void ref_rmsnorm(float *y, const float *x, const float *w, int T, int n, float eps)
{
	for (int t = 0; t < T; t++) {
		const float *xr = x + (size_t)t * n;
		float *yr = y + (size_t)t * n;
		double sum_sq = 0;
		for (int i = 0; i < n; i++)
			sum_sq += (double)xr[i] * xr[i];
		double inv_rms = 1.0 / sqrt(sum_sq / n + eps);
		for (int i = 0; i < n; i++)
			yr[i] = (float)(xr[i] * inv_rms * w[i]);
	}
}

/* y = (x - mean) / sqrt(variance + eps) * w + b. */
static void ref_layernorm(float *y, const float *x, const float *w, const float *b, int T, int n, float eps)
{
	for (int t = 0; t < T; t++) {
		const float *xr = x + (size_t)t * n;
		float *yr = y + (size_t)t * n;
		double mean = 0, variance = 0;
		for (int i = 0; i < n; i++)
			mean += xr[i];
		mean /= n;
		for (int i = 0; i < n; i++)
			variance += (xr[i] - mean) * (xr[i] - mean);
		variance /= n;
		double inv_std = 1.0 / sqrt(variance + eps);
		for (int i = 0; i < n; i++)
			yr[i] = (float)((xr[i] - mean) * inv_std * w[i] + (b ? b[i] : 0.0));
	}
}

/* Pair i of rot_dim/2 turns by the angle pos * theta^(-2i/rot_dim). The
 * GPT-J / Llama style (NORM) pairs adjacent dimensions 2i and 2i+1; the
 * GPT-NeoX style pairs i with i + rot_dim/2. Dimensions from rot_dim on
 * keep their values. */
static void ref_rope(float *x, int T, int n_heads, int head_dim, int rot_dim, int pos0, float theta,
                     sl_rope_style style)
{
	if (style == SL_ROPE_NONE)
		return;
	const int half = rot_dim / 2;
	for (int t = 0; t < T; t++)
		for (int h = 0; h < n_heads; h++) {
			float *head = x + ((size_t)t * n_heads + h) * head_dim;
			for (int i = 0; i < half; i++) {
				double angle = (double)(pos0 + t) * pow(theta, -2.0 * i / rot_dim);
				float *first = style == SL_ROPE_NORM ? &head[2 * i] : &head[i];
				float *second = style == SL_ROPE_NORM ? &head[2 * i + 1] : &head[i + half];
				double u = *first, v = *second;
				*first = (float)(u * cos(angle) - v * sin(angle));
				*second = (float)(u * sin(angle) + v * cos(angle));
			}
		}
}

/* y = (sum_i q_x[i] q_w[i]) * d_x * d_w (+ bias), the sum in 64 bits. */
static void ref_matmul_w8a8(float *y, const int8_t *xq, const float *xd, int T, const void *w, int n_out, int n_in,
                            const float *bias)
{
	for (int r = 0; r < n_out; r++) {
		const uint8_t *row = (const uint8_t *)w + (size_t)r * (4 + (size_t)n_in);
		float wd;
		memcpy(&wd, row, sizeof wd);
		for (int t = 0; t < T; t++) {
			int64_t s = 0;
			for (int i = 0; i < n_in; i++)
				s += (int64_t)((const int8_t *)row)[4 + i] * xq[(size_t)t * n_in + i];
			float v = (float)((double)s * (double)(xd[t] * wd));
			y[(size_t)t * n_out + r] = bias ? v + bias[r] : v;
		}
	}
}

/* Query t at position p = pos0 + t of head h attends to the keys of
 * positions 0..p of its kv head h / (n_heads / n_kv_heads):
 * out = sum_j softmax_j(q . k_j / sqrt(head_dim)) v_j, each cache row
 * converted whole to F32 first. */
static void ref_attention(float *out, const float *q, const void *k_cache, const void *v_cache, int kv_type,
                          size_t kv_row_bytes, int T, int pos0, int n_heads, int n_kv_heads, int head_dim)
{
	const int group = n_heads / n_kv_heads, row_len = n_kv_heads * head_dim, n_pos = pos0 + T;
	double *weight = ref_alloc((size_t)n_pos * sizeof(double));
	float *k = ref_alloc((size_t)n_pos * row_len * sizeof(float));
	float *v = ref_alloc((size_t)n_pos * row_len * sizeof(float));
	for (int j = 0; j < n_pos; j++) {
		sl_dtype_rows_to_float(kv_type, (const char *)k_cache + (size_t)j * kv_row_bytes, k + (size_t)j * row_len, 1,
		                       row_len);
		sl_dtype_rows_to_float(kv_type, (const char *)v_cache + (size_t)j * kv_row_bytes, v + (size_t)j * row_len, 1,
		                       row_len);
	}
	for (int t = 0; t < T; t++)
		for (int h = 0; h < n_heads; h++) {
			const float *qh = q + ((size_t)t * n_heads + h) * head_dim;
			const size_t kv_off = (size_t)(h / group) * head_dim;
			const int n_keys = pos0 + t + 1;
			double max_score = -INFINITY, total = 0;
			for (int j = 0; j < n_keys; j++) {
				const float *kj = k + (size_t)j * row_len + kv_off;
				double s = 0;
				for (int d = 0; d < head_dim; d++)
					s += (double)qh[d] * kj[d];
				weight[j] = s / sqrt((double)head_dim);
				if (weight[j] > max_score)
					max_score = weight[j];
			}
			for (int j = 0; j < n_keys; j++) {
				weight[j] = exp(weight[j] - max_score);
				total += weight[j];
			}
			float *oh = out + ((size_t)t * n_heads + h) * head_dim;
			for (int d = 0; d < head_dim; d++) {
				double s = 0;
				for (int j = 0; j < n_keys; j++)
					s += weight[j] * v[(size_t)j * row_len + kv_off + d];
				oh[d] = (float)(s / total);
			}
		}
	free(weight);
	free(k);
	free(v);
}

/* gate = gate * sigmoid(gate) * up. */
static void ref_swiglu(float *gate, const float *up, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double g = gate[i];
		gate[i] = (float)(g / (1.0 + exp(-g)) * up[i]);
	}
}

/* GPT-2's tanh approximation: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
static void ref_gelu(float *x, size_t n)
{
	const double sqrt_2_over_pi = sqrt(2.0 / M_PI);
	for (size_t i = 0; i < n; i++) {
		double v = x[i];
		x[i] = (float)(0.5 * v * (1.0 + tanh(sqrt_2_over_pi * (v + 0.044715 * v * v * v))));
	}
}

static const sl_kernels ref = {
	.name = "ref",
	.matmul = ref_matmul,
	.matmul_decoded = ref_matmul, /* it decodes every format already */
	.matmul_w8a8 = ref_matmul_w8a8,
	.rmsnorm = ref_rmsnorm,
	.layernorm = ref_layernorm,
	.rope = ref_rope,
	.attention = ref_attention,
	.swiglu = ref_swiglu,
	.gelu = ref_gelu,
};

const sl_kernels *sl_kernels_ref(void)
{
	return &ref;
}
