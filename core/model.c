/* The model: a registry of named tensors, the wiring of those tensors into
 * blocks, and the checks that every shape agrees with the configuration. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"
#include "tokenizer.h"

sl_tensor *sl_model_tensor(const sl_model *m, const char *name)
{
	for (int i = 0; i < m->n_tensors; i++)
		if (!strcmp(m->tensors[i]->name, name))
			return m->tensors[i];
	return NULL;
}

sl_tensor *sl_model_add_tensor(sl_model *m, const char *name, int type, const int64_t *ne,
                               int n_dims, void *data, bool owned, sl_error *err)
{
	if (strlen(name) >= SL_NAME_MAX) {
		sl_errorf(err, SL_ERR_FORMAT, "tensor name '%.40s...' is longer than %d bytes", name, SL_NAME_MAX - 1);
		return NULL;
	}
	if (n_dims < 1 || n_dims > SL_MAX_DIMS) {
		sl_errorf(err, SL_ERR_FORMAT, "tensor '%s' has %d dimensions", name, n_dims);
		return NULL;
	}
	if (sl_model_tensor(m, name)) {
		sl_errorf(err, SL_ERR_FORMAT, "tensor '%s' appears twice", name);
		return NULL;
	}
	size_t nb = sl_tensor_bytes_for(type, ne, n_dims);
	if (!nb) {
		sl_errorf(err, SL_ERR_FORMAT, "tensor '%s': shape does not fit type %s", name, sl_dtype_name(type));
		return NULL;
	}
	sl_tensor *t = calloc(1, sizeof *t);
	sl_tensor **arr = realloc(m->tensors, (size_t)(m->n_tensors + 1) * sizeof *arr);
	if (!t || !arr) {
		free(t);
		if (arr)
			m->tensors = arr;
		sl_errorf(err, SL_ERR_NOMEM, "out of memory adding tensor '%s'", name);
		return NULL;
	}
	m->tensors = arr;
	snprintf(t->name, sizeof t->name, "%s", name);
	t->type = type;
	t->n_dims = n_dims;
	for (int i = 0; i < SL_MAX_DIMS; i++)
		t->ne[i] = i < n_dims ? ne[i] : 1;
	t->data = data;
	t->owned = owned;
	t->nbytes = nb;
	m->tensors[m->n_tensors++] = t;
	return t;
}

sl_status sl_model_add_mapping(sl_model *m, void *addr, size_t size, sl_error *err)
{
	sl_mapping *maps = realloc(m->maps, (size_t)(m->n_maps + 1) * sizeof *maps);
	if (!maps)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	m->maps = maps;
	m->maps[m->n_maps].addr = addr;
	m->maps[m->n_maps].size = size;
	m->n_maps++;
	return SL_OK;
}

void sl_model_release_pages(const sl_model *m, const void *p, size_t n)
{
	for (; m; m = m->lender)
		for (int i = 0; i < m->n_maps; i++)
			sl_mapping_release(&m->maps[i], p, n);
}

void sl_model_free(sl_model *m)
{
	if (!m || atomic_fetch_sub(&m->refs, 1) > 0)
		return;
	for (int i = 0; i < m->n_tensors; i++) {
		sl_tensor_release(m->tensors[i]);
		free(m->tensors[i]);
	}
	free(m->tensors);
	free(m->layers);
	for (int i = 0; i < m->n_maps; i++)
		sl_unmap(&m->maps[i]);
	free(m->maps);
	sl_tok_free(m->tok);
	sl_model_free(m->lender);
	free(m);
}

const char *sl_module_kind_name(sl_module_kind k)
{
	static const char *names[] = {"attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output",
	                              "ffn_gate", "ffn_up", "ffn_down", "token_embd", "output"};
	return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

int sl_model_modules(const sl_model *m, sl_module *out, int max)
{
	int n = 0;
#define ADD(tensor, lay, kd, tp)                                                                \
	do {                                                                                    \
		if (tensor) {                                                                   \
			if (out && n < max) {                                                   \
				sl_module *md = &out[n];                                        \
				const char *nm = (tensor)->name;                                \
				size_t k = strlen(nm);                                          \
				if (k > 7 && !strcmp(nm + k - 7, ".weight"))                    \
					k -= 7;                                                 \
				snprintf(md->name, sizeof md->name, "%.*s", (int)k, nm);        \
				md->layer = (lay);                                              \
				md->kind = (kd);                                                \
				md->w = (tensor);                                               \
				md->input = (tp);                                               \
			}                                                                       \
			n++;                                                                    \
		}                                                                               \
	} while (0)
	ADD(m->tok_embd, -1, SL_MOD_EMBD, SL_TAP_BLOCK_IN);
	for (int il = 0; il < m->cfg.n_layers; il++) {
		const sl_layer *L = &m->layers[il];
		ADD(L->wq, il, SL_MOD_ATTN_Q, SL_TAP_ATTN_IN);
		ADD(L->wk, il, SL_MOD_ATTN_K, SL_TAP_ATTN_IN);
		ADD(L->wv, il, SL_MOD_ATTN_V, SL_TAP_ATTN_IN);
		ADD(L->wqkv, il, SL_MOD_ATTN_QKV, SL_TAP_ATTN_IN);
		ADD(L->wo, il, SL_MOD_ATTN_OUT, SL_TAP_ATTN_OUT_IN);
		ADD(L->w_gate, il, SL_MOD_FFN_GATE, SL_TAP_FFN_IN);
		ADD(L->w_up, il, SL_MOD_FFN_UP, SL_TAP_FFN_IN);
		ADD(L->w_down, il, SL_MOD_FFN_DOWN, SL_TAP_FFN_DOWN_IN);
	}
	if (m->output != m->tok_embd)
		ADD(m->output, -1, SL_MOD_OUTPUT, SL_TAP_BLOCK_OUT);
#undef ADD
	return n;
}

int64_t sl_model_n_params(const sl_model *m)
{
	int64_t n = 0;
	for (int i = 0; i < m->n_tensors; i++)
		if (!m->tensors[i]->factor)
			n += sl_tensor_nelements(m->tensors[i]);
	return n;
}

static int tensor_index(const sl_model *m, const sl_tensor *t)
{
	for (int i = 0; i < m->n_tensors; i++)
		if (m->tensors[i] == t)
			return i;
	return -1;
}

sl_status sl_model_adopt_factors(sl_model *m, sl_tensor *w, sl_error *err)
{
	if (!w->lr_own)
		return SL_OK;
	for (int k = 0; k < 2; k++) {
		sl_tensor *f = k ? w->lr_b : w->lr_a;
		if (tensor_index(m, f) >= 0)
			continue; /* a basis another weight brought */
		sl_tensor *same = sl_model_tensor(m, f->name);
		if (same)
			return sl_errorf(err, SL_ERR_ARG, "tensor '%s' appears twice", f->name);
		sl_tensor **arr = realloc(m->tensors, (size_t)(m->n_tensors + 1) * sizeof *arr);
		if (!arr)
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory adding tensor '%s'", f->name);
		m->tensors = arr;
		m->tensors[m->n_tensors++] = f;
	}
	w->lr_own = 0;
	return SL_OK;
}

void sl_model_drop_unused_factors(sl_model *m)
{
	/* Which factors some weight still uses, decided before anything is
	 * freed or moved (out of memory: everything stays). */
	bool *used = calloc((size_t)(m->n_tensors ? m->n_tensors : 1), sizeof *used);
	if (!used)
		return;
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		used[i] = !t->factor;
		for (int j = 0; !used[i] && j < m->n_tensors; j++)
			used[i] = m->tensors[j]->lr_a == t || m->tensors[j]->lr_b == t;
	}
	int k = 0;
	for (int i = 0; i < m->n_tensors; i++) {
		sl_tensor *t = m->tensors[i];
		if (used[i]) {
			m->tensors[k++] = t;
		} else {
			sl_tensor_release(t);
			free(t);
		}
	}
	m->n_tensors = k;
	free(used);
}

bool sl_model_factored(const sl_model *m)
{
	for (int i = 0; i < m->n_tensors; i++)
		if (m->tensors[i]->lr_a)
			return true;
	return false;
}

size_t sl_model_bytes(const sl_model *m)
{
	size_t n = 0;
	for (int i = 0; i < m->n_tensors; i++)
		n += m->tensors[i]->nbytes;
	return n;
}

/* --- wiring ---------------------------------------------------------- */

typedef struct {
	sl_model *m;
	sl_error *err;
	sl_status st;
} wire;

/* Finds name and checks its shape (ne0 x ne1; ne1 = 0 for a vector). A
 * missing optional tensor gives NULL; a missing required one fails. */
static sl_tensor *get(wire *w, const char *name, int64_t ne0, int64_t ne1, bool required)
{
	if (w->st)
		return NULL;
	sl_tensor *t = sl_model_tensor(w->m, name);
	if (!t) {
		if (required)
			w->st = sl_errorf(w->err, SL_ERR_FORMAT, "%s: required tensor '%s' is missing",
			                  w->m->path, name);
		return NULL;
	}
	int want_dims = ne1 ? 2 : 1;
	bool ok = t->ne[0] == ne0 && (!ne1 || t->ne[1] == ne1) && t->ne[2] == 1 && t->ne[3] == 1 &&
	          (ne1 || t->ne[1] == 1);
	if (!ok) {
		char have[64];
		sl_tensor_shape_str(t, have, sizeof have);
		if (want_dims == 2)
			w->st = sl_errorf(w->err, SL_ERR_FORMAT,
			                  "%s: tensor '%s' has shape %s, expected %lld x %lld", w->m->path,
			                  name, have, (long long)ne1, (long long)ne0);
		else
			w->st = sl_errorf(w->err, SL_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %lld",
			                  w->m->path, name, have, (long long)ne0);
		return NULL;
	}
	/* Norm weights and biases are small and read by every kernel as floats. */
	if (want_dims == 1 && t->type != SL_DT_F32) {
		w->st = sl_tensor_to_f32(t, w->err);
		if (w->st)
			return NULL;
	}
	return t;
}

/* A 2-D tensor whose row count (output width) is free; returns it or NULL. */
static sl_tensor *get_rows(wire *w, const char *name, int64_t ne0, bool required)
{
	sl_tensor *t = w->st ? NULL : sl_model_tensor(w->m, name);
	/* Without the tensor, get() reports it missing when it is required. */
	return get(w, name, ne0, t ? t->ne[1] : 1, required);
}

static int64_t rows_of(const sl_tensor *t)
{
	return t ? t->ne[1] : 0;
}

static sl_status wire_layer(wire *w, int il)
{
	sl_model *m = w->m;
	sl_config *c = &m->cfg;
	sl_layer *L = &m->layers[il];
	char n[SL_NAME_MAX];
	const int64_t dim = c->dim, hd = c->head_dim;
	bool gpt2 = c->arch == SL_ARCH_GPT2;
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, il), n)
	L->attn_norm = get(w, NAME("attn_norm.weight"), dim, 0, true);
	L->attn_norm_b = get(w, NAME("attn_norm.bias"), dim, 0, gpt2);
	L->ffn_norm = get(w, NAME("ffn_norm.weight"), dim, 0, true);
	L->ffn_norm_b = get(w, NAME("ffn_norm.bias"), dim, 0, gpt2);
	if (gpt2) {
		L->wqkv = get(w, NAME("attn_qkv.weight"), dim, 3 * dim, true);
		L->bqkv = get(w, NAME("attn_qkv.bias"), 3 * dim, 0, true);
		L->n_heads = L->n_kv_heads = c->n_heads;
	} else {
		L->wq = get_rows(w, NAME("attn_q.weight"), dim, true);
		L->wk = get_rows(w, NAME("attn_k.weight"), dim, true);
		if (w->st)
			return w->st;
		if (rows_of(L->wq) % hd || rows_of(L->wk) % hd)
			return sl_errorf(w->err, SL_ERR_FORMAT,
			                 "%s: block %d: attn_q has %lld rows and attn_k %lld, not multiples of the head size %lld",
			                 m->path, il, (long long)rows_of(L->wq), (long long)rows_of(L->wk), (long long)hd);
		L->n_heads = (int)(rows_of(L->wq) / hd);
		L->n_kv_heads = (int)(rows_of(L->wk) / hd);
		if (L->n_kv_heads == 0 || L->n_heads % L->n_kv_heads)
			return sl_errorf(w->err, SL_ERR_FORMAT,
			                 "%s: block %d has %d query heads and %d key/value heads; the first must be a multiple of the second",
			                 m->path, il, L->n_heads, L->n_kv_heads);
		L->wv = get(w, NAME("attn_v.weight"), dim, L->n_kv_heads * hd, true);
		L->bq = get(w, NAME("attn_q.bias"), L->n_heads * hd, 0, false);
		L->bk = get(w, NAME("attn_k.bias"), L->n_kv_heads * hd, 0, false);
		L->bv = get(w, NAME("attn_v.bias"), L->n_kv_heads * hd, 0, false);
	}
	L->wo = get(w, NAME("attn_output.weight"), L->n_heads * hd, dim, true);
	L->bo = get(w, NAME("attn_output.bias"), dim, 0, gpt2);
	L->w_up = get_rows(w, NAME("ffn_up.weight"), dim, true);
	L->hidden_dim = (int)rows_of(L->w_up);
	if (!gpt2)
		L->w_gate = get(w, NAME("ffn_gate.weight"), dim, L->hidden_dim, true);
	L->w_down = get(w, NAME("ffn_down.weight"), L->hidden_dim, dim, true);
	L->b_up = get(w, NAME("ffn_up.bias"), L->hidden_dim, 0, gpt2);
	L->b_down = get(w, NAME("ffn_down.bias"), dim, 0, gpt2);
#undef NAME
	return w->st;
}

sl_status sl_model_finish(sl_model *m, sl_error *err)
{
	sl_config *c = &m->cfg;
	if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->vocab_size <= 0)
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: impossible configuration: dim %d, %d layers, %d heads, vocabulary %d",
		                 m->path, c->dim, c->n_layers, c->n_heads, c->vocab_size);
	if (c->dim > (1 << 20) || c->n_layers > 4096 || c->n_heads > 4096 || c->vocab_size > (1 << 24))
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: absurd configuration: dim %d, %d layers, %d heads, vocabulary %d",
		                 m->path, c->dim, c->n_layers, c->n_heads, c->vocab_size);
	if (c->n_kv_heads <= 0)
		c->n_kv_heads = c->n_heads;
	if (c->head_dim <= 0) {
		if (c->dim % c->n_heads)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: dim %d is not a multiple of %d heads",
			                 m->path, c->dim, c->n_heads);
		c->head_dim = c->dim / c->n_heads;
	}
	if (c->rope_dim <= 0 || c->rope_dim > c->head_dim)
		c->rope_dim = c->head_dim;
	if (c->rope_dim % 2)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: rotary dimension %d is odd", m->path, c->rope_dim);
	if (c->max_seq_len <= 0)
		c->max_seq_len = 2048;
	if (c->norm_eps <= 0)
		c->norm_eps = 1e-5f;
	if (c->rope_theta <= 0)
		c->rope_theta = 10000.0f;
	if (c->arch == SL_ARCH_GPT2)
		c->rope_style = SL_ROPE_NONE;

	m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
	if (!m->layers)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	wire w = {m, err, SL_OK};
	m->tok_embd = get(&w, "token_embd.weight", c->dim, c->vocab_size, true);
	if (c->arch == SL_ARCH_GPT2)
		m->pos_embd = get_rows(&w, "position_embd.weight", c->dim, true);
	m->out_norm = get(&w, "output_norm.weight", c->dim, 0, true);
	m->out_norm_b = get(&w, "output_norm.bias", c->dim, 0, c->arch == SL_ARCH_GPT2);
	m->output = get(&w, "output.weight", c->dim, c->vocab_size, false);
	if (w.st)
		return w.st;
	if (!m->output)
		m->output = m->tok_embd; /* tied */
	if (m->pos_embd && rows_of(m->pos_embd) < c->max_seq_len)
		c->max_seq_len = (int)rows_of(m->pos_embd);
	for (int il = 0; il < c->n_layers; il++) {
		sl_status st = wire_layer(&w, il);
		if (st)
			return st;
	}
	c->hidden_dim = m->layers[0].hidden_dim;
	return SL_OK;
}

/* A copy of src's configuration, tokenizer and tensors: the tensors' data
 * copied (deep) or borrowed. */
static sl_status copy_model(const sl_model *src, bool deep, sl_model **out, sl_error *err)
{
	*out = NULL;
	sl_model *m = calloc(1, sizeof *m);
	if (!m)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	m->cfg = src->cfg;
	memcpy(m->path, src->path, sizeof m->path);
	memcpy(m->format, src->format, sizeof m->format);
	for (int i = 0; i < src->n_tensors; i++) {
		const sl_tensor *t = src->tensors[i];
		/* A factored weight has no data: its factors are copied as tensors. */
		void *d = t->lr_a ? NULL : deep ? sl_malloc(t->nbytes) : t->data;
		if (!d && !t->lr_a) {
			sl_model_free(m);
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory copying tensor '%s'", t->name);
		}
		if (d && deep)
			memcpy(d, t->data, t->nbytes);
		sl_tensor *c = sl_model_add_tensor(m, t->name, t->type, t->ne, t->n_dims, d, d && deep, err);
		if (!c) {
			if (deep)
				free(d);
			sl_model_free(m);
			return err ? err->status : SL_ERR_NOMEM;
		}
		c->factor = t->factor;
		if (!d)
			c->nbytes = 0;
	}
	for (int i = 0; i < src->n_tensors; i++)
		if (src->tensors[i]->lr_a) {
			m->tensors[i]->lr_a = m->tensors[tensor_index(src, src->tensors[i]->lr_a)];
			m->tensors[i]->lr_b = m->tensors[tensor_index(src, src->tensors[i]->lr_b)];
		}
	if (src->tok)
		m->tok = sl_tok_ref(src->tok);
	sl_status st = sl_model_finish(m, err);
	if (st) {
		sl_model_free(m);
		return st;
	}
	m->cfg = src->cfg;
	for (int il = 0; il < m->cfg.n_layers; il++)
		m->layers[il].act_int8 = src->layers[il].act_int8;
	*out = m;
	return SL_OK;
}

sl_status sl_model_clone(const sl_model *src, sl_model **out, sl_error *err)
{
	return copy_model(src, true, out, err);
}

sl_status sl_model_borrow(const sl_model *src, sl_model **out, sl_error *err)
{
	sl_status st = copy_model(src, false, out, err);
	if (st)
		return st;
	/* The reference count is bookkeeping, not the model's content. */
	sl_model *lender = (sl_model *)src;
	atomic_fetch_add(&lender->refs, 1);
	(*out)->lender = lender;
	return SL_OK;
}

/* Box-Muller normal deviates from the sampler's generator. */
static float randn(uint64_t *state)
{
	float u1 = sl_rand01(state), u2 = sl_rand01(state);
	if (u1 < 1e-7f)
		u1 = 1e-7f;
	return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

static sl_status add_random(sl_model *m, const char *name, int64_t ne0, int64_t ne1, float std, float fill,
                            uint64_t *rng, sl_error *err)
{
	int64_t ne[2] = {ne0, ne1};
	size_t n = (size_t)(ne0 * ne1);
	float *d = sl_malloc_array(n, sizeof(float));
	if (!d)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for tensor '%s'", name);
	for (size_t i = 0; i < n; i++)
		d[i] = std > 0 ? std * randn(rng) : fill;
	if (!sl_model_add_tensor(m, name, SL_DT_F32, ne, ne1 > 1 ? 2 : 1, d, true, err)) {
		free(d);
		return err ? err->status : SL_ERR_NOMEM;
	}
	return SL_OK;
}

sl_status sl_model_init_random(const sl_config *cfg, bool tied, float std, uint64_t seed, sl_model **out,
                               sl_error *err)
{
	*out = NULL;
	sl_model *m = calloc(1, sizeof *m);
	if (!m)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	m->cfg = *cfg;
	snprintf(m->path, sizeof m->path, "(random %s)", cfg->arch == SL_ARCH_GPT2 ? "gpt2" : "llama");
	snprintf(m->format, sizeof m->format, "memory");
	if (!m->cfg.arch_name[0])
		snprintf(m->cfg.arch_name, sizeof m->cfg.arch_name, "%s", cfg->arch == SL_ARCH_GPT2 ? "gpt2" : "llama");
	sl_config *c = &m->cfg;
	if (c->n_kv_heads <= 0)
		c->n_kv_heads = c->n_heads;
	if (c->n_heads <= 0 || c->dim <= 0) {
		sl_model_free(m);
		return sl_errorf(err, SL_ERR_ARG, "a model needs a positive width and head count");
	}
	const int64_t D = c->dim, hd = c->head_dim > 0 ? c->head_dim : c->dim / c->n_heads;
	const int64_t F = c->hidden_dim, V = c->vocab_size;
	bool gpt2 = c->arch == SL_ARCH_GPT2;
	uint64_t rng = seed ? seed : 1;
	sl_status st = add_random(m, "token_embd.weight", D, V, std, 0, &rng, err);
	if (!st && gpt2)
		st = add_random(m, "position_embd.weight", D, c->max_seq_len, std, 0, &rng, err);
	for (int il = 0; !st && il < c->n_layers; il++) {
		char n[SL_NAME_MAX];
#define ADD(suffix, a, b, sd, fill)                                                   \
	if (!st) {                                                                    \
		snprintf(n, sizeof n, "blk.%d." suffix, il);                          \
		st = add_random(m, n, a, b, sd, fill, &rng, err);                     \
	}
		ADD("attn_norm.weight", D, 1, 0, 1.0f);
		ADD("ffn_norm.weight", D, 1, 0, 1.0f);
		if (gpt2) {
			ADD("attn_norm.bias", D, 1, 0, 0.0f);
			ADD("ffn_norm.bias", D, 1, 0, 0.0f);
			ADD("attn_qkv.weight", D, 3 * D, std, 0);
			ADD("attn_qkv.bias", 3 * D, 1, 0, 0.0f);
			ADD("attn_output.bias", D, 1, 0, 0.0f);
			ADD("ffn_up.bias", F, 1, 0, 0.0f);
			ADD("ffn_down.bias", D, 1, 0, 0.0f);
		} else {
			ADD("attn_q.weight", D, c->n_heads * hd, std, 0);
			ADD("attn_k.weight", D, c->n_kv_heads * hd, std, 0);
			ADD("attn_v.weight", D, c->n_kv_heads * hd, std, 0);
			ADD("ffn_gate.weight", D, F, std, 0);
		}
		ADD("attn_output.weight", c->n_heads * hd, D, std, 0);
		ADD("ffn_up.weight", D, F, std, 0);
		ADD("ffn_down.weight", F, D, std, 0);
#undef ADD
	}
	if (!st)
		st = add_random(m, "output_norm.weight", D, 1, 0, 1.0f, &rng, err);
	if (!st && gpt2)
		st = add_random(m, "output_norm.bias", D, 1, 0, 0.0f, &rng, err);
	if (!st && !tied)
		st = add_random(m, "output.weight", D, V, std, 0, &rng, err);
	if (!st)
		st = sl_model_finish(m, err);
	if (st) {
		sl_model_free(m);
		return st;
	}
	*out = m;
	return SL_OK;
}
