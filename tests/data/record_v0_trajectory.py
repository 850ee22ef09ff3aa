"""Record a short ``distillgym/ArithSkills-v0`` trajectory (run once, before the environment-core
refactor, at commit 6cb11da); ``tests/test_v0_trajectory.py`` replays it against the current code.

    python tests/data/record_v0_trajectory.py > tests/data/v0_trajectory.json

Floats are stored with ``repr`` so the comparison can be bit-exact; the machine's fingerprint is
stored beside them, because float results are bit-identical only on the same CPU and library builds.
"""

from __future__ import annotations

import hashlib
import json
import platform

import gymnasium as gym
import numpy as np
import torch

import distillgym  # noqa: F401

SMALL = dict(budget=2048, examples_per_step=512, n_val_per_cell=8, n_test_per_cell=8)
ACTIONS = [[2, 0], [0, 1], [5, 2], [6, 3]]


def _digest(items) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def _fingerprint() -> dict:
    import transformers

    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "machine": platform.machine(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy": np.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
    }


def record(kwargs: dict, seed: int, actions: list) -> dict:
    env = gym.make("distillgym/ArithSkills-v0", **kwargs)
    u = env.unwrapped
    obs, info = env.reset(seed=seed)
    out = {
        "kwargs": kwargs,
        "seed": seed,
        "actions": actions,
        "val_prompts": _digest(e.prompt for e in u._val.examples),
        "test_prompts": _digest(e.prompt for e in u._test.examples),
        "obs": [{k: v.tolist() for k, v in obs.items()}],
        "reports": [info["report"]],
        "rewards": [],
        "losses": [],
        "train_examples": [],
        "final": None,
    }
    engine_generate = u.engine.generate
    seen: list = []

    def spy(plan, rng, **kwargs):  # kwargs: the split argument the refactored engine takes
        ex, cost = engine_generate(plan, rng, **kwargs)
        seen.append(_digest(f"{e.prompt}{e.answer}" for e in ex))
        return ex, cost

    u.engine.generate = spy
    for a in actions:
        obs, r, term, trunc, info = env.step(np.array(a))
        out["obs"].append({k: v.tolist() for k, v in obs.items()})
        out["reports"].append(info["report"])
        out["rewards"].append(repr(r))
        out["losses"].append(repr(info["train_loss"]))
        if term:
            out["final"] = {k: info["final"][k] for k in ("test_accuracy", "test_accuracy_matrix")}
            out["final"]["test_accuracy"] = repr(out["final"]["test_accuracy"])
            break
    out["train_examples"] = seen
    env.close()
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    data = {
        "recorded_at_commit": "6cb11da",
        "fingerprint": _fingerprint(),
        "small": record(SMALL, 0, ACTIONS),
        "default_prefix": record({}, 3, [[1, 0], [2, 1], [4, 0]]),
    }
    print(json.dumps(data, indent=1))
