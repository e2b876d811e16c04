#!/bin/sh
# The command line itself: a mistyped command is named with the nearest
# one and exits 2, while a model path (a file, a folder, a name ending like
# a model file) still goes to the workbench; a mistyped option exits 2;
# a method that needs calibration finds the shipped text; sensitivity's
# acceptance metric is in its table, its JSON and its CSV; and greedy text
# of TinyStories-656K's Q8_0 GGUF is llama.cpp's, word for word (the text
# the fixtures README quotes); heal writes a model and its figures, and
# never over an existing file unasked; --version names the kernels chosen.
srcdir=${SL_SRCDIR:-.}
builddir=${SL_BUILDDIR:-.}
fixtures=${SL_FIXTURES:-$srcdir/../shared/fixtures}
slimlab=$builddir/slimlab
model=$fixtures/models/stories260K.gguf

[ -r "$model" ] || { echo "SKIP: fixture $model is absent (set SL_FIXTURES)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99

fail() {
	echo "FAIL: $*"
	exit 1
}

# run ARGS...: runs slimlab with no terminal; $rc, $out and $err hold what happened.
run() {
	"$slimlab" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

run sensitivty "$model" --options q8_0
[ $rc -eq 2 ] || fail "a mistyped command exited $rc, not 2"
[ -z "$out" ] || fail "a mistyped command printed on stdout: $out"
echo "$err" | grep -q "'sensitivty' is not a command; did you mean 'sensitivity'?" ||
	fail "a mistyped command was not named with the nearest one: $err"

# --version names the kernels the run-time choice takes, which the
# environment's switches narrow.
v=$(SL_NO_AVX2=1 "$slimlab" --version | sed -n 's/^cpu: *//p')
[ "$v" = "portable C kernels, OpenBLAS sgemm" ] || fail "--version with SL_NO_AVX2: '$v'"
v=$(SL_NO_AVX512=1 "$slimlab" --version | sed -n 's/^cpu: *//p')
case $v in *AVX-512* | *VNNI*) fail "--version with SL_NO_AVX512 still names 512-bit kernels: '$v'" ;; esac
if grep -qw avx512_vnni /proc/cpuinfo 2>/dev/null && grep -qw avx512bw /proc/cpuinfo; then
	# AMX tiles where the processor has them (Linux grants them on request)
	amx=
	grep -qw amx_int8 /proc/cpuinfo && amx=" and AMX"
	v=$(env -u SL_NO_AVX2 -u SL_NO_AVX512 -u SL_NO_VNNI -u SL_NO_AMX "$slimlab" --version | sed -n 's/^cpu: *//p')
	[ "$v" = "AVX2+FMA+F16C, AVX-512 with VNNI$amx kernels, OpenBLAS sgemm" ] || fail "--version on an AVX-512 VNNI processor: '$v'"
	v=$(env -u SL_NO_AVX2 -u SL_NO_AVX512 -u SL_NO_VNNI SL_NO_AMX=1 "$slimlab" --version | sed -n 's/^cpu: *//p')
	[ "$v" = "AVX2+FMA+F16C, AVX-512 with VNNI kernels, OpenBLAS sgemm" ] || fail "--version with SL_NO_AMX: '$v'"
	v=$(env -u SL_NO_AVX2 -u SL_NO_AVX512 SL_NO_VNNI=1 "$slimlab" --version | sed -n 's/^cpu: *//p')
	[ "$v" = "AVX2+FMA+F16C, AVX-512 kernels, OpenBLAS sgemm" ] || fail "--version with SL_NO_VNNI: '$v'"
fi

run foo --help
[ $rc -eq 2 ] || fail "'slimlab foo --help' exited $rc, not 2"
[ -z "$out" ] || fail "'slimlab foo --help' printed the workbench's usage: $out"
echo "$err" | grep -q "'foo' is neither a command nor a model file; the commands are info, eval," ||
	fail "'slimlab foo' did not name the commands: $err"

run autorecip "$model"
[ $rc -eq 2 ] && echo "$err" | grep -q "did you mean 'autorecipe'?" || fail "autorecip: $rc: $err"

# Model paths go to the workbench, which needs a terminal; a missing model
# with a model file's name too (the workbench says what is wrong with it).
mkdir folder
: >plainfile
for m in "$model" "$fixtures/models" folder plainfile missing.gguf missing.safetensors ./missing; do
	run "$m"
	[ $rc -eq 1 ] && echo "$err" | grep -q "the workbench needs a terminal" ||
		fail "'slimlab $m' did not go to the workbench: $rc: $err"
done

run info "$model" --tensros
[ $rc -eq 2 ] || fail "a mistyped option exited $rc, not 2"
echo "$err" | grep -q -- "--tensros" && echo "$err" | grep -q "Try 'slimlab info --help'" ||
	fail "a mistyped option was not named: $err"

# A method that needs statistics, with no --calib, from a folder that holds
# no data/: it calibrates on the text that ships with slimlab, and says so.
run eval "$model" --text "$srcdir/data/eval.txt" --ctx 64 --chunks 2 --format q4_0 --method gptq
[ $rc -eq 0 ] || fail "eval --method gptq without --calib exited $rc: $err"
echo "$err" | grep -q -- "--method gptq calibrates on .*data/calib.txt" ||
	fail "eval --method gptq did not say which calibration text it took: $err"
echo "$err$out" | grep -q "recipe names no calibration" && fail "eval --method gptq blamed a recipe: $err"
run eval "$model" --text "$srcdir/data/eval.txt" --format q9_9
[ $rc -ne 0 ] && echo "$err" | grep -q -- "--format: unknown format 'q9_9'" ||
	fail "an unknown --format was not named: $err"

# Acceptance as a draft, a sweep metric: the table shows 1 - acceptance.
sweep="$model --options q8_0 --ctx 32 --windows 2 --calib-tokens 256 --text $srcdir/data/calib.txt"
run sensitivity $sweep --metric accept
[ $rc -eq 0 ] || fail "sensitivity --metric accept exited $rc: $err"
echo "$out" | grep -q "^1 - acceptance as a draft per module and option" || fail "sensitivity --metric accept: $out"
run sensitivity $sweep --json
echo "$out" | grep -q '"acceptance":[[:space:]]*0\.[0-9]' || fail "sensitivity --json has no acceptance: $out"
run sensitivity $sweep --csv
echo "$out" | head -n 1 | grep -q ",top1,acceptance,ppl," || fail "sensitivity --csv has no acceptance column: $out"
run sensitivity $sweep --metric acceptance
[ $rc -eq 2 ] && echo "$err" | grep -q "kl, dppl, top1 or accept" || fail "a bad --metric: $rc: $err"

# heal: a short QAT run writes the healed model and its figures; an
# existing output is kept unless --force; a bad method is a usage error.
head -c 60000 "$srcdir/data/calib.txt" >"$tmp/train.txt"
heal="--format q4_0 --steps 2 --batch 2 --seq-len 32 --chunks 1 --eval-every 0 --text $tmp/train.txt"
run heal "$model" $heal --heal qat --out "$tmp/healed.gguf" --json
[ $rc -eq 0 ] || fail "heal: $rc: $err"
for key in '"before"' '"after"' '"recovered"' '"kl"' '"ppl"' '"top1"'; do
	echo "$out" | grep -q "$key" || fail "heal --json lacks $key: $out"
done
[ -s "$tmp/healed.gguf" ] && [ ! -e "$tmp/healed.gguf.ckpt" ] || fail "heal wrote no model, or left its checkpoint"
run info "$tmp/healed.gguf"
[ $rc -eq 0 ] || fail "the healed model does not open: $err"
sum=$(cksum <"$tmp/healed.gguf")
run heal "$model" $heal --heal qat --out "$tmp/healed.gguf"
[ $rc -ne 0 ] && [ "$(cksum <"$tmp/healed.gguf")" = "$sum" ] || fail "heal wrote over an existing file"
echo "$err" | grep -q -- "--force" || fail "heal did not say how to write over a file: $err"
run heal "$model" $heal --heal bogus --out "$tmp/other.gguf"
[ $rc -eq 2 ] || fail "heal --heal bogus exited $rc, not 2"
# a method's parameters as --KEY VALUE (low rank healed by KD), and
# --loftq, which is not --format
run heal "$model" --method svdllm --keep 0.8 --steps 1 --batch 2 --seq-len 32 --chunks 1 --eval-every 0 \
	--text "$tmp/train.txt" --heal kd --out "$tmp/svd.gguf" --json
[ $rc -eq 0 ] && echo "$out" | grep -q '"recovered"' || fail "heal after svdllm --keep 0.8: $rc: $err"
run heal "$model" --format int3-g32 --loftq 2 --steps 0 --chunks 1 --eval-every 0 --text "$tmp/train.txt" \
	--heal lora --out "$tmp/loftq.gguf" --json
[ $rc -eq 0 ] && echo "$out" | grep -q '"loftq"' || fail "heal --loftq 2: $rc: $err $out"
run heal "$model" --format int3-g32 --loftq --heal qat --out "$tmp/other.gguf"
[ $rc -eq 2 ] && echo "$err" | grep -q "needs --heal lora" || fail "heal --loftq without lora: $rc: $err"

q8=$fixtures/models/TinyStories-656K-Q8_0.gguf
if [ -r "$q8" ]; then
	want="Once upon a time, a little girl named Lily lived in a small house with her mom. Lily loved to play with her toys and read her favorite book. One day, she found a big, round book in her room. It was shiny and shiny."
	run generate "$q8" -p "Once upon a time" -n 48 --temp 0
	[ $rc -eq 0 ] || fail "generate: $rc: $err"
	case "$out" in
	"$want"*) ;;
	*) fail "greedy text of TinyStories-656K-Q8_0 is not llama.cpp's:
$out" ;;
	esac
else
	echo "note: $q8 is absent; its greedy text is not checked"
fi
echo "PASS"
