"""The vectorised procedural engine: the procedural engine's contract, with array generation
and array verification, for one request or many at once.

It needs a suite with ``generate_many(requests, split)`` and ``verify_arrays(examples)``
(``arith-v2``, :mod:`distillgym.tasks.arith_v2`). ``generate`` returns
:class:`~distillgym.tasks.arrays.ExampleArrays` (a ``Sequence[Example]``, so callers written
for example lists work unchanged, and array-aware students train on it without building one
``Example`` object per item). Every example is checked by recomputing its answer from the
prompt with the suite's vectorised solver; a failure is dropped and counted as ``wrong`` (it
never happens for a correct suite; a test checks it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from distillgym.errors import ConfigError
from distillgym.tasks.arrays import ExampleArrays
from distillgym.tasks.base import TaskSuite
from distillgym.types import EngineCost, PlanItem

__all__ = ["VectorizedEngine"]


class VectorizedEngine:
    """Procedural examples as arrays (see the module docstring). ``verify``: recompute every
    answer with the suite's vectorised solver (default True)."""

    name = "vectorized"

    def __init__(self, suite: TaskSuite, verify: bool = True) -> None:
        missing = [m for m in ("generate_many", "verify_arrays") if not callable(getattr(suite, m, None))]
        if missing:
            raise ConfigError(
                f"the vectorized engine needs a suite with {' and '.join(missing)}(); suite {suite.name!r} has "
                "none; use a vectorised suite such as 'arith-v2' or the 'procedural' engine"
            )
        self.suite = suite
        self.verify = bool(verify)

    def generate(
        self, plan: Sequence[PlanItem], rng: np.random.Generator, split: str | None = "train"
    ) -> tuple[ExampleArrays, EngineCost]:
        return self.generate_many([(plan, rng)], split=split)[0]

    def generate_many(
        self, requests: Sequence[tuple[Sequence[PlanItem], np.random.Generator]], split: str | None = "train"
    ) -> list[tuple[ExampleArrays, EngineCost]]:
        """:meth:`generate` for each ``(plan, rng)``, computed together; each result is what that
        request alone would give. Each cost's ``seconds`` is an equal share of the call's time."""
        t0 = time.perf_counter()
        # the suite checks each item's n (its error names the item)
        batches = self.suite.generate_many(  # type: ignore[attr-defined]
            [(rng, [(it.skill, it.difficulty, it.n) for it in plan]) for plan, rng in requests], split=split
        )
        ok = None
        if self.verify and sum(len(b) for b in batches):  # one vectorised check for every request
            ok = self.suite.verify_arrays(ExampleArrays.concat(batches, self.suite.skills))  # type: ignore[attr-defined]
        out = []
        start = 0
        for examples in batches:
            cost = EngineCost()
            if ok is not None:
                mine = ok[start : start + len(examples)]
                start += len(examples)
                if not mine.all():
                    cost.reject("wrong", int((~mine).sum()))
                    examples = examples.take(mine)
            cost.examples = len(examples)
            cost.tokens = int(examples.prompt_len.sum() + examples.answer_len.sum())
            out.append((examples, cost))
        share = (time.perf_counter() - t0) / max(len(requests), 1)
        for _, cost in out:
            cost.seconds = share
        return out

    def reference_accuracy(self, suite: TaskSuite) -> np.ndarray | None:
        """None: the engine is exact, so the reference is the suite's solver."""
        return None
