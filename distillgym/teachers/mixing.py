"""Data-mixing teachers: the base class, and ``stratified`` (the equal mix).

A mix teacher chooses a distribution ``p`` over the (skill, difficulty) cells each step;
:meth:`MixTeacher.act` turns it into the mix level's action with
:func:`distillgym.levels.mix_to_action` (exact for any ``p``). What data-mixing methods read:

- ``observation["loss"]`` (``ArithMix-v1`` and ``ArithOpen-v1``) and ``info["val_loss"]`` (every
  v1 id): validation loss per cell, the mean token cross-entropy of the gold answer;
- ``info["train_cell_loss"]``: the step's training loss per cell (None where a cell got no data);
- ``info["action"]["allocation"]``: the examples each cell actually got.

``stratified`` is the baseline every method must beat: Aioli's study (Chen et al., 2024) found that
most data-mixing methods fail to beat the equal mix at equal compute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.levels import mix_to_action
from distillgym.teachers.base import BaseTeacher

__all__ = ["MixTeacher", "StratifiedTeacher", "val_loss", "train_cell_loss"]


def val_loss(observation: Any, info: dict[str, Any]) -> np.ndarray | None:
    """(S, D) validation loss from the observation (``loss``) or ``info["val_loss"]``; None if absent."""
    if isinstance(observation, dict) and "loss" in observation:
        return np.asarray(observation["loss"], dtype=float)
    v = info.get("val_loss") if isinstance(info, dict) else None
    if v is None:
        return None
    return np.array([[np.nan if x is None else float(x) for x in row] for row in v])


def train_cell_loss(info: dict[str, Any]) -> np.ndarray | None:
    """(S, D) training loss of the step per cell, NaN where a cell got no data; None if absent."""
    v = info.get("train_cell_loss") if isinstance(info, dict) else None
    if v is None:
        return None
    return np.array([[np.nan if x is None else float(x) for x in row] for row in v])


class MixTeacher(BaseTeacher):
    """Base class of data-mixing teachers: implement :meth:`mix` (an ``(S, D)`` non-negative array)."""

    name = "mix"
    levels = ("mix",)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        self.shape = (len(self.skills), self.n_difficulties)
        self.last_mix: np.ndarray | None = None

    def mix(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        p = np.asarray(self.mix(observation, info), dtype=float).reshape(self.shape)
        self.last_mix = p / p.sum()
        self.last_decision = {"mix": self.last_mix.round(4).tolist()}
        return mix_to_action(p)


class StratifiedTeacher(MixTeacher):
    """The equal mix over every cell, every step (the data-mixing baseline)."""

    name = "stratified"

    def mix(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        return np.ones(self.shape)
