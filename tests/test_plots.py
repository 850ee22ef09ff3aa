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
