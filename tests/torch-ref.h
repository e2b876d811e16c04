/* Reading the reference files tests/gen-torch-*.py write: records of a
 * name, a shape (outermost first, as PyTorch gives it) and F32 data; a
 * model built from them; errors against them; gradients a trainer gives
 * away, taken. Include after test.h. */
#ifndef SL_TORCH_REF_H
#define SL_TORCH_REF_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/model.h"
#include "core/tensor.h"
#include "core/train.h"

typedef struct {
	char name[SL_NAME_MAX];
	int n_dims;
	int64_t ne[4]; /* slimlab order: ne[0] innermost */
	float *data;
	size_t n;
} record;

static bool read_record(FILE *f, record *r)
{
	uint32_t len, nd;
	if (fread(&len, 4, 1, f) != 1 || len >= sizeof r->name || fread(r->name, 1, len, f) != len)
		return false;
	r->name[len] = 0;
	if (fread(&nd, 4, 1, f) != 1 || nd > 4)
		return false;
	r->n_dims = (int)nd;
	r->n = 1;
	uint64_t dims[4] = {1, 1, 1, 1};
	for (uint32_t i = 0; i < nd; i++) {
		if (fread(&dims[i], 8, 1, f) != 1)
			return false;
		r->n *= dims[i];
	}
	for (int i = 0; i < 4; i++)
		r->ne[i] = i < (int)nd ? (int64_t)dims[nd - 1 - i] : 1;
	r->data = malloc(r->n * sizeof(float));
	return r->data && fread(r->data, sizeof(float), r->n, f) == r->n;
}

/* The JSON a "config" record holds, one byte per float. */
static cJSON *record_json(const record *r)
{
	char *js = malloc(r->n + 1);
	if (!js)
		return NULL;
	for (size_t i = 0; i < r->n; i++)
		js[i] = (char)r->data[i];
	js[r->n] = 0;
	cJSON *c = cJSON_Parse(js);
	free(js);
	return c;
}

static int json_int(const cJSON *c, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(c, k);
	return cJSON_IsNumber(v) ? v->valueint : 0;
}

/* Relative error of a against the reference r: the largest absolute
 * difference over the largest reference magnitude. */
static inline double rel_err(const float *a, const float *r, size_t n)
{
	double d = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - r[i]));
		s = fmax(s, fabs((double)r[i]));
	}
	return s > 0 ? d / s : d;
}

typedef struct {
	record *r;
	int n;
} records;

/* Whether name ends with tail (and is longer). */
static inline bool ends_with(const char *name, const char *tail)
{
	size_t a = strlen(name), b = strlen(tail);
	return a > b && !strcmp(name + a - b, tail);
}

static inline const record *find(const records *rs, const char *name)
{
	for (int i = 0; i < rs->n; i++)
		if (!strcmp(rs->r[i].name, name))
			return &rs->r[i];
	return NULL;
}

/* Every record of a reference file (rel: from the source tree); false
 * when it cannot be read. */
static inline bool read_records(const char *rel, records *rs)
{
	FILE *f = fopen(test_srcpath(rel), "rb");
	if (!f)
		return false;
	record r;
	rs->r = NULL;
	rs->n = 0;
	while (read_record(f, &r)) {
		rs->r = realloc(rs->r, (size_t)(rs->n + 1) * sizeof *rs->r);
		rs->r[rs->n++] = r;
	}
	fclose(f);
	return rs->n > 0;
}

static inline void free_records(records *rs)
{
	for (int i = 0; i < rs->n; i++)
		free(rs->r[i].data);
	free(rs->r);
}

/* A model from the records whose names start with prefix. */
static inline sl_model *build(const records *rs, const cJSON *cfg, const char *prefix)
{
	sl_model *m = calloc(1, sizeof *m);
	sl_error err = {0};
	size_t pl = strlen(prefix);
	for (int i = 0; i < rs->n; i++) {
		const record *r = &rs->r[i];
		const char *nm = r->name + pl;
		size_t k = strlen(r->name);
		bool tensor = (k > 7 && !strcmp(r->name + k - 7, ".weight")) || (k > 5 && !strcmp(r->name + k - 5, ".bias"));
		bool model = !strncmp(nm, "blk.", 4) || !strncmp(nm, "token_embd.", 11) || !strncmp(nm, "output", 6) ||
		             !strncmp(nm, "position_embd.", 14);
		if (strncmp(r->name, prefix, pl) || !tensor || !model)
			continue;
		float *d = malloc(r->n * sizeof(float));
		memcpy(d, r->data, r->n * sizeof(float));
		if (!sl_model_add_tensor(m, nm, SL_DT_F32, r->ne, r->n_dims, d, true, &err)) {
			CHECK(0, "add %s: %s", r->name, err.msg);
			free(d);
		}
	}
	sl_config *c = &m->cfg;
	const cJSON *arch = cJSON_GetObjectItem(cfg, "arch");
	bool gpt2 = cJSON_IsString(arch) && !strcmp(arch->valuestring, "gpt2");
	c->dim = json_int(cfg, "dim");
	c->n_layers = json_int(cfg, "n_layers");
	c->n_heads = json_int(cfg, "n_heads");
	c->vocab_size = json_int(cfg, "vocab");
	c->norm_eps = (float)cJSON_GetObjectItem(cfg, "eps")->valuedouble;
	if (gpt2) {
		snprintf(m->path, sizeof m->path, "torch:%sgpt2", prefix);
		c->arch = SL_ARCH_GPT2;
		c->max_seq_len = json_int(cfg, "n_pos");
	} else {
		snprintf(m->path, sizeof m->path, "torch:%s%s", prefix, cJSON_GetObjectItem(cfg, "rope")->valuestring);
		c->arch = SL_ARCH_LLAMA;
		c->n_kv_heads = json_int(cfg, "n_kv_heads");
		c->head_dim = json_int(cfg, "head_dim");
		c->max_seq_len = 64;
		c->rope_theta = (float)cJSON_GetObjectItem(cfg, "theta")->valuedouble;
		c->rope_dim = json_int(cfg, "rope_dim");
		c->rope_style = !strcmp(cJSON_GetObjectItem(cfg, "rope")->valuestring, "neox") ? SL_ROPE_NEOX : SL_ROPE_NORM;
	}
	if (sl_model_finish(m, &err)) {
		CHECK(0, "finish %s: %s", m->path, err.msg);
		sl_model_free(m);
		return NULL;
	}
	return m;
}

/* Gradients given away: copied where the trainer would keep them, each
 * parameter's given count kept. */
typedef struct {
	sl_trainer *tr;
	float *flat;
	int *given;
	int strays; /* given for no parameter */
} grad_taker;

static inline void take_grad(void *ctx, const sl_tensor *t, const float *g, size_t n)
{
	grad_taker *k = ctx;
	int np;
	const sl_param *p = sl_trainer_params(k->tr, &np);
	for (int i = 0; i < np; i++)
		if (p[i].t == t && p[i].n == n) {
			memcpy(k->flat + p[i].offset, g, n * sizeof *g);
			k->given[i]++;
			return;
		}
	printf("a gradient of %zu given for %s, which does not train\n", n, t->name);
	k->strays++;
}

#endif
