#!/bin/sh
# Generates configure and Makefile.in from configure.ac and Makefile.am.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf -fi
# configure cleans up after its compiler checks with `rm -f core ...`,
# meant for core dumps; here core/ is the engine's directory, so that rm
# fails, and the exit-time cleanup chained after it (`&& rm conftest*
# confdefs*`) never runs. Leave the directory out of those removals.
sed -i 's/rm -f core /rm -f /' configure
