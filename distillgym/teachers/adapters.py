"""Adapters that let a teacher of one action level play an environment of another.

Every built-in teacher declares the levels it acts at (``levels``, e.g. ``("cell",)``).
:func:`adapt_teacher` wraps it for an environment of another level, documented here:

- **cell teacher on a mix env** (:class:`CellToMix`): the teacher's choice of a cell becomes
  the one-hot mix of that cell (``mix_to_action``), which trains exactly the step a cell env
  would (same allocation, same examples). The teacher sees a ``MultiDiscrete`` action space and
  ``info["action"]`` with the skill and difficulty of a one-hot step, as in a cell env.
- **cell or mix teacher on an open env** (:class:`PlanToText`): the teacher's cell or mix is
  turned into an allocation of the step's lines (as the mix level allocates examples) and each
  line is written with the suite's own generator, from the *train* part only, distinct within
  the step (a cell's train part may hold fewer distinct items than its share of lines; then
  fewer lines are written, and charged), with the adapter's own seeded generator: the same
  teacher with a perfect, honest writer. So
  ``stratified`` on ``ArithOpen-v1`` is the equal mix written out as text. On an open level with
  line costs (``ArithSourcesOpen-v1``) it writes verified lines, as many as the step's units buy.
- **mix or cell teacher on a source-mix env** (:class:`MixToSourceMix`): the teacher's cell mix ``p``
  (a cell teacher's one-hot mix, through :class:`CellToMix`) is extended with fixed source shares
  ``q`` (default: equal shares of the budget units per source), the action of the weights
  ``p[s, d] * q[k]``. So ``stratified`` on ``ArithSources-v1`` is the equal mix over cells x sources:
  each source gets a third of every cell's units (a quarter as many verified examples as buggy ones
  at costs 4, 1, 1). The teacher sees a ``Box`` over cells and ``info["action"]`` with ``allocation``
  and ``mix`` summed over the sources.

A teacher without ``levels`` (a user's ``package.module:Class``) is used as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from distillgym.errors import ConfigError
from distillgym.levels import allocate, mix_to_action

__all__ = ["adapt_teacher", "CellToMix", "PlanToText", "MixToSourceMix"]


def _cell_info(info: dict[str, Any], skills: list[str]) -> dict[str, Any]:
    """``info`` with ``info["action"]`` given ``skill``/``difficulty`` when the step trained one cell."""
    a = info.get("action") if isinstance(info, dict) else None
    if not isinstance(a, dict) or "skill" in a:
        return info
    alloc = a.get("allocation")
    if alloc is None:
        return info
    m = np.asarray(alloc)
    nz = np.argwhere(m > 0)
    if len(nz) != 1:
        return info
    s, d = (int(x) for x in nz[0])
    return {**info, "action": {**a, "skill": skills[s], "difficulty": d}}


class _Wrapper:
    levels: tuple[str, ...] = ()

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)

    @property
    def stats(self) -> Any:
        return getattr(self.inner, "stats", None)

    @property
    def last_decision(self) -> Any:
        return getattr(self.inner, "last_decision", None)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


class CellToMix(_Wrapper):
    """A cell teacher playing a mix env (see the module docstring)."""

    levels = ("mix",)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        self.skills = list(info["skills"])
        self.shape = (len(self.skills), int(info["n_difficulties"]))
        self.inner.reset(spaces.MultiDiscrete(list(self.shape)), {**info, "level": "cell"}, seed=seed)

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        s, d = (int(x) for x in np.asarray(self.inner.act(observation, _cell_info(info, self.skills))))
        onehot = np.zeros(self.shape)
        onehot[s, d] = 1.0
        return mix_to_action(onehot)

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.inner.update(observation, reward, terminated, truncated, _cell_info(info, self.skills))


class PlanToText(_Wrapper):
    """A cell or mix teacher playing an open env (see the module docstring)."""

    levels = ("open",)

    def __init__(self, inner: Any, inner_level: str) -> None:
        super().__init__(inner)
        self.inner_level = inner_level

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        from distillgym.seeding import rng_for
        from distillgym.tasks import make_suite

        self.suite = make_suite(info["suite"])
        self.skills = list(info["skills"])
        self.shape = (len(self.skills), int(info["n_difficulties"]))
        self.examples_per_step = int(info["examples_per_step"])
        self.line_cost = int((info.get("action", {}).get("line_costs") or {}).get("verified", 1))
        self.rng = rng_for(0 if seed is None else int(seed), 77)
        space: spaces.Space = (
            spaces.MultiDiscrete(list(self.shape)) if self.inner_level == "cell" else spaces.Box(-1, 1, self.shape, np.float32)
        )
        self.inner.reset(space, {**info, "level": self.inner_level}, seed=seed)

    def act(self, observation: Any, info: dict[str, Any]) -> str:
        a = np.asarray(self.inner.act(observation, _cell_info(info, self.skills)))
        if self.inner_level == "cell":
            w = np.zeros(self.shape)
            w[int(a[0]), int(a[1])] = 1.0
        else:
            w = (np.clip(a.astype(float), -1, 1) + 1) / 2
        n = min(self.examples_per_step, int(info.get("budget_left", self.examples_per_step))) // self.line_cost
        counts = allocate(w, n)
        lines = []
        for s, skill in enumerate(self.skills):
            for d in range(self.shape[1]):
                if counts[s, d]:
                    items = self.suite.generate(skill, d, self.rng, int(counts[s, d]), split="train", distinct=True)
                    lines += [self.suite.format_line(e) for e in {e.prompt: e for e in items}.values()]
        return "\n".join(lines)

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.inner.update(observation, reward, terminated, truncated, info)


class MixToSourceMix(_Wrapper):
    """A mix teacher (or a cell teacher through :class:`CellToMix`) playing a source-mix env (see
    the module docstring). ``shares``: the source shares of every cell's units (default equal)."""

    levels = ("source-mix",)

    def __init__(self, inner: Any, shares: Any = None) -> None:
        super().__init__(inner)
        self.shares = None if shares is None else np.asarray(shares, dtype=float)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        S, D, K = (int(x) for x in action_space.shape)
        q = np.ones(K) if self.shares is None else self.shares
        if q.shape != (K,) or not np.all(np.isfinite(q)) or np.any(q < 0) or q.sum() <= 0:
            raise ConfigError(f"source shares must be {K} non-negative numbers, not all zero, got {self.shares!r}")
        self.q = q / q.sum()
        self.skills = list(info["skills"])
        mix_info = {**info, "level": "mix",
                    "action": {"level": "mix", "action_shape": [S, D], "rule": "w = (clip(a, -1, 1) + 1) / 2"}}
        self.inner.reset(spaces.Box(-1.0, 1.0, (S, D), np.float32), mix_info, seed=seed)

    @staticmethod
    def _cells(info: dict[str, Any]) -> dict[str, Any]:
        """``info`` with the step's ``allocation`` and ``mix`` summed over the sources."""
        a = info.get("action") if isinstance(info, dict) else None
        if not isinstance(a, dict) or "allocation" not in a or np.ndim(a["allocation"]) != 3:
            return info
        cell = {**a, "allocation": np.asarray(a["allocation"]).sum(2).tolist(),
                "mix": np.asarray(a["mix"]).sum(2).round(6).tolist()}
        return {**info, "action": cell}

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        a = np.asarray(self.inner.act(observation, self._cells(info)), dtype=float)
        w = (np.clip(a, -1.0, 1.0) + 1.0) / 2.0
        if w.sum() <= 0:
            w = np.ones_like(w)  # all -1 is the uniform mix at the mix level
        return mix_to_action(w[:, :, None] * self.q[None, None, :])

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.inner.update(observation, reward, terminated, truncated, self._cells(info))


def adapt_teacher(teacher: Any, level: str) -> Any:
    """``teacher`` itself if it acts at ``level`` (or declares no levels), else the adapter
    that lets it play that level; :class:`ConfigError` if there is none."""
    levels = getattr(teacher, "levels", None)
    if not levels or level in levels:
        return teacher
    if level == "mix" and "cell" in levels:
        return CellToMix(teacher)
    if level == "open" and ("mix" in levels or "cell" in levels):
        return PlanToText(teacher, "mix" if "mix" in levels else "cell")
    if level == "source-mix" and "mix" in levels:
        return MixToSourceMix(teacher)
    if level == "source-mix" and "cell" in levels:
        return MixToSourceMix(CellToMix(teacher))
    raise ConfigError(
        f"teacher {getattr(teacher, 'name', teacher)!r} acts at level(s) {list(levels)} and has no adapter to the "
        f"{level!r} level; use an environment of level {levels[0]!r}"
    )
