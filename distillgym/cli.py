"""``distillgym`` command line: envs, teachers, run, bench."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from distillgym.errors import DistillGymError

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


def _fmt(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _cmd_run(args: argparse.Namespace) -> int:
    from distillgym.runner import run_episode

    if not args.json:
        print(f"{'step':>4} {'skill':<10} {'L':>1} {'val acc':>7} {'reward':>7} {'loss':>6} {'seconds':>7}")

    def show(rec: dict[str, Any]) -> None:
        if not args.json:
            print(
                f"{rec['t']:>4} {rec['skill']:<10} {rec['difficulty']:>1} {rec['val_accuracy']:>7.3f} "
                f"{rec['reward']:>+7.3f} {rec['loss']:>6.3f} {rec['seconds']['total']:>7.2f}",
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
    from distillgym.runner import run_many, summarize

    teachers = args.teachers.split(",")
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    out = open(args.out, "a") if args.out else None
    t0 = time.perf_counter()

    def done(r: dict[str, Any]) -> None:
        print(f"  {r['teacher']:<14} seed {r['seed']:<3} test {r['final_test_accuracy']:.3f}  ({r['seconds']:.1f} s)",
              file=sys.stderr, flush=True)
        if out:
            out.write(json.dumps(r) + "\n")
            out.flush()

    print(f"bench: {len(teachers)} teachers x {len(seeds)} seeds on {args.env}", file=sys.stderr, flush=True)
    try:
        results = run_many(teachers, seeds, args.env, args.env_kwargs, args.workers, on_episode=done)
    finally:
        if out:
            out.close()
    rows = summarize(results)
    if args.json:
        print(json.dumps({"env": args.env, "seeds": seeds, "summary": rows, "seconds": time.perf_counter() - t0}))
        return 0
    print(f"\n{args.env}, {len(seeds)} seeds, final test accuracy (mean and 95% t-interval); Welch p vs uniform")
    print(f"{'teacher':<14} {'n':>2} {'mean':>6} {'95% CI':>15} {'p vs uniform':>13}")
    for r in rows:
        ci = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        p = r.get("p_vs_uniform")
        print(f"{r['teacher']:<14} {r['n']:>2} {r['mean']:>6.3f} {ci:>15} {(_fmt(p) if p is not None else '-'):>13}")
    print(f"({time.perf_counter() - t0:.0f} s)")
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

    b = sub.add_parser("bench", help="run several teachers over several seeds; mean and 95%% CI per teacher")
    b.add_argument("--env", default=DEFAULT_ENV)
    b.add_argument("--teachers", default="random,uniform,single-skill,ioa", help="comma-separated teacher names")
    b.add_argument("--seeds", type=int, default=5, help="number of seeds")
    b.add_argument("--seed-start", type=int, default=0)
    b.add_argument("--env-kwargs", type=_json_arg, default=None)
    b.add_argument("--workers", type=int, default=1, help="parallel processes (one torch thread each)")
    b.add_argument("--out", default=None, help="append one JSON line per episode to this file")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=_cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "seeds", 1) < 1:
        print("distillgym: error: --seeds must be >= 1", file=sys.stderr)
        return 2
    try:
        return int(args.fn(args))
    except DistillGymError as err:
        print(f"distillgym: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
