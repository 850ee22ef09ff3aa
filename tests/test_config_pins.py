"""The config hash of every existing id's default configuration is pinned.

A change of an id's dynamics must be a new registered version (README, Standards), and results,
resume and ``distillgym verify`` match episodes by config hash. So a change that moves one of these
hashes (a new ``EnvConfig`` field recorded at its default, a changed default of a part) fails here:
record a new field only when it differs from its default, or register a new version. The hashes
were recorded with hash recipe 3 (``HASH_VERSION``); a deliberate new recipe updates them all at once.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest

import distillgym  # noqa: F401  (registers the ids)
from distillgym.harness.fingerprint import HASH_VERSION, config_hash, teacher_identity

PINNED = {
    "distillgym/ArithSkills-v0": "0c1db7dcc8be",
    "distillgym/ArithSkills-v1": "fa095ab5f016",
    "distillgym/ArithMix-v1": "1d29fc390134",
    "distillgym/ArithOpen-v1": "27bac6073a55",
    "distillgym/ArithSkills-v2": "739a72fcb6db",
    "distillgym/ArithMix-v2": "5a99d5dae9e0",
    "distillgym/ReasoningGym-v1": "4bfad1b99e72",
    "distillgym/ReasoningGym-v2": "ea7c2473bae1",
    "distillgym/ReasoningGym-v3": "8d35b2fdd04b",
}
"""uniform's config hash of each id's default configuration (recipe 3)."""


@pytest.mark.parametrize("env_id", sorted(PINNED))
def test_default_config_hash_is_pinned(env_id: str) -> None:
    if env_id.startswith("distillgym/ReasoningGym-"):
        pytest.importorskip("reasoning_gym")
    assert HASH_VERSION == 3, "a new hash recipe: re-record PINNED (every hash changes by design)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(env_id)
    try:
        got = config_hash(env_id, env.unwrapped.config, teacher_identity("uniform"))
    finally:
        env.close()
    assert got == PINNED[env_id], (
        f"{env_id}'s default config hash moved ({PINNED[env_id]} -> {got}): its recorded configuration changed; "
        "keep old ids' configurations as they were (record new fields only off their default) or register a new version"
    )
