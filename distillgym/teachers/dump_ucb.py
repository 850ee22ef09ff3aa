"""DUMP-UCB: UCB over cells on the mean |reward| of recent steps, sampled by a softmax.

After DUMP (2025), automated distribution-level curriculum learning for RL-based LLM
post-training (Wang, Cui, Li, Wan and Zhao, "DUMP: Automated Distribution-Level Curriculum
Learning for RL-based LLM Post-training", arXiv:2504.09710), and its reference code
(github.com/ZhentingWang/DUMP, ``verl/utils/curriculum_learning.py``). DUMP treats each data
distribution as a bandit arm whose *learnability* is the mean absolute advantage of its
recent rollouts, and schedules distributions by

    score_j = L_j + c * sqrt(2 ln(N + 1) / (n_j + 1)),   p = softmax(score / tau),

with ``c = 1`` and ``tau = 0.1``. Here each cell (skill, difficulty) is an arm:

* ``L_j`` is the mean of ``|reward|`` over the last ``window`` steps on which cell j was
  trained, where ``reward`` is what the env passes to ``update`` for that step (by default
  the change in mean validation accuracy): the size of the change that training on j
  caused, the analogue of the advantage magnitude. 0 for a cell never trained.
* ``n_j`` is the number of steps cell j was trained and ``N`` the total number of steps.

**Deviations.** DUMP's sliding window holds the last 300 *rollouts* of a distribution, many
per training step; here one reward arrives per step, so the window counts steps and
defaults to 10 (a 32-step episode of the default env never fills 300). ``n_j`` and ``N``
count steps, not rollouts. DUMP's reward comes from the policy's own rollouts; here it is
the env's reward, so with ``reward="sparse"`` every ``L_j`` stays 0 until the last step and
the teacher is pure UCB exploration. The cell is drawn from ``p`` with the teacher's seeded
generator.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from distillgym.errors import check_int, check_number
from distillgym.teachers.base import BaseTeacher

__all__ = ["DumpUCBTeacher"]


class DumpUCBTeacher(BaseTeacher):
    """DUMP-UCB (DUMP, 2025): softmax over mean |recent reward| of each cell plus a UCB bonus.

    Arguments: ``window`` (10 steps per cell), ``temperature`` tau (0.1),
    ``exploration_weight`` c (1.0). See the module docstring.
    """

    name = "dump-ucb"

    def __init__(self, window: int = 10, temperature: float = 0.1, exploration_weight: float = 1.0) -> None:
        self.window = check_int("DumpUCBTeacher", "window", window, 1)
        self.temperature = check_number("DumpUCBTeacher", "temperature", temperature, 0, open_low=True)
        self.exploration_weight = check_number("DumpUCBTeacher", "exploration_weight", exploration_weight, 0)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        n = len(self.cells)
        self.recent: list[deque[float]] = [deque(maxlen=self.window) for _ in range(n)]
        self.counts = np.zeros(n, dtype=int)

    @property
    def total(self) -> int:
        """N: how many steps have been credited to some cell."""
        return int(self.counts.sum())

    def scores(self) -> np.ndarray:
        """``L_j + c sqrt(2 ln(N + 1) / (n_j + 1))`` per cell, flat in skill-major order."""
        learnability = np.array([float(np.mean(b)) if b else 0.0 for b in self.recent])
        bonus = self.exploration_weight * np.sqrt(2.0 * np.log(self.total + 1) / (self.counts + 1))
        return learnability + bonus

    def probabilities(self, scores: np.ndarray | None = None) -> np.ndarray:
        """Softmax of ``scores`` (default: ``self.scores()``) at the temperature."""
        s = self.scores() if scores is None else scores
        e = np.exp((s - s.max()) / self.temperature)
        return e / e.sum()

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        s = self.scores()
        p = self.probabilities(s)
        self.last_decision = {"scores": s, "probabilities": p}
        return self.cell_action(int(self.rng.choice(len(p), p=p)))

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        i = self.trained_cell(info)
        if i is None:
            return
        self.recent[i].append(abs(float(reward)))
        self.counts[i] += 1
