#!/bin/sh
# The Heal view driven under tmux on the workshop model: settings come from
# menus; a recipe that compresses nothing is refused; a file named for the healed model that
# exists is asked about, the open model refused; a short QAD run shows its
# curves and the post-training and healed figures side by side; Esc stops it
# with a checkpoint in the data directory, and healing again with the same
# settings offers to resume and goes on from it; the healed model is then the
# session's (the header says so, the history has its run, the session file
# keeps it), undo returns to the post-training model and redo brings the
# healed one back from its file, which measures what healing measured; the
# view survives 20x5. Every wait has a deadline.
model=${SL_SRCDIR:-.}/models/workshop.gguf
. "${SL_SRCDIR:-.}/tests/tui-lib.sh"

row() { screen | sed -n "$1p"; }
heal_dir=$work/data/slimlab/heal
run="heal qad steps=20 batch=1 seq_len=32 eval_every=4 probe=1"

echo "== nothing to heal; files a run would write over"
start 80 24 "$model"
wait_for "token_embd" 30
keys 7
wait_for "No run yet"
cmd "heal qad steps=5"
wait_for "so there is nothing to heal"
cmd "set ctx=64 chunks=2" # ':' closes the error box and opens the command line
wait_gone "so there is nothing to heal" # keys typed ahead of the box would be dropped
keys m # the settings come from menus
wait_for "the same on KL to the base model"
keys Down Enter # the menu opens at qad
wait_row 4 "method kd"
keys Right Right Enter # batch: typing filters the menu
wait_for "─ batch "
T send-keys -t w -l "16"
keys Enter
wait_row 4 "batch 16"
keys s
wait_for "─ steps "
T send-keys -t w -l "oth"
keys Enter # other: typed on the command line
wait_row 24 ":heal set steps="
keys Escape
wait_gone ":heal set steps="
wait_row 4 "method kd  steps 5  batch 16"
cmd "rule all format=int3-g32"
wait_row 3 "recipe all: int3-g32"
: >"$work/taken.gguf"
cmd "$run out=$work/taken.gguf"
wait_for "taken.gguf exists already"
keys c
wait_gone "exists already"
cmd "heal set out=$model"
keys h
wait_for "is the open model"
cmd "heal set out=auto"
wait_for "out a new file in the data directory"
[ -s "$work/taken.gguf" ] && fail "a file the user was asked about was written"

echo "== Esc stops the run with a checkpoint; the same settings resume it"
keys h
wait_match "step [1-9][0-9]* of 20" 90
keys Escape
wait_for "stopped at step" 60
ckpt=$(ls "$heal_dir"/*.ckpt 2>/dev/null)
[ -n "$ckpt" ] || fail "no checkpoint in $heal_dir"
keys h
wait_for "A checkpoint of this healing run is at"
keys r
wait_for "resumed from the checkpoint" 60
wait_for "recovered" 120
wait_match "^ KL +[0-9]\.[0-9]{5} +[0-9]\.[0-9]{5} +[-+][0-9]\.[0-9]{5}"
wait_match "^ PPL +[0-9.]+ +[0-9.]+ +[-+][0-9.]+"
wait_match "^ top-1 +[0-9.]+% +[0-9.]+% +[-+][0-9.]+ pt"
wait_row 1 "healed qad 20 steps"
wait_for "training loss (kl)"
wait_for "held-out KL against the base"
echo "--- the Heal view at 80x24:"
screen
[ -n "$ckpt" ] && [ -e "$ckpt" ] && fail "the checkpoint of a finished run is left: $ckpt"
[ -s "$heal_dir/workshop-qad-20.gguf" ] || fail "the healed model was not written to $heal_dir/workshop-qad-20.gguf"
healed_kl=$(screen | sed -n 's/^ KL \+[0-9.]\+ \+\([0-9.]\+\) .*/\1/p')

echo "== the healed model is the session's: history, undo, redo"
keys 4
wait_match "^ 1 +healed .* evalu +[0-9]+ +[0-9]+ +[0-9]+\\.[0-9]{4} " # on the windows :eval takes
wait_for "on the evaluation text (eval.txt):"
wait_for "healed model, recipe - (all: int3-g32 + qad 20 steps)"
keys u
wait_gone "healed qad 20 steps"
row 1 | grep -q "int3\|bpw" || fail "undo left no recipe in the header: $(row 1)"
keys U
wait_row 1 "healed qad 20 steps"
keys E # the healed model read back from its file
wait_match "^ 2 +healed " 90
reread=$(screen | sed -n 's/^ 2 \+healed .* \([0-9]\.[0-9]\{5\}\) \+[0-9.]\+%$/\1/p')
[ -n "$healed_kl" ] && [ "$reread" = "$healed_kl" ] ||
	fail "the healed model's file measures KL '$reread', healing measured '$healed_kl'"
cmd "save $work/healed.json"
wait_for "session saved"
check_file "$work/healed.json" '"healed":[[:space:]]*{' "the saved session"
check_file "$work/healed.json" '"label":[[:space:]]*"qad 20 steps"' "the saved session"

echo "== 20x5 and back"
keys 7
T resize-window -t w -x 20 -y 5
wait_for "Terminal too small"
T resize-window -t w -x 80 -y 24
wait_for "post-training"
keys q
wait_for "EXIT 0"

finish "heal view: refusals, a run stopped and resumed, the healed model current and undoable"
