"""Stored student snapshots (warm starts): the shipped file and its checksum, a deterministic tiny
rebuild, refusals, and the warm-started student in the env (issue 21, section 4)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from distillgym.env import TeachingEnv  # noqa: E402
from distillgym.errors import ConfigError, UnknownNameError  # noqa: E402
from distillgym.students import snapshots  # noqa: E402
from distillgym.students.snapshots import SNAPSHOTS, Recipe, build, load, save, weights_sha256  # noqa: E402
from distillgym.students.torch_student import PlainConfig, param_shapes  # noqa: E402


def test_the_shipped_snapshot_matches_its_recipe_and_metadata():
    weights = load("arith-v2-l01")
    meta = json.loads((snapshots.DATA_DIR / "arith-v2-l01.json").read_text())
    assert weights_sha256(weights) == SNAPSHOTS["arith-v2-l01"].sha256 == meta["sha256"]
    shapes = param_shapes(PlainConfig(vocab_size=weights["embed.weight"].shape[0]))
    assert {k: tuple(v.shape) for k, v in weights.items()} == shapes
    assert all(v.dtype == torch.float32 for v in weights.values())
    assert meta["build_command"].endswith("snapshots build arith-v2-l01") and meta["seconds"] > 0
    assert meta["examples"] == 200 * 2048 and meta["n_params"] == sum(int(np.prod(s)) for s in shapes.values())
    acc = np.array(meta["val_accuracy"])
    assert (acc[:, :2] >= 0.9).sum() >= 12  # difficulties 0-1 mastered (the recipe's point)
    assert snapshots.snapshot_path("arith-v2-l01").stat().st_size < 400_000


def test_a_tiny_rebuild_is_deterministic(tmp_path):
    recipe = Recipe(steps=2, examples_per_step=128, seed=3)
    a, meta_a = build(recipe)
    b, meta_b = build(recipe)
    assert meta_a["sha256"] == meta_b["sha256"] == weights_sha256(a) == weights_sha256(b)
    assert save(a, tmp_path / "a.npz") == save(b, tmp_path / "b.npz")
    digest = [hashlib.sha256((tmp_path / f).read_bytes()).hexdigest() for f in ("a.npz", "b.npz")]
    assert digest[0] == digest[1]  # byte for byte: fixed zip timestamps
    assert weights_sha256(load(tmp_path / "a.npz")) == meta_a["sha256"]
    other, meta_c = build(Recipe(steps=2, examples_per_step=128, seed=4))
    assert meta_c["sha256"] != meta_a["sha256"]


def test_load_refuses_what_is_not_the_registered_snapshot(tmp_path, monkeypatch):
    with pytest.raises(UnknownNameError, match="arith-v2-l01"):
        load("arith-v2-l0")
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.npz")
    weights = load("arith-v2-l01")
    weights["norm.weight"] = weights["norm.weight"] * 2
    save(weights, tmp_path / "arith-v2-l01.npz")
    monkeypatch.setattr(snapshots, "DATA_DIR", tmp_path)
    with pytest.raises(ConfigError, match="not the registered snapshot"):
        load("arith-v2-l01")
    with pytest.raises(ConfigError, match="rebuild"):
        load("arith-v2-l01")


WARM = dict(suite="arith-v2", student="plain", engine="vectorized", level="mix", budget=1024, examples_per_step=512,
            n_val_per_cell=8, n_test_per_cell=8, device="cpu", student_init="fixed", warm_start="arith-v2-l01")


def test_every_episode_starts_from_the_snapshot_with_a_fresh_optimiser():
    env = TeachingEnv(**WARM)
    want = load("arith-v2-l01")
    obs, info = env.reset(seed=0)
    assert info["warm_start"] == {"name": "arith-v2-l01", "sha256": SNAPSHOTS["arith-v2-l01"].sha256}
    assert obs["accuracy"][:, :2].mean() > 0.8 and obs["accuracy"][:, 3].mean() < 0.2
    state = env.student.state()
    assert all(torch.equal(state[k], want[k]) for k in want)
    assert env.student.step == 0 and len(env.student.replay) == 0 and not env.student.optimizer.state
    first = obs
    while True:
        obs, r, term, trunc, info = env.step(np.zeros((7, 4), np.float32))
        if term:
            break
    assert env.student.step > 0 and len(env.student.replay) > 0
    obs, info = env.reset(seed=0)  # the next episode: the snapshot again, the first observation again
    assert all(torch.equal(env.student.state()[k], want[k]) for k in want)
    assert env.student.step == 0 and len(env.student.replay) == 0
    np.testing.assert_array_equal(obs["accuracy"], first["accuracy"])
    assert env.config["warm_start"] == "arith-v2-l01"


def test_warm_start_needs_a_fixed_init():
    with pytest.raises(ConfigError, match="student_init='fixed'"):
        TeachingEnv(**{**WARM, "student_init": "seed"})
    with pytest.raises(UnknownNameError, match="snapshot"):
        TeachingEnv(**{**WARM, "warm_start": "cold"})


def test_warm_start_from_a_file(tmp_path):
    recipe = Recipe(steps=1, examples_per_step=64, seed=1)
    weights, meta = build(recipe)
    save(weights, tmp_path / "mine.npz")
    env = TeachingEnv(**{**WARM, "warm_start": str(tmp_path / "mine.npz")})
    env.reset(seed=0)
    assert weights_sha256(env.student.state()) == meta["sha256"]
