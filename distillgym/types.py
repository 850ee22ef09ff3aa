"""Plain data records passed between the parts of a teaching step."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Example", "PlanItem", "EngineCost"]


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
    """Ask the data engine for ``n`` examples of ``skill`` at ``difficulty``; ``source`` names the
    data source for an engine with several (the ``sources`` engine; None: the engine's default),
    and is None in every plan of the cell and mix levels, so their plans are as before."""

    skill: str
    difficulty: int
    n: int
    source: str | None = None


@dataclass
class EngineCost:
    """What one call of an engine cost and produced.

    ``examples``: verified examples returned; ``rejected``: candidates dropped, in all;
    ``rejected_by_kind``: the same by reason (``malformed``, ``wrong``, ``duplicate``,
    ``overlong``, ``off_grid``, ``leak_val``, ``leak_test``, ...); ``tokens``: characters of the
    returned examples' prompts and answers (the procedural engine's only "tokens");
    ``tokens_in`` / ``tokens_out``: model tokens read and written (LLM engines); ``calls``:
    model calls (generations); ``seconds``: wall time; ``by_source``: for an engine with several
    data sources, per source the examples it returned and how many of them have a wrong answer
    (unverified sources' answers reach the student: that is the point of them)."""

    examples: int = 0
    rejected: int = 0
    rejected_by_kind: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    calls: int = 0
    seconds: float = 0.0
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)

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
        for src, counts in other.by_source.items():
            mine = self.by_source.setdefault(src, {})
            for k, v in counts.items():
                mine[k] = mine.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
