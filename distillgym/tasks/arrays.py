"""Examples as arrays: many prompts and answers held as padded code-point matrices.

Vectorised data paths (the ``arith-v2`` generator, the plain and population students) pass
examples around as :class:`ExampleArrays` instead of one :class:`~distillgym.types.Example`
object each. Texts are stored as ``(n, L)`` ``uint32`` matrices of Unicode code points (``uint8``
for the ASCII text of a vectorised generator), left aligned and padded with 0 (no suite's alphabet
contains ``"\\x00"``), with their lengths;
numpy converts between such a matrix and a list of strings in one call (a ``<U{L}`` view), so
no per-example Python code runs until an ``Example`` is asked for.

:class:`ExampleArrays` is a ``Sequence[Example]``: code written for example lists (engines'
callers, evaluators, reports) works with it unchanged, and the ``Example`` objects are built
only when indexed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

from distillgym.errors import ConfigError
from distillgym.types import Example

__all__ = ["ExampleArrays", "texts_to_codes", "codes_to_texts", "concat_fields"]


def texts_to_codes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(n, L)`` ``uint32`` code points of ``texts`` (0 after each text's end, ``L`` at least 1)
    and their ``(n,)`` ``int64`` lengths, from one numpy conversion."""
    n = len(texts)
    if n == 0:
        return np.zeros((0, 1), np.uint32), np.zeros(0, np.int64)
    arr = np.asarray(texts, dtype=str)
    if arr.ndim != 1:
        raise ConfigError(f"expected a flat sequence of strings, got an array of shape {arr.shape}")
    width = max(arr.dtype.itemsize // 4, 1)
    codes = np.ascontiguousarray(arr).view(np.uint32).reshape(n, width)
    lengths = np.char.str_len(arr).astype(np.int64)
    return codes, lengths


def codes_to_texts(codes: np.ndarray) -> list[str]:
    """The strings of a code-point matrix (trailing zeros dropped), from one numpy view."""
    codes = np.ascontiguousarray(codes, dtype=np.uint32)
    if codes.ndim != 2:
        raise ConfigError(f"expected an (n, L) code matrix, got shape {codes.shape}")
    n, width = codes.shape
    if n == 0:
        return []
    if width == 0:
        return [""] * n
    return codes.view(f"<U{width}").reshape(n).tolist()


def concat_fields(fields: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate text fields row by row: each field is ``(codes (n, Lf), lengths (n,))`` with
    zeros after each row's length; the result is left aligned, ``(n, max total length)`` (the
    fields' common dtype), with the total lengths.

    Fields are written left to right, whole columns at a time: a field's zero padding lands
    where the next fields go and is overwritten by them, so no per-row masking is needed."""
    dtype = np.result_type(*[codes.dtype for codes, _ in fields]) if fields else np.uint32
    offset = np.zeros(n, np.int64)
    reach = 1
    for codes, lens in fields:
        reach = max(reach, int((offset + codes.shape[1]).max(initial=0)))
        offset = offset + lens
    out = np.zeros((n, reach), dtype)
    flat = out.reshape(-1)
    base = np.arange(n, dtype=np.int64) * reach
    offset = np.zeros(n, np.int64)
    for codes, lens in fields:
        for j in range(codes.shape[1]):
            flat[base + offset + j] = codes[:, j]
        offset = offset + lens
    return out[:, : max(int(offset.max(initial=0)), 1)], offset


def _code_dtype(codes: np.ndarray) -> type:
    """``uint8`` for a ``uint8`` matrix (ASCII text from a vectorised generator: a quarter of the
    memory), else ``uint32``."""
    return np.uint8 if np.asarray(codes).dtype == np.uint8 else np.uint32


class ExampleArrays(Sequence[Example]):
    """``n`` examples as arrays (see the module docstring).

    - ``prompt``: ``(n, Lp)`` ``uint32`` code points (``uint8`` when built from a ``uint8`` matrix, as the
      vectorised generators do for ASCII text); ``prompt_len``: ``(n,)`` lengths;
    - ``answer``: ``(n, La)`` code points of the canonical gold answer (``uint32`` or ``uint8`` alike); ``answer_len``;
    - ``skill``: ``(n,)`` index into ``skills``; ``difficulty``: ``(n,)`` level;
    - ``skills``: the skill names; ``source``: the ``Example.source`` of every item.
    """

    def __init__(
        self,
        prompt: np.ndarray,
        prompt_len: np.ndarray,
        answer: np.ndarray,
        answer_len: np.ndarray,
        skill: np.ndarray,
        difficulty: np.ndarray,
        skills: Sequence[str],
        source: str = "procedural",
    ) -> None:
        n = len(prompt_len)
        arrays = dict(prompt=prompt, answer=answer, answer_len=answer_len, skill=skill, difficulty=difficulty)
        for name, a in arrays.items():
            if len(a) != n:
                raise ConfigError(f"ExampleArrays.{name} has {len(a)} rows, prompt_len has {n}")
        self.prompt = np.ascontiguousarray(prompt, dtype=_code_dtype(prompt))
        self.prompt_len = np.asarray(prompt_len, dtype=np.int64)
        self.answer = np.ascontiguousarray(answer, dtype=_code_dtype(answer))
        if self.prompt.ndim != 2 or self.answer.ndim != 2:
            raise ConfigError(f"ExampleArrays needs (n, L) code matrices, got {self.prompt.shape} and {self.answer.shape}")
        self.answer_len = np.asarray(answer_len, dtype=np.int64)
        self.skill = np.asarray(skill, dtype=np.int64)
        self.difficulty = np.asarray(difficulty, dtype=np.int64)
        self.skills = tuple(skills)
        self.source = source
        self._prompts: list[str] | None = None
        self._answers: list[str] | None = None
        self._view_of: tuple[ExampleArrays, int] | None = None  # (parent, first row) of a slice of another set

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_examples(cls, examples: Sequence[Example], skills: Sequence[str]) -> ExampleArrays:
        """Arrays of ``examples`` (whose skills must be among ``skills``)."""
        if isinstance(examples, ExampleArrays):
            return examples
        index = {s: i for i, s in enumerate(skills)}
        try:
            skill = np.array([index[e.skill] for e in examples], dtype=np.int64)
        except KeyError as err:
            raise ConfigError(f"example skill {err.args[0]!r} is not one of {list(skills)}") from None
        prompt, prompt_len = texts_to_codes([e.prompt for e in examples])
        answer, answer_len = texts_to_codes([e.answer for e in examples])
        difficulty = np.array([e.difficulty for e in examples], dtype=np.int64)
        sources = {e.source for e in examples}
        out = cls(prompt, prompt_len, answer, answer_len, skill, difficulty, skills,
                  sources.pop() if len(sources) == 1 else "mixed")
        return out

    @classmethod
    def empty(cls, skills: Sequence[str]) -> ExampleArrays:
        z = np.zeros(0, np.int64)
        return cls(np.zeros((0, 1), np.uint32), z, np.zeros((0, 1), np.uint32), z, z, z, skills)

    @classmethod
    def concat(cls, parts: Sequence[ExampleArrays], skills: Sequence[str]) -> ExampleArrays:
        """One array set holding ``parts`` in order (all over the same ``skills``)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(skills)
        for p in parts:
            if p.skills != tuple(skills):
                raise ConfigError(f"cannot concatenate ExampleArrays over skills {p.skills} and {tuple(skills)}")
        joined = cls._rejoined(parts)
        if joined is not None:
            return joined

        def pad(mats: list[np.ndarray]) -> np.ndarray:
            width = max(m.shape[1] for m in mats)
            if all(m.shape[1] == width for m in mats):
                return np.concatenate(mats)
            out = np.zeros((sum(len(m) for m in mats), width), np.result_type(*[m.dtype for m in mats]))
            start = 0
            for m in mats:
                out[start : start + len(m), : m.shape[1]] = m
                start += len(m)
            return out

        sources = {p.source for p in parts}
        return cls(
            pad([p.prompt for p in parts]),
            np.concatenate([p.prompt_len for p in parts]),
            pad([p.answer for p in parts]),
            np.concatenate([p.answer_len for p in parts]),
            np.concatenate([p.skill for p in parts]),
            np.concatenate([p.difficulty for p in parts]),
            skills,
            sources.pop() if len(sources) == 1 else "mixed",
        )

    @staticmethod
    def _rejoined(parts: Sequence[ExampleArrays]) -> ExampleArrays | None:
        """``concat(parts)`` as a view, when the parts are consecutive slices of one set (as
        :meth:`take` with a slice makes them) with its widths and source; else None."""
        first = parts[0]._view_of
        if first is None:
            return None
        parent, at = first
        fields = ("prompt", "prompt_len", "answer", "answer_len", "skill", "difficulty")
        for p in parts:
            if p._view_of is None or p._view_of[0] is not parent or p._view_of[1] != at or p.source != parent.source:
                return None
            for name in fields:  # still the parent's own memory, at the rows the slice took
                mine, whole = getattr(p, name), getattr(parent, name)
                if (mine.shape[1:] != whole.shape[1:] or mine.dtype != whole.dtype
                        or mine.ctypes.data != whole.ctypes.data + at * whole.strides[0]):
                    return None
            at += len(p)
        return parent.take(slice(first[1], at))

    def take(self, index: Any) -> ExampleArrays:
        """The rows ``index`` (an integer array, a boolean mask or a slice), as arrays. A slice with
        step 1 gives views of these arrays (no copy), which :meth:`concat` joins back without copying."""
        if isinstance(index, slice) and index.step in (None, 1):
            lo, hi, _ = index.indices(len(self))
            hi = max(lo, hi)
            out = ExampleArrays(self.prompt[lo:hi], self.prompt_len[lo:hi], self.answer[lo:hi], self.answer_len[lo:hi],
                                self.skill[lo:hi], self.difficulty[lo:hi], self.skills, self.source)
            parent, at = self._view_of if self._view_of is not None else (self, 0)
            out._view_of = (parent, at + lo)
            return out
        idx = np.arange(len(self))[index]
        return ExampleArrays(self.prompt[idx], self.prompt_len[idx], self.answer[idx], self.answer_len[idx],
                             self.skill[idx], self.difficulty[idx], self.skills, self.source)

    def with_answers(self, answer: np.ndarray, answer_len: np.ndarray, rows: Any = None,
                     source: str | None = None) -> ExampleArrays:
        """A copy whose answers of ``rows`` (default: all; an integer array) are ``answer`` (code
        matrix) with lengths ``answer_len``; prompts, cells and the other answers unchanged."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        answer = np.asarray(answer, dtype=np.uint32)
        if answer.ndim != 2 or len(answer) != len(rows) or len(answer_len) != len(rows):
            raise ConfigError(f"with_answers needs one answer row per replaced row ({len(rows)}), got "
                              f"{answer.shape} and {len(answer_len)} lengths")
        width = max(self.answer.shape[1], answer.shape[1], 1)
        new = np.zeros((len(self), width), np.uint32)
        new[:, : self.answer.shape[1]] = self.answer
        new_len = self.answer_len.copy()
        new[rows] = 0
        new[rows, : answer.shape[1]] = answer
        new_len[rows] = answer_len
        new = new[:, : max(int(new_len.max(initial=1)), 1)]
        return ExampleArrays(self.prompt, self.prompt_len, new, new_len, self.skill, self.difficulty, self.skills,
                             self.source if source is None else source)

    # ------------------------------------------------------------------ texts
    def prompts(self) -> list[str]:
        """Every prompt as a string (built once, then cached)."""
        if self._prompts is None:
            self._prompts = codes_to_texts(self.prompt)
        return self._prompts

    def answers(self) -> list[str]:
        """Every gold answer as a string (built once, then cached)."""
        if self._answers is None:
            self._answers = codes_to_texts(self.answer)
        return self._answers

    # ------------------------------------------------------------------ Sequence[Example]
    def __len__(self) -> int:
        return len(self.prompt_len)

    @overload
    def __getitem__(self, i: int) -> Example: ...

    @overload
    def __getitem__(self, i: slice) -> list[Example]: ...

    def __getitem__(self, i: int | slice) -> Example | list[Example]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        j = int(np.arange(len(self))[i])  # negative indices and bounds as for a list
        return Example(
            prompt=self.prompts()[j],
            answer=self.answers()[j],
            skill=self.skills[int(self.skill[j])],
            difficulty=int(self.difficulty[j]),
            source=self.source,
        )

    def __iter__(self) -> Iterator[Example]:
        for j in range(len(self)):
            yield self[j]

    def __repr__(self) -> str:
        return f"ExampleArrays(n={len(self)}, skills={self.skills})"
