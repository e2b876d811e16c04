/* slimlab sensitivity and slimlab autorecipe: per-module sweeps from the
 * command line, here or over the MPI ranks mpirun started, and a recipe
 * chosen from one under a size budget. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/compress.h"
#include "core/fileio.h"
#include "core/sweep/mpi.h"
#include "core/sweep/sweep.h"
#include "core/units.h"
#include "views/heat-svg.h"
#include "views/tradeoff-svg.h"

static const char sweep_flags[] =
	"  --unit module|block  one row per linear module (default) or per block\n"
	"  --text FILE        calibration text (default: data/calib.txt, which ships with slimlab)\n"
	"  --ctx N            window length (default 128)\n"
	"  --windows N        windows scored per cell (default 8)\n"
	"  --calib-tokens N   tokens for the methods' statistics (default 4096)\n"
	"  --seed S           which calibration windows the statistics use (default 0)\n"
	"  --resume FILE      start from the cells of a sweep saved with --save (-: stdin)\n"
	"  --save FILE        save the sweep (JSON) as it goes and when it ends\n"
	"  --tokenizer FILE   llama2.c tokenizer.bin\n"
	"  --threads N        CPU threads (default: one per core; under mpirun, per rank)\n"
	"  --stream           a line of JSON per finished cell on stdout, as it finishes\n"
	"                     (what the workbench's :sweep --ranks reads)\n"
	"Under mpirun (mpirun -n N slimlab sensitivity ...) the ranks share the cells\n"
	"and rank 0 writes the output: the same figures as one process.\n";

static const char sensitivity_usage[] =
	"Usage: slimlab sensitivity MODEL --options LIST [--json|--csv] [--svg FILE] [--metric M]\n"
	"                           [--chart FILE [--chart-row NAME]]\n"
	"For every linear module (or block) and every option, compresses that one module\n"
	"alone and measures the KL divergence from the original, the change in perplexity,\n"
	"the top-1 agreement and the acceptance it would have as a speculative draft of\n"
	"the original on calibration text, with cheap proxies (weight error,\n"
	"activation-weighted error) and how well each proxy ranks the modules.\n"
	"  --metric M         what the table and the SVG show, lower is better: kl, dppl,\n"
	"                     top1 (1 - top-1 agreement), accept (1 - acceptance)\n"
	"  --svg FILE         the heatmap as an SVG picture\n"
	"  --chart FILE       KL against bytes of every option, quantization, pruning and low rank\n"
	"                     apart, as an SVG picture: which technique wins at which size, for the\n"
	"                     whole model (each option everywhere) or with --chart-row for one row\n";

static const char autorecipe_usage[] =
	"Usage: slimlab autorecipe MODEL --budget B --out RECIPE.json [--options LIST]\n"
	"Sweeps the model (or resumes a saved sweep), then picks one option per module\n"
	"that minimizes the summed measured KL under the budget, writes the recipe, and\n"
	"evaluates it for real: predicted KL next to measured KL.\n"
	"  --budget B         4.5bpw (bits per weight), 3MB / 800KB / 2GiB (bytes), 50% (sparsity)\n"
	"  --out FILE         where the recipe is written\n"
	"  --json             print the result as JSON\n";

/* --options and what it takes, with the registries' names and the
 * default options. */
static void options_help(void)
{
	char help[1024], defaults[256];
	sl_sweep_options_help(help, sizeof help);
	sl_sweep_default_options(defaults, sizeof defaults);
	printf("  --options LIST     comma-separated options, each %s\n"
	       "                     (autorecipe's default: %s)\n",
	       help, defaults);
}

typedef struct {
	const char *options, *text, *resume, *save, *tok, *metric, *svg, *out, *budget, *chart, *chart_row;
	long ctx, windows, calib_tokens, seed, threads;
	sl_sweep_unit unit;
	bool json, csv, stream;
} sweep_args;

static int parse(const char *cmd, int argc, char **argv, sweep_args *a, const char *usage)
{
	static const struct option opts[] = {
		{"options", required_argument, 0, 'o'}, {"unit", required_argument, 0, 'u'},
		{"text", required_argument, 0, 'f'}, {"ctx", required_argument, 0, 'c'},
		{"windows", required_argument, 0, 'w'}, {"calib-tokens", required_argument, 0, 'k'},
		{"seed", required_argument, 0, 's'}, {"resume", required_argument, 0, 'r'},
		{"save", required_argument, 0, 'S'}, {"tokenizer", required_argument, 0, 'z'},
		{"threads", required_argument, 0, 'T'}, {"metric", required_argument, 0, 'm'},
		{"svg", required_argument, 0, 'G'}, {"json", no_argument, 0, 'j'}, {"csv", no_argument, 0, 'C'},
		{"budget", required_argument, 0, 'b'}, {"out", required_argument, 0, 'O'},
		{"stream", no_argument, 0, 'L'},
		{"chart", required_argument, 0, 'X'}, {"chart-row", required_argument, 0, 'Y'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': a->options = optarg; break;
		case 'u':
			if (strcmp(optarg, "module") && strcmp(optarg, "block"))
				return cli_usage_error(cmd, "--unit is module or block, not '%s'", optarg);
			a->unit = !strcmp(optarg, "block") ? SL_SWEEP_BLOCKS : SL_SWEEP_MODULES;
			break;
		case 'f': a->text = optarg; break;
		case 'c': if (!cli_parse_int(cmd, "--ctx", optarg, 8, 1 << 16, &a->ctx)) return CLI_USAGE; break;
		case 'w': if (!cli_parse_int(cmd, "--windows", optarg, 1, 1 << 20, &a->windows)) return CLI_USAGE; break;
		case 'k': if (!cli_parse_int(cmd, "--calib-tokens", optarg, 16, 1 << 26, &a->calib_tokens)) return CLI_USAGE; break;
		case 's': if (!cli_parse_int(cmd, "--seed", optarg, 0, 0x7fffffffL, &a->seed)) return CLI_USAGE; break;
		case 'r': a->resume = optarg; break;
		case 'S': a->save = optarg; break;
		case 'z': a->tok = optarg; break;
		case 'T': if (!cli_parse_int(cmd, "--threads", optarg, 1, 256, &a->threads)) return CLI_USAGE; break;
		case 'm':
			if (sl_sweep_metric_find(optarg) < 0)
				return cli_usage_error(cmd, "--metric is kl, dppl, top1 or accept, not '%s'", optarg);
			a->metric = optarg;
			break;
		case 'G': a->svg = optarg; break;
		case 'X': a->chart = optarg; break;
		case 'Y': a->chart_row = optarg; break;
		case 'j': a->json = true; break;
		case 'C': a->csv = true; break;
		case 'b': a->budget = optarg; break;
		case 'O': a->out = optarg; break;
		case 'L': a->stream = true; break;
		case 'h': fputs(usage, stdout); options_help(); fputs(sweep_flags, stdout); return -1;
		default: return cli_usage_error(cmd, "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cmd, "expects one MODEL");
	if (a->json + a->csv + a->stream > 1)
		return cli_usage_error(cmd, "--json, --csv and --stream exclude each other");
	if (a->threads)
		sl_kernels_set_threads((int)a->threads);
	return CLI_OK;
}

static sl_status save_sweep(const sl_sweep *sw, const char *path, sl_error *err)
{
	cJSON *j = sl_sweep_to_json(sw);
	char *s = cJSON_Print(j);
	cJSON_Delete(j);
	if (!s)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	sl_status st = sl_write_file_atomic(path, s, strlen(s), err);
	free(s);
	return st;
}

typedef struct {
	const sl_sweep *sw;
	const char *save;
	int since_save, every;        /* cells since the last save; how many make one */
	bool saved, stream;
} cell_sink;

/* Streams each cell, and saves every few (every one under mpirun, where
 * mpirun stops every rank at once when one fails). */
static void on_cell(void *ctx, int row, int col, const sl_sweep_cell *cell)
{
	cell_sink *k = ctx;
	(void)cell;
	if (k->stream) {
		char *line = sl_sweep_stream_cell(k->sw, row, col);
		if (line) {
			puts(line);
			fflush(stdout);
		}
		free(line);
	}
	if (k->save && ++k->since_save >= k->every) {
		sl_error err;
		if (save_sweep(k->sw, k->save, &err) == SL_OK) {
			k->since_save = 0;
			k->saved = true;
		}
	}
}

static void on_note(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "slimlab: %s\n", msg);
}

/* Makes the sweep the arguments describe and, on rank 0 (or alone),
 * restores the cells of --resume and starts the stream. */
static sl_status prepare(const sl_model *m, const sweep_args *a, const char *options, bool first, cli_bar *bar,
                         sl_sweep **sw, sl_error *err)
{
	sl_sweep_option *opts;
	int n;
	sl_status st = sl_sweep_parse_options(options, &opts, &n, err);
	if (st)
		return st;
	char shipped[4096];
	if (!a->text && (st = sl_shipped_find("data/calib.txt", shipped, sizeof shipped, err))) {
		free(opts);
		return st;
	}
	sl_sweep_opts so = {.text_path = a->text ? a->text : shipped, .ctx = (int)a->ctx,
	                    .windows = (int)a->windows, .unit = a->unit, .calib_tokens = (int)a->calib_tokens,
	                    .seed = (uint64_t)a->seed, .progress = &bar->p};
	st = sl_sweep_new(m, opts, n, &so, sw, err);
	free(opts);
	if (!st && first && a->resume) {
		char *js;
		size_t len;
		int restored = 0;
		st = sl_read_file(strcmp(a->resume, "-") ? a->resume : "/dev/stdin", (size_t)1 << 28, &js, &len, err);
		if (!st) {
			cJSON *j = cJSON_Parse(js);
			free(js);
			st = j ? sl_sweep_restore(*sw, j, &restored, err)
			       : sl_errorf(err, SL_ERR_FORMAT, "%s: not valid JSON", a->resume);
			cJSON_Delete(j);
			if (st)
				sl_error_prefix(err, "%s: ", a->resume);
		}
		if (!st)
			fprintf(stderr, "resuming: %d cells already measured\n", restored);
	}
	if (!st && first && a->stream) {
		char *line = sl_sweep_stream_header(*sw);
		st = line ? SL_OK : sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		if (line) {
			puts(line);
			fflush(stdout);
		}
		free(line);
	}
	return st;
}

/* Runs (or resumes) the sweep the arguments describe: here, or over the
 * ranks mpirun started, each of which prepares the same sweep; rank 0
 * gathers the cells, saves and streams them. NULL on failure. Ranks above
 * 0 set *helper and return their sweep, whose cells rank 0 holds. */
static sl_sweep *run_sweep(const sl_model *m, const sweep_args *a, const char *options, bool *helper)
{
	sl_error err = {0};
	int rank = 0, size = sl_mpi_world(&rank);
	*helper = rank > 0;
	if (size > 1 && sl_mpi_init(&rank, &size, &err)) {
		if (!rank)
			cli_error(&err);
		return NULL;
	}
	cli_bar bar;
	cli_bar_init(&bar, "sweep");
	sl_sweep *sw = NULL;
	sl_status st = prepare(m, a, options, rank == 0, &bar, &sw, &err);
	cell_sink sink = {sw, rank ? NULL : a->save, 0, size > 1 ? 1 : 8, false, !rank && a->stream};
	if (size > 1) {
		/* mpirun ends a run with SIGTERM: rank 0 takes it as it takes Ctrl-C. */
		struct sigaction intr, term;
		sigaction(SIGINT, NULL, &intr);
		sigaction(SIGTERM, rank ? NULL : &intr, &term);
		sl_error run_err = {0};
		sl_status rs = sl_sweep_run_mpi(st ? NULL : sw, &err, on_cell, on_note, &sink, &bar.p, &run_err);
		sigaction(SIGTERM, &term, NULL);
		if (rs != SL_ERR_CANCELLED)
			sl_mpi_finalize();
		/* A rank that could not prepare has said why through rank 0. */
		if (rank && !st && rs && rs != SL_ERR_CANCELLED)
			cli_error(&run_err);
		if (!st) {
			st = rs;
			err = run_err;
		}
	} else if (!st) {
		st = sl_sweep_run(sw, on_cell, &sink, &bar.p, &err);
	}
	cli_bar_done(&bar);
	if (rank) {
		if (st) {
			sl_sweep_free(sw);
			sw = NULL;
		}
		return sw;
	}
	if (sw && a->save && (sink.since_save || !sink.saved)) {
		sl_error e2;
		if (save_sweep(sw, a->save, &e2))
			cli_error(&e2);
	}
	if (st) {
		cli_error(&err);
		if (st == SL_ERR_CANCELLED && a->save)
			fprintf(stderr, "slimlab: the finished cells are in %s; go on with --resume %s\n", a->save, a->save);
		sl_sweep_free(sw);
		return NULL;
	}
	return sw;
}

static void print_table(const sl_sweep *sw, const char *metric)
{
	int cols = sl_sweep_cols(sw);
	printf("%s per module and option (base PPL %.4f); lower is better\n",
	       sl_sweep_metric_title(sl_sweep_metric_find(metric)), sl_sweep_base_ppl(sw));
	printf("%-24s", "");
	for (int c = 0; c < cols; c++)
		printf(" %12.12s", sl_sweep_col(sw, c)->label);
	printf("\n");
	for (int r = 0; r < sl_sweep_rows(sw); r++) {
		printf("%-24.24s", sl_sweep_row_name(sw, r));
		for (int c = 0; c < cols; c++) {
			const sl_sweep_cell *cl = sl_sweep_cell_at(sw, r, c);
			if (cl->failed)
				printf(" %12s", "failed");
			else
				printf(" %12.4g", sl_sweep_metric(cl, metric));
		}
		printf("\n");
	}
	static const char *names[SL_PROXY_COUNT] = {"weight error", "activation-weighted error", "Fisher estimate"};
	printf("\nhow well each proxy ranks the cells like the measured KL (Spearman's rho):\n");
	for (int p = 0; p < SL_PROXY_COUNT; p++) {
		double rho = sl_sweep_spearman(sw, p, -1);
		if (isfinite(rho))
			printf("  %-26s %.3f\n", names[p], rho);
	}
	/* Notes grouped per option: "OPTION: blk.0.ffn_down, blk.1.ffn_down fell back to f16". */
	for (int c = 0; c < cols; c++)
		for (int r = 0; r < sl_sweep_rows(sw); r++) {
			const char *note = sl_sweep_cell_at(sw, r, c)->note;
			const char *what = strstr(note, " fell back to ");
			if (!note[0])
				continue;
			if (!what) {
				printf("note: %s x %s: %s\n", sl_sweep_row_name(sw, r), sl_sweep_col(sw, c)->label, note);
				continue;
			}
			bool first = true;
			for (int k = 0; k < r && first; k++) {
				const char *other = strstr(sl_sweep_cell_at(sw, k, c)->note, " fell back to ");
				first = !other || strcmp(other, what);
			}
			if (!first)
				continue;
			printf("note: %s:", sl_sweep_col(sw, c)->label);
			for (int k = r; k < sl_sweep_rows(sw); k++) {
				const char *other = strstr(sl_sweep_cell_at(sw, k, c)->note, " fell back to ");
				if (other && !strcmp(other, what))
					printf("%s %s", k == r ? "" : ",", sl_sweep_row_name(sw, k));
			}
			printf("%s\n", what);
		}
}

int sl_cmd_sensitivity(int argc, char **argv)
{
	sweep_args a = {.metric = "kl"};
	int rc = parse("sensitivity", argc, argv, &a, sensitivity_usage);
	if (rc)
		return rc < 0 ? CLI_OK : rc;
	if (!a.options)
		return cli_usage_error("sensitivity", "--options LIST is required (--help says what it takes)");
	sl_model *m = cli_load_model(argv[optind], a.tok);
	if (!m)
		return CLI_FAIL;
	bool helper;
	sl_sweep *sw = run_sweep(m, &a, a.options, &helper);
	rc = sw ? CLI_OK : CLI_FAIL;
	if (helper || a.stream) {
		sl_sweep_free(sw);
		sl_model_free(m);
		return rc;
	}
	if (sw && a.svg) {
		char *svg = sl_heat_svg(sw, a.metric);
		sl_error err = {0};
		if (!svg || sl_write_file_atomic(a.svg, svg, strlen(svg), &err))
			rc = cli_error(&err);
		free(svg);
	}
	if (sw && a.chart) {
		char *svg = sl_tradeoff_svg(sw, a.chart_row);
		sl_error err = {0};
		if (!svg && a.chart_row)
			rc = cli_usage_error("sensitivity", "--chart-row: the sweep has no row '%s'", a.chart_row);
		else if (!svg)
			rc = cli_error(&(sl_error){SL_ERR_NOMEM, "out of memory drawing the chart"});
		else if (sl_write_file_atomic(a.chart, svg, strlen(svg), &err))
			rc = cli_error(&err);
		free(svg);
	}
	if (sw && a.json) {
		cJSON *j = sl_sweep_to_json(sw);
		cli_print_json(j);
	} else if (sw && a.csv) {
		char *s = sl_sweep_to_csv(sw);
		fputs(s, stdout);
		free(s);
	} else if (sw) {
		print_table(sw, a.metric);
	}
	sl_sweep_free(sw);
	sl_model_free(m);
	return rc;
}

int sl_cmd_autorecipe(int argc, char **argv)
{
	sweep_args a = {.metric = "kl"};
	int rc = parse("autorecipe", argc, argv, &a, autorecipe_usage);
	if (rc)
		return rc < 0 ? CLI_OK : rc;
	if (!a.budget || !a.out)
		return cli_usage_error("autorecipe", "--budget B and --out FILE are required");
	if (a.stream)
		return cli_usage_error("autorecipe", "--stream is slimlab sensitivity's");
	sl_error err = {0};
	sl_budget_kind kind;
	double budget;
	if (sl_budget_parse(a.budget, &kind, &budget, &err))
		return cli_usage_error("autorecipe", "%s", err.msg);
	sl_model *m = cli_load_model(argv[optind], a.tok);
	if (!m)
		return CLI_FAIL;
	char defaults[256];
	sl_sweep_default_options(defaults, sizeof defaults);
	bool helper;
	sl_sweep *sw = run_sweep(m, &a, a.options ? a.options : defaults, &helper);
	if (helper) {
		rc = sw ? CLI_OK : CLI_FAIL;
		sl_sweep_free(sw);
		sl_model_free(m);
		return rc;
	}
	sl_recipe *rec = NULL;
	sl_model *q = NULL;
	sl_autorecipe_result res = {0};
	sl_apply_report rep = {0};
	sl_eval_result ev = {0};
	char *text = NULL;
	rc = CLI_FAIL;
	if (!sw)
		goto done;
	if (sl_autorecipe(sw, kind, budget, &rec, &res, &err) || sl_recipe_save(rec, a.out, &err)) {
		cli_error(&err);
		goto done;
	}
	/* The combined recipe, applied and measured on the sweep's windows. */
	cli_bar bar;
	cli_bar_init(&bar, "measuring the recipe");
	sl_apply_opts ao = {.progress = &bar.p};
	size_t len;
	sl_eval_opts eo = {.n_ctx = a.ctx > 0 ? (int)a.ctx : 128, .n_chunks = a.windows > 0 ? (int)a.windows : 8,
	                   .progress = &bar.p};
	sl_status st = sl_recipe_apply(m, rec, &ao, &q, &rep, &err);
	if (!st)
		st = sl_read_file(rec->calib.text, (size_t)1 << 30, &text, &len, &err);
	if (!st)
		st = sl_eval_text(q, m, text, len, &eo, &ev, &err);
	cli_bar_done(&bar);
	if (st) {
		cli_error(&err);
		goto done;
	}
	if (a.json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "recipe", a.out);
		cJSON_AddStringToObject(o, "budget", a.budget);
		cJSON_AddNumberToObject(o, "bpw", rep.bpw);
		cJSON_AddNumberToObject(o, "bytes", rep.bytes_after);
		cJSON_AddNumberToObject(o, "predicted_kl_sum", res.predicted_kl);
		cJSON_AddNumberToObject(o, "measured_kl", ev.kl_mean);
		cJSON_AddNumberToObject(o, "ppl", ev.ppl);
		cJSON_AddNumberToObject(o, "delta_ppl", ev.delta_ppl);
		cJSON_AddNumberToObject(o, "top1", ev.top1);
		cli_print_json(o);
	} else {
		char b1[32];
		sl_fmt_bytes(rep.bytes_after, b1, sizeof b1);
		printf("recipe       %s (%d rules)\n", a.out, rec->n_rules);
		printf("size         %.3f bits per weight, %s\n", rep.bpw, b1);
		printf("KL           %.5f predicted (sum of the modules measured alone), %.5f measured\n", res.predicted_kl,
		       ev.kl_mean);
		printf("perplexity   %.4f (base %.4f, delta %+.4f), top-1 %.2f%%\n", ev.ppl, ev.base_ppl, ev.delta_ppl,
		       100 * ev.top1);
	}
	rc = CLI_OK;
done:
	free(text);
	sl_apply_report_free(&rep);
	sl_model_free(q);
	sl_autorecipe_result_free(&res);
	sl_recipe_free(rec);
	sl_sweep_free(sw);
	sl_model_free(m);
	return rc;
}
