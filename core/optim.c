/* AdamW, the learning-rate schedule and the training step. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

sl_status sl_adamw_init(sl_adamw *a, size_t n, sl_error *err)
{
	memset(a, 0, sizeof *a);
	a->m = sl_calloc(n ? n : 1, sizeof(float));
	a->v = sl_calloc(n ? n : 1, sizeof(float));
	if (!a->m || !a->v) {
		sl_adamw_free(a);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the optimizer's moments of %zu weights", n);
	}
	a->n = n;
	return SL_OK;
}

void sl_adamw_free(sl_adamw *a)
{
	free(a->m);
	free(a->v);
	memset(a, 0, sizeof *a);
}

sl_status sl_adamw_check(const sl_adamw_opts *o, sl_error *err)
{
	if (!(o->lr > 0 && o->lr < 10))
		return sl_errorf(err, SL_ERR_ARG, "lr %g is not in (0, 10)", o->lr);
	if (!(o->min_lr >= 0 && o->min_lr <= o->lr))
		return sl_errorf(err, SL_ERR_ARG, "min_lr %g is not in [0, lr = %g]", o->min_lr, o->lr);
	if (o->total < 1 || o->warmup < 0 || o->warmup > o->total)
		return sl_errorf(err, SL_ERR_ARG, "warmup %lld must lie within the %lld steps", (long long)o->warmup,
		                 (long long)o->total);
	if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1))
		return sl_errorf(err, SL_ERR_ARG, "beta1 %g and beta2 %g must lie in [0, 1)", o->beta1, o->beta2);
	if (!(o->eps > 0 && o->eps < 1))
		return sl_errorf(err, SL_ERR_ARG, "eps %g is not in (0, 1)", o->eps);
	if (!(o->weight_decay >= 0 && o->weight_decay < 10))
		return sl_errorf(err, SL_ERR_ARG, "weight_decay %g is not in [0, 10)", o->weight_decay);
	if (!(o->clip >= 0 && isfinite(o->clip)))
		return sl_errorf(err, SL_ERR_ARG, "clip %g must be 0 (off) or positive", o->clip);
	return SL_OK;
}

float sl_lr_at(const sl_adamw_opts *o, int64_t step)
{
	if (step < o->warmup)
		return o->lr * (float)(step + 1) / (float)o->warmup;
	int64_t span = o->total - o->warmup;
	double progress = span > 0 ? (double)(step - o->warmup) / (double)span : 1.0;
	if (progress > 1)
		progress = 1;
	return (float)(o->min_lr + 0.5 * (o->lr - o->min_lr) * (1.0 + cos(M_PI * progress)));
}

sl_status sl_train_step(sl_trainer *tr, sl_adamw *a, const sl_adamw_opts *o, const int32_t *inputs,
                        const int32_t *targets, int n_micro, int n_seqs, const sl_loss *loss,
                        const sl_model *teacher, sl_step_info *info, sl_error *err)
{
	memset(info, 0, sizeof *info);
	if (sl_trainer_gives_grads(tr))
		return sl_errorf(err, SL_ERR_ARG, "a trainer that gives its gradients away cannot step");
	if (a->n != sl_trainer_n_weights(tr))
		return sl_errorf(err, SL_ERR_ARG, "the optimizer holds %zu weights, the model %zu", a->n,
		                 sl_trainer_n_weights(tr));
	if (n_micro < 1)
		return sl_errorf(err, SL_ERR_ARG, "a step needs at least one micro-batch");
	const sl_train_kernels *K = sl_trainer_kernels(tr);
	const size_t per = (size_t)n_seqs * sl_trainer_seq_len(tr);
	sl_trainer_zero_grad(tr);
	double sum = 0;
	for (int i = 0; i < n_micro; i++) {
		double l;
		long n;
		sl_status st = sl_trainer_backward(tr, inputs + i * per, targets + i * per, n_seqs, loss, teacher,
		                                   1.0f / (float)n_micro, &l, &n, err);
		if (st)
			return st;
		sum += l;
		info->tokens += n;
	}
	info->loss = sum / n_micro;
	int n_params;
	const sl_param *p = sl_trainer_params(tr, &n_params);
	double ss = 0;
	for (int i = 0; i < n_params; i++)
		ss += K->sumsq(p[i].grad, p[i].n);
	info->grad_norm = sqrt(ss);
	if (!isfinite(info->grad_norm))
		return sl_errorf(err, SL_ERR_ARG,
		                 "step %lld: the gradient is not finite (loss %g); lower the learning rate",
		                 (long long)a->step + 1, info->loss);
	float scale = o->clip > 0 && info->grad_norm > o->clip ? (float)(o->clip / info->grad_norm) : 1.0f;
	info->lr = sl_lr_at(o, a->step);
	a->step++;
	for (int i = 0; i < n_params; i++)
		K->adamw(p[i].t->data, p[i].grad, a->m + p[i].offset, a->v + p[i].offset, p[i].n, scale, info->lr,
		         o->beta1, o->beta2, o->eps, p[i].decay ? o->weight_decay : 0.0f, a->step);
	return SL_OK;
}
