#!/usr/bin/env bash
# Issue 19's GPU measurements in one prepared run of at most 8 minutes on one H100/H200-class GPU.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh          # the GPU run (--device cuda)
#   OUT=/tmp/gpu-dry bash benchmarks/gpu_check.sh --dry  # every part with tiny sizes on a CPU (about 20 CPU s)
#
# Run from anywhere inside a checkout. What comes back is at most 5 files in $OUT, rewritten after
# every part (the project's device machine returns at most 8): env.json (the machine and library
# versions), parts.jsonl (one line per part: exit status, seconds, limit), results.json (every
# part's JSON by part name), logs.txt (the last lines of every part's log) and pip.log. Each part's
# own files are in $WORK (default /tmp/gpu-check-work). Every part is time-boxed with `timeout`,
# and the run starts no part once its budget (TOTAL_S, default 470 s) is spent, so a slow part
# costs only its own rows.
#
# Parts, in order:
#   1. benchmarks/vector.py --parts env --device cuda on distillgym/ArithMix-v2 at N = 1, 16, 64,
#      256, 1024, 4096, one process per N (an N that does not fit is refused by the env, with the
#      memory it needs and the largest N that fits; that refusal is the row);
#   2. benchmarks/lora_student.py --parts shapes --device cuda for the SmolLM2-135M, Qwen2.5-0.5B and
#      Qwen2.5-1.5B shapes (random weights built from configs in the script, no download), each with
#      the baseline path (the id's defaults) and the GPU path (distillgym.students.lora.GPU_KWARGS);
#   3. (after the SmolLM2-135M shape) benchmarks/vector.py --parts compile --device cuda for a population
#      of 1,024 students: eager, torch.compile and torch.compile with CUDA graphs (mode
#      "reduce-overhead"), each in its own process (a first compilation each).
#
# Needs python3 with torch (CUDA), transformers, peft and numpy (the project's H200 image has them,
# and not gymnasium). gymnasium and its small dependencies are installed from ./.whl into /tmp/site
# when gymnasium is missing; make that folder where pip reaches an index (.whl/ is git-ignored: do
# not commit it; carry it with the checkout):
#   pip download --no-deps --only-binary=:all: -d .whl gymnasium==1.4.0 farama-notifications cloudpickle tqdm
# distillgym itself runs from the checkout (PYTHONPATH), not installed. SB3 is not needed.
set -u
DRY=0
[ "${1:-}" = "--dry" ] && DRY=1
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-check-out}
WORK=${WORK:-/tmp/gpu-check-work}
mkdir -p "$OUT" "$WORK"
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
START=$(date +%s)
TOTAL_S=${TOTAL_S:-470}

if ! $PY -c "import gymnasium" 2>/dev/null; then
  echo "gymnasium is missing: installing the wheels of .whl into /tmp/site"
  if $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$ROOT"/.whl/*.whl > "$OUT/pip.log" 2>&1; then
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
  else
    echo "pip install from .whl failed (see pip.log): was .whl/ carried? The parts will fail to import gymnasium."
  fi
fi

$PY - > "$OUT/env.json" <<'PYEOF'
import json, os, platform, subprocess, torch, transformers
try:
    import peft
    pv = peft.__version__
except ImportError:
    pv = None
try:
    import gymnasium
    gv = gymnasium.__version__
except ImportError:
    gv = None
try:  # the device machine's copy may have no .git, and its image no git
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
except OSError:
    commit = ""
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__,
                  "peft": pv, "gymnasium": gv, "python": platform.python_version(), "cpus": os.cpu_count(),
                  "commit": commit or None,
                  "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}, indent=1))
PYEOF
cat "$OUT/env.json"

# collect: rebuild results.json and logs.txt in $OUT from the parts' files in $WORK
collect() {
  $PY - "$WORK" "$OUT" <<'PYEOF'
import glob, json, os, sys
work, out = sys.argv[1], sys.argv[2]
results = {}
for f in sorted(glob.glob(os.path.join(work, "*.json"))):
    try:
        results[os.path.basename(f)[:-5]] = json.load(open(f))
    except (OSError, ValueError) as err:
        results[os.path.basename(f)[:-5]] = {"unreadable": str(err)}
json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=1)
with open(os.path.join(out, "logs.txt"), "w") as o:
    for f in sorted(glob.glob(os.path.join(work, "*.log"))):
        lines = open(f, errors="replace").read().splitlines()
        o.write(f"==== {os.path.basename(f)} (last {min(len(lines), 80)} of {len(lines)} lines)\n")
        o.write("\n".join(lines[-80:]) + "\n")
PYEOF
}

# run NAME SECONDS COMMAND...: time-boxed, logged in $WORK, one line in parts.jsonl, then collect
run() {
  local name=$1 limit=$2
  shift 2
  local left=$((TOTAL_S - ($(date +%s) - START)))
  if [ "$left" -lt 15 ]; then
    echo "{\"part\": \"$name\", \"skipped\": \"the run's ${TOTAL_S} s budget is spent\"}" >> "$OUT/parts.jsonl"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0
  t0=$(date +%s)
  echo "== $name (at most $limit s)"
  timeout -k 5 "$limit" "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  echo "{\"part\": \"$name\", \"rc\": $rc, \"seconds\": $(($(date +%s) - t0)), \"limit_s\": $limit}" >> "$OUT/parts.jsonl"
  tail -n 2 "$WORK/$name.log"
  collect
}

if [ "$DRY" = 1 ]; then
  DEV=cpu
  NS="1 4"
  VKW='{"examples_per_step": 8, "budget": 16, "n_val_per_cell": 1, "n_test_per_cell": 1}'
  SHAPES="tiny"
  LKW='{"budget": 64, "examples_per_step": 32, "n_val_per_cell": 1, "n_test_per_cell": 1}'
  VLIMIT=(90 90)  # generous: on a shared CPU a part waits for a core (about 5 CPU s each)
  LLIMIT=90
  CARGS=(--compile-p 2 --compile-reps 2 --compile-modes eager)  # the plumbing only: no compilation on a CPU
  CLIMIT=90
else
  DEV=cuda
  NS="1 16 64 256 1024 4096"
  VKW=''
  SHAPES="smollm2-135m qwen2.5-0.5b qwen2.5-1.5b"
  LKW=''
  VLIMIT=(30 30 30 40 50 60)
  LLIMIT=
  CARGS=(--compile-p 1024 --compile-reps 20 --compile-modes eager,default,reduce-overhead)
  CLIMIT=110
fi

i=0
for n in $NS; do
  run "vector_n$n" "${VLIMIT[$i]}" "$PY" benchmarks/vector.py --parts env --device $DEV --n "$n" --steps 2 \
    --env-kwargs "$VKW" --out "$WORK/vector_n$n.json"
  i=$((i + 1))
done

for shape in $SHAPES; do
  case $shape in
    smollm2-135m) limit=${LLIMIT:-75} ;;
    qwen2.5-0.5b) limit=${LLIMIT:-70} ;;
    *) limit=${LLIMIT:-120} ;;  # the run's budget (TOTAL_S) cuts it to what is left
  esac
  run "lora_$shape" "$limit" "$PY" benchmarks/lora_student.py --parts shapes --device $DEV --shapes "$shape" \
    --paths baseline,gpu --shape-env-kwargs "$LKW" --out "$WORK/lora_$shape.json"
  if [ "$shape" = "${SHAPES%% *}" ]; then  # after the first (the target's) shape
    run "compile_population" "$CLIMIT" "$PY" benchmarks/vector.py --parts compile --device $DEV \
      --compile-models population "${CARGS[@]}" --out "$WORK/compile_population.json"
  fi
done

echo "done in $(($(date +%s) - START)) s; results in $OUT"
