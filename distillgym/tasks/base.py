"""The task-suite contract: skills, difficulties, prerequisites, split-aware generation, a checker.

A :class:`TaskSuite` is what an environment teaches. It declares

- ``skills`` (names), ``n_difficulties`` (difficulties ``0..D-1`` per skill), ``prerequisites`` (a
  mapping from a skill to the skills it depends on, acyclic), ``alphabet`` (every character a
  prompt or an answer may contain), ``max_answer_len`` and ``max_prompt_len``;
- ``description`` (one paragraph on what the suite is, for LLM prompts) and
  ``skill_descriptions`` (per skill: what a prompt and its answer look like);
- ``generate(skill, level, rng, n, split)``: ``n`` items of a cell, drawn from ``rng``;
- ``score(prediction, gold)`` in [0, 1] (``exact_match = True`` declares that it is exact
  string match after stripping whitespace, which lets a student use a teacher-forced fast path);
- optionally ``solve(prompt)``, the exact answer recomputed from the prompt alone (the
  reference teacher, and the checker of examples a model writes), and ``classify(prompt)``,
  the cell a prompt belongs to (for written examples).

**Content partition.** With ``partition = (p_train, p_val, p_test)`` the item space is split by
content: a prompt's part is a fixed function of its text (:meth:`part_of`, a keyed BLAKE2b
hash mapped to [0, 1)), so one prompt is always in the same part whatever cell, seed or
stream drew it. ``generate(..., split="train")`` draws only train-part items (by rejection:
items of other parts are drawn and discarded), so a training stream can never contain a
validation or test prompt. A cell whose item space is smaller than
``MIN_PARTITION_ITEMS`` (see :meth:`cell_size`) cannot be split usefully; such a cell does not
claim a partition (:meth:`partitioned` is False), generation ignores ``split`` for it, and
environments list it in ``static_info()["unpartitioned_cells"]``. ``partition = None`` (the v0
arithmetic suite) means no partition at all: ``split="train"`` then draws from the whole item
space, and asking for a validation or test split is an error.

**Written examples.** ``format_line(example)`` writes an example as one line of text (by
default ``prompt + answer``: prompts end with ``answer_separator``), and
``parse_line(line)`` reads one back into ``(prompt, answer)``; the open-ended action level and
the LLM data engine use them (see :mod:`distillgym.tasks.checks`).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, did_you_mean
from distillgym.types import Example

__all__ = ["TaskSuite", "SPLITS", "MIN_PARTITION_ITEMS", "content_fraction"]

SPLITS = ("train", "val", "test")
MIN_PARTITION_ITEMS = 200
"""A cell with fewer distinct items than this does not claim a content partition."""

_PARTITION_KEY = b"distillgym-partition-v1"
_MAX_REJECTIONS = 2000
"""Draws of other parts in a row after which split-aware generation gives up on a cell."""
_MAX_DUPLICATE_DRAWS = 200
"""Repeated prompts in a row after which ``distinct`` generation accepts a repeat."""


def content_fraction(text: str) -> float:
    """A fixed number in [0, 1) computed from ``text`` alone (keyed BLAKE2b, 64 bits), the same
    on every machine and Python process (unlike ``hash``)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=_PARTITION_KEY).digest()
    return int.from_bytes(digest, "big") / 2**64


class TaskSuite(ABC):
    """A set of skills, each with difficulty levels ``0..n_difficulties-1``; see the module
    docstring for the contract. Subclasses implement :meth:`generate_one` and :meth:`score`."""

    name: str
    description: str = ""
    skills: tuple[str, ...]
    skill_descriptions: dict[str, str] = {}
    n_difficulties: int
    prerequisites: dict[str, tuple[str, ...]]
    alphabet: str
    max_answer_len: int
    max_prompt_len: int = 64
    answer_separator: str = "="
    exact_match: bool = True
    partition: tuple[float, float, float] | None = (0.8, 0.1, 0.1)

    # ------------------------------------------------------------------ lookup
    def skill_index(self, skill: str) -> int:
        try:
            return self.skills.index(skill)
        except ValueError:
            raise UnknownNameError(
                f"unknown skill {skill!r} in suite {self.name!r}: {did_you_mean(skill, self.skills)}"
            ) from None

    def check_cell(self, skill: str, difficulty: int) -> None:
        self.skill_index(skill)
        if isinstance(difficulty, bool) or not (
            isinstance(difficulty, (int, np.integer)) and 0 <= difficulty < self.n_difficulties
        ):
            raise ConfigError(
                f"difficulty must be an integer in 0..{self.n_difficulties - 1} for suite "
                f"{self.name!r}, got {difficulty!r}"
            )

    @property
    def cells(self) -> list[tuple[str, int]]:
        """Every (skill, difficulty), skill-major (the order of the flat cell index)."""
        return [(s, d) for s in self.skills for d in range(self.n_difficulties)]

    def topological_order(self) -> list[str]:
        """Skills ordered so that every prerequisite comes before the skills needing it
        (ties kept in declaration order)."""
        order: list[str] = []
        done: set[str] = set()
        remaining = list(self.skills)
        while remaining:
            ready = [s for s in remaining if all(p in done for p in self.prerequisites.get(s, ()))]
            if not ready:
                raise ConfigError(f"prerequisite graph of suite {self.name!r} has a cycle among {remaining}")
            order.append(ready[0])
            done.add(ready[0])
            remaining.remove(ready[0])
        return order

    def edges(self) -> list[tuple[str, str]]:
        """(prerequisite, dependent) pairs."""
        return [(p, s) for s in self.skills for p in self.prerequisites.get(s, ())]

    # ------------------------------------------------------------------ partition
    def part_of(self, prompt: str) -> str:
        """``"train"``, ``"val"`` or ``"test"``: the part of the item space ``prompt`` lies in."""
        if self.partition is None:
            raise ConfigError(f"suite {self.name!r} has no content partition (partition=None)")
        u = content_fraction(prompt)
        p_train, p_val, _ = self.partition
        return "train" if u < p_train else ("val" if u < p_train + p_val else "test")

    def cell_size(self, skill: str, difficulty: int) -> int | None:
        """Number of distinct prompts the cell can produce, or None when unknown (large)."""
        return None

    def partitioned(self, skill: str, difficulty: int) -> bool:
        """Whether the cell claims disjoint train / validation / test parts."""
        if self.partition is None:
            return False
        size = self.cell_size(skill, difficulty)
        return size is None or size >= MIN_PARTITION_ITEMS

    def unpartitioned_cells(self) -> list[tuple[str, int]]:
        return [c for c in self.cells if self.partition is not None and not self.partitioned(*c)]

    # ------------------------------------------------------------------ generation
    @abstractmethod
    def generate_one(self, skill: str, difficulty: int, rng: np.random.Generator) -> Example:
        """One example of ``skill`` at ``difficulty`` drawn from ``rng`` (from the whole item space)."""

    def generate(
        self,
        skill: str,
        difficulty: int,
        rng: np.random.Generator,
        n: int,
        split: str | None = None,
        distinct: bool = False,
    ) -> list[Example]:
        """``n`` examples of a cell. ``split`` (``"train"``, ``"val"``, ``"test"``) keeps only items
        of that part (None: the whole item space, as in v0); ``distinct`` avoids repeating a
        prompt until 200 draws in a row have found no new one (then it accepts a repeat, so a
        small part still gives ``n`` items)."""
        self.check_cell(skill, difficulty)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"n must be an integer >= 0, got {n!r}")
        if split is not None and split not in SPLITS:
            raise ConfigError(f"split must be None or one of {list(SPLITS)}, got {split!r}")
        if split == "train" and self.partition is None:
            split = None  # without a partition every item may be trained on
        if split is not None and self.partition is None:
            raise ConfigError(
                f"suite {self.name!r} has no content partition, so it cannot draw a {split!r} split; "
                "use split=None or a partitioned suite (e.g. 'arith-v1')"
            )
        d = int(difficulty)
        if split is None or not self.partitioned(skill, d):
            if not distinct:
                return [self.generate_one(skill, d, rng) for _ in range(n)]
            split = None
        out: list[Example] = []
        seen: set[str] = set()
        misses = repeats = 0
        while len(out) < n:
            ex = self.generate_one(skill, d, rng)
            if split is not None and self.part_of(ex.prompt) != split:
                misses += 1
                if misses > _MAX_REJECTIONS:
                    raise ConfigError(
                        f"suite {self.name!r} cell {skill} L{d}: no {split!r} item in {_MAX_REJECTIONS} draws in a "
                        "row; the cell's item space is too small for its partition"
                    )
                continue
            misses = 0
            if distinct and ex.prompt in seen and repeats < _MAX_DUPLICATE_DRAWS:
                repeats += 1
                continue
            repeats = 0
            seen.add(ex.prompt)
            out.append(ex)
        return out

    # ------------------------------------------------------------------ checking
    @abstractmethod
    def score(self, prediction: str, gold: str) -> float:
        """Score a prediction against the gold answer, in [0, 1]."""

    def solve(self, prompt: str) -> str:
        """The exact answer to ``prompt`` (the reference teacher); optional."""
        raise NotImplementedError

    def classify(self, prompt: str) -> tuple[str, int] | None:
        """The (skill, difficulty) cell ``prompt`` belongs to, or None if it is in none; optional."""
        raise NotImplementedError

    def in_support(self, prompt: str) -> bool:
        """Whether the generator of ``prompt``'s cell (:meth:`classify`) can make it: a rule of the
        generator beyond the cell's shapes (arithmetic chains never go below 0) that :meth:`classify`
        does not check. Written lines outside it are rejected as ``off_grid``
        (:func:`distillgym.tasks.checks.check_lines`). Default: True (classify is the whole support)."""
        return True

    # ------------------------------------------------------------------ written examples
    def format_line(self, example: Example) -> str:
        """One example as one line of text (``prompt + answer``)."""
        return example.prompt + example.answer

    def parse_line(self, line: str) -> tuple[str, str] | None:
        """``(prompt, answer)`` from a written line, or None if it is not one: the prompt runs up
        to and including the first ``answer_separator`` and the answer is the non-empty rest."""
        i = line.find(self.answer_separator)
        if i <= 0 or i == len(line) - 1:
            return None
        return line[: i + 1], line[i + 1 :]

    @property
    def max_line_len(self) -> int:
        return self.max_prompt_len + self.max_answer_len

    # ------------------------------------------------------------------ description
    def validate(self) -> None:
        """Check the suite's declarations are consistent."""
        for s, pre in self.prerequisites.items():
            self.skill_index(s)
            for p in pre:
                self.skill_index(p)
        self.topological_order()
        if self.n_difficulties < 1:
            raise ConfigError("a suite needs at least one difficulty level")
        if self.partition is not None:
            parts = self.partition
            if len(parts) != 3 or any(not 0 < p < 1 for p in parts) or abs(sum(parts) - 1) > 1e-9:
                raise ConfigError(
                    f"suite {self.name!r}: partition must be three fractions in (0, 1) summing to 1 "
                    f"(train, val, test), got {parts!r}"
                )

    def describe(self, skills: Sequence[str] | None = None) -> str:
        """One line per skill: its name, what it asks (``skill_descriptions``) and its prerequisites."""
        lines = []
        for s in skills or self.skills:
            pre = ", ".join(self.prerequisites.get(s, ())) or "-"
            what = self.skill_descriptions.get(s, "")
            lines.append(f"{s} (needs: {pre})" + (f": {what}" if what else ""))
        return "\n".join(lines)
