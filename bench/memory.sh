#!/bin/sh
# bench/memory.sh: peak resident memory and wall time of slimlab's jobs on a
# big model, with ratios: against the model file's size, against a
# baseline slimlab (another build, e.g. of an earlier commit) run in the
# same script on the same file, and against llama-quantize where llama.cpp
# is built. The jobs: apply --format q4_k --out, eval --format q4_k
# (--chunks 2), and with --sweep a one-option sensitivity sweep.
# Usage: bench/memory.sh [--base OLD_SLIMLAB] [--llama BIN_DIR] [--sweep] MODEL
# (from the source tree, after make; MODEL e.g. from bench/shaped 374m f16;
# a baseline: git worktree add /tmp/sl-old REV, build it there, pass
# /tmp/sl-old/slimlab; llama.cpp default: /tmp/llama.cpp/build/bin).
set -u
old=
llama=/tmp/llama.cpp/build/bin
sweep=no
while [ $# -gt 1 ]; do
	case $1 in
	--base) old=$2; shift 2 ;;
	--llama) llama=$2; shift 2 ;;
	--sweep) sweep=yes; shift ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "usage: bench/memory.sh [--base OLD_SLIMLAB] [--llama BIN_DIR] [--sweep] MODEL" >&2; exit 2; }
model=$1
[ -f "$model" ] || { echo "$model: no such file" >&2; exit 1; }
[ -x ./slimlab ] || { echo "./slimlab is not built (run make)" >&2; exit 1; }
[ -z "$old" ] || [ -x "$old" ] || { echo "$old: not an executable" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (Debian: time)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mb=$(($(stat -c %s "$model") / 1000000))

# measure NAME CMD...: runs CMD once under /usr/bin/time; "NAME SECONDS KB CPU_SECONDS" into
# $tmp/runs (CPU time, user and system, tells more than wall time where other jobs share the cores).
measure() {
	name=$1
	shift
	if ! /usr/bin/time -f '%e %M %U %S' -o "$tmp/time" "$@" >"$tmp/out" 2>&1; then
		echo "$name failed:" >&2
		tail -5 "$tmp/out" >&2
		return 1
	fi
	awk -v n="$name" '{ print n, $1, $2, $3 + $4 }' "$tmp/time" >>"$tmp/runs"
	awk -v n="$name" -v mb="$mb" '{ printf "%-16s %7.1f s wall %7.1f s CPU %7.0f MB resident (%.2fx the file)\n", n, $1, $3 + $4, $2 / 1000, $2 / 1000 / mb }' "$tmp/time"
}

# jobs WHO BINARY: the jobs with one slimlab build.
jobs() {
	measure "$1-apply" "$2" apply "$model" --format q4_k --out "$tmp/q4_k.gguf"
	measure "$1-eval" "$2" eval "$model" --format q4_k --text data/eval.txt --chunks 2
	if [ "$sweep" = yes ]; then
		measure "$1-sweep" "$2" sensitivity "$model" --options q4_k --windows 2 --ctx 64 --calib-tokens 512
	fi
}

echo "$model: $mb MB"
[ -z "$old" ] || jobs old "$old"
jobs new ./slimlab
if [ -x "$llama/llama-quantize" ]; then
	measure llama-quantize "$llama/llama-quantize" "$model" "$tmp/llama-q4_k.gguf" Q4_K
fi

# ratio A B LABEL: A's time and memory over B's.
ratio() {
	awk -v a="$1" -v b="$2" -v l="$3" '
		$1 == a { ta = $2; ma = $3; ca = $4 } $1 == b { tb = $2; mb = $3; cb = $4 }
		END { if (ta && tb) printf "%-34s wall %.2fx, CPU %.2fx, memory %.2fx\n", l, ta / tb, ca / cb, ma / mb }' "$tmp/runs"
}
echo
for job in apply eval sweep; do
	ratio "new-$job" "old-$job" "$job: this build / the baseline"
done
ratio new-apply llama-quantize "apply: slimlab / llama-quantize"
ratio old-apply llama-quantize "apply: baseline / llama-quantize"
