"""``distillgym/ReasoningGym-v2``: the reasoning-gym suite on the plain student with a native vector env,
and ``ReasoningGym-v1`` kept as it was (its defaults, student and vector mode).

That sub-env i of the vector env equals the single env with its seed, while the student learns, is
tests/test_vector.py's registry-wide test (parametrised over ``VECTOR_ENTRY_POINTS``)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("reasoning_gym", reason="the reasoning-gym extra is not installed")

import distillgym  # noqa: E402,F401
from distillgym.envs import ENV_DEFAULTS, VECTOR_ENTRY_POINTS, describe_env  # noqa: E402
from distillgym.vector import PopulationVectorEnv  # noqa: E402

V1, V2 = "distillgym/ReasoningGym-v1", "distillgym/ReasoningGym-v2"
SMALL = dict(budget=1024, examples_per_step=512, n_val_per_cell=2, n_test_per_cell=2, device="cpu")


def _make(env_id, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        return gym.make(env_id, **kw)


def test_v1_keeps_its_defaults_tiny_student_and_no_native_vector_env():
    """v1's registration is exactly what it was before v2 (its numbers depend on nothing else here)."""
    assert ENV_DEFAULTS[V1] == dict(suite="reasoning-gym", split="content", student_init="seed", level="cell",
                                    budget=32768, examples_per_step=1024)
    assert gym.spec(V1).kwargs == ENV_DEFAULTS[V1] and gym.spec(V1).vector_entry_point is None
    env = _make(V1, **SMALL)
    try:
        assert env.unwrapped.config["student"] == "tiny" and env.unwrapped.config["engine"] == "procedural"
    finally:
        env.close()


def test_v2_is_the_suite_on_the_plain_student_with_a_native_vector_env():
    from distillgym.students.torch_student import PlainStudent
    from distillgym.tasks.reasoning_gym import ReasoningGymSuite

    spec = gym.spec(V2)
    assert spec.kwargs == ENV_DEFAULTS[V2]
    assert spec.kwargs["suite"] == "reasoning-gym" and spec.kwargs["student"] == "plain"
    assert spec.vector_entry_point == VECTOR_ENTRY_POINTS[V2] == "distillgym.vector:PopulationVectorEnv"
    # v2 differs from v1 in its student and budget only: the same suite, level, split and engine
    assert {k: v for k, v in spec.kwargs.items() if k not in ("student", "student_kwargs", "budget",
                                                              "examples_per_step")} == {
        k: v for k, v in ENV_DEFAULTS[V1].items() if k not in ("budget", "examples_per_step")}
    d = describe_env(V2)
    assert d["vector"] and d["steps"] == -(-spec.kwargs["budget"] // spec.kwargs["examples_per_step"])
    env = _make(V2, **SMALL)
    try:
        u = env.unwrapped
        assert isinstance(u.student, PlainStudent) and isinstance(u.suite, ReasoningGymSuite)
        # a plain student of half the default width with wider initial weights (benchmarks/README.md)
        assert spec.kwargs["student_kwargs"] == dict(batch_size=64, hidden_size=32, intermediate_size=64, num_heads=2,
                                                     init_std=0.2)
        cfg = u.student.config
        assert (cfg.batch_size, cfg.hidden_size, cfg.intermediate_size, cfg.num_heads, cfg.num_layers, cfg.init_std) == (
            64, 32, 64, 2, 2, 0.2)
        assert u.student.model_config.init_std == 0.2
        assert u.config["engine"] == "procedural" and env.action_space == gym.spaces.MultiDiscrete([8, 4])
    finally:
        env.close()


def test_make_vec_gives_a_population_on_the_reasoning_gym_suite():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        venv = gym.make_vec(V2, num_envs=2, **SMALL)
    assert isinstance(venv, PopulationVectorEnv) and venv.population.size == 2
    obs, _ = venv.reset(seed=[5, 6])
    assert obs["accuracy"].shape == (2, 8, 4)
    obs, r, term, trunc, info = venv.step(np.array([[5, 0], [2, 1]]))
    assert r.shape == (2,) and not term.any()
    # the procedural engine made each sub-env's examples of its own cell
    assert [venv.last_infos[i]["action"]["skill"] for i in range(2)] == ["spell_backward", "gcd"]
    assert venv.last_infos[0]["report"] != venv.last_infos[1]["report"]
    venv.close()
