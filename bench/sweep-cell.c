/* bench/sweep-cell: what one sensitivity cell costs on large shapes, for
 * the estimate of a sweep spread over machines (README, slimlab(1)).
 * Random-weight models (F32) shaped like stories110M (its 12 blocks of dim
 * 768) and like Llama-2-7B (dim 4096, mlp 11008, vocabulary 32000; 2 of its
 * 32 blocks, which is what fits in memory here), each with the workshop
 * model's tokenizer (its ids lie inside the vocabulary). A cell of block b
 * compresses its module, then recomputes the blocks from b on and the head
 * on every window; so the cells of the first and of the last block, module
 * kind by module kind, give what a block costs per window, and, with the
 * compression timed alone, what the head and the scoring cost per window.
 * A model of the full depth L then has a mean cell of: compressing the
 * module, plus (L + 1) / 2 blocks and the head on each of 8 windows of 128
 * tokens (a sweep's default). Everything runs on one thread and is timed
 * in CPU seconds, so other work on the machine does not count; times on
 * many cores are the same per core while memory keeps up.
 * Usage: bench/sweep-cell [OPTION] [WINDOWS] (run from the source tree;
 * default q4_0, cells measured on 1 window). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/compress.h"
#include "core/model.h"
#include "core/sweep/sweep.h"
#include "core/tokenizer.h"

enum { CTX = 128, SWEEP_WINDOWS = 8, CALIB_TOKENS = 256, KINDS = 7 };

static sl_model *shaped(int dim, int layers, int heads, int hidden, const sl_model *donor)
{
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = dim, .hidden_dim = hidden, .n_layers = layers,
	               .n_heads = heads, .n_kv_heads = heads, .vocab_size = 32000, .max_seq_len = CTX,
	               .rope_style = SL_ROPE_NORM};
	sl_model *m = NULL;
	sl_error err;
	if (sl_model_init_random(&c, false, 0.02f, 42, &m, &err)) {
		fprintf(stderr, "random model: %s\n", err.msg);
		return NULL;
	}
	m->tok = sl_tok_ref(donor->tok);
	return m;
}

/* CPU seconds of compressing row's module alone, as a cell does. */
static double compress_seconds(const sl_model *m, const sl_sweep *sw, int row)
{
	sl_recipe *rec = sl_sweep_cell_recipe(sw, row, 0);
	sl_module mods[512];
	int n = sl_model_modules(m, mods, 512);
	double t = 0;
	for (int i = 0; i < n && rec; i++) {
		if (strcmp(mods[i].name, sl_sweep_row_name(sw, row)))
			continue;
		sl_module_plan plan;
		sl_recipe_resolve(rec, &mods[i], &plan);
		sl_tensor out = {0};
		sl_module_report rep;
		sl_error err;
		double t0 = bench_cpu_now();
		if (!sl_compress_module(m, &mods[i], &plan, NULL, false, &out, &rep, &err))
			t = bench_cpu_now() - t0;
		sl_tensor_release(&out);
	}
	sl_recipe_free(rec);
	return t;
}

/* Times the cells of m's first and last blocks and prints the mean cell of
 * a model of this shape and full_depth blocks; returns its CPU seconds. */
static double estimate(const char *label, sl_model *m, int full_depth, const char *option, int windows)
{
	sl_error err = {0};
	sl_sweep_option *opts;
	int n_opts;
	if (sl_sweep_parse_options(option, &opts, &n_opts, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	sl_sweep_opts o = {.text_path = "data/calib.txt", .ctx = CTX, .windows = windows,
	                   .calib_tokens = CALIB_TOKENS, .no_fisher = true};
	sl_sweep *sw = NULL;
	sl_status st = sl_sweep_new(m, opts, n_opts, &o, &sw, &err);
	free(opts);
	if (st) {
		fprintf(stderr, "%s: %s (run from the source tree)\n", label, err.msg);
		return -1;
	}
	int L = m->cfg.n_layers;
	double first[KINDS] = {0}, last[KINDS] = {0}, comp = 0, block = 0, rest = 0;
	int nf = 0, nl = 0;
	for (int r = 0; r < sl_sweep_rows(sw) && !st; r++) {
		int b = sl_sweep_row_block(sw, r);
		if (b != 0 && b != L - 1)
			continue;
		double t0 = bench_cpu_now();
		st = sl_sweep_measure(sw, r, 0, &err);
		double t = bench_cpu_now() - t0;
		if (b == 0 && nf < KINDS)
			first[nf++] = t;
		else if (b == L - 1 && nl < KINDS) {
			double c = compress_seconds(m, sw, r);
			comp += c / KINDS;
			rest += (t - c) / KINDS;
			last[nl++] = t;
		}
	}
	sl_sweep_free(sw);
	if (st || nf != KINDS || nl != KINDS) {
		fprintf(stderr, "%s: %s\n", label, st ? err.msg : "not 7 modules a block");
		return -1;
	}
	/* Kind by kind, the first block's cell recomputes L - 1 blocks more. */
	for (int k = 0; k < KINDS; k++)
		block += (first[k] - last[k]) / (L - 1) / KINDS;
	rest -= block; /* the last block's cells recompute one */
	double per_window = ((full_depth + 1) / 2.0 * block + rest) / windows;
	double mean = comp + SWEEP_WINDOWS * per_window;
	printf("%s (%d blocks timed, %d windows of %d tokens, %s): per window a block takes %.3f core-seconds, the "
	       "head and the scoring %.3f; compressing a module %.3f; at %d blocks and %d windows a mean cell takes "
	       "%.2f core-seconds\n",
	       label, L, windows, CTX, option, block / windows, rest / windows, comp, full_depth, SWEEP_WINDOWS, mean);
	return mean;
}

int main(int argc, char **argv)
{
	const char *option = argc > 1 ? argv[1] : "q4_0";
	int windows = argc > 2 ? atoi(argv[2]) : 1;
	if (windows < 1 || windows > SWEEP_WINDOWS)
		windows = 1;
	sl_kernels_set_threads(1);
	sl_error err;
	sl_model *donor = NULL;
	if (sl_model_load("models/workshop.gguf", NULL, &donor, &err)) {
		fprintf(stderr, "%s (run from the source tree)\n", err.msg);
		return 1;
	}
	sl_model *m = shaped(768, 12, 12, 2048, donor);
	double small = m ? estimate("stories110M-shaped", m, 12, option, windows) : -1;
	sl_model_free(m);
	m = small > 0 ? shaped(4096, 2, 32, 11008, donor) : NULL;
	double big = m ? estimate("Llama-2-7B-shaped", m, 32, option, windows) : -1;
	sl_model_free(m);
	sl_model_free(donor);
	if (small <= 0 || big <= 0)
		return 1;
	int cells = (32 * KINDS + 2) * 5;
	printf("a 7B sweep of 226 modules x 5 options = %d cells: %.1f core-hours; cells x cost / (machines x cores):\n",
	       cells, cells * big / 3600);
	for (int machines = 1; machines <= 64; machines *= 4)
		printf("  on %2d machines of 32 cores: %6.1f min\n", machines, cells * big / (machines * 32.0) / 60);
	return 0;
}
