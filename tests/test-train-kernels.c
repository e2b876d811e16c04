/* The fast training kernels against the reference ones, op by op, on
 * shapes that cross every tile boundary (more rows than a tile, ragged
 * last tiles, grouped-query heads), and the identities the ops must keep:
 * the inverse rotation undoes the rotation, a loss's gradient sums to
 * zero over the vocabulary, AdamW's first step moves each weight by lr,
 * LayerNorm and GELU compute what the inference kernels compute; the
 * float exponential the row passes share against libm's in double, and
 * its AVX2 forms against the portable ones bit for bit. */
#include <stdint.h>

#include "kernels/cpu/train-rows.h"
#include "kernels/kernels.h"
#include "test.h"

static uint64_t rng = 12345;

static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float *rnd(size_t n, float scale)
{
	float *p = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		p[i] = frand() * scale;
	return p;
}

static float *copy(const float *a, size_t n)
{
	float *p = malloc(n * sizeof(float));
	memcpy(p, a, n * sizeof(float));
	return p;
}

static double max_rel(const float *a, const float *b, size_t n)
{
	double d = 0, s = 1e-30;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		s = fmax(s, fabs((double)b[i]));
	}
	return d / s;
}

#define SAME(a, b, n, tol, what)                                                                    \
	do {                                                                                        \
		double e_ = max_rel(a, b, n);                                                       \
		CHECK(e_ <= (tol), "%s: cpu differs from ref by %.3g (relative)", what, e_);         \
	} while (0)

static const sl_train_kernels *R, *C;

static void test_matmul(void)
{
	const int T = 150, n_out = 130, n_in = 70;
	float *x = rnd((size_t)T * n_in, 1), *w = rnd((size_t)n_out * n_in, 0.3f), *b = rnd(n_out, 1);
	float *y0 = malloc(sizeof(float) * T * n_out), *y1 = malloc(sizeof(float) * T * n_out);
	R->matmul(y0, x, w, b, T, n_out, n_in);
	C->matmul(y1, x, w, b, T, n_out, n_in);
	SAME(y1, y0, (size_t)T * n_out, 1e-5, "matmul");
	float *dy = rnd((size_t)T * n_out, 1);
	float *dx0 = rnd((size_t)T * n_in, 1), *dw0 = rnd((size_t)n_out * n_in, 1), *db0 = rnd(n_out, 1);
	float *dx1 = copy(dx0, (size_t)T * n_in), *dw1 = copy(dw0, (size_t)n_out * n_in), *db1 = copy(db0, n_out);
	R->matmul_backward(dx0, dw0, db0, dy, x, w, T, n_out, n_in);
	C->matmul_backward(dx1, dw1, db1, dy, x, w, T, n_out, n_in);
	SAME(dx1, dx0, (size_t)T * n_in, 1e-5, "matmul_backward dx (added)");
	SAME(dw1, dw0, (size_t)n_out * n_in, 1e-5, "matmul_backward dw (added)");
	SAME(db1, db0, n_out, 1e-5, "matmul_backward db (added)");
	free(x), free(w), free(b), free(y0), free(y1), free(dy), free(dx0), free(dw0), free(db0), free(dx1), free(dw1),
		free(db1);
}

static void test_attention(void)
{
	const int B = 2, T = 150, H = 4, Hkv = 2, hd = 16, qs = H * hd, ks = Hkv * hd;
	const size_t nq = (size_t)B * T * qs, nk = (size_t)B * T * ks;
	float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *dout = rnd(nq, 1);
	float *o0 = malloc(nq * 4), *o1 = malloc(nq * 4), *l0 = malloc((size_t)B * H * T * 4),
	      *l1 = malloc((size_t)B * H * T * 4);
	R->attention(o0, l0, q, k, v, B, T, H, Hkv, hd);
	C->attention(o1, l1, q, k, v, B, T, H, Hkv, hd);
	SAME(o1, o0, nq, 1e-5, "attention out");
	SAME(l1, l0, (size_t)B * H * T, 1e-5, "attention lse");
	float *dq0 = malloc(nq * 4), *dq1 = malloc(nq * 4), *dk0 = malloc(nk * 4), *dk1 = malloc(nk * 4),
	      *dv0 = malloc(nk * 4), *dv1 = malloc(nk * 4);
	R->attention_backward(dq0, dk0, dv0, dout, q, k, v, o0, l0, B, T, H, Hkv, hd);
	C->attention_backward(dq1, dk1, dv1, dout, q, k, v, o0, l0, B, T, H, Hkv, hd);
	SAME(dq1, dq0, nq, 1e-5, "attention dq");
	SAME(dk1, dk0, nk, 1e-5, "attention dk");
	SAME(dv1, dv0, nk, 1e-5, "attention dv");
	free(q), free(k), free(v), free(dout), free(o0), free(o1), free(l0), free(l1), free(dq0), free(dq1), free(dk0),
		free(dk1), free(dv0), free(dv1);
}

static void test_rows(void)
{
	const int T = 70, n = 40;
	const size_t N = (size_t)T * n;
	float *x = rnd(N, 2), *w = rnd(n, 1), *y0 = malloc(N * 4), *y1 = malloc(N * 4), *r0 = malloc(T * 4),
	      *r1 = malloc(T * 4), *dy = rnd(N, 1);
	R->rmsnorm(y0, r0, x, w, T, n, 1e-5f);
	C->rmsnorm(y1, r1, x, w, T, n, 1e-5f);
	SAME(y1, y0, N, 0, "rmsnorm");
	float *dx0 = rnd(N, 1), *dw0 = rnd(n, 1), *dx1 = copy(dx0, N), *dw1 = copy(dw0, n);
	R->rmsnorm_backward(dx0, dw0, dy, x, w, r0, T, n);
	C->rmsnorm_backward(dx1, dw1, dy, x, w, r0, T, n);
	SAME(dx1, dx0, N, 0, "rmsnorm_backward dx");
	SAME(dw1, dw0, n, 0, "rmsnorm_backward dw");

	/* rope: both layouts, partial rotation; the inverse undoes it */
	const int B = 2, Tq = 35, H = 3, hd = 16, rows = B * Tq;
	float *a = rnd((size_t)rows * H * hd, 1);
	for (int style = SL_ROPE_NORM; style <= SL_ROPE_NEOX; style++) {
		float *p0 = copy(a, (size_t)rows * H * hd), *p1 = copy(a, (size_t)rows * H * hd);
		R->rope(p0, B, Tq, H, hd, 12, 10000.0f, style, false);
		C->rope(p1, B, Tq, H, hd, 12, 10000.0f, style, false);
		SAME(p1, p0, (size_t)rows * H * hd, 0, "rope");
		CHECK(max_rel(p0, a, (size_t)rows * H * hd) > 1e-2, "rope moved nothing");
		C->rope(p1, B, Tq, H, hd, 12, 10000.0f, style, true);
		SAME(p1, a, (size_t)rows * H * hd, 1e-6, "rope then inverse rope");
		free(p0), free(p1);
	}

	/* layernorm, with and without bias: the inference kernel's values */
	float *b = rnd(n, 1), *mu0 = malloc(T * 4), *mu1 = malloc(T * 4), *yi = malloc(N * 4);
	for (int with_b = 0; with_b < 2; with_b++) {
		const float *bb = with_b ? b : NULL;
		R->layernorm(y0, mu0, r0, x, w, bb, T, n, 1e-5f);
		C->layernorm(y1, mu1, r1, x, w, bb, T, n, 1e-5f);
		SAME(y1, y0, N, 0, "layernorm");
		SAME(mu1, mu0, T, 0, "layernorm mean");
		SAME(r1, r0, T, 0, "layernorm rstd");
		sl_kernels_cpu()->layernorm(yi, x, w, bb, T, n, 1e-5f);
		CHECK(!memcmp(yi, y0, N * 4), "the training layernorm differs from the inference one");
	}
	float *ldx0 = rnd(N, 1), *ldw0 = rnd(n, 1), *ldb0 = rnd(n, 1);
	float *ldx1 = copy(ldx0, N), *ldw1 = copy(ldw0, n), *ldb1 = copy(ldb0, n);
	R->layernorm_backward(ldx0, ldw0, ldb0, dy, x, w, mu0, r0, T, n);
	C->layernorm_backward(ldx1, ldw1, ldb1, dy, x, w, mu0, r0, T, n);
	SAME(ldx1, ldx0, N, 0, "layernorm_backward dx");
	SAME(ldw1, ldw0, n, 0, "layernorm_backward dw");
	SAME(ldb1, ldb0, n, 0, "layernorm_backward db");
	/* the gradient of a row's normalized values sums to zero over the row */
	memset(ldx0, 0, N * 4);
	R->layernorm_backward(ldx0, NULL, NULL, dy, x, w, mu0, r0, T, n);
	double lsum = 0;
	for (int i = 0; i < n; i++)
		lsum += ldx0[i];
	CHECK(fabs(lsum) < 1e-5, "layernorm_backward: a row's dx sums to %g, not 0", lsum);

	float *ge0 = malloc(N * 4), *ge1 = malloc(N * 4), *gi = copy(x, N), *gd0 = malloc(N * 4), *gd1 = malloc(N * 4);
	R->gelu(ge0, x, N);
	C->gelu(ge1, x, N);
	SAME(ge1, ge0, N, 0, "gelu");
	sl_kernels_cpu()->gelu(gi, N);
	CHECK(!memcmp(gi, ge0, N * 4), "the training gelu differs from the inference one");
	R->gelu_backward(gd0, dy, x, N);
	C->gelu_backward(gd1, dy, x, N);
	SAME(gd1, gd0, N, 0, "gelu_backward");
	/* against a central difference */
	double gworst = 0;
	for (size_t i = 0; i < N; i += 7) {
		float xp = x[i] + 1e-2f, xm = x[i] - 1e-2f, yp, ym, one = 1, d;
		R->gelu(&yp, &xp, 1);
		R->gelu(&ym, &xm, 1);
		R->gelu_backward(&d, &one, &x[i], 1);
		gworst = fmax(gworst, fabs(d - (yp - ym) / (xp - xm)));
	}
	CHECK(gworst < 1e-3, "gelu_backward differs from a central difference by %g", gworst);
	free(b), free(mu0), free(mu1), free(yi), free(ldx0), free(ldw0), free(ldb0), free(ldx1), free(ldw1), free(ldb1),
		free(ge0), free(ge1), free(gi), free(gd0), free(gd1);

	float *g = rnd(N, 3), *u = rnd(N, 1), *h0 = malloc(N * 4), *h1 = malloc(N * 4);
	R->swiglu(h0, g, u, N);
	C->swiglu(h1, g, u, N);
	SAME(h1, h0, N, 0, "swiglu");
	float *dg0 = malloc(N * 4), *du0 = malloc(N * 4), *dg1 = malloc(N * 4), *du1 = malloc(N * 4);
	R->swiglu_backward(dg0, du0, dy, g, u, N);
	C->swiglu_backward(dg1, du1, dy, g, u, N);
	SAME(dg1, dg0, N, 0, "swiglu_backward dg");
	SAME(du1, du0, N, 0, "swiglu_backward du");

	int32_t ids[70];
	for (int i = 0; i < T; i++)
		ids[i] = (i * 7) % 9;
	float *t0 = rnd(9 * (size_t)n, 1), *t1 = copy(t0, 9 * (size_t)n);
	R->embed_backward(t0, x, ids, T, n);
	C->embed_backward(t1, x, ids, T, n);
	SAME(t1, t0, 9 * (size_t)n, 0, "embed_backward");
	CHECK(fabs(C->sumsq(x, N) - R->sumsq(x, N)) <= 1e-9 * R->sumsq(x, N), "sumsq");
	free(x), free(w), free(y0), free(y1), free(r0), free(r1), free(dy), free(dx0), free(dw0), free(dx1), free(dw1),
		free(a), free(g), free(u), free(h0), free(h1), free(dg0), free(du0), free(dg1), free(du1), free(t0), free(t1);
}

static void test_losses(void)
{
	const int T = 9, V = 37;
	float *z = rnd((size_t)T * V, 4), *t = rnd((size_t)T * V, 4);
	int32_t tg[9] = {1, 5, -1, 36, 0, 7, 7, -1, 20};
	for (int kind = SL_LOSS_CE; kind <= SL_LOSS_KL_REVERSE; kind++) {
		float l0[9], l1[9], *d0 = malloc((size_t)T * V * 4), *d1 = copy(z, (size_t)T * V);
		R->loss(l0, d0, z, t, tg, T, V, kind, 1.7f, 0.3f, 0.5f);
		C->loss(l1, d1, d1, t, tg, T, V, kind, 1.7f, 0.3f, 0.5f); /* in place */
		SAME(d1, d0, (size_t)T * V, 0, "loss gradient (in place)");
		SAME(l1, l0, T, 0, "loss");
		for (int r = 0; r < T; r++) {
			double s = 0;
			for (int i = 0; i < V; i++)
				s += d0[r * V + i];
			CHECK(fabs(s) < 1e-6, "loss kind %d row %d: gradient sums to %g, not 0", kind, r, s);
			if (tg[r] < 0)
				CHECK(l0[r] == 0 && d0[r * V] == 0, "an unscored row counts");
			else
				CHECK(l0[r] > 0, "loss kind %d row %d is %g", kind, r, l0[r]);
		}
		free(d0), free(d1);
	}
	/* the KL terms vanish when student and teacher agree */
	float l[9], *d = malloc((size_t)T * V * 4);
	C->loss(l, d, z, z, tg, T, V, SL_LOSS_KL_FORWARD, 2.0f, 0.0f, 1.0f);
	CHECK(fabs(l[0]) < 1e-6 && fabs(d[3]) < 1e-6, "KL of a distribution to itself: %g", l[0]);
	free(z), free(t), free(d);
}

static void test_adamw(void)
{
	const size_t n = 40000; /* several slices */
	float *w0 = rnd(n, 1), *g = rnd(n, 1), *m0 = calloc(n, 4), *v0 = calloc(n, 4);
	float *w1 = copy(w0, n), *m1 = calloc(n, 4), *v1 = calloc(n, 4), *start = copy(w0, n);
	R->adamw(w0, g, m0, v0, n, 0.5f, 0.01f, 0.9f, 0.95f, 1e-8f, 0.0f, 1);
	C->adamw(w1, g, m1, v1, n, 0.5f, 0.01f, 0.9f, 0.95f, 1e-8f, 0.0f, 1);
	SAME(w1, w0, n, 0, "adamw");
	/* the first bias-corrected step is lr * sign(g), whatever g's scale */
	double worst = 0;
	for (size_t i = 0; i < n; i++)
		if (fabsf(g[i]) > 1e-3f)
			worst = fmax(worst, fabs(fabs((double)w0[i] - start[i]) - 0.01));
	CHECK(worst < 1e-5, "first AdamW step moved a weight by lr +/- %g", worst);
	free(w0), free(g), free(m0), free(v0), free(w1), free(m1), free(v1), free(start);
}

/* Distance in units of the last place of float at the true value. */
static double ulps(float got, double want)
{
	int e;
	frexp(want, &e);
	return fabs(got - want) / ldexp(1.0, (e - 24 > -149 ? e - 24 : -149));
}

static void test_exp(void)
{
	double worst = 0;
	for (float t = -87.0f; t <= 88.0f; t += 0.0007f)
		worst = fmax(worst, ulps(sl_tr_exp1(t), exp((double)t)));
	CHECK(worst <= 2.0, "exp: %.2f ulp from libm's", worst);
	CHECK(sl_tr_exp1(0) == 1.0f && sl_tr_exp1(-1000.0f) < 2e-38f && sl_tr_exp1(-1000.0f) >= 0 &&
	          isnan(sl_tr_exp1(NAN)) && isfinite(sl_tr_exp1(1000.0f)),
	      "exp at 0, far below, NaN and far above");
	/* every path: the same bits as the scalar form, sums in the documented order */
	const int n = 1003; /* a ragged tail */
	float *x = rnd(n, 30), *y = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
	x[5] = -1e30f;
	x[6] = 1e30f;
	double a[8] = {0};
	for (int i = 0; i < n; i++) {
		want[i] = sl_tr_exp1((x[i] - 0.5f) * -1.3f);
		a[i % 8] += want[i];
	}
	double s = sl_tr_exp_sum(y, x, n, 0.5f, -1.3f);
	CHECK(!memcmp(y, want, n * sizeof(float)) &&
	          s == ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])),
	      "exp_sum differs from the scalar exponential or its sum's order");
	float mx = x[0];
	for (int i = 1; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	CHECK(sl_tr_max(x, n) == mx, "max");
	float *g = rnd(n, 12), *u = rnd(n, 2), *dh = rnd(n, 1), *h = malloc(n * 4), *dg = malloc(n * 4), *du = malloc(n * 4);
	sl_tr_swiglu_range(h, g, u, 0, n);
	sl_tr_swiglu_backward_range(dg, du, dh, g, u, 0, n);
	bool same = true;
	for (int i = 0; i < n; i++) {
		float sig = 1.0f / (1.0f + sl_tr_exp1(-g[i]));
		same &= h[i] == g[i] / (1.0f + sl_tr_exp1(-g[i])) * u[i] && du[i] == dh[i] * (g[i] * sig) &&
		        dg[i] == dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
	}
	CHECK(same, "swiglu differs from its scalar form");
	printf("exp: worst %.2f ulp; %s path\n", worst, sl_tr_avx2() ? "AVX2" : "portable");
	free(x), free(y), free(want), free(g), free(u), free(dh), free(h), free(dg), free(du);
}

int main(void)
{
	test_exp();
	R = sl_train_kernels_ref();
	C = sl_train_kernels_cpu();
	test_matmul();
	test_attention();
	test_rows();
	test_losses();
	test_adamw();
	return test_finish();
}
