"""``distillgym/ReasoningGym-v3``: ReasoningGym-v2 with a warm-up, stable, decay learning rate, and v1 and
v2 kept as they were.

That sub-env i of its vector env equals the single env with its seed, while the student learns (the
decay included), is tests/test_vector.py's registry-wide test (parametrised over ``VECTOR_ENTRY_POINTS``)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest

pytest.importorskip("torch")
pytest.importorskip("reasoning_gym", reason="the reasoning-gym extra is not installed")

import distillgym  # noqa: E402,F401
from distillgym.envs import ENV_DEFAULTS, VECTOR_ENTRY_POINTS, describe_env  # noqa: E402
from distillgym.students.char_lm import lr_at  # noqa: E402

V2, V3 = "distillgym/ReasoningGym-v2", "distillgym/ReasoningGym-v3"
SMALL = dict(budget=1024, examples_per_step=512, n_val_per_cell=2, n_test_per_cell=2, device="cpu")


def test_v3_is_v2_with_a_late_learning_rate_decay_and_a_native_vector_env():
    spec = gym.spec(V3)
    assert spec.kwargs == ENV_DEFAULTS[V3] and spec.vector_entry_point == VECTOR_ENTRY_POINTS[V3] == VECTOR_ENTRY_POINTS[V2]
    # v3 differs from v2 in the student's schedule fields only
    assert {k: v for k, v in spec.kwargs.items() if k != "student_kwargs"} == {
        k: v for k, v in ENV_DEFAULTS[V2].items() if k != "student_kwargs"}
    assert spec.kwargs["student_kwargs"] == {**ENV_DEFAULTS[V2]["student_kwargs"], "lr_decay_steps": 3000,
                                             "lr_decay_start": 2250, "lr_final": 0.1}
    assert ENV_DEFAULTS[V2]["student_kwargs"] == dict(batch_size=64, hidden_size=32, intermediate_size=64, num_heads=2,
                                                      init_std=0.2)  # v2 unchanged
    d = describe_env(V3)
    assert d["vector"] and d["steps"] == 32
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        env = gym.make(V3, **SMALL)
    try:
        cfg = env.unwrapped.student.config
        assert (cfg.lr_decay_steps, cfg.lr_decay_start, cfg.lr_final, cfg.replay_sampling) == (3000, 2250, 0.1, "uniform")
        recorded = env.unwrapped.config["student_kwargs"]
        assert recorded["lr_decay_start"] == 2250 and "replay_sampling" not in recorded
    finally:
        env.close()
    # the default episode's optimiser steps: 1,536 new rows in the first step (no replay yet: 24 batches of
    # 64), then 16 new rows a batch (96 batches a step); the rate is constant to 2,250 and a tenth from 3,000
    assert 1536 // 64 + 31 * (1536 // 16) == 3000
    assert lr_at(cfg, 2250) == cfg.lr and lr_at(cfg, 2999) == pytest.approx(0.1 * cfg.lr, rel=1e-4)
