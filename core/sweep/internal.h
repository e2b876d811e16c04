/* What the sweep's files share and nothing else sees: the sweep itself
 * with its rows and cells, what sweep.c takes from proxies.c (the Fisher
 * diagonal before the cells, a cell's proxies after it), and what runs
 * over many processes (mpi.c, launch.c) take from sweep.c. */
#ifndef SL_SWEEP_INTERNAL_H
#define SL_SWEEP_INTERNAL_H

#include <pthread.h>

#include "sweep.h"

typedef struct {
	char name[SL_NAME_MAX];
	int block;        /* -1: token_embd or output (see start) */
	int start;        /* the block a cell recomputes from; -1 = from the tokens */
	int first_mod;    /* the row's modules: mods[first_mod .. first_mod + n_mods) */
	int n_mods;
	double params;
} sweep_row;

struct sl_sweep {
	const sl_model *m;
	sl_sweep_option *opts;
	int n_opts;
	sl_sweep_unit unit;
	sl_module *mods;
	int n_mods;
	size_t *fisher_off;      /* per module, into fisher */
	float *fisher;           /* mean squared gradient per weight, or NULL */
	char fisher_note[160];
	sweep_row *rows;
	int n_rows;
	sl_sweep_cell *cells;    /* n_rows x n_opts */
	char text_path[4096];
	int n_ctx, n_win, first, per, calib_tokens;
	uint64_t seed;
	int32_t *wins;           /* n_win windows of n_ctx tokens */
	float *hidden;           /* (n_layers + 1) x n_win x n_ctx x dim */
	float *base_logits;      /* n_win x (n_ctx - first) x vocab */
	double base_ppl;
	sl_calib *own_calib;
	const sl_calib *calib;
	uint64_t model_hash;
	int released;            /* base blocks [0, released) no cell to come reads (-1: none yet) */
	pthread_mutex_t mu;
};

static inline sl_sweep_cell *cell_of(const sl_sweep *sw, int row, int col)
{
	return &sw->cells[(size_t)row * sw->n_opts + col];
}

/* The empirical Fisher diagonal into sw->fisher, or a note in
 * sw->fisher_note saying why there is none (proxies.c). */
sl_status sl_sweep_fisher_diag(sl_sweep *sw, const sl_sweep_opts *o, sl_error *err);
/* A row's proxies (SL_PROXY_*) when repl replaces its modules' weights. */
void sl_sweep_proxies(const sl_sweep *sw, const sweep_row *row, const sl_tensor *repl, double *out);

/* Measures one cell into c: its figures, or a failed cell that says why
 * (done, so a resumed sweep does not stumble on it again); SL_ERR_CANCELLED
 * when p was cancelled midway. */
sl_status sl_sweep_measure_cell(const sl_sweep *sw, int row, int col, sl_sweep_cell *c, const sl_progress *p);
/* Keeps a finished cell, measured here or elsewhere: stores it, reports
 * progress and passes it to on_cell, all under the sweep's lock. */
void sl_sweep_keep(sl_sweep *sw, int row, int col, const sl_sweep_cell *c, sl_sweep_cell_fn on_cell, void *ctx,
                   const sl_progress *p);
/* How a run ends: SL_ERR_CANCELLED saying how far it got when p was
 * cancelled, else SL_OK. */
sl_status sl_sweep_stopped(const sl_sweep *sw, const sl_progress *p, sl_error *err);

#endif
