"""Data engines: turn a plan [(skill, difficulty, n)] into verified training examples.

The contract is in :mod:`distillgym.engines.base`. Built in: ``procedural``
(:mod:`~distillgym.engines.procedural`: the suite's own generator, every example checked),
``vectorized`` (:mod:`~distillgym.engines.vectorized`: the same as arrays), ``llm``
(:mod:`~distillgym.engines.llm_engine`: a language model writes the examples, the suite checks them)
and ``sources`` (:mod:`~distillgym.engines.sources`: verified, buggy and noisy sources at different
costs; unverified answers reach the student).
``make_engine(name, suite, **kwargs)`` builds one by name; ``register_engine`` adds one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distillgym.engines.base import DataEngine, EngineCost
from distillgym.engines.procedural import ProceduralEngine
from distillgym.registry import Registry
from distillgym.tasks.base import TaskSuite

__all__ = ["ENGINES", "DataEngine", "EngineCost", "ProceduralEngine", "make_engine", "register_engine"]

ENGINES = Registry("data engine", {
    "procedural": "distillgym.engines.procedural:ProceduralEngine",
    "vectorized": "distillgym.engines.vectorized:VectorizedEngine",
    "llm": "distillgym.engines.llm_engine:LLMEngine",
    "sources": "distillgym.engines.sources:SourcesEngine",
})


def register_engine(name: str, factory: Callable[..., DataEngine] | str) -> None:
    """Add an engine: a class or callable ``factory(suite, **kwargs)``, or ``"module:Class"``."""
    ENGINES.register(name, factory)


def make_engine(spec: str | DataEngine, suite: TaskSuite, **kwargs: Any) -> DataEngine:
    """An engine by registered name (``factory(suite, **kwargs)``) or an engine object as is."""
    return ENGINES.build(spec, "generate", suite, **kwargs)
