"""Run a benchmark resumably into a results directory: :func:`run_benchmark`.

A benchmark (a TOML file of envs x teachers x seeds, :mod:`distillgym.harness.benchmark`) is resolved
first: every env and teacher is built once, so a bad file fails before any episode runs. Then every
(teacher, seed) pair not yet in ``DIR/results.jsonl`` (:mod:`distillgym.harness.results`) runs on an
executor (:mod:`distillgym.harness.executors`: a local process pool, one torch thread per worker,
Ray, or populations of students in native vector envs, :mod:`distillgym.harness.population`) and is
appended whole as it finishes. The benchmark itself is recorded next to the results as
``DIR/suite-NAME.json`` (the file name and the ``suite`` field of the lines keep the format's word).

An episode that raises is recorded as a **failed line** (``status: "failed"``, ``error``,
``traceback``, ``steps_completed``, ``final_test_accuracy: null``, no step lines); the other
episodes go on, and :func:`run_benchmark` reports the failures (the CLI exits non-zero). A run that
is killed or has failures and is started again skips the ok episodes already in the file and
retries the rest.

**Resume never silently pools machines**: when finished episodes of a group this run adds to (same
env and config hash) carry another fingerprint than this process's, :func:`run_benchmark` raises
:class:`FingerprintMismatchError` naming the differences, unless ``allow_mixed_fingerprints=True``
(CLI ``--allow-mixed-fingerprints``); use another results directory to keep the runs apart. The
leaderboard marks any row whose episodes have several fingerprints.

With ``wandb=True`` each finished episode is also logged as one (offline) Weights & Biases run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from distillgym.errors import ConfigError, UnknownNameError, did_you_mean, require
from distillgym.harness.benchmark import Benchmark, Job
from distillgym.harness.executors import EXECUTORS, run_local, run_ray
from distillgym.harness.fingerprint import fingerprint, fingerprint_diff, redact, scrub, secret_values
from distillgym.harness.leaderboard import curve_auc
from distillgym.harness.results import ResultsWriter, curve, episode_lines, is_ok

__all__ = ["run_benchmark", "run_and_collect", "FingerprintMismatchError"]


class FingerprintMismatchError(ConfigError):
    """A resume would pool new episodes with finished ones recorded under another fingerprint."""


def _check_fingerprints(jobs: Sequence[Job], finished: Sequence[dict[str, Any]], threads: int,
                        allow: bool, out: Path) -> list[str]:
    """Compare the fingerprint this run will record with the finished ok episodes of the groups
    (env, config hash) it adds to. Returns notes (one per differing group); raises
    :class:`FingerprintMismatchError` when there are any and ``allow`` is False."""
    now: dict[tuple[str, str], dict[str, Any]] = {}
    for j in jobs:
        now.setdefault((j.env, j.config_hash), fingerprint(device=j.device, torch_threads=threads))
    diffs: dict[tuple[str, str], dict[str, Any]] = {}
    counts: dict[tuple[str, str], int] = {}
    for e in finished:
        g = (e["env"], e["config_hash"])
        if g not in now:
            continue
        d = fingerprint_diff(e.get("fingerprint"), now[g])
        if d:
            counts[g] = counts.get(g, 0) + 1
            diffs.setdefault(g, {}).update({k: v for k, v in d.items() if k not in diffs.get(g, {})})
    notes = []
    for g, d in diffs.items():
        label = sorted({e["teacher"] for e in finished if (e["env"], e["config_hash"]) == g})
        what = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in d.items())
        notes.append(f"{counts[g]} finished episode(s) of {', '.join(label)} on {g[0]} [{g[1][:8]}] in {out} were "
                     f"recorded with another fingerprint ({what})")
    if notes and not allow:
        raise FingerprintMismatchError(
            "resuming would pool numbers from different machines or software under one config hash:\n  "
            + "\n  ".join(notes)
            + "\nRun into another results directory (--out) to keep the runs apart, or pass "
            "--allow-mixed-fingerprints (allow_mixed_fingerprints=True) to pool them; the leaderboard then marks "
            "the rows whose episodes have several fingerprints."
        )
    return notes


def run_benchmark(
    benchmark: Benchmark,
    out_dir: str | os.PathLike[str],
    workers: int = 1,
    executor: str = "local",
    threads: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
    wandb: bool = False,
    on_episode: Callable[[Job, dict[str, Any]], None] | None = None,
    allow_mixed_fingerprints: bool = False,
    say: Callable[[str], None] | None = None,
    num_envs: int | None = None,
) -> dict[str, Any]:
    """Run the benchmark's unfinished (teacher, seed) pairs and append them to ``out_dir``.

    Every env and teacher is built once first (:meth:`Benchmark.resolve`), so a bad file fails before
    any episode runs. A resume onto finished episodes of another fingerprint raises
    :class:`FingerprintMismatchError` unless ``allow_mixed_fingerprints``. An episode that raises is
    recorded as a failed line and the others go on. ``say`` receives progress messages (resume
    notes); default: stderr when ``progress``. ``executor="population"`` runs the episodes of envs with
    a native vector env as populations of at most ``num_envs`` students (None: chosen by
    :func:`distillgym.harness.population.auto_num_envs`; see that module).

    Returns counts: ``{"total", "skipped", "ran", "ok", "failed", "failures", "mixed_fingerprints",
    "seconds"}``; ``failures`` lists ``{"label", "seed", "config_hash", "error"}`` per failed episode
    and ``mixed_fingerprints`` the notes of groups pooled across fingerprints."""
    from distillgym import __version__

    if executor not in EXECUTORS:
        raise UnknownNameError(f"unknown executor {executor!r}: {did_you_mean(executor, EXECUTORS)}")
    if workers < 1 or threads < 1:
        raise ConfigError(f"workers and threads must be >= 1, got workers={workers}, threads={threads}")
    if say is None:
        say = _warn_plain if progress else (lambda _msg: None)
    t0 = time.perf_counter()
    benchmark.resolve(threads=threads)  # builds every env and teacher once: a bad benchmark fails here
    all_jobs = benchmark.jobs()
    writer = ResultsWriter(out_dir)
    finished = [e for e in writer.episodes() if is_ok(e)]
    done = {(e["teacher"], e["seed"], e["config_hash"]) for e in finished}
    jobs = [j for j in all_jobs if j.key not in done]
    retry = sum(1 for e in writer.episodes() if not is_ok(e) and (e["teacher"], e["seed"], e["config_hash"])
                in {j.key for j in jobs})
    notes = _check_fingerprints(jobs, finished, threads, allow_mixed_fingerprints, writer.dir)
    for note in notes:
        say(f"pooling (--allow-mixed-fingerprints): {note}")
    total = len(all_jobs)
    if total - len(jobs):
        say(f"resuming {writer.path}: {total - len(jobs)} of {total} episodes already there"
            + (f", {retry} failed one(s) to retry" if retry else ""))
    # One record per benchmark, so several benchmarks run into one directory (standard, then learned) each keep theirs.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in benchmark.name)
    record = scrub(json.dumps(benchmark.to_dict(), indent=2), secret_values(
        *[t.kwargs for t in benchmark.teachers], benchmark.env_kwargs, *[t.env_kwargs for t in benchmark.teachers]))
    record_path = writer.dir / f"suite-{safe}.json"
    try:
        same = record_path.read_text() == record
    except OSError:
        same = False
    if not same:  # a resume of an unchanged benchmark leaves a checked-in record (and its git tree) untouched
        record_path.write_text(record)
    logger = _WandbLogger(benchmark, writer.dir) if wandb else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - len(jobs), desc=f"bench {benchmark.name}", unit="episode", file=sys.stderr)
    if executor == "population":
        from distillgym.harness.population import run_population

        it = run_population(jobs, workers, threads, num_envs, say=say)
    elif executor == "local":
        it = run_local(jobs, workers, threads)
    else:
        it = run_ray(jobs, workers, threads, ray_address)
    failures: list[dict[str, Any]] = []
    try:
        for job, result in it:
            writer.append(episode_lines(job, result, __version__))
            ok = result.get("status", "ok") == "ok"
            if not ok:
                failures.append({"label": job.label, "seed": job.seed, "config_hash": job.config_hash,
                                 "error": scrub(result["error"], secret_values(job.teacher_kwargs, job.env_kwargs))})
            if logger and ok:
                logger.log(job, result)
            if bar is not None:
                bar.set_postfix_str(f"{job.label} seed {job.seed}: "
                                    + (f"{result['final_test_accuracy']:.3f}" if ok else "FAILED"))
                bar.update(1)
            if on_episode:
                on_episode(job, result)
    finally:
        if bar is not None:
            bar.close()
        if logger:
            logger.finish()
    return {"total": total, "skipped": total - len(jobs), "ran": len(jobs), "ok": len(jobs) - len(failures),
            "failed": len(failures), "failures": failures, "mixed_fingerprints": notes,
            "seconds": time.perf_counter() - t0}


def run_and_collect(bench: Benchmark, out: str | os.PathLike[str], what: str,
                    **run_kwargs: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Run ``bench`` into ``out`` (:func:`run_benchmark` with ``run_kwargs``) for a command that needs
    every episode: a failed episode raises ConfigError naming ``what`` (e.g. "the headroom-screen
    stage's"), the first failure and how to retry. Returns (the ok episodes of this benchmark's jobs and
    seeds, their step lines, the number of episodes this call ran); other lines of ``out`` are ignored."""
    from distillgym.harness.results import read_results

    counts = run_benchmark(bench, out, **run_kwargs)
    if counts["failed"]:
        first = counts["failures"][0]
        raise ConfigError(f"{counts['failed']} of {what} episodes failed (first: {first['label']} seed "
                          f"{first['seed']}: {first['error'].splitlines()[0] if first['error'] else ''}); they are "
                          f"recorded in {out}/results.jsonl; run the same command again to retry them")
    keep = {(j.label, j.config_hash) for j in bench.jobs()}
    seeds = set(bench.seeds)
    episodes, steps = read_results(out)
    mine = [e for e in episodes if is_ok(e) and (e["teacher"], e["config_hash"]) in keep and e["seed"] in seeds]
    hashes = {e["config_hash"] for e in mine}
    return mine, [x for x in steps if x.get("config_hash") in hashes and x.get("seed") in seeds], int(counts["ran"])


def _warn_plain(msg: str) -> None:
    print(f"distillgym: {msg}", file=sys.stderr, flush=True)


class _WandbLogger:
    """Logs every finished episode to Weights & Biases: one run per (teacher, seed) episode.

    Runs are grouped by ``SUITE/TEACHER`` so W&B's grouping shows the mean and spread over seeds, and each
    step is logged against ``examples`` (the x-axis of the learning curves). Offline by default (no account
    needed; ``wandb sync DIR/wandb/offline-run-*`` uploads later); ``WANDB_MODE=online`` and
    ``WANDB_PROJECT`` change that. A run is opened only after its episode has been written to the results
    file, so a resumed benchmark logs only the episodes it runs and no episode is logged twice."""

    def __init__(self, benchmark: Benchmark, out_dir: Path) -> None:
        self.wandb = require("wandb", "--wandb", "wandb")
        self.dir = str(out_dir)
        self.project = os.environ.get("WANDB_PROJECT", "distillgym")
        self.mode = os.environ.get("WANDB_MODE", "offline")

    def log(self, job: Job, result: dict[str, Any]) -> None:
        run = self.wandb.init(
            project=self.project,
            mode=self.mode,
            dir=self.dir,
            group=f"{job.suite}/{job.label}",
            job_type=job.suite,
            name=f"{job.label}-seed{job.seed}",
            tags=[job.suite, job.label],
            config={
                "suite": job.suite,
                "env": job.env,
                "env_kwargs": redact(job.env_kwargs),
                "teacher": job.teacher,
                "teacher_kwargs": redact(job.teacher_kwargs),
                "seed": job.seed,
                "config_hash": job.config_hash,
            },
            settings=self.wandb.Settings(silent=True),
        )
        try:
            run.define_metric("examples")
            for key in ("val_accuracy", "reward", "loss", "difficulty"):
                run.define_metric(key, step_metric="examples")
            run.log({"examples": 0, "val_accuracy": result["val_accuracy_start"]}, step=0)
            for s, (spent, _) in zip(result["steps"], curve(result)[1:], strict=True):
                row = {"examples": spent, "val_accuracy": s["val_accuracy"], "reward": s["reward"]}
                row.update({k: s[k] for k in ("loss", "difficulty") if isinstance(s.get(k), (int, float))})
                run.log(row, step=s["t"])
            run.summary.update(
                {
                    "final_test_accuracy": result["final_test_accuracy"],
                    "val_accuracy_end": result["val_accuracy_end"],
                    "return": result["return"],
                    "auc": curve_auc(curve(result)),
                    "examples_total": result["examples"],
                    "seconds": result["seconds"],
                    **{
                        f"test_accuracy/{k}": v
                        for k, v in zip(result["skills"], result["test_skill_accuracy"], strict=True)
                    },
                }
            )
        finally:
            run.finish()

    def finish(self) -> None:
        """Nothing to close: every episode's run is finished as soon as it is logged."""
