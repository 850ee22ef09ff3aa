#!/usr/bin/env bash
# Issue 19's GPU measurements in one prepared run of at most 8 minutes on one H100/H200-class GPU.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh          # the GPU run (--device cuda)
#   OUT=/tmp/gpu-dry bash benchmarks/gpu_check.sh --dry  # every part with tiny sizes on a CPU (about 15 CPU s)
#
# Run from anywhere inside a checkout; results go to $OUT as they are made (each part's JSON and
# log, parts.jsonl: one line per part with its exit status and seconds, env.json: the machine).
# Every part is time-boxed with `timeout`, and the whole run stops starting parts once its budget
# (TOTAL_S, default 470 s) is spent, so a slow part costs only its own rows.
#
# Parts, in order:
#   1. benchmarks/vector.py --parts env --device cuda on distillgym/ArithMix-v2 at N = 1, 16, 64,
#      256, 1024, 4096, one process per N (an N that does not fit is refused by the env, with the
#      memory it needs and the largest N that fits; that refusal is the row);
#   2. benchmarks/lora_student.py --parts shapes --device cuda for the SmolLM2-135M, Qwen2.5-0.5B and
#      Qwen2.5-1.5B shapes (random weights built from configs in the script, no download), each with
#      the baseline path (the id's defaults) and the GPU path (distillgym.students.lora.GPU_KWARGS).
#
# Needs python with torch (CUDA), transformers, peft and numpy. gymnasium, cloudpickle,
# farama-notifications and tqdm are installed from ./.whl if they are missing (a machine with
# torch but not gymnasium or SB3); make that folder on a machine with a package index:
#   pip download --no-deps --only-binary=:all: -d .whl gymnasium==1.4.0 cloudpickle farama-notifications tqdm
# (.whl/ is git-ignored: carry it to the GPU machine with the checkout). distillgym itself runs
# from the checkout (PYTHONPATH), not installed. SB3 is not needed.
set -u
DRY=0
[ "${1:-}" = "--dry" ] && DRY=1
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
START=$(date +%s)
TOTAL_S=${TOTAL_S:-470}

missing=$($PY - <<'EOF'
import importlib.util
print(" ".join(m for m in ("gymnasium", "cloudpickle", "farama_notifications", "tqdm") if importlib.util.find_spec(m) is None))
EOF
)
if [ -n "$missing" ]; then
  echo "installing from .whl: $missing"
  $PY -m pip install -q --no-index --find-links "$ROOT/.whl" --no-deps $(ls "$ROOT"/.whl/*.whl 2>/dev/null) \
    > "$OUT/pip.log" 2>&1 || { echo "pip install from .whl failed (see $OUT/pip.log); is .whl/ carried?"; }
fi

$PY - > "$OUT/env.json" <<'EOF'
import json, os, platform, subprocess, torch, transformers
try:
    import peft
    pv = peft.__version__
except ImportError:
    pv = None
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__,
                  "peft": pv, "python": platform.python_version(), "cpus": os.cpu_count(), "commit": commit or None,
                  "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}, indent=1))
EOF
cat "$OUT/env.json"

# run NAME SECONDS COMMAND...: time-boxed, logged, one line in parts.jsonl
run() {
  local name=$1 limit=$2
  shift 2
  local left=$((TOTAL_S - ($(date +%s) - START)))
  if [ "$left" -lt 15 ]; then
    echo "{\"part\": \"$name\", \"skipped\": \"the run's ${TOTAL_S} s budget is spent\"}" >> "$OUT/parts.jsonl"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$(date +%s)
  echo "== $name (at most $limit s)"
  timeout -k 5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "{\"part\": \"$name\", \"rc\": $rc, \"seconds\": $(($(date +%s) - t0)), \"limit_s\": $limit}" >> "$OUT/parts.jsonl"
  tail -n 3 "$OUT/$name.log"
}

if [ "$DRY" = 1 ]; then
  DEV=cpu
  NS="1 4"
  VKW='{"examples_per_step": 8, "budget": 16, "n_val_per_cell": 1, "n_test_per_cell": 1}'
  SHAPES="tiny"
  LKW='{"budget": 64, "examples_per_step": 32, "n_val_per_cell": 1, "n_test_per_cell": 1}'
  VLIMIT=(90 90)  # generous: on a shared CPU a part waits for a core (about 5 CPU s each)
  LLIMIT=90
else
  DEV=cuda
  NS="1 16 64 256 1024 4096"
  VKW=''
  SHAPES="smollm2-135m qwen2.5-0.5b qwen2.5-1.5b"
  LKW=''
  VLIMIT=(30 30 30 40 50 60)
  LLIMIT=
fi

i=0
for n in $NS; do
  run "vector_n$n" "${VLIMIT[$i]}" $PY benchmarks/vector.py --parts env --device $DEV --n "$n" --steps 2 \
    --env-kwargs "$VKW" --json --out "$OUT/vector_n$n.json"
  i=$((i + 1))
done

for shape in $SHAPES; do
  case $shape in
    smollm2-135m) limit=${LLIMIT:-75} ;;
    qwen2.5-0.5b) limit=${LLIMIT:-70} ;;
    *) limit=${LLIMIT:-90} ;;
  esac
  run "lora_$shape" "$limit" $PY benchmarks/lora_student.py --parts shapes --device $DEV --shapes "$shape" \
    --paths baseline,gpu --shape-env-kwargs "$LKW" --json --out "$OUT/lora_$shape.json"
done

echo "done in $(($(date +%s) - START)) s; results in $OUT"
