/* The forward pass of each architecture variant against PyTorch:
 * grouped-query and multi-query attention, NeoX and interleaved rotary
 * layouts, q/k/v biases, tied and untied heads, a head size unrelated to
 * the width, and GPT-2. tests/gen-torch-reference.py wrote the weights
 * and PyTorch's logits into tests/data/torch-forward.bin. */
#include "core/forward.h"
#include "core/model.h"
#include "test.h"
#include "torch-ref.h"

static void check_model(cJSON *cfg, sl_model *m, const record *tokens, const record *logits)
{
	const char *name = cJSON_GetObjectItem(cfg, "name")->valuestring;
	const char *arch = cJSON_GetObjectItem(cfg, "arch")->valuestring;
	sl_config *c = &m->cfg;
	snprintf(m->path, sizeof m->path, "torch:%s", name);
	bool gpt2 = !strcmp(arch, "gpt2");
	c->arch = gpt2 ? SL_ARCH_GPT2 : SL_ARCH_LLAMA;
	c->dim = json_int(cfg, "dim");
	c->n_layers = json_int(cfg, "n_layers");
	c->n_heads = json_int(cfg, "n_heads");
	c->n_kv_heads = gpt2 ? c->n_heads : json_int(cfg, "n_kv_heads");
	c->head_dim = gpt2 ? c->dim / c->n_heads : json_int(cfg, "head_dim");
	c->vocab_size = json_int(cfg, "vocab");
	c->max_seq_len = gpt2 ? json_int(cfg, "n_pos") : 64;
	c->norm_eps = (float)cJSON_GetObjectItem(cfg, "eps")->valuedouble;
	if (!gpt2) {
		c->rope_theta = (float)cJSON_GetObjectItem(cfg, "theta")->valuedouble;
		c->rope_dim = json_int(cfg, "rope_dim");
		c->rope_style = !strcmp(cJSON_GetObjectItem(cfg, "rope")->valuestring, "neox") ? SL_ROPE_NEOX
		                                                                              : SL_ROPE_NORM;
	}
	sl_error err = {0};
	REQUIRE(sl_model_finish(m, &err) == SL_OK, "%s: finish: %s", name, err.msg);
	int T = (int)tokens->n, V = c->vocab_size;
	int32_t *tok = malloc(sizeof(int32_t) * (size_t)T);
	for (int i = 0; i < T; i++)
		tok[i] = (int32_t)tokens->data[i];
	float *got = malloc(sizeof(float) * (size_t)T * V), *inc = malloc(sizeof(float) * (size_t)T * V);
	sl_state *s, *s1;
	REQUIRE(!sl_state_new(m, 32, &s, &err) && !sl_state_new(m, 32, &s1, &err), "state: %s", err.msg);
	CHECK(!sl_forward(s, tok, T, got, 0, &err), "%s: forward: %s", name, err.msg);
	/* Split into uneven pieces through the cache. */
	int cuts[] = {0, 1, 7, 8, 19, T};
	for (int i = 0; i + 1 < (int)(sizeof cuts / sizeof cuts[0]); i++)
		CHECK(!sl_forward(s1, tok + cuts[i], cuts[i + 1] - cuts[i], inc + (size_t)cuts[i] * V, 0, &err),
		      "%s: piece %d: %s", name, i, err.msg);
	double worst = 0, worst_inc = 0, scale = 0;
	for (size_t i = 0; i < (size_t)T * V; i++) {
		worst = fmax(worst, fabs(got[i] - logits->data[i]));
		worst_inc = fmax(worst_inc, fabs(inc[i] - logits->data[i]));
		scale = fmax(scale, fabs(logits->data[i]));
	}
	printf("%-20s max |logit| %7.3f, max |slimlab - torch| %.2e (batched) %.2e (in pieces)\n", name,
	       scale, worst, worst_inc);
	CHECK(worst <= 1e-4 * fmax(1.0, scale), "%s: logits differ from PyTorch by %g", name, worst);
	CHECK(worst_inc <= 1e-4 * fmax(1.0, scale), "%s: incremental logits differ by %g", name, worst_inc);
	sl_state_free(s);
	sl_state_free(s1);
	free(tok);
	free(got);
	free(inc);
}

int main(void)
{
	FILE *f = fopen(test_srcpath("tests/data/torch-forward.bin"), "rb");
	if (!f) {
		printf("tests/data/torch-forward.bin is missing\n");
		return 99;
	}
	record r;
	cJSON *cfg = NULL;
	sl_model *m = NULL;
	record tokens = {0};
	int models = 0;
	while (read_record(f, &r)) {
		if (!strcmp(r.name, "config")) {
			cJSON_Delete(cfg);
			cfg = record_json(&r);
			free(r.data);
			m = calloc(1, sizeof *m);
		} else if (!strcmp(r.name, "tokens")) {
			free(tokens.data);
			tokens = r;
		} else if (!strcmp(r.name, "logits")) {
			check_model(cfg, m, &tokens, &r);
			models++;
			free(r.data);
			sl_model_free(m);
			m = NULL;
		} else {
			sl_error err;
			CHECK(sl_model_add_tensor(m, r.name, SL_DT_F32, r.ne, r.n_dims, r.data, true, &err) != NULL,
			      "add %s: %s", r.name, err.msg);
		}
	}
	fclose(f);
	free(tokens.data);
	cJSON_Delete(cfg);
	CHECK(models == 4, "read %d reference models", models);
	return test_finish();
}
