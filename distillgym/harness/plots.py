"""Plots of a results directory: learning curves, end-of-episode skill heatmaps, and accuracy against cost."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError
from distillgym.runtime import pyplot

__all__ = ["plot_results", "plot_costs", "teacher_style", "curve_band"]

_LINESTYLES = ("-", "--", ":", "-.")
_REGISTERED_COLOURS = 40
"""Palette slots for registered teachers (in registration order); the other 20 are for other labels."""


def _palette() -> list[Any]:
    """60 colours, the most distinct first (neighbours in the registry get unlike colours): tab10, then the
    darkest and second shades of tab20b and tab20c, then their lighter shades, then tab20's light ones."""
    import matplotlib

    cm = matplotlib.colormaps
    b, c = cm["tab20b"].colors, cm["tab20c"].colors
    out = list(cm["tab10"].colors)
    for shade in (0, 2, 1, 3):
        out += [b[i + shade] for i in range(0, 20, 4)] + [c[i + shade] for i in range(0, 20, 4)]
    return out + list(cm["tab20"].colors[1::2])


def teacher_style(label: str) -> dict[str, Any]:
    """The colour and line style of a teacher label, the same in every plot of every results folder.

    A registered teacher name (``uniform``, ``ioa``, ...) takes the colour at its position in the
    registry (:data:`distillgym.teachers.TEACHERS`, in registration order: a teacher registered later
    never moves an earlier one's colour); any other label (a custom label, a ``ppo:PATH``) takes a
    colour and line style from a hash of the label, among the palette's last 20 colours. A display
    name ``label@HASH`` (one label in two configurations) is styled as ``label``."""
    import hashlib

    from distillgym.teachers import TEACHERS

    base = str(label).split("@")[0]
    palette = _palette()
    names = list(TEACHERS)  # registration order
    reserved = _REGISTERED_COLOURS  # fixed, so that registering a teacher moves no other label's colour
    if base in names and names.index(base) < reserved:
        i = names.index(base)
        return {"color": palette[i], "linestyle": _LINESTYLES[0]}
    h = int(hashlib.sha256(base.encode()).hexdigest(), 16)
    free = len(palette) - reserved
    return {"color": palette[reserved + h % free], "linestyle": _LINESTYLES[(h // free) % len(_LINESTYLES)]}


def curve_band(ys: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``ys`` (seeds x points): the mean and the percentile bootstrap interval of the mean
    (:func:`distillgym.harness.stats.bootstrap_ci`, seeded), which lies within the values' range, so an
    accuracy's band stays within [0, 1] (a t interval of n = 3 accuracies near 0 runs below 0); NaN with
    fewer than two seeds."""
    from distillgym.harness.stats import bootstrap_ci

    ys = np.asarray(ys, dtype=float)
    mean = ys.mean(axis=0)
    band = np.array([bootstrap_ci(ys[:, i], confidence, n_resamples=2000) for i in range(ys.shape[1])])
    return mean, band[:, 0], band[:, 1]


def plot_costs(rows: Sequence[dict[str, Any]], env: str, path: str | os.PathLike[str],
               baseline: str = "uniform") -> Path:
    """Final test accuracy against model tokens per episode, one point per leaderboard row of ``env``.

    Args:
        rows: rows of :func:`distillgym.harness.leaderboard.leaderboard` (any envs; only ``env``'s are drawn).
        env: the env id to plot.
        path: the PNG to write.
        baseline: a label whose mean is drawn as a dashed horizontal line (skipped when absent).

    x is the row's ``model_tokens`` (teacher + engine tokens, input + output, mean per episode) on a
    log axis; y is the mean final test accuracy with its 95% bootstrap interval as an error bar.
    Teachers that used no model tokens (procedural ones) cannot sit on a log axis: they are drawn in
    a separate left panel labelled "0 tokens", side by side, sharing the y axis. Reference rows are
    drawn as stars; rows with unknown token counts are left out and named in the title. Returns
    ``path``."""
    plt = pyplot()
    mine = [r for r in rows if r["env"] == env and r["n"] > 0]
    if not mine:
        raise ConfigError(f"plot_costs: no rows with ok episodes for env {env!r}; envs present: "
                          f"{sorted({r['env'] for r in rows})}")
    unknown = [r for r in mine if math.isnan(r["model_tokens"])]
    zero = sorted((r for r in mine if r["model_tokens"] == 0), key=lambda r: -r["mean"])
    paid = sorted((r for r in mine if r["model_tokens"] > 0), key=lambda r: r["model_tokens"])
    widths = [max(1.0, 0.45 * len(zero))] * bool(zero) + [6.0] * bool(paid)
    fig, axes = plt.subplots(1, len(widths), sharey=True, squeeze=False, figsize=(max(6.5, sum(widths) + 2.0), 5.2),
                             gridspec_kw={"width_ratios": widths})
    axes = list(axes[0])

    def point(ax: Any, x: float, r: dict[str, Any], k: int) -> None:
        err = [[max(0.0, r["mean"] - r["ci_low"])], [max(0.0, r["ci_high"] - r["mean"])]] if not math.isnan(
            r["ci_low"]) else None
        ax.errorbar([x], [r["mean"]], yerr=err, fmt="*" if r.get("reference") else "o", ms=11 if r.get("reference") else 6,
                    color=teacher_style(r["teacher"])["color"], capsize=3,
                    label=r["teacher"] + (" (reference)" if r.get("reference") else ""))

    k = 0
    if zero:
        ax = axes[0]
        for i, r in enumerate(zero):
            point(ax, i, r, k)
            k += 1
        ax.set_xticks(range(len(zero)), [r["teacher"] + (" (ref.)" if r.get("reference") else "") for r in zero],
                      rotation=60, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(zero) - 0.4)
        ax.set_xlabel("0 tokens (procedural)")
    if paid:
        ax = axes[-1]
        for r in paid:
            point(ax, r["model_tokens"], r, k)
            ax.annotate(r["teacher"], (r["model_tokens"], r["mean"]), textcoords="offset points", xytext=(6, 4),
                        fontsize=8)
            k += 1
        ax.set_xscale("log")
        lo, hi = paid[0]["model_tokens"], paid[-1]["model_tokens"]
        ax.set_xlim(lo / 3, hi * 3)
        ax.set_xlabel("model tokens per episode (teacher + engine, log scale)")
    axes[0].set_ylabel("final test accuracy (mean, 95% bootstrap CI)")
    base = [r for r in mine if r.get("label", r["teacher"]) == baseline]
    base = base if len(base) == 1 else []  # absent, or several configurations: no line
    for ax in axes:
        ax.grid(alpha=0.3)
        if base:
            line = ax.axhline(base[0]["mean"], color="grey", linestyle="--", linewidth=1)
    if base:
        axes[-1].legend([line], [f"{baseline} mean"], loc="best", fontsize=8)
    title = f"{env}: final test accuracy vs model tokens"
    if not paid:
        title += "\n(every teacher here used 0 model tokens)"
    if unknown:
        title += f"\n(token counts unknown, not drawn: {', '.join(r['teacher'] for r in unknown)})"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def plot_results(results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None,
                 baseline: str = "uniform") -> list[Path]:
    """Write, per env, ``learning_curves_ENV.png``, ``heatmaps_ENV.png`` and ``costs_ENV.png``
    (:func:`plot_costs`) from the ok episodes of a results directory, and return their paths.

    One curve / heatmap per leaderboard row (``(env, config_hash, label)``, named as in the leaderboard);
    failed episodes are left out."""
    plt = pyplot()

    from distillgym.harness.leaderboard import groups, leaderboard
    from distillgym.harness.results import read_results

    episodes, _ = read_results(results_dir)
    out = Path(out_dir) if out_dir else Path(results_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    by_env: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (env, _h, _label), (name, eps) in groups(episodes).items():
        ok = [e for e in eps if e.get("status", "ok") == "ok"]
        if ok:
            by_env.setdefault(env, {})[name] = ok
    rows = leaderboard([e for env in by_env.values() for eps in env.values() for e in eps], baseline=None)
    for env, teachers in by_env.items():
        tag = env.replace("/", "_")
        fig, ax = plt.subplots(figsize=(8, 5))
        for name, eps in sorted(teachers.items()):
            style = teacher_style(name)
            curves = [np.asarray(e["curve"], dtype=float) for e in eps]
            n = min(len(c) for c in curves)
            x = curves[0][:n, 0]
            m, low, high = curve_band(np.stack([c[:n, 1] for c in curves]))
            ax.plot(x, m, label=f"{name} (n={len(eps)})", **style)
            if len(eps) > 1:
                ax.fill_between(x, np.clip(low, 0, 1), np.clip(high, 0, 1), alpha=0.12, color=style["color"])
        ax.set_xlabel("training examples")
        ax.set_ylabel("mean validation accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{env}: learning curves\n(mean over seeds; band: 95% bootstrap interval of the mean)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = out / f"learning_curves_{tag}.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)

        names = sorted(teachers)
        cols = min(4, len(names))
        nrows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(nrows, cols, figsize=(3.0 * cols + 1.5, 3.0 * nrows + 0.8), squeeze=False,
                                 layout="constrained")
        for k, (ax, name) in enumerate(zip(axes.flat, names, strict=False)):
            eps = teachers[name]
            mat = np.mean([np.asarray(e["test_accuracy_matrix"], dtype=float) for e in eps], axis=0)
            im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis", aspect="auto")
            skills = eps[0].get("skills") or [str(i) for i in range(mat.shape[0])]
            ax.set_yticks(range(mat.shape[0]), skills if k % cols == 0 else [], fontsize=7)
            ax.set_xticks(range(mat.shape[1]), [str(j) for j in range(mat.shape[1])], fontsize=7)
            ax.set_xlabel("difficulty", fontsize=8)
            if k % cols == 0:
                ax.set_ylabel("skill", fontsize=8)
            ax.set_title(f"{name} (n={len(eps)})", fontsize=9)
            for i in range(mat.shape[0]):
                for j in range(mat.shape[1]):
                    ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if mat[i, j] < 0.5 else "black")
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="test accuracy")
        fig.suptitle(f"{env}: final test accuracy per skill x difficulty (mean over seeds)", fontsize=10)
        p = out / f"heatmaps_{tag}.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)

        paths.append(plot_costs(rows, env, out / f"costs_{tag}.png", baseline))
    return paths
