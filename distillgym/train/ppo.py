"""Train a learned teacher with Stable-Baselines3 (PPO) on a distillgym environment.

``train_teacher(...)`` trains PPO on ``n_envs`` copies of the env, each in its own spawned worker
process (``SubprocVecEnv(start_method="spawn")``, one torch thread per worker) or, with
``vec="native"``, as one native vector env whose students are one population (``--vec native
--n-envs N`` on the command line). It writes to ``OUT/``:

- ``policy.zip`` (the final policy) and ``policy.json`` (env id and kwargs, features, policy,
  hyperparameters, timesteps, seed, seconds, hardware, package versions, the command);
- ``checkpoints/ppo_<T>_steps.zip``: after the first PPO update at least ``checkpoint_every`` env
  steps after the previous checkpoint, and at the end (T env steps done, the policy updated on all
  of them; every one is kept);
- ``run.json`` (the run's configuration, written first, so ``resume=True`` can check it);
- ``curve.csv`` (one row per finished training episode: env steps so far, the sub-env, the
  episode return, its first and last validation accuracy and its hidden-test accuracy),
  ``updates.csv`` (one row per PPO update: approximate KL, clip fraction, losses, the policy's
  action standard deviation) and ``curve.png`` (both drawn, see :func:`plot_training_curve`).

The policy is then a teacher named ``ppo:OUT/policy.zip`` (see :mod:`distillgym.teachers.ppo`),
which rebuilds the observation features named in ``policy.json``. ``distillgym train-teacher``
(:mod:`distillgym.harness.cli`) is the command line.

Options beyond SB3's:

- ``features="cells-v1"``: the policy observes :mod:`distillgym.train.features`' features (accuracy
  and loss per cell with their last change, data received per cell, steps since, budget used)
  instead of the env's raw observation (:class:`distillgym.train.policies.VecFeatures` on the vector env);
- ``policy="cellwise"``: :class:`distillgym.train.policies.CellwisePolicy`, weights shared across cells
  (mix level, ``cells-v1`` features); ``"MultiInputPolicy"`` is SB3's MLP;
- ``timesteps=0`` saves the untrained initial policy (the control that shows what training added);
- ``resume=True`` continues from the latest checkpoint in ``OUT/checkpoints`` (same configuration;
  the envs restart their episodes with new seeds) up to ``timesteps`` in all;
- ``max_seconds``: stop before a rollout that would end after this much wall time (the policy
  of the last finished update is saved), so a run fits a time slot.

Default PPO hyperparameters (``DEFAULT_PPO_KWARGS``; every one can be overridden with
``ppo_kwargs``), chosen for an env whose episodes are short (24 steps by default) and whose
steps are expensive (seconds of student training each) while PPO updates are cheap:

- ``n_steps=32`` per env: one rollout holds whole episodes (64 transitions with 2 envs)
  instead of waiting 2,048 env steps per env;
- ``batch_size=32``: two minibatches per epoch with 2 envs; ``n_epochs=10`` (SB3's default);
- ``gamma=1.0``: the benchmark's objective is the final accuracy, i.e. the undiscounted sum of
  the ``delta_mean`` rewards over a fixed-length episode, and the budget used is in the
  observation so the value function can tell how much of the episode is left;
  ``gae_lambda=0.95`` still trades bias for variance;
- ``ent_coef=0.01``: a little entropy bonus keeps the 7 x 4 action grid explored early;
- ``learning_rate=3e-4``, ``clip_range=0.2``, the default ``[64, 64]`` MLP: SB3's defaults;
- ``device="cpu"``: the policy is a small MLP; a GPU only adds transfer time (the students'
  device is the env's ``device`` argument, ``--device`` on the command line).
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

from distillgym.envs import DEFAULT_ENV
from distillgym.errors import ConfigError, UnknownNameError, check_int, check_number, did_you_mean, require

__all__ = [
    "ALGOS",
    "DEFAULT_PPO_KWARGS",
    "VEC_KINDS",
    "POLICY_NAMES",
    "CURVE_FILE",
    "UPDATES_FILE",
    "train_teacher",
    "latest_checkpoint",
    "read_curve",
    "plot_training_curve",
    "EnvFactory",
]

ALGOS = ("ppo",)
VEC_KINDS = ("subproc", "dummy", "native")
POLICY_NAMES = ("MultiInputPolicy", "cellwise")
CURVE_FILE = "curve.csv"
UPDATES_FILE = "updates.csv"
RESUME_SEED_OFFSET = 10007
"""On resume the envs are reseeded with ``seed + RESUME_SEED_OFFSET + timesteps done`` (never a
benchmark seed below 10007), so the episodes after a resume are new ones."""

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
# What a resumed run must share with the run it continues (run.json).
_RUN_KEYS = ("algo", "env", "env_kwargs", "n_envs", "vec", "ppo_kwargs", "features", "policy", "policy_kwargs", "seed")


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


def _check_env(env_id: str, env_kwargs: dict[str, Any]) -> str:
    """Make the env once in this process so a bad id or bad kwargs fail here with a clear
    message, not as a broken pipe from a worker; returns the env's action level."""
    import gymnasium as gym

    import distillgym  # noqa: F401
    from distillgym.envs import ENV_IDS

    if env_id not in gym.registry:
        raise UnknownNameError(f"unknown env {env_id!r}: {did_you_mean(env_id, ENV_IDS)}")
    try:
        env = gym.make(env_id, **env_kwargs)
    except TypeError as err:  # an unexpected keyword argument
        raise ConfigError(f"bad env kwargs {env_kwargs!r} for {env_id!r}: {err}") from None
    level = getattr(getattr(env.unwrapped, "level", None), "name", "")
    env.close()
    return level


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


def run_hardware(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Where the run ran: CPU count, torch threads, the students' device (and GPU name), load average."""
    import torch

    out: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": bool(torch.cuda.is_available()),
        "student_device": env_kwargs.get("device", "auto"),
    }
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    if hasattr(os, "getloadavg"):
        out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out


def default_out_dir(env_id: str, seed: int, algo: str = "ppo") -> str:
    """``runs/<algo>-<env>-<seed>-<YYYYmmdd-HHMMSS>`` with the env id made file-name safe."""
    env = re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id)
    return os.path.join("runs", f"{algo}-{env}-{seed}-{time.strftime('%Y%m%d-%H%M%S')}")


def latest_checkpoint(out_dir: str | os.PathLike[str], algo: str = "ppo") -> Path | None:
    """The checkpoint ``OUT/checkpoints/<algo>_<T>_steps.zip`` with the largest T, or None."""
    best: tuple[int, Path] | None = None
    for p in (Path(out_dir) / "checkpoints").glob(f"{algo}_*_steps.zip"):
        m = re.fullmatch(rf"{re.escape(algo)}_(\d+)_steps\.zip", p.name)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), p)
    return best[1] if best else None


def _make_venv(env_id: str, n_envs: int, env_kwargs: dict[str, Any], vec: str, features: str | None) -> Any:
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

    if vec == "native":
        from distillgym.train.sb3_vec_env import make_native_vec_env

        venv: Any = make_native_vec_env(env_id, n_envs, env_kwargs)
    elif vec == "subproc":
        fns = [EnvFactory(env_id, env_kwargs, torch_threads=1) for _ in range(n_envs)]
        venv = SubprocVecEnv(fns, start_method="spawn")
    else:
        venv = DummyVecEnv([EnvFactory(env_id, env_kwargs) for _ in range(n_envs)])
    if features is not None:
        from distillgym.train.policies import VecFeatures

        venv = VecFeatures(venv, features)
    if vec == "native":  # the subproc and dummy envs are Monitor-wrapped one by one
        venv = VecMonitor(venv)
    return venv


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
    features: str | None = None,
    policy: str = "MultiInputPolicy",
    policy_kwargs: dict[str, Any] | None = None,
    resume: bool = False,
    max_seconds: float | None = None,
    torch_threads: int | None = None,
    command: str | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """Train a PPO teacher and save it; returns a JSON-able summary.

    ``timesteps`` counts env steps summed over the ``n_envs`` envs; PPO always finishes the
    rollout it is in, so it runs ``ceil(timesteps / (n_steps * n_envs))`` whole rollouts (the
    summary's ``timesteps`` is the number actually run); 0 saves the initial policy untrained.
    ``checkpoint_every`` is in env steps too (checked after each update). ``vec="subproc"``
    runs each env in a spawned process with one torch thread; ``"dummy"`` runs them one after
    another in this process; ``"native"`` runs them as one native vector env in this process, the
    ``n_envs`` students one population on one device (``env_kwargs["device"]``, GPU when present;
    only ids with a vector entry point, e.g. ``distillgym/ArithMix-v2``; see :mod:`distillgym.vector`
    and :mod:`distillgym.train.sb3_vec_env`). ``features``, ``policy``, ``policy_kwargs`` (SB3's, plus
    ``hidden`` for the cell-wise policy), ``resume`` and ``max_seconds``: see the module docstring.
    ``torch_threads``: ``torch.set_num_threads`` in this process (the native env trains its
    students here). ``command``: the command line recorded in ``policy.json``. ``plot``: draw
    ``curve.png`` (needs matplotlib; skipped with a note in the summary when it is missing).

    Returns ``{"path", "meta_path", "checkpoints", "out_dir", "timesteps",
    "requested_timesteps", "seconds", "learn_seconds", "seconds_per_1000_steps", "resumed_from",
    "stopped_by_time", "curve_png"}``, where ``seconds`` is the whole call (worker start-up and
    saving included) and ``seconds_per_1000_steps`` is ``learn_seconds`` (PPO's ``learn``:
    rollouts and updates, this call's) per 1,000 env steps run in this call."""
    t0 = time.perf_counter()
    if algo not in ALGOS:
        raise UnknownNameError(f"unknown algorithm {algo!r}: {did_you_mean(algo, ALGOS)}")
    if vec not in VEC_KINDS:
        raise UnknownNameError(f"unknown vec {vec!r}: {did_you_mean(vec, VEC_KINDS)}")
    check_int("", "timesteps", timesteps, 0)
    for name, v in (("n_envs", n_envs), ("checkpoint_every", checkpoint_every)):
        check_int("", name, v, 1)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if policy not in POLICY_NAMES:
        raise UnknownNameError(f"unknown policy {policy!r}: {did_you_mean(str(policy), POLICY_NAMES)}")
    if features is not None:
        from distillgym.train.features import FEATURES

        if features not in FEATURES:
            raise UnknownNameError(f"unknown feature set {features!r}: {did_you_mean(str(features), FEATURES)}")
    if policy == "cellwise" and features is None:
        raise ConfigError("policy='cellwise' reads the 'cells-v1' features; pass features='cells-v1' (--features cells-v1)")
    if max_seconds is not None:
        check_number("", "max_seconds", max_seconds, 0.0)
    if torch_threads is not None:
        check_int("", "torch_threads", torch_threads, 1)
    env_kwargs = dict(env_kwargs or {})
    kwargs = {**DEFAULT_PPO_KWARGS, **(ppo_kwargs or {})}
    for reserved in ("policy", "env", "seed", "policy_kwargs"):
        if reserved in kwargs:
            raise ConfigError(f"ppo_kwargs must not set {reserved!r}; it is an argument of train_teacher")
    pkwargs = dict(policy_kwargs or {})
    require("stable_baselines3", "training a learned teacher", "sb3")
    level = _check_env(env_id, env_kwargs)
    if policy == "cellwise" and level != "mix":
        raise ConfigError(f"policy='cellwise' acts at the mix level, but {env_id!r} is a {level!r} env; use e.g. "
                          "distillgym/ArithMix-v2")
    if torch_threads is not None:
        import torch

        torch.set_num_threads(int(torch_threads))

    from stable_baselines3 import PPO

    from distillgym.train.policies import POLICIES, TrainingLog, load_ppo

    out = Path(out_dir if out_dir is not None else default_out_dir(env_id, seed, algo))
    ckpt_dir = out / "checkpoints"
    run = {"algo": algo, "env": env_id, "env_kwargs": env_kwargs, "n_envs": n_envs, "vec": vec, "ppo_kwargs": kwargs,
           "features": features, "policy": policy, "policy_kwargs": pkwargs, "seed": seed}
    run = json.loads(json.dumps(run))
    start_ckpt = latest_checkpoint(out, algo) if resume else None
    run_path = out / "run.json"
    if start_ckpt is not None and run_path.is_file():
        before = json.loads(run_path.read_text())
        diff = [k for k in _RUN_KEYS if before.get(k) != run.get(k)]
        if diff:
            raise ConfigError(
                f"cannot resume {str(out)!r}: its run.json differs in {diff} (was "
                f"{ {k: before.get(k) for k in diff} }, now { {k: run.get(k) for k in diff} }); resume with the same "
                "arguments or train into a new --out folder"
            )
    elif not resume and latest_checkpoint(out, algo) is not None:
        raise ConfigError(f"{str(out)!r} already holds checkpoints of a run; pass resume=True (--resume) to continue it "
                          "or choose a new --out folder")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    run_path.write_text(json.dumps(run, indent=2) + "\n")
    hardware_start = run_hardware(env_kwargs)

    venv = _make_venv(env_id, n_envs, env_kwargs, vec, features)
    stopped_by_time = False
    try:
        if start_ckpt is not None:
            model = load_ppo(start_ckpt, env=venv, device=kwargs.get("device", "auto"))
            model._last_obs = None  # the saved observation belongs to envs that no longer exist: reset them
            model.set_random_seed(seed + RESUME_SEED_OFFSET + int(model.num_timesteps))
        else:
            try:
                model = PPO(POLICIES[policy], venv, seed=seed, verbose=verbose, policy_kwargs=pkwargs or None, **kwargs)
            except TypeError as err:
                raise ConfigError(f"bad ppo_kwargs {ppo_kwargs!r} or policy_kwargs {policy_kwargs!r}: {err}") from None
        done_before = int(model.num_timesteps)
        log = TrainingLog(out, max_seconds=max_seconds, checkpoint_every=checkpoint_every, prefix=algo)
        t_learn = time.perf_counter()
        if timesteps > done_before:
            model.learn(total_timesteps=timesteps - done_before, callback=log, reset_num_timesteps=start_ckpt is None)
        learn_seconds = time.perf_counter() - t_learn
        stopped_by_time = log.stopped
        if stopped_by_time and log.updated_on is not None:
            model.num_timesteps = log.updated_on  # the discarded partial rollout taught the policy nothing
        path = out / "policy.zip"
        model.save(path)
        done = int(model.num_timesteps)
        if stopped_by_time and not (ckpt_dir / f"{algo}_{done}_steps.zip").is_file():
            model.save(ckpt_dir / f"{algo}_{done}_steps.zip")  # so a resume continues from this policy
    finally:
        venv.close()

    seconds = time.perf_counter() - t0
    ran = done - done_before
    per_1000 = learn_seconds / ran * 1000.0 if ran else float("nan")
    meta_path = out / "policy.json"
    previous = json.loads(meta_path.read_text()) if start_ckpt is not None and meta_path.is_file() else {}
    segments = list(previous.get("segments", []))
    segments.append({"from_timesteps": done_before, "to_timesteps": done, "learn_seconds": learn_seconds,
                     "seconds": seconds, "stopped_by_time": stopped_by_time,
                     "resumed_from": str(start_ckpt) if start_ckpt else None,
                     "load_average_start": hardware_start.get("load_average"),
                     "load_average_end": run_hardware(env_kwargs).get("load_average")})
    meta = {
        **run,
        "requested_timesteps": timesteps,
        "timesteps": done,
        "checkpoint_every": checkpoint_every,
        "seconds": sum(s["seconds"] for s in segments),
        "learn_seconds": sum(s["learn_seconds"] for s in segments),
        "seconds_per_1000_steps": per_1000,
        "segments": segments,
        "max_seconds": max_seconds,
        "command": command,
        "hardware": hardware_start,
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    curve_png: str | None = None
    if plot and (out / CURVE_FILE).is_file():
        try:
            curve_png = str(plot_training_curve(out))
        except ConfigError as err:  # matplotlib missing: the CSVs are still there
            curve_png = f"(not drawn: {err})"
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
        "resumed_from": str(start_ckpt) if start_ckpt else None,
        "stopped_by_time": stopped_by_time,
        "curve_png": curve_png,
    }


# ---------------------------------------------------------------------------- the training curve
def read_curve(out_dir: str | os.PathLike[str], name: str = CURVE_FILE) -> list[dict[str, float]]:
    """Rows of ``OUT/curve.csv`` (or ``updates.csv``) as dicts of floats (empty cells NaN)."""
    p = Path(out_dir) / name
    if not p.is_file():
        raise ConfigError(f"no {name} in {str(out_dir)!r}; it is written by train_teacher while it trains")
    rows = []
    with open(p, newline="") as f:
        for row in csv.DictReader(f):
            rows.append({k: float(v) if v not in ("", None) else math.nan for k, v in row.items()})
    return rows


def _rolling(y: list[float], k: int) -> list[float]:
    out = []
    for i in range(len(y)):
        w = [v for v in y[max(0, i - k + 1): i + 1] if math.isfinite(v)]
        out.append(sum(w) / len(w) if w else math.nan)
    return out


def plot_training_curve(out_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None,
                        window: int = 8) -> Path:
    """Draw ``OUT/curve.png`` from ``curve.csv`` and ``updates.csv``; returns its path.

    Three panels against env steps: (1) each training episode's return (points) and the mean of
    the last ``window`` episodes (line); (2) each episode's final validation accuracy and hidden
    test accuracy, with the same rolling means; (3) per PPO update, the policy's mean action
    standard deviation and the approximate KL divergence of the update (right axis)."""
    from distillgym.runtime import pyplot

    rows = read_curve(out_dir)
    updates = read_curve(out_dir, UPDATES_FILE) if (Path(out_dir) / UPDATES_FILE).is_file() else []
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 9.5), sharex=True)
    x = [r["timesteps"] for r in rows]
    ax = axes[0]
    ret = [r["return"] for r in rows]
    ax.scatter(x, ret, s=10, alpha=0.45, label="episode return (A_T - A_0, validation)")
    ax.plot(x, _rolling(ret, window), color="C0", label=f"mean of last {window} episodes")
    ax.set_ylabel("return")
    ax.legend(loc="best", fontsize=8)
    ax = axes[1]
    for key, colour, label in (("val_accuracy_end", "C1", "final validation accuracy"),
                               ("test_accuracy", "C2", "final hidden-test accuracy")):
        y = [r[key] for r in rows]
        ax.scatter(x, y, s=10, alpha=0.35, color=colour)
        ax.plot(x, _rolling(y, window), color=colour, label=f"{label} (mean of last {window})")
    ax.set_ylabel("accuracy (mean over cells)")
    ax.legend(loc="best", fontsize=8)
    ax = axes[2]
    if updates:
        ux = [u["timesteps"] for u in updates]
        ax.plot(ux, [u.get("std", math.nan) for u in updates], marker=".", color="C3", label="action std (mean)")
        ax.set_ylabel("action std", color="C3")
        ax2 = ax.twinx()
        ax2.plot(ux, [u.get("approx_kl", math.nan) for u in updates], marker=".", color="C4", label="approx KL")
        ax2.set_ylabel("approx KL per update", color="C4")
    ax.set_xlabel("env steps (summed over sub-envs)")
    meta_p = Path(out_dir) / "policy.json"
    title = str(out_dir)
    if meta_p.is_file():
        meta = json.loads(meta_p.read_text())
        title = (f"{meta.get('env')} {meta.get('policy')} / {meta.get('features')}: {meta.get('timesteps')} env steps, "
                 f"{meta.get('n_envs')} envs, {meta.get('learn_seconds', 0) / 3600:.2f} h")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path) if path is not None else Path(out_dir) / "curve.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
