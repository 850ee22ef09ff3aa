"""Benchmark suites: run every (teacher, seed) pair, resumably, into a results directory.

A suite is a TOML file (``benchmarks/suites/NAME.toml``)::

    name = "quick"
    description = "..."
    env = "distillgym/ArithSkills-v1"
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
    [[teachers]]
    name = "uniform"
    label = "uniform-fixed-init"
    env = "distillgym/ArithSkills-v1"        # optional: this entry's env (default: the suite's)
    env_kwargs = { student_init = "fixed" }  # optional: merged over the suite's [env_kwargs]

Labels must be unique within an env (the same label in two envs is one teacher compared per env).

**Before any episode runs**, :meth:`Suite.resolve` builds every env of the suite once (and resets
it) and every teacher once (and resets it on its env), in this process: a misspelt teacher, an
unknown argument or a teacher that cannot play the env fails at once with its usual error, not
inside a worker. The same pass resolves what the config hash covers (:mod:`distillgym.harness.fingerprint`):
the env's full configuration with every default filled in, the teacher's constructor arguments
with defaults filled in, and the content of what the teacher loads (a ``ppo:PATH`` file, a user
class's module source). **Hashes changed with this release** (recipe 2, ``config_hash_version`` in
the line): results written before it keep their old hashes and are not rewritten; a rerun of an
old suite into an old results directory therefore runs every episode again, as new rows.

Results go to ``DIR/results.jsonl``: for each finished episode, its step lines
(``"type": "step"``) and then its episode line (``"type": "episode"``: teacher, seed, env id and version,
package version, config hash, ``status``, final test accuracy, validation curve and its area ``auc``,
examples and seconds spent, invalid actions, ``costs``, ``fingerprint`` (:func:`fingerprint.fingerprint`:
software versions, git commit, CPU, device, threads), ``reference_row``, the resolved ``env_config``
and ``teacher_args``), all written by one ``os.write`` call and fsynced, so an episode is in the
file whole or not at all. Credentials (``api_key`` arguments, ``OPENAI_API_KEY`` and the like) are
redacted from everything written (results, suite record, wandb config) and hashed as ``<redacted>``.

An episode that raises is recorded as a **failed line** (``status: "failed"``, ``error``,
``traceback``, ``steps_completed``, ``final_test_accuracy: null``, no step lines); the other
episodes go on, and :func:`run_suite` reports the failures (the CLI exits non-zero). A run that is
killed or has failures and is started again skips the ok episodes already in the file and retries
the rest; :func:`read_results` prefers an ok line over a failed one of the same key.

**Resume never silently pools machines**: when finished episodes of a group this run adds to (same
env and config hash) carry another fingerprint than this process's, :func:`run_suite` raises
:class:`ConfigError` naming the differences, unless ``allow_mixed_fingerprints=True`` (CLI
``--allow-mixed-fingerprints``); use another results directory to keep the runs apart. The
leaderboard marks any row whose episodes have several fingerprints.

Lines that are not valid results (corrupt, truncated, or from another format) are reported with
file and line number and skipped. The suite itself is recorded next to them as ``DIR/suite-NAME.json``.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillgym.envs import DEFAULT_ENV
from distillgym.errors import ConfigError, DistillGymError, UnknownNameError, did_you_mean, require
from distillgym.harness.fingerprint import (
    HASH_VERSION,
    config_hash,
    fingerprint,
    fingerprint_diff,
    redact,
    scrub,
    secret_values,
    teacher_identity,
)
from distillgym.harness.leaderboard import curve_auc

__all__ = [
    "RESULT_FORMAT",
    "Suite",
    "TeacherEntry",
    "Job",
    "ResolvedEntry",
    "FingerprintMismatchError",
    "find_suite",
    "load_suite",
    "list_suites",
    "read_results",
    "run_suite",
    "run_job",
]

RESULT_FORMAT = "distillgym.results/1"
RESULTS_FILE = "results.jsonl"
EXECUTORS = ("local", "ray")


# ---------------------------------------------------------------------------- suites
@dataclass
class TeacherEntry:
    """One ``[[teachers]]`` entry: a teacher name, its arguments, its label, and optionally its own
    env id and env arguments (merged over the suite's)."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    env: str = ""
    """This entry's env id; empty: the suite's."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env arguments of this entry only, merged over the suite's ``env_kwargs``."""

    def __post_init__(self) -> None:
        self.label = self.label or self.name


@dataclass
class ResolvedEntry:
    """What :meth:`Suite.resolve` found for one entry: the env's configuration with every default
    filled in, the student's device, the teacher's resolved identity
    (:func:`distillgym.harness.fingerprint.teacher_identity`) and the config hash over them."""

    env: str
    env_kwargs: dict[str, Any]
    env_config: dict[str, Any]
    device: str
    identity: dict[str, Any]
    config_hash: str


@dataclass
class Job:
    """One episode to run: a teacher on its env with one seed."""

    suite: str
    env: str
    env_kwargs: dict[str, Any]
    teacher: str
    teacher_kwargs: dict[str, Any]
    label: str
    seed: int
    config_hash: str
    env_config: dict[str, Any] = field(default_factory=dict)
    teacher_identity: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

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

    def __post_init__(self) -> None:
        self._resolved: dict[str, ResolvedEntry] = {}
        self._resolved_for = ""

    def env_of(self, entry: TeacherEntry) -> str:
        return entry.env or self.env

    def env_kwargs_of(self, entry: TeacherEntry) -> dict[str, Any]:
        return {**self.env_kwargs, **entry.env_kwargs}

    def validate(self) -> None:
        if not isinstance(self.env, str) or not self.env:
            raise ConfigError(f"suite {self.name!r}: 'env' must be an environment id such as 'distillgym/ArithSkills-v1'")
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise ConfigError(f"suite {self.name!r}: 'seeds' must be a positive count or a list of integers, got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"suite {self.name!r}: 'seeds' has repeated values {self.seeds}")
        if not self.teachers:
            raise ConfigError(f"suite {self.name!r}: list at least one [[teachers]] entry with a 'name'")
        for t in self.teachers:
            if not isinstance(t.env, str) or not isinstance(t.env_kwargs, dict) or not isinstance(t.kwargs, dict):
                raise ConfigError(f"suite {self.name!r}: teacher {t.label!r}: 'env' must be an env id and 'kwargs' "
                                  f"and 'env_kwargs' tables, got env={t.env!r}, kwargs={t.kwargs!r}, "
                                  f"env_kwargs={t.env_kwargs!r}")
        labels = [(self.env_of(t), t.label) for t in self.teachers]
        if len(set(labels)) != len(labels):
            dup = sorted({lb for lb in labels if labels.count(lb) > 1})
            raise ConfigError(f"suite {self.name!r}: teacher labels must be unique within an env, got {dup} more than "
                              "once; set 'label' to tell them apart")
        if not isinstance(self.env_kwargs, dict):
            raise ConfigError(f"suite {self.name!r}: [env_kwargs] must be a table")

    # ------------------------------------------------------------------ resolution
    def _state(self) -> str:
        return json.dumps([self.env, self.env_kwargs, self.seeds[:1], [dataclasses.asdict(t) for t in self.teachers]],
                          sort_keys=True, default=repr)

    def resolve(self, threads: int | None = None) -> dict[str, ResolvedEntry]:
        """Build every env of the suite once and every teacher once (each reset on its env with the
        first seed), in this process, and return ``{label-key: ResolvedEntry}``; cached until the
        suite changes. Raises the usual error of whatever cannot be built, with the suite and the
        teacher named, before any episode runs. ``threads``: torch threads for this check."""
        state = self._state()
        if self._resolved and self._resolved_for == state:
            return self._resolved
        self.validate()
        import gymnasium as gym

        import distillgym  # noqa: F401  (registers the envs)
        from distillgym.harness.runner import prepare_teacher, student_device
        from distillgym.teachers import make_teacher

        if threads is not None:
            import torch

            torch.set_num_threads(int(threads))
        by_env: dict[str, list[TeacherEntry]] = {}
        for t in self.teachers:
            by_env.setdefault(json.dumps([self.env_of(t), self.env_kwargs_of(t)], sort_keys=True, default=repr),
                              []).append(t)
        resolved: dict[str, ResolvedEntry] = {}
        for key, entries in by_env.items():
            env_id, env_kwargs = json.loads(key)
            try:
                env = gym.make(env_id, **env_kwargs)
            except gym.error.Error as err:
                raise UnknownNameError(f"suite {self.name!r}: cannot make env {env_id!r}: {err} "
                                       f"(registered ids: `distillgym envs`)") from None
            except DistillGymError as err:
                raise _with_context(err, f"suite {self.name!r}, env {env_id!r} with {env_kwargs}") from None
            try:
                env_config = env.unwrapped.config if hasattr(env.unwrapped, "config") else dict(env_kwargs)
                device = student_device(env)
                _, info = env.reset(seed=self.seeds[0])
                for t in entries:
                    where = f"suite {self.name!r}, teacher {t.label!r} ({t.name}) on {env_id}"
                    try:
                        identity = teacher_identity(t.name, t.kwargs)
                        agent = make_teacher(t.name, **t.kwargs)
                        agent = prepare_teacher(agent, env, info, self.seeds[0])
                        close = getattr(agent, "close", None)
                        if callable(close):
                            close()
                    except DistillGymError as err:
                        raise _with_context(err, where) from None
                    except Exception as err:  # a user teacher's own bug
                        raise ConfigError(f"{where}: building or resetting the teacher raised "
                                          f"{type(err).__name__}: {err}") from err
                    resolved[_entry_key(env_id, t.label)] = ResolvedEntry(
                        env_id, dict(env_kwargs), env_config, device, identity,
                        config_hash(env_id, env_config, identity),
                    )
            finally:
                env.close()
        self._resolved, self._resolved_for = resolved, state
        return resolved

    def resolved(self, entry: TeacherEntry) -> ResolvedEntry:
        return self.resolve()[_entry_key(self.env_of(entry), entry.label)]

    def config_hash(self, entry: TeacherEntry) -> str:
        """Hash of what determines an episode's result besides the seed and the machine (see
        :func:`distillgym.harness.fingerprint.config_hash`); resolves the suite first."""
        return self.resolved(entry).config_hash

    def jobs(self) -> list[Job]:
        """Seed-major order, so a partial run has every teacher on the same seeds."""
        out = []
        for s in self.seeds:
            for t in self.teachers:
                r = self.resolved(t)
                out.append(Job(self.name, r.env, dict(r.env_kwargs), t.name, dict(t.kwargs), t.label, s, r.config_hash,
                               r.env_config, r.identity, r.device))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The suite as written to ``suite-NAME.json`` (credentials redacted), with each entry's
        resolution (config hash, env config, teacher identity) when it has been resolved."""
        d = redact(dataclasses.asdict(self))
        if self._resolved:
            d["resolved"] = {k: redact(dataclasses.asdict(r)) for k, r in self._resolved.items()}
            d["config_hash_version"] = HASH_VERSION
        return d


def _entry_key(env_id: str, label: str) -> str:
    return f"{env_id}|{label}"


def _with_context(err: DistillGymError, where: str) -> DistillGymError:
    """``err`` with ``where`` in front of its message, same type (for the usual error classes)."""
    if type(err) in (ConfigError, UnknownNameError):
        return type(err)(f"{where}: {err}")
    return err


def _suite_dirs() -> list[Path]:
    """Where benchmark names are looked up: ``./benchmarks/suites/`` (a user's own files, first) and
    the benchmarks shipped with the package (``distillgym/harness/benchmarks/``)."""
    dirs = [Path.cwd() / "benchmarks" / "suites", Path(__file__).resolve().parent / "benchmarks"]
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
        if not isinstance(t, dict) or "name" not in t or set(t) - {"name", "kwargs", "label", "env", "env_kwargs"}:
            raise ConfigError(
                f"suite file {str(path)!r}: each teacher is a name or a [[teachers]] table with 'name' and optional "
                f"'kwargs', 'label', 'env' and 'env_kwargs', got {t!r}"
            )
        teachers.append(TeacherEntry(t["name"], t.get("kwargs", {}), t.get("label", ""), t.get("env", ""),
                                     t.get("env_kwargs", {})))
    suite = Suite(
        name=data.get("name", path.stem),
        env=data.get("env", DEFAULT_ENV),
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


def _is_ok(rec: dict[str, Any]) -> bool:
    return rec.get("status", "ok") == "ok"


def read_results(path: str | os.PathLike[str], warn: Callable[[str], None] = _warn) -> tuple[list[dict], list[dict]]:
    """Episode and step records of a results file (or of ``DIR/results.jsonl``).

    Corrupt, truncated or foreign lines are reported through ``warn`` with file and line
    number and skipped. One episode is kept per key (teacher label, seed, config hash): an ok line
    (``status`` "ok", or no status: lines written before the field) is preferred over a failed one
    wherever each comes in the file; of several failed lines the last is kept; a repeated ok line is
    reported and only its first copy kept. Failed episodes are returned too (the leaderboard counts
    them); they have no step lines."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.exists():
        raise ConfigError(f"no results at {str(p)!r}; run `distillgym bench SUITE --out DIR` first")
    episodes: list[dict | None] = []
    steps: list[dict] = []
    where: dict[tuple, int] = {}
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
                if "auc" not in rec and "curve" in rec:  # lines written before the field existed
                    rec["auc"] = curve_auc(rec["curve"])
                if key in where:
                    prev = episodes[where[key]] or {}
                    if _is_ok(prev):
                        if _is_ok(rec):
                            warn(f"{p}:{n}: duplicate episode {key}, skipped")
                        continue  # an ok line wins over a later failed one
                    episodes[where[key]] = None  # a failed line gives way to a later ok or failed one
                where[key] = len(episodes)
                episodes.append(rec)
            elif kind == "step":
                steps.append(rec)
            else:
                warn(f"{p}:{n}: unknown record type {kind!r}, skipped")
    kept = [e for e in episodes if e is not None]
    finished = {(e["teacher"], e["seed"], e["config_hash"]) for e in kept if _is_ok(e)}
    steps = [s for s in steps if (s.get("teacher"), s.get("seed"), s.get("config_hash")) in finished]
    return kept, steps


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


def _env_version(env_id: str) -> str:
    return env_id.rsplit("-v", 1)[-1] if "-v" in env_id else ""


def _records(job: Job, result: dict[str, Any], version: str) -> bytes:
    """The lines of one finished (or failed) episode, credentials redacted and scrubbed."""
    common = {
        "format": RESULT_FORMAT,
        "suite": job.suite,
        "teacher": job.label,
        "teacher_name": job.teacher,
        "seed": job.seed,
        "config_hash": job.config_hash,
    }
    described = {
        "env": job.env,
        "env_version": _env_version(job.env),
        "env_kwargs": redact(job.env_kwargs),
        "teacher_kwargs": redact(job.teacher_kwargs),
        "config_hash_version": HASH_VERSION,
        "env_config": redact(job.env_config),
        "teacher_args": job.teacher_identity.get("args", {}),
        "teacher_content": job.teacher_identity.get("content", {}),
        "package_version": version,
    }
    if result.get("status") == "failed":
        episode = {
            **common, "type": "episode", **described, "status": "failed",
            "final_test_accuracy": None,
            "error": result["error"],
            "traceback": result["traceback"],
            "steps_completed": int(result.get("steps_completed", 0)),
            "reference_row": bool(result.get("reference_row", False)),
            "fingerprint": result.get("fingerprint"),
            "seconds": float(result.get("seconds", 0.0)),
            "finished_at": time.time(),
        }
        lines = [json.dumps(episode)]
    else:
        lines = [json.dumps({**common, "type": "step", **s}) for s in result["steps"]]
        episode = {k: v for k, v in result.items() if k not in ("steps", "teacher", "seed")}
        curve = _curve(result)
        episode.update(
            {
                **common,
                "type": "episode",
                **described,
                "status": "ok",
                "teacher_stats": redact(result.get("teacher_stats", {})),
                "curve": curve,
                "auc": curve_auc(curve),
                "invalid_actions": int(result.get("teacher_stats", {}).get("invalid_replies", 0)),
                "finished_at": time.time(),
            }
        )
        lines.append(json.dumps(episode))
    text = "\n".join(lines) + "\n"
    return scrub(text, secret_values(job.teacher_kwargs, job.env_kwargs)).encode()


class ResultsWriter:
    """Appends whole episodes to ``DIR/results.jsonl`` with one write each."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RESULTS_FILE
        _repair_tail(self.path)

    def episodes(self) -> list[dict]:
        """The episode records in the file (ok and failed), as :func:`read_results` keeps them."""
        if not self.path.exists():
            return []
        return read_results(self.path)[0]

    def finished(self) -> set[tuple[str, int, str]]:
        """Keys (label, seed, config hash) of the ok episodes in the file; failed ones are not
        finished, so a rerun retries them."""
        return {(e["teacher"], e["seed"], e["config_hash"]) for e in self.episodes() if _is_ok(e)}

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
def _failed(error: BaseException | str, tb: str, threads: int, device: str = "cpu", **extra: Any) -> dict[str, Any]:
    """The result of an episode that raised (or whose worker died)."""
    msg = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    out: dict[str, Any] = {"status": "failed", "error": msg, "traceback": tb, "steps_completed": 0, **extra}
    if "fingerprint" not in out:
        out["fingerprint"] = fingerprint(device=device, torch_threads=threads)
    return out


def run_job(job: Job, threads: int = 1) -> dict[str, Any]:
    """Run one job in this process with ``threads`` torch threads (the same in every
    executor, so results do not depend on where a job ran). Never raises for an episode's
    own error: returns ``{"status": "failed", "error", "traceback", "steps_completed", ...}``
    instead; an ok result carries ``status: "ok"`` and this process's ``fingerprint``."""
    import torch

    from distillgym.harness.runner import run_episode

    torch.set_num_threads(threads)
    # taken before the episode: it describes the code and machine the episode starts with
    fp = fingerprint(device=job.device, torch_threads=threads)
    steps: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        result = run_episode(job.env, job.teacher, job.seed, job.env_kwargs, job.teacher_kwargs, on_step=steps.append)
    except Exception as err:
        return _failed(err, traceback.format_exc(), threads, job.device, steps_completed=len(steps),
                       seconds=time.perf_counter() - t0, fingerprint=fp)
    if result.get("device", job.device) != fp["device"]:
        fp = fingerprint(device=result["device"], torch_threads=threads)
    result["status"] = "ok"
    result["fingerprint"] = fp
    return result


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
                try:
                    result = fut.result()
                except Exception as err:  # the worker died (killed, out of memory) or could not return
                    result = _failed(err, traceback.format_exc(), threads, job.device)
                yield job, result


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
                try:
                    result = ray.get(ref)
                except Exception as err:  # the worker died
                    result = _failed(err, traceback.format_exc(), threads, job.device)
                yield job, result
    finally:
        if started:
            ray.shutdown()


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
    allow_mixed_fingerprints: bool = False,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the suite's unfinished (teacher, seed) pairs and append them to ``out_dir``.

    Every env and teacher is built once first (:meth:`Suite.resolve`), so a bad suite fails before
    any episode runs. A resume onto finished episodes of another fingerprint raises
    :class:`FingerprintMismatchError` unless ``allow_mixed_fingerprints``. An episode that raises is
    recorded as a failed line and the others go on. ``say`` receives progress messages (resume
    notes); default: stderr when ``progress``.

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
    suite.resolve(threads=threads)  # builds every env and teacher once: a bad suite fails here
    all_jobs = suite.jobs()
    writer = ResultsWriter(out_dir)
    finished = [e for e in writer.episodes() if _is_ok(e)]
    done = {(e["teacher"], e["seed"], e["config_hash"]) for e in finished}
    jobs = [j for j in all_jobs if j.key not in done]
    retry = sum(1 for e in writer.episodes() if not _is_ok(e) and (e["teacher"], e["seed"], e["config_hash"])
                in {j.key for j in jobs})
    notes = _check_fingerprints(jobs, finished, threads, allow_mixed_fingerprints, writer.dir)
    for note in notes:
        say(f"pooling (--allow-mixed-fingerprints): {note}")
    total = len(all_jobs)
    if total - len(jobs):
        say(f"resuming {writer.path}: {total - len(jobs)} of {total} episodes already there"
            + (f", {retry} failed one(s) to retry" if retry else ""))
    # One record per suite, so several suites run into one directory (standard, then learned) each keep theirs.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in suite.name)
    record = json.dumps(suite.to_dict(), indent=2)
    (writer.dir / f"suite-{safe}.json").write_text(scrub(record, secret_values(
        *[t.kwargs for t in suite.teachers], suite.env_kwargs, *[t.env_kwargs for t in suite.teachers])))
    logger = _WandbLogger(suite, writer.dir) if wandb else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - len(jobs), desc=f"bench {suite.name}", unit="episode", file=sys.stderr)
    it = _run_local(jobs, workers, threads) if executor == "local" else _run_ray(jobs, workers, threads, ray_address)
    failures: list[dict[str, Any]] = []
    try:
        for job, result in it:
            writer.append(_records(job, result, __version__))
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


def _warn_plain(msg: str) -> None:
    print(f"distillgym: {msg}", file=sys.stderr, flush=True)


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
