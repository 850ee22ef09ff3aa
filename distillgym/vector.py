"""The native vector environment: N teaching environments whose students are one population.

``gymnasium.make_vec("distillgym/ArithMix-v2", num_envs=N, vectorization_mode="vector_entry_point")``
returns a :class:`PopulationVectorEnv`: N sub-environments, each a
:class:`~distillgym.env.TeachingEnv` with the single environment's arguments, whose students are
the N members of one population (:class:`~distillgym.students.population.PopulationStudent`: one
batched model on one device, ``cuda`` when present).

**One vector step, as arrays over N.** No thread per sub-env: the step runs each phase of
:meth:`TeachingEnv.step <distillgym.env.TeachingEnv.step>` once for all sub-envs.

1. *Check and decode*: every sub-env's action is decoded by its action level (and the sub-env
   checked: not ended, not broken) before any sub-env moves; a bad action raises
   :class:`~distillgym.errors.InvalidActionError` naming the sub-env, and nothing has changed.
2. *Data*: one ``engine.generate_many`` call serves every sub-env's plan, each from its own
   random stream (the engine's ``generate`` once per sub-env when it has no ``generate_many``); each
   sub-env's charge is its own ``TeachingEnv._charge``.
3. *Training*: one ``population.train`` call (every member's batches in the same passes).
4. *Evaluation*: the validation sets live on the population's device (drawn at reset, one
   vectorised draw for every sub-env); one batched scoring call gives every sub-env's per-item
   scores, one batched greedy decode the sampled errors' answers, and each sub-env's evaluator
   turns them into its :class:`~distillgym.feedback.SkillReport`. Sub-envs whose episode ends
   draw and score their hidden test sets together.
5. *Commit*: each sub-env's ``TeachingEnv._commit`` (the single env's own code) computes its
   reward and ``info`` and advances its counters; observations and rewards are stacked.

**Reports are built when read.** A sub-env's text report (``info["report"]``, ``render()``) is
rendered only when it is read: ``info["report"]`` is a :class:`LazyTexts` (a sequence of strings,
each built on first access) and ``last_infos[i]`` builds sub-env i's info dict when indexed.
``reports=False`` (what the learned-teacher trainer uses, :mod:`distillgym.train.sb3_vec_env`)
skips the sampled errors and their greedy decode: ``info`` then has no ``"report"`` and
``"errors"`` keys (``render()`` still shows the accuracy table). Everything else the single env
returns is in ``info``. The sampled errors' random draws come from their own stream, so
``reports`` changes no number.

**Equality with the single environment.** Sub-env i with seed s computes what
``gymnasium.make(id)`` with seed s computes, bit for bit on a CPU: the population groups its
members by the row length of each pass, so every member's batches keep the plain student's own
shapes (the population's module docstring, "Equivalence"), and every other phase is the single
env's code. ``tests/test_vector.py`` checks it for every id with a vector entry point, in a
regime where the student learns. On a GPU batched and single kernels may round differently.

**Failures.** A step is atomic where it can be: actions and sub-env states are checked before
anything moves, and a failed data call leaves every sub-env as it was. Once students have
trained, a failure cannot be undone without copying every member: a sub-env whose training
diverged (:class:`~distillgym.errors.TrainingDivergedError`), or every sub-env of a batched call
that raised, is *marked broken with the reason* (its counters and budget not advanced, as the
single env does), the other sub-envs complete the step, and the step raises
:class:`PopulationStepError` (with ``failures``, the reason per sub-env, and ``results``, the
step's return value for the others). A broken sub-env is reset by the next step in ``NEXT_STEP``
mode; in the other modes ``reset(options={"reset_mask": mask})`` resets it.

**Autoreset** (``autoreset_mode``, Gymnasium's three modes; the default is
``AutoresetMode.NEXT_STEP``, as for Gymnasium's own vector envs):

- ``NEXT_STEP``: the step after a sub-env's episode ended resets it (its action is ignored) and
  returns the reset observation with reward 0, ``terminated`` and ``truncated`` False, and the
  reset ``info`` (its starting evaluation is batched with the other sub-envs' step);
- ``SAME_STEP``: a sub-env whose episode ends in a step is reset in that same step; the step
  returns the new episode's first observation, and ``info["final_obs"]`` / ``info["final_info"]``
  hold the last observation and info of the episode that ended (SB3's convention; the SB3
  adapter :mod:`distillgym.train.sb3_vec_env` uses this mode);
- ``DISABLED``: no automatic reset; ``reset(options={"reset_mask": mask})`` resets the masked
  sub-envs only.

**Seeds.** ``reset(seed=s)`` seeds sub-env i with ``s + i``; ``reset(seed=[s0, s1, ...])`` seeds
each sub-env with its own entry (None: unseeded). Later episodes of a sub-env draw their seeds
from that sub-env's own generator, as a single env's do.

**Memory.** Before the population is allocated, :func:`~distillgym.students.population.memory_per_member`
estimates what each sub-env needs on the device; a ``num_envs`` that does not fit the free memory
raises :class:`~distillgym.errors.ConfigError` naming the memory needed and the largest
``num_envs`` that fits, and the members per batched pass (``member_chunk``) are chosen so that a
pass's activations fit (``env.memory`` records the estimate).

``info`` is Gymnasium's vector form (a dict of per-sub-env arrays with ``_key`` masks);
``last_infos`` holds the per-sub-env ``info`` dicts of the last call. A sub-env's
``info["costs"]["seconds"]`` are the wall times of the batched phases it took part in (the
generation share is the engine's); ``last_timing`` splits the last call's wall time into
``device`` (the population's training, scoring and decoding passes, until their results are on
the host) and ``host`` (everything else: Python, data, reports), and its process CPU time the
same way (``cpu``, ``device_cpu``, ``host_cpu``: on a CPU shared with other jobs, what a
dedicated core would have taken).

**Extension points** (what a new id needs for a native vector env):

- the single env's student's ``name`` is in :data:`distillgym.students.POPULATIONS`, whose factory
  ``(student, size, member_chunk)`` returns an object with
  :class:`~distillgym.students.population.PopulationStudent`'s interface (``train``,
  ``score_rows``, ``set_eval_rows``, ``score_eval_set``, ``predict``, ``encode``, ``snapshot``,
  ``restore``, ``reinit``, ``timing``, ``config``, ``size``); ``"plain"`` is;
- the engine may have ``generate_many(requests, split)`` (else ``generate`` runs per sub-env),
  and the suite ``generate_many(requests, split, distinct)`` for the held-out sets (else
  ``TeachingEnv._cells_set`` runs per sub-env);
- anything a new id changes in how a step is charged (``TeachingEnv._charge``), ends
  (``_ends``), is evaluated (:class:`~distillgym.feedback.Evaluator`'s ``pick_errors`` and
  ``report``, e.g. per-cell evaluation weights) or rewarded and reported (``_commit``) is the single
  env's code, so the vector env follows it; the action level decodes each sub-env's action.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from distillgym.env import TeachingEnv
from distillgym.errors import ConfigError, DistillGymError, check_bool, check_int
from distillgym.feedback import Evaluator, SkillReport
from distillgym.runtime import free_memory
from distillgym.seeding import STREAM_EPISODE, STREAM_TEST, STREAM_VAL, rng_for
from distillgym.tasks.arrays import ExampleArrays

__all__ = ["PopulationVectorEnv", "MemberStudent", "PopulationStepError", "LazyTexts"]

MEMORY_SHARE = 0.85
"""Share of the device's free memory a population may plan to use."""


# ============================================================================ deferred texts
class _Deferred:
    """A value computed on first use (a sub-env's text report)."""

    __slots__ = ("_fn", "_value")

    def __init__(self, fn: Any) -> None:
        self._fn, self._value = fn, None

    def get(self) -> Any:
        if self._fn is not None:
            self._value, self._fn = self._fn(), None
        return self._value


def _materialize(value: Any) -> Any:
    if isinstance(value, _Deferred):
        return value.get()
    if isinstance(value, dict):
        return {k: _materialize(v) for k, v in value.items()}
    return value


class LazyTexts(Sequence[Any]):
    """The vector form of a per-sub-env text (``info["report"]``): item i is sub-env i's text,
    built when first read (None for a sub-env without one; the ``_report`` mask says which)."""

    def __init__(self, n: int) -> None:
        self._items: list[Any] = [None] * n

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [_materialize(v) for v in self._items[i]]
        if isinstance(i, (int, np.integer)):
            return _materialize(self._items[int(i)])
        return [_materialize(self._items[int(j)]) for j in np.arange(len(self))[i]]

    def __iter__(self) -> Iterator[Any]:
        return (_materialize(v) for v in self._items)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(len(self), dtype=object)
        out[:] = list(self)
        return out

    def __repr__(self) -> str:
        built = sum(v is not None and (not isinstance(v, _Deferred) or v._fn is None) for v in self._items)
        return f"LazyTexts(n={len(self)}, built={built})"


class _InfoList(Sequence[dict]):
    """``last_infos``: sub-env i's ``info`` dict, its deferred texts built when indexed."""

    def __init__(self, n: int) -> None:
        self._raw: list[dict[str, Any]] = [{} for _ in range(n)]
        self._built: list[dict[str, Any] | None] = [None] * n

    def set(self, i: int, info: dict[str, Any]) -> None:
        self._raw[i], self._built[i] = info, None

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if self._built[i] is None:
            self._built[i] = _materialize(self._raw[i])
        return self._built[i]

    def __iter__(self) -> Iterator[dict]:
        return (self[i] for i in range(len(self)))


def _vector_info(items: list[tuple[int, dict[str, Any]]], n: int) -> dict[str, Any]:
    """Gymnasium's vector ``info`` (what ``VectorEnv._add_info`` builds sub-env by sub-env), built
    key by key: numbers as arrays of the first value's type, arrays stacked, dicts recursively,
    ``final_obs`` and everything else as object arrays, deferred texts as :class:`LazyTexts`; a
    ``_key`` mask per key."""
    groups: dict[str, list[tuple[int, Any]]] = {}
    for i, info in items:
        for key, value in info.items():
            groups.setdefault(key, []).append((i, value))
    out: dict[str, Any] = {}
    for key, pairs in groups.items():
        idx = np.array([i for i, _ in pairs], dtype=np.int64)
        values = [v for _, v in pairs]
        first = values[0]
        array: Any
        if key != "final_obs" and isinstance(first, dict):
            array = _vector_info([(i, v) for i, v in pairs if isinstance(v, dict)], n)
        elif isinstance(first, _Deferred):
            array = LazyTexts(n)
            for i, v in pairs:
                array._items[i] = v
        elif (key != "final_obs" and (type(first) in (int, float, bool) or isinstance(first, np.number))
              and all(type(v) is type(first) for v in values)):
            array = np.zeros(n, dtype=type(first))
            array[idx] = values
        elif key != "final_obs" and isinstance(first, np.ndarray) and all(
                isinstance(v, np.ndarray) and v.shape == first.shape for v in values):
            array = np.zeros((n, *first.shape), dtype=first.dtype)
            array[idx] = np.stack(values)
        else:
            array = np.full(n, None, dtype=object)
            for i, v in pairs:
                array[i] = v
        mask = np.zeros(n, dtype=np.bool_)
        mask[idx] = True
        out[key], out[f"_{key}"] = array, mask
    return out


# ============================================================================ errors
class PopulationStepError(DistillGymError, RuntimeError):
    """Some sub-envs failed in a vector step after students had trained (see the module
    docstring, "Failures"). ``failures`` maps a sub-env index to the reason it is now broken;
    ``results`` is the step's return value ``(obs, rewards, terminated, truncated, info)`` for the
    sub-envs that completed it (a broken sub-env keeps its previous observation, reward 0)."""

    def __init__(self, failures: dict[int, str], results: tuple | None) -> None:
        detail = "; ".join(f"sub-env {i}: {why}" for i, why in sorted(failures.items()))
        super().__init__(
            f"{len(failures)} sub-env(s) failed and are marked broken (reset them: the next step does in "
            f"NextStep autoreset mode, else reset(options={{'reset_mask': mask}})); the other sub-envs completed "
            f"the step (their results are this error's .results and the env's last_infos): {detail}"
        )
        self.failures = dict(failures)
        self.results = results


def _in_sub_env(err: BaseException, i: int, note: str) -> BaseException:
    """``err`` with the sub-env index and ``note`` in its message (same class where it can be)."""
    msg = f"sub-env {i}: {err} ({note})"
    if isinstance(err, DistillGymError):
        try:
            return type(err)(msg)
        except TypeError:
            pass
    if hasattr(err, "add_note"):
        err.add_note(msg)
    return err


# ============================================================================ a member as a student
class MemberStudent:
    """Sub-env i's student: member i of the population, with the plain student's contract (the
    vector env calls the population directly; these are for code that uses one sub-env alone,
    e.g. ``venv.envs[i].step(action)``, ``venv.call("snapshot")``)."""

    teacher_forced_exact = True

    def __init__(self, population: Any, index: int) -> None:
        self.population, self.index = population, int(index)
        self.config = population.config
        self.name = getattr(population, "member_name", "plain")

    def _one(self, value: Any) -> list[Any]:
        out: list[Any] = [None] * self.population.size
        out[self.index] = value
        return out

    def train(self, examples: Any, rng: np.random.Generator | None = None, track_cells: bool = True) -> Any:
        from distillgym.students.population import PopulationDivergedError

        if rng is None:
            rng = np.random.default_rng(int(self.population.step[self.index]))
        try:
            return self.population.train(self._one(examples), self._one(rng), track_cells=track_cells)[self.index]
        except PopulationDivergedError as err:
            raise err.errors[self.index] from None

    def score_and_loss(self, examples: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.population.score_and_loss(self._one(examples))[self.index]

    def score(self, examples: Any) -> np.ndarray:
        return self.score_and_loss(examples)[0]

    def answer_loss(self, examples: Any) -> np.ndarray:
        return self.score_and_loss(examples)[1]

    def predict(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        return self.population.predict(self._one(list(prompts)), int(max_new_tokens))[self.index]

    def snapshot(self) -> dict[str, Any]:
        return self.population.snapshot(self.index)

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.population.restore(self.index, snapshot)

    def reinit(self, seed: int) -> None:
        self.population.reinit(self.index, seed)

    def load_state(self, state: dict[str, Any]) -> None:
        """Member weights (e.g. a warm start); a fresh optimiser, warm-up and replay buffer."""
        self.population.load_state(self.index, state)

    def costs(self) -> dict[str, Any]:
        c = dict(self.population.costs())
        c.pop("population_size", None)
        return c


# ============================================================================ the vector env
def _autoreset_mode(mode: Any) -> AutoresetMode:
    try:
        return mode if isinstance(mode, AutoresetMode) else AutoresetMode(mode)
    except ValueError:
        raise ConfigError(
            f"autoreset_mode must be one of {[m.value for m in AutoresetMode]} (or an AutoresetMode), got {mode!r}"
        ) from None


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


class PopulationVectorEnv(gym.vector.VectorEnv):
    """N :class:`~distillgym.env.TeachingEnv` sub-environments over one population of students
    (see the module docstring).

    Arguments: ``num_envs``; ``autoreset_mode`` (``"NextStep"``, ``"SameStep"``, ``"Disabled"``
    or an ``AutoresetMode``); ``reports`` (default True: sampled errors and text reports; False
    skips them); ``member_chunk`` (most members in one batched pass; default: as many as the
    device's free memory allows, which changes no number); every other keyword is a
    ``TeachingEnv`` argument, as for the single env (its student must have a population, e.g.
    ``"plain"``; ``device`` places the population)."""

    def __init__(self, num_envs: int = 1, autoreset_mode: Any = AutoresetMode.NEXT_STEP, reports: bool = True,
                 member_chunk: int | None = None, **env_kwargs: Any) -> None:
        check_int("PopulationVectorEnv", "num_envs", num_envs, 1)
        if member_chunk is not None:
            check_int("PopulationVectorEnv", "member_chunk", member_chunk, 1)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.reports = check_bool("PopulationVectorEnv", "reports", reports)
        env_kwargs.pop("max_episode_steps", None)  # gymnasium's; the env truncates by itself (max_steps)
        # The single env these sub-envs are: it validates every argument and names the config.
        reference = TeachingEnv(**env_kwargs)
        from distillgym.students import POPULATIONS, make_population

        if getattr(reference.student, "name", None) not in POPULATIONS:
            raise ConfigError(
                f"the native vector env trains a population of students, so it needs a student that has one "
                f"({' or '.join(repr(n) for n in sorted(POPULATIONS))}: student='plain'), got "
                f"{env_kwargs.get('student', 'tiny')!r} ({type(reference.student).__name__}); for other students use "
                "gymnasium.make_vec(..., vectorization_mode='async')"
            )
        self.num_envs = int(num_envs)
        self.suite, self.engine = reference.suite, reference.engine
        self.memory = self._plan_memory(reference, self.num_envs, member_chunk)
        self.population = make_population(reference.student, self.num_envs, member_chunk=self.memory["member_chunk"])
        if hasattr(self.population, "replay_hint"):  # an episode adds at most its budget of rows: rings sized once
            self.population.replay_hint = int(reference.budget)
        self.single_config = reference.config
        sub_kwargs = {k: v for k, v in env_kwargs.items()
                      if k not in ("suite", "suite_kwargs", "student", "student_kwargs", "engine", "engine_kwargs",
                                   "device")}
        self.envs: list[TeachingEnv] = []
        for i in range(self.num_envs):
            env = TeachingEnv(**sub_kwargs, suite=reference.suite, student=MemberStudent(self.population, i),
                              engine=reference.engine)
            env._config = dict(reference._config)  # the single env's config: the dynamics it rebuilds
            env._initial = reference._initial  # a fixed start (student_init="fixed") is the single env's
            self.envs.append(env)
        del reference
        first = self.envs[0]
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = first.render_mode
        self.metadata = {"autoreset_mode": self.autoreset_mode, "render_modes": list(first.metadata["render_modes"])}
        self._obs: list[Any] = [None] * self.num_envs
        self.last_infos = _InfoList(self.num_envs)
        self.last_timing: dict[str, float] = {}

    # ---------------------------------------------------------------- memory
    def _plan_memory(self, reference: TeachingEnv, n: int, member_chunk: int | None) -> dict[str, Any]:
        """The memory estimate, checked against the device's free memory before allocating."""
        from distillgym.students.population import memory_per_member

        student = reference.student
        out: dict[str, Any] = {"device": str(getattr(student, "device", "?")), "member_chunk": member_chunk}
        if not hasattr(student, "tokenizer") or type(student.config).__name__ != "StudentConfig":
            return out  # a population of another kind: no estimate
        cells = len(self.suite.skills) * self.suite.n_difficulties
        per = memory_per_member(student.config, student.tokenizer.vocab_size, replay_rows=reference.budget,
                                step_rows=reference.examples_per_step,
                                eval_rows=cells * max(reference.n_val_per_cell, reference.n_test_per_cell))
        device = student.device
        free = free_memory(device)
        out.update(persistent_per_env=per["persistent"], pass_per_env=per["pass"], free=free)
        if free is None:
            return out
        budget = int(MEMORY_SHARE * free)
        chunk = member_chunk or max(1, min(n, (budget - per["persistent"] * n) // max(per["pass"], 1)))
        need = per["persistent"] * n + per["pass"] * min(chunk, n)
        if need > budget:
            largest = max(0, (budget - per["pass"]) // per["persistent"])
            raise ConfigError(
                f"num_envs={n} needs about {_gib(need)} on {device} ({_gib(per['persistent'])} per sub-env for its "
                f"student, optimiser state, replay and evaluation rows, plus {_gib(per['pass'])} of activations per "
                f"sub-env in a batched pass, {min(chunk, n)} at a time), but {_gib(free)} is free "
                f"({MEMORY_SHARE:.0%} of it may be planned); the largest num_envs that fits is {largest}"
                + ("" if member_chunk is None else " with member_chunk=1")
                + "; lower num_envs (or the budget, replay_capacity or evaluation sizes)"
            )
        out.update(member_chunk=int(min(chunk, n)), planned=int(need))
        return out

    # ---------------------------------------------------------------- helpers
    def _batched_obs(self) -> Any:
        out = create_empty_array(self.single_observation_space, self.num_envs)
        return concatenate(self.single_observation_space, self._obs, out)

    def _seeds(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ConfigError(f"reset got {len(seeds)} seeds for {self.num_envs} sub-environments")
        return [None if s is None else int(s) for s in seeds]

    def _needs_reset(self, i: int) -> bool:
        """Whether sub-env i's episode has ended or it is broken (``NEXT_STEP`` resets it)."""
        env = self.envs[i]
        return env._report is not None and (env._done or env._broken is not None)

    def _held_out(self, idx: Sequence[int], stream: int, n: int, split: str | None,
                  only_weighted: bool = False) -> dict[int, Any]:
        """Each listed sub-env's held-out set of ``stream`` (its ``TeachingEnv._cells_set``; the target
        cells only with ``only_weighted``), drawn in one vectorised call when the suite has ``generate_many``."""
        if split is None or not callable(getattr(self.suite, "generate_many", None)):
            return {i: self.envs[i]._cells_set(stream, n, split, only_weighted) for i in idx}
        requests, owners = [], []
        for i in idx:
            mine = self.envs[i]._held_out_requests(stream, n, only_weighted)
            requests.extend(mine)
            owners.append(len(mine))
        parts = self.suite.generate_many(requests, split=split, distinct=True)
        out, start = {}, 0
        for i, k in zip(idx, owners, strict=True):
            out[i] = ExampleArrays.concat(parts[start : start + k], self.suite.skills)
            start += k
        return out

    def _start_episodes(self, idx: Sequence[int], seeds: dict[int, int | None]) -> None:
        """The first half of each listed sub-env's reset: seeding, its member's initial weights,
        its validation set (drawn together, kept on the population's device)."""
        for i in idx:
            self.envs[i]._begin_reset(seeds.get(i))
        env0 = self.envs[idx[0]]
        vals = self._held_out(idx, STREAM_VAL, env0.n_val_per_cell, "val" if env0.split else None,
                              env0._val_only_weighted)
        for i in idx:
            env = self.envs[i]
            env._val = env._val_evaluator(vals[i])
            self.population.set_eval_rows("val", i, self.population.encode(env._val.examples))

    def _evaluate(self, jobs: dict[int, tuple[Evaluator, np.random.Generator | None]], resident: bool
                  ) -> dict[int, SkillReport]:
        """Each listed member's :class:`SkillReport` on its evaluator's items, from batched calls:
        the validation sets kept on the device (``resident``) or the evaluators' own items."""
        t0 = time.perf_counter()
        pop, N = self.population, self.num_envs
        if not jobs:
            return {}
        ev0 = next(iter(jobs.values()))[0]
        scored: dict[int, tuple[np.ndarray, np.ndarray | None, list[str] | None]] = {}
        if ev0.fast(pop):
            if resident:
                got = pop.score_eval_set("val", list(jobs))
            else:
                rows = [pop.encode(jobs[i][0].examples) if i in jobs else None for i in range(N)]
                got = dict(enumerate(pop.score_rows(rows)))
            for i, (ev, _) in jobs.items():
                correct, loss = got[i]
                scored[i] = (np.asarray(correct, dtype=float), np.asarray(loss, dtype=float) if ev.want_loss else None,
                             None)
        else:  # scored by generation: every item's greedy answer, batched across members
            answers = pop.predict([jobs[i][0].prompts() if i in jobs else None for i in range(N)], ev0.max_new_tokens)
            losses: dict[int, Any] = {}
            if any(ev.want_loss for ev, _ in jobs.values()):
                rows = [pop.encode(jobs[i][0].examples) if i in jobs else None for i in range(N)]
                losses = {i: v for i, (_, v) in enumerate(pop.score_rows(rows))}
            for i, (ev, _) in jobs.items():
                scored[i] = (ev.score_answers(answers[i]), np.asarray(losses[i], dtype=float) if ev.want_loss else None,
                             answers[i])
        picks = {i: ev.pick_errors(scored[i][0], rng) if self.reports else np.zeros(0, np.int64)
                 for i, (ev, rng) in jobs.items()}
        need = {i: p for i, p in picks.items() if len(p) and scored[i][2] is None}
        decoded: list[list[str]] = [[] for _ in range(N)]
        if need:
            decoded = pop.predict([jobs[i][0].prompts(need[i]) if i in need else None for i in range(N)],
                                  ev0.max_new_tokens)
        seconds = time.perf_counter() - t0
        out = {}
        for i, (ev, _) in jobs.items():
            scores, loss, answers = scored[i]
            pick = picks[i]
            got = (decoded[i] if i in need else [answers[int(j)] for j in pick]) if len(pick) else None  # type: ignore[index]
            out[i] = ev.report(scores, loss, pick, got, seconds)
        return out

    def _final_tests(self, idx: Sequence[int]) -> dict[int, SkillReport]:
        """The hidden test sets of the listed sub-envs (whose episodes end now), drawn and scored together."""
        if not idx:
            return {}
        t0 = time.perf_counter()
        env0 = self.envs[idx[0]]
        tests = self._held_out(idx, STREAM_TEST, env0.n_test_per_cell, "test" if env0.split else None)
        for i in idx:
            env = self.envs[i]
            env._test_evaluator = env._evaluator(tests[i], 0)
        out = self._evaluate({i: (self.envs[i]._test, None) for i in idx}, resident=False)
        seconds = time.perf_counter() - t0
        for report in out.values():
            report.seconds = seconds
        return out

    def _with_report(self, info: dict[str, Any], report: SkillReport) -> dict[str, Any]:
        """The sub-env's info with its deferred text report (or, with ``reports=False``, without
        report and errors)."""
        if self.reports:
            info["report"] = _Deferred(functools.partial(report.render, info["budget_left"]))
        else:
            info.pop("errors", None)
        return info

    def _reset_envs(self, idx: list[int], seeds: dict[int, int | None]) -> dict[int, tuple[Any, dict]]:
        """Reset the listed sub-envs together; ``{i: (obs, info)}``."""
        if not idx:
            return {}
        self._start_episodes(idx, seeds)
        reports = self._evaluate(
            {i: (self.envs[i]._val, rng_for(self.envs[i]._episode_seed, STREAM_EPISODE, 0)) for i in idx}, resident=True)
        out = {}
        for i in idx:
            obs, info = self.envs[i]._finish_reset(reports[i], render=False)
            out[i] = (obs, self._with_report(info, reports[i]))
        return out

    def _timed(self, t0: tuple[float, float]) -> None:
        """``last_timing``: the call's wall and process-CPU seconds, split into device and host."""
        timing = self.population.timing
        wall, cpu = time.perf_counter() - t0[0], time.process_time() - t0[1]
        device = sum(timing.get(k, 0.0) for k in ("train_device", "eval_device", "decode"))
        device_cpu = sum(timing.get(k + "_cpu", 0.0) for k in ("train_device", "eval_device", "decode"))
        self.last_timing = {"wall": wall, "device": device, "host": wall - device, "cpu": cpu,
                            "device_cpu": device_cpu, "host_cpu": cpu - device_cpu,
                            **{k: float(v) for k, v in timing.items()}}
        timing.clear()

    @staticmethod
    def _clock() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    # ---------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every sub-env (or those in ``options["reset_mask"]``); see the module docstring
        for the seeds. Other options are ignored, as the single env ignores them."""
        t0 = self._clock()
        self.population.timing.clear()
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        mask = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != (self.num_envs,):
            raise ConfigError(f"reset_mask must be {self.num_envs} booleans, got shape {mask.shape}")
        seeds = self._seeds(seed)
        idx = [int(i) for i in np.flatnonzero(mask)]
        results = self._reset_envs(idx, {i: seeds[i] for i in idx})
        items = []
        for i in idx:
            self._obs[i], info = results[i]
            self.last_infos.set(i, info)
            items.append((i, info))
        self._timed(t0)
        return self._batched_obs(), _vector_info(items, self.num_envs)

    def step(self, actions: Any):
        clock = self._clock()
        t_start = clock[0]
        self.population.timing.clear()
        actions = list(iterate(self.action_space, actions))
        N, mode = self.num_envs, self.autoreset_mode
        if len(actions) != N:
            raise ConfigError(f"step got {len(actions)} actions for {N} sub-environments")
        resetting = [i for i in range(N) if mode == AutoresetMode.NEXT_STEP and self._needs_reset(i)]
        stepping = [i for i in range(N) if i not in set(resetting)]
        envs = self.envs

        # 1. every sub-env and every action is checked before any sub-env moves
        plans: dict[int, Any] = {}
        for i in stepping:
            try:
                envs[i]._check_can_step()
                plans[i] = envs[i]._decode(actions[i])
            except DistillGymError as err:
                raise _in_sub_env(err, i, "no sub-env was stepped") from err
        ts = {i: envs[i]._t + 1 for i in stepping}
        rngs = {i: envs[i]._train_rng(ts[i]) for i in stepping}

        # 2. data: nothing has moved yet, so a failure leaves every sub-env as it was
        try:
            made = self._make_examples(plans, rngs)
        except Exception as err:
            if hasattr(err, "add_note"):
                err.add_note("[vector env: generating the step's data failed; no sub-env was stepped]")
            raise

        # 3. training: one population call
        from distillgym.students.population import PopulationDivergedError

        failures: dict[int, str] = {}
        P = self.population.size
        track = envs[0].report_loss
        try:
            stats = self.population.train([made[i][0] if i in made else None for i in range(P)],
                                          [rngs.get(i) for i in range(P)], track_cells=track)
            diverged: dict[int, Any] = {}
        except PopulationDivergedError as err:
            stats, diverged = err.stats, err.errors
        except Exception as err:
            for i in stepping:
                envs[i]._train_failed(err, ts[i], len(made[i][0]))
            if hasattr(err, "add_note"):
                err.add_note(f"[vector env: the batched training call failed; sub-envs {stepping} are marked broken "
                             "(their students may have changed, their counters have not); reset them]")
            raise
        for i, err in diverged.items():
            failures[i] = str(envs[i]._train_failed(err, ts[i], len(made[i][0])))
        stepping = [i for i in stepping if i not in diverged]

        # 4. the episodes that start now, then one evaluation of every member that moved
        what = "evaluating"
        try:
            if resetting:
                self._start_episodes(resetting, {})
            # the report's generator only picks sampled errors, which a vector env without reports skips
            jobs = {i: (envs[i]._val, envs[i]._report_rng(ts[i]) if self.reports else None) for i in stepping}
            jobs.update({i: (envs[i]._val, rng_for(envs[i]._episode_seed, STREAM_EPISODE, 0) if self.reports else None)
                         for i in resetting})
            reports = self._evaluate(jobs, resident=True)
            what = "scoring the test set of"
            tests = self._final_tests([i for i in stepping if envs[i]._ends(made[i][2], ts[i])])
        except Exception as err:
            for i in stepping:
                envs[i]._after_training_failed(err, ts[i], what)
            for i in resetting:
                envs[i]._broken = f"{type(err).__name__} while resetting"
            if hasattr(err, "add_note"):
                err.add_note(f"[vector env: the batched evaluation failed; sub-envs {sorted(stepping + resetting)} are "
                             "marked broken (their students changed, their counters did not); reset them]")
            raise

        # 5. each sub-env's own commit: reward, info, counters
        results: dict[int, tuple] = {}
        for i in stepping:
            examples, cost, charged, extra = made[i]
            try:
                obs, reward, term, trunc, info = envs[i]._commit(ts[i], plans[i], extra, cost, charged, stats[i],
                                                                  reports[i], tests.get(i), t_start, render=False)
            except Exception as err:
                failures[i] = str(envs[i]._after_training_failed(err, ts[i], "finishing"))
                continue
            results[i] = (obs, reward, term, trunc, self._with_report(info, reports[i]), None)
        for i in resetting:
            obs, info = envs[i]._finish_reset(reports[i], render=False)
            results[i] = (obs, 0.0, False, False, self._with_report(info, reports[i]), None)
        if mode == AutoresetMode.SAME_STEP:
            ended = [i for i in stepping if i in results and (results[i][2] or results[i][3])]
            try:
                fresh = self._reset_envs(ended, {})
            except Exception as err:
                for i in ended:
                    envs[i]._broken = f"{type(err).__name__} while resetting"
                    failures[i] = f"the reset after its episode ended failed: {err}"
                fresh = {}
            for i, (obs, info) in fresh.items():
                o, r, term, trunc, last, _ = results[i]
                results[i] = (obs, r, term, trunc, info, {"final_obs": o, "final_info": last})

        # 6. the batched result
        rewards = np.zeros(N, dtype=np.float64)
        terminated = np.zeros(N, dtype=bool)
        truncated = np.zeros(N, dtype=bool)
        items = []
        for i in range(N):
            if i not in results:
                continue
            obs, rewards[i], terminated[i], truncated[i], info, final = results[i]
            self._obs[i] = obs
            if final is not None:
                items.append((i, final))
                info = {**info, **final}
            self.last_infos.set(i, info)
            items.append((i, {k: v for k, v in info.items() if k not in ("final_obs", "final_info")}))
        out = self._batched_obs(), rewards, terminated, truncated, _vector_info(items, N)
        self._timed(clock)
        if failures:
            raise PopulationStepError(failures, out)
        return out

    def _make_examples(self, plans: dict[int, Any], rngs: dict[int, np.random.Generator]) -> dict[int, tuple]:
        """Each sub-env's ``(examples, cost, charged, action info)``: one engine call for every plan
        of items, the open level's written lines checked per sub-env."""
        out: dict[int, tuple] = {}
        items = sorted(i for i, p in plans.items() if p.lines is None)
        if items:
            split = self.envs[items[0]]._train_split
            many = getattr(self.engine, "generate_many", None)
            if callable(many):
                made = many([(plans[i].items, rngs[i]) for i in items], split=split)
            else:
                made = [self.engine.generate(plans[i].items, rngs[i], split=split) for i in items]
            for i, (examples, cost) in zip(items, made, strict=True):
                out[i] = self.envs[i]._charge(plans[i], examples, cost)
        for i, plan in plans.items():
            if plan.lines is not None:
                out[i] = self.envs[i]._make_examples(plan, rngs[i])
        return out

    def render(self) -> tuple[Any, ...] | None:
        if self.render_mode is None:
            return None
        return tuple(env.render() for env in self.envs)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """``getattr`` of every sub-env."""
        return tuple(getattr(env, name) for env in self.envs)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call a method (or read an attribute) of every sub-env, in turn."""
        out = []
        for env in self.envs:
            f = getattr(env, name)
            out.append(f(*args, **kwargs) if callable(f) else f)
        return tuple(out)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()
