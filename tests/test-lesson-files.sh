#!/bin/sh
# Lesson files as slimlab reads them: every shipped lesson loads and is
# listed, with a teacher's own lessons beside them; a file with malformed
# JSON, an unknown goal kind, a parameter its kind does not take, a format,
# method or view slimlab does not have, a missing field or a newer version
# is refused with a message naming the file, the step and the field; the
# handout is Markdown with every step's goal, and an existing file is not
# written over without --force.
set -u
srcdir=${SL_SRCDIR:-.}
builddir=${SL_BUILDDIR:-.}
bin=$builddir/slimlab
[ -x "$bin" ] || { echo "FAIL: $bin is not built"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/sllesson.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_DATA_HOME="$work/data" XDG_STATE_HOME="$work/state" XDG_CACHE_HOME="$work/cache" SLIMLAB_DATA="$srcdir"
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

echo "== the shipped lessons, and a teacher's"
"$bin" lesson list >"$work/list" 2>"$work/err" || fail "lesson list failed: $(cat "$work/err")"
[ -s "$work/err" ] && fail "lesson list complained: $(cat "$work/err")"
for n in bits mixed gptq pruning speculate healing; do
	grep -q "^$n " "$work/list" || fail "lesson list does not show $n"
done
mkdir -p "$work/data/slimlab/lessons"
sed 's/"name": "bits"/"name": "mine"/; s/"title": "Bits and error"/"title": "My own lesson"/' \
	"$srcdir/data/lessons/bits.json" >"$work/data/slimlab/lessons/mine.json"
"$bin" lesson list | grep -q "^mine .*My own lesson .* 4 steps" || fail "a teacher's lesson is not listed"

# refused FILE_TEXT WANT...: the lesson is refused, naming each WANT.
n=0
refused() {
	n=$((n + 1))
	f="$work/bad$n.json"
	printf '%s\n' "$1" >"$f"
	shift
	if "$bin" lesson "$f" --handout >/dev/null 2>"$work/err"; then
		fail "bad$n.json was taken"
		return
	fi
	for want in "bad$n.json" "$@"; do
		grep -qF -- "$want" "$work/err" || fail "bad$n.json: the message does not say '$want': $(cat "$work/err")"
	done
	grep -qi "segmentation\|sanitizer\|runtime error" "$work/err" && fail "bad$n.json crashed slimlab"
}
head='"slimlab_lesson": 1, "name": "t", "title": "T", "model": "models/workshop.gguf"'
echo "== bad lesson files are refused, naming the file, the step and the field"
refused '{ "slimlab_lesson": 1, "name": ' "not valid JSON"
refused '[1, 2]' "expected a JSON object"
refused '{"name": "t"}' "slimlab_lesson" "not a slimlab lesson file"
refused '{"slimlab_lesson": 7, "name": "t"}' "version 7" "newer slimlab"
refused "{$head}" "steps: missing"
refused "{$head, \"steps\": []}" "steps" "1 to 64 steps"
refused "{$head, \"colour\": 1, \"steps\": []}" "colour" "unknown field"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"fly\"}}]}" \
	"steps[0].goal.kind" "unknown goal kind 'fly'" "view_is" "heal_run"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"view_is\", \"view\": \"eval\"}},
	{\"text\": \"y\", \"goal\": {\"kind\": \"evaluated\", \"speed\": 3}}]}" \
	"steps[1].goal.speed" "takes no parameter 'speed'" "bpw_below"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"view_is\", \"view\": \"nowhere\"}}]}" \
	"steps[0].goal.view" "no view is called 'nowhere'"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"view_is\"}}]}" "steps[0].goal.view" "missing"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"evaluated\", \"format\": \"q9_9\"}}]}" \
	"steps[0].goal.format" "no format is called 'q9_9'"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"evaluated\", \"method\": \"guess\"}}]}" \
	"steps[0].goal.method" "'guess'"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"evaluated\", \"bpw_below\": \"four\"}}]}" \
	"steps[0].goal.bpw_below" "expected a number"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"spec_run\", \"acceptance_min\": 2}}]}" \
	"steps[0].goal.acceptance_min" "outside [0, 1]"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"heal_run\", \"method\": \"gptq\"}}]}" \
	"steps[0].goal.method" "qat, qad, kd or lora"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"sweep_done\", \"options\": \"q4_0,zz\"}}]}" \
	"steps[0].goal.options"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"view_is\", \"view\": \"eval\"}, \"wait\": 3}]}" \
	"steps[0].wait" "unknown field"
refused "{$head, \"steps\": [{\"goal\": {\"kind\": \"view_is\", \"view\": \"eval\"}}]}" "steps[0].text" "missing"
refused "{$head, \"steps\": [{\"text\": \"x\", \"goal\": {\"kind\": \"view_is\", \"view\": \"eval\"}, \"hint_after\": -1}]}" \
	"steps[0].hint_after"
"$bin" lesson nosuchlesson 2>"$work/err" && fail "an unknown lesson was taken"
grep -q "no lesson is called 'nosuchlesson'" "$work/err" || fail "an unknown lesson: $(cat "$work/err")"

echo "== the handout"
"$bin" lesson bits --handout "$work/bits.md" || fail "the handout was not written"
grep -q "^# Bits and error" "$work/bits.md" || fail "the handout has no title"
[ "$(grep -c '^## Step ' "$work/bits.md")" = 4 ] || fail "the handout does not have 4 steps"
grep -q '^\*\*Goal:\*\* an evaluation of a recipe with every compressed module in q4_0' "$work/bits.md" ||
	fail "the handout does not state the goals"
echo "keep" >"$work/taken.md"
"$bin" lesson bits --handout "$work/taken.md" </dev/null 2>"$work/err" && fail "an existing handout was written over"
grep -q "exists; give --force" "$work/err" || fail "no word about --force: $(cat "$work/err")"
[ "$(cat "$work/taken.md")" = keep ] || fail "the existing file changed"
"$bin" lesson bits --handout "$work/taken.md" --force || fail "--force did not write"
grep -q "^# Bits and error" "$work/taken.md" || fail "--force wrote something else"
"$bin" lesson mixed --handout | grep -q "cursor on the module with the highest KL under q4_0" ||
	fail "the handout on stdout"

if [ "$fails" -gt 0 ]; then
	echo "$fails failures"
	exit 1
fi
echo "lesson files: listed, bad ones refused with the file, step and field, handouts written"
