"""Small name -> factory registries for the environment's parts (suites, students, engines).

A registry maps a name to a factory: a class or callable, or a ``"package.module:attr"`` string
imported on first use (so optional parts cost nothing until they are built).
:func:`build` makes a part from a name, or passes an object that already is one through.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from distillgym.errors import ConfigError, UnknownNameError, did_you_mean

__all__ = ["factory", "build"]


def factory(registry: dict[str, Any], name: str, what: str) -> Callable[..., Any]:
    """The factory registered as ``name`` (a string entry is imported and cached in place)."""
    if name not in registry:
        raise UnknownNameError(f"unknown {what} {name!r}: {did_you_mean(str(name), registry)}")
    f = registry[name]
    if isinstance(f, str):
        module, _, attr = f.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        registry[name] = f = obj
    return f


def build(registry: dict[str, Any], spec: Any, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """``factory(*args, **kwargs)`` for a registered name, or ``spec`` itself when it is already a
    part (it has ``method``; extra ``kwargs`` are then an error)."""
    if not isinstance(spec, str):
        if not callable(getattr(spec, method, None)):
            raise ConfigError(f"{what} must be a name in {sorted(registry)} or an object with {method}(), got {spec!r}")
        if kwargs:
            raise ConfigError(f"{what} keyword arguments are for a {what} given by name, not for a {what} object")
        return spec
    try:
        return factory(registry, spec, what)(*args, **kwargs)
    except TypeError as err:
        if "argument" not in str(err):
            raise
        raise ConfigError(f"bad arguments {kwargs!r} for {what} {spec!r}: {err}") from None
