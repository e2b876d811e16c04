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
 * heads, channels and blocks, low-rank factorization). A weight matrix W has rows (outputs) of
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

/* Matrices a low-rank method factors: one weight, or the same module of
 * several blocks sharing one basis, stacked. */
typedef struct {
	const char *name;             /* the (first) weight, for messages */
	int n;                        /* matrices stacked (1 unless the method shares) */
	const float *W;               /* (n * rows) x cols */
	int rows, cols, rank;
	const sl_act_stats *const *st;/* [n]: statistics of each one's input; entries NULL when absent */
	const sl_module_plan *plan;
	float *A;                     /* out: (n * rows) x rank, each matrix's coefficients in turn */
	float *B;                     /* out: rank x cols, the basis */
} sl_factor_job;

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
	const sl_card *card;          /* what it is, for the workbench's ? and Help (in the method's file) */

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

	/* Low rank: the weight becomes two factors A B (the rule's format, if
	 * any, holds both), through the rank the plan's rank or keep gives.
	 * shares: the same module of consecutive blocks shares one basis B
	 * (sl_lowrank_layout says which). option_key: the parameter a sweep
	 * option's number sets ("NAME-0.6"). */
	sl_status (*factor)(sl_factor_job *j, sl_error *err);
	bool shares;
	const char *option_key;

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
/* What m falls back to when its needs are not met: the kind's default,
 * or for a low-rank method the first low-rank method needing nothing. */
const sl_method *sl_method_fallback(const sl_method *m);
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

/* The method a plan's method field names, where it applies: with a
 * format, or a low-rank method (which stores its factors in the weights'
 * own type when no format is given); NULL otherwise. And that method when
 * it factors. */
const sl_method *sl_plan_method(const sl_module_plan *p);
const sl_method *sl_plan_factors(const sl_module_plan *p);

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

/* --- low rank (lowrank.c) --------------------------------------------------- */

/* The parameters every low-rank method takes (an absolute rank, or keep,
 * the share of the parameters kept), then the Hessian's damping of the
 * whitening methods and the group size of the sharing ones (0: the
 * blocks one rule gives). A method with more lists SL_LOWRANK_PARAMS
 * first in its own array. */
#define SL_LOWRANK_PARAMS                                                                         \
	{"rank", 1, 1 << 20, 0, true, false, "rank kept (instead of keep)", false},                 \
	{"keep", 0, 1, 0.5, false, false, "share of the parameters kept", true}
enum { SL_LOWRANK_RANK, SL_LOWRANK_KEEP, SL_LOWRANK_DAMP, SL_LOWRANK_BLOCKS, SL_LOWRANK_N_PARAMS };
extern const sl_param_spec sl_lowrank_params[SL_LOWRANK_N_PARAMS];

/* The rank a plan gives rows x cols (the rows of every matrix sharing a
 * basis, stacked): its rank parameter, else floor(keep * rows * cols /
 * (rows + cols)), the most whose two factors hold no more than keep of
 * the parameters. May be 0 or above min(rows, cols): callers check. */
int sl_lowrank_rank(const sl_module_plan *p, int64_t rows, int64_t cols);

/* How low rank falls on modules: each one's rank (0: not factored), and
 * the group of blocks sharing its basis. */
typedef struct {
	int rank;
	int lead;        /* the module (an index) whose factorization covers the group; -1: none */
	int first, last; /* blocks of the group (a module alone: its own) */
	int size;        /* modules in the group */
	bool mismatch;   /* its shape differs from the lead's: the group cannot be */
} sl_lowrank_plan;

/* The layout of mods[0..n) under plans[0..n). A group is the same module
 * kind in consecutive blocks whose plans name the same sharing method and
 * settings: those one rule gave, or, when the plan's blocks parameter is
 * set, those in one window of that many blocks (aligned at multiples of
 * it, whatever rules gave them). */
void sl_lowrank_layout(const sl_module *mods, const sl_module_plan *plans, int n, sl_lowrank_plan *out);

/* j->A and j->B from j->W through the singular value decomposition of
 * M = W T (LAPACK's sgesdd), truncated to j->rank: A = U_r S_r^1/2 and B
 * = S_r^1/2 V_r^T T^-1. T is the identity, diag(d) (d given), or the
 * lower triangular L (L given). With T = I, ||W - A B||_F^2 is the sum of
 * the discarded squared singular values (Eckart-Young); sv (may be NULL)
 * receives all min(rows, cols) singular values of M. */
sl_status sl_lowrank_factor(sl_factor_job *j, const float *d, const float *L, float *sv, sl_error *err);
/* The same through the Cholesky factor of the matrices' input Hessian
 * (their mean when several share a basis), damped by the plan's damp
 * times the mean of its diagonal (raised tenfold until LAPACK's dpotrf
 * factors it): the truncation then minimizes the output error on the
 * calibration inputs. A factor hook as it stands. */
sl_status sl_lowrank_whitened(sl_factor_job *j, sl_error *err);

#endif
