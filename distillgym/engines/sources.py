"""The ``sources`` engine: training data bought from sources of different quality and cost.

A data-generation agent rarely has one perfect generator. This engine offers several *sources* per
cell, each with a price in budget units per example (``costs``) and its own answers:

- ``verified``: the suite's own answer, checked by recomputing it from the prompt (as the
  ``vectorized`` engine does): like a language model whose every answer passes a checker; default
  cost 4 units.
- ``buggy``: the answer of a systematic bug per skill (addition without carry, subtraction without
  borrow, ..., see :mod:`distillgym.tasks.arith_bugs` for each bug and its measured firing rate per
  cell); right exactly on the items the bug does not touch; default cost 1.
- ``noisy``: the suite's answer made wrong with probability ``noise`` (one digit or the comparison
  sign changed); default cost 1.

**Unverified answers reach the student.** Buggy and noisy examples are not checked: a wrong one
is trained on as it is, and counted (``EngineCost.by_source[source]["wrong"]``, which the env
reports per step in ``info["costs"]["by_source"]``). Verified examples are checked; one that
failed would be dropped and counted as ``rejected_by_kind["wrong"]`` (it never happens for a
correct suite).

**A plan** is a list of :class:`~distillgym.types.PlanItem` whose ``source`` names the source
(None: the first of ``sources``). The prompts of every item are drawn from the suite's ``split``
part with the vectorised generator (``suite.generate_many``), in plan order and from the request's
own generator, exactly as the ``vectorized`` engine draws them; then, for the noisy items, three
uniforms per example are drawn from the same generator in plan order (whether it is made wrong, the
position, the new digit or sign). So a request gets the same examples whatever other requests are
served with it (:meth:`SourcesEngine.generate_many`, used by the native vector env).

Arguments: ``sources`` (names among :data:`SOURCE_KINDS`, in the action's order), ``costs`` (units
per example, one positive integer per source, or a dict by name), ``noise`` (the noisy source's
wrong rate, in [0, 1]), ``verify`` (check the verified source's answers; default True). The
source-mix action level (:class:`distillgym.levels.SourceMixLevel`) reads ``sources`` and
``costs`` from the engine.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_int, check_number, did_you_mean
from distillgym.tasks.arrays import ExampleArrays
from distillgym.tasks.base import TaskSuite
from distillgym.types import EngineCost, PlanItem

__all__ = ["SourcesEngine", "SOURCE_KINDS", "DEFAULT_COSTS"]

SOURCE_KINDS = ("verified", "buggy", "noisy")
"""The answer functions a source may have."""

DEFAULT_COSTS = {"verified": 4, "buggy": 1, "noisy": 1}
"""Budget units per example when ``costs`` is not given."""


class SourcesEngine:
    """Examples from several sources of different quality and cost (see the module docstring)."""

    name = "sources"

    def __init__(self, suite: TaskSuite, sources: Sequence[str] = SOURCE_KINDS,
                 costs: Sequence[int] | Mapping[str, int] | None = None, noise: float = 0.5,
                 verify: bool = True) -> None:
        need = ["generate_many", "verify_arrays", "buggy_arrays", "noisy_arrays"]
        missing = [m for m in need if not callable(getattr(suite, m, None))]
        if missing:
            raise ConfigError(
                f"the sources engine needs a vectorised suite with {', '.join(missing)}(); suite {suite.name!r} has "
                "none; use 'arith-v2'"
            )
        if isinstance(sources, str) or not isinstance(sources, Sequence) or not len(sources):
            raise ConfigError(f"sources must be a non-empty list of names among {list(SOURCE_KINDS)}, got {sources!r}")
        for src in sources:
            if src not in SOURCE_KINDS:
                raise ConfigError(f"unknown source {src!r}: {did_you_mean(str(src), SOURCE_KINDS)}")
        if len(set(sources)) != len(sources):
            raise ConfigError(f"sources must be distinct, got {list(sources)}")
        self.suite = suite
        self.sources = tuple(str(s) for s in sources)
        if costs is None:
            costs = [DEFAULT_COSTS[s] for s in self.sources]
        elif isinstance(costs, Mapping):
            unknown = sorted(set(costs) - set(self.sources))
            if unknown:
                raise ConfigError(f"costs name source(s) {unknown} that are not among sources {list(self.sources)}")
            costs = [costs.get(s, DEFAULT_COSTS[s]) for s in self.sources]
        costs = list(costs)
        if len(costs) != len(self.sources):
            raise ConfigError(f"costs must give one cost per source ({list(self.sources)}), got {costs!r}")
        self.costs = tuple(check_int("sources engine", f"cost of {s!r}", c, 1) for s, c in zip(self.sources, costs,
                                                                                              strict=True))
        self.noise = check_number("sources engine", "noise", noise, 0, 1)
        self.verify = bool(verify)

    def describe(self) -> dict[str, Any]:
        """The sources, their costs and the noise rate (for ``static_info`` and teachers)."""
        return {"sources": list(self.sources), "costs": dict(zip(self.sources, self.costs, strict=True)),
                "noise": self.noise}

    # ------------------------------------------------------------------ generation
    def generate(self, plan: Sequence[PlanItem], rng: np.random.Generator,
                 split: str | None = "train") -> tuple[ExampleArrays, EngineCost]:
        return self.generate_many([(plan, rng)], split=split)[0]

    def generate_many(self, requests: Sequence[tuple[Sequence[PlanItem], np.random.Generator]],
                      split: str | None = "train") -> list[tuple[ExampleArrays, EngineCost]]:
        """:meth:`generate` for each ``(plan, rng)``, the prompts drawn together; each result is what
        that request alone would give. Each cost's ``seconds`` is an equal share of the call's time."""
        t0 = time.perf_counter()
        for plan, _ in requests:
            for item in plan:
                if isinstance(item.n, bool) or not isinstance(item.n, (int, np.integer)) or item.n < 0:
                    raise ConfigError(f"plan item {item} asks for n={item.n!r}; n must be an integer >= 0")
                if item.source is not None and item.source not in self.sources:
                    raise ConfigError(f"plan item {item} names source {item.source!r}, which this engine does not "
                                      f"offer: {did_you_mean(str(item.source), self.sources)}")
        batches = self.suite.generate_many(  # type: ignore[attr-defined]
            [(rng, [(it.skill, it.difficulty, int(it.n)) for it in plan]) for plan, rng in requests], split=split
        )
        out = [self._answer(list(plan), rng, examples) for (plan, rng), examples in zip(requests, batches, strict=True)]
        share = (time.perf_counter() - t0) / max(len(requests), 1)
        for _, cost in out:
            cost.seconds = share
        return out

    def _answer(self, plan: list[PlanItem], rng: np.random.Generator,
                examples: ExampleArrays) -> tuple[ExampleArrays, EngineCost]:
        """Give each item's rows its source's answers; count wrong ones per source."""
        cost = EngineCost()
        n = len(examples)
        src = np.empty(n, dtype=object)
        start = 0
        for it in plan:  # the generator returns every item's n rows, in plan order
            src[start : start + it.n] = it.source or self.sources[0]
            start += int(it.n)
        if start != n:
            raise ConfigError(f"the suite returned {n} examples for a plan of {start}")
        gold = examples
        answered = examples
        wrong = np.zeros(n, bool)
        rows = np.flatnonzero(src == "buggy")
        if len(rows):
            bug = self.suite.buggy_arrays(gold.take(rows))  # type: ignore[attr-defined]
            answered = _replace(answered, rows, bug)
            wrong[rows] = _differ(bug, gold.take(rows))
        rows = np.flatnonzero(src == "noisy")
        if len(rows):
            uniforms = rng.random((len(rows), 3))
            noisy, _ = self.suite.noisy_arrays(gold.take(rows), uniforms, self.noise)  # type: ignore[attr-defined]
            answered = _replace(answered, rows, noisy)
            wrong[rows] = _differ(noisy, gold.take(rows))
        keep = np.ones(n, bool)
        rows = np.flatnonzero(src == "verified")
        if self.verify and len(rows):
            ok = self.suite.verify_arrays(gold.take(rows))  # type: ignore[attr-defined]
            if not ok.all():
                keep[rows[~ok]] = False
                cost.reject("wrong", int((~ok).sum()))
        for s in self.sources:
            mine = (src == s) & keep
            if mine.any() or s in {it.source or self.sources[0] for it in plan}:
                cost.by_source[s] = {"examples": int(mine.sum()), "wrong": int((wrong & mine).sum())}
        if not keep.all():
            answered = answered.take(keep)
        kinds = {it.source or self.sources[0] for it in plan if it.n}
        answered.source = kinds.pop() if len(kinds) == 1 else "mixed"
        cost.examples = len(answered)
        cost.tokens = int(answered.prompt_len.sum() + answered.answer_len.sum())
        return answered, cost

    def reference_accuracy(self, suite: TaskSuite) -> np.ndarray | None:
        """None: the reference is the suite's solver (the verified source's answers)."""
        return None


def _differ(a: ExampleArrays, b: ExampleArrays) -> np.ndarray:
    """Per row, whether two answer sets differ."""
    width = max(a.answer.shape[1], b.answer.shape[1])
    pa = np.pad(a.answer, ((0, 0), (0, width - a.answer.shape[1])))
    pb = np.pad(b.answer, ((0, 0), (0, width - b.answer.shape[1])))
    return (a.answer_len != b.answer_len) | (pa != pb).any(1)


def _replace(examples: ExampleArrays, rows: np.ndarray, new: ExampleArrays) -> ExampleArrays:
    return examples.with_answers(new.answer, new.answer_len, rows)
