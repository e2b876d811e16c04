/* A training run as a job: a JSON configuration (model shape or a model to
 * start from, tokenizer, data, schedule, loss, seed, outputs), and the run
 * itself with progress, cancellation, periodic evaluation and checkpoints,
 * resumable exactly. `slimlab train` and the workbench both run it. The
 * configuration is documented in slimlab(1). */
#ifndef SL_TRAIN_RUN_H
#define SL_TRAIN_RUN_H

#include "optim.h"
#include "progress.h"

#define SL_PATH_MAX 4096

typedef struct {
	char path[SL_PATH_MAX];      /* the configuration file (relative paths start beside it) */
	uint64_t seed;
	/* the model: one to start from, or a fresh one of this shape */
	char init[SL_PATH_MAX];
	sl_config shape;             /* dim, hidden_dim, n_layers, n_heads, n_kv_heads, max_seq_len, ... */
	bool tied;
	float init_std;
	/* the tokenizer of a fresh model: a vocabulary file, or trained */
	char tokenizer[SL_PATH_MAX];
	int vocab_size;
	/* data */
	char train_text[SL_PATH_MAX], val_text[SL_PATH_MAX];
	/* schedule */
	int batch, seq_len, accum; /* seq_len 0: the model's context, at most 256 */
	sl_adamw_opts opt;
	sl_loss loss;
	char teacher[SL_PATH_MAX];
	/* evaluation, checkpoints and outputs */
	int eval_every, eval_chunks;
	char checkpoint[SL_PATH_MAX];
	int checkpoint_every;
	char output[SL_PATH_MAX], log[SL_PATH_MAX], name[128];
	int out_type;                /* SL_DT_F32 or SL_DT_F16 */
	int threads;
} sl_train_config;

/* Parses a configuration; unknown keys, wrong types and values out of
 * range are errors naming the key and name (the file, for messages).
 * base_dir resolves relative paths. */
sl_status sl_train_config_parse(const char *json, size_t len, const char *name, const char *base_dir,
                                sl_train_config *c, sl_error *err);
sl_status sl_train_config_load(const char *path, sl_train_config *c, sl_error *err);

/* n_seqs windows of T tokens at random places in toks (n of them, at
 * least T + 1), drawn from *rng. With a BOS (bos >= 0) each window starts
 * with it, as evaluation windows do: BOS, then T - 1 tokens of text as
 * inputs, and the T tokens that follow BOS as targets. in and tg hold
 * n_seqs * T tokens. */
void sl_train_windows(const int32_t *toks, size_t n, int bos, int n_seqs, int T, uint64_t *rng, int32_t *in,
                      int32_t *tg);
/* The tokens of the text file at path (BOS first when bos). */
sl_status sl_train_encode_file(const struct sl_tokenizer *tok, const char *path, bool bos, int32_t **ids,
                               size_t *n, sl_error *err);

/* What the run tells its caller after each step. */
typedef enum {
	SL_TRAIN_NOTE,       /* a stage finished; note says which */
	SL_TRAIN_STEP,       /* an update was applied */
	SL_TRAIN_EVAL,       /* validation loss measured (note "final" at the end) */
	SL_TRAIN_CHECKPOINT, /* note names the file */
	SL_TRAIN_DONE,       /* note names the model written */
} sl_train_event;

typedef struct {
	sl_train_event event;
	int64_t step, steps;      /* updates done, and in the run */
	double loss;              /* this step's training loss */
	double grad_norm;
	float lr;
	double tokens_per_s;      /* over this session */
	double elapsed_s, eta_s;
	double val_loss, val_ppl; /* for SL_TRAIN_EVAL and SL_TRAIN_DONE */
	const char *note;         /* what happened, in words ("tokenizer: 4096 pieces") */
} sl_train_report;

typedef struct {
	bool resume;              /* continue from the checkpoint when it exists */
	void (*on_report)(void *ctx, const sl_train_report *r);
	void *ctx;
	const sl_progress *progress; /* fraction, stage, and the cancel flag */
} sl_train_run_opts;

/* Runs c. On cancellation a checkpoint is written first (when the config
 * names one) and SL_ERR_CANCELLED returned; a run resumed from it goes on
 * exactly as if it had not stopped. A checkpoint already there is never
 * overwritten by a fresh run: resume from it or remove it. */
sl_status sl_train_run(const sl_train_config *c, const sl_train_run_opts *o, sl_error *err);

#endif
