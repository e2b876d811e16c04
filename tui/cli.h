/* The command-line subcommands (slimlab info, eval, generate, tokenize,
 * ...) and the helpers they share: model loading with messages, a
 * progress bar on stderr, option parsing. */
#ifndef SL_CLI_H
#define SL_CLI_H

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/compress.h"
#include "core/eval.h"
#include "core/model.h"
#include "core/progress.h"

int sl_cmd_info(int argc, char **argv);
int sl_cmd_eval(int argc, char **argv);
int sl_cmd_generate(int argc, char **argv);
int sl_cmd_tokenize(int argc, char **argv);
int sl_cmd_recipe(int argc, char **argv);
int sl_cmd_apply(int argc, char **argv);
int sl_cmd_train(int argc, char **argv);
int sl_cmd_sensitivity(int argc, char **argv);
int sl_cmd_autorecipe(int argc, char **argv);
int sl_cmd_speculate(int argc, char **argv);
int sl_cmd_heal(int argc, char **argv);
int sl_cmd_bench(int argc, char **argv);
int sl_cmd_card(int argc, char **argv);
int sl_cmd_lesson(int argc, char **argv);

/* Exit codes: 0 success, 1 failure, 2 bad usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "slimlab: <message>" to stderr and returns CLI_FAIL. */
int cli_error(const sl_error *err);
/* Prints usage text for a bad option and returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether path may be written: it does not exist, force (--force), or the
 * user says yes on a terminal; otherwise says so, and what to do instead
 * ("another --out"), on stderr. */
bool cli_may_write(const char *path, bool force, const char *instead);

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

/* --- cli-recipe.c: compression options and reports, shared by apply and eval --- */

/* A recipe file, or one uniform rule standing in for it. */
typedef struct {
	const char *recipe, *format, *method, *pattern, *prune, *calib, *sparsity; /* NULL: not given */
	struct {
		const char *key, *value;
	} params[SL_RULE_PARAMS];  /* --KEY VALUE for the methods' and formats' parameters */
	int n_params;
} cli_recipe_opts;

#define CLI_RECIPE_OPTIONS                                                                           \
	{"recipe", required_argument, 0, 'R'}, {"format", required_argument, 0, 'F'},                  \
	{"method", required_argument, 0, 'M'}, {"sparsity", required_argument, 0, 'S'},                \
	{"pattern", required_argument, 0, 'P'}, {"prune", required_argument, 0, 'U'},                  \
	{"calib", required_argument, 0, 'C'}
/* The lines of --help that describe CLI_RECIPE_OPTIONS, with the format
 * and method registries' names. */
void cli_recipe_help(FILE *out);
/* opts (ended by a zero entry) followed by --KEY VALUE for every method's
 * and format's parameter (--keep 0.6, --rank 64, --damp 0.02, ...), in
 * all (max entries, the end included): what getopt_long takes. */
#define CLI_PARAM_OPT 0x1000
const struct option *cli_recipe_longopts(const struct option *opts, struct option *all, int max);

/* Takes option c of CLI_RECIPE_OPTIONS: 1 when taken, 0 when c is not one
 * of them, -1 when its value is bad (the problem is printed). */
int cli_recipe_opt(const char *cmd, int c, const char *arg, cli_recipe_opts *o);
bool cli_recipe_given(const cli_recipe_opts *o);
/* The recipe the options name, checked against m; NULL with every
 * problem printed. */
sl_recipe *cli_recipe_load(const char *cmd, const cli_recipe_opts *o, const sl_model *m);
/* base compressed by r with a progress bar; NULL with the error printed. */
sl_model *cli_apply(const sl_model *base, const sl_recipe *r, bool simulate, sl_apply_report *rep);
/* Bytes m would take with every module packed in the format it ended up in. */
double cli_packed_bytes(const sl_model *m, const sl_apply_report *rep);
/* The report: size, bits per weight, fallbacks and notes. */
void cli_print_apply(const sl_apply_report *rep, const sl_recipe *r, double bytes, double params);
cJSON *cli_apply_json(const sl_apply_report *rep, const sl_recipe *r, double bytes, double params);
/* An evaluation's figures. */
void cli_print_eval(const sl_eval_result *r);
cJSON *cli_eval_json(const sl_eval_result *r, const char *text_path);

/* Prints a JSON object on stdout and frees it. */
struct cJSON;
void cli_print_json(struct cJSON *o);

/* Parses a number option; prints the problem and returns false if bad. */
bool cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
bool cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

#endif
