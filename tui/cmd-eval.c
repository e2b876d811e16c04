/* slimlab eval MODEL --text FILE: perplexity, and against --base the KL
 * divergence, top-1 agreement and change in perplexity; with a recipe (or
 * --format ...), of MODEL compressed by it against MODEL itself. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/eval.h"

static const char eval_usage[] =
	"Usage: slimlab eval MODEL --text FILE [--ctx N] [--chunks N] [--base BASE_MODEL] [--json]\n"
	"       slimlab eval MODEL --text FILE (--recipe FILE | --format FMT ...) [--ctx N] [--chunks N]\n"
	"Measures perplexity over FILE in windows of N tokens, scoring the second half\n"
	"of each window. With --base, also the KL divergence from BASE, the top-1\n"
	"agreement and the change in perplexity, all in one pass. With a recipe, MODEL\n"
	"is compressed by it (simulated: weights quantized, then dequantized) and\n"
	"measured against itself, with bits per weight, bytes and fallbacks.\n"
	"  --text FILE        text to score (e.g. data/eval.txt)\n"
	"  --ctx N            window length in tokens (default 512 or the model's context)\n"
	"  --chunks N         score at most N windows (default: all the text holds)\n"
	"  --base MODEL       reference model for KL, top-1, delta PPL and the acceptance this\n"
	"                     model would have as a speculative draft of BASE (sum min(p, q))\n";

static const char eval_usage_tail[] =
	"  --tokenizer FILE   llama2.c tokenizer.bin for MODEL and BASE\n"
	"  --threads N        CPU threads (default: one per core)\n"
	"  --json             print one JSON object\n";

int sl_cmd_eval(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_RECIPE_OPTIONS,
		{"text", required_argument, 0, 'f'},
		{"ctx", required_argument, 0, 'c'},
		{"chunks", required_argument, 0, 'k'},
		{"base", required_argument, 0, 'b'},
		{"tokenizer", required_argument, 0, 't'},
		{"threads", required_argument, 0, 'T'},
		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *text_path = NULL, *base_path = NULL, *tok = NULL;
	long ctx = 0, chunks = 0, threads = 0;
	bool json = false;
	cli_recipe_opts ro = {0};
	int c;
	optind = 1;
	static struct option all[64];
	cli_recipe_longopts(opts, all, 64);
	while ((c = getopt_long(argc, argv, "f:c:k:b:t:h", all, NULL)) != -1) {
		int used = cli_recipe_opt("eval", c, optarg, &ro);
		if (used < 0)
			return CLI_USAGE;
		if (used)
			continue;
		switch (c) {
		case 'f': text_path = optarg; break;
		case 'c': if (!cli_parse_int("eval", "--ctx", optarg, 4, 1 << 20, &ctx)) return CLI_USAGE; break;
		case 'k': if (!cli_parse_int("eval", "--chunks", optarg, 1, 1 << 30, &chunks)) return CLI_USAGE; break;
		case 'b': base_path = optarg; break;
		case 't': tok = optarg; break;
		case 'T': if (!cli_parse_int("eval", "--threads", optarg, 1, 256, &threads)) return CLI_USAGE; break;
		case 'j': json = true; break;
		case 'h': fputs(eval_usage, stdout); cli_recipe_help(stdout); fputs(eval_usage_tail, stdout); return CLI_OK;
		default: return cli_usage_error("eval", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("eval", "expects one MODEL");
	if (!text_path)
		return cli_usage_error("eval", "--text FILE is required");
	bool compress = cli_recipe_given(&ro);
	if (compress && base_path)
		return cli_usage_error("eval", "with a recipe the base is MODEL itself; --base does not apply");
	if (threads)
		sl_kernels_set_threads((int)threads);
	sl_error err = {0};
	char *text;
	size_t len;
	if (sl_read_file(text_path, (size_t)1 << 30, &text, &len, &err))
		return cli_error(&err);
	int rc = CLI_FAIL;
	sl_model *m = cli_load_model(argv[optind], tok), *base = NULL;
	sl_recipe *recipe = NULL;
	sl_apply_report rep = {0};
	if (!m || (base_path && !(base = cli_load_model(base_path, tok))))
		goto done;
	if (compress) {
		base = m;
		if (!(recipe = cli_recipe_load("eval", &ro, base)) || !(m = cli_apply(base, recipe, true, &rep)))
			goto done;
	}
	cli_bar bar;
	cli_bar_init(&bar, "eval");
	sl_eval_opts eo = {.n_ctx = (int)ctx, .n_chunks = (int)chunks, .progress = &bar.p};
	sl_eval_result r;
	sl_status st = sl_eval_text(m, base, text, len, &eo, &r, &err);
	cli_bar_done(&bar);
	if (st) {
		cli_error(&err);
		goto done;
	}
	double bytes = compress ? cli_packed_bytes(m, &rep) : 0, params = (double)sl_model_n_params(m);
	if (json) {
		cJSON *o = cli_eval_json(&r, text_path);
		cJSON_AddStringToObject(o, "model", argv[optind]);
		if (base_path)
			cJSON_AddStringToObject(o, "base", base_path);
		if (compress)
			cJSON_AddItemToObject(o, "compression", cli_apply_json(&rep, recipe, bytes, params));
		cli_print_json(o);
	} else {
		if (compress)
			cli_print_apply(&rep, recipe, bytes, params);
		cli_print_eval(&r);
	}
	rc = CLI_OK;
done:
	sl_apply_report_free(&rep);
	sl_recipe_free(recipe);
	if (base != m)
		sl_model_free(base);
	sl_model_free(m);
	free(text);
	return rc;
}
