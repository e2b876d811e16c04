/* Training as a whole: the learning-rate schedule; gradient accumulation
 * equal to a larger batch; bitwise-equal steps on one thread and on two; a
 * run stopped and resumed equal, byte for byte, to one that was not; the
 * loss falling on real text; the tokenizer trainer's vocabularies
 * round-tripping text through slimlab's tokenizer; models written as GGUF
 * and read back; training from a GPT-2; and clear errors for hostile configurations and
 * checkpoints. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>

#include "core/checkpoint.h"
#include "core/eval.h"
#include "core/export.h"
#include "core/fileio.h"
#include "core/tok-train.h"
#include "core/tokenizer.h"
#include "core/train-run.h"
#include "test.h"

static sl_model *small_model(uint64_t seed, bool tied, int vocab)
{
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = 32, .hidden_dim = 48, .n_layers = 2, .n_heads = 4,
	               .n_kv_heads = 2, .vocab_size = vocab, .max_seq_len = 64, .rope_style = SL_ROPE_NORM};
	sl_model *m = NULL;
	sl_error err;
	if (sl_model_init_random(&c, tied, 0.1f, seed, &m, &err))
		printf("random model: %s\n", err.msg);
	return m;
}

static void fill_tokens(int32_t *x, size_t n, int V, uint32_t salt)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (int32_t)((i * 2654435761u + salt) % (uint32_t)V);
}

static const sl_adamw_opts opts = {.lr = 3e-3f, .min_lr = 3e-4f, .warmup = 2, .total = 10, .beta1 = 0.9f,
                                   .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .clip = 0.5f};

static void test_schedule(void)
{
	CHECK_NEAR(sl_lr_at(&opts, 0), 1.5e-3, 1e-9, "first warm-up step");
	CHECK_NEAR(sl_lr_at(&opts, 1), 3e-3, 1e-9, "end of warm-up");
	CHECK_NEAR(sl_lr_at(&opts, 6), 1.65e-3, 1e-7, "half way down the cosine");
	CHECK_NEAR(sl_lr_at(&opts, 10), 3e-4, 1e-9, "end of the cosine");
	sl_adamw_opts bad = opts;
	bad.beta2 = 1.0f;
	sl_error err;
	CHECK(sl_adamw_check(&bad, &err) && strstr(err.msg, "beta2"), "beta2 = 1 accepted: %s", err.msg);
}

/* Weights after `steps` updates of a fresh small model. */
static float *train_weights(int threads, int accum, int batch, int steps, size_t *n)
{
	sl_kernels_set_threads(threads);
	sl_model *m = small_model(3, false, 67);
	sl_trainer *tr;
	sl_adamw opt;
	sl_error err;
	if (!m || sl_trainer_new(m, sl_train_kernels_cpu(), batch, 24, NULL, &tr, &err) ||
	    sl_adamw_init(&opt, sl_trainer_n_weights(tr), &err))
		return NULL;
	size_t nt = (size_t)accum * batch * 24;
	int32_t *in = malloc(nt * 4), *tg = malloc(nt * 4);
	sl_loss loss = {SL_LOSS_CE, 1, 0};
	for (int s = 0; s < steps; s++) {
		fill_tokens(in, nt, 67, 11u * s);
		fill_tokens(tg, nt, 67, 7u * s + 1);
		sl_step_info info;
		CHECK(!sl_train_step(tr, &opt, &opts, in, tg, accum, batch, &loss, NULL, &info, &err), "step: %s", err.msg);
	}
	*n = sl_trainer_n_weights(tr);
	float *w = malloc(*n * sizeof(float));
	int np;
	const sl_param *p = sl_trainer_params(tr, &np);
	for (int i = 0; i < np; i++)
		memcpy(w + p[i].offset, p[i].t->data, p[i].n * sizeof(float));
	free(in);
	free(tg);
	sl_adamw_free(&opt);
	sl_trainer_free(tr);
	sl_model_free(m);
	sl_kernels_set_threads(0);
	return w;
}

static void test_determinism(void)
{
	size_t n1, n2, n3, n4;
	float *a = train_weights(2, 1, 4, 3, &n1), *b = train_weights(1, 1, 4, 3, &n2);
	REQUIRE(a && b && n1 == n2, "training failed");
	CHECK(!memcmp(a, b, n1 * sizeof(float)), "three steps on two threads and on one differ");
	/* two micro-batches of 2 make the same gradient as one batch of 4 */
	float *c = train_weights(2, 2, 2, 1, &n3), *d = train_weights(2, 1, 4, 1, &n4);
	double worst = 0;
	for (size_t i = 0; i < n3; i++)
		worst = fmax(worst, fabs((double)c[i] - d[i]));
	CHECK(worst < 1e-6, "accumulated micro-batches differ from one batch by %g", worst);
	free(a), free(b), free(c), free(d);
}

/* ---- the job ----------------------------------------------------------- */

static char dir[512], text_path[600], val_path[600];

static void write_file(const char *path, const char *data, size_t len)
{
	sl_error err;
	CHECK(!sl_write_file_atomic(path, data, len, &err), "%s", err.msg);
}

/* A small text from the shipped training text, and a validation text. */
static bool make_texts(void)
{
	char *t;
	size_t len;
	sl_error err;
	if (sl_read_file(test_srcpath("data/calib.txt"), 1 << 30, &t, &len, &err)) {
		printf("data/calib.txt: %s\n", err.msg);
		return false;
	}
	snprintf(dir, sizeof dir, "%s", test_tmpdir());
	snprintf(text_path, sizeof text_path, "%s/train.txt", dir);
	snprintf(val_path, sizeof val_path, "%s/val.txt", dir);
	write_file(text_path, t, len < 24000 ? len : 24000);
	write_file(val_path, t + 24000, 4000);
	free(t);
	return true;
}

static const char *config_fmt =
	"{\"seed\": 7, \"model\": {\"dim\": 32, \"hidden_dim\": 64, \"layers\": 2, \"heads\": 4, \"kv_heads\": 2,"
	" \"context\": 32}, \"tokenizer\": {\"vocab_size\": 320},"
	" \"data\": {\"train\": \"train.txt\", \"val\": \"val.txt\"},"
	" \"train\": {\"steps\": %d, \"batch\": 4, \"seq_len\": 32, \"accum\": 2, \"lr\": 0.01, \"warmup\": 2},"
	" \"eval\": {\"every\": 4, \"chunks\": 2},"
	" \"checkpoint\": {\"path\": \"%s.ckpt\", \"every\": 5},"
	" \"output\": {\"path\": \"%s.gguf\", \"type\": \"f32\", \"log\": \"%s.tsv\", \"name\": \"test\"}}";

static sl_status load_config(const char *name, int steps, sl_train_config *c, sl_error *err)
{
	char json[2048], path[700];
	snprintf(json, sizeof json, config_fmt, steps, name, name, name);
	snprintf(path, sizeof path, "%s/%s.json", dir, name);
	write_file(path, json, strlen(json));
	return sl_train_config_load(path, c, err);
}

typedef struct {
	atomic_int cancel;
	int64_t stop_at;
	double first_loss, last_loss, val_ppl;
	int evals, checkpoints;
} watch;

static void on_report(void *ctx, const sl_train_report *r)
{
	watch *w = ctx;
	if (r->event == SL_TRAIN_STEP) {
		if (r->step == 1)
			w->first_loss = r->loss;
		w->last_loss = r->loss;
		if (r->step == w->stop_at)
			atomic_store(&w->cancel, 1);
	}
	w->evals += r->event == SL_TRAIN_EVAL;
	w->checkpoints += r->event == SL_TRAIN_CHECKPOINT;
	if (r->event == SL_TRAIN_EVAL)
		w->val_ppl = r->val_ppl;
}

/* Runs c, cancelled once step stop_at is done (-1: never). */
static sl_status run_config(const sl_train_config *c, bool resume, int64_t stop_at, watch *w, sl_error *err)
{
	w->stop_at = stop_at;
	atomic_store(&w->cancel, 0);
	sl_progress p = {.cancel = &w->cancel};
	sl_train_run_opts o = {.resume = resume, .on_report = on_report, .ctx = w, .progress = &p};
	return sl_train_run(c, &o, err);
}

static sl_status run_job(const char *name, int steps, bool resume, int64_t stop_at, watch *w, sl_error *err)
{
	sl_train_config c;
	sl_status st = load_config(name, steps, &c, err);
	return st ? st : run_config(&c, resume, stop_at, w, err);
}

static bool same_file(const char *a, const char *b)
{
	char *x, *y;
	size_t nx, ny;
	sl_error err;
	if (sl_read_file(a, 1 << 30, &x, &nx, &err) || sl_read_file(b, 1 << 30, &y, &ny, &err))
		return false;
	bool same = nx == ny && !memcmp(x, y, nx);
	free(x);
	free(y);
	return same;
}

static void test_job(void)
{
	watch w = {0};
	sl_error err = {0};
	char a[700], b[700];
	/* straight through */
	REQUIRE(!run_job("straight", 12, false, -1, &w, &err), "run: %s", err.msg);
	printf("job: loss %.3f -> %.3f over 12 steps, validation perplexity %.1f\n", w.first_loss, w.last_loss,
	       w.val_ppl);
	CHECK(w.last_loss < w.first_loss - 1.0, "the loss did not fall: %.3f -> %.3f", w.first_loss, w.last_loss);
	CHECK(w.evals == 3 && w.checkpoints == 3, "%d evaluations and %d checkpoints", w.evals, w.checkpoints);
	/* a fresh run never overwrites a checkpoint */
	sl_status st = run_job("straight", 12, false, -1, &w, &err);
	CHECK(st == SL_ERR_ARG && strstr(err.msg, "--resume"), "a fresh run over a checkpoint: %s", err.msg);
	/* stopped after 7 steps (a checkpoint is written), then resumed */
	st = run_job("resumed", 12, false, 7, &w, &err);
	CHECK(st == SL_ERR_CANCELLED && strstr(err.msg, "resume"), "cancel: %s", err.msg);
	REQUIRE(!run_job("resumed", 12, true, -1, &w, &err), "resume: %s", err.msg);
	snprintf(a, sizeof a, "%s/straight.gguf", dir);
	snprintf(b, sizeof b, "%s/resumed.gguf", dir);
	CHECK(same_file(a, b), "12 steps and 7 + resume + 5 steps give different models");
	snprintf(a, sizeof a, "%s/straight.tsv", dir);
	snprintf(b, sizeof b, "%s/resumed.tsv", dir);
	CHECK(same_file(a, b), "the loss tables differ");

	/* the model it wrote opens, has the trained vocabulary and the
	 * perplexity the run measured */
	snprintf(a, sizeof a, "%s/straight.gguf", dir);
	sl_model *m = NULL;
	REQUIRE(!sl_model_load(a, NULL, &m, &err), "load: %s", err.msg);
	CHECK(m->cfg.vocab_size == 320 && sl_tok_n_vocab(m->tok) == 320, "vocabulary of %d", m->cfg.vocab_size);
	char *val;
	size_t vlen;
	sl_eval_result r;
	sl_eval_opts eo = {.n_ctx = 32};
	REQUIRE(!sl_read_file(val_path, 1 << 20, &val, &vlen, &err), "%s", err.msg);
	CHECK(!sl_eval_text(m, NULL, val, vlen, &eo, &r, &err), "eval: %s", err.msg);
	CHECK(fabs(r.ppl - w.val_ppl) < 1e-3 * w.val_ppl, "perplexity %g after loading, %g in the run", r.ppl,
	      w.val_ppl);
	free(val);
	sl_model_free(m);

	/* distilling the trained model into a copy of itself starts at zero */
	static const char *distill =
		"{\"model\": {\"init\": \"straight.gguf\"}, \"data\": {\"train\": \"train.txt\"},"
		" \"train\": {\"steps\": 2, \"batch\": 2, \"warmup\": 0},"
		" \"loss\": {\"kind\": \"kl_reverse\", \"temperature\": 2, \"teacher\": \"straight.gguf\"},"
		" \"output\": {\"path\": \"distilled.gguf\"}}";
	snprintf(a, sizeof a, "%s/distill.json", dir);
	write_file(a, distill, strlen(distill));
	sl_train_config dc;
	REQUIRE(!sl_train_config_load(a, &dc, &err), "%s", err.msg);
	sl_progress dp = {.cancel = &w.cancel};
	w.stop_at = -1;
	sl_train_run_opts dopt = {.on_report = on_report, .ctx = &w, .progress = &dp};
	CHECK(!sl_train_run(&dc, &dopt, &err), "distill: %s", err.msg);
	CHECK(w.first_loss >= 0 && w.first_loss < 1e-6, "KL of a model to itself: %g", w.first_loss);

	/* resuming with another learning rate is refused, naming it */
	char path[700], json[2048];
	snprintf(json, sizeof json, config_fmt, 12, "resumed", "resumed", "resumed");
	char *lr = strstr(json, "0.01");
	memcpy(lr, "0.02", 4);
	snprintf(path, sizeof path, "%s/resumed2.json", dir);
	write_file(path, json, strlen(json));
	sl_train_config c;
	REQUIRE(!sl_train_config_load(path, &c, &err), "%s", err.msg);
	sl_train_run_opts o = {.resume = true};
	st = sl_train_run(&c, &o, &err);
	CHECK(st && strstr(err.msg, "train.lr"), "a changed lr on resume: %s", err.msg);
}

/* Damages a copy of a checkpoint and checks the resume fails with a message. */
static void test_hostile_checkpoints(void)
{
	char ck[700], path[700];
	snprintf(ck, sizeof ck, "%s/straight.ckpt", dir);
	char *data;
	size_t len;
	sl_error err;
	REQUIRE(!sl_read_file(ck, 1 << 30, &data, &len, &err), "%s", err.msg);
	struct {
		const char *what;
		size_t at;  /* where to damage; SIZE_MAX = truncate to half */
		const char *from, *to;
	} cases[] = {
		{"truncated", SIZE_MAX, NULL, NULL},
		{"missing moment", 0, "adam.v.blk.1.ffn_up.weight", "adam.v.blk.1.ffn_up.weighT"},
		{"no version", 0, "slimlab.train.version", "slimlab.train.versioN"},
		{"bad step array", 0, "slimlab.train.loss", "slimlab.train.lose"},
	};
	snprintf(path, sizeof path, "%s/hostile.json", dir);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *d = malloc(len);
		memcpy(d, data, len);
		size_t n = len;
		if (cases[i].at == SIZE_MAX) {
			n = len / 2;
		} else {
			char *p = memmem(d, len, cases[i].from, strlen(cases[i].from));
			REQUIRE(p, "%s not in the checkpoint", cases[i].from);
			memcpy(p, cases[i].to, strlen(cases[i].to));
		}
		char hp[700];
		snprintf(hp, sizeof hp, "%s/hostile.ckpt", dir);
		write_file(hp, d, n);
		free(d);
		sl_train_config c;
		sl_status st = load_config("hostile", 12, &c, &err);
		REQUIRE(!st, "%s", err.msg);
		sl_train_run_opts o = {.resume = true};
		err.msg[0] = 0;
		st = sl_train_run(&c, &o, &err);
		printf("hostile checkpoint (%s): %s\n", cases[i].what, err.msg);
		CHECK(st != SL_OK && strstr(err.msg, "hostile.ckpt"), "%s: %s", cases[i].what, err.msg);
	}
	free(data);
}

static void test_hostile_configs(void)
{
	static const struct {
		const char *json, *expect;
	} cases[] = {
		{"{", "not valid JSON"},
		{"[]", "must be an object"},
		{"{\"model\": {\"dim\": 32}}", "model.hidden_dim"},
		{"{\"modle\": {}}", "unknown key \"modle\""},
		{"{\"model\": {\"init\": \"x.gguf\", \"dim\": 3}}", "model.init"},
		{"{\"model\": {\"dim\": \"big\", \"hidden_dim\": 1, \"layers\": 1, \"heads\": 1, \"context\": 8}}",
		 "model.dim"},
		{"{\"model\": {\"dim\": 30, \"hidden_dim\": 8, \"layers\": 1, \"heads\": 4, \"context\": 8}}", "heads"},
		{"{\"model\": {\"init\": \"x.gguf\"}, \"data\": {\"train\": \"t\"}, \"train\": {\"steps\": 0}}",
		 "train.steps"},
		{"{\"model\": {\"init\": \"x.gguf\"}, \"data\": {\"train\": \"t\"}, \"train\": {\"steps\": 5, \"warmup\": 9}}",
		 "train.warmup"},
		{"{\"model\": {\"init\": \"x.gguf\"}, \"data\": {\"train\": \"t\"}, \"train\": {\"steps\": 5},"
		 " \"loss\": {\"kind\": \"kl_forward\"}, \"output\": {\"path\": \"o\"}}",
		 "loss.teacher"},
		{"{\"model\": {\"init\": \"x.gguf\"}, \"data\": {\"train\": \"t\"}, \"train\": {\"steps\": 5}}", "output.path"},
		{"{\"model\": {\"init\": \"x.gguf\"}, \"data\": {\"train\": \"t\"}, \"train\": {\"steps\": 5},"
		 " \"output\": {\"path\": \"o\", \"type\": \"q4\"}}",
		 "output.type"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sl_train_config c;
		sl_error err = {0};
		sl_status st = sl_train_config_parse(cases[i].json, strlen(cases[i].json), "cfg.json", ".", &c, &err);
		CHECK(st != SL_OK && strstr(err.msg, cases[i].expect) && strstr(err.msg, "cfg.json"),
		      "config %zu: wanted an error about %s, got: %s", i, cases[i].expect, err.msg);
	}
}

static void test_tokenizer_trainer(void)
{
	/* characters seen once (and a stray byte) fall back to <0xNN>; the
	 * rest round-trips through pieces */
	const char *text = "the cat sat on the mat.\nna\xc3\xafve caf\xc3\xa9\n\n"
	                   "the cat sat on the mat.\nna\xc3\xafve caf\xc3\xa9\n\n\xf0\x9f\x90\x88\xff";
	sl_vocab v;
	sl_error err;
	sl_tok_train_opts o = {300, NULL};
	REQUIRE(!sl_tok_train(text, strlen(text), &o, &v, &err), "%s", err.msg);
	CHECK(v.n <= 300 && v.n > 259, "%d pieces", v.n);
	CHECK(!strcmp(v.pieces[1], "<s>") && v.types[3] == SL_TOKEN_BYTE && !strcmp(v.pieces[3 + 0x41], "<0x41>"),
	      "special and byte tokens");
	char path[700];
	snprintf(path, sizeof path, "%s/vocab.gguf", dir);
	REQUIRE(!sl_vocab_write(&v, path, &err), "%s", err.msg);
	sl_vocab_free(&v);
	sl_tokenizer *t;
	REQUIRE(!sl_tok_load_file(path, &t, &err), "%s", err.msg);
	int32_t *ids;
	size_t n;
	REQUIRE(!sl_tok_encode(t, text, strlen(text), true, &ids, &n, &err), "%s", err.msg);
	char out[512];
	size_t len = 0;
	int bytes = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l;
		const char *s = sl_tok_decode(t, i ? ids[i - 1] : -1, ids[i], &l);
		bytes += sl_tok_type(t, ids[i]) == SL_TOKEN_BYTE;
		if (len + l < sizeof out) {
			memcpy(out + len, s, l);
			len += l;
		}
	}
	CHECK(len == strlen(text) && !memcmp(out, text, len), "the text does not round-trip: '%.*s'", (int)len, out);
	CHECK(bytes == 5, "%d byte tokens (the cat emoji's 4 and the stray byte expected)", bytes);
	CHECK(n < strlen(text) / 2, "%zu tokens for %zu bytes: the merges did not take", n, strlen(text));
	free(ids);
	sl_tok_free(t);
}

/* Models of each family the exporter writes: Llama (tied head,
 * interleaved rotary), Qwen2 (untied, NeoX rotary, heads wider than the
 * embedding split) and GPT-2. */
static sl_model *family_model(int family, int V)
{
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = 32, .hidden_dim = 48, .n_layers = 2, .n_heads = 4,
	               .n_kv_heads = 2, .vocab_size = V, .max_seq_len = 64, .rope_style = SL_ROPE_NORM};
	if (family == 1) {
		snprintf(c.arch_name, sizeof c.arch_name, "qwen2");
		c.rope_style = SL_ROPE_NEOX;
		c.head_dim = 16;
	} else if (family == 2) {
		c.arch = SL_ARCH_GPT2;
		c.n_kv_heads = 4;
	}
	sl_model *m = NULL;
	sl_error err;
	if (sl_model_init_random(&c, family != 1, 0.1f, 5 + family, &m, &err))
		printf("random model: %s\n", err.msg);
	return m;
}

static void test_export(void)
{
	/* the vocabulary test_tokenizer_trainer wrote goes along */
	sl_error err;
	char path[700];
	snprintf(path, sizeof path, "%s/vocab.gguf", dir);
	sl_tokenizer *tok;
	REQUIRE(!sl_tok_load_file(path, &tok, &err), "%s", err.msg);
	const int V = sl_tok_n_vocab(tok);
	int32_t toks[20];
	fill_tokens(toks, 20, V, 3);
	float *want = malloc(20 * (size_t)V * sizeof(float)), *got = malloc(20 * (size_t)V * sizeof(float));
	snprintf(path, sizeof path, "%s/export.gguf", dir);
	for (int family = 0; family < 3; family++) {
		sl_model *m = family_model(family, V);
		if (!TEST_EVAL(m, "family %d", family))
			continue;
		m->tok = sl_tok_ref(tok);
		sl_state *s;
		REQUIRE(!sl_state_new(m, 20, &s, &err) && !sl_forward(s, toks, 20, want, 0, &err), "%s", err.msg);
		sl_state_free(s);
		for (int type = SL_DT_F32; type <= SL_DT_F16; type++) {
			REQUIRE(!sl_model_save_gguf(m, "test", type, path, &err), "save: %s", err.msg);
			sl_model *b = NULL;
			REQUIRE(!sl_model_load(path, NULL, &b, &err), "load: %s", err.msg);
			const char *arch = m->cfg.arch_name;
			CHECK(!strcmp(b->cfg.arch_name, arch) && b->cfg.dim == 32 && b->cfg.n_kv_heads == m->cfg.n_kv_heads &&
			      b->cfg.head_dim == m->cfg.head_dim && b->cfg.hidden_dim == 48 &&
			      (b->output == b->tok_embd) == (m->output == m->tok_embd),
			      "%s: shape lost on the way", arch);
			CHECK(b->tok_embd->type == type && b->layers[1].attn_norm->type == SL_DT_F32, "%s: tensor types", arch);
			REQUIRE(!sl_state_new(b, 20, &s, &err) && !sl_forward(s, toks, 20, got, 0, &err), "%s", err.msg);
			double e = 0;
			for (int i = 0; i < 20 * V; i++)
				e = fmax(e, fabs((double)got[i] - want[i]));
			CHECK(sl_tok_n_vocab(b->tok) == V && !strcmp(sl_tok_piece(b->tok, V - 1), sl_tok_piece(tok, V - 1)),
			      "%s: the vocabulary did not survive", arch);
			CHECK(e <= (type == SL_DT_F32 ? 0 : 2e-2), "%s: %s logits differ by %g after save and load", arch,
			      sl_dtype_name(type), e);
			sl_state_free(s);
			sl_model_free(b);
		}
		sl_model_free(m);
	}
	free(want);
	free(got);
	sl_tok_free(tok);
}

/* slimlab train from a GPT-2 model (model.init): the loss falls, a run
 * stopped and resumed from its checkpoint ends with the same model, byte
 * for byte, as one that was not, and the model written is a GPT-2. */
static void test_gpt2_init(void)
{
	sl_error err = {0};
	char path[700], a[700], b[700];
	snprintf(path, sizeof path, "%s/vocab.gguf", dir);
	sl_tokenizer *tok;
	REQUIRE(!sl_tok_load_file(path, &tok, &err), "%s", err.msg);
	sl_model *m = family_model(2, sl_tok_n_vocab(tok));
	REQUIRE(m, "a GPT-2 model");
	m->tok = tok;
	snprintf(path, sizeof path, "%s/gpt2-init.gguf", dir);
	REQUIRE(!sl_model_save_gguf(m, "gpt2 init", SL_DT_F32, path, &err), "save: %s", err.msg);
	sl_model_free(m);
	static const char *fmt =
		"{\"seed\": 3, \"model\": {\"init\": \"gpt2-init.gguf\"}, \"data\": {\"train\": \"train.txt\"},"
		" \"train\": {\"steps\": 10, \"batch\": 2, \"seq_len\": 32, \"lr\": 0.01, \"warmup\": 1},"
		" \"checkpoint\": {\"path\": \"%s.ckpt\", \"every\": 4}, \"output\": {\"path\": \"%s.gguf\", \"name\": \"gpt2\"}}";
	static const char *const names[2] = {"gpt2-straight", "gpt2-resumed"};
	watch w = {0};
	for (int i = 0; i < 2; i++) {
		char json[1024];
		snprintf(json, sizeof json, fmt, names[i], names[i]);
		snprintf(path, sizeof path, "%s/%s.json", dir, names[i]);
		write_file(path, json, strlen(json));
		sl_train_config c;
		REQUIRE(!sl_train_config_load(path, &c, &err), "%s", err.msg);
		if (i == 0) {
			REQUIRE(!run_config(&c, false, -1, &w, &err), "GPT-2 run: %s", err.msg);
			printf("GPT-2 from model.init: loss %.3f -> %.3f over 10 steps\n", w.first_loss, w.last_loss);
			CHECK(w.last_loss < w.first_loss - 0.5, "the loss did not fall: %.3f -> %.3f", w.first_loss,
			      w.last_loss);
		} else {
			sl_status st = run_config(&c, false, 6, &w, &err);
			CHECK(st == SL_ERR_CANCELLED, "cancel: %s", err.msg);
			REQUIRE(!run_config(&c, true, -1, &w, &err), "GPT-2 resume: %s", err.msg);
		}
	}
	snprintf(a, sizeof a, "%s/%s.gguf", dir, names[0]);
	snprintf(b, sizeof b, "%s/%s.gguf", dir, names[1]);
	CHECK(same_file(a, b), "GPT-2: 10 steps and 6 + resume + 4 steps give different models");
	sl_model *out = NULL;
	REQUIRE(!sl_model_load(a, NULL, &out, &err), "load: %s", err.msg);
	CHECK(out->cfg.arch == SL_ARCH_GPT2 && out->pos_embd && out->output == out->tok_embd,
	      "the trained model is not a tied GPT-2");
	sl_model_free(out);
}

int main(void)
{
	test_schedule();
	test_determinism();
	test_hostile_configs();
	if (make_texts()) {
		test_tokenizer_trainer();
		test_export();
		test_gpt2_init();
		test_job();
		test_hostile_checkpoints();
	}
	return test_finish();
}
