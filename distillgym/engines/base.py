"""The data-engine contract: a plan becomes verified training examples, with their cost.

A :class:`DataEngine` has

- ``generate(plan, rng, split="train") -> (examples, EngineCost)``: examples for each
  :class:`~distillgym.types.PlanItem` (skill, difficulty, n) in plan order, drawn from ``rng``, from
  the suite's ``split`` part only (``None``: the whole item space, as ``ArithSkills-v0`` does).
  Every example that reaches the caller has been checked; what failed is dropped and counted
  in ``EngineCost.rejected_by_kind``. An engine may return fewer examples than planned (a
  language model's writing fails), never more.
- ``reference_accuracy(suite) -> array | None``: per skill, how often the engine's own
  examples are right (the "teacher" accuracy P_T(k) a report compares the student with), or
  None when the engine is exact (the evaluator then uses the suite's solver).

Engines are built by name from the registry :data:`distillgym.engines.ENGINES`
(``make_engine("procedural", suite)``); ``register_engine`` adds one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from distillgym.tasks.base import TaskSuite
from distillgym.types import EngineCost, Example, PlanItem

__all__ = ["EngineCost", "DataEngine"]
# EngineCost is defined in distillgym.types (the line checks of distillgym.tasks.checks fill one too)


@runtime_checkable
class DataEngine(Protocol):
    """See the module docstring."""

    name: str
    suite: TaskSuite

    def generate(
        self, plan: Sequence[PlanItem], rng: np.random.Generator, split: str | None = "train"
    ) -> tuple[list[Example], EngineCost]: ...

    def reference_accuracy(self, suite: TaskSuite) -> np.ndarray | None: ...
