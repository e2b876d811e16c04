/* GPT-2 trains, against PyTorch (tests/gen-torch-gpt2.py wrote the weights
 * of a small random GPT-2 and PyTorch's float64 results into
 * tests/data/torch-gpt2.bin): the cross-entropy and the gradient of every
 * parameter (learned positions, LayerNorms with biases, the fused qkv
 * matrix and its bias, GELU MLP, tied head) by both kernel tables; five
 * AdamW steps on PyTorch's loss curve; healing through int4-g32 with an
 * adapter on qkv, a frozen attn_output and a pruned quarter of ffn_up.
 * Also: the training forward's logits are the inference forward's, and
 * gradients given away as the backward finishes them are those kept, with
 * the matrices in F32 or F16. */
#include "core/forward.h"
#include "core/optim.h"
#include "core/train.h"
#include "kernels/dtype.h"
#include "test.h"
#include "torch-ref.h"

enum { B = 2, T = 11 };

static int32_t inputs[B * T], targets[B * T];

/* The loss, then every trainer parameter's gradient against the records
 * "<prefix>.grad.<name>"; returns the worst relative error. */
static double check_grads(const records *rs, sl_trainer *tr, const char *prefix, double loss, const char *what)
{
	char key[SL_NAME_MAX + 64];
	snprintf(key, sizeof key, "%s.loss", prefix);
	const record *want = find(rs, key);
	CHECK(want && fabs(loss - want->data[0]) <= 1e-5 * fabs(want->data[0]), "%s: loss %.9g, PyTorch %.9g", what,
	      loss, want ? want->data[0] : 0);
	int n;
	const sl_param *p = sl_trainer_params(tr, &n);
	double worst = 0;
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "%s.grad.%s", prefix, p[i].t->name);
		const record *g = find(rs, key);
		if (!TEST_EVAL(g && g->n == p[i].n, "%s: no reference gradient for %s", what, p[i].t->name))
			continue;
		double e = rel_err(p[i].grad, g->data, p[i].n);
		worst = fmax(worst, e);
		CHECK(e <= 1e-4, "%s: gradient of %s differs from PyTorch by %.3g (relative)", what, p[i].t->name, e);
	}
	int n_ref = 0;
	snprintf(key, sizeof key, "%s.grad.", prefix);
	for (int i = 0; i < rs->n; i++)
		n_ref += !strncmp(rs->r[i].name, key, strlen(key));
	CHECK(n_ref == n, "%s: %d parameters trained, %d gradients in the reference", what, n, n_ref);
	printf("%-24s loss %.7f, %2d gradients, worst relative error %.1e\n", what, loss, n, worst);
	return worst;
}

static sl_trainer *trainer(sl_model *m, const sl_train_kernels *K, const sl_trainer_opts *o)
{
	sl_trainer *tr = NULL;
	sl_error err = {0};
	if (!m || sl_trainer_new(m, K, B, T, o, &tr, &err))
		CHECK(0, "trainer: %s", err.msg);
	return tr;
}

/* Every matrix of m stored as F16. */
static void to_f16(sl_model *m)
{
	for (int i = 0; i < m->n_tensors; i++) {
		sl_tensor *t = m->tensors[i];
		if (t->n_dims < 2)
			continue;
		size_t n = (size_t)sl_tensor_nelements(t);
		float *w = malloc(n * sizeof *w);
		int64_t ne[2] = {t->ne[0], t->ne[1]};
		sl_error err;
		memcpy(w, t->data, n * sizeof *w);
		if (!sl_tensor_realloc(t, SL_DT_F16, ne, 2, &err))
			sl_dtype_rows_from_float(SL_DT_F16, w, t->data, ne[1], ne[0]);
		free(w);
	}
}

/* The gradients of the mean cross-entropy (cpu table) given away, flat in
 * trainer order, each checked given once, of the model or (f16) its copy
 * with F16 matrices; the trainer refuses to step. */
static float *given_grads(const records *rs, const cJSON *cfg, bool f16, size_t nw)
{
	sl_model *m = build(rs, cfg, "");
	if (m && f16)
		to_f16(m);
	grad_taker tk = {.flat = calloc(nw ? nw : 1, sizeof(float))};
	sl_trainer_opts o = {.grad_fn = take_grad, .ctx = &tk};
	sl_trainer *tr = trainer(m, sl_train_kernels_cpu(), &o);
	int np = 0;
	if (tr)
		sl_trainer_params(tr, &np);
	tk.tr = tr;
	tk.given = calloc((size_t)np + 1, sizeof(int));
	sl_loss ce = {SL_LOSS_CE, 1, 1};
	double loss;
	sl_error err = {0};
	bool ok = tr && sl_trainer_n_weights(tr) == nw &&
	          TEST_EVAL(!sl_trainer_backward(tr, inputs, targets, B, &ce, NULL, 1.0f, &loss, NULL, &err),
	                    "backward: %s", err.msg);
	if (ok) {
		int once = 0;
		for (int i = 0; i < np; i++)
			once += tk.given[i] == 1;
		CHECK(once == np && !tk.strays, "given away: %d of %d gradients given once, %d for no parameter", once, np,
		      tk.strays);
		sl_adamw a = {0};
		sl_step_info info;
		CHECK(sl_train_step(tr, &a, &(sl_adamw_opts){.lr = 1e-3f}, inputs, targets, 1, B, &ce, NULL, &info, &err) &&
		          strstr(err.msg, "cannot step"),
		      "a trainer that gives its gradients away steps (%s)", err.msg);
	}
	sl_trainer_free(tr);
	sl_model_free(m);
	free(tk.given);
	if (!ok) {
		free(tk.flat);
		return NULL;
	}
	return tk.flat;
}

/* Gradients of the mean cross-entropy by both tables, and the tables
 * against each other. */
static void test_grads(const records *rs, const cJSON *cfg)
{
	const sl_train_kernels *tables[2] = {sl_train_kernels_ref(), sl_train_kernels_cpu()};
	float *grads[2] = {NULL, NULL};
	size_t nw = 0;
	for (int k = 0; k < 2; k++) {
		sl_model *m = build(rs, cfg, "");
		sl_trainer *tr = trainer(m, tables[k], NULL);
		sl_loss ce = {SL_LOSS_CE, 1, 1};
		double loss;
		sl_error err = {0};
		if (tr && TEST_EVAL(!sl_trainer_backward(tr, inputs, targets, B, &ce, NULL, 1.0f, &loss, NULL, &err),
		                    "backward: %s", err.msg)) {
			char what[64];
			snprintf(what, sizeof what, "cross-entropy (%s)", tables[k]->name);
			check_grads(rs, tr, "ce", loss, what);
			nw = sl_trainer_n_weights(tr);
			int n;
			grads[k] = malloc(nw * sizeof(float));
			memcpy(grads[k], sl_trainer_params(tr, &n)[0].grad, nw * sizeof(float));
		}
		sl_trainer_free(tr);
		sl_model_free(m);
	}
	if (grads[0] && grads[1]) {
		double e = rel_err(grads[1], grads[0], nw);
		printf("cpu against ref: worst relative error %.1e over all gradients\n", e);
		CHECK(e <= 1e-5, "the cpu and ref tables differ by %.3g", e);
	}
	/* Given away as the backward finishes them (the fused qkv matrix after
	 * v's rows, the tied head after the inputs): the gradients kept. */
	float *given = grads[1] ? given_grads(rs, cfg, false, nw) : NULL;
	CHECK(given && !memcmp(given, grads[1], nw * sizeof(float)), "gradients given away differ from those kept");
	free(given);
	/* Matrices stored as F16, converted as they are used (read in place,
	 * one at a time): the gradients of a trainer that converts them all. */
	sl_model *m = build(rs, cfg, "");
	to_f16(m);
	sl_trainer *tr = trainer(m, sl_train_kernels_cpu(), NULL);
	sl_loss ce = {SL_LOSS_CE, 1, 1};
	double loss;
	sl_error err = {0};
	given = given_grads(rs, cfg, true, nw);
	CHECK(tr && given && !sl_trainer_backward(tr, inputs, targets, B, &ce, NULL, 1.0f, &loss, NULL, &err) &&
	          !memcmp(given, sl_trainer_params(tr, &(int){0})[0].grad, nw * sizeof(float)),
	      "gradients given away of F16 matrices differ from those kept (%s)", err.msg);
	free(given);
	sl_trainer_free(tr);
	sl_model_free(m);
	free(grads[0]);
	free(grads[1]);
}

/* The training forward computes the inference forward's logits. */
static void test_logits(const records *rs, const cJSON *cfg)
{
	sl_model *m = build(rs, cfg, "");
	sl_trainer *tr = trainer(m, sl_train_kernels_cpu(), NULL);
	sl_state *s = NULL;
	sl_error err = {0};
	if (!tr || sl_state_new(m, T, &s, &err)) {
		CHECK(0, "logits: %s", err.msg);
		goto done;
	}
	const int V = m->cfg.vocab_size;
	float *train = malloc((size_t)B * T * V * sizeof(float)), *infer = malloc((size_t)B * T * V * sizeof(float));
	CHECK(!sl_trainer_logits(tr, inputs, B, train, &err), "training logits: %s", err.msg);
	for (int b = 0; b < B; b++) {
		sl_state_reset(s);
		CHECK(!sl_forward(s, inputs + b * T, T, infer + (size_t)b * T * V, 0, &err), "inference: %s", err.msg);
	}
	double e = rel_err(train, infer, (size_t)B * T * V);
	printf("training forward against inference forward: logits differ by %.1e (relative)\n", e);
	CHECK(e <= 1e-5, "the training forward's logits differ from the inference forward's by %.3g", e);
	free(train);
	free(infer);
done:
	sl_state_free(s);
	sl_trainer_free(tr);
	sl_model_free(m);
}

/* Five AdamW steps follow PyTorch's loss curve. */
static void test_steps(const records *rs, const cJSON *cfg)
{
	sl_model *m = build(rs, cfg, "");
	sl_trainer *tr = trainer(m, sl_train_kernels_cpu(), NULL);
	sl_adamw opt = {0};
	sl_error err = {0};
	const record *want = find(rs, "adamw.losses");
	if (!tr || !want || sl_adamw_init(&opt, sl_trainer_n_weights(tr), &err)) {
		CHECK(0, "adamw: %s", err.msg);
		goto done;
	}
	sl_adamw_opts o = {.lr = 1e-2f, .min_lr = 1e-2f, .total = 5, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
	                   .weight_decay = 0.1f};
	sl_loss ce = {SL_LOSS_CE, 1, 1};
	double worst = 0;
	for (int s = 0; s < 5; s++) {
		sl_step_info info;
		if (!TEST_EVAL(!sl_train_step(tr, &opt, &o, inputs, targets, 1, B, &ce, NULL, &info, &err), "step %d: %s",
		               s, err.msg))
			break;
		double e = fabs(info.loss - want->data[s]);
		worst = fmax(worst, e);
		CHECK(e <= 1e-3, "step %d: loss %.6f, PyTorch %.6f", s + 1, info.loss, want->data[s]);
	}
	printf("five AdamW steps: losses %.5f .. %.5f, PyTorch's within %.1e\n", want->data[0], want->data[4], worst);
done:
	sl_adamw_free(&opt);
	sl_trainer_free(tr);
	sl_model_free(m);
}

/* Healing GPT-2's matrices: int4-g32 on every block matrix, attn_qkv with
 * a rank-4 adapter (alpha 8), attn_output frozen, ffn_up pruned by the
 * reference's masks. */
typedef struct {
	const records *rs;
	unsigned char *masks[4];
	int n_masks;
} heal_ctx;

static void heal_spec(void *ctx, const sl_tensor *t, sl_heal_spec *s)
{
	heal_ctx *h = ctx;
	if (strncmp(t->name, "blk.", 4) || t->n_dims < 2)
		return;
	s->format = sl_format_find("int4-g32");
	if (ends_with(t->name, ".attn_qkv.weight")) {
		s->lora_rank = 4;
		s->lora_alpha = 8;
	}
	s->frozen = ends_with(t->name, ".attn_output.weight");
	char key[SL_NAME_MAX + 16];
	snprintf(key, sizeof key, "heal.mask.%s", t->name);
	const record *r = find(h->rs, key);
	if (r && h->n_masks < 4) {
		unsigned char *mask = malloc(r->n);
		for (size_t i = 0; i < r->n; i++)
			mask[i] = r->data[i] != 0;
		h->masks[h->n_masks++] = mask;
		s->mask = mask;
	}
}

static void test_heal(const records *rs, const cJSON *cfg)
{
	heal_ctx h = {rs, {0}, 0};
	sl_trainer_opts o = {.spec = heal_spec, .ctx = &h, .seed = 1};
	sl_model *m = build(rs, cfg, "");
	sl_trainer *tr = trainer(m, sl_train_kernels_cpu(), &o);
	if (!tr)
		goto done;
	CHECK(h.n_masks == 2, "%d masks found in the reference", h.n_masks);
	/* the adapters start where PyTorch's did */
	int n;
	const sl_param *p = sl_trainer_params(tr, &n);
	for (int i = 0; i < n; i++) {
		const char *name = p[i].t->name;
		if (!ends_with(name, ".lora_a") && !ends_with(name, ".lora_b"))
			continue;
		char key[SL_NAME_MAX + 16];
		size_t k = strlen(name);
		snprintf(key, sizeof key, "heal.lora_%c.%.*s", name[k - 1], (int)k - 7, name);
		const record *r = find(rs, key);
		REQUIRE(r && r->n == p[i].n, "reference adapter %s", key);
		memcpy(p[i].t->data, r->data, r->n * sizeof(float));
	}
	sl_loss ce = {SL_LOSS_CE, 1, 1};
	double loss;
	sl_error err = {0};
	if (TEST_EVAL(!sl_trainer_backward(tr, inputs, targets, B, &ce, NULL, 1.0f, &loss, NULL, &err), "heal: %s",
	              err.msg))
		check_grads(rs, tr, "heal", loss, "healing through int4-g32");
done:
	sl_trainer_free(tr);
	sl_model_free(m);
	for (int i = 0; i < h.n_masks; i++)
		free(h.masks[i]);
}

int main(void)
{
	records rs;
	if (!read_records("tests/data/torch-gpt2.bin", &rs)) {
		printf("tests/data/torch-gpt2.bin is missing\n");
		return 99;
	}
	const record *c = find(&rs, "config"), *ri = find(&rs, "inputs"), *rt = find(&rs, "targets");
	cJSON *cfg = c ? record_json(c) : NULL;
	if (!cfg || !ri || !rt || ri->n != B * T || rt->n != B * T) {
		printf("tests/data/torch-gpt2.bin is not what tests/gen-torch-gpt2.py writes\n");
		return 99;
	}
	for (int i = 0; i < B * T; i++) {
		inputs[i] = (int32_t)ri->data[i];
		targets[i] = (int32_t)rt->data[i];
	}
	test_grads(&rs, cfg);
	test_logits(&rs, cfg);
	test_steps(&rs, cfg);
	test_heal(&rs, cfg);
	cJSON_Delete(cfg);
	free_records(&rs);
	return test_finish();
}
