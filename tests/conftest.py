"""Shared fixtures: offline Hugging Face, a throw-away distillgym cache, small env configs.

Tests import the environment and the teachers only as ``distillgym.envs`` / ``distillgym.teachers``.
"""

from __future__ import annotations

import os
import tempfile

import pytest

# Set before anything imports transformers / huggingface_hub (env construction imports them lazily).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# A small episode: 4 steps of 512 examples, 8 validation and 8 test items per cell.
SMALL = dict(budget=2048, examples_per_step=512, n_val_per_cell=8, n_test_per_cell=8)
# A tiny episode for runner/CLI/teacher tests: 2 steps, 4 items per cell.
TINY = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)


@pytest.fixture(scope="session", autouse=True)
def _distillgym_cache():
    """Point DISTILLGYM_CACHE at a temporary directory for the whole session."""
    old = os.environ.get("DISTILLGYM_CACHE")
    with tempfile.TemporaryDirectory(prefix="distillgym-cache-") as d:
        os.environ["DISTILLGYM_CACHE"] = d
        try:
            yield d
        finally:
            if old is None:
                os.environ.pop("DISTILLGYM_CACHE", None)
            else:
                os.environ["DISTILLGYM_CACHE"] = old


@pytest.fixture(scope="session", autouse=True)
def _small_lm_for_pretrained_student_ids(_distillgym_cache):
    """Every id whose student is a pretrained language model (``distillgym.envs.PRETRAINED_STUDENT_IDS``:
    SmolLM2 takes minutes per episode on CPU) runs in this session with a small saved causal LM in
    its place (random weights, one character per token; ``save_tiny_causal_lm``), in few large
    optimiser steps, so the registry-wide tests (checkers, determinism, leaks, JSON info) check
    its dynamics quickly. The small model is saved the first time such an env is made (a session
    that makes none pays nothing). ``gym.make(id, student_kwargs={"model": "smollm2"})`` still
    gets the real model (tests/test_lora.py)."""
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the envs)
    from distillgym.envs import PRETRAINED_STUDENT_IDS

    path = os.path.join(_distillgym_cache, "tiny-lm")
    small = {"model": path, "batch_size": 128, "eval_batch_size": 256}

    def make_with_small_lm(**kwargs):
        from distillgym.env import TeachingEnv

        if (kwargs.get("student_kwargs") or {}).get("model") == path and not os.path.isdir(path):
            from distillgym.students.lora import save_tiny_causal_lm
            from distillgym.tasks import make_suite

            save_tiny_causal_lm(path, make_suite("arith-v1").alphabet + "\n")
        return TeachingEnv(**kwargs)

    saved = {}
    for env_id in PRETRAINED_STUDENT_IDS:
        spec = gym.spec(env_id)
        saved[env_id] = (spec.entry_point, spec.kwargs.get("student_kwargs"))
        spec.entry_point = make_with_small_lm
        spec.kwargs["student_kwargs"] = {**(saved[env_id][1] or {}), **small}
    yield path
    for env_id, (entry, kwargs) in saved.items():
        gym.spec(env_id).entry_point = entry
        gym.spec(env_id).kwargs["student_kwargs"] = kwargs


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread: the test machine's cores are shared with other jobs, where a
    second thread only adds contention. Results are deterministic either way."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def small_kwargs() -> dict:
    return dict(SMALL)


@pytest.fixture
def tiny_kwargs() -> dict:
    return dict(TINY)


@pytest.fixture(scope="session")
def suite():
    from distillgym.tasks import make_suite

    return make_suite("arith")


@pytest.fixture(scope="session")
def arith_info(suite) -> dict:
    """The static part of the env's reset info, built without an env (what teachers see)."""
    return {
        "suite": suite.name,
        "skills": list(suite.skills),
        "prerequisites": {s: list(p) for s, p in suite.prerequisites.items()},
        "n_difficulties": suite.n_difficulties,
    }


@pytest.fixture(scope="session")
def val_examples(suite):
    """A fixed validation-like set: 8 items per skill x difficulty cell."""
    from distillgym.seeding import STREAM_VAL, rng_for

    return [
        e
        for i, s in enumerate(suite.skills)
        for d in range(suite.n_difficulties)
        for e in suite.generate(s, d, rng_for(1234, STREAM_VAL, i, d), 8)
    ]
