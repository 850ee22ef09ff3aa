"""The built-in arithmetic skill suites: ``arith`` (v0 levels, no partition) and ``arith-v1``.

Seven skills, four difficulty levels each, and a prerequisite graph::

    copy ──▶ successor ──▶ add ──▶ sub ──▶ chain
      │                     │ └──▶ mul      ▲
      └──▶ compare          └───────────────┘

========== ===================== ==========================================
skill      prompt → answer        what varies with the level
========== ===================== ==========================================
copy       ``c4071=`` → ``4071``  digits of the number
successor  ``s1299=`` → ``1300``  digits; half the items end in a run of 9s (carries)
add        ``57+68=`` → ``125``   digits of the two numbers
sub        ``68-57=`` → ``11``    digits of the two numbers, the first not smaller
mul        ``432*7=`` → ``3024``  digits of the first number, times a digit 1..9
compare    ``58?61=`` → ``<``     digits of the two numbers; answer ``<``, ``=`` or ``>``
chain      ``3+5-2=`` → ``6``     number of one-digit terms joined by + and -, never below 0
========== ===================== ==========================================

**Levels.** ``arith`` (used by ``ArithSkills-v0``) keeps the original levels: every number has
L+1 digits (mul: an L+1 digit number times a digit; chain: L+3 terms). Eight of its 28 cells
have fewer than 200 distinct items (copy and successor at L0 and L1, add, sub, mul and
compare at L0: 10 to 100 items), too few to hold out test items by content, and it has no
partition. ``arith-v1`` (used by the v1 environments) redefines exactly those small cells so
that every cell has at least 900 distinct items, keeps the easy end easy by mixing short
lengths at level 0, and is partitioned by content (80% train, 10% validation, 10% test):

=========  ==================  ============  ============  ============
skill      L0                  L1            L2            L3
=========  ==================  ============  ============  ============
copy       1-3 digits          4 digits      5 digits      6 digits
successor  1-3 digits          4 digits      5 digits      6 digits
add        1+1, 1+2, 2+1       2+2           3+3           4+4
sub        1-1, 2-1            2-2           3-3           4-4
mul        (1-2 digits) x 1    3 x 1         4 x 1         5 x 1
compare    1?1, 1?2, 2?1       2?2           3?3           4?4
chain      3 terms             4 terms       5 terms       6 terms
=========  ==================  ============  ============  ============

(``a+b`` gives the digit counts of the two numbers; where a level lists several shapes, one is
drawn uniformly, then the numbers.) Cell sizes are in :meth:`ArithmeticSuite.cell_size`;
the smallest v1 cells are mul L0 (900 items) and sub L0 (955).

Each item is rebuilt from the generator it is given; the checker is exact match on the
canonical answer, and :meth:`ArithmeticSuite.solve` recomputes the answer from the prompt
alone by parsing it, which the data engines use to verify every example.
"""

from __future__ import annotations

import re

import numpy as np

from distillgym.errors import ConfigError
from distillgym.tasks.base import TaskSuite
from distillgym.types import Example

__all__ = ["ArithmeticSuite", "ArithmeticSuiteV1"]

_BINARY = re.compile(r"^(\d+)([+\-*?])(\d+)=$")
_UNARY = re.compile(r"^([cs])(\d+)=$")
_CHAIN = re.compile(r"^\d(?:[+\-]\d)+=$")

# v1 level table: per skill, per level, the shapes (digit counts of the numbers) drawn from.
_V1_SHAPES: dict[str, list[list[tuple[int, ...]]]] = {
    "copy": [[(1,), (2,), (3,)], [(4,)], [(5,)], [(6,)]],
    "successor": [[(1,), (2,), (3,)], [(4,)], [(5,)], [(6,)]],
    "add": [[(1, 1), (1, 2), (2, 1)], [(2, 2)], [(3, 3)], [(4, 4)]],
    "sub": [[(1, 1), (2, 1)], [(2, 2)], [(3, 3)], [(4, 4)]],
    "mul": [[(1,), (2,)], [(3,)], [(4,)], [(5,)]],
    "compare": [[(1, 1), (1, 2), (2, 1)], [(2, 2)], [(3, 3)], [(4, 4)]],
}


def _number(rng: np.random.Generator, digits: int) -> int:
    if digits == 1:
        return int(rng.integers(0, 10))
    return int(rng.integers(10 ** (digits - 1), 10**digits))


def _count(digits: int) -> int:
    """How many numbers have exactly ``digits`` digits (0 counts as a 1-digit number)."""
    return 10 if digits == 1 else 9 * 10 ** (digits - 1)


def _chain_count(terms: int) -> int:
    """Distinct chain prompts of ``terms`` one-digit terms whose running total never drops below 0."""
    counts = {t: 1 for t in range(10)}  # running total -> number of prefixes
    for _ in range(terms - 1):
        nxt: dict[int, int] = {}
        for total, k in counts.items():
            for t in range(10):
                nxt[total + t] = nxt.get(total + t, 0) + k
                if t <= total:
                    nxt[total - t] = nxt.get(total - t, 0) + k
        counts = nxt
    return sum(counts.values())


def _digits(s: str) -> int | None:
    """Digit count of a canonical number string (no leading zeros), else None."""
    if not s.isdigit() or (len(s) > 1 and s[0] == "0"):
        return None
    return len(s)


class ArithmeticSuite(TaskSuite):
    """The arithmetic suite with the original (v0) levels and no content partition."""

    name = "arith"
    version = 0
    description = (
        "Integer arithmetic on short decimal numbers, written as compact prompts that end in '=' and "
        "are answered by a number or a comparison sign."
    )
    skills = ("copy", "successor", "add", "sub", "mul", "compare", "chain")
    skill_descriptions = {
        "copy": "repeat the number: c4071= -> 4071",
        "successor": "the number plus one: s1299= -> 1300",
        "add": "the sum of two numbers: 57+68= -> 125",
        "sub": "the difference of two numbers, the first not smaller: 68-57= -> 11",
        "mul": "a number times a digit: 432*7= -> 3024",
        "compare": "compare two numbers with <, = or >: 58?61= -> <",
        "chain": "a chain of one-digit additions and subtractions: 3+5-2= -> 6",
    }
    n_difficulties = 4
    prerequisites = {
        "copy": (),
        "successor": ("copy",),
        "add": ("successor",),
        "sub": ("add",),
        "mul": ("add",),
        "compare": ("copy",),
        "chain": ("add", "sub"),
    }
    alphabet = "0123456789+-*?=<>cs"
    max_answer_len = 5
    max_prompt_len = 12
    partition = None

    # ------------------------------------------------------------------ generation
    def generate_one(self, skill: str, difficulty: int, rng: np.random.Generator) -> Example:
        d = difficulty + 1
        if skill == "copy":
            a = _number(rng, d)
            prompt, answer = f"c{a}=", str(a)
        elif skill == "successor":
            a = self._successor_operand(rng, d)
            prompt, answer = f"s{a}=", str(a + 1)
        elif skill == "add":
            a, b = _number(rng, d), _number(rng, d)
            prompt, answer = f"{a}+{b}=", str(a + b)
        elif skill == "sub":
            a, b = _number(rng, d), _number(rng, d)
            a, b = max(a, b), min(a, b)
            prompt, answer = f"{a}-{b}=", str(a - b)
        elif skill == "mul":
            a, b = _number(rng, d), int(rng.integers(1, 10))
            prompt, answer = f"{a}*{b}=", str(a * b)
        elif skill == "compare":
            a, b = self._compare_operands(rng, d, d)
            prompt, answer = f"{a}?{b}=", "<" if a < b else (">" if a > b else "=")
        elif skill == "chain":
            prompt, answer = self._chain(rng, d + 2)
        else:
            self.skill_index(skill)  # raises UnknownNameError with the valid names
            raise ConfigError(f"suite {self.name!r} has no generator for skill {skill!r}")
        return Example(prompt=prompt, answer=answer, skill=skill, difficulty=difficulty)

    @staticmethod
    def _successor_operand(rng: np.random.Generator, d: int) -> int:
        if rng.random() < 0.5:  # force a run of trailing 9s so carries are common
            nines = int(rng.integers(1, d + 1))
            # the head keeps the number at exactly d digits: no leading zero, and it
            # does not end in 9 (that would lengthen the run of 9s)
            if d > nines:
                low = 10 ** (d - nines - 1) if d - nines > 1 else 1
                head = int(rng.integers(low, 10 ** (d - nines)))
                head -= head % 10 == 9
                return int(f"{head}{'9' * nines}")
            return int("9" * nines)
        return _number(rng, d)

    @staticmethod
    def _compare_operands(rng: np.random.Generator, da: int, db: int) -> tuple[int, int]:
        a = _number(rng, da)
        if da != db:
            return a, _number(rng, db)
        u = rng.random()
        if u < 0.2:
            b = a
        elif u < 0.6 and da > 1:  # share a prefix so the decision rests on a late digit
            keep = int(rng.integers(1, da))
            b = int(str(a)[:keep] + str(_number(rng, da))[keep:])
        else:
            b = _number(rng, da)
        return a, b

    @staticmethod
    def _chain(rng: np.random.Generator, terms: int) -> tuple[str, str]:
        total = int(rng.integers(0, 10))
        parts = [str(total)]
        for _ in range(terms - 1):
            t = int(rng.integers(0, 10))
            if t <= total and rng.random() < 0.5:
                parts.append(f"-{t}")
                total -= t
            else:
                parts.append(f"+{t}")
                total += t
        return "".join(parts) + "=", str(total)

    # ------------------------------------------------------------------ sizes and cells
    def shapes(self, skill: str, difficulty: int) -> list[tuple[int, ...]]:
        """Digit counts of the numbers a cell draws (chain: the number of terms, as a 1-tuple)."""
        self.check_cell(skill, difficulty)
        d = difficulty + 1
        if skill == "chain":
            return [(d + 2,)]
        if skill in ("copy", "successor", "mul"):
            return [(d,)]
        return [(d, d)]

    def cell_size(self, skill: str, difficulty: int) -> int | None:
        """Distinct prompts of a cell, counted exactly from its shapes."""
        total = 0
        for shape in self.shapes(skill, difficulty):
            if skill == "chain":
                total += _chain_count(shape[0])
            elif skill in ("copy", "successor"):
                total += _count(shape[0])
            elif skill == "mul":
                total += _count(shape[0]) * 9
            elif skill == "sub" and shape[0] == shape[1]:
                n = _count(shape[0])
                total += n * (n + 1) // 2  # pairs a >= b
            else:  # add, compare; sub with a longer first number (always a > b)
                total += _count(shape[0]) * _count(shape[1])
        return total

    def classify(self, prompt: str) -> tuple[str, int] | None:
        """The cell whose shapes produce ``prompt`` (numbers written without leading zeros)."""
        skill: str | None = None
        shape: tuple[int, ...] | None = None
        if m := _UNARY.match(prompt):
            n = _digits(m.group(2))
            skill, shape = ("copy" if m.group(1) == "c" else "successor"), (n,) if n else None
        elif _CHAIN.match(prompt) and len(re.findall(r"[+\-]", prompt)) >= 2:
            skill, shape = "chain", (len(re.findall(r"\d", prompt)),)
        elif m := _BINARY.match(prompt):
            a, op, b = m.group(1), m.group(2), m.group(3)
            na, nb = _digits(a), _digits(b)
            if na is None or nb is None:
                return None
            if op == "*":
                if nb != 1 or b == "0":
                    return None
                skill, shape = "mul", (na,)
            else:
                skill = {"+": "add", "-": "sub", "?": "compare"}[op]
                if skill == "sub" and int(a) < int(b):
                    return None
                shape = (na, nb)
        if skill is None or shape is None or None in shape:
            return None
        for d in range(self.n_difficulties):
            if shape in self.shapes(skill, d):
                return skill, d
        return None

    def in_support(self, prompt: str) -> bool:
        """False for a chain whose running total goes below 0 (``1-5+9=``, ``0-9+9=``): the generator
        subtracts a term only when the total so far is at least that term. Every other cell draws
        every combination of its shapes (sub: first >= second and mul: a digit 1-9, which
        :meth:`classify` checks)."""
        if not (_CHAIN.match(prompt) and len(re.findall(r"[+\-]", prompt)) >= 2):
            return True
        total = 0
        for sign, digit in re.findall(r"([+\-]?)(\d)", prompt[:-1]):
            total += -int(digit) if sign == "-" else int(digit)
            if total < 0:
                return False
        return True

    # ------------------------------------------------------------------ checking
    def score(self, prediction: str, gold: str) -> float:
        return 1.0 if prediction.strip() == gold.strip() else 0.0

    def solve(self, prompt: str) -> str:
        """Recompute the answer from the prompt text alone (independent of the generator)."""
        if m := _UNARY.match(prompt):
            a = int(m.group(2))
            return str(a if m.group(1) == "c" else a + 1)
        if _CHAIN.match(prompt) and prompt.count("*") == 0 and prompt.count("?") == 0:
            if len(re.findall(r"[+\-]", prompt)) >= 2:
                total = 0
                for sign, digit in re.findall(r"([+\-]?)(\d)", prompt[:-1]):
                    total += -int(digit) if sign == "-" else int(digit)
                return str(total)
        if m := _BINARY.match(prompt):
            a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
            if op == "+":
                return str(a + b)
            if op == "-":
                return str(a - b)
            if op == "*":
                return str(a * b)
            return "<" if a < b else (">" if a > b else "=")
        raise ConfigError(f"cannot parse arithmetic prompt {prompt!r}")


class ArithmeticSuiteV1(ArithmeticSuite):
    """The arithmetic suite with the v1 levels (every cell at least 900 distinct items) and a
    content partition of 80% train, 10% validation, 10% test; see the module docstring."""

    name = "arith-v1"
    version = 1
    max_answer_len = 7  # s999999= -> 1000000
    max_prompt_len = 12  # 1234+5678= / 5-4+3-2+1+0=
    partition = (0.8, 0.1, 0.1)

    def shapes(self, skill: str, difficulty: int) -> list[tuple[int, ...]]:
        self.check_cell(skill, difficulty)
        if skill == "chain":
            return [(difficulty + 3,)]
        return list(_V1_SHAPES[skill][difficulty])

    def generate_one(self, skill: str, difficulty: int, rng: np.random.Generator) -> Example:
        if skill == "chain":
            prompt, answer = self._chain(rng, difficulty + 3)
            return Example(prompt=prompt, answer=answer, skill=skill, difficulty=difficulty)
        self.skill_index(skill)
        options = _V1_SHAPES[skill][difficulty]
        shape = options[int(rng.integers(len(options)))] if len(options) > 1 else options[0]
        if skill == "copy":
            a = _number(rng, shape[0])
            prompt, answer = f"c{a}=", str(a)
        elif skill == "successor":
            a = self._successor_operand(rng, shape[0])
            prompt, answer = f"s{a}=", str(a + 1)
        elif skill == "add":
            a, b = _number(rng, shape[0]), _number(rng, shape[1])
            prompt, answer = f"{a}+{b}=", str(a + b)
        elif skill == "sub":
            a, b = _number(rng, shape[0]), _number(rng, shape[1])
            a, b = max(a, b), min(a, b)
            prompt, answer = f"{a}-{b}=", str(a - b)
        elif skill == "mul":
            a, b = _number(rng, shape[0]), int(rng.integers(1, 10))
            prompt, answer = f"{a}*{b}=", str(a * b)
        else:  # compare
            a, b = self._compare_operands(rng, shape[0], shape[1])
            prompt, answer = f"{a}?{b}=", "<" if a < b else (">" if a > b else "=")
        return Example(prompt=prompt, answer=answer, skill=skill, difficulty=difficulty)
