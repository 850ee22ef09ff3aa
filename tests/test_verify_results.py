"""``distillgym verify``: re-run recorded episodes; exact on this machine, drift when a record differs."""

from __future__ import annotations

import json

import pytest

from distillgym.errors import ConfigError
from distillgym.harness.bench import run_benchmark
from distillgym.harness.benchmark import load_benchmark
from distillgym.harness.cli import main
from distillgym.harness.verify import render_verify, select_episodes, verify

SUITE = """name = "v"
env = "distillgym/ArithSkills-v1"
seeds = [0, 1]
teachers = ["uniform"]

[env_kwargs]
budget = 512
examples_per_step = 256
n_val_per_cell = 4
n_test_per_cell = 4
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    d = tmp_path_factory.mktemp("verify")
    (d / "v.toml").write_text(SUITE)
    run_benchmark(load_benchmark(str(d / "v.toml")), d / "r", progress=False)
    return d / "r"


def test_selection_is_seeded_and_in_file_order():
    eps = [{"teacher": "t", "seed": s, "status": "ok" if s != 3 else "failed"} for s in range(10)]
    a = select_episodes(eps, 4, seed=0)
    assert a == select_episodes(eps, 4, seed=0) and len(a) == 4
    assert [e["seed"] for e in a] == sorted(e["seed"] for e in a) and all(e["seed"] != 3 for e in a)
    assert select_episodes(eps, 4, seed=1) != a
    assert len(select_episodes(eps, 50)) == 9


def test_verify_is_exact_on_this_machine_and_reports_drift_when_a_record_differs(recorded, tmp_path, capsys):
    # an altered copy: seed 1's final test accuracy and last validation point changed, seed 0's fingerprint removed
    lines = []
    for raw in (recorded / "results.jsonl").read_text().splitlines():
        r = json.loads(raw)
        if r["type"] == "episode" and r["seed"] == 1:
            true_acc = r["final_test_accuracy"]
            r["final_test_accuracy"] = true_acc + 0.25
            r["curve"][-1][1] += 0.5
        if r["type"] == "episode" and r["seed"] == 0:
            del r["fingerprint"]
        lines.append(json.dumps(r))
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")

    assert main(["verify", str(recorded), "--episodes", "2", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["summary"]["exact"] == 2 and rep["summary"]["drifted"] == 0
    for row in rep["rows"]:
        assert row["exact"] and row["drift"] == 0 and row["fingerprint_diff"] == {}
        assert row["same_actions"] is True and row["config_same"] is True and row["first_different_step"] is None

    assert main(["verify", str(tmp_path), "--episodes", "2", "--json", "--out", str(tmp_path / "rep.json")]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "rep.json").read_text())["summary"] == rep["summary"]
    rows = {r["seed"]: r for r in rep["rows"]}
    assert rows[0]["exact"] and rows[0]["fingerprint_diff"] == {"fingerprint": [None, "(recorded)"]}
    assert not rows[1]["exact"] and rows[1]["drift"] == pytest.approx(-0.25)
    assert rows[1]["now"] == true_acc and rows[1]["first_different_step"] == 2  # the curve's last point: step 2
    s = rep["summary"]
    assert s["exact"] == 1 and s["drifted"] == 1 and s["max_abs_drift"] == pytest.approx(0.25)
    md = render_verify(verify(tmp_path, episodes=1, seed=0))  # one rerun, to check the text
    assert "| uniform |" in md and "bit-identical" in md and "| key | recorded | rerun |" in md


def test_verify_tolerance_and_errors(recorded, tmp_path, capsys):
    lines = [json.loads(x) for x in (recorded / "results.jsonl").read_text().splitlines()]
    for r in lines:
        if r["type"] == "episode":
            r["final_test_accuracy"] += 0.001
    one = [r for r in lines if r["seed"] == 0]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in one) + "\n")
    assert main(["verify", str(tmp_path), "--tolerance", "0.01"]) == 0
    assert "0 of 1 bit-identical" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="episodes"):
        verify(recorded, episodes=0)
    assert main(["verify", str(tmp_path / "nothing")]) == 2


def test_verify_and_leaderboard_read_lines_of_an_older_hash_recipe(recorded, tmp_path):
    """Lines written with hash recipe 2 (before every part's arguments were resolved) are re-run and
    compared as usual; their config hash cannot be recomputed, which the report says."""
    from distillgym.harness.fingerprint import HASH_VERSION
    from distillgym.harness.leaderboard import leaderboard
    from distillgym.harness.results import read_results

    lines = []
    for raw in (recorded / "results.jsonl").read_text().splitlines():
        r = json.loads(raw)
        r["config_hash"] = "0123456789ab"  # what recipe 2 gave: another hash of the same configuration
        if r["type"] == "episode":
            r["config_hash_version"] = 2
        lines.append(json.dumps(r))
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    assert HASH_VERSION > 2
    rep = verify(tmp_path, episodes=1)
    row = rep["rows"][0]
    assert row["exact"] and row["same_actions"] is True
    assert row["config_same"] is None and row["config_hash_version"] == 2
    assert "recipe 2" in render_verify(rep)
    episodes, _ = read_results(tmp_path)
    rows = leaderboard(episodes)
    assert len(rows) == 1 and rows[0]["config_hash"] == "0123456789ab" and rows[0]["n"] == 2


def test_the_report_says_when_a_rerun_ran_on_another_machine():
    """A rerun whose fingerprint differs in the CPU (not only the commit) is named as such, so that
    drift measured on another CPU model is not read as a change of the code; a commit-only
    difference is not."""
    from distillgym.harness.verify import machine_keys

    assert machine_keys({"git_commit": ("a", "b"), "git_dirty": (False, True)}) == []
    assert machine_keys({"cpu": ("AMD EPYC", "Intel(R) Xeon(R) Processor"), "git_commit": ("a", "b")}) == ["cpu"]
    row = {"teacher": "uniform", "seed": 0, "threads": 1, "recorded": 0.5, "now": 0.45, "drift": -0.05,
           "exact": False, "first_different_step": 3, "same_actions": False, "config_same": True, "status": "ok",
           "fingerprint_recorded": {"cpu": "AMD EPYC", "git_commit": "a"},
           "fingerprint_now": {"cpu": "Intel(R) Xeon(R) Processor", "git_commit": "b"}}
    summary = {"n": 1, "exact": 0, "drifted": 1, "final_accuracy_equal": 0, "failed": 0, "skipped": 0,
               "mean_abs_drift": 0.05, "max_abs_drift": 0.05, "mean_drift": -0.05, "fingerprints_differ": 1,
               "other_machine": 1}
    report = {"results": "r", "chosen": 1, "of": 1, "seed": 0, "threads": None, "summary": summary,
              "rows": [dict(row, fingerprint_diff={"cpu": ("AMD EPYC", "Intel(R) Xeon(R) Processor"),
                                                   "git_commit": ("a", "b")})]}
    md = render_verify(report)
    assert "another machine or library build" in md and "differ in cpu" in md
    report["rows"] = [dict(row, fingerprint_diff={"git_commit": ("a", "b")})]
    assert "another machine" not in render_verify(report)
