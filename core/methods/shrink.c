/* Structured pruning that really shrinks the model: attention heads (rows
 * of q, k, v and columns of the output projection), MLP channels (rows of
 * gate and up, columns of down) and whole blocks (their tensors removed,
 * later blocks renumbered). Importance comes from calibration: a head's or
 * channel's output energy E[x_c^2] * ||W_out[:, c]||^2 summed over its
 * channels, and a block's influence 1 - cos(h_in, h_out). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"
#include "../tokenizer.h"

/* Keeps the rows (outputs) with keep_rows[r] and the columns (inputs) with
 * keep_cols[c] of a matrix, or the entries with keep_cols[c] of a vector
 * (NULL: all). The tensor keeps its storage type where that type can hold
 * the new rows (re-rounding values it already held), else becomes F32. */
static sl_status shrink_tensor(sl_tensor *t, const unsigned char *keep_rows, const unsigned char *keep_cols,
                               sl_error *err)
{
	if (!t)
		return SL_OK;
	int64_t cols = t->ne[0], rows = sl_tensor_nrows(t), nc = 0, nr = 0;
	for (int64_t c = 0; c < cols; c++)
		nc += !keep_cols || keep_cols[c];
	for (int64_t r = 0; r < rows; r++)
		nr += !keep_rows || keep_rows[r];
	if (nc == cols && nr == rows)
		return SL_OK;
	float *src = sl_malloc_array((size_t)(rows * cols), sizeof *src);
	float *dst = sl_malloc_array((size_t)(nr * nc), sizeof *dst);
	if (!src || !dst) {
		free(src);
		free(dst);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory shrinking tensor '%s'", t->name);
	}
	sl_tensor_rows_to_f32(t, 0, rows, src);
	float *o = dst;
	for (int64_t r = 0; r < rows; r++)
		if (!keep_rows || keep_rows[r])
			for (int64_t c = 0; c < cols; c++)
				if (!keep_cols || keep_cols[c])
					*o++ = src[r * cols + c];
	free(src);
	int type = sl_dtype_row_bytes(t->type, nc) ? t->type : SL_DT_F32;
	int64_t ne[SL_MAX_DIMS] = {nc, t->n_dims > 1 ? nr : 1, 1, 1};
	sl_status st = sl_tensor_realloc(t, type, ne, t->n_dims, err);
	if (!st)
		sl_dtype_rows_from_float(type, dst, t->data, t->n_dims > 1 ? nr : 1, nc);
	free(dst);
	return st;
}

/* Squared norm of every column of W (rows x cols, any type). */
static sl_status column_norms(const sl_tensor *w, double *out, sl_error *err)
{
	int64_t cols = w->ne[0], rows = w->ne[1];
	float *row = sl_malloc_array((size_t)cols, sizeof *row);
	if (!row)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory reading '%s'", w->name);
	memset(out, 0, (size_t)cols * sizeof *out);
	for (int64_t r = 0; r < rows; r++) {
		sl_tensor_rows_to_f32(w, r, 1, row);
		for (int64_t c = 0; c < cols; c++)
			out[c] += (double)row[c] * row[c];
	}
	free(row);
	return SL_OK;
}

/* Output energy of each input channel of w: E[x_c^2] ||W[:, c]||^2. */
static sl_status channel_energy(const sl_tensor *w, const sl_act_stats *st, double *out, sl_error *err)
{
	sl_status s = column_norms(w, out, err);
	if (!s)
		for (int64_t c = 0; c < w->ne[0]; c++)
			out[c] *= st->sum_sq[c] / (double)st->n_tokens;
	return s;
}

/* The achievable number of query heads to remove nearest to want: the
 * same number from every key/value group, or whole groups. */
static int head_plan(int n_heads, int n_kv, double want, int *per_group, int *groups)
{
	int g = n_heads / n_kv, best = 0;
	*per_group = *groups = 0;
	double best_d = want;
	for (int r = 1; r < g; r++) {
		double d = want > r * n_kv ? want - r * n_kv : r * n_kv - want;
		if (d < best_d) {
			best_d = d;
			best = r * n_kv;
			*per_group = r;
			*groups = 0;
		}
	}
	for (int k = 1; k < n_kv; k++) {
		double d = want > k * g ? want - k * g : k * g - want;
		if (d < best_d) {
			best_d = d;
			best = k * g;
			*per_group = 0;
			*groups = k;
		}
	}
	return best;
}

sl_status sl_prune_heads(sl_model *m, int il, const sl_act_stats *att_out, double sparsity, int *removed,
                         sl_error *err)
{
	sl_layer *L = &m->layers[il];
	const int hd = m->cfg.head_dim, nh = L->n_heads, nkv = L->n_kv_heads, g = nh / nkv;
	*removed = 0;
	if (!L->wq)
		return sl_errorf(err, SL_ERR_UNSUPPORTED, "block %d: head pruning needs separate q, k and v projections", il);
	int per_group, groups;
	if (!head_plan(nh, nkv, sparsity * nh, &per_group, &groups))
		return SL_OK;
	double *energy = sl_malloc_array((size_t)nh * hd, sizeof *energy);
	double *head_e = sl_calloc((size_t)nh, sizeof *head_e);
	sl_scored *s = sl_malloc_array((size_t)nh, sizeof *s);
	unsigned char *keep_q = sl_malloc_array((size_t)nh * hd, 1), *keep_kv = sl_malloc_array((size_t)nkv * hd, 1);
	sl_status st = SL_OK;
	if (!energy || !head_e || !s || !keep_q || !keep_kv) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory pruning heads of block %d", il);
		goto done;
	}
	if ((st = channel_energy(L->wo, att_out, energy, err)))
		goto done;
	for (int h = 0; h < nh; h++)
		for (int c = 0; c < hd; c++)
			head_e[h] += energy[h * hd + c];
	memset(keep_q, 1, (size_t)nh * hd);
	memset(keep_kv, 1, (size_t)nkv * hd);
	if (per_group) {
		for (int k = 0; k < nkv; k++) {
			for (int j = 0; j < g; j++)
				s[j] = (sl_scored){head_e[k * g + j], k * g + j};
			sl_sort_scored(s, (size_t)g);
			for (int j = 0; j < per_group; j++)
				memset(keep_q + (size_t)s[j].idx * hd, 0, (size_t)hd);
		}
	} else {
		for (int k = 0; k < nkv; k++) {
			double e = 0;
			for (int j = 0; j < g; j++)
				e += head_e[k * g + j];
			s[k] = (sl_scored){e, k};
		}
		sl_sort_scored(s, (size_t)nkv);
		for (int j = 0; j < groups; j++) {
			memset(keep_q + (size_t)s[j].idx * g * hd, 0, (size_t)g * hd);
			memset(keep_kv + (size_t)s[j].idx * hd, 0, (size_t)hd);
		}
	}
	if ((st = shrink_tensor(L->wq, keep_q, NULL, err)) || (st = shrink_tensor(L->bq, NULL, keep_q, err)) ||
	    (st = shrink_tensor(L->wk, keep_kv, NULL, err)) || (st = shrink_tensor(L->bk, NULL, keep_kv, err)) ||
	    (st = shrink_tensor(L->wv, keep_kv, NULL, err)) || (st = shrink_tensor(L->bv, NULL, keep_kv, err)) ||
	    (st = shrink_tensor(L->wo, NULL, keep_q, err)))
		goto done;
	L->n_heads = nh - (per_group ? per_group * nkv : groups * g);
	L->n_kv_heads = nkv - groups;
	*removed = nh - L->n_heads;
done:
	free(energy);
	free(head_e);
	free(s);
	free(keep_q);
	free(keep_kv);
	return st;
}

sl_status sl_prune_channels(sl_model *m, int il, const sl_act_stats *down_in, double sparsity, int *removed,
                            sl_error *err)
{
	sl_layer *L = &m->layers[il];
	int F = L->hidden_dim, k = (int)(sparsity * F + 0.5);
	*removed = 0;
	if (k >= F)
		k = F - 1;
	if (k <= 0)
		return SL_OK;
	double *energy = sl_malloc_array((size_t)F, sizeof *energy);
	sl_scored *s = sl_malloc_array((size_t)F, sizeof *s);
	unsigned char *keep = sl_malloc_array((size_t)F, 1);
	sl_status st = SL_OK;
	if (!energy || !s || !keep) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory pruning channels of block %d", il);
		goto done;
	}
	if ((st = channel_energy(L->w_down, down_in, energy, err)))
		goto done;
	for (int j = 0; j < F; j++)
		s[j] = (sl_scored){energy[j], j};
	sl_sort_scored(s, (size_t)F);
	memset(keep, 1, (size_t)F);
	for (int j = 0; j < k; j++)
		keep[s[j].idx] = 0;
	if ((st = shrink_tensor(L->w_gate, keep, NULL, err)) || (st = shrink_tensor(L->w_up, keep, NULL, err)) ||
	    (st = shrink_tensor(L->b_up, NULL, keep, err)) || (st = shrink_tensor(L->w_down, NULL, keep, err)))
		goto done;
	L->hidden_dim = F - k;
	*removed = k;
done:
	free(energy);
	free(s);
	free(keep);
	return st;
}

/* Block index of a "blk.N." tensor name, -1 for others; *rest gets the
 * part after the index. */
static int block_of(const char *name, const char **rest)
{
	int il, used = 0;
	if (sscanf(name, "blk.%d.%n", &il, &used) != 1 || used == 0)
		return -1;
	*rest = name + used;
	return il;
}

sl_status sl_prune_blocks(sl_model **mp, const bool *drop, sl_error *err)
{
	sl_model *m = *mp;
	int L = m->cfg.n_layers, kept = 0;
	int *new_index = sl_malloc_array((size_t)L, sizeof *new_index);
	bool *moved = sl_calloc((size_t)m->n_tensors, sizeof *moved);
	sl_model *n = calloc(1, sizeof *n);
	sl_status st = SL_OK;
	if (!new_index || !moved || !n) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (int il = 0; il < L; il++)
		new_index[il] = drop[il] ? -1 : kept++;
	if (kept == L)
		goto done;
	if (kept == 0) {
		st = sl_errorf(err, SL_ERR_ARG, "removing every one of the %d blocks leaves no model", L);
		goto done;
	}
	n->cfg = m->cfg;
	n->cfg.n_layers = kept;
	memcpy(n->path, m->path, sizeof n->path);
	memcpy(n->format, m->format, sizeof n->format);
	for (int i = 0; i < m->n_tensors; i++) {
		sl_tensor *t = m->tensors[i];
		const char *rest;
		int il = block_of(t->name, &rest);
		char name[SL_NAME_MAX];
		if (il >= L || (il >= 0 && new_index[il] < 0))
			continue;
		if (il >= 0)
			snprintf(name, sizeof name, "blk.%d.%s", new_index[il], rest);
		else
			snprintf(name, sizeof name, "%s", t->name);
		/* The data moves to the new model: exactly one of the two frees it. */
		if (!sl_model_add_tensor(n, name, t->type, t->ne, t->n_dims, t->data, t->owned, err)) {
			st = err ? err->status : SL_ERR_NOMEM;
			goto done;
		}
		moved[i] = t->owned;
		t->owned = false;
	}
	if (m->tok)
		n->tok = sl_tok_ref(m->tok);
	if ((st = sl_model_finish(n, err)))
		goto done;
	/* Tensors borrowed from a lender still are: the reference moves too. */
	n->lender = m->lender;
	m->lender = NULL;
	n->cfg.hidden_dim = n->layers[0].hidden_dim;
	for (int il = 0; il < L; il++)
		if (new_index[il] >= 0)
			n->layers[new_index[il]].act_int8 = m->layers[il].act_int8;
	sl_model_free(m);
	*mp = n;
	n = NULL;
done:
	if (n) {
		for (int i = 0; i < n->n_tensors; i++)
			n->tensors[i]->owned = false;
		for (int i = 0; moved && i < m->n_tensors; i++)
			if (moved[i])
				m->tensors[i]->owned = true;
		sl_model_free(n);
	}
	free(new_index);
	free(moved);
	return st;
}
