/* bench/forward: prompt processing and decoding speed of the forward pass,
 * for stories260K (if the fixtures are present) and random-weight models
 * shaped like stories15M and stories110M. Decoding is set against the
 * machine's memory bandwidth (bytes read per token), prompt processing
 * against OpenBLAS sgemm on the same matrix shapes, both measured here.
 * Then the 110M shape with every linear module factored at keep 0.5
 * against the dense model in the same run, and how long each low-rank
 * method takes to factor the model's matrices.
 *
 *   bench/forward [MODEL]            all of the above
 *   bench/forward --lowrank [N]      only the 110M shape dense against keep
 *                                    0.5, N rounds (3) taking turns, each
 *                                    round's ratios and their medians (a
 *                                    busy machine slows both alike) */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/compress.h"
#include "core/forward.h"
#include "core/methods/method.h"
#include "core/model.h"
#include "core/speed.h"

/* Multiply-adds of the linear modules per token (2 flops each). */
static double matmul_flops_per_token(const sl_model *m)
{
	double f = 0;
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		/* A factored weight's products are its factors'. */
		if (t->n_dims == 2 && t != m->tok_embd && t != m->pos_embd && !t->lr_a &&
		    !(t == m->tok_embd->lr_a || t == m->tok_embd->lr_b))
			f += 2.0 * (double)t->ne[0] * (double)t->ne[1];
	}
	if (m->output == m->tok_embd)
		f += 2.0 * (double)m->tok_embd->ne[0] * (double)m->tok_embd->ne[1];
	return f;
}

/* Seconds OpenBLAS, on all cores, takes for the model's matrix products on
 * T tokens (each weight shape once per use, as the forward pass does them). */
static double sgemm_seconds(const sl_model *m, int T)
{
	int threads = sl_kernels_threads();
	openblas_set_num_threads(threads);
	float *x = calloc((size_t)T * 65536, sizeof(float)), *y = calloc((size_t)T * 65536, sizeof(float));
	double total = 0;
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		bool head = t == m->output;
		if (t->n_dims != 2 || (t == m->tok_embd && !head) || t == m->pos_embd || t->type != SL_DT_F32 || t->lr_a)
			continue;
		int n_in = (int)t->ne[0], n_out = (int)t->ne[1];
		if ((size_t)n_in > 65536 || (size_t)n_out > 65536)
			continue;
		double best = 1e30;
		for (int r = 0; r < 3; r++) {
			double t0 = bench_now();
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n_out, n_in, 1.0f, x, n_in, t->data, n_in,
			            0.0f, y, n_out);
			double dt = bench_now() - t0;
			best = dt < best ? dt : best;
		}
		total += best;
	}
	free(x);
	free(y);
	openblas_set_num_threads(1);
	return total;
}

/* Prompt and decoding tokens per second (pp, dec) of m, printed. */
static void run(const char *label, sl_model *m, double mem_bw, double *pp_tps, double *dec_tps_out)
{
	const int T_prompt = m->cfg.max_seq_len < 256 ? m->cfg.max_seq_len / 2 : 128, T_dec = 64;
	int V = m->cfg.vocab_size;
	int32_t *toks = malloc(sizeof(int32_t) * (size_t)(T_prompt + T_dec));
	for (int i = 0; i < T_prompt + T_dec; i++)
		toks[i] = (int32_t)((i * 7919 + 13) % V);
	float *logits = malloc(sizeof(float) * (size_t)V);
	sl_state *s;
	sl_error err;
	if (sl_state_new(m, T_prompt + T_dec, &s, &err)) {
		fprintf(stderr, "%s: %s\n", label, err.msg);
		return;
	}
	/* Prompt processing: best of three. */
	double pp = 1e30;
	for (int r = 0; r < 3; r++) {
		sl_state_reset(s);
		double t0 = bench_now();
		sl_forward(s, toks, T_prompt, logits, T_prompt - 1, &err);
		double dt = bench_now() - t0;
		pp = dt < pp ? dt : pp;
	}
	/* Decoding after the prompt, one token at a time. */
	double t0 = bench_now();
	for (int i = 0; i < T_dec; i++)
		sl_forward(s, &toks[T_prompt + i], 1, logits, 0, &err);
	double dec = bench_now() - t0;

	double fl = matmul_flops_per_token(m);
	double gemm = sgemm_seconds(m, T_prompt);
	double wbytes = sl_model_token_bytes(m);
	double kv = 0;
	for (int il = 0; il < m->cfg.n_layers; il++)
		kv += 2.0 * s->kv_dim[il] * sizeof(float) * (T_prompt + T_dec / 2.0);
	double bytes = wbytes + kv, dec_tps = T_dec / dec;
	printf("%-22s prompt %5d tok: %9.1f tok/s, %6.1f GFLOP/s (OpenBLAS sgemm alone, same shapes: %6.1f GFLOP/s, ratio %.2f)\n",
	       label, T_prompt, T_prompt / pp, fl * T_prompt / pp / 1e9, fl * T_prompt / gemm / 1e9,
	       (fl * T_prompt / pp) / (fl * T_prompt / gemm));
	printf("%-22s decode %5d tok: %9.1f tok/s, %8.2f MB read/token, %6.2f GB/s (machine %.2f GB/s, ratio %.2f)\n",
	       "", T_dec, dec_tps, bytes / 1e6, bytes * dec_tps / 1e9, mem_bw, bytes * dec_tps / 1e9 / mem_bw);
	if (pp_tps)
		*pp_tps = T_prompt / pp;
	if (dec_tps_out)
		*dec_tps_out = dec_tps;
	sl_state_free(s);
	free(toks);
	free(logits);
}

/* Seconds each low-rank method takes to factor every linear module of m
 * at keep 0.5 (the sharing one: pairs of blocks), on statistics of random
 * correlated inputs (the random model has no text to calibrate on): the
 * factorization alone, as the method's hook runs it. */
static void factor_times(const sl_model *m)
{
	int n = sl_model_modules(m, NULL, 0);
	sl_module *mods = calloc((size_t)n, sizeof *mods);
	sl_model_modules(m, mods, n);
	enum { T = 1024 };
	printf("factoring every linear module at keep 0.5 (%d threads for the methods' BLAS: 1):\n", sl_kernels_threads());
	for (int k = 0; k < sl_method_count(); k++) {
		const sl_method *meth = sl_method_at(k);
		if (!meth->factor)
			continue;
		sl_module_plan plan = {.rule = -1};
		snprintf(plan.method, sizeof plan.method, "%s", meth->name);
		double seconds = 0;
		int matrices = 0;
		for (int i = 0; i < n; i++) {
			const sl_module *md = &mods[i];
			int group = meth->shares ? 2 : 1;
			if (md->kind == SL_MOD_EMBD || (meth->shares && md->layer % 2))
				continue;
			int rows = (int)md->w->ne[1], cols = (int)md->w->ne[0], rank = sl_lowrank_rank(&plan, (int64_t)rows * group, cols);
			float *W = malloc((size_t)group * rows * cols * sizeof *W), *X = malloc((size_t)T * cols * sizeof *X);
			float *A = malloc((size_t)group * rows * rank * sizeof *A), *B = malloc((size_t)rank * cols * sizeof *B);
			float *H = calloc((size_t)cols * cols, sizeof *H);
			double *sum_abs = calloc((size_t)cols, sizeof *sum_abs);
			for (int g = 0; g < group; g++)
				sl_tensor_rows_to_f32(md->w, 0, rows, W + (size_t)g * rows * cols);
			uint64_t rng = 1 + (uint64_t)i;
			for (size_t j = 0; j < (size_t)T * cols; j++) {
				rng = rng * 6364136223846793005ull + 1442695040888963407ull;
				X[j] = (float)((double)(rng >> 11) / 9007199254740992.0 - 0.5) * (1.0f + (float)(j % cols % 7));
				sum_abs[j % cols] += fabs(X[j]);
			}
			cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, cols, T, 1.0f / T, X, cols, 0.0f, H, cols);
			for (int a = 0; a < cols; a++)
				for (int b = a + 1; b < cols; b++)
					H[(size_t)a * cols + b] = H[(size_t)b * cols + a];
			sl_act_stats st = {.n = cols, .n_tokens = T, .sum_abs = sum_abs, .hessian = H};
			const sl_act_stats *sts[2] = {&st, &st};
			sl_factor_job j = {md->name, group, W, rows, cols, rank, sts, &plan, A, B};
			sl_error err = {0};
			double t0 = bench_now();
			if (meth->factor(&j, &err))
				fprintf(stderr, "%s %s: %s\n", meth->name, md->name, err.msg);
			seconds += bench_now() - t0;
			matrices += group;
			free(W);
			free(X);
			free(A);
			free(B);
			free(H);
			free(sum_abs);
		}
		printf("  %-8s %3d matrices in %7.2f s\n", meth->name, matrices, seconds);
	}
	free(mods);
}

/* m with every linear module (the blocks' and the output head) factored
 * at keep 0.5 by the first low-rank method that needs no calibration. */
static sl_model *factored(const sl_model *m)
{
	const char *json = "{\"slimlab_recipe\": 1, \"rules\": [{\"match\": \"blk.*\", \"method\": \"svd\","
	                   " \"params\": {\"keep\": 0.5}}, {\"match\": \"output\", \"method\": \"svd\","
	                   " \"params\": {\"keep\": 0.5}}]}";
	sl_recipe *r = NULL;
	sl_model *out = NULL;
	sl_apply_report rep = {0};
	sl_error err = {0};
	if (sl_recipe_parse(json, strlen(json), &r, &err) || sl_recipe_apply(m, r, NULL, &out, &rep, &err))
		fprintf(stderr, "factoring: %s\n", err.msg);
	else
		printf("factored at keep 0.5 (svd) in %.2f s: %.1f MB -> %.1f MB\n", rep.seconds, rep.bytes_before / 1e6,
		       rep.bytes_after / 1e6);
	sl_apply_report_free(&rep);
	sl_recipe_free(r);
	return out;
}

static sl_model *random_model(int dim, int layers, int heads, int hidden, int vocab, int ctx)
{
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = dim, .hidden_dim = hidden, .n_layers = layers,
	               .n_heads = heads, .n_kv_heads = heads, .vocab_size = vocab, .max_seq_len = ctx,
	               .rope_style = SL_ROPE_NORM};
	sl_model *m = NULL;
	sl_error err;
	if (sl_model_init_random(&c, false, 0.02f, 42, &m, &err))
		fprintf(stderr, "random model: %s\n", err.msg);
	return m;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The 110M shape dense and factored at keep 0.5, rounds times in turn. */
static int lowrank_rounds(int rounds, double bw)
{
	if (rounds < 1 || rounds > 100) {
		fprintf(stderr, "usage: bench/forward --lowrank [ROUNDS 1..100]\n");
		return 2;
	}
	sl_model *m = random_model(768, 12, 12, 2048, 32000, 256), *lr = m ? factored(m) : NULL;
	double *pp = calloc((size_t)rounds * 2, sizeof *pp), *dec = pp + rounds;
	if (!lr || !pp) {
		sl_model_free(m);
		sl_model_free(lr);
		free(pp);
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		double dpp, ddec, lpp, ldec;
		run("stories110M-shaped", m, bw, &dpp, &ddec);
		run("110M, keep 0.5", lr, bw, &lpp, &ldec);
		pp[r] = lpp / dpp;
		dec[r] = ldec / ddec;
		printf("round %d: low rank at keep 0.5 against dense: prompt %.2fx, decoding %.2fx\n", r + 1, pp[r], dec[r]);
	}
	printf("low rank at keep 0.5 against dense, median of %d rounds: prompt %.2fx, decoding %.2fx\n", rounds,
	       median(pp, rounds), median(dec, rounds));
	free(pp);
	sl_model_free(lr);
	sl_model_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--lowrank")) {
		double bw = sl_memory_bandwidth();
		printf("threads %d, memory read bandwidth %.2f GB/s\n", sl_kernels_threads(), bw);
		return lowrank_rounds(argc > 2 ? atoi(argv[2]) : 3, bw);
	}
	const char *path = bench_model_path(argc, argv);
	double bw = sl_memory_bandwidth();
	printf("threads %d, memory read bandwidth %.2f GB/s\n", sl_kernels_threads(), bw);
	sl_model *m = NULL;
	sl_error err;
	if (sl_model_load(path, NULL, &m, &err) == SL_OK) {
		run("stories260K", m, bw, NULL, NULL);
		sl_model_free(m);
	} else {
		printf("stories260K: skipped (%s)\n", err.msg);
	}
	if ((m = random_model(288, 6, 6, 768, 32000, 256))) {
		run("stories15M-shaped", m, bw, NULL, NULL);
		sl_model_free(m);
	}
	if ((m = random_model(768, 12, 12, 2048, 32000, 256))) {
		double pp, dec, lpp, ldec;
		run("stories110M-shaped", m, bw, &pp, &dec);
		sl_model *lr = factored(m);
		if (lr) {
			run("110M, keep 0.5", lr, bw, &lpp, &ldec);
			printf("low rank at keep 0.5 against dense, same run: prompt %.2fx, decoding %.2fx\n", lpp / pp, ldec / dec);
		}
		sl_model_free(lr);
		factor_times(m);
		sl_model_free(m);
	}
	return 0;
}
