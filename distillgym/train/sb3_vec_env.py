"""A Stable-Baselines3 ``VecEnv`` over the native vector environment.

:func:`make_native_vec_env` builds ``gymnasium.make_vec(id, num_envs=N,
vectorization_mode="vector_entry_point", autoreset_mode="SameStep")`` (one population of
students, see :mod:`distillgym.vector`) and wraps it in :class:`NativeVecEnv`, so SB3 algorithms
(``PPO("MultiInputPolicy", venv)``) train on it directly, without one process per env.

SB3's conventions, and how they are met:

- SB3 resets a finished env within the same step: the native env runs in ``SAME_STEP`` autoreset
  mode, so ``step_wait`` returns the next episode's first observation for a finished env, and its
  info dict holds ``terminal_observation`` (the last observation of the episode that ended) and
  ``TimeLimit.truncated`` (True when the episode was truncated rather than terminated);
- ``step_wait`` returns one plain info dict per env (the sub-env's own ``info``; for a finished
  env, the info of its last step), rewards as float32 and ``dones = terminated | truncated``;
- ``seed(s)`` and ``set_options`` take effect at the next ``reset()`` (sub-env i gets ``s + i``);
  ``reset_infos`` holds the reset infos;
- ``get_attr``, ``set_attr``, ``env_method`` act on the sub-envs; ``env_is_wrapped`` is False
  (sub-envs are not gymnasium-wrapped). Wrap it in SB3's ``VecMonitor`` for episode statistics.

A learned teacher reads the observation and ``info["action"]``, never the text reports, so
:func:`make_native_vec_env` builds the vector env with ``reports=False`` (no sampled errors, no
report text: the same numbers, less work per step) unless ``env_kwargs`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, require

require("stable_baselines3", "the Stable-Baselines3 VecEnv adapter", "sb3")

from gymnasium.vector import AutoresetMode  # noqa: E402
from stable_baselines3.common.vec_env.base_vec_env import VecEnv  # noqa: E402

__all__ = ["NativeVecEnv", "make_native_vec_env"]


class NativeVecEnv(VecEnv):
    """SB3's ``VecEnv`` interface over a :class:`~distillgym.vector.PopulationVectorEnv` in
    ``SAME_STEP`` autoreset mode (see the module docstring)."""

    def __init__(self, venv: Any) -> None:
        if getattr(venv, "autoreset_mode", None) != AutoresetMode.SAME_STEP:
            raise ConfigError(
                "SB3 resets finished envs within the same step: build the native vector env with "
                "autoreset_mode='SameStep' (make_native_vec_env does)"
            )
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: Any = None

    def reset(self) -> Any:
        seeds = list(self._seeds)
        options = self._options
        if any(options):
            if any(o != options[0] for o in options):
                raise ConfigError("the native vector env takes one options dict for all sub-envs at reset")
        obs, _ = self.venv.reset(seed=seeds if any(s is not None for s in seeds) else None,
                                 options=options[0] or None)
        self.reset_infos = [dict(i) for i in self.venv.last_infos]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, rewards, terminated, truncated, _ = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = []
        for i, info in enumerate(self.venv.last_infos):
            if dones[i]:
                out = dict(info["final_info"])
                out["terminal_observation"] = info["final_obs"]
                out["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                self.reset_infos[i] = {k: v for k, v in info.items() if k not in ("final_obs", "final_info")}
            else:
                out = dict(info)
            infos.append(out)
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def _targets(self, indices: Any) -> list[Any]:
        return [self.venv.envs[i] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(env, attr_name) for env in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        for env in self._targets(indices):
            setattr(env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(env, method_name)(*method_args, **method_kwargs) for env in self._targets(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        raise NotImplementedError("the teaching envs render text (render_mode='ansi'), not images")


def make_native_vec_env(env_id: str, n_envs: int, env_kwargs: dict[str, Any] | None = None) -> NativeVecEnv:
    """``NativeVecEnv`` over ``gymnasium.make_vec(env_id, num_envs=n_envs,
    vectorization_mode="vector_entry_point", autoreset_mode="SameStep", **env_kwargs)``."""
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the envs)

    spec = gym.spec(env_id)
    if spec.vector_entry_point is None:
        from distillgym.envs import VECTOR_ENTRY_POINTS

        raise ConfigError(
            f"env {env_id!r} has no native vector env; use one of {sorted(VECTOR_ENTRY_POINTS)} or vec='subproc'"
        )
    kwargs = dict(env_kwargs or {})
    if "autoreset_mode" in kwargs:
        raise ConfigError("make_native_vec_env sets autoreset_mode='SameStep' itself (SB3 needs it)")
    kwargs.setdefault("reports", False)
    venv = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
    return NativeVecEnv(venv.unwrapped)


