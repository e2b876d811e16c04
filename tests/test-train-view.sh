#!/bin/sh
# The Train view and :train, driving the real workbench under tmux: a short
# run shows its steps and offers its model, written with its loss table and
# checkpoint to a new folder in the data directory, not where the
# configuration says; the next run gets another folder; --out over an
# existing file asks first (cancel keeps the file, overwrite writes it and
# its loss table beside it); --out naming the open model, under its own
# name or another, is refused; a long run stops with a checkpoint in its
# folder and r resumes it there; a run of the shipped models/workshop.json
# stopped with Esc leaves models/ byte for byte as it was. Every wait has a
# deadline, so nothing hangs.
. "${SL_SRCDIR:-.}/tests/tui-lib.sh"

src=$(cd "$srcdir" && pwd)
runs="$XDG_DATA_HOME/slimlab/train"
head -c 20000 "$srcdir/data/calib.txt" >"$work/train.txt"
head -c 3000 "$srcdir/data/eval.txt" >"$work/val.txt"
# tiny CONFIG STEPS: a configuration whose outputs would be beside it.
tiny() {
	cat >"$work/$1" <<JSON
{
  "model": {"dim": 32, "hidden_dim": 64, "layers": 1, "heads": 2, "context": 32},
  "tokenizer": {"vocab_size": 300},
  "data": {"train": "train.txt", "val": "val.txt"},
  "train": {"steps": $2, "batch": 2, "lr": 0.01, "warmup": 1},
  "checkpoint": {"path": "$1.ckpt"},
  "output": {"path": "$1.gguf", "log": "$1-loss.tsv"}
}
JSON
}
tiny short.json 6
tiny long.json 50000000
echo '{"model": {"dim": 32}, "trian": {}}' >"$work/bad.json"
shipped() { (cd "$src/models" && sha256sum ./*); }
before=$(shipped)

start 100 24 "$model"
wait_for "token_embd"
cmd "train $work/bad.json"
wait_for 'unknown key "trian"'

echo "== a run writes to a new folder in the data directory"
cmd "train $work/short.json"
wait_for "short-1/short.json.gguf" 60 # the header says where the model goes
wait_for "step 6 of 6" 60
wait_for "Open it?" 60
keys n
wait_gone "Open it?" 30 # answered before the next command is typed
wait_for "done: 6 steps"
for f in short.json.gguf short.json-loss.tsv short.json.ckpt; do
	[ -f "$runs/short-1/$f" ] || fail "the run wrote no $runs/short-1/$f"
done
ls "$work"/short.json.* >/dev/null 2>&1 && fail "the run wrote beside its configuration: $(ls "$work"/short.json.*)"
cmd "train $work/short.json"
wait_for "Open it?" 60
keys n
wait_gone "Open it?" 30 # answered before the next command is typed
[ -f "$runs/short-2/short.json.gguf" ] || fail "the second run did not get a folder of its own"

echo "== --out over an existing file asks; the open model is refused"
echo "keep me" >"$work/mine.gguf"
cmd "train $work/short.json --out $work/mine.gguf"
wait_for "$work/mine.gguf exists already"
keys c
[ "$(cat "$work/mine.gguf")" = "keep me" ] || fail "cancelling the question did not keep the file"
cmd "train $work/short.json --out $work/mine.gguf"
wait_for "$work/mine.gguf exists already"
keys o
wait_for "Open it?" 60
keys n
wait_gone "Open it?" 30 # answered before the next command is typed
head -c 4 "$work/mine.gguf" | grep -q GGUF || fail "overwrite did not write the model"
[ -f "$work/mine-loss.tsv" ] && [ -f "$work/mine.ckpt" ] || fail "no loss table and checkpoint beside the model"
cmd "train $work/short.json --out $model"
wait_for "That would write over the open model"
ln -s "$(cd "$(dirname "$model")" && pwd)/$(basename "$model")" "$work/alias.gguf"
cmd "train $work/short.json --out $work/alias.gguf"
wait_for "That would write over the open model"
cmp -s "$model" "$fixtures/models/stories260K.gguf" || fail "the open model changed"

echo "== Esc stops with a checkpoint in the run's folder; r resumes it there"
cmd "train $work/long.json"
wait_match "step [1-9][0-9]* of 50000000" 60
keys Escape
wait_for "training cancelled at step" 60
# stopped_at: the step the last cancelled run stopped at.
stopped_at() { screen | sed -n 's/.*training cancelled at step \([0-9]*\).*/\1/p' | tail -n 1; }
first=$(stopped_at)
[ -f "$runs/long-1/long.json.ckpt" ] || fail "a cancelled run left no checkpoint in its folder"
[ -e "$work/long.json.ckpt" ] && fail "the run wrote the configuration's checkpoint"
keys r
wait_for ":train $work/long.json --resume"
keys Enter
# The stopped run's last step is still on the screen: wait for the
# resumed run to pass it (a slow build takes a while to start it).
n=600
while [ "$n" -gt 0 ]; do
	now=$(screen | sed -n 's/.*step \([0-9]*\) of 50000000.*/\1/p' | head -n 1)
	[ -n "$now" ] && [ "$now" -gt "${first:-0}" ] && break
	sleep 0.1
	n=$((n - 1))
done
keys Escape
# and for its own "cancelled" line, after the first run's
n=600
while [ "$n" -gt 0 ]; do
	now=$(stopped_at)
	[ -n "$now" ] && [ "$now" -gt "${first:-0}" ] && break
	sleep 0.1
	n=$((n - 1))
done
[ -e "$runs/long-2" ] && fail "resuming made a new folder"
[ "$(stopped_at)" -gt "${first:-0}" ] || fail "the resumed run stopped at step $(stopped_at), not after step $first"
screen | grep -q "no checkpoint" && fail "resuming found no checkpoint"

echo "== the shipped configuration leaves models/ as it was"
cmd "train $src/models/workshop.json"
wait_for "workshop-1/workshop.gguf" 30
wait_match "step [1-9][0-9]* of 2000" 180 # past the tokenizer: the steps write
keys Escape
wait_for "training cancelled at step" 120
[ -f "$runs/workshop-1/workshop.ckpt" ] || fail "the workshop run left no checkpoint in its folder"
[ -f "$runs/workshop-1/workshop-loss.tsv" ] || fail "the workshop run left no loss table in its folder"
[ "$(shipped)" = "$before" ] || fail "models/ changed: $(shipped)"
ls "$src"/models/*.ckpt >/dev/null 2>&1 && fail "a checkpoint appeared in models/"
cmd "quit!"
wait_for "EXIT 0"

finish "all Train view checks passed"
