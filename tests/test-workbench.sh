#!/bin/sh
# The workbench's keys and what they say, driven under tmux: the keys the
# key bar and '?' name do what they say; a new evaluation is selected when
# it arrives; the Evaluate table keeps its figures at 80x24, each run with
# its text and windows; its sparklines draw only the runs measured alike,
# and two runs measured otherwise are said not alike; a running job's
# progress is in the header and the key bar stays whole; long paths keep
# their file name; x exports under a new name and an existing file is asked
# about; the format menu filters as you type and shows bits per weight and
# bytes checked against the blocks' sizes; a missing file is said before
# any question; keys typed ahead of a popup never run as view keys; tied
# embeddings are said; two runs are compared side by side; the Model view
# gives the KV cache's bytes, F32 and in the recipe's format. Every wait
# has a deadline, so nothing hangs.
. "${SL_SRCDIR:-.}/tests/tui-lib.sh"

# row N: screen row N (from 1).
row() { screen | sed -n "$1p"; }
# menu_has ITEM: whether the open menu lists ITEM.
menu_has() { screen | grep -qE "(│|\|) $1 "; }

echo "== Evaluate: w sets the number of windows, k moves the selection"
start 80 24 "$model"
wait_for "token_embd"
cmd "set ctx=64 chunks=2"
keys 4
wait_row 24 "w windows"
keys '?'
wait_for "set the window length / number of windows"
keys Escape
wait_gone "set the window length"
keys w
wait_row 24 ":set chunks=2"
keys Escape
wait_gone ":set chunks"
keys k
sleep 0.3
row 24 | grep -q "set chunks" && fail "k opened the windows setting"

echo "== a new evaluation is selected when it arrives; k and j move the selection"
keys e
wait_row 7 "base model, recipe - (as is)" 60
cmd "rule all format=q8_0"
keys 4 e
wait_row 7 "recipe model, recipe - (all: q8_0)" 60
keys 3
cmd "rule all format=q4_0"
cmd "eval" # from another view: the Evaluate view opens on the new run
wait_row 7 "recipe model, recipe - (all: q4_0)" 60
keys k
wait_row 7 "(all: q8_0)"
keys k
wait_row 7 "base model"
keys j
wait_row 7 "(all: q8_0)"
wait_match "^ # +model +recipe +bpw +text +win +ctx +PPL +KL +top-1"
wait_match "^ 2 .* all: q8_0 .* [0-9]+\\.[0-9]{5} +[0-9]+\\.[0-9]{2}%"
wait_match "Δ [-+][0-9.]+   top-1 [0-9.]+%" # in the run's figures too

echo "== Evaluate: each run shows its text and windows; the trends draw only runs measured alike"
wait_match "^ 3 .* calib +2 +64 +[0-9]+\\.[0-9]{4} "
wait_for "on the calibration text (calib.txt): 2 windows of 64 tokens"
wait_for "only the 3 runs on calibration, 2×64"
cmd "eval --chunks 3"
wait_match "^ 4 .* calib +3 +64 +[0-9]+\\.[0-9]{4} " 60
wait_for "only the 1 run on calibration, 3×64"
keys E
wait_match "^ 5 .* evalu +2 +64 +[0-9]+\\.[0-9]{4} " 60
wait_for "on the evaluation text (eval.txt): 2 windows of 64 tokens"
wait_for "only the 1 run on evaluation, 2×64"
keys k k
wait_for "only the 3 runs on calibration, 2×64"
keys m j m
wait_for "comparing runs 3 and 4, not alike: measured on other texts or windows"
wait_match "^ on +calibration, 2×64 +calibration, 3×64 +not alike"
screen | grep -qE "^ KL +[0-9.]+ +[0-9.]+ +[-+]" && fail "a change in KL between runs on other windows"
keys M
wait_gone "Run 4 against run 3"

echo "== a running job's progress is in the header; the key bar stays whole"
cmd "set chunks=0" # every window of the calibration text: long enough to watch
keys e
wait_row 1 "ETA" 30
wait_row 1 "Esc cancels"
hints="e/E evaluate  m compare  c ctx  w windows  n note  ? keys  : command  q quit"
row 24 | grep -qF "$hints" || fail "the key bar is not whole while a job runs: '$(row 24)'"
keys Escape
wait_for "cancelled" 30
keys q
wait_for "Before quitting"
keys d
wait_for "EXIT 0"

echo "== narrow screens drop whole hints; long paths keep their file name"
mkdir -p "$work/a-directory-with-a-rather-long-name/and-another-one-below-it"
long="$work/a-directory-with-a-rather-long-name/and-another-one-below-it/session-file.json"
start 60 20 "$model"
wait_for "token_embd"
keys 3
wait_row 20 "f format  m method  s sparsity  ? keys  : command  q quit"
keys q
wait_for "EXIT 0"
start 80 24 "$model"
wait_for "token_embd"
cmd "save $long"
wait_for "session saved to"
keys 3
wait_row 1 "/session-file.json"
row 1 | grep -q "…/" || fail "the session's path is cut without an ellipsis: '$(row 1)'"
cp "$srcdir/data/calib.txt" "$work/a-directory-with-a-rather-long-name/and-another-one-below-it/calib-text.txt"
printf '{"slimlab_recipe": 1, "calibration": {"text": "%s"}, "default": {"format": "q8_0"}, "rules": []}\n' \
	"$work/a-directory-with-a-rather-long-name/and-another-one-below-it/calib-text.txt" >"$work/calib.json"
cmd "recipe load $work/calib.json"
wait_match "calibration: …/.*/calib-text\\.txt, seed 0"
cmd "quit!"
wait_for "EXIT 0"

echo "== Recipe: x exports under a new name beside the model; an existing file is asked about"
cp "$model" "$work/m.gguf"
start 80 24 "$work/m.gguf"
wait_for "token_embd"
keys 3
wait_row 24 "x export"
cmd "rule all format=q8_0"
keys x
wait_row 24 ":export $work/m-slim.gguf"
keys Enter
wait_for "m-slim.gguf: " 60
[ -s "$work/m-slim.gguf" ] || fail "x and Enter wrote no GGUF"
keys x
wait_row 24 ":export $work/m-slim-2.gguf" # the first name is taken now
keys C-u
T send-keys -t w -l "export $work/m-slim.gguf"
keys Enter
wait_for "m-slim.gguf exists already."
before=$(cksum <"$work/m-slim.gguf")
keys c
wait_gone "exists already"
[ "$(cksum <"$work/m-slim.gguf")" = "$before" ] || fail "cancel overwrote the file"
cmd "rule all format=q4_0"
cmd "apply --out $work/m-slim.gguf"
wait_for "m-slim.gguf exists already."
keys o
wait_for "m-slim.gguf: " 60
[ "$(cksum <"$work/m-slim.gguf")" != "$before" ] || fail "o did not overwrite the file"
cmd "quit!"
wait_for "EXIT 0"

echo "== the format menu filters as you type and shows bits per weight and bytes"
start 80 24 "$model"
wait_for "token_embd"
cmd "inspect blk.0.attn_q"
wait_for "blk.0.attn_q  64 x 64"
keys f
wait_for "leave the weights as they are"
T send-keys -t w -l "q80"
# 64 rows of two 34-byte Q8_0 blocks: 4352 bytes, 8.5 bits per weight
wait_match "q8_0 +8\\.50 bpw +4\\.35 KB  ggml Q8_0"
keys Escape
wait_gone "8.50 bpw"
cmd "inspect blk.0.ffn_down"
wait_for "blk.0.ffn_down  64 x 172"
keys f
T send-keys -t w -l "q80"
# rows of 172 do not fit blocks of 32: f16, 64 x 172 x 2 bytes
wait_match "q8_0 +16\\.00 bpw +22\\.02 KB  → f16"
keys Escape
wait_gone "16.00 bpw"
keys 3 f
T send-keys -t w -l "q4k"
wait_for "format · q4k"
menu_has q4_0 && fail "q4k kept q4_0 in the menu"
keys BSpace BSpace
wait_for "format · q "
wait_for "q6_k"
menu_has int8 && fail "q kept int8 in the menu"
keys BSpace
T send-keys -t w -l "i4g128a"
wait_for "int4-g128-asym"
menu_has int4-g128 && fail "i4g128a kept int4-g128 in the menu"
keys Enter
wait_gone "format · "
cmd "save $work/f.json"
wait_for "session saved to"
check_file "$work/f.json" '"format":[[:space:]]*"int4-g128-asym"' "the format chosen after filtering"
keys q
wait_for "EXIT 0"

echo "== :open and :session of a file that does not exist say so and ask nothing"
start 80 24 "$model"
wait_for "token_embd"
cmd "rule all format=q8_0" # unsaved changes
cmd "open /nope.gguf"
wait_for "/nope.gguf does not exist"
screen | grep -q "unsaved changes" && fail ":open asked about unsaved changes before finding the file missing"
cmd "session $work/nope.json"
wait_for "nope.json does not exist"
screen | grep -q "unsaved changes" && fail ":session asked about unsaved changes before finding the file missing"
cmd "quit!"
wait_for "EXIT 0"

echo "== keys typed ahead of a popup never run as the view's keys"
start 80 24 "$model"
wait_for "token_embd"
cmd "rule all format=q8_0"
wait_for "9.97 bpw"
# One burst: a command whose error is a box, then o (file picker) and u (undo).
T send-keys -t w ":sweep q9_9,q4_0" Enter ou
wait_for "any key closes the message"
sleep 0.5
screen | grep -q "Open a model or a session" && fail "a key typed ahead of the error box opened the file picker"
screen | grep -q "9.97 bpw" || fail "a key typed ahead of the error box undid the recipe"
wait_for "unknown format 'q9_9'" # the box is still up: o and u were typed ahead of it
# A burst that starts with ':' closes the box and goes to the command line.
T send-keys -t w ":note typed ahead" Enter
wait_gone "any key closes the message"
keys 4
wait_for "typed ahead"
# Keys apart: the first closes the box and does nothing else.
cmd "sweep q9_9,q4_0"
wait_for "any key closes the message"
keys o
wait_gone "any key closes the message"
sleep 0.3
screen | grep -q "Open a model or a session" && fail "the key that closed the error box opened the file picker"
# A question is never answered by keys typed ahead of it.
T send-keys -t w qd
wait_for "unsaved changes"
sleep 0.5
screen | grep -q "EXIT" && fail "a key typed ahead of the question discarded the session"
keys c
wait_gone "unsaved changes"
cmd "quit!"
wait_for "EXIT 0"

echo "== tied embeddings: the Model, Layer and Heatmap views say token_embd is the output head"
tied=$fixtures/models/TinyStories-656K-Q8_0.gguf # no output.weight: the head is the embedding
if [ -r "$tied" ]; then
	start 80 24 "$tied"
	wait_for "token_embd+output"
	wait_for "token_embd is also the output head (tied embeddings)"
	screen | grep -qE "^ +output " && fail "a tied model lists the output head as a module of its own"
	cmd "inspect token_embd"
	wait_for "also the output head (tied embeddings)"
	cmd "sweep q8_0 --windows 1 --ctx 32"
	wait_for "sweep finished" 120
	wait_match "^ token_embd\\+output "
	cmd "quit!"
	wait_for "EXIT 0"
else
	echo "SKIP: $tied is absent"
fi
start 80 24 "$model" # its own output head
wait_for "token_embd"
wait_match "^ +output +512 x 64"
screen | grep -q "token_embd+output\\|tied embeddings" && fail "an untied model is said to be tied"
cmd "quit!"
wait_for "EXIT 0"

echo "== Evaluate: two marked runs side by side, with the modules their recipes plan differently"
start 80 24 "$model"
wait_for "token_embd"
cmd "set ctx=64 chunks=2"
keys 4 e
wait_row 7 "base model" 60
cmd "rule all format=q8_0"
keys e
wait_row 7 "(all: q8_0)" 60
cmd "rule add blk.0.attn_q format=q4_0"
keys e
wait_row 7 "(as is +2 rules)" 60
keys m
wait_for "run 3 marked: mark another"
keys k m
wait_for "Run 3 against run 2"
wait_match "^ recipe +all: q8_0 +as is \\+2 rules"
wait_match "^ PPL +[0-9.]+ +[0-9.]+ +[-+][0-9.]+"
wait_match "^ top-1 +[0-9.]+% +[0-9.]+% +[-+][0-9.]+ pt"
wait_for "1 module planned differently:"
wait_match "blk\\.0\\.attn_q +q8_0 → q4_0"
wait_match "^ 2\\* .*all: q8_0"
wait_match "^ 3\\* .*as is \\+2 rules"
keys M
wait_gone "planned differently"
wait_for "KL mean"
cmd "save $work/cmp.json"
wait_for "session saved to"
check_file "$work/cmp.json" '"recipe_used":' "each run's recipe"
keys q
wait_for "EXIT 0"
start 80 24 --session "$work/cmp.json" # the runs' recipes come back with the session
wait_for "KL mean"
keys g m j m
wait_for "Run 2 against run 1"
wait_for "37 modules planned differently:"
wait_match "token_embd +f32 as is → q8_0"
wait_for "… and"
keys q
wait_for "EXIT 0"

echo "== the Model view: the KV cache's bytes at the trained context, F32 and in the recipe's kv_cache format"
# stories260K: 5 blocks, keys and values of 32 values a row, 2048 positions;
# F32 2 x 5 x 2048 x 32 x 4 bytes, int8 2 x 5 x 2048 x (32 + a 4-byte scale).
printf '{"slimlab_recipe": 1, "kv_cache": "int8"}\n' >"$work/kv.json"
start 160 24 "$model"
wait_for "token_embd"
wait_row 3 "· KV cache 2.62 MB at 2048 positions"
cmd "recipe load $work/kv.json"
wait_row 3 "· KV cache 2.62 MB at 2048 positions → 737.28 KB in int8"
cmd "quit!"
wait_for "EXIT 0"

finish "all workbench key checks passed"
