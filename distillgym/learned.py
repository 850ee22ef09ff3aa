"""Train a learned teacher with Stable-Baselines3 (PPO) on a distillgym environment.

``train_teacher(...)`` trains ``PPO("MultiInputPolicy")`` on ``n_envs`` copies of the env,
each in its own spawned worker process (``SubprocVecEnv(start_method="spawn")``, one torch
thread per worker) or, with ``vec="native"``, as one native vector env whose students are one
population (``--vec native --n-envs N`` on the command line), saves checkpoints to ``OUT/checkpoints/`` and the final policy to
``OUT/policy.zip`` with ``OUT/policy.json`` (env id and kwargs, timesteps, seed, seconds,
package versions) beside it. The policy is then a teacher named ``ppo:OUT/policy.zip``
(see :mod:`distillgym.agents.ppo`). ``distillgym train-teacher`` is the command line.

Default PPO hyperparameters (``DEFAULT_PPO_KWARGS``; every one can be overridden with
``ppo_kwargs``), chosen for an env whose episodes are short (32 steps by default) and whose
steps are expensive (about a second of student training each) while PPO updates are cheap:

- ``n_steps=32`` per env: one rollout is one default episode per env, so each update sees
  whole episodes (64 transitions with 2 envs) instead of waiting 2,048 seconds per env;
- ``batch_size=32``: two minibatches per epoch with 2 envs; ``n_epochs=10`` (SB3's default);
- ``gamma=1.0``: the benchmark's objective is the final accuracy, i.e. the undiscounted sum of
  the ``delta_mean`` rewards over a fixed-length episode, and ``budget_left`` is in the
  observation so the value function can tell how much of the episode is left;
  ``gae_lambda=0.95`` still trades bias for variance;
- ``ent_coef=0.01``: a little entropy bonus keeps the 7 x 4 action grid explored early;
- ``learning_rate=3e-4``, ``clip_range=0.2``, the default ``[64, 64]`` MLP: SB3's defaults;
- ``device="cpu"``: the policy is a small MLP; a GPU only adds transfer time.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

from distillgym.errors import ConfigError, UnknownNameError, check_int, did_you_mean, require
from distillgym.runner import DEFAULT_ENV

__all__ = ["ALGOS", "DEFAULT_PPO_KWARGS", "VEC_KINDS", "train_teacher", "add_train_teacher_parser", "EnvFactory"]

ALGOS = ("ppo",)
VEC_KINDS = ("subproc", "dummy", "native")

DEFAULT_PPO_KWARGS: dict[str, Any] = {
    "n_steps": 32,
    "batch_size": 32,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "gamma": 1.0,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.01,
    "device": "cpu",
}


class EnvFactory:
    """Picklable env constructor for vectorised envs.

    Called inside each worker process: it imports ``distillgym`` (which registers the envs in
    that fresh, spawned interpreter), optionally sets torch's thread count (1 in subprocess
    workers, so ``n_envs`` workers do not oversubscribe the cores), makes the env and wraps it
    in SB3's ``Monitor`` (episode returns and lengths in the training log)."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any] | None = None, torch_threads: int | None = None) -> None:
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.torch_threads = torch_threads

    def __call__(self) -> Any:
        import gymnasium as gym
        from stable_baselines3.common.monitor import Monitor

        import distillgym  # noqa: F401  (registers the envs in this process)

        if self.torch_threads is not None:
            import torch

            torch.set_num_threads(self.torch_threads)
        return Monitor(gym.make(self.env_id, **self.env_kwargs))


def _check_env(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Make the env once in this process so a bad id or bad kwargs fail here with a clear
    message, not as a broken pipe from a worker."""
    import gymnasium as gym

    import distillgym  # noqa: F401
    from distillgym.envs import ENV_IDS

    if env_id not in gym.registry:
        raise UnknownNameError(f"unknown env {env_id!r}: {did_you_mean(env_id, ENV_IDS)}")
    try:
        env = gym.make(env_id, **env_kwargs)
    except TypeError as err:  # an unexpected keyword argument
        raise ConfigError(f"bad env kwargs {env_kwargs!r} for {env_id!r}: {err}") from None
    env.close()


def _versions() -> dict[str, str]:
    import gymnasium
    import numpy
    import stable_baselines3
    import torch

    import distillgym

    return {
        "python": platform.python_version(),
        "distillgym": distillgym.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": numpy.__version__,
    }


def default_out_dir(env_id: str, seed: int, algo: str = "ppo") -> str:
    """``runs/<algo>-<env>-<seed>-<YYYYmmdd-HHMMSS>`` with the env id made file-name safe."""
    env = re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id)
    return os.path.join("runs", f"{algo}-{env}-{seed}-{time.strftime('%Y%m%d-%H%M%S')}")


def train_teacher(
    env_id: str = DEFAULT_ENV,
    algo: str = "ppo",
    timesteps: int = 2048,
    n_envs: int = 2,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vec: str = "subproc",
    checkpoint_every: int = 1024,
    ppo_kwargs: dict[str, Any] | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """Train a PPO teacher and save it; returns a JSON-able summary.

    ``timesteps`` counts env steps summed over the ``n_envs`` envs; PPO always finishes the
    rollout it is in, so it runs ``ceil(timesteps / (n_steps * n_envs))`` whole rollouts (the
    summary's ``timesteps`` is the number actually run). ``checkpoint_every`` is in env steps
    too (rounded to whole vectorised steps). ``vec="subproc"`` runs each env in a spawned
    process with one torch thread; ``"dummy"`` runs them one after another in this process;
    ``"native"`` runs them as one native vector env in this process, the ``n_envs`` students one
    population on one device (GPU when present; only ids with a vector entry point, e.g.
    ``distillgym/ArithSkills-v2``; see :mod:`distillgym.vector` and :mod:`distillgym.interop.sb3`).

    Returns ``{"path", "meta_path", "checkpoints", "out_dir", "timesteps",
    "requested_timesteps", "seconds", "learn_seconds", "seconds_per_1000_steps"}``, where
    ``seconds`` is the whole call (worker start-up and saving included) and
    ``seconds_per_1000_steps`` is ``learn_seconds`` (PPO's ``learn``: rollouts and updates)
    per 1,000 env steps."""
    t0 = time.perf_counter()
    if algo not in ALGOS:
        raise UnknownNameError(f"unknown algorithm {algo!r}: {did_you_mean(algo, ALGOS)}")
    if vec not in VEC_KINDS:
        raise UnknownNameError(f"unknown vec {vec!r}: {did_you_mean(vec, VEC_KINDS)}")
    for name, v in (("timesteps", timesteps), ("n_envs", n_envs), ("checkpoint_every", checkpoint_every)):
        check_int("", name, v, 1)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    env_kwargs = dict(env_kwargs or {})
    kwargs = {**DEFAULT_PPO_KWARGS, **(ppo_kwargs or {})}
    for reserved in ("policy", "env", "seed"):
        if reserved in kwargs:
            raise ConfigError(f"ppo_kwargs must not set {reserved!r}; it is an argument of train_teacher")
    require("stable_baselines3", "training a learned teacher", "sb3")
    _check_env(env_id, env_kwargs)

    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import CheckpointCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    out = Path(out_dir if out_dir is not None else default_out_dir(env_id, seed, algo))
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    if vec == "native":
        from stable_baselines3.common.vec_env import VecMonitor

        from distillgym.interop.sb3 import make_native_vec_env

        venv = VecMonitor(make_native_vec_env(env_id, n_envs, env_kwargs))
    elif vec == "subproc":
        fns = [EnvFactory(env_id, env_kwargs, torch_threads=1) for _ in range(n_envs)]
        venv = SubprocVecEnv(fns, start_method="spawn")
    else:
        venv = DummyVecEnv([EnvFactory(env_id, env_kwargs) for _ in range(n_envs)])
    try:
        try:
            model = PPO("MultiInputPolicy", venv, seed=seed, verbose=verbose, **kwargs)
        except TypeError as err:
            raise ConfigError(f"bad ppo_kwargs {ppo_kwargs!r}: {err}") from None
        ckpt = CheckpointCallback(
            save_freq=max(checkpoint_every // n_envs, 1), save_path=str(ckpt_dir), name_prefix=algo
        )
        t_learn = time.perf_counter()
        model.learn(total_timesteps=timesteps, callback=ckpt)
        learn_seconds = time.perf_counter() - t_learn
        path = out / "policy.zip"
        model.save(path)
        done = int(model.num_timesteps)
    finally:
        venv.close()

    seconds = time.perf_counter() - t0
    per_1000 = learn_seconds / done * 1000.0 if done else float("nan")
    meta = {
        "algo": algo,
        "env": env_id,
        "env_kwargs": env_kwargs,
        "seed": seed,
        "requested_timesteps": timesteps,
        "timesteps": done,
        "n_envs": n_envs,
        "vec": vec,
        "ppo_kwargs": kwargs,
        "checkpoint_every": checkpoint_every,
        "seconds": seconds,
        "learn_seconds": learn_seconds,
        "seconds_per_1000_steps": per_1000,
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    meta_path = out / "policy.json"
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return {
        "path": str(path),
        "meta_path": str(meta_path),
        "checkpoints": str(ckpt_dir),
        "out_dir": str(out),
        "timesteps": done,
        "requested_timesteps": timesteps,
        "seconds": seconds,
        "learn_seconds": learn_seconds,
        "seconds_per_1000_steps": per_1000,
    }


def _cmd_train_teacher(args: Any) -> int:
    res = train_teacher(
        env_id=args.env,
        algo=args.algo,
        timesteps=args.timesteps,
        n_envs=args.n_envs,
        seed=args.seed,
        out_dir=args.out,
        env_kwargs=args.env_kwargs,
        vec=args.vec,
        checkpoint_every=args.checkpoint_every,
        ppo_kwargs=args.ppo_kwargs,
        verbose=0 if args.quiet else 1,
    )
    print(
        f"saved policy to {res['path']} ({res['timesteps']} env steps in {res['seconds']:.1f} s, "
        f"{res['seconds_per_1000_steps']:.1f} s per 1000 env steps); checkpoints in {res['checkpoints']}"
    )
    print(f"use it as the teacher 'ppo:{res['path']}', e.g. distillgym run --teacher ppo:{res['path']}")
    return 0


def add_train_teacher_parser(subparsers: Any) -> Any:
    """Add the ``train-teacher`` subcommand to a ``distillgym`` argparse subparsers object."""
    from distillgym.cli import _json_arg

    p = subparsers.add_parser(
        "train-teacher",
        help="train a learned teacher (Stable-Baselines3 PPO) and save it as OUT/policy.zip",
        description="Train a PPO teacher on N envs in spawned worker processes; the result is the teacher 'ppo:OUT/policy.zip'.",
    )
    p.add_argument("--env", default=DEFAULT_ENV)
    p.add_argument("--algo", default="ppo", help=f"RL algorithm; one of {list(ALGOS)}")
    p.add_argument("--timesteps", type=int, required=True, help="env steps to train for, summed over the envs")
    p.add_argument("--n-envs", type=int, default=2,
                   help="envs run in parallel (one worker process each; with --vec native, one population member each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default runs/ppo-<env>-<seed>-<time>)")
    p.add_argument("--env-kwargs", type=_json_arg, default=None, help="JSON object of env constructor arguments")
    p.add_argument("--ppo-kwargs", type=_json_arg, default=None, help="JSON object overriding PPO hyperparameters")
    p.add_argument("--vec", default="subproc",
                   help=f"vectorised env kind; one of {list(VEC_KINDS)} (native: one population of students, "
                        "v2 ids such as distillgym/ArithSkills-v2)")
    p.add_argument("--checkpoint-every", type=int, default=1024, help="save a checkpoint every N env steps")
    p.add_argument("--quiet", action="store_true", help="do not print SB3's training log")
    p.set_defaults(fn=_cmd_train_teacher)
    return p
