#!/bin/sh
# Every shipped lesson completed under tmux by the keys a student would
# press, on the workshop model with the lessons' small settings: each step
# moves on only when the engine's state meets its goal, and the saved
# session records every step with the figure that satisfied it (an
# evaluation's KL, the sweep's cells, the heatmap's cursor, a speculative
# run's acceptance, a healing run's recovery). A session saved midway goes
# on with the lesson where it stopped; the hint shows after its delay.
# Every wait has a deadline.
model=${SL_SRCDIR:-.}/models/workshop.gguf
. "${SL_SRCDIR:-.}/tests/tui-lib.sh"

# progress FILE NAME STEPS: the saved session's lesson is NAME, finished,
# with STEPS steps each recorded with the engine's value.
progress() {
	python3 - "$1" "$2" "$3" <<'PY' || fail "$2: the saved session does not record every step"
import json, sys
s = json.load(open(sys.argv[1]))
p = s.get("lesson") or {}
n = int(sys.argv[3])
steps = p.get("steps", [])
ok = p.get("name") == sys.argv[2] and p.get("finished") is True and len(steps) == n
ok = ok and [e["step"] for e in steps] == list(range(1, n + 1)) and all(e.get("value") for e in steps)
for e in steps:
    print("   step %d (%s): %s" % (e["step"], e["goal"], e["value"]))
sys.exit(0 if ok else 1)
PY
}
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 reads the saved sessions"; exit 77; }

# lesson NAME STEPS: starts slimlab lesson NAME at 80x24.
lesson() {
	start 80 24 lesson "$1"
	wait_for "lesson: " 60
	wait_for "step 1 of $2" 10
}
# done NAME STEPS: every step verified; the session saved and checked.
done_() {
	wait_for "every step done" 300
	cmd "save $work/$1.json"
	wait_for "session saved to" 10
	progress "$work/$1.json" "$1" "$2"
	cmd "quit!"
	wait_for "EXIT 0"
}

echo "== :lesson in a running workbench; the hint after its delay"
cat >"$work/quick.json" <<'JSON'
{"slimlab_lesson": 1, "name": "quick", "title": "A teacher's quick lesson", "model": "../models/workshop.gguf",
 "steps": [{"text": "Show the Heal view.", "goal": {"kind": "view_is", "view": "heal"},
            "hint": "The key is 7.", "hint_after": 1}]}
JSON
sed -i "s|\.\./models/workshop.gguf|$model|" "$work/quick.json"
start 80 24 "$model"
wait_for "token_embd" 30
cmd "lesson $work/quick.json"
wait_for "lesson: A teacher's quick lesson · step 1 of 1" 10
wait_for "hint: The key is 7." 5
keys 7
wait_for "every step done" 10
cmd "lesson stop"
wait_gone "lesson: A teacher"
cmd "quit!"
wait_for "EXIT 0"

# Under the sanitizers or the portable kernels (CI's second and third
# passes) the sweep, GPTQ and healing lessons take minutes each on two
# cores: those passes complete the three light lessons, the normal build
# all six.
slow=$light
[ -z "$slow" ] || light_note "the mixed, gptq and healing lessons run in the normal build"

echo "== bits and error"
lesson bits 4
keys 4
wait_for "step 2 of 4"
cmd "set ctx=64 chunks=4"
cmd "rule all format=q8_0"
keys e
wait_for "step 3 of 4" 300
cmd "rule all format=q4_0"
keys e
wait_for "step 4 of 4" 300
cmd "rule all format=int3-g32"
keys e
done_ bits 4
# The KL grows as the bits shrink, in the values the engine recorded.
python3 -c '
import json, re, sys
s = json.load(open(sys.argv[1]))
kl = [float(re.search(r"KL ([0-9.]+)", e["value"]).group(1)) for e in s["lesson"]["steps"][1:]]
sys.exit(0 if kl == sorted(kl) else 1)' "$work/bits.json" || fail "bits: the KL did not grow as the bits shrank"

if [ -z "$slow" ]; then
echo "== sensitivity and mixed precision"
lesson mixed 4
cmd "sweep q8_0,q4_0,q3_k --windows 2 --ctx 32"
wait_for "step 2 of 4" 300
keys 6
keys Right s Home
sleep 1
screen | grep -q "step 2 of 4" || fail "mixed: the cursor on the embedding met a goal among the blocks"
keys Down
wait_for "step 3 of 4" 20
keys 4
cmd "set ctx=64 chunks=4"
cmd "rule all format=q4_0"
keys e
wait_for "step 4 of 4" 300
cmd "autorecipe 4.6bpw"
wait_match "^ 2 +recipe " 300
keys e
done_ mixed 4

echo "== GPTQ and AWQ against rounding"
lesson gptq 3
keys 4
cmd "set ctx=64 chunks=4"
cmd "rule all format=int3-g32"
keys e
wait_for "step 2 of 3" 300
cmd "rule all format=int3-g32 method=gptq"
keys e
wait_for "step 3 of 3" 300
cmd "rule all format=int3-g32 method=awq"
keys e
done_ gptq 3

fi

echo "== pruning"
lesson pruning 3
keys 4
cmd "set ctx=64 chunks=4"
cmd "rule all sparsity=50% prune=magnitude"
keys e
wait_for "step 2 of 3" 300
cmd "rule all sparsity=50% prune=wanda"
keys e
wait_for "step 3 of 3" 300
cmd "rule all sparsity=50% pattern=2:4"
keys e
done_ pruning 3

echo "== speculative decoding"
lesson speculate 4
cmd "speculate --draft-format q8_0 -n 60"
wait_for "step 2 of 4" 300
keys 8
cmd "speculate --draft-format q4_0 -n 60"
wait_for "step 3 of 4" 300
keys + +
wait_for "step 4 of 4" 300
cmd "speculate --draft-ngram 3"
done_ speculate 4

if [ -z "$slow" ]; then
echo "== healing, and a session saved midway goes on"
lesson healing 3
keys 4
cmd "set ctx=64 chunks=2"
cmd "rule all format=int3-g32"
keys e
wait_for "step 2 of 3" 300
cmd "save $work/mid.json"
wait_for "session saved to" 10
cmd "quit!"
wait_for "EXIT 0"
start 80 24 --session "$work/mid.json"
wait_for "step 2 of 3" 300
cmd "heal qat steps=20 batch=1 seq_len=32 eval_every=4 probe=1"
wait_for "step 3 of 3" 400
cmd "heal qad steps=20 batch=1 seq_len=32 eval_every=4 probe=1"
done_ healing 3
fi

finish "${slow:+the light }shipped lessons completed, each step verified by the engine"
