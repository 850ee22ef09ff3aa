"""The built-in arithmetic skill suite (``arith``).

Seven skills, four difficulty levels each, and a prerequisite graph::

    copy ──▶ successor ──▶ add ──▶ sub ──▶ chain
      │                     │ └──▶ mul      ▲
      └──▶ compare          └───────────────┘

========== ===================== ====================================================
skill      prompt → answer        difficulty level L (0..3)
========== ===================== ====================================================
copy       ``c4071=`` → ``4071``  the number has L+1 digits
successor  ``s1299=`` → ``1300``  L+1 digits; half the items end in a run of 9s (carries)
add        ``57+68=`` → ``125``   two numbers of L+1 digits each
sub        ``68-57=`` → ``11``    two numbers of L+1 digits, the first not smaller
mul        ``432*7=`` → ``3024``  an L+1 digit number times a digit 1..9
compare    ``58?61=`` → ``<``     two L+1 digit numbers; answer ``<``, ``=`` or ``>``
chain      ``3+5-2=`` → ``6``     L+3 one-digit terms joined by + and -, never below 0
========== ===================== ====================================================

Each item is rebuilt from the generator it is given; the checker is exact match on the
canonical answer, and :meth:`ArithmeticSuite.solve` recomputes the answer from the prompt
alone by parsing it, which the procedural engine uses to verify every example.
"""

from __future__ import annotations

import re

import numpy as np

from distillgym.errors import ConfigError
from distillgym.tasks.base import TaskSuite
from distillgym.types import Example

__all__ = ["ArithmeticSuite"]

_BINARY = re.compile(r"^(\d+)([+\-*?])(\d+)=$")
_UNARY = re.compile(r"^([cs])(\d+)=$")
_CHAIN = re.compile(r"^\d(?:[+\-]\d)+=$")


def _number(rng: np.random.Generator, digits: int) -> int:
    if digits == 1:
        return int(rng.integers(0, 10))
    return int(rng.integers(10 ** (digits - 1), 10**digits))


class ArithmeticSuite(TaskSuite):
    name = "arith"
    skills = ("copy", "successor", "add", "sub", "mul", "compare", "chain")
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

    def generate_one(self, skill: str, difficulty: int, rng: np.random.Generator) -> Example:
        d = difficulty + 1
        if skill == "copy":
            a = _number(rng, d)
            prompt, answer = f"c{a}=", str(a)
        elif skill == "successor":
            if rng.random() < 0.5:  # force a run of trailing 9s so carries are common
                nines = int(rng.integers(1, d + 1))
                # the head keeps the number at exactly d digits: no leading zero, and it
                # does not end in 9 (that would lengthen the run of 9s)
                if d > nines:
                    low = 10 ** (d - nines - 1) if d - nines > 1 else 1
                    head = int(rng.integers(low, 10 ** (d - nines)))
                    head -= head % 10 == 9
                    a = int(f"{head}{'9' * nines}")
                else:
                    a = int("9" * nines)
            else:
                a = _number(rng, d)
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
            a = _number(rng, d)
            u = rng.random()
            if u < 0.2:
                b = a
            elif u < 0.6 and d > 1:  # share a prefix so the decision rests on a late digit
                keep = int(rng.integers(1, d))
                b = int(str(a)[:keep] + str(_number(rng, d))[keep:])
            else:
                b = _number(rng, d)
            prompt, answer = f"{a}?{b}=", "<" if a < b else (">" if a > b else "=")
        elif skill == "chain":
            total = int(rng.integers(0, 10))
            parts = [str(total)]
            for _ in range(d + 1):
                t = int(rng.integers(0, 10))
                if t <= total and rng.random() < 0.5:
                    parts.append(f"-{t}")
                    total -= t
                else:
                    parts.append(f"+{t}")
                    total += t
            prompt, answer = "".join(parts) + "=", str(total)
        else:
            self.skill_index(skill)  # raises UnknownNameError with the valid names
            raise AssertionError("unreachable")
        return Example(prompt=prompt, answer=answer, skill=skill, difficulty=difficulty)

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
