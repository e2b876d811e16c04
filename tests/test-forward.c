/* The forward pass against independent references: llama2.c's run.c token
 * for token, and the same weights through the GGUF and llama2.c loaders,
 * batched and token by token through the KV cache. */
#include <stdint.h>

#include "core/eval.h"
#include "core/fileio.h"
#include "core/forward.h"
#include "core/model.h"
#include "core/tokenizer.h"
#include "test.h"

typedef struct {
	int32_t ids[256];
	int n;
	char text[4096];
	size_t len;
} collected;

static bool collect(void *ctx, int32_t id, const char *text, size_t len)
{
	collected *c = ctx;
	if (c->n < 256)
		c->ids[c->n++] = id;
	if (c->len + len < sizeof c->text) {
		memcpy(c->text + c->len, text, len);
		c->len += len;
	}
	return true;
}

/* stories260K greedy from BOS, 200 tokens: exactly run.c's output. */
static void test_llama2c_reference(void)
{
	const char *bin = test_fixture("models/stories260K.bin");
	if (!bin)
		return;
	sl_model *m = test_load(bin);
	REQUIRE(m, "stories260K.bin loads (tok512.bin found beside it)");
	FILE *f = fopen(test_srcpath("tests/data/stories260K-greedy200.txt"), "r");
	REQUIRE(f, "expected ids file");
	int32_t want[200];
	int nw = 0;
	char line[4096];
	while (fgets(line, sizeof line, f))
		if (line[0] != '#')
			for (char *p = strtok(line, " \n"); p && nw < 200; p = strtok(NULL, " \n"))
				want[nw++] = atoi(p);
	fclose(f);
	CHECK(nw == 200, "200 expected ids, read %d", nw);
	sl_sampler smp;
	sl_sampler_init(&smp, 0.0f, 1.0f, 0, 1);
	collected got = {0};
	sl_error err = {0};
	CHECK(sl_generate(m, "", 200, &smp, collect, &got, NULL, &err) == SL_OK, "generate: %s", err.msg);
	CHECK(got.n == 200, "200 tokens generated, got %d", got.n);
	int first_diff = -1;
	for (int i = 0; i < got.n && i < nw; i++)
		if (got.ids[i] != want[i]) {
			first_diff = i;
			break;
		}
	CHECK(first_diff < 0, "token %d differs from run.c: %d vs %d", first_diff,
	      first_diff >= 0 ? got.ids[first_diff] : 0, first_diff >= 0 ? want[first_diff] : 0);
	const char *start = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
	CHECK(got.len >= strlen(start) && !memcmp(got.text, start, strlen(start)), "story text: %.*s",
	      (int)(got.len < 120 ? got.len : 120), got.text);
	sl_model_free(m);
}

/* The same weights through two loaders give the same logits, batched or not. */
static void test_gguf_matches_bin(void)
{
	const char *bin = test_fixture("models/stories260K.bin");
	const char *gg = test_fixture("models/stories260K.gguf");
	if (!bin || !gg)
		return;
	sl_model *a = test_load(bin), *b = test_load(gg);
	REQUIRE(a && b, "both load");
	CHECK(a->cfg.dim == b->cfg.dim && a->cfg.n_layers == b->cfg.n_layers &&
	      a->cfg.n_kv_heads == b->cfg.n_kv_heads && a->cfg.vocab_size == b->cfg.vocab_size,
	      "configs agree");
	int32_t toks[64];
	for (int i = 0; i < 64; i++)
		toks[i] = i == 0 ? 1 : (int32_t)((i * 37 + 11) % 512);
	int V = a->cfg.vocab_size;
	float *la = malloc(sizeof(float) * 64 * V), *lb = malloc(sizeof(float) * 64 * V),
	      *lc = malloc(sizeof(float) * 64 * V);
	sl_state *sa, *sb, *sc;
	sl_error err;
	REQUIRE(!sl_state_new(a, 128, &sa, &err) && !sl_state_new(b, 128, &sb, &err) &&
	        !sl_state_new(b, 128, &sc, &err), "states");
	/* the products read the activations and the cache in place only
	 * where rows start on a cache line (kernels/cpu/gemm.c) */
	const void *bufs[] = {sa->kv, sa->x, sa->xb, sa->q, sa->att, sa->hb, sa->hb2};
	for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
		CHECK((uintptr_t)bufs[i] % 64 == 0, "state buffer %zu at %p is not on a cache line", i, bufs[i]);
	CHECK(!sl_forward(sa, toks, 64, la, 0, &err), "forward a");
	CHECK(!sl_forward(sb, toks, 64, lb, 0, &err), "forward b");
	/* Token by token through the KV cache must agree with the batch. */
	for (int i = 0; i < 64; i++)
		CHECK(!sl_forward(sc, &toks[i], 1, lc + (size_t)i * V, 0, &err), "step %d", i);
	double d_ab = 0, d_bc = 0;
	for (size_t i = 0; i < (size_t)64 * V; i++) {
		d_ab = fmax(d_ab, fabs(la[i] - lb[i]));
		d_bc = fmax(d_bc, fabs(lb[i] - lc[i]));
	}
	CHECK(d_ab <= 1e-5, "gguf vs bin max abs logit diff %g", d_ab);
	CHECK(d_bc <= 1e-4, "batched vs incremental max abs logit diff %g", d_bc);
	printf("gguf vs bin: max |diff| %.3g; batched vs incremental: %.3g\n", d_ab, d_bc);
	sl_state_free(sa);
	sl_state_free(sb);
	sl_state_free(sc);
	free(la);
	free(lb);
	free(lc);
	sl_model_free(a);
	sl_model_free(b);
}

/* Perplexity on the shipped evaluation text against llama.cpp's perplexity
 * tool on the same file (llama.cpp c392e509, built outside this repository:
 * llama-perplexity -m stories260K.gguf -f data/eval.txt -c 128 --chunks 20
 * printed "PPL = 56.0087 +/- 4.70031"). */
static void test_perplexity_matches_llama_cpp(void)
{
	const char *gg = test_fixture("models/stories260K.gguf");
	if (!gg)
		return;
	sl_model *m = test_load(gg);
	REQUIRE(m, "load");
	char *text;
	size_t len;
	sl_error err = {0};
	REQUIRE(sl_read_file(test_srcpath("data/eval.txt"), 1 << 24, &text, &len, &err) == SL_OK, "%s", err.msg);
	sl_eval_opts o = {.n_ctx = 128, .n_chunks = 20};
	sl_eval_result r;
	CHECK(sl_eval_text(m, m, text, len, &o, &r, &err) == SL_OK, "eval: %s", err.msg);
	CHECK(r.n_chunks == 20 && r.n_scored == 20 * 63, "%d windows, %lld predictions", r.n_chunks, r.n_scored);
	CHECK_NEAR(r.ppl, 56.0087, 0.01, "perplexity vs llama.cpp");
	CHECK_NEAR(r.ppl_se, 4.70031, 0.01, "its standard error vs llama.cpp");
	/* Against itself: nothing lost. */
	CHECK(r.kl_max < 1e-9 && r.top1 == 1.0 && fabs(r.delta_ppl) < 1e-9, "self KL %g, top-1 %g", r.kl_max, r.top1);
	printf("perplexity %.4f +/- %.4f (llama.cpp: 56.0087 +/- 4.70031)\n", r.ppl, r.ppl_se);
	free(text);
	sl_model_free(m);
}

int main(void)
{
	test_llama2c_reference();
	test_gguf_matches_bin();
	test_perplexity_matches_llama_cpp();
	return test_finish();
}
