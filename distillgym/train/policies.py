"""Stable-Baselines3 parts of the learned teacher: the feature wrapper for vector envs and a cell-wise policy.

- :class:`VecFeatures`: an SB3 ``VecEnvWrapper`` that replaces a teaching vector env's
  observations by a feature set of :mod:`distillgym.train.features` (``cells-v1``), one
  :class:`~distillgym.train.features.CellFeatures` per sub-env, for any SB3 vector env (the native one
  of :mod:`distillgym.train.sb3_vec_env`, ``SubprocVecEnv``, ``DummyVecEnv``). A finished sub-env's
  ``terminal_observation`` is converted too, so PPO's bootstrapping sees features.
- :class:`CellwisePolicy`: an actor-critic policy for the ``mix`` level on the ``cells-v1``
  features whose weights are shared across cells (a Deep Sets network). Each cell's input is its
  own features, the global features and a one-hot code of its skill and of its difficulty; an
  encoder maps it to ``hidden`` numbers, the mean of the encodings over the cells is the context,
  and a head maps (encoding, context) to the cell's action mean. The critic has its own encoder,
  mean-pooled, with the global features, into ``hidden`` numbers (SB3's value head on top). The
  action's log standard deviation is one learned number per cell (SB3's state-independent
  Gaussian). Why: the action has one entry per cell (28 on the arithmetic suites) and PPO sees few
  transitions here (an env step costs seconds), so a rule learned for one cell ("more data where
  accuracy moves") applies to every cell, while the one-hot codes still let it treat cells
  differently. The last actor layer starts at 0.01 of SB3's orthogonal scale with zero bias, so the
  untrained policy's mean action is about 0, the equal mix (``w = (a + 1) / 2`` of
  :class:`~distillgym.levels.MixLevel`).

This module imports torch and SB3; :mod:`distillgym.train.ppo` and :mod:`distillgym.teachers.ppo`
import it when needed. A policy saved with :class:`CellwisePolicy` names its class by module path in
the zip, so load saved policies with :func:`load_ppo`: it also loads those pickled before the classes
moved here (``distillgym.policies``, the checked-in ``benchmarks/policies/ppo-mix-v2*``).
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, require

require("stable_baselines3", "the learned teacher's policy and feature wrapper", "sb3")

import torch  # noqa: E402
from gymnasium import spaces  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.policies import MultiInputActorCriticPolicy  # noqa: E402
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor  # noqa: E402
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvWrapper  # noqa: E402
from torch import nn  # noqa: E402

from distillgym.train.features import FEATURES, make_features  # noqa: E402

__all__ = [
    "VecFeatures",
    "CellsExtractor",
    "CellwiseNet",
    "CellwisePolicy",
    "POLICIES",
    "TrainingLog",
    "MOVED_MODULES",
    "load_ppo",
]


# ============================================================================ features on a vector env
class VecFeatures(VecEnvWrapper):
    """Observations of a teaching vector env replaced by the feature set ``features``.

    Each sub-env gets its own :class:`~distillgym.train.features.CellFeatures`, built from its reset
    ``info`` (``reset_infos``: skills, difficulties, budget, examples per step) at every reset
    and updated with each step's observation and ``info``. Put it directly over the base vector
    env (it reads the base's ``reset_infos``); ``VecMonitor`` may go on top."""

    def __init__(self, venv: VecEnv, features: str = "cells-v1") -> None:
        if features not in FEATURES:
            from distillgym.errors import UnknownNameError, did_you_mean

            raise UnknownNameError(f"unknown feature set {features!r}: {did_you_mean(str(features), FEATURES)}")
        space = venv.observation_space
        if not isinstance(space, spaces.Dict) or "accuracy" not in space.spaces:
            raise ConfigError(f"features {features!r} need a teaching env's observation (a Dict with 'accuracy'), got {space}")
        S, D = space["accuracy"].shape
        self.features_name = features
        dummy = {"skills": [f"s{i}" for i in range(S)], "n_difficulties": D, "budget": 1, "examples_per_step": 1}
        super().__init__(venv, observation_space=make_features(features, dummy).observation_space)
        self.trackers: list[Any] = [None] * self.num_envs

    def _base_reset_infos(self) -> list[dict[str, Any]]:
        return list(getattr(self.venv.unwrapped, "reset_infos", [{}] * self.num_envs))

    @staticmethod
    def _one(obs: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
        return {k: v[i] for k, v in obs.items()}

    def _stack(self, feats: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.stack([f[k] for f in feats]) for k in feats[0]}

    def reset(self) -> Any:
        obs = self.venv.reset()
        infos = self._base_reset_infos()
        feats = []
        for i in range(self.num_envs):
            self.trackers[i] = make_features(self.features_name, infos[i])
            feats.append(self.trackers[i].reset(self._one(obs, i), infos[i]))
        return self._stack(feats)

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        reset_infos = self._base_reset_infos()
        feats = []
        for i in range(self.num_envs):
            if dones[i]:
                info = dict(infos[i])
                terminal = info.get("terminal_observation")
                if terminal is not None:
                    info["terminal_observation"] = self.trackers[i].step(terminal, infos[i])
                infos[i] = info
                self.trackers[i] = make_features(self.features_name, reset_infos[i])
                feats.append(self.trackers[i].reset(self._one(obs, i), reset_infos[i]))
            else:
                feats.append(self.trackers[i].step(self._one(obs, i), infos[i]))
        return self._stack(feats), rewards, dones, infos


# ============================================================================ the cell-wise policy
def _cells_shape(observation_space: spaces.Space) -> tuple[int, int, int, int]:
    if (
        not isinstance(observation_space, spaces.Dict)
        or "cells" not in observation_space.spaces
        or "global" not in observation_space.spaces
        or len(observation_space["cells"].shape) != 3
    ):
        raise ConfigError(
            "the cell-wise policy needs the 'cells-v1' features (a Dict with 'cells' (skills, difficulties, "
            f"features) and 'global'); train with features='cells-v1' (--features cells-v1), got {observation_space}"
        )
    S, D, F = observation_space["cells"].shape
    return int(S), int(D), int(F), int(observation_space["global"].shape[0])


class CellsExtractor(BaseFeaturesExtractor):
    """Flattens the ``cells-v1`` dict into one vector: ``cells`` (skill-major cells, then features), then ``global``."""

    def __init__(self, observation_space: spaces.Dict) -> None:
        S, D, F, G = _cells_shape(observation_space)
        super().__init__(observation_space, features_dim=S * D * F + G)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        cells = observations["cells"].flatten(1)
        return torch.cat([cells, observations["global"].flatten(1)], dim=1)


class CellwiseNet(nn.Module):
    """The actor's and critic's bodies (SB3's ``mlp_extractor`` role); see the module docstring.

    ``forward_actor`` returns the action means, one per cell (``latent_dim_pi = n_cells``);
    ``forward_critic`` a ``hidden``-wide latent for SB3's value head."""

    def __init__(self, n_skills: int, n_difficulties: int, n_cell_features: int, n_global: int, hidden: int) -> None:
        super().__init__()
        self.S, self.D, self.F, self.G = n_skills, n_difficulties, n_cell_features, n_global
        self.n = n_skills * n_difficulties
        ident = torch.zeros(self.n, n_skills + n_difficulties)
        for s in range(n_skills):
            for d in range(n_difficulties):
                ident[s * n_difficulties + d, s] = 1.0
                ident[s * n_difficulties + d, n_skills + d] = 1.0
        self.register_buffer("ident", ident)
        width = n_cell_features + n_global + n_skills + n_difficulties
        self.actor_enc = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.actor_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.critic_enc = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.critic_head = nn.Sequential(nn.Linear(hidden + n_global, hidden), nn.Tanh())
        self.latent_dim_pi = self.n
        self.latent_dim_vf = hidden

    def _inputs(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = features.shape[0]
        cells = features[:, : self.n * self.F].reshape(B, self.n, self.F)
        glob = features[:, self.n * self.F :]
        x = torch.cat([cells, glob[:, None, :].expand(B, self.n, self.G), self.ident.expand(B, -1, -1)], dim=-1)
        return x, glob  # x: (B, n_cells, F + G + S + D), glob: (B, G)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        x, _ = self._inputs(features)
        e = self.actor_enc(x)  # (B, n, hidden)
        ctx = e.mean(dim=1, keepdim=True).expand_as(e)
        return self.actor_head(torch.cat([e, ctx], dim=-1)).squeeze(-1)  # (B, n)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        x, glob = self._inputs(features)
        pooled = self.critic_enc(x).mean(dim=1)  # (B, hidden)
        return self.critic_head(torch.cat([pooled, glob], dim=-1))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)


class CellwisePolicy(MultiInputActorCriticPolicy):
    """SB3 actor-critic with :class:`CellwiseNet` (see the module docstring).

    Extra argument: ``hidden`` (width of the encoders and heads, default 64). Every other
    argument is SB3's ``MultiInputActorCriticPolicy``'s (``log_std_init`` among them); ``net_arch``
    is unused. The action space must be the mix level's ``Box`` of shape (skills, difficulties)."""

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.Space, lr_schedule: Any,
                 hidden: int = 64, **kwargs: Any) -> None:
        S, D, _, _ = _cells_shape(observation_space)
        if not isinstance(action_space, spaces.Box) or tuple(action_space.shape) != (S, D):
            raise ConfigError(
                f"the cell-wise policy acts at the mix level (a Box of shape {(S, D)}), got {action_space}; "
                "use an ArithMix env or policy='MultiInputPolicy'"
            )
        if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
            raise ConfigError(f"CellwisePolicy hidden must be a positive integer, got {hidden!r}")
        self.hidden = hidden
        kwargs.setdefault("features_extractor_class", CellsExtractor)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        S, D, F, G = _cells_shape(self.observation_space)
        self.mlp_extractor = CellwiseNet(S, D, F, G, self.hidden).to(self.device)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        # The actor body already gives one mean per cell: no mixing layer on top.
        self.action_net = nn.Identity()
        last = self.mlp_extractor.actor_head[-1]
        nn.init.orthogonal_(last.weight, gain=0.01)
        nn.init.zeros_(last.bias)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["hidden"] = self.hidden
        return data


POLICIES: dict[str, Any] = {"MultiInputPolicy": "MultiInputPolicy", "cellwise": CellwisePolicy}
"""Policy names for ``train_teacher(policy=...)``: SB3's ``MultiInputPolicy`` (an MLP on the
flattened observation) or :class:`CellwisePolicy`."""

MOVED_MODULES: dict[str, str] = {
    "distillgym.policies": "distillgym.train.policies",
    "distillgym.features": "distillgym.train.features",
}
"""Where the classes that saved policies name by module path live now: policies saved before the
package layout of distillgym 0.1's ``train/`` (``policy_class`` pickled as
``distillgym.policies.CellwisePolicy``) load through these aliases."""


def load_ppo(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``stable_baselines3.PPO.load(path, **kwargs)``, with the old module paths of
    :data:`MOVED_MODULES` importable while the zip is unpickled (and only then)."""
    import importlib
    import sys

    from stable_baselines3 import PPO

    added = []
    for old, new in MOVED_MODULES.items():
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(new)
            added.append(old)
    try:
        return PPO.load(path, **kwargs)
    finally:
        for old in added:
            sys.modules.pop(old, None)


# ============================================================================ the training log
CURVE_COLUMNS = ("time", "timesteps", "env", "return", "length", "val_accuracy_start", "val_accuracy_end",
                 "test_accuracy")
"""``curve.csv``: unix time, env steps so far (all sub-envs), the sub-env, the episode's return and
length, its first and last validation accuracy and its hidden-test accuracy (never shown to the policy)."""
UPDATE_COLUMNS = ("time", "timesteps", "n_updates", "approx_kl", "clip_fraction", "entropy_loss",
                  "policy_gradient_loss", "value_loss", "explained_variance", "std", "loss", "learning_rate")
"""``updates.csv``: one row per PPO update, SB3's ``train/`` statistics of that update."""


class TrainingLog(BaseCallback):
    """Appends ``OUT/curve.csv`` (one row per finished episode) and ``OUT/updates.csv`` (one row per
    PPO update) while PPO trains, flushed row by row so a crash loses nothing already written;
    saves ``OUT/checkpoints/<prefix>_<T>_steps.zip`` after an update once ``checkpoint_every`` env
    steps have passed since the last one, and at the end (T = env steps done; the policy saved is
    the one updated on all T steps, so a resume from it loses no update); with ``max_seconds``,
    stops the run before a rollout that would end after that much wall time (judged by the
    previous rollout's duration; the first vectorised step of that rollout is spent, its data
    discarded). ``stopped`` says whether it did."""

    def __init__(self, out_dir: str | os.PathLike[str], max_seconds: float | None = None,
                 checkpoint_every: int | None = None, prefix: str = "ppo") -> None:
        super().__init__(verbose=0)
        self.out_dir = Path(out_dir)
        self.max_seconds = max_seconds
        self.checkpoint_every = checkpoint_every
        self.prefix = prefix
        self._saved_at: int | None = None
        self.updated_on: int | None = None
        """Env steps the current policy has been updated on (set at each rollout start)."""
        self.stopped = False
        self._stop = False
        self._t0 = time.perf_counter()
        self._rollout_t0: float | None = None
        self._last_rollout: float | None = None
        self._logged_updates = -1

    def _open(self, name: str, columns: tuple[str, ...]) -> tuple[Any, Any]:
        path = self.out_dir / name
        new = not path.is_file() or path.stat().st_size == 0
        f = open(path, "a", newline="")
        w = csv.writer(f)
        if new:
            w.writerow(columns)
            f.flush()
        return f, w

    def _on_training_start(self) -> None:
        self._curve_f, self._curve = self._open("curve.csv", CURVE_COLUMNS)
        self._upd_f, self._upd = self._open("updates.csv", UPDATE_COLUMNS)
        self._saved_at = int(self.model.num_timesteps)  # a resumed run starts from a saved checkpoint

    def _checkpoint(self, force: bool = False) -> None:
        t = int(self.model.num_timesteps)
        if self.checkpoint_every is None or t == self._saved_at:
            return
        if force or self._saved_at is None or t - self._saved_at >= self.checkpoint_every:
            d = self.out_dir / "checkpoints"
            d.mkdir(parents=True, exist_ok=True)
            self.model.save(d / f"{self.prefix}_{t}_steps.zip")
            self._saved_at = t

    def _log_update(self) -> None:
        vals = dict(self.model.logger.name_to_value)
        n = vals.get("train/n_updates")
        if n is None or int(n) == self._logged_updates:
            return
        self._logged_updates = int(n)
        row = [time.time(), self.model.num_timesteps, int(n)]
        for key in UPDATE_COLUMNS[3:]:
            v = vals.get(f"train/{key}")
            row.append("" if v is None or not math.isfinite(float(v)) else float(v))
        self._upd.writerow(row)
        self._upd_f.flush()

    def _on_rollout_start(self) -> None:
        self._log_update()
        self._checkpoint()
        self.updated_on = int(self.model.num_timesteps)
        now = time.perf_counter()
        if self._rollout_t0 is not None:
            self._last_rollout = now - self._rollout_t0  # a rollout and the update after it
        self._rollout_t0 = now
        if self.max_seconds is not None and self._last_rollout is not None:
            if now - self._t0 + self._last_rollout > self.max_seconds:
                self._stop = True

    def _on_step(self) -> bool:
        for i, (info, done) in enumerate(zip(self.locals["infos"], self.locals["dones"], strict=True)):
            if not done or "episode" not in info:
                continue
            final = info.get("final") or {}
            self._curve.writerow([
                time.time(), self.model.num_timesteps, i, float(info["episode"]["r"]), int(info["episode"]["l"]),
                final.get("val_accuracy_start", ""), final.get("val_accuracy_end", ""), final.get("test_accuracy", ""),
            ])
            self._curve_f.flush()
        if self._stop:
            self.stopped = True
            return False
        return True

    def _on_training_end(self) -> None:
        self._log_update()
        if not self.stopped:  # a stopped run's num_timesteps counts a discarded partial rollout
            self._checkpoint(force=True)
        self._curve_f.close()
        self._upd_f.close()
