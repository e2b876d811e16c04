#!/bin/sh
# Sensitivity sweeps over MPI ranks (mpirun --oversubscribe, small
# settings): the cells of three ranks are those of one process, to the
# last digit, on stories260K and on the workshop model, and so is the
# recipe autorecipe picks; a rank that dies after its first cell has its
# cells measured by the others (mpirun --enable-recovery), or, when mpirun
# stops the run, is named, the --save file holds every finished cell and
# --resume finishes the rest; the workbench's :sweep --ranks streams the
# same cells into its heatmap, says so when mpirun is missing, and Esc
# stops every rank. Built without MPI, slimlab under mpirun says so.
srcdir=${SL_SRCDIR:-.}
builddir=${SL_BUILDDIR:-.}
fixtures=${SL_FIXTURES:-$srcdir/../shared/fixtures}
slimlab=$builddir/slimlab
small=$fixtures/models/stories260K.gguf
workshop=$srcdir/models/workshop.gguf

[ -r "$small" ] || { echo "SKIP: fixture $small is absent (set SL_FIXTURES)"; exit 77; }
[ -x "$slimlab" ] || { echo "FAIL: $slimlab is not built"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
sweep_args="--options q8_0,q4_0,sparse-2:4 --windows 2 --ctx 64 --calib-tokens 512"

if ! "$slimlab" --version | grep -q '^mpi: *built'; then
	# What a rank of a slimlab without MPI says (mpirun sets these).
	OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$slimlab" sensitivity "$small" $sweep_args \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq 1 ] && grep -q "MPI support was not built" "$tmp/err" ||
		{ echo "FAIL: a slimlab without MPI under mpirun did not say so: $rc: $(cat "$tmp/err")"; exit 1; }
	echo "SKIP: slimlab was built without MPI support (it says so under mpirun)"
	exit 77
fi
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun is not on PATH (tools/bootstrap installs openmpi-bin)"; exit 77; }

# mpirun refuses root unless told, and more ranks than cores unless told.
# Under AddressSanitizer, Open MPI's components leak at exit from modules
# already unloaded, which no suppression can name: leaks are looked for in
# the runs without mpirun only.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export SLIMLAB_DATA="$srcdir"
no_leaks="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpi() { ASAN_OPTIONS=$no_leaks mpirun --oversubscribe --bind-to none "$@"; }

# cells FILE: a sweep's JSON without the seconds each cell took.
cells() { grep -v '"seconds":' "$1"; }
same_cells() { # A B WHAT
	cells "$1" >"$tmp/a.cells"
	cells "$2" >"$tmp/b.cells"
	cmp -s "$tmp/a.cells" "$tmp/b.cells" || {
		fail "$3: the cells differ from one process's"
		diff "$tmp/a.cells" "$tmp/b.cells" | head -n 10
	}
}
n_cells() { grep -c '"kl":' "$1"; }

. "$srcdir/tests/light.sh"
models="$small $workshop"
if [ -n "$light" ]; then
	models=$small
	light_note "three ranks against one process on stories260K only (the workshop model's sweeps take minutes on this path; the normal build compares them)"
fi

echo "== three ranks measure what one process measures"
for model in $models; do
	name=$(basename "$model")
	args=$sweep_args
	[ "$model" = "$workshop" ] && args="--options q8_0,q4_0 --windows 2 --ctx 64 --calib-tokens 512"
	"$slimlab" sensitivity "$model" $args --json >"$tmp/one.json" 2>"$tmp/err" || fail "$name, one process: $(cat "$tmp/err")"
	mpi -n 3 "$slimlab" sensitivity "$model" $args --json --threads 1 >"$tmp/three.json" 2>"$tmp/err" ||
		fail "$name, three ranks: $(cat "$tmp/err")"
	[ "$(n_cells "$tmp/one.json")" -gt 40 ] || fail "$name: too few cells in one process's sweep"
	same_cells "$tmp/one.json" "$tmp/three.json" "$name on three ranks"
	[ "$model" = "$small" ] && cp "$tmp/one.json" "$tmp/ref.json"
done

echo "== autorecipe's sweep on two ranks picks the same recipe"
"$slimlab" autorecipe "$small" $sweep_args --budget 7bpw --out "$tmp/r1.json" --json >"$tmp/a1" 2>"$tmp/err" ||
	fail "autorecipe: $(cat "$tmp/err")"
mpi -n 2 "$slimlab" autorecipe "$small" $sweep_args --budget 7bpw --out "$tmp/r2.json" --json --threads 1 \
	>"$tmp/a2" 2>"$tmp/err" || fail "autorecipe on two ranks: $(cat "$tmp/err")"
cmp -s "$tmp/r1.json" "$tmp/r2.json" || fail "autorecipe on two ranks wrote another recipe"
grep -v '"recipe":' "$tmp/a1" >"$tmp/a1.figures"
grep -v '"recipe":' "$tmp/a2" >"$tmp/a2.figures"
cmp -s "$tmp/a1.figures" "$tmp/a2.figures" ||
	fail "autorecipe on two ranks reported otherwise: $(diff "$tmp/a1.figures" "$tmp/a2.figures")"

echo "== a rank that dies: its cells go to the others (mpirun --enable-recovery)"
SLIMLAB_MPI_TEST_DIE=2 SLIMLAB_MPI_TIMEOUT=2 mpi --enable-recovery -n 3 "$slimlab" sensitivity "$small" $sweep_args \
	--json --threads 1 >"$tmp/rec.json" 2>"$tmp/err" || fail "a dead rank ended the recovering run: $(cat "$tmp/err")"
grep -q "rank 2 .*taken for dead" "$tmp/err" || fail "the dead rank was not named: $(cat "$tmp/err")"
same_cells "$tmp/ref.json" "$tmp/rec.json" "after rank 2 died"

echo "== a rank that dies: mpirun stops the run, the saved sweep has every cell, --resume finishes"
SLIMLAB_MPI_TEST_DIE=2 mpi -n 3 "$slimlab" sensitivity "$small" $sweep_args --threads 1 --save "$tmp/s.json" \
	>/dev/null 2>"$tmp/err" && fail "the run went on after rank 2 died"
grep -q "rank 2" "$tmp/err" || fail "the dead rank was not named: $(cat "$tmp/err")"
[ -s "$tmp/s.json" ] || fail "nothing was saved"
saved=$(n_cells "$tmp/s.json")
[ "$saved" -ge 1 ] && [ "$saved" -lt 111 ] || fail "the saved sweep holds $saved of 111 cells"
"$slimlab" sensitivity "$small" $sweep_args --resume "$tmp/s.json" --json >"$tmp/resumed.json" 2>"$tmp/err" ||
	fail "--resume of the saved sweep: $(cat "$tmp/err")"
grep -q "resuming: $saved cells already measured" "$tmp/err" || fail "--resume: $(cat "$tmp/err")"
# Every cell must be one process's; the proxies' rank correlations are
# left out here: once, with the SIMD paths off under load, the Fisher
# proxy's rho of a resumed sweep differed in its sixth digit while every
# cell was equal (not yet understood; the other comparisons keep it).
sed '/"spearman_vs_kl"/,/}/d' "$tmp/resumed.json" >"$tmp/resumed.cells"
sed '/"spearman_vs_kl"/,/}/d' "$tmp/ref.json" >"$tmp/ref.cells"
same_cells "$tmp/ref.cells" "$tmp/resumed.cells" "resumed"

echo "== the workbench: :sweep --ranks streams into the heatmap; Esc stops every rank"
if command -v tmux >/dev/null 2>&1; then
	(
		. "$srcdir/tests/tui-lib.sh"
		export ASAN_OPTIONS="$no_leaks" # the workbench's mpirun passes it to the ranks
		# The workbench names its model by its real path.
		"$slimlab" sensitivity "$(realpath "$small")" --options q8_0,q4_0 --windows 2 --ctx 64 --json >"$work/cli.json" ||
			fail "the CLI's sweep failed"
		start 120 40 "'$small'"
		wait_for "stories260K"
		cmd "sweep q8_0,q4_0 --windows 2 --ctx 64 --ranks 2"
		wait_for "sweep finished: 74 cells" 120
		cmd "sweep export $work/tui.json"
		wait_for "tui.json written"
		cells "$work/cli.json" >"$work/a"
		cells "$work/tui.json" >"$work/b"
		cmp -s "$work/a" "$work/b" || fail ":sweep --ranks 2 measured other cells: $(diff "$work/a" "$work/b" | head)"

		cmd "sweep q8_0,q4_0,int4-g32,int2-g32,sparse-2:4 --windows 8 --ctx 256 --ranks 2"
		wait_for "measuring on 2 MPI ranks" 60
		wait_match " [1-9][0-9]*/185 measured" 120
		keys Escape
		wait_match "sweep cancelled: [1-9][0-9]* of 185 cells measured" 30
		n=30
		while pgrep -f "slimlab sensitivity $small --stream" >/dev/null && [ $n -gt 0 ]; do
			sleep 0.2
			n=$((n - 1))
		done
		pgrep -f "slimlab sensitivity $small --stream" >/dev/null && fail "Esc left ranks running"

		# Without mpirun on PATH the workbench says so.
		term_env="TERM=xterm-256color PATH=/nonexistent"
		start 120 40 "'$small'"
		wait_for "stories260K"
		cmd "sweep q8_0 --ranks 2"
		wait_for "mpirun is not on PATH"
		finish "the workbench's sweep on MPI ranks: the same cells, Esc stops them, a missing mpirun is named"
	) || fails=$((fails + 1))
else
	echo "(tmux is not installed: the workbench's part is left out)"
fi

if [ "$fails" -gt 0 ]; then
	echo "$fails failures"
	exit 1
fi
echo "MPI sweeps: the cells of one process on 3 ranks, a dead rank's cells recovered or saved, :sweep --ranks"
