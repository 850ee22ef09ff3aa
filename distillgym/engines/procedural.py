"""The procedural data engine: exact, free, and verified item by item."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from distillgym.errors import ConfigError
from distillgym.tasks.base import TaskSuite
from distillgym.types import EngineCost, Example, PlanItem

__all__ = ["EngineCost", "ProceduralEngine"]


class ProceduralEngine:
    """Turns a plan ``[(skill, difficulty, n), ...]`` into examples from the task suite's own
    generators, from the ``split`` part of the item space. Each example is verified by
    re-solving its prompt with the suite's independent solver and scoring the gold answer with
    the suite's checker; an example that fails is dropped and counted as ``wrong`` in
    ``EngineCost.rejected_by_kind`` (it never happens for a correct suite, and a test checks
    that)."""

    name = "procedural"

    def __init__(self, suite: TaskSuite, verify: bool = True) -> None:
        self.suite = suite
        self.verify = bool(verify)

    def generate(
        self, plan: Sequence[PlanItem], rng: np.random.Generator, split: str | None = "train"
    ) -> tuple[list[Example], EngineCost]:
        t0 = time.perf_counter()
        cost = EngineCost()
        out: list[Example] = []
        for item in plan:
            if isinstance(item.n, bool) or not isinstance(item.n, (int, np.integer)) or item.n < 0:
                raise ConfigError(f"plan item {item} asks for n={item.n!r}; n must be an integer >= 0")
            for ex in self.suite.generate(item.skill, item.difficulty, rng, int(item.n), split=split):
                if self.verify and not self._check(ex):
                    cost.reject("wrong")
                    continue
                out.append(ex)
        cost.examples = len(out)
        cost.tokens = sum(len(e.prompt) + len(e.answer) for e in out)
        cost.seconds = time.perf_counter() - t0
        return out, cost

    def reference_accuracy(self, suite: TaskSuite) -> np.ndarray | None:
        """None: the engine is exact, so the reference is the suite's solver."""
        return None

    def _check(self, ex: Example) -> bool:
        try:
            solved = self.suite.solve(ex.prompt)
        except NotImplementedError:
            solved = ex.answer
        return solved == ex.answer and self.suite.score(ex.answer, ex.answer) == 1.0
