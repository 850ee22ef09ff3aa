"""Action levels: how much structure a teacher's action has (DataEnvGym's three settings).

An :class:`ActionLevel` owns the environment's action space and turns an action into a
:class:`Plan` for one step of at most ``n`` examples:

=========  ======================================  ==========================================
level      action space                            plan
=========  ======================================  ==========================================
``cell``   ``MultiDiscrete([n_skills, n_levels])``  all ``n`` examples of one (skill, level)
``mix``    ``Box(-1, 1, (n_skills, n_levels))``     an allocation of the ``n`` examples over
                                                   every cell (see :class:`MixLevel`)
``open``   ``Text`` (one example per line)          the written lines themselves, checked by
                                                   the suite (see :class:`OpenLevel`)
=========  ======================================  ==========================================

``LEVELS`` maps the names to the classes; ``make_level(name, suite, examples_per_step)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from distillgym.errors import InvalidActionError, UnknownNameError, did_you_mean
from distillgym.tasks.base import TaskSuite
from distillgym.types import PlanItem

__all__ = [
    "summarize",
    "Plan",
    "ActionLevel",
    "CellLevel",
    "MixLevel",
    "OpenLevel",
    "LEVELS",
    "make_level",
    "allocate",
    "mix_to_action",
]


@dataclass
class Plan:
    """One step's request: ``items`` for an engine (cell, mix) or written ``lines`` (open)."""

    items: list[PlanItem] = field(default_factory=list)
    lines: list[str] | None = None
    max_lines: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    """What ``info["action"]`` reports about the decoded action."""


class ActionLevel:
    """Base class: ``space`` (a gymnasium space) and ``decode(action, n) -> Plan``."""

    name = "base"

    def __init__(self, suite: TaskSuite, examples_per_step: int) -> None:
        self.suite = suite
        self.examples_per_step = int(examples_per_step)
        self.shape = (len(suite.skills), suite.n_difficulties)
        self.space = self._space()

    def _space(self) -> spaces.Space:
        raise NotImplementedError

    def decode(self, action: Any, n: int) -> Plan:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What ``static_info()`` says about the action (for teachers and LLM prompts)."""
        return {"level": self.name}


class CellLevel(ActionLevel):
    """``[skill index, level]``: every example of the step comes from one cell."""

    name = "cell"

    def _space(self) -> spaces.Space:
        return spaces.MultiDiscrete(list(self.shape))

    def decode(self, action: Any, n: int) -> Plan:
        S, D = self.shape
        try:
            a = np.asarray(action)
            ok = (
                a.shape == (2,)
                and a.dtype != np.bool_
                and (np.issubdtype(a.dtype, np.integer) or (np.issubdtype(a.dtype, np.floating) and bool(np.all(np.mod(a, 1) == 0))))
            )
        except Exception:
            ok = False
        if not ok:
            raise InvalidActionError(
                f"action must be [skill index, difficulty] (two integers, not booleans), got {summarize(action)}; "
                f"skills are {list(self.suite.skills)}, difficulties 0..{D - 1}"
            )
        s, d = int(a[0]), int(a[1])
        if not (0 <= s < S and 0 <= d < D):
            raise InvalidActionError(
                f"action {[s, d]} is out of range: skill index must be in 0..{S - 1} "
                f"({', '.join(f'{i}={k}' for i, k in enumerate(self.suite.skills))}) and difficulty in 0..{D - 1}"
            )
        item = PlanItem(self.suite.skills[s], d, int(n))
        return Plan(items=[item], info={"skill": item.skill, "difficulty": d, "n": int(n)})


def summarize(action: Any, width: int = 60) -> str:
    """A short description of an action for an error message (never the whole of a large one):
    ``str of 10,000,000 characters, 1,000,000 lines: '57+68=125\\n3+4=7\\n...'``,
    ``float64 array of shape (7, 4): [nan, 0.5, ...]``, else a ``repr`` cut to ``width`` characters."""
    if isinstance(action, str):
        head = repr(action[:width])
        lines = action.count("\n") + 1 if action else 0
        return (f"a str of {len(action):,} characters, {lines:,} lines: {head}{'...' if len(action) > width else ''}"
                if len(action) > width else f"the str {head}")
    if isinstance(action, np.ndarray):
        flat = action.ravel()[:6]
        try:
            vals = ", ".join(f"{x:.4g}" if isinstance(x, (float, np.floating)) else repr(x) for x in flat.tolist())
        except (TypeError, ValueError):
            vals = "..."
        more = ", ..." if action.size > len(flat) else ""
        return f"a {action.dtype} array of shape {tuple(action.shape)}: [{vals}{more}]"
    try:
        text = repr(action)
    except Exception:  # noqa: BLE001 - a repr that raises: name the type
        text = f"<{type(action).__name__}>"
    return f"{type(action).__name__} {text[:width]}{'...' if len(text) > width else ''}"


def allocate(weights: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder rounding of ``n * weights / weights.sum()`` to integers summing to ``n``.

    Each cell first gets the floor of its quota; the examples left over go one each to the cells
    with the largest fractional parts, ties broken by the lower flat (skill-major) index. All
    weights zero means the uniform mix."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.sum() <= 0:
        w = np.ones_like(w)
    quota = n * w / w.sum()
    counts = np.floor(quota).astype(np.int64)
    left = int(n - counts.sum())
    if left > 0:
        frac = quota - counts
        order = np.lexsort((np.arange(len(w)), -frac))  # largest fraction first, then lowest index
        counts[order[:left]] += 1
    return counts.reshape(np.shape(weights))


def mix_to_action(p: np.ndarray) -> np.ndarray:
    """The ``mix`` action whose weights are proportional to ``p`` (non-negative, not all zero):
    ``a = 2 p / max(p) - 1``, float32, in [-1, 1]. Every mix is exactly representable."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.max() <= 0:
        raise InvalidActionError(f"a mix must be non-negative, finite and not all zero, got {p!r}")
    return (2.0 * p / p.max() - 1.0).astype(np.float32)


class MixLevel(ActionLevel):
    """A data mix over every cell at once.

    The action ``a`` is a ``(n_skills, n_levels)`` float array in [-1, 1]. Values outside
    [-1, 1] are clipped (as SB3 clips a Gaussian policy's samples); a wrong shape or a NaN or
    infinite entry raises :class:`InvalidActionError`. The weights are linear in the action,
    ``w = (clip(a, -1, 1) + 1) / 2`` (so -1 means "none of this cell" and the mix ``p`` is
    ``w / w.sum()``; all -1 is the uniform mix), and the step's ``n`` examples are allocated
    with largest-remainder rounding (:func:`allocate`), so the counts always sum to ``n``. A
    linear rule rather than a softmax makes every mix, one-hot included, exactly
    representable: :func:`mix_to_action` gives the action of a mix, and the one-hot action of a
    cell trains exactly what the cell level's action of that cell trains."""

    name = "mix"

    def _space(self) -> spaces.Space:
        return spaces.Box(-1.0, 1.0, self.shape, np.float32)

    def decode(self, action: Any, n: int) -> Plan:
        try:
            a = np.asarray(action)
            numeric = a.dtype != np.bool_ and (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer))
        except Exception:
            a, numeric = None, False
        if a is None or not numeric or a.shape != self.shape:
            got = f"an array of shape {a.shape} and dtype {a.dtype}" if a is not None else repr(action)
            raise InvalidActionError(
                f"a mix action must be a float array of shape {self.shape} (skills x difficulties) with values in "
                f"[-1, 1], got {got}; build one from mix weights with distillgym.levels.mix_to_action(p)"
            )
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            bad = int(np.sum(~np.isfinite(a)))
            raise InvalidActionError(f"a mix action must be finite, got {bad} NaN or infinite entr"
                                     f"{'y' if bad == 1 else 'ies'} in {summarize(action)}")
        w = (np.clip(a, -1.0, 1.0) + 1.0) / 2.0
        counts = allocate(w, int(n))
        items = [
            PlanItem(self.suite.skills[s], d, int(counts[s, d]))
            for s in range(self.shape[0])
            for d in range(self.shape[1])
            if counts[s, d] > 0
        ]
        total = w.sum()
        mix = w / total if total > 0 else np.full(self.shape, 1.0 / w.size)
        info: dict[str, Any] = {"allocation": counts.tolist(), "mix": mix.round(6).tolist(), "n": int(n)}
        if len(items) == 1:  # a one-hot step names its cell, as the cell level does
            info["skill"], info["difficulty"] = items[0].skill, items[0].difficulty
        return Plan(items=items, info=info)

    def describe(self) -> dict[str, Any]:
        return {"level": self.name, "action_shape": list(self.shape), "rule": "w = (clip(a, -1, 1) + 1) / 2"}


class OpenLevel(ActionLevel):
    """Examples written by the teacher, one per line (DataEnvGym's open-ended setting).

    The action is a string (``Text`` space, charset = the suite's alphabet plus newline,
    ``max_length`` = ``examples_per_step`` lines of ``max_line_len + 1`` characters). Each line is
    ``prompt + answer`` in the suite's own format (arithmetic: ``57+68=125``) and is checked by
    :func:`distillgym.tasks.checks.check_lines`: malformed, wrong, duplicate, over-long, off-grid and
    leaking (validation or test part) lines are dropped, counted by kind in
    ``info["action"]["rejected"]``, and never reach the student. **Charge**: every non-empty line
    among the first ``n`` (the step's limit: ``examples_per_step``, or what is left of the budget)
    costs one example of budget, accepted or not; empty lines are free; lines after the first
    ``n`` are not read, not charged, and counted as ``over_limit``. Any ``str`` is accepted (a
    character outside the charset makes its line malformed); anything else raises
    :class:`InvalidActionError`."""

    name = "open"

    def _space(self) -> spaces.Space:
        charset = "".join(dict.fromkeys(self.suite.alphabet + "\n"))
        return spaces.Text(
            max_length=self.examples_per_step * (self.suite.max_line_len + 1), min_length=0, charset=charset
        )

    def decode(self, action: Any, n: int) -> Plan:
        if not isinstance(action, str):
            raise InvalidActionError(
                f"an open-ended action is a string with one example per line (e.g. '57+68=125\\n3+4=7'), "
                f"got {summarize(action)}"
            )
        limit = self.space.max_length
        if len(action) > limit:
            raise InvalidActionError(
                f"an open-ended action is at most {limit:,} characters (the Text space: {self.examples_per_step} lines "
                f"of at most {self.suite.max_line_len} characters and a newline), got {summarize(action)}; send at "
                "most examples_per_step lines (lines beyond the step's limit are not read anyway)"
            )
        return Plan(lines=action.split("\n"), max_lines=int(n), info={"n": int(n)})

    def describe(self) -> dict[str, Any]:
        return {
            "level": self.name,
            "line_format": "one example per line, prompt then answer (e.g. 57+68=125)",
            "max_lines": self.examples_per_step,
            "max_line_len": self.suite.max_line_len,
            "charset": self.suite.alphabet,
        }


LEVELS: dict[str, type[ActionLevel]] = {"cell": CellLevel, "mix": MixLevel, "open": OpenLevel}


def make_level(name: str, suite: TaskSuite, examples_per_step: int) -> ActionLevel:
    if name not in LEVELS:
        raise UnknownNameError(f"unknown action level {name!r}: {did_you_mean(str(name), LEVELS)}")
    return LEVELS[name](suite, examples_per_step)
