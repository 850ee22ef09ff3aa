"""The evaluator: accuracy per skill and difficulty, and error reports for teachers.

A :class:`SkillReport` holds the student's accuracy per skill x difficulty on a validation
set (scored by the suite's own rule), optionally the validation loss per cell (mean token
cross-entropy of the gold answer), the reference (teacher) accuracy per skill, the gap
between them, and a sample of the student's errors with its actual greedy answer, rendered
as text for LLM teachers and ``render_mode="ansi"``.

How the student is scored: when the suite's score is exact match (``suite.exact_match``) and
the student offers the teacher-forced fast path (``student.teacher_forced_exact``), one
teacher-forced pass gives exact match (and the loss); otherwise the student's greedy answers
(``student.predict``) are scored with ``suite.score`` and the loss comes from
``student.answer_loss``. The reference accuracy is the data engine's own measured accuracy
when it reports one (``engine.reference_accuracy``), else the suite's solver scored with the
same rule.
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
    loss: np.ndarray | None = None
    """(n_skills, n_difficulties) mean answer cross-entropy per cell, when measured."""

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
            "loss": None if self.loss is None else self.loss.round(6).tolist(),
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
    """Scores a student on a fixed validation (or test) set, cell by cell.

    ``reference``: per-skill reference accuracy to report (an engine's measured accuracy);
    None computes it from the suite's solver on these items. ``want_loss``: also measure the
    answer loss per cell."""

    def __init__(
        self,
        suite: TaskSuite,
        examples: Sequence[Example],
        n_errors: int = 8,
        reference: np.ndarray | None = None,
        want_loss: bool = False,
    ) -> None:
        self.suite = suite
        self.examples = list(examples)
        self.n_errors = n_errors
        self.want_loss = bool(want_loss)
        S, D = len(suite.skills), suite.n_difficulties
        self._cell = np.array([suite.skill_index(e.skill) * D + e.difficulty for e in self.examples], dtype=np.int64)
        self.counts = np.bincount(self._cell, minlength=S * D).reshape(S, D)
        if reference is not None:
            ref = np.asarray(reference, dtype=float)
            if ref.shape != (S,):
                raise ValueError(f"reference accuracy must have shape ({S},), got {ref.shape}")
            self.reference = ref.copy()
        else:
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

    def _per_cell(self, values: np.ndarray) -> np.ndarray:
        S, D = len(self.suite.skills), self.suite.n_difficulties
        total = np.bincount(self._cell, weights=values.astype(float), minlength=S * D).reshape(S, D)
        return total / np.maximum(self.counts, 1)

    def _scores(self, student: Any) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
        """Per item: score in [0, 1], answer loss (or None), and the greedy answers if generated."""
        fast = self.suite.exact_match and getattr(student, "teacher_forced_exact", False)
        if fast:
            if self.want_loss and hasattr(student, "score_and_loss"):
                correct, loss = student.score_and_loss(self.examples)
                return np.asarray(correct, dtype=float), np.asarray(loss, dtype=float), None
            correct = np.asarray(student.score(self.examples), dtype=float)
            loss = np.asarray(student.answer_loss(self.examples), dtype=float) if self.want_loss else None
            return correct, loss, None
        answers = student.predict([e.prompt for e in self.examples], max_new_tokens=self.suite.max_answer_len + 1)
        scores = np.array([self.suite.score(a, e.answer) for a, e in zip(answers, self.examples, strict=True)])
        loss = np.asarray(student.answer_loss(self.examples), dtype=float) if self.want_loss else None
        return scores, loss, answers

    def evaluate(self, student: Any, rng: np.random.Generator | None = None) -> SkillReport:
        t0 = time.perf_counter()
        D = self.suite.n_difficulties
        scores, loss, answers = self._scores(student)
        acc = self._per_cell(scores)
        errors: list[dict[str, Any]] = []
        wrong = np.flatnonzero(scores < 1.0)
        if self.n_errors and len(wrong):
            pick = wrong if rng is None else rng.permutation(wrong)
            pick = np.sort(pick[: self.n_errors])
            chosen = [self.examples[i] for i in pick]
            if answers is None:
                got = student.predict([e.prompt for e in chosen], max_new_tokens=self.suite.max_answer_len + 1)
            else:
                got = [answers[i] for i in pick]
            errors = [
                {"skill": e.skill, "difficulty": e.difficulty, "prompt": e.prompt, "student": a, "gold": e.answer}
                for e, a in zip(chosen, got, strict=True)
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
            loss=None if loss is None else self._per_cell(loss),
        )
