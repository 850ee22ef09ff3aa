"""The project's error hierarchy.

Every exception raised for bad user input derives from :class:`DistillGymError` and says
what was expected, what came, and how to fix it.
"""

from __future__ import annotations

import difflib
import importlib
import math
import numbers
from collections.abc import Iterable
from types import ModuleType
from typing import Any

__all__ = [
    "DistillGymError",
    "ConfigError",
    "InvalidActionError",
    "UnknownNameError",
    "TrainingDivergedError",
    "DependencyMissingError",
    "did_you_mean",
    "require",
    "check_int",
    "check_number",
    "check_bool",
    "check_choice",
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
    """A training step produced a non-finite loss or gradient. The optimiser step that met it
    was not taken; ``applied`` says how many optimiser steps of the same ``train`` call were
    taken before it (those did change the weights)."""

    def __init__(self, message: str, applied: int = 0) -> None:
        super().__init__(message)
        self.applied = int(applied)


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


# ---------------------------------------------------------------------------- argument checks
# One wording for every constructor argument in the project: "OWNER NAME must be RULE, got VALUE".
# numpy scalars count (np.integer is a numbers.Integral, np.floating a numbers.Real); bools do not.
# ``owner`` may be "" for a plain function argument.


def _who(owner: str, name: str) -> str:
    return f"{owner} {name}" if owner else name


def check_int(owner: str, name: str, v: Any, low: int) -> int:
    """``v`` as an int, or :class:`ConfigError` unless it is an integer >= ``low``."""
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < low:
        raise ConfigError(f"{_who(owner, name)} must be an integer >= {low}, got {v!r}")
    return int(v)


def check_number(
    owner: str,
    name: str,
    v: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """``v`` as a float, or :class:`ConfigError` unless it is a finite number in the given
    range (``open_low``/``open_high`` exclude the bound)."""
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    if ok and low is not None:
        ok = v > low if open_low else v >= low
    if ok and high is not None:
        ok = v < high if open_high else v <= high
    if not ok:
        if low is not None and high is not None:
            rule = f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        elif low is not None:
            rule = f"a finite number {'>' if open_low else '>='} {low:g}"
        else:
            rule = "a finite number"
        raise ConfigError(f"{_who(owner, name)} must be {rule}, got {v!r}")
    return float(v)


def check_bool(owner: str, name: str, v: Any) -> bool:
    numpy_bool = type(v).__module__ == "numpy" and type(v).__name__ in ("bool", "bool_")  # without importing numpy
    if not (isinstance(v, bool) or numpy_bool):
        raise ConfigError(f"{_who(owner, name)} must be True or False, got {v!r}")
    return bool(v)


def check_choice(what: str, v: Any, valid: Iterable[str]) -> str:
    """``v`` if it is one of ``valid``, else :class:`UnknownNameError` naming the closest."""
    valid = tuple(valid)
    if v not in valid:
        raise UnknownNameError(f"unknown {what} {v!r}: {did_you_mean(str(v), valid)}")
    return v
