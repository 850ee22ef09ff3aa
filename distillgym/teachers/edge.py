"""Edge of learnability: train on the cell whose accuracy is closest to a target success rate.

After Socratic-Zero (Wang et al., "Socratic-Zero: Bootstrapping Reasoning via Data-Free Agent
Co-evolution", arXiv:2509.24726, 2025), whose Generator is rewarded for problems at the edge
of the Solver's ability: a Gaussian utility of the Solver's success rate ``s`` on a problem,
``U = exp(-(s - mu)^2 / (2 sigma^2))``, centred on ``mu = 0.5`` (problems the Solver solves
half the time). Each cell (skill, difficulty) is one problem family here, and ``s`` is its
validation accuracy.

* ``mode="closest"`` (default): the cell with the highest utility, i.e. the accuracy closest
  to ``target`` (0.5); ties (cells equally far from the target, within 1e-6 so that float32
  rounding of the observation does not matter, e.g. all cells at accuracy 0 at the start)
  are broken uniformly at random with the teacher's seeded generator.
* ``mode="gaussian"``: sample a cell with probability proportional to ``U`` with width
  ``sigma``. ``sigma=0.2`` is our reading of the paper's value, not checked against its text;
  it is an argument.

Deviations: Socratic-Zero scores generated problems (Solver success over several samples
per problem) to train a Generator; here the utility ranks fixed cells, using exact-match
accuracy on the validation items of the cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import check_choice, check_number
from distillgym.teachers.base import BaseTeacher

__all__ = ["EdgeTeacher"]

MODES = ("closest", "gaussian")


class EdgeTeacher(BaseTeacher):
    """Edge of learnability (Socratic-Zero, 2025): the cell with accuracy closest to 0.5, random ties.

    Arguments: ``target`` mu (0.5), ``mode`` ``"closest"`` (default) or ``"gaussian"``,
    ``sigma`` (0.2, ``"gaussian"`` only). See the module docstring.
    """

    name = "edge"

    def __init__(self, target: float = 0.5, mode: str = "closest", sigma: float = 0.2) -> None:
        self.target = check_number("EdgeTeacher", "target", target, 0, 1)
        self.mode = check_choice("mode", mode, MODES)
        self.sigma = check_number("EdgeTeacher", "sigma", sigma, 0, open_low=True)

    def utility(self, accuracy: Any) -> np.ndarray:
        """Gaussian utility per cell, flat in skill-major order (``self.cells``)."""
        acc = np.asarray(accuracy, dtype=float).reshape(-1)
        return np.exp(-((acc - self.target) ** 2) / (2.0 * self.sigma**2))

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        acc = np.asarray(observation["accuracy"], dtype=float).reshape(-1)
        if self.mode == "gaussian":
            u = self.utility(acc)
            p = u / u.sum() if u.sum() > 0 else np.full(len(u), 1.0 / len(u))
            i = int(self.rng.choice(len(p), p=p))
            self.last_decision = {"utility": u, "probabilities": p}
        else:
            dist = np.abs(acc - self.target)
            tied = np.flatnonzero(dist <= dist.min() + 1e-6)
            i = int(tied[self.rng.integers(len(tied))])
            self.last_decision = {"distance": dist, "tied": tied}
        return self.cell_action(i)
