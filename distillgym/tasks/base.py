"""The task-suite contract: named skills, difficulty levels, prerequisites, a checker."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, did_you_mean
from distillgym.types import Example

__all__ = ["TaskSuite"]


class TaskSuite(ABC):
    """A set of skills, each with difficulty levels ``0..n_difficulties-1``.

    Subclasses set ``name``, ``skills``, ``n_difficulties``, ``prerequisites`` (a mapping
    from a skill to the skills it depends on) and ``alphabet`` (every character a prompt
    or an answer may contain), and implement :meth:`generate_one` and :meth:`score`.
    """

    name: str
    skills: tuple[str, ...]
    n_difficulties: int
    prerequisites: dict[str, tuple[str, ...]]
    alphabet: str
    max_answer_len: int

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
        if not (isinstance(difficulty, (int, np.integer)) and 0 <= difficulty < self.n_difficulties):
            raise ConfigError(
                f"difficulty must be an integer in 0..{self.n_difficulties - 1} for suite "
                f"{self.name!r}, got {difficulty!r}"
            )

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

    # ------------------------------------------------------------------ generation
    @abstractmethod
    def generate_one(self, skill: str, difficulty: int, rng: np.random.Generator) -> Example:
        """One example of ``skill`` at ``difficulty`` drawn from ``rng``."""

    def generate(self, skill: str, difficulty: int, rng: np.random.Generator, n: int) -> list[Example]:
        self.check_cell(skill, difficulty)
        if n < 0:
            raise ConfigError(f"n must be >= 0, got {n}")
        return [self.generate_one(skill, int(difficulty), rng) for _ in range(n)]

    @abstractmethod
    def score(self, prediction: str, gold: str) -> float:
        """Score a prediction against the gold answer, in [0, 1]."""

    def solve(self, prompt: str) -> str:
        """The exact answer to ``prompt`` (the reference teacher); optional."""
        raise NotImplementedError

    def validate(self) -> None:
        """Check the suite's declarations are consistent."""
        for s, pre in self.prerequisites.items():
            self.skill_index(s)
            for p in pre:
                self.skill_index(p)
        self.topological_order()
        if self.n_difficulties < 1:
            raise ConfigError("a suite needs at least one difficulty level")

    def describe(self, skills: Sequence[str] | None = None) -> str:
        lines = []
        for s in skills or self.skills:
            pre = ", ".join(self.prerequisites.get(s, ())) or "-"
            lines.append(f"{s} (needs: {pre})")
        return "\n".join(lines)
