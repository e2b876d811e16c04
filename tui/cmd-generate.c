/* slimlab generate MODEL: continue a prompt, greedily or by sampling. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/eval.h"
#include "core/tokenizer.h"

static const char generate_usage[] =
	"Usage: slimlab generate MODEL [-p PROMPT] [-n N] [--temp T] [--top-p P] [--top-k K] [--seed S]\n"
	"Continues PROMPT (default: empty, start of a text) with up to N tokens.\n"
	"  -p, --prompt TEXT   text to continue\n"
	"  -n, --tokens N      tokens to generate (default 128)\n"
	"  --temp T            temperature; 0 picks the most likely token (default 0.8)\n"
	"  --top-p P           sample from the smallest set of tokens holding P of the mass (default 0.9)\n"
	"  --top-k K           sample from the K most likely tokens (default: off)\n"
	"  --seed S            random seed, for repeatable runs (default: from the clock)\n"
	"  --ids               print token ids (space-separated) instead of text\n"
	"  --tokenizer FILE    llama2.c tokenizer.bin\n"
	"  --threads N         CPU threads (default: one per core)\n";

typedef struct {
	bool ids;
	bool first;
} gen_out;

static bool print_token(void *ctx, int32_t id, const char *text, size_t len)
{
	gen_out *o = ctx;
	if (o->ids) {
		printf(o->first ? "%d" : " %d", id);
	} else {
		/* Pass printable bytes and whitespace; drop lone control bytes. */
		for (size_t i = 0; i < len; i++) {
			unsigned char b = (unsigned char)text[i];
			if (b >= 0x20 || b == '\n' || b == '\t' || b == '\r')
				putchar(b);
		}
	}
	o->first = false;
	fflush(stdout);
	return true;
}

int sl_cmd_generate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"prompt", required_argument, 0, 'p'},
		{"tokens", required_argument, 0, 'n'},
		{"temp", required_argument, 0, 'T'},
		{"top-p", required_argument, 0, 'P'},
		{"top-k", required_argument, 0, 'K'},
		{"seed", required_argument, 0, 's'},
		{"ids", no_argument, 0, 'i'},
		{"tokenizer", required_argument, 0, 'z'},
		{"threads", required_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *prompt = "", *tok = NULL;
	long n = 128, top_k = 0, seed = -1, threads = 0;
	double temp = 0.8, top_p = 0.9;
	gen_out out = {false, true};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:n:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': prompt = optarg; break;
		case 'n': if (!cli_parse_int("generate", "-n", optarg, 0, 1 << 20, &n)) return CLI_USAGE; break;
		case 'T': if (!cli_parse_float("generate", "--temp", optarg, 0, 100, &temp)) return CLI_USAGE; break;
		case 'P': if (!cli_parse_float("generate", "--top-p", optarg, 0, 1, &top_p)) return CLI_USAGE; break;
		case 'K': if (!cli_parse_int("generate", "--top-k", optarg, 0, 1 << 24, &top_k)) return CLI_USAGE; break;
		case 's': if (!cli_parse_int("generate", "--seed", optarg, 0, 0x7fffffffL, &seed)) return CLI_USAGE; break;
		case 'i': out.ids = true; break;
		case 'z': tok = optarg; break;
		case 'j': if (!cli_parse_int("generate", "--threads", optarg, 1, 256, &threads)) return CLI_USAGE; break;
		case 'h': fputs(generate_usage, stdout); return CLI_OK;
		default: return cli_usage_error("generate", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("generate", "expects one MODEL");
	if (threads)
		sl_kernels_set_threads((int)threads);
	sl_model *m = cli_load_model(argv[optind], tok);
	if (!m)
		return CLI_FAIL;
	sl_sampler smp;
	sl_sampler_init(&smp, (float)temp, (float)top_p, (int)top_k,
	                seed >= 0 ? (uint64_t)seed : (uint64_t)time(NULL));
	if (!out.ids)
		fputs(prompt, stdout);
	sl_error err = {0};
	cli_bar bar; /* no bar for generation (the text is the progress), but Ctrl-C stops it */
	cli_bar_init(&bar, "generate");
	bar.tty = false;
	sl_status st = sl_generate(m, prompt, (int)n, &smp, print_token, &out, &bar.p, &err);
	cli_bar_done(&bar);
	putchar('\n');
	sl_model_free(m);
	return st ? cli_error(&err) : CLI_OK;
}
