"""Task suites: skills, difficulty levels, prerequisites, split-aware generators and checkers.

``make_suite(name)`` builds a registered suite (``SUITES``); ``register_suite(name, factory)``
adds one (a class or any callable returning a :class:`TaskSuite`; a string
``"package.module:Class"`` is imported on first use, so optional suites cost nothing until used).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from distillgym.errors import ConfigError, UnknownNameError, did_you_mean
from distillgym.tasks.arithmetic import ArithmeticSuite, ArithmeticSuiteV1
from distillgym.tasks.base import MIN_PARTITION_ITEMS, SPLITS, TaskSuite, content_fraction

__all__ = [
    "TaskSuite",
    "ArithmeticSuite",
    "ArithmeticSuiteV1",
    "SUITES",
    "SPLITS",
    "MIN_PARTITION_ITEMS",
    "content_fraction",
    "make_suite",
    "register_suite",
]

SUITES: dict[str, Callable[..., TaskSuite] | str] = {
    "arith": ArithmeticSuite,
    "arith-v1": ArithmeticSuiteV1,
}


def register_suite(name: str, factory: Callable[..., TaskSuite] | str) -> None:
    SUITES[name] = factory


register_suite("reasoning-gym", "distillgym.tasks.reasoning_gym:ReasoningGymSuite")


def _factory(name: str) -> Callable[..., TaskSuite]:
    f = SUITES[name]
    if isinstance(f, str):
        module, _, attr = f.partition(":")
        f = getattr(importlib.import_module(module), attr)
        SUITES[name] = f
    return f


def make_suite(name: str | TaskSuite, **kwargs: Any) -> TaskSuite:
    """A suite by registered name (``kwargs`` go to its constructor), or a suite object as is."""
    if isinstance(name, TaskSuite):
        if kwargs:
            raise ConfigError("suite_kwargs are for a suite given by name, not for a suite object")
        suite = name
    else:
        if name not in SUITES:
            raise UnknownNameError(f"unknown task suite {name!r}: {did_you_mean(str(name), SUITES)}")
        try:
            suite = _factory(name)(**kwargs)
        except TypeError as err:
            raise ConfigError(f"bad arguments {kwargs!r} for task suite {name!r}: {err}") from None
    suite.validate()
    return suite
