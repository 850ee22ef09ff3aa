"""``ArithSkillsEnv``: the v0 class name, kept for code that constructs it directly.

``ArithSkillsEnv(**kwargs)`` is ``TeachingEnv`` with the defaults of ``distillgym/ArithSkills-v0``
(see :mod:`distillgym.envs`); the registered id itself points at ``TeachingEnv``.
"""

from __future__ import annotations

from typing import Any

from distillgym.env import REWARDS, Seconds, TeachingEnv
from distillgym.envs import ENV_DEFAULTS

__all__ = ["ArithSkillsEnv", "REWARDS", "Seconds"]


class ArithSkillsEnv(TeachingEnv):
    """``TeachingEnv`` with ``distillgym/ArithSkills-v0``'s defaults (see :class:`TeachingEnv`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**ENV_DEFAULTS["distillgym/ArithSkills-v0"], **kwargs})
