#!/bin/sh
# bench/memory.sh: peak resident memory, wall and CPU time of slimlab's jobs
# on a big model, with ratios: against the model file's size, against a
# baseline slimlab (another build, e.g. of an earlier commit) run in the
# same script on the same file, and against llama-quantize where llama.cpp
# is built (--pure, so every tensor gets the one type, as slimlab's uniform
# recipe gives it: the tensors' bytes are the same). The jobs: apply
# --format q4_k and q8_0 --out, eval --format q4_k (--chunks 2), and with
# --sweep a one-option sensitivity sweep. Then what the jobs may hold: the
# file, the compressed model and the caches each job keeps (their sizes
# from the model's shape), against what they held.
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
	awk -v n="$name" -v mb="$mb" '{ printf "%-20s %7.1f s wall %7.1f s CPU %7.0f MB resident (%.2fx the file)\n", n, $1, $3 + $4, $2 / 1000, $2 / 1000 / mb }' "$tmp/time"
}

# jobs WHO BINARY: the jobs with one slimlab build.
jobs() {
	measure "$1-apply" "$2" apply "$model" --format q4_k --out "$tmp/q4_k.gguf"
	measure "$1-apply-q8_0" "$2" apply "$model" --format q8_0 --out "$tmp/q8_0.gguf"
	measure "$1-eval" "$2" eval "$model" --format q4_k --text data/eval.txt --chunks 2
	if [ "$sweep" = yes ]; then
		measure "$1-sweep" "$2" sensitivity "$model" --options q4_k --windows 2 --ctx 64 --calib-tokens 512
	fi
}

echo "$model: $mb MB"
[ -z "$old" ] || jobs old "$old"
jobs new ./slimlab
threads=$(nproc)
if [ -x "$llama/llama-quantize" ]; then
	measure llama-quantize "$llama/llama-quantize" --pure "$model" "$tmp/llama-q4_k.gguf" Q4_K "$threads"
	measure llama-quantize-q8_0 "$llama/llama-quantize" --pure "$model" "$tmp/llama-q8_0.gguf" Q8_0 "$threads"
fi

# What each job may hold: the file, the compressed model, and its caches.
# eval (--ctx 512, the model's own if shorter, 2 windows): two forward states (each an F32
# KV cache of layers x ctx x kv width x 2 and work rows), the logits of the
# scored half of a window for both models. sweep (2 windows of 64): kept, the
# hidden state entering every block and leaving the last, the base's logits
# and the Fisher diagonal (4 bytes a weight; an embedding's rows no window
# used stay untouched); while the Fisher proxy runs, the gradient of one
# matrix (the largest's size: the trainer reads the file's weights in
# place and gives each gradient away as the backward finishes it), one
# matrix stored in another type in F32 while the trainer uses it, and the
# training activations of one window (63 rows). A cell compressing a module
# holds two F32 copies of it while it does (sl_compress_module): the
# embedding's and the head's cells run alone, so the largest is beside the
# caches and its own file pages only.
./slimlab info "$model" --json >"$tmp/info.json" 2>/dev/null
field() { sed -n "s/^[[:space:]]*\"$1\":[[:space:]]*\([0-9]*\).*/\1/p" "$tmp/info.json" | head -1; }
L=$(field layers) D=$(field dim) KV=$(($(field kv_heads) * $(field head_dim))) V=$(field vocab_size)
P=$(field params) C=$(field context) F=$(field hidden_dim) QD=$(($(field heads) * $(field head_dim)))
# the largest tensor stored in another type than f32, in weights
CONV=$(awk '/"type":/ { other = !/"f32"/ } /"shape":/ && other { gsub(/[^0-9,]/, ""); n = split($0, d, ","); p = 1; for (i = 1; i <= n; i++) if (d[i] != "") p *= d[i]; if (p > big) big = p } END { print big + 0 }' "$tmp/info.json")
q4=$(($(stat -c %s "$tmp/q4_k.gguf") / 1000000))
awk -v L="$L" -v D="$D" -v KV="$KV" -v V="$V" -v P="$P" -v C="$C" -v F="$F" -v QD="$QD" -v CONV="$CONV" \
	-v mb="$mb" -v q4="$q4" '
	function M(b) { return b / 1e6 }
	BEGIN {
		ctx = C < 512 ? C : 512
		ev = 2 * (2 * L * ctx * KV * 4) + 2 * (ctx / 2) * V * 4
		sw_keep = (L + 1) * 2 * 64 * D * 4 + 2 * 32 * V * 4 + P * 4
		big = V * D > F * D ? V * D : F * D
		conv = CONV * 4
		row = 4 * D + 2 * QD + 2 * KV + 3 * F
		acts = 63 * 4 * ((L + 1) * row + V)
		sw_fisher = big * 4 + conv + acts
		printf "\ncaches: eval %.0f MB (KV caches %.0f, logits %.0f); sweep %.0f MB kept (hidden states %.1f, base logits %.1f, Fisher %.0f)\n",
			M(ev), M(4 * L * ctx * KV * 4), M(ctx * V * 4), M(sw_keep), M((L + 1) * 128 * D * 4), M(64 * V * 4), M(P * 4)
		printf "  + %.0f MB while the Fisher proxy runs (one matrix'"'"'s gradient %.0f, one in F32 %.0f, activations %.0f); a cell compressing the largest module: + %.0f MB\n",
			M(sw_fisher), M(big * 4), M(conv), M(acts), M(2 * big * 4)
		printf "may hold: eval %.0f MB (file + q4_k model + caches), sweep %.0f MB (file + caches kept, %.0f while the Fisher proxy runs)\n",
			mb + q4 + M(ev), mb + M(sw_keep), mb + M(sw_keep) + M(sw_fisher)
	}'

# ratio A B LABEL: A's time and memory over B's.
ratio() {
	awk -v a="$1" -v b="$2" -v l="$3" '
		$1 == a { ta = $2; ma = $3; ca = $4 } $1 == b { tb = $2; mb = $3; cb = $4 }
		END { if (ta && tb) printf "%-34s wall %.2fx, CPU %.2fx, memory %.2fx\n", l, ta / tb, ca / cb, ma / mb }' "$tmp/runs"
}
echo
for job in apply apply-q8_0 eval sweep; do
	ratio "new-$job" "old-$job" "$job: this build / the baseline"
done
ratio new-apply llama-quantize "apply q4_k: slimlab / llama-quantize"
ratio old-apply llama-quantize "apply q4_k: baseline / llama-quantize"
ratio new-apply-q8_0 llama-quantize-q8_0 "apply q8_0: slimlab / llama-quantize"
ratio old-apply-q8_0 llama-quantize-q8_0 "apply q8_0: baseline / llama-quantize"
