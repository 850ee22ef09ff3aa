"""``distillgym`` command line: envs, teachers, run, bench, headroom, leaderboard, plot, verify, train-teacher."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from distillgym.errors import ConfigError, DistillGymError, UnknownNameError, did_you_mean

__all__ = ["main"]


def _json_arg(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"budget\": 8192}}', got {text!r} ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, its lines joined."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    m = re.search(r"(?<=[.!?])\s+(?=[A-Z(`])", para)
    return para[: m.start()] if m else para


def _cmd_envs(args: argparse.Namespace) -> int:
    from distillgym.envs import describe_env, register_llm_env, registered_ids

    register_llm_env()  # listed too (it needs the smollm2 extra only when made)
    ids = registered_ids()
    if args.ids:
        print("\n".join(ids))
        return 0
    for env_id in ids:
        d = describe_env(env_id)
        print(env_id)
        print(f"    level {d['level']}, action {d['action_space']}, budget {d['budget']:,} examples in steps of "
              f"{d['examples_per_step']:,} ({d['steps']} steps){', native vector env' if d['vector'] else ''}")
        print(f"    {d['what']}")
    print("\narguments: the fields of distillgym.config.EnvConfig (gym.make keyword arguments override an id's "
          "defaults); version history: distillgym/envs/__init__.py", file=sys.stderr)
    return 0


def _cmd_teachers(args: argparse.Namespace) -> int:
    from distillgym.teachers import TEACHERS

    width = max(len(n) for n in TEACHERS) + 2
    for name in sorted(TEACHERS):
        print(f"{name:<{width}}{_first_sentence(TEACHERS[name].__doc__)}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from distillgym.harness.runner import run_episode

    def show(rec: dict[str, Any]) -> None:
        if args.json:
            return
        if rec["t"] == 1:  # the header with the first step, so that an error before it prints nothing here
            print(f"{'step':>4} {'data':<22} {'val acc':>7} {'reward':>7} {'loss':>6} {'seconds':>7}")
        if "skill" in rec:
            data = f"{rec['skill']} L{rec['difficulty']}"
        elif "accepted" in rec:
            data = f"{rec['accepted']} of {rec['examples']} lines ok"
        else:
            alloc = rec.get("allocation") or []  # (skills, difficulties), or (..., sources) on a source-mix level
            data = f"mix over {sum(1 for row in alloc for v in row if (sum(v) if isinstance(v, list) else v))} cells"
        loss = rec["loss"] if rec["loss"] is not None else float("nan")
        print(
            f"{rec['t']:>4} {data:<22} {rec['val_accuracy']:>7.3f} {rec['reward']:>+7.3f} {loss:>6.3f} "
            f"{rec['seconds']['total']:>7.2f}",
            flush=True,
        )

    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)  # before the env is made: the student trains in this process
    res = run_episode(args.env, args.teacher, args.seed, args.env_kwargs, args.teacher_kwargs, on_step=show)
    res["torch_threads"] = torch.get_num_threads()
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"final test accuracy {res['final_test_accuracy']:.3f}  (validation {res['val_accuracy_start']:.3f} -> "
            f"{res['val_accuracy_end']:.3f}, {res['examples']} examples, {res['seconds']:.1f} s)"
        )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from distillgym.harness.bench import run_benchmark
    from distillgym.harness.benchmark import TeacherEntry, load_benchmark
    from distillgym.harness.leaderboard import leaderboard, render
    from distillgym.harness.results import read_results

    if args.list:
        from distillgym.harness.benchmark import list_benchmarks

        for name, path in sorted(list_benchmarks().items()):
            print(f"{name:<22} {path}")
        return 0
    benchmark = load_benchmark(args.benchmark)
    if args.teachers:
        benchmark.teachers = [TeacherEntry(n) for n in args.teachers.split(",") if n]
    if args.seeds is not None:
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
        benchmark.seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    if args.env_kwargs:
        benchmark.env_kwargs = {**benchmark.env_kwargs, **args.env_kwargs}
    benchmark.validate()
    from distillgym.harness.executors import EXECUTORS

    if args.executor not in EXECUTORS:
        raise UnknownNameError(f"unknown executor {args.executor!r}: {did_you_mean(args.executor, EXECUTORS)}")
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    benchmark.resolve()  # every env and teacher built once: a bad name or argument fails before the banner
    out = args.out or f"results/{benchmark.name}"
    print(
        f"bench {benchmark.name}: {len(benchmark.teachers)} teachers x {len(benchmark.seeds)} seeds on {benchmark.env} "
        f"-> {out} ({args.executor}, {args.workers} workers)",
        file=sys.stderr,
        flush=True,
    )
    counts = run_benchmark(
        benchmark, out, workers=args.workers, executor=args.executor, ray_address=args.ray_address,
        progress=not args.no_progress, wandb=args.wandb, allow_mixed_fingerprints=args.allow_mixed_fingerprints,
        say=lambda msg: print(f"distillgym: {msg}", file=sys.stderr, flush=True), num_envs=args.num_envs,
    )
    print(f"ran {counts['ran']} episodes, skipped {counts['skipped']} already in {out} ({counts['seconds']:.0f} s)",
          file=sys.stderr)
    episodes, _ = read_results(out)
    keep = {(j.label, j.config_hash) for j in benchmark.jobs()}
    episodes = [e for e in episodes if (e["teacher"], e["config_hash"]) in keep and e["seed"] in benchmark.seeds]
    rows = leaderboard(episodes)
    if args.json:
        print(json.dumps({"suite": benchmark.name, "out": out, "rows": rows, "failed": counts["failures"]}))
        return _failure_summary(counts, out)
    print(render(rows, "md"))
    try:
        from distillgym.harness.plots import plot_results

        paths = plot_results(out)
        print("plots: " + ", ".join(str(p) for p in paths))
    except DistillGymError as err:  # matplotlib missing: the table is still there
        print(f"(no plots: {err})")
    print(f"results: {out}/results.jsonl  (distillgym leaderboard {out} --format md|csv|json)")
    return _failure_summary(counts, out)


def _failure_summary(counts: dict[str, Any], out: str) -> int:
    """Print the failed episodes of a run (stderr) and return the exit code: 0, or 1 when any failed."""
    if not counts["failed"]:
        return 0
    print(f"distillgym: {counts['failed']} of {counts['ran']} episodes failed (recorded as failed lines with their "
          f"tracebacks in {out}/results.jsonl; run the same command again to retry them):", file=sys.stderr)
    for f in counts["failures"]:
        first = f["error"].splitlines()[0] if f["error"] else ""
        print(f"  {f['label']} seed {f['seed']} [{f['config_hash'][:8]}]: {first}", file=sys.stderr)
    return 1


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from distillgym.harness.headroom import headroom_episodes, load_headroom
    from distillgym.harness.leaderboard import leaderboard, render
    from distillgym.harness.results import read_results

    episodes, _ = read_results(args.results)
    if not episodes:
        raise ConfigError(f"no finished episodes in {args.results}")
    paths = list(args.headroom or [])
    own = Path(args.results) / "headroom.json"
    if not paths and own.is_file():
        paths.append(str(own))
    for path in paths:  # the headroom search's best policy: a reference row of its env
        episodes = episodes + headroom_episodes(load_headroom(path))
    baseline = args.baseline or "uniform"
    if args.baseline is not None:  # a baseline asked for by name must exist (the default may be absent)
        labels = sorted({str(e["teacher"]) for e in episodes})
        if baseline.split("@")[0] not in labels:
            raise UnknownNameError(f"--baseline {baseline!r} is not a teacher label of {args.results}: "
                                   f"{did_you_mean(baseline.split('@')[0], labels)}")
    print(render(leaderboard(episodes, baseline, args.threshold), args.format, baseline, args.threshold))
    return 0


def _cmd_headroom(args: argparse.Namespace) -> int:
    from distillgym.harness.headroom import (
        DEFAULT_CONFIRM_SEEDS,
        DEFAULT_SCREEN_SEEDS,
        FAMILIES,
        headroom,
        load_policy_file,
        parse_seeds,
    )

    families: list[str] = []
    extra = []
    for item in (args.family.split(",") if args.family else ["all"]):
        item = item.strip()
        if item == "all":
            families += list(FAMILIES)
        elif item.endswith(".json"):
            extra += load_policy_file(item)
        elif item:
            families.append(item)
    report = headroom(
        args.env_id, args.env_kwargs,
        screen_seeds=parse_seeds(args.screen_seeds) if args.screen_seeds else DEFAULT_SCREEN_SEEDS,
        confirm_seeds=parse_seeds(args.confirm_seeds) if args.confirm_seeds else DEFAULT_CONFIRM_SEEDS,
        top=args.top, families=list(dict.fromkeys(families)), policies=extra, out=args.out, num_envs=args.num_envs,
        workers=args.workers, progress=not args.no_progress, allow_mixed_fingerprints=args.allow_mixed_fingerprints,
    )
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "best_episodes"}, default=str))
        return 0
    from distillgym.harness.headroom import render_headroom

    print(render_headroom(report))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from distillgym.harness.verify import render_verify, verify

    def show(row: dict[str, Any]) -> None:
        if args.json:
            return
        now = "FAILED" if row["status"] != "ok" else f"{row['now']:.4f}"
        print(f"distillgym: verify: {row['teacher']} seed {row['seed']}: recorded {row['recorded']:.4f}, rerun {now}"
              + (" (identical)" if row.get("exact") else ""), file=sys.stderr, flush=True)

    report = verify(args.results, episodes=args.episodes, seed=args.seed, threads=args.threads,
                    workers=args.workers, on_episode=show)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, default=str) if args.json else render_verify(report))
    tol = args.tolerance
    bad = [r for r in report["rows"] if r["status"] != "ok" or (not r["exact"] if tol == 0 else abs(r["drift"]) > tol)]
    return 1 if bad else 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from distillgym.harness.plots import plot_results

    for p in plot_results(args.results, args.out):
        print(p)
    return 0


TRAIN_ALGOS = ("ppo", "cem")
"""``train-teacher --algo``: PPO (:mod:`distillgym.train.ppo`) or CEM (:mod:`distillgym.train.cem`)."""


def _cmd_train_teacher(args: argparse.Namespace) -> int:
    import shlex

    from distillgym.errors import ConfigError, UnknownNameError, did_you_mean

    if args.algo not in TRAIN_ALGOS:
        raise UnknownNameError(f"unknown algorithm {args.algo!r}: {did_you_mean(str(args.algo), TRAIN_ALGOS)}")
    command = "distillgym " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    env_kwargs = dict(args.env_kwargs or {})
    if args.device is not None:
        env_kwargs["device"] = args.device
    if args.algo == "cem":
        return _train_cem(args, env_kwargs, command)
    if args.timesteps is None:
        raise ConfigError("train-teacher --algo ppo needs --timesteps N (env steps to train for; 0 saves the untrained "
                          "policy)")
    for flag, value in (("--generations", args.generations), ("--cem-kwargs", args.cem_kwargs),
                        ("--num-envs", args.num_envs)):
        if value is not None:
            raise ConfigError(f"{flag} is an option of --algo cem; PPO takes --timesteps, --n-envs and --ppo-kwargs")
    from distillgym.train.ppo import train_teacher

    res = train_teacher(
        env_id=args.env,
        algo=args.algo,
        timesteps=args.timesteps,
        n_envs=args.n_envs,
        seed=args.seed,
        out_dir=args.out,
        env_kwargs=env_kwargs,
        vec=args.vec or "subproc",
        checkpoint_every=args.checkpoint_every,
        ppo_kwargs=args.ppo_kwargs,
        verbose=0 if args.quiet else 1,
        features=None if args.features in (None, "none") else args.features,
        policy=args.policy,
        policy_kwargs=args.policy_kwargs,
        resume=args.resume,
        max_seconds=args.max_hours * 3600.0 if args.max_hours is not None else None,
        torch_threads=args.torch_threads,
        command=command,
    )
    print(
        f"saved policy to {res['path']} ({res['timesteps']} env steps; this run {res['seconds']:.1f} s, "
        f"{res['seconds_per_1000_steps']:.1f} s per 1000 env steps"
        f"{', stopped by --max-hours' if res['stopped_by_time'] else ''}); checkpoints in {res['checkpoints']}"
    )
    if res["curve_png"]:
        print(f"training curve: {res['curve_png']}")
    print(f"use it as the teacher 'ppo:{res['path']}', e.g. distillgym run --teacher ppo:{res['path']}")
    return 0


def _train_cem(args: argparse.Namespace, env_kwargs: dict[str, Any], command: str) -> int:
    from distillgym.errors import ConfigError
    from distillgym.train.cem import train_cem
    from distillgym.train.ppo import default_out_dir

    if args.timesteps is not None:
        raise ConfigError("--algo cem counts generations, not timesteps: use --generations N (0 writes the untrained "
                          "policy, the equal mix)")
    for flag, value in (("--ppo-kwargs", args.ppo_kwargs), ("--policy-kwargs", args.policy_kwargs),
                        ("--features", args.features)):
        if value is not None:
            raise ConfigError(f"{flag} is a PPO option; --algo cem takes --cem-kwargs (population, elite, groups, ...)")
    if args.policy != "MultiInputPolicy":
        raise ConfigError("--policy is a PPO option; --algo cem trains a linear mix policy (distillgym.train.mix_policy)")
    res = train_cem(
        env_id=args.env,
        out_dir=args.out or default_out_dir(args.env, args.seed, "cem"),
        generations=args.generations if args.generations is not None else 20,
        config=args.cem_kwargs,
        env_kwargs=env_kwargs,
        seed=args.seed,
        num_envs=args.num_envs,
        vec=args.vec or "native",
        resume=args.resume,
        max_seconds=args.max_hours * 3600.0 if args.max_hours is not None else None,
        torch_threads=args.torch_threads,
        command=command,
        verbose=0 if args.quiet else 1,
    )
    print(f"saved policy to {res['path']} ({res['generations']} generations, {res['episodes']} episodes in this run, "
          f"{res['seconds']:.1f} s{', stopped by --max-hours' if res['stopped_by_time'] else ''})")
    if res["curve_png"]:
        print(f"training curve: {res['curve_png']}")
    print(f"use it as the teacher 'cem:{res['path']}', e.g. distillgym run --env {args.env} --teacher cem:{res['path']}")
    return 0


def add_train_teacher_parser(subparsers: Any) -> Any:
    """The ``train-teacher`` subcommand (:func:`distillgym.train.ppo.train_teacher`,
    :func:`distillgym.train.cem.train_cem`)."""
    from distillgym.envs import DEFAULT_ENV
    from distillgym.train.ppo import POLICY_NAMES, VEC_KINDS

    p = subparsers.add_parser(
        "train-teacher",
        help="train a learned teacher (PPO: OUT/policy.zip; CEM: OUT/policy.json)",
        description="Train a teacher: --algo ppo (Stable-Baselines3 PPO on N envs: worker processes or one native "
                    "vector env; the teacher 'ppo:OUT/policy.zip') or --algo cem (the cross-entropy method over a "
                    "linear per-cell mix policy, one population of students per generation; the teacher "
                    "'cem:OUT/policy.json').",
    )
    p.add_argument("--env", default=DEFAULT_ENV)
    p.add_argument("--algo", default="ppo", help=f"one of {list(TRAIN_ALGOS)} (default ppo)")
    p.add_argument("--timesteps", type=int, default=None,
                   help="PPO: env steps to train for, summed over the envs (0: save the untrained initial policy)")
    p.add_argument("--generations", type=int, default=None,
                   help="CEM: generations in all (default 20; 0: write the untrained policy, the equal mix)")
    p.add_argument("--cem-kwargs", type=_json_arg, default=None,
                   help="CEM: JSON object of distillgym.train.cem.CEMConfig fields (population, seeds_per_generation, "
                        "elite, sigma0, smoothing, min_sigma, mirrored, eval_mean, eval_init, groups, ...)")
    p.add_argument("--num-envs", type=int, default=None,
                   help="CEM: sub-envs of the vector env (default: every (candidate, seed) pair of a generation at once)")
    p.add_argument("--n-envs", type=int, default=2,
                   help="PPO: envs run in parallel (one worker process each; with --vec native, one population member each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default runs/<algo>-<env>-<seed>-<time>)")
    p.add_argument("--env-kwargs", type=_json_arg, default=None, help="JSON object of env constructor arguments")
    p.add_argument("--device", default=None,
                   help="the students' device (env kwarg 'device': auto, cpu or cuda); the policy's is ppo-kwargs' device")
    p.add_argument("--ppo-kwargs", type=_json_arg, default=None, help="PPO: JSON object overriding PPO hyperparameters")
    p.add_argument("--policy", default="MultiInputPolicy",
                   help=f"PPO: one of {list(POLICY_NAMES)} (cellwise: weights shared across cells; mix level, "
                        "cells-v1 features)")
    p.add_argument("--policy-kwargs", type=_json_arg, default=None,
                   help="PPO: JSON object of policy arguments (SB3's, e.g. log_std_init; cellwise: hidden)")
    p.add_argument("--features", default=None,
                   help="PPO: observation features for the policy: cells-v1 (see distillgym.train.features) or none "
                        "(the env's own)")
    p.add_argument("--vec", default=None,
                   help=f"vectorised env kind; PPO: one of {list(VEC_KINDS)} (default subproc; native: one population "
                        "of students, v2 ids such as distillgym/ArithMix-v2); CEM: native (default) or sync")
    p.add_argument("--checkpoint-every", type=int, default=1024, help="PPO: save a checkpoint every N env steps "
                   "(CEM checkpoints every generation)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--max-hours", type=float, default=None,
                   help="stop before a rollout (PPO) or generation (CEM) that would end after this many hours")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch threads in this process (the native env trains its students here; default 1)")
    p.add_argument("--quiet", action="store_true", help="do not print the training log")
    p.set_defaults(fn=_cmd_train_teacher)
    return p


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other error of the command line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"distillgym: error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from distillgym.envs import DEFAULT_ENV

    p = _Parser(prog="distillgym", description="Benchmark and train teachers of small language models.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("envs", help="list the registered environment ids: level, action space, budget and what each is")
    e.add_argument("--ids", action="store_true", help="print the ids only, one per line")
    e.set_defaults(fn=_cmd_envs)
    sub.add_parser("teachers", help="list teacher names, each with its first sentence").set_defaults(fn=_cmd_teachers)

    r = sub.add_parser("run", help="run one episode and print a per-step table")
    r.add_argument("--env", default=DEFAULT_ENV,
                   help=f"environment id (default {DEFAULT_ENV}; `distillgym envs` lists them)")
    r.add_argument("--teacher", default="ioa",
                   help="teacher: a name (`distillgym teachers`), ppo:PATH, cem:PATH or package.module:Class (default ioa)")
    r.add_argument("--seed", type=int, default=0, help="seed of the episode and the teacher (default 0)")
    r.add_argument("--env-kwargs", type=_json_arg, default=None, help="JSON object of env constructor arguments")
    r.add_argument("--teacher-kwargs", type=_json_arg, default=None, help="JSON object of teacher arguments")
    r.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    r.add_argument("--threads", type=int, default=1,
                   help="torch threads for the student (default 1, as the benchmark runner uses: on a busy machine "
                        "more threads spin-wait and make training many times slower)")
    r.set_defaults(fn=_cmd_run)

    b = sub.add_parser("bench", help="run a benchmark (default: quick) and print its leaderboard")
    b.add_argument("benchmark", nargs="?", default="quick", metavar="BENCHMARK",
                   help="a benchmark name (`distillgym bench --list` shows them: distillgym/harness/benchmarks/ and "
                        "./benchmarks/suites/) or a path to a .toml file")
    b.add_argument("--list", action="store_true", help="list the benchmark names and exit")
    b.add_argument("--out", default=None, help="results directory (default results/SUITE); a rerun resumes it")
    b.add_argument("--workers", type=int, default=1, help="parallel episodes (one torch thread each)")
    b.add_argument("--executor", default="local",
                   help="local (process pool), ray, or population (the episodes of an id with a native vector env "
                        "as populations of students; see --num-envs)")
    b.add_argument("--num-envs", type=int, default=None,
                   help="with --executor population: students per population (default: chosen to fit the machine)")
    b.add_argument("--ray-address", default=None, help="address of a running Ray cluster (default: start a local one)")
    b.add_argument("--teachers", default=None, help="comma-separated teacher names, overriding the benchmark's")
    b.add_argument("--seeds", type=int, default=None, help="number of seeds, overriding the benchmark's")
    b.add_argument("--seed-start", type=int, default=0)
    b.add_argument("--env-kwargs", type=_json_arg, default=None, help="JSON object merged into the benchmark's env_kwargs")
    b.add_argument(
        "--wandb",
        action="store_true",
        help="also log each episode as a Weights & Biases run, grouped by teacher, in OUT/wandb "
        "(offline unless WANDB_MODE is set)",
    )
    b.add_argument(
        "--allow-mixed-fingerprints",
        action="store_true",
        help="resume into a results directory even where its finished episodes of the same config were recorded "
        "with another fingerprint (machine, library versions, commit, threads); without it such a resume stops",
    )
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=_cmd_bench)

    lb = sub.add_parser("leaderboard", help="leaderboard of a results directory or file")
    lb.add_argument("results")
    lb.add_argument("--format", default="md", help="md, csv or json")
    lb.add_argument(
        "--baseline",
        default=None,
        help="teacher label the paired tests compare against (default uniform), or LABEL@HASH (a config-hash prefix) "
        "when the label has several configurations in one env",
    )
    lb.add_argument("--threshold", type=float, default=0.25, help="validation accuracy for the data-efficiency column")
    lb.add_argument("--headroom", action="append", default=None, metavar="PATH",
                    help="a headroom result (OUT/headroom.json or OUT of `distillgym headroom`): its best confirmed "
                         "policy is shown as a reference row 'headroom: <policy>' of its env (repeatable; default: "
                         "RESULTS/headroom.json when there is one)")
    lb.set_defaults(fn=_cmd_leaderboard)

    hr_help = ("search a family of simple policies (fixed mixes, schedules, adaptive rules) for the best teaching on "
               "an env: screen them on a few seeds, confirm the best on >= 10 fresh seeds against the equal mix and "
               "uniform (paired tests, Holm); resumable")
    h = sub.add_parser("headroom", help=hr_help, description=hr_help + ". See distillgym/harness/headroom.py.")
    h.add_argument("env_id", metavar="ENV_ID")
    h.add_argument("--screen-seeds", default=None,
                   help="screen seeds, e.g. 20000-20002 or 1,2,5 (default 20000-20002)")
    h.add_argument("--confirm-seeds", default=None,
                   help="confirmation seeds, at least 10, disjoint from the screen's and every benchmark's "
                        "(default 21000-21009)")
    h.add_argument("--top", type=int, default=3, help="how many of the screen's best policies to confirm (default 3)")
    h.add_argument("--family", default=None,
                   help="comma-separated policy families (dirichlet, profiles, leave-out, schedules, adaptive, "
                        "sources; default all) and/or JSON files listing more policies [{name, kwargs, label}]")
    h.add_argument("--out", default=None, help="output folder (default results/headroom/<env name>); a rerun resumes it")
    h.add_argument("--num-envs", type=int, default=None,
                   help="students per population where the id has a native vector env (default: chosen to fit the "
                        "machine, at most 8 on CPU)")
    h.add_argument("--workers", type=int, default=1, help="processes, one torch thread each (default 1)")
    h.add_argument("--env-kwargs", type=_json_arg, default=None, help="JSON object of env constructor arguments")
    h.add_argument("--allow-mixed-fingerprints", action="store_true",
                   help="resume into results recorded with another fingerprint (see bench)")
    h.add_argument("--no-progress", action="store_true")
    h.add_argument("--json", action="store_true", help="print the report as JSON instead of HEADROOM.md")
    h.set_defaults(fn=_cmd_headroom)

    plot_help = ("learning curves, skill heatmaps and the costs plot (final test accuracy against model tokens per "
                 "episode) of a results directory, as PNG")
    pl = sub.add_parser("plot", help=plot_help, description=plot_help)
    pl.add_argument("results")
    pl.add_argument("--out", default=None, help="folder for the PNGs (default RESULTS/plots)")
    pl.set_defaults(fn=_cmd_plot)

    verify_help = ("re-run recorded episodes of a results directory and report exact equality or the drift of final "
                   "test accuracy, with the recorded and current fingerprints side by side; exits 1 when any rerun "
                   "differs (beyond --tolerance)")
    v = sub.add_parser("verify", help=verify_help, description=verify_help)
    v.add_argument("results", help="a results directory (or its results.jsonl) written by `distillgym bench`")
    v.add_argument("--episodes", type=int, default=10, help="how many episodes to re-run (default 10; all if fewer)")
    v.add_argument("--seed", type=int, default=0, help="seed of the choice of episodes (default 0)")
    v.add_argument("--threads", type=int, default=None,
                   help="torch threads per rerun (default: the recorded fingerprint's, else 1)")
    v.add_argument("--workers", type=int, default=1, help="parallel reruns")
    v.add_argument("--tolerance", type=float, default=0.0,
                   help="exit 0 when every |drift| of final test accuracy is at most this (default 0: bit-identical "
                   "episodes required)")
    v.add_argument("--out", default=None, help="also write the full report as JSON to this file")
    v.add_argument("--json", action="store_true", help="print the report as one JSON object")
    v.set_defaults(fn=_cmd_verify)

    add_train_teacher_parser(sub)
    add_tune_parser(sub)
    return p


def _cmd_tune(args: argparse.Namespace) -> int:
    from distillgym.harness.tune import parse_seeds, tune

    report = tune(
        args.teacher, args.env, env_kwargs=args.env_kwargs, seeds=parse_seeds(args.seeds), grid=args.grid,
        by=args.by, out=args.out, workers=args.workers, executor=args.executor, progress=not args.no_progress,
    )
    best = report["best"]
    print(f"best of {len(report['rows'])} settings on seeds {report['seeds']} by mean final "
          f"{'validation' if report['by'] == 'val' else 'test'} accuracy: {best['label']} "
          f"(default {report['default']['label']}); report: {args.out or 'results/tune/...'}/TUNE.md")
    print(json.dumps({"teacher": report["teacher"], "kwargs": best["kwargs"]}))
    return 0


def add_tune_parser(subparsers: Any) -> Any:
    """The ``tune`` subcommand (:func:`distillgym.harness.tune.tune`)."""
    from distillgym.harness.executors import EXECUTORS
    from distillgym.harness.tune import BY, DEFAULT_TUNE_SEEDS

    p = subparsers.add_parser(
        "tune", help="tune a teacher's hyperparameters on tuning seeds (a grid; the best by validation accuracy)",
        description="Run a grid of a teacher's own hyperparameters (built-in for doremi, odm, skill-it, aioli; or "
                    "--grid) on tuning seeds disjoint from every benchmark's, and report the best setting. Evaluate "
                    "it on held-out seeds with a benchmark.",
    )
    p.add_argument("teacher", help="a registered teacher name (distillgym teachers)")
    p.add_argument("--env", default="distillgym/ArithMix-v2")
    p.add_argument("--env-kwargs", type=_json_arg, default=None, help="JSON object of env constructor arguments")
    p.add_argument("--seeds", default=f"{DEFAULT_TUNE_SEEDS[0]}-{DEFAULT_TUNE_SEEDS[-1]}",
                   help="tuning seeds, e.g. 22000-22002 or 1,2,5 (default %(default)s)")
    p.add_argument("--grid", type=_json_arg, default=None,
                   help='JSON object argument -> list of values (default: the built-in grid), e.g. \'{"eta": [0.1, 1]}\'')
    p.add_argument("--by", default="val", help=f"ranking: one of {list(BY)} (mean final validation or test accuracy)")
    p.add_argument("--out", default=None, help="output folder (default results/tune/<teacher>-<env>)")
    p.add_argument("--workers", type=int, default=1, help="parallel episodes")
    p.add_argument("--executor", default="local", help=f"one of {list(EXECUTORS)}")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=_cmd_tune)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every error in what was asked for (an unknown name, a bad value, a missing
    file) is one line ``distillgym: error: ...`` on stderr, exit status 2, and nothing written."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except DistillGymError as err:
        print(f"distillgym: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file or folder that cannot be read or written (--out in a read-only place, ...)
        print(f"distillgym: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        import gymnasium

        if isinstance(err, gymnasium.error.Error):  # e.g. an env id gymnasium cannot make
            print(f"distillgym: error: {err} (`distillgym envs` lists the ids)", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
