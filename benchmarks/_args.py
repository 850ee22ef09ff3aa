"""Command-line arguments from a dataclass whose fields carry docstrings (CleanRL style)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
from typing import Any, TypeVar

T = TypeVar("T")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each dataclass field (read from the source)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[union-attr]
    return docs


def emit_json(result: dict[str, Any], out: str, to_stdout: bool) -> bool:
    """Write ``result`` to the file ``out`` (if given) and print it as JSON if ``to_stdout``;
    returns ``to_stdout``, so a script knows whether to print its tables instead."""
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
    if to_stdout:
        print(json.dumps(result, indent=1))
    return to_stdout


def parse_dataclass_args(cls: type[T], description: str, argv: list[str] | None = None) -> T:
    """``--field-name`` options for every field of ``cls``, with its docstring as help."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f"--{f.name.replace('_', '-')}"
        if f.type in ("bool", bool):
            parser.add_argument(name, action="store_true", help=docs.get(f.name, ""))
        else:
            typ: Any = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            parser.add_argument(name, type=typ, default=f.default, help=f"{docs.get(f.name, '')} (default: {f.default!r})")
    return cls(**vars(parser.parse_args(argv)))
