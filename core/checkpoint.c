/* Checkpoints as GGUF: the model through the exporter, then the optimizer
 * and run state beside it. */
#include "checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

void sl_train_state_free(sl_train_state *s)
{
	free(s->identity);
	free(s->loss);
	free(s->val);
	memset(s, 0, sizeof *s);
}

sl_status sl_checkpoint_save(const char *path, const sl_trainer *tr, const sl_adamw *opt,
                             const sl_train_state *s, sl_error *err)
{
	sl_gguf_export *e;
	sl_status st = sl_gguf_export_new(sl_trainer_model(tr), "slimlab training checkpoint", &e, err);
	if (st)
		return st;
	sl_gguf_writer *w = sl_gguf_export_writer(e);
	if ((st = sl_gguf_export_model(e, SL_DT_F32, err)))
		goto done;
	int n;
	const sl_param *p = sl_trainer_params(tr, &n);
	char (*names)[SL_NAME_MAX] = calloc(2 * (size_t)n, sizeof *names);
	if (!names) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (int i = 0; i < n; i++) {
		/* Weights the model does not hold (adapters) go in beside it. */
		if (sl_model_tensor(sl_trainer_model(tr), p[i].t->name) != p[i].t)
			sl_gguf_add_tensor(w, p[i].t->name, SL_DT_F32, p[i].t->ne, p[i].t->n_dims, p[i].t->data,
			                   p[i].n * sizeof(float));
		if (strlen(p[i].t->name) + 7 >= SL_NAME_MAX) {
			free(names);
			st = sl_errorf(err, SL_ERR_UNSUPPORTED, "tensor name '%s' is too long to checkpoint", p[i].t->name);
			goto done;
		}
		memcpy(names[2 * i], "adam.m.", 7);
		memcpy(names[2 * i] + 7, p[i].t->name, strlen(p[i].t->name) + 1);
		memcpy(names[2 * i + 1], "adam.v.", 7);
		memcpy(names[2 * i + 1] + 7, p[i].t->name, strlen(p[i].t->name) + 1);
		sl_gguf_add_tensor(w, names[2 * i], SL_DT_F32, p[i].t->ne, p[i].t->n_dims, opt->m + p[i].offset,
		                   p[i].n * sizeof(float));
		sl_gguf_add_tensor(w, names[2 * i + 1], SL_DT_F32, p[i].t->ne, p[i].t->n_dims, opt->v + p[i].offset,
		                   p[i].n * sizeof(float));
	}
	uint32_t rng[2] = {(uint32_t)s->rng, (uint32_t)(s->rng >> 32)};
	uint32_t data[2] = {s->data_tokens, s->data_hash};
	sl_gguf_set_u32(w, "slimlab.train.version", SL_CHECKPOINT_VERSION);
	sl_gguf_set_u32(w, "slimlab.train.step", (uint32_t)opt->step);
	sl_gguf_set_arr(w, "slimlab.train.rng", SL_GGUF_U32, rng, 2);
	sl_gguf_set_arr(w, "slimlab.train.data", SL_GGUF_U32, data, 2);
	sl_gguf_set_str(w, "slimlab.train.identity", s->identity ? s->identity : "");
	sl_gguf_set_arr(w, "slimlab.train.loss", SL_GGUF_F32, s->loss, (uint64_t)opt->step);
	sl_gguf_set_arr(w, "slimlab.train.val", SL_GGUF_F32, s->val, 2 * (uint64_t)s->n_val);
	st = sl_gguf_export_write(e, path, err);
	free(names);
done:
	sl_gguf_export_free(e);
	return st;
}

/* A float array key of exactly n elements, copied into a new buffer. */
static sl_status read_f32s(const sl_gguf *g, const char *key, uint64_t n, float **out, sl_error *err)
{
	const sl_gguf_kv *kv = sl_gguf_find(g, key);
	if (!kv || kv->type != SL_GGUF_ARR || kv->arr_type != SL_GGUF_F32 || kv->n != n)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: %s is missing or does not hold %llu floats", g->path, key,
		                 (unsigned long long)n);
	*out = sl_malloc_array(n ? n : 1, sizeof(float));
	if (!*out)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory for %s", g->path, key);
	memcpy(*out, kv->data, n * sizeof(float));
	return SL_OK;
}

static sl_status read_u32_pair(const sl_gguf *g, const char *key, uint32_t out[2], sl_error *err)
{
	const sl_gguf_kv *kv = sl_gguf_find(g, key);
	if (!kv || kv->type != SL_GGUF_ARR || kv->arr_type != SL_GGUF_U32 || kv->n != 2)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: %s is missing or not two integers", g->path, key);
	memcpy(out, kv->data, 2 * sizeof(uint32_t));
	return SL_OK;
}

/* Copies the F32 tensor name, which must have t's shape and finite values
 * (and no negative ones for a second moment), into dst. */
static sl_status read_moment(const sl_gguf *g, const char *name, const sl_tensor *t, float *dst, bool second,
                             sl_error *err)
{
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const sl_gguf_tensor *x = &g->tensors[i];
		if (strcmp(x->name, name))
			continue;
		bool same = x->type == SL_DT_F32 && x->n_dims == t->n_dims;
		for (int d = 0; same && d < t->n_dims; d++)
			same = x->ne[d] == t->ne[d];
		if (!same)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: tensor '%s' is not F32 in the shape of '%s'", g->path, name,
			                 t->name);
		size_t n = (size_t)sl_tensor_nelements(t);
		memcpy(dst, x->data, n * sizeof(float));
		for (size_t j = 0; j < n; j++)
			if (!isfinite(dst[j]) || (second && dst[j] < 0))
				return sl_errorf(err, SL_ERR_FORMAT, "%s: tensor '%s' holds %g at element %zu", g->path, name,
				                 dst[j], j);
		return SL_OK;
	}
	return sl_errorf(err, SL_ERR_FORMAT, "%s: tensor '%s' is missing; is this a training checkpoint?", g->path,
	                 name);
}

sl_status sl_checkpoint_read_weights(const char *path, sl_trainer *tr, sl_error *err)
{
	sl_gguf *g;
	sl_status st = sl_gguf_open(path, &g, err);
	if (st)
		return st;
	int n;
	const sl_param *p = sl_trainer_params(tr, &n);
	for (int i = 0; !st && i < n; i++)
		st = read_moment(g, p[i].t->name, p[i].t, p[i].t->data, false, err);
	sl_gguf_close(g);
	return st;
}

sl_status sl_checkpoint_read(const char *path, const sl_trainer *tr, sl_adamw *opt, sl_train_state *s,
                             sl_error *err)
{
	memset(s, 0, sizeof *s);
	sl_gguf *g;
	sl_status st = sl_gguf_open(path, &g, err);
	if (st)
		return st;
	int64_t version = 0, step = -1;
	if (!sl_gguf_get_i64(g, "slimlab.train.version", &version) || version != SL_CHECKPOINT_VERSION) {
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: not a slimlab training checkpoint of version %d", path,
		               SL_CHECKPOINT_VERSION);
		goto done;
	}
	if (!sl_gguf_get_i64(g, "slimlab.train.step", &step) || step < 0) {
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: slimlab.train.step is missing or negative", path);
		goto done;
	}
	uint32_t rng[2], data[2];
	if ((st = read_u32_pair(g, "slimlab.train.rng", rng, err)) ||
	    (st = read_u32_pair(g, "slimlab.train.data", data, err)))
		goto done;
	s->rng = (uint64_t)rng[1] << 32 | rng[0];
	s->data_tokens = data[0];
	s->data_hash = data[1];
	const sl_gguf_kv *val = sl_gguf_find(g, "slimlab.train.val");
	if (!val || val->n % 2) {
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: slimlab.train.val is missing or not (step, loss) pairs", path);
		goto done;
	}
	s->n_val = (int64_t)(val->n / 2);
	if ((st = read_f32s(g, "slimlab.train.loss", (uint64_t)step, &s->loss, err)) ||
	    (st = read_f32s(g, "slimlab.train.val", val->n, &s->val, err)))
		goto done;
	char ident[16384];
	if (!sl_gguf_get_str(g, "slimlab.train.identity", ident, sizeof ident) || !(s->identity = sl_strdup(ident))) {
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: slimlab.train.identity is missing", path);
		goto done;
	}
	int n;
	const sl_param *p = sl_trainer_params(tr, &n);
	uint64_t n_adam = 0;
	for (uint64_t i = 0; i < g->n_tensors; i++)
		n_adam += !strncmp(g->tensors[i].name, "adam.", 5);
	for (int i = 0; !st && i < n; i++) {
		char name[SL_NAME_MAX + 8];
		snprintf(name, sizeof name, "adam.m.%s", p[i].t->name);
		st = read_moment(g, name, p[i].t, opt->m + p[i].offset, false, err);
		snprintf(name, sizeof name, "adam.v.%s", p[i].t->name);
		if (!st)
			st = read_moment(g, name, p[i].t, opt->v + p[i].offset, true, err);
	}
	if (!st && n_adam != 2 * (uint64_t)n)
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: holds optimizer state for tensors the model does not train", path);
	if (!st)
		opt->step = step;
done:
	if (st)
		sl_train_state_free(s);
	sl_gguf_close(g);
	return st;
}
