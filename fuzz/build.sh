#!/bin/sh
# Builds the libFuzzer harnesses with clang in a scratch copy of the tree
# (the core instrumented for coverage, AddressSanitizer and UBSan on, every
# sanitizer report fatal so that fuzzing stops at the first), into
# fuzz/bin/. Then, for example:
#   SL_FIXTURES=../shared/fixtures fuzz/bin/fuzz-gguf -max_total_time=300 corpus/ ../shared/fixtures/models
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$top" && git ls-files -z | xargs -0 tar cf - ) | (cd "$work" && tar xf -)
cd "$work"
./autogen.sh >/dev/null 2>&1
./configure -q CC=clang --with-cuda=no \
	CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
make -s -j"$(nproc)" libslcore.a libslui.a >/dev/null
mkdir -p "$top/fuzz/bin"
flags="-O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. $(pkg-config --cflags libcjson openblas lapacke libpcre2-8)"
libs="libslui.a libslcore.a $(pkg-config --libs libcjson lapacke openblas libpcre2-8) -lm -lpthread"
for h in "$top"/fuzz/fuzz-*.c; do
	name=$(basename "$h" .c)
	clang $flags -I"$top/fuzz" -o "$top/fuzz/bin/$name" "$h" $libs
	echo "built fuzz/bin/$name"
done
