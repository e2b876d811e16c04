/* AWQ (Lin et al. 2023): activation-aware scales. Input channels that
 * carry large activations matter more, so weights are multiplied by
 * s_j = a_j^alpha (a_j = mean |x_j|) before rounding and the input divided
 * by s (folded into the previous operation), with alpha searched on a grid
 * for the least output error; then each block's clipping range is
 * searched the same way. Output errors are measured on the calibration
 * inputs through H = X^T X / n: ||dW X^T||^2 = sum over rows of d H d^T. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"

static inline float clampf(float v, float lo, float hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* sum over rows of d H d^T, d = A - B (rows x n); T is rows x n scratch. */
static double output_sq_error(const float *A, const float *B, int rows, int n, const float *H, float *D, float *T)
{
	for (size_t i = 0; i < (size_t)rows * n; i++)
		D[i] = A[i] - B[i];
	cblas_ssymm(CblasRowMajor, CblasRight, CblasLower, rows, n, 1.0f, H, n, D, n, 0.0f, T, n);
	double s = 0;
	for (size_t i = 0; i < (size_t)rows * n; i++)
		s += (double)D[i] * T[i];
	return s;
}

/* The scale search for modules sharing one input of n channels: s =
 * mean_abs^alpha / sqrt(max * min) for alpha = 0, 1/grid, ..., keeping the
 * alpha whose rounded, unscaled weights Q(W diag(s)) diag(s)^-1 have the
 * least output error summed over the members. alpha = 0 (s = 1, plain
 * rounding) is among the candidates, so the result is never worse than
 * rounding to nearest on H. */
static sl_status search(const sl_scale_member *mem, int n_mem, int n, const double *mean_abs, const float *H, int grid,
                        float *s, double *best_alpha, sl_error *err)
{
	if (grid <= 0)
		grid = 20;
	int max_rows = 0;
	for (int k = 0; k < n_mem; k++)
		if (mem[k].rows > max_rows)
			max_rows = mem[k].rows;
	size_t sz = (size_t)max_rows * n;
	float *Ws = sl_malloc_array(sz, sizeof *Ws), *D = sl_malloc_array(sz, sizeof *D);
	float *T = sl_malloc_array(sz, sizeof *T), *cand = sl_malloc_array((size_t)n, sizeof *cand);
	sl_status st = SL_OK;
	if (!Ws || !D || !T || !cand) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory searching scales for %d inputs", n);
		goto done;
	}
	double best = INFINITY;
	*best_alpha = 0;
	for (int j = 0; j < n; j++)
		s[j] = 1.0f;
	for (int gi = 0; gi < grid; gi++) {
		double alpha = (double)gi / grid;
		double lo = INFINITY, hi = 0;
		for (int j = 0; j < n; j++) {
			double a = mean_abs[j] > 1e-4 ? mean_abs[j] : 1e-4;
			cand[j] = (float)pow(a, alpha);
			lo = fmin(lo, cand[j]);
			hi = fmax(hi, cand[j]);
		}
		/* Centred on 1 so that the scaled weights keep their magnitude. */
		float norm = (float)sqrt(lo * hi);
		for (int j = 0; j < n; j++)
			cand[j] /= norm;
		double e = 0;
		for (int k = 0; k < n_mem && !st; k++) {
			const float *W = mem[k].W;
			int rows = mem[k].rows;
			for (int r = 0; r < rows; r++)
				for (int j = 0; j < n; j++)
					Ws[(size_t)r * n + j] = W[(size_t)r * n + j] * cand[j];
			if ((st = sl_roundtrip(mem[k].type, Ws, Ws, rows, n, err)))
				break;
			for (int r = 0; r < rows; r++)
				for (int j = 0; j < n; j++)
					Ws[(size_t)r * n + j] /= cand[j];
			e += output_sq_error(Ws, W, rows, n, H, D, T);
		}
		if (st)
			goto done;
		if (e < best) {
			best = e;
			*best_alpha = alpha;
			memcpy(s, cand, (size_t)n * sizeof *s);
		}
	}
done:
	free(Ws);
	free(D);
	free(T);
	free(cand);
	return st;
}

/* The columns each clipping range covers: a block of the format, or the
 * whole row where the scale is per row; 0 where the scale spans the
 * tensor (clipping one block would move every other block's values). */
static int clip_width(int type, int cols)
{
	const sl_type_info *ti = sl_type_info_get(type);
	if (!ti || ti->scope == SL_SCOPE_TENSOR)
		return 0;
	return ti->scope == SL_SCOPE_ROW ? cols : ti->block_size;
}

/* The clip search: for each row and block of the format (the row for
 * per-row scales), the clipping range [r*min, r*max], r = 1, 1 - 1/grid,
 * ... down to one half, with the least output error on H; W is clipped in
 * place. Formats whose scale spans the tensor are left as they are. */
static sl_status clip(float *W, int rows, int n, int type, const float *H, int grid, sl_error *err)
{
	int B = clip_width(type, n);
	if (B <= 0 || n % B)
		return SL_OK;
	if (grid <= 0)
		grid = 20;
	int steps = grid / 2, nb = n / B; /* shrink the range by at most half, as AWQ does */
	size_t rb = sl_dtype_row_bytes(type, n);
	float *x = sl_malloc_array((size_t)n, sizeof *x), *q = sl_malloc_array((size_t)n, sizeof *q);
	float *lo = sl_malloc_array((size_t)nb, sizeof *lo), *hi = sl_malloc_array((size_t)nb, sizeof *hi);
	float *best_r = sl_malloc_array((size_t)nb, sizeof *best_r);
	double *best = sl_malloc_array((size_t)nb, sizeof *best);
	void *buf = sl_malloc(rb);
	sl_status st = SL_OK;
	if (!x || !q || !lo || !hi || !best_r || !best || !buf) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for the clip search");
		goto done;
	}
	for (int r = 0; r < rows; r++) {
		float *w = W + (size_t)r * n;
		for (int b = 0; b < nb; b++) {
			lo[b] = hi[b] = w[b * B];
			for (int j = 1; j < B; j++) {
				float v = w[b * B + j];
				lo[b] = v < lo[b] ? v : lo[b];
				hi[b] = v > hi[b] ? v : hi[b];
			}
			best[b] = INFINITY;
		}
		/* Every block of the row tries the same ratio in one quantizer call. */
		for (int i = 0; i < steps; i++) {
			float ratio = 1.0f - (float)i / grid;
			for (int c = 0; c < n; c++)
				x[c] = clampf(w[c], ratio * lo[c / B], ratio * hi[c / B]);
			sl_dtype_rows_from_float(type, x, buf, 1, n);
			sl_dtype_rows_to_float(type, buf, q, 1, n);
			for (int c = 0; c < n; c++)
				q[c] -= w[c];
			for (int b = 0; b < nb; b++) {
				const float *d = q + b * B;
				double e = 0;
				for (int j = 0; j < B; j++) {
					const float *h = H + (size_t)(b * B + j) * n + b * B;
					float s = 0;
					for (int k = 0; k < B; k++)
						s += h[k] * d[k];
					e += (double)d[j] * s;
				}
				if (e < best[b]) {
					best[b] = e;
					best_r[b] = ratio;
				}
			}
		}
		for (int c = 0; c < n; c++)
			w[c] = clampf(w[c], best_r[c / B] * lo[c / B], best_r[c / B] * hi[c / B]);
	}
done:
	free(x);
	free(q);
	free(lo);
	free(hi);
	free(best_r);
	free(best);
	free(buf);
	return st;
}

static const sl_param_spec params[] = {
	{"grid", 1, 10000, 20, true, false, "points of the scale and clip searches", false},
};

static const char name[] = "awq";

/* Members that asked for this method (all of them when none says). */
static bool asks(const sl_scale_member *m)
{
	return !m->plan || !strcmp(m->plan->method, name);
}

static sl_status awq_scales(sl_scale_job *j, float *s, sl_error *err)
{
	if (!j->H)
		return sl_errorf(err, SL_ERR_ARG, "%s needs calibration Hessians", name);
	sl_scale_member *mem = sl_malloc_array((size_t)j->n_mem, sizeof *mem);
	if (!mem)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the scales of a %d-wide input", j->n);
	int n_mem = 0, grid = (int)params[0].def;
	for (int k = 0; k < j->n_mem; k++)
		if (asks(&j->mem[k])) {
			mem[n_mem++] = j->mem[k];
			if (j->mem[k].plan)
				grid = (int)sl_plan_value(j->mem[k].plan, &params[0]);
		}
	sl_status st = search(mem, n_mem, j->n, j->mean_abs, j->H, grid, s, &j->chosen, err);
	free(mem);
	return st;
}

static sl_status awq_refine(sl_matrix *m, sl_error *err)
{
	return clip(m->W, m->rows, m->cols, m->type, m->st->hessian, (int)sl_plan_value(m->plan, &params[0]), err);
}

static const sl_card card_awq = {
	.title = "AWQ: activation-aware scaling",
	.what = "Input channels that carry large activations matter most: scales them up in the weights (and down in "
	        "what feeds them) before rounding, so their weights round more finely. The scales fold into the "
	        "preceding norm or layer, so nothing changes at run time.",
	.formula = "W' = Q(W diag(s)) diag(s)^-1, s = mean|x|^alpha per input channel, alpha chosen on a grid of 20 to "
	           "minimize ||Q(W diag(s)) diag(s)^-1 X - W X||^2.",
	.watch = "Layer: press a to gather activations and see the few large channels; Heatmap or Evaluate: awq "
	         "against rounding at 4 bits and below.",
	.pitfall = "The modules that read one input (q, k and v; gate and up) share its scales: one search serves them "
	           "all, so a module can do worse alone than rounding.",
	.paper = "Lin et al. 2024, AWQ: Activation-aware Weight Quantization for On-Device LLM Compression and "
	         "Acceleration (MLSys).",
};

const sl_method sl_method_awq = {
	.card = &card_awq,
	.name = name,
	.kind = SL_METHOD_QUANT,
	.needs = SL_NEEDS_STATS | SL_NEEDS_HESSIAN,
	.params = params,
	.n_params = 1,
	.summary = "activation-aware scales",
	.scales = awq_scales,
	.refine = awq_refine,
};
