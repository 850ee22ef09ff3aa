"""Explicit random generators derived from (seed, stream, index); never global state."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "rng_for",
    "STREAM_TRAIN",
    "STREAM_VAL",
    "STREAM_TEST",
    "STREAM_EPISODE",
    "STREAM_PRETRAIN",
    "STREAM_INIT",
    "REFERENCE_SEEDS",
    "REFERENCE_SEED",
    "check_reference_seed",
    "TEACHER_TRAINING_SEEDS",
    "parse_seeds",
]

# Disjoint streams: the validation and test sets come from different seed ranges, so the
# test set is never drawn with the seeds the teacher saw during the episode.
STREAM_TRAIN = 1
STREAM_VAL = 2
STREAM_TEST = 3
STREAM_EPISODE = 4
STREAM_PRETRAIN = 5
"""Base pre-training data of a student (seeded by the student's init seed)."""
STREAM_INIT = 6
"""A student's initial weights, drawn from the episode seed (v1 envs)."""

TEACHER_TRAINING_SEEDS = range(100_000_000, 200_000_000)
"""Episode seeds reserved for training teachers (:mod:`distillgym.train.cem` draws every training
episode's seed from here): no benchmark may use one (``tests/test_cem.py`` reads every benchmark
TOML), so a learned teacher is never evaluated on an episode it was trained on."""


REFERENCE_SEEDS = range(1_000_000_000, 1_001_000_000)
"""Episode seeds reserved for a teacher's own reference or proxy runs (DoReMi's reference student).
No benchmark may use them (:meth:`distillgym.harness.benchmark.Benchmark.validate` refuses them, and
tests/test_benchmark_seeds.py reads every shipped benchmark), so a reference run never shares initial
weights or validation items with an episode it is compared with. A teacher that runs episodes of its
own takes its seeds from here."""
REFERENCE_SEED = REFERENCE_SEEDS.start
"""The default reference seed (DoReMi's ``reference_seed``)."""


def check_reference_seed(owner: str, seed: object) -> int:
    """``seed`` as an int when it lies in :data:`REFERENCE_SEEDS`, else a ConfigError naming the range."""
    from distillgym.errors import ConfigError

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) not in REFERENCE_SEEDS:
        raise ConfigError(
            f"{owner}: a reference seed must be an integer in the reserved range {REFERENCE_SEEDS.start}.."
            f"{REFERENCE_SEEDS.stop - 1} (distillgym.seeding.REFERENCE_SEEDS), which no benchmark uses, so the "
            f"reference never shares a benchmark episode's initial weights or validation items; got {seed!r}"
        )
    return int(seed)


def rng_for(seed: int, *index: int) -> np.random.Generator:
    """A numpy Generator determined by ``seed`` and the integer ``index`` path only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, index)]))


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """Seeds from ``"20000-20002"``, ``"1,2,5"``, ``"21000-21009,21020"`` or a list of ints: non-negative,
    at least one, none repeated (ConfigError otherwise). The harness's commands (headroom, tune) read
    their ``--seeds`` options with it."""
    from distillgym.errors import ConfigError

    if not isinstance(text, str):
        seeds = [int(s) for s in text]
    else:
        seeds = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            a, sep, b = part.partition("-")
            try:
                lo, hi = int(a), int(b) if sep else int(a)
            except ValueError:
                raise ConfigError(f"seeds must look like '20000-20002' or '1,2,5', got {text!r}") from None
            if hi < lo:
                raise ConfigError(f"seed range {part!r} runs backwards")
            seeds += list(range(lo, hi + 1))
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"seeds must be non-negative integers, at least one, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds repeat in {text!r}")
    return seeds
