/* The format catalog (names, bits per weight, fallbacks, export types) and
 * recipes: parsing, writing, rule resolution, every problem reported with
 * its JSON path, size estimates, and hostile recipe text (truncated and
 * flipped bytes) that must never crash. */
#include <stdint.h>

#include "core/formats.h"
#include "core/recipe.h"
#include "test.h"

/* ---- the catalog --------------------------------------------------------- */

static void test_catalog(void)
{
	static const char *names[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k",
	                              "q4_k", "q5_k", "q6_k", "int8", "fp8-e4m3", "fp8-e4m3-ch", "fp8-e5m2",
	                              "fp8-e5m2-ch", "nvfp4", "mxfp4", "nf4", "nf4-dq"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const sl_format *f = sl_format_find(names[i]);
		CHECK(f && f == sl_format_of_dtype(f->dtype) && sl_type_info_get(f->dtype), "format %s", names[i]);
	}
	for (int b = 8; b >= 2; b = b == 8 ? 4 : b - 1)
		for (int g = 32; g <= 128; g *= 2)
			for (int a = 0; a < 2; a++) {
				char n[32];
				snprintf(n, sizeof n, "int%d-g%d%s", b, g, a ? "-asym" : "");
				const sl_format *f = sl_format_find(n);
				CHECK(f && f->dtype == sl_dtype_int_group(b, g, a) && f->bits == b && f->group == g, "format %s", n);
			}
	CHECK(sl_format_count() == 22 + 24, "%d formats", sl_format_count());
	CHECK(!sl_format_find("q9_9") && !sl_format_find("Q4_0") && !sl_format_find(NULL), "unknown names");
	for (int i = 0; i < sl_format_count(); i++) {
		const sl_format *f = sl_format_at(i);
		bool lower = true;
		for (const char *c = f->name; *c; c++)
			lower = lower && !(*c >= 'A' && *c <= 'Z');
		CHECK(lower && f->summary[0] && f->family[0], "%s: lower-case name, summary, family", f->name);
	}

	/* Bits per weight, scales included, from each layout. */
	CHECK_NEAR(sl_format_bpw(sl_format_find("q4_0"), 4096), 4.5, 1e-12, "q4_0: 18 bytes per 32");
	CHECK_NEAR(sl_format_bpw(sl_format_find("q4_k"), 4096), 4.5, 1e-12, "q4_k: 144 bytes per 256");
	CHECK_NEAR(sl_format_bpw(sl_format_find("q6_k"), 4096), 6.5625, 1e-12, "q6_k: 210 bytes per 256");
	CHECK_NEAR(sl_format_bpw(sl_format_find("int4-g128"), 4096), 4.125, 1e-12, "int4-g128: 66 bytes per 128");
	CHECK_NEAR(sl_format_bpw(sl_format_find("int3-g64-asym"), 4096), 3.5, 1e-12, "int3-g64-asym: 28 per 64");
	CHECK_NEAR(sl_format_bpw(sl_format_find("int8"), 4096), 8 + 32.0 / 4096, 1e-12, "int8: f32 per row");
	CHECK_NEAR(sl_format_bpw(sl_format_find("nvfp4"), 4096), 4.5 + 32.0 / 4096, 1e-12, "nvfp4: 9 per 16 + f32");
	CHECK_NEAR(sl_format_bpw(sl_format_find("mxfp4"), 4096), 4.25, 1e-12, "mxfp4: 17 per 32");
	CHECK_NEAR(sl_format_bpw(sl_format_find("nf4"), 4096), 4.5, 1e-12, "nf4: 36 per 64");
	CHECK_NEAR(sl_format_bpw(sl_format_find("nf4-dq"), 4096), 4.125 + 64.0 / 4096, 1e-12, "nf4-dq: 33 per 64 + 8");
	CHECK_NEAR(sl_format_bpw(sl_format_find("q4_k"), 288), 4.5, 1e-12, "nominal bits where rows do not fit");

	CHECK(!sl_format_fits(sl_format_find("q4_k"), 288) && sl_format_fits(sl_format_find("q4_k"), 512), "q4_k fits");
	CHECK(sl_format_fits(sl_format_find("int8"), 172) && !sl_format_fits(sl_format_find("int4-g32"), 172), "fits");

	/* Fallbacks: same family, never fewer bits when that can be had. */
	static const struct {
		const char *asked;
		int64_t n;
		const char *used;
	} fb[] = {
		{"q4_k", 288, "q4_0"}, {"q5_k", 288, "q5_0"}, {"q6_k", 288, "q8_0"}, {"q2_k", 288, "q4_0"},
		{"q3_k", 288, "q4_0"}, {"q4_k", 512, "q4_k"}, {"int4-g128", 288, "int4-g32"}, {"q8_0", 172, "f16"},
		{"int4-g128-asym", 288, "int4-g32-asym"}, {"int2-g64", 96, "int2-g32"}, {"q4_0", 172, "f16"},
		{"int3-g32", 172, "int8"}, {"nvfp4", 172, "fp8-e4m3"}, {"mxfp4", 48, "nvfp4"}, {"f16", 7, "f16"},
		{"nf4", 96, "nvfp4"}, {"nf4-dq", 288, "nvfp4"}, {"nf4", 172, "fp8-e4m3"}, {"nf4", 128, "nf4"},
	};
	for (size_t i = 0; i < sizeof fb / sizeof fb[0]; i++) {
		const sl_format *u = sl_format_fallback(sl_format_find(fb[i].asked), fb[i].n);
		CHECK(u && !strcmp(u->name, fb[i].used), "%s on rows of %lld falls back to %s, not %s", fb[i].asked,
		      (long long)fb[i].n, fb[i].used, u ? u->name : "(none)");
	}

	/* Export types: ggml's own, a ggml twin, else the smallest exact float. */
	float v[4] = {1.0f, -0.5f, 3.0f, 0.0f};
	CHECK(sl_format_export_type(sl_format_find("q4_k"), NULL, 0) == SL_DT_Q4_K, "q4_k exports as itself");
	CHECK(sl_format_export_type(sl_format_find("int4-g128"), NULL, 0) == SL_DT_Q4_0, "int4 as Q4_0");
	CHECK(sl_format_export_type(sl_format_find("int3-g64-asym"), NULL, 0) == SL_DT_Q4_1, "int3-asym as Q4_1");
	CHECK(sl_format_export_type(sl_format_find("int8-g128"), NULL, 0) == SL_DT_Q8_0, "int8-g128 as Q8_0");
	CHECK(sl_format_export_type(sl_format_find("mxfp4"), v, 4) == SL_DT_F16, "exact in f16");
	v[1] = 0x1p-30f; /* below f16's range, within bf16's */
	CHECK(sl_format_export_type(sl_format_find("mxfp4"), v, 4) == SL_DT_BF16, "exact in bf16 only");
	v[2] = 1.0f / 3.0f;
	CHECK(sl_format_export_type(sl_format_find("nvfp4"), v, 4) == SL_DT_F32, "exact in f32 only");
	/* NF4's values carry a full f32 mantissa, even under a scale of one. */
	float nf[4] = {1.0f, 0.0f, -0.6961928009986877f, 0.07958029955625534f};
	CHECK(sl_format_export_type(sl_format_find("nf4"), nf, 4) == SL_DT_F32, "nf4 has no twin: f32");
	CHECK(sl_format_export_type(sl_format_find("nf4-dq"), nf, 2) == SL_DT_F16, "what f16 holds exactly goes as f16");
}

/* Fake quantization is each format's round trip, and its mask marks what
 * the format clipped: nothing where a scale spans its run's extremes, the
 * far side of a symmetric run whose levels stop short of it, values past a
 * minifloat's largest under a scale rounded down. */
static void test_fake_quantize(void)
{
	enum { R = 4, C = 256 };
	float W[R * C], out[R * C], rt[R * C];
	unsigned char in[R * C];
	uint64_t s = 7;
	for (int i = 0; i < R * C; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		W[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
	}
	for (int i = 0; i < sl_format_count(); i++) {
		const sl_format *f = sl_format_at(i);
		sl_error err = {0};
		CHECK(sl_format_fake_quantize(f, W, out, in, R, C, &err) == SL_OK, "%s: %s", f->name, err.msg);
		CHECK(sl_roundtrip(f->dtype, W, rt, R, C, NULL) == SL_OK && !memcmp(out, rt, sizeof out),
		      "%s: fake quantization is the round trip", f->name);
		int clipped = 0;
		for (int k = 0; k < R * C; k++)
			clipped += !in[k];
		bool span = strstr(f->name, "-asym") || !strcmp(f->family, "float") || !strcmp(f->family, "fp8") ||
		            !strcmp(f->name, "int8") || (!strcmp(f->family, "int") && f->bits == 8) ||
		            !strcmp(f->name, "nf4");
		if (span)
			CHECK(clipped == 0, "%s: a scale that spans its run clips nothing (%d clipped)", f->name, clipped);
	}
	/* nf4-dq: a block's extreme is +-1 times its double-quantized scale,
	 * the largest magnitude of its round trip; values beyond that scale,
	 * and only those, were clipped. */
	const sl_format *dq = sl_format_find("nf4-dq");
	int beyond = 0, wrong = 0;
	CHECK(sl_format_fake_quantize(dq, W, out, in, R, C, NULL) == SL_OK, "nf4-dq");
	for (int b = 0; b < R * C / 64; b++) {
		float d = 0;
		for (int k = b * 64; k < b * 64 + 64; k++)
			d = fmaxf(d, fabsf(out[k]));
		for (int k = b * 64; k < b * 64 + 64; k++) {
			beyond += fabsf(W[k] / d) > 1.0f;
			wrong += in[k] != (fabsf(W[k] / d) <= 1.0f);
		}
	}
	CHECK(beyond > 0 && wrong == 0, "nf4-dq clips what lies beyond its scales (%d), nothing else (%d)", beyond,
	      wrong);
	/* int4-g32: d = -0.5/-8, levels -8..7, so 0.47 (7.52 steps) is clipped. */
	float b[32] = {-0.5f, 0.47f, 0.43f, 0.1f};
	float q[32];
	unsigned char m[32];
	CHECK(sl_format_fake_quantize(sl_format_find("int4-g32"), b, q, m, 1, 32, NULL) == SL_OK, "int4-g32 block");
	CHECK(m[0] && !m[1] && m[2] && m[3] && q[1] == 0.4375f, "the far side beyond 7.5 steps is clipped (%d %d %d, %g)",
	      m[0], m[1], m[2], q[1]);
	CHECK(sl_format_fake_quantize(sl_format_find("q4_k"), b, q, m, 1, 32, NULL) == SL_ERR_ARG,
	      "rows the format cannot hold are refused");
}

/* ---- recipes ------------------------------------------------------------------ */

static const char full_recipe[] =
	"{\n"
	"  \"slimlab_recipe\": 1,\n"
	"  \"name\": \"mixed\",\n"
	"  \"calibration\": {\"text\": \"data/calib.txt\", \"tokens\": 4096, \"ctx\": 128, \"seed\": 7},\n"
	"  \"default\": {\"format\": \"int4-g128\", \"method\": \"rtn\"},\n"
	"  \"rules\": [\n"
	"    {\"match\": \"blk.*.ffn_down\", \"layers\": \"0-1\", \"format\": \"q8_0\", \"method\": \"gptq\",\n"
	"     \"params\": {\"damp\": 0.02, \"block\": 64, \"act_order\": true}, \"note\": \"sensitive\"},\n"
	"    {\"match\": \"blk.?.attn_*\", \"sparsity\": 0.5, \"pattern\": \"2:4\", \"prune\": \"wanda\"},\n"
	"    {\"match\": \"output\", \"format\": \"keep\"},\n"
	"    {\"layers\": \"1-\", \"params\": {\"group\": 64}},\n"
	"    {\"match\": \"token_embd\", \"method\": \"awq\", \"params\": {\"grid\": 10, \"alpha\": 0.6}}\n"
	"  ],\n"
	"  \"kv_cache\": \"int8\"\n"
	"}\n";

static sl_recipe *parse(const char *text)
{
	sl_recipe *r = NULL;
	sl_error err = {0};
	sl_status st = sl_recipe_parse(text, strlen(text), &r, &err);
	CHECK(st == SL_OK, "parse: %s", err.msg);
	return st ? NULL : r;
}

/* A parameter a plan holds; NaN when no rule set it. */
static double plan_has(const sl_module_plan *p, const char *key)
{
	for (int i = 0; i < p->n_params; i++)
		if (!strcmp(p->params[i].key, key))
			return p->params[i].value;
	return NAN;
}

static sl_module module(const char *name, int layer)
{
	sl_module m = {.layer = layer};
	snprintf(m.name, sizeof m.name, "%s", name);
	return m;
}

static void test_parse_and_resolve(void)
{
	sl_recipe *r = parse(full_recipe);
	REQUIRE(r, "full recipe");
	CHECK(r->version == 1 && !strcmp(r->name, "mixed") && r->n_rules == 5 && !strcmp(r->kv_cache, "int8"), "top");
	CHECK(!strcmp(r->calib.text, "data/calib.txt") && r->calib.tokens == 4096 && r->calib.ctx == 128 &&
	      r->calib.seed == 7, "calibration");
	CHECK(r->def.has_format && !strcmp(r->def.format, "int4-g128") && !r->def.has_sparsity, "default");
	CHECK(r->rules[0].layer_lo == 0 && r->rules[0].layer_hi == 1 && sl_rule_param(&r->rules[0], "act_order") == 1 &&
	      sl_rule_param(&r->rules[0], "block") == 64 && sl_rule_param(&r->rules[0], "damp") == 0.02 &&
	      !strcmp(r->rules[0].note, "sensitive"), "rule 0");
	CHECK(r->rules[3].layer_lo == 1 && r->rules[3].layer_hi > 1000000 && sl_rule_param(&r->rules[3], "group") == 64,
	      "rule 3");
	CHECK(sl_recipe_check(r, NULL, NULL, 0) == 0, "a valid recipe has no problems");

	sl_module_plan p;
	sl_module down0 = module("blk.0.ffn_down", 0), down3 = module("blk.3.ffn_down", 3);
	sl_recipe_resolve(r, &down0, &p);
	CHECK(p.format && !strcmp(p.format->name, "q8_0") && !strcmp(p.method, "gptq") && p.rule == 0 &&
	      plan_has(&p, "act_order") == 1 && plan_has(&p, "damp") == 0.02 && p.sparsity == 0, "blk.0.ffn_down: %s %s rule %d",
	      p.format ? p.format->name : "-", p.method, p.rule);
	/* Layer 3 is outside rule 0; rule 3 regroups the default int4-g128. */
	sl_recipe_resolve(r, &down3, &p);
	CHECK(p.format && !strcmp(p.format->name, "int4-g64") && !strcmp(p.method, "rtn") && p.rule == 3,
	      "blk.3.ffn_down: %s %s rule %d", p.format ? p.format->name : "-", p.method, p.rule);
	sl_module q1 = module("blk.1.attn_q", 1), q12 = module("blk.12.attn_q", 12);
	sl_recipe_resolve(r, &q1, &p);
	CHECK(p.sparsity == 0.5 && !strcmp(p.pattern, "2:4") && !strcmp(p.prune, "wanda") &&
	      !strcmp(p.format->name, "int4-g64"), "blk.1.attn_q: field by field");
	sl_recipe_resolve(r, &q12, &p);
	CHECK(p.sparsity == 0 && !strcmp(p.format->name, "int4-g64"), "'?' is one character");
	sl_module out = module("output", -1), emb = module("token_embd", -1);
	sl_recipe_resolve(r, &out, &p);
	CHECK(!p.format && p.rule == 2, "keep leaves output as it is");
	sl_recipe_resolve(r, &emb, &p);
	CHECK(!strcmp(p.format->name, "int4-g128") && !strcmp(p.method, "awq") && plan_has(&p, "grid") == 10 &&
	      plan_has(&p, "alpha") == 0.6 && isnan(plan_has(&p, "group")), "token_embd has no layer, so the 1- rule passes it by");

	/* Written and read back: the same recipe, the same text. */
	char *json = sl_recipe_to_json(r);
	sl_recipe *back = parse(json);
	char *json2 = back ? sl_recipe_to_json(back) : NULL;
	CHECK(json2 && !strcmp(json, json2), "JSON round trip:\n%s\n---\n%s", json, json2 ? json2 : "");
	const char *path = test_tmpdir();
	char file[512];
	snprintf(file, sizeof file, "%s/r.json", path);
	sl_error err;
	CHECK(sl_recipe_save(r, file, &err) == SL_OK, "save: %s", err.msg);
	sl_recipe *loaded = NULL;
	CHECK(sl_recipe_load(file, &loaded, &err) == SL_OK && loaded && loaded->n_rules == 5, "load: %s", err.msg);
	free(json);
	free(json2);
	sl_recipe_free(back);
	sl_recipe_free(loaded);

	/* Editing. */
	sl_recipe *c = sl_recipe_copy(r);
	sl_rule extra;
	sl_rule_init(&extra);
	snprintf(extra.match, sizeof extra.match, "blk.0.*");
	extra.has_format = true;
	snprintf(extra.format, sizeof extra.format, "nvfp4");
	CHECK(sl_recipe_add_rule(c, &extra) == 5 && c->n_rules == 6 && r->n_rules == 5, "add to a copy");
	sl_recipe_remove_rule(c, 0);
	CHECK(c->n_rules == 5 && !strcmp(c->rules[4].format, "nvfp4") && !strcmp(c->rules[0].match, "blk.?.attn_*"),
	      "remove");
	sl_recipe_resolve(c, &down0, &p);
	CHECK(!strcmp(p.format->name, "nvfp4"), "the later rule wins");
	sl_recipe_free(c);
	sl_recipe_free(r);
}

/* The messages a hostile recipe must give: each names its rule and field. */
static bool has_issue(const sl_recipe_issue *is, int n, const char *path, const char *text)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(is[i].path, path) && strstr(is[i].msg, text))
			return true;
	return false;
}

static void print_issues(const sl_recipe_issue *is, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(stderr, "  %s: %s\n", is[i].path, is[i].msg);
}

static sl_model *test_model(int dim, int hidden)
{
	sl_config cfg = {.arch = SL_ARCH_LLAMA, .dim = dim, .hidden_dim = hidden, .n_layers = 3, .n_heads = 4,
	                 .n_kv_heads = 2, .vocab_size = 256, .max_seq_len = 64};
	sl_model *m = NULL;
	sl_error err;
	CHECK(sl_model_init_random(&cfg, false, 0.02f, 1, &m, &err) == SL_OK, "model: %s", err.msg);
	return m;
}

static void test_hostile_recipe(void)
{
	sl_model *m = test_model(288, 640);
	REQUIRE(m, "model");
	sl_recipe *r = parse("{\"slimlab_recipe\": 1, \"default\": {\"format\": \"q8_0\"}, \"rules\": ["
	                     "{\"match\": \"blk.*.ffn_up\", \"format\": \"int4-g128\", \"params\": {\"group\": 100}},"
	                     "{\"match\": \"blk.*.ffn_dwn\", \"format\": \"q4_0\"},"
	                     "{\"match\": \"blk.0.*\", \"format\": \"q9_9\"},"
	                     "{\"match\": \"output\", \"sparsity\": 1.5},"
	                     "{\"match\": \"blk.*\", \"layers\": \"7-9\", \"format\": \"q4_0\"},"
	                     "{\"match\": \"blk.*.attn_q\", \"pattern\": \"heads\", \"sparsity\": 0.9},"
	                     "{\"match\": \"blk.1.ffn_up.weight\", \"pattern\": \"2:4\", \"sparsity\": 0.3},"
	                     "{\"match\": \"blk.2.attn_k\", \"method\": \"obs\", \"prune\": \"random\", "
	                     " \"pattern\": \"5:4\", \"params\": {\"damp\": -1, \"alpha\": 2}}"
	                     "], \"kv_cache\": \"int5\"}");
	REQUIRE(r, "hostile but well-formed");
	sl_recipe_issue is[64];
	int n = sl_recipe_check(r, m, is, 64);
	CHECK(has_issue(is, n, "rules[2].format", "unknown format 'q9_9'"), "unknown format");
	CHECK(has_issue(is, n, "rules[1].match", "'blk.*.ffn_dwn' matches no module"), "selector matches nothing");
	CHECK(has_issue(is, n, "rules[0].params.group", "100 does not divide rows of 288"), "group");
	CHECK(has_issue(is, n, "rules[3].sparsity", "1.5 is outside 0..1"), "sparsity");
	CHECK(has_issue(is, n, "rules[0].params.group", "int4-g128 takes groups of 32, 64 or 128"), "int group");
	CHECK(has_issue(is, n, "rules[4].layers", "the model has layers 0-2"), "layers beyond the model");
	CHECK(has_issue(is, n, "rules[5].sparsity", "removing 0.9 of 4 heads leaves none"), "heads");
	CHECK(has_issue(is, n, "rules[6].match", "no .weight suffix"), "a .weight suffix");
	CHECK(has_issue(is, n, "rules[6].sparsity", "disagrees with pattern 2:4"), "N:M sparsity");
	CHECK(has_issue(is, n, "rules[7].method", "unknown method 'obs'"), "method");
	CHECK(has_issue(is, n, "rules[7].prune", "unknown pruning criterion 'random'"), "prune");
	CHECK(has_issue(is, n, "rules[7].pattern", "unknown pattern '5:4'"), "pattern");
	CHECK(has_issue(is, n, "rules[7].params.damp", "-1 is outside"), "damp");
	CHECK(has_issue(is, n, "rules[7].params.alpha", "2 is outside 0..1"), "alpha");
	CHECK(has_issue(is, n, "kv_cache", "'int5' is not a KV-cache format"), "kv cache");
	CHECK(n == 15, "%d problems:", n);
	if (n != 15)
		print_issues(is, n < 64 ? n : 64);
	CHECK(sl_recipe_check(r, m, NULL, 0) == n && sl_recipe_check(r, m, is, 2) == n, "counts without storage");
	sl_recipe_free(r);

	/* The KV cache holds rows of n_kv_heads * head_dim = 2 * 72 values. */
	r = parse("{\"slimlab_recipe\": 1, \"kv_cache\": \"nvfp4\"}");
	REQUIRE(r, "kv recipe");
	CHECK(sl_recipe_check(r, m, is, 64) == 0, "nvfp4 holds rows of 144");
	snprintf(r->kv_cache, sizeof r->kv_cache, "q8_0");
	n = sl_recipe_check(r, m, is, 64);
	CHECK(n == 2 && has_issue(is, n, "kv_cache", "'q8_0' is not a KV-cache format") &&
	      has_issue(is, n, "kv_cache", "q8_0 cannot hold the key/value rows of 144 values (block 0)"),
	      "q8_0 is no KV format, nor would it fit");
	sl_recipe_free(r);

	/* Fallbacks are notes: k-quants cannot hold rows of 288 or 640. */
	r = parse("{\"slimlab_recipe\": 1, \"default\": {\"format\": \"q4_k\"},"
	          " \"rules\": [{\"match\": \"blk.*.ffn_down\", \"format\": \"q6_k\"}]}");
	REQUIRE(r, "fallback recipe");
	CHECK(sl_recipe_check(r, m, is, 64) == 0, "fallbacks are not problems");
	n = sl_recipe_fallbacks(r, m, is, 64);
	CHECK(has_issue(is, n, "default.format", "q4_k cannot hold rows of 288 (token_embd and 19 more); q4_0 used"),
	      "q4_k note");
	CHECK(has_issue(is, n, "rules[0].format", "q6_k cannot hold rows of 640 (blk.0.ffn_down and 2 more); q8_0"),
	      "q6_k note");
	CHECK(n == 2, "%d notes", n);
	if (n != 2)
		print_issues(is, n < 64 ? n : 64);
	sl_recipe_free(r);
	sl_model_free(m);
}

/* Structural problems: the parse fails, naming every path. */
static void test_structure(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"{\"slimlab_recipe\": 2}", "slimlab_recipe: version 2 is newer than this slimlab reads (1)"},
		{"{\"name\": \"x\"}", "slimlab_recipe: missing"},
		{"[1, 2]", "a recipe is a JSON object, not an array"},
		{"{\"slimlab_recipe\": \"1\"}", "slimlab_recipe: expected a number, found a string"},
		{"{\"slimlab_recipe\": 1.5}", "1.5 is not a recipe version"},
		{"{\"slimlab_recipe\": 1, \"rules\": [{\"format\": 4}]}", "rules[0].format: expected a string, found a number"},
		{"{\"slimlab_recipe\": 1, \"rules\": [{\"sparsty\": 0.5}]}", "rules[0].sparsty: unknown key (known: match,"},
		{"{\"slimlab_recipe\": 1, \"rules\": {}}", "rules: expected an array of rules, found an object"},
		{"{\"slimlab_recipe\": 1, \"default\": {\"match\": \"blk.*\"}}", "default.match: unknown key"},
		{"{\"slimlab_recipe\": 1, \"rules\": [{\"layers\": \"3-1\"}]}", "rules[0].layers: '3-1' is not a layer range"},
		{"{\"slimlab_recipe\": 1, \"rules\": [{\"layers\": \"-2\"}]}", "rules[0].layers: '-2' is not a layer range"},
		{"{\"slimlab_recipe\": 1, \"rules\": [{\"params\": {\"act_order\": 1}}]}",
		 "rules[0].params.act_order: expected true or false"},
		{"{\"slimlab_recipe\": 1, \"rules\": [{\"params\": {\"group\": 0}}]}",
		 "rules[0].params.group: 0 is not a whole number from 1"},
		{"{\"slimlab_recipe\": 1, \"calibration\": {\"tokens\": -5}}", "calibration.tokens: -5 is not a whole number"},
		{"{\"slimlab_recipe\": 1, \"name\": \"a\", \"name\": \"b\"}", "name: given twice"},
		{"{\"slimlab_recipe\": 1, \"rules\": [{\"format\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]}",
		 "is longer than 31 characters"},
		{"{\"slimlab_recipe\": 1,\n \"rules\": [}", "line 2, column 12: not valid JSON"},
		{"{\"slimlab_recipe\": 1} x", "text after the recipe's closing brace"},
		{"", "not valid JSON"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sl_recipe *r = NULL;
		sl_error err = {0};
		sl_status st = sl_recipe_parse(bad[i].text, strlen(bad[i].text), &r, &err);
		CHECK(st == SL_ERR_FORMAT && !r && strstr(err.msg, bad[i].want), "%s\n  gave: %s\n  want: %s", bad[i].text,
		      err.msg, bad[i].want);
		sl_recipe_free(r);
	}
	/* Every structural problem at once, one per line. */
	sl_recipe *r = NULL;
	sl_error err = {0};
	const char *many = "{\"slimlab_recipe\": 1, \"nme\": 1, \"rules\": [{\"format\": 1}, {\"sparsity\": \"x\"}]}";
	CHECK(sl_recipe_parse(many, strlen(many), &r, &err) == SL_ERR_FORMAT &&
	      strstr(err.msg, "nme: unknown key") && strstr(err.msg, "\nrules[0].format:") &&
	      strstr(err.msg, "\nrules[1].sparsity: expected a number"), "all problems: %s", err.msg);
	CHECK(sl_recipe_load("/nonexistent/r.json", &r, &err) != SL_OK && strstr(err.msg, "/nonexistent/r.json"),
	      "missing file: %s", err.msg);
	/* A key repeated 100000 times costs linear time, not quadratic. */
	size_t cap = 64 + 100000 * 14;
	char *big = malloc(cap), *p = big;
	p += sprintf(p, "{\"slimlab_recipe\": 1, \"rules\": [{");
	for (int i = 0; i < 100000; i++)
		p += sprintf(p, "%s\"note\": \"x\"", i ? ", " : "");
	sprintf(p, "}]}");
	CHECK(sl_recipe_parse(big, strlen(big), &r, &err) == SL_ERR_FORMAT && strstr(err.msg, "rules[0].note: given twice"),
	      "repeated key: %s", err.msg);
	free(big);
}

/* Truncated and flipped recipes: never a crash, and whatever parses can be
 * checked and written. ASan and UBSan builds run this too. */
static void test_fuzz(void)
{
	size_t len = strlen(full_recipe);
	char *buf = malloc(len + 1);
	sl_recipe_issue is[16];
	int parsed = 0;
	for (size_t cut = 0; cut <= len; cut++) {
		memcpy(buf, full_recipe, cut);
		sl_recipe *r = NULL;
		sl_error err;
		if (sl_recipe_parse(buf, cut, &r, &err) == SL_OK) {
			parsed++;
			sl_recipe_check(r, NULL, is, 16);
			free(sl_recipe_to_json(r));
			sl_recipe_free(r);
		}
	}
	CHECK(parsed <= 2, "%d truncations parsed", parsed);
	uint64_t s = 99;
	static const char junk[] = "{}[]\",:0123456789.-eE \\ntruefalsnul\x01\xff";
	for (int iter = 0; iter < 20000; iter++) {
		memcpy(buf, full_recipe, len + 1);
		int flips = 1 + iter % 4;
		for (int k = 0; k < flips; k++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			size_t at = (size_t)(s >> 33) % len;
			buf[at] = junk[(s >> 20) % (sizeof junk - 1)];
		}
		sl_recipe *r = NULL;
		sl_error err;
		if (sl_recipe_parse(buf, len, &r, &err) == SL_OK) {
			sl_recipe_check(r, NULL, is, 16);
			free(sl_recipe_to_json(r));
			sl_module mod = module("blk.1.attn_q", 1);
			sl_module_plan p;
			sl_recipe_resolve(r, &mod, &p);
			sl_recipe_free(r);
		} else {
			CHECK(err.msg[0], "a failure says why");
		}
	}
	free(buf);
}

static void test_estimate(void)
{
	sl_model *m = test_model(64, 172);
	REQUIRE(m, "model");
	sl_recipe *r = parse("{\"slimlab_recipe\": 1, \"default\": {\"format\": \"int4-g32\"},"
	                     " \"rules\": [{\"match\": \"output\", \"format\": \"keep\"}]}");
	REQUIRE(r, "recipe");
	sl_recipe_estimate e;
	sl_recipe_estimate_size(r, m, &e);
	/* By hand: every F32 tensor as is, except the block and embedding
	 * matrices: rows of 64 are 2 int4-g32 blocks (36 bytes); ffn_down's
	 * rows of 172 fall back to int8 (4 + 172 bytes). */
	double want = 0;
	for (int i = 0; i < m->n_tensors; i++)
		want += (double)m->tensors[i]->nbytes;
	int64_t rows_64 = 256 /* token_embd */ + 3 * (64 + 32 + 32 + 64 + 172 + 172);
	want -= 4.0 * 64 * (double)rows_64 + 4.0 * 172 * 64 * 3;
	want += 36.0 * (double)rows_64 + (4 + 172) * 64.0 * 3;
	CHECK_NEAR(e.bytes, want, 0.5, "estimated bytes");
	CHECK_NEAR(e.base_bytes, (double)sl_model_bytes(m), 0.5, "base bytes");
	CHECK_NEAR(e.params, (double)sl_model_n_params(m), 0.5, "params");
	CHECK_NEAR(e.bpw, 8 * want / e.params, 1e-9, "bits per weight");
	sl_recipe_free(r);

	/* Structured pruning shrinks: half the heads of every attention module. */
	r = parse("{\"slimlab_recipe\": 1, \"rules\": [{\"match\": \"blk.*.attn_*\", \"pattern\": \"heads\","
	          " \"sparsity\": 0.5}]}");
	REQUIRE(r, "recipe");
	sl_recipe_estimate_size(r, m, &e);
	double attn = 3 * 4.0 * 64 * (64 + 32 + 32 + 64);
	CHECK_NEAR(e.bytes, e.base_bytes - attn / 2, 0.5, "half the attention bytes");
	sl_recipe_free(r);
	sl_model_free(m);
}

int main(void)
{
	test_catalog();
	test_fake_quantize();
	test_parse_and_resolve();
	test_structure();
	test_fuzz();
	test_hostile_recipe();
	test_estimate();
	return test_finish();
}
