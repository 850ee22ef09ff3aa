"""Learned teachers: train a tiny PPO teacher in spawned workers, save it, load it as 'ppo:PATH'."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from distillgym.envs import DEFAULT_ENV  # noqa: E402
from distillgym.errors import ConfigError, UnknownNameError  # noqa: E402
from distillgym.harness.cli import add_train_teacher_parser  # noqa: E402
from distillgym.harness.runner import run_episode  # noqa: E402
from distillgym.teachers import make_teacher  # noqa: E402
from distillgym.teachers.ppo import PPOTeacher  # noqa: E402
from distillgym.train.ppo import plot_training_curve, read_curve, train_teacher  # noqa: E402

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
        train_teacher(DEFAULT_ENV, timesteps=-1, out_dir=tmp_path)
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
    with pytest.raises(UnknownNameError, match="valid values are \\['ppo', 'cem'\\]"):
        args.fn(args)


# ---------------------------------------------------------------------------- native env, features, cell-wise policy
MIX_ENV = "distillgym/ArithMix-v2"
# 2 steps of 256 examples per episode, 4 validation / test items per cell.
MIX_TINY = dict(budget=512, examples_per_step=256, n_val_per_cell=4, n_test_per_cell=4)
# One rollout: 2 vectorised steps of 2 envs (4 transitions, 2 whole tiny episodes), one small update.
PPO_MIX = dict(n_steps=2, batch_size=4, n_epochs=2, gamma=1.0, ent_coef=0.0)
CELLWISE = dict(features="cells-v1", policy="cellwise", policy_kwargs={"log_std_init": -1.0, "hidden": 8})


def _train_mix(out, timesteps, **kw):
    args = dict(env_id=MIX_ENV, timesteps=timesteps, n_envs=2, seed=0, out_dir=out, env_kwargs=MIX_TINY,
                vec="native", checkpoint_every=4, ppo_kwargs=PPO_MIX, **CELLWISE)
    args.update(kw)
    return train_teacher(**args)


@pytest.fixture(scope="module")
def mix_trained(tmp_path_factory) -> dict:
    return _train_mix(tmp_path_factory.mktemp("ppo-mix"), 8)


@pytest.mark.slow
def test_native_cellwise_training_writes_policy_curve_and_checkpoints(mix_trained):
    out = Path(mix_trained["out_dir"])
    assert mix_trained["timesteps"] == 8 and not mix_trained["stopped_by_time"]
    meta = json.loads((out / "policy.json").read_text())
    assert meta["features"] == "cells-v1" and meta["policy"] == "cellwise" and meta["vec"] == "native"
    assert meta["policy_kwargs"] == CELLWISE["policy_kwargs"] and meta["timesteps"] == 8
    assert meta["hardware"]["cpu_count"] >= 1 and "torch" in meta["versions"]
    assert len(meta["segments"]) == 1 and meta["segments"][0]["to_timesteps"] == 8
    # 2 rollouts of 4 env steps: 4 tiny episodes (2 steps each), 2 updates, checkpoints after each update
    curve = read_curve(out)
    assert len(curve) == 4 and {r["env"] for r in curve} == {0.0, 1.0}
    for r in curve:
        assert r["length"] == 2 and 0 <= r["test_accuracy"] <= 1
        assert r["return"] == pytest.approx(r["val_accuracy_end"] - r["val_accuracy_start"], abs=1e-5)
    updates = read_curve(out, "updates.csv")
    assert [u["timesteps"] for u in updates] == [4, 8]
    assert all(0 < u["std"] < 1 and math.isfinite(u["approx_kl"]) for u in updates)
    assert sorted(p.name for p in (out / "checkpoints").glob("*.zip")) == ["ppo_4_steps.zip", "ppo_8_steps.zip"]
    assert mix_trained["curve_png"] and Path(mix_trained["curve_png"]).stat().st_size > 1000


@pytest.mark.slow
def test_ppo_teacher_with_features_plays_the_mix_env_deterministically(mix_trained):
    name = "ppo:" + mix_trained["path"]
    teacher = make_teacher(name)
    assert teacher.levels == ("mix",) and teacher.features_name == "cells-v1"
    runs = [run_episode(MIX_ENV, name, seed=1000, env_kwargs=MIX_TINY) for _ in range(2)]
    for r in runs:
        assert len(r["steps"]) == 2 and r["examples"] == 512
        for s in r["steps"]:
            alloc = np.asarray(s["allocation"])
            assert alloc.shape == (7, 4) and alloc.sum() == 256
            assert (alloc > 0).sum() > 1  # a mix, not the one-hot steps of an adapted cell teacher
    assert [s["allocation"] for s in runs[0]["steps"]] == [s["allocation"] for s in runs[1]["steps"]]
    assert runs[0]["final_test_accuracy"] == runs[1]["final_test_accuracy"]


@pytest.mark.slow
def test_resume_continues_from_the_latest_checkpoint(mix_trained, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(mix_trained["out_dir"], out)
    with pytest.raises(ConfigError, match="--resume"):
        _train_mix(out, 12)
    with pytest.raises(ConfigError, match="differs in \\['seed'\\]"):
        _train_mix(out, 12, resume=True, seed=1)
    res = _train_mix(out, 12, resume=True)
    assert res["timesteps"] == 12 and res["resumed_from"].endswith("ppo_8_steps.zip")
    meta = json.loads((out / "policy.json").read_text())
    assert [(s["from_timesteps"], s["to_timesteps"]) for s in meta["segments"]] == [(0, 8), (8, 12)]
    assert [u["timesteps"] for u in read_curve(out, "updates.csv")] == [4, 8, 12]
    assert len(read_curve(out)) == 6


@pytest.mark.slow
def test_max_seconds_stops_after_the_first_rollout(tmp_path):
    # The first rollout sets the expected duration; before the second the clock (any positive time
    # is past 1 microsecond) says stop: the saved policy is the one updated on the first rollout.
    res = _train_mix(tmp_path / "short", 400, max_seconds=1e-6)
    assert res["stopped_by_time"] and res["timesteps"] == 4
    assert (tmp_path / "short" / "checkpoints" / "ppo_4_steps.zip").is_file()
    assert json.loads((tmp_path / "short" / "policy.json").read_text())["timesteps"] == 4


@pytest.mark.slow
def test_zero_timesteps_saves_the_initial_policy_near_the_equal_mix(tmp_path):
    res = _train_mix(tmp_path / "init", 0)
    assert res["timesteps"] == 0 and Path(res["path"]).is_file() and res["curve_png"] is None
    teacher = PPOTeacher(res["path"])
    from gymnasium import spaces

    info = {"skills": [f"s{i}" for i in range(7)], "n_difficulties": 4, "budget": 512, "examples_per_step": 256}
    teacher.reset(spaces.Box(-1, 1, (7, 4), np.float32), info, seed=0)
    obs = {"accuracy": np.full((7, 4), 0.3, np.float32), "reference": np.ones(7, np.float32),
           "budget_left": np.ones(1, np.float32), "loss": np.ones((7, 4), np.float32)}
    a = teacher.act(obs, info)
    assert a.shape == (7, 4) and np.abs(a).max() < 0.05  # w = (a + 1) / 2 within 2.5% of one half


def test_cellwise_policy_needs_the_features_and_the_mix_level(tmp_path):
    with pytest.raises(ConfigError, match="cells-v1"):
        train_teacher(MIX_ENV, timesteps=0, out_dir=tmp_path / "a", vec="native", policy="cellwise")
    with pytest.raises(UnknownNameError, match="cellwise"):
        train_teacher(MIX_ENV, timesteps=0, out_dir=tmp_path / "b", policy="cellwise-v9")
    with pytest.raises(UnknownNameError, match="cells-v1"):
        train_teacher(MIX_ENV, timesteps=0, out_dir=tmp_path / "c", features="cells")
    with pytest.raises(ConfigError, match="mix level"):
        train_teacher("distillgym/ArithSkills-v2", timesteps=0, out_dir=tmp_path / "d", env_kwargs=MIX_TINY,
                      features="cells-v1", policy="cellwise")


def test_train_teacher_subcommand_parses_the_native_options():
    parser = argparse.ArgumentParser(prog="distillgym")
    add_train_teacher_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["train-teacher", "--env", MIX_ENV, "--vec", "native", "--n-envs", "4", "--timesteps", "0",
         "--features", "cells-v1", "--policy", "cellwise", "--policy-kwargs", '{"hidden": 32}', "--resume",
         "--max-hours", "0.5", "--device", "cuda"]
    )
    assert args.features == "cells-v1" and args.policy == "cellwise" and args.policy_kwargs == {"hidden": 32}
    assert args.resume and args.max_hours == 0.5 and args.device == "cuda" and args.torch_threads == 1
    assert args.n_envs == 4 and args.timesteps == 0


def test_training_curve_png_from_csv_files(tmp_path):
    pytest.importorskip("matplotlib")
    import csv

    from distillgym.train.policies import CURVE_COLUMNS, UPDATE_COLUMNS

    with open(tmp_path / "curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CURVE_COLUMNS)
        for t in range(1, 11):
            w.writerow([t, 24 * t, t % 2, 0.01 * t, 24, 0.0, 0.01 * t, 0.01 * t - 0.005])
    with open(tmp_path / "updates.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(UPDATE_COLUMNS)
        w.writerow([1, 48, 10, 0.01, 0.1, -1, 0, 0.001, 0.5, 0.37, 0.1, 3e-4])
    rows = read_curve(tmp_path)
    assert len(rows) == 10 and rows[-1]["return"] == pytest.approx(0.1)
    png = plot_training_curve(tmp_path)
    assert png == tmp_path / "curve.png" and png.stat().st_size > 1000
    with pytest.raises(ConfigError, match="no curve.csv"):
        read_curve(tmp_path / "nothing")


# ---------------------------------------------------------------------------- the checked-in policies
POLICIES_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "policies"


@pytest.mark.parametrize("name", ["ppo-mix-v2", "ppo-mix-v2-init", "ppo-mix-v2-long", "ppo-192"])
def test_checked_in_policies_load_and_play_after_the_layout_change(name):
    """The ppo-mix-v2 policies pickled their class as ``distillgym.policies.CellwisePolicy`` (before the
    classes moved to distillgym.train.policies): they load through load_ppo's module aliases, which are
    gone again afterwards, and play."""
    import base64
    import sys
    import zipfile

    path = POLICIES_DIR / name / "policy.zip"
    data = json.loads(zipfile.ZipFile(path).read("data"))
    pickled = base64.b64decode(data["policy_class"][":serialized:"])
    assert (b"distillgym.policies" in pickled) == name.startswith("ppo-mix-v2")
    teacher = make_teacher(f"ppo:{path}")
    assert "distillgym.policies" not in sys.modules
    env_id, kwargs = (MIX_ENV, MIX_TINY) if name.startswith("ppo-mix-v2") else ("distillgym/ArithSkills-v0", TINY)
    assert teacher.levels == (("mix",) if env_id == MIX_ENV else ("cell",))
    res = run_episode(env_id, f"ppo:{path}", seed=0, env_kwargs=kwargs)
    assert len(res["steps"]) == 2 and 0 <= res["final_test_accuracy"] <= 1
