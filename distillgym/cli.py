"""``distillgym`` command line: envs, teachers, run, bench."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from distillgym.errors import ConfigError, DistillGymError

__all__ = ["main"]


def _json_arg(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"budget\": 8192}}', got {text!r} ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _cmd_envs(args: argparse.Namespace) -> int:
    from distillgym import ENV_IDS

    for env_id in ENV_IDS:
        print(env_id)
    return 0


def _cmd_teachers(args: argparse.Namespace) -> int:
    from distillgym.agents import TEACHERS

    for name in sorted(TEACHERS):
        doc = (TEACHERS[name].__doc__ or "").strip().splitlines()
        print(f"{name:<14} {doc[0] if doc else ''}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from distillgym.runner import run_episode

    if not args.json:
        print(f"{'step':>4} {'data':<22} {'val acc':>7} {'reward':>7} {'loss':>6} {'seconds':>7}")

    def show(rec: dict[str, Any]) -> None:
        if args.json:
            return
        if "skill" in rec:
            data = f"{rec['skill']} L{rec['difficulty']}"
        elif "accepted" in rec:
            data = f"{rec['accepted']} of {rec['examples']} lines ok"
        else:
            alloc = rec.get("allocation") or []
            data = f"mix over {sum(1 for row in alloc for v in row if v)} cells"
        loss = rec["loss"] if rec["loss"] is not None else float("nan")
        print(
            f"{rec['t']:>4} {data:<22} {rec['val_accuracy']:>7.3f} {rec['reward']:>+7.3f} {loss:>6.3f} "
            f"{rec['seconds']['total']:>7.2f}",
            flush=True,
        )

    res = run_episode(args.env, args.teacher, args.seed, args.env_kwargs, args.teacher_kwargs, on_step=show)
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"final test accuracy {res['final_test_accuracy']:.3f}  (validation {res['val_accuracy_start']:.3f} -> "
            f"{res['val_accuracy_end']:.3f}, {res['examples']} examples, {res['seconds']:.1f} s)"
        )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from distillgym.bench import TeacherEntry, load_suite, read_results, run_suite
    from distillgym.leaderboard import leaderboard, render

    suite = load_suite(args.suite)
    if args.teachers:
        suite.teachers = [TeacherEntry(n) for n in args.teachers.split(",") if n]
    if args.seeds is not None:
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
        suite.seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    if args.env_kwargs:
        suite.env_kwargs = {**suite.env_kwargs, **args.env_kwargs}
    suite.validate()
    out = args.out or f"results/{suite.name}"
    print(
        f"bench {suite.name}: {len(suite.teachers)} teachers x {len(suite.seeds)} seeds on {suite.env} "
        f"-> {out} ({args.executor}, {args.workers} workers)",
        file=sys.stderr,
        flush=True,
    )
    counts = run_suite(
        suite, out, workers=args.workers, executor=args.executor, ray_address=args.ray_address,
        progress=not args.no_progress, wandb=args.wandb,
    )
    print(f"ran {counts['ran']} episodes, skipped {counts['skipped']} already in {out} ({counts['seconds']:.0f} s)",
          file=sys.stderr)
    episodes, _ = read_results(out)
    keep = {t.label for t in suite.teachers}
    episodes = [e for e in episodes if e["teacher"] in keep and e["seed"] in suite.seeds]
    rows = leaderboard(episodes)
    if args.json:
        print(json.dumps({"suite": suite.name, "out": out, "rows": rows}))
        return 0
    print(render(rows, "md"))
    try:
        from distillgym.plots import plot_results

        paths = plot_results(out)
        print("plots: " + ", ".join(str(p) for p in paths))
    except DistillGymError as err:  # matplotlib missing: the table is still there
        print(f"(no plots: {err})")
    print(f"results: {out}/results.jsonl  (distillgym leaderboard {out} --format md|csv|json)")
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from distillgym.bench import read_results
    from distillgym.leaderboard import leaderboard, render

    episodes, _ = read_results(args.results)
    if not episodes:
        raise ConfigError(f"no finished episodes in {args.results}")
    print(render(leaderboard(episodes, args.baseline, args.threshold), args.format, args.baseline, args.threshold))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from distillgym.plots import plot_results

    for p in plot_results(args.results, args.out):
        print(p)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from distillgym.runner import DEFAULT_ENV

    p = argparse.ArgumentParser(prog="distillgym", description="Benchmark and train teachers of small language models.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("envs", help="list registered environment ids").set_defaults(fn=_cmd_envs)
    sub.add_parser("teachers", help="list teacher names").set_defaults(fn=_cmd_teachers)

    r = sub.add_parser("run", help="run one episode and print a per-step table")
    r.add_argument("--env", default=DEFAULT_ENV)
    r.add_argument("--teacher", default="ioa")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--env-kwargs", type=_json_arg, default=None, help="JSON object of env constructor arguments")
    r.add_argument("--teacher-kwargs", type=_json_arg, default=None, help="JSON object of teacher arguments")
    r.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    r.set_defaults(fn=_cmd_run)

    b = sub.add_parser("bench", help="run a benchmark suite (default: quick) and print its leaderboard")
    b.add_argument("suite", nargs="?", default="quick", help="a name in benchmarks/suites/ or a path to a .toml suite")
    b.add_argument("--out", default=None, help="results directory (default results/SUITE); a rerun resumes it")
    b.add_argument("--workers", type=int, default=1, help="parallel episodes (one torch thread each)")
    b.add_argument("--executor", default="local", help="local (process pool) or ray")
    b.add_argument("--ray-address", default=None, help="address of a running Ray cluster (default: start a local one)")
    b.add_argument("--teachers", default=None, help="comma-separated teacher names, overriding the suite's")
    b.add_argument("--seeds", type=int, default=None, help="number of seeds, overriding the suite's")
    b.add_argument("--seed-start", type=int, default=0)
    b.add_argument("--env-kwargs", type=_json_arg, default=None, help="JSON object merged into the suite's env_kwargs")
    b.add_argument(
        "--wandb",
        action="store_true",
        help="also log each episode as a Weights & Biases run, grouped by teacher, in OUT/wandb "
        "(offline unless WANDB_MODE is set)",
    )
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=_cmd_bench)

    lb = sub.add_parser("leaderboard", help="leaderboard of a results directory or file")
    lb.add_argument("results")
    lb.add_argument("--format", default="md", help="md, csv or json")
    lb.add_argument("--baseline", default="uniform")
    lb.add_argument("--threshold", type=float, default=0.25, help="validation accuracy for the data-efficiency column")
    lb.set_defaults(fn=_cmd_leaderboard)

    pl = sub.add_parser("plot", help="learning curves and skill heatmaps of a results directory, as PNG")
    pl.add_argument("results")
    pl.add_argument("--out", default=None, help="folder for the PNGs (default RESULTS/plots)")
    pl.set_defaults(fn=_cmd_plot)

    from distillgym.learned import add_train_teacher_parser

    add_train_teacher_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except DistillGymError as err:
        print(f"distillgym: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
