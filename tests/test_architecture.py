"""The package's import graph: no circles between modules, no arrow up (or sideways) between wings.

distillgym is built in wings, and imports run one way (README, "Architecture")::

    harness -> teachers, interop -> train -> core -> parts -> base

Every module under ``distillgym/`` is read with :mod:`ast` (nothing is imported). An edge ``a -> b``
is any ``import``/``from ... import`` of ``b`` in ``a``, at module level or inside a function, and
any string constant ``"distillgym.b:attr"`` (a registry entry imported on first use, such as
``"distillgym.engines.llm_engine:LLMEngine"``). ``from distillgym.x import name`` is an edge to
``distillgym.x.name`` when that is a module, else to ``distillgym.x``. Python also runs each
package's ``__init__`` above an imported module; those implicit imports are not edges.

Run alone (``pytest tests/test_architecture.py``) or as a script for the whole report:
``python tests/test_architecture.py`` prints every circle and every arrow that breaks the rule.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "distillgym"

WINGS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    # (wing, rank, module prefixes): a module imports only its own wing and wings of lower rank.
    ("base", 0, ("distillgym.types", "distillgym.errors", "distillgym.seeding", "distillgym.registry",
                 "distillgym.runtime")),
    ("parts", 1, ("distillgym.tasks", "distillgym.students", "distillgym.engines", "distillgym.llm")),
    ("core", 2, ("distillgym", "distillgym.config", "distillgym.env", "distillgym.levels", "distillgym.rewards",
                 "distillgym.feedback", "distillgym.vector", "distillgym.envs")),
    ("train", 3, ("distillgym.train",)),
    ("teachers", 4, ("distillgym.teachers",)),
    ("interop", 4, ("distillgym.interop",)),
    ("harness", 5, ("distillgym.harness",)),
)
"""``distillgym`` alone (the package's ``__init__``: it registers the env ids) is in the core. ``train``
is below ``teachers`` because the ``ppo:PATH`` teacher loads the policies that ``train`` defines."""

_REGISTRY_STRING = re.compile(r"^(distillgym(?:\.\w+)+):[\w.]+$")


def module_files(repo: Path = REPO, package_dirs: Mapping[str, str] | None = None) -> dict[str, Path]:
    """``{module name: file}`` for every ``.py`` file of the package (``package_dirs``: package name ->
    folder, relative to ``repo``; default ``{"distillgym": "distillgym"}``)."""
    out: dict[str, Path] = {}
    for pkg, folder in (package_dirs or {PACKAGE: PACKAGE}).items():
        root = repo / folder
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([pkg, *parts])] = path
    return out


def _target(name: str, modules: Iterable[str]) -> str | None:
    """The module ``name`` means: itself, else its longest prefix that is a module."""
    known = set(modules)
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(files: Mapping[str, Path]) -> dict[str, dict[str, list[int]]]:
    """``{module: {imported module: [line numbers]}}`` over the package's own modules."""
    graph: dict[str, dict[str, list[int]]] = {m: {} for m in files}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join(pkg + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                m = _REGISTRY_STRING.match(node.value)
                if m:
                    names = [m.group(1)]
            for name in names:
                if name != PACKAGE and not name.startswith(PACKAGE + "."):
                    continue
                dst = _target(name, files)
                if dst is not None and dst != mod:
                    graph[mod].setdefault(dst, []).append(node.lineno)
    return graph


def circles(graph: Mapping[str, Mapping[str, Sequence[int]]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def wing_of(module: str, wings: Sequence[tuple[str, int, tuple[str, ...]]] = WINGS) -> tuple[str, int] | None:
    """``(wing, rank)`` of the longest matching prefix (``distillgym`` itself matches only itself)."""
    best: tuple[int, str, int] | None = None
    for wing, rank, prefixes in wings:
        for p in prefixes:
            hit = module == p if p == PACKAGE else (module == p or module.startswith(p + "."))
            if hit and (best is None or len(p) > best[0]):
                best = (len(p), wing, rank)
    return (best[1], best[2]) if best else None


def bad_arrows(graph: Mapping[str, Mapping[str, Sequence[int]]],
               wings: Sequence[tuple[str, int, tuple[str, ...]]] = WINGS) -> list[str]:
    """Every import from one wing into another that is not of lower rank, as readable lines."""
    out = []
    for src in sorted(graph):
        a = wing_of(src, wings)
        for dst, lines in sorted(graph[src].items()):
            b = wing_of(dst, wings)
            if a is None or b is None or a[0] == b[0] or b[1] < a[1]:
                continue
            out.append(f"{src} ({a[0]}) -> {dst} ({b[0]}), line {', '.join(map(str, lines))}")
    return out


def report(graph: Mapping[str, Mapping[str, Sequence[int]]],
           wings: Sequence[tuple[str, int, tuple[str, ...]]] = WINGS) -> str:
    cyc = circles(graph)
    bad = bad_arrows(graph, wings)
    lost = sorted(m for m in graph if wing_of(m, wings) is None)
    lines = [f"{len(graph)} modules, {sum(len(v) for v in graph.values())} import edges"]
    lines.append(f"circles: {len(cyc)}")
    lines += ["  " + " <-> ".join(c) for c in cyc]
    lines.append(f"arrows up or sideways between wings: {len(bad)}")
    lines += ["  " + b for b in bad]
    if lost:
        lines.append(f"modules in no wing: {lost}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- tests
def _graph() -> dict[str, dict[str, list[int]]]:
    return import_graph(module_files())


def test_every_module_is_in_a_wing():
    lost = sorted(m for m in _graph() if wing_of(m) is None)
    assert not lost, f"modules in no wing (add their prefix to WINGS in tests/test_architecture.py): {lost}"


def test_no_import_circles():
    cyc = circles(_graph())
    assert not cyc, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cyc)


def test_imports_run_down_the_wings():
    bad = bad_arrows(_graph())
    assert not bad, "imports up or sideways between wings:\n" + "\n".join(bad)


def test_the_graph_sees_function_level_and_registry_imports(tmp_path):
    pkg = tmp_path / "distillgym"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from distillgym.sub import b\n")
    (pkg / "sub" / "b.py").write_text("X = 'distillgym.c:Thing'\n")
    (pkg / "c.py").write_text("from .a import f\n")
    g = import_graph(module_files(tmp_path))
    assert set(g["distillgym.a"]) == {"distillgym.sub.b"}
    assert set(g["distillgym.sub.b"]) == {"distillgym.c"}
    assert set(g["distillgym.c"]) == {"distillgym.a"}
    assert circles(g) == [["distillgym.a", "distillgym.c", "distillgym.sub.b"]]


if __name__ == "__main__":
    print(report(_graph()))
