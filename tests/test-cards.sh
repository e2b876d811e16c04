#!/bin/sh
# Technique cards in the workbench, driven under tmux at 80x24: ? on a
# format menu's item, on a heatmap column and on an Evaluate history
# column opens that entry's card, Esc closes it, F1 still shows the keys
# and ? shows them where nothing with a card is under the cursor; the
# Help view lists every card and opens one, which scrolls; :card finds a
# card by name and refuses an unknown one; the high-contrast palette, by
# :palette, --palette and SLIMLAB_PALETTE. Every wait has a deadline, so
# nothing hangs.
. "${SL_SRCDIR:-.}/tests/tui-lib.sh"

# closes the card panel (Esc alone, so that nothing is typed after it)
close_card() {
	keys Escape
	wait_gone "Esc closes"
}
# lines_with SGR: how many screen lines carry an escape sequence with SGR.
lines_with() { T capture-pane -e -p -t w | grep -c -- "$1"; }

echo "== slimlab card: a card as Markdown or JSON, the list, unknown names"
out=$("$bin" card gptq) || fail "slimlab card gptq exited $?"
for s in "## GPTQ: second-order rounding" "(method gptq)" "**Formula.**" "**Paper.** Frantar et al. 2023"; do
	echo "$out" | grep -qF -- "$s" || fail "slimlab card gptq lacks '$s'"
done
"$bin" card pattern 2:4 --json | python3 -c '
import json, sys
c = json.load(sys.stdin)
assert c["kind"] == "pattern" and c["name"] == "2:4" and c["title"].startswith("N:M"), c
assert all(c[k] for k in ("what", "formula", "watch", "pitfall", "paper")), c' || fail "slimlab card pattern 2:4 --json"
n=$("$bin" card --list | wc -l)
m=$("$bin" card --list --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
[ "$n" -ge 30 ] && [ "$n" = "$m" ] || fail "card --list: $n lines, $m in JSON"
"$bin" card nosuch >/dev/null 2>"$work/err" && fail "slimlab card nosuch succeeded"
grep -q "no card for 'nosuch'" "$work/err" || fail "slimlab card nosuch: $(cat "$work/err")"
"$bin" card colour q4_0 >/dev/null 2>&1
[ $? -eq 2 ] || fail "an unknown kind is not a usage error"

echo "== ? where nothing has a card shows the keys; F1 always does"
start 80 24 "$model"
wait_for "token_embd"
keys '?'
wait_for "open or close a block"
keys Escape
wait_gone "open or close a block"

echo "== ? on a format menu's item opens its card; Esc closes it and the menu stays"
keys 3
wait_for "0 rules after the default"
keys f
wait_for "leave the weights as they are"
T send-keys -t w -l nvfp4
keys '?'
wait_for "NVFP4"
wait_for "What it does"
wait_for "E4M3 scale"
wait_for "format nvfp4  Esc closes"
keys F1 # the keys instead of the card
wait_for "the card of the rule's technique"
keys Escape
wait_gone "the card of the rule's technique"
screen | grep -q "Esc closes" && fail "F1 left the card open"
keys Escape # the menu
wait_gone "format · nvfp4"
keys m
wait_for "Hessian-aware"
T send-keys -t w -l gptq
keys '?'
wait_for "GPTQ: second-order rounding"
wait_for "inverse Hessian"
keys PageDown # the paper is below the panel's fold at 80x24
wait_for "Frantar et al. 2023"
close_card
keys Escape
wait_gone "method · gptq"

echo "== ? on a heatmap column opens its option's card, M the metric's"
cmd "sweep q4_0,sparse-2:4 --windows 2 --ctx 64"
wait_for "sweep finished" 120
keys 6
wait_for "KL divergence"
keys '?'
wait_for "ggml blocks of 32 (q8_0, q5_0, q4_0)"
wait_for "format q4_0  Esc closes"
close_card
keys l
wait_for "× sparse-2:4"
keys '?'
wait_for "N:M semi-structured sparsity"
wait_for "pattern 2:4  Esc closes"
close_card
keys M
wait_for "KL divergence from the base"
wait_for "metric kl  Esc closes"
keys PageDown
wait_for "Kullback and Leibler"
close_card

echo "== ? on an Evaluate history column opens its figure's card"
cmd "set ctx=64 chunks=2"
keys 4
keys e
wait_match "^ 1 +base" 60
keys '?'
wait_for "PPL: perplexity"
close_card
keys Right # PPL to KL (at 80 columns delta PPL gives way)
keys '?'
wait_for "KL divergence from the base"
wait_for "metric kl  Esc closes"
close_card
keys Right
keys '?'
wait_for "Top-1 agreement"
close_card
keys F1
wait_for "choose a figure column"
keys Escape
wait_gone "choose a figure column"

echo "== the Heal view: ? the method's card, K / P / T its figures"
keys 7
wait_for "h heal  r resume"
keys K
wait_for "KL divergence from the base"
wait_for "metric kl  Esc closes"
close_card
keys T
wait_for "Top-1 agreement"
close_card
keys P
wait_for "PPL: perplexity"
close_card

echo "== Help lists every card at 80x24 and opens one, which scrolls"
keys 0
wait_for "Technique cards"
wait_for "Floats: f32, f16, bf16"
keys PageDown
wait_for "Wanda: weights and activations"
keys PageDown
wait_for "Speculative decoding"
wait_for "LoftQ: quantization and adapters"
keys g
keys j # the first card
keys Enter
wait_for "format f32  Esc closes"
wait_for "Floats: f32, f16, bf16"
title=$(screen | sed -n '3p')
case "$title" in *"┌─ Floats"*) ;; *) fail "the card panel's frame lacks its title: $title" ;; esac
wait_for "What it does"
wait_for "Up/Down PgUp/PgDn scroll"
screen | grep -q "IEEE 754-2008" && fail "the paper fits at 80x24 before scrolling: the scroll is not tested"
keys PageDown
wait_for "IEEE 754-2008"
close_card
keys PageDown # a card further down the list
keys Enter
wait_for "Esc closes"
close_card

echo "== :card by kind and name, by name alone; unknown cards and kinds are said"
# The Help view behind lists the cards' titles too: wait for the card's
# panel (its footer) before its title.
cmd "card method awq"
wait_for "method awq  Esc closes"
wait_for "AWQ: activation-aware scaling"
close_card
cmd "card qad"
wait_for "qad  Esc closes"
wait_for "QAD: quantization-aware distillation"
close_card
cmd "card 4:8"
wait_for "Esc closes"
wait_for "N:M semi-structured sparsity"
close_card
cmd "card nosuch"
wait_for "no card for 'nosuch'"
cmd "card colour q4_0"
wait_for "no kind of card 'colour'"

echo "== the high-contrast palette: :palette, --palette, SLIMLAB_PALETTE"
before=$(lines_with '48;5;16m')
[ "$before" -eq 0 ] || fail "the default palette already paints $before lines black"
cmd "palette contrast"
wait_for "palette: contrast"
after=$(lines_with '48;5;16m')
[ "$after" -ge 5 ] || fail "the contrast palette paints only $after lines black"
cmd "palette default"
wait_for "palette: default"
sleep 0.3
[ "$(lines_with '48;5;16m')" -eq 0 ] || fail ":palette default kept the black background"
cmd "palette pastel"
wait_for "usage: palette default|contrast"
cmd "quit!"
wait_for "EXIT 0"

start 80 24 --palette contrast "$model"
wait_for "token_embd"
[ "$(lines_with "48;5;16m")" -ge 5 ] || fail "--palette contrast did not take"
keys q
wait_for "EXIT 0"
term_env="TERM=xterm-256color SLIMLAB_PALETTE=contrast"
start 80 24 "$model"
wait_for "token_embd"
[ "$(lines_with "48;5;16m")" -ge 5 ] || fail "SLIMLAB_PALETTE=contrast did not take"
keys q
wait_for "EXIT 0"
"$bin" --palette pastel "$model" >/dev/null 2>"$work/err" && fail "--palette pastel was taken"
grep -q "default or contrast, not 'pastel'" "$work/err" || fail "--palette pastel: $(cat "$work/err")"

finish "cards: ? opens the card under the cursor, Help lists and opens every card, the contrast palette"
