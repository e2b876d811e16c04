/* AVX2 forms of the training kernels' row pieces that spend their time in
 * exponentials and single passes over rows: e^x (train-rows.h's sl_tr_exp1
 * eight lanes at a time), softmax sums, SwiGLU forward and backward.
 * Compiled for the generic target with per-function target attributes
 * (AVX2 without FMA, so no multiply and add is fused and every lane rounds
 * as the portable code does: both paths give the same bits), and called
 * only when the CPU reports AVX2. */
#include <immintrin.h>

#include "train-rows.h"

#define SL_AVX2 __attribute__((target("avx2")))
#define SL_AVX2_INLINE SL_AVX2 static inline __attribute__((always_inline))

/* sl_tr_exp1 on eight lanes, operation for operation. */
SL_AVX2_INLINE __m256 exp8(__m256 t)
{
	const __m256 magic = _mm256_set1_ps(SL_TR_EXP_MAGIC);
	t = _mm256_max_ps(_mm256_set1_ps(SL_TR_EXP_LO), t); /* the second operand when NaN: NaN stays */
	t = _mm256_min_ps(_mm256_set1_ps(SL_TR_EXP_HI), t);
	__m256 m = _mm256_add_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.44269504088896341f)), magic);
	__m256 n = _mm256_sub_ps(m, magic);
	__m256 r = _mm256_sub_ps(_mm256_sub_ps(t, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f))),
	                         _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f));
	__m256i s = _mm256_slli_epi32(
		_mm256_add_epi32(_mm256_castps_si256(m), _mm256_set1_epi32((int)(127u - 0x4B400000u))), 23);
	return _mm256_mul_ps(p, _mm256_castsi256_ps(s));
}

SL_AVX2 float sl_tr_max_avx2(const float *x, int n)
{
	int i = 0;
	float mx = x[0];
	if (n >= 8) {
		__m256 v = _mm256_loadu_ps(x);
		for (i = 8; i + 8 <= n; i += 8)
			v = _mm256_max_ps(v, _mm256_loadu_ps(x + i));
		float l[8];
		_mm256_storeu_ps(l, v);
		for (int k = 0; k < 8; k++)
			mx = l[k] > mx ? l[k] : mx;
	}
	for (; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	return mx;
}

SL_AVX2 double sl_tr_exp_sum_avx2(float *y, const float *x, int n, float sub, float mul)
{
	__m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
	const __m256 vs = _mm256_set1_ps(sub), vm = _mm256_set1_ps(mul);
	int i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs), vm));
		_mm256_storeu_ps(y + i, e);
		lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
		hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
	}
	double a[8];
	_mm256_storeu_pd(a, lo);
	_mm256_storeu_pd(a + 4, hi);
	for (int k = 0; i < n; i++, k++) {
		y[i] = sl_tr_exp1((x[i] - sub) * mul);
		a[k] += y[i];
	}
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

SL_AVX2 void sl_tr_scale_avx2(float *y, int n, float c)
{
	const __m256 vc = _mm256_set1_ps(c);
	int i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vc));
	for (; i < n; i++)
		y[i] *= c;
}

SL_AVX2 void sl_tr_softmax_grad_avx2(float *ds, const float *p, int n, float dot, float scale)
{
	const __m256 vd = _mm256_set1_ps(dot), vc = _mm256_set1_ps(scale);
	int i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 d = _mm256_sub_ps(_mm256_loadu_ps(ds + i), vd);
		_mm256_storeu_ps(ds + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(p + i), d), vc));
	}
	for (; i < n; i++)
		ds[i] = p[i] * (ds[i] - dot) * scale;
}

SL_AVX2_INLINE __m256 neg8(__m256 v)
{
	return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f));
}

SL_AVX2 void sl_tr_swiglu_avx2(float *h, const float *g, const float *u, size_t i0, size_t i1)
{
	const __m256 one = _mm256_set1_ps(1.0f);
	size_t i = i0;
	for (; i + 8 <= i1; i += 8) {
		__m256 gv = _mm256_loadu_ps(g + i);
		__m256 s = _mm256_div_ps(gv, _mm256_add_ps(one, exp8(neg8(gv))));
		_mm256_storeu_ps(h + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
	}
	for (; i < i1; i++)
		h[i] = g[i] / (1.0f + sl_tr_exp1(-g[i])) * u[i];
}

SL_AVX2 void sl_tr_swiglu_backward_avx2(float *dg, float *du, const float *dh, const float *g, const float *u,
                                        size_t i0, size_t i1)
{
	const __m256 one = _mm256_set1_ps(1.0f);
	size_t i = i0;
	for (; i + 8 <= i1; i += 8) {
		__m256 gv = _mm256_loadu_ps(g + i), d = _mm256_loadu_ps(dh + i);
		__m256 sig = _mm256_div_ps(one, _mm256_add_ps(one, exp8(neg8(gv))));
		_mm256_storeu_ps(du + i, _mm256_mul_ps(d, _mm256_mul_ps(gv, sig)));
		__m256 k = _mm256_add_ps(one, _mm256_mul_ps(gv, _mm256_sub_ps(one, sig)));
		_mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(u + i)), sig), k));
	}
	for (; i < i1; i++) {
		float sig = 1.0f / (1.0f + sl_tr_exp1(-g[i]));
		du[i] = dh[i] * (g[i] * sig);
		dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
	}
}
