"""Leaderboard: per env and teacher, the statistics a reproducible comparison needs.

For each teacher (over its seeds):

- ``mean`` and a 95% bootstrap confidence interval of final test accuracy (percentile
  bootstrap, 10,000 resamples, fixed seed, so the table is reproducible);
- ``iqm``: interquartile mean (Agarwal et al. 2021, "Deep RL at the edge of the
  statistical precipice"): the mean of the middle 50% of episodes;
- ``auc``: area under the validation learning curve (accuracy vs. fraction of the budget
  spent, trapezoid rule, so 1.0 is perfect from the first example);
- ``examples_to_X``: data efficiency, the mean number of training examples until mean
  validation accuracy first reaches X (default 0.25), over the episodes that reached
  it, with ``reached`` the fraction of episodes that did;
- ``retained``: final test accuracy as a fraction of the reference teacher's accuracy on
  the same test set (the IOA paper's headline measure);
- ``p_vs_uniform``: Welch's t-test of final test accuracy against the ``uniform`` teacher
  (as TeachMyAgent reports against random).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from distillgym.errors import UnknownNameError, did_you_mean
from distillgym.stats import welch

__all__ = ["leaderboard", "bootstrap_ci", "iqm", "curve_auc", "examples_to", "render", "FORMATS"]

FORMATS = ("md", "csv", "json")


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 10_000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; ``(nan, nan)`` with fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_resamples, len(x)))].mean(axis=1)
    a = (1 - confidence) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean (25% trimmed at each end, as scipy.stats.trim_mean)."""
    from scipy import stats

    return float(stats.trim_mean(np.asarray(values, dtype=float), 0.25))


def curve_auc(curve: Sequence[Sequence[float]]) -> float:
    """Area under (examples, accuracy) points, examples normalised by the last point."""
    pts = np.asarray(curve, dtype=float)
    if len(pts) < 2 or pts[-1, 0] <= 0:
        return float("nan")
    x = pts[:, 0] / pts[-1, 0]
    return float(np.sum((x[1:] - x[:-1]) * (pts[1:, 1] + pts[:-1, 1]) / 2))


def examples_to(curve: Sequence[Sequence[float]], threshold: float) -> float:
    """Examples spent when validation accuracy first reaches ``threshold`` (nan if never)."""
    for examples, acc in curve:
        if acc >= threshold:
            return float(examples)
    return float("nan")


def leaderboard(episodes: Sequence[dict[str, Any]], baseline: str = "uniform",
                threshold: float = 0.25) -> list[dict[str, Any]]:
    """One row per (env, teacher), sorted by env then mean final test accuracy."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in episodes:
        groups.setdefault((e["env"], e["teacher"]), []).append(e)
    rows = []
    for (env, teacher), eps in groups.items():
        eps = sorted(eps, key=lambda e: e["seed"])
        acc = [e["final_test_accuracy"] for e in eps]
        lo, hi = bootstrap_ci(acc)
        reach = [examples_to(e.get("curve", []), threshold) for e in eps]
        reached = [r for r in reach if not math.isnan(r)]
        retained = [e["final_test_accuracy"] / e["reference_test_accuracy"] for e in eps
                    if e.get("reference_test_accuracy")]
        row: dict[str, Any] = {
            "env": env,
            "teacher": teacher,
            "n": len(eps),
            "seeds": [e["seed"] for e in eps],
            "mean": float(np.mean(acc)),
            "ci_low": lo,
            "ci_high": hi,
            "iqm": iqm(acc),
            "auc": float(np.nanmean([curve_auc(e.get("curve", [])) for e in eps])) if eps else float("nan"),
            f"examples_to_{threshold:g}": float(np.mean(reached)) if reached else float("nan"),
            "reached": len(reached) / len(eps),
            "retained": float(np.mean(retained)) if retained else float("nan"),
            "examples": float(np.mean([e.get("examples", 0) for e in eps])),
            "seconds": float(np.mean([e.get("seconds", 0.0) for e in eps])),
            "invalid_actions": int(sum(e.get("invalid_actions", 0) for e in eps)),
        }
        base = groups.get((env, baseline))
        if base is not None and teacher != baseline:
            t, p = welch(acc, [b["final_test_accuracy"] for b in base])
            row[f"t_vs_{baseline}"], row[f"p_vs_{baseline}"] = t, p
        rows.append(row)
    return sorted(rows, key=lambda r: (r["env"], -r["mean"]))


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def render(rows: Sequence[dict[str, Any]], fmt: str = "md", baseline: str = "uniform", threshold: float = 0.25) -> str:
    if fmt not in FORMATS:
        raise UnknownNameError(f"unknown format {fmt!r}: {did_you_mean(fmt, FORMATS)}")
    if fmt == "json":
        return json.dumps(list(rows), indent=2)
    eff = f"examples_to_{threshold:g}"
    cols = ["teacher", "n", "mean", "ci_low", "ci_high", "iqm", "auc", eff, "reached", "retained",
            f"p_vs_{baseline}", "invalid_actions", "seconds"]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["env", *cols])
        for r in rows:
            w.writerow([r["env"], *[r.get(c, "") for c in cols]])
        return buf.getvalue()
    out = []
    for env in dict.fromkeys(r["env"] for r in rows):
        out.append(f"### {env}\n")
        out.append(f"| teacher | n | final test acc. | 95% bootstrap CI | IQM | AUC | examples to {threshold:g} val. acc. "
                   f"(reached) | retained | Welch p vs {baseline} | invalid actions | s / episode |")
        out.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in (r for r in rows if r["env"] == env):
            out.append(
                f"| {r['teacher']} | {r['n']} | {_f(r['mean'])} | [{_f(r['ci_low'])}, {_f(r['ci_high'])}] | "
                f"{_f(r['iqm'])} | {_f(r['auc'])} | {_f(r[eff], 0)} ({r['reached']:.0%}) | {_f(r['retained'])} | "
                f"{_f(r.get(f'p_vs_{baseline}'), 4)} | {r['invalid_actions']} | {_f(r['seconds'], 1)} |"
            )
        out.append("")
    return "\n".join(out)
