"""Run one teacher on one environment for one episode (benchmarks are in :mod:`distillgym.harness.bench`).

:func:`run_episode` is the one loop to copy: reset the env, reset the teacher with the reset
``info``, then ``act`` -> ``env.step`` -> ``update`` until the episode ends. A teacher of another
action level is wrapped by :func:`distillgym.teachers.adapters.adapt_teacher` (documented there).

A teacher that declares ``needs_env = True`` (the ``oracle-lookahead`` reference, which peeks by
snapshotting the env and trying candidate steps) is given the unwrapped env with
``teacher.bind_env(env)`` before its ``reset``; one that declares ``reference_row = True`` is marked
as a reference in the result (the leaderboard shows it and does not rank it). A teacher that trains
students or calls a data engine itself (the oracle's look-ahead steps) reports those costs in its
``stats`` (``student_tokens``, ``student_flops``, ``engine_tokens_in``, ``engine_tokens_out``,
``engine_calls``), and they are added to the episode's ``costs``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from distillgym.envs import DEFAULT_ENV

__all__ = ["run_episode", "episode_result", "step_record", "prepare_teacher", "student_device"]


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


def prepare_teacher(agent: Any, env: Any, info: dict[str, Any], seed: int | None) -> Any:
    """Ready ``agent`` for an episode of ``env`` just reset with ``info``: give it the env when it
    declares ``needs_env``, adapt it to the env's action level, and ``reset`` it. Returns the teacher
    to call (the agent itself or its adapter)."""
    from distillgym.errors import ConfigError
    from distillgym.teachers.adapters import adapt_teacher

    if getattr(agent, "needs_env", False):
        bind = getattr(agent, "bind_env", None)
        if not callable(bind):
            raise ConfigError(f"teacher {getattr(agent, 'name', agent)!r} declares needs_env but has no bind_env(env)")
        bind(env.unwrapped)
    agent = adapt_teacher(agent, info.get("level", "cell"))
    agent.reset(env.action_space, info, seed=seed)
    return agent


def student_device(env: Any) -> str:
    """The device the env's student runs on (``"cpu"``, ``"cuda:0"``, ...); ``"cpu"`` when it does not say."""
    dev = getattr(getattr(env.unwrapped, "student", None), "device", None)
    return str(dev) if dev is not None else "cpu"


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
    ``examples``, ``costs`` (the episode's totals: the teacher's model tokens and calls, the data
    engine's, the student's training tokens and FLOPs, the examples trained on and the budget
    charged; a teacher's own look-ahead training and engine calls included, see the module
    docstring), ``device`` (the student's), ``env_config`` (the env's resolved configuration, when
    it has one), ``reference_row`` (the teacher is a reference, not a valid teacher) and ``steps``
    (one record per step, also passed to ``on_step`` as it happens)."""
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the envs)
    from distillgym.teachers import make_teacher

    t0 = time.perf_counter()
    own_env = isinstance(env, str)
    if own_env:
        from distillgym.envs import check_env_id

        env_id = check_env_id(env)
        env = gym.make(env_id, **(env_kwargs or {}))
    else:
        if env_kwargs:
            from distillgym.errors import ConfigError

            raise ConfigError("env_kwargs are for an env given by id, not for an env object")
        env_id = env.spec.id if getattr(env, "spec", None) is not None else type(env.unwrapped).__name__
    agent = make_teacher(teacher, **(teacher_kwargs or {})) if isinstance(teacher, str) else teacher
    try:
        obs, info = env.reset(seed=seed)
        skills = list(info.get("skills", []))
        agent = prepare_teacher(agent, env, info, seed)
        device = student_device(env)
        env_config = getattr(env.unwrapped, "config", None)
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
    return episode_result(agent, teacher if isinstance(teacher, str) else None, seed, env_id, info, skills, ret,
                          bool(truncated), steps, device, env_config, time.perf_counter() - t0)


def episode_result(agent: Any, teacher_name: str | None, seed: int, env_id: str, info: dict[str, Any],
                   skills: list[str], ret: float, truncated: bool, steps: list[dict[str, Any]], device: str,
                   env_config: Any, seconds: float) -> dict[str, Any]:
    """The JSON-able result of an episode that has ended with ``info`` (which holds ``info["final"]``),
    as :func:`run_episode` returns it (shared with the population runner,
    :mod:`distillgym.harness.population`). ``agent`` is the teacher that played (its ``stats`` and
    ``reference_row`` are read); ``teacher_name`` the name it was built from (None: its own ``name``)."""
    final = info["final"]
    totals = dict(info.get("totals") or {})
    stats = dict(getattr(agent, "stats", None) or {})

    def own(key: str) -> float:  # a cost the teacher incurred itself (look-ahead steps)
        return float(stats.get(key, 0) or 0)

    costs = {
        "teacher_tokens_in": own("tokens_in"),
        "teacher_tokens_out": own("tokens_out"),
        "teacher_calls": own("prompts"),
        "engine_tokens_in": float(totals.get("engine_tokens_in", 0)) + own("engine_tokens_in"),
        "engine_tokens_out": float(totals.get("engine_tokens_out", 0)) + own("engine_tokens_out"),
        "engine_calls": float(totals.get("engine_calls", 0)) + own("engine_calls"),
        "student_tokens": float(totals.get("tokens", 0)) + own("student_tokens"),
        "student_flops": float(totals.get("student_flops", 0.0)) + own("student_flops"),
        "examples": float(totals.get("examples", 0)),
        "charged": float(totals.get("charged", 0)),
    }
    return {
        "teacher": teacher_name if teacher_name is not None else getattr(agent, "name", type(agent).__name__),
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
        "costs": costs,
        "device": device,
        "env_config": env_config,
        "reference_row": bool(getattr(agent, "reference_row", False)),
        "seconds": seconds,
        "teacher_stats": stats,
        "steps": steps,
    }
