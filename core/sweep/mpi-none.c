/* Sweeps over MPI ranks when slimlab was built without MPI: started by
 * mpirun, it says so instead of sweeping everything once per rank. */
#include "mpi.h"

sl_status sl_mpi_init(int *rank, int *size, sl_error *err)
{
	*rank = 0;
	*size = 1;
	return sl_errorf(err, SL_ERR_ARG,
	                 "MPI support was not built into this slimlab, so under mpirun every rank would sweep "
	                 "everything alone: configure it --with-mpi (Debian: libopenmpi-dev), or run it without mpirun");
}

void sl_mpi_finalize(void)
{
}

sl_status sl_sweep_run_mpi(sl_sweep *sw, const sl_error *prep, sl_sweep_cell_fn on_cell, sl_sweep_note_fn note,
                           void *ctx, const sl_progress *p, sl_error *err)
{
	int rank, size;
	return sl_mpi_init(&rank, &size, err);
}
