# What the tmux-driven workbench tests share, sourced by them: a private
# tmux server running slimlab, keys and command lines typed into it, waits
# for the screen with deadlines, and a tally of failures that finish()
# turns into the exit status. SL_SRCDIR, SL_BUILDDIR and SL_FIXTURES say
# where things are (make check sets them); a test that sets model before
# sourcing this drives that model instead of the stories260K fixture.
set -u
srcdir=${SL_SRCDIR:-.}
builddir=${SL_BUILDDIR:-.}
fixtures=${SL_FIXTURES:-$srcdir/../shared/fixtures}
bin=$builddir/slimlab
model=${model:-$fixtures/models/stories260K.gguf}

command -v tmux >/dev/null 2>&1 || { echo "SKIP: tmux is not installed (tools/bootstrap installs it)"; exit 77; }
[ -r "$model" ] || { echo "SKIP: fixture $model is absent (set SL_FIXTURES)"; exit 77; }
[ -x "$bin" ] || { echo "FAIL: $bin is not built"; exit 1; }

. "$srcdir/tests/light.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/sltui.XXXXXX")
servers=0
sock=sltui$$-0
T() { tmux -L "$sock" -f /dev/null "$@"; }
cleanup() { T kill-server 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

export XDG_STATE_HOME="$work/state" XDG_CACHE_HOME="$work/cache" XDG_DATA_HOME="$work/data" SLIMLAB_DATA="$srcdir"
locale -a 2>/dev/null | grep -qi '^c.utf-\?8$' && export LC_ALL=C.UTF-8

fails=0
fail() {
	echo "FAIL: $*"
	echo "--- screen:"
	T capture-pane -p -t w 2>/dev/null
	echo "--- stderr:"
	cat "$work/stderr" 2>/dev/null
	fails=$((fails + 1))
}

# start W H ARGS...: a new server whose one window runs slimlab ARGS (a
# server of its own: a new one on the old socket can race the old one's
# exit), in a 256-colour terminal unless $term_env says otherwise.
term_env="TERM=xterm-256color"
start() {
	w=$1 h=$2
	shift 2
	T kill-server 2>/dev/null
	servers=$((servers + 1))
	sock=sltui$$-$servers
	T new-session -d -s w -x "$w" -y "$h" "env $term_env '$bin' $* 2>'$work/stderr'; echo \"EXIT \$?\"; sleep 600"
}
keys() { T send-keys -t w "$@"; }
# cmd TEXT: types ":TEXT" and Enter, the text once the command line is
# open (a screen still busy with what came before could read it as keys).
cmd() {
	T send-keys -t w :
	n=100
	while [ "$n" -gt 0 ] && ! screen | tail -n 1 | grep -q '^:'; do
		sleep 0.1
		n=$((n - 1))
	done
	T send-keys -t w -l "$1"
	T send-keys -t w Enter
}
screen() { T capture-pane -p -t w; }
# screen_has SECONDS GREP_FLAG PATTERN: until a line of the screen
# matches PATTERN as grep GREP_FLAG (-F text, -E regular expression) reads it.
screen_has() {
	n=$(($1 * 10))
	while [ "$n" -gt 0 ]; do
		screen | grep -q "$2" -- "$3" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
# wait_for TEXT [SECONDS]: until the screen shows TEXT.
wait_for() {
	screen_has "${2:-15}" -F "$1" && return 0
	fail "the screen never showed '$1'"
	return 1
}
# wait_match REGEX [SECONDS]: until a line of the screen matches REGEX (grep -E).
wait_match() {
	screen_has "${2:-15}" -E "$1" && return 0
	fail "the screen never matched '$1'"
	return 1
}
# wait_row ROW TEXT [SECONDS]: until screen row ROW (from 1) shows TEXT.
wait_row() {
	n=$((${3:-15} * 10))
	while [ "$n" -gt 0 ]; do
		screen | sed -n "$1p" | grep -qF -- "$2" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	fail "row $1 never showed '$2'"
	return 1
}
# wait_gone TEXT [SECONDS]
wait_gone() {
	n=$((${2:-15} * 10))
	while [ "$n" -gt 0 ]; do
		screen | grep -qF -- "$1" || return 0
		sleep 0.1
		n=$((n - 1))
	done
	fail "the screen kept showing '$1'"
	return 1
}
check_file() { # FILE PATTERN WHAT
	grep -q -- "$2" "$1" || fail "$3: '$2' is not in $1"
}
# The slimlab process in the window (the window's shell runs it).
app_pid() { pgrep -P "$(T display -p -t w '#{pane_pid}')" | head -n 1; }
# A random pause of 0 to 0.099 seconds.
jitter() { sleep "0.0$(od -An -N1 -tu1 /dev/urandom | tr -d ' ' | cut -c1)"; }
# click COLUMN ROW (from 1): a left press as xterm's classic mouse mode reports it.
click() { T send-keys -t w -l "$(printf "\033[M \\$(printf %o $(($1 + 32)))\\$(printf %o $(($2 + 32)))")"; }

# The tally as the exit status.
finish() {
	if [ "$fails" -gt 0 ]; then
		echo "$fails failures"
		exit 1
	fi
	echo "$1"
}
