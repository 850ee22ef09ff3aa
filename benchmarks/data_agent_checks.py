"""Small real checks of the data-generation agent's ids (issue 21, section 4): do they behave as the
lead's prototype did?

For one id at a time, a few fixed policies x seeds run as the sub-envs of one native vector env (one
population of plain students, ``gymnasium.make_vec(id, num_envs=N, vectorization_mode=
"vector_entry_point")``), at a small budget; the script prints and writes (``--out``) each policy's
final test accuracy (the id's score: the target mean on ArithTarget-v1), its paired difference from the
equal mix per seed, and the per-cell test accuracy. The policies are written out here (not teachers):
they are the prototype's, to check the dynamics, not candidates for a leaderboard.

    OMP_NUM_THREADS=1 python benchmarks/data_agent_checks.py sources --budget 8192 --seeds 0 1 2

Ids: ``target`` (ArithTarget-v1), ``sources`` (ArithSources-v1), ``sources-open``
(ArithSourcesOpen-v1), ``forget`` (ArithForget-v1). Results and commands: benchmarks/README.md,
"The data-generation agent's ids".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

S, D = 7, 4
SKILLS = ["copy", "successor", "add", "sub", "mul", "compare", "chain"]
IDS = {"target": "distillgym/ArithTarget-v1", "sources": "distillgym/ArithSources-v1",
       "sources-open": "distillgym/ArithSourcesOpen-v1", "forget": "distillgym/ArithForget-v1"}


def _mix(w: np.ndarray) -> np.ndarray:
    from distillgym.levels import mix_to_action

    return mix_to_action(np.asarray(w, float))


def _cells(*rows_levels: tuple[int, slice | int], value: float = 1.0, base: float = 0.0) -> np.ndarray:
    w = np.full((S, D), base)
    for s, d in rows_levels:
        w[s, d] = value
    return w


def target_policies(steps: int) -> dict:
    prereq, targets = [0, 1], [2, 3]

    def fixed(w):
        return lambda obs, info, t: _mix(w)

    with_prereq = np.zeros((S, D))
    with_prereq[targets] = 1.0
    with_prereq[prereq] = 0.3
    only = np.zeros((S, D))
    only[targets] = 1.0
    first = np.zeros((S, D))
    first[prereq, :2] = 1.0
    after = np.zeros((S, D))
    after[targets] = 1.0
    after[prereq] = 0.1
    warm_steps = max(1, steps // 8)  # the prototype's 3 of 24 steps

    return {
        "equal": fixed(np.ones((S, D))),
        "targets+prereq0.3": fixed(with_prereq),
        "targets-only": fixed(only),
        "prereq-first": lambda obs, info, t: _mix(first if t < warm_steps else after),
    }


def sources_policies(steps: int) -> dict:
    def src(shares):
        w = np.zeros((S, D, 3))
        w[:, :, :] = np.asarray(shares, float)[None, None, :]
        return lambda obs, info, t: _mix(w)

    return {"equal": src([1, 1, 1]), "verified": src([1, 0, 0]), "buggy": src([0, 1, 0]), "noisy": src([0, 0, 1])}


def forget_policies(steps: int) -> dict:
    hard = np.zeros((S, D))
    hard[:, 2:] = 1.0
    hard_r = hard.copy()
    hard_r[:, :2] = 0.2
    return {"equal": lambda o, i, t: _mix(np.ones((S, D))), "hard-only": lambda o, i, t: _mix(hard),
            "hard+0.2": lambda o, i, t: _mix(hard_r),
            "error+0.02": lambda o, i, t: _mix(1 - np.asarray(o["accuracy"], float) + 0.02)}


def open_policies(steps: int) -> dict:
    return {"writer-verified": ("scripted-writer", {"unverified": False}),
            "writer-unverified": ("scripted-writer", {"unverified": True}),
            "equal": ("stratified", {})}


def run(which: str, budget: int, seeds: list[int], out: Path | None) -> dict:
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the ids)

    env_id = IDS[which]
    steps = -(-budget // 2048)
    policies = {"target": target_policies, "sources": sources_policies, "forget": forget_policies,
                "sources-open": open_policies}[which](steps)
    sub = [(p, s) for p in policies for s in seeds]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        venv = gym.make_vec(env_id, num_envs=len(sub), vectorization_mode="vector_entry_point",
                            autoreset_mode="Disabled", budget=budget)
    obs, _ = venv.reset(seed=[s for _, s in sub])
    infos = list(venv.last_infos)
    teachers = {}
    if which == "sources-open":
        from distillgym.teachers import make_teacher
        from distillgym.teachers.adapters import adapt_teacher

        for i, (p, s) in enumerate(sub):
            name, kw = policies[p]
            teachers[i] = adapt_teacher(make_teacher(name, **kw), "open")
            teachers[i].reset(venv.single_action_space, infos[i], seed=s)
    done = np.zeros(len(sub), bool)
    finals: list = [None] * len(sub)
    spent: list = [None] * len(sub)
    t = 0
    while not done.all():
        acts = []
        for i, (p, _) in enumerate(sub):
            o = {k: v[i] for k, v in obs.items()}
            acts.append(teachers[i].act(o, infos[i]) if teachers else policies[p](o, infos[i], t))
        obs, r, term, trunc, _ = venv.step(acts if teachers else np.stack(acts))
        infos = list(venv.last_infos)
        for i in range(len(sub)):
            if (term[i] or trunc[i]) and finals[i] is None:
                finals[i] = infos[i]["final"]
                spent[i] = infos[i]["totals"].get("by_source")
        done |= term | trunc
        t += 1
        print(f"{which}: step {t}  {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    rows = [{"policy": p, "seed": s, "score": finals[i]["test_accuracy"],
             "all_cells": finals[i].get("test_accuracy_all_cells", finals[i]["test_accuracy"]),
             "test_matrix": finals[i]["test_accuracy_matrix"], "by_source": spent[i]}
            for i, (p, s) in enumerate(sub)]
    summary = {}
    base = {r["seed"]: r["score"] for r in rows if r["policy"] == "equal"}
    for p in policies:
        mine = [r for r in rows if r["policy"] == p]
        diffs = [r["score"] - base[r["seed"]] for r in mine]
        summary[p] = {"mean": float(np.mean([r["score"] for r in mine])), "vs_equal": float(np.mean(diffs)),
                      "sd": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0,
                      "cells": np.mean([r["test_matrix"] for r in mine], axis=0).round(3).tolist()}
    import torch

    record = {"env": env_id, "budget": budget, "seeds": seeds, "seconds": round(seconds, 1), "rows": rows,
              "summary": summary, "torch_threads": torch.get_num_threads(),
              "command": f"OMP_NUM_THREADS=1 python benchmarks/data_agent_checks.py {which} --budget {budget} "
                         f"--seeds {' '.join(map(str, seeds))}"}
    print(f"\n{env_id}, budget {budget}, seeds {seeds}, {seconds:.0f} s (N = {len(sub)} sub-envs)")
    print(f"{'policy':<20} {'test':>6} {'vs equal':>9} {'sd':>6}")
    for p, v in summary.items():
        print(f"{p:<20} {v['mean']:6.3f} {v['vs_equal']:+9.3f} {v['sd']:6.3f}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{which}-{budget}.json").write_text(json.dumps(record, indent=1))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=sorted(IDS))
    parser.add_argument("--budget", type=int, default=8192)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="benchmarks/results/data_agent_checks")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    run(args.which, args.budget, args.seeds, Path(args.out) if args.out else None)


if __name__ == "__main__":
    main()
