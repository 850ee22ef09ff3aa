"""IOA: the Knowledge Identifier, Organizer and Adapter teacher.

After He et al., "Pedagogically-Inspired Data Synthesis for Language Model Knowledge
Distillation" (arXiv:2602.12172, 2026), which builds on Bloom's mastery learning and
Vygotsky's zone of proximal development. Mapped onto one (skill, difficulty) choice per
step:

* **Identifier.** For each skill k, with the student's accuracy P_S(k) (over all of the
  skill's validation items) and the reference teacher's P_T(k), the gap is
  ``D(k) = (P_T(k) - P_S(k)) / P_T(k)``; k is *deficient* when ``D(k) > 0.3``. Its
  severity is ``0.7 * D(k) + 0.3 * connectivity(k)``, where connectivity is k's degree in
  the prerequisite graph (prerequisites plus dependents) divided by the largest degree.
* **Organizer.** Skills are taken in topological order of the prerequisite graph: a skill
  is *mastered* when ``P_S(k) >= 0.9 * P_T(k)``; the teacher only advances past a skill
  once it is mastered and otherwise gives remedial data on it. Concretely, the candidates
  are the unmastered skills all of whose prerequisites are mastered (the frontier); the
  deficient candidate with the highest severity is taught, or, if none is deficient, the
  candidate with the largest gap. If every skill is mastered, the most severe skill is.
* **Adapter.** Each skill keeps a current difficulty level, starting at 0. It rises by
  one level only when the student's accuracy at the current level reaches
  ``0.9 * P_T(k)``, and never by more than one level per decision (zone of proximal
  development).

All thresholds are constructor arguments with the paper's values as defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import check_number
from distillgym.teachers.base import BaseTeacher

__all__ = ["IOATeacher"]


class IOATeacher(BaseTeacher):
    """IOA (Identifier, Organizer, Adapter): mastery learning over the prerequisite graph."""

    name = "ioa"

    def __init__(
        self,
        deficiency_threshold: float = 0.3,
        gap_weight: float = 0.7,
        connectivity_weight: float = 0.3,
        mastery_ratio: float = 0.9,
        level_mastery_ratio: float = 0.9,
    ) -> None:
        self.deficiency_threshold = check_number("IOATeacher", "deficiency_threshold", deficiency_threshold, 0, 1)
        self.gap_weight = check_number("IOATeacher", "gap_weight", gap_weight, 0, 1)
        self.connectivity_weight = check_number("IOATeacher", "connectivity_weight", connectivity_weight, 0, 1)
        self.mastery_ratio = check_number("IOATeacher", "mastery_ratio", mastery_ratio, 0, 1)
        self.level_mastery_ratio = check_number("IOATeacher", "level_mastery_ratio", level_mastery_ratio, 0, 1)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        S = len(self.skills)
        self._pre = [[self.skills.index(p) for p in self.prerequisites.get(s, [])] for s in self.skills]
        degree = np.zeros(S)
        for k, pre in enumerate(self._pre):
            degree[k] += len(pre)
            for p in pre:
                degree[p] += 1
        self.connectivity = degree / degree.max() if degree.max() > 0 else degree
        self.level = np.zeros(S, dtype=int)

    # ------------------------------------------------------------------ the three stages
    def identify(self, acc: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gap D(k), deficient flags, severity."""
        p_s = acc.mean(axis=1)  # every cell has the same number of validation items
        gap = np.where(ref > 0, (ref - p_s) / np.where(ref > 0, ref, 1), 0.0)
        deficient = gap > self.deficiency_threshold
        severity = self.gap_weight * gap + self.connectivity_weight * self.connectivity
        return gap, deficient, severity

    def organize(self, acc: np.ndarray, ref: np.ndarray, gap: np.ndarray, deficient: np.ndarray,
                 severity: np.ndarray) -> int:
        """The skill to teach next: prerequisites first, advancing only past mastered skills."""
        mastered = acc.mean(axis=1) >= self.mastery_ratio * ref
        frontier = [k for k in range(len(self.skills)) if not mastered[k] and all(mastered[p] for p in self._pre[k])]
        if not frontier:
            return int(np.argmax(severity))
        weak = [k for k in frontier if deficient[k]]
        if weak:
            return max(weak, key=lambda k: (severity[k], -k))
        return max(frontier, key=lambda k: (gap[k], -k))

    def adapt(self, k: int, acc: np.ndarray, ref: np.ndarray) -> int:
        """Raise skill k's level by one if its current level is mastered; return the level."""
        if self.level[k] < self.n_difficulties - 1 and acc[k, self.level[k]] >= self.level_mastery_ratio * ref[k]:
            self.level[k] += 1
        return int(self.level[k])

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        acc = np.asarray(observation["accuracy"], dtype=float)
        ref = np.asarray(observation["reference"], dtype=float)
        gap, deficient, severity = self.identify(acc, ref)
        k = self.organize(acc, ref, gap, deficient, severity)
        d = self.adapt(k, acc, ref)
        self.last_decision = {
            "skill": self.skills[k],
            "difficulty": d,
            "gap": float(gap[k]),
            "severity": float(severity[k]),
            "deficient": [self.skills[i] for i in np.flatnonzero(deficient)],
        }
        return np.array([k, d])
