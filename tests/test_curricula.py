"""Curriculum baselines (TSCL, learning progress, DUMP-UCB, error targeting, edge of learnability):
their decision rules on hand-made observations, seeding, argument checks, and one small real
episode each."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import distillgym.teachers.dump_ucb
import distillgym.teachers.edge
import distillgym.teachers.error_targeting
import distillgym.teachers.learning_progress
import distillgym.teachers.tscl  # noqa: F401  (the modules under test)
from distillgym.errors import ConfigError, UnknownNameError
from distillgym.harness.runner import run_episode
from distillgym.teachers import TEACHERS, Teacher, make_teacher
from distillgym.teachers.dump_ucb import DumpUCBTeacher
from distillgym.teachers.edge import EdgeTeacher
from distillgym.teachers.error_targeting import ErrorTargetingTeacher
from distillgym.teachers.learning_progress import LearningProgressTeacher
from distillgym.teachers.tscl import TSCLSamplingTeacher, TSCLWindowTeacher, slope

NAMES = ["tscl-window", "tscl-sampling", "learning-progress", "dump-ucb", "error-targeting", "edge"]
SKILLS = ["copy", "successor", "add", "sub", "mul", "compare", "chain"]
S, D = len(SKILLS), 4
N = S * D
ACTION_SPACE = gym.spaces.MultiDiscrete([S, D])
INFO = {"skills": SKILLS, "prerequisites": {}, "n_difficulties": D, "examples_per_step": 512, "budget": 2048}
SMALL = dict(budget=2048, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)


def _obs(acc) -> dict:
    acc = np.asarray(acc, dtype=np.float32).reshape(S, D)
    return {"accuracy": acc, "reference": np.ones(S, np.float32), "budget_left": np.array([1.0], np.float32)}


def _grid(**cells: float) -> np.ndarray:
    """An (S, D) accuracy grid, 0 except the named cells, e.g. ``add_1=0.5``."""
    g = np.zeros((S, D))
    for key, v in cells.items():
        skill, d = key.rsplit("_", 1)
        g[SKILLS.index(skill), int(d)] = v
    return g


def _step_info(skill: int, d: int) -> dict:
    return {"action": {"skill": SKILLS[skill], "difficulty": d, "n": 512}, "errors": []}


def _made(teacher, seed=0):
    teacher.reset(ACTION_SPACE, dict(INFO), seed=seed)
    return teacher


def _cell(action) -> tuple[int, int]:
    a = np.asarray(action)
    assert ACTION_SPACE.contains(a.astype(np.int64)), a
    return int(a[0]), int(a[1])


# ---------------------------------------------------------------------------- registry and docs
def test_registered_with_their_names_and_documented():
    for name in NAMES:
        assert name in TEACHERS
        t = make_teacher(name)
        assert isinstance(t, Teacher) and t.name == name
        first = (type(t).__doc__ or "").strip().splitlines()[0]
        assert first and any(ch.isdigit() for ch in first), first  # names its source (author/year)


# ---------------------------------------------------------------------------- TSCL window
def test_slope_is_least_squares():
    x, y = np.arange(6), np.array([0.1, 0.3, 0.2, 0.6, 0.5, 0.9])
    assert slope(x, y) == pytest.approx(np.polyfit(x, y, 1)[0])
    assert slope([3, 3], [0.0, 1.0]) == 0.0


@pytest.mark.parametrize("absolute", [True, False])
def test_tscl_window_picks_the_steepest_slope(absolute):
    t = _made(TSCLWindowTeacher(epsilon=0.0, absolute=absolute))
    t.act(_obs(_grid(mul_3=1.0)), {})  # records step 0
    for k in range(1, 5):  # add_1 rises by 0.05 per step, mul_3 falls by 0.1, the rest is flat
        t.update(_obs(_grid(add_1=0.05 * k, mul_3=1.0 - 0.1 * k)), 0.0, False, False, _step_info(0, 0))
    q = t.slopes().reshape(S, D)
    assert q[SKILLS.index("mul"), 3] == pytest.approx(-0.1, rel=1e-5)
    assert q[SKILLS.index("add"), 1] == pytest.approx(0.05, rel=1e-5)
    assert np.count_nonzero(q) == 2
    expected = (SKILLS.index("mul"), 3) if absolute else (SKILLS.index("add"), 1)
    for _ in range(5):
        assert _cell(t.act(_obs(np.zeros(N)), {})) == expected


def test_tscl_window_forgets_points_older_than_the_window():
    t = _made(TSCLWindowTeacher(window=3, epsilon=0.0))
    t.act(_obs(np.zeros(N)), {})
    t.update(_obs(_grid(sub_2=0.9)), 0.0, False, False, {})  # a jump, then flat
    t.update(_obs(_grid(sub_2=0.9, chain_0=0.1)), 0.0, False, False, {})
    assert _cell(t.act(_obs(np.zeros(N)), {})) == (SKILLS.index("sub"), 2)
    t.update(_obs(_grid(sub_2=0.9, chain_0=0.2)), 0.0, False, False, {})  # the jump leaves the window
    q = t.slopes().reshape(S, D)
    assert q[SKILLS.index("sub"), 2] == 0.0
    assert _cell(t.act(_obs(np.zeros(N)), {})) == (SKILLS.index("chain"), 0)


def test_tscl_window_epsilon_and_boltzmann_probabilities():
    t = _made(TSCLWindowTeacher(epsilon=0.1))
    t.act(_obs(np.zeros(N)), {})
    t.update(_obs(_grid(copy_3=0.5)), 0.0, False, False, {})
    t.act(_obs(np.zeros(N)), {})
    p = t.last_decision["probabilities"].reshape(S, D)
    assert p[0, 3] == pytest.approx(0.9 + 0.1 / N) and p.sum() == pytest.approx(1.0)
    assert np.allclose(np.delete(p.reshape(-1), 3), 0.1 / N)

    b = _made(TSCLWindowTeacher(policy="boltzmann", temperature=0.05))
    b.act(_obs(np.zeros(N)), {})
    b.update(_obs(_grid(copy_3=0.5, add_0=0.25)), 0.0, False, False, {})
    b.act(_obs(np.zeros(N)), {})
    v = np.abs(b.slopes())
    e = np.exp(v / 0.05)
    assert np.allclose(b.last_decision["probabilities"], e / e.sum())


def test_tscl_window_observe_chosen_tries_every_cell_first():
    t = _made(TSCLWindowTeacher(epsilon=0.0, observe="chosen"))
    seen = []
    for _ in range(N):
        s, d = _cell(t.act(_obs(np.zeros(N)), {}))
        seen.append((s, d))
        t.update(_obs(np.zeros(N)), 0.0, False, False, _step_info(s, d))
    assert len(set(seen)) == N  # an untried cell (slope 1) beats every tried, flat cell (slope 0)
    assert all(len(sc) == 2 for sc in t.scores)  # the reset score and the one after its own step


# ---------------------------------------------------------------------------- TSCL sampling
def test_tscl_sampling_draws_recent_changes_and_takes_the_largest():
    t = _made(TSCLSamplingTeacher())
    a0 = _cell(t.act(_obs(np.zeros(N)), {}))
    assert np.isinf(t.last_decision["draws"]).all() and 0 <= a0[0] < S  # nothing recorded: all first
    prev = np.zeros(N)
    for k, m in enumerate([0.5, 0.1, 0.4], start=1):  # mul_2 changes by +0.5 / -0.4 / +0.3; chain_1 by 0.1
        prev = _grid(mul_2=m, chain_1=0.1 * k)
        t.update(_obs(prev), 0.0, False, False, {})
    i = SKILLS.index("mul") * D + 2
    assert list(t.changes[i]) == pytest.approx([0.5, -0.4, 0.3])
    assert list(t.changes[SKILLS.index("chain") * D + 1]) == pytest.approx([0.1, 0.1, 0.1])
    draws = set()
    for _ in range(30):
        assert _cell(t.act(_obs(prev), {})) == (SKILLS.index("mul"), 2)
        draws.add(round(float(t.last_decision["draws"][i]), 6))
    assert draws <= {0.5, -0.4, 0.3} and len(draws) > 1  # a random recent change each time


def test_tscl_sampling_window_and_untried_priority():
    t = _made(TSCLSamplingTeacher(window=2, observe="chosen"))
    seen = set()
    acc = np.zeros(N)
    for step in range(N):
        s, d = _cell(t.act(_obs(acc), {}))
        assert (s, d) not in seen  # a never-tried cell always comes before a tried one
        seen.add((s, d))
        acc = acc.copy()
        acc[s * D + d] = 0.01 * (step + 1)
        t.update(_obs(acc), 0.0, False, False, _step_info(s, d))
    assert len(seen) == N
    i = SKILLS.index("add") * D + 1
    assert len(t.changes[i]) == 1
    for v in (0.5, 0.6, 0.2):  # window 2 keeps the last two changes of the cell
        acc = acc.copy()
        acc[i] = v
        t.update(_obs(acc), 0.0, False, False, _step_info(SKILLS.index("add"), 1))
    assert list(t.changes[i]) == pytest.approx([0.1, -0.4])


# ---------------------------------------------------------------------------- learning progress
def test_learning_progress_emas_and_reweighting():
    t = _made(LearningProgressTeacher())
    x0, x1 = _grid(add_1=0.2), _grid(add_1=0.6, copy_0=1.0)
    t.act(_obs(x0), {})
    assert np.all(t.learning_progress() == 0)
    t.update(_obs(x1), 0.0, False, False, {})
    f = 0.1 * x1.reshape(-1) + 0.9 * x0.reshape(-1)
    s = 0.1 * f + 0.9 * x0.reshape(-1)
    assert np.allclose(t.fast, f) and np.allclose(t.slow, s)

    def rw(p, th=0.1):
        return p * (1 - th) / (p + th * (1 - 2 * p))

    assert np.allclose(t.learning_progress(), np.abs(rw(f) - rw(s)))
    raw = _made(LearningProgressTeacher(reweight=False, slow_alpha=0.5))
    raw.act(_obs(x0), {})
    raw.update(_obs(x1), 0.0, False, False, {})
    assert np.allclose(raw.slow, 0.5 * f + 0.5 * x0.reshape(-1))
    assert np.allclose(raw.learning_progress(), np.abs(f - raw.slow))


def test_learning_progress_samples_in_proportion_and_explores():
    t = _made(LearningProgressTeacher(), seed=3)
    lp = np.zeros(N)
    lp[5], lp[9] = 0.3, 0.1
    p = t.distribution(lp)
    expected = 0.2 / N + 0.8 * lp / lp.sum()
    assert np.allclose(p, expected)
    assert np.allclose(t.distribution(np.zeros(N)), 1.0 / N)  # no progress anywhere: uniform
    # the sampler follows it: LP is held fixed at [.., 0.3 at 5, 0.1 at 9, ..]
    t.learning_progress = lambda: lp  # type: ignore[method-assign]
    t.fast = np.zeros(N)
    counts = (
        np.bincount(
            [int(np.ravel_multi_index(_cell(t.act(_obs(np.zeros(N)), {})), (S, D))) for _ in range(4000)], minlength=N
        )
        / 4000
    )
    assert counts[5] == pytest.approx(expected[5], abs=0.03) and counts[9] == pytest.approx(expected[9], abs=0.03)
    others = np.delete(counts, [5, 9])
    assert (others > 0).sum() >= N - 4  # the 20% uniform share reaches the zero-progress cells
    assert others.sum() == pytest.approx(0.2 * (N - 2) / N, abs=0.03)


def test_learning_progress_sigmoid_weighting_zeroes_cells_without_progress():
    t = _made(LearningProgressTeacher(weighting="sigmoid", explore=0.0))
    lp = np.zeros(N)
    lp[[1, 2, 3]] = [0.1, 0.2, 0.3]
    p = t.distribution(lp)
    assert p[0] == 0 and np.all(p[4:] == 0) and p[3] > p[2] > p[1] > 0 and p.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------- DUMP-UCB
def test_dump_ucb_score_formula_and_softmax():
    t = _made(DumpUCBTeacher(window=2))
    assert np.allclose(t.probabilities(), 1.0 / N)  # nothing seen: every score is 0
    t.act(_obs(np.zeros(N)), {})
    for r, (s, d) in [(0.3, (2, 1)), (-0.1, (2, 1)), (0.05, (0, 0)), (0.2, (2, 1))]:
        t.update(_obs(np.zeros(N)), r, False, False, _step_info(s, d))
    counts = np.zeros(N)
    counts[2 * D + 1], counts[0] = 3, 1
    mean_abs = np.zeros(N)
    mean_abs[2 * D + 1] = (0.1 + 0.2) / 2  # window 2: the last two |rewards| of add_1
    mean_abs[0] = 0.05
    expected = mean_abs + np.sqrt(2 * np.log(4 + 1) / (counts + 1))
    assert np.allclose(t.scores(), expected)
    e = np.exp((expected - expected.max()) / 0.1)
    assert np.allclose(t.probabilities(), e / e.sum())
    t.act(_obs(np.zeros(N)), {})
    assert np.allclose(t.last_decision["probabilities"], e / e.sum())


def test_dump_ucb_credits_the_chosen_cell_without_info():
    t = _made(DumpUCBTeacher())
    s, d = _cell(t.act(_obs(np.zeros(N)), {}))
    t.update(_obs(np.zeros(N)), -0.25, False, False, {})
    assert t.counts[s * D + d] == 1 and t.total == 1 and list(t.recent[s * D + d]) == [0.25]


# ---------------------------------------------------------------------------- error targeting
def test_error_targeting_picks_the_worst_cell():
    acc = np.full((S, D), 0.9)
    acc[SKILLS.index("sub"), 2] = 0.25
    acc[SKILLS.index("mul"), 3] = 0.5
    t = _made(ErrorTargetingTeacher())
    assert _cell(t.act(_obs(acc), {})) == (SKILLS.index("sub"), 2)


def test_error_targeting_ties_go_to_lowest_difficulty_then_skill():
    acc = np.full((S, D), 0.9)
    acc[SKILLS.index("mul"), 1] = acc[SKILLS.index("add"), 3] = acc[SKILLS.index("chain"), 1] = 0.0
    t = _made(ErrorTargetingTeacher())
    assert _cell(t.act(_obs(acc), {})) == (SKILLS.index("mul"), 1)
    assert _cell(t.act(_obs(np.zeros((S, D))), {})) == (0, 0)


def test_error_targeting_sampled_errors_break_ties():
    acc = np.full((S, D), 0.9)
    acc[SKILLS.index("add"), 0] = acc[SKILLS.index("mul"), 2] = 0.5
    errors = [{"skill": "mul", "difficulty": 2, "prompt": "", "student": "", "gold": ""}] * 3 + [
        {"skill": "add", "difficulty": 0, "prompt": "", "student": "", "gold": ""}
    ]
    plain = _made(ErrorTargetingTeacher())
    assert _cell(plain.act(_obs(acc), {"errors": errors})) == (SKILLS.index("add"), 0)
    weighted = _made(ErrorTargetingTeacher(sampled_error_weight=0.1))
    assert _cell(weighted.act(_obs(acc), {"errors": errors})) == (SKILLS.index("mul"), 2)
    assert weighted.error_share({"errors": errors})[SKILLS.index("mul"), 2] == pytest.approx(0.75)


# ---------------------------------------------------------------------------- edge
def test_edge_picks_the_cell_closest_to_the_target():
    acc = _grid(copy_0=1.0, add_2=0.45, mul_1=0.7, chain_3=0.2)
    t = _made(EdgeTeacher())
    assert _cell(t.act(_obs(acc), {})) == (SKILLS.index("add"), 2)
    hi = _made(EdgeTeacher(target=0.8))
    assert _cell(hi.act(_obs(acc), {})) == (SKILLS.index("mul"), 1)


def test_edge_breaks_ties_at_random_among_the_closest():
    acc = _grid(add_2=0.4, mul_1=0.6, copy_0=1.0)
    t = _made(EdgeTeacher(), seed=5)
    picks = {_cell(t.act(_obs(acc), {})) for _ in range(60)}
    assert picks == {(SKILLS.index("add"), 2), (SKILLS.index("mul"), 1)}


def test_edge_gaussian_mode_samples_by_utility():
    acc = np.random.default_rng(0).random((S, D))
    t = _made(EdgeTeacher(mode="gaussian", sigma=0.2))
    t.act(_obs(acc), {})
    u = np.exp(-((acc.reshape(-1) - 0.5) ** 2) / (2 * 0.2**2))
    assert np.allclose(t.last_decision["probabilities"], u / u.sum())


# ---------------------------------------------------------------------------- seeding
def _play(name: str, seed: int, steps: int = 40) -> list[tuple[int, int]]:
    t = _made(make_teacher(name), seed=seed)
    rng = np.random.default_rng(7)  # the same observation stream for every call
    acc = rng.random((S, D)) * 0.2
    out = []
    for _ in range(steps):
        s, d = _cell(t.act(_obs(acc), {"errors": []}))
        out.append((s, d))
        acc = np.clip(acc + rng.normal(0, 0.05, (S, D)), 0, 1)
        acc[s, d] = min(1.0, acc[s, d] + 0.1)
        t.update(_obs(acc), float(rng.normal(0, 0.02)), False, False, _step_info(s, d))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_decisions(name):
    assert _play(name, 11) == _play(name, 11)
    if name in ("tscl-window", "learning-progress", "dump-ucb", "tscl-sampling"):
        assert _play(name, 11) != _play(name, 12)


# ---------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize(
    "cls, kwargs, exc, match",
    [
        (TSCLWindowTeacher, {"window": 1}, ConfigError, "window"),
        (TSCLWindowTeacher, {"epsilon": 1.5}, ConfigError, r"\[0, 1\]"),
        (TSCLWindowTeacher, {"temperature": 0}, ConfigError, "temperature"),
        (TSCLWindowTeacher, {"policy": "greedy"}, UnknownNameError, "epsilon-greedy"),
        (TSCLWindowTeacher, {"observe": "some"}, UnknownNameError, "chosen"),
        (TSCLSamplingTeacher, {"window": 0}, ConfigError, ">= 1"),
        (TSCLSamplingTeacher, {"absolute": "yes"}, ConfigError, "True or False"),
        (LearningProgressTeacher, {"alpha": 0}, ConfigError, r"\(0, 1\]"),
        (LearningProgressTeacher, {"explore": -0.1}, ConfigError, r"\[0, 1\]"),
        (LearningProgressTeacher, {"p_theta": 1.0}, ConfigError, r"\(0, 1\)"),
        (LearningProgressTeacher, {"weighting": "softmax"}, UnknownNameError, "proportional"),
        (DumpUCBTeacher, {"window": 0}, ConfigError, "window"),
        (DumpUCBTeacher, {"temperature": 0.0}, ConfigError, "> 0"),
        (DumpUCBTeacher, {"exploration_weight": -1}, ConfigError, ">= 0"),
        (ErrorTargetingTeacher, {"sampled_error_weight": -0.5}, ConfigError, ">= 0"),
        (EdgeTeacher, {"target": 1.5}, ConfigError, r"\[0, 1\]"),
        (EdgeTeacher, {"sigma": 0}, ConfigError, "> 0"),
        (EdgeTeacher, {"mode": "nearest"}, UnknownNameError, "closest"),
    ],
)
def test_bad_arguments(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(**kwargs)


# ---------------------------------------------------------------------------- real episodes
class _Recorder:
    """Wraps a teacher and records what it was shown and what it answered."""

    def __init__(self, teacher):
        self.teacher, self.name = teacher, teacher.name
        self.calls: list[tuple] = []
        self.actions: list[np.ndarray] = []

    def reset(self, action_space, info, seed=None):
        self.calls.append(("reset", action_space, info, seed))
        self.teacher.reset(action_space, info, seed=seed)

    def act(self, observation, info):
        self.calls.append(("act", observation, info))
        a = self.teacher.act(observation, info)
        self.actions.append(np.array(a, copy=True))
        return a

    def update(self, observation, reward, terminated, truncated, info):
        self.calls.append(("update", observation, reward, terminated, truncated, info))
        self.teacher.update(observation, reward, terminated, truncated, info)


def _replay(name: str, calls: list[tuple]) -> list[np.ndarray]:
    """The actions a fresh teacher takes when shown exactly the recorded calls."""
    t, out = make_teacher(name), []
    for c in calls:
        if c[0] == "reset":
            t.reset(c[1], c[2], seed=c[3])
        elif c[0] == "act":
            out.append(np.array(t.act(c[1], c[2]), copy=True))
        else:
            t.update(*c[1:])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_real_episode_is_valid_and_the_teacher_is_seeded(name):
    """One small real episode; the teacher, replayed on the same inputs with the same seed,
    takes the same actions (a second env run would repeat ~5 s of training per teacher)."""
    rec = _Recorder(make_teacher(name))
    a = run_episode("distillgym/ArithSkills-v0", rec, seed=0, env_kwargs=SMALL)
    assert a["teacher"] == name and len(a["steps"]) == 4 and a["examples"] == SMALL["budget"]
    assert len(rec.actions) == 4
    for act, step in zip(rec.actions, a["steps"], strict=True):
        s, d = _cell(act)
        assert (SKILLS[s], d) == (step["skill"], step["difficulty"])
    assert 0.0 <= a["final_test_accuracy"] <= 1.0
    replayed = _replay(name, rec.calls)
    assert [x.tolist() for x in replayed] == [x.tolist() for x in rec.actions]


@pytest.mark.slow
def test_two_real_runs_with_the_same_seed_agree():
    a = run_episode("distillgym/ArithSkills-v0", "tscl-window", seed=0, env_kwargs=SMALL)
    b = run_episode("distillgym/ArithSkills-v0", "tscl-window", seed=0, env_kwargs=SMALL)
    assert [(r["skill"], r["difficulty"]) for r in a["steps"]] == [(r["skill"], r["difficulty"]) for r in b["steps"]]
    assert a["final_test_accuracy"] == b["final_test_accuracy"]
    assert [r["val_accuracy"] for r in a["steps"]] == [r["val_accuracy"] for r in b["steps"]]
