#!/bin/sh
# The compression commands as a user runs them on stories260K: recipe
# validate names every problem and exits 1; eval --format reports size,
# fallbacks and quality; apply writes a GGUF that slimlab reads back with
# the perplexity eval measured, and its --json holds the same figures;
# low rank from the command line (--method svdllm --keep 0.6), its export
# (the products for llama.cpp, the factors reloaded) and its bad values.
srcdir=${SL_SRCDIR:-.}
builddir=${SL_BUILDDIR:-.}
fixtures=${SL_FIXTURES:-$srcdir/../shared/fixtures}
slimlab=$builddir/slimlab
model=$fixtures/models/stories260K.bin
text=$srcdir/data/eval.txt

[ -r "$model" ] || { echo "SKIP: fixture $model is absent (set SL_FIXTURES)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

# A hostile recipe: every problem on its own line, named by its rule.
cat >"$tmp/bad.json" <<'EOF'
{"slimlab_recipe": 1, "default": {"format": "q8_0"}, "rules": [
 {"match": "blk.*.ffn_up", "format": "int4-g32", "params": {"group": 100}},
 {"match": "blk.*.ffn_dwn", "format": "q4_0"},
 {"match": "blk.0.*", "format": "q9_9"},
 {"match": "output", "sparsity": 1.5}]}
EOF
out=$("$slimlab" recipe validate "$tmp/bad.json" --model "$model")
[ $? -eq 1 ] || fail "validate of a hostile recipe should exit 1"
for want in "rules\[0\].params.group: int4-g32 takes groups of 32, 64 or 128, not 100" \
	"rules\[0\].params.group: 100 does not divide rows of 64" \
	"rules\[1\].match: 'blk.\*.ffn_dwn' matches no module" \
	"rules\[2\].format: unknown format 'q9_9'" \
	"rules\[3\].sparsity: 1.5 is outside 0..1" \
	"rules\[3\].match: 'output' matches no module"; do
	echo "$out" | grep -q "$want" || fail "validate did not say: $want; it said:
$out"
done

# A good recipe validates, with its fallbacks as notes.
cat >"$tmp/good.json" <<'EOF'
{"slimlab_recipe": 1, "name": "q4 with int8 output", "default": {"format": "q4_k"},
 "rules": [{"match": "token_embd", "format": "int8-g32"}]}
EOF
out=$("$slimlab" recipe validate "$tmp/good.json" --model "$model") || fail "good recipe refused: $out"
echo "$out" | grep -q "note: default.format: q4_k cannot hold rows of 64 (blk.0.attn_q and 29 more); q4_0 used" ||
	fail "validate did not note the q4_k fallback: $out"

# eval with a uniform rule: size, fallbacks, PPL, KL, top-1.
out=$("$slimlab" eval "$model" --text "$text" --ctx 64 --chunks 4 --format q4_0) || fail "eval --format: $out"
for want in "q4_0 -> f16 for 5 modules: blk.0.ffn_down" "bits per weight" "perplexity" "base ppl" "KL" "top-1"; do
	echo "$out" | grep -q "$want" || fail "eval --format did not report '$want':
$out"
done
"$slimlab" eval "$model" --text "$text" --format q9_9 2>"$tmp/err" && fail "eval took an unknown format"
grep -q -- "--format: unknown format 'q9_9'" "$tmp/err" || fail "unknown format message: $(cat "$tmp/err")"

# apply writes a GGUF; slimlab reads it back with the perplexity apply measured.
"$slimlab" apply "$model" --recipe "$tmp/good.json" --out "$tmp/out.gguf" --text "$text" --ctx 64 --chunks 4 \
	--json >"$tmp/apply.json" || fail "apply failed"
[ -s "$tmp/out.gguf" ] || fail "apply wrote nothing"
"$slimlab" eval "$tmp/out.gguf" --text "$text" --ctx 64 --chunks 4 --json >"$tmp/eval.json" || fail "eval of the export"
ppl_apply=$(sed -n 's/^[[:space:]]*"ppl":[[:space:]]*\([0-9.e+-]*\).*/\1/p' "$tmp/apply.json" | head -1)
ppl_eval=$(sed -n 's/^[[:space:]]*"ppl":[[:space:]]*\([0-9.e+-]*\).*/\1/p' "$tmp/eval.json" | head -1)
[ -n "$ppl_apply" ] && [ -n "$ppl_eval" ] || fail "no ppl in the JSON reports"
awk -v a="$ppl_apply" -v b="$ppl_eval" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-3 * a) }' ||
	fail "the export's perplexity $ppl_eval differs from apply's $ppl_apply"
grep -q '"bpw"' "$tmp/apply.json" && grep -q '"fallbacks"' "$tmp/apply.json" || fail "apply --json lacks bpw/fallbacks"
echo "recipe validate, eval --format, apply: ok (ppl $ppl_apply)"

# Low rank as a uniform rule: the method and its parameters as options.
out=$("$slimlab" eval "$model" --text "$text" --ctx 64 --chunks 4 --method svdllm --keep 0.6 2>&1) ||
	fail "eval --method svdllm --keep 0.6: $out"
for want in "rank 19 of 64" "KL" "bits per weight"; do
	echo "$out" | grep -q "$want" || fail "eval --method svdllm did not report '$want':
$out"
done
"$slimlab" eval "$model" --text "$text" --method svd --keep 0 2>"$tmp/err" && fail "eval took keep 0"
grep -q -- "--keep: 0 is outside (0, 1\]" "$tmp/err" || fail "keep 0 message: $(cat "$tmp/err")"
"$slimlab" eval "$model" --text "$text" --method svd --rank 65 2>"$tmp/err" && fail "eval took rank 65 of 64"
grep -q -- "--rank: rank 65 is above" "$tmp/err" || fail "rank 65 message: $(cat "$tmp/err")"
"$slimlab" apply "$model" --method svd --keep 0.5 --out "$tmp/lr.gguf" --text "$text" --ctx 64 --chunks 4 \
	>"$tmp/apply.txt" || fail "apply --method svd failed"
grep -q "llama.cpp has no factored layer" "$tmp/apply.txt" || fail "apply did not say what llama.cpp gets: $(cat "$tmp/apply.txt")"
"$slimlab" info "$tmp/lr.gguf" | grep -q "low rank .* products of two factors" || fail "the reload lost the factors"
ppl_apply=$(sed -n 's/^perplexity *\([0-9.]*\).*/\1/p' "$tmp/apply.txt")
ppl_eval=$("$slimlab" eval "$tmp/lr.gguf" --text "$text" --ctx 64 --chunks 4 | sed -n 's/^perplexity *\([0-9.]*\).*/\1/p')
[ -n "$ppl_apply" ] && [ "$ppl_apply" = "$ppl_eval" ] || fail "the reloaded factors give ppl $ppl_eval, apply $ppl_apply"
echo "low rank from the command line: ok (ppl $ppl_apply)"
