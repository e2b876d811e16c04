#!/bin/sh
# The AVX2 kernels where the processor also has AVX-512: the float products
# and the legacy formats' dot products have AVX-512 forms (more registers,
# VNNI) chosen at run time, so on such a machine the AVX2 forms would go
# untested. This runs test-ops and test-batch again with the AVX-512 forms
# off, and checks that the workshop model's perplexity (F16 weights, so the
# float products throughout) is the same number, to the last digit, either
# way: the forms differ in speed only.
srcdir=${SL_SRCDIR:-.}
builddir=${SL_BUILDDIR:-.}
slimlab=$builddir/slimlab
model=$srcdir/models/workshop.gguf

[ -n "${SL_NO_AVX2:-}" ] && { echo "SKIP: SL_NO_AVX2 is set (the portable kernels run)"; exit 77; }
grep -q avx2 /proc/cpuinfo 2>/dev/null || { echo "SKIP: no AVX2 here"; exit 77; }
grep -q avx512vl /proc/cpuinfo 2>/dev/null || { echo "SKIP: no AVX-512 here: the AVX2 forms are the ones every test runs"; exit 77; }
[ -r "$model" ] || { echo "SKIP: $model is absent"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

for t in test-ops test-batch; do
	SL_NO_AVX512=1 SL_NO_VNNI=1 "$builddir/tests/$t" >"$tmp/$t.log" 2>&1
	rc=$?
	if [ $rc -eq 77 ]; then # skipped (test-batch without the fixtures): it says why
		echo "$t, AVX2 forms: $(grep -m1 'SKIP' "$tmp/$t.log" || tail -1 "$tmp/$t.log")"
		continue
	fi
	[ $rc -eq 0 ] || { tail -20 "$tmp/$t.log"; fail "$t with the AVX-512 forms off"; }
	echo "$t, AVX2 forms: $(tail -1 "$tmp/$t.log")"
done

# The float products' bits over odd row lengths (test-ops hashes them).
"$builddir/tests/test-ops" >"$tmp/ops512.log" 2>&1 || { tail -20 "$tmp/ops512.log"; fail "test-ops"; }
h512=$(grep '^float products (AVX2)' "$tmp/ops512.log" | sed 's/.*bits hash //')
h256=$(grep '^float products (AVX2)' "$tmp/test-ops.log" | sed 's/.*bits hash //')
[ -n "$h512" ] && [ "$h512" = "$h256" ] || fail "float products' bits: AVX-512 forms hash [$h512], AVX2 forms [$h256]"
echo "float products over odd row lengths: the same bits both ways ($h512)"

ppl() {
	"$slimlab" eval "$model" --text "$srcdir/data/eval.txt" --ctx 128 --chunks 6 --json </dev/null 2>"$tmp/err" |
		grep '"ppl":' || { cat "$tmp/err"; fail "eval"; }
}
a=$(ppl)
b=$(SL_NO_AVX512=1 SL_NO_VNNI=1 ppl)
[ -n "$a" ] && [ "$a" = "$b" ] || fail "perplexity with AVX-512 forms [$a], without [$b]"
echo "perplexity the same both ways: $a"
echo "ok"
