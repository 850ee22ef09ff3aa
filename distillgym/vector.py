"""The native vector environment: N teaching environments whose students are one population.

``gymnasium.make_vec("distillgym/ArithSkills-v2", num_envs=N, vectorization_mode="vector_entry_point")``
returns a :class:`PopulationVectorEnv`: N sub-environments, each a
:class:`~distillgym.env.TeachingEnv` with the single environment's arguments, whose students are
the N members of one :class:`~distillgym.students.population.PopulationStudent` on one device
(``cuda`` when present), and whose data engine requests are served together (the
``vectorized`` engine's ``generate_many``). Each sub-env runs the single environment's own
``reset`` and ``step`` code, so its observation, action, reward, termination and ``info`` mean
exactly what they mean for ``gymnasium.make(id)``; only the student's heavy calls (``train``,
``score_and_loss``, ``predict``) and the engine's ``generate`` are batched across sub-envs.

**How the batching works.** A vector ``reset`` or ``step`` runs each sub-env's ``reset`` or
``step`` in its own thread. When a sub-env calls its student or engine, the call is queued
and the thread waits; once every running sub-env is waiting (or done), the main thread
executes the queued calls together (one population pass for all ``train`` calls, one for all
``score_and_loss`` calls, ...) and wakes the threads with their own results. The grouping
depends only on each sub-env's own sequence of calls, never on timing, so runs are
reproducible. Cheap per-member calls (``reinit``, ``snapshot``, ``restore``) run at once.

**Equality with the single environment.** Sub-env i with seed s computes what
``gymnasium.make(id)`` with seed s computes. The numbers are the single env's bit for bit where
the population's batches have the plain student's shapes (N = 1, tested); otherwise a
member's batch is padded to the other members' longest row and the float32 results differ in
rounding, which can flip an exact-match item now and then (tests/test_vector.py measures it).

**Autoreset** (``autoreset_mode``, Gymnasium's three modes; the default is
``AutoresetMode.NEXT_STEP``, as for Gymnasium's own vector envs):

- ``NEXT_STEP``: the step after a sub-env's episode ended resets it (its action is ignored) and
  returns the reset observation with reward 0, ``terminated`` and ``truncated`` False, and the
  reset ``info``;
- ``SAME_STEP``: a sub-env whose episode ends in a step is reset in that same step; the step
  returns the new episode's first observation, and ``info["final_obs"]`` / ``info["final_info"]``
  hold the last observation and info of the episode that ended (SB3's convention; the SB3
  adapter :mod:`distillgym.train.sb3_vec_env` uses this mode);
- ``DISABLED``: no automatic reset; ``reset(options={"reset_mask": mask})`` resets the masked
  sub-envs only.

**Seeds.** ``reset(seed=s)`` seeds sub-env i with ``s + i``; ``reset(seed=[s0, s1, ...])`` seeds
each sub-env with its own entry (None: unseeded). Later episodes of a sub-env draw their seeds
from that sub-env's own generator, as a single env's do.

``info`` is Gymnasium's vector form (a dict of per-sub-env arrays with ``_key`` masks);
``last_infos`` keeps the list of per-sub-env ``info`` dicts of the last call. A sub-env's
``info["costs"]["seconds"]`` are the wall times of its phases as it saw them: a batched call
counts whole (it waited for the work of every sub-env), so summing phase seconds over
sub-envs counts shared time N times; the cost of a vector step for all N is its wall time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from distillgym.env import TeachingEnv
from distillgym.errors import ConfigError, TrainingDivergedError, check_int

__all__ = ["PopulationVectorEnv", "MemberStudent", "MemberEngine"]


# ============================================================================ batching of member calls
class _Request:
    __slots__ = ("op", "args", "result", "error", "done")

    def __init__(self, op: str, args: tuple) -> None:
        self.op, self.args = op, args
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class _Hub:
    """Runs one job per sub-env in threads and executes their population and engine calls
    together (see the module docstring)."""

    def __init__(self, population: Any, engine: Any) -> None:
        self.population = population
        self.engine = engine
        self._cv = threading.Condition()
        self._requests: dict[int, _Request] = {}
        self._live: set[int] = set()
        self._local = threading.local()
        self.member_lock = threading.Lock()
        """Held by the per-member calls that run at once in sub-env threads (they may grow shared tensors)."""

    # ---------------------------------------------------------------- running jobs
    def run(self, jobs: dict[int, Callable[[], Any]]) -> dict[int, tuple[Any, BaseException | None]]:
        """Run ``jobs[i]()`` for every i, each in its own thread, batching their calls; returns
        ``{i: (result, exception)}``."""
        results: dict[int, tuple[Any, BaseException | None]] = {}
        with self._cv:
            self._live = set(jobs)
            self._requests = {}
        threads = [threading.Thread(target=self._work, args=(i, fn, results), daemon=True) for i, fn in jobs.items()]
        for t in threads:
            t.start()
        while True:
            with self._cv:
                self._cv.wait_for(lambda: len(self._requests) == len(self._live))
                if not self._live:
                    break
                batch, self._requests = self._requests, {}
            self._execute(batch)
        for t in threads:
            t.join()
        return results

    def _work(self, i: int, fn: Callable[[], Any], results: dict) -> None:
        self._local.member = i
        try:
            results[i] = (fn(), None)
        except BaseException as err:  # handed to the caller of run()
            results[i] = (None, err)
        finally:
            with self._cv:
                self._live.discard(i)
                self._cv.notify_all()

    def call(self, i: int, op: str, *args: Any) -> Any:
        """Member i's call: queued when made from sub-env i's thread, else executed at once."""
        req = _Request(op, args)
        if getattr(self._local, "member", None) != i:
            self._execute({i: req})
        else:
            with self._cv:
                self._requests[i] = req
                self._cv.notify_all()
            req.done.wait()
        if req.error is not None:
            raise req.error
        return req.result

    # ---------------------------------------------------------------- executing a batch
    def _execute(self, batch: dict[int, _Request]) -> None:
        groups: dict[tuple, dict[int, _Request]] = {}
        for i, req in batch.items():
            key: tuple = (req.op,)
            if req.op == "generate":
                key = ("generate", req.args[2])  # by split
            elif req.op == "predict":
                key = ("predict", int(req.args[1]))  # by max_new_tokens
            groups.setdefault(key, {})[i] = req
        for key, reqs in groups.items():
            try:
                getattr(self, f"_do_{key[0]}")(reqs)
            except BaseException as err:  # a failure of the batched call reaches every caller
                for req in reqs.values():
                    if not req.done.is_set():
                        req.error = err
            for req in reqs.values():
                req.done.set()

    def _each(self, reqs: dict[int, _Request], arg: int = 0) -> list[Any]:
        """One argument per member (None for members without a request)."""
        out: list[Any] = [None] * self.population.size
        for i, req in reqs.items():
            out[i] = req.args[arg]
        return out

    def _do_generate(self, reqs: dict[int, _Request]) -> None:
        order = sorted(reqs)
        requests = [(reqs[i].args[0], reqs[i].args[1]) for i in order]
        split = reqs[order[0]].args[2]
        if callable(getattr(self.engine, "generate_many", None)):
            results = self.engine.generate_many(requests, split=split)
        else:
            results = [self.engine.generate(plan, rng, split=split) for plan, rng in requests]
        for i, res in zip(order, results, strict=True):
            reqs[i].result = res

    def _do_train(self, reqs: dict[int, _Request]) -> None:
        from distillgym.students.population import PopulationDivergedError

        track = any(bool(r.args[2]) for r in reqs.values())
        try:
            stats = self.population.train(self._each(reqs, 0), self._each(reqs, 1), track_cells=track)
            errors: dict[int, TrainingDivergedError] = {}
        except PopulationDivergedError as err:
            stats, errors = err.stats, err.errors
        for i, req in reqs.items():
            if i in errors:
                req.error = errors[i]
            else:
                req.result = stats[i]

    def _do_score_and_loss(self, reqs: dict[int, _Request]) -> None:
        out = self.population.score_and_loss(self._each(reqs, 0))
        for i, req in reqs.items():
            req.result = out[i]

    def _do_predict(self, reqs: dict[int, _Request]) -> None:
        max_new = int(next(iter(reqs.values())).args[1])
        out = self.population.predict(self._each(reqs, 0), max_new)
        for i, req in reqs.items():
            req.result = out[i]


class MemberStudent:
    """Sub-env i's student: member i of the population (the plain student's contract). Heavy
    calls go through the hub; ``snapshot``/``restore``/``reinit`` act on the member at once."""

    name = "plain"
    teacher_forced_exact = True

    def __init__(self, hub: _Hub, index: int) -> None:
        self.hub, self.index = hub, index
        self.config = hub.population.config

    def train(self, examples: Any, rng: np.random.Generator | None = None, track_cells: bool = True) -> Any:
        if rng is None:
            rng = np.random.default_rng(int(self.hub.population.step[self.index]))
        return self.hub.call(self.index, "train", examples, rng, track_cells)

    def score_and_loss(self, examples: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.hub.call(self.index, "score_and_loss", examples)

    def score(self, examples: Any) -> np.ndarray:
        return self.score_and_loss(examples)[0]

    def answer_loss(self, examples: Any) -> np.ndarray:
        return self.score_and_loss(examples)[1]

    def predict(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        return self.hub.call(self.index, "predict", list(prompts), int(max_new_tokens))

    def snapshot(self) -> dict[str, Any]:
        with self.hub.member_lock:
            return self.hub.population.snapshot(self.index)

    def restore(self, snapshot: dict[str, Any]) -> None:
        with self.hub.member_lock:
            self.hub.population.restore(self.index, snapshot)

    def reinit(self, seed: int) -> None:
        with self.hub.member_lock:
            self.hub.population.reinit(self.index, seed)

    def load_state(self, state: dict[str, Any]) -> None:
        """Member weights (e.g. a warm start); a fresh optimiser, warm-up and replay buffer."""
        with self.hub.member_lock:
            self.hub.population.load_state(self.index, state)

    def costs(self) -> dict[str, Any]:
        c = dict(self.hub.population.costs())
        c.pop("population_size", None)
        return c


class MemberEngine:
    """Sub-env i's data engine: its ``generate`` calls are served together with the others'."""

    def __init__(self, hub: _Hub, index: int, engine: Any) -> None:
        self.hub, self.index, self.engine = hub, index, engine
        self.name = getattr(engine, "name", type(engine).__name__)
        self.suite = engine.suite
        for attr in ("sources", "costs", "noise"):  # an engine with data sources (the source-mix level reads them)
            if hasattr(engine, attr):
                setattr(self, attr, getattr(engine, attr))

    def generate(self, plan: Any, rng: np.random.Generator, split: str | None = "train") -> Any:
        return self.hub.call(self.index, "generate", list(plan), rng, split)

    def reference_accuracy(self, suite: Any) -> np.ndarray | None:
        ref = getattr(self.engine, "reference_accuracy", None)
        return ref(suite) if callable(ref) else None


# ============================================================================ the vector env
def _autoreset_mode(mode: Any) -> AutoresetMode:
    try:
        return mode if isinstance(mode, AutoresetMode) else AutoresetMode(mode)
    except ValueError:
        raise ConfigError(
            f"autoreset_mode must be one of {[m.value for m in AutoresetMode]} (or an AutoresetMode), got {mode!r}"
        ) from None


class PopulationVectorEnv(gym.vector.VectorEnv):
    """N :class:`~distillgym.env.TeachingEnv` sub-environments over one population of plain
    students (see the module docstring).

    Arguments: ``num_envs``; ``autoreset_mode`` (``"NextStep"``, ``"SameStep"``, ``"Disabled"``
    or an ``AutoresetMode``); every other keyword is a ``TeachingEnv`` argument, as for the
    single env (``student`` must be ``"plain"``; ``device`` places the population)."""

    def __init__(self, num_envs: int = 1, autoreset_mode: Any = AutoresetMode.NEXT_STEP, **env_kwargs: Any) -> None:
        from distillgym.students.population import PopulationStudent
        from distillgym.students.torch_student import PlainStudent

        check_int("PopulationVectorEnv", "num_envs", num_envs, 1)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        env_kwargs.pop("max_episode_steps", None)  # gymnasium's; the env truncates by itself (max_steps)
        # The single env these sub-envs are: it validates every argument and names the config.
        reference = TeachingEnv(**env_kwargs)
        if not isinstance(reference.student, PlainStudent):
            raise ConfigError(
                f"the native vector env trains a population of plain students, so it needs student='plain' "
                f"(got {env_kwargs.get('student', 'tiny')!r}); for other students use "
                "gymnasium.make_vec(..., vectorization_mode='async')"
            )
        self.num_envs = int(num_envs)
        self.population = PopulationStudent(reference.student.config, reference.suite.alphabet, self.num_envs)
        self._hub = _Hub(self.population, reference.engine)
        config = reference.config
        self.single_config = config
        sub_kwargs = {k: v for k, v in env_kwargs.items() if k not in ("student_kwargs", "engine_kwargs", "device")}
        self.envs: list[TeachingEnv] = []
        for i in range(self.num_envs):
            env = TeachingEnv(**{**sub_kwargs, "student": MemberStudent(self._hub, i),
                                 "engine": MemberEngine(self._hub, i, reference.engine)})
            env._config = dict(reference._config)  # the single env's config: the dynamics it rebuilds
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
        self._ended = np.zeros(self.num_envs, dtype=bool)
        self.last_infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]

    # ---------------------------------------------------------------- helpers
    def _run(self, jobs: dict[int, Callable[[], Any]]) -> dict[int, Any]:
        results = self._hub.run(jobs)
        for i in sorted(results):
            err = results[i][1]
            if err is not None:
                raise err
        return {i: r for i, (r, _) in results.items()}

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

    # ---------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every sub-env (or those in ``options["reset_mask"]``); see the module docstring
        for the seeds."""
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        mask = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != (self.num_envs,):
            raise ConfigError(f"reset_mask must be {self.num_envs} booleans, got shape {mask.shape}")
        seeds = self._seeds(seed)
        jobs = {i: (lambda i=i: self.envs[i].reset(seed=seeds[i], options=options or None))
                for i in np.flatnonzero(mask)}
        results = self._run(jobs)
        infos: dict[str, Any] = {}
        for i in sorted(results):
            self._obs[i], info = results[i]
            self.last_infos[i] = info
            infos = self._add_info(infos, info, i)
        self._ended[mask] = False
        return self._batched_obs(), infos

    def step(self, actions: Any):
        actions = list(iterate(self.action_space, actions))
        if len(actions) != self.num_envs:
            raise ConfigError(f"step got {len(actions)} actions for {self.num_envs} sub-environments")
        mode = self.autoreset_mode

        def job(i: int) -> tuple:
            env = self.envs[i]
            if mode == AutoresetMode.NEXT_STEP and self._ended[i]:
                obs, info = env.reset()
                return obs, 0.0, False, False, info, None
            obs, reward, term, trunc, info = env.step(actions[i])
            final = None
            if mode == AutoresetMode.SAME_STEP and (term or trunc):
                final = {"final_obs": obs, "final_info": info}
                obs, info = env.reset()
            return obs, reward, term, trunc, info, final

        results = self._run({i: (lambda i=i: job(i)) for i in range(self.num_envs)})
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        for i in range(self.num_envs):
            obs, rewards[i], terminated[i], truncated[i], info, final = results[i]
            self._obs[i] = obs
            if final is not None:
                infos = self._add_info(infos, final, i)
                info = {**info, **final}
            self.last_infos[i] = info
            infos = self._add_info(infos, {k: v for k, v in info.items() if k not in ("final_obs", "final_info")}, i)
        self._ended = terminated | truncated
        return self._batched_obs(), rewards, terminated, truncated, infos

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
