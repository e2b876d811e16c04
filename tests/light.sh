# Sourced by tests: CI's second and third passes (the portable kernels,
# SL_NO_AVX2, and a sanitizer build) run every test again, where the
# engine is several times slower; their C tests check the figures on that
# path. There a test may drive the same keys and screens with less
# numeric work, or leave out a part whose purpose is the figures: light is
# 1 there, and light_note says what was left out and why.
light=
if [ -n "${SL_NO_AVX2:-}" ] || grep -q '^SAN_FLAGS = .*-fsanitize' "${SL_BUILDDIR:-.}/Makefile" 2>/dev/null; then
	light=1
fi
light_note() { echo "note: a sanitizer or portable-kernel build: $*"; }
