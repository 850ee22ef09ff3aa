"""The headroom search's policy family (teachers/family.py, fixed_mix.py, schedules.py, adaptive_mix.py):
each rule on hand-made observations, each member on the mix and cell levels of a real env, the
source axis, and the errors of bad arguments."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.harness.runner import run_episode
from distillgym.teachers import TEACHERS, make_teacher
from distillgym.teachers.family import cell_prerequisites, skill_depths

S, D = 7, 4
SKILLS = ["copy", "successor", "add", "sub", "mul", "compare", "chain"]
MIX = gym.spaces.Box(-1.0, 1.0, (S, D), np.float32)
CELL = gym.spaces.MultiDiscrete([S, D])
FAMILY = ["fixed-mix", "dirichlet-mix", "easy-to-hard", "warmup-equal", "prereq-first", "error-mix", "progress-mix",
          "mastery-gated"]
TINY = dict(budget=1024, examples_per_step=256, n_val_per_cell=4, n_test_per_cell=4, device="cpu")


def _obs(acc=None, left=1.0):
    acc = np.zeros((S, D)) if acc is None else np.asarray(acc, dtype=float)
    return {"accuracy": acc.astype(np.float32), "reference": np.ones(S, np.float32),
            "budget_left": np.array([left], np.float32)}


def _mix(action) -> np.ndarray:
    """The mix an action means (the mix level's rule)."""
    w = (np.clip(np.asarray(action, dtype=float), -1, 1) + 1) / 2
    return w / w.sum()


def _teacher(name, info, space=MIX, seed=0, **kw):
    t = make_teacher(name, **kw)
    t.reset(space, {**info, "level": "cell" if space is CELL else "mix"}, seed=seed)
    return t


def test_every_member_is_registered_and_names_its_source():
    for name in FAMILY:
        cls = TEACHERS[name]
        assert cls.name == name and set(cls.levels) == {"mix", "cell", "source-mix"}
        module_doc = __import__(cls.__module__, fromlist=["x"]).__doc__
        assert any(w in module_doc for w in ("et al.", "Bloom", "LLM2LLM")), name


def test_cell_graph_and_depths_follow_the_prerequisites(arith_info):
    pre = cell_prerequisites(SKILLS, arith_info["prerequisites"], D)
    assert pre[0] == []                                      # copy L0: none
    assert pre[1] == [0]                                     # copy L1 needs copy L0
    add = SKILLS.index("add")
    assert sorted(pre[add * D + 2]) == sorted([add * D + 1, SKILLS.index("successor") * D + 2])
    depth = dict(zip(SKILLS, skill_depths(SKILLS, arith_info["prerequisites"]), strict=True))
    assert depth["copy"] == 0 and depth["successor"] == 1 and depth["add"] == 2 and depth["chain"] == 4
    with pytest.raises(ConfigError, match="cycle"):
        skill_depths(["a", "b"], {"a": ["b"], "b": ["a"]})


# ---------------------------------------------------------------------------- fixed mixes
def test_fixed_mix_profiles_and_leave_out(arith_info):
    t = _teacher("fixed-mix", arith_info, difficulty_weights=[4, 3, 2, 1], leave_out=["mul", "chain:3", ":0"])
    p = _mix(t.act(_obs(), {}))
    assert np.all(p[SKILLS.index("mul")] == 0) and p[SKILLS.index("chain"), 3] == 0 and np.all(p[:, 0] == 0)
    copy = p[0]
    assert copy[1] / copy[2] == pytest.approx(3 / 2) and copy[2] / copy[3] == pytest.approx(2)
    eq = _mix(_teacher("fixed-mix", arith_info).act(_obs(), {}))
    assert np.allclose(eq, 1 / (S * D))                      # no arguments: the equal mix
    deep = _mix(_teacher("fixed-mix", arith_info, depth_weights=[3, 1]).act(_obs(), {}))
    assert deep[0, 0] == pytest.approx(3 * deep[SKILLS.index("chain"), 0])   # depth 0 weight 3, deeper ones 1
    sw = _mix(_teacher("fixed-mix", arith_info, skill_weights={"add": 2.0}).act(_obs(), {}))
    assert sw[2, 0] == pytest.approx(2 * sw[0, 0])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"leave_out": ["mull"]}, UnknownNameError, "Did you mean 'mul'"),
    ({"leave_out": ["add:7"]}, ConfigError, "difficulties are 0..3"),
    ({"leave_out": "mul"}, ConfigError, "list of strings"),
    ({"difficulty_weights": [1, 2]}, ConfigError, "list of 4 non-negative"),
    ({"skill_weights": {"ad": 1}}, UnknownNameError, "Did you mean 'add'"),
    ({"weights": [[1, 2]]}, ConfigError, r"shape \(7, 4\)"),
    ({"leave_out": ["copy", "successor", "add", "sub", "mul", "compare", "chain"]}, ConfigError, "weight 0"),
])
def test_fixed_mix_bad_arguments_say_what_is_expected(arith_info, kwargs, error, match):
    with pytest.raises(error, match=match):
        _teacher("fixed-mix", arith_info, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"cell_mode": "max"}, "cell_mode"), ({"source_shares": [1, -1]}, "source_shares"),
    ({"depth_weights": []}, "depth_weights"),
])
def test_family_arguments_are_checked_when_built(kwargs, match):
    with pytest.raises((ConfigError, UnknownNameError), match=match):
        make_teacher("fixed-mix", **kwargs)


@pytest.mark.parametrize("name, kwargs", [("dirichlet-mix", {"alpha": 0}), ("easy-to-hard", {"width": 0}),
                                          ("warmup-equal", {"warmup": 1.5}), ("error-mix", {"floor": -0.1}),
                                          ("progress-mix", {"smoothing": 1.0}), ("mastery-gated", {"unlocked": "x"})])
def test_bad_rule_arguments_raise(name, kwargs):
    with pytest.raises((ConfigError, UnknownNameError)):
        make_teacher(name, **kwargs)


def test_dirichlet_mix_is_a_fixed_policy_of_its_arguments(arith_info):
    a = _teacher("dirichlet-mix", arith_info, seed=1, alpha=0.3, draw=2).act(_obs(), {})
    b = _teacher("dirichlet-mix", arith_info, seed=99, alpha=0.3, draw=2).act(_obs(np.ones((S, D)), 0.1), {})
    c = _teacher("dirichlet-mix", arith_info, seed=1, alpha=0.3, draw=3).act(_obs(), {})
    assert np.array_equal(a, b)                               # not the episode seed, not the observation
    assert not np.array_equal(a, c)
    flat = [_mix(_teacher("dirichlet-mix", arith_info, alpha=al, draw=0).act(_obs(), {})).max() for al in (0.3, 30.0)]
    assert flat[0] > flat[1]                                  # small concentration: a peaked mix


# ---------------------------------------------------------------------------- schedules
def test_easy_to_hard_moves_its_window(arith_info):
    t = _teacher("easy-to-hard", arith_info, width=0.5)
    for left, centre in ((1.0, 0.0), (0.5, 1.5), (0.0, 3.0)):
        prof = np.exp(-0.5 * ((np.arange(D) - centre) / 0.5) ** 2)
        p = _mix(t.act(_obs(left=left), {}))
        assert np.allclose(p, np.tile(prof / prof.sum() / S, (S, 1)), atol=1e-6)
    assert _mix(t.act(_obs(left=1.0), {}))[:, 0].sum() > 0.85


def test_warmup_equal_and_prereq_first(arith_info):
    w = _teacher("warmup-equal", arith_info, warmup=0.3, max_difficulty=1)
    early, late = _mix(w.act(_obs(left=0.8), {})), _mix(w.act(_obs(left=0.6), {}))
    assert np.all(early[:, 2:] == 0) and np.allclose(early[:, :2], 1 / (S * 2))
    assert np.allclose(late, 1 / (S * D))
    p = _teacher("prereq-first", arith_info, switch=0.5)
    first = _mix(p.act(_obs(left=1.0), {}))
    needed = {"copy", "successor", "add", "sub"}               # the skills another skill needs
    assert {SKILLS[s] for s in range(S) if first[s].sum() > 0} == needed
    assert np.allclose(_mix(p.act(_obs(left=0.4), {})), 1 / (S * D))   # then every (evaluated) cell


def test_prereq_first_with_target_cells(arith_info):
    ew = np.zeros((S, D))
    ew[SKILLS.index("add")] = ew[SKILLS.index("sub")] = 1.0
    info = {**arith_info, "eval_weights": ew.tolist()}
    p = _teacher("prereq-first", info, switch=0.5, keep=0.25)
    first = _mix(p.act(_obs(left=1.0), {}))
    assert {SKILLS[s] for s in range(S) if first[s].sum() > 0} == {"copy", "successor"}
    late = _mix(p.act(_obs(left=0.2), {}))
    assert late[SKILLS.index("add"), 0] == pytest.approx(4 * late[0, 0])   # keep 0.25 on the prerequisites
    assert late[SKILLS.index("mul")].sum() == 0


# ---------------------------------------------------------------------------- adaptive rules
def test_error_mix_is_proportional_to_error_plus_floor(arith_info):
    rng = np.random.default_rng(0)
    acc = rng.random((S, D)).round(3)
    p = _mix(_teacher("error-mix", arith_info, floor=0.05).act(_obs(acc), {}))
    want = (1 - acc + 0.05) / (1 - acc + 0.05).sum()
    assert np.allclose(p, want, atol=1e-6)
    t = _teacher("error-mix", arith_info, floor=0.0)
    p = _mix(t.act(_obs(np.ones((S, D))), {}))
    assert np.allclose(p, 1 / (S * D)) and "fallback" in t.last_decision


def test_progress_mix_follows_the_change_of_accuracy(arith_info):
    t = _teacher("progress-mix", arith_info, floor=0.01, smoothing=0.0)
    assert np.allclose(_mix(t.act(_obs(np.zeros((S, D))), {})), 1 / (S * D))   # nothing measured yet
    acc = np.zeros((S, D))
    acc[2, 1] = 0.5
    p = _mix(t.act(_obs(acc), {}))
    assert p[2, 1] == pytest.approx((0.5 + 0.01) / (0.5 + 0.01 * S * D))


def test_mastery_gated_unlocks_and_latches(arith_info):
    t = _teacher("mastery-gated", arith_info, threshold=0.8)
    p = _mix(t.act(_obs(), {}))
    assert p[0, 0] == 1.0                                      # only copy L0 has no prerequisites
    acc = np.zeros((S, D))
    acc[0, 0] = 0.9
    p = _mix(t.act(_obs(acc), {}))
    assert p[0, 1] > 0 and p[1, 0] > 0 and p[2, 0] == 0      # copy L1, successor L0 unlocked; add L0 needs successor
    p = _mix(t.act(_obs(np.zeros((S, D))), {}))              # accuracy fell again: still unlocked
    assert p[0, 1] > 0 and p[1, 0] > 0
    err = _teacher("mastery-gated", arith_info, threshold=0.8, unlocked="error", locked=0.1, floor=0.0)
    acc = np.zeros((S, D))
    acc[0, 0] = 0.9
    p = _mix(err.act(_obs(acc), {}))
    # unlocked: copy L0 (error 0.1), copy L1 and successor L0 (error 1); locked cells weigh 0.1
    assert p[0, 0] == pytest.approx(0.1 * p[1, 0]) and p[2, 0] == pytest.approx(0.1 * p[1, 0])
    assert p[0, 1] == pytest.approx(p[1, 0])


# ---------------------------------------------------------------------------- cell level and the source axis
def test_cell_mode_sample_follows_the_mix_and_argmax_takes_the_largest(arith_info):
    t = _teacher("fixed-mix", arith_info, space=CELL, seed=3, leave_out=[":1", ":2", ":3"],
                 skill_weights=[4, 1, 1, 1, 1, 1, 1])
    picks = np.array([t.act(_obs(), {}) for _ in range(2000)])
    assert np.all(picks[:, 1] == 0)                            # only difficulty 0 has weight
    assert np.mean(picks[:, 0] == 0) == pytest.approx(0.4, abs=0.04)   # 4 / 10 of the weight on copy
    again = _teacher("fixed-mix", arith_info, space=CELL, seed=3, leave_out=[":1", ":2", ":3"],
                     skill_weights=[4, 1, 1, 1, 1, 1, 1])
    assert np.array_equal(picks[:50], np.array([again.act(_obs(), {}) for _ in range(50)]))
    acc = np.full((S, D), 0.5)
    acc[4, 2] = acc[5, 1] = 0.0
    arg = _teacher("error-mix", arith_info, space=CELL, cell_mode="argmax")
    assert list(arg.act(_obs(acc), {})) == [4, 2]             # ties: the lowest flat index


def test_source_axis_multiplies_cell_weights_by_source_shares(arith_info):
    space = gym.spaces.Box(-1.0, 1.0, (S, D, 3), np.float32)
    info = {**arith_info, "level": "source-mix",
            "action": {"level": "source-mix", "action_shape": [S, D, 3], "sources": ["verified", "buggy", "noisy"],
                       "rule": "w = (clip(a, -1, 1) + 1) / 2 over cells x sources; units by largest remainder"}}
    t = make_teacher("error-mix", floor=0.0, source_shares=[2, 1, 1])
    t.reset(space, info, seed=0)
    acc = np.full((S, D), 0.5)
    acc[0, 0] = 0.0
    a = t.act(_obs(acc), {})
    assert a.shape == (S, D, 3) and space.contains(a)
    p = _mix(a)
    assert np.allclose(p.sum(axis=2), (1 - acc) / (1 - acc).sum(), atol=1e-6)
    assert np.allclose(p[0, 0], p[0, 0].sum() * np.array([0.5, 0.25, 0.25]), atol=1e-6)
    with pytest.raises(ConfigError, match="3 sources"):
        bad = make_teacher("error-mix", source_shares=[1, 1])
        bad.reset(space, info, seed=0)
    with pytest.raises(ConfigError, match="mix rule"):
        make_teacher("error-mix").reset(space, {**info, "action": {**info["action"], "rule": "softmax"}}, seed=0)


# ---------------------------------------------------------------------------- whole episodes
@pytest.mark.parametrize("level, env_id", [("mix", "distillgym/ArithMix-v2"), ("cell", "distillgym/ArithSkills-v2")])
@pytest.mark.parametrize("name", FAMILY)
def test_every_member_plays_both_levels_deterministically(name, level, env_id):
    a = run_episode(env_id, name, seed=5, env_kwargs=TINY)
    b = run_episode(env_id, name, seed=5, env_kwargs=TINY)
    assert len(a["steps"]) == 4 and a["examples"] == TINY["budget"]
    key = ("skill", "difficulty", "allocation")
    assert [[str(s.get(k)) for k in key] for s in a["steps"]] == [[str(s.get(k)) for k in key] for s in b["steps"]]
    assert a["final_test_accuracy"] == b["final_test_accuracy"]
    if level == "cell":
        assert all("skill" in s for s in a["steps"])
    else:
        assert all(sum(map(sum, s["allocation"])) == 256 for s in a["steps"])


def test_error_mix_allocates_by_the_observed_errors():
    """On a real env: each step's allocation is the largest-remainder rounding of the error mix of the
    observation the teacher saw before it."""
    from distillgym.levels import allocate

    env = gym.make("distillgym/ArithMix-v2", **TINY)
    obs, info = env.reset(seed=2)
    t = make_teacher("error-mix", floor=0.1)
    t.reset(env.action_space, info, seed=2)
    for _ in range(3):
        want = allocate(1 - obs["accuracy"].astype(float) + 0.1, 256)
        obs, _, _, _, info = env.step(t.act(obs, info))
        assert np.array_equal(np.asarray(info["action"]["allocation"]), want)
    env.close()


def test_a_mix_teacher_rejects_the_open_level(arith_info):
    t = make_teacher("error-mix")
    with pytest.raises(ConfigError, match="cell and mix levels"):
        t.reset(gym.spaces.Text(10), {**arith_info, "level": "open"}, seed=0)


# ---------------------------------------------------------------------------- the issue-21 ids
def test_on_the_sources_id_the_family_splits_cells_by_source_shares():
    """ArithSources-v1 (source-mix level): the default shares play what stratified plays through the
    MixToSourceMix adapter; shares [1, 0, 0] buy verified examples only."""
    equal = run_episode("distillgym/ArithSources-v1", "fixed-mix", seed=6, env_kwargs=TINY)
    strat = run_episode("distillgym/ArithSources-v1", "stratified", seed=6, env_kwargs=TINY)
    assert [s["allocation"] for s in equal["steps"]] == [s["allocation"] for s in strat["steps"]]
    assert equal["final_test_accuracy"] == strat["final_test_accuracy"]
    only = run_episode("distillgym/ArithSources-v1", "error-mix", seed=6, env_kwargs=TINY,
                       teacher_kwargs={"source_shares": [1, 0, 0]})
    for s in only["steps"]:
        a = np.asarray(s["allocation"])
        assert a.shape == (S, D, 3) and a[:, :, 1:].sum() == 0 and a[:, :, 0].sum() == 256 // 4
    from distillgym.harness.headroom import policy_family

    env = gym.make("distillgym/ArithSources-v1", **TINY)
    _, info = env.reset(seed=6)
    env.close()
    fam = {p.label: p for p in policy_family(info, ["sources"])}
    assert len(fam) == 39 and fam["equal@equal-examples"].kwargs["source_shares"] == [4.0, 1.0, 1.0]


def test_on_the_target_id_the_schedule_teaches_the_targets_prerequisites_first():
    """ArithTarget-v1 scores add and sub only (info["eval_weights"]): prereq-first trains copy and
    successor before the switch, the targets after it; the family adds the target profiles."""
    from distillgym.harness.headroom import policy_family

    env = gym.make("distillgym/ArithTarget-v1", **TINY)
    _, info = env.reset(seed=1)
    env.close()
    labels = {p.label for p in policy_family(info)}
    assert {"profile-targets-only", "profile-targets+prerequisites"} <= labels
    r = run_episode("distillgym/ArithTarget-v1", "prereq-first", seed=1, env_kwargs=TINY,
                    teacher_kwargs={"switch": 0.5})
    rows = [{SKILLS[i] for i, row in enumerate(s["allocation"]) if sum(row)} for s in r["steps"]]
    assert rows == [{"copy", "successor"}] * 2 + [{"add", "sub"}] * 2
