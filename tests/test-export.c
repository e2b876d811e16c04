/* GGUF export (sl_export_gguf): a model written and loaded back gives the
 * same logits (F32) or the same dequantized weights (every packed format,
 * in the ggml type its format exports as); NeoX-layout q and k rows come
 * back permuted to llama.cpp's interleaved pairs with the same logits, and
 * so do LoRA adapters on them (B's rows permuted with the matrix's, A's
 * left alone), read back as llama.cpp reads an adapter file;
 * pruned blocks of different widths come back as they were; the recipe
 * rides along in the metadata; cancelling writes nothing. */
#include <stdatomic.h>
#include <stdint.h>

#include "core/compress.h"
#include "core/export.h"
#include "core/forward.h"
#include "core/gguf.h"
#include "core/model.h"
#include "core/tokenizer.h"
#include "lora-ref.h"
#include "test.h"

static const int32_t tokens[] = {1, 403, 407, 261, 378, 261, 429, 434, 310, 275, 301, 394, 272, 283, 289, 287};
#define N_TOK ((int)(sizeof tokens / sizeof tokens[0]))

static const char *tmp(const char *name)
{
	static char buf[4][512];
	static int slot;
	char *p = buf[slot++ % 4];
	snprintf(p, 512, "%s/%s", test_tmpdir(), name);
	return p;
}

/* Logits after every token of the sequence (N_TOK x vocab, malloc'ed). */
static float *logits_of(const sl_model *m)
{
	sl_state *s;
	sl_error err;
	float *out = malloc(sizeof(float) * (size_t)N_TOK * (size_t)m->cfg.vocab_size);
	if (sl_state_new(m, N_TOK, &s, &err) || sl_forward(s, tokens, N_TOK, out, 0, &err)) {
		CHECK(0, "forward: %s", err.msg);
		free(out);
		return NULL;
	}
	sl_state_free(s);
	return out;
}

static double max_rel_diff(const float *a, const float *b, size_t n)
{
	double d = 0, mag = 1e-6;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		mag = fmax(mag, fabs((double)a[i]));
	}
	return d / mag;
}

/* Every tensor of b holds what a's holds: the same values after
 * dequantization, bit for bit. */
static void check_same_values(const sl_model *a, const sl_model *b, const char *what)
{
	int bad = 0;
	for (int i = 0; i < a->n_tensors; i++) {
		const sl_tensor *ta = a->tensors[i], *tb = sl_model_tensor(b, ta->name);
		if (!tb) {
			CHECK(ta == a->output && a->output == a->tok_embd, "%s: %s is missing", what, ta->name);
			continue;
		}
		int64_t n = sl_tensor_nelements(ta), rows = sl_tensor_nrows(ta);
		float *fa = malloc(sizeof(float) * (size_t)n), *fb = malloc(sizeof(float) * (size_t)n);
		sl_tensor_rows_to_f32(ta, 0, rows, fa);
		sl_tensor_rows_to_f32(tb, 0, rows, fb);
		if (memcmp(fa, fb, sizeof(float) * (size_t)n) && bad++ < 3)
			CHECK(0, "%s: %s (%s, exported as %s) changed", what, ta->name, sl_dtype_name(ta->type),
			      sl_dtype_name(tb->type));
		free(fa);
		free(fb);
	}
	CHECK(!bad, "%s: %d tensors changed", what, bad);
}

static sl_recipe *uniform(const char *format)
{
	char json[256];
	snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, \"name\": \"uniform %s\", \"default\": {\"format\": \"%s\"}}",
	         format, format);
	sl_recipe *r = NULL;
	sl_error err;
	CHECK(sl_recipe_parse(json, strlen(json), &r, &err) == SL_OK, "recipe: %s", err.msg);
	return r;
}

static void test_float_round_trip(const sl_model *m)
{
	const char *path = tmp("f32.gguf");
	sl_error err;
	REQUIRE(sl_export_gguf(m, NULL, path, NULL, &err) == SL_OK, "export: %s", err.msg);
	sl_model *back = test_load(path);
	REQUIRE(back, "reload");
	check_same_values(m, back, "f32");
	float *a = logits_of(m), *b = logits_of(back);
	CHECK(a && b && !memcmp(a, b, sizeof(float) * N_TOK * (size_t)m->cfg.vocab_size), "identical logits");
	CHECK(sl_tok_n_vocab(back->tok) == sl_tok_n_vocab(m->tok) && sl_tok_bos(back->tok) == sl_tok_bos(m->tok),
	      "the vocabulary comes along");
	free(a);
	free(b);
	sl_model_free(back);
}

/* Each format, applied by RTN and exported: same values, the expected
 * GGUF types, logits as close as the kernels' rounding allows. Where the
 * export holds the values in a type whose products meet the activations
 * otherwise (the format's integer dots round activations to int8, a float
 * stand-in does not; Q4_1 meets Q8_1 activations, whose block sums are
 * f16) the logits differ by the activations' rounding too: a few hundredths
 * of their range on this model. */
static void test_formats(const sl_model *base)
{
	static const struct {
		const char *format;
		int attn_type;  /* GGUF type of a 64-wide module (attn_q) */
		int down_type;  /* and of ffn_down, 172 wide */
		double tol;     /* of the logits' range */
	} cases[] = {
		{"q8_0", SL_DT_Q8_0, SL_DT_F16, 2e-3},       /* no ggml block holds 172: f16 */
		{"q4_0", SL_DT_Q4_0, SL_DT_F16, 2e-3},
		{"q4_k", SL_DT_Q4_0, SL_DT_F16, 2e-3},       /* 64 < 256: q4_0 */
		{"int4-g64", SL_DT_Q4_0, SL_DT_F32, 2e-3},   /* Q4_0 blocks sharing a scale; 172: int8 */
		{"int3-g32-asym", SL_DT_Q4_1, SL_DT_F32, 3e-2},
		{"int8-g64", SL_DT_Q8_0, SL_DT_F32, 2e-3},
		{"int8", SL_DT_F32, SL_DT_F32, 3e-2},
		{"mxfp4", -1, SL_DT_F32, 3e-2},              /* f16 or bf16, whichever holds it */
		{"nvfp4", SL_DT_F32, SL_DT_F32, 3e-2},
		{"fp8-e4m3-ch", SL_DT_F32, SL_DT_F32, 2e-3},
		{"nf4", SL_DT_F32, SL_DT_F32, 2e-3},         /* no ggml type; 172: fp8-e4m3 */
		{"nf4-dq", SL_DT_F32, SL_DT_F32, 2e-3},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		sl_recipe *r = uniform(cases[c].format);
		sl_model *q = NULL;
		sl_apply_report rep;
		sl_error err;
		sl_apply_opts o = {.simulate = false};
		if (!r || sl_recipe_apply(base, r, &o, &q, &rep, &err)) {
			CHECK(0, "%s: apply: %s", cases[c].format, err.msg);
			sl_recipe_free(r);
			continue;
		}
		sl_apply_report_free(&rep);
		sl_recipe_estimate e;
		sl_recipe_estimate_size(r, base, &e);
		CHECK(e.bytes == (double)sl_model_bytes(q), "%s: estimated %.0f bytes, applied %zu", cases[c].format,
		      e.bytes, sl_model_bytes(q));
		const char *path = tmp("q.gguf");
		CHECK(sl_export_gguf(q, r, path, NULL, &err) == SL_OK, "%s: export: %s", cases[c].format, err.msg);
		sl_model *back = test_load(path);
		if (back) {
			check_same_values(q, back, cases[c].format);
			int ta = sl_model_tensor(back, "blk.0.attn_q.weight")->type;
			int td = sl_model_tensor(back, "blk.0.ffn_down.weight")->type;
			CHECK(cases[c].attn_type < 0 ? ta == SL_DT_F16 || ta == SL_DT_BF16 : ta == cases[c].attn_type,
			      "%s: attn_q exported as %s", cases[c].format, sl_dtype_name(ta));
			CHECK(td == cases[c].down_type, "%s: ffn_down exported as %s", cases[c].format, sl_dtype_name(td));
			float *a = logits_of(q), *b = logits_of(back);
			double d = a && b ? max_rel_diff(a, b, (size_t)N_TOK * (size_t)base->cfg.vocab_size) : 1;
			CHECK(d < cases[c].tol, "%s: logits differ by %g of their range", cases[c].format, d);
			free(a);
			free(b);
			/* The recipe is in the metadata and reads back the same. */
			sl_gguf *g;
			char json[4096];
			if (sl_gguf_open(path, &g, &err) == SL_OK) {
				CHECK(sl_gguf_get_str(g, "slimlab.recipe", json, sizeof json), "slimlab.recipe is there");
				sl_recipe *rr = NULL;
				char *want = sl_recipe_to_json(r);
				CHECK(sl_recipe_parse(json, strlen(json), &rr, &err) == SL_OK && !strcmp(json, want),
				      "slimlab.recipe: %s", json);
				int64_t qv;
				bool quantized = ta != SL_DT_F32 && ta != SL_DT_F16 && ta != SL_DT_BF16;
				CHECK(quantized ? sl_gguf_get_i64(g, "general.quantization_version", &qv) && qv == 2
				                : !sl_gguf_find(g, "general.quantization_version"),
				      "%s: general.quantization_version", cases[c].format);
				free(want);
				sl_recipe_free(rr);
				sl_gguf_close(g);
			}
			sl_model_free(back);
		}
		sl_model_free(q);
		sl_recipe_free(r);
	}
}

/* Rank-2 adapters on some of m's matrices (q and k among them) exported
 * beside it: the export read back with the file's adapters computes what
 * m computes with them merged. */
static void check_adapters(sl_model *m, const char *exported)
{
	static const char *names[] = {"blk.0.attn_q.weight", "blk.1.attn_k.weight", "blk.1.ffn_down.weight"};
	enum { N = 3, R = 2 };
	const float alpha = 3;
	sl_tensor ab[2 * N];
	const sl_tensor *list[2 * N];
	sl_error err;
	memset(ab, 0, sizeof ab);
	for (int i = 0; i < N; i++) {
		const sl_tensor *w = sl_model_tensor(m, names[i]);
		REQUIRE(w && w->type == SL_DT_F32, "%s", names[i]);
		const int64_t ne_a[2] = {w->ne[0], R}, ne_b[2] = {R, w->ne[1]};
		for (int k = 0; k < 2; k++) {
			sl_tensor *t = &ab[2 * i + k];
			snprintf(t->name, sizeof t->name, "%s.lora_%c", names[i], k ? 'b' : 'a');
			REQUIRE(!sl_tensor_realloc(t, SL_DT_F32, k ? ne_b : ne_a, 2, &err), "%s", err.msg);
			float *d = t->data;
			for (int64_t j = 0; j < sl_tensor_nelements(t); j++)
				d[j] = 0.05f * (float)((j * 29 + i * 7 + k * 3) % 19 - 9);
			list[2 * i + k] = t;
		}
	}
	const char *path = tmp("neox-lora.gguf");
	sl_model *back = NULL, *merged = NULL;
	int pairs = 0;
	char why[1400];
	if (TEST_EVAL(sl_export_lora(m, list, 2 * N, alpha, path, &err) == SL_OK, "adapters: %s", err.msg) &&
	    TEST_EVAL((back = test_load(exported)) && sl_model_clone(m, &merged, &err) == SL_OK, "models") &&
	    TEST_EVAL(lora_merge(back, path, "llama", &pairs, why, sizeof why), "%s", why) &&
	    TEST_EVAL(lora_merge(merged, path, "llama", &pairs, why, sizeof why), "%s", why)) {
		/* merged took the file's B rows as they are, permuted for the
		 * interleaved layout: its q and k adapters land on other rows. */
		float *a = logits_of(merged), *b = logits_of(back);
		CHECK(pairs == N, "%d pairs", pairs);
		CHECK(a && b && max_rel_diff(a, b, (size_t)N_TOK * 512) > 1e-3, "the adapters' rows are permuted");
		free(a);
		free(b);
		sl_model_free(merged);
		merged = NULL;
		if (!sl_model_clone(m, &merged, &err)) {
			for (int i = 0; i < N; i++) {
				sl_tensor *w = sl_model_tensor(merged, names[i]);
				const float *A = ab[2 * i].data, *B = ab[2 * i + 1].data;
				float *W = w->data;
				for (int64_t r = 0; r < w->ne[1]; r++)
					for (int64_t c = 0; c < w->ne[0]; c++)
						for (int k = 0; k < R; k++)
							W[r * w->ne[0] + c] += alpha / R * B[r * R + k] * A[k * w->ne[0] + c];
			}
			a = logits_of(merged);
			b = logits_of(back);
			double d = a && b ? max_rel_diff(a, b, (size_t)N_TOK * 512) : 1;
			CHECK(d < 1e-5, "with adapters the export's logits differ by %g of their range", d);
			free(a);
			free(b);
		}
	}
	/* Half an adapter, or one of the wrong shape, is refused. */
	CHECK(sl_export_lora(m, list, 2 * N - 1, alpha, path, &err) == SL_ERR_ARG && strstr(err.msg, "one half"),
	      "half an adapter: %s", err.msg);
	ab[0].ne[1] = R + 1;
	CHECK(sl_export_lora(m, list, 2 * N, alpha, path, &err) == SL_ERR_ARG && strstr(err.msg, "shape"),
	      "a wrong shape: %s", err.msg);
	for (int i = 0; i < 2 * N; i++)
		sl_tensor_release(&ab[i]);
	sl_model_free(back);
	sl_model_free(merged);
}

/* A Llama laid out for NeoX rotary (as Hugging Face stores it), with q and
 * k biases and partial rotary: exported for llama.cpp's interleaved pairs,
 * it computes the same logits, and so it does with LoRA adapters. */
static void test_neox_permutation(const sl_model *stories)
{
	for (int partial = 0; partial < 2; partial++) {
		sl_config c = {.arch = SL_ARCH_LLAMA, .dim = 64, .hidden_dim = 96, .n_layers = 2, .n_heads = 4,
		               .n_kv_heads = 2, .vocab_size = 512, .max_seq_len = 64, .rope_style = SL_ROPE_NEOX,
		               .rope_dim = partial ? 8 : 0};
		sl_model *m;
		sl_error err;
		REQUIRE(sl_model_init_random(&c, false, 0.1f, 3, &m, &err) == SL_OK, "model: %s", err.msg);
		m->tok = sl_tok_ref(stories->tok);
		for (int il = 0; il < c.n_layers; il++) {
			static const char *names[2] = {"attn_q", "attn_k"};
			for (int k = 0; k < 2; k++) {
				char name[64];
				int64_t ne = (k ? c.n_kv_heads : c.n_heads) * 16;
				float *b = malloc(sizeof(float) * (size_t)ne);
				for (int64_t i = 0; i < ne; i++)
					b[i] = 0.05f * (float)((i * 37 + il * 11 + k) % 23 - 11);
				snprintf(name, sizeof name, "blk.%d.%s.bias", il, names[k]);
				sl_tensor *t = sl_model_add_tensor(m, name, SL_DT_F32, &ne, 1, b, true, &err);
				REQUIRE(t, "bias: %s", err.msg);
				*(k ? &m->layers[il].bk : &m->layers[il].bq) = t;
			}
		}
		const char *path = tmp("neox.gguf");
		REQUIRE(sl_export_gguf(m, NULL, path, NULL, &err) == SL_OK, "export: %s", err.msg);
		sl_model *back = test_load(path);
		REQUIRE(back, "reload");
		CHECK(back->cfg.rope_style == SL_ROPE_NORM && !strcmp(back->cfg.arch_name, "llama") &&
		      back->cfg.rope_dim == m->cfg.rope_dim, "exported as llama with interleaved rotary, %d dims",
		      back->cfg.rope_dim);
		float *a = logits_of(m), *b = logits_of(back);
		double d = a && b ? max_rel_diff(a, b, (size_t)N_TOK * 512) : 1;
		CHECK(d < 1e-5, "%s rotary: logits differ by %g of their range", partial ? "partial" : "full", d);
		/* Without the permutation they would not agree. */
		float *neox_as_norm = NULL;
		m->cfg.rope_style = SL_ROPE_NORM;
		neox_as_norm = logits_of(m);
		CHECK(neox_as_norm && max_rel_diff(neox_as_norm, b, (size_t)N_TOK * 512) > 1e-3, "the test can fail");
		m->cfg.rope_style = SL_ROPE_NEOX;
		check_adapters(m, path);
		free(a);
		free(b);
		free(neox_as_norm);
		sl_model_free(back);
		sl_model_free(m);
	}
}

/* Structured pruning leaves blocks of different widths: llama.cpp runs
 * those as "deci", with per-block head counts and MLP widths. */
static void test_pruned_blocks(const sl_model *base)
{
	char json[1024];
	snprintf(json, sizeof json,
	         "{\"slimlab_recipe\": 1, \"rules\": ["
	         "{\"match\": \"blk.*.ffn_*\", \"layers\": \"1-3\", \"pattern\": \"channels\", \"sparsity\": 0.25},"
	         "{\"match\": \"blk.*.attn_*\", \"layers\": \"2-\", \"pattern\": \"heads\", \"sparsity\": 0.5}],"
	         " \"calibration\": {\"text\": \"%s\", \"tokens\": 1024, \"ctx\": 128}}",
	         test_srcpath("data/calib.txt"));
	sl_recipe *r = NULL;
	sl_model *q = NULL;
	sl_apply_report rep = {0};
	sl_error err;
	REQUIRE(sl_recipe_parse(json, strlen(json), &r, &err) == SL_OK, "recipe: %s", err.msg);
	if (sl_recipe_apply(base, r, NULL, &q, &rep, &err)) {
		CHECK(0, "apply: %s", err.msg);
		sl_recipe_free(r);
		return;
	}
	const char *path = tmp("pruned.gguf");
	CHECK(sl_export_gguf(q, r, path, NULL, &err) == SL_OK, "export: %s", err.msg);
	sl_model *back = test_load(path);
	if (back) {
		CHECK(!strcmp(back->cfg.arch_name, "deci") && back->layers[1].hidden_dim == 129 &&
		      back->layers[0].hidden_dim == 172 && back->layers[3].n_heads == 4 && back->layers[1].n_heads == 8,
		      "deci with per-block widths: %s, hidden %d/%d, heads %d/%d", back->cfg.arch_name,
		      back->layers[0].hidden_dim, back->layers[1].hidden_dim, back->layers[1].n_heads,
		      back->layers[3].n_heads);
		float *a = logits_of(q), *b = logits_of(back);
		CHECK(a && b && !memcmp(a, b, sizeof(float) * N_TOK * 512), "identical logits");
		free(a);
		free(b);
		sl_model_free(back);
	}
	sl_apply_report_free(&rep);
	sl_model_free(q);
	sl_recipe_free(r);
}

static void cancel_now(void *ctx, double frac, const char *stage)
{
	(void)ctx;
	(void)frac;
	(void)stage;
}

static void test_cancel_and_errors(const sl_model *m)
{
	atomic_int cancel = 1;
	sl_progress p = {.fn = cancel_now, .cancel = &cancel};
	sl_error err;
	const char *path = tmp("cancelled.gguf");
	CHECK(sl_export_gguf(m, NULL, path, &p, &err) == SL_ERR_CANCELLED && access(path, F_OK) != 0,
	      "cancelled: nothing written");
	CHECK(sl_export_gguf(m, NULL, "/nonexistent/dir/x.gguf", NULL, &err) != SL_OK &&
	      strstr(err.msg, "/nonexistent/dir/x.gguf"), "bad path: %s", err.msg);
}

int main(void)
{
	const char *bin = test_fixture("models/stories260K.bin");
	if (!bin)
		return test_finish();
	sl_model *m = test_load(bin);
	if (!m)
		return test_finish();
	test_float_round_trip(m);
	test_formats(m);
	test_neox_permutation(m);
	test_pruned_blocks(m);
	test_cancel_and_errors(m);
	sl_model_free(m);
	return test_finish();
}
