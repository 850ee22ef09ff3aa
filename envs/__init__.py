"""Gymnasium environments, registered on ``import distillgym``."""

from __future__ import annotations

__all__ = ["ENV_IDS", "register_envs"]

ENV_IDS = ("distillgym/ArithSkills-v0",)


def register_envs() -> None:
    import gymnasium as gym

    if "distillgym/ArithSkills-v0" not in gym.registry:
        gym.register(id="distillgym/ArithSkills-v0", entry_point="distillgym.envs.arith_skills:ArithSkillsEnv")
