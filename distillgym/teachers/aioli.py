"""``aioli``: Aioli (Chen et al., 2024), probing mixes to estimate how each cell lowers the losses, then exponentiated gradient.

Ported from the authors' code, ``HazyResearch/aioli``, ``trainer/aioli_trainer.py``
(``AioliTrainer.learn_params_subroutine`` and ``train``); defaults from its two-domain run
``scripts/arxiv_stackexchange/aioli/run.sh``: ``--eta 0.2 --one_hot_factor 0.625 --ema 0.1
--aioli_normalize_A --lp_rounds 4 --lp_steps 4 --update_steps 250`` of 5,000 steps.

**Domains.** A domain is a cell (skill x difficulty): k = 28 for the arithmetic suites.

**Aioli's round** (every ``update_steps`` optimiser steps): *LearnParams*: for each domain i in a
random order (``lp_rounds`` random permutations), train ``lp_steps`` batches of the near one-hot mix
(``one_hot_factor`` f on i, ``(1 - f) / (k - 1)`` on each other domain) and record the drop of every
domain's validation loss, ``G[:, i] = loss_before - loss_after``; then solve ``W A^T = G^T`` row by
row (``W[i]`` = the probing mix of i) so that ``A[j, l]`` is the effect of training on l on the loss
of j; with ``normalize_A`` shift A by its minimum when negative and divide by its sum; smooth over
rounds, ``A_ema = (1 - ema) A + ema A_ema`` (``ema`` is the weight of the *old* matrix); and train
the rest of the round on ``p = p0 * exp(eta * column sums of A_ema)`` (``p0`` uniform; without
``ema`` the update is cumulative, ``p *= exp(eta * column sums of A)``).

**Our schedule** (the probes are real steps of the episode and spend its budget). One probe is one
env step (2,048 examples, the smallest unit the env trains; Aioli's probe is ``lp_steps`` = 4
batches of 8 sequences). A full sweep of the 28 cells would take 28 probe steps, more than the
whole 24-step episode, so Aioli's per-round sweep cannot be ported as is. Instead the episode is
cut into rounds of ``round_steps`` env steps (4: six rounds of 8,192 examples, against Aioli's 20
rounds of 250 steps), each starting with ``probe_steps`` probe steps (1) and then playing the
current mix: probing takes a quarter of the budget (Aioli's run: 32 of every 250 steps, 13%; one
probe in a round of 8 would match that but probe only 3 cells per episode). The probed cells follow
Aioli's order, successive seeded random permutations of all k cells, so an episode probes 6
different cells. ``G`` keeps each probed cell's latest measurement (``loss_before`` is the
observation before the probe step, ``loss_after`` after it); a cell not yet probed has no
measurement and gets the mean of the probed columns (the average effect: no information either
way), so with one probe all columns are equal and the mix stays uniform. After each round's probes
A is re-solved from G and the weights updated as above. Until the first probe the mix is uniform.
``diagonal=True`` is the code's ``--aioli_diagonal`` (A diagonal, ``A[i, i] = G[i, i] / f``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_bool, check_int, check_number
from distillgym.teachers.mixing import MixTeacher, val_loss

__all__ = ["AioliTeacher", "probe_mix", "solve_graph", "normalize_graph"]


def probe_mix(k: int, i: int, one_hot_factor: float) -> np.ndarray:
    """Aioli's probing mix of domain ``i``: ``one_hot_factor`` on i, the rest spread equally."""
    w = np.full(k, (1.0 - one_hot_factor) / (k - 1))
    w[i] = one_hot_factor
    return w


def solve_graph(G: np.ndarray, one_hot_factor: float, diagonal: bool = False) -> np.ndarray:
    """A from the probe loss drops ``G`` (``G[j, i]``: drop of loss j in the probe of i): each row solves
    ``W a = G[j]`` (``W[i]`` = :func:`probe_mix` of i); one-hot probes (factor 1) give A = G."""
    G = np.asarray(G, dtype=float)
    k = G.shape[0]
    if diagonal:
        return np.diag(np.diag(G) / one_hot_factor)
    if one_hot_factor == 1:
        return G.copy()
    W = np.stack([probe_mix(k, i, one_hot_factor) for i in range(k)])
    return np.linalg.solve(W, G.T).T


def normalize_graph(A: np.ndarray) -> np.ndarray:
    """Aioli's ``aioli_normalize_A``: shift by the minimum entry when it is negative, divide by the sum."""
    A = np.asarray(A, dtype=float).copy()
    if A.min() < 0:
        A -= A.min()
    total = A.sum()
    return A / total if total > 0 else A


class AioliTeacher(MixTeacher):
    """Aioli: probing steps of near one-hot mixes, then exponentiated gradient (see the module docstring).

    Arguments: ``eta`` (0.2, step size), ``one_hot_factor`` (0.625, share of the probed cell, in
    (1/k, 1]), ``ema`` (0.1, weight of the old matrix; None: cumulative update without smoothing),
    ``round_steps`` (4, env steps per round), ``probe_steps`` (1, probe steps at the start of each
    round, 1..round_steps), ``normalize_A`` (True), ``diagonal`` (False)."""

    name = "aioli"

    def __init__(
        self,
        eta: float = 0.2,
        one_hot_factor: float = 0.625,
        ema: float | None = 0.1,
        round_steps: int = 4,
        probe_steps: int = 1,
        normalize_A: bool = True,
        diagonal: bool = False,
    ) -> None:
        self.eta = check_number("AioliTeacher", "eta", eta, 0)
        self.one_hot_factor = check_number("AioliTeacher", "one_hot_factor", one_hot_factor, 0, 1, open_low=True)
        self.ema = None if ema is None else check_number("AioliTeacher", "ema", ema, 0, 1)
        self.round_steps = check_int("AioliTeacher", "round_steps", round_steps, 1)
        self.probe_steps = check_int("AioliTeacher", "probe_steps", probe_steps, 1)
        if self.probe_steps > self.round_steps:
            raise ConfigError(
                f"AioliTeacher probe_steps must be at most round_steps ({self.round_steps}), got {probe_steps!r}"
            )
        self.normalize_A = check_bool("AioliTeacher", "normalize_A", normalize_A)
        self.diagonal = check_bool("AioliTeacher", "diagonal", diagonal)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        self.k = self.shape[0] * self.shape[1]
        if self.one_hot_factor <= 1.0 / self.k:
            raise ConfigError(
                f"AioliTeacher one_hot_factor must be above 1/k = {1.0 / self.k:.4f} for k = {self.k} cells (at or "
                f"below it the probing mixes do not single out a cell), got {self.one_hot_factor!r}"
            )
        self.p0 = np.full(self.k, 1.0 / self.k)
        self.p = self.p0.copy()
        self.G = np.zeros((self.k, self.k))
        self.probed = np.zeros(self.k, dtype=bool)
        self.A_ema: np.ndarray | None = None
        self.order: list[int] = []
        self.steps = 0
        self.rounds = 0
        self.probing: int | None = None
        self.loss_before: np.ndarray | None = None
        self.probe_log: list[int] = []

    def is_probe_step(self, n: int) -> bool:
        """Whether env step ``n`` (0-based) of the episode is a probe step."""
        return n % self.round_steps < self.probe_steps

    def _next_probe(self) -> int:
        if not self.order:
            self.order = [int(i) for i in self.rng.permutation(self.k)]
        return self.order.pop(0)

    def mix(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        if self.is_probe_step(self.steps):
            loss = val_loss(observation, info)
            if loss is not None:
                self.probing = self._next_probe()
                self.loss_before = loss.ravel().copy()
                return probe_mix(self.k, self.probing, self.one_hot_factor).reshape(self.shape)
        self.probing = None
        return self.p.reshape(self.shape)

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        action = super().act(observation, info)
        if self.probing is not None:
            self.last_decision["probe"] = [self.probing // self.n_difficulties, self.probing % self.n_difficulties]
        return action

    def filled_graph(self) -> np.ndarray:
        """G with every not yet probed column set to the mean of the probed ones."""
        G = self.G.copy()
        if self.probed.any() and not self.probed.all():
            G[:, ~self.probed] = G[:, self.probed].mean(axis=1, keepdims=True)
        return G

    def refit(self) -> None:
        """Solve A from the probes so far and take the exponentiated-gradient step (module docstring)."""
        A = solve_graph(self.filled_graph(), self.one_hot_factor, self.diagonal)
        if self.normalize_A:
            A = normalize_graph(A)
        if self.ema is not None:
            self.A_ema = A if self.A_ema is None else (1.0 - self.ema) * A + self.ema * self.A_ema
            x = np.log(self.p0) + self.eta * self.A_ema.sum(axis=0)
        else:
            x = np.log(self.p) + self.eta * A.sum(axis=0)
        w = np.exp(x - x.max())
        self.p = w / w.sum()
        self.rounds += 1

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        n = self.steps
        self.steps += 1
        if self.probing is None or self.loss_before is None:
            return
        after = val_loss(observation, info)
        i, self.probing = self.probing, None
        if after is None:
            return
        drop = self.loss_before - after.ravel()
        self.G[:, i] = np.where(np.isfinite(drop), drop, 0.0)
        self.probed[i] = True
        self.probe_log.append(i)
        if n % self.round_steps == self.probe_steps - 1:  # the round's last probe
            self.refit()
