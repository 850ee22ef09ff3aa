"""Observation features for learned teachers: what a policy needs to choose the next data.

A teaching env's own observation (:class:`~distillgym.env.TeachingEnv`) is the current
validation accuracy per cell, the reference accuracy per skill, the budget left and (mix and
open levels) the validation loss per cell. A policy that chooses the next mix also needs what
happened *before*: how the accuracy moved in the last step, how much data each cell has had and
how long ago. :class:`CellFeatures` computes that from the observations and the step ``info``
(``info["action"]``: the allocation of a mix step, or the cell of a cell step), step by step, and
:class:`FeatureWrapper` applies it to a Gymnasium env. The same class is used in training (for
vectorised envs by :class:`distillgym.train.policies.VecFeatures`) and by the ``ppo:`` teacher
(:class:`distillgym.teachers.ppo.PPOTeacher` rebuilds it from the name recorded in
``policy.json``), so the policy sees the same numbers in both.

Feature set ``"cells-v1"`` (:data:`FEATURES`): a ``Dict`` observation

- ``cells``: ``Box(shape=(n_skills, n_difficulties, 8), float32)``, per cell (skill-major, as
  the action), in this order (:data:`CELL_FEATURES`):

  0. ``accuracy``: validation accuracy, in [0, 1];
  1. ``accuracy_change``: its change since the previous observation (0 at reset), in [-1, 1];
  2. ``loss``: validation loss (mean token cross-entropy of the gold answer, nats) squashed as
     ``loss / (1 + loss)``, in [0, 1) (0 when the env reports no loss);
  3. ``loss_change``: the change of that squashed loss since the previous observation, in [-1, 1];
  4. ``data``: examples this cell has received in the episode, in units of an equal share of the
     whole budget (``budget / n_cells``), clipped at 4 and divided by 4, in [0, 1] (the equal
     mix ends the episode at 0.25);
  5. ``last``: the cell's share of the last step's examples in the same units (``n_cells`` times
     the share), clipped at 4 and divided by 4, in [0, 1] (0.25 for the equal mix, 1 for a
     one-hot step);
  6. ``since``: steps since the cell last received examples, divided by the steps of a whole
     episode (``ceil(budget / examples_per_step)``), clipped to [0, 1]; 1 when it never has;
  7. ``reference``: the reference accuracy of the cell's skill (the data engine's verified
     accuracy; 1 for the exact procedural engines), in [0, 1];

- ``global``: ``Box(shape=(3,), float32)`` (:data:`GLOBAL_FEATURES`): ``budget_used`` (fraction
  of the budget spent, in [0, 1]), ``mean_accuracy`` (mean over cells, in [0, 1]) and
  ``mean_accuracy_change`` (since the previous observation, in [-1, 1]).

Where the data went is read from ``info["action"]``: ``allocation`` (mix level; also one-hot mix
steps) or ``skill``/``difficulty``/``n`` (cell level). The open level reports no per-cell
allocation, so its ``data``, ``last`` and ``since`` features stay at their reset values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from distillgym.errors import ConfigError, UnknownNameError, check_int, did_you_mean

__all__ = [
    "CELL_FEATURES",
    "GLOBAL_FEATURES",
    "FEATURES",
    "CellFeatures",
    "FeatureWrapper",
    "make_features",
    "features_for_env",
]

CELL_FEATURES = ("accuracy", "accuracy_change", "loss", "loss_change", "data", "last", "since", "reference")
"""Names of the per-cell features of ``cells-v1``, in their order along the last axis."""
GLOBAL_FEATURES = ("budget_used", "mean_accuracy", "mean_accuracy_change")
"""Names of the global features of ``cells-v1``, in order."""

_CELL_LOW = np.array([0, -1, 0, -1, 0, 0, 0, 0], np.float32)
_CELL_HIGH = np.ones(len(CELL_FEATURES), np.float32)
_GLOBAL_LOW = np.array([0, 0, -1], np.float32)
_GLOBAL_HIGH = np.ones(len(GLOBAL_FEATURES), np.float32)
DATA_CLIP = 4.0
"""The ``data`` and ``last`` features are clipped at this many equal shares (then divided by it)."""


def _squash_loss(loss: np.ndarray) -> np.ndarray:
    loss = np.where(np.isfinite(loss), np.maximum(loss, 0.0), 0.0)
    return loss / (1.0 + loss)


def _loss_of(observation: Any, info: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    """(S, D) validation loss: ``observation["loss"]`` or ``info["val_loss"]`` (None entries 0); zeros if absent."""
    if isinstance(observation, dict) and "loss" in observation:
        return np.asarray(observation["loss"], dtype=np.float64).reshape(shape)
    v = info.get("val_loss") if isinstance(info, dict) else None
    if v is None:
        return np.zeros(shape)
    return np.array([[0.0 if x is None else float(x) for x in row] for row in v], dtype=np.float64).reshape(shape)


class CellFeatures:
    """The ``cells-v1`` features of one episode, updated observation by observation.

    Arguments: ``skills`` (names, in the env's order), ``n_difficulties``, ``budget`` (examples
    per episode) and ``examples_per_step``: the env's ``static_info()`` holds all four, see
    :meth:`from_info`. Call :meth:`reset` with the reset observation and info, then
    :meth:`step` with each step's observation and info; both return the feature observation
    (a dict of float32 arrays in :attr:`observation_space`)."""

    name = "cells-v1"

    def __init__(self, skills: Sequence[str], n_difficulties: int, budget: int, examples_per_step: int) -> None:
        self.skills = [str(s) for s in skills]
        if not self.skills:
            raise ConfigError("CellFeatures needs at least one skill")
        check_int("CellFeatures", "n_difficulties", n_difficulties, 1)
        check_int("CellFeatures", "budget", budget, 1)
        check_int("CellFeatures", "examples_per_step", examples_per_step, 1)
        self.shape = (len(self.skills), int(n_difficulties))
        self.n_cells = self.shape[0] * self.shape[1]
        self.budget = int(budget)
        self.examples_per_step = int(examples_per_step)
        self.episode_steps = math.ceil(self.budget / self.examples_per_step)
        S, D = self.shape
        self.observation_space = spaces.Dict(
            {
                "cells": spaces.Box(
                    np.broadcast_to(_CELL_LOW, (S, D, len(CELL_FEATURES))).copy(),
                    np.broadcast_to(_CELL_HIGH, (S, D, len(CELL_FEATURES))).copy(),
                    dtype=np.float32,
                ),
                "global": spaces.Box(_GLOBAL_LOW.copy(), _GLOBAL_HIGH.copy(), dtype=np.float32),
            }
        )
        self._started = False

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> CellFeatures:
        """From an env's reset ``info`` (or ``static_info()``): skills, n_difficulties, budget, examples_per_step."""
        missing = [k for k in ("skills", "n_difficulties", "budget", "examples_per_step") if k not in info]
        if missing:
            raise ConfigError(f"CellFeatures.from_info needs a teaching env's reset info; it lacks {missing}")
        return cls(info["skills"], int(info["n_difficulties"]), int(info["budget"]), int(info["examples_per_step"]))

    # ------------------------------------------------------------------ state
    def reset(self, observation: dict[str, Any], info: dict[str, Any]) -> dict[str, np.ndarray]:
        """Start an episode from its reset observation and info; returns the first features."""
        self._received = np.zeros(self.shape)
        self._last = np.zeros(self.shape)
        self._since = np.full(self.shape, float(self.episode_steps))
        self._acc = self._accuracy(observation)
        self._loss = _squash_loss(_loss_of(observation, info, self.shape))
        self._started = True
        zeros = np.zeros(self.shape)
        return self._features(observation, zeros, zeros)

    def step(self, observation: dict[str, Any], info: dict[str, Any]) -> dict[str, np.ndarray]:
        """Advance by one env step (its observation and info); returns the features."""
        if not self._started:
            raise ConfigError("CellFeatures.step() before reset(): start each episode with reset(obs, info)")
        counts = self._allocation(info)
        self._since += 1.0
        if counts is not None:
            self._received += counts
            total = counts.sum()
            self._last = counts / total if total > 0 else np.zeros(self.shape)
            self._since[counts > 0] = 0.0
        else:
            self._last = np.zeros(self.shape)
        acc = self._accuracy(observation)
        loss = _squash_loss(_loss_of(observation, info, self.shape))
        d_acc, d_loss = acc - self._acc, loss - self._loss
        self._acc, self._loss = acc, loss
        return self._features(observation, d_acc, d_loss)

    # ------------------------------------------------------------------ helpers
    def _accuracy(self, observation: dict[str, Any]) -> np.ndarray:
        try:
            acc = np.asarray(observation["accuracy"], dtype=np.float64)
        except (KeyError, TypeError, IndexError):
            raise ConfigError("CellFeatures needs a teaching env's observation (a dict with 'accuracy')") from None
        if acc.shape != self.shape:
            raise ConfigError(f"observation['accuracy'] has shape {acc.shape}, these features were built for {self.shape}")
        return acc

    def _allocation(self, info: dict[str, Any]) -> np.ndarray | None:
        a = info.get("action") if isinstance(info, dict) else None
        if not isinstance(a, dict):
            return None
        if a.get("allocation") is not None:
            counts = np.asarray(a["allocation"], dtype=np.float64)
            if counts.shape != self.shape:
                raise ConfigError(f"info['action']['allocation'] has shape {counts.shape}, expected {self.shape}")
            return counts
        if a.get("skill") in self.skills:
            counts = np.zeros(self.shape)
            counts[self.skills.index(a["skill"]), int(a["difficulty"])] = float(a.get("n", 1))
            return counts
        return None

    def _features(self, observation: dict[str, Any], d_acc: np.ndarray, d_loss: np.ndarray) -> dict[str, np.ndarray]:
        S, D = self.shape
        share = self.budget / self.n_cells
        ref = np.asarray(observation.get("reference", np.ones(S)), dtype=np.float64).reshape(S)
        cells = np.stack(
            [
                self._acc,
                np.clip(d_acc, -1, 1),
                self._loss,
                np.clip(d_loss, -1, 1),
                np.minimum(self._received / share, DATA_CLIP) / DATA_CLIP,
                np.minimum(self._last * self.n_cells, DATA_CLIP) / DATA_CLIP,
                np.minimum(self._since / self.episode_steps, 1.0),
                np.broadcast_to(np.clip(ref, 0, 1)[:, None], (S, D)),
            ],
            axis=-1,
        )
        budget_left = float(np.asarray(observation.get("budget_left", [1.0])).reshape(-1)[0])
        glob = np.array(
            [np.clip(1.0 - budget_left, 0, 1), float(self._acc.mean()), float(np.clip(d_acc.mean(), -1, 1))]
        )
        return {"cells": cells.astype(np.float32), "global": glob.astype(np.float32)}


FEATURES: dict[str, type[CellFeatures]] = {"cells-v1": CellFeatures}
"""Feature sets by name (a policy records the name it was trained with in ``policy.json``)."""


def make_features(name: str, info: dict[str, Any]) -> CellFeatures:
    """The feature set ``name`` for an env described by its reset ``info`` (see :meth:`CellFeatures.from_info`)."""
    if name not in FEATURES:
        raise UnknownNameError(f"unknown feature set {name!r}: {did_you_mean(str(name), FEATURES)}")
    return FEATURES[name].from_info(info)


def features_for_env(name: str, env: Any) -> CellFeatures:
    """The feature set ``name`` for a teaching env object (its ``static_info()``; wrappers are unwrapped)."""
    base = getattr(env, "unwrapped", env)
    static = getattr(base, "static_info", None)
    if not callable(static):
        raise ConfigError(f"features {name!r} need a distillgym TeachingEnv (with static_info()), got {type(base).__name__}")
    return make_features(name, static())


class FeatureWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A Gymnasium wrapper whose observation is a feature set (default ``cells-v1``) of a teaching env.

    The env's own observation and ``info`` go in; the observation that comes out is
    :class:`CellFeatures`' (see the module docstring); reward, termination and ``info`` are the
    env's. ``gym.make("distillgym/ArithMix-v2")`` wrapped in ``FeatureWrapper`` passes
    Gymnasium's env checker."""

    def __init__(self, env: gym.Env, features: str = "cells-v1") -> None:
        gym.utils.RecordConstructorArgs.__init__(self, features=features)
        gym.Wrapper.__init__(self, env)
        self.features = features_for_env(features, env)
        self.features_name = features
        self.observation_space = self.features.observation_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self.features.reset(obs, info), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.features.step(obs, info), reward, terminated, truncated, info
