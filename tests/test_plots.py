"""The cost plot (accuracy against model tokens) and the plots of a results directory."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("matplotlib")

from distillgym.errors import ConfigError  # noqa: E402
from distillgym.harness.leaderboard import leaderboard  # noqa: E402
from distillgym.harness.plots import plot_costs, plot_results  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _ep(teacher, seed, acc, tokens=None, **extra):
    rec = {"format": "distillgym.results/1", "type": "episode", "env": "distillgym/Test-v0", "teacher": teacher,
           "seed": seed, "config_hash": f"h-{teacher}", "final_test_accuracy": acc, "reference_test_accuracy": 1.0,
           "examples": 400, "curve": [[0, 0.0], [200, acc / 2], [400, acc]], "seconds": 1.0,
           "test_accuracy_matrix": [[acc, acc], [acc / 2, 0.0]], "skills": ["a", "b"]}
    if tokens is not None:
        rec["costs"] = {"teacher_tokens_in": tokens, "teacher_tokens_out": tokens // 10, "teacher_calls": 4,
                        "engine_tokens_in": 0, "engine_tokens_out": 0, "engine_calls": 0,
                        "student_tokens": 1e5, "student_flops": 1e11, "examples": 400}
    rec.update(extra)
    return rec


def _episodes():
    eps = []
    for s in range(4):
        eps += [_ep("uniform", s, 0.30 + 0.01 * s), _ep("ioa", s, 0.33 + 0.005 * s), _ep("llm-choose", s, 0.35, 2000 + s),
                _ep("llm-writer", s, 0.28 + 0.02 * s, 90_000), _ep("oracle-lookahead", s, 0.6, reference_row=True)]
    eps.append(_ep("ioa", 4, 0.9, status="failed"))
    return eps


def test_cost_plot_with_procedural_and_llm_teachers(tmp_path):
    rows = leaderboard(_episodes())
    p = plot_costs(rows, "distillgym/Test-v0", tmp_path / "sub" / "costs.png")
    assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000
    # only procedural teachers: one panel; only paid ones: one panel
    free = leaderboard([e for e in _episodes() if "costs" not in e])
    assert plot_costs(free, "distillgym/Test-v0", tmp_path / "free.png").read_bytes()[:8] == PNG
    paid = leaderboard([e for e in _episodes() if "costs" in e])
    assert plot_costs(paid, "distillgym/Test-v0", tmp_path / "paid.png").read_bytes()[:8] == PNG
    with pytest.raises(ConfigError, match="distillgym/Test-v0"):
        plot_costs(rows, "distillgym/Other-v0", tmp_path / "x.png")


def test_plot_results_writes_the_three_plots_per_env(tmp_path):
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(e) + "\n" for e in _episodes()))
    paths = plot_results(tmp_path, tmp_path / "plots")
    assert sorted(p.name for p in paths) == ["costs_distillgym_Test-v0.png", "heatmaps_distillgym_Test-v0.png",
                                             "learning_curves_distillgym_Test-v0.png"]
    assert all(p.read_bytes()[:8] == PNG for p in paths)


# ---------------------------------------------------------------------------- issue 20, item 19
def _capture_figures(monkeypatch):
    """Record every figure plot_results saves (and still save it)."""
    import matplotlib.figure

    figs = {}
    original = matplotlib.figure.Figure.savefig

    def save(self, fname, *a, **k):
        figs[str(fname).rsplit("/", 1)[-1].split("_distillgym")[0]] = self
        self.canvas.draw()
        return original(self, fname, *a, **k)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", save)
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "close", lambda *a, **k: None)  # keep them for inspection
    return figs


def _low_accuracy_episodes(teachers):
    eps = []
    for k, t in enumerate(teachers):
        for s, acc in enumerate((0.0, 0.0, 0.09)):  # n = 3 accuracies near 0: a t interval runs below 0
            e = _ep(t, s, acc + 0.01 * k)  # teachers' means differ: the costs plot orders them by mean
            e["curve"] = [[0, 0.0], [200, acc], [400, 1.0 if s == 2 else 0.97]]  # and near 1
            eps.append(e)
    return eps


def test_learning_curve_bands_stay_within_0_and_1(tmp_path, monkeypatch):
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(e) + "\n" for e in _low_accuracy_episodes(["uniform"])))
    figs = _capture_figures(monkeypatch)
    plot_results(tmp_path, tmp_path / "plots")
    ax = figs["learning_curves"].axes[0]
    bands = [c for c in ax.collections if hasattr(c, "get_paths")]
    assert bands
    for band in bands:
        for path in band.get_paths():
            y = path.vertices[:, 1]
            assert y.min() >= 0.0 and y.max() <= 1.0, (y.min(), y.max())


def test_heatmaps_label_their_axes_and_titles_do_not_overlap(tmp_path, monkeypatch):
    eps = [_ep(t, s, 0.3 + 0.1 * s) for t in ("uniform", "ioa", "random", "stratified", "doremi") for s in range(2)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(e) + "\n" for e in eps))
    figs = _capture_figures(monkeypatch)
    plot_results(tmp_path, tmp_path / "plots")
    fig = figs["heatmaps"]
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == 5 and all(ax.get_xlabel() == "difficulty" for ax in heat)
    assert heat[0].get_ylabel() == "skill"
    renderer = fig.canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer)
    for ax in heat:
        assert not top.overlaps(ax.title.get_window_extent(renderer)), ax.get_title()


def test_one_teacher_has_one_colour_in_every_plot(tmp_path, monkeypatch):
    """The same label is drawn in the same colour in the learning curves and the costs plot, and in two
    results folders with different sets of teachers; different teachers differ."""
    from matplotlib.colors import to_hex

    colours = []
    for i, teachers in enumerate((["uniform", "ioa", "random"], ["aioli", "ioa", "my-custom-label"])):
        d = tmp_path / f"r{i}"
        d.mkdir()
        (d / "results.jsonl").write_text("".join(json.dumps(e) + "\n" for e in _low_accuracy_episodes(teachers)))
        figs = _capture_figures(monkeypatch)
        plot_results(d, d / "plots")
        curves = {line.get_label().split(" (n=")[0]: to_hex(line.get_color()) for line in figs["learning_curves"].axes[0].lines}
        costs = {}
        for ax in figs["costs"].axes:
            for container in ax.containers:
                costs[container.get_label()] = to_hex(container.lines[0].get_color())
        assert set(curves) == set(teachers) and {k: curves[k] for k in costs} == costs
        assert len(set(curves.values())) == len(teachers)
        colours.append(curves)
    assert colours[0]["ioa"] == colours[1]["ioa"]
