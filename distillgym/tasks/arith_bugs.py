"""Wrong answers on purpose: the arithmetic skills' systematic bugs and a noisy answerer, as array code.

The ``sources`` data engine (:mod:`distillgym.engines.sources`) sells training examples from
sources of different quality: a *verified* one (the suite's checked answer), a *buggy* one that
answers with a systematic bug per skill, and a *noisy* one that is wrong at a set rate. This module
computes the buggy and noisy answers for :class:`~distillgym.tasks.arrays.ExampleArrays` of the
arithmetic suites (``arith-v1`` and ``arith-v2`` prompts), vectorised over rows: the prompt's
numbers are parsed back from its code points (Horner's rule, column by column) and the bug is
applied digit by digit with integer arithmetic.

**The bugs** (each a classic error of a learner, or of a generator with a broken rule):

========== =============================================== =============================
skill      bug                                             example (correct)
========== =============================================== =============================
copy       repeated digits collapse into one               ``c1123=`` → ``123`` (1123)
successor  +1 on the last digit, the carry not propagated  ``s129=`` → ``120`` (130)
add        column sums without carry                       ``57+68=`` → ``15`` (125)
sub        smaller digit from larger in each column        ``52-38=`` → ``26`` (14)
           (no borrow)
mul        digit products without carry                    ``57*3=`` → ``51`` (171)
compare    by the leading digits only                      ``9?123=`` → ``>`` (<)
chain      the last operation dropped                      ``3+4-2=`` → ``7`` (5)
========== =============================================== =============================

Numbers are right-aligned for the column rules; a leading zero of the result is dropped (``10+90``
without carry is ``0``). A bug fires only on items that exercise it (no carry, no borrow, no
repeated digit, equal leading digits that decide, a last term 0): its firing rate per cell, measured
over 20,000 train-part items per ``arith-v2`` cell, is in :data:`FIRING_RATES` (and
``tests/test_sources.py`` re-measures it). Where a bug never fires (copy L0 has few repeats;
compare at L0 often decides by the leading digit) the cheap source is right, which a teacher can
learn to exploit.

**Noise.** :func:`noisy_answers` makes an answer wrong with probability ``rate``: one digit,
chosen uniformly, is replaced by another digit chosen uniformly (never a leading zero of a number
of two or more digits, so the wrong answer is still a canonical number of the same length); a
comparison sign is replaced by one of the other two. Three uniforms per row, drawn by the caller.
"""

from __future__ import annotations

import numpy as np

from distillgym.errors import ConfigError
from distillgym.tasks.arrays import ExampleArrays

__all__ = ["BUGS", "FIRING_RATES", "buggy_answers", "noisy_answers", "numbers_to_codes"]

BUGS: dict[str, str] = {
    "copy": "repeated digits collapse into one",
    "successor": "+1 on the last digit only (no carry propagation)",
    "add": "column sums without carry",
    "sub": "smaller digit from larger in each column (no borrow)",
    "mul": "digit products without carry",
    "compare": "compares the leading digits only",
    "chain": "drops the last operation",
}
"""What the buggy source gets wrong, per skill."""

FIRING_RATES: dict[str, tuple[float, ...]] = {
    "copy": (0.097, 0.276, 0.343, 0.409),
    "successor": (0.577, 0.546, 0.501, 0.519),
    "add": (0.455, 0.758, 0.863, 0.931),
    "sub": (0.225, 0.402, 0.662, 0.811),
    "mul": (0.715, 0.87, 0.878, 0.882),
    "compare": (0.333, 0.392, 0.424, 0.427),
    "chain": (0.892, 0.897, 0.901, 0.9),
}
"""Share of train-part items of each ``arith-v2`` cell (difficulties 0..3) whose buggy answer is
wrong: 20,000 items per cell drawn with ``generate_arrays(skill, d, rng_for(2021, skill index, d),
20000, split="train")``."""

_PLUS, _MINUS, _TIMES, _ASK, _EQ = (ord(c) for c in "+-*?=")
_POW10 = 10 ** np.arange(19, dtype=np.int64)


_POW10_U32 = _POW10[:10].astype(np.uint32)


def digit_block(values: np.ndarray, digits: int, dtype: type = np.uint8) -> np.ndarray:
    """The decimal digit codes of ``uint32`` ``values`` that all have ``digits`` digits, as an
    ``(n, digits)`` matrix. Column c's digit is ``q_c - 10 * q_(c-1)`` with ``q_c`` the value divided
    by the constant 10 ** (digits - 1 - c) (numpy divides by a scalar quickly, by an array or with
    ``%`` slowly), so each column costs one division."""
    block = np.empty((len(values), digits), dtype)
    if not digits:
        return block
    prev = values // _POW10_U32[digits - 1]  # the leading digit
    block[:, 0] = prev + 48
    for c in range(1, digits):
        q = values // _POW10_U32[digits - 1 - c] if c < digits - 1 else values
        block[:, c] = q - prev * 10 + 48
        prev = q
    return block


def numbers_to_codes(values: np.ndarray, dtype: type = np.uint32) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digits of non-negative ``values`` as a left-aligned character-code matrix of ``dtype`` and
    their counts (the arith-v2 generator uses it with ``uint8``). Digit counts by comparisons; where every
    value fits 32 unsigned bits, the rows of each digit count together, each column's digit from one
    division by a constant power of ten and one by ten (numpy divides by a scalar quickly, by an array
    or with ``%`` slowly); otherwise column by column in 64-bit arithmetic."""
    v = np.asarray(values, dtype=np.int64)
    n = len(v)
    top = int(v.max()) if n else 0
    width = len(str(max(top, 0)))
    small = n > 0 and top < 2**32 and int(v.min()) >= 0
    w, pw = (v.astype(np.uint32), _POW10_U32) if small else (v, _POW10)
    nd = np.ones(n, np.int64)
    for e in range(1, width):
        nd += w >= pw[e]
    out = np.zeros((n, width), dtype)
    if small:
        for m in range(1, width + 1):  # the rows with m digits: column c holds the digit of 10 ** (m - 1 - c)
            rows = np.flatnonzero(nd == m)
            if not len(rows):
                continue
            if len(rows) == n:
                rows = None  # every row: no gather, no scatter
            block = digit_block(w if rows is None else w[rows], m, dtype)
            if rows is None:
                out[:, :m] = block
            else:
                out[rows, :m] = block
        return out, nd
    for c in range(width):  # column c holds the digit of 10 ** (nd - 1 - c), where that is >= 0
        ex = nd - 1 - c
        out[:, c] = np.where(ex >= 0, (w // pw[np.maximum(ex, 0)]) % 10 + 48, 0)
    return out, nd


def _horner(codes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per row, the number written in columns [lo, hi) (digits only)."""
    value = np.zeros(len(codes), np.int64)
    for j in range(codes.shape[1]):
        inside = (j >= lo) & (j < hi)
        value = np.where(inside, value * 10 + (codes[:, j].astype(np.int64) - 48), value)
    return value


def _operator(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per row, the column of the first + - * ? before the final '=' (-1 if none)."""
    c = codes.astype(np.int64)
    cols = np.arange(c.shape[1])[None, :]
    op = ((c == _PLUS) | (c == _MINUS) | (c == _TIMES) | (c == _ASK)) & (cols < (lengths - 1)[:, None])
    return np.where(op.any(1), op.argmax(1), -1)


def _columnwise(a: np.ndarray, b: np.ndarray, rule: str) -> np.ndarray:
    """Right-aligned column rule over the digits of a and b: ``add`` (a+b mod 10), ``sub`` (|a-b|),
    ``mul`` ((a * b) mod 10, b one digit)."""
    out = np.zeros(len(a), np.int64)
    for e in range(19):
        da, db = (a // _POW10[e]) % 10, (b // _POW10[e]) % 10
        if rule == "add":
            d = (da + db) % 10
        elif rule == "sub":
            d = np.abs(da - db)
        else:
            d = (da * b) % 10
        out += d * _POW10[e]
        if not ((a // _POW10[e]) > 0).any() and not ((b // _POW10[e]) > 0).any():
            break
    return out


def _buggy_skill(skill: str, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Buggy answers (codes, lengths) of rows that all belong to ``skill``."""
    n = len(lengths)
    L = lengths.astype(np.int64)
    if skill in ("copy", "successor"):
        a = _horner(codes, np.ones(n, np.int64), L - 1)
        if skill == "successor":
            return numbers_to_codes(a - a % 10 + (a % 10 + 1) % 10)
        # collapse runs of a repeated digit: keep a digit unless it equals the one before it
        body = codes[:, 1:].astype(np.int64)
        cols = np.arange(body.shape[1])[None, :]
        inside = cols < (L - 2)[:, None]
        prev = np.concatenate([np.full((n, 1), -1, np.int64), body[:, :-1]], axis=1)
        keep = inside & (body != prev)
        pos = np.cumsum(keep, axis=1) - 1
        out = np.zeros((n, max(body.shape[1], 1)), np.uint32)
        r, j = np.nonzero(keep)
        out[r, pos[r, j]] = body[r, j]
        return out, keep.sum(1).astype(np.int64)
    if skill == "chain":
        c = codes.astype(np.int64)
        total = c[:, 0] - 48
        for j in range(1, c.shape[1] - 1, 2):
            term = j + 1 < L - 2  # a term before the last one (the last sits at L - 2)
            sign = np.where(c[:, j] == _MINUS, -1, 1)
            total = np.where(term, total + sign * (c[:, j + 1] - 48), total)
        return numbers_to_codes(total)
    op = _operator(codes, L)
    if (op < 1).any():
        raise ConfigError(f"a {skill} prompt without an operator: rows {np.flatnonzero(op < 1)[:5].tolist()}")
    if skill == "compare":
        lead_a = codes[:, 0].astype(np.int64)
        lead_b = codes[np.arange(n), op + 1].astype(np.int64)
        sym = np.where(lead_a < lead_b, ord("<"), np.where(lead_a > lead_b, ord(">"), ord("=")))
        return sym.astype(np.uint32)[:, None], np.ones(n, np.int64)
    a = _horner(codes, np.zeros(n, np.int64), op)
    b = _horner(codes, op + 1, L - 1)
    rule = {"add": "add", "sub": "sub", "mul": "mul"}.get(skill)
    if rule is None:
        raise ConfigError(f"no bug is defined for skill {skill!r}; the buggy source knows {sorted(BUGS)}")
    return numbers_to_codes(_columnwise(a, b, rule))


def buggy_answers(examples: ExampleArrays) -> tuple[np.ndarray, np.ndarray]:
    """Each row's buggy answer (see the module docstring) as ``(codes (n, W) uint32, lengths)``."""
    n = len(examples)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for s in np.unique(examples.skill):
        rows = np.flatnonzero(examples.skill == s)
        codes, lens = _buggy_skill(examples.skills[int(s)], examples.prompt[rows], examples.prompt_len[rows])
        parts.append((rows, codes, lens))
    width = max([c.shape[1] for _, c, _ in parts], default=1)
    out = np.zeros((n, width), np.uint32)
    out_len = np.zeros(n, np.int64)
    for rows, codes, lens in parts:
        out[rows, : codes.shape[1]] = codes
        out_len[rows] = lens
    return out, out_len


def noisy_answers(examples: ExampleArrays, uniforms: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray,
                                                                                            np.ndarray]:
    """Answers made wrong with probability ``rate`` from ``uniforms`` (n, 3): ``u[:, 0] < rate`` says
    which rows, ``u[:, 1]`` picks the position, ``u[:, 2]`` the new digit or sign. Returns
    ``(codes, lengths, wrong)``; lengths never change."""
    u = np.asarray(uniforms, dtype=np.float64)
    n = len(examples)
    if u.shape != (n, 3):
        raise ConfigError(f"noisy_answers needs (n, 3) uniforms, got {u.shape} for {n} rows")
    codes = examples.answer.copy()
    L = examples.answer_len
    wrong = (u[:, 0] < rate) & (L > 0)
    c0 = codes[:, 0].astype(np.int64) if codes.shape[1] else np.zeros(n, np.int64)
    sign = (L == 1) & ((c0 == ord("<")) | (c0 == ord("=")) | (c0 == ord(">")))
    # a sign: one of the other two, uniformly
    rows = np.flatnonzero(wrong & sign)
    if len(rows):
        others = {ord("<"): (ord("="), ord(">")), ord("="): (ord("<"), ord(">")), ord(">"): (ord("<"), ord("="))}
        pick = (u[rows, 2] >= 0.5).astype(np.int64)
        codes[rows, 0] = [others[int(c)][p] for c, p in zip(c0[rows], pick, strict=True)]
    # a number: one digit replaced by another (no new leading zero)
    rows = np.flatnonzero(wrong & ~sign)
    if len(rows):
        pos = np.minimum((u[rows, 1] * L[rows]).astype(np.int64), L[rows] - 1)
        d = codes[rows, pos].astype(np.int64) - 48
        lo = np.where((pos == 0) & (L[rows] > 1), 1, 0)
        k = np.minimum((u[rows, 2] * (9 - lo)).astype(np.int64), 8 - lo)  # the k-th digit >= lo other than d
        new = lo + k
        new = np.where(new >= d, new + 1, new)
        codes[rows, pos] = (48 + new).astype(np.uint32)
    return codes, L.copy(), wrong
