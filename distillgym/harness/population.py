"""Run many (teacher, seed) episodes as one population of students: the ``population`` executor.

Where an env id has a native vector env (``gymnasium.make_vec(id, num_envs=N,
vectorization_mode="vector_entry_point")``, :class:`distillgym.vector.PopulationVectorEnv`), the
jobs of a benchmark or a headroom search that share an env and its arguments are cut into
**chunks** of at most N consecutive jobs, and each chunk runs as one vector env whose sub-env i is
job i: its own teacher (built from the job's name and arguments, reset with the job's seed) on the
sub-env reset with the job's seed. Every step, each live member's teacher acts on its own
observation and ``info``, the N actions go through one vector step, and each teacher's ``update``
sees its own transition; an episode's result is what :func:`distillgym.harness.runner.run_episode`
returns for it (same fields, built by the same code), plus ``population``::

    {"num_envs": N, "index": i, "chunk": "<12 hex digits>", "members": [[label, seed, config_hash], ...],
     "chunk_seconds": wall time of the chunk}

and ``seconds`` is the chunk's wall time divided by N (the episode's share).

**Numbers.** Sub-env i computes what the single env computes with its seed, bit for bit on a CPU:
the population groups its members by the row length of each pass, so every member keeps the plain
student's own shapes (see :mod:`distillgym.vector`, "Equality with the single environment"), and an
episode's numbers do not depend on its chunk-mates (on a GPU, batched and single kernels may round
differently). Each line still records its chunk, and ``distillgym verify`` re-runs a population
episode by re-running its whole chunk (:func:`run_chunk`), so a line stays reproducible from its own
record wherever the chunk matters.

**Episode ends.** Members of one chunk share the env's arguments, so on the cell and mix levels
they end at the same step. Should one end earlier (a level whose steps cost different budgets), it
is reset (``reset_mask``) and stepped with its last action until the others end; that continuation
is thrown away.

**Failures.** A teacher that raises in ``act`` fails its own episode (a failed result with the
traceback); the member is then stepped with a neutral action (zeros: the equal mix, or cell
``[0, 0]``) until the chunk ends, and its output is thrown away. A vector step whose failure is
confined to some sub-envs (:class:`~distillgym.vector.PopulationStepError`: a student that diverged)
fails those episodes, each with its reason; the others go on with the step's results, and a failed
member is reset and stepped on like an ended one. Any other error of a vector step (an invalid action,
a failed batched call) fails every episode of the chunk still running, each with the error; a rerun
retries them.

Teachers that declare ``needs_env`` (the oracle, which steps its env to look ahead) and env ids
without a vector entry point run through the process pool instead (:func:`run_population` says so).
The env is built with ``autoreset_mode="Disabled"``; one torch thread per worker process.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_int
from distillgym.harness.benchmark import Job
from distillgym.harness.fingerprint import fingerprint

__all__ = ["run_population", "run_chunk", "chunks", "has_vector_env", "auto_num_envs", "chunk_id", "CPU_NUM_ENVS",
           "GPU_NUM_ENVS"]

CPU_NUM_ENVS = 8
"""The largest chunk :func:`auto_num_envs` picks on CPU. Measured (benchmarks/README.md, "The headroom
search"): on 2 shared CPU cores with one torch thread, a population step costs about as much per
sub-env at N = 1, 4 and 8, so on CPU N only needs to be large enough to keep the workers busy."""
GPU_NUM_ENVS = 256
"""The largest chunk :func:`auto_num_envs` picks when the students run on a GPU (the 84k-parameter
student is launch-bound there: many members share one kernel launch)."""


def has_vector_env(env_id: str) -> bool:
    """Whether ``env_id`` has a native vector env (a ``vector_entry_point``)."""
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the envs)

    try:
        return gym.spec(env_id).vector_entry_point is not None
    except gym.error.Error:
        return False


def auto_num_envs(n_jobs: int, workers: int, device: str = "cpu") -> int:
    """N for ``n_jobs`` episodes on ``workers`` processes: the jobs spread evenly over the workers, at
    most :data:`CPU_NUM_ENVS` per chunk on CPU and :data:`GPU_NUM_ENVS` on a GPU."""
    cap = GPU_NUM_ENVS if str(device).startswith("cuda") else CPU_NUM_ENVS
    return max(1, min(cap, -(-max(1, n_jobs) // max(1, workers))))


def chunk_id(members: Sequence[Sequence[Any]]) -> str:
    """A short stable id of a chunk's member list."""
    return hashlib.sha256(json.dumps([list(m) for m in members], default=str).encode()).hexdigest()[:12]


def _group_key(job: Job) -> str:
    return json.dumps([job.env, job.env_kwargs, job.device], sort_keys=True, default=repr)


def chunks(jobs: Sequence[Job], num_envs: int) -> list[list[Job]]:
    """The jobs cut into chunks of at most ``num_envs`` consecutive jobs of one env and env arguments
    (groups in order of first appearance, jobs in their order within a group)."""
    check_int("chunks", "num_envs", num_envs, 1)
    groups: dict[str, list[Job]] = {}
    for j in jobs:
        groups.setdefault(_group_key(j), []).append(j)
    out: list[list[Job]] = []
    for g in groups.values():
        out += [g[k:k + num_envs] for k in range(0, len(g), num_envs)]
    return out


def _neutral_action(space: Any) -> Any:
    """An action that asks for nothing in particular: zeros (the equal mix, cell ``[0, 0]``), or no
    lines on the open level."""
    import gymnasium as gym

    if isinstance(space, gym.spaces.Text):
        return ""
    return np.zeros(space.shape, dtype=space.dtype)


def _batch(space: Any, actions: Sequence[Any]) -> Any:
    """The N sub-env actions as the vector env takes them: a list of strings on the open level,
    else one stacked array."""
    import gymnasium as gym

    if isinstance(space, gym.spaces.Text):
        return [str(a) for a in actions]
    return np.stack([np.asarray(a) for a in actions])


def _failed(job: Job, err: BaseException | str, tb: str, fp: dict[str, Any], steps: int, seconds: float,
            population: dict[str, Any]) -> dict[str, Any]:
    msg = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    return {"status": "failed", "error": msg, "traceback": tb, "steps_completed": steps, "seconds": seconds,
            "fingerprint": fp, "population": population}


def run_chunk(jobs: Sequence[Job], threads: int = 1) -> list[dict[str, Any]]:
    """Run one chunk (jobs of one env and env arguments) as one population; returns one result per
    job, in order (ok results as :func:`~distillgym.harness.runner.run_episode` gives them, with
    ``status``, ``fingerprint`` and ``population``; failed ones as the process pool's). Never raises
    for an episode's own error."""
    import gymnasium as gym
    import torch

    import distillgym  # noqa: F401  (registers the envs)
    from distillgym.harness.runner import episode_result, prepare_teacher, step_record
    from distillgym.teachers import make_teacher
    from distillgym.vector import PopulationStepError

    if not jobs:
        return []
    keys = {_group_key(j) for j in jobs}
    if len(keys) != 1:
        raise ConfigError("run_chunk: the jobs of one chunk must share the env, its arguments and the device")
    torch.set_num_threads(threads)
    first = jobs[0]
    n = len(jobs)
    members = [[j.label, j.seed, j.config_hash] for j in jobs]
    population: dict[str, Any] = {"num_envs": n, "chunk": chunk_id(members), "members": members}
    fp = fingerprint(device=first.device, torch_threads=threads)
    t0 = time.perf_counter()
    results: list[dict[str, Any] | None] = [None] * n

    def fail_all(err: BaseException, tb: str, which: Sequence[int], steps: Sequence[int]) -> list[dict[str, Any]]:
        for i in which:
            if results[i] is None:
                results[i] = _failed(jobs[i], err, tb, fp, steps[i], time.perf_counter() - t0,
                                     {**population, "index": i})
        return [r if r is not None else _failed(jobs[i], "not run", "", fp, 0, 0.0, {**population, "index": i})
                for i, r in enumerate(results)]

    try:
        venv = gym.make_vec(first.env, num_envs=n, vectorization_mode="vector_entry_point",
                            autoreset_mode="Disabled", **first.env_kwargs)
    except Exception as err:
        return fail_all(err, traceback.format_exc(), range(n), [0] * n)
    steps: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    agents: list[Any] = [None] * n
    try:
        vec = venv.unwrapped
        seeds = [int(j.seed) for j in jobs]
        obs, _ = vec.reset(seed=seeds)
        infos = [dict(vec.last_infos[i]) for i in range(n)]
        subs = list(vec.envs)
        device = str(getattr(getattr(vec, "population", None), "device", first.device))
        for i, job in enumerate(jobs):
            try:
                agents[i] = prepare_teacher(make_teacher(job.teacher, **job.teacher_kwargs), subs[i], infos[i], job.seed)
            except Exception as err:
                results[i] = _failed(job, err, traceback.format_exc(), fp, 0, 0.0, {**population, "index": i})
        skills = [list(info.get("skills", [])) for info in infos]
        live = np.array([results[i] is None for i in range(n)])
        ended = np.zeros(n, dtype=bool)
        last = [_neutral_action(vec.single_action_space) for _ in range(n)]
        returns = np.zeros(n)
        while live.any():
            actions = []
            for i in range(n):
                if live[i]:
                    o = {k: v[i] for k, v in obs.items()}
                    try:
                        last[i] = agents[i].act(o, infos[i])
                    except Exception as err:
                        results[i] = _failed(jobs[i], err, traceback.format_exc(), fp, len(steps[i]),
                                             time.perf_counter() - t0, {**population, "index": i})
                        live[i] = False
                        last[i] = _neutral_action(vec.single_action_space)
                actions.append(last[i])
            if not live.any():
                break
            if ended.any():  # members whose episode ended run on, thrown away (see the module docstring)
                vec.reset(seed=seeds, options={"reset_mask": ended.copy()})
                ended[:] = False
            try:
                obs, rewards, term, trunc, _ = vec.step(_batch(vec.single_action_space, actions))
            except PopulationStepError as err:
                if err.results is None:
                    return fail_all(err, traceback.format_exc(), [i for i in range(n) if live[i]],
                                    [len(s) for s in steps])
                obs, rewards, term, trunc, _ = err.results
                for i, why in err.failures.items():
                    if live[i]:
                        results[i] = _failed(jobs[i], f"{type(err).__name__}: sub-env {i}: {why}",
                                             traceback.format_exc(), fp, len(steps[i]), time.perf_counter() - t0,
                                             {**population, "index": i})
                    live[i] = False
                    ended[i] = True  # broken: reset before the next step, then run on and thrown away
                    term[i] = trunc[i] = False
            except Exception as err:
                return fail_all(err, traceback.format_exc(), [i for i in range(n) if live[i]],
                                [len(s) for s in steps])
            for i in range(n):
                done = bool(term[i] or trunc[i])
                if not live[i]:
                    ended[i] |= done
                    continue
                infos[i] = dict(vec.last_infos[i])
                o = {k: v[i] for k, v in obs.items()}
                agents[i].update(o, float(rewards[i]), bool(term[i]), bool(trunc[i]), infos[i])
                returns[i] += float(rewards[i])
                steps[i].append(step_record(len(steps[i]) + 1, infos[i], float(rewards[i])))
                if done:
                    live[i] = False
                    ended[i] = True
                    results[i] = episode_result(agents[i], jobs[i].teacher, jobs[i].seed, jobs[i].env, infos[i],
                                                skills[i], float(returns[i]), bool(trunc[i]), steps[i], device,
                                                subs[i].config, 0.0)
        wall = time.perf_counter() - t0
        for i, r in enumerate(results):
            if r is not None and r.get("status") != "failed":
                r.update(status="ok", fingerprint=fp, seconds=wall / n,
                         population={**population, "index": i, "chunk_seconds": wall})
                if r["device"] != fp["device"]:
                    r["fingerprint"] = fingerprint(device=r["device"], torch_threads=threads)
    except Exception as err:
        return fail_all(err, traceback.format_exc(), range(n), [len(s) for s in steps])
    finally:
        for a in agents:
            close = getattr(a, "close", None)
            if callable(close):
                close()
        venv.close()
    return [r if r is not None else _failed(jobs[i], "episode did not end", "", fp, len(steps[i]), 0.0,
                                            {**population, "index": i}) for i, r in enumerate(results)]


def _run_chunk_job(chunk: list[Job], threads: int) -> list[dict[str, Any]]:
    return run_chunk(chunk, threads)


def _die_with_parent() -> None:
    from distillgym.harness.executors import _die_with_parent as die

    die()


def run_population(jobs: Sequence[Job], workers: int, threads: int, num_envs: int | None = None,
                   say: Callable[[str], None] | None = None) -> Iterator[tuple[Job, dict[str, Any]]]:
    """Run ``jobs`` in populations of at most ``num_envs`` (None: :func:`auto_num_envs`) on
    ``workers`` processes; yields ``(job, result)`` per episode as each chunk finishes. Jobs whose env
    has no native vector env, or whose teacher declares ``needs_env``, run on the process pool
    (:func:`distillgym.harness.executors.run_local`); ``say`` is told so."""
    from distillgym.harness.executors import run_local
    from distillgym.teachers import TEACHERS

    check_int("run_population", "workers", workers, 1)
    say = say or (lambda msg: print(f"distillgym: {msg}", file=sys.stderr, flush=True))

    def pooled(j: Job) -> bool:
        cls = TEACHERS[j.teacher] if j.teacher in TEACHERS else None
        return not has_vector_env(j.env) or bool(getattr(cls, "needs_env", False))

    native = [j for j in jobs if not pooled(j)]
    other = [j for j in jobs if pooled(j)]
    if other:
        envs = sorted({j.env for j in other})
        say(f"{len(other)} episode(s) run on the process pool, not in a population (envs without a native vector "
            f"env, or teachers that need the env itself): {', '.join(envs)}")
    if native:
        if num_envs is None:
            num_envs = auto_num_envs(len(native), workers, native[0].device)
        check_int("run_population", "num_envs", num_envs, 1)
        parts = chunks(native, num_envs)
        say(f"{len(native)} episode(s) in {len(parts)} population(s) of at most {num_envs} students "
            f"({workers} worker process(es))")
        if workers <= 1 or len(parts) == 1:
            for part in parts:
                yield from zip(part, run_chunk(part, threads), strict=True)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                     initializer=_die_with_parent) as pool:
                pending = {pool.submit(_run_chunk_job, part, threads): part for part in parts}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        part = pending.pop(fut)
                        try:
                            res = fut.result()
                        except Exception as err:  # the worker died (killed, out of memory)
                            fp = fingerprint(device=part[0].device, torch_threads=threads)
                            res = [_failed(j, err, traceback.format_exc(), fp, 0, 0.0, {}) for j in part]
                        yield from zip(part, res, strict=True)
    if other:
        yield from run_local(other, workers, threads)
