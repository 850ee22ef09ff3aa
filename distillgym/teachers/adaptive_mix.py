"""Simple adaptive mixes over the observation: ``error-mix``, ``progress-mix``, ``mastery-gated``.

Members of the headroom search's policy family (:mod:`distillgym.teachers.family`) that read the
student's validation accuracy per cell (``observation["accuracy"]``) each step; ``error-mix`` is
also a heuristic baseline of the data-mix leaderboards.

``error-mix`` (the data of LLM2LLM, Lee et al., "LLM2LLM: Boosting LLMs with Novel Iterative Data
Enhancement", 2024, follow the student's errors: one new example per wrong answer; as a mix over
cells this is a mix proportional to each cell's error rate): weights ``1 - accuracy + floor``. The
``floor`` (default 0.02) keeps every cell in the mix, so a cell the student has mastered is still
revisited; with ``floor=0`` an all-correct student gets the equal mix (the family's all-zero
fallback). Its cell-level ``argmax`` version trains the cell with the largest error rate, which is
``error-targeting`` without the sampled-error term. The rule is the best of the issue-21 screen on
ArithMix-v2 (floor 0.02), which did not hold up on fresh seeds: see benchmarks/README.md.

``progress-mix`` (absolute learning progress, as in TSCL, Matiisen et al., "Teacher-Student
Curriculum Learning", 2017, and ALP-GMM, Portelas et al. 2019): weights ``lp + floor``, where ``lp``
per cell is an exponential moving average of ``|accuracy_t - accuracy_{t-1}|`` between consecutive
observations, ``lp <- smoothing * lp + (1 - smoothing) * |change|``, starting at 0 (so the first
step is the equal mix).

``mastery-gated`` (mastery learning, Bloom 1968, as IOA's organizer applies it over the prerequisite
graph, He et al. 2026): a cell is *unlocked* once every one of its prerequisite cells (``(s, d - 1)``
and ``(p, d)`` for the direct prerequisite skills ``p``; :func:`~distillgym.teachers.family.cell_prerequisites`)
has validation accuracy at least ``threshold``, and stays unlocked for the rest of the episode; cells
without prerequisites are unlocked from the start. Unlocked cells get weight 1 (``unlocked="equal"``)
or ``1 - accuracy + floor`` (``"error"``), locked cells ``locked`` (default 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import check_choice, check_number
from distillgym.teachers.family import FamilyTeacher

__all__ = ["ErrorMixTeacher", "ProgressMixTeacher", "MasteryGatedTeacher", "accuracy"]


def accuracy(observation: Any, shape: tuple[int, int]) -> np.ndarray:
    """``observation["accuracy"]`` as an ``(S, D)`` float array."""
    return np.asarray(observation["accuracy"], dtype=float).reshape(shape)


class ErrorMixTeacher(FamilyTeacher):
    """A mix proportional to each cell's validation error rate plus a floor (LLM2LLM's errors as a mix).

    Arguments: ``floor`` (0.02, >= 0), and the family's ``cell_mode`` and ``source_shares``. See the
    module docstring."""

    name = "error-mix"

    def __init__(self, floor: float = 0.02, cell_mode: str = "sample", source_shares: list[float] | None = None) -> None:
        super().__init__(cell_mode, source_shares)
        self.floor = check_number("ErrorMixTeacher", "floor", floor, 0)

    def weights(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        return np.clip(1.0 - accuracy(observation, self.shape), 0.0, 1.0) + self.floor


class ProgressMixTeacher(FamilyTeacher):
    """A mix proportional to each cell's absolute learning progress plus a floor (TSCL, ALP-GMM).

    Arguments: ``floor`` (0.02, > 0), ``smoothing`` (0.5, in [0, 1), the moving average's weight on the
    past), and the family's ``cell_mode`` and ``source_shares``. See the module docstring."""

    name = "progress-mix"

    def __init__(self, floor: float = 0.02, smoothing: float = 0.5, cell_mode: str = "sample",
                 source_shares: list[float] | None = None) -> None:
        super().__init__(cell_mode, source_shares)
        self.floor = check_number("ProgressMixTeacher", "floor", floor, 0, open_low=True)
        self.smoothing = check_number("ProgressMixTeacher", "smoothing", smoothing, 0, 1, open_high=True)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        self.lp = np.zeros(self.shape)
        self.prev: np.ndarray | None = None

    def weights(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        acc = accuracy(observation, self.shape)
        if self.prev is not None:
            self.lp = self.smoothing * self.lp + (1.0 - self.smoothing) * np.abs(acc - self.prev)
        self.prev = acc
        return self.lp + self.floor


class MasteryGatedTeacher(FamilyTeacher):
    """Cells unlocked once their prerequisite cells pass an accuracy threshold (mastery learning).

    Arguments: ``threshold`` (0.8, in [0, 1]), ``locked`` (0.0, weight of a locked cell), ``unlocked``
    (``"equal"`` or ``"error"``), ``floor`` (0.02, the error rule's floor), and the family's
    ``cell_mode`` and ``source_shares``. See the module docstring."""

    name = "mastery-gated"
    UNLOCKED = ("equal", "error")

    def __init__(self, threshold: float = 0.8, locked: float = 0.0, unlocked: str = "equal", floor: float = 0.02,
                 cell_mode: str = "sample", source_shares: list[float] | None = None) -> None:
        super().__init__(cell_mode, source_shares)
        self.threshold = check_number("MasteryGatedTeacher", "threshold", threshold, 0, 1)
        self.locked = check_number("MasteryGatedTeacher", "locked", locked, 0)
        self.unlocked = check_choice("unlocked", unlocked, self.UNLOCKED)
        self.floor = check_number("MasteryGatedTeacher", "floor", floor, 0)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        self.open = np.array([not pre for pre in self.cell_pre], dtype=bool)

    def weights(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        acc = accuracy(observation, self.shape)
        flat = acc.ravel()
        for j, pre in enumerate(self.cell_pre):
            if not self.open[j] and all(flat[p] >= self.threshold for p in pre):
                self.open[j] = True
        gate = self.open.reshape(self.shape)
        on = np.ones(self.shape) if self.unlocked == "equal" else np.clip(1.0 - acc, 0.0, 1.0) + self.floor
        self.last_unlocked = int(gate.sum())
        return np.where(gate, on, self.locked)
