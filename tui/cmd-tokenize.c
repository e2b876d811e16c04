/* slimlab tokenize MODEL_OR_VOCAB --text FILE: the token ids of a file. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "core/tokenizer.h"

static const char tokenize_usage[] =
	"Usage: slimlab tokenize MODEL_OR_VOCAB --text FILE [--bos]\n"
	"Prints the token ids of FILE's whole content, space-separated, on one line.\n"
	"MODEL_OR_VOCAB is a model, a vocabulary-only GGUF, a tokenizer.json or a\n"
	"llama2.c tokenizer.bin.\n"
	"  --text FILE   the text to encode\n"
	"  --bos         start with the BOS token\n";

int sl_cmd_tokenize(int argc, char **argv)
{
	static const struct option opts[] = {
		{"text", required_argument, 0, 'f'},
		{"bos", no_argument, 0, 'b'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *text_path = NULL;
	bool bos = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': text_path = optarg; break;
		case 'b': bos = true; break;
		case 'h': fputs(tokenize_usage, stdout); return CLI_OK;
		default: return cli_usage_error("tokenize", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("tokenize", "expects one MODEL_OR_VOCAB");
	if (!text_path)
		return cli_usage_error("tokenize", "--text FILE is required");
	sl_error err = {0};
	char *text;
	size_t len;
	if (sl_read_file(text_path, (size_t)1 << 30, &text, &len, &err))
		return cli_error(&err);
	/* A vocabulary file is read on its own; a model brings its tokenizer. */
	sl_tokenizer *tok = NULL;
	sl_model *m = NULL;
	sl_error tok_err = {0};
	if (sl_tok_load_file(argv[optind], &tok, &tok_err)) {
		if (!(m = cli_load_model(argv[optind], NULL))) {
			fprintf(stderr, "slimlab: (as a vocabulary: %s)\n", tok_err.msg);
			free(text);
			return CLI_FAIL;
		}
		tok = sl_tok_ref(m->tok);
	}
	int32_t *ids = NULL;
	size_t n = 0;
	sl_status st = sl_tok_encode(tok, text, len, bos, &ids, &n, &err);
	if (!st) {
		for (size_t i = 0; i < n; i++)
			printf(i ? " %d" : "%d", ids[i]);
		putchar('\n');
	}
	free(ids);
	free(text);
	sl_tok_free(tok);
	sl_model_free(m);
	return st ? cli_error(&err) : CLI_OK;
}
