"""Baseline teachers: random, uniform (cycles through every cell) and single-skill."""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, check_choice, did_you_mean
from distillgym.teachers.base import BaseTeacher

__all__ = ["RandomTeacher", "UniformTeacher", "SingleSkillTeacher"]


class RandomTeacher(BaseTeacher):
    """Picks a cell uniformly at random each step, from its own seeded generator."""

    name = "random"

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        return np.array([self.rng.integers(len(self.skills)), self.rng.integers(self.n_difficulties)])


class UniformTeacher(BaseTeacher):
    """Visits every skill x difficulty cell once per cycle, so the data is spread evenly.

    ``order="shuffled"`` (default) draws a fresh seeded permutation of the cells for each
    cycle, so the baseline carries no easy-to-hard curriculum; ``"skill-major"`` and
    ``"difficulty-major"`` use a fixed order (the latter is itself an easy-first curriculum).
    """

    name = "uniform"
    ORDERS = ("shuffled", "skill-major", "difficulty-major")

    def __init__(self, order: str = "shuffled") -> None:
        self.order = check_choice("order", order, self.ORDERS)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        self._queue: list[tuple[int, int]] = []

    def _cycle(self) -> list[tuple[int, int]]:
        cells = self.cells
        if self.order == "difficulty-major":
            return sorted(cells, key=lambda c: (c[1], c[0]))
        if self.order == "shuffled":
            return [cells[i] for i in self.rng.permutation(len(cells))]
        return cells

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        if not self._queue:
            self._queue = self._cycle()
        return np.array(self._queue.pop(0))


class SingleSkillTeacher(BaseTeacher):
    """Always the same cell: a deliberately bad control. Defaults to the first skill at
    difficulty 0."""

    name = "single-skill"

    def __init__(self, skill: str | None = None, difficulty: int = 0) -> None:
        self.skill = skill
        self.difficulty = difficulty

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        if self.skill is not None and self.skill not in self.skills:
            raise UnknownNameError(f"unknown skill {self.skill!r}: {did_you_mean(self.skill, self.skills)}")
        if not 0 <= self.difficulty < self.n_difficulties:
            raise ConfigError(f"difficulty must be in 0..{self.n_difficulties - 1}, got {self.difficulty}")
        self._action = np.array([self.skills.index(self.skill) if self.skill else 0, self.difficulty])

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        return self._action.copy()
