/* Sensitivity sweeps: a cell's figures (KL, delta PPL, top-1, acceptance
 * as a draft) equal those of applying the one-module recipe and evaluating
 * it in full; a cancelled sweep resumes from its finished cells to the
 * same result; the automatic recipe beats the uniform one of the same
 * size, and a whole recipe's prediction sums the cells it is made of; the
 * JSON and CSV exports are well formed (the SVG picture's test is
 * test-heat-svg); GPT-2 gets the Fisher proxy. */
#include <cjson/cJSON.h>

#include "core/compress.h"
#include "core/eval.h"
#include "core/fileio.h"
#include "core/sweep/sweep.h"
#include "core/tokenizer.h"
#include "test.h"

static const char *calib_text;

static sl_sweep *new_sweep(const sl_model *m, const char *spec, sl_sweep_unit unit)
{
	sl_sweep_option *opts;
	int n;
	sl_error err = {0};
	if (sl_sweep_parse_options(spec, &opts, &n, &err)) {
		fprintf(stderr, "options: %s\n", err.msg);
		return NULL;
	}
	sl_sweep_opts o = {.text_path = calib_text, .ctx = 64, .windows = 6, .unit = unit, .calib_tokens = 1024,
	                   .seed = 7};
	sl_sweep *sw = NULL;
	if (sl_sweep_new(m, opts, n, &o, &sw, &err))
		fprintf(stderr, "sweep: %s\n", err.msg);
	free(opts);
	return sw;
}

static int find_row(const sl_sweep *sw, const char *name)
{
	for (int r = 0; r < sl_sweep_rows(sw); r++)
		if (!strcmp(sl_sweep_row_name(sw, r), name))
			return r;
	return -1;
}

/* Apply a recipe for real and evaluate it on the sweep's windows. */
static bool full_eval(const sl_model *m, const sl_recipe *rec, sl_eval_result *r)
{
	sl_error err = {0};
	sl_model *q = NULL;
	sl_apply_report rep = {0};
	sl_apply_opts ao = {0};
	if (sl_recipe_apply(m, rec, &ao, &q, &rep, &err)) {
		fprintf(stderr, "apply: %s\n", err.msg);
		return false;
	}
	sl_apply_report_free(&rep);
	char *text;
	size_t len;
	bool ok = sl_read_file(calib_text, 1 << 24, &text, &len, &err) == SL_OK;
	sl_eval_opts eo = {.n_ctx = 64, .n_chunks = 6};
	ok = ok && sl_eval_text(q, m, text, len, &eo, r, &err) == SL_OK;
	if (!ok)
		fprintf(stderr, "eval: %s\n", err.msg);
	free(text);
	sl_model_free(q);
	return ok;
}

static sl_recipe *one_rule(const sl_sweep *sw, int row, int col)
{
	sl_recipe *rec = sl_recipe_new();
	sl_rule rule = sl_sweep_col(sw, col)->rule;
	snprintf(rule.match, sizeof rule.match, "%s", sl_sweep_row_name(sw, row));
	sl_recipe_add_rule(rec, &rule);
	snprintf(rec->calib.text, sizeof rec->calib.text, "%s", calib_text);
	rec->calib.tokens = 1024;
	rec->calib.ctx = 64;
	rec->calib.seed = 7;
	return rec;
}

static void test_cells_equal_full_evaluation(const sl_model *m)
{
	sl_sweep *sw = new_sweep(m, "q4_0,gptq:int4-g32,int3-g32,wanda-2:4", SL_SWEEP_MODULES);
	REQUIRE(sw, "sweep");
	const char *rows[] = {"output", "blk.0.attn_q", "blk.2.ffn_down", "blk.4.attn_output"};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int r = find_row(sw, rows[i]);
		REQUIRE(r >= 0, "row %s", rows[i]);
		for (int c = 0; c < sl_sweep_cols(sw); c++) {
			sl_error err = {0};
			CHECK(sl_sweep_measure(sw, r, c, &err) == SL_OK, "measure: %s", err.msg);
			const sl_sweep_cell *cell = sl_sweep_cell_at(sw, r, c);
			sl_recipe *rec = one_rule(sw, r, c);
			sl_eval_result full;
			REQUIRE(full_eval(m, rec, &full), "full eval of %s x %s", rows[i], sl_sweep_col(sw, c)->label);
			const char *what = sl_sweep_col(sw, c)->label;
			CHECK(cell->done && cell->kl > 0, "%s x %s measured (kl %g)", rows[i], what, cell->kl);
			CHECK(fabs(cell->kl - full.kl_mean) <= 1e-6 + 1e-4 * full.kl_mean, "%s x %s: KL %.9g vs full %.9g",
			      rows[i], what, cell->kl, full.kl_mean);
			CHECK(fabs(cell->dppl - full.delta_ppl) <= 1e-4 * (1 + fabs(full.delta_ppl)),
			      "%s x %s: dPPL %.9g vs full %.9g", rows[i], what, cell->dppl, full.delta_ppl);
			CHECK(fabs(cell->top1 - full.top1) < 1e-9, "%s x %s: top-1 %.6f vs full %.6f", rows[i], what, cell->top1,
			      full.top1);
			/* Acceptance, mean sum min(p, q), is 1 minus a total variation: its
			 * error is held to the KL's. */
			CHECK(cell->acceptance > 0 && cell->acceptance < 1 &&
			          fabs(cell->acceptance - full.acceptance) <= 1e-6 + 1e-4 * (1 - full.acceptance),
			      "%s x %s: acceptance %.9g vs full %.9g", rows[i], what, cell->acceptance, full.acceptance);
			CHECK(fabs(sl_sweep_metric(cell, "accept") - (1 - cell->acceptance)) < 1e-15, "%s x %s: accept metric",
			      rows[i], what);
			CHECK(fabs(cell->ppl - full.ppl) <= 1e-4 * full.ppl, "%s x %s: PPL", rows[i], what);
			sl_recipe_free(rec);
		}
	}
	sl_sweep_free(sw);
}

typedef struct {
	atomic_int cancel;
	int seen, stop_after;
} canceller;

static void count_cell(void *ctx, int row, int col, const sl_sweep_cell *cell)
{
	canceller *c = ctx;
	(void)row;
	(void)col;
	(void)cell;
	if (++c->seen >= c->stop_after)
		atomic_store(&c->cancel, 1);
}

static void test_cancel_and_resume(const sl_model *m)
{
	sl_sweep *a = new_sweep(m, "int8,int4-g32,sparse-50%", SL_SWEEP_BLOCKS);
	REQUIRE(a, "sweep");
	int total = sl_sweep_rows(a) * sl_sweep_cols(a);
	canceller c = {0, 0, 4};
	sl_progress p = {.cancel = &c.cancel};
	sl_error err = {0};
	CHECK(sl_sweep_run(a, count_cell, &c, &p, &err) == SL_ERR_CANCELLED, "cancelled run: %s", err.msg);
	int done = sl_sweep_done(a);
	CHECK(done >= 4 && done < total, "%d of %d cells done after cancelling", done, total);
	cJSON *saved = sl_sweep_to_json(a);
	char *js = cJSON_PrintUnformatted(saved);
	cJSON_Delete(saved);

	/* A new sweep (as after reopening a session) resumes from the JSON. */
	sl_sweep *b = new_sweep(m, "int8,int4-g32,sparse-50%", SL_SWEEP_BLOCKS);
	REQUIRE(b, "second sweep");
	cJSON *parsed = cJSON_Parse(js);
	int restored = 0;
	CHECK(sl_sweep_restore(b, parsed, &restored, &err) == SL_OK && restored == done, "restored %d of %d: %s",
	      restored, done, err.msg);
	cJSON_Delete(parsed);
	c.seen = 0;
	c.stop_after = 1 << 30;
	CHECK(sl_sweep_run(b, count_cell, &c, NULL, &err) == SL_OK, "resumed run: %s", err.msg);
	CHECK(c.seen == total - done, "resumed run measured %d cells, %d were left", c.seen, total - done);
	CHECK(sl_sweep_done(b) == total, "all done");

	/* The resumed sweep equals an uninterrupted one. */
	sl_sweep *full = new_sweep(m, "int8,int4-g32,sparse-50%", SL_SWEEP_BLOCKS);
	REQUIRE(full, "third sweep");
	CHECK(sl_sweep_run(full, NULL, NULL, NULL, &err) == SL_OK, "full run: %s", err.msg);
	for (int r = 0; r < sl_sweep_rows(full); r++)
		for (int k = 0; k < sl_sweep_cols(full); k++) {
			const sl_sweep_cell *x = sl_sweep_cell_at(full, r, k), *y = sl_sweep_cell_at(b, r, k);
			CHECK(fabs(x->kl - y->kl) <= 1e-12 * (1 + x->kl) && x->bytes == y->bytes &&
			          fabs(x->acceptance - y->acceptance) <= 1e-12,
			      "cell %d,%d: %g vs %g, acceptance %g vs %g", r, k, x->kl, y->kl, x->acceptance, y->acceptance);
		}
	/* Saved results of another model or other settings are refused. */
	cJSON *other = cJSON_Parse(js);
	cJSON_ReplaceItemInObject(other, "ctx", cJSON_CreateNumber(32));
	CHECK(sl_sweep_restore(b, other, &restored, &err) != SL_OK && strstr(err.msg, "settings"), "other settings: %s",
	      err.msg);
	cJSON_ReplaceItemInObject(other, "model_hash", cJSON_CreateString("0000000000000000"));
	CHECK(sl_sweep_restore(b, other, &restored, &err) != SL_OK && strstr(err.msg, "another model"), "other model: %s",
	      err.msg);
	cJSON_Delete(other);
	free(js);
	sl_sweep_free(a);
	sl_sweep_free(b);
	sl_sweep_free(full);
}

static void test_autorecipe_beats_uniform(const sl_model *m, const char *name)
{
	printf("%s:\n", name);
	sl_sweep *sw = new_sweep(m, "q8_0,q4_0,int3-g32", SL_SWEEP_MODULES);
	REQUIRE(sw, "sweep");
	sl_error err = {0};
	REQUIRE(sl_sweep_run(sw, NULL, NULL, NULL, &err) == SL_OK, "run: %s", err.msg);

	/* The uniform recipe: q4_0 everywhere the sweep looked. */
	sl_recipe *uni = sl_recipe_new();
	sl_rule all;
	sl_rule_init(&all);
	all.has_format = all.has_method = true;
	snprintf(all.format, sizeof all.format, "q4_0");
	snprintf(all.method, sizeof all.method, "rtn");
	uni->def = all;
	sl_model *q = NULL;
	sl_apply_report rep = {0};
	sl_apply_opts ao = {0};
	REQUIRE(sl_recipe_apply(m, uni, &ao, &q, &rep, &err) == SL_OK, "uniform: %s", err.msg);
	double uniform_bpw = rep.bpw;
	sl_apply_report_free(&rep);
	sl_model_free(q);
	sl_eval_result ru, ra;
	REQUIRE(full_eval(m, uni, &ru), "uniform eval");

	sl_recipe *autor = NULL;
	sl_autorecipe_result res;
	REQUIRE(sl_autorecipe(sw, SL_BUDGET_BPW, uniform_bpw, &autor, &res, &err) == SL_OK, "autorecipe: %s", err.msg);
	CHECK(res.bpw <= uniform_bpw + 1e-9, "auto recipe %.4f bpw within the uniform's %.4f", res.bpw, uniform_bpw);
	REQUIRE(full_eval(m, autor, &ra), "auto eval");
	printf("uniform q4_0: %.4f bpw, KL %.5f; automatic: %.4f bpw, KL %.5f measured, %.5f predicted\n", uniform_bpw,
	       ru.kl_mean, res.bpw, ra.kl_mean, res.predicted_kl);
	CHECK(ra.kl_mean < ru.kl_mean, "automatic KL %.5f below uniform %.5f", ra.kl_mean, ru.kl_mean);
	/* A recipe's prediction sums its cells: the automatic recipe's is its
	 * predicted KL; the uniform recipe's is the column's; a recipe the
	 * options cannot make has none; one that changes nothing, zero. */
	CHECK(fabs(sl_sweep_predict(sw, autor, "kl") - res.predicted_kl) <= 1e-12 * (1 + res.predicted_kl),
	      "automatic recipe: predicted KL %.9g, its own %.9g", sl_sweep_predict(sw, autor, "kl"), res.predicted_kl);
	int q4 = -1;
	for (int c = 0; c < sl_sweep_cols(sw); c++)
		if (!strcmp(sl_sweep_col(sw, c)->label, "q4_0"))
			q4 = c;
	REQUIRE(q4 >= 0, "the q4_0 column");
	/* Rejections (total variations) of independent modules add in
	 * quadrature; on these models that predicts the whole model's within
	 * a few points, where their plain sum is off several times over. */
	double col_reject2 = 0;
	for (int r = 0; r < sl_sweep_rows(sw); r++)
		col_reject2 += pow(1 - sl_sweep_cell_at(sw, r, q4)->acceptance, 2);
	double pred_reject = sl_sweep_predict(sw, uni, "accept");
	CHECK(fabs(pred_reject - sqrt(col_reject2)) <= 1e-12, "uniform q4_0: predicted rejection %.9g, the column's %.9g",
	      pred_reject, sqrt(col_reject2));
	printf("uniform q4_0: acceptance as a draft %.4f measured, %.4f predicted from the sweep\n", ru.acceptance,
	       1 - pred_reject);
	CHECK(ru.acceptance > 0 && ru.acceptance < 1 && fabs(ru.acceptance - (1 - pred_reject)) < 0.05,
	      "uniform q4_0: measured acceptance %.4f near the predicted %.4f", ru.acceptance, 1 - pred_reject);
	sl_recipe *other = sl_recipe_new();
	REQUIRE(other, "out of memory");
	CHECK(sl_sweep_predict(sw, other, "accept") == 0, "a recipe that changes nothing: no loss predicted");
	snprintf(other->def.format, sizeof other->def.format, "int8");
	other->def.has_format = true;
	CHECK(isnan(sl_sweep_predict(sw, other, "accept")), "a recipe the options cannot make: no prediction");
	sl_recipe_free(other);
	/* An impossible budget is refused with what can be reached. */
	sl_recipe *none = NULL;
	sl_autorecipe_result r2;
	CHECK(sl_autorecipe(sw, SL_BUDGET_BPW, 1.0, &none, &r2, &err) != SL_OK && strstr(err.msg, "smallest"),
	      "impossible budget: %s", err.msg);
	for (int p = 0; p < SL_PROXY_COUNT; p++) {
		double rho = sl_sweep_spearman(sw, p, -1);
		printf("Spearman rho of proxy %d against KL: %.3f\n", p, rho);
		CHECK(rho > 0 && rho <= 1, "proxy %d ranks modules the way KL does (rho %.3f)", p, rho);
	}

	/* Exports. */
	char *csv = sl_sweep_to_csv(sw);
	int lines = 0;
	for (char *c = csv; c && *c; c++)
		lines += *c == '\n';
	CHECK(lines == 1 + sl_sweep_rows(sw) * sl_sweep_cols(sw), "csv has %d lines", lines);
	cJSON *j = sl_sweep_to_json(sw);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "rows")) == sl_sweep_rows(sw), "json rows");
	cJSON_Delete(j);
	free(csv);
	sl_autorecipe_result_free(&res);
	sl_recipe_free(autor);
	sl_recipe_free(uni);
	sl_sweep_free(sw);
}

static void test_options(void)
{
	sl_sweep_option *o;
	int n;
	sl_error err = {0};
	REQUIRE(sl_sweep_parse_options("int8,gptq:int4-g128, nvfp4,sparse-2:4,wanda-50%,sparsegpt-0.6", &o, &n, &err) ==
	        SL_OK, "%s", err.msg);
	CHECK(n == 6, "6 options");
	CHECK(!strcmp(o[1].rule.method, "gptq") && !strcmp(o[1].rule.format, "int4-g128"), "method:format");
	CHECK(!strcmp(o[3].rule.pattern, "2:4") && fabs(o[3].rule.sparsity - 0.5) < 1e-12 &&
	      !strcmp(o[3].rule.prune, "magnitude"), "sparse-2:4");
	CHECK(!strcmp(o[4].rule.prune, "wanda") && fabs(o[4].rule.sparsity - 0.5) < 1e-12, "wanda-50%%");
	CHECK(!strcmp(o[5].rule.prune, "sparsegpt") && fabs(o[5].rule.sparsity - 0.6) < 1e-12, "sparsegpt-0.6");
	free(o);
	const char *bad[] = {"q9_9", "foo:int8", "sparse-150%", "sparse-3:2", "", "wanda-"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		o = NULL;
		CHECK(sl_sweep_parse_options(bad[i], &o, &n, &err) != SL_OK && err.msg[0], "'%s' refused: %s", bad[i],
		      err.msg);
		free(o);
	}
	sl_budget_kind k;
	double v;
	CHECK(sl_budget_parse("4.5bpw", &k, &v, &err) == SL_OK && k == SL_BUDGET_BPW && v == 4.5, "bpw");
	CHECK(sl_budget_parse("3MB", &k, &v, &err) == SL_OK && k == SL_BUDGET_BYTES && v == 3e6, "MB");
	CHECK(sl_budget_parse("50%", &k, &v, &err) == SL_OK && k == SL_BUDGET_SPARSITY && v == 0.5, "%%");
	CHECK(sl_budget_parse("4.5", &k, &v, &err) != SL_OK, "no unit refused");
	CHECK(sl_budget_parse("-1bpw", &k, &v, &err) != SL_OK, "negative refused");
}

/* A GPT-2 model's cells carry the Fisher proxy too (its gradients are the
 * trainer's), with the real GPT-2 vocabulary on a small random model. */
static void test_gpt2_fisher(void)
{
	const char *vocab = test_fixture("tokenizers/ggml-vocab-gpt-2.gguf");
	sl_tokenizer *tok = NULL;
	sl_error err = {0};
	if (!vocab || !TEST_EVAL(!sl_tok_load_file(vocab, &tok, &err), "%s: %s", vocab, err.msg))
		return;
	sl_config c = {.arch = SL_ARCH_GPT2, .dim = 32, .hidden_dim = 64, .n_layers = 2, .n_heads = 4,
	               .vocab_size = sl_tok_n_vocab(tok), .max_seq_len = 64};
	sl_model *m = NULL;
	if (!TEST_EVAL(!sl_model_init_random(&c, true, 0.1f, 9, &m, &err), "random GPT-2: %s", err.msg)) {
		sl_tok_free(tok);
		return;
	}
	m->tok = tok;
	sl_sweep *sw = new_sweep(m, "int4-g32", SL_SWEEP_MODULES);
	if (TEST_EVAL(sw, "GPT-2 sweep") &&
	    TEST_EVAL(!sl_sweep_fisher_note(sw)[0], "GPT-2: %s", sl_sweep_fisher_note(sw)) &&
	    TEST_EVAL(sl_sweep_run(sw, NULL, NULL, NULL, &err) == SL_OK, "GPT-2 sweep: %s", err.msg)) {
		int with = 0;
		for (int r = 0; r < sl_sweep_rows(sw); r++) {
			double f = sl_sweep_cell_at(sw, r, 0)->proxy[SL_PROXY_FISHER];
			with += isfinite(f) && f > 0;
		}
		printf("GPT-2: %d of %d modules have a Fisher proxy\n", with, sl_sweep_rows(sw));
		CHECK(with == sl_sweep_rows(sw), "GPT-2: %d of %d modules have a Fisher proxy", with, sl_sweep_rows(sw));
	}
	sl_sweep_free(sw);
	sl_model_free(m);
}

int main(void)
{
	test_options();
	calib_text = test_srcpath("data/calib.txt");
	test_gpt2_fisher();
	const char *path = test_fixture("models/stories260K.gguf");
	if (!path)
		return test_finish();
	sl_model *m = test_load(path);
	if (!m)
		return 1;
	test_cells_equal_full_evaluation(m);
	test_cancel_and_resume(m);
	test_autorecipe_beats_uniform(m, "stories260K");
	sl_model_free(m);

	/* The model that ships with slimlab. */
	if (test_light())
		test_light_note("the workshop model's automatic recipe left to the normal build (stories260K's runs here)");
	else if ((m = test_load(test_srcpath("models/workshop.gguf")))) {
		test_autorecipe_beats_uniform(m, "workshop model");
		sl_model_free(m);
	}
	return test_finish();
}
