"""Executors: where a benchmark's episodes run.

:func:`run_job` runs one episode in this process with a fixed number of torch threads (the same in
every executor, so results do not depend on where a job ran) and never raises for an episode's own
error. :func:`run_local` runs jobs in a pool of spawned processes (killed with their parent on
Linux); :func:`run_ray` on Ray workers (the ``ray`` extra). Both yield ``(job, result)`` as each
episode finishes. The third executor, ``population`` (several episodes in one native vector env),
is :func:`distillgym.harness.population.run_population`.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from distillgym.errors import require
from distillgym.harness.benchmark import Job
from distillgym.harness.fingerprint import fingerprint

__all__ = ["EXECUTORS", "run_job", "run_local", "run_ray"]

EXECUTORS = ("local", "ray", "population")
"""``local`` (a process pool), ``ray``, and ``population`` (:mod:`distillgym.harness.population`: the
episodes of an env with a native vector env run as one population of students per chunk)."""


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


def run_local(jobs: Sequence[Job], workers: int, threads: int) -> Iterator[tuple[Job, dict[str, Any]]]:
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


def run_ray(jobs: Sequence[Job], workers: int, threads: int, address: str | None) -> Iterator[tuple[Job, dict[str, Any]]]:
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
