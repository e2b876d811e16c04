/* The transformer forward pass, read top to bottom: embed, blocks, norm,
 * logits. Speed comes from the kernels, not from this file. Three things
 * that compression recipes set change what is computed: the KV cache can
 * hold its rows in a storage format (cfg.kv_type), a module's input can be
 * quantized per token to 8-bit integers (W8A8), and a weight can be two
 * thin factors, multiplied one after the other. */
#include "forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t max_sz(size_t a, size_t b)
{
	return a > b ? a : b;
}

/* The largest rank of the model's factored weights (0: none). */
static int max_rank(const sl_model *m)
{
	int n = sl_model_modules(m, NULL, 0), r = 0;
	sl_module *mods = sl_malloc_array((size_t)(n ? n : 1), sizeof *mods);
	if (!mods)
		return -1;
	sl_model_modules(m, mods, n);
	for (int i = 0; i < n; i++)
		if (sl_tensor_rank(mods[i].w) > r)
			r = sl_tensor_rank(mods[i].w);
	free(mods);
	return r;
}

size_t sl_kv_cache_bytes(const sl_model *m, int kv_type, int n_ctx)
{
	const sl_config *c = &m->cfg;
	if (n_ctx <= 0)
		n_ctx = c->max_seq_len;
	size_t total = 0;
	for (int il = 0; il < c->n_layers; il++) {
		size_t row = sl_dtype_row_bytes(kv_type, (int64_t)m->layers[il].n_kv_heads * c->head_dim);
		if (!row)
			return 0;
		total += 2 * (size_t)n_ctx * row;
	}
	return total;
}

sl_status sl_state_new(const sl_model *m, int n_ctx, sl_state **out, sl_error *err)
{
	*out = NULL;
	const sl_config *c = &m->cfg;
	if (n_ctx <= 0)
		n_ctx = c->max_seq_len;
	if (m->pos_embd && n_ctx > c->max_seq_len)
		return sl_errorf(err, SL_ERR_ARG, "a context of %d positions exceeds the %d learned positions of this model",
		                 n_ctx, c->max_seq_len);
	if (n_ctx > (1 << 20))
		return sl_errorf(err, SL_ERR_ARG, "a context of %d positions is too large", n_ctx);
	sl_state *s = calloc(1, sizeof *s);
	if (!s)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	s->m = m;
	for (int i = 0; i < m->n_tensors; i++)
		if (m->tensors[i] != m->tok_embd || m->tok_embd == m->output)
			s->pass_bytes += m->tensors[i]->nbytes;
	s->K = sl_kernels_cpu();
	s->n_blocks = c->n_layers;
	s->n_ctx = n_ctx;
	s->max_batch = n_ctx < 256 ? n_ctx : 256;
	int L = c->n_layers;
	s->k_off = calloc((size_t)L, sizeof(size_t));
	s->v_off = calloc((size_t)L, sizeof(size_t));
	s->kv_row = calloc((size_t)L, sizeof(size_t));
	s->kv_dim = calloc((size_t)L, sizeof(int));
	if (!s->k_off || !s->v_off || !s->kv_row || !s->kv_dim)
		goto oom;
	size_t total = 0, q_max = 0, hid_max = 0, kv_max = 0;
	bool act_q = false;
	for (int il = 0; il < L; il++) {
		const sl_layer *ly = &m->layers[il];
		s->kv_dim[il] = ly->n_kv_heads * c->head_dim;
		s->kv_row[il] = sl_dtype_row_bytes(c->kv_type, s->kv_dim[il]);
		if (!s->kv_row[il]) {
			sl_state_free(s);
			return sl_errorf(err, SL_ERR_UNSUPPORTED, "the KV cache format %s cannot hold block %d's rows of %d values",
			                 sl_dtype_name(c->kv_type), il, s->kv_dim[il]);
		}
		s->k_off[il] = total;
		total += (size_t)n_ctx * s->kv_row[il];
		s->v_off[il] = total;
		total += (size_t)n_ctx * s->kv_row[il];
		q_max = max_sz(q_max, (size_t)ly->n_heads * c->head_dim);
		hid_max = max_sz(hid_max, (size_t)ly->hidden_dim);
		kv_max = max_sz(kv_max, (size_t)s->kv_dim[il]);
		act_q |= ly->act_int8 != 0;
	}
	s->kv_bytes = total;
	bool packed = c->kv_type != SL_DT_F32;
	size_t B = (size_t)s->max_batch, act_max = max_sz(max_sz(c->dim, q_max), hid_max);
	int rank = max_rank(m);
	if (rank < 0)
		goto oom;
	if (rank)
		s->lr = sl_malloc_array(B * (size_t)rank, sizeof(float));
	/* The state's buffers and the KV cache start on cache lines
	 * (sl_malloc_lines). The float products (kernels/cpu/gemm.c) read a
	 * prompt's activations in place where each row starts on a line, and
	 * otherwise copy them to such rows, into a buffer allocated, faulted
	 * in and freed by each task for each chunk of tokens. Two threads,
	 * pp512, with the copies and without: 374M F32 252-255 and 259-267
	 * tokens/s, F16 245-249 and 254-256, 110M F32 898-921 and 948-953.
	 * The KV cache too: attention's scores read its rows as a product's
	 * weights. */
	s->kv = sl_malloc_lines(total, 1);
	s->x = sl_malloc_lines(B * c->dim, sizeof(float));
	s->xb = sl_malloc_lines(B * max_sz(c->dim, q_max), sizeof(float));
	s->q = sl_malloc_lines(B * q_max, sizeof(float));
	s->att = sl_malloc_lines(B * q_max, sizeof(float));
	s->hb = sl_malloc_lines(B * hid_max, sizeof(float));
	s->hb2 = sl_malloc_lines(B * hid_max, sizeof(float));
	if (c->arch == SL_ARCH_GPT2)
		s->qkv = sl_malloc_lines(B * 3 * (size_t)c->dim, sizeof(float));
	if (act_q) {
		s->xq = sl_malloc_array(B * act_max, sizeof(float));
		s->xq8 = sl_malloc_array(B, act_max);
		s->xd = sl_malloc_array(B, sizeof(float));
	}
	if (packed) {
		s->k_new = sl_malloc_lines(B * kv_max, sizeof(float));
		s->v_new = sl_malloc_lines(B * kv_max, sizeof(float));
	}
	if (!s->kv || !s->x || !s->xb || !s->q || !s->att || !s->hb || !s->hb2 ||
	    (c->arch == SL_ARCH_GPT2 && !s->qkv) || (act_q && (!s->xq || !s->xq8 || !s->xd)) ||
	    (packed && (!s->k_new || !s->v_new)) || (rank && !s->lr))
		goto oom;
	*out = s;
	return SL_OK;
oom:
	sl_state_free(s);
	return sl_errorf(err, SL_ERR_NOMEM, "out of memory for a %d-position KV cache", n_ctx);
}

void sl_state_rewind(sl_state *s, int n)
{
	if (n >= 0 && n < s->n_past)
		s->n_past = n;
}

sl_status sl_state_set_exit(sl_state *s, int n, sl_error *err)
{
	int L = s->m->cfg.n_layers;
	if (n < 0 || n > L)
		return sl_errorf(err, SL_ERR_ARG, "an exit after %d blocks: the model has %d", n, L);
	s->n_blocks = n ? n : L;
	return SL_OK;
}

void sl_state_free(sl_state *s)
{
	if (!s)
		return;
	free(s->k_off);
	free(s->v_off);
	free(s->kv_row);
	free(s->kv_dim);
	free(s->kv);
	free(s->x);
	free(s->xb);
	free(s->q);
	free(s->att);
	free(s->hb);
	free(s->hb2);
	free(s->qkv);
	free(s->xq);
	free(s->xq8);
	free(s->xd);
	free(s->k_new);
	free(s->v_new);
	free(s->lr);
	free(s);
}

void sl_state_reset(sl_state *s)
{
	s->n_past = 0;
}

static void tap(sl_state *s, int il, sl_tap where, float *x, int T, int n)
{
	if (s->tap)
		s->tap(s->tap_ctx, il, where, x, T, n);
}

/* y = x W^T + b; a factored weight W = A B goes through its rank: x B^T,
 * then A, two thin products of the same kernel. */
static void matmul(sl_state *s, float *y, const float *x, int T, const sl_tensor *w, const sl_tensor *b)
{
	const float *bias = b ? b->data : NULL;
	if (w->lr_a) {
		const sl_tensor *fa = w->lr_a, *fb = w->lr_b;
		s->K->matmul(s->lr, x, T, fb->data, fb->type, (int)fb->ne[1], (int)fb->ne[0], NULL);
		s->K->matmul(y, s->lr, T, fa->data, fa->type, (int)fa->ne[1], (int)fa->ne[0], bias);
		return;
	}
	if (w->simulated && s->K->matmul_decoded)
		s->K->matmul_decoded(y, x, T, w->data, w->type, (int)w->ne[1], (int)w->ne[0], bias);
	else
		s->K->matmul(y, x, T, w->data, w->type, (int)w->ne[1], (int)w->ne[0], bias);
}

/* A block's linear module: as matmul, with the input quantized per token
 * to int8 (scale max|x| / 127) when the module is W8A8. Int8 weights then
 * meet the int8 inputs in integer dot products; other weights (floats,
 * factors, other formats) meet the inputs' int8 values as floats. */
static void linear(sl_state *s, const sl_layer *L, sl_module_kind kind, float *y, const float *x, int T,
                   const sl_tensor *w, const sl_tensor *b)
{
	if (L->act_int8 & (1u << kind)) {
		int n = (int)w->ne[0];
		sl_act_i8_quantize(x, T, n, s->xq8, s->xd);
		if (w->type == SL_DT_I8_CH && !w->lr_a && !w->simulated) {
			s->K->matmul_w8a8(y, s->xq8, s->xd, T, w->data, (int)w->ne[1], n, b ? b->data : NULL);
			return;
		}
		for (int t = 0; t < T; t++)
			for (int i = 0; i < n; i++)
				s->xq[(size_t)t * n + i] = s->xd[t] * (float)s->xq8[(size_t)t * n + i];
		x = s->xq;
	}
	matmul(s, y, x, T, w, b);
}

/* Several linear modules of one input (query, key, value; gate, up): one
 * parallel loop for all of them where the kernels have one and every
 * module is a plain product (no W8A8 input, no factors, not simulated),
 * else one product
 * after the other. The outputs are the same bits either way. */
static void linear_parts(sl_state *s, const sl_layer *L, int n, const sl_module_kind *kind, float *const *y,
                         const float *x, int T, const sl_tensor *const *w, const sl_tensor *const *b)
{
	bool fused = s->K->matmul_parts != NULL && n <= SL_MATMUL_MAX_PARTS;
	for (int i = 0; i < n && fused; i++)
		fused = !(L->act_int8 & (1u << kind[i])) && !w[i]->lr_a && !w[i]->simulated && w[i]->ne[0] == w[0]->ne[0];
	if (!fused) {
		for (int i = 0; i < n; i++)
			linear(s, L, kind[i], y[i], x, T, w[i], b[i]);
		return;
	}
	sl_matmul_part parts[SL_MATMUL_MAX_PARTS];
	for (int i = 0; i < n; i++)
		parts[i] = (sl_matmul_part){y[i], w[i]->data, w[i]->type, (int)w[i]->ne[1], b[i] ? b[i]->data : NULL};
	s->K->matmul_parts(parts, n, x, T, (int)w[0]->ne[0]);
}

/* Writes T new cache rows of n values at row pos0 of a cache in the
 * cache's storage format, row by row: a scale spanning the tensor spans
 * one row of the cache, so a row's values do not depend on the rows that
 * share its batch. An F32 cache received them in place. */
static void kv_store(sl_state *s, char *cache, size_t row_bytes, int pos0, const float *rows, int T, int n)
{
	int type = s->m->cfg.kv_type;
	if (type == SL_DT_F32)
		return;
	for (int t = 0; t < T; t++)
		sl_dtype_rows_from_float(type, rows + (size_t)t * n, cache + (size_t)(pos0 + t) * row_bytes, 1, n);
}

static void norm(sl_state *s, float *y, const float *x, int T, const sl_tensor *w, const sl_tensor *b)
{
	const sl_config *c = &s->m->cfg;
	if (c->arch == SL_ARCH_GPT2)
		s->K->layernorm(y, x, w->data, b ? b->data : NULL, T, c->dim, c->norm_eps);
	else
		s->K->rmsnorm(y, x, w->data, T, c->dim, c->norm_eps);
}

static void block(sl_state *s, int il, int T, int pos0)
{
	const sl_config *c = &s->m->cfg;
	const sl_layer *L = &s->m->layers[il];
	const int dim = c->dim, hd = c->head_dim;
	const int q_dim = L->n_heads * hd, kv_dim = s->kv_dim[il];
	const size_t row_bytes = s->kv_row[il];
	char *k_cache = s->kv + s->k_off[il], *v_cache = s->kv + s->v_off[il];
	bool packed = c->kv_type != SL_DT_F32;
	/* New keys and values in F32: in place in an F32 cache, else beside it. */
	float *k_new = packed ? s->k_new : (float *)(k_cache + (size_t)pos0 * row_bytes);
	float *v_new = packed ? s->v_new : (float *)(v_cache + (size_t)pos0 * row_bytes);

	tap(s, il, SL_TAP_BLOCK_IN, s->x, T, dim);
	/* attention */
	norm(s, s->xb, s->x, T, L->attn_norm, L->attn_norm_b);
	tap(s, il, SL_TAP_ATTN_IN, s->xb, T, dim);
	if (L->wqkv) {
		linear(s, L, SL_MOD_ATTN_QKV, s->qkv, s->xb, T, L->wqkv, L->bqkv);
		for (int t = 0; t < T; t++) {
			const float *row = s->qkv + (size_t)t * 3 * dim;
			memcpy(s->q + (size_t)t * q_dim, row, (size_t)dim * sizeof(float));
			memcpy(k_new + (size_t)t * kv_dim, row + dim, (size_t)dim * sizeof(float));
			memcpy(v_new + (size_t)t * kv_dim, row + 2 * dim, (size_t)dim * sizeof(float));
		}
	} else {
		const sl_module_kind kind[] = {SL_MOD_ATTN_Q, SL_MOD_ATTN_K, SL_MOD_ATTN_V};
		float *const y[] = {s->q, k_new, v_new};
		const sl_tensor *const w[] = {L->wq, L->wk, L->wv}, *const b[] = {L->bq, L->bk, L->bv};
		linear_parts(s, L, 3, kind, y, s->xb, T, w, b);
	}
	s->K->rope(s->q, T, L->n_heads, hd, c->rope_dim, pos0, c->rope_theta, c->rope_style);
	s->K->rope(k_new, T, L->n_kv_heads, hd, c->rope_dim, pos0, c->rope_theta, c->rope_style);
	kv_store(s, k_cache, row_bytes, pos0, k_new, T, kv_dim);
	kv_store(s, v_cache, row_bytes, pos0, v_new, T, kv_dim);
	s->K->attention(s->att, s->q, k_cache, v_cache, c->kv_type, row_bytes, T, pos0, L->n_heads, L->n_kv_heads, hd);
	tap(s, il, SL_TAP_ATTN_OUT_IN, s->att, T, q_dim);
	linear(s, L, SL_MOD_ATTN_OUT, s->xb, s->att, T, L->wo, L->bo);
	for (size_t i = 0; i < (size_t)T * dim; i++)
		s->x[i] += s->xb[i];

	/* feed-forward */
	norm(s, s->xb, s->x, T, L->ffn_norm, L->ffn_norm_b);
	tap(s, il, SL_TAP_FFN_IN, s->xb, T, dim);
	size_t nh = (size_t)T * L->hidden_dim;
	if (L->w_gate) {
		const sl_module_kind kind[] = {SL_MOD_FFN_GATE, SL_MOD_FFN_UP};
		float *const y[] = {s->hb, s->hb2};
		const sl_tensor *const w[] = {L->w_gate, L->w_up}, *const b[] = {NULL, L->b_up};
		linear_parts(s, L, 2, kind, y, s->xb, T, w, b);
		s->K->swiglu(s->hb, s->hb2, nh);
	} else {
		linear(s, L, SL_MOD_FFN_UP, s->hb, s->xb, T, L->w_up, L->b_up);
		s->K->gelu(s->hb, nh);
	}
	tap(s, il, SL_TAP_FFN_DOWN_IN, s->hb, T, L->hidden_dim);
	linear(s, L, SL_MOD_FFN_DOWN, s->xb, s->hb, T, L->w_down, L->b_down);
	for (size_t i = 0; i < (size_t)T * dim; i++)
		s->x[i] += s->xb[i];
	tap(s, il, SL_TAP_BLOCK_OUT, s->x, T, dim);
}

static sl_status check_room(const sl_state *s, int n, sl_error *err)
{
	if (n > s->n_ctx - s->n_past)
		return sl_errorf(err, SL_ERR_ARG,
		                 "the context is full: %d positions used, %d more asked for, %d available",
		                 s->n_past, n, s->n_ctx);
	return SL_OK;
}

/* Runs blocks first.. on the T rows in s->x at the next positions, then the
 * head for the rows at or after logits_from (relative to b0, the index of
 * the first of these rows in the caller's sequence). */
static void run_from(sl_state *s, int first, int T, int b0, float *logits, int logits_from)
{
	const sl_model *m = s->m;
	const sl_config *c = &m->cfg;
	int pos0 = s->n_past;
	for (int il = first; il < s->n_blocks; il++)
		block(s, il, T, pos0);
	s->n_past += T;
	/* Only the rows whose predictions were asked for reach the head. */
	int skip = logits_from > b0 ? logits_from - b0 : 0;
	if (logits && skip < T) {
		int k = T - skip;
		float *xr = s->x + (size_t)skip * c->dim;
		norm(s, xr, xr, k, m->out_norm, m->out_norm_b);
		matmul(s, logits + (size_t)(b0 + skip - logits_from) * c->vocab_size, xr, k, m->output, NULL);
	}
}

sl_status sl_forward(sl_state *s, const int32_t *tokens, int n, float *logits, int logits_from,
                     sl_error *err)
{
	const sl_model *m = s->m;
	const sl_config *c = &m->cfg;
	if (n <= 0)
		return SL_OK;
	sl_status st = check_room(s, n, err);
	if (st)
		return st;
	for (int i = 0; i < n; i++)
		if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
			return sl_errorf(err, SL_ERR_ARG, "token id %d at position %d is outside the vocabulary (0..%d)",
			                 tokens[i], i, c->vocab_size - 1);
	if (logits_from < 0)
		logits_from = 0;
	sl_kernels_set_pass_bytes(s->pass_bytes);
	for (int b0 = 0; b0 < n; b0 += s->max_batch) {
		int T = n - b0 < s->max_batch ? n - b0 : s->max_batch;
		for (int t = 0; t < T; t++) {
			float *row = s->x + (size_t)t * c->dim;
			sl_tensor_rows_to_f32(m->tok_embd, tokens[b0 + t], 1, row);
			if (m->pos_embd) {
				float *pe = s->xb;
				sl_tensor_rows_to_f32(m->pos_embd, s->n_past + t, 1, pe);
				for (int i = 0; i < c->dim; i++)
					row[i] += pe[i];
			}
		}
		run_from(s, 0, T, b0, logits, logits_from);
	}
	return SL_OK;
}

sl_status sl_forward_from(sl_state *s, int first, const float *x, int n, float *logits, int logits_from,
                          sl_error *err)
{
	const sl_config *c = &s->m->cfg;
	if (n <= 0)
		return SL_OK;
	if (first < 0 || first > c->n_layers)
		return sl_errorf(err, SL_ERR_ARG, "block %d does not exist (the model has %d)", first, c->n_layers);
	sl_status st = check_room(s, n, err);
	if (st)
		return st;
	if (logits_from < 0)
		logits_from = 0;
	sl_kernels_set_pass_bytes(s->pass_bytes);
	for (int b0 = 0; b0 < n; b0 += s->max_batch) {
		int T = n - b0 < s->max_batch ? n - b0 : s->max_batch;
		memcpy(s->x, x + (size_t)b0 * c->dim, (size_t)T * c->dim * sizeof(float));
		run_from(s, first, T, b0, logits, logits_from);
	}
	return SL_OK;
}
