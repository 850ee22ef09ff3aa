"""The procedural data engine: plans become verified examples."""

from __future__ import annotations

import numpy as np
import pytest

from distillgym.engines import ProceduralEngine
from distillgym.errors import ConfigError, UnknownNameError
from distillgym.seeding import rng_for
from distillgym.tasks import ArithmeticSuite
from distillgym.types import Example, PlanItem


def test_plan_becomes_verified_examples_in_order(suite):
    engine = ProceduralEngine(suite)
    plan = [PlanItem("add", 1, 30), PlanItem("copy", 0, 0), PlanItem("chain", 3, 20), PlanItem("compare", 2, 10)]
    examples, cost = engine.generate(plan, rng_for(0, 1))
    assert [(e.skill, e.difficulty) for e in examples] == [("add", 1)] * 30 + [("chain", 3)] * 20 + [
        ("compare", 2)
    ] * 10
    assert cost.examples == len(examples) == 60
    assert cost.rejected == 0
    assert cost.tokens == sum(len(e.prompt) + len(e.answer) for e in examples)
    assert cost.llm_calls == 0 and cost.seconds >= 0
    for e in examples:
        assert e.verified and e.source == "procedural"
        assert suite.solve(e.prompt) == e.answer


def test_generation_is_deterministic(suite):
    engine = ProceduralEngine(suite)
    plan = [PlanItem(s, d, 5) for s in suite.skills for d in range(suite.n_difficulties)]
    a, _ = engine.generate(plan, rng_for(9, 1))
    b, _ = engine.generate(plan, rng_for(9, 1))
    c, _ = engine.generate(plan, rng_for(10, 1))
    assert a == b
    assert a != c


def test_every_cell_of_the_suite_passes_verification(suite):
    engine = ProceduralEngine(suite)
    plan = [PlanItem(s, d, 100) for s in suite.skills for d in range(suite.n_difficulties)]
    examples, cost = engine.generate(plan, rng_for(1, 1))
    assert cost.rejected == 0 and len(examples) == 100 * len(plan)


class _WrongAdder(ArithmeticSuite):
    """A broken suite: every add item whose true sum is odd gets a wrong gold answer."""

    def generate_one(self, skill, difficulty, rng):
        ex = super().generate_one(skill, difficulty, rng)
        if skill == "add" and int(ex.answer) % 2:
            return Example(ex.prompt, str(int(ex.answer) + 1), skill, difficulty)
        return ex


def test_wrong_examples_are_rejected_and_counted():
    engine = ProceduralEngine(_WrongAdder())
    examples, cost = engine.generate([PlanItem("add", 2, 200)], rng_for(2, 1))
    assert 0 < cost.rejected < 200
    assert cost.examples == len(examples) == 200 - cost.rejected
    assert all(int(e.answer) % 2 == 0 and _WrongAdder().solve(e.prompt) == e.answer for e in examples)
    # without verification the wrong ones come through
    raw, raw_cost = ProceduralEngine(_WrongAdder(), verify=False).generate([PlanItem("add", 2, 200)], rng_for(2, 1))
    assert len(raw) == 200 and raw_cost.rejected == 0


@pytest.mark.parametrize("n", [-1, 1.5, "3", None])
def test_bad_count_is_config_error(suite, n):
    with pytest.raises(ConfigError, match="n must be an integer"):
        ProceduralEngine(suite).generate([PlanItem("add", 0, n)], rng_for(0))


def test_numpy_integer_count_is_accepted(suite):
    examples, _ = ProceduralEngine(suite).generate([PlanItem("add", 0, np.int64(3))], rng_for(0))
    assert len(examples) == 3


def test_unknown_skill_and_bad_difficulty(suite):
    engine = ProceduralEngine(suite)
    with pytest.raises(UnknownNameError, match="'mul'"):
        engine.generate([PlanItem("mull", 0, 1)], rng_for(0))
    with pytest.raises(ConfigError, match="difficulty"):
        engine.generate([PlanItem("mul", 4, 1)], rng_for(0))
