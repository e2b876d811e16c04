/* Reading the reference files tests/gen-torch-*.py write: records of a
 * name, a shape (outermost first, as PyTorch gives it) and F32 data. */
#ifndef SL_TORCH_REF_H
#define SL_TORCH_REF_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/tensor.h"

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

#endif
