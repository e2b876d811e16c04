/* Session files: a round trip keeps everything (the sweep, the heatmap's
 * settings, predicted KL, a run's acceptance, text and windows, speculative
 * runs and the healed model too); version 1 files, and runs from before
 * acceptance or the text's path was kept, still load; runs measured on other
 * texts or windows are told apart; truncated,
 * hostile and future-version files fail with a message that says what and
 * where;
 * saving is atomic; undo and redo; model hashes are cached and follow the
 * file; autosaves left by dead processes are found. */
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "core/fileio.h"
#include "core/sha256.h"
#include "sessions/session.h"
#include "test.h"

static sl_session *sample(void)
{
	sl_session *s = sl_session_new();
	snprintf(s->model_path, sizeof s->model_path, "/models/m.gguf");
	memset(s->model_sha256, 'a', 64);
	snprintf(s->recipe->name, sizeof s->recipe->name, "four-bit");
	s->recipe->def.has_format = true;
	snprintf(s->recipe->def.format, sizeof s->recipe->def.format, "q8_0");
	sl_rule r;
	sl_rule_init(&r);
	snprintf(r.match, sizeof r.match, "blk.*.ffn_down");
	r.has_format = true;
	snprintf(r.format, sizeof r.format, "q4_0");
	sl_recipe_add_rule(s->recipe, &r);
	snprintf(s->settings.calib_text, sizeof s->settings.calib_text, "/data/calib.txt");
	s->settings.ctx = 256;
	s->settings.chunks = 7;
	sl_run run = {0};
	snprintf(run.when, sizeof run.when, "2026-01-02T03:04:05Z");
	snprintf(run.model, sizeof run.model, "recipe");
	snprintf(run.text, sizeof run.text, "calibration");
	run.text_path = "/data/calib.txt";
	run.bpw = 4.5;
	run.bytes = 123456;
	run.r.n_ctx = 256;
	run.r.n_chunks = 7;
	run.r.n_scored = 889;
	run.r.ppl = 12.25;
	run.r.ppl_se = 0.5;
	run.r.nll = 2.5;
	run.r.has_base = true;
	run.r.base_ppl = 12;
	run.r.delta_ppl = 0.25;
	run.r.kl_mean = 0.0125;
	run.r.top1 = 0.875;
	run.r.acceptance = 0.8125;
	run.has_predicted = true;
	run.predicted_kl = 0.015;
	run.recipe_json = sl_recipe_to_json(s->recipe);
	sl_session_add_run(s, &run, NULL);
	free(run.recipe_json);
	run.recipe_json = NULL;
	run.has_predicted = false;
	run.r.has_base = false;
	run.r.ppl = 13;
	sl_session_add_run(s, &run, NULL);
	/* A speculative run, in the same history. */
	sl_run sp = {0};
	snprintf(sp.when, sizeof sp.when, "2026-01-02T03:05:00Z");
	snprintf(sp.model, sizeof sp.model, "speculative");
	snprintf(sp.recipe_summary, sizeof sp.recipe_summary, "q4_0, every module");
	sp.bpw = 4.5;
	sp.speculative = true;
	sp.spec = (sl_spec_run){.k = 5, .temp = 0.8, .generated = 640, .passes = 170, .acceptance = 0.75,
	                        .token_acceptance = 0.8125, .predicted_costed = 1.125, .tokens_per_pass = 3.765625, .tps = 608.5, .target_tps = 603.25, .speedup = 1.0087,
	                        .predicted_speedup = 1.25, .has_predicted = true, .predicted_acceptance = 0.71875,
	                        .cancelled = true};
	snprintf(sp.spec.draft, sizeof sp.spec.draft, "q4_0, every module");
	sl_session_add_run(s, &sp, NULL);
	sl_session_add_note(s, "first note", NULL);
	sl_session_add_note(s, "second \"quoted\" note", NULL);
	sl_session_set_view_pos(s, "model", 5, 2);
	sl_session_set_view_pos(s, "eval", 1, 0);
	snprintf(s->view.current, sizeof s->view.current, "recipe");
	snprintf(s->view.inspect, sizeof s->view.inspect, "blk.0.attn_q");
	snprintf(s->view.prompt, sizeof s->view.prompt, "Once, in a land");
	s->view.gen_tokens = 33;
	s->view.temp = 0.7;
	snprintf(s->view.heat.metric, sizeof s->view.heat.metric, "dppl");
	snprintf(s->view.heat.sort, sizeof s->view.heat.sort, "metric");
	s->view.heat.sort_col = 2;
	snprintf(s->view.heat.filter, sizeof s->view.heat.filter, "attn_*");
	sl_session_set_sweep(s, cJSON_Parse("{\"slimlab_sweep\": 1, \"options\": [\"q4_0\"], "
	                                    "\"rows\": [{\"name\": \"blk.0.attn_q\", \"cells\": [{\"kl\": 0.25}]}]}"));
	snprintf(s->healed.model, sizeof s->healed.model, "/data/m-qad-300.gguf");
	memset(s->healed.sha256, 'c', 64);
	snprintf(s->healed.label, sizeof s->healed.label, "qad 300 steps");
	return s;
}

static void test_round_trip(void)
{
	sl_session *s = sample(), *t = NULL;
	char *json = sl_session_to_json(s, false);
	REQUIRE(json, "to_json");
	sl_error err = {0};
	REQUIRE(sl_session_parse(json, strlen(json), "mem", &t, &err) == SL_OK, "%s", err.msg);
	CHECK(!strcmp(t->model_path, s->model_path) && !strcmp(t->model_sha256, s->model_sha256), "model");
	CHECK(!strcmp(t->recipe->name, "four-bit") && t->recipe->n_rules == 1 &&
	          !strcmp(t->recipe->rules[0].match, "blk.*.ffn_down") && !strcmp(t->recipe->rules[0].format, "q4_0") &&
	          t->recipe->def.has_format && !strcmp(t->recipe->def.format, "q8_0"),
	      "recipe");
	CHECK(!strcmp(t->settings.calib_text, "/data/calib.txt") && t->settings.ctx == 256 && t->settings.chunks == 7,
	      "settings");
	CHECK(!strcmp(t->healed.model, s->healed.model) && !strcmp(t->healed.sha256, s->healed.sha256) &&
	          !strcmp(t->healed.label, "qad 300 steps"),
	      "healed model: %s %s %s", t->healed.model, t->healed.sha256, t->healed.label);
	REQUIRE(t->n_runs == 3, "runs: %d", t->n_runs);
	CHECK(t->runs[0].r.has_base && t->runs[0].r.kl_mean == 0.0125 && t->runs[0].r.top1 == 0.875 &&
	          t->runs[0].r.acceptance == 0.8125 && !t->runs[0].speculative &&
	          t->runs[0].r.n_scored == 889 && t->runs[0].bpw == 4.5 && !strcmp(t->runs[0].when, "2026-01-02T03:04:05Z"),
	      "run 0");
	CHECK(t->runs[0].has_predicted && t->runs[0].predicted_kl == 0.015, "run 0's predicted KL");
	CHECK(!strcmp(t->runs[0].text, "calibration") && t->runs[0].text_path &&
	          !strcmp(t->runs[0].text_path, "/data/calib.txt") && t->runs[0].r.n_chunks == 7 &&
	          t->runs[0].r.n_ctx == 256 && t->runs[0].r.base_ppl == 12,
	      "run 0's text, windows and base PPL on them");
	CHECK(!t->runs[2].text_path, "a speculative run has no text file");
	char *rj = sl_recipe_to_json(s->recipe);
	CHECK(t->runs[0].recipe_json && rj && !strcmp(t->runs[0].recipe_json, rj), "run 0's recipe");
	free(rj);
	CHECK(!t->runs[1].r.has_base && t->runs[1].r.ppl == 13 && !t->runs[1].has_predicted && !t->runs[1].recipe_json,
	      "run 1");
	const sl_run *sp = &t->runs[2];
	const sl_spec_run *f = &sp->spec;
	CHECK(sp->speculative && !strcmp(sp->model, "speculative") && sp->bpw == 4.5 &&
	          !strcmp(f->draft, "q4_0, every module") && f->k == 5 && f->temp == 0.8 && f->generated == 640 &&
	          f->passes == 170 && f->acceptance == 0.75 && f->token_acceptance == 0.8125 &&
	          f->predicted_costed == 1.125 && f->tokens_per_pass == 3.765625 && f->tps == 608.5 &&
	          f->target_tps == 603.25 && f->speedup == 1.0087 && f->predicted_speedup == 1.25 && f->has_predicted &&
	          f->predicted_acceptance == 0.71875 && f->cancelled,
	      "the speculative run");
	CHECK(!strcmp(t->view.heat.metric, "dppl") && !strcmp(t->view.heat.sort, "metric") && t->view.heat.sort_col == 2 &&
	          !strcmp(t->view.heat.filter, "attn_*"),
	      "heatmap settings");
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(t->sweep, "rows");
	const cJSON *kl = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(rows, 0), "cells"), 0), "kl");
	CHECK(cJSON_IsNumber(kl) && kl->valuedouble == 0.25, "the sweep's cells");
	CHECK(!strcmp(t->notes, "first note\nsecond \"quoted\" note\n"), "notes: %s", t->notes);
	sl_view_pos p = sl_session_view_pos(t, "model");
	CHECK(p.cursor == 5 && p.top == 2, "view position %d %d", p.cursor, p.top);
	CHECK(!strcmp(t->view.current, "recipe") && !strcmp(t->view.inspect, "blk.0.attn_q") &&
	          !strcmp(t->view.prompt, "Once, in a land") && t->view.gen_tokens == 33 && t->view.temp == 0.7,
	      "view state");
	CHECK(!t->dirty && !t->recovered && !t->path[0], "a parsed file is clean");
	/* The same session written again is the same text. */
	char *again = sl_session_to_json(t, false);
	CHECK(again && !strcmp(json, again), "second serialization differs");
	free(again);
	free(json);
	sl_session_free(t);
	sl_session_free(s);
}

/* Every prefix of a valid file is refused, and says the file is cut short
 * or names what is missing; nothing crashes. */
static void test_truncated(void)
{
	sl_session *s = sample();
	char *json = sl_session_to_json(s, false);
	size_t len = strlen(json);
	int bad = 0;
	for (size_t n = 0; n < len; n++) {
		sl_session *t = NULL;
		sl_error err = {0};
		sl_status st = sl_session_parse(json, n, "cut.json", &t, &err);
		/* A prefix ending right after the closing brace of the object... is
		 * only the whole file; anything shorter is incomplete JSON. */
		if (st == SL_OK || !strstr(err.msg, "cut.json") ||
		    !(strstr(err.msg, "truncated") || strstr(err.msg, "empty") || strstr(err.msg, "damaged"))) {
			if (bad++ < 3)
				fprintf(stderr, "prefix %zu: st %d: %s\n", n, st, err.msg);
		}
		sl_session_free(t);
	}
	CHECK(bad == 0, "%d of %zu prefixes were not refused clearly", bad, len);
	free(json);
	sl_session_free(s);
}

typedef struct {
	const char *json, *expect;
	sl_status st;
} hostile;

static void test_hostile(void)
{
	const char *sha = "\"sha256\": \"" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" "\"";
	char buf[19][1024];
	snprintf(buf[0], sizeof buf[0], "{\"slimlab_session\": 1, \"model\": {\"path\": 5, %s}, \"recipe\": {\"slimlab_recipe\": 1}}", sha);
	snprintf(buf[1], sizeof buf[1], "{\"slimlab_session\": 1, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"runs\": [{\"ppl\": \"high\"}]}", sha);
	snprintf(buf[2], sizeof buf[2], "{\"slimlab_session\": 1, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"settings\": {\"ctx\": -4}}", sha);
	snprintf(buf[3], sizeof buf[3], "{\"slimlab_session\": 1, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"view\": {\"positions\": [{\"name\": \"model\", \"cursor\": 1.5}]}}", sha);
	snprintf(buf[4], sizeof buf[4], "{\"slimlab_session\": 1, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"runs\": [{\"top1\": 0.5, \"kl_mean\": 0.1, \"base_ppl\": 1, \"delta_ppl\": 0, \"kl_se\": 0, "
	         "\"kl_median\": 0, \"kl_p99\": 0, \"kl_max\": 0}, 7]}", sha);
	snprintf(buf[5], sizeof buf[5], "{\"slimlab_session\": 1, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"notes\": [\"x\"]}", sha);
	snprintf(buf[6], sizeof buf[6], "{\"slimlab_session\": 1, \"model\": {\"path\": \"m\", %s}, "
	         "\"recipe\": {\"slimlab_recipe\": 1, \"rules\": 12}}", sha);
	snprintf(buf[7], sizeof buf[7], "{\"slimlab_session\": 1, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"view\": {\"current\": \"%0300d\"}}", sha, 0);
	snprintf(buf[8], sizeof buf[8], "{\"slimlab_session\": 2, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"sweep\": 5}", sha);
	snprintf(buf[9], sizeof buf[9], "{\"slimlab_session\": 2, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"sweep\": {\"rows\": []}}", sha);
	snprintf(buf[10], sizeof buf[10], "{\"slimlab_session\": 2, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"view\": {\"heatmap\": {\"metric\": \"loud\"}}}", sha);
	snprintf(buf[11], sizeof buf[11], "{\"slimlab_session\": 2, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"runs\": [{\"ppl\": 3, \"recipe_used\": {\"slimlab_recipe\": 1, \"default\": {\"format\": 5}}}]}", sha);
	snprintf(buf[12], sizeof buf[12], "{\"slimlab_session\": 2, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"runs\": [{\"model\": \"speculative\", \"speculative\": {\"draft\": \"q4_0\", \"k\": 99}}]}", sha);
	snprintf(buf[13], sizeof buf[13], "{\"slimlab_session\": 2, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"runs\": [{\"speculative\": [1]}, {\"ppl\": 2}]}", sha);
	snprintf(buf[14], sizeof buf[14], "{\"slimlab_session\": 3, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"healed\": {\"model\": \"h.gguf\", \"sha256\": \"abc\"}}", sha);
	snprintf(buf[15], sizeof buf[15], "{\"slimlab_session\": 3, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"healed\": {\"label\": \"qad 3 steps\"}}", sha);
	snprintf(buf[16], sizeof buf[16], "{\"slimlab_session\": 3, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"runs\": [{\"ppl\": 3, \"text_path\": \"/t.txt\", \"ctx\": 64, \"chunks\": -8}]}", sha);
	snprintf(buf[17], sizeof buf[17], "{\"slimlab_session\": 3, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"runs\": [{\"ppl\": 3, \"text_path\": \"/t.txt\"}, {\"ppl\": 3, \"text_path\": 7}]}", sha);
	snprintf(buf[18], sizeof buf[18], "{\"slimlab_session\": 3, \"model\": {\"path\": \"m\", %s}, \"recipe\": {\"slimlab_recipe\": 1}, "
	         "\"runs\": [{\"model\": \"s\", \"speculative\": {\"draft\": \"q4_0\", \"k\": 4, \"token_acceptance\": 1.5}}]}", sha);
	const hostile cases[] = {
		{"[1, 2, 3]", "expected a JSON object", SL_ERR_FORMAT},
		{"{\"version\": 1}", "not a slimlab session", SL_ERR_FORMAT},
		{"{\"slimlab_session\": \"one\"}", "slimlab_session", SL_ERR_FORMAT},
		{"{\"slimlab_session\": 0.5}", "slimlab_session", SL_ERR_FORMAT},
		{"{\"slimlab_session\": 4}", "newer slimlab", SL_ERR_UNSUPPORTED},
		{"{\"slimlab_session\": 1e300, \"model\": 3}", "newer slimlab", SL_ERR_UNSUPPORTED},
		{"{\"slimlab_session\": 1}", "model: missing", SL_ERR_FORMAT},
		{"{\"slimlab_session\": 1, \"model\": {\"path\": \"m\", \"sha256\": \"xyz\"}, \"recipe\": {\"slimlab_recipe\": 1}}", "model.sha256",
		 SL_ERR_FORMAT},
		{buf[0], "model.path: expected a string", SL_ERR_FORMAT},
		{buf[1], "runs[0].ppl: expected a number", SL_ERR_FORMAT},
		{buf[2], "settings.ctx", SL_ERR_FORMAT},
		{buf[3], "view.positions[0].cursor: expected a whole number", SL_ERR_FORMAT},
		{buf[4], "runs[1]: expected an object", SL_ERR_FORMAT},
		{buf[5], "notes: expected a string", SL_ERR_FORMAT},
		{buf[6], "recipe", SL_ERR_FORMAT},
		{buf[7], "view.current: longer than", SL_ERR_FORMAT},
		{buf[8], "sweep: expected an object", SL_ERR_FORMAT},
		{buf[9], "sweep.slimlab_sweep: expected 1", SL_ERR_FORMAT},
		{buf[10], "view.heatmap.metric: expected kl, dppl, top1 or accept", SL_ERR_FORMAT},
		{buf[11], "runs[0].recipe_used: ", SL_ERR_FORMAT},
		{buf[12], "runs[0].speculative.k: 99 is outside [1, 64]", SL_ERR_FORMAT},
		{buf[13], "runs[0].speculative: expected an object", SL_ERR_FORMAT},
		{buf[14], "healed.sha256: expected 64", SL_ERR_FORMAT},
		{buf[15], "healed.model: missing", SL_ERR_FORMAT},
		{buf[16], "runs[0].chunks: -8 is outside", SL_ERR_FORMAT},
		{buf[17], "runs[1].text_path: expected a string", SL_ERR_FORMAT},
		{buf[18], "runs[0].speculative.token_acceptance: 1.5 is outside [0, 1]", SL_ERR_FORMAT},
		{"{\"slimlab_session\": 1, \"model\": {\"path\": \"m\"", "truncated", SL_ERR_FORMAT},
		{"{\"slimlab_session\": 1,, }", "damaged", SL_ERR_FORMAT},
		{"\x01\x02\xff\xfe garbage", "damaged", SL_ERR_FORMAT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sl_session *t = NULL;
		sl_error err = {0};
		sl_status st = sl_session_parse(cases[i].json, strlen(cases[i].json), "bad.json", &t, &err);
		CHECK(st != SL_OK && t == NULL, "case %zu was accepted", i);
		CHECK(st == SL_OK || (st == cases[i].st && strstr(err.msg, cases[i].expect) && strstr(err.msg, "bad.json")),
		      "case %zu: status %d, message '%s' lacks '%s'", i, st, err.msg, cases[i].expect);
		sl_session_free(t);
	}
	/* Deep nesting is refused by the parser, not by the stack. */
	size_t depth = 100000;
	char *deep = malloc(2 * depth + 1);
	REQUIRE(deep, "oom");
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = 0;
	sl_session *t = NULL;
	sl_error err = {0};
	CHECK(sl_session_parse(deep, 2 * depth, "deep.json", &t, &err) != SL_OK, "deep nesting accepted");
	free(deep);
	/* A file far larger than any session is not read at all. */
	char big[512];
	snprintf(big, sizeof big, "%s/big.json", test_tmpdir());
	FILE *f = fopen(big, "wb");
	REQUIRE(f, "create");
	fseek(f, (long)SL_SESSION_MAX_BYTES + 10, SEEK_SET);
	fputc('}', f);
	fclose(f);
	CHECK(sl_session_load(big, &t, &err) != SL_OK && strstr(err.msg, "big.json"), "huge file: %s", err.msg);
	unlink(big);
}

/* A file of the first version, as slimlab wrote it then, still loads: no
 * sweep, and the heatmap's settings at their defaults. */
static void test_version1(void)
{
	const char *v1 = "{\"slimlab_session\": 1, \"model\": {\"path\": \"/m.gguf\", \"sha256\": "
	                 "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}, "
	                 "\"recipe\": {\"slimlab_recipe\": 1}, \"runs\": [{\"ppl\": 3, \"kl_mean\": 0.5, \"top1\": 0.5, "
	                 "\"base_ppl\": 2, \"delta_ppl\": 1, \"kl_se\": 0, \"kl_median\": 0, \"kl_p99\": 0, \"kl_max\": 1}], "
	                 "\"view\": {\"current\": \"eval\", \"prompt\": \"Hi\", \"gen_tokens\": 5, \"temperature\": 0}}";
	sl_session *t = NULL;
	sl_error err = {0};
	REQUIRE(sl_session_parse(v1, strlen(v1), "v1.json", &t, &err) == SL_OK, "%s", err.msg);
	CHECK(!t->sweep && t->n_runs == 1 && !t->runs[0].has_predicted && t->runs[0].r.kl_mean == 0.5 &&
	          isnan(t->runs[0].r.acceptance) && !t->runs[0].speculative,
	      "v1 content (no acceptance kept then)");
	CHECK(!strcmp(t->view.heat.metric, "kl") && !strcmp(t->view.heat.sort, "block") && !t->view.heat.filter[0],
	      "heatmap defaults");
	char *json = sl_session_to_json(t, false);
	cJSON *back = json ? cJSON_Parse(json) : NULL;
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(back, "slimlab_session");
	CHECK(cJSON_IsNumber(ver) && ver->valuedouble == SL_SESSION_VERSION, "written back as the current version");
	cJSON_Delete(back);
	free(json);
	sl_session_free(t);
}

/* A speculative run saved before the acceptance of the tokens checked and
 * the costed prediction were kept reads them as not recorded. */
static void test_spec_run_before(void)
{
	const char *j = "{\"slimlab_session\": 3, \"model\": {\"path\": \"/m.gguf\", \"sha256\": "
	                "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}, "
	                "\"recipe\": {\"slimlab_recipe\": 1}, \"runs\": [{\"model\": \"s\", \"speculative\": "
	                "{\"draft\": \"q8_0\", \"k\": 4, \"acceptance\": 0.5, \"predicted_speedup\": 1.5}}]}";
	sl_session *t = NULL;
	sl_error err = {0};
	REQUIRE(sl_session_parse(j, strlen(j), "spec.json", &t, &err) == SL_OK, "%s", err.msg);
	const sl_spec_run *f = &t->runs[0].spec;
	CHECK(t->runs[0].speculative && f->acceptance == 0.5 && f->predicted_speedup == 1.5 &&
	          isnan(f->token_acceptance) && isnan(f->predicted_costed),
	      "an earlier speculative run: acceptance %g, checked %g, costed %g", f->acceptance, f->token_acceptance,
	      f->predicted_costed);
	char *json = sl_session_to_json(t, false);
	CHECK(json && !strstr(json, "token_acceptance") && !strstr(json, "costed"), "not written back as figures");
	free(json);
	sl_session_free(t);
}

/* Figures measured on other texts, windows or window lengths are never
 * one series; runs from before the text's path was kept match by name. */
static void test_same_measure(void)
{
	sl_run a = {.text = "calibration", .text_path = "/data/calib.txt", .r = {.n_ctx = 128, .n_chunks = 32}};
	sl_run b = a;
	CHECK(sl_run_same_measure(&a, &b), "the same text and windows");
	b.r.n_chunks = 8;
	CHECK(!sl_run_same_measure(&a, &b), "8 windows against 32");
	b = a;
	b.r.n_ctx = 256;
	CHECK(!sl_run_same_measure(&a, &b), "windows of 256 against 128");
	b = a;
	b.text_path = "/data/eval.txt";
	CHECK(!sl_run_same_measure(&a, &b), "another file");
	b.text_path = NULL;
	CHECK(!sl_run_same_measure(&a, &b) && !sl_run_same_measure(&b, &a), "a run that kept no file against one that did");
	a.text_path = NULL;
	CHECK(sl_run_same_measure(&a, &b), "two older runs on the calibration text");
	snprintf(b.text, sizeof b.text, "evaluation");
	CHECK(!sl_run_same_measure(&a, &b), "older runs on two texts");
	b = a;
	b.speculative = true;
	CHECK(!sl_run_same_measure(&a, &b) && !sl_run_same_measure(&b, &b), "a speculative run is no evaluation");
}

static void test_save_and_load(void)
{
	sl_session *s = sample(), *t = NULL;
	char path[512];
	snprintf(path, sizeof path, "%s/s.json", test_tmpdir());
	s->dirty = true;
	sl_error err = {0};
	REQUIRE(sl_session_save(s, path, &err) == SL_OK, "%s", err.msg);
	CHECK(!s->dirty && !strcmp(s->path, path), "a saved session is clean and knows its path");
	REQUIRE(sl_session_load(path, &t, &err) == SL_OK, "%s", err.msg);
	CHECK(t->n_runs == 3 && !strcmp(t->path, path), "loaded");
	sl_session_free(t);
	/* No temporary file is left beside it. */
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	CHECK(access(tmp, F_OK) != 0, "temporary file left behind");
	/* A save that cannot happen leaves the session as it was. */
	s->dirty = true;
	CHECK(sl_session_save(s, "/nonexistent/dir/s.json", &err) == SL_ERR_IO, "save into a missing directory");
	CHECK(s->dirty && !strcmp(s->path, path), "a failed save changes nothing");
	unlink(path);
	sl_session_free(s);
}

static void test_undo(void)
{
	sl_session *s = sl_session_new();
	sl_error err = {0};
	for (int i = 0; i < 3; i++) {
		REQUIRE(sl_session_recipe_edit(s, &err) == SL_OK, "%s", err.msg);
		snprintf(s->recipe->name, sizeof s->recipe->name, "v%d", i + 1);
	}
	CHECK(s->n_undo == 3 && s->dirty, "three edits");
	CHECK(sl_session_undo(s) && !strcmp(s->recipe->name, "v2"), "undo: %s", s->recipe->name);
	CHECK(sl_session_undo(s) && !strcmp(s->recipe->name, "v1"), "undo twice: %s", s->recipe->name);
	CHECK(sl_session_redo(s) && !strcmp(s->recipe->name, "v2"), "redo: %s", s->recipe->name);
	REQUIRE(sl_session_recipe_edit(s, &err) == SL_OK, "edit");
	snprintf(s->recipe->name, sizeof s->recipe->name, "w");
	CHECK(!sl_session_redo(s), "an edit clears redo");
	CHECK(sl_session_undo(s) && !strcmp(s->recipe->name, "v2"), "undo after edit: %s", s->recipe->name);
	while (sl_session_undo(s))
		;
	CHECK(!s->recipe->name[0], "undo back to the start: '%s'", s->recipe->name);
	for (int i = 0; i < SL_UNDO_DEPTH + 20; i++)
		sl_session_recipe_edit(s, &err);
	CHECK(s->n_undo == SL_UNDO_DEPTH, "undo depth is bounded: %d", s->n_undo);
	sl_session_free(s);
}

/* Healing is one undoable step with the recipe it healed; any change of
 * the recipe forgets the healed model, and undo brings it back. */
static void test_undo_healed(void)
{
	sl_session *s = sl_session_new();
	sl_error err = {0};
	snprintf(s->recipe->name, sizeof s->recipe->name, "plain");
	sl_recipe *r = sl_recipe_copy(s->recipe);
	REQUIRE(r, "copy");
	snprintf(r->name, sizeof r->name, "healed one");
	sl_healed h = {.model = "/data/h.gguf", .label = "qad 20 steps"};
	memset(h.sha256, 'd', 64);
	REQUIRE(sl_session_set_healed(s, r, &h, &err) == SL_OK, "%s", err.msg);
	CHECK(!strcmp(s->healed.model, "/data/h.gguf") && !strcmp(s->recipe->name, "healed one") && s->n_undo == 1,
	      "healed: %s %s %d", s->healed.model, s->recipe->name, s->n_undo);
	CHECK(sl_session_undo(s) && !s->healed.model[0] && !strcmp(s->recipe->name, "plain"), "undo the healing");
	CHECK(sl_session_redo(s) && !strcmp(s->healed.label, "qad 20 steps") && !strcmp(s->recipe->name, "healed one"),
	      "redo the healing: '%s'", s->healed.label);
	REQUIRE(sl_session_recipe_edit(s, &err) == SL_OK, "%s", err.msg);
	CHECK(!s->healed.model[0], "an edit of the recipe forgets the healed model");
	CHECK(sl_session_undo(s) && !strcmp(s->healed.model, "/data/h.gguf"), "undoing the edit brings it back");
	sl_session_free(s);
}

static void test_check_model(void)
{
	sl_session *s = sample();
	char other[65];
	memset(other, 'b', 64);
	other[64] = 0;
	sl_error err = {0};
	CHECK(sl_session_check_model(s, s->model_sha256, &err) == SL_OK, "same hash");
	CHECK(sl_session_check_model(s, other, &err) != SL_OK && strstr(err.msg, "refused") &&
	          strstr(err.msg, "aaaaaaaaaaaa") && strstr(err.msg, "bbbbbbbbbbbb"),
	      "mismatch message: %s", err.msg);
	sl_session_free(s);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_model_hash(void)
{
	char dir[512], path[600], hex[65], expect[65];
	snprintf(dir, sizeof dir, "%s", test_tmpdir());
	setenv("XDG_CACHE_HOME", dir, 1);
	snprintf(path, sizeof path, "%s/model.bin", dir);
	write_file(path, "weights, version one");
	uint8_t d[32];
	sl_sha256("weights, version one", 20, d);
	sl_sha256_hex(d, expect);
	sl_error err = {0};
	REQUIRE(sl_model_file_sha256(path, NULL, hex, &err) == SL_OK, "%s", err.msg);
	CHECK(!strcmp(hex, expect), "file hash %s vs %s", hex, expect);

	/* The second call answers from the cache: prove it by planting a
	 * different hash for the same path, size and mtime. */
	char cache[600], *json;
	size_t len;
	snprintf(cache, sizeof cache, "%s/slimlab/model-hashes.json", dir);
	REQUIRE(sl_read_file(cache, 1 << 20, &json, &len, &err) == SL_OK, "no cache written: %s", err.msg);
	char *at = strstr(json, expect);
	REQUIRE(at, "cache lacks the hash");
	memset(at, 'c', 64);
	sl_write_file_atomic(cache, json, len, &err);
	free(json);
	REQUIRE(sl_model_file_sha256(path, NULL, hex, &err) == SL_OK, "%s", err.msg);
	CHECK(hex[0] == 'c' && hex[63] == 'c', "the cache was not used: %s", hex);

	/* A rewritten file (new size and mtime) is hashed again. */
	struct timespec later = {2, 0};
	nanosleep(&later, NULL);
	write_file(path, "weights, version two!");
	sl_sha256("weights, version two!", 21, d);
	sl_sha256_hex(d, expect);
	REQUIRE(sl_model_file_sha256(path, NULL, hex, &err) == SL_OK, "%s", err.msg);
	CHECK(!strcmp(hex, expect), "changed file: %s vs %s", hex, expect);

	/* A directory hashes its files by name and content. */
	char sub[600], f1[700], f2[700], h1[65], h2[65];
	snprintf(sub, sizeof sub, "%s/st", dir);
	mkdir(sub, 0700);
	snprintf(f1, sizeof f1, "%s/a.safetensors", sub);
	snprintf(f2, sizeof f2, "%s/config.json", sub);
	write_file(f1, "tensor bytes");
	write_file(f2, "{}");
	REQUIRE(sl_model_file_sha256(sub, NULL, h1, &err) == SL_OK, "%s", err.msg);
	nanosleep(&later, NULL);
	write_file(f2, "{ }");
	REQUIRE(sl_model_file_sha256(sub, NULL, h2, &err) == SL_OK, "%s", err.msg);
	CHECK(strcmp(h1, h2), "a changed file in a model directory changes its hash");
	CHECK(sl_model_file_sha256("/nonexistent/m.gguf", NULL, hex, &err) == SL_ERR_IO &&
	          strstr(err.msg, "/nonexistent/m.gguf"),
	      "missing model: %s", err.msg);
	unlink(f1);
	unlink(f2);
	rmdir(sub);
	unlink(path);
	unlink(cache);
	char cdir[600];
	snprintf(cdir, sizeof cdir, "%s/slimlab", dir);
	rmdir(cdir);
}

static void test_autosave(void)
{
	char dir[512], p[800];
	snprintf(dir, sizeof dir, "%s/state", test_tmpdir());
	setenv("XDG_STATE_HOME", dir, 1);
	sl_session *s = sample();
	s->dirty = true;
	snprintf(s->path, sizeof s->path, "/home/me/work.json");
	sl_error err = {0};
	REQUIRE(sl_autosave(s, &err) == SL_OK, "%s", err.msg);
	char found[1024];
	CHECK(!sl_autosave_find_orphan(found, sizeof found), "our own autosave is not an orphan");

	/* One left by a process that is gone, with a half-written temporary. */
	char orphan[800], tmp[900];
	snprintf(orphan, sizeof orphan, "%s/slimlab/autosave-999999999.json", dir);
	snprintf(tmp, sizeof tmp, "%s.tmp.999999999", orphan);
	REQUIRE(sl_session_write(s, orphan, true, &err) == SL_OK, "%s", err.msg);
	write_file(tmp, "{\"slimlab_sess");
	/* And one whose session had nothing unsaved: nothing to recover. */
	char clean[800];
	snprintf(clean, sizeof clean, "%s/slimlab/autosave-999999998.json", dir);
	s->dirty = false;
	REQUIRE(sl_session_write(s, clean, true, &err) == SL_OK, "%s", err.msg);
	s->dirty = true;
	REQUIRE(sl_autosave_find_orphan(found, sizeof found), "orphan not found");
	CHECK(!strcmp(found, orphan), "found %s", found);
	CHECK(access(tmp, F_OK) != 0, "the half-written temporary was removed");
	CHECK(access(clean, F_OK) != 0, "an autosave without unsaved work was removed");
	sl_session *t = NULL;
	REQUIRE(sl_session_load(found, &t, &err) == SL_OK, "%s", err.msg);
	CHECK(t->recovered && t->dirty && !strcmp(t->path, "/home/me/work.json"),
	      "a recovered session is dirty and keeps its own path: '%s'", t->path);
	sl_session_free(t);
	unlink(orphan);
	sl_autosave_remove();
	REQUIRE(sl_autosave_path(p, sizeof p, &err) == SL_OK, "path");
	CHECK(access(p, F_OK) != 0, "autosave removed on a clean exit");
	snprintf(p, sizeof p, "%s/slimlab", dir);
	rmdir(p);
	rmdir(dir);
	sl_session_free(s);
}

int main(void)
{
	test_round_trip();
	test_truncated();
	test_hostile();
	test_version1();
	test_spec_run_before();
	test_same_measure();
	test_save_and_load();
	test_undo();
	test_undo_healed();
	test_check_model();
	test_model_hash();
	test_autosave();
	rmdir(test_tmpdir());
	return test_finish();
}
