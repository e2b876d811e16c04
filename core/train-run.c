/* The training job: configuration, data, the loop with its evaluations
 * and checkpoints, and the final model. */
#include "train-run.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "eval.h"
#include "export.h"
#include "fileio.h"
#include "tok-train.h"
#include "tokenizer.h"
#include "vocab.h"

/* ---- configuration ----------------------------------------------------- */

typedef struct {
	const char *file;
	sl_error *err;
	sl_status st;
} jctx;

/* Fails (once) when obj has a key outside keys. */
static void only_keys(jctx *j, const cJSON *obj, const char *where, const char *const *keys)
{
	const cJSON *it;
	if (j->st)
		return;
	if (!cJSON_IsObject(obj)) {
		j->st = sl_errorf(j->err, SL_ERR_FORMAT, "%s: %s must be an object", j->file, where);
		return;
	}
	cJSON_ArrayForEach(it, obj)
	{
		const char *const *k = keys;
		while (*k && strcmp(*k, it->string))
			k++;
		if (!*k) {
			j->st = sl_errorf(j->err, SL_ERR_FORMAT, "%s: unknown key \"%s\" in %s", j->file, it->string, where);
			return;
		}
	}
}

/* A number at key (def when absent) that must lie in [lo, hi]. */
static double num(jctx *j, const cJSON *obj, const char *where, const char *key, double def, double lo, double hi,
                  bool integer)
{
	const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
	if (j->st || !v)
		return def;
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
	    (integer && v->valuedouble != floor(v->valuedouble))) {
		j->st = sl_errorf(j->err, SL_ERR_FORMAT, "%s: %s.%s must be %s from %g to %g", j->file, where, key,
		                  integer ? "a whole number" : "a number", lo, hi);
		return def;
	}
	return v->valuedouble;
}

/* A string at key into out; a path is resolved against base_dir. */
static void str(jctx *j, const cJSON *obj, const char *where, const char *key, char *out, size_t n,
                const char *base_dir)
{
	const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
	if (j->st || !v)
		return;
	if (!cJSON_IsString(v) || !*v->valuestring) {
		j->st = sl_errorf(j->err, SL_ERR_FORMAT, "%s: %s.%s must be a non-empty string", j->file, where, key);
		return;
	}
	bool ok = base_dir && v->valuestring[0] != '/' ? sl_path_join(out, n, base_dir, v->valuestring)
	                                               : (size_t)snprintf(out, n, "%s", v->valuestring) < n;
	if (!ok)
		j->st = sl_errorf(j->err, SL_ERR_FORMAT, "%s: %s.%s is too long", j->file, where, key);
}

static const cJSON *section(jctx *j, const cJSON *root, const char *name, const char *const *keys)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, name);
	if (s)
		only_keys(j, s, name, keys);
	return s;
}

sl_status sl_train_config_parse(const char *json, size_t len, const char *name, const char *base_dir,
                                sl_train_config *c, sl_error *err)
{
	memset(c, 0, sizeof *c);
	const char *file = name;
	cJSON *root = cJSON_ParseWithLength(json, len);
	if (!root)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: not valid JSON (near byte %ld)", file,
		                 cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - json) : 0L);
	jctx j = {file, err, SL_OK};
	static const char *const top[] = {"seed", "model", "tokenizer", "data", "train", "loss", "eval",
	                                  "checkpoint", "output", "threads", NULL};
	static const char *const k_model[] = {"init", "dim", "hidden_dim", "layers", "heads", "kv_heads", "context",
	                                      "tied", "rope_theta", "norm_eps", "init_std", NULL};
	static const char *const k_tok[] = {"file", "vocab_size", NULL};
	static const char *const k_data[] = {"train", "val", NULL};
	static const char *const k_train[] = {"steps", "batch", "seq_len", "accum", "lr", "min_lr", "warmup",
	                                      "weight_decay", "beta1", "beta2", "eps", "clip", NULL};
	static const char *const k_loss[] = {"kind", "temperature", "ce_weight", "teacher", NULL};
	static const char *const k_eval[] = {"every", "chunks", NULL};
	static const char *const k_ckpt[] = {"path", "every", NULL};
	static const char *const k_out[] = {"path", "type", "log", "name", NULL};
	only_keys(&j, root, "the configuration", top);
	const cJSON *model = section(&j, root, "model", k_model), *tok = section(&j, root, "tokenizer", k_tok),
	            *data = section(&j, root, "data", k_data), *train = section(&j, root, "train", k_train),
	            *loss = section(&j, root, "loss", k_loss), *ev = section(&j, root, "eval", k_eval),
	            *ck = section(&j, root, "checkpoint", k_ckpt), *out = section(&j, root, "output", k_out);
	c->seed = (uint64_t)num(&j, root, "the configuration", "seed", 1, 0, 9007199254740991.0, true);
	c->threads = (int)num(&j, root, "the configuration", "threads", 0, 0, 256, true);
	if (!j.st && !model)
		j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: a \"model\" section is required", file);
	str(&j, model, "model", "init", c->init, sizeof c->init, base_dir);
	sl_config *s = &c->shape;
	if (!j.st && c->init[0]) {
		if (cJSON_GetArraySize(model) > 1 || tok)
			j.st = sl_errorf(err, SL_ERR_FORMAT,
			                 "%s: model.init brings its own shape and vocabulary; give no other model keys and no tokenizer section",
			                 file);
	} else if (!j.st) {
		static const char *const req[] = {"dim", "hidden_dim", "layers", "heads", "context"};
		for (size_t i = 0; !j.st && i < sizeof req / sizeof req[0]; i++)
			if (!cJSON_GetObjectItemCaseSensitive(model, req[i]))
				j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: model.%s is required for a new model", file, req[i]);
		s->arch = SL_ARCH_LLAMA;
		snprintf(s->arch_name, sizeof s->arch_name, "llama");
		s->rope_style = SL_ROPE_NORM;
		s->dim = (int)num(&j, model, "model", "dim", 0, 8, 65536, true);
		s->hidden_dim = (int)num(&j, model, "model", "hidden_dim", 0, 1, 262144, true);
		s->n_layers = (int)num(&j, model, "model", "layers", 0, 1, 256, true);
		s->n_heads = (int)num(&j, model, "model", "heads", 0, 1, 1024, true);
		s->n_kv_heads = (int)num(&j, model, "model", "kv_heads", s->n_heads, 1, 1024, true);
		s->max_seq_len = (int)num(&j, model, "model", "context", 0, 2, 1 << 20, true);
		s->rope_theta = (float)num(&j, model, "model", "rope_theta", 10000, 1, 1e9, false);
		s->norm_eps = (float)num(&j, model, "model", "norm_eps", 1e-5, 1e-12, 1e-1, false);
		c->init_std = (float)num(&j, model, "model", "init_std", 0.02, 1e-6, 1, false);
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(model, "tied");
		if (t && !cJSON_IsBool(t) && !j.st)
			j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: model.tied must be true or false", file);
		c->tied = !t || cJSON_IsTrue(t);
		if (!j.st && (s->dim % s->n_heads || (s->dim / s->n_heads) % 2 || s->n_heads % s->n_kv_heads))
			j.st = sl_errorf(err, SL_ERR_FORMAT,
			                 "%s: model.dim %d must split into %d heads of an even size, and heads into kv_heads %d",
			                 file, s->dim, s->n_heads, s->n_kv_heads);
		str(&j, tok, "tokenizer", "file", c->tokenizer, sizeof c->tokenizer, base_dir);
		c->vocab_size = (int)num(&j, tok, "tokenizer", "vocab_size", 0, 260, 1 << 20, true);
		if (!j.st && !c->tokenizer[0] == !c->vocab_size)
			j.st = sl_errorf(err, SL_ERR_FORMAT,
			                 "%s: a new model needs tokenizer.file (a vocabulary) or tokenizer.vocab_size (train one), not both",
			                 file);
	}
	if (!j.st && !(data && cJSON_GetObjectItemCaseSensitive(data, "train")))
		j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: data.train (the training text) is required", file);
	str(&j, data, "data", "train", c->train_text, sizeof c->train_text, base_dir);
	str(&j, data, "data", "val", c->val_text, sizeof c->val_text, base_dir);

	if (!j.st && !(train && cJSON_GetObjectItemCaseSensitive(train, "steps")))
		j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: train.steps is required", file);
	sl_adamw_opts *o = &c->opt;
	o->total = (int64_t)num(&j, train, "train", "steps", 1, 1, 1e9, true);
	c->batch = (int)num(&j, train, "train", "batch", 8, 1, 65536, true);
	/* 0: the context of the model model.init names, at most 256 */
	c->seq_len = (int)num(&j, train, "train", "seq_len", s->max_seq_len, 2, 1 << 20, true);
	c->accum = (int)num(&j, train, "train", "accum", 1, 1, 65536, true);
	o->lr = (float)num(&j, train, "train", "lr", 1e-3, 1e-9, 10, false);
	o->min_lr = (float)num(&j, train, "train", "min_lr", o->lr / 10, 0, o->lr, false);
	o->warmup = (int64_t)num(&j, train, "train", "warmup", (double)(o->total / 10 < 100 ? o->total / 10 : 100), 0,
	                         (double)o->total, true);
	o->weight_decay = (float)num(&j, train, "train", "weight_decay", 0.1, 0, 10, false);
	o->beta1 = (float)num(&j, train, "train", "beta1", 0.9, 0, 0.999999, false);
	o->beta2 = (float)num(&j, train, "train", "beta2", 0.95, 0, 0.999999, false);
	o->eps = (float)num(&j, train, "train", "eps", 1e-8, 1e-20, 1, false);
	o->clip = (float)num(&j, train, "train", "clip", 1.0, 0, 1e9, false);
	if (!j.st && s->max_seq_len && c->seq_len > s->max_seq_len)
		j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: train.seq_len %d exceeds model.context %d", file, c->seq_len,
		                 s->max_seq_len);
	if (!j.st && (long)c->batch * c->seq_len > (1L << 24))
		j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: train.batch x train.seq_len is too large", file);

	c->loss.kind = SL_LOSS_CE;
	c->loss.temperature = 1;
	const cJSON *kind = loss ? cJSON_GetObjectItemCaseSensitive(loss, "kind") : NULL;
	if (!j.st && kind) {
		const char *k = cJSON_IsString(kind) ? kind->valuestring : "";
		if (!strcmp(k, "kl_forward"))
			c->loss.kind = SL_LOSS_KL_FORWARD;
		else if (!strcmp(k, "kl_reverse"))
			c->loss.kind = SL_LOSS_KL_REVERSE;
		else if (strcmp(k, "ce"))
			j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: loss.kind must be \"ce\", \"kl_forward\" or \"kl_reverse\"",
			                 file);
	}
	c->loss.temperature = (float)num(&j, loss, "loss", "temperature", 1, 0.01, 100, false);
	c->loss.ce_weight = (float)num(&j, loss, "loss", "ce_weight", 0, 0, 1, false);
	str(&j, loss, "loss", "teacher", c->teacher, sizeof c->teacher, base_dir);
	if (!j.st && (c->loss.kind != SL_LOSS_CE) != (c->teacher[0] != 0))
		j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: loss.teacher is needed by the KL losses and only by them", file);

	c->eval_every = (int)num(&j, ev, "eval", "every", 0, 0, 1e9, true);
	c->eval_chunks = (int)num(&j, ev, "eval", "chunks", 8, 1, 1e9, true);
	str(&j, ck, "checkpoint", "path", c->checkpoint, sizeof c->checkpoint, base_dir);
	c->checkpoint_every = (int)num(&j, ck, "checkpoint", "every", 0, 0, 1e9, true);
	if (!j.st && !(out && cJSON_GetObjectItemCaseSensitive(out, "path")))
		j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: output.path (where the model goes) is required", file);
	str(&j, out, "output", "path", c->output, sizeof c->output, base_dir);
	str(&j, out, "output", "log", c->log, sizeof c->log, base_dir);
	str(&j, out, "output", "name", c->name, sizeof c->name, NULL);
	char type[8] = "f16";
	str(&j, out, "output", "type", type, sizeof type, NULL);
	c->out_type = !strcmp(type, "f32") ? SL_DT_F32 : SL_DT_F16;
	if (!j.st && strcmp(type, "f16") && strcmp(type, "f32"))
		j.st = sl_errorf(err, SL_ERR_FORMAT, "%s: output.type must be \"f16\" or \"f32\"", file);
	if (!j.st && !c->name[0]) {
		const char *b = strrchr(c->output, '/');
		snprintf(c->name, sizeof c->name, "%.*s", (int)sizeof c->name - 1, b ? b + 1 : c->output);
	}
	if (!j.st)
		j.st = sl_adamw_check(o, err) ? sl_error_prefix(err, "%s: train: ", file) : SL_OK;
	cJSON_Delete(root);
	return j.st;
}

sl_status sl_train_config_load(const char *path, sl_train_config *c, sl_error *err)
{
	char *json;
	size_t len;
	sl_status st = sl_read_file(path, 1 << 20, &json, &len, err);
	if (st)
		return st;
	char dir[SL_PATH_MAX];
	sl_path_dir(path, dir, sizeof dir);
	st = sl_train_config_parse(json, len, path, dir, c, err);
	free(json);
	if (st == SL_OK)
		snprintf(c->path, sizeof c->path, "%s", path);
	return st;
}

/* The settings a resumed run must share with the run that wrote the
 * checkpoint, as flat JSON. */
static char *identity(const sl_train_config *c, int seq_len)
{
	cJSON *o = cJSON_CreateObject();
	char seed[32];
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
	cJSON_AddStringToObject(o, "seed", seed);
	cJSON_AddNumberToObject(o, "train.steps", (double)c->opt.total);
	cJSON_AddNumberToObject(o, "train.batch", c->batch);
	cJSON_AddNumberToObject(o, "train.seq_len", seq_len);
	cJSON_AddNumberToObject(o, "train.accum", c->accum);
	cJSON_AddNumberToObject(o, "train.lr", c->opt.lr);
	cJSON_AddNumberToObject(o, "train.min_lr", c->opt.min_lr);
	cJSON_AddNumberToObject(o, "train.warmup", (double)c->opt.warmup);
	cJSON_AddNumberToObject(o, "train.weight_decay", c->opt.weight_decay);
	cJSON_AddNumberToObject(o, "train.beta1", c->opt.beta1);
	cJSON_AddNumberToObject(o, "train.beta2", c->opt.beta2);
	cJSON_AddNumberToObject(o, "train.eps", c->opt.eps);
	cJSON_AddNumberToObject(o, "train.clip", c->opt.clip);
	cJSON_AddNumberToObject(o, "loss.kind", c->loss.kind);
	cJSON_AddNumberToObject(o, "loss.temperature", c->loss.temperature);
	cJSON_AddNumberToObject(o, "loss.ce_weight", c->loss.ce_weight);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* Names the first setting where two identities differ. */
static sl_status same_identity(const char *ckpt, const char *saved, const char *now, sl_error *err)
{
	cJSON *a = cJSON_Parse(saved), *b = cJSON_Parse(now);
	sl_status st = SL_OK;
	if (!a || !b) {
		st = sl_errorf(err, SL_ERR_FORMAT, "%s: slimlab.train.identity is not valid JSON", ckpt);
		goto done;
	}
	const cJSON *x;
	cJSON_ArrayForEach(x, b)
	{
		const cJSON *y = cJSON_GetObjectItemCaseSensitive(a, x->string);
		if (!y || !cJSON_Compare(x, y, true)) {
			char *want = y ? cJSON_PrintUnformatted(y) : NULL, *have = cJSON_PrintUnformatted(x);
			st = sl_errorf(err, SL_ERR_ARG,
			               "%s was written with %s = %s but the configuration says %s; resume with the same "
			               "settings or start afresh without --resume",
			               ckpt, x->string, want ? want : "(nothing)", have ? have : "?");
			free(want);
			free(have);
			break;
		}
	}
done:
	cJSON_Delete(a);
	cJSON_Delete(b);
	return st;
}

/* ---- data ------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t hash_tokens(const int32_t *t, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 4; b++)
			h = (h ^ (uint8_t)((uint32_t)t[i] >> (8 * b))) * 16777619u;
	return h;
}

void sl_train_windows(const int32_t *toks, size_t n, int bos, int n_seqs, int T, uint64_t *rng,
                           int32_t *in, int32_t *tg)
{
	size_t span = bos >= 0 ? (size_t)T : (size_t)T + 1;
	for (int b = 0; b < n_seqs; b++) {
		size_t off = (size_t)(splitmix64(rng) % (n - span + 1));
		int32_t *x = in + (size_t)b * T, *y = tg + (size_t)b * T;
		if (bos >= 0) {
			x[0] = bos;
			memcpy(x + 1, toks + off, (size_t)(T - 1) * sizeof *x);
			memcpy(y, toks + off, (size_t)T * sizeof *y);
		} else {
			memcpy(x, toks + off, (size_t)T * sizeof *x);
			memcpy(y, toks + off + 1, (size_t)T * sizeof *y);
		}
	}
}

sl_status sl_train_encode_file(const sl_tokenizer *tok, const char *path, bool bos, int32_t **ids, size_t *n,
                             sl_error *err)
{
	char *text;
	size_t len;
	sl_status st = sl_read_file(path, (size_t)1 << 29, &text, &len, err);
	if (st)
		return st;
	st = sl_tok_encode(tok, text, len, bos, ids, n, err);
	free(text);
	return st ? sl_error_prefix(err, "%s: ", path) : SL_OK;
}

/* ---- the run ------------------------------------------------------- */

typedef struct {
	const sl_train_config *c;
	const sl_train_run_opts *o;
	sl_model *m, *teacher;
	sl_trainer *tr;
	sl_adamw opt;
	sl_train_state s;
	int32_t *train, *val, *in, *tg;
	size_t n_train, n_val;
	int T;                    /* tokens per sequence */
	double t0;
	int64_t step0;
} run;

static void report(run *r, sl_train_event ev, double loss, const sl_step_info *info, const sl_eval_result *val,
                   const char *note)
{
	sl_train_report rep = {.event = ev, .step = r->opt.step, .steps = r->c->opt.total, .loss = loss,
	                       .note = note};
	rep.elapsed_s = sl_now() - r->t0;
	int64_t done = r->opt.step - r->step0;
	if (done > 0) {
		double per = rep.elapsed_s / (double)done;
		rep.tokens_per_s = (double)done * r->c->accum * r->c->batch * r->T / rep.elapsed_s;
		rep.eta_s = per * (double)(r->c->opt.total - r->opt.step);
	}
	if (info) {
		rep.grad_norm = info->grad_norm;
		rep.lr = info->lr;
	}
	if (val) {
		rep.val_loss = val->nll;
		rep.val_ppl = val->ppl;
	}
	if (r->o->on_report)
		r->o->on_report(r->o->ctx, &rep);
}

/* Loss and perplexity on the validation text; n_chunks 0 = all of it. */
static sl_status validate(run *r, int n_chunks, sl_eval_result *res, sl_error *err)
{
	sl_eval_opts eo = {.n_ctx = r->T, .n_chunks = n_chunks, .progress = NULL};
	sl_status st = sl_eval_tokens(r->m, NULL, r->val, r->n_val, &eo, res, err);
	if (st)
		return sl_error_prefix(err, "validation: ");
	float *v = realloc(r->s.val, (size_t)(r->s.n_val + 1) * 2 * sizeof *v);
	if (!v)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	r->s.val = v;
	v[2 * r->s.n_val] = (float)r->opt.step;
	v[2 * r->s.n_val + 1] = (float)res->nll;
	r->s.n_val++;
	return SL_OK;
}

/* The loss table: one line per step, the validation loss where measured. */
static sl_status write_log(const run *r, sl_error *err)
{
	if (!r->c->log[0])
		return SL_OK;
	sl_buf b = {0};
	bool ok = sl_buf_printf(&b, "step\ttrain_loss\tval_loss\n");
	int64_t vi = 0;
	for (int64_t i = 0; ok && i < r->opt.step; i++) {
		ok = sl_buf_printf(&b, "%lld\t%.5f", (long long)(i + 1), r->s.loss[i]);
		while (ok && vi < r->s.n_val && (int64_t)r->s.val[2 * vi] <= i + 1) {
			if ((int64_t)r->s.val[2 * vi] == i + 1)
				ok = sl_buf_printf(&b, "\t%.5f", r->s.val[2 * vi + 1]);
			vi++;
		}
		ok = ok && sl_buf_put(&b, "\n", 1);
	}
	sl_status st = ok ? sl_write_file_atomic(r->c->log, b.data, b.len, err)
	                  : sl_errorf(err, SL_ERR_NOMEM, "out of memory writing %s", r->c->log);
	sl_buf_free(&b);
	return st;
}

static sl_status save_checkpoint(run *r, sl_error *err)
{
	if (!r->c->checkpoint[0])
		return SL_OK;
	sl_status st = sl_checkpoint_save(r->c->checkpoint, r->tr, &r->opt, &r->s, err);
	if (!st)
		st = write_log(r, err);
	if (!st)
		report(r, SL_TRAIN_CHECKPOINT, r->opt.step ? r->s.loss[r->opt.step - 1] : 0, NULL, NULL,
		       r->c->checkpoint);
	return st;
}

/* A fresh model of the configured shape with a vocabulary given or trained. */
static sl_status fresh_model(run *r, sl_error *err)
{
	const sl_train_config *c = r->c;
	sl_tokenizer *tok = NULL;
	sl_status st;
	if (c->tokenizer[0]) {
		st = sl_tok_load_file(c->tokenizer, &tok, err);
	} else {
		char *text;
		size_t len;
		if ((st = sl_read_file(c->train_text, (size_t)1 << 29, &text, &len, err)))
			return st;
		sl_vocab v;
		sl_tok_train_opts to = {c->vocab_size, r->o->progress};
		st = sl_tok_train(text, len, &to, &v, err);
		free(text);
		if (st)
			return st;
		st = sl_vocab_to_tokenizer(&v, &tok, err);
		char note[SL_PATH_MAX + 64];
		snprintf(note, sizeof note, "tokenizer: %d pieces trained on %s", v.n, c->train_text);
		sl_vocab_free(&v);
		if (!st)
			report(r, SL_TRAIN_NOTE, 0, NULL, NULL, note);
	}
	if (st)
		return st;
	sl_config shape = c->shape;
	shape.vocab_size = sl_tok_n_vocab(tok);
	if ((st = sl_model_init_random(&shape, c->tied, c->init_std, c->seed ^ 0x5eed, &r->m, err))) {
		sl_tok_free(tok);
		return st;
	}
	r->m->tok = tok;
	/* Residual branches start smaller with depth (as GPT-2 does) so the
	 * stream's variance does not grow with the number of blocks. */
	float k = 1.0f / sqrtf(2.0f * (float)shape.n_layers);
	for (int il = 0; il < shape.n_layers; il++) {
		sl_tensor *ts[] = {r->m->layers[il].wo, r->m->layers[il].w_down};
		for (int i = 0; i < 2; i++)
			for (int64_t j = 0; j < sl_tensor_nelements(ts[i]); j++)
				((float *)ts[i]->data)[j] *= k;
	}
	return SL_OK;
}

static sl_status setup(run *r, sl_error *err)
{
	const sl_train_config *c = r->c;
	bool have = c->checkpoint[0] && sl_file_exists(c->checkpoint), resume = r->o->resume && have;
	if (have && !resume)
		return sl_errorf(err, SL_ERR_ARG,
		                 "%s exists: resume from it (slimlab train --resume), or remove it to start afresh",
		                 c->checkpoint);
	if (r->o->resume && !have)
		report(r, SL_TRAIN_NOTE, 0, NULL, NULL, "no checkpoint to resume from: starting afresh");
	sl_load_opts lo = {.check_finite = true};
	sl_status st;
	if (resume)
		st = sl_model_load(c->checkpoint, &lo, &r->m, err);
	else if (c->init[0])
		st = sl_model_load(c->init, &lo, &r->m, err);
	else
		st = fresh_model(r, err);
	if (st)
		return st;
	if (!r->m->tok)
		return sl_errorf(err, SL_ERR_ARG, "%s: the model has no vocabulary to read the training text with",
		                 r->m->path);
	if (c->teacher[0] && (st = sl_model_load(c->teacher, &lo, &r->teacher, err)))
		return sl_error_prefix(err, "teacher: ");
	r->T = c->seq_len ? c->seq_len : r->m->cfg.max_seq_len < 256 ? r->m->cfg.max_seq_len : 256;
	if (r->T > r->m->cfg.max_seq_len)
		return sl_errorf(err, SL_ERR_ARG, "train.seq_len %d exceeds the model's context of %d", r->T,
		                 r->m->cfg.max_seq_len);
	if ((st = sl_train_encode_file(r->m->tok, c->train_text, false, &r->train, &r->n_train, err)))
		return st;
	if ((size_t)r->T + 1 > r->n_train)
		return sl_errorf(err, SL_ERR_ARG, "%s: %zu tokens are too few for windows of %d", c->train_text, r->n_train,
		                 r->T);
	if (c->val_text[0] &&
	    (st = sl_train_encode_file(r->m->tok, c->val_text, sl_tok_add_bos(r->m->tok), &r->val, &r->n_val, err)))
		return st;
	if ((st = sl_trainer_new(r->m, sl_train_kernels_cpu(), c->batch, r->T, NULL, &r->tr, err)) ||
	    (st = sl_adamw_init(&r->opt, sl_trainer_n_weights(r->tr), err)))
		return st;
	size_t nb = (size_t)c->accum * c->batch * r->T;
	r->in = sl_malloc_array(nb, sizeof(int32_t));
	r->tg = sl_malloc_array(nb, sizeof(int32_t));
	if (!r->in || !r->tg)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for a batch of %zu tokens", nb);
	char *ident = identity(c, r->T);
	if (!ident)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	uint32_t hash = hash_tokens(r->train, r->n_train);
	if (resume) {
		if ((st = sl_checkpoint_read(c->checkpoint, r->tr, &r->opt, &r->s, err)) ||
		    (st = same_identity(c->checkpoint, r->s.identity, ident, err))) {
			free(ident);
			return st;
		}
		free(ident);
		if (r->s.data_tokens != (uint32_t)r->n_train || r->s.data_hash != hash)
			return sl_errorf(err, SL_ERR_ARG,
			                 "%s was trained on other tokens than %s gives now (%u tokens, hash %08x; now %zu, %08x)",
			                 c->checkpoint, c->train_text, r->s.data_tokens, r->s.data_hash, r->n_train, hash);
		if (r->opt.step > c->opt.total)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: step %lld is beyond the run's %lld steps", c->checkpoint,
			                 (long long)r->opt.step, (long long)c->opt.total);
	} else {
		r->s.identity = ident;
		r->s.rng = c->seed;
		r->s.data_tokens = (uint32_t)r->n_train;
		r->s.data_hash = hash;
	}
	float *l = realloc(r->s.loss, (size_t)(c->opt.total ? c->opt.total : 1) * sizeof *l);
	if (!l)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	r->s.loss = l;
	return SL_OK;
}

sl_status sl_train_run(const sl_train_config *c, const sl_train_run_opts *o, sl_error *err)
{
	if (c->threads)
		sl_kernels_set_threads(c->threads);
	run r = {.c = c, .o = o};
	sl_status st = setup(&r, err);
	const int T = r.T, per_micro = c->batch * T;
	const int bos = r.m && r.m->tok && sl_tok_add_bos(r.m->tok) ? sl_tok_bos(r.m->tok) : -1;
	r.t0 = sl_now();
	r.step0 = r.opt.step;
	char stage[128];
	while (!st && r.opt.step < c->opt.total) {
		if (sl_cancelled(o->progress)) {
			st = save_checkpoint(&r, err);
			if (!st)
				st = sl_errorf(err, SL_ERR_CANCELLED, "training cancelled at step %lld%s%s",
				               (long long)r.opt.step, c->checkpoint[0] ? "; resume from " : "",
				               c->checkpoint);
			break;
		}
		for (int a = 0; a < c->accum; a++)
			sl_train_windows(r.train, r.n_train, bos, c->batch, T, &r.s.rng, r.in + (size_t)a * per_micro,
			               r.tg + (size_t)a * per_micro);
		sl_step_info info;
		if ((st = sl_train_step(r.tr, &r.opt, &c->opt, r.in, r.tg, c->accum, c->batch, &c->loss, r.teacher, &info,
		                        err)))
			break;
		r.s.loss[r.opt.step - 1] = (float)info.loss;
		report(&r, SL_TRAIN_STEP, info.loss, &info, NULL, NULL);
		snprintf(stage, sizeof stage, "step %lld/%lld, loss %.4f", (long long)r.opt.step, (long long)c->opt.total,
		         info.loss);
		sl_report(o->progress, (double)r.opt.step / (double)c->opt.total, stage);
		bool last = r.opt.step == c->opt.total;
		if (r.val && c->eval_every && r.opt.step % c->eval_every == 0 && !last) {
			sl_eval_result res;
			if ((st = validate(&r, c->eval_chunks, &res, err)))
				break;
			report(&r, SL_TRAIN_EVAL, info.loss, &info, &res, NULL);
		}
		if (c->checkpoint_every && r.opt.step % c->checkpoint_every == 0 && !last)
			st = save_checkpoint(&r, err);
	}
	if (!st) {
		sl_eval_result res = {0};
		if (r.val && (st = validate(&r, 0, &res, err)) == SL_OK)
			report(&r, SL_TRAIN_EVAL, r.opt.step ? r.s.loss[r.opt.step - 1] : 0, NULL, &res, "final");
		if (!st)
			st = save_checkpoint(&r, err);
		if (!st)
			st = write_log(&r, err);
		if (!st)
			st = sl_model_save_gguf(r.m, c->name, c->out_type, c->output, err);
		if (!st)
			report(&r, SL_TRAIN_DONE, r.opt.step ? r.s.loss[r.opt.step - 1] : 0, NULL, r.val ? &res : NULL,
			       c->output);
	}
	sl_trainer_free(r.tr);
	sl_adamw_free(&r.opt);
	sl_train_state_free(&r.s);
	sl_model_free(r.m);
	sl_model_free(r.teacher);
	free(r.train);
	free(r.val);
	free(r.in);
	free(r.tg);
	return st;
}
