"""Task suites: generators, checkers, solvers, the prerequisite graph, seeding."""

from __future__ import annotations

import re

import numpy as np
import pytest

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.seeding import STREAM_TEST, STREAM_TRAIN, STREAM_VAL, rng_for
from distillgym.tasks import SUITES, ArithmeticSuite, TaskSuite, make_suite

N_PER_CELL = 200

# The arithmetic suites. Suites registered lazily by "module:Class" string (reasoning-gym, an
# optional extra) have their own test files. (Not "every entry that is not a string": a test
# module that builds a lazy suite at import replaces its string by the class in place.)
BUILTIN = {name: f for name, f in SUITES.items() if isinstance(f, type) and issubclass(f, ArithmeticSuite)}

SUITE_CELLS = [
    pytest.param(name, skill, d, id=f"{name}-{skill}-L{d}")
    for name, cls in BUILTIN.items()
    for skill in cls.skills
    for d in range(cls.n_difficulties)
]


@pytest.mark.parametrize("name,skill,difficulty", SUITE_CELLS)
def test_generated_gold_answers_are_correct(name, skill, difficulty):
    """Every cell of every registered suite: the gold answer scores 1.0 with the suite's own
    checker, the independent solver recomputes it from the prompt, and the text stays
    inside the suite's alphabet and answer length."""
    suite = make_suite(name)
    examples = suite.generate(
        skill, difficulty, rng_for(7, STREAM_TRAIN, suite.skill_index(skill), difficulty), N_PER_CELL
    )
    assert len(examples) == N_PER_CELL
    alphabet = set(suite.alphabet)
    for ex in examples:
        assert ex.skill == skill and ex.difficulty == difficulty
        assert suite.score(ex.answer, ex.answer) == 1.0
        assert suite.solve(ex.prompt) == ex.answer, ex
        assert set(ex.prompt) <= alphabet and set(ex.answer) <= alphabet, ex
        assert 1 <= len(ex.answer) <= suite.max_answer_len, ex
        # the checker is not trivially 1: a different answer scores 0
        assert suite.score(ex.answer + "0", ex.answer) == 0.0
    # a cell is not one repeated item
    assert len({e.prompt for e in examples}) > 1


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_prerequisite_graph_is_acyclic_and_topologically_ordered(name):
    suite = make_suite(name)
    suite.validate()
    order = suite.topological_order()
    assert sorted(order) == sorted(suite.skills) and len(order) == len(suite.skills)
    pos = {s: i for i, s in enumerate(order)}
    for skill, pres in suite.prerequisites.items():
        for p in pres:
            assert pos[p] < pos[skill], f"{p} must come before {skill} in {order}"
    assert set(suite.edges()) == {(p, s) for s, pres in suite.prerequisites.items() for p in pres}


def test_arith_prerequisites_match_the_documented_graph(suite):
    assert suite.skills == ("copy", "successor", "add", "sub", "mul", "compare", "chain")
    assert suite.n_difficulties == 4
    assert set(suite.prerequisites["chain"]) == {"add", "sub"}
    assert suite.prerequisites["copy"] == ()
    assert suite.topological_order()[0] == "copy"


def test_cyclic_prerequisites_are_rejected():
    class Cyclic(ArithmeticSuite):
        name = "cyclic"
        prerequisites = {**ArithmeticSuite.prerequisites, "copy": ("chain",)}

    with pytest.raises(ConfigError, match="cycle"):
        Cyclic().topological_order()
    with pytest.raises(ConfigError, match="cycle"):
        Cyclic().validate()


def test_unknown_prerequisite_is_rejected():
    class Dangling(ArithmeticSuite):
        prerequisites = {**ArithmeticSuite.prerequisites, "add": ("sucessor",)}

    with pytest.raises(UnknownNameError, match="successor"):
        Dangling().validate()


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_generation_is_deterministic_for_a_seed(name):
    suite = make_suite(name)
    for i, skill in enumerate(suite.skills):
        for d in range(suite.n_difficulties):
            a = suite.generate(skill, d, rng_for(3, STREAM_VAL, i, d), 50)
            b = suite.generate(skill, d, rng_for(3, STREAM_VAL, i, d), 50)
            assert a == b
    # and a different seed gives different items
    a = suite.generate("add", 3, rng_for(3, STREAM_VAL), 50)
    c = suite.generate("add", 3, rng_for(4, STREAM_VAL), 50)
    assert a != c


def test_rng_for_depends_on_seed_and_index_only():
    a = rng_for(5, STREAM_VAL, 2, 1).integers(0, 2**32, 8)
    b = rng_for(5, STREAM_VAL, 2, 1).integers(0, 2**32, 8)
    np.testing.assert_array_equal(a, b)
    for other in (rng_for(6, STREAM_VAL, 2, 1), rng_for(5, STREAM_TEST, 2, 1), rng_for(5, STREAM_VAL, 2, 2)):
        assert not np.array_equal(a, other.integers(0, 2**32, 8))
    # global numpy state plays no role
    np.random.seed(0)
    x = rng_for(1, 2).random()
    np.random.seed(1)
    assert rng_for(1, 2).random() == x


# ---------------------------------------------------------------------------- per-level content
def _operands(skill: str, prompt: str) -> list[str]:
    body = prompt[:-1]  # drop "="
    if skill in ("copy", "successor"):
        return [body[1:]]
    if skill == "mul":
        return [body.split("*")[0]]
    return re.split(r"[+\-?]", body)


NUMERIC_LEVEL_SKILLS = [
    "successor",
    "copy",
    "add",
    "sub",
    "mul",
    "compare",
]


@pytest.mark.parametrize("skill", NUMERIC_LEVEL_SKILLS)
def test_level_L_numbers_have_L_plus_1_digits(suite, skill):
    """The module's documented difficulty: level L operands have exactly L+1 digits."""
    for d in range(suite.n_difficulties):
        for ex in suite.generate(skill, d, rng_for(11, STREAM_TRAIN, d), 400):
            for op in _operands(skill, ex.prompt):
                assert len(op) == d + 1 and (d == 0 or op[0] != "0"), (d, ex.prompt)


def test_chain_has_L_plus_3_terms_and_never_goes_negative(suite):
    for d in range(suite.n_difficulties):
        for ex in suite.generate("chain", d, rng_for(12, STREAM_TRAIN, d), 300):
            terms = re.findall(r"[+\-]?\d", ex.prompt[:-1])
            assert len(terms) == d + 3, ex.prompt
            running = 0
            for t in terms:
                running += int(t)
                assert running >= 0, ex.prompt
            assert str(running) == ex.answer


def test_compare_uses_all_three_answers(suite):
    answers = {e.answer for d in range(4) for e in suite.generate("compare", d, rng_for(13, d), 200)}
    assert answers == {"<", "=", ">"}


def test_successor_level_has_carries(suite):
    exs = suite.generate("successor", 3, rng_for(14), 400)
    carried = [e for e in exs if e.prompt[-2] == "9"]
    assert 0.3 < len(carried) / len(exs) < 0.8


# ---------------------------------------------------------------------------- errors
def test_unknown_skill_suggests_closest_name(suite):
    with pytest.raises(UnknownNameError) as err:
        suite.skill_index("addd")
    msg = str(err.value)
    assert "Did you mean 'add'" in msg
    for s in suite.skills:
        assert s in msg
    with pytest.raises(UnknownNameError, match="add"):
        suite.generate("addd", 0, rng_for(0), 1)


def test_unknown_suite_name():
    with pytest.raises(UnknownNameError, match="arith"):
        make_suite("arithh")


@pytest.mark.parametrize("difficulty", [-1, 4, 1.0, "0", None])
def test_bad_difficulty_is_config_error(suite, difficulty):
    with pytest.raises(ConfigError, match=r"0\.\.3"):
        suite.generate("add", difficulty, rng_for(0), 1)


def test_negative_count_is_config_error(suite):
    with pytest.raises(ConfigError, match="n must be"):
        suite.generate("add", 0, rng_for(0), -1)
    assert suite.generate("add", 0, rng_for(0), 0) == []


@pytest.mark.parametrize("prompt", ["", "hello", "12+=", "1/2=", "c=", "12+34"])
def test_solve_rejects_unparseable_prompts(suite, prompt):
    with pytest.raises(ConfigError, match="cannot parse"):
        suite.solve(prompt)


def test_solver_is_independent_of_the_generator(suite):
    """Hand-written prompts, answers computed here."""
    cases = {
        "c0407=": "407",
        "s1299=": "1300",
        "57+68=": "125",
        "68-57=": "11",
        "432*7=": "3024",
        "58?61=": "<",
        "61?58=": ">",
        "77?77=": "=",
        "3+5-2=": "6",
        "9-9+0=": "0",
    }
    for prompt, answer in cases.items():
        assert suite.solve(prompt) == answer


def test_base_suite_is_abstract_and_solve_optional():
    with pytest.raises(TypeError):
        TaskSuite()  # type: ignore[abstract]

    class NoSolver(ArithmeticSuite):
        solve = TaskSuite.solve

    with pytest.raises(NotImplementedError):
        NoSolver().solve("1+1=")
