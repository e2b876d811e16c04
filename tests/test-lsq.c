/* Learned step sizes (LSQ) against PyTorch (tests/gen-torch-gpt2.py wrote
 * the reference into tests/data/torch-gpt2.bin): on every block matrix of
 * a small GPT-2, the loss and the steps' gradients for int4-g32 and q4_0
 * (every gradient), q8_0 and int4-g32-asym, and five AdamW steps on
 * PyTorch's loss curve. After training, sl_trainer_finish leaves weights
 * that the format's own quantizer packs into exactly themselves, with the
 * scales the trainer reports: for those formats, int2-g32, and with an
 * adapter, a frozen matrix and a pruned one. Formats whose scales cannot
 * be learned are refused by name; a float fallback learns none. */
#include "core/optim.h"
#include "core/train.h"
#include "test.h"
#include "torch-ref.h"

enum { B = 2, T = 11 };

static int32_t inputs[B * T], targets[B * T];
static const records *rs;
static const cJSON *cfg;

typedef struct {
	const sl_format *format;
	bool learn;
	bool extras;              /* an adapter on attn_qkv, attn_output frozen, ffn_up pruned */
	unsigned char *masks[2];
	int n_masks;
} how;

static void spec_of(void *ctx, const sl_tensor *t, sl_heal_spec *s)
{
	how *h = ctx;
	if (strncmp(t->name, "blk.", 4) || t->n_dims < 2)
		return;
	s->format = h->format;
	s->learn_scales = h->learn;
	if (!h->extras)
		return;
	if (ends_with(t->name, ".attn_qkv.weight")) {
		s->lora_rank = 4;
		s->lora_alpha = 8;
	}
	s->frozen = ends_with(t->name, ".attn_output.weight");
	if (ends_with(t->name, ".ffn_up.weight") && h->n_masks < 2) {
		size_t n = (size_t)sl_tensor_nelements(t);
		unsigned char *mask = malloc(n);
		for (size_t i = 0; i < n; i++)
			mask[i] = i % 5 == 2;
		s->mask = h->masks[h->n_masks++] = mask;
	}
}

static sl_trainer *trainer(how *h, sl_model **m, sl_error *err)
{
	sl_trainer *tr = NULL;
	sl_trainer_opts o = {.spec = spec_of, .ctx = h, .seed = 1};
	*m = build(rs, cfg, "");
	if (*m && sl_trainer_new(*m, sl_train_kernels_cpu(), B, T, &o, &tr, err))
		tr = NULL;
	return tr;
}

static void done(sl_trainer *tr, sl_model *m, how *h)
{
	sl_trainer_free(tr);
	sl_model_free(m);
	for (int i = 0; i < h->n_masks; i++)
		free(h->masks[i]);
	h->n_masks = 0;
}

/* The loss and the gradients PyTorch has for this case ("lsq.<key>."):
 * the steps' always, every parameter's when all is set. */
static void test_grads(const char *format, const char *key, bool all)
{
	how h = {sl_format_find(format), true, false, {0}, 0};
	sl_model *m;
	sl_error err = {0};
	sl_trainer *tr = trainer(&h, &m, &err);
	sl_loss ce = {SL_LOSS_CE, 1, 1};
	double loss;
	if (!TEST_EVAL(tr && !sl_trainer_backward(tr, inputs, targets, B, &ce, NULL, 1.0f, &loss, NULL, &err), "%s: %s",
	               format, err.msg))
		goto out;
	char name[SL_NAME_MAX + 64];
	snprintf(name, sizeof name, "lsq.%s.loss", key);
	const record *want = find(rs, name);
	CHECK(want && fabs(loss - want->data[0]) <= 1e-5 * fabs(want->data[0]), "%s: loss %.9g, PyTorch %.9g", format,
	      loss, want ? want->data[0] : 0);
	int n, n_steps = 0, n_checked = 0;
	const sl_param *p = sl_trainer_params(tr, &n);
	double worst_steps = 0, worst = 0;
	for (int i = 0; i < n; i++) {
		bool step = ends_with(p[i].t->name, ".scale");
		n_steps += step;
		CHECK(!step || !p[i].decay, "%s: the steps of %s decay", format, p[i].t->name);
		if (!step && !all)
			continue;
		snprintf(name, sizeof name, "lsq.%s.grad.%s", key, p[i].t->name);
		const record *g = find(rs, name);
		if (!TEST_EVAL(g && g->n == p[i].n, "%s: no reference gradient for %s", format, p[i].t->name))
			continue;
		double e = rel_err(p[i].grad, g->data, p[i].n);
		if (step)
			worst_steps = fmax(worst_steps, e);
		else
			worst = fmax(worst, e);
		n_checked++;
		CHECK(e <= 1e-4, "%s: gradient of %s differs from PyTorch by %.3g (relative)", format, p[i].t->name, e);
	}
	CHECK(n_steps == 8, "%s: %d matrices learn their steps, not 8", format, n_steps);
	printf("%-14s loss %.7f, %2d gradients checked; worst relative error: steps %.1e", format, loss, n_checked,
	       worst_steps);
	if (all)
		printf(", the rest %.1e", worst);
	printf("\n");
out:
	done(tr, m, &h);
}

/* Five AdamW steps; the losses against want (may be NULL). */
static bool train(sl_trainer *tr, const record *want, const char *what)
{
	sl_adamw opt = {0};
	sl_error err = {0};
	if (!TEST_EVAL(!sl_adamw_init(&opt, sl_trainer_n_weights(tr), &err), "%s", err.msg))
		return false;
	sl_adamw_opts o = {.lr = 1e-2f, .min_lr = 1e-2f, .total = 5, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
	                   .weight_decay = 0.1f};
	sl_loss ce = {SL_LOSS_CE, 1, 1};
	double worst = 0, first = 0, last = 0;
	bool ok = true;
	for (int s = 0; s < 5 && ok; s++) {
		sl_step_info info;
		ok = TEST_EVAL(!sl_train_step(tr, &opt, &o, inputs, targets, 1, B, &ce, NULL, &info, &err), "%s step %d: %s",
		               what, s, err.msg);
		first = s ? first : info.loss;
		last = info.loss;
		if (ok && want) {
			/* At this learning rate later steps move weights across rounding
			 * boundaries; which ones cross depends on the last bits of the
			 * arithmetic (the portable path's sums are ordered otherwise
			 * than the SIMD path's and PyTorch's), and each crossing moves
			 * the loss by a step: 1e-3 for three steps, 1e-2 after. */
			double tol = s < 3 ? 1e-3 : 1e-2;
			worst = fmax(worst, fabs(info.loss - want->data[s]));
			CHECK(fabs(info.loss - want->data[s]) <= tol, "%s step %d: loss %.6f, PyTorch %.6f", what, s + 1,
			      info.loss, want->data[s]);
		}
	}
	if (ok && want)
		printf("%-14s five AdamW steps: losses %.5f .. %.5f, PyTorch's within %.1e\n", what, first, last, worst);
	sl_adamw_free(&opt);
	return ok;
}

/* After finish, every block matrix packs into exactly its F32 values and
 * the packed scales are the trainer's steps. */
static void check_packs(sl_trainer *tr, const sl_model *m, const sl_format *f, const char *what)
{
	int n;
	const sl_param *p = sl_trainer_params(tr, &n);
	int packed = 0, total = 0;
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		if (strncmp(t->name, "blk.", 4) || t->n_dims < 2)
			continue;
		const int rows = (int)t->ne[1], cols = (int)t->ne[0];
		const int type = sl_format_fallback(f, cols)->dtype;
		const sl_type_info *ti = sl_type_info_get(type);
		const size_t rb = sl_dtype_row_bytes(type, cols), n_el = (size_t)rows * cols;
		unsigned char *buf = malloc(rb * rows);
		float *back = malloc(n_el * sizeof(float));
		sl_dtype_rows_from_float(type, t->data, buf, rows, cols);
		sl_dtype_rows_to_float(type, buf, back, rows, cols);
		packed += !memcmp(back, t->data, n_el * sizeof(float));
		CHECK(!memcmp(back, t->data, n_el * sizeof(float)), "%s: %s does not pack into itself", what, t->name);
		char name[SL_NAME_MAX + 8];
		snprintf(name, sizeof name, "%s.scale", t->name);
		const sl_param *s = NULL;
		for (int k = 0; k < n; k++)
			s = !strcmp(p[k].t->name, name) ? &p[k] : s;
		if (!TEST_EVAL(s && s->n == n_el / (size_t)ti->block_size, "%s: no steps for %s", what, t->name))
			goto next;
		const size_t per_row = (size_t)(cols / ti->block_size);
		bool same = true;
		for (size_t b = 0; b < s->n; b++) {
			sl_grid g;
			ti->grids(buf + b / per_row * rb + b % per_row * ti->block_bytes, &g, 1);
			same &= g.d == ((const float *)s->t->data)[b];
			total++;
		}
		CHECK(same, "%s: the steps of %s are not the packed scales", what, t->name);
	next:
		free(buf);
		free(back);
	}
	CHECK(packed == 8, "%s: %d of 8 matrices pack into themselves", what, packed);
	printf("%-14s after finish: %d matrices pack into their F32 values exactly, %d steps are the packed scales\n",
	       what, packed, total);
}

/* Trains, finishes and checks the packs; want: PyTorch's losses or NULL. */
static void test_finish_packs(const char *format, bool extras, const record *want, const char *what)
{
	how h = {sl_format_find(format), true, extras, {0}, 0};
	sl_model *m;
	sl_error err = {0};
	sl_trainer *tr = trainer(&h, &m, &err);
	float *frozen0 = NULL, *frozen = NULL, *steps0 = NULL;
	size_t nf = 0, ns = 0;
	if (!TEST_EVAL(tr, "%s: %s", what, err.msg))
		goto out;
	/* where the format's quantizer put the steps */
	int n;
	const sl_param *p = sl_trainer_params(tr, &n);
	steps0 = malloc(sl_trainer_n_weights(tr) * sizeof(float));
	for (int i = 0; i < n; i++)
		if (ends_with(p[i].t->name, ".scale"))
			for (size_t k = 0; k < p[i].n; k++)
				steps0[ns++] = ((const float *)p[i].t->data)[k];
	if (extras) {
		const sl_tensor *t = m->layers[0].wo;
		nf = (size_t)sl_tensor_nelements(t);
		frozen = t->data;
		frozen0 = malloc(nf * sizeof(float));
		memcpy(frozen0, frozen, nf * sizeof(float));
	}
	if (!train(tr, want, what))
		goto out;
	/* A frozen matrix's own weights did not move, only its steps */
	if (frozen)
		CHECK(!memcmp(frozen, frozen0, nf * sizeof(float)), "%s: a frozen matrix trained", what);
	CHECK(!sl_trainer_finish(tr, &err), "%s: finish: %s", what, err.msg);
	check_packs(tr, m, h.format, what);
	size_t moved = 0, j = 0;
	for (int i = 0; i < n; i++)
		if (ends_with(p[i].t->name, ".scale"))
			for (size_t k = 0; k < p[i].n; k++)
				moved += ((const float *)p[i].t->data)[k] != steps0[j++];
	CHECK(moved > ns / 2, "%s: %zu of %zu steps moved in training", what, moved, ns);
	for (int i = 0; i < h.n_masks; i++) {
		const float *w = m->layers[i].w_up->data;
		for (size_t k = 0; k < (size_t)sl_tensor_nelements(m->layers[i].w_up); k++)
			if (h.masks[i][k] && w[k] != 0) {
				CHECK(0, "%s: a pruned weight is %g after finish", what, w[k]);
				break;
			}
	}
out:
	free(frozen0);
	free(steps0);
	done(tr, m, &h);
}

static void test_refusals(void)
{
	static const char *const refused[] = {"nvfp4", "fp8-e4m3", "int8"};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		how h = {sl_format_find(refused[i]), true, false, {0}, 0};
		sl_model *m;
		sl_error err = {0};
		sl_trainer *tr = trainer(&h, &m, &err);
		CHECK(!tr && err.status == SL_ERR_UNSUPPORTED && strstr(err.msg, "blk.0.") &&
		          strstr(err.msg, "cannot be learned"),
		      "learned scales in %s: %s", refused[i], tr ? "accepted" : err.msg);
		if (i == 0)
			printf("refused: %s\n", err.msg);
		done(tr, m, &h);
	}
	/* nor a k-quant's sub-blocks, whose scales one super-block fixes
	 * together (the model's rows are too short to hold one) */
	const char *why = NULL;
	sl_qgrid *g = sl_qgrid_new(sl_format_find("q4_k")->dtype, 2, 256, &why);
	CHECK(g && !sl_qgrid_scales_learnable(g), "q4_k: %s", g ? "learnable" : why);
	sl_qgrid_free(g);
	/* a float fallback has no steps to learn */
	how h = {sl_format_find("f16"), true, false, {0}, 0};
	sl_model *m;
	sl_error err = {0};
	sl_trainer *tr = trainer(&h, &m, &err);
	int n = 0;
	if (TEST_EVAL(tr, "f16: %s", err.msg)) {
		sl_trainer_params(tr, &n);
		CHECK(n == 28, "f16 with learned scales: %d parameters, not the model's 28", n);
	}
	done(tr, m, &h);
}

int main(void)
{
	records all;
	if (!read_records("tests/data/torch-gpt2.bin", &all)) {
		printf("tests/data/torch-gpt2.bin is missing\n");
		return 99;
	}
	rs = &all;
	const record *c = find(rs, "config"), *ri = find(rs, "inputs"), *rt = find(rs, "targets");
	cJSON *cj = c ? record_json(c) : NULL;
	if (!cj || !ri || !rt || ri->n != B * T || rt->n != B * T) {
		printf("tests/data/torch-gpt2.bin is not what tests/gen-torch-gpt2.py writes\n");
		return 99;
	}
	cfg = cj;
	for (int i = 0; i < B * T; i++) {
		inputs[i] = (int32_t)ri->data[i];
		targets[i] = (int32_t)rt->data[i];
	}
	/* int4-g32 is Q4_0 value for value: one reference serves both */
	test_grads("int4-g32", "int4", true);
	test_grads("q4_0", "int4", true);
	test_grads("q8_0", "q8_0", false);
	test_grads("int4-g32-asym", "asym", false);
	const record *losses = find(rs, "lsq.int4.losses");
	if (!losses || losses->n != 5) {
		printf("tests/data/torch-gpt2.bin has no LSQ losses\n");
		return 99;
	}
	test_finish_packs("int4-g32", false, losses, "int4-g32");
	test_finish_packs("q4_0", false, losses, "q4_0");
	test_finish_packs("q8_0", false, NULL, "q8_0");
	test_finish_packs("int4-g32-asym", false, NULL, "int4-g32-asym");
	test_finish_packs("int2-g32", false, NULL, "int2-g32");
	test_finish_packs("int4-g32", true, NULL, "int4-g32+extras");
	test_refusals();
	cJSON_Delete(cj);
	free_records(&all);
	return test_finish();
}
