"""Are a task suite's declared prerequisites real for the student?

For each dependent skill (by default every skill with a prerequisite: for ``arith`` successor,
add, sub, mul, compare, chain) this script counts the training examples the student needs to
reach ``--target`` (default 80%) exact-match accuracy on a held-out set of that skill:

  (a) "from start": from the env's starting student (a fresh ``TinyStudent`` built from the
      default ``StudentConfig``, on CPU), trained on the dependent skill alone;
  (b) "after prereqs": from a student first trained on the skill's *transitive*
      prerequisites until every one of them is at ``--target`` at the same time (each
      chunk is split evenly over the prerequisites still below target), then trained on
      the dependent skill alone, exactly as in (a).

Between the phases ``load_state`` is used: (a) starts from ``load_state(initial weights)``;
(b) calls ``load_state(student.state())`` after the prerequisite training, which keeps the
weights but clears the replay buffer, the AdamW moments and the learning-rate warm-up. So
in both phases the dependent skill is trained on its own data (replay then only replays
that skill), with the same data stream, and only the starting weights differ.

Training goes in chunks of ``--chunk`` examples (one ``student.train`` call each, i.e. a
pass of AdamW steps with the default batch of 128 and the student's replay fraction); after
each chunk the student is scored on the held-out set, and the count stops at the first
chunk that reaches the target, or at ``--cap`` ("> cap").

The suite is ``--suite`` (a registered name: ``arith``, ``arith-v1``, ``reasoning-gym``) or the
suite of the environment ``--env`` (a registered id; its suite, suite arguments and student
fields are used). For a suite with a content partition, training data comes from the train part
and the held-out set from the validation part; without one (``arith``), both from the whole item
space. Where the suite reports guessing floors (``reasoning-gym``), the table shows the held-out
cells' mean majority-answer accuracy, which a student reaches by always writing that answer.

Run (about 12 minutes on 2 busy CPU cores; results in benchmarks/README.md):
    python benchmarks/prerequisites.py --seeds 3 --workers 3 --threads 1 --out prereq.json
    python benchmarks/prerequisites.py --from-json prereq.json     # re-print the tables
    python benchmarks/prerequisites.py --suite reasoning-gym --difficulties 0 --target 0.5 \
        --cap 16384 --prereq-cap 16384 --seeds 2 --workers 2 --out prereq-rg.json
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from _args import emit_json, parse_dataclass_args  # benchmarks/_args.py, beside this script


@dataclass
class Args:
    seeds: int = 3
    """Number of seeds (0..seeds-1). A seed changes the training data, the held-out set and
    the shuffling; the initial weights are the env's (StudentConfig.init_seed=0) for every seed."""
    suite: str = "arith"
    """Registered task suite to measure (ignored when --env is given)."""
    env: str = ""
    """A registered environment id (e.g. distillgym/ReasoningGym-v1): measure its suite with its
    suite arguments and student fields instead of --suite."""
    skills: str = ""
    """Comma-separated dependent skills to measure ('' = every skill that has a prerequisite)."""
    difficulties: str = "1"
    """Comma-separated difficulty levels used for every skill (training and held-out data are
    split evenly over them). Level 1 = two-digit numbers (chain: four one-digit terms)."""
    target: float = 0.8
    """Exact-match accuracy on the held-out set that counts as 'learned'."""
    chunk: int = 512
    """Training examples between two evaluations."""
    cap: int = 32768
    """Most examples spent on the dependent skill in one phase (then reported as '> cap')."""
    prereq_cap: int = 32768
    """Most examples spent on the prerequisites in phase (b)."""
    n_heldout: int = 512
    """Held-out items per skill (drawn independently of the training data; for cells with
    few distinct items, e.g. copy at level 1, they necessarily repeat training items)."""
    replay_fraction: float = -1.0
    """StudentConfig.replay_fraction of the student (-1: the StudentConfig default, i.e. the env's)."""
    workers: int = 1
    """Parallel processes (one per seed at a time)."""
    threads: int = 1
    """torch threads per process (1 avoids oversubscribing the cores when workers > 1)."""
    json: bool = False
    """Print the results as JSON instead of tables."""
    out: str = ""
    """Also write the JSON results to this file."""
    from_json: str = ""
    """Run nothing: print the tables of a file written earlier with --out."""


def parse_args() -> Args:
    return parse_dataclass_args(Args, __doc__.split("\n\n")[0])


# Our own seed streams (the env uses 1..5), so nothing here coincides with env data.
STREAM_DATA, STREAM_SHUFFLE, STREAM_HELDOUT = 101, 102, 103


def transitive_prereqs(suite: Any, skill: str) -> list[str]:
    """All skills ``skill`` depends on, directly or not, in topological order."""
    need: set[str] = set()
    stack = list(suite.prerequisites.get(skill, ()))
    while stack:
        s = stack.pop()
        if s not in need:
            need.add(s)
            stack.extend(suite.prerequisites.get(s, ()))
    return [s for s in suite.topological_order() if s in need]


def make_examples(suite: Any, skill: str, levels: list[int], rng: Any, n: int, split: str | None = None) -> list[Any]:
    """``n`` examples of ``skill`` split evenly over ``levels`` (the remainder to the first),
    from the ``split`` part of the item space (None: all of it)."""
    out = []
    for i, d in enumerate(levels):
        k = n // len(levels) + (1 if i < n % len(levels) else 0)
        out.extend(suite.generate(skill, d, rng, k, split=split))
    return out


def resolve(args: Args) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(suite name, suite arguments, student fields): from the env's registered arguments when
    ``--env`` is given, else ``--suite`` with no arguments and the default student."""
    if not args.env:
        return args.suite, {}, {}
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the distillgym ids)

    kwargs = dict(gym.spec(args.env).kwargs)
    student = kwargs.get("student_kwargs", kwargs.get("student")) or {}
    if not isinstance(student, dict):
        raise SystemExit(f"{args.env}: its student argument is {student!r}, not a dict of StudentConfig fields")
    return kwargs.get("suite", "arith"), dict(kwargs.get("suite_kwargs") or {}), dict(student)


def dependent_skills(args: Args, suite: Any) -> list[str]:
    """``--skills``, or every skill of the suite that has a prerequisite."""
    if args.skills:
        return args.skills.split(",")
    return [s for s in suite.skills if suite.prerequisites.get(s)]


def student_config(args: Args) -> Any:
    """The env's student on the CPU (default fields, or the env's with --env; optionally with
    another replay fraction)."""
    from distillgym.students.char_lm import StudentConfig

    fields = {k: v for k, v in resolve(args)[2].items() if k != "device"}
    cfg = StudentConfig.from_dict(fields)
    cfg.device = "cpu"
    if args.replay_fraction >= 0:
        cfg.replay_fraction = args.replay_fraction
    cfg.validate()
    return cfg


def run_seed(args: Args, seed: int) -> list[dict[str, Any]]:
    """Both phases for every skill at one seed. Prerequisite students are cached by their
    prerequisite set (e.g. sub and mul share copy+successor+add)."""
    import numpy as np
    import torch

    from distillgym.seeding import rng_for
    from distillgym.students.hf_student import TinyStudent
    from distillgym.tasks import make_suite

    torch.set_num_threads(args.threads)
    name, suite_kwargs, _ = resolve(args)
    suite = make_suite(name, **suite_kwargs)
    # with a content partition: train on the train part, hold out the validation part
    train_split, heldout_split = ("train", "val") if suite.partition is not None else (None, None)
    levels = [int(x) for x in args.difficulties.split(",")]
    sidx = {s: i for i, s in enumerate(suite.skills)}
    student = TinyStudent.for_suite(suite, config=student_config(args))
    initial = student.state()
    heldout = {
        s: make_examples(suite, s, levels, rng_for(seed, STREAM_HELDOUT, sidx[s]), args.n_heldout, heldout_split)
        for s in suite.skills
    }
    floor_of = getattr(suite, "guessing_floor", None)

    def acc(skill: str) -> float:
        return float(np.mean(student.score(heldout[skill])))

    def train_until(skill: str, phase: int) -> tuple[int | None, list[float]]:
        """Train on ``skill`` in chunks from the current weights; the examples at the first
        evaluation >= target (None if the cap is hit) and the accuracy curve."""
        curve, spent = [], 0
        while spent < args.cap:
            c = spent // args.chunk
            data = make_examples(suite, skill, levels, rng_for(seed, STREAM_DATA, sidx[skill], c), args.chunk,
                                 train_split)
            student.train(data, rng_for(seed, STREAM_SHUFFLE, phase, sidx[skill], c))
            spent += len(data)
            curve.append(acc(skill))
            if curve[-1] >= args.target:
                return spent, curve
        return None, curve

    prereq_cache: dict[tuple[str, ...], dict[str, Any]] = {}

    def prereq_student(pre: tuple[str, ...]) -> dict[str, Any]:
        """Weights after training ``pre`` until all are >= target together (or prereq_cap)."""
        if pre in prereq_cache:
            return prereq_cache[pre]
        student.load_state(initial)
        spent, c, t0 = 0, 0, time.perf_counter()
        accs = {p: acc(p) for p in pre}
        while spent < args.prereq_cap and min(accs.values()) < args.target:
            todo = [p for p in pre if accs[p] < args.target]
            rng = rng_for(seed, STREAM_DATA, 1000, c)
            data = []
            for i, p in enumerate(todo):
                k = args.chunk // len(todo) + (1 if i < args.chunk % len(todo) else 0)
                data.extend(make_examples(suite, p, levels, rng, k, train_split))
            student.train(data, rng_for(seed, STREAM_SHUFFLE, 1000, c))
            spent += len(data)
            c += 1
            accs = {p: acc(p) for p in pre}
        prereq_cache[pre] = {
            "state": student.state(),
            "examples": spent,
            "reached": min(accs.values()) >= args.target,
            "accuracy": accs,
            "seconds": time.perf_counter() - t0,
        }
        return prereq_cache[pre]

    rows = []
    for skill in dependent_skills(args, suite):
        pre = tuple(transitive_prereqs(suite, skill))
        t0 = time.perf_counter()
        # (a) from the env's starting student
        student.load_state(initial)
        acc0 = acc(skill)
        n_a, curve_a = train_until(skill, phase=0)
        t_a = time.perf_counter() - t0
        # (b) after the prerequisites; load_state(state()) clears replay, optimiser and warm-up
        p = prereq_student(pre)
        student.load_state(p["state"])
        acc_b0 = acc(skill)
        t0 = time.perf_counter()
        n_b, curve_b = train_until(skill, phase=1)
        prereq_after = {q: acc(q) for q in pre}  # forgetting of the prerequisites during (b)
        rows.append({
            "seed": seed,
            "skill": skill,
            "prereqs": list(pre),
            "from_start": n_a,
            "after_prereqs": n_b,
            "prereq_examples": p["examples"],
            "prereq_reached": p["reached"],
            "prereq_accuracy": {q: round(v, 4) for q, v in p["accuracy"].items()},
            "prereq_accuracy_after_b": {q: round(v, 4) for q, v in prereq_after.items()},
            "accuracy_at_start_a": round(acc0, 4),
            "accuracy_at_start_b": round(acc_b0, 4),
            "curve_a": [round(x, 4) for x in curve_a],
            "curve_b": [round(x, 4) for x in curve_b],
            "seconds_a": round(t_a, 2),
            "seconds_b": round(time.perf_counter() - t0, 2),
            "seconds_prereq": round(p["seconds"], 2),
            "guessing_floor": None if floor_of is None else round(sum(floor_of(skill, d) for d in levels) / len(levels), 4),
        })
        print(f"[seed {seed}] {skill:<9} start={_fmt(n_a, args.cap)} after={_fmt(n_b, args.cap)} "
              f"prereq={p['examples']} ({time.perf_counter() - t0 + t_a:.0f}s)", file=sys.stderr, flush=True)
    return rows


def _fmt(n: int | None, cap: int) -> str:
    return f">{cap}" if n is None else str(n)


def summarize(args: Args, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per skill: mean over seeds (a capped run counts as the cap, and the mean is then
    marked as a lower bound '>'), per-seed values and the prerequisite cost."""
    out = []
    for skill in args.skills.split(","):
        rs = sorted((r for r in rows if r["skill"] == skill), key=lambda r: r["seed"])

        def stat(key: str, rs: list[dict[str, Any]] = rs) -> dict[str, Any]:
            vals = [r[key] for r in rs]
            capped = any(v is None for v in vals)
            mean = sum(args.cap if v is None else v for v in vals) / len(vals)
            return {"mean": mean, "lower_bound": capped, "per_seed": vals}

        a, b = stat("from_start"), stat("after_prereqs")
        pre_n = [r["prereq_examples"] for r in rs]
        out.append({
            "skill": skill,
            "prereqs": rs[0]["prereqs"],
            "from_start": a,
            "after_prereqs": b,
            "prereq_examples": {"mean": sum(pre_n) / len(pre_n), "per_seed": pre_n,
                                "all_reached": all(r["prereq_reached"] for r in rs)},
            "accuracy_at_start_b": [r["accuracy_at_start_b"] for r in rs],
            "min_prereq_accuracy_after_b": [min(r["prereq_accuracy_after_b"].values()) for r in rs],
            "final_accuracy_a": [r["curve_a"][-1] for r in rs],
            "final_accuracy_b": [r["curve_b"][-1] for r in rs],
            "guessing_floor": rs[0].get("guessing_floor"),
        })
    return out


def table(args: Args, summary: list[dict[str, Any]]) -> str:
    def mean(s: dict[str, Any]) -> str:
        return (">" if s["lower_bound"] else "") + f"{s['mean']:.0f}"

    def seeds(vals: list[Any]) -> str:
        return "/".join(_fmt(v, args.cap) for v in vals)

    head = ("| skill | needs (transitive) | from start: mean (per seed) | after prereqs: mean (per seed) "
            "| ratio start/after | prereq examples: mean (per seed) | prereqs + after: mean | acc. at start of (b) "
            "| min prereq acc. after (b) | acc. at stop: start ; after | guessing floor |")
    lines = [head, "|" + "---|" * 11]
    for s in summary:
        a, b = s["from_start"], s["after_prereqs"]
        ratio = a["mean"] / b["mean"]
        if a["lower_bound"] and b["lower_bound"]:
            ratio_s = "n/a (capped on both sides)"
        else:  # a capped run makes its mean a lower bound, so the ratio a bound too
            ratio_s = (">=" if a["lower_bound"] else "<=" if b["lower_bound"] else "") + f"{ratio:.2f}"
        total = (">" if b["lower_bound"] else "") + f"{s['prereq_examples']['mean'] + b['mean']:.0f}"
        pe = s["prereq_examples"]
        lines.append(
            f"| {s['skill']} | {', '.join(s['prereqs'])} | {mean(a)} ({seeds(a['per_seed'])}) "
            f"| {mean(b)} ({seeds(b['per_seed'])}) | {ratio_s} "
            f"| {pe['mean']:.0f} ({seeds(pe['per_seed'])}){'' if pe['all_reached'] else ' (not all reached target)'} | {total} "
            f"| {' / '.join(f'{x:.2f}' for x in s['accuracy_at_start_b'])} "
            f"| {' / '.join(f'{x:.2f}' for x in s['min_prereq_accuracy_after_b'])} "
            f"| {'/'.join(f'{x:.2f}' for x in s['final_accuracy_a'])} ; "
            f"{'/'.join(f'{x:.2f}' for x in s['final_accuracy_b'])} "
            f"| {'-' if s.get('guessing_floor') is None else format(s['guessing_floor'], '.2f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.from_json:
        with open(args.from_json) as fh:
            saved = json.load(fh)
        names = {fld.name for fld in dataclasses.fields(Args)}
        old = Args(**{k: v for k, v in saved["args"].items() if k in names})
        print_tables(old, saved)
        return
    t0 = time.perf_counter()
    if not args.skills:  # record the resolved list, so --from-json and the summary use it
        from distillgym.tasks import make_suite

        name, suite_kwargs, _ = resolve(args)
        args.skills = ",".join(dependent_skills(args, make_suite(name, **suite_kwargs)))
    seeds = list(range(args.seeds))
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            per_seed = list(pool.map(run_seed, [args] * len(seeds), seeds))
    else:
        per_seed = [run_seed(args, s) for s in seeds]
    rows = [r for rs in per_seed for r in rs]
    summary = summarize(args, rows)

    import torch

    result = {
        "args": dataclasses.asdict(args),
        "student_config": dataclasses.asdict(student_config(args)),
        "summary": summary,
        "runs": rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    if emit_json(result, args.out, args.json):
        return
    print_tables(args, result)


def print_tables(args: Args, result: dict[str, Any]) -> None:
    seeds = list(range(args.seeds))
    summary = summarize(args, result["runs"])
    replay = result.get("student_config", {}).get("replay_fraction", "?")
    print(f"suite {args.env or args.suite}: examples of the dependent skill to reach {args.target:.0%} exact match on "
          f"{args.n_heldout} held-out items, "
          f"difficulty level(s) {args.difficulties}, chunks of {args.chunk}, cap {args.cap}, seeds {seeds}, "
          f"replay_fraction {replay}")
    print(table(args, summary))
    print(f"\nwall time {result['seconds']:.0f} s, torch {result['torch']}, {args.workers} worker(s) x "
          f"{args.threads} thread(s), {result['cpu_count']} CPU(s)")


if __name__ == "__main__":
    main()
