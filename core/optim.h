/* The optimizer: AdamW with decoupled weight decay, a learning rate that
 * warms up linearly and decays on a cosine, clipping of the global
 * gradient norm, and the training step that accumulates micro-batches
 * and applies one update. */
#ifndef SL_OPTIM_H
#define SL_OPTIM_H

#include "train.h"

typedef struct {
	float lr;           /* peak learning rate */
	float min_lr;       /* where the cosine ends */
	int64_t warmup;     /* updates of linear warm-up from lr / warmup to lr */
	int64_t total;      /* updates in the run: the cosine spans warmup .. total */
	float beta1, beta2, eps;
	float weight_decay; /* decoupled, on matrices only */
	float clip;         /* largest global gradient norm; 0 = no clipping */
} sl_adamw_opts;

/* The optimizer's state: both moments of every weight, in the trainer's
 * flat order, and the number of updates applied. */
typedef struct {
	size_t n;
	float *m, *v;
	int64_t step;
} sl_adamw;

sl_status sl_adamw_init(sl_adamw *a, size_t n, sl_error *err);
void sl_adamw_free(sl_adamw *a);
/* Checks the options, naming the first that is out of range. */
sl_status sl_adamw_check(const sl_adamw_opts *o, sl_error *err);
/* The learning rate of update number step (0-based). */
float sl_lr_at(const sl_adamw_opts *o, int64_t step);

typedef struct {
	double loss;      /* mean over the step's scored targets */
	double grad_norm; /* before clipping */
	float lr;
	long tokens;      /* targets scored */
} sl_step_info;

/* One update: zeroes the gradients, runs n_micro micro-batches of n_seqs
 * sequences (inputs and targets hold them one after another, each
 * [n_seqs][seq_len] as sl_trainer_backward takes them), averages their
 * gradients, clips the global norm and applies AdamW at the scheduled
 * learning rate. */
sl_status sl_train_step(sl_trainer *tr, sl_adamw *a, const sl_adamw_opts *o, const int32_t *inputs,
                        const int32_t *targets, int n_micro, int n_seqs, const sl_loss *loss,
                        const sl_model *teacher, sl_step_info *info, sl_error *err);

#endif
