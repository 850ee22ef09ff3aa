"""One uniform-teacher episode, printed as one JSON line (the lines of tuning.jsonl were made with it).

    OMP_NUM_THREADS=1 python tuning_episode.py SEED 'JSON of env kwargs' [ENV_ID]

The env defaults to ``distillgym/ReasoningGym-v1``. tuning.jsonl's first 11 lines ran it on v1 with
``{"student": "plain", ...}`` (the settings each line lists under ``kw``, on an AMD EPYC); the others ran
``distillgym/ReasoningGym-v2`` (their ``env``) on a 2-core Intel Xeon with ``kw`` given over v2's defaults of
the time (32,768 examples in steps of 1,024, ``student_kwargs={"batch_size": 64}``); their ``settings`` is
the whole of it (a ``student_kwargs`` given replaces v2's whole dict), so
``python tuning_episode.py SEED "$settings" distillgym/ReasoningGym-v2`` repeats one at any later default.

Prints the validation-accuracy gain (final mean minus the initial one), the final test accuracy and test
matrix, the validation curve, the episode's process CPU time and wall time (around ``run_episode`` only)
and the steps' phase seconds.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from distillgym.harness.runner import run_episode


def main() -> None:
    torch.set_num_threads(1)
    seed, kw = int(sys.argv[1]), json.loads(sys.argv[2])
    env_id = sys.argv[3] if len(sys.argv) > 3 else "distillgym/ReasoningGym-v1"
    c0, w0 = time.process_time(), time.perf_counter()
    r = run_episode(env_id, "uniform", seed=seed, env_kwargs=kw)
    c1, w1 = time.process_time(), time.perf_counter()
    phases: dict[str, float] = {}
    for step in r["steps"]:
        for k, v in (step.get("seconds") or {}).items():
            phases[k] = phases.get(k, 0.0) + v
    print(json.dumps({
        "seed": seed, "kw": kw, "gain": r["val_accuracy_end"] - r["val_accuracy_start"],
        "start": r["val_accuracy_start"], "end": r["val_accuracy_end"], "test": r["final_test_accuracy"],
        "cpu": round(c1 - c0, 1), "wall": round(w1 - w0, 1),
        "mat": [[round(x, 2) for x in row] for row in r["test_accuracy_matrix"]],
        "curve": [round(s["val_accuracy"], 3) for s in r["steps"]],
        "phases": {k: round(v, 1) for k, v in phases.items()},
    }))


if __name__ == "__main__":
    main()
