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


def test_slices_are_views_and_concat_joins_consecutive_slices_without_a_copy():
    exs = [Example(f"{i}+{i}=", str(2 * i), "add", i % 2) for i in range(10)]
    arr = ExampleArrays.from_examples(exs, ("add",))
    parts = [arr.take(slice(0, 3)), arr.take(slice(3, 7)), arr.take(slice(7, 10))]
    assert np.shares_memory(parts[1].prompt, arr.prompt) and list(parts[1]) == exs[3:7]
    joined = ExampleArrays.concat(parts, arr.skills)
    assert list(joined) == exs and np.shares_memory(joined.prompt, arr.prompt)
    assert np.shares_memory(ExampleArrays.concat(parts[1:], arr.skills).answer, arr.answer)
    nested = parts[1].take(slice(1, 3))  # a slice of a slice is a slice of the whole
    assert list(ExampleArrays.concat([parts[0], arr.take(slice(3, 4)), nested], arr.skills)) == exs[:6]
    # anything else is copied: out of order, a gap, another set, a part whose arrays were replaced
    assert list(ExampleArrays.concat([parts[2], parts[0]], arr.skills)) == exs[7:] + exs[:3]
    assert list(ExampleArrays.concat([parts[0], parts[2]], arr.skills)) == exs[:3] + exs[7:]
    other = ExampleArrays.from_examples(exs, ("add",)).take(slice(3, 7))
    assert not np.shares_memory(ExampleArrays.concat([parts[0], other], arr.skills).prompt, arr.prompt)
    swapped = arr.take(slice(3, 7))
    swapped.answer = np.array(swapped.answer)
    swapped.answer[0, 0] = ord("9")
    mixed = ExampleArrays.concat([parts[0], swapped, parts[2]], arr.skills)
    assert mixed.answers()[3] == "9" and arr.answers()[3] == "6" and not np.shares_memory(mixed.answer, arr.answer)


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


def test_generators_digit_and_hash_helpers_agree_with_the_general_ones(v2):
    """The generator's shortcuts against the general functions they stand for: ``digit_block``
    (numbers of one digit count) and ``_put_digits`` (digits written straight to their rows, the
    other columns untouched) against ``str``; ``_block_fractions`` (every row as long as the
    block) against ``content_fractions`` and the scalar hash."""
    from distillgym.tasks.arith_bugs import digit_block
    from distillgym.tasks.arith_v2 import _block_fractions, _put_digits

    rng = np.random.default_rng(11)
    for m in range(1, 11):
        low = 0 if m == 1 else 10 ** (m - 1)
        values = rng.integers(low, min(10**m, 2**32), 300).astype(np.uint32)
        values[:2] = low, min(10**m, 2**32) - 1
        assert codes_to_texts(digit_block(values, m)) == [str(int(v)) for v in values]
    edges = [10**e + d for e in range(19) for d in (-1, 0) if 10**e + d >= 0] + [2**32 - 1, 2**32]
    for values in (rng.integers(0, 10**6, 400), np.array(edges), np.array([5]), np.zeros(0, np.int64)):
        out = np.full((len(values) + 5, 21), 7, np.uint8)  # 7: a code no digit writes
        dest = rng.permutation(len(out))[: len(values)]
        nd = _put_digits(out, dest, values)
        assert nd.tolist() == [len(str(int(v))) for v in values]
        assert [bytes(out[r, :k]).decode() for r, k in zip(dest, nd, strict=True)] == [str(int(v)) for v in values]
        untouched = np.ones(out.shape, bool)
        for r, k in zip(dest, nd, strict=True):
            untouched[r, :k] = False
        assert (out[untouched] == 7).all()
    for width in (1, 6, 13):
        block = rng.integers(40, 127, (200, width)).astype(np.uint8)
        fast = _block_fractions(block)
        np.testing.assert_array_equal(fast, content_fractions(block, np.full(200, width)))
        assert fast.tolist() == [content_fraction_v2(bytes(row).decode()) for row in block]


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


def test_in_part_is_parts_of_equal_to_the_part(v2):
    prompts = [e.prompt for s, d in v2.cells for e in v2.generate(s, d, rng_for(8, d), 60)]
    codes, lengths = texts_to_codes(prompts)
    parts = v2.parts_of(codes, lengths)
    assert set(parts.tolist()) == {0, 1, 2}
    for part in range(3):
        assert v2.in_part(codes, lengths, part).tolist() == (parts == part).tolist()


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


@pytest.mark.parametrize("split", ["val", "train", None])
def test_generation_keeps_the_first_items_of_the_part_in_draw_order(v2, split):
    """A request item's items are the first ``n`` of its part among the items of one block of uniforms
    ``rng.random((m, k))`` (m from the first round's rule), in draw order, and the stream moves by the
    whole block: worked out here from the block alone and checked against ``generate_many``, for a part
    of share 0.1 (most candidates rejected), 0.8 and no split, and two items of one request."""
    from distillgym.tasks.arith_v2 import _cell_items

    plan = [("sub", 2, 40), ("chain", 1, 25)]
    got = v2.generate_many([(rng_for(11), plan)], split=split)[0]
    rng, start = rng_for(11), 0
    for skill, level, n in plan:
        share = v2.partition[["train", "val", "test"].index(split)] if split else 1.0
        m = max(64, int((n + 4 * n**0.5 + 16) / share))
        prompt, plen, answer, alen = _cell_items(skill, level, rng.random((m, v2.uniforms_per_item(skill, level))))
        keep = np.ones(m, bool) if split is None else v2.parts_of(prompt, plen) == ["train", "val", "test"].index(split)
        rows = np.flatnonzero(keep)[:n]
        assert len(rows) == n  # one round is enough here
        mine = got.take(slice(start, start + n))
        assert mine.prompts() == codes_to_texts(prompt[rows].astype(np.uint32))
        assert mine.answers() == codes_to_texts(answer[rows].astype(np.uint32))
        start += n
    after = rng_for(11)
    v2.generate_many([(after, plan)], split=split)
    assert after.random() == rng.random()


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


def _mutants(v2, seed: int) -> list[str]:
    """Generated prompts with one character replaced, inserted or deleted, and some long or zero-led
    numbers, chains and letters: well-formed and malformed prompts for the array solver."""
    rng = np.random.default_rng(seed)
    alpha = list("0123456789+-*?=<>cs") + ["x", "\u0130"]
    out = []
    for p in [e.prompt for s, d in v2.cells for e in v2.generate(s, d, rng_for(seed, d), 12)]:
        q = list(p)
        k = int(rng.integers(len(q)))
        r = rng.random()
        if r < 0.4:
            q[k] = alpha[int(rng.integers(len(alpha)))]
        elif r < 0.5:
            q.insert(k, alpha[int(rng.integers(len(alpha)))])
        elif r < 0.6 and len(q) > 1:
            del q[k]
        out.append("".join(q))
    digits = list("0123456789")
    for _ in range(200):
        a, b = ("".join(rng.choice(digits, int(rng.integers(1, 21)))) for _ in range(2))
        out.append(a + str(rng.choice(list("+-*?"))) + b + "=")
        out.append(str(rng.choice(["c", "s"])) + a + "=")
        out.append(str(int(rng.integers(10))) + "".join(str(rng.choice(["+", "-"])) + str(int(rng.integers(10)))
                                                   for _ in range(int(rng.integers(1, 8)))) + "=")
    return out


def test_array_solver_agrees_with_the_scalar_solver_on_mutated_prompts(v2):
    """Every prompt the array solver accepts gets the scalar solver's answer (the array solver is the
    stricter of the two: no leading zeros, no negative differences, at most 18 digits); it accepts
    and rejects a good share of the mutants."""
    prompts = _mutants(v2, 21)
    codes, lengths = texts_to_codes(prompts)
    answers, answer_len, ok = v2.solve_arrays(np.pad(codes, ((0, 0), (0, 2))), lengths)  # extra zero columns
    assert 0.3 < ok.mean() < 0.9
    texts = codes_to_texts(answers)
    for p, a, n, good in zip(prompts, texts, answer_len, ok, strict=True):
        if good:
            assert v2.solve(p) == a and len(a) == n, p
        else:
            assert n == 0 and a == "", p


def test_verify_arrays_is_comparing_the_recomputed_digits(v2):
    """``verify_arrays`` (the gold answer read as a number) equals comparing the gold codes with the
    codes ``solve_arrays`` writes, on mutated prompts with right, wrong, zero-led, empty, symbol and
    out-of-range answers, in chunks that split the rows unevenly."""
    rng = np.random.default_rng(5)
    prompts = _mutants(v2, 22)
    codes, lengths = texts_to_codes(prompts)
    solved, solved_len, ok = v2.solve_arrays(codes, lengths)
    answers = []
    for a, good in zip(codes_to_texts(solved), ok, strict=True):
        r = rng.random()
        if not good or r < 0.4:
            answers.append(a if good else str(int(rng.integers(100))))
        elif r < 0.55:
            answers.append("0" + a)
        elif r < 0.65:
            answers.append(a[:-1] + str(rng.choice(list("0123456789<>=x\u0130"))))
        elif r < 0.7:
            answers.append("")
        else:
            answers.append(a + "1")
    gold, gold_len = texts_to_codes(answers)
    gold = np.pad(gold, ((0, 0), (0, 1)))
    arr = ExampleArrays(codes, lengths, gold, gold_len, np.zeros(len(prompts), np.int64), np.zeros(len(prompts), np.int64),
                        v2.skills)
    width = max(solved.shape[1], gold.shape[1])
    same = (np.pad(solved, ((0, 0), (0, width - solved.shape[1]))) == np.pad(gold, ((0, 0), (0, width - gold.shape[1])))).all(1)
    expected = ok & (solved_len == gold_len) & same
    got = v2.verify_arrays(arr, chunk=97)
    assert got.tolist() == expected.tolist()
    assert 0.2 < expected.mean() < 0.8


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
