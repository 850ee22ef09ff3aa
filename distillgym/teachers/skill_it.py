"""``skill-it``: Skill-It's online data selection (Chen et al., 2023), multiplicative weights over a skills graph.

Ported from the authors' code, ``HazyResearch/skill-it``, ``trainer/mw_trainer.py``
(``MWTrainer.train``; the LEGO scripts ``scripts/lego/pt/skillit.sh`` set ``--eta 0.5 --mw_window 3``).

**Domains.** A "skill" of the paper is a cell (skill x difficulty) here: k = 28 for the arithmetic suites.

**Rule.** ``p = p0 * exp(eta * A @ sum of the last `window` validation losses)`` (normalised),
``p0`` uniform (the code's ``weights_init``). The losses are the validation loss per cell
(``observation["loss"]``, the mean token cross-entropy of the gold answer). As in the code, the
list of losses starts with the evaluation before any training (the reset observation) and the
first mix, made before any evaluation in the code, uses ``loss_init = 1`` for every cell, so it is
``p0 * exp(eta * A @ 1)``. With ``normalize_loss`` (the code's ``--normalize_loss``, off in its
scripts) the window sum is divided by the first evaluation's losses.

**The graph A** (k x k, ``A[i, j]`` > 0 when training on cell i helps cell j, as the code's
``graph.dot(loss)`` reads it): 1 on the diagonal and ``edge_weight`` (0.5: the code sets every
off-diagonal edge of a synthetic graph to 0.5) on the edges of the suite's prerequisite graph
over cells: cell (s, d) depends on (s, d - 1), its own skill one level down, and on (p, d) for
each *direct* prerequisite skill p of s (``info["prerequisites"]``) at the same level. Edges are
direct only, as the code's graphs list them: the exponent of a cell grows with its number of
dependants, and with transitive edges copy level 0 (a prerequisite of 11 other cells) would take
almost the whole mix from the first step. ``graph="identity"`` uses A = I (the code's default when
no graph is given).

**Rounds.** The code evaluates every ``ckpt_steps`` and re-mixes every ``update_steps``; the window
covers the last ``window`` evaluations. Here the env evaluates once per step, so one evaluation is
one env step (2,048 examples), the window covers the last 3 steps (the reset evaluation included
while fewer exist), and the mix is recomputed after every ``update_every`` env steps (1: every step).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import check_bool, check_choice, check_int, check_number
from distillgym.teachers.mixing import MixTeacher, val_loss

__all__ = ["SkillItTeacher", "skill_graph", "skill_it_weights"]


def skill_graph(skills: list[str], prerequisites: dict[str, list[str]], n_difficulties: int, edge_weight: float = 0.5) -> np.ndarray:
    """The (k, k) skills graph over cells (flat skill-major index ``s * D + d``): 1 on the diagonal,
    ``edge_weight`` from (s, d - 1) and from (p, d), p a direct prerequisite of s, to (s, d)."""
    D = n_difficulties
    k = len(skills) * D
    A = np.eye(k)
    index = {s: i for i, s in enumerate(skills)}
    for s, skill in enumerate(skills):
        for d in range(D):
            j = s * D + d
            if d > 0:
                A[j - 1, j] = edge_weight
            for p in prerequisites.get(skill, ()):
                if p in index:
                    A[index[p] * D + d, j] = edge_weight
    return A


def skill_it_weights(p0: np.ndarray, A: np.ndarray, losses: np.ndarray, eta: float) -> np.ndarray:
    """``p0 * exp(eta * A @ losses)``, normalised (computed in log space)."""
    x = np.log(np.asarray(p0, dtype=float)) + eta * (np.asarray(A, dtype=float) @ np.asarray(losses, dtype=float))
    w = np.exp(x - x.max())
    return w / w.sum()


class SkillItTeacher(MixTeacher):
    """Skill-It's multiplicative weights over the cells' skills graph (see the module docstring).

    Arguments: ``eta`` (0.5, learning rate of the weights), ``window`` (3, evaluations summed),
    ``edge_weight`` (0.5, off-diagonal weight of a prerequisite edge), ``graph`` (``"prerequisites"``
    or ``"identity"``), ``update_every`` (1, env steps between re-mixes), ``normalize_loss`` (False)."""

    name = "skill-it"
    GRAPHS = ("prerequisites", "identity")

    def __init__(
        self,
        eta: float = 0.5,
        window: int = 3,
        edge_weight: float = 0.5,
        graph: str = "prerequisites",
        update_every: int = 1,
        normalize_loss: bool = False,
    ) -> None:
        self.eta = check_number("SkillItTeacher", "eta", eta, 0)
        self.window = check_int("SkillItTeacher", "window", window, 1)
        self.edge_weight = check_number("SkillItTeacher", "edge_weight", edge_weight, 0)
        self.graph = check_choice("graph", graph, self.GRAPHS)
        self.update_every = check_int("SkillItTeacher", "update_every", update_every, 1)
        self.normalize_loss = check_bool("SkillItTeacher", "normalize_loss", normalize_loss)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        k = self.shape[0] * self.shape[1]
        if self.graph == "identity":
            self.A = np.eye(k)
        else:
            self.A = skill_graph(self.skills, self.prerequisites, self.n_difficulties, self.edge_weight)
        self.p0 = np.ones(k)
        self.losses: list[np.ndarray] = []
        first = val_loss(None, info)
        if first is not None:
            self.losses.append(self._finite(first.ravel()))
        self.steps = 0
        self.p = skill_it_weights(self.p0, self.A, np.ones(k), self.eta)  # the code's loss_init = weights_init = 1

    @staticmethod
    def _finite(loss: np.ndarray) -> np.ndarray:
        """NaN (a cell without validation items) becomes the mean of the others, so it neither wins nor loses."""
        loss = np.asarray(loss, dtype=float)
        bad = ~np.isfinite(loss)
        if bad.all():
            return np.ones_like(loss)
        return np.where(bad, np.nanmean(np.where(bad, np.nan, loss)), loss)

    def window_loss(self) -> np.ndarray:
        """Sum of the last ``window`` evaluations (divided by the first one with ``normalize_loss``)."""
        s = np.sum(self.losses[-self.window:], axis=0)
        if self.normalize_loss:
            s = s / np.maximum(self.losses[0], 1e-12)
        return s

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        loss = val_loss(observation, info)
        if loss is None:
            return
        self.losses.append(self._finite(loss.ravel()))
        self.steps += 1
        if self.steps % self.update_every == 0:
            self.p = skill_it_weights(self.p0, self.A, self.window_loss(), self.eta)

    def mix(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        return self.p.reshape(self.shape)
