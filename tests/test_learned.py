"""Learned teachers: train a tiny PPO teacher in spawned workers, save it, load it as 'ppo:PATH'."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import distillgym.agents.ppo  # noqa: E402,F401  (registers the 'ppo:' teacher prefix)
from distillgym.agents import make_teacher  # noqa: E402
from distillgym.agents.ppo import PPOTeacher  # noqa: E402
from distillgym.errors import ConfigError, UnknownNameError  # noqa: E402
from distillgym.learned import add_train_teacher_parser, train_teacher  # noqa: E402
from distillgym.runner import DEFAULT_ENV, run_episode  # noqa: E402

# 2 steps of 256 examples per episode, 4 validation / test items per cell.
TINY = dict(budget=512, examples_per_step=256, n_val_per_cell=4, n_test_per_cell=4)
# One rollout of 8 steps per env (2 envs: 16 env steps, 8 tiny episodes), one small update.
PPO_TINY = dict(n_steps=8, batch_size=8, n_epochs=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ppo")
    return train_teacher(
        DEFAULT_ENV,
        "ppo",
        timesteps=16,
        n_envs=2,
        seed=0,
        out_dir=out,
        env_kwargs=TINY,
        vec="subproc",
        checkpoint_every=8,
        ppo_kwargs=PPO_TINY,
    )


@pytest.mark.slow
def test_train_teacher_subproc_saves_policy_checkpoints_and_meta(trained):
    path = Path(trained["path"])
    assert path.is_file() and path.name == "policy.zip"
    assert trained["timesteps"] == 16 and trained["requested_timesteps"] == 16
    assert trained["seconds_per_1000_steps"] > 0
    ckpts = sorted(Path(trained["checkpoints"]).glob("ppo_*_steps.zip"))
    assert ckpts, "no checkpoint written"
    meta = json.loads(Path(trained["meta_path"]).read_text())
    assert meta["env"] == DEFAULT_ENV and meta["env_kwargs"] == TINY and meta["seed"] == 0
    assert meta["timesteps"] == 16 and meta["vec"] == "subproc" and meta["ppo_kwargs"]["n_steps"] == 8
    assert {"stable_baselines3", "torch", "gymnasium", "distillgym"} <= set(meta["versions"])


@pytest.mark.slow
def test_ppo_teacher_runs_an_episode_deterministically(trained):
    name = "ppo:" + trained["path"]
    teacher = make_teacher(name)
    assert isinstance(teacher, PPOTeacher) and teacher.deterministic
    # the output folder works as PATH too
    assert isinstance(make_teacher("ppo:" + trained["out_dir"]), PPOTeacher)

    runs = [run_episode(DEFAULT_ENV, name, seed=0, env_kwargs=TINY) for _ in range(2)]
    from distillgym.tasks import make_suite

    suite = make_suite("arith")
    for r in runs:
        assert len(r["steps"]) == 2 and r["examples"] == 512
        assert 0.0 <= r["final_test_accuracy"] <= 1.0
        for s in r["steps"]:
            assert s["skill"] in suite.skills and 0 <= s["difficulty"] < suite.n_difficulties
    actions = [[(s["skill"], s["difficulty"]) for s in r["steps"]] for r in runs]
    assert actions[0] == actions[1]
    assert runs[0]["final_test_accuracy"] == runs[1]["final_test_accuracy"]


@pytest.mark.slow
def test_ppo_teacher_stochastic_is_seeded(trained, arith_info):
    from gymnasium import spaces

    obs = {
        "accuracy": np.zeros((7, 4), np.float32),
        "reference": np.ones(7, np.float32),
        "budget_left": np.ones(1, np.float32),
    }
    space = spaces.MultiDiscrete([7, 4])

    def actions(seed: int) -> list:
        t = PPOTeacher(trained["path"], deterministic=False)
        t.reset(space, arith_info, seed=seed)
        return [tuple(int(x) for x in t.act(obs, {})) for _ in range(20)]

    first = actions(3)
    assert first == actions(3)
    assert all(0 <= s < 7 and 0 <= d < 4 for s, d in first)


@pytest.mark.slow
def test_ppo_teacher_rejects_a_different_action_space(trained, arith_info):
    from gymnasium import spaces

    teacher = PPOTeacher(trained["path"])
    with pytest.raises(ConfigError, match="action space"):
        teacher.reset(spaces.MultiDiscrete([3, 2]), arith_info, seed=0)
    teacher.reset(spaces.MultiDiscrete([7, 4]), arith_info, seed=0)
    with pytest.raises(ConfigError, match="expects observations"):
        teacher.act(
            {
                "accuracy": np.zeros((3, 2), np.float32),
                "reference": np.zeros(3, np.float32),
                "budget_left": np.ones(1, np.float32),
            },
            {},
        )


def test_missing_policy_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope" / "policy.zip"
    with pytest.raises(UnknownNameError) as err:
        make_teacher("ppo:" + str(missing))
    assert str(missing) in str(err.value) and "train-teacher" in str(err.value)
    with pytest.raises(UnknownNameError, match="needs a path"):
        make_teacher("ppo:")


def test_not_a_policy_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "policy.zip"
    bad.write_text("not a zip")
    with pytest.raises(ConfigError, match="cannot load a PPO policy"):
        make_teacher("ppo:" + str(bad))


def test_train_teacher_rejects_bad_arguments_before_starting_workers(tmp_path):
    with pytest.raises(UnknownNameError, match="'ppo'"):
        train_teacher(DEFAULT_ENV, "sac", timesteps=8, out_dir=tmp_path)
    with pytest.raises(UnknownNameError, match="subproc"):
        train_teacher(DEFAULT_ENV, timesteps=8, vec="threads", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="timesteps"):
        train_teacher(DEFAULT_ENV, timesteps=0, out_dir=tmp_path)
    with pytest.raises(UnknownNameError, match="unknown env"):
        train_teacher("distillgym/Nope-v0", timesteps=8, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="budgett.*Did you mean .budget."):
        train_teacher(DEFAULT_ENV, timesteps=8, out_dir=tmp_path, env_kwargs={"budgett": 8})
    with pytest.raises(ConfigError, match="seed"):
        train_teacher(DEFAULT_ENV, timesteps=8, out_dir=tmp_path, ppo_kwargs={"seed": 1})


def test_train_teacher_subcommand_parses():
    parser = argparse.ArgumentParser(prog="distillgym")
    add_train_teacher_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["train-teacher", "--timesteps", "64", "--env-kwargs", '{"budget": 8192}', "--vec", "dummy", "--out", "x"]
    )
    assert callable(args.fn) and args.timesteps == 64 and args.env_kwargs == {"budget": 8192}
    assert args.algo == "ppo" and args.n_envs == 2 and args.seed == 0 and args.vec == "dummy" and args.out == "x"
    args = parser.parse_args(["train-teacher", "--timesteps", "8", "--algo", "dqn"])
    with pytest.raises(UnknownNameError, match="valid values are \\['ppo'\\]"):
        args.fn(args)
