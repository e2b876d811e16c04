/* Training checkpoints: one GGUF file holding the model (loadable as a
 * model, with its vocabulary), both AdamW moments of every weight
 * (tensors adam.m.NAME and adam.v.NAME) and the state a run needs to
 * continue exactly where it stopped. Written atomically; read with every
 * name, type and shape checked. Weights that train outside the model
 * (adapters) are stored beside it under their own names. */
#ifndef SL_CHECKPOINT_H
#define SL_CHECKPOINT_H

#include "optim.h"

#define SL_CHECKPOINT_VERSION 1

typedef struct {
	uint64_t rng;        /* the batch sampler's generator */
	char *identity;      /* settings a resumed run must share (JSON), malloc'ed */
	uint32_t data_tokens, data_hash; /* the training tokens it was trained on */
	float *loss;         /* training loss of every step so far (opt.step of them) */
	float *val;          /* (step, validation loss) pairs */
	int64_t n_val;
} sl_train_state;

void sl_train_state_free(sl_train_state *s);

/* Writes tr's model, opt and s to path. */
sl_status sl_checkpoint_save(const char *path, const sl_trainer *tr, const sl_adamw *opt,
                             const sl_train_state *s, sl_error *err);
/* Reads the optimizer and state of the checkpoint at path into opt (sized
 * for tr) and s. The model comes from the same file through sl_model_load
 * first; this checks that tr trains exactly the tensors the file holds. */
sl_status sl_checkpoint_read(const char *path, const sl_trainer *tr, sl_adamw *opt, sl_train_state *s,
                             sl_error *err);

/* Copies every weight tr trains (adapters included) from the checkpoint
 * at path, by name, each checked for shape and finite values: resuming a
 * run whose model is rebuilt rather than loaded (healing). */
sl_status sl_checkpoint_read_weights(const char *path, sl_trainer *tr, sl_error *err);

#endif
