/* bench/sweep-cell: what one sensitivity cell costs on large shapes, for
 * the estimate of a sweep spread over machines (README, slimlab(1)).
 * Random-weight models (F32) shaped like stories110M (all 12 blocks of
 * dim 768) and like Llama-2-7B (dim 4096, mlp 11008, vocabulary 32000: 2
 * of its 32 blocks, which is what fits here), each with the workshop
 * model's tokenizer (its ids lie inside the vocabulary), are swept with one
 * option on every thread, a cell per thread as a sweep runs them, and each
 * cell's own time is kept. A cell of block b recomputes the blocks from b
 * on and the head, so the 7B-shaped cells give the cost of a block (block
 * 0's cells less block 1's) and of the rest (the head and compressing the
 * module: block 1's less one block); a 32-block model's mean cell
 * recomputes 16.5 blocks. Windows are fewer than a real sweep's 8 of 128
 * tokens (times scale with them): the figures are scaled to 8.
 * Usage: bench/sweep-cell [OPTION] [WINDOWS] (run from the source tree;
 * default q4_0 on 2 windows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/model.h"
#include "core/sweep/sweep.h"
#include "core/tokenizer.h"

enum { CTX = 128, FULL_WINDOWS = 8, CALIB_TOKENS = 512 };

static sl_model *shaped(int dim, int layers, int heads, int kv_heads, int hidden, const sl_model *donor)
{
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = dim, .hidden_dim = hidden, .n_layers = layers,
	               .n_heads = heads, .n_kv_heads = kv_heads, .vocab_size = 32000, .max_seq_len = CTX,
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

/* Sweeps m with the option; the mean seconds of the cells of block 0, of
 * block 1, and of every cell, scaled to FULL_WINDOWS windows. */
static bool sweep(const char *label, sl_model *m, const char *option, int windows, double *b0, double *b1,
                  double *all)
{
	sl_error err = {0};
	sl_sweep_option *opts;
	int n_opts;
	if (sl_sweep_parse_options(option, &opts, &n_opts, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return false;
	}
	sl_sweep_opts o = {.text_path = "data/calib.txt", .ctx = CTX, .windows = windows,
	                   .calib_tokens = CALIB_TOKENS, .no_fisher = true};
	sl_sweep *sw = NULL;
	double t0 = bench_now();
	if (sl_sweep_new(m, opts, n_opts, &o, &sw, &err) || sl_sweep_run(sw, NULL, NULL, NULL, &err)) {
		fprintf(stderr, "%s: %s (run from the source tree)\n", label, err.msg);
		free(opts);
		sl_sweep_free(sw);
		return false;
	}
	double wall = bench_now() - t0, scale = (double)FULL_WINDOWS / sl_sweep_windows(sw);
	double sum[3] = {0};
	int n[3] = {0};
	for (int r = 0; r < sl_sweep_rows(sw); r++) {
		double s = sl_sweep_cell_at(sw, r, 0)->seconds * scale;
		int b = sl_sweep_row_block(sw, r);
		if (b == 0 || b == 1) {
			sum[b] += s;
			n[b]++;
		}
		sum[2] += s;
		n[2]++;
	}
	*b0 = n[0] ? sum[0] / n[0] : 0;
	*b1 = n[1] ? sum[1] / n[1] : 0;
	*all = sum[2] / n[2];
	printf("%s: %d cells of %s on %d threads in %.1f s (caches included); a cell takes %.2f s on one thread "
	       "(block 0: %.2f s, block 1: %.2f s), at %d windows of %d tokens\n",
	       label, n[2], option, sl_kernels_threads(), wall, *all, *b0, *b1, FULL_WINDOWS, CTX);
	free(opts);
	sl_sweep_free(sw);
	return true;
}

int main(int argc, char **argv)
{
	const char *option = argc > 1 ? argv[1] : "q4_0";
	int windows = argc > 2 ? atoi(argv[2]) : 2;
	if (windows < 1 || windows > FULL_WINDOWS)
		windows = 2;
	sl_error err;
	sl_model *donor = NULL;
	if (sl_model_load("models/workshop.gguf", NULL, &donor, &err)) {
		fprintf(stderr, "%s (run from the source tree)\n", err.msg);
		return 1;
	}
	double b0, b1, all;
	sl_model *m = shaped(768, 12, 12, 12, 2048, donor);
	if (!m || !sweep("stories110M-shaped", m, option, windows, &b0, &b1, &all))
		return 1;
	sl_model_free(m);

	m = shaped(4096, 2, 32, 32, 11008, donor);
	if (!m || !sweep("7B-shaped, 2 of 32 blocks", m, option, windows, &b0, &b1, &all))
		return 1;
	sl_model_free(m);
	double block = b0 - b1, rest = b1 - block, mean = rest + 16.5 * block;
	int cells = 32 * 7 + 2;
	printf("7B-shaped: a block costs %.2f s, the head and compressing the module %.2f s: a 32-block model's mean "
	       "cell takes %.1f s on one core; its %d modules x 5 options = %d cells take %.1f core-hours\n",
	       block, rest, mean, cells, cells * 5, cells * 5 * mean / 3600);
	for (int machines = 1; machines <= 64; machines *= 4)
		printf("  on %2d machines of 32 cores: %.1f min (cells x cost per cell / (machines x cores))\n", machines,
		       cells * 5 * mean / (machines * 32.0) / 60);
	sl_model_free(donor);
	return 0;
}
