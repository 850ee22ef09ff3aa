"""Benchmarks: TOML files of envs x teachers x seeds, and their resolution into jobs.

A benchmark is a TOML file; the shipped ones are in ``distillgym/harness/benchmarks/`` (package data,
so a wheel install finds them by name) and a user's own are found by path or in
``./benchmarks/suites/``::

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
    env = "distillgym/ArithSkills-v1"        # optional: this entry's env (default: the file's)
    env_kwargs = { student_init = "fixed" }  # optional: merged over the file's [env_kwargs]

Labels must be unique within an env (the same label in two envs is one teacher compared per env).
(The results format calls a benchmark a "suite": the ``suite`` field of each line and
``suite-NAME.json``; a *task* suite is something else, :mod:`distillgym.tasks`.)

**Before any episode runs**, :meth:`Benchmark.resolve` builds every env of the benchmark once (and
resets it) and every teacher once (and resets it on its env), in this process: a misspelt teacher,
an unknown argument or a teacher that cannot play the env fails at once with its usual error, not
inside a worker. The same pass resolves what the config hash covers
(:mod:`distillgym.harness.fingerprint`): the env's full configuration with every default filled in,
the teacher's constructor arguments with defaults filled in, and the content of what the teacher
loads (a ``ppo:PATH`` file, a user class's module source).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillgym.envs import DEFAULT_ENV
from distillgym.errors import ConfigError, DistillGymError, UnknownNameError, did_you_mean
from distillgym.harness.fingerprint import HASH_VERSION, config_hash, redact, teacher_identity
from distillgym.seeding import REFERENCE_SEEDS, TEACHER_TRAINING_SEEDS

__all__ = [
    "Benchmark",
    "TeacherEntry",
    "Job",
    "ResolvedEntry",
    "find_benchmark",
    "load_benchmark",
    "list_benchmarks",
    "SHIPPED",
]


@dataclass
class TeacherEntry:
    """One ``[[teachers]]`` entry: a teacher name, its arguments, its label, and optionally its own
    env id and env arguments (merged over the benchmark's)."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    env: str = ""
    """This entry's env id; empty: the benchmark's."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env arguments of this entry only, merged over the benchmark's ``env_kwargs``."""

    def __post_init__(self) -> None:
        self.label = self.label or self.name


@dataclass
class ResolvedEntry:
    """What :meth:`Benchmark.resolve` found for one entry: the env's configuration with every default
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
    """The benchmark's name (the results lines' ``suite`` field)."""
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
class Benchmark:
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
        reserved = [s for s in self.seeds if s in REFERENCE_SEEDS]
        if reserved:
            raise ConfigError(
                f"suite {self.name!r}: seeds {reserved[:5]} lie in {REFERENCE_SEEDS.start}..{REFERENCE_SEEDS.stop - 1}, "
                "the range reserved for teachers' reference runs (distillgym.seeding.REFERENCE_SEEDS: DoReMi's "
                "reference student); choose other seeds"
            )
        training = [s for s in self.seeds if s in TEACHER_TRAINING_SEEDS]
        if training:
            raise ConfigError(
                f"suite {self.name!r}: seeds {training[:5]} lie in {TEACHER_TRAINING_SEEDS.start}.."
                f"{TEACHER_TRAINING_SEEDS.stop - 1}, the range reserved for training learned teachers "
                "(distillgym.seeding.TEACHER_TRAINING_SEEDS): a learned teacher may have trained on them; choose other seeds"
            )
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
        """Build every env of the benchmark once and every teacher once (each reset on its env with the
        first seed), in this process, and return ``{label-key: ResolvedEntry}``; cached until the
        benchmark changes. Raises the usual error of whatever cannot be built, with the benchmark and the
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
        :func:`distillgym.harness.fingerprint.config_hash`); resolves the benchmark first."""
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
        """The benchmark as written to ``suite-NAME.json`` (credentials redacted), with each entry's
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


SHIPPED = Path(__file__).resolve().parent / "benchmarks"
"""The benchmarks shipped with the package (package data: a wheel install has them too)."""


def _benchmark_dirs() -> list[Path]:
    """Where benchmark names are looked up: ``./benchmarks/suites/`` (a user's own files, first) and
    :data:`SHIPPED`."""
    out: list[Path] = []
    for d in (Path.cwd() / "benchmarks" / "suites", SHIPPED):
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def list_benchmarks() -> dict[str, Path]:
    """``{name: file}`` of every benchmark found by name (a user's own file wins over a shipped one)."""
    found: dict[str, Path] = {}
    for d in _benchmark_dirs():
        for p in sorted(d.glob("*.toml")):
            found.setdefault(p.stem, p)
    return found


def find_benchmark(name_or_path: str) -> Path:
    """The file of a benchmark name or path. ``benchmarks/suites/NAME.toml``, where the shipped files
    were kept before they moved into the package, still finds the shipped ``NAME`` when no such file
    exists."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if p.is_file():
            return p
        if p.parent.as_posix().endswith("benchmarks/suites") and (SHIPPED / p.name).is_file():
            return SHIPPED / p.name
        raise ConfigError(f"benchmark file {str(p)!r} does not exist")
    found = list_benchmarks()
    if name_or_path not in found:
        raise UnknownNameError(
            f"unknown benchmark {name_or_path!r}: {did_you_mean(name_or_path, sorted(found))} "
            "(a benchmark is a name in distillgym/harness/benchmarks/ or ./benchmarks/suites/, or a path to a .toml file)"
        )
    return found[name_or_path]


def load_benchmark(name_or_path: str) -> Benchmark:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = find_benchmark(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"benchmark file {str(path)!r} is not valid TOML: {err}") from None
    known = {"name", "description", "env", "env_kwargs", "seeds", "teachers"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"benchmark file {str(path)!r} has unknown keys {unknown}; valid keys are {sorted(known)}")
    seeds = data.get("seeds", 5)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"benchmark file {str(path)!r}: seeds must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    teachers = []
    raw_teachers = data.get("teachers", [])
    if not isinstance(raw_teachers, list):
        raise ConfigError(
            f"benchmark file {str(path)!r}: 'teachers' must be a list of names (teachers = [\"uniform\", \"ioa\"]) "
            f"or [[teachers]] tables, got {raw_teachers!r}"
        )
    for t in raw_teachers:
        if isinstance(t, str):  # teachers = ["uniform", "ioa"]
            teachers.append(TeacherEntry(t))
            continue
        if not isinstance(t, dict) or "name" not in t or set(t) - {"name", "kwargs", "label", "env", "env_kwargs"}:
            raise ConfigError(
                f"benchmark file {str(path)!r}: each teacher is a name or a [[teachers]] table with 'name' and optional "
                f"'kwargs', 'label', 'env' and 'env_kwargs', got {t!r}"
            )
        teachers.append(TeacherEntry(t["name"], t.get("kwargs", {}), t.get("label", ""), t.get("env", ""),
                                     t.get("env_kwargs", {})))
    benchmark = Benchmark(
        name=data.get("name", path.stem),
        env=data.get("env", DEFAULT_ENV),
        seeds=list(seeds),
        teachers=teachers,
        env_kwargs=dict(data.get("env_kwargs", {})),
        description=data.get("description", ""),
        path=str(path),
    )
    benchmark.validate()
    return benchmark
