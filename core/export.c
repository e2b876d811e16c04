/* GGUF model files: metadata as llama.cpp reads it, tensors converted on
 * the way out; and sl_export_gguf (compress.h), which keeps every tensor
 * in the ggml type that holds it exactly and records the recipe. */
#include "export.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "formats.h"
#include "tokenizer.h"
#include "vocab.h"

struct sl_gguf_export {
	const sl_model *m;
	sl_gguf_writer *w;
	void **copies; /* converted tensor data, alive until the file is written */
	int n_copies;
	bool permute_qk; /* q and k rows go from NeoX halves to interleaved pairs */
};

/* Takes ownership of p (may be NULL) until the file is written. */
static void *keep(sl_gguf_export *e, void *p)
{
	void **c = p ? realloc(e->copies, (size_t)(e->n_copies + 1) * sizeof *c) : NULL;
	if (!c) {
		free(p);
		return NULL;
	}
	e->copies = c;
	return e->copies[e->n_copies++] = p;
}

void sl_gguf_export_free(sl_gguf_export *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->n_copies; i++)
		free(e->copies[i]);
	free(e->copies);
	sl_gguf_writer_free(e->w);
	free(e);
}

sl_gguf_writer *sl_gguf_export_writer(sl_gguf_export *e)
{
	return e->w;
}

/* An integer hyperparameter: a scalar, or per block when blocks differ
 * (what structured pruning leaves), as an int32 array: llama.cpp reads
 * per-block arrays of int32 or float32 only. */
static sl_status put_per_block(sl_gguf_writer *w, const char *arch, const char *key, const sl_model *m,
                               int which, sl_error *err)
{
	int L = m->cfg.n_layers;
	char full[128];
	snprintf(full, sizeof full, "%s.%s", arch, key);
	int32_t *v = malloc((size_t)L * sizeof *v);
	if (!v)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	bool same = true;
	for (int il = 0; il < L; il++) {
		const sl_layer *ly = &m->layers[il];
		v[il] = which == 0 ? ly->n_heads : which == 1 ? ly->n_kv_heads : ly->hidden_dim;
		same &= v[il] == v[0];
	}
	if (same)
		sl_gguf_set_u32(w, full, (uint32_t)v[0]);
	else
		sl_gguf_set_arr(w, full, SL_GGUF_I32, v, (uint64_t)L);
	free(v);
	return SL_OK;
}

/* The architecture llama.cpp runs m as, and whether q and k rows are
 * permuted on the way out. */
static sl_status export_arch(const sl_model *m, const char **arch, bool *permute_qk, sl_error *err)
{
	const sl_config *c = &m->cfg;
	/* llama.cpp's llama (Mistral included) rotates interleaved pairs and its
	 * qwen2 NeoX halves. Llama weights laid out for NeoX (as Hugging Face
	 * stores them) get their q and k rows permuted back, as llama.cpp's
	 * converter does. */
	bool llama = !strcmp(c->arch_name, "llama") || !strcmp(c->arch_name, "mistral") ||
	             !strcmp(c->arch_name, "deci");
	bool qwen2 = !strcmp(c->arch_name, "qwen2") && c->rope_style == SL_ROPE_NEOX;
	if (c->arch == SL_ARCH_LLAMA && !(llama && c->rope_style != SL_ROPE_NONE) && !qwen2)
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "%s: cannot export architecture '%s' with this rotary layout to GGUF", m->path, c->arch_name);
	/* Blocks of different widths (structured pruning) run in llama.cpp as
	 * its "deci" architecture, a Llama whose head counts and MLP widths are
	 * per block; its llama reads one value for all. */
	bool varying = false;
	for (int il = 0; il < c->n_layers; il++) {
		const sl_layer *L = &m->layers[il], *L0 = &m->layers[0];
		varying |= L->n_heads != L0->n_heads || L->n_kv_heads != L0->n_kv_heads || L->hidden_dim != L0->hidden_dim;
	}
	if (varying && qwen2)
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "%s: llama.cpp's qwen2 cannot hold blocks of different widths (structured pruning)",
		                 m->path);
	*arch = c->arch == SL_ARCH_GPT2 ? "gpt2" : qwen2 ? "qwen2" : varying ? "deci" : "llama";
	*permute_qk = llama && c->rope_style == SL_ROPE_NEOX;
	return SL_OK;
}

static sl_gguf_export *export_alloc(const sl_model *m, bool permute_qk)
{
	sl_gguf_export *e = calloc(1, sizeof *e);
	if (!e || !(e->w = sl_gguf_writer_new())) {
		free(e);
		return NULL;
	}
	e->m = m;
	e->permute_qk = permute_qk;
	return e;
}

sl_status sl_gguf_export_new(const sl_model *m, const char *name, sl_gguf_export **out, sl_error *err)
{
	*out = NULL;
	const sl_config *c = &m->cfg;
	const char *arch;
	bool permute_qk, head_size = false;
	sl_status st = export_arch(m, &arch, &permute_qk, err);
	if (st)
		return st;
	for (int il = 0; il < c->n_layers; il++)
		head_size |= m->layers[il].n_heads * c->head_dim != c->dim;
	sl_gguf_export *e = export_alloc(m, permute_qk);
	if (!e)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	sl_gguf_writer *w = e->w;
	char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s." s, arch), k)
	sl_gguf_set_str(w, "general.architecture", arch);
	sl_gguf_set_str(w, "general.name", name ? name : "slimlab model");
	sl_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->max_seq_len);
	sl_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->dim);
	sl_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
	st = put_per_block(w, arch, "feed_forward_length", m, 2, err);
	if (!st)
		st = put_per_block(w, arch, "attention.head_count", m, 0, err);
	if (!st && c->arch != SL_ARCH_GPT2)
		st = put_per_block(w, arch, "attention.head_count_kv", m, 1, err);
	if (st) {
		sl_gguf_export_free(e);
		return st;
	}
	if (c->arch == SL_ARCH_GPT2) {
		sl_gguf_set_f32(w, KEY("attention.layer_norm_epsilon"), c->norm_eps);
	} else {
		sl_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
		sl_gguf_set_f32(w, KEY("rope.freq_base"), c->rope_theta);
		sl_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->rope_dim);
		if (head_size) { /* else llama.cpp takes dim / heads */
			sl_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
			sl_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
		}
	}
	sl_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
#undef KEY
	if (m->tok) {
		sl_vocab v;
		st = sl_vocab_from_tokenizer(m->tok, &v, err);
		if (st) {
			sl_gguf_export_free(e);
			return st;
		}
		if (v.n != c->vocab_size) {
			sl_vocab_free(&v);
			sl_gguf_export_free(e);
			return sl_errorf(err, SL_ERR_ARG, "%s: the vocabulary has %d tokens, the model's embeddings %d",
			                 m->path, v.n, c->vocab_size);
		}
		sl_vocab_put(w, &v);
		sl_vocab_free(&v);
	}
	*out = e;
	return SL_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

/* Whether name is a block's q or k weight or bias (what RoPE rotates),
 * the first factor of one (its rows are the weight's) or the B of an
 * adapter on one (whose rows are the weight's too); the basis of a
 * factored one and an adapter's A (rows: the rank) are not. */
static bool rotated(const char *name)
{
	return !strncmp(name, "blk.", 4) && (strstr(name, ".attn_q.") || strstr(name, ".attn_k.")) &&
	       !ends_with(name, "." SL_LR_B) && !ends_with(name, ".lora_a");
}

/* The NeoX-layout row (or bias element) that interleaved row r comes from:
 * within a head, pair i of the rotated dims is (i, i + rot/2) in NeoX and
 * (2i, 2i + 1) interleaved. */
static int64_t neox_source(const sl_config *c, int64_t r)
{
	int64_t h = r / c->head_dim, d = r % c->head_dim;
	if (d >= c->rope_dim)
		return r;
	return h * c->head_dim + (d % 2) * (c->rope_dim / 2) + d / 2;
}

sl_status sl_gguf_export_tensor(sl_gguf_export *e, const sl_tensor *t, int type, sl_error *err)
{
	bool permute = e->permute_qk && rotated(t->name);
	/* A factored weight goes out as its product (llama.cpp has no factored layer). */
	bool product = t->lr_a != NULL;
	if (t->type == type && !permute && !product) {
		sl_gguf_add_tensor(e->w, t->name, t->type, t->ne, t->n_dims, t->data, t->nbytes);
		return SL_OK;
	}
	size_t nb = sl_tensor_bytes_for(type, t->ne, t->n_dims);
	const sl_type_info *ti = sl_type_info_get(type);
	if (!nb || !ti || (t->type != type && !ti->from_float))
		return sl_errorf(err, SL_ERR_ARG, "tensor '%s' (%lld per row) cannot be stored as %s", t->name,
		                 (long long)t->ne[0], sl_dtype_name(type));
	int64_t rows = sl_tensor_nrows(t);
	float *f = sl_malloc_array((size_t)t->ne[0], sizeof(float));
	void *d = keep(e, sl_malloc(nb));
	if (!f || !d) {
		free(f);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory converting tensor '%s'", t->name);
	}
	size_t row_in = sl_dtype_row_bytes(t->type, t->ne[0]), row_out = nb / (size_t)rows;
	for (int64_t r = 0; r < rows; r++) {
		int64_t src = permute && t->n_dims > 1 ? neox_source(&e->m->cfg, r) : r;
		char *out = (char *)d + (size_t)r * row_out;
		if (t->type == type && !product) {
			memcpy(out, (const char *)t->data + (size_t)src * row_in, row_out);
			continue;
		}
		sl_tensor_rows_to_f32(t, src, 1, f);
		sl_dtype_rows_from_float(type, f, out, 1, t->ne[0]);
	}
	free(f);
	/* A rotated bias is one row of heads: its elements move instead. */
	if (permute && t->n_dims == 1 && type == SL_DT_F32) {
		const float *b = t->data;
		for (int64_t i = 0; i < t->ne[0]; i++)
			((float *)d)[i] = b[neox_source(&e->m->cfg, i)];
	} else if (permute && t->n_dims == 1) {
		return sl_errorf(err, SL_ERR_ARG, "bias '%s' is stored as %s; only F32 biases are exported", t->name,
		                 sl_dtype_name(type));
	}
	sl_gguf_add_tensor(e->w, t->name, type, t->ne, t->n_dims, d, nb);
	return SL_OK;
}

/* A tensor in one of slimlab's own types, as sl_export_gguf stores it: in
 * its ggml twin, else the smallest float type holding its values. */
static sl_status export_own_type(sl_gguf_export *e, const sl_tensor *t, sl_error *err)
{
	sl_tensor view = *t;
	int64_t rows = sl_tensor_nrows(t), n = sl_tensor_nelements(t);
	int twin = sl_dtype_ggml_twin(t->type);
	if (twin >= 0) {
		size_t nb = sl_tensor_bytes_for(twin, t->ne, t->n_dims);
		char *d = keep(e, sl_malloc(nb));
		if (!d)
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory converting tensor '%s'", t->name);
		size_t row_in = sl_dtype_row_bytes(t->type, t->ne[0]), row_out = nb / (size_t)rows;
		for (int64_t r = 0; r < rows; r++)
			sl_dtype_to_ggml_twin(t->type, (const char *)t->data + (size_t)r * row_in, d + (size_t)r * row_out,
			                      t->ne[0]);
		view.type = twin;
		view.data = d;
		view.nbytes = nb;
		return sl_gguf_export_tensor(e, &view, twin, err);
	}
	float *f = sl_malloc_array((size_t)n, sizeof(float));
	if (!f)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory converting tensor '%s'", t->name);
	sl_tensor_rows_to_f32(t, 0, rows, f);
	const sl_format *fmt = sl_format_of_dtype(t->type);
	int type = fmt ? sl_format_export_type(fmt, f, n) : SL_DT_F32;
	view.type = SL_DT_F32;
	view.data = f;
	view.nbytes = (size_t)n * sizeof(float);
	sl_status st = sl_gguf_export_tensor(e, &view, type, err);
	/* F32 may be written from f itself. */
	if (type == SL_DT_F32)
		keep(e, f);
	else
		free(f);
	return st;
}

/* One tensor as sl_export_gguf stores it: in its own ggml type, else as
 * export_own_type converts it. */
static sl_status export_as_is(sl_gguf_export *e, const sl_tensor *t, sl_error *err)
{
	return t->type < SL_DT_GGML_END ? sl_gguf_export_tensor(e, t, t->type, err) : export_own_type(e, t, err);
}

/* Every tensor the forward uses: matrices as mat_type, or (mat_type < 0)
 * as sl_export_gguf stores them; norms and biases as F32, as llama.cpp's
 * converter stores them. */
static sl_status export_tensors(sl_gguf_export *e, int mat_type, const sl_progress *p, sl_error *err)
{
	const sl_model *m = e->m;
	sl_status st = SL_OK;
	int done = 0;
#define PUT(t)                                                                                           	if (!st && (t)) {                                                                                		if (sl_cancelled(p))                                                                     			st = sl_errorf(err, SL_ERR_CANCELLED, "export cancelled");                       		else if ((t)->n_dims < 2)                                                                			st = sl_gguf_export_tensor(e, (t), SL_DT_F32, err);                              		else if (mat_type >= 0)                                                                  			st = sl_gguf_export_tensor(e, (t), mat_type, err);                               		else                                                                                     			st = export_as_is(e, (t), err);                                               		sl_report(p, (double)++done / m->n_tensors, (t)->name);                                  	}
	PUT(m->tok_embd);
	PUT(m->pos_embd);
	for (int il = 0; il < m->cfg.n_layers; il++) {
		const sl_layer *L = &m->layers[il];
		PUT(L->attn_norm);
		PUT(L->attn_norm_b);
		PUT(L->wq);
		PUT(L->bq);
		PUT(L->wk);
		PUT(L->bk);
		PUT(L->wv);
		PUT(L->bv);
		PUT(L->wqkv);
		PUT(L->bqkv);
		PUT(L->wo);
		PUT(L->bo);
		PUT(L->ffn_norm);
		PUT(L->ffn_norm_b);
		PUT(L->w_gate);
		PUT(L->w_up);
		PUT(L->b_up);
		PUT(L->w_down);
		PUT(L->b_down);
	}
	PUT(m->out_norm);
	PUT(m->out_norm_b);
	if (m->output != m->tok_embd)
		PUT(m->output);
#undef PUT
	return st;
}

/* The factors of the model's factored weights, for slimlab's reload: a
 * GGUF image of their tensors (a shared basis once) and which weight uses
 * which (SL_GGUF_FACTORS_*), embedded as one byte array under
 * SL_GGUF_FACTORS. llama.cpp refuses a file with tensors it does not
 * expect, and reads past metadata it does not know, so its tensors stay
 * those of the dense model. */
static sl_status export_factors(sl_gguf_export *e, sl_error *err)
{
	const sl_model *m = e->m;
	int n = 0;
	for (int i = 0; i < m->n_tensors; i++)
		n += m->tensors[i]->lr_a != NULL;
	if (!n)
		return SL_OK;
	sl_gguf_export sub = {.m = m, .w = sl_gguf_writer_new(), .permute_qk = e->permute_qk};
	const char **names = sl_calloc((size_t)n * 3, sizeof *names);
	sl_status st = sub.w && names ? SL_OK : sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	int k = 0;
	for (int i = 0; !st && i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		if (t->factor) {
			st = export_as_is(&sub, t, err);
		} else if (t->lr_a) {
			names[k] = t->name;
			names[n + k] = t->lr_a->name;
			names[2 * n + k++] = t->lr_b->name;
		}
	}
	void *image = NULL;
	size_t size = 0;
	if (!st) {
		sl_gguf_set_arr_str(sub.w, SL_GGUF_FACTORS_WEIGHTS, names, NULL, (uint64_t)n);
		sl_gguf_set_arr_str(sub.w, SL_GGUF_FACTORS_A, names + n, NULL, (uint64_t)n);
		sl_gguf_set_arr_str(sub.w, SL_GGUF_FACTORS_B, names + 2 * n, NULL, (uint64_t)n);
		st = sl_gguf_write_mem(sub.w, &image, &size, err);
	}
	if (!st)
		sl_gguf_set_arr(e->w, SL_GGUF_FACTORS, SL_GGUF_U8, image, (uint64_t)size);
	free(image);
	free(names);
	for (int i = 0; i < sub.n_copies; i++)
		free(sub.copies[i]);
	free(sub.copies);
	sl_gguf_writer_free(sub.w);
	return st;
}

sl_status sl_gguf_export_model(sl_gguf_export *e, int mat_type, sl_error *err)
{
	return export_tensors(e, mat_type, NULL, err);
}

sl_status sl_gguf_export_write(sl_gguf_export *e, const char *path, sl_error *err)
{
	return sl_gguf_write(e->w, path, err);
}

sl_status sl_model_save_gguf(const sl_model *m, const char *name, int mat_type, const char *path, sl_error *err)
{
	sl_gguf_export *e;
	sl_status st = sl_gguf_export_new(m, name, &e, err);
	if (st)
		return st;
	if (mat_type == SL_DT_F32 || mat_type == SL_DT_F16)
		sl_gguf_set_u32(e->w, "general.file_type", mat_type == SL_DT_F32 ? 0 : 1);
	if (!(st = sl_gguf_export_model(e, mat_type, err)))
		st = sl_gguf_export_write(e, path, err);
	sl_gguf_export_free(e);
	return st;
}

sl_status sl_export_gguf(const sl_model *m, const sl_recipe *r, const char *path, const sl_progress *p,
                         sl_error *err)
{
	sl_gguf_export *e;
	sl_status st = sl_gguf_export_new(m, r && r->name[0] ? r->name : NULL, &e, err);
	if (st) {
		sl_error_prefix(err, "exporting to %s: ", path);
		return st;
	}
	bool quantized = false;
	for (int i = 0; i < m->n_tensors; i++) {
		int t = m->tensors[i]->type;
		quantized |= (t != SL_DT_F32 && t != SL_DT_F16 && t != SL_DT_BF16) &&
		             (t < SL_DT_GGML_END || sl_dtype_ggml_twin(t) >= 0);
	}
	if (quantized)
		sl_gguf_set_u32(e->w, "general.quantization_version", 2);
	char *json = r ? sl_recipe_to_json(r) : NULL;
	if (json)
		sl_gguf_set_str(e->w, "slimlab.recipe", json);
	free(json);
	if (!(st = export_tensors(e, -1, p, err)) && !(st = export_factors(e, err)))
		st = sl_gguf_export_write(e, path, err);
	sl_gguf_export_free(e);
	if (st && st != SL_ERR_CANCELLED)
		sl_error_prefix(err, "exporting to %s: ", path);
	return st;
}

/* The matrix of m an adapter tensor named "<matrix>.lora_a" or ".lora_b"
 * belongs to, or NULL. */
static const sl_tensor *adapted(const sl_model *m, const char *name, bool *is_a)
{
	char base[SL_NAME_MAX];
	*is_a = ends_with(name, ".lora_a");
	if (!*is_a && !ends_with(name, ".lora_b"))
		return NULL;
	snprintf(base, sizeof base, "%.*s", (int)(strlen(name) - 7), name);
	const sl_tensor *w = sl_model_tensor(m, base);
	return w && w->n_dims == 2 ? w : NULL;
}

sl_status sl_export_lora(const sl_model *m, const sl_tensor *const *t, int n, float alpha, const char *path,
                         sl_error *err)
{
	const char *arch;
	bool permute_qk;
	sl_status st = export_arch(m, &arch, &permute_qk, err);
	if (!st && n < 1)
		st = sl_errorf(err, SL_ERR_ARG, "no adapters to write");
	if (!st && !(alpha > 0 && isfinite(alpha)))
		st = sl_errorf(err, SL_ERR_ARG, "the adapters' alpha must be positive, not %g", alpha);
	/* Each tensor pairs with the other half of its adapter, in the shapes
	 * llama.cpp checks: A {cols, rank}, B {rank, rows}. */
	for (int i = 0; !st && i < n; i++) {
		bool is_a, other_a;
		const sl_tensor *w = adapted(m, t[i]->name, &is_a), *pair = NULL;
		for (int j = 0; w && j < n && !pair; j++)
			if (j != i && adapted(m, t[j]->name, &other_a) == w && other_a != is_a)
				pair = t[j];
		if (!w || !pair)
			st = sl_errorf(err, SL_ERR_ARG, "'%s' is not one half of an adapter on a matrix of %s", t[i]->name,
			               m->path);
		else if (t[i]->n_dims != 2 || pair->n_dims != 2 ||
		         (is_a ? t[i]->ne[0] != w->ne[0] || t[i]->ne[1] != pair->ne[0]
		               : t[i]->ne[1] != w->ne[1] || t[i]->ne[0] != pair->ne[1]))
			st = sl_errorf(err, SL_ERR_ARG, "'%s' has the wrong shape for the %lld x %lld matrix '%s'", t[i]->name,
			               (long long)w->ne[1], (long long)w->ne[0], w->name);
	}
	sl_gguf_export *e = st ? NULL : export_alloc(m, permute_qk);
	if (!st && !e)
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	if (!st) {
		sl_gguf_set_str(e->w, "general.architecture", arch);
		sl_gguf_set_str(e->w, "general.type", "adapter");
		sl_gguf_set_str(e->w, "adapter.type", "lora");
		sl_gguf_set_f32(e->w, "adapter.lora.alpha", alpha);
	}
	for (int i = 0; !st && i < n; i++)
		st = sl_gguf_export_tensor(e, t[i], SL_DT_F32, err);
	if (!st)
		st = sl_gguf_export_write(e, path, err);
	sl_gguf_export_free(e);
	if (st)
		sl_error_prefix(err, "writing the adapters to %s: ", path);
	return st;
}
