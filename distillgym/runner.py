"""Run one teacher on one environment for one episode (suites are in :mod:`distillgym.bench`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_ENV", "run_episode"]

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
