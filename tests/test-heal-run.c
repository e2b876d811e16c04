/* Healing runs (core/heal.c) on real models: QAD lowers the workshop
 * model's held-out KL under int3-g32; the healed weights pack into their
 * formats without moving (the packed bytes decode to what was trained);
 * LoRA changes only the matrices with adapters and leaves the rest's
 * bytes alone; LoRA's adapters kept apart leave the post-training bytes
 * and make a file llama.cpp can load, whose adapters added to those
 * weights (read back independently) give the after figures; LoftQ's
 * start alone, before any training, is closer to the base than plain
 * post-training quantization, one alternation of it is that very
 * quantization, and recipes LoftQ cannot start from are refused; KD after 2:4 pruning keeps two zeros in every four and
 * after block removal keeps the shorter model; KD after SVD-LLM at keep
 * 0.6 lowers the workshop model's KL and its file keeps the factors (the
 * same shapes, types and byte count), LoRA after it merges the adapters
 * into the factors and refuses to keep them apart; a run cancelled with a
 * checkpoint and resumed ends in exactly the bytes of a run never
 * stopped; bad settings are refused with a clear error. */
#include <stdatomic.h>

#include "core/compress.h"
#include "core/fileio.h"
#include "core/heal.h"
#include "core/recipe.h"
#include "core/tokenizer.h"
#include "lora-ref.h"
#include "test.h"

static sl_model *load(const char *path)
{
	sl_model *m = NULL;
	sl_error err = {0};
	sl_load_opts lo = {.check_finite = true};
	if (sl_model_load(path, &lo, &m, &err))
		fprintf(stderr, "%s: %s\n", path, err.msg);
	return m;
}

static sl_recipe *recipe(const char *json)
{
	sl_recipe *r = NULL;
	sl_error err = {0};
	if (sl_recipe_parse(json, strlen(json), &r, &err))
		fprintf(stderr, "recipe: %s\n", err.msg);
	return r;
}

/* A training text: the first bytes of the shipped calibration text. */
static char train_path[4200];

static bool make_train_text(void)
{
	char *text;
	size_t len;
	sl_error err = {0};
	if (sl_read_file(test_srcpath("data/calib.txt"), (size_t)1 << 30, &text, &len, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return false;
	}
	snprintf(train_path, sizeof train_path, "%s/train.txt", test_tmpdir());
	sl_status st = sl_write_file_atomic(train_path, text, len < 200000 ? len : 200000, &err);
	free(text);
	return st == SL_OK;
}

static void small_opts(sl_heal_opts *o, sl_heal_method m, int steps)
{
	sl_heal_opts_init(o, m);
	o->steps = steps;
	o->batch = 4;
	o->seq_len = 64;
	o->lr = 5e-4f;
	o->train_text = train_path;
	o->eval_text = test_srcpath("data/eval.txt");
	o->eval_ctx = 128;
	o->eval_chunks = 6;
	o->eval_every = 0;
}

static sl_model *heal(const sl_model *base, const char *json, const sl_heal_opts *o, sl_heal_result *res)
{
	sl_recipe *r = recipe(json);
	sl_model *out = NULL;
	sl_error err = {0};
	if (r && sl_heal(base, r, o, &out, res, &err))
		fprintf(stderr, "heal %s: %s\n", json, err.msg);
	sl_recipe_free(r);
	return out;
}

static bool same_bytes(const sl_tensor *a, const sl_tensor *b)
{
	return a->type == b->type && a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes);
}

/* QAD on the workshop model under int3-g32: the held-out KL falls and the
 * trained values are exactly what the packed bytes hold. */
static void test_qad_workshop(void)
{
	sl_model *w = load(test_srcpath("models/workshop.gguf"));
	REQUIRE(w, "the workshop model loads");
	sl_heal_opts o;
	int steps = 40;
	if (test_light()) {
		steps = 8;
		test_light_note("QAD on the workshop model for %d steps: the KL drop of 40 left to the normal build", steps);
	}
	small_opts(&o, SL_HEAL_QAD, steps);
	sl_heal_result res;
	uint64_t before = sl_model_hash(w);
	sl_model *h = heal(w, "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"int3-g32\"}}", &o, &res);
	CHECK(sl_model_hash(w) == before, "healing leaves the base's bytes as they were");
	if (TEST_EVAL(h, "QAD runs")) {
		printf("workshop int3-g32 QAD, %d steps: KL %.5f -> %.5f (recovered %.1f%%), top-1 %.4f -> %.4f\n", steps,
		       res.before.kl_mean, res.after.kl_mean, 100 * res.recovered, res.before.top1, res.after.top1);
		if (steps == 40)
			CHECK(res.after.kl_mean < 0.95 * res.before.kl_mean, "KL %.5f -> %.5f", res.before.kl_mean,
			      res.after.kl_mean);
		CHECK(res.repacked_moved == 0, "%lld weights moved when packed", res.repacked_moved);
		CHECK(res.steps == steps && res.loss && res.loss[steps - 1] > 0, "a loss per step");
		CHECK(h->cfg.n_layers == w->cfg.n_layers, "same blocks");
		sl_tensor *q = sl_model_tensor(h, "blk.0.attn_q.weight");
		CHECK(q && q->type == sl_format_find("int3-g32")->dtype, "packed in int3-g32");
	}
	sl_heal_result_free(&res);
	/* The healed model borrows the base's unchanged tensors: it outlives it. */
	uint64_t healed = h ? sl_model_hash(h) : 0;
	sl_model_free(w);
	if (h)
		CHECK(sl_model_hash(h) == healed, "the healed model reads the same after the base is freed");
	sl_model_free(h);
}

/* Packing the healed weights moves none of them, for formats of every
 * kind of grid; the packed types are the post-training ones. */
static void test_packing(const sl_model *m)
{
	const char *formats[] = {"int4-g32", "q4_0", "q4_k", "nvfp4", "int8", "q8_0", "int2-g32-asym"};
	for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
		char json[160];
		snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"%s\"}}", formats[i]);
		sl_heal_opts o;
		small_opts(&o, SL_HEAL_QAT, 3);
		o.eval_chunks = 1;
		sl_heal_result res;
		sl_model *h = heal(m, json, &o, &res);
		if (TEST_EVAL(h, "%s heals", formats[i]))
			CHECK(res.repacked_moved == 0, "%s: %lld weights moved when packed", formats[i], res.repacked_moved);
		sl_heal_result_free(&res);
		sl_model_free(h);
	}
	/* Learned steps pack exactly too; a format without uniform levels refuses them. */
	const char *lsq[] = {"int4-g32", "q4_0", "nvfp4"};
	for (int i = 0; i < 3; i++) {
		char json[160];
		snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"%s\"}}", lsq[i]);
		sl_heal_opts o;
		small_opts(&o, SL_HEAL_QAT, 4);
		o.eval_chunks = 1;
		o.lsq = true;
		sl_recipe *r = recipe(json);
		sl_model *h = NULL;
		sl_heal_result res;
		sl_error err = {0};
		sl_status st = r ? sl_heal(m, r, &o, &h, &res, &err) : SL_ERR_ARG;
		if (i < 2 && TEST_EVAL(!st, "%s with learned steps: %s", lsq[i], err.msg))
			CHECK(res.repacked_moved == 0, "%s with learned steps: %lld weights moved when packed", lsq[i],
			      res.repacked_moved);
		if (i == 2)
			CHECK(st == SL_ERR_UNSUPPORTED && strstr(err.msg, "steps to learn"), "nvfp4 refuses LSQ: %s",
			      err.msg);
		sl_heal_result_free(&res);
		sl_model_free(h);
		sl_recipe_free(r);
	}
}

/* LoRA: the matrices of the blocks change through their adapters; the
 * embedding and the norms keep their bytes. */
static void test_lora(const sl_model *m)
{
	const char *json = "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"int4-g32\"}}";
	sl_recipe *r = recipe(json);
	sl_model *ptq = NULL;
	sl_apply_report rep = {0};
	sl_error err = {0};
	REQUIRE(r && !sl_recipe_apply(m, r, NULL, &ptq, &rep, &err), "int4-g32 applies: %s", err.msg);
	sl_heal_opts o;
	small_opts(&o, SL_HEAL_LORA, 20);
	o.rank = 4;
	o.lr = 2e-3f;
	sl_heal_result res;
	sl_model *h = heal(m, json, &o, &res);
	if (TEST_EVAL(h, "LoRA runs")) {
		printf("stories260K int4-g32 LoRA r4, 20 steps: KL %.5f -> %.5f\n", res.before.kl_mean, res.after.kl_mean);
		CHECK(same_bytes(sl_model_tensor(h, "token_embd.weight"), sl_model_tensor(ptq, "token_embd.weight")),
		      "the embedding keeps its bytes");
		CHECK(same_bytes(sl_model_tensor(h, "blk.2.attn_norm.weight"), sl_model_tensor(ptq, "blk.2.attn_norm.weight")),
		      "norms keep their bytes");
		int changed = 0;
		for (int i = 0; i < h->n_tensors; i++)
			changed += h->tensors[i]->n_dims == 2 && !strncmp(h->tensors[i]->name, "blk.", 4) &&
			           !same_bytes(h->tensors[i], sl_model_tensor(ptq, h->tensors[i]->name));
		CHECK(changed > 0, "no block matrix changed");
		CHECK(res.after.kl_mean < res.before.kl_mean, "KL %.5f -> %.5f", res.before.kl_mean, res.after.kl_mean);
		CHECK(res.n_trained == 5 * 7, "%d tensors trained (adapters on the blocks' 35 matrices)", res.n_trained);
		CHECK(res.repacked_moved == 0, "%lld weights moved when packed", res.repacked_moved);
	}
	sl_heal_result_free(&res);
	sl_model_free(h);
	sl_apply_report_free(&rep);
	sl_model_free(ptq);
	sl_recipe_free(r);
}

/* The held-out figures of m as sl_heal computes them (small_opts). */
static bool eval_like_heal(const sl_model *m, const sl_model *base, const sl_heal_opts *o, sl_eval_result *e)
{
	int32_t *ids = NULL;
	size_t n = 0;
	sl_error err = {0};
	sl_eval_opts eo = {.n_ctx = o->eval_ctx, .n_chunks = o->eval_chunks};
	bool ok = !sl_train_encode_file(base->tok, o->eval_text, sl_tok_add_bos(base->tok), &ids, &n, &err) &&
	          !sl_eval_tokens(m, base, ids, n, &eo, e, &err);
	if (!ok)
		fprintf(stderr, "evaluation: %s\n", err.msg);
	free(ids);
	return ok;
}

/* The model out with the adapters of the file at path added in F32. */
static sl_model *with_adapters(const sl_model *out, const char *path, int *pairs)
{
	sl_model *m = NULL;
	sl_error err = {0};
	char why[1400];
	if (sl_model_clone(out, &m, &err))
		return NULL;
	for (int i = 0; i < m->n_tensors; i++)
		if (m->tensors[i]->n_dims >= 2 && sl_tensor_to_f32(m->tensors[i], &err)) {
			sl_model_free(m);
			return NULL;
		}
	if (!lora_merge(m, path, "llama", pairs, why, sizeof why)) {
		fprintf(stderr, "%s: %s\n", path, why);
		sl_model_free(m);
		return NULL;
	}
	return m;
}

/* LoRA with its adapters kept apart: the compressed model keeps every
 * post-training byte; the adapter file holds a pair for each of the
 * blocks' matrices, which added to those weights give the after figures
 * sl_heal reports (and with no step taken, the weights alone). */
static void test_lora_apart(const sl_model *m)
{
	const char *json = "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"int4-g32\"}}";
	sl_recipe *r = recipe(json);
	sl_model *ptq = NULL;
	sl_apply_report rep = {0};
	sl_error err = {0};
	REQUIRE(r && !sl_recipe_apply(m, r, NULL, &ptq, &rep, &err), "int4-g32 applies: %s", err.msg);
	char path[4300];
	snprintf(path, sizeof path, "%s/lora.gguf", test_tmpdir());
	for (int steps = 0; steps <= 20; steps += 20) {
		sl_heal_opts o;
		small_opts(&o, SL_HEAL_LORA, steps);
		o.rank = 4;
		o.alpha = 8;
		o.lr = 1e-3f;
		o.loss = SL_LOSS_KL_FORWARD;
		o.adapter_out = path;
		remove(path);
		sl_heal_result res;
		sl_model *h = heal(m, json, &o, &res);
		if (TEST_EVAL(h && sl_file_exists(path), "LoRA apart, %d steps", steps)) {
			bool same = h->n_tensors == ptq->n_tensors;
			for (int i = 0; same && i < h->n_tensors; i++)
				same = same_bytes(h->tensors[i], ptq->tensors[i]);
			CHECK(same, "%d steps: the compressed model keeps its post-training bytes", steps);
			int pairs = 0;
			sl_model *both = with_adapters(h, path, &pairs);
			sl_eval_result e;
			if (TEST_EVAL(both && eval_like_heal(both, m, &o, &e), "the adapter file reads back and applies")) {
				printf("stories260K int4-g32 LoRA r4 apart, %d steps: KL %.6f -> %.6f; the file's adapters on the "
				       "packed weights: KL %.6f, PPL %.4f (heal's %.4f)\n",
				       steps, res.before.kl_mean, res.after.kl_mean, e.kl_mean, e.ppl, res.after.ppl);
				CHECK(pairs == 5 * 7, "%d adapters in the file (the blocks' 35 matrices)", pairs);
				CHECK(fabs(e.kl_mean - res.after.kl_mean) <= 1e-4 * res.after.kl_mean &&
				          fabs(e.ppl - res.after.ppl) <= 1e-5 * res.after.ppl,
				      "%d steps: the file's adapters give KL %.7f PPL %.6f, heal reported %.7f %.6f", steps, e.kl_mean,
				      e.ppl, res.after.kl_mean, res.after.ppl);
				if (steps)
					CHECK(res.after.kl_mean < res.before.kl_mean, "KL %.5f -> %.5f", res.before.kl_mean,
					      res.after.kl_mean);
			}
			sl_model_free(both);
		}
		sl_heal_result_free(&res);
		sl_model_free(h);
	}
	/* Only LoRA has adapters to keep apart. */
	sl_heal_opts o;
	small_opts(&o, SL_HEAL_QAT, 2);
	o.adapter_out = path;
	sl_model *h = NULL;
	sl_heal_result res;
	CHECK(sl_heal(m, r, &o, &h, &res, &err) == SL_ERR_ARG && strstr(err.msg, "only LoRA"), "QAT with adapters: %s",
	      err.msg);
	remove(path);
	sl_apply_report_free(&rep);
	sl_model_free(ptq);
	sl_recipe_free(r);
}

static sl_model *lora_apart(const sl_model *m, const char *json, int loftq, const char *path, sl_heal_result *res)
{
	sl_heal_opts o;
	small_opts(&o, SL_HEAL_LORA, 0);
	o.rank = 4;
	o.loftq = loftq;
	o.adapter_out = path;
	remove(path);
	return heal(m, json, &o, res);
}

/* LoftQ under int3-g32 with no training: base + adapters is closer to the
 * base than the post-training model is, measured either way (its packed
 * weights, or decoded to F32 as base + adapters are); the file's
 * adapters give that figure; the blocks' matrices are quantized anew and
 * nothing else changes; with one alternation the quantization is plain
 * post-training quantization. */
static void test_loftq(const sl_model *m)
{
	const char *json = "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"int3-g32\"}}";
	char path[4300];
	snprintf(path, sizeof path, "%s/loftq.gguf", test_tmpdir());
	sl_heal_result plain, lq, one;
	sl_model *p = lora_apart(m, json, 0, path, &plain);
	sl_model *q = lora_apart(m, json, 5, path, &lq);
	if (TEST_EVAL(p && q, "LoRA with and without LoftQ")) {
		printf("stories260K int3-g32 LoRA r4, no training: KL after post-training quantization %.5f (decoded to "
		       "F32 %.5f), with LoftQ's start %.5f\n",
		       plain.before.kl_mean, plain.after.kl_mean, lq.after.kl_mean);
		CHECK(lq.before.kl_mean == plain.before.kl_mean, "the before figures are plain post-training quantization's");
		CHECK(lq.after.kl_mean < 0.95 * plain.before.kl_mean && lq.after.kl_mean < 0.95 * plain.after.kl_mean,
		      "LoftQ's start: KL %.5f against %.5f (packed) and %.5f (F32)", lq.after.kl_mean, plain.before.kl_mean,
		      plain.after.kl_mean);
		int pairs = 0, requantized = 0, other = 0;
		sl_model *both = with_adapters(q, path, &pairs);
		sl_eval_result e;
		sl_heal_opts o;
		small_opts(&o, SL_HEAL_LORA, 0);
		if (TEST_EVAL(both && eval_like_heal(both, m, &o, &e), "LoftQ's adapter file reads back"))
			CHECK(fabs(e.kl_mean - lq.after.kl_mean) <= 1e-4 * lq.after.kl_mean, "the file gives KL %.7f, heal %.7f",
			      e.kl_mean, lq.after.kl_mean);
		sl_model_free(both);
		for (int i = 0; i < q->n_tensors; i++) {
			const sl_tensor *a = q->tensors[i], *b = p->tensors[i];
			bool block_matrix = a->n_dims == 2 && !strncmp(a->name, "blk.", 4);
			requantized += block_matrix && a->type == b->type && !same_bytes(a, b);
			other += !block_matrix && !same_bytes(a, b);
		}
		CHECK(requantized == 5 * 7 && other == 0, "%d block matrices quantized anew, %d other tensors changed",
		      requantized, other);
	}
	sl_model *r = lora_apart(m, json, 1, path, &one);
	if (TEST_EVAL(r && p, "LoftQ, one alternation")) {
		bool same = r->n_tensors == p->n_tensors;
		for (int i = 0; same && i < r->n_tensors; i++)
			same = same_bytes(r->tensors[i], p->tensors[i]);
		CHECK(same, "one alternation quantizes as post-training quantization does");
		CHECK(one.after.kl_mean < plain.after.kl_mean, "its adapters alone lower KL %.5f -> %.5f",
		      plain.after.kl_mean, one.after.kl_mean);
	}
	sl_heal_result_free(&plain);
	sl_heal_result_free(&lq);
	sl_heal_result_free(&one);
	sl_model_free(p);
	sl_model_free(q);
	sl_model_free(r);

	/* What LoftQ cannot start from. */
	static const struct {
		const char *json, *why;
	} refused[] = {
		{"{\"slimlab_recipe\": 1, \"default\": {\"format\": \"int3-g32\", \"pattern\": \"2:4\", \"prune\": \"magnitude\"}}",
		 "prunes"},
		{"{\"slimlab_recipe\": 1, \"default\": {\"format\": \"int3-g32\", \"method\": \"gptq\"}}", "rounding to nearest"},
		{"{\"slimlab_recipe\": 1, \"default\": {\"format\": \"f16\"}}", "quantizes none"},
	};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		sl_recipe *rc = recipe(refused[i].json);
		sl_heal_opts o;
		small_opts(&o, SL_HEAL_LORA, 0);
		o.loftq = 2;
		sl_model *out = NULL;
		sl_heal_result res;
		sl_error err = {0};
		sl_status st = rc ? sl_heal(m, rc, &o, &out, &res, &err) : SL_ERR_ARG;
		CHECK(st == SL_ERR_UNSUPPORTED && strstr(err.msg, refused[i].why) && !out, "LoftQ refuses %s: %s",
		      refused[i].json, err.msg);
		sl_recipe_free(rc);
	}
	sl_recipe *rc = recipe(json);
	sl_heal_opts o;
	small_opts(&o, SL_HEAL_QAT, 2);
	o.loftq = 2;
	sl_model *out = NULL;
	sl_heal_result res;
	sl_error err = {0};
	CHECK(sl_heal(m, rc, &o, &out, &res, &err) == SL_ERR_ARG && strstr(err.msg, "LoftQ"), "LoftQ with QAT: %s",
	      err.msg);
	sl_recipe_free(rc);
	remove(path);
}

/* Every group of four weights along a row holds at least two zeros. */
static bool holds_2_4(const sl_tensor *t)
{
	int64_t cols = t->ne[0], rows = sl_tensor_nrows(t);
	float *row = malloc((size_t)cols * sizeof *row);
	bool ok = true;
	for (int64_t r = 0; r < rows && ok; r++) {
		sl_tensor_rows_to_f32(t, r, 1, row);
		for (int64_t c = 0; c + 4 <= cols && ok; c += 4)
			ok = (row[c] == 0) + (row[c + 1] == 0) + (row[c + 2] == 0) + (row[c + 3] == 0) >= 2;
	}
	free(row);
	return ok;
}

static void test_kd_pruned(const sl_model *m)
{
	sl_heal_opts o;
	small_opts(&o, SL_HEAL_KD, 25);
	sl_heal_result res;
	sl_model *h = heal(m,
	                   "{\"slimlab_recipe\": 1, \"rules\": [{\"match\": \"blk.*\", \"pattern\": \"2:4\", "
	                   "\"prune\": \"magnitude\"}]}",
	                   &o, &res);
	if (TEST_EVAL(h, "KD after 2:4 runs")) {
		printf("stories260K 2:4 magnitude + KD, 25 steps: KL %.5f -> %.5f (recovered %.1f%%)\n", res.before.kl_mean,
		       res.after.kl_mean, 100 * res.recovered);
		CHECK(res.after.kl_mean < res.before.kl_mean, "KL %.5f -> %.5f", res.before.kl_mean, res.after.kl_mean);
		const char *names[] = {"blk.0.attn_q.weight", "blk.3.ffn_down.weight", "blk.4.attn_output.weight"};
		for (int i = 0; i < 3; i++)
			CHECK(holds_2_4(sl_model_tensor(h, names[i])), "%s keeps 2:4", names[i]);
		CHECK(!strcmp(res.loss_name, "kl"), "KD trains on KL, not %s", res.loss_name);
	}
	sl_heal_result_free(&res);
	sl_model_free(h);

	small_opts(&o, SL_HEAL_KD, 10);
	char json[4400];
	snprintf(json, sizeof json,
	         "{\"slimlab_recipe\": 1, \"calibration\": {\"text\": \"%s\", \"tokens\": 2048}, \"rules\": [{\"match\": "
	         "\"blk.*\", \"sparsity\": 0.4, \"pattern\": \"block\"}]}",
	         train_path);
	h = heal(m, json, &o, &res);
	if (TEST_EVAL(h, "KD after block removal runs")) {
		CHECK(h->cfg.n_layers == 3, "%d blocks remain of 5", h->cfg.n_layers);
		CHECK(res.after.kl_mean < res.before.kl_mean, "KL %.5f -> %.5f", res.before.kl_mean, res.after.kl_mean);
	}
	sl_heal_result_free(&res);
	sl_model_free(h);
}

typedef struct {
	atomic_int *cancel;
	int at;
} stopper;

static void stop_at(void *ctx, const sl_heal_report *r)
{
	stopper *s = ctx;
	if (r->event == SL_TRAIN_STEP && r->step == s->at)
		atomic_store(s->cancel, 1);
}

/* Cancelled at step 6 with a checkpoint, resumed: the same bytes as a run
 * never stopped. */
static void test_resume(const sl_model *m)
{
	const char *json = "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"q4_0\"}}";
	char ckpt[4300];
	snprintf(ckpt, sizeof ckpt, "%s/heal.ckpt", test_tmpdir());
	remove(ckpt);
	sl_heal_opts o;
	small_opts(&o, SL_HEAL_QAD, 12);
	o.eval_chunks = 1;
	sl_heal_result whole, part, rest;
	sl_model *a = heal(m, json, &o, &whole);

	atomic_int cancel = 0;
	stopper s = {&cancel, 6};
	sl_progress p = {.cancel = &cancel};
	o.checkpoint = ckpt;
	o.progress = &p;
	o.on_report = stop_at;
	o.ctx = &s;
	sl_recipe *r = recipe(json);
	sl_model *b = NULL;
	sl_error err = {0};
	sl_status st = sl_heal(m, r, &o, &b, &part, &err);
	CHECK(st == SL_ERR_CANCELLED && sl_file_exists(ckpt), "cancelled with a checkpoint: %s", err.msg);
	CHECK(part.steps == 6, "stopped at step %lld", (long long)part.steps);
	st = sl_heal(m, r, &o, &b, &rest, &err);
	CHECK(st == SL_ERR_ARG && strstr(err.msg, "exists"), "a fresh run keeps the checkpoint: %s", err.msg);
	cancel = 0;
	o.resume = true;
	st = sl_heal(m, r, &o, &b, &rest, &err);
	if (TEST_EVAL(!st && a && b, "resumed: %s", err.msg)) {
		bool same = a->n_tensors == b->n_tensors;
		for (int i = 0; same && i < a->n_tensors; i++)
			same = same_bytes(a->tensors[i], b->tensors[i]);
		CHECK(same, "the resumed run ends in the bytes of the whole one");
		CHECK(rest.steps == 12 && whole.loss && rest.loss && whole.loss[11] == rest.loss[11],
		      "the same loss at the last step");
	}
	/* A checkpoint of other settings is refused. */
	o.steps = 13;
	o.lr = 1e-3f;
	sl_model *c = NULL;
	sl_heal_result other;
	st = sl_heal(m, r, &o, &c, &other, &err);
	CHECK(st == SL_ERR_ARG && strstr(err.msg, "another healing run"), "other settings refused: %s", err.msg);
	remove(ckpt);
	sl_heal_result_free(&whole);
	sl_heal_result_free(&part);
	sl_heal_result_free(&rest);
	sl_heal_result_free(&other);
	sl_model_free(a);
	sl_model_free(b);
	sl_model_free(c);
	sl_recipe_free(r);
}

static void test_refusals(const sl_model *m)
{
	sl_recipe *r = recipe("{\"slimlab_recipe\": 1, \"default\": {\"format\": \"q4_0\"}}");
	sl_heal_opts o;
	sl_heal_result res;
	sl_model *out = NULL;
	sl_error err = {0};
	small_opts(&o, SL_HEAL_QAT, 2);
	o.eval_text = train_path;
	CHECK(sl_heal(m, r, &o, &out, &res, &err) == SL_ERR_ARG && strstr(err.msg, "both the training and"),
	      "training text as evaluation text: %s", err.msg);
	small_opts(&o, SL_HEAL_QAT, 0);
	CHECK(sl_heal(m, r, &o, &out, &res, &err) == SL_ERR_ARG && strstr(err.msg, "steps"), "0 steps: %s", err.msg);
	small_opts(&o, SL_HEAL_LORA, 2);
	o.rank = 100;
	CHECK(sl_heal(m, r, &o, &out, &res, &err) == SL_ERR_ARG && strstr(err.msg, "rank"), "rank 100: %s", err.msg);
	small_opts(&o, SL_HEAL_QAT, 2);
	o.seq_len = 100000;
	CHECK(sl_heal(m, r, &o, &out, &res, &err) == SL_ERR_ARG && strstr(err.msg, "context"), "long sequences: %s",
	      err.msg);
	small_opts(&o, SL_HEAL_QAT, 2);
	o.train_text = "/nonexistent/text.txt";
	CHECK(sl_heal(m, r, &o, &out, &res, &err) && strstr(err.msg, "/nonexistent/text.txt"), "missing text: %s",
	      err.msg);
	small_opts(&o, SL_HEAL_QAD, 2);
	o.temperature = 0;
	CHECK(sl_heal(m, r, &o, &out, &res, &err) == SL_ERR_ARG && strstr(err.msg, "temperature"),
	      "temperature 0: %s", err.msg);
	CHECK(!out, "no model on failure");
	sl_heal_result_free(&res);
	sl_recipe_free(r);
}

/* The GGUF of m (with recipe r) at name in the test folder: its size, and
 * the model read back from it. */
static long export_size(const sl_model *m, const sl_recipe *r, const char *name, sl_model **back)
{
	char path[4300];
	snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
	sl_error err = {0};
	if (sl_export_gguf(m, r, path, NULL, &err)) {
		fprintf(stderr, "%s: %s\n", path, err.msg);
		return -1;
	}
	FILE *f = fopen(path, "rb");
	long n = f && !fseek(f, 0, SEEK_END) ? ftell(f) : -1;
	if (f)
		fclose(f);
	*back = load(path);
	return n;
}

/* Whether every weight a factors, b factors alike: the same rank, factor
 * shapes and types. */
static bool same_factoring(const sl_model *a, const sl_model *b, int *n)
{
	*n = 0;
	for (int i = 0; i < a->n_tensors; i++) {
		const sl_tensor *t = a->tensors[i], *u = sl_model_tensor(b, t->name);
		if (!t->lr_a)
			continue;
		if (!u || !u->lr_a || sl_tensor_rank(u) != sl_tensor_rank(t))
			return false;
		for (int k = 0; k < 2; k++) {
			const sl_tensor *x = k ? t->lr_b : t->lr_a, *y = k ? u->lr_b : u->lr_a;
			if (x->type != y->type || x->ne[0] != y->ne[0] || x->ne[1] != y->ne[1] || strcmp(x->name, y->name))
				return false;
		}
		(*n)++;
	}
	return *n > 0;
}

/* KD after SVD-LLM at keep 0.6 trains the factors: the held-out KL falls,
 * the healed model and its file keep every factor as post-training
 * factoring left it (shape, type, the file's byte count), and the file
 * read back computes the after figures. LoRA after it merges adapters on
 * the block factors into them, keeping the shapes; kept apart, refused. */
static void test_kd_factored(void)
{
	sl_model *w = load(test_srcpath("models/workshop.gguf"));
	REQUIRE(w, "the workshop model loads");
	char json[4400];
	snprintf(json, sizeof json,
	         "{\"slimlab_recipe\": 1, \"calibration\": {\"text\": \"%s\", \"tokens\": 8192}, \"default\": "
	         "{\"method\": \"svdllm\", \"params\": {\"keep\": 0.6}}}",
	         train_path);
	sl_recipe *r = recipe(json);
	sl_model *ptq = NULL, *ptq_back = NULL, *h_back = NULL;
	sl_apply_report rep = {0};
	sl_error err = {0};
	sl_apply_opts ao = {0};
	REQUIRE(r && !sl_recipe_apply(w, r, &ao, &ptq, &rep, &err), "svdllm keep 0.6: %s", err.msg);
	sl_apply_report_free(&rep);
	sl_heal_opts o;
	int steps = 20;
	if (test_light()) {
		steps = 5;
		test_light_note("KD after svdllm for %d steps: the KL drop of 20 left to the normal build", steps);
	}
	small_opts(&o, SL_HEAL_KD, steps);
	sl_heal_result res;
	sl_model *h = heal(w, json, &o, &res);
	if (TEST_EVAL(h, "KD after svdllm runs")) {
		printf("workshop svdllm keep 0.6 + KD, %lld steps in %.1f s (%.0f tokens/s): KL %.5f -> %.5f (recovered "
		       "%.1f%%), PPL %.2f -> %.2f\n",
		       (long long)res.steps, res.train_seconds, res.tokens_per_s, res.before.kl_mean, res.after.kl_mean,
		       100 * res.recovered, res.before.ppl, res.after.ppl);
		if (steps == 20)
			CHECK(res.after.kl_mean < 0.9 * res.before.kl_mean, "KL %.5f -> %.5f", res.before.kl_mean,
			      res.after.kl_mean);
		int n;
		CHECK(same_factoring(ptq, h, &n) && n == 43, "the healed model keeps the factors (%d weights)", n);
		CHECK(sl_model_bytes(h) == sl_model_bytes(ptq), "bytes %zu, after factoring %zu", sl_model_bytes(h),
		      sl_model_bytes(ptq));
		long a = export_size(ptq, r, "svdllm.gguf", &ptq_back), b = export_size(h, r, "svdllm-kd.gguf", &h_back);
		CHECK(a > 0 && a == b, "the healed file has %ld bytes, the unhealed %ld", b, a);
		CHECK(h_back && same_factoring(ptq, h_back, &n), "the healed file reads back factored");
		sl_eval_result e;
		sl_eval_opts eo = {.n_ctx = o.eval_ctx, .n_chunks = o.eval_chunks};
		int32_t *tok = NULL;
		size_t n_tok = 0;
		if (h_back && !sl_train_encode_file(w->tok, o.eval_text, sl_tok_add_bos(w->tok), &tok, &n_tok, &err) &&
		    !sl_eval_tokens(h_back, w, tok, n_tok, &eo, &e, &err))
			CHECK(fabs(e.kl_mean - res.after.kl_mean) <= 1e-4 * res.after.kl_mean, "read back: KL %.6f, healed %.6f",
			      e.kl_mean, res.after.kl_mean);
		else
			CHECK(0, "the healed file evaluates: %s", err.msg);
		free(tok);
	}
	sl_heal_result_free(&res);
	sl_model_free(h);

	small_opts(&o, SL_HEAL_LORA, 5);
	h = heal(w, json, &o, &res);
	if (TEST_EVAL(h, "LoRA after svdllm runs")) {
		int n, changed = 0;
		CHECK(same_factoring(ptq, h, &n), "LoRA keeps the factors' shapes");
		for (int i = 0; i < ptq->n_tensors; i++) {
			const sl_tensor *t = ptq->tensors[i], *u = sl_model_tensor(h, t->name);
			if (t->factor && u && !same_bytes(t, u)) {
				changed++;
				CHECK(!strncmp(t->name, "blk.", 4), "%s changed, and has no adapter", t->name);
			}
		}
		CHECK(changed == 2 * 42, "the adapters merged into %d factors of the blocks' 84", changed);
		CHECK(res.after.kl_mean < res.before.kl_mean, "LoRA: KL %.5f -> %.5f", res.before.kl_mean, res.after.kl_mean);
	}
	sl_heal_result_free(&res);
	sl_model_free(h);
	char path[4300];
	snprintf(path, sizeof path, "%s/svdllm-lora.gguf", test_tmpdir());
	o.adapter_out = path;
	sl_recipe *rr = recipe(json);
	h = NULL;
	sl_status st = rr ? sl_heal(w, rr, &o, &h, &res, &err) : SL_ERR_ARG;
	CHECK(st == SL_ERR_UNSUPPORTED && strstr(err.msg, "merge into the factors") && !sl_file_exists(path),
	      "adapters on factors kept apart are refused: %s", err.msg);
	sl_heal_result_free(&res);
	sl_model_free(h);
	sl_recipe_free(rr);
	sl_recipe_free(r);
	sl_model_free(ptq);
	sl_model_free(ptq_back);
	sl_model_free(h_back);
	sl_model_free(w);
}

int main(void)
{
	if (!make_train_text())
		return 1;
	test_qad_workshop();
	test_kd_factored();
	const char *path = test_fixture("models/stories260K.gguf");
	if (path) {
		sl_model *m = load(path);
		if (TEST_EVAL(m, "stories260K loads")) {
			test_packing(m);
			test_lora(m);
			test_lora_apart(m);
			test_loftq(m);
			test_kd_pruned(m);
			test_resume(m);
			test_refusals(m);
		}
		sl_model_free(m);
	}
	return test_finish();
}
