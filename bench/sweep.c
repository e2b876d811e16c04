/* bench/sweep: a sensitivity sweep against the naive way to the same
 * figures, in one run. The sweep runs the base once, caches its logits and
 * the hidden states entering each block, and recomputes each cell from its
 * block onward, cells in parallel. The naive way applies each one-module
 * recipe to a copy of the model and evaluates it in full against the base
 * (both models over every window), one cell after another; the text is
 * tokenized once for it, outside the timing. Both use the
 * same calibration text, windows and options; the largest difference in KL
 * between the two shows they measured the same thing.
 * Usage: bench/sweep [MODEL] [OPTIONS] [NAIVE_CELLS] (run from the source
 * tree; OPTIONS default q8_0,q4_0,int4-g32,sparse-2:4; NAIVE_CELLS, when
 * given, times the naive way on that many cells spread over the grid and
 * scales its time to all of them, for large models). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/compress.h"
#include "core/eval.h"
#include "core/fileio.h"
#include "core/sweep/sweep.h"
#include "core/tokenizer.h"

enum { CTX = 128, WINDOWS = 8, CALIB_TOKENS = 2048, SEED = 7 };
static const char *text_path = "data/calib.txt";

int main(int argc, char **argv)
{
	const char *path = bench_model_path(argc, argv);
	const char *spec = argc > 2 ? argv[2] : "q8_0,q4_0,int4-g32,sparse-2:4";
	int naive_cells = argc > 3 ? atoi(argv[3]) : 0;
	sl_error err = {0};
	char *text;
	size_t len;
	if (sl_read_file(text_path, 1 << 26, &text, &len, &err)) {
		fprintf(stderr, "%s (run from the source tree)\n", err.msg);
		return 1;
	}
	sl_model *m = NULL;
	if (sl_model_load(path, NULL, &m, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	sl_sweep_option *opts;
	int n_opts;
	if (sl_sweep_parse_options(spec, &opts, &n_opts, &err)) {
		fprintf(stderr, "options: %s\n", err.msg);
		return 1;
	}
	printf("model %s, options %s, %d windows of %d tokens, %d threads\n", path, spec, WINDOWS, CTX,
	       sl_kernels_threads());

	/* Calibration statistics are gathered (and cached) once for both. */
	sl_sweep_opts o = {.text_path = text_path, .ctx = CTX, .windows = WINDOWS, .calib_tokens = CALIB_TOKENS,
	                   .seed = SEED, .no_fisher = true};
	sl_sweep *warm = NULL;
	if (sl_sweep_new(m, opts, n_opts, &o, &warm, &err)) {
		fprintf(stderr, "sweep: %s\n", err.msg);
		return 1;
	}
	sl_sweep_free(warm);

	double t0 = bench_now();
	sl_sweep *sw = NULL;
	if (sl_sweep_new(m, opts, n_opts, &o, &sw, &err)) {
		fprintf(stderr, "sweep: %s\n", err.msg);
		return 1;
	}
	double t_prep = bench_now() - t0;
	if (sl_sweep_run(sw, NULL, NULL, NULL, &err)) {
		fprintf(stderr, "sweep: %s\n", err.msg);
		return 1;
	}
	double t_sweep = bench_now() - t0;
	int rows = sl_sweep_rows(sw), cols = sl_sweep_cols(sw), cells = rows * cols;
	printf("sweep: %d cells in %.2f s (%.2f s of it caching the base), %.1f ms a cell\n", cells, t_sweep, t_prep,
	       1e3 * t_sweep / cells);

	/* The naive way: every cell (or an even spread of them) in full. */
	int step = naive_cells > 0 && naive_cells < cells ? cells / naive_cells : 1;
	int timed = 0;
	double worst = 0;
	sl_eval_opts eo = {.n_ctx = CTX, .n_chunks = WINDOWS};
	int32_t *ids; /* tokenized once, outside the timing, as the sweep does */
	size_t n_ids;
	if (sl_tok_encode(m->tok, text, len, sl_tok_add_bos(m->tok), &ids, &n_ids, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	t0 = bench_now();
	for (int i = 0; i < cells; i += step) {
		int r = i / cols, c = i % cols;
		sl_recipe *rec = sl_sweep_cell_recipe(sw, r, c);
		sl_model *q = NULL;
		sl_apply_report rep = {0};
		sl_apply_opts ao = {0};
		sl_eval_result full;
		if (sl_recipe_apply(m, rec, &ao, &q, &rep, &err) ||
		    sl_eval_tokens(q, m, ids, n_ids, &eo, &full, &err)) {
			fprintf(stderr, "naive %s x %s: %s\n", sl_sweep_row_name(sw, r), sl_sweep_col(sw, c)->label, err.msg);
			return 1;
		}
		const sl_sweep_cell *cell = sl_sweep_cell_at(sw, r, c);
		double d = fabs(cell->kl - full.kl_mean) / (1e-9 + full.kl_mean);
		if (d > worst)
			worst = d;
		sl_apply_report_free(&rep);
		sl_model_free(q);
		sl_recipe_free(rec);
		timed++;
	}
	double t_naive = bench_now() - t0;
	double t_naive_all = t_naive * cells / timed;
	printf("naive: %d of %d cells in %.2f s, %.1f ms a cell%s\n", timed, cells, t_naive, 1e3 * t_naive / timed,
	       timed < cells ? " (scaled to every cell below)" : "");
	printf("largest relative difference in KL, sweep against naive: %.2g\n", worst);
	printf("sweep speed-up over the naive recomputation: %.1fx (%.2f s against %.2f s)\n", t_naive_all / t_sweep,
	       t_sweep, t_naive_all);
	sl_sweep_free(sw);
	free(ids);
	free(opts);
	sl_model_free(m);
	free(text);
	return 0;
}
