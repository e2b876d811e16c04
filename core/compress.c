/* Applying a recipe to a model: resolve every module's plan, gather the
 * calibration statistics the plans need, remove whole structures (the
 * structured patterns' shrink), migrate input scales into the operations
 * before each module (the quantization methods' scales), then prune and
 * quantize each module, or factor it (alone, or with the same module of
 * the blocks sharing its basis) into two factors stored in the plan's
 * format (in parallel; each module's result depends on nothing but its
 * own inputs, so the bytes are the same whatever the scheduling) and
 * report what it cost and saved. Which method does what
 * is the method registry's business (core/methods/): this file runs the
 * stages and asks each plan's methods for their hooks. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "methods/method.h"

static const sl_method *quant_of(const sl_module_plan *p)
{
	return p ? sl_plan_method(p) : NULL;
}

/* Why a module has no statistics: only a lookup table comes without. */
static const char *const no_input = "a token embedding has no input to calibrate";

/* --- statistics of an input that was divided by s ---------------------- */

static void stats_release(sl_act_stats *s)
{
	free(s->sum_sq);
	free(s->sum_abs);
	free(s->abs_max);
	free(s->hessian);
	memset(s, 0, sizeof *s);
}

/* out: the statistics of x / s (s NULL: a copy of st). */
static sl_status stats_scaled(const sl_act_stats *st, const float *s, sl_act_stats *out, sl_error *err)
{
	size_t n = (size_t)st->n;
	*out = (sl_act_stats){.n = st->n, .n_tokens = st->n_tokens};
	out->sum_sq = sl_malloc_array(n, sizeof *out->sum_sq);
	out->sum_abs = sl_malloc_array(n, sizeof *out->sum_abs);
	out->abs_max = sl_malloc_array(n, sizeof *out->abs_max);
	if (st->hessian)
		out->hessian = sl_malloc_array(n * n, sizeof *out->hessian);
	if (!out->sum_sq || !out->sum_abs || !out->abs_max || (st->hessian && !out->hessian)) {
		stats_release(out);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the statistics of a %zu-wide input", n);
	}
	for (size_t j = 0; j < n; j++) {
		double sj = s ? s[j] : 1.0;
		out->sum_sq[j] = st->sum_sq[j] / (sj * sj);
		out->sum_abs[j] = st->sum_abs[j] / sj;
		out->abs_max[j] = (float)(st->abs_max[j] / sj);
	}
	for (size_t a = 0; st->hessian && a < n; a++)
		for (size_t b = 0; b < n; b++)
			out->hessian[a * n + b] = (float)(st->hessian[a * n + b] / ((s ? s[a] : 1.0) * (s ? s[b] : 1.0)));
	return SL_OK;
}

/* Query channel c of attn_output's input reads key/value channel: */
static int kv_channel(const sl_layer *L, int hd, int c)
{
	int g = L->n_heads / L->n_kv_heads;
	return (c / hd) / g * hd + c % hd;
}

/* The method whose scales an input shared by mem[0..n_mem) takes: one
 * that rounds activations (W8A8) if a member asks for one, else the first
 * asked for; NULL when no member's method scales. */
static const sl_method *scale_method(const sl_scale_member *mem, int n_mem)
{
	const sl_method *pick = NULL;
	for (int k = 0; k < n_mem; k++) {
		const sl_method *m = quant_of(mem[k].plan);
		if (m && m->scales && (!pick || (m->act_int8 && !pick->act_int8)))
			pick = m;
	}
	return pick;
}

/* The scales of one input of n channels shared by mem[0..n_mem), from the
 * method scale_method picks. tie (attn_output's input under grouped-query
 * attention): channels of one key/value group share a v row, so they get
 * one scale, from their pooled statistics. */
static sl_status input_scales(const sl_scale_member *mem, int n_mem, const sl_act_stats *st, const sl_layer *tie,
                              int hd, float *s, sl_error *err)
{
	const int n = st->n;
	double *x = sl_calloc((size_t)n, sizeof *x);
	float *xm = sl_calloc((size_t)n, sizeof *xm), *wm = sl_calloc((size_t)n, sizeof *wm);
	sl_status status = SL_OK;
	if (!x || !xm || !wm) {
		status = sl_errorf(err, SL_ERR_NOMEM, "out of memory for the scales of a %d-wide input", n);
		goto done;
	}
	for (int c = 0; c < n; c++) {
		int t = tie ? kv_channel(tie, hd, c) : c;
		x[t] += st->sum_abs[c] / (double)st->n_tokens;
		xm[t] = fmaxf(xm[t], st->abs_max[c]);
		for (int k = 0; k < n_mem; k++)
			for (int r = 0; r < mem[k].rows; r++)
				wm[t] = fmaxf(wm[t], fabsf(mem[k].W[(size_t)r * n + c]));
	}
	/* Backwards, so that each pooled entry is read before it is spread. */
	for (int c = n - 1; tie && c >= 0; c--) {
		int t = kv_channel(tie, hd, c);
		x[c] = x[t] / (tie->n_heads / tie->n_kv_heads);
		xm[c] = xm[t];
		wm[c] = wm[t];
	}
	sl_scale_job job = {mem, n_mem, n, x, xm, wm, st->hessian, NAN};
	status = scale_method(mem, n_mem)->scales(&job, s, err);
done:
	free(x);
	free(xm);
	free(wm);
	return status;
}

/* --- one matrix ------------------------------------------------------------ */

typedef struct {
	const char *name;        /* the weight tensor's name */
	const float *W;          /* rows x cols, as they enter (after any input scaling) */
	int rows, cols;
	const sl_module_plan *plan;
	const sl_act_stats *st;  /* statistics of the input as W sees it, or NULL */
	int keep_type;           /* storage for weights the plan prunes but does not quantize */
	bool simulate;
	bool keep_packed;        /* simulating: packed and marked simulated where no scale needs F32 */
	const float *unscale;    /* columns are divided by this before storing (input scales on one module) */
	const sl_progress *progress;
} matrix_job;

/* The storage the plan asks for, or its fallback when it cannot hold the
 * rows (noted in rep). */
static const sl_format *format_for(const sl_module_plan *p, int cols, sl_module_report *rep)
{
	const sl_format *f = p->format;
	rep->asked = rep->used = f;
	if (!f || sl_format_fits(f, cols))
		return f;
	rep->used = sl_format_fallback(f, cols);
	sl_method_note(rep, "%s cannot hold rows of %d; %s used", f->name, cols, rep->used->name);
	return rep->used;
}

/* Whether what m needs of calibration is at hand, with the reason when not. */
static bool needs_met(const sl_method *m, const sl_act_stats *st, const char **why)
{
	*why = no_input;
	return !((m->needs & SL_NEEDS_STATS) && !st) && !((m->needs & SL_NEEDS_HESSIAN) && !(st && st->hessian));
}

/* A method of kind whose needs are met, else the kind's default, noted. */
static const sl_method *usable(sl_method_kind kind, const char *name, const sl_act_stats *st, sl_module_report *rep)
{
	const sl_method *m = sl_method_find(kind, name);
	const char *why;
	if (m && needs_met(m, st, &why))
		return m;
	const sl_method *d = m ? sl_method_fallback(m) : sl_method_default(kind);
	sl_method_note(rep, "%s: %s; %s used", name, why, d->name);
	return d;
}

/* Runs a prepare hook; one that cannot serve this matrix falls back to the
 * default of its kind (which needs no preparing), noted. */
static sl_status prepare(const sl_method **m, sl_matrix *mx, sl_error *err)
{
	if (!(*m)->prepare)
		return SL_OK;
	sl_error why = {0};
	sl_status st = (*m)->prepare(mx, &why);
	if (st == SL_ERR_UNSUPPORTED) {
		const sl_method *d = sl_method_default((*m)->kind);
		sl_method_note(mx->rep, "%s: %s; %s used", (*m)->name, why.msg, d->name);
		*m = d;
		return d->prepare ? d->prepare(mx, err) : SL_OK;
	}
	if (st && err)
		*err = why;
	return st;
}

/* What rounding W (divided by unscale per column, where given) to Q cost:
 * the squared error and the squared weights, summed in four lanes (element
 * i in lane i % 4, counted from the matrix's first element, so a matrix
 * tallied a stretch of rows at a time sums as one tallied whole), and Q's
 * zeros. */
typedef struct {
	double e2[4], w2[4];
	size_t zeros, at;
} err_sums;

static void tally(err_sums *t, const float *W, const float *Q, size_t n, const float *unscale, int cols)
{
	size_t i = 0;
	if (!unscale && !(t->at & 3))
		for (; i + 4 <= n; i += 4)
			for (int k = 0; k < 4; k++) {
				double w = W[i + k], d = w - Q[i + k];
				t->e2[k] += d * d;
				t->w2[k] += w * w;
				t->zeros += Q[i + k] == 0;
			}
	for (; i < n; i++) {
		double w = unscale ? W[i] / unscale[i % cols] : W[i], d = w - Q[i];
		t->e2[(t->at + i) & 3] += d * d;
		t->w2[(t->at + i) & 3] += w * w;
		t->zeros += Q[i] == 0;
	}
	t->at += n;
}

/* The report's relative error and sparsity from the sums. */
static void tally_report(const err_sums *t, sl_module_report *rep)
{
	double e2 = (t->e2[0] + t->e2[1]) + (t->e2[2] + t->e2[3]), w2 = (t->w2[0] + t->w2[1]) + (t->w2[2] + t->w2[3]);
	rep->rel_error = w2 > 0 ? sqrt(e2 / w2) : 0;
	rep->sparsity = t->at ? (double)t->zeros / (double)t->at : 0;
}

/* Prunes and quantizes one matrix as the plan says into out (its data
 * replaced: packed, or F32 when simulating): the pruning criterion's and
 * the quantization method's prepare hooks, the solve they set up, the
 * method's refine hook, then packing. */
static sl_status compress_matrix(const matrix_job *j, sl_tensor *out, sl_module_report *rep, sl_error *err)
{
	const sl_module_plan *p = j->plan;
	int rows = j->rows, cols = j->cols;
	size_t sz = (size_t)rows * cols;
	const sl_format *f = format_for(p, cols, rep);
	int type = f ? f->dtype : j->keep_type;
	float *Q = sl_malloc_array(sz, sizeof *Q);
	unsigned char *mask = NULL;
	sl_qgrid *grid = NULL;
	sl_rounding rd;
	void *packed = NULL;
	sl_status st = SL_OK;
	if (!Q)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", j->name);
	memcpy(Q, j->W, sz * sizeof *Q);

	sl_obs_opts obs = {.H = j->st ? j->st->hessian : NULL, .block = 128, .progress = j->progress};
	sl_matrix mx = {j->name, Q, rows, cols, type, p, j->st, &obs, false, &mask, &grid, rep};
	const sl_method *crit = sl_plan_prunes(p) ? usable(SL_METHOD_PRUNE, p->prune, j->st, rep) : NULL;
	const sl_method *quant = f ? usable(SL_METHOD_QUANT, p->method, j->st, rep) : NULL;
	if (crit && (st = prepare(&crit, &mx, err)))
		goto done;
	if (quant && (st = prepare(&quant, &mx, err)))
		goto done;
	snprintf(rep->method, sizeof rep->method, "%s", quant ? quant->name : crit ? crit->name : "-");
	if (mx.solve) {
		if (grid) {
			rd = sl_qgrid_rounding(grid);
			obs.rounding = &rd;
		}
		obs.mask = mask;
		if ((st = sl_obs_solve(Q, rows, cols, &obs, err))) {
			sl_error_prefix(err, "%s: ", j->name);
			goto done;
		}
	}
	if (quant && quant->refine && (st = quant->refine(&mx, err)))
		goto done;

	size_t rb = sl_dtype_row_bytes(type, cols);
	if (!(packed = sl_malloc_array((size_t)rows, rb))) {
		st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", j->name);
		goto done;
	}
	sl_dtype_rows_from_float(type, Q, packed, rows, cols);
	sl_dtype_rows_to_float(type, packed, Q, rows, cols);
	/* What a kept mask promised must hold after rounding too. */
	if (mask && !grid)
		for (size_t i = 0; i < sz; i++)
			if (mask[i] && Q[i] != 0) {
				sl_method_note(rep, "%s has no exact zero in some blocks; pruned weights there hold its nearest value",
				               f ? f->name : sl_dtype_name(type));
				break;
			}
	if (j->unscale)
		for (int r = 0; r < rows; r++)
			for (int c = 0; c < cols; c++)
				Q[(size_t)r * cols + c] /= j->unscale[c];

	int64_t ne[2] = {cols, rows};
	bool as_f32 = (j->simulate && !j->keep_packed) || j->unscale;
	if ((st = sl_tensor_realloc(out, as_f32 ? SL_DT_F32 : type, ne, 2, err)))
		goto done;
	if (as_f32)
		memcpy(out->data, Q, sz * sizeof *Q);
	else
		memcpy(out->data, packed, (size_t)rows * rb);
	out->simulated = j->simulate && !as_f32;

	err_sums sums = {0};
	tally(&sums, j->W, Q, sz, j->unscale, cols);
	tally_report(&sums, rep);
	rep->bytes_after = (double)out->nbytes;
done:
	free(Q);
	free(mask);
	free(packed);
	sl_qgrid_free(grid);
	return st;
}

/* Whether a matrix can go from its stored weights to its format a stretch
 * of rows at a time: rounding to nearest with nothing prepared, solved or
 * refined, no pruning, no input scales, packed (not simulated), into a
 * format whose scales do not span the whole tensor. */
static bool streamable(const matrix_job *j, const float *W)
{
	const sl_module_plan *p = j->plan;
	if (W || (j->simulate && !j->keep_packed) || j->unscale || !p->format || sl_plan_prunes(p))
		return false;
	const sl_method *m = sl_method_find(SL_METHOD_QUANT, p->method);
	if (!m || m->prepare || m->refine || m->needs)
		return false;
	const sl_format *f = sl_format_fits(p->format, j->cols) ? p->format : sl_format_fallback(p->format, j->cols);
	return f && !sl_type_info_get(f->dtype)->from_float_rows;
}

/* compress_matrix for a streamable matrix (above): the rows of src are
 * widened, packed and measured some thousands of values at a time, so no
 * F32 copy of the whole matrix is held. The same bytes and figures as
 * compress_matrix gives: the format packs each row by itself, and the
 * error sums run in the same order. out may be src. owner: the model whose
 * file src's rows are mapped from, which gets their pages back as they are
 * read (NULL: none). */
static sl_status compress_streamed(const matrix_job *j, const sl_tensor *src, const sl_model *owner, sl_tensor *out,
                                   sl_module_report *rep, sl_error *err)
{
	const sl_module_plan *p = j->plan;
	int rows = j->rows, cols = j->cols;
	const sl_format *f = format_for(p, cols, rep);
	const sl_method *quant = usable(SL_METHOD_QUANT, p->method, j->st, rep);
	snprintf(rep->method, sizeof rep->method, "%s", quant->name);
	size_t rb = sl_dtype_row_bytes(f->dtype, cols);
	/* 16K values (64 KB a buffer): the stretch stays in cache from widening to measuring. */
	int step = cols >= (1 << 14) ? 1 : (1 << 14) / cols;
	if (step > rows)
		step = rows;
	float *W = sl_malloc_array((size_t)step * cols, sizeof *W), *Q = sl_malloc_array((size_t)step * cols, sizeof *Q);
	char *packed = sl_malloc_array((size_t)rows, rb);
	sl_status st = SL_OK;
	if (!W || !Q || !packed) {
		st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", j->name);
		goto done;
	}
	err_sums sums = {0};
	size_t src_rb = src->nbytes / (size_t)rows, given = 0;
	for (int r0 = 0; r0 < rows; r0 += step) {
		int n = rows - r0 < step ? rows - r0 : step;
		size_t sz = (size_t)n * cols;
		sl_tensor_rows_to_f32(src, r0, n, W);
		sl_dtype_rows_from_float(f->dtype, W, packed + (size_t)r0 * rb, n, cols);
		sl_dtype_rows_to_float(f->dtype, packed + (size_t)r0 * rb, Q, n, cols);
		tally(&sums, W, Q, sz, NULL, cols);
		/* The rows read leave resident memory a megabyte or so at a time.
		 * Only whole pages go, so each stretch starts 64 KB (a page on
		 * any machine) before the last one ended. */
		size_t read = (size_t)(r0 + n) * src_rb;
		if (owner && !src->lr_a && read - given >= (1u << 20)) {
			size_t from = given > (1u << 16) ? given - (1u << 16) : 0;
			sl_model_release_pages(owner, (const char *)src->data + from, read - from);
			given = read;
		}
	}
	int64_t ne[2] = {cols, rows};
	if ((st = sl_tensor_realloc(out, f->dtype, ne, 2, err)))
		goto done;
	memcpy(out->data, packed, (size_t)rows * rb);
	out->simulated = j->simulate;
	tally_report(&sums, rep);
	rep->bytes_after = (double)out->nbytes;
done:
	free(W);
	free(Q);
	free(packed);
	return st;
}

/* --- low rank ------------------------------------------------------------------ */

/* Matrices factored together: one weight, or the same module of the
 * blocks that share a basis (the first heads them). */
typedef struct {
	int n;
	const char *const *names;      /* [n] weight tensors */
	const float *const *W;         /* [n] rows x cols, as they enter */
	const sl_act_stats *const *st; /* [n] statistics of each one's input, or NULL */
	int rows, cols, rank;
	const sl_module_plan *plan;
	int keep_type;                 /* storage of factors the plan gives no format */
	sl_tensor *const *out;         /* [n] weights that become the product (NULL: not kept) */
	sl_module_report *const *rep;  /* [n] */
} factor_group;

/* A factor named after its weight ("blk.2.ffn_up.lr_a"), packed in type
 * from F (rows x cols); its values as stored go back into F. */
static sl_tensor *new_factor(const char *weight, const char *suffix, int type, float *F, int rows, int cols,
                             sl_error *err)
{
	sl_tensor *t = calloc(1, sizeof *t);
	size_t k = strlen(weight);
	if (k > 7 && !strcmp(weight + k - 7, ".weight"))
		k -= 7;
	int64_t ne[2] = {cols, rows};
	if (!t) {
		sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory for a factor", weight);
		return NULL;
	}
	if (sl_tensor_realloc(t, type, ne, 2, err)) {
		free(t);
		return NULL;
	}
	snprintf(t->name, sizeof t->name, "%.*s.%s", (int)k, weight, suffix);
	sl_dtype_rows_from_float(type, F, t->data, rows, cols);
	sl_dtype_rows_to_float(type, t->data, F, rows, cols);
	return t;
}

static void free_factor(sl_tensor *t)
{
	if (t) {
		sl_tensor_release(t);
		free(t);
	}
}

/* Factors the group as its method says (the method's fallback, noted,
 * where some member lacks what it needs), stores both factors in the
 * plan's format (each its fallback for its rows) or keep_type, and makes
 * each kept weight their product, the first kept owning the basis. Each
 * report counts its coefficients and its part of the basis. */
static sl_status factor_matrices(const factor_group *g, sl_error *err)
{
	const int n = g->n, rows = g->rows, cols = g->cols, r = g->rank;
	const sl_module_plan *p = g->plan;
	const sl_method *m = sl_plan_factors(p);
	const char *why = NULL;
	for (int k = 0; k < n && m->needs; k++)
		if (!needs_met(m, g->st[k], &why)) {
			const sl_method *d = sl_method_fallback(m);
			for (int i = 0; i < n; i++)
				sl_method_note(g->rep[i], "%s: %s; %s used", m->name, why, d->name);
			m = d;
		}
	size_t mn = (size_t)rows * cols;
	float *W = sl_malloc_array((size_t)n * mn, sizeof *W), *A = sl_malloc_array((size_t)n * rows, (size_t)r * sizeof *A);
	float *B = sl_malloc_array((size_t)r * cols, sizeof *B), *D = sl_malloc_array(mn, sizeof *D);
	sl_tensor **fa = sl_calloc((size_t)n, sizeof *fa), *fb = NULL;
	sl_status st = SL_OK;
	if (!W || !A || !B || !D || !fa) {
		st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", g->names[0]);
		goto done;
	}
	for (int k = 0; k < n; k++)
		memcpy(W + k * mn, g->W[k], mn * sizeof *W);
	sl_factor_job j = {g->names[0], n, W, rows, cols, r, g->st, p, A, B};
	if ((st = m->factor(&j, err)))
		goto done;
	const sl_format *f = p->format, *fb_fmt = f ? sl_format_fallback(f, cols) : NULL;
	const sl_format *fa_fmt = f ? sl_format_fallback(f, r) : NULL;
	if (!(fb = new_factor(g->names[0], SL_LR_B, f ? fb_fmt->dtype : g->keep_type, B, r, cols, err)))
		goto fail;
	for (int k = 0; k < n; k++) {
		float *Ak = A + (size_t)k * rows * r;
		if (!(fa[k] = new_factor(g->names[k], SL_LR_A, f ? fa_fmt->dtype : g->keep_type, Ak, rows, r, err)))
			goto fail;
		sl_module_report *rep = g->rep[k];
		snprintf(rep->method, sizeof rep->method, "%s", m->name);
		rep->asked = f;
		rep->used = fb_fmt;
		if (f && fb_fmt != f)
			sl_method_note(rep, "%s cannot hold rows of %d; %s used", f->name, cols, fb_fmt->name);
		if (f && fa_fmt != f)
			sl_method_note(rep, "%s cannot hold the first factor's rows of rank %d; %s used", f->name, r,
			               fa_fmt->name);
		sl_method_note(rep, "rank %d of %d", r, rows < cols ? rows : cols);
		if (n > 1)
			sl_method_note(rep, "one basis for %d blocks", n);
		/* The error of what is stored: both factors as they were packed. */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, r, 1.0f, Ak, r, B, cols, 0.0f, D, cols);
		double e2 = 0, w2 = 0;
		for (size_t i = 0; i < mn; i++) {
			double w = g->W[k][i];
			e2 += (w - D[i]) * (w - D[i]);
			w2 += w * w;
		}
		rep->rel_error = w2 > 0 ? sqrt(e2 / w2) : 0;
		rep->sparsity = 0;
		rep->bytes_after = (double)fa[k]->nbytes + (double)fb->nbytes / n;
	}
	bool basis_kept = false;
	for (int k = 0; k < n; k++) {
		if (!g->out[k])
			continue;
		int64_t ne[2] = {cols, rows};
		sl_tensor *o = g->out[k];
		sl_tensor_release(o);
		o->type = g->keep_type;
		o->n_dims = 2;
		for (int d = 0; d < SL_MAX_DIMS; d++)
			o->ne[d] = d < 2 ? ne[d] : 1;
		sl_tensor_set_factors(o, fa[k], fb, !basis_kept);
		fa[k] = NULL;
		basis_kept = true;
	}
	if (!basis_kept)
		free_factor(fb);
	fb = NULL;
	goto done;
fail:
	st = err ? err->status : SL_ERR_NOMEM;
done:
	for (int k = 0; fa && k < n; k++)
		free_factor(fa[k]);
	free_factor(fb);
	free(fa);
	free(W);
	free(A);
	free(B);
	free(D);
	return st;
}

/* W's values as floats (rows x cols), malloc'ed; NULL when out of memory. */
static float *weights_f32(const sl_tensor *w)
{
	float *W = sl_malloc_array((size_t)sl_tensor_nelements(w), sizeof *W);
	if (W)
		sl_tensor_rows_to_f32(w, 0, sl_tensor_nrows(w), W);
	return W;
}

/* The statistics of mod's input: a tied embedding's are the output head's. */
static const sl_act_stats *input_stats(const sl_model *m, const sl_calib *calib, const sl_module *mod)
{
	sl_module head = *mod;
	if (mod->kind == SL_MOD_EMBD && m->output == m->tok_embd)
		head.kind = SL_MOD_OUTPUT;
	return sl_calib_stats(calib, &head);
}

/* sl_compress_module for a low-rank plan. A sharing method factors mod
 * with the same module of the blocks of its window (the plan's blocks,
 * aligned at multiples of it; every block when it gives none), as a recipe
 * giving them all this plan would, and keeps mod's part. */
static sl_status compress_factored(const sl_model *m, const sl_module *mod, const sl_module_plan *plan,
                                   const sl_calib *calib, sl_tensor *out, sl_module_report *rep, sl_error *err)
{
	int n_all = sl_model_modules(m, NULL, 0), n = 0, self = 0;
	sl_module *all = sl_calloc((size_t)n_all, sizeof *all), *mem = sl_calloc((size_t)n_all, sizeof *mem);
	float **W = sl_calloc((size_t)n_all, sizeof *W);
	const sl_act_stats **st = sl_calloc((size_t)n_all, sizeof *st);
	sl_tensor **outs = sl_calloc((size_t)n_all, sizeof *outs);
	sl_module_report *reps = sl_calloc((size_t)n_all, sizeof *reps), **rp = sl_calloc((size_t)n_all, sizeof *rp);
	const char **names = sl_calloc((size_t)n_all, sizeof *names);
	sl_status status = SL_OK;
	if (!all || !mem || !W || !st || !outs || !reps || !rp || !names) {
		status = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", mod->name);
		goto done;
	}
	sl_model_modules(m, all, n_all);
	int k = (int)sl_plan_value(plan, &sl_lowrank_params[SL_LOWRANK_BLOCKS]);
	int lo = mod->layer, hi = mod->layer;
	if (sl_plan_factors(plan)->shares && mod->layer >= 0) {
		k = k > 0 ? k : m->cfg.n_layers;
		lo = mod->layer / k * k;
		hi = lo + k - 1;
	}
	for (int i = 0; i < n_all; i++)
		if (all[i].kind == mod->kind && all[i].layer >= lo && all[i].layer <= hi) {
			if (all[i].w->ne[0] != mod->w->ne[0] || all[i].w->ne[1] != mod->w->ne[1]) {
				status = sl_errorf(err, SL_ERR_ARG, "%s and %s cannot share a basis: their shapes differ", mod->name,
				                   all[i].name);
				goto done;
			}
			self = all[i].layer == mod->layer ? n : self;
			mem[n++] = all[i];
		}
	for (int i = 0; i < n; i++) {
		if (!(W[i] = weights_f32(mem[i].w))) {
			status = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", mem[i].name);
			goto done;
		}
		st[i] = input_stats(m, calib, &mem[i]);
		if ((sl_plan_needs(plan) & SL_NEEDS_STATS) && !st[i] && mem[i].kind != SL_MOD_EMBD) {
			status = sl_errorf(err, SL_ERR_ARG, "%s: %s needs calibration statistics of this module's input",
			                   mem[i].name, plan->method);
			goto done;
		}
		names[i] = mem[i].w->name;
		rp[i] = i == self ? rep : &reps[i];
	}
	outs[self] = out;
	int rows = (int)mod->w->ne[1], cols = (int)mod->w->ne[0];
	factor_group g = {n, names, (const float *const *)W, st, rows, cols,
	                  sl_lowrank_rank(plan, (int64_t)rows * n, cols), plan,
	                  sl_dtype_keep_float(mod->w->type), outs, rp};
	status = factor_matrices(&g, err);
done:
	for (int i = 0; W && i < n; i++)
		free(W[i]);
	free(all);
	free(mem);
	free(W);
	free(st);
	free(outs);
	free(reps);
	free(rp);
	free(names);
	return status;
}

sl_status sl_compress_module(const sl_model *m, const sl_module *mod, const sl_module_plan *plan,
                             const sl_calib *calib, bool simulate, sl_tensor *out, sl_module_report *rep,
                             sl_error *err)
{
	if (sl_plan_factors(plan)) {
		memset(rep, 0, sizeof *rep);
		snprintf(rep->module, sizeof rep->module, "%s", mod->name);
		rep->bytes_before = (double)sl_tensor_bytes(mod->w);
		snprintf(out->name, sizeof out->name, "%s", mod->w->name);
		double t0 = sl_now();
		sl_status st = compress_factored(m, mod, plan, calib, out, rep, err);
		rep->seconds = sl_now() - t0;
		return st;
	}
	memset(rep, 0, sizeof *rep);
	snprintf(rep->module, sizeof rep->module, "%s", mod->name);
	rep->bytes_before = (double)mod->w->nbytes;
	snprintf(out->name, sizeof out->name, "%s", mod->w->name);
	double t0 = sl_now();
	if (sl_plan_structured(plan))
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "%s: %s pruning changes several tensors' shapes; apply it with a recipe, not module by module",
		                 mod->name, plan->pattern);
	int rows = (int)mod->w->ne[1], cols = (int)mod->w->ne[0];
	const sl_act_stats *st = input_stats(m, calib, mod);
	const sl_method *q = quant_of(plan);
	if ((sl_plan_needs(plan) & SL_NEEDS_STATS) && !st && !(mod->kind == SL_MOD_EMBD && m->output != m->tok_embd))
		return sl_errorf(err, SL_ERR_ARG, "%s: %s needs calibration statistics of this module's input", mod->name,
		                 q && q->needs ? q->name : plan->prune);
	if (st && st->n != cols)
		return sl_errorf(err, SL_ERR_ARG, "%s: calibration statistics are for inputs of %d, not %d", mod->name,
		                 st->n, cols);
	float *W = weights_f32(mod->w), *s = NULL;
	sl_act_stats scaled = {0};
	sl_status status = SL_OK;
	if (!W)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", mod->name);
	const char *why;
	bool scales = q && q->scales && needs_met(q, st, &why);
	/* Alone, a module has no previous operation to fold scales into: when
	 * simulating, its stored weights are Q(W diag(s)) diag(s)^-1, exactly
	 * what the folded model computes; packed, only the per-matrix hooks run. */
	if (scales && simulate) {
		sl_scale_member mem = {W, rows, sl_format_fallback(plan->format, cols)->dtype, plan};
		if (!(s = sl_malloc_array((size_t)cols, sizeof *s)))
			status = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", mod->name);
		else
			status = input_scales(&mem, 1, st, NULL, 0, s, err);
		if (status)
			goto done;
		if (q->act_int8)
			sl_method_note(rep, "activations stay float when one module is compressed alone");
		for (size_t i = 0; i < (size_t)rows * cols; i++)
			W[i] *= s[i % cols];
		if ((status = stats_scaled(st, s, &scaled, err)))
			goto done;
		st = &scaled;
	} else if (scales) {
		sl_method_note(rep, "%s: scales need the previous operation; apply the recipe to fold them", plan->method);
	}
	matrix_job j = {mod->w->name, W, rows, cols, plan, st, sl_dtype_keep_float(mod->w->type),
	                simulate, false, s, NULL};
	status = compress_matrix(&j, out, rep, err);
done:
	free(W);
	free(s);
	stats_release(&scaled);
	rep->seconds = sl_now() - t0;
	return status;
}

/* --- applying a recipe ------------------------------------------------------- */

/* Progress of one stage mapped into [lo, hi] of the whole job, with the
 * callback serialized (modules are compressed on several threads). */
typedef struct {
	sl_progress p;
	const sl_progress *outer;
	double lo, hi;
	pthread_mutex_t mu;
} stage;

static void stage_fn(void *ctx, double frac, const char *what)
{
	stage *s = ctx;
	pthread_mutex_lock(&s->mu);
	sl_report(s->outer, s->lo + frac * (s->hi - s->lo), what);
	pthread_mutex_unlock(&s->mu);
}

static void stage_init(stage *s, const sl_progress *outer, double lo, double hi)
{
	s->outer = outer;
	s->lo = lo;
	s->hi = hi;
	s->p = (sl_progress){stage_fn, s, outer ? outer->cancel : NULL};
	pthread_mutex_init(&s->mu, NULL);
}

/* One module of the model being built. */
typedef struct {
	sl_module mod;
	int base;                 /* its index in the base's module list */
	const sl_module_plan *plan;
	float *w;                 /* working F32 weights; NULL while untouched */
	const sl_act_stats *st;   /* its input's statistics as its weights see them */
	int orig_type;
	matrix_job job;
	bool has_job;
	/* Low rank: a group of modules factored together is one job, its
	 * first module's (in_group marks the others). */
	int *group;               /* indices into the apply context's modules; NULL: no group job */
	int n_group, rank;
	bool in_group;
	sl_module_report rep;
	sl_error err;
	sl_status status;
} work_mod;

typedef struct {
	const sl_model *base;
	const sl_recipe *r;
	sl_model *m;
	sl_module *bmods;
	sl_module_plan *plans;
	int nb;
	sl_calib *own_calib;
	const sl_calib *calib;
	int *old_layer;           /* base block of each block of m */
	double *influence;        /* each base block's influence, where a pattern measured it */
	const sl_method *influence_by; /* the pattern that did */
	work_mod *w;
	int nw;
	int *order;               /* the modules' jobs, largest first (compress_task's i-th runs w[order[i]]) */
	/* Input scales and the statistics they leave, one slot per block and
	 * tap (the output head's first), kept until the modules are done. */
	float **scales;
	sl_act_stats *scaled;
	int n_slots;
	sl_status *layer_status;  /* of each block's scaling, done in parallel */
	sl_error *layer_err;
	stage prog;
	sl_progress cancel_only;  /* what a module's solver sees: the job's cancel flag */
	atomic_int done;
} apply_ctx;

static sl_status ensure_w(work_mod *wm, sl_error *err)
{
	if (!wm->w && !(wm->w = weights_f32(wm->mod.w)))
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", wm->mod.name);
	return SL_OK;
}

static void release_w(work_mod *wm)
{
	free(wm->w);
	wm->w = NULL;
}

static work_mod *find_work(apply_ctx *a, int layer, sl_module_kind kind)
{
	for (int i = 0; i < a->nw; i++)
		if (a->w[i].mod.layer == layer && a->w[i].mod.kind == kind)
			return &a->w[i];
	return NULL;
}

static sl_status gather(apply_ctx *a, const sl_model *m, bool hessians, const sl_progress *p, sl_error *err)
{
	if (!a->r->calib.text[0])
		for (int i = 0; i < a->nb; i++)
			if (sl_plan_needs(&a->plans[i])) {
				const sl_module_plan *pl = &a->plans[i];
				const sl_method *q = quant_of(pl);
				return sl_errorf(err, SL_ERR_ARG,
				                 "%s (%s) needs calibration statistics, and the recipe names no calibration text (calibration.text)",
				                 a->bmods[i].name, sl_plan_structured(pl) ? pl->pattern
				                                   : q && q->needs ? q->name : pl->prune);
			}
	sl_calib_free(a->own_calib);
	a->own_calib = NULL;
	a->calib = NULL;
	sl_calib_opts co = {.text_path = a->r->calib.text, .tokens = a->r->calib.tokens, .ctx = a->r->calib.ctx,
	                    .seed = a->r->calib.seed, .hessians = hessians, .progress = p};
	sl_status st = sl_calib_gather(m, &co, &a->own_calib, err);
	if (st)
		return sl_error_prefix(err, "calibration: ");
	a->calib = a->own_calib;
	return SL_OK;
}

/* --- structured pruning ------------------------------------------------------- */

/* Each structured pattern, in registry order, removes what the rules ask
 * of each block (the largest sparsity any of the block's modules asks). */
static sl_status prune_structure(apply_ctx *a, bool *changed, sl_error *err)
{
	const int L = a->base->cfg.n_layers;
	double *sp = sl_malloc_array((size_t)L, sizeof *sp);
	if (!sp)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	sl_status st = SL_OK;
	for (int k = 0; k < sl_method_count() && !st; k++) {
		const sl_method *pat = sl_method_at(k);
		if (!pat->shrink)
			continue;
		bool any = false;
		for (int il = 0; il < L; il++)
			sp[il] = 0;
		for (int i = 0; i < a->nb; i++) {
			const sl_module_plan *p = &a->plans[i];
			int il = a->bmods[i].layer;
			if (il >= 0 && sl_plan_structured(p) && sl_method_find(SL_METHOD_PATTERN, p->pattern) == pat) {
				sp[il] = fmax(sp[il], p->sparsity);
				any = true;
			}
		}
		if (!any)
			continue;
		sl_shrink_job j = {&a->m, sp, a->calib, a->old_layer, a->influence, false};
		st = pat->shrink(&j, err);
		*changed |= j.changed;
		for (int il = 0; il < L && !a->influence_by; il++)
			if (!isnan(a->influence[il]))
				a->influence_by = pat;
	}
	free(sp);
	return st;
}

/* --- input scales ------------------------------------------------------------- */

/* The query channel whose scale a key/value channel takes (the first
 * head of its group; scales are tied within groups). */
static int q_channel(const sl_layer *L, int hd, int r)
{
	int g = L->n_heads / L->n_kv_heads;
	return (r / hd) * g * hd + r % hd;
}

/* t / s, in place: t becomes the model's own first (it may be the base's). */
static sl_status divide_vector(sl_tensor *t, const float *s, int n, sl_error *err)
{
	if (!t)
		return SL_OK;
	sl_status st = sl_tensor_own(t, err);
	float *v = t->data;
	for (int j = 0; !st && j < n; j++)
		v[j] /= s[j];
	return st;
}

/* Divides what feeds the input at (layer, tap) by s: a norm's weight and
 * bias, or the rows of v (before attn_output) or of up (before down, in
 * SwiGLU). False when nothing before the input can take it. */
static bool fold_possible(const sl_model *m, int layer, sl_tap tap)
{
	if (layer < 0)
		return m->output != m->tok_embd;
	const sl_layer *L = &m->layers[layer];
	switch (tap) {
	case SL_TAP_ATTN_IN:
	case SL_TAP_FFN_IN:
		return true;
	case SL_TAP_ATTN_OUT_IN:
		return L->wv != NULL;
	case SL_TAP_FFN_DOWN_IN:
		return L->w_gate && L->w_up;
	default:
		return false;
	}
}

static sl_status fold(apply_ctx *a, int layer, sl_tap tap, const float *s, int n, sl_error *err)
{
	sl_model *m = a->m;
	if (layer < 0) {
		sl_status st = divide_vector(m->out_norm, s, n, err);
		return st ? st : divide_vector(m->out_norm_b, s, n, err);
	}
	sl_layer *L = &m->layers[layer];
	const int hd = m->cfg.head_dim;
	sl_status st = SL_OK;
	if (tap == SL_TAP_ATTN_IN || tap == SL_TAP_FFN_IN) {
		if ((st = divide_vector(tap == SL_TAP_ATTN_IN ? L->attn_norm : L->ffn_norm, s, n, err)))
			return st;
		st = divide_vector(tap == SL_TAP_ATTN_IN ? L->attn_norm_b : L->ffn_norm_b, s, n, err);
	} else if (tap == SL_TAP_ATTN_OUT_IN) {
		work_mod *v = find_work(a, layer, SL_MOD_ATTN_V);
		if ((st = ensure_w(v, err)) || (L->bv && (st = sl_tensor_own(L->bv, err))))
			return st;
		int rows = (int)v->mod.w->ne[1], cols = (int)v->mod.w->ne[0];
		float *bv = L->bv ? L->bv->data : NULL;
		for (int r = 0; r < rows; r++) {
			float sr = s[q_channel(L, hd, r)];
			for (int c = 0; c < cols; c++)
				v->w[(size_t)r * cols + c] /= sr;
			if (bv)
				bv[r] /= sr;
		}
	} else {
		work_mod *up = find_work(a, layer, SL_MOD_FFN_UP);
		if ((st = ensure_w(up, err)))
			return st;
		int cols = (int)up->mod.w->ne[0];
		for (int r = 0; r < n; r++)
			for (int c = 0; c < cols; c++)
				up->w[(size_t)r * cols + c] /= s[r];
		st = divide_vector(L->b_up, s, n, err);
	}
	return st;
}

/* The scales of one input shared by the modules in g[0..n) (the method
 * scale_method picks computes them), multiplies their columns by them and
 * folds the inverse into what came before. */
static sl_status scale_input(apply_ctx *a, work_mod **g, int n_g, int slot, sl_error *err)
{
	const int layer = g[0]->mod.layer;
	const sl_tap tap = g[0]->mod.input;
	const sl_act_stats *st = sl_calib_stats(a->calib, &g[0]->mod);
	sl_scale_member *mem = sl_calloc((size_t)n_g, sizeof *mem);
	float *s = NULL;
	sl_status status = SL_OK;
	if (!mem)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory scaling the input of %s", g[0]->mod.name);
	for (int k = 0; k < n_g; k++)
		mem[k].plan = g[k]->plan;
	const sl_method *sm = scale_method(mem, n_g);
	if (!sm || !st)
		goto done;
	for (int k = 0; k < n_g; k++) {
		const sl_method *q = quant_of(g[k]->plan);
		if (q && q->act_int8) {
			if (layer >= 0)
				a->m->layers[layer].act_int8 |= 1u << g[k]->mod.kind;
			else
				sl_method_note(&g[k]->rep, "the output head's activations stay float");
		}
	}
	if (!fold_possible(a->m, layer, tap)) {
		for (int k = 0; k < n_g; k++) {
			const sl_method *q = quant_of(g[k]->plan);
			if (q && q->scales)
				sl_method_note(&g[k]->rep, "no operation before this input takes scales; %s's are not applied",
				               sm->name);
		}
		goto done;
	}
	const int n = st->n, hd = a->m->cfg.head_dim;
	const sl_layer *L = layer >= 0 ? &a->m->layers[layer] : NULL;
	bool tie = tap == SL_TAP_ATTN_OUT_IN && L->n_heads != L->n_kv_heads;
	if (!(s = sl_malloc_array((size_t)n, sizeof *s))) {
		status = sl_errorf(err, SL_ERR_NOMEM, "out of memory scaling the input of %s", g[0]->mod.name);
		goto done;
	}
	for (int k = 0; k < n_g; k++) {
		if ((status = ensure_w(g[k], err)))
			goto done;
		const sl_module_plan *p = g[k]->plan;
		mem[k].W = g[k]->w;
		mem[k].rows = (int)g[k]->mod.w->ne[1];
		mem[k].type = p && p->format ? sl_format_fallback(p->format, n)->dtype : SL_DT_F32;
	}
	if ((status = input_scales(mem, n_g, st, tie ? L : NULL, hd, s, err))) {
		sl_error_prefix(err, "%s: ", g[0]->mod.name);
		goto done;
	}
	for (int k = 0; k < n_g; k++) {
		int rows = (int)g[k]->mod.w->ne[1];
		for (int r = 0; r < rows; r++)
			for (int c = 0; c < n; c++)
				g[k]->w[(size_t)r * n + c] *= s[c];
	}
	if ((status = fold(a, layer, tap, s, n, err)))
		goto done;
	sl_act_stats *sc = &a->scaled[slot];
	if ((status = stats_scaled(st, s, sc, err)))
		goto done;
	a->scales[slot] = s;
	s = NULL;
	for (int k = 0; k < n_g; k++)
		g[k]->st = sc;
done:
	free(s);
	free(mem);
	return status;
}

#define TAPS 4
static const sl_tap tap_order[TAPS] = {SL_TAP_ATTN_IN, SL_TAP_ATTN_OUT_IN, SL_TAP_FFN_IN, SL_TAP_FFN_DOWN_IN};

/* The inputs of one block (task 0: the output head's), in the order of the
 * forward pass (each input's scales see the inputs before it already scaled);
 * blocks touch only their own tensors, so they run in parallel. */
static void scale_layer(int task, void *arg)
{
	apply_ctx *a = arg;
	int il = task - 1;
	work_mod **g = sl_malloc_array((size_t)a->nw, sizeof *g);
	sl_status st = g ? SL_OK : sl_errorf(&a->layer_err[task], SL_ERR_NOMEM, "out of memory");
	for (int t = 0; t < (il < 0 ? 1 : TAPS) && !st; t++) {
		int n_g = 0;
		for (int i = 0; i < a->nw; i++) {
			const sl_module *md = &a->w[i].mod;
			if (md->layer == il && (il < 0 ? md->kind == SL_MOD_OUTPUT : md->input == tap_order[t]))
				g[n_g++] = &a->w[i];
		}
		if (n_g)
			st = scale_input(a, g, n_g, task * TAPS + t, &a->layer_err[task]);
	}
	a->layer_status[task] = st;
	free(g);
}

static sl_status scale_inputs(apply_ctx *a, sl_error *err)
{
	int tasks = a->m->cfg.n_layers + 1;
	sl_parallel_for(tasks, scale_layer, a);
	for (int i = 0; i < tasks; i++)
		if (a->layer_status[i]) {
			if (err)
				*err = a->layer_err[i];
			return a->layer_status[i];
		}
	return SL_OK;
}

/* --- low rank: which modules are factored together ------------------------------ */

/* The groups of the model being built (after structured pruning, so the
 * shapes are those it now has): each group's first module gets the job,
 * with its members and rank; the rest are marked in_group. */
static sl_status plan_groups(apply_ctx *a, sl_error *err)
{
	sl_module *mods = sl_calloc((size_t)a->nw, sizeof *mods);
	sl_module_plan *plans = sl_calloc((size_t)a->nw, sizeof *plans);
	sl_lowrank_plan *lay = sl_calloc((size_t)a->nw, sizeof *lay);
	sl_status st = SL_OK;
	if (!mods || !plans || !lay) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (int i = 0; i < a->nw; i++) {
		mods[i] = a->w[i].mod;
		if (a->w[i].plan)
			plans[i] = *a->w[i].plan;
		else
			plans[i].rule = -1;
	}
	sl_lowrank_layout(mods, plans, a->nw, lay);
	for (int i = 0; i < a->nw && !st; i++) {
		work_mod *wm = &a->w[i];
		if (lay[i].lead < 0)
			continue;
		int cols = (int)wm->mod.w->ne[0], rows = (int)wm->mod.w->ne[1] * lay[i].size;
		if (lay[i].mismatch)
			st = sl_errorf(err, SL_ERR_ARG, "%s cannot share a basis with %s: their shapes differ",
			               wm->mod.name, a->w[lay[i].lead].mod.name);
		else if (lay[i].rank < 1 || lay[i].rank > (rows < cols ? rows : cols))
			st = sl_errorf(err, SL_ERR_ARG, "%s: rank %d is outside 1..%d", wm->mod.name, lay[i].rank,
			               rows < cols ? rows : cols);
		if (st || lay[i].lead != i) {
			wm->in_group = true;
			continue;
		}
		if (!(wm->group = sl_malloc_array((size_t)lay[i].size, sizeof *wm->group))) {
			st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
			break;
		}
		for (int j = i; j < a->nw; j++)
			if (lay[j].lead == i)
				wm->group[wm->n_group++] = j;
		wm->rank = lay[i].rank;
		wm->in_group = false;
	}
done:
	free(mods);
	free(plans);
	free(lay);
	return st;
}

/* --- the modules, in parallel ------------------------------------------------ */

/* The factorization of the group wm heads, into its modules' weights. */
static sl_status factor_task(apply_ctx *a, work_mod *wm, sl_error *err)
{
	int n = wm->n_group;
	const char **names = sl_calloc((size_t)n, sizeof *names);
	const float **W = sl_calloc((size_t)n, sizeof *W);
	const sl_act_stats **st = sl_calloc((size_t)n, sizeof *st);
	sl_tensor **out = sl_calloc((size_t)n, sizeof *out);
	sl_module_report **rep = sl_calloc((size_t)n, sizeof *rep);
	sl_status status = SL_OK;
	if (!names || !W || !st || !out || !rep) {
		status = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", wm->mod.name);
	} else {
		for (int k = 0; k < n && !status; k++) {
			work_mod *m = &a->w[wm->group[k]];
			status = ensure_w(m, err);
			names[k] = m->mod.w->name;
			W[k] = m->w;
			st[k] = m->st;
			out[k] = m->mod.w;
			rep[k] = &m->rep;
		}
		factor_group g = {n, names, W, st, (int)wm->mod.w->ne[1], (int)wm->mod.w->ne[0], wm->rank, wm->plan,
		                  sl_dtype_keep_float(wm->orig_type), out, rep};
		if (!status)
			status = factor_matrices(&g, err);
	}
	for (int k = 0; k < n; k++)
		release_w(&a->w[wm->group[k]]);
	free(names);
	free(W);
	free(st);
	free(out);
	free(rep);
	return status;
}

/* Larger modules first: the threads' last jobs are small ones, so none
 * waits long for another to finish the output head. */
typedef struct {
	int64_t size;
	int i;
} job_order;

static int larger_first(const void *x, const void *y)
{
	const job_order *a = x, *b = y;
	return a->size != b->size ? (a->size < b->size) - (a->size > b->size) : (a->i > b->i) - (a->i < b->i);
}

/* a->order: the modules' indices, larger first. */
static sl_status order_jobs(apply_ctx *a, sl_error *err)
{
	job_order *o = sl_malloc_array((size_t)a->nw, sizeof *o);
	if (!o || !(a->order = sl_malloc_array((size_t)a->nw, sizeof *a->order))) {
		free(o);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	for (int i = 0; i < a->nw; i++)
		o[i] = (job_order){sl_tensor_nelements(a->w[i].mod.w), i};
	qsort(o, (size_t)a->nw, sizeof *o, larger_first);
	for (int i = 0; i < a->nw; i++)
		a->order[i] = o[i].i;
	free(o);
	return SL_OK;
}

static void compress_task(int i, void *arg)
{
	apply_ctx *a = arg;
	work_mod *wm = &a->w[a->order[i]];
	if (!wm->has_job)
		return;
	if (sl_cancelled(&a->prog.p)) {
		wm->status = sl_errorf(&wm->err, SL_ERR_CANCELLED, "cancelled before %s", wm->mod.name);
		return;
	}
	double t0 = sl_now();
	const void *src = wm->mod.w->data;
	size_t src_bytes = wm->mod.w->nbytes;
	/* Working weights are F32 only while their module is compressed (those
	 * an input's scales changed were made earlier and are held till now),
	 * and not even then where the rows can stream. */
	if (!wm->group && streamable(&wm->job, wm->w))
		wm->status = compress_streamed(&wm->job, wm->mod.w, a->base, wm->mod.w, &wm->rep, &wm->err);
	else {
		wm->status = wm->group ? factor_task(a, wm, &wm->err) : ensure_w(wm, &wm->err);
		if (!wm->group && !wm->status) {
			wm->job.W = wm->w;
			wm->status = compress_matrix(&wm->job, wm->mod.w, &wm->rep, &wm->err);
		}
	}
	release_w(wm);
	/* The base's weights here, read from its file, are not read again by
	 * this job: their pages need not stay resident. */
	if (!wm->status && wm->mod.w->data != src)
		sl_model_release_pages(a->base, src, src_bytes);
	wm->rep.seconds = sl_now() - t0;
	int done = atomic_fetch_add(&a->done, 1) + 1;
	char what[SL_NAME_MAX + 16];
	snprintf(what, sizeof what, "compressed %s", wm->mod.name);
	sl_report(&a->prog.p, (double)done / a->nw, what);
}

/* Values of t that are not zero. */
static int64_t nonzeros(const sl_tensor *t)
{
	int64_t cols = t->ne[0], rows = sl_tensor_nrows(t), nz = 0;
	float *row = sl_malloc_array((size_t)cols, sizeof *row);
	if (!row)
		return sl_tensor_nelements(t);
	for (int64_t r = 0; r < rows; r++) {
		sl_tensor_rows_to_f32(t, r, 1, row);
		for (int64_t c = 0; c < cols; c++)
			nz += row[c] != 0;
	}
	free(row);
	return nz;
}

/* Working weights that were scaled but not compressed go back in their
 * storage type when it is a float one, else in F32. */
static sl_status store_scaled(work_mod *wm, sl_error *err)
{
	sl_tensor *t = wm->mod.w;
	int type = sl_dtype_keep_float(wm->orig_type);
	int64_t ne[2] = {t->ne[0], t->ne[1]};
	sl_status st = sl_tensor_realloc(t, type, ne, 2, err);
	if (!st)
		sl_dtype_rows_from_float(type, wm->w, t->data, ne[1], ne[0]);
	if (!st && type != wm->orig_type)
		sl_method_note(&wm->rep, "scaled by a neighbour's input scales; kept in f32");
	return st;
}

static void report_modules(apply_ctx *a, sl_apply_report *rep)
{
	for (int i = 0; i < a->nb; i++) {
		sl_module_report *mr = &rep->mods[i];
		const sl_module *bm = &a->bmods[i];
		const sl_module_plan *p = &a->plans[i];
		work_mod *wm = NULL;
		for (int k = 0; k < a->nw && !wm; k++)
			if (a->w[k].base == i)
				wm = &a->w[k];
		if (wm)
			*mr = wm->rep;
		snprintf(mr->module, sizeof mr->module, "%s", bm->name);
		mr->asked = p->format;
		if (!mr->used)
			mr->used = p->format;
		mr->bytes_before = (double)sl_tensor_bytes(bm->w);
		double elems = (double)sl_tensor_nelements(bm->w);
		if (!wm) {
			snprintf(mr->method, sizeof mr->method, "%s", p->pattern);
			snprintf(mr->note, sizeof mr->note, "block %d removed (influence %.4g)", bm->layer,
			         a->influence[bm->layer]);
			mr->sparsity = 1;
			mr->bytes_after = 0;
			mr->rel_error = 1;
			continue;
		}
		if (wm->mod.w->lr_a && (wm->group || wm->in_group))
			continue; /* factored now: the factorization's report counts its factors */
		mr->bytes_after = (double)sl_tensor_bytes(wm->mod.w);
		bool shrunk = sl_tensor_nelements(wm->mod.w) < sl_tensor_nelements(bm->w);
		/* A module compressed whole counted its zeros as it stored them;
		 * one that shrank counts against the base's weights. */
		if (!wm->has_job || shrunk || wm->mod.w->lr_a)
			mr->sparsity = wm->mod.w->lr_a ? 0 : 1.0 - (double)nonzeros(wm->mod.w) / elems;
		if (!mr->method[0])
			snprintf(mr->method, sizeof mr->method, "%s", shrunk ? p->pattern : "-");
		if (shrunk)
			sl_method_note(mr, "%lld of %lld weights remain after %s pruning", (long long)sl_tensor_nelements(wm->mod.w),
			     (long long)sl_tensor_nelements(bm->w), p->pattern);
		else if (sl_plan_structured(p) && a->influence_by &&
		         sl_method_find(SL_METHOD_PATTERN, p->pattern) == a->influence_by)
			sl_method_note(mr, "block %d kept (influence %.4g)", bm->layer, a->influence[bm->layer]);
	}
}

static void apply_free(apply_ctx *a)
{
	for (int i = 0; a->w && i < a->nw; i++) {
		free(a->w[i].w);
		free(a->w[i].group);
	}
	for (int i = 0; a->scaled && i < a->n_slots; i++) {
		free(a->scales[i]);
		stats_release(&a->scaled[i]);
	}
	free(a->layer_status);
	free(a->layer_err);
	free(a->order);
	free(a->w);
	free(a->scales);
	free(a->scaled);
	free(a->bmods);
	free(a->plans);
	free(a->old_layer);
	free(a->influence);
	sl_calib_free(a->own_calib);
	pthread_mutex_destroy(&a->prog.mu);
}

/* The recipe's problems, refused with the first one named and a count of
 * the rest. */
static sl_status refuse(const sl_recipe *r, const sl_model *base, sl_error *err)
{
	sl_recipe_issue is[4];
	int n = sl_recipe_check(r, base, is, 4);
	if (n <= 0)
		return SL_OK;
	char more[96] = "";
	if (n > 1)
		snprintf(more, sizeof more, " (and %d more problem%s: slimlab recipe validate lists them)", n - 1,
		         n > 2 ? "s" : "");
	return sl_errorf(err, SL_ERR_ARG, "the recipe is refused: %s: %s%s", is[0].path, is[0].msg, more);
}

/* The KV-cache storage the recipe names; false with err when the model's
 * rows do not fit it. */
static sl_status kv_type_for(const sl_recipe *r, const sl_model *m, int *type, sl_error *err)
{
	*type = SL_DT_F32;
	if (!r->kv_cache[0])
		return SL_OK;
	const sl_format *f = sl_format_find(r->kv_cache);
	if (!f)
		return sl_errorf(err, SL_ERR_ARG, "kv_cache: unknown format '%s'", r->kv_cache);
	for (int il = 0; il < m->cfg.n_layers; il++) {
		int n = m->layers[il].n_kv_heads * m->cfg.head_dim;
		if (!sl_dtype_row_bytes(f->dtype, n))
			return sl_errorf(err, SL_ERR_ARG, "kv_cache: %s cannot hold block %d's key/value rows of %d values",
			                 f->name, il, n);
	}
	*type = f->dtype;
	return SL_OK;
}

double sl_recipe_apply_cost(const sl_model *base, const sl_recipe *r)
{
	int n = sl_model_modules(base, NULL, 0);
	sl_module *mods = sl_calloc((size_t)(n ? n : 1), sizeof *mods);
	unsigned needs = 0;
	if (mods) {
		sl_model_modules(base, mods, n);
		for (int i = 0; i < n; i++) {
			sl_module_plan p;
			sl_recipe_resolve(r, &mods[i], &p);
			needs |= sl_plan_needs(&p);
		}
		free(mods);
	}
	double cost = 16; /* rounding every weight: about a few tokens' forward */
	if (needs)
		cost += (r->calib.tokens > 0 ? r->calib.tokens : 8192) * (needs & SL_NEEDS_HESSIAN ? 2.0 : 1.0);
	return cost;
}

sl_status sl_recipe_apply(const sl_model *base, const sl_recipe *r, const sl_apply_opts *opts, sl_model **out,
                          sl_apply_report *rep, sl_error *err)
{
	*out = NULL;
	memset(rep, 0, sizeof *rep);
	sl_apply_opts o = opts ? *opts : (sl_apply_opts){0};
	double t0 = sl_now();
	apply_ctx a = {.base = base, .r = r, .cancel_only = {.cancel = o.progress ? o.progress->cancel : NULL}};
	/* Calibration takes the first third of the bar, the modules the rest. */
	stage_init(&a.prog, o.progress, 0, 0.3);
	sl_status st = refuse(r, base, err);
	int kv_type = SL_DT_F32;
	if (st || (st = kv_type_for(r, base, &kv_type, err)))
		goto fail;

	a.nb = sl_model_modules(base, NULL, 0);
	a.bmods = sl_calloc((size_t)a.nb, sizeof *a.bmods);
	a.plans = sl_calloc((size_t)a.nb, sizeof *a.plans);
	a.old_layer = sl_malloc_array((size_t)base->cfg.n_layers, sizeof *a.old_layer);
	a.influence = sl_calloc((size_t)base->cfg.n_layers, sizeof *a.influence);
	rep->mods = sl_calloc((size_t)a.nb, sizeof *rep->mods);
	if (!a.bmods || !a.plans || !a.old_layer || !a.influence || !rep->mods) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		goto fail;
	}
	rep->n_mods = a.nb;
	sl_model_modules(base, a.bmods, a.nb);
	bool any_stats = false, any_h = false, any_struct = false, later_stats = false;
	for (int i = 0; i < a.nb; i++) {
		sl_recipe_resolve(r, &a.bmods[i], &a.plans[i]);
		unsigned needs = sl_plan_needs(&a.plans[i]);
		any_stats |= needs != 0;
		any_h |= (needs & SL_NEEDS_HESSIAN) != 0;
		any_struct |= sl_plan_structured(&a.plans[i]);
		later_stats |= needs && !sl_plan_structured(&a.plans[i]);
	}
	for (int il = 0; il < base->cfg.n_layers; il++) {
		a.old_layer[il] = il;
		a.influence[il] = NAN;
	}

	if (any_struct && sl_model_factored(base)) {
		st = sl_errorf(err, SL_ERR_UNSUPPORTED,
		               "structured pruning of a model whose weights are low-rank factors is not supported: prune the "
		               "dense model, then factor");
		goto fail;
	}
	if (any_stats) {
		if (o.calib && sl_calib_matches(o.calib, base, any_h))
			a.calib = o.calib;
		else if ((st = gather(&a, base, any_h, &a.prog.p, err)))
			goto fail;
	}
	/* The result borrows every tensor of base it does not change. */
	if ((st = sl_model_borrow(base, &a.m, err)))
		goto fail;
	bool changed = false;
	if (any_struct && (st = prune_structure(&a, &changed, err)))
		goto fail;
	/* Later methods need the statistics of the model as it now is. */
	if (changed && later_stats && (st = gather(&a, a.m, any_h, &a.prog.p, err)))
		goto fail;

	a.nw = sl_model_modules(a.m, NULL, 0);
	a.w = sl_calloc((size_t)a.nw, sizeof *a.w);
	int tasks = a.m->cfg.n_layers + 1;
	a.n_slots = tasks * TAPS;
	a.scales = sl_calloc((size_t)a.n_slots, sizeof *a.scales);
	a.scaled = sl_calloc((size_t)a.n_slots, sizeof *a.scaled);
	a.layer_status = sl_calloc((size_t)tasks, sizeof *a.layer_status);
	a.layer_err = sl_calloc((size_t)tasks, sizeof *a.layer_err);
	sl_module *mods = sl_calloc((size_t)a.nw, sizeof *mods);
	if (!a.w || !a.scales || !a.scaled || !a.layer_status || !a.layer_err || !mods) {
		free(mods);
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		goto fail;
	}
	sl_model_modules(a.m, mods, a.nw);
	for (int i = 0; i < a.nw; i++) {
		work_mod *wm = &a.w[i];
		wm->mod = mods[i];
		wm->orig_type = mods[i].w->type;
		int old = mods[i].layer < 0 ? -1 : a.old_layer[mods[i].layer];
		for (int k = 0; k < a.nb; k++)
			if (a.bmods[k].layer == old && a.bmods[k].kind == mods[i].kind) {
				wm->base = k;
				wm->plan = &a.plans[k];
			}
		sl_module head = wm->mod;
		if (head.kind == SL_MOD_EMBD && a.m->output == a.m->tok_embd)
			head.kind = SL_MOD_OUTPUT; /* tied: its input is the head's */
		wm->st = sl_calib_stats(a.calib, &head);
	}
	free(mods);
	a.prog.lo = 0.3;
	a.prog.hi = 1;
	if ((st = scale_inputs(&a, err)))
		goto fail;

	if ((st = plan_groups(&a, err)))
		goto fail;
	for (int i = 0; i < a.nw; i++) {
		work_mod *wm = &a.w[i];
		const sl_module_plan *p = wm->plan;
		if (!p || !(sl_plan_method(p) || sl_plan_prunes(p)))
			continue;
		if (wm->in_group || wm->group) {
			wm->has_job = wm->group != NULL;
			continue;
		}
		if (wm->st && wm->st->n != (int)wm->mod.w->ne[0]) {
			st = sl_errorf(err, SL_ERR_ARG, "%s: calibration statistics do not match its %lld inputs", wm->mod.name,
			               (long long)wm->mod.w->ne[0]);
			goto fail;
		}
		wm->job = (matrix_job){wm->mod.w->name, NULL, (int)wm->mod.w->ne[1], (int)wm->mod.w->ne[0], p, wm->st,
		                       sl_dtype_keep_float(wm->orig_type), o.simulate, o.keep_packed, NULL,
		                       &a.cancel_only};
		wm->has_job = true;
	}
	if ((st = order_jobs(&a, err)))
		goto fail;
	sl_parallel_for(a.nw, compress_task, &a);
	for (int i = 0; i < a.nw; i++)
		if (a.w[i].status) {
			st = a.w[i].status;
			if (err)
				*err = a.w[i].err;
			goto fail;
		}
	for (int i = 0; i < a.nw; i++)
		if (!a.w[i].has_job && !a.w[i].in_group && a.w[i].w && (st = store_scaled(&a.w[i], err)))
			goto fail;
	/* Factors of weights compressed anew go; the new ones join the model. */
	sl_model_drop_unused_factors(a.m);
	for (int i = 0; i < a.nw; i++)
		if ((st = sl_model_adopt_factors(a.m, a.w[i].mod.w, err)))
			goto fail;
	if ((st = kv_type_for(r, a.m, &kv_type, err)))
		goto fail;
	a.m->cfg.kv_type = kv_type;

	report_modules(&a, rep);
	rep->bytes_before = (double)sl_model_bytes(base);
	rep->bytes_after = (double)sl_model_bytes(a.m);
	rep->params = (double)sl_model_n_params(a.m);
	rep->bpw = rep->params > 0 ? 8.0 * rep->bytes_after / rep->params : 0;
	for (int i = 0; i < rep->n_mods; i++)
		rep->n_fallbacks += rep->mods[i].asked && rep->mods[i].used != rep->mods[i].asked;
	rep->seconds = sl_now() - t0;
	*out = a.m;
	a.m = NULL;
	apply_free(&a);
	return SL_OK;
fail:
	sl_model_free(a.m);
	apply_free(&a);
	sl_apply_report_free(rep);
	return st;
}

void sl_apply_report_free(sl_apply_report *rep)
{
	free(rep->mods);
	memset(rep, 0, sizeof *rep);
}
