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

**Evaluation weights** (:func:`eval_weight_matrix`; ``TeachingEnv(eval_weights=...)``): a report may
carry a non-negative weight per cell; then :attr:`SkillReport.mean_accuracy` (what rewards,
``info["mean_accuracy"]`` and the final test score read) is the weighted mean, while the accuracy of
every evaluated cell stays in the report. A report renders its target cells (weight > 0) with a
``*`` and cells it did not evaluate (no items) with ``-``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distillgym.tasks.base import TaskSuite
from distillgym.types import Example

__all__ = ["SkillReport", "Evaluator", "eval_weight_matrix"]


def eval_weight_matrix(spec: Any, skills: Sequence[str], n_difficulties: int) -> np.ndarray | None:
    """The ``(n_skills, n_difficulties)`` float matrix of evaluation weights ``spec`` names, or None
    for None (every cell weighs 1, the plain mean). ``spec`` is a dict ``{skill: weight}`` or ``{skill:
    [weight per difficulty]}`` (skills left out weigh 0), or an ``(n_skills, n_difficulties)`` nested
    list or array. Weights must be finite, non-negative and not all zero; anything else raises
    :class:`~distillgym.errors.ConfigError` (an unknown skill: :class:`~distillgym.errors.UnknownNameError`)."""
    from distillgym.errors import ConfigError, UnknownNameError, did_you_mean

    if spec is None:
        return None
    S, D = len(skills), int(n_difficulties)
    how = (f"eval_weights is a dict {{skill: weight or [{D} weights, one per difficulty]}} or a {S} x {D} nested "
           f"list (skills {list(skills)}), non-negative, not all zero")
    if isinstance(spec, dict):
        w = np.zeros((S, D))
        for skill, v in spec.items():
            if skill not in skills:
                raise UnknownNameError(f"eval_weights names unknown skill {skill!r}: {did_you_mean(str(skill), skills)}")
            row = np.asarray(v, dtype=object)
            if row.ndim == 0:
                row = np.full(D, v, dtype=object)
            if row.shape != (D,):
                raise ConfigError(f"eval_weights[{skill!r}] must be one number or {D} numbers, got {v!r}; {how}")
            w[list(skills).index(skill)] = _numbers(row, how)
    else:
        try:
            arr = np.asarray(spec, dtype=object)
        except Exception:  # ragged lists
            arr = None
        if arr is None or arr.shape != (S, D):
            raise ConfigError(f"eval_weights has shape {getattr(arr, 'shape', None)}, expected ({S}, {D}); {how}")
        w = _numbers(arr, how)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"eval_weights must be finite, non-negative and not all zero, got {w.tolist()}; {how}")
    return w


def _numbers(a: np.ndarray, how: str) -> np.ndarray:
    from distillgym.errors import ConfigError

    out = np.zeros(a.shape)
    for i, x in np.ndenumerate(a):
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise ConfigError(f"eval_weights must hold numbers, got {x!r}; {how}")
        out[i] = float(x)
    return out


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
    weights: np.ndarray | None = None
    """(n_skills, n_difficulties) evaluation weights (:func:`eval_weight_matrix`); None: every cell weighs 1."""

    @property
    def skill_accuracy(self) -> np.ndarray:
        """(n_skills,) accuracy per skill over all its validation items."""
        return (self.accuracy * self.counts).sum(1) / np.maximum(self.counts.sum(1), 1)

    @property
    def mean_accuracy(self) -> float:
        """Mean over skill x difficulty cells: every cell weighs the same, or, with ``weights``,
        the weighted mean ``sum(w * acc) / sum(w)``."""
        if self.weights is None:
            return float(self.accuracy.mean())
        return float((self.weights * self.accuracy).sum() / self.weights.sum())

    @property
    def mean_accuracy_all_cells(self) -> float:
        """The plain mean over every cell, whatever the weights (cells not evaluated count 0)."""
        return float(self.accuracy.mean())

    @property
    def target_skills(self) -> np.ndarray:
        """(n_skills,) True for a skill with some positive weight (every skill without weights)."""
        if self.weights is None:
            return np.ones(len(self.skills), bool)
        return self.weights.sum(1) > 0

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
            **({} if self.weights is None else {"weights": self.weights.tolist(),
                                                "mean_accuracy_all_cells": round(self.mean_accuracy_all_cells, 6)}),
        }

    def _cell_text(self, i: int, j: int) -> str:
        if self.weights is None:
            return f"{self.accuracy[i, j]:5.2f}"
        if self.counts[i, j] == 0:
            return "    -"
        return f"{self.accuracy[i, j]:4.2f}*" if self.weights[i, j] > 0 else f"{self.accuracy[i, j]:5.2f}"

    def render(self, budget_left: int | None = None) -> str:
        """The report as text: a table of accuracy per skill and difficulty, the reference
        accuracy and gap, prerequisites, and the sampled errors."""
        d = self.n_difficulties
        head = f"{'skill':<10} {'needs':<12} " + " ".join(f"  L{j} " for j in range(d)) + "   all   ref   gap"
        lines = [head, "-" * len(head)]
        for i, s in enumerate(self.skills):
            needs = ",".join(self.prerequisites.get(s, ())) or "-"
            cells = " ".join(self._cell_text(i, j) for j in range(d))
            whole = f"{self.skill_accuracy[i]:5.2f}" if self.counts[i].sum() else "    -"
            lines.append(f"{s:<10} {needs:<12} {cells} {whole} {self.reference[i]:5.2f} {self.gap[i]:5.2f}")
        if self.weights is None:
            lines.append(f"mean accuracy {self.mean_accuracy:.3f}")
        else:
            lines.append(f"mean accuracy {self.mean_accuracy:.3f} over the target cells (*, weighted); "
                         f"{self.mean_accuracy_all_cells:.3f} over all cells"
                         + (" (- not evaluated: 0)" if (self.counts == 0).any() else ""))
        if budget_left is not None:
            lines.append(f"budget left: {budget_left} examples")
        if self.errors:
            lines.append("sampled errors (skill L: prompt -> student | gold):")
            for e in self.errors:
                lines.append(f"  {e['skill']} L{e['difficulty']}: {e['prompt']} -> {e['student']!r} | {e['gold']!r}")
        return "\n".join(lines)


class Evaluator:
    """Scores a student on a fixed validation (or test) set, cell by cell.

    ``examples``: a list of :class:`~distillgym.types.Example` or an
    :class:`~distillgym.tasks.arrays.ExampleArrays` (kept as arrays: no ``Example`` object is built
    until a sampled error needs one). ``reference``: per-skill reference accuracy to report (an
    engine's measured accuracy); None computes it from the suite's solver on these items (with
    the suite's vectorised checker ``verify_arrays`` when it has one and scores by exact match: the
    same numbers). ``want_loss``: also measure the answer loss per cell. ``weights``: the reports'
    evaluation weights (see :class:`SkillReport`).

    :meth:`evaluate` is :meth:`scores`, then :meth:`pick_errors`, the student's greedy answers to
    the picked items, and :meth:`report`; the native vector env runs those phases itself, with the
    scores and answers of every sub-env computed in batched calls."""

    def __init__(
        self,
        suite: TaskSuite,
        examples: Sequence[Example],
        n_errors: int = 8,
        reference: np.ndarray | None = None,
        want_loss: bool = False,
        weights: np.ndarray | None = None,
    ) -> None:
        from distillgym.tasks.arrays import ExampleArrays

        self.suite = suite
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        self.examples: Sequence[Example] = examples if isinstance(examples, ExampleArrays) else list(examples)
        self.n_errors = n_errors
        self.want_loss = bool(want_loss)
        S, D = len(suite.skills), suite.n_difficulties
        if isinstance(examples, ExampleArrays):
            index = np.array([suite.skill_index(s) for s in examples.skills], dtype=np.int64)
            self._cell = index[examples.skill] * D + examples.difficulty if len(examples) else np.zeros(0, np.int64)
        else:
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
            verify = getattr(suite, "verify_arrays", None)
            if isinstance(examples, ExampleArrays) and suite.exact_match and callable(verify):
                ref_ok = np.asarray(verify(examples), dtype=float)
            else:
                ref_ok = np.array([suite.score(self._solve(e), e.answer) for e in self.examples])
            skill_of = self._cell // D
            self.reference = np.bincount(skill_of, weights=ref_ok, minlength=S) / np.maximum(
                np.bincount(skill_of, minlength=S), 1
            )

    @property
    def max_new_tokens(self) -> int:
        """Tokens a greedy answer may take (the suite's longest answer and end of sequence)."""
        return self.suite.max_answer_len + 1

    def _solve(self, e: Example) -> str:
        try:
            return self.suite.solve(e.prompt)
        except NotImplementedError:
            return e.answer

    def _per_cell(self, values: np.ndarray) -> np.ndarray:
        S, D = len(self.suite.skills), self.suite.n_difficulties
        total = np.bincount(self._cell, weights=values.astype(float), minlength=S * D).reshape(S, D)
        return total / np.maximum(self.counts, 1)

    def prompts(self, index: Sequence[int] | None = None) -> list[str]:
        """The prompts of the items ``index`` (all by default)."""
        from distillgym.tasks.arrays import ExampleArrays

        if isinstance(self.examples, ExampleArrays):
            every = self.examples.prompts()
            return list(every) if index is None else [every[int(i)] for i in index]
        items = self.examples if index is None else [self.examples[int(i)] for i in index]
        return [e.prompt for e in items]

    def fast(self, student: Any) -> bool:
        """Whether ``student`` is scored teacher-forced (exact match and a student that offers it)."""
        return bool(self.suite.exact_match and getattr(student, "teacher_forced_exact", False))

    def score_answers(self, answers: Sequence[str]) -> np.ndarray:
        """Per item, the suite's score of a greedy answer."""
        return np.array([self.suite.score(a, e.answer) for a, e in zip(answers, self.examples, strict=True)])

    def _scores(self, student: Any) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
        """Per item: score in [0, 1], answer loss (or None), and the greedy answers if generated."""
        if self.fast(student):
            if self.want_loss and hasattr(student, "score_and_loss"):
                correct, loss = student.score_and_loss(self.examples)
                return np.asarray(correct, dtype=float), np.asarray(loss, dtype=float), None
            correct = np.asarray(student.score(self.examples), dtype=float)
            loss = np.asarray(student.answer_loss(self.examples), dtype=float) if self.want_loss else None
            return correct, loss, None
        answers = student.predict(self.prompts(), max_new_tokens=self.max_new_tokens)
        scores = self.score_answers(answers)
        loss = np.asarray(student.answer_loss(self.examples), dtype=float) if self.want_loss else None
        return scores, loss, answers

    def pick_errors(self, scores: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """The sampled errors: up to ``n_errors`` wrong items (in item order), drawn with ``rng``
        (the first ones without)."""
        wrong = np.flatnonzero(np.asarray(scores) < 1.0)
        if not self.n_errors or not len(wrong):
            return np.zeros(0, np.int64)
        pick = wrong if rng is None else rng.permutation(wrong)
        return np.sort(pick[: self.n_errors])

    def report(self, scores: np.ndarray, loss: np.ndarray | None, pick: np.ndarray, answers: Sequence[str] | None,
               seconds: float = 0.0) -> SkillReport:
        """The :class:`SkillReport` of the items' ``scores`` (and ``loss``), with the picked items'
        greedy ``answers`` as its sampled errors."""
        errors: list[dict[str, Any]] = []
        if len(pick):
            chosen = [self.examples[int(i)] for i in pick]
            errors = [
                {"skill": e.skill, "difficulty": e.difficulty, "prompt": e.prompt, "student": a, "gold": e.answer}
                for e, a in zip(chosen, answers or [], strict=True)
            ]
        return SkillReport(
            skills=tuple(self.suite.skills),
            n_difficulties=self.suite.n_difficulties,
            accuracy=self._per_cell(np.asarray(scores, dtype=float)),
            reference=self.reference.copy(),
            counts=self.counts,
            errors=errors,
            prerequisites=dict(self.suite.prerequisites),
            seconds=seconds,
            loss=None if loss is None else self._per_cell(np.asarray(loss, dtype=float)),
            weights=self.weights,
        )

    def evaluate(self, student: Any, rng: np.random.Generator | None = None) -> SkillReport:
        t0 = time.perf_counter()
        scores, loss, answers = self._scores(student)
        pick = self.pick_errors(scores, rng)
        got: list[str] | None = None
        if len(pick):
            if answers is None:
                got = student.predict(self.prompts(pick), max_new_tokens=self.max_new_tokens)
            else:
                got = [answers[int(i)] for i in pick]
        report = self.report(scores, loss, pick, got)
        report.seconds = time.perf_counter() - t0
        return report
