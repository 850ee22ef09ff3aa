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

import dataclasses
import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from distillgym.errors import ConfigError, DependencyMissingError, UnknownNameError, did_you_mean

__all__ = ["Registry", "import_object", "class_path", "resolved_args"]


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


# ---------------------------------------------------------------------------- resolved configurations
def class_path(obj: Any) -> str:
    """``"module:QualName"`` of a class, a function, or an object's class."""
    target = obj if inspect.isclass(obj) or inspect.isroutine(obj) else type(obj)
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', type(target).__name__)}"


def _plain(value: Any, depth: int) -> Any:
    """``value`` as JSON data: containers element-wise, numpy scalars as numbers, a function or class
    by its path, any other object as ``{"class": path, "args": its resolved arguments}`` (never a
    ``repr``, which may hold a memory address and would make two equal configurations hash apart)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_plain(v, depth) for v in items]
    item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
    if callable(item) and getattr(value, "shape", None) == ():
        return _plain(item(), depth)
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist) and hasattr(value, "dtype"):
        return _plain(tolist(), depth)
    if dataclasses.is_dataclass(value) and not inspect.isclass(value):
        return {"class": class_path(value), "args": _plain(_fields(value), depth)}
    if inspect.isclass(value) or inspect.isroutine(value):
        return class_path(value)
    if depth <= 0:
        return {"class": class_path(value)}
    return {"class": class_path(value), "args": resolved_args(value, _depth=depth - 1)}


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict: its own ``record()`` where it has one (``StudentConfig`` leaves out
    the fields added later while they are at their defaults, so older configs keep their hashes)."""
    record = getattr(obj, "record", None)
    return dict(record()) if callable(record) else dataclasses.asdict(obj)


def resolved_args(
    part: Any, kwargs: Mapping[str, Any] | None = None, skip: tuple[str, ...] = ("suite",), _depth: int = 3
) -> dict[str, Any]:
    """The configuration a built part runs with, every default filled in (JSON data), so that a
    changed default changes it (the results' config hash is computed over it):

    - the part's own ``resolved_config()`` when it has one (a part whose arguments are resolved
      in its constructor, e.g. a temperature that depends on the strategy);
    - else its ``config`` dataclass (the students);
    - else its constructor's parameters (but those in ``skip``: the suite a part is built for),
      each read back from the attribute of the same name (``self.verify``), else taken from
      ``kwargs`` (what it was built with), else the signature's default; a parameter found in none
      of these is listed under ``"_unresolved"``.

    Nested objects are given by class path and their own resolved arguments (to depth 3)."""
    own = getattr(part, "resolved_config", None)
    if callable(own):
        return _plain(dict(own()), _depth)
    cfg = getattr(part, "config", None)
    if cfg is not None and dataclasses.is_dataclass(cfg) and not inspect.isclass(cfg):
        return _plain(_fields(cfg), _depth)
    given = dict(kwargs or {})
    try:
        params = list(inspect.signature(type(part).__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # a builtin: what was given
        return _plain(given, _depth)
    out: dict[str, Any] = {}
    unresolved: list[str] = []
    for p in params:
        if p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in vars(part) if hasattr(part, "__dict__") else hasattr(part, p.name):
            out[p.name] = getattr(part, p.name)
        elif p.name in given:
            out[p.name] = given[p.name]
        elif p.default is not p.empty:
            out[p.name] = p.default
        else:
            unresolved.append(p.name)
    for k, v in given.items():  # **kwargs the signature does not name
        out.setdefault(k, v)
    plain = _plain(out, _depth)
    if unresolved:
        plain["_unresolved"] = unresolved
    return plain
