"""How much of the hidden test set a student can have seen: ArithSkills-v0 against the v1 envs.

For each env id, one default episode with the uniform teacher (seed ``--seed``) is run with its
real student, and every training example the student receives is recorded. Printed per env:

- ``test ∩ val``: the share of test items whose prompt is also a validation prompt (the
  teacher sees validation items' gold answers in the sampled-error report);
- ``test ∩ train``: the share of test items whose prompt the student was trained on during the
  episode (the number the issue asks to be 0 for every v1 id);
- ``cells covered by one step``: for each cell, the share of its distinct test prompts that one
  training step of ``examples_per_step`` examples of that cell contains (engine data drawn the
  way the env draws it); the cells where it exceeds 50% measure memorisation, not skill.

Run (2 default episodes per id of about a minute each on one core):
    python benchmarks/leakage.py --threads 1
    python benchmarks/leakage.py --envs distillgym/ArithSkills-v0,distillgym/ArithSkills-v1 --json --out leak.json
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from _args import emit_json, parse_dataclass_args


@dataclass
class Args:
    envs: str = "distillgym/ArithSkills-v0,distillgym/ArithSkills-v1,distillgym/ArithMix-v1,distillgym/ArithOpen-v1"
    """Comma-separated env ids."""
    seed: int = 0
    """Episode seed."""
    teacher: str = "uniform"
    """Teacher (played through the documented adapter on mix and open envs)."""
    threads: int = 1
    """torch threads."""
    json: bool = False
    """Print JSON instead of tables."""
    out: str = ""
    """Also write the JSON results to this file."""


def measure(env_id: str, seed: int, teacher: str) -> dict[str, Any]:
    import gymnasium as gym

    import distillgym  # noqa: F401
    from distillgym.seeding import STREAM_TRAIN, rng_for
    from distillgym.teachers import make_teacher
    from distillgym.teachers.adapters import adapt_teacher
    from distillgym.types import PlanItem

    t0 = time.perf_counter()
    env = gym.make(env_id, device="cpu")
    u = env.unwrapped
    trained: list = []
    original = u.student.train

    def spy(examples, rng=None, **kw):
        trained.extend(e.prompt for e in examples)
        return original(examples, rng, **kw)

    u.student.train = spy
    obs, info = env.reset(seed=seed)
    agent = adapt_teacher(make_teacher(teacher), info["level"])
    agent.reset(env.action_space, info, seed=seed)
    done = False
    while not done:
        obs, r, term, trunc, info = env.step(agent.act(obs, info))
        agent.update(obs, r, term, trunc, info)
        done = term or trunc
    test = [e for e in u._test.examples]
    val = {e.prompt for e in u._val.examples}
    train = set(trained)
    cells = {}
    split = "train" if u.split else None
    for i, (skill, d) in enumerate(u.suite.cells):
        cell_test = {e.prompt for e in test if (e.skill, e.difficulty) == (skill, d)}
        step, _ = u.engine.generate([PlanItem(skill, d, u.examples_per_step)], rng_for(seed, STREAM_TRAIN, 999, i), split=split)
        covered = len(cell_test & {e.prompt for e in step}) / max(len(cell_test), 1)
        cells[f"{skill} L{d}"] = {
            "test_in_val": sum(e.prompt in val for e in test if (e.skill, e.difficulty) == (skill, d)) / u.n_test_per_cell,
            "test_in_train": sum(e.prompt in train for e in test if (e.skill, e.difficulty) == (skill, d))
            / u.n_test_per_cell,
            "one_step_covers": covered,
        }
    out = {
        "env": env_id,
        "seed": seed,
        "test_items": len(test),
        "test_in_val": sum(e.prompt in val for e in test) / len(test),
        "test_in_train": sum(e.prompt in train for e in test) / len(test),
        "test_in_train_count": sum(e.prompt in train for e in test),
        "train_examples": len(trained),
        "cells_half_covered_by_one_step": sorted(k for k, v in cells.items() if v["one_step_covers"] > 0.5),
        "cells": cells,
        "final_test_accuracy": info["final"]["test_accuracy"],
        "seconds": time.perf_counter() - t0,
    }
    env.close()
    return out


def main() -> None:
    args = parse_dataclass_args(Args, __doc__.split("\n\n")[0])
    import torch

    torch.set_num_threads(args.threads)
    results = [measure(e, args.seed, args.teacher) for e in args.envs.split(",") if e]
    if emit_json({"args": dataclasses.asdict(args), "results": results}, args.out, args.json):
        return
    print(f"uniform-teacher episode, seed {args.seed}, default config of each id\n")
    print("| env | test items | test prompts also in validation | test prompts trained on (count) | "
          "cells where one step covers > 50% of the test prompts |")
    print("|---|---:|---:|---:|---|")
    for r in results:
        half = r["cells_half_covered_by_one_step"]
        print(f"| {r['env']} | {r['test_items']} | {r['test_in_val']:.1%} | {r['test_in_train']:.1%} "
              f"({r['test_in_train_count']}) | {len(half)}: {', '.join(half) or '-'} |")
    v0 = next((r for r in results if r["env"].endswith("-v0")), None)
    if v0:
        print("\nArithSkills-v0, cells with the largest test/validation overlap:")
        top = sorted(v0["cells"].items(), key=lambda kv: -kv[1]["test_in_val"])[:6]
        print(", ".join(f"{k} {v['test_in_val']:.0%}" for k, v in top))


if __name__ == "__main__":
    main()
