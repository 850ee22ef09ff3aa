"""Data sources of different quality and cost: the bug functions, the noisy answerer, the ``sources``
engine, the source-mix action level and its allocation, and the open level's verified and
unverified lines (issue 21, section 2)."""

from __future__ import annotations

import numpy as np
import pytest

from distillgym.engines import make_engine
from distillgym.errors import ConfigError, InvalidActionError, UnknownNameError
from distillgym.levels import SourceMixLevel, allocate, make_level, units_to_examples
from distillgym.seeding import rng_for
from distillgym.tasks import make_suite
from distillgym.tasks.arith_bugs import FIRING_RATES, buggy_answers, noisy_answers
from distillgym.tasks.arrays import ExampleArrays
from distillgym.tasks.checks import check_lines
from distillgym.types import Example, PlanItem


@pytest.fixture(scope="module")
def suite():
    return make_suite("arith-v2")


def _arrays(suite, rows):
    return ExampleArrays.from_examples([Example(p, a, s, 0) for s, p, a in rows], suite.skills)


# ---------------------------------------------------------------------------- the bugs
HAND = [  # (skill, prompt, the buggy answer worked out by hand)
    ("copy", "c1123=", "123"), ("copy", "c7=", "7"), ("copy", "c1000=", "10"), ("copy", "c121=", "121"),
    ("successor", "s129=", "120"), ("successor", "s9=", "0"), ("successor", "s41=", "42"),
    ("successor", "s1999=", "1990"),
    ("add", "57+68=", "15"), ("add", "10+90=", "0"), ("add", "3+4=", "7"), ("add", "5+123=", "128"),
    ("add", "9+95=", "94"), ("add", "4567+5678=", "9135"),
    ("sub", "52-38=", "26"), ("sub", "9-3=", "6"), ("sub", "100-1=", "101"), ("sub", "47-12=", "35"),
    ("mul", "57*3=", "51"), ("mul", "5*3=", "5"), ("mul", "12*4=", "48"), ("mul", "999*9=", "111"),
    ("compare", "9?123=", ">"), ("compare", "58?61=", "<"), ("compare", "55?57=", "="), ("compare", "3?3=", "="),
    ("chain", "3+4-2=", "7"), ("chain", "3+4-2+5=", "5"), ("chain", "1+1+0=", "2"), ("chain", "9-9+0-0+8-3=", "8"),
]


def test_bug_functions_against_hand_computed_cases(suite):
    arr = _arrays(suite, [(s, p, "0") for s, p, _ in HAND])
    got = suite.buggy_arrays(arr).answers()
    assert got == [want for _, _, want in HAND]
    codes, lengths = buggy_answers(arr)  # the module function the suite method wraps
    assert lengths.tolist() == [len(w) for _, _, w in HAND]


@pytest.mark.parametrize("skill", ["copy", "successor", "add", "sub", "mul", "compare", "chain"])
def test_bug_firing_rates_match_the_documented_table(suite, skill):
    """2,000 fresh train items per cell (other seeds than the table's): within 0.04 of the documented rate,
    and every buggy answer is a well-formed answer of the suite (digits, or a sign for compare)."""
    i = suite.skill_index(skill)
    for d in range(4):
        ex = suite.generate_arrays(skill, d, rng_for(77, i, d), 2000, split="train")
        bug = suite.buggy_arrays(ex)
        wrong = np.mean([a != b for a, b in zip(bug.answers(), ex.answers(), strict=True)])
        assert abs(wrong - FIRING_RATES[skill][d]) < 0.04, (skill, d, wrong)
        for a in bug.answers()[:200]:
            assert (a in "<=>" and len(a) == 1) if skill == "compare" else (a.isdigit() and (a == "0" or a[0] != "0"))


def test_noisy_answers_are_wrong_at_the_rate_and_stay_well_formed(suite):
    ex = ExampleArrays.concat([suite.generate_arrays(s, 2, rng_for(3, i), 1500, split="train")
                               for i, s in enumerate(suite.skills)], suite.skills)
    u = np.random.default_rng(0).random((len(ex), 3))
    codes, lengths, wrong = noisy_answers(ex, u, 0.3)
    noisy = ex.with_answers(codes, lengths)
    changed = np.array([a != b for a, b in zip(noisy.answers(), ex.answers(), strict=True)])
    assert np.array_equal(changed, wrong) and abs(wrong.mean() - 0.3) < 0.02
    assert np.array_equal(lengths, ex.answer_len)  # one digit or the sign changed, never the length
    for a, g in zip(np.array(noisy.answers())[wrong], np.array(ex.answers())[wrong], strict=True):
        if g in "<=>":
            assert a in "<=>" and a != g
        else:
            assert a.isdigit() and (len(a) == 1 or a[0] != "0") and sum(x != y for x, y in zip(a, g, strict=True)) == 1
    assert not noisy_answers(ex, u, 0.0)[2].any() and noisy_answers(ex, u, 1.0)[2].all()


# ---------------------------------------------------------------------------- the engine
def test_sources_engine_answers_and_counts_wrong_examples_by_source(suite):
    engine = make_engine("sources", suite)
    assert engine.sources == ("verified", "buggy", "noisy") and engine.costs == (4, 1, 1) and engine.noise == 0.5
    plan = [PlanItem("add", 2, 300, "verified"), PlanItem("add", 2, 300, "buggy"), PlanItem("sub", 1, 400, "noisy")]
    ex, cost = engine.generate(plan, rng_for(5, 1), split="train")
    assert len(ex) == cost.examples == 1000
    truth = [suite.solve(p) for p in ex.prompts()]
    right = np.array([a == t for a, t in zip(ex.answers(), truth, strict=True)])
    assert right[:300].all()  # verified
    assert cost.by_source["buggy"] == {"examples": 300, "wrong": int((~right[300:600]).sum())}
    assert cost.by_source["noisy"] == {"examples": 400, "wrong": int((~right[600:]).sum())}
    assert abs(cost.by_source["buggy"]["wrong"] / 300 - FIRING_RATES["add"][2]) < 0.08
    assert abs(cost.by_source["noisy"]["wrong"] / 400 - 0.5) < 0.08
    assert all(suite.part_of(p) == "train" for p in ex.prompts())  # every source draws from the train part
    # the same request gives the same examples alone or served with others (the vector env)
    again = engine.generate_many([(plan[:1], rng_for(9, 9)), (plan, rng_for(5, 1))], split="train")[1]
    assert again[0].answers() == ex.answers() and again[1].by_source == cost.by_source


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(sources=["verified", "clever"]), ConfigError, "clever"),
    (dict(sources=["verified", "verified"]), ConfigError, "distinct"),
    (dict(costs=[4, 1]), ConfigError, "one cost per source"),
    (dict(costs=[4, 0, 1]), ConfigError, "cost of 'buggy'"),
    (dict(costs={"noisy": 2, "llm": 3}), ConfigError, "llm"),
    (dict(noise=1.5), ConfigError, "noise"),
])
def test_sources_engine_rejects_bad_arguments(suite, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_engine("sources", suite, **kwargs)


def test_sources_engine_needs_a_vectorised_suite():
    with pytest.raises(ConfigError, match="arith-v2"):
        make_engine("sources", make_suite("arith-v1"))


# ---------------------------------------------------------------------------- allocation
@pytest.mark.parametrize("seed", range(8))
def test_allocation_sums_to_the_budget_and_remainders_are_pooled(seed):
    rng = np.random.default_rng(seed)
    w = rng.random((7, 4, 3)) * (rng.random((7, 4, 3)) < 0.6)
    costs = np.array([4, 1, 3])
    n = int(rng.integers(1, 5000))
    units = allocate(w, n)
    assert units.sum() == n and (units >= 0).all()
    ex, unused = units_to_examples(units, costs)
    spent = (ex * costs).sum((0, 1))
    assert np.array_equal(spent + unused, units.sum((0, 1)))  # every unit is an example's or unused
    assert (unused < costs).all() and (unused >= 0).all()
    assert (ex >= units // costs).all() and (ex <= units // costs + 1).all()


def test_units_to_examples_gives_pooled_examples_to_the_largest_leftovers():
    units = np.zeros((1, 3, 1), np.int64)
    units[0, :, 0] = [7, 6, 5]  # cost 4: 1 each, leftovers 3, 2, 1 -> pool 6 -> one more, to the first
    ex, unused = units_to_examples(units, [4])
    assert ex[0, :, 0].tolist() == [2, 1, 1] and unused.tolist() == [2]


# ---------------------------------------------------------------------------- the level
@pytest.fixture(scope="module")
def level(suite):
    return make_level("source-mix", suite, 2048, sources=("verified", "buggy", "noisy"), costs=(4, 1, 1))


def test_source_mix_level_decodes_a_plan(level):
    assert isinstance(level, SourceMixLevel) and level.space.shape == (7, 4, 3)
    a = -np.ones((7, 4, 3), np.float32)
    a[2, 1, 0] = 1.0  # add L1 from the verified source only
    plan = level.decode(a, 2048)
    assert [(it.skill, it.difficulty, it.n, it.source) for it in plan.items] == [("add", 1, 512, "verified")]
    assert plan.charge == 2048 and plan.info["skill"] == "add" and plan.info["units_by_source"]["verified"] == 2048
    equal = level.decode(np.zeros((7, 4, 3), np.float32), 2048)
    assert equal.charge == 2048 and sum(equal.info["units_by_source"].values()) == 2048
    assert equal.info["examples_by_source"]["buggy"] == equal.info["units_by_source"]["buggy"]
    assert sum(it.n for it in equal.items if it.source == "verified") == equal.info["examples_by_source"]["verified"]


@pytest.mark.parametrize("action,match", [
    (np.zeros((7, 4)), "shape"),
    (np.zeros((7, 4, 2)), "shape"),
    (np.full((7, 4, 3), np.nan), "finite"),
    (np.full((7, 4, 3), np.inf), "finite"),
    (np.full((7, 4, 3), 1.5), r"\[-1, 1\]"),
    (np.full((7, 4, 3), -1.01), r"\[-1, 1\]"),
    (np.zeros((7, 4, 3), bool), "float array"),
    ("verified please", "float array"),
])
def test_source_mix_level_names_bad_actions(level, action, match):
    with pytest.raises(InvalidActionError, match=match):
        level.decode(action, 2048)


def test_source_mix_level_accepts_float_rounding_at_the_bounds(level):
    a = np.full((7, 4, 3), 1.0 + 1e-7)
    assert level.decode(a, 300).charge == 300


def test_source_mix_level_needs_the_sources_engine():
    from distillgym.env import TeachingEnv

    with pytest.raises(ConfigError, match="engine='sources'"):
        TeachingEnv(suite="arith-v2", student="plain", engine="vectorized", level="source-mix", device="cpu")


# ---------------------------------------------------------------------------- an episode
@pytest.fixture(scope="module")
def sources_env():
    from distillgym.env import TeachingEnv

    return TeachingEnv(suite="arith-v2", student="plain", engine="sources", level="source-mix", budget=2560,
                       examples_per_step=1024, n_val_per_cell=4, n_test_per_cell=4, device="cpu")


def test_source_mix_episode_spends_its_budget_exactly_and_reports_sources(sources_env):
    env = sources_env
    obs, info = env.reset(seed=3)
    assert info["sources"] == ["verified", "buggy", "noisy"] and obs["source_spent"].tolist() == [0, 0, 0]
    rng = np.random.default_rng(0)
    steps, done, spent = 0, False, np.zeros(3)
    while not done:
        obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, (7, 4, 3)).astype(np.float32))
        steps += 1
        by = info["costs"]["by_source"]
        spent += [by[s]["units"] for s in env.sources]
        assert sum(v["units"] for v in by.values()) == info["costs"]["charged"] == info["action"]["n"]
        assert info["costs"]["examples"] == sum(v["examples"] for v in by.values())
        assert by["verified"]["wrong"] == 0
        np.testing.assert_allclose(obs["source_spent"], spent / 2560, rtol=1e-6)
        done = term or trunc
    assert term and steps == 3 and info["final"]["examples"] == 2560  # 1024 + 1024 + 512 units
    assert info["totals"]["by_source"]["buggy"]["units"] == spent[1]
    assert abs(obs["source_spent"].sum() + obs["budget_left"][0] - 1) < 1e-6


def test_bad_source_mix_action_spends_nothing(sources_env):
    env = sources_env
    env.reset(seed=4)
    with pytest.raises(InvalidActionError):
        env.step(np.full((7, 4, 3), 2.0, np.float32))
    assert env.budget_left == env.budget and env._t == 0


# ---------------------------------------------------------------------------- the open level's two kinds of line
COSTS = {"verified": 4, "unverified": 1}


def test_check_lines_charges_and_checks_verified_and_unverified_lines(suite):
    lines = ["57+68=125", "57+68=125", "3+4=8", "~3+4=8", "~12+13=25", "~c12=12x", "~c5=5", "9+9=18"]
    out = check_lines(suite, lines, max_lines=12, line_costs=COSTS, unverified_prefix="~")
    verdicts = [v for _, v in out.verdicts]
    # 57+68 ok (4); its repeat a duplicate (4); 3+4=8 wrong (4) -> 12 units: the rest does not fit
    assert verdicts == ["ok", "duplicate", "wrong", "over_limit", "over_limit", "over_limit", "over_limit",
                        "over_limit"]
    assert out.charged == 12 and out.lines == 3
    out = check_lines(suite, lines[3:], max_lines=2048, line_costs=COSTS, unverified_prefix="~")
    assert [v for _, v in out.verdicts] == ["ok", "ok", "malformed", "ok", "ok"]
    assert out.charged == 1 + 1 + 1 + 1 + 4
    unverified = [e for e in out.examples if not e.verified]
    assert [(e.prompt, e.answer, e.source) for e in unverified] == [("3+4=", "8", "unverified"),
                                                                    ("12+13=", "25", "unverified"),
                                                                    ("c5=", "5", "unverified")]
    assert out.unverified_wrong == 1 and out.cost.by_source["unverified"] == {"units": 4, "examples": 3, "wrong": 1}
    assert out.cost.by_source["verified"] == {"units": 4, "examples": 1, "wrong": 0}


def test_unverified_lines_keep_the_leak_check(suite):
    val = suite.generate("add", 1, rng_for(1, 2), 1, split="val")[0]
    out = check_lines(suite, ["~" + val.prompt + val.answer], max_lines=10, line_costs=COSTS, unverified_prefix="~")
    assert out.verdicts[0][1] == "leak_val" and not out.examples


def test_open_level_with_line_costs_and_the_scripted_writer(suite):
    from distillgym.env import TeachingEnv
    from distillgym.teachers import make_teacher

    kw = dict(suite="arith-v2", student="plain", level="open", budget=512, examples_per_step=256, n_val_per_cell=4,
              n_test_per_cell=4, device="cpu", level_kwargs={"line_costs": COSTS})
    env = TeachingEnv(**kw)
    assert "~" in env.action_space.character_set and env.observation_space["source_spent"].shape == (2,)
    for unverified, lines in ((False, 64), (True, 256)):
        obs, info = env.reset(seed=1)
        writer = make_teacher("scripted-writer", unverified=unverified)
        writer.reset(env.action_space, info, seed=1)
        text = writer.act(obs, info)
        assert len(text.splitlines()) == lines and all(x.startswith("~") == unverified for x in text.splitlines())
        obs, r, term, trunc, info = env.step(text)
        kind = "unverified" if unverified else "verified"
        assert info["costs"]["by_source"][kind] == {"units": 256, "examples": lines, "wrong": 0}
        assert info["action"]["unverified_wrong"] == 0 and info["costs"]["charged"] == 256
    with pytest.raises(ConfigError, match="unverified lines"):
        make_teacher("scripted-writer", unverified=True).reset(
            TeachingEnv(**{**kw, "level_kwargs": None}).action_space,
            TeachingEnv(**{**kw, "level_kwargs": None}).reset(seed=0)[1])


@pytest.mark.parametrize("kwargs,match", [
    (dict(line_costs={"verified": 4}), "line_costs"),
    (dict(line_costs={"verified": 4, "unverified": 0}), "unverified"),
    (dict(line_costs=COSTS, unverified_prefix="+"), "unverified_prefix"),
])
def test_open_level_rejects_bad_line_costs(suite, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_level("open", suite, 256, **kwargs)


def test_unknown_level_name_is_named():
    with pytest.raises(UnknownNameError, match="source-mix"):
        make_level("source_mix", make_suite("arith-v2"), 256)
