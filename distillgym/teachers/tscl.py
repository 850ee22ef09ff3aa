"""TSCL: Teacher-Student Curriculum Learning over the skill x difficulty cells.

After Matiisen, Oliver, Cohen and Schulman, "Teacher-Student Curriculum Learning"
(arXiv:1707.00183, 2017; IEEE TNNLS 2019) and their reference code (github.com/tambetm/TSCL,
``addition/addition_rnn_teacher.py``). Each cell (skill, difficulty) is one of the paper's
subtasks; its *score* is the cell's validation exact-match accuracy from the observation.
The teacher prefers the cells whose learning curve is steepest, in absolute value, so it
also revisits cells that are being forgotten.

Two of the paper's teacher algorithms are here:

* ``"tscl-window"`` (:class:`TSCLWindowTeacher`): a FIFO buffer of the last ``window`` (K=10)
  scores of each cell, with the step at which each was observed; the cell's value Q is the
  slope of a least-squares line through them; the cell is then chosen by an epsilon-greedy
  (epsilon=0.1) or Boltzmann policy on ``|Q|``.
* ``"tscl-sampling"`` (:class:`TSCLSamplingTeacher`): a FIFO buffer of the last K score
  changes of each cell; each step one change is drawn at random from every cell's buffer
  (a Thompson-sampling-like step) and the cell with the largest ``|draw|`` is chosen; a cell
  whose buffer is empty is chosen first.

**When a cell's history gets a point.** ``observe="all"`` (default): the env re-evaluates
every cell after every step, so every cell gets a new score (window) or score change
(sampling) each step. This is the paper's supervised (decimal addition) setting, in which
the validation score of every subtask is reported after every training step and the
reference code appends all of them. ``observe="chosen"``: only the trained cell gets a point,
as in the paper's reinforcement-learning (Minecraft) setting, where a score is seen only for
the task just played; a score change is then the cell's score now minus its score the last
time it was trained (``x_t - x_t'`` in the paper). In both modes the observation from reset
is recorded as every cell's first score (step 0), so it is the baseline of the first change.

**Deviations from the paper.**

* The paper's supervised Student trains on a *mixture* of tasks given by the teacher's
  probability vector; here one cell is trained per step, so the action is drawn from that
  vector (epsilon-greedy: the best cell with probability 1 - epsilon + epsilon/N).
* A cell with fewer than two scores has slope 1 (the reference code's rule, so untried
  cells come first); with ``observe="all"`` that is only the case at the first step.
* Ties for the best value are broken at random (the reference code does the same) with the
  teacher's seeded generator.
* Boltzmann temperature 0.0004 is the reference code's default for the addition task,
  whose scores, like ours, are accuracies in [0, 1].
* The sampling variant uses no epsilon by default, as in the paper's algorithm; the
  reference code mixes in epsilon=0.1 (``epsilon`` argument).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from distillgym.errors import check_bool, check_choice, check_int, check_number
from distillgym.teachers.base import BaseTeacher

__all__ = ["TSCLWindowTeacher", "TSCLSamplingTeacher", "slope"]

POLICIES = ("epsilon-greedy", "boltzmann")
OBSERVE = ("all", "chosen")


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y against x (0 when x is constant)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xc = x - x.mean()
    den = float(np.dot(xc, xc))
    return float(np.dot(xc, y - y.mean()) / den) if den > 0 else 0.0


class _TSCLBase(BaseTeacher):
    """Bookkeeping shared by the two TSCL teachers: step counter, chosen cell, observe mode."""

    MIN_WINDOW = 1  # the window teacher needs 2 points for a slope

    def __init__(self, window: int, epsilon: float, observe: str, absolute: bool) -> None:
        cls = type(self).__name__
        self.window = check_int(cls, "window", window, self.MIN_WINDOW)
        self.epsilon = check_number(cls, "epsilon", epsilon, 0, 1)
        self.observe = check_choice("observe mode", observe, OBSERVE)
        self.absolute = check_bool(cls, "absolute", absolute)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        self._t = 0
        self._started = False

    def _flat(self, observation: Any) -> np.ndarray:
        return np.asarray(observation["accuracy"], dtype=float).reshape(-1)

    def _greedy(self, q: np.ndarray) -> np.ndarray:
        """Epsilon-greedy distribution: a random best cell, plus epsilon spread uniformly."""
        best = np.flatnonzero(q == q.max())
        p = np.full(len(q), self.epsilon / len(q))
        p[best[self.rng.integers(len(best))] if len(best) > 1 else best[0]] += 1.0 - self.epsilon
        return p

    def _draw(self, p: np.ndarray) -> np.ndarray:
        return self.cell_action(int(self.rng.choice(len(p), p=p / p.sum())))


class TSCLWindowTeacher(_TSCLBase):
    """TSCL Window (Matiisen et al. 2017): |slope| of each cell's last K scores, epsilon-greedy/Boltzmann.

    Arguments: ``window`` K (10), ``policy`` ``"epsilon-greedy"`` (default) or ``"boltzmann"``,
    ``epsilon`` (0.1), ``temperature`` (0.0004, Boltzmann only), ``observe`` ``"all"``
    (default) or ``"chosen"`` (see the module docstring), ``absolute`` (True: rank by |slope|,
    the paper's remedy for forgetting). See the module docstring for the deviations.
    """

    name = "tscl-window"
    MIN_WINDOW = 2

    def __init__(
        self,
        window: int = 10,
        policy: str = "epsilon-greedy",
        epsilon: float = 0.1,
        temperature: float = 0.0004,
        observe: str = "all",
        absolute: bool = True,
    ) -> None:
        super().__init__(window, epsilon, observe, absolute)
        self.policy = check_choice("policy", policy, POLICIES)
        self.temperature = check_number(type(self).__name__, "temperature", temperature, 0, open_low=True)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        n = len(self.cells)
        self.scores: list[deque[float]] = [deque(maxlen=self.window) for _ in range(n)]
        self.times: list[deque[int]] = [deque(maxlen=self.window) for _ in range(n)]

    def _record(self, i: int, score: float) -> None:
        self.scores[i].append(float(score))
        self.times[i].append(self._t)

    def slopes(self) -> np.ndarray:
        """Q per cell (flat, skill-major): the slope of its score window; 1 with < 2 points."""
        return np.array([slope(t, s) if len(s) > 1 else 1.0 for t, s in zip(self.times, self.scores, strict=True)])

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        if not self._started:  # the reset observation: every cell's score at step 0
            for i, x in enumerate(self._flat(observation)):
                self._record(i, x)
            self._started = True
        q = self.slopes()
        v = np.abs(q) if self.absolute else q
        if self.policy == "boltzmann":
            e = np.exp((v - v.max()) / self.temperature)
            p = e / e.sum()
        else:
            p = self._greedy(v)
        action = self._draw(p)
        self.last_decision = {"slopes": q, "probabilities": p}
        return action

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self._t += 1
        acc = self._flat(observation)
        if self.observe == "all":
            for i, x in enumerate(acc):
                self._record(i, x)
        else:
            i = self.trained_cell(info)
            if i is not None:
                self._record(i, acc[i])


class TSCLSamplingTeacher(_TSCLBase):
    """TSCL Sampling (Matiisen et al. 2017): the largest |draw| from each cell's last K score changes.

    Arguments: ``window`` K (10), ``observe`` ``"all"`` (default) or ``"chosen"`` (see the
    module docstring), ``epsilon`` (0: none, as in the paper's algorithm; the reference code
    uses 0.1), ``absolute`` (True: compare |draw|). A cell with no recorded change yet is
    chosen before any other (ties at random).
    """

    name = "tscl-sampling"

    def __init__(self, window: int = 10, observe: str = "all", epsilon: float = 0.0, absolute: bool = True) -> None:
        super().__init__(window, epsilon, observe, absolute)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        n = len(self.cells)
        self.changes: list[deque[float]] = [deque(maxlen=self.window) for _ in range(n)]
        self._prev: np.ndarray | None = None  # last score per cell ("all": last step; "chosen": last training)

    def sample_values(self) -> np.ndarray:
        """One draw per cell from its buffer of recent score changes; +inf where it is empty."""
        out = np.empty(len(self.changes))
        for i, buf in enumerate(self.changes):
            out[i] = buf[int(self.rng.integers(len(buf)))] if buf else np.inf
        return out

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        if not self._started:
            self._prev = self._flat(observation).copy()
            self._started = True
        draws = self.sample_values()
        v = np.abs(draws) if self.absolute else draws
        p = self._greedy(v)
        action = self._draw(p)
        self.last_decision = {"draws": draws, "probabilities": p}
        return action

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self._t += 1
        acc = self._flat(observation)
        if self._prev is None:  # update before any act: nothing to difference against yet
            self._prev = acc.copy()
            return
        if self.observe == "all":
            for i, d in enumerate(acc - self._prev):
                self.changes[i].append(float(d))
            self._prev = acc.copy()
        else:
            i = self.trained_cell(info)
            if i is not None:
                self.changes[i].append(float(acc[i] - self._prev[i]))
                self._prev[i] = acc[i]
