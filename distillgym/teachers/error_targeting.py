"""Error targeting: train on the cell where the student's validation errors are most frequent.

After LLM2LLM (Lee et al., "LLM2LLM: Boosting LLMs with Novel Iterative Data Enhancement",
arXiv:2403.15042, 2024). LLM2LLM evaluates the student, collects the examples it gets wrong,
and has the teacher write one new example like each wrong one, so the next round's new data
is distributed like the student's errors.

In this env the data of a step is fixed in size (``examples_per_step`` examples of one
cell), so "one new example per error" becomes "the whole step goes to the cell with the most
errors": the cell with the largest validation error rate ``1 - accuracy`` (every cell has
the same number of validation items, so that is also the largest error count). Ties (within
1e-6, so float32 rounding of the observation does not matter) go to the lowest difficulty,
then the lowest skill index (easiest first), so the rule is deterministic and uses no
randomness.

``sampled_error_weight`` (default 0, off) adds ``w * share_j`` to cell j's error rate, where
``share_j`` is the fraction of the sampled errors in ``info["errors"]`` (the wrong answers the
env shows the teacher) that belong to cell j; LLM2LLM works from the individual wrong
examples, and this is the closest signal the env exposes. Deviations: LLM2LLM augments the
training set only from training-set errors and keeps every earlier round's data; here the
errors are validation errors and the env's student keeps its own replay.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import check_number
from distillgym.teachers.base import BaseTeacher

__all__ = ["ErrorTargetingTeacher"]


class ErrorTargetingTeacher(BaseTeacher):
    """Error targeting (LLM2LLM, Lee et al. 2024): the cell with the highest error rate, easiest on ties.

    Arguments: ``sampled_error_weight`` (0.0) weight of the cell's share of the sampled errors
    in ``info["errors"]``. See the module docstring.
    """

    name = "error-targeting"

    def __init__(self, sampled_error_weight: float = 0.0) -> None:
        self.sampled_error_weight = check_number("ErrorTargetingTeacher", "sampled_error_weight", sampled_error_weight, 0)

    def error_share(self, info: dict[str, Any]) -> np.ndarray:
        """(S, D) fraction of the sampled errors in ``info["errors"]`` per cell (zeros if none)."""
        share = np.zeros((len(self.skills), self.n_difficulties))
        for e in (info or {}).get("errors", []) or []:
            s, d = e.get("skill"), e.get("difficulty")
            if s in self.skills and isinstance(d, (int, np.integer)) and 0 <= d < self.n_difficulties:
                share[self.skills.index(s), int(d)] += 1
        total = share.sum()
        return share / total if total > 0 else share

    def scores(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        """(S, D) error rate, plus the weighted share of sampled errors when that is on."""
        err = 1.0 - np.asarray(observation["accuracy"], dtype=float)
        if self.sampled_error_weight > 0:
            err = err + self.sampled_error_weight * self.error_share(info)
        return err

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        score = self.scores(observation, info)
        best = score.max()
        # lowest difficulty first, then lowest skill index, among the (near-)maximal cells
        tied = [(d, s) for s in range(score.shape[0]) for d in range(score.shape[1]) if score[s, d] >= best - 1e-6]
        d, s = min(tied)
        self.last_decision = {"scores": score, "error_rate": float(score[s, d])}
        return np.array([s, d])
