#!/bin/sh
# The workbench's keys and what they say, driven under tmux: each key the
# key bar and '?' name does what they say; the key bar stays whole while a
# job runs; a new evaluation is selected when it arrives. Every wait has a
# deadline, so nothing hangs.
. "${SL_SRCDIR:-.}/tests/tui-lib.sh"

# row N: screen row N (from 1).
row() { screen | sed -n "$1p"; }

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

echo "== a running job's progress is in the header; the key bar stays whole"
cmd "set chunks=0" # every window of the calibration text: long enough to watch
keys e
wait_row 1 "ETA" 30
wait_row 1 "Esc cancels"
hints="e evaluate  E eval text  c ctx  w windows  n note  ? keys  : command  q quit"
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
keys q
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

finish "all workbench key checks passed"
