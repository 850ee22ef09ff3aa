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
from distillgym.tasks.arith_bugs import _POW10_U32, buggy_answers, digit_block, noisy_answers, numbers_to_codes
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
_OFFSET48 = (_POW10 - 1) // 9 * 48
"""48 * 11...1 (c ones) for c = 0..18: what c digits' code points read as base-10 digits exceed the number."""
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
    n, top = len(lengths), min(columns.shape[0], int(lengths.max(initial=0)))
    # H[j]: the hash after the first j code points of every row (one xor and one multiply a column);
    # each row's is then read at its own length
    H = np.empty((top + 1, n), np.uint64)
    H[0] = _KEY
    with np.errstate(over="ignore"):
        for j in range(top):
            np.bitwise_xor(H[j], columns[j], out=H[j + 1], casting="unsafe")
            H[j + 1] *= _FNV_PRIME
    return _fractions(_pick(H, np.minimum(lengths, top), np.arange(n)))


def _fractions(h: np.ndarray) -> np.ndarray:
    """:func:`content_fractions`' last part: the SplitMix64 finaliser of the FNV-1a hashes ``h``
    (``uint64``, changed in place), top 53 bits / 2**53."""
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(30)
        h *= _MIX1
        h ^= h >> np.uint64(27)
        h *= _MIX2
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


def _block_fractions(block: np.ndarray) -> np.ndarray:
    """:func:`content_fractions` of the rows of a code matrix whose rows all have its width as
    their length (no per-row length to read the hash at)."""
    h = np.full(len(block), _KEY, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(block.shape[1]):
            h ^= block[:, j]
            h *= _FNV_PRIME
    return _fractions(h)


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


def _prompt_of(parts: Sequence[str | np.ndarray], n: int, hashed: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``concat_fields`` of ``parts`` (one character, or an array of non-negative numbers written in
    decimal), as ``uint8`` codes and lengths, and where ``hashed`` the rows' :func:`content_fractions`
    (else None), written a layout at a time: the rows whose numbers have the same digit counts have
    their characters at the same columns, so each such group is written column by column (digits by
    scalar divisions), hashed over its one length and placed with one row copy."""
    numbers = [np.asarray(x, np.int64) for x in parts if not isinstance(x, str)]
    if any(len(v) and (int(v.max()) >= 2**32 or int(v.min()) < 0) for v in numbers):
        codes, length = concat_fields([_const(x, n) if isinstance(x, str) else _digit_field(x) for x in parts], n)
        return codes, length, content_fractions(codes, length) if hashed else None
    small = [v.astype(np.uint32) for v in numbers]
    counts = [np.ones(n, np.int64) for _ in small]
    for w, nd in zip(small, counts, strict=True):
        for e in range(1, len(str(int(w.max()))) if len(w) else 1):
            nd += w >= _POW10_U32[e]
    key = np.zeros(n, np.int64)
    for nd in counts:
        key = key * 11 + nd
    length = sum(counts, np.zeros(n, np.int64)) + sum(isinstance(x, str) for x in parts)
    out = np.zeros((n, max(int(length.max(initial=1)), 1)), np.uint8)
    frac = np.empty(n) if hashed else None
    layouts = np.flatnonzero(np.bincount(key)).tolist()  # the keys present, in order (small integers)
    for k in layouts:
        whole = len(layouts) == 1
        rows = np.arange(n) if whole else np.flatnonzero(key == k)
        digits = [int(nd[rows[0]]) for nd in counts]
        block = np.empty((len(rows), int(length[rows[0]])), np.uint8)
        at, i = 0, 0
        for x in parts:
            if isinstance(x, str):
                block[:, at] = ord(x)
                at += 1
                continue
            m = digits[i]
            block[:, at : at + m] = digit_block(small[i] if whole else small[i][rows], m)
            at, i = at + m, i + 1
        if whole:
            out[:, : block.shape[1]] = block
        else:
            out[rows, : block.shape[1]] = block
        if frac is not None:
            frac[rows] = _block_fractions(block)
    return out, length, frac


def _const(ch: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, 1), ord(ch), np.uint8), np.ones(n, np.int64)


def _uniform_int(u: np.ndarray, low: np.ndarray | int, high: np.ndarray | int) -> np.ndarray:
    """Integers uniform in [low, high) from uniforms ``u`` in [0, 1): ``low + min(floor(u * span),
    span - 1)`` (in place where the bounds are numbers)."""
    if np.ndim(low) == 0 and np.ndim(high) == 0:
        low, span = int(low), int(high) - int(low)
        x = (u * span).astype(np.int64)
        np.minimum(x, span - 1, out=x)
        if low:
            x += low
        return x
    low = np.asarray(low, dtype=np.int64)
    span = np.asarray(high, dtype=np.int64) - low
    x = (u * span).astype(np.int64)
    np.minimum(x, span - 1, out=x)
    x += low
    return x


_LOW = np.where(np.arange(19) == 1, 0, _POW10[np.maximum(np.arange(19) - 1, 0)])
"""The smallest number with d digits, per d (1 digit: 0)."""


def _numbers(u: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Uniform numbers with exactly ``digits`` digits each (1 digit: 0..9), as v1's ``_number``."""
    return _uniform_int(u, _LOW.take(digits), _POW10.take(digits))


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
    prompt, plen, _, values, symbolic = _cell_values(skill, difficulty, u)
    return (prompt, plen, *_answer_codes(values, symbolic))


def _answer_codes(values: np.ndarray, symbolic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Answer codes and lengths from :func:`_cell_values`' answers: a comparison's symbol code, else
    the number's decimal digits."""
    if symbolic:
        return values.astype(np.uint8)[:, None], np.ones(len(values), np.int64)
    return _digit_field(values)


def _put_digits(out: np.ndarray, dest: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Write the decimal digit codes of non-negative ``values`` left-aligned into the rows ``dest``
    of the ``uint8`` matrix ``out`` (its other columns left as they are) and return the digit
    counts: :func:`_digit_field` placed, with the rows of each digit count written straight to
    their place."""
    v = np.asarray(values, np.int64)
    if len(v) and (int(v.max()) >= 2**32 or int(v.min()) < 0):
        codes, nd = _digit_field(v)
        for m in np.unique(nd).tolist():  # each row's digits only
            rows = np.flatnonzero(nd == m)
            out[dest[rows], :m] = codes[rows, :m]
        return nd
    w = v.astype(np.uint32)
    width = len(str(int(w.max()))) if len(w) else 1
    nd = np.ones(len(w), np.int64)
    for e in range(1, width):
        nd += w >= _POW10_U32[e]
    for m in range(1, width + 1):
        rows = np.flatnonzero(nd == m) if width > 1 else None
        if rows is None or len(rows) == len(w):
            out[dest, :m] = digit_block(w, m)
            break
        if len(rows):
            out[dest[rows], :m] = digit_block(w[rows], m)
    return nd


def _cell_values(skill: str, difficulty: int, u: np.ndarray, hashed: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, bool]:
    """:func:`_cell_items` up to the answers' values: prompt codes, prompt lengths, where ``hashed``
    the prompts' :func:`content_fractions` (else None), each item's answer (a number, or for
    ``compare`` the symbol's code point) and whether the answers are symbols. Generation writes
    the answers of the items it keeps only."""
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
        return prompt, np.full(n, 2 * terms, np.int64), _block_fractions(prompt) if hashed else None, total, False
    options = np.array(_V1_SHAPES[skill][difficulty], dtype=np.int64)
    pick = _uniform_int(u[:, 0], 0, len(options))
    d0, v = options[:, 0].take(pick), u[:, 1:]
    d1 = options[:, 1].take(pick) if options.shape[1] > 1 else None  # the second number's digits
    if skill in ("copy", "successor"):
        a = _numbers(v[:, 0], d0) if skill == "copy" else _successor_operands(v, d0)
        return (*_prompt_of([skill[0], a, "="], n, hashed), a if skill == "copy" else a + 1, False)
    if skill == "compare":
        a, b = _compare_operands(v, d0, d1)
        sym = np.where(a < b, _C["<"], np.where(a > b, _C[">"], _C["="]))
        return (*_prompt_of([a, "?", b, "="], n, hashed), sym, True)
    if skill == "mul":
        a, b = _numbers(v[:, 0], d0), _uniform_int(v[:, 1], 1, 10)
        op, ans = "*", a * b
    else:
        a, b = _numbers(v[:, 0], d0), _numbers(v[:, 1], d1)
        if skill == "sub":
            a, b = np.maximum(a, b), np.minimum(a, b)
            op, ans = "-", a - b
        else:
            op, ans = "+", a + b
    return (*_prompt_of([a, op, b, "="], n, hashed), ans, False)


def _pad_to(m: np.ndarray, width: int) -> np.ndarray:
    return m if m.shape[1] == width else np.pad(m, ((0, 0), (0, width - m.shape[1])))


def _row_keys(owner: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """One comparable void key per row: the owner id followed by the row's code points."""
    mat = np.ascontiguousarray(np.concatenate([owner[:, None].astype(np.uint32), codes.astype(np.uint32)], axis=1))
    return mat.view(np.dtype((np.void, mat.shape[1] * 4))).ravel()


def _trim(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``codes`` without the all-zero columns after the longest row (at least one column)."""
    return codes[:, : max(int(lengths.max(initial=1)), 1)]


def _pick(m: np.ndarray, j: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``m[j, rows]`` of a C-contiguous 2-D ``m``, as one flat ``take`` (faster than the 2-D fancy index)."""
    return m.reshape(-1).take(j * m.shape[1] + rows)


def _small_codes(codes: np.ndarray) -> np.ndarray:
    """``codes`` as ``uint8``, every code point above 255 as 255 (a character of class other)."""
    codes = np.asarray(codes)
    if codes.dtype == np.uint8:
        return codes
    if codes.size and int(codes.max()) > 255:
        codes = np.minimum(codes, 255)
    return codes.astype(np.uint8)


def _solve_values(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arithmetic of :meth:`ArithmeticSuiteV2.solve_arrays`: per row of a prompt code matrix,
    ``(result, symbol, ok)``: the answer's value (``symbol`` 0), or the comparison symbol's code
    point, and whether the row is a well-formed prompt of one of the forms ``c<n>=`` / ``s<n>=``
    (copy, successor), ``<a><op><b>=`` (op one of + - * ?; no leading zeros, at most 18 digits; a
    difference not negative; a product's b one digit 1-9) or a chain of at least three one-digit
    terms joined by + and - whose running total never goes below 0.

    Character classes are one table look-up over the whole ``uint8`` matrix; the numbers come from
    one Horner pass over the columns (``V[j]``: the digits up to column j read as one number,
    wrapping in int64), from which a number between two columns is ``V[hi] - V[lo] * 10**(hi - lo)``
    (exact wherever the number has at most 18 digits); the chain's running totals are worked out
    on the chain rows alone."""
    codes = np.asarray(codes)
    n = len(codes)
    width = codes.shape[1] if codes.ndim == 2 else 0
    L = np.asarray(lengths, dtype=np.int64)
    zero = np.zeros(n, np.int64)
    if n == 0 or width == 0:
        return zero, zero.copy(), np.zeros(n, bool)
    t = np.ascontiguousarray(_small_codes(codes).T)  # (width, n): whole-column operations, reductions over axis 0
    rows = np.arange(n)
    body = np.arange(width)[:, None] < (L - 1)[None, :]
    digit = (t - np.uint8(48)) < 10
    is_op = ((t == _C["+"]) | (t == _C["-"]) | (t == _C["*"]) | (t == _C["?"])) & body
    first = t[0]
    unary = (first == _C["c"]) | (first == _C["s"])
    last = _pick(t, np.clip(L - 1, 0, width - 1), rows)
    well = (L >= 3) & (L <= width) & (last == _C["="])
    n_ops = is_op.view(np.uint8).sum(0, dtype=np.uint8 if width < 256 else np.int64).astype(np.int64)
    if width < 256:  # the first operator's column: the largest of (width - j) over the operators' columns j
        nearest = (is_op.view(np.uint8) * np.arange(width, 0, -1, dtype=np.uint8)[:, None]).max(0).astype(np.int64)
        op_pos = np.where(nearest > 0, width - nearest, -1)
    else:
        op_pos = np.full(n, -1, np.int64)
        for j in range(width - 1, -1, -1):
            op_pos[is_op[j]] = j
    allowed = digit | is_op | ~body  # in the body: digits and operators only (and a leading c or s)
    allowed[0] |= unary
    well &= allowed.all(0)
    binary = well & ~unary & (n_ops == 1)
    chain = well & ~unary & (n_ops >= 2) & (L % 2 == 0)
    split = np.where(unary, 0, op_pos)  # a: columns [0, split); b: (split, L - 1)
    count_a = np.clip(split, 0, width)
    count_b = np.maximum(np.minimum(L - 1, width) - np.maximum(split + 1, 0), 0)
    # V[j]: the code points of columns 0..j read as base-10 digits (wrapping): with c digits between two
    # columns, the number there is the difference of the V's less 48 * 11...1 (c ones), the codes' offset
    V = np.empty((width, n), np.int64)
    V[0] = t[0]
    with np.errstate(over="ignore"):
        for j in range(1, width):
            np.multiply(V[j - 1], 10, out=V[j])
            V[j] += t[j]
        a = np.where(count_a > 0, _pick(V, np.maximum(split - 1, 0), rows) - _OFFSET48.take(np.minimum(count_a, 18)), 0)
        b = (_pick(V, np.clip(L - 2, 0, width - 1), rows) - _pick(V, np.clip(split, 0, width - 1), rows) * _POW10.take(np.minimum(count_b, 18))
             - _OFFSET48.take(np.minimum(count_b, 18)))
    lead_b = _pick(t, np.clip(split + 1, 0, width - 1), rows)
    canon_a = (count_a >= 1) & (count_a <= 18) & ((count_a == 1) | (first != 48))
    canon_b = (count_b >= 1) & (count_b <= 18) & ((count_b == 1) | (lead_b != 48))
    op = _pick(t, np.maximum(op_pos, 0), rows)
    sel_u = well & unary & (n_ops == 0) & canon_b
    sel_b = binary & canon_a & canon_b
    sel_b &= ~((op == _C["-"]) & (a < b)) & ~((op == _C["*"]) & ~((b >= 1) & (b <= 9) & (count_b == 1)))
    with np.errstate(over="ignore"):
        result = np.where(sel_u, np.where(first == _C["s"], b + 1, b), 0)
        # the operator's result where op is + - or * (rows with another op never read it)
        arith = np.where(op == _C["+"], a + b, np.where(op == _C["-"], a - b, a * b))
    result = np.where(sel_b & (op != _C["?"]), arith, result)
    # "<" "=" ">" are the code points 60, 61, 62
    symbol = np.where(sel_b & (op == _C["?"]), _C["="] + (a > b).astype(np.int64) - (a < b), 0)
    # chains: one-digit terms at even body columns, + or - at odd ones, the running total never below 0
    c = np.flatnonzero(chain)
    sel_c = np.zeros(n, bool)
    if len(c):
        tc = t[:, c]
        off = np.arange(width)[:, None] >= (L[c] - 1)[None, :]
        shape_ok = (((tc[0::2] - np.uint8(48)) < 10) | off[0::2]).all(0)
        shape_ok &= ((tc[1::2] == _C["+"]) | (tc[1::2] == _C["-"]) | off[1::2]).all(0)
        dig = tc[0::2].astype(np.int32) - 48  # the terms: even columns (int32: sums of at most width terms)
        h = (width - 1) // 2  # sign columns 1, 3, ... that have a term after them
        active = ~off[1 : 2 * h : 2]
        term = dig[1 : h + 1]
        step = np.where(tc[1 : 2 * h : 2] == _C["-"], -term, term) * active
        running = dig[:1] + np.cumsum(step, axis=0)
        never_negative = ((running >= 0) | ~active).all(0)
        sel_c[c] = shape_ok & never_negative
        result[c] = np.where(sel_c[c], running[-1] if h else dig[0], result[c])
    return result, symbol, sel_u | sel_b | sel_c


def _gold_matches(gold: np.ndarray, gold_len: np.ndarray, result: np.ndarray, symbol: np.ndarray) -> np.ndarray:
    """Per row, whether the gold answer's codes are the answer ``(result, symbol)`` of
    :func:`_solve_values` written out (``solve_arrays``' codes: a symbol alone, else the decimal
    digits of ``result``, zeros after either)."""
    gold = np.asarray(gold)
    n = len(gold)
    glen = np.asarray(gold_len, dtype=np.int64)
    width = gold.shape[1] if gold.ndim == 2 else 0
    if n == 0 or width == 0:
        return np.zeros(n, bool)
    small = _small_codes(gold)
    t = np.ascontiguousarray(small.T)
    inside = np.arange(width)[:, None] < glen[None, :]
    clean = ((t == 0) | inside).all(0) & (glen <= width)  # zeros after the answer (and no code above 255)
    if gold.dtype != np.uint8 and int(gold.max()) > 255:
        clean &= (small == gold).all(1)
    is_sym = symbol != 0
    sym_ok = (glen == 1) & (t[0] == symbol)
    numeric = ~is_sym & (result >= 0) & (result < _POW10[18])
    decimal = (((t - np.uint8(48)) < 10) | ~inside).all(0) & (glen >= 1) & (glen <= 18) & ((glen == 1) | (t[0] != 48))
    # G[j]: the answer's code points in columns 0..j read as base-10 digits (wrapping), less the
    # codes' offset 48 * 11...1 below: the number, for a decimal answer of at most 18 digits
    G = np.empty((min(width, 18), n), np.int64)
    G[0] = t[0]
    with np.errstate(over="ignore"):
        for j in range(1, len(G)):
            np.multiply(G[j - 1], 10, out=G[j])
            G[j] += t[j]
        last = np.clip(glen - 1, 0, len(G) - 1)
        value = _pick(G, last, np.arange(n)) - _OFFSET48.take(last + 1)
    num_ok = numeric & decimal & (value == result)
    out = clean & np.where(is_sym, sym_ok, num_ok)
    odd = ~is_sym & ~numeric  # a value outside [0, 10**18): compare the digits solve_arrays would write
    if odd.any():
        idx = np.flatnonzero(odd)
        digits, nd = _digit_field(result[idx])
        w = max(digits.shape[1], width)
        mine = np.pad(digits.astype(np.uint32), ((0, 0), (0, w - digits.shape[1])))
        theirs = np.pad(np.asarray(gold[idx], np.uint32), ((0, 0), (0, w - width)))
        out[idx] = (glen[idx] == nd) & (mine == theirs).all(1)
    return out


def _first_rows(need: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Candidate rows of a block to make first for request items that still need ``need`` items of
    a part with share ``share``: the expected count plus three standard deviations and two. Any
    number gives the same items (the rest of a block is made when an item is short); this one
    makes the rest rarely needed and the first part not much larger than what is kept."""
    return np.ceil((need + 3 * np.sqrt(need * (1 - share) / share) + 2) / share).astype(np.int64)


def _rows_of(buffer: np.ndarray, seg_at: np.ndarray, skip: np.ndarray | int, rows: np.ndarray, k: int) -> np.ndarray:
    """Rows ``skip .. skip + rows`` of blocks of ``k`` uniforms a row that start at ``seg_at`` in
    ``buffer``, one block after another: a ``(rows.sum(), k)`` array (one gather)."""
    count = rows * k
    total = int(count.sum())
    begin = seg_at + np.asarray(skip) * k
    index = np.arange(total) + np.repeat(begin - (np.cumsum(count) - count), count)
    return buffer[index].reshape(total // k if k else 0, k)


class _Accepting:
    """The acceptance of candidate rows (one round's, a cell at a time) for
    :meth:`ArithmeticSuiteV2.generate_many`: the part check, ``distinct``'s check against the prompts
    kept before, and each request item's first ``need`` acceptable rows, written to their final rows
    of ``out`` (request item ``o``'s rows start at ``start[o]``, in the order they are kept)."""

    def __init__(self, suite: ArithmeticSuiteV2, want: int | None, need: np.ndarray, start: np.ndarray,
                 out: dict[str, np.ndarray], distinct: bool, width_p: int) -> None:
        self.suite, self.want, self.need, self.start, self.out = suite, want, need, start, out
        self.distinct, self.width_p = distinct, width_p
        self.filled = np.zeros(len(need), np.int64)
        self.repeats_ok = np.zeros(len(need), bool)
        self.seen = np.zeros(0, dtype=np.dtype((np.void, (width_p + 1) * 4)))

    def accept(self, skill: str, level: int, items: np.ndarray, lens: np.ndarray, u: np.ndarray, applies: bool) -> None:
        """Candidate rows of one cell: ``u`` holds ``lens[i]`` rows of uniforms of request item
        ``items[i]`` after each other (items in request-item order, each one's rows in draw order,
        following its rows accepted or rejected before)."""
        owner = np.repeat(items, lens)
        p, pl, frac, values, symbolic = _cell_values(skill, level, u, hashed=applies)
        ok = self.suite._in_part_of(frac, self.want) if applies else np.ones(len(owner), bool)
        if self.distinct:
            dedup = ok & ~self.repeats_ok[owner]
            keys = _row_keys(owner[dedup], _pad_to(p[dedup], self.width_p))
            allkeys = np.concatenate([self.seen, keys])
            first = np.zeros(len(allkeys), bool)
            first[np.unique(allkeys, return_index=True)[1]] = True
            fresh = np.ones(len(owner), bool)
            fresh[np.flatnonzero(dedup)] = first[len(self.seen):]
            ok &= fresh
        count = np.cumsum(ok)
        ends = np.cumsum(lens)
        before = np.where(ends > lens, count[np.maximum(ends - lens - 1, 0)], 0)  # acceptable rows of earlier blocks
        rank = count - 1 - np.repeat(before, lens)
        take = np.flatnonzero(ok & (rank < np.repeat(self.need[items], lens)))
        o = owner[take]
        dest = self.start[o] + self.filled[o] + rank[take]
        self.out["prompt"][dest, : p.shape[1]] = p[take]
        self.out["plen"][dest] = pl[take]
        if symbolic:  # the kept items' answers only, written to their rows
            self.out["answer"][dest, 0] = values[take]
            self.out["alen"][dest] = 1
        else:
            self.out["alen"][dest] = _put_digits(self.out["answer"], dest, values[take])
        got = np.bincount(o, minlength=len(self.need))
        if self.distinct:
            new = take[~self.repeats_ok[o]]
            self.seen = np.concatenate([self.seen, _row_keys(owner[new], _pad_to(p[new], self.width_p))])
        self.filled += got
        self.need -= got


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

    def in_part(self, codes: np.ndarray, lengths: np.ndarray, part: int) -> np.ndarray:
        """``parts_of(codes, lengths) == part``, from the part's own bounds on the fraction (the same
        comparisons, fewer passes)."""
        if self.partition is None:
            raise ConfigError(f"suite {self.name!r} has no content partition (partition=None)")
        return self._in_part_of(content_fractions(codes, lengths), part)

    def _in_part_of(self, u: np.ndarray, part: int) -> np.ndarray:
        """:meth:`in_part` from the rows' :func:`content_fractions` ``u``."""
        p_train, p_val, _ = self.partition  # type: ignore[misc]
        if part == 0:
            return u < p_train
        if part == 1:
            return (u >= p_train) & (u < p_train + p_val)
        return u >= p_train + p_val

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
        part = want is not None
        for r, (_, plan) in enumerate(requests):
            for skill, level, n in plan:
                facts = known.get((skill, level)) if type(level) is int else None
                if facts is None:
                    self.check_cell(skill, level)
                    level = int(level)
                    facts = known.get((skill, level))
                    if facts is None:
                        facts = known[(skill, level)] = (self.partitioned(skill, level),
                                                         self.uniforms_per_item(skill, level))
                if type(n) is not int or n < 0:  # plain ints (the common case) need no conversion
                    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                        raise ConfigError(f"plan item ({skill!r}, {level!r}, n={n!r}): n must be an integer >= 0")
                    n = int(n)
                owners.append((r, skill, level, n, part and facts[0]))
        n_owners = len(owners)
        owner_request_l, skill_l, level_l, asked_l, applies_l = zip(*owners, strict=True) if owners else ((),) * 5
        asked = np.array(asked_l, dtype=np.int64)
        owner_cells = list(zip(skill_l, level_l, strict=True))
        cells = list(dict.fromkeys(owner_cells))  # the cells asked for, in first-asked order
        cell_id = {c: i for i, c in enumerate(cells)}
        owner_cell = np.array([cell_id[c] for c in owner_cells], dtype=np.int64)
        owner_request = np.array(owner_request_l, dtype=np.int64)
        owner_k = np.array([known[c][1] for c in cells], dtype=np.int64)[owner_cell] if n_owners else asked
        need = asked.copy()
        stale = np.zeros(n_owners, np.int64)
        share = np.where(np.array(applies_l, dtype=bool), self.partition[want] if part else 1.0, 1.0)  # type: ignore[index]
        # every request item's rows go to their final place as they are accepted: owner o's rows
        # start at start[o] (owners are in request and plan order), in the order they are kept
        start = np.concatenate([[0], np.cumsum(asked)])
        total = int(start[-1])
        width_p, width_a = self.max_prompt_len, self.max_answer_len
        out = dict(prompt=np.zeros((total, width_p), np.uint8), answer=np.zeros((total, width_a), np.uint8),
                   plen=np.zeros(total, np.int64), alen=np.zeros(total, np.int64))
        state = _Accepting(self, want, need, start, out, distinct, width_p)
        while True:
            pending = np.flatnonzero(need > 0)
            if not len(pending):
                break
            # 1. one block of uniforms per pending request item, rng.random((m, k)) from its own stream,
            # in plan order: a request's blocks follow each other in its stream, so one draw per request
            # into one buffer for the round, each block a segment of it
            sizes = np.maximum(_ROUND_MIN, ((need[pending] + 4 * need[pending] ** 0.5 + 16) / share[pending]).astype(np.int64))
            k_of = owner_k[pending]
            seg = sizes * k_of
            seg_at = np.cumsum(seg) - seg
            buffer = np.empty(int(seg.sum()))
            per_request = np.bincount(owner_request[pending], weights=seg, minlength=len(requests)).astype(np.int64)
            at = 0
            for r in np.flatnonzero(per_request).tolist():
                requests[r][0].random(out=buffer[at : at + per_request[r]])
                at += int(per_request[r])
            # 2. items of each cell, a first part of each block (what the item needs, with a margin),
            # then the rest of the blocks of the items still short: an item is a function of its
            # row of uniforms alone, so this keeps what processing whole blocks keeps
            need_round = need.copy()
            first = np.minimum(_first_rows(need[pending], share[pending]), sizes)
            cell_of = owner_cell[pending]
            for c in np.unique(cell_of).tolist():
                skill, level = cells[c]
                mine = np.flatnonzero(cell_of == c)  # positions in pending, in request-item order
                applies = want is not None and known[(skill, level)][0]
                k = int(owner_k[pending[mine[0]]])
                state.accept(skill, level, pending[mine], first[mine], _rows_of(buffer, seg_at[mine], 0, first[mine], k),
                             applies)
                short = mine[(need[pending[mine]] > 0) & (first[mine] < sizes[mine])]
                if len(short):
                    rest = sizes[short] - first[short]
                    state.accept(skill, level, pending[short], rest,
                                 _rows_of(buffer, seg_at[short], first[short], rest, k), applies)
            got = need_round - need
            stale[pending] = np.where(got[pending] == 0, stale[pending] + 1, 0)
            for o in pending[(stale[pending] >= _MAX_EMPTY_ROUNDS) & (need[pending] > 0)]:
                if distinct and not state.repeats_ok[o]:
                    state.repeats_ok[o], stale[o] = True, 0
                else:
                    _, skill, level = owners[o][:3]
                    raise ConfigError(
                        f"suite {self.name!r} cell {skill} L{level}: no {split!r} item in {_MAX_EMPTY_ROUNDS} rounds "
                        "of draws; the cell's item space is too small for its partition"
                    )
        # 3. back to requests: each request's rows are one range of the output, in plan order
        cell_skill = np.array([self.skill_index(c[0]) for c in cells], dtype=np.int64)
        cell_level = np.array([c[1] for c in cells], dtype=np.int64)
        skill_of = np.repeat(cell_skill[owner_cell] if n_owners else owner_cell, asked)
        level_of = np.repeat(cell_level[owner_cell] if n_owners else owner_cell, asked)
        bounds = start[np.searchsorted(owner_request, np.arange(len(requests) + 1))]
        prompt, answer = _trim(out["prompt"], out["plen"]), _trim(out["answer"], out["alen"])
        whole = ExampleArrays(prompt, out["plen"], answer, out["alen"], skill_of, level_of, self.skills)
        result = []
        for r in range(len(requests)):
            s = slice(int(bounds[r]), int(bounds[r + 1]))
            mine = whole.take(s)  # a view of the whole, trimmed to this request's own widths
            if mine.prompt.shape[1] != max(int(mine.prompt_len.max(initial=1)), 1) or \
                    mine.answer.shape[1] != max(int(mine.answer_len.max(initial=1)), 1):
                mine = ExampleArrays(_trim(prompt[s], out["plen"][s]), out["plen"][s], _trim(answer[s], out["alen"][s]),
                                     out["alen"][s], skill_of[s], level_of[s], self.skills)
            result.append(mine)
        return result

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
        :meth:`solve` but for every row at once (:func:`_solve_values`)."""
        n = len(codes)
        result, symbol, ok = _solve_values(codes, lengths)
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

    def verify_arrays(self, examples: ExampleArrays, chunk: int = 16384) -> np.ndarray:
        """Per row, whether the gold answer equals the answer :meth:`solve_arrays` recomputes
        (in chunks of ``chunk`` rows, so the temporaries stay in cache). The gold answer is read
        as a number and compared with the recomputed one (a comparison symbol as itself), which
        is the same test as comparing it with the recomputed answer's digits: both are canonical
        decimals (a test checks the two on malformed prompts and answers)."""
        ok = np.zeros(len(examples), bool)
        for i in range(0, len(examples), chunk):
            s = slice(i, i + chunk)
            result, symbol, good = _solve_values(examples.prompt[s], examples.prompt_len[s])
            ok[s] = good & _gold_matches(examples.answer[s], examples.answer_len[s], result, symbol)
        return ok
