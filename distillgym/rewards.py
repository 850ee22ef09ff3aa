"""Rewards: ``f(initial_report, previous_report, report, terminal) -> float``.

``terminal`` is True on the episode's last step, however it ends: the budget spent (``terminated``)
or ``max_steps`` reached (``truncated``). (Before issue 20 it was ``terminated`` only, so ``sparse``
paid 0 for a truncated episode: an open-level writer that never spends its budget got return 0.)

- ``delta_mean`` (default): change of the mean validation accuracy over all cells since the
  previous step, so the episode return is ``A_T - A_0``;
- ``sparse``: 0 until the last step (terminated or truncated), then ``A_T - A_0``;
- ``delta_min_skill``: change of the weakest skill's accuracy (with evaluation weights: the
  weakest of the skills that have a target cell).

With evaluation weights (``TeachingEnv(eval_weights=...)``) the mean accuracy is the weighted
mean over the target cells (:attr:`distillgym.feedback.SkillReport.mean_accuracy`).
"""

from __future__ import annotations

from collections.abc import Callable

from distillgym.feedback import SkillReport

__all__ = ["REWARDS", "RewardFn"]

RewardFn = Callable[[SkillReport, SkillReport, SkillReport, bool], float]


def _delta_mean(initial: SkillReport, prev: SkillReport, now: SkillReport, terminal: bool) -> float:
    return now.mean_accuracy - prev.mean_accuracy


def _sparse(initial: SkillReport, prev: SkillReport, now: SkillReport, terminal: bool) -> float:
    return now.mean_accuracy - initial.mean_accuracy if terminal else 0.0


def _delta_min_skill(initial: SkillReport, prev: SkillReport, now: SkillReport, terminal: bool) -> float:
    if now.weights is None:
        return float(now.skill_accuracy.min() - prev.skill_accuracy.min())
    t = now.target_skills
    return float(now.skill_accuracy[t].min() - prev.skill_accuracy[t].min())


REWARDS: dict[str, RewardFn] = {
    "delta_mean": _delta_mean,
    "sparse": _sparse,
    "delta_min_skill": _delta_min_skill,
}
