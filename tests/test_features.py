"""Observation features for learned teachers (distillgym.train.features, distillgym.train.policies.VecFeatures)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.levels import mix_to_action
from distillgym.train.features import (
    CELL_FEATURES,
    GLOBAL_FEATURES,
    CellFeatures,
    FeatureWrapper,
    make_features,
)

SKILLS = ["a", "b", "c"]
# 4 steps per episode of 100 examples; 3 skills x 2 difficulties = 6 cells.
INFO = {"skills": SKILLS, "n_difficulties": 2, "budget": 400, "examples_per_step": 100}
TINY_MIX = dict(budget=512, examples_per_step=256, n_val_per_cell=4, n_test_per_cell=4)

F = {name: i for i, name in enumerate(CELL_FEATURES)}
G = {name: i for i, name in enumerate(GLOBAL_FEATURES)}


def obs_of(acc: np.ndarray, budget_left: float, loss: np.ndarray | None = None) -> dict[str, np.ndarray]:
    o = {
        "accuracy": np.asarray(acc, np.float32),
        "reference": np.array([1.0, 0.5, 1.0], np.float32),
        "budget_left": np.array([budget_left], np.float32),
    }
    if loss is not None:
        o["loss"] = np.asarray(loss, np.float32)
    return o


def test_cell_features_follow_the_data_the_accuracy_and_the_loss():
    feats = make_features("cells-v1", INFO)
    assert isinstance(feats, CellFeatures) and feats.episode_steps == 4
    acc0 = np.zeros((3, 2))
    f0 = feats.reset(obs_of(acc0, 1.0, loss=np.full((3, 2), 3.0)), INFO)
    assert feats.observation_space.contains(f0)
    cells = f0["cells"]
    assert cells.shape == (3, 2, len(CELL_FEATURES))
    np.testing.assert_allclose(cells[..., F["loss"]], 0.75)  # 3 / (1 + 3)
    np.testing.assert_allclose(cells[..., F["since"]], 1.0)  # never trained
    np.testing.assert_allclose(cells[..., F["data"]], 0.0)
    np.testing.assert_allclose(cells[:, :, F["reference"]], [[1, 1], [0.5, 0.5], [1, 1]])
    np.testing.assert_allclose(f0["global"], [0.0, 0.0, 0.0])

    # a mix step: 100 examples, 60 to (a, 0), 40 to (b, 1)
    alloc = [[60, 0], [0, 40], [0, 0]]
    acc1 = np.array([[0.5, 0.0], [0.0, 0.25], [0.0, 0.0]])
    f1 = feats.step(obs_of(acc1, 0.75, loss=np.full((3, 2), 1.0)), {"action": {"allocation": alloc, "n": 100}})
    c = f1["cells"]
    assert feats.observation_space.contains(f1)
    np.testing.assert_allclose(c[..., F["accuracy"]], acc1, atol=1e-7)
    np.testing.assert_allclose(c[..., F["accuracy_change"]], acc1, atol=1e-7)
    np.testing.assert_allclose(c[..., F["loss_change"]], 0.5 - 0.75)
    share = 400 / 6  # an equal share of the whole budget
    assert c[0, 0, F["data"]] == pytest.approx(60 / share / 4)
    assert c[1, 1, F["data"]] == pytest.approx(40 / share / 4)
    assert c[0, 0, F["last"]] == pytest.approx(min(0.6 * 6, 4) / 4)
    assert c[1, 1, F["last"]] == pytest.approx(0.4 * 6 / 4)
    assert c[0, 0, F["since"]] == 0 and c[1, 1, F["since"]] == 0 and c[2, 0, F["since"]] == 1.0
    np.testing.assert_allclose(f1["global"], [0.25, acc1.mean(), acc1.mean()], atol=1e-7)

    # a cell-level step on (c, 1): (a, 0) was trained one step ago; accuracy falls back
    acc2 = np.zeros((3, 2))
    f2 = feats.step(obs_of(acc2, 0.5), {"action": {"skill": "c", "difficulty": 1, "n": 100}})
    c = f2["cells"]
    assert c[2, 1, F["since"]] == 0 and c[2, 1, F["last"]] == 1.0  # one-hot: 6 shares, clipped at 4
    assert c[0, 0, F["since"]] == pytest.approx(1 / 4) and c[0, 0, F["last"]] == 0
    assert c[0, 0, F["data"]] == pytest.approx(60 / share / 4)  # what it received stays counted
    np.testing.assert_allclose(c[..., F["accuracy_change"]], -acc1, atol=1e-7)
    np.testing.assert_allclose(c[..., F["loss"]], 0.0)  # no loss in this observation or info
    assert f2["global"][G["budget_used"]] == pytest.approx(0.5)

    # a fresh episode starts from scratch
    f3 = feats.reset(obs_of(acc0, 1.0), INFO)
    np.testing.assert_allclose(f3["cells"][..., F["data"]], 0.0)
    np.testing.assert_allclose(f3["cells"][..., F["since"]], 1.0)


def test_loss_comes_from_info_when_the_observation_has_none():
    feats = make_features("cells-v1", INFO)
    val_loss = [[1.0, None], [3.0, 0.0], [1.0, 1.0]]
    f = feats.reset(obs_of(np.zeros((3, 2)), 1.0), {**INFO, "val_loss": val_loss})
    np.testing.assert_allclose(f["cells"][..., F["loss"]], [[0.5, 0.0], [0.75, 0.0], [0.5, 0.5]])


def test_bad_use_is_a_clear_error():
    feats = CellFeatures(SKILLS, 2, 400, 100)
    with pytest.raises(ConfigError, match="before reset"):
        feats.step(obs_of(np.zeros((3, 2)), 1.0), {})
    with pytest.raises(ConfigError, match="shape"):
        feats.reset(obs_of(np.zeros((2, 2)), 1.0), INFO)
    feats.reset(obs_of(np.zeros((3, 2)), 1.0), INFO)
    with pytest.raises(ConfigError, match="allocation"):
        feats.step(obs_of(np.zeros((3, 2)), 1.0), {"action": {"allocation": [[1, 2]]}})
    with pytest.raises(UnknownNameError, match="cells-v1"):
        make_features("cells-v2", INFO)
    with pytest.raises(ConfigError, match="lacks"):
        make_features("cells-v1", {"skills": SKILLS})
    with pytest.raises(ConfigError, match="budget"):
        CellFeatures(SKILLS, 2, 0, 100)


@pytest.mark.slow
def test_feature_wrapper_passes_the_env_checker_and_tracks_a_real_mix_episode():
    from gymnasium.utils.env_checker import check_env

    import distillgym  # noqa: F401

    env = FeatureWrapper(gym.make("distillgym/ArithMix-v2", **TINY_MIX))
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    onehot = np.zeros((7, 4))
    onehot[2, 1] = 1.0
    obs, _, terminated, _, info = env.step(mix_to_action(onehot))
    assert not terminated and env.observation_space.contains(obs)
    c = obs["cells"]
    assert c[2, 1, F["since"]] == 0 and c[2, 1, F["last"]] == 1.0
    assert c[2, 1, F["data"]] == pytest.approx(min(256 / (512 / 28), 4) / 4)
    others = np.ones((7, 4), bool)
    others[2, 1] = False
    np.testing.assert_allclose(c[..., F["since"]][others], 1.0)
    np.testing.assert_allclose(c[..., F["accuracy"]], env.unwrapped._report.accuracy, atol=1e-6)
    loss = np.asarray(env.unwrapped._report.loss)
    np.testing.assert_allclose(c[..., F["loss"]], loss / (1 + loss), atol=1e-6)
    assert obs["global"][G["budget_used"]] == pytest.approx(0.5)
    env.close()


@pytest.mark.slow
def test_vec_features_match_the_wrapper_through_an_autoreset():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.vec_env import DummyVecEnv

    import distillgym  # noqa: F401
    from distillgym.train.policies import VecFeatures
    from distillgym.train.ppo import EnvFactory

    venv = VecFeatures(DummyVecEnv([EnvFactory("distillgym/ArithMix-v2", TINY_MIX) for _ in range(2)]))
    venv.seed(5)
    single = [FeatureWrapper(gym.make("distillgym/ArithMix-v2", **TINY_MIX)) for _ in range(2)]
    want = [w.reset(seed=5 + i)[0] for i, w in enumerate(single)]
    got = venv.reset()
    rng = np.random.default_rng(0)
    for t in range(3):  # the episodes end at t = 1 (2 steps of 256): SB3 resets them in the same step
        actions = rng.uniform(-1, 1, (2, 7, 4)).astype(np.float32)
        for i in range(2):
            for k in ("cells", "global"):
                np.testing.assert_allclose(got[k][i], want[i][k], atol=1e-6, err_msg=f"t={t} env {i} {k}")
        got, _, dones, infos = venv.step(actions)
        for i, w in enumerate(single):
            o, _, term, trunc, _ = w.step(actions[i])
            if term or trunc:
                assert dones[i]
                for k in ("cells", "global"):
                    np.testing.assert_allclose(infos[i]["terminal_observation"][k], o[k], atol=1e-6)
                o, _ = w.reset()
            want[i] = o
    assert math.isclose(float(got["global"][0][G["budget_used"]]), 0.5)
    venv.close()
