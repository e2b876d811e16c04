/* slimlab: the entry point. A subcommand runs headless; nothing, a model
 * or --session FILE opens the workbench; anything else is a mistyped
 * command, answered with the nearest one. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "core/backend.h"
#include "core/fileio.h"
#include "tui.h"

static const char main_usage[] =
	"Usage: slimlab [--palette default|contrast] [MODEL | --session FILE]\n"
	"       slimlab COMMAND [ARGS]\n"
	"An interactive workbench for compressing language models, and its\n"
	"command-line tools. Without a command the workbench opens (on MODEL, on\n"
	"a saved session, or on the workshop model that ships with slimlab).\n"
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
	"  speculate TARGET --draft-format FMT  speculative decoding: acceptance, speed-up\n"
	"  recipe validate FILE [--model MODEL]  every problem of a recipe\n"
	"  recipe formats                  the formats a recipe can name\n"
	"  train CONFIG.json               train a model (or distill one) from a configuration\n"
	"  heal MODEL --recipe R --heal qad --out OUT.gguf  compress, then heal by training\n"
	"  bench MODEL [-p N] [-n N]       prompt and decoding tokens/s, as llama-bench prints them\n"
	"  card [KIND] NAME | --list       a technique's card: what, formula, what to watch, pitfall, paper\n"
	"  lesson [list | NAME]            guided lessons the workbench checks; --handout writes one as Markdown\n"
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
	{"speculate", sl_cmd_speculate},
	{"heal", sl_cmd_heal},
	{"bench", sl_cmd_bench},
	{"card", sl_cmd_card},
	{"lesson", sl_cmd_lesson},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* Whether the workbench should take arg: an option, or a model (something
 * that exists, a path, or a name with a model file's ending) even if it is
 * missing, so that the workbench says what is wrong with it. */
static bool for_workbench(const char *arg)
{
	static const char *const endings[] = {".gguf", ".bin", ".safetensors", ".json"};
	const char *dot = strrchr(arg, '.');
	struct stat st;
	if (arg[0] == '-' || strchr(arg, '/') || stat(arg, &st) == 0)
		return true;
	for (size_t i = 0; dot && i < sizeof endings / sizeof endings[0]; i++)
		if (!strcmp(dot, endings[i]))
			return true;
	return false;
}

/* Levenshtein distance: insertions, deletions and substitutions. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t nb = strlen(b), row[64];
	if (nb >= sizeof row / sizeof row[0])
		return (size_t)-1;
	for (size_t j = 0; j <= nb; j++)
		row[j] = j;
	for (size_t i = 1; a[i - 1]; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= nb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[nb];
}

/* Names the unknown command word and the nearest known one (when it is
 * within half the word's length of it), else every command. */
static int unknown_command(const char *word)
{
	size_t best = 0, dist = (size_t)-1;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		size_t d = edit_distance(word, commands[i].name);
		if (d < dist)
			dist = d, best = i;
	}
	if (dist * 2 <= strlen(word) + 1) {
		fprintf(stderr, "slimlab: '%s' is not a command; did you mean '%s'?\n", word, commands[best].name);
	} else {
		fprintf(stderr, "slimlab: '%s' is neither a command nor a model file; the commands are", word);
		for (size_t i = 0; i < N_COMMANDS; i++)
			fprintf(stderr, "%s %s", i ? "," : "", commands[i].name);
		fputc('\n', stderr);
	}
	fputs("Try 'slimlab --help'.\n", stderr);
	return CLI_USAGE;
}

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
#ifdef SL_HAVE_MPI
		printf("mpi:  built (sensitivity sweeps over mpirun's ranks)\n");
#else
		printf("mpi:  not built\n");
#endif
		/* The folder the texts and the workshop model come from. */
		char data[4096];
		if (sl_shipped_find("data/calib.txt", data, sizeof data, NULL) == SL_OK)
			printf("shipped files: %.*s\n", (int)(strlen(data) - strlen("/data/calib.txt")), data);
		else
			printf("shipped files: not found (set SLIMLAB_DATA)\n");
		return CLI_OK;
	}
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	if (!for_workbench(argv[1]))
		return unknown_command(argv[1]);
	return sl_workbench_main(argc, argv);
}
