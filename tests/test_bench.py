"""The suite runner, resumability, corrupt-line handling, executors and the leaderboard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from distillgym.bench import RESULT_FORMAT, load_suite, read_results, run_suite
from distillgym.errors import ConfigError, UnknownNameError
from distillgym.leaderboard import bootstrap_ci, curve_auc, examples_to, iqm, leaderboard, render

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "benchmarks" / "suites" / "tiny.toml"


def _strip(rows):
    """Leaderboard rows without wall-clock fields, which differ between runs, as canonical
    JSON (so that NaN compares equal to NaN)."""
    return json.dumps([{k: v for k, v in r.items() if k != "seconds"} for r in rows], sort_keys=True)


def _cli(*args, env=None, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "distillgym.cli", *args],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "full"
    counts = run_suite(load_suite("tiny"), out, progress=False)
    assert counts == {**counts, "total": 4, "ran": 4, "skipped": 0}
    return out


def test_suites_load_and_validate(tmp_path):
    for name, env in (("quick", "v1"), ("standard", "v0"), ("tiny", "v1")):
        s = load_suite(name)
        assert s.teachers and s.seeds and s.env == f"distillgym/ArithSkills-{env}"
    assert len(load_suite("standard").seeds) >= 10
    with pytest.raises(UnknownNameError, match="quick"):
        load_suite("quik")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseeds = 2\nteachers = [{name = "uniform"}]\ncolour = "red"\n')
    with pytest.raises(ConfigError, match="colour"):
        load_suite(str(bad))
    bad.write_text('name = "x"\nseeds = 0\nteachers = [{name = "uniform"}]\n')
    with pytest.raises(ConfigError, match="seeds"):
        load_suite(str(bad))
    bad.write_text('name = "x"\nseeds = [1, 1]\nteachers = [{name = "uniform"}]\n')
    with pytest.raises(ConfigError, match="repeated"):
        load_suite(str(bad))
    bad.write_text('name = [\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_suite(str(bad))


def test_results_lines_and_rerun_skips(uninterrupted):
    lines = (uninterrupted / "results.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert all(r["format"] == RESULT_FORMAT for r in recs)
    eps = [r for r in recs if r["type"] == "episode"]
    steps = [r for r in recs if r["type"] == "step"]
    assert len(eps) == 4 and len(steps) == 4 * 4  # budget 1024 / 256 per step
    for e in eps:
        for key in ("teacher", "seed", "env", "env_version", "package_version", "config_hash", "final_test_accuracy",
                    "curve", "auc", "examples", "seconds", "invalid_actions"):
            assert key in e, key
        assert e["examples"] == 1024 and e["curve"][-1][0] == 1024
        assert e["auc"] == pytest.approx(curve_auc(e["curve"]))
    assert json.loads((uninterrupted / "suite-tiny.json").read_text())["name"] == "tiny"
    size = (uninterrupted / "results.jsonl").stat().st_size
    counts = run_suite(load_suite("tiny"), uninterrupted, progress=False)
    assert counts["ran"] == 0 and counts["skipped"] == 4
    assert (uninterrupted / "results.jsonl").stat().st_size == size


def test_sigkill_and_resume_gives_same_leaderboard(uninterrupted, tmp_path):
    """SIGKILL the runner after its first episode, restart it, and compare with an
    uninterrupted run: same leaderboard, no duplicated or truncated line."""
    out = tmp_path / "killed"
    proc = _cli("bench", str(TINY), "--out", str(out), "--no-progress")
    results = out / "results.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if results.exists() and b'"type": "episode"' in results.read_bytes():
            break
        if proc.poll() is not None:
            pytest.fail(f"runner ended before it could be killed: {proc.communicate()}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = read_results(out)[0]
    assert 1 <= len(first) < 4, "the kill should land mid-run"
    proc = _cli("bench", str(TINY), "--out", str(out), "--no-progress")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"skipped {len(first)}" in err
    warnings = []
    eps, steps = read_results(out, warn=warnings.append)
    assert warnings == []
    raw = results.read_text().splitlines()
    assert len(raw) == len(set(raw)) and all(json.loads(x) for x in raw)
    assert len(eps) == 4 and len(steps) == 16
    full = read_results(uninterrupted)[0]
    assert _strip(leaderboard(eps)) == _strip(leaderboard(full))


def test_episode_lines_without_auc_get_it_from_their_curve(uninterrupted, tmp_path):
    """Lines written before the ``auc`` field existed are still read, with ``auc`` computed from the curve."""
    old = []
    for line in (uninterrupted / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec.pop("auc", None)
        old.append(json.dumps(rec))
    (tmp_path / "results.jsonl").write_text("\n".join(old) + "\n")
    got, want = read_results(tmp_path)[0], read_results(uninterrupted)[0]
    assert [e["auc"] for e in got] == pytest.approx([e["auc"] for e in want])


def test_corrupt_and_foreign_lines_are_reported_and_skipped(uninterrupted, tmp_path):
    p = tmp_path / "results.jsonl"
    good = (uninterrupted / "results.jsonl").read_text()
    p.write_text(good + "{not json\n" + json.dumps({"hello": "world"}) + "\n"
                 + json.dumps({"format": RESULT_FORMAT, "type": "episode", "teacher": "x"}) + "\n" + '{"format": "dis')
    warnings: list[str] = []
    eps, _ = read_results(p, warn=warnings.append)
    n_good = len(good.splitlines())
    assert len(warnings) == 4
    assert f"results.jsonl:{n_good + 1}: not valid JSON" in warnings[0]
    assert f":{n_good + 2}: not a {RESULT_FORMAT} record" in warnings[1]
    assert f":{n_good + 3}: episode record lacks" in warnings[2]
    assert f":{n_good + 4}: truncated" in warnings[3]
    assert _strip(leaderboard(eps)) == _strip(leaderboard(read_results(uninterrupted)[0]))


def test_process_pool_matches_in_process(uninterrupted, tmp_path):
    run_suite(load_suite("tiny"), tmp_path, workers=2, progress=False)
    assert _strip(leaderboard(read_results(tmp_path)[0])) == _strip(leaderboard(read_results(uninterrupted)[0]))


def test_ray_executor_matches_process_pool(uninterrupted, tmp_path):
    pytest.importorskip("ray")
    run_suite(load_suite("tiny"), tmp_path, workers=2, executor="ray", progress=False)
    assert _strip(leaderboard(read_results(tmp_path)[0])) == _strip(leaderboard(read_results(uninterrupted)[0]))


def test_user_teacher_from_own_module(tmp_path):
    pkg = tmp_path / "mylab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "teachers.py").write_text(textwrap.dedent("""
        import numpy as np

        class Hardest:
            name = "hardest"
            def reset(self, action_space, info, seed=None):
                self.n = (len(info["skills"]), info["n_difficulties"])
            def act(self, obs, info):
                return np.array([self.n[0] - 1, self.n[1] - 1])
    """))
    suite = tmp_path / "mine.toml"
    suite.write_text(TINY.read_text().replace('name = "tiny"', 'name = "mine"').replace(
        '[[teachers]]\nname = "ioa"', '[[teachers]]\nname = "mylab.teachers:Hardest"\nlabel = "hardest"'))
    proc = _cli("bench", str(suite), "--out", str(tmp_path / "r"), "--no-progress", "--json",
                env={"PYTHONPATH": str(tmp_path)})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    rows = json.loads(out)["rows"]
    assert {r["teacher"] for r in rows} == {"uniform", "hardest"}
    steps = read_results(tmp_path / "r")[1]
    assert {(s["skill"], s["difficulty"]) for s in steps if s["teacher"] == "hardest"} == {("chain", 3)}


def test_leaderboard_statistics():
    x = [0.1, 0.2, 0.3, 0.4, 0.9, 0.5, 0.6, 0.7]
    lo, hi = bootstrap_ci(x)
    assert lo < np.mean(x) < hi
    assert bootstrap_ci(x) == (lo, hi)  # fixed seed: reproducible
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(np.mean([3, 4, 5, 6]))
    assert curve_auc([(0, 0.0), (50, 1.0), (100, 1.0)]) == pytest.approx(0.75)
    assert examples_to([(0, 0.0), (10, 0.2), (20, 0.3)], 0.25) == 20
    assert np.isnan(examples_to([(0, 0.0), (10, 0.2)], 0.25))

    def ep(teacher, seed, acc):
        return {"env": "e", "teacher": teacher, "seed": seed, "final_test_accuracy": acc, "config_hash": "h",
                "reference_test_accuracy": 1.0, "curve": [(0, 0.0), (100, acc)], "examples": 100}

    eps = [ep("uniform", s, 0.3 + 0.01 * s) for s in range(5)] + [ep("good", s, 0.6 + 0.01 * s) for s in range(5)]
    rows = leaderboard(eps)
    assert [r["teacher"] for r in rows] == ["good", "uniform"]
    assert rows[0]["p_vs_uniform"] < 1e-6 and rows[0]["retained"] == pytest.approx(0.62)
    md, csv_, js = render(rows, "md"), render(rows, "csv"), render(rows, "json")
    assert "| good | 5 | 0.620 |" in md
    assert csv_.splitlines()[0].startswith("env,teacher,n,mean")
    assert json.loads(js)[0]["teacher"] == "good"
    with pytest.raises(UnknownNameError, match="md"):
        render(rows, "html")


def test_cli_leaderboard_and_plot(uninterrupted, tmp_path, capsys):
    from distillgym.cli import main

    assert main(["leaderboard", str(uninterrupted), "--format", "csv"]) == 0
    assert "uniform" in capsys.readouterr().out
    assert main(["plot", str(uninterrupted), "--out", str(tmp_path)]) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert any(n.startswith("learning_curves") for n in pngs) and any(n.startswith("heatmaps") for n in pngs)
    assert all((tmp_path / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in pngs)
    assert main(["leaderboard", str(tmp_path / "nothing")]) == 2
