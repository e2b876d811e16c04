/* The training backward against PyTorch: for small Llama-family models
 * (grouped- and multi-query attention, both rotary layouts, partial
 * rotation, q/k/v biases, tied and untied heads) the loss and the gradient
 * of every parameter under cross-entropy, forward KL and reverse KL to a
 * teacher, computed by both kernel tables. tests/gen-torch-grads.py wrote
 * the weights and PyTorch's float64 gradients into tests/data/torch-grads.bin.
 * Also: the two tables agree with each other, gradients given away as
 * the backward finishes them (what the sweep's Fisher proxy uses) are
 * those kept, each given once, and the training forward agrees with the
 * inference forward. */
#include "core/eval.h"
#include "core/forward.h"
#include "core/train.h"
#include "test.h"
#include "torch-ref.h"

static sl_loss_kind kind_of(const char *s)
{
	return !strcmp(s, "ce") ? SL_LOSS_CE : !strcmp(s, "kl_forward") ? SL_LOSS_KL_FORWARD : SL_LOSS_KL_REVERSE;
}

/* Gradients of every parameter for each loss, flat in trainer order:
 * kept by the trainer, or given away (give). */
static float *run_table(const sl_train_kernels *K, const records *rs, const cJSON *cfg, sl_model *teacher,
                        const int32_t *inputs, const int32_t *targets, int B, int T, bool give, size_t *n_weights)
{
	const char *name = cJSON_GetObjectItem(cfg, "name")->valuestring;
	const cJSON *losses = cJSON_GetObjectItem(cfg, "losses");
	sl_model *m = build(rs, cfg, "");
	sl_trainer *tr = NULL;
	sl_error err = {0};
	float *all = NULL;
	grad_taker tk = {0};
	sl_trainer_opts o = {.grad_fn = take_grad, .ctx = &tk};
	if (!m || sl_trainer_new(m, K, B, T, give ? &o : NULL, &tr, &err)) {
		CHECK(0, "%s: trainer: %s", name, err.msg);
		goto done;
	}
	size_t nw = sl_trainer_n_weights(tr);
	*n_weights = nw;
	all = malloc((size_t)cJSON_GetArraySize(losses) * nw * sizeof(float));
	int np;
	const sl_param *p = sl_trainer_params(tr, &np);
	tk = (grad_taker){.tr = tr, .flat = malloc(nw * sizeof(float)), .given = calloc((size_t)np, sizeof(int))};
	int li = 0;
	const cJSON *l;
	cJSON_ArrayForEach(l, losses)
	{
		const char *kind = cJSON_GetArrayItem(l, 0)->valuestring;
		sl_loss loss = {kind_of(kind), (float)cJSON_GetArrayItem(l, 1)->valuedouble,
		                (float)cJSON_GetArrayItem(l, 2)->valuedouble};
		sl_trainer_zero_grad(tr);
		double got;
		long scored;
		memset(tk.given, 0, (size_t)np * sizeof *tk.given);
		if (sl_trainer_backward(tr, inputs, targets, B, &loss, teacher, 1.0f, &got, &scored, &err)) {
			CHECK(0, "%s %s: %s", name, kind, err.msg);
			continue;
		}
		char key[SL_NAME_MAX + 32];
		snprintf(key, sizeof key, "loss.%s", kind);
		const record *want = find(rs, key);
		if (!TEST_EVAL(want, "%s: no %s in the reference", name, key))
			continue;
		double le = fabs(got - want->data[0]) / fabs(want->data[0]);
		CHECK(le <= 1e-5, "%s/%s %s: loss %.9g vs PyTorch %.9g", name, K->name, kind, got, want->data[0]);
		const float *grad = give ? tk.flat : p[0].grad;
		double worst = 0;
		const char *worst_name = "";
		for (int i = 0; i < np; i++) {
			snprintf(key, sizeof key, "grad.%s.%s", kind, p[i].t->name);
			const record *g = find(rs, key);
			if (!TEST_EVAL(g && g->n == p[i].n, "%s: reference %s missing or misshapen", name, key))
				continue;
			CHECK(!give || tk.given[i] == 1, "%s: the gradient of %s given %d times", name, p[i].t->name,
			      tk.given[i]);
			double e = rel_err(grad + p[i].offset, g->data, p[i].n);
			CHECK(e <= 1e-4, "%s/%s %s: gradient of %s differs from PyTorch by %.3g (relative)", name,
			      K->name, kind, p[i].t->name, e);
			if (e > worst) {
				worst = e;
				worst_name = p[i].t->name;
			}
		}
		int n_ref = 0;
		snprintf(key, sizeof key, "grad.%s.", kind);
		for (int i = 0; i < rs->n; i++)
			n_ref += !strncmp(rs->r[i].name, key, strlen(key));
		CHECK(n_ref == np, "%s: %d parameters trained, %d gradients in the reference", name, np, n_ref);
		printf("%-16s %-4s %-10s loss %.7f (rel err %.1e), %d gradients%s, worst rel err %.1e (%s)\n", name,
		       K->name, kind, got, le, np, give ? " given away" : "", worst, worst_name);
		memcpy(all + (size_t)li * nw, grad, nw * sizeof(float));
		li++;
	}
	CHECK(!tk.strays, "%s: %d gradients given for tensors that do not train", name, tk.strays);
done:
	free(tk.flat);
	free(tk.given);
	sl_trainer_free(tr);
	sl_model_free(m);
	return all;
}

/* Cross-entropy of the same batch through the inference forward. */
static double inference_ce(const records *rs, const cJSON *cfg, const int32_t *inputs, const int32_t *targets,
                           int B, int T)
{
	sl_model *m = build(rs, cfg, "");
	sl_state *s;
	sl_error err;
	if (!m || sl_state_new(m, T, &s, &err))
		return NAN;
	int V = m->cfg.vocab_size;
	float *logits = malloc((size_t)T * V * sizeof(float));
	double sum = 0;
	long n = 0;
	for (int b = 0; b < B; b++) {
		sl_state_reset(s);
		if (sl_forward(s, inputs + b * T, T, logits, 0, &err))
			return NAN;
		for (int t = 0; t < T; t++)
			if (targets[b * T + t] >= 0) {
				sum -= sl_log_prob(logits + (size_t)t * V, V, targets[b * T + t]);
				n++;
			}
	}
	free(logits);
	sl_state_free(s);
	sl_model_free(m);
	return sum / n;
}

static void check_case(const records *rs, const cJSON *cfg)
{
	const char *name = cJSON_GetObjectItem(cfg, "name")->valuestring;
	const record *ri = find(rs, "inputs"), *rt = find(rs, "targets");
	REQUIRE(ri && rt, "%s: inputs or targets missing", name);
	int B = (int)ri->ne[1], T = (int)ri->ne[0];
	int32_t *inputs = malloc(ri->n * sizeof(int32_t)), *targets = malloc(rt->n * sizeof(int32_t));
	for (size_t i = 0; i < ri->n; i++) {
		inputs[i] = (int32_t)ri->data[i];
		targets[i] = (int32_t)rt->data[i];
	}
	sl_model *teacher = build(rs, cJSON_GetObjectItem(cfg, "teacher"), "teacher.");
	size_t nw = 0, nw2 = 0, nw3 = 0;
	float *g_ref = run_table(sl_train_kernels_ref(), rs, cfg, teacher, inputs, targets, B, T, false, &nw);
	float *g_cpu = run_table(sl_train_kernels_cpu(), rs, cfg, teacher, inputs, targets, B, T, false, &nw2);
	float *g_give = run_table(sl_train_kernels_cpu(), rs, cfg, teacher, inputs, targets, B, T, true, &nw3);
	size_t n = nw * (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(cfg, "losses"));
	if (g_ref && g_cpu && nw == nw2) {
		double e = rel_err(g_cpu, g_ref, n);
		printf("%-16s cpu vs ref: worst rel err %.1e over all gradients\n", name, e);
		CHECK(e <= 1e-5, "%s: the cpu and ref tables differ by %.3g", name, e);
	}
	/* the same arithmetic, only where each gradient lives differs */
	CHECK(g_cpu && g_give && nw3 == nw2 && !memcmp(g_cpu, g_give, n * sizeof(float)),
	      "%s: gradients given away differ from those kept", name);
	double ce = inference_ce(rs, cfg, inputs, targets, B, T);
	const record *want = find(rs, "loss.ce");
	CHECK(want && fabs(ce - want->data[0]) <= 1e-5 * fabs(want->data[0]),
	      "%s: inference cross-entropy %.9g vs training %.9g", name, ce, want ? want->data[0] : 0.0);
	free(g_ref);
	free(g_cpu);
	free(g_give);
	free(inputs);
	free(targets);
	sl_model_free(teacher);
}

int main(void)
{
	FILE *f = fopen(test_srcpath("tests/data/torch-grads.bin"), "rb");
	if (!f) {
		printf("tests/data/torch-grads.bin is missing\n");
		return 99;
	}
	records rs = {0};
	cJSON *cfg = NULL;
	int cases = 0;
	record r;
	for (bool more = read_record(f, &r);; more = read_record(f, &r)) {
		if (!more || !strcmp(r.name, "config")) {
			if (cfg) {
				check_case(&rs, cfg);
				cases++;
			}
			for (int i = 0; i < rs.n; i++)
				free(rs.r[i].data);
			rs.n = 0;
			cJSON_Delete(cfg);
			cfg = NULL;
			if (!more)
				break;
			cfg = record_json(&r);
			free(r.data);
			continue;
		}
		rs.r = realloc(rs.r, (size_t)(rs.n + 1) * sizeof *rs.r);
		rs.r[rs.n++] = r;
	}
	free(rs.r);
	fclose(f);
	CHECK(cases == 2, "read %d reference cases", cases);
	return test_finish();
}
