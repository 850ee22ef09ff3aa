"""Schedules: mixes that change with the fraction of the budget spent (``easy-to-hard``, ``warmup-equal``,
``prereq-first``).

Members of the headroom search's policy family (:mod:`distillgym.teachers.family`). They read the
progress ``f`` (the fraction of the budget spent before the step, ``1 - budget_left``) and the
env's static info (difficulties, the prerequisite graph, target cells), never the student's
accuracy, so each is an open-loop curriculum.

``easy-to-hard`` (curriculum learning, Bengio et al. 2009; the sliding difficulty window of
Spitkovsky et al., "From Baby Steps to Leapfrog", 2010): every skill alike, difficulty ``d`` weighted
``exp(-((d - c) / width)^2 / 2) + floor`` with the centre ``c = (D - 1) * min(1, f / end)`` moving
from the easiest difficulty to the hardest over the first ``end`` of the budget.

``warmup-equal`` (Collier and Beel, "An Empirical Comparison of Syllabuses for Curriculum Learning",
2018, found an easy-first phase followed by uniform sampling the best hand-made syllabus): the
equal mix over the cells of difficulty at most ``max_difficulty`` until ``f >= warmup``, then the
equal mix over every cell.

``prereq-first`` (the prerequisite ordering of Skill-It, Chen et al. 2023, as a fixed two-phase
schedule): until ``f >= switch``, the equal mix over the *prerequisite cells*, then the equal mix over
the *target cells* plus ``keep`` times the prerequisite cells. The target cells are those the env
evaluates (``info["eval_weights"] > 0``; every cell when the env evaluates all alike); the
prerequisite skills are the skills that some target skill needs, directly or through others
(``info["prerequisites"]``), and their cells that are not targets themselves, unless every cell is
a target: then the prerequisite cells are all the cells of skills that another skill needs (on the
arithmetic suite: copy, successor, add, sub), taught first. A target set without prerequisites
gives the equal mix over the targets throughout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import check_int, check_number
from distillgym.teachers.family import FamilyTeacher, progress
from distillgym.train.mix_policy import prerequisite_closure  # re-exported: the schedules and headroom use it

__all__ = ["EasyToHardTeacher", "WarmupEqualTeacher", "PrereqFirstTeacher", "prerequisite_closure"]


class EasyToHardTeacher(FamilyTeacher):
    """A difficulty window sliding from easy to hard over the episode (see the module docstring).

    Arguments: ``width`` (0.75, in difficulty levels, > 0), ``floor`` (0.0, added to every weight),
    ``end`` (1.0, the fraction of the budget at which the window reaches the hardest level), and the
    family's ``cell_mode`` and ``source_shares``."""

    name = "easy-to-hard"

    def __init__(self, width: float = 0.75, floor: float = 0.0, end: float = 1.0, cell_mode: str = "sample",
                 source_shares: list[float] | None = None) -> None:
        super().__init__(cell_mode, source_shares)
        self.width = check_number("EasyToHardTeacher", "width", width, 0, open_low=True)
        self.floor = check_number("EasyToHardTeacher", "floor", floor, 0)
        self.end = check_number("EasyToHardTeacher", "end", end, 0, 1, open_low=True)

    def weights(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        D = self.n_difficulties
        c = (D - 1) * min(1.0, progress(observation, info) / self.end)
        prof = np.exp(-0.5 * ((np.arange(D) - c) / self.width) ** 2) + self.floor
        return np.repeat(prof[None, :], self.shape[0], axis=0)


class WarmupEqualTeacher(FamilyTeacher):
    """Easy cells first, then the equal mix (see the module docstring).

    Arguments: ``warmup`` (0.25, fraction of the budget in the warm-up, in [0, 1]), ``max_difficulty``
    (0, the hardest difficulty of the warm-up), and the family's ``cell_mode`` and ``source_shares``."""

    name = "warmup-equal"

    def __init__(self, warmup: float = 0.25, max_difficulty: int = 0, cell_mode: str = "sample",
                 source_shares: list[float] | None = None) -> None:
        super().__init__(cell_mode, source_shares)
        self.warmup = check_number("WarmupEqualTeacher", "warmup", warmup, 0, 1)
        self.max_difficulty = check_int("WarmupEqualTeacher", "max_difficulty", max_difficulty, 0)

    def weights(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        w = np.ones(self.shape)
        if progress(observation, info) < self.warmup:
            w[:, self.max_difficulty + 1:] = 0.0
        return w


class PrereqFirstTeacher(FamilyTeacher):
    """Prerequisite cells first, then the target cells (see the module docstring).

    Arguments: ``switch`` (0.3, fraction of the budget on the prerequisites, in [0, 1]), ``keep`` (0.0,
    weight of each prerequisite cell after the switch, against 1 for a target cell), and the family's
    ``cell_mode`` and ``source_shares``."""

    name = "prereq-first"

    def __init__(self, switch: float = 0.3, keep: float = 0.0, cell_mode: str = "sample",
                 source_shares: list[float] | None = None) -> None:
        super().__init__(cell_mode, source_shares)
        self.switch = check_number("PrereqFirstTeacher", "switch", switch, 0, 1)
        self.keep = check_number("PrereqFirstTeacher", "keep", keep, 0)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        S, D = self.shape
        target = np.ones(self.shape, dtype=bool) if self.targets is None else self.targets > 0
        target_skills = {self.skills[s] for s in range(S) if target[s].any()}
        needed = prerequisite_closure(self.skills, self.prerequisites, target_skills)
        pre = np.zeros(self.shape, dtype=bool)
        for k in needed:
            pre[self.skills.index(k)] = True
        if not target.all():
            pre &= ~target
        self.target_cells, self.pre_cells = target, pre

    def weights(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        if progress(observation, info) < self.switch and self.pre_cells.any():
            return self.pre_cells.astype(float)
        w = self.target_cells.astype(float)
        if self.keep > 0:
            w = np.where(self.pre_cells & ~self.target_cells, self.keep, w)
        return w
