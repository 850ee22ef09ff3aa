"""The CEM teacher trainer, its linear per-cell mix policy, and the ``cem:PATH`` player."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.harness.benchmark import SHIPPED, Benchmark, TeacherEntry, load_benchmark
from distillgym.harness.cli import add_train_teacher_parser
from distillgym.harness.fingerprint import teacher_identity
from distillgym.harness.runner import run_episode
from distillgym.levels import mix_to_action
from distillgym.rewards import REWARDS
from distillgym.seeding import TEACHER_TRAINING_SEEDS
from distillgym.teachers import make_teacher
from distillgym.teachers.cem import CEMTeacher
from distillgym.train.cem import (
    CEMConfig,
    cem_update,
    read_log,
    sample_candidates,
    train_cem,
    training_seeds,
)
from distillgym.train.mix_policy import LinearMixPolicy, MixFeatures

REPO = Path(__file__).resolve().parent.parent
MIX_ENV = "distillgym/ArithMix-v2"
# A small plain student that learns within a few hundred examples (no warm-up, no replay, batches of 32).
SMALL_STUDENT = {"warmup_steps": 0, "replay_fraction": 0.0, "batch_size": 32, "hidden_size": 32, "intermediate_size": 64}
# 2 steps of 256 examples per episode, 4 validation / test items per cell.
TINY = dict(budget=512, examples_per_step=256, n_val_per_cell=4, n_test_per_cell=4, student_kwargs=SMALL_STUDENT)
WARM = dict(budget=2048, examples_per_step=1024, n_val_per_cell=4, n_test_per_cell=4)
"""Two steps of a warm-started id (ArithSources-v1 loads the default student's snapshot, so the student keeps its default shape)."""
TINY_CEM = dict(population=2, seeds_per_generation=1, elite=1, groups=["skill", "difficulty", "accuracy"])


# ---------------------------------------------------------------------------- features and policy (no env)
def _info(sources=None, weights=None):
    info = {"skills": ["a", "b"], "n_difficulties": 2, "prerequisites": {"b": ["a"]}, "level": "mix",
            "action": {"level": "mix", "action_shape": [2, 2]}}
    if sources is not None:
        info["level"] = "source-mix"
        info["action"] = {"level": "source-mix", "action_shape": [2, 2, len(sources)], "sources": sources}
    if weights is not None:
        info["eval_weights"] = weights
    return info


def _obs(acc, left=1.0):
    return {"accuracy": np.asarray(acc, np.float32), "budget_left": np.array([left], np.float32)}


def test_features_by_hand_on_the_mix_level():
    f = MixFeatures.from_info(_info())
    assert f.names == ["skill=a", "skill=b", "difficulty=0", "difficulty=1", "accuracy", "accuracy_change",
                       "prerequisites", "data", "progress_x_difficulty", "progress_x_accuracy"]
    phi = f.reset(_obs([[0.5, 0.0], [0.25, 0.0]]), {})
    assert phi.shape == (2, 2, 10)
    # cell (b, 1): skill b, difficulty 1, accuracy 0, prerequisites (b, 0) = 0.25 and (a, 1) = 0.0 -> 0.125
    np.testing.assert_allclose(phi[1, 1], [0, 1, 0, 1, 0.0, 0, 0.125, 0, 0, 0])
    np.testing.assert_allclose(phi[0, 0, 6], 1.0)  # (a, 0) has no prerequisite
    info = {"action": {"allocation": [[300, 100], [0, 0]]}}
    phi = f.step(_obs([[0.6, 0.0], [0.25, 0.0]], left=0.5), info)
    # accuracy change of (a, 0): 10 * 0.1, data share of (a, 0): 300 / 400 * 4 cells = 3 equal shares -> 3/4
    np.testing.assert_allclose(phi[0, 0, [4, 5, 7, 8, 9]], [0.6, 1.0, 0.75, 0.0, 0.3], rtol=1e-6)
    np.testing.assert_allclose(phi[1, 1, 8], 0.5)  # progress 0.5 x difficulty 1/1


def test_features_with_sources_and_targets():
    f = MixFeatures.from_info(_info(sources=["verified", "noisy"], weights=[[0, 0], [2, 1]]))
    assert f.shape == (2, 2, 2) and "target" in f.groups and "skill_x_source" in f.groups
    assert "skill=b*source=noisy" in f.names and "accuracy*source=verified" in f.names
    phi = f.reset(_obs([[1.0, 0.0], [0.5, 0.0]], left=0.75), {})
    names = f.names
    # entry (b, 0, noisy): target weight 2/2 = 1, progress 0.25, accuracy 0.5 on the noisy source only
    e = dict(zip(names, phi[1, 0, 1], strict=True))
    assert e["target"] == 1.0 and e["progress_x_target"] == 0.25 and e["source=noisy"] == 1.0
    assert e["skill=b*source=noisy"] == 1.0 and e["skill=b*source=verified"] == 0.0
    assert e["accuracy*source=noisy"] == 0.5 and e["accuracy*source=verified"] == 0.0
    assert dict(zip(names, phi[1, 1, 0], strict=True))["target"] == 0.5


def test_needed_feature_marks_targets_and_their_prerequisite_closure_and_is_opt_in():
    # skills a <- b <- c (c needs b, b needs a) and an unrelated d; the target is c at difficulty 1 only
    info = {"skills": ["a", "b", "c", "d"], "n_difficulties": 2, "prerequisites": {"b": ["a"], "c": ["b"], "d": []},
            "level": "mix", "action": {"level": "mix", "action_shape": [4, 2]},
            "eval_weights": [[0, 0], [0, 0], [0, 1], [0, 0]]}
    assert "needed" not in MixFeatures.from_info(info).groups  # opt-in: the default groups are unchanged
    f = MixFeatures.from_info(info, groups=["needed", "target", "progress_x_target"])
    assert f.names == ["target", "progress_x_target", "needed"]  # canonical order
    phi = f.reset(_obs(np.zeros((4, 2))), {})
    np.testing.assert_array_equal(phi[..., 2], [[1, 1], [1, 1], [1, 1], [0, 0]])  # a and b through c; not d
    # three weights give a prerequisites-first schedule: early little on the target cell (c, 1), late most of
    # the data on it, never any on d (early: 5 needed cells score 6, (c, 1) 2, d 0; late: (c, 1) 10)
    pol = LinearMixPolicy(f.names, [-4.0, 8.0, 6.0])
    early, late = pol.mix(phi), pol.mix(f.step(_obs(np.zeros((4, 2)), left=0.0), {}))
    assert early[2, 1] < 0.01 and early[:2].sum() > 0.79 and late[2, 1] > 0.9
    assert max(early[3].sum(), late[3].sum()) < 0.001
    with pytest.raises(ConfigError, match="target"):
        MixFeatures.from_info(_info(), groups=["needed"])  # no evaluation weights, no targets


def test_zero_weights_are_the_equal_mix_and_groups_are_checked():
    for info in (_info(), _info(sources=["verified", "buggy", "noisy"])):
        f = MixFeatures.from_info(info)
        pol = LinearMixPolicy(f.names)
        a = pol.act(f.reset(_obs([[0.3, 0.1], [0.9, 0.0]]), {}))
        np.testing.assert_array_equal(a, mix_to_action(np.ones(f.shape)))  # stratified's action, exactly
    with pytest.raises(UnknownNameError, match="did you mean|valid values"):
        MixFeatures.from_info(_info(), groups=["skil"])
    with pytest.raises(ConfigError, match="source axis"):
        MixFeatures.from_info(_info(), groups=["skill", "source"])
    with pytest.raises(ConfigError, match="target"):
        MixFeatures.from_info(_info(), groups=["target"])
    with pytest.raises(ConfigError, match="level is 'cell'"):
        MixFeatures.from_info({**_info(), "level": "cell"})
    with pytest.raises(ConfigError, match="one weight per feature"):
        LinearMixPolicy(["x", "y"], [1.0])
    other = MixFeatures.from_info(_info(), groups=["skill"])
    with pytest.raises(ConfigError, match="trained on 10 features"):
        LinearMixPolicy(MixFeatures.from_info(_info()).names).check_env(other)


def test_policy_file_round_trips_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    names = MixFeatures.from_info(_info()).names
    pol = LinearMixPolicy(names, rng.standard_normal(len(names)) / 3, groups=["x"])
    path = pol.save(tmp_path / "p.json", env="e")
    back, record = LinearMixPolicy.load(path)
    assert back.theta.tobytes() == pol.theta.tobytes() and record["env"] == "e"
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ConfigError, match="not a linear mix policy"):
        LinearMixPolicy.load(tmp_path / "bad.json")


# ---------------------------------------------------------------------------- the CEM update (a named fake fitness)
def test_cem_update_finds_the_optimum_of_a_fake_quadratic_fitness():
    """The algorithm alone, on a stand-in fitness (not an env): -|theta - target|^2 plus noise."""
    target = np.array([1.5, -2.0, 0.5, 0.0])
    cfg = CEMConfig(population=10, elite=3, sigma0=1.0).validate()
    mu, sigma = np.zeros(4), np.full(4, 1.0)
    noise = np.random.default_rng(1)
    for g in range(40):
        cands = sample_candidates(mu, sigma, cfg, 0, g)
        fake_fitness = -((cands - target) ** 2).sum(axis=1) + 0.05 * noise.standard_normal(len(cands))
        mu, sigma, elite = cem_update(mu, sigma, cands, fake_fitness, cfg)
        assert len(elite) == 3 and fake_fitness[elite[0]] == fake_fitness.max()
    assert np.abs(mu - target).max() < 0.15
    assert np.all(sigma >= cfg.min_sigma)


def test_mirrored_candidates_and_the_update_rule():
    cfg = CEMConfig(population=4, elite=2, smoothing=0.5, min_sigma=0.0).validate()
    mu, sigma = np.array([1.0, 0.0]), np.array([0.5, 2.0])
    c = sample_candidates(mu, sigma, cfg, 3, 7)
    np.testing.assert_allclose(c[:2] - mu, -(c[2:] - mu))  # mirror images about mu
    np.testing.assert_array_equal(c, sample_candidates(mu, sigma, cfg, 3, 7))  # (seed, generation) determine them
    new_mu, new_sigma, elite = cem_update(mu, sigma, c, np.array([0.1, 0.3, 0.3, -1.0]), cfg)
    assert elite == [1, 2]  # ties go to the lower index
    np.testing.assert_allclose(new_mu, 0.5 * mu + 0.5 * c[[1, 2]].mean(axis=0))
    np.testing.assert_allclose(new_sigma, np.sqrt(0.5 * sigma**2 + 0.5 * c[[1, 2]].var(axis=0)))


def test_cem_config_errors():
    with pytest.raises(ConfigError, match="elite must be smaller"):
        CEMConfig(population=4, elite=4).validate()
    with pytest.raises(ConfigError, match="even when mirrored"):
        CEMConfig(population=5).validate()
    with pytest.raises(ConfigError, match="unknown CEM setting"):
        CEMConfig.from_kwargs({"popsize": 8})
    with pytest.raises(ConfigError, match="smoothing"):
        CEMConfig(smoothing=0.0).validate()


# ---------------------------------------------------------------------------- seeds
def test_training_seeds_are_reserved_and_no_benchmark_uses_them():
    a, b = training_seeds(0, 0, 3), training_seeds(0, 1, 3)
    assert a == [TEACHER_TRAINING_SEEDS.start + i for i in range(3)] and not set(a) & set(b)
    assert not set(training_seeds(1, 0, 3)) & set(training_seeds(0, 5, 3))
    assert all(s in TEACHER_TRAINING_SEEDS for s in training_seeds(99, 999_999, 1))
    with pytest.raises(ConfigError, match="too large"):
        training_seeds(100, 0, 1)
    with pytest.raises(ConfigError, match="reserved for training learned teachers"):
        Benchmark("b", MIX_ENV, [1, TEACHER_TRAINING_SEEDS.start + 5], [TeacherEntry("stratified")]).validate()
    tomls = sorted(SHIPPED.glob("*.toml")) + sorted((REPO / "benchmarks" / "suites").glob("*.toml"))
    assert len(tomls) >= 10
    for path in tomls:
        bench = load_benchmark(str(path))
        used = [s for s in bench.seeds if s in TEACHER_TRAINING_SEEDS]
        assert not used, f"benchmark {path.name} uses seeds {used} reserved for teacher training"


# ---------------------------------------------------------------------------- real envs
def _copy_successor_loss(initial, previous, report, terminal):
    """Test reward: the fall of the validation loss of copy and successor minus that of every other skill.
    The data that lowers it most is copy and successor data (and none of the others)."""
    return float((previous.loss[:2].mean() - report.loss[:2].mean()) - (previous.loss[2:].mean() - report.loss[2:].mean()))


@pytest.mark.slow
def test_cem_learns_the_known_best_mix_on_a_real_env(tmp_path, monkeypatch):
    """Real env, real student: a reward whose best mix is known (copy and successor only). The mean's
    fitness beats the untrained init's on the same seeds, and the mean moves its data to copy and successor."""
    monkeypatch.setitem(REWARDS, "test-copy-successor-loss", _copy_successor_loss)
    env_kwargs = dict(budget=2048, examples_per_step=512, n_val_per_cell=8, n_test_per_cell=2,
                      reward="test-copy-successor-loss", student_kwargs=SMALL_STUDENT)
    cfg = dict(population=6, seeds_per_generation=1, elite=2, sigma0=2.0, groups=["skill", "difficulty"])
    res = train_cem(MIX_ENV, tmp_path / "run", generations=3, config=cfg, env_kwargs=env_kwargs, seed=0, verbose=0)
    log = read_log(tmp_path / "run")
    assert [e["generation"] for e in log] == [0, 1, 2] and res["episodes"] == 3 * 8
    assert log[0]["mean"]["fitness"] == log[0]["init"]["fitness"] or log[0]["mu_before"] != [0.0] * 11
    gain = log[-1]["mean"]["fitness"] - log[-1]["init"]["fitness"]
    assert gain > 0.3, f"the mean gained only {gain:+.3f} over the init on the last generation's seed"
    skills = np.exp(np.asarray(json.loads((tmp_path / "run" / "policy.json").read_text())["theta"][:7]))
    share = skills[:2].sum() / skills.sum()
    assert share > 2 / 7 + 0.05, f"copy and successor get {share:.2f} of the data (equal mix: 0.29)"
    assert Path(res["curve_png"]).is_file()
    readme = (tmp_path / "run" / "README.md").read_text()
    assert "| 3 | " in readme and "`skill=copy`" in readme and "## What it learned" in readme


@pytest.mark.slow
def test_resume_is_bit_identical_and_the_player_replays_the_trainer(tmp_path):
    kw = dict(config=TINY_CEM, env_kwargs=TINY, seed=3, num_envs=1, verbose=0, plot=False)
    whole = train_cem(MIX_ENV, tmp_path / "whole", generations=2, **kw)
    assert whole["generations"] == 2
    part = train_cem(MIX_ENV, tmp_path / "part", generations=1, **kw)
    assert part["generations"] == 1
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train_cem(MIX_ENV, tmp_path / "part", generations=2, **kw)
    with pytest.raises(ConfigError, match="differs in"):
        train_cem(MIX_ENV, tmp_path / "part", generations=2, resume=True, **{**kw, "seed": 4})
    res = train_cem(MIX_ENV, tmp_path / "part", generations=2, resume=True, **kw)
    assert res["resumed_from"] == 1 and res["generations"] == 2
    a = json.loads((tmp_path / "whole" / "checkpoints" / "gen_0002.json").read_text())
    b = json.loads((tmp_path / "part" / "checkpoints" / "gen_0002.json").read_text())
    assert a == b

    def strip(e):
        return {k: v for k, v in e.items() if k not in ("seconds", "load_average")}

    assert [strip(e) for e in read_log(tmp_path / "whole")] == [strip(e) for e in read_log(tmp_path / "part")]
    pol = json.loads((tmp_path / "whole" / "policy.json").read_text())
    assert pol["training"]["generations"] == 2 and pol["theta"] == a["mu"]
    assert len(json.loads((tmp_path / "part" / "policy.json").read_text())["training"]["segments"]) == 2

    # The player: candidate 1 of generation 1, saved as a policy and played by `cem:PATH` on the single
    # env (num_envs=1, so the trainer's sub-env was the single env bit for bit), gives the logged episode.
    entry = read_log(tmp_path / "whole")[1]
    names = json.loads((tmp_path / "whole" / "run.json").read_text())["features"]
    path = LinearMixPolicy(names, entry["candidates"][1], groups=TINY_CEM["groups"]).save(
        tmp_path / "cand.json", level="mix")
    out = run_episode(MIX_ENV, f"cem:{path}", seed=entry["seeds"][0], env_kwargs=TINY)
    logged = entry["episodes"][1][0]
    assert out["val_accuracy_end"] == logged["val_end"] and out["final_test_accuracy"] == logged["test"]
    assert out["return"] == logged["return"]


@pytest.mark.slow
def test_untrained_policy_plays_the_equal_mix_and_the_cli(tmp_path):
    parser = argparse.ArgumentParser(prog="distillgym")
    add_train_teacher_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train-teacher", "--algo", "cem", "--env", MIX_ENV, "--generations", "0",
                              "--env-kwargs", json.dumps(TINY), "--out", str(tmp_path / "init"), "--quiet"])
    assert args.fn(args) == 0
    pol = json.loads((tmp_path / "init" / "policy.json").read_text())
    assert pol["theta"] == [0.0] * len(pol["feature_names"]) and pol["level"] == "mix"
    a = run_episode(MIX_ENV, f"cem:{tmp_path / 'init'}", seed=5, env_kwargs=TINY)
    b = run_episode(MIX_ENV, "stratified", seed=5, env_kwargs=TINY)
    assert a["final_test_accuracy"] == b["final_test_accuracy"]
    assert [s["reward"] for s in a["steps"]] == [s["reward"] for s in b["steps"]]
    ident = teacher_identity(f"cem:{tmp_path / 'init'}")
    assert len(ident["content"]["policy_sha256"]) == 64
    bad = parser.parse_args(["train-teacher", "--algo", "cem", "--timesteps", "8"])
    with pytest.raises(ConfigError, match="--generations"):
        bad.fn(bad)
    with pytest.raises(ConfigError, match="level is 'cell'"):
        train_cem("distillgym/ArithSkills-v2", tmp_path / "cell", generations=0, env_kwargs=TINY)
    with pytest.raises(UnknownNameError, match="no saved CEM policy"):
        make_teacher(f"cem:{tmp_path / 'nothing'}")
    teacher = CEMTeacher(tmp_path / "init")
    import gymnasium as gym

    env = gym.make("distillgym/ArithSkills-v2", **TINY)
    _, info = env.reset(seed=0)
    with pytest.raises(ConfigError, match="cannot play this env"):
        teacher.reset(env.action_space, info, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["distillgym/ArithSources-v1", "distillgym/ArithTarget-v1"])
def test_the_data_agent_ids_sources_and_targets(tmp_path, env_id):
    """The source-mix level (cells x sources, its own groups) and target cells (the target groups): the
    untrained policy plays exactly as stratified does there (through the source-mix adapter), and one
    generation trains through the native vector env."""
    kw = WARM
    res = train_cem(env_id, tmp_path / "run", generations=1, config=dict(population=2, seeds_per_generation=1,
                    elite=1), env_kwargs=kw, verbose=0, plot=False)
    names = json.loads((tmp_path / "run" / "run.json").read_text())["features"]
    if "Sources" in env_id:
        assert "skill=add*source=verified" in names and "source=noisy" in names and "target" not in names
    else:
        assert "target" in names and "progress_x_target" in names and "source=noisy" not in names
    entry = read_log(tmp_path / "run")[0]
    assert len(entry["candidates"][0]) == len(names) and all(np.isfinite(entry["fitness"]))
    init = train_cem(env_id, tmp_path / "init", generations=0, env_kwargs=kw, verbose=0)
    a = run_episode(env_id, f"cem:{init['path']}", seed=7, env_kwargs=kw)
    b = run_episode(env_id, "stratified", seed=7, env_kwargs=kw)
    assert a["final_test_accuracy"] == b["final_test_accuracy"] and a["return"] == b["return"]
    assert res["generations"] == 1


# ---------------------------------------------------------------------------- the checked-in policies
@pytest.mark.parametrize("name,env_id,level,bench_name,kw", [
    ("cem-target", "distillgym/ArithTarget-v1", "mix", "learned-cem", TINY),
    ("cem-target-needed", "distillgym/ArithTarget-v1", "mix", "learned-cem", TINY),
    ("cem-mix-v2", MIX_ENV, "mix", "learned-cem", TINY),
    ("cem-sources", "distillgym/ArithSources-v1", "source-mix", "sources", WARM),
    ("cem-sources-only", "distillgym/ArithSources-v1", "source-mix", "sources", WARM),
])
def test_checked_in_cem_policies_play_their_env_and_are_not_the_equal_mix(name, env_id, level, bench_name, kw):
    """benchmarks/policies/cem-*: the policy its benchmark names loads by its path, plays a short
    episode of its env, and has moved away from its zero init (the equal mix)."""
    path = REPO / "benchmarks" / "policies" / name / "policy.json"
    pol = json.loads(path.read_text())
    assert pol["env"] == env_id and pol["level"] == level and any(abs(w) > 0.1 for w in pol["theta"])
    bench = load_benchmark(bench_name)
    assert f"cem:benchmarks/policies/{name}/policy.json" in [t.name for t in bench.teachers]
    out = run_episode(env_id, f"cem:{path}", seed=3, env_kwargs=kw)
    assert len(out["steps"]) == 2 and 0.0 <= out["final_test_accuracy"] <= 1.0
    assert len(teacher_identity(f"cem:{path}")["content"]["policy_sha256"]) == 64
