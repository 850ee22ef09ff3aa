"""The project's error hierarchy.

Every exception raised for bad user input derives from :class:`DistillGymError` and says
what was expected, what came, and how to fix it.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from types import ModuleType

__all__ = [
    "DistillGymError",
    "ConfigError",
    "InvalidActionError",
    "UnknownNameError",
    "TrainingDivergedError",
    "DependencyMissingError",
    "did_you_mean",
    "require",
]


class DistillGymError(Exception):
    """Base class of every error distillgym raises on purpose."""


class ConfigError(DistillGymError, ValueError):
    """A configuration value is out of range or of the wrong type."""


class InvalidActionError(DistillGymError, ValueError):
    """An action does not belong to the environment's action space."""


class UnknownNameError(DistillGymError, KeyError):
    """A skill, teacher, env or reward name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TrainingDivergedError(DistillGymError, RuntimeError):
    """A training step produced a non-finite loss or gradient; the student was not updated."""


class DependencyMissingError(DistillGymError, ImportError):
    """An optional dependency is not installed."""


def require(module: str, purpose: str, extra: str, hint: str = "") -> ModuleType:
    """Import the optional dependency ``module``, or raise :class:`DependencyMissingError` naming
    what needs it (``purpose``) and the extra that installs it (``pip install "distillgym[EXTRA]"``)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise DependencyMissingError(
            f'{purpose} needs {module.split(".")[0]} ({err}); install it with: pip install "distillgym[{extra}]"{hint}'
        ) from None


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """A message fragment listing the valid names, with the closest one first if any."""
    valid = list(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"valid values are {valid}.{hint}"
