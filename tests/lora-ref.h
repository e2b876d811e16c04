/* LoRA adapter files read back as llama.cpp reads them (its
 * llama-adapter.cpp), with slimlab's GGUF reader and nothing of the code
 * that wrote them: the metadata it requires, pairs "<matrix>.lora_a"
 * {cols, rank} and "<matrix>.lora_b" {rank, rows} of the model's
 * matrices, each adding alpha / rank * B A to its matrix (made F32). */
#ifndef SL_TEST_LORA_REF_H
#define SL_TEST_LORA_REF_H

#include "core/gguf.h"
#include "test.h"

static bool lora_fail(char *why, size_t n, sl_gguf *g, const char *msg, const char *name)
{
	snprintf(why, n, "%s%s%s", msg, name ? ": " : "", name ? name : "");
	sl_gguf_close(g);
	return false;
}

/* Merges the adapters of the file at path into m, whose architecture in
 * llama.cpp is arch; *pairs gets how many. On failure, why says what. */
static bool lora_merge(sl_model *m, const char *path, const char *arch, int *pairs, char *why, size_t n)
{
	sl_gguf *g = NULL;
	sl_error err = {0};
	char s[64];
	float alpha = 0;
	*pairs = 0;
	if (sl_gguf_open(path, &g, &err))
		return lora_fail(why, n, NULL, err.msg, NULL);
	if (!sl_gguf_get_str(g, "general.type", s, sizeof s) || strcmp(s, "adapter"))
		return lora_fail(why, n, g, "general.type is not \"adapter\"", NULL);
	if (!sl_gguf_get_str(g, "adapter.type", s, sizeof s) || strcmp(s, "lora"))
		return lora_fail(why, n, g, "adapter.type is not \"lora\"", NULL);
	if (!sl_gguf_get_str(g, "general.architecture", s, sizeof s) || strcmp(s, arch))
		return lora_fail(why, n, g, "general.architecture is not the model's", s);
	const sl_gguf_kv *kv = sl_gguf_find(g, "adapter.lora.alpha");
	if (!kv || kv->type != SL_GGUF_F32 || !sl_gguf_get_f32(g, "adapter.lora.alpha", &alpha))
		return lora_fail(why, n, g, "adapter.lora.alpha is not an f32", NULL);
	int n_a = 0, n_b = 0;
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const sl_gguf_tensor *a = &g->tensors[i], *b = NULL;
		size_t len = strlen(a->name);
		bool is_a = len > 7 && !strcmp(a->name + len - 7, ".lora_a");
		n_b += len > 7 && !strcmp(a->name + len - 7, ".lora_b");
		if (!is_a)
			continue;
		n_a++;
		char base[SL_NAME_MAX], bname[SL_NAME_MAX + 8];
		snprintf(base, sizeof base, "%.*s", (int)(len - 7), a->name);
		snprintf(bname, sizeof bname, "%s.lora_b", base);
		for (uint64_t j = 0; j < g->n_tensors; j++)
			if (!strcmp(g->tensors[j].name, bname))
				b = &g->tensors[j];
		sl_tensor *w = sl_model_tensor(m, base);
		if (!b || !w)
			return lora_fail(why, n, g, "an adapter without its B or its matrix", a->name);
		if (a->type != SL_DT_F32 || b->type != SL_DT_F32 || a->n_dims != 2 || b->n_dims != 2)
			return lora_fail(why, n, g, "not a pair of F32 matrices", a->name);
		if (a->ne[0] != w->ne[0] || b->ne[1] != w->ne[1] || a->ne[1] != b->ne[0])
			return lora_fail(why, n, g, "shapes llama.cpp refuses", a->name);
		if (sl_tensor_to_f32(w, &err))
			return lora_fail(why, n, g, err.msg, a->name);
		const int64_t rows = w->ne[1], cols = w->ne[0], rank = b->ne[0];
		const float *A = a->data, *B = b->data;
		float *W = w->data;
		double scale = alpha > 0 ? alpha / (double)rank : 1.0;
		for (int64_t r = 0; r < rows; r++)
			for (int64_t c = 0; c < cols; c++) {
				double d = 0;
				for (int64_t k = 0; k < rank; k++)
					d += (double)B[r * rank + k] * A[k * cols + c];
				W[r * cols + c] += (float)(scale * d);
			}
	}
	if (n_a != n_b || n_a + n_b != (int)g->n_tensors)
		return lora_fail(why, n, g, "tensors other than pairs of lora_a and lora_b", NULL);
	*pairs = n_a;
	sl_gguf_close(g);
	return true;
}

#endif
