"""The shared base of the policy families that ``distillgym headroom`` searches (and that replay by name).

Three families, one file each: fixed mixes (:mod:`distillgym.teachers.fixed_mix`), schedules
(:mod:`distillgym.teachers.schedules`) and simple adaptive rules over the observation
(:mod:`distillgym.teachers.adaptive_mix`). Each member is a registered teacher whose whole policy is
its name and keyword arguments, so every policy a headroom search finds replays with
``distillgym run --teacher NAME --teacher-kwargs JSON`` or a benchmark entry.

A member computes **weights over the cells** each step (:meth:`FamilyTeacher.weights`: an ``(S, D)``
non-negative array, skill-major, ``S`` skills by ``D`` difficulties) from the observation and the
env's static ``info``, and :meth:`FamilyTeacher.act` turns them into the env's action, by the level
the env reports at reset (``info["level"]``):

- **mix**: the mix proportional to the weights (:func:`distillgym.levels.mix_to_action`, exact);
- **cell**: one cell per step, by ``cell_mode``: ``"sample"`` (default) draws a cell with
  probability proportional to its weight from the teacher's own generator, seeded by the episode seed
  (so in expectation over the episode's steps the data follow the mix); ``"argmax"`` takes the cell of
  largest weight (ties: the lowest flat skill-major index, so the easiest difficulty of the first
  skill; no randomness). ``argmax`` of a fixed mix trains one cell for the whole episode, which is why
  ``sample`` is the default;
- a level whose action has a third axis of **data sources** (``info["action"]["action_shape"]`` of
  length 3): the cell weights times fixed shares over the sources (``source_shares``: one weight per
  source, in the order of ``info["action"]["sources"]``; default equal shares of the budget units,
  as :class:`distillgym.teachers.adapters.MixToSourceMix` plays a mix teacher), so a cell rule and a
  source split are two separate dimensions of the family (the ``source-mix`` level,
  ``distillgym/ArithSources-v1``). The action is built by the mix rule ``w = (clip(a, -1, 1) + 1) /
  2``, which the level's rule (``info["action"]["rule"]``) must start with (anything else is refused
  with a :class:`~distillgym.errors.ConfigError`).

What the members read, and from where (never hard-coded to the arithmetic suite): the skill list,
``n_difficulties`` and the prerequisite graph from ``info`` at reset; the progress through the
episode as the fraction of the budget spent (``1 - observation["budget_left"]``); validation
accuracy per cell (``observation["accuracy"]``); and, where an env evaluates only some cells
(target skills), the per-cell evaluation weights (:func:`target_weights`). The prerequisites of a
cell ``(s, d)`` are ``(s, d - 1)`` and ``(p, d)`` for each direct prerequisite skill ``p`` of ``s``,
the cell graph Skill-It's port uses (:func:`distillgym.teachers.skill_it.skill_graph`).

Weights that are all zero (a rule that has nothing to say, e.g. every cell mastered) fall back to
the equal mix over every cell, and say so in ``last_decision["fallback"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_choice
from distillgym.levels import mix_to_action
from distillgym.teachers.base import BaseTeacher
from distillgym.train.mix_policy import cell_prerequisites  # the one definition (CEM's features use it too)

__all__ = [
    "FamilyTeacher",
    "CELL_MODES",
    "MIX_RULE",
    "cell_prerequisites",
    "skill_depths",
    "target_weights",
    "progress",
    "cell_array",
]

CELL_MODES = ("sample", "argmax")
MIX_RULE = "w = (clip(a, -1, 1) + 1) / 2"
"""The action rule of the mix level (``MixLevel.describe()["rule"]``), which a source axis must share."""


def skill_depths(skills: list[str], prerequisites: dict[str, list[str]]) -> np.ndarray:
    """Per skill, the length of the longest prerequisite chain below it (0: no prerequisites).
    :class:`ConfigError` if the graph has a cycle."""
    index = {k: i for i, k in enumerate(skills)}
    depth: dict[str, int] = {}

    def visit(k: str, path: tuple[str, ...]) -> int:
        if k in path:
            raise ConfigError(f"the prerequisite graph has a cycle through {' -> '.join((*path, k))}")
        if k not in depth:
            pre = [p for p in prerequisites.get(k, ()) if p in index]
            depth[k] = 1 + max((visit(p, (*path, k)) for p in pre), default=-1)
        return depth[k]

    return np.array([visit(k, ()) for k in skills], dtype=int)


def cell_array(value: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    """``value`` as an ``(S, D)`` float array: an (S, D) nested list, or a flat list of S * D values."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be numbers over the {shape[0]} x {shape[1]} cells, got {value!r}") from None
    if a.shape == (shape[0] * shape[1],):
        a = a.reshape(shape)
    if a.shape != shape:
        raise ConfigError(f"{what} must have shape {shape} (skills x difficulties) or {shape[0] * shape[1]} values in "
                          f"skill-major order, got shape {a.shape}")
    return a


def target_weights(info: dict[str, Any], shape: tuple[int, int]) -> np.ndarray | None:
    """The env's per-cell evaluation weights (reward, validation mean and test score over these
    cells only), from ``info["eval_weights"]``; None when the env evaluates every cell alike."""
    w = info.get("eval_weights") if isinstance(info, dict) else None
    if w is None:
        return None
    a = cell_array(w, shape, 'info["eval_weights"]')
    if np.all(a == a.flat[0]):
        return None  # equal weights: every cell is a target
    return a


def progress(observation: Any, info: dict[str, Any]) -> float:
    """Fraction of the budget spent before this step, in [0, 1]: ``1 - observation["budget_left"]``
    (or from ``info["budget_left"]`` and ``info["budget"]``)."""
    if isinstance(observation, dict) and "budget_left" in observation:
        left = float(np.asarray(observation["budget_left"]).ravel()[0])
    elif isinstance(info, dict) and info.get("budget"):
        left = float(info.get("budget_left", info["budget"])) / float(info["budget"])
    else:
        return 0.0
    return float(np.clip(1.0 - left, 0.0, 1.0))


def _level_of(action_space: Any, info: dict[str, Any]) -> str:
    """``"cell"`` for a ``MultiDiscrete`` action space, ``"mix"`` for a ``Box`` of the cells'
    shape, else the env's ``info["level"]`` (the adapters pass a consistent pair of both)."""
    from gymnasium import spaces

    if isinstance(action_space, spaces.MultiDiscrete):
        return "cell"
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 2:
        return "mix"
    return str(info.get("level", "cell"))


class FamilyTeacher(BaseTeacher):
    """Base class of the headroom policy families: implement :meth:`weights` (see the module docstring).

    Arguments common to every member: ``cell_mode`` (``"sample"`` or ``"argmax"``, how a cell-level
    env gets one cell from the weights) and ``source_shares`` (weights over the data sources of a
    level with a source axis; None: equal)."""

    name = "family"
    levels: tuple[str, ...] = ("mix", "cell", "source-mix")

    def __init__(self, cell_mode: str = "sample", source_shares: list[float] | None = None) -> None:
        self.cell_mode = check_choice("cell_mode", cell_mode, CELL_MODES)
        if source_shares is not None:
            shares = np.asarray(source_shares, dtype=float) if isinstance(source_shares, (list, tuple)) else None
            if shares is None or shares.ndim != 1 or not np.all(np.isfinite(shares)) or np.any(shares < 0) \
                    or shares.sum() <= 0:
                raise ConfigError(f"source_shares must be a list of non-negative numbers, not all zero (one per data "
                                  f"source, in the order of info['action']['sources']), got {source_shares!r}")
            source_shares = [float(x) for x in shares]
        self.source_shares = source_shares

    # ------------------------------------------------------------------ episode set-up
    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        self.shape = (len(self.skills), self.n_difficulties)
        self.level = _level_of(action_space, info)
        action = info.get("action") if isinstance(info.get("action"), dict) else {}
        space_shape = getattr(action_space, "shape", None)
        shape = list(space_shape if self.level != "cell" and space_shape else action.get("action_shape") or [])
        self.sources: list[str] | None = None
        if len(shape) == 3:
            if not str(action.get("rule", MIX_RULE)).startswith(MIX_RULE):
                raise ConfigError(f"{self.name}: the {self.level!r} level's action rule is {action.get('rule')!r}; this "
                                  f"teacher builds actions by the mix rule {MIX_RULE!r} only")
            self.sources = [str(s) for s in action.get("sources") or range(shape[2])]
            k = len(self.sources)
            shares = np.ones(k) if self.source_shares is None else np.asarray(self.source_shares, dtype=float)
            if shares.shape != (k,):
                raise ConfigError(f"{self.name}: source_shares has {len(shares)} values but the env has {k} sources "
                                  f"{self.sources}")
            self.shares = shares / shares.sum()
        elif self.level not in ("mix", "cell"):
            raise ConfigError(f"{self.name} acts on the cell and mix levels (and levels with a source axis), not on "
                              f"{self.level!r}")
        self.targets = target_weights(info, self.shape)
        self.cell_pre = cell_prerequisites(self.skills, self.prerequisites, self.n_difficulties)
        self.last_mix: np.ndarray | None = None

    # ------------------------------------------------------------------ the policy
    def weights(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        """The ``(S, D)`` non-negative cell weights of this step."""
        raise NotImplementedError

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        w = np.asarray(self.weights(observation, info), dtype=float)
        if w.shape != self.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ConfigError(f"{self.name}: weights must be finite, non-negative and of shape {self.shape}, got {w!r}")
        decision: dict[str, Any] = {}
        if w.sum() <= 0:
            w = np.ones(self.shape)
            decision["fallback"] = "all weights zero: the equal mix"
        self.last_mix = w / w.sum()
        decision["mix"] = self.last_mix.round(4).tolist()
        if self.level == "cell":
            flat = self.last_mix.ravel()
            i = int(np.argmax(flat)) if self.cell_mode == "argmax" else int(self.rng.choice(flat.size, p=flat))
            decision["cell"] = [i // self.n_difficulties, i % self.n_difficulties]
            self.last_decision = decision
            return self.cell_action(i)
        self.last_decision = decision
        if self.sources is not None:
            full = self.last_mix[:, :, None] * self.shares[None, None, :]
            decision["source_shares"] = self.shares.round(4).tolist()
            return mix_to_action(full)
        return mix_to_action(self.last_mix)
