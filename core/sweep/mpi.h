/* Sweeps over many processes. Under mpirun every rank loads the model and
 * prepares the same sweep; rank 0 hands the cells out from one queue as
 * ranks become free, measures some itself, and gathers them as they
 * stream in, so the figures are those one process gives, bit for bit (a
 * cell is measured the same way wherever it runs). A rank that stops
 * answering has its cells handed to the others. mpi.c is built when
 * configure finds Open MPI, mpi-none.c (which says so) when not; stream.c
 * holds what needs no MPI: how a process knows a launcher started it, and
 * the stream of cells rank 0 writes for a parent process (the workbench's
 * :sweep --ranks). */
#ifndef SL_SWEEP_MPI_H
#define SL_SWEEP_MPI_H

#include "sweep.h"

/* How many processes a launcher (mpirun, srun) started this one among, and
 * its rank, read from the environment: 1 and rank 0 when not launched so. */
int sl_mpi_world(int *rank);

/* Joins the MPI world; SL_ERR_ARG saying so when MPI support was not built. */
sl_status sl_mpi_init(int *rank, int *size, sl_error *err);
/* Leaves it, once every rank is done, unless a rank died (Open MPI would
 * wait for it); not after a cancelled run either: the others may be gone. */
void sl_mpi_finalize(void);

/* Said along the way: a rank that could not prepare the sweep, runs
 * another build or computes another base, or was taken for dead. */
typedef void (*sl_sweep_note_fn)(void *ctx, const char *msg);

/* Every rank calls this with the sweep it prepared, or with NULL and prep
 * saying why it could not (the others go on without it). Rank 0 gathers
 * every cell into its sweep (on_cell sees each, from its threads) and
 * returns when none is left; the other ranks measure what rank 0 sends
 * them and return then too. A rank not heard from for SLIMLAB_MPI_TIMEOUT
 * seconds (default 30; ranks say they are alive every second) is taken
 * for dead and its cells go to the others; mpirun keeps the other ranks
 * running after one dies only when started with --enable-recovery, and
 * otherwise stops them all: rank 0 takes that (SIGTERM) as a cancel,
 * which keeps every finished cell. SLIMLAB_MPI_TEST_DIE=R, a testing
 * hook, makes rank R kill itself (SIGKILL) once it has sent its first cell. */
sl_status sl_sweep_run_mpi(sl_sweep *sw, const sl_error *prep, sl_sweep_cell_fn on_cell, sl_sweep_note_fn note,
                           void *ctx, const sl_progress *p, sl_error *err);

/* The stream, one JSON object a line: first the sweep's shape,
 * {"slimlab_stream":1,"model_hash":H,"rows":R,"cols":C,"cell_bytes":B},
 * then a line per finished cell, {"row":R,"col":C,"name":N,"option":O,
 * "kl":KL,"cell":HEX}, HEX being the sl_sweep_cell as this build lays it
 * out, so every field travels, those added later too (both ends are the
 * same slimlab; KL is there for people and scripts). NULL when out of
 * memory. */
char *sl_sweep_stream_header(const sl_sweep *sw);
char *sl_sweep_stream_cell(const sl_sweep *sw, int row, int col);
/* Reads one line of the stream into sw: checks a header against sw, keeps
 * a cell (on_cell sees it unless sw had it already). */
sl_status sl_sweep_stream_take(sl_sweep *sw, const char *line, sl_sweep_cell_fn on_cell, void *ctx,
                               const sl_progress *p, sl_error *err);
/* After the stream ended: SL_ERR_CANCELLED saying how far the sweep got
 * when p was cancelled, else SL_OK. */
sl_status sl_sweep_stream_end(const sl_sweep *sw, const sl_progress *p, sl_error *err);

#endif
