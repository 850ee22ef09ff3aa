"""The native vector env (one population of plain students) and its SB3 adapter."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

import distillgym  # noqa: E402,F401
from distillgym.errors import ConfigError, InvalidActionError  # noqa: E402
from distillgym.vector import PopulationVectorEnv  # noqa: E402

ENV = "distillgym/ArithSkills-v2"
TINY = dict(budget=512, examples_per_step=256, n_val_per_cell=4, n_test_per_cell=4, device="cpu")


def _vec(n, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        return gym.make_vec(ENV, num_envs=n, **{**TINY, **kw})


def _single(**kw):
    return gym.make(ENV, **{**TINY, **kw})


ACTIONS = [np.array([[2, 0], [0, 1], [5, 2]]), np.array([[0, 1], [1, 3], [6, 0]])]


def _single_run(seed, actions):
    env = _single()
    obs, info = env.reset(seed=seed)
    out = {"obs": [obs], "infos": [info], "rewards": []}
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out["obs"].append(obs)
        out["infos"].append(info)
        out["rewards"].append(r)
    out["term"] = term
    return out


def test_make_vec_gives_the_native_vector_env():
    venv = _vec(3)
    assert isinstance(venv, PopulationVectorEnv) and venv.num_envs == 3
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    single = _single()
    assert venv.single_observation_space == single.observation_space
    assert venv.single_action_space == single.action_space
    assert venv.observation_space["accuracy"].shape == (3, 7, 4) and venv.action_space.shape == (3, 2)
    assert venv.population.size == 3 and str(venv.population.device) == "cpu"
    # every sub-env's config is the single env's: the same dynamics, rebuildable by name
    assert all(env.config == single.unwrapped.config for env in venv.envs)
    assert single.unwrapped.config["student"] == "plain" and single.unwrapped.config["engine"] == "vectorized"
    assert isinstance(gym.make_vec(ENV, num_envs=2, vectorization_mode="async", **TINY), gym.vector.AsyncVectorEnv)


def test_one_sub_env_is_the_single_env_bit_for_bit():
    """N = 1: the population's batches have the plain student's shapes, so everything matches."""
    want = _single_run(7, [a[0] for a in ACTIONS])
    venv = _vec(1)
    obs, info = venv.reset(seed=7)
    assert venv.last_infos[0]["report"] == want["infos"][0]["report"]
    for k, a in enumerate(ACTIONS):
        obs, r, term, trunc, info = venv.step(a[:1])
        for key in obs:
            np.testing.assert_array_equal(obs[key][0], want["obs"][k + 1][key])
        assert r[0] == want["rewards"][k]
        got = venv.last_infos[0]
        assert got["report"] == want["infos"][k + 1]["report"] and got["train_loss"] == want["infos"][k + 1]["train_loss"]
        assert got["train_cell_loss"] == want["infos"][k + 1]["train_cell_loss"]
    assert term[0] and want["term"]
    assert venv.last_infos[0]["final"] == want["infos"][-1]["final"]
    assert json.dumps(venv.last_infos[0]["costs"]) and info["final"]["test_accuracy"][0] == want["infos"][-1]["final"]["test_accuracy"]


def test_sub_envs_match_separate_single_envs():
    """N = 3 with other seeds and actions per sub-env: each sub-env is its single env, up to
    float32 rounding in the batched passes, which may flip an exact-match item now and then (at
    most two cell entries over the episode are allowed to differ; measured: none)."""
    seeds = [3, 4, 5]
    venv = _vec(3)
    obs, info = venv.reset(seed=seeds)
    vec = {"obs": [obs], "rewards": []}
    for a in ACTIONS:
        obs, r, term, trunc, info = venv.step(a)
        vec["obs"].append(obs)
        vec["rewards"].append(r)
    assert term.all() and not trunc.any()
    assert "final" in info and info["_final"].all()
    differing = 0
    for i, seed in enumerate(seeds):
        want = _single_run(seed, [a[i] for a in ACTIONS])
        for k, o in enumerate(want["obs"]):
            differing += int((vec["obs"][k]["accuracy"][i] != o["accuracy"]).sum())
            np.testing.assert_array_equal(vec["obs"][k]["budget_left"][i], o["budget_left"])
            np.testing.assert_array_equal(vec["obs"][k]["reference"][i], o["reference"])
        assert np.allclose([r[i] for r in vec["rewards"]], want["rewards"], atol=2 / (4 * 28))
        assert abs(info["final"]["test_accuracy"][i] - want["infos"][-1]["final"]["test_accuracy"]) <= 2 / (4 * 28)
    assert differing <= 2


def test_next_step_autoreset():
    """The step after an episode ends resets that sub-env: reset observation, reward 0, not done;
    its next episode is the single env's next episode (seeded from the sub-env's own generator)."""
    venv = _vec(2)
    venv.reset(seed=[1, 2])
    for a in ACTIONS:
        obs, r, term, trunc, _ = venv.step(a[:2])
    assert term.all()
    obs, r, term, trunc, info = venv.step(ACTIONS[0][:2])
    assert (r == 0).all() and not term.any() and not trunc.any()
    np.testing.assert_array_equal(obs["budget_left"], np.ones((2, 1), np.float32))
    assert "report" in info and "costs" not in venv.last_infos[0]  # a reset info
    single = _single()
    single.reset(seed=2)
    for a in ACTIONS:
        single.step(a[1])
    o, _ = single.reset()
    np.testing.assert_array_equal(obs["accuracy"][1], o["accuracy"])
    obs, r, term, trunc, info = venv.step(ACTIONS[1][:2])
    assert "costs" in venv.last_infos[1]  # a step again


def test_same_step_autoreset_reports_the_final_observation():
    venv = _vec(2, autoreset_mode="SameStep")
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    venv.reset(seed=[1, 2])
    obs, r, term, trunc, info = venv.step(ACTIONS[0][:2])
    assert "final_obs" not in info
    obs, r, term, trunc, info = venv.step(ACTIONS[1][:2])
    assert term.all() and info["_final_obs"].all()
    np.testing.assert_array_equal(obs["budget_left"], np.ones((2, 1), np.float32))  # already the next episode
    assert info["final_obs"][0]["budget_left"][0] == 0.0
    assert "final" in info["final_info"]["_final"] or "final" in info["final_info"]
    assert "final" in venv.last_infos[1]["final_info"] and venv.last_infos[1]["final_obs"]["budget_left"][0] == 0


def test_disabled_autoreset_and_reset_mask():
    venv = _vec(2, autoreset_mode="Disabled")
    venv.reset(seed=[1, 2])
    for a in ACTIONS:
        venv.step(a[:2])
    with pytest.raises(ConfigError, match="episode has ended"):
        venv.step(ACTIONS[0][:2])
    obs, info = venv.reset(options={"reset_mask": np.array([True, False])})
    assert obs["budget_left"][0, 0] == 1.0 and obs["budget_left"][1, 0] == 0.0
    assert info["_report"].tolist() == [True, False]
    with pytest.raises(ConfigError, match="reset_mask"):
        venv.reset(options={"reset_mask": [True]})


def test_vector_rollouts_are_reproducible():
    runs = []
    for _ in range(2):
        venv = _vec(2, n_val_per_cell=2, n_test_per_cell=2)
        obs, _ = venv.reset(seed=9)
        rows = [obs["accuracy"].copy()]
        for a in ACTIONS:
            obs, r, *_ = venv.step(a[:2])
            rows += [obs["accuracy"].copy(), r.copy()]
        runs.append((rows, [i["report"] for i in venv.last_infos]))
    for x, y in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(x, y)
    assert runs[0][1] == runs[1][1]


def test_vector_env_errors():
    with pytest.raises(ConfigError, match="student='plain'"):
        PopulationVectorEnv(num_envs=2, suite="arith-v2", student="tiny", **TINY)
    with pytest.raises(ConfigError, match="autoreset_mode"):
        _vec(2, autoreset_mode="Sometimes")
    with pytest.raises(ConfigError, match="num_envs"):
        PopulationVectorEnv(num_envs=0, **TINY)
    venv = _vec(2, n_val_per_cell=1, n_test_per_cell=1)
    with pytest.raises(ConfigError, match="2 seeds|seeds for 2"):
        venv.reset(seed=[1, 2, 3])
    venv.reset(seed=0)
    with pytest.raises(InvalidActionError, match="out of range"):
        venv.step(np.array([[1, 1], [9, 0]]))


# ---------------------------------------------------------------------------- SB3
def test_sb3_adapter_follows_sb3s_conventions():
    pytest.importorskip("stable_baselines3")
    from distillgym.train.sb3_vec_env import NativeVecEnv, make_native_vec_env

    venv = make_native_vec_env(ENV, 2, TINY)
    venv.seed(5)
    obs = venv.reset()
    assert obs["accuracy"].shape == (2, 7, 4) and len(venv.reset_infos) == 2
    assert venv.get_attr("render_mode") == [None, None] and venv.env_is_wrapped(object) == [False, False]
    obs, rewards, dones, infos = venv.step(ACTIONS[0][:2])
    assert rewards.dtype == np.float32 and not dones.any() and "costs" in infos[0]
    obs, rewards, dones, infos = venv.step(ACTIONS[1][:2])
    assert dones.all()
    for info in infos:
        assert info["terminal_observation"]["budget_left"][0] == 0.0 and info["TimeLimit.truncated"] is False
        assert "final" in info
    np.testing.assert_array_equal(obs["budget_left"], np.ones((2, 1), np.float32))
    with pytest.raises(ConfigError, match="SameStep"):
        NativeVecEnv(_vec(2))
    with pytest.raises(ConfigError, match="no native vector env"):
        make_native_vec_env("distillgym/ArithSkills-v1", 2, TINY)


def test_train_teacher_with_the_native_vector_env(tmp_path):
    """``distillgym train-teacher --vec native --n-envs 2``: PPO trains on one population."""
    pytest.importorskip("stable_baselines3")
    from distillgym.harness.cli import main

    out = tmp_path / "run"
    code = main([
        "train-teacher", "--env", ENV, "--vec", "native", "--n-envs", "2", "--timesteps", "4", "--out", str(out),
        "--env-kwargs", json.dumps(TINY), "--ppo-kwargs", json.dumps({"n_steps": 2, "batch_size": 4, "n_epochs": 1}),
        "--quiet",
    ])
    assert code == 0 and (out / "policy.zip").exists()
    meta = json.loads((out / "policy.json").read_text())
    assert meta["vec"] == "native" and meta["timesteps"] == 4 and meta["n_envs"] == 2
