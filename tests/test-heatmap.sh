#!/bin/sh
# The Heatmap view, driving the real workbench under tmux: a
# sweep's cells fill in while it runs, Esc stops it keeping its cells, the
# session keeps them across a quit and :sweep goes on from them to the end;
# a key (or a click and a key) puts a cell's option into the recipe; the
# sweep exports as SVG, CSV and JSON; b charts KL against bytes for a row
# and the whole model, x writes the chart; an automatic recipe is measured next
# to its prediction on the sweep's windows, and its run says so; metric (KL,
# delta PPL, 1 - top-1, 1 - acceptance), sort and filter; 80x24, 200x60 and 20x5;
# glyph density without colours; a bad option list is a message. Every
# wait has a deadline, so nothing hangs. (The Train view has
# tests/test-train-view.sh.)
. "${SL_SRCDIR:-.}/tests/tui-lib.sh"

# measured: how many cells the heatmap's title says are measured.
measured() { screen | sed -n 's/.* \([0-9][0-9]*\)\/111 measured.*/\1/p' | head -n 1; }
# wait_more N SECONDS: until more than N cells are measured.
wait_more() {
	n=$(($2 * 10))
	while [ "$n" -gt 0 ]; do
		m=$(measured)
		[ -n "$m" ] && [ "$m" -gt "$1" ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
	fail "the heatmap never showed more than $1 measured cells"
	return 1
}

# CI's portable-kernel and sanitizer passes sweep a quarter of the windows'
# tokens (test-sweep checks the cells' figures there): about the time a
# full sweep takes in the normal build, so Esc still lands midway.
windows=8 ctx=256
if [ -n "$light" ]; then
	windows=4 ctx=128
	light_note "the sweep on $windows windows of $ctx tokens instead of 8 of 256"
fi
sweep="sweep q8_0,q4_0,int2-g32 --windows $windows --ctx $ctx"

echo "== a sweep fills in live, stops on Esc, and stays in the session"
start 80 24 "$model"
wait_for "token_embd"
cmd "sweep q9_9,q4_0"
wait_for "unknown format 'q9_9'"
keys Escape # closes the message box (and does nothing else)
wait_gone "any key closes"
cmd "$sweep"
wait_for "KL divergence" 120
wait_more 0 120
first=$(measured)
wait_more "$first" 60 # a later screen has more: the cells arrive as they finish
keys Escape
wait_for "sweep cancelled:" 60
stopped=$(measured)
[ -n "$stopped" ] && [ "$stopped" -lt 111 ] || fail "Esc did not stop the sweep midway ($stopped cells)"
screen | grep -q "·" || fail "no cell is left unmeasured after the cancel"
cmd "save $work/h.json"
wait_for "session saved to"
check_file "$work/h.json" '"slimlab_sweep":' "the session's sweep"
keys q
wait_for "EXIT 0"

echo "== the reopened session has the cells; :sweep goes on to the end"
start 80 24 --session "$work/h.json"
wait_for "sweep is back: $stopped of 111 cells" 120
[ "$(measured)" = "$stopped" ] || fail "the restored heatmap shows $(measured) cells, not $stopped"
keys c # the same sweep again
wait_for "sweep finished: 111 cells, $stopped of them carried over" 240
wait_for "111/111 measured"

echo "== a cell into the recipe, by key and by click; undo"
keys j l # blk.0.attn_q under q4_0
wait_for "blk.0.attn_q × q4_0"
keys Enter
wait_for "blk.0.attn_q: q4_0 rtn, in the recipe"
keys 3
wait_for "1 rule after the default"
screen | grep "blk.0.attn_q" | grep -q "q4_0" || fail "the Recipe view lacks the rule for blk.0.attn_q"
keys u
wait_for "0 rules after the default"
keys 6
click 46 7 # token_embd under int2-g32
wait_for "token_embd × int2-g32"
keys r
wait_for "token_embd: int2-g32 rtn, in the recipe"

echo "== metric, sort, filter; export"
keys m
wait_for "change in perplexity"
keys m m
wait_for "1 - acceptance as a draft"
wait_match "top-1 [0-9.]+%  acceptance [0-9.]+%" # the cell's acceptance in the inspector
keys m
wait_for "KL divergence"
cmd "heatmap metric accept"
wait_for "1 - acceptance as a draft"
cmd "heatmap metric kl"
wait_for "KL divergence"
keys s
wait_for "sort kl under int2-g32"
keys /
T send-keys -t w -l "ffn_*"
keys Enter
wait_for "15/37 rows"
cmd "heatmap filter"
wait_for "37/37 rows"
cmd "sweep export $work/h.svg"
wait_for "h.svg written: 111 of 111 cells"
cmd "sweep export $work/h.csv"
wait_for "h.csv written"
cmd "sweep export $work/sweep.json"
wait_for "sweep.json written"
cmd "sweep export $work/h.txt"
wait_for "name a .csv, .json or .svg file"
keys b
wait_match "KL against bytes · (token_embd|blk\.[0-9]+\.[a-z_]+) · "
keys b
wait_for "KL against bytes · the whole model"
screen | grep -q "quantization" || fail "the chart has no legend"
screen | grep -q "from .* q8_0 .* quantization" || fail "the chart does not say which option wins from which size"
keys x
wait_for ":sweep chart tradeoff.svg"
keys Escape
wait_gone ":sweep chart tradeoff.svg"
cmd "sweep chart $work/t.svg"
wait_for "t.svg written: KL against bytes of the whole model"
check_file "$work/t.svg" 'The least KL up to each size' "the chart's winners"
keys b
wait_match "KL divergence|change in perplexity"
check_file "$work/h.svg" '<svg' "SVG"
check_file "$work/h.svg" 'int2-g32' "SVG option labels"
[ "$(wc -l <"$work/h.csv")" = 112 ] || fail "the CSV has $(wc -l <"$work/h.csv") lines, not a header and 111 cells"
check_file "$work/h.csv" '^blk.4.ffn_down,4,q8_0,' "CSV rows"
check_file "$work/sweep.json" '"slimlab_sweep":' "JSON"
T capture-pane -e -p -t w | grep -q '48;5;' || fail "256 colours: the cells have no background colours"

cmd "save"
wait_for "session saved to"

echo "== an automatic recipe, measured next to its prediction"
cmd "autorecipe 8bpw"
wait_for "automatic 8bpw"
wait_for "predicted (the modules' KL measured alone" 240
wait_for "(predicted 0."
wait_for "on the calibration text (calib.txt): the sweep's $windows windows of $ctx tokens" # not the session's
wait_match "^ [0-9]+ .* calib +$windows +$ctx +[0-9]+\\.[0-9]{4} "
keys 3
wait_for "37 rules after the default"
keys u # the automatic recipe is one undoable change
wait_for "1 rule after the default"
cmd "quit!"
wait_for "EXIT 0"

echo "== 200x60, 20x5, and glyph density without colours"
start 200 60 --session "$work/h.json"
wait_for "sweep is back: 111 of 111 cells" 120
keys 6
wait_for "output" # every row fits
screen | grep -q "blk.4  attn_q" || fail "at 200x60 the last block is not on the screen"
T resize-window -t w -x 20 -y 5
wait_for "Terminal too small"
T resize-window -t w -x 80 -y 24
wait_for "KL divergence"
cmd "quit!"
wait_for "EXIT 0"
term_env="NO_COLOR=1 TERM=xterm-256color"
start 80 24 --session "$work/h.json"
wait_for "sweep is back" 120
keys 6
wait_for "KL divergence"
screen | grep -q "▓\|█" || fail "no colours: the cells have no glyphs of density"
T capture-pane -e -p -t w | grep -q '48;5;' && fail "NO_COLOR: cells were coloured"
keys q
wait_for "EXIT 0"

finish "all heatmap checks passed"
