"""``ArithSkills-v2`` and ``ArithMix-v2`` replay trajectories recorded before the native vector env
stepped as arrays (tests/data/v2_trajectory.json, made by tests/data/record_v2_trajectory.py at
commit ebfdc9c), in a regime where the student learns.

The single env's episode with seed 3 is replayed directly; the native vector env with N = 3 is
compared with the three recorded single-env episodes (seeds 3, 4, 5), sub-env by sub-env: its
sub-envs are the single envs of those seeds, so together with tests/test_vector.py (the vector
env equals today's single env) this shows the single env's numbers did not change either. Float
results are bit-identical only on the same CPU and library builds: they are compared exactly when
this machine's fingerprint matches the recording's, and within a loose tolerance otherwise."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

DATA = Path(__file__).parent / "data"
IDS = ("distillgym/ArithSkills-v2", "distillgym/ArithMix-v2")


def _recorder():
    spec = importlib.util.spec_from_file_location("record_v2_trajectory", DATA / "record_v2_trajectory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def recorded():
    return json.loads((DATA / "v2_trajectory.json").read_text())


@pytest.fixture(scope="module")
def recorder():
    return _recorder()


def _same_machine(recorded, recorder) -> bool:
    now = recorder._fingerprint()
    keys = ("cpu", "machine", "torch", "torch_cpu_capability", "numpy")
    return all(now[k] == recorded["fingerprint"][k] for k in keys)


def _compare(now: dict, rec: dict, exact: bool) -> None:
    assert len(now["rewards"]) == len(rec["rewards"])
    if exact:
        for key in ("obs", "reports", "rewards", "losses", "val_loss", "final"):
            assert now[key] == rec[key], key  # bit-identical
    else:  # another CPU or library build: the same dynamics up to float drift
        for a, b in zip(now["obs"], rec["obs"], strict=True):
            assert abs(np.mean(a) - np.mean(b)) <= 0.15


@pytest.mark.parametrize("env_id", IDS)
def test_the_single_env_replays_its_recorded_episode(recorded, recorder, env_id):
    rec = recorded[env_id]["single"][0]
    _compare(recorder.record_single(env_id, rec["seed"], 0), rec, _same_machine(recorded, recorder))


@pytest.mark.parametrize("env_id", IDS)
def test_the_vector_env_replays_the_recorded_single_env_episodes(recorded, recorder, env_id):
    singles = recorded[env_id]["single"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        now = recorder.record_vector(env_id, [s["seed"] for s in singles])
    exact = _same_machine(recorded, recorder)
    for sub, rec in zip(now["subs"], singles, strict=True):
        _compare(sub, rec, exact)
    assert np.mean([float(s["final"]["val_accuracy_end"]) for s in singles]) > 0.05  # the student learns
