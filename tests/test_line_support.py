"""Written lines are checked against the generator's support (issue 20, item 6).

For every arithmetic suite (each can be played at the open level) and every cell small enough to
enumerate, the test builds the generator's support *independently of the checker*: from the
generator's own rules (a chain subtracts a term only when the running total is at least that term;
sub writes the larger number first; mul's second factor is a digit 1-9; numbers have no leading
zeros), confirmed by sampling the suite's generator. Then it writes every line of the cell's
syntactic family (every digit string of the cell's lengths, every operator pattern, leading zeros
included) with its true answer, and checks that ``check_lines`` accepts exactly the support.
"""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

import distillgym  # noqa: F401
from distillgym.tasks import make_suite
from distillgym.tasks.checks import check_lines

ARITH = ("arith", "arith-v1", "arith-v2")
ISSUE_LINES = ["1-5+9=5", "0-9+9=0", "0-9+0=-9"]  # chains the generator never makes


def _canon(n: int) -> range:
    return range(10) if n == 1 else range(10 ** (n - 1), 10**n)


def _strings(n: int) -> list[str]:
    return ["".join(p) for p in itertools.product("0123456789", repeat=n)]


def _support(skill: str, shape: tuple[int, ...]) -> set[str]:
    """Every prompt the generator can make for one shape, from its rules (not from the checker)."""
    if skill == "chain":
        out: set[str] = set()

        def walk(prefix: str, total: int, left: int) -> None:
            if left == 0:
                out.add(prefix + "=")
                return
            for t in range(10):
                walk(f"{prefix}+{t}", total + t, left - 1)
                if t <= total:
                    walk(f"{prefix}-{t}", total - t, left - 1)

        for first in range(10):
            walk(str(first), first, shape[0] - 1)
        return out
    if skill in ("copy", "successor"):
        return {f"{'c' if skill == 'copy' else 's'}{a}=" for a in _canon(shape[0])}
    if skill == "mul":
        return {f"{a}*{b}=" for a in _canon(shape[0]) for b in range(1, 10)}
    pairs = [(a, b) for a in _canon(shape[0]) for b in _canon(shape[1])]
    if skill == "sub":
        return {f"{max(a, b)}-{min(a, b)}=" for a, b in pairs}
    op = {"add": "+", "compare": "?"}[skill]
    return {f"{a}{op}{b}=" for a, b in pairs}


def _family(skill: str, shape: tuple[int, ...]) -> set[str]:
    """Every prompt of the shape's syntax: any digit strings of its lengths, any operators of the skill."""
    if skill == "chain":
        return {"".join(d[0] + "".join(s + x for s, x in zip(signs, d[1:], strict=True))) + "="
                for d in itertools.product("0123456789", repeat=shape[0])
                for signs in itertools.product("+-", repeat=shape[0] - 1)}
    if skill in ("copy", "successor"):
        return {f"{'c' if skill == 'copy' else 's'}{a}=" for a in _strings(shape[0])}
    if skill == "mul":
        return {f"{a}*{b}=" for a in _strings(shape[0]) for b in "0123456789"}
    op = {"add": "+", "sub": "-", "compare": "?"}[skill]
    return {f"{a}{op}{b}=" for a in _strings(shape[0]) for b in _strings(shape[1])} | (
        {f"{a}-{b}=" for a in _strings(shape[1]) for b in _strings(shape[0])} if skill == "sub" else set())


def _answer(prompt: str) -> str:
    """The true answer, computed here (not by the suite's solver)."""
    body = prompt[:-1]
    if body[0] in "cs":
        return str(int(body[1:]) + (body[0] == "s"))
    if "?" in body:
        a, b = (int(x) for x in body.split("?"))
        return "<" if a < b else (">" if a > b else "=")
    if "*" in body:
        a, b = (int(x) for x in body.split("*"))
        return str(a * b)
    terms = body.replace("-", "+-").split("+")
    return str(sum(int(t) for t in terms if t))


def _small_cells(suite) -> list[tuple[str, int]]:
    out = []
    for skill in suite.skills:
        for d in range(suite.n_difficulties):
            shapes = suite.shapes(skill, d)
            digits = sum(shapes[0]) if skill != "chain" else shapes[0][0]
            if max(sum(s) for s in shapes) <= 3 and digits <= 3:
                out.append((skill, d))
    return out


@pytest.mark.parametrize("name", ARITH)
def test_checker_accepts_exactly_the_generators_support(name):
    suite = make_suite(name)
    cells = _small_cells(suite)
    assert ("chain", 0) in cells and len(cells) >= 8
    for skill, d in cells:
        support = set().union(*(_support(skill, s) for s in suite.shapes(skill, d)))
        # the rules above are the generator's: every sampled item is in the support
        rng = np.random.default_rng(0)
        sampled = {e.prompt for e in suite.generate(skill, d, rng, 3000)}
        assert sampled <= support, (name, skill, d, sorted(sampled - support)[:5])
        family = set().union(*(_family(skill, s) for s in suite.shapes(skill, d))) | support
        lines = [p + _answer(p) for p in sorted(family)]
        check = check_lines(suite, lines, check_leaks=False)
        accepted = {ex.prompt for ex in check.examples if (ex.skill, ex.difficulty) == (skill, d)}
        assert accepted == support, (name, skill, d, sorted(accepted - support)[:5], sorted(support - accepted)[:5])


@pytest.mark.parametrize("name", ARITH)
def test_the_issues_chain_lines_are_off_grid_unless_the_v1_check_is_asked_for(name):
    suite = make_suite(name)
    strict = check_lines(suite, ISSUE_LINES, check_leaks=False)
    assert [v for _, v in strict.verdicts] == ["off_grid"] * 3
    lenient = check_lines(suite, ISSUE_LINES[:2], check_leaks=False, support=False)  # ArithOpen-v1's check
    assert [v for _, v in lenient.verdicts] == ["ok", "ok"]


def test_arith_open_v2_rejects_lines_outside_the_support_and_v1_keeps_its_check():
    kw = dict(budget=64, examples_per_step=64, n_val_per_cell=2, n_test_per_cell=2)
    lines = "\n".join(ISSUE_LINES[:2] + ["3+5-2=6"])
    got = {}
    for version in ("v1", "v2"):
        env = gym.make(f"distillgym/ArithOpen-{version}", **kw)
        env.reset(seed=0)
        _, _, _, _, info = env.step(lines)
        got[version] = (info["action"]["accepted"], info["action"]["rejected"]["off_grid"])
        env.close()
    assert got["v2"][1] >= 2 and got["v2"][0] <= 1
    assert got["v1"][1] == 0
    assert gym.make("distillgym/ArithOpen-v2", **kw).unwrapped.config["check_support"] is True
    assert "check_support" not in gym.make("distillgym/ArithOpen-v1", **kw).unwrapped.config  # v1's config unchanged


@pytest.mark.parametrize("skill,d", [("gcd", 0), ("lcm", 0), ("lcm", 1)])
def test_reasoning_gym_checker_accepts_exactly_what_reasoning_gym_makes(skill, d):
    """The reasoning-gym suite (playable at the open level too): for cells small enough that sampling
    reasoning-gym enumerates them (every item seen), every line of the cell's syntax (one to three
    numbers of one or two digits, leading zeros included) is accepted exactly when reasoning-gym makes it."""
    import math

    pytest.importorskip("reasoning_gym")
    suite = make_suite("reasoning-gym")
    made = {e.prompt for e in suite.generate(skill, d, np.random.default_rng(0), 20000)}
    assert len(made) == suite.cell_size(skill, d)  # the whole support was drawn
    numbers = [str(i) for i in range(10)] + _strings(2)
    family = {f"{skill}{a},{b}=" for a in numbers for b in numbers}
    family |= {f"{skill}{a},{b},{c}=" for a in "0123456789" for b in "0123456789" for c in "0123456789"}
    fn = math.gcd if skill == "gcd" else math.lcm
    lines = [p + str(fn(*(int(x) for x in p[len(skill):-1].split(",")))) for p in sorted(family | made)]
    check = check_lines(suite, lines, check_leaks=False)
    accepted = {ex.prompt for ex in check.examples if (ex.skill, ex.difficulty) == (skill, d)}
    assert accepted == made, (sorted(accepted - made)[:5], sorted(made - accepted)[:5])
