"""Checking written examples: text lines in, verified examples and counts by kind out.

Used by the open-ended action level (a teacher writes the training data) and by data engines
in which a language model writes it. Each non-empty line (surrounding whitespace stripped) is
checked in this order, and the first failed check names its kind:

1. ``over_limit``: the line comes after the first ``max_lines`` non-empty lines (not charged);
2. ``overlong``: longer than the suite's ``max_line_len``;
3. ``malformed``: a character outside the suite's alphabet, or not ``prompt + answer`` as the
   suite's ``parse_line`` reads it, or a prompt the suite's solver cannot parse;
4. ``off_grid``: a well-formed prompt that belongs to no (skill, difficulty) cell of the suite, or
   (with ``support=True``, the default) one its cell's generator could never make
   (:meth:`~distillgym.tasks.base.TaskSuite.in_support`: an arithmetic chain whose running total
   goes below 0, such as ``1-5+9=5`` or ``0-9+0=-9``);
5. ``leak_val`` / ``leak_test``: the prompt lies in the validation or test part of the item
   space (only for cells that claim a content partition, see :mod:`distillgym.tasks.base`);
6. ``wrong``: the answer differs from the gold answer the suite's solver recomputes from the
   prompt (scored with the suite's own rule, which must give 1.0);
7. ``duplicate``: the same prompt was already accepted in this call (or is in ``seen``).

A line that passes becomes an :class:`~distillgym.types.Example` with the *recomputed* gold
answer (equal to the written one), its cell, ``verified=True`` and the given ``source``. The
charge (``LineCheck.charged``) is the number of non-empty lines within ``max_lines``, whatever
became of them: rejected lines cost budget too.

**Unverified lines** (``unverified_prefix``, with ``line_costs``): a line that starts with the
prefix is read without it and goes through checks 1-5 and 7 but not 6: its *written* answer
reaches the student (``verified=False``, source ``"unverified"``), and a wrong one is counted in
``LineCheck.unverified_wrong``. With ``line_costs`` (budget units per ``verified`` and
``unverified`` line) the limit ``max_lines`` counts units: lines are read in order while their cost
fits, and the first line that does not fit and every line after it are ``over_limit``;
``charged`` is then the units of the lines read, and ``cost.by_source`` gives per kind the lines'
``units``, the ``examples`` accepted and the ``wrong`` ones among them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from distillgym.tasks.base import TaskSuite
from distillgym.types import EngineCost, Example

__all__ = ["LineCheck", "REJECT_KINDS", "check_lines"]

REJECT_KINDS = ("over_limit", "overlong", "malformed", "off_grid", "leak_val", "leak_test", "wrong", "duplicate")


@dataclass
class LineCheck:
    """The outcome of :func:`check_lines`."""

    examples: list[Example]
    cost: EngineCost
    charged: int = 0
    """Budget charged: non-empty lines within the limit (each costs one example of budget), or their
    units with ``line_costs``."""
    verdicts: list[tuple[str, str]] = field(default_factory=list)
    """``(line, "ok" or the rejection kind)`` for every non-empty line, in order."""
    lines: int = 0
    """Non-empty lines within the limit (read and charged, accepted or not)."""
    unverified_wrong: int = 0
    """Unverified lines accepted with a wrong answer (they reach the student)."""

    @property
    def counts(self) -> dict[str, int]:
        """Accepted and rejected lines by kind (every kind present, zeros included)."""
        out = {"accepted": len(self.examples), **dict.fromkeys(REJECT_KINDS, 0)}
        out.update(self.cost.rejected_by_kind)
        return out


def check_lines(
    suite: TaskSuite,
    lines: Iterable[str],
    max_lines: int | None = None,
    source: str = "written",
    seen: set[str] | None = None,
    check_leaks: bool = True,
    support: bool = True,
    line_costs: dict[str, int] | None = None,
    unverified_prefix: str | None = None,
) -> LineCheck:
    """Verify written lines against ``suite``; see the module docstring for the checks. ``support=False``
    skips the generator-support part of the ``off_grid`` check (``ArithOpen-v1``'s check, kept for its
    recorded numbers)."""
    cost = EngineCost()
    examples: list[Example] = []
    verdicts: list[tuple[str, str]] = []
    accepted: set[str] = set(seen or ())
    alphabet = set(suite.alphabet)
    charged = n_lines = unverified_wrong = 0
    stopped = False
    kinds = {"verified": {"units": 0, "examples": 0, "wrong": 0}, "unverified": {"units": 0, "examples": 0, "wrong": 0}}
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        unverified = bool(unverified_prefix) and line.startswith(unverified_prefix)  # type: ignore[arg-type]
        body = line[len(unverified_prefix):].strip() if unverified else line  # type: ignore[arg-type]
        price = 1 if line_costs is None else int(line_costs["unverified" if unverified else "verified"])
        if line_costs is not None:
            stopped = stopped or (max_lines is not None and charged + price > max_lines)
            limit = None
        else:
            limit = max_lines
        kind: str | Example = "over_limit" if stopped else _check(suite, body, alphabet, accepted, n_lines, limit,
                                                                   check_leaks, support, unverified)
        if kind != "over_limit":
            charged += price
            n_lines += 1
            kinds["unverified" if unverified else "verified"]["units"] += price
        if isinstance(kind, Example):
            if unverified:
                ex = Example(kind.prompt, kind.answer, kind.skill, kind.difficulty, source="unverified", verified=False)
                wrong = suite.score(ex.answer, _gold(suite, ex.prompt)) < 1.0
                unverified_wrong += wrong
                kinds["unverified"]["wrong"] += wrong
            else:
                ex = Example(kind.prompt, kind.answer, kind.skill, kind.difficulty, source=source, verified=True)
            kinds["unverified" if unverified else "verified"]["examples"] += 1
            examples.append(ex)
            accepted.add(ex.prompt)
            verdicts.append((line, "ok"))
        else:
            cost.reject(kind)
            verdicts.append((line, kind))
    cost.examples = len(examples)
    cost.tokens = sum(len(e.prompt) + len(e.answer) for e in examples)
    if line_costs is not None:
        cost.by_source = kinds
    return LineCheck(examples, cost, charged, verdicts, lines=n_lines, unverified_wrong=unverified_wrong)


def _gold(suite: TaskSuite, prompt: str) -> str:
    return suite.solve(prompt)


def _check(
    suite: TaskSuite,
    line: str,
    alphabet: set[str],
    accepted: set[str],
    charged: int,
    max_lines: int | None,
    check_leaks: bool,
    support: bool = True,
    unverified: bool = False,
) -> str | Example:
    if max_lines is not None and charged >= max_lines:
        return "over_limit"
    if len(line) > suite.max_line_len:
        return "overlong"
    if not set(line) <= alphabet:
        return "malformed"
    parsed = suite.parse_line(line)
    if parsed is None:
        return "malformed"
    prompt, answer = parsed
    try:
        gold = suite.solve(prompt)
    except NotImplementedError:
        return "malformed"  # a suite without a solver cannot check written examples
    except Exception:  # noqa: BLE001 - the suite's parser refuses the prompt
        return "malformed"
    try:
        cell = suite.classify(prompt)
    except NotImplementedError:
        cell = None
    if cell is None or (support and not suite.in_support(prompt)):
        return "off_grid"
    skill, level = cell
    if check_leaks and suite.partition is not None and suite.partitioned(skill, level):
        part = suite.part_of(prompt)
        if part != "train":
            return f"leak_{part}"
    if not unverified and suite.score(answer, gold) < 1.0:
        return "wrong"
    if prompt in accepted:
        return "duplicate"
    return Example(prompt, answer if unverified else gold, skill, level)
