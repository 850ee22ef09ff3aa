"""Tune a teacher's own hyperparameters on tuning seeds, as the Aioli paper does for every mixing method.

``distillgym tune TEACHER --env ID`` (:func:`tune`) runs every setting of a small grid of the
teacher's hyperparameters (:data:`GRIDS`, or ``--grid JSON``) on a few *tuning seeds* (default
:data:`DEFAULT_TUNE_SEEDS`, disjoint from every benchmark's seeds and from the teacher-training range
:data:`distillgym.seeding.TEACHER_TRAINING_SEEDS`; :func:`check_tune_seeds`), and picks the setting
with the best mean over those seeds of ``by`` (a tie keeps the default): ``"val"`` (default), the final **validation**
accuracy of the episode, which is what the teacher's user can see (the learned teacher's trainer
optimises the same signal), or ``"test"``, the final hidden-test accuracy of the tuning episodes. The
tuned setting is then evaluated beside the default on held-out seeds by an ordinary benchmark (the
tuning seeds' numbers overstate the winner: it was picked on them). The run is a benchmark run
(:func:`distillgym.harness.bench.run_benchmark`) into ``OUT/`` (resumable; ``distillgym leaderboard
OUT`` works on it), then ``OUT/tune.json`` and ``OUT/TUNE.md`` (the table, the best and the default
setting, and the ``[[teachers]]`` entry of the tuned setting for a benchmark TOML).

The grids (each includes the teacher's default, marked in the table; why these axes):

- ``doremi``: ``eta`` (the step size of the log-weights; default 1.0) x ``reference_at`` (``"step"``:
  compare with the reference after as much data as the student has had; ``"final"``: with the
  reference at the end of its run, DoReMi's fixed reference model, i.e. the reference run's length);
- ``odm``: ``smoothing`` (of the exponentiated rewards; default 0.9) x ``weighting`` (``"exp"``, the
  paper's Exp3 rule, or ``"linear"``, the code's group update: how hard it exploits);
- ``skill-it``: ``eta`` (default 0.5) x ``window`` (evaluations summed; default 3);
- ``aioli``: ``eta`` (default 0.2) x ``round_steps`` (env steps per round of probe + play; default 4:
  how much of the budget goes to probing).

Every setting plays with ``distillgym run --teacher NAME --teacher-kwargs JSON``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, DistillGymError, UnknownNameError, check_choice, did_you_mean
from distillgym.seeding import parse_seeds

__all__ = [
    "GRIDS",
    "DEFAULT_TUNE_SEEDS",
    "BY",
    "FORMAT",
    "grid_settings",
    "parse_seeds",
    "setting_label",
    "check_tune_seeds",
    "tune",
    "render_tune",
]

FORMAT = "distillgym.tune/1"
DEFAULT_TUNE_SEEDS = (22000, 22001, 22002)
"""Tuning seeds: not a benchmark's, not the headroom search's defaults (20000-20002, 21000-21009),
not the teacher-training range."""
BY = ("val", "test")
GRIDS: dict[str, dict[str, list[Any]]] = {
    "doremi": {"eta": [0.3, 1.0, 3.0], "reference_at": ["step", "final"]},
    "odm": {"smoothing": [0.5, 0.9, 0.99], "weighting": ["exp", "linear"]},
    "skill-it": {"eta": [0.1, 0.5, 2.0], "window": [1, 3]},
    "aioli": {"eta": [0.05, 0.2, 1.0], "round_steps": [4, 8]},
}
"""The documented grid of each mixer's own hyperparameters (module docstring): axis -> values."""


def grid_settings(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's axes (the last axis varies fastest), as kwargs dicts."""
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"a grid is a non-empty JSON object of argument -> list of values, got {grid!r}")
    for k, v in grid.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not v:
            raise ConfigError(f"grid axis {k!r} must be a non-empty list of values, got {v!r}")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def setting_label(teacher: str, kwargs: dict[str, Any]) -> str:
    """``teacher[k=v,...]`` (``teacher`` alone for no arguments)."""
    if not kwargs:
        return teacher
    return f"{teacher}[{','.join(f'{k}={v}' for k, v in kwargs.items())}]"


def _defaults(teacher: str) -> dict[str, Any]:
    """The teacher's constructor defaults (by its signature)."""
    import inspect

    from distillgym.teachers import TEACHERS

    if teacher not in TEACHERS:
        raise UnknownNameError(f"unknown teacher {teacher!r}: {did_you_mean(teacher, sorted(TEACHERS))}")
    sig = inspect.signature(TEACHERS[teacher])
    return {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


def check_tune_seeds(seeds: Sequence[int], benchmarks: dict[str, list[int]] | None = None) -> None:
    """:class:`ConfigError` unless ``seeds`` are distinct, non-negative, outside the teacher-training range
    and outside every benchmark's seeds (the shipped TOMLs and ``./benchmarks/suites/``)."""
    from distillgym.seeding import TEACHER_TRAINING_SEEDS

    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ConfigError(f"tuning seeds must be non-negative integers, at least one, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"tuning seeds repeat: {seeds}")
    reserved = [s for s in seeds if s in TEACHER_TRAINING_SEEDS]
    if reserved:
        raise ConfigError(f"tuning seeds {reserved} lie in the teacher-training range {TEACHER_TRAINING_SEEDS}")
    if benchmarks is None:
        from distillgym.harness.benchmark import list_benchmarks, load_benchmark

        benchmarks = {}
        for name, path in list_benchmarks().items():
            try:
                benchmarks[name] = list(load_benchmark(str(path)).seeds)
            except DistillGymError:
                continue
    for name, used in benchmarks.items():
        clash = sorted(set(seeds) & set(used))
        if clash:
            raise ConfigError(f"tuning seeds {clash} are seeds of the benchmark {name!r}: tune on seeds no benchmark "
                              f"evaluates on (default {DEFAULT_TUNE_SEEDS[0]}-{DEFAULT_TUNE_SEEDS[-1]})")


def tune(
    teacher: str,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    seeds: Sequence[int] = DEFAULT_TUNE_SEEDS,
    grid: dict[str, Sequence[Any]] | None = None,
    by: str = "val",
    out: str | os.PathLike[str] | None = None,
    workers: int = 1,
    executor: str = "local",
    progress: bool = True,
    say: Callable[[str], None] | None = None,
    command: str | None = None,
    **run_kwargs: Any,
) -> dict[str, Any]:
    """Run ``teacher``'s grid (``grid`` or :data:`GRIDS`) on ``seeds`` of ``env_id`` and pick the best
    setting by ``by`` (see the module docstring); writes ``OUT/tune.json`` and ``OUT/TUNE.md`` and
    returns the report. ``run_kwargs`` go to :func:`distillgym.harness.bench.run_benchmark`."""
    from distillgym.harness.bench import run_and_collect
    from distillgym.harness.benchmark import Benchmark, TeacherEntry

    check_choice("tuning criterion", by, BY)
    say = say or (lambda msg: print(f"distillgym: {msg}", file=sys.stderr, flush=True))
    if grid is None:
        if teacher not in GRIDS:
            raise UnknownNameError(f"no built-in grid for {teacher!r} (grids: {sorted(GRIDS)}); pass --grid JSON, "
                                   "e.g. '{\"eta\": [0.1, 1.0]}'")
        grid = GRIDS[teacher]
    defaults = _defaults(teacher)
    unknown = [k for k in grid if k not in defaults]
    if unknown:
        raise ConfigError(f"grid axes {unknown} are not arguments of {teacher!r}: {did_you_mean(unknown[0], defaults)}")
    settings = grid_settings(grid)
    default = {k: defaults[k] for k in grid}
    if default not in settings:
        settings.append(default)  # the default always runs beside the grid
    seeds = [int(s) for s in seeds]
    check_tune_seeds(seeds)
    env_kwargs = dict(env_kwargs or {})
    out_dir = Path(out or Path("results") / "tune" / f"{teacher}-{env_id.split('/')[-1]}")
    labels = [setting_label(teacher, s) for s in settings]
    bench = Benchmark(f"tune-{teacher}", env_id, seeds, [TeacherEntry(teacher, dict(s), lab)
                                                        for s, lab in zip(settings, labels, strict=True)],
                      dict(env_kwargs), description=f"tuning {teacher}'s hyperparameters on {env_id}")
    bench.validate()
    say(f"tune {teacher} on {env_id}: {len(settings)} settings x {len(seeds)} seeds -> {out_dir}")
    t0 = time.perf_counter()
    mine, _, _ = run_and_collect(bench, out_dir, "the tuning", workers=workers, executor=executor,
                                 progress=progress, say=say, **run_kwargs)
    rows = []
    for s, lab in zip(settings, labels, strict=True):
        eps = sorted((e for e in mine if e["teacher"] == lab), key=lambda e: e["seed"])
        val = [float(e["val_accuracy_end"]) for e in eps]
        test = [float(e["final_test_accuracy"]) for e in eps]
        rows.append({"label": lab, "kwargs": s, "default": s == default, "seeds": [e["seed"] for e in eps],
                     "val": val, "test": test, "mean_val": float(np.mean(val)) if val else math.nan,
                     "mean_test": float(np.mean(test)) if test else math.nan})
    key = "mean_val" if by == "val" else "mean_test"
    # best first; a tie goes to the default (the grid must beat it to move), then by label
    ranked = sorted(rows, key=lambda r: (-r[key] if math.isfinite(r[key]) else math.inf, not r["default"], r["label"]))
    best = ranked[0]
    report = {
        "format": FORMAT,
        "teacher": teacher,
        "env": env_id,
        "env_kwargs": env_kwargs,
        "seeds": seeds,
        "grid": {k: list(v) for k, v in grid.items()},
        "by": by,
        "rows": ranked,
        "best": {"label": best["label"], "kwargs": best["kwargs"]},
        "default": {"label": setting_label(teacher, default), "kwargs": default},
        "seconds": time.perf_counter() - t0,
        "command": command or "distillgym " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    }
    (out_dir / "tune.json").write_text(json.dumps(report, indent=1, default=repr) + "\n")
    (out_dir / "TUNE.md").write_text(render_tune(report))
    return report


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def render_tune(report: dict[str, Any]) -> str:
    """The tuning report as Markdown: the table (ranked), the best setting and its benchmark entry."""
    by = report["by"]
    lines = [
        f"# Tuning `{report['teacher']}` on `{report['env']}`",
        "",
        f"Grid {json.dumps(report['grid'])} on tuning seeds {report['seeds']} (disjoint from every benchmark's), "
        f"ranked by the mean final {'validation' if by == 'val' else 'hidden-test'} accuracy. These numbers pick the "
        "setting; they overstate it (it was chosen on these seeds): evaluate it on held-out seeds.",
        "",
        f"Command: `{report['command']}`",
        "",
        "| rank | setting | mean validation | mean test | seeds |",
        "|---:|---|---:|---:|---:|",
    ]
    for i, r in enumerate(report["rows"], 1):
        mark = " (default)" if r["default"] else ""
        lines.append(f"| {i} | `{r['label']}`{mark} | {r['mean_val']:.4f} | {r['mean_test']:.4f} | {len(r['seeds'])} |")
    kw = report["best"]["kwargs"]
    lines += [
        "",
        f"Best: `{report['best']['label']}`; default: `{report['default']['label']}`.",
        "",
        "Benchmark entry of the tuned setting:",
        "",
        "```toml",
        "[[teachers]]",
        f'name = "{report["teacher"]}"',
        f'label = "{report["teacher"]}-tuned"',
        "kwargs = { " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in kw.items()) + " }",
        "```",
        "",
    ]
    return "\n".join(lines)
