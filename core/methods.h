/* The compression methods on plain float matrices, shared by compress.c,
 * the sensitivity sweeps and the tests: rounding to a format's grid, the
 * Optimal Brain Surgeon solver behind GPTQ and SparseGPT, pruning masks,
 * AWQ and SmoothQuant scales, and structured pruning of a whole model.
 * A weight matrix W has rows (outputs) of cols (inputs) floats, row-major;
 * H is the n x n input Hessian X^T X / tokens of calibration. */
#ifndef SL_METHODS_H
#define SL_METHODS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compress.h"
#include "error.h"
#include "progress.h"

/* --- calibration (calib.c) -------------------------------------------- */

/* A 64-bit hash of n bytes, continuing from h (cache keys and checksums). */
uint64_t sl_hash64(const void *data, size_t n, uint64_t h);
/* Hash of every tensor's name, type, shape and bytes. */
uint64_t sl_model_hash(const sl_model *m);

/* --- rounding to a format's values (qgrid.c) --------------------------- */

/* How a solver rounds one column at a time: the scales of a span of
 * columns are fixed first (fit), then each value goes to the nearest value
 * those scales allow (round). */
typedef struct {
	int span; /* columns whose scales are fixed together */
	/* Fixes the scales of columns [c0, c0 + span) of every row from their
	 * current values seg[r * ld + j]. */
	void (*fit)(void *ctx, const float *seg, int ld, int c0);
	float (*round)(void *ctx, int r, int c, float v);
	void *ctx;
} sl_rounding;

/* A format's grid: the format's own quantizer chooses each span's scales
 * (so a fitted span rounds exactly as the format would), and the scales
 * are read back from the bytes it wrote. The elements that fixed each
 * scale (a sub-block's least and greatest) keep their values, so that
 * packing the result again gives the same scales. */
typedef struct sl_qgrid sl_qgrid;

/* NULL with *why set when slimlab cannot round to this type's grid. */
sl_qgrid *sl_qgrid_new(int type, int rows, int cols, const char **why);
void sl_qgrid_free(sl_qgrid *g);
/* The sl_rounding view of g (valid while g lives). */
sl_rounding sl_qgrid_rounding(sl_qgrid *g);

/* W (rows x cols) through type's quantizer and back into out (which may
 * be W): round-to-nearest as the format defines it. */
sl_status sl_roundtrip(int type, const float *W, float *out, int rows, int cols, sl_error *err);

/* --- the Optimal Brain Surgeon solver (gptq.c) ------------------------- */

typedef struct {
	const float *H;       /* n x n */
	double damp;          /* added to diag(H) as a fraction of its mean (GPTQ: 0.01) */
	int block;            /* columns per lazy batch (128) */
	bool act_order;       /* columns in order of decreasing diag(H); scales fixed up front */
	const sl_rounding *rounding; /* NULL: values are kept (pruning alone) */
	double sparsity;      /* SparseGPT: fraction of each block of columns set to zero */
	int keep_n, group_m;  /* SparseGPT N:M: keep keep_n of every group_m columns (0: unstructured) */
	const unsigned char *mask; /* rows x cols, 1 = prune: a mask chosen beforehand (magnitude,
	                            * Wanda) that the solver keeps while it rounds the rest */
	const sl_progress *progress;
} sl_obs_opts;

/* GPTQ (with rounding) and SparseGPT (with sparsity or N:M, optionally
 * rounding too; or with a given mask): replaces W by weights that minimise the output error
 * tr((W - W') H (W - W')^T) column by column, each column's error fed back
 * into the columns not yet done. Columns whose inputs were always zero
 * (diag(H) = 0) become zero. Fails with SL_ERR_ARG when H cannot be
 * factorized even after raising the damping. */
sl_status sl_obs_solve(float *W, int rows, int cols, const sl_obs_opts *o, sl_error *err);

/* The relative output error of replacing W by Wq on the calibration
 * inputs: ||(Wq - W) X^T||^2 / ||W X^T||^2, from H. */
double sl_output_error(const float *W, const float *Wq, int rows, int cols, const float *H);

/* Cholesky factor in place: A (n x n, lower triangle used) = L L^T, L
 * written to the lower triangle, upper triangle zeroed. False when A is not
 * positive definite. */
bool sl_cholesky(double *A, int n);

/* --- pruning masks (prune.c) ------------------------------------------- */

/* Zeroes the lowest-scoring weights of each row: score |W| (magnitude), or
 * |W| * ||X_j|| (Wanda, col_norm[j] = ||X_j||, NULL for magnitude).
 * keep_n/group_m > 0: N:M within each group of group_m columns; else the
 * fraction sparsity of each row. */
sl_status sl_prune_rows(float *W, int rows, int cols, const double *col_norm, double sparsity, int keep_n,
                        int group_m, sl_error *err);

/* Sorting by score, ties by index, so every selection is deterministic. */
typedef struct {
	double key;
	int idx;
} sl_scored;
void sl_sort_scored(sl_scored *s, size_t n);

/* Parses "N:M" (keep N of every M); false for anything else. */
bool sl_pattern_nm(const char *pattern, int *keep_n, int *group_m);

/* --- per-input-channel scales (awq.c, smoothquant.c) -------------------- */

/* A module reading the input being scaled, and the type it will be
 * stored in. */
typedef struct {
	const float *W;
	int rows;
	int type;
} sl_awq_member;

/* AWQ's scale search for modules sharing one input of n channels: s =
 * mean_abs^alpha / sqrt(max * min) for alpha = 0, 1/grid, ... (grid
 * points, 20 by default), keeping the alpha whose rounded, unscaled
 * weights Q(W diag(s)) diag(s)^-1 have the least output error summed over
 * the members. alpha = 0 (s = 1, plain rounding) is among the candidates,
 * so the result is never worse than rounding to nearest on H. */
sl_status sl_awq_search(const sl_awq_member *mem, int n_mem, int n, const double *mean_abs, const float *H, int grid,
                        float *s, double *best_alpha, sl_error *err);
/* AWQ's clip search: for each row and block of the format (the row for
 * per-row scales), the clipping range [r*min, r*max], r = 1, 1 - 1/grid,
 * ... down to one half, with the least output error on H; W is clipped in
 * place. Formats whose scale spans the tensor are left as they are. */
sl_status sl_awq_clip(float *W, int rows, int n, int type, const float *H, int grid, sl_error *err);

/* SmoothQuant's scales s_j = x_max_j^alpha / w_max_j^(1 - alpha). */
void sl_smoothquant_scales(const float *x_max, const float *w_max, int n, double alpha, float *s);

/* --- structured pruning (shrink.c) ------------------------------------ */

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
