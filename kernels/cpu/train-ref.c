/* The reference training kernels: plain loops on one thread, sums in
 * double, written to be read against the equations. They are what the
 * fast table is checked against, and both are checked against PyTorch.
 * The row-level pieces here also serve the fast table (train-rows.h); the
 * passes that spend their time in exponentials run eight lanes at a time
 * where the CPU has AVX2 (train-avx2.c), giving the same bits. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "train-rows.h"

/* ---- row passes, AVX2 where the CPU has it ---------------------------- */

static pthread_once_t avx2_once = PTHREAD_ONCE_INIT;
static bool have_avx2;

static void avx2_ask(void)
{
	have_avx2 = sl_cpu_avx2();
}

bool sl_tr_avx2(void)
{
	pthread_once(&avx2_once, avx2_ask);
	return have_avx2;
}

float sl_tr_max(const float *x, int n)
{
	if (sl_tr_avx2())
		return sl_tr_max_avx2(x, n);
	float mx = x[0];
	for (int i = 1; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	return mx;
}

double sl_tr_exp_sum(float *y, const float *x, int n, float sub, float mul)
{
	if (sl_tr_avx2())
		return sl_tr_exp_sum_avx2(y, x, n, sub, mul);
	double a[8] = {0};
	for (int i = 0; i < n; i++) {
		y[i] = sl_tr_exp1((x[i] - sub) * mul);
		a[i % 8] += y[i];
	}
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

void sl_tr_scale(float *y, int n, float c)
{
	if (sl_tr_avx2()) {
		sl_tr_scale_avx2(y, n, c);
		return;
	}
	for (int i = 0; i < n; i++)
		y[i] *= c;
}

void sl_tr_softmax_grad(float *ds, const float *p, int n, float dot, float scale)
{
	if (sl_tr_avx2()) {
		sl_tr_softmax_grad_avx2(ds, p, n, dot, scale);
		return;
	}
	for (int i = 0; i < n; i++)
		ds[i] = p[i] * (ds[i] - dot) * scale;
}

/* ---- row-level pieces ------------------------------------------------ */

void sl_tr_rope_table(float *cs, int T, int rot_dim, float theta)
{
	int half = rot_dim / 2;
	for (int p = 0; p < T; p++)
		for (int i = 0; i < half; i++) {
			double a = (double)p * pow((double)theta, -(double)(2 * i) / (double)rot_dim);
			cs[((size_t)p * half + i) * 2] = (float)cos(a);
			cs[((size_t)p * half + i) * 2 + 1] = (float)sin(a);
		}
}

void sl_tr_rope_rows(float *x, const float *cs, int r0, int r1, int T, int n_heads, int head_dim,
                     int rot_dim, sl_rope_style style, bool inverse)
{
	if (style == SL_ROPE_NONE)
		return;
	int half = rot_dim / 2;
	for (int r = r0; r < r1; r++) {
		const float *c = cs + (size_t)(r % T) * half * 2;
		for (int h = 0; h < n_heads; h++) {
			float *v = x + (size_t)r * n_heads * head_dim + (size_t)h * head_dim;
			for (int i = 0; i < half; i++) {
				int a = style == SL_ROPE_NORM ? 2 * i : i;
				int b = style == SL_ROPE_NORM ? 2 * i + 1 : i + half;
				float co = c[2 * i], si = inverse ? -c[2 * i + 1] : c[2 * i + 1];
				float x0 = v[a], x1 = v[b];
				v[a] = x0 * co - x1 * si;
				v[b] = x0 * si + x1 * co;
			}
		}
	}
}

void sl_tr_rmsnorm_rows(float *y, float *rstd, const float *x, const float *w, int t0, int t1, int n,
                        float eps)
{
	for (int t = t0; t < t1; t++) {
		const float *xr = x + (size_t)t * n;
		float *yr = y + (size_t)t * n;
		double ss = 0;
		for (int i = 0; i < n; i++)
			ss += (double)xr[i] * xr[i];
		float r = (float)(1.0 / sqrt(ss / n + eps));
		rstd[t] = r;
		for (int i = 0; i < n; i++)
			yr[i] = w[i] * (xr[i] * r);
	}
}

void sl_tr_rmsnorm_dx_rows(float *dx, const float *dy, const float *x, const float *w, const float *rstd,
                           int t0, int t1, int n)
{
	for (int t = t0; t < t1; t++) {
		const float *xr = x + (size_t)t * n, *dyr = dy + (size_t)t * n;
		float *dxr = dx + (size_t)t * n;
		double dot = 0; /* sum_j dy_j w_j x_j */
		for (int i = 0; i < n; i++)
			dot += (double)dyr[i] * w[i] * xr[i];
		float r = rstd[t];
		float k = (float)(dot * r * r * r / n);
		for (int i = 0; i < n; i++)
			dxr[i] += r * w[i] * dyr[i] - k * xr[i];
	}
}

void sl_tr_rmsnorm_dw_cols(float *dw, const float *dy, const float *x, const float *rstd, int T, int n,
                           int c0, int c1)
{
	for (int i = c0; i < c1; i++) {
		double s = 0;
		for (int t = 0; t < T; t++)
			s += (double)dy[(size_t)t * n + i] * x[(size_t)t * n + i] * rstd[t];
		dw[i] += (float)s;
	}
}

void sl_tr_layernorm_rows(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                          int t0, int t1, int n, float eps)
{
	for (int t = t0; t < t1; t++) {
		const float *xr = x + (size_t)t * n;
		float *yr = y + (size_t)t * n;
		double mu = 0, var = 0;
		for (int i = 0; i < n; i++)
			mu += xr[i];
		mu /= n;
		for (int i = 0; i < n; i++)
			var += (xr[i] - mu) * (xr[i] - mu);
		var /= n;
		float r = (float)(1.0 / sqrt(var + eps));
		mean[t] = (float)mu;
		rstd[t] = r;
		for (int i = 0; i < n; i++)
			yr[i] = (float)(xr[i] - mu) * r * w[i] + (b ? b[i] : 0.0f);
	}
}

/* With xh = (x - mean) * rstd and g = dy * w:
 * dx = rstd * (g - mean(g) - xh * mean(g * xh)). */
void sl_tr_layernorm_dx_rows(float *dx, const float *dy, const float *x, const float *w, const float *mean,
                             const float *rstd, int t0, int t1, int n)
{
	for (int t = t0; t < t1; t++) {
		const float *xr = x + (size_t)t * n, *dyr = dy + (size_t)t * n;
		float *dxr = dx + (size_t)t * n;
		const float mu = mean[t], r = rstd[t];
		double sg = 0, sgx = 0;
		for (int i = 0; i < n; i++) {
			double g = (double)dyr[i] * w[i];
			sg += g;
			sgx += g * ((xr[i] - mu) * r);
		}
		float mg = (float)(sg / n), mgx = (float)(sgx / n);
		for (int i = 0; i < n; i++)
			dxr[i] += r * (dyr[i] * w[i] - mg - (xr[i] - mu) * r * mgx);
	}
}

void sl_tr_layernorm_dwb_cols(float *dw, float *db, const float *dy, const float *x, const float *mean,
                              const float *rstd, int T, int n, int c0, int c1)
{
	for (int i = c0; i < c1; i++) {
		double sw = 0, sb = 0;
		for (int t = 0; t < T; t++) {
			float d = dy[(size_t)t * n + i];
			sw += (double)d * ((x[(size_t)t * n + i] - mean[t]) * rstd[t]);
			sb += d;
		}
		if (dw)
			dw[i] += (float)sw;
		if (db)
			db[i] += (float)sb;
	}
}

#define GELU_C 0.7978845608028654f /* sqrt(2/pi) */

void sl_tr_gelu_range(float *y, const float *x, size_t i0, size_t i1)
{
	for (size_t i = i0; i < i1; i++) {
		float v = x[i];
		y[i] = 0.5f * v * (1.0f + tanhf(GELU_C * (v + 0.044715f * v * v * v)));
	}
}

void sl_tr_gelu_backward_range(float *dx, const float *dy, const float *x, size_t i0, size_t i1)
{
	for (size_t i = i0; i < i1; i++) {
		float v = x[i], th = tanhf(GELU_C * (v + 0.044715f * v * v * v));
		float du = GELU_C * (1.0f + 3.0f * 0.044715f * v * v);
		dx[i] = dy[i] * (0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du);
	}
}

void sl_tr_swiglu_range(float *h, const float *g, const float *u, size_t i0, size_t i1)
{
	if (sl_tr_avx2()) {
		sl_tr_swiglu_avx2(h, g, u, i0, i1);
		return;
	}
	for (size_t i = i0; i < i1; i++)
		h[i] = g[i] / (1.0f + sl_tr_exp1(-g[i])) * u[i];
}

void sl_tr_swiglu_backward_range(float *dg, float *du, const float *dh, const float *g, const float *u,
                                 size_t i0, size_t i1)
{
	if (sl_tr_avx2()) {
		sl_tr_swiglu_backward_avx2(dg, du, dh, g, u, i0, i1);
		return;
	}
	for (size_t i = i0; i < i1; i++) {
		float sig = 1.0f / (1.0f + sl_tr_exp1(-g[i]));
		du[i] = dh[i] * (g[i] * sig);
		dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
	}
}

void sl_tr_embed_backward_cols(float *dtable, const float *dx, const int32_t *ids, int T, int n, int c0,
                               int c1)
{
	for (int t = 0; t < T; t++) {
		float *row = dtable + (size_t)ids[t] * n;
		const float *d = dx + (size_t)t * n;
		for (int i = c0; i < c1; i++)
			row[i] += d[i];
	}
}

/* A row's softmax at temperature temp, unnormalized: e[i] = e^((z[i] -
 * max) / temp); returns the log-sum-exp of z / temp and sets *inv to 1 /
 * the sum of e (the exponentials in float, their sum in double). */
static double softmax_row(float *e, const float *z, int V, double temp, float *inv)
{
	float mx = sl_tr_max(z, V);
	double s = sl_tr_exp_sum(e, z, V, mx, (float)(1.0 / temp));
	*inv = (float)(1.0 / s);
	return mx / temp + log(s);
}

static float *scratch(size_t n)
{
	float *p = malloc(n * sizeof(float));
	if (!p)
		abort(); /* two rows of the vocabulary; there is no sensible way on without them */
	return p;
}

void sl_tr_loss_rows(float *loss, float *dlogits, const float *logits, const float *teacher,
                     const int32_t *targets, int t0, int t1, int V, sl_loss_kind kind, float temperature,
                     float ce_weight, float scale)
{
	const double tau = kind == SL_LOSS_CE ? 1.0 : temperature;
	const double wce = kind == SL_LOSS_CE ? 1.0 : ce_weight, wkd = 1.0 - wce;
	/* Each row's exponentials, computed once: the student's at 1 (for
	 * cross-entropy) and at tau, the teacher's at tau. */
	float *e1 = scratch((size_t)V * 3), *es = e1 + V, *et = es + V;
	for (int t = t0; t < t1; t++) {
		const float *z = logits + (size_t)t * V;
		const float *tz = teacher ? teacher + (size_t)t * V : NULL;
		float *dz = dlogits + (size_t)t * V;
		int y = targets[t];
		if (y < 0 || y >= V) {
			loss[t] = 0;
			memset(dz, 0, (size_t)V * sizeof(float));
			continue;
		}
		const bool fwd = kind == SL_LOSS_KL_FORWARD;
		float inv1 = 0, inv_s = 0, inv_t = 0;
		double lse1 = wce > 0 ? softmax_row(e1, z, V, 1.0, &inv1) : 0;
		double lse_s = 0, lse_t = 0, kl = 0;
		const double it = 1.0 / tau;
		if (wkd > 0) {
			lse_s = softmax_row(es, z, V, tau, &inv_s);
			lse_t = softmax_row(et, tz, V, tau, &inv_t);
		}
		/* Reverse KL's gradient needs the divergence first; forward KL's
		 * is summed in the loop below. */
		for (int i = 0; wkd > 0 && !fwd && i < V; i++) {
			float lq = (float)(z[i] * it - lse_s), lp = (float)(tz[i] * it - lse_t);
			kl += (double)(es[i] * inv_s) * (lq - lp);
		}
		/* Each dz[i] is written only after z[i] was last read: dz may alias
		 * z. Probabilities in float, their sums in double. */
		const float zy = z[y];
		for (int i = 0; i < V; i++) {
			float g = 0;
			if (wce > 0)
				g += (float)wce * (e1[i] * inv1 - (float)(i == y));
			if (wkd > 0) {
				float lq = (float)(z[i] * it - lse_s), lp = (float)(tz[i] * it - lse_t), q = es[i] * inv_s;
				if (fwd) {
					float pr = et[i] * inv_t;
					kl += (double)pr * (lp - lq);
					g += (float)(wkd * tau) * (q - pr);
				} else {
					g += (float)(wkd * tau) * q * (lq - lp - (float)kl);
				}
			}
			dz[i] = (float)scale * g;
		}
		loss[t] = (float)(wce * (lse1 - zy) + wkd * tau * tau * kl);
	}
	free(e1);
}

void sl_tr_adamw_range(float *w, const float *g, float *m, float *v, size_t i0, size_t i1, float grad_scale,
                       float lr, float beta1, float beta2, float eps, float weight_decay, int64_t t)
{
	float bc1 = (float)(1.0 - pow(beta1, (double)t)), bc2 = (float)(1.0 - pow(beta2, (double)t));
	for (size_t i = i0; i < i1; i++) {
		float gi = g[i] * grad_scale;
		m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
		v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
		float mh = m[i] / bc1, vh = v[i] / bc2;
		w[i] -= lr * (mh / (sqrtf(vh) + eps) + weight_decay * w[i]);
	}
}

/* ---- the reference table --------------------------------------------- */

static void ref_matmul(float *y, const float *x, const float *w, const float *b, int T, int n_out, int n_in)
{
	for (int t = 0; t < T; t++)
		for (int o = 0; o < n_out; o++) {
			double s = b ? b[o] : 0.0;
			for (int i = 0; i < n_in; i++)
				s += (double)x[(size_t)t * n_in + i] * w[(size_t)o * n_in + i];
			y[(size_t)t * n_out + o] = (float)s;
		}
}

static void ref_matmul_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                int T, int n_out, int n_in)
{
	if (dx)
		for (int t = 0; t < T; t++)
			for (int i = 0; i < n_in; i++) {
				double s = 0;
				for (int o = 0; o < n_out; o++)
					s += (double)dy[(size_t)t * n_out + o] * w[(size_t)o * n_in + i];
				dx[(size_t)t * n_in + i] += (float)s;
			}
	for (int o = 0; o < n_out; o++) {
		for (int i = 0; dw && i < n_in; i++) {
			double s = 0;
			for (int t = 0; t < T; t++)
				s += (double)dy[(size_t)t * n_out + o] * x[(size_t)t * n_in + i];
			dw[(size_t)o * n_in + i] += (float)s;
		}
		if (db) {
			double s = 0;
			for (int t = 0; t < T; t++)
				s += dy[(size_t)t * n_out + o];
			db[o] += (float)s;
		}
	}
}

static void ref_rmsnorm(float *y, float *rstd, const float *x, const float *w, int T, int n, float eps)
{
	sl_tr_rmsnorm_rows(y, rstd, x, w, 0, T, n, eps);
}

static void ref_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                                 const float *rstd, int T, int n)
{
	sl_tr_rmsnorm_dx_rows(dx, dy, x, w, rstd, 0, T, n);
	if (dw)
		sl_tr_rmsnorm_dw_cols(dw, dy, x, rstd, T, n, 0, n);
}

static void ref_rope(float *x, int B, int T, int n_heads, int head_dim, int rot_dim, float theta,
                     sl_rope_style style, bool inverse)
{
	float *cs = malloc((size_t)T * rot_dim * sizeof(float));
	if (!cs)
		abort(); /* a few KiB per call; there is no sensible way on without it */
	sl_tr_rope_table(cs, T, rot_dim, theta);
	sl_tr_rope_rows(x, cs, 0, B * T, T, n_heads, head_dim, rot_dim, style, inverse);
	free(cs);
}

/* Scaled score of query row qr against key row kr. */
static double score(const float *qr, const float *kr, int hd)
{
	double s = 0;
	for (int d = 0; d < hd; d++)
		s += (double)qr[d] * kr[d];
	return s / sqrt((double)hd);
}

static void ref_attention(float *out, float *lse, const float *q, const float *k, const float *v, int B, int T,
                          int n_heads, int n_kv_heads, int head_dim)
{
	const int qs = n_heads * head_dim, ks = n_kv_heads * head_dim, hd = head_dim;
	double *p = malloc((size_t)T * sizeof(double));
	if (!p)
		abort();
	for (int b = 0; b < B; b++)
		for (int h = 0; h < n_heads; h++) {
			int kh = h / (n_heads / n_kv_heads);
			for (int t = 0; t < T; t++) {
				const float *qr = q + (size_t)(b * T + t) * qs + h * hd;
				double mx = -INFINITY, sum = 0;
				for (int j = 0; j <= t; j++) {
					p[j] = score(qr, k + (size_t)(b * T + j) * ks + kh * hd, hd);
					mx = p[j] > mx ? p[j] : mx;
				}
				for (int j = 0; j <= t; j++)
					sum += exp(p[j] - mx);
				double l = mx + log(sum);
				lse[((size_t)b * n_heads + h) * T + t] = (float)l;
				float *o = out + (size_t)(b * T + t) * qs + h * hd;
				for (int d = 0; d < hd; d++) {
					double s = 0;
					for (int j = 0; j <= t; j++)
						s += exp(p[j] - l) * v[(size_t)(b * T + j) * ks + kh * hd + d];
					o[d] = (float)s;
				}
			}
		}
	free(p);
}

static void ref_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                   const float *k, const float *v, const float *out, const float *lse, int B,
                                   int T, int n_heads, int n_kv_heads, int head_dim)
{
	const int qs = n_heads * head_dim, ks = n_kv_heads * head_dim, hd = head_dim;
	const double sc = 1.0 / sqrt((double)hd);
	double *dqa = malloc((size_t)hd * sizeof(double));
	if (!dqa)
		abort();
	memset(dk, 0, (size_t)B * T * ks * sizeof(float));
	memset(dv, 0, (size_t)B * T * ks * sizeof(float));
	for (int b = 0; b < B; b++)
		for (int h = 0; h < n_heads; h++) {
			int kh = h / (n_heads / n_kv_heads);
			for (int t = 0; t < T; t++) {
				size_t qi = (size_t)(b * T + t) * qs + h * hd;
				const float *qr = q + qi, *dor = dout + qi, *orow = out + qi;
				double l = lse[((size_t)b * n_heads + h) * T + t];
				double D = 0; /* sum_j P_j dP_j, which equals dout . out */
				for (int d = 0; d < hd; d++)
					D += (double)dor[d] * orow[d];
				memset(dqa, 0, (size_t)hd * sizeof(double));
				for (int j = 0; j <= t; j++) {
					size_t ki = (size_t)(b * T + j) * ks + kh * hd;
					double P = exp(score(qr, k + ki, hd) - l), dP = 0;
					for (int d = 0; d < hd; d++)
						dP += (double)dor[d] * v[ki + d];
					double dS = P * (dP - D) * sc;
					for (int d = 0; d < hd; d++) {
						dqa[d] += dS * k[ki + d];
						dk[ki + d] += (float)(dS * qr[d]);
						dv[ki + d] += (float)(P * dor[d]);
					}
				}
				for (int d = 0; d < hd; d++)
					dq[qi + d] = (float)dqa[d];
			}
		}
	free(dqa);
}

static void ref_layernorm(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int T,
                          int n, float eps)
{
	sl_tr_layernorm_rows(y, mean, rstd, x, w, b, 0, T, n, eps);
}

static void ref_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                   const float *mean, const float *rstd, int T, int n)
{
	sl_tr_layernorm_dx_rows(dx, dy, x, w, mean, rstd, 0, T, n);
	sl_tr_layernorm_dwb_cols(dw, db, dy, x, mean, rstd, T, n, 0, n);
}

static void ref_gelu(float *y, const float *x, size_t n)
{
	sl_tr_gelu_range(y, x, 0, n);
}

static void ref_gelu_backward(float *dx, const float *dy, const float *x, size_t n)
{
	sl_tr_gelu_backward_range(dx, dy, x, 0, n);
}

static void ref_swiglu(float *h, const float *g, const float *u, size_t n)
{
	sl_tr_swiglu_range(h, g, u, 0, n);
}

static void ref_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n)
{
	sl_tr_swiglu_backward_range(dg, du, dh, g, u, 0, n);
}

static void ref_embed_backward(float *dtable, const float *dx, const int32_t *ids, int T, int n)
{
	sl_tr_embed_backward_cols(dtable, dx, ids, T, n, 0, n);
}

static void ref_loss(float *loss, float *dlogits, const float *logits, const float *teacher,
                     const int32_t *targets, int T, int V, sl_loss_kind kind, float temperature, float ce_weight,
                     float scale)
{
	sl_tr_loss_rows(loss, dlogits, logits, teacher, targets, 0, T, V, kind, temperature, ce_weight, scale);
}

static double ref_sumsq(const float *x, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return s;
}

static void ref_adamw(float *w, const float *g, float *m, float *v, size_t n, float grad_scale, float lr,
                      float beta1, float beta2, float eps, float weight_decay, int64_t t)
{
	sl_tr_adamw_range(w, g, m, v, 0, n, grad_scale, lr, beta1, beta2, eps, weight_decay, t);
}

static const sl_train_kernels ref = {
	.name = "ref",
	.matmul = ref_matmul,
	.matmul_backward = ref_matmul_backward,
	.rmsnorm = ref_rmsnorm,
	.rmsnorm_backward = ref_rmsnorm_backward,
	.layernorm = ref_layernorm,
	.layernorm_backward = ref_layernorm_backward,
	.rope = ref_rope,
	.attention = ref_attention,
	.attention_backward = ref_attention_backward,
	.swiglu = ref_swiglu,
	.swiglu_backward = ref_swiglu_backward,
	.gelu = ref_gelu,
	.gelu_backward = ref_gelu_backward,
	.embed_backward = ref_embed_backward,
	.loss = ref_loss,
	.sumsq = ref_sumsq,
	.adamw = ref_adamw,
};

const sl_train_kernels *sl_train_kernels_ref(void)
{
	return &ref;
}
