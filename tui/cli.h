/* The command-line subcommands (slimlab info, eval, generate, tokenize,
 * ...) and the helpers they share: model loading with messages, a
 * progress bar on stderr, number formatting. */
#ifndef SL_CLI_H
#define SL_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "core/model.h"
#include "core/progress.h"

int sl_cmd_info(int argc, char **argv);
int sl_cmd_eval(int argc, char **argv);
int sl_cmd_generate(int argc, char **argv);
int sl_cmd_tokenize(int argc, char **argv);
int sl_cmd_recipe(int argc, char **argv);
int sl_cmd_train(int argc, char **argv);

/* The model slimlab opens when none is named: the workshop model it trained
 * itself and ships (models/README.md), found from the source tree the
 * README's commands run in. */
#define SL_DEFAULT_MODEL "models/workshop.gguf"

/* Exit codes: 0 success, 1 failure, 2 bad usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "slimlab: <message>" to stderr and returns CLI_FAIL. */
int cli_error(const sl_error *err);
/* Prints usage text for a bad option and returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Loads a model, printing the error; NULL on failure. */
sl_model *cli_load_model(const char *path, const char *tokenizer_path);

/* A progress bar on stderr when stderr is a terminal, silent otherwise. */
typedef struct {
	sl_progress p;
	const char *label;
	bool tty;
	int last_pct;
} cli_bar;
void cli_bar_init(cli_bar *b, const char *label);
void cli_bar_done(cli_bar *b);

/* "1.23 MB", "260.1K" */
void cli_fmt_bytes(double bytes, char *buf, size_t n);
void cli_fmt_count(double n, char *buf, size_t len);

/* Parses a number option; prints the problem and returns false if bad. */
bool cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
bool cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

#endif
