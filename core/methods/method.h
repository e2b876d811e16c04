/* The compression methods: one registry entry each, in core/methods/.
 * An entry names the method, says which rule field chooses it (a
 * quantization method, a pruning criterion or a pattern), what it needs
 * from calibration, its parameters and their ranges, and the hooks
 * through which sl_recipe_apply runs it. The recipe checker, the command
 * line, the workbench's menus and completion and the sweep options all
 * list methods from here; adding a method is one file and its entry in
 * registry.c.
 *
 * Below the registry: the shared numerical pieces several methods use
 * (the Optimal Brain Surgeon solver, row pruning masks, the removal of
 * heads, channels and blocks). A weight matrix W has rows (outputs) of
 * cols (inputs) floats, row-major; H is the cols x cols input Hessian
 * X^T X / tokens of calibration. */
#ifndef SL_METHOD_H
#define SL_METHOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../compress.h"
#include "../error.h"
#include "../formats.h"
#include "../progress.h"

/* The Optimal Brain Surgeon solve (obs.c) as the per-matrix hooks set it up. */
typedef struct {
	const float *H;       /* n x n */
	double damp;          /* added to diag(H) as a fraction of its mean */
	int block;            /* columns per lazy batch (128) */
	bool act_order;       /* columns in order of decreasing diag(H); scales fixed up front */
	const sl_rounding *rounding; /* NULL: values are kept (pruning alone) */
	double sparsity;      /* fraction of each block of columns set to zero */
	int keep_n, group_m;  /* N:M: keep keep_n of every group_m columns (0: by sparsity) */
	const unsigned char *mask; /* rows x cols, 1 = prune: a mask chosen beforehand that the
	                            * solver keeps while it rounds the rest */
	const sl_progress *progress;
} sl_obs_opts;

/* --- the registry ------------------------------------------------------ */

/* Which rule field names a method (recipe keys "method", "prune", "pattern"). */
typedef enum { SL_METHOD_QUANT = 0, SL_METHOD_PRUNE = 1, SL_METHOD_PATTERN = 2, SL_METHOD_KINDS } sl_method_kind;

/* What a method needs from calibration text. */
enum { SL_NEEDS_STATS = 1u, SL_NEEDS_HESSIAN = 2u };

typedef struct sl_method sl_method;

/* One matrix as the per-module hooks see it. */
typedef struct {
	const char *name;             /* the weight tensor */
	float *W;                     /* rows x cols, changed in place */
	int rows, cols;
	int type;                     /* the storage it will be packed in */
	const sl_module_plan *plan;
	const sl_act_stats *st;       /* statistics of its input; NULL for a lookup table */
	sl_obs_opts *obs;             /* the solve that follows; prepare hooks set it up */
	bool solve;                   /* whether the solve runs */
	unsigned char **mask;         /* rows x cols, 1 = pruned; a pruning hook may set it */
	sl_qgrid **grid;              /* a grid a hook made for the solve (freed after it) */
	sl_module_report *rep;        /* notes go here (sl_method_note) */
} sl_matrix;

/* Modules that read one input, whose channels take shared scales. */
typedef struct {
	const float *W;
	int rows;
	int type;                     /* the storage each will be packed in */
	const sl_module_plan *plan;
} sl_scale_member;

typedef struct {
	const sl_scale_member *mem;
	int n_mem;
	int n;                        /* channels of the input */
	const double *mean_abs;       /* mean |x| per channel */
	const float *x_max, *w_max;   /* max |x| per channel, max |w| over the members' columns */
	const float *H;               /* n x n, or NULL */
	double chosen;                /* out: the free parameter a search settled on (NaN if none) */
} sl_scale_job;

/* Whole structures a pattern removes from the model being built. */
typedef struct {
	sl_model **m;                 /* may be replaced by a smaller model */
	const double *sparsity;       /* [layers of *m]: what the rules ask of each block (0: nothing) */
	const sl_calib *calib;        /* statistics of *m as it entered */
	int *old_layer;               /* [layers]: the base block each block of *m came from */
	double *influence;            /* [layers]: a block pattern's measure of each block */
	bool changed;
} sl_shrink_job;

struct sl_method {
	const char *name;
	sl_method_kind kind;
	unsigned needs;               /* SL_NEEDS_* */
	const sl_param_spec *params;
	int n_params;
	const char *summary;          /* one line for menus and --help */

	/* Quantization methods that scale input channels before rounding
	 * (folded into the operation before the input): the scales of one
	 * input shared by j's members. act_int8: the modules' activations are
	 * then rounded to int8 per token in the forward pass (W8A8); when
	 * members of one input ask for different scales, a W8A8 method's win. */
	sl_status (*scales)(sl_scale_job *j, float *s, sl_error *err);
	bool act_int8;
	/* Per matrix, before the solve: a pruning criterion's mask, or the
	 * solve's set-up. SL_ERR_UNSUPPORTED (with the reason in err) falls
	 * back to the kind's default method, noted in the report. */
	sl_status (*prepare)(sl_matrix *m, sl_error *err);
	/* Per matrix, after the solve and before packing. */
	sl_status (*refine)(sl_matrix *m, sl_error *err);

	/* Patterns. match: whether a pattern name is this one (N:M takes a
	 * family of names), with what it keeps of every group (0, 0 when it
	 * has no groups). units: whether the pattern removes whole structures
	 * of mod, and how many it has. shrink: removes them. */
	bool (*match)(const char *name, int *keep_n, int *group_m);
	const char *const *choices;   /* names a menu offers for a family of names (N:M), NULL-ended */
	bool (*units)(const sl_model *m, const sl_module *mod, int *units, const char **what);
	sl_status (*shrink)(sl_shrink_job *j, sl_error *err);
};

int sl_method_count(void);
const sl_method *sl_method_at(int i);
/* The method of this kind called name (patterns: any name it matches);
 * NULL when there is none. */
const sl_method *sl_method_find(sl_method_kind kind, const char *name);
/* What a rule field falls back to and defaults to: the first method of
 * the kind that needs no calibration (rounding to nearest, pruning by
 * magnitude, unstructured). */
const sl_method *sl_method_default(sl_method_kind kind);
/* The recipe key of a kind: "method", "prune", "pattern". */
const char *sl_method_kind_key(sl_method_kind kind);
/* The names of a kind, joined by sep. */
void sl_method_names(sl_method_kind kind, const char *sep, char *buf, size_t n);

/* Parameters: those of every method, and the formats' own (group). NULL
 * when no method or format takes key. */
const sl_param_spec *sl_param_find(const char *key);
int sl_param_count(void);
const sl_param_spec *sl_param_at(int i);
/* A plan's value for a parameter, or the spec's default (common.c). */
double sl_plan_value(const sl_module_plan *p, const sl_param_spec *spec);

/* What a plan needs of calibration (SL_NEEDS_*), over its format's
 * method, pruning criterion and pattern. */
unsigned sl_plan_needs(const sl_module_plan *p);
/* Whether the plan prunes element by element (a sparsity without a
 * structured pattern), and whether it removes whole structures. */
bool sl_plan_prunes(const sl_module_plan *p);
bool sl_plan_structured(const sl_module_plan *p);

/* Appends to a report's note, "; " between entries (common.c). */
void sl_method_note(sl_module_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- the Optimal Brain Surgeon solver (obs.c) ---------------------------- */

/* Replaces W by weights that minimise the output error
 * tr((W - W') H (W - W')^T) column by column, each column's error fed
 * back into the columns not yet done: rounding to a grid (o->rounding),
 * pruning a fraction of each block of columns or N:M (o->sparsity,
 * o->keep_n), keeping a mask chosen beforehand (o->mask), or several at
 * once. Columns whose inputs were always zero (diag(H) = 0) become zero.
 * Fails with SL_ERR_ARG when H cannot be factorized even after raising
 * the damping. */
sl_status sl_obs_solve(float *W, int rows, int cols, const sl_obs_opts *o, sl_error *err);
/* The solve's settings a rule can give (damp, block, act_order), for the
 * entries of methods that run it, and taking them from a plan. */
#define SL_OBS_PARAMS 3
extern const sl_param_spec sl_obs_params[SL_OBS_PARAMS];
void sl_obs_settings(sl_obs_opts *o, const sl_module_plan *p);

/* The relative output error of replacing W by Wq on the calibration
 * inputs: ||(Wq - W) X^T||^2 / ||W X^T||^2, from H. */
double sl_output_error(const float *W, const float *Wq, int rows, int cols, const float *H);

/* Cholesky factor in place: A (n x n, lower triangle used) = L L^T, L
 * written to the lower triangle, upper triangle zeroed. False when A is not
 * positive definite. */
bool sl_cholesky(double *A, int n);

/* --- pruning masks (prune.c) --------------------------------------------- */

/* Zeroes the lowest-scoring weights of each row: score |W|, or |W| *
 * col_norm[j] (col_norm NULL: |W| alone). keep_n/group_m > 0: N:M within
 * each group of group_m columns; else the fraction sparsity of each row. */
sl_status sl_prune_rows(float *W, int rows, int cols, const double *col_norm, double sparsity, int keep_n,
                        int group_m, sl_error *err);
/* The mask of the zeros of W after sl_prune_rows, malloc'ed (rows x cols). */
unsigned char *sl_zero_mask(const float *W, size_t n);

/* Sorting by score, ties by index, so every selection is deterministic. */
typedef struct {
	double key;
	int idx;
} sl_scored;
void sl_sort_scored(sl_scored *s, size_t n);

/* Parses "N:M" (keep N of every M, N < M <= 64); false for anything else. */
bool sl_pattern_nm(const char *pattern, int *keep_n, int *group_m);

/* --- structured removal (shrink.c) ---------------------------------------- */

/* Removes about sparsity of block il's query heads, the least important
 * by output energy (att_out: statistics of attn_output's input): the same
 * number from every key/value group, or whole groups with their key/value
 * head, whichever is nearer. *removed: query heads removed. */
sl_status sl_prune_heads(sl_model *m, int il, const sl_act_stats *att_out, double sparsity, int *removed,
                         sl_error *err);
/* Removes the fraction sparsity of block il's MLP channels with the least
 * output energy (down_in: statistics of ffn_down's input). */
sl_status sl_prune_channels(sl_model *m, int il, const sl_act_stats *down_in, double sparsity, int *removed,
                            sl_error *err);
/* Removes the blocks with drop[il] and renumbers the rest; *m is replaced
 * by a new model (the old one is freed) when any block goes. */
sl_status sl_prune_blocks(sl_model **m, const bool *drop, sl_error *err);

#endif
