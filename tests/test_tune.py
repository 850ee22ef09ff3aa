"""``distillgym tune``: a teacher's hyperparameter grid on tuning seeds, the best by validation accuracy."""

from __future__ import annotations

import json

import pytest

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.harness.cli import main
from distillgym.harness.tune import (
    DEFAULT_TUNE_SEEDS,
    GRIDS,
    check_tune_seeds,
    grid_settings,
    parse_seeds,
    setting_label,
    tune,
)
from distillgym.seeding import TEACHER_TRAINING_SEEDS

TINY = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)


def test_grids_name_real_arguments_and_hold_the_default():
    from distillgym.harness.tune import _defaults

    for teacher, grid in GRIDS.items():
        defaults = _defaults(teacher)
        assert set(grid) <= set(defaults), teacher
        assert {k: defaults[k] for k in grid} in grid_settings(grid), f"{teacher}'s grid lacks its default"
        assert 4 <= len(grid_settings(grid)) <= 8


def test_grid_settings_labels_and_seeds():
    assert grid_settings({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert setting_label("odm", {"smoothing": 0.5}) == "odm[smoothing=0.5]" and setting_label("odm", {}) == "odm"
    assert parse_seeds("22000-22002,5") == [22000, 22001, 22002, 5]
    with pytest.raises(ConfigError, match="non-empty list"):
        grid_settings({"a": []})
    with pytest.raises(ConfigError, match="runs backwards"):
        parse_seeds("3-1")
    check_tune_seeds(DEFAULT_TUNE_SEEDS)  # the defaults clash with no benchmark
    with pytest.raises(ConfigError, match="benchmark 'b'"):
        check_tune_seeds([1, 2], {"b": [2, 3]})
    with pytest.raises(ConfigError, match="teacher-training range"):
        check_tune_seeds([TEACHER_TRAINING_SEEDS.start], {})
    with pytest.raises(ConfigError, match="repeat"):
        check_tune_seeds([4, 4], {})


def test_tune_errors():
    with pytest.raises(UnknownNameError, match="no built-in grid"):
        tune("stratified", "distillgym/ArithMix-v2", TINY)
    with pytest.raises(ConfigError, match="not arguments of 'odm'"):
        tune("odm", "distillgym/ArithMix-v2", TINY, grid={"smothing": [0.5]})
    with pytest.raises(UnknownNameError, match="tuning criterion"):
        tune("odm", "distillgym/ArithMix-v2", TINY, by="loss")


@pytest.mark.slow
def test_tune_runs_the_grid_and_the_default_and_keeps_the_default_on_a_tie(tmp_path, capsys):
    out = tmp_path / "tune"
    code = main(["tune", "odm", "--env", "distillgym/ArithMix-v2", "--env-kwargs", json.dumps(TINY), "--seeds", "22000",
                 "--grid", '{"smoothing": [0.5, 0.9], "weighting": ["linear"]}', "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "tune.json").read_text())
    labels = [r["label"] for r in report["rows"]]
    assert sorted(labels) == ["odm[smoothing=0.5,weighting=linear]", "odm[smoothing=0.9,weighting=exp]",
                              "odm[smoothing=0.9,weighting=linear]"]  # the default (exp) runs beside the grid
    means = [r["mean_val"] for r in report["rows"]]
    assert means == sorted(means, reverse=True)
    top = [r for r in report["rows"] if r["mean_val"] == means[0]]
    if any(r["default"] for r in top):
        assert report["rows"][0]["default"]
    assert report["best"]["label"] == report["rows"][0]["label"]
    md = (out / "TUNE.md").read_text()
    assert '[[teachers]]\nname = "odm"\nlabel = "odm-tuned"' in md
    assert "odm[smoothing=0.9,weighting=exp]" in capsys.readouterr().out
