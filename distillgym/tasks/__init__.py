"""Task suites: skills, difficulty levels, prerequisites, split-aware generators and checkers.

``make_suite(name)`` builds a registered suite (``SUITES``); ``register_suite(name, factory)``
adds one (a class or any callable returning a :class:`TaskSuite`; a string
``"package.module:Class"`` is imported on first use, so optional suites cost nothing until used).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distillgym.errors import ConfigError
from distillgym.registry import Registry
from distillgym.tasks.arith_v2 import ArithmeticSuiteV2
from distillgym.tasks.arithmetic import ArithmeticSuite, ArithmeticSuiteV1
from distillgym.tasks.base import MIN_PARTITION_ITEMS, SPLITS, TaskSuite, content_fraction

__all__ = [
    "TaskSuite",
    "ArithmeticSuite",
    "ArithmeticSuiteV1",
    "ArithmeticSuiteV2",
    "SUITES",
    "SPLITS",
    "MIN_PARTITION_ITEMS",
    "content_fraction",
    "make_suite",
    "register_suite",
]

SUITES = Registry("task suite", {
    "arith": ArithmeticSuite,
    "arith-v1": ArithmeticSuiteV1,
    "arith-v2": ArithmeticSuiteV2,
    "reasoning-gym": "distillgym.tasks.reasoning_gym:ReasoningGymSuite",
})


def register_suite(name: str, factory: Callable[..., TaskSuite] | str) -> None:
    """Add a suite: a class or callable ``factory(**kwargs)``, or ``"module:Class"``."""
    SUITES.register(name, factory)


def make_suite(name: str | TaskSuite, **kwargs: Any) -> TaskSuite:
    """A suite by registered name (``kwargs`` go to its constructor), or a suite object as is."""
    suite = name if isinstance(name, TaskSuite) else SUITES.build(name, "generate", **kwargs)
    if isinstance(name, TaskSuite) and kwargs:
        raise ConfigError("suite_kwargs are for a suite given by name, not for a suite object")
    suite.validate()
    return suite
