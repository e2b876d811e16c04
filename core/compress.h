/* Applying a recipe: calibration statistics, the stages that run each
 * module's methods (the method registry: core/methods/), and the report
 * of what it cost and saved. Export to GGUF lives here too. */
#ifndef SL_COMPRESS_H
#define SL_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "progress.h"
#include "recipe.h"

/* Activation statistics of one module input, gathered over calibration
 * text: per input channel sums of squares and of |x| and max |x|; the
 * Hessian H = X^T X / n_tokens when a method needs it. */
typedef struct {
	int n;                /* input width */
	long long n_tokens;
	double *sum_sq;       /* [n] */
	double *sum_abs;      /* [n] */
	float *abs_max;       /* [n] */
	float *hessian;       /* [n * n] or NULL */
} sl_act_stats;

/* Statistics for every module input of a model over one calibration text,
 * gathered once and cached on disk keyed by the model's tensors, the text,
 * the token count, window and seed. */
typedef struct sl_calib sl_calib;

typedef struct {
	const char *text_path;
	int tokens;           /* tokens to use (default 8192) */
	int ctx;              /* window (default 256) */
	uint64_t seed;
	bool hessians;        /* gather X^T X too */
	const char *cache_dir;/* NULL = $XDG_CACHE_HOME/slimlab, "" = no cache */
	const sl_progress *progress;
} sl_calib_opts;

sl_status sl_calib_gather(const sl_model *m, const sl_calib_opts *o, sl_calib **out, sl_error *err);
/* A 64-bit hash of n bytes, continuing from h (cache keys and checksums). */
uint64_t sl_hash64(const void *data, size_t n, uint64_t h);
/* Hash of every tensor's name, type, shape and bytes. */
uint64_t sl_model_hash(const sl_model *m);
void sl_calib_free(sl_calib *c);
/* The statistics of the input of module mod (NULL when not gathered:
 * the token embedding has no input). */
const sl_act_stats *sl_calib_stats(const sl_calib *c, const sl_module *mod);
/* Block influence of block layer: the mean over calibration tokens of
 * 1 - cos(h_in, h_out) of the residual stream around it (Men et al.,
 * ShortGPT 2024); a block that barely turns the stream matters little. */
double sl_calib_block_influence(const sl_calib *c, int layer);
/* Whether c was gathered on exactly these weights, with Hessians if asked. */
bool sl_calib_matches(const sl_calib *c, const sl_model *m, bool hessians);

/* What applying a recipe did to one module. */
typedef struct {
	char module[SL_NAME_MAX];
	const sl_format *asked;   /* NULL when the module was left as it was */
	const sl_format *used;    /* differs from asked when it fell back */
	char method[16];          /* what was done: a quantization method, a pruning criterion,
	                           * a structured pattern, or "-" */
	double sparsity;          /* measured: 1 - nonzero weights left / weights the base had
	                           * (structured removal and zeros alike) */
	double bytes_before, bytes_after;
	double rel_error;         /* ||W - W'||_F / ||W||_F of the compression step, W as it entered
	                           * it (after structured pruning and any input scaling) */
	double seconds;
	char note[160];           /* why a method or format was not the one asked for, and what was done */
} sl_module_report;

typedef struct {
	sl_module_report *mods;
	int n_mods;
	double bytes_before, bytes_after, params, bpw;
	int n_fallbacks;
	double seconds;
} sl_apply_report;

typedef struct {
	bool simulate;            /* store dequantized F32 (fake quantization) instead of packed */
	bool keep_packed;         /* simulating, hold packed weights marked simulated instead (sl_tensor:
	                           * the same figures; F32 only where input scales are folded in) */
	const sl_calib *calib;    /* statistics to use (else gathered as the recipe says) */
	const sl_progress *progress;
} sl_apply_opts;

/* A new model: base compressed as the recipe says. base is not changed:
 * the new model borrows the tensors it leaves as they were (sl_model_borrow)
 * and keeps base alive until it is freed itself; base must not be changed
 * while it does.
 * The recipe is checked first (sl_recipe_check) and refused with its first
 * problem's JSON path. Then: calibration if any plan needs it (opts->calib
 * when it was gathered on base, with Hessians where needed), structured
 * pruning (and calibration again on the shrunk model when later methods
 * need statistics), input scales folded into the operations
 * before each input, and every module pruned and quantized on the kernel
 * threads. The same recipe and base give the same bytes. */
sl_status sl_recipe_apply(const sl_model *base, const sl_recipe *r, const sl_apply_opts *o, sl_model **out,
                          sl_apply_report *rep, sl_error *err);
void sl_apply_report_free(sl_apply_report *rep);
/* What applying r to base costs, roughly, in tokens of base's forward pass
 * (calibration's tokens, twice over where Hessians are gathered, and the
 * rounding itself): for progress bars that weigh stages by their work. */
double sl_recipe_apply_cost(const sl_model *base, const sl_recipe *r);

/* Compresses one module's weights as plan says, into out (an owned tensor
 * named like the module's), leaving the model untouched: what sensitivity
 * sweeps call for each cell, from several threads at once (calib is only
 * read). Packed, the bytes are those sl_recipe_apply stores for a plan
 * without input scales; those need the previous operation, so alone they
 * are simulated (simulate: Q(W diag(s)) diag(s)^-1 in F32) or, packed,
 * only the per-matrix hooks run. Structured patterns change several
 * tensors and are refused (SL_ERR_UNSUPPORTED). */
sl_status sl_compress_module(const sl_model *m, const sl_module *mod, const sl_module_plan *plan,
                             const sl_calib *calib, bool simulate, sl_tensor *out, sl_module_report *rep,
                             sl_error *err);

/* Writes m as GGUF that llama.cpp loads: real ggml block types where the
 * weights are in one, otherwise the smallest float type that holds them
 * exactly; the recipe (if any) is recorded in the metadata. Atomic. */
sl_status sl_export_gguf(const sl_model *m, const sl_recipe *r, const char *path, const sl_progress *p,
                         sl_error *err);

#endif
