"""``distillgym/ArithSkills-v0`` replays a trajectory recorded before the environment-core refactor.

The recording (tests/data/v0_trajectory.json, made by tests/data/record_v0_trajectory.py at commit
6cb11da) holds a small-config episode to its end and the first 3 steps of a default-config episode.
What depends only on numpy's seeded generators (validation and test prompts, every step's training
examples) must match on any machine. Float results (observations, losses, rewards, reports, test
accuracy) are bit-identical only on the same CPU and library builds: they are compared exactly when
this machine's fingerprint matches the recording's, and within a loose tolerance otherwise."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

DATA = Path(__file__).parent / "data"


def _recorder():
    spec = importlib.util.spec_from_file_location("record_v0_trajectory", DATA / "record_v0_trajectory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def recorded():
    return json.loads((DATA / "v0_trajectory.json").read_text())


@pytest.fixture(scope="module")
def recorder():
    return _recorder()


def _same_machine(recorded, recorder) -> bool:
    now = recorder._fingerprint()
    keys = ("cpu", "machine", "torch", "torch_cpu_capability", "numpy", "transformers")
    return all(now[k] == recorded["fingerprint"][k] for k in keys)


@pytest.mark.parametrize("part", ["small", "default_prefix"])
def test_v0_replays_the_recorded_trajectory(recorded, recorder, part):
    rec = recorded[part]
    now = recorder.record(rec["kwargs"], rec["seed"], rec["actions"])
    # machine-independent: the data
    assert now["val_prompts"] == rec["val_prompts"]
    assert now["test_prompts"] == rec["test_prompts"]
    assert now["train_examples"] == rec["train_examples"]
    assert len(now["rewards"]) == len(rec["rewards"])
    if _same_machine(recorded, recorder):
        for key in ("obs", "reports", "rewards", "losses", "final"):
            assert now[key] == rec[key], key  # bit-identical
    else:  # another CPU or library build: the same dynamics up to float drift
        np.testing.assert_allclose([float(x) for x in now["losses"]], [float(x) for x in rec["losses"]], rtol=0.05)
        for a, b in zip(now["obs"], rec["obs"], strict=True):
            assert abs(np.mean(a["accuracy"]) - np.mean(b["accuracy"])) <= 0.1
            assert a["budget_left"] == b["budget_left"] and a["reference"] == b["reference"]
