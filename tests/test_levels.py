"""Action levels: the mix allocation rule and its errors; the open level's line checks and charges."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

import distillgym  # noqa: E402,F401
from distillgym.errors import InvalidActionError  # noqa: E402
from distillgym.levels import CellLevel, MixLevel, OpenLevel, allocate, mix_to_action  # noqa: E402
from distillgym.seeding import rng_for  # noqa: E402
from distillgym.tasks import make_suite  # noqa: E402

TINY = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)


@pytest.fixture(scope="module")
def suite():
    return make_suite("arith-v1")


# ---------------------------------------------------------------------------- allocation
def test_largest_remainder_rounding_by_hand():
    # quotas 10 * [0.35, 0.35, 0.3] = 3.5, 3.5, 3.0: floors 3, 3, 3, one left for the first 0.5
    assert allocate(np.array([0.35, 0.35, 0.3]), 10).tolist() == [4, 3, 3]
    # ties broken by the lower index; all-zero weights mean uniform
    assert allocate(np.array([1.0, 1.0, 1.0]), 4).tolist() == [2, 1, 1]
    assert allocate(np.zeros((2, 2)), 6).tolist() == [[2, 2], [1, 1]]
    assert allocate(np.array([0.0, 1.0]), 7).tolist() == [0, 7]


def test_allocation_always_sums_to_the_step_size():
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = rng.random((7, 4)) * (rng.random((7, 4)) < 0.5)
        n = int(rng.integers(0, 5000))
        counts = allocate(w, n)
        assert counts.sum() == n and (counts >= 0).all()
        if w.sum() > 0:
            assert (counts[w == 0] == 0).all()
            assert np.abs(counts - n * w / w.sum()).max() < 1.0


def test_every_mix_is_exactly_representable(suite):
    level = MixLevel(suite, 2048)
    onehot = np.zeros((7, 4))
    onehot[3, 2] = 1
    plan = level.decode(mix_to_action(onehot), 2048)
    assert [(i.skill, i.difficulty, i.n) for i in plan.items] == [("sub", 2, 2048)]
    p = np.arange(28, dtype=float).reshape(7, 4)
    plan = level.decode(mix_to_action(p), 2048)
    np.testing.assert_allclose(plan.info["mix"], p / p.sum(), atol=1e-6)
    assert sum(i.n for i in plan.items) == 2048


def test_mix_action_values_outside_the_box_are_clipped(suite):
    level = MixLevel(suite, 100)
    a = np.full((7, 4), -5.0, dtype=np.float32)
    a[0, 0] = 7.0
    assert [(i.skill, i.n) for i in level.decode(a, 100).items] == [("copy", 100)]
    assert level.space == gym.spaces.Box(-1, 1, (7, 4), np.float32)


@pytest.mark.parametrize(
    "action,match",
    [
        (np.zeros((4, 7)), r"shape \(7, 4\)"),
        (np.zeros(28), r"shape \(7, 4\)"),
        (np.zeros((7, 4), dtype=bool), r"float array"),
        (np.full((7, 4), np.nan), r"NaN or infinite"),
        (np.where(np.eye(7, 4) > 0, np.inf, 0.0), r"NaN or infinite"),
        ("mix", r"float array"),
        (None, r"float array"),
    ],
)
def test_bad_mix_actions_raise_invalid_action_error(suite, action, match):
    with pytest.raises(InvalidActionError, match=match):
        MixLevel(suite, 100).decode(action, 100)


def test_a_mix_env_step_reports_its_allocation():
    env = gym.make("distillgym/ArithMix-v1", **TINY)
    obs, info = env.reset(seed=0)
    assert "loss" in obs and obs["loss"].shape == (7, 4) and np.all(obs["loss"] > 0)
    a = np.full((7, 4), -1.0, np.float32)
    a[2, 0], a[5, 1] = 1.0, 0.0  # weights 1 and 0.5
    obs, r, term, trunc, info = env.step(a)
    alloc = np.array(info["action"]["allocation"])
    assert alloc[2, 0] == 341 and alloc[5, 1] == 171 and alloc.sum() == 512 == info["action"]["n"]
    trained = np.array([[v is not None for v in row] for row in info["train_cell_loss"]])
    assert trained.tolist() == (alloc > 0).tolist()
    assert info["costs"]["examples"] == 512 and info["budget_left"] == 512
    with pytest.raises(InvalidActionError):
        env.step(np.zeros((7, 4), dtype=bool))
    assert env.unwrapped.budget_left == 512  # a rejected action spends nothing


def test_cell_actions_reject_booleans():
    env = gym.make("distillgym/ArithSkills-v1", **TINY)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="not booleans"):
        env.step(np.array([True, False]))


# ---------------------------------------------------------------------------- open level
def _train_lines(suite, skill, level, n, seed=0):
    return [suite.format_line(e) for e in suite.generate(skill, level, rng_for(seed, 1), n, split="train", distinct=True)]


def _part_line(suite, skill, level, part):
    for e in suite.generate(skill, level, rng_for(3, 4), 50, split=part):
        return suite.format_line(e)


def test_open_env_checks_and_counts_every_kind_of_line(suite):
    env = gym.make("distillgym/ArithOpen-v1", **TINY)
    env.reset(seed=0)
    good = _train_lines(suite, "add", 1, 5)
    wrong = good[0].rsplit("=", 1)[0] + "=" + str(int(good[0].rsplit("=", 1)[1]) + 1)
    lines = [
        *good,  # 5 accepted
        good[1],  # duplicate
        wrong,  # wrong answer
        "57+68",  # malformed: no '='
        "57 + 68 = 125",  # malformed: characters outside the alphabet
        "hello",  # malformed
        "1" * 40 + "+1=" + "1" * 40,  # overlong
        "05+3=8",  # off grid: a leading zero is no canonical number
        _part_line(suite, "add", 1, "val"),  # leak of a validation prompt
        _part_line(suite, "mul", 2, "test"),  # leak of a test prompt
        "",  # empty lines are free
        "   ",
    ]
    obs, r, term, trunc, info = env.step("\n".join(lines))
    a = info["action"]
    assert a["accepted"] == 5
    assert a["rejected"] == {
        "over_limit": 0, "overlong": 1, "malformed": 3, "off_grid": 1,
        "leak_val": 1, "leak_test": 1, "wrong": 1, "duplicate": 1,
    }
    assert a["n"] == a["lines"] == 14 == info["costs"]["charged"]  # every non-empty line is charged
    assert info["costs"]["examples"] == 5 and info["costs"]["rejected"] == 9
    assert info["budget_left"] == TINY["budget"] - 14
    trained = sum(v is not None for row in info["train_cell_loss"] for v in row)
    assert trained == 1  # only the accepted add L1 lines reached the student


def test_open_env_lines_beyond_the_step_limit_are_not_read_or_charged(suite):
    env = gym.make("distillgym/ArithOpen-v1", **{**TINY, "examples_per_step": 10})
    env.reset(seed=0)
    lines = _train_lines(suite, "copy", 2, 13)
    _, _, _, _, info = env.step("\n".join(lines))
    assert info["action"]["accepted"] == 10 and info["action"]["rejected"]["over_limit"] == 3
    assert info["costs"]["charged"] == 10


def test_open_env_trains_on_the_written_examples_only(suite):
    env = gym.make("distillgym/ArithOpen-v1", **TINY).unwrapped
    env.reset(seed=0)
    seen = []
    original = env.student.train
    env.student.train = lambda ex, rng=None, **kw: seen.extend(ex) or original(ex, rng, **kw)
    lines = _train_lines(suite, "sub", 0, 20) + ["1+1=3", _part_line(suite, "sub", 0, "test")]
    env.step("\n".join(lines))
    assert sorted(suite.format_line(e) for e in seen) == sorted(lines[:20])
    assert all(e.verified and e.source == "written" for e in seen)


def test_open_env_action_must_be_text(suite):
    env = gym.make("distillgym/ArithOpen-v1", **TINY)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="string with one example per line"):
        env.step(["1+1=2"])
    space = env.action_space
    assert isinstance(space, gym.spaces.Text) and "\n" in space.character_set
    assert space.max_length == 512 * (suite.max_line_len + 1)
    assert OpenLevel.name == "open"


def test_open_env_truncates_a_writer_that_writes_nothing():
    env = gym.make("distillgym/ArithOpen-v1", **TINY)
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, term, trunc, info = env.step("")
        steps += 1
        done = term or trunc
    assert trunc and not term and steps == 4 * 2 and "final" in info


# ---------------------------------------------------------------------------- issue 20, item 14
def test_an_oversized_text_action_raises_like_other_invalid_actions(suite):
    """A 10 MB string (outside Text(0, max_length)) was accepted, charged and used up a step; it is an
    InvalidActionError now, which spends nothing, and its message quotes a summary, not the action."""
    env = gym.make("distillgym/ArithOpen-v1", **TINY)
    env.reset(seed=0)
    limit = env.action_space.max_length
    big = ("57+68=125\n" * (10_000_000 // 10))
    assert len(big) > limit
    with pytest.raises(InvalidActionError, match=f"at most {limit:,} characters") as err:
        env.step(big)
    assert len(str(err.value)) < 600 and "10,000,000 characters" in str(err.value)
    assert env.unwrapped.budget_left == TINY["budget"] and env.unwrapped._t == 0
    _, _, _, _, info = env.step(big[:limit])  # exactly the space's limit is a valid action
    assert info["action"]["n"] == TINY["examples_per_step"]


@pytest.mark.parametrize("level,action", [
    ("mix", np.full((700, 400), np.nan)),
    ("cell", np.arange(1_000_000)),
    ("cell", ["x" * 1_000_000, 0]),
])
def test_invalid_action_messages_quote_a_short_summary(suite, level, action):
    lv = MixLevel(suite, 100) if level == "mix" else CellLevel(suite, 100)
    with pytest.raises(InvalidActionError) as err:
        lv.decode(action, 100)
    assert len(str(err.value)) < 600, str(err.value)[:1000]
