#!/bin/sh
# The files that ship with slimlab (data/, models/) are found from any
# directory: by the program in its build tree, and by a copy that 'make
# install' put under another prefix than the configured one (it looks in
# share/slimlab beside its bin/). slimlab sensitivity and autorecipe run
# from an unrelated directory on the shipped calibration text; the
# workbench opens the shipped model there; $SLIMLAB_DATA comes first; a
# path the user gives stays relative to the current directory; a copy that
# finds nothing says so; each finds the lessons beside the texts. 'make
# uninstall' removes what install put.
srcdir=${SL_SRCDIR:-.}
builddir=${SL_BUILDDIR:-.}
fixtures=${SL_FIXTURES:-$srcdir/../shared/fixtures}
model=$fixtures/models/stories260K.gguf

[ -r "$model" ] || { echo "SKIP: fixture $model is absent (set SL_FIXTURES)"; exit 77; }
tmp=$(cd "$(mktemp -d)" && pwd -P)
trap 'rm -rf "$tmp"' EXIT
unset SLIMLAB_DATA
srcdir=$(cd "$srcdir" && pwd -P)
inst=$tmp/inst
mkdir "$tmp/elsewhere"
cd "$tmp/elsewhere" || exit 99

fail() {
	echo "FAIL: $*"
	exit 1
}

# A make of its own, not a job of the make running the tests.
make_here() { MAKEFLAGS= MAKELEVEL= ${MAKE:-make} -s -C "$builddir" "$@" >"$tmp/make.log" 2>&1; }

make_here install prefix="$inst" || fail "make install prefix=$inst: $(cat "$tmp/make.log")"
for f in data/calib.txt data/eval.txt data/README.md models/workshop.gguf models/README.md \
	models/workshop.json data/lessons/README.md data/lessons/bits.json data/lessons/healing.json; do
	cmp -s "$srcdir/$f" "$inst/share/slimlab/$f" || fail "make install did not install $f"
done

# shipped BINARY DIR: --version names DIR, and sensitivity and autorecipe
# run on stories260K from here with DIR's calibration text.
shipped() {
	"$1" --version | grep -qxF "shipped files: $2" ||
		fail "$1 --version: $("$1" --version | tail -n 1), not $2"
	out=$("$1" sensitivity "$model" --options q8_0 --ctx 32 --windows 2 --calib-tokens 256 2>&1) ||
		fail "$1 sensitivity from $(pwd): $out"
	echo "$out" | grep -q "blk.4.ffn_down" || fail "$1 sensitivity printed no table: $out"
	out=$("$1" autorecipe "$model" --budget 10bpw --options q8_0,q4_0 --ctx 32 --windows 2 \
		--calib-tokens 256 --out auto.json 2>&1) || fail "$1 autorecipe from $(pwd): $out"
	grep -qF "\"$2/data/calib.txt\"" auto.json || fail "$1 autorecipe did not calibrate on $2/data/calib.txt"
	"$1" lesson list | grep -qF "$2/data/lessons/bits.json" || fail "$1 lesson list does not find $2's lessons"
}
shipped "$inst/bin/slimlab" "$inst/share/slimlab"
shipped "$builddir/slimlab" "$srcdir"

# $SLIMLAB_DATA comes first.
mkdir -p "$tmp/mine/data"
head -c 200000 "$srcdir/data/calib.txt" >"$tmp/mine/data/calib.txt"
mkdir -p "$tmp/mine/data/lessons" && cp "$srcdir"/data/lessons/* "$tmp/mine/data/lessons/"
SLIMLAB_DATA=$tmp/mine shipped "$inst/bin/slimlab" "$tmp/mine"

# A path the user gives means a path from here.
head -c 200000 "$srcdir/data/eval.txt" >own.txt
"$inst/bin/slimlab" sensitivity "$model" --options q8_0 --ctx 32 --windows 2 --calib-tokens 256 \
	--text own.txt >/dev/null 2>&1 || fail "sensitivity --text own.txt did not read ./own.txt"
"$inst/bin/slimlab" sensitivity "$model" --options q8_0 --text data/calib.txt >/dev/null 2>"$tmp/err" &&
	fail "--text data/calib.txt was looked up among the shipped files, not here"
grep -q "data/calib.txt: cannot open" "$tmp/err" || fail "--text data/calib.txt: $(cat "$tmp/err")"

# A lone copy of the program finds nothing and says what to do.
if [ ! -e "${SL_PKGDATADIR:-/nonexistent}/data/calib.txt" ]; then
	mkdir -p "$tmp/lone/bin"
	cp "$inst/bin/slimlab" "$tmp/lone/bin/"
	"$tmp/lone/bin/slimlab" sensitivity "$model" --options q8_0 >/dev/null 2>"$tmp/err" &&
		fail "a lone copy ran without its calibration text"
	grep -q "data/calib.txt ships with slimlab but was not found.*SLIMLAB_DATA" "$tmp/err" ||
		fail "a lone copy said: $(cat "$tmp/err")"
fi

# The workbench, started here with no model, opens the shipped one.
if command -v tmux >/dev/null 2>&1; then
	sock=slinst$$
	tmux -L "$sock" -f /dev/null new-session -d -x 100 -y 30 \
		"env TERM=xterm-256color XDG_STATE_HOME='$tmp/state' XDG_CACHE_HOME='$tmp/cache' '$inst/bin/slimlab'; sleep 60"
	n=300
	until tmux -L "$sock" capture-pane -p -t 0 | grep -q "workshop.gguf"; do
		n=$((n - 1))
		[ $n -gt 0 ] || break
		sleep 0.1
	done
	screen=$(tmux -L "$sock" capture-pane -p -t 0)
	tmux -L "$sock" kill-server 2>/dev/null
	[ $n -gt 0 ] || fail "the installed workbench did not open models/workshop.gguf from $(pwd):
$screen"
else
	echo "note: tmux is absent; the workbench's shipped model is not checked"
fi

make_here uninstall prefix="$inst" || fail "make uninstall: $(cat "$tmp/make.log")"
left=$(find "$inst" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "PASS"
