"""``odm``: Online Data Mixing (Albalak et al., 2023), an Exp3 bandit over the cells.

Ported from the authors' code, ``alon-albalak/online-data-mixing``,
``megatron/data/data_sampling_utils.py`` (``SmoothedMeanWeightUpdater``; the training loop in
``megatron/training.py`` calls it with the mean training loss of every domain in the batch).

**Domains.** A domain is a cell (skill x difficulty): k = 28 for the arithmetic suites.

**Rule**, once per env step, with t the Exp3 time (see below):

1. reward of cell i = its training loss in the step (``info["train_cell_loss"]``: the mean answer
   cross-entropy of the step's new examples of the cell); cells that got no data are not updated
   (ODM updates only the domains present in the batch);
2. smoothed mean of the exponentiated reward: ``R_i = smoothing * R_i + (1 - smoothing) * exp(r_i)``
   (``R`` starts at 0; ``smoothing`` 0.9 is the code's default);
3. ``eps_t = min(1/k, sqrt(ln k / (k t)))`` (``eps`` starts at 1/k);
4. ``weighting="exp"`` (the paper's Algorithm 1 and the code's single-domain ``update``):
   ``pi_i = (1 - k eps_t) exp(eps_{t-1} R_i) / sum_j exp(eps_{t-1} R_j) + eps_t``;
   ``weighting="linear"`` (the code's ``group_update``, which its mixed-minibatch training loop
   calls): ``pi_i = (1 - k eps_t) R_i / sum_j R_j + eps_t``.

The mix starts uniform (the code's ``train_data_weights`` are the initial weights; ours are equal),
and no update is made while ``t <= warmup`` (the code's ``data_sampling_warmup_steps``, 2,000 of
100,000 iterations in its scripts, i.e. 2%).

**Time.** ODM updates once per optimiser iteration and ``t`` counts iterations. One env step is
2,048 examples and many optimiser steps of the student (for the default tiny student 64, batches
of 128 rows of which 32 are new, and 16 in the first step, which has nothing to replay: 1,488 in
an episode). ``time_unit="optimizer_step"`` (default) takes t = the student's
optimiser steps so far in the episode (``info["totals"]["optimizer_steps"]``), so eps_t decays as in
ODM per unit of training; ``time_unit="env_step"`` takes t = env steps. With env steps and k = 28,
``sqrt(ln k / (k t)) >= 1/k`` for every t <= k ln k (about 93), so eps_t = 1/k, ``1 - k eps_t = 0``
and the mix would be exactly the equal mix for the whole 24-step episode. The smoothing is applied
once per env step (each step yields one mean loss per cell, as one ODM batch does per domain).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distillgym.errors import check_choice, check_int, check_number
from distillgym.teachers.mixing import MixTeacher, train_cell_loss

LOSS_MAX = 100.0
"""Training losses above this (nats) are clipped before ``exp`` (the env clips its ``loss`` observation there too)."""

__all__ = ["ODMTeacher", "exp3_epsilon", "odm_weights"]


def exp3_epsilon(k: int, t: float) -> float:
    """ODM's exploration rate ``min(1/k, sqrt(ln k / (k t)))`` for ``k`` domains at time ``t >= 1``."""
    return min(1.0 / k, math.sqrt(math.log(k) / (k * t)))


def odm_weights(R: np.ndarray, eps: float, prev_eps: float, weighting: str = "exp") -> np.ndarray:
    """The sampling distribution from the smoothed rewards ``R`` (k,), the new ``eps`` (eps_t) and
    the previous one (eps_{t-1}); see the module docstring for the two ``weighting`` rules."""
    R = np.asarray(R, dtype=float)
    k = R.size
    if weighting == "exp":
        x = prev_eps * R
        e = np.exp(x - x.max())  # the shift cancels in the normalisation
        w = (1.0 - k * eps) * e / e.sum() + eps
    else:
        total = R.sum()
        share = R / total if total > 0 else np.full(k, 1.0 / k)
        w = (1.0 - k * eps) * share + eps
    return w / w.sum()


class ODMTeacher(MixTeacher):
    """Online Data Mixing: Exp3 with a smoothed mean of exp(training loss) per cell (see the module docstring).

    Arguments: ``smoothing`` (0.9; weight of the old smoothed reward, in [0, 1]), ``weighting``
    (``"exp"`` or ``"linear"``), ``time_unit`` (``"optimizer_step"`` or ``"env_step"``), ``warmup``
    (no update while t <= warmup, in ``time_unit``s; 0)."""

    name = "odm"
    WEIGHTINGS = ("exp", "linear")
    TIME_UNITS = ("optimizer_step", "env_step")

    def __init__(
        self, smoothing: float = 0.9, weighting: str = "exp", time_unit: str = "optimizer_step", warmup: int = 0
    ) -> None:
        self.smoothing = check_number("ODMTeacher", "smoothing", smoothing, 0, 1)
        self.weighting = check_choice("weighting", weighting, self.WEIGHTINGS)
        self.time_unit = check_choice("time_unit", time_unit, self.TIME_UNITS)
        self.warmup = check_int("ODMTeacher", "warmup", warmup, 0)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        self.k = self.shape[0] * self.shape[1]
        self.R = np.zeros(self.k)
        self.pi = np.full(self.k, 1.0 / self.k)
        self.eps = 1.0 / self.k
        self.steps = 0
        self.t = 0.0

    def _time(self, info: dict[str, Any]) -> float:
        if self.time_unit == "optimizer_step":
            totals = info.get("totals") or {}
            if totals.get("optimizer_steps"):
                return float(totals["optimizer_steps"])
        return float(self.steps)

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.steps += 1
        self.t = max(1.0, self._time(info))
        loss = train_cell_loss(info)
        if loss is None or self.t <= self.warmup:
            return
        r = np.minimum(loss.ravel(), LOSS_MAX)  # exp() of a diverged loss would overflow
        seen = np.isfinite(r)
        self.R[seen] = self.smoothing * self.R[seen] + (1.0 - self.smoothing) * np.exp(r[seen])
        prev_eps = self.eps
        self.eps = exp3_epsilon(self.k, self.t)
        self.pi = odm_weights(self.R, self.eps, prev_eps, self.weighting)

    def mix(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        return self.pi.reshape(self.shape)

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        action = super().act(observation, info)
        self.last_decision.update({"t": self.t, "eps": self.eps, "R": self.R.reshape(self.shape).round(4).tolist()})
        return action
