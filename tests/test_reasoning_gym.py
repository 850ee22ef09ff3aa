"""The reasoning-gym task suite: compact prompts, independent gold answers, levels, floors, errors."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from distillgym.errors import ConfigError, DependencyMissingError, UnknownNameError
from distillgym.seeding import STREAM_TEST, STREAM_TRAIN, STREAM_VAL, rng_for
from distillgym.tasks import SUITES, make_suite

rg = pytest.importorskip("reasoning_gym", reason="the reasoning-gym extra is not installed")

from distillgym.tasks import reasoning_gym as rgs  # noqa: E402  (after the skip)

N_GOLD = 120
"""Items per cell in the gold-answer test (3,840 over the 32 default cells)."""


@pytest.fixture(scope="module")
def suite():
    return make_suite("reasoning-gym")


def test_registered_lazily_and_import_stays_light():
    assert SUITES["reasoning-gym"] == "distillgym.tasks.reasoning_gym:ReasoningGymSuite" or (
        SUITES["reasoning-gym"] is rgs.ReasoningGymSuite
    )
    code = "import sys, distillgym, distillgym.tasks; print('reasoning_gym' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_default_suite_shape(suite):
    assert suite.skills == rgs.DEFAULT_SKILLS and len(suite.skills) == 8
    assert suite.n_difficulties == 4
    suite.validate()
    # bos + prompt + answer + eos fits the tiny student's default 32 positions
    assert 2 + suite.max_prompt_len + suite.max_answer_len <= 32
    # and no single item is longer than 21 characters (a padded mini-batch costs its longest row)
    assert max(sum(rgs.ADAPTERS[s].bounds(cfg)) for s in suite.skills for cfg in suite.levels[s]) <= 21
    from distillgym.students.hf_student import TinyStudent

    student = TinyStudent.for_suite(suite, device="cpu")
    assert student.config.max_positions == 32
    assert suite.prerequisites == rgs.DEFAULT_PREREQUISITES
    assert suite.topological_order()[0] == "chain_sum"


@pytest.mark.parametrize("skill", rgs.DEFAULT_SKILLS)
def test_gold_answers_match_reasoning_gym_on_every_item(suite, skill):
    """Every generated item of every level: the answer recomputed from the compact prompt alone
    is the item's answer, it is reasoning-gym's own answer for the item it was rebuilt from,
    reasoning-gym's scorer gives it 1.0, and the prompt classifies back into its cell."""
    alphabet = set(suite.alphabet)
    for d in range(suite.n_difficulties):
        rng = rng_for(11, STREAM_TRAIN, suite.skill_index(skill), d)
        prompts = set()
        for _ in range(N_GOLD):
            ex, entry = suite.draw(skill, d, rng)
            assert entry["metadata"]["source_dataset"] == skill
            assert suite.solve(ex.prompt) == ex.answer, (ex, entry["answer"])
            assert suite.matches_reasoning_gym(skill, ex.answer, entry["answer"]), (ex, entry["answer"])
            assert suite.reasoning_gym_score(ex, entry) == 1.0, (ex, entry["answer"])
            assert suite.classify(ex.prompt) == (skill, d), ex
            assert ex.prompt.endswith("=") and ex.prompt.count("=") == 1
            assert set(ex.prompt + ex.answer) <= alphabet, ex
            assert len(ex.prompt) <= suite.max_prompt_len and 1 <= len(ex.answer) <= suite.max_answer_len, ex
            assert suite.parse_line(suite.format_line(ex)) == (ex.prompt, ex.answer)
            # a wrong answer scores 0 under exact match
            assert suite.score(ex.answer + "1", ex.answer) == 0.0
            prompts.add(ex.prompt)
        assert len(prompts) > N_GOLD // 4, (skill, d, len(prompts))


def test_leg_table_is_reasoning_gyms():
    from reasoning_gym.arithmetic.leg_counting import ANIMALS

    assert rgs.LEGS == ANIMALS
    assert len(set(rgs.ANIMAL_CODES.values())) == len(rgs.LEGS)  # codes are unambiguous


def test_items_come_from_our_seed_streams(suite):
    """Same generator state, same items; neighbouring seeds give unrelated streams (unlike
    reasoning-gym's Random(seed + index)), and gcd and lcm with one seed draw different numbers."""
    a = suite.generate("gcd", 3, rng_for(5, STREAM_VAL), 40)
    assert a == suite.generate("gcd", 3, rng_for(5, STREAM_VAL), 40)
    b = suite.generate("gcd", 3, rng_for(6, STREAM_VAL), 40)
    assert not {e.prompt for e in a[1:]} & {e.prompt for e in b}
    # reasoning-gym itself: seed s+1 is seed s shifted by one item, and gcd == lcm numbers
    g0 = rg.create_dataset("gcd", seed=5, size=3)
    g1 = rg.create_dataset("gcd", seed=6, size=3)
    assert g0[1]["question"] == g1[0]["question"]
    lcm = rg.create_dataset("lcm", seed=5, size=3, max_value=1000)
    assert g0[0]["metadata"]["numbers"] == lcm[0]["metadata"]["numbers"]
    # ours: the same generator state used for gcd and lcm gives different numbers
    g = suite.generate("gcd", 3, rng_for(7, STREAM_VAL), 20)
    lc = suite.generate("lcm", 3, rng_for(7, STREAM_VAL), 20)
    assert [e.prompt[3:] for e in g] != [e.prompt[3:] for e in lc]


def test_splits_are_disjoint_by_content(suite):
    parts = {}
    for split, stream in (("train", STREAM_TRAIN), ("val", STREAM_VAL), ("test", STREAM_TEST)):
        exs = suite.generate("chain_sum", 0, rng_for(1, stream), 60, split=split)
        assert all(suite.part_of(e.prompt) == split for e in exs)
        parts[split] = {e.prompt for e in exs}
    assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"] and not parts["val"] & parts["test"]
    assert suite.unpartitioned_cells() == []


def _enumerate(skill: str, level: int) -> set[str]:
    """Every compact prompt of a small default cell, listed by hand from the level table."""
    ops, digits = "+-", range(10)
    if (skill, level) == ("chain_sum", 0):
        two = {f"{a}{o}{b}=" for a in digits for b in digits for o in ops}
        return two | {f"{a}{o}{b}{p}{c}=" for a in digits for b in digits for c in digits for o in ops for p in ops}
    if (skill, level) == ("products", 0):
        return {f"{a}*{b}=" for a in digits for b in digits} | {
            f"{a}*{b}*{c}=" for a in digits for b in digits for c in digits
        }
    if skill in ("gcd", "lcm"):
        lo, hi = {("gcd", 0): (1, 30), ("lcm", 0): (1, 30), ("lcm", 1): (31, 60)}[(skill, level)]
        return {f"{skill}{a},{b}=" for a in range(lo, hi + 1) for b in range(lo, hi + 1)}
    if (skill, level) == ("base_conversion", 0):
        return {
            f"{s}:{np.base_repr(v, s).lower()}>{t}="
            for s in (2, 3, 4)
            for t in (2, 3, 4)
            if s != t
            for v in range(1, 256)
        }
    if (skill, level) == ("leg_counting", 0):
        codes = list(rgs.ANIMAL_CODES.values())
        return {f"1{a}=" for a in codes} | {f"1{a},1{b}=" for a in codes for b in codes if a != b}
    raise AssertionError((skill, level))


SMALL_CELLS = [
    ("chain_sum", 0),
    ("products", 0),
    ("gcd", 0),
    ("lcm", 0),
    ("lcm", 1),
    ("base_conversion", 0),
    ("leg_counting", 0),
]


@pytest.mark.parametrize("skill,level", SMALL_CELLS)
def test_cell_sizes_are_exact_for_small_cells(suite, skill, level):
    """The declared size equals the hand-listed item space; every listed prompt classifies into the
    cell; draws stay inside it and, at five draws per item, find most of it (not all: reasoning-gym
    redraws coprime lcm pairs, and the gcd cells are rebalanced, which makes some items rare)."""
    space = _enumerate(skill, level)
    assert suite.cell_size(skill, level) == len(space)
    assert all(suite.classify(p) == (skill, level) for p in space)
    drawn = {
        e.prompt for e in suite.generate(skill, level, rng_for(2, suite.skill_index(skill), level), 5 * len(space))
    }
    assert drawn <= space and len(drawn) >= 0.8 * len(space), (len(drawn), len(space))


def test_every_default_cell_has_at_least_900_prompts(suite):
    sizes = {c: suite.cell_size(*c) for c in suite.cells}
    assert min(sizes.values()) >= 900, sizes
    assert suite.cell_size("leg_counting", 2) == 37 * 36 * 15 * 15  # 2 kinds in order, 6-20 of each


def test_guessing_floors_are_at_most_0_3(suite):
    floors = suite.guessing_floors()
    assert floors.shape == (8, 4)
    assert float(floors.max()) <= 0.3, dict(zip(suite.cells, floors.ravel().round(3), strict=True))
    assert floors[suite.skill_index("gcd"), 0] > 0.15  # small cells do have a dominant answer
    assert floors[suite.skill_index("spell_backward"), 3] < 0.01
    # the floor is the majority share of a cell's items
    exs = suite.generate("products", 0, rng_for(rgs._FLOOR_STREAM, 1, 0), 2000)
    top = Counter(e.answer for e in exs).most_common(1)[0][1] / 2000
    assert suite.guessing_floor("products", 0) == pytest.approx(top)


def test_gcd_needs_rebalancing(monkeypatch):
    """Without REBALANCE reasoning-gym's gcd answers '2' for more than 30% of the items of L0."""
    monkeypatch.setattr(rgs, "REBALANCE", {})
    plain = rgs.ReasoningGymSuite(skills=["gcd"])
    counts = Counter(e.answer for e in plain.generate("gcd", 0, rng_for(3, 0), 4000))
    assert counts.most_common(1)[0][0] == "2" and counts["2"] / 4000 > 0.3


def test_reasoning_gym_scorer_is_wrapped(suite):
    """reasoning-gym's scorer gives partial credit and can raise; distillgym's accuracy is exact
    match, and the wrapper turns an exception into 0.0."""
    ex, entry = suite.draw("chain_sum", 3, rng_for(4, 0))
    partial = suite.reasoning_gym_score(ex, entry, ex.answer + "0")
    assert 0.0 < partial < 1.0 and suite.score(ex.answer + "0", ex.answer) == 0.0
    pf = rg.create_dataset("prime_factorization", seed=0, size=1)
    item = pf[0]
    with pytest.raises(ValueError):
        pf.score_answer("2*3", item)
    assert rgs.reasoning_gym_score(pf, "2*3", item) == 0.0
    assert rgs.reasoning_gym_score(pf, item["answer"], item) == 1.0


def test_solver_and_classifier_on_hand_written_prompts(suite):
    assert suite.solve("12+34-5=") == "41"
    assert suite.solve("3-8=") == "-5"
    assert suite.solve("12*34=") == "408"
    assert suite.solve("gcd12,18=") == "6" and suite.solve("lcm4,6=") == "12"
    assert suite.solve("2:1011>3=") == "102" and suite.solve("10:255>16=") == "ff"
    assert suite.solve("rev:hello=") == "olleh"
    assert suite.solve("3cow,2ant=") == "24" and suite.solve("1pray,1wood=") == "20"
    assert suite.solve("<3,1,2=") == "1,2,3" and suite.solve(">3,10,2=") == "10,3,2"
    assert suite.classify("7-0=") == ("chain_sum", 0)
    assert suite.classify("gcd40,45=") == ("gcd", 1) and suite.classify("gcd30,7=") == ("gcd", 0)
    assert suite.classify("1cow=") == ("leg_counting", 0) and suite.classify("3cow=") == ("leg_counting", 1)
    off_grid = ["12+3=", "gcd0,5=", "gcd15,45=", "rev:qzqz=", "3cow,3cow=", "2:1>2=", "<1=", "2:5>3=", "9*9*9*9="]
    for prompt in off_grid:
        assert suite.classify(prompt) is None, prompt
    for bad in ["hello", "gcd12=", "2:102>3=", "01+2=", "3zebra=", "<3,-0=", "rev:Hello="]:
        with pytest.raises(ConfigError, match="cannot parse"):
            suite.solve(bad)


def test_written_lines_are_verified(suite):
    from distillgym.tasks.checks import check_lines

    lines = ["7-0=7", "7-0=8", "rev:qzqz=zqzq", "hello=x", "gcd2,4=2", "7-0=7"]
    train = [p for p in (f"{a}+{b}=" for a in range(10) for b in range(10)) if suite.part_of(p) == "train"]
    lines.append(f"{train[0]}{suite.solve(train[0])}")
    out = check_lines(suite, lines)
    kinds = dict(out.verdicts)
    assert kinds["7-0=8"] in ("wrong", "leak_val", "leak_test")
    assert kinds["rev:qzqz=zqzq"] == "off_grid" and kinds["hello=x"] == "malformed"
    assert kinds[lines[-1]] == "ok"


def test_procedural_engine_verifies_every_item(suite):
    from distillgym.engines import ProceduralEngine
    from distillgym.types import PlanItem

    plan = [PlanItem(s, d, 16) for s, d in suite.cells]
    examples, cost = ProceduralEngine(suite).generate(plan, rng_for(8, STREAM_TRAIN))
    assert len(examples) == 16 * 32 and cost.rejected == 0
    assert all(suite.part_of(e.prompt) == "train" for e in examples)


def test_subsets_levels_and_prerequisites():
    small = make_suite(
        "reasoning-gym",
        skills=["gcd", "lcm"],
        levels={
            "gcd": [
                {"min_numbers": 2, "max_numbers": 2, "min_value": 1, "max_value": 30},
                {"min_numbers": 3, "max_numbers": 3, "min_value": 1, "max_value": 30},
            ],
            "lcm": [
                {"min_numbers": 2, "max_numbers": 2, "min_value": 1, "max_value": 20},
                {"min_numbers": 2, "max_numbers": 2, "min_value": 21, "max_value": 40},
            ],
        },
    )
    assert small.skills == ("gcd", "lcm") and small.n_difficulties == 2
    assert small.prerequisites == {"gcd": (), "lcm": ("gcd",)}  # edges to absent skills dropped
    ex = small.generate("gcd", 1, rng_for(1, 0), 5)
    assert all(e.prompt.count(",") == 2 for e in ex) and all(small.solve(e.prompt) == e.answer for e in ex)
    assert small.cell_size("gcd", 1) == 30**3


def test_bad_configuration_errors():
    with pytest.raises(UnknownNameError, match="spell_backward"):
        rgs.ReasoningGymSuite(skills=["spell_backwards"])
    with pytest.raises(UnknownNameError, match="without a compact form"):
        rgs.ReasoningGymSuite(skills=["prime_factorization"])
    with pytest.raises(ConfigError, match="non-empty list"):
        rgs.ReasoningGymSuite(skills="gcd")
    with pytest.raises(ConfigError, match="may set only"):
        rgs.ReasoningGymSuite(skills=["chain_sum"], levels={"chain_sum": [{"allow_negation": True}]})
    with pytest.raises(ConfigError, match="rejects"):
        rgs.ReasoningGymSuite(
            skills=["gcd"], levels={"gcd": [{"min_numbers": 2, "max_numbers": 2, "min_value": 50, "max_value": 10}]}
        )
    with pytest.raises(ConfigError, match="missing"):
        rgs.ReasoningGymSuite(skills=["gcd"], levels={"gcd": [{"max_value": 10}]})
    with pytest.raises(ConfigError, match="same number of levels"):
        rgs.ReasoningGymSuite(skills=["gcd", "lcm"], levels={"gcd": [rgs.DEFAULT_LEVELS["gcd"][0]]})
    with pytest.raises(ConfigError, match="not among the skills"):
        rgs.ReasoningGymSuite(skills=["gcd"], levels={"lcm": rgs.DEFAULT_LEVELS["lcm"]})
    with pytest.raises(ConfigError, match="whole number"):
        rgs.ReasoningGymSuite(
            skills=["number_sorting"],
            levels={"number_sorting": [{"min_numbers": 2, "max_numbers": 3, "min_value": 0, "max_value": 9.5}]},
        )
    with pytest.raises(ConfigError):
        make_suite("reasoning-gym", sklls=["gcd"])


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # makes `import reasoning_gym` fail
    with pytest.raises(DependencyMissingError, match=r'pip install "distillgym\[reasoning-gym\]"'):
        rgs.ReasoningGymSuite()


def test_version_from_metadata():
    assert rgs.reasoning_gym_version() == importlib.metadata.version("reasoning-gym")


def test_partition_fractions_are_respected(suite):
    rng = np.random.default_rng(0)
    parts = Counter(suite.part_of(e.prompt) for e in suite.generate("spell_backward", 3, rng, 3000))
    assert abs(parts["train"] / 3000 - 0.8) < 0.03 and abs(parts["val"] / 3000 - 0.1) < 0.02
