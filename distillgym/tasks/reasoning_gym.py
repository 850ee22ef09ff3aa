"""A task suite built from `reasoning-gym <https://github.com/open-thought/reasoning-gym>`_ datasets.

Every item is drawn through reasoning-gym's own generator (``reasoning-gym`` 0.1.25, the
optional extra ``pip install "distillgym[reasoning-gym]"``) and rewritten as a *compact
prompt* rebuilt from the item's ``metadata`` (reasoning-gym's questions are long English: a
median of 395 characters over its 104 datasets, 102 over the eight below, far beyond a
character student's 32 positions). The gold answer is recomputed from the compact prompt alone
by :meth:`ReasoningGymSuite.solve` (pure Python, no reasoning-gym), and
``tests/test_reasoning_gym.py`` checks, on every generated item of every cell, that it equals
reasoning-gym's own answer and that reasoning-gym's ``score_answer`` gives it 1.0.

Skills (the default set, ``DEFAULT_SKILLS``):

================  ==============================  ===========================================
skill             compact prompt → answer          reasoning-gym metadata it is rebuilt from
================  ==============================  ===========================================
chain_sum         ``12+34-5=`` → ``41``             ``expression`` (``"12 + 34 - 5"``)
products          ``12*34=`` → ``408``              ``expression`` (``"12 * 34"``)
gcd               ``gcd12,18=`` → ``6``             ``numbers``
lcm               ``lcm4,6=`` → ``12``              ``numbers``
base_conversion   ``2:1011>3=`` → ``102``           ``source_base``, ``source_repr``, ``target_base``
spell_backward    ``rev:hello=`` → ``olleh``        ``word`` (lower-cased)
leg_counting      ``3cow,2ant=`` → ``24``           ``animals`` (name → count; 4-letter codes)
number_sorting    ``<3,1,2=`` → ``1,2,3``           ``original_numbers``, ``direction`` (``<`` asc.)
================  ==============================  ===========================================

``base_conversion`` reads "from base 2, the number 1011, to base 3". ``leg_counting`` writes
each animal as the first four letters of its name with spaces removed (``pray`` for praying
mantis, ``seas`` for sea slug; names of three letters stay whole: ``cow``, ``ant``, ``dog``,
``cat``, ``bee``), in reasoning-gym's order. ``number_sorting`` writes integers (the levels
use 0 decimals, so reasoning-gym's ``"7.0"`` is ``7``). Answers may be negative only in
``chain_sum`` (``3-8=`` → ``-5``), as in reasoning-gym.

**Levels.** reasoning-gym's curricula start at sizes meant for LLMs (number_sorting at 10
numbers, gcd at values up to 1000, leg_counting at 3-10 animal kinds with up to 15 each), so
the suite defines its own four levels per skill with the same configuration fields (the
curricula's attributes), small enough at level 0 for the tiny student and short enough that
bos + prompt + answer + eos fits its 32 positions (the longest prompt is 18 characters, the
longest answer 8, and no item is longer than 21 characters, which keeps padded mini-batches,
whose cost is set by their longest row, short):

================  ========================  ====================  ======================  =====================
skill             L0                        L1                    L2                      L3
================  ========================  ====================  ======================  =====================
chain_sum         2-3 terms of 1 digit      2 terms of 2 digits   3 terms of 2 digits     2 terms of 3-4 digits
products          2-3 terms of 1 digit      2 terms of 2 digits   2 terms of 3 digits     3 terms of 2 digits
gcd               2 numbers in 1-30         2 in 31-100           2 in 101-300            2 in 301-1000
lcm               2 numbers in 1-30         2 in 31-60            2 in 61-100             3 in 1-30
base_conversion   bases 2-4, values 1-255   bases 5-9, 1-255      bases 10-18, 1-1000     bases 19-36, 1-2000
spell_backward    3 letters                 4 letters             5-6 letters             7-8 letters
leg_counting      1-2 kinds, 1 of each      1-2 kinds, 2-5 each   2 kinds, 6-20 each      3 kinds, 1-9 each
number_sorting    2-3 numbers in 0-9        4 numbers in 0-9      2 numbers in 10-99      3 numbers in 10-99
================  ========================  ====================  ======================  =====================

(chain_sum and products draw the number of terms and then one digit count per item, every
operand with that many digits, as reasoning-gym does; value ranges are bands as in the
curricula's "upper bound" mode, so that no prompt belongs to two levels; the exact
configuration dicts are in ``DEFAULT_LEVELS``, and ``ReasoningGymSuite(levels=...)`` replaces
any of them.) base_conversion starts at 1, not 0: reasoning-gym 0.1.25 writes 0 as the empty
string in every base but 2 and 16 (``reversed(digits) or [0]`` is never falsy), which would
give an empty prompt operand and an empty gold answer. Every default cell has at least 900
distinct prompts (gcd L0, lcm L0 and L1 have 900, products L0 1,100), so each claims a content
partition whose validation and test parts hold about 90 distinct prompts or more: enough for
32 validation and 64 test items per cell without repeats (smaller cells, e.g. chain_sum with
2 one-digit terms, 200 prompts, made the environment's distinct draws of its held-out sets take
30 s per reset). Sizes are counted exactly by :meth:`ReasoningGymSuite.cell_size`.

**Dominant answers.** Where one answer is common, a student that always writes it scores that
share: :meth:`ReasoningGymSuite.guessing_floor` estimates each cell's majority-answer accuracy
(the guessing floor) from a fixed sample, and :meth:`ReasoningGymSuite.guessing_floors` returns
the (skills, levels) array for reports and heatmaps. reasoning-gym's gcd answers ``2`` for
28-31% of the items of our four gcd levels (30-39% for value ranges that start at 1, e.g. 39% for
1-10: its generator redraws up to three times to avoid a gcd of 1, which makes 2 the mode, with
1 next at 22-24%), so the ``gcd`` skill keeps an item whose answer is ``2`` with probability 1/2
and one whose answer is ``1`` with probability 0.8 (``REBALANCE``; other answers always), which
brings its floors to 0.21-0.24. Every default cell's floor is then at most 0.3 (a test checks
it); the highest are gcd L0 (0.24), products L0 (0.23: a product with a 0 term is 0) and
leg_counting L0 (0.22: one cow and one ant, or any other pair of a 4-legged and a 6-legged kind,
have 10 legs).

**Seeds.** reasoning-gym builds item ``i`` of a dataset from ``random.Random(seed + i)``, so
neighbouring seeds give the same stream shifted by one, and gcd and lcm with one seed draw the
same numbers. Here each item is drawn with its own 62-bit seed taken from the numpy generator
the caller passes (the environment's ``(seed, stream, index)`` streams), and train, validation
and test parts are split by content (:meth:`TaskSuite.part_of`), never by nearby seeds.

**Checking.** Accuracy is exact match on the compact answer (``exact_match = True``).
reasoning-gym's ``score_answer`` is not used for accuracy: it gives partial credit (an answer
containing the gold as a substring scores ``len(gold) / len(answer)``: ``-142820`` for
``-14282`` scores 0.86), some scorers are numerically lenient (number_sorting accepts each
number within 1 of the gold), and some raise on malformed answers (prime_factorization on
``"2*3"``). :func:`reasoning_gym_score` is a wrapped use of it (any exception scores 0.0) for
comparisons with reasoning-gym's own numbers.

``import reasoning_gym`` takes about a second (it imports every dataset) and happens only
when a suite is built; ``reasoning_gym.__version__`` reports a wrong version (0.1.19 for
0.1.25), so :func:`reasoning_gym_version` reads the installed distribution's metadata.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, did_you_mean, require
from distillgym.tasks.base import TaskSuite
from distillgym.types import Example

__all__ = [
    "ReasoningGymSuite",
    "DEFAULT_SKILLS",
    "DEFAULT_LEVELS",
    "DEFAULT_PREREQUISITES",
    "REBALANCE",
    "ALPHABET",
    "LEGS",
    "ANIMAL_CODES",
    "reasoning_gym_score",
    "reasoning_gym_version",
]

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz+-*,:<>="
"""Every character a compact prompt or answer may contain (45 characters)."""

DEFAULT_SKILLS = (
    "chain_sum",
    "products",
    "gcd",
    "lcm",
    "base_conversion",
    "spell_backward",
    "leg_counting",
    "number_sorting",
)

DEFAULT_LEVELS: dict[str, tuple[dict[str, Any], ...]] = {
    "chain_sum": (
        {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 1},
        {"min_terms": 2, "max_terms": 2, "min_digits": 2, "max_digits": 2},
        {"min_terms": 3, "max_terms": 3, "min_digits": 2, "max_digits": 2},
        {"min_terms": 2, "max_terms": 2, "min_digits": 3, "max_digits": 4},
    ),
    "products": (
        {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 1},
        {"min_terms": 2, "max_terms": 2, "min_digits": 2, "max_digits": 2},
        {"min_terms": 2, "max_terms": 2, "min_digits": 3, "max_digits": 3},
        {"min_terms": 3, "max_terms": 3, "min_digits": 2, "max_digits": 2},
    ),
    "gcd": (
        {"min_numbers": 2, "max_numbers": 2, "min_value": 1, "max_value": 30},
        {"min_numbers": 2, "max_numbers": 2, "min_value": 31, "max_value": 100},
        {"min_numbers": 2, "max_numbers": 2, "min_value": 101, "max_value": 300},
        {"min_numbers": 2, "max_numbers": 2, "min_value": 301, "max_value": 1000},
    ),
    "lcm": (
        {"min_numbers": 2, "max_numbers": 2, "min_value": 1, "max_value": 30},
        {"min_numbers": 2, "max_numbers": 2, "min_value": 31, "max_value": 60},
        {"min_numbers": 2, "max_numbers": 2, "min_value": 61, "max_value": 100},
        {"min_numbers": 3, "max_numbers": 3, "min_value": 1, "max_value": 30},
    ),
    "base_conversion": (
        {"min_base": 2, "max_base": 4, "min_value": 1, "max_value": 255},
        {"min_base": 5, "max_base": 9, "min_value": 1, "max_value": 255},
        {"min_base": 10, "max_base": 18, "min_value": 1, "max_value": 1000},
        {"min_base": 19, "max_base": 36, "min_value": 1, "max_value": 2000},
    ),
    "spell_backward": (
        {"min_word_len": 3, "max_word_len": 3},
        {"min_word_len": 4, "max_word_len": 4},
        {"min_word_len": 5, "max_word_len": 6},
        {"min_word_len": 7, "max_word_len": 8},
    ),
    "leg_counting": (
        {"min_animals": 1, "max_animals": 2, "min_instances": 1, "max_instances": 1},
        {"min_animals": 1, "max_animals": 2, "min_instances": 2, "max_instances": 5},
        {"min_animals": 2, "max_animals": 2, "min_instances": 6, "max_instances": 20},
        {"min_animals": 3, "max_animals": 3, "min_instances": 1, "max_instances": 9},
    ),
    "number_sorting": (
        {"min_numbers": 2, "max_numbers": 3, "min_value": 0, "max_value": 9},
        {"min_numbers": 4, "max_numbers": 4, "min_value": 0, "max_value": 9},
        {"min_numbers": 2, "max_numbers": 2, "min_value": 10, "max_value": 99},
        {"min_numbers": 3, "max_numbers": 3, "min_value": 10, "max_value": 99},
    ),
}
"""Per skill, the reasoning-gym configuration fields of levels 0..3 (see the module docstring)."""

DEFAULT_PREREQUISITES: dict[str, tuple[str, ...]] = {
    "chain_sum": (),
    "products": ("chain_sum",),
    "gcd": ("chain_sum",),
    "lcm": ("gcd", "products"),
    "base_conversion": ("products",),
    "spell_backward": (),
    "leg_counting": ("products",),
    "number_sorting": ("spell_backward",),
}
"""The declared prerequisite graph: multiplication builds on addition; Euclid's gcd on
subtraction; lcm(a, b) = a * b / gcd(a, b); base conversion on multiplication and division;
leg counting on count x legs summed; sorting on copying symbols into a new order (as reversal
does). ``benchmarks/prerequisites.py --env distillgym/ReasoningGym-v1`` measures each edge
(benchmarks/README.md). Measured at level 0 (40% exact match, 2 seeds), no edge showed a clear
benefit for the tiny student: products, leg_counting and number_sorting took more examples after
their prerequisites than from the start, gcd 1.3 times fewer (within the seeds' spread), and lcm
and base_conversion reached 40% in neither case within 12,288 examples; chain_sum itself did not
reach 40% within 12,288 examples of prerequisite training. The graph is kept as declared (it is
what the skills are built from), not as a measured fact about this student."""

REBALANCE: dict[str, dict[str, float]] = {"gcd": {"1": 0.8, "2": 0.5}}
"""Per skill, answer -> probability that a drawn item with that answer is kept (otherwise
it is redrawn from the same generator), to keep every cell's guessing floor at most 0.3."""

LEGS: dict[str, int] = {
    "snake": 0, "sea slug": 0, "jellyfish": 0, "flatworm": 0, "leech": 0,
    "chicken": 2, "bird": 2, "human": 2, "duck": 2,
    "dog": 4, "cat": 4, "cow": 4, "horse": 4, "lion": 4, "elephant": 4, "giraffe": 4, "tiger": 4,
    "deer": 4, "sheep": 4,
    "starfish": 5,
    "insect": 6, "ant": 6, "butterfly": 6, "beetle": 6, "bee": 6, "wasp": 6, "grasshopper": 6,
    "cricket": 6, "cockroach": 6, "praying mantis": 6, "firefly": 6,
    "spider": 8, "scorpion": 8,
    "crab": 10, "lobster": 10, "shrimp": 10,
    "woodlouse": 14,
}  # fmt: skip
"""Legs per animal, written out here so that the solver does not depend on reasoning-gym (a test
checks it equals reasoning-gym's own table)."""

ANIMAL_CODES: dict[str, str] = {name: name.replace(" ", "")[:4] for name in LEGS}
"""Animal name -> its code in a compact leg_counting prompt (the first four letters, spaces removed)."""
_CODE_LEGS = {code: LEGS[name] for name, code in ANIMAL_CODES.items()}

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_SEED_HIGH = 2**62
"""Item seeds are drawn uniformly from [0, 2**62)."""
_FLOOR_STREAM = 9101
"""Seed of the fixed sample the guessing floors are estimated from."""
_REDRAWS = 1000


def reasoning_gym_version() -> str:
    """The installed reasoning-gym version from its distribution metadata (its
    ``__version__`` attribute is wrong in 0.1.25)."""
    try:
        return importlib.metadata.version("reasoning-gym")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _rg() -> Any:
    return require("reasoning_gym", "the reasoning-gym task suite", "reasoning-gym")


def reasoning_gym_score(dataset: Any, answer: str, entry: Mapping[str, Any]) -> float:
    """reasoning-gym's own ``dataset.score_answer(answer, entry)``, with any exception (some
    scorers raise on malformed answers) scored as 0.0. It gives partial credit and may be
    lenient, so distillgym's accuracy never uses it (see the module docstring)."""
    try:
        return float(dataset.score_answer(answer, dict(entry)))
    except Exception:
        return 0.0


def _canonical(s: str) -> bool:
    """A non-negative decimal integer without leading zeros."""
    return s.isdigit() and (len(s) == 1 or s[0] != "0")


def _count(digits: int) -> int:
    """How many operands reasoning-gym draws with ``digits`` digits (0..9 for one digit)."""
    return 10 if digits == 1 else 9 * 10 ** (digits - 1)


def _to_base(value: int, base: int) -> str:
    if value == 0:
        return "0"
    out = []
    while value:
        value, r = divmod(value, base)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


def _span(cfg: Mapping[str, Any], lo: str, hi: str) -> range:
    return range(int(cfg[lo]), int(cfg[hi]) + 1)


# ---------------------------------------------------------------------------- adapters
class _Adapter:
    """How one reasoning-gym dataset becomes a skill: compact prompts from an item's metadata,
    parsing, an independent solver, cell membership, exact cell sizes and length bounds."""

    dataset: str
    description: str
    fixed: dict[str, Any] = {}
    """Configuration fields the compact form depends on (a level may not change them)."""
    fields: tuple[str, ...] = ()
    """The configuration fields a level may set."""

    def config(self, level: Mapping[str, Any]) -> dict[str, Any]:
        bad = sorted(set(level) - set(self.fields))
        if bad:
            raise ConfigError(
                f"reasoning-gym skill {self.dataset!r}: a level may set only {list(self.fields)}, got {bad}"
                + (f" (the compact form needs {self.fixed})" if set(bad) & set(self.fixed) else "")
            )
        return {**self.fixed, **level}

    def check(self, cfg: Mapping[str, Any]) -> None:
        """Constraints beyond reasoning-gym's own ``validate``."""

    def compact(self, entry: Mapping[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def parse(self, prompt: str) -> Any:
        """The item a compact prompt describes, or None if it is not one of this skill."""
        raise NotImplementedError

    def solve(self, item: Any) -> str:
        raise NotImplementedError

    def fits(self, item: Any, cfg: Mapping[str, Any]) -> bool:
        """Whether reasoning-gym with ``cfg`` can produce ``item``."""
        raise NotImplementedError

    def size(self, cfg: Mapping[str, Any]) -> int:
        """Distinct compact prompts reasoning-gym with ``cfg`` can produce."""
        raise NotImplementedError

    def bounds(self, cfg: Mapping[str, Any]) -> tuple[int, int]:
        """(longest prompt, longest answer) with ``cfg``."""
        raise NotImplementedError

    def to_rg(self, answer: str) -> str:
        """A compact answer in the form reasoning-gym's ``score_answer`` expects."""
        return answer

    def same_as_rg(self, answer: str, rg_answer: str) -> bool:
        """Whether a compact answer is reasoning-gym's answer ``rg_answer``."""
        return answer == rg_answer


class _Chain(_Adapter):
    """chain_sum and products: terms of one digit count joined by operators."""

    def __init__(self, dataset: str, ops: str, description: str) -> None:
        self.dataset, self.ops, self.description = dataset, ops, description
        self.fixed = {"allow_negation": False}
        self.fields = ("min_terms", "max_terms", "min_digits", "max_digits")
        self._re = re.compile(rf"^\d+(?:[{re.escape(ops)}]\d+)+=$")

    def compact(self, entry: Mapping[str, Any]) -> tuple[str, str]:
        prompt = entry["metadata"]["expression"].replace(" ", "") + "="
        return prompt, self.solve(self.parse(prompt))

    def parse(self, prompt: str) -> tuple[list[int], list[str]] | None:
        if not self._re.match(prompt):
            return None
        parts = re.split(rf"([{re.escape(self.ops)}])", prompt[:-1])
        nums, ops = parts[0::2], parts[1::2]
        if not all(_canonical(n) for n in nums):
            return None
        return [int(n) for n in nums], ops

    def solve(self, item: tuple[list[int], list[str]]) -> str:
        nums, ops = item
        total = nums[0]
        for op, n in zip(ops, nums[1:], strict=True):
            total = total + n if op == "+" else total - n if op == "-" else total * n
        return str(total)

    def fits(self, item: tuple[list[int], list[str]], cfg: Mapping[str, Any]) -> bool:
        nums = item[0]
        digits = {len(str(n)) for n in nums}
        return (
            len(nums) in _span(cfg, "min_terms", "max_terms")
            and len(digits) == 1
            and (digits.pop() in _span(cfg, "min_digits", "max_digits"))
        )

    def size(self, cfg: Mapping[str, Any]) -> int:
        return sum(
            _count(d) ** t * len(self.ops) ** (t - 1)
            for t in _span(cfg, "min_terms", "max_terms")
            for d in _span(cfg, "min_digits", "max_digits")
        )

    def bounds(self, cfg: Mapping[str, Any]) -> tuple[int, int]:
        p = a = 0
        for t in _span(cfg, "min_terms", "max_terms"):
            for d in _span(cfg, "min_digits", "max_digits"):
                top = 10**d - 1
                low = 0 if d == 1 else 10 ** (d - 1)
                p = max(p, t * d + t)
                if self.ops == "*":
                    a = max(a, len(str(top**t)))
                else:
                    a = max(a, len(str(t * top)), len(str(low - (t - 1) * top)))
        return p, a


class _Numbers(_Adapter):
    """gcd and lcm of a list of numbers: ``gcd12,18=``."""

    fields = ("min_numbers", "max_numbers", "min_value", "max_value")

    def __init__(self, dataset: str, description: str) -> None:
        self.dataset, self.description = dataset, description
        self._re = re.compile(rf"^{dataset}(\d+(?:,\d+)+)=$")

    def compact(self, entry: Mapping[str, Any]) -> tuple[str, str]:
        nums = [int(n) for n in entry["metadata"]["numbers"]]
        prompt = f"{self.dataset}{','.join(map(str, nums))}="
        return prompt, self.solve(nums)

    def parse(self, prompt: str) -> list[int] | None:
        m = self._re.match(prompt)
        if not m or not all(_canonical(n) for n in m.group(1).split(",")):
            return None
        return [int(n) for n in m.group(1).split(",")]

    def solve(self, item: list[int]) -> str:
        return str(math.gcd(*item) if self.dataset == "gcd" else math.lcm(*item))

    def fits(self, item: list[int], cfg: Mapping[str, Any]) -> bool:
        return len(item) in _span(cfg, "min_numbers", "max_numbers") and all(
            cfg["min_value"] <= n <= cfg["max_value"] for n in item
        )

    def size(self, cfg: Mapping[str, Any]) -> int:
        values = cfg["max_value"] - cfg["min_value"] + 1
        return sum(values**k for k in _span(cfg, "min_numbers", "max_numbers"))

    def bounds(self, cfg: Mapping[str, Any]) -> tuple[int, int]:
        k, w = int(cfg["max_numbers"]), len(str(cfg["max_value"]))
        answer = w if self.dataset == "gcd" else len(str(int(cfg["max_value"]) ** k))
        return len(self.dataset) + k * w + k, answer


class _BaseConversion(_Adapter):
    dataset = "base_conversion"
    description = "convert a number between bases (digits above 9 are a-z): 2:1011>3= -> 102"
    fields = ("min_base", "max_base", "min_value", "max_value")
    _re = re.compile(r"^(\d+):([0-9a-z]+)>(\d+)=$")

    def compact(self, entry: Mapping[str, Any]) -> tuple[str, str]:
        m = entry["metadata"]
        prompt = f"{m['source_base']}:{m['source_repr']}>{m['target_base']}="
        return prompt, self.solve(self.parse(prompt))

    def parse(self, prompt: str) -> tuple[int, int, int, str] | None:
        m = self._re.match(prompt)
        if not m or not (_canonical(m.group(1)) and _canonical(m.group(3))):
            return None
        src, rep, dst = int(m.group(1)), m.group(2), int(m.group(3))
        if not (2 <= src <= 36 and 2 <= dst <= 36) or any(_DIGITS.index(c) >= src for c in rep):
            return None
        if len(rep) > 1 and rep[0] == "0":
            return None
        return src, int(rep, src), dst, rep

    def solve(self, item: tuple[int, int, int, str]) -> str:
        return _to_base(item[1], item[2])

    def fits(self, item: tuple[int, int, int, str], cfg: Mapping[str, Any]) -> bool:
        src, value, dst, _ = item
        bases = _span(cfg, "min_base", "max_base")
        return src != dst and src in bases and dst in bases and cfg["min_value"] <= value <= cfg["max_value"]

    def size(self, cfg: Mapping[str, Any]) -> int:
        nb = cfg["max_base"] - cfg["min_base"] + 1
        return nb * (nb - 1) * (cfg["max_value"] - cfg["min_value"] + 1)

    def bounds(self, cfg: Mapping[str, Any]) -> tuple[int, int]:
        w = len(str(cfg["max_base"]))
        longest = len(_to_base(int(cfg["max_value"]), int(cfg["min_base"])))
        return 2 * w + longest + 3, longest


class _SpellBackward(_Adapter):
    dataset = "spell_backward"
    description = "spell the word backward: rev:hello= -> olleh"
    fields = ("min_word_len", "max_word_len")
    _re = re.compile(r"^rev:([a-z]+)=$")

    def __init__(self) -> None:
        self._words: frozenset[str] | None = None

    def words(self) -> frozenset[str]:
        """reasoning-gym's word list, lower-cased (the words its generator can draw)."""
        if self._words is None:
            data = require("reasoning_gym.data", "the reasoning-gym task suite", "reasoning-gym")
            text = data.read_data_file("words3to10.txt")
            self._words = frozenset(w.strip().lower() for w in text.splitlines() if w.strip().isalnum())
        return self._words

    def compact(self, entry: Mapping[str, Any]) -> tuple[str, str]:
        word = entry["metadata"]["word"].lower()
        return f"rev:{word}=", word[::-1]

    def parse(self, prompt: str) -> str | None:
        m = self._re.match(prompt)
        return m.group(1) if m else None

    def solve(self, item: str) -> str:
        return item[::-1]

    def fits(self, item: str, cfg: Mapping[str, Any]) -> bool:
        return len(item) in _span(cfg, "min_word_len", "max_word_len") and item in self.words()

    def size(self, cfg: Mapping[str, Any]) -> int:
        lengths = _span(cfg, "min_word_len", "max_word_len")
        return sum(1 for w in self.words() if len(w) in lengths)

    def bounds(self, cfg: Mapping[str, Any]) -> tuple[int, int]:
        return 5 + int(cfg["max_word_len"]), int(cfg["max_word_len"])

    def same_as_rg(self, answer: str, rg_answer: str) -> bool:
        return answer == rg_answer.lower()  # reasoning-gym's own scorer lower-cases both sides


class _LegCounting(_Adapter):
    dataset = "leg_counting"
    description = (
        "total legs of the animals (4-letter codes: cow, spid = spider, pray = praying mantis): 3cow,2ant= -> 24"
    )
    fields = ("min_animals", "max_animals", "min_instances", "max_instances")
    _re = re.compile(r"^\d+[a-z]+(?:,\d+[a-z]+)*=$")

    def compact(self, entry: Mapping[str, Any]) -> tuple[str, str]:
        animals = entry["metadata"]["animals"]
        prompt = ",".join(f"{n}{ANIMAL_CODES[a]}" for a, n in animals.items()) + "="
        return prompt, self.solve(self.parse(prompt))

    def parse(self, prompt: str) -> list[tuple[int, str]] | None:
        if not self._re.match(prompt):
            return None
        out = []
        for part in prompt[:-1].split(","):
            m = re.match(r"^(\d+)([a-z]+)$", part)
            if m is None or not _canonical(m.group(1)) or m.group(2) not in _CODE_LEGS:
                return None
            out.append((int(m.group(1)), m.group(2)))
        return out

    def solve(self, item: list[tuple[int, str]]) -> str:
        return str(sum(n * _CODE_LEGS[code] for n, code in item))

    def fits(self, item: list[tuple[int, str]], cfg: Mapping[str, Any]) -> bool:
        codes = [c for _, c in item]
        return (
            len(item) in _span(cfg, "min_animals", "max_animals")
            and len(set(codes)) == len(codes)
            and all(cfg["min_instances"] <= n <= cfg["max_instances"] for n, _ in item)
        )

    def size(self, cfg: Mapping[str, Any]) -> int:
        counts = cfg["max_instances"] - cfg["min_instances"] + 1
        return sum(math.perm(len(LEGS), k) * counts**k for k in _span(cfg, "min_animals", "max_animals"))

    def bounds(self, cfg: Mapping[str, Any]) -> tuple[int, int]:
        k, w = int(cfg["max_animals"]), len(str(cfg["max_instances"]))
        return k * (w + 5), len(str(k * int(cfg["max_instances"]) * max(LEGS.values())))


class _NumberSorting(_Adapter):
    dataset = "number_sorting"
    description = "sort the numbers, < ascending or > descending: <3,1,2= -> 1,2,3"
    fixed = {"min_decimals": 0, "max_decimals": 0}
    fields = ("min_numbers", "max_numbers", "min_value", "max_value")
    _re = re.compile(r"^([<>])(-?\d+(?:,-?\d+)*)=$")

    def check(self, cfg: Mapping[str, Any]) -> None:
        for f in ("min_value", "max_value"):
            if int(cfg[f]) != cfg[f]:
                raise ConfigError(f"reasoning-gym skill 'number_sorting': {f} must be a whole number, got {cfg[f]!r}")

    def compact(self, entry: Mapping[str, Any]) -> tuple[str, str]:
        m = entry["metadata"]
        nums = [int(float(x)) for x in m["original_numbers"]]  # 0 decimals: "7.0" -> 7, "-0.0" -> 0
        prompt = ("<" if m["direction"] == "ascending" else ">") + ",".join(map(str, nums)) + "="
        return prompt, self.solve(self.parse(prompt))

    def parse(self, prompt: str) -> tuple[str, list[int]] | None:
        m = self._re.match(prompt)
        if not m:
            return None
        parts = m.group(2).split(",")
        if not all(_canonical(p.removeprefix("-")) and p != "-0" for p in parts):
            return None
        return m.group(1), [int(p) for p in parts]

    def solve(self, item: tuple[str, list[int]]) -> str:
        return ",".join(map(str, sorted(item[1], reverse=item[0] == ">")))

    def fits(self, item: tuple[str, list[int]], cfg: Mapping[str, Any]) -> bool:
        nums = item[1]
        return len(nums) in _span(cfg, "min_numbers", "max_numbers") and all(
            cfg["min_value"] <= n <= cfg["max_value"] for n in nums
        )

    def size(self, cfg: Mapping[str, Any]) -> int:
        values = int(cfg["max_value"]) - int(cfg["min_value"]) + 1
        return 2 * sum(values**n for n in _span(cfg, "min_numbers", "max_numbers"))

    def bounds(self, cfg: Mapping[str, Any]) -> tuple[int, int]:
        n = int(cfg["max_numbers"])
        w = max(len(str(int(cfg["max_value"]))), len(str(int(cfg["min_value"]))))
        return n * w + n + 1, n * w + n - 1

    def to_rg(self, answer: str) -> str:
        return str(answer.split(","))

    def same_as_rg(self, answer: str, rg_answer: str) -> bool:
        import ast

        return [float(x) for x in answer.split(",")] == [float(x) for x in ast.literal_eval(rg_answer)]


ADAPTERS: dict[str, _Adapter] = {
    "chain_sum": _Chain("chain_sum", "+-", "add and subtract the terms (the result may be negative): 12+34-5= -> 41"),
    "products": _Chain("products", "*", "multiply the terms: 12*34= -> 408"),
    "gcd": _Numbers("gcd", "the greatest common divisor: gcd12,18= -> 6"),
    "lcm": _Numbers("lcm", "the least common multiple: lcm4,6= -> 12"),
    "base_conversion": _BaseConversion(),
    "spell_backward": _SpellBackward(),
    "leg_counting": _LegCounting(),
    "number_sorting": _NumberSorting(),
}


# ---------------------------------------------------------------------------- the suite
class ReasoningGymSuite(TaskSuite):
    """Skills from reasoning-gym datasets with compact prompts and our own four levels each
    (see the module docstring for the forms, levels, checks and seeds).

    Args:
        skills: reasoning-gym dataset names, each one a skill (default ``DEFAULT_SKILLS``; the
            names with a compact form are the keys of ``DEFAULT_LEVELS``).
        levels: per skill, a sequence of configuration dicts (reasoning-gym's config fields, e.g.
            ``{"min_value": 1, "max_value": 20}``) replacing ``DEFAULT_LEVELS`` for that skill;
            every skill must have the same number of levels.
        prerequisites: the prerequisite graph (default: ``DEFAULT_PREREQUISITES`` restricted to
            ``skills``).
        partition: (train, validation, test) fractions of the content partition.
    """

    name = "reasoning-gym"
    version = 1
    description = (
        "Tasks from the reasoning-gym library (arithmetic, number theory, base conversion, word and "
        "list manipulation) rewritten as compact prompts that end in '=' and are answered by a short string."
    )
    alphabet = ALPHABET
    # The default skill set as class attributes (an instance sets its own in __init__).
    skills = DEFAULT_SKILLS
    n_difficulties = 4
    prerequisites = DEFAULT_PREREQUISITES

    def __init__(
        self,
        skills: Sequence[str] = DEFAULT_SKILLS,
        levels: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        prerequisites: Mapping[str, Sequence[str]] | None = None,
        partition: tuple[float, float, float] = (0.8, 0.1, 0.1),
    ) -> None:
        rg = _rg()
        if isinstance(skills, str) or not isinstance(skills, Sequence) or not skills:
            raise ConfigError(f"skills must be a non-empty list of reasoning-gym dataset names, got {skills!r}")
        for s in skills:
            if s not in ADAPTERS:
                known = (
                    " (a reasoning-gym dataset, but without a compact form here)" if s in rg.factory.DATASETS else ""
                )
                raise UnknownNameError(f"unknown reasoning-gym skill {s!r}{known}: {did_you_mean(str(s), ADAPTERS)}")
        if len(set(skills)) != len(skills):
            raise ConfigError(f"skills must not repeat, got {list(skills)}")
        self.skills = tuple(skills)
        levels = dict(levels or {})
        for s in levels:
            if s not in self.skills:
                raise ConfigError(f"levels given for {s!r}, which is not among the skills {list(self.skills)}")
        self.levels: dict[str, tuple[dict[str, Any], ...]] = {}
        for s in self.skills:
            given = levels.get(s, DEFAULT_LEVELS[s])
            if isinstance(given, Mapping) or not isinstance(given, Sequence) or not given:
                raise ConfigError(f"levels[{s!r}] must be a non-empty list of configuration dicts, got {given!r}")
            self.levels[s] = tuple(self._config(rg, s, lv) for lv in given)
        counts = {len(v) for v in self.levels.values()}
        if len(counts) != 1:
            raise ConfigError(
                "every skill needs the same number of levels, got "
                + ", ".join(f"{s}: {len(v)}" for s, v in self.levels.items())
            )
        self.n_difficulties = counts.pop()
        if prerequisites is None:
            self.prerequisites = {
                s: tuple(p for p in DEFAULT_PREREQUISITES[s] if p in self.skills) for s in self.skills
            }
        else:
            self.prerequisites = {s: tuple(prerequisites.get(s, ())) for s in self.skills}
            for s in prerequisites:
                self.skill_index(s)
        self.partition = tuple(partition)  # type: ignore[assignment]
        self.skill_descriptions = {s: ADAPTERS[s].description for s in self.skills}
        lengths = [ADAPTERS[s].bounds(cfg) for s in self.skills for cfg in self.levels[s]]
        self.max_prompt_len = max(p for p, _ in lengths)
        self.max_answer_len = max(a for _, a in lengths)
        self._datasets: dict[tuple[str, int], Any] = {}
        self._floors: dict[tuple[str, int, int], float] = {}
        self._sizes: dict[tuple[str, int], int] = {}

    def resolved_config(self) -> dict[str, Any]:
        """The constructor arguments, defaults filled in (each level as the fields a level sets; the
        fields the compact form fixes are implied): ``ReasoningGymSuite(**suite.resolved_config())``
        rebuilds the suite."""
        return {
            "skills": list(self.skills),
            "levels": {s: [{f: lv[f] for f in ADAPTERS[s].fields} for lv in self.levels[s]] for s in self.skills},
            "prerequisites": {s: list(p) for s, p in self.prerequisites.items()},
            "partition": list(self.partition),
        }

    @staticmethod
    def _config(rg: Any, skill: str, level: Mapping[str, Any]) -> dict[str, Any]:
        """A level's full configuration, checked by reasoning-gym's own config class."""
        adapter = ADAPTERS[skill]
        if not isinstance(level, Mapping):
            raise ConfigError(f"a level of {skill!r} must be a dict of configuration fields, got {level!r}")
        cfg = adapter.config(level)
        missing = [f for f in adapter.fields if f not in cfg]
        if missing:
            raise ConfigError(
                f"a level of {skill!r} must set {list(adapter.fields)}; {missing} missing in {dict(level)}"
            )
        config_cls = rg.factory.DATASETS[skill][1]
        try:
            config_cls(**cfg, seed=0, size=1).validate()
        except (AssertionError, TypeError, ValueError) as err:
            raise ConfigError(f"reasoning-gym rejects the {skill!r} level {dict(level)}: {err or 'invalid'}") from None
        adapter.check(cfg)
        return cfg

    # ------------------------------------------------------------------ generation
    def _dataset(self, skill: str, difficulty: int) -> Any:
        key = (skill, int(difficulty))
        if key not in self._datasets:
            self.check_cell(skill, difficulty)
            # seed 0: item idx is then built from random.Random(idx), and idx is the item's own seed
            self._datasets[key] = _rg().create_dataset(skill, seed=0, size=1, **self.levels[skill][int(difficulty)])
        return self._datasets[key]

    def draw(self, skill: str, difficulty: int, rng: np.random.Generator) -> tuple[Example, dict[str, Any]]:
        """One example of a cell and the reasoning-gym item it was rebuilt from.

        The item's seed is drawn from ``rng`` (uniform in [0, 2**62)); an item whose answer is
        rebalanced (``REBALANCE``) is kept with its probability, else another is drawn."""
        ds = self._dataset(skill, difficulty)
        adapter, keep = ADAPTERS[skill], REBALANCE.get(skill, {})
        for _ in range(_REDRAWS):
            entry = ds[int(rng.integers(0, _SEED_HIGH))]
            prompt, answer = adapter.compact(entry)
            if answer in keep and rng.random() >= keep[answer]:
                continue
            return Example(prompt=prompt, answer=answer, skill=skill, difficulty=int(difficulty)), entry
        raise ConfigError(f"cell {skill} L{difficulty}: {_REDRAWS} draws in a row were all rebalanced away")

    def generate_one(self, skill: str, difficulty: int, rng: np.random.Generator) -> Example:
        return self.draw(skill, difficulty, rng)[0]

    # ------------------------------------------------------------------ sizes, cells, floors
    def cell_size(self, skill: str, difficulty: int) -> int | None:
        """Distinct compact prompts of a cell, counted exactly from its configuration (cached)."""
        self.check_cell(skill, difficulty)
        key = (skill, int(difficulty))
        if key not in self._sizes:
            self._sizes[key] = ADAPTERS[skill].size(self.levels[skill][int(difficulty)])
        return self._sizes[key]

    def classify(self, prompt: str) -> tuple[str, int] | None:
        """The lowest-level cell whose configuration can produce ``prompt``, or None."""
        for s in self.skills:
            item = ADAPTERS[s].parse(prompt)
            if item is None:
                continue
            for d, cfg in enumerate(self.levels[s]):
                if ADAPTERS[s].fits(item, cfg):
                    return s, d
            return None
        return None

    def guessing_floor(self, skill: str, difficulty: int, n: int = 2000) -> float:
        """The majority-answer accuracy of a cell: the share of its items whose answer is the
        cell's most common answer, which a student that always writes that answer scores.
        Estimated from ``n`` items drawn from a fixed seed (standard error at most 0.5/sqrt(n),
        0.011 for the default 2000) and cached per ``n``."""
        self.check_cell(skill, difficulty)
        key = (skill, int(difficulty), int(n))
        if key not in self._floors:
            from distillgym.seeding import rng_for

            rng = rng_for(_FLOOR_STREAM, self.skill_index(skill), int(difficulty))
            counts = Counter(e.answer for e in self.generate(skill, int(difficulty), rng, int(n)))
            self._floors[key] = counts.most_common(1)[0][1] / int(n)
        return self._floors[key]

    def guessing_floors(self, n: int = 2000) -> np.ndarray:
        """(n_skills, n_difficulties) array of :meth:`guessing_floor`, skill-major as ``cells``."""
        return np.array([[self.guessing_floor(s, d, n) for d in range(self.n_difficulties)] for s in self.skills])

    # ------------------------------------------------------------------ checking
    def score(self, prediction: str, gold: str) -> float:
        """Exact match after stripping whitespace (never reasoning-gym's partial credit)."""
        return 1.0 if prediction.strip() == gold.strip() else 0.0

    def solve(self, prompt: str) -> str:
        """The answer recomputed from the compact prompt alone (pure Python, no reasoning-gym)."""
        for s in self.skills:
            item = ADAPTERS[s].parse(prompt)
            if item is not None:
                return ADAPTERS[s].solve(item)
        raise ConfigError(
            f"cannot parse {prompt!r} as a compact prompt of suite {self.name!r}; forms: "
            + "; ".join(f"{s}: {self.skill_descriptions[s]}" for s in self.skills)
        )

    def reasoning_gym_answer(self, skill: str, answer: str) -> str:
        """A compact answer written as reasoning-gym's ``score_answer`` expects it."""
        self.skill_index(skill)
        return ADAPTERS[skill].to_rg(answer)

    def matches_reasoning_gym(self, skill: str, answer: str, rg_answer: str) -> bool:
        """Whether a compact answer equals reasoning-gym's own answer string for the same item."""
        self.skill_index(skill)
        return ADAPTERS[skill].same_as_rg(answer, rg_answer)

    def reasoning_gym_score(self, example: Example, entry: Mapping[str, Any], answer: str | None = None) -> float:
        """reasoning-gym's own score (partial credit, lenient; 0.0 where it raises) of
        ``answer`` (default: the example's gold) for the item ``entry`` the example came from."""
        ds = self._dataset(example.skill, example.difficulty)
        return reasoning_gym_score(
            ds, self.reasoning_gym_answer(example.skill, example.answer if answer is None else answer), entry
        )

    @cached_property
    def library_version(self) -> str:
        """The installed reasoning-gym version (from its metadata)."""
        return reasoning_gym_version()
