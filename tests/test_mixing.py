"""Data-mixing teachers: each update rule against a hand-computed case on synthetic observations,
DoReMi's reference cache, bad hyperparameters, and a small ArithMix-v1 episode per teacher."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.levels import allocate
from distillgym.teachers import AioliTeacher, DoReMiTeacher, ODMTeacher, SkillItTeacher, make_teacher
from distillgym.teachers import doremi as doremi_mod
from distillgym.teachers.aioli import normalize_graph, probe_mix, solve_graph
from distillgym.teachers.odm import exp3_epsilon
from distillgym.teachers.skill_it import skill_graph

# A synthetic 2 x 2 grid: skills a, b (b needs a), levels 0, 1; flat cells a0=0, a1=1, b0=2, b1=3.
INFO = {"skills": ["a", "b"], "prerequisites": {"a": [], "b": ["a"]}, "n_difficulties": 2}
SPACE = gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32)
SMALL = dict(budget=2048, examples_per_step=512, n_val_per_cell=8, n_test_per_cell=8)
MIXERS = ["stratified", "odm", "skill-it", "doremi", "aioli"]


def _obs(loss) -> dict:
    return {"loss": np.asarray(loss, dtype=np.float32).reshape(2, 2)}


def _mix_of(teacher, obs=None, info=None) -> np.ndarray:
    """The normalised mix the teacher's next action encodes (the mix level's decoding rule)."""
    a = teacher.act(obs if obs is not None else _obs([1, 1, 1, 1]), info or {})
    w = (np.clip(a.astype(float), -1, 1) + 1) / 2
    return (w / w.sum()).ravel()


# ---------------------------------------------------------------------------- ODM
def test_odm_exp3_epsilon_by_hand():
    assert exp3_epsilon(4, 1) == 0.25  # sqrt(ln 4 / 4) = 0.589 > 1/4
    assert exp3_epsilon(4, 10) == pytest.approx(math.sqrt(math.log(4) / 40))  # 0.18616
    assert exp3_epsilon(28, 93) == pytest.approx(1 / 28)  # k ln k = 93.3: still 1/k
    assert exp3_epsilon(28, 94) < 1 / 28


def test_odm_smoothed_reward_and_mix_by_hand():
    t = ODMTeacher()
    t.reset(SPACE, INFO, seed=0)
    assert np.allclose(_mix_of(t), 0.25)  # uniform before any reward
    info = {"train_cell_loss": [[1.0, None], [2.0, 0.5]], "totals": {"optimizer_steps": 10}}
    t.update(None, 0.0, False, False, info)
    # R = 0.9 * 0 + 0.1 * e^loss where trained; cell a1 got no data and keeps R = 0
    assert t.R == pytest.approx([0.1 * math.e, 0.0, 0.1 * math.e**2, 0.1 * math.e**0.5])
    assert t.eps == pytest.approx(0.1861648705529517)  # t = 10 optimiser steps
    # pi_i = (1 - 4 eps_t) exp(eps_{t-1} R_i) / sum_j exp(eps_{t-1} R_j) + eps_t, eps_{t-1} = 1/4
    expected = [0.2494968888261122, 0.2453360135371967, 0.2573412045818587, 0.24782589305483238]
    assert t.pi == pytest.approx(expected, abs=1e-12)
    assert _mix_of(t) == pytest.approx(expected, abs=1e-6)
    # second step: the smoothing keeps 0.9 of the old smoothed reward
    t.update(None, 0.0, False, False, {"train_cell_loss": [[0.0, 1.0], [None, None]], "totals": {"optimizer_steps": 20}})
    assert t.R[0] == pytest.approx(0.9 * 0.1 * math.e + 0.1)
    assert t.R[1] == pytest.approx(0.1 * math.e)
    assert t.R[2] == pytest.approx(0.1 * math.e**2)  # not trained: unchanged
    eps20, eps10 = math.sqrt(math.log(4) / 80), math.sqrt(math.log(4) / 40)
    e = np.exp(eps10 * t.R)
    assert t.pi == pytest.approx((1 - 4 * eps20) * e / e.sum() + eps20)


def test_odm_linear_weighting_is_group_update():
    t = ODMTeacher(weighting="linear")
    t.reset(SPACE, INFO, seed=0)
    t.update(None, 0.0, False, False, {"train_cell_loss": [[1.0, None], [2.0, 0.5]], "totals": {"optimizer_steps": 10}})
    eps = math.sqrt(math.log(4) / 40)
    assert t.pi == pytest.approx((1 - 4 * eps) * t.R / t.R.sum() + eps)


def test_odm_in_env_steps_is_the_equal_mix_for_a_whole_episode():
    """The module docstring's claim: with t in env steps and k = 28, eps_t = 1/k for 24 steps."""
    info = {"skills": list("abcdefg"), "prerequisites": {}, "n_difficulties": 4}
    t = ODMTeacher(time_unit="env_step")
    t.reset(gym.spaces.Box(-1, 1, (7, 4), np.float32), info, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(24):
        t.update(None, 0.0, False, False, {"train_cell_loss": rng.uniform(0, 3, (7, 4)).tolist()})
    assert t.eps == pytest.approx(1 / 28)
    assert t.pi == pytest.approx(np.full(28, 1 / 28), abs=1e-12)
    assert t.R.max() > 1.0  # the rewards did move; only the exploration share hides them


# ---------------------------------------------------------------------------- Skill-It
def test_skill_it_graph_from_prerequisites():
    A = skill_graph(INFO["skills"], INFO["prerequisites"], 2)
    # a0 -> a1, a0 -> b0 (b needs a, same level), a1 -> b1, b0 -> b1
    expected = np.array(
        [
            [1.0, 0.5, 0.5, 0.0],
            [0.0, 1.0, 0.0, 0.5],
            [0.0, 0.0, 1.0, 0.5],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    assert np.array_equal(A, expected)


def test_skill_it_weights_after_w_rounds_by_hand():
    t = SkillItTeacher(eta=0.5, window=3)
    L0 = [2.0, 2.0, 2.0, 2.0]
    t.reset(SPACE, {**INFO, "val_loss": [[2.0, 2.0], [2.0, 2.0]]}, seed=0)
    # first mix: p0 * exp(eta * A @ 1): exponents 0.5 * [2, 1.5, 1.5, 1]
    e = np.exp([1.0, 0.75, 0.75, 0.5])
    assert _mix_of(t) == pytest.approx(e / e.sum(), abs=1e-6)
    L = [[1.0, 2.0, 3.0, 0.0], [0.5, 1.5, 2.5, 0.5], [0.0, 1.0, 2.0, 1.0]]
    t.update(_obs(L[0]), 0.0, False, False, {})
    # window = {L0, L1}: sums [3, 4, 5, 2]; A @ s = [3 + 2 + 2.5, 4 + 1, 5 + 1, 2] = [7.5, 5, 6, 2]
    e = np.exp(0.5 * np.array([7.5, 5.0, 6.0, 2.0]))
    assert t.p == pytest.approx(e / e.sum())
    t.update(_obs(L[1]), 0.0, False, False, {})
    t.update(_obs(L[2]), 0.0, False, False, {})
    # window = last three {L1, L2, L3}: sums [1.5, 4.5, 7.5, 1.5]; A @ s = [1.5 + 2.25 + 3.75, 4.5 + 0.75, 7.5 + 0.75, 1.5]
    s = np.array([1.5, 4.5, 7.5, 1.5])
    assert t.window_loss() == pytest.approx(s)
    e = np.exp(0.5 * np.array([7.5, 5.25, 8.25, 1.5]))
    assert t.p == pytest.approx(e / e.sum())
    assert len(t.losses) == 4 and t.losses[0] == pytest.approx(L0)


def test_skill_it_normalized_loss_and_update_every():
    t = SkillItTeacher(eta=1.0, window=1, graph="identity", normalize_loss=True, update_every=2)
    t.reset(SPACE, {**INFO, "val_loss": [[2.0, 4.0], [1.0, 1.0]]}, seed=0)
    p_first = t.p.copy()
    t.update(_obs([1.0, 1.0, 1.0, 1.0]), 0.0, False, False, {})
    assert np.array_equal(t.p, p_first)  # not yet: every 2 steps
    t.update(_obs([1.0, 2.0, 0.5, 2.0]), 0.0, False, False, {})
    e = np.exp(np.array([0.5, 0.5, 0.5, 2.0]))  # last loss / first loss
    assert t.p == pytest.approx(e / e.sum())


# ---------------------------------------------------------------------------- DoReMi
def _fake_reference(monkeypatch, tmp_path, curve) -> dict:
    """A synthetic env config whose reference is already cached (no env is built)."""
    monkeypatch.setenv("DISTILLGYM_CACHE", str(tmp_path))
    cfg = {"rebuildable": True, "synthetic": "2x2"}
    path = doremi_mod.reference_path(cfg, doremi_mod.REFERENCE_SEED)  # the teacher's default reference seed
    path.write_text(json.dumps({"format": doremi_mod.REFERENCE_FORMAT, "val_loss": curve}))

    def no_run(*a, **k):
        raise AssertionError("the cached reference must be used")

    monkeypatch.setattr(doremi_mod, "_run_reference", no_run)
    return cfg


def test_doremi_clipped_excess_loss_update_and_smoothing(monkeypatch, tmp_path):
    ref = [[[3.0, 3.0], [3.0, 3.0]], [[1.0, 2.0], [1.0, 1.0]], [[0.5, 1.0], [0.5, 0.5]]]
    cfg = _fake_reference(monkeypatch, tmp_path, ref)
    t = DoReMiTeacher(eta=1.0, eps=0.1)
    t.reset(SPACE, {**INFO, "env_config": cfg}, seed=0)
    assert np.allclose(_mix_of(t), 0.25)
    t.update(_obs([2.0, 1.0, 1.5, 1.0]), 0.0, False, False, {})
    # excess vs the reference after step 1: clip([1, -1, 0.5, 0], 0) = [1, 0, 0.5, 0]
    assert t.scores == pytest.approx([1.0, 0.0, 0.5, 0.0])
    q = np.exp([1.0, 0.0, 0.5, 0.0]) / np.exp([1.0, 0.0, 0.5, 0.0]).sum()
    p1 = 0.9 * q + 0.1 / 4
    assert t.p == pytest.approx(p1)
    assert _mix_of(t) == pytest.approx(p1, abs=1e-6)
    # step 2, a missing loss (NaN) keeps that cell's previous score; log p starts from the smoothed p
    t.update(_obs([0.5, 2.0, np.nan, 0.0]), 0.0, False, False, {})
    assert t.scores == pytest.approx([0.0, 1.0, 0.5, 0.0])
    q2 = p1 * np.exp([0.0, 1.0, 0.5, 0.0])
    p2 = 0.9 * q2 / q2.sum() + 0.025
    assert t.p == pytest.approx(p2)
    assert t.avg == pytest.approx((p1 + p2) / 2)  # DoReMi's output mix: the average of the updates
    # past the reference's last step, its last loss is the comparison
    assert t.reference_loss(7) == pytest.approx([0.5, 1.0, 0.5, 0.5])


def test_doremi_reference_final_and_average_play(monkeypatch, tmp_path):
    ref = [[[3.0, 3.0], [3.0, 3.0]], [[1.0, 2.0], [1.0, 1.0]], [[0.5, 1.0], [0.5, 0.5]]]
    cfg = _fake_reference(monkeypatch, tmp_path, ref)
    t = DoReMiTeacher(reference_at="final", play="average")
    t.reset(SPACE, {**INFO, "env_config": cfg}, seed=0)
    assert t.reference_loss(1) == pytest.approx([0.5, 1.0, 0.5, 0.5])
    t.update(_obs([1.5, 1.0, 0.5, 0.5]), 0.0, False, False, {})
    t.update(_obs([0.5, 1.0, 0.5, 0.5]), 0.0, False, False, {})
    assert _mix_of(t) == pytest.approx((t.avg / t.avg.sum()), abs=1e-6)
    assert not np.allclose(t.avg, t.p)


def test_doremi_needs_a_rebuildable_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILLGYM_CACHE", str(tmp_path))
    t = DoReMiTeacher()
    with pytest.raises(ConfigError, match="not rebuildable"):
        t.reset(SPACE, {**INFO, "env_config": {"rebuildable": False}}, seed=0)
    with pytest.raises(ConfigError, match="env_config"):
        t.reset(SPACE, INFO, seed=0)


@pytest.mark.slow
def test_doremi_reference_is_trained_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILLGYM_CACHE", str(tmp_path))
    env = gym.make("distillgym/ArithMix-v1", budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)
    _, info = env.reset(seed=0)
    cfg = info["env_config"]
    calls = []
    real = doremi_mod._run_reference
    monkeypatch.setattr(doremi_mod, "_run_reference", lambda c, s: calls.append(s) or real(c, s))
    curve = doremi_mod.reference_curve(cfg, 1000)
    path = doremi_mod.reference_path(cfg, 1000)
    assert calls == [1000] and path.is_file()
    assert curve.shape == (3, 7, 4)  # after reset and after each of the 2 steps
    assert np.all(np.isfinite(curve)) and curve[2].mean() < curve[0].mean()  # the reference learnt
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary name, renamed
    again = doremi_mod.reference_curve(cfg, 1000)
    assert calls == [1000] and np.array_equal(again, curve)  # read back, not retrained
    assert doremi_mod.reference_path(cfg, 1001) != path
    assert doremi_mod.reference_path({**cfg, "budget": 2048}, 1000) != path
    # the teacher's episode is the same whether the reference was cached or not
    from distillgym.harness.runner import run_episode

    a = run_episode(env, "doremi", seed=3)
    path.unlink()
    b = run_episode(env, "doremi", seed=3)
    env.close()
    assert len(calls) == 2
    assert a["final_test_accuracy"] == b["final_test_accuracy"]
    assert [s["allocation"] for s in a["steps"]] == [s["allocation"] for s in b["steps"]]


# ---------------------------------------------------------------------------- Aioli
def test_aioli_probing_schedule_and_eg_step_by_hand():
    t = AioliTeacher(eta=0.2, one_hot_factor=0.625, ema=0.1, round_steps=3, probe_steps=2)
    t.reset(SPACE, INFO, seed=5)
    assert [t.is_probe_step(n) for n in range(7)] == [True, True, False, True, True, False, True]
    c = (1 - 0.625) / 3  # 0.125 on each other cell
    L0 = np.array([2.0, 2.0, 2.0, 2.0])
    m = _mix_of(t, _obs(L0))
    i = t.probing
    assert m == pytest.approx(probe_mix(4, i, 0.625), abs=1e-6) and m.max() == pytest.approx(0.625, abs=1e-6)
    assert sorted(m) == pytest.approx([c, c, c, 0.625], abs=1e-6)
    L1 = np.array([1.5, 1.9, 2.0, 1.8])
    t.update(_obs(L1), 0.0, False, False, {})
    assert t.G[:, i] == pytest.approx(L0 - L1) and t.rounds == 0  # first probe of the round: no update yet
    assert np.allclose(t.p, 0.25)
    _mix_of(t, _obs(L1))
    j = t.probing
    assert j != i  # a permutation of the cells: no repeat before every cell is probed
    L2 = np.array([1.2, 1.9, 1.8, 1.8])  # a smaller total drop than the first probe's
    t.update(_obs(L2), 0.0, False, False, {})
    assert t.rounds == 1
    # G: probed columns i, j; the two others get the mean of those; A = G W^-1 with W^-1 = (I - c 11^T) / (f - c)
    G = np.zeros((4, 4))
    G[:, i], G[:, j] = L0 - L1, L1 - L2
    for col in set(range(4)) - {i, j}:
        G[:, col] = (G[:, i] + G[:, j]) / 2
    A = G @ (np.eye(4) - c * np.ones((4, 4))) / (0.625 - c)
    assert solve_graph(G, 0.625) == pytest.approx(A)
    A = A - A.min() if A.min() < 0 else A
    A = A / A.sum()
    e = np.exp(0.2 * A.sum(axis=0))  # first round: the EMA matrix is this round's
    assert t.p == pytest.approx(e / e.sum())
    assert t.p[i] > t.p[j]  # only a probe's total drop matters for the column sums
    # the third step plays the new mix; the fourth is the next round's first probe
    assert _mix_of(t, _obs(L2)) == pytest.approx(t.p, abs=1e-6) and t.probing is None
    t.update(_obs(L2), 0.0, False, False, {})
    _mix_of(t, _obs(L2))
    assert t.probing not in (i, j)


def test_aioli_normalize_ema_and_one_hot():
    assert normalize_graph(np.array([[1.0, -1.0], [0.0, 2.0]])) == pytest.approx(np.array([[2, 0], [1, 3]]) / 6)
    G = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert solve_graph(G, 1.0) == pytest.approx(G)
    assert solve_graph(G, 0.8, diagonal=True) == pytest.approx(np.diag([1.25, 5.0]))
    t = AioliTeacher(ema=0.1, round_steps=1)
    t.reset(SPACE, INFO, seed=0)
    A1 = np.arange(16.0).reshape(4, 4)
    A2 = A1[::-1].copy()
    t.A_ema = A1
    t.G[:] = A2
    t.probed[:] = True
    t.one_hot_factor, t.normalize_A = 1.0, False
    t.refit()
    e = np.exp(0.2 * (0.9 * A2 + 0.1 * A1).sum(axis=0))
    assert t.p == pytest.approx(e / e.sum())


# ---------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("odm", {"smoothing": 1.5}),
        ("odm", {"weighting": "softmax"}),
        ("odm", {"warmup": -1}),
        ("skill-it", {"eta": -0.5}),
        ("skill-it", {"window": 0}),
        ("skill-it", {"graph": "full"}),
        ("skill-it", {"normalize_loss": "yes"}),
        ("doremi", {"eta": float("nan")}),
        ("doremi", {"eps": 2.0}),
        ("doremi", {"reference_at": "end"}),
        ("aioli", {"one_hot_factor": 0.0}),
        ("aioli", {"one_hot_factor": 1.2}),
        ("aioli", {"ema": -0.1}),
        ("aioli", {"round_steps": 2, "probe_steps": 3}),
        ("aioli", {"probe_steps": 0}),
    ],
)
def test_bad_hyperparameters_raise_config_errors(name, kwargs):
    with pytest.raises((ConfigError, UnknownNameError)) as err:
        make_teacher(name, **kwargs)
    assert next(iter(kwargs)) in str(err.value)


def test_aioli_one_hot_factor_must_single_out_a_cell():
    t = AioliTeacher(one_hot_factor=0.2)  # 1/k = 0.25 on the 2 x 2 grid
    with pytest.raises(ConfigError, match="1/k"):
        t.reset(SPACE, INFO, seed=0)


# ---------------------------------------------------------------------------- episodes
@pytest.mark.parametrize("name", MIXERS)
def test_mixer_plays_a_small_arithmix_episode(name, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILLGYM_CACHE", str(tmp_path))
    env = gym.make("distillgym/ArithMix-v1", **SMALL)
    obs, info = env.reset(seed=1)
    teacher = make_teacher(name)
    teacher.reset(env.action_space, info, seed=1)
    mixes = []
    while True:
        action = teacher.act(obs, info)
        assert env.action_space.contains(action)
        mix = teacher.last_mix
        obs, reward, terminated, truncated, info = env.step(action)
        alloc = np.asarray(info["action"]["allocation"])
        # the env decodes the float32 action; rounding may move one example between near-tied cells
        assert alloc.sum() == 512 and np.abs(alloc - allocate(mix, 512)).max() <= 1
        teacher.update(obs, reward, terminated, truncated, info)
        mixes.append(mix)
        if terminated or truncated:
            break
    env.close()
    assert len(mixes) == 4 and "final" in info
    if name in ("stratified", "odm"):
        # ODM too: 16 optimiser steps per env step here, so t <= 64 < k ln k and eps_t = 1/k throughout
        assert all(np.allclose(m, 1 / 28) for m in mixes)
    else:  # the others move off the equal mix within 4 steps (Aioli: its first step is a probe)
        assert any(not np.allclose(m, 1 / 28, atol=1e-4) for m in mixes), name
    if name == "odm":
        # t counts the student's optimiser steps: 4 + 3 * 16 (the first step has no replay, so 128 new rows a batch)
        assert teacher.t == info["totals"]["optimizer_steps"] == 52 and teacher.R.min() > 1.0
    if name == "aioli":
        assert mixes[0].max() == pytest.approx(0.625)
