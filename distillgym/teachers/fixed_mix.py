"""Fixed data mixes: the same weights over the cells at every step (``fixed-mix``, ``dirichlet-mix``).

The simplest members of the headroom search's policy family (:mod:`distillgym.teachers.family`):
a static mixture over the groups, the object the data-mixing literature optimises (DoReMi, Xie et al.
2023, and Aioli, Chen et al. 2024, both search for a fixed or slowly varying mixture, with the
equal mix, ``stratified``, as the baseline that is hard to beat); random mixtures from a Dirichlet
distribution as in the random-search baselines of RegMix (Liu et al., "RegMix: Data Mixture as
Regression for Language Model Pre-training", 2024), which draws its candidate mixtures from a
Dirichlet prior and trains a small proxy model on each. No observation is read.

``fixed-mix``: weights = ``weights`` (S x D, default all 1) times ``skill_weights`` (per skill)
times ``difficulty_weights`` (per difficulty: a *level profile*, e.g. ``[4, 3, 2, 1]`` favours the
easy levels) times ``depth_weights`` (indexed by a skill's depth in the prerequisite graph, 0 for a
skill without prerequisites; the last value covers deeper skills), with the cells in ``leave_out``
set to 0 (a *leave-cells-out* mix). ``leave_out`` entries are strings: ``"mul"`` (every
difficulty of a skill), ``"mul:3"`` (one cell), ``":3"`` (difficulty 3 of every skill). Unknown
skills or difficulties are refused at reset, with the valid names. With no arguments it is the equal
mix (the same actions as ``stratified``).

``dirichlet-mix``: one mixture drawn from ``Dirichlet(alpha, ..., alpha)`` over the S * D cells, from
the generator ``seeding.rng_for(draw, 0xD1)``: the mix depends on ``(alpha, draw)`` only, never on
the episode seed, so it is the same fixed policy in every episode and replays from its arguments. Small ``alpha`` (0.3) gives mixes concentrated on a few cells, large
(10) mixes near the equal one.

On a cell-level env both act through :class:`~distillgym.teachers.family.FamilyTeacher`'s
``cell_mode`` (default ``"sample"``: one cell per step drawn from the mix).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, check_int, check_number, did_you_mean
from distillgym.seeding import rng_for
from distillgym.teachers.family import FamilyTeacher, cell_array, skill_depths

__all__ = ["FixedMixTeacher", "DirichletMixTeacher", "parse_cells"]

_DIRICHLET_STREAM = 0xD1


def parse_cells(spec: list[str], skills: list[str], n_difficulties: int, what: str = "leave_out") -> list[tuple[int, int]]:
    """The cells named by ``spec``: ``"skill"``, ``"skill:d"`` or ``":d"`` strings (see the module docstring)."""
    if isinstance(spec, str) or not isinstance(spec, (list, tuple)):
        raise ConfigError(f"{what} must be a list of strings such as ['mul', 'chain:3', ':3'], got {spec!r}")
    cells: list[tuple[int, int]] = []
    for item in spec:
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{what} entries are strings ('mul', 'chain:3', ':3'), got {item!r}")
        skill, sep, diff = item.partition(":")
        if skill and skill not in skills:
            raise UnknownNameError(f"{what}: unknown skill {skill!r}: {did_you_mean(skill, skills)}")
        if sep:
            if not diff.isdigit() or not 0 <= int(diff) < n_difficulties:
                raise ConfigError(f"{what}: {item!r} names difficulty {diff!r}; difficulties are 0..{n_difficulties - 1}")
            ds = [int(diff)]
        else:
            ds = list(range(n_difficulties))
        ss = [skills.index(skill)] if skill else list(range(len(skills)))
        cells += [(s, d) for s in ss for d in ds]
    return cells


def _profile(values: Any, n: int, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=float) if isinstance(values, (list, tuple)) else None
    if a is None or a.shape != (n,) or not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ConfigError(f"{what} must be a list of {n} non-negative numbers, got {values!r}")
    return a


class FixedMixTeacher(FamilyTeacher):
    """A fixed mix: explicit weights, skill and level profiles, leave-cells-out (see the module docstring).

    Arguments: ``weights`` (S x D or S * D numbers; None: all 1), ``skill_weights`` (a list of S
    numbers or a dict skill -> number, missing skills 1), ``difficulty_weights`` (D numbers),
    ``depth_weights`` (numbers by prerequisite depth), ``leave_out`` (cells set to 0), and the
    family's ``cell_mode`` and ``source_shares``."""

    name = "fixed-mix"

    def __init__(
        self,
        weights: list | None = None,
        skill_weights: list | dict | None = None,
        difficulty_weights: list | None = None,
        depth_weights: list | None = None,
        leave_out: list | None = None,
        cell_mode: str = "sample",
        source_shares: list[float] | None = None,
    ) -> None:
        super().__init__(cell_mode, source_shares)
        self.weights_arg = weights
        self.skill_weights = skill_weights
        self.difficulty_weights = difficulty_weights
        self.depth_weights = depth_weights
        self.leave_out = leave_out
        if depth_weights is not None and (not isinstance(depth_weights, (list, tuple)) or not depth_weights):
            raise ConfigError(f"depth_weights must be a non-empty list of non-negative numbers (by prerequisite "
                              f"depth, 0 first), got {depth_weights!r}")
        if depth_weights is not None:
            _profile(depth_weights, len(depth_weights), "depth_weights")

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        S, D = self.shape
        w = np.ones(self.shape) if self.weights_arg is None else cell_array(self.weights_arg, self.shape, "weights")
        if np.any(~np.isfinite(w)) or np.any(w < 0):
            raise ConfigError(f"weights must be finite and non-negative, got {self.weights_arg!r}")
        if self.skill_weights is not None:
            if isinstance(self.skill_weights, dict):
                unknown = [k for k in self.skill_weights if k not in self.skills]
                if unknown:
                    raise UnknownNameError(f"skill_weights: unknown skill {unknown[0]!r}: "
                                           f"{did_you_mean(str(unknown[0]), self.skills)}")
                sw = _profile([float(self.skill_weights.get(k, 1.0)) for k in self.skills], S, "skill_weights")
            else:
                sw = _profile(self.skill_weights, S, "skill_weights")
            w = w * sw[:, None]
        if self.difficulty_weights is not None:
            w = w * _profile(self.difficulty_weights, D, "difficulty_weights")[None, :]
        if self.depth_weights is not None:
            dw = np.asarray(self.depth_weights, dtype=float)
            depth = np.minimum(skill_depths(self.skills, self.prerequisites), len(dw) - 1)
            w = w * dw[depth][:, None]
        if self.leave_out:
            for s, d in parse_cells(self.leave_out, self.skills, D):
                w[s, d] = 0.0
        if w.sum() <= 0:
            raise ConfigError(f"{self.name}: these arguments give every cell weight 0 (weights={self.weights_arg!r}, "
                              f"skill_weights={self.skill_weights!r}, difficulty_weights={self.difficulty_weights!r}, "
                              f"depth_weights={self.depth_weights!r}, leave_out={self.leave_out!r}); leave some cell in")
        self.mix_weights = w

    def weights(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        return self.mix_weights


class DirichletMixTeacher(FamilyTeacher):
    """A fixed mix drawn from ``Dirichlet(alpha)`` over the cells, the ``draw``-th (see the module docstring).

    Arguments: ``alpha`` (1.0, the concentration, > 0), ``draw`` (0, which draw: any integer >= 0), and
    the family's ``cell_mode`` and ``source_shares``."""

    name = "dirichlet-mix"

    def __init__(self, alpha: float = 1.0, draw: int = 0, cell_mode: str = "sample",
                 source_shares: list[float] | None = None) -> None:
        super().__init__(cell_mode, source_shares)
        self.alpha = check_number("DirichletMixTeacher", "alpha", alpha, 0, open_low=True)
        self.draw = check_int("DirichletMixTeacher", "draw", draw, 0)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        k = self.shape[0] * self.shape[1]
        p = rng_for(self.draw, _DIRICHLET_STREAM).dirichlet(np.full(k, self.alpha))
        if not np.all(np.isfinite(p)) or p.sum() <= 0:  # pragma: no cover - numpy's Dirichlet always sums to 1
            p = np.ones(k)
        self.mix_weights = p.reshape(self.shape)

    def weights(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        return self.mix_weights
