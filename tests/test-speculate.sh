#!/bin/sh
# The Speculate view, driving the real workbench under tmux on the workshop
# model: :speculate with a draft format streams the model's own greedy
# text (slimlab generate's, word for word) and shows acceptance, tokens/s
# and the speed-up measured and predicted; keys change k and the
# temperature and run again, and cycle the draft; prompt lookup; S opens
# the card of the speed-up's timing; Esc stops
# a long run keeping its figures; the acceptance an evaluation or the sweep
# predicts stands next to the measured one; the runs join the history and
# the saved session; 80x24, 20x5, 8 colours and none. Every wait has a
# deadline, so nothing hangs.
. "${SL_SRCDIR:-.}/tests/tui-lib.sh"

ws=$srcdir/models/workshop.gguf
[ -r "$ws" ] || { echo "SKIP: $ws is absent"; exit 77; }
prompt=$(head -n 1 "$srcdir/data/eval.txt")
# Tokens per run: CI's portable-kernel and sanitizer passes run every key
# and screen on shorter runs (test-speculate checks the figures there).
toks=120 short=60
if [ -n "$light" ]; then
	toks=40 short=20
	light_note "runs of $toks and $short tokens instead of 120 and 60"
fi
# text: the text area's rows at 80x24, joined as the text they wrap.
text() { screen | sed -n '5,13p' | tr '\n' ' ' | tr -s ' '; }

echo "== a draft format: the model's own greedy text, the figures"
start 80 24 "$ws"
wait_for "token_embd" 30
keys 8
wait_for "No run yet"
cmd "speculate --draft-format q8_0 -n $toks"
wait_for "q8_0, every module · k 4 · greedy · $toks tokens"
wait_match "$toks tokens: acceptance [01]\.[0-9]{3}" 120
wait_match "acceptance [01]\.[0-9]{3} of the tokens checked · [01]\.[0-9]{3} of those drafted"
wait_match "^ *[0-9.]+ tokens per pass · [0-9]+ passes · $toks tokens · check [0-9.]+ steps, draft [0-9.]+"
wait_match "tokens/s [0-9]+ speculative · [0-9]+ the model alone, timed in the same run"
wait_match "speed-up [0-9.]+x measured · [0-9.]+x predicted · [0-9.]+x if a check took one step"
wait_match "^ +1 .* (0|1)\.[0-9]{2} +0 " # per position and accepted lengths
# Greedy speculative decoding writes what the model alone writes.
want=$("$bin" generate "$ws" -p "$prompt" -n $toks --temp 0 2>/dev/null | tr '\n' ' ' | tr -s ' ' |
	awk '{ s = ""; for (i = NF - 9; i <= NF; i++) if (i > 0) s = s (s ? " " : "") $i; print s }')
[ -n "$want" ] || fail "slimlab generate wrote nothing"
case "$(text)" in
*"$want"*) ;;
*) fail "the streamed text does not end as the model's greedy text: '$want'" ;;
esac
T capture-pane -e -p -t w | sed -n '5,13p' | grep -q '38;5;113' ||
	fail "256 colours: no kept draft token in the text's colour"

echo "== keys: k up and down, the temperature, the draft"
keys +
wait_for "k 5 · greedy" 10
wait_match "$toks tokens: acceptance [01]\.[0-9]{3}" 120
wait_match "^ +5 .* [01]\.[0-9]{2} +4 " # a fifth position now
keys -
wait_for "k 4 · greedy" 10
wait_match "$toks tokens: acceptance [01]\.[0-9]{3}" 120
keys t
wait_for "k 4 · temperature 0.8" 10
wait_match "$toks tokens: acceptance [01]\.[0-9]{3}" 120
keys t
wait_for "k 4 · greedy" 10
wait_match "$toks tokens: acceptance [01]\.[0-9]{3}" 120
keys d
wait_for "q4_0, every module ·" 10
wait_match "$toks tokens: acceptance [01]\.[0-9]{3}" 120
keys d
wait_for "first 3 of 6 blocks ·" 10
wait_match "$toks tokens: acceptance [01]\.[0-9]{3}" 120

echo "== prompt lookup"
cmd "speculate --draft-ngram 3 -n $toks"
wait_for "prompt lookup, 3 tokens · k 4" 10
wait_match "$toks tokens: acceptance [01]\.[0-9]{3}" 120
wait_match "speed-up [0-9.]+x measured"
# S: the card that says how both speeds are timed.
keys S
wait_for "Speed-up of speculative decoding" 10
wait_for "What it does"
keys Escape
wait_for "prompt lookup, 3 tokens · k 4" 10

echo "== Esc stops a long run; its figures stay"
cmd "speculate --draft-ngram 3 -n 4000"
wait_for "4000 tokens  running" 10
wait_match "· [1-9][0-9]* passes ·" 60
keys Escape
wait_for "cancelled at " 60
wait_for "4000 tokens  cancelled"
got=$(screen | sed -n 's/.* passes · \([0-9]*\) tokens.*/\1/p' | head -n 1)
[ -n "$got" ] && [ "$got" -lt 4000 ] || fail "Esc did not stop the run midway ($got tokens)"
wait_match "acceptance [01]\.[0-9]{3} of the tokens checked"

echo "== the acceptance an evaluation and the sweep predict"
cmd "rule all format=q8_0"
cmd "eval --ctx 64 --chunks 2"
wait_for "KL 0." 60
cmd "speculate --draft-current --temp 0.8 -n $short"
wait_for "the recipe (8." 10
wait_match "acceptance [01]\.[0-9]{3} of the tokens checked, [01]\.[0-9]{3} predicted \(evaluation 10\)" 120
cmd "sweep q4_0 --windows 2 --ctx 32"
wait_for "sweep finished" 400 # the portable path on a loaded machine takes minutes
cmd "speculate --draft-format q4_0 --temp 0 -n $short"
wait_match "acceptance [01]\.[0-9]{3} of the tokens checked, [01]\.[0-9]{3} predicted \(top-1 of the sweep\)" 120

echo "== the runs in the history and the saved session"
keys 4
# 12 runs: the eight above, the cancelled one (9), an evaluation (10),
# two with predictions.
wait_match "^ 12 +specul +q4_0, every mod.* [0-9.]+ +promp +accept [01]\.[0-9]{3} +[0-9.]+/pass +[0-9.]+x"
wait_match "^ 9 +specul +prompt lookup, 3 .*accept [01]\.[0-9]{3}"
wait_match "^ 10 +recipe +all: q8_0 "
wait_for "speculative decoding, draft q4_0, every module, k 4, greedy"
cmd "save $work/s.json"
wait_for "session saved to"
check_file "$work/s.json" '"speculative":' "a speculative run"
check_file "$work/s.json" '"tokens_per_pass":' "its tokens per pass"
check_file "$work/s.json" '"cancelled":[[:space:]]*true' "the cancelled run"
check_file "$work/s.json" '"predicted_acceptance":' "its predicted acceptance"
check_file "$work/s.json" '"acceptance":' "acceptance"
check_file "$work/s.json" '"token_acceptance":' "the acceptance of the tokens checked"
check_file "$work/s.json" '"predicted_speedup_costed":' "the prediction at the verification's cost"

echo "== 20x5 and back"
keys 8
T resize-window -t w -x 20 -y 5
wait_for "Terminal too small"
T resize-window -t w -x 80 -y 24
wait_for "q4_0, every module ·"
cmd "quit!"
wait_for "EXIT 0"

echo "== the saved session keeps the runs"
start 80 24 --session "$work/s.json"
wait_for "workshop.gguf" 60
keys 4
wait_match "^ 12 +specul +q4_0, every mod" 30
cmd "quit!"
wait_for "EXIT 0"

echo "== no colours, and 8"
# colours ENV: a prompt-lookup run in that terminal; $shot holds the screen
# with its attributes.
colours() {
	term_env=$1
	start 80 24 "$ws"
	wait_for "token_embd" 30
	cmd "speculate --draft-format q8_0 -n $short"
	wait_match "$short tokens: acceptance [01]\.[0-9]{3}" 120
	shot=$(T capture-pane -e -p -t w | sed -n '5,13p')
	cmd "quit!"
	wait_for "EXIT 0"
}
colours "NO_COLOR=1 TERM=xterm-256color"
echo "$shot" | grep -q '38;[25];' && fail "NO_COLOR: the text was coloured"
echo "$shot" | grep -q '\[4m' || fail "no colours: the model's own tokens are not underlined"
colours "TERM=xterm"
echo "$shot" | grep -Eq '[[;]3[0-7]m' || fail "8 colours: the text has no colours"
term_env="TERM=xterm-256color"

finish "all speculate checks passed"
