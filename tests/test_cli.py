"""The ``distillgym`` command line (called in-process through ``main(argv)``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from distillgym import ENV_IDS
from distillgym.harness.cli import main
from distillgym.harness.runner import run_episode
from distillgym.teachers import TEACHERS

TINY_JSON = json.dumps({"budget": 1024, "examples_per_step": 512, "n_val_per_cell": 4, "n_test_per_cell": 4})
# two steps of 1024: enough for the student to get a few test items right, so means differ from 0
BENCH_JSON = json.dumps({"budget": 2048, "examples_per_step": 1024, "n_val_per_cell": 4, "n_test_per_cell": 4})
ONE_STEP_JSON = json.dumps({"budget": 512, "examples_per_step": 512, "n_val_per_cell": 4, "n_test_per_cell": 4})


def test_envs_lists_the_env_ids(capsys):
    assert main(["envs", "--ids"]) == 0
    out = capsys.readouterr().out.split()
    assert out[: len(ENV_IDS)] == list(ENV_IDS)
    assert "distillgym/ArithSkills-v0" in out


def test_envs_describes_every_registered_id_from_the_registry(capsys, monkeypatch):
    """Per id: its level, action space, budget and one line of what it is (issue 20, item 18), derived
    from the registration, so an id registered later (here a made-up one) is described too."""
    import gymnasium as gym

    spec = gym.spec("distillgym/ArithOpen-v2")
    monkeypatch.setitem(gym.registry, "distillgym/MadeUpMix-v9", spec.__class__(
        id="distillgym/MadeUpMix-v9", entry_point=spec.entry_point,
        kwargs={"suite": "arith-v2", "level": "mix", "budget": 4096, "examples_per_step": 1024, "n_errors": 3}))
    assert main(["envs"]) == 0
    out = capsys.readouterr().out.splitlines()
    ids = [line for line in out if line.startswith("distillgym/")]
    assert set(ENV_IDS) <= set(ids) and "distillgym/MadeUpMix-v9" in ids
    for env_id in ids:
        i = out.index(env_id)
        level, what = out[i + 1], out[i + 2]
        assert level.strip().startswith("level ") and " action " in level and " budget " in level, (env_id, level)
        assert what.strip().startswith("suite "), (env_id, what)
    i = out.index("distillgym/MadeUpMix-v9")
    assert "level mix, action Box(-1.0, 1.0, (7, 4), float32), budget 4,096 examples in steps of 1,024 (4 steps)" \
        in out[i + 1]
    assert "suite arith-v2 (7 skills x 4 difficulties" in out[i + 2] and "n_errors=3" in out[i + 2]
    assert "check_support=True" in out[out.index("distillgym/ArithOpen-v2") + 2]


def test_teachers_lists_every_teacher(capsys):
    assert main(["teachers"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(TEACHERS)
    for line in lines:  # each with its first sentence, whole (it was cut at the docstring's first line break)
        name, text = line.split(None, 1)
        assert text.rstrip().endswith((".", ")", "!", "?")), line


def test_help_texts_and_the_quick_benchmarks_description(capsys):
    from distillgym.harness.benchmark import load_benchmark

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--env ENV environment id", "`distillgym envs` lists them", "--teacher TEACHER teacher: a name",
                 "--seed SEED seed of the episode", "--threads THREADS torch threads"):
        assert text in out, (text, out)
    quick = load_benchmark("quick")
    assert "All built-in" not in quick.description
    assert all(t.name in quick.description for t in quick.teachers)


@pytest.mark.slow
def test_run_json_prints_one_object(capsys):
    code = main(["run", "--teacher", "uniform", "--seed", "0", "--json", "--env-kwargs", TINY_JSON])
    assert code == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1
    res = json.loads(out)
    for key in ("teacher", "seed", "env", "final_test_accuracy", "val_accuracy_start", "val_accuracy_end", "seconds"):
        assert key in res
    assert res["teacher"] == "uniform" and res["seed"] == 0 and res["env"] == "distillgym/ArithSkills-v1"
    assert 0.0 <= res["final_test_accuracy"] <= 1.0 and res["seconds"] > 0
    assert res["examples"] == 1024 and len(res["steps"]) == 2


@pytest.mark.slow
def test_run_table(capsys):
    code = main(
        [
            "run",
            "--teacher",
            "single-skill",
            "--teacher-kwargs",
            '{"skill": "add", "difficulty": 1}',
            "--env-kwargs",
            ONE_STEP_JSON,
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["step", "data", "val"]
    assert lines[1].split()[:3] == ["1", "add", "L1"]
    assert lines[-1].startswith("final test accuracy") and "512 examples" in lines[-1]


def test_unknown_teacher_exits_2_with_the_valid_names(capsys):
    code = main(["run", "--teacher", "unifrom", "--env-kwargs", ONE_STEP_JSON, "--json"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown teacher 'unifrom'" in err and "Did you mean 'uniform'" in err
    for name in TEACHERS:
        assert name in err


def test_bad_env_config_exits_2(capsys):
    assert main(["run", "--teacher", "uniform", "--env-kwargs", '{"budget": 0}']) == 2
    assert "budget must be an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["{budget: 1}", "[1, 2]"])
def test_malformed_env_kwargs_is_a_usage_error(capsys, text):
    with pytest.raises(SystemExit) as err:
        main(["run", "--env-kwargs", text])
    assert err.value.code == 2
    assert "JSON object" in capsys.readouterr().err


def test_bench_rejects_zero_seeds(capsys):
    assert main(["bench", "--seeds", "0"]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err


def _intervals(line: str) -> list[tuple[float, float]]:
    num = r"(-?\d+\.\d+|nan|-)"
    return [
        (float("nan") if lo in ("nan", "-") else float(lo), float("nan") if hi in ("nan", "-") else float(hi))
        for lo, hi in re.findall(rf"\[{num}, {num}\]", line)
    ]


@pytest.mark.slow
def test_bench_prints_mean_and_ci(capsys, tmp_path, monkeypatch):
    """Two teachers x two tiny seeds: one summary line per teacher with the mean of its
    episodes (recomputed here with run_episode, which is deterministic) and an interval around it."""
    monkeypatch.chdir(tmp_path)  # whatever the command writes stays out of the repository
    code = main(
        ["bench", "--teachers", "uniform,single-skill", "--seeds", "2", "--env-kwargs", BENCH_JSON,
         "--out", str(tmp_path / "bench-out")]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "CI" in out
    means = []
    kwargs = json.loads(BENCH_JSON)
    for teacher in ("uniform", "single-skill"):
        accs = [
            run_episode("distillgym/ArithSkills-v1", teacher, seed, kwargs)["final_test_accuracy"] for seed in (0, 1)
        ]
        mean = float(np.mean(accs))
        means.append(mean)
        lines = [ln for ln in out.splitlines() if re.split(r"[\s|]+", ln.strip(" |"))[0] == teacher]
        assert len(lines) == 1, out
        line = lines[0]
        assert f"{mean:.3f}" in line, (accs, line)
        (lo, hi), *_ = _intervals(line)
        assert lo - 1e-3 <= mean <= hi + 1e-3, line
    assert any(m > 0 for m in means)  # the numbers checked are not all trivially 0.000


@pytest.mark.slow
def test_run_table_on_the_mix_and_open_levels(capsys):
    for env, teacher, want in (
        ("distillgym/ArithMix-v1", "stratified", ["1", "mix", "over", "28", "cells"]),
        ("distillgym/ArithOpen-v1", "scripted-writer", ["1", "512", "of", "512", "lines", "ok"]),
    ):
        assert main(["run", "--env", env, "--teacher", teacher, "--env-kwargs", ONE_STEP_JSON]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines[1].split()[: len(want)] == want, lines[1]


def test_help_texts_name_the_baseline_form_the_costs_plot_and_verify(capsys):
    for cmd, words in (("leaderboard", ["LABEL@HASH"]), ("plot", ["costs"]),
                       ("verify", ["--episodes", "drift", "fingerprints"]),
                       ("bench", ["--allow-mixed-fingerprints"])):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        for w in words:
            assert w in out, (cmd, w)


def test_bench_with_a_misspelt_teacher_exits_2_before_running(capsys, tmp_path):
    code = main(["bench", "tiny", "--teachers", "uniform,ioaa", "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2
    assert "unknown teacher 'ioaa'" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.jsonl").exists()


# ---------------------------------------------------------------------------- every error path (issue 20, item 13)
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
BAD_INVOCATIONS = [
    (["run", "--env", "distillgym/NoSuch-v1", "--teacher", "uniform"], "unknown env id 'distillgym/NoSuch-v1'"),
    (["run", "--env", "ArithSkills-v1"], "distillgym/ArithSkills-v1"),
    (["run", "--teacher", "nosuch"], "unknown teacher 'nosuch'"),
    (["run", "--teacher", "uniform", "--teacher-kwargs", '{"x": 1}'], "its arguments are ['order']"),
    (["run", "--env-kwargs", '{"budgte": 1}'], "Did you mean 'budget'"),
    (["run", "--env-kwargs", "{bad"], "expected a JSON object"),
    (["run", "--seed", "abc"], "invalid int value"),
    (["run", "--bogus"], "unrecognized arguments"),
    (["nosuchcmd"], "invalid choice"),
    (["bench", "nosuch"], "unknown benchmark 'nosuch'"),
    (["bench", "tiny", "--workers", "0"], "--workers must be >= 1"),
    (["bench", "tiny", "--executor", "nope"], "unknown executor 'nope'"),
    (["leaderboard", "no-such-dir"], "no results at"),
    (["plot", "no-such-dir"], "no results at"),
    (["verify", "no-such-dir"], "no results at"),
    (["train-teacher", "--timesteps", "1", "--env", "distillgym/NoSuch-v1"], "unknown env"),
    (["bench", "tiny", "--teachers", "nosuch"], "unknown teacher 'nosuch'"),
    (["bench", "tiny", "--env-kwargs", '{"budgte": 1}'], "Did you mean 'budget'"),
    (["leaderboard", str(RESULTS / "mix"), "--baseline", "stratifed"], "Did you mean 'stratified'"),
    (["leaderboard", str(RESULTS / "mix"), "--format", "xml"], "unknown format 'xml'"),
    (["plot", str(RESULTS / "mix"), "--out", "/proc/no/such/dir"], "No such file or directory"),
]


@pytest.mark.parametrize("argv,says", BAD_INVOCATIONS, ids=[" ".join(a[:3]) for a, _ in BAD_INVOCATIONS])
def test_every_cli_error_is_one_line_exit_2_and_writes_nothing(argv, says, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:  # argparse exits; main() returns: both end the same way
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "", out  # no table header, no partial output
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distillgym: error: "), err
    assert says in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_run_uses_one_torch_thread_unless_told(capsys):
    """`distillgym run --threads` (default 1, as the runner uses; issue 20, item 16)."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["run", "--teacher", "uniform", "--json", "--env-kwargs", ONE_STEP_JSON]) == 0
        assert json.loads(capsys.readouterr().out)["torch_threads"] == 1 and torch.get_num_threads() == 1
        assert main(["run", "--teacher", "uniform", "--json", "--threads", "2", "--env-kwargs", ONE_STEP_JSON]) == 0
        assert json.loads(capsys.readouterr().out)["torch_threads"] == 2
        assert main(["run", "--threads", "0"]) == 2
        assert "--threads must be >= 1" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_describe_env_gives_the_action_space_the_env_has():
    """``distillgym envs`` derives each id's action space without building a student; it is the one the
    built env has (every id but the pretrained-student ones, which would load a model)."""
    import warnings

    import gymnasium as gym

    from distillgym.envs import PRETRAINED_STUDENT_IDS, describe_env, registered_ids

    for env_id in registered_ids():
        if env_id in PRETRAINED_STUDENT_IDS or "LLMData" in env_id:
            continue
        if env_id.startswith("distillgym/ReasoningGym-"):
            pytest.importorskip("reasoning_gym")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(env_id, n_val_per_cell=1, n_test_per_cell=1)
        space = env.action_space
        env.close()
        want = f"Text(up to {space.max_length:,} characters)" if isinstance(space, gym.spaces.Text) else str(space)
        assert describe_env(env_id)["action_space"] == want, env_id
