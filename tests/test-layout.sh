#!/bin/sh
# The house rules the registries and the floors promise, checked on the
# tree and the built objects:
# - a format's name appears in at most five source files (its registry
#   entry, its kernels, the kernels' type list), a method's in at most two
#   (its entry and the registry's list); tests, man pages and docs aside;
# - no two source files depend on each other, directly or round a cycle:
#   neither through their headers nor through the symbols their objects
#   define and use (nm);
# - arrows point down: core and kernels include no curses, kernels no
#   core, sessions nothing above core.
# A name counts in a file when it stands as a word: case aside, '-' and
# '_' alike, not inside a longer name. Not counted: the plain floats (f32,
# f16, bf16), the engine's own arithmetic; int8 except as a string literal
# (C's int8_t and int8 activations are everywhere); the E4M3 and E5M2
# number conversions, which NVFP4's scales use as much as the FP8 formats;
# method names that are ordinary words count only as string literals, and
# heads, channels and block (JSON keys and settings of other meanings)
# not at all.
set -u
srcdir=${SL_SRCDIR:-.}
builddir=${SL_BUILDDIR:-.}
bin=$builddir/slimlab
[ -x "$bin" ] || { echo "FAIL: $bin is not built"; exit 1; }
command -v perl >/dev/null 2>&1 || { echo "SKIP: perl is not installed"; exit 77; }
cd "$srcdir" || exit 1
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

sources=$(find core kernels tui views sessions -name '*.[ch]' -o -name '*.cu' | sort)

# files NAME LITERAL_ONLY: the source files that name NAME.
files() {
	NAME=$1 LIT=$2 perl -e '
		my $n = lc $ENV{NAME}; $n =~ tr/-/_/;
		my $q = quotemeta $n;
		for my $f (@ARGV) {
			open my $h, "<", $f or next; local $/; my $t = lc <$h>; close $h;
			if ($ENV{LIT}) { print "$f\n" if $t =~ /"\Q$ENV{NAME}\E"/i; next; }
			$t =~ s/sl_(f32_to_)?fp8_e[45]m[23](_to_f32|_lut)?//g;
			$t =~ tr/-/_/;
			print "$f\n" if $t =~ /(?<![a-z0-9])$q(?![a-z0-9])(?!_t\b)/;
		}' $sources
}

for name in $("$bin" recipe formats --json | perl -ne 'print "$1\n" while /"name":\s*"([^"]+)"/g'); do
	lit=0
	case "$name" in f32 | f16 | bf16) continue ;; int8) lit=1 ;; esac
	n=$(files "$name" $lit | wc -l)
	[ "$n" -le 5 ] || fail "format $name is named in $n files (at most 5): $(files "$name" $lit | tr '\n' ' ')"
done

for name in $("$bin" recipe methods --json | perl -ne 'print "$1\n" while /"name":\s*"([^"]+)"/g'); do
	case "$name" in heads | channels | block) continue ;; magnitude | unstructured | share | N:M) lit=1 ;; *) lit=0 ;; esac
	n=$(files "$name" $lit | wc -l)
	[ "$n" -le 2 ] || fail "method $name is named in $n files (at most 2): $(files "$name" $lit | tr '\n' ' ')"
done

# Header includes: an edge from each file to each header it includes.
cycle() { # reads "a b" edges, prints the files of a loop if tsort finds one
	tsort 2>&1 >/dev/null | sed -n 's/^tsort: //p' | grep -v 'input contains a loop'
}
loop=$(for f in $sources; do
	d=$(dirname "$f")
	sed -n 's/^#include "\(.*\)"/\1/p' "$f" | while read -r inc; do
		for cand in "$d/$inc" "$inc"; do
			[ -f "$cand" ] && { echo "$f $(realpath --relative-to=. "$cand")"; break; }
		done
	done
done | awk '$1 != $2' | cycle)
[ -z "$loop" ] || fail "headers include each other round a loop: $(echo $loop)"

# Symbols: an edge from each object to the object that defines what it uses.
objs=$(cd "$builddir" && find core kernels tui views sessions -name '*.o' | sort)
loop=$(cd "$builddir" && nm -A $objs 2>/dev/null | awk '
	{ split($1, p, ":"); o = p[1] }
	NF == 3 && $2 ~ /^[TDBR]$/ { def[$3] = o }
	NF == 3 && $2 == "U" { use[o, $3] = 1 }
	END { for (k in use) { split(k, q, SUBSEP); if (q[2] in def && def[q[2]] != q[1]) print q[1], def[q[2]] } }' |
	sort -u | cycle)
[ -z "$loop" ] || fail "objects depend on each other round a loop: $(echo $loop)"

# Floors: core and kernels know no terminal, kernels know no core, sessions
# nothing above core.
bad=$(grep -l '#include <\(ncurses\|curses\|termkey\)' $(find core kernels sessions -name '*.[ch]') 2>/dev/null)
[ -z "$bad" ] || fail "below the shell, a file includes curses or termkey: $bad"
bad=$(grep -l '#include "\(\.\./\)*\(core\|\.\./core\)/' $(find kernels -name '*.[ch]') 2>/dev/null)
[ -z "$bad" ] || fail "kernels include core: $bad"
bad=$(grep -l '#include "\(tui\|views\)/\|#include "\.\./\(tui\|views\)/' $(find core kernels sessions -name '*.[ch]') 2>/dev/null)
[ -z "$bad" ] || fail "a lower floor includes tui/ or views/: $bad"

# Every test runs: Makefile.am's TESTS, which orders them, names each test
# program and script of tests/.
tests=$(sed -n '/^TESTS =/,/[^\\]$/p' Makefile.am | tr -d '\\' | tr -s ' \t' '\n\n')
for t in tests/test-*.c tests/test-*.sh; do
	name=${t%.c}
	echo "$tests" | grep -qx "$name" || fail "$name is not in Makefile.am's TESTS: it would never run"
done

if [ "$fails" -gt 0 ]; then
	echo "$fails layout problems"
	exit 1
fi
echo "layout: format and method names in their files, no dependency loops, arrows point down, every test in TESTS"
