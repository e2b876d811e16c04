/* GGUF models: hyperparameters from {arch}.* metadata, tensors left in
 * their stored format inside the mapped file, tokenizer from
 * tokenizer.ggml.*. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "gguf.h"
#include "loaders.h"
#include "tokenizer.h"

/* An integer that may be stored per layer as an array: its first element. */
static bool get_int(const sl_gguf *g, const char *arch, const char *key, int *out)
{
	char full[128];
	snprintf(full, sizeof full, "%s.%s", arch, key);
	int64_t v;
	if (sl_gguf_get_i64(g, full, &v)) {
		if (v < 0 || v > INT32_MAX)
			return false;
		*out = (int)v;
		return true;
	}
	const sl_gguf_kv *kv = sl_gguf_find(g, full);
	if (kv && kv->type == SL_GGUF_ARR && kv->arr_type != SL_GGUF_STR && kv->n > 0) {
		double d = sl_gguf_arr_num(kv, 0);
		for (uint64_t i = 1; i < kv->n; i++)
			if (sl_gguf_arr_num(kv, i) > d)
				d = sl_gguf_arr_num(kv, i);
		if (d < 0 || d > INT32_MAX)
			return false;
		*out = (int)d;
		return true;
	}
	return false;
}

static bool get_float(const sl_gguf *g, const char *arch, const char *key, float *out)
{
	char full[128];
	snprintf(full, sizeof full, "%s.%s", arch, key);
	return sl_gguf_get_f32(g, full, out);
}

/* A string array of the embedded factors' image, as n names. */
static const sl_gguf_kv *name_list(const sl_gguf *f, const char *key, uint64_t n)
{
	const sl_gguf_kv *kv = sl_gguf_find(f, key);
	return kv && kv->type == SL_GGUF_ARR && kv->arr_type == SL_GGUF_STR && kv->n == n ? kv : NULL;
}

static sl_tensor *named(const sl_model *m, const sl_gguf_kv *kv, uint64_t i)
{
	size_t len;
	const char *s = sl_gguf_arr_str(kv, i, &len);
	char name[SL_NAME_MAX];
	if (!s || len >= sizeof name)
		return NULL;
	memcpy(name, s, len);
	name[len] = 0;
	return sl_model_tensor(m, name);
}

/* The low-rank factors slimlab embedded (export.h): their tensors join the
 * model (copied, the image inside the file being unaligned), and each
 * factored weight lets go of the product stored for llama.cpp and
 * computes through them. */
static sl_status load_factors(sl_model *m, const sl_gguf *g, const char *path, sl_error *err)
{
	const sl_gguf_kv *kv = sl_gguf_find(g, SL_GGUF_FACTORS);
	if (!kv)
		return SL_OK;
	if (kv->type != SL_GGUF_ARR || kv->arr_type != SL_GGUF_U8)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: %s is not a byte array", path, SL_GGUF_FACTORS);
	sl_gguf *f;
	sl_status st = sl_gguf_parse(kv->data, kv->n, SL_GGUF_FACTORS, &f, err);
	if (st)
		return sl_error_prefix(err, "%s: ", path);
	for (uint64_t i = 0; !st && i < f->n_tensors; i++) {
		const sl_gguf_tensor *t = &f->tensors[i];
		void *d = sl_malloc(t->nbytes ? t->nbytes : 1);
		if (!d) {
			st = sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory for factor '%s'", path, t->name);
			break;
		}
		memcpy(d, t->data, t->nbytes);
		sl_tensor *ft = sl_model_add_tensor(m, t->name, t->type, t->ne, t->n_dims, d, true, err);
		if (!ft) {
			free(d);
			st = err ? err->status : SL_ERR_FORMAT;
		} else {
			ft->factor = true;
		}
	}
	const sl_gguf_kv *w = sl_gguf_find(f, SL_GGUF_FACTORS_WEIGHTS);
	const sl_gguf_kv *a = w ? name_list(f, SL_GGUF_FACTORS_A, w->n) : NULL;
	const sl_gguf_kv *b = w ? name_list(f, SL_GGUF_FACTORS_B, w->n) : NULL;
	if (!st && (!w || w->type != SL_GGUF_ARR || w->arr_type != SL_GGUF_STR || !a || !b))
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: the embedded factors do not say which weight uses which", path);
	for (uint64_t i = 0; !st && i < w->n; i++) {
		sl_tensor *wt = named(m, w, i), *fa = named(m, a, i), *fb = named(m, b, i);
		if (!wt || !fa || !fb || !fa->factor || !fb->factor || wt->factor || wt->n_dims != 2 || fa->n_dims != 2 ||
		    fb->n_dims != 2 || fa->ne[1] != wt->ne[1] || fb->ne[0] != wt->ne[0] || fa->ne[0] != fb->ne[1]) {
			st = sl_errorf(err, SL_ERR_FORMAT, "%s: embedded factor %llu does not fit its weight (name or shape)",
			               path, (unsigned long long)i);
			break;
		}
		sl_tensor_release(wt);
		wt->lr_a = fa;
		wt->lr_b = fb;
	}
	sl_gguf_close(f);
	return st;
}

sl_status sl_load_gguf(sl_model *m, const char *path, const sl_load_opts *opts, sl_error *err)
{
	(void)opts;
	sl_gguf *g;
	sl_status st = sl_gguf_open(path, &g, err);
	if (st)
		return st;
	snprintf(m->format, sizeof m->format, "gguf");
	sl_config *c = &m->cfg;
	char arch[32];
	if (!sl_gguf_get_str(g, "general.architecture", arch, sizeof arch)) {
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: general.architecture is missing; is this a vocabulary-only file?",
		               path);
		goto done;
	}
	snprintf(c->arch_name, sizeof c->arch_name, "%s", arch);
	if (!strcmp(arch, "llama") || !strcmp(arch, "mistral") || !strcmp(arch, "deci")) {
		c->arch = SL_ARCH_LLAMA;
		c->rope_style = SL_ROPE_NORM;
	} else if (!strcmp(arch, "qwen2")) {
		c->arch = SL_ARCH_LLAMA;
		c->rope_style = SL_ROPE_NEOX;
	} else if (!strcmp(arch, "gpt2")) {
		c->arch = SL_ARCH_GPT2;
		c->rope_style = SL_ROPE_NONE;
	} else {
		st = sl_errorf(err, SL_ERR_UNSUPPORTED,
		               "%s: architecture '%s' is not supported (slimlab runs llama, mistral, deci, qwen2 and gpt2)",
		               path, arch);
		goto done;
	}
	if (!get_int(g, arch, "embedding_length", &c->dim) || !get_int(g, arch, "block_count", &c->n_layers) ||
	    !get_int(g, arch, "attention.head_count", &c->n_heads)) {
		st = sl_errorf(err, SL_ERR_FORMAT,
		               "%s: %s.embedding_length, .block_count or .attention.head_count is missing or invalid",
		               path, arch);
		goto done;
	}
	get_int(g, arch, "attention.head_count_kv", &c->n_kv_heads);
	get_int(g, arch, "context_length", &c->max_seq_len);
	get_int(g, arch, "feed_forward_length", &c->hidden_dim);
	get_int(g, arch, "attention.key_length", &c->head_dim);
	get_int(g, arch, "rope.dimension_count", &c->rope_dim);
	get_float(g, arch, "rope.freq_base", &c->rope_theta);
	if (!get_float(g, arch, "attention.layer_norm_rms_epsilon", &c->norm_eps))
		get_float(g, arch, "attention.layer_norm_epsilon", &c->norm_eps);

	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const sl_gguf_tensor *t = &g->tensors[i];
		if (!sl_model_add_tensor(m, t->name, t->type, t->ne, t->n_dims, (void *)t->data, false, err)) {
			st = err ? err->status : SL_ERR_FORMAT;
			goto done;
		}
	}
	sl_tensor *emb = sl_model_tensor(m, "token_embd.weight");
	if (!emb) {
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: required tensor 'token_embd.weight' is missing", path);
		goto done;
	}
	c->vocab_size = (int)emb->ne[1];
	if ((st = sl_model_finish(m, err)) || (st = load_factors(m, g, path, err)))
		goto done;
	if ((st = sl_tok_load_gguf(g, &m->tok, err)))
		goto done;
	void *addr;
	size_t size;
	sl_gguf_release_map(g, &addr, &size);
	st = sl_model_add_mapping(m, addr, size, err);
	if (st) {
		sl_mapping map = {addr, size};
		sl_unmap(&map);
	}
done:
	sl_gguf_close(g);
	return st;
}
