/* CPU kernels: matrix products through OpenBLAS (split across the pool by
 * output rows), and the small elementwise and attention operations. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels.h"
#include "gemm.h"
#include "w8a8.h"

/* ---- matmul ---------------------------------------------------------- */

/* A token's outputs never depend on how many tokens share the product:
 * weights with integer dot products always meet activations quantized the
 * same way, one (token, row) pair at a time; every other type becomes F32
 * rows that meet the activations in the batch-invariant float kernel
 * (gemm.c). Which way a type goes depends on the type and the row length,
 * never on the number of tokens, and each output is computed by one task,
 * so neither the batch nor the thread count changes a result. */

typedef struct {
	float *y;
	const float *x;
	int T;
	const char *w;
	int wtype;
	const sl_type_info *ti;
	int n_out, n_in;
	const float *bias;
	size_t row_bytes;
	const char *xq;        /* activations quantized to ti->vec_dot_type, or NULL */
	size_t xq_row_bytes;
} mm_args;

/* Tokens from which a product goes through the type's vec_dot_gemm,
 * whose preparations and tiles of four tokens pay for themselves. */
#define MM_GEMM_TOKENS 16

/* Rows converted to F32 at a time for the float kernel. */
#define MM_TILE_ROWS 16

/* Output rows r0 .. r1-1 of a's product, for every token. */
static void mm_rows(const mm_args *a, int r0, int r1)
{
	int nr = r1 - r0;
	if (nr <= 0)
		return;
	if (a->xq && a->ti->vec_dot_gemm && a->T >= MM_GEMM_TOKENS) {
		a->ti->vec_dot_gemm(a->n_in, nr, a->T, &a->y[r0], (size_t)a->n_out, a->w + (size_t)r0 * a->row_bytes,
		                    a->row_bytes, a->xq, a->xq_row_bytes);
	} else if (a->xq && a->ti->vec_dot_rows) {
		/* The task's rows in one call, which decodes a few rows at a time
		 * for several tokens at once and prepares the activations once
		 * for all of them; a row's results are the same bits in any group
		 * (and the one-row dot product's). */
		for (int t = 0; t < a->T; t += SL_DOT_ROWS_TOKENS)
			a->ti->vec_dot_rows(a->n_in, nr, a->T - t < SL_DOT_ROWS_TOKENS ? a->T - t : SL_DOT_ROWS_TOKENS,
			                    &a->y[(size_t)t * a->n_out + r0], (size_t)a->n_out, a->w + (size_t)r0 * a->row_bytes,
			                    a->row_bytes, a->xq + (size_t)t * a->xq_row_bytes, a->xq_row_bytes);
	} else if (a->xq && a->ti->vec_dot_tile && a->T > 1) {
		for (int r = r0; r < r1; r++)
			for (int t = 0; t < a->T; t += SL_DOT_TILE)
				a->ti->vec_dot_tile(a->n_in, a->T - t < SL_DOT_TILE ? a->T - t : SL_DOT_TILE,
				                    &a->y[(size_t)t * a->n_out + r], (size_t)a->n_out,
				                    a->w + (size_t)r * a->row_bytes, a->xq + (size_t)t * a->xq_row_bytes,
				                    a->xq_row_bytes);
	} else if (a->xq) {
		for (int r = r0; r < r1; r++)
			for (int t = 0; t < a->T; t++)
				a->ti->vec_dot(a->n_in, &a->y[(size_t)t * a->n_out + r], a->w + (size_t)r * a->row_bytes,
				               a->xq + (size_t)t * a->xq_row_bytes);
	} else if (a->wtype == SL_DT_F32 || a->wtype == SL_DT_F16 || a->wtype == SL_DT_BF16) {
		sl_gemm(a->y + r0, (size_t)a->n_out, a->x, (size_t)a->n_in, a->T, a->w + (size_t)r0 * a->row_bytes, a->wtype,
		        (size_t)a->n_in, nr, a->n_in, (size_t)a->n_out * a->row_bytes);
	} else {
		float *tile = malloc((size_t)MM_TILE_ROWS * a->n_in * sizeof(float));
		if (!tile)
			abort(); /* some KiB; there is no sensible way on without it */
		for (int rr = r0; rr < r1; rr += MM_TILE_ROWS) {
			int k = r1 - rr < MM_TILE_ROWS ? r1 - rr : MM_TILE_ROWS;
			sl_dtype_rows_to_float(a->wtype, a->w + (size_t)rr * a->row_bytes, tile, k, a->n_in);
			sl_gemm(a->y + rr, (size_t)a->n_out, a->x, (size_t)a->n_in, a->T, tile, SL_DT_F32, (size_t)a->n_in, k,
			        a->n_in, 0);
		}
		free(tile);
	}
	if (a->bias)
		for (int t = 0; t < a->T; t++)
			for (int r = r0; r < r1; r++)
				a->y[(size_t)t * a->n_out + r] += a->bias[r];
}

/* Quantizing the activations, split by tokens across the pool: each row
 * is quantized alone, so the split changes no byte. A prompt's worth is a
 * few percent of a product's time, which would otherwise run on one
 * thread while the others wait. */
#define ACT_TASK_TOKENS 16

typedef struct {
	const float *x;
	char *xq;
	size_t qrow;
	int n_in, T, per;
	void (*quantize)(const float *src, void *dst, int64_t n);
} act_args;

static void act_task(int task, void *p)
{
	const act_args *q = p;
	for (int t = task * q->per; t < q->T && t < (task + 1) * q->per; t++)
		q->quantize(q->x + (size_t)t * q->n_in, q->xq + (size_t)t * q->qrow, q->n_in);
}

/* Fills a's product of x (T rows of n_in) with weight w. Activations are
 * quantized to the type's vec_dot_type into a buffer returned in *owned,
 * unless one of the n_prev products already prepared has them in that
 * type (parts of matmul_parts share them); decoded: the rows meet float
 * inputs (the tile path), never quantized ones. */
static void mm_prepare(mm_args *a, float *y, const float *x, int T, const void *w, int wtype, int n_out, int n_in,
                       const float *bias, const mm_args *prev, int n_prev, bool decoded, char **owned)
{
	*a = (mm_args){y, x, T, w, wtype, sl_type_info_get(wtype), n_out, n_in, bias,
	               sl_dtype_row_bytes(wtype, n_in), NULL, 0};
	*owned = NULL;
	const sl_type_info *qt = a->ti->vec_dot && !decoded ? sl_type_info_get(a->ti->vec_dot_type) : NULL;
	size_t qrow = qt ? sl_dtype_row_bytes(a->ti->vec_dot_type, n_in) : 0;
	if (!qrow)
		return;
	a->xq_row_bytes = qrow;
	for (int i = 0; i < n_prev; i++)
		if (prev[i].xq && prev[i].ti->vec_dot_type == a->ti->vec_dot_type) {
			a->xq = prev[i].xq;
			return;
		}
	char *xq = malloc((size_t)T * qrow);
	if (!xq)
		abort();
	act_args q = {x, xq, qrow, n_in, T, ACT_TASK_TOKENS,
	              qt->from_float_act ? qt->from_float_act : qt->from_float};
	sl_parallel_for((T + ACT_TASK_TOKENS - 1) / ACT_TASK_TOKENS, act_task, &q);
	a->xq = *owned = xq;
}

/* Products of a few tokens go to sl_parallel_rows, each thread streaming
 * a share of the rows from start to end; a prompt's take equal tasks,
 * each large enough to pay for its preparations. */
static bool mm_shared(int T)
{
	return T < MM_GEMM_TOKENS;
}

/* A prompt's equal tasks: task i computes rows start[i] .. start[i+1]-1
 * (room for sl_rows_per_task's four tasks for each of 256 threads, cut at
 * the ends of the parts). */
#define MM_MAX_TASKS (1024 + SL_MATMUL_MAX_PARTS)
typedef struct {
	int n_tasks;
	int start[MM_MAX_TASKS + 1];
} mm_split;

typedef struct {
	mm_args a[SL_MATMUL_MAX_PARTS];
	int n_parts;
	int first[SL_MATMUL_MAX_PARTS + 1]; /* part i is rows first[i] .. first[i+1]-1 of all the parts' rows */
	mm_split split;
} mm_parts_args;

/* Rows g0 .. g1-1 of all the parts' rows, cut at the parts' boundaries. */
static void mm_parts_rows(int g0, int g1, void *p)
{
	const mm_parts_args *pa = p;
	for (int i = 0; i < pa->n_parts; i++) {
		int r0 = g0 > pa->first[i] ? g0 - pa->first[i] : 0;
		int r1 = (g1 < pa->first[i + 1] ? g1 : pa->first[i + 1]) - pa->first[i];
		if (r1 > r0)
			mm_rows(&pa->a[i], r0, r1);
	}
}

static void mm_parts_task(int task, void *p)
{
	const mm_parts_args *pa = p;
	mm_parts_rows(pa->split.start[task], pa->split.start[task + 1], p);
}

/* Runs the products prepared in pa->a (n_parts of them on one input of
 * T tokens and n_in values), their rows split as one product of all their
 * rows would be: in shares of all the parts' rows (sl_parallel_rows), or
 * in equal tasks cut at the parts' ends. Every output is computed by one
 * call of mm_rows as matmul computes it. */
static void mm_run(mm_parts_args *pa, int n_parts, int T, int n_in)
{
	pa->n_parts = n_parts;
	pa->first[0] = 0;
	for (int i = 0; i < n_parts; i++)
		pa->first[i + 1] = pa->first[i] + pa->a[i].n_out;
	int rows = pa->first[n_parts];
	double flops = 2.0 * T * rows * (double)n_in;
	if (mm_shared(T)) {
		sl_parallel_rows(rows, flops, mm_parts_rows, pa);
		return;
	}
	int per = sl_rows_per_task(rows, flops);
	mm_split *sp = &pa->split;
	sp->n_tasks = 0;
	for (int i = 0; i < n_parts && per < rows; i++)
		for (int r = pa->first[i]; r < pa->first[i + 1]; r += per)
			sp->start[sp->n_tasks++] = r;
	if (!sp->n_tasks)
		sp->start[sp->n_tasks++] = 0;
	sp->start[sp->n_tasks] = rows;
	if (sp->n_tasks == 1) /* too small to share: on this thread */
		mm_parts_task(0, pa);
	else
		sl_parallel_for(sp->n_tasks, mm_parts_task, pa);
}

static void matmul_with(float *y, const float *x, int T, const void *w, int wtype, int n_out, int n_in,
                        const float *bias, bool decoded)
{
	mm_parts_args pa;
	char *xq;
	mm_prepare(&pa.a[0], y, x, T, w, wtype, n_out, n_in, bias, NULL, 0, decoded, &xq);
	mm_run(&pa, 1, T, n_in);
	free(xq);
}

/* Parts whose weights share a vec_dot_type share the quantized
 * activations. */
static void cpu_matmul_parts(const sl_matmul_part *parts, int n_parts, const float *x, int T, int n_in)
{
	if (n_parts > SL_MATMUL_MAX_PARTS)
		abort();
	mm_parts_args pa;
	char *xq[SL_MATMUL_MAX_PARTS];
	for (int i = 0; i < n_parts; i++) {
		const sl_matmul_part *p = &parts[i];
		mm_prepare(&pa.a[i], p->y, x, T, p->w, p->wtype, p->n_out, n_in, p->bias, pa.a, i, false, &xq[i]);
	}
	mm_run(&pa, n_parts, T, n_in);
	for (int i = 0; i < n_parts; i++)
		free(xq[i]);
}

static void cpu_matmul(float *y, const float *x, int T, const void *w, int wtype, int n_out, int n_in,
                       const float *bias)
{
	matmul_with(y, x, T, w, wtype, n_out, n_in, bias, false);
}

static void cpu_matmul_decoded(float *y, const float *x, int T, const void *w, int wtype, int n_out, int n_in,
                               const float *bias)
{
	matmul_with(y, x, T, w, wtype, n_out, n_in, bias, true);
}

/* ---- normalization and activations ----------------------------------- */

/* A prompt's per-token operations split by tokens across the pool (a
 * decoding step's single token stays on the calling thread): each token
 * is computed alone, as it would be anyway, so no split changes a bit.
 * Left on one thread they keep the others waiting: some 7% of a prompt's
 * time on the 374M-shaped model, two threads. */
#define ROW_TASK_TOKENS 16

typedef struct {
	void (*run)(const void *ctx, int t0, int t1);
	const void *ctx;
	int T;
} tokens_args;

static void tokens_task(int task, void *p)
{
	const tokens_args *a = p;
	const int t0 = task * ROW_TASK_TOKENS;
	a->run(a->ctx, t0, a->T - t0 < ROW_TASK_TOKENS ? a->T : t0 + ROW_TASK_TOKENS);
}

/* run(ctx, t0, t1) over tokens 0 .. T-1, in tasks of ROW_TASK_TOKENS. */
static void by_tokens(int T, void (*run)(const void *ctx, int t0, int t1), const void *ctx)
{
	if (T < 2 * ROW_TASK_TOKENS) {
		run(ctx, 0, T);
		return;
	}
	tokens_args a = {run, ctx, T};
	sl_parallel_for((T + ROW_TASK_TOKENS - 1) / ROW_TASK_TOKENS, tokens_task, &a);
}

typedef struct {
	float *y;
	const float *x, *w, *b;
	int n;
	float eps;
} norm_args;

static void rmsnorm_rows(const void *p, int t0, int t1)
{
	const norm_args *a = p;
	const int n = a->n;
	for (int t = t0; t < t1; t++) {
		const float *xr = a->x + (size_t)t * n;
		float *yr = a->y + (size_t)t * n;
		float ss = 0.0f;
		for (int i = 0; i < n; i++)
			ss += xr[i] * xr[i];
		ss /= (float)n;
		ss += a->eps;
		ss = 1.0f / sqrtf(ss);
		for (int i = 0; i < n; i++)
			yr[i] = a->w[i] * (ss * xr[i]);
	}
}

static void cpu_rmsnorm(float *y, const float *x, const float *w, int T, int n, float eps)
{
	norm_args a = {y, x, w, NULL, n, eps};
	by_tokens(T, rmsnorm_rows, &a);
}

static void layernorm_rows(const void *p, int t0, int t1)
{
	const norm_args *a = p;
	const int n = a->n;
	for (int t = t0; t < t1; t++) {
		const float *xr = a->x + (size_t)t * n;
		float *yr = a->y + (size_t)t * n;
		double mean = 0, var = 0;
		for (int i = 0; i < n; i++)
			mean += xr[i];
		mean /= n;
		for (int i = 0; i < n; i++)
			var += (xr[i] - mean) * (xr[i] - mean);
		var /= n;
		float inv = (float)(1.0 / sqrt(var + a->eps));
		for (int i = 0; i < n; i++)
			yr[i] = (float)(xr[i] - mean) * inv * a->w[i] + (a->b ? a->b[i] : 0.0f);
	}
}

static void cpu_layernorm(float *y, const float *x, const float *w, const float *b, int T, int n, float eps)
{
	norm_args a = {y, x, w, b, n, eps};
	by_tokens(T, layernorm_rows, &a);
}

/* The elementwise activations take their elements in runs of 4096 (a
 * multiple of every vector width), each element computed alone. */
#define ACT_RUN 4096

typedef struct {
	float *gate;
	const float *up;
	size_t n;
} act_run_args;

static void swiglu_runs(const void *p, int r0, int r1)
{
	const act_run_args *a = p;
	size_t i0 = (size_t)r0 * ACT_RUN, i1 = (size_t)r1 * ACT_RUN < a->n ? (size_t)r1 * ACT_RUN : a->n;
	sl_swiglu(a->gate + i0, a->up + i0, i1 - i0);
}

static void cpu_swiglu(float *gate, const float *up, size_t n)
{
	act_run_args a = {gate, up, n};
	size_t runs = (n + ACT_RUN - 1) / ACT_RUN;
	if (runs > INT_MAX / 2) {
		sl_swiglu(gate, up, n);
		return;
	}
	/* runs stand in for tokens: tasks of ROW_TASK_TOKENS runs */
	by_tokens((int)runs, swiglu_runs, &a);
}

static void gelu_span(float *x, size_t i0, size_t i1)
{
	const float c = 0.7978845608028654f; /* sqrt(2/pi) */
	for (size_t i = i0; i < i1; i++) {
		float v = x[i];
		x[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
	}
}

static void gelu_runs(const void *p, int r0, int r1)
{
	const act_run_args *a = p;
	gelu_span(a->gate, (size_t)r0 * ACT_RUN, (size_t)r1 * ACT_RUN < a->n ? (size_t)r1 * ACT_RUN : a->n);
}

static void cpu_gelu(float *x, size_t n)
{
	act_run_args a = {x, NULL, n};
	size_t runs = (n + ACT_RUN - 1) / ACT_RUN;
	if (runs > INT_MAX / 2) {
		gelu_span(x, 0, n);
		return;
	}
	by_tokens((int)runs, gelu_runs, &a);
}

/* ---- rotary position embedding --------------------------------------- */

typedef struct {
	float *x;
	int n_heads, head_dim, rot_dim, pos0;
	float theta;
	sl_rope_style style;
} rope_args;

static void rope_rows(const void *p, int t0, int t1)
{
	const rope_args *a = p;
	int half = a->rot_dim / 2;
	float *cs = malloc((size_t)half * 2 * sizeof(float));
	if (!cs)
		abort();
	for (int t = t0; t < t1; t++) {
		float pos = (float)(a->pos0 + t);
		for (int i = 0; i < half; i++) {
			float freq = 1.0f / powf(a->theta, (float)(2 * i) / (float)a->rot_dim);
			float val = pos * freq;
			cs[2 * i] = cosf(val);
			cs[2 * i + 1] = sinf(val);
		}
		for (int h = 0; h < a->n_heads; h++) {
			float *v = a->x + (size_t)t * a->n_heads * a->head_dim + (size_t)h * a->head_dim;
			for (int i = 0; i < half; i++) {
				int ia = a->style == SL_ROPE_NORM ? 2 * i : i;
				int ib = a->style == SL_ROPE_NORM ? 2 * i + 1 : i + half;
				float c = cs[2 * i], s = cs[2 * i + 1];
				float x0 = v[ia], x1 = v[ib];
				v[ia] = x0 * c - x1 * s;
				v[ib] = x0 * s + x1 * c;
			}
		}
	}
	free(cs);
}

static void cpu_rope(float *x, int T, int n_heads, int head_dim, int rot_dim, int pos0, float theta,
                     sl_rope_style style)
{
	if (style == SL_ROPE_NONE)
		return;
	rope_args a = {x, n_heads, head_dim, rot_dim, pos0, theta, style};
	by_tokens(T, rope_rows, &a);
}

/* ---- attention ------------------------------------------------------- */

#define ATT_TILE 32   /* queries per task */
#define ATT_KEYS 32   /* cache rows a task reads for each of its heads in turn */

typedef struct {
	float *out;
	const float *q;
	const char *k, *v;
	int type;
	const sl_type_info *ti;
	size_t row_bytes;
	int T, pos0, n_heads, n_kv_heads, head_dim;
	int n_tiles;
	int group; /* heads per task */
} att_args;

/* A task's room for converting one tile of one head's cache rows. */
typedef struct {
	float *rows;   /* [ATT_KEYS][head_dim] */
	float *span;   /* the blocks covering one row's head */
	uint8_t *pack; /* a row header and those blocks */
} att_scratch;

/* Values i0 .. i0+n-1 of cache rows j0 .. j0+nr-1 as F32 rows of n, *ld
 * floats apart: an F32 cache in place, any other type converted into
 * sc->rows. A head need not start at a block boundary (heads of 8 values
 * in blocks of 16): the blocks covering it are converted, behind a copy
 * of the row header when the type has one, and the head cut out of them.
 * Every value is the one converting the whole row gives, since a header
 * scales every block of its row alike. */
static const float *kv_rows(const att_args *a, const char *cache, int j0, int nr, int i0, int n,
                            const att_scratch *sc, size_t *ld)
{
	if (a->type == SL_DT_F32) {
		*ld = a->row_bytes / sizeof(float);
		return (const float *)(cache + (size_t)j0 * a->row_bytes) + i0;
	}
	const sl_type_info *ti = a->ti;
	int bs = ti->block_size, b0 = i0 / bs, nb = (i0 + n + bs - 1) / bs - b0, off = i0 - b0 * bs;
	size_t hdr = ti->row_header, blocks = (size_t)nb * ti->block_bytes;
	for (int r = 0; r < nr; r++) {
		const char *row = cache + (size_t)(j0 + r) * a->row_bytes;
		const void *src = row + hdr + (size_t)b0 * ti->block_bytes;
		if (hdr) {
			memcpy(sc->pack, row, hdr);
			memcpy(sc->pack + hdr, src, blocks);
			src = sc->pack;
		}
		ti->to_float(src, sc->span, (int64_t)nb * bs);
		memcpy(sc->rows + (size_t)r * n, sc->span + off, (size_t)n * sizeof(float));
	}
	*ld = (size_t)n;
	return sc->rows;
}

/* A group of neighbouring heads over a tile of queries, ATT_KEYS cache
 * rows at a time: each head's share of those rows in turn, so that the
 * task reads the group's part of each row, one run of bytes, while the
 * rows are at hand. Each query's scores are batch-invariant dot products
 * (gemm.c) and its output sums the values in order of position, so a
 * query's result does not depend on the tile, the group or the batch it
 * is computed in, nor on the blocks of cache rows read for it. */
static void att_task(int task, void *p)
{
	const att_args *a = p;
	int g = task / a->n_tiles, tile = task % a->n_tiles;
	int h0 = g * a->group, h1 = h0 + a->group < a->n_heads ? h0 + a->group : a->n_heads;
	int t0 = tile * ATT_TILE, t1 = t0 + ATT_TILE < a->T ? t0 + ATT_TILE : a->T;
	int tq = t1 - t0;
	int L = a->pos0 + t1; /* keys the last query of the tile sees */
	int qs = a->n_heads * a->head_dim, hd = a->head_dim;
	int gs = a->n_heads / a->n_kv_heads;
	float *S = malloc((size_t)(h1 - h0) * tq * L * sizeof(float));
	att_scratch sc = {NULL, NULL, NULL};
	if (a->type != SL_DT_F32) {
		int bs = a->ti->block_size, span = (hd / bs + 2) * bs;
		sc.rows = malloc((size_t)ATT_KEYS * hd * sizeof(float));
		sc.span = malloc((size_t)span * sizeof(float));
		sc.pack = malloc(a->ti->row_header + (size_t)(span / bs) * a->ti->block_bytes);
		if (!sc.rows || !sc.span || !sc.pack)
			abort();
	}
	if (!S)
		abort();
	float scale = 1.0f / sqrtf((float)hd);
	size_t ld;
	for (int j0 = 0; j0 < L; j0 += ATT_KEYS) {
		int nr = L - j0 < ATT_KEYS ? L - j0 : ATT_KEYS;
		for (int h = h0; h < h1; h++) {
			const float *Q = a->q + (size_t)t0 * qs + (size_t)h * hd;
			const float *K = kv_rows(a, a->k, j0, nr, h / gs * hd, hd, &sc, &ld);
			sl_gemm(S + (size_t)(h - h0) * tq * L + j0, (size_t)L, Q, (size_t)qs, tq, K, SL_DT_F32, ld, nr, hd, 0);
		}
	}
	for (int h = h0; h < h1; h++)
		for (int t = 0; t < tq; t++) {
			float *row = S + (size_t)(h - h0) * tq * L + (size_t)t * L;
			int n = a->pos0 + t0 + t + 1; /* causal: keys 0 .. own position */
			sl_softmax_scaled(row, n, scale);
			float *out = a->out + (size_t)(t0 + t) * qs + (size_t)h * hd;
			for (int d = 0; d < hd; d++)
				out[d] = 0.0f;
		}
	for (int j0 = 0; j0 < L; j0 += ATT_KEYS) {
		int nr = L - j0 < ATT_KEYS ? L - j0 : ATT_KEYS;
		int lim[ATT_TILE];
		for (int t = 0; t < tq; t++) {
			int n = a->pos0 + t0 + t + 1, j1 = j0 + nr < n ? j0 + nr : n;
			lim[t] = j1 > j0 ? j1 : j0;
		}
		for (int h = h0; h < h1; h++) {
			const float *V = kv_rows(a, a->v, j0, nr, h / gs * hd, hd, &sc, &ld);
			sl_gemm_acc_rows(a->out + (size_t)t0 * qs + (size_t)h * hd, (size_t)qs, S + (size_t)(h - h0) * tq * L,
			                 (size_t)L, lim, tq, V, ld, j0, hd);
		}
	}
	free(S);
	free(sc.rows);
	free(sc.span);
	free(sc.pack);
}

static void cpu_attention(float *out, const float *q, const void *k_cache, const void *v_cache, int kv_type,
                          size_t kv_row_bytes, int T, int pos0, int n_heads, int n_kv_heads, int head_dim)
{
	att_args a = {out, q, k_cache, v_cache, kv_type, sl_type_info_get(kv_type), kv_row_bytes, T, pos0, n_heads,
	              n_kv_heads, head_dim, (T + ATT_TILE - 1) / ATT_TILE, 1};
	/* Fewer tiles than threads (decoding, a few drafted tokens): a task
	 * per thread and tile, each a run of heads, in place of a task per
	 * head, whose share of a row is a few lines in a page of its own,
	 * where the hardware's prefetchers do not follow. 374M-shaped F32
	 * cache of 128 positions, 24 blocks, two threads: 2.0 ms a token
	 * with a task per head (rows 64 at a time), 1.3 with a task per
	 * eight (32 at a time). */
	int threads = sl_kernels_threads();
	if (a.n_tiles < threads) {
		int groups = threads / a.n_tiles;
		a.group = (n_heads + groups - 1) / groups;
	}
	sl_parallel_for((n_heads + a.group - 1) / a.group * a.n_tiles, att_task, &a);
}

static const sl_kernels cpu = {
	.name = "cpu",
	.matmul = cpu_matmul,
	.matmul_parts = cpu_matmul_parts,
	.matmul_decoded = cpu_matmul_decoded,
	.matmul_w8a8 = sl_cpu_matmul_w8a8,
	.rmsnorm = cpu_rmsnorm,
	.layernorm = cpu_layernorm,
	.rope = cpu_rope,
	.attention = cpu_attention,
	.swiglu = cpu_swiglu,
	.gelu = cpu_gelu,
};

const sl_kernels *sl_kernels_cpu(void)
{
	return &cpu;
}
