#!/bin/sh
# The English texts slimlab ships (data/calib.txt, data/eval.txt): present,
# substantial, free of the Brown corpus's tokens and /tags, and disjoint:
# no line of 60 or more characters appears in both.
srcdir=${SL_SRCDIR:-.}
calib=$srcdir/data/calib.txt
eval=$srcdir/data/eval.txt

fail() {
	echo "FAIL: $*"
	exit 1
}

for f in "$calib" "$eval"; do
	[ -r "$f" ] || fail "$f is missing (tools/brown-to-text.mjs makes it)"
done
[ "$(wc -c <"$calib")" -ge 4000000 ] || fail "$calib holds less than 4 MB"
[ "$(wc -c <"$eval")" -ge 300000 ] || fail "$eval holds less than 300 KB"

# Brown's commonest tags after a word, and its quote tokens.
tags='[^ /]/(at|nns?|np|in|jj|vbd?|vbn|cc|rb|to|cs|pps|ppss|dt|md)( |$)'
if grep -En "$tags|\`\`|''" "$calib" "$eval" | head -3 | grep .; then
	fail "corpus tags or quote tokens left in the text (above)"
fi
if grep -En ' [,.;:?!]( |$)' "$calib" "$eval" | head -3 | grep .; then
	fail "punctuation still detached from its word (above)"
fi

awk -v min=60 '
	NR == FNR { if (length($0) >= min) seen[$0] = 1; next }
	length($0) >= min && ($0 in seen) { print FILENAME ":" FNR ": " substr($0, 1, 80); n++ }
	END { exit n > 0 }' "$calib" "$eval" || fail "the evaluation text shares lines with the calibration text (above)"
echo "data: calib $(wc -c <"$calib") bytes, eval $(wc -c <"$eval") bytes, disjoint"
