/* slimlab: the entry point. A subcommand runs headless; anything else
 * (nothing, a model, --session FILE) opens the workbench. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "core/backend.h"
#include "tui.h"

static const char main_usage[] =
	"Usage: slimlab [MODEL | --session FILE]\n"
	"       slimlab COMMAND [ARGS]\n"
	"An interactive workbench for compressing language models, and its\n"
	"command-line tools. Without a command the workbench opens (on MODEL, on\n"
	"a saved session, or on the workshop model in models/).\n"
	"\n"
	"Commands:\n"
	"  info MODEL                      architecture, tokenizer, tensors\n"
	"  eval MODEL --text FILE          perplexity; with --base: KL, top-1, delta PPL\n"
	"  generate MODEL [-p PROMPT]      continue a prompt\n"
	"  tokenize MODEL_OR_VOCAB --text FILE   token ids of a text\n"
	"  eval MODEL --text FILE --recipe R    what a recipe costs (also --format FMT)\n"
	"  apply MODEL --recipe R --out OUT.gguf  compress and export for llama.cpp\n"
	"  sensitivity MODEL --options LIST  per-module sweep: KL, delta PPL, top-1\n"
	"  autorecipe MODEL --budget B --out R.json  a recipe chosen under a size budget\n"
	"  recipe validate FILE [--model MODEL]  every problem of a recipe\n"
	"  recipe formats                  the formats a recipe can name\n"
	"  train CONFIG.json               train a model (or distill one) from a configuration\n"
	"\n"
	"Each command takes --help. See slimlab(1).\n";

typedef struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} command;

static const command commands[] = {
	{"info", sl_cmd_info},
	{"eval", sl_cmd_eval},
	{"generate", sl_cmd_generate},
	{"tokenize", sl_cmd_tokenize},
	{"recipe", sl_cmd_recipe},
	{"apply", sl_cmd_apply},
	{"train", sl_cmd_train},
	{"sensitivity", sl_cmd_sensitivity},
	{"autorecipe", sl_cmd_autorecipe},
};

int main(int argc, char **argv)
{
	if (argc < 2)
		return sl_workbench_main(argc, argv);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(main_usage, stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		char b[512];
		sl_backend_describe(b, sizeof b);
		printf("slimlab %s\n%s", PACKAGE_VERSION, b);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	return sl_workbench_main(argc, argv);
}
