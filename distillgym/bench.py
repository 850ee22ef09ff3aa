"""Benchmark suites: run every (teacher, seed) pair, resumably, into a results directory.

A suite is a TOML file (``benchmarks/suites/NAME.toml``)::

    name = "quick"
    description = "..."
    env = "distillgym/ArithSkills-v0"
    seeds = [0, 1, 2]          # or a count: seeds = 3
    teachers = ["random"]      # plain names, or [[teachers]] tables as below (not both in one file)
    [env_kwargs]               # constructor arguments of the env (the budget among them)
    budget = 65536
    [[teachers]]
    name = "uniform"           # a registered name, ppo:PATH, or package.module:Class
    [[teachers]]
    name = "ioa"
    label = "ioa-strict"       # optional: how it appears in the leaderboard
    kwargs = { mastery_ratio = 0.95 }

Results go to ``DIR/results.jsonl``: for each finished episode, its step lines
(``"type": "step"``) and then its episode line (``"type": "episode"``: teacher, seed, env id and version,
package version, config hash, final test accuracy, validation curve and its area ``auc``,
examples and seconds spent, invalid actions), all written by
one ``os.write`` call and fsynced, so an episode is in the file whole or not at all. A
run that is killed and started again skips the episodes already in the file. Lines that
are not valid results (corrupt, truncated, or from another format) are reported with file
and line number and skipped. The suite itself is recorded next to them as ``DIR/suite-NAME.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillgym.errors import ConfigError, UnknownNameError, did_you_mean, require
from distillgym.leaderboard import curve_auc

__all__ = [
    "RESULT_FORMAT",
    "Suite",
    "TeacherEntry",
    "Job",
    "find_suite",
    "load_suite",
    "list_suites",
    "read_results",
    "run_suite",
]

RESULT_FORMAT = "distillgym.results/1"
RESULTS_FILE = "results.jsonl"
EXECUTORS = ("local", "ray")


# ---------------------------------------------------------------------------- suites
@dataclass
class TeacherEntry:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.name


@dataclass
class Job:
    """One episode to run: a teacher on the suite's env with one seed."""

    suite: str
    env: str
    env_kwargs: dict[str, Any]
    teacher: str
    teacher_kwargs: dict[str, Any]
    label: str
    seed: int
    config_hash: str

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.label, self.seed, self.config_hash)


@dataclass
class Suite:
    name: str
    env: str
    seeds: list[int]
    teachers: list[TeacherEntry]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    path: str = ""

    def validate(self) -> None:
        if not isinstance(self.env, str) or not self.env:
            raise ConfigError(f"suite {self.name!r}: 'env' must be an environment id such as 'distillgym/ArithSkills-v0'")
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise ConfigError(f"suite {self.name!r}: 'seeds' must be a positive count or a list of integers, got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"suite {self.name!r}: 'seeds' has repeated values {self.seeds}")
        if not self.teachers:
            raise ConfigError(f"suite {self.name!r}: list at least one [[teachers]] entry with a 'name'")
        labels = [t.label for t in self.teachers]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"suite {self.name!r}: teacher labels must be unique, got {labels}; set 'label' to tell them apart")
        if not isinstance(self.env_kwargs, dict):
            raise ConfigError(f"suite {self.name!r}: [env_kwargs] must be a table")

    def config_hash(self, entry: TeacherEntry) -> str:
        """Hash of what determines an episode's result besides the seed."""
        blob = json.dumps(
            {"env": self.env, "env_kwargs": self.env_kwargs, "teacher": entry.name, "kwargs": entry.kwargs},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def jobs(self) -> list[Job]:
        """Seed-major order, so a partial run has every teacher on the same seeds."""
        return [
            Job(self.name, self.env, dict(self.env_kwargs), t.name, dict(t.kwargs), t.label, s, self.config_hash(t))
            for s in self.seeds
            for t in self.teachers
        ]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _suite_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    dirs = [Path.cwd() / "benchmarks" / "suites", here.parent / "benchmarks" / "suites"]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def list_suites() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in _suite_dirs():
        for p in sorted(d.glob("*.toml")):
            found.setdefault(p.stem, p)
    return found


def find_suite(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"suite file {str(p)!r} does not exist")
        return p
    suites = list_suites()
    if name_or_path not in suites:
        raise UnknownNameError(
            f"unknown suite {name_or_path!r}: {did_you_mean(name_or_path, sorted(suites))} "
            "(a suite is a name in benchmarks/suites/ or a path to a .toml file)"
        )
    return suites[name_or_path]


def load_suite(name_or_path: str) -> Suite:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = find_suite(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"suite file {str(path)!r} is not valid TOML: {err}") from None
    known = {"name", "description", "env", "env_kwargs", "seeds", "teachers"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"suite file {str(path)!r} has unknown keys {unknown}; valid keys are {sorted(known)}")
    seeds = data.get("seeds", 5)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"suite file {str(path)!r}: seeds must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    teachers = []
    raw_teachers = data.get("teachers", [])
    if not isinstance(raw_teachers, list):
        raise ConfigError(
            f"suite file {str(path)!r}: 'teachers' must be a list of names (teachers = [\"uniform\", \"ioa\"]) "
            f"or [[teachers]] tables, got {raw_teachers!r}"
        )
    for t in raw_teachers:
        if isinstance(t, str):  # teachers = ["uniform", "ioa"]
            teachers.append(TeacherEntry(t))
            continue
        if not isinstance(t, dict) or "name" not in t or set(t) - {"name", "kwargs", "label"}:
            raise ConfigError(
                f"suite file {str(path)!r}: each teacher is a name or a [[teachers]] table with 'name' and optional "
                f"'kwargs' and 'label', got {t!r}"
            )
        teachers.append(TeacherEntry(t["name"], dict(t.get("kwargs", {})), t.get("label", "")))
    suite = Suite(
        name=data.get("name", path.stem),
        env=data.get("env", "distillgym/ArithSkills-v0"),
        seeds=list(seeds),
        teachers=teachers,
        env_kwargs=dict(data.get("env_kwargs", {})),
        description=data.get("description", ""),
        path=str(path),
    )
    suite.validate()
    return suite


# ---------------------------------------------------------------------------- results file
def _warn(msg: str) -> None:
    print(f"distillgym: warning: {msg}", file=sys.stderr)


_EPISODE_KEYS = ("teacher", "seed", "env", "config_hash", "final_test_accuracy")


def read_results(path: str | os.PathLike[str], warn: Callable[[str], None] = _warn) -> tuple[list[dict], list[dict]]:
    """Episode and step records of a results file (or of ``DIR/results.jsonl``).

    Corrupt, truncated or foreign lines are reported through ``warn`` with file and line
    number and skipped; a repeated episode (same teacher, seed and config hash) is
    reported and only its first copy kept."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.exists():
        raise ConfigError(f"no results at {str(p)!r}; run `distillgym bench SUITE --out DIR` first")
    episodes: list[dict] = []
    steps: list[dict] = []
    seen: set[tuple] = set()
    with open(p, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                warn(f"{p}:{n}: truncated last line (no newline), skipped")
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                warn(f"{p}:{n}: not valid JSON ({err.__class__.__name__}), skipped")
                continue
            if not isinstance(rec, dict) or rec.get("format") != RESULT_FORMAT:
                warn(f"{p}:{n}: not a {RESULT_FORMAT} record, skipped")
                continue
            kind = rec.get("type")
            if kind == "episode":
                missing = [k for k in _EPISODE_KEYS if k not in rec]
                if missing:
                    warn(f"{p}:{n}: episode record lacks {missing}, skipped")
                    continue
                key = (rec["teacher"], rec["seed"], rec["config_hash"])
                if key in seen:
                    warn(f"{p}:{n}: duplicate episode {key}, skipped")
                    continue
                seen.add(key)
                if "auc" not in rec and "curve" in rec:  # lines written before the field existed
                    rec["auc"] = curve_auc(rec["curve"])
                episodes.append(rec)
            elif kind == "step":
                steps.append(rec)
            else:
                warn(f"{p}:{n}: unknown record type {kind!r}, skipped")
    finished = {(e["teacher"], e["seed"], e["config_hash"]) for e in episodes}
    steps = [s for s in steps if (s.get("teacher"), s.get("seed"), s.get("config_hash")) in finished]
    return episodes, steps


def _repair_tail(p: Path) -> None:
    """Cut a partial last line left by a crash (never seen with single-write appends, but
    cheap to guarantee)."""
    if not p.exists() or p.stat().st_size == 0:
        return
    with open(p, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        data = f.seek(0) or f.read()
        cut = data.rfind(b"\n") + 1
        _warn(f"{p}: removing a truncated last line ({len(data) - cut} bytes) left by an interrupted run")
        f.truncate(cut)


def _curve(result: dict[str, Any]) -> list[tuple[int, float]]:
    """The episode's validation learning curve: (examples spent, mean validation accuracy), from reset on."""
    curve = [(0, result["val_accuracy_start"])]
    spent = 0
    for s in result["steps"]:
        spent += s["examples"]
        curve.append((spent, s["val_accuracy"]))
    return curve


def _records(job: Job, result: dict[str, Any], version: str) -> bytes:
    common = {
        "format": RESULT_FORMAT,
        "suite": job.suite,
        "teacher": job.label,
        "teacher_name": job.teacher,
        "seed": job.seed,
        "config_hash": job.config_hash,
    }
    lines = [json.dumps({**common, "type": "step", **s}) for s in result["steps"]]
    episode = {k: v for k, v in result.items() if k not in ("steps", "teacher", "seed")}
    curve = _curve(result)
    env_version = job.env.rsplit("-v", 1)[-1] if "-v" in job.env else ""
    episode.update(
        {
            **common,
            "type": "episode",
            "env_version": env_version,
            "env_kwargs": job.env_kwargs,
            "teacher_kwargs": job.teacher_kwargs,
            "package_version": version,
            "curve": curve,
            "auc": curve_auc(curve),
            "invalid_actions": int(result.get("teacher_stats", {}).get("invalid_replies", 0)),
            "finished_at": time.time(),
        }
    )
    lines.append(json.dumps(episode))
    return ("\n".join(lines) + "\n").encode()


class ResultsWriter:
    """Appends whole episodes to ``DIR/results.jsonl`` with one write each."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RESULTS_FILE
        _repair_tail(self.path)

    def finished(self) -> set[tuple[str, int, str]]:
        if not self.path.exists():
            return set()
        episodes, _ = read_results(self.path)
        return {(e["teacher"], e["seed"], e["config_hash"]) for e in episodes}

    def append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # pragma: no cover - only on a full disk
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------- executors
def run_job(job: Job, threads: int = 1) -> dict[str, Any]:
    """Run one job in this process with ``threads`` torch threads (the same in every
    executor, so results do not depend on where a job ran)."""
    import torch

    from distillgym.runner import run_episode

    torch.set_num_threads(threads)
    return run_episode(job.env, job.teacher, job.seed, job.env_kwargs, job.teacher_kwargs)


def _die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to kill this worker when the runner
    dies (even by SIGKILL), so a killed benchmark leaves no orphans burning CPU."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _run_local(jobs: Sequence[Job], workers: int, threads: int) -> Iterator[tuple[Job, dict[str, Any]]]:
    if workers <= 1:
        for job in jobs:
            yield job, run_job(job, threads)
        return
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent
    ) as pool:
        pending = {pool.submit(run_job, job, threads): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                job = pending.pop(fut)
                yield job, fut.result()


def _run_ray(jobs: Sequence[Job], workers: int, threads: int, address: str | None) -> Iterator[tuple[Job, dict[str, Any]]]:
    ray = require("ray", "the Ray executor", "ray", " (or use --executor local)")
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(run_job)
        refs = {remote.remote(job, threads): job for job in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                yield job, ray.get(ref)
    finally:
        if started:
            ray.shutdown()


def run_suite(
    suite: Suite,
    out_dir: str | os.PathLike[str],
    workers: int = 1,
    executor: str = "local",
    threads: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
    wandb: bool = False,
    on_episode: Callable[[Job, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the suite's unfinished (teacher, seed) pairs and append them to ``out_dir``.

    Returns counts: ``{"total", "skipped", "ran", "seconds"}``."""
    from distillgym import __version__

    if executor not in EXECUTORS:
        raise UnknownNameError(f"unknown executor {executor!r}: {did_you_mean(executor, EXECUTORS)}")
    if workers < 1 or threads < 1:
        raise ConfigError(f"workers and threads must be >= 1, got workers={workers}, threads={threads}")
    writer = ResultsWriter(out_dir)
    # One record per suite, so several suites run into one directory (standard, then learned) each keep theirs.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in suite.name)
    (writer.dir / f"suite-{safe}.json").write_text(json.dumps(suite.to_dict(), indent=2))
    done = writer.finished()
    jobs = [j for j in suite.jobs() if j.key not in done]
    total = len(suite.jobs())
    t0 = time.perf_counter()
    logger = _WandbLogger(suite, writer.dir) if wandb else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - len(jobs), desc=f"bench {suite.name}", unit="episode", file=sys.stderr)
    it = _run_local(jobs, workers, threads) if executor == "local" else _run_ray(jobs, workers, threads, ray_address)
    try:
        for job, result in it:
            writer.append(_records(job, result, __version__))
            if logger:
                logger.log(job, result)
            if bar is not None:
                bar.set_postfix_str(f"{job.label} seed {job.seed}: {result['final_test_accuracy']:.3f}")
                bar.update(1)
            if on_episode:
                on_episode(job, result)
    finally:
        if bar is not None:
            bar.close()
        if logger:
            logger.finish()
    return {"total": total, "skipped": total - len(jobs), "ran": len(jobs), "seconds": time.perf_counter() - t0}


class _WandbLogger:
    """Logs every finished episode to Weights & Biases: one run per (teacher, seed) episode.

    Runs are grouped by ``SUITE/TEACHER`` so W&B's grouping shows the mean and spread over seeds, and each
    step is logged against ``examples`` (the x-axis of the learning curves). Offline by default (no account
    needed; ``wandb sync DIR/wandb/offline-run-*`` uploads later); ``WANDB_MODE=online`` and
    ``WANDB_PROJECT`` change that. A run is opened only after its episode has been written to the results
    file, so a resumed suite logs only the episodes it runs and no episode is logged twice."""

    def __init__(self, suite: Suite, out_dir: Path) -> None:
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
                "env_kwargs": job.env_kwargs,
                "teacher": job.teacher,
                "teacher_kwargs": job.teacher_kwargs,
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
            for s, (spent, _) in zip(result["steps"], _curve(result)[1:], strict=True):
                row = {"examples": spent, "val_accuracy": s["val_accuracy"], "reward": s["reward"]}
                row.update({k: s[k] for k in ("loss", "difficulty") if isinstance(s.get(k), (int, float))})
                run.log(row, step=s["t"])
            run.summary.update(
                {
                    "final_test_accuracy": result["final_test_accuracy"],
                    "val_accuracy_end": result["val_accuracy_end"],
                    "return": result["return"],
                    "auc": curve_auc(_curve(result)),
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
