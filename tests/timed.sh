#!/bin/sh
# make check runs every test through this (LOG_COMPILER): the test's log
# ends with the seconds it took, wall-clock and CPU (user and system, of
# the test and the processes it waited for; a tmux server's are not
# among them), so that every run shows where the suite's time goes.
start=$(date +%s.%N)
"$@"
rc=$?
end=$(date +%s.%N)
t=$(mktemp) || exit $rc
times >"$t" # a builtin's output, redirected without a subshell: this shell's children
tail -n 1 "$t" | awk -v s="$start" -v e="$end" '
	function sec(t) { split(t, p, "m"); return p[1] * 60 + p[2] }
	{ printf "time: %.1f s wall, %.1f s CPU (user %.1f, system %.1f)\n", e - s, sec($1) + sec($2), sec($1), sec($2) }'
rm -f "$t"
exit $rc
