/* A token's logits do not depend on how many tokens share its forward
 * pass: stories260K as it is, and compressed into every format of the
 * registry (with W8A8 activations, a KV cache in every KV-cache format,
 * and weights as two low-rank factors, float and quantized, too), run 64
 * tokens at once and again in steps of 1, 2, 3, 5 and 17 tokens; every
 * logit must have the same bits. This is what lets evaluation, decoding and
 * the verification of speculative drafts compute one function of a model. */
#include "core/compress.h"
#include "core/formats.h"
#include "core/forward.h"
#include "core/recipe.h"
#include "test.h"

#define N_TOK 64

/* The logits of tokens[0..N_TOK) run in steps of `step` tokens. */
static bool run(const sl_model *m, const int32_t *tokens, int step, float *logits)
{
	sl_state *s = NULL;
	sl_error err = {0};
	if (sl_state_new(m, N_TOK, &s, &err)) {
		fprintf(stderr, "state: %s\n", err.msg);
		return false;
	}
	size_t V = (size_t)m->cfg.vocab_size;
	bool ok = true;
	for (int i = 0; ok && i < N_TOK; i += step) {
		int n = N_TOK - i < step ? N_TOK - i : step;
		ok = sl_forward(s, tokens + i, n, logits + (size_t)i * V, 0, &err) == SL_OK;
	}
	if (!ok)
		fprintf(stderr, "forward: %s\n", err.msg);
	sl_state_free(s);
	return ok;
}

/* Every step size gives the logits of one pass over all the tokens, bit
 * for bit; returns how many logits differed at most. */
static void same_bits(const sl_model *m, const int32_t *tokens, const char *what)
{
	static const int steps[] = {1, 2, 3, 5, 17};
	size_t n = (size_t)N_TOK * m->cfg.vocab_size;
	float *all = malloc(n * sizeof *all), *part = malloc(n * sizeof *part);
	if (!all || !part || !run(m, tokens, N_TOK, all)) {
		CHECK(false, "%s: the full pass ran", what);
		free(all);
		free(part);
		return;
	}
	for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
		if (!run(m, tokens, steps[k], part)) {
			CHECK(false, "%s: steps of %d ran", what, steps[k]);
			continue;
		}
		size_t diff = 0;
		for (size_t i = 0; i < n; i++)
			diff += memcmp(&all[i], &part[i], sizeof(float)) != 0;
		CHECK(diff == 0, "%s: %zu of %zu logits differ between one pass and steps of %d", what, diff, n,
		      steps[k]);
	}
	free(all);
	free(part);
}

static sl_model *compressed(const sl_model *base, const char *json)
{
	sl_recipe *r = NULL;
	sl_model *m = NULL;
	sl_error err = {0};
	sl_apply_report rep = {0};
	if (sl_recipe_parse(json, strlen(json), &r, &err) || sl_recipe_apply(base, r, NULL, &m, &rep, &err))
		fprintf(stderr, "%s: %s\n", json, err.msg);
	sl_apply_report_free(&rep);
	sl_recipe_free(r);
	return m;
}

int main(void)
{
	const char *path = test_fixture("models/stories260K.gguf");
	if (!path)
		return 77;
	sl_model *base = NULL;
	sl_error err = {0};
	if (sl_model_load(path, NULL, &base, &err)) {
		fprintf(stderr, "load: %s\n", err.msg);
		return 1;
	}
	int32_t tokens[N_TOK];
	for (int i = 0; i < N_TOK; i++)
		tokens[i] = (int32_t)((i * 37 + 11) % base->cfg.vocab_size);
	tokens[0] = 1;
	same_bits(base, tokens, "f32");
	int formats = 0;
	for (int i = 0; i < sl_format_count(); i++) {
		const sl_format *f = sl_format_at(i);
		if (!strcmp(f->name, "f32"))
			continue;
		char json[256];
		snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"%s\"}}", f->name);
		sl_model *m = compressed(base, json);
		CHECK(m != NULL, "%s applies", f->name);
		if (m)
			same_bits(m, tokens, f->name);
		formats += m != NULL;
		sl_model_free(m);
	}
	/* Activations rounded per token (W8A8) and a KV cache in a small format. */
	static const char *const extra[] = {
		"{\"slimlab_recipe\": 1, \"default\": {\"format\": \"int8\"}, \"kv_cache\": \"int8\"}",
		"{\"slimlab_recipe\": 1, \"default\": {\"format\": \"q4_0\"}, \"kv_cache\": \"nvfp4\"}",
		"{\"slimlab_recipe\": 1, \"default\": {\"method\": \"svd\", \"params\": {\"keep\": 0.5}}}",
		"{\"slimlab_recipe\": 1, \"default\": {\"format\": \"q8_0\", \"method\": \"svd\", \"params\": {\"rank\": 32}}}",
	};
	for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
		sl_model *m = compressed(base, extra[i]);
		CHECK(m != NULL, "%s applies", extra[i]);
		if (m)
			same_bits(m, tokens, extra[i]);
		sl_model_free(m);
	}
	/* Every KV-cache format, with f32 weights and with int8 weights and activations (W8A8). */
	int kv_formats = 0;
	for (int i = 0; i < sl_format_count(); i++) {
		const sl_format *f = sl_format_at(i);
		if (!f->kv || !strcmp(f->name, "f32"))
			continue;
		for (int w8 = 0; w8 < 2; w8++) {
			char json[256], what[96];
			snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, %s\"kv_cache\": \"%s\"}",
			         w8 ? "\"default\": {\"format\": \"int8\"}, " : "", f->name);
			sl_model *m = compressed(base, json);
			CHECK(m != NULL && m->cfg.kv_type == f->dtype, "%s applies", json);
			for (int il = 0; m && w8 && il < m->cfg.n_layers; il++)
				m->layers[il].act_int8 = ~0u;
			snprintf(what, sizeof what, "a %s KV cache%s", f->name, w8 ? ", W8A8" : "");
			if (m)
				same_bits(m, tokens, what);
			kv_formats += m != NULL && !w8;
			sl_model_free(m);
		}
	}
	sl_model *w8a8 = compressed(base, "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"int8\"}}");
	if (w8a8) {
		for (int il = 0; il < w8a8->cfg.n_layers; il++)
			w8a8->layers[il].act_int8 = ~0u;
		same_bits(w8a8, tokens, "int8 weights and activations (W8A8)");
	}
	sl_model_free(w8a8);
	printf("one pass and steps of 1, 2, 3, 5, 17 tokens: the same logits for f32 and %d formats, and %d KV-cache "
	       "formats\n", formats, kv_formats);
	sl_model_free(base);
	return test_finish();
}
