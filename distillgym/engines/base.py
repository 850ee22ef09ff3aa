"""The data-engine contract: a plan becomes verified training examples, with their cost.

A :class:`DataEngine` has

- ``generate(plan, rng, split="train") -> (examples, EngineCost)``: examples for each
  :class:`~distillgym.types.PlanItem` (skill, level, n) in plan order, drawn from ``rng``, from
  the suite's ``split`` part only (``None``: the whole item space, as ``ArithSkills-v0`` does).
  Every example that reaches the caller has been checked; what failed is dropped and counted
  in ``EngineCost.rejected_by_kind``. An engine may return fewer examples than planned (a
  language model's writing fails), never more.
- ``reference_accuracy(suite) -> array | None``: per skill, how often the engine's own
  examples are right (the "teacher" accuracy P_T(k) a report compares the student with), or
  None when the engine is exact (the evaluator then uses the suite's solver).

Engines are built by name from :data:`ENGINES` (``make_engine("procedural", suite)``);
``register_engine`` adds one. The procedural engine is in :mod:`distillgym.engines.procedural`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from distillgym.registry import build
from distillgym.tasks.base import TaskSuite
from distillgym.types import Example, PlanItem

__all__ = ["EngineCost", "DataEngine", "ENGINES", "register_engine", "make_engine"]


@dataclass
class EngineCost:
    """What one call of an engine cost and produced.

    ``examples``: verified examples returned; ``rejected``: candidates dropped, in all;
    ``rejected_by_kind``: the same by reason (``malformed``, ``wrong``, ``duplicate``,
    ``overlong``, ``off_grid``, ``leak_val``, ``leak_test``, ...); ``tokens``: characters of the
    returned examples' prompts and answers (the procedural engine's only "tokens");
    ``tokens_in`` / ``tokens_out``: model tokens read and written (LLM engines); ``calls``:
    model calls (generations); ``seconds``: wall time."""

    examples: int = 0
    rejected: int = 0
    rejected_by_kind: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    calls: int = 0
    seconds: float = 0.0

    @property
    def llm_calls(self) -> int:  # the v0 name
        return self.calls

    def reject(self, kind: str, n: int = 1) -> None:
        self.rejected += n
        self.rejected_by_kind[kind] = self.rejected_by_kind.get(kind, 0) + n

    def add(self, other: EngineCost) -> None:
        for k in ("examples", "rejected", "tokens", "tokens_in", "tokens_out", "calls", "seconds"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k, v in other.rejected_by_kind.items():
            self.rejected_by_kind[k] = self.rejected_by_kind.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class DataEngine(Protocol):
    """See the module docstring."""

    name: str
    suite: TaskSuite

    def generate(
        self, plan: Sequence[PlanItem], rng: np.random.Generator, split: str | None = "train"
    ) -> tuple[list[Example], EngineCost]: ...

    def reference_accuracy(self, suite: TaskSuite) -> np.ndarray | None: ...


ENGINES: dict[str, Callable[..., DataEngine] | str] = {
    "procedural": "distillgym.engines.procedural:ProceduralEngine",
    "vectorized": "distillgym.engines.vectorized:VectorizedEngine",
    "llm": "distillgym.engines.llm_engine:LLMEngine",
}


def register_engine(name: str, factory: Callable[..., DataEngine] | str) -> None:
    """Add an engine: a class or callable ``factory(suite, **kwargs)``, or ``"module:Class"``."""
    ENGINES[name] = factory


def make_engine(spec: str | DataEngine, suite: TaskSuite, **kwargs: Any) -> DataEngine:
    """An engine by registered name (``factory(suite, **kwargs)``) or an engine object as is."""
    return build(ENGINES, spec, "data engine", "generate", suite, **kwargs)
