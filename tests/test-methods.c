/* The compression methods on plain matrices, against what their papers
 * promise: GPTQ rounds with no more output error than round-to-nearest
 * (and equals it when inputs are uncorrelated), SparseGPT and Wanda prune
 * with less output error than magnitude, N:M masks have the stated shape,
 * and the Cholesky factor reproduces its matrix. */
#include <stdint.h>

#include "core/methods/method.h"
#include "test.h"

static uint64_t rng_state = 88172645463325252ull;

/* T tokens of correlated inputs: a shared factor per token plus noise,
 * channel scales spread over two decades, a few outlier channels. */
static float *make_inputs(int n, int T)
{
	float *X = malloc((size_t)T * n * sizeof *X), *scale = malloc((size_t)n * sizeof *scale);
	for (int j = 0; j < n; j++)
		scale[j] = (float)pow(10.0, 2.0 * test_uniform(&rng_state) - 1.0) * (j % 37 == 5 ? 20.0f : 1.0f);
	for (int t = 0; t < T; t++) {
		float f = test_gauss(&rng_state), g = test_gauss(&rng_state);
		for (int j = 0; j < n; j++)
			X[(size_t)t * n + j] = scale[j] * (0.8f * (j % 2 ? f : g) + 0.6f * test_gauss(&rng_state));
	}
	free(scale);
	return X;
}

static float *make_hessian(int n, int T)
{
	float *X = make_inputs(n, T), *H = test_hessian(X, n, T);
	free(X);
	return H;
}

static float *random_matrix(int rows, int cols)
{
	float *W = malloc((size_t)rows * cols * sizeof *W);
	for (int i = 0; i < rows * cols; i++)
		W[i] = 0.1f * test_gauss(&rng_state);
	return W;
}

static float *copy_of(const float *W, int n)
{
	float *c = malloc((size_t)n * sizeof *c);
	memcpy(c, W, (size_t)n * sizeof *c);
	return c;
}

/* A uniform grid of step 0.05 needs no scales: it isolates the solver. */
static void toy_fit(void *ctx, const float *seg, int ld, int c0)
{
	(void)ctx, (void)seg, (void)ld, (void)c0;
}

static float toy_round(void *ctx, int r, int c, float v)
{
	(void)ctx, (void)r, (void)c;
	return 0.05f * roundf(v / 0.05f);
}

static void test_cholesky(void)
{
	int n = 5;
	double A[25], L[25];
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			A[i * n + j] = (i == j ? n : 0) + 1.0 / (1 + i + j);
	memcpy(L, A, sizeof A);
	REQUIRE(sl_cholesky(L, n), "positive definite matrix factorizes");
	double worst = 0;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++) {
			double s = 0;
			for (int k = 0; k < n; k++)
				s += L[i * n + k] * L[j * n + k];
			worst = fmax(worst, fabs(s - A[i * n + j]));
		}
	CHECK(worst < 1e-12, "L L^T reproduces A (worst %g)", worst);
	double B[4] = {1, 2, 2, 1};
	CHECK(!sl_cholesky(B, 2), "an indefinite matrix is refused");
}

static void test_gptq_toy(void)
{
	int rows = 48, n = 96;
	float *H = make_hessian(n, 400);
	float *W = random_matrix(rows, n);
	float *rtn = copy_of(W, rows * n), *gq = copy_of(W, rows * n);
	for (int i = 0; i < rows * n; i++)
		rtn[i] = toy_round(NULL, 0, 0, W[i]);
	sl_rounding rd = {.span = 1, .fit = toy_fit, .round = toy_round};
	sl_obs_opts o = {.H = H, .damp = 0.01, .block = 32, .rounding = &rd};
	sl_error err = {0};
	CHECK(sl_obs_solve(gq, rows, n, &o, &err) == SL_OK, "gptq: %s", err.msg);
	double e_rtn = sl_output_error(W, rtn, rows, n, H), e_gptq = sl_output_error(W, gq, rows, n, H);
	printf("toy grid: output error rtn %.3g, gptq %.3g\n", e_rtn, e_gptq);
	CHECK(e_gptq < 0.7 * e_rtn, "gptq output error %g below rtn %g", e_gptq, e_rtn);
	bool on_grid = true;
	for (int i = 0; i < rows * n; i++)
		on_grid &= fabsf(gq[i] - toy_round(NULL, 0, 0, gq[i])) < 1e-6f;
	CHECK(on_grid, "every gptq value is on the grid");

	float *ao = copy_of(W, rows * n);
	o.act_order = true;
	CHECK(sl_obs_solve(ao, rows, n, &o, &err) == SL_OK, "gptq act-order: %s", err.msg);
	double e_ao = sl_output_error(W, ao, rows, n, H);
	printf("toy grid: act-order %.3g\n", e_ao);
	CHECK(e_ao < 0.7 * e_rtn, "act-order output error %g below rtn %g", e_ao, e_rtn);

	/* Uncorrelated inputs: nothing to compensate, so GPTQ is RTN. */
	float *I = calloc((size_t)n * n, sizeof *I);
	for (int j = 0; j < n; j++)
		I[j * n + j] = 1;
	float *gi = copy_of(W, rows * n);
	o.H = I;
	o.act_order = false;
	CHECK(sl_obs_solve(gi, rows, n, &o, &err) == SL_OK, "gptq H=I: %s", err.msg);
	CHECK(!memcmp(gi, rtn, (size_t)rows * n * sizeof *gi), "with H = I gptq equals rtn");
	free(I);
	free(gi);
	free(ao);
	free(H);
	free(W);
	free(rtn);
	free(gq);
}

static double zero_fraction(const float *W, int n)
{
	int z = 0;
	for (int i = 0; i < n; i++)
		z += W[i] == 0;
	return (double)z / n;
}

static void test_pruning_toy(void)
{
	int rows = 64, n = 128;
	float *H = make_hessian(n, 500);
	float *W = random_matrix(rows, n);
	double *norm = malloc((size_t)n * sizeof *norm);
	for (int j = 0; j < n; j++)
		norm[j] = sqrt(H[j * n + j]);
	sl_error err = {0};
	for (int nm = 0; nm < 2; nm++) {
		int keep = nm ? 2 : 0, m = nm ? 4 : 0;
		float *mag = copy_of(W, rows * n), *wanda = copy_of(W, rows * n), *sgpt = copy_of(W, rows * n);
		CHECK(sl_prune_rows(mag, rows, n, NULL, 0.5, keep, m, &err) == SL_OK, "magnitude");
		CHECK(sl_prune_rows(wanda, rows, n, norm, 0.5, keep, m, &err) == SL_OK, "wanda");
		sl_obs_opts o = {.H = H, .damp = 0.01, .block = 32, .sparsity = nm ? 0 : 0.5, .keep_n = keep,
		                 .group_m = m};
		CHECK(sl_obs_solve(sgpt, rows, n, &o, &err) == SL_OK, "sparsegpt: %s", err.msg);
		/* The outlier channels dominate mean diag(H), so GPTQ's usual 1%
		 * damping flattens the small channels; with less, SparseGPT's
		 * weight updates beat Wanda's mask alone. */
		float *light = copy_of(W, rows * n);
		o.damp = 1e-4;
		CHECK(sl_obs_solve(light, rows, n, &o, &err) == SL_OK, "sparsegpt: %s", err.msg);
		double em = sl_output_error(W, mag, rows, n, H), ew = sl_output_error(W, wanda, rows, n, H);
		double es = sl_output_error(W, sgpt, rows, n, H), el = sl_output_error(W, light, rows, n, H);
		printf("%s: output error magnitude %.3g, wanda %.3g, sparsegpt %.3g (damping 1e-4: %.3g)\n",
		       nm ? "2:4" : "50%", em, ew, es, el);
		CHECK(ew < em, "%s: wanda %g below magnitude %g", nm ? "2:4" : "50%", ew, em);
		CHECK(es < em, "%s: sparsegpt %g below magnitude %g", nm ? "2:4" : "50%", es, em);
		CHECK(el < ew, "%s: sparsegpt with light damping %g below wanda %g", nm ? "2:4" : "50%", el, ew);
		free(light);
		CHECK_NEAR(zero_fraction(mag, rows * n), 0.5, 1e-9, "magnitude sparsity");
		CHECK_NEAR(zero_fraction(wanda, rows * n), 0.5, 1e-9, "wanda sparsity");
		CHECK_NEAR(zero_fraction(sgpt, rows * n), 0.5, 1e-9, "sparsegpt sparsity");
		if (nm) {
			bool ok = true;
			for (int r = 0; r < rows; r++)
				for (int c = 0; c < n; c += 4) {
					int z = 0;
					for (int k = 0; k < 4; k++)
						z += sgpt[r * n + c + k] == 0;
					ok &= z >= 2;
				}
			CHECK(ok, "sparsegpt 2:4 leaves at most 2 nonzeros in every group of 4");
		}
		free(mag);
		free(wanda);
		free(sgpt);
	}
	int keep, m;
	CHECK(sl_pattern_nm("2:4", &keep, &m) && keep == 2 && m == 4, "2:4 parses");
	CHECK(!sl_pattern_nm("4:2", &keep, &m) && !sl_pattern_nm("2:4x", &keep, &m) && !sl_pattern_nm("heads", &keep, &m),
	      "bad patterns are refused");
	free(norm);
	free(H);
	free(W);
}

/* W through the format's own quantizer and back. */
static void rtn(int type, const float *W, float *out, int rows, int cols)
{
	void *buf = malloc((size_t)rows * sl_dtype_row_bytes(type, cols));
	sl_dtype_rows_from_float(type, W, buf, rows, cols);
	sl_dtype_rows_to_float(type, buf, out, rows, cols);
	free(buf);
}

/* For each format GPTQ rounds to: with H = I it is round-to-nearest on the
 * format's own scales (never farther from W than RTN); with correlated
 * inputs it has less output error at low bits; and its result packs into
 * the format without changing a value. */
static void test_gptq_formats(void)
{
	static const int types[] = {SL_DT_I8_CH, SL_DT_FP8_E4M3, SL_DT_FP8_E4M3_CH, SL_DT_FP8_E5M2_CH, SL_DT_NVFP4,
	                            SL_DT_MXFP4, SL_DT_Q8_0,  SL_DT_Q4_0,        SL_DT_Q4_1,        SL_DT_Q5_0,
	                            SL_DT_Q5_1,  SL_DT_Q2_K,  SL_DT_Q3_K,        SL_DT_Q4_K,        SL_DT_Q5_K,
	                            SL_DT_Q6_K,  SL_DT_NF4,   SL_DT_NF4_DQ};
	static const int ints[][3] = {{8, 32, 0}, {4, 32, 0}, {4, 128, 1}, {3, 64, 0}, {3, 32, 1}, {2, 32, 0}, {4, 64, 0}};
	int list[32], n_list = 0;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		list[n_list++] = types[i];
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
		list[n_list++] = sl_dtype_int_group(ints[i][0], ints[i][1], ints[i][2]);
	int rows = 32, n = 256;
	float *H = make_hessian(n, 600);
	float *I = calloc((size_t)n * n, sizeof *I);
	for (int j = 0; j < n; j++)
		I[j * n + j] = 1;
	float *W = random_matrix(rows, n);
	float *R = malloc((size_t)rows * n * sizeof *R), *Q = malloc((size_t)rows * n * sizeof *Q);
	float *P = malloc((size_t)rows * n * sizeof *P);
	for (int li = 0; li < n_list; li++) {
		int type = list[li];
		const char *name = sl_dtype_name(type), *why = NULL;
		sl_qgrid *g = sl_qgrid_new(type, rows, n, &why);
		REQUIRE(g, "%s: grid: %s", name, why);
		sl_rounding rd = sl_qgrid_rounding(g);
		rtn(type, W, R, rows, n);
		/* ggml's Q3_K and Q5_K quantizers search their scales anew each
		 * time and do not reproduce their own output, nor does nf4-dq
		 * (its scales' mean and group scale move when they are packed
		 * again); no grid can promise those an exact packing. */
		rtn(type, R, P, rows, n);
		bool idempotent = !memcmp(P, R, (size_t)rows * n * sizeof *P);
		sl_error err = {0};
		sl_obs_opts o = {.H = I, .damp = 0.01, .block = 128, .rounding = &rd};
		memcpy(Q, W, (size_t)rows * n * sizeof *Q);
		CHECK(sl_obs_solve(Q, rows, n, &o, &err) == SL_OK, "%s: %s", name, err.msg);
		int worse = 0, differ = 0;
		for (int i = 0; i < rows * n; i++) {
			worse += fabsf(Q[i] - W[i]) > fabsf(R[i] - W[i]) * (1 + 1e-6f) + 1e-12f;
			differ += Q[i] != R[i];
		}
		CHECK(worse == 0, "%s: with H = I, %d values rounded farther than rtn", name, worse);
		CHECK(differ <= rows * n / 50, "%s: with H = I, %d of %d values differ from rtn", name, differ, rows * n);

		for (int ao = 0; ao < 2; ao++) {
			o.H = H;
			o.act_order = ao;
			memcpy(Q, W, (size_t)rows * n * sizeof *Q);
			CHECK(sl_obs_solve(Q, rows, n, &o, &err) == SL_OK, "%s: %s", name, err.msg);
			rtn(type, Q, P, rows, n);
			int changed = 0;
			for (int i = 0; i < rows * n; i++)
				changed += P[i] != Q[i];
			CHECK(!idempotent || changed == 0, "%s%s: packing gptq's result changes %d values", name,
			      ao ? " act-order" : "", changed);
			double er = sl_output_error(W, R, rows, n, H), eq = sl_output_error(W, Q, rows, n, H);
			double ep = sl_output_error(W, P, rows, n, H);
			printf("%-14s%s output error rtn %.3g gptq %.3g", name, ao ? " act-order" : "          ", er, eq);
			if (changed)
				printf(", packed %.3g (%d values moved)", ep, changed);
			printf("\n");
			CHECK(ep < er, "%s: gptq output error %g below rtn %g", name, ep, er);
		}
		sl_qgrid_free(g);
	}
	free(H);
	free(I);
	free(W);
	free(R);
	free(Q);
	free(P);
}

/* AWQ's scales and clipping lower the output error of 4- and 3-bit
 * rounding; alpha = 0 is plain rounding, so it can only help. */
static void test_awq(void)
{
	int rows = 48, n = 128, T = 600;
	float *X = make_inputs(n, T), *H = test_hessian(X, n, T);
	double *mean_abs = calloc((size_t)n, sizeof *mean_abs);
	for (int t = 0; t < T; t++)
		for (int j = 0; j < n; j++)
			mean_abs[j] += fabsf(X[(size_t)t * n + j]) / T;
	float *W = random_matrix(rows, n), *R = malloc((size_t)rows * n * sizeof *R);
	float *A = malloc((size_t)rows * n * sizeof *A), *s = malloc((size_t)n * sizeof *s);
	int types[] = {sl_dtype_int_group(4, 32, 0), sl_dtype_int_group(3, 32, 0), sl_dtype_int_group(4, 64, 1)};
	for (int k = 0; k < 3; k++) {
		int type = types[k];
		sl_error err = {0};
		CHECK(sl_roundtrip(type, W, R, rows, n, &err) == SL_OK, "rtn: %s", err.msg);
		const sl_method *awq = sl_method_find(SL_METHOD_QUANT, "awq");
		REQUIRE(awq && awq->scales && awq->refine, "the registry has awq with scales and a refinement");
		sl_scale_member mem = {W, rows, type, NULL};
		sl_scale_job job = {&mem, 1, n, mean_abs, NULL, NULL, H, NAN};
		CHECK(awq->scales(&job, s, &err) == SL_OK, "awq: %s", err.msg);
		double alpha = job.chosen;
		for (int r = 0; r < rows; r++)
			for (int j = 0; j < n; j++)
				A[r * n + j] = W[r * n + j] * s[j];
		float *Hs = malloc((size_t)n * n * sizeof *Hs);
		for (int a = 0; a < n; a++)
			for (int b = 0; b < n; b++)
				Hs[a * n + b] = H[a * n + b] / (s[a] * s[b]);
		float *scaled = malloc((size_t)rows * n * sizeof *scaled);
		CHECK(sl_roundtrip(type, A, scaled, rows, n, &err) == SL_OK, "scaled rtn");
		double e_scaled = sl_output_error(A, scaled, rows, n, Hs);
		sl_act_stats st = {.n = n, .hessian = Hs};
		sl_module_plan plan = {.method = "awq"};
		sl_matrix mx = {.name = "A", .W = A, .rows = rows, .cols = n, .type = type, .plan = &plan, .st = &st};
		CHECK(awq->refine(&mx, &err) == SL_OK, "clip: %s", err.msg);
		CHECK(sl_roundtrip(type, A, A, rows, n, &err) == SL_OK, "clipped rtn");
		for (int r = 0; r < rows; r++)
			for (int j = 0; j < n; j++)
				A[r * n + j] /= s[j];
		double er = sl_output_error(W, R, rows, n, H), ea = sl_output_error(W, A, rows, n, H);
		printf("%-14s output error rtn %.3g, awq scales %.3g (alpha %.2f), + clip %.3g\n", sl_dtype_name(type), er,
		       e_scaled, alpha, ea);
		CHECK(alpha > 0, "%s: a nonzero alpha was chosen", sl_dtype_name(type));
		CHECK(e_scaled < er, "%s: awq scales %g below rtn %g", sl_dtype_name(type), e_scaled, er);
		CHECK(ea <= e_scaled * 1.0001, "%s: clipping %g no worse than scales alone %g", sl_dtype_name(type), ea,
		      e_scaled);
		free(Hs);
		free(scaled);
	}
	free(X);
	free(H);
	free(mean_abs);
	free(W);
	free(R);
	free(A);
	free(s);
}

/* Y = X W^T with activations rounded per token to int8 and weights per
 * channel: smoothing the outlier channels lowers the error. */
static double w8a8_error(const float *X, const float *W, int T, int rows, int n, const float *s)
{
	float *Xs = malloc((size_t)T * n * sizeof *Xs), *Ws = malloc((size_t)rows * n * sizeof *Ws);
	for (int t = 0; t < T; t++) {
		float amax = 0;
		for (int j = 0; j < n; j++)
			amax = fmaxf(amax, fabsf(X[t * n + j] / s[j]));
		float d = amax / 127;
		for (int j = 0; j < n; j++)
			Xs[t * n + j] = d * roundf(X[t * n + j] / s[j] / d);
	}
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < n; j++)
			Ws[r * n + j] = W[r * n + j] * s[j];
	sl_roundtrip(SL_DT_I8_CH, Ws, Ws, rows, n, NULL);
	double num = 0, den = 0;
	for (int t = 0; t < T; t++)
		for (int r = 0; r < rows; r++) {
			double y = 0, yq = 0;
			for (int j = 0; j < n; j++) {
				y += (double)X[t * n + j] * W[r * n + j];
				yq += (double)Xs[t * n + j] * Ws[r * n + j];
			}
			num += (y - yq) * (y - yq);
			den += y * y;
		}
	free(Xs);
	free(Ws);
	return num / den;
}

static void test_smoothquant(void)
{
	int rows = 32, n = 128, T = 200;
	float *X = make_inputs(n, T), *W = random_matrix(rows, n);
	float *xm = calloc((size_t)n, sizeof *xm), *wm = calloc((size_t)n, sizeof *wm);
	float *s = malloc((size_t)n * sizeof *s), *one = malloc((size_t)n * sizeof *one);
	for (int t = 0; t < T; t++)
		for (int j = 0; j < n; j++)
			xm[j] = fmaxf(xm[j], fabsf(X[t * n + j]));
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < n; j++)
			wm[j] = fmaxf(wm[j], fabsf(W[r * n + j]));
	for (int j = 0; j < n; j++)
		one[j] = 1;
	const sl_method *sq = sl_method_find(SL_METHOD_QUANT, "smoothquant");
	REQUIRE(sq && sq->scales && sq->act_int8, "the registry has smoothquant, which rounds activations");
	sl_scale_job job = {NULL, 0, n, NULL, xm, wm, NULL, NAN};
	CHECK(sq->scales(&job, s, NULL) == SL_OK && job.chosen == 0.5, "smoothquant's default alpha is 0.5");
	CHECK_NEAR(s[3], sqrt(xm[3]) / sqrt(wm[3]), 1e-4 * s[3], "s = sqrt(max|x| / max|w|) at alpha 0.5");
	double e0 = w8a8_error(X, W, T, rows, n, one), e5 = w8a8_error(X, W, T, rows, n, s);
	printf("w8a8 relative output error: unsmoothed %.3g, smoothquant alpha 0.5 %.3g\n", e0, e5);
	CHECK(e5 < e0, "smoothing lowers the W8A8 error (%g vs %g)", e5, e0);
	free(X);
	free(W);
	free(xm);
	free(wm);
	free(s);
	free(one);
}

int main(void)
{
	test_cholesky();
	test_gptq_toy();
	test_pruning_toy();
	test_gptq_formats();
	test_awq();
	test_smoothquant();
	return test_finish();
}
