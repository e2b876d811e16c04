#!/bin/sh
# slimlab train from the command line: a tiny run prints its steps, an
# evaluation and where the model went, and the model it wrote opens in
# slimlab eval; run again, it refuses to write over the model or the loss
# table without --force (exit status 1, both files untouched) and writes
# over them with it; a bad configuration fails with exit status 1 and a
# message naming the key; --help and a missing argument behave.
srcdir=${SL_SRCDIR:-.}
slimlab=${SL_BUILDDIR:-.}/slimlab
dir=$(mktemp -d "${TMPDIR:-/tmp}/sltrain.XXXXXX")
trap 'rm -rf "$dir"' EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

head -c 20000 "$srcdir/data/calib.txt" >"$dir/train.txt"
head -c 3000 "$srcdir/data/eval.txt" >"$dir/val.txt"
cat >"$dir/tiny.json" <<'JSON'
{
  "model": {"dim": 32, "hidden_dim": 64, "layers": 1, "heads": 2, "context": 32},
  "tokenizer": {"vocab_size": 300},
  "data": {"train": "train.txt", "val": "val.txt"},
  "train": {"steps": 6, "batch": 2, "lr": 0.01, "warmup": 1},
  "output": {"path": "tiny.gguf", "log": "tiny-loss.tsv"}
}
JSON
"$slimlab" train "$dir/tiny.json" --log-every 3 >"$dir/out" 2>&1 || { cat "$dir/out"; fail "slimlab train failed"; }
cat "$dir/out"
grep -q '^step      6/6  loss [0-9.]*  lr' "$dir/out" || fail "no line for step 6"
grep -q '^eval (final) at step 6: validation loss' "$dir/out" || fail "no final evaluation"
grep -q "^done: 6 steps in .*; model written to .*tiny.gguf" "$dir/out" || fail "no closing line"
"$slimlab" eval "$dir/tiny.gguf" --text "$dir/val.txt" --ctx 32 >/dev/null || fail "the model it wrote does not open"
[ "$(wc -l <"$dir/tiny-loss.tsv")" -eq 7 ] || fail "the loss table has not 6 steps"

# Existing outputs: refused without --force (stdin is no terminal), then written over with it.
sums=$(cat "$dir/tiny.gguf" "$dir/tiny-loss.tsv" | sha256sum)
"$slimlab" train "$dir/tiny.json" </dev/null >"$dir/out" 2>"$dir/err"
[ $? -eq 1 ] || fail "a second run over an existing model did not exit with status 1"
grep -q "tiny.gguf exists; give --force to write over it" "$dir/err" || fail "no refusal: $(cat "$dir/err")"
grep -q "^step" "$dir/out" && fail "the refused run trained"
[ "$(cat "$dir/tiny.gguf" "$dir/tiny-loss.tsv" | sha256sum)" = "$sums" ] || fail "the refused run changed its outputs"
mv "$dir/tiny.gguf" "$dir/kept.gguf"
"$slimlab" train "$dir/tiny.json" </dev/null >"$dir/out" 2>"$dir/err"
[ $? -eq 1 ] || fail "a run over an existing loss table did not exit with status 1"
grep -q "tiny-loss.tsv exists; give --force to write over it" "$dir/err" || fail "no refusal: $(cat "$dir/err")"
[ -e "$dir/tiny.gguf" ] && fail "the refused run wrote a model"
mv "$dir/kept.gguf" "$dir/tiny.gguf"
"$slimlab" train "$dir/tiny.json" --force </dev/null >"$dir/out" 2>&1 || { cat "$dir/out"; fail "--force did not write over them"; }
grep -q "^done: 6 steps" "$dir/out" || fail "--force: no closing line"

echo '{"model": {"dim": 32}, "trian": {}}' >"$dir/bad.json"
"$slimlab" train "$dir/bad.json" 2>"$dir/err"
[ $? -eq 1 ] || fail "a bad configuration did not exit with status 1"
grep -q 'bad.json: unknown key "trian"' "$dir/err" || fail "the message does not name the key: $(cat "$dir/err")"
"$slimlab" train --help | grep -q -- '--resume' || fail "--help"
"$slimlab" train 2>/dev/null
[ $? -eq 2 ] || fail "no configuration is not a usage error"
echo "slimlab train: ok"
