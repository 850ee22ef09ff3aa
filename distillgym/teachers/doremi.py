"""``doremi``: DoReMi's domain reweighting (Xie et al., 2023) against a reference student.

Ported from the authors' code, ``sangmichaelxie/doremi``, ``doremi/trainer.py``
(``DoReMiTrainer.update_domain_weights`` and ``write_weights``, optimizer ``doremiv1``).

**Domains.** A domain is a cell (skill x difficulty): k = 28 for the arithmetic suites.

**Rule**, after every env step t (the code updates after every optimiser step):

1. excess loss per cell: ``lambda_i = clip(loss_i - loss_ref_i(t), 0)``, ``loss_i`` the student's
   validation loss of cell i after step t (``observation["loss"]``) and ``loss_ref_i(t)`` the
   reference's after its own step t; a cell whose loss is missing keeps its previous lambda (the
   code keeps the previous score of a domain absent from the batch);
2. ``log p += eta * lambda``, normalised (log-sum-exp);
3. ``p = (1 - eps) p + eps / k``;
4. the running average of the p's is kept (``avg_domain_weights``: DoReMi's output mix).

The mix starts uniform (the Pile script's initial weights are the data's; ours are equal).

**Differences forced by the env.** DoReMi scores the *training* batch token by token (clip per
token, then the mean over the domain's tokens) against a *fully trained* reference model. The env
gives per-cell means only and a cell gets training data only when the mix gives it some, so the
excess loss is taken on the per-cell mean validation loss, which every cell has every step, and
clipped after the mean. The reference is the same student trained on the ``stratified`` (equal)
mix; with ``reference_at="step"`` (default) step t is compared with the reference after the same
amount of data, t steps (the loss the equal mix would have reached by now); with
``reference_at="final"`` with the reference at the end of its episode, as DoReMi's fixed reference
model. ``play="current"`` (default) trains on the current p, as DoReMi's proxy run does
(the proxy reweights its loss by p; the env can only resample, which gives the same expected
gradient); ``play="average"`` plays the running average, DoReMi's output mix so far.

**Reference** (:func:`reference_curve`). Built from ``info["env_config"]`` at reset: the same env
(``TeachingEnv(**EnvConfig.rebuild_kwargs(config))``, which needs ``config["rebuildable"]``), ``stratified`` for a whole
episode with seed ``reference_seed`` (default :data:`distillgym.seeding.REFERENCE_SEED`, 1,000,000,000; it
must lie in the reserved range :data:`~distillgym.seeding.REFERENCE_SEEDS`, which no benchmark may use, so
the reference shares neither initial weights nor validation items with a benchmark episode), recording the validation
loss per cell after reset and after every step. It is computed once and cached as JSON at
``cache_dir() / "doremi-reference-<hash>.json"``, the hash over the env config and the seed;
delete the file after changing the code of the env or student. Past the reference's last step
(an open-level episode may run longer), its last loss is used. Its training is not charged to the
episode's budget (DoReMi's reference is a separate run).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_choice, check_number
from distillgym.seeding import REFERENCE_SEED, check_reference_seed
from distillgym.teachers.mixing import MixTeacher, val_loss

__all__ = ["DoReMiTeacher", "doremi_update", "reference_curve", "reference_path", "REFERENCE_FORMAT"]

REFERENCE_FORMAT = "distillgym.doremi-reference/1"


def doremi_update(p: np.ndarray, excess: np.ndarray, eta: float, eps: float) -> np.ndarray:
    """One DoReMi step: ``log p + eta * excess``, normalised, then ``(1 - eps) p + eps / k``.
    ``excess`` is the already clipped excess loss per domain."""
    logp = np.log(np.asarray(p, dtype=float)) + eta * np.asarray(excess, dtype=float)
    logp = logp - (logp.max() + np.log(np.exp(logp - logp.max()).sum()))
    return (1.0 - eps) * np.exp(logp) + eps / logp.size


def _config_key(env_config: dict[str, Any], seed: int) -> str:
    from distillgym.config import EnvConfig

    cfg = EnvConfig.rebuild_kwargs(env_config)
    blob = json.dumps({"env_config": cfg, "seed": int(seed), "teacher": "stratified"}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reference_path(env_config: dict[str, Any], seed: int = REFERENCE_SEED) -> Path:
    """Where the reference of ``env_config`` and ``seed`` is cached."""
    from distillgym.runtime import cache_dir

    return cache_dir() / f"doremi-reference-{_config_key(env_config, seed)}.json"


def _run_reference(env_config: dict[str, Any], seed: int) -> list[list[list[float | None]]]:
    """The reference's validation loss per cell after reset and after each step (None: missing)."""
    from distillgym.config import EnvConfig
    from distillgym.env import TeachingEnv
    from distillgym.teachers.adapters import adapt_teacher
    from distillgym.teachers.mixing import StratifiedTeacher

    env = TeachingEnv(**EnvConfig.rebuild_kwargs(env_config))
    try:
        obs, info = env.reset(seed=seed)
        if "val_loss" not in info:
            raise ConfigError("DoReMi needs the validation loss per cell; build the env with report_loss=True")
        teacher = adapt_teacher(StratifiedTeacher(), info["level"])
        teacher.reset(env.action_space, info, seed=seed)
        curve = [info["val_loss"]]
        while True:
            obs, reward, terminated, truncated, info = env.step(teacher.act(obs, info))
            teacher.update(obs, reward, terminated, truncated, info)
            curve.append(info["val_loss"])
            if terminated or truncated:
                return curve
    finally:
        env.close()


def reference_curve(env_config: dict[str, Any], seed: int = REFERENCE_SEED) -> np.ndarray:
    """(T + 1, S, D) validation loss of ``stratified`` on the env of ``env_config`` with ``seed``, after
    reset and after each of its T steps (NaN: missing); computed once, then read from the cache."""
    if not env_config.get("rebuildable", False):
        raise ConfigError(
            "DoReMi's reference student is trained on a copy of the env built from info['env_config'], but this env "
            "is not rebuildable (a suite, student, engine or reward was given as an object); build the env from "
            "names (e.g. gymnasium.make('distillgym/ArithMix-v1')) or use another teacher"
        )
    path = reference_path(env_config, seed)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            if data.get("format") == REFERENCE_FORMAT:
                return np.array(data["val_loss"], dtype=float)
        except (OSError, ValueError):
            pass  # unreadable or partial: recompute below
    curve = _run_reference(env_config, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    record = {"format": REFERENCE_FORMAT, "seed": int(seed), "teacher": "stratified", "env_config": env_config, "val_loss": curve}
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    return np.array(curve, dtype=float)


class DoReMiTeacher(MixTeacher):
    """DoReMi's excess-loss reweighting against a stratified reference student (see the module docstring).

    Arguments: ``eta`` (1.0, step size of the log-weights), ``eps`` (1e-3, smoothing towards the
    uniform mix, the Pile script's value), ``reference_seed`` (:data:`~distillgym.seeding.REFERENCE_SEED`;
    any seed of :data:`~distillgym.seeding.REFERENCE_SEEDS`), ``reference_at`` (``"step"`` or
    ``"final"``), ``play`` (``"current"`` or ``"average"``)."""

    name = "doremi"
    REFERENCE_AT = ("step", "final")
    PLAY = ("current", "average")

    def __init__(
        self,
        eta: float = 1.0,
        eps: float = 1e-3,
        reference_seed: int = REFERENCE_SEED,
        reference_at: str = "step",
        play: str = "current",
    ) -> None:
        self.eta = check_number("DoReMiTeacher", "eta", eta, 0)
        self.eps = check_number("DoReMiTeacher", "eps", eps, 0, 1)
        self.reference_seed = check_reference_seed("DoReMiTeacher reference_seed", reference_seed)
        self.reference_at = check_choice("reference_at", reference_at, self.REFERENCE_AT)
        self.play = check_choice("play", play, self.PLAY)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        if "env_config" not in info:
            raise ConfigError("DoReMi builds its reference from info['env_config'], which this env's reset info lacks")
        self.reference = reference_curve(info["env_config"], self.reference_seed)
        if self.reference.ndim != 3 or self.reference.shape[1:] != self.shape:
            raise ConfigError(
                f"the cached DoReMi reference has shape {self.reference.shape[1:]}, not the env's {self.shape}; "
                f"delete {reference_path(info['env_config'], self.reference_seed)}"
            )
        k = self.shape[0] * self.shape[1]
        self.p = np.full(k, 1.0 / k)
        self.avg = self.p.copy()
        self.updates = 0
        self.scores = np.zeros(k)
        self.steps = 0

    def reference_loss(self, t: int) -> np.ndarray:
        """The reference's flat validation loss to compare with after step ``t``."""
        i = len(self.reference) - 1 if self.reference_at == "final" else min(t, len(self.reference) - 1)
        return self.reference[i].ravel()

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.steps += 1
        loss = val_loss(observation, info)
        if loss is None:
            return
        diff = loss.ravel() - self.reference_loss(self.steps)
        known = np.isfinite(diff)
        self.scores[known] = np.clip(diff[known], 0.0, None)
        self.p = doremi_update(self.p, self.scores, self.eta, self.eps)
        self.updates += 1
        self.avg = (self.avg * (self.updates - 1) + self.p) / self.updates  # write_weights' running mean

    def mix(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        return (self.avg if self.play == "average" else self.p).reshape(self.shape)

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        action = super().act(observation, info)
        self.last_decision["excess_loss"] = self.scores.reshape(self.shape).round(4).tolist()
        return action
