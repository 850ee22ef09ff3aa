"""The headroom search: how much better than the equal mix can *any* simple policy teach on an env?

``distillgym headroom ENV_ID`` (:func:`headroom`) answers it in two stages, so that only fresh seeds
count:

1. **Screen.** Every policy of a family (:func:`policy_family`: fixed mixes, random Dirichlet
   mixes, level and prerequisite-depth profiles, leave-cells-out mixes, schedules, adaptive rules;
   cell-valued versions on cell-level ids), and the two baselines, run on a few *screen seeds*
   (default 20000-20002). The policies are ranked by their mean final test accuracy there. On an
   open level (written text) every policy, baselines included, writes its plan as correct lines with
   the suite's own generator (:class:`distillgym.teachers.adapters.PlanToText`), so the search covers
   the choice of data, not the choice to write unverified lines.
2. **Confirm.** The best ``top`` policies of the screen, the **equal mix** (``stratified`` on a mix
   level; ``uniform``, which visits every cell in turn, on a cell level) and ``uniform`` run again on
   at least 10 *confirmation seeds* (default 21000-21009), disjoint from the screen seeds and from
   every benchmark's seeds (:func:`check_seeds` reads every benchmark TOML). Every policy runs on
   every confirmation seed, so the comparisons are paired.

The **best confirmed policy** is the candidate with the highest mean over the confirmation seeds;
its gain over the equal mix and over ``uniform`` is tested with paired t and Wilcoxon signed-rank
tests (:func:`distillgym.harness.stats.paired_test`), each family of p-values (every candidate
against every baseline) Holm-adjusted. Only the confirmation seeds count as headroom: picking the
best of many policies on a few seeds overstates its margin (the winner's curse), so the screen's
numbers are reported as the screen's, beside the confirmed ones. Choosing the best of ``top``
candidates on the confirmation seeds themselves still overstates its mean a little; Holm over all
the candidates' comparisons is what keeps the tests honest about that choice.

**Running.** Each stage is a benchmark run (:func:`distillgym.harness.bench.run_benchmark`) into its
own results directory, ``OUT/screen`` and ``OUT/confirm``, in the project's results format (so
``distillgym leaderboard``, ``plot`` and ``verify`` work on each) and resumable the same way: a rerun
of the same command skips the finished episodes. Where the id has a native vector env, the episodes
run as populations of students (:mod:`distillgym.harness.population`: sub-env i is one (policy, seed)
pair; ``num_envs`` per population, chosen to fit the machine when not given); elsewhere
(``ArithSkills-v1``, ``ArithMix-v1``) on the process pool.

**Output** (``OUT/``): ``headroom.json`` (:data:`FORMAT`: the policies, the screen and confirmation
tables, the comparisons, the best policy and its confirmation episodes, per-cell matrices),
``HEADROOM.md`` (:func:`render_headroom`) and ``heatmap.png`` (:func:`plot_heatmap`: mean test
accuracy per cell of the best policy and of the equal mix, their difference, and the best policy's
share of the training data per cell). ``distillgym leaderboard DIR --headroom OUT`` shows the result
as a reference row ``headroom: <policy>`` (not ranked) beside the teachers of the same id
(:func:`headroom_episodes`).

Every policy replays by name and arguments: ``distillgym run --env ID --teacher NAME --teacher-kwargs JSON``.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, DistillGymError, UnknownNameError, check_int, did_you_mean
from distillgym.harness.leaderboard import json_safe as _clean
from distillgym.seeding import parse_seeds

__all__ = [
    "FORMAT",
    "FAMILIES",
    "DEFAULT_SCREEN_SEEDS",
    "DEFAULT_CONFIRM_SEEDS",
    "MIN_CONFIRM_SEEDS",
    "Policy",
    "policy_family",
    "load_policy_file",
    "baselines",
    "parse_seeds",
    "benchmark_seeds",
    "check_seeds",
    "headroom",
    "summarise",
    "render_headroom",
    "plot_heatmap",
    "load_headroom",
    "headroom_episodes",
]

FORMAT = "distillgym.headroom/1"
FAMILIES = ("dirichlet", "profiles", "leave-out", "schedules", "adaptive", "sources")
"""The policy families :func:`policy_family` draws from (``--family``; all by default)."""
DEFAULT_SCREEN_SEEDS = tuple(range(20000, 20003))
DEFAULT_CONFIRM_SEEDS = tuple(range(21000, 21010))
MIN_CONFIRM_SEEDS = 10


# ---------------------------------------------------------------------------- the policy family
@dataclass
class Policy:
    """One policy of the search: a registered teacher ``name`` with ``kwargs``, shown as ``label``."""

    label: str
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    family: str = ""


def _fmt(x: float) -> str:
    return f"{x:g}"


def _difficulty_profiles(D: int) -> dict[str, list[float]]:
    d = np.arange(D)
    return {
        "easy": [float(D - i) for i in d],                       # D, D-1, ..., 1
        "steep-easy": [float(2 ** (D - 1 - i)) for i in d],      # 2^(D-1), ..., 1
        "hard": [float(i + 1) for i in d],                       # 1, ..., D
        "middle": [float(1 + min(i, D - 1 - i)) for i in d],     # 1, 2, 2, 1
    }


def policy_family(info: dict[str, Any], families: Sequence[str] = FAMILIES) -> list[Policy]:
    """The policies of ``families`` for an env with reset ``info`` (skills, ``n_difficulties``,
    prerequisites, ``level``, and ``eval_weights`` where the env has target cells). Deterministic:
    the same info gives the same list. On a cell level each mix is played by sampling a cell per step
    from it (``cell_mode="sample"``), and the adaptive rules also by their argmax; on a level with a
    source axis the mixes are split over the sources equally (the family's default). See the module
    docstring of each teacher file for what a policy does.

    - ``dirichlet``: 4 draws at each concentration 0.3, 1 and 3 (``dirichlet-mix``);
    - ``profiles``: difficulty profiles easy (D..1), steep-easy (2^(D-1)..1), hard (1..D), middle;
      prerequisite-depth profiles foundations-first (3, 2, 1 by depth) and deep-first (1, 2, 3);
      with target cells: targets only, and targets plus their prerequisite skills at half weight
      (``fixed-mix``);
    - ``leave-out``: the equal mix without one skill (each skill), without the hardest difficulty,
      and without the two hardest (``fixed-mix``);
    - ``schedules``: ``easy-to-hard`` (width 0.5 and 1, floor 0 and 0.1), ``warmup-equal`` (warm-up
      0.15 and 0.3 of the budget on difficulty <= 0 and <= 1), ``prereq-first`` (switch at 0.2 and 0.4,
      keep 0 and 0.25);
    - ``adaptive``: ``error-mix`` (floor 0, 0.02, 0.1, 0.5), ``progress-mix`` (floor 0.01, 0.05, 0.2),
      ``mastery-gated`` (threshold 0.5 and 0.8, locked 0 and 0.1; and 0.8 with error weights);
    - ``sources`` (only on a level with a source axis, ``info["action"]["sources"]``): five cell rules
      (the equal mix, ``error-mix`` floor 0.02, the easy profile, ``prereq-first`` switch 0.2 keep 0.25,
      ``mastery-gated`` threshold 0.5 locked 0.1) times source shares: equal units (the other families'
      default; the equal mix with equal units is the ``stratified`` baseline and is left out), each
      source alone, each source left out (with more than two sources), and equal *examples* per source
      (units in proportion to each source's cost, ``info["action"]["costs"]``). Labels
      ``RULE@SHARES``.
    """
    from distillgym.teachers.family import target_weights
    from distillgym.teachers.schedules import prerequisite_closure

    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise UnknownNameError(f"unknown policy family {unknown[0]!r}: {did_you_mean(str(unknown[0]), FAMILIES)}")
    skills = list(info["skills"])
    D = int(info["n_difficulties"])
    S = len(skills)
    prerequisites = {k: list(v) for k, v in (info.get("prerequisites") or {}).items()}
    level = str(info.get("level", "cell"))
    targets = target_weights(info, (S, D))
    out: list[Policy] = []

    def add(family: str, label: str, name: str, **kwargs: Any) -> None:
        out.append(Policy(label, name, kwargs, family))

    if "dirichlet" in families:
        for alpha in (0.3, 1.0, 3.0):
            for draw in range(4):
                add("dirichlet", f"dirichlet-a{_fmt(alpha)}-d{draw}", "dirichlet-mix", alpha=alpha, draw=draw)
    if "profiles" in families:
        for name, prof in _difficulty_profiles(D).items():
            add("profiles", f"profile-{name}", "fixed-mix", difficulty_weights=prof)
        add("profiles", "profile-foundations-first", "fixed-mix", depth_weights=[3.0, 2.0, 1.0])
        add("profiles", "profile-deep-first", "fixed-mix", depth_weights=[1.0, 2.0, 3.0])
        if targets is not None:
            tgt = (targets > 0).astype(float)
            add("profiles", "profile-targets-only", "fixed-mix", weights=tgt.tolist())
            needed = prerequisite_closure(skills, prerequisites, {skills[s] for s in range(S) if tgt[s].any()})
            w = tgt.copy()
            for k in needed:
                w[skills.index(k)] = np.maximum(w[skills.index(k)], 0.5)
            add("profiles", "profile-targets+prerequisites", "fixed-mix", weights=w.tolist())
    if "leave-out" in families:
        for k in skills:
            add("leave-out", f"leave-out-{k}", "fixed-mix", leave_out=[k])
        add("leave-out", f"leave-out-L{D - 1}", "fixed-mix", leave_out=[f":{D - 1}"])
        if D > 2:
            add("leave-out", f"leave-out-L{D - 2}-L{D - 1}", "fixed-mix", leave_out=[f":{D - 2}", f":{D - 1}"])
    if "schedules" in families:
        for width in (0.5, 1.0):
            for floor in (0.0, 0.1):
                add("schedules", f"easy-to-hard-w{_fmt(width)}-f{_fmt(floor)}", "easy-to-hard", width=width,
                    floor=floor)
        for warmup in (0.15, 0.3):
            for maxd in (0, 1):
                add("schedules", f"warmup-equal-{_fmt(warmup)}-L{maxd}", "warmup-equal", warmup=warmup,
                    max_difficulty=maxd)
        for switch in (0.2, 0.4):
            for keep in (0.0, 0.25):
                add("schedules", f"prereq-first-s{_fmt(switch)}-k{_fmt(keep)}", "prereq-first", switch=switch,
                    keep=keep)
    if "adaptive" in families:
        for floor in (0.0, 0.02, 0.1, 0.5):
            add("adaptive", f"error-mix-f{_fmt(floor)}", "error-mix", floor=floor)
        for floor in (0.01, 0.05, 0.2):
            add("adaptive", f"progress-mix-f{_fmt(floor)}", "progress-mix", floor=floor)
        for threshold in (0.5, 0.8):
            for locked in (0.0, 0.1):
                add("adaptive", f"mastery-gated-t{_fmt(threshold)}-l{_fmt(locked)}", "mastery-gated",
                    threshold=threshold, locked=locked)
        add("adaptive", "mastery-gated-t0.8-error", "mastery-gated", threshold=0.8, unlocked="error")
        if level == "cell":  # the rules' argmax versions (a fixed mix's argmax is one cell all episode)
            add("adaptive", "error-mix-argmax", "error-mix", cell_mode="argmax")
            add("adaptive", "progress-mix-argmax", "progress-mix", cell_mode="argmax")
            add("adaptive", "mastery-gated-t0.8-error-argmax", "mastery-gated", threshold=0.8, unlocked="error",
                cell_mode="argmax")
    action = info.get("action") if isinstance(info.get("action"), dict) else {}
    sources = [str(x) for x in action.get("sources") or []] if len(action.get("action_shape") or []) == 3 else []
    if "sources" in families and sources:
        K = len(sources)
        shares: dict[str, list[float]] = {}
        for k, src in enumerate(sources):
            shares[f"only-{src}"] = [1.0 if j == k else 0.0 for j in range(K)]
        if K > 2:
            for k, src in enumerate(sources):
                shares[f"no-{src}"] = [0.0 if j == k else 1.0 for j in range(K)]
        costs = action.get("costs")
        if isinstance(costs, dict) and all(src in costs for src in sources):
            shares["equal-examples"] = [float(costs[src]) for src in sources]
        rules = [("equal", "fixed-mix", {}), ("error-mix-f0.02", "error-mix", {"floor": 0.02}),
                 ("profile-easy", "fixed-mix", {"difficulty_weights": _difficulty_profiles(D)["easy"]}),
                 ("prereq-first-s0.2-k0.25", "prereq-first", {"switch": 0.2, "keep": 0.25}),
                 ("mastery-gated-t0.5-l0.1", "mastery-gated", {"threshold": 0.5, "locked": 0.1})]
        for rule, name, kw in rules:
            if rule != "equal":
                add("sources", f"{rule}@equal-units", name, **kw, source_shares=[1.0] * K)
            for share, q in shares.items():
                add("sources", f"{rule}@{share}", name, **kw, source_shares=q)
    labels = [p.label for p in out]
    if len(set(labels)) != len(labels):  # pragma: no cover - a bug in the list above
        raise ConfigError(f"policy labels repeat: {sorted({x for x in labels if labels.count(x) > 1})}")
    return out


def baselines(level: str) -> tuple[Policy, Policy]:
    """``(equal mix, uniform)`` for an env of ``level``: ``stratified`` and ``uniform`` on a mix level
    (or one with a source axis); on the cell level both are ``uniform`` (every cell in turn, the cell
    level's equal split of the data)."""
    uniform = Policy("uniform", "uniform", {}, "baseline")
    if level == "cell":
        return uniform, uniform
    return Policy("stratified", "stratified", {}, "baseline"), uniform


def load_policy_file(path: str) -> list[Policy]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"--family {path!r}: not a readable JSON file ({err})") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) and "name" in d for d in data):
        raise ConfigError(f"--family {path!r}: expected a JSON list of {{'name': ..., 'kwargs': {{...}}, 'label': ...}}")
    return [Policy(str(d.get("label") or d["name"]), str(d["name"]), dict(d.get("kwargs") or {}), f"file:{p.name}")
            for d in data]


# ---------------------------------------------------------------------------- seeds
def benchmark_seeds(say: Callable[[str], None] | None = None) -> dict[str, list[int]]:
    """``{benchmark name: seeds}`` of every benchmark found by name (the shipped TOMLs and
    ``./benchmarks/suites/``); a file that does not load is skipped and named to ``say``."""
    from distillgym.harness.benchmark import list_benchmarks, load_benchmark

    out: dict[str, list[int]] = {}
    for name, path in list_benchmarks().items():
        try:
            out[name] = list(load_benchmark(str(path)).seeds)
        except DistillGymError as err:
            if say:
                say(f"seed check: skipped benchmark {name} ({path}): {err}")
    return out


def check_seeds(screen: Sequence[int], confirm: Sequence[int], min_confirm: int = MIN_CONFIRM_SEEDS,
                benchmarks: dict[str, list[int]] | None = None) -> None:
    """:class:`ConfigError` unless the screen and confirmation seeds are disjoint from each other, from
    every benchmark's seeds (:func:`benchmark_seeds`) and from the seeds reserved for teachers' reference
    runs and for training learned teachers (:data:`distillgym.seeding.REFERENCE_SEEDS`,
    :data:`~distillgym.seeding.TEACHER_TRAINING_SEEDS`), and there are at least ``min_confirm``
    confirmation seeds."""
    if len(confirm) < min_confirm:
        raise ConfigError(f"headroom needs at least {min_confirm} confirmation seeds (paired tests on fresh seeds), "
                          f"got {len(confirm)}: {list(confirm)}")
    both = sorted(set(screen) & set(confirm))
    if both:
        raise ConfigError(f"screen and confirmation seeds overlap in {both}: the confirmation must use fresh seeds")
    from distillgym.seeding import REFERENCE_SEEDS, TEACHER_TRAINING_SEEDS

    for rng, why in ((REFERENCE_SEEDS, "teachers' reference runs (distillgym.seeding.REFERENCE_SEEDS)"),
                     (TEACHER_TRAINING_SEEDS, "training learned teachers (distillgym.seeding.TEACHER_TRAINING_SEEDS)")):
        reserved = sorted(s for s in [*screen, *confirm] if s in rng)
        if reserved:
            raise ConfigError(f"seeds {reserved[:5]} lie in {rng.start}..{rng.stop - 1}, the range reserved for {why}; "
                              "pick others")
    for name, seeds in (benchmark_seeds() if benchmarks is None else benchmarks).items():
        for what, mine in (("screen", screen), ("confirmation", confirm)):
            clash = sorted(set(mine) & set(seeds))
            if clash:
                raise ConfigError(f"the {what} seeds {clash} are seeds of the benchmark {name!r}: headroom seeds must "
                                  f"not overlap any benchmark's seeds; the defaults are {DEFAULT_SCREEN_SEEDS[0]}-"
                                  f"{DEFAULT_SCREEN_SEEDS[-1]} (screen) and {DEFAULT_CONFIRM_SEEDS[0]}-"
                                  f"{DEFAULT_CONFIRM_SEEDS[-1]} (confirmation)")


# ---------------------------------------------------------------------------- the search
def _entries(policies: Sequence[Policy]) -> list[Any]:
    from distillgym.harness.benchmark import TeacherEntry

    return [TeacherEntry(p.name, dict(p.kwargs), p.label) for p in policies]


def _stage(name: str, env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int], policies: Sequence[Policy],
           out: Path, executor: str, workers: int, num_envs: int | None, progress: bool,
           say: Callable[[str], None], allow_mixed_fingerprints: bool) -> tuple[list[dict[str, Any]], list[dict], int]:
    """Run one stage as a benchmark into ``out``; returns (its ok episodes of these policies and seeds, their
    steps, the number of episodes this call ran)."""
    from distillgym.harness.bench import run_and_collect
    from distillgym.harness.benchmark import Benchmark

    bench = Benchmark(name, env_id, list(seeds), _entries(policies), dict(env_kwargs),
                      description=f"headroom search of {env_id}: the {name.split('-')[-1]} stage")
    return run_and_collect(bench, out, f"the {name} stage's", workers=workers, executor=executor,
                           progress=progress, say=say, num_envs=num_envs,
                           allow_mixed_fingerprints=allow_mixed_fingerprints)


def _by_label(episodes: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for e in episodes:
        out.setdefault(e["teacher"], {})[int(e["seed"])] = float(e["final_test_accuracy"])
    return out


def headroom(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    screen_seeds: Sequence[int] = DEFAULT_SCREEN_SEEDS,
    confirm_seeds: Sequence[int] = DEFAULT_CONFIRM_SEEDS,
    top: int = 3,
    families: Sequence[str] = FAMILIES,
    policies: Sequence[Policy] | None = None,
    out: str | os.PathLike[str] | None = None,
    num_envs: int | None = None,
    workers: int = 1,
    min_confirm_seeds: int = MIN_CONFIRM_SEEDS,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
    allow_mixed_fingerprints: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the headroom search of ``env_id`` (see the module docstring) and write ``OUT/headroom.json``,
    ``OUT/HEADROOM.md`` and ``OUT/heatmap.png`` (when matplotlib is installed). Resumable: a rerun with
    the same arguments continues where a crash left it.

    Args:
        env_id, env_kwargs: the env and its arguments (the same in every episode).
        screen_seeds, confirm_seeds: disjoint seeds, neither overlapping any benchmark's
            (:func:`check_seeds`); at least ``min_confirm_seeds`` confirmation seeds.
        top: how many of the screen's best policies are confirmed.
        families: :data:`FAMILIES` to draw the policies from (:func:`policy_family`).
        policies: extra policies (e.g. from a file) screened with the family's.
        out: output folder (default ``results/headroom/<env name>``).
        num_envs: students per population (None: :func:`distillgym.harness.population.auto_num_envs`).
        workers: processes (each running its own populations, one torch thread each).
        command: the command line to record (default: this process's).

    Returns the report (what ``headroom.json`` holds)."""
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the envs)
    from distillgym.harness.population import has_vector_env

    check_int("headroom", "top", top, 1)
    check_int("headroom", "workers", workers, 1)
    say = say or (lambda msg: print(f"distillgym: {msg}", file=sys.stderr, flush=True))
    env_kwargs = dict(env_kwargs or {})
    screen_seeds, confirm_seeds = parse_seeds(screen_seeds), parse_seeds(confirm_seeds)
    check_seeds(screen_seeds, confirm_seeds, min_confirm_seeds, benchmark_seeds(say))
    out_dir = Path(out or Path("results") / "headroom" / env_id.split("/")[-1])
    try:
        env = gym.make(env_id, **env_kwargs)
    except gym.error.Error as err:
        raise UnknownNameError(f"cannot make env {env_id!r}: {err} (registered ids: `distillgym envs`)") from None
    try:
        _, info = env.reset(seed=screen_seeds[0])
        env_config = getattr(env.unwrapped, "config", dict(env_kwargs))
    finally:
        env.close()
    level = str(info.get("level", "cell"))
    family = policy_family(info, families) + list(policies or [])
    equal, uniform = baselines(level)
    base = [equal] if equal.label == uniform.label else [equal, uniform]
    labels = [p.label for p in family]
    clash = sorted({x for x in labels if labels.count(x) > 1 or x in {b.label for b in base}})
    if clash:
        raise ConfigError(f"policy labels must be unique and differ from the baselines' ({[b.label for b in base]}), "
                          f"got {clash} more than once")
    out_dir.mkdir(parents=True, exist_ok=True)
    executor = "population" if has_vector_env(env_id) else "local"
    say(f"headroom {env_id}: {len(family)} policies + {len(base)} baseline(s) x {len(screen_seeds)} screen seeds, then "
        f"the best {top} + baselines x {len(confirm_seeds)} confirmation seeds -> {out_dir} "
        f"({'one population of students per chunk' if executor == 'population' else 'process pool'})")
    previous: list[dict[str, Any]] = []
    if (out_dir / "headroom.json").is_file():  # a resumed search keeps the record of the earlier invocations
        try:
            previous = list(load_headroom(out_dir).get("runs") or [])
        except DistillGymError:
            previous = []
    load0 = _loadavg()
    t0 = time.perf_counter()
    screen_eps, _, ran_screen = _stage("headroom-screen", env_id, env_kwargs, screen_seeds, family + base, out_dir / "screen",
                           executor, workers, num_envs, progress, say, allow_mixed_fingerprints)
    t_screen = time.perf_counter() - t0
    screen = _by_label(screen_eps)
    ranked = sorted((p for p in family if p.label in screen), key=lambda p: (-np.mean(list(screen[p.label].values())),
                                                                            p.label))
    candidates = ranked[:top]
    t1 = time.perf_counter()
    confirm_eps, confirm_steps, ran_confirm = _stage("headroom-confirm", env_id, env_kwargs, confirm_seeds, candidates + base,
                                        out_dir / "confirm", executor, workers, num_envs, progress, say,
                                        allow_mixed_fingerprints)
    t_confirm = time.perf_counter() - t1
    report = summarise(
        env_id=env_id, env_kwargs=env_kwargs, env_config=env_config, info=info, family=family, baseline_policies=base,
        equal=equal.label, uniform=uniform.label, screen_episodes=screen_eps, candidates=[p.label for p in candidates],
        confirm_episodes=confirm_eps, confirm_steps=confirm_steps, screen_seeds=screen_seeds,
        confirm_seeds=confirm_seeds, top=top, families=list(families),
    )
    report["runs"] = [*previous, {
        "command": command or "distillgym " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "executor": executor, "num_envs": num_envs, "workers": workers,
        "ran": {"screen": ran_screen, "confirm": ran_confirm},
        "seconds": {"screen": t_screen, "confirm": t_confirm, "total": time.perf_counter() - t0},
        "load_average": {"start": load0, "end": _loadavg()},
        "finished_at": time.time(),
    }]
    (out_dir / "headroom.json").write_text(json.dumps(_clean(report), indent=1, allow_nan=False) + "\n")
    try:
        plot_heatmap(report, out_dir / "heatmap.png")
        report["heatmap"] = "heatmap.png"
    except DistillGymError as err:  # matplotlib missing: the tables are still there
        say(f"no heatmap: {err}")
        report["heatmap"] = None
    (out_dir / "headroom.json").write_text(json.dumps(_clean(report), indent=1, allow_nan=False) + "\n")
    (out_dir / "HEADROOM.md").write_text(render_headroom(report))
    return report


# ---------------------------------------------------------------------------- statistics and the report
def _matrix(episodes: Sequence[dict[str, Any]]) -> list[list[float]] | None:
    mats = [np.asarray(e["test_accuracy_matrix"], dtype=float) for e in episodes if e.get("test_accuracy_matrix")]
    return np.mean(mats, axis=0).tolist() if mats else None


def _shares(steps: Sequence[dict[str, Any]], label: str, skills: list[str], D: int) -> list[list[float]] | None:
    """The policy's share of the training examples per cell, over all its confirmation episodes."""
    m = np.zeros((len(skills), D))
    for s in steps:
        if s.get("teacher") != label:
            continue
        if s.get("allocation") is not None:
            a = np.asarray(s["allocation"], dtype=float)
            m += a.reshape(a.shape[0], a.shape[1], -1).sum(axis=2) if a.ndim >= 2 else 0
        elif s.get("skill") in skills:
            m[skills.index(s["skill"]), int(s["difficulty"])] += float(s.get("examples", 0))
    return (m / m.sum()).tolist() if m.sum() > 0 else None


def summarise(*, env_id: str, env_kwargs: dict[str, Any], env_config: Any, info: dict[str, Any],
              family: Sequence[Policy], baseline_policies: Sequence[Policy], equal: str, uniform: str,
              screen_episodes: Sequence[dict[str, Any]], candidates: Sequence[str],
              confirm_episodes: Sequence[dict[str, Any]], confirm_steps: Sequence[dict[str, Any]],
              screen_seeds: Sequence[int], confirm_seeds: Sequence[int], top: int,
              families: Sequence[str]) -> dict[str, Any]:
    """The report of a finished search from its episodes (what ``headroom.json`` holds; see
    :func:`headroom`). Statistics: paired t and Wilcoxon tests (:func:`~distillgym.harness.stats.paired_test`)
    of every candidate against each baseline on the confirmation seeds, Holm over all those comparisons
    (one family per test); bootstrap 95% intervals of means and of paired differences."""
    from distillgym.harness.stats import bootstrap_ci, holm, paired_test

    pol = {p.label: p for p in [*family, *baseline_policies]}
    screen = _by_label(screen_episodes)
    conf = _by_label(confirm_episodes)
    missing = [lb for lb in [*candidates, equal, uniform] if len(conf.get(lb, {})) < len(confirm_seeds)]
    if missing:
        raise ConfigError(f"the confirmation stage lacks episodes of {missing}: every policy must run on every "
                          f"confirmation seed")

    def row(label: str, acc: dict[int, float], base: dict[int, float] | None) -> dict[str, Any]:
        vals = [acc[s] for s in sorted(acc)]
        lo, hi = bootstrap_ci(vals)
        p = pol[label]
        r = {"label": label, "name": p.name, "kwargs": p.kwargs, "family": p.family, "n": len(vals),
             "mean": float(np.mean(vals)), "ci_low": lo, "ci_high": hi, "by_seed": {str(s): acc[s] for s in sorted(acc)}}
        if base is not None:
            common = sorted(set(acc) & set(base))
            r["diff_vs_equal"] = float(np.mean([acc[s] - base[s] for s in common])) if common else float("nan")
        return r

    screen_rows = sorted((row(lb, acc, screen.get(equal)) for lb, acc in screen.items() if lb in pol),
                         key=lambda r: (-r["mean"], r["label"]))
    for k, r in enumerate([r for r in screen_rows if pol[r["label"]].family != "baseline"], start=1):
        r["screen_rank"] = k
    bases = list(dict.fromkeys([equal, uniform]))
    comparisons = []
    for c in candidates:
        for b in bases:
            t = paired_test(conf[c], conf[b], "t")
            w = paired_test(conf[c], conf[b], "wilcoxon")
            diffs = [conf[c][s] - conf[b][s] for s in sorted(set(conf[c]) & set(conf[b]))]
            lo, hi = bootstrap_ci(diffs)
            comparisons.append({"policy": c, "baseline": b, "n_pairs": t.n_pairs, "mean_diff": t.mean_diff,
                                "diff_ci_low": lo, "diff_ci_high": hi, "t": t.statistic, "t_p": t.pvalue,
                                "wilcoxon": w.statistic, "wilcoxon_p": w.pvalue})
    for test in ("t", "wilcoxon"):
        for cmp_, adj in zip(comparisons, holm([c[f"{test}_p"] for c in comparisons]), strict=True):
            cmp_[f"{test}_holm"] = adj
    confirm_rows = [row(lb, conf[lb], conf[equal]) for lb in [*candidates, *bases]]
    best_label = max(candidates, key=lambda lb: (np.mean(list(conf[lb].values())), -candidates.index(lb)))
    best = next(r for r in confirm_rows if r["label"] == best_label)
    screen_best = next(r for r in screen_rows if r["label"] == best_label)
    skills = list(info["skills"])
    D = int(info["n_difficulties"])
    by = {lb: [e for e in confirm_episodes if e["teacher"] == lb] for lb in [best_label, equal]}
    m_best, m_equal = _matrix(by[best_label]), _matrix(by[equal])
    cells = {
        "skills": skills, "n_difficulties": D,
        "best": m_best, "equal": m_equal,
        "diff": (np.asarray(m_best) - np.asarray(m_equal)).tolist() if m_best and m_equal else None,
        "best_share": _shares(confirm_steps, best_label, skills, D),
        "equal_share": _shares(confirm_steps, equal, skills, D),
    }
    gains = {b: next(c for c in comparisons if c["policy"] == best_label and c["baseline"] == b) for b in bases}
    return {
        "format": FORMAT,
        "env": env_id,
        "env_kwargs": env_kwargs,
        "env_config": env_config,
        "level": str(info.get("level", "cell")),
        "eval_weights": info.get("eval_weights"),
        "screen_seeds": list(screen_seeds),
        "confirm_seeds": list(confirm_seeds),
        "top": top,
        "families": list(families),
        "baselines": {"equal": equal, "uniform": uniform},
        "policies": [asdict(p) for p in [*family, *baseline_policies]],
        "screen": screen_rows,
        "candidates": list(candidates),
        "confirm": confirm_rows,
        "comparisons": comparisons,
        "best": {**best, "screen_mean": screen_best["mean"], "screen_diff_vs_equal": screen_best.get("diff_vs_equal"),
                 "screen_rank": screen_best.get("screen_rank"),
                 "gain_vs_equal": gains[equal], "gain_vs_uniform": gains[uniform]},
        "cells": cells,
        "best_episodes": [e for e in confirm_episodes if e["teacher"] == best_label],
    }


def _f(x: Any, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4f}" if x == 0 or x >= 1e-4 else f"{x:.1e}"


def _d(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.3f}"


def _replay(report: dict[str, Any], r: dict[str, Any]) -> str:
    args = f"--env {report['env']} --teacher {r['name']}"
    if r["kwargs"]:
        args += f" --teacher-kwargs {shlex.quote(json.dumps(r['kwargs']))}"
    if report["env_kwargs"]:
        args += f" --env-kwargs {shlex.quote(json.dumps(report['env_kwargs']))}"
    return f"distillgym run {args} --seed {report['confirm_seeds'][0]}"


def _cell_table(cells: dict[str, Any], key: str, signed: bool = False) -> list[str]:
    m = cells.get(key)
    if m is None:
        return ["(none)"]
    D = cells["n_difficulties"]
    out = ["| skill | " + " | ".join(f"L{d}" for d in range(D)) + " | mean |", "|---|" + "---:|" * (D + 1)]
    for k, rowv in zip(cells["skills"], m, strict=True):
        fmt = _d if signed else _f
        out.append(f"| {k} | " + " | ".join(fmt(v) for v in rowv) + f" | {fmt(float(np.mean(rowv)))} |")
    return out


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return None


def _runs_line(report: dict[str, Any]) -> str:
    """Wall time and machine load of the invocations that ran episodes."""
    runs = [r for r in report.get("runs") or [] if sum((r.get("ran") or {}).values())]
    if not runs:
        return "No episodes were run by the recorded invocations (wall time unknown)."
    parts = []
    for r in runs:
        sec, ran, la = r["seconds"], r["ran"], r.get("load_average") or {}
        load = (f"; 1-minute load average {la['start']} at the start, {la.get('end')} at the end"
                if la.get("start") is not None else "")
        note = f"; {r['note']}" if r.get("note") else ""
        parts.append(f"`{r['command']}` ran {ran['screen']} screen and {ran['confirm']} confirmation episodes in "
                     f"{sec['total']:.0f} s (screen {sec['screen']:.0f} s, confirmation {sec['confirm']:.0f} s; executor "
                     f"{r['executor']}, {r.get('num_envs') or 'auto'} students per population, {r['workers']} "
                     f"worker(s){load}{note})")
    return "Runs: " + "; ".join(parts) + "."


def render_headroom(report: dict[str, Any]) -> str:
    """``HEADROOM.md``: the result, the confirmation table with the tests, the screen's table (its own
    numbers, not headroom), the per-cell matrices, and how to replay the best policy."""
    b = report["best"]
    eq, un = report["baselines"]["equal"], report["baselines"]["uniform"]
    ge, gu = b["gain_vs_equal"], b["gain_vs_uniform"]
    n_conf, n_screen = len(report["confirm_seeds"]), len(report["screen_seeds"])
    L = [f"# Headroom of {report['env']}", ""]
    L.append(f"Env arguments: `{json.dumps(report['env_kwargs'])}`; level `{report['level']}`; "
             f"{len(report['policies']) - len(set([eq, un]))} policies screened on seeds "
             f"{report['screen_seeds'][0]}-{report['screen_seeds'][-1]} ({n_screen}), the best {report['top']} and "
             f"the baselines confirmed on seeds {report['confirm_seeds'][0]}-{report['confirm_seeds'][-1]} "
             f"({n_conf}). Machine and software: the `fingerprint` of each line of `screen/results.jsonl` and "
             "`confirm/results.jsonl`.")
    L.append("")
    L.append(_runs_line(report))
    L.append("")
    L.append(f"**Best confirmed policy: `{b['label']}`** (`{b['name']}` {json.dumps(b['kwargs'])}): mean final test "
             f"accuracy {_f(b['mean'])} [{_f(b['ci_low'])}, {_f(b['ci_high'])}] over {n_conf} confirmation seeds; "
             f"against the equal mix `{eq}` {_d(ge['mean_diff'])} [{_f(ge['diff_ci_low'])}, {_f(ge['diff_ci_high'])}] "
             f"(paired t p {_p(ge['t_p'])}, Holm {_p(ge['t_holm'])}; Wilcoxon p {_p(ge['wilcoxon_p'])}, Holm "
             f"{_p(ge['wilcoxon_holm'])})" + ("" if un == eq else
             f"; against `{un}` {_d(gu['mean_diff'])} (paired t p {_p(gu['t_p'])}, Holm {_p(gu['t_holm'])}; Wilcoxon "
             f"p {_p(gu['wilcoxon_p'])}, Holm {_p(gu['wilcoxon_holm'])})") + ".")
    L.append("")
    L.append(f"On the screen seeds the same policy was rank {b.get('screen_rank')} with {_f(b['screen_mean'])} "
             f"({_d(b.get('screen_diff_vs_equal'))} against `{eq}` there). Only the confirmation seeds count as "
             "headroom: the screen picks its winners on the same seeds it scores them on.")
    L.append("")
    L.append("## Confirmation (fresh seeds, paired)")
    L.append("")
    L.append(f"Holm over the {len(report['comparisons'])} comparisons of the candidates with the baseline(s), one "
             "family per test. CIs: 95% percentile bootstrap (10,000 resamples, seed 0).")
    L.append("")
    head = f"| policy | n | mean | 95% CI | Δ vs {eq} [95% CI] | t p (Holm) | Wilcoxon p (Holm) |"
    if un != eq:
        head += f" Δ vs {un} | t p (Holm) | Wilcoxon p (Holm) |"
    L.append(head)
    L.append("|---|---:|---:|---|---|---:|---:|" + ("---:|---:|---:|" if un != eq else ""))
    cmp_ = {(c["policy"], c["baseline"]): c for c in report["comparisons"]}
    for r in report["confirm"]:
        line = f"| {'**' + r['label'] + '**' if r['label'] == b['label'] else r['label']} | {r['n']} | {_f(r['mean'])} | " \
               f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}] |"
        for base in dict.fromkeys([eq, un]):
            c = cmp_.get((r["label"], base))
            if c is None:
                line += " - | - | - |" if base == eq else " - | - | - |"
            elif base == eq:
                line += (f" {_d(c['mean_diff'])} [{_f(c['diff_ci_low'])}, {_f(c['diff_ci_high'])}] | {_p(c['t_p'])} "
                         f"({_p(c['t_holm'])}) | {_p(c['wilcoxon_p'])} ({_p(c['wilcoxon_holm'])}) |")
            else:
                line += (f" {_d(c['mean_diff'])} | {_p(c['t_p'])} ({_p(c['t_holm'])}) | {_p(c['wilcoxon_p'])} "
                         f"({_p(c['wilcoxon_holm'])}) |")
        L.append(line)
    L.append("")
    L.append("## Per cell (confirmation seeds)")
    L.append("")
    if report.get("heatmap"):
        L.append(f"![per-cell heatmap]({report['heatmap']})")
        L.append("")
    cells = report["cells"]
    for title, key, signed in ((f"Mean test accuracy of `{b['label']}`", "best", False),
                               (f"Mean test accuracy of `{eq}`", "equal", False),
                               (f"Difference (`{b['label']}` - `{eq}`)", "diff", True),
                               (f"Share of the training examples, `{b['label']}`", "best_share", False)):
        L += [f"{title}:", "", *_cell_table(cells, key, signed), ""]
    L.append("## Screen (its own numbers: not headroom)")
    L.append("")
    L.append(f"Mean final test accuracy over the {n_screen} screen seeds, best first; Δ: the paired mean difference "
             f"with `{eq}` on those seeds. Candidates confirmed: {', '.join(f'`{c}`' for c in report['candidates'])}.")
    L.append("")
    L.append(f"| rank | policy | teacher | arguments | mean | Δ vs {eq} |")
    L.append("|---:|---|---|---|---:|---:|")
    for r in report["screen"]:
        L.append(f"| {r.get('screen_rank', '-')} | {r['label']} | {r['name']} | `{json.dumps(r['kwargs'])}` | "
                 f"{_f(r['mean'])} | {_d(r.get('diff_vs_equal'))} |")
    L.append("")
    L.append("## Replay")
    L.append("")
    L.append("    " + _replay(report, b))
    L.append("")
    L.append("Results: `screen/results.jsonl`, `confirm/results.jsonl` (`distillgym leaderboard OUT/confirm --baseline "
             f"{eq}`, `distillgym verify OUT/confirm`); on a leaderboard of the same id: `distillgym leaderboard DIR "
             "--headroom OUT`.")
    L.append("")
    return "\n".join(L)


def plot_heatmap(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Four panels over the skill x difficulty cells: mean test accuracy of the best policy and of the
    equal mix on the confirmation seeds, their difference (diverging scale centred on 0), and the best
    policy's share of the training examples. Raises
    :class:`~distillgym.errors.DependencyMissingError` without matplotlib."""
    from distillgym.runtime import pyplot

    plt = pyplot()
    cells = report["cells"]
    skills, D = cells["skills"], cells["n_difficulties"]
    b, eq = report["best"]["label"], report["baselines"]["equal"]
    panels = [(f"{b}\nmean test accuracy", cells["best"], "viridis", (0, 1)),
              (f"{eq} (equal mix)\nmean test accuracy", cells["equal"], "viridis", (0, 1))]
    if cells.get("diff") is not None:
        lim = max(0.05, float(np.nanmax(np.abs(cells["diff"]))))
        panels.append((f"difference\n{b} - {eq}", cells["diff"], "RdBu", (-lim, lim)))
    if cells.get("best_share") is not None:
        share = np.asarray(cells["best_share"])
        panels.append((f"{b}\nshare of training data", share, "magma", (0, max(1e-9, float(share.max())))))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.9 * len(panels) + 1.2, 0.42 * len(skills) + 2.2), squeeze=False)
    for ax, (title, m, cmap, (lo, hi)) in zip(axes[0], panels, strict=True):
        a = np.asarray(m, dtype=float)
        im = ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(D), [f"L{d}" for d in range(D)])
        ax.set_yticks(range(len(skills)), skills)
        ax.set_xlabel("difficulty")
        for (i, j), v in np.ndenumerate(a):
            v = 0.0 if abs(v) < 5e-3 else float(v)  # no "-0.00"
            txt = f"{v:+.2f}" if cmap == "RdBu" else f"{v:.2f}"
            dark = abs(v) / max(hi, 1e-9) > 0.6 if cmap == "RdBu" else (v - lo) / max(hi - lo, 1e-9) < 0.6
            ax.text(j, i, txt, ha="center", va="center", fontsize=7, color="white" if dark else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    axes[0][0].set_ylabel("skill")
    fig.suptitle(f"Headroom of {report['env']}: confirmation seeds {report['confirm_seeds'][0]}-"
                 f"{report['confirm_seeds'][-1]}", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# ---------------------------------------------------------------------------- reading a result
def load_headroom(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A headroom report from ``headroom.json`` or the folder that holds it."""
    p = Path(path)
    if p.is_dir():
        p = p / "headroom.json"
    try:
        report = json.loads(p.read_text())
    except OSError:
        raise ConfigError(f"no headroom result at {str(p)!r}; run `distillgym headroom ENV_ID --out DIR` first") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{str(p)!r} is not valid JSON ({err})") from None
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise ConfigError(f"{str(p)!r} is not a {FORMAT} headroom result")
    return report


def headroom_episodes(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The best policy's confirmation episodes, relabelled ``headroom: <policy>`` and marked as a
    reference row, to add to a leaderboard's episodes (shown, not ranked)."""
    label = f"headroom: {report['best']['label']}"
    return [{**e, "teacher": label, "reference_row": True, "headroom": True} for e in report.get("best_episodes", [])]
