"""Name -> factory registries: one mechanism for every kind of part, and the one name -> object importer.

A :class:`Registry` maps a name to a factory: a class or callable, or a ``"package.module:attr"``
string imported on first lookup (so optional parts cost nothing until they are built). The task
suites (:data:`distillgym.tasks.SUITES`), students (:data:`distillgym.students.STUDENTS`), data
engines (:data:`distillgym.engines.ENGINES`), LLM backends (:data:`distillgym.llm.BACKENDS`) and
teachers (:data:`distillgym.teachers.TEACHERS`) are registries. :func:`import_object` is the importer
behind them, and behind a user's own ``package.module:Class`` teacher.

Each registry lives in its package's ``__init__`` and names the modules that implement its entries as
strings, so the implementations (which import the package's ``base`` contract) never form an import
circle with the registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from distillgym.errors import ConfigError, DependencyMissingError, UnknownNameError, did_you_mean

__all__ = ["Registry", "import_object"]


def import_object(spec: str, what: str = "object") -> Any:
    """The object named ``"package.module:attr"`` (``attr`` may be dotted: ``Class.factory``).

    Raises :class:`UnknownNameError` naming ``what`` when the module cannot be imported or lacks the
    attribute; a missing optional dependency (:class:`DependencyMissingError`, with its install
    hint) is raised as is."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise UnknownNameError(f"{what} {spec!r} is not a 'package.module:Name' reference")
    try:
        obj: Any = importlib.import_module(module)
    except DependencyMissingError:
        raise
    except ImportError as err:
        raise UnknownNameError(
            f"cannot import module {module!r} for {what} {spec!r} ({err}); a {what} given as "
            "'package.module:ClassName' needs an importable package"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownNameError(f"module {module!r} has no attribute {attr!r} ({what} {spec!r})")
        obj = getattr(obj, part)
    return obj


class Registry(dict):  # type: ignore[type-arg]
    """``{name: factory}`` for one kind of part (``what``: "task suite", "student", ...).

    ``registry[name]`` is the factory, a ``"package.module:attr"`` entry being imported and cached in
    place on first lookup; an unknown name raises :class:`UnknownNameError` with the closest names.
    (``items()`` and ``values()`` show the entries as stored: strings until first looked up.)
    """

    def __init__(self, what: str, entries: Mapping[str, Any] | None = None) -> None:
        super().__init__(entries or {})
        self.what = what

    def __getitem__(self, name: str) -> Any:
        if not dict.__contains__(self, name):
            raise UnknownNameError(f"unknown {self.what} {name!r}: {did_you_mean(str(name), self)}")
        f = dict.__getitem__(self, name)
        if isinstance(f, str):
            f = import_object(f, self.what)
            dict.__setitem__(self, name, f)
        return f

    def register(self, name: str, factory: Any = None) -> Any:
        """Add ``name``: ``register(name, factory)`` (a class, a callable or ``"module:attr"``), or
        ``@registry.register(name)`` above a class."""
        if factory is None:
            def deco(obj: Any) -> Any:
                self[name] = obj
                return obj

            return deco
        self[name] = factory
        return factory

    def build(self, spec: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        """``self[spec](*args, **kwargs)`` for a registered name, or ``spec`` itself when it already
        is a part (it has ``method``; extra ``kwargs`` are then an error)."""
        if not isinstance(spec, str):
            if not callable(getattr(spec, method, None)):
                raise ConfigError(f"{self.what} must be a name in {sorted(self)} or an object with {method}(), "
                                  f"got {spec!r}")
            if kwargs:
                raise ConfigError(f"{self.what} keyword arguments are for a {self.what} given by name, not for a "
                                  f"{self.what} object")
            return spec
        factory: Callable[..., Any] = self[spec]
        try:
            return factory(*args, **kwargs)
        except TypeError as err:
            if "argument" not in str(err):
                raise
            raise ConfigError(f"bad arguments {kwargs!r} for {self.what} {spec!r}: {err}") from None
