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

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.harness.bench import run_benchmark
from distillgym.harness.benchmark import load_benchmark
from distillgym.harness.leaderboard import bootstrap_ci, curve_auc, examples_to, iqm, leaderboard, render
from distillgym.harness.results import RESULT_FORMAT, read_results

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "distillgym" / "harness" / "benchmarks" / "tiny.toml"


def _strip(rows):
    """Leaderboard rows without wall-clock fields, which differ between runs, as canonical
    JSON (so that NaN compares equal to NaN)."""
    return json.dumps([{k: v for k, v in r.items() if k != "seconds"} for r in rows], sort_keys=True)


def _cli(*args, env=None, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "distillgym.harness.cli", *args],
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
    counts = run_benchmark(load_benchmark("tiny"), out, progress=False)
    assert counts == {**counts, "total": 4, "ran": 4, "skipped": 0}
    return out


def test_suites_load_and_validate(tmp_path):
    for name, env in (("quick", "v1"), ("standard", "v0"), ("tiny", "v1")):
        s = load_benchmark(name)
        assert s.teachers and s.seeds and s.env == f"distillgym/ArithSkills-{env}"
    assert len(load_benchmark("standard").seeds) >= 10
    with pytest.raises(UnknownNameError, match="quick"):
        load_benchmark("quik")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseeds = 2\nteachers = [{name = "uniform"}]\ncolour = "red"\n')
    with pytest.raises(ConfigError, match="colour"):
        load_benchmark(str(bad))
    bad.write_text('name = "x"\nseeds = 0\nteachers = [{name = "uniform"}]\n')
    with pytest.raises(ConfigError, match="seeds"):
        load_benchmark(str(bad))
    bad.write_text('name = "x"\nseeds = [1, 1]\nteachers = [{name = "uniform"}]\n')
    with pytest.raises(ConfigError, match="repeated"):
        load_benchmark(str(bad))
    bad.write_text('name = [\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_benchmark(str(bad))


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
    record = uninterrupted / "suite-tiny.json"
    assert json.loads(record.read_text())["name"] == "tiny"
    size = (uninterrupted / "results.jsonl").stat().st_size
    written = (record.read_text(), record.stat().st_mtime_ns)
    counts = run_benchmark(load_benchmark("tiny"), uninterrupted, progress=False)
    assert counts["ran"] == 0 and counts["skipped"] == 4
    assert (uninterrupted / "results.jsonl").stat().st_size == size
    # the benchmark's record is not rewritten when it has not changed (a checked-in folder stays clean: item 20.12)
    assert (record.read_text(), record.stat().st_mtime_ns) == written


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
    run_benchmark(load_benchmark("tiny"), tmp_path, workers=2, progress=False)
    assert _strip(leaderboard(read_results(tmp_path)[0])) == _strip(leaderboard(read_results(uninterrupted)[0]))


def test_ray_executor_matches_process_pool(uninterrupted, tmp_path):
    pytest.importorskip("ray")
    run_benchmark(load_benchmark("tiny"), tmp_path, workers=2, executor="ray", progress=False)
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
    from distillgym.harness.cli import main

    assert main(["leaderboard", str(uninterrupted), "--format", "csv"]) == 0
    assert "uniform" in capsys.readouterr().out
    assert main(["plot", str(uninterrupted), "--out", str(tmp_path)]) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert any(n.startswith("learning_curves") for n in pngs) and any(n.startswith("heatmaps") for n in pngs)
    assert all((tmp_path / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in pngs)
    assert main(["leaderboard", str(tmp_path / "nothing")]) == 2


# ---------------------------------------------------------------------------- fail fast, failed episodes, resume
MICRO = 'budget = 256\nexamples_per_step = 128\nn_val_per_cell = 2\nn_test_per_cell = 2\n'


def _suite_file(tmp_path, teachers: str, name: str = "s", seeds: str = "[0, 1]") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(f'name = "{name}"\nenv = "distillgym/ArithSkills-v1"\nseeds = {seeds}\n\n[env_kwargs]\n{MICRO}\n'
                 + teachers)
    return p


@pytest.mark.parametrize("teachers,error,match", [
    ('[[teachers]]\nname = "unifrom"\n', UnknownNameError, "Did you mean 'uniform'"),
    ('[[teachers]]\nname = "uniform"\nlabel = "bad"\nkwargs = { ordr = "x" }\n', ConfigError, "ordr"),
    ('[[teachers]]\nname = "single-skill"\nkwargs = { skill = "ad" }\n', UnknownNameError, "unknown skill 'ad'"),
    ('[[teachers]]\nname = "stratified"\n', ConfigError, "no adapter"),
])
def test_a_bad_suite_fails_before_any_episode(tmp_path, teachers, error, match):
    """Every teacher and env is built (and reset) in the runner's process first: the usual error, at once."""
    suite = load_benchmark(str(_suite_file(tmp_path, '[[teachers]]\nname = "uniform"\n\n' + teachers)))
    t0 = time.perf_counter()
    with pytest.raises(error, match=match) as err:
        run_benchmark(suite, tmp_path / "out", workers=2, progress=False)
    assert "suite 's'" in str(err.value) or error is UnknownNameError
    assert time.perf_counter() - t0 < 60  # not after an episode (each takes longer on this machine)
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_labels_are_unique_per_env_and_entries_take_their_own_env(tmp_path):
    same = _suite_file(tmp_path, '[[teachers]]\nname = "uniform"\n[[teachers]]\nname = "uniform"\n'
                                 'env_kwargs = { student_init = "fixed" }\n', name="dup")
    with pytest.raises(ConfigError, match="unique within an env"):
        load_benchmark(str(same))
    ok = _suite_file(tmp_path, '[[teachers]]\nname = "uniform"\n[[teachers]]\nname = "uniform"\n'
                               'env = "distillgym/ArithMix-v1"\n[[teachers]]\nname = "uniform"\nlabel = "uniform-fixed"\n'
                               'env_kwargs = { student_init = "fixed" }\n', name="ok")
    s = load_benchmark(str(ok))
    jobs = s.jobs()
    assert {(j.env, j.label) for j in jobs} == {("distillgym/ArithSkills-v1", "uniform"),
                                                ("distillgym/ArithMix-v1", "uniform"),
                                                ("distillgym/ArithSkills-v1", "uniform-fixed")}
    by = {(j.env, j.label): j for j in jobs if j.seed == 0}
    assert by[("distillgym/ArithSkills-v1", "uniform-fixed")].env_config["student_init"] == "fixed"
    assert by[("distillgym/ArithSkills-v1", "uniform-fixed")].env_config["budget"] == 256  # merged over the suite's
    assert len({j.config_hash for j in by.values()}) == 3


FLAKY = """
import os
import numpy as np

class Flaky:
    '''Cycles through the cells; raises at step 2 of the episode whose seed is in $FLAKY_SEEDS.'''
    name = "flaky"
    def __init__(self, api_key=None):
        self.api_key = api_key
    def reset(self, action_space, info, seed=None):
        self.seed, self.t = seed, 0
        self.stats = {"note": "configured"}
    def act(self, obs, info):
        self.t += 1
        if self.t == 2 and str(self.seed) in os.environ.get("FLAKY_SEEDS", "").split(","):
            raise RuntimeError(f"teacher bug at step 2 (seed {self.seed}, key {os.environ.get('OPENAI_API_KEY')})")
        return np.array([self.t % 7, 0])
"""


@pytest.fixture
def flaky(tmp_path, monkeypatch):
    (tmp_path / "flakylab.py").write_text(FLAKY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # for spawned workers
    return _suite_file(tmp_path, '[[teachers]]\nname = "uniform"\n[[teachers]]\nname = "flakylab:Flaky"\n'
                                 'label = "flaky"\n', name="flaky")


def test_an_episode_that_raises_is_recorded_and_the_others_go_on(flaky, tmp_path, monkeypatch, capsys):
    from distillgym.harness.cli import main

    monkeypatch.setenv("FLAKY_SEEDS", "1")
    out = tmp_path / "r"
    assert main(["bench", str(flaky), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "1 of 4 episodes failed" in err and "flaky seed 1" in err and "RuntimeError: teacher bug at step 2" in err
    eps, steps = read_results(out)
    assert len(eps) == 4 and len(steps) == 3 * 2  # 2 steps per ok episode, none for the failed one
    bad = [e for e in eps if e.get("status") == "failed"]
    assert len(bad) == 1 and bad[0]["teacher"] == "flaky" and bad[0]["seed"] == 1
    assert bad[0]["final_test_accuracy"] is None and bad[0]["steps_completed"] == 1
    assert "raise RuntimeError" in bad[0]["traceback"] and bad[0]["fingerprint"]["torch_threads"] == 1
    rows = {r["teacher"]: r for r in leaderboard(eps)}
    assert rows["flaky"]["failed"] == 1 and rows["flaky"]["n"] == 1 and rows["uniform"]["n"] == 2
    # a rerun retries only the failed episode; the ok line then wins over the failed one
    monkeypatch.delenv("FLAKY_SEEDS")
    counts = run_benchmark(load_benchmark(str(flaky)), out, progress=False)
    assert counts["ran"] == 1 and counts["skipped"] == 3 and counts["failed"] == 0
    eps, steps = read_results(out)
    assert len(eps) == 4 and all(e["status"] == "ok" for e in eps) and len(steps) == 8
    # the file still holds the failed line, before the ok one; order does not matter to read_results
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    key = [(r.get("status"), r["type"]) for r in lines if r["teacher"] == "flaky" and r["seed"] == 1]
    assert key.index(("failed", "episode")) < key.index(("ok", "episode"))
    p = tmp_path / "reversed.jsonl"
    p.write_text("".join(reversed((out / "results.jsonl").read_text().splitlines(keepends=True))))
    assert sorted(e["status"] for e in read_results(p)[0]) == ["ok"] * 4


@pytest.mark.slow
def test_a_failure_in_a_worker_process_does_not_stop_the_pool(flaky, tmp_path, monkeypatch):
    monkeypatch.setenv("FLAKY_SEEDS", "0")
    counts = run_benchmark(load_benchmark(str(flaky)), tmp_path / "p", workers=2, progress=False)
    assert counts["ran"] == 4 and counts["failed"] == 1 and counts["ok"] == 3
    assert counts["failures"][0]["label"] == "flaky" and counts["failures"][0]["seed"] == 0


def test_nothing_written_contains_an_api_key(flaky, tmp_path, monkeypatch):
    """Credentials in teacher kwargs and in the environment stay out of every file the runner writes."""
    planted_env, planted_kw = "sk-PLANTED-env-0123456789", "sk-PLANTED-kwarg-9876543210"
    monkeypatch.setenv("OPENAI_API_KEY", planted_env)
    monkeypatch.setenv("FLAKY_SEEDS", "1")  # the failing episode's error message and traceback quote the env key
    text = flaky.read_text().replace('label = "flaky"', f'label = "flaky"\nkwargs = {{ api_key = "{planted_kw}" }}')
    flaky.write_text(text)
    out = tmp_path / "k"
    try:
        import wandb  # noqa: F401
        use_wandb = True
        monkeypatch.setenv("WANDB_MODE", "offline")
        monkeypatch.setenv("WANDB_SILENT", "true")
        monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
        monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    except ImportError:
        use_wandb = False
    counts = run_benchmark(load_benchmark(str(flaky)), out, progress=False, wandb=use_wandb)
    assert counts["failed"] == 1 and "<redacted>" in counts["failures"][0]["error"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "results.jsonl" for p in files) and any(p.name.startswith("suite-") for p in files)
    for p in files:
        data = p.read_bytes()
        assert planted_env.encode() not in data and planted_kw.encode() not in data, p
    eps, _ = read_results(out)
    flaky_eps = [e for e in eps if e["teacher"] == "flaky"]
    assert all(e["teacher_kwargs"] == {"api_key": "<redacted>"} for e in flaky_eps)
    assert all(e["teacher_args"]["api_key"] == "<redacted>" for e in flaky_eps)


def test_resume_onto_another_fingerprint_is_not_pooled_silently(uninterrupted, tmp_path):
    from distillgym.harness.bench import FingerprintMismatchError

    lines = [json.loads(x) for x in (uninterrupted / "results.jsonl").read_text().splitlines()]
    kept, dropped = [], ("ioa", 1)
    for r in lines:
        if (r["teacher"], r["seed"]) == dropped:
            continue  # an episode still to run in the ioa group
        if r["type"] == "episode":
            r["fingerprint"] = {**r["fingerprint"], "cpu": "Another CPU", "torch": "2.99.0"}
        kept.append(json.dumps(r))
    out = tmp_path / "mixed"
    out.mkdir()
    (out / "results.jsonl").write_text("\n".join(kept) + "\n")
    with pytest.raises(FingerprintMismatchError) as err:
        run_benchmark(load_benchmark("tiny"), out, progress=False)
    msg = str(err.value)
    assert "'Another CPU' there" in msg and "torch" in msg and "--allow-mixed-fingerprints" in msg and "--out" in msg
    assert "ioa" in msg and "uniform" not in msg.split("\n")[1]  # only the group this run adds to
    assert len(read_results(out)[0]) == 3  # nothing ran
    counts = run_benchmark(load_benchmark("tiny"), out, progress=False, allow_mixed_fingerprints=True)
    assert counts["ran"] == 1 and len(counts["mixed_fingerprints"]) == 1
    rows = {r["teacher"]: r for r in leaderboard(read_results(out)[0])}
    assert rows["ioa"]["fingerprints"] == 2 and set(rows["ioa"]["fingerprint_diff"]) == {"cpu", "torch"}
    assert rows["uniform"]["fingerprints"] == 1
    # a finished suite runs nothing, so there is nothing to pool and no error
    assert run_benchmark(load_benchmark("tiny"), out, progress=False)["ran"] == 0


def test_episode_lines_carry_fingerprint_status_costs_and_the_resolved_config(uninterrupted):
    from distillgym.harness.fingerprint import HASH_VERSION, fingerprint

    eps, _ = read_results(uninterrupted)
    suite = load_benchmark("tiny")
    hashes = {j.label: j.config_hash for j in suite.jobs()}
    for e in eps:
        assert e["status"] == "ok" and e["reference_row"] is False and e["config_hash_version"] == HASH_VERSION
        assert e["fingerprint"] == fingerprint(torch_threads=1) | {"git_dirty": e["fingerprint"]["git_dirty"]}
        assert e["config_hash"] == hashes[e["teacher"]]
        assert e["env_config"]["budget"] == 1024 and e["env_config"]["student_kwargs"]["replay_fraction"] == 0.75
        assert set(e["costs"]) >= {"teacher_tokens_in", "teacher_tokens_out", "teacher_calls", "engine_tokens_in",
                                   "engine_tokens_out", "engine_calls", "student_tokens", "student_flops", "examples"}
        assert e["costs"]["student_tokens"] > 0 and e["costs"]["examples"] == 1024
    record = json.loads((uninterrupted / "suite-tiny.json").read_text())
    assert record["config_hash_version"] == HASH_VERSION
    assert {r["config_hash"] for r in record["resolved"].values()} == set(hashes.values())


def test_benchmarks_ship_with_the_package_and_old_paths_still_find_them(tmp_path, monkeypatch):
    from distillgym.harness.benchmark import SHIPPED, find_benchmark, list_benchmarks

    assert SHIPPED.parent.name == "harness" and (SHIPPED / "quick.toml").is_file()
    monkeypatch.chdir(tmp_path)  # no ./benchmarks/suites here: names come from the package
    assert list_benchmarks()["quick"] == SHIPPED / "quick.toml"
    assert find_benchmark("benchmarks/suites/tiny.toml") == SHIPPED / "tiny.toml"  # the path before the move
    with pytest.raises(ConfigError, match="does not exist"):
        find_benchmark("benchmarks/suites/nothing.toml")
    own = tmp_path / "benchmarks" / "suites"
    own.mkdir(parents=True)
    (own / "quick.toml").write_text((SHIPPED / "tiny.toml").read_text())
    assert list_benchmarks()["quick"] == own / "quick.toml"  # a user's own file wins
