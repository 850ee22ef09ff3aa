"""Vectorised data: example arrays, the arith-v2 partition hash and generator, the array solver
and the vectorized engine."""

from __future__ import annotations

import numpy as np
import pytest

from distillgym.engines import make_engine
from distillgym.errors import ConfigError
from distillgym.seeding import STREAM_TEST, STREAM_TRAIN, STREAM_VAL, rng_for
from distillgym.tasks import make_suite
from distillgym.tasks.arith_bugs import numbers_to_codes
from distillgym.tasks.arith_v2 import ArithmeticSuiteV2, content_fraction_v2, content_fractions
from distillgym.tasks.arrays import ExampleArrays, codes_to_texts, concat_fields, texts_to_codes
from distillgym.types import Example, PlanItem

V2_CELLS = [pytest.param(s, d, id=f"{s}-L{d}") for s in ArithmeticSuiteV2.skills for d in range(4)]


@pytest.fixture(scope="module")
def v2():
    return make_suite("arith-v2")


# ---------------------------------------------------------------------------- arrays
def test_texts_round_trip_through_code_matrices():
    texts = ["12+3=", "", "c4071=", "ünï", "9"]
    codes, lengths = texts_to_codes(texts)
    assert codes.dtype == np.uint32 and codes.shape == (5, 6)
    assert lengths.tolist() == [5, 0, 6, 3, 1]
    assert codes_to_texts(codes) == texts
    assert texts_to_codes([])[0].shape == (0, 1) and codes_to_texts(np.zeros((0, 3), np.uint32)) == []
    joined, total = concat_fields([texts_to_codes(["ab", "c"]), texts_to_codes(["x", "yz"])], 2)
    assert codes_to_texts(joined) == ["abx", "cyz"] and total.tolist() == [3, 3]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint32])
def test_numbers_to_codes_writes_each_number_as_str_does(dtype):
    """The generator's and solver's digit writer against ``str``: every width from 1 to 19 digits,
    values on both sides of 2**32 (its 32-bit path) and of every power of ten, and an empty input."""
    rng = np.random.default_rng(3)
    edges = [10**e + d for e in range(19) for d in (-1, 0) if 10**e + d >= 0] + [2**32 - 1, 2**32, 2**63 - 1]
    for values in (np.array(edges), rng.integers(0, 1000, 500), rng.integers(0, 2**62, 500), np.array([7])):
        codes, nd = numbers_to_codes(values, dtype)
        assert codes.dtype == dtype and nd.dtype == np.int64
        assert codes.shape == (len(values), max(len(str(int(v))) for v in values))
        assert codes_to_texts(codes) == [str(int(v)) for v in values]
        assert not codes[np.arange(codes.shape[1])[None, :] >= nd[:, None]].any()
    codes, nd = numbers_to_codes(np.zeros(0, np.int64), dtype)
    assert codes.shape == (0, 1) and len(nd) == 0


def test_example_arrays_is_a_sequence_of_examples():
    exs = [Example("1+2=", "3", "add", 0), Example("c45=", "45", "copy", 1), Example("9?9=", "=", "compare", 0)]
    arr = ExampleArrays.from_examples(exs, ("copy", "add", "compare"))
    assert len(arr) == 3 and list(arr) == exs and arr[-1] == exs[-1] and arr[0:2] == exs[:2]
    assert arr.skill.tolist() == [1, 0, 2] and arr.prompts() == [e.prompt for e in exs]
    with pytest.raises(IndexError):
        arr[3]
    assert list(arr.take(np.array([2, 0]))) == [exs[2], exs[0]]
    both = ExampleArrays.concat([arr, arr.take(slice(0, 1))], arr.skills)
    assert list(both) == exs + exs[:1]
    assert len(ExampleArrays.concat([], arr.skills)) == 0
    with pytest.raises(ConfigError, match="not one of"):
        ExampleArrays.from_examples([Example("1=", "1", "nope", 0)], ("add",))


# ---------------------------------------------------------------------------- partition hash
def test_vector_hash_equals_scalar_hash(v2):
    rng = np.random.default_rng(0)
    alphabet = np.array(list(v2.alphabet + "xyzé"))
    texts = ["".join(rng.choice(alphabet, int(n))) for n in rng.integers(0, 20, 500)]
    texts += [e.prompt for e in v2.generate("add", 2, rng_for(0), 200)]
    codes, lengths = texts_to_codes(texts)
    fast = content_fractions(codes, lengths)
    slow = np.array([content_fraction_v2(t) for t in texts])
    np.testing.assert_array_equal(fast, slow)
    assert ((fast >= 0) & (fast < 1)).all()
    # the part of a prompt depends on its text only, and padding never changes it
    wide = np.pad(codes, ((0, 0), (0, 5)))
    np.testing.assert_array_equal(content_fractions(wide, lengths), fast)
    assert [v2.part_of(t) for t in texts] == [("train", "val", "test")[i] for i in v2.parts_of(codes, lengths)]


@pytest.mark.parametrize("skill,difficulty", V2_CELLS)
def test_partition_shares_per_cell(v2, skill, difficulty):
    """Distinct items of a cell fall into the parts in the declared shares (within 5 binomial
    standard deviations)."""
    arr = v2.generate_arrays(skill, difficulty, rng_for(3, difficulty), 4000, distinct=True)
    prompts = sorted(set(arr.prompts()))
    n = len(prompts)
    assert n >= 900
    codes, lengths = texts_to_codes(prompts)
    parts = np.bincount(v2.parts_of(codes, lengths), minlength=3) / n
    for share, want in zip(parts, v2.partition, strict=True):
        assert abs(share - want) < 5 * np.sqrt(want * (1 - want) / n), (parts, v2.partition)


def test_v2_parts_differ_from_v1(v2):
    v1 = make_suite("arith-v1")
    prompts = [e.prompt for e in v2.generate("copy", 3, rng_for(0), 300)]
    assert [v1.part_of(p) for p in prompts] != [v2.part_of(p) for p in prompts]


# ---------------------------------------------------------------------------- generation
@pytest.mark.parametrize("skill,difficulty", V2_CELLS)
def test_vector_items_are_valid_and_in_their_part(v2, skill, difficulty):
    for split in ("train", "val", "test"):
        arr = v2.generate_arrays(skill, difficulty, rng_for(1, difficulty), 150, split=split)
        assert len(arr) == 150
        assert set(arr.skill.tolist()) == {v2.skill_index(skill)} and set(arr.difficulty.tolist()) == {difficulty}
        for e in arr:
            assert v2.solve(e.prompt) == e.answer, e
            assert v2.classify(e.prompt) == (skill, difficulty), e
            assert v2.part_of(e.prompt) == split, e
        assert v2.verify_arrays(arr).all()


def test_splits_are_disjoint_by_content(v2):
    for skill, d in v2.cells:
        parts = {
            split: set(v2.generate_arrays(skill, d, rng_for(5, stream, d), 400, split=split).prompts())
            for split, stream in (("train", STREAM_TRAIN), ("val", STREAM_VAL), ("test", STREAM_TEST))
        }
        assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"]
        assert not parts["val"] & parts["test"]


def test_distinct_exhausts_a_small_part_then_repeats(v2):
    everything = {f"c{a}=" for a in range(1000)}  # copy L0: 1 to 3 digit numbers
    val = {p for p in everything if v2.part_of(p) == "val"}
    arr = v2.generate_arrays("copy", 0, rng_for(0), len(val) + 20, split="val", distinct=True)
    prompts = arr.prompts()
    found = len(set(prompts))
    assert len(prompts) == len(val) + 20 and set(prompts) <= val
    assert found >= 0.9 * len(val)  # three rounds without a new item end the search
    assert len(set(prompts[:found])) == found  # distinct items first, then repeats
    few = v2.generate_arrays("add", 2, rng_for(1), 300, distinct=True)
    assert len(set(few.prompts())) == 300


def test_generation_is_deterministic_and_requests_are_independent(v2):
    plan = [("add", 1, 50), ("chain", 2, 30), ("add", 1, 7)]
    alone = [v2.generate_many([(rng_for(i), plan)], split="train")[0] for i in range(4)]
    together = v2.generate_many([(rng_for(i), plan) for i in range(4)], split="train")
    for a, b in zip(alone, together, strict=True):
        assert a.prompts() == b.prompts() and a.answers() == b.answers()
        assert a.skill.tolist() == [2] * 50 + [6] * 30 + [2] * 7
    assert alone[0].prompts() != alone[1].prompts()
    again = v2.generate_many([(rng_for(0), plan)], split="train")[0]
    assert again.prompts() == alone[0].prompts()
    assert v2.generate("mul", 1, rng_for(2), 5) == list(v2.generate_arrays("mul", 1, rng_for(2), 5))


def test_generation_errors(v2):
    with pytest.raises(ConfigError, match="n must be an integer"):
        v2.generate_arrays("add", 0, rng_for(0), -1)
    with pytest.raises(ConfigError, match="split must be"):
        v2.generate_arrays("add", 0, rng_for(0), 3, split="dev")
    with pytest.raises(ConfigError, match="difficulty"):
        v2.generate_arrays("add", 4, rng_for(0), 3)
    assert len(v2.generate_arrays("add", 0, rng_for(0), 0)) == 0


def _stats(skill: str, examples) -> dict[str, np.ndarray]:
    """Per-item statistics whose means characterise a cell's distribution."""
    p = [e.prompt[:-1] for e in examples]
    a = [e.answer for e in examples]
    out = {"prompt_len": np.array([len(x) for x in p], float)}
    if skill == "compare":
        out["lt"] = np.array([x == "<" for x in a], float)
        out["eq"] = np.array([x == "=" for x in a], float)
        out["shared_first"] = np.array([x.split("?")[0][0] == x.split("?")[1][0] for x in p], float)
    else:
        out["log_answer"] = np.log1p([int(x) for x in a])
        out["answer_len"] = np.array([len(x) for x in a], float)
    if skill == "successor":
        out["carry"] = np.array([x.endswith("0") for x in a], float)
    if skill == "chain":
        out["minus"] = np.array([x.count("-") for x in p], float)
    return out


@pytest.mark.parametrize("skill,difficulty", V2_CELLS)
def test_vector_generator_draws_v1s_distribution(v2, skill, difficulty):
    """The vectorised items of a cell and v1's scalar generate_one items agree on every
    statistic's mean (two-sample z < 5): same shapes, ranges, carries, prefixes, chain rule."""
    v1 = make_suite("arith-v1")
    n = 3000
    rng = rng_for(9, difficulty)
    scalar = [v1.generate_one(skill, difficulty, rng) for _ in range(n)]
    vector = list(v2.generate_arrays(skill, difficulty, rng_for(10, difficulty), n))
    a, b = _stats(skill, scalar), _stats(skill, vector)
    for name in a:
        se = np.sqrt(a[name].var() / n + b[name].var() / n)
        diff = abs(a[name].mean() - b[name].mean())
        assert diff <= 5 * se + 1e-12, (name, a[name].mean(), b[name].mean(), se)


# ---------------------------------------------------------------------------- solver and engine
def test_array_solver_matches_the_scalar_solver_and_rejects_malformed_prompts(v2):
    prompts = [e.prompt for s, d in v2.cells for e in v2.generate(s, d, rng_for(4, d), 20)]
    codes, lengths = texts_to_codes(prompts)
    answers, _, ok = v2.solve_arrays(codes, lengths)
    assert ok.all() and codes_to_texts(answers) == [v2.solve(p) for p in prompts]
    bad = ["c007=", "1-2=", "3*10=", "3*0=", "9-9-1=", "abc", "+1=", "1+=", "5=", "c5", "12+3", "1+2?3="]
    codes, lengths = texts_to_codes(bad)
    assert not v2.solve_arrays(codes, lengths)[2].any()


class FakeWrongSuite(ArithmeticSuiteV2):
    """A deliberately broken suite for the engine's check: every third answer is off by one digit."""

    name = "fake-wrong"

    def generate_many(self, requests, split=None, distinct=False):
        out = super().generate_many(requests, split=split, distinct=distinct)
        for arr in out:
            arr.answer[::3, 0] = np.where(arr.answer[::3, 0] == ord("1"), ord("2"), ord("1"))
        return out


def test_vectorized_engine_verifies_and_counts(v2):
    engine = make_engine("vectorized", v2)
    plan = [PlanItem("add", 1, 40), PlanItem("compare", 0, 25)]
    examples, cost = engine.generate(plan, rng_for(0))
    assert isinstance(examples, ExampleArrays) and len(examples) == 65 and cost.examples == 65
    assert cost.rejected == 0 and cost.tokens == sum(len(e.prompt) + len(e.answer) for e in examples)
    assert all(v2.part_of(e.prompt) == "train" for e in examples)
    broken, bcost = make_engine("vectorized", FakeWrongSuite()).generate(plan, rng_for(0))
    assert bcost.rejected_by_kind == {"wrong": 22} and len(broken) == 65 - 22
    assert all(v2.solve(e.prompt) == e.answer for e in broken)
    many = engine.generate_many([(plan, rng_for(0)), (plan[:1], rng_for(1))])
    assert list(many[0][0]) == list(examples) and len(many[1][0]) == 40
    with pytest.raises(ConfigError, match="vectorised suite"):
        make_engine("vectorized", make_suite("arith-v1"))
    with pytest.raises(ConfigError, match="n must be an integer"):
        engine.generate([PlanItem("add", 1, -2)], rng_for(0))
