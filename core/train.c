/* The training forward and backward, read top to bottom like the inference
 * forward: embed, blocks, norm, head and loss; then the same in reverse.
 * Every numeric step is a call into the training kernels. A compressed
 * model heals through the same pass: each matrix the forward reads is its
 * effective weight (eff_of: pruned, fake-quantized, adapted) and each
 * gradient it writes goes to that effective weight (grad_to), which
 * heal_grads then carries to the master weights and the adapters. A
 * factored weight W = A B (low rank) trains its two factors, each a matrix
 * that heals like any other: the forward goes through the rank (x B^T,
 * then A) and the backward gives both factors their gradients. */
#include "train.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"

/* A matrix that heals: its master weights, what the forward uses, and the
 * gradient of that. */
typedef struct {
	sl_tensor *t;              /* master weights, F32 */
	sl_heal_spec spec;
	int rows, cols;
	float *eff;                /* the effective weights */
	float *base;               /* frozen with an adapter: the fixed part of eff */
	float *geff;               /* gradient of eff; NULL when nothing learns from it */
	float *grad;               /* the master's own gradient; NULL when frozen */
	unsigned char *inside;     /* where fake quantization passes gradients */
	sl_qgrid *grid;
	int type;                  /* the storage its fake quantization rounds through */
	sl_tensor *a, *b;          /* the adapter: A (rank x cols), B (rows x rank) */
	float *ga, *gb;
	float scale;
	sl_tensor *steps;          /* learned steps (LSQ), one per sub-block of the grid; NULL: fixed */
	float *gsteps;
	float lsq_scale;           /* LSQ's gradient scale, 1 / sqrt(group * kmax) */
	bool ready;                /* frozen and adapter-free: eff computed once */
	bool base_ready;           /* frozen with an adapter: base computed once */
} heal_mat;

/* A factored weight and what its forward keeps for the backward. */
typedef struct {
	const sl_tensor *w;
	float *mid;                /* x B^T (N x rank) */
	float *pick;               /* the token embeddings: the rows of A the inputs picked (N x rank) */
} lr_mat;

/* What the backward needs from the forward of one block, for N rows. */
typedef struct {
	float *x;                  /* block input */
	float *xn1, *mean1, *rstd1; /* attention norm (the mean: LayerNorm only) */
	float *q, *k, *v;          /* after rope */
	float *att, *lse;          /* attention output and its log-sum-exps */
	float *x1;                 /* residual after attention */
	float *xn2, *mean2, *rstd2; /* feed-forward norm */
	float *g, *u, *h;          /* gate (gated MLPs only), up, silu(gate) * up or gelu(up) */
} block_act;

/* Gradients of one block's tensors (NULL where the model lacks one; q, k
 * and v point into a fused qkv matrix's gradient where the model has one). */
typedef struct {
	float *attn_norm, *attn_norm_b, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
	float *ffn_norm, *ffn_norm_b, *w_gate, *w_up, *b_up, *w_down, *b_down;
} block_grad;

struct sl_trainer {
	sl_model *m;
	const sl_train_kernels *K;
	int max_seqs, T;
	sl_param *params;
	int n_params;
	float *grad;
	size_t n_weights;
	size_t n_grad;                    /* floats in grad: n_weights, or those kept when given away */
	void (*grad_fn)(void *ctx, const sl_tensor *t, const float *g, size_t n);
	void *grad_ctx;
	float *gscratch;                  /* given away: the gradient of the matrix the backward is at */
	struct lazy_f32 {                 /* given away: a matrix stored in another type, in F32 while used */
		const sl_tensor *of;
		float *data;
	} *lazy;
	block_act *act;
	block_grad *bg;
	float *g_tok_embd, *g_pos_embd, *g_out_norm, *g_out_norm_b, *g_output;
	float *x_out, *xnf, *meanf, *rstdf; /* last block's output, final norm */
	int32_t *pos;                     /* each row's position, for the position embeddings' gradient */
	float *logits, *tlogits, *row_loss; /* one sequence at a time */
	float *dx, *dxn, *tmp, *datt, *dq, *dk, *dv, *dh, *dg, *du;
	const sl_model *teacher;
	sl_state *teacher_state;          /* the inference forward, where the teacher cannot batch */
	sl_model *teacher_f32;            /* the teacher's weights in F32, where it holds others */
	block_act tact;                   /* the teacher's batched forward: one block's rows, reused */
	float **allocs;                   /* every activation buffer, for freeing */
	int n_allocs;
	heal_mat *heal;                   /* the matrices that heal */
	int n_heal;
	sl_tensor *owned;                 /* the adapters' tensors */
	int n_owned;
	lr_mat *lr;                       /* the factored weights */
	int n_lr;
	float *dmid;                      /* gradient of a factored weight's mid (N x largest rank) */
};

static float *alloc_f(sl_trainer *tr, size_t n)
{
	float *p = sl_malloc_array(n ? n : 1, sizeof(float));
	float **a = p ? realloc(tr->allocs, (size_t)(tr->n_allocs + 1) * sizeof *a) : NULL;
	if (!a) {
		free(p);
		return NULL;
	}
	tr->allocs = a;
	tr->allocs[tr->n_allocs++] = p;
	return p;
}

void sl_trainer_free(sl_trainer *tr)
{
	if (!tr)
		return;
	for (int i = 0; i < tr->n_allocs; i++)
		free(tr->allocs[i]);
	free(tr->allocs);
	free(tr->params);
	free(tr->grad);
	free(tr->gscratch);
	if (tr->lazy)
		free(tr->lazy->data);
	free(tr->lazy);
	free(tr->act);
	free(tr->bg);
	free(tr->pos);
	for (int i = 0; i < tr->n_heal; i++) {
		free(tr->heal[i].inside);
		sl_qgrid_free(tr->heal[i].grid);
	}
	free(tr->heal);
	free(tr->lr);
	for (int i = 0; i < tr->n_owned; i++)
		sl_tensor_release(&tr->owned[i]);
	free(tr->owned);
	sl_state_free(tr->teacher_state);
	sl_model_free(tr->teacher_f32);
	free(tr);
}

static heal_mat *heal_of(const sl_trainer *tr, const sl_tensor *t)
{
	for (int i = 0; t && i < tr->n_heal; i++)
		if (tr->heal[i].t == t)
			return &tr->heal[i];
	return NULL;
}

static lr_mat *lr_of(const sl_trainer *tr, const sl_tensor *t)
{
	for (int i = 0; t && i < tr->n_lr; i++)
		if (tr->lr[i].w == t)
			return &tr->lr[i];
	return NULL;
}

/* Registers t as trainable and returns where its gradient will live, as
 * an offset until the flat buffer exists. */
static sl_status push_param(sl_trainer *tr, sl_tensor *t, sl_error *err)
{
	sl_param *p = realloc(tr->params, (size_t)(tr->n_params + 1) * sizeof *p);
	if (!p)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory registering tensor '%s'", t->name);
	tr->params = p;
	size_t n = (size_t)sl_tensor_nelements(t);
	tr->params[tr->n_params++] = (sl_param){t, NULL, tr->n_weights, n, t->n_dims >= 2};
	tr->n_weights += n;
	return SL_OK;
}

/* A tensor the adapters train, owned by the trainer (room for every
 * adapter is made when the trainer starts: pointers to them must stay). */
static sl_tensor *own_tensor(sl_trainer *tr, const char *name, int rows, int cols, sl_error *err)
{
	int64_t ne[2] = {cols, rows};
	sl_tensor *t = &tr->owned[tr->n_owned];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	if (sl_tensor_realloc(t, SL_DT_F32, ne, 2, err))
		return NULL;
	tr->n_owned++;
	return t;
}

/* Sets up a matrix that heals as spec says: its grid fixed on the weights
 * it starts from, its adapter (A uniform in +-1/sqrt(cols), B zero). */
static sl_status add_heal(sl_trainer *tr, sl_tensor *t, const sl_heal_spec *spec, uint64_t *rng, sl_error *err)
{
	heal_mat *h = realloc(tr->heal, (size_t)(tr->n_heal + 1) * sizeof *h);
	if (!h)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	tr->heal = h;
	h = &tr->heal[tr->n_heal++];
	*h = (heal_mat){.t = t, .spec = *spec, .rows = (int)t->ne[1], .cols = (int)t->ne[0], .type = -1};
	size_t n = (size_t)h->rows * h->cols;
	float *w = t->data;
	if (spec->mask)
		for (size_t i = 0; i < n; i++)
			if (spec->mask[i])
				w[i] = 0;
	if (spec->format) {
		h->type = sl_format_fallback(spec->format, h->cols)->dtype;
		const char *why = NULL;
		if ((h->grid = sl_qgrid_new(h->type, h->rows, h->cols, &why)))
			sl_qgrid_fit_all(h->grid, w);
		if (!(h->inside = sl_malloc(n)))
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
		memset(h->inside, 1, n);
	}
	/* A float fallback has no scales to learn. */
	if (spec->learn_scales && h->grid) {
		if (!sl_qgrid_scales_learnable(h->grid))
			return sl_errorf(err, SL_ERR_UNSUPPORTED,
			                 "%s: the scales of %s cannot be learned (learned step sizes need uniform levels with one scale per block)",
			                 t->name, sl_dtype_name(h->type));
		int group = sl_qgrid_group(h->grid);
		char name[SL_NAME_MAX + 8];
		snprintf(name, sizeof name, "%s.scale", t->name);
		if (!(h->steps = own_tensor(tr, name, h->rows, h->cols / group, err)))
			return SL_ERR_NOMEM;
		sl_qgrid_scales(h->grid, h->steps->data);
		h->lsq_scale = 1.0f / sqrtf((float)group * (float)sl_qgrid_kmax(h->grid));
		sl_status st = push_param(tr, h->steps, err);
		if (st)
			return st;
		tr->params[tr->n_params - 1].decay = false;
	}
	if (spec->lora_rank > 0) {
		int r = spec->lora_rank;
		if (r > h->rows || r > h->cols)
			return sl_errorf(err, SL_ERR_ARG, "%s: a rank-%d adapter on a %d x %d matrix", t->name, r, h->rows,
			                 h->cols);
		char name[SL_NAME_MAX + 8];
		snprintf(name, sizeof name, "%s.lora_a", t->name);
		if (!(h->a = own_tensor(tr, name, r, h->cols, err)))
			return SL_ERR_NOMEM;
		snprintf(name, sizeof name, "%s.lora_b", t->name);
		if (!(h->b = own_tensor(tr, name, h->rows, r, err)))
			return SL_ERR_NOMEM;
		float bound = 1.0f / sqrtf((float)h->cols), *a = h->a->data;
		for (size_t i = 0; i < (size_t)r * h->cols; i++) {
			*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
			a[i] = bound * (2.0f * (float)(*rng >> 40) / 16777216.0f - 1.0f);
		}
		memset(h->b->data, 0, (size_t)h->rows * r * sizeof(float));
		h->scale = (spec->lora_alpha > 0 ? spec->lora_alpha : (float)r) / (float)r;
		sl_status st = push_param(tr, h->a, err);
		if (!st)
			st = push_param(tr, h->b, err);
		if (st)
			return st;
	}
	return SL_OK;
}

static sl_status add_param(sl_trainer *tr, sl_tensor *t, const sl_trainer_opts *o, uint64_t *rng, sl_error *err);

/* A factored weight keeps its factors: they train (a basis shared by
 * several weights once), the weight itself holds no values. */
static sl_status add_factored(sl_trainer *tr, sl_tensor *t, const sl_trainer_opts *o, uint64_t *rng, sl_error *err)
{
	if (t == tr->m->pos_embd)
		return sl_errorf(err, SL_ERR_UNSUPPORTED, "%s: training factored position embeddings is not supported",
		                 t->name);
	lr_mat *f = realloc(tr->lr, (size_t)(tr->n_lr + 1) * sizeof *f);
	if (!f)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	tr->lr = f;
	tr->lr[tr->n_lr++] = (lr_mat){.w = t};
	sl_status st = add_param(tr, t->lr_a, o, rng, err);
	return st ? st : add_param(tr, t->lr_b, o, rng, err);
}

/* Registers t (converting it to owned F32): as a plain parameter, a
 * matrix that heals, or frozen as it is; a factored weight by its factors. */
static sl_status add_param(sl_trainer *tr, sl_tensor *t, const sl_trainer_opts *o, uint64_t *rng, sl_error *err)
{
	if (!t || lr_of(tr, t))
		return SL_OK;
	if (t->lr_a)
		return add_factored(tr, t, o, rng, err);
	for (int i = 0; i < tr->n_params; i++)
		if (tr->params[i].t == t)
			return SL_OK; /* a tied head shares the embedding's gradient */
	if (heal_of(tr, t))
		return SL_OK;
	sl_status st = tr->grad_fn ? SL_OK : sl_tensor_to_f32(t, err);
	if (st)
		return st;
	sl_heal_spec spec = {0};
	if (o && o->spec)
		o->spec(o->ctx, t, &spec);
	/* (which would write the weights read in place) */
	if (tr->grad_fn && (spec.format || spec.mask || spec.lora_rank > 0 || spec.learn_scales))
		return sl_errorf(err, SL_ERR_ARG,
		                 "%s: gradients given away need plain tensors (no fake quantization, mask or adapter)",
		                 t->name);
	bool heals = t->n_dims >= 2 && (spec.format || spec.mask || spec.lora_rank > 0 || spec.frozen);
	/* Gradients given away: F32 weights are read where they are, a
	 * trainable matrix in another type is converted each time it is used
	 * (eff_of), a vector or a frozen matrix once. */
	if (tr->grad_fn && t->type != SL_DT_F32 && (t->n_dims < 2 || heals) && (st = sl_tensor_to_f32(t, err)))
		return st;
	if (heals && (st = add_heal(tr, t, &spec, rng, err)))
		return st;
	return spec.frozen ? SL_OK : push_param(tr, t, err);
}

/* Row r of a matrix of rows of n (NULL stays NULL): the part of a fused
 * qkv matrix, its bias or their gradients that one of q, k, v is. */
static float *rows_at(float *p, size_t r, size_t n)
{
	return p ? p + r * n : NULL;
}

static const sl_param *param_of(const sl_trainer *tr, const sl_tensor *t)
{
	for (int i = 0; t && i < tr->n_params; i++)
		if (tr->params[i].t == t)
			return &tr->params[i];
	return NULL;
}

static float *grad_of(const sl_trainer *tr, const sl_tensor *t)
{
	const sl_param *p = param_of(tr, t);
	return p ? p->grad : NULL;
}

/* Gradients given away: whether t's goes through the shared scratch, as a
 * matrix the backward writes whole in one place does; a tied embedding
 * (head, then inputs) and low-rank factors (in pieces) keep their own. */
static bool streams(const sl_trainer *tr, const sl_tensor *t)
{
	if (t->n_dims < 2 || (t == tr->m->tok_embd && tr->m->output == t))
		return false;
	for (int i = 0; i < tr->n_lr; i++)
		if (t == tr->lr[i].w->lr_a || t == tr->lr[i].w->lr_b)
			return false;
	return true;
}

/* Gradients given away: the gradient of t, which the backward has just
 * finished, to grad_fn, and the scratch cleared for the next (a no-op
 * for one the trainer keeps until the backward ends). */
static void give_grad(const sl_trainer *tr, const sl_tensor *t)
{
	const sl_param *p = tr->grad_fn ? param_of(tr, t) : NULL;
	if (!p || p->grad != tr->gscratch)
		return;
	tr->grad_fn(tr->grad_ctx, t, p->grad, p->n);
	memset(p->grad, 0, p->n * sizeof *p->grad);
}

/* Gradients given away, at the backward's end: those kept until then. */
static void give_kept(sl_trainer *tr)
{
	if (!tr->grad_fn)
		return;
	for (int i = 0; i < tr->n_params; i++)
		if (tr->params[i].grad != tr->gscratch)
			tr->grad_fn(tr->grad_ctx, tr->params[i].t, tr->params[i].grad, tr->params[i].n);
	sl_trainer_zero_grad(tr);
}

/* Where the backward writes t's gradient: the gradient of its effective
 * weights when it heals (NULL when nothing learns from it). */
static float *grad_to(const sl_trainer *tr, const sl_tensor *t)
{
	const heal_mat *h = heal_of(tr, t);
	return h ? h->geff : grad_of(tr, t);
}

/* Where the parameters' gradients live: one flat buffer of them all (the
 * optimizer's moments at the same offsets); given away, that of the
 * kept ones and one scratch for the matrices, the largest's size (calloc:
 * its pages come as gradients fill them). */
static sl_status alloc_grads(sl_trainer *tr, sl_error *err)
{
	size_t big = 0;
	tr->n_grad = tr->n_weights;
	if (tr->grad_fn) {
		tr->n_grad = 0;
		for (int i = 0; i < tr->n_params; i++) {
			size_t n = tr->params[i].n;
			if (!streams(tr, tr->params[i].t))
				tr->n_grad += n;
			else if (n > big)
				big = n;
		}
		if (big && !(tr->gscratch = calloc(big, sizeof(float))))
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory for a gradient of %zu weights", big);
		size_t lazy = 0;
		for (int i = 0; i < tr->n_params; i++)
			if (tr->params[i].t->type != SL_DT_F32 && tr->params[i].n > lazy)
				lazy = tr->params[i].n;
		if (lazy && (!(tr->lazy = calloc(1, sizeof *tr->lazy)) ||
		             !(tr->lazy->data = sl_malloc_array(lazy, sizeof(float)))))
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory for a matrix of %zu weights in F32", lazy);
	}
	if (!(tr->grad = sl_malloc_array(tr->n_grad ? tr->n_grad : 1, sizeof(float))))
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the gradients of %zu weights", tr->n_grad);
	size_t at = 0;
	for (int i = 0; i < tr->n_params; i++) {
		sl_param *p = &tr->params[i];
		if (!tr->grad_fn)
			p->grad = tr->grad + p->offset;
		else if (streams(tr, p->t))
			p->grad = tr->gscratch;
		else {
			p->grad = tr->grad + at;
			at += p->n;
		}
	}
	return SL_OK;
}

sl_status sl_trainer_new(sl_model *m, const sl_train_kernels *K, int max_seqs, int seq_len,
                         const sl_trainer_opts *o, sl_trainer **out, sl_error *err)
{
	*out = NULL;
	const sl_config *c = &m->cfg;
	const bool ln = c->arch == SL_ARCH_GPT2;
	if (max_seqs < 1 || seq_len < 1 || (long)max_seqs * seq_len > (1L << 24))
		return sl_errorf(err, SL_ERR_ARG, "a batch of %d sequences of %d tokens is not possible", max_seqs,
		                 seq_len);
	if (m->pos_embd && seq_len > m->pos_embd->ne[1])
		return sl_errorf(err, SL_ERR_ARG, "%s: sequences of %d tokens exceed the model's %lld learned positions",
		                 m->path, seq_len, (long long)m->pos_embd->ne[1]);
	sl_trainer *tr = calloc(1, sizeof *tr);
	if (!tr)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	tr->m = m;
	tr->K = K;
	tr->max_seqs = max_seqs;
	tr->T = seq_len;
	tr->grad_fn = o ? o->grad_fn : NULL;
	tr->grad_ctx = o ? o->ctx : NULL;
	uint64_t rng = o && o->seed ? o->seed : 1;
	/* Three tensors of its own per matrix at most: an adapter's two and
	 * learned scales. */
	if (!(tr->owned = calloc((size_t)(3 * m->n_tensors), sizeof *tr->owned)))
		goto oom;
	sl_status st = add_param(tr, m->tok_embd, o, &rng, err);
	if (!st)
		st = add_param(tr, m->pos_embd, o, &rng, err);
	for (int il = 0; !st && il < c->n_layers; il++) {
		sl_layer *L = &m->layers[il];
		sl_tensor *ts[] = {L->attn_norm, L->attn_norm_b, L->wq, L->bq, L->wk, L->bk, L->wv, L->bv, L->wqkv,
		                   L->bqkv, L->wo, L->bo, L->ffn_norm, L->ffn_norm_b, L->w_gate, L->w_up, L->b_up,
		                   L->w_down, L->b_down};
		for (size_t i = 0; !st && i < sizeof ts / sizeof ts[0]; i++)
			st = add_param(tr, ts[i], o, &rng, err);
	}
	if (!st)
		st = add_param(tr, m->out_norm, o, &rng, err);
	if (!st)
		st = add_param(tr, m->out_norm_b, o, &rng, err);
	if (!st)
		st = add_param(tr, m->output, o, &rng, err);
	if (st)
		goto fail;
	if (!tr->n_params) {
		st = sl_errorf(err, SL_ERR_ARG, "nothing to train: every tensor is frozen and none has an adapter");
		goto fail;
	}
	if ((st = alloc_grads(tr, err)))
		goto fail;
	for (int i = 0; i < tr->n_heal; i++) {
		heal_mat *h = &tr->heal[i];
		size_t n = (size_t)h->rows * h->cols;
		h->grad = grad_of(tr, h->t);
		h->ga = h->a ? grad_of(tr, h->a) : NULL;
		h->gb = h->b ? grad_of(tr, h->b) : NULL;
		h->gsteps = h->steps ? grad_of(tr, h->steps) : NULL;
		if (!(h->eff = alloc_f(tr, n)) || ((h->grad || h->a || h->steps) && !(h->geff = alloc_f(tr, n))) ||
		    (h->a && h->spec.frozen && !(h->base = alloc_f(tr, n))))
			goto oom;
		if (h->geff)
			memset(h->geff, 0, n * sizeof *h->geff);
	}
	tr->g_tok_embd = grad_to(tr, m->tok_embd);
	tr->g_pos_embd = grad_to(tr, m->pos_embd);
	tr->g_out_norm = grad_to(tr, m->out_norm);
	tr->g_out_norm_b = grad_to(tr, m->out_norm_b);
	tr->g_output = grad_to(tr, m->output);

	const size_t N = (size_t)max_seqs * seq_len, D = (size_t)c->dim, V = (size_t)c->vocab_size;
	size_t q_max = 0, kv_max = 0, f_max = 0;
	tr->act = calloc((size_t)c->n_layers, sizeof *tr->act);
	tr->bg = calloc((size_t)c->n_layers, sizeof *tr->bg);
	if (!tr->act || !tr->bg)
		goto oom;
	for (int il = 0; il < c->n_layers; il++) {
		const sl_layer *L = &m->layers[il];
		size_t qd = (size_t)L->n_heads * c->head_dim, kvd = (size_t)L->n_kv_heads * c->head_dim,
		       F = (size_t)L->hidden_dim;
		q_max = qd > q_max ? qd : q_max;
		kv_max = kvd > kv_max ? kvd : kv_max;
		f_max = F > f_max ? F : f_max;
		block_act *a = &tr->act[il];
		if (!(a->x = alloc_f(tr, N * D)) || !(a->xn1 = alloc_f(tr, N * D)) || !(a->rstd1 = alloc_f(tr, N)) ||
		    !(a->q = alloc_f(tr, N * qd)) || !(a->k = alloc_f(tr, N * kvd)) || !(a->v = alloc_f(tr, N * kvd)) ||
		    !(a->att = alloc_f(tr, N * qd)) || !(a->lse = alloc_f(tr, N * L->n_heads)) ||
		    !(a->x1 = alloc_f(tr, N * D)) || !(a->xn2 = alloc_f(tr, N * D)) || !(a->rstd2 = alloc_f(tr, N)) ||
		    (L->w_gate && !(a->g = alloc_f(tr, N * F))) || !(a->u = alloc_f(tr, N * F)) ||
		    !(a->h = alloc_f(tr, N * F)) || (ln && (!(a->mean1 = alloc_f(tr, N)) || !(a->mean2 = alloc_f(tr, N)))))
			goto oom;
		block_grad *g = &tr->bg[il];
		*g = (block_grad){.attn_norm = grad_to(tr, L->attn_norm), .attn_norm_b = grad_to(tr, L->attn_norm_b),
		                  .wo = grad_to(tr, L->wo), .bo = grad_to(tr, L->bo), .ffn_norm = grad_to(tr, L->ffn_norm),
		                  .ffn_norm_b = grad_to(tr, L->ffn_norm_b), .w_gate = grad_to(tr, L->w_gate),
		                  .w_up = grad_to(tr, L->w_up), .b_up = grad_to(tr, L->b_up),
		                  .w_down = grad_to(tr, L->w_down), .b_down = grad_to(tr, L->b_down)};
		if (L->wqkv) {
			float *gw = grad_to(tr, L->wqkv), *gb = grad_to(tr, L->bqkv);
			g->wq = rows_at(gw, 0, D);
			g->wk = rows_at(gw, qd, D);
			g->wv = rows_at(gw, qd + kvd, D);
			g->bq = rows_at(gb, 0, 1);
			g->bk = rows_at(gb, qd, 1);
			g->bv = rows_at(gb, qd + kvd, 1);
		} else {
			g->wq = grad_to(tr, L->wq);
			g->wk = grad_to(tr, L->wk);
			g->wv = grad_to(tr, L->wv);
			g->bq = grad_to(tr, L->bq);
			g->bk = grad_to(tr, L->bk);
			g->bv = grad_to(tr, L->bv);
		}
	}
	if (!(tr->pos = sl_malloc_array(N, sizeof *tr->pos)))
		goto oom;
	for (size_t i = 0; i < N; i++)
		tr->pos[i] = (int32_t)(i % (size_t)seq_len);
	size_t r_max = 0;
	for (int i = 0; i < tr->n_lr; i++) {
		size_t r = (size_t)sl_tensor_rank(tr->lr[i].w);
		r_max = r > r_max ? r : r_max;
		if (!(tr->lr[i].mid = alloc_f(tr, N * r)) ||
		    (tr->lr[i].w == m->tok_embd && !(tr->lr[i].pick = alloc_f(tr, N * r))))
			goto oom;
	}
	if (r_max && !(tr->dmid = alloc_f(tr, N * r_max)))
		goto oom;
	if (!(tr->x_out = alloc_f(tr, N * D)) || !(tr->xnf = alloc_f(tr, N * D)) || !(tr->rstdf = alloc_f(tr, N)) ||
	    (ln && !(tr->meanf = alloc_f(tr, N))) ||
	    !(tr->logits = alloc_f(tr, (size_t)seq_len * V)) || !(tr->row_loss = alloc_f(tr, (size_t)seq_len)) ||
	    !(tr->dx = alloc_f(tr, N * D)) || !(tr->dxn = alloc_f(tr, N * D)) || !(tr->tmp = alloc_f(tr, N * D)) ||
	    !(tr->datt = alloc_f(tr, N * q_max)) || !(tr->dq = alloc_f(tr, N * q_max)) ||
	    !(tr->dk = alloc_f(tr, N * kv_max)) || !(tr->dv = alloc_f(tr, N * kv_max)) ||
	    !(tr->dh = alloc_f(tr, N * f_max)) || !(tr->dg = alloc_f(tr, N * f_max)) ||
	    !(tr->du = alloc_f(tr, N * f_max)))
		goto oom;
	sl_trainer_zero_grad(tr);
	*out = tr;
	return SL_OK;
oom:
	st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for training %s on %d x %d tokens", m->path, max_seqs,
	               seq_len);
fail:
	sl_trainer_free(tr);
	return st;
}

sl_model *sl_trainer_model(const sl_trainer *tr)
{
	return tr->m;
}

const sl_train_kernels *sl_trainer_kernels(const sl_trainer *tr)
{
	return tr->K;
}

int sl_trainer_seq_len(const sl_trainer *tr)
{
	return tr->T;
}

const sl_param *sl_trainer_params(const sl_trainer *tr, int *n)
{
	*n = tr->n_params;
	return tr->params;
}

size_t sl_trainer_n_weights(const sl_trainer *tr)
{
	return tr->n_weights;
}

bool sl_trainer_gives_grads(const sl_trainer *tr)
{
	return tr->grad_fn != NULL;
}

void sl_trainer_zero_grad(sl_trainer *tr)
{
	memset(tr->grad, 0, tr->n_grad * sizeof(float));
}

/* What the forward reads for t: its effective weights when it heals; a
 * matrix converted as it is used, in F32 until another is. */
static const float *eff_of(const sl_trainer *tr, const sl_tensor *t)
{
	const heal_mat *h = heal_of(tr, t);
	if (h || !t)
		return h ? h->eff : NULL;
	if (!tr->lazy || t->type == SL_DT_F32 || !param_of(tr, t))
		return t->data;
	if (tr->lazy->of != t) {
		sl_tensor_rows_to_f32(t, 0, sl_tensor_nrows(t), tr->lazy->data);
		tr->lazy->of = t;
	}
	return tr->lazy->data;
}

/* The effective weights of healing matrices [i0, i1), from the master
 * weights: pruned ones zero, through the grid (its steps the learned ones
 * where they learn), plus the adapter. */
static void heal_weights_range(sl_trainer *tr, int i0, int i1)
{
	for (int i = i0; i < i1; i++) {
		heal_mat *h = &tr->heal[i];
		if (h->ready)
			continue;
		size_t n = (size_t)h->rows * h->cols;
		float *w = h->t->data, *q = h->base ? h->base : h->eff;
		if (h->spec.mask)
			for (size_t k = 0; k < n; k++)
				if (h->spec.mask[k])
					w[k] = 0;
		if (!h->base_ready) {
			if (h->steps)
				sl_qgrid_set_scales(h->grid, h->steps->data);
			/* LSQ's gradients, inside included, come in heal_grads. */
			if (h->grid)
				sl_qgrid_apply(h->grid, w, q, h->steps ? NULL : h->inside);
			else if (h->spec.format)
				sl_roundtrip(h->type, w, q, h->rows, h->cols, NULL);
			else
				memcpy(q, w, n * sizeof *q);
			h->base_ready = h->base != NULL && !h->steps;
		}
		if (h->a) {
			if (q != h->eff)
				memcpy(h->eff, q, n * sizeof *q);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, h->rows, h->cols, h->spec.lora_rank, h->scale,
			            h->b->data, h->spec.lora_rank, h->a->data, h->cols, 1.0f, h->eff, h->cols);
		}
		h->ready = h->spec.frozen && !h->a && !h->steps;
	}
}

static void heal_weights_task(int i, void *tr)
{
	heal_weights_range(tr, i, i + 1);
}

/* Every healing matrix's effective weights, one matrix per task: each
 * matrix's own arithmetic, whatever the number of threads. */
static void heal_weights(sl_trainer *tr)
{
	sl_parallel_for(tr->n_heal, heal_weights_task, tr);
}

/* Carries the effective weights' gradients of healing matrices [i0, i1)
 * to what learns: the learned steps (LSQ), the master weights where the
 * quantization passed them and nothing was pruned (straight through), and
 * the adapter: dB += s dW A^T, dA += s B^T dW. */
static void heal_grads_range(sl_trainer *tr, int i0, int i1)
{
	for (int i = i0; i < i1; i++) {
		heal_mat *h = &tr->heal[i];
		if (!h->geff)
			continue;
		size_t n = (size_t)h->rows * h->cols;
		if (h->steps)
			sl_qgrid_scale_grads(h->grid, h->t->data, h->geff, h->lsq_scale, h->gsteps, h->inside);
		for (size_t k = 0; h->grad && k < n; k++)
			if ((!h->inside || h->inside[k]) && !(h->spec.mask && h->spec.mask[k]))
				h->grad[k] += h->geff[k];
		if (h->a) {
			int r = h->spec.lora_rank;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, h->rows, r, h->cols, h->scale, h->geff, h->cols,
			            h->a->data, h->cols, 1.0f, h->gb, r);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, h->cols, h->rows, h->scale, h->b->data, r,
			            h->geff, h->cols, 1.0f, h->ga, h->cols);
		}
		memset(h->geff, 0, n * sizeof *h->geff);
	}
}

static void heal_grads_task(int i, void *tr)
{
	heal_grads_range(tr, i, i + 1);
}

/* Every healing matrix's gradients, one matrix per task (each writes only
 * its own master, steps and adapter). */
static void heal_grads(sl_trainer *tr)
{
	sl_parallel_for(tr->n_heal, heal_grads_task, tr);
}

sl_status sl_trainer_finish(sl_trainer *tr, sl_error *err)
{
	(void)err;
	for (int i = 0; i < tr->n_heal; i++)
		tr->heal[i].ready = false;
	heal_weights(tr);
	for (int i = 0; i < tr->n_heal; i++) {
		heal_mat *h = &tr->heal[i];
		size_t n = (size_t)h->rows * h->cols;
		float *w = h->t->data;
		/* The adapter merges into the weights, pruned ones zero again,
		 * which round again; learned steps first round as the format
		 * stores them (w is scratch here). */
		for (size_t k = 0; h->spec.mask && k < n; k++)
			if (h->spec.mask[k])
				h->eff[k] = 0;
		if (h->steps) {
			sl_qgrid_round_scales(h->grid, h->eff, w);
			sl_qgrid_scales(h->grid, h->steps->data);
		}
		if (h->grid)
			sl_qgrid_apply(h->grid, h->eff, w, NULL);
		else if (h->spec.format)
			sl_roundtrip(h->type, h->eff, w, h->rows, h->cols, NULL);
		else
			memcpy(w, h->eff, n * sizeof *w);
		/* A grid's zero keeps the sign its dequantizer gives it; where
		 * zero is no level, pruned weights are zero all the same. */
		for (size_t k = 0; h->spec.mask && k < n; k++)
			if (h->spec.mask[k] && w[k] != 0)
				w[k] = 0;
		h->ready = false;
	}
	return SL_OK;
}

sl_status sl_trainer_effective(sl_trainer *tr, sl_model *dst, sl_error *err)
{
	if (dst->n_tensors != tr->m->n_tensors)
		return sl_errorf(err, SL_ERR_ARG, "the model to copy into has %d tensors, the trainer's %d", dst->n_tensors,
		                 tr->m->n_tensors);
	heal_weights(tr);
	for (int i = 0; i < tr->m->n_tensors; i++) {
		const sl_tensor *t = tr->m->tensors[i];
		sl_tensor *d = dst->tensors[i];
		if (t->lr_a && d->lr_a && !strcmp(d->name, t->name))
			continue; /* its factors are tensors of their own */
		if (t->type != SL_DT_F32 || d->type != SL_DT_F32 || d->nbytes != t->nbytes || strcmp(d->name, t->name))
			return sl_errorf(err, SL_ERR_ARG, "tensor %d: '%s' does not match the trainer's '%s'", i, d->name,
			                 t->name);
		memcpy(d->data, eff_of(tr, t), t->nbytes);
	}
	return SL_OK;
}

static const float *f32(const sl_tensor *t)
{
	return t ? t->data : NULL;
}

static void add_into(float *y, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a[i] + b[i];
}

/* The model's norm over N rows: LayerNorm with its bias for GPT-2 (the
 * mean kept), RMSNorm for the Llama family. */
static void norm(const sl_trainer *tr, float *y, float *mean, float *rstd, const float *x, const sl_tensor *w,
                 const sl_tensor *b, int N)
{
	const sl_config *c = &tr->m->cfg;
	if (c->arch == SL_ARCH_GPT2)
		tr->K->layernorm(y, mean, rstd, x, f32(w), f32(b), N, c->dim, c->norm_eps);
	else
		tr->K->rmsnorm(y, rstd, x, f32(w), N, c->dim, c->norm_eps);
}

static void norm_backward(const sl_trainer *tr, float *dx, float *gw, float *gb, const float *dy, const float *x,
                          const sl_tensor *w, const float *mean, const float *rstd, int N)
{
	const sl_config *c = &tr->m->cfg;
	if (c->arch == SL_ARCH_GPT2)
		tr->K->layernorm_backward(dx, gw, gb, dy, x, f32(w), mean, rstd, N, c->dim);
	else
		tr->K->rmsnorm_backward(dx, gw, dy, x, f32(w), rstd, N, c->dim);
}

/* The weights (from which row) and biases q, k and v are computed with:
 * their own, or the three row ranges of a fused qkv matrix (q, k, then v,
 * as forward.c splits it). */
static void qkv_of(const sl_trainer *tr, const sl_layer *L, const sl_tensor *w[3], size_t row[3],
                   const float *b[3])
{
	const size_t qd = (size_t)L->n_heads * tr->m->cfg.head_dim, kvd = (size_t)L->n_kv_heads * tr->m->cfg.head_dim;
	if (L->wqkv) {
		const float *bias = f32(L->bqkv);
		const size_t at[3] = {0, qd, qd + kvd};
		for (int i = 0; i < 3; i++) {
			w[i] = L->wqkv;
			row[i] = at[i];
			b[i] = bias ? bias + at[i] : NULL;
		}
		return;
	}
	const sl_tensor *ws[3] = {L->wq, L->wk, L->wv}, *bs[3] = {L->bq, L->bk, L->bv};
	for (int i = 0; i < 3; i++) {
		w[i] = ws[i];
		row[i] = 0;
		b[i] = f32(bs[i]);
	}
}

/* y = x W^T + b over N rows, W the rows [row0, row0 + n) of t (all of
 * them but for a fused qkv matrix's parts). A factored t = A B goes
 * through its rank: mid = x B^T (with t's first rows, kept for the
 * backward), then mid A^T. */
static void linear(const sl_trainer *tr, float *y, const float *x, const sl_tensor *t, size_t row0, int n,
                   const float *b, int N, int in)
{
	const lr_mat *f = lr_of(tr, t);
	if (!f) {
		tr->K->matmul(y, x, eff_of(tr, t) + row0 * (size_t)in, b, N, n, in);
		return;
	}
	const int r = sl_tensor_rank(t);
	if (row0 == 0)
		tr->K->matmul(f->mid, x, eff_of(tr, t->lr_b), NULL, N, r, in);
	tr->K->matmul(y, f->mid, eff_of(tr, t->lr_a) + row0 * (size_t)r, b, N, n, r);
}

/* linear's backward: dx += dy W and W's gradient into gw, or a factored
 * t's into its factors: A's rows from dy and mid, then, once its last
 * rows are done, B's and dx from the gradient of mid they all gave. */
static void linear_backward(const sl_trainer *tr, float *dx, float *gw, float *gb, const float *dy, const float *x,
                            const sl_tensor *t, size_t row0, int n, int N, int in)
{
	const lr_mat *f = lr_of(tr, t);
	if (!f) {
		tr->K->matmul_backward(dx, gw, gb, dy, x, eff_of(tr, t) + row0 * (size_t)in, N, n, in);
		return;
	}
	const int r = sl_tensor_rank(t);
	float *ga = grad_to(tr, t->lr_a);
	if (row0 == 0)
		memset(tr->dmid, 0, (size_t)N * r * sizeof *tr->dmid);
	tr->K->matmul_backward(tr->dmid, ga ? ga + row0 * (size_t)r : NULL, gb, dy, f->mid,
	                       eff_of(tr, t->lr_a) + row0 * (size_t)r, N, n, r);
	if (row0 + (size_t)n == (size_t)t->ne[1])
		tr->K->matmul_backward(dx, grad_to(tr, t->lr_b), NULL, tr->dmid, x, eff_of(tr, t->lr_b), N, r, in);
}

/* ---- forward --------------------------------------------------------- */

/* Block il of m (the student, or a teacher that computes as it does) on
 * a->x into x_next (which may be a->x). */
static void block_forward(sl_trainer *tr, const sl_model *m, int il, block_act *a, int B, float *x_next)
{
	const sl_train_kernels *K = tr->K;
	const sl_config *c = &m->cfg;
	const sl_layer *L = &m->layers[il];
	const int N = B * tr->T, D = c->dim, hd = c->head_dim, F = L->hidden_dim;
	const int qd = L->n_heads * hd, kvd = L->n_kv_heads * hd;
	const sl_tensor *w[3];
	size_t row[3];
	const float *b[3];
	qkv_of(tr, L, w, row, b);

	norm(tr, a->xn1, a->mean1, a->rstd1, a->x, L->attn_norm, L->attn_norm_b, N);
	linear(tr, a->q, a->xn1, w[0], row[0], qd, b[0], N, D);
	linear(tr, a->k, a->xn1, w[1], row[1], kvd, b[1], N, D);
	linear(tr, a->v, a->xn1, w[2], row[2], kvd, b[2], N, D);
	K->rope(a->q, B, tr->T, L->n_heads, hd, c->rope_dim, c->rope_theta, c->rope_style, false);
	K->rope(a->k, B, tr->T, L->n_kv_heads, hd, c->rope_dim, c->rope_theta, c->rope_style, false);
	K->attention(a->att, a->lse, a->q, a->k, a->v, B, tr->T, L->n_heads, L->n_kv_heads, hd);
	linear(tr, tr->tmp, a->att, L->wo, 0, D, f32(L->bo), N, qd);
	add_into(a->x1, a->x, tr->tmp, (size_t)N * D);

	norm(tr, a->xn2, a->mean2, a->rstd2, a->x1, L->ffn_norm, L->ffn_norm_b, N);
	linear(tr, a->u, a->xn2, L->w_up, 0, F, f32(L->b_up), N, D);
	if (L->w_gate) {
		linear(tr, a->g, a->xn2, L->w_gate, 0, F, NULL, N, D);
		K->swiglu(a->h, a->g, a->u, (size_t)N * F);
	} else {
		K->gelu(a->h, a->u, (size_t)N * F);
	}
	linear(tr, tr->tmp, a->h, L->w_down, 0, D, f32(L->b_down), N, F);
	add_into(x_next, a->x1, tr->tmp, (size_t)N * D);
}

/* ---- backward -------------------------------------------------------- */

/* On entry tr->dx holds the gradient of the block's output; on exit, of
 * its input. */
static void block_backward(sl_trainer *tr, int il, int B)
{
	const sl_train_kernels *K = tr->K;
	const sl_config *c = &tr->m->cfg;
	const sl_layer *L = &tr->m->layers[il];
	const block_act *a = &tr->act[il];
	const block_grad *g = &tr->bg[il];
	const int N = B * tr->T, D = c->dim, hd = c->head_dim, F = L->hidden_dim;
	const int qd = L->n_heads * hd, kvd = L->n_kv_heads * hd;
	const size_t nf = (size_t)N * F;

	const sl_tensor *w[3];
	size_t row[3];
	const float *b[3];
	qkv_of(tr, L, w, row, b);

	/* feed-forward: x_next = x1 + (silu(g) * u or gelu(u)) W_down^T */
	memset(tr->dh, 0, nf * sizeof(float));
	linear_backward(tr, tr->dh, g->w_down, g->b_down, tr->dx, a->h, L->w_down, 0, D, N, F);
	give_grad(tr, L->w_down);
	memset(tr->dxn, 0, (size_t)N * D * sizeof(float));
	if (L->w_gate) {
		K->swiglu_backward(tr->dg, tr->du, tr->dh, a->g, a->u, nf);
		linear_backward(tr, tr->dxn, g->w_gate, NULL, tr->dg, a->xn2, L->w_gate, 0, F, N, D);
		give_grad(tr, L->w_gate);
	} else {
		K->gelu_backward(tr->du, tr->dh, a->u, nf);
	}
	linear_backward(tr, tr->dxn, g->w_up, g->b_up, tr->du, a->xn2, L->w_up, 0, F, N, D);
	give_grad(tr, L->w_up);
	norm_backward(tr, tr->dx, g->ffn_norm, g->ffn_norm_b, tr->dxn, a->x1, L->ffn_norm, a->mean2, a->rstd2, N);

	/* attention: x1 = x + attention(rope(q), rope(k), v) W_o^T */
	memset(tr->datt, 0, (size_t)N * qd * sizeof(float));
	linear_backward(tr, tr->datt, g->wo, g->bo, tr->dx, a->att, L->wo, 0, D, N, qd);
	give_grad(tr, L->wo);
	K->attention_backward(tr->dq, tr->dk, tr->dv, tr->datt, a->q, a->k, a->v, a->att, a->lse, B, tr->T,
	                      L->n_heads, L->n_kv_heads, hd);
	K->rope(tr->dq, B, tr->T, L->n_heads, hd, c->rope_dim, c->rope_theta, c->rope_style, true);
	K->rope(tr->dk, B, tr->T, L->n_kv_heads, hd, c->rope_dim, c->rope_theta, c->rope_style, true);
	memset(tr->dxn, 0, (size_t)N * D * sizeof(float));
	/* a fused qkv matrix's gradient is done with its last rows, v's */
	linear_backward(tr, tr->dxn, g->wq, g->bq, tr->dq, a->xn1, w[0], row[0], qd, N, D);
	give_grad(tr, w[0] != w[1] ? w[0] : NULL);
	linear_backward(tr, tr->dxn, g->wk, g->bk, tr->dk, a->xn1, w[1], row[1], kvd, N, D);
	give_grad(tr, w[1] != w[2] ? w[1] : NULL);
	linear_backward(tr, tr->dxn, g->wv, g->bv, tr->dv, a->xn1, w[2], row[2], kvd, N, D);
	give_grad(tr, w[2]);
	norm_backward(tr, tr->dx, g->attn_norm, g->attn_norm_b, tr->dxn, a->x, L->attn_norm, a->mean1, a->rstd1, N);
}

/* Checks a batch of n_seqs sequences and counts the scored targets
 * (targets may be NULL: inputs only). */
static sl_status check_tokens(const sl_trainer *tr, const int32_t *inputs, const int32_t *targets, int n_seqs,
                              long *n_scored, sl_error *err)
{
	const int V = tr->m->cfg.vocab_size, T = tr->T, N = n_seqs * T;
	*n_scored = 0;
	if (n_seqs < 1 || n_seqs > tr->max_seqs)
		return sl_errorf(err, SL_ERR_ARG, "a batch of %d sequences (the trainer holds 1 to %d)", n_seqs,
		                 tr->max_seqs);
	for (int i = 0; i < N; i++) {
		if (inputs[i] < 0 || inputs[i] >= V)
			return sl_errorf(err, SL_ERR_ARG, "sequence %d, position %d: input token %d is outside the vocabulary (0..%d)",
			                 i / T, i % T, inputs[i], V - 1);
		if (!targets)
			continue;
		if (targets[i] < -1 || targets[i] >= V)
			return sl_errorf(err, SL_ERR_ARG,
			                 "sequence %d, position %d: target %d is neither a token (0..%d) nor -1 (not scored)",
			                 i / T, i % T, targets[i], V - 1);
		*n_scored += targets[i] >= 0;
	}
	return SL_OK;
}

/* The token (and learned position) embeddings of m for N rows of inputs
 * into x[N][dim]. */
static void embed_tokens(const sl_trainer *tr, float *x, const int32_t *inputs, int N);

static void embed(const sl_trainer *tr, const sl_model *m, const int32_t *inputs, int N, float *x)
{
	const int T = tr->T, D = m->cfg.dim;
	/* (the student's table first: a matrix converted as it is used holds
	 * the buffer until the next one) */
	const float *embd = m == tr->m ? NULL : eff_of(tr, m->tok_embd);
	if (m == tr->m)
		embed_tokens(tr, x, inputs, N);
	const float *pos = eff_of(tr, m->pos_embd);
	for (int i = 0; i < N; i++) {
		float *xi = x + (size_t)i * D;
		if (m != tr->m)
			memcpy(xi, embd + (size_t)inputs[i] * D, (size_t)D * sizeof(float));
		for (int j = 0; pos && j < D; j++)
			xi[j] += pos[(size_t)(i % T) * D + j];
	}
}

/* Whether the teacher computes as the trainer's forward does (the same
 * family and widths, float activations and cache), so that its blocks can
 * run on the whole batch at once through the training kernels. */
static bool teacher_batches(const sl_trainer *tr, const sl_model *t)
{
	const sl_config *a = &tr->m->cfg, *b = &t->cfg;
	if (t == tr->m || a->arch != b->arch || a->dim != b->dim || a->head_dim != b->head_dim ||
	    a->norm_eps != b->norm_eps || a->rope_theta != b->rope_theta || a->rope_style != b->rope_style ||
	    a->rope_dim != b->rope_dim || b->kv_type != SL_DT_F32 || !t->tok_embd || !t->output ||
	    (t->pos_embd && t->pos_embd->ne[1] < tr->T))
		return false;
	for (int il = 0; il < b->n_layers; il++)
		if (t->layers[il].act_int8)
			return false;
	return true;
}

/* Room for the teacher's batched forward: its weights in F32 (borrowed
 * where they are already) and one block's activations for the whole batch,
 * reused block after block. */
static sl_status teacher_batch_new(sl_trainer *tr, const sl_model *t, sl_error *err)
{
	bool f32_all = true;
	for (int i = 0; i < t->n_tensors; i++)
		f32_all &= t->tensors[i]->type == SL_DT_F32 && !t->tensors[i]->lr_a;
	sl_status st;
	if (!f32_all) {
		if ((st = sl_model_borrow(t, &tr->teacher_f32, err)))
			return st;
		for (int i = 0; i < t->n_tensors; i++) {
			sl_tensor *w = tr->teacher_f32->tensors[i];
			if ((w->type != SL_DT_F32 || w->lr_a) && (st = sl_tensor_to_f32(w, err)))
				return st;
		}
	}
	const sl_config *c = &t->cfg;
	const size_t N = (size_t)tr->max_seqs * tr->T, D = (size_t)c->dim;
	size_t qd = 0, kvd = 0, F = 0, H = 0;
	for (int il = 0; il < c->n_layers; il++) {
		const sl_layer *L = &t->layers[il];
		qd = (size_t)L->n_heads * c->head_dim > qd ? (size_t)L->n_heads * c->head_dim : qd;
		kvd = (size_t)L->n_kv_heads * c->head_dim > kvd ? (size_t)L->n_kv_heads * c->head_dim : kvd;
		F = (size_t)L->hidden_dim > F ? (size_t)L->hidden_dim : F;
		H = (size_t)L->n_heads > H ? (size_t)L->n_heads : H;
	}
	block_act *a = &tr->tact;
	*a = (block_act){0};
	if (!(a->x = alloc_f(tr, N * D)) || !(a->xn1 = alloc_f(tr, N * D)) || !(a->mean1 = alloc_f(tr, N)) ||
	    !(a->rstd1 = alloc_f(tr, N)) || !(a->q = alloc_f(tr, N * qd)) || !(a->k = alloc_f(tr, N * kvd)) ||
	    !(a->v = alloc_f(tr, N * kvd)) || !(a->att = alloc_f(tr, N * qd)) || !(a->lse = alloc_f(tr, N * H)) ||
	    !(a->x1 = alloc_f(tr, N * D)) || !(a->xn2 = alloc_f(tr, N * D)) || !(a->mean2 = alloc_f(tr, N)) ||
	    !(a->rstd2 = alloc_f(tr, N)) || !(a->g = alloc_f(tr, N * F)) || !(a->u = alloc_f(tr, N * F)) ||
	    !(a->h = alloc_f(tr, N * F)))
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the teacher's forward on %zu tokens", N);
	return SL_OK;
}

/* The teacher's logits for sequence b of a batch of B into tr->tlogits.
 * A teacher that batches runs its blocks once per batch (at b = 0) and
 * keeps its final norm's output (in tact.xn1) for the head, sequence by
 * sequence; any other runs the inference forward one sequence at a time. */
static sl_status run_teacher(sl_trainer *tr, const sl_model *teacher, const int32_t *inputs, int b, int B,
                             sl_error *err)
{
	if (teacher->cfg.vocab_size != tr->m->cfg.vocab_size)
		return sl_errorf(err, SL_ERR_ARG, "the teacher's vocabulary (%d) differs from the student's (%d)",
		                 teacher->cfg.vocab_size, tr->m->cfg.vocab_size);
	const int T = tr->T, D = teacher->cfg.dim, V = teacher->cfg.vocab_size;
	if (tr->teacher != teacher) {
		sl_state_free(tr->teacher_state);
		sl_model_free(tr->teacher_f32);
		tr->teacher_state = NULL;
		tr->teacher_f32 = NULL;
		tr->tact = (block_act){0};
		tr->teacher = NULL;
		if (!tr->tlogits && !(tr->tlogits = alloc_f(tr, (size_t)T * V)))
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the teacher's logits");
		sl_status st = teacher_batches(tr, teacher) ? teacher_batch_new(tr, teacher, err)
		                                           : sl_state_new(teacher, T, &tr->teacher_state, err);
		if (st)
			return sl_error_prefix(err, "teacher: ");
		tr->teacher = teacher;
	}
	if (tr->teacher_state) {
		sl_state_reset(tr->teacher_state);
		return sl_forward(tr->teacher_state, inputs + (size_t)b * T, T, tr->tlogits, 0, err);
	}
	const sl_model *m = tr->teacher_f32 ? tr->teacher_f32 : teacher;
	block_act *a = &tr->tact;
	if (b == 0) {
		const int N = B * T;
		embed(tr, m, inputs, N, a->x);
		for (int il = 0; il < m->cfg.n_layers; il++)
			block_forward(tr, m, il, a, B, a->x);
		norm(tr, a->xn1, a->mean1, a->rstd1, a->x, m->out_norm, m->out_norm_b, N);
	}
	tr->K->matmul(tr->tlogits, a->xn1 + (size_t)b * T * D, f32(m->output), NULL, T, V, D);
	return SL_OK;
}

/* The student's token embeddings of N inputs into x: the table's rows, or
 * for a factored table A B the rows of A the inputs pick (kept for the
 * backward) times B. */
static void embed_tokens(const sl_trainer *tr, float *x, const int32_t *inputs, int N)
{
	const sl_tensor *t = tr->m->tok_embd;
	const size_t D = (size_t)tr->m->cfg.dim;
	const lr_mat *f = lr_of(tr, t);
	if (!f) {
		const float *embd = eff_of(tr, t);
		for (int i = 0; i < N; i++)
			memcpy(x + (size_t)i * D, embd + (size_t)inputs[i] * D, D * sizeof(float));
		return;
	}
	const size_t r = (size_t)sl_tensor_rank(t);
	const float *A = eff_of(tr, t->lr_a);
	for (int i = 0; i < N; i++)
		memcpy(f->pick + (size_t)i * r, A + (size_t)inputs[i] * r, r * sizeof(float));
	/* x = pick B is the input gradient's product of a matmul by B */
	memset(x, 0, (size_t)N * D * sizeof(float));
	tr->K->matmul_backward(x, NULL, NULL, f->pick, NULL, eff_of(tr, t->lr_b), N, (int)r, (int)D);
}

/* embed's backward from dx: the table's gradient, or its factors':
 * the picked rows of A get dx B^T, and B gets pick^T dx. */
static void embed_backward(sl_trainer *tr, const float *dx, const int32_t *inputs, int N)
{
	const sl_tensor *t = tr->m->tok_embd;
	const int D = tr->m->cfg.dim;
	const lr_mat *f = lr_of(tr, t);
	if (!f) {
		if (tr->g_tok_embd)
			tr->K->embed_backward(tr->g_tok_embd, dx, inputs, N, D);
		return;
	}
	const int r = sl_tensor_rank(t);
	float *ga = grad_to(tr, t->lr_a), *gb = grad_to(tr, t->lr_b);
	if (ga) {
		tr->K->matmul(tr->dmid, dx, eff_of(tr, t->lr_b), NULL, N, r, D);
		tr->K->embed_backward(ga, tr->dmid, inputs, N, r);
	}
	if (gb)
		tr->K->matmul_backward(NULL, gb, NULL, f->pick, dx, NULL, N, r, D);
}

/* The forward up to the final norm (tr->xnf), keeping what the backward
 * needs. */
static void forward_blocks(sl_trainer *tr, const int32_t *inputs, int B)
{
	const sl_model *m = tr->m;
	const sl_config *c = &m->cfg;
	const int N = B * tr->T;
	heal_weights(tr);
	embed(tr, m, inputs, N, tr->act[0].x);
	for (int il = 0; il < c->n_layers; il++)
		block_forward(tr, m, il, &tr->act[il], B, il + 1 < c->n_layers ? tr->act[il + 1].x : tr->x_out);
	norm(tr, tr->xnf, tr->meanf, tr->rstdf, tr->x_out, m->out_norm, m->out_norm_b, N);
}

sl_status sl_trainer_logits(sl_trainer *tr, const int32_t *inputs, int n_seqs, float *logits, sl_error *err)
{
	const sl_config *c = &tr->m->cfg;
	const size_t T = (size_t)tr->T, D = (size_t)c->dim, V = (size_t)c->vocab_size;
	long scored;
	sl_status st = check_tokens(tr, inputs, NULL, n_seqs, &scored, err);
	if (st)
		return st;
	forward_blocks(tr, inputs, n_seqs);
	for (int b = 0; b < n_seqs; b++)
		linear(tr, logits + b * T * V, tr->xnf + b * T * D, tr->m->output, 0, (int)V, NULL, (int)T, (int)D);
	return SL_OK;
}

sl_status sl_trainer_backward(sl_trainer *tr, const int32_t *inputs, const int32_t *targets, int n_seqs,
                              const sl_loss *loss,
                              const sl_model *teacher, float grad_scale, double *mean_loss, long *n_scored,
                              sl_error *err)
{
	const sl_train_kernels *K = tr->K;
	const sl_model *m = tr->m;
	const sl_config *c = &m->cfg;
	const int T = tr->T, D = c->dim, V = c->vocab_size, B = n_seqs, N = B * T;
	*mean_loss = 0;
	if (n_scored)
		*n_scored = 0;
	bool kl = loss->kind != SL_LOSS_CE;
	if (kl && !teacher)
		return sl_errorf(err, SL_ERR_ARG, "a distillation loss needs a teacher model");
	if (kl && !(loss->temperature > 0 && loss->ce_weight >= 0 && loss->ce_weight <= 1))
		return sl_errorf(err, SL_ERR_ARG, "distillation needs a temperature > 0 and a ce_weight in [0, 1]");
	long scored;
	sl_status st = check_tokens(tr, inputs, targets, B, &scored, err);
	if (st || scored == 0)
		return st;
	forward_blocks(tr, inputs, B);

	/* head, loss and the head's backward, one sequence at a time so only
	 * T rows of logits are ever held */
	memset(tr->dxn, 0, (size_t)N * D * sizeof(float));
	double total = 0;
	float scale = grad_scale / (float)scored;
	for (int b = 0; b < B; b++) {
		const float *xr = tr->xnf + (size_t)b * T * D;
		linear(tr, tr->logits, xr, m->output, 0, V, NULL, T, D);
		if (kl && (st = run_teacher(tr, teacher, inputs, b, B, err)))
			return st;
		K->loss(tr->row_loss, tr->logits, tr->logits, kl ? tr->tlogits : NULL, targets + (size_t)b * T, T, V,
		        loss->kind, loss->temperature, loss->ce_weight, scale);
		for (int t = 0; t < T; t++)
			total += tr->row_loss[t];
		linear_backward(tr, tr->dxn + (size_t)b * T * D, tr->g_output, NULL, tr->logits, xr, m->output, 0, V, T, D);
	}
	give_grad(tr, m->output);
	memset(tr->dx, 0, (size_t)N * D * sizeof(float));
	norm_backward(tr, tr->dx, tr->g_out_norm, tr->g_out_norm_b, tr->dxn, tr->x_out, m->out_norm, tr->meanf,
	              tr->rstdf, N);
	for (int il = c->n_layers - 1; il >= 0; il--)
		block_backward(tr, il, B);
	embed_backward(tr, tr->dx, inputs, N);
	give_grad(tr, m->tok_embd);
	if (tr->g_pos_embd)
		K->embed_backward(tr->g_pos_embd, tr->dx, tr->pos, N, D);
	give_grad(tr, m->pos_embd);
	heal_grads(tr);
	give_kept(tr);
	*mean_loss = total / (double)scored;
	if (n_scored)
		*n_scored = scored;
	return SL_OK;
}
