/* GGUF model files: metadata as llama.cpp reads it, tensors converted on
 * the way out. */
#include "export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "vocab.h"

struct sl_gguf_export {
	const sl_model *m;
	sl_gguf_writer *w;
	void **copies; /* converted tensor data, alive until the file is written */
	int n_copies;
};

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
 * (what structured pruning leaves). */
static sl_status put_per_block(sl_gguf_writer *w, const char *arch, const char *key, const sl_model *m,
                               int which, sl_error *err)
{
	int L = m->cfg.n_layers;
	char full[128];
	snprintf(full, sizeof full, "%s.%s", arch, key);
	uint32_t *v = malloc((size_t)L * sizeof *v);
	if (!v)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	bool same = true;
	for (int il = 0; il < L; il++) {
		const sl_layer *ly = &m->layers[il];
		v[il] = (uint32_t)(which == 0 ? ly->n_heads : which == 1 ? ly->n_kv_heads : ly->hidden_dim);
		same &= v[il] == v[0];
	}
	if (same)
		sl_gguf_set_u32(w, full, v[0]);
	else
		sl_gguf_set_arr(w, full, SL_GGUF_U32, v, (uint64_t)L);
	free(v);
	return SL_OK;
}

sl_status sl_gguf_export_new(const sl_model *m, const char *name, sl_gguf_export **out, sl_error *err)
{
	*out = NULL;
	const sl_config *c = &m->cfg;
	const char *arch = c->arch_name;
	bool llama_like = c->arch == SL_ARCH_LLAMA &&
	                  ((c->rope_style == SL_ROPE_NORM && (!strcmp(arch, "llama") || !strcmp(arch, "mistral"))) ||
	                   (c->rope_style == SL_ROPE_NEOX && !strcmp(arch, "qwen2")));
	if (!llama_like && c->arch != SL_ARCH_GPT2)
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "%s: cannot export architecture '%s' with this rotary layout to GGUF", m->path, arch);
	sl_gguf_export *e = calloc(1, sizeof *e);
	if (!e || !(e->w = sl_gguf_writer_new())) {
		free(e);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	e->m = m;
	sl_gguf_writer *w = e->w;
	char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s." s, arch), k)
	sl_gguf_set_str(w, "general.architecture", arch);
	sl_gguf_set_str(w, "general.name", name ? name : "slimlab model");
	sl_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->max_seq_len);
	sl_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->dim);
	sl_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
	sl_status st = put_per_block(w, arch, "feed_forward_length", m, 2, err);
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
		if (c->head_dim * c->n_heads != c->dim) {
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

sl_status sl_gguf_export_tensor(sl_gguf_export *e, const sl_tensor *t, int type, sl_error *err)
{
	if (t->type == type) {
		sl_gguf_add_tensor(e->w, t->name, t->type, t->ne, t->n_dims, t->data, t->nbytes);
		return SL_OK;
	}
	size_t nb = sl_tensor_bytes_for(type, t->ne, t->n_dims);
	if (!nb || !sl_type_info_get(type) || !sl_type_info_get(type)->from_float)
		return sl_errorf(err, SL_ERR_ARG, "tensor '%s' (%lld per row) cannot be stored as %s", t->name,
		                 (long long)t->ne[0], sl_dtype_name(type));
	int64_t rows = sl_tensor_nrows(t);
	float *f = sl_malloc_array((size_t)t->ne[0], sizeof(float));
	void *d = sl_malloc(nb), **c = realloc(e->copies, (size_t)(e->n_copies + 1) * sizeof *c);
	if (c)
		e->copies = c;
	if (!f || !d || !c) {
		free(f);
		free(d);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory converting tensor '%s'", t->name);
	}
	size_t row_out = nb / (size_t)rows;
	for (int64_t r = 0; r < rows; r++) {
		sl_tensor_rows_to_f32(t, r, 1, f);
		sl_dtype_rows_from_float(type, f, (char *)d + (size_t)r * row_out, 1, t->ne[0]);
	}
	free(f);
	e->copies[e->n_copies++] = d;
	sl_gguf_add_tensor(e->w, t->name, type, t->ne, t->n_dims, d, nb);
	return SL_OK;
}

sl_status sl_gguf_export_model(sl_gguf_export *e, int mat_type, sl_error *err)
{
	const sl_model *m = e->m;
	sl_status st = SL_OK;
#define PUT(t)                                                                                      \
	if (!st && (t))                                                                             \
		st = sl_gguf_export_tensor(e, (t), (t)->n_dims >= 2 ? mat_type : SL_DT_F32, err);
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
