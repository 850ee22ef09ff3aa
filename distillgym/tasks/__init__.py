"""Task suites: skills, difficulty levels, prerequisites, generators and checkers."""

from __future__ import annotations

from distillgym.errors import UnknownNameError, did_you_mean
from distillgym.tasks.arithmetic import ArithmeticSuite
from distillgym.tasks.base import TaskSuite

__all__ = ["TaskSuite", "ArithmeticSuite", "SUITES", "make_suite"]

SUITES: dict[str, type[TaskSuite]] = {"arith": ArithmeticSuite}


def make_suite(name: str) -> TaskSuite:
    try:
        suite = SUITES[name]()
    except KeyError:
        raise UnknownNameError(f"unknown task suite {name!r}: {did_you_mean(name, SUITES)}") from None
    suite.validate()
    return suite
