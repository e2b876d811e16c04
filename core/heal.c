/* Healing: the recipe applied as after post-training compression (the
 * packed model), a student cloned from it that the trainer turns to F32
 * (each matrix's grid fitted on its dequantized values reproduces the
 * packed scales), training on one text with the base as teacher, and the
 * trained weights packed back into the packed model's storage types. */
#include "heal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "compress.h"
#include "export.h"
#include "fileio.h"
#include "loftq.h"
#include "methods/method.h"
#include "tokenizer.h"

static const char *const method_names[] = {"qat", "qad", "kd", "lora"};

/* --- the methods' cards ---------------------------------------------------- */

static const sl_card card_qat = {
	.title = "QAT: quantization-aware training",
	.what = "The compressed model trains on text with every weight passed through its format's rounding in the "
	        "forward pass; gradients go straight through the rounding to float weights, which are rounded again "
	        "at the end.",
	.formula = "forward with W_q = Q(W); backward dL/dW = dL/dW_q * 1[W within the grid's range] (straight-through); "
	           "loss cross-entropy on the text; with lsq the steps d train too.",
	.watch = "Heal: the training loss and the held-out KL falling as it runs, then KL, PPL and top-1 before and "
	         "after, and the share of the KL recovered.",
	.pitfall = "Cross-entropy on a small text pulls the model toward that text, not back toward the base: PPL may "
	           "fall while KL to the base barely moves. QAD aims at the base.",
	.paper = "Jacob et al. 2018 (integer quantization-aware training); Bengio et al. 2013 (straight-through "
	         "estimator); Esser et al. 2020, LSQ.",
};

static const sl_card card_qad = {
	.title = "QAD: quantization-aware distillation",
	.what = "Quantization-aware training whose target is the base model itself: the compressed student learns to "
	        "match the base's next-token distributions, so what it recovers is exactly what compression cost.",
	.formula = "loss = T^2 * KL(softmax(z_base / T) || softmax(z_student / T)), student weights W_q = Q(W) with "
	           "straight-through gradients.",
	.watch = "Heal: the held-out KL curve, and the share recovered, usually higher than QAT's for the same steps.",
	.pitfall = "A temperature far from 1 changes what is matched; too high a learning rate pushes weights across "
	           "rounding boundaries back and forth.",
	.paper = "Hinton, Vinyals and Dean 2015 (distillation); Liu et al. 2023, LLM-QAT: Data-Free Quantization Aware "
	         "Training for Large Language Models.",
};

static const sl_card card_kd = {
	.title = "KD: distillation after pruning",
	.what = "Knowledge distillation for pruned models: the pruned student trains to match the base's "
	        "distributions, the pruned weights stay zero and removed structures stay removed.",
	.formula = "loss = T^2 * KL(p_base^T || p_student^T); gradients masked so that pruned weights keep their zeros.",
	.watch = "Heal: KL before and after; run it after the Recipe prunes (s sparsity, p pattern) and compare the "
	         "share recovered at 2:4 and at 50%.",
	.pitfall = "A short run recovers the easy part; structured removal (heads, channels, blocks) needs many more "
	           "steps than element-wise zeros.",
	.paper = "Hinton, Vinyals and Dean 2015, Distilling the Knowledge in a Neural Network.",
};

static const sl_card card_lora = {
	.title = "LoRA: low-rank adapters (and QLoRA)",
	.what = "The compressed weights stay frozen; small adapters B A beside each matrix train instead, then merge "
	        "into the weights (which round again) or stay apart as an adapter file. Over a 4-bit NormalFloat base "
	        "this is QLoRA.",
	.formula = "y = W_q x + (alpha / r) B A x, A (r x cols) random, B (rows x r) zero at the start, so training "
	           "starts from the compressed model.",
	.watch = "Heal: rank and learning rate in the menus; the after figures of merged adapters include their "
	         "rounding, kept apart they do not.",
	.pitfall = "Merging into a low-bit format rounds the adapters' small correction away; keep them apart, or start "
	           "from LoftQ, when the format is coarse.",
	.paper = "Hu et al. 2022, LoRA: Low-Rank Adaptation of Large Language Models (ICLR); Dettmers et al. 2023, "
	         "QLoRA.",
};

static const sl_card *const method_cards[] = {&card_qat, &card_qad, &card_kd, &card_lora};

const sl_card *sl_heal_method_card(sl_heal_method m)
{
	return (unsigned)m < sizeof method_cards / sizeof *method_cards ? method_cards[m] : NULL;
}

const char *sl_heal_method_name(sl_heal_method m)
{
	return (unsigned)m < sizeof method_names / sizeof *method_names ? method_names[m] : NULL;
}

bool sl_heal_method_parse(const char *s, sl_heal_method *m)
{
	for (int i = 0; i < (int)(sizeof method_names / sizeof *method_names); i++)
		if (s && !strcmp(s, method_names[i])) {
			*m = (sl_heal_method)i;
			return true;
		}
	return false;
}

void sl_heal_opts_init(sl_heal_opts *o, sl_heal_method m)
{
	*o = (sl_heal_opts){.method = m, .steps = 300, .batch = 8, .temperature = 1, .loss = -1, .rank = 8,
	                    .probe_chunks = 4, .eval_every = 50, .seed = 1};
}

void sl_heal_result_free(sl_heal_result *r)
{
	free(r->loss);
	free(r->probe);
	memset(r, 0, sizeof *r);
}

typedef struct {
	const sl_heal_opts *o;
	const sl_model *base;
	const sl_recipe *r;
	sl_heal_result *res;
	sl_model *ptq, *student, *probe;
	sl_apply_report rep;
	int *old_layer;             /* the packed model's block i is the base's old_layer[i] */
	unsigned char **masks;      /* per student tensor: pruned weights, or NULL */
	bool *changed;              /* per student tensor: it learns (itself or through an adapter) */
	float **loftq_a, **loftq_b; /* per packed tensor: LoftQ's start for its adapter, or NULL */
	int n_loftq;                /* their count */
	sl_trainer *tr;
	sl_adamw opt;
	sl_adamw_opts ao;
	sl_loss loss;
	sl_train_state s;
	int32_t *train, *val, *in, *tg;
	size_t n_train, n_val;
	int T, bos, eval_ctx;
	int n_lsq;                  /* tensors whose steps train */
	double t0;
	int64_t step0;
} heal_run;

static void report(heal_run *h, sl_train_event ev, const sl_step_info *info, const sl_eval_result *e,
                   const char *note)
{
	sl_heal_report rep = {.event = ev, .step = h->opt.step, .steps = h->o->steps, .eval = e, .note = note};
	rep.elapsed_s = sl_now() - h->t0;
	int64_t done = h->opt.step - h->step0;
	if (done > 0 && rep.elapsed_s > 0) {
		rep.tokens_per_s = (double)done * h->o->batch * h->T / rep.elapsed_s;
		rep.eta_s = rep.elapsed_s / (double)done * (double)(h->o->steps - h->opt.step);
	}
	if (info) {
		rep.loss = info->loss;
		rep.grad_norm = info->grad_norm;
		rep.lr = info->lr;
	}
	if (h->o->on_report)
		h->o->on_report(h->o->ctx, &rep);
}

static sl_status check_opts(const sl_heal_opts *o, sl_error *err)
{
	if (!sl_heal_method_name(o->method))
		return sl_errorf(err, SL_ERR_ARG, "unknown healing method %d", (int)o->method);
	int least = o->method == SL_HEAL_LORA ? 0 : 1;
	if (o->steps < least || o->steps > 10000000)
		return sl_errorf(err, SL_ERR_ARG, "steps must be between %d and 10000000, not %d", least, o->steps);
	if (o->batch < 1 || o->batch > 4096)
		return sl_errorf(err, SL_ERR_ARG, "batch must be between 1 and 4096, not %d", o->batch);
	if (o->seq_len < 0)
		return sl_errorf(err, SL_ERR_ARG, "sequence length must be positive, not %d", o->seq_len);
	if (!(o->lr >= 0 && o->lr <= 1))
		return sl_errorf(err, SL_ERR_ARG, "learning rate must be in (0, 1], not %g", o->lr);
	if (!(o->temperature > 0 && o->temperature <= 100))
		return sl_errorf(err, SL_ERR_ARG, "temperature must be in (0, 100], not %g", o->temperature);
	if (!(o->ce_weight >= 0 && o->ce_weight <= 1))
		return sl_errorf(err, SL_ERR_ARG, "cross-entropy weight must be in [0, 1], not %g", o->ce_weight);
	if (o->loss < -1 || o->loss > SL_LOSS_KL_REVERSE)
		return sl_errorf(err, SL_ERR_ARG, "unknown loss %d", o->loss);
	if (o->method == SL_HEAL_LORA && (o->rank < 1 || o->rank > 4096))
		return sl_errorf(err, SL_ERR_ARG, "LoRA rank must be between 1 and 4096, not %d", o->rank);
	if (!(o->alpha >= 0 && o->alpha <= 1e6))
		return sl_errorf(err, SL_ERR_ARG, "LoRA alpha must be non-negative, not %g", o->alpha);
	if (o->loftq && o->method != SL_HEAL_LORA)
		return sl_errorf(err, SL_ERR_ARG, "LoftQ starts LoRA's adapters: it needs LoRA, not %s",
		                 method_names[o->method]);
	if (o->loftq < 0 || o->loftq > 100)
		return sl_errorf(err, SL_ERR_ARG, "LoftQ iterations must be between 0 and 100, not %d", o->loftq);
	if (o->adapter_out && o->method != SL_HEAL_LORA)
		return sl_errorf(err, SL_ERR_ARG, "only LoRA has adapters to keep apart (healing by %s changes the weights)",
		                 method_names[o->method]);
	if (o->eval_every < 0 || o->checkpoint_every < 0 || o->eval_chunks < 0 || o->probe_chunks < 0 ||
	    o->eval_ctx < 0)
		return sl_errorf(err, SL_ERR_ARG, "evaluation and checkpoint intervals must not be negative");
	return SL_OK;
}

/* The text at path, or the shipped one named rel when path is NULL. */
static sl_status text_path(const char *path, const char *rel, char *out, size_t n, sl_error *err)
{
	if (!path)
		return sl_shipped_find(rel, out, n, err);
	if (snprintf(out, n, "%s", path) >= (int)n)
		return sl_errorf(err, SL_ERR_ARG, "path too long: %s", path);
	return SL_OK;
}

static sl_status load_texts(heal_run *h, sl_error *err)
{
	char tpath[SL_PATH_MAX], epath[SL_PATH_MAX];
	sl_status st = text_path(h->o->train_text, "data/calib.txt", tpath, sizeof tpath, err);
	if (!st)
		st = text_path(h->o->eval_text, "data/eval.txt", epath, sizeof epath, err);
	if (st)
		return st;
	char *rt = realpath(tpath, NULL), *re = realpath(epath, NULL);
	bool same = rt && re && !strcmp(rt, re);
	free(rt);
	free(re);
	if (same)
		return sl_errorf(err, SL_ERR_ARG,
		                 "%s is both the training and the evaluation text: figures must come from text the "
		                 "model did not train on",
		                 tpath);
	const sl_tokenizer *tok = h->base->tok;
	if (!tok)
		return sl_errorf(err, SL_ERR_ARG, "%s: the model has no vocabulary to read text with", h->base->path);
	if ((st = sl_train_encode_file(tok, tpath, false, &h->train, &h->n_train, err)) ||
	    (st = sl_train_encode_file(tok, epath, sl_tok_add_bos(tok), &h->val, &h->n_val, err)))
		return st;
	if (h->n_train < (size_t)h->T + 1)
		return sl_errorf(err, SL_ERR_ARG, "%s: %zu tokens are too few for windows of %d", tpath, h->n_train, h->T);
	if (h->n_val < (size_t)h->eval_ctx)
		return sl_errorf(err, SL_ERR_ARG, "%s: %zu tokens are too few for one evaluation window of %d", epath,
		                 h->n_val, h->eval_ctx);
	return SL_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

static int block_of(const char *name)
{
	int l;
	return sscanf(name, "blk.%d.", &l) == 1 ? l : -1;
}

/* Which base block each packed block came from: structured pruning may
 * have removed whole blocks (reported with no bytes left). */
static sl_status map_layers(heal_run *h, sl_error *err)
{
	int nb = h->base->cfg.n_layers, k = 0;
	h->old_layer = sl_calloc((size_t)(nb ? nb : 1), sizeof *h->old_layer);
	if (!h->old_layer)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	for (int l = 0; l < nb; l++) {
		bool removed = false;
		for (int i = 0; i < h->rep.n_mods && !removed; i++)
			removed = block_of(h->rep.mods[i].module) == l && h->rep.mods[i].bytes_after == 0;
		if (!removed)
			h->old_layer[k++] = l;
	}
	if (k != h->ptq->cfg.n_layers)
		return sl_errorf(err, SL_ERR_ARG, "the compressed model has %d blocks but %d of the base's remain",
		                 h->ptq->cfg.n_layers, k);
	return SL_OK;
}

/* The base's name of the packed model's tensor name. */
static void base_name(const heal_run *h, const char *name, char bname[SL_NAME_MAX])
{
	int l = block_of(name);
	const char *rest = strchr(name + 4, '.');
	if (l >= 0 && rest)
		snprintf(bname, SL_NAME_MAX, "blk.%d%s", h->old_layer[l], rest);
	else
		snprintf(bname, SL_NAME_MAX, "%s", name);
}

/* Whether the recipe prunes the packed model's tensor name element by
 * element (its zeros must stay zero). */
static bool prunes(const heal_run *h, const char *name)
{
	char bname[SL_NAME_MAX];
	base_name(h, name, bname);
	size_t n = strlen(bname);
	if (n > 7 && !strcmp(bname + n - 7, ".weight"))
		bname[n - 7] = 0;
	int nm = sl_model_modules(h->base, NULL, 0);
	sl_module *mods = sl_calloc((size_t)nm, sizeof *mods);
	bool yes = false;
	if (!mods)
		return false;
	sl_model_modules(h->base, mods, nm);
	for (int i = 0; i < nm; i++)
		if (!strcmp(mods[i].name, bname)) {
			sl_module_plan p;
			sl_recipe_resolve(h->r, &mods[i], &p);
			yes = sl_plan_prunes(&p);
			break;
		}
	free(mods);
	return yes;
}

static int student_index(const heal_run *h, const sl_tensor *t)
{
	for (int i = 0; i < h->student->n_tensors; i++)
		if (h->student->tensors[i] == t)
			return i;
	return -1;
}

/* Whether t's format has steps to learn; a module that fell back to one
 * without (per-row int8, a float type) keeps fixed scales. */
static bool learnable(const sl_tensor *t)
{
	const char *why;
	sl_qgrid *g = sl_qgrid_new(t->type, (int)sl_tensor_nrows(t), (int)t->ne[0], &why);
	bool yes = g && sl_qgrid_scales_learnable(g);
	sl_qgrid_free(g);
	return yes;
}

/* Whether LoRA puts an adapter on t: the blocks' matrices. */
static bool adapted(const sl_tensor *t)
{
	return t->n_dims >= 2 && block_of(t->name) >= 0;
}

/* How each tensor heals: through the format it is packed in, its pruned
 * zeros held, frozen with an adapter for LoRA. */
static void spec_of(void *ctx, const sl_tensor *t, sl_heal_spec *spec)
{
	heal_run *h = ctx;
	int i = student_index(h, t);
	const sl_tensor *p = sl_model_tensor(h->ptq, t->name);
	if (i < 0 || !p)
		return;
	bool matrix = t->n_dims >= 2;
	if (matrix && p->type != SL_DT_F32) {
		spec->format = sl_format_of_dtype(p->type);
		if (!spec->format)
			spec->frozen = true; /* no format packs it again: it stays as it is */
	}
	if (matrix && h->masks[i])
		spec->mask = h->masks[i];
	spec->learn_scales = h->o->lsq && spec->format && !spec->frozen && learnable(p);
	h->n_lsq += spec->learn_scales;
	if (h->o->method == SL_HEAL_LORA) {
		spec->frozen = true;
		if (adapted(t)) {
			spec->lora_rank = h->o->rank;
			spec->lora_alpha = h->o->alpha;
		}
	}
	h->changed[i] = !spec->frozen || spec->lora_rank > 0;
}

/* The pruned weights of every tensor the recipe prunes element-wise. */
static sl_status find_masks(heal_run *h, sl_error *err)
{
	int n = h->student->n_tensors;
	h->masks = sl_calloc((size_t)n, sizeof *h->masks);
	h->changed = sl_calloc((size_t)n, sizeof *h->changed);
	if (!h->masks || !h->changed)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		const sl_tensor *p = h->ptq->tensors[i];
		if (p->n_dims < 2 || !prunes(h, p->name))
			continue;
		size_t ne = (size_t)sl_tensor_nelements(p), rows = (size_t)sl_tensor_nrows(p), cols = ne / rows;
		float *row = sl_malloc_array(cols, sizeof *row);
		unsigned char *mk = sl_malloc(ne);
		if (!row || !mk) {
			free(row);
			free(mk);
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		}
		for (size_t r = 0; r < rows; r++) {
			sl_tensor_rows_to_f32(p, (int64_t)r, 1, row);
			for (size_t c = 0; c < cols; c++)
				mk[r * cols + c] = row[c] == 0.0f;
		}
		free(row);
		h->masks[i] = mk;
	}
	return SL_OK;
}

static char *identity(const heal_run *h)
{
	char *rj = sl_recipe_to_json(h->r);
	uint64_t rh = rj ? sl_hash64(rj, strlen(rj), 0) : 0;
	free(rj);
	const sl_heal_opts *o = h->o;
	char buf[1024];
	snprintf(buf, sizeof buf,
	         "{\"heal\": \"%s\", \"steps\": %d, \"lr\": %.9g, \"batch\": %d, \"seq_len\": %d, \"temperature\": %.9g, "
	         "\"ce_weight\": %.9g, \"loss\": %d, \"lsq\": %d, \"rank\": %d, \"alpha\": %.9g, \"seed\": %llu, "
	         "\"base\": \"%016llx\", \"recipe\": \"%016llx\"",
	         method_names[o->method], o->steps, h->ao.lr, o->batch, h->T, o->temperature, o->ce_weight,
	         (int)h->loss.kind, (int)o->lsq, o->rank, o->alpha, (unsigned long long)o->seed,
	         (unsigned long long)sl_model_hash(h->base), (unsigned long long)rh);
	size_t n = strlen(buf);
	if (o->loftq)
		snprintf(buf + n, sizeof buf - n, ", \"loftq\": %d}", o->loftq);
	else
		snprintf(buf + n, sizeof buf - n, "}");
	return sl_strdup(buf);
}

static bool float_type(int t)
{
	return t == SL_DT_F32 || t == SL_DT_F16 || t == SL_DT_BF16;
}

/* Whether quantizing by m is rounding to nearest in the format alone
 * (no scaled channels, no solve, no refinement). */
static bool rounds_only(const sl_method *m)
{
	return m && !m->scales && !m->prepare && !m->refine;
}

/* LoftQ needs the base's weights of every matrix it starts, quantized by
 * rounding alone: a recipe that prunes, or quantizes a block by another
 * method, is refused. */
static sl_status loftq_check(const heal_run *h, sl_error *err)
{
	int nm = sl_model_modules(h->base, NULL, 0);
	sl_module *mods = sl_calloc((size_t)(nm ? nm : 1), sizeof *mods);
	if (!mods)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	sl_model_modules(h->base, mods, nm);
	sl_status st = SL_OK;
	for (int i = 0; i < nm && !st; i++) {
		sl_module_plan p;
		sl_recipe_resolve(h->r, &mods[i], &p);
		if (sl_plan_prunes(&p))
			st = sl_errorf(err, SL_ERR_UNSUPPORTED,
			               "LoftQ is for LoRA over quantization alone, and the recipe prunes %s", mods[i].name);
		else if (mods[i].layer >= 0 && p.format && !rounds_only(sl_method_find(SL_METHOD_QUANT, p.method)))
			st = sl_errorf(err, SL_ERR_UNSUPPORTED,
			               "LoftQ quantizes by rounding to nearest, and the recipe quantizes %s by %s", mods[i].name,
			               p.method);
	}
	free(mods);
	return st;
}

/* LoftQ: each adapted matrix that is quantized starts anew from the
 * base's weights, quantized around its adapter (its packed bytes
 * replaced), the adapter's start kept for the trainer. */
static sl_status loftq_init(heal_run *h, sl_error *err)
{
	const sl_heal_opts *o = h->o;
	sl_status st = SL_OK;
	int n = h->ptq->n_tensors, done = 0, todo = 0;
	h->loftq_a = sl_calloc((size_t)n, sizeof *h->loftq_a);
	h->loftq_b = sl_calloc((size_t)n, sizeof *h->loftq_b);
	h->n_loftq = n;
	if (!h->loftq_a || !h->loftq_b)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	for (int i = 0; i < n; i++)
		todo += adapted(h->ptq->tensors[i]) && !float_type(h->ptq->tensors[i]->type);
	if (!todo)
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "LoftQ starts adapters on quantized matrices, and the recipe quantizes none of the blocks'");
	const int rank = o->rank;
	const float scale = (o->alpha > 0 ? o->alpha : (float)rank) / (float)rank;
	for (int i = 0; i < n && !st; i++) {
		sl_tensor *p = h->ptq->tensors[i];
		if (!adapted(p) || float_type(p->type))
			continue;
		if (sl_cancelled(o->progress))
			return sl_errorf(err, SL_ERR_CANCELLED, "LoftQ cancelled");
		char stage[SL_NAME_MAX + 16];
		snprintf(stage, sizeof stage, "LoftQ: %s", p->name);
		sl_report(o->progress, (double)done++ / todo, stage);
		char bname[SL_NAME_MAX];
		base_name(h, p->name, bname);
		const sl_tensor *w = sl_model_tensor(h->base, bname);
		const int rows = (int)sl_tensor_nrows(p), cols = (int)p->ne[0];
		if (!w || w->ne[0] != p->ne[0] || sl_tensor_nrows(w) != rows)
			return sl_errorf(err, SL_ERR_ARG, "%s: the base has no matrix of its shape to start LoftQ from", p->name);
		float *W = sl_malloc_array((size_t)rows * cols, sizeof *W);
		h->loftq_a[i] = sl_malloc_array((size_t)rank * cols, sizeof(float));
		h->loftq_b[i] = sl_malloc_array((size_t)rows * rank, sizeof(float));
		int64_t ne[SL_MAX_DIMS];
		memcpy(ne, p->ne, sizeof ne);
		if (!W || !h->loftq_a[i] || !h->loftq_b[i]) {
			free(W);
			return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory for LoftQ", p->name);
		}
		sl_tensor_rows_to_f32(w, 0, rows, W);
		if (!(st = sl_tensor_realloc(p, p->type, ne, p->n_dims, err)))
			st = sl_loftq(W, rows, cols, p->type, rank, scale, o->loftq, p->data, h->loftq_b[i], h->loftq_a[i], NULL,
			              p->name, err);
		free(W);
	}
	return st;
}

/* The adapters start where LoftQ left them. */
static void loftq_start(heal_run *h)
{
	int n;
	const sl_param *p = sl_trainer_params(h->tr, &n);
	for (int k = 0; k < n; k++) {
		const char *name = p[k].t->name;
		bool a = ends_with(name, ".lora_a");
		if (!a && !ends_with(name, ".lora_b"))
			continue;
		char matrix[SL_NAME_MAX];
		snprintf(matrix, sizeof matrix, "%.*s", (int)strlen(name) - 7, name);
		for (int i = 0; i < h->ptq->n_tensors; i++)
			if (h->loftq_a[i] && !strcmp(h->ptq->tensors[i]->name, matrix))
				memcpy(p[k].t->data, a ? h->loftq_a[i] : h->loftq_b[i], p[k].n * sizeof(float));
	}
}

/* The post-training model, its figures, and the student and trainer. */
static sl_status setup(heal_run *h, sl_error *err)
{
	const sl_heal_opts *o = h->o;
	const sl_model *base = h->base;
	bool have = o->checkpoint && sl_file_exists(o->checkpoint), resume = o->resume && have;
	if (have && !o->resume)
		return sl_errorf(err, SL_ERR_ARG, "%s exists: resume from it, or remove it to start afresh", o->checkpoint);
	h->T = o->seq_len ? o->seq_len : base->cfg.max_seq_len < 128 ? base->cfg.max_seq_len : 128;
	if (h->T > base->cfg.max_seq_len)
		return sl_errorf(err, SL_ERR_ARG, "sequence length %d exceeds the model's context of %d", h->T,
		                 base->cfg.max_seq_len);
	h->eval_ctx = o->eval_ctx ? o->eval_ctx : base->cfg.max_seq_len < 512 ? base->cfg.max_seq_len : 512;
	h->bos = sl_tok_add_bos(base->tok) ? sl_tok_bos(base->tok) : -1;
	sl_status st = o->loftq ? loftq_check(h, err) : SL_OK;
	if (st || (st = load_texts(h, err)))
		return st;

	sl_apply_opts ao = {.simulate = false, .progress = o->progress};
	if ((st = sl_recipe_apply(base, h->r, &ao, &h->ptq, &h->rep, err)))
		return sl_error_prefix(err, "applying the recipe: ");
	report(h, SL_TRAIN_NOTE, NULL, NULL, "recipe applied");
	if (o->adapter_out && sl_model_factored(h->ptq))
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "the recipe factors weights, and adapters on their factors cannot stay apart (llama.cpp has "
		                 "no factored layer to add them to): let them merge into the factors");
	sl_eval_opts eo = {.n_ctx = h->eval_ctx, .n_chunks = o->eval_chunks, .progress = o->progress};
	if ((st = sl_eval_tokens(h->ptq, base, h->val, h->n_val, &eo, &h->res->before, err)))
		return sl_error_prefix(err, "evaluating the compressed model: ");
	report(h, SL_TRAIN_NOTE, NULL, &h->res->before, "before healing");

	if ((st = map_layers(h, err)) || (o->loftq && (st = loftq_init(h, err))) ||
	    (st = sl_model_clone(h->ptq, &h->student, err)) || (st = find_masks(h, err)))
		return st;
	sl_trainer_opts to = {.spec = spec_of, .ctx = h, .seed = o->seed};
	if ((st = sl_trainer_new(h->student, sl_train_kernels_cpu(), o->batch, h->T, &to, &h->tr, err)))
		return sl_error_prefix(err, "healing: ");
	if (o->loftq) {
		loftq_start(h);
		report(h, SL_TRAIN_NOTE, NULL, NULL, "LoftQ: the adapters start from what quantization left");
	}
	for (int i = 0; i < h->student->n_tensors; i++)
		h->res->n_trained += h->changed[i];
	if (o->lsq && !h->n_lsq)
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "no module's format has steps to learn (learned step sizes need uniform levels with "
		                 "one scale per block)");
	if ((st = sl_model_clone(h->student, &h->probe, err)) ||
	    (st = sl_adamw_init(&h->opt, sl_trainer_n_weights(h->tr), err)))
		return st;
	h->in = sl_malloc_array((size_t)o->batch * h->T, sizeof(int32_t));
	h->tg = sl_malloc_array((size_t)o->batch * h->T, sizeof(int32_t));
	if (!h->in || !h->tg)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for a batch of %d x %d tokens", o->batch, h->T);

	char *ident = identity(h);
	if (!ident)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	uint64_t dh = sl_hash64(h->train, h->n_train * sizeof *h->train, 0);
	if (resume) {
		if ((st = sl_checkpoint_read_weights(o->checkpoint, h->tr, err)) ||
		    (st = sl_checkpoint_read(o->checkpoint, h->tr, &h->opt, &h->s, err))) {
			free(ident);
			return st;
		}
		bool same = h->s.identity && !strcmp(h->s.identity, ident);
		free(ident);
		if (!same)
			return sl_errorf(err, SL_ERR_ARG, "%s was made by another healing run (settings, recipe or model differ)",
			                 o->checkpoint);
		if (h->s.data_tokens != (uint32_t)h->n_train || h->s.data_hash != (uint32_t)dh)
			return sl_errorf(err, SL_ERR_ARG, "%s trained on other text than this run's", o->checkpoint);
		if (h->opt.step > o->steps)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: step %lld is beyond the run's %d steps", o->checkpoint,
			                 (long long)h->opt.step, o->steps);
		report(h, SL_TRAIN_NOTE, NULL, NULL, "resumed from the checkpoint");
	} else {
		h->s.identity = ident;
		h->s.rng = o->seed;
		h->s.data_tokens = (uint32_t)h->n_train;
		h->s.data_hash = (uint32_t)dh;
	}
	float *l = realloc(h->s.loss, (size_t)(o->steps ? o->steps : 1) * sizeof *l);
	if (!l)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	h->s.loss = l;
	return SL_OK;
}

/* Held-out KL of what the student computes now, on the first windows. */
static sl_status probe(heal_run *h, sl_eval_result *e, sl_error *err)
{
	sl_status st = sl_trainer_effective(h->tr, h->probe, err);
	sl_eval_opts eo = {.n_ctx = h->eval_ctx, .n_chunks = h->o->probe_chunks ? h->o->probe_chunks : 4};
	if (!st)
		st = sl_eval_tokens(h->probe, h->base, h->val, h->n_val, &eo, e, err);
	if (st)
		return sl_error_prefix(err, "held-out evaluation: ");
	float *v = realloc(h->s.val, (size_t)(h->s.n_val + 1) * 2 * sizeof *v);
	if (!v)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	h->s.val = v;
	v[2 * h->s.n_val] = (float)h->opt.step;
	v[2 * h->s.n_val + 1] = (float)e->kl_mean;
	h->s.n_val++;
	report(h, SL_TRAIN_EVAL, NULL, e, NULL);
	return SL_OK;
}

static sl_status checkpoint(heal_run *h, sl_error *err)
{
	if (!h->o->checkpoint)
		return SL_OK;
	sl_status st = sl_checkpoint_save(h->o->checkpoint, h->tr, &h->opt, &h->s, err);
	if (!st)
		report(h, SL_TRAIN_CHECKPOINT, NULL, NULL, h->o->checkpoint);
	return st;
}

static sl_status train(heal_run *h, sl_error *err)
{
	const sl_heal_opts *o = h->o;
	const sl_model *teacher = h->loss.kind == SL_LOSS_CE ? NULL : h->base;
	sl_eval_result e;
	sl_status st = SL_OK;
	if (o->eval_every && h->opt.step == 0)
		st = probe(h, &e, err);
	h->t0 = sl_now();
	h->step0 = h->opt.step;
	char stage[128];
	while (!st && h->opt.step < o->steps) {
		if (sl_cancelled(o->progress)) {
			st = checkpoint(h, err);
			if (!st)
				st = sl_errorf(err, SL_ERR_CANCELLED, "healing cancelled at step %lld%s%s", (long long)h->opt.step,
				               o->checkpoint ? "; resume from " : "", o->checkpoint ? o->checkpoint : "");
			break;
		}
		sl_train_windows(h->train, h->n_train, h->bos, o->batch, h->T, &h->s.rng, h->in, h->tg);
		sl_step_info info;
		if ((st = sl_train_step(h->tr, &h->opt, &h->ao, h->in, h->tg, 1, o->batch, &h->loss, teacher, &info, err)))
			break;
		h->s.loss[h->opt.step - 1] = (float)info.loss;
		report(h, SL_TRAIN_STEP, &info, NULL, NULL);
		snprintf(stage, sizeof stage, "healing: step %lld/%d, loss %.4f", (long long)h->opt.step, o->steps,
		         info.loss);
		sl_report(o->progress, (double)h->opt.step / o->steps, stage);
		bool last = h->opt.step == o->steps;
		if (o->eval_every && (h->opt.step % o->eval_every == 0 || last))
			st = probe(h, &e, err);
		if (!st && o->checkpoint_every && h->opt.step % o->checkpoint_every == 0 && !last)
			st = checkpoint(h, err);
	}
	h->res->train_seconds = sl_now() - h->t0;
	if (h->res->train_seconds > 0)
		h->res->tokens_per_s = (double)(h->opt.step - h->step0) * o->batch * h->T / h->res->train_seconds;
	return st;
}

/* The trained weights into the packed model's storage types, counting
 * those the packing moved by more than float rounding (a scale over the
 * whole tensor is recomputed from its largest value, and may come back
 * one unit in the last place away). */
static sl_status pack(heal_run *h, sl_error *err)
{
	sl_status st = sl_trainer_finish(h->tr, err);
	for (int i = 0; !st && i < h->student->n_tensors; i++) {
		if (!h->changed[i])
			continue;
		const sl_tensor *s = h->student->tensors[i];
		sl_tensor *p = h->ptq->tensors[i];
		int type = p->type;
		int64_t ne[SL_MAX_DIMS];
		memcpy(ne, p->ne, sizeof ne);
		int64_t rows = sl_tensor_nrows(p), cols = ne[0];
		if ((st = sl_tensor_realloc(p, type, ne, p->n_dims, err)))
			break;
		sl_dtype_rows_from_float(type, s->data, p->data, rows, cols);
		float *back = sl_malloc_array((size_t)cols, sizeof *back);
		if (!back)
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		const float *src = s->data;
		for (int64_t r = 0; r < rows; r++) {
			sl_tensor_rows_to_f32(p, r, 1, back);
			for (int64_t c = 0; c < cols; c++)
				h->res->repacked_moved += fabsf(back[c] - src[r * cols + c]) > 1e-6f * fabsf(src[r * cols + c]);
		}
		free(back);
	}
	return st;
}

/* The adapters into their file, the compressed weights left as they were
 * frozen; what the two compute together (each adapted matrix its
 * decoded weights plus its adapter's product, in F32) into the probe
 * model, for the after figures. */
static sl_status keep_apart(heal_run *h, sl_error *err)
{
	int n;
	const sl_param *p = sl_trainer_params(h->tr, &n);
	const sl_tensor **t = sl_calloc((size_t)n, sizeof *t);
	if (!t)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	int k = 0;
	for (int i = 0; i < n; i++)
		if (ends_with(p[i].t->name, ".lora_a") || ends_with(p[i].t->name, ".lora_b"))
			t[k++] = p[i].t;
	float alpha = h->o->alpha > 0 ? h->o->alpha : (float)h->o->rank;
	sl_status st = sl_export_lora(h->ptq, t, k, alpha, h->o->adapter_out, err);
	free(t);
	if (!st)
		st = sl_trainer_effective(h->tr, h->probe, err);
	return st;
}

sl_status sl_heal(const sl_model *base, const sl_recipe *r, const sl_heal_opts *o, sl_model **out,
                  sl_heal_result *res, sl_error *err)
{
	*out = NULL;
	memset(res, 0, sizeof *res);
	sl_status st = check_opts(o, err);
	if (st)
		return st;
	heal_run h = {.o = o, .base = base, .r = r, .res = res};
	bool kl = o->loss >= 0 ? o->loss != SL_LOSS_CE : o->method == SL_HEAL_QAD || o->method == SL_HEAL_KD;
	h.loss = (sl_loss){.kind = o->loss >= 0 ? (sl_loss_kind)o->loss : kl ? SL_LOSS_KL_FORWARD : SL_LOSS_CE,
	                   .temperature = o->temperature, .ce_weight = kl ? o->ce_weight : 0};
	snprintf(res->loss_name, sizeof res->loss_name, "%s",
	         h.loss.kind == SL_LOSS_CE ? "ce" : h.loss.kind == SL_LOSS_KL_FORWARD ? "kl" : "reverse-kl");
	float lr = o->lr > 0 ? o->lr : o->method == SL_HEAL_LORA ? 1e-3f : 6e-4f;
	h.ao = (sl_adamw_opts){.lr = lr, .min_lr = lr / 10, .warmup = o->steps >= 20 ? o->steps / 20 : 1,
	                       .total = o->steps ? o->steps : 1, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .clip = 1.0f};
	if (!(st = sl_adamw_check(&h.ao, err)) && !(st = setup(&h, err)) && !(st = train(&h, err)) &&
	    !(st = o->adapter_out ? keep_apart(&h, err) : pack(&h, err))) {
		sl_eval_opts eo = {.n_ctx = h.eval_ctx, .n_chunks = o->eval_chunks, .progress = o->progress};
		if ((st = sl_eval_tokens(o->adapter_out ? h.probe : h.ptq, base, h.val, h.n_val, &eo, &res->after, err)))
			sl_error_prefix(err, "evaluating the healed model: ");
	}
	if (!st) {
		double b = res->before.kl_mean;
		res->recovered = b > 0 ? (b - res->after.kl_mean) / b : NAN;
		report(&h, SL_TRAIN_DONE, NULL, &res->after, "healed");
		*out = h.ptq;
		h.ptq = NULL;
	}
	res->steps = h.opt.step;
	if (h.opt.step > 0 && (res->loss = sl_malloc_array((size_t)h.opt.step, sizeof *res->loss)))
		memcpy(res->loss, h.s.loss, (size_t)h.opt.step * sizeof *res->loss);
	if (h.s.n_val > 0 && (res->probe = sl_malloc_array((size_t)h.s.n_val * 2, sizeof *res->probe))) {
		memcpy(res->probe, h.s.val, (size_t)h.s.n_val * 2 * sizeof *res->probe);
		res->n_probe = (int)h.s.n_val;
	}
	sl_trainer_free(h.tr);
	sl_adamw_free(&h.opt);
	sl_train_state_free(&h.s);
	sl_apply_report_free(&h.rep);
	for (int i = 0; h.masks && i < h.student->n_tensors; i++)
		free(h.masks[i]);
	free(h.masks);
	free(h.changed);
	for (int i = 0; h.loftq_a && i < h.n_loftq; i++) {
		free(h.loftq_a[i]);
		free(h.loftq_b[i]);
	}
	free(h.loftq_a);
	free(h.loftq_b);
	free(h.old_layer);
	sl_model_free(h.ptq);
	sl_model_free(h.student);
	sl_model_free(h.probe);
	free(h.train);
	free(h.val);
	free(h.in);
	free(h.tg);
	return st;
}
