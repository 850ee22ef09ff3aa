"""Learning progress: sample cells in proportion to |fast EMA - slow EMA| of their accuracy.

After Kanitscheider et al., "Multi-task curriculum learning in a complex, visual,
hard-exploration domain: Minecraft" (arXiv:2106.14876, 2021), as implemented in Syllabus's
``LearningProgressCurriculum`` / ``OnlineLearningProgress`` (github.com/RyanNavillus/Syllabus),
with the exploration mixture of ALP-GMM (Portelas et al., "Teacher algorithms for
curriculum learning of Deep RL in continuously parameterized environments", CoRL 2019).

For each cell (skill, difficulty) with validation accuracy ``x_t``:

* fast EMA ``f_t = alpha * x_t + (1 - alpha) * f_{t-1}``, ``alpha = 0.1``;
* slow EMA ``s_t = alpha_slow * f_t + (1 - alpha_slow) * s_{t-1}``: an EMA *of the fast EMA*,
  with ``alpha_slow = alpha = 0.1`` by default, exactly as Syllabus implements Kanitscheider
  et al.'s curriculum (one ``ema_alpha=0.1`` for both); both start at the reset observation
  (Syllabus's online variant), so learning progress starts at 0;
* the success-rate reweighting of Kanitscheider et al. / Syllabus,
  ``r(p) = (1 - theta) p / (p + theta (1 - 2p))`` with ``theta = 0.1``, which magnifies
  changes at low accuracy, is applied to both EMAs (``reweight=False`` turns it off);
* absolute (bidirectional) learning progress ``LP = |r(f_t) - r(s_t)|``, so forgetting
  counts as progress too.

The next cell is sampled from ``(1 - explore) * w + explore / N`` with ``explore = 0.2``
(ALP-GMM's 20% uniform exploration), where ``w`` is LP normalised to sum to one
(``weighting="proportional"``, default; uniform while every LP is 0). ``weighting="sigmoid"``
is Syllabus's transform instead: z-score the LP of the cells whose LP is positive, pass it
through a sigmoid, normalise, and give the other cells zero weight.

Every cell is updated after every step, because the observation reports every cell
(Syllabus's ``LearningProgressCurriculum`` runs a periodic evaluation of every task for the
same purpose). Deviations: one cell is trained
per step (the original samples a task per episode); accuracies are exact-match rates on a
fixed validation set rather than episode success rates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import check_bool, check_choice, check_number
from distillgym.teachers.base import BaseTeacher

__all__ = ["LearningProgressTeacher"]

WEIGHTINGS = ("proportional", "sigmoid")


class LearningProgressTeacher(BaseTeacher):
    """Learning progress (Kanitscheider et al. 2021 / Syllabus): sample cells by |fast - slow EMA|, 20% uniform.

    Arguments: ``alpha`` (0.1) fast EMA rate, ``slow_alpha`` (None: same as ``alpha``) rate
    of the slow EMA of the fast EMA, ``reweight`` (True) and ``p_theta`` (0.1) for the
    success-rate reweighting, ``explore`` (0.2) uniform mixture, ``weighting``
    ``"proportional"`` (default) or ``"sigmoid"``. See the module docstring.
    """

    name = "learning-progress"

    def __init__(
        self,
        alpha: float = 0.1,
        slow_alpha: float | None = None,
        reweight: bool = True,
        p_theta: float = 0.1,
        explore: float = 0.2,
        weighting: str = "proportional",
    ) -> None:
        me = "LearningProgressTeacher"
        self.alpha = check_number(me, "alpha", alpha, 0, 1, open_low=True)
        self.slow_alpha = self.alpha
        if slow_alpha is not None:
            self.slow_alpha = check_number(me, "slow_alpha", slow_alpha, 0, 1, open_low=True)
        self.p_theta = check_number(me, "p_theta", p_theta, 0, 1, open_low=True, open_high=True)
        self.explore = check_number(me, "explore", explore, 0, 1)
        self.reweight = check_bool(me, "reweight", reweight)
        self.weighting = check_choice("weighting", weighting, WEIGHTINGS)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        self.fast: np.ndarray | None = None
        self.slow: np.ndarray | None = None

    # ------------------------------------------------------------------ pieces
    def _reweight(self, p: np.ndarray) -> np.ndarray:
        th = self.p_theta
        return p * (1.0 - th) / (p + th * (1.0 - 2.0 * p))

    def observe(self, accuracy: Any) -> None:
        """Fold one (S, D) accuracy matrix into the EMAs (the first one initialises them)."""
        x = np.asarray(accuracy, dtype=float).reshape(-1)
        if self.fast is None or self.slow is None:
            self.fast, self.slow = x.copy(), x.copy()
            return
        self.fast = self.alpha * x + (1.0 - self.alpha) * self.fast
        self.slow = self.slow_alpha * self.fast + (1.0 - self.slow_alpha) * self.slow

    def learning_progress(self) -> np.ndarray:
        """LP per cell, flat in skill-major order (``self.cells``)."""
        assert self.fast is not None and self.slow is not None
        f, s = (self._reweight(self.fast), self._reweight(self.slow)) if self.reweight else (self.fast, self.slow)
        return np.abs(f - s)

    def distribution(self, lp: np.ndarray) -> np.ndarray:
        """The sampling distribution over cells for learning progress ``lp``."""
        n = len(lp)
        if self.weighting == "sigmoid":
            pos = lp > 0
            sub = lp[pos] if pos.any() else lp
            std = sub.std()
            z = 1.0 / (1.0 + np.exp(-(sub - sub.mean()) / (std if std else 1.0)))
            w = np.zeros(n)
            if pos.any():
                w[pos] = z
            else:
                w = z
            w = w / w.sum()
        else:
            total = lp.sum()
            w = lp / total if total > 0 else np.full(n, 1.0 / n)
        p = (1.0 - self.explore) * w + self.explore / n
        return p / p.sum()

    # ------------------------------------------------------------------ protocol
    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        if self.fast is None:
            self.observe(observation["accuracy"])
        lp = self.learning_progress()
        p = self.distribution(lp)
        self.last_decision = {"learning_progress": lp, "probabilities": p}
        return self.cell_action(int(self.rng.choice(len(p), p=p)))

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.observe(observation["accuracy"])
