/* The fast training kernels: matrix products and attention through
 * OpenBLAS (one thread each) split into tiles on the pool, the row-level
 * operations of train-rows.h over slices. Tiles have fixed sizes, so the
 * same floating-point operations happen in the same order whatever the
 * number of threads: training is bitwise repeatable across thread counts. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train-rows.h"

/* Tile sizes: large enough for sgemm to run near its peak (its packing
 * costs less per product on 256 x 256 tiles than on 128 x 128 ones), small
 * enough that a batch yields several tasks per core. A weight gradient's
 * tile sums over every token of the batch, so it is large already at 128. */
#define TILE_ROWS 256 /* token rows */
#define TILE_COLS 256 /* output or input features */
#define DW_TILE 128   /* a weight gradient's rows and columns */
#define ATT_ROWS 64   /* query rows per attention tile */
#define ROW_SLICE 16  /* rows per task for row-level operations */
#define ELEM_SLICE (1 << 14)

static int ceil_div(long a, long b)
{
	return (int)((a + b - 1) / b);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		abort(); /* tile scratch of at most a few MiB; there is no sensible way on without it */
	return p;
}

/* ---- matrix products ---------------------------------------------------- */

typedef struct {
	float *y, *dx, *dw, *db;
	const float *x, *w, *b, *dy;
	int T, n_out, n_in;
	int nc_a;        /* feature tiles per token tile of y or dx */
	int n_first;     /* the backward's weight-gradient tasks; the rest compute dx */
} mm_args;

static void mm_fwd_task(int task, void *p)
{
	const mm_args *a = p;
	int t0 = task / a->nc_a * TILE_ROWS, o0 = task % a->nc_a * TILE_COLS;
	int mt = a->T - t0 < TILE_ROWS ? a->T - t0 : TILE_ROWS;
	int no = a->n_out - o0 < TILE_COLS ? a->n_out - o0 : TILE_COLS;
	float *y = a->y + (size_t)t0 * a->n_out + o0;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mt, no, a->n_in, 1.0f, a->x + (size_t)t0 * a->n_in,
	            a->n_in, a->w + (size_t)o0 * a->n_in, a->n_in, 0.0f, y, a->n_out);
	if (a->b)
		for (int t = 0; t < mt; t++)
			for (int o = 0; o < no; o++)
				y[(size_t)t * a->n_out + o] += a->b[o0 + o];
}

static void cpu_matmul(float *y, const float *x, const float *w, const float *b, int T, int n_out, int n_in)
{
	mm_args a = {.y = y, .x = x, .w = w, .b = b, .T = T, .n_out = n_out, .n_in = n_in,
	             .nc_a = ceil_div(n_out, TILE_COLS)};
	sl_parallel_for(ceil_div(T, TILE_ROWS) * a.nc_a, mm_fwd_task, &a);
}

/* The weight gradient's tiles come first: each sums over every token, the
 * largest tasks, so the smaller dx tiles fill in behind them. */
static void mm_bwd_task(int task, void *p)
{
	const mm_args *a = p;
	if (task >= a->n_first) { /* dx tile += dy W */
		task -= a->n_first;
		int t0 = task / a->nc_a * TILE_ROWS, i0 = task % a->nc_a * TILE_COLS;
		int mt = a->T - t0 < TILE_ROWS ? a->T - t0 : TILE_ROWS;
		int ni = a->n_in - i0 < TILE_COLS ? a->n_in - i0 : TILE_COLS;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mt, ni, a->n_out, 1.0f,
		            a->dy + (size_t)t0 * a->n_out, a->n_out, a->w + i0, a->n_in, 1.0f,
		            a->dx + (size_t)t0 * a->n_in + i0, a->n_in);
		return;
	}
	/* dw tile += dy^T x over all T rows, and db with the first column tile */
	int nc = ceil_div(a->n_in, DW_TILE);
	int o0 = task / nc * DW_TILE, i0 = task % nc * DW_TILE;
	int no = a->n_out - o0 < DW_TILE ? a->n_out - o0 : DW_TILE;
	int ni = a->n_in - i0 < DW_TILE ? a->n_in - i0 : DW_TILE;
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, ni, a->T, 1.0f, a->dy + o0, a->n_out,
	            a->x + i0, a->n_in, 1.0f, a->dw + (size_t)o0 * a->n_in + i0, a->n_in);
	if (a->db && i0 == 0)
		for (int o = o0; o < o0 + no; o++) {
			double s = 0;
			for (int t = 0; t < a->T; t++)
				s += a->dy[(size_t)t * a->n_out + o];
			a->db[o] += (float)s;
		}
}

static void cpu_matmul_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                int T, int n_out, int n_in)
{
	mm_args a = {.dx = dx, .dw = dw, .db = db, .x = x, .w = w, .dy = dy, .T = T, .n_out = n_out,
	             .n_in = n_in, .nc_a = ceil_div(n_in, TILE_COLS)};
	a.n_first = dw ? ceil_div(n_out, DW_TILE) * ceil_div(n_in, DW_TILE) : 0;
	int n_dx = dx ? ceil_div(T, TILE_ROWS) * a.nc_a : 0;
	sl_parallel_for(a.n_first + n_dx, mm_bwd_task, &a);
	for (int o = 0; !dw && db && o < n_out; o++) {
		double s = 0;
		for (int t = 0; t < T; t++)
			s += dy[(size_t)t * n_out + o];
		db[o] += (float)s;
	}
}

/* ---- row-level operations on slices -------------------------------------- */

typedef struct {
	float *y, *mean, *rstd, *dx, *dw, *db, *x_rw;
	const float *x, *w, *b, *dy, *mean_in, *rstd_in, *cs;
	int T, n, n_row_tasks;
	float eps;
	int n_heads, head_dim, rot_dim, Tseq;
	sl_rope_style style;
	bool inverse;
} rows_args;

static void rms_task(int task, void *p)
{
	const rows_args *a = p;
	int t0 = task * ROW_SLICE, t1 = t0 + ROW_SLICE < a->T ? t0 + ROW_SLICE : a->T;
	sl_tr_rmsnorm_rows(a->y, a->rstd, a->x, a->w, t0, t1, a->n, a->eps);
}

static void cpu_rmsnorm(float *y, float *rstd, const float *x, const float *w, int T, int n, float eps)
{
	rows_args a = {.y = y, .rstd = rstd, .x = x, .w = w, .T = T, .n = n, .eps = eps};
	sl_parallel_for(ceil_div(T, ROW_SLICE), rms_task, &a);
}

static void rms_bwd_task(int task, void *p)
{
	const rows_args *a = p;
	if (task < a->n_row_tasks) {
		int t0 = task * ROW_SLICE, t1 = t0 + ROW_SLICE < a->T ? t0 + ROW_SLICE : a->T;
		sl_tr_rmsnorm_dx_rows(a->dx, a->dy, a->x, a->w, a->rstd_in, t0, t1, a->n);
	} else {
		int c0 = (task - a->n_row_tasks) * ROW_SLICE, c1 = c0 + ROW_SLICE < a->n ? c0 + ROW_SLICE : a->n;
		sl_tr_rmsnorm_dw_cols(a->dw, a->dy, a->x, a->rstd_in, a->T, a->n, c0, c1);
	}
}

static void cpu_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                                 const float *rstd, int T, int n)
{
	rows_args a = {.dx = dx, .dw = dw, .dy = dy, .x = x, .w = w, .rstd_in = rstd, .T = T, .n = n,
	               .n_row_tasks = ceil_div(T, ROW_SLICE)};
	sl_parallel_for(a.n_row_tasks + (dw ? ceil_div(n, ROW_SLICE) : 0), rms_bwd_task, &a);
}

static void ln_task(int task, void *p)
{
	const rows_args *a = p;
	int t0 = task * ROW_SLICE, t1 = t0 + ROW_SLICE < a->T ? t0 + ROW_SLICE : a->T;
	sl_tr_layernorm_rows(a->y, a->mean, a->rstd, a->x, a->w, a->b, t0, t1, a->n, a->eps);
}

static void cpu_layernorm(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int T,
                          int n, float eps)
{
	rows_args a = {.y = y, .mean = mean, .rstd = rstd, .x = x, .w = w, .b = b, .T = T, .n = n, .eps = eps};
	sl_parallel_for(ceil_div(T, ROW_SLICE), ln_task, &a);
}

static void ln_bwd_task(int task, void *p)
{
	const rows_args *a = p;
	if (task < a->n_row_tasks) {
		int t0 = task * ROW_SLICE, t1 = t0 + ROW_SLICE < a->T ? t0 + ROW_SLICE : a->T;
		sl_tr_layernorm_dx_rows(a->dx, a->dy, a->x, a->w, a->mean_in, a->rstd_in, t0, t1, a->n);
	} else {
		int c0 = (task - a->n_row_tasks) * ROW_SLICE, c1 = c0 + ROW_SLICE < a->n ? c0 + ROW_SLICE : a->n;
		sl_tr_layernorm_dwb_cols(a->dw, a->db, a->dy, a->x, a->mean_in, a->rstd_in, a->T, a->n, c0, c1);
	}
}

static void cpu_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                   const float *mean, const float *rstd, int T, int n)
{
	rows_args a = {.dx = dx, .dw = dw, .db = db, .dy = dy, .x = x, .w = w, .mean_in = mean, .rstd_in = rstd,
	               .T = T, .n = n, .n_row_tasks = ceil_div(T, ROW_SLICE)};
	sl_parallel_for(a.n_row_tasks + (dw || db ? ceil_div(n, ROW_SLICE) : 0), ln_bwd_task, &a);
}

static void rope_task(int task, void *p)
{
	const rows_args *a = p;
	int r0 = task * ROW_SLICE, r1 = r0 + ROW_SLICE < a->T ? r0 + ROW_SLICE : a->T;
	sl_tr_rope_rows(a->x_rw, a->cs, r0, r1, a->Tseq, a->n_heads, a->head_dim, a->rot_dim, a->style,
	                a->inverse);
}

static void cpu_rope(float *x, int B, int T, int n_heads, int head_dim, int rot_dim, float theta,
                     sl_rope_style style, bool inverse)
{
	if (style == SL_ROPE_NONE)
		return;
	float *cs = xmalloc((size_t)T * rot_dim * sizeof(float));
	sl_tr_rope_table(cs, T, rot_dim, theta);
	rows_args a = {.x_rw = x, .cs = cs, .T = B * T, .Tseq = T, .n_heads = n_heads, .head_dim = head_dim,
	               .rot_dim = rot_dim, .style = style, .inverse = inverse};
	sl_parallel_for(ceil_div((long)B * T, ROW_SLICE), rope_task, &a);
	free(cs);
}

typedef struct {
	float *out0, *out1;
	const float *in0, *in1, *in2;
	size_t n;
} elem_args;

static void swiglu_task(int task, void *p)
{
	const elem_args *a = p;
	size_t i0 = (size_t)task * ELEM_SLICE, i1 = i0 + ELEM_SLICE < a->n ? i0 + ELEM_SLICE : a->n;
	sl_tr_swiglu_range(a->out0, a->in0, a->in1, i0, i1);
}

static void cpu_swiglu(float *h, const float *g, const float *u, size_t n)
{
	elem_args a = {.out0 = h, .in0 = g, .in1 = u, .n = n};
	sl_parallel_for(ceil_div((long)n, ELEM_SLICE), swiglu_task, &a);
}

static void swiglu_bwd_task(int task, void *p)
{
	const elem_args *a = p;
	size_t i0 = (size_t)task * ELEM_SLICE, i1 = i0 + ELEM_SLICE < a->n ? i0 + ELEM_SLICE : a->n;
	sl_tr_swiglu_backward_range(a->out0, a->out1, a->in0, a->in1, a->in2, i0, i1);
}

static void cpu_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n)
{
	elem_args a = {.out0 = dg, .out1 = du, .in0 = dh, .in1 = g, .in2 = u, .n = n};
	sl_parallel_for(ceil_div((long)n, ELEM_SLICE), swiglu_bwd_task, &a);
}

static void gelu_task(int task, void *p)
{
	const elem_args *a = p;
	size_t i0 = (size_t)task * ELEM_SLICE, i1 = i0 + ELEM_SLICE < a->n ? i0 + ELEM_SLICE : a->n;
	sl_tr_gelu_range(a->out0, a->in0, i0, i1);
}

static void cpu_gelu(float *y, const float *x, size_t n)
{
	elem_args a = {.out0 = y, .in0 = x, .n = n};
	sl_parallel_for(ceil_div((long)n, ELEM_SLICE), gelu_task, &a);
}

static void gelu_bwd_task(int task, void *p)
{
	const elem_args *a = p;
	size_t i0 = (size_t)task * ELEM_SLICE, i1 = i0 + ELEM_SLICE < a->n ? i0 + ELEM_SLICE : a->n;
	sl_tr_gelu_backward_range(a->out0, a->in0, a->in1, i0, i1);
}

static void cpu_gelu_backward(float *dx, const float *dy, const float *x, size_t n)
{
	elem_args a = {.out0 = dx, .in0 = dy, .in1 = x, .n = n};
	sl_parallel_for(ceil_div((long)n, ELEM_SLICE), gelu_bwd_task, &a);
}

typedef struct {
	float *dtable;
	const float *dx;
	const int32_t *ids;
	int T, n;
} embed_args;

static void embed_task(int task, void *p)
{
	const embed_args *a = p;
	int c0 = task * ROW_SLICE, c1 = c0 + ROW_SLICE < a->n ? c0 + ROW_SLICE : a->n;
	sl_tr_embed_backward_cols(a->dtable, a->dx, a->ids, a->T, a->n, c0, c1);
}

static void cpu_embed_backward(float *dtable, const float *dx, const int32_t *ids, int T, int n)
{
	embed_args a = {dtable, dx, ids, T, n};
	sl_parallel_for(ceil_div(n, ROW_SLICE), embed_task, &a);
}

typedef struct {
	float *loss, *dlogits;
	const float *logits, *teacher;
	const int32_t *targets;
	int T, V;
	sl_loss_kind kind;
	float temperature, ce_weight, scale;
} loss_args;

#define LOSS_SLICE 4

static void loss_task(int task, void *p)
{
	const loss_args *a = p;
	int t0 = task * LOSS_SLICE, t1 = t0 + LOSS_SLICE < a->T ? t0 + LOSS_SLICE : a->T;
	sl_tr_loss_rows(a->loss, a->dlogits, a->logits, a->teacher, a->targets, t0, t1, a->V, a->kind,
	                a->temperature, a->ce_weight, a->scale);
}

static void cpu_loss(float *loss, float *dlogits, const float *logits, const float *teacher,
                     const int32_t *targets, int T, int V, sl_loss_kind kind, float temperature, float ce_weight,
                     float scale)
{
	loss_args a = {loss, dlogits, logits, teacher, targets, T, V, kind, temperature, ce_weight, scale};
	sl_parallel_for(ceil_div(T, LOSS_SLICE), loss_task, &a);
}

typedef struct {
	const float *x;
	size_t n;
	double *part;
} sumsq_args;

static void sumsq_task(int task, void *p)
{
	const sumsq_args *a = p;
	size_t i0 = (size_t)task * ELEM_SLICE, i1 = i0 + ELEM_SLICE < a->n ? i0 + ELEM_SLICE : a->n;
	double s = 0;
	for (size_t i = i0; i < i1; i++)
		s += (double)a->x[i] * a->x[i];
	a->part[task] = s;
}

static double cpu_sumsq(const float *x, size_t n)
{
	int tasks = ceil_div((long)n, ELEM_SLICE);
	sumsq_args a = {x, n, xmalloc((size_t)(tasks > 0 ? tasks : 1) * sizeof(double))};
	sl_parallel_for(tasks, sumsq_task, &a);
	double s = 0;
	for (int i = 0; i < tasks; i++)
		s += a.part[i];
	free(a.part);
	return s;
}

typedef struct {
	float *w, *m, *v;
	const float *g;
	size_t n;
	float grad_scale, lr, beta1, beta2, eps, wd;
	int64_t t;
} adamw_args;

static void adamw_task(int task, void *p)
{
	const adamw_args *a = p;
	size_t i0 = (size_t)task * ELEM_SLICE, i1 = i0 + ELEM_SLICE < a->n ? i0 + ELEM_SLICE : a->n;
	sl_tr_adamw_range(a->w, a->g, a->m, a->v, i0, i1, a->grad_scale, a->lr, a->beta1, a->beta2, a->eps, a->wd,
	                  a->t);
}

static void cpu_adamw(float *w, const float *g, float *m, float *v, size_t n, float grad_scale, float lr,
                      float beta1, float beta2, float eps, float weight_decay, int64_t t)
{
	adamw_args a = {w, m, v, g, n, grad_scale, lr, beta1, beta2, eps, weight_decay, t};
	sl_parallel_for(ceil_div((long)n, ELEM_SLICE), adamw_task, &a);
}

/* ---- attention -------------------------------------------------------------
 * Per sequence and head, query rows in tiles of ATT_ROWS: a tile ending at
 * row t1 needs scores against keys 0 .. t1-1 only. */

typedef struct {
	float *out, *lse, *dq, *dk, *dv;
	const float *q, *k, *v, *o, *dout, *lse_in;
	int B, T, H, Hkv, hd;
} att_args;

/* S[tq][L] = scale * Q_tile K[0:L]^T, then probabilities in place (zero
 * above the diagonal); lse either written (forward) or read (backward). */
static void tile_probs(float *S, const float *Q, int qs, const float *K, int ks, int t0, int tq, int L, int hd,
                       float *lse_out, const float *lse_in)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, L, hd, 1.0f / sqrtf((float)hd), Q, qs, K, ks,
	            0.0f, S, L);
	for (int t = 0; t < tq; t++) {
		float *row = S + (size_t)t * L;
		int n = t0 + t + 1;
		if (lse_in) {
			sl_tr_exp_sum(row, row, n, lse_in[t0 + t], 1.0f);
		} else {
			float mx = sl_tr_max(row, n);
			double sum = sl_tr_exp_sum(row, row, n, mx, 1.0f);
			sl_tr_scale(row, n, (float)(1.0 / sum));
			lse_out[t0 + t] = mx + (float)log(sum);
		}
		memset(row + n, 0, (size_t)(L - n) * sizeof(float));
	}
}

static void att_fwd_task(int task, void *p)
{
	const att_args *a = p;
	int n_tiles = ceil_div(a->T, ATT_ROWS);
	int b = task / (a->H * n_tiles), h = task / n_tiles % a->H, t0 = task % n_tiles * ATT_ROWS;
	int tq = a->T - t0 < ATT_ROWS ? a->T - t0 : ATT_ROWS, L = t0 + tq;
	int kh = h / (a->H / a->Hkv), qs = a->H * a->hd, ks = a->Hkv * a->hd;
	size_t row0 = (size_t)b * a->T;
	const float *K = a->k + row0 * ks + (size_t)kh * a->hd, *V = a->v + row0 * ks + (size_t)kh * a->hd;
	float *S = xmalloc((size_t)tq * L * sizeof(float));
	tile_probs(S, a->q + (row0 + t0) * qs + (size_t)h * a->hd, qs, K, ks, t0, tq, L, a->hd,
	           a->lse + ((size_t)b * a->H + h) * a->T, NULL);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, a->hd, L, 1.0f, S, L, V, ks, 0.0f,
	            a->out + (row0 + t0) * qs + (size_t)h * a->hd, qs);
	free(S);
}

static void cpu_attention(float *out, float *lse, const float *q, const float *k, const float *v, int B, int T,
                          int n_heads, int n_kv_heads, int head_dim)
{
	att_args a = {.out = out, .lse = lse, .q = q, .k = k, .v = v, .B = B, .T = T, .H = n_heads,
	              .Hkv = n_kv_heads, .hd = head_dim};
	sl_parallel_for(B * n_heads * ceil_div(T, ATT_ROWS), att_fwd_task, &a);
}

/* One sequence and one key/value head: every query head of its group and
 * every tile, so dk and dv are summed in one fixed order. */
static void att_bwd_task(int task, void *p)
{
	const att_args *a = p;
	int b = task / a->Hkv, kh = task % a->Hkv, group = a->H / a->Hkv;
	int qs = a->H * a->hd, ks = a->Hkv * a->hd, hd = a->hd;
	size_t row0 = (size_t)b * a->T;
	const float *K = a->k + row0 * ks + (size_t)kh * hd, *V = a->v + row0 * ks + (size_t)kh * hd;
	float *dK = a->dk + row0 * ks + (size_t)kh * hd, *dV = a->dv + row0 * ks + (size_t)kh * hd;
	for (int t = 0; t < a->T; t++) {
		memset(dK + (size_t)t * ks, 0, (size_t)hd * sizeof(float));
		memset(dV + (size_t)t * ks, 0, (size_t)hd * sizeof(float));
	}
	int tile = a->T < ATT_ROWS ? a->T : ATT_ROWS;
	float *P = xmalloc((size_t)tile * a->T * sizeof(float)), *dS = xmalloc((size_t)tile * a->T * sizeof(float));
	const float scale = 1.0f / sqrtf((float)hd);
	for (int h = kh * group; h < (kh + 1) * group; h++) {
		const float *lse = a->lse_in + ((size_t)b * a->H + h) * a->T;
		for (int t0 = 0; t0 < a->T; t0 += ATT_ROWS) {
			int tq = a->T - t0 < ATT_ROWS ? a->T - t0 : ATT_ROWS, L = t0 + tq;
			size_t qoff = (row0 + t0) * qs + (size_t)h * hd;
			const float *Q = a->q + qoff, *dO = a->dout + qoff, *O = a->o + qoff;
			tile_probs(P, Q, qs, K, ks, t0, tq, L, hd, NULL, lse);
			/* dP = dO V^T, then dS = P (dP - rowsum(dO * O)) * scale */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, L, hd, 1.0f, dO, qs, V, ks, 0.0f, dS, L);
			for (int t = 0; t < tq; t++) {
				float D = 0;
				for (int d = 0; d < hd; d++)
					D += dO[(size_t)t * qs + d] * O[(size_t)t * qs + d];
				sl_tr_softmax_grad(dS + (size_t)t * L, P + (size_t)t * L, L, D, scale);
			}
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, hd, L, 1.0f, dS, L, K, ks, 0.0f,
			            a->dq + qoff, qs);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hd, tq, 1.0f, dS, L, Q, qs, 1.0f, dK, ks);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hd, tq, 1.0f, P, L, dO, qs, 1.0f, dV, ks);
		}
	}
	free(P);
	free(dS);
}

static void cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                   const float *k, const float *v, const float *out, const float *lse, int B,
                                   int T, int n_heads, int n_kv_heads, int head_dim)
{
	att_args a = {.dq = dq, .dk = dk, .dv = dv, .q = q, .k = k, .v = v, .o = out, .dout = dout, .lse_in = lse,
	              .B = B, .T = T, .H = n_heads, .Hkv = n_kv_heads, .hd = head_dim};
	sl_parallel_for(B * n_kv_heads, att_bwd_task, &a);
}

static const sl_train_kernels cpu = {
	.name = "cpu",
	.matmul = cpu_matmul,
	.matmul_backward = cpu_matmul_backward,
	.rmsnorm = cpu_rmsnorm,
	.rmsnorm_backward = cpu_rmsnorm_backward,
	.layernorm = cpu_layernorm,
	.layernorm_backward = cpu_layernorm_backward,
	.rope = cpu_rope,
	.attention = cpu_attention,
	.attention_backward = cpu_attention_backward,
	.swiglu = cpu_swiglu,
	.swiglu_backward = cpu_swiglu_backward,
	.gelu = cpu_gelu,
	.gelu_backward = cpu_gelu_backward,
	.embed_backward = cpu_embed_backward,
	.loss = cpu_loss,
	.sumsq = cpu_sumsq,
	.adamw = cpu_adamw,
};

const sl_train_kernels *sl_train_kernels_cpu(void)
{
	return &cpu;
}
