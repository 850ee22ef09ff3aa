"""The student contract, its records, and the student registry.

A :class:`Student` is a real torch language model that an environment trains and evaluates:

- ``train(examples, rng) -> TrainStats``: gradient steps on ``examples`` (shuffled and, for
  students with replay, mixed with earlier data, all from ``rng``). Raises
  :class:`~distillgym.errors.TrainingDivergedError` on a non-finite loss or gradient, saying how
  many optimiser steps of this call were applied before it (``TrainingDivergedError.applied``).
- ``predict(prompts, max_new_tokens) -> list[str]``: greedy answers, decoded back to the suite's
  canonical form.
- ``answer_loss(examples) -> array``: per example, the mean token cross-entropy of the gold
  answer (and end of sequence) given the prompt: the validation loss data-mixing methods read.
- ``score(examples) -> bool array`` (optional fast path): exact match of the greedy answer,
  computed teacher-forced in one pass. A student offers it by setting
  ``teacher_forced_exact = True``, which promises that it equals greedy decoding followed by
  exact match (a test checks it); the evaluator uses it only for suites whose ``exact_match``
  is True, and otherwise generates answers with ``predict`` and scores them with the suite's
  own rule. ``score_and_loss`` may return both from one pass.
- ``snapshot()`` / ``restore(snapshot)``: a full in-memory copy of the trainable state (weights,
  optimiser, schedule step, replay buffer), restored exactly; environments reset with it and
  look-ahead teachers branch with it.
- ``reinit(seed)``: fresh initial weights drawn from ``seed`` alone (the v1 environments draw
  them from the episode seed), and a fresh optimiser.
- ``costs()``: ``n_params``, ``trainable_params`` and ``flops_per_token`` (training FLOPs per
  token, nanoGPT's 6N + 12LHT estimate).

Students are built by name from the registry :data:`distillgym.students.STUDENTS` with
``make_student(name, suite, **kwargs)`` (``factory(suite, **kwargs)``); ``register_student`` adds one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from distillgym.types import Example

__all__ = ["Student", "TrainStats", "diverged_message"]


@dataclass
class TrainStats:
    """What one ``train`` call did."""

    examples: int = 0
    tokens: int = 0
    """Tokens fed through the model (prompt, answer and end of sequence; replayed rows included)."""
    optimizer_steps: int = 0
    loss: float = float("nan")
    """Mean over the call's optimiser steps of the mini-batch loss."""
    seconds: float = 0.0
    flops: float = 0.0
    """Training FLOPs (forward and backward), from ``costs()["flops_per_token"]``."""
    cell_loss: dict[tuple[str, int], float] = field(default_factory=dict)
    """Mean answer cross-entropy of the call's new examples, per (skill, difficulty), measured on
    the mini-batch each was trained in (before its optimiser step)."""
    extra: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Student(Protocol):
    """See the module docstring."""

    name: str
    teacher_forced_exact: bool

    def train(self, examples: Sequence[Example], rng: np.random.Generator) -> TrainStats: ...

    def predict(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]: ...

    def answer_loss(self, examples: Sequence[Example]) -> np.ndarray: ...

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None: ...

    def reinit(self, seed: int) -> None: ...

    def costs(self) -> dict[str, Any]: ...


def diverged_message(what: str, step: int, applied: int, changed: str = "weights",
                     hint: str = "Lower StudentConfig.lr, enable grad_clip, or check the examples for malformed text.") -> str:
    """The message of a :class:`~distillgym.errors.TrainingDivergedError` raised before optimiser step
    ``step``: ``what`` happened (``"training loss became nan"``), that step was not applied, and
    ``applied`` earlier steps of the call had (or had not) changed the student's ``changed``."""
    done = (
        f"no optimiser step of this call had been taken, so the {changed} {'is' if changed == 'adapter' else 'are'} "
        "unchanged"
        if applied == 0
        else f"{applied} earlier optimiser step(s) of this call had already changed the {changed}"
    )
    return f"{what} at optimiser step {step}; that step was not applied and {done}. {hint}"
