"""Teachers: the registry, whole episodes through the runner, and IOA's rules on hand-made observations."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.harness.runner import run_episode
from distillgym.teachers import (
    TEACHERS,
    IOATeacher,
    SingleSkillTeacher,
    Teacher,
    UniformTeacher,
    make_teacher,
)

TINY = dict(budget=1536, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)
S, D = 7, 4
ACTION_SPACE = gym.spaces.MultiDiscrete([S, D])
SKILLS = ["copy", "successor", "add", "sub", "mul", "compare", "chain"]
COPY, SUCC, ADD, SUB, MUL, CMP, CHAIN = range(7)
# Every registered teacher that runs without an external model; the LLM teacher and the LLM writer
# need one (tests/test_llm.py and tests/test_llm_writer.py build a tiny model and run their episodes).
# The oracle reference (needs_env: it peeks into the env) has its own tests in tests/test_oracle.py.
BUILTIN = sorted(n for n in TEACHERS if n not in ("llm", "llm-writer") and not getattr(TEACHERS[n], "needs_env", False))
LEVEL_ENV = {"cell": "distillgym/ArithSkills-v0", "mix": "distillgym/ArithMix-v1", "open": "distillgym/ArithOpen-v1"}
MIX_SPACE = gym.spaces.Box(-1.0, 1.0, (S, D), np.float32)


def _level(name: str) -> str:
    return TEACHERS[name].levels[0]


def _obs(acc, ref=None):
    acc = np.asarray(acc, dtype=np.float32)
    if acc.ndim == 1:  # one value per skill, spread over its levels
        acc = np.repeat(acc[:, None], D, axis=1)
    ref = np.ones(S, np.float32) if ref is None else np.asarray(ref, np.float32)
    return {"accuracy": acc, "reference": ref, "budget_left": np.array([1.0], np.float32)}


def _ioa(arith_info, **kw) -> IOATeacher:
    t = IOATeacher(**kw)
    t.reset(ACTION_SPACE, arith_info, seed=0)
    return t


# ---------------------------------------------------------------------------- registry
def test_registry_names_and_protocol():
    assert {"random", "uniform", "single-skill", "ioa"} <= set(BUILTIN)
    for name in BUILTIN:
        t = make_teacher(name)
        assert isinstance(t, Teacher)
        assert t.name == name


def test_unknown_teacher_names_the_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        make_teacher("ioaa")
    msg = str(err.value)
    assert "Did you mean 'ioa'" in msg
    for name in TEACHERS:
        assert name in msg


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILTIN)
def test_teacher_completes_an_episode_deterministically(name):
    """Every built-in teacher on an env of its own level (cell teachers on ArithSkills-v0)."""
    env_id = LEVEL_ENV[_level(name)]
    a = run_episode(env_id, name, seed=4, env_kwargs=TINY)
    b = run_episode(env_id, name, seed=4, env_kwargs=TINY)
    assert a["teacher"] == name and a["seed"] == 4
    assert a["examples"] == TINY["budget"]
    if _level(name) == "cell":
        assert len(a["steps"]) == 3
        for rec in a["steps"]:
            assert rec["skill"] in SKILLS and 0 <= rec["difficulty"] < D
    key = ("skill", "difficulty", "allocation", "accepted", "examples")
    actions = [tuple(str(r.get(k)) for k in key) for r in a["steps"]]
    assert actions == [tuple(str(r.get(k)) for k in key) for r in b["steps"]]
    assert a["final_test_accuracy"] == b["final_test_accuracy"]
    assert [r["val_accuracy"] for r in a["steps"]] == [r["val_accuracy"] for r in b["steps"]]
    assert 0.0 <= a["final_test_accuracy"] <= 1.0
    assert a["return"] == pytest.approx(a["val_accuracy_end"] - a["val_accuracy_start"], abs=1e-9)


# doremi needs info["env_config"] to train its reference student (tests/test_mixing.py covers it)
@pytest.mark.parametrize("name", [n for n in BUILTIN if _level(n) in ("cell", "mix") and n != "doremi"])
def test_actions_are_valid_and_seeded(name, arith_info):
    """Offline: 60 decisions on random observations are in the action space and depend only on the seed."""
    level = _level(name)
    space = ACTION_SPACE if level == "cell" else MIX_SPACE

    def play(seed):
        t = make_teacher(name)
        t.reset(space, arith_info, seed=seed)
        rng = np.random.default_rng(123)
        out = []
        for _ in range(60):
            obs = _obs(rng.random((S, D)))
            if level == "cell":
                a = np.asarray(t.act(obs, {}), dtype=np.int64)
            else:
                obs["loss"] = rng.random((S, D)).astype(np.float32) * 3
                a = np.asarray(t.act(obs, {"budget_left": 512}), dtype=np.float32)
            assert space.contains(a), a
            out.append(tuple(a.ravel().tolist()))
        return out

    assert play(1) == play(1)
    if name in ("random", "uniform"):
        assert play(1) != play(2)


# ---------------------------------------------------------------------------- simple teachers
@pytest.mark.parametrize("order", UniformTeacher.ORDERS)
def test_uniform_visits_every_cell_once_per_cycle(order, arith_info):
    t = UniformTeacher(order=order)
    t.reset(ACTION_SPACE, arith_info, seed=0)
    cycles = [[tuple(int(x) for x in t.act(_obs(np.zeros(S)), {})) for _ in range(S * D)] for _ in range(3)]
    all_cells = {(s, d) for s in range(S) for d in range(D)}
    for cycle in cycles:
        assert set(cycle) == all_cells and len(cycle) == S * D
    if order == "shuffled":
        assert cycles[0] != cycles[1]  # a fresh permutation each cycle
    else:
        assert cycles[0] == cycles[1]
    if order == "difficulty-major":
        assert [d for _, d in cycles[0]] == sorted(d for _, d in cycles[0])
    if order == "skill-major":
        assert cycles[0][:D] == [(0, d) for d in range(D)]


def test_uniform_bad_order():
    with pytest.raises(UnknownNameError, match="shuffled"):
        UniformTeacher(order="random")


def test_single_skill_always_returns_the_same_action(arith_info):
    t = SingleSkillTeacher(skill="mul", difficulty=2)
    t.reset(ACTION_SPACE, arith_info, seed=0)
    rng = np.random.default_rng(0)
    actions = []
    for _ in range(20):
        a = t.act(_obs(rng.random((S, D))), {})
        actions.append(a.tolist())
        a[0] = 0  # the caller mutating the array must not change the next action
    assert actions == [[MUL, 2]] * 20
    default = SingleSkillTeacher()
    default.reset(ACTION_SPACE, arith_info)
    assert default.act(_obs(np.zeros(S)), {}).tolist() == [0, 0]


def test_single_skill_bad_arguments(arith_info):
    with pytest.raises(UnknownNameError, match="'mul'"):
        SingleSkillTeacher(skill="mull").reset(ACTION_SPACE, arith_info)
    with pytest.raises(ConfigError, match=r"0\.\.3"):
        SingleSkillTeacher(difficulty=4).reset(ACTION_SPACE, arith_info)


# ---------------------------------------------------------------------------- IOA
def test_ioa_connectivity_from_the_prerequisite_graph(arith_info):
    t = _ioa(arith_info)
    degree = np.zeros(S)
    for skill, pres in arith_info["prerequisites"].items():
        for p in pres:
            degree[SKILLS.index(skill)] += 1
            degree[SKILLS.index(p)] += 1
    np.testing.assert_allclose(t.connectivity, degree / degree.max())
    assert t.connectivity[ADD] == 1.0  # add: successor, sub, mul, chain


def test_ioa_gap_and_severity_formulas(arith_info):
    t = _ioa(arith_info)
    rng = np.random.default_rng(5)
    for _ in range(20):
        acc = rng.random((S, D))
        ref = rng.uniform(0.2, 1.0, S)
        gap, deficient, severity = t.identify(acc, ref)
        p_s = acc.mean(1)
        np.testing.assert_allclose(gap, (ref - p_s) / ref)
        np.testing.assert_array_equal(deficient, gap > 0.3)
        np.testing.assert_allclose(severity, 0.7 * gap + 0.3 * t.connectivity)
    gap, _, _ = t.identify(np.zeros((S, D)), np.zeros(S))
    np.testing.assert_array_equal(gap, np.zeros(S))  # P_T = 0: no gap rather than a division by zero


def test_ioa_starts_with_the_root_skill(arith_info):
    t = _ioa(arith_info)
    assert t.act(_obs(np.zeros(S)), {}).tolist() == [COPY, 0]
    assert t.last_decision["skill"] == "copy" and t.last_decision["gap"] == 1.0
    assert t.last_decision["severity"] == pytest.approx(0.7 * 1.0 + 0.3 * t.connectivity[COPY])
    assert set(t.last_decision["deficient"]) == set(SKILLS)


def test_ioa_unmastered_prerequisite_comes_before_its_dependent(arith_info):
    t = _ioa(arith_info)
    # add is far behind (most severe of all), but its prerequisite successor is not mastered
    acc = np.array([1.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0])
    a = t.act(_obs(acc), {})
    assert a[0] == SUCC
    # once successor is mastered, add is next
    acc[SUCC] = 0.95
    assert t.act(_obs(acc), {})[0] == ADD
    # chain needs add and sub: with add mastered but not sub, sub comes first
    acc[ADD] = 1.0
    acc[MUL] = 1.0
    assert t.act(_obs(acc), {})[0] == SUB


def test_ioa_advances_only_past_mastered_skills(arith_info):
    """Mastered means P_S(k) >= 0.9 * P_T(k): relative to the reference, not absolute."""
    t = _ioa(arith_info)
    ref = np.full(S, 0.5)
    below = np.array([0.44, 0, 0, 0, 0, 0, 0])  # 0.44 < 0.45: copy not mastered
    assert t.act(_obs(below, ref), {})[0] == COPY
    above = np.array([0.46, 0, 0, 0, 0, 0, 0])  # 0.46 >= 0.45: move on, to a dependent of copy
    assert t.act(_obs(above, ref), {})[0] in (SUCC, CMP)


def test_ioa_chosen_skill_always_has_mastered_prerequisites(arith_info):
    t = _ioa(arith_info)
    pre = {SKILLS.index(s): [SKILLS.index(p) for p in ps] for s, ps in arith_info["prerequisites"].items()}
    rng = np.random.default_rng(7)
    for _ in range(300):
        acc = np.clip(rng.random((S, D)) * rng.choice([0.5, 1.2], size=(S, 1)), 0, 1)
        ref = rng.uniform(0.5, 1.0, S)
        mastered = acc.mean(1) >= 0.9 * ref
        k = int(t.act(_obs(acc, ref), {})[0])
        if mastered.all():
            continue
        assert not mastered[k], "an unmastered skill remains, so a mastered one must not be taught"
        assert all(mastered[p] for p in pre[k]), (k, mastered)


def test_ioa_prefers_severity_among_deficient_and_gap_otherwise(arith_info):
    t = _ioa(arith_info)
    # copy mastered; successor (conn 0.5) and compare (conn 0.25) both deficient with equal gaps:
    # the more connected successor is more severe
    acc = np.array([1.0, 0.2, 0, 0, 0, 0.2, 0])
    assert t.act(_obs(acc), {})[0] == SUCC
    # compare slightly further behind, but connectivity still wins on severity: 0.7*0.82+0.3*0.25 < 0.7*0.8+0.3*0.5
    acc = np.array([1.0, 0.2, 0, 0, 0, 0.18, 0])
    assert t.act(_obs(acc), {})[0] == SUCC
    # neither deficient (gaps 0.2 and 0.25 <= 0.3): the largest gap is taught, connectivity aside
    acc = np.array([1.0, 0.8, 0, 0, 0, 0.75, 0])
    assert t.act(_obs(acc), {})[0] == CMP
    # everything mastered: the most severe skill, i.e. the most connected one (add)
    assert t.act(_obs(np.ones(S)), {})[0] == ADD


def test_ioa_difficulty_rises_one_level_only_when_mastered(arith_info):
    t = _ioa(arith_info)
    acc = np.zeros((S, D))
    assert t.act(_obs(acc), {}).tolist() == [COPY, 0]
    acc[COPY, 0] = 0.85  # below 0.9 * 1.0: stay at level 0
    assert t.act(_obs(acc), {}).tolist() == [COPY, 0]
    acc[COPY, 0] = 1.0  # level 0 mastered (skill not): up one level
    assert t.act(_obs(acc), {}).tolist() == [COPY, 1]
    assert t.act(_obs(acc), {}).tolist() == [COPY, 1]  # level 1 not mastered: stay
    acc[COPY, :3] = 1.0  # levels 0..2 mastered at once: still one level per decision
    assert t.act(_obs(acc), {}).tolist() == [COPY, 2]
    assert t.act(_obs(acc), {}).tolist() == [COPY, 3]
    acc[COPY, 3] = 0.5  # mean 0.875: copy still unmastered, level capped at 3
    assert t.act(_obs(acc), {}).tolist() == [COPY, 3]
    # levels are per skill: successor starts at 0
    acc[COPY] = 1.0
    assert t.act(_obs(acc), {}).tolist() == [SUCC, 0]


def test_ioa_level_threshold_is_relative_to_the_reference(arith_info):
    t = _ioa(arith_info)
    ref = np.full(S, 0.6)
    acc = np.zeros((S, D))
    acc[COPY, 0] = 0.55  # >= 0.9 * 0.6 = 0.54
    assert t.act(_obs(acc, ref), {}).tolist() == [COPY, 1]
    t2 = _ioa(arith_info)
    acc[COPY, 0] = 0.53
    assert t2.act(_obs(acc, ref), {}).tolist() == [COPY, 0]


def test_ioa_never_jumps_more_than_one_level(arith_info):
    t = _ioa(arith_info)
    rng = np.random.default_rng(11)
    level = np.zeros(S, dtype=int)
    for _ in range(400):
        acc = rng.random((S, D)) ** 0.3  # mostly high accuracies, so levels do rise
        k, d = (int(x) for x in t.act(_obs(acc), {}))
        assert level[k] <= d <= level[k] + 1
        if d == level[k] + 1:
            assert np.float32(acc[k, level[k]]) >= 0.9  # only after mastering the level it leaves
        level[k] = d
    assert level.max() == D - 1  # the sweep did exercise rising levels


def test_ioa_levels_reset_with_the_episode(arith_info):
    t = _ioa(arith_info)
    acc = np.zeros((S, D))
    acc[COPY, 0] = 1.0
    assert t.act(_obs(acc), {})[1] == 1
    t.reset(ACTION_SPACE, arith_info, seed=0)
    acc[COPY, 0] = 0.0
    assert t.act(_obs(acc), {})[1] == 0


@pytest.mark.parametrize("kw", [dict(mastery_ratio=1.5), dict(gap_weight=-0.1), dict(deficiency_threshold="a")])
def test_ioa_bad_arguments(kw):
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        IOATeacher(**kw)
