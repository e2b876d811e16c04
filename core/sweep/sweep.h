/* Sensitivity sweeps: for every linear module (or every block) and every
 * chosen option (a format, a method, a sparsity and pattern), what
 * compressing that one module alone costs: KL against the base, change in
 * perplexity, top-1 agreement and the acceptance the model would have as
 * a speculative draft of the base, on calibration text. Base logits and the
 * hidden states entering each block are computed once; a cell recomputes
 * only from its block onward. Cells run in parallel and stream out as each
 * finishes; a cancelled sweep keeps its finished cells and resumes from
 * them. Cheap proxies (weight error, activation-weighted error, a Fisher
 * estimate) come with each cell, with how well each ranks the modules.
 * Then a recipe chosen under a size budget from the measured cells.
 * The engine's files: options.c (the options' syntax), sweep.c (rows,
 * caches, cells), proxies.c, io.c (JSON and CSV), autorecipe.c. */
#ifndef SL_SWEEP_H
#define SL_SWEEP_H

#include <cjson/cJSON.h>

#include <stddef.h>

#include "../compress.h"
#include "../eval.h"
#include "../progress.h"
#include "../recipe.h"

typedef struct {
	char label[48];  /* the option as it was written */
	sl_rule rule;    /* what it does to a module */
} sl_sweep_option;

/* Parses a comma-separated list of options: a format's name (rounded to
 * nearest), METHOD:FORMAT, or PRUNE-S (a pruning criterion, or "sparse"
 * for the default one, and S a pattern such as 2:4 or a fraction such as
 * 50%). Methods and formats are the registries'. */
sl_status sl_sweep_parse_options(const char *spec, sl_sweep_option **opts, int *n, sl_error *err);
/* The options a sweep takes when none are named (the formats of the
 * registry's ladder, comma-separated), and the options' syntax in a
 * sentence with the registries' names, for help texts. */
void sl_sweep_default_options(char *buf, size_t n);
void sl_sweep_options_help(char *buf, size_t n);

typedef enum { SL_SWEEP_MODULES = 0, SL_SWEEP_BLOCKS = 1 } sl_sweep_unit;

enum { SL_PROXY_WEIGHT = 0, SL_PROXY_ACT, SL_PROXY_FISHER, SL_PROXY_COUNT };

typedef struct {
	bool done;
	double kl, kl_se, dppl, top1, ppl;
	double acceptance;            /* mean sum min(p, q) against the base: sampled speculative acceptance */
	double bytes;                 /* bytes of the row's weights under the option */
	double bytes_before;
	double proxy[SL_PROXY_COUNT]; /* NaN where not computed */
	double seconds;
	char note[96];                /* a fallback, or why the cell failed */
	bool failed;
} sl_sweep_cell;

typedef struct {
	const char *text_path;  /* calibration text */
	int ctx;                /* window length (default 128) */
	int windows;            /* windows scored (default 8) */
	sl_sweep_unit unit;
	/* Calibration statistics for methods and proxies: gathered from the
	 * same text with these settings (cached on disk), unless calib is given. */
	int calib_tokens;       /* default 4096 */
	uint64_t seed;
	const sl_calib *calib;
	/* The Fisher proxy needs gradients: the mean over windows of each
	 * weight's squared gradient of the window's loss (where its diagonal,
	 * one matrix's gradient and one matrix in F32 fit in fisher_max_bytes,
	 * default 2 GiB). */
	bool no_fisher;
	double fisher_max_bytes;
	const sl_progress *progress;
} sl_sweep_opts;

typedef struct sl_sweep sl_sweep;

/* Prepares a sweep: tokenizes the text, runs the base once and caches its
 * logits and the hidden states entering every block. */
sl_status sl_sweep_new(const sl_model *m, const sl_sweep_option *opts, int n_opts, const sl_sweep_opts *o,
                       sl_sweep **out, sl_error *err);
void sl_sweep_free(sl_sweep *sw);

int sl_sweep_rows(const sl_sweep *sw);
int sl_sweep_cols(const sl_sweep *sw);
const char *sl_sweep_row_name(const sl_sweep *sw, int row);
int sl_sweep_row_block(const sl_sweep *sw, int row);       /* -1 for token_embd and output */
double sl_sweep_row_params(const sl_sweep *sw, int row);
const sl_sweep_option *sl_sweep_col(const sl_sweep *sw, int col);
const sl_sweep_cell *sl_sweep_cell_at(const sl_sweep *sw, int row, int col);
int sl_sweep_done(const sl_sweep *sw);
double sl_sweep_base_ppl(const sl_sweep *sw);
/* The model swept, and the windows each cell is scored on. */
const sl_model *sl_sweep_model(const sl_sweep *sw);
int sl_sweep_windows(const sl_sweep *sw);
int sl_sweep_ctx(const sl_sweep *sw);
/* Why the Fisher proxy is missing ("" when it is there). */
const char *sl_sweep_fisher_note(const sl_sweep *sw);

/* Called, one call at a time, as each cell finishes (from worker threads). */
typedef void (*sl_sweep_cell_fn)(void *ctx, int row, int col, const sl_sweep_cell *cell);

/* Measures every cell not yet done. Cancelling keeps what finished. */
sl_status sl_sweep_run(sl_sweep *sw, sl_sweep_cell_fn on_cell, void *ctx, const sl_progress *p, sl_error *err);

/* The rule that gives row (a module, or a block) the option of col, and
 * a recipe of that one rule with the sweep's calibration settings: what a
 * cell measures, as a recipe applies it (NULL when out of memory). */
sl_rule sl_sweep_cell_rule(const sl_sweep *sw, int row, int col);
sl_recipe *sl_sweep_cell_recipe(const sl_sweep *sw, int row, int col);

/* Measures one cell now (already done or not). */
sl_status sl_sweep_measure(sl_sweep *sw, int row, int col, sl_error *err);

/* Spearman's rank correlation between a proxy and the measured KL over the
 * done cells of one option (col) or of all (col = -1); NaN with fewer than
 * three cells. */
double sl_sweep_spearman(const sl_sweep *sw, int proxy, int col);

/* The sweep as JSON (settings, rows, options, every cell) and as CSV (one
 * line per cell). The JSON can be read back into a sweep with the same
 * model, options and settings, restoring its finished cells. */
cJSON *sl_sweep_to_json(const sl_sweep *sw);
char *sl_sweep_to_csv(const sl_sweep *sw);
sl_status sl_sweep_restore(sl_sweep *sw, const cJSON *saved, int *restored, sl_error *err);

/* The metrics a heatmap shows, lower is better for all: "kl", "dppl",
 * "top1" (as 1 - top-1 agreement) and "accept" (as 1 - acceptance). */
int sl_sweep_metric_count(void);
const char *sl_sweep_metric_name(int i);
/* In words, for titles: "KL divergence", "1 - acceptance as a draft". */
const char *sl_sweep_metric_title(int i);
/* The metric's index, or -1. */
int sl_sweep_metric_find(const char *name);
/* Whether rows combine in quadrature (the root of the sum of squares)
 * rather than by their sum, in a whole recipe's prediction. */
bool sl_sweep_metric_quadrature(int i);
/* A metric of a cell, as the heatmap shows it. NaN when not done. */
double sl_sweep_metric(const sl_sweep_cell *c, const char *metric);

/* What the sweep predicts for a whole recipe: the metric of each row the
 * recipe changes, taken from the cell whose option gives the row's modules
 * the plans the recipe gives them, summed (kl, dppl: as the automatic
 * recipe's predicted KL) or in quadrature (top1, accept). 0 when the
 * recipe changes no swept row; NaN when a changed row has no such measured
 * cell. For "accept", 1 minus it is the predicted acceptance. */
double sl_sweep_predict(const sl_sweep *sw, const sl_recipe *r, const char *metric);

typedef enum { SL_BUDGET_BPW = 0, SL_BUDGET_BYTES, SL_BUDGET_SPARSITY } sl_budget_kind;

/* Parses "4.5bpw", "3.2MB", "800KB", "1234567B", "50%" / "0.5sparsity". */
sl_status sl_budget_parse(const char *s, sl_budget_kind *kind, double *value, sl_error *err);

typedef struct {
	double predicted_kl;   /* the sum of the chosen cells' KL */
	double bytes, bpw, sparsity;
	int *choice;           /* per row: option index, or -1 to leave as it is */
	int n_rows;
} sl_autorecipe_result;

/* One option per row (or none) minimizing the summed measured KL under the
 * budget: a Lagrangian search over the multiple-choice knapsack, then a
 * greedy use of what budget is left. Every row's cells must be done. The
 * recipe gets one rule per row and the sweep's calibration settings. */
sl_status sl_autorecipe(const sl_sweep *sw, sl_budget_kind kind, double budget, sl_recipe **out,
                        sl_autorecipe_result *res, sl_error *err);
void sl_autorecipe_result_free(sl_autorecipe_result *res);

#endif
