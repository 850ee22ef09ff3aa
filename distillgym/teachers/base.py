"""The ``Teacher`` protocol and a small base class (the registry is in :mod:`distillgym.teachers`)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Teacher", "BaseTeacher", "BackendOwner"]


@runtime_checkable
class Teacher(Protocol):
    """A policy that picks the student's next training data.

    ``reset`` is called after ``env.reset`` with the env's action space and reset ``info``
    (which names the skills, their prerequisites and the number of difficulty levels);
    ``act`` returns an action of that space; ``update`` sees each transition's outcome.
    """

    name: str

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None: ...

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray: ...

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None: ...


class BaseTeacher:
    """Stores the skill list and grid shape at reset; ``update`` does nothing.

    Cells are numbered flat in skill-major order (``self.cells``); ``cell_action`` turns such an
    index into an action and remembers it, and ``trained_cell`` recovers the cell the env just
    trained. ``last_decision`` is where a teacher explains its latest choice (emptied at reset)."""

    name = "base"
    levels: tuple[str, ...] = ("cell",)
    """Action levels the teacher acts at; see :mod:`distillgym.teachers.adapters` for the others."""

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        self.action_space = action_space
        self.skills: list[str] = list(info["skills"])
        self.prerequisites: dict[str, list[str]] = {k: list(v) for k, v in info.get("prerequisites", {}).items()}
        self.n_difficulties = int(info["n_difficulties"])
        self.rng = np.random.default_rng(seed)
        self.last_decision: dict[str, Any] = {}
        self._last: int | None = None

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        return None

    @property
    def cells(self) -> list[tuple[int, int]]:
        return [(s, d) for s in range(len(self.skills)) for d in range(self.n_difficulties)]

    def cell_action(self, i: int) -> np.ndarray:
        """The action ``[skill, difficulty]`` for flat cell ``i``, remembered for ``trained_cell``."""
        self._last = int(i)
        return np.array([i // self.n_difficulties, i % self.n_difficulties])

    def trained_cell(self, info: dict[str, Any]) -> int | None:
        """The flat index of the cell just trained: from ``info["action"]`` when present (it is
        what the env really did), else the teacher's own last choice (None before any)."""
        a = info.get("action") if isinstance(info, dict) else None
        if isinstance(a, dict) and a.get("skill") in self.skills:
            return self.skills.index(a["skill"]) * self.n_difficulties + int(a["difficulty"])
        return self._last


class BackendOwner:
    """The LLM teachers' backend ownership: ``backend`` given as a name is built on first use by
    the subclass's ``backend`` property and closed by :meth:`close`; a backend object passed in
    is the caller's and is never closed here."""

    def _init_backend(self, backend: Any) -> None:
        self._backend: Any = None if isinstance(backend, str) else backend
        self._owns_backend = isinstance(backend, str)

    def close(self) -> None:
        """Close the backend if this teacher built it (a shared model stays loaded)."""
        if self._owns_backend and self._backend is not None:
            self._backend.close()
            self._backend = None
