"""The evaluator: skill-level error reports for teachers.

A :class:`SkillReport` holds the student's exact-match accuracy per skill x difficulty on a
validation set, the reference (teacher) accuracy per skill, the gap between them, and a
sample of the student's errors with its actual greedy answer, rendered as text for LLM
teachers and ``render_mode="ansi"``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distillgym.tasks.base import TaskSuite
from distillgym.types import Example

__all__ = ["SkillReport", "Evaluator"]


@dataclass
class SkillReport:
    skills: tuple[str, ...]
    n_difficulties: int
    accuracy: np.ndarray
    """(n_skills, n_difficulties) exact-match accuracy on the validation set."""
    reference: np.ndarray
    """(n_skills,) the reference teacher's accuracy on the same items."""
    counts: np.ndarray
    """(n_skills, n_difficulties) validation items per cell."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Sampled errors: skill, difficulty, prompt, student (its greedy answer), gold."""
    prerequisites: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def skill_accuracy(self) -> np.ndarray:
        """(n_skills,) accuracy per skill over all its validation items."""
        return (self.accuracy * self.counts).sum(1) / np.maximum(self.counts.sum(1), 1)

    @property
    def mean_accuracy(self) -> float:
        """Mean over skill x difficulty cells (every cell weighs the same)."""
        return float(self.accuracy.mean())

    @property
    def gap(self) -> np.ndarray:
        """(n_skills,) relative gap D(k) = (P_T(k) - P_S(k)) / P_T(k), 0 where P_T = 0."""
        ref = self.reference
        return np.where(ref > 0, (ref - self.skill_accuracy) / np.where(ref > 0, ref, 1), 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "skills": list(self.skills),
            "accuracy": self.accuracy.round(6).tolist(),
            "skill_accuracy": self.skill_accuracy.round(6).tolist(),
            "reference": self.reference.round(6).tolist(),
            "gap": self.gap.round(6).tolist(),
            "mean_accuracy": round(self.mean_accuracy, 6),
            "errors": self.errors,
        }

    def render(self, budget_left: int | None = None) -> str:
        """The report as text: a table of accuracy per skill and difficulty, the reference
        accuracy and gap, prerequisites, and the sampled errors."""
        d = self.n_difficulties
        head = f"{'skill':<10} {'needs':<12} " + " ".join(f"  L{j} " for j in range(d)) + "   all   ref   gap"
        lines = [head, "-" * len(head)]
        for i, s in enumerate(self.skills):
            needs = ",".join(self.prerequisites.get(s, ())) or "-"
            cells = " ".join(f"{self.accuracy[i, j]:5.2f}" for j in range(d))
            lines.append(
                f"{s:<10} {needs:<12} {cells} {self.skill_accuracy[i]:5.2f} {self.reference[i]:5.2f} {self.gap[i]:5.2f}"
            )
        lines.append(f"mean accuracy {self.mean_accuracy:.3f}")
        if budget_left is not None:
            lines.append(f"budget left: {budget_left} examples")
        if self.errors:
            lines.append("sampled errors (skill L: prompt -> student | gold):")
            for e in self.errors:
                lines.append(f"  {e['skill']} L{e['difficulty']}: {e['prompt']} -> {e['student']!r} | {e['gold']!r}")
        return "\n".join(lines)


class Evaluator:
    """Scores a student on a fixed validation set, cell by cell."""

    def __init__(self, suite: TaskSuite, examples: Sequence[Example], n_errors: int = 8) -> None:
        self.suite = suite
        self.examples = list(examples)
        self.n_errors = n_errors
        S, D = len(suite.skills), suite.n_difficulties
        self._cell = np.array([suite.skill_index(e.skill) * D + e.difficulty for e in self.examples])
        self.counts = np.bincount(self._cell, minlength=S * D).reshape(S, D)
        # The reference teacher answers every item by solving the prompt; its accuracy is
        # scored with the same checker as the student's.
        ref_ok = np.array([suite.score(self._solve(e), e.answer) for e in self.examples])
        skill_of = self._cell // D
        self.reference = np.bincount(skill_of, weights=ref_ok, minlength=S) / np.maximum(
            np.bincount(skill_of, minlength=S), 1
        )

    def _solve(self, e: Example) -> str:
        try:
            return self.suite.solve(e.prompt)
        except NotImplementedError:
            return e.answer

    def evaluate(self, student: Any, rng: np.random.Generator | None = None) -> SkillReport:
        t0 = time.perf_counter()
        S, D = len(self.suite.skills), self.suite.n_difficulties
        correct = student.score(self.examples)
        acc = np.bincount(self._cell, weights=correct.astype(float), minlength=S * D).reshape(S, D)
        acc = acc / np.maximum(self.counts, 1)
        errors: list[dict[str, Any]] = []
        wrong = np.flatnonzero(~correct)
        if self.n_errors and len(wrong):
            pick = wrong if rng is None else rng.permutation(wrong)
            pick = np.sort(pick[: self.n_errors])
            chosen = [self.examples[i] for i in pick]
            answers = student.predict([e.prompt for e in chosen], max_new_tokens=self.suite.max_answer_len + 1)
            errors = [
                {"skill": e.skill, "difficulty": e.difficulty, "prompt": e.prompt, "student": a, "gold": e.answer}
                for e, a in zip(chosen, answers, strict=True)
            ]
        return SkillReport(
            skills=tuple(self.suite.skills),
            n_difficulties=D,
            accuracy=acc,
            reference=self.reference.copy(),
            counts=self.counts,
            errors=errors,
            prerequisites=dict(self.suite.prerequisites),
            seconds=time.perf_counter() - t0,
        )
