#!/bin/sh
# Drives the real workbench under tmux, in a private server: opens a model,
# moves through the views, edits the recipe (command line, menus, undo and
# redo), evaluates, generates, saves, quits and reopens the session; at
# 80x24, 200x60 and 20x5 and across live resizes; cancels jobs with Esc and
# Ctrl-C; refuses a session whose model changed and session files that are
# truncated or from a newer slimlab; recovers after SIGKILL, also in the
# middle of autosaves. Every wait has a deadline, so nothing hangs.
. "${SL_SRCDIR:-.}/tests/tui-lib.sh"

echo "== a session from start to end at 80x24"
start 80 24 "$model"
wait_for "token_embd" && wait_for "blk.0  (7 modules)"
keys Down Down Enter
wait_for "blk.0.attn_q  64 x 64" && wait_for "largest |w|"
keys 1 3
wait_for "estimate:"
cmd "rule all format=q8_0"
wait_for "1 rule after the default"
keys Down f
wait_for "leave the weights as they are"
T send-keys -t w -l "q6" # typing filters the menu: q6_k is the one that holds q and 6
keys Enter
wait_for "q6_k"
keys u
wait_for "redo 1" && wait_for "q8_0"
keys U
wait_for "redo 0" && wait_for "q6_k"
keys 4 e
wait_for "KL mean" 240
wait_for "all: q6_k"
keys 5 g
wait_for "base model" 60 && wait_for "64 tokens" 60
cmd "note tried q6_k everywhere"
cmd "save $work/s.json"
wait_for "session saved to"
[ -f "$work/s.json" ] || fail "no session file"
check_file "$work/s.json" '"slimlab_session":' "session"
check_file "$work/s.json" '"format":[[:space:]]*"q6_k"' "recipe"
check_file "$work/s.json" '"kl_mean":' "evaluation history"
check_file "$work/s.json" '"text_path":[[:space:]]*".*/calib.txt"' "the text file a run was measured on"
check_file "$work/s.json" 'tried q6_k everywhere' "notes"
check_file "$work/s.json" '"current":[[:space:]]*"generate"' "view state"
keys q
wait_for "EXIT 0"
ls "$XDG_STATE_HOME"/slimlab/autosave-* >/dev/null 2>&1 && fail "a clean quit left an autosave"

echo "== reopen the session; Ctrl-C asks; live resize"
start 80 24 --session "$work/s.json"
wait_for "Generate" && wait_for "prompt: Once upon a time"
keys 4
wait_for "KL mean" && wait_for "tried q6_k everywhere"
keys 3
wait_for "q6_k"
keys C-c
wait_for "Quit slimlab?"
keys n
wait_gone "Quit slimlab?"
T resize-window -t w -x 200 -y 60
wait_row 59 calibration # the wide layout reaches the bottom row
T resize-window -t w -x 20 -y 5
wait_for "Terminal too small" && wait_for "20x5, needs 60x15"
T resize-window -t w -x 80 -y 24
wait_for "estimate:"
keys q
wait_for "EXIT 0"

echo "== starting at 200x60 and at 20x5"
start 200 60 "$model"
wait_for "token_embd"
keys 1 # clears the "opened" message: the status line shows the key hints
wait_row 60 "q quit" # the status line is the bottom row
keys q
wait_for "EXIT 0"
start 20 5 "$model"
wait_for "Terminal too small" && wait_for "enlarge it or q"
keys q
wait_for "EXIT 0"

echo "== jobs: Esc and Ctrl-C cancel, the program stays"
start 80 24 "$model"
wait_for "token_embd"
cmd "set chunks=0" # every window of the calibration text: long enough to cancel
keys 4 e
wait_for "ETA" 30
keys Escape
wait_for "cancelled" 30
wait_for "No runs yet"
keys e
wait_for "ETA" 30
keys C-c
wait_for "cancelled" 30
wait_for "No runs yet"
keys q
wait_for "Before quitting" # the setting changed: unsaved
keys d
wait_for "EXIT 0"

echo "== colours: 256, 8, true colour, none"
# colour_mode ENV PATTERN WHAT: the screen, with its attributes, has PATTERN.
colour_mode() {
	term_env=$1
	start 80 24 "$model"
	wait_for "token_embd"
	T capture-pane -e -p -t w | grep -Eq -- "$2" || fail "$3: no '$2' in the screen's escape sequences"
	keys q
	wait_for "EXIT 0"
}
colour_mode "TERM=xterm-256color" '38;5;' "256 colours"
colour_mode "TERM=xterm" '[[;]3[0-7]m' "8 colours"
colour_mode "NO_COLOR=1 TERM=xterm-256color" '[[;]7m' "no colour (reverse video stands in)"
T capture-pane -e -p -t w | grep -q '38;[25];' && fail "NO_COLOR: colours were drawn"
if command -v tic >/dev/null 2>&1; then
	# A direct-colour description, as ncurses' xterm-direct defines it.
	printf '%s\n' 'xterm-direct|xterm with direct colour,' \
		'	colors#0x1000000, pairs#0x10000, RGB,' \
		'	setab=\E[%?%p1%{8}%<%t4%p1%d%e48\:2\:\:%p1%{65536}%/%d\:%p1%{256}%/%{255}%&%d\:%p1%{255}%&%d%;m,' \
		'	setaf=\E[%?%p1%{8}%<%t3%p1%d%e38\:2\:\:%p1%{65536}%/%d\:%p1%{256}%/%{255}%&%d\:%p1%{255}%&%d%;m,' \
		'	use=xterm-256color,' >"$work/direct.src"
	if tic -x -o "$work/terminfo" "$work/direct.src" 2>/dev/null; then
		colour_mode "TERMINFO=$work/terminfo TERM=xterm-direct" '38;2;' "true colour"
	fi
fi
term_env="TERM=xterm-256color"

echo "== no model named: the shipped one, else the file picker; the command line, the mouse"
start 80 24
if [ -f "$srcdir/models/workshop.gguf" ]; then
	wait_for "workshop.gguf" 30
	keys o
fi
wait_for "Open a model or a session"
cmd "open $model"
wait_for "token_embd"
click 23 2 # the third tab
wait_for "estimate:"
keys :
T send-keys -t w -l "insp"
keys Tab
T send-keys -t w -l "blk.1.ffn_d"
keys Tab Enter
wait_for "blk.1.ffn_down  64 x 172"
keys q
wait_for "EXIT 0"

echo "== a session whose model changed is refused"
cp "$model" "$work/m.gguf"
start 80 24 "$work/m.gguf"
wait_for "token_embd"
cmd "rule all format=q8_0"
cmd "save $work/m.json"
wait_for "session saved to"
keys q
wait_for "EXIT 0"
printf 'x' >>"$work/m.gguf"
cp "$work/m.json" "$work/m.before"
start 80 24 --session "$work/m.json"
wait_for "refused"
cmp -s "$work/m.json" "$work/m.before" || fail "a refused session file was changed"
keys Escape # closes the message box (and does nothing else)
wait_gone "any key closes"
keys q
wait_for "EXIT 0"

echo "== truncated and future-version session files"
head -c 150 "$work/s.json" >"$work/cut.json"
start 80 24 --session "$work/cut.json"
wait_for "truncated"
keys Escape # closes the message box (and does nothing else)
wait_gone "any key closes"
keys q
wait_for "EXIT 0"
sed 's/"slimlab_session":[[:space:]]*[0-9]*/"slimlab_session": 7/' "$work/s.json" >"$work/future.json"
start 80 24 --session "$work/future.json"
wait_for "newer slimlab"
keys Escape # closes the message box (and does nothing else)
wait_gone "any key closes"
keys q
wait_for "EXIT 0"

echo "== crash and termination signals give the terminal back"
start 80 24 "$model"
wait_for "token_embd"
kill -SEGV "$(app_pid)"
wait_for "EXIT"
wait_gone "1 Model" # the alternate screen was left
start 80 24 "$model" # nothing was unsaved: no question about recovery
wait_for "token_embd"
cmd "note before SIGTERM"
kill -TERM "$(app_pid)"
wait_for "EXIT 143" # it dies of the signal, after restoring the terminal
wait_gone "1 Model"
ls "$XDG_STATE_HOME"/slimlab/autosave-*.json >/dev/null 2>&1 || fail "SIGTERM with unsaved work left no autosave"
start 80 24
wait_for "did not exit cleanly"
keys d # discard it: the next section starts clean
wait_gone "did not exit cleanly"
keys q
wait_for "EXIT 0"

echo "== SIGKILL, also during autosaves: the next start recovers the work"
start 80 24 "$model"
wait_for "token_embd"
cmd "rule all format=q4_0"
wait_for "q4_0"
round=1
while [ "$round" -le 6 ]; do
	cmd "note round $round"
	jitter
	pid=$(app_pid)
	[ -n "$pid" ] && kill -KILL "$pid"
	wait_for "EXIT 137"
	start 80 24
	wait_for "did not exit cleanly" || break
	keys r
	wait_for "recovered the session" || break
	round=$((round + 1))
done
# Killed once the autosave had time to finish, nothing is lost.
cmd "note the last word"
sleep 1
kill -KILL "$(app_pid)"
wait_for "EXIT 137"
start 80 24
wait_for "did not exit cleanly"
keys r
wait_for "recovered the session"
keys 4
wait_for "the last word"
keys 3
wait_for "q4_0"
cmd "quit!"
wait_for "EXIT 0"

finish "all workbench checks passed"
