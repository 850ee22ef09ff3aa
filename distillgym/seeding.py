"""Explicit random generators derived from (seed, stream, index); never global state."""

from __future__ import annotations

import numpy as np

__all__ = ["rng_for", "STREAM_TRAIN", "STREAM_VAL", "STREAM_TEST", "STREAM_EPISODE", "STREAM_PRETRAIN", "STREAM_INIT"]

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


def rng_for(seed: int, *index: int) -> np.random.Generator:
    """A numpy Generator determined by ``seed`` and the integer ``index`` path only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, index)]))
