"""distillgym: Gymnasium environments whose transition is student training plus evaluation.

``import distillgym`` registers the environments (``distillgym/ArithSkills-v1`` and the others in ``distillgym.envs``) and stays
light: torch and transformers are imported when an environment is made.
"""

from __future__ import annotations

from distillgym.envs import ENV_IDS, register_envs
from distillgym.errors import (
    ConfigError,
    DistillGymError,
    InvalidActionError,
    TrainingDivergedError,
    UnknownNameError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ENV_IDS",
    "ConfigError",
    "DistillGymError",
    "InvalidActionError",
    "TrainingDivergedError",
    "UnknownNameError",
]

register_envs()
