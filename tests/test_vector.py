"""The native vector env (one population of plain students) and its SB3 adapter."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distillgym  # noqa: E402,F401
from distillgym.envs import ENV_DEFAULTS  # noqa: E402
from distillgym.errors import ConfigError, InvalidActionError  # noqa: E402
from distillgym.vector import LazyTexts, PopulationStepError, PopulationVectorEnv  # noqa: E402

ENV = "distillgym/ArithSkills-v2"
TINY = dict(budget=512, examples_per_step=256, n_val_per_cell=4, n_test_per_cell=4, device="cpu")


def _vec(n, **kw):
    return _vec_of(ENV, n, **{**TINY, **kw})


def _vec_of(env_id, n, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kw)


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


# ---------------------------------------------------------------------------- equality while learning
EASY = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (5, 0), (2, 0)]
"""Arithmetic cells the student learns within a few thousand examples (copy, successor L0-1,
compare L0, add L0)."""
LEARN_STUDENT = dict(batch_size=32, warmup_steps=10)
LEVEL_REGIMES = {
    "cell": dict(budget=3072, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4, device="cpu",
                 student_kwargs=LEARN_STUDENT),
    "mix": dict(budget=3072, examples_per_step=1024, n_val_per_cell=4, n_test_per_cell=4, device="cpu",
                student_kwargs=LEARN_STUDENT),
}
"""Per action level, a config in which the student learns (mean validation accuracy about 0.15-0.2
after the episode) in a few CPU seconds."""


def _easy_cells(space_shape):
    S, D = space_shape
    return [c for c in EASY if c[0] < S and c[1] < D] or [(s, 0) for s in range(S)]


def learning_action(space, step, sub):
    """Sub-env ``sub``'s action at ``step`` in the learning regime: an easy cell (cell level) or a
    mix over the easy cells with weights that differ by sub-env and step (mix levels; trailing
    action dimensions, e.g. data sources, get equal weights)."""
    if isinstance(space, gym.spaces.MultiDiscrete):
        cells = _easy_cells(tuple(int(n) for n in space.nvec[:2]))
        return np.array(cells[(step + 3 * sub) % len(cells)], dtype=np.int64)
    w = np.zeros(space.shape)
    for j, c in enumerate(_easy_cells(space.shape[:2])):
        w[c] = 1.0 + ((j + sub + step) % 3)
    return (2.0 * w / w.max() - 1.0).astype(np.float32)


def _vector_ids():
    from distillgym.envs import VECTOR_ENTRY_POINTS

    return sorted(VECTOR_ENTRY_POINTS)


ID_REGIMES = {
    "distillgym/ReasoningGym-v2": dict(
        LEVEL_REGIMES["cell"], suite_kwargs={"skills": ["gcd", "spell_backward"]},
        student_kwargs={**ENV_DEFAULTS["distillgym/ReasoningGym-v2"]["student_kwargs"], **LEARN_STUDENT}),
    "distillgym/ReasoningGym-v3": dict(
        LEVEL_REGIMES["cell"], suite_kwargs={"skills": ["gcd", "spell_backward"]},
        student_kwargs={**ENV_DEFAULTS["distillgym/ReasoningGym-v3"]["student_kwargs"], **LEARN_STUDENT,
                        "lr_decay_steps": 300, "lr_decay_start": 200}),
}
"""Ids whose suite has no cells the student learns within the level's regime: a subset of their suite
whose first cells (the easy cells' indices) it learns (gcd, whose answers are mostly small numbers, and
the reversal of short words), so that the compared accuracies are well above 0. ReasoningGym-v2 keeps
its own student (its size and ``init_std``) with the regime's mini-batches and warm-up; ReasoningGym-v3
also its learning-rate decay, moved to the regime's 336 optimiser steps (from step 200 to 300), so that
the sub-envs run the stable part, the decay and the decayed rate."""


def _regime(env_id):
    if env_id in ID_REGIMES:
        return ID_REGIMES[env_id]
    level = gym.spec(env_id).kwargs.get("level", "cell")
    return LEVEL_REGIMES.get(level, LEVEL_REGIMES["mix"])


class _Player:
    """Sub-env ``sub``'s actions in the learning regime: :func:`learning_action`, or on the open
    level (a ``Text`` action) the scripted writer's correct lines, verified or not by sub-env."""

    def __init__(self, space, sub, seed, info):
        self.space, self.sub, self.k, self.writer = space, sub, 0, None
        if isinstance(space, gym.spaces.Text):
            from distillgym.teachers import make_teacher

            self.writer = make_teacher("scripted-writer", unverified=bool(sub % 2))
            self.writer.reset(space, info, seed=seed)

    def act(self, obs, info):
        self.k += 1
        if self.writer is not None:
            return self.writer.act(obs, info)
        return learning_action(self.space, self.k - 1, self.sub)


def _play_single(env_id, seed, sub, extra=None):
    env = gym.make(env_id, **_regime(env_id), **(extra or {}))
    obs, info = env.reset(seed=seed)
    player = _Player(env.action_space, sub, seed, info)
    steps = [(obs, None, False, False, info)]
    done = False
    while not done:
        out = env.step(player.act(obs, info))
        obs, info = out[0], out[4]
        steps.append(out)
        done = out[2] or out[3]
    return steps


def _same(a, b):
    """Exact equality of nested info values (arrays element-wise, floats bit for bit)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


VARIANTS = [("distillgym/ArithTarget-v1", {"validate_all_cells": False, "eval_weights": {"copy": 1, "add": 1}})]
"""Options of an id whose dynamics the defaults do not reach (validation of the target cells only)."""


@pytest.mark.parametrize(("env_id", "extra"), [(i, None) for i in _vector_ids()] + VARIANTS,
                         ids=lambda v: v if isinstance(v, str) else "defaults" if v is None else "-".join(map(str, v)))
def test_sub_envs_equal_their_single_envs_while_learning(env_id, extra):
    """Every id with a native vector env: N = 3 sub-envs with their own seeds and actions, in a
    regime where the student learns, equal three single envs bit for bit: every observation,
    reward, end flag and info (the text report, sampled errors, costs, the final test accuracy).
    (Before the population grouped members by row length, float rounding from padding grew through
    training to several points of accuracy here.)"""
    if "ReasoningGym" in env_id:
        pytest.importorskip("reasoning_gym", reason="the reasoning-gym extra is not installed")
    seeds = [3, 4, 5]
    venv = _vec_of(env_id, 3, **_regime(env_id), **(extra or {}))
    obs, _ = venv.reset(seed=seeds)
    vec = [[({key: v[i] for key, v in obs.items()}, None, False, False, venv.last_infos[i])] for i in range(3)]
    players = [_Player(venv.single_action_space, i, seeds[i], venv.last_infos[i]) for i in range(3)]
    acts: list = [None] * 3
    while not all(v[-1][2] or v[-1][3] for v in vec):
        ended = [v[-1][2] or v[-1][3] for v in vec]  # (the next step resets these: their action is ignored)
        acts = [a if done else p.act(v[-1][0], v[-1][4]) for a, done, p, v in zip(acts, ended, players, vec, strict=True)]
        obs, r, term, trunc, _ = venv.step(acts if isinstance(acts[0], str) else np.stack(acts))
        for i in range(3):
            if not ended[i]:
                vec[i].append(({key: v[i] for key, v in obs.items()}, r[i], term[i], trunc[i], venv.last_infos[i]))
    final = []
    for i, seed in enumerate(seeds):
        want = _play_single(env_id, seed, i, extra)
        assert len(want) == len(vec[i])
        for (o, r, te, tr, info), (wo, wr, wte, wtr, winfo) in zip(vec[i], want, strict=True):
            assert o.keys() == wo.keys() and all(np.array_equal(o[k], wo[k]) for k in o)
            assert (r, te, tr) == (wr, wte, wtr) and (r is None or r == wr)
            assert _same(info, winfo), [k for k in winfo if not _same(info.get(k), winfo[k])]
        # every cell's mean, or the target cells' (an id's validation may hold its targets only)
        final.append(max(float(np.mean(want[-1][0]["accuracy"])), want[-1][4]["final"]["val_accuracy_end"]))
    assert np.mean(final) >= 0.1, f"the student did not learn in the test's regime: {final}"
    assert len(set(final)) > 1  # the sub-envs are different episodes


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


# ---------------------------------------------------------------------------- atomic steps (issue 20, item 2)
MIX = "distillgym/ArithMix-v2"


def _member_state(venv, i):
    snap = venv.population.snapshot(i)
    return snap["weights"], snap["step"], snap["replay"]["count"]


def _unchanged(before, after):
    (w0, s0, c0), (w1, s1, c1) = before, after
    return s0 == s1 and c0 == c1 and all(torch.equal(w0[k], w1[k]) for k in w0)


def _sub_state(env):
    return env._t, env._spent, env._done, env._broken


def test_a_bad_action_of_one_sub_env_moves_no_sub_env():
    """A NaN mix action for sub-env 1: nothing trained or advanced anywhere (before the fix sub-env
    0 had already trained, spent 512 examples and lost its reward), and the next good step is the
    single env's first step."""
    venv = _vec_of(MIX, 2, **TINY)
    venv.reset(seed=[1, 2])
    before = [_member_state(venv, i) for i in range(2)]
    good = -np.ones((7, 4), np.float32)
    bad = good.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidActionError, match="(?s)sub-env 1.*no sub-env was stepped"):
        venv.step(np.stack([good, bad]))
    for i, env in enumerate(venv.envs):
        assert _sub_state(env) == (0, 0, False, None) and _unchanged(before[i], _member_state(venv, i))
    obs, r, term, trunc, info = venv.step(np.stack([good, good]))
    single = gym.make(MIX, **TINY)
    single.reset(seed=1)
    _, r0, *_ = single.step(good)
    assert r[0] == r0 and venv.envs[0]._t == 1 and not term.any()


def test_stepping_an_ended_sub_env_without_autoreset_moves_no_sub_env():
    venv = _vec_of(MIX, 2, **{**TINY, "autoreset_mode": "Disabled"})
    venv.reset(seed=[1, 2])
    mix = -np.ones((2, 7, 4), np.float32)
    for _ in range(2):
        venv.step(mix)
    venv.reset(options={"reset_mask": np.array([True, False])})  # sub-env 0 starts again, 1 has ended
    before = _member_state(venv, 0)
    with pytest.raises(ConfigError, match="(?s)sub-env 1: the episode has ended.*no sub-env was stepped"):
        venv.step(mix)
    assert _sub_state(venv.envs[0]) == (0, 0, False, None) and _unchanged(before, _member_state(venv, 0))


class _Boom(RuntimeError):
    pass


def test_a_failed_data_call_leaves_every_sub_env_as_it_was(monkeypatch):
    venv = _vec_of(MIX, 2, **TINY)
    venv.reset(seed=[1, 2])
    before = [_member_state(venv, i) for i in range(2)]

    def boom(*a, **k):
        raise _Boom("injected engine failure")

    monkeypatch.setattr(venv.engine, "generate_many", boom)
    with pytest.raises(_Boom) as err:
        venv.step(-np.ones((2, 7, 4), np.float32))
    assert "no sub-env was stepped" in " ".join(err.value.__notes__)
    for i, env in enumerate(venv.envs):
        assert _sub_state(env) == (0, 0, False, None) and _unchanged(before[i], _member_state(venv, i))


@pytest.mark.parametrize("phase", ["train", "score_eval_set"])
def test_a_failed_batched_call_marks_every_sub_env_broken_with_the_reason(monkeypatch, phase):
    """Training or evaluation raised for the whole population: every stepping sub-env is broken
    (its counters not advanced), says why, and the next NextStep step resets it."""
    venv = _vec_of(MIX, 2, **TINY)
    venv.reset(seed=[1, 2])
    real = getattr(venv.population, phase)

    def boom(*a, **k):
        raise _Boom(f"injected {phase} failure")

    monkeypatch.setattr(venv.population, phase, boom)
    with pytest.raises(_Boom) as err:
        venv.step(-np.ones((2, 7, 4), np.float32))
    assert "marked broken" in " ".join(err.value.__notes__)
    for env in venv.envs:
        assert env._t == 0 and env._spent == 0 and "_Boom" in env._broken
    monkeypatch.setattr(venv.population, phase, real)
    obs, r, term, trunc, info = venv.step(-np.ones((2, 7, 4), np.float32))  # NextStep: both reset
    assert (r == 0).all() and "costs" not in venv.last_infos[0] and all(env._broken is None for env in venv.envs)
    obs, r, term, trunc, info = venv.step(-np.ones((2, 7, 4), np.float32))
    assert all(env._t == 1 for env in venv.envs)


def test_a_diverging_sub_env_is_marked_broken_and_the_others_complete_the_step():
    venv = _vec_of(MIX, 3, **TINY)
    venv.reset(seed=[1, 2, 3])
    with torch.no_grad():
        venv.population.model.weight("embed.weight")[1, :, 0] = float("nan")
    with pytest.raises(PopulationStepError, match="sub-env 1") as err:
        venv.step(-np.ones((3, 7, 4), np.float32))
    assert set(err.value.failures) == {1} and "TrainingDivergedError" in venv.envs[1]._broken
    assert venv.envs[1]._t == 0 and venv.envs[1]._spent == 0
    obs, rewards, term, trunc, info = err.value.results
    assert [env._t for env in venv.envs] == [1, 0, 1] and info["_costs"].tolist() == [True, False, True]
    single = gym.make(MIX, **TINY)
    single.reset(seed=3)
    o, r2, *_ = single.step(-np.ones((7, 4), np.float32))
    assert rewards[2] == r2 and np.array_equal(obs["accuracy"][2], o["accuracy"])
    assert venv.last_infos[2]["costs"]["examples"] == 256
    venv.population.reinit(1, 0)  # (the next reset draws fresh weights anyway)
    venv.step(-np.ones((3, 7, 4), np.float32))  # NextStep resets the broken sub-env
    assert venv.envs[1]._broken is None and venv.envs[1]._t == 0 and venv.envs[0]._t == 2


# ---------------------------------------------------------------------------- reports, info, memory
def test_reports_are_built_when_read_and_can_be_skipped():
    venv = _vec_of(MIX, 2, **TINY, render_mode="ansi")
    venv.reset(seed=[1, 2])
    obs, r, term, trunc, info = venv.step(-np.ones((2, 7, 4), np.float32))
    assert isinstance(info["report"], LazyTexts) and "built=0" in repr(info["report"])
    text = info["report"][1]
    assert text.startswith("skill") and "sampled errors" in text and "built=1" in repr(info["report"])
    assert venv.last_infos[1]["report"] == text == venv.render()[1]
    assert list(info["report"]) == [venv.last_infos[0]["report"], text]
    assert np.asarray(info["report"]).dtype == object and len(info["errors"][0]) == 8
    quiet = _vec_of(MIX, 2, **TINY, reports=False, render_mode="ansi")
    quiet.reset(seed=[1, 2])
    obs2, r2, term2, trunc2, info2 = quiet.step(-np.ones((2, 7, 4), np.float32))
    assert "report" not in info2 and "errors" not in info2 and "report" not in quiet.last_infos[0]
    assert np.array_equal(r, r2) and all(np.array_equal(obs[k], obs2[k]) for k in obs)  # no number changes
    assert quiet.render()[0].startswith("skill") and "sampled errors" not in quiet.render()[0]


def test_vector_info_is_what_gymnasiums_add_info_builds():
    venv = _vec_of(MIX, 2, **TINY, autoreset_mode="SameStep")
    venv.reset(seed=[1, 2])
    for _ in range(2):
        obs, r, term, trunc, info = venv.step(-np.ones((2, 7, 4), np.float32))
    want: dict = {}
    for i in range(2):
        want = gym.vector.VectorEnv._add_info(venv, want, {k: v for k, v in venv.last_infos[i].items()
                                                           if k not in ("final_obs", "final_info")}, i)
        want = gym.vector.VectorEnv._add_info(venv, want, {"final_obs": venv.last_infos[i]["final_obs"],
                                                           "final_info": venv.last_infos[i]["final_info"]}, i)

    def same(a, b):
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        a = np.asarray(a)
        return a.dtype == np.asarray(b).dtype and all(_same(x, y) for x, y in zip(a, np.asarray(b), strict=True))

    assert same(info, want)


def test_a_population_that_cannot_fit_is_refused_before_allocating(monkeypatch):
    import distillgym.vector as vector

    venv = _vec_of(MIX, 2, **TINY)
    per, act = venv.memory["persistent_per_env"], venv.memory["pass_per_env"]
    free = int((10.5 * per + act) / vector.MEMORY_SHARE)  # room for 10 sub-envs, one at a time in a pass
    monkeypatch.setattr(vector, "free_memory", lambda device: free)
    with pytest.raises(ConfigError, match=r"num_envs=64 needs about .* GiB on cpu.*the largest num_envs that fits is (\d+)") as err:
        _vec_of(MIX, 64, **TINY)
    import re

    largest = int(re.search(r"fits is (\d+)", str(err.value)).group(1))
    assert largest == 10
    ok = _vec_of(MIX, largest, **TINY)
    assert ok.memory["planned"] <= vector.MEMORY_SHARE * free and ok.population.member_chunk == 1


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
