"""``arith-v2``: the ``arith-v1`` cells with a partition hash numpy can compute, and a vectorised
generator that makes items as arrays, for many random streams at once, without one Python call
per item.

**What differs from v1.** The content partition and the generator's use of the random stream.

- *Partition.* v1 maps a prompt to [0, 1) with keyed BLAKE2b
  (:func:`distillgym.tasks.base.content_fraction`), which has no vectorised numpy form; v2
  uses :func:`content_fractions`: a keyed 64-bit FNV-1a over the prompt's Unicode code points
  followed by the SplitMix64 finaliser (full avalanche), computed column by column over a whole
  ``(n, L)`` code matrix at once (:func:`content_fraction_v2` is the same function of one
  string, in Python integers). It is still a fixed function of the prompt text alone, so the
  partition is by content exactly as in v1; the parts are different sets from v1's.
- *Generator.* Levels, shapes, operand ranges, the successor's carry forcing, compare's shared
  prefixes, the chain rule, prompts, answers, solver and checker are v1's, so an item of a cell
  has the same distribution as v1's ``generate_one`` gives (up to the 2**-53 granularity of
  the uniforms); but every item is computed from a fixed number of uniforms
  (``_UNIFORMS``) drawn as one block ``rng.random((m, k))`` per cell request, so the items
  differ from v1's for the same seed. :meth:`ArithmeticSuiteV2.generate` is this vectorised
  generator (returning ``Example`` objects); :meth:`~ArithmeticSuiteV2.generate_arrays`
  returns :class:`~distillgym.tasks.arrays.ExampleArrays`; :meth:`~ArithmeticSuiteV2.generate_many`
  serves many ``(rng, plan)`` requests at once (one per student of a population): the only
  per-request Python work is the block draw, and every request's items are exactly those it
  would get alone.

**Split and distinct.** Items of a part are drawn by rejection in rounds: a request for ``n``
items draws ``max(64, (n + 4 sqrt(n) + 16) / share)`` candidates, keeps those of its part (and, with
``distinct``, those whose prompt it has not kept yet), in draw order, and draws again for
what is missing. With ``distinct``, once three rounds in a row add nothing new, repeats are
accepted in draw order (the vectorised analogue of the scalar rule); without it, three rounds
without a single item of the part raise :class:`~distillgym.errors.ConfigError`.

:meth:`ArithmeticSuiteV2.solve_arrays` recomputes answers from the prompt code points alone
(numbers parsed back from the digits, then the operation): the vectorised verifier of the
vectorised engine (:mod:`distillgym.engines.vectorized`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from distillgym.errors import ConfigError
from distillgym.tasks.arith_bugs import buggy_answers, noisy_answers, numbers_to_codes
from distillgym.tasks.arithmetic import _V1_SHAPES, ArithmeticSuiteV1
from distillgym.tasks.arrays import ExampleArrays, concat_fields
from distillgym.tasks.base import SPLITS
from distillgym.types import Example

__all__ = ["ArithmeticSuiteV2", "content_fraction_v2", "content_fractions"]

_KEY = np.uint64(int.from_bytes(hashlib.blake2b(b"distillgym-partition-v2", digest_size=8).digest(), "big"))
_FNV_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_POW10 = 10 ** np.arange(19, dtype=np.int64)
_ROUND_MIN = 64
"""Fewest candidates drawn for one request in one rejection round."""
_MAX_EMPTY_ROUNDS = 3
"""Rounds in a row that add nothing after which a request gives up (split) or accepts repeats (distinct)."""
_UNIFORMS = {"copy": 2, "successor": 5, "add": 3, "sub": 3, "mul": 3, "compare": 6}
"""Uniforms per item of a numeric skill's cell (chain: ``2 * terms - 1``)."""

_C = {ch: ord(ch) for ch in "0123456789+-*?=<>cs"}


def content_fractions(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per row of a code-point matrix, a fixed number in [0, 1): keyed 64-bit FNV-1a over the
    row's first ``lengths[i]`` code points, then the SplitMix64 finaliser, top 53 bits / 2**53.
    The same on every machine (pure uint64 arithmetic, wrapping)."""
    lengths = np.asarray(lengths)
    columns = np.ascontiguousarray(np.asarray(codes).T)  # one contiguous column per position
    h = np.full(len(lengths), _KEY, dtype=np.uint64)
    step = np.empty_like(h)
    with np.errstate(over="ignore"):
        for j in range(min(columns.shape[0], int(lengths.max(initial=0)))):
            np.bitwise_xor(h, columns[j], out=step, casting="unsafe")
            step *= _FNV_PRIME
            np.copyto(h, step, where=j < lengths)
        h ^= h >> np.uint64(30)
        h *= _MIX1
        h ^= h >> np.uint64(27)
        h *= _MIX2
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


def content_fraction_v2(text: str) -> float:
    """:func:`content_fractions` of one text, in plain Python integers (a test checks that the
    two agree)."""
    mask = 2**64 - 1
    h = int(_KEY)
    for ch in text:
        h = ((h ^ ord(ch)) * int(_FNV_PRIME)) & mask
    h ^= h >> 30
    h = (h * int(_MIX1)) & mask
    h ^= h >> 27
    h = (h * int(_MIX2)) & mask
    h ^= h >> 31
    return (h >> 11) / float(2**53)


# ---------------------------------------------------------------------------- items from uniforms
def _digit_field(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digits of non-negative ``values`` as a left-aligned ``uint8`` code field, and their counts."""
    return numbers_to_codes(values, np.uint8)


def _const(ch: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, 1), ord(ch), np.uint8), np.ones(n, np.int64)


def _uniform_int(u: np.ndarray, low: np.ndarray | int, high: np.ndarray | int) -> np.ndarray:
    """Integers uniform in [low, high) from uniforms ``u`` in [0, 1)."""
    low = np.asarray(low, dtype=np.int64)
    span = np.asarray(high, dtype=np.int64) - low
    return low + np.minimum((u * span).astype(np.int64), span - 1)


def _numbers(u: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Uniform numbers with exactly ``digits`` digits each (1 digit: 0..9), as v1's ``_number``."""
    return _uniform_int(u, np.where(digits == 1, 0, _POW10[np.maximum(digits - 1, 0)]), _POW10[digits])


def _successor_operands(u: np.ndarray, d: np.ndarray) -> np.ndarray:
    """v1's successor operand from 4 uniforms: half end in a run of 1..d nines (the head kept at
    d digits and not ending in 9), half are plain d-digit numbers."""
    nines = _uniform_int(u[:, 1], 1, d + 1)
    rest = d - nines
    head = _uniform_int(u[:, 2], np.where(rest > 1, _POW10[np.maximum(rest - 1, 0)], 1), np.where(rest > 0, _POW10[rest], 2))
    head = head - (head % 10 == 9)
    run = _POW10[nines] - 1
    forced = np.where(rest > 0, head * _POW10[nines] + run, run)
    return np.where(u[:, 0] < 0.5, forced, _numbers(u[:, 3], d))


def _compare_operands(u: np.ndarray, da: np.ndarray, db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v1's compare operands from 5 uniforms: equal lengths give a = b (20%), b sharing a prefix
    of 1..d-1 digits with a (40%, d > 1) or an independent b (the rest)."""
    a = _numbers(u[:, 0], da)
    other = _numbers(u[:, 1], db)
    keep = _uniform_int(u[:, 3], 1, np.maximum(da, 2))
    tail = _POW10[np.clip(da - keep, 0, None)]
    prefixed = (a // tail) * tail + _numbers(u[:, 4], da) % tail
    same, v = da == db, u[:, 2]
    b = np.where(same & (v < 0.2), a, np.where(same & (v < 0.6) & (da > 1), prefixed, other))
    return a, b


def _cell_items(skill: str, difficulty: int, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items of a cell from a block of uniforms ``u`` (one row per item): prompt codes, prompt
    lengths, answer codes, answer lengths."""
    n = len(u)
    if skill == "chain":
        terms = difficulty + 3
        prompt = np.zeros((n, 2 * terms), np.uint8)
        total = _uniform_int(u[:, 0], 0, 10)
        prompt[:, 0] = 48 + total
        for k in range(1, terms):
            t = _uniform_int(u[:, 2 * k - 1], 0, 10)
            minus = (t <= total) & (u[:, 2 * k] < 0.5)
            total = np.where(minus, total - t, total + t)
            prompt[:, 2 * k - 1] = np.where(minus, _C["-"], _C["+"])
            prompt[:, 2 * k] = 48 + t
        prompt[:, -1] = _C["="]
        return (prompt, np.full(n, 2 * terms, np.int64), *_digit_field(total))
    options = np.array(_V1_SHAPES[skill][difficulty], dtype=np.int64)
    shape = options[_uniform_int(u[:, 0], 0, len(options))]
    d0, v = shape[:, 0], u[:, 1:]
    if skill in ("copy", "successor"):
        a = _numbers(v[:, 0], d0) if skill == "copy" else _successor_operands(v, d0)
        prompt = concat_fields([_const(skill[0], n), _digit_field(a), _const("=", n)], n)
        return (*prompt, *_digit_field(a if skill == "copy" else a + 1))
    if skill == "compare":
        a, b = _compare_operands(v, d0, shape[:, 1])
        prompt = concat_fields([_digit_field(a), _const("?", n), _digit_field(b), _const("=", n)], n)
        sym = np.where(a < b, _C["<"], np.where(a > b, _C[">"], _C["="])).astype(np.uint8)
        return (*prompt, sym[:, None], np.ones(n, np.int64))
    if skill == "mul":
        a, b = _numbers(v[:, 0], d0), _uniform_int(v[:, 1], 1, 10)
        op, ans = "*", a * b
    else:
        a, b = _numbers(v[:, 0], d0), _numbers(v[:, 1], shape[:, 1])
        if skill == "sub":
            a, b = np.maximum(a, b), np.minimum(a, b)
            op, ans = "-", a - b
        else:
            op, ans = "+", a + b
    prompt = concat_fields([_digit_field(a), _const(op, n), _digit_field(b), _const("=", n)], n)
    return (*prompt, *_digit_field(ans))


def _pad_to(m: np.ndarray, width: int) -> np.ndarray:
    return m if m.shape[1] == width else np.pad(m, ((0, 0), (0, width - m.shape[1])))


def _row_keys(owner: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """One comparable void key per row: the owner id followed by the row's code points."""
    mat = np.ascontiguousarray(np.concatenate([owner[:, None].astype(np.uint32), codes.astype(np.uint32)], axis=1))
    return mat.view(np.dtype((np.void, mat.shape[1] * 4))).ravel()


def _trim(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``codes`` without the all-zero columns after the longest row (at least one column)."""
    return codes[:, : max(int(lengths.max(initial=1)), 1)]


class ArithmeticSuiteV2(ArithmeticSuiteV1):
    """v1's cells with the numpy partition hash and a vectorised generator (module docstring)."""

    name = "arith-v2"
    version = 2

    # ------------------------------------------------------------------ partition
    def part_of(self, prompt: str) -> str:
        if self.partition is None:
            raise ConfigError(f"suite {self.name!r} has no content partition (partition=None)")
        u = content_fraction_v2(prompt)
        p_train, p_val, _ = self.partition
        return "train" if u < p_train else ("val" if u < p_train + p_val else "test")

    def parts_of(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """:meth:`part_of` of every row of a prompt code matrix, as an int array: 0 train, 1
        validation, 2 test (the index in ``SPLITS``)."""
        if self.partition is None:
            raise ConfigError(f"suite {self.name!r} has no content partition (partition=None)")
        u = content_fractions(codes, lengths)
        p_train, p_val, _ = self.partition
        return (u >= p_train).astype(np.int64) + (u >= p_train + p_val)

    def cell_size(self, skill: str, difficulty: int) -> int | None:
        """v1's exact count, cached (generation asks for it once per request item)."""
        cache = self.__dict__.setdefault("_cell_sizes", {})
        key = (skill, int(difficulty))
        if key not in cache:
            cache[key] = super().cell_size(skill, difficulty)
        return cache[key]

    # ------------------------------------------------------------------ generation
    def uniforms_per_item(self, skill: str, difficulty: int) -> int:
        """How many uniforms one item of the cell is computed from."""
        self.check_cell(skill, difficulty)
        return 2 * (difficulty + 3) - 1 if skill == "chain" else _UNIFORMS[skill]

    def generate(
        self,
        skill: str,
        difficulty: int,
        rng: np.random.Generator,
        n: int,
        split: str | None = None,
        distinct: bool = False,
    ) -> list[Example]:
        """The vectorised generator (module docstring), as ``Example`` objects."""
        return list(self.generate_arrays(skill, difficulty, rng, n, split=split, distinct=distinct))

    def generate_arrays(
        self,
        skill: str,
        difficulty: int,
        rng: np.random.Generator,
        n: int,
        split: str | None = None,
        distinct: bool = False,
    ) -> ExampleArrays:
        """``n`` items of a cell as :class:`ExampleArrays`; ``split`` and ``distinct`` as for
        :meth:`generate`."""
        return self.generate_many([(rng, [(skill, difficulty, n)])], split=split, distinct=distinct)[0]

    def generate_many(
        self,
        requests: Sequence[tuple[np.random.Generator, Sequence[tuple[str, int, int]]]],
        split: str | None = None,
        distinct: bool = False,
    ) -> list[ExampleArrays]:
        """For each request ``(rng, [(skill, level, n), ...])``, its items in plan order, drawn
        from its own ``rng`` only: a request gets the same items whatever other requests come
        with it. See the module docstring for ``split`` and ``distinct``."""
        if split is not None and split not in SPLITS:
            raise ConfigError(f"split must be None or one of {list(SPLITS)}, got {split!r}")
        if split == "train" and self.partition is None:
            split = None
        if split is not None and self.partition is None:
            raise ConfigError(f"suite {self.name!r} has no content partition, so it cannot draw a {split!r} split")
        want = None if split is None else SPLITS.index(split)
        owners: list[tuple[int, str, int, int, bool]] = []  # (request, skill, level, n, split applies)
        known = self.__dict__.setdefault("_cell_facts", {})  # (skill, level) -> (partitioned, uniforms per item)
        for r, (_, plan) in enumerate(requests):
            for skill, level, n in plan:
                facts = known.get((skill, level)) if type(level) is int else None
                if facts is None:
                    self.check_cell(skill, level)
                    facts = known[(skill, int(level))] = (self.partitioned(skill, int(level)),
                                                          self.uniforms_per_item(skill, int(level)))
                if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                    raise ConfigError(f"n must be an integer >= 0, got {n!r}")
                owners.append((r, skill, int(level), int(n), want is not None and facts[0]))
        n_owners = len(owners)
        need = np.array([o[3] for o in owners], dtype=np.int64)
        stale = np.zeros(n_owners, np.int64)
        repeats_ok = np.zeros(n_owners, bool)
        share = np.array([self.partition[want] if o[4] else 1.0 for o in owners])  # type: ignore[index]
        width_p, width_a = self.max_prompt_len, self.max_answer_len
        kept: list[tuple[np.ndarray, ...]] = []  # per round: owner, prompt, plen, answer, alen
        seen_keys = np.zeros(0, dtype=np.dtype((np.void, (width_p + 1) * 4)))
        while True:
            pending = np.flatnonzero(need > 0)
            if not len(pending):
                break
            # 1. one block of uniforms per pending request item, from its own stream, in order
            by_cell: dict[tuple[str, int], list[tuple[int, np.ndarray]]] = {}
            sizes = np.maximum(_ROUND_MIN, ((need[pending] + 4 * need[pending] ** 0.5 + 16) / share[pending]).astype(np.int64))
            for o, m in zip(pending.tolist(), sizes.tolist(), strict=True):
                r, skill, level = owners[o][:3]
                u = requests[r][0].random((m, known[(skill, level)][1]))
                by_cell.setdefault((skill, level), []).append((o, u))
            # 2. items of every cell at once
            parts = []
            for (skill, level), blocks in by_cell.items():
                u = np.concatenate([b for _, b in blocks])
                owner = np.repeat([o for o, _ in blocks], [len(b) for _, b in blocks])
                p, pl, a, al = _cell_items(skill, level, u)  # uint8 codes (ASCII) until the end
                parts.append((owner, _pad_to(p, width_p), pl, _pad_to(a, width_a), al))
            owner, prompt, plen, answer, alen = (np.concatenate(c) for c in zip(*parts, strict=True))
            order = np.argsort(owner, kind="stable")  # each request item's rows together, in draw order
            owner, prompt, plen, answer, alen = owner[order], prompt[order], plen[order], answer[order], alen[order]
            # 3. the part, then (distinct) prompts not kept before
            ok = np.ones(len(owner), bool)
            if want is not None:
                applies = np.array([o[4] for o in owners])[owner]
                ok = ~applies | (self.parts_of(prompt, plen) == want)
            if distinct:
                dedup = ok & ~repeats_ok[owner]
                keys = _row_keys(owner[dedup], prompt[dedup])
                allkeys = np.concatenate([seen_keys, keys])
                first = np.zeros(len(allkeys), bool)
                first[np.unique(allkeys, return_index=True)[1]] = True
                fresh = np.ones(len(owner), bool)
                fresh[np.flatnonzero(dedup)] = first[len(seen_keys):]
                ok &= fresh
            # 4. the first `need` acceptable rows of each request item
            count = np.cumsum(ok)
            starts = np.searchsorted(owner, pending)
            before = np.where(starts > 0, count[np.maximum(starts - 1, 0)], 0)
            rank = count - 1 - before[np.searchsorted(pending, owner)]
            take = ok & (rank < need[owner])
            got = np.bincount(owner[take], minlength=n_owners)
            kept.append((owner[take], prompt[take], plen[take], answer[take], alen[take]))
            if distinct:
                new = take & ~repeats_ok[owner]
                seen_keys = np.concatenate([seen_keys, _row_keys(owner[new], prompt[new])])
            need -= got
            stale[pending] = np.where(got[pending] == 0, stale[pending] + 1, 0)
            for o in pending[(stale[pending] >= _MAX_EMPTY_ROUNDS) & (need[pending] > 0)]:
                if distinct and not repeats_ok[o]:
                    repeats_ok[o], stale[o] = True, 0
                else:
                    _, skill, level = owners[o][:3]
                    raise ConfigError(
                        f"suite {self.name!r} cell {skill} L{level}: no {split!r} item in {_MAX_EMPTY_ROUNDS} rounds "
                        "of draws; the cell's item space is too small for its partition"
                    )
        # 5. back to requests: rows by request item (plan order), rounds in order
        if kept:
            owner, prompt, plen, answer, alen = (np.concatenate(c) for c in zip(*kept, strict=True))
        else:
            owner = plen = alen = np.zeros(0, np.int64)
            prompt, answer = np.zeros((0, width_p), np.uint8), np.zeros((0, width_a), np.uint8)
        order = np.argsort(owner, kind="stable")
        owner, prompt, plen, answer, alen = owner[order], prompt[order], plen[order], answer[order], alen[order]
        skill_of = np.array([self.skill_index(o[1]) for o in owners], dtype=np.int64)
        level_of = np.array([o[2] for o in owners], dtype=np.int64)
        request_of = np.array([o[0] for o in owners], dtype=np.int64)
        bounds = np.searchsorted(request_of[owner], np.arange(len(requests) + 1))
        out = []
        for r in range(len(requests)):
            s = slice(bounds[r], bounds[r + 1])
            o = owner[s]
            out.append(ExampleArrays(_trim(prompt[s], plen[s]), plen[s], _trim(answer[s], alen[s]), alen[s],
                                     skill_of[o], level_of[o], self.skills))
        return out

    def generate_plan_arrays(
        self, items: Sequence[tuple[str, int, int]], rng: np.random.Generator, split: str | None = "train"
    ) -> ExampleArrays:
        """One request of :meth:`generate_many`: the items of each ``(skill, level, n)`` in order."""
        return self.generate_many([(rng, items)], split=split)[0]

    # ------------------------------------------------------------------ vectorised solver
    def solve_arrays(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Answers recomputed from prompt code points alone: ``(answer codes, answer lengths, ok)``,
        where ``ok`` is False for a row that is not a well-formed arithmetic prompt (its answer
        row is then empty). Parses the digits back into numbers and applies the operation, like
        :meth:`solve` but for every row at once: one pass over the columns, each a vector over
        the rows (Horner's rule for the numbers)."""
        n = len(codes)
        cols = np.ascontiguousarray(np.asarray(codes).T).astype(np.int32)  # (width, n): one row per position
        width = cols.shape[0]
        L = np.asarray(lengths, dtype=np.int64)
        rows = np.arange(n)
        last = np.asarray(codes)[rows, np.maximum(L - 1, 0)] if n else np.zeros(0, np.int64)
        first = cols[0] if width else np.zeros(n, np.int32)
        unary = (first == _C["c"]) | (first == _C["s"])
        well = (L >= 3) & (last == _C["="])
        n_ops = np.zeros(n, np.int64)
        op_pos = np.full(n, -1, np.int64)
        bad = np.zeros(n, bool)  # a body character that is neither a digit nor an operator (nor a leading c/s)
        for j in range(width):
            c = cols[j]
            body = j < L - 1
            op = ((c == _C["+"]) | (c == _C["-"]) | (c == _C["*"]) | (c == _C["?"])) & body
            digit = (c >= 48) & (c <= 57)
            bad |= body & ~(digit | op | ((j == 0) & unary))
            op_pos = np.where(op & (op_pos < 0), j, op_pos)
            n_ops += op
        well &= ~bad
        binary = well & ~unary & (n_ops == 1)
        chain = well & ~unary & (n_ops >= 2) & (L % 2 == 0)
        # numbers by Horner's rule: a = [0, op), b = (op, L-1); for c/s prompts the operand is b
        # with the letter in the operator's place
        split = np.where(unary, 0, op_pos)
        spans = {"a": (np.zeros(n, np.int64), split), "b": (split + 1, L - 1)}
        value = {k: np.zeros(n, np.int64) for k in spans}
        count = {k: np.zeros(n, np.int64) for k in spans}
        nondigit = {k: np.zeros(n, bool) for k in spans}
        total = cols[0].astype(np.int64) - 48 if width else np.zeros(n, np.int64)
        never_negative = np.ones(n, bool)
        chain_shape = np.ones(n, bool)  # digits at even and + or - at odd body positions
        for j in range(width):
            c = cols[j].astype(np.int64)
            digit = (c >= 48) & (c <= 57)
            for k, (lo, hi) in spans.items():
                inside = (j >= lo) & (j < hi)
                value[k] = np.where(inside, value[k] * 10 + (c - 48), value[k])
                count[k] += inside
                nondigit[k] |= inside & ~digit
            body = j < L - 1
            if j % 2 == 0:
                chain_shape &= ~body | digit
            else:
                sign = (c == _C["+"]) | (c == _C["-"])
                chain_shape &= ~body | sign
                if j + 1 < width:
                    t = cols[j + 1].astype(np.int64) - 48
                    active = chain & body
                    total = np.where(active, total + np.where(c == _C["-"], -t, t), total)
                    never_negative &= ~active | (total >= 0)
        lead = {"a": first, "b": np.asarray(codes)[rows, np.clip(split + 1, 0, max(width - 1, 0))] if n else first}
        canonical = {k: (count[k] >= 1) & (count[k] <= 18) & ~nondigit[k] & ((count[k] == 1) | (lead[k] != 48))
                     for k in spans}
        a, b = value["a"], value["b"]
        op = np.asarray(codes)[rows, np.maximum(op_pos, 0)] if n else first
        result = np.zeros(n, np.int64)
        symbol = np.zeros(n, np.int64)
        sel_u = well & unary & (n_ops == 0) & canonical["b"]
        result = np.where(sel_u, np.where(first == _C["s"], b + 1, b), result)
        sel_b = binary & canonical["a"] & canonical["b"]
        sel_b &= ~((op == _C["-"]) & (a < b)) & ~((op == _C["*"]) & ~((b >= 1) & (b <= 9) & (count["b"] == 1)))
        arith = np.select([op == _C["+"], op == _C["-"], op == _C["*"]], [a + b, a - b, a * b], 0)
        result = np.where(sel_b & (op != _C["?"]), arith, result)
        symbol = np.where(sel_b & (op == _C["?"]), np.where(a < b, _C["<"], np.where(a > b, _C[">"], _C["="])), symbol)
        sel_c = chain & chain_shape & never_negative
        result = np.where(sel_c, total, result)
        ok = sel_u | sel_b | sel_c
        digits, nd = _digit_field(np.where(ok & (symbol == 0), result, 0))
        out = np.zeros((n, max(digits.shape[1], 1)), np.uint32)
        out[:, : digits.shape[1]] = digits
        is_sym = ok & (symbol != 0)
        out[is_sym] = 0
        out[is_sym, 0] = symbol[is_sym]
        out[~ok] = 0
        out_len = np.where(is_sym, 1, np.where(ok, nd, 0))
        return out, out_len, ok

    # ------------------------------------------------------------------ wrong answers (the sources engine)
    def buggy_arrays(self, examples: ExampleArrays) -> ExampleArrays:
        """``examples`` answered by the skill's systematic bug (:mod:`distillgym.tasks.arith_bugs`)."""
        codes, lengths = buggy_answers(examples)
        return examples.with_answers(codes, lengths, source="buggy")

    def noisy_arrays(self, examples: ExampleArrays, uniforms: np.ndarray, rate: float) -> tuple[ExampleArrays, np.ndarray]:
        """``examples`` with each answer made wrong with probability ``rate`` (one digit or the sign
        changed, :func:`~distillgym.tasks.arith_bugs.noisy_answers`), and which rows were."""
        codes, lengths, wrong = noisy_answers(examples, uniforms, rate)
        return examples.with_answers(codes, lengths, source="noisy"), wrong

    def verify_arrays(self, examples: ExampleArrays, chunk: int = 32768) -> np.ndarray:
        """Per row, whether the gold answer equals the answer :meth:`solve_arrays` recomputes
        (in chunks of ``chunk`` rows, so the temporaries stay in cache)."""
        ok = np.zeros(len(examples), bool)
        for i in range(0, len(examples), chunk):
            s = slice(i, i + chunk)
            solved, solved_len, good = self.solve_arrays(examples.prompt[s], examples.prompt_len[s])
            gold = examples.answer[s]
            width = max(solved.shape[1], gold.shape[1])
            a = np.pad(solved, ((0, 0), (0, width - solved.shape[1])))
            b = np.pad(gold, ((0, 0), (0, width - gold.shape[1])))
            ok[s] = good & (solved_len == examples.answer_len[s]) & (a == b).all(1)
        return ok
