"""The headroom search (distillgym/harness/headroom.py) and the population executor
(distillgym/harness/population.py): screen -> confirm on a tiny real env, resuming, verify, the
leaderboard's reference row, the seed checks, and the report's statistics against scipy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.harness.bench import run_benchmark
from distillgym.harness.benchmark import Benchmark, TeacherEntry, list_benchmarks
from distillgym.harness.cli import main
from distillgym.harness.headroom import (
    DEFAULT_CONFIRM_SEEDS,
    DEFAULT_SCREEN_SEEDS,
    FAMILIES,
    Policy,
    baselines,
    benchmark_seeds,
    check_seeds,
    headroom,
    headroom_episodes,
    load_headroom,
    parse_seeds,
    policy_family,
    render_headroom,
    summarise,
)
from distillgym.harness.leaderboard import leaderboard
from distillgym.harness.population import auto_num_envs, chunks
from distillgym.harness.results import read_results
from distillgym.harness.runner import run_episode
from distillgym.harness.stats import bootstrap_ci

ENV = "distillgym/ArithMix-v2"
TINY = dict(budget=1024, examples_per_step=256, n_val_per_cell=2, n_test_per_cell=4, device="cpu")
SCREEN = [20000, 20001]
CONFIRM = [21000, 21001, 21002]
POLICIES = [Policy("only-copy-L0", "fixed-mix", {"weights": [[1, 0, 0, 0]] + [[0, 0, 0, 0]] * 6}, "test"),
            Policy("error-mix-f0.02", "error-mix", {"floor": 0.02}, "test"),
            Policy("no-copy", "fixed-mix", {"leave_out": ["copy"]}, "test")]


# ---------------------------------------------------------------------------- seeds
def test_default_seeds_overlap_no_benchmark():
    """Read every benchmark TOML directly (not through the function under test) and check the defaults."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    seen = {}
    for name, path in list_benchmarks().items():
        data = tomllib.loads(Path(path).read_text())
        seeds = data.get("seeds", 5)
        seen[name] = set(range(seeds)) if isinstance(seeds, int) else set(seeds)
    assert "learned-v2" in seen and "quick" in seen
    for name, seeds in seen.items():
        assert not seeds & set(DEFAULT_SCREEN_SEEDS), name
        assert not seeds & set(DEFAULT_CONFIRM_SEEDS), name
    assert not set(DEFAULT_SCREEN_SEEDS) & set(DEFAULT_CONFIRM_SEEDS)
    from distillgym.seeding import REFERENCE_SEEDS, TEACHER_TRAINING_SEEDS

    mine = set(DEFAULT_SCREEN_SEEDS) | set(DEFAULT_CONFIRM_SEEDS)
    assert not [s for s in mine if s in REFERENCE_SEEDS or s in TEACHER_TRAINING_SEEDS]
    assert {k: set(v) for k, v in benchmark_seeds().items()} == seen
    check_seeds(DEFAULT_SCREEN_SEEDS, DEFAULT_CONFIRM_SEEDS)   # and the check agrees


@pytest.mark.parametrize("screen, confirm, match", [
    ([0, 1, 2], list(range(21000, 21010)), "screen seeds \\[0, 1, 2\\] are seeds of the benchmark"),
    ([20000], list(range(1000, 1010)), "benchmark 'learned-(cem|v2)'"),
    ([21000], list(range(21000, 21010)), "overlap in \\[21000\\]"),
    ([20000], list(range(21000, 21009)), "at least 10 confirmation seeds"),
    ([1_000_000_000], list(range(21000, 21010)), "reserved for teachers' reference runs"),
    ([20000], list(range(100_000_000, 100_000_010)), "reserved for training learned teachers"),
])
def test_seed_check_refuses_overlaps_and_too_few(screen, confirm, match):
    with pytest.raises(ConfigError, match=match):
        check_seeds(screen, confirm)


def test_parse_seeds():
    assert parse_seeds("20000-20002") == [20000, 20001, 20002]
    assert parse_seeds("1,5, 7-8") == [1, 5, 7, 8]
    for bad in ("5-3", "a-b", "1,1", ""):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


# ---------------------------------------------------------------------------- the family
def test_policy_family_reads_the_env_info(arith_info):
    mix = policy_family({**arith_info, "level": "mix"})
    cell = policy_family({**arith_info, "level": "cell"})
    labels = [p.label for p in mix]
    assert len(labels) == len(set(labels)) >= 50
    assert {p.family for p in mix} == set(FAMILIES) - {"sources"}   # no source axis on this level
    assert {f"leave-out-{k}" for k in arith_info["skills"]} <= set(labels)
    assert [p.label for p in cell if p.kwargs.get("cell_mode") == "argmax"] == [
        "error-mix-argmax", "progress-mix-argmax", "mastery-gated-t0.8-error-argmax"]
    assert "profile-targets-only" not in labels
    ew = np.zeros((7, 4))
    ew[2] = 1.0
    targeted = policy_family({**arith_info, "level": "mix", "eval_weights": ew.tolist()}, ["profiles"])
    tp = {p.label: p for p in targeted}
    assert tp["profile-targets-only"].kwargs["weights"] == ew.tolist()
    w = np.asarray(tp["profile-targets+prerequisites"].kwargs["weights"])
    assert w[0, 0] == 0.5 and w[1, 3] == 0.5 and w[2, 0] == 1.0 and w[3].sum() == 0   # add needs successor, copy
    assert policy_family({**arith_info, "level": "mix"}) == mix   # deterministic
    src = policy_family({**arith_info, "level": "source-mix", "action": {
        "action_shape": [7, 4, 3], "sources": ["verified", "buggy", "noisy"],
        "costs": {"verified": 4, "buggy": 1, "noisy": 1}}}, ["sources"])
    by = {p.label: p for p in src}
    assert len(src) == 5 * 8 - 1 and "equal@equal-units" not in by          # that one is the stratified baseline
    assert by["equal@only-verified"].kwargs == {"source_shares": [1.0, 0.0, 0.0]}
    assert by["error-mix-f0.02@equal-examples"].kwargs == {"floor": 0.02, "source_shares": [4.0, 1.0, 1.0]}
    assert by["profile-easy@no-noisy"].kwargs["source_shares"] == [1.0, 1.0, 0.0]
    with pytest.raises(UnknownNameError, match="Did you mean 'adaptive'"):
        policy_family(arith_info, ["adaptiv"])
    assert [b.name for b in baselines("mix")] == ["stratified", "uniform"]
    assert [b.name for b in baselines("cell")] == ["uniform", "uniform"]


def test_every_family_policy_builds_and_resets(arith_info):
    """Each policy of the family is a registered teacher with valid arguments on both levels."""
    import gymnasium as gym

    from distillgym.teachers import make_teacher

    for level, space in (("mix", gym.spaces.Box(-1, 1, (7, 4), np.float32)), ("cell", gym.spaces.MultiDiscrete([7, 4]))):
        for p in policy_family({**arith_info, "level": level}):
            t = make_teacher(p.name, **p.kwargs)
            t.reset(space, {**arith_info, "level": level}, seed=0)
            obs = {"accuracy": np.zeros((7, 4), np.float32), "budget_left": np.ones(1, np.float32)}
            assert space.contains(np.asarray(t.act(obs, {}), dtype=space.dtype)), p.label


# ---------------------------------------------------------------------------- statistics (no env)
def _fake_episodes(label_means: dict[str, float], seeds, rng) -> list[dict]:
    """Episode records with made-up accuracies (a stand-in for results files; named as such)."""
    out = []
    for label, mu in label_means.items():
        for s in seeds:
            acc = float(np.clip(mu + rng.normal(0, 0.03), 0, 1))
            out.append({"teacher": label, "seed": s, "final_test_accuracy": acc, "config_hash": label,
                        "test_accuracy_matrix": np.full((7, 4), acc).tolist()})
    return out


def test_report_statistics_match_scipy(arith_info):
    rng = np.random.default_rng(7)
    family = [Policy("a", "error-mix", {}, "t"), Policy("b", "fixed-mix", {}, "t"), Policy("c", "dirichlet-mix", {}, "t")]
    base = list(baselines("mix"))
    confirm = list(range(21000, 21012))
    screen = _fake_episodes({"a": 0.5, "b": 0.45, "c": 0.2, "stratified": 0.44, "uniform": 0.3}, SCREEN, rng)
    conf = _fake_episodes({"a": 0.46, "b": 0.47, "stratified": 0.44, "uniform": 0.3}, confirm, rng)
    rep = summarise(env_id=ENV, env_kwargs={}, env_config={}, info={**arith_info, "level": "mix"}, family=family,
                    baseline_policies=base, equal="stratified", uniform="uniform", screen_episodes=screen,
                    candidates=["a", "b"], confirm_episodes=conf, confirm_steps=[], screen_seeds=SCREEN,
                    confirm_seeds=confirm, top=2, families=[])
    acc = {lb: [e["final_test_accuracy"] for e in sorted(conf, key=lambda e: e["seed"]) if e["teacher"] == lb]
           for lb in ("a", "b", "stratified", "uniform")}
    assert rep["best"]["label"] == max(("a", "b"), key=lambda lb: np.mean(acc[lb]))
    t_p, w_p = [], []
    for c in rep["comparisons"]:
        x, y = np.asarray(acc[c["policy"]]), np.asarray(acc[c["baseline"]])
        assert c["mean_diff"] == pytest.approx(np.mean(x - y), abs=1e-12)
        assert c["t_p"] == pytest.approx(sps.ttest_rel(x, y).pvalue, rel=1e-9)
        assert c["wilcoxon_p"] == pytest.approx(sps.wilcoxon(x, y).pvalue, rel=1e-9)
        assert (c["diff_ci_low"], c["diff_ci_high"]) == pytest.approx(bootstrap_ci(list(x - y)))
        t_p.append(c["t_p"])
        w_p.append(c["wilcoxon_p"])
    assert len(rep["comparisons"]) == 4                       # 2 candidates x (equal, uniform)
    for key, ps in (("t_holm", t_p), ("wilcoxon_holm", w_p)):  # Holm by hand
        order = np.argsort(ps)
        want = np.empty(4)
        running = 0.0
        for k, i in enumerate(order):
            running = max(running, min(1.0, (4 - k) * ps[i]))
            want[i] = running
        assert [c[key] for c in rep["comparisons"]] == pytest.approx(list(want))
    best = next(r for r in rep["confirm"] if r["label"] == rep["best"]["label"])
    assert best["mean"] == pytest.approx(np.mean(acc[best["label"]]))
    assert (best["ci_low"], best["ci_high"]) == pytest.approx(bootstrap_ci(acc[best["label"]]))
    assert rep["screen"][0]["label"] == "a" and rep["best"]["screen_rank"] == (1 if rep["best"]["label"] == "a" else 2)
    assert np.allclose(rep["cells"]["diff"], np.mean(acc[best["label"]]) - np.mean(acc["stratified"]))
    text = render_headroom({**rep, "runs": []})
    assert f"**Best confirmed policy: `{rep['best']['label']}`**" in text and "Screen (its own numbers" in text


# ---------------------------------------------------------------------------- the population executor
def test_population_of_one_is_the_single_env_bit_for_bit(tmp_path):
    bench = Benchmark("p1", ENV, [21003], [TeacherEntry("error-mix", {"floor": 0.1})], dict(TINY))
    run_benchmark(bench, tmp_path, executor="population", num_envs=1, progress=False)
    (e,), _ = read_results(tmp_path)
    r = run_episode(ENV, "error-mix", 21003, TINY, {"floor": 0.1})
    assert e["final_test_accuracy"] == r["final_test_accuracy"]
    assert [p[1] for p in e["curve"][1:]] == [s["val_accuracy"] for s in r["steps"]]
    assert e["population"]["num_envs"] == 1 and e["population"]["members"] == [["error-mix", 21003, e["config_hash"]]]


def test_chunks_and_auto_num_envs():
    from distillgym.harness.benchmark import Job

    jobs = [Job("s", ENV, {"budget": b}, "uniform", {}, f"t{i}", i, "h") for i, b in enumerate([1, 1, 2, 1, 2])]
    parts = chunks(jobs, 2)
    assert [[j.label for j in c] for c in parts] == [["t0", "t1"], ["t3"], ["t2", "t4"]]   # one env config per chunk
    assert auto_num_envs(100, 2) == 8 and auto_num_envs(6, 2) == 3 and auto_num_envs(1000, 1, "cuda:0") == 256


def test_a_failing_teacher_fails_only_its_own_episode(tmp_path):
    bench = Benchmark("pf", ENV, [21004], [TeacherEntry("error-mix"), TeacherEntry("stratified")], dict(TINY))
    bench.resolve()
    jobs = bench.jobs()
    jobs[0].teacher_kwargs = {"floor": -1.0}  # passes resolve, then fails when built in the population
    from distillgym.harness.population import run_chunk

    bad, good = run_chunk(jobs)
    assert bad["status"] == "failed" and "floor" in bad["error"]
    assert good["status"] == "ok" and good["population"]["index"] == 1


def test_a_diverging_student_fails_only_its_own_episode(monkeypatch):
    """A vector step that raises PopulationStepError (member 0's weights made NaN before its first
    step: its training diverges) fails that episode with the reason; the other member's episode
    ends ok with the single env's numbers (before, the whole chunk failed)."""
    import torch

    from distillgym.harness.population import run_chunk
    from distillgym.vector import PopulationVectorEnv

    bench = Benchmark("pd", ENV, [21004], [TeacherEntry("stratified"), TeacherEntry("error-mix")], dict(TINY))
    bench.resolve()
    jobs = bench.jobs()
    step, poisoned = PopulationVectorEnv.step, []

    def poison_then_step(self, actions):
        if not poisoned:
            with torch.no_grad():
                self.population.model.weight("embed.weight")[0, :, 0] = float("nan")
            poisoned.append(True)
        return step(self, actions)

    monkeypatch.setattr(PopulationVectorEnv, "step", poison_then_step)
    bad, good = run_chunk(jobs)
    assert bad["status"] == "failed" and "sub-env 0" in bad["error"] and "nan" in bad["error"]
    assert good["status"] == "ok" and good["population"]["index"] == 1
    monkeypatch.setattr(PopulationVectorEnv, "step", step)
    alone = run_episode(jobs[1].env, "error-mix", jobs[1].seed, dict(TINY), teacher_kwargs=jobs[1].teacher_kwargs)
    assert good["final_test_accuracy"] == alone["final_test_accuracy"]
    assert [s["val_accuracy"] for s in good["steps"]] == [s["val_accuracy"] for s in alone["steps"]]


def test_ids_without_a_vector_env_fall_back_to_the_process_pool(tmp_path):
    msgs = []
    bench = Benchmark("pv1", "distillgym/ArithMix-v1", [21005], [TeacherEntry("stratified")],
                      dict(budget=512, examples_per_step=256, n_val_per_cell=2, n_test_per_cell=2))
    run_benchmark(bench, tmp_path, executor="population", progress=False, say=msgs.append)
    (e,), _ = read_results(tmp_path)
    assert e["status"] == "ok" and "population" not in e
    assert any("process pool" in m for m in msgs)


# ---------------------------------------------------------------------------- screen -> confirm, on a real env
@pytest.fixture(scope="module")
def search(tmp_path_factory):
    out = tmp_path_factory.mktemp("headroom")
    msgs: list[str] = []
    report = headroom(ENV, TINY, screen_seeds=SCREEN, confirm_seeds=CONFIRM, top=2, families=[], policies=POLICIES,
                      out=out, num_envs=8, min_confirm_seeds=3, progress=False, say=msgs.append, command="test")
    return out, report, msgs


@pytest.mark.slow
def test_screen_picks_and_only_fresh_seeds_count(search):
    out, rep, msgs = search
    screen, _ = read_results(out / "screen")
    confirm, _ = read_results(out / "confirm")
    labels = [p.label for p in POLICIES]
    assert sorted((e["teacher"], e["seed"]) for e in screen) == sorted(
        (lb, s) for lb in [*labels, "stratified", "uniform"] for s in SCREEN)
    assert all(1 <= e["population"]["num_envs"] <= 8 for e in screen)
    means = {lb: np.mean([e["final_test_accuracy"] for e in screen if e["teacher"] == lb]) for lb in labels}
    top2 = sorted(labels, key=lambda lb: (-means[lb], lb))[:2]
    assert rep["candidates"] == top2
    # the confirmation ran exactly the candidates and the baselines, on the confirmation seeds only
    assert sorted((e["teacher"], e["seed"]) for e in confirm) == sorted(
        (lb, s) for lb in [*top2, "stratified", "uniform"] for s in CONFIRM)
    cmeans = {lb: np.mean([e["final_test_accuracy"] for e in confirm if e["teacher"] == lb]) for lb in top2}
    best = max(top2, key=lambda lb: (cmeans[lb], -top2.index(lb)))
    assert rep["best"]["label"] == best
    assert rep["best"]["mean"] == pytest.approx(cmeans[best])
    assert sorted(map(int, rep["best"]["by_seed"])) == CONFIRM
    assert rep["best"]["screen_mean"] == pytest.approx(means[best])
    assert sorted(e["seed"] for e in rep["best_episodes"]) == CONFIRM
    # the best-screen policy must be screened apart from the others (the test means something)
    assert len({round(m, 6) for m in means.values()}) > 1
    assert (out / "HEADROOM.md").read_text().count(best) >= 3
    assert (out / "heatmap.png").stat().st_size > 10_000
    assert load_headroom(out)["best"]["label"] == best


@pytest.mark.slow
def test_resume_reruns_only_what_is_missing(search, tmp_path):
    out, rep, _ = search
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    lines = (copy / "confirm" / "results.jsonl").read_text().splitlines(keepends=True)
    episodes = [i for i, ln in enumerate(lines) if json.loads(ln)["type"] == "episode"]
    cut = episodes[-3] + 1                                      # drop the last two episodes (and their steps)
    (copy / "confirm" / "results.jsonl").write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])
    msgs: list[str] = []
    again = headroom(ENV, TINY, screen_seeds=SCREEN, confirm_seeds=CONFIRM, top=2, families=[], policies=POLICIES,
                     out=copy, num_envs=8, min_confirm_seeds=3, progress=False, say=msgs.append, command="test")
    n_screen = (len(POLICIES) + 2) * len(SCREEN)
    assert any(f"{n_screen} of {n_screen} episodes already there" in m for m in msgs)   # the screen: nothing to do
    assert any("10 of 12 episodes already there" in m for m in msgs)                   # the confirmation: 2 to redo
    assert any("2 episode(s) in 1 population(s)" in m for m in msgs)
    assert again["candidates"] == rep["candidates"] and again["screen"] == rep["screen"]
    assert [r["ran"] for r in again["runs"]] == [{"screen": n_screen, "confirm": 12}, {"screen": 0, "confirm": 2}]
    confirm, _ = read_results(copy / "confirm")
    assert len(confirm) == 12


@pytest.mark.slow
def test_verify_reruns_a_population_episode_bit_for_bit(search):
    from distillgym.harness.verify import verify

    out, _, _ = search
    report = verify(out / "confirm", episodes=2, seed=1)
    assert report["summary"]["n"] == 2 and report["summary"]["exact"] == 2, report["rows"]


@pytest.mark.slow
def test_leaderboard_shows_the_headroom_as_a_reference_row(search, capsys):
    out, rep, _ = search
    episodes, _ = read_results(out / "confirm")
    rows = leaderboard(episodes + headroom_episodes(rep), baseline="stratified")
    ref = [r for r in rows if r["teacher"].startswith("headroom: ")]
    assert len(ref) == 1 and ref[0]["reference"] and ref[0]["rank"] is None
    assert ref[0]["teacher"] == f"headroom: {rep['best']['label']}" and ref[0]["n"] == len(CONFIRM)
    assert ref[0]["mean"] == pytest.approx(rep["best"]["mean"])
    assert main(["leaderboard", str(out / "confirm"), "--baseline", "stratified", "--headroom", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"headroom: {rep['best']['label']} (reference)" in text


def test_cli_headroom_refuses_overlapping_seeds(capsys, tmp_path):
    code = main(["headroom", ENV, "--screen-seeds", "0-2", "--out", str(tmp_path)])
    assert code == 2
    assert "benchmark" in capsys.readouterr().err
