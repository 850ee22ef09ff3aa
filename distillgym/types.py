"""Plain data records passed between the parts of a teaching step."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Example", "PlanItem"]


@dataclass(frozen=True)
class Example:
    """One training or evaluation item.

    ``answer`` is the canonical gold answer (for numbers, written most-significant digit
    first); a student may encode it differently for training (see ``StudentConfig``).
    """

    prompt: str
    answer: str
    skill: str
    difficulty: int
    source: str = "procedural"
    verified: bool = True


@dataclass(frozen=True)
class PlanItem:
    """Ask the data engine for ``n`` examples of ``skill`` at ``difficulty``."""

    skill: str
    difficulty: int
    n: int
