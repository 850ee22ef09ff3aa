"""Record short trajectories of the v2 ids, single env and native vector env (run once, at commit
ebfdc9c, before the native vector env stepped as arrays); ``tests/test_v2_trajectory.py`` replays
them against the current code.

    python tests/data/record_v2_trajectory.py > tests/data/v2_trajectory.json

The config is a learning regime (mean validation accuracy about 0.2 after three steps of data from
easy cells), so a wrong number shows. Recorded: each id's single env with seeds 3, 4 and 5 (sub-env
i's actions), and its native vector env at N = 1. (At that commit the vector env at N = 3 differed
from the single envs by float rounding, which training amplified to several points of accuracy;
since then it equals them bit for bit, which the test checks against these single-env records.) Floats are stored with ``repr`` so the comparison can be
bit-exact; the machine's fingerprint is stored beside them (see tests/data/record_v0_trajectory.py).
"""

from __future__ import annotations

import hashlib
import json
import warnings

import gymnasium as gym
import numpy as np
import torch

import distillgym  # noqa: F401

KWARGS = dict(budget=3072, examples_per_step=1024, n_val_per_cell=4, n_test_per_cell=4, device="cpu",
              student_kwargs=dict(batch_size=32, warmup_steps=10))
EASY = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (5, 0), (2, 0)]
"""Cells the student learns within a few thousand examples (copy, successor L0-1, compare L0, add L0)."""
IDS = ("distillgym/ArithSkills-v2", "distillgym/ArithMix-v2")
VEC_SEEDS = [3, 4, 5]


def action(level: str, step: int, sub: int) -> np.ndarray:
    """Sub-env ``sub``'s action at ``step``: an easy cell (cell level) or a mix over easy cells
    whose weights depend on the sub-env (mix level)."""
    if level == "cell":
        return np.array(EASY[(step + 3 * sub) % len(EASY)], dtype=np.int64)
    w = np.zeros((7, 4))
    for j, c in enumerate(EASY):
        w[c] = 1.0 + ((j + sub + step) % 3)
    return (2.0 * w / w.max() - 1.0).astype(np.float32)


def _digest(items) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def _fingerprint() -> dict:
    import platform

    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "machine": platform.machine(), "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "numpy": np.__version__,
            "threads": torch.get_num_threads()}


def _final(info: dict) -> dict:
    f = info["final"]
    return {"test_accuracy": repr(f["test_accuracy"]), "test_accuracy_matrix": f["test_accuracy_matrix"],
            "val_accuracy_end": repr(f["val_accuracy_end"])}


def record_single(env_id: str, seed: int, sub: int = 0) -> dict:
    env = gym.make(env_id, **KWARGS)
    level = env.unwrapped.level.name
    obs, info = env.reset(seed=seed)
    out = {"seed": seed, "obs": [obs["accuracy"].tolist()], "reports": [info["report"]], "rewards": [],
           "losses": [], "val_loss": [info["val_loss"]], "final": None}
    step, done = 0, False
    while not done:
        obs, r, term, trunc, info = env.step(action(level, step, sub))
        step += 1
        out["obs"].append(obs["accuracy"].tolist())
        out["reports"].append(info["report"])
        out["rewards"].append(repr(r))
        out["losses"].append(repr(info["train_loss"]))
        out["val_loss"].append(info["val_loss"])
        done = term or trunc
    out["final"] = _final(info)
    env.close()
    return out


def record_vector(env_id: str, seeds: list[int]) -> dict:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        venv = gym.make_vec(env_id, num_envs=len(seeds), vectorization_mode="vector_entry_point", **KWARGS)
    level = venv.unwrapped.envs[0].level.name if hasattr(venv.unwrapped, "envs") else None
    level = level or gym.spec(env_id).kwargs["level"]
    obs, info = venv.reset(seed=seeds)
    n = len(seeds)
    subs = [{"seed": s, "obs": [obs["accuracy"][i].tolist()], "reports": [venv.last_infos[i]["report"]],
             "rewards": [], "losses": [], "val_loss": [venv.last_infos[i]["val_loss"]], "final": None}
            for i, s in enumerate(seeds)]
    step = 0
    while True:
        acts = np.stack([action(level, step, i) for i in range(n)])
        obs, r, term, trunc, info = venv.step(acts)
        step += 1
        for i in range(n):
            li = venv.last_infos[i]
            subs[i]["obs"].append(obs["accuracy"][i].tolist())
            subs[i]["reports"].append(li["report"])
            subs[i]["rewards"].append(repr(float(r[i])))
            subs[i]["losses"].append(repr(li["train_loss"]))
            subs[i]["val_loss"].append(li["val_loss"])
            if term[i] or trunc[i]:
                subs[i]["final"] = _final(li)
        if (term | trunc).all():
            break
    venv.close()
    return {"seeds": seeds, "subs": subs}


if __name__ == "__main__":
    torch.set_num_threads(1)
    data = {"recorded_at_commit": "ebfdc9c", "fingerprint": _fingerprint(), "kwargs": KWARGS}
    for env_id in IDS:
        data[env_id] = {
            "single": [record_single(env_id, s, i) for i, s in enumerate(VEC_SEEDS)],
            "vector1": record_vector(env_id, VEC_SEEDS[:1]),
        }
    print(json.dumps(data, indent=1))
