"""Run one teacher on one environment for one episode (suites are in :mod:`distillgym.bench`).

:func:`run_episode` is the one loop to copy: reset the env, reset the teacher with the reset
``info``, then ``act`` -> ``env.step`` -> ``update`` until the episode ends. A teacher of another
action level is wrapped by :func:`distillgym.agents.adapters.adapt_teacher` (documented there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_ENV", "run_episode", "step_record"]

DEFAULT_ENV = "distillgym/ArithSkills-v0"


def step_record(t: int, info: dict[str, Any], reward: float) -> dict[str, Any]:
    """The JSON-able record of one step, as the results files keep it."""
    a = dict(info.get("action") or {})
    rec: dict[str, Any] = {"t": t}
    if "skill" in a:  # a one-cell step (cell level, or a one-hot mix)
        rec["skill"], rec["difficulty"] = a["skill"], a["difficulty"]
    rec["examples"] = int(a.get("n", 0))
    rec["val_accuracy"] = info["mean_accuracy"]
    rec["reward"] = float(reward)
    rec["loss"] = info.get("train_loss")
    for k in ("allocation", "accepted", "rejected"):
        if k in a:
            rec[k] = a[k]
    costs = info.get("costs") or {}
    rec["costs"] = {k: v for k, v in costs.items() if k != "seconds"}
    rec["seconds"] = {k: float(v) for k, v in (costs.get("seconds") or {}).items()}
    return rec


def run_episode(
    env: Any = DEFAULT_ENV,
    teacher: str | Any = "uniform",
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    teacher_kwargs: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run one episode; the env and the teacher are both seeded with ``seed``.

    ``env`` is an env id (made with ``env_kwargs`` and closed at the end) or an env object
    (used as is, not closed). ``teacher`` is a name (built with ``teacher_kwargs``) or a
    teacher object. Returns a JSON-able dict with ``teacher``, ``seed``, ``env``,
    ``final_test_accuracy``, ``val_accuracy_start``, ``val_accuracy_end``, ``seconds``,
    ``examples``, ``costs`` (the episode's totals) and ``steps`` (one record per step, also
    passed to ``on_step`` as it happens)."""
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the envs)
    from distillgym.agents import make_teacher
    from distillgym.agents.adapters import adapt_teacher

    t0 = time.perf_counter()
    own_env = isinstance(env, str)
    if own_env:
        env_id = env
        env = gym.make(env_id, **(env_kwargs or {}))
    else:
        if env_kwargs:
            raise ValueError("env_kwargs are for an env given by id, not for an env object")
        env_id = env.spec.id if getattr(env, "spec", None) is not None else type(env.unwrapped).__name__
    agent = make_teacher(teacher, **(teacher_kwargs or {})) if isinstance(teacher, str) else teacher
    try:
        obs, info = env.reset(seed=seed)
        skills = list(info.get("skills", []))
        agent = adapt_teacher(agent, info.get("level", "cell"))
        agent.reset(env.action_space, info, seed=seed)
        steps: list[dict[str, Any]] = []
        ret = 0.0
        while True:
            action = agent.act(obs, info)
            obs, reward, terminated, truncated, info = env.step(action)
            agent.update(obs, reward, terminated, truncated, info)
            ret += reward
            rec = step_record(len(steps) + 1, info, reward)
            steps.append(rec)
            if on_step is not None:
                on_step(rec)
            if terminated or truncated:
                break
    finally:
        if own_env:
            env.close()
    final = info["final"]
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
        "truncated": bool(truncated),
        "costs": dict(info.get("totals") or {}),
        "seconds": time.perf_counter() - t0,
        "teacher_stats": dict(getattr(agent, "stats", None) or {}),
        "steps": steps,
    }
