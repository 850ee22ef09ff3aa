"""The environment core: parts by name or object, resolved config, JSON-able info, failed steps,
seeded initial weights, and the public episode loop."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

import distillgym  # noqa: E402,F401
from distillgym import ENV_IDS  # noqa: E402
from distillgym.env import TeachingEnv  # noqa: E402
from distillgym.errors import ConfigError, TrainingDivergedError, UnknownNameError  # noqa: E402
from distillgym.harness.runner import run_episode  # noqa: E402

TINY = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_info_is_json_serialisable(env_id):
    env = gym.make(env_id, **TINY)
    env.action_space.seed(0)
    _, info = env.reset(seed=0)
    infos = [info]
    done = False
    while not done:
        _, _, term, trunc, info = env.step(env.action_space.sample())
        infos.append(info)
        done = term or trunc
    for i in infos:
        back = json.loads(json.dumps(i, allow_nan=False))
        assert back.keys() == i.keys()
    assert "final" in infos[-1] and isinstance(infos[-1]["costs"]["seconds"]["total"], float)


def test_config_is_resolved_and_rebuilds_the_env():
    env = gym.make("distillgym/ArithMix-v1", **TINY).unwrapped
    cfg = env.config
    assert cfg["rebuildable"] and cfg["level"] == "mix" and cfg["suite"] == "arith-v1"
    assert cfg["student"] == "tiny" and cfg["student_kwargs"]["lr"] == 6e-3  # defaults filled in
    assert cfg["budget"] == 1024 and cfg["split"] == "content" and cfg["student_init"] == "seed"
    rebuilt = TeachingEnv(**{k: v for k, v in cfg.items() if k != "rebuildable"})
    assert rebuilt.config == cfg
    o1, _ = env.reset(seed=3)
    o2, _ = rebuilt.reset(seed=3)
    assert all(np.array_equal(o1[k], o2[k]) for k in o1)
    _, info = env.reset(seed=0)
    assert info["env_config"] == cfg


def test_parts_can_be_given_as_objects():
    from distillgym.engines import ProceduralEngine
    from distillgym.students import make_student
    from distillgym.tasks import make_suite

    suite = make_suite("arith-v1")
    student = make_student("tiny", suite, device="cpu")
    env = TeachingEnv(suite=suite, student=student, engine=ProceduralEngine(suite), **TINY)
    assert env.student is student and not env.config["rebuildable"]
    env.reset(seed=0)
    _, r, *_ = env.step(np.array([0, 0]))
    assert isinstance(r, float)
    with pytest.raises(UnknownNameError, match="unknown data engine 'llmm'"):
        TeachingEnv(engine="llmm", **TINY)
    with pytest.raises(UnknownNameError, match="unknown action level"):
        TeachingEnv(level="tree", **TINY)
    with pytest.raises(ConfigError, match="no content partition"):
        TeachingEnv(suite="arith", split="content", **TINY)


def test_seeded_initial_weights_differ_by_episode_and_repeat_by_seed():
    env = gym.make("distillgym/ArithSkills-v1", **TINY).unwrapped
    env.reset(seed=1)
    w1 = env.student.state()
    env.reset(seed=2)
    w2 = env.student.state()
    env.reset(seed=1)
    w1b = env.student.state()
    assert all(np.array_equal(w1[k], w1b[k]) for k in w1)
    assert any(not np.array_equal(w1[k], w2[k]) for k in w1)
    fixed = gym.make("distillgym/ArithSkills-v1", student_init="fixed", **TINY).unwrapped
    fixed.reset(seed=1)
    f1 = fixed.student.state()
    fixed.reset(seed=2)
    assert all(np.array_equal(f1[k], v) for k, v in fixed.student.state().items())


class DivergingStudent:
    """A fake student (named as such): trains normally, then raises TrainingDivergedError after
    ``applied`` optimiser steps of the call, as a real divergence would."""

    def __init__(self, real, applied):
        self.real, self.applied = real, applied

    def __call__(self, examples, rng=None, **kw):
        raise TrainingDivergedError("training loss became nan at optimiser step 7", self.applied)


@pytest.mark.parametrize("applied", [0, 3])
def test_a_failed_step_leaves_the_env_resettable_and_says_what_changed(applied):
    env = gym.make("distillgym/ArithSkills-v1", **TINY).unwrapped
    env.reset(seed=0)
    real = env.student.train
    env.student.train = DivergingStudent(real, applied)
    with pytest.raises(TrainingDivergedError) as err:
        env.step(np.array([1, 1]))
    msg = str(err.value)
    assert "were not advanced" in msg and "call reset()" in msg
    assert ("were not changed" in msg) == (applied == 0)
    assert ("3 optimiser step(s) had already changed" in msg) == (applied == 3)
    assert err.value.applied == applied
    assert env.budget_left == TINY["budget"] and env._t == 0
    with pytest.raises(ConfigError, match="the last step failed"):
        env.step(np.array([1, 1]))
    env.student.train = real
    env.reset(seed=0)
    _, _, term, _, info = env.step(np.array([1, 1]))
    assert info["budget_left"] == TINY["budget"] - 512 and not term


class FailingEvaluator:
    """A fake evaluator (named as such): raises on evaluate(), as a failing evaluation would."""

    def __init__(self, real):
        self.real = real

    def evaluate(self, student, rng=None):
        raise RuntimeError("injected evaluation failure")


@pytest.mark.parametrize("which", ["val", "test"])
def test_a_step_whose_evaluation_fails_advances_nothing_and_marks_the_env_broken(which):
    """Issue 20, item 3: the step trained, then its evaluation (validation, or the test set of the
    episode's last step) failed; the counters and budget stay, the env is broken until reset."""
    env = gym.make("distillgym/ArithSkills-v1", **TINY).unwrapped
    env.reset(seed=0)
    if which == "test":
        env.step(np.array([1, 1]))  # the next step ends the episode and scores the test set
        env._test_evaluator = FailingEvaluator(env._test)
    else:
        env._val = FailingEvaluator(env._val)
    t, left, report = env._t, env.budget_left, env._report
    with pytest.raises(RuntimeError, match="injected evaluation failure") as err:
        env.step(np.array([2, 0]))
    notes = " ".join(getattr(err.value, "__notes__", []))
    assert "were not advanced" in notes and "call reset()" in notes
    assert env._t == t and env.budget_left == left and env._report is report and not env._done
    with pytest.raises(ConfigError, match="the last step failed"):
        env.step(np.array([2, 0]))
    env.reset(seed=0)
    _, _, term, _, info = env.step(np.array([1, 1]))
    assert info["budget_left"] == TINY["budget"] - 512 and not term


def test_a_real_divergence_is_caught_before_the_update():
    env = gym.make("distillgym/ArithSkills-v1", student={"lr": 1e20, "grad_clip": 0.0, "warmup_steps": 0}, **TINY)
    env.reset(seed=0)
    with pytest.raises(TrainingDivergedError, match="call reset"):
        for _ in range(2):
            env.step(np.array([2, 1]))
    env.reset(seed=0)  # and the env can start again


def test_run_episode_takes_an_env_object_and_updates_the_teacher():
    class Counting:
        """A user teacher (no levels): counts update() calls."""

        name = "counting"

        def reset(self, action_space, info, seed=None):
            self.updates = 0

        def act(self, obs, info):
            return np.array([0, 0])

        def update(self, obs, reward, terminated, truncated, info):
            self.updates += 1

    env = gym.make("distillgym/ArithSkills-v1", **TINY)
    teacher = Counting()
    res = run_episode(env, teacher, seed=0)
    assert teacher.updates == len(res["steps"]) == 2
    assert res["env"] == "distillgym/ArithSkills-v1" and res["costs"]["examples"] == TINY["budget"]
    assert res["costs"]["student_flops"] > 0 and res["costs"]["teacher_calls"] == 0
    assert not math.isnan(res["final_test_accuracy"])
    env.reset(seed=1)  # not closed by run_episode
    with pytest.raises(ValueError, match="env_kwargs"):
        run_episode(env, teacher, env_kwargs={"budget": 5})


def test_cell_teachers_play_the_mix_and_open_levels_through_adapters():
    a = run_episode("distillgym/ArithMix-v1", "ioa", seed=2, env_kwargs=TINY)
    b = run_episode("distillgym/ArithSkills-v1", "ioa", seed=2, env_kwargs=TINY)
    assert [s.get("skill") for s in a["steps"]] == [s["skill"] for s in b["steps"]]  # one-hot steps name their cell
    assert a["final_test_accuracy"] == b["final_test_accuracy"]  # a one-hot mix trains what the cell does
    c = run_episode("distillgym/ArithOpen-v1", "stratified", seed=2, env_kwargs=TINY)
    assert all(s["rejected"] == dict.fromkeys(s["rejected"], 0) for s in c["steps"])
    assert sum(s["accepted"] for s in c["steps"]) == TINY["budget"]


def test_snapshot_and_restore_replay_a_step_exactly():
    env = gym.make("distillgym/ArithMix-v1", **{**TINY, "budget": 1536}).unwrapped
    env.reset(seed=5)
    env.step(np.zeros((7, 4), np.float32))
    snap = env.snapshot()
    a = np.full((7, 4), -1.0, np.float32)
    a[2, 1] = 1.0
    o1, r1, t1, _, i1 = env.step(a)
    env.restore(snap)
    env.step(np.ones((7, 4), np.float32))  # another branch
    env.restore(snap)
    o2, r2, t2, _, i2 = env.step(a)
    assert r1 == r2 and t1 == t2 and i1["report"] == i2["report"] and i1["train_loss"] == i2["train_loss"]
    assert all(np.array_equal(o1[k], o2[k]) for k in o1)
    env.reset(seed=6)
    with pytest.raises(ConfigError, match="another episode"):
        env.restore(snap)


# ---------------------------------------------------------------------------- EnvConfig and the docstring
def test_env_config_is_the_constructor_and_the_resolved_config():
    import dataclasses

    from distillgym.config import EnvConfig

    names = [f.name for f in dataclasses.fields(EnvConfig)]
    assert names == ["suite", "student", "engine", "level", "reward", "budget", "examples_per_step",
                     "n_val_per_cell", "n_test_per_cell", "n_errors", "split", "student_init", "observe_loss",
                     "report_loss", "check_support", "max_steps", "suite_kwargs", "student_kwargs", "engine_kwargs",
                     "device", "torch_threads", "render_mode", "eval_weights", "validate_all_cells", "warm_start",
                     "level_kwargs"]
    by_kwargs = TeachingEnv(level="mix", **TINY)
    by_config = TeachingEnv(EnvConfig(level="mix", **TINY))
    assert by_kwargs.config == by_config.config
    assert by_kwargs.settings.observe_loss is True and by_kwargs.settings.max_steps == 8
    assert TeachingEnv(EnvConfig(level="mix"), **TINY).config == by_kwargs.config  # kwargs override the config
    with pytest.raises(ConfigError, match="Did you mean 'budget'"):
        EnvConfig.from_kwargs(budgte=1)
    with pytest.raises(ConfigError, match="n_errors must be an integer >= 0"):
        EnvConfig(n_errors=-1).validate()
    with pytest.raises(ConfigError, match="first argument is an EnvConfig"):
        TeachingEnv("arith-v1")


def test_the_env_docstring_examples_run():
    """TeachingEnv's docstring examples (a two-step episode, the mix level, a misspelt argument) are run
    as doctests, so they stay true."""
    import doctest

    import distillgym.env

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in doctest.DocTestFinder().find(distillgym.env.TeachingEnv, "TeachingEnv", globs={}) if t.examples]
    assert tests and sum(len(t.examples) for t in tests) >= 10
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0
