/* W8A8 products: activations quantized per token to int8 (scale max|x| /
 * 127) meet int8 weights with one f32 scale per row (SL_DT_I8_CH). Each
 * output is one integer dot product, exact, then one multiply by the two
 * scales; integer sums do not depend on their order, so the AVX2 and the
 * portable paths give the same bits, and a token's output does not depend
 * on the batch, the task or the thread that computes it. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../kernels.h"
#include "cpu.h"
#include "w8a8.h"

void sl_act_i8_quantize(const float *x, int T, int n, int8_t *q, float *d)
{
	for (int t = 0; t < T; t++) {
		const float *xr = x + (size_t)t * n;
		int8_t *qr = q + (size_t)t * n;
		float amax = 0.0f;
		for (int i = 0; i < n; i++)
			amax = fmaxf(amax, fabsf(xr[i]));
		float dt = amax / 127.0f, id = dt > 0 ? 1.0f / dt : 0.0f;
		for (int i = 0; i < n; i++)
			qr[i] = (int8_t)fminf(fmaxf(roundf(xr[i] * id), -127.0f), 127.0f);
		d[t] = dt;
	}
}

/* sum w[i] * x[i]; x within -127..127 (sl_act_i8_quantize), w any int8. */
static int64_t dot_portable(const int8_t *w, const int8_t *x, int n)
{
	int64_t s = 0;
	int i = 0;
	for (; i + 32 <= n; i += 32) {
		int32_t b = 0;
		for (int j = 0; j < 32; j++)
			b += (int32_t)w[i + j] * x[i + j];
		s += b;
	}
	for (; i < n; i++)
		s += (int32_t)w[i] * x[i];
	return s;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* |w| as unsigned bytes times x with w's sign: pairs of products sum to at
 * most 2 * 128 * 127 in 16 bits, four of them to an int32 lane, which
 * holds n / 32 such sums for n below 2^20. */
__attribute__((target("avx2"))) static int64_t dot_avx2(const int8_t *w, const int8_t *x, int n)
{
	__m256i acc = _mm256_setzero_si256();
	const __m256i ones = _mm256_set1_epi16(1);
	int i = 0;
	for (; i + 32 <= n; i += 32) {
		__m256i vw = _mm256_loadu_si256((const __m256i *)(w + i));
		__m256i vx = _mm256_loadu_si256((const __m256i *)(x + i));
		__m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(vw), _mm256_sign_epi8(vx, vw));
		acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
	}
	int32_t l[8];
	_mm256_storeu_si256((__m256i *)l, acc);
	int64_t s = 0;
	for (int j = 0; j < 8; j++)
		s += l[j];
	for (; i < n; i++)
		s += (int32_t)w[i] * x[i];
	return s;
}
#endif

typedef struct {
	float *y;
	const int8_t *xq;
	const float *xd;
	int T;
	const char *w;
	int n_out, n_in;
	const float *bias;
	int rows_per_task;
	bool avx2;
} w8_args;

static void w8_task(int task, void *p)
{
	const w8_args *a = p;
	int r0 = task * a->rows_per_task;
	int r1 = r0 + a->rows_per_task < a->n_out ? r0 + a->rows_per_task : a->n_out;
	size_t row_bytes = 4 + (size_t)a->n_in;
	for (int r = r0; r < r1; r++) {
		const char *row = a->w + (size_t)r * row_bytes;
		float wd;
		memcpy(&wd, row, sizeof wd);
		const int8_t *wq = (const int8_t *)(row + 4);
		for (int t = 0; t < a->T; t++) {
			const int8_t *xr = a->xq + (size_t)t * a->n_in;
#if defined(__x86_64__) || defined(__i386__)
			int64_t isum = a->avx2 ? dot_avx2(wq, xr, a->n_in) : dot_portable(wq, xr, a->n_in);
#else
			int64_t isum = dot_portable(wq, xr, a->n_in);
#endif
			float v = (float)((double)isum * (double)(a->xd[t] * wd));
			a->y[(size_t)t * a->n_out + r] = a->bias ? v + a->bias[r] : v;
		}
	}
}

void sl_cpu_matmul_w8a8(float *y, const int8_t *xq, const float *xd, int T, const void *w, int n_out, int n_in,
                        const float *bias)
{
	w8_args a = {y, xq, xd, T, w, n_out, n_in, bias, 0, sl_cpu_avx2()};
	a.rows_per_task = sl_rows_per_task(n_out, 2.0 * T * n_out * (double)n_in);
	sl_parallel_for((n_out + a.rows_per_task - 1) / a.rows_per_task, w8_task, &a);
}
