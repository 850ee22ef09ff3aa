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
``source-  ``Box(-1, 1, (n_skills, n_levels,         an allocation of the step's budget units
mix``      n_sources))``                           over cells x data sources, each source at
                                                   its own cost (see :class:`SourceMixLevel`)
=========  ======================================  ==========================================

``LEVELS`` maps the names to the classes; ``make_level(name, suite, examples_per_step, **kwargs)``
(the source-mix level takes ``sources`` and ``costs``, which the env reads from its data engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from distillgym.errors import ConfigError, InvalidActionError, UnknownNameError, check_int, did_you_mean
from distillgym.tasks.base import TaskSuite
from distillgym.types import PlanItem

__all__ = [
    "summarize",
    "Plan",
    "ActionLevel",
    "CellLevel",
    "MixLevel",
    "OpenLevel",
    "SourceMixLevel",
    "LEVELS",
    "make_level",
    "allocate",
    "units_to_examples",
    "mix_to_action",
]


@dataclass
class Plan:
    """One step's request: ``items`` for an engine (cell, mix) or written ``lines`` (open)."""

    items: list[PlanItem] = field(default_factory=list)
    lines: list[str] | None = None
    max_lines: int = 0
    """The open level's limit: lines (or budget units, with ``line_costs``) the step may charge."""
    info: dict[str, Any] = field(default_factory=dict)
    """What ``info["action"]`` reports about the decoded action."""
    charge: int | None = None
    """Budget the step charges (None: the examples planned, ``sum(item.n)``; the source-mix level: its units)."""
    line_costs: dict[str, int] | None = None
    """The open level's budget units per line by kind (``verified``, ``unverified``); None: one per line."""
    unverified_prefix: str | None = None
    """The open level's mark of an unverified line (None: every line is verified)."""


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


def units_to_examples(units: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Examples bought with ``units`` (..., K) budget units per (cell, source) at ``costs`` (K,) units
    per example: ``floor(units / cost)`` each, then each source's leftover units (every cell's
    ``units mod cost``) are pooled and every whole example the pool buys goes to one of that
    source's cells, the largest leftover first (ties: the lower flat index). Returns the examples
    (same shape) and the units per source left unused (each below that source's cost)."""
    units = np.asarray(units, dtype=np.int64)
    c = np.asarray(costs, dtype=np.int64)
    ex = units // c
    rest = units - ex * c
    K = units.shape[-1]
    flat_ex, flat_rest = ex.reshape(-1, K), rest.reshape(-1, K)
    unused = np.zeros(K, np.int64)
    for k in range(K):
        pool = int(flat_rest[:, k].sum())
        extra = pool // int(c[k])
        if extra:
            order = np.lexsort((np.arange(len(flat_rest)), -flat_rest[:, k]))
            flat_ex[order[:extra], k] += 1
        unused[k] = pool - extra * int(c[k])
    return flat_ex.reshape(units.shape), unused


RANGE_TOLERANCE = 1e-6
"""How far outside [-1, 1] a source-mix action entry may lie (float rounding) before it is refused."""


def _mix_weights(action: Any, shape: tuple[int, ...], what: str, axes: str, strict: bool = False) -> np.ndarray:
    """``(clip(a, -1, 1) + 1) / 2`` of a numeric action of ``shape``; :class:`InvalidActionError` for a
    wrong shape or type, or NaN or infinite entries, and (``strict``) entries outside [-1, 1] by more
    than :data:`RANGE_TOLERANCE`."""
    try:
        a = np.asarray(action)
        numeric = a.dtype != np.bool_ and (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer))
    except Exception:
        a, numeric = None, False
    if a is None or not numeric or a.shape != shape:
        got = f"an array of shape {a.shape} and dtype {a.dtype}" if a is not None else repr(action)
        raise InvalidActionError(
            f"{what} must be a float array of shape {shape} ({axes}) with values in [-1, 1], got {got}; "
            f"build one from mix weights with distillgym.levels.mix_to_action(p)"
        )
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        bad = int(np.sum(~np.isfinite(a)))
        raise InvalidActionError(f"{what} must be finite, got {bad} NaN or infinite entr"
                                 f"{'y' if bad == 1 else 'ies'} in {summarize(action)}")
    if strict and np.any(np.abs(a) > 1.0 + RANGE_TOLERANCE):
        where = tuple(int(i) for i in np.argwhere(np.abs(a) > 1.0 + RANGE_TOLERANCE)[0])
        raise InvalidActionError(
            f"{what} must lie in [-1, 1], got {a[where]!r} at index {where} ({axes}); clip it "
            f"(np.clip(a, -1, 1)) or build it from weights with distillgym.levels.mix_to_action(p)"
        )
    return (np.clip(a, -1.0, 1.0) + 1.0) / 2.0


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
        w = _mix_weights(action, self.shape, "a mix action", "skills x difficulties")
        counts = allocate(w, int(n))
        skills = self.suite.skills
        s_idx, d_idx = np.nonzero(counts > 0)  # skill-major, as the cells are listed
        items = [PlanItem(skills[s], d, c)
                 for s, d, c in zip(s_idx.tolist(), d_idx.tolist(), counts[s_idx, d_idx].tolist(), strict=True)]
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
    :class:`InvalidActionError`.

    **Verified and unverified lines** (``line_costs={"verified": cv, "unverified": cu}``, e.g.
    ``ArithSourcesOpen-v1``): the budget counts units; a line is charged ``cv`` units and checked as
    above, or, written with the ``unverified_prefix`` (default ``"~"``: ``~57+68=125``), charged ``cu``
    units and *not* checked for its answer: it reaches the student as written (format, grid, leak and
    duplicate checks still apply; ``info["action"]["unverified_wrong"]`` counts the wrong answers that
    went through, ``info["costs"]["by_source"]`` both kinds). Lines are read in order while their
    cost fits in the step's ``n`` units; the first that does not fit and every line after it are
    ``over_limit`` (not charged). The charset then includes the prefix, and ``max_length`` allows
    ``n / min(cost)`` lines."""

    name = "open"

    def __init__(self, suite: TaskSuite, examples_per_step: int, line_costs: dict[str, int] | None = None,
                 unverified_prefix: str = "~") -> None:
        self.line_costs: dict[str, int] | None = None
        self.unverified_prefix: str | None = None
        if line_costs is not None:
            if not isinstance(line_costs, dict) or set(line_costs) != {"verified", "unverified"}:
                raise ConfigError(f"line_costs must be a dict with the keys 'verified' and 'unverified' (budget units "
                                  f"per line), got {line_costs!r}")
            self.line_costs = {k: check_int("open level", f"line_costs[{k!r}]", v, 1) for k, v in line_costs.items()}
            if not isinstance(unverified_prefix, str) or len(unverified_prefix) != 1 or \
                    unverified_prefix in suite.alphabet + "\n":
                raise ConfigError(f"unverified_prefix must be one character outside the suite's alphabet "
                                  f"{suite.alphabet!r}, got {unverified_prefix!r}")
            self.unverified_prefix = unverified_prefix
            self.sources = ("verified", "unverified")
            """The two kinds of line, as the observation's ``source_spent`` orders them."""
        super().__init__(suite, examples_per_step)

    def _max_lines(self) -> int:
        """Most lines a step can read: ``examples_per_step``, or its units over the cheapest line."""
        if self.line_costs is None:
            return self.examples_per_step
        return -(-self.examples_per_step // min(self.line_costs.values()))

    def _space(self) -> spaces.Space:
        charset = "".join(dict.fromkeys(self.suite.alphabet + "\n" + (self.unverified_prefix or "")))
        width = self.suite.max_line_len + 1 + (self.line_costs is not None)  # the prefix
        return spaces.Text(max_length=self._max_lines() * width, min_length=0, charset=charset)

    def decode(self, action: Any, n: int) -> Plan:
        if not isinstance(action, str):
            raise InvalidActionError(
                f"an open-ended action is a string with one example per line (e.g. '57+68=125\\n3+4=7'), "
                f"got {summarize(action)}"
            )
        limit = self.space.max_length
        if len(action) > limit:
            raise InvalidActionError(
                f"an open-ended action is at most {limit:,} characters (the Text space: {self._max_lines()} lines "
                f"of at most {self.suite.max_line_len} characters and a newline), got {summarize(action)}; send at "
                "most that many lines (lines beyond the step's limit are not read anyway)"
            )
        return Plan(lines=action.split("\n"), max_lines=int(n), info={"n": int(n)}, line_costs=self.line_costs,
                    unverified_prefix=self.unverified_prefix)

    def describe(self) -> dict[str, Any]:
        out = {
            "level": self.name,
            "line_format": "one example per line, prompt then answer (e.g. 57+68=125)",
            "max_lines": self.examples_per_step,
            "max_line_len": self.suite.max_line_len,
            "charset": self.suite.alphabet,
        }
        if self.line_costs is not None:
            out.update(line_costs=dict(self.line_costs), unverified_prefix=self.unverified_prefix,
                       max_lines=self.examples_per_step // self.line_costs["verified"],
                       max_units=self.examples_per_step,
                       unverified="a line written with the prefix is charged line_costs['unverified'] units and reaches "
                                  "the student unchecked")
        return out


class SourceMixLevel(ActionLevel):
    """A data mix over every cell and every data source at once: the budget counts units, and each
    source sells examples at its own cost in units (the ``sources`` engine,
    :mod:`distillgym.engines.sources`).

    The action ``a`` is an ``(n_skills, n_difficulties, n_sources)`` float array in [-1, 1] (sources
    in the engine's order, ``info["action"]["sources"]``). A wrong shape, a NaN or infinite entry, or
    an entry outside [-1, 1] (by more than :data:`RANGE_TOLERANCE`; unlike the mix level, which clips
    them) raises :class:`InvalidActionError`; the weights are ``w = (a + 1) / 2`` (all -1: the
    uniform mix over cells x sources). A step's ``n`` budget units (``examples_per_step`` units, or
    what is left of the budget) are allocated over the (cell, source) pairs by the largest-remainder
    rule (:func:`allocate`), so they sum to ``n``; then each pair gets ``floor(units / cost)``
    examples of its cell from its source. **Remainders**: each source's leftover units (``units mod
    cost`` of its cells) are pooled, and each whole example the pool buys goes to that source's cell
    with the largest leftover (:func:`units_to_examples`); what is still left (fewer units than the
    source's cost, so at most ``cost - 1`` per source and step) is charged unused and reported
    (``info["action"]["unused_units"]``). The step charges all ``n`` units, so an episode ends
    exactly when its budget is spent, after ``ceil(budget / examples_per_step)`` steps.

    ``info["action"]``: ``units`` (n_skills, n_difficulties, n_sources) budget units,
    ``allocation`` examples per (cell, source), ``mix`` the normalised weights, ``units_by_source``,
    ``examples_by_source`` and ``unused_units`` (per source), ``n`` the step's units. A one-hot action
    on one (cell, source) trains that cell from that source only; a cell mix extended with equal
    source shares is what :class:`distillgym.teachers.adapters.MixToSourceMix` plays for a mix
    teacher."""

    name = "source-mix"

    def __init__(self, suite: TaskSuite, examples_per_step: int, sources: Any = ("verified",),
                 costs: Any = (1,)) -> None:
        if isinstance(sources, str) or not len(sources):
            raise ConfigError(f"the source-mix level needs a non-empty list of sources, got {sources!r}")
        if len(costs) != len(sources):
            raise ConfigError(f"the source-mix level needs one cost per source ({list(sources)}), got {costs!r}")
        self.sources = tuple(str(s) for s in sources)
        self.costs = np.array([check_int("source-mix level", f"cost of {s!r}", c, 1)
                               for s, c in zip(self.sources, costs, strict=True)], np.int64)
        super().__init__(suite, examples_per_step)
        self.cell_shape = (len(suite.skills), suite.n_difficulties)
        self.shape = (*self.cell_shape, len(self.sources))

    def _space(self) -> spaces.Space:
        return spaces.Box(-1.0, 1.0, (len(self.suite.skills), self.suite.n_difficulties, len(self.sources)),
                          np.float32)

    def decode(self, action: Any, n: int) -> Plan:
        w = _mix_weights(action, self.shape, "a source-mix action", "skills x difficulties x sources " +
                         str(list(self.sources)), strict=True)
        units = allocate(w, int(n))
        examples, unused = units_to_examples(units, self.costs)
        items = [
            PlanItem(self.suite.skills[s], d, int(examples[s, d, k]), self.sources[k])
            for s in range(self.shape[0])
            for d in range(self.shape[1])
            for k in range(self.shape[2])
            if examples[s, d, k] > 0
        ]
        total = w.sum()
        mix = w / total if total > 0 else np.full(self.shape, 1.0 / w.size)
        info: dict[str, Any] = {
            "units": units.tolist(),
            "allocation": examples.tolist(),
            "mix": mix.round(6).tolist(),
            "units_by_source": dict(zip(self.sources, units.sum((0, 1)).tolist(), strict=True)),
            "examples_by_source": dict(zip(self.sources, examples.sum((0, 1)).tolist(), strict=True)),
            "unused_units": dict(zip(self.sources, unused.tolist(), strict=True)),
            "n": int(n),
        }
        cells = {(it.skill, it.difficulty) for it in items}
        if len(cells) == 1:  # one cell trained: named as the cell level names it
            info["skill"], info["difficulty"] = next(iter(cells))
        return Plan(items=items, info=info, charge=int(n))

    def describe(self) -> dict[str, Any]:
        return {"level": self.name, "action_shape": list(self.shape), "sources": list(self.sources),
                "costs": dict(zip(self.sources, self.costs.tolist(), strict=True)),
                "rule": "w = (clip(a, -1, 1) + 1) / 2 over cells x sources; units by largest remainder; "
                        "examples = units // cost (leftovers pooled per source)"}


LEVELS: dict[str, type[ActionLevel]] = {"cell": CellLevel, "mix": MixLevel, "open": OpenLevel,
                                        "source-mix": SourceMixLevel}


def make_level(name: str, suite: TaskSuite, examples_per_step: int, **kwargs: Any) -> ActionLevel:
    """The action level ``name`` for ``suite``; ``kwargs`` go to its class (source-mix: ``sources``, ``costs``;
    open: ``line_costs``, ``unverified_prefix``)."""
    if name not in LEVELS:
        raise UnknownNameError(f"unknown action level {name!r}: {did_you_mean(str(name), LEVELS)}")
    return LEVELS[name](suite, examples_per_step, **kwargs)
