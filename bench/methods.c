/* bench/methods: what each compression method costs in time and quality.
 * For a real model (stories260K from the fixtures, or the model given),
 * every method at every bit width: seconds to apply (calibration timed
 * once, apart), bits per weight, and KL / PPL / top-1 agreement against
 * the base on data/eval.txt. Then, for timing at a more realistic width, a
 * random-weight model of dim 512 (1376-wide MLP, 4 blocks) with the same
 * tokenizer, where quality means nothing and only seconds are shown.
 * Usage: bench/methods [MODEL] (run from the source tree) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/compress.h"
#include "core/eval.h"
#include "core/recipe.h"
#include "core/tokenizer.h"

static char *eval_text;
static size_t eval_len;

typedef struct {
	const char *label;
	const char *rule; /* JSON fields of the default rule */
} row;

static const row quant_rows[] = {
	{"rtn int8-g32", "\"format\": \"int8-g32\""},
	{"rtn q6_k", "\"format\": \"q6_k\""},
	{"rtn q5_0", "\"format\": \"q5_0\""},
	{"rtn int4-g32", "\"format\": \"int4-g32\""},
	{"rtn int3-g32", "\"format\": \"int3-g32\""},
	{"gptq int8-g32", "\"format\": \"int8-g32\", \"method\": \"gptq\""},
	{"gptq q6_k", "\"format\": \"q6_k\", \"method\": \"gptq\""},
	{"gptq q5_0", "\"format\": \"q5_0\", \"method\": \"gptq\""},
	{"gptq int4-g32", "\"format\": \"int4-g32\", \"method\": \"gptq\""},
	{"gptq int3-g32", "\"format\": \"int3-g32\", \"method\": \"gptq\""},
	{"awq int8-g32", "\"format\": \"int8-g32\", \"method\": \"awq\""},
	{"awq q6_k", "\"format\": \"q6_k\", \"method\": \"awq\""},
	{"awq q5_0", "\"format\": \"q5_0\", \"method\": \"awq\""},
	{"awq int4-g32", "\"format\": \"int4-g32\", \"method\": \"awq\""},
	{"awq int3-g32", "\"format\": \"int3-g32\", \"method\": \"awq\""},
	{"rtn q4_k", "\"format\": \"q4_k\""},
	{"gptq q4_k", "\"format\": \"q4_k\", \"method\": \"gptq\""},
	{"rtn nvfp4", "\"format\": \"nvfp4\""},
	{"gptq nvfp4", "\"format\": \"nvfp4\", \"method\": \"gptq\""},
	{"smoothquant w8a8", "\"format\": \"int8\", \"method\": \"smoothquant\""},
	{"magnitude 50%", "\"sparsity\": 0.5, \"prune\": \"magnitude\""},
	{"wanda 50%", "\"sparsity\": 0.5, \"prune\": \"wanda\""},
	{"sparsegpt 50%", "\"sparsity\": 0.5, \"prune\": \"sparsegpt\""},
	{"magnitude 2:4", "\"pattern\": \"2:4\", \"prune\": \"magnitude\""},
	{"wanda 2:4", "\"pattern\": \"2:4\", \"prune\": \"wanda\""},
	{"sparsegpt 2:4", "\"pattern\": \"2:4\", \"prune\": \"sparsegpt\""},
	{"heads 25%", "\"sparsity\": 0.25, \"pattern\": \"heads\""},
	{"channels 25%", "\"sparsity\": 0.25, \"pattern\": \"channels\""},
	{"blocks 20%", "\"sparsity\": 0.2, \"pattern\": \"block\""},
};

/* Pruning and structure rules name the blocks, leaving the embedding. */
static sl_recipe *make_recipe(const row *rw)
{
	char json[512];
	bool blocks_only = strstr(rw->rule, "sparsity") || strstr(rw->rule, "pattern");
	if (blocks_only)
		snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, \"rules\": [{\"match\": \"blk.*\", %s}]}", rw->rule);
	else
		snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, \"default\": {%s}}", rw->rule);
	sl_recipe *r = NULL;
	sl_error err = {0};
	if (sl_recipe_parse(json, strlen(json), &r, &err)) {
		fprintf(stderr, "%s: %s\n", rw->label, err.msg);
		return NULL;
	}
	snprintf(r->calib.text, sizeof r->calib.text, "data/calib.txt");
	r->calib.tokens = 8192;
	r->calib.ctx = 256;
	r->calib.seed = 1;
	return r;
}

static void bench_model(const char *label, const sl_model *base, bool quality)
{
	sl_error err = {0};
	sl_calib_opts co = {.text_path = "data/calib.txt", .tokens = 8192, .ctx = 256, .seed = 1, .hessians = true,
	                    .cache_dir = ""};
	sl_calib *calib = NULL;
	double t0 = bench_now();
	if (sl_calib_gather(base, &co, &calib, &err)) {
		fprintf(stderr, "%s: calibration: %s\n", label, err.msg);
		return;
	}
	printf("\n%s: calibration over 8192 tokens with Hessians: %.2f s\n", label, bench_now() - t0);
	printf("%-18s %7s %9s %9s %10s %9s %7s\n", "method", "bpw", "wall s", "cpu s", "KL", "PPL", "top-1");
	for (size_t i = 0; i < sizeof quant_rows / sizeof quant_rows[0]; i++) {
		const row *rw = &quant_rows[i];
		sl_recipe *r = make_recipe(rw);
		if (!r)
			continue;
		sl_apply_opts o = {.calib = calib};
		sl_model *m = NULL;
		sl_apply_report rep;
		double cpu0 = bench_cpu_now();
		if (sl_recipe_apply(base, r, &o, &m, &rep, &err)) {
			printf("%-18s %s\n", rw->label, err.msg);
			sl_recipe_free(r);
			continue;
		}
		printf("%-18s %7.2f %9.3f %9.3f", rw->label, rep.bpw, rep.seconds, bench_cpu_now() - cpu0);
		sl_eval_result res;
		sl_eval_opts eo = {.n_ctx = 256, .n_chunks = 48};
		if (quality && !sl_eval_text(m, base, eval_text, eval_len, &eo, &res, &err))
			printf(" %10.5f %9.3f %7.3f", res.kl_mean, res.ppl, res.top1);
		printf("%s\n", rep.n_fallbacks ? "  (some modules fell back)" : "");
		sl_apply_report_free(&rep);
		sl_model_free(m);
		sl_recipe_free(r);
	}
	if (quality) {
		sl_eval_result res;
		sl_eval_opts eo = {.n_ctx = 256, .n_chunks = 48};
		if (!sl_eval_text(base, NULL, eval_text, eval_len, &eo, &res, &err))
			printf("%-18s %7.2f %9s %9s %10s %9.3f\n", "base", 8.0 * sl_model_bytes(base) / sl_model_n_params(base),
			       "", "", "", res.ppl);
	}
	sl_calib_free(calib);
}

int main(int argc, char **argv)
{
	const char *path = bench_model_path(argc, argv);
	sl_error err = {0};
	if (sl_read_file("data/eval.txt", 1 << 26, &eval_text, &eval_len, &err)) {
		fprintf(stderr, "%s (run from the source tree)\n", err.msg);
		return 1;
	}
	printf("threads %d\n", sl_kernels_threads());
	sl_model *m = NULL;
	if (sl_model_load(path, NULL, &m, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	bench_model(path, m, true);

	sl_config cfg = {.arch = SL_ARCH_LLAMA, .dim = 512, .hidden_dim = 1376, .n_layers = 4, .n_heads = 8,
	                 .n_kv_heads = 4, .vocab_size = m->cfg.vocab_size, .max_seq_len = 512};
	sl_model *r = NULL;
	if (sl_model_init_random(&cfg, false, 0.02f, 7, &r, &err)) {
		fprintf(stderr, "random model: %s\n", err.msg);
	} else {
		r->tok = sl_tok_ref(m->tok);
		bench_model("random llama, dim 512, MLP 1376, 4 blocks", r, false);
		sl_model_free(r);
	}
	sl_model_free(m);
	free(eval_text);
	return 0;
}
