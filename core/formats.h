/* The format registry: every storage format a recipe can name, one entry
 * each (core/formats.c), with its storage type (whose kernels, layout,
 * quantizer and grid live in kernels/), bits per weight, which rows it can
 * hold and what it falls back to, whether it can hold the KV cache, how it
 * is exported, and fake quantization for training. Rounding to a format's
 * grid one value at a time, for solvers, is here too (qgrid.c). */
#ifndef SL_FORMATS_H
#define SL_FORMATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels/dtype.h"
#include "card.h"
#include "error.h"

typedef struct {
	const char *name;      /* as recipes spell it, lower case */
	int dtype;             /* the sl_dtype weights are stored in */
	int bits;              /* nominal bits of one value (16, 8, 4, ...) */
	int group;             /* elements sharing a scale (0: per row or tensor) */
	const char *family;    /* "float", "ggml", "int", "fp8", "fp4", ... */
	const char *summary;   /* one line for menus and --help */
	bool kv;               /* can hold the KV cache */
	bool example;          /* named in help texts as an example */
	bool ladder;           /* among the options a sweep takes when none are named */
	bool draft;            /* among the speculative drafts compared when none are named */
	const sl_card *card;   /* what it is, for the workbench's ? and Help (formats.c) */
} sl_format;

/* A parameter a rule can set for a method or a format, with its range. */
typedef struct {
	const char *key;       /* as a recipe's "params" object spells it */
	double lo, hi, def;
	bool integer, boolean;
	const char *what;      /* a few words for menus and errors */
	bool open_lo;          /* lo itself is outside the range: (lo, hi] */
} sl_param_spec;

int sl_format_count(void);
const sl_format *sl_format_at(int i);
/* NULL when the name is unknown. */
const sl_format *sl_format_find(const char *name);
const sl_format *sl_format_of_dtype(int dtype);
/* Names of the formats for which keep(f) holds (NULL: all), joined by sep. */
void sl_format_names(bool (*keep)(const sl_format *f), const char *sep, char *buf, size_t n);
bool sl_format_is_kv(const sl_format *f);
bool sl_format_is_example(const sl_format *f);
bool sl_format_in_ladder(const sl_format *f);
bool sl_format_is_draft(const sl_format *f);

/* The formats' own parameters (the group of group-wise formats). */
int sl_format_param_count(void);
const sl_param_spec *sl_format_param_at(int i);
/* f with another group size (NULL when f takes none, or not this one),
 * and the sizes it takes ("32, 64 or 128"; "" when none). */
const sl_format *sl_format_with_group(const sl_format *f, int group);
void sl_format_groups(const sl_format *f, char *buf, size_t n);
/* Bits per weight of a row of n elements in this format, scales included. */
double sl_format_bpw(const sl_format *f, int64_t n);
/* Whether rows of n elements fit the format's blocks. */
bool sl_format_fits(const sl_format *f, int64_t n);
/* The nearest format that can hold rows of n: f itself when it fits, else
 * one of the same family with a finer block, else the nearest by bits, and
 * f16 at worst. */
const sl_format *sl_format_fallback(const sl_format *f, int64_t n);
/* The GGUF (ggml) type an export writes for this format's values: its own
 * when it is a ggml type, a ggml type holding the same values when there
 * is one (a group-wise integer format as ggml blocks of 32), else the
 * smallest float type that holds the dequantized values of this tensor
 * exactly (checked, not assumed). */
int sl_format_export_type(const sl_format *f, const float *dequantized, int64_t n);

/* Fake quantization, for training through a format: out = the format's
 * round trip of W (rows x cols; out may be W), and inside[i] = 1 where
 * W[i] lay within its run's range, 0 where the format clipped it (so a
 * straight-through gradient passes only where inside is 1). inside may
 * be NULL. SL_ERR_ARG when rows of cols do not fit the format. */
sl_status sl_format_fake_quantize(const sl_format *f, const float *W, float *out, unsigned char *inside, int rows,
                                  int cols, sl_error *err);

/* Whether x lies within a grid's range (kind: the storage type's grid):
 * uniform levels reach half a step beyond the first and the last; a
 * minifloat saturates beyond its largest value. */
bool sl_grid_within(int kind, const sl_grid *g, float x);

/* W (rows x cols) through a storage type's quantizer and back into out
 * (which may be W): round-to-nearest as the format defines it. */
sl_status sl_roundtrip(int type, const float *W, float *out, int rows, int cols, sl_error *err);

/* --- rounding one value at a time (qgrid.c) ------------------------------ */

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

/* NULL with *why set when the type's values lie on no grid. */
sl_qgrid *sl_qgrid_new(int type, int rows, int cols, const char **why);
void sl_qgrid_free(sl_qgrid *g);
/* The sl_rounding view of g (valid while g lives). */
sl_rounding sl_qgrid_rounding(sl_qgrid *g);
/* Fixes every span's scales from W (rows x cols) at once: the grid stays
 * where training starts, as quantization-aware training keeps the scales
 * of its post-training calibration. */
void sl_qgrid_fit_all(sl_qgrid *g, const float *W);
/* W rounded onto the fixed grid into out (which may be W); inside[i] = 1
 * where the rounding follows W[i] (within its run's range, and not a value
 * the grid keeps), 0 where a straight-through gradient must stop. */
void sl_qgrid_apply(const sl_qgrid *g, const float *W, float *out, unsigned char *inside);

/* Learned steps (LSQ, Esser et al. 2020), for grids of uniform levels
 * whose every scale is fixed by its own block alone: each sub-block's step
 * d trains, its values m + d * clamp(round((w - m) / d), kmin, kmax) (the
 * offset m of formats with a minimum stays where it was fitted) and its
 * kept elements at m + d * their level. Steps are indexed row by row,
 * sub-block by sub-block; each is shared by sl_qgrid_group elements. */
bool sl_qgrid_scales_learnable(const sl_qgrid *g);
int sl_qgrid_n_scales(const sl_qgrid *g);
int sl_qgrid_group(const sl_qgrid *g);
/* The top level, LSQ's Q_P (the gradient scale is 1 / sqrt(group * kmax)). */
int sl_qgrid_kmax(const sl_qgrid *g);
void sl_qgrid_scales(const sl_qgrid *g, float *d);
/* Sets every step; the kept elements move with theirs. A step of zero
 * (a sub-block of equal weights) should stay zero. */
void sl_qgrid_set_scales(sl_qgrid *g, const float *d);
/* LSQ's backward through sl_qgrid_apply with the steps set: dd[s] +=
 * scale * sum over its sub-block of dout[i] * dq_i/dd, where dq/dd is
 * round(x) - x for x = (w - m) / d within [kmin, kmax], the level clamped
 * to where x lies beyond, and a kept element's level; inside[i] = 1 where
 * x lies within [kmin, kmax] and the element is not kept (rounding passes
 * gradients straight through, clamping does not). */
void sl_qgrid_scale_grads(const sl_qgrid *g, const float *W, const float *dout, float scale, float *dd,
                          unsigned char *inside);
/* Rounds every step as the format stores it: fits the grid again, by the
 * format's own quantizer, on W's values on the grid (into scratch, rows x
 * cols). The values the grid then gives pack exactly into it. */
void sl_qgrid_round_scales(sl_qgrid *g, const float *W, float *scratch);

#endif
