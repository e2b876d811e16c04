/* slimlab apply MODEL --recipe R --out OUT.gguf: compresses a model as a
 * recipe (or one uniform --format rule) says and writes GGUF that
 * llama.cpp runs. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/eval.h"
#include "core/fileio.h"
#include "core/units.h"

static const char apply_usage[] =
	"Usage: slimlab apply MODEL (--recipe FILE | --format FMT [--method M] [--sparsity S]\n"
	"                     [--pattern P] [--prune C]) --out OUT.gguf [--text FILE] [--json]\n"
	"Compresses MODEL as the recipe says and writes OUT.gguf for llama.cpp (real ggml\n"
	"block types where the formats have them; see slimlab-recipe(5)). Reports bits per\n"
	"weight, bytes and every format that fell back; with --text also perplexity, KL\n"
	"divergence and top-1 agreement of the compressed model against MODEL.\n";

static const char apply_usage_tail[] =
	"  --out FILE         the GGUF file to write\n"
	"  --text FILE        evaluate on this text too (--ctx N, --chunks N as for eval)\n"
	"  --tokenizer FILE   llama2.c tokenizer.bin for MODEL\n"
	"  --threads N        CPU threads (default: one per core)\n"
	"  --json             print one JSON object\n";

int sl_cmd_apply(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_RECIPE_OPTIONS,
		{"out", required_argument, 0, 'o'},
		{"text", required_argument, 0, 'f'},
		{"ctx", required_argument, 0, 'c'},
		{"chunks", required_argument, 0, 'k'},
		{"tokenizer", required_argument, 0, 't'},
		{"threads", required_argument, 0, 'T'},
		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	cli_recipe_opts ro = {0};
	const char *out_path = NULL, *text_path = NULL, *tok = NULL;
	long ctx = 0, chunks = 0, threads = 0;
	bool json = false;
	int c;
	optind = 1;
	static struct option all[64];
	cli_recipe_longopts(opts, all, 64);
	while ((c = getopt_long(argc, argv, "o:f:c:k:t:h", all, NULL)) != -1) {
		int used = cli_recipe_opt("apply", c, optarg, &ro);
		if (used < 0)
			return CLI_USAGE;
		if (used)
			continue;
		switch (c) {
		case 'o': out_path = optarg; break;
		case 'f': text_path = optarg; break;
		case 'c': if (!cli_parse_int("apply", "--ctx", optarg, 4, 1 << 20, &ctx)) return CLI_USAGE; break;
		case 'k': if (!cli_parse_int("apply", "--chunks", optarg, 1, 1 << 30, &chunks)) return CLI_USAGE; break;
		case 't': tok = optarg; break;
		case 'T': if (!cli_parse_int("apply", "--threads", optarg, 1, 256, &threads)) return CLI_USAGE; break;
		case 'j': json = true; break;
		case 'h': fputs(apply_usage, stdout); cli_recipe_help(stdout); fputs(apply_usage_tail, stdout); return CLI_OK;
		default: return cli_usage_error("apply", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("apply", "expects one MODEL");
	if (!out_path)
		return cli_usage_error("apply", "--out FILE is required");
	if (threads)
		sl_kernels_set_threads((int)threads);
	sl_error err = {0};
	char *text = NULL;
	size_t len = 0;
	if (text_path && sl_read_file(text_path, (size_t)1 << 30, &text, &len, &err))
		return cli_error(&err);
	int rc = CLI_FAIL;
	sl_model *base = cli_load_model(argv[optind], tok), *m = NULL;
	sl_recipe *r = base ? cli_recipe_load("apply", &ro, base) : NULL;
	sl_apply_report rep = {0};
	if (!r || !(m = cli_apply(base, r, false, &rep)))
		goto done;
	cli_bar bar;
	cli_bar_init(&bar, "export");
	sl_status st = sl_export_gguf(m, r, out_path, &bar.p, &err);
	cli_bar_done(&bar);
	if (st) {
		cli_error(&err);
		goto done;
	}
	sl_eval_result ev;
	if (text) {
		cli_bar_init(&bar, "eval");
		sl_eval_opts eo = {.n_ctx = (int)ctx, .n_chunks = (int)chunks, .progress = &bar.p};
		st = sl_eval_text(m, base, text, len, &eo, &ev, &err);
		cli_bar_done(&bar);
		if (st) {
			cli_error(&err);
			goto done;
		}
	}
	double bytes = (double)sl_model_bytes(m), params = (double)sl_model_n_params(m);
	/* llama.cpp has no factored layer: the file holds the products for it,
	 * and the factors (embedded) for slimlab. */
	int factored = 0;
	for (int i = 0; i < m->n_tensors; i++)
		factored += m->tensors[i]->lr_a != NULL;
	struct stat sb;
	double file_bytes = stat(out_path, &sb) ? 0 : (double)sb.st_size;
	if (json) {
		cJSON *o = cli_apply_json(&rep, r, bytes, params);
		cJSON_AddStringToObject(o, "model", argv[optind]);
		cJSON_AddStringToObject(o, "out", out_path);
		cJSON_AddNumberToObject(o, "file_bytes", file_bytes);
		cJSON_AddNumberToObject(o, "factored", factored);
		if (text)
			cJSON_AddItemToObject(o, "eval", cli_eval_json(&ev, text_path));
		cli_print_json(o);
	} else {
		cli_print_apply(&rep, r, bytes, params);
		char fb[32];
		sl_fmt_bytes(file_bytes, fb, sizeof fb);
		printf("written      %s (%s)\n", out_path, fb);
		if (factored)
			printf("low rank     llama.cpp has no factored layer: for it the file holds the %d factored weights as\n"
			       "             their products, so there it saves nothing on them; slimlab reloads the factors\n"
			       "             (embedded beside them) and computes with %s\n",
			       factored, (sl_fmt_bytes(bytes, fb, sizeof fb), fb));
		if (text)
			cli_print_eval(&ev);
	}
	rc = CLI_OK;
done:
	sl_apply_report_free(&rep);
	sl_recipe_free(r);
	sl_model_free(m);
	sl_model_free(base);
	free(text);
	return rc;
}
