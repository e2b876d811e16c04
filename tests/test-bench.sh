#!/bin/sh
# slimlab bench on the workshop model that ships: llama-bench's table (its
# columns, a ppN and a tgN row with mean ± deviation, slimlab's weight
# bandwidth column) and the lines under it (caches, bandwidth, resident
# memory); --json as a list of llama-bench's records with slimlab's
# figures added; a KV cache in int8 at a quarter of F32's bytes plus
# the scales; how much of the weights huge pages hold; bad options
# refused with exit 2. The speeds themselves are never checked: they are
# the machine's.
srcdir=${SL_SRCDIR:-.}
builddir=${SL_BUILDDIR:-.}
slimlab=$builddir/slimlab
model=$srcdir/models/workshop.gguf

[ -r "$model" ] || { echo "SKIP: $model is absent"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

# run ARGS...: $rc, $out and $err hold what happened.
run() {
	"$slimlab" bench "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

run "$model" -p 16 -n 4 -r 2 -t 2
[ $rc -eq 0 ] || fail "bench exited $rc: $err"
echo "$out" | sed -n 1p | grep -q '^| model  *|  *size |  *params | backend  *|  *threads |  *test |  *t/s | weight GB/s |$' ||
	fail "the header is not llama-bench's: $out"
echo "$out" | sed -n 2p | grep -q '^| -* | -*: | -*: | -* | -*: | -*: | -*: | -*: |$' || fail "no alignment row: $out"
row='| llama 5\.77M F16  *|  *11\.01 MiB |  *5\.77 M | CPU  *|  *2 |'
echo "$out" | grep -q "^$row  *pp16 |  *[0-9.]* ± [0-9.]* |  *|$" || fail "no pp16 row: $out"
echo "$out" | grep -q "^$row  *tg4 |  *[0-9.]* ± [0-9.]* |  *[0-9.]* |$" || fail "no tg4 row: $out"
echo "$out" | grep -q '^pp16 key/value cache .*, tg4 key/value cache ' || fail "no cache sizes: $out"
echo "$out" | grep -q '^decoding reads 11\.55 MB of weights per token; memory read bandwidth [0-9.]* GB/s$' ||
	fail "no bandwidth line: $out"
echo "$out" | grep -q '^resident [0-9.]* [kMG]*B, peak [0-9.]* [kMG]*B$' || fail "no resident memory: $out"
# every tensor's bytes found in the process's mappings
echo "$out" | grep -q '^weights in 2 MB pages: [0-9.]* [kMG]*B of 11\.55 MB ([0-9]*%)$' || fail "no huge-page line: $out"
# a model this small comes from the caches: no word on how its file is cached
! echo "$out" | grep -q '4 KB pieces' || fail "a page-cache hint for a small model: $out"

run "$model" -p 8 -n 0 -r 1
[ $rc -eq 0 ] && echo "$out" | grep -q ' pp8 ' && ! echo "$out" | grep -q ' tg' &&
	! echo "$out" | grep -q 'bandwidth' || fail "-n 0 still decoded: $rc: $out $err"

run "$model" -p 8 -n 2 -r 3 --json
[ $rc -eq 0 ] || fail "--json exited $rc: $err"
[ "$(echo "$out" | head -c 1)" = "[" ] && [ "$(echo "$out" | tail -c 2)" = "]" ] || fail "not a JSON list: $out"
[ "$(echo "$out" | grep -c '"model_filename":')" = 2 ] || fail "not two records: $out"
for f in model_type model_size model_n_params n_threads avg_ns stddev_ns avg_ts stddev_ts rss_bytes hwm_bytes \
	kv_cache_bytes; do
	[ "$(echo "$out" | grep -c "\"$f\":")" = 2 ] || fail "a record lacks $f: $out"
done
echo "$out" | grep -q '"n_prompt":	8,' && echo "$out" | grep -q '"n_gen":	2,' || fail "the tests' sizes: $out"
# What llama-bench reports for this file.
echo "$out" | grep -q '"model_size":	11547648,' && echo "$out" | grep -q '"model_n_params":	5770496,' ||
	fail "model_size and model_n_params are not llama-bench's: $out"
[ "$(echo "$out" | grep -c '"weight_bytes":	11547648,')" = 2 ] &&
	[ "$(echo "$out" | grep -c '"weight_huge_page_bytes":	[0-9]*,')" = 2 ] || fail "the weights' mapping: $out"
[ "$(echo "$out" | grep -c '"weight_gbps":')" = 1 ] && [ "$(echo "$out" | grep -c '"memory_bandwidth_gbps":')" = 1 ] ||
	fail "only the decoding record has bandwidths: $out"
echo "$out" | grep -q '"samples_ts":	\[[0-9.e+]*, [0-9.e+]*, [0-9.e+]*\]' || fail "three samples per test: $out"

# A KV cache in int8: 4 bytes of scale and one byte a value per row, a
# quarter of F32's plus the scales (the workshop model's rows hold 128).
run "$model" -p 8 -n 2 -r 1 --kv-cache int8
[ $rc -eq 0 ] || fail "--kv-cache int8 exited $rc: $err"
echo "$out" | grep -q '^pp8 key/value cache .* (int8; F32 .*, 0\.258x), tg2 key/value cache .* (int8; F32 .*, 0\.258x)$' ||
	fail "no int8 cache beside F32's: $out"
run "$model" -p 8 -n 0 -r 1 --kv-cache nvfp4 --json
[ $rc -eq 0 ] && echo "$out" | grep -q '"kv_cache_type":	"nvfp4",' && echo "$out" | grep -q '"kv_cache_f32_bytes":' ||
	fail "--json lacks the cache's type: $rc: $out"

for bad in "-p x" "-p -1" "-n 2000000" "-r 0" "-t 0" "-p 0 -n 0" "--tensors" "--kv-cache q4_0" "--kv-cache"; do
	# shellcheck disable=SC2086
	run "$model" $bad
	[ $rc -eq 2 ] && [ -z "$out" ] && echo "$err" | grep -q "Try 'slimlab bench --help'" ||
		fail "'bench $bad' was not refused: $rc: $out $err"
done
run
[ $rc -eq 2 ] && echo "$err" | grep -q "expects one MODEL" || fail "no model: $rc: $err"
run "$tmp/missing.gguf"
[ $rc -eq 1 ] && echo "$err" | grep -q "missing.gguf" || fail "a missing model: $rc: $err"
run --help
[ $rc -eq 0 ] && echo "$out" | grep -q "Usage: slimlab bench MODEL" || fail "--help: $rc"
echo "PASS"
