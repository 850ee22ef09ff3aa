"""Gymnasium environments, registered on ``import distillgym``.

Every id is a thin registration of :class:`distillgym.env.TeachingEnv` with defaults; ``gym.make``
keyword arguments override them. A change of an id's dynamics is a new version; old versions stay.

=============================  ======  =========  ======================================================
id                             level   suite      what differs
=============================  ======  =========  ======================================================
``distillgym/ArithSkills-v0``  cell    arith      the original env: no content partition (validation and
                                                  test from disjoint seed streams), same initial weights
                                                  every episode, no loss reported
``distillgym/ArithSkills-v1``  cell    arith-v1   test and validation held out by content; v1 levels
                                                  (every cell >= 900 items); initial weights from the
                                                  episode seed; validation loss per cell in ``info``
``distillgym/ArithMix-v1``     mix     arith-v1   as ArithSkills-v1, the action a data mix over all cells;
                                                  ``loss`` in the observation
``distillgym/ArithOpen-v1``    open    arith-v1   as ArithSkills-v1, the action written examples (text);
                                                  ``loss`` in the observation
``distillgym/ReasoningGym-v1`` cell    reasoning  as ArithSkills-v1 on eight reasoning-gym datasets with
                               -gym               compact prompts (:mod:`distillgym.tasks.reasoning_gym`;
                                                  the ``reasoning-gym`` extra); 40,960 examples in
                                                  32 steps of 1,280
=============================  ======  =========  ======================================================

All of them: 32 validation and 64 test items per cell, 8 sampled errors in each report, the
``delta_mean`` reward, the tiny student (default ``StudentConfig``). The arithmetic ids take
49,152 examples per episode in steps of 2,048 (24 steps). ``ReasoningGym-v1`` has 32 cells (8
skills x 4 levels) and takes 32 steps, so that a teacher can visit every cell once in an episode
(with 24 steps the ``uniform`` teacher would leave 8 cells untrained), of 1,280 examples: its
items are longer (15 tokens on average against 11) and its held-out sets costlier to draw, and
49,152 examples took 1.23 times as long as an ``ArithSkills-v0`` episode run beside it, about
61 s where that one takes 50 s; 40,960 keep an episode within 60 s on 2 CPU cores.

## Version History
- ``ArithSkills-v0``: the original environment (its class was ``ArithSkillsEnv``); kept bit-identical
  on the same machine (tests/test_v0_trajectory.py replays a trajectory recorded before the core
  refactor).
- ``ArithSkills-v1``, ``ArithMix-v1``, ``ArithOpen-v1``: the environment-core release. Test items are
  disjoint from training and validation by content (v0 shared about 16% of test prompts with
  validation for one seed, and one training step covered most test prompts of about 10 cells);
  the arithmetic levels of the 8 cells with fewer than 200 items were redefined (see
  :mod:`distillgym.tasks.arithmetic`); the student's initial weights are drawn from the episode seed.
- ``ReasoningGym-v1``: first version (reasoning-gym 0.1.25, pinned by the extra: its generators
  make the items).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENV_IDS", "ENV_DEFAULTS", "register_envs"]

_ENTRY = "distillgym.env:TeachingEnv"

_V1 = dict(suite="arith-v1", split="content", student_init="seed")

ENV_DEFAULTS: dict[str, dict[str, Any]] = {
    "distillgym/ArithSkills-v0": dict(
        suite="arith", level="cell", split=None, student_init="fixed", observe_loss=False, report_loss=False
    ),
    "distillgym/ArithSkills-v1": dict(**_V1, level="cell"),
    "distillgym/ArithMix-v1": dict(**_V1, level="mix"),
    "distillgym/ArithOpen-v1": dict(**_V1, level="open"),
    "distillgym/ReasoningGym-v1": dict(
        suite="reasoning-gym",
        split="content",
        student_init="seed",
        level="cell",
        budget=40960,
        examples_per_step=1280,
    ),
}

ENV_IDS = tuple(ENV_DEFAULTS)


def register_envs() -> None:
    import gymnasium as gym

    for env_id, kwargs in ENV_DEFAULTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=_ENTRY, kwargs=dict(kwargs))
