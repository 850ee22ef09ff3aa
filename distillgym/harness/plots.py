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

__all__ = ["plot_results", "plot_costs"]


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
    colours = plt.get_cmap("tab10").colors

    def point(ax: Any, x: float, r: dict[str, Any], k: int) -> None:
        err = [[max(0.0, r["mean"] - r["ci_low"])], [max(0.0, r["ci_high"] - r["mean"])]] if not math.isnan(
            r["ci_low"]) else None
        ax.errorbar([x], [r["mean"]], yerr=err, fmt="*" if r.get("reference") else "o", ms=11 if r.get("reference") else 6,
                    color=colours[k % 10], capsize=3, label=r["teacher"] + (" (reference)" if r.get("reference") else ""))

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
    from distillgym.harness.stats import mean_ci

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
        colours = plt.get_cmap("tab20").colors
        for k, (name, eps) in enumerate(sorted(teachers.items())):
            style = {"color": colours[(2 * k) % 20 + (k // 10) % 2], "linestyle": ("-", "--", ":")[k % 3]}
            curves = [np.asarray(e["curve"], dtype=float) for e in eps]
            n = min(len(c) for c in curves)
            x = curves[0][:n, 0]
            ys = np.stack([c[:n, 1] for c in curves])
            stats = [mean_ci(ys[:, i]) for i in range(n)]
            m = np.array([s[0] for s in stats])
            ax.plot(x, m, label=f"{name} (n={len(eps)})", **style)
            if len(eps) > 1:
                ax.fill_between(x, [s[1] for s in stats], [s[2] for s in stats], alpha=0.12, color=style["color"])
        ax.set_xlabel("training examples")
        ax.set_ylabel("mean validation accuracy")
        ax.set_title(f"{env}: learning curves (mean and 95% CI over seeds)")
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
        fig, axes = plt.subplots(nrows, cols, figsize=(3.0 * cols + 1.5, 3.0 * nrows), squeeze=False)
        for k, (ax, name) in enumerate(zip(axes.flat, names, strict=False)):
            eps = teachers[name]
            mat = np.mean([np.asarray(e["test_accuracy_matrix"], dtype=float) for e in eps], axis=0)
            im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis", aspect="auto")
            skills = eps[0].get("skills") or [str(i) for i in range(mat.shape[0])]
            ax.set_yticks(range(mat.shape[0]), skills if k % cols == 0 else [], fontsize=7)
            ax.set_xticks(range(mat.shape[1]), [f"L{j}" for j in range(mat.shape[1])], fontsize=7)
            ax.set_title(f"{name}", fontsize=9)
            for i in range(mat.shape[0]):
                for j in range(mat.shape[1]):
                    ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if mat[i, j] < 0.5 else "black")
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="test accuracy")
        fig.suptitle(f"{env}: test accuracy per skill x difficulty at episode end (mean over seeds)", fontsize=10)
        p = out / f"heatmaps_{tag}.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)

        paths.append(plot_costs(rows, env, out / f"costs_{tag}.png", baseline))
    return paths
