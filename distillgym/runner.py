"""Run teachers on environments: one episode, or every (teacher, seed) pair."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from distillgym.stats import mean_ci, welch

__all__ = ["DEFAULT_ENV", "run_episode", "run_many", "summarize"]

DEFAULT_ENV = "distillgym/ArithSkills-v0"


def run_episode(
    env_id: str = DEFAULT_ENV,
    teacher: str | Any = "uniform",
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    teacher_kwargs: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run one episode; the env and the teacher are both seeded with ``seed``.

    Returns a JSON-able dict with ``teacher``, ``seed``, ``env``, ``final_test_accuracy``,
    ``val_accuracy_start``, ``val_accuracy_end``, ``seconds``, ``examples`` and ``steps``
    (one record per step, also passed to ``on_step`` as it happens)."""
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the envs)
    from distillgym.agents import make_teacher

    t0 = time.perf_counter()
    env = gym.make(env_id, **(env_kwargs or {}))
    agent = make_teacher(teacher, **(teacher_kwargs or {})) if isinstance(teacher, str) else teacher
    obs, info = env.reset(seed=seed)
    skills = list(info.get("skills", []))
    agent.reset(env.action_space, info, seed=seed)
    steps: list[dict[str, Any]] = []
    ret = 0.0
    while True:
        action = agent.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        agent.update(obs, reward, terminated, truncated, info)
        ret += reward
        rec = {
            "t": len(steps) + 1,
            "skill": info["action"]["skill"],
            "difficulty": info["action"]["difficulty"],
            "examples": info["action"]["n"],
            "val_accuracy": info["mean_accuracy"],
            "reward": float(reward),
            "loss": info["train_loss"],
            "seconds": dict(info["costs"]["seconds"]),
        }
        steps.append(rec)
        if on_step is not None:
            on_step(rec)
        if terminated or truncated:
            break
    final = info["final"]
    env.close()
    return {
        "teacher": teacher if isinstance(teacher, str) else getattr(agent, "name", type(agent).__name__),
        "seed": seed,
        "env": env_id,
        "final_test_accuracy": final["test_accuracy"],
        "test_skill_accuracy": final["test_skill_accuracy"],
        "test_accuracy_matrix": final["test_accuracy_matrix"],
        "reference_test_accuracy": final.get("reference_test_accuracy", float("nan")),
        "skills": skills,
        "val_accuracy_start": final["val_accuracy_start"],
        "val_accuracy_end": final["val_accuracy_end"],
        "return": ret,
        "examples": final["examples"],
        "seconds": time.perf_counter() - t0,
        "teacher_stats": dict(getattr(agent, "stats", None) or {}),
        "steps": steps,
    }


def _worker(args: tuple[str, str, int, dict[str, Any] | None, int]) -> dict[str, Any]:
    import torch

    env_id, teacher, seed, env_kwargs, threads = args
    torch.set_num_threads(threads)
    return run_episode(env_id, teacher, seed, env_kwargs)


def run_many(
    teachers: Sequence[str],
    seeds: Sequence[int],
    env_id: str = DEFAULT_ENV,
    env_kwargs: dict[str, Any] | None = None,
    workers: int = 1,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Every (teacher, seed) pair; with ``workers > 1`` in a spawned process pool, one
    torch thread per worker. Results come back in (teacher, seed) order."""
    jobs = [(env_id, t, s, env_kwargs, 1 if workers > 1 else 0) for t in teachers for s in seeds]
    results: list[dict[str, Any]] = []
    if workers <= 1:
        for env_id_, t, s, kw, _ in jobs:
            r = run_episode(env_id_, t, s, kw)
            results.append(r)
            if on_episode:
                on_episode(r)
        return results
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        for r in pool.map(_worker, jobs):
            results.append(r)
            if on_episode:
                on_episode(r)
    return results


def summarize(results: Sequence[dict[str, Any]], baseline: str = "uniform") -> list[dict[str, Any]]:
    """Per teacher: n, mean final test accuracy, 95% t-interval, and Welch's t-test
    against ``baseline`` (when it was run)."""
    by: dict[str, list[float]] = {}
    for r in results:
        by.setdefault(r["teacher"], []).append(r["final_test_accuracy"])
    base = by.get(baseline)
    rows = []
    for name, xs in by.items():
        m, lo, hi = mean_ci(xs)
        row = {"teacher": name, "n": len(xs), "mean": m, "ci_low": lo, "ci_high": hi, "std": float(np.std(xs, ddof=1)) if len(xs) > 1 else float("nan")}
        if base is not None and name != baseline:
            row["t_vs_" + baseline], row["p_vs_" + baseline] = welch(xs, base)
        rows.append(row)
    return sorted(rows, key=lambda r: -r["mean"])
