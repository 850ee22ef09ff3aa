"""``distillgym/ArithSkills-v0`` (``TeachingEnv`` with v0's defaults): rewards, info, determinism,
errors, reset. Checks that every registered id must pass are in tests/test_registry.py."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distillgym  # noqa: E402
from distillgym import ENV_IDS  # noqa: E402
from distillgym.envs.arith_skills import REWARDS, ArithSkillsEnv  # noqa: E402
from distillgym.errors import ConfigError, InvalidActionError, UnknownNameError  # noqa: E402
from distillgym.feedback import SkillReport  # noqa: E402

SMALL = dict(budget=2048, examples_per_step=512, n_val_per_cell=8, n_test_per_cell=8)
TINY = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)
ACTIONS = [np.array([2, 0]), np.array([0, 1]), np.array([5, 2]), np.array([6, 3])]
SEED = 0


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run(env, seed, actions):
    """Reset with ``seed`` and play ``actions`` to the end; everything that came back."""
    obs, info = env.reset(seed=seed)
    rec = {
        "obs": [obs],
        "infos": [info],
        "rewards": [],
        "terminated": [],
        "truncated": [],
        "renders": [env.render()],
        "val_prompts": [e.prompt for e in env.unwrapped._val.examples],
        "test_prompts": [e.prompt for e in env.unwrapped._test.examples],
    }
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        rec["obs"].append(obs)
        rec["infos"].append(info)
        rec["rewards"].append(r)
        rec["terminated"].append(term)
        rec["truncated"].append(trunc)
        rec["renders"].append(env.render())
        if term or trunc:
            break
    return rec


def _assert_same_trajectory(a, b):
    assert len(a["obs"]) == len(b["obs"])
    for oa, ob in zip(a["obs"], b["obs"], strict=True):
        assert oa.keys() == ob.keys()
        for k in oa:
            assert oa[k].dtype == ob[k].dtype and np.array_equal(oa[k], ob[k]), k  # bit-identical
    assert a["rewards"] == b["rewards"]
    assert a["val_prompts"] == b["val_prompts"] and a["test_prompts"] == b["test_prompts"]
    assert [i["report"] for i in a["infos"]] == [i["report"] for i in b["infos"]]
    assert [i["errors"] for i in a["infos"]] == [i["errors"] for i in b["infos"]]
    assert [i.get("train_loss") for i in a["infos"]] == [i.get("train_loss") for i in b["infos"]]
    assert a["infos"][-1]["final"]["test_accuracy"] == b["infos"][-1]["final"]["test_accuracy"]
    assert a["infos"][-1]["final"]["test_accuracy_matrix"] == b["infos"][-1]["final"]["test_accuracy_matrix"]


@pytest.fixture(scope="module")
def small_env():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        return gym.make("distillgym/ArithSkills-v0", render_mode="ansi", **SMALL)


@pytest.fixture(scope="module")
def episode(small_env):
    """One small episode (4 steps, delta_mean reward), plus the weights around it."""
    initial = small_env.unwrapped.student.state()
    rec = _run(small_env, SEED, ACTIONS)
    rec["initial_weights"] = initial
    rec["final_weights"] = small_env.unwrapped.student.state()
    return rec


# ---------------------------------------------------------------------------- checkers
def test_env_ids_are_registered():
    assert "distillgym/ArithSkills-v0" in ENV_IDS
    for env_id in ENV_IDS:
        assert env_id in gym.registry


@pytest.fixture(scope="module")
def default_env():
    """The default-config v0 env (check_env wants the real thing)."""
    env = gym.make("distillgym/ArithSkills-v0")
    yield env
    env.close()


@pytest.mark.slow
def test_gymnasium_check_env_default_config(default_env):
    from gymnasium.utils.env_checker import check_env

    check_env(default_env.unwrapped)


def test_seconds_report_timings_but_compare_equal_and_serialise():
    import json

    from distillgym.envs.arith_skills import Seconds

    a, b = Seconds(1.5), Seconds(9.0)
    assert a == b and float(a) == 1.5 and a != 1.0 and a == 1.5 and not (a != b)
    assert {"t": a} == {"t": b} and json.loads(json.dumps({"t": a})) == {"t": 1.5}


# ---------------------------------------------------------------------------- API and info
def test_observations_are_in_the_observation_space(small_env, episode):
    space = small_env.observation_space
    budget = SMALL["budget"]
    for t, (obs, info) in enumerate(zip(episode["obs"], episode["infos"], strict=True)):
        assert space.contains(obs), obs
        assert obs["budget_left"][0] == np.float32((budget - t * SMALL["examples_per_step"]) / budget)
        assert info["budget_left"] == budget - t * SMALL["examples_per_step"]
        assert obs["accuracy"].shape == (7, 4) and obs["reference"].shape == (7,)
        assert np.float32(info["mean_accuracy"]) == pytest.approx(obs["accuracy"].mean(), abs=1e-6)
        np.testing.assert_allclose(info["skill_accuracy"], obs["accuracy"].mean(1), atol=1e-6)
    np.testing.assert_array_equal(episode["obs"][0]["reference"], np.ones(7, np.float32))
    assert small_env.action_space == gym.spaces.MultiDiscrete([7, 4])


def test_reset_info_describes_the_env(episode):
    info = episode["infos"][0]
    assert info["skills"] == ["copy", "successor", "add", "sub", "mul", "compare", "chain"]
    assert info["prerequisites"]["chain"] == ["add", "sub"]
    assert info["n_difficulties"] == 4 and info["suite"] == "arith"
    assert info["budget"] == SMALL["budget"] and info["examples_per_step"] == SMALL["examples_per_step"]
    assert isinstance(info["report"], str) and "mean accuracy" in info["report"]


def test_delta_mean_rewards_sum_to_the_validation_gain(episode):
    infos = episode["infos"]
    final = infos[-1]["final"]
    assert final["val_accuracy_start"] == infos[0]["mean_accuracy"]
    assert final["val_accuracy_end"] == infos[-1]["mean_accuracy"]
    assert sum(episode["rewards"]) == pytest.approx(final["val_accuracy_end"] - final["val_accuracy_start"], abs=1e-9)
    for t, r in enumerate(episode["rewards"], start=1):
        assert r == pytest.approx(infos[t]["mean_accuracy"] - infos[t - 1]["mean_accuracy"], abs=1e-12)
        assert isinstance(r, float)
    # the student did learn something in 2048 examples: the rewards are not all zero
    assert any(r != 0 for r in episode["rewards"])


def test_step_info_has_errors_costs_and_actions(suite, episode):
    val = set(episode["val_prompts"])
    for t, info in enumerate(episode["infos"][1:]):
        assert info["action"] == {"skill": suite.skills[ACTIONS[t][0]], "difficulty": int(ACTIONS[t][1]), "n": 512}
        assert np.isfinite(info["train_loss"])
        assert 0 < len(info["errors"]) <= 8
        for err in info["errors"]:
            assert set(err) == {"skill", "difficulty", "prompt", "student", "gold"}
            assert err["prompt"] in val
            assert err["gold"] == suite.solve(err["prompt"])
            assert err["student"] != err["gold"]  # a reported error really is wrong
            assert err["prompt"] in info["report"]
        costs = info["costs"]
        assert costs["examples"] == 512 and costs["rejected"] == 0
        assert costs["optimizer_steps"] > 0 and costs["tokens"] > 0
        sec = costs["seconds"]
        assert {"generate", "train", "evaluate", "total"} <= set(sec)
        assert all(v >= 0 for v in sec.values())
        assert sec["total"] >= sec["generate"] + sec["train"] + sec["evaluate"]
    assert "test" in episode["infos"][-1]["costs"]["seconds"]


def test_final_info_and_termination(episode):
    assert episode["terminated"] == [False, False, False, True]
    assert not any(episode["truncated"])
    assert all("final" not in i for i in episode["infos"][:-1])
    final = episode["infos"][-1]["final"]
    assert 0.0 <= final["test_accuracy"] <= 1.0
    assert final["test_accuracy"] == pytest.approx(np.mean(final["test_accuracy_matrix"]), abs=1e-5)
    assert np.shape(final["test_accuracy_matrix"]) == (7, 4) and len(final["test_skill_accuracy"]) == 7
    assert final["examples"] == SMALL["budget"] and final["steps"] == 4
    assert sum(i["action"]["n"] for i in episode["infos"][1:]) == SMALL["budget"]


def test_render_ansi_returns_the_report(episode):
    for text, info in zip(episode["renders"], episode["infos"], strict=True):
        assert text == info["report"]
        assert f"budget left: {info['budget_left']} examples" in text


def test_render_without_ansi_and_before_reset(suite):
    env = ArithSkillsEnv(**TINY)
    assert env.render() is None
    env2 = ArithSkillsEnv(render_mode="ansi", **TINY)
    assert "reset()" in env2.render()


def test_validation_and_test_sets_come_from_different_streams(episode):
    assert len(episode["val_prompts"]) == len(episode["test_prompts"]) == 7 * 4 * 8
    assert episode["val_prompts"] != episode["test_prompts"]


# ---------------------------------------------------------------------------- determinism and reset
@pytest.mark.slow
def test_same_seed_same_actions_is_bit_identical(episode):
    """A fresh env with the same seed and actions: identical observations, rewards and test
    accuracy; then reset(seed) on that same env replays it again from the weights kept in memory."""
    env = gym.make("distillgym/ArithSkills-v0", render_mode="ansi", **SMALL)
    first = _run(env, SEED, ACTIONS)
    _assert_same_trajectory(episode, first)
    again = _run(env, SEED, ACTIONS)
    _assert_same_trajectory(episode, again)


def test_different_seed_gives_different_data(small_env, episode):
    small_env.reset(seed=SEED + 1)
    other_val = [e.prompt for e in small_env.unwrapped._val.examples]
    other_test = [e.prompt for e in small_env.unwrapped._test.examples]
    assert other_val != episode["val_prompts"] and other_test != episode["test_prompts"]
    small_env.reset()  # unseeded: continues the generator, so yet another episode seed
    assert [e.prompt for e in small_env.unwrapped._val.examples] != other_val


def test_reset_restores_the_starting_weights(small_env, episode):
    assert not _weights_equal(episode["initial_weights"], episode["final_weights"])
    small_env.reset(seed=SEED)
    student = small_env.unwrapped.student
    small_env.step(np.array([1, 1]))
    assert not _weights_equal(episode["initial_weights"], student.state())
    small_env.reset(seed=SEED)
    assert _weights_equal(episode["initial_weights"], student.state())
    assert student.step == 0 and student.replay == [] and not student.optimizer.state
    # and those are the init_seed weights of a fresh student
    from distillgym.students import TinyStudent

    fresh = TinyStudent(student.config, small_env.unwrapped.suite.alphabet)
    assert _weights_equal(episode["initial_weights"], fresh.state())


# ---------------------------------------------------------------------------- other rewards
@pytest.mark.slow
def test_sparse_reward(episode):
    """The same seed and actions as the delta_mean episode: the reward does not change the
    dynamics; sparse pays 0 and then the whole validation gain on the last step."""
    env = gym.make("distillgym/ArithSkills-v0", reward="sparse", **SMALL)
    rec = _run(env, SEED, ACTIONS)
    assert [i["mean_accuracy"] for i in rec["infos"]] == [i["mean_accuracy"] for i in episode["infos"]]
    final = rec["infos"][-1]["final"]
    assert rec["rewards"][:-1] == [0.0, 0.0, 0.0]
    assert rec["rewards"][-1] == pytest.approx(final["val_accuracy_end"] - final["val_accuracy_start"], abs=1e-12)
    assert rec["rewards"][-1] == pytest.approx(sum(episode["rewards"]), abs=1e-9)
    with pytest.raises(ConfigError, match="episode has ended"):
        env.unwrapped.step(np.array([0, 0]))


def test_callable_reward_and_uneven_budget():
    """budget 1100 at 512 a step: 512, 512, then the 76 left, and the episode ends exactly there."""
    calls = []

    def my_reward(initial, prev, now, terminal):
        calls.append((initial, prev, now, terminal))
        return 10.0 + len(calls)

    env = ArithSkillsEnv(reward=my_reward, budget=1100, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)
    rec = _run(env, 3, [np.array([0, 0])] * 5)
    assert [i["action"]["n"] for i in rec["infos"][1:]] == [512, 512, 76]
    assert rec["terminated"] == [False, False, True]
    final = rec["infos"][-1]["final"]
    assert final["examples"] == 1100 and final["steps"] == 3 and env.budget_left == 0
    assert rec["rewards"] == [11.0, 12.0, 13.0]
    assert [c[3] for c in calls] == [False, False, True]
    assert all(isinstance(x, SkillReport) for c in calls for x in c[:3])
    assert calls[0][0] is calls[0][1] and all(c[0] is calls[0][0] for c in calls)  # initial report throughout
    assert calls[1][1] is calls[0][2] and calls[2][1] is calls[1][2]  # then the previous report
    assert calls[2][2].mean_accuracy == rec["infos"][-1]["mean_accuracy"]
    with pytest.raises(ConfigError, match="episode has ended"):
        env.step(np.array([0, 0]))


def _report(acc) -> SkillReport:
    acc = np.asarray(acc, float)
    return SkillReport(("a", "b"), acc.shape[1], acc, np.ones(2), np.full(acc.shape, 4))


def test_builtin_reward_formulas():
    r0, r1, r2 = _report([[0.0, 0.0], [0.5, 0.5]]), _report([[0.5, 0.0], [0.5, 0.5]]), _report([[1, 1], [0.25, 0.25]])
    assert REWARDS["delta_mean"](r0, r1, r2, False) == pytest.approx(r2.mean_accuracy - r1.mean_accuracy)
    assert REWARDS["sparse"](r0, r1, r2, False) == 0.0
    assert REWARDS["sparse"](r0, r1, r2, True) == pytest.approx(r2.mean_accuracy - r0.mean_accuracy)
    # weakest skill: 0.25 in r1 (skill a), 0.25 in r2 (skill b)
    assert REWARDS["delta_min_skill"](r0, r1, r2, False) == pytest.approx(0.25 - 0.25)
    assert REWARDS["delta_min_skill"](r0, r0, r1, False) == pytest.approx(0.25 - 0.0)


# ---------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def reset_tiny_env():
    env = ArithSkillsEnv(**TINY)
    env.reset(seed=0)
    return env


@pytest.mark.parametrize(
    "action,match",
    [
        ([99, 0], r"out of range: skill index must be in 0\.\.6 \(0=copy, 1=successor"),
        ([0, 9], r"difficulty in 0\.\.3"),
        ([-1, 0], r"out of range"),
        ([0, -1], r"out of range"),
        ([1], r"two integers"),
        ([1, 2, 3], r"two integers"),
        ([[0, 0]], r"two integers"),
        ([0.5, 1], r"two integers"),
        ("ab", r"two integers"),
        (None, r"two integers"),
        ([float("nan"), 0], r"two integers"),
        (["add", 0], r"two integers"),
    ],
)
def test_invalid_actions_raise_and_spend_nothing(reset_tiny_env, action, match):
    env = reset_tiny_env
    with pytest.raises(InvalidActionError, match=match) as err:
        env.step(action)
    if "two integers" in match:
        assert "'copy'" in str(err.value) and "0..3" in str(err.value)
    assert env.budget_left == TINY["budget"] and env._t == 0


def test_integral_float_actions_are_accepted(reset_tiny_env):
    item = reset_tiny_env.decode_action([2.0, 1.0])
    assert (item.skill, item.difficulty, item.n) == ("add", 1, 512)
    item = reset_tiny_env.decode_action(np.array([6, 3], dtype=np.int8))
    assert (item.skill, item.difficulty) == ("chain", 3)


def test_step_before_reset_raises():
    env = ArithSkillsEnv(**TINY)
    with pytest.raises(ConfigError, match="reset"):
        env.step([0, 0])


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(budget=0), ConfigError, "budget must be an integer >= 1, got 0"),
        (dict(budget=-5), ConfigError, "budget must be an integer >= 1"),
        (dict(budget=10.0), ConfigError, "budget must be an integer"),
        (dict(budget=True), ConfigError, "budget must be an integer"),
        (dict(examples_per_step=0), ConfigError, "examples_per_step must be an integer >= 1"),
        (dict(n_val_per_cell=0), ConfigError, "n_val_per_cell must be an integer >= 1"),
        (dict(n_test_per_cell=-1), ConfigError, "n_test_per_cell must be an integer >= 1"),
        (dict(n_errors=-1), ConfigError, "n_errors must be an integer >= 0"),
        (dict(render_mode="human"), ConfigError, r"render_mode must be None or one of \['ansi'\]"),
        (dict(reward="delta_meen"), UnknownNameError, "Did you mean 'delta_mean'"),
        (dict(reward=3), ConfigError, "reward must be one of"),
        (dict(student=dict(hidden_size=65, num_heads=4)), ConfigError, "divisible by num_heads"),
        (dict(student=dict(hidden=64)), ConfigError, r"unknown StudentConfig field\(s\) \['hidden'\]"),
        (dict(student="big"), UnknownNameError, r"unknown student 'big': valid values are \['tiny'"),
        (dict(suite="arithmetic"), UnknownNameError, "arith"),
        (dict(device="tpu"), ConfigError, "device must be"),
    ],
)
def test_bad_config_raises_project_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        ArithSkillsEnv(**{**TINY, **kwargs})


def test_bad_config_through_gym_make():
    with pytest.raises(ConfigError, match="budget"):
        gym.make("distillgym/ArithSkills-v0", budget=0)
    with pytest.raises(UnknownNameError, match="valid values are"):
        gym.make("distillgym/ArithSkills-v0", reward="dense")


def test_unknown_reward_message_lists_the_rewards():
    with pytest.raises(UnknownNameError) as err:
        ArithSkillsEnv(reward="nope", **TINY)
    for name in REWARDS:
        assert name in str(err.value)


# ---------------------------------------------------------------------------- pre-trained base cache
def test_pretrained_base_is_cached_in_distillgym_cache():
    student = dict(pretrain_examples=280, pretrain_max_difficulty=0)
    cache = Path(os.environ["DISTILLGYM_CACHE"])
    env = ArithSkillsEnv(student=student, **TINY)
    files = sorted(cache.glob("base-arith-*.pt"))
    assert len(files) == 1
    plain = ArithSkillsEnv(**TINY)
    base = env._initial["weights"]
    assert not _weights_equal(base, plain._initial["weights"])  # the base was trained
    again = ArithSkillsEnv(student=student, **TINY)  # loaded from the cache file
    assert _weights_equal(base, again._initial["weights"])
    assert not list(cache.glob("*.tmp-*"))  # written through a temporary name, renamed
    files[0].write_bytes(b"not a checkpoint")  # a corrupt cache is rebuilt, never trusted
    rebuilt = ArithSkillsEnv(student=student, **TINY)
    assert _weights_equal(base, rebuilt._initial["weights"])
    assert files[0].stat().st_size > 1000
    # and reset starts from the pre-trained base
    rebuilt.reset(seed=0)
    assert _weights_equal(base, rebuilt.student.state())


def test_pretrained_base_cannot_be_combined_with_seeded_init():
    with pytest.raises(ConfigError, match="student_init='fixed'"):
        gym.make("distillgym/ArithSkills-v1", student=dict(pretrain_examples=280), **TINY)


def test_env_module_is_importable_as_distillgym_envs():
    assert ArithSkillsEnv.__module__ == "distillgym.envs.arith_skills"
    assert distillgym.ENV_IDS == ENV_IDS
    assert gym.spec("distillgym/ArithSkills-v0").entry_point == "distillgym.env:TeachingEnv"


def test_sparse_reward_pays_the_gain_when_the_episode_is_truncated():
    """A truncated episode ends too: sparse pays A_T - A_0 on its last step (it paid 0 before issue 20,
    item 1), and a callable reward sees terminal=True there."""
    kw = dict(budget=4096, examples_per_step=1024, n_val_per_cell=4, n_test_per_cell=4, max_steps=2)
    env = gym.make("distillgym/ArithSkills-v1", reward="sparse", **kw)
    rec = _run(env, 0, [np.array([0, 0])] * 2)
    assert rec["truncated"] == [False, True] and rec["terminated"] == [False, False]
    final = rec["infos"][-1]["final"]
    assert final["val_accuracy_end"] != final["val_accuracy_start"]  # the student learnt something
    assert rec["rewards"][0] == 0.0
    assert rec["rewards"][-1] == pytest.approx(final["val_accuracy_end"] - final["val_accuracy_start"], abs=1e-12)
    seen = []
    env = gym.make("distillgym/ArithSkills-v1", reward=lambda i, p, n, terminal: seen.append(terminal) or 0.0, **kw)
    _run(env, 0, [np.array([0, 0])] * 2)
    assert seen == [False, True]
