"""Plots of a results directory: learning curves and end-of-episode skill heatmaps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import require

__all__ = ["plot_results"]


def plot_results(results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write ``learning_curves.png`` and ``heatmaps.png`` (one per env) and return their paths."""
    require("matplotlib", "plotting", "plots").use("Agg")
    import matplotlib.pyplot as plt

    from distillgym.bench import read_results
    from distillgym.stats import mean_ci

    episodes, _ = read_results(results_dir)
    out = Path(out_dir) if out_dir else Path(results_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    by_env: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for e in episodes:
        by_env.setdefault(e["env"], {}).setdefault(e["teacher"], []).append(e)
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
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols + 1.5, 3.0 * rows), squeeze=False)
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
    return paths
