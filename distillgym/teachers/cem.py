"""A learned teacher: a linear per-cell mix policy saved by ``distillgym train-teacher --algo cem``.

The prefix ``cem:`` is registered in :data:`distillgym.teachers.PREFIXES`, so
``make_teacher("cem:runs/cem-.../policy.json")`` plays that policy (``PATH`` may also be the
training folder, whose ``policy.json`` is used). The policy
(:class:`distillgym.train.mix_policy.LinearMixPolicy`) scores every action entry (a cell, or a
cell and source) from the per-cell features of :mod:`distillgym.train.mix_policy`, rebuilt here from
the env's reset ``info`` and updated with each observation and ``info`` the teacher is shown,
exactly as the trainer computed them, so the teacher plays the trained policy's actions bit for bit.
It is deterministic (no sampling): the seed is not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.teachers.base import BaseTeacher

__all__ = ["CEMTeacher", "resolve_cem_path"]

_HINT = "train one with `distillgym train-teacher --algo cem --env ID --out DIR` and pass 'cem:DIR/policy.json'"


def resolve_cem_path(path: str | Path) -> Path:
    """``PATH``, ``PATH.json`` or ``PATH/policy.json``, whichever is a file; else
    :class:`UnknownNameError` naming the path and how to make one."""
    if not str(path):
        raise UnknownNameError(f"teacher 'cem:' needs a path to a saved policy, e.g. 'cem:runs/cem/policy.json'; {_HINT}")
    p = Path(path).expanduser()
    for cand in (p, p.with_name(p.name + ".json"), p / "policy.json"):
        if cand.is_file():
            return cand
    raise UnknownNameError(f"no saved CEM policy at {str(path)!r} (file not found); {_HINT}")


class CEMTeacher(BaseTeacher):
    """A trained linear mix policy (``cem:PATH``); see the module docstring.

    ``last_decision`` holds the step's mix and the policy's largest weights (for reports)."""

    name = "cem"
    levels: tuple[str, ...] = ("mix",)

    def __init__(self, path: str | Path) -> None:
        from distillgym.train.mix_policy import LinearMixPolicy

        self.path = resolve_cem_path(path)
        self.name = f"cem:{path}"
        self.policy, self.record = LinearMixPolicy.load(self.path)
        self.levels = (str(self.record.get("level") or "mix"),)
        self._features: Any = None
        self._fresh = False

    def _trained_on(self) -> str:
        env = self.record.get("env")
        return f" (it was trained on {env!r} with env kwargs {self.record.get('env_kwargs')})" if env else ""

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        from distillgym.train.mix_policy import MixFeatures

        super().reset(action_space, info, seed)
        try:
            self._features = MixFeatures.from_info(info, self.policy.groups)
        except ConfigError as err:
            raise ConfigError(f"the CEM policy at {str(self.path)!r} cannot play this env: {err}{self._trained_on()}") from None
        self.policy.check_env(self._features, f" at {str(self.path)!r}{self._trained_on()}")
        self._info = info
        shape = tuple(getattr(action_space, "shape", ()) or ())
        if shape != self._features.shape:
            raise ConfigError(f"the CEM policy at {str(self.path)!r} acts on shape {self._features.shape} but this env's "
                              f"action space is {action_space!r}{self._trained_on()}")
        self._fresh = True

    def observe(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        """The features of this step (the first call after ``reset`` starts the episode's
        features from the reset observation and info; each later call advances them one step)."""
        if self._features is None:
            raise ConfigError("call reset() before act()")
        if self._fresh:
            from distillgym.train.mix_policy import MixFeatures

            self._fresh = False
            if isinstance(observation, dict) and "target" in observation:  # weights shown in the observation
                self._features = MixFeatures.from_info(self._info, self.policy.groups, observation)
                self.policy.check_env(self._features, f" at {str(self.path)!r}{self._trained_on()}")
            return self._features.reset(observation, info)
        return self._features.step(observation, info)

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        phi = self.observe(observation, info)
        p = self.policy.mix(phi)
        self.last_decision = {"mix": p.round(4).tolist()}
        return self.policy.act(phi)
