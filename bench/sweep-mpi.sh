#!/bin/sh
# bench/sweep-mpi.sh: a sensitivity sweep's wall time on one MPI rank and on
# two, on this machine's cores and no more (1 rank x C threads against 2
# ranks x C/2 threads, C the cores), with the same model, options and
# settings, the cells of both compared (they must be equal), then
# bench/sweep-cell for the cost of a cell on large shapes and the estimate
# for a 7B model on many machines. Each run's time is given whole and split
# where the first line of --stream arrives: before it, loading the model
# and computing the base model's caches (every rank does it); after it,
# the cells.
# Usage: bench/sweep-mpi.sh [MODEL] [OPTIONS] (from the source tree, after
# make and make bench; default the workshop model with
# q8_0,q4_0,int4-g32,sparse-2:4 on 8 windows of 128 tokens).
set -u
model=${1:-models/workshop.gguf}
options=${2:-q8_0,q4_0,int4-g32,sparse-2:4}
cores=$(nproc)
half=$((cores / 2))
[ "$half" -ge 1 ] || half=1
command -v mpirun >/dev/null 2>&1 || { echo "mpirun is not on PATH (Debian: openmpi-bin)"; exit 1; }
./slimlab --version | grep -q '^mpi: *built' || { echo "./slimlab was built without MPI support"; exit 1; }
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }

# run NAME RANKS THREADS: one timed sweep; its cells (row, column, KL) into $tmp/NAME.
run() {
	t0=$(now)
	mpirun -n "$2" --bind-to none ./slimlab sensitivity "$model" --options "$options" --ctx 128 --windows 8 \
		--threads "$3" --stream 2>"$tmp/$1.err" | {
		first=
		while read -r line; do
			[ -n "$first" ] || first=$(now)
			echo "$line"
		done >"$tmp/$1.lines"
		echo "${first:-0} $(now)" >"$tmp/$1.times"
	}
	read -r first last <"$tmp/$1.times"
	sed -n 's/.*"row":\([0-9]*\),"col":\([0-9]*\),.*"kl":\([^,]*\),.*/\1 \2 \3/p' "$tmp/$1.lines" | sort >"$tmp/$1"
	n=$(wc -l <"$tmp/$1")
	awk -v t0="$t0" -v a="$first" -v b="$last" -v n="$n" -v r="$2" -v t="$3" 'BEGIN {
		printf "%d rank%s x %d thread%s: %d cells in %.2f s (%.2f s loading and caching, %.2f s of cells)\n",
			r, (r > 1 ? "s" : ""), t, (t > 1 ? "s" : ""), n, b - t0, a - t0, b - a }'
}

echo "model $model, options $options, 8 windows of 128 tokens, $cores cores"
# A first run fills the calibration cache both timed runs then read.
./slimlab sensitivity "$model" --options "$options" --ctx 128 --windows 1 >/dev/null 2>&1
run one 1 "$cores"
run two 2 "$half"
if cmp -s "$tmp/one" "$tmp/two" && [ -s "$tmp/one" ]; then
	echo "the cells of both runs are equal"
else
	echo "the cells differ:"
	diff "$tmp/one" "$tmp/two" | head
	cat "$tmp/one.err" "$tmp/two.err"
	exit 1
fi
[ -x bench/sweep-cell ] && bench/sweep-cell
