/* Every op of the inference kernels table (kernels/kernels.h) against the
 * plain reference table (kernels/ref/ops.c), as ggml's test-backend-ops
 * does: matmul with weights in every storage type the dtype table knows,
 * the other ops with the options the forward pass uses (both rope styles
 * and a partial rotation; grouped-query attention over a cache that holds
 * earlier positions in rows wider than the keys, in F32 and in the types
 * of the KV-cache formats), each over batches of
 * T = 1, 2, 3, 4, 5, 7, 17 and 64 tokens. Every CPU path runs: this process
 * takes the AVX2 kernels where the CPU has them, then runs itself again
 * with SL_NO_AVX2=1 for the portable ones. A token's matmul output must
 * have the same bits computed alone and inside a batch, for every type,
 * and W8A8's integer products the reference's bits; matmul_parts must give
 * each of its products matmul's bits, and the thread pool must run every
 * task of every loop once. */
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <time.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>

#include "kernels/cpu/cpu.h"
#include "kernels/kernels.h"
#include "test.h"

extern char **environ;

static const int batches[] = {1, 2, 3, 4, 5, 7, 17, 64};
enum { N_BATCH = sizeof batches / sizeof batches[0], T_MAX = 64 };

/* ---- data and errors ---------------------------------------------------------- */

static uint64_t rng_state;

/* Uniform in (0, 1), from a fixed-seed LCG: the same data on every run. */
static double rng_uniform(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

/* Normal values by Box-Muller. */
static void fill_normal(float *x, size_t n, double mean, double sigma)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(mean + sigma * sqrt(-2.0 * log(rng_uniform())) * cos(2.0 * M_PI * rng_uniform()));
}

static void *alloc_or_die(size_t bytes)
{
	void *p = malloc(bytes);
	if (!p) {
		perror("malloc");
		exit(99);
	}
	return p;
}

static float *floats(size_t n)
{
	return alloc_or_die(n * sizeof(float));
}

/* The error test-backend-ops measures matmul by, sum (y - r)^2 / sum r^2,
 * except that the reference's power comes from all T_MAX tokens (its mean
 * square, ref_ms): the few outputs of a small batch would make it noisy. */
static double nmse(const float *y, const float *r, size_t n, double ref_ms)
{
	double err = 0;
	for (size_t i = 0; i < n; i++)
		err += ((double)y[i] - r[i]) * ((double)y[i] - r[i]);
	return err / (n * ref_ms);
}

static double mean_square(const float *x, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return s / n;
}

/* The largest difference relative to the largest reference value, for ops
 * whose outputs sit near zero in places (rope's rotations, gelu's tail),
 * where an elementwise relative error means nothing. */
static double max_rel_err(const float *y, const float *r, size_t n)
{
	double err = 0, ref = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(y[i]))
			return INFINITY;
		err = fmax(err, fabs((double)y[i] - r[i]));
		ref = fmax(ref, fabs((double)r[i]));
	}
	return err / ref;
}

/* ---- elementwise ops, norms, rope and attention -------------------------------- */

/* Their outputs are single floats computed with float arithmetic from a
 * handful of terms (or sums in double), so they agree with the double
 * reference to a few units in the last place: 1e-5 of the largest value.
 * Rope is the exception, see test_rope. */
#define REL_TOL 1e-5

/* The worst error each op showed, printed at the end of a path. */
typedef struct {
	const char *what;
	double worst, tol;
} op_report;

static void report(op_report *rep, double err, const char *what, int T)
{
	CHECK(err <= rep->tol, "%s%s%s, T=%d: relative error %.3g > %.3g", rep->what, *what ? ", " : "", what, T, err,
	      rep->tol);
	if (!(err <= rep->worst))
		rep->worst = err;
}

static void test_norms(const sl_kernels *K, const sl_kernels *R, op_report *rms, op_report *ln)
{
	enum { N = 576 };
	const float eps = 1e-5f;
	float *x = floats(T_MAX * N), *w = floats(N), *b = floats(N);
	float *y = floats(T_MAX * N), *in_place = floats(T_MAX * N), *ref = floats(T_MAX * N);
	rng_state = 11;
	fill_normal(x, T_MAX * N, 0.7, 2.0); /* a mean the layernorm must take away */
	for (int t = 0; t < T_MAX; t++) /* rows down to where eps counts: 1e-5 next to a mean square of 4e-6 */
		for (int i = 0; i < N; i++)
			x[t * N + i] *= powf(10.0f, -(float)(t % 4));
	fill_normal(w, N, 1.0, 0.3);
	fill_normal(b, N, 0.0, 0.5);
	for (int i = 0; i < N_BATCH; i++) {
		const int T = batches[i];
		const size_t n = (size_t)T * N;
		R->rmsnorm(ref, x, w, T, N, eps);
		K->rmsnorm(y, x, w, T, N, eps);
		report(rms, max_rel_err(y, ref, n), "", T);
		memcpy(in_place, x, n * sizeof(float));
		K->rmsnorm(in_place, in_place, w, T, N, eps);
		report(rms, max_rel_err(in_place, ref, n), "in place", T);
		for (int with_bias = 0; with_bias < 2; with_bias++) {
			const float *bb = with_bias ? b : NULL;
			R->layernorm(ref, x, w, bb, T, N, eps);
			K->layernorm(y, x, w, bb, T, N, eps);
			report(ln, max_rel_err(y, ref, n), with_bias ? "with bias" : "without bias", T);
		}
	}
	free(x), free(w), free(b), free(y), free(in_place), free(ref);
}

static void test_activations(const sl_kernels *K, const sl_kernels *R, op_report *swiglu, op_report *gelu)
{
	enum { N = 384 };
	float *g = floats(T_MAX * N), *u = floats(T_MAX * N), *y = floats(T_MAX * N), *ref = floats(T_MAX * N);
	rng_state = 12;
	fill_normal(g, T_MAX * N, 0.0, 3.0);
	fill_normal(u, T_MAX * N, 0.0, 1.0);
	for (int i = 0; i < N_BATCH; i++) {
		const size_t n = (size_t)batches[i] * N;
		memcpy(y, g, n * sizeof(float));
		memcpy(ref, g, n * sizeof(float));
		K->swiglu(y, u, n);
		R->swiglu(ref, u, n);
		report(swiglu, max_rel_err(y, ref, n), "", batches[i]);
		memcpy(y, g, n * sizeof(float));
		memcpy(ref, g, n * sizeof(float));
		K->gelu(y, n);
		R->gelu(ref, n);
		report(gelu, max_rel_err(y, ref, n), "", batches[i]);
	}
	/* Gates far out on both sides (where e^-g overflows or vanishes), zeros,
	 * and a length that leaves a remainder after vectors of 8. */
	static const float far[] = {-100.0f, 100.0f, -88.5f, 88.5f, -87.0f, 87.0f, -20.0f, 20.0f, 0.0f, -0.0f, -1e-20f,
	                            1e-20f, -7.5f};
	const size_t nf = sizeof far / sizeof far[0];
	memcpy(y, far, sizeof far);
	memcpy(ref, far, sizeof far);
	K->swiglu(y, u, nf);
	R->swiglu(ref, u, nf);
	report(swiglu, max_rel_err(y, ref, nf), "gates far from zero", (int)nf);
	free(g), free(u), free(y), free(ref);
}

/* Rope's angle pos * theta^(-2i/rot_dim) is a float in the kernel: powf
 * (within an ulp) and the product (half an ulp) leave it off by up to
 * 1.5 * 2^-24 * pos radians, and the rotated values move by as much
 * relative to their size. The limit is REL_TOL plus that at the largest
 * position tested. */
static void test_rope(const sl_kernels *K, const sl_kernels *R, op_report *rep)
{
	enum { HEADS = 4, HEAD_DIM = 64, N = HEADS * HEAD_DIM };
	static const struct {
		sl_rope_style style;
		int rot_dim;
		const char *name;
	} cases[] = {
		{SL_ROPE_NORM, HEAD_DIM, "norm"},
		{SL_ROPE_NEOX, HEAD_DIM, "neox"},
		{SL_ROPE_NORM, HEAD_DIM / 2, "norm, rot_dim = head_dim/2"},
		{SL_ROPE_NEOX, HEAD_DIM / 4, "neox, rot_dim = head_dim/4"},
		{SL_ROPE_NONE, HEAD_DIM, "none"},
	};
	static const int pos0s[] = {0, 100};
	const int max_pos = 100 + T_MAX - 1;
	rep->tol = REL_TOL + 1.5 * 0x1p-24 * max_pos;
	float *x = floats(T_MAX * N), *y = floats(T_MAX * N), *ref = floats(T_MAX * N);
	rng_state = 13;
	fill_normal(x, T_MAX * N, 0.0, 1.0);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
		for (size_t p = 0; p < sizeof pos0s / sizeof pos0s[0]; p++)
			for (int i = 0; i < N_BATCH; i++) {
				const int T = batches[i];
				const size_t n = (size_t)T * N;
				memcpy(y, x, n * sizeof(float));
				memcpy(ref, x, n * sizeof(float));
				K->rope(y, T, HEADS, HEAD_DIM, cases[c].rot_dim, pos0s[p], 10000.0f, cases[c].style);
				R->rope(ref, T, HEADS, HEAD_DIM, cases[c].rot_dim, pos0s[p], 10000.0f, cases[c].style);
				char what[64];
				snprintf(what, sizeof what, "%s, pos0 %d", cases[c].name, pos0s[p]);
				report(rep, max_rel_err(y, ref, n), what, T);
			}
	free(x), free(y), free(ref);
}

/* A cache of rows of n values from src, in type, rows row_bytes apart:
 * the rows before `valid` converted, every byte after them and the padding
 * of each row 0xff (NaN in F32, F16, BF16, FP8 E4M3 and as a row header's
 * f32 scale), so that a kernel reading them poisons its output. */
static char *cache_of(int type, const float *src, size_t rows, size_t valid, int n, size_t row_bytes)
{
	char *c = alloc_or_die(rows * row_bytes);
	memset(c, 0xff, rows * row_bytes);
	for (size_t r = 0; r < valid; r++)
		sl_dtype_rows_from_float(type, src + r * n, c + r * row_bytes, 1, n);
	return c;
}

/* Causal attention for T new tokens after pos0 cached ones, over caches
 * in F32 and in every type the KV-cache formats use, with rows wider than
 * the keys. The packed caches must also give, bit for bit, what an F32
 * cache holding their rows' values gives: reading packed rows changes
 * nothing but the bytes read. */
static void test_attention(const sl_kernels *K, const sl_kernels *R, op_report *rep)
{
	static const struct {
		int n_heads, n_kv_heads, head_dim, pos0, pad;
	} cases[] = {
		{4, 4, 32, 0, 0},  /* one kv head per query head, an empty cache */
		{8, 2, 64, 45, 24}, /* four query heads per kv head, 45 cached positions, padded rows */
		{6, 1, 16, 3, 8},  /* every query head on one kv head */
		{4, 4, 8, 70, 4},  /* heads of 8 across NVFP4's blocks of 16, more rows than a tile converts */
		{4, 4, 12, 9, 0},  /* heads of 12: vectors of 8 and a remainder of 4 */
		{2, 2, 48, 100, 0}, /* heads of 48: slabs of 32 and 8 */
	};
	static const int types[] = {SL_DT_F32, SL_DT_F16, SL_DT_BF16, SL_DT_I8_CH, SL_DT_FP8_E4M3, SL_DT_FP8_E5M2,
	                            SL_DT_NVFP4};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const int H = cases[c].n_heads, KVH = cases[c].n_kv_heads, HD = cases[c].head_dim, n = KVH * HD;
		const int pos0 = cases[c].pos0;
		const size_t rows = (size_t)pos0 + T_MAX + 8, q_n = (size_t)T_MAX * H * HD;
		float *q = floats(q_n), *out = floats(q_n), *ref = floats(q_n), *flat = floats(q_n);
		float *k_all = floats(rows * n), *v_all = floats(rows * n);
		float *k_val = floats(rows * n), *v_val = floats(rows * n);
		rng_state = 14 + c;
		fill_normal(q, q_n, 0.0, 2.0); /* scores of a few units: peaked and flat rows */
		fill_normal(k_all, rows * n, 0.0, 1.0);
		fill_normal(v_all, rows * n, 0.0, 1.0);
		for (size_t ty = 0; ty < sizeof types / sizeof types[0]; ty++) {
			const int type = types[ty];
			const size_t rb = sl_dtype_row_bytes(type, n) + (size_t)cases[c].pad * 4;
			const size_t fb = ((size_t)n + cases[c].pad) * sizeof(float);
			size_t flat_same = 0;
			/* The values the packed rows hold, as F32 rows. */
			for (size_t r = 0; r < rows; r++) {
				char row[4096];
				sl_dtype_rows_from_float(type, k_all + r * n, row, 1, n);
				sl_dtype_rows_to_float(type, row, k_val + r * n, 1, n);
				sl_dtype_rows_from_float(type, v_all + r * n, row, 1, n);
				sl_dtype_rows_to_float(type, row, v_val + r * n, 1, n);
			}
			for (int i = 0; i < N_BATCH; i++) {
				const int T = batches[i];
				const size_t valid = (size_t)(pos0 + T);
				char *k = cache_of(type, k_all, rows, valid, n, rb), *v = cache_of(type, v_all, rows, valid, n, rb);
				K->attention(out, q, k, v, type, rb, T, pos0, H, KVH, HD);
				R->attention(ref, q, k, v, type, rb, T, pos0, H, KVH, HD);
				char what[128];
				snprintf(what, sizeof what, "%s cache, %d heads on %d kv heads of %d, pos0 %d, rows of %zu bytes",
				         sl_dtype_name(type), H, KVH, HD, pos0, rb);
				report(rep, max_rel_err(out, ref, (size_t)T * H * HD), what, T);
				free(k), free(v);
				if (type == SL_DT_F32)
					continue;
				k = cache_of(SL_DT_F32, k_val, rows, valid, n, fb);
				v = cache_of(SL_DT_F32, v_val, rows, valid, n, fb);
				K->attention(flat, q, k, v, SL_DT_F32, fb, T, pos0, H, KVH, HD);
				flat_same += !memcmp(out, flat, (size_t)T * H * HD * sizeof(float));
				free(k), free(v);
			}
			if (type != SL_DT_F32)
				CHECK(flat_same == N_BATCH, "attention over a %s cache (%d heads of %d) gives what an F32 cache of "
				      "its values gives, bit for bit (%zu of %d batch sizes)", sl_dtype_name(type), H, HD, flat_same,
				      N_BATCH);
		}
		free(q), free(out), free(ref), free(flat), free(k_all), free(v_all), free(k_val), free(v_val);
	}
}

/* W8A8 products against the reference's 64-bit integer sums, bit for
 * bit: integer dot products are exact, so every path and batch size gives
 * the reference's bits. Weights include -128 (a file may hold it; the
 * quantizer never writes it) and rows whose length is not a multiple of 32. */
static void test_w8a8(const sl_kernels *K, const sl_kernels *R, const char *path)
{
	static const int shapes[][2] = {{48, 96}, {33, 1000}, {256, 2048}};
	size_t same = 0, total = 0;
	for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
		const int n_out = shapes[c][0], n_in = shapes[c][1];
		const size_t rb = 4 + (size_t)n_in;
		float *x = floats((size_t)T_MAX * n_in), *xd = floats(T_MAX), *bias = floats((size_t)n_out);
		float *y = floats((size_t)T_MAX * n_out), *ref = floats((size_t)T_MAX * n_out);
		float *wf = floats((size_t)n_in);
		int8_t *xq = alloc_or_die((size_t)T_MAX * n_in);
		char *w = alloc_or_die((size_t)n_out * rb);
		rng_state = 31 + c;
		fill_normal(x, (size_t)T_MAX * n_in, 0.0, 1.0);
		fill_normal(bias, (size_t)n_out, 0.0, 0.1);
		for (int r = 0; r < n_out; r++) {
			fill_normal(wf, (size_t)n_in, 0.0, 0.02);
			sl_dtype_rows_from_float(SL_DT_I8_CH, wf, w + (size_t)r * rb, 1, n_in);
			if (r % 3 == 0)
				((int8_t *)w)[(size_t)r * rb + 4 + (size_t)(r % n_in)] = -128;
		}
		sl_act_i8_quantize(x, T_MAX, n_in, xq, xd);
		for (int i = 0; i < N_BATCH; i++) {
			const int T = batches[i];
			const float *b = i % 2 ? bias : NULL;
			K->matmul_w8a8(y, xq, xd, T, w, n_out, n_in, b);
			R->matmul_w8a8(ref, xq, xd, T, w, n_out, n_in, b);
			same += !memcmp(y, ref, (size_t)T * n_out * sizeof(float));
			total++;
		}
		free(x), free(xd), free(bias), free(y), free(ref), free(wf), free(xq), free(w);
	}
	CHECK(same == total, "W8A8 products (%s) have the reference's bits: %zu of %zu shapes and batch sizes", path,
	      same, total);
	printf("matmul_w8a8 (%s path): %zu of %zu shapes x batch sizes bit for bit the reference's\n", path, same,
	       total);
}

/* The per-token int8 rounding of W8A8 inputs: d = max|x| / 127 and
 * q = round(x / d), every q within -127..127 and d*q within d/2 of x. */
static void test_act_quantize(void)
{
	const int n = 100;
	float x[3 * 100], d[3];
	int8_t q[3 * 100];
	rng_state = 77;
	fill_normal(x, 3 * (size_t)n, 0.0, 3.0);
	for (int i = 0; i < n; i++)
		x[n + i] = 0.0f; /* an all-zero row: scale 0, codes 0 */
	sl_act_i8_quantize(x, 3, n, q, d);
	bool ok = d[1] == 0.0f;
	for (int t = 0; t < 3; t++) {
		float amax = 0;
		for (int i = 0; i < n; i++)
			amax = fmaxf(amax, fabsf(x[t * n + i]));
		ok &= d[t] == amax / 127.0f;
		for (int i = 0; i < n; i++)
			ok &= q[t * n + i] >= -127 &&
			      fabs((double)d[t] * q[t * n + i] - x[t * n + i]) <= 0.5 * d[t] * (1 + 1e-5);
	}
	CHECK(ok, "W8A8 inputs round to the nearest of 127 steps of max|x| / 127 per token");
}

static void test_other_ops(const sl_kernels *K, const sl_kernels *R, const char *path)
{
	op_report reps[] = {{"rmsnorm", 0, REL_TOL}, {"layernorm", 0, REL_TOL}, {"rope", 0, REL_TOL},
	                    {"attention", 0, REL_TOL}, {"swiglu", 0, REL_TOL}, {"gelu", 0, REL_TOL}};
	test_norms(K, R, &reps[0], &reps[1]);
	test_rope(K, R, &reps[2]);
	test_attention(K, R, &reps[3]);
	test_activations(K, R, &reps[4], &reps[5]);
	printf("ops (%s path): largest error relative to the largest reference value, over T = 1..64\n", path);
	for (size_t i = 0; i < sizeof reps / sizeof reps[0]; i++)
		printf("  %-10s %9.2e  (limit %.1e)\n", reps[i].what, reps[i].worst, reps[i].tol);
}

/* ---- matmul ------------------------------------------------------------------- */

/* Limits on the NMSE of matmul against the reference, by the kind of dot
 * product a backend may use for the weight format.
 *
 * Float paths (sgemm on converted weights, float dot products) only round:
 * a float32 sum of n products taken in sequence errs by about
 * u sqrt(n/2) relative to the result (u = 2^-24), an NMSE of u^2 n/2, or
 * 2.3e-12 at the longest row here (n = 768); blocked and vectorized sums
 * do better. The limit, 1e-10, is 40 times that.
 *
 * A format with a vec_dot lets a backend quantize the activations to its
 * vec_dot_type (ggml's Q8_0 and Q8_1: blocks of 32; Q8_K: blocks of 256;
 * slimlab's int8-g32), int8 with a scale d = amax/127 per block. Rounding
 * leaves each activation off by up to d/2, uniformly: variance d^2/12,
 * which reaches y = sum_i w_i x_i as an NMSE of d^2 / (12 sigma^2) =
 * (amax/sigma)^2 / (12 * 127^2) for activations of standard deviation
 * sigma, whatever the weights. The activations here are normal, whose
 * largest magnitude is about 2.2 sigma in a block of 32 and 2.9 sigma in
 * one of 256: NMSE 2.5e-5 and 4.4e-5 expected (2.6e-5 and 4.6e-5 are
 * measured). The error of a check over n outputs scatters about that as a
 * chi-square with n degrees of freedom over n; for the smallest check, 7
 * outputs, its 99.99th percentile is 4.3 times the mean: 1.9e-4 at 256.
 * The limit is 2e-4; a wrong scale or code anywhere costs 1e-3 and more. */
#define NMSE_FLOAT 1e-10
#define NMSE_INT8_ACT 2e-4

/* n_in a multiple of 256 (the K formats' block, and so of every other
 * block). The first has fewer rows than one of ops.c's tasks (16); the
 * others have row counts that are not multiples of 16 and are split into
 * tasks over the threads (2 T n_out n_in >= 2e5 flops): the second from
 * T = 2 on, the third even for one token. One has a bias. The last has
 * rows so long that the float kernel takes a prompt's tokens in chunks
 * (24 at a time, a third chunk of 16 at T = 64), and the K formats' gemm
 * takes more than one tile of tokens (AMX tiles where the CPU has them). */
static const struct {
	int n_out, n_in;
	bool bias;
} mm_shapes[] = {{7, 256, false}, {100, 512, true}, {136, 768, false}, {9, 8192, true}};

typedef struct {
	double worst, tol;
	bool invariant[N_BATCH]; /* every token alone has the bits it has in a batch of T */
	bool decoded;            /* matmul_decoded gives matmul's bits for the F32 decoding, every T */
} mm_report;

static void test_matmul_type(const sl_kernels *K, const sl_kernels *R, int type, mm_report *rep)
{
	const sl_type_info *ti = sl_type_info_get(type);
	rep->tol = ti->vec_dot ? NMSE_INT8_ACT : NMSE_FLOAT;
	rep->worst = 0;
	rep->decoded = true;
	for (int i = 0; i < N_BATCH; i++)
		rep->invariant[i] = true;
	for (size_t s = 0; s < sizeof mm_shapes / sizeof mm_shapes[0]; s++) {
		const int n_out = mm_shapes[s].n_out, n_in = mm_shapes[s].n_in;
		const size_t row_bytes = sl_dtype_row_bytes(type, n_in);
		REQUIRE(row_bytes > 0, "%s: no rows of %d", ti->name, n_in);
		float *w = floats((size_t)n_out * n_in), *x = floats((size_t)T_MAX * n_in), *bias = floats(n_out);
		float *y = floats((size_t)T_MAX * n_out), *ref = floats((size_t)T_MAX * n_out);
		float *alone = floats((size_t)T_MAX * n_out);
		char *wq = alloc_or_die(row_bytes * n_out);
		float *wd = floats((size_t)n_out * n_in), *yd = floats((size_t)T_MAX * n_out);
		rng_state = 100 + s; /* every format gets the same weights and activations */
		fill_normal(w, (size_t)n_out * n_in, 0.0, 1.0);
		fill_normal(x, (size_t)T_MAX * n_in, 0.0, 1.0);
		fill_normal(bias, n_out, 0.0, sqrt(n_in)); /* as large as x W^T: a lost bias shows */
		const float *b = mm_shapes[s].bias ? bias : NULL;
		sl_dtype_rows_from_float(type, w, wq, n_out, n_in);
		sl_dtype_rows_to_float(type, wq, wd, n_out, n_in);
		/* Rows of the reference do not depend on each other: one call serves every T. */
		R->matmul(ref, x, T_MAX, wq, type, n_out, n_in, b);
		const double ref_ms = mean_square(ref, (size_t)T_MAX * n_out);
		for (int t = 0; t < T_MAX; t++)
			K->matmul(alone + (size_t)t * n_out, x + (size_t)t * n_in, 1, wq, type, n_out, n_in, b);
		for (int i = 0; i < N_BATCH; i++) {
			const int T = batches[i];
			const size_t n = (size_t)T * n_out;
			K->matmul(y, x, T, wq, type, n_out, n_in, b);
			double e = nmse(y, ref, n, ref_ms);
			CHECK(e <= rep->tol, "matmul %s, %d x %d%s, T=%d: NMSE %.3g > %.3g", ti->name, n_out, n_in,
			      b ? " with bias" : "", T, e, rep->tol);
			if (!(e <= rep->worst))
				rep->worst = e;
			if (memcmp(y, alone, n * sizeof(float)))
				rep->invariant[i] = false;
			CHECK(rep->invariant[i], "matmul %s, %d x %d, T=%d: a token's outputs differ from its own alone",
			      ti->name, n_out, n_in, T);
			/* A simulated weight: its packed rows with float inputs compute
			 * as its decoding stored in F32 does. */
			K->matmul(y, x, T, wd, SL_DT_F32, n_out, n_in, b);
			K->matmul_decoded(yd, x, T, wq, type, n_out, n_in, b);
			if (memcmp(y, yd, n * sizeof(float)))
				rep->decoded = false;
			CHECK(rep->decoded, "matmul_decoded %s, %d x %d, T=%d: not the bits of its F32 decoding", ti->name,
			      n_out, n_in, T);
		}
		R->matmul(y, x, T_MAX, wd, SL_DT_F32, n_out, n_in, b);
		R->matmul_decoded(yd, x, T_MAX, wq, type, n_out, n_in, b);
		CHECK(!memcmp(y, yd, (size_t)T_MAX * n_out * sizeof(float)),
		      "reference matmul_decoded %s: not the bits of its F32 decoding", ti->name);
		free(w), free(x), free(bias), free(y), free(ref), free(alone), free(wq), free(wd), free(yd);
	}
}

static void test_matmul(const sl_kernels *K, const sl_kernels *R, const char *path)
{
	printf("matmul (%s path): NMSE against the reference, the worst over %zu shapes and T = 1..64;\n"
	       "'=' where every token's output has the same bits computed alone as in a batch of T,\n"
	       "'x' where it does not\n",
	       path, sizeof mm_shapes / sizeof mm_shapes[0]);
	printf("'d' after the row where matmul_decoded (float inputs) gives the bits of the F32 decoding\n");
	printf("  %-16s %-9s %9s %9s   T=", "format", "dot", "NMSE", "limit");
	for (int i = 1; i < N_BATCH; i++)
		printf("%d ", batches[i]);
	printf("\n");
	int n_types = 0;
	for (int type = 0; type < SL_DT_COUNT; type++) {
		const sl_type_info *ti = sl_type_info_get(type);
		if (!ti)
			continue;
		n_types++;
		mm_report rep;
		test_matmul_type(K, R, type, &rep);
		printf("  %-16s %-9s %9.2e %9.1e     ", ti->name, ti->vec_dot ? "int8 act" : "float", rep.worst, rep.tol);
		for (int i = 1; i < N_BATCH; i++)
			printf("%*s ", (int)snprintf(NULL, 0, "%d", batches[i]), rep.invariant[i] ? "=" : "x");
		printf("%s\n", rep.decoded ? "d" : "");
	}
	/* The table held these when this test was written: F32, F16, BF16;
	 * ggml's Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K..Q6_K, Q8_K; int8 per
	 * channel, FP8 E4M3 and E5M2 per tensor and per channel, NVFP4, MXFP4;
	 * 24 group-wise integer types. */
	CHECK(n_types >= 3 + 12 + 7 + 24, "only %d storage types in the table", n_types);
}

/* ---- the thread pool and fused products ---------------------------------------- */

enum { POOL_MAX = 1000 };
static atomic_int pool_hits[POOL_MAX], pool_nested[POOL_MAX];

static void nested_task(int i, void *arg)
{
	atomic_fetch_add(&pool_nested[*(int *)arg * 8 + i], 1);
}

/* Counts its run; some tasks run a loop of their own (on their own thread)
 * and some take longer, so that threads finish out of step. */
static void count_task(int i, void *arg)
{
	atomic_fetch_add(&pool_hits[i], 1);
	if (arg && i % 7 == 0 && i / 7 < POOL_MAX / 8)
		sl_parallel_for(8, nested_task, &(int){i / 7});
	if (i % 5 == 0) {
		volatile double x = 1;
		for (int k = 0; k < 2000; k++)
			x *= 1.0000001;
	}
}

/* Every task of every loop runs exactly once: loops of 2 to 1000 tasks back
 * to back, after pauses long enough for the workers to fall asleep, nested
 * inside tasks, and on fewer threads than the pool started with. */
static void test_pool(void)
{
	static const int sizes[] = {2, 3, 8, 17, 100, 1000};
	bool ok = true;
	for (int round = 0; round < 300 && ok; round++) {
		int n = sizes[round % 6];
		bool nested = round % 4 == 1;
		if (round == 200)
			sl_kernels_set_threads(2);
		if (round % 50 == 49) {
			struct timespec pause = {0, 3000000};
			nanosleep(&pause, NULL);
		}
		for (int i = 0; i < POOL_MAX; i++)
			atomic_store(&pool_hits[i], 0), atomic_store(&pool_nested[i], 0);
		sl_parallel_for(n, count_task, nested ? &n : NULL);
		for (int i = 0; i < n; i++) {
			ok &= atomic_load(&pool_hits[i]) == 1;
			if (nested && i % 7 == 0 && i / 7 < POOL_MAX / 8)
				for (int j = 0; j < 8; j++)
					ok &= atomic_load(&pool_nested[i / 7 * 8 + j]) == 1;
		}
		CHECK(ok, "pool, round %d: a loop of %d tasks%s did not run each task once", round, n,
		      nested ? " with nested loops" : "");
	}
	sl_kernels_set_threads(4);
	printf("pool: 300 loops of 2 to 1000 tasks, nested loops, pauses and fewer threads: every task ran once\n");
}

/* What sl_parallel_rows' calls did: each row's count, the first call of
 * each thread, and the rows of the thread held up at its first call. */
#define PR_MAX 32000
typedef struct {
	int n, per;
	_Atomic int hits[PR_MAX];
	atomic_int bad;        /* calls outside the rules */
	atomic_int calls;
	/* hold: the call with row 0 waits this long (ms) */
	int hold;
	_Atomic(pthread_t) held;
	atomic_int held_set, held_rows;
	/* meet: each thread's first call waits until `meet` threads are in */
	int meet;
	atomic_int met;
	atomic_int first[4]; /* first rows of the threads, in order of arrival */
} pr_run;

static _Thread_local const pr_run *pr_seen;

static void pr_rows(int r0, int r1, void *p)
{
	pr_run *c = p;
	atomic_fetch_add(&c->calls, 1);
	if (r0 < 0 || r1 > c->n || r1 <= r0 || r0 % 16 || (r1 % 16 && r1 != c->n) || (c->per < c->n && r1 - r0 > c->per)) {
		atomic_fetch_add(&c->bad, 1);
		return;
	}
	for (int r = r0; r < r1; r++)
		atomic_fetch_add(&c->hits[r], 1);
	if (c->meet && pr_seen != c) {
		pr_seen = c;
		int k = atomic_fetch_add(&c->met, 1);
		if (k < 4)
			atomic_store(&c->first[k], r0);
		struct timespec step = {0, 100000};
		for (int i = 0; i < 10000 && atomic_load(&c->met) < c->meet; i++)
			nanosleep(&step, NULL);
	}
	if (c->hold && r0 == 0) {
		atomic_store(&c->held, pthread_self());
		atomic_store(&c->held_set, 1);
		struct timespec hold = {0, (long)c->hold * 1000000};
		nanosleep(&hold, NULL);
	}
	if (atomic_load(&c->held_set) && pthread_equal(atomic_load(&c->held), pthread_self()))
		atomic_fetch_add(&c->held_rows, r1 - r0);
}

static pr_run *pr_new(int n, double flops)
{
	pr_run *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->n = n;
	c->per = sl_rows_per_task(n, flops);
	return c;
}

/* sl_parallel_rows computes every row once, in calls of whole units of 16
 * rows (the last may end at n), none larger than sl_rows_per_task's, one
 * call for a product too small to share or one thread. Each thread starts
 * at the start of a share of its own, the rows split evenly between the
 * threads, and a thread held up at its first call is left only that call's
 * rows: the others take the rest of its share. */
static void test_parallel_rows(void)
{
	static const int rows[] = {1, 15, 17, 100, 768, 1000, 1024, 2816, 3072, 5632, 32000};
	static const int n_in[] = {16, 768, 1024};
	int checked = 0;
	for (int threads = 1; threads <= 4; threads++) {
		sl_kernels_set_threads(threads);
		for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
			for (size_t k = 0; k < sizeof n_in / sizeof n_in[0]; k++) {
				int n = rows[r];
				double flops = 2.0 * n * n_in[k];
				pr_run *c = pr_new(n, flops);
				bool shared = c->per < n && threads > 1;
				if (!shared) /* one call of all the rows */
					c->per = n;
				sl_parallel_rows(n, flops, pr_rows, c);
				bool ok = !atomic_load(&c->bad) && (shared || atomic_load(&c->calls) == 1);
				for (int i = 0; ok && i < n; i++)
					ok = atomic_load(&c->hits[i]) == 1;
				/* a unit of 16 rows of 1024 is enough work: pieces down to one */
				if (ok && shared && n_in[k] == 1024 && n >= 32 * threads)
					ok = atomic_load(&c->calls) > threads;
				CHECK(ok, "sl_parallel_rows: %d rows of %d, %d threads: %d calls, %d outside the rules, not every "
				      "row once", n, n_in[k], threads, atomic_load(&c->calls), atomic_load(&c->bad));
				free(c);
				checked++;
			}
	}
	/* Two threads meet at their first calls: one at row 0, one at the
	 * start of the second share (the 192 units of 3072 rows halved). */
	sl_kernels_set_threads(2);
	pr_run *c = pr_new(3072, 2.0 * 3072 * 1024);
	c->meet = 2;
	sl_parallel_rows(c->n, 2.0 * 3072 * 1024, pr_rows, c);
	int a = atomic_load(&c->first[0]), b = atomic_load(&c->first[1]);
	CHECK(atomic_load(&c->met) == 2 && ((a == 0 && b == 1536) || (a == 1536 && b == 0)),
	      "sl_parallel_rows: two threads' first rows %d and %d, not the starts of two shares 0 and 1536", a, b);
	free(c);
	/* The thread with row 0 is held up 100 ms at that call: the other
	 * takes the rest of its share, from its end. */
	c = pr_new(3072, 2.0 * 3072 * 1024);
	c->hold = 100;
	sl_parallel_rows(c->n, 2.0 * 3072 * 1024, pr_rows, c);
	bool all = true;
	for (int i = 0; i < c->n; i++)
		all &= atomic_load(&c->hits[i]) == 1;
	int held = atomic_load(&c->held_rows);
	CHECK(all && held > 0 && held <= c->per, "sl_parallel_rows: the thread held up at row 0 computed %d of 3072 rows "
	      "(one piece, at most %d, expected)%s", held, c->per, all ? "" : ", and not every row once");
	free(c);
	sl_kernels_set_threads(4);
	printf("sl_parallel_rows: %d products on 1 to 4 threads, every row once in pieces of 16 rows; threads start at "
	       "their shares, a held-up thread's share taken by the other (it computed %d of 3072 rows)\n",
	       checked, held);
}

/* matmul_parts gives every part the bits matmul gives it alone: parts of
 * one type (a block's query, key and value), of types that quantize the
 * activations differently (Q4_0 and Q8_0 to Q8_0, Q4_K to Q8_K) or not at
 * all (F16), with and without bias, small enough to stay on one thread and
 * large enough to be split, with tasks across the parts' ends (rows not in
 * units of 16), on 1 to 4 threads. */
static void test_matmul_parts(const sl_kernels *K, const char *path)
{
	static const struct {
		int n_in, n[3], type[3];
	} cases[] = {
		{256, {100, 36, 36}, {SL_DT_F16, SL_DT_F16, SL_DT_F16}},
		{512, {256, 128, 128}, {SL_DT_Q8_0, SL_DT_Q8_0, SL_DT_Q8_0}},
		{256, {200, 64, 48}, {SL_DT_Q4_0, SL_DT_Q4_K, SL_DT_Q8_0}},
		{512, {96, 160, 0}, {SL_DT_F32, SL_DT_Q4_K, 0}},
		{1024, {1000, 136, 200}, {SL_DT_Q4_0, SL_DT_Q4_0, SL_DT_Q8_0}},
		{2048, {520, 264, 264}, {SL_DT_F16, SL_DT_F16, SL_DT_F16}},
	};
	static const int Ts[] = {1, 5, 64};
	int checked = 0;
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int n_in = cases[c].n_in, np = cases[c].n[2] ? 3 : 2;
		float *x = floats((size_t)T_MAX * n_in), *w = floats((size_t)1000 * n_in), *bias = floats(1000);
		char *wq[3];
		float *y[3], *alone[3];
		rng_state = 300 + c;
		fill_normal(x, (size_t)T_MAX * n_in, 0.0, 1.0);
		fill_normal(bias, 1000, 0.0, 1.0);
		sl_matmul_part parts[3];
		for (int i = 0; i < np; i++) {
			int n_out = cases[c].n[i], type = cases[c].type[i];
			fill_normal(w, (size_t)n_out * n_in, 0.0, 1.0);
			wq[i] = alloc_or_die(sl_dtype_row_bytes(type, n_in) * n_out);
			sl_dtype_rows_from_float(type, w, wq[i], n_out, n_in);
			y[i] = floats((size_t)T_MAX * n_out);
			alone[i] = floats((size_t)T_MAX * n_out);
			parts[i] = (sl_matmul_part){y[i], wq[i], type, n_out, i == 1 ? bias : NULL};
		}
		for (size_t t = 0; t < sizeof Ts / sizeof Ts[0] * 4; t++) {
			int T = Ts[t / 4], threads = 1 + (int)(t % 4);
			sl_kernels_set_threads(threads);
			for (int i = 0; i < np; i++)
				memset(y[i], 0xff, (size_t)T * parts[i].n_out * sizeof(float));
			K->matmul_parts(parts, np, x, T, n_in);
			sl_kernels_set_threads(4);
			for (int i = 0; i < np; i++) {
				K->matmul(alone[i], x, T, wq[i], parts[i].wtype, parts[i].n_out, n_in, parts[i].bias);
				CHECK(!memcmp(y[i], alone[i], (size_t)T * parts[i].n_out * sizeof(float)),
				      "matmul_parts, case %zu, part %d (%s), T=%d, %d threads: not the bits matmul gives it "
				      "alone on 4",
				      c, i, sl_type_info_get(parts[i].wtype)->name, T, threads);
				checked++;
			}
		}
		for (int i = 0; i < np; i++)
			free(wq[i]), free(y[i]), free(alone[i]);
		free(x), free(w), free(bias);
	}
	printf("matmul_parts (%s path): %d parts of one input, each the bits of matmul alone\n", path, checked);
}

/* ---- CPU paths ------------------------------------------------------------------ */

/* Runs this program again with SL_NO_AVX2=1 and --portable; true when that
 * run passed. */
static bool run_portable(const char *self)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = alloc_or_die((n + 2) * sizeof *env), *args[] = {(char *)self, "--portable", NULL};
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "SL_NO_AVX2=", 11))
			env[k++] = environ[i];
	env[k++] = "SL_NO_AVX2=1";
	env[k] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid_t pid;
	int status = 0, rc = posix_spawnp(&pid, self, NULL, NULL, args, env);
	free(env);
	if (rc != 0) {
		fprintf(stderr, "cannot run %s again: %s\n", self, strerror(rc));
		return false;
	}
	if (waitpid(pid, &status, 0) != pid)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Every half widens to the float the scalar conversion gives (the
 * table's F16 rows go through F16C where the CPU has it); NaNs stay NaN. */
static void test_f16_widen(const char *path)
{
	enum { N = 65536 + 3 };
	static uint16_t h[N];
	static float got[N];
	for (int i = 0; i < N; i++)
		h[i] = (uint16_t)(i % 65536);
	sl_type_info_get(SL_DT_F16)->to_float(h, got, N);
	int bad = 0;
	for (int i = 0; i < N; i++) {
		float want = sl_f16_to_f32(h[i]);
		if (isnan(want) ? !isnan(got[i]) : memcmp(&want, &got[i], sizeof want))
			bad++;
	}
	CHECK(!bad, "%s: %d halves widened differently from the scalar conversion", path, bad);
}

/* Float weights over row lengths that end in every way the float
 * products' chains can end (a stretch of 32 products cut after 8, 16 or
 * 24, and n mod 8 products left), with a row count that leaves rows after
 * the tiles of four: every token alone has the bits it has in a batch of
 * T, the error against the double reference is float rounding, and the
 * outputs' bits are hashed so that tests/test-paths.sh can check that the
 * AVX2 and AVX-512 forms give the same ones. */
static void test_float_tails(const sl_kernels *K, const sl_kernels *R, const char *path)
{
	static const int lens[] = {8, 16, 24, 40, 48, 56, 64, 100, 1003};
	static const int types[] = {SL_DT_F32, SL_DT_F16, SL_DT_BF16};
	enum { ROWS = 9 };
	uint64_t hash = 1469598103934665603u;
	int bad_batch = 0, cases = 0;
	double worst = 0;
	for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
		for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
			const int n = lens[li], type = types[ti];
			const size_t rb = sl_dtype_row_bytes(type, n);
			float *w = floats((size_t)ROWS * n), *x = floats((size_t)T_MAX * n);
			float *y = floats((size_t)T_MAX * ROWS), *ref = floats((size_t)T_MAX * ROWS);
			float *alone = floats((size_t)T_MAX * ROWS);
			char *wq = alloc_or_die(rb * ROWS);
			rng_state = 7 + li;
			fill_normal(w, (size_t)ROWS * n, 0.0, 1.0);
			fill_normal(x, (size_t)T_MAX * n, 0.0, 1.0);
			sl_dtype_rows_from_float(type, w, wq, ROWS, n);
			R->matmul(ref, x, T_MAX, wq, type, ROWS, n, NULL);
			for (int t = 0; t < T_MAX; t++)
				K->matmul(alone + (size_t)t * ROWS, x + (size_t)t * n, 1, wq, type, ROWS, n, NULL);
			const double e = nmse(alone, ref, (size_t)T_MAX * ROWS, mean_square(ref, (size_t)T_MAX * ROWS));
			if (!(e <= worst))
				worst = e;
			for (int i = 0; i < N_BATCH; i++) {
				const int T = batches[i];
				K->matmul(y, x, T, wq, type, ROWS, n, NULL);
				bad_batch += memcmp(y, alone, (size_t)T * ROWS * sizeof *y) != 0;
				cases++;
			}
			const unsigned char *bytes = (const unsigned char *)alone;
			for (size_t i = 0; i < (size_t)T_MAX * ROWS * sizeof *alone; i++)
				hash = (hash ^ bytes[i]) * 1099511628211u;
			free(w);
			free(x);
			free(y);
			free(ref);
			free(alone);
			free(wq);
		}
	CHECK(!bad_batch, "float products (%s): %d of %d cases of row lengths 8..1003 differ between a token alone and "
	      "its batch", path, bad_batch, cases);
	CHECK(worst <= NMSE_FLOAT, "float products (%s) over odd row lengths: NMSE %.3g > %.3g", path, worst, NMSE_FLOAT);
	printf("float products (%s), row lengths 8..1003: batch-invariant in %d cases, NMSE %.3g; bits hash %016llx\n",
	       path, cases - bad_batch, worst, (unsigned long long)hash);
}

int main(int argc, char **argv)
{
	const bool portable_run = argc > 1 && !strcmp(argv[1], "--portable");
	/* The same task split on any machine, and threads even on one core. */
	sl_kernels_set_threads(4);
	const bool avx2 = sl_cpu_avx2();
	const char *path = avx2 ? "AVX2" : "portable C";
	const sl_kernels *K = sl_kernels_cpu(), *R = sl_kernels_ref();
	if (!portable_run) {
		test_pool();
		test_parallel_rows();
	}
	printf("== the %s kernels against the reference\n", path);
	test_other_ops(K, R, path);
	test_act_quantize();
	test_f16_widen(path);
	test_w8a8(K, R, path);
	test_matmul(K, R, path);
	test_float_tails(K, R, path);
	test_matmul_parts(K, path);
	if (portable_run)
		return test_finish();
	if (avx2)
		CHECK(run_portable(argv[0]), "the portable kernels failed (above)");
	else
		printf("the AVX2 kernels did not run: %s\n",
		       getenv("SL_NO_AVX2") ? "SL_NO_AVX2 is set" : "this CPU lacks AVX2, FMA or F16C");
	printf("AVX-512 forms (float tiles, legacy dots): %s\n",
	       avx2 && sl_cpu_avx512vl() ? "ran (SL_NO_AVX512=1 turns them off; tests/test-paths.sh runs without them)"
	                                 : "not run here");
	printf("CPU paths run: %s\n", avx2 ? "AVX2, portable C" : "portable C");
	return test_finish();
}
