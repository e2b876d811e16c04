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
keys q
wait_for "Before quitting"
keys d
wait_for "EXIT 0"

finish "all workbench key checks passed"
