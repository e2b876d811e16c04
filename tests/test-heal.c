/* Healing against PyTorch (tests/gen-torch-heal.py wrote the reference into
 * tests/data/torch-heal.bin): the fake-quantized forward and its straight-
 * through backward for int4-g32, q4_0 and nvfp4 (every block matrix through
 * its format, scales fixed on the starting weights), the gradients of LoRA
 * adapters over a frozen int4-g32 base, and ten AdamW steps of
 * quantization-aware distillation following PyTorch's loss curve; and
 * (tests/gen-torch-lowrank.py, tests/data/torch-lowrank.bin) a model whose
 * weights are products of two factors training the factors themselves:
 * Llama with tied factored embeddings and a shared basis on KL to the
 * dense model, GPT-2 with a factored fused qkv matrix. */
#include "core/optim.h"
#include "core/train.h"
#include "test.h"
#include "torch-ref.h"

static const char *const mats[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

static bool is_block_matrix(const char *name)
{
	for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
		char want[64];
		snprintf(want, sizeof want, ".%s.weight", mats[i]);
		size_t k = strlen(name), w = strlen(want);
		if (!strncmp(name, "blk.", 4) && k > w && !strcmp(name + k - w, want))
			return true;
	}
	return false;
}

typedef struct {
	const sl_format *format;
	int lora_rank;
	float lora_alpha;
	bool freeze;
} heal_how;

static void spec_of(void *ctx, const sl_tensor *t, sl_heal_spec *s)
{
	const heal_how *h = ctx;
	if (h->freeze)
		s->frozen = true;
	if (!is_block_matrix(t->name))
		return;
	s->format = h->format;
	s->lora_rank = h->lora_rank;
	s->lora_alpha = h->lora_alpha;
}

static sl_trainer *trainer(const records *rs, const cJSON *cfg, const heal_how *how, sl_model **m)
{
	sl_trainer *tr = NULL;
	sl_error err = {0};
	*m = build(rs, cfg, "");
	sl_trainer_opts o = {.spec = spec_of, .ctx = (void *)how, .seed = 1};
	if (!*m || sl_trainer_new(*m, sl_train_kernels_cpu(), 2, 11, &o, &tr, &err))
		CHECK(0, "trainer: %s", err.msg);
	return tr;
}

/* Cross-entropy through fake quantization: loss and every gradient. */
static void test_fake_quant(const records *rs, const cJSON *cfg, const int32_t *in, const int32_t *tg)
{
	static const char *const formats[] = {"int4-g32", "q4_0", "nvfp4"};
	for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
		heal_how how = {sl_format_find(formats[f]), 0, 0, false};
		sl_model *m;
		sl_trainer *tr = trainer(rs, cfg, &how, &m);
		if (!tr) {
			sl_model_free(m);
			continue;
		}
		sl_loss loss = {SL_LOSS_CE, 1, 1};
		double got;
		sl_error err = {0};
		CHECK(!sl_trainer_backward(tr, in, tg, 2, &loss, NULL, 1.0f, &got, NULL, &err), "%s: %s", formats[f],
		      err.msg);
		char key[160];
		snprintf(key, sizeof key, "fq.%s.loss", formats[f]);
		const record *want = find(rs, key);
		CHECK(want && fabs(got - want->data[0]) <= 1e-5 * fabs(want->data[0]), "%s: loss %.9g, PyTorch %.9g",
		      formats[f], got, want ? want->data[0] : 0);
		int n;
		const sl_param *p = sl_trainer_params(tr, &n);
		double worst = 0;
		for (int i = 0; i < n; i++) {
			snprintf(key, sizeof key, "fq.%s.grad.%s", formats[f], p[i].t->name);
			const record *g = find(rs, key);
			if (!g || g->n != p[i].n) {
				CHECK(0, "%s: no reference gradient for %s", formats[f], p[i].t->name);
				continue;
			}
			double e = rel_err(p[i].grad, g->data, p[i].n);
			worst = fmax(worst, e);
			CHECK(e <= 1e-4, "%s: gradient of %s differs by %.3g of its largest", formats[f], p[i].t->name, e);
		}
		printf("fake quantization %-9s loss %.6f, %d gradients, worst relative error %.2g\n", formats[f], got, n,
		       worst);
		sl_trainer_free(tr);
		sl_model_free(m);
	}
}

/* LoRA over a frozen int4-g32 base: only the adapters learn, and their
 * gradients are PyTorch's. The adapters start where PyTorch's did. */
static void test_lora(const records *rs, const cJSON *cfg, const int32_t *in, const int32_t *tg)
{
	heal_how how = {sl_format_find("int4-g32"), 4, 8, true};
	sl_model *m;
	sl_trainer *tr = trainer(rs, cfg, &how, &m);
	if (!tr) {
		sl_model_free(m);
		return;
	}
	int n;
	const sl_param *p = sl_trainer_params(tr, &n);
	CHECK(n == 2 * 2 * 7, "only the adapters train (%d parameters)", n);
	char key[160];
	for (int i = 0; i < n; i++) {
		const char *name = p[i].t->name;
		size_t k = strlen(name);
		bool a = k > 7 && !strcmp(name + k - 7, ".lora_a");
		snprintf(key, sizeof key, "lora.%c.%.*s", a ? 'a' : 'b', (int)k - 7, name);
		const record *r = find(rs, key);
		REQUIRE(r && r->n == p[i].n, "reference adapter %s", key);
		memcpy(p[i].t->data, r->data, r->n * sizeof(float));
	}
	sl_loss loss = {SL_LOSS_CE, 1, 1};
	double got;
	sl_error err = {0};
	CHECK(!sl_trainer_backward(tr, in, tg, 2, &loss, NULL, 1.0f, &got, NULL, &err), "lora: %s", err.msg);
	const record *want = find(rs, "lora.loss");
	CHECK(want && fabs(got - want->data[0]) <= 1e-5 * fabs(want->data[0]), "lora: loss %.9g, PyTorch %.9g", got,
	      want ? want->data[0] : 0);
	double worst = 0;
	for (int i = 0; i < n; i++) {
		const char *name = p[i].t->name;
		size_t k = strlen(name);
		snprintf(key, sizeof key, "lora.grad.%c.%.*s", name[k - 1], (int)k - 7, name);
		const record *g = find(rs, key);
		REQUIRE(g && g->n == p[i].n, "reference gradient %s", key);
		double e = rel_err(p[i].grad, g->data, p[i].n);
		worst = fmax(worst, e);
		CHECK(e <= 1e-4, "lora: gradient of %s differs by %.3g", name, e);
	}
	printf("LoRA rank 4 over int4-g32: loss %.6f, worst relative error of the adapters' gradients %.2g\n", got,
	       worst);
	sl_trainer_free(tr);
	sl_model_free(m);
}

/* Quantization-aware distillation: T^2 KL at T = 2 from the unquantized
 * model, ten AdamW steps, the same loss at every step as PyTorch's. */
static void test_qad(const records *rs, const cJSON *cfg, const int32_t *in, const int32_t *tg)
{
	heal_how how = {sl_format_find("int4-g32"), 0, 0, false};
	sl_model *m, *teacher = build(rs, cfg, "");
	sl_trainer *tr = trainer(rs, cfg, &how, &m);
	sl_adamw opt = {0};
	sl_error err = {0};
	if (!tr || !teacher || sl_adamw_init(&opt, sl_trainer_n_weights(tr), &err)) {
		CHECK(0, "qad: %s", err.msg);
		goto done;
	}
	sl_adamw_opts o = {.lr = 2e-3f, .min_lr = 2e-3f, .total = 10, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
	                   .weight_decay = 0.01f};
	sl_loss loss = {SL_LOSS_KL_FORWARD, 2, 0};
	const record *want = find(rs, "qad.losses");
	REQUIRE(want && want->n == 10, "reference losses");
	double worst = 0, first = 0, last = 0;
	for (int s = 0; s < 10; s++) {
		sl_step_info info;
		if (sl_train_step(tr, &opt, &o, in, tg, 1, 2, &loss, teacher, &info, &err)) {
			CHECK(0, "qad step %d: %s", s, err.msg);
			break;
		}
		double e = fabs(info.loss - want->data[s]);
		worst = fmax(worst, e);
		first = s ? first : info.loss;
		last = info.loss;
		CHECK(e <= 1e-3, "qad step %d: loss %.6f, PyTorch %.6f", s + 1, info.loss, want->data[s]);
	}
	printf("QAD, ten AdamW steps: losses %.5f .. %.5f, PyTorch %.5f .. %.5f, largest difference %.2g\n",
	       first, last, want->data[0], want->data[9], worst);
done:
	sl_adamw_free(&opt);
	sl_trainer_free(tr);
	sl_model_free(m);
	sl_model_free(teacher);
}

/* The model of case tag with its factored weights made the products of
 * their factors (tensors of the model; a weight with no B of its own
 * shares block 0's). */
static sl_model *factored(const records *rs, const cJSON *cfg, const char *tag)
{
	char prefix[32], key[SL_NAME_MAX + 32];
	snprintf(prefix, sizeof prefix, "%s.", tag);
	sl_model *m = build(rs, cfg, prefix);
	sl_error err = {0};
	size_t pl = strlen(prefix);
	for (int i = 0; m && i < rs->n; i++) {
		const record *r = &rs->r[i];
		bool weight = !strncmp(r->name + pl, "blk.", 4) || !strncmp(r->name + pl, "token_embd.", 11);
		if (strncmp(r->name, prefix, pl) || !weight ||
		    !(ends_with(r->name, "." SL_LR_A) || ends_with(r->name, "." SL_LR_B)))
			continue;
		float *d = malloc(r->n * sizeof(float));
		memcpy(d, r->data, r->n * sizeof(float));
		if (!sl_model_add_tensor(m, r->name + pl, SL_DT_F32, r->ne, r->n_dims, d, true, &err)) {
			CHECK(0, "add %s: %s", r->name, err.msg);
			free(d);
		}
	}
	for (int i = 0; m && i < m->n_tensors; i++) {
		sl_tensor *a = m->tensors[i];
		if (!ends_with(a->name, "." SL_LR_A))
			continue;
		char stem[SL_NAME_MAX];
		snprintf(stem, sizeof stem, "%.*s", (int)(strlen(a->name) - strlen("." SL_LR_A)), a->name);
		snprintf(key, sizeof key, "%s.weight", stem);
		sl_tensor *w = sl_model_tensor(m, key);
		snprintf(key, sizeof key, "%s." SL_LR_B, stem);
		sl_tensor *b = sl_model_tensor(m, key);
		if (!b && !strncmp(stem, "blk.", 4) && strchr(stem + 4, '.')) {
			snprintf(key, sizeof key, "blk.0%s." SL_LR_B, strchr(stem + 4, '.'));
			b = sl_model_tensor(m, key);
		}
		if (!TEST_EVAL(w && b && b->ne[1] == a->ne[0], "the factors of %s", stem)) {
			sl_model_free(m);
			return NULL;
		}
		sl_tensor_set_factors(w, a, b, false);
		CHECK(sl_model_adopt_factors(m, w, &err) == SL_OK, "%s", err.msg);
	}
	return m;
}

/* A factored model trains its factors: the loss and the gradient of every
 * tensor that trains (factors, a shared basis, norms, biases) are
 * PyTorch's, and no factored weight trains as a dense matrix. */
static void test_factored(const char *tag, sl_loss loss)
{
	records rs;
	if (!read_records("tests/data/torch-lowrank.bin", &rs)) {
		CHECK(0, "tests/data/torch-lowrank.bin cannot be read");
		return;
	}
	char key[SL_NAME_MAX + 32];
	snprintf(key, sizeof key, "%s.config", tag);
	const record *c = find(&rs, key);
	cJSON *cfg = c ? record_json(c) : NULL;
	snprintf(key, sizeof key, "%s.inputs", tag);
	const record *ri = find(&rs, key);
	snprintf(key, sizeof key, "%s.targets", tag);
	const record *rt = find(&rs, key);
	REQUIRE(cfg && ri && rt && ri->n == 22 && rt->n == 22, "%s: the reference case", tag);
	int32_t in[22], tg[22];
	for (int i = 0; i < 22; i++) {
		in[i] = (int32_t)ri->data[i];
		tg[i] = (int32_t)rt->data[i];
	}
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%s.", tag);
	sl_model *m = factored(&rs, cfg, tag), *teacher = build(&rs, cfg, prefix);
	sl_trainer *tr = NULL;
	sl_error err = {0};
	REQUIRE(m && teacher && sl_model_factored(m), "%s: the models", tag);
	REQUIRE(sl_trainer_new(m, sl_train_kernels_cpu(), 2, 11, NULL, &tr, &err) == SL_OK, "%s: %s", tag, err.msg);
	double got;
	CHECK(!sl_trainer_backward(tr, in, tg, 2, &loss, teacher, 1.0f, &got, NULL, &err), "%s: %s", tag, err.msg);
	snprintf(key, sizeof key, "%s.loss", tag);
	const record *want = find(&rs, key);
	CHECK(want && fabs(got - want->data[0]) <= 1e-5 * fabs(want->data[0]), "%s: loss %.9g, PyTorch %.9g", tag, got,
	      want ? want->data[0] : 0);
	int n, n_ref = 0, n_factors = 0;
	const sl_param *p = sl_trainer_params(tr, &n);
	snprintf(prefix, sizeof prefix, "%s.grad.", tag);
	for (int i = 0; i < rs.n; i++)
		n_ref += !strncmp(rs.r[i].name, prefix, strlen(prefix));
	CHECK(n == n_ref, "%s: %d tensors train, PyTorch's %d", tag, n, n_ref);
	double worst = 0;
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "%s.grad.%s", tag, p[i].t->name);
		const record *g = find(&rs, key);
		CHECK(!p[i].t->lr_a, "%s: %s trains as a dense matrix", tag, p[i].t->name);
		if (!g || g->n != p[i].n) {
			CHECK(0, "%s: no reference gradient for %s", tag, p[i].t->name);
			continue;
		}
		n_factors += p[i].t->factor;
		double e = rel_err(p[i].grad, g->data, p[i].n);
		worst = fmax(worst, e);
		CHECK(e <= 1e-4, "%s: gradient of %s differs by %.3g of its largest", tag, p[i].t->name, e);
	}
	printf("factored %-5s loss %.6f (PyTorch %.6f), %d gradients (%d of factors), worst relative error %.2g\n", tag,
	       got, want ? want->data[0] : 0, n, n_factors, worst);
	sl_trainer_free(tr);
	sl_model_free(m);
	sl_model_free(teacher);
	cJSON_Delete(cfg);
	free_records(&rs);
}

int main(void)
{
	FILE *f = fopen(test_srcpath("tests/data/torch-heal.bin"), "rb");
	if (!f) {
		printf("tests/data/torch-heal.bin is missing\n");
		return 99;
	}
	records rs = {0};
	record r;
	while (read_record(f, &r)) {
		rs.r = realloc(rs.r, (size_t)(rs.n + 1) * sizeof *rs.r);
		rs.r[rs.n++] = r;
	}
	fclose(f);
	const record *c = find(&rs, "config"), *ri = find(&rs, "inputs"), *rt = find(&rs, "targets");
	cJSON *cfg = c ? record_json(c) : NULL;
	if (!cfg || !ri || !rt || ri->n != 22 || rt->n != 22) {
		printf("tests/data/torch-heal.bin is not what tests/gen-torch-heal.py writes\n");
		return 99;
	}
	int32_t in[22], tg[22];
	for (int i = 0; i < 22; i++) {
		in[i] = (int32_t)ri->data[i];
		tg[i] = (int32_t)rt->data[i];
	}
	test_fake_quant(&rs, cfg, in, tg);
	test_lora(&rs, cfg, in, tg);
	test_qad(&rs, cfg, in, tg);
	test_factored("llama", (sl_loss){SL_LOSS_KL_FORWARD, 2, 0.2f});
	test_factored("gpt2", (sl_loss){SL_LOSS_CE, 1, 1});
	cJSON_Delete(cfg);
	for (int i = 0; i < rs.n; i++)
		free(rs.r[i].data);
	free(rs.r);
	return test_finish();
}
