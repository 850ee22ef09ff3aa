"""A learned teacher: a Stable-Baselines3 PPO policy saved by ``distillgym train-teacher``.

The prefix ``ppo:`` is registered in :data:`distillgym.teachers.PREFIXES`, so
``make_teacher("ppo:runs/ppo-.../policy.zip")`` loads that policy. ``PATH`` may also be the
training output folder (its ``policy.zip`` is used) or the path without ``.zip``.

A policy trained on observation features (``train_teacher(features="cells-v1")``, recorded as
``features`` in the ``policy.json`` beside the zip) sees the same features here: the teacher
builds a :class:`distillgym.train.features.CellFeatures` from the env's reset ``info`` and updates it
with each observation and ``info`` it is shown. The teacher acts at the level of the policy's
action space (``MultiDiscrete``: cell; ``Box``: mix), so the runner adapts it only where needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, require
from distillgym.teachers.base import BaseTeacher

__all__ = ["PPOTeacher", "resolve_policy_path"]

_HINT = "train one with `distillgym train-teacher --timesteps N --out DIR` and pass 'ppo:DIR/policy.zip'"


def resolve_policy_path(path: str | Path) -> Path:
    """``PATH``, ``PATH.zip`` or ``PATH/policy.zip``, whichever is a file; else
    :class:`UnknownNameError` naming the path and how to make one."""
    if not str(path):
        raise UnknownNameError(
            f"teacher 'ppo:' needs a path to a saved policy, e.g. 'ppo:runs/ppo/policy.zip'; {_HINT}"
        )
    p = Path(path).expanduser()
    for cand in (p, p.with_name(p.name + ".zip"), p / "policy.zip"):
        if cand.is_file():
            return cand
    raise UnknownNameError(f"no saved PPO policy at {str(path)!r} (file not found); {_HINT}")


def _same_action_space(a: Any, b: Any) -> bool:
    from gymnasium import spaces

    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.MultiDiscrete):
        return a.nvec.shape == b.nvec.shape and bool(np.all(a.nvec == b.nvec))
    if isinstance(a, spaces.Discrete):
        return int(a.n) == int(b.n) and int(a.start) == int(b.start)
    return a == b


class PPOTeacher(BaseTeacher):
    """A trained Stable-Baselines3 PPO policy (``ppo:PATH``); greedy unless ``deterministic=False``.

    With ``deterministic=False`` actions are sampled from the policy, from a torch random
    state of the teacher's own seeded at ``reset`` (the process's global torch RNG, which the
    student may use, is left untouched)."""

    name = "ppo"
    levels: tuple[str, ...] = ("cell",)

    def __init__(self, path: str | Path, deterministic: bool = True, device: str = "cpu") -> None:
        self.path = resolve_policy_path(path)
        self.deterministic = bool(deterministic)
        self.name = f"ppo:{path}"
        require("stable_baselines3", "the 'ppo:' teacher", "sb3")
        from distillgym.train.policies import load_ppo

        try:
            self.model = load_ppo(self.path, device=device)
        except Exception as err:  # a zip that is not an SB3 PPO save, or a corrupt one
            raise ConfigError(
                f"cannot load a PPO policy from {str(self.path)!r}: {type(err).__name__}: {err}; {_HINT}"
            ) from None
        meta_path = self.path.with_suffix(".json")
        self.meta: dict[str, Any] = {}
        if meta_path.is_file():
            try:
                self.meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                self.meta = {}
        self._torch_state: Any = None
        self._checked_obs = False
        from gymnasium import spaces

        self.levels = ("mix",) if isinstance(self.model.action_space, spaces.Box) else ("cell",)
        self.features_name: str | None = self.meta.get("features")
        keys = set(getattr(self.model.observation_space, "spaces", {}) or {})
        if self.features_name is None and keys == {"cells", "global"}:
            self.features_name = "cells-v1"  # a policy.json-less copy of a cells-v1 policy
        self._features: Any = None
        self._fresh = False

    def _trained_on(self) -> str:
        if not self.meta:
            return ""
        return f" (it was trained on {self.meta.get('env')!r} with env kwargs {self.meta.get('env_kwargs')})"

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        if not _same_action_space(self.model.action_space, action_space):
            raise ConfigError(
                f"the PPO policy at {str(self.path)!r} has action space {self.model.action_space!r} but "
                f"this env's is {action_space!r}{self._trained_on()}; train a teacher on this env's "
                "configuration (`distillgym train-teacher --env ... --env-kwargs ...`)"
            )
        self._checked_obs = False
        if self.features_name is not None:
            from distillgym.train.features import make_features

            self._features = make_features(self.features_name, info)
            self._fresh = True
        if not self.deterministic:
            import torch

            gen = torch.Generator()
            gen.manual_seed(int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**63))
            self._torch_state = gen.get_state()

    def _check_obs(self, observation: Any) -> None:
        space = self.model.observation_space
        keys = getattr(space, "spaces", None)
        if keys is not None and isinstance(observation, dict):
            want = {k: tuple(s.shape) for k, s in keys.items()}
            got = {k: tuple(np.shape(v)) for k, v in observation.items()}
            if want != got:
                raise ConfigError(
                    f"the PPO policy at {str(self.path)!r} expects observations {want} but the env gives {got}"
                    f"{self._trained_on()}"
                )
        self._checked_obs = True

    def observe(self, observation: Any, info: dict[str, Any]) -> Any:
        """What the policy sees: the env's observation, or its features (the first call after
        ``reset`` starts the episode's features from the reset observation and info; each later
        call advances them by one step)."""
        if self._features is None:
            return observation
        if self._fresh:
            self._fresh = False
            return self._features.reset(observation, info)
        return self._features.step(observation, info)

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        observation = self.observe(observation, info)
        if not self._checked_obs:
            self._check_obs(observation)
        if self.deterministic:
            action, _ = self.model.predict(observation, deterministic=True)
            return np.asarray(action)
        import torch

        with torch.random.fork_rng(devices=[]):
            if self._torch_state is not None:
                torch.set_rng_state(self._torch_state)
            action, _ = self.model.predict(observation, deterministic=False)
            self._torch_state = torch.get_rng_state()
        return np.asarray(action)

